"""The venues' fee schedules by hand: Kalshi's series fees (multiplier, maker fees, scheduled changes, event
overrides, $0.0001 rounding) and Polymarket's per-market taker rates, and what they do to a signal's size.

Every expected figure is worked out in the comment beside it, from the published formulas:
Kalshi taker M x 0.07 x C x P x (1 - P) rounded up to $0.0001 per trade (a demo fill of 1 contract at $0.56
was charged $0.0173); Polymarket C x r x (p(1 - p))^e rounded to $0.00001.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from pipeline.config import TradingConfig
from pipeline.errors import FeesUnknownError, WireFormatError
from pipeline.models import BookLevel, Estimate, FeeModel, Market, Opportunity, OrderBook, Side, Venue
from pipeline.strategy import Sizing, build_signal, find_opportunity, recheck, size_position
from pipeline.venues import kalshi_wire, polymarket_wire
from pipeline.venues.kalshi_wire import FeeSetting

D = Decimal
NOW = datetime(2026, 12, 2, 12, tzinfo=timezone.utc)


def kalshi_fees(fee_type: str = "quadratic", multiplier: str = "1") -> FeeModel:
    return kalshi_wire.fee_model(fee_type, D(multiplier), "series TEST")


# -- Kalshi ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("fee_type, multiplier, contracts, price, taker, maker", [
    # quadratic x1: 0.07 * 1 * 0.56 * 0.44 = 0.017248 -> up to $0.0001 -> 0.0173 (Kalshi's demo fill); no maker fee
    ("quadratic", "1", "1", "0.56", "0.0173", "0"),
    # 0.07 * 100 * 0.56 * 0.44 = 1.7248 exactly -> 1.7248 (rounding adds nothing)
    ("quadratic", "1", "100", "0.56", "1.7248", "0"),
    # fractional contracts: 0.07 * 2.5 * 0.30 * 0.70 = 0.03675 -> 0.0368
    ("quadratic", "1", "2.5", "0.30", "0.0368", "0"),
    # the index series' half rate: 0.5 * 0.07 = 0.035; 0.035 * 1 * 0.56 * 0.44 = 0.008624 -> 0.0087
    ("quadratic", "0.5", "1", "0.56", "0.0087", "0"),
    # 0.035 * 100 * 0.25 = 0.875 -> 0.8750
    ("quadratic", "0.5", "100", "0.50", "0.875", "0"),
    # makers pay 0.25 of the taker rate: 0.0175 * 10 * 0.40 * 0.60 = 0.042; taker 0.07 * 2.4 = 0.168
    ("quadratic_with_maker_fees", "1", "10", "0.40", "0.168", "0.042"),
    # combo maker fees are 0.5 of it: 0.035 * 10 * 0.24 = 0.084; x2 multiplier doubles both: taker 0.336, maker 0.168
    ("quadratic_with_combo_maker_fees", "1", "10", "0.40", "0.168", "0.084"),
    ("quadratic_with_combo_maker_fees", "2", "10", "0.40", "0.336", "0.168"),
    # a fee-free series (multiplier 0)
    ("quadratic", "0", "100", "0.50", "0", "0"),
])
def test_kalshi_series_fees_by_hand(fee_type, multiplier, contracts, price, taker, maker):
    model = kalshi_fees(fee_type, multiplier)
    assert model.fee(D(contracts), D(price)) == D(taker)
    assert model.maker_fee(D(contracts), D(price)) == D(maker)
    assert model.rounding == D("0.0001") and model.source.startswith("Kalshi series TEST: ")


def test_kalshi_worst_case_of_an_order_covers_the_peak_and_each_trades_rounding():
    model = kalshi_fees()
    # 100 at a limit of 0.60: the fee peaks at 0.50 -> 0.07 * 100 * 0.25 = 1.75; + 0.02 per order (the balance's
    # rounding to the cent and up to 100 trades' rounding to $0.0001) = 1.77
    assert model.worst_order_fee(D(100), D("0.60")) == D("1.77")
    # at a limit of 0.20 the worst price is the limit: 0.07 * 100 * 0.16 = 1.12 + 0.02 = 1.14
    assert model.worst_order_fee(D(100), D("0.20")) == D("1.14")


@pytest.mark.parametrize("fee_type", ["flat", "something_new"])
def test_a_kalshi_fee_structure_the_desk_cannot_price_is_refused_not_guessed(fee_type):
    with pytest.raises(FeesUnknownError, match=f"fee type '{fee_type}' is not one this desk prices"):
        kalshi_fees(fee_type)


def test_scheduled_series_changes_and_event_overrides_take_effect_at_their_time():
    series = FeeSetting("quadratic", D(1), None, "KXFED")
    halving = FeeSetting("quadratic", D("0.5"), NOW + timedelta(hours=1), "KXFED")
    override = FeeSetting("quadratic_with_maker_fees", D(2), NOW - timedelta(hours=1), "KXFED-26DEC")
    cleared = FeeSetting(None, None, NOW + timedelta(hours=3), "KXFED-26DEC")
    at = kalshi_wire.effective_fees
    assert at(series, [halving], [], NOW) == ("quadratic", D(1), "series KXFED")
    assert at(series, [halving], [], NOW + timedelta(hours=2))[:2] == ("quadratic", D("0.5"))
    # the event's override wins over the series while it stands: 2 x 0.07 = 0.14 taker, 0.035 maker
    fee_type, multiplier, source = at(series, [halving], [override, cleared], NOW)
    model = kalshi_wire.fee_model(fee_type, multiplier, source)
    assert (model.rate, model.maker_rate) == (D("0.14"), D("0.035")) and "event KXFED-26DEC override" in model.source
    # once cleared (null override), the series' schedule is back, with its change
    assert at(series, [halving], [override, cleared], NOW + timedelta(hours=4))[:2] == ("quadratic", D("0.5"))


def test_kalshi_fee_payloads_are_read_as_the_spec_describes_them():
    setting = kalshi_wire.series_fees_from_wire({"series": {"ticker": "INX", "fee_type": "quadratic",
                                                            "fee_multiplier": 0.5}})
    assert setting == FeeSetting("quadratic", D("0.5"), None, "INX")
    changes = kalshi_wire.series_fee_changes_from_wire({"series_fee_change_arr": [
        {"id": "c1", "series_ticker": "INX", "fee_type": "quadratic_with_maker_fees", "fee_multiplier": 1,
         "scheduled_ts": "2026-12-03T00:00:00Z"}]})
    assert changes == [FeeSetting("quadratic_with_maker_fees", D(1), datetime(2026, 12, 3, tzinfo=timezone.utc),
                                  "INX")]
    events, cursor = kalshi_wire.event_fee_changes_from_wire({"event_fee_changes": [
        {"id": "e1", "event_ticker": "INX-26DEC31", "series_ticker": "INX", "fee_type_override": None,
         "fee_multiplier_override": None, "scheduled_ts": "2026-12-01T00:00:00Z"}], "cursor": "next"})
    assert events[0].fee_type is None and cursor == "next"
    with pytest.raises(WireFormatError, match="fee_type"):
        kalshi_wire.series_fees_from_wire({"series": {"ticker": "INX", "fee_multiplier": 1}})
    with pytest.raises(WireFormatError, match="fee_multiplier"):
        kalshi_wire.series_fees_from_wire({"series": {"ticker": "INX", "fee_type": "quadratic",
                                                      "fee_multiplier": -1}})


# -- Polymarket -----------------------------------------------------------------------------------

def poly_market(**overrides) -> Market:
    fields = dict(venue=Venue.POLYMARKET, id="0xpoly", title="Polymarket fee test", yes_bid=D("0.42"),
                  yes_ask=D("0.44"), volume=D(50000), liquidity=D(5000), close_time=NOW + timedelta(days=7),
                  contract_step=D("0.01"), min_order_size=D(5), yes_token_id="111", no_token_id="222")
    fields.update(overrides)
    return Market(**fields)


def clob(fd: dict | None = None, tokens: tuple[str, str] = ("111", "222")) -> dict:
    body = {"c": "0xpoly", "t": [{"t": tokens[0], "o": "Yes"}, {"t": tokens[1], "o": "No"}], "mos": 5, "mts": 0.01}
    if fd is not None:
        body["fd"] = fd
    return body


@pytest.mark.parametrize("fd, contracts, price, expected", [
    # sports 0.03: 0.03 * 100 * 0.44 * 0.56 = 0.73920
    ({"r": 0.03, "e": 1, "to": True}, "100", "0.44", "0.7392"),
    # a live fill (py-clob-client-v2 #107): 25 @ 0.13 at 0.05 -> 25 * 0.05 * 0.13 * 0.87 = 0.141375 -> 0.14138
    ({"r": 0.05, "e": 1, "to": True}, "25", "0.13", "0.14138"),
    # crypto 0.07 at a 0.001 tick: 0.07 * 12.5 * 0.443 * 0.557 = 0.875 * 0.246751 = 0.215907125 -> 0.21591
    ({"r": 0.07, "e": 1, "to": True}, "12.5", "0.443", "0.21591"),
    # the exponent of early 2026 crypto markets: 0.25 * 100 * (0.5 * 0.5)^2 = 25 * 0.0625 = 1.5625
    ({"r": 0.25, "e": 2, "to": True}, "100", "0.50", "1.5625"),
    # a fee-free market has no `fd`
    (None, "100", "0.50", "0"),
])
def test_polymarket_fees_from_the_clob_by_hand(fd, contracts, price, expected):
    model = polymarket_wire.fee_model_from_clob_market(clob(fd), poly_market())
    assert model.fee(D(contracts), D(price)) == D(expected)
    assert model.maker_fee(D(contracts), D(price)) == 0  # makers never pay on Polymarket


def test_a_clob_answer_for_other_outcomes_or_a_fee_makers_pay_is_refused():
    with pytest.raises(WireFormatError, match="not the market's"):
        polymarket_wire.fee_model_from_clob_market(clob(tokens=("333", "444")), poly_market())
    with pytest.raises(FeesUnknownError, match="makers as well"):
        polymarket_wire.fee_model_from_clob_market(clob({"r": 0.04, "e": 1, "to": False}), poly_market())
    with pytest.raises(FeesUnknownError, match="exponent 1.5"):
        polymarket_wire.fee_model_from_clob_market(clob({"r": 0.04, "e": 1.5, "to": True}), poly_market())


# -- what fees do to a signal ---------------------------------------------------------------------

def book(market: Market, asks: list[tuple[str, str]], bids: list[tuple[str, str]] = ()) -> OrderBook:
    return OrderBook(venue=market.venue, market_id=market.id, fetched_at=NOW,
                     yes_asks=tuple(BookLevel(price=D(p), size=D(s)) for p, s in asks),
                     yes_bids=tuple(BookLevel(price=D(p), size=D(s)) for p, s in bids))


def estimate(market: Market, fair: str) -> Estimate:
    return Estimate(market_key=market.key, model_probability=D(fair), fair_probability=D(fair), created_at=NOW)


def test_a_fee_charging_polymarket_market_is_sized_net_of_its_fee_to_amounts_the_clob_takes():
    market = poly_market(fee_model=FeeModel(rate=D("0.04"), rounding=D("0.00001"), per_order=D("0.001")))
    asks = book(market, [("0.44", "1000")], [("0.42", "1000")])
    found = find_opportunity(market, asks, estimate(market, "0.60"), D("0.08"))
    assert isinstance(found, Opportunity) and found.side is Side.YES
    # marginal fee 0.04 * 0.44 * 0.56 = 0.009856; edge 0.60 - 0.44 - 0.009856 = 0.150144
    assert found.fee_per_contract == D("0.009856") and found.edge == D("0.150144")
    # Kelly at 0.449856: (0.60 - 0.449856) / 0.550144 = 0.2729 x 0.25 = 0.068 > the 0.05 cap -> $50 of $1,000
    sized = size_position(found, asks, D(1000), TradingConfig())
    assert isinstance(sized, Sizing)
    # 50 / 0.449856 = 111.14 shares; a FAK BUY at 0.44 needs multiples of 0.25 (0.25 x 0.44 = 0.11, pUSD to the
    # cent) -> 111.00. Cost 111 x 0.44 = 48.84 (makerAmount, 2 decimals); fee 0.04 x 111 x 0.2464 = 1.094016 ->
    # 1.09402; together 49.93402 <= 50.
    assert (sized.contracts, sized.cost, sized.fees) == (D("111.00"), D("48.8400"), D("1.09402"))
    assert sized.limit_price == D("0.44")
    # The old 0.01 steps would have sent 118.18 x 0.44 = 51.9992: a market order the CLOB refuses. And the fee
    # shows in the signal's numbers: EV = 111 x 0.60 - 48.84 - 1.09402 = 16.66598
    assert sized.expected_value == D("16.66598")


def test_approval_refuses_when_the_venue_raised_its_fees_since_the_signal():
    market = poly_market(fee_model=FeeModel(rate=D(0), rounding=D("0.00001")))
    asks = book(market, [("0.44", "1000")], [("0.42", "1000")])
    found = find_opportunity(market, asks, estimate(market, "0.60"), D("0.08"))
    sized = size_position(found, asks, D(1000), TradingConfig())
    signal = build_signal(signal_id="s1", cycle_id="c1", opportunity=found, sizing=sized, dry_run=True, now=NOW,
                          expiry=timedelta(minutes=30), trading=TradingConfig())
    assert recheck(signal, asks, D("0.08"), D("0.02")).ok  # same fees: fine
    raised = FeeModel(rate=D("0.07"), rounding=D("0.00001"), source="Polymarket CLOB: taker 0.07 x p(1-p)")
    check = recheck(signal, asks, D("0.08"), D("0.02"), raised)
    # 113.5 shares (50 / 0.44 = 113.63 -> multiples of 0.25) at 0.44: worst 0.07 x 113.5 x 0.2464 = 1.957648 more
    # than the zero-fee reservation of 113.5 x 0.44 = 49.94
    assert not check.ok and "fees changed since the signal" in check.reason
    assert signal.contracts == D("113.50") and signal.reserved == D("49.9400")


def test_fee_details_without_their_rate_are_refused_never_read_as_free():
    # `fd` says a fee is charged; without `r` (renamed, say) it must not become a rate of 0
    for fd in ({"rate": 0.03, "e": 1, "to": True}, {"r": 0.03, "to": True}, {"r": 0.03, "e": 1}):
        with pytest.raises(WireFormatError, match="lack 'r', 'e' or 'to'"):
            polymarket_wire.fee_model_from_clob_market(clob(fd), poly_market())


def test_an_old_config_that_zeroed_polymarket_fees_is_refused_not_read_as_an_override():
    from pipeline.config import FeesConfig

    with pytest.raises(ValueError, match="fee-free; remove the key"):
        FeesConfig(polymarket_taker_rate=0)
    assert FeesConfig(polymarket_taker_rate="0.02").polymarket_taker_rate == D("0.02")  # a rate meant is kept
