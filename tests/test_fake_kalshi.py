"""The fake Kalshi Trade API (tests/servers/kalshi.py) against the pinned spec v3.31.0, over raw HTTP.

These tests speak to the fake as any client would, signing requests themselves; they never use our
KalshiClient, so the fake is checked against Kalshi's documented behaviour and not against our reading
of it. Fee examples are worked by hand in the comments.
"""

from __future__ import annotations

import base64
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from functools import cache
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from .contracts import kalshi_errors, unknown_fields
from .servers.base import LoopbackServer
from .servers.kalshi import PREFIX, FakeKalshi

D = Decimal
KEY_ID = "fake-kalshi-self-test-key"
NOW = datetime(2026, 12, 1, 15, 0, tzinfo=timezone.utc)
FED = "KXFED-26DEC-H0"
V1_GONE = {"error": {"code": "deprecated_v1_order_endpoint", "message": "Please switch to the V2 endpoints",
                     "details": "https://docs.kalshi.com/api-reference/orders/create-order-v2"}}


@cache
def key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def sign_headers(method: str, path: str) -> dict[str, str]:
    """Kalshi's scheme: RSA-PSS (salt = digest length) over ts_ms + METHOD + prefixed path without the query."""
    stamp = str(int(time.time() * 1000))
    signature = key().sign(f"{stamp}{method}{path}".encode(),
                           padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH),
                           hashes.SHA256())
    return {"KALSHI-ACCESS-KEY": KEY_ID, "KALSHI-ACCESS-TIMESTAMP": stamp,
            "KALSHI-ACCESS-SIGNATURE": base64.b64encode(signature).decode()}


@dataclass
class Env:
    fake: FakeKalshi
    server: LoopbackServer
    http: httpx.AsyncClient

    async def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        request = self.http.build_request(method, path, **kwargs)
        request.headers.update(sign_headers(method, request.url.raw_path.decode().split("?")[0]))
        return await self.http.send(request)

    async def order(self, **fields: Any) -> httpx.Response:
        body = {"ticker": FED, "side": "bid", "count": "1", "price": "0.44", "time_in_force": "immediate_or_cancel",
                "self_trade_prevention_type": "taker_at_cross", **fields}
        return await self.call("POST", "/portfolio/events/orders", json={k: v for k, v in body.items() if v is not ...})

    async def book(self, ticker: str = FED) -> dict[str, list[list[str]]]:
        return (await self.http.get(f"/markets/{ticker}/orderbook")).json()["orderbook_fp"]


@pytest.fixture
async def env() -> AsyncIterator[Env]:
    fake = FakeKalshi(key().public_key(), KEY_ID, now=NOW)
    # YES bids 0.40 x2000, 0.38 x500; NO bids 0.58 x100, 0.56 x100, 0.50 x500 (YES asks 0.42, 0.44, 0.50).
    fake.add_market(FED, yes=[("0.40", "2000"), ("0.38", "500")], no=[("0.58", "100"), ("0.56", "100"),
                                                                       ("0.50", "500")])
    async with fake.serve() as server, httpx.AsyncClient(base_url=fake.base_url) as http:  # entered in order
        yield Env(fake, server, http)


def no_service(payload: Any) -> None:
    assert "service" not in (payload.get("error") if isinstance(payload.get("error"), dict) else payload)


# -- V1 writes are retired ----------------------------------------------------------------------

async def test_v1_order_writes_answer_410_and_change_nothing(env):
    book_before, balance_before = await env.book(), env.fake.balance
    created = await env.call("POST", "/portfolio/orders", json={
        "ticker": FED, "client_order_id": "v1", "side": "yes", "action": "buy", "count": 5,
        "yes_price_dollars": "0.4400", "time_in_force": "immediate_or_cancel"})
    assert (created.status_code, created.json()) == (410, V1_GONE)
    resting = (await env.order(side="bid", price="0.30", count="5", time_in_force="good_till_canceled")).json()
    cancelled = await env.call("DELETE", f"/portfolio/orders/{resting['order_id']}")
    assert (cancelled.status_code, cancelled.json()) == (410, V1_GONE)
    assert env.fake.orders[resting["order_id"]]["status"] == "resting"  # the V1 delete cancelled nothing
    assert env.fake.client_ids == {} and len(env.fake.orders) == 1 and env.fake.balance == balance_before
    assert (await env.book())["no_dollars"] == book_before["no_dollars"]
    listed = await env.call("GET", "/portfolio/orders")  # the V1 reads stay
    got = await env.call("GET", f"/portfolio/orders/{resting['order_id']}")
    assert listed.status_code == got.status_code == 200 and got.json()["order"]["order_id"] == resting["order_id"]


# -- V2 create: fills, costs and fees -----------------------------------------------------------

async def test_a_bid_buys_yes_across_levels_with_fees_rounded_up_to_the_centicent(env):
    response = await env.order(client_order_id="bid-1", count="113", price="0.44")
    assert response.status_code == 201
    created = response.json()
    # 100 @ 0.42: 0.07 x 100 x 0.42 x 0.58 = 1.7052; 13 @ 0.44: 0.07 x 13 x 0.44 x 0.56 = 0.224224 -> 0.2243.
    assert set(created) == {"order_id", "client_order_id", "fill_count", "remaining_count", "ts_ms",
                            "average_fill_price", "average_fee_paid"}
    assert (created["client_order_id"], created["fill_count"], created["remaining_count"]) == ("bid-1", "113.00",
                                                                                               "0.00")
    assert created["average_fill_price"] == "0.422301"  # 47.72 / 113 in YES terms
    assert created["average_fee_paid"] == "0.017075"  # 1.9295 / 113, per contract
    assert abs(created["ts_ms"] - time.time() * 1000) < 5000
    order = (await env.call("GET", f"/portfolio/orders/{created['order_id']}")).json()["order"]
    assert (order["outcome_side"], order["book_side"], order["status"], order["type"]) == ("yes", "bid", "executed",
                                                                                           "limit")
    assert (order["yes_price_dollars"], order["no_price_dollars"]) == ("0.4400", "0.5600")
    assert (order["taker_fill_cost_dollars"], order["taker_fees_dollars"]) == ("47.7200", "1.9295")
    assert (order["fill_count_fp"], order["remaining_count_fp"], order["initial_count_fp"]) == ("113.00", "0.00",
                                                                                                "113.00")
    balance = (await env.call("GET", "/portfolio/balance")).json()
    assert balance["balance_dollars"] == "9950.3505"  # 10000 - 47.72 - 1.9295
    [position] = (await env.call("GET", "/portfolio/positions")).json()["market_positions"]
    assert (position["position_fp"], position["market_exposure_dollars"], position["exchange_index"]) == (
        "113.00", "47.7200", 0)
    assert (await env.book())["no_dollars"] == [["0.5000", "500.00"], ["0.5600", "87.00"]]


async def test_an_ask_buys_no_and_its_costs_are_in_no_terms(env):
    # ask at YES 0.38 = buy NO at <= 0.62: hits the YES bid 0.40 (NO costs 0.60 a contract).
    created = (await env.order(client_order_id="ask-1", side="ask", count="7", price="0.38")).json()
    assert (created["fill_count"], created["average_fill_price"]) == ("7.00", "0.4000")  # YES-book terms
    # 0.07 x 7 x 0.40 x 0.60 = 0.1176 exactly; per contract 0.0168.
    assert created["average_fee_paid"] == "0.0168"
    order = env.fake.by_client_id("ask-1")
    assert (order["outcome_side"], order["book_side"], order["side"], order["action"]) == ("no", "ask", "yes", "sell")
    assert (order["yes_price_dollars"], order["no_price_dollars"]) == ("0.3800", "0.6200")
    assert (order["taker_fill_cost_dollars"], order["taker_fees_dollars"]) == ("4.2000", "0.1176")  # 7 x 0.60
    assert env.fake.positions[FED].position == -7 and env.fake.balance == D("10000") - D("4.2") - D("0.1176")
    assert (await env.book())["yes_dollars"][-1] == ["0.4000", "1993.00"]


@pytest.mark.parametrize("fee_type, multiplier, flat_fee, fee", [
    ("quadratic", 1, None, "0.0518"),  # 0.07 x 3 x 0.56 x 0.44 = 0.051744 -> up to 0.0518 (not 0.06)
    ("quadratic", 0.5, None, "0.0259"),  # 0.025872 -> 0.0259
    ("quadratic", 2, None, "0.1035"),  # 0.103488 -> 0.1035
    ("quadratic_with_maker_fees", 1, None, "0.0518"),  # the taker pays the same
    ("quadratic_with_combo_maker_fees", 1, None, "0.0518"),
    ("flat", 1, "0.00333", "0.0100"),  # assumed flat: 3 x 0.00333 = 0.00999 -> 0.0100
    ("flat", 2, "0.005", "0.0300"),  # 2 x 3 x 0.005
])
async def test_the_taker_fee_follows_the_series(env, fee_type, multiplier, flat_fee, fee):
    env.fake.add_market("KXHIGH-26DEC-T60", yes=[("0.30", "10")], no=[("0.44", "10")])
    env.fake.set_series("KXHIGH", fee_type=fee_type, fee_multiplier=multiplier, flat_fee=flat_fee)
    created = (await env.order(ticker="KXHIGH-26DEC-T60", count="3", price="0.56")).json()
    assert created["fill_count"] == "3.00"
    assert env.fake.orders[created["order_id"]]["taker_fees_dollars"] == fee


async def test_one_contract_at_56_cents_costs_the_documented_fee(env):
    env.fake.add_market("KXHIGH-26DEC-T61", yes=[], no=[("0.44", "1")])
    created = (await env.order(ticker="KXHIGH-26DEC-T61", price="0.56")).json()
    assert env.fake.orders[created["order_id"]]["taker_fees_dollars"] == "0.0173"  # 0.017248 up to 0.0173


async def test_scheduled_series_changes_and_event_overrides_apply_once_their_time_has_passed(env):
    ticker = "KXHIGH-26DEC-T60"
    env.fake.add_market(ticker, yes=[], no=[("0.44", "100")])
    now = time.time()

    async def fee() -> str:
        created = (await env.order(ticker=ticker, count="3", price="0.56")).json()
        return env.fake.orders[created["order_id"]]["taker_fees_dollars"]

    env.fake.set_series("KXHIGH", fee_type="quadratic", fee_multiplier=1)
    env.fake.add_series_fee_change("KXHIGH", "quadratic", 0.5, now - 60)  # passed: the series now charges half
    env.fake.add_series_fee_change("KXHIGH", "quadratic", 3, now + 3600)  # not yet
    assert await fee() == "0.0259"
    env.fake.set_event_fee_override("KXHIGH-26DEC", "quadratic", 2, now - 30)  # passed: the event charges double
    env.fake.set_event_fee_override("KXHIGH-26DEC", "flat", 9, now + 3600)  # not yet
    assert await fee() == "0.1035"
    env.fake.set_event_fee_override("KXHIGH-26DEC", None, None, now - 10)  # cleared: back to the series
    assert await fee() == "0.0259"
    series = (await env.http.get("/series/KXHIGH")).json()["series"]
    assert (series["fee_type"], series["fee_multiplier"]) == ("quadratic", 0.5)
    future = (await env.http.get("/series/fee_changes", params={"series_ticker": "KXHIGH"})).json()
    assert [c["fee_multiplier"] for c in future["series_fee_change_arr"]] == [3]
    everything = (await env.http.get("/series/fee_changes", params={"series_ticker": "KXHIGH",
                                                                      "show_historical": "true"})).json()
    assert [c["fee_multiplier"] for c in everything["series_fee_change_arr"]] == [0.5, 3]
    events = (await env.http.get("/events/fee_changes", params={"event_ticker": "KXHIGH-26DEC", "limit": 2})).json()
    assert [c["fee_multiplier_override"] for c in events["event_fee_changes"]] == [2, None] and events["cursor"]
    rest = (await env.http.get("/events/fee_changes", params={"event_ticker": "KXHIGH-26DEC",
                                                                "cursor": events["cursor"]})).json()
    assert [c["fee_type_override"] for c in rest["event_fee_changes"]] == ["flat"] and rest["cursor"] == ""
    assert (await env.http.get("/series/KXNOPE")).status_code == 404


# -- V2 create: refusals ------------------------------------------------------------------------

@pytest.mark.parametrize("body, detail", [
    (b'{"ticker": ', "invalid JSON"),
    (b'["a list"]', "JSON object"),
    ({"buy_max_cost": 500}, "buy_max_cost"),  # V1 only: no such field in V2
    ({"action": "buy"}, "action"),
    ({"count": 5}, "count"),  # a number, not a FixedPointCount string
    ({"side": "yes"}, "side"),
    ({"time_in_force": "day"}, "time_in_force"),
    ({"self_trade_prevention_type": "none"}, "self_trade_prevention_type"),
])
async def test_bodies_that_cannot_be_decoded_are_a_top_level_bad_request(env, body, detail):
    if isinstance(body, bytes):
        response = await env.call("POST", "/portfolio/events/orders", content=body,
                                  headers={"Content-Type": "application/json"})
    else:
        response = await env.order(**body)
    payload = response.json()
    assert response.status_code == 400 and set(payload) == {"code", "message", "details"}
    assert payload["code"] == "bad_request" and detail in payload["details"]
    assert kalshi_errors(payload, "ErrorResponse") == [] and env.fake.orders == {}


@pytest.mark.parametrize("change, status, code", [
    ({"ticker": ...}, 400, "missing_parameters"),
    ({"ticker": ""}, 400, "missing_parameters"),
    ({"price": ...}, 400, "invalid_order"),
    ({"count": ...}, 400, "invalid_order"),
    ({"side": ...}, 400, "invalid_order"),
    ({"ticker": "KXNOPE-26DEC-T1"}, 404, "market_not_found"),
    ({"exchange_index": 2}, 404, "market_not_found"),  # routed to a shard that does not list FED
    ({"price": "0.445"}, 400, "invalid_price"),  # off the cent tick
    ({"price": "0.5"}, 400, "invalid_price"),  # one decimal
    ({"price": "0.44000"}, 400, "invalid_price"),  # five decimals
    ({"price": "1.00"}, 400, "invalid_price"),
    ({"price": "0.00"}, 400, "invalid_price"),
    ({"price": "-0.44"}, 400, "invalid_price"),
    ({"count": "0"}, 400, "invalid_order"),
    ({"count": "0.001"}, 400, "invalid_order"),
    ({"count": "1.234"}, 400, "invalid_order"),
    ({"count": "ten"}, 400, "invalid_order"),
    ({"reduce_only": True, "time_in_force": "good_till_canceled"}, 400, "invalid_order"),
    ({"count": "100000"}, 400, "insufficient_balance"),  # 100000 x 0.44 > $10000
])
async def test_the_business_rules(env, change, status, code):
    response = await env.order(**change)
    payload = response.json()
    assert response.status_code == status and payload["error"]["code"] == code, payload
    assert kalshi_errors(payload["error"], "ErrorResponse") == [] and "service" not in payload["error"]
    assert env.fake.orders == {} and env.fake.balance == D("10000")


async def test_fractional_counts_fill_unless_the_market_trades_whole_contracts(env):
    fractional = (await env.order(count="2.5", price="0.42")).json()
    # 2.5 x 0.42 = 1.05; fee 0.07 x 2.5 x 0.42 x 0.58 = 0.042630 -> 0.0427
    assert fractional["fill_count"] == "2.50" and env.fake.orders[fractional["order_id"]]["taker_fees_dollars"] == \
        "0.0427"
    env.fake.add_market("KXWHOLE-26DEC-T1", yes=[], no=[("0.58", "10")], whole_contracts=True)
    refused = await env.order(ticker="KXWHOLE-26DEC-T1", count="2.5", price="0.42")
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "invalid_order"
    assert (await env.order(ticker="KXWHOLE-26DEC-T1", count="2.00", price="0.42")).status_code == 201


@pytest.mark.parametrize("status, http_status, code", [("inactive", 409, "trading_is_paused"),
                                                       ("closed", 400, "market_closed"),
                                                       ("initialized", 400, "market_closed")])
async def test_a_market_that_is_not_active_refuses_orders(env, status, http_status, code):
    env.fake.markets[FED]["status"] = status
    response = await env.order()
    assert (response.status_code, response.json()["error"]["code"]) == (http_status, code)


async def test_a_duplicate_client_order_id_is_409_order_already_exists(env):
    assert (await env.order(client_order_id="dup")).status_code == 201
    again = await env.order(client_order_id="dup")
    assert again.status_code == 409
    assert again.json() == {"error": {"code": "order_already_exists", "message": "order already exists"}}
    assert len(env.fake.orders) == 1


async def test_portfolio_writes_need_a_signature(env):
    response = await env.http.post("/portfolio/events/orders", json={"ticker": FED})
    assert response.status_code == 401 and response.json()["error"]["code"] == "unauthorized"
    no_service(response.json())


# -- selling what is held: netting and reduce_only -----------------------------------------------

SELL = "KXSELL-26DEC-T1"


async def holding_ten_yes(env: Env) -> None:
    """YES bids 0.60 x4, 0.58 x10; NO bids 0.38 x20 (a YES ask at 0.62). Buys 10 YES at 0.62: cost 6.20, fee
    0.07 x 10 x 0.62 x 0.38 = 0.16492 -> 0.1650."""
    env.fake.add_market(SELL, yes=[("0.60", "4"), ("0.58", "10")], no=[("0.38", "20")])
    bought = (await env.order(ticker=SELL, client_order_id="buy-10", count="10", price="0.62")).json()
    assert bought["fill_count"] == "10.00" and env.fake.balance == D("10000") - D("6.20") - D("0.1650")


async def test_selling_held_yes_is_an_ask_whose_netted_pairs_pay_a_dollar_each(env):
    await holding_ten_yes(env)
    response = await env.order(ticker=SELL, client_order_id="sell-10", side="ask", count="10", price="0.58",
                               reduce_only=True)
    assert response.status_code == 201, response.text
    created = response.json()
    # 4 @ 0.60 and 6 @ 0.58 on the YES book: 5.88 / 10 = 0.588 average; fees 0.0672 + 0.102312 -> 0.1024
    assert (created["fill_count"], created["remaining_count"], created["average_fill_price"]) == (
        "10.00", "0.00", "0.5880")
    order = env.fake.by_client_id("sell-10")
    # the order is the NO leg it bought: positioned for "no", costs in NO terms (4 x 0.40 + 6 x 0.42 = 4.12)
    assert (order["outcome_side"], order["book_side"], order["status"]) == ("no", "ask", "executed")
    assert (order["yes_price_dollars"], order["no_price_dollars"]) == ("0.5800", "0.4200")
    assert (order["taker_fill_cost_dollars"], order["taker_fees_dollars"]) == ("4.1200", "0.1696")
    # 10 pairs netted pay 10: the balance rises by 10 - 4.12 - 0.1696 = 5.7104 (5.88 received less the fees)
    assert env.fake.balance == D("10000") - D("6.20") - D("0.1650") + D("5.7104")
    [position] = (await env.call("GET", "/portfolio/positions")).json()["market_positions"]
    assert (position["position_fp"], position["market_exposure_dollars"], position["realized_pnl_dollars"],
            position["fees_paid_dollars"]) == ("0.00", "0.0000", "-0.3200", "0.3346")  # 5.88 - 6.20
    assert (await env.book(SELL))["yes_dollars"] == [["0.5800", "4.00"]]


async def test_partial_sells_shrink_the_position_at_its_average_cost(env):
    await holding_ten_yes(env)
    await env.order(ticker=SELL, side="ask", count="3", price="0.60", reduce_only=True)  # 3 @ 0.60
    [after_one] = (await env.call("GET", "/portfolio/positions")).json()["market_positions"]
    # 7 left costing 6.20 x 7 / 10 = 4.34; realized 1.80 - 1.86 = -0.06
    assert (after_one["position_fp"], after_one["market_exposure_dollars"], after_one["realized_pnl_dollars"]) == (
        "7.00", "4.3400", "-0.0600")
    await env.order(ticker=SELL, side="ask", count="2", price="0.58", reduce_only=True)  # 1 @ 0.60, 1 @ 0.58
    [after_two] = (await env.call("GET", "/portfolio/positions")).json()["market_positions"]
    # 5 left costing 3.10; the 2 sold cost 1.24 and fetched 1.18: realized -0.06 - 0.06 = -0.12
    assert (after_two["position_fp"], after_two["market_exposure_dollars"], after_two["realized_pnl_dollars"]) == (
        "5.00", "3.1000", "-0.1200")


async def test_reduce_only_is_capped_at_the_position_and_fills_nothing_without_one(env):
    await holding_ten_yes(env)
    created = (await env.order(ticker=SELL, client_order_id="cap", side="ask", count="15", price="0.50",
                               reduce_only=True)).json()
    assert (created["fill_count"], created["remaining_count"]) == ("10.00", "0.00")  # 14 bid, 10 held
    order = env.fake.by_client_id("cap")
    assert (order["status"], order["initial_count_fp"], order["fill_count_fp"]) == ("canceled", "15.00", "10.00")
    assert env.fake.positions[SELL].position == 0
    again = (await env.order(ticker=SELL, client_order_id="none-held", side="ask", count="1", price="0.50",
                             reduce_only=True)).json()
    assert again["fill_count"] == "0.00" and env.fake.by_client_id("none-held")["status"] == "canceled"
    # a bid reduces a NO position only: with none, it fills nothing either
    bid = (await env.order(ticker=SELL, client_order_id="bid-none", side="bid", count="1", price="0.62",
                           reduce_only=True)).json()
    assert bid["fill_count"] == "0.00" and env.fake.positions[SELL].position == 0


async def test_selling_held_no_is_a_reduce_only_bid_at_one_minus_the_price(env):
    env.fake.add_market(SELL, yes=[("0.60", "4"), ("0.58", "10")], no=[("0.38", "20")])
    # buy 10 NO: an ask at YES 0.58 hits 4 @ 0.60 (NO 0.40) and 6 @ 0.58 (NO 0.42): NO cost 4.12
    await env.order(ticker=SELL, side="ask", count="10", price="0.58")
    assert env.fake.positions[SELL].position == -10 and env.fake.positions[SELL].cost == D("4.12")
    before = env.fake.balance
    # sell the 10 NO at >= 0.38: a bid at YES 0.62, lifting the NO bid 0.38 (YES 0.62): 10 x 0.62 = 6.20 paid for
    # YES, 10 pairs netted pay 10, so 3.80 received; fee 0.07 x 10 x 0.62 x 0.38 = 0.1650
    created = (await env.order(ticker=SELL, client_order_id="sell-no", side="bid", count="10", price="0.62",
                               reduce_only=True)).json()
    assert created["fill_count"] == "10.00"
    assert (env.fake.by_client_id("sell-no")["outcome_side"], env.fake.by_client_id("sell-no")["book_side"]) == (
        "yes", "bid")
    assert env.fake.balance == before + D("3.80") - D("0.1650")
    assert env.fake.positions[SELL].position == 0 and env.fake.positions[SELL].realized == D("3.80") - D("4.12")


async def test_closing_a_position_needs_no_collateral(env):
    await holding_ten_yes(env)
    env.fake.balance = D("0.05")  # less than the NO leg (4.12) or even the fee
    created = await env.order(ticker=SELL, side="ask", count="10", price="0.58", reduce_only=True)
    assert created.status_code == 201 and created.json()["fill_count"] == "10.00"
    assert env.fake.balance == D("0.05") + D("5.7104")
    opening = await env.order(ticker=SELL, side="ask", count="20", price="0.58")  # 20 NO at 0.42: 8.40 > 5.76
    assert opening.status_code == 400 and opening.json()["error"]["code"] == "insufficient_balance"


# -- time in force ------------------------------------------------------------------------------

async def test_ioc_fills_what_it_can_and_cancels_the_rest(env):
    created = (await env.order(client_order_id="ioc", count="300", price="0.44")).json()
    assert (created["fill_count"], created["remaining_count"]) == ("200.00", "0.00")
    order = env.fake.by_client_id("ioc")
    assert (order["status"], order["fill_count_fp"], order["remaining_count_fp"]) == ("canceled", "200.00", "0.00")
    # 1.7052 + 0.07 x 100 x 0.44 x 0.56 = 1.7248 -> 3.4300
    assert (order["taker_fill_cost_dollars"], order["taker_fees_dollars"]) == ("86.0000", "3.4300")


async def test_fok_is_all_or_nothing(env):
    before = await env.book()
    killed = (await env.order(client_order_id="fok", count="300", price="0.44", time_in_force="fill_or_kill")).json()
    assert killed["fill_count"] == "0.00" and "average_fill_price" not in killed and "average_fee_paid" not in killed
    assert env.fake.by_client_id("fok")["status"] == "canceled" and await env.book() == before
    filled = (await env.order(client_order_id="fok2", count="200", price="0.44", time_in_force="fill_or_kill")).json()
    assert (filled["fill_count"], filled["remaining_count"]) == ("200.00", "0.00")
    assert env.fake.by_client_id("fok2")["status"] == "executed"


async def test_gtc_rests_the_remainder_on_its_book_side(env):
    bid = (await env.order(client_order_id="gtc", count="300", price="0.44",
                           time_in_force="good_till_canceled")).json()
    assert (bid["fill_count"], bid["remaining_count"]) == ("200.00", "100.00")
    assert env.fake.by_client_id("gtc")["status"] == "resting"
    assert (await env.book())["yes_dollars"][-1] == ["0.4400", "100.00"]  # best YES bid, last
    ask = (await env.order(client_order_id="gtc-ask", side="ask", count="10", price="0.45",
                           time_in_force="good_till_canceled")).json()
    assert (ask["fill_count"], ask["remaining_count"]) == ("0.00", "10.00") and "average_fill_price" not in ask
    assert ["0.5500", "10.00"] in (await env.book())["no_dollars"]  # an ask at YES 0.45 rests as a NO bid at 0.55
    market = (await env.http.get(f"/markets/{FED}")).json()["market"]
    assert (market["yes_bid_dollars"], market["yes_ask_dollars"]) == ("0.4400", "0.4500")


async def test_post_only_that_would_cross_is_refused(env):
    response = await env.order(post_only=True, price="0.44", time_in_force="good_till_canceled")
    assert response.status_code == 400 and response.json()["error"] == {
        "code": "invalid_order", "message": "invalid order", "details": "post only cross"}
    assert (await env.order(post_only=True, price="0.41", time_in_force="good_till_canceled")).status_code == 201


async def test_self_trade_prevention(env):
    mine = (await env.order(client_order_id="mine", side="ask", price="0.41", count="5",
                            time_in_force="good_till_canceled")).json()  # rests as NO bid 0.59, in front
    stopped = (await env.order(client_order_id="taker", price="0.44", count="10")).json()
    assert stopped["fill_count"] == "0.00" and env.fake.orders[mine["order_id"]]["status"] == "resting"
    kept = (await env.order(client_order_id="taker2", price="0.44", count="10",
                            self_trade_prevention_type="maker")).json()
    assert kept["fill_count"] == "10.00" and kept["average_fill_price"] == "0.4200"  # past its own order to 0.42
    assert env.fake.orders[mine["order_id"]]["status"] == "canceled"
    assert ["0.5900", "5.00"] not in (await env.book())["no_dollars"]


# -- V2 cancel ----------------------------------------------------------------------------------

async def test_cancel_v2_takes_the_remainder_off_the_book(env):
    resting = (await env.order(client_order_id="c1", count="300", price="0.44",
                               time_in_force="good_till_canceled")).json()
    path = f"/portfolio/events/orders/{resting['order_id']}"
    response = await env.call("DELETE", path, params={"market_ticker": FED})
    assert response.status_code == 200
    cancelled = response.json()
    assert set(cancelled) == {"order_id", "client_order_id", "reduced_by", "ts_ms"}
    assert (cancelled["order_id"], cancelled["client_order_id"], cancelled["reduced_by"]) == (
        resting["order_id"], "c1", "100.00")
    order = env.fake.orders[resting["order_id"]]
    assert (order["status"], order["fill_count_fp"], order["remaining_count_fp"]) == ("canceled", "200.00", "0.00")
    assert (await env.book())["yes_dollars"][-1] == ["0.4000", "2000.00"]
    again = await env.call("DELETE", path, params={"market_ticker": FED})
    assert again.status_code == 404 and again.json()["error"]["code"] == "not_found"
    unknown = await env.call("DELETE", "/portfolio/events/orders/no-such-order")
    assert unknown.status_code == 404


async def test_cancel_v2_on_another_shard_needs_the_market_ticker_or_its_index(env):
    env.fake.add_market("KXBTC-26DEC-B100", yes=[("0.20", "10")], no=[("0.70", "10")], exchange_index=2)
    resting = (await env.order(ticker="KXBTC-26DEC-B100", price="0.25", count="4",
                               time_in_force="good_till_canceled")).json()
    path = f"/portfolio/events/orders/{resting['order_id']}"
    for params in ({}, {"exchange_index": "0"}, {"market_ticker": FED}):  # all routed away from shard 2
        response = await env.call("DELETE", path, params=params)
        assert response.status_code == 404, params
    assert env.fake.orders[resting["order_id"]]["status"] == "resting"
    assert (await env.call("DELETE", path, params={"exchange_index": "-1"})).status_code == 400  # no ticker to route
    response = await env.call("DELETE", path, params={"exchange_index": "2"})
    assert response.status_code == 200 and response.json()["reduced_by"] == "4.00"
    other = (await env.order(ticker="KXBTC-26DEC-B100", price="0.25", count="1",
                             time_in_force="good_till_canceled")).json()
    routed = await env.call("DELETE", f"/portfolio/events/orders/{other['order_id']}",
                            params={"market_ticker": "KXBTC-26DEC-B100"})
    assert routed.status_code == 200 and "client_order_id" not in routed.json()  # none was sent
    assert env.fake.orders[other["order_id"]]["exchange_index"] == 2


# -- maker fills --------------------------------------------------------------------------------

@pytest.mark.parametrize("fee_type, multiplier, first_fee, total_fee", [
    ("quadratic", 1, "0.0000", "0.0000"),
    # 0.0175 x 3 x 0.30 x 0.70 = 0.011025 -> 0.0111; then 7: 0.025725 -> 0.0258; 0.0111 + 0.0258 = 0.0369
    ("quadratic_with_maker_fees", 1, "0.0111", "0.0369"),
    # 0.035 x 3 x 0.21 = 0.02205 -> 0.0221; 7: 0.05145 -> 0.0515
    ("quadratic_with_combo_maker_fees", 1, "0.0221", "0.0736"),
    # 0.5 x 0.035 = 0.0175: as the maker-fee type at 1
    ("quadratic_with_combo_maker_fees", 0.5, "0.0111", "0.0369"),
])
async def test_fill_resting_charges_the_maker_fee_of_the_series(env, fee_type, multiplier, first_fee, total_fee):
    env.fake.set_series("KXFED", fee_type=fee_type, fee_multiplier=multiplier)
    created = (await env.order(client_order_id="maker", price="0.30", count="10",
                               time_in_force="good_till_canceled")).json()
    assert created["fill_count"] == "0.00"
    order = env.fake.fill_resting(created["order_id"], "3")
    assert (order["status"], order["fill_count_fp"], order["remaining_count_fp"]) == ("resting", "3.00", "7.00")
    assert (order["maker_fill_cost_dollars"], order["maker_fees_dollars"]) == ("0.9000", first_fee)
    assert (order["taker_fill_cost_dollars"], order["taker_fees_dollars"]) == ("0.0000", "0.0000")
    assert (await env.book())["yes_dollars"] == [["0.3000", "7.00"], ["0.3800", "500.00"], ["0.4000", "2000.00"]]
    env.fake.fill_resting(created["order_id"], D(7))
    served = (await env.call("GET", f"/portfolio/orders/{created['order_id']}")).json()["order"]
    assert (served["status"], served["maker_fill_cost_dollars"], served["maker_fees_dollars"]) == (
        "executed", "3.0000", total_fee)
    assert ["0.3000"] not in [level[:1] for level in (await env.book())["yes_dollars"]]
    assert env.fake.positions[FED].position == 10
    assert env.fake.balance == D("10000") - D("3") - D(total_fee)


async def test_a_resting_ask_filled_as_maker_costs_in_no_terms(env):
    env.fake.set_series("KXFED", fee_type="quadratic_with_maker_fees")
    created = (await env.order(side="ask", price="0.45", count="4", time_in_force="good_till_canceled")).json()
    order = env.fake.fill_resting(created["order_id"], "4", price="0.47")  # a buyer pays more: still at least 0.45
    # NO cost 4 x 0.53 = 2.12; fee 0.0175 x 4 x 0.47 x 0.53 = 0.0174370 -> 0.0175
    assert (order["maker_fill_cost_dollars"], order["maker_fees_dollars"], order["status"]) == (
        "2.1200", "0.0175", "executed")
    assert env.fake.positions[FED].position == -4


# -- batched books, series, exchange status -------------------------------------------------------

async def test_batched_books_take_repeated_tickers_and_a_comma_joined_value_is_one_unknown_ticker(env):
    env.fake.add_market("KXFED-26DEC-H25", yes=[("0.10", "5"), ("0.12", "7")], no=[("0.80", "3")])
    response = await env.http.get("/markets/orderbooks", params=[("tickers", FED), ("tickers", "KXFED-26DEC-H25")])
    assert response.status_code == 200
    books = response.json()["orderbooks"]
    assert [b["ticker"] for b in books] == [FED, "KXFED-26DEC-H25"]
    assert books[0]["orderbook_fp"] == await env.book()
    assert books[1]["orderbook_fp"] == {"yes_dollars": [["0.1000", "5.00"], ["0.1200", "7.00"]],
                                        "no_dollars": [["0.8000", "3.00"]]}  # ascending: best last
    joined = (await env.http.get("/markets/orderbooks", params={"tickers": f"{FED},KXFED-26DEC-H25"})).json()
    assert joined == {"orderbooks": [{"ticker": f"{FED},KXFED-26DEC-H25",
                                      "orderbook_fp": {"yes_dollars": [], "no_dollars": []}}]}
    for params in ([], [("tickers", f"KX{i}") for i in range(101)], [("tickers", "X" * 201)]):
        refused = await env.http.get("/markets/orderbooks", params=params)
        assert refused.status_code == 400 and refused.json()["error"]["code"] == "invalid_parameters"


async def test_exchange_status_is_settable_and_a_paused_shard_refuses_orders(env):
    status = (await env.http.get("/exchange/status")).json()
    assert status["trading_active"] is True and {s["exchange_index"] for s in status["exchange_index_statuses"]} == {
        0, 1, 2, 3}
    env.fake.exchange_status["trading_active"] = False
    assert (await env.http.get("/exchange/status")).json()["trading_active"] is False
    refused = await env.order()
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "trading_is_paused"


# -- the contract: every payload validates against v3.31.0 and invents nothing --------------------

def spec_errors(instance: Any, schema_name: str) -> list[str]:
    """kalshi_errors, less one defect of the spec itself: EventFeeChange.fee_type_override is `nullable` beside an
    `allOf` with no `type`, which OpenAPI 3.0 ignores, yet the spec says null is how a cleared override reads.
    The fake sends the documented null; every other error counts."""
    return [e for e in kalshi_errors(instance, schema_name)
            if not (e.split(":")[0].endswith("fee_type_override") and ": None " in e)]


def assert_conforms(instance: Any, schema_name: str) -> None:
    assert spec_errors(instance, schema_name) == [], (schema_name, spec_errors(instance, schema_name))
    if isinstance(instance, dict):
        assert not unknown_fields(instance, schema_name), (schema_name, unknown_fields(instance, schema_name))


async def test_every_payload_the_fake_serves_matches_the_pinned_spec(env):
    fake = env.fake
    fake.generate(3)
    fake.add_market("KXBTC-26DEC-B100", yes=[("0.20", "10")], no=[("0.70", "10")], exchange_index=2,
                    price_ranges=[{"start": "0.0000", "end": "0.1000", "step": "0.0010"},
                                  {"start": "0.1000", "end": "0.9000", "step": "0.0100"},
                                  {"start": "0.9000", "end": "1.0000", "step": "0.0010"}])
    fake.set_series("KXFED", fee_type="quadratic_with_maker_fees", fee_multiplier=0.5)
    fake.add_series_fee_change("KXFED", "quadratic", 1, time.time() + 86400)
    fake.set_event_fee_override("KXFED-26DEC", "quadratic", 0.25, time.time() + 3600)
    fake.set_event_fee_override("KXFED-26DEC", None, None, time.time() + 7200)
    filled = (await env.order(client_order_id="spec-ioc", count="113")).json()
    asked = (await env.order(client_order_id="spec-ask", side="ask", count="5", price="0.39")).json()
    resting = (await env.order(client_order_id="spec-gtc", side="ask", count="5", price="0.50",
                               time_in_force="good_till_canceled")).json()
    shard = (await env.order(ticker="KXBTC-26DEC-B100", price="0.055", count="2",
                             time_in_force="good_till_canceled")).json()
    fake.fill_resting(shard["order_id"], "1")
    fake.settle_market(FED, "yes")  # pays out and writes a settlement row
    fake.add_settlement("KXBTC-26DEC-B100", "no", yes_count="0", yes_cost="0", no_count="3", no_cost="2.10")
    cancel = (await env.call("DELETE", f"/portfolio/events/orders/{shard['order_id']}",
                             params={"market_ticker": "KXBTC-26DEC-B100"})).json()
    payloads = {
        "GetMarketsResponse": (await env.http.get("/markets", params={"limit": 10})).json(),
        "GetMarketResponse": (await env.http.get("/markets/KXBTC-26DEC-B100")).json(),
        "GetMarketOrderbookResponse": (await env.http.get(f"/markets/{FED}/orderbook")).json(),
        "GetMarketOrderbooksResponse": (await env.http.get("/markets/orderbooks", params=[
            ("tickers", FED), ("tickers", "KXBTC-26DEC-B100"), ("tickers", "KXNOPE")])).json(),
        "CreateOrderV2Response": filled,
        "CancelOrderV2Response": cancel,
        "GetOrderResponse": (await env.call("GET", f"/portfolio/orders/{asked['order_id']}")).json(),
        "GetOrdersResponse": (await env.call("GET", "/portfolio/orders")).json(),
        "GetBalanceResponse": (await env.call("GET", "/portfolio/balance")).json(),
        "GetPositionsResponse": (await env.call("GET", "/portfolio/positions")).json(),
        "GetSettlementsResponse": (await env.call("GET", "/portfolio/settlements")).json(),
        "GetSeriesResponse": (await env.http.get("/series/KXFED", params={"include_volume": "true"})).json(),
        "GetSeriesFeeChangesResponse": (await env.http.get("/series/fee_changes")).json(),
        "GetEventFeeChangesResponse": (await env.http.get("/events/fee_changes")).json(),
        "ExchangeStatus": (await env.http.get("/exchange/status")).json(),
    }
    fake.archive(asked["order_id"])
    payloads["GetOrdersResponse (historical)"] = (await env.call("GET", "/historical/orders")).json()
    for name, payload in payloads.items():
        assert_conforms(payload, name.split(" ")[0])
    for created in (filled, asked, resting, shard):
        assert_conforms(created, "CreateOrderV2Response")
    nested = [
        *[(m, "Market") for m in payloads["GetMarketsResponse"]["markets"]],
        (payloads["GetMarketResponse"]["market"], "Market"),
        *[(b, "MarketOrderbookFp") for b in payloads["GetMarketOrderbooksResponse"]["orderbooks"]],
        (payloads["GetOrderResponse"]["order"], "Order"),
        *[(o, "Order") for o in payloads["GetOrdersResponse"]["orders"]],
        *[(o, "Order") for o in payloads["GetOrdersResponse (historical)"]["orders"]],
        *[(p, "MarketPosition") for p in payloads["GetPositionsResponse"]["market_positions"]],
        *[(p, "EventPosition") for p in payloads["GetPositionsResponse"]["event_positions"]],
        *[(s, "Settlement") for s in payloads["GetSettlementsResponse"]["settlements"]],
        (payloads["GetSeriesResponse"]["series"], "Series"),
        *[(c, "SeriesFeeChange") for c in payloads["GetSeriesFeeChangesResponse"]["series_fee_change_arr"]],
        *[(c, "EventFeeChange") for c in payloads["GetEventFeeChangesResponse"]["event_fee_changes"]],
        *[(s, "ExchangeIndexStatus") for s in payloads["ExchangeStatus"]["exchange_index_statuses"]],
    ]
    for instance, name in nested:
        assert_conforms(instance, name)
    assert len(payloads["GetOrdersResponse"]["orders"]) == 4
    assert env.fake.by_client_id("spec-gtc")["status"] == "canceled"  # settling cancelled what rested
    assert len(payloads["GetPositionsResponse"]["market_positions"]) == 1  # FED's was settled away
    assert len(payloads["GetSettlementsResponse"]["settlements"]) == 2
    [override, cleared] = payloads["GetEventFeeChangesResponse"]["event_fee_changes"]
    assert kalshi_errors(override, "EventFeeChange") == []
    assert (cleared["fee_type_override"], cleared["fee_multiplier_override"]) == (None, None)
    assert len(payloads["GetSeriesFeeChangesResponse"]["series_fee_change_arr"]) == 1
    market = payloads["GetMarketResponse"]["market"]
    assert (market["settlement_bounds_type"], market["exchange_index"]) == ("default", 2)
    for gone in ("fractional_trading_enabled", "liquidity_dollars", "tick_size"):
        assert gone not in market
    errors = [(await env.http.get("/markets/KXNOPE")).json(), (await env.http.get("/portfolio/balance")).json(),
              (await env.order(client_order_id="spec-ioc")).json()]
    for body in errors:
        assert_conforms(body["error"], "ErrorResponse")


async def test_a_client_order_id_is_optional_and_stored_empty(env):
    created = (await env.order()).json()
    assert "client_order_id" not in created
    assert env.fake.orders[created["order_id"]]["client_order_id"] == "" and env.fake.client_ids == {}


async def test_the_deprecated_order_fields_can_be_left_out(env):
    env.fake.legacy_order_fields = False
    created = (await env.order()).json()
    order = (await env.call("GET", f"/portfolio/orders/{created['order_id']}")).json()["order"]
    assert "side" not in order and "action" not in order
    assert_conforms(order, "Order")


# -- faults and drift ---------------------------------------------------------------------------

async def test_injected_faults_keep_kalshis_bodies(env):
    env.server.faults.add("429", f"{PREFIX}/portfolio/events/orders", "POST")
    env.server.faults.add("500", f"{PREFIX}/markets", "GET")
    limited = await env.order()
    assert (limited.status_code, limited.json()) == (429, {"error": "too many requests"})
    assert "Retry-After" not in limited.headers and env.fake.orders == {}
    broken = await env.http.get("/markets")
    assert broken.status_code == 500 and broken.json() == {
        "error": {"code": "internal_server_error", "message": "internal server error"}}


async def test_drift_drops_fields_changes_statuses_and_retires_routes(env):
    env.fake.generate(2)
    env.fake.drift.drop_market_fields.add("yes_bid_dollars")
    env.fake.drift.market_status[FED] = "suspended"
    markets = (await env.http.get("/markets")).json()["markets"]
    assert all("yes_bid_dollars" not in m for m in markets) and len(markets) == 3
    assert any("yes_bid_dollars" in e for e in kalshi_errors(markets[0], "Market"))
    served = (await env.http.get(f"/markets/{FED}")).json()["market"]
    assert served["status"] == "suspended" and any("suspended" in e for e in kalshi_errors(served, "Market"))
    # still listed as open (its lifecycle is), served with the drifted value
    listed = (await env.http.get("/markets", params={"status": "open"})).json()["markets"]
    assert [m["status"] for m in listed if m["ticker"] == FED] == ["suspended"]
    assert (await env.order()).json()["error"]["code"] == "market_closed"  # not "active", so no trading
    env.fake.drift.market_status.clear()
    env.fake.retire("GET", "/markets/{ticker}")
    env.fake.retire("POST", "/portfolio/events/orders")
    gone = await env.http.get(f"/markets/{FED}")
    assert gone.status_code == 410 and gone.json()["error"]["code"] == "endpoint_retired"
    order = await env.order()
    assert (order.status_code, order.json()) == (410, V1_GONE) and env.fake.orders == {}
    assert (await env.http.get(f"/markets/{FED}/orderbook")).status_code == 200  # other routes still answer
