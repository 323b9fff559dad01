"""Settlement: resolved markets close positions with realised P&L; the daily loss limit halts the desk."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from pipeline.desk import RISK_ACTOR
from pipeline.errors import GiveUpError, RefusedError
from pipeline.models import OrderStatus
from pipeline.risk import TradingState

from .fakes import NOW, make_book, make_market
from .test_desk import ADMIN, Clock, make_desk, standard_venue

D = Decimal
MARKET = "KXFED-26DEC-H0"  # standard_venue(): 113 YES bought for $47.72 + $1.94 fees on approval


@pytest.fixture
async def desks():
    """make_desk(...) whose stores are closed even when a test fails (an open store keeps pytest alive)."""
    stores = []

    async def make(tmp_path, **kwargs):
        tmp_path.mkdir(parents=True, exist_ok=True)
        desk, venue, store = await make_desk(tmp_path, **kwargs)
        stores.append(store)
        return desk, venue, store

    yield make
    for store in stores:
        await store.close()


@pytest.fixture
def approved_position(desks):
    async def make(tmp_path, *, dry_run: bool = True, trading: dict | None = None, clock: Clock | None = None):
        desk, venue, store = await desks(tmp_path, dry_run=dry_run, trading=trading, clock=clock)
        [signal] = (await desk.scan()).signals
        await desk.approve(signal.id, ADMIN)
        return desk, venue, store
    return make


async def test_a_yes_resolution_pays_each_yes_contract_a_dollar_and_books_the_profit(tmp_path, approved_position, desks):
    desk, venue, store = await approved_position(tmp_path)
    venue.resolve(MARKET, "1")
    report = await desk.settle()
    [settled] = report.settled
    assert settled.payout == D(113) and settled.position.realized_pnl == D("63.34")  # 113 - 47.72 - 1.94
    assert settled.position.status == "closed" and settled.position.paper
    assert await store.positions(paper=True) == []
    risk = (await desk.status()).risk
    assert risk.bankroll == D("1063.34") and risk.exposure == 0 and risk.realized_today == D("63.34")
    [entry] = [e for e in await store.audit_log() if e.action == "position:settled"]
    assert entry.actor == "settlement" and "realised 63.34" in entry.detail


async def test_a_no_resolution_loses_what_was_paid(tmp_path, approved_position, desks):
    desk, venue, store = await approved_position(tmp_path)
    venue.resolve(MARKET, "0")
    [settled] = (await desk.settle()).settled
    assert settled.payout == 0 and settled.position.realized_pnl == D("-49.66")
    assert (await desk.status()).risk.bankroll == D("950.34")


async def test_a_fifty_fifty_resolution_pays_half(tmp_path, approved_position, desks):
    desk, venue, store = await approved_position(tmp_path)
    venue.resolve(MARKET, "0.5")
    [settled] = (await desk.settle()).settled
    assert settled.payout == D("56.5") and settled.position.realized_pnl == D("6.84")


async def test_settling_twice_books_the_profit_once(tmp_path, approved_position, desks):
    desk, venue, store = await approved_position(tmp_path)
    venue.resolve(MARKET, "1")
    assert len((await desk.settle()).settled) == 1
    assert (await desk.settle()).settled == []
    assert (await desk.status()).risk.bankroll == D("1063.34")


async def test_an_open_market_and_an_unreachable_venue_leave_the_position_open(tmp_path, approved_position, desks):
    desk, venue, store = await approved_position(tmp_path)
    assert (await desk.settle()).settled == []  # not resolved yet
    venue.resolution_error = GiveUpError("kalshi: HTTP 503 (market KXFED-26DEC-H0)")
    report = await desk.settle()
    assert report.settled == [] and "could not ask how it resolved" in report.unavailable[0]
    [position] = await store.positions(paper=True)
    assert position.status == "open" and (await desk.status()).risk.exposure == D("49.66")


async def test_paper_and_live_profits_are_kept_apart(tmp_path, approved_position, desks):
    desk, venue, store = await approved_position(tmp_path, dry_run=True)
    live_desk, _, live_store = await desks(tmp_path / "live", dry_run=False, venue=venue)
    [signal] = (await live_desk.scan()).signals
    await live_desk.approve(signal.id, ADMIN)
    venue.resolve(MARKET, "1")
    await desk.settle()
    await live_desk.settle()
    assert (await desk.status()).risk.bankroll == D("1063.34")  # paper: its own fills at its own prices
    live = (await live_desk.status()).risk
    [closed] = await live_store.positions(paper=False, open_only=False)
    assert live.bankroll == D(1000) + closed.realized_pnl and closed.realized_pnl > 0
    assert await store.positions(paper=False, open_only=False) == []  # the paper desk holds nothing live


async def test_a_loss_past_the_daily_limit_halts_the_desk_once_and_says_why(tmp_path, approved_position, desks):
    # Limit 4% of $1,000 = $40; the position costs $49.66 and NO wins.
    desk, venue, store = await approved_position(tmp_path, trading={"daily_loss_limit_fraction": "0.04"})
    venue.resolve(MARKET, "0")
    report = await desk.settle()
    assert report.halted.startswith("Daily loss limit: today's realised loss $49.66 reached the daily limit $40.00")
    assert "HALTED" in report.halted and "/desk resume" in report.halted
    assert await store.trading_state() is TradingState.HALTED
    [entry] = [e for e in await store.audit_log() if e.action == "set_state"]
    assert entry.actor == RISK_ACTOR and entry.subject == "halted"
    with pytest.raises(RefusedError, match="HALTED"):
        await desk.scan()


async def test_after_a_person_resumes_the_loss_limit_does_not_halt_again_that_day(tmp_path, approved_position, desks):
    clock = Clock(NOW)
    desk, venue, store = await approved_position(tmp_path, trading={"daily_loss_limit_fraction": "0.04"},
                                                 clock=clock)
    venue.resolve(MARKET, "0")
    assert (await desk.settle()).halted
    assert (await desk.resume(ADMIN)).ok
    assert (await desk.settle()).halted == ""
    assert await store.trading_state() is TradingState.ACTIVE
    # ...but new entries are still refused by the limit itself for the rest of the day.
    snapshot = await store.risk_snapshot(True, D(1000), NOW.replace(hour=0, minute=0, second=0, microsecond=0))
    assert desk.risk.check_state(snapshot).code == "daily_loss_limit"
    clock.now = NOW + timedelta(days=1)  # a new day: yesterday's loss no longer counts
    assert (await desk.settle()).halted == ""


async def test_the_loss_halt_cancels_resting_live_orders(tmp_path, approved_position, desks):
    venue, _ = standard_venue()
    other = make_market("KXCPI-26DEC-T3")
    venue.add(other, make_book(other, bids=[("0.40", "200")], asks=[("0.42", "100"), ("0.44", "100")]))
    desk, venue, store = await desks(tmp_path, dry_run=False, venue=venue,
                                     trading={"daily_loss_limit_fraction": "0.04"})
    signals = {s.market.id: s for s in (await desk.scan()).signals}
    assert (await desk.approve(signals[MARKET].id, ADMIN)).code == "executed"  # fills
    venue.rest_orders = True
    assert (await desk.approve(signals[other.id].id, ADMIN)).ok  # rests at the venue
    assert (await store.order_for_signal(signals[other.id].id)).status is OrderStatus.RESTING
    venue.resolve(MARKET, "0")
    report = await desk.settle()
    assert "1 resting order(s) cancelled" in report.halted and venue.cancels == 1
    assert (await store.order_for_signal(signals[other.id].id)).status is OrderStatus.CANCELED
    [entry] = [e for e in await store.audit_log() if e.action == "set_state"]
    assert entry.actor == RISK_ACTOR
