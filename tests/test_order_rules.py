"""Only amounts the CLOB accepts: every Polymarket order the sizer produces, at every tick size, signs a
makerAmount and takerAmount with no more decimals than the CLOB allows for its type, and meets the minimums.

The check here counts decimals of the two signed amounts itself (shares x price, shares), the way the CLOB's
refusal message words it, rather than calling pipeline.order_rules, so a wrong rule there cannot pass.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.config import TradingConfig
from pipeline.models import BookLevel, Estimate, FeeModel, Market, OrderAction, OrderBook, Rejection, Venue
from pipeline.order_rules import contract_step, order_size_problem, polymarket_share_step
from pipeline.strategy import find_opportunity, size_position

D = Decimal
NOW = datetime(2026, 12, 2, tzinfo=timezone.utc)
TICKS = [D("0.1"), D("0.01"), D("0.005"), D("0.0025"), D("0.001"), D("0.0001")]
# The CLOB's decimals (README, Polymarket): market BUY pUSD 2 / shares 4; limit BUY pUSD 4 / shares 2.
ALLOWED = {"immediate_or_cancel": (2, 4), "fill_or_kill": (2, 4), "good_till_canceled": (4, 2)}
# A SELL signs shares as its makerAmount (2 decimals) and pUSD as its takerAmount (4), market or limit: "the sell
# orders maker amount supports a max accuracy of 2 decimals, taker amount a max of 4 decimals".
SELL_ALLOWED = (4, 2)
SELL = OrderAction.SELL


def places(value: Decimal) -> int:
    return max(0, -value.normalize().as_tuple().exponent)


@pytest.mark.parametrize("price, market_order, step", [
    ("0.44", True, "0.25"),    # 0.25 x 0.44 = 0.11: pUSD to the cent
    ("0.44", False, "0.01"),   # 0.01 x 0.44 = 0.0044: 4 decimals are allowed for a limit order
    ("0.5", True, "0.02"),     # 0.02 x 0.5 = 0.01
    ("0.443", True, "10"),     # 443 and 10 share no factor: only whole tens of shares make whole cents
    ("0.443", False, "0.1"),   # 0.1 x 0.443 = 0.0443
    ("0.4435", False, "0.2"),  # 0.2 x 0.4435 = 0.0887
    ("0.985", True, "2"),      # 2 x 0.985 = 1.97 (the #99 refusal was 10.13197 shares at 0.985)
])
def test_share_steps_by_hand(price, market_order, step):
    assert polymarket_share_step(D(price), market_order=market_order) == D(step)


@pytest.mark.parametrize("price, market_order, step", [
    ("0.44", True, "0.01"),    # 0.01 x 0.44 = 0.0044: a SELL's pUSD may carry 4 decimals, even for a FAK
    ("0.44", False, "0.01"),
    ("0.443", True, "0.1"),    # 0.01 x 0.443 = 0.00443 has 5; 0.1 x 0.443 = 0.0443
    ("0.4435", True, "0.2"),   # 0.2 x 0.4435 = 0.0887
    ("0.985", True, "0.02"),   # 0.02 x 0.985 = 0.0197 (a FAK BUY needs 2 whole shares here)
])
def test_sell_share_steps_by_hand(price, market_order, step):
    assert polymarket_share_step(D(price), market_order=market_order, action=SELL) == D(step)


def poly(**fields) -> Market:
    values = dict(venue=Venue.POLYMARKET, id="0xsell", title="sell", close_time=NOW + timedelta(days=9),
                  contract_step=D("0.01"), min_order_size=D(5), fee_model=FeeModel(rate=D(0)))
    return Market(**{**values, **fields})


def test_a_sell_keeps_the_clobs_minimums_and_its_own_steps():
    market = poly()
    # 118.18 shares sold at 0.44 take 51.9992 pUSD: fine for a SELL (4 decimals), refused for a FAK BUY
    assert order_size_problem(market, D("118.18"), D("0.44"), "immediate_or_cancel", SELL) == ""
    assert "not a multiple of 0.25" in order_size_problem(market, D("118.18"), D("0.44"), "immediate_or_cancel")
    # a marketable SELL must be worth $1 at its limit, like a BUY: 2 shares at 0.44 are $0.88
    assert "below the $1 minimum" in order_size_problem(market, D(2), D("0.44"), "immediate_or_cancel", SELL)
    assert order_size_problem(market, D("2.28"), D("0.44"), "immediate_or_cancel", SELL) == ""  # $1.0032
    # the market's share minimum binds limit orders only, whichever way they go
    assert "minimum order size of 5" in order_size_problem(market, D(4), D("0.44"), "good_till_canceled", SELL)
    assert "not a multiple of 0.1" in order_size_problem(poly(tick_size=D("0.001")), D("10.01"), D("0.443"),
                                                         "immediate_or_cancel", SELL)
    kalshi = poly(venue=Venue.KALSHI, contract_step=D(1), min_order_size=D(0))
    assert order_size_problem(kalshi, D(1), D("0.44"), "immediate_or_cancel", SELL) == ""  # no $1 rule there
    assert "not a multiple of 1" in order_size_problem(kalshi, D("1.5"), D("0.44"), "immediate_or_cancel", SELL)


@settings(max_examples=600, deadline=None)
@given(st.sampled_from(TICKS), st.data())
def test_every_sell_size_on_the_step_signs_amounts_the_clob_accepts(tick, data):
    price = data.draw(st.integers(1, int(D(1) / tick) - 1)) * tick
    market_order = data.draw(st.booleans())
    step = polymarket_share_step(price, market_order=market_order, action=SELL)
    shares = step * data.draw(st.integers(1, 5000))
    usd_places, share_places = SELL_ALLOWED
    assert places(shares) <= share_places and places(shares * price) <= usd_places, (shares, price)
    # and it is the least such count: one step less of a share's hundredth would break a grid
    smaller = [n / 100 for n in range(1, int(step * 100))]
    assert all(places(D(n) * price) > usd_places for n in smaller), (step, price)


def test_the_issue_example_is_refused_and_its_neighbour_is_not():
    # 118.18 @ 0.44 signs makerAmount 51.9992 (4 decimals): a market order the CLOB refuses; 118.25 signs 52.03.
    step = polymarket_share_step(D("0.44"), market_order=True)
    assert D("118.18") % step != 0 and places(D("118.18") * D("0.44")) == 4
    assert D("118.25") % step == 0 and places(D("118.25") * D("0.44")) == 2


@st.composite
def polymarket_case(draw):
    tick = draw(st.sampled_from(TICKS))
    ticks = int(D(1) / tick)
    # three ask levels on the tick, increasing; sizes in 0.01 shares
    chosen = sorted(draw(st.sets(st.integers(1, ticks - 1), min_size=1, max_size=3)))
    asks = tuple(BookLevel(price=n * tick, size=D(draw(st.integers(1, 500_000))) / 100) for n in chosen)
    rate = draw(st.sampled_from([D(0), D("0.03"), D("0.04"), D("0.05"), D("0.07")]))
    market = Market(venue=Venue.POLYMARKET, id="0xprop", title="property", yes_bid=max(asks[0].price - tick, tick),
                    yes_ask=asks[0].price, volume=D(10**6), liquidity=D(10**5), close_time=NOW + timedelta(days=9),
                    tick_size=tick, contract_step=D("0.01"), min_order_size=draw(st.sampled_from([D(0), D(5)])),
                    fee_model=FeeModel(rate=rate, rounding=D("0.00001")), yes_token_id="1", no_token_id="2")
    book = OrderBook(venue=Venue.POLYMARKET, market_id=market.id, yes_asks=asks, fetched_at=NOW)
    fair = min(D("0.999"), asks[0].price + D(draw(st.integers(1, 600))) / 1000)
    tif = draw(st.sampled_from(sorted(ALLOWED)))
    trading = TradingConfig(min_edge=D("0.01"), time_in_force=tif,
                            kelly_multiplier=D(draw(st.integers(5, 100))) / 100,
                            max_position_fraction=D(draw(st.integers(1, 100))) / 100)
    bankroll = D(draw(st.integers(100, 10_000_000))) / 100
    return market, book, fair, trading, bankroll


@settings(max_examples=1200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(polymarket_case())
def test_every_polymarket_order_the_sizer_makes_meets_the_clobs_amount_rules(case):
    market, book, fair, trading, bankroll = case
    estimate = Estimate(market_key=market.key, model_probability=fair, fair_probability=fair, created_at=NOW)
    found = find_opportunity(market, book, estimate, trading.min_edge)
    if isinstance(found, Rejection):
        return
    sized = size_position(found, book, bankroll, trading)
    if isinstance(sized, Rejection):
        return
    usd_places, share_places = ALLOWED[trading.time_in_force]
    shares, maker = sized.contracts, sized.contracts * sized.limit_price  # a BUY: pUSD at the limit, shares
    assert places(maker) <= usd_places, (shares, sized.limit_price, maker)
    assert places(shares) <= share_places and places(shares) <= 2  # the desk keeps shares to 2 decimals
    assert (maker * 10 ** 6) % 1 == 0 and (shares * 10 ** 6) % 1 == 0  # whole base units on chain
    assert maker >= 1  # every order the desk sends crosses the book: the $1 minimum
    if trading.time_in_force == "good_till_canceled":
        assert shares >= market.min_order_size
    assert sized.limit_price % market.tick_size == 0
    assert sized.cost + sized.fees <= min(trading.max_position_fraction,
                                          trading.kelly_multiplier * sized.full_kelly) * bankroll
    assert shares % contract_step(market, sized.limit_price, trading.time_in_force) == 0
