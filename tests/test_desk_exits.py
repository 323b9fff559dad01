"""Exits through the Desk on an in-memory venue: proposed by a cycle's rules or by a person, approved like entries,
simulated in dry-run and placed live, never twice, and allowed while the desk is paused or halted."""

from __future__ import annotations

from decimal import Decimal

import pytest

from pipeline.models import ExitReason, OrderAction, OrderStatus, SignalStatus
from pipeline.risk import TradingState

from .fakes import FakeVenue, make_book, make_market
from .test_desk import ADMIN, STRANGER, make_desk

D = Decimal


@pytest.fixture
async def entered(tmp_path):
    """Make desks holding one position per ticker; their databases are closed after the test."""
    stores = []

    async def make(*, dry_run: bool = True, trading: dict | None = None, tickers=("KXFED-26DEC-H0",)):
        desk, venue, store = await _entered(tmp_path, dry_run=dry_run, trading=trading, tickers=tickers)
        stores.append(store)
        return desk, venue, store

    yield make
    for store in stores:
        await store.close()


async def _entered(tmp_path, *, dry_run: bool = True, trading: dict | None = None, tickers=("KXFED-26DEC-H0",)):
    """A desk holding one position per ticker: a cycle's entry approved (113 YES at 0.42/0.44, $49.66 in)."""
    venue = FakeVenue()
    for ticker in tickers:
        market = make_market(ticker)
        venue.add(market, make_book(market, bids=[("0.40", "200"), ("0.38", "500")],
                                    asks=[("0.42", "100"), ("0.44", "100"), ("0.50", "500")]))
    desk, venue, store = await make_desk(tmp_path, dry_run=dry_run, venue=venue, trading=trading)
    for signal in (await desk.scan()).signals:
        assert (await desk.approve(signal.id, ADMIN)).ok
    return desk, venue, store


def bids_move(venue: FakeVenue, ticker: str, bids: list[tuple[str, str]], asks=(("0.70", "100"),)) -> None:
    venue.books[ticker] = make_book(venue.markets[ticker], bids=bids, asks=list(asks))


async def test_a_person_closes_a_position_and_the_dry_run_sale_books_its_pnl(tmp_path, entered):
    desk, venue, store = await entered()
    [held] = await store.positions(paper=True)
    assert held.contracts == D(113) and held.cost + held.fees == D("49.66")
    bids_move(venue, held.market_id, [("0.60", "50"), ("0.59", "100"), ("0.50", "1000")])
    proposed = await desk.close(str(held.id), ADMIN)
    assert proposed.ok and proposed.code == "exit_proposed", proposed.message
    exit_ = proposed.signal
    assert exit_.is_exit and exit_.exit.reason is ExitReason.MANUAL and exit_.exit.requested_by == ADMIN.id
    # 50 @ 0.60 + 63 @ 0.59 (0.50 is past the 0.02 slippage): 67.17; fees ceil(0.84) + ceil(1.0668) = 1.91.
    assert (exit_.contracts, exit_.cost, exit_.fees, exit_.limit_price) == (D(113), D("67.17"), D("1.91"), D("0.59"))
    assert (await store.get_signal(exit_.id)).status is SignalStatus.PENDING
    decision = await desk.approve(exit_.id, ADMIN)
    assert decision.ok and decision.code == "simulated", decision.message
    assert decision.message.startswith("DRY-RUN: would have sold 113 YES")
    assert venue.posts == 0
    order = await store.order_for_signal(exit_.id)
    assert order.action is OrderAction.SELL and order.paper and order.filled == D(113)
    [closed] = await store.positions(paper=True, open_only=False)
    assert closed.status == "closed" and closed.contracts == 0
    assert closed.realized_pnl == D("15.60")  # 67.17 - 1.91 - 49.66
    status = await desk.status()
    assert status.risk.bankroll == D("1015.60") and status.risk.exposure == 0
    # A second click on the same exit never sells twice.
    assert not (await desk.approve(exit_.id, ADMIN)).ok


async def test_a_cycle_proposes_a_stop_loss_exit_and_reviews_without_reanalysing_the_entry(tmp_path, entered):
    desk, venue, store = await entered(trading={"exit": {"stop_loss_fraction": "0.3"}})
    [held] = await store.positions(paper=True)
    bids_move(venue, held.market_id, [("0.25", "500")], asks=[("0.27", "500")])
    result = await desk.scan()
    report = result.report
    assert report.exits == 1 and report.positions_reviewed == 1
    assert report.rejections["already_held"] == 1  # not analysed for a second entry
    [exit_] = result.signals
    assert exit_.is_exit and exit_.exit.reason is ExitReason.STOP_LOSS and "down" in exit_.exit.detail
    assert exit_.contracts == D(113) and exit_.limit_price == D("0.25")
    # Another cycle while it is pending proposes nothing new for that position.
    again = await desk.scan()
    assert again.report.exits == 0 and again.report.holds["exit_pending"] == 1
    assert (await desk.approve(exit_.id, ADMIN)).code == "simulated"
    [closed] = await store.positions(paper=True, open_only=False)
    assert closed.status == "closed" and closed.realized_pnl < 0


async def test_exits_are_approved_while_halted_and_not_held_back_by_the_loss_limit(tmp_path, entered):
    desk, venue, store = await entered(tickers=("KXA-26DEC-T1", "KXB-26DEC-T2"),
                                       trading={"daily_loss_limit_fraction": "0.01"})
    assert (await desk.halt(ADMIN)).ok
    first, second = await store.positions(paper=True)
    for held in (first, second):
        bids_move(venue, held.market_id, [("0.20", "500")])
    proposals = await desk.close_all(ADMIN)
    assert [d.code for d in proposals] == ["exit_proposed", "exit_proposed"]
    # The first sale books a loss past the daily limit (the desk is already halted by hand: no second halt).
    assert (await desk.approve(proposals[0].signal.id, ADMIN)).code == "simulated"
    risk = (await desk.status()).risk
    assert risk.state is TradingState.HALTED and -risk.realized_today >= D("10")
    assert (await desk.approve(proposals[1].signal.id, ADMIN)).code == "simulated"
    assert await store.positions(paper=True) == []
    # An entry is still refused while halted: cycles do not run at all.
    with pytest.raises(Exception, match="HALTED"):
        await desk.scan()


async def test_close_refusals_say_why_and_change_nothing(tmp_path, entered):
    desk, venue, store = await entered()
    [held] = await store.positions(paper=True)
    stranger = await desk.close(str(held.id), STRANGER)
    assert not stranger.ok and stranger.code == "not_authorized"
    missing = await desk.close("999", ADMIN)
    assert not missing.ok and missing.code == "not_found" and "/desk positions" in missing.message
    usage = await desk.close("  ", ADMIN)
    assert usage.code == "usage"
    by_ticker = await desk.close(held.market_id.lower(), ADMIN)
    assert by_ticker.ok  # a market's ticker names its position too
    twice = await desk.close(f"#{held.id}", ADMIN)
    assert not twice.ok and twice.code == "exit_pending" and by_ticker.signal.id in twice.message
    bids_move(venue, held.market_id, [], asks=[("0.50", "10")])
    await desk.reject(by_ticker.signal.id, ADMIN)
    no_bids = await desk.close(str(held.id), ADMIN)
    assert not no_bids.ok and no_bids.code == "no_bids" and "stays held" in no_bids.message
    assert await store.exiting_positions() == {}
    refusals = [e for e in await store.audit_log() if e.action == "close" and e.outcome.startswith("refused")]
    assert len(refusals) >= 4


async def test_a_live_position_is_not_closed_by_a_dry_run_desk(tmp_path, entered):
    desk, venue, store = await entered(dry_run=False)
    [held] = await store.positions(paper=False)
    paper_desk, _, _ = await make_desk(tmp_path, dry_run=True, venue=venue)
    refused = await paper_desk.close(str(held.id), ADMIN)
    assert not refused.ok and refused.code == "mode_changed" and "never sends a live order" in refused.message
    await paper_desk.store.close()


async def test_a_moved_book_refuses_the_exit_with_the_new_numbers(tmp_path, entered):
    desk, venue, store = await entered()
    [held] = await store.positions(paper=True)
    bids_move(venue, held.market_id, [("0.60", "500")])
    exit_ = (await desk.close(str(held.id), ADMIN)).signal
    bids_move(venue, held.market_id, [("0.55", "500")])
    refused = await desk.approve(exit_.id, ADMIN)
    assert not refused.ok and refused.code == "stale" and refused.details["price"] == "0.55"
    assert "fell from 0.600 to 0.55" in refused.message
    assert (await store.get_signal(exit_.id)).status is SignalStatus.PENDING  # still decidable once it recovers


async def test_a_live_exit_is_placed_once_and_a_lost_reply_is_looked_up_never_resent(tmp_path, entered):
    desk, venue, store = await entered(dry_run=False)
    [held] = await store.positions(paper=False)
    posts = venue.posts
    bids_move(venue, held.market_id, [("0.60", "60"), ("0.59", "20")])
    exit_ = (await desk.close(str(held.id), ADMIN)).signal
    assert exit_.contracts == D(80)  # the bids within 2 cents take 80 of the 113 held
    venue.lose_reply = True
    decision = await desk.approve(exit_.id, ADMIN)
    venue.lose_reply = False
    assert venue.posts == posts + 1
    [request] = [r for c, r in venue.orders.items() if c == exit_.client_order_id]
    assert request.filled == D(80)
    # The executor looked it up by client order id at once: booked, not re-sent.
    assert decision.ok and decision.signal.status is SignalStatus.FILLED, decision.message
    [left] = await store.positions(paper=False)
    assert left.contracts == D(33)
    report = await desk.reconcile(on_start=True)
    assert not report.unresolved and venue.posts == posts + 1
    [still] = await store.positions(paper=False)
    assert still.contracts == D(33) and still.realized_pnl == left.realized_pnl  # booked once


async def test_an_ioc_sale_that_fills_part_books_only_what_sold(tmp_path, entered):
    desk, venue, store = await entered(dry_run=False)
    [held] = await store.positions(paper=False)
    bids_move(venue, held.market_id, [("0.60", "500")])
    exit_ = (await desk.close(str(held.id), ADMIN)).signal
    bids_move(venue, held.market_id, [("0.60", "40")])  # most of the bid was taken meanwhile
    decision = await desk.approve(exit_.id, ADMIN)
    assert decision.ok and decision.signal.status is SignalStatus.PARTIALLY_FILLED
    order = await store.order_for_signal(exit_.id)
    assert order.status is OrderStatus.PARTIALLY_FILLED and order.filled == D(40)
    [left] = await store.positions(paper=False)
    assert left.contracts == D(73)
    # The rest can be closed again.
    bids_move(venue, held.market_id, [("0.58", "500")])
    assert (await desk.close(str(held.id), ADMIN)).ok


async def test_an_exit_whose_loss_reaches_the_daily_limit_halts_the_desk_at_once(tmp_path, entered):
    desk, venue, store = await entered(tickers=("KXA-26DEC-T1", "KXB-26DEC-T2"),
                                       trading={"daily_loss_limit_fraction": "0.01"})
    first, second = await store.positions(paper=True)
    bids_move(venue, first.market_id, [("0.20", "500")])
    exit_ = (await desk.close(str(first.id), ADMIN)).signal
    decision = await desk.approve(exit_.id, ADMIN)
    assert decision.code == "simulated" and "Daily loss limit" in decision.message and "HALTED" in decision.message
    assert (await desk.status()).state is TradingState.HALTED
    # Halted, the other position can still be closed.
    bids_move(venue, second.market_id, [("0.45", "500")])
    other = await desk.close(str(second.id), ADMIN)
    assert (await desk.approve(other.signal.id, ADMIN)).code == "simulated"


async def test_an_exit_whose_position_changed_is_withdrawn_so_a_fresh_close_can_follow(tmp_path, entered):
    desk, venue, store = await entered(dry_run=False)
    [held] = await store.positions(paper=False)
    bids_move(venue, held.market_id, [("0.60", "500")])
    first = (await desk.close(str(held.id), ADMIN)).signal
    venue.resolve(held.market_id, "1")  # the market resolves before the Approve; settlement pays the position out
    assert (await desk.settle()).settled
    refused = await desk.approve(first.id, ADMIN)
    assert not refused.ok and refused.code == "position_changed" and "withdrawn" in refused.message
    assert refused.signal.status is SignalStatus.EXPIRED and await store.exiting_positions() == {}


async def test_a_stale_exit_says_how_to_get_a_fresh_price_and_odd_numbers_are_not_positions(tmp_path, entered):
    desk, venue, store = await entered()
    [held] = await store.positions(paper=True)
    bids_move(venue, held.market_id, [("0.60", "500")])
    first = (await desk.close(str(held.id), ADMIN)).signal
    bids_move(venue, held.market_id, [("0.50", "500")])
    stale = await desk.approve(first.id, ADMIN)
    assert stale.code == "stale" and "Keep it and close again" in stale.message
    again = await desk.close(str(held.id), ADMIN)
    assert again.code == "exit_pending" and "Keep it, then close again" in again.message
    for odd in ("²", "9" * 30):  # digits Python reads but the database cannot hold: a ticker nobody has
        assert (await desk.close(odd, ADMIN)).code == "not_found"
