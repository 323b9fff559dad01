"""Parsing helpers shared by the venues' wire modules: numbers and times, with errors that name the field."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

from ..errors import WireFormatError


def parse_decimal(value: Any, field: str, where: str) -> Decimal | None:
    """Decimal(str(x)) for strings and numbers; None when absent; WireFormatError otherwise."""
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int, float, Decimal)):
        raise WireFormatError(f"{where}: field {field!r} is not a number: {value!r}")
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation as e:
        raise WireFormatError(f"{where}: field {field!r} is not a number: {value!r}") from e
    if not number.is_finite():
        raise WireFormatError(f"{where}: field {field!r} is not a finite number: {value!r}")
    return number


def parse_time(value: Any, field: str, where: str) -> datetime:
    """ISO 8601 (with Z or an offset) -> aware UTC; a naive time is taken as UTC."""
    if not isinstance(value, str) or not value:
        raise WireFormatError(f"{where}: field {field!r} is missing or not an ISO 8601 time: {value!r}")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as e:
        raise WireFormatError(f"{where}: field {field!r} is not an ISO 8601 time: {value!r}") from e
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc)
