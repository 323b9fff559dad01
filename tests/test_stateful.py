"""Random lives of a live desk: signals, approvals, rejections, expiries, fills, exits, settlements, restarts.

Hypothesis drives the real Desk and Store (SQLite on disk) against an in-memory venue whose
behaviour it also chooses (orders that fill, rest, are refused, or whose reply is lost). After
every step it checks the properties money depends on:
- reserved + exposed capital never exceeds the bankroll;
- no signal has two orders, and every order the venue holds is one the desk recorded;
- positions are exactly what the fills add up to: bought less sold, and never below zero;
- realised P&L is booked once: each position's is the sum of its ledger entries, one per exit fill and
  settlement, and the bankroll is the initial one plus the ledger;
- after reconciliation every order is final or resting at the venue, or flagged as unresolved.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from pipeline.desk import Desk
from pipeline.errors import GiveUpError, RefusedError
from pipeline.models import OrderAction, OrderRequest, OrderStatus, SignalStatus
from pipeline.risk import TradingState
from pipeline.store import Store
from pipeline.venues.paper import simulate_fill

from .conftest import make_settings
from .fakes import NOW, FakeVenue, make_book, make_market
from .test_desk import ADMIN, Clock, FixedAnalyzer

D = Decimal
MARKETS = ("KXA-26DEC-T1", "KXB-26DEC-T2", "KXC-26DEC-T3", "KXD-26DEC-T4")
SETTLED_OR_RESTING = {OrderStatus.FILLED, OrderStatus.PARTIALLY_FILLED, OrderStatus.CANCELED, OrderStatus.REJECTED,
                      OrderStatus.RESTING}


def exchange() -> FakeVenue:
    venue = FakeVenue()
    for ticker in MARKETS:
        market = make_market(ticker)
        venue.add(market, make_book(market, bids=[("0.40", "200")], asks=[("0.42", "100"), ("0.44", "100")]))
    return venue


class DeskLife(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.directory = Path(tempfile.mkdtemp(prefix="oddsdesk-stateful-"))
        self.settings = make_settings(self.directory, trading={"dry_run": False, "daily_loss_limit_fraction": "0.04",
                                                               "exit": {"stop_loss_fraction": "0.4"}},
                                      approval={"authorized_users": [ADMIN.id]},
                                      storage={"path": str(self.directory / "desk.db")})
        self.venue = exchange()  # the exchange outlives every restart of the desk
        self.clock = Clock(NOW)
        self.store: Store = self.run(Store.open(self.settings.storage.path))
        self.desk = self._desk()
        self.posts_at_halt: int | None = None  # entries posted to the venue when the desk was last halted by hand
        self.sells_posted = 0  # exit orders posted to the venue: allowed while halted (they reduce risk)

    def _desk(self) -> Desk:
        analyzer = FixedAnalyzer({f"kalshi:{t}": "0.70" for t in MARKETS})
        return Desk(self.settings, self.store, {self.venue.venue: self.venue}, analyzer, clock=self.clock)

    def run(self, coroutine):
        return self.loop.run_until_complete(coroutine)

    def teardown(self) -> None:
        self.run(self.store.close())
        self.loop.close()
        shutil.rmtree(self.directory, ignore_errors=True)

    def pending(self) -> list:
        # By market, not as stored: one scan's signals share a timestamp and then sort by their random ids,
        # which would make `pick` choose differently when hypothesis replays a case.
        return sorted(self.run(self.store.signals(SignalStatus.PENDING)), key=lambda s: (s.market.id, s.side.value))

    # -- what people do ------------------------------------------------------------------

    @initialize(holding=st.integers(0, 4))
    def the_desk_holds_positions(self, holding: int) -> None:
        """Most lives start holding something, so exits, partial ones and settlements after them get explored."""
        for signal in self.pending()[:holding] if self.run(self.desk.scan()).signals else []:
            assert self.run(self.desk.approve(signal.id, ADMIN)).ok

    @rule()
    def scan(self) -> None:
        try:
            report = self.run(self.desk.scan()).report
            if report.exits:
                event("a cycle proposed an exit")
        except RefusedError:  # halted by the loss limit
            pass

    @precondition(lambda self: self.pending())
    @rule(pick=st.integers(0, 9), behaviour=st.sampled_from(["fill", "rest", "refuse", "lose_reply"]))
    def approve(self, pick: int, behaviour: str) -> None:
        signals = self.pending()
        signal = signals[pick % len(signals)]
        # An exit is reduce-only immediate-or-cancel: it never rests at a venue (test_sell_orders checks the venues).
        self.venue.rest_orders = behaviour == "rest" and not signal.is_exit
        self.venue.refuse_with = GiveUpError("kalshi: insufficient_balance") if behaviour == "refuse" else None
        self.venue.lose_reply = behaviour == "lose_reply"
        before = self.venue.posts
        try:
            decision = self.run(self.desk.approve(signal.id, ADMIN))
        finally:
            if signal.is_exit:
                self.sells_posted += self.venue.posts - before
            self.venue.rest_orders = self.venue.lose_reply = False
            self.venue.refuse_with = None
        event(f"approve {'exit' if signal.is_exit else 'entry'} ({behaviour}) -> {decision.code}")
        assert decision.message  # every outcome, refusals included, carries a sentence for the user
        again = self.run(self.desk.approve(signal.id, ADMIN))  # a second click never trades twice
        assert not again.ok

    @precondition(lambda self: self.pending())
    @rule(pick=st.integers(0, 9))
    def reject(self, pick: int) -> None:
        signals = self.pending()
        assert self.run(self.desk.reject(signals[pick % len(signals)].id, ADMIN)).ok

    @rule(minutes=st.sampled_from([5, 31, 24 * 60]))
    def time_passes_and_the_sweeper_runs(self, minutes: int) -> None:
        self.clock.now += timedelta(minutes=minutes)
        for signal in self.run(self.desk.expire_stale()):
            assert signal.status is SignalStatus.EXPIRED

    @rule(pick=st.integers(0, 9))
    def a_person_closes_a_position(self, pick: int) -> None:
        positions = self.run(self.store.positions(paper=False))
        if not positions:
            return
        decision = self.run(self.desk.close(str(positions[pick % len(positions)].id), ADMIN))
        event(f"close -> {decision.code}")
        assert decision.message

    @rule()
    def close_all(self) -> None:
        for decision in self.run(self.desk.close_all(ADMIN)):
            assert decision.message

    @rule(ticker=st.sampled_from(MARKETS), bid=st.sampled_from(["0.15", "0.40", "0.60", "0.80"]))
    def the_book_moves(self, ticker: str, bid: str) -> None:
        market = self.venue.markets[ticker]
        ask = str(D(bid) + D("0.02"))
        self.venue.books[ticker] = make_book(market, bids=[(bid, "150")], asks=[(ask, "100"), ("0.90", "100")])

    @rule()
    def resume(self) -> None:
        self.run(self.desk.resume(ADMIN))
        self.posts_at_halt = None

    @rule()
    def halt(self) -> None:
        assert self.run(self.desk.halt(ADMIN)).ok
        if self.posts_at_halt is None:
            self.posts_at_halt = self.venue.posts - self.sells_posted
        # Every order the desk knew as resting was cancelled (one whose answer was lost waits for reconciliation).
        assert self.run(self.store.orders(OrderStatus.RESTING)) == []

    @rule()
    def pause(self) -> None:
        assert self.run(self.desk.pause(ADMIN)).ok

    # -- what the venue does -------------------------------------------------------------

    @precondition(lambda self: any(r.status is OrderStatus.RESTING for r in self.venue.orders.values()))
    @rule()
    def a_resting_order_fills(self) -> None:
        cid, held = next((c, r) for c, r in self.venue.orders.items() if r.status is OrderStatus.RESTING)
        [ours] = [o for o in self.run(self.store.orders()) if o.client_order_id == cid]
        market = self.venue.markets[ours.market_id]
        request = OrderRequest(client_order_id=cid, venue=ours.venue, market_id=ours.market_id, side=ours.side,
                               action=ours.action, contracts=ours.contracts, limit_price=ours.limit_price)
        filled = simulate_fill(request, market, self.venue.books[market.id])
        self.venue.orders[cid] = held.model_copy(update={"status": OrderStatus.FILLED, "fills": filled.fills})

    @rule(ticker=st.sampled_from(MARKETS), payout=st.sampled_from(["0", "1", "0.5"]))
    def a_market_resolves_and_settlement_runs(self, ticker: str, payout: str) -> None:
        if ticker not in self.venue.resolutions:
            self.venue.resolve(ticker, payout)
        report = self.run(self.desk.settle())
        for item in report.settled:
            assert item.position.status == "closed"
        if report.settled:
            event("positions settled")
        if report.halted:
            event("daily loss limit halted the desk")

    @rule()
    def reconciliation_runs(self) -> None:
        report = self.run(self.desk.reconcile(on_start=True))
        flagged = {i.order.id for i in report.unresolved}
        for order in self.run(self.store.orders()):
            assert order.status in SETTLED_OR_RESTING or order.id in flagged, (
                f"order {order.client_order_id} left {order.status.value} and not flagged")
        if self.run(self.store.trading_state()) is TradingState.HALTED:
            assert not self.resting_at_the_venue(), "an order rests at the venue while the desk is halted"

    def resting_at_the_venue(self) -> bool:
        return any(r.status is OrderStatus.RESTING for r in self.venue.orders.values())

    @rule()
    def restart(self) -> None:
        self.run(self.store.close())
        self.store = self.run(Store.open(self.settings.storage.path))
        self.desk = self._desk()

    # -- what must always hold -----------------------------------------------------------

    @invariant()
    def committed_capital_never_exceeds_the_bankroll(self) -> None:
        trading = self.settings.trading
        day = self.clock.now.replace(hour=0, minute=0, second=0, microsecond=0)
        risk = self.run(self.store.risk_snapshot(False, trading.initial_bankroll, day))
        assert risk.reserved + risk.exposure <= risk.bankroll, risk

    @invariant()
    def one_order_per_signal_and_the_venue_holds_nothing_unrecorded(self) -> None:
        orders = self.run(self.store.orders())
        assert len({o.signal_id for o in orders}) == len(orders)
        ours = {o.client_order_id for o in orders}
        assert set(self.venue.orders) <= ours
        assert self.venue.posts <= len(orders)

    @invariant()
    def no_entry_is_sent_while_halted(self) -> None:
        if self.posts_at_halt is not None:
            assert self.venue.posts - self.sells_posted == self.posts_at_halt

    @invariant()
    def positions_are_what_the_fills_add_up_to(self) -> None:
        orders = self.run(self.store.orders())
        bought = sum((o.filled for o in orders if o.action is OrderAction.BUY), D(0))
        sold = sum((o.filled for o in orders if o.action is OrderAction.SELL), D(0))
        positions = self.run(self.store.positions(open_only=False))
        assert all(p.contracts >= 0 for p in positions), positions
        assert all(p.contracts > 0 for p in positions if p.status == "open"), positions
        assert sum((p.contracts for p in positions), D(0)) == bought - sold

    @invariant()
    def realised_pnl_is_booked_once(self) -> None:
        ledger = self.run(self.store.realized_ledger(paper=False))
        for position in self.run(self.store.positions(paper=False, open_only=False)):
            entries = [e for e in ledger if e["position_id"] == position.id]
            assert position.realized_pnl == sum((D(e["pnl"]) for e in entries), D(0)), (position, entries)
            assert sum(1 for e in entries if e["kind"] == "settlement") <= 1
        for order in self.run(self.store.orders()):
            booked = [e for e in ledger if e["order_id"] == order.id]
            assert len(booked) <= len(self.run(self.store.fills_for_order(order.id)))
        trading = self.settings.trading
        risk = self.run(self.store.risk_snapshot(False, trading.initial_bankroll, NOW))
        assert risk.bankroll == trading.initial_bankroll + sum((D(e["pnl"]) for e in ledger), D(0))


DeskLife.TestCase.settings = settings(max_examples=50, stateful_step_count=30, deadline=None,
                                      suppress_health_check=[HealthCheck.too_slow])
TestDeskLife = DeskLife.TestCase
