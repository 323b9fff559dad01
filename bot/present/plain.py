"""The presentation layer drawn as plain terminal text: the same messages Slack shows, in the same order.

Untrusted text is cleaned of control characters (a market title must not drive the operator's terminal);
styles become plain text, since a terminal is not a chat.
"""

from __future__ import annotations

from .model import Message, Page, Span, Style, Text, Tone
from .textutil import clean

RULE = "-" * 78
TONE_MARKS = {
    Tone.LIVE: "[LIVE]",
    Tone.PAPER: "[DRY-RUN]",
    Tone.GOOD: "[ok]",
    Tone.WARNING: "[!]",
    Tone.FAILURE: "[FAILED]",
    Tone.BUSY: "[..]",
    Tone.NEUTRAL: "",
}


def span(item: Span) -> str:
    value = clean(item.text)
    if item.style is Style.LINK and item.url:
        return f"{value} <{clean(item.url)}>"
    if item.style is Style.USER and value.startswith("U"):
        return f"@{value}"
    return value


def line(value: Text) -> str:
    return "".join(span(s) for s in value)


def _wrap(value: str, indent: str = "  ") -> list[str]:
    """Indented lines; long ones are left for the terminal to wrap, so a line can still be grepped whole."""
    return [f"{indent}{part}".rstrip() for part in value.split("\n")]


def render(message: Message, *, buttons: bool = False) -> str:
    """The message as lines of text; buttons only where the terminal itself asks (it prompts instead)."""
    mark = TONE_MARKS.get(message.tone, "")
    out = [RULE] if message.kind in ("signal", "summary") else []
    if message.title:
        out.append(clean(f"{mark} {message.title}" if mark and not message.title.startswith(mark.strip("[]"))
                         else message.title))
    for item in message.lines:
        out.extend(_wrap(line(item)))
    for row in message.rows:
        shown = line(row.text)
        if buttons and row.button is not None:
            shown += f"   [{clean(row.button.label)}]"
        out.extend(_wrap(shown))
    if message.facts:
        width = min(max(len(f.label) for f in message.facts), 24)
        for fact in message.facts:
            value = line(fact.value).replace("\n", "; ")
            out.extend(_wrap(f"{clean(fact.label):<{width}}  {value}"))
    if buttons and message.buttons:
        out.append("  " + "   ".join(f"[{b.label}]" for b in message.buttons))
    for section in message.sections:
        first, *rest = [line(t) for t in section.lines] or [""]
        out.extend(_wrap(f"{clean(section.heading)}: {first}" if section.heading else first))
        for more in rest:
            out.extend(_wrap(more))
    for item in message.footer:
        out.extend(_wrap(line(item), "    "))
    return "\n".join(out)


def render_page(page: Page) -> str:
    return "\n\n".join([clean(page.title)] + [render(part) for part in page.parts])
