"""Every message kind the desk posts, built from fixed inputs: the source of the golden pictures.

`python -m tests.golden write` rewrites tests/data/golden/*.json (the payloads Slack is sent);
`../shared/tools/slack-preview --out DIR tests/data/golden/*.json` draws them at 900 and 400 px.
tests/test_presentation.py checks that rendering still gives exactly these payloads.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

from bot import blocks
from bot.present import cycles, outcomes, replies, reports, signals, state
from bot.present import record as present_record
from bot.present.model import Message, Page
from pipeline import record
from pipeline.cancel import CancelReport, Cancelled
from pipeline.desk import Decision, DeskStatus, OrdersStopped
from pipeline.executor import ExecutionOutcome, describe_result
from pipeline.marks import MarkedPosition
from pipeline.models import (CycleError, CycleReport, ExitReason, ExitTerms, FeeModel, Fill, Market, Order,
                             OrderAction, OrderResult, OrderStatus, Position, Side, SignalStatus, TradeSignal, Venue,
                             VenueScanStats)
from pipeline.reconcile import ReconcileReport, SkippedCheck, cancelled_items
from pipeline.risk import RiskSnapshot, TradingState

GOLDEN = Path(__file__).parent / "data" / "golden"
LONG_TITLE = ("Will the 10-year Treasury yield close above 4.75% on the last trading day of December 2026, as "
              "published by the Federal Reserve H.15 release, after the FOMC's December meeting?")
POLY_ORDER_ID = "0x" + "3f9a1c7be4" * 6 + "e4b2"  # 66 characters, as Polymarket's order hashes are

D = Decimal
NOW = datetime(2026, 11, 20, 15, 0, tzinfo=timezone.utc)
HOSTILE_TITLE = "<!channel> buy now & <https://evil.test|click> | <@U999> <#C1>"


# ------------------------------------------------------------------------------------------------
# Builders
# ------------------------------------------------------------------------------------------------


def make_signal(*, dry_run: bool = True, title: str = "Will the Fed hold rates in December?",
                reasoning: str = "Futures imply a hold; the statement language is unchanged.",
                url: str = "https://kalshi.com/markets/kxfed", market_id: str = "KXFED-26DEC-H0", id: str = "sig-0001",
                side: Side = Side.YES, rules: str = "", venue: Venue = Venue.KALSHI, status=SignalStatus.PENDING,
                contracts: str = "113", cost: str = "47.72", fees: str = "1.94") -> TradeSignal:
    market = Market(venue=venue, id=market_id, title=title, rules=rules, yes_bid=D("0.40"), yes_ask=D("0.42"),
                    volume=D("50000"), liquidity=D("5000"), close_time=NOW + timedelta(days=10), url=url,
                    fee_model=FeeModel(rate=D("0.07")))
    return TradeSignal(id=id, cycle_id="cyc-42", market=market, side=side, limit_price=D("0.44"),
                       contracts=D(contracts), cost=D(cost), fees=D(fees),
                       average_price=D("0.4223008849557522123893805310"),
                       probability=D("0.555") if side is Side.YES else D("0.445"), model_probability=D("0.70"),
                       fair_yes=D("0.555"), edge=D("0.1155309734513274336283185840"), kelly_fraction=D("0.04966"),
                       expected_value=D("13.055"), reasoning=reasoning, dry_run=dry_run, status=status,
                       created_at=NOW, expires_at=NOW + timedelta(minutes=30))


def make_outcome(signal: TradeSignal, status: OrderStatus, fills: tuple[Fill, ...], *, reason: str = "",
                 venue_order_id: str = "V-123") -> ExecutionOutcome:
    result = OrderResult(client_order_id=signal.client_order_id, venue_order_id=venue_order_id, status=status,
                         fills=fills, reason=reason)
    order = Order(id="ord-1", signal_id=signal.id, client_order_id=signal.client_order_id, venue=signal.market.venue,
                  market_id=signal.market.id, side=signal.side, action=signal.action, contracts=signal.contracts,
                  limit_price=signal.limit_price, status=status, paper=signal.dry_run, venue_order_id=venue_order_id,
                  filled=result.filled, average_price=result.average_price, fees=result.fees, reason=reason,
                  created_at=NOW, updated_at=NOW)
    target = {OrderStatus.FILLED: SignalStatus.FILLED, OrderStatus.PARTIALLY_FILLED: SignalStatus.PARTIALLY_FILLED,
              OrderStatus.REJECTED: SignalStatus.FAILED}[status]
    if signal.dry_run and status is not OrderStatus.REJECTED:
        target = SignalStatus.SIMULATED
    done = signal.model_copy(update={"status": target})
    return ExecutionOutcome(signal=done, order=order, result=result, dry_run=signal.dry_run,
                            message=describe_result(signal, result, signal.dry_run))


FULL_FILL = (Fill(contracts=D("100"), price=D("0.42"), fee=D("1.71")),
             Fill(contracts=D("13"), price=D("0.44"), fee=D("0.23")))


def make_report(*, dry_run: bool = True, errors: list[CycleError] | None = None, **updates: Any) -> CycleReport:
    report = CycleReport(cycle_id="cyc-42", trigger="manual", started_by="UADMIN1", dry_run=dry_run,
                         started_at=NOW, finished_at=NOW + timedelta(seconds=12.5),
                         scanned={"kalshi": 1200, "polymarket": 834},
                         venue_stats={"kalshi": VenueScanStats(pages=12, requests=14, retries=2, markets=1200,
                                                               skipped=3, seconds=4.2),
                                      "polymarket": VenueScanStats(pages=9, requests=9, retries=0, markets=834,
                                                                   seconds=3.1, error="HTTP 503 from gamma")},
                         passed_filters=120, analysed=40, cached=12, skipped_budget=5, skipped_deadline=2, invalid=1,
                         opportunities=6, signals=3, risk_denied=2,
                         rejections=Counter({"volume_too_low": 900, "price_out_of_range": 400, "closes_too_late": 300,
                                             "edge_below_minimum": 30}),
                         timings={"scanning": 7.3, "analysing": 4.1, "sizing": 0.2}, llm_cost_usd=D("0.4321"),
                         errors=errors or [], notes=["the desk is PAUSED: scanned and filtered only, no new signals"])
    return report.model_copy(update=updates) if updates else report


def make_position(n: int, *, paper: bool = True, title: str | None = None) -> Position:
    return Position(id=n + 1, venue=Venue.POLYMARKET if n % 2 else Venue.KALSHI, market_id=f"MKT-{n}", side=Side.NO,
                    paper=paper, contracts=D("50"), cost=D("21.50"), fees=D("0.35"),
                    title=title if title is not None else f"Position market {n}", opened_at=NOW - timedelta(hours=n))


def make_status(*, dry_run: bool = True, pending: list[TradeSignal] | None = None,
                positions: list[Position] | None = None, state: TradingState = TradingState.ACTIVE,
                last_cycle: CycleReport | None = None, cycle_running: bool = False) -> DeskStatus:
    pending = [make_signal(dry_run=dry_run)] if pending is None else pending
    positions = [make_position(1, paper=dry_run)] if positions is None else positions
    risk = RiskSnapshot(state=state, bankroll=D("1234.5"), reserved=D("49.66"), exposure=D("21.85"),
                        open_positions=len(positions), pending_signals=len(pending),
                        realized_today=D("-12.3"))
    return DeskStatus(dry_run=dry_run, state=state, risk=risk, pending=pending, positions=positions,
                      cycle_running=cycle_running, cycle_started_by="UADMIN1" if cycle_running else "",
                      last_cycle_id=last_cycle.cycle_id if last_cycle else "", llm_spend_today=D("1.25"),
                      last_cycle=last_cycle)



def take_profit_exit(dry_run: bool = True) -> TradeSignal:
    """Selling all 120 YES of position #7 (bought at avg $0.42: $50.40 + $2.05 fees) into the bids 0.62 x 80 and
    0.60 x 40: $73.60 less fees 1.32 + 0.68 = $2.00, so $71.60 against $52.45 paid, +$19.15 realised. The analyst's
    fair YES is 52%: holding is worth $62.40, selling gains $9.20 (7.7¢ a contract)."""
    signal = make_signal(dry_run=dry_run, id="sig-exit-07")
    market = signal.market.model_copy(update={"yes_bid": D("0.62"), "yes_ask": D("0.64")})
    return signal.model_copy(update={
        "market": market, "cycle_id": "cyc-43", "action": OrderAction.SELL, "limit_price": D("0.60"),
        "contracts": D("120"), "cost": D("73.60"), "fees": D("2.00"), "average_price": D("73.60") / D("120"),
        "probability": D("0.52"), "model_probability": D("0.45"), "fair_yes": D("0.52"),
        "edge": D("73.60") / D("120") - D("2.00") / D("120") - D("0.52"), "kelly_fraction": D("0"),
        "expected_value": D("9.20"),
        "reasoning": "The December dot plot and the last two CPI prints make a hold less likely than the book says.",
        "exit": ExitTerms(reason=ExitReason.TAKE_PROFIT, position_id=7, held=D("120"), basis=D("52.45"),
                          detail="the best bid 0.62 beats the analyst's fair 0.520 by 0.089 after fees (paid 0.420)")})


def manual_exit(dry_run: bool = False) -> TradeSignal:
    """A person's close of position #12 (150 NO, $60.00 + $2.40 fees): the NO bids near the best take 100 of the
    150, 80 at $0.56 and 20 at $0.54, for $55.60 less fees 1.38 + 0.35 = $1.73. Those 100 cost $41.60 with fees:
    +$12.27 realised. No fresh estimate: no fair value, no edge."""
    signal = make_signal(dry_run=dry_run, id="sig-exit-12", side=Side.NO, title=LONG_TITLE, market_id="KXTNOTE-26DEC",
                         reasoning="")
    market = signal.market.model_copy(update={"yes_bid": D("0.44"), "yes_ask": D("0.46")})
    return signal.model_copy(update={
        "market": market, "cycle_id": "close-5e1f", "action": OrderAction.SELL, "limit_price": D("0.54"),
        "contracts": D("100"), "cost": D("55.60"), "fees": D("1.73"), "average_price": D("0.556"),
        "probability": None, "model_probability": None, "fair_yes": None, "edge": None, "expected_value": None,
        "kelly_fraction": D("0"),
        "exit": ExitTerms(reason=ExitReason.MANUAL, position_id=12, held=D("150"), basis=D("41.60"),
                          detail="asked by UOPS01", requested_by="UOPS01")})


EXIT_FILLS = (Fill(contracts=D("80"), price=D("0.62"), fee=D("1.32")),
              Fill(contracts=D("40"), price=D("0.60"), fee=D("0.68")))


def exit_pending_status() -> DeskStatus:
    """Three paper positions; #2 has an exit waiting for a decision."""
    positions = [make_position(i, paper=True) for i in range(3)]
    exit_ = take_profit_exit(True)
    held = positions[1]
    exit_ = exit_.model_copy(update={"exit": exit_.exit.model_copy(update={"position_id": held.id})})
    return make_status(dry_run=True, last_cycle=clean_report(), positions=positions, pending=[exit_])


def with_kelly(signal: TradeSignal, full: str = "0.376", multiplier: str = "0.25", cap: str = "0.05") -> TradeSignal:
    return signal.model_copy(update={"full_kelly": D(full), "kelly_multiplier": D(multiplier), "stake_cap": D(cap)})


def no_signal(dry_run: bool, **kw: Any) -> TradeSignal:
    """A NO trade: NO at $0.38 avg (limit $0.39) while YES trades at $0.61 / $0.63."""
    signal = make_signal(dry_run=dry_run, side=Side.NO, contracts="122", cost="46.36", fees="1.26", **kw)
    market = signal.market.model_copy(update={"yes_bid": D("0.61"), "yes_ask": D("0.63")})
    return with_kelly(signal.model_copy(update={
        "market": market, "limit_price": D("0.39"), "average_price": D("0.38"), "probability": D("0.61"),
        "model_probability": D("0.36"), "fair_yes": D("0.39"), "edge": D("0.2197"), "kelly_fraction": D("0.05"),
        "expected_value": D("26.80")}))


def decided(signal: TradeSignal, status: OrderStatus, fills: tuple[Fill, ...], code: str, *, reason: str = "",
            venue_order_id: str = "V-123") -> Decision:
    outcome = make_outcome(signal, status, fills, reason=reason, venue_order_id=venue_order_id)
    ok = code in ("executed", "simulated")
    message = outcome.message if ok else f"Order failed: {outcome.message}"
    return Decision(ok, code, message, signal=outcome.signal, outcome=outcome)


def marked(status: DeskStatus) -> list[MarkedPosition]:
    out = []
    for i, p in enumerate(status.positions):
        market = make_signal(market_id=p.market_id, title=p.title).market
        if i % 3 == 2:
            out.append(MarkedPosition(p, market, None, None, market.close_time, "no bid for NO"))
            continue
        mark = D("0.47") if i % 2 else D("0.41")
        out.append(MarkedPosition(p, market, mark, p.contracts * mark - p.cost - p.fees, market.close_time))
    return out


def partial_report(dry_run: bool = True) -> CycleReport:
    errors = [CycleError(stage="scanning", venue="kalshi", message="HTTP 503 from /markets after 3 retries", at=NOW),
              CycleError(stage="analysing", message="model answer was not valid JSON for KXCPI-26DEC", at=NOW)]
    return make_report(dry_run=dry_run, errors=errors, notes=[],
                       scanned={"kalshi": 0, "polymarket": 834},
                       venue_stats={"kalshi": VenueScanStats(pages=10, requests=13, retries=3, markets=1000,
                                                             seconds=6.2, error="HTTP 503 from /markets after 3 retries"),
                                    "polymarket": VenueScanStats(pages=9, requests=9, markets=834, seconds=3.1)})


def clean_report(dry_run: bool = True) -> CycleReport:
    return make_report(dry_run=dry_run, notes=[],
                       venue_stats={"kalshi": VenueScanStats(pages=12, requests=14, retries=2, markets=1200,
                                                             seconds=4.2),
                                    "polymarket": VenueScanStats(pages=9, requests=9, markets=834, seconds=3.1)})


def failed_report() -> CycleReport:
    errors = [CycleError(stage="scanning", venue=v, message="connection refused", at=NOW)
              for v in ("kalshi", "polymarket")]
    return make_report(errors=errors, notes=[], scanned={"kalshi": 0, "polymarket": 0}, passed_filters=0, analysed=0,
                       cached=0, skipped_budget=0, skipped_deadline=0, invalid=0, opportunities=0, signals=0,
                       risk_denied=0, rejections=Counter(),
                       venue_stats={v: VenueScanStats(error="connection refused") for v in ("kalshi", "polymarket")})


def reconcile_report() -> ReconcileReport:
    signal = make_signal(dry_run=False).model_copy(update={"status": SignalStatus.PLACED})
    order = make_outcome(signal, OrderStatus.REJECTED, ()).order.model_copy(update={"status": OrderStatus.CANCELED})
    cancels = CancelReport(cancelled=[Cancelled(order, OrderStatus.RESTING, signal)],
                           failed=[("od-other", "the venue still shows it resting")])
    return ReconcileReport(halt_cancels=cancels, resolved=cancelled_items(cancels),
                           skipped=[SkippedCheck(Venue.POLYMARKET, "positions", "RetryableError", "timed out")])


LATER = NOW + timedelta(minutes=3)


def sample_record() -> record.Record:
    """60 resolved estimates on two venues and three horizons, and 7 waiting."""
    rows = []
    for i in range(67):
        market_p = 0.2 + (i % 7) * 0.1
        rows.append(dict(venue="kalshi" if i % 3 else "polymarket", market_id=f"M{i}", title=f"Market {i}",
                         category=["KXFED", "KXCPI", "us-election"][i % 3], model="claude-sonnet-5-5",
                         prompt_version="fv-2026-11-25.3", source="model", model_probability=str(min(0.95, market_p + 0.15)),
                         market_probability=str(market_p), fair_probability=str(market_p + 0.075),
                         hours_to_close=[10.0, 100.0, 900.0][i % 3], dry_run=1, followed="none",
                         outcome=None if i >= 60 else ("1" if (i * 7) % 10 < market_p * 10 + 1 else "0"),
                         close_time="2026-12-01T00:00:00.000000Z"))
    return record.build(rows)


def messages() -> dict[str, Message | list[Message] | Page]:
    """name -> what the desk says: a message, the messages of a thread, or a page (App Home). Each chat renders these
    same models (Slack's payloads are `cases()`, Discord's tests/discord_golden.py)."""
    live_yes = with_kelly(make_signal(dry_run=False), full="0.12", cap="0.05")
    paper_no = no_signal(True)
    live_no = no_signal(False)
    poly = with_kelly(make_signal(dry_run=False, venue=Venue.POLYMARKET, title=LONG_TITLE, id="sig-" + "9" * 40,
                                  market_id="0x" + "ab" * 32))
    status_paper = make_status(dry_run=True, last_cycle=clean_report(),
                               positions=[make_position(i, paper=True) for i in range(3)])
    status_live = make_status(dry_run=False, last_cycle=partial_report(False),
                              positions=[make_position(i, paper=False) for i in range(2)])
    partial = partial_report()
    errors = cycles.error_report(partial)
    builds: dict[str, Callable[[], Any]] = {
        "signal_paper_no": lambda: signals.signal_proposal(paper_no, NOW),
        "signal_live_no": lambda: signals.signal_proposal(live_no, NOW),
        "signal_live_yes_capped": lambda: signals.signal_proposal(live_yes, NOW),
        "signal_live_long_title_polymarket": lambda: signals.signal_proposal(poly, NOW),
        "outcome_paper_fill": lambda: outcomes.signal_outcome(
            paper_no, decided(paper_no, OrderStatus.FILLED, (Fill(contracts=D("122"), price=D("0.38"), fee=D("1.26")),),
                              "simulated", venue_order_id=f"paper-{paper_no.client_order_id}"), "UAUTH01", LATER),
        "outcome_live_filled_polymarket": lambda: outcomes.signal_outcome(
            poly, decided(poly, OrderStatus.FILLED, FULL_FILL, "executed", venue_order_id=POLY_ORDER_ID),
            "UAUTH01", LATER),
        "outcome_live_partial": lambda: outcomes.signal_outcome(
            live_yes, decided(live_yes, OrderStatus.PARTIALLY_FILLED, FULL_FILL[:1], "executed"), "UAUTH01", LATER),
        "outcome_live_failed": lambda: outcomes.signal_outcome(
            live_no, decided(live_no, OrderStatus.REJECTED, (), "failed",
                             reason="Kalshi refused the order (400 insufficient_balance): insufficient balance"),
            "UAUTH01", LATER),
        "outcome_rejected": lambda: outcomes.signal_outcome(
            live_no, Decision(True, "rejected", "Rejected", signal=live_no.model_copy(
                update={"status": SignalStatus.REJECTED})), "UAUTH01", LATER),
        "outcome_expired": lambda: outcomes.signal_expired(paper_no, NOW + timedelta(minutes=31)),
        "outcome_reconciled_cancelled": lambda: outcomes.signal_reconciled(
            reconcile_report().resolved[0], "UAUTH01", NOW, LATER),
        "progress_running": lambda: cycles.progress("analysing", 12, 40, started_by="UOPS01", dry_run=True,
                                                    venues="all venues"),
        "progress_posting": lambda: cycles.progress("done", 0, 0, started_by="UOPS01", dry_run=True,
                                                    venues="all venues", posting=3),
        "progress_finished_partial": lambda: cycles.progress_finished(partial, 3, venues="all venues"),
        "summary_clean": lambda: cycles.summary(clean_report()),
        "summary_partial": lambda: cycles.summary(partial),
        "summary_failed": lambda: cycles.summary(failed_report()),
        "summary_with_exits": lambda: cycles.summary(clean_report().model_copy(update={
            "signals": 4, "exits": 2, "positions_reviewed": 5,
            "holds": Counter({"edge_below_minimum": 2, "exit_pending": 1, "no_estimate": 1})})),
        "errors_partial_channel": lambda: errors,
        "errors_partial_thread": lambda: list(errors.thread),
        "status_paper": lambda: state.status_message(status_paper),
        "balance_live": lambda: state.balance_message(status_live, {Venue.KALSHI: D("812.40"),
                                                                   Venue.POLYMARKET: "no API keys configured"}),
        "positions_paper": lambda: state.positions_message(status_paper, marked(status_paper), NOW),
        "help": state.help_message,
        "home_paper": lambda: state.home_page(status_paper, NOW + timedelta(minutes=18), marked(status_paper)),
        "home_live": lambda: state.home_page(status_live, NOW, marked(status_live),
                                             {Venue.KALSHI: D("812.40"), Venue.POLYMARKET: D("1500")}),
        "reconcile": lambda: reports.reconcile_message(reconcile_report()),
        "orders_stopped": lambda: reports.orders_stopped_message(OrdersStopped(
            "kalshi", "POST /portfolio/orders answered 410 Gone: this endpoint was retired")),
        "record": lambda: present_record.record_message(sample_record(), "0.5"),
        "exit_paper_take_profit": lambda: signals.signal_proposal(take_profit_exit(True), NOW),
        "exit_live_take_profit": lambda: signals.signal_proposal(take_profit_exit(False), NOW),
        "exit_live_manual_partial": lambda: signals.signal_proposal(manual_exit(False), NOW),
        "outcome_exit_paper_sold": lambda: outcomes.signal_outcome(
            take_profit_exit(True), decided(take_profit_exit(True), OrderStatus.FILLED, EXIT_FILLS, "simulated",
                                            venue_order_id="paper-od-exit07"), "UAUTH01", LATER),
        "outcome_exit_live_sold": lambda: outcomes.signal_outcome(
            take_profit_exit(False), decided(take_profit_exit(False), OrderStatus.FILLED, EXIT_FILLS, "executed"),
            "UAUTH01", LATER),
        "outcome_exit_live_partial": lambda: outcomes.signal_outcome(
            manual_exit(), decided(manual_exit(), OrderStatus.PARTIALLY_FILLED,
                                   (Fill(contracts=D("60"), price=D("0.56"), fee=D("1.04")),), "executed"),
            "UAUTH01", LATER),
        "outcome_exit_live_failed": lambda: outcomes.signal_outcome(
            manual_exit(), decided(manual_exit(), OrderStatus.REJECTED, (), "failed",
                                   reason="Kalshi refused the order (400 invalid_order): market is not open"),
            "UAUTH01", LATER),
        "outcome_exit_kept": lambda: outcomes.signal_outcome(
            manual_exit(), Decision(True, "rejected", "Rejected; the position is kept.",
                                    signal=manual_exit().model_copy(update={"status": SignalStatus.REJECTED})),
            "UAUTH01", LATER),
        "close_reply": lambda: replies.close_reply([
            (Decision(True, "exit_proposed", "", signal=take_profit_exit(True)), ""),
            (Decision(True, "exit_proposed", "", signal=manual_exit(True)), ""),
            (Decision(False, "exit_pending", "Position #2 (Position market 1) already has exit signal sig-exit-07 "
                                             "pending or on its way; decide that one."), ""),
            (Decision(False, "no_bids", "Position #3 (Position market 2) cannot be closed now: no NO bids to sell "
                                        "into. Nothing was proposed; it stays held."), "")]),
        "positions_exit_pending": lambda: state.positions_message(
            exit_pending_status(), marked(exit_pending_status()), NOW),
        "loss_halt": lambda: reports.loss_halt_message("Realised loss today -$312.40 reached the daily limit "
                                                       "of $300.00 (trading.max_daily_loss_fraction 3%)."),
    }
    return {name: build() for name, build in builds.items()}


def cases() -> dict[str, Any]:
    """name -> Slack payload (a message, a list of messages in one thread, or a Home view)."""
    out: dict[str, Any] = {}
    for name, said in messages().items():
        if isinstance(said, Page):
            out[name] = blocks.render_home(said)
        elif isinstance(said, list):
            out[name] = [blocks.render(m) for m in said]
        else:
            out[name] = blocks.render(said)
    return out


def write(directory: Path = GOLDEN, payloads: dict[str, Any] | None = None) -> None:
    """Rewrite every golden payload in `directory` (Slack's by default) from scratch."""
    directory.mkdir(parents=True, exist_ok=True)
    for old in directory.glob("*.json"):
        old.unlink()
    for name, payload in (cases() if payloads is None else payloads).items():
        (directory / f"{name}.json").write_text(json.dumps(payload, indent=1, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    if sys.argv[1:] == ["write"]:
        write()
    else:
        print(__doc__)
