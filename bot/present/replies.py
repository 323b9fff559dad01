"""Short replies to one person: usage, a started cycle, a failure after the ack. Words typed by the user are
quoted back as text (a renderer escapes them), never as markup."""

from __future__ import annotations

from collections.abc import Sequence

from pipeline.desk import Decision

from . import fmt
from .model import Message, Text, Tone, bold, code, text
from .outcomes import refusal
from .signals import bold_link, exit_sentence, market_name
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


def close_reply(results: Sequence[tuple[Decision, str]], *, in_channel: bool = True) -> Message:
    """The answer to `/desk close` or a Close button, for the person who asked: each exit proposed (posted in the
    desk's channel for an approver), each one that could not be shown, and each refusal with its reason.
    `results` pairs each of the desk's answers with why its proposal could not be shown ("" when it was).
    `in_channel` False: the terminal, which asks about each exit itself instead of posting it."""
    lines: list[Text] = []
    shown = unshown = refused = 0
    for decision, problem in results:
        signal = decision.signal
        if not (decision.ok and signal is not None and signal.exit is not None):
            if not decision.ok:
                refused += 1
                lines.append(text(bold("Not proposed:"), " ", refusal(decision)))
            else:
                lines.append(text(one_line(decision.message, 600)))
            continue
        named = text(bold(f"#{signal.exit.position_id}"), " ", bold_link(signal.market.url, market_name(signal, 120)))
        if problem:
            unshown += 1
            lines.append(text(named, f": proposed but not shown, so withdrawn — {one_line(problem, 600)}. Nothing "
                                     "was sold; try again in a moment."))
        else:
            shown += 1
            lines.append(text(named, f": {exit_sentence(signal)}", " — posted in the desk's channel for an approver's "
                              "Sell." if in_channel else "."))
    if shown:
        title = f"{fmt.plural(shown, 'exit')} proposed" + (" in the desk's channel" if in_channel else "")
        missed = [f"{unshown:,} not shown"] * bool(unshown) + [f"{refused:,} refused"] * bool(refused)
        if missed:
            title += "; " + ", ".join(missed)
    elif refused or unshown:
        title = "No exit proposed"
    else:
        title = "Nothing to close"
    tone = (Tone.GOOD if shown and not (refused or unshown) else Tone.WARNING if shown else
            Tone.FAILURE if unshown else Tone.NEUTRAL)
    return Message(kind="close", tone=tone, title=title, lines=tuple(lines) or (text("Nothing was proposed."),),
                   notification=title)


def close_failed(error_kind: str) -> Text:
    return text(f"Closing failed ({one_line(error_kind, 60)}); nothing was proposed that is not in the channel. "
                "`/desk positions` shows what is held and any exit pending.")
