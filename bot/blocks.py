"""Block Kit: draws the presentation layer's messages (bot/present) as Slack payloads. Nothing here
decides what a message says, only how Slack shows it.

`render(message)` returns a chat.postMessage / chat.update payload `{"text": <notification>, "blocks":
[...]}`; `render_home(page)` a views.publish view. The order is the message's own: a header with the
first line (the trade or the result), the lines, the facts as two-column fields, the buttons, the
details, and the small print as a context block.

Everything that comes from outside (market titles, rules, urls, model reasoning, error messages, venue
ids) is treated as hostile: cleaned (lone surrogates replaced, bidi overrides and control characters
dropped), escaped for mrkdwn (`&`, `<`, `>`), rendered with `verbatim: true` so Slack does not turn text
into mentions or links, and clipped with "…" without splitting a character, a grapheme or an escape.
Lengths are counted in UTF-16 code units, which is never less than Slack's character count, so every
limit holds.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import quote

from .present.model import Button, Message, Page, Row, Span, Style, Text, Tone
from .present.signals import APPROVE_ACTION, REJECT_ACTION
from .present.state import CLOSE_ACTION
from .present.textutil import _WHITESPACE, clean, clip, http_url, units  # noqa: F401 (re-exported)

__all__ = ["APPROVE_ACTION", "CLOSE_ACTION", "REJECT_ACTION", "SIGNAL_ACTIONS_BLOCK", "render", "render_home",
           "render_text", "clean", "clip", "units"]

SIGNAL_ACTIONS_BLOCK = "signal_actions"

# Slack's limits (https://api.slack.com/reference/block-kit).
MAX_MESSAGE_BLOCKS = 50
MAX_VIEW_BLOCKS = 100
MAX_HEADER = 150
MAX_SECTION_TEXT = 3000
MAX_FIELDS = 10
MAX_FIELD_TEXT = 2000
MAX_CONTEXT_ELEMENTS = 10
MAX_BUTTON_TEXT = 75
MAX_BUTTON_VALUE = 2000
MAX_CONFIRM_TITLE = 100
MAX_CONFIRM_TEXT = 300
MAX_CONFIRM_BUTTON = 30
MAX_FALLBACK = 3000

# Our own, tighter budgets: short fallbacks (they become notifications), short link labels and urls.
FALLBACK_BUDGET = 300
TITLE_BUDGET = 200
URL_BUDGET = 1500
LINE_BUDGET = 2500  # one line of a message; the section it is packed into holds 3000

TONE_EMOJI = {
    Tone.LIVE: ":rotating_light:",
    Tone.PAPER: ":test_tube:",
    Tone.GOOD: ":white_check_mark:",
    Tone.WARNING: ":warning:",
    Tone.FAILURE: ":x:",
    Tone.BUSY: ":hourglass_flowing_sand:",
    Tone.NEUTRAL: "",
}
BUTTON_STYLES = {Tone.LIVE: "danger", Tone.PAPER: "primary", Tone.GOOD: "primary"}

_SLACK_USER = re.compile(r"[UW][A-Z0-9]{2,30}")


# -- text ------------------------------------------------------------------------------------------------


def escape(text: str) -> str:
    """mrkdwn's three control characters, so `<!channel>` or `<https://x|y>` stays text."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def md(raw: object, limit: int) -> str:
    """Untrusted text for mrkdwn: cleaned, escaped, clipped. Newlines are kept."""
    return clip(escape(clean(raw)), limit)


def md_line(raw: object, limit: int) -> str:
    """Untrusted text for one line of mrkdwn: whitespace (newlines too) collapsed."""
    return clip(escape(_WHITESPACE.sub(" ", clean(raw)).strip()), limit)


def plain(raw: object, limit: int) -> str:
    """Untrusted text for a plain_text object: angle brackets defused in case a client parses them."""
    text = _WHITESPACE.sub(" ", clean(raw)).strip().replace("<", "‹").replace(">", "›")
    return clip(text, limit, markup=False)


def safe_url(url: object) -> str | None:
    """An http(s) url fit for `<url|label>`: percent-encoded (no `|`, `<`, `>`, spaces) and `&` escaped."""
    found = http_url(url, URL_BUDGET)
    if found is None:
        return None
    quoted = quote(found[0], safe=";/?:@=&$-_.+!*'(),%#~[]")
    if len(quoted) > URL_BUDGET:
        return None
    return escape(quoted)


def link(url: object, label: object, limit: int = TITLE_BUDGET) -> str:
    """`<url|label>` with the label escaped and stripped of `|`; just the label when the url is unusable."""
    text = md_line(clean(label).replace("|", " "), limit) or "(untitled)"
    target = safe_url(url)
    return f"<{target}|{text}>" if target else text


def who(label: str, default: str = "someone") -> str:
    """A Slack user id as a mention; anything else (terminal:operator, schedule) as escaped text."""
    if not label:
        return default
    if _SLACK_USER.fullmatch(label):
        return f"<@{label}>"
    return md_line(label, 80)



def span(item: Span) -> str:
    """One span as mrkdwn; its text is untrusted."""
    if item.style is Style.LINK:
        return f"*{link(item.url, item.text)}*"
    if item.style is Style.USER:
        return who(item.text)
    if item.style is Style.CODE:
        return f"`{md_line(clean(item.text).replace('`', chr(39)), LINE_BUDGET) or '?'}`"
    body = md(item.text, LINE_BUDGET)
    if item.style is Style.BOLD and body.strip() and "*" not in body:
        lead, core, trail = _split_space(body)
        return f"{lead}*{core}*{trail}"
    return body


def _split_space(body: str) -> tuple[str, str, str]:
    """Bold markers must touch the words: `* x*` is not bold in Slack."""
    core = body.strip()
    start = body.index(core)
    return body[:start], core, body[start + len(core):]


def mrkdwn(value: Text, limit: int = LINE_BUDGET) -> str:
    return clip("".join(span(s) for s in value), limit)


def render_text(value: Text) -> str:
    """A text as mrkdwn for an ephemeral reply."""
    return mrkdwn(value, MAX_FALLBACK) or " "


# -- blocks ----------------------------------------------------------------------------------------------


def _mrkdwn(text: str, limit: int) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": clip(text, limit) or " ", "verbatim": True}


def _plain_text(text: str, limit: int) -> dict[str, Any]:
    return {"type": "plain_text", "text": clip(text, limit, markup=False) or " ", "emoji": True}


def header(text: str) -> dict[str, Any]:
    return {"type": "header", "text": _plain_text(text, MAX_HEADER)}


def section(text: str | None = None, fields: Sequence[str] = ()) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "section"}
    if text is not None or not fields:
        block["text"] = _mrkdwn(text or " ", MAX_SECTION_TEXT)
    if fields:
        block["fields"] = [_mrkdwn(f, MAX_FIELD_TEXT) for f in list(fields)[:MAX_FIELDS]]
    return block


def context(*texts: str) -> dict[str, Any]:
    elements = [_mrkdwn(t, MAX_FIELD_TEXT) for t in texts if t][:MAX_CONTEXT_ELEMENTS]
    return {"type": "context", "elements": elements or [_mrkdwn(" ", MAX_FIELD_TEXT)]}


def divider() -> dict[str, Any]:
    return {"type": "divider"}


def pack_lines(lines: Iterable[str], limit: int = MAX_SECTION_TEXT) -> list[str]:
    """Join lines into as few texts of at most `limit` units as possible; an over-long line is clipped."""
    chunks: list[str] = []
    current = ""
    for line in lines:
        line = clip(line, limit)
        if current and units(current) + 1 + units(line) > limit:
            chunks.append(current)
            current = ""
        current = f"{current}\n{line}" if current else line
    if current:
        chunks.append(current)
    return chunks


def button(item: Button) -> dict[str, Any]:
    element: dict[str, Any] = {"type": "button", "action_id": item.action,
                               "text": _plain_text(item.label, MAX_BUTTON_TEXT),
                               "value": clip(item.value, MAX_BUTTON_VALUE, markup=False)}
    style = BUTTON_STYLES.get(item.tone)
    if style:
        element["style"] = style
    if item.confirm is not None:
        element["confirm"] = {
            "title": _plain_text(plain(item.confirm.title, MAX_CONFIRM_TITLE), MAX_CONFIRM_TITLE),
            "text": _plain_text(clean(item.confirm.body).replace("<", "‹").replace(">", "›"), MAX_CONFIRM_TEXT),
            "confirm": _plain_text(item.confirm.ok, MAX_CONFIRM_BUTTON),
            "deny": _plain_text(item.confirm.cancel, MAX_CONFIRM_BUTTON),
            "style": "danger" if item.tone is Tone.LIVE else "primary",
        }
    return element


def action_pattern(action: str) -> re.Pattern[str]:
    """What a listener matches for `action`: its own id, and the ids `_unique_actions` gives its repeats."""
    return re.compile(rf"^{re.escape(action)}(\.\d+)?$")


def _unique_actions(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Slack refuses a message whose buttons share an action id; a repeated one (a Close button on every position)
    becomes `<id>.2`, `<id>.3`… in order. The button's value still says what it acts on."""
    seen: dict[str, int] = {}
    for block in blocks:
        elements = [block["accessory"]] if "accessory" in block else block.get("elements", [])
        for element in elements:
            action = element.get("action_id") if isinstance(element, dict) else None
            if action is None:
                continue
            seen[action] = seen.get(action, 0) + 1
            if seen[action] > 1:
                element["action_id"] = f"{action}.{seen[action]}"
    return blocks


def row(item: Row) -> dict[str, Any]:
    """A list item as its own section, its button beside it (Slack's accessory)."""
    block = section(mrkdwn(item.text, MAX_SECTION_TEXT))
    if item.button is not None:
        block["accessory"] = button(item.button)
    return block


def title_line(message: Message) -> str:
    emoji = TONE_EMOJI.get(message.tone, "")
    return f"{emoji} {plain(message.title, MAX_HEADER)}" if emoji else plain(message.title, MAX_HEADER)


def body_blocks(message: Message, *, title_as_header: bool = True) -> list[dict[str, Any]]:
    """The message's blocks in its own order: title, lines, rows, facts, buttons, details, small print."""
    blocks: list[dict[str, Any]] = []
    if message.title:
        blocks.append(header(title_line(message)) if title_as_header else section(f"*{md_line(message.title, 300)}*"))
    for chunk in pack_lines(mrkdwn(line) for line in message.lines):
        blocks.append(section(chunk))
    blocks.extend(row(item) for item in message.rows)
    facts = [f"*{md_line(fact.label, 200)}*\n{mrkdwn(fact.value, MAX_FIELD_TEXT - 250)}" for fact in message.facts]
    for start in range(0, len(facts), MAX_FIELDS):
        blocks.append(section(None, facts[start:start + MAX_FIELDS]))
    if message.buttons:
        actions: dict[str, Any] = {"type": "actions", "elements": [button(b) for b in message.buttons[:25]]}
        if message.kind == "signal":
            actions["block_id"] = SIGNAL_ACTIONS_BLOCK
        blocks.append(actions)
    for detail in message.sections:
        lines = [mrkdwn(line) for line in detail.lines]
        if detail.heading and lines:
            lines[0] = f"*{md_line(detail.heading, 80)}:* {lines[0]}"
        for chunk in pack_lines(lines):
            blocks.append(context(chunk) if detail.heading == "Rules" else section(chunk))
    if message.footer:
        blocks.append(context(*(mrkdwn(line, MAX_FIELD_TEXT) for line in message.footer)))
    return blocks


def render(message: Message) -> dict[str, Any]:
    """A chat.postMessage / chat.update payload, within Slack's limits whatever the message holds."""
    blocks = _unique_actions(_within(body_blocks(message), MAX_MESSAGE_BLOCKS))
    notification = escape(clean(_WHITESPACE.sub(" ", message.notification or message.title)).strip())
    return {"text": clip(notification, FALLBACK_BUDGET) or " ", "blocks": blocks}


def _within(blocks: list[dict[str, Any]], limit: int) -> list[dict[str, Any]]:
    """At most `limit` blocks: the header, the buttons and the small print always stay; the middle is cut."""
    if len(blocks) <= limit:
        return blocks
    keep = {0, len(blocks) - 1} | {i for i, b in enumerate(blocks) if b["type"] == "actions"}
    room = limit - len(keep) - 1  # one context block says that something was cut
    middle = [i for i in range(len(blocks)) if i not in keep][:max(room, 0)]
    chosen = sorted(keep | set(middle))
    cut_at = next((n for n, i in enumerate(chosen) if i > (middle[-1] if middle else 0)), len(chosen))
    out = [blocks[i] for i in chosen]
    out.insert(cut_at, context("…more than one message holds"))
    return out


def render_home(page: Page) -> dict[str, Any]:
    """A Home tab view: the page's title, then each part under its own heading, never more than 100 blocks."""
    emoji = TONE_EMOJI.get(page.tone, "")
    blocks: list[dict[str, Any]] = [header(f"{emoji} {page.title}" if emoji else page.title)]
    for index, part in enumerate(page.parts):
        if index:
            blocks.append(divider())
        blocks.extend(body_blocks(part, title_as_header=False))
    return {"type": "home", "blocks": _unique_actions(_within(blocks, MAX_VIEW_BLOCKS))}
