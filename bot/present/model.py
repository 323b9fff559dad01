"""The chat-neutral shape of every message the desk sends: what it says, not how a chat draws it.

A presenter (bot/present/*.py) turns desk state into a `Message`; a renderer (bot/blocks.py for Slack's
Block Kit, bot/present/plain.py for the terminal, and Discord later) draws it. Text is a tuple of `Span`s
holding raw, untrusted strings with a style; each renderer escapes and clips them for its own medium, so
a market title can never become markup anywhere.

Reading order is the message's order: `title` (the one line a trader decides from: the trade or the
result), `lines` (the case, or what happened), `rows` (items of a list that each carry their own button: a
position and its Close), `facts` (labelled numbers), `buttons`, `sections` (details: the model's reasoning,
rules), `footer` (small print: who, when, ids).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime


class Tone(str, enum.Enum):
    """How the message should feel at a glance; renderers pick emoji, colour and button style from it."""

    LIVE = "live"  # real money is about to move: a live proposal
    PAPER = "paper"  # a dry-run proposal
    GOOD = "good"  # done as intended: filled, a clean cycle
    WARNING = "warning"  # partial: a partial fill, a partial cycle, something a person should look at
    FAILURE = "failure"  # did not happen: an order not placed, a failed cycle, a halt
    NEUTRAL = "neutral"  # nothing to judge: rejected, expired, status, help
    BUSY = "busy"  # in progress


class Style(str, enum.Enum):
    PLAIN = "plain"
    BOLD = "bold"
    CODE = "code"  # an id or a machine code
    LINK = "link"  # `url` is the target; a renderer drops a target it cannot make safe
    USER = "user"  # a chat user id (a renderer may show the display name) or another actor label
    TIME = "time"  # `at`: a renderer may show it in the reader's own time zone


@dataclass(frozen=True)
class Span:
    text: str
    style: Style = Style.PLAIN
    url: str = ""
    at: datetime | None = None


Text = tuple[Span, ...]
Part = str | Span | Text | None


def text(*parts: Part) -> Text:
    """Spans from strings (plain), spans and other texts; None and empty strings are skipped."""
    spans: list[Span] = []
    for part in parts:
        if part is None or part == "":
            continue
        if isinstance(part, str):
            spans.append(Span(part))
        elif isinstance(part, Span):
            spans.append(part)
        else:
            spans.extend(part)
    return tuple(spans)


def join(texts: Iterable[Text], sep: str = " · ") -> Text:
    out: list[Span] = []
    for item in texts:
        if not item:
            continue
        if out:
            out.append(Span(sep))
        out.extend(item)
    return tuple(out)


def bold(value: object) -> Span:
    return Span(str(value), Style.BOLD)


def code(value: object) -> Span:
    return Span(str(value), Style.CODE)


def link(url: str, label: object) -> Span:
    return Span(str(label), Style.LINK, url=url or "")


def user(label: str) -> Span:
    return Span(label, Style.USER)


def when(moment: datetime, fallback: str) -> Span:
    """A moment shown in the reader's zone where the chat can (Slack), else as `fallback` (UTC)."""
    return Span(fallback, Style.TIME, at=moment)


@dataclass(frozen=True)
class Fact:
    label: str
    value: Text


@dataclass(frozen=True)
class Confirm:
    """A second step before the button acts: used for anything that moves real money."""

    title: str
    body: str
    ok: str
    cancel: str


@dataclass(frozen=True)
class Button:
    action: str
    label: str
    value: str
    tone: Tone = Tone.NEUTRAL  # LIVE: the danger colour; PAPER/GOOD: the primary colour
    confirm: Confirm | None = None


@dataclass(frozen=True)
class Row:
    """One item of a list with its own button beside it (a position and its Close); a renderer that cannot draw a
    button there shows the text alone."""

    text: Text
    button: Button | None = None


@dataclass(frozen=True)
class Section:
    """A block of detail under an optional heading; renderers may fold it."""

    heading: str
    lines: tuple[Text, ...]


@dataclass(frozen=True)
class Message:
    kind: str  # signal, outcome, expired, reconciled, progress, summary, errors, status, … (for tests and routing)
    tone: Tone
    title: str  # plain text: the first line
    lines: tuple[Text, ...] = ()
    rows: tuple[Row, ...] = ()
    facts: tuple[Fact, ...] = ()
    buttons: tuple[Button, ...] = ()
    sections: tuple[Section, ...] = ()
    footer: tuple[Text, ...] = ()
    notification: str = ""  # what a phone notification shows; the title when empty
    thread: tuple["Message", ...] = field(default=())  # follow-ups that belong under it (error details)


@dataclass(frozen=True)
class Page:
    """A screen made of several messages (App Home): each keeps its own shape."""

    title: str
    tone: Tone
    parts: tuple[Message, ...]
