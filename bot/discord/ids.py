"""What a Discord button says when it is clicked: an action and the one thing it acts on, nothing else.

A button's `custom_id` is `<action>:<value>`: the presentation layer's action name (the same names Slack's action
ids use) and the signal id (Approve, Reject, and the LIVE confirmation's two buttons) or the position's number
(Close). Everything else is looked up by the desk when the click arrives, so a custom_id can be forged to name a
signal but never to change what approving it does. Discord refuses a message whose buttons share a custom_id; the
second button with the same one (the same action on the same thing) becomes `<action>.2:<value>`, like Slack's
repeated action ids, and parses to the same (action, value).
"""

from __future__ import annotations

import re

from ..present.signals import APPROVE_ACTION, REJECT_ACTION
from ..present.state import CLOSE_ACTION

CONFIRM_ACTION = "signal_confirm"  # the LIVE approval's second step: "Place real order" / "Sell for real"
CANCEL_ACTION = "signal_cancel"  # its Cancel: nothing is decided
MAX_CUSTOM_ID = 100  # Discord: "Developer-defined identifier for the button; max 100 characters"

_SIGNAL = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,79}")
_POSITION = re.compile(r"[1-9][0-9]{0,17}")
VALUES = {APPROVE_ACTION: _SIGNAL, REJECT_ACTION: _SIGNAL, CONFIRM_ACTION: _SIGNAL, CANCEL_ACTION: _SIGNAL,
          CLOSE_ACTION: _POSITION}
_CUSTOM_ID = re.compile(r"(?P<action>[a-z_]{1,40})(?:\.(?P<repeat>[2-9]|[1-9][0-9]{1,2}))?:(?P<value>[^:]+)")


def custom_id(action: str, value: str, repeat: int = 1) -> str:
    """The custom_id of a button; ValueError for an action or value the desk never makes (it would not parse)."""
    pattern = VALUES.get(action)
    if pattern is None:
        raise ValueError(f"no Discord button for action {action!r}")
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise ValueError(f"{action} cannot carry {value!r}")
    if not 1 <= repeat <= 999:
        raise ValueError(f"repeat {repeat} out of range")
    made = f"{action}:{value}" if repeat == 1 else f"{action}.{repeat}:{value}"
    if len(made) > MAX_CUSTOM_ID:
        raise ValueError(f"custom_id longer than {MAX_CUSTOM_ID}: {made!r}")
    return made


def parse_custom_id(value: object) -> tuple[str, str]:
    """(action, value) of a clicked button; ValueError for anything this renderer did not make."""
    if not isinstance(value, str) or not 0 < len(value) <= MAX_CUSTOM_ID or not value.isascii():
        raise ValueError("not a custom_id of ours")
    match = _CUSTOM_ID.fullmatch(value)
    if match is None:
        raise ValueError("malformed custom_id")
    action, target = match.group("action"), match.group("value")
    pattern = VALUES.get(action)
    if pattern is None or not pattern.fullmatch(target):
        raise ValueError("unknown action or malformed value")
    return action, target
