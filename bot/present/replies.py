"""Short replies to one person: usage, a started cycle, a failure after the ack. Words typed by the user are
quoted back as text (a renderer escapes them), never as markup."""

from __future__ import annotations

from .model import Text, code, text
from .textutil import one_line

SCAN_USAGE = "/scan [kalshi|polymarket|all] [limit N]"
DESK_USAGE = ("/desk status | positions | balance | record | close <number|ticker|all> | pause | "
              "resume [kalshi|polymarket] | halt | help")


def scan_not_understood(word: str) -> Text:
    return text("I don't understand ", code(one_line(word, 60)), ". Usage: ", code(SCAN_USAGE),
                " (limit between 1 and 500)")


def desk_not_understood(sub: str) -> Text:
    return text("I don't know ", code(f"/desk {one_line(sub, 60)}"), ". Usage: ", code(DESK_USAGE))


def scan_started() -> Text:
    return text("Starting a cycle; progress follows in the channel.")


def cycle_refused(reason: str) -> Text:
    return text(one_line(reason, 2500))


def cycle_failed() -> Text:
    return text("The cycle failed; see the logs for details. Any signal it made that could not be shown was "
                "withdrawn.")


def read_failed(what: str, error_kind: str) -> Text:
    return text(f"Could not read the desk's {one_line(what, 20)} just now ({one_line(error_kind, 60)}); "
                "try again in a moment.")
