"""Exits (issue 15): selling what is held, through our venue clients over real HTTP to the loopback fakes.

Nothing of ours is monkeypatched. Every number is worked by hand in the comments:
  Kalshi's fee of one trade = ceil to $0.0001 of 0.07 x C x P x (1 - P), per price level;
  Polymarket's = C x rate x P x (1 - P) per level, to 0.00001 pUSD, off a SELL's proceeds.
A sell's result is in the sold side's terms: prices received, cost = gross proceeds, the fees coming off them.
"""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal

import pytest

from pipeline.errors import GiveUpError, OutcomeUnknownError, VenueContractError
from pipeline.models import Market, Order, OrderAction, OrderRequest, OrderStatus, Side, Venue, utcnow
from pipeline.venues.kalshi import order_from_wire
from pipeline.venues.polymarket_journal import SentOrder

from .contracts import kalshi_errors, unknown_fields
from .fakes import NOW, FakeVenue, make_book, make_market
from .servers.base import LoopbackServer
from .servers.polymarket import PolymarketFake, order_hash
from .test_kalshi import ORDERS_V2, kalshi, market_of, order, posts  # noqa: F401 - kalshi is a fixture
from .test_polymarket import WALLET, listed, make_client, order_posts

D = Decimal
SELL = OrderAction.SELL
EXIT = "KXSELL-26DEC-T1"


@pytest.fixture
def fake() -> PolymarketFake:
    return PolymarketFake()


@pytest.fixture
async def servers(fake):
    async with LoopbackServer(fake.gamma_app()) as gamma, LoopbackServer(fake.clob_app()) as clob, \
            LoopbackServer(fake.data_app()) as data:
        yield gamma, clob, data


# -- Kalshi -------------------------------------------------------------------------------------

def exit_order(cid: str, contracts: str, limit: str, side: Side = Side.YES, tif: str = "immediate_or_cancel",
               ticker: str = EXIT) -> OrderRequest:
    return order(cid, contracts, limit, side, tif, ticker).model_copy(update={"action": SELL})


async def holding(kalshi, side: Side = Side.YES) -> Market:
    """EXIT's book: YES bids 0.60 x4, 0.58 x10; NO bids 0.38 x20 (YES asks 0.62 x20). Then 10 held:
    10 YES bought at 0.62 (cost 6.20, fee 0.07 x 10 x 0.62 x 0.38 = 0.16492 -> 0.1650), or
    10 NO bought at <= 0.42 (4 @ 0.40 + 6 @ 0.42 = 4.12; fees 0.0672 + 0.1024 = 0.1696)."""
    kalshi.fake.add_market(EXIT, yes=[("0.60", "4"), ("0.58", "10")], no=[("0.38", "20")],
                           close_time=NOW + timedelta(days=10))
    [market], _ = await kalshi.client.with_fees([market_of(kalshi.fake, EXIT)], NOW)
    limit = "0.62" if side is Side.YES else "0.42"
    bought = await kalshi.client.place_order(order("od-entry", "10", limit, side, ticker=EXIT), market)
    assert bought.status is OrderStatus.FILLED and bought.filled == 10
    kalshi.server.requests.clear()
    return market


async def test_kalshi_selling_held_yes_is_a_reduce_only_ask_read_back_as_what_it_received(kalshi):
    market = await holding(kalshi)
    start = await kalshi.client.get_balance()
    result = await kalshi.client.place_order(exit_order("od-exit", "10", "0.58"), market)
    [body] = posts(kalshi.server)
    assert kalshi_errors(body, "CreateOrderV2Request") == [] and not unknown_fields(body, "CreateOrderV2Request")
    assert body == {"ticker": EXIT, "client_order_id": "od-exit", "side": "ask", "count": "10.00", "price": "0.5800",
                    "time_in_force": "immediate_or_cancel", "self_trade_prevention_type": "taker_at_cross",
                    "reduce_only": True}
    # 4 @ 0.60 + 6 @ 0.58 = 5.88 received; fees 0.07 x 4 x 0.60 x 0.40 = 0.0672 and
    # 0.07 x 6 x 0.58 x 0.42 = 0.102312 -> 0.1024. Kalshi shows the NO leg (4.12); 10 - 4.12 = 5.88.
    assert result.status is OrderStatus.FILLED and result.filled == 10
    assert result.cost == D("5.88") and result.average_price == D("0.588") and result.fees == D("0.1696")
    assert result.fees == market.fees.fee(D(4), D("0.60")) + market.fees.fee(D(6), D("0.58"))  # the desk's model
    assert await kalshi.client.get_order(result.venue_order_id, SELL) == result
    assert await kalshi.client.get_balance() == start + D("5.88") - D("0.1696")
    [position] = await kalshi.client.get_positions()
    assert (position.position, position.exposure, position.realized_pnl) == (0, 0, D("5.88") - D("6.20"))


async def test_kalshi_selling_held_no_is_a_reduce_only_bid_at_one_minus_the_price(kalshi):
    market = await holding(kalshi, Side.NO)
    result = await kalshi.client.place_order(exit_order("od-exit-no", "10", "0.38", side=Side.NO), market)
    [body] = posts(kalshi.server)
    assert (body["side"], body["price"], body["reduce_only"]) == ("bid", "0.6200", True)
    # it lifts the NO bid at 0.38 (YES 0.62): 10 x 0.38 = 3.80 received; fee 0.07 x 10 x 0.62 x 0.38 -> 0.1650
    assert result.status is OrderStatus.FILLED and result.filled == 10
    assert result.cost == D("3.80") and result.average_price == D("0.38") and result.fees == D("0.1650")
    assert kalshi.fake.positions[EXIT].position == 0


async def test_kalshi_a_sell_partly_filled_cancels_the_rest(kalshi):
    market = await holding(kalshi)
    result = await kalshi.client.place_order(exit_order("od-part", "10", "0.60"), market)
    # only the 0.60 level is at or above 0.60: 4 sold, fee 0.0672
    assert result.status is OrderStatus.PARTIALLY_FILLED and result.filled == 4
    assert result.cost == D("2.40") and result.fees == D("0.0672")
    assert result.reason == "4 of 10 filled at or above 0.6000; the rest was cancelled"
    assert kalshi.fake.positions[EXIT].position == 6
    nothing = await kalshi.client.place_order(exit_order("od-none", "6", "0.61"), market)
    assert nothing.status is OrderStatus.CANCELED and nothing.reason == "no fill at or above 0.61; cancelled"


@pytest.mark.parametrize("keeps_count", [True, False])
async def test_kalshi_reduce_only_caps_a_sale_at_the_position_held(kalshi, keeps_count):
    market = await holding(kalshi)
    kalshi.fake.reduce_only_keeps_count = keeps_count  # however the exchange then shows the order
    result = await kalshi.client.place_order(exit_order("od-cap", "14", "0.58"), market)
    # 14 bid at 0.58 or more, but only 10 held: 4 @ 0.60 + 6 @ 0.58, and no NO position opened
    assert result.status is OrderStatus.PARTIALLY_FILLED and result.filled == 10 and result.cost == D("5.88")
    assert kalshi.fake.positions[EXIT].position == 0
    assert (await kalshi.client.get_order_book(market)).yes_bids[0].size == 4  # 14 - 10 left on the book


@pytest.mark.parametrize("tif", ["good_till_canceled", "fill_or_kill"])
async def test_kalshi_a_sell_that_is_not_immediate_or_cancel_is_refused_before_sending(kalshi, tif):
    market = await holding(kalshi)
    with pytest.raises(GiveUpError, match=f"immediate-or-cancel only, not {tif}; nothing was sent"):
        await kalshi.client.place_order(exit_order("od-gtc-exit", "10", "0.58", tif=tif), market)
    assert posts(kalshi.server) == [] and kalshi.fake.positions[EXIT].position == 10


async def test_kalshi_a_lost_sale_reply_is_found_in_the_sold_sides_terms(kalshi):
    market = await holding(kalshi)
    kalshi.server.faults.add("drop_after", ORDERS_V2, "POST")
    with pytest.raises(OutcomeUnknownError):
        await kalshi.client.place_order(exit_order("od-lost-exit", "10", "0.58"), market)
    found = await kalshi.client.find_order("od-lost-exit", market, action=SELL)
    assert found is not None and found.status is OrderStatus.FILLED and found.filled == 10
    assert found.cost == D("5.88") and found.fees == D("0.1696") and found.client_order_id == "od-lost-exit"
    # the wire cannot tell: read as a buy, the same order is 10 NO bought for 4.12
    as_buy = await kalshi.client.find_order("od-lost-exit", market)
    assert as_buy is not None and as_buy.cost == D("4.12")
    # sent again (a retry after a restart), the 409 is looked up in the sale's terms, never posted twice
    again = await kalshi.client.place_order(exit_order("od-lost-exit", "10", "0.58"), market)
    assert again == found and kalshi.server.count("POST", ORDERS_V2) == 2 and kalshi.fake.positions[EXIT].position == 0
    # and the archive answers the same
    kalshi.fake.archive(kalshi.fake.client_ids["od-lost-exit"])
    assert await kalshi.client.find_order("od-lost-exit", market, action=SELL) == found


async def test_kalshi_a_sale_that_reads_as_receiving_less_than_its_limit_stops_orders_instead_of_booking(kalshi):
    """If Kalshi's cost fields meant the sold side's terms (not the positioned leg's, as assumed), a sale at 0.60 would
    read as receiving 0.40: that is refused as a contract error (orders to Kalshi stop), never booked."""
    market = await holding(kalshi)
    result = await kalshi.client.place_order(exit_order("od-exit-read", "4", "0.60"), market)
    raw = dict(kalshi.fake.orders[result.venue_order_id])
    assert order_from_wire(raw, SELL).cost == D("2.40")  # 4 x 0.60, as the fake states the NO leg's cost 1.60
    raw["taker_fill_cost_dollars"] = "2.4000"  # the same sale, its cost stated in YES terms
    with pytest.raises(VenueContractError, match="below its limit") as refused:
        order_from_wire(raw, SELL)
    assert refused.value.venue == "kalshi" and refused.value.code == "sale_below_limit"


async def test_kalshi_cancelling_a_finished_sale_reads_it_back_as_a_sale(kalshi):
    market = await holding(kalshi)
    result = await kalshi.client.place_order(exit_order("od-done", "10", "0.58"), market)
    now = utcnow()
    placed = Order(id="o-1", signal_id="s-1", client_order_id="od-done", venue=Venue.KALSHI, market_id=EXIT,
                   side=Side.YES, action=SELL, contracts=D(10), limit_price=D("0.58"), status=OrderStatus.FILLED,
                   paper=False, venue_order_id=result.venue_order_id, created_at=now, updated_at=now)
    after = await kalshi.client.cancel(placed, market)  # nothing rests: the DELETE is a 404, the order read back
    assert after == result


# -- Polymarket ---------------------------------------------------------------------------------

def sell(market: Market, contracts: str, price: str, *, side: Side = Side.NO, tif: str | None = "immediate_or_cancel",
         coid: str = "od-exit-1") -> OrderRequest:
    fields = dict(client_order_id=coid, venue=Venue.POLYMARKET, market_id=market.id, side=side, action=SELL,
                  token_id=market.yes_token_id if side is Side.YES else market.no_token_id,
                  contracts=D(contracts), limit_price=D(price))
    return OrderRequest(**fields, **({"time_in_force": tif} if tif else {}))  # type: ignore[arg-type]


def exit_market(fake, **kw):
    """YES asks 0.42 x100, 0.44 x100, 0.50 x500, so NO bids 0.58 x100, 0.56 x100, 0.50 x500; taker rate 0.04."""
    return fake.add_market("Will the Fed cut rates in December?", bids=[("0.40", "200"), ("0.38", "500")],
                           asks=[("0.42", "100"), ("0.44", "100"), ("0.50", "500")], fee_rate="0.04", **kw)


async def test_polymarket_selling_held_no_signs_its_shares_for_pusd_and_books_the_proceeds(fake, servers):
    fed = exit_market(fake)
    fake.hold(WALLET, fed, "No", 150)
    _, clob, _ = servers
    client = make_client(servers)
    market = await listed(client, fed.condition_id)
    start = fake.balance
    result = await client.place_order(sell(market, "150", "0.56"), market)
    [post] = order_posts(clob)
    wire = post.json()["order"]
    # a SELL gives 150 shares (makerAmount) for at least 150 x 0.56 = 84 pUSD (takerAmount), 6 decimals
    assert (wire["side"], wire["tokenId"], wire["makerAmount"], wire["takerAmount"]) == (
        "SELL", market.no_token_id, "150000000", "84000000")
    assert post.json()["orderType"] == "FAK" and result.venue_order_id == order_hash(wire, neg_risk=False)
    # 100 @ 0.58 + 50 @ 0.56 = 86 received; the CLOB's fee per level: 0.04 x 100 x 0.58 x 0.42 = 0.9744 and
    # 0.04 x 50 x 0.56 x 0.44 = 0.4928, off the proceeds
    [sold] = fake.orders.values()
    assert (sold.side, sold.paid, sold.fee) == ("SELL", D("86"), D("1.4672"))
    assert fake.balance == start + D("86") - D("1.4672")
    assert result.status is OrderStatus.FILLED and result.filled == 150 and result.cost == D("86")
    assert result.average_price == D("86") / 150
    # the desk books the fee at the average price (0.57333): 6 x 0.57333 x 0.42667 = 1.467733 -> 1.46774, a hair
    # above the CLOB's (p(1 - p) is concave): what the sale nets is never overstated
    assert result.fees == D("1.46774") and result.fees - sold.fee < D("0.001")
    assert (await client.journal.get("od-exit-1")).action == "sell"
    assert fake.book_levels(fed, "No")[0][0] == (D("0.56"), D(50))
    await client.aclose()


async def test_polymarket_a_fak_sale_keeps_what_fills_and_the_positions_show_the_rest(fake, servers):
    fed = exit_market(fake)
    fake.hold(WALLET, fed, "No", 300)
    client = make_client(servers)
    market = await listed(client, fed.condition_id)
    result = await client.place_order(sell(market, "300", "0.56"), market)
    # 100 @ 0.58 + 100 @ 0.56 = 114 for 200; the 0.50 level is under the limit
    assert result.status is OrderStatus.PARTIALLY_FILLED and result.filled == 200 and result.cost == D("114")
    assert result.reason == "200 of 300 filled at or above 0.56; the rest cancelled"
    assert await client.signed_positions() == {fed.condition_id: D(-100)}  # NO is the negative side
    await client.aclose()


async def test_polymarket_a_sale_of_more_than_the_wallet_holds_is_refused_by_the_clob(fake, servers):
    fed = exit_market(fake)
    fake.hold(WALLET, fed, "No", 10)
    _, clob, _ = servers
    client = make_client(servers)
    market = await listed(client, fed.condition_id)
    with pytest.raises(GiveUpError, match="not enough balance / allowance"):
        await client.place_order(sell(market, "20", "0.56"), market)
    assert len(order_posts(clob)) == 1 and fake.orders == {}
    await client.aclose()


async def test_polymarket_a_sale_not_fak_or_under_a_dollar_is_refused_before_signing(fake, servers):
    fed = exit_market(fake)
    fake.hold(WALLET, fed, "No", 150)
    _, clob, _ = servers
    client = make_client(servers, time_in_force="good_till_canceled")  # the desk's default for buys
    market = await listed(client, fed.condition_id)
    for tif in ("good_till_canceled", "fill_or_kill"):
        with pytest.raises(GiveUpError, match=f"immediate-or-cancel \\(FAK\\) only, not {tif}; nothing was sent"):
            await client.place_order(sell(market, "150", "0.56", tif=tif), market)
    with pytest.raises(GiveUpError, match=r"worth \$0.56, below the \$1 minimum; nothing was sent"):
        await client.place_order(sell(market, "1", "0.56"), market)
    assert order_posts(clob) == [] and await client.journal.all() == []
    # a sale that names no time in force goes FAK, whatever the desk's default
    done = await client.place_order(sell(market, "150", "0.56", tif=None), market)
    assert done.status is OrderStatus.FILLED and order_posts(clob)[0].json()["orderType"] == "FAK"
    await client.aclose()


async def test_polymarket_a_lost_sale_reply_is_found_by_hash_with_the_limit_a_lower_bound(fake, servers):
    fed = exit_market(fake)
    fake.hold(WALLET, fed, "No", 150)
    _, clob, _ = servers
    clob.faults.add("drop_after", "/order", "POST")
    client = make_client(servers)
    market = await listed(client, fed.condition_id)
    request = sell(market, "150", "0.56")
    with pytest.raises(OutcomeUnknownError):
        await client.place_order(request, market)
    assert len(fake.orders) == 1 and len(order_posts(clob)) == 1  # sold; the answer lost
    found = await client.find_order(request.client_order_id, market, action=SELL)
    # the order shows its limit, not the levels it hit: 150 at 0.56 = 84, at most what it fetched (86)
    assert found is not None and found.status is OrderStatus.FILLED and found.filled == 150
    assert found.prices_are_bounds and found.average_price == D("0.56") and found.cost == D("84") <= D("86")
    assert "(a lower bound)" in found.reason
    again = await client.place_order(request, market)  # looked up, never posted twice
    assert again == found and len(order_posts(clob)) == 1
    with pytest.raises(GiveUpError, match="already used for a different Polymarket order"):
        await client.place_order(request.model_copy(update={"action": OrderAction.BUY}), market)
    await client.aclose()


def test_journal_rows_say_which_way_an_order_went_and_old_rows_are_buys():
    market = make_market("0xfed", venue=Venue.POLYMARKET)
    fields = dict(client_order_id="od-1", order_id="0xabc", market_id="0xfed", token_id="1", side="no",
                  contracts="150", limit_price="0.56", order_type="FAK", salt=1, timestamp=1, maker="0x1",
                  signer="0x1", signature_type=0, maker_amount=150_000_000, taker_amount=84_000_000, neg_risk=False,
                  tick_size="0.01")
    request = OrderRequest(client_order_id="od-1", venue=Venue.POLYMARKET, market_id="0xfed", side=Side.NO,
                           contracts=D(150), limit_price=D("0.56"))
    old = SentOrder.from_json(json.dumps(fields))  # written before exits: no action
    assert old.action == "buy" and old.same_order(request, market, "FAK")
    assert not old.same_order(request.model_copy(update={"action": SELL}), market, "FAK")
    assert "action" not in json.loads(old.to_json())  # a buy's row reads as it always did
    sold = SentOrder(**fields, action="sell")
    assert json.loads(sold.to_json())["action"] == "sell" and SentOrder.from_json(sold.to_json()) == sold
    assert sold.same_order(request.model_copy(update={"action": SELL}), market, "FAK")


# -- the in-memory venue the desk tests use -----------------------------------------------------

async def test_the_fake_venue_sells_into_the_bids_and_remembers_the_direction_looked_up():
    venue = FakeVenue()
    market = make_market()
    venue.add(market, make_book(market, bids=[("0.60", "4"), ("0.58", "10")], asks=[("0.62", "20")]))
    request = OrderRequest(client_order_id="od-fv", venue=Venue.KALSHI, market_id=market.id, side=Side.YES,
                           action=SELL, contracts=D(10), limit_price=D("0.58"))
    result = await venue.place_order(request, market)
    # make_market's fee model rounds to the cent: ceil(0.0672) = 0.07, ceil(0.102312) = 0.11
    assert result.status is OrderStatus.FILLED and result.cost == D("5.88") and result.fees == D("0.18")
    assert await venue.find_order("od-fv", market, action=SELL) == result
    assert venue.looked_up_as == {"od-fv": SELL} and venue.requests == [request]
