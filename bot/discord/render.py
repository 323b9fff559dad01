"""The presentation layer's messages (bot/present) drawn as Discord message payloads: plain dicts, no client library.

`render(message)` is a create-message / edit-message body: `content` (the notification line), one embed (the title;
the lines and list rows as its description; facts as inline fields; details as fields; the small print as its
footer; the colour from the tone), `components` (action rows of buttons, `[]` when there are none so an edit removes
them) and `allowed_mentions` that parse nothing (only the Discord users the message names are listed). Discord's
limits always hold: when a message is too big, details go first, then small print, then the tail of the text,
each cut marked "…"; the decision buttons always stay. `render_pages` splits a long list (more rows with buttons
than one message holds) into several messages instead of cutting it, `render_thread` gives an error report's
details as the messages of its thread, `render_page` draws a Page (Slack's App Home) as one message, and
`confirm_payload` is the ephemeral second step of a LIVE approval (Discord buttons have no confirm dialog).

Where the text and its markup come from is bot/discord/markdown.py; the custom_id scheme is bot/discord/ids.py.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from typing import Any

from ..present.model import Button, Message, Page, Row, Section, Text, Tone, text
from ..present.signals import APPROVE_ACTION
from ..present.textutil import units
from .ids import CANCEL_ACTION, CONFIRM_ACTION, custom_id
from .markdown import inline, markdown, plain, plain_text

# Discord's limits (docs: Message resource, "Embed Limits" and Create Message; Component Reference).
MAX_CONTENT = 2000
MAX_EMBEDS = 10
MAX_TITLE = 256
MAX_DESCRIPTION = 4096
MAX_FIELDS = 25
MAX_FIELD_NAME = 256
MAX_FIELD_VALUE = 1024
MAX_FOOTER = 2048
MAX_AUTHOR = 256
MAX_EMBED_TOTAL = 6000  # title + description + field names and values + footer + author, over all embeds
MAX_ACTION_ROWS = 5
MAX_ROW_BUTTONS = 5
MAX_BUTTONS = MAX_ACTION_ROWS * MAX_ROW_BUTTONS
MAX_LABEL = 80
MAX_MENTIONED_USERS = 100
EPHEMERAL = 1 << 6

# Our own, tighter budgets: a short notification line, and a page of a split list that leaves room for the rest.
CONTENT_BUDGET = 300
PAGE_TEXT_BUDGET = 3800
MIN_CLIPPED_ENTRY = 40  # a last line cut shorter than this says nothing: it is left out and counted instead
MORE_RESERVE = 20  # room kept for "\n…and 1,234 more" while the description is filled
DESCRIPTION_FLOOR = 1024  # the text keeps this much before the facts are cut

ACTION_ROW, BUTTON = 1, 2
PRIMARY, SECONDARY, SUCCESS, DANGER = 1, 2, 3, 4
BUTTON_STYLES = {Tone.LIVE: DANGER, Tone.PAPER: PRIMARY, Tone.GOOD: SUCCESS}
COLOURS = {
    Tone.LIVE: 0xED4245,  # red: real money is about to move
    Tone.PAPER: 0x9B59B6,  # purple: a dry-run proposal, never mistaken for live
    Tone.GOOD: 0x57F287,
    Tone.WARNING: 0xF0A020,  # amber
    Tone.FAILURE: 0x992D22,  # dark red: did not happen
    Tone.NEUTRAL: 0x95A5A6,  # grey
    Tone.BUSY: 0x3498DB,  # blue
}
TONE_EMOJI = {Tone.LIVE: "🚨", Tone.PAPER: "🧪", Tone.GOOD: "✅", Tone.WARNING: "⚠️", Tone.FAILURE: "❌",
              Tone.BUSY: "⏳", Tone.NEUTRAL: ""}
CUT_NOTE = "more than one Discord message holds"
_MENTION = re.compile(r"(?<!\\)<@(\d{17,20})>")


# -- one embed ----------------------------------------------------------------------------------------------------


@dataclass
class _Plan:
    """How much of one message its embed shows; the fitting loop lowers these until every limit holds."""

    message: Message
    description: int = MAX_DESCRIPTION
    footer: int = MAX_FOOTER
    value: int = MAX_FIELD_VALUE
    name: int = MAX_FIELD_NAME
    facts: int = MAX_FIELDS  # facts kept
    sections: int = MAX_FIELDS  # section fields kept
    row_buttons: int = MAX_BUTTONS  # how many of its rows may carry their button
    page: str = ""  # " (2/3)" on a list split over several messages
    rows_shown: int = 0  # set by _draw: rows whose text (whole or cut) is in the description


def title_line(message: Message, suffix: str = "") -> str:
    emoji = TONE_EMOJI.get(message.tone, "")
    lead = f"{emoji} " if emoji else ""
    body = inline(message.title, MAX_TITLE - units(lead) - units(suffix))
    return lead + body + suffix if body.strip() else ""


def _entries(plan: _Plan) -> list[tuple[Text, Row | None, bool]]:
    """The description's parts in order, each (text, its row, whether it is the message's own): the lines, then
    the rows; where the rows run past the buttons a message holds, a note of ours says so once."""
    message = plan.message
    out = [(line, None, True) for line in message.lines]
    with_button = 0
    for row in message.rows:
        if row.button is not None:
            with_button += 1
            if with_button == plan.row_buttons + 1:
                out.append((text(f"…buttons only for the {plan.row_buttons} above: a Discord message holds "
                                 f"{MAX_BUTTONS} at most"), None, False))
        out.append((row.text, row, True))
    return out


def _description(plan: _Plan) -> str:
    """Lines one under another, rows apart. What does not fit is left out whole and counted ("…and 3 more"); only
    a first or last entry is cut inside, marked "…"."""
    entries, limit = _entries(plan), plan.description
    out, plan.rows_shown = "", 0
    for index, (value, row, _own) in enumerate(entries):
        sep = "" if not out else "\n\n" if row is not None else "\n"
        last = index == len(entries) - 1
        whole = markdown(value, MAX_DESCRIPTION)
        if units(out) + units(sep) + units(whole) <= limit - (0 if last else MORE_RESERVE):
            out += sep + whole
            plan.rows_shown += row is not None
            continue
        room = limit - units(out) - units(sep)
        if (last and room >= MIN_CLIPPED_ENTRY) or not out:  # cut inside: the only thing to show, or the last
            after = _more(entries[index + 1:])
            tail = after if units(after) < room else ""
            out += sep + markdown(value, room - units(tail)) + tail
            plan.rows_shown += row is not None
        elif units(out) + units(_more(entries[index:])) <= limit:
            out += _more(entries[index:])
        break
    return out


def _more(entries: list[tuple[Text, Row | None, bool]]) -> str:
    """How many of the message's own lines and rows were left out."""
    count = sum(1 for entry in entries if entry[2])
    return f"\n…and {count:,} more" if count else ""


def _section_fields(sections: tuple[Section, ...], limit: int) -> list[dict[str, Any]]:
    """Each section as a field under its heading; a long one continues in the next field."""
    fields: list[dict[str, Any]] = []
    for section in sections:
        heading = _filled(inline(section.heading, MAX_FIELD_NAME - 12), "Details")
        name, chunk = heading, ""
        for line in section.lines:
            piece = markdown(line, limit)
            if chunk.strip() and units(chunk) + 1 + units(piece) > limit:
                fields.append({"name": name, "value": chunk, "inline": False})
                name, chunk = f"{heading} (continued)", ""
            chunk = f"{chunk}\n{piece}" if chunk else piece
        if chunk.strip():
            fields.append({"name": name, "value": chunk, "inline": False})
    return fields


def _filled(value: str, fallback: str) -> str:
    """Discord trims a text and refuses it empty: whitespace alone becomes the fallback."""
    return value if value.strip() else fallback


def _draw(plan: _Plan) -> dict[str, Any]:
    message = plan.message
    embed: dict[str, Any] = {"color": COLOURS.get(message.tone, COLOURS[Tone.NEUTRAL])}
    title = title_line(message, plan.page)
    if title.strip():
        embed["title"] = title
    description = _description(plan)
    if description.strip():
        embed["description"] = description
    facts = [{"name": _filled(inline(f.label, plan.name), "—"),
              "value": _filled(markdown(f.value, plan.value), "—"), "inline": True}
             for f in message.facts[:min(plan.facts, MAX_FIELDS - 1)]]
    details = _section_fields(message.sections, plan.value)
    room = MAX_FIELDS - len(facts) - 1  # 1: the field that says something was cut
    kept = details[:max(0, min(plan.sections, room))]
    fields = facts + kept
    if len(kept) < len(details) or len(facts) < len(message.facts):
        fields.append({"name": "…", "value": CUT_NOTE, "inline": False})
    if fields:
        embed["fields"] = fields
    footer = "\n".join(plain_text(line, MAX_FOOTER) for line in message.footer).strip()
    if footer and plan.footer > 0:
        embed["footer"] = {"text": plain(footer, plan.footer)}
    return embed


def embed_size(embed: dict[str, Any]) -> int:
    """What Discord counts toward its 6000 per message: title, description, fields, footer text, author name."""
    size = units(embed.get("title", "")) + units(embed.get("description", ""))
    size += sum(units(f["name"]) + units(f["value"]) for f in embed.get("fields", []))
    size += units(embed.get("footer", {}).get("text", "")) + units(embed.get("author", {}).get("name", ""))
    return size


def _sections_shown(embed: dict[str, Any]) -> int:
    return sum(1 for f in embed.get("fields", []) if not f["inline"] and f["name"] != "…")


def _text_size(embed: dict[str, Any], key: str) -> int:
    return units(embed["footer"]["text"] if key == "footer" else embed.get(key, "")) if key in embed else 0


def _cut_facts(plan: _Plan) -> bool:
    """A fact's value gets shorter, then its label, then the last fact goes."""
    if plan.value > MIN_CLIPPED_ENTRY:
        plan.value = max(MIN_CLIPPED_ENTRY, plan.value // 2)
    elif plan.name > MIN_CLIPPED_ENTRY:
        plan.name = max(MIN_CLIPPED_ENTRY, plan.name // 2)
    elif min(plan.facts, len(plan.message.facts)) > 0:
        plan.facts = min(plan.facts, len(plan.message.facts)) - 1
    else:
        return False
    return True


def _cut(plans: list[_Plan], embeds: list[dict[str, Any]], excess: int) -> bool:
    """One cut, the least needed thing first, the last embed before the first: a detail (section) field, the small
    print, the text down to a floor, the facts, then the rest of the text. False when nothing is left to cut."""
    pairs = list(zip(plans, embeds))[::-1]
    for plan, embed in pairs:
        if _sections_shown(embed):
            plan.sections = _sections_shown(embed) - 1
            return True
    for key, floor in (("footer", 0), ("description", DESCRIPTION_FLOOR)):
        for plan, embed in pairs:
            size = _text_size(embed, key)
            if size > floor:
                setattr(plan, key, max(floor, size - excess - 1))
                return True
    if any(_cut_facts(plan) for plan, _ in pairs):
        return True
    for plan, embed in pairs:
        if _text_size(embed, "description"):
            plan.description = max(0, _text_size(embed, "description") - excess - 1)
            return True
    return False


def _fit(plans: list[_Plan]) -> list[dict[str, Any]]:
    """Draw the embeds, then cut until they hold together; the titles and the buttons always stay."""
    while True:
        embeds = [_draw(p) for p in plans]
        excess = sum(embed_size(e) for e in embeds) - MAX_EMBED_TOTAL
        if excess <= 0:
            return embeds
        if not _cut(plans, embeds, excess):  # titles alone are 10 x 256 at most: never reached
            raise AssertionError("the embeds could not be fitted to Discord's limits")


# -- buttons -------------------------------------------------------------------------------------------------------


def button(item: Button, repeat: int = 1) -> dict[str, Any]:
    return {"type": BUTTON, "style": BUTTON_STYLES.get(item.tone, SECONDARY),
            "label": plain(item.label, MAX_LABEL) or "…", "custom_id": custom_id(item.action, item.value, repeat)}


def components(buttons: list[Button]) -> list[dict[str, Any]]:
    """Action rows of at most 5 buttons; the same action on the same thing twice gets a repeat number."""
    seen: dict[tuple[str, str], int] = {}
    drawn = []
    for item in buttons:
        key = (item.action, item.value)
        seen[key] = seen.get(key, 0) + 1
        drawn.append(button(item, seen[key]))
    return [{"type": ACTION_ROW, "components": drawn[i:i + MAX_ROW_BUTTONS]}
            for i in range(0, len(drawn), MAX_ROW_BUTTONS)]


def _decision_rows(messages: list[Message]) -> int:
    count = sum(len(m.buttons) for m in messages)
    if count > MAX_BUTTONS:
        raise ValueError(f"{count} decision buttons: Discord holds {MAX_BUTTONS}")  # the desk never makes this
    return math.ceil(count / MAX_ROW_BUTTONS)


def _buttons(plans: list[_Plan]) -> list[Button]:
    """The messages' own buttons first (the decision), then the buttons of the rows shown, as room allows."""
    out = [b for p in plans for b in p.message.buttons]
    for plan in plans:
        rows = [r.button for r in plan.message.rows[:plan.rows_shown] if r.button is not None]
        out.extend(rows[:plan.row_buttons])
    return out


def _allot_rows(plans: list[_Plan]) -> None:
    """Share the action rows left after the decision buttons among the rows' buttons, in order."""
    room = (MAX_ACTION_ROWS - _decision_rows([p.message for p in plans])) * MAX_ROW_BUTTONS
    for plan in plans:
        plan.row_buttons = room
        room = max(0, room - sum(1 for r in plan.message.rows if r.button is not None))


# -- payloads ------------------------------------------------------------------------------------------------------


def _mentions(embeds: list[dict[str, Any]]) -> dict[str, Any]:
    """Nothing is parsed from the text; the Discord users the desk named are listed (embeds never ping anyway)."""
    found: list[str] = []
    for embed in embeds:
        texts = [embed.get("description", "")] + [f["value"] for f in embed.get("fields", [])]
        for value in texts:
            found.extend(m for m in _MENTION.findall(value) if m not in found)
    allowed: dict[str, Any] = {"parse": []}
    if found:
        allowed["users"] = found[:MAX_MENTIONED_USERS]
    return allowed


def _payload(notification: str, plans: list[_Plan]) -> dict[str, Any]:
    _allot_rows(plans)
    embeds = _fit(plans)
    content = markdown(text(notification), CONTENT_BUDGET)
    return {"content": content if content.strip() else "", "embeds": embeds,
            "components": components(_buttons(plans)), "allowed_mentions": _mentions(embeds)}


def render(message: Message) -> dict[str, Any]:
    """A create-message or edit-message body, within Discord's limits whatever the message holds."""
    return _payload(message.notification or message.title, [_Plan(message)])


def render_page(page: Page) -> dict[str, Any]:
    """A Page (Slack's App Home; Discord has none) as one message: an embed for each part, in order. A part that is
    only small print joins the part before it."""
    parts: list[Message] = []
    for part in page.parts:
        bare = not (part.title or part.lines or part.rows or part.facts or part.sections or part.buttons)
        if bare and parts:
            parts[-1] = replace(parts[-1], footer=parts[-1].footer + part.footer)
        else:
            parts.append(part)
    emoji = TONE_EMOJI.get(page.tone, "")
    return _payload(f"{emoji} {page.title}" if emoji else page.title, [_Plan(p) for p in parts[:MAX_EMBEDS]])


def _page_size(value: Text) -> int:
    return units(markdown(value, MAX_DESCRIPTION)) + 2


def pages(message: Message) -> list[Message]:
    """The message split so that each part holds every row it lists with its button and no text is cut: the first
    keeps the lines, facts, buttons and details, the last the small print."""
    first_room = (MAX_ACTION_ROWS - _decision_rows([message])) * MAX_ROW_BUTTONS
    chunks: list[tuple[list[Text], list[Row]]] = [([], [])]
    used, buttons = 0, 0
    for kind, value, row in ([("line", line, None) for line in message.lines]
                             + [("row", r.text, r) for r in message.rows]):
        room = first_room if len(chunks) == 1 else MAX_BUTTONS
        needs_button = row is not None and row.button is not None
        size = _page_size(value)
        full = used + size > PAGE_TEXT_BUDGET or (needs_button and buttons >= room)
        if full and (chunks[-1][0] or chunks[-1][1]):
            chunks.append(([], []))
            used, buttons = 0, 0
        (chunks[-1][1] if row is not None else chunks[-1][0]).append(row if row is not None else value)
        used, buttons = used + size, buttons + needs_button
    if len(chunks) == 1:
        return [message]
    out = []
    for index, (lines, rows) in enumerate(chunks):
        first, last = index == 0, index == len(chunks) - 1
        out.append(replace(message, lines=tuple(lines), rows=tuple(rows), facts=message.facts if first else (),
                           buttons=message.buttons if first else (),
                           sections=message.sections if first else (), footer=message.footer if last else (),
                           thread=()))
    return out


def render_pages(message: Message) -> list[dict[str, Any]]:
    """`render` of each part of `pages(message)`: a long list as several messages, "(2/3)" after each title."""
    parts = pages(message)
    if len(parts) == 1:
        return [render(message)]
    return [_payload(part.notification or part.title, [_Plan(part, page=f" ({i}/{len(parts)})")])
            for i, part in enumerate(parts, 1)]


def render_thread(message: Message) -> list[dict[str, Any]]:
    """The messages the front end posts in the message's thread (an error report's details), none of them cut."""
    return [payload for item in message.thread for payload in render_pages(item)]


def confirm_payload(item: Button) -> dict[str, Any]:
    """The ephemeral second step of a button with a Confirm (a LIVE approval): what will happen, in the desk's own
    words, with the confirm button (danger) and Cancel. Both carry only the signal id."""
    if item.confirm is None or item.action != APPROVE_ACTION:
        raise ValueError("only an approval with a Confirm has a second step")
    confirm = item.confirm
    tone = Tone.LIVE if item.tone is Tone.LIVE else Tone.PAPER
    embed = {"title": inline(confirm.title, MAX_TITLE) or "…",
             "description": markdown(text(confirm.body), MAX_DESCRIPTION) or "…", "color": COLOURS[tone]}
    ok = Button(CONFIRM_ACTION, confirm.ok, item.value, Tone.LIVE if tone is Tone.LIVE else Tone.PAPER)
    cancel = Button(CANCEL_ACTION, confirm.cancel, item.value, Tone.NEUTRAL)
    return {"embeds": [embed], "components": components([ok, cancel]), "allowed_mentions": {"parse": []},
            "flags": EPHEMERAL}
