"""Property tests over the store and the desk: the invariants money depends on.

- reservations (plus exposure) never exceed the bankroll, whatever sequence of signals,
  approvals, rejections and expiries happens;
- a signal never moves twice, and never gets two orders, under any interleaving of
  concurrent approve / reject / expire.
"""

from __future__ import annotations

import asyncio
import tempfile
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.config import TradingConfig
from pipeline.desk import Actor, Desk
from pipeline.models import FeeModel, SignalStatus, TradeSignal
from pipeline.risk import PositionManager, RiskSnapshot, TradingState
from pipeline.store import Store

from .conftest import make_settings
from .fakes import NOW, make_book, make_market
from .test_desk import ADMIN, Clock, FakeVenue, FixedAnalyzer

D = Decimal
TRADING = TradingConfig(initial_bankroll=D(1000), max_position_fraction=D("0.2"), max_exposure_fraction=D("0.9"),
                        max_open_positions=50)


def signal(n: int, amount: Decimal) -> TradeSignal:
    market = make_market(f"KXPROP-{n}")
    return TradeSignal(id=f"sig-{n}", cycle_id="c1", market=market, side="yes", limit_price=D("0.50"),
                       contracts=D(1), cost=amount, fees=D(0), average_price=D("0.50"), probability=D("0.7"),
                       model_probability=D("0.7"), fair_yes=D("0.7"), edge=D("0.2"), kelly_fraction=D("0.01"),
                       expected_value=D(1), dry_run=True, created_at=NOW, expires_at=NOW + timedelta(minutes=30))


amounts = st.decimals(min_value=D("0.01"), max_value=D(250), places=2)
actions = st.lists(st.tuples(st.sampled_from(["reserve", "reject", "expire", "approve"]), amounts,
                             st.integers(min_value=0, max_value=30)), min_size=1, max_size=40)


def run(coro):
    return asyncio.run(coro)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(actions)
def test_reservations_never_exceed_the_free_bankroll(steps):
    async def scenario():
        gate = PositionManager(TRADING)
        with tempfile.TemporaryDirectory() as tmp:
            store = await Store.open(Path(tmp) / "p.db")
            try:
                made: list[str] = []
                for i, (action, amount, pick) in enumerate(steps):
                    if action == "reserve":
                        s = signal(i, amount)
                        decision = await store.reserve_signal(s, lambda snap, s=s: gate.check_entry(snap, s),
                                                              TRADING.initial_bankroll, NOW)
                        if decision.allowed:
                            made.append(s.id)
                    elif made:
                        target = made[pick % len(made)]
                        moves = {"reject": SignalStatus.REJECTED, "expire": SignalStatus.EXPIRED,
                                 "approve": SignalStatus.APPROVED}
                        await store.move_signal(target, SignalStatus.PENDING, moves[action], actor="t")
                    snap = await store.risk_snapshot(True, TRADING.initial_bankroll, NOW)
                    assert snap.reserved + snap.exposure <= snap.bankroll * TRADING.max_exposure_fraction
                    assert snap.free >= 0
                    held = await store.signals(SignalStatus.PENDING, SignalStatus.APPROVED)
                    assert snap.reserved == sum((s.reserved for s in held), D(0))
            finally:
                await store.close()

    run(scenario())


@given(bankroll=st.decimals(min_value=D(1), max_value=D(100000), places=2),
       reserved=st.decimals(min_value=D(0), max_value=D(100000), places=2),
       amount=amounts)
def test_the_gate_never_allows_more_than_is_free(bankroll, reserved, amount):
    snap = RiskSnapshot(state=TradingState.ACTIVE, bankroll=bankroll, reserved=reserved)
    decision = PositionManager(TRADING).check_entry(snap, signal(1, amount))
    if decision.allowed:
        assert reserved + amount <= bankroll
    else:
        assert decision.reason and decision.code != "ok"


clicks = st.lists(st.tuples(st.sampled_from(["approve", "reject", "expire", "stranger"]),
                            st.booleans()), min_size=2, max_size=12)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(clicks=clicks, live=st.booleans(), past_expiry=st.booleans())
def test_a_signal_moves_once_under_any_interleaving(clicks, live, past_expiry):
    async def scenario():
        with tempfile.TemporaryDirectory() as tmp:
            venue = FakeVenue()
            market = make_market("KXFED-26DEC-H0")
            venue.add(market, make_book(market, bids=[("0.40", "200")], asks=[("0.42", "100"), ("0.44", "100")]))
            cfg = make_settings(Path(tmp), trading={"dry_run": not live},
                                approval={"authorized_users": ["UADMIN1"]}, storage={"path": f"{tmp}/d.db"})
            clock = Clock()
            store = await Store.open(cfg.storage.path)
            try:
                desk = Desk(cfg, store, {venue.venue: venue}, FixedAnalyzer({market.key: "0.70"}), clock=clock)
                [sig] = (await desk.scan()).signals
                if past_expiry:
                    clock.now = sig.expires_at + timedelta(seconds=1)

                async def click(kind: str, yield_first: bool):
                    if yield_first:
                        await asyncio.sleep(0)
                    if kind == "approve":
                        return await desk.approve(sig.id, ADMIN)
                    if kind == "reject":
                        return await desk.reject(sig.id, ADMIN)
                    if kind == "stranger":
                        return await desk.approve(sig.id, Actor(id="UNOBODY"))
                    return await desk.expire_stale()

                outcomes = await asyncio.gather(*(click(k, y) for k, y in clicks))
                decisions = [o for o in outcomes if not isinstance(o, list)]
                final = await store.get_signal(sig.id)
                moves_from_pending = [e for e in await store.audit_log(sig.id)
                                      if e.action in ("signal:approved", "signal:rejected", "signal:expired")
                                      and e.outcome == "ok"]
                assert len(moves_from_pending) <= 1
                assert sum(d.ok for d in decisions) <= 1
                orders = await store.orders()
                assert len(orders) <= 1 and venue.posts <= 1
                if past_expiry:
                    assert final.status in (SignalStatus.PENDING, SignalStatus.EXPIRED) and not orders
                if final.status in (SignalStatus.SIMULATED, SignalStatus.FILLED):
                    assert len(orders) == 1 and [d.ok for d in decisions].count(True) == 1
                if final.status in (SignalStatus.REJECTED, SignalStatus.EXPIRED):
                    assert not orders
                assert all(d.ok or d.message for d in decisions)  # every refusal says why
            finally:
                await store.close()

    run(scenario())


@given(contracts=st.integers(1, 5000), limit=st.decimals("0.01", "0.99", places=2),
       rate=st.sampled_from([D(0), D("0.035"), D("0.07")]), data=st.data())
def test_the_reservation_covers_any_fill_at_or_below_the_limit(contracts, limit, rate, data):
    """Whatever the book looks like when the order goes, the capital held covers it: price and fee."""
    fee_model = FeeModel(rate=rate, rounding=D("0.01"))
    base = signal(1, D(0))  # sized on a book that looked free: only the limit bounds the order
    held = base.model_copy(update={"contracts": D(contracts), "limit_price": limit,
                                   "market": base.market.model_copy(update={"fee_model": fee_model})})
    fill_price = data.draw(st.decimals("0.01", str(limit), places=2))
    assert D(contracts) * fill_price + fee_model.fee(D(contracts), fill_price) <= held.reserved
