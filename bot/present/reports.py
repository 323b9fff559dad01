"""What the desk's background work tells the channel: reconciliation, settlement, stopped orders, a loss halt."""

from __future__ import annotations

from pipeline.desk import OrdersStopped
from pipeline.reconcile import ReconcileReport
from pipeline.settlement import SettlementReport

from . import fmt
from .model import Message, Text, Tone, bold, code, text
from .textutil import one_line, paragraph

LINES_SHOWN = 60


def reconcile_message(report: ReconcileReport) -> Message:
    """Orders reconciliation settled, and the ones a person should look at."""
    lines: list[Text] = []
    for item in report.resolved:
        lines.append(text("Resolved ", code(item.order.client_order_id), f" ({one_line(item.title, 80)}): "
                          f"{item.before.value} → ", bold(item.after.value), f", {fmt.count(item.order.filled)} "
                          f"filled — {one_line(item.note, 200)}"))
    for item in report.unresolved:
        lines.append(text(bold("Unresolved"), " ", code(item.order.client_order_id), f" ({one_line(item.title, 80)}): "
                          f"still {item.before.value} — {one_line(item.note, 200)}"))
    for signal in report.released:
        lines.append(text("Released signal ", code(one_line(signal.id, 40)), f" ({one_line(signal.market.title, 80)}): "
                          f"{one_line(signal.status_reason, 200)}; "
                          + ("nothing sold, the position kept" if signal.is_exit
                             else f"{fmt.usd(signal.reserved)} no longer reserved")))
    for order in report.foreign:
        lines.append(text(bold("Not ours:"), " order ", code(one_line(order.order_id, 80)),
                          f" at {fmt.venue_name(order.venue)} (", code(one_line(order.market_id, 80)),
                          f", {one_line(order.side, 10)}, {fmt.count(order.remaining)} resting) was not placed by this "
                          "desk: not adopted, not cancelled — check it at the venue"))
    for mismatch in report.positions:
        lines.append(text(bold("Position mismatch"), f" {fmt.venue_name(mismatch.venue)} ",
                          code(one_line(mismatch.market_id, 80)), f": {one_line(mismatch.note, 200)}"))
    cancels = report.halt_cancels  # what it did cancel is among the resolved above
    for coid, why in cancels.failed:
        lines.append(text(bold("Could NOT cancel"), " ", code(one_line(coid, 80)), " although the desk is HALTED — "
                          f"{one_line(why, 200)}; check it at the venue"))
    for skipped in report.skipped:
        lines.append(text(bold("Not checked:"), f" could not list {fmt.venue_name(skipped.venue)} {skipped.what} this "
                          f"pass — {one_line(skipped.reason, 200)}"))
    worry = bool(report.unresolved or report.foreign or report.positions or cancels.failed or report.skipped)
    title = (f"Reconciliation: {len(report.resolved)} resolved, {len(report.unresolved)} unresolved of "
             f"{report.checked} live orders checked" +
             (f"; {len(report.positions)} position mismatch(es)" if report.positions else "") +
             (f"; {len(report.released)} approval(s) released" if report.released else "") +
             (f"; {len(report.foreign)} order(s) not placed by this desk" if report.foreign else "") +
             (f"; {len(report.skipped)} check(s) not made" if report.skipped else "") +
             (f"; {len(cancels.cancelled)} cancelled (halted)" if cancels.cancelled else "") +
             (f"; {len(cancels.failed)} could NOT be cancelled" if cancels.failed else ""))
    shown = lines[:LINES_SHOWN] + ([text(f"…and {len(lines) - LINES_SHOWN:,} more")] if len(lines) > LINES_SHOWN
                                   else [])
    return Message(kind="reconcile", tone=Tone.WARNING if worry else Tone.GOOD, title=title,
                   lines=tuple(shown) or (text("Nothing to report."),), notification=title)


def settlement_message(report: SettlementReport) -> Message:
    """Positions closed by their markets' resolution, with realised P&L; paper and live told apart."""
    lines = []
    for item in report.settled:
        p = item.position
        lines.append(text(f"{fmt.mode_tag(p.paper)} {fmt.venue_name(p.venue)} ",
                          bold(one_line(p.title, 80) or "untitled"), " (", code(one_line(p.market_id, 80)), ")",
                          f": {fmt.count(p.contracts)} {fmt.side_word(p.side)} paid {fmt.usd(item.payout)} − cost "
                          f"{fmt.usd(p.cost)} − fees {fmt.usd(p.fees)} = ",
                          bold(fmt.usd(item.pnl, signed=True)),
                          f" — {one_line(item.resolution.detail, 80)}"))
    totals = [f"{'paper' if paper else 'live'} {fmt.usd(report.realized(paper), signed=True)}"
              for paper in (False, True) if any(s.position.paper is paper for s in report.settled)]
    title = f"Settled {fmt.plural(len(report.settled), 'position')}: realised " + ", ".join(totals)
    losing = sum((s.pnl for s in report.settled), 0) < 0
    return Message(kind="settlement", tone=Tone.WARNING if losing else Tone.GOOD, title=title,
                   lines=tuple(lines[:LINES_SHOWN]), notification=title)


def orders_stopped_message(stopped: OrdersStopped) -> Message:
    """Orders to a venue were just stopped (a retired endpoint, an unknown error): loud, once, with what to do."""
    name = fmt.venue_name(stopped.venue)
    venue = one_line(stopped.venue, 20)
    if stopped.recorded:
        held = text(bold("Nothing moved:"), " the refused order traded nothing and holds nothing. "
                    f"{name}'s markets are "
                    "not analysed and its signals cannot be approved until then; the other venue trades on.")
    else:
        held = text(bold("The desk could not record the stop"), f" (its database refused): do not approve {name} "
                    "signals until this is resolved.")
    return Message(
        kind="orders_stopped", tone=Tone.FAILURE, title=f"Orders to {name} STOPPED — its API changed",
        lines=(text(bold("Why:"), f" {paragraph(stopped.reason, 1500)}"), held,
               text(bold("What to do:"), " 1. upgrade oddsdesk to a version that speaks the venue's current API; "
                    "2. run ", code("oddsdesk check --venues"), " until it reports no drift; 3. an approver runs ",
                    code(f"/desk resume {venue}"), ".")),
        footer=(text(code("/desk status"), " shows the stop until it is lifted."),),
        notification=f"Orders to {name} STOPPED — {one_line(stopped.reason, 240)}")


def loss_halt_message(reason: str) -> Message:
    """The daily loss limit pulled the kill switch: loud, and says how to come back."""
    return Message(
        kind="loss_halt", tone=Tone.FAILURE, title="Desk HALTED — daily loss limit",
        lines=(text(paragraph(reason, 2000)),),
        footer=(text("Only reconciliation and settlement run now. An approver can ", code("/desk resume"),
                     "; new entries stay refused for the rest of the day by the limit itself."),),
        notification=f"Desk HALTED: {one_line(reason, 200)}")
