"""Exits: the money math worked by hand, and what the store books when a sell fills.

Hand-worked figures use a fee schedule that rounds each trade up to the cent (FeeModel's default) so they can be
followed on paper: fee(C, P) = ceil_to_cent(rate * C * P * (1 - P)).
"""

from __future__ import annotations

import sqlite3
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest

from pipeline.config import TradingConfig
from pipeline.exits import ExitCase, Hold, build_exit_signal, quote_exit, recheck_exit, review_position
from pipeline.models import (Estimate, ExitReason, FeeModel, Fill, Market, Order, OrderAction, OrderResult,
                             OrderStatus, Position, Resolution, Side, SignalStatus, TradeSignal, Venue)
from pipeline.risk import RiskDecision, TradingState
from pipeline.store import MIGRATIONS, SCHEMA_VERSION, ExitInFlight, Store

from .fakes import NOW, make_book, make_market

D = Decimal
ALLOW = RiskDecision(True)
DAY = NOW.replace(hour=0, minute=0)


def trading(**exit_rules: str) -> TradingConfig:
    return TradingConfig(min_edge=D("0.08"), exit={k: D(v) for k, v in exit_rules.items()})


def position(contracts: str = "10", cost: str = "4.00", fees: str = "0.17", side: Side = Side.YES,
             market: Market | None = None, pid: int = 1) -> Position:
    market = market or make_market("KXEXIT-26DEC-T1")
    return Position(id=pid, venue=market.venue, market_id=market.id, side=side, paper=True, contracts=D(contracts),
                    cost=D(cost), fees=D(fees), title=market.title, opened_at=NOW)


def estimate(market: Market, fair_yes: str) -> Estimate:
    return Estimate(market_key=market.key, model_probability=D(fair_yes), market_probability=None,
                    fair_probability=D(fair_yes), reasoning="test")


# -- quoting an exit against the bids -----------------------------------------------------------


def test_selling_yes_walks_the_yes_bids_down_to_the_slippage_floor():
    market = make_market()  # Kalshi, taker rate 0.07
    book = make_book(market, bids=[("0.60", "4"), ("0.58", "10"), ("0.55", "100")], asks=[("0.62", "50")])
    quote = quote_exit(D(10), market, book, Side.YES, max_slippage=D("0.02"))
    assert not isinstance(quote, Hold)
    # 4 @ 0.60 + 6 @ 0.58 = 2.40 + 3.48 = 5.88; fees ceil(0.07*4*0.24=0.0672)=0.07 + ceil(0.07*6*0.2436=0.1023)=0.11
    assert (quote.contracts, quote.proceeds, quote.fees) == (D(10), D("5.88"), D("0.18"))
    assert quote.average_price == D("0.588") and quote.limit_price == D("0.58") and quote.net == D("5.70")
    assert not quote.partial
    # One cent of slippage: only the 0.60 level may be hit, so the exit sells 4 of the 10.
    part = quote_exit(D(10), market, book, Side.YES, max_slippage=D("0.01"))
    assert not isinstance(part, Hold) and part.contracts == D(4) and part.partial and part.limit_price == D("0.60")


def test_selling_no_hits_the_yes_asks_mirrored():
    market = make_market()
    # NO bids are the YES asks mirrored: 1 - 0.45 = 0.55 for 5, 1 - 0.47 = 0.53 for 20.
    book = make_book(market, bids=[("0.40", "10")], asks=[("0.45", "5"), ("0.47", "20")])
    quote = quote_exit(D(10), market, book, Side.NO, max_slippage=D("0.02"))
    assert not isinstance(quote, Hold)
    # 5 @ 0.55 + 5 @ 0.53 = 5.40; fees ceil(0.07*5*0.2475=0.0866)=0.09 + ceil(0.07*5*0.2491=0.0872)=0.09
    assert (quote.proceeds, quote.fees, quote.limit_price) == (D("5.40"), D("0.18"), D("0.53"))


def test_polymarket_sale_pays_the_markets_rate_to_a_hundred_thousandth():
    market = make_market(venue=Venue.POLYMARKET, rate="0.04").model_copy(update={
        "fee_model": FeeModel(rate=D("0.04"), rounding=D("0.00001")), "id": "0xabc", "yes_token_id": "1",
        "no_token_id": "2"})
    book = make_book(market, bids=[("0.70", "50")], asks=[("0.72", "50")])
    quote = quote_exit(D(20), market, book, Side.YES, max_slippage=D("0.02"))
    assert not isinstance(quote, Hold)
    # 20 @ 0.70 = 14.00; fee 0.04 * 20 * 0.70 * 0.30 = 0.168 exactly
    assert (quote.proceeds, quote.fees, quote.net) == (D("14.00"), D("0.16800"), D("13.83200"))


def test_an_edge_exit_sells_only_levels_that_still_beat_the_fair_value():
    market = make_market()
    book = make_book(market, bids=[("0.70", "3"), ("0.69", "10")], asks=[("0.72", "5")])
    # fair 0.60: at 0.70 the exit edge is 0.70 - 0.07*0.21 - 0.60 = 0.0853 >= 0.08; at 0.69 it is 0.0753 < 0.08.
    quote = quote_exit(D(10), market, book, Side.YES, D("0.02"), fair=D("0.60"), min_edge=D("0.08"))
    assert not isinstance(quote, Hold) and quote.contracts == D(3) and quote.limit_price == D("0.70")


def test_no_bids_holds_with_a_reason():
    market = make_market()
    held = quote_exit(D(10), market, make_book(market, bids=[], asks=[("0.50", "5")]), Side.YES, D("0.02"))
    assert isinstance(held, Hold) and held.code == "no_bids" and "YES bids" in held.detail


# -- which rule proposes an exit ------------------------------------------------------------------


def book_at(market: Market, bid: str, size: str = "100") -> object:
    return make_book(market, bids=[(bid, size)], asks=[(str(D(bid) + D("0.02")), size)])


def test_closing_soon_comes_first_and_says_the_hours_left():
    market = make_market().model_copy(update={"close_time": NOW + timedelta(hours=3)})
    case = review_position(position(market=market), market, book_at(market, "0.50"), None,
                           trading(hours_before_close="6"), D("0.02"), NOW)
    assert isinstance(case, ExitCase) and case.reason is ExitReason.CLOSING_SOON
    assert "closes in 3.0 h" in case.detail
    # Outside the window nothing without an estimate triggers.
    later = review_position(position(market=market), market, book_at(market, "0.50"), None,
                            trading(hours_before_close="2"), D("0.02"), NOW)
    assert isinstance(later, Hold) and later.code == "no_estimate"


def test_stop_loss_triggers_when_the_bid_after_fees_returns_too_little():
    market = make_market()
    held = position(cost="4.00", fees="0.17")  # 10 YES, $4.17 in
    # At 0.20: value (0.20 - 0.07*0.16) * 10 = 1.888 <= 4.17 * 0.5 -> stop loss.
    case = review_position(held, market, book_at(market, "0.20"), None, trading(stop_loss_fraction="0.5"),
                           D("0.02"), NOW)
    assert isinstance(case, ExitCase) and case.reason is ExitReason.STOP_LOSS and "54.7% down" in case.detail
    # At 0.25: (0.25 - 0.013125) * 10 = 2.369 > 2.085 -> held.
    kept = review_position(held, market, book_at(market, "0.25"), None, trading(stop_loss_fraction="0.5"),
                           D("0.02"), NOW)
    assert isinstance(kept, Hold)


def test_take_profit_and_edge_gone_against_the_analysts_fair_value():
    market = make_market()
    held = position(cost="4.00", fees="0.17")  # paid 0.40 a contract
    # Fair 0.50, bid 0.60: edge 0.60 - 0.07*0.24 - 0.50 = 0.0832 >= 0.08, above the 0.40 paid: take profit.
    case = review_position(held, market, book_at(market, "0.60"), estimate(market, "0.50"), trading(), D("0.02"),
                           NOW)
    assert isinstance(case, ExitCase) and case.reason is ExitReason.TAKE_PROFIT
    # Fair 0.20, bid 0.30 (below the 0.40 paid): the analyst now thinks it worth less than the bid: edge gone.
    gone = review_position(held, market, book_at(market, "0.30"), estimate(market, "0.20"), trading(), D("0.02"),
                           NOW)
    assert isinstance(gone, ExitCase) and gone.reason is ExitReason.EDGE_GONE
    # Fair 0.55, bid 0.60: edge 0.0332 < 0.08: held, and the report says why.
    kept = review_position(held, market, book_at(market, "0.60"), estimate(market, "0.55"), trading(), D("0.02"),
                           NOW)
    assert isinstance(kept, Hold) and kept.code == "edge_below_minimum"


def test_a_no_position_is_judged_on_the_no_side():
    market = make_market()
    held = position(side=Side.NO, cost="5.00", fees="0.17")
    # Fair YES 0.70 -> NO worth 0.30; NO bid = 1 - YES ask 0.58 = 0.42: edge 0.42 - 0.07*0.2436 - 0.30 = 0.103.
    book = make_book(market, bids=[("0.55", "100")], asks=[("0.58", "100")])
    case = review_position(held, market, book, estimate(market, "0.70"), trading(), D("0.02"), NOW)
    assert isinstance(case, ExitCase) and case.reason is ExitReason.EDGE_GONE and case.quote.limit_price == D("0.42")


def test_the_exit_signal_states_proceeds_basis_and_the_gain_over_holding():
    market = make_market()
    held = position(contracts="10", cost="4.00", fees="0.20")
    case = review_position(held, market, book_at(market, "0.60", size="4"), estimate(market, "0.50"), trading(),
                           D("0.02"), NOW)
    assert isinstance(case, ExitCase)
    signal = build_exit_signal(signal_id="s1", cycle_id="c1", position=held, market=market, case=case,
                               estimate=estimate(market, "0.50"), dry_run=True, now=NOW, expiry=timedelta(minutes=30))
    assert signal.is_exit and signal.action is OrderAction.SELL and signal.reserved == 0
    assert signal.contracts == D(4) and signal.exit.held == D(10)
    assert signal.exit.basis == D("1.68")  # 4 of 10 contracts of $4.20
    assert signal.cost == D("2.40") and signal.fees == D("0.07") and signal.proceeds == D("2.33")
    assert signal.expected_value == D("0.33")  # 2.33 received vs 4 * 0.50 held at fair value
    assert signal.edge == D("0.0825")  # 0.60 - 0.07/4 - 0.50


def test_an_entry_without_the_analysts_numbers_or_an_exit_without_terms_is_refused():
    with pytest.raises(ValueError):
        TradeSignal(id="x", cycle_id="c", market=make_market(), side=Side.YES, limit_price=D("0.5"),
                    contracts=D(1), cost=D("0.5"), fees=D(0), average_price=D("0.5"), created_at=NOW,
                    expires_at=NOW)
    with pytest.raises(ValueError):
        TradeSignal(id="x", cycle_id="c", market=make_market(), side=Side.YES, limit_price=D("0.5"),
                    contracts=D(1), cost=D("0.5"), fees=D(0), average_price=D("0.5"), created_at=NOW,
                    expires_at=NOW, action=OrderAction.SELL)


# -- the re-check at approval -------------------------------------------------------------------


def exit_signal(market: Market, *, reason: ExitReason = ExitReason.MANUAL, fair: str | None = None,
                contracts: str = "10", avg: str = "0.60", limit: str = "0.58") -> TradeSignal:
    held = position(market=market)
    quote_book = make_book(market, bids=[(avg, "100")], asks=[("0.70", "10")])
    quote = quote_exit(D(contracts), market, quote_book, Side.YES, D("0.02"))
    assert not isinstance(quote, Hold)
    signal = build_exit_signal(signal_id=uuid.uuid4().hex[:16], cycle_id="c", position=held, market=market,
                               case=ExitCase(reason, "test", quote),
                               estimate=estimate(market, fair) if fair else None, dry_run=True, now=NOW,
                               expiry=timedelta(minutes=30))
    return signal.model_copy(update={"limit_price": D(limit)})


def test_recheck_refuses_a_closed_or_shrunk_position_a_fallen_bid_and_a_vanished_edge():
    market = make_market()
    fees = market.fees
    signal = exit_signal(market)
    good = make_book(market, bids=[("0.59", "100")], asks=[("0.61", "10")])
    assert recheck_exit(signal, good, D(10), D("0.08"), D("0.02"), fees).ok
    closed = recheck_exit(signal, good, None, D("0.08"), D("0.02"), fees)
    assert not closed.ok and closed.code == "position_changed" and "closed" in closed.reason
    shrunk = recheck_exit(signal, good, D(5), D("0.08"), D("0.02"), fees)
    assert not shrunk.ok and shrunk.code == "position_changed"
    fallen = recheck_exit(signal, make_book(market, bids=[("0.57", "100")], asks=[("0.61", "10")]), D(10),
                          D("0.08"), D("0.02"), fees)
    assert not fallen.ok and fallen.code == "stale" and "fell from 0.600 to 0.57" in fallen.reason
    # An edge exit whose edge went away at approval is refused even within the slippage; a manual one is not.
    edge_exit = exit_signal(market, reason=ExitReason.TAKE_PROFIT, fair="0.50")
    slid = make_book(market, bids=[("0.59", "100")], asks=[("0.61", "10")])  # 0.59 - 0.0172 - 0.50 = 0.0728
    assert not recheck_exit(edge_exit, slid, D(10), D("0.08"), D("0.02"), fees).ok
    assert recheck_exit(exit_signal(market, fair="0.50"), slid, D(10), D("0.08"), D("0.02"), fees).ok


# -- what the store books ---------------------------------------------------------------------------


async def hold(store: Store, market: Market, *, contracts: str = "10", price: str = "0.40", fee: str = "0.17",
               side: Side = Side.YES, paper: bool = True) -> Position:
    """A position the way the desk makes one: an entry signal reserved, approved, its order filled."""
    signal = TradeSignal(id=uuid.uuid4().hex[:16], cycle_id="c", market=market, side=side, limit_price=D(price),
                         contracts=D(contracts), cost=D(contracts) * D(price), fees=D(fee), average_price=D(price),
                         probability=D("0.6"), model_probability=D("0.6"), fair_yes=D("0.6"), edge=D("0.1"),
                         expected_value=D(1), dry_run=paper, created_at=NOW, expires_at=NOW + timedelta(hours=1))
    assert (await store.reserve_signal(signal, lambda snap: ALLOW, D(1000), DAY)).allowed
    await store.move_signal(signal.id, SignalStatus.PENDING, SignalStatus.APPROVED, actor="t")
    await fill(store, signal, OrderResult(client_order_id=signal.client_order_id, status=OrderStatus.FILLED,
                                          fills=(Fill(contracts=D(contracts), price=D(price), fee=D(fee)),)))
    [held] = [p for p in await store.positions(paper=paper) if p.market_id == market.id]
    return held


async def fill(store: Store, signal: TradeSignal, result: OrderResult) -> Order:
    order = Order(id=uuid.uuid4().hex, signal_id=signal.id, client_order_id=signal.client_order_id,
                  venue=signal.market.venue, market_id=signal.market.id, side=signal.side, action=signal.action,
                  contracts=signal.contracts, limit_price=signal.limit_price, status=OrderStatus.SUBMITTING,
                  paper=signal.dry_run, created_at=NOW, updated_at=NOW)
    assert await store.begin_order(order, source=SignalStatus.APPROVED, target=None, actor="t")
    return await store.record_outcome(order.id, result, signal_source=SignalStatus.APPROVED,
                                      signal_target=SignalStatus.SIMULATED, actor="t")


async def propose_exit(store: Store, held: Position, contracts: str, bid: str = "0.60", *,
                       approve: bool = True) -> TradeSignal:
    market = make_market(held.market_id)
    quote = quote_exit(D(contracts), market, make_book(market, bids=[(bid, "1000")], asks=[("0.99", "1")]),
                       held.side, D("0.02"))
    assert not isinstance(quote, Hold)
    signal = build_exit_signal(signal_id=uuid.uuid4().hex[:16], cycle_id="c", position=held, market=market,
                               case=ExitCase(ExitReason.MANUAL, "test", quote), estimate=None, dry_run=held.paper,
                               now=NOW, expiry=timedelta(minutes=30))
    assert (await store.reserve_exit(signal)).allowed
    if approve:
        await store.move_signal(signal.id, SignalStatus.PENDING, SignalStatus.APPROVED, actor="t")
    return signal


def sold(signal: TradeSignal, contracts: str, price: str, fee: str,
         status: OrderStatus = OrderStatus.PARTIALLY_FILLED) -> OrderResult:
    return OrderResult(client_order_id=signal.client_order_id, status=status,
                       fills=(Fill(contracts=D(contracts), price=D(price), fee=D(fee)),))


async def test_a_partial_exit_books_pnl_at_average_cost_and_settlement_books_the_rest(store):
    market = make_market("KXEXIT-A")
    held = await hold(store, market)  # 10 YES for $4.00 + $0.17 fees
    signal = await propose_exit(store, held, "10")
    await fill(store, signal, sold(signal, "4", "0.60", "0.07"))
    [left] = await store.positions(paper=True)
    # 4 of 10 sold: basis 4.00 * 0.4 + 0.17 * 0.4 = 1.668; P&L 2.40 - 0.07 - 1.668 = 0.662.
    assert (left.contracts, left.cost, left.fees) == (D(6), D("2.400"), D("0.102"))
    assert left.realized_pnl == D("0.662") and left.status == "open"
    snapshot = await store.risk_snapshot(True, D(1000), DAY)
    assert snapshot.bankroll == D("1000.662") and snapshot.realized_today == D("0.662")
    assert snapshot.exposure == D("2.502")  # what is still held: 2.400 + 0.102
    # Settlement closes what is left: 6 paid 1.00 = 6 - 2.400 - 0.102 = 3.498, on top of the exit's P&L.
    closed = await store.settle_position(left, Resolution(venue=market.venue, market_id=market.id, yes_payout=D(1)),
                                         actor="settlement", now=NOW)
    assert closed is not None and closed.realized_pnl == D("4.160")
    assert (await store.risk_snapshot(True, D(1000), DAY)).bankroll == D("1004.160")


async def test_an_exit_that_sells_everything_closes_the_position_without_dust(store):
    held = await hold(store, make_market("KXEXIT-B"), contracts="3", price="0.33", fee="0.05")
    signal = await propose_exit(store, held, "3")
    await fill(store, signal, sold(signal, "3", "0.50", "0.06", OrderStatus.FILLED))
    [closed] = await store.positions(paper=True, open_only=False)
    assert closed.status == "closed" and closed.contracts == 0 and closed.cost == 0 and closed.fees == 0
    assert closed.realized_pnl == D("0.40")  # 1.50 - 0.06 - 0.99 - 0.05
    # A later look-up repeating the same totals books nothing twice.
    order = await store.order_for_signal(signal.id)
    await store.record_outcome(order.id, sold(signal, "3", "0.50", "0.06", OrderStatus.FILLED),
                               signal_source=SignalStatus.SIMULATED, signal_target=SignalStatus.SIMULATED, actor="t")
    assert (await store.risk_snapshot(True, D(1000), DAY)).bankroll == D("1000.40")


async def test_a_venue_reporting_more_sold_than_held_never_takes_the_position_below_zero(store):
    held = await hold(store, make_market("KXEXIT-C"), contracts="5", price="0.40", fee="0.10")
    signal = await propose_exit(store, held, "5")
    await fill(store, signal, sold(signal, "7", "0.50", "0.14", OrderStatus.FILLED))
    [closed] = await store.positions(paper=True, open_only=False)
    assert closed.contracts == 0 and closed.status == "closed"
    # Only the 5 held are booked: 5/7 of the proceeds and fees: 2.50 - 0.10 - 2.00 - 0.10 = 0.30.
    assert closed.realized_pnl == D("0.30")
    assert any(e.action == "position:exit_excess" for e in await store.audit_log())


async def test_one_exit_per_position_and_never_more_than_held(store):
    held = await hold(store, make_market("KXEXIT-D"))
    first = await propose_exit(store, held, "10")
    market = make_market(held.market_id)
    quote = quote_exit(D(10), market, make_book(market, bids=[("0.60", "100")], asks=[]), Side.YES, D("0.02"))
    second = build_exit_signal(signal_id="second", cycle_id="c", position=held, market=market,
                               case=ExitCase(ExitReason.MANUAL, "again", quote), estimate=None, dry_run=True, now=NOW,
                               expiry=timedelta(minutes=30))
    denied = await store.reserve_exit(second)
    assert not denied.allowed and denied.code == "exit_pending" and first.id in denied.reason
    assert await store.exiting_positions() == {held.id: first.id}
    too_many = second.model_copy(update={"id": "third", "contracts": D(11)})
    await store.move_signal(first.id, SignalStatus.APPROVED, SignalStatus.FAILED, actor="t")
    assert (await store.reserve_exit(too_many)).code == "more_than_held"
    assert (await store.reserve_exit(second)).allowed  # the first is over: a new exit may be proposed


async def test_an_exit_goes_while_halted_but_not_when_its_position_closed_meanwhile(store):
    held = await hold(store, make_market("KXEXIT-E"))
    await store.set_trading_state(TradingState.HALTED, "UOPS")
    signal = await propose_exit(store, held, "10")
    order = await fill(store, signal, sold(signal, "10", "0.60", "0.11", OrderStatus.FILLED))
    assert order.action is OrderAction.SELL and order.filled == D(10)
    # An entry is still refused while halted.
    other = make_market("KXEXIT-F")
    with pytest.raises(Exception, match="halted"):
        await hold(store, other)
    # An exit approved for a position that settled meanwhile is failed at the order row, nothing sent.
    await store.set_trading_state(TradingState.ACTIVE, "UOPS")
    again = await hold(store, make_market("KXEXIT-G"))
    exit_ = await propose_exit(store, again, "10", approve=False)  # pending: settlement may close the position
    await store.settle_position(again, Resolution(venue=Venue.KALSHI, market_id=again.market_id, yes_payout=D(0)),
                                actor="settlement", now=NOW)
    await store.move_signal(exit_.id, SignalStatus.PENDING, SignalStatus.APPROVED, actor="t")
    gone = Order(id="o-gone", signal_id=exit_.id, client_order_id=exit_.client_order_id, venue=Venue.KALSHI,
                 market_id=again.market_id, side=Side.YES, action=OrderAction.SELL, contracts=D(10),
                 limit_price=exit_.limit_price, status=OrderStatus.SUBMITTING, paper=True, created_at=NOW,
                 updated_at=NOW)
    with pytest.raises(Exception, match="position was closed"):
        await store.begin_order(gone, source=SignalStatus.APPROVED, target=None, actor="t")
    assert (await store.get_signal(exit_.id)).status is SignalStatus.FAILED
    assert await store.order_for_signal(exit_.id) is None


async def test_a_pending_exit_holds_no_capital_and_no_place_among_open_positions(store):
    held = await hold(store, make_market("KXEXIT-H"))
    before = await store.risk_snapshot(True, D(1000), DAY)
    await propose_exit(store, held, "10")
    after = await store.risk_snapshot(True, D(1000), DAY)
    assert (after.reserved, after.pending_signals, after.open_positions) == (before.reserved, 0, 1)
    assert after.free == before.free


async def test_the_realised_pnl_of_positions_closed_before_exits_existed_moves_into_the_ledger(tmp_path):
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as raw:  # version 6, one position settled at a loss, one still open
        for migration in MIGRATIONS[:6]:
            raw.executescript(migration)
        raw.execute("PRAGMA user_version = 6")
        raw.execute("INSERT INTO positions (venue, market_id, side, paper, contracts, cost, fees, status, realized_pnl,"
                    " opened_at, closed_at) VALUES ('kalshi', 'OLD', 'yes', 1, '10', '4', '0.2', 'closed', '-4.2', "
                    "'2026-11-19T10:00:00.000000Z', '2026-11-20T09:00:00.000000Z')")
        raw.execute("INSERT INTO positions (venue, market_id, side, paper, contracts, cost, fees, opened_at) VALUES "
                    "('kalshi', 'OPEN', 'no', 1, '5', '2', '0.1', '2026-11-19T10:00:00.000000Z')")
    store = await Store.open(path)
    try:
        assert await store.schema_version() == SCHEMA_VERSION
        snapshot = await store.risk_snapshot(True, D(1000), DAY)
        assert snapshot.bankroll == D("995.8") and snapshot.realized_today == D("-4.2")
        assert snapshot.exposure == D("2.1") and snapshot.open_positions == 1
        [still] = await store.positions(paper=True)
        assert still.id is not None and still.market_id == "OPEN"
    finally:
        await store.close()


async def test_settlement_waits_for_an_approved_exit_instead_of_paying_out_what_it_sells(store):
    held = await hold(store, make_market("KXEXIT-I"))
    await propose_exit(store, held, "10")  # approved: its order may be on its way
    with pytest.raises(ExitInFlight, match="exit of this position is on its way"):
        await store.settle_position(held, Resolution(venue=Venue.KALSHI, market_id=held.market_id, yes_payout=D(1)),
                                    actor="settlement", now=NOW)
    [still] = await store.positions(paper=True)
    assert still.status == "open" and await store.realized_ledger() == []


def test_what_the_venue_will_not_sell_is_said_to_settle_with_the_market():
    market = make_market(venue=Venue.POLYMARKET, rate="0.04").model_copy(update={
        "fee_model": FeeModel(rate=D("0.04"), rounding=D("0.00001")), "id": "0xdust", "yes_token_id": "1",
        "no_token_id": "2"})
    book = make_book(market, bids=[("0.70", "50")], asks=[("0.72", "50")])
    # A Polymarket sale keeps shares to 2 decimals: 0.0044 shares can never be sold.
    dust = quote_exit(D("0.0044"), market, book, Side.YES, D("0.02"))
    assert isinstance(dust, Hold) and dust.code == "below_venue_step" and "until the market settles" in dust.detail
    # 1.2 shares at 0.70 is $0.84, under the CLOB's $1 for a sale that crosses the book.
    small = quote_exit(D("1.2"), market, book, Side.YES, D("0.02"))
    assert isinstance(small, Hold) and small.code == "size_below_minimum" and "kept until" in small.detail
