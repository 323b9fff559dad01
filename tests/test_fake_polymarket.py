"""Self-tests of the fake Polymarket (tests/servers/polymarket.py): it refuses what the real CLOB refuses.

Independent of our client and of py_clob_client_v2: orders are built here and signed with eth-account (EIP-712
via `encode_typed_data`; the deposit wallet's ERC-7739 form by hand with eth-abi), the L2 HMAC is computed here,
and every request is raw HTTP with httpx. Fee expectations are worked by hand.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from decimal import Decimal
from typing import Any

import httpx
import pytest
from eth_abi import encode as abi_encode
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils import keccak

from .servers.base import LoopbackServer
from .servers.polymarket import ApiKey, PolymarketFake

D = Decimal
KEY = "0x" + "4c" * 32
WALLET = Account.from_key(KEY).address
OTHER_KEY = "0x" + "5d" * 32
DEPOSIT_WALLET = "0x00000000000000000000000000000000De905175"
ZERO32 = "0x" + "00" * 32

# Written out again here (not imported from the fake): Polymarket's contracts and the V2 Order struct.
EXCHANGE_V2 = "0xE111180000d2663C0091e4f400237545B87B996B"
NEG_RISK_EXCHANGE_V2 = "0xe2222d279d744050d28e00520010520000310F59"
EXCHANGE_V3 = "0xe3333700cA9d93003F00f0F71f8515005F6c00Aa"
ORDER_TYPE = ("Order(uint256 salt,address maker,address signer,uint256 tokenId,uint256 makerAmount,"
              "uint256 takerAmount,uint8 side,uint8 signatureType,uint256 timestamp,bytes32 metadata,bytes32 builder)")
TYPED_DATA_SIGN = ("TypedDataSign(Order contents,string name,string version,uint256 chainId,address verifyingContract,"
                   "bytes32 salt)")
ORDER_EIP712 = [{"name": n, "type": t} for t, n in (
    ("uint256", "salt"), ("address", "maker"), ("address", "signer"), ("uint256", "tokenId"),
    ("uint256", "makerAmount"), ("uint256", "takerAmount"), ("uint8", "side"), ("uint8", "signatureType"),
    ("uint256", "timestamp"), ("bytes32", "metadata"), ("bytes32", "builder"))]
DOMAIN_EIP712 = [{"name": "name", "type": "string"}, {"name": "version", "type": "string"},
                 {"name": "chainId", "type": "uint256"}, {"name": "verifyingContract", "type": "address"}]

MARKET_BUY_PRECISION = ("invalid amounts, the market buy orders maker amount supports a max accuracy of 2 decimals, "
                        "taker amount a max of 4 decimals")
LIMIT_BUY_PRECISION = ("invalid amounts, the buy orders maker amount supports a max accuracy of 4 decimals, "
                       "taker amount a max of 2 decimals")
SELL_PRECISION = ("invalid amounts, the sell orders maker amount supports a max accuracy of 2 decimals, "
                  "taker amount a max of 4 decimals")
NOT_ENOUGH = "not enough balance / allowance"
USE_DEPOSIT_WALLET = "maker address not allowed, please use the deposit wallet flow"
NOT_API_KEY_SIGNER = "the order signer address has to be the address of the API KEY"


# ---------------------------------------------------------------------------- building and signing orders


def units(amount: str) -> str:
    """A decimal amount as 6-decimal base units (exact; refuses more than 6 decimals)."""
    value = D(amount) * 10 ** 6
    assert value == value.to_integral_value(), amount
    return str(int(value))


def new_order(token: str, maker_amount: str, taker_amount: str, *, maker: str = WALLET, signer: str | None = None,
              signature_type: int = 0, side: str = "BUY") -> dict[str, Any]:
    """An unsigned order as it goes on the wire: amounts are decimals here, base units on the wire. A BUY makes
    pUSD and takes shares; a SELL makes shares and takes pUSD."""
    return {"salt": secrets.randbelow(2 ** 53), "maker": maker, "signer": signer or maker, "tokenId": token,
            "makerAmount": units(maker_amount), "takerAmount": units(taker_amount), "side": side,
            "expiration": "0", "signatureType": signature_type, "timestamp": str(time.time_ns() // 1_000_000),
            "metadata": ZERO32, "builder": ZERO32}


def typed_data(order: dict[str, Any], version: str, exchange: str) -> dict[str, Any]:
    return {"types": {"EIP712Domain": DOMAIN_EIP712, "Order": ORDER_EIP712}, "primaryType": "Order",
            "domain": {"name": "Polymarket CTF Exchange", "version": version, "chainId": 137,
                       "verifyingContract": exchange},
            "message": {"salt": order["salt"], "maker": order["maker"], "signer": order["signer"],
                        "tokenId": int(order["tokenId"]), "makerAmount": int(order["makerAmount"]),
                        "takerAmount": int(order["takerAmount"]), "side": {"BUY": 0, "SELL": 1}[order["side"]],
                        "signatureType": order["signatureType"], "timestamp": int(order["timestamp"]),
                        "metadata": bytes(32), "builder": bytes(32)}}


def eip712_hash(order: dict[str, Any], version: str, exchange: str) -> str:
    signable = encode_typed_data(full_message=typed_data(order, version, exchange))
    return "0x" + keccak(b"\x19" + signable.version + signable.header + signable.body).hex()


def signed(order: dict[str, Any], *, version: str = "2", exchange: str = EXCHANGE_V2, key: str = KEY) -> dict:
    """An EOA / proxy / Safe order: a 65-byte EIP-712 signature of the Order under the exchange's domain."""
    signature = Account.sign_message(encode_typed_data(full_message=typed_data(order, version, exchange)), key)
    return {**order, "signature": "0x" + signature.signature.hex()}


def signed_1271(order: dict[str, Any], *, version: str = "2", exchange: str = EXCHANGE_V2, key: str = KEY,
                contents_hash: bytes | None = None, contents_type: str = ORDER_TYPE) -> dict:
    """A deposit-wallet (POLY_1271) order: the owner signs ERC-7739 TypedDataSign over the Order, and the wire
    signature is ecdsa | appDomainSeparator | contentsHash | contentsType | uint16 len(contentsType)."""
    signable = encode_typed_data(full_message=typed_data(order, version, exchange))
    separator, contents = signable.header, signable.body  # the exchange's domain separator, hashStruct(Order)
    struct = keccak(abi_encode(
        ["bytes32", "bytes32", "bytes32", "bytes32", "uint256", "address", "bytes32"],
        [keccak(text=TYPED_DATA_SIGN + ORDER_TYPE), contents, keccak(text="DepositWallet"), keccak(text="1"), 137,
         order["signer"], bytes(32)]))
    ecdsa = Account.unsafe_sign_hash(keccak(b"\x19\x01" + separator + struct), key).signature
    wire_type = contents_type.encode()
    blob = ecdsa + separator + (contents_hash or contents) + wire_type + len(wire_type).to_bytes(2, "big")
    return {**order, "signature": "0x" + blob.hex()}


# ---------------------------------------------------------------------------- talking to the fake


def l2_headers(api: ApiKey, method: str, path: str, body: str = "") -> dict[str, str]:
    timestamp = str(int(time.time()))
    digest = hmac.new(base64.urlsafe_b64decode(api.secret), f"{timestamp}{method}{path}{body}".encode(),
                      hashlib.sha256).digest()
    return {"POLY_ADDRESS": api.address, "POLY_SIGNATURE": base64.urlsafe_b64encode(digest).decode(),
            "POLY_TIMESTAMP": timestamp, "POLY_API_KEY": api.key, "POLY_PASSPHRASE": api.passphrase}


class Venue:
    def __init__(self, fake: PolymarketFake, gamma: LoopbackServer, clob: LoopbackServer, data: LoopbackServer):
        self.fake, self.gamma, self.clob, self.data = fake, gamma, clob, data
        self.api = fake.register_api_key(WALLET)

    async def post(self, order: dict[str, Any], order_type: str = "FAK", api: ApiKey | None = None) -> httpx.Response:
        api = api or self.api
        body = json.dumps({"order": order, "owner": api.key, "orderType": order_type, "postOnly": False},
                          separators=(",", ":"))
        async with httpx.AsyncClient(base_url=self.clob.url) as http:
            return await http.post("/order", content=body, headers=l2_headers(api, "POST", "/order", body))

    async def clob_get(self, path: str, params: dict[str, str] | None = None, *, auth: bool = False) -> httpx.Response:
        headers = l2_headers(self.api, "GET", path) if auth else {}
        async with httpx.AsyncClient(base_url=self.clob.url) as http:
            return await http.get(path, params=params, headers=headers)

    async def positions(self, user: str) -> list[dict[str, Any]]:
        async with httpx.AsyncClient(base_url=self.data.url) as http:
            answer = await http.get("/positions", params={"user": user, "sizeThreshold": "0"})
        assert answer.status_code == 200
        return answer.json()


@pytest.fixture
async def venue():
    fake = PolymarketFake()
    async with LoopbackServer(fake.gamma_app()) as gamma, LoopbackServer(fake.clob_app()) as clob, \
            LoopbackServer(fake.data_app()) as data:
        yield Venue(fake, gamma, clob, data)


def refused(answer: httpx.Response, message: str) -> bool:
    return answer.status_code == 400 and answer.json() == {"error": message}


# ---------------------------------------------------------------------------- Gamma


async def test_gamma_carries_the_protocol_version_the_ids_by_version_and_the_fee_schedule(venue):
    fake = venue.fake
    v1 = fake.add_market("v1?", fee_rate="0.05")
    v2 = fake.add_market("v2?", version="v2", stale_ids=True, fee_rate="0.07", fee_exponent=1, rebate_rate="0.2")
    v1_stale = fake.add_market("v1 with positionIds?", stale_ids=True)
    fake.add_market("no version?", version=None)
    fake.add_market("future?", version="v9")
    async with httpx.AsyncClient(base_url=venue.gamma.url) as http:
        markets = (await http.get("/markets/keyset", params={"limit": 100})).json()["markets"]
    by_question = {m["question"]: m for m in markets}
    first = by_question["v1?"]
    assert first["version"] == "v1" and json.loads(first["clobTokenIds"]) == [v1.yes_token, v1.no_token]
    assert isinstance(first["clobTokenIds"], str) and "positionIds" not in first
    assert first["feesEnabled"] is True
    assert first["feeSchedule"] == {"exponent": 1, "rate": 0.05, "takerOnly": True, "rebateRate": 0.25}
    second = by_question["v2?"]
    assert second["version"] == "v2" and second["positionIds"] == [v2.yes_token, v2.no_token]  # a real array
    stale = json.loads(second["clobTokenIds"])
    assert len(stale) == 2 and not set(stale) & {v2.yes_token, v2.no_token}
    assert second["feeSchedule"] == {"exponent": 1, "rate": 0.07, "takerOnly": True, "rebateRate": 0.2}
    assert by_question["v1 with positionIds?"]["positionIds"] != [v1_stale.yes_token, v1_stale.no_token]
    assert "version" not in by_question["no version?"] and by_question["future?"]["version"] == "v9"
    free = fake.add_market("free?")
    assert free.raw["feesEnabled"] is False and "feeSchedule" not in free.raw
    # The CLOB books a v2 market under its position ids; stale ids (either way round) have no book.
    book = await venue.clob_get("/book", {"token_id": v2.yes_token})
    assert book.status_code == 200 and book.json()["asset_id"] == v2.yes_token
    for token in (*stale, *by_question["v1 with positionIds?"]["positionIds"]):
        answer = await venue.clob_get("/book", {"token_id": token})
        assert answer.status_code == 404 and answer.json() == {
            "error": "No orderbook exists for the requested token id"}


# ---------------------------------------------------------------------------- market info and fee rate


async def test_clob_markets_answers_the_compact_shape_with_fee_details_only_on_fee_markets(venue):
    fake = venue.fake
    free = fake.add_market("free?", tick="0.01", min_size="5")
    paid = fake.add_market("paid?", tick="0.001", min_size="5", neg_risk=True, fee_rate="0.05")
    v2 = fake.add_market("v2?", version="v2", fee_rate="0.25", fee_exponent=2)
    answer = await venue.clob_get(f"/clob-markets/{free.condition_id}")
    assert answer.status_code == 200 and answer.json() == {
        "c": free.condition_id, "t": [{"t": free.yes_token, "o": "Yes"}, {"t": free.no_token, "o": "No"}],
        "mos": 5, "mts": 0.01, "mbf": 0, "tbf": 0}
    body = (await venue.clob_get(f"/clob-markets/{paid.condition_id}")).json()
    assert body["nr"] is True and body["mts"] == 0.001 and body["fd"] == {"r": 0.05, "e": 1, "to": True}
    assert isinstance(body["mos"], int) and isinstance(body["fd"]["r"], float)
    body = (await venue.clob_get(f"/clob-markets/{v2.condition_id}")).json()
    assert [t["t"] for t in body["t"]] == [v2.yes_token, v2.no_token] and body["fd"] == {"r": 0.25, "e": 2, "to": True}
    missing = await venue.clob_get("/clob-markets/0x" + "00" * 32)
    assert missing.status_code == 404 and missing.json() == {"error": "market not found"}


async def test_fee_rate_is_the_v1_authorization_constant_not_the_rate(venue):
    fake = venue.fake
    crypto = fake.add_market("crypto?", fee_rate="0.07")
    sports = fake.add_market("sports?", fee_rate="0.03")
    free = fake.add_market("geopolitics?")
    for market in (crypto, sports):
        assert (await venue.clob_get("/fee-rate", {"token_id": market.no_token})).json() == {"base_fee": 1000}
    assert (await venue.clob_get("/fee-rate", {"token_id": free.yes_token})).json() == {"base_fee": 0}
    for bad in ("not-a-token", "123"):
        assert refused(await venue.clob_get("/fee-rate", {"token_id": bad}), "Invalid token id")


# ---------------------------------------------------------------------------- amount precision and minimums


async def test_a_market_buy_needs_a_2_decimal_pusd_amount_and_a_4_decimal_share_amount(venue):
    market = venue.fake.add_market("m?", asks=[("0.44", "1000")])
    # 118.18 shares @ 0.44 = 51.9992 pUSD: four decimals on the pUSD side.
    answer = await venue.post(signed(new_order(market.yes_token, "51.9992", "118.18")), "FAK")
    assert refused(answer, MARKET_BUY_PRECISION) and venue.fake.rejections == [MARKET_BUY_PRECISION]
    five = await venue.post(signed(new_order(market.yes_token, "10", "22.72727")), "FOK")  # five-decimal shares
    assert refused(five, MARKET_BUY_PRECISION)
    # 118.25 @ 0.44 = 52.03 exactly: accepted, filled whole.
    good = await venue.post(signed(new_order(market.yes_token, "52.03", "118.25")), "FAK")
    assert good.status_code == 200, good.text
    body = good.json()
    assert body["success"] is True and body["status"] == "matched"
    assert body["makingAmount"] == "52.03" and body["takingAmount"] == "118.25"  # decimal strings
    four = await venue.post(signed(new_order(market.yes_token, "4.40", "10.0000")), "FOK")  # zeros do not count
    assert four.status_code == 200 and four.json()["takingAmount"] == "10"
    assert len(venue.fake.orders) == 2


async def test_a_limit_buy_needs_a_share_amount_of_2_decimals_and_pusd_of_the_ticks_decimals_plus_2(venue):
    fake = venue.fake
    cent = fake.add_market("cent?", bids=[("0.40", "100")], asks=[("0.50", "100")])
    milli = fake.add_market("milli?", tick="0.001", bids=[("0.400", "100")], asks=[("0.500", "100")])
    assert refused(await venue.post(signed(new_order(cent.yes_token, "4.002", "10.005")), "GTC"),
                   LIMIT_BUY_PRECISION)  # 10.005 shares
    assert refused(await venue.post(signed(new_order(cent.yes_token, "4.00005", "10")), "GTD"),
                   LIMIT_BUY_PRECISION)  # five-decimal pUSD on a 0.01 tick
    resting = await venue.post(signed(new_order(cent.yes_token, "4.1041", "10.01")), "GTC")  # 10.01 @ 0.41
    assert resting.status_code == 200 and resting.json()["status"] == "live"
    fine = await venue.post(signed(new_order(milli.yes_token, "4.13413", "10.01")), "GTC")  # 10.01 @ 0.413
    assert fine.status_code == 200, fine.text
    assert refused(await venue.post(signed(new_order(milli.yes_token, "4.134131", "10.01")), "GTC"),
                   LIMIT_BUY_PRECISION.replace("4 decimals", "5 decimals"))


async def test_a_marketable_buy_must_be_worth_a_dollar_and_only_limit_orders_have_the_share_minimum(venue):
    fake = venue.fake
    market = fake.add_market("m?", bids=[("0.10", "100")], asks=[("0.40", "100")])
    small = await venue.post(signed(new_order(market.yes_token, "0.70", "1.75")), "FAK")  # 1.75 @ 0.40 = $0.70
    assert refused(small, "invalid amount for a marketable BUY order ($0.7), min size: $1")
    dollar = await venue.post(signed(new_order(market.yes_token, "1.00", "2.5")), "FAK")  # $1, 2.5 shares
    assert dollar.status_code == 200 and dollar.json()["takingAmount"] == "2.5"  # FAK: no 5-share minimum
    fok = await venue.post(signed(new_order(market.yes_token, "1.20", "3")), "FOK")
    assert fok.status_code == 200 and fok.json()["status"] == "matched"
    gtc = await venue.post(signed(new_order(market.yes_token, "1.00", "2.5")), "GTC")
    assert gtc.status_code == 400
    assert gtc.json()["error"].startswith("order 0x") and gtc.json()["error"].endswith(
        " is invalid. Size (2.5) lower than the minimum: 5")
    passive = await venue.post(signed(new_order(market.yes_token, "0.80", "5")), "GTC")  # 5 @ 0.16, under 0.40
    assert passive.status_code == 200 and passive.json()["status"] == "live"  # not marketable: no $1 rule
    passive_no = await venue.post(signed(new_order(market.no_token, "0.90", "5")), "GTC")  # NO 5 @ 0.18
    assert passive_no.status_code == 200  # under the NO asks (1 - 0.10 = 0.90): $0.90 may rest
    crossing_no = await venue.post(signed(new_order(market.no_token, "4.50", "5")), "GTC")  # NO 5 @ 0.90
    assert crossing_no.status_code == 200 and crossing_no.json()["status"] == "matched"
    under = fake.add_market("cheap?", asks=[("0.14", "100")])
    assert refused(await venue.post(signed(new_order(under.yes_token, "0.70", "5")), "GTC"),
                   "invalid amount for a marketable BUY order ($0.7), min size: $1")


async def test_tick_and_kill_rules_are_kept(venue):
    market = venue.fake.add_market("m?", asks=[("0.42", "100")])
    off_tick = await venue.post(signed(new_order(market.yes_token, "4.25", "10")), "FAK")  # 0.425
    assert off_tick.status_code == 400 and "breaks minimum tick size rule: 0.01" in off_tick.json()["error"]
    fok = await venue.post(signed(new_order(market.yes_token, "84", "200")), "FOK")
    assert refused(fok, "order couldn't be fully filled. FOK orders are fully filled or killed.")
    fak = await venue.post(signed(new_order(market.yes_token, "4", "10")), "FAK")  # 0.40: nothing at or under
    assert refused(fak, "no orders found to match with FAK order. FAK orders are partially filled or killed if no "
                        "match is found.")


async def test_a_closed_market_takes_no_orders(venue):
    market = venue.fake.add_market("done?", asks=[("0.42", "100")])
    venue.fake.resolve(market, "No")
    answer = await venue.post(signed(new_order(market.yes_token, "4.2", "10")), "FAK")
    assert refused(answer, "the market is not accepting orders") and venue.fake.orders == {}


# ---------------------------------------------------------------------------- taker fees


async def test_the_taker_fee_is_charged_in_pusd_on_top_and_the_shares_come_whole(venue):
    fake = venue.fake
    market = fake.add_market("crypto?", asks=[("0.13", "100")], fee_rate="0.05")
    start = fake.balance
    answer = await venue.post(signed(new_order(market.yes_token, "3.25", "25")), "FAK")
    assert answer.status_code == 200, answer.text
    # 25 x 0.05 x 0.13 x 0.87 = 0.141375 -> 0.14138 (0.00001 pUSD, half-up)
    assert answer.json()["makingAmount"] == "3.25" and answer.json()["takingAmount"] == "25"  # fee not in it
    order = fake.orders[answer.json()["orderID"]]
    assert order.fee == D("0.14138") and order.paid == D("3.25") and order.size_matched == 25
    assert fake.balance == start - D("3.25") - D("0.14138")
    [row] = await venue.positions(WALLET)
    assert row["size"] == 25.0  # nothing deducted in shares


async def test_the_fee_is_per_price_level_with_the_markets_exponent(venue):
    fake = venue.fake
    levels = fake.add_market("levels?", asks=[("0.42", "100"), ("0.44", "100")], fee_rate="0.07")
    answer = await venue.post(signed(new_order(levels.yes_token, "66", "150")), "FAK")  # 150 @ 0.44
    # 100 x 0.07 x 0.42 x 0.58 = 1.7052; 50 x 0.07 x 0.44 x 0.56 = 0.8624
    assert answer.json()["makingAmount"] == "64" and fake.orders[answer.json()["orderID"]].fee == D("2.5676")
    squared = fake.add_market("15-minute?", asks=[("0.30", "100")], fee_rate="0.25", fee_exponent=2)
    answer = await venue.post(signed(new_order(squared.yes_token, "2.10", "7")), "FOK")
    # 7 x 0.25 x (0.3 x 0.7)^2 = 7 x 0.25 x 0.0441 = 0.077175 -> 0.07718
    assert fake.orders[answer.json()["orderID"]].fee == D("0.07718")
    free = fake.add_market("free?", asks=[("0.50", "100")])
    answer = await venue.post(signed(new_order(free.yes_token, "5", "10")), "FAK")
    assert fake.orders[answer.json()["orderID"]].fee == 0
    resting = await venue.post(signed(new_order(levels.no_token, "2", "10")), "GTC")  # passive: a maker pays none
    assert resting.json()["status"] == "live" and fake.orders[resting.json()["orderID"]].fee == 0


async def test_the_balance_check_includes_the_fee(venue):
    fake = venue.fake
    market = fake.add_market("crypto?", asks=[("0.13", "100")], fee_rate="0.05")
    fake.balance = D("3.25")  # the notional, not the fee
    assert refused(await venue.post(signed(new_order(market.yes_token, "3.25", "25")), "FAK"),
                   "not enough balance / allowance")
    fake.balance = D("3.39138")
    answer = await venue.post(signed(new_order(market.yes_token, "3.25", "25")), "FAK")
    assert answer.status_code == 200 and fake.balance == 0


# ---------------------------------------------------------------------------- sells


def sell_order(token: str, shares: str, usd: str, **kw: Any) -> dict[str, Any]:
    """A SELL of `shares` for at least `usd`: the shares are its makerAmount, the pUSD its takerAmount."""
    return new_order(token, shares, usd, side="SELL", **kw)


async def test_a_sell_gives_held_shares_for_the_bids_best_first_and_the_fee_comes_off_the_proceeds(venue):
    fake = venue.fake
    market = fake.add_market("sell?", bids=[("0.60", "40"), ("0.58", "100")], asks=[("0.62", "100")],
                             fee_rate="0.04")
    fake.hold(WALLET, market, "Yes", 100)
    start = fake.balance
    answer = await venue.post(signed(sell_order(market.yes_token, "60", "34.8")), "FAK")  # 60 at >= 0.58
    assert answer.status_code == 200, answer.text
    body = answer.json()
    # 40 @ 0.60 + 20 @ 0.58 = 24 + 11.6 = 35.6 received; fees 0.04 x 40 x 0.24 = 0.384, 0.04 x 20 x 0.2436 = 0.19488
    assert (body["status"], body["makingAmount"], body["takingAmount"]) == ("matched", "60", "35.6")
    order = fake.orders[body["orderID"]]
    assert (order.side, order.size_matched, order.paid, order.fee) == ("SELL", 60, D("35.6"), D("0.57888"))
    assert fake.balance == start + D("35.6") - D("0.57888")
    assert fake.book_levels(market, "Yes")[0] == [(D("0.58"), D(80))]  # the 0.60 level is gone, 20 off the next
    shown = (await venue.clob_get(f"/data/order/{body['orderID']}", auth=True)).json()
    assert (shown["side"], shown["size_matched"], shown["price"], shown["status"]) == ("SELL", "60", "0.58",
                                                                                       "MATCHED")
    [row] = await venue.positions(WALLET)
    assert row["size"] == 40.0 and row["asset"] == market.yes_token


async def test_selling_no_hits_the_mirrored_yes_asks(venue):
    fake = venue.fake
    market = fake.add_market("no?", bids=[("0.30", "100")], asks=[("0.42", "30"), ("0.45", "100")])
    fake.hold(WALLET, market, "No", 50)
    # NO bids are the YES asks mirrored: 0.58 x 30, 0.55 x 100; selling 50 NO at >= 0.55
    answer = await venue.post(signed(sell_order(market.no_token, "50", "27.5")), "FAK")
    assert answer.json()["takingAmount"] == "28.4"  # 30 x 0.58 + 20 x 0.55 = 17.4 + 11
    assert fake.book_levels(market, "Yes")[1] == [(D("0.45"), D(80))]
    conditional = (await venue.clob_get("/balance-allowance", {"asset_type": "CONDITIONAL",
                                                               "token_id": market.no_token}, auth=True)).json()
    assert conditional["balance"] == "0"


async def test_a_sell_of_more_than_the_wallet_holds_is_refused(venue):
    fake = venue.fake
    market = fake.add_market("held?", bids=[("0.50", "1000")], asks=[("0.52", "1000")])
    assert refused(await venue.post(signed(sell_order(market.yes_token, "10", "5")), "FAK"), NOT_ENOUGH)
    bought = await venue.post(signed(new_order(market.yes_token, "5.2", "10")), "FAK")  # 10 bought @ 0.52
    assert bought.status_code == 200
    fake.hold(WALLET, market, "Yes", 5)  # and 5 from elsewhere: 15 in all
    assert refused(await venue.post(signed(sell_order(market.yes_token, "15.01", "7.505")), "FAK"), NOT_ENOUGH)
    resting = await venue.post(signed(sell_order(market.yes_token, "6", "5.4")), "GTC")  # 6 at 0.90: rests
    assert resting.json()["status"] == "live"
    # the live SELL has 6 of the 15 committed: 10 more is too many, 9 is fine
    assert refused(await venue.post(signed(sell_order(market.yes_token, "10", "5")), "FAK"), NOT_ENOUGH)
    assert (await venue.post(signed(sell_order(market.yes_token, "9", "4.5")), "FAK")).json()["status"] == "matched"
    assert refused(await venue.post(signed(sell_order(market.yes_token, "6", "3")), "FAK"), NOT_ENOUGH)
    assert venue.fake.orders and all(o.side in ("BUY", "SELL") for o in venue.fake.orders.values())


async def test_a_sell_keeps_its_shares_to_2_decimals_and_its_pusd_to_4(venue):
    fake = venue.fake
    market = fake.add_market("precise?", bids=[("0.44", "1000")])
    milli = fake.add_market("milli?", tick="0.001", bids=[("0.443", "1000")])
    for m in (market, milli):
        fake.hold(WALLET, m, "Yes", 500)
    assert refused(await venue.post(signed(sell_order(market.yes_token, "10.005", "4.4022")), "FAK"), SELL_PRECISION)
    assert refused(await venue.post(signed(sell_order(milli.yes_token, "10.01", "4.43443")), "FOK"), SELL_PRECISION)
    # 118.18 @ 0.44 = 51.9992: four pUSD decimals, which a FAK BUY may not carry, a SELL may
    fine = await venue.post(signed(sell_order(market.yes_token, "118.18", "51.9992")), "FAK")
    assert fine.status_code == 200 and fine.json()["makingAmount"] == "118.18"
    limit = await venue.post(signed(sell_order(milli.yes_token, "10.01", "4.43443")), "GTC")  # tick 3 + 2
    assert limit.status_code == 200, limit.text
    off_tick = await venue.post(signed(sell_order(market.yes_token, "10", "4.45")), "FAK")  # 0.445
    assert off_tick.status_code == 400 and "breaks minimum tick size rule: 0.01" in off_tick.json()["error"]


async def test_a_marketable_sell_must_be_worth_a_dollar_and_kill_rules_hold_for_sells(venue):
    fake = venue.fake
    market = fake.add_market("small?", bids=[("0.40", "10")], asks=[("0.60", "10")])
    fake.hold(WALLET, market, "Yes", 100)
    assert refused(await venue.post(signed(sell_order(market.yes_token, "2", "0.8")), "FAK"),
                   "invalid amount for a marketable SELL order ($0.8), min size: $1")
    passive = await venue.post(signed(sell_order(market.yes_token, "5", "2.5")), "GTC")  # 0.50: above the bids
    assert passive.json()["status"] == "live"  # not marketable: no $1 rule, the 5-share minimum met
    assert refused(await venue.post(signed(sell_order(market.yes_token, "20", "8")), "FOK"),
                   "order couldn't be fully filled. FOK orders are fully filled or killed.")  # 10 bid at 0.40
    assert refused(await venue.post(signed(sell_order(market.yes_token, "5", "2.25")), "FAK"),
                   "no orders found to match with FAK order. FAK orders are partially filled or killed if no "
                   "match is found.")  # 0.45: no bid that high
    assert fake.book_levels(market, "Yes")[0] == [(D("0.40"), D(10))]


async def test_the_data_api_shows_what_a_sale_leaves_at_its_average_cost(venue):
    fake = venue.fake
    market = fake.add_market("pnl?", bids=[("0.60", "100")], asks=[("0.42", "100")])
    assert (await venue.post(signed(new_order(market.yes_token, "42", "100")), "FAK")).status_code == 200
    sold = await venue.post(signed(sell_order(market.yes_token, "40", "24")), "FAK")
    assert sold.json()["takingAmount"] == "24"
    [row] = await venue.positions(WALLET)
    # 100 bought for 42 (0.42 each), 40 sold for 24: 60 left costing 25.2; realized 24 - 16.8 = 7.2
    assert (row["size"], row["avgPrice"], row["initialValue"], row["totalBought"]) == (60.0, 0.42, 25.2, 100.0)
    assert row["realizedPnl"] == pytest.approx(7.2)


# ---------------------------------------------------------------------------- Protocol V2 markets


async def test_a_v2_market_takes_orders_signed_for_exchange_v3_domain_3_only(venue):
    fake = venue.fake
    v2 = fake.add_market("v2?", version="v2", neg_risk=True, stale_ids=True, asks=[("0.40", "100")])
    v1 = fake.add_market("v1?", asks=[("0.40", "100")])
    order = new_order(v2.yes_token, "4", "10")
    wrong = await venue.post(signed(order, version="2", exchange=EXCHANGE_V2), "FAK")
    assert refused(wrong, "order_version_mismatch")
    assert refused(await venue.post(signed(order, version="2", exchange=NEG_RISK_EXCHANGE_V2), "FAK"),
                   "order_version_mismatch")
    assert refused(await venue.post(signed(order, version="3", exchange=EXCHANGE_V2), "FAK"), "invalid signature")
    good = await venue.post(signed(order, version="3", exchange=EXCHANGE_V3), "FAK")  # neg-risk ignored in v3
    assert good.status_code == 200 and good.json()["orderID"] == eip712_hash(order, "3", EXCHANGE_V3)
    assert refused(await venue.post(signed(new_order(v1.yes_token, "4", "10"), version="3", exchange=EXCHANGE_V3),
                                    "FAK"), "order_version_mismatch")
    assert (await venue.post(signed(new_order(v1.yes_token, "4", "10")), "FAK")).status_code == 200
    stale = json.loads(v2.raw["clobTokenIds"])[0]
    assert refused(await venue.post(signed(new_order(stale, "4", "10"), version="3", exchange=EXCHANGE_V3), "FAK"),
                   "Invalid token id")
    rows = {row["asset"]: row for row in await venue.positions(WALLET)}
    assert rows[v2.yes_token]["conditionId"] == v2.condition_id and rows[v2.yes_token]["size"] == 10.0
    assert fake.rejections.count("order_version_mismatch") == 3


async def test_a_v1_order_id_is_its_eip712_hash_under_domain_2_of_its_exchange(venue):
    plain = venue.fake.add_market("plain?", asks=[("0.40", "100")])
    negative = venue.fake.add_market("neg?", neg_risk=True, asks=[("0.40", "100")])
    for market, exchange in ((plain, EXCHANGE_V2), (negative, NEG_RISK_EXCHANGE_V2)):
        order = new_order(market.yes_token, "4", "10")
        answer = await venue.post(signed(order, exchange=exchange), "FAK")
        assert answer.status_code == 200 and answer.json()["orderID"] == eip712_hash(order, "2", exchange)
    assert refused(await venue.post(signed(new_order(plain.yes_token, "4", "10"), version="1"), "FAK"),
                   "invalid signature")  # the V1 domain
    other = Account.from_key(OTHER_KEY).address
    assert refused(await venue.post(signed(new_order(plain.yes_token, "4", "10", maker=other), key=OTHER_KEY), "FAK"),
                   NOT_API_KEY_SIGNER)


# ---------------------------------------------------------------------------- deposit wallets (POLY_1271)


def wallet_order(token: str, maker_amount: str = "4", taker_amount: str = "10") -> dict[str, Any]:
    return new_order(token, maker_amount, taker_amount, maker=DEPOSIT_WALLET, signature_type=3)


async def test_a_deposit_wallet_order_signed_the_erc7739_way_is_taken(venue):
    fake = venue.fake
    fake.register_deposit_wallet(WALLET, DEPOSIT_WALLET)
    market = fake.add_market("m?", asks=[("0.40", "100")])
    order = wallet_order(market.yes_token)
    answer = await venue.post(signed_1271(order), "FAK")
    assert answer.status_code == 200, answer.text
    assert answer.json()["orderID"] == eip712_hash(order, "2", EXCHANGE_V2)  # still the Order's EIP-712 hash
    record = fake.orders[answer.json()["orderID"]]
    assert record.maker_address == DEPOSIT_WALLET and record.signature_type == 3
    [row] = await venue.positions(DEPOSIT_WALLET)
    assert row["asset"] == market.yes_token and row["size"] == 10.0
    assert await venue.positions(WALLET) == []
    balance = await venue.clob_get("/balance-allowance", {"asset_type": "CONDITIONAL", "token_id": market.yes_token,
                                                          "signature_type": "3"}, auth=True)
    assert balance.status_code == 200 and balance.json()["balance"] == "10000000"
    v2 = fake.add_market("v2?", version="v2", asks=[("0.40", "100")])
    v2_order = wallet_order(v2.yes_token)
    assert refused(await venue.post(signed_1271(v2_order), "FAK"), "order_version_mismatch")
    good = await venue.post(signed_1271(v2_order, version="3", exchange=EXCHANGE_V3), "FAK")
    assert good.status_code == 200 and good.json()["orderID"] == eip712_hash(v2_order, "3", EXCHANGE_V3)
    [row] = [r for r in await venue.positions(DEPOSIT_WALLET) if r["asset"] == v2.yes_token]
    assert row["size"] == 10.0


async def test_a_deposit_wallet_signature_is_checked_part_by_part(venue):
    fake = venue.fake
    fake.register_deposit_wallet(WALLET, DEPOSIT_WALLET)
    market = fake.add_market("m?", asks=[("0.40", "100")])
    order = wallet_order(market.yes_token)
    corrupt = await venue.post(signed_1271(order, contents_hash=keccak(b"another order")), "FAK")
    assert refused(corrupt, "invalid signature")
    assert refused(await venue.post(signed_1271(order, key=OTHER_KEY), "FAK"), "invalid signature")  # not the owner
    assert refused(await venue.post(signed_1271(order, contents_type=ORDER_TYPE + " "), "FAK"), "invalid signature")
    assert refused(await venue.post(signed_1271(order, exchange=NEG_RISK_EXCHANGE_V2), "FAK"), "invalid signature")
    eoa_style = signed({**order}, version="2")  # a plain 65-byte signature on a type 3 order
    assert refused(await venue.post(eoa_style, "FAK"), "invalid signature")
    truncated = signed_1271(order)
    truncated["signature"] = truncated["signature"][:-4]
    assert refused(await venue.post(truncated, "FAK"), "invalid signature")
    split_maker = new_order(market.yes_token, "4", "10", maker=DEPOSIT_WALLET, signer=WALLET, signature_type=3)
    assert refused(await venue.post(signed_1271(split_maker), "FAK"), "invalid signature")
    assert fake.orders == {}
    assert (await venue.post(signed_1271(order), "FAK")).status_code == 200


async def test_an_account_with_a_deposit_wallet_cannot_trade_the_old_ways(venue):
    fake = venue.fake
    fake.register_deposit_wallet(WALLET, DEPOSIT_WALLET)
    proxy = "0x00000000000000000000000000000000000Ab1E5"
    fake.funders[WALLET.lower()] = {proxy.lower()}
    market = fake.add_market("m?", asks=[("0.40", "100")])
    assert refused(await venue.post(signed(new_order(market.yes_token, "4", "10")), "FAK"), USE_DEPOSIT_WALLET)
    as_proxy = new_order(market.yes_token, "4", "10", maker=proxy, signer=WALLET, signature_type=1)
    assert refused(await venue.post(signed(as_proxy), "FAK"), USE_DEPOSIT_WALLET)
    assert fake.orders == {}


async def test_an_undeployed_deposit_wallet_is_refused_with_the_api_key_message(venue):
    fake = venue.fake
    wallet = fake.register_deposit_wallet(WALLET, DEPOSIT_WALLET, deployed=False)
    market = fake.add_market("m?", asks=[("0.40", "100")])
    order = wallet_order(market.yes_token)
    assert refused(await venue.post(signed_1271(order), "FAK"), NOT_API_KEY_SIGNER)
    stranger = fake.register_api_key(Account.from_key(OTHER_KEY).address)  # a deployed wallet, another key
    wallet.deployed = True
    assert refused(await venue.post(signed_1271(order), "FAK", api=stranger), NOT_API_KEY_SIGNER)
    assert (await venue.post(signed_1271(order), "FAK")).status_code == 200


# ---------------------------------------------------------------------------- balances


async def test_balance_allowance_answers_collateral_and_both_kinds_of_positions(venue):
    fake = venue.fake
    v1 = fake.add_market("v1?", asks=[("0.40", "100")])
    v2 = fake.add_market("v2?", version="v2", bids=[("0.40", "100")])
    assert (await venue.post(signed(new_order(v1.yes_token, "4", "10")), "FAK")).status_code == 200
    assert (await venue.post(signed(new_order(v2.no_token, "6", "10"), version="3", exchange=EXCHANGE_V3),
                             "FAK")).status_code == 200
    collateral = await venue.clob_get("/balance-allowance", {"asset_type": "COLLATERAL", "signature_type": "0"},
                                      auth=True)
    assert collateral.status_code == 200
    assert collateral.json()["balance"] == str(int((D(100_000) - 10) * 10 ** 6))
    assert set(collateral.json()["allowances"]) == {EXCHANGE_V2, NEG_RISK_EXCHANGE_V2, EXCHANGE_V3}
    conditional = (await venue.clob_get("/balance-allowance", {"asset_type": "CONDITIONAL",
                                                               "token_id": v1.yes_token}, auth=True)).json()
    assert conditional["balance"] == "10000000" and isinstance(conditional["allowances"], dict)
    position = (await venue.clob_get("/balance-allowance", {"asset_type": "CONDITIONAL-V2",
                                                            "token_id": v2.no_token}, auth=True)).json()
    assert position == {"balance": "10000000", "allowances": {EXCHANGE_V3: str(2 ** 256 - 1)}}
    for params in ({"asset_type": "CONDITIONAL", "token_id": v2.no_token}, {"asset_type": "CONDITIONAL-V2",
                                                                            "token_id": v1.yes_token},
                   {"asset_type": "NFT"}, {"asset_type": "COLLATERAL", "signature_type": "7"}):
        assert (await venue.clob_get("/balance-allowance", params, auth=True)).status_code == 400, params
    unsigned = await venue.clob_get("/balance-allowance", {"asset_type": "COLLATERAL"})
    assert unsigned.status_code == 401
