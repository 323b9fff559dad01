"""Who did something, as a message names them: a chat user, the terminal's operator, or one of the desk's own
actors in words."""

from __future__ import annotations

from .model import Span, user
from .textutil import one_line

SYSTEM_ACTORS = {
    "sweeper": "nobody in time (expired)",
    "risk-limit": "the daily loss limit",
    "kill-switch": "the kill switch",
    "schedule": "the scheduler",
    "reconciler": "reconciliation",
}


def actor(label: str) -> Span:
    """A person as the chat names them (a Slack id shows as their display name); the desk's own actors in words."""
    if label in SYSTEM_ACTORS:
        return Span(SYSTEM_ACTORS[label])
    if label.startswith("terminal:"):
        return Span(f"{one_line(label.removeprefix('terminal:'), 60)} (terminal)")
    return user(one_line(label, 80) or "someone")
