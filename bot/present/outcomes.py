"""What happened to a signal, said first: the result replaces the proposal on the signal's own message.

One word for each state, everywhere: filled, partly filled, resting, cancelled, not placed, unknown,
rejected, expired (and, in dry-run, a paper fill). Who decided and when come next, the ids last and short.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from pipeline.desk import Decision
from pipeline.models import Order, OrderResult, OrderStatus, SignalStatus, TradeSignal
from pipeline.reconcile import ReconciledOrder

from . import fmt
from .model import Fact, Message, Text, Tone, bold, code, text, when
from .people import SYSTEM_ACTORS, actor  # noqa: F401 (re-exported)
from .signals import basis_of, market_line, market_name, position_label, proposed_line
from .textutil import one_line

# What to do after a venue refused an order, by what its reason says (lower case, substring).
ADVICE = (
    ("balance", "Add funds at {venue}, or lower trading.initial_bankroll to what the account holds; then run a new "
                "cycle."),
    ("closed", "The market is closed; there is nothing to do."),
    ("price", "The book moved past the limit; a new cycle prices it afresh."),
)
DEFAULT_ADVICE = ("Nothing to undo. A new cycle can propose this market again; if orders keep failing, "
                  "check `/desk status` and the venue.")
# The same after an exit was not sold: the position is still held, and a fresh close prices it again.
EXIT_ADVICE = (
    ("closed", "The market is closed; the position settles when it resolves."),
    ("price", "The bids moved below the limit; `/desk close {position}` prices a fresh exit."),
    ("bid", "The bids moved below the limit; `/desk close {position}` prices a fresh exit."),
)
EXIT_DEFAULT_ADVICE = "Nothing to undo: the position is kept. `/desk close {position}` proposes a fresh exit."


def decided_line(verb: str, label: str, at: datetime | None) -> Text:
    line = text(f"{verb} by ", actor(label))
    if at is not None:
        line = text(line, " at ", when(at, fmt.clock(at)))
    return text(line, ".")


def _shown(order: Order | None, result: OrderResult | None) -> tuple[Decimal, Decimal | None, Decimal, Decimal]:
    """(filled, average price, cost, fees) as the stored order row shows them, else the raw reply."""
    if order is not None:
        cost = (order.average_price or Decimal(0)) * order.filled
        return order.filled, order.average_price, cost, order.fees
    if result is not None:
        average = result.cost / result.filled if result.filled else None
        return result.filled, average, result.cost, result.fees
    return Decimal(0), None, Decimal(0), Decimal(0)


def result_title(signal: TradeSignal, status: SignalStatus, order: Order | None, result: OrderResult | None,
                 code_: str = "") -> tuple[Tone, str]:
    """(tone, the result in one line) for a signal whose decision is known."""
    if signal.is_exit:
        return exit_result_title(signal, status, order, result, code_)
    side = fmt.side_word(signal.side)
    filled, average, cost, fees = _shown(order, result)
    spent = fmt.usd(cost + fees)
    order_status = order.status if order is not None else (result.status if result is not None else None)
    if code_ == "simulated" or status is SignalStatus.SIMULATED:
        if filled <= 0:
            return Tone.WARNING, "Paper order would not have filled — the book moved; no money moved"
        part = "" if filled >= signal.contracts else f" of {fmt.count(signal.contracts)}"
        return Tone.GOOD, (f"Paper fill: {fmt.count(filled)}{part} {side} at {fmt.price(average)} — {spent} · "
                           "no money moved")
    if status is SignalStatus.REJECTED:
        return Tone.NEUTRAL, f"Rejected — not traded, {fmt.usd(signal.reserved)} released"
    if status is SignalStatus.EXPIRED:
        return Tone.NEUTRAL, f"Expired — not traded, {fmt.usd(signal.reserved)} released"
    if order_status is OrderStatus.CANCELED and filled <= 0:  # it reached the venue: "not placed" would be wrong
        return Tone.FAILURE, "Cancelled — nothing filled, no money moved, nothing held"
    if status is SignalStatus.FAILED or code_ in ("failed", "desk_stopped"):
        return Tone.FAILURE, "Not placed — no money moved, nothing held"
    if status is SignalStatus.UNKNOWN or code_ == "unknown":
        return Tone.WARNING, f"Outcome unknown — checking with {fmt.venue_name(signal.market.venue)}"
    if status is SignalStatus.FILLED or order_status is OrderStatus.FILLED:
        return Tone.GOOD, f"Filled {fmt.count(filled)} {side} at {fmt.price(average)} — {spent}"
    if status is SignalStatus.PARTIALLY_FILLED or order_status in (OrderStatus.PARTIALLY_FILLED,
                                                                    OrderStatus.CANCELED):
        return Tone.WARNING, (f"Partly filled: {fmt.count(filled)} of {fmt.count(signal.contracts)} {side} at "
                              f"{fmt.price(average)} — {spent}; the rest cancelled")
    if status is SignalStatus.PLACED:
        return Tone.BUSY, (f"Resting: {fmt.count(signal.contracts)} {side} at {fmt.price(signal.limit_price)} on "
                           f"{fmt.venue_name(signal.market.venue)}, {fmt.count(filled)} filled so far")
    return Tone.NEUTRAL, one_line(status.value.replace("_", " "), 40).capitalize()


def realized(signal: TradeSignal, filled: Decimal, received: Decimal, fees: Decimal) -> Decimal:
    """What an exit's fills booked: received less fees less what the contracts sold cost (their share of the basis),
    as the store books it at average cost."""
    return received - fees - basis_of(signal, filled)


def sold_words(signal: TradeSignal, filled: Decimal, average: Decimal | None, received: Decimal, fees: Decimal
               ) -> str:
    """"120 YES at avg $0.6133: received $73.60 − $2.00 fees; realised +$19.15" """
    part = "" if filled >= signal.contracts else f" of {fmt.count(signal.contracts)}"
    return (f"{fmt.count(filled)}{part} {fmt.side_word(signal.side)} at avg {fmt.price(average)}: received "
            f"{fmt.usd(received)} − {fmt.usd(fees)} fees; realised "
            f"{fmt.usd(realized(signal, filled, received, fees), signed=True)}")


def exit_result_title(signal: TradeSignal, status: SignalStatus, order: Order | None, result: OrderResult | None,
                      code_: str = "") -> tuple[Tone, str]:
    """(tone, the result in one line) for an exit: what was sold and the P&L it booked, or that nothing was."""
    filled, average, received, fees = _shown(order, result)
    order_status = order.status if order is not None else (result.status if result is not None else None)
    if code_ == "simulated" or status is SignalStatus.SIMULATED:
        if filled <= 0:
            return Tone.WARNING, "Paper sale would not have filled — the bids moved; the position is kept"
        rest = "" if filled >= signal.contracts else f"; {fmt.count(signal.contracts - filled)} would not have sold"
        return Tone.GOOD, f"Would have sold {sold_words(signal, filled, average, received, fees)}{rest}"
    if status is SignalStatus.REJECTED:
        return Tone.NEUTRAL, "Kept — rejected, nothing sold"
    if status is SignalStatus.EXPIRED:
        return Tone.NEUTRAL, "Expired — nothing sold, the position is kept"
    if order_status is OrderStatus.CANCELED and filled <= 0:
        return Tone.FAILURE, "Cancelled — nothing sold; the position is kept"
    if status is SignalStatus.FAILED or code_ in ("failed", "desk_stopped"):
        return Tone.FAILURE, "Nothing sold; the position is kept"
    if status is SignalStatus.UNKNOWN or code_ == "unknown":
        return Tone.WARNING, f"Outcome unknown — checking with {fmt.venue_name(signal.market.venue)}"
    if status is SignalStatus.FILLED or order_status is OrderStatus.FILLED:
        return Tone.GOOD, f"Sold {sold_words(signal, filled, average, received, fees)}"
    if status is SignalStatus.PARTIALLY_FILLED or order_status in (OrderStatus.PARTIALLY_FILLED,
                                                                    OrderStatus.CANCELED):
        return Tone.WARNING, (f"Sold {sold_words(signal, filled, average, received, fees)}; "
                              f"{fmt.count(signal.contracts - filled)} not sold")
    if status is SignalStatus.PLACED:
        return Tone.BUSY, (f"Resting: sell {fmt.count(signal.contracts)} {fmt.side_word(signal.side)} at "
                           f"{fmt.price(signal.limit_price)} or better on {fmt.venue_name(signal.market.venue)}, "
                           f"{fmt.count(filled)} sold so far")
    return Tone.NEUTRAL, one_line(status.value.replace("_", " "), 40).capitalize()


def exit_order_facts(signal: TradeSignal, filled: Decimal, average: Decimal | None, received: Decimal,
                     fees: Decimal, contracts: Decimal) -> tuple[Fact, ...]:
    booked = realized(signal, filled, received, fees)
    return (
        Fact("Sold", text(f"{fmt.count(filled)} of {fmt.count(contracts)} {fmt.side_word(signal.side)}")),
        Fact("Average price", text(fmt.price(average) if average is not None else "n/a")),
        Fact("Received", text(f"{fmt.usd(received)} − {fmt.usd(fees)} fees = ", bold(fmt.usd(received - fees)))),
        Fact("Realised P&L", text(bold(fmt.usd(booked, signed=True)),
                                  f"\nthose contracts cost {fmt.usd(basis_of(signal, filled))} with fees")),
    )


def order_facts(signal: TradeSignal, order: Order | None, result: OrderResult | None) -> tuple[Fact, ...]:
    if order is None and result is None:
        return ()
    filled, average, cost, fees = _shown(order, result)
    if filled <= 0:  # nothing to show but zeros: the title already says nothing moved
        return ()
    if signal.is_exit:
        return exit_order_facts(signal, filled, average, cost, fees,
                                order.contracts if order is not None else signal.contracts)
    contracts = order.contracts if order is not None else signal.contracts
    facts = [
        Fact("Filled", text(f"{fmt.count(filled)} of {fmt.count(contracts)} {fmt.side_word(signal.side)}")),
        Fact("Average price", text(fmt.price(average) if average is not None else "n/a")),
        Fact("Cost", text(f"{fmt.usd(cost)} + {fmt.usd(fees)} fees")),
    ]
    return tuple(facts)


def held_line(signal: TradeSignal, order: Order | None, result: OrderResult | None) -> Text | None:
    filled, _, cost, fees = _shown(order, result)
    if filled <= 0:
        return None
    paper = " (paper)" if signal.dry_run else ""
    if signal.is_exit and signal.exit is not None:
        left = signal.exit.held - filled
        if left <= 0:
            return text(bold(f"Position {position_label(signal)} closed{paper}:"),
                        f" all {fmt.count(signal.exit.held)} {fmt.side_word(signal.side)} sold.")
        return text(bold(f"Position {position_label(signal)}{paper}:"),
                    f" {fmt.count(left)} {fmt.side_word(signal.side)} still held.")
    return text(f"Held{paper}: {fmt.count(filled)} {fmt.side_word(signal.side)} — pays ",
                bold(fmt.usd(filled)), " if it resolves ", fmt.side_word(signal.side), "; most you can lose ",
                bold(fmt.usd(cost + fees)), ".")


def unsold_line(signal: TradeSignal) -> Text:
    number = position_label(signal).lstrip("#")
    return text("What the bids did not take is still held; ", code(f"/desk close {number}"),
                " proposes a fresh exit for it.")


def venue_reason(order: Order | None, result: OrderResult | None) -> str:
    return one_line((order.reason if order is not None else "") or (result.reason if result is not None else ""), 500)


def failure_lines(signal: TradeSignal, decision_message: str, reason: str, *, refused: bool) -> tuple[Text, ...]:
    """Why the order did not happen, once, and what to do; "refused" only when the venue refused it."""
    venue = fmt.venue_name(signal.market.venue)
    why = reason or one_line(decision_message, 500) or "no reason given"
    advice_list, fallback = (EXIT_ADVICE, EXIT_DEFAULT_ADVICE) if signal.is_exit else (ADVICE, DEFAULT_ADVICE)
    advice = next((a for key, a in advice_list if key in why.lower()), fallback).format(
        venue=venue, position=position_label(signal).lstrip("#"))
    if why.lower().startswith(venue.lower()):
        said = text(why)
    else:
        said = text(bold(f"{venue} refused the order:" if refused else "Why:"), f" {why}")
    return (said, text(bold("What to do:"), f" {advice}"))


def _refused(order: Order | None, result: OrderResult | None) -> bool:
    status = order.status if order is not None else (result.status if result is not None else None)
    return status is not OrderStatus.CANCELED


def ids_footer(signal: TradeSignal, order: Order | None, result: OrderResult | None) -> Text:
    """Our ids short (they only need to be told apart); the venue's order id whole, last, to look it up there."""
    venue_id = (order.venue_order_id if order is not None else "") or (result.venue_order_id if result else "")
    line = text("signal ", code(fmt.short_id(signal.id)))
    if order is not None or result is not None:
        line = text(line, " · client order ", code(fmt.short_id(signal.client_order_id)))
    if venue_id:
        line = text(line, f" · {fmt.venue_name(signal.market.venue)} order ", code(one_line(venue_id, 120)))
    return line


def signal_outcome(signal: TradeSignal, decision: Decision, actor_label: str, now: datetime) -> Message:
    """The signal's message right after an Approve or Reject changed it."""
    current = decision.signal or signal
    outcome = decision.outcome
    order = outcome.order if outcome is not None else None
    result = outcome.result if outcome is not None else None
    tone, said = result_title(current, current.status, order, result, decision.code)
    verb = "Rejected" if current.status is SignalStatus.REJECTED else "Approved"
    lines: list[Text] = [market_line(current, now)]
    if tone is Tone.FAILURE:
        if decision.code == "desk_stopped":
            lines.append(text(bold("Not sent:"), f" {one_line(decision.message, 600)}"))
        else:
            lines.extend(failure_lines(current, decision.message.removeprefix("Order failed: "),
                                       venue_reason(order, result), refused=_refused(order, result)))
    else:
        held = held_line(current, order, result)
        if held is not None:
            lines.append(held)
        if tone is Tone.WARNING and current.is_exit and decision.code in ("executed", "simulated"):
            lines.append(unsold_line(current))  # the title said what sold; this says what to do with the rest
        elif tone is Tone.WARNING and decision.message:
            lines.append(text(one_line(decision.message, 600)))
    lines.append(decided_line(verb, actor_label, now))
    return Message(
        kind="outcome", tone=tone, title=f"{fmt.mode_tag(current.dry_run)} · {said}",
        lines=tuple(lines), facts=order_facts(current, order, result),
        footer=(proposed_line(current), ids_footer(current, order, result)),
        notification=f"{fmt.mode_tag(current.dry_run)}: {said} · {market_name(current, 80)}",
    )


def signal_expired(signal: TradeSignal, now: datetime) -> Message:
    """Nobody decided in time: the buttons go, the capital is released."""
    _, said = result_title(signal, SignalStatus.EXPIRED, None, None)
    return Message(
        kind="expired", tone=Tone.NEUTRAL, title=f"{fmt.mode_tag(signal.dry_run)} · {said}",
        lines=(market_line(signal, now),
               text("Nobody decided by ", when(signal.expires_at, fmt.clock(signal.expires_at)), ".")),
        footer=(proposed_line(signal), ids_footer(signal, None, None)),
        notification=f"{fmt.mode_tag(signal.dry_run)}: {said} · {market_name(signal, 80)}",
    )


def signal_reconciled(item: ReconciledOrder, decided_by: str, decided_at: datetime | None, now: datetime
                      ) -> Message:
    """The signal's message once reconciliation learnt its order's outcome (its Approve reply may never have come)."""
    signal = item.signal
    assert signal is not None
    tone, said = result_title(signal, signal.status, item.order, None)
    lines: list[Text] = [market_line(signal, now)]
    if tone is Tone.FAILURE:
        lines.extend(failure_lines(signal, item.note, venue_reason(item.order, None),
                                   refused=_refused(item.order, None)))
    else:
        held = held_line(signal, item.order, None)
        if held is not None:
            lines.append(held)
    lines.append(text(bold(f"Reconciled with {fmt.venue_name(item.order.venue)}:"), f" {one_line(item.note, 500)}"))
    lines.append(decided_line("Approved", decided_by, decided_at))
    return Message(
        kind="reconciled", tone=tone, title=f"{fmt.mode_tag(signal.dry_run)} · {said}",
        lines=tuple(lines), facts=order_facts(signal, item.order, None),
        footer=(proposed_line(signal), ids_footer(signal, item.order, None)),
        notification=f"{fmt.mode_tag(signal.dry_run)}: {said} (reconciled) · {market_name(signal, 80)}",
    )


# -- replies to one person ----------------------------------------------------------------------------------

DECIDED_VERBS = {
    SignalStatus.REJECTED: "rejected",
    SignalStatus.EXPIRED: "expired",
}


def refusal(decision: Decision) -> Text:
    """An ephemeral reply: the market it is about first, then the sentence; a decided signal names who and when."""
    signal = decision.signal
    if decision.code == "already_decided" and signal is not None:
        by = decision.details.get("decided_by", "")
        at = _parse_time(decision.details.get("decided_at", ""))
        state = signal.status.value.replace("_", " ")
        line = text(bold(market_name(signal, 120)), f": already {state}")
        if signal.status is SignalStatus.EXPIRED:
            return text(line, " — nobody decided by ", when(signal.expires_at, fmt.clock(signal.expires_at)),
                        ". Nothing was traded.")
        verb = DECIDED_VERBS.get(signal.status, "approved")
        line = text(line, f" — {verb}")
        if at is not None:
            line = text(line, " at ", when(at, fmt.clock(at)))
        if by:
            line = text(line, " by ", actor(by))
        return text(line, ".")
    sentence = one_line(decision.message or decision.code or "Refused.", 2500) or "Refused."
    if signal is not None and decision.code not in ("not_found",):
        return text(bold(market_name(signal, 120)), f": {sentence}")
    return text(sentence)


def _parse_time(value: str) -> datetime | None:
    try:
        return datetime.fromisoformat(value) if value else None
    except ValueError:
        return None
