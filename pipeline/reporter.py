"""ErrorReporter: every error of a cycle, collected with its stage, scrubbed of secrets."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from .models import CycleError, CycleReport

log = logging.getLogger(__name__)

REDACTED = "[redacted]"

# Secrets to scrub: a fixed list, or a function read each time (a venue client derives credentials while it runs).
SecretSource = Iterable[str] | Callable[[], Iterable[str]]


def _fixed(secrets: SecretSource) -> Iterable[str] | Callable[[], Iterable[str]]:
    return secrets if callable(secrets) else tuple(secrets)


def _current(secrets: Iterable[str] | Callable[[], Iterable[str]]) -> Iterable[str]:
    return secrets() if callable(secrets) else secrets


def scrub(text: str, secrets: Iterable[str]) -> str:
    """Replace every configured secret (longest first, so prefixes do not leak the rest)."""
    for secret in sorted((s for s in secrets if s and len(s) >= 4), key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return text


class SecretScrubber(logging.Filter):
    """A logging filter that redacts configured secrets from every record it passes, and those of every source
    it is told to `consult` (a desk, for the credentials its venue clients derive)."""

    def __init__(self, secrets: SecretSource) -> None:
        super().__init__()
        self._sources = [_fixed(secrets)]

    def consult(self, source: Callable[[], Iterable[str]]) -> None:
        self._sources.append(source)

    def filter(self, record: logging.LogRecord) -> bool:
        secrets = [s for source in self._sources for s in _current(source)]
        if secrets:
            record.msg = scrub(record.getMessage(), secrets)
            record.args = None
            if record.exc_info and record.exc_info[1] is not None:
                record.exc_text = scrub(logging.Formatter().formatException(record.exc_info), secrets)
                record.exc_info = None
        return True


class ErrorReporter:
    def __init__(self, report: CycleReport, secrets: SecretSource = ()) -> None:
        self.report = report
        self._secrets = _fixed(secrets)

    def record(self, stage: str, error: BaseException | str, venue: str = "") -> CycleError:
        message = error if isinstance(error, str) else (str(error) or type(error).__name__)
        entry = CycleError(stage=stage, venue=venue, message=scrub(message, _current(self._secrets)))
        self.report.errors.append(entry)
        log.warning("cycle %s %s%s: %s", self.report.cycle_id, stage, f" ({venue})" if venue else "", entry.message)
        return entry

    @property
    def count(self) -> int:
        return len(self.report.errors)

    def summary(self) -> str:
        if not self.report.errors:
            return "no errors"
        by_stage: dict[str, int] = {}
        for error in self.report.errors:
            by_stage[error.stage] = by_stage.get(error.stage, 0) + 1
        return ", ".join(f"{n} in {stage}" for stage, n in by_stage.items())


def short(text: str, limit: int = 60) -> str:
    """A title cut to fit an error line; a market key alone (a Polymarket condition hash) names nothing."""
    return text if len(text) <= limit else text[:limit - 1] + "…"
