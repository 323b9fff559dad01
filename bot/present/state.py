"""The desk at a glance: status, balance, positions, help and the App Home.

Money is labelled for what it is: the desk's bankroll (the configured bankroll plus realised P&L in this
mode) is not the venue's cash, which live mode shows beside it; paper dollars say paper.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from pipeline.desk import Decision, DeskStatus
from pipeline.models import Position, TradeSignal
from pipeline.risk import TradingState

from . import fmt
from .cycles import health
from .model import Button, Fact, Message, Page, Row, Text, Tone, bold, code, text, when
from .outcomes import actor, refusal
from .signals import bold_link, exit_sentence, market_name, order_sentence, reason_words
from .textutil import one_line

CLOSE_ACTION = "close_position"  # a position's Close button; its value is the position's number, nothing else

# A message holds at most 50 blocks and each position is one (its Close button beside it): 40 leave room for the
# title, the "more" line and the small print.
POSITIONS_SHOWN = 40
HOME_PENDING_SHOWN = 20
HOME_POSITIONS_SHOWN = 30

STATE_WORDS = {
    TradingState.ACTIVE: "ACTIVE",
    TradingState.PAUSED: "PAUSED — no new entries",
    TradingState.HALTED: "HALTED — no trading",
}
STATE_TONES = {TradingState.ACTIVE: Tone.GOOD, TradingState.PAUSED: Tone.WARNING, TradingState.HALTED: Tone.FAILURE}


def state_word(state: TradingState) -> str:
    return STATE_WORDS.get(state, one_line(getattr(state, "value", state), 40).upper())


def money(value: Decimal, dry_run: bool, signed: bool = False) -> str:
    """Dollars of the desk's bankroll, marked when they are paper dollars."""
    return fmt.usd(value, signed) + (" (paper)" if dry_run else "")


def money_facts(status: DeskStatus, balances: Mapping[Any, Decimal | str] | None = None) -> list[Fact]:
    risk, dry = status.risk, status.dry_run
    facts = [
        Fact("Desk bankroll", text(bold(money(risk.bankroll, dry)), "\nconfigured bankroll + realised P&L")),
        Fact("Free to trade", text(bold(money(risk.free, dry)))),
        Fact(f"Reserved ({fmt.plural(risk.pending_signals, 'pending signal')})", text(money(risk.reserved, dry))),
        Fact(f"Exposure ({fmt.plural(risk.open_positions, 'open position')})", text(money(risk.exposure, dry))),
        Fact("Realised P&L today", text(money(risk.realized_today, dry, signed=True))),
        Fact("LLM spend today", text(f"{fmt.usd(status.llm_spend_today)} (billed in both modes)")),
    ]
    for venue, value in sorted((balances or {}).items(), key=lambda kv: str(getattr(kv[0], "value", kv[0]))):
        shown = bold(fmt.usd(value)) if isinstance(value, Decimal) else f"unavailable: {one_line(value, 200)}"
        facts.append(Fact(f"{fmt.venue_name(venue)} cash", text(shown)))
    return facts


def stopped_lines(status: DeskStatus) -> list[Text]:
    return [text(bold(f"Orders to {fmt.venue_name(venue)} are stopped"), f" — {one_line(why, 400)} · resume with ",
                 code(f"/desk resume {one_line(venue, 20)}"), " once ", code("oddsdesk check --venues"), " passes")
            for venue, why in sorted(status.stopped_venues.items())]


def last_cycle_line(status: DeskStatus) -> Text:
    if status.cycle_running:
        return text("A cycle is running (started by ", actor(status.cycle_started_by or "schedule"), ").")
    report = status.last_cycle
    if report is None:
        if status.last_cycle_id:
            return text("Last cycle ", code(one_line(status.last_cycle_id, 100)), ".")
        return text("No cycle has run yet. Start one with ", code("/scan"), ".")
    return text(f"Last cycle {health(report).value} (", when(report.started_at, fmt.day_and_time(report.started_at)),
                f"): {fmt.plural(report.total_scanned, 'market')} scanned → "
                f"{report.passed_filters:,} passed filters → "
                f"{report.analysed:,} analysed → {fmt.plural(report.signals, 'signal')} · LLM "
                f"{fmt.usd(report.llm_cost_usd)}" + (f" · {fmt.plural(len(report.errors), 'error')}"
                                                     if report.errors else ""))


def status_message(status: DeskStatus, balances: Mapping[Any, Decimal | str] | None = None) -> Message:
    tag = fmt.mode_tag(status.dry_run)
    title = (f"{tag} · Desk {state_word(status.state).split(' —')[0]} — {money(status.risk.free, status.dry_run)} "
             f"free of {money(status.risk.bankroll, status.dry_run)}")
    mode = ("Dry-run: approvals simulate orders against the real books; no money moves." if status.dry_run else
            "Live: approvals place real orders with real money.")
    return Message(kind="status", tone=STATE_TONES.get(status.state, Tone.NEUTRAL), title=title,
                   lines=(text(bold("Trading:"), f" {state_word(status.state)}. {mode}"), *stopped_lines(status)),
                   facts=tuple(money_facts(status, balances)), footer=(last_cycle_line(status),),
                   notification=title)


def balance_message(status: DeskStatus, balances: Mapping[Any, Decimal | str] | None = None) -> Message:
    dry = status.dry_run
    title = (f"{fmt.mode_tag(dry)} · Balance — {money(status.risk.free, dry)} free of "
             f"{money(status.risk.bankroll, dry)}")
    notes = [text("The desk bankroll is trading.initial_bankroll plus realised P&L in this mode; free = bankroll − "
                  "reserved − exposure. Sizing uses the desk bankroll.")]
    if not dry:
        notes.append(text("Venue cash is what each venue's account holds now; keep it at or above what the desk may "
                          "spend there."))
    return Message(kind="balance", tone=Tone.NEUTRAL, title=title, facts=tuple(money_facts(status, balances)),
                   footer=tuple(notes), notification=title)


def _average(position: Position) -> Decimal | None:
    return position.cost / position.contracts if fmt.finite(position.contracts) and position.contracts else None


def position_line(position: Position, marked: Any = None, *, dry_run: bool = False, now: datetime | None = None
                  ) -> Text:
    """A position on one line: its number, what is held, at what cost, what it is worth now and when its market
    closes."""
    paper = " (paper)" if position.paper or dry_run else ""
    market = getattr(marked, "market", None)
    title = one_line(position.title, 150) or one_line(position.market_id, 150)
    side = fmt.side_word(position.side)
    number = bold(f"#{position.id}") if position.id is not None else None
    line = text(number, " " if number else "", bold_link(getattr(market, "url", "") or "", title),
                f" · {fmt.venue_name(position.venue)}\n",
                bold(f"{side} {fmt.count(position.contracts)}"),
                f" @ avg {fmt.price(_average(position))} · cost {fmt.usd(position.cost)} + {fmt.usd(position.fees)} "
                f"fees{paper}")
    if marked is not None:
        mark, unrealized = getattr(marked, "mark", None), getattr(marked, "unrealized", None)
        if mark is not None and unrealized is not None:
            line = text(line, f" · sells now at avg {fmt.price(mark)} → unrealised ",
                        bold(fmt.usd(unrealized, signed=True)))
            if getattr(marked, "note", ""):
                line = text(line, f" ({one_line(marked.note, 120)})")
        elif getattr(marked, "note", ""):
            line = text(line, f" · no mark: {one_line(marked.note, 120)}")
        closes = getattr(marked, "closes_at", None)
        if closes is not None:
            line = text(line, " · closes ", when(closes, fmt.day_and_time(closes)),
                        f" ({fmt.countdown(closes, now)})" if now is not None else "")
    return line


def exiting_positions(status: DeskStatus, marked: Sequence[Any] | None) -> dict[int, str]:
    """Position number -> the exit signal pending or on its way for it (no second Close is offered)."""
    found = {s.exit.position_id: s.id for s in status.pending if s.is_exit and s.exit is not None}
    for m in marked or []:
        pid = getattr(m.position, "id", None)
        if pid is not None and getattr(m, "exiting", ""):
            found.setdefault(pid, m.exiting)
    return found


def close_button(position: Position) -> Button:
    return Button(CLOSE_ACTION, f"Close #{position.id}", str(position.id), Tone.NEUTRAL)


def position_row(position: Position, marked: Any, exiting: dict[int, str], *, dry_run: bool,
                 now: datetime | None) -> Row:
    """A position with its Close button; "exit pending" instead while an exit for it waits or is on its way."""
    line = position_line(position, marked, dry_run=dry_run, now=now)
    if position.id is None:
        return Row(line)
    if position.id in exiting:
        return Row(text(line, "\n", bold("Exit pending"), " — decide it on its message (signal ",
                        code(fmt.short_id(exiting[position.id])), ")"))
    return Row(line, close_button(position))


def positions_message(status: DeskStatus, marked: Sequence[Any] | None = None, now: datetime | None = None
                      ) -> Message:
    dry = status.dry_run
    positions = [p for p in status.positions if p.status == "open"]
    marks = {(m.position.venue, m.position.market_id, m.position.side): m for m in (marked or [])}
    exposure = sum((p.exposure for p in positions), Decimal(0))
    # Only the positions listed now count: a mark read a moment ago may be for one that has since closed.
    listed = [marks.get((p.venue, p.market_id, p.side)) for p in positions]
    unrealized = [m.unrealized for m in listed if m is not None and m.unrealized is not None]
    title = f"{fmt.mode_tag(dry)} · {fmt.plural(len(positions), 'open position')} — exposure {money(exposure, dry)}"
    if unrealized:
        title += f", unrealised {fmt.usd(sum(unrealized, Decimal(0)), signed=True)}"
        if len(unrealized) < len(positions):
            title += f" ({len(unrealized)} of {len(positions)} marked)"
    exiting = exiting_positions(status, marked)
    rows = [position_row(p, marks.get((p.venue, p.market_id, p.side)), exiting, dry_run=dry, now=now)
            for p in positions[:POSITIONS_SHOWN]]
    lines = () if positions else (text("No open positions."),)
    if len(positions) > POSITIONS_SHOWN:  # a row, so it reads after the positions shown
        rows.append(Row(text(f"…and {len(positions) - POSITIONS_SHOWN:,} more; close one by its number or ticker "
                             "with ", code("/desk close"), ".")))
    footer = text("Marks are what selling into each side's bids now would fetch, level by level, before fees."
                  if marked is not None else "Paper positions." if dry else "Positions on the venues.")
    if positions:
        footer = text(footer, " Close proposes selling a position at its bids, as an exit signal; nothing is sold "
                              "until an approver approves it.")
    return Message(kind="positions", tone=Tone.NEUTRAL, title=title, lines=lines, rows=tuple(rows),
                   footer=(footer,), notification=title)


HELP_COMMANDS = (
    ("status", "mode, trading state, bankroll and the last cycle (viewers)"),
    ("positions", "open positions with their current marks (viewers)"),
    ("balance", "desk bankroll, free, reserved, exposure, today's P&L, LLM spend, and live, the venues' cash "
                "(viewers)"),
    ("record", "the analyst's track record against the market, with calibration and P&L charts posted to the "
               "channel (viewers)"),
    ("pause", "no new signals or approvals until `resume` (operators)"),
    ("close <number|ticker|all>", "propose selling a position (its number in `positions`, or its market's ticker) "
                                  "or all of them, each as an exit signal here with Sell / Keep; an approver's "
                                  "Sell sells it. Works while paused or halted (operators)"),
    ("halt", "the kill switch: cancel resting orders, stop all trading and cycles (operators)"),
    ("resume", "the desk is active again (approvers)"),
    ("resume kalshi|polymarket", "let orders go to a venue again after the desk stopped them because the venue's "
                                 "API changed (approvers; run `oddsdesk check --venues` first)"),
    ("help", "this message (everyone)"),
)


def state_changed(decision: Decision, by: str) -> Text:
    """The channel hears a pause, halt or resume: the desk's sentence (it may quote a venue) and who did it."""
    return text(one_line(decision.message, 2500), " (by ", actor(by), ")")


def help_message() -> Message:
    lines = [
        text(code("/scan [kalshi|polymarket|all] [limit N]"), " — run one trading cycle: scan the venues, filter, "
             "ask "
             "the model for fair values of at most N markets, and post each trade signal here with Approve / Reject. "
             "Without arguments: every configured venue and the configured limit. One cycle at a time."),
        *(text(code(f"/desk {sub}"), f" — {what}") for sub, what in HELP_COMMANDS),
        text(bold("Approve / Reject"), " (", bold("Sell / Keep"), " on an exit):", " only approvers "
             "(approval.authorized_users or approval.authorized_usergroups) may decide, and only with the buttons on "
             "the signal's own message. A LIVE approval asks you to confirm "
             "the exact order; a DRY-RUN approval simulates it against the real order book. A signal not decided "
             "before it expires is dropped and its capital released."),
        text(bold("Who may do what:"), " approvers may do everything; operators (access.operators) run /scan and "
             "/desk close in the desk's channel, pause and halt; viewers (access.viewers) see status, positions, "
             "balance and App Home. "
             "Everyone else gets this help only."),
    ]
    return Message(kind="help", tone=Tone.NEUTRAL, title="oddsdesk — commands", lines=tuple(lines),
                   notification="oddsdesk help: /scan [kalshi|polymarket|all] [limit N] · "
                                "/desk status|positions|balance|record|close|pause|resume|halt|help")


def pending_line(signal: TradeSignal, now: datetime) -> Text:
    seconds = (signal.expires_at - now).total_seconds()
    expiry = (text("expires ", when(signal.expires_at, fmt.clock(signal.expires_at)),
                   f" ({fmt.countdown(signal.expires_at, now)})")
              if seconds > 0 else text("expired at ", when(signal.expires_at, fmt.clock(signal.expires_at))))
    if signal.is_exit:  # a sale: no edge to show when there is no fresh estimate, and a reason instead
        number = f" #{signal.exit.position_id}" if signal.exit is not None else ""
        return text(bold(exit_sentence(signal)), " · ", bold_link(signal.market.url, market_name(signal, 150)),
                    f" · {fmt.venue_name(signal.market.venue)} · exit of position{number}: {reason_words(signal)} · ",
                    expiry)
    return text(bold(order_sentence(signal)), " · ", bold_link(signal.market.url, market_name(signal, 150)),
                f" · {fmt.venue_name(signal.market.venue)} · edge {fmt.cents(signal.edge, signed=True)} "
                "a contract · ",
                expiry)


def home_page(status: DeskStatus, now: datetime, marked: Sequence[Any] | None = None,
              balances: Mapping[Any, Decimal | str] | None = None, record_line: Text | None = None) -> Page:
    """The App Home: the desk (live, with the venues' cash), then what waits for a decision, then what is held."""
    dry = status.dry_run
    desk = status_message(status, balances)
    if record_line:
        desk = replace(desk, footer=desk.footer + (record_line,))
    pending = [pending_line(s, now) for s in status.pending[:HOME_PENDING_SHOWN]]
    if len(status.pending) > HOME_PENDING_SHOWN:
        pending.append(text(f"…and {len(status.pending) - HOME_PENDING_SHOWN:,} more pending; decide them in the "
                            "channel"))
    waiting = Message(kind="pending", tone=Tone.NEUTRAL, title=f"Pending signals ({len(status.pending):,})",
                      lines=tuple(pending) or (text("None."),))
    held = positions_message(status, marked, now)
    positions = [p for p in status.positions if p.status == "open"]
    extra = ((Row(text(f"…and {len(positions) - HOME_POSITIONS_SHOWN:,} more; ", code("/desk positions"),
                       " lists them")),) if len(positions) > HOME_POSITIONS_SHOWN else ())
    holding = Message(kind="positions", tone=Tone.NEUTRAL, title=f"Open positions ({len(positions):,})",
                      lines=held.lines, rows=held.rows[:HOME_POSITIONS_SHOWN] + extra,
                      footer=held.footer if positions else ())
    updated = Message(kind="updated", tone=Tone.NEUTRAL, title="",
                      footer=(text(f"{fmt.mode_tag(dry)} · updated ", fmt.utc(now, "%Y-%m-%d %H:%M:%S")),))
    return Page(title=f"oddsdesk — {'DRY-RUN (paper)' if dry else 'LIVE (real money)'}",
                tone=Tone.PAPER if dry else Tone.LIVE, parts=(desk, waiting, holding, updated))


def home_refused_page(decision: Decision) -> Page:
    """App Home for someone who may not see the desk: who to ask, and nothing about the desk."""
    return Page(title="oddsdesk", tone=Tone.NEUTRAL, parts=(
        Message(kind="refused", tone=Tone.NEUTRAL, title="", lines=(refusal(decision),),
                footer=(text(code("/desk help"), " lists the commands and who may use them."),)),))
