"""The presentation layer's text as Discord markdown: every untrusted string escaped, every cut well-formed.

Discord renders a subset of markdown in a message's content, an embed's description and field values (all of it),
and in an embed's title and field names (inline styles only); footers, author names and button labels are plain
text. Text from outside (market titles, rules, model reasoning, error messages, venue ids) must never become
markup there, so a plain span is escaped with backslashes (`\\*`, `\\_`, `\\[`, `\\<`…), a heading, quote or list
marker at the start of a line is escaped too, `@` is followed by a zero-width space so `@everyone`, `@here` and
`<@…>` are never mentions, and a URL's `scheme:` is escaped so it is not turned into a link. Only the desk's own
styles are markup: bold, inline code, masked links to http(s) urls, mentions of Discord users the desk knows, and
`<t:…>` times that Discord shows in the reader's own zone.

Lengths are UTF-16 code units (`textutil.units`), never less than Discord's count. A cut never splits an escape, a
style, a link, a mention, a character or a grapheme, and ends with "…".
"""

from __future__ import annotations

import re
from collections.abc import Callable
from urllib.parse import quote

from ..present import fmt
from ..present.model import Span, Style, Text
from ..present.textutil import ELLIPSIS, _grapheme_cut, _WHITESPACE, clean, http_url, units

ZWSP = "\u200b"  # breaks mention and markup syntax without showing
DISCORD_ACTOR = "discord:"  # how a Discord front end names a person to the desk: "discord:<user id>"
URL_BUDGET = 512
LABEL_BUDGET = 600  # escaped: a 200-character name can take three times that

_INLINE = re.compile(r"([\\*_~`|\[\]<>])")  # inline markup, mention/emoji/timestamp openers and masked links
_SCHEME = re.compile(r":(?=//)")  # https://x autolinks; https\://x does not
_INVITE = re.compile(r"(?i)\b(discord(?:app)?)\.(gg|com|me|io|li)/")  # invite links unfurl even without a scheme
_AT = re.compile(r"@(?=\S)")
_MARKER = re.compile(r"^(\s*)(?:([#\-+])|(\d+)([.)]))")  # heading, subtext (-#), list, numbered list
_SNOWFLAKE = re.compile(r"[1-9]\d{16,19}")
_SLACK_USER = re.compile(r"[UW][A-Z0-9]{2,30}")
_CLOCK = re.compile(r"\d{2}:\d{2} UTC")
_CLOCK_SECONDS = re.compile(r"\d{2}:\d{2}:\d{2} UTC")


# -- untrusted text -----------------------------------------------------------------------------------------


def _marker(line: str) -> str:
    """A line that would start a heading, subtext, quote or list shows its first character instead."""
    match = _MARKER.match(line)
    if not match:
        return line
    lead = match.group(1)
    if match.group(2):
        return f"{lead}\\{line[len(lead):]}"
    digits_end = match.end(3)
    return f"{line[:digits_end]}\\{line[digits_end:]}"


def escape(raw: object, *, line_start: bool = False) -> str:
    """Untrusted text that Discord shows as written. `line_start`: it begins a line (a marker there is markup)."""
    text = _INLINE.sub(r"\\\1", clean(raw))
    text = _INVITE.sub(r"\1\\.\2/", _SCHEME.sub(r"\\:", text))
    text = _AT.sub("@" + ZWSP, text)
    lines = text.split("\n")
    return "\n".join(_marker(line) if i or line_start else line for i, line in enumerate(lines))


def one_line(raw: object) -> str:
    return _WHITESPACE.sub(" ", clean(raw)).strip()


def inline(raw: object, limit: int) -> str:
    """One line of untrusted text where only inline styles render (an embed title, a field name)."""
    return fit(one_line(raw), limit, lambda part: escape(part, line_start=True))


def plain(raw: object, limit: int) -> str:
    """Untrusted text where Discord renders no markup (a footer, a button label): cleaned and clipped only."""
    return fit(clean(raw).strip(), limit, lambda part: part)


def fit(raw: str, limit: int, draw: Callable[[str], str]) -> str:
    """`draw(raw)`, or `draw` of the longest prefix of `raw` that fits with "…" after it: markup is never split."""
    whole = draw(raw)
    if units(whole) <= limit:
        return whole
    low, high = 0, len(raw)
    while low < high:  # the longest prefix whose drawing fits; a drawing only grows with its prefix
        mid = (low + high + 1) // 2
        if units(draw(_prefix(raw, mid))) + units(ELLIPSIS) <= limit:
            low = mid
        else:
            high = mid - 1
    head = draw(_prefix(raw, low)) if low else ""
    return head + ELLIPSIS if units(ELLIPSIS) <= limit else ""


def _prefix(raw: str, cut: int) -> str:
    return raw[:_grapheme_cut(raw, cut)].rstrip()


# -- people, times, links --------------------------------------------------------------------------------------


def discord_user(label: str) -> str | None:
    """The Discord user id in an actor label the Discord front end gave the desk ("discord:<id>"), else None."""
    if label.startswith(DISCORD_ACTOR) and _SNOWFLAKE.fullmatch(label[len(DISCORD_ACTOR):]):
        return label[len(DISCORD_ACTOR):]
    return None


def actor_words(label: str) -> str:
    """A person where no mention can be drawn. A Slack id means nothing on Discord (no name, no mention): it is said
    to be a Slack user, so a reader knows the decision came from the desk's other front end and can look them up."""
    label = one_line(label)
    user_id = discord_user(label)
    if user_id:
        return f"Discord user {user_id}"
    if _SLACK_USER.fullmatch(label):
        return f"Slack user {label}"
    return plain(label, 80) or "someone"


def time_style(fallback: str) -> str:
    """The `<t:…>` style that says what the desk's own words said: a clock time, with seconds, or a day and time."""
    shown = fallback.strip()
    if _CLOCK.fullmatch(shown):
        return "t"
    if _CLOCK_SECONDS.fullmatch(shown):
        return "T"
    return "f"


def safe_url(url: object) -> str | None:
    """An http(s) url fit for `[label](url)`: no user part, and nothing that could end the link or start markup."""
    found = http_url(url, URL_BUDGET)
    if found is None or "@" in found[1].netloc:
        return None
    quoted = quote(found[0], safe=";/?:=&$-_.+!*',%#~")  # ( ) [ ] < > | ` \ " space and the rest percent-encoded
    return quoted if len(quoted) <= URL_BUDGET else None


# -- spans ----------------------------------------------------------------------------------------------------


def _bold(inner: str) -> str:
    core = inner.strip()
    if not core:
        return inner
    start = inner.index(core)
    return f"{inner[:start]}**{core}**{inner[start + len(core):]}"


def _code(raw: str) -> str:
    body = _AT.sub("@" + ZWSP, one_line(raw).replace("`", "'"))  # nothing escapes inside code: no backtick at all
    if body.endswith("\\"):  # `a\` is code to Discord, but a parser that reads \` as an escape would run on
        body += " "
    return f"`{body or '?'}`"


def _drawers(item: Span, line_start: bool) -> list[tuple[str, Callable[[str], str]]]:
    """Ways to draw a span, best first: (raw text, drawing). A cut uses the last, which can always be shortened."""
    if item.style is Style.BOLD:
        return [(item.text, lambda raw: _bold(escape(raw)))]
    if item.style is Style.CODE:
        return [(item.text, _code)]
    if item.style is Style.LINK:
        label = one_line(item.text) or "(untitled)"
        bold_label = (label, lambda raw: _bold(escape(raw)))
        target = safe_url(item.url)
        if target is None:
            return [bold_label]
        shown = fit(label, LABEL_BUDGET, escape)
        return [(label, lambda _raw: f"**[{shown}]({target})**"), bold_label]
    if item.style is Style.USER:
        user_id = discord_user(one_line(item.text))
        words = (actor_words(item.text), lambda raw: escape(raw))
        return [(item.text, lambda _raw: f"<@{user_id}>"), words] if user_id else [words]
    if item.style is Style.TIME and item.at is not None:
        stamp = int(fmt.as_utc(item.at).timestamp())
        words = (item.text, lambda raw: escape(raw, line_start=line_start))
        return [(item.text, lambda _raw: f"<t:{stamp}:{time_style(item.text)}>"), words]
    return [(item.text, lambda raw: escape(raw, line_start=line_start))]


def _merged(value: Text) -> list[Span]:
    """Adjacent bold spans as one: `**a****b**` is not two bold words in Discord."""
    out: list[Span] = []
    for item in value:
        if out and item.style is Style.BOLD and out[-1].style is Style.BOLD:
            out[-1] = Span(out[-1].text + item.text, Style.BOLD)
        else:
            out.append(item)
    return out


def _join(head: str, piece: str) -> str:
    """Markup that would run into the next piece's (`**` then `*`, a backtick then a backtick) is kept apart."""
    if head and piece and head[-1] in "*`" and piece[0] == head[-1]:
        return head + ZWSP + piece
    return head + piece


def markdown(value: Text, limit: int, *, line_start: bool = True) -> str:
    """A text as Discord markdown in at most `limit` units; a cut ends with "…" and leaves no markup open."""
    if limit < units(ELLIPSIS):
        return ""
    out = ""
    spans = _merged(value)
    for index, item in enumerate(spans):
        at_start = (not out and line_start) or out.endswith("\n")
        drawers = _drawers(item, at_start)
        raw, draw = drawers[0]
        joined = _join(out, draw(raw))
        room = limit if index == len(spans) - 1 else limit - units(ELLIPSIS)  # a later cut needs room for "…"
        if units(joined) <= room:
            out = joined
            continue
        raw, draw = drawers[-1]  # the shortest drawing (a link's bare label), cut to what is left
        budget = limit - units(out) - 1 - units(ELLIPSIS)  # 1: the zero-width space a joint may need
        cut = fit(raw, budget, draw) if budget > 0 else ""
        if not cut:  # what came before was kept within limit - 1, so "…" always fits after it
            return out.rstrip() + ELLIPSIS
        return _join(out, cut) + ("" if cut.endswith(ELLIPSIS) else ELLIPSIS)
    return out


def plain_text(value: Text, limit: int) -> str:
    """A text where Discord renders no markup (an embed footer): links show their label, people their words."""
    parts = []
    for item in value:
        if item.style is Style.USER:
            parts.append(actor_words(item.text))
        else:
            parts.append(clean(item.text))
    return plain("".join(parts), limit)
