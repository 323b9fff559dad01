"""simulate_fill: a paper taker order walking the real book up to its limit price.

Every expected fill and fee is worked out by hand in the comments:
  Kalshi fee of one fill = ceil_to_cent(0.07 * C * P * (1 - P)), charged per price level filled.
  NO asks are the YES bids mirrored: NO ask = 1 - YES bid.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

from pipeline.models import (BookLevel, FeeModel, Fill, Market, OrderAction, OrderBook, OrderRequest, OrderStatus, Side,
                             Venue)
from pipeline.venues.paper import simulate_fill

D = Decimal
NOW = datetime(2025, 3, 1, 12, 0, tzinfo=timezone.utc)


def kalshi_market(**overrides) -> Market:
    fields = dict(venue=Venue.KALSHI, id="KXPAPER-1", title="Paper test", yes_bid=D("0.38"), yes_ask=D("0.40"),
                  volume=D(5000), liquidity=D(2000), close_time=NOW + timedelta(days=3),
                  fee_model=FeeModel(rate=D("0.07")))
    fields.update(overrides)
    return Market(**fields)


def poly_market(**overrides) -> Market:
    fields = dict(venue=Venue.POLYMARKET, id="0xpaper", title="Paper poly", yes_bid=D("0.28"), yes_ask=D("0.30"),
                  volume=D(5000), liquidity=D(2000), close_time=NOW + timedelta(days=3),
                  fee_model=FeeModel(rate=D(0), rounding=D("0.0001")), contract_step=D("0.01"))
    fields.update(overrides)
    return Market(**fields)


def book(market: Market, bids=(), asks=()) -> OrderBook:
    return OrderBook(venue=market.venue, market_id=market.id, fetched_at=NOW,
                     yes_bids=tuple(BookLevel(price=D(p), size=D(s)) for p, s in bids),
                     yes_asks=tuple(BookLevel(price=D(p), size=D(s)) for p, s in asks))


def order(market: Market, contracts, limit: str, side: Side = Side.YES,
          tif: str = "immediate_or_cancel") -> OrderRequest:
    return OrderRequest(client_order_id="od-test", venue=market.venue, market_id=market.id, side=side,
                        contracts=D(contracts), limit_price=D(limit), time_in_force=tif)


# YES asks: 0.40 x 10, 0.42 x 5, 0.45 x 20
ASKS = [("0.40", 10), ("0.42", 5), ("0.45", 20)]


def test_full_fill_walks_two_levels():
    market = kalshi_market()
    result = simulate_fill(order(market, 12, "0.42"), market, book(market, asks=ASKS))
    # 10 @ 0.40: fee ceil(0.07 * 10 * 0.40 * 0.60) = ceil(0.168) = 0.17
    #  2 @ 0.42: fee ceil(0.07 * 2 * 0.42 * 0.58) = ceil(0.14 * 0.2436 = 0.034104) = 0.04
    assert result.status is OrderStatus.FILLED
    assert result.fills == (Fill(contracts=D(10), price=D("0.40"), fee=D("0.17")),
                            Fill(contracts=D(2), price=D("0.42"), fee=D("0.04")))
    assert result.filled == D(12)
    assert result.cost == D("4.84")  # 4.00 + 0.84
    assert result.fees == D("0.21")  # 0.17 + 0.04
    assert result.average_price == D("4.84") / D(12)
    assert result.venue_order_id == "paper-od-test"
    assert result.reason == ""


def test_a_generous_limit_still_stops_once_filled():
    market = kalshi_market()
    result = simulate_fill(order(market, 12, "0.99"), market, book(market, asks=ASKS))
    # same fills as above: 10 @ 0.40 and 2 @ 0.42; the 0.45 level is never touched
    assert result.status is OrderStatus.FILLED
    assert [(f.contracts, f.price) for f in result.fills] == [(D(10), D("0.40")), (D(2), D("0.42"))]


def test_ioc_partial_fill_up_to_the_limit():
    market = kalshi_market()
    result = simulate_fill(order(market, 20, "0.44"), market, book(market, asks=ASKS))
    # 10 @ 0.40 (fee 0.17) + 5 @ 0.42: fee ceil(0.07 * 5 * 0.42 * 0.58) = ceil(0.35 * 0.2436 = 0.08526) = 0.09
    # the 0.45 level is above the 0.44 limit: 15 of 20 filled, the rest cancelled
    assert result.status is OrderStatus.PARTIALLY_FILLED
    assert result.fills == (Fill(contracts=D(10), price=D("0.40"), fee=D("0.17")),
                            Fill(contracts=D(5), price=D("0.42"), fee=D("0.09")))
    assert result.filled == D(15)
    assert result.cost == D("6.10")  # 4.00 + 2.10
    assert result.fees == D("0.26")
    assert result.reason == "15 of 20 filled at or below 0.44; the rest cancelled"


def test_ioc_partial_fill_when_the_book_runs_out():
    market = kalshi_market()
    result = simulate_fill(order(market, 50, "0.99"), market, book(market, asks=ASKS))
    # the whole book: 10 + 5 + 20 = 35 of 50
    # fees: 0.17 + 0.09 + ceil(0.07 * 20 * 0.45 * 0.55 = 1.4 * 0.2475 = 0.3465) = 0.35 -> 0.61
    # cost: 4.00 + 2.10 + 9.00 = 15.10
    assert result.status is OrderStatus.PARTIALLY_FILLED
    assert result.filled == D(35)
    assert result.cost == D("15.10")
    assert result.fees == D("0.61")
    assert result.reason == "35 of 50 filled at or below 0.99; the rest cancelled"


def test_gtc_remainder_is_not_simulated_as_resting():
    market = kalshi_market()
    result = simulate_fill(order(market, 20, "0.44", tif="good_till_canceled"), market, book(market, asks=ASKS))
    assert result.status is OrderStatus.PARTIALLY_FILLED
    assert result.filled == D(15)
    assert result.reason == "paper orders do not rest; 15 of 20 filled at or below 0.44; the rest cancelled"


def test_fok_is_all_or_nothing():
    market = kalshi_market()
    killed = simulate_fill(order(market, 20, "0.44", tif="fill_or_kill"), market, book(market, asks=ASKS))
    # only 15 available at or below 0.44 -> nothing fills
    assert killed.status is OrderStatus.CANCELED
    assert killed.fills == ()
    assert killed.filled == D(0) and killed.fees == D(0)
    assert killed.reason == "fill-or-kill: only 15 of 20 available at or below 0.44"

    filled = simulate_fill(order(market, 15, "0.44", tif="fill_or_kill"), market, book(market, asks=ASKS))
    # exactly 15 available: filled, fees 0.17 + 0.09 = 0.26
    assert filled.status is OrderStatus.FILLED
    assert filled.filled == D(15)
    assert filled.fees == D("0.26")


def test_nothing_at_or_below_the_limit_is_cancelled():
    market = kalshi_market()
    result = simulate_fill(order(market, 5, "0.39"), market, book(market, asks=ASKS))
    # best ask 0.40 > limit 0.39
    assert result.status is OrderStatus.CANCELED
    assert result.fills == ()
    assert result.reason == "no YES offers at or below 0.39"


def test_empty_side_is_cancelled():
    market = kalshi_market()
    # only YES asks: a NO buyer has nothing to lift
    result = simulate_fill(order(market, 5, "0.99", side=Side.NO), market, book(market, asks=ASKS))
    assert result.status is OrderStatus.CANCELED
    assert result.reason == "no NO offers at or below 0.99"


def test_buying_no_walks_the_mirrored_yes_bids():
    market = kalshi_market()
    # YES bids 0.58 x 10, 0.55 x 30 -> NO asks 1 - 0.58 = 0.42 x 10, 1 - 0.55 = 0.45 x 30
    b = book(market, bids=[("0.58", 10), ("0.55", 30)], asks=[("0.60", 100)])
    result = simulate_fill(order(market, 25, "0.45", side=Side.NO), market, b)
    # 10 @ 0.42: fee ceil(0.07 * 10 * 0.42 * 0.58 = 0.7 * 0.2436 = 0.17052) = 0.18
    # 15 @ 0.45: fee ceil(0.07 * 15 * 0.45 * 0.55 = 1.05 * 0.2475 = 0.259875) = 0.26
    assert result.status is OrderStatus.FILLED
    assert result.fills == (Fill(contracts=D(10), price=D("0.42"), fee=D("0.18")),
                            Fill(contracts=D(15), price=D("0.45"), fee=D("0.26")))
    assert result.cost == D("10.95")  # 4.20 + 6.75
    assert result.fees == D("0.44")

    partial = simulate_fill(order(market, 25, "0.44", side=Side.NO), market, b)
    # NO limit 0.44: only the 0.42 level (the 0.45 NO ask, i.e. YES bid 0.55, is too dear)
    assert partial.status is OrderStatus.PARTIALLY_FILLED
    assert partial.fills == (Fill(contracts=D(10), price=D("0.42"), fee=D("0.18")),)
    assert partial.reason == "10 of 25 filled at or below 0.44; the rest cancelled"


def test_polymarket_fractional_step_rounds_each_take_down():
    market = poly_market()
    b = book(market, asks=[("0.30", "12.345"), ("0.31", 100)])
    result = simulate_fill(order(market, "20.5", "0.31"), market, b)
    # level 0.30 offers 12.345 but the step is 0.01: take floor(12.345 / 0.01) * 0.01 = 12.34
    # remaining 20.50 - 12.34 = 8.16 @ 0.31
    # cost = 12.34 * 0.30 + 8.16 * 0.31 = 3.702 + 2.5296 = 6.2316; fees 0 (rate 0)
    assert result.status is OrderStatus.FILLED
    assert [(f.contracts, f.price) for f in result.fills] == [(D("12.34"), D("0.30")), (D("8.16"), D("0.31"))]
    assert result.filled == D("20.50")
    assert result.cost == D("6.2316")
    assert result.fees == D(0)


def test_polymarket_nonzero_fee_per_fill_rounds_to_a_hundredth_of_a_cent():
    market = poly_market(fee_model=FeeModel(rate=D("0.02"), rounding=D("0.0001")))
    b = book(market, asks=[("0.30", 10), ("0.33", "7.5")])
    result = simulate_fill(order(market, "17.5", "0.33"), market, b)
    # 10 @ 0.30: 0.02 * 10 * 0.30 * 0.70 = 0.042 -> 0.0420
    # 7.5 @ 0.33: 0.02 * 7.5 * 0.33 * 0.67 = 0.15 * 0.2211 = 0.033165 -> ceil to 0.0001 -> 0.0332
    assert result.status is OrderStatus.FILLED
    assert [f.fee for f in result.fills] == [D("0.0420"), D("0.0332")]
    assert result.fees == D("0.0752")
    assert result.cost == D("5.475")  # 3.00 + 2.475


def test_kalshi_whole_contract_step_rounds_fractional_levels_down():
    market = kalshi_market()
    b = book(market, asks=[("0.40", "2.5"), ("0.41", 10)])
    result = simulate_fill(order(market, 5, "0.41"), market, b)
    # step 1: level 0.40 offers 2.5 -> take floor(2.5) = 2; the remaining 3 @ 0.41
    # fees: ceil(0.07 * 2 * 0.24 = 0.0336) = 0.04; ceil(0.07 * 3 * 0.41 * 0.59 = 0.21 * 0.2419 = 0.050799) = 0.06
    assert result.status is OrderStatus.FILLED
    assert result.fills == (Fill(contracts=D(2), price=D("0.40"), fee=D("0.04")),
                            Fill(contracts=D(3), price=D("0.41"), fee=D("0.06")))
    assert result.cost == D("2.03")  # 0.80 + 1.23


def test_fill_at_exactly_the_limit_price_counts():
    market = kalshi_market()
    result = simulate_fill(order(market, 10, "0.40"), market, book(market, asks=ASKS))
    # limit 0.40 == best ask 0.40: "at or below" -> 10 @ 0.40, fee 0.17
    assert result.status is OrderStatus.FILLED
    assert result.fills == (Fill(contracts=D(10), price=D("0.40"), fee=D("0.17")),)


def test_dust_level_does_not_cancel_a_fillable_order():
    # Regression: Kalshi sizes are 2-decimal (orderbook_fp) but the Kalshi contract_step is 1: the 0.40
    # level holds 0.5 contracts, which once stopped the walk and cancelled the order although 10 rest at 0.41.
    # By hand: buying 5 at limit 0.41 fills 5 (at 0.41, or 0.5 @ 0.40 + 4.5 @ 0.41 if the remnant were taken),
    # every fill at or below 0.41; e.g. 5 @ 0.41 costs 2.05 with fee ceil(0.07 * 5 * 0.41 * 0.59 = 0.084665) = 0.09.
    market = kalshi_market()
    b = book(market, asks=[("0.40", "0.5"), ("0.41", 10)])
    result = simulate_fill(order(market, 5, "0.41"), market, b)
    assert result.status is OrderStatus.FILLED, result.reason
    assert result.filled == D(5)
    assert all(f.price <= D("0.41") for f in result.fills)


def sell(market: Market, contracts, limit: str, side: Side = Side.YES) -> OrderRequest:
    return OrderRequest(client_order_id="od-sell", venue=market.venue, market_id=market.id, side=side,
                        action=OrderAction.SELL, contracts=D(contracts), limit_price=D(limit))


def test_a_paper_sell_hits_the_bids_down_to_its_limit_never_the_asks():
    market = kalshi_market()
    # YES bids 0.38 x 10, 0.36 x 5, 0.30 x 50; the asks (0.40 ...) are never sold into
    b = book(market, bids=[("0.38", 10), ("0.36", 5), ("0.30", 50)], asks=ASKS)
    result = simulate_fill(sell(market, 12, "0.36"), market, b)
    # 10 @ 0.38: fee ceil(0.07 * 10 * 0.38 * 0.62 = 0.7 * 0.2356 = 0.16492) = 0.17
    #  2 @ 0.36: fee ceil(0.07 * 2 * 0.36 * 0.64 = 0.14 * 0.2304 = 0.032256) = 0.04
    assert result.status is OrderStatus.FILLED
    assert result.fills == (Fill(contracts=D(10), price=D("0.38"), fee=D("0.17")),
                            Fill(contracts=D(2), price=D("0.36"), fee=D("0.04")))
    assert result.cost == D("4.52")  # received: 3.80 + 0.72
    # limit 0.36: the 0.30 level is below it, so 15 of 20 sell and the rest is cancelled
    partial = simulate_fill(sell(market, 20, "0.36"), market, b)
    assert partial.status is OrderStatus.PARTIALLY_FILLED and partial.filled == D(15)
    assert partial.reason == "15 of 20 filled at or above 0.36; the rest cancelled"
    none = simulate_fill(sell(market, 5, "0.39"), market, b)
    assert none.status is OrderStatus.CANCELED and none.reason == "no YES bids at or above 0.39"


def test_selling_no_hits_the_mirrored_yes_asks():
    market = kalshi_market()
    # YES asks 0.40 x 10, 0.42 x 5 -> NO bids 1 - 0.40 = 0.60 x 10, 1 - 0.42 = 0.58 x 5
    result = simulate_fill(sell(market, 12, "0.58", side=Side.NO), market, book(market, asks=ASKS))
    assert [(f.contracts, f.price) for f in result.fills] == [(D(10), D("0.60")), (D(2), D("0.58"))]
    assert result.status is OrderStatus.FILLED
