"""Numbers, prices, times and names as a trader reads them; the same in every chat and the terminal."""

from __future__ import annotations

import math
from datetime import datetime, timezone
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from .textutil import one_line

ONE = Decimal(1)


def finite(value: Any) -> bool:
    try:
        return value is not None and Decimal(value).is_finite()
    except (InvalidOperation, TypeError, ValueError):
        return False


def usd(value: Decimal | int | float | None, signed: bool = False) -> str:
    """Dollars with 2 decimals and thousands separators: $1,234.56, -$3.10, +$13.06 when signed."""
    if not finite(value):
        return "n/a"
    amount = Decimal(value).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    shown = f"${abs(amount):,.2f}"
    if amount < 0:
        return f"-{shown}"
    return f"+{shown}" if signed and amount > 0 else shown


def price(value: Decimal | None) -> str:
    """A contract price with up to 4 decimals and at least 2: $0.44, $0.4223, $0.001."""
    if not finite(value):
        return "n/a"
    shown = f"{Decimal(value).quantize(Decimal('0.0001'), rounding=ROUND_HALF_UP):f}"
    whole, _, frac = shown.partition(".")
    return f"${whole}.{frac.rstrip('0').ljust(2, '0')}"


def _hundredths(value: Decimal | None, unit: str, signed: bool) -> str:
    """value × 100 with one decimal and a unit: 22.3¢, 55.5%; signed shows + on gains."""
    if not finite(value):
        return "n/a"
    scaled = (Decimal(value) * 100).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)
    shown = f"{scaled:.1f}{unit}"
    return f"+{shown}" if signed and scaled > 0 else shown


def cents(value: Decimal | None, signed: bool = False) -> str:
    """A per-contract amount in cents: +22.3¢ (a contract pays $1, so this is also points of probability)."""
    return _hundredths(value, "¢", signed)


def pct(value: Decimal | None, signed: bool = False) -> str:
    """A probability or fraction as a percentage with 1 decimal: 55.5%, +11.6% when signed."""
    return _hundredths(value, "%", signed)


def count(value: Decimal | int | None) -> str:
    """Contracts: whole numbers with separators (1,130), fractions as needed (12.5)."""
    if not finite(value):
        return "n/a"
    number = Decimal(value)
    if number == number.to_integral_value():
        return f"{int(number):,}"
    return f"{number.normalize():,f}"


def plural(n: int, word: str, many: str | None = None) -> str:
    return f"{n:,} {word if n == 1 else (many or word + 's')}"


def as_utc(moment: datetime) -> datetime:
    return moment.astimezone(timezone.utc) if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


def utc(moment: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    if moment is None:
        return "n/a"
    return f"{as_utc(moment).strftime(fmt)} UTC"


def clock(moment: datetime | None) -> str:
    """22:41 UTC"""
    return utc(moment, "%H:%M")


def day_and_time(moment: datetime | None) -> str:
    """Dec 6 22:41 UTC"""
    if moment is None:
        return "n/a"
    at = as_utc(moment)
    return f"{at.strftime('%b')} {at.day} {at.strftime('%H:%M')} UTC"


def duration(seconds: float) -> str:
    """3 min, 2 h 5 min, 4 days: rounded up to the minute so "in 0 min" never shows for a live deadline."""
    minutes = max(0, math.ceil(seconds / 60))
    if minutes < 60:
        return f"{minutes} min"
    hours, rest = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h" + (f" {rest} min" if rest else "")
    return plural(round(minutes / 1440), "day")


def countdown(moment: datetime | None, now: datetime) -> str:
    """in 12 min / 3 min ago"""
    if moment is None:
        return "n/a"
    seconds = (as_utc(moment) - as_utc(now)).total_seconds()
    return f"in {duration(seconds)}" if seconds > 0 else f"{duration(-seconds)} ago"


def short_id(value: str, keep: int = 14) -> str:
    """An id short enough for a phone line: 0x3f9a1c…e4b2 (both ends, so it can still be searched)."""
    value = one_line(value)
    if len(value) <= keep + 4:
        return value
    head = keep - 6
    return f"{value[:head]}…{value[-6:]}"


VENUE_NAMES = {"kalshi": "Kalshi", "polymarket": "Polymarket"}


def venue_name(venue: object) -> str:
    value = str(getattr(venue, "value", venue))
    return VENUE_NAMES.get(value, one_line(value, 40))


def mode_tag(dry_run: bool) -> str:
    return "DRY-RUN" if dry_run else "LIVE"


def side_word(side: object) -> str:
    return str(getattr(side, "value", side)).upper()


def other_side(probability: Decimal | None) -> Decimal | None:
    return None if probability is None else ONE - probability
