"""Exceptions grouped by what the caller should do about them.

- RetryableError: transient (rate limit, timeout, 5xx); the same call may succeed later.
- GiveUpError: permanent for this input (bad request, auth, unknown market); do not retry.
- OutcomeUnknownError: a write may or may not have happened; look it up, never re-send.
- RefusedError: the desk declined on purpose (authorization, state, risk); tell the user why.

Every message is meant for a person: it says what happened and, where it can, what to do.
Messages never carry secrets; boundaries translate foreign errors with `raise ... from e`.
"""

from __future__ import annotations

from typing import Any


class OddsdeskError(Exception):
    """Base of every error the desk raises on purpose."""


class ConfigError(OddsdeskError):
    """The configuration is invalid; nothing was started. Exit code 2."""


class RetryableError(OddsdeskError):
    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class GiveUpError(OddsdeskError):
    pass


class NotFoundError(GiveUpError):
    """The venue does not know what we asked for (HTTP 404)."""


class WireFormatError(GiveUpError):
    """A venue payload lacks a field we need or carries one we cannot read; retrying won't help."""


class FeesUnknownError(GiveUpError):
    """A market's fee schedule has not been read (or the venue's is one the desk cannot price): no trade."""


class VenueContractError(GiveUpError):
    """The venue answered in a way the desk was not built for: an endpoint it uses was retired (HTTP 410) or an
    error code it has never seen. Nothing was done; orders to that venue stop until an operator has checked the
    desk against the venue (`oddsdesk check --venues`) and resumed them."""

    def __init__(self, venue: str, message: str, *, code: str = "") -> None:
        super().__init__(message)
        self.venue = venue
        self.code = code


def contract_cause(error: BaseException | None) -> VenueContractError | None:
    """The VenueContractError behind `error` (itself, or a cause of it), if any."""
    while error is not None and not isinstance(error, VenueContractError):
        error = error.__cause__
    return error


class InconsistentVenueReport(GiveUpError):
    """A venue's report contradicts what the desk already recorded (fewer fills than booked, say).

    Nothing was changed; a person must look at the order at the venue.
    """


class StorageError(OddsdeskError):
    """The desk's database refused (locked by another process past its busy timeout, disk full...).

    The transaction was rolled back: nothing of the step was written. Try again later.
    """


class OutcomeUnknownError(OddsdeskError):
    """A request was sent but its answer never came: the order must be looked up."""


class RefusedError(OddsdeskError):
    """A deliberate refusal with a machine code and a human reason."""

    def __init__(self, code: str, reason: str, **details: Any) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason
        self.details = details


class CycleAlreadyRunning(RefusedError):
    def __init__(self, started_by: str, started_at: str) -> None:
        super().__init__("cycle_running", f"a cycle started by {started_by or 'the scheduler'} at {started_at} "
                                          "is still running", started_by=started_by, started_at=started_at)


class DryRunError(OddsdeskError):
    """Dry-run: nothing was traded. Carries what the order would have done against the book."""

    def __init__(self, message: str, outcome: Any = None) -> None:
        super().__init__(message)
        self.outcome = outcome


class ExecutionFailedError(OddsdeskError):
    """A live order was not placed (or was refused by the venue); capital is released."""

    def __init__(self, message: str, outcome: Any = None) -> None:
        super().__init__(message)
        self.outcome = outcome


class DeskStoppedError(ExecutionFailedError):
    """The desk was paused or halted while an approval was on its way: nothing was sent, capital released."""

    def __init__(self, state: str, message: str, outcome: Any = None) -> None:
        super().__init__(message, outcome)
        self.state = state
