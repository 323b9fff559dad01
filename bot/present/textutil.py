"""Untrusted text made safe to show anywhere: cleaned of controls, clipped without breaking a character.

Lengths are UTF-16 code units (never less than Slack's or Discord's character count), and a cut never
splits an astral character, an emoji sequence, a flag or a combining mark; with `markup` it never leaves
half an entity (`&am…`) or half a `<…>` either. The terminal needs the cleaning too: a market title with
an escape sequence must not drive the operator's terminal.
"""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import SplitResult, urlsplit

ELLIPSIS = "…"

_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ufff9-\ufffb]")
_WHITESPACE = re.compile(r"\s+")
_ZWJ = "\u200d"


def units(text: str) -> int:
    """Length in UTF-16 code units: an emoji outside the BMP counts 2, never less than Slack counts."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def clean(text: object) -> str:
    """Printable text: surrogate halves paired or replaced, CR normalised, controls and bidi overrides dropped."""
    value = "" if text is None else str(text)
    if any("\ud800" <= ch <= "\udfff" for ch in value):
        value = value.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    value = value.replace("\r\n", "\n").replace("\r", "\n").replace("\t", " ")
    return _CONTROL.sub("", value)


def _extends(ch: str) -> bool:
    """Characters that belong to the grapheme before them: cutting before one would break it."""
    cp = ord(ch)
    return (ch == _ZWJ or unicodedata.category(ch) in ("Mn", "Me", "Mc")
            or 0xFE00 <= cp <= 0xFE0F or 0x1F3FB <= cp <= 0x1F3FF
            or 0xE0020 <= cp <= 0xE007F or 0xE0100 <= cp <= 0xE01EF)


def _regional(ch: str) -> bool:
    return 0x1F1E6 <= ord(ch) <= 0x1F1FF


def _grapheme_cut(text: str, cut: int) -> int:
    """Move `cut` left until it does not split an emoji sequence, a flag or a combining mark."""
    while 0 < cut < len(text) and (_extends(text[cut]) or text[cut - 1] == _ZWJ):
        cut -= 1
    if 0 < cut < len(text) and _regional(text[cut]) and _regional(text[cut - 1]):
        run, i = 0, cut - 1
        while i >= 0 and _regional(text[i]):
            run, i = run + 1, i - 1
        if run % 2:
            cut -= 1
    return cut


def clip(text: str, limit: int, *, markup: bool = True) -> str:
    """`text` in at most `limit` UTF-16 units; a cut is marked with "…".

    With `markup` the text is mrkdwn we produced (escaped): a cut never leaves half an entity
    (`&am…`) or half a link or mention (`<https://…`).
    """
    if units(text) <= limit:
        return text
    budget, used, cut = limit - units(ELLIPSIS), 0, 0
    for i, ch in enumerate(text):
        width = 2 if ord(ch) > 0xFFFF else 1
        if used + width > budget:
            break
        used, cut = used + width, i + 1
    head = text[:_grapheme_cut(text, cut)]
    if markup:
        amp = head.rfind("&")
        if amp != -1 and ";" not in head[amp:]:
            head = head[:amp]
        lt = head.rfind("<")
        if lt != -1 and ">" not in head[lt:]:
            head = head[:lt]
    return head.rstrip() + ELLIPSIS


def one_line(raw: object, limit: int | None = None) -> str:
    """Untrusted text on one line: cleaned, whitespace collapsed, clipped (plain: no markup assumed)."""
    value = _WHITESPACE.sub(" ", clean(raw)).strip()
    return clip(value, limit, markup=False) if limit is not None else value


def paragraph(raw: object, limit: int) -> str:
    """Untrusted text that may keep its line breaks: cleaned and clipped."""
    return clip(clean(raw).strip(), limit, markup=False)


def http_url(raw: object, budget: int) -> tuple[str, SplitResult] | None:
    """An http(s) url with a host, cleaned, at most `budget` characters, and its parts; None for anything else
    (another scheme, no host, unparsable). Each renderer then makes it safe for its own link syntax."""
    text = clean(raw).strip()
    if not text or len(text) > budget:
        return None
    try:
        parts = urlsplit(text)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc or not parts.hostname:
        return None
    return text, parts
