"""A fake Polymarket (Gamma + CLOB V2 + Data API) on loopback, speaking the wire formats of December 2026.

Written from Polymarket's public documentation, GitHub issues and the official clients' sources (see
/tmp/research/polymarket.md), not from our client. The crypto is eth-account / eth-abi / eth-utils, written
here independently of py_clob_client_v2. Anything not confirmed by a source is marked "assumed".

Gamma: `GET /markets/keyset` with opaque `after_cursor` / `next_cursor` (absent on the last
page; `cursor=` is ignored and returns page 1, like the real one), JSON arrays encoded in
strings, and a per-page count of successful fetches. Each market carries `version`: "v1" (outcome
ids in `clobTokenIds`, a JSON array inside a string) or "v2" (Protocol V2: ids in `positionIds`, a real
array of decimal strings; a v2 market may also carry stale `clobTokenIds` the CLOB has no book for), and
`feesEnabled` (+ `feeSchedule` {exponent, rate, takerOnly, rebateRate} when enabled).

CLOB: `GET /book` (strings; bids lowest-first, asks highest-first), `GET /clob-markets/{condition_id}`
(compact market info with the fee details `fd`), `GET /fee-rate` (the v1 `base_fee` authorization
constant, not the rate), L1 key endpoints that verify the ClobAuth EIP-712 signature, L2 HMAC
verification on every private endpoint, `POST /order` that verifies the order's EIP-712 signature for
the market's exchange (v1 markets: ExchangeV2 / NegRiskExchangeV2, domain version "2"; v2 markets:
ExchangeV3, domain version "3"; `order_version_mismatch` when signed for the other one), signature types
0 EOA, 1 proxy, 2 Safe and 3 POLY_1271 (deposit wallet, ERC-7739 nested signature), then checks amount
precision, tick, minimum size (limit orders), the $1 minimum of a marketable order, balance (fee included)
and duplicates (same hash), matches as a taker honouring FOK / FAK / GTC, charges the taker fee in pUSD
on top of a BUY's notional (py-clob-client-v2 #107: the shares come whole) and off a SELL's proceeds (the fees
page: "USDC on sell orders"), and answers in the real shape. A SELL gives shares (makerAmount, 2 decimals)
for pUSD (takerAmount, 4 on a market order; the tick's decimals + 2 on a limit order, as py-clob-client-v2
rounds it: assumed), its price being takerAmount / makerAmount; it may sell only what the maker's wallet holds
less what its live SELLs have committed ("not enough balance / allowance"), and it hits that outcome's bids best
first down to its limit. Its answer's makingAmount is the shares sold, takingAmount the pUSD received before the
fee (assumed, as a BUY's makingAmount is before the fee). `GET /data/order/{hash}` and `DELETE /order` for
look-ups and cancels; `GET /data/orders` lists the caller's LIVE orders (filters `market`, `asset_id`,
`id`; base64 offset cursors, "MA==" first, "LTE=" after the last page; `fake.open_orders_page` orders a
page). `GET /balance-allowance` for COLLATERAL, CONDITIONAL and CONDITIONAL-V2.

Data API: `GET /positions?user=` (no auth) lists what each wallet holds: the shares its orders
bought on this CLOB (by maker address: the proxy / Safe / deposit wallet, or the EOA) less what its orders sold,
plus what a test says it holds from elsewhere (`fake.hold`); a sale keeps the average cost of what is left
(assumed) and books its gain in realizedPnl. Sizes are JSON floats, like the real one; rows under
`sizeThreshold` (default 1.0) are hidden; a resolved market's rows are `redeemable`; a v2 market's rows
have `asset` = the position id.

Use `fake.gamma_app()`, `fake.clob_app()` and `fake.data_app()` with LoopbackServer (a server and a
fault plan each).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, ClassVar

from aiohttp import web
from eth_abi import encode as abi_encode
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils import keccak, to_checksum_address

CHAIN_ID = 137
EXCHANGE_V2 = "0xE111180000d2663C0091e4f400237545B87B996B"
NEG_RISK_EXCHANGE_V2 = "0xe2222d279d744050d28e00520010520000310F59"
# Protocol V2 markets trade on ExchangeV3 (no separate neg-risk exchange): Polygon and Amoy.
EXCHANGE_V3_BY_CHAIN = {137: "0xe3333700cA9d93003F00f0F71f8515005F6c00Aa",
                        80002: "0x9fE6e61422AdB6F610d8597F9684b16912D50C3D"}
EXCHANGE_V3 = EXCHANGE_V3_BY_CHAIN[CHAIN_ID]
EXCHANGE_NAME = "Polymarket CTF Exchange"
UNITS = Decimal(10) ** 6
ONE = Decimal(1)
MAX_UINT256 = str(2 ** 256 - 1)
CLOB_AUTH_MESSAGE = "This message attests that I control the given wallet"

FOK_KILLED = "order couldn't be fully filled. FOK orders are fully filled or killed."
FAK_KILLED = ("no orders found to match with FAK order. FAK orders are partially filled or killed if no match "
              "is found.")
TRADING_DISABLED = "Trading is currently disabled. Check polymarket.com for updates"
ORDER_VERSION_MISMATCH = "order_version_mismatch"
INVALID_SIGNATURE = "invalid signature"
NOT_API_KEY_SIGNER = "the order signer address has to be the address of the API KEY"
USE_DEPOSIT_WALLET = "maker address not allowed, please use the deposit wallet flow"
NOT_ENOUGH_BALANCE = "not enough balance / allowance"
MARKET_BUY_PRECISION = ("invalid amounts, the market buy orders maker amount supports a max accuracy of {maker} "
                        "decimals, taker amount a max of {taker} decimals")
LIMIT_BUY_PRECISION = ("invalid amounts, the buy orders maker amount supports a max accuracy of {maker} decimals, "
                       "taker amount a max of {taker} decimals")
# Quoted by public clients for a FOK SELL; assumed the same words for a limit SELL (with its own decimals).
SELL_PRECISION = ("invalid amounts, the sell orders maker amount supports a max accuracy of {maker} decimals, "
                  "taker amount a max of {taker} decimals")
MARKETABLE_MINIMUM = "invalid amount for a marketable {side} order (${amount}), min size: $1"  # SELL's: assumed alike
MARKET_NOT_FOUND = "market not found"  # assumed text of /clob-markets' 404
ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
POSITIONS_MAX_LIMIT = 500
POSITIONS_MAX_OFFSET = 10_000
FEE_QUANTUM = Decimal("0.00001")  # fees are rounded to 0.00001 pUSD
FEE_ROUNDING = ROUND_HALF_UP  # assumed: a copy of the docs says "rounded", another "floored"
BASE_FEE_WHEN_ENABLED = 1000  # GET /fee-rate's v1 authorization constant on every fee-bearing market

ORDER_FIELDS = [
    {"name": "salt", "type": "uint256"}, {"name": "maker", "type": "address"},
    {"name": "signer", "type": "address"}, {"name": "tokenId", "type": "uint256"},
    {"name": "makerAmount", "type": "uint256"}, {"name": "takerAmount", "type": "uint256"},
    {"name": "side", "type": "uint8"}, {"name": "signatureType", "type": "uint8"},
    {"name": "timestamp", "type": "uint256"}, {"name": "metadata", "type": "bytes32"},
    {"name": "builder", "type": "bytes32"},
]
DOMAIN_FIELDS = [{"name": "name", "type": "string"}, {"name": "version", "type": "string"},
                 {"name": "chainId", "type": "uint256"}, {"name": "verifyingContract", "type": "address"}]
ORDER_TYPE_STRING = ("Order(" + ",".join(f"{f['type']} {f['name']}" for f in ORDER_FIELDS) + ")")
DOMAIN_TYPE_STRING = "EIP712Domain(" + ",".join(f"{f['type']} {f['name']}" for f in DOMAIN_FIELDS) + ")"
# ERC-7739 (Solady) nested typed-data signature of a deposit wallet (signature type 3, POLY_1271).
TYPED_DATA_SIGN_TYPE_STRING = ("TypedDataSign(Order contents,string name,string version,uint256 chainId,"
                               "address verifyingContract,bytes32 salt)" + ORDER_TYPE_STRING)
DEPOSIT_WALLET_NAME = "DepositWallet"
DEPOSIT_WALLET_VERSION = "1"
ORDER_TYPE_HASH = keccak(text=ORDER_TYPE_STRING)
DOMAIN_TYPE_HASH = keccak(text=DOMAIN_TYPE_STRING)
TYPED_DATA_SIGN_TYPE_HASH = keccak(text=TYPED_DATA_SIGN_TYPE_STRING)
SIGNATURE_TYPES = (0, 1, 2, 3)  # EOA, POLY_PROXY, POLY_GNOSIS_SAFE, POLY_1271 (deposit wallet)


def text(value: Decimal) -> str:
    """Decimal -> the CLOB's plain string ("0.42", "113", never "1E+2")."""
    normal = value.normalize()
    return format(normal, "f")


def number(value: Decimal) -> int | float:
    """Decimal -> a JSON number (an int when whole)."""
    return int(value) if value == value.to_integral_value() else float(value)


def decimals(value: Decimal) -> int:
    """How many decimal places `value` needs (0.01 -> 2, 5 -> 0)."""
    return max(0, -value.normalize().as_tuple().exponent)


def taker_fee(shares: Decimal, price: Decimal, rate: Decimal, exponent: Decimal) -> Decimal:
    """The taker fee of one fill: C x r x (p(1-p))^e, rounded to 0.00001 pUSD."""
    if rate == 0 or shares == 0:
        return Decimal(0)
    raw = shares * rate * (price * (ONE - price)) ** exponent
    return raw.quantize(FEE_QUANTUM, rounding=FEE_ROUNDING)


def exchange_for(version: str, *, neg_risk: bool = False, chain_id: int = CHAIN_ID) -> str:
    """The verifying contract of an order signed with domain `version` ("2" or "3")."""
    if version == "3":
        return EXCHANGE_V3_BY_CHAIN.get(chain_id, EXCHANGE_V3)
    return NEG_RISK_EXCHANGE_V2 if neg_risk else EXCHANGE_V2


def domain_separator(version: str, contract: str, chain_id: int = CHAIN_ID) -> bytes:
    """EIP-712 domain separator of an exchange ("Polymarket CTF Exchange", version, chainId, contract)."""
    return keccak(abi_encode(["bytes32", "bytes32", "bytes32", "uint256", "address"],
                             [DOMAIN_TYPE_HASH, keccak(text=EXCHANGE_NAME), keccak(text=version), chain_id,
                              to_checksum_address(contract)]))


def _bytes32(value: str) -> bytes:
    raw = bytes.fromhex(str(value).removeprefix("0x").zfill(64))
    if len(raw) != 32:
        raise ValueError("not a bytes32")
    return raw


def order_message(order: dict[str, Any]) -> dict[str, Any]:
    """The 11 signed fields of a posted order, typed (expiration is on the wire but not signed)."""
    side = {"BUY": 0, "SELL": 1}[order["side"]]
    return {"salt": int(order["salt"]), "maker": to_checksum_address(order["maker"]),
            "signer": to_checksum_address(order["signer"]), "tokenId": int(order["tokenId"]),
            "makerAmount": int(order["makerAmount"]), "takerAmount": int(order["takerAmount"]), "side": side,
            "signatureType": int(order["signatureType"]), "timestamp": int(order["timestamp"]),
            "metadata": _bytes32(order["metadata"]), "builder": _bytes32(order["builder"])}


def order_struct_hash(order: dict[str, Any]) -> bytes:
    """EIP-712 hashStruct(Order): also the ERC-7739 `contentsHash`."""
    m = order_message(order)
    return keccak(abi_encode(["bytes32", *(f["type"] for f in ORDER_FIELDS)],
                             [ORDER_TYPE_HASH, *(m[f["name"]] for f in ORDER_FIELDS)]))


def order_typed_data(order: dict[str, Any], *, neg_risk: bool, chain_id: int = CHAIN_ID,
                     version: str = "2") -> dict[str, Any]:
    """The EIP-712 typed data of a posted order as the exchange hashes it (version "3": ExchangeV3)."""
    return {
        "types": {"EIP712Domain": DOMAIN_FIELDS, "Order": ORDER_FIELDS},
        "primaryType": "Order",
        "domain": {"name": EXCHANGE_NAME, "version": version, "chainId": chain_id,
                   "verifyingContract": exchange_for(version, neg_risk=neg_risk, chain_id=chain_id)},
        "message": order_message(order),
    }


def _digest(separator: bytes, struct_hash: bytes) -> bytes:
    return keccak(b"\x19\x01" + separator + struct_hash)


def order_hash(order: dict[str, Any], *, neg_risk: bool, chain_id: int = CHAIN_ID, version: str = "2") -> str:
    """The order id: the EIP-712 hash of the Order under the exchange's domain (any signature type)."""
    separator = domain_separator(version, exchange_for(version, neg_risk=neg_risk, chain_id=chain_id), chain_id)
    return "0x" + _digest(separator, order_struct_hash(order)).hex()


def recover_order_signer(order: dict[str, Any], *, neg_risk: bool, chain_id: int = CHAIN_ID,
                         version: str = "2") -> str:
    """The address that signed an EOA / proxy / Safe order (a plain 65-byte EIP-712 signature)."""
    digest = bytes.fromhex(order_hash(order, neg_risk=neg_risk, chain_id=chain_id, version=version)[2:])
    signature = bytes.fromhex(str(order["signature"]).removeprefix("0x"))
    if len(signature) != 65:
        raise ValueError("not a 65-byte signature")
    return Account._recover_hash(digest, signature=signature)


def deposit_wallet_digest(separator: bytes, contents_hash: bytes, wallet: str, chain_id: int = CHAIN_ID) -> bytes:
    """What a deposit wallet's owner signs (ERC-7739 TypedDataSign, wallet domain "DepositWallet" / "1")."""
    struct = keccak(abi_encode(
        ["bytes32", "bytes32", "bytes32", "bytes32", "uint256", "address", "bytes32"],
        [TYPED_DATA_SIGN_TYPE_HASH, contents_hash, keccak(text=DEPOSIT_WALLET_NAME),
         keccak(text=DEPOSIT_WALLET_VERSION), chain_id, to_checksum_address(wallet), b"\x00" * 32]))
    return _digest(separator, struct)


def split_1271_signature(signature: str) -> tuple[bytes, bytes, bytes, bytes]:
    """ecdsa(65) | appDomainSeparator(32) | contentsHash(32) | contentsType | uint16 BE len(contentsType)."""
    raw = bytes.fromhex(str(signature).removeprefix("0x"))
    if len(raw) < 65 + 32 + 32 + 2:
        raise ValueError("too short for an ERC-7739 signature")
    length = int.from_bytes(raw[-2:], "big")
    if len(raw) != 65 + 32 + 32 + length + 2:
        raise ValueError("contentsType length does not match")
    return raw[:65], raw[65:97], raw[97:129], raw[129:129 + length]


def clob_auth_signer(address: str, timestamp: str, nonce: int, signature: str, chain_id: int = CHAIN_ID) -> str:
    typed = {
        "types": {"EIP712Domain": DOMAIN_FIELDS[:3],
                  "ClobAuth": [{"name": "address", "type": "address"}, {"name": "timestamp", "type": "string"},
                               {"name": "nonce", "type": "uint256"}, {"name": "message", "type": "string"}]},
        "primaryType": "ClobAuth",
        "domain": {"name": "ClobAuthDomain", "version": "1", "chainId": chain_id},
        "message": {"address": address, "timestamp": timestamp, "nonce": nonce, "message": CLOB_AUTH_MESSAGE},
    }
    return Account.recover_message(encode_typed_data(full_message=typed), signature=signature)


def l2_signature(secret: str, timestamp: str, method: str, path: str, body: str) -> str:
    """The documented L2 HMAC: urlsafe-b64(HMAC-SHA256(urlsafe-b64-decoded secret, ts+method+path+body))."""
    digest = hmac.new(base64.urlsafe_b64decode(secret), f"{timestamp}{method}{path}{body}".encode(),
                      hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode()


@dataclass
class ApiKey:
    key: str
    secret: str
    passphrase: str
    address: str  # checksummed signer address
    nonce: int = 0


@dataclass
class DepositWallet:
    owner: str  # checksummed EOA that signs for it (and holds the API key)
    wallet: str  # checksummed deposit wallet address: the orders' maker and signer
    deployed: bool = True


@dataclass
class FakeMarket:
    condition_id: str
    yes_token: str  # the id the CLOB books under: clobTokenIds[0] (v1) or positionIds[0] (v2)
    no_token: str
    tick: Decimal
    min_size: Decimal
    neg_risk: bool
    raw: dict[str, Any]
    bids: dict[Decimal, Decimal] = field(default_factory=dict)  # YES terms
    asks: dict[Decimal, Decimal] = field(default_factory=dict)
    version: str | None = "v1"  # Gamma `version`: "v2" is Protocol V2 (ExchangeV3, domain "3")
    fee_rate: Decimal = Decimal(0)  # taker fee rate r (fd.r)
    fee_exponent: Decimal = Decimal(1)  # fd.e
    stale_ids: tuple[str, ...] = ()  # ids Gamma shows in the other field, with no book on the CLOB

    @property
    def protocol_v2(self) -> bool:
        return self.version == "v2"

    @property
    def domain_version(self) -> str:
        return "3" if self.protocol_v2 else "2"

    @property
    def fees_enabled(self) -> bool:
        return self.fee_rate > 0

    def fee(self, shares: Decimal, price: Decimal) -> Decimal:
        """The taker fee of buying `shares` at `price` in one fill."""
        return taker_fee(shares, price, self.fee_rate, self.fee_exponent)


@dataclass
class FakeOrder:
    id: str
    status: str  # LIVE | MATCHED | CANCELED
    owner: str
    maker_address: str
    market: str
    asset_id: str
    outcome: str
    side: str
    original_size: Decimal
    size_matched: Decimal
    price: Decimal
    order_type: str
    created_at: int
    paid: Decimal = Decimal(0)  # pUSD notional of the fills, fee excluded: paid (BUY) or received (SELL)
    trades: list[str] = field(default_factory=list)
    body: dict[str, Any] = field(default_factory=dict)
    fee: Decimal = Decimal(0)  # taker fee in pUSD: on top of a BUY's `paid`, off a SELL's
    signature_type: int = 0

    def wire(self) -> dict[str, Any]:
        return {"id": self.id, "status": self.status, "owner": self.owner, "maker_address": self.maker_address,
                "market": self.market, "asset_id": self.asset_id, "side": self.side,
                "original_size": text(self.original_size), "size_matched": text(self.size_matched),
                "price": text(self.price), "outcome": self.outcome, "expiration": "0",
                "order_type": self.order_type, "associate_trades": list(self.trades), "created_at": self.created_at}


@dataclass(frozen=True)
class Universe:
    binary: int
    non_binary: int
    malformed: int
    closed: int


class PolymarketFake:
    # Every fake of the running test: the suite's secret guard (tests/conftest.py) learns the API credentials each
    # handed out, which the desk derives at run time and no test module names.
    instances: ClassVar[list[PolymarketFake]] = []

    def __init__(self, *, chain_id: int = CHAIN_ID, now: datetime | None = None) -> None:
        PolymarketFake.instances.append(self)
        self.chain_id = chain_id
        self.now = now or datetime(2026, 11, 20, 15, 0, tzinfo=UTC)
        self.gamma_markets: list[dict[str, Any]] = []  # keyset order
        self.markets: dict[str, FakeMarket] = {}  # condition id ->
        self.tokens: dict[str, tuple[FakeMarket, str]] = {}  # booked token / position id -> (market, "Yes"|"No")
        self.api_keys: dict[str, ApiKey] = {}  # the keys that authenticate now
        self.issued: list[ApiKey] = []  # every key ever registered here: what the secret guard looks for
        self.funders: dict[str, set[str]] = {}  # signer (lower) -> proxy / Safe addresses it may trade for
        self.deposit_wallets: dict[str, DepositWallet] = {}  # wallet address (lower) ->
        self.orders: dict[str, FakeOrder] = {}  # order hash ->
        self.page_fetches: Counter[int] = Counter()  # page index -> answers actually delivered
        self.on_gamma_page: Callable[[int], None] | None = None  # called after a page is served
        self.balance = Decimal(100_000)  # pUSD
        self.fees_paid = Decimal(0)  # every taker fee this CLOB charged
        self.trading_disabled = False
        self.delay_next = 0  # answer the next N orders "delayed" (matching still happens)
        self.unknown_order_as_null = False  # GET /data/order of an unknown hash: 200 null instead of 404
        self.rejections: list[str] = []  # every 4xx error this fake sent on POST /order
        # Set by a test: what POST /order answers (HTTP 200) once the request's L2 auth passes, given the API key
        # that signed it; nothing is matched or recorded. For answers the desk was not built for (assumed: no
        # such answer has been seen), one quoting the caller's own credentials back among them.
        self.order_answer: Callable[[ApiKey], Any] | None = None
        self.retired_routes: set[tuple[str, str]] = set()  # (METHOD, path) the CLOB answers 410 (drift tests)
        self.held: dict[tuple[str, str], Decimal] = {}  # (wallet, lower case; token id) -> shares from elsewhere
        # Market (FAK/FOK) BUY share-side cap: 4 per the widely reported message; a few 2026 reports say 5.
        self.market_buy_taker_decimals = 4
        # "array" (GET /positions today) or "envelope": {"data": [...], "pagination": {...}}, the shape of the
        # newer wallet positions route, i.e. a body an old client does not expect.
        self.positions_shape = "array"
        self.open_orders_page = 100  # GET /data/orders page size; a test lowers it to force paging
        # "paged" (the real {"data", "next_cursor", "limit", "count"}) or "array": a bare list, a body the
        # client must not guess at.
        self.open_orders_shape = "paged"
        self.open_orders_cursor: str | None = None  # when set, every page points here (a broken server)
        self.price_history: dict[str, list[tuple[int, Decimal]]] = {}  # token id -> (Unix seconds, price), any order
        self._cursor_key = secrets.token_hex(4)
        self._listed_cache: dict[tuple[str | None, str | None], list[dict[str, Any]]] = {}
        self._count = 0

    # ------------------------------------------------------------------ set-up

    def _ids(self, seed: str) -> tuple[str, str, str]:
        digest = hashlib.sha256(seed.encode()).digest()
        condition = "0x" + hashlib.sha256(b"c" + digest).hexdigest()
        yes = str(int.from_bytes(hashlib.sha256(b"y" + digest).digest(), "big"))
        no = str(int.from_bytes(hashlib.sha256(b"n" + digest).digest(), "big"))
        return condition, yes, no

    def add_market(self, question: str, *, bids: list[tuple[str, str]] = (), asks: list[tuple[str, str]] = (),
                   tick: str = "0.01", min_size: str = "5", neg_risk: bool = False, volume: str = "250000.50",
                   liquidity: str = "40000", days: float = 10, outcomes: tuple[str, ...] = ("Yes", "No"),
                   active: bool = True, closed: bool = False, seed: str | None = None,
                   version: str | None = "v1", fee_rate: str | Decimal = "0", fee_exponent: int | str | Decimal = 1,
                   rebate_rate: str | Decimal = "0.25", stale_ids: bool = False) -> FakeMarket:
        """A listed market. `version`: "v1" (clobTokenIds), "v2" (Protocol V2: positionIds, ExchangeV3), None
        (no `version` key) or any other string (an unknown version); the CLOB books anything but "v2" under
        clobTokenIds (assumed). `stale_ids`: a v2 market also carries `clobTokenIds`, a v1 one `positionIds`,
        with other ids for which the CLOB has no book (404). `fee_rate` / `fee_exponent`: the taker fee r, e."""
        self._count += 1
        number_ = self._count
        condition, yes, no = self._ids(seed or f"{question}#{number_}")
        if version == "v2":  # Protocol V2 position ids: other numbers than the CTF token ids
            _, yes, no = self._ids(f"v2:{seed or question}#{number_}")
        best_bid = max((Decimal(p) for p, _ in bids), default=None)
        best_ask = min((Decimal(p) for p, _ in asks), default=None)
        tokens = [yes, no] if len(outcomes) == 2 else [self._ids(f"{condition}:{i}")[1] for i in range(len(outcomes))]
        stale = [str(int(t) ^ (1 << 255)) for t in tokens] if stale_ids else []
        prices = [text(best_ask or Decimal("0.5")), text(ONE - (best_ask or Decimal("0.5")))]
        rate, exponent = Decimal(str(fee_rate)), Decimal(str(fee_exponent))
        raw: dict[str, Any] = {
            "id": str(600000 + number_), "question": question, "conditionId": condition,
            "slug": f"market-{number_}",
            "endDate": (self.now + timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "description": f"Resolves Yes if: {question}", "volume": volume, "volumeNum": float(volume),
            "liquidity": liquidity, "liquidityNum": float(liquidity), "volume24hr": 1234.5,
            "outcomes": json.dumps(list(outcomes)),
            "outcomePrices": json.dumps(prices if len(outcomes) == 2 else ["0.3"] * len(outcomes)),
        }
        if version is not None:
            raw["version"] = version
        if version == "v2":
            raw["positionIds"] = tokens  # a real array of decimal strings
            if stale:
                raw["clobTokenIds"] = json.dumps(stale)
        else:
            raw["clobTokenIds"] = json.dumps(tokens)  # a JSON array inside a string
            if stale:
                raw["positionIds"] = stale
        raw.update({
            "active": active, "closed": closed, "archived": False, "enableOrderBook": True,
            "acceptingOrders": True, "orderPriceMinTickSize": float(tick), "orderMinSize": float(min_size),
            "negRisk": neg_risk, "spread": float(best_ask - best_bid) if best_bid and best_ask else 0.01,
            "lastTradePrice": float(best_bid or Decimal("0.5")),
            "bestBid": float(best_bid) if best_bid else 0, "bestAsk": float(best_ask) if best_ask else 1,
            "events": [{"id": str(30000 + number_), "slug": f"event-{number_}", "title": question}],
            "feesEnabled": rate > 0,
        })
        if rate > 0:  # numbers, as py-sdk's Gamma model reads them (assumed JSON numbers)
            raw["feeSchedule"] = {"exponent": number(exponent), "rate": number(rate), "takerOnly": True,
                                  "rebateRate": number(Decimal(str(rebate_rate)))}
        market = FakeMarket(condition, yes, no, Decimal(tick), Decimal(min_size), neg_risk, raw,
                            bids={Decimal(p): Decimal(s) for p, s in bids},
                            asks={Decimal(p): Decimal(s) for p, s in asks},
                            version=version, fee_rate=rate, fee_exponent=exponent, stale_ids=tuple(stale))
        self.gamma_markets.append(raw)
        self._listed_cache.clear()
        if len(outcomes) == 2:
            self.markets[condition] = market
            self.tokens[yes] = (market, "Yes")
            self.tokens[no] = (market, "No")
        return market

    def resolve(self, market: FakeMarket, winner: str) -> None:
        """Close and resolve a market as Gamma shows it: outcomePrices become the payouts ("Yes", "No", "split")."""
        prices = {"Yes": ["1", "0"], "No": ["0", "1"], "split": ["0.5", "0.5"]}[winner]
        market.raw.update(closed=True, acceptingOrders=False, umaResolutionStatus="resolved",
                          outcomePrices=json.dumps(prices), bestBid=0, bestAsk=1)
        self._listed_cache.clear()

    def add_settled_market(self, question: str, winner: str, end: datetime, *,
                           history: list[tuple[datetime, str]] = (), **kw: Any) -> FakeMarket:
        """A market that ended at `end` and resolved for `winner` ("Yes", "No", "split"), with YES price `history`."""
        market = self.add_market(question, bids=[("0.40", "10")], asks=[("0.42", "10")], **kw)
        market.raw["endDate"] = end.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        self.resolve(market, winner)
        self.price_history[market.yes_token] = [(int(t.timestamp()), Decimal(p)) for t, p in history]
        return market

    def hold(self, wallet: str, market: FakeMarket, outcome: str, size: Decimal | str | float) -> None:
        """`wallet` also holds `size` shares of `outcome` ("Yes" or "No") that no order of this CLOB bought
        (traded by hand, elsewhere); added to what it already holds."""
        token = {"Yes": market.yes_token, "No": market.no_token}[outcome]
        key = (wallet.lower(), token)
        self.held[key] = self.held.get(key, Decimal(0)) + Decimal(str(size))

    def generate_universe(self, n: int, *, non_binary_every: int = 0, malformed_every: int = 0,
                          closed_every: int = 0, v2_every: int = 0) -> Universe:
        """n listed markets (closed ones come on top and are filtered out by active/closed); every
        `v2_every`-th binary one is a Protocol V2 market."""
        counts = Counter[str]()
        for i in range(1, n + 1):
            if non_binary_every and i % non_binary_every == 0:
                self.add_market(f"Who wins contest {i}?", outcomes=("Alpha", "Beta", "Gamma"), bids=[("0.30", "10")],
                                asks=[("0.32", "10")])
                counts["non_binary"] += 1
            elif malformed_every and i % malformed_every == 0:
                market = self.add_market(f"Broken market {i}?", bids=[("0.40", "10")], asks=[("0.42", "10")])
                market.raw["endDate"] = "someday"
                counts["malformed"] += 1
            else:
                self.add_market(f"Will thing {i} happen?", bids=[("0.40", "100")], asks=[("0.42", "100")],
                                version="v2" if v2_every and i % v2_every == 0 else "v1")
                counts["binary"] += 1
            if closed_every and i % closed_every == 0:
                self.add_market(f"Old question {i}?", active=False, closed=True, bids=[("0.10", "1")],
                                asks=[("0.12", "1")])
                counts["closed"] += 1
        return Universe(counts["binary"], counts["non_binary"], counts["malformed"], counts["closed"])

    def register_api_key(self, address: str, *, key: str | None = None, secret: str | None = None,
                         passphrase: str | None = None, nonce: int = 0) -> ApiKey:
        api = ApiKey(key=key or secrets.token_hex(16),
                     secret=secret or base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
                     passphrase=passphrase or secrets.token_hex(16), address=to_checksum_address(address),
                     nonce=nonce)
        self.api_keys[api.key] = api
        self.issued.append(api)
        return api

    def register_deposit_wallet(self, owner_address: str, wallet_address: str, *,
                                deployed: bool = True) -> DepositWallet:
        """`owner_address` (an EOA) trades through the deposit wallet `wallet_address` (signature type 3).
        From then on its type 0/1/2 orders are refused; while `deployed` is False its type 3 orders are too."""
        wallet = DepositWallet(to_checksum_address(owner_address), to_checksum_address(wallet_address), deployed)
        self.deposit_wallets[wallet.wallet.lower()] = wallet
        return wallet

    def deposit_wallet_of(self, owner_address: str) -> DepositWallet | None:
        owner = owner_address.lower()
        return next((w for w in self.deposit_wallets.values() if w.owner.lower() == owner), None)

    def book_levels(self, market: FakeMarket, outcome: str) -> tuple[list[tuple[Decimal, Decimal]],
                                                                     list[tuple[Decimal, Decimal]]]:
        """(bids, asks) of one outcome token, best first."""
        if outcome == "Yes":
            bids = sorted(market.bids.items(), reverse=True)
            asks = sorted(market.asks.items())
        else:
            bids = sorted(((ONE - p, s) for p, s in market.asks.items()), reverse=True)
            asks = sorted((ONE - p, s) for p, s in market.bids.items())
        return [(p, s) for p, s in bids if s > 0], [(p, s) for p, s in asks if s > 0]

    # ------------------------------------------------------------------ Gamma

    def _listed(self, active: str | None, closed: str | None) -> list[dict[str, Any]]:
        key = (active, closed)
        if key not in self._listed_cache:
            items = self.gamma_markets
            if active is not None:
                items = [m for m in items if m["active"] is (active == "true")]
            if closed is not None:
                items = [m for m in items if m["closed"] is (closed == "true")]
            self._listed_cache[key] = items
        return self._listed_cache[key]

    def _cursor(self, offset: int) -> str:
        return base64.urlsafe_b64encode(f"{offset}:{self._cursor_key}".encode()).decode().rstrip("=")

    def _offset(self, cursor: str) -> int | None:
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
            offset, key = raw.split(":")
            return int(offset) if key == self._cursor_key else None
        except (ValueError, UnicodeDecodeError):
            return None

    async def _keyset(self, request: web.Request) -> web.Response:
        query = request.query
        try:
            limit = min(100, max(1, int(query.get("limit", "20"))))
        except ValueError:
            return web.json_response({"error": "limit must be an integer"}, status=400)
        offset = 0
        if query.get("after_cursor"):  # `cursor` is not a parameter here: ignored, like the real Gamma
            found = self._offset(query["after_cursor"])
            if found is None:
                return web.json_response({"error": "invalid after_cursor"}, status=400)
            offset = found
        # Like the real Gamma, an absent `closed` means closed=false: a look-up by id must ask for closed ones.
        items = self._listed(query.get("active"), query.get("closed", "false"))
        if query.get("condition_ids"):
            wanted = set(query["condition_ids"].split(","))
            items = [m for m in items if m["conditionId"] in wanted]
        bounds = {}
        for name in ("end_date_min", "end_date_max"):  # ISO 8601; assumed inclusive, like Gamma's other min/max
            if query.get(name):
                try:
                    bounds[name] = datetime.fromisoformat(query[name].replace("Z", "+00:00"))
                except ValueError:
                    return web.json_response({"error": f"{name} must be an ISO 8601 date-time"}, status=400)
        if bounds:
            low, high = bounds.get("end_date_min"), bounds.get("end_date_max")
            items = [m for m in items if self._ends_within(m, low, high)]
        body: dict[str, Any] = {"markets": items[offset:offset + limit]}
        if offset + limit < len(items):
            body["next_cursor"] = self._cursor(offset + limit)
        response = web.json_response(body)
        if request.transport is None or request.transport.is_closing():
            return response  # the client gave up (timeout fault): not a delivered page
        self.page_fetches[offset // limit] += 1
        if self.on_gamma_page is not None:
            self.on_gamma_page(offset // limit)
        return response

    @staticmethod
    def _ends_within(raw: dict[str, Any], low: datetime | None, high: datetime | None) -> bool:
        try:
            end = datetime.fromisoformat(str(raw.get("endDate")).replace("Z", "+00:00"))
        except ValueError:
            return False
        return (low is None or end >= low) and (high is None or end <= high)

    def gamma_app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/markets/keyset", self._keyset)
        return app

    # ------------------------------------------------------------------ CLOB

    @staticmethod
    def _error(status: int, message: str) -> web.Response:
        return web.json_response({"error": message}, status=status)

    def _l1(self, request: web.Request) -> tuple[str, int] | web.Response:
        headers = request.headers
        address, signature = headers.get("POLY_ADDRESS"), headers.get("POLY_SIGNATURE")
        timestamp, nonce = headers.get("POLY_TIMESTAMP"), headers.get("POLY_NONCE", "0")
        if not (address and signature and timestamp):
            return self._error(401, "Invalid L1 Request headers")
        try:
            signer = clob_auth_signer(to_checksum_address(address), timestamp, int(nonce), signature, self.chain_id)
        except Exception:  # noqa: BLE001 - whatever is wrong with it, it does not authenticate
            return self._error(401, "Invalid L1 Request headers")
        if signer.lower() != address.lower() or abs(time.time() - int(timestamp)) > 300:
            return self._error(401, "Invalid L1 Request headers")
        return to_checksum_address(address), int(nonce)

    def _l2(self, request: web.Request, body: str) -> ApiKey | web.Response:
        headers = request.headers
        api = self.api_keys.get(headers.get("POLY_API_KEY", ""))
        timestamp, signature = headers.get("POLY_TIMESTAMP", ""), headers.get("POLY_SIGNATURE", "")
        if (api is None or not hmac.compare_digest(headers.get("POLY_PASSPHRASE", ""), api.passphrase)
                or headers.get("POLY_ADDRESS", "").lower() != api.address.lower() or not timestamp.isdigit()):
            return self._error(401, "Unauthorized/Invalid api key")
        expected = l2_signature(api.secret, timestamp, request.method, request.path, body)
        if not hmac.compare_digest(signature, expected) or abs(time.time() - int(timestamp)) > 300:
            return self._error(401, "Unauthorized/Invalid api key")
        return api

    async def _derive(self, request: web.Request) -> web.Response:
        who = self._l1(request)
        if isinstance(who, web.Response):
            return who
        address, nonce = who
        for api in self.api_keys.values():
            if api.address == address and api.nonce == nonce:
                return web.json_response({"apiKey": api.key, "secret": api.secret, "passphrase": api.passphrase})
        return self._error(400, "Could not derive api key!")

    async def _create(self, request: web.Request) -> web.Response:
        who = self._l1(request)
        if isinstance(who, web.Response):
            return who
        address, nonce = who
        if any(api.address == address and api.nonce == nonce for api in self.api_keys.values()):
            return self._error(400, "Could not create api key")
        api = self.register_api_key(address, nonce=nonce)
        return web.json_response({"apiKey": api.key, "secret": api.secret, "passphrase": api.passphrase})

    async def _book(self, request: web.Request) -> web.Response:
        token = request.query.get("token_id", "")
        if not token.isdigit():
            return self._error(400, "Invalid token id")
        if token not in self.tokens:  # also a v2 market's stale clobTokenIds / a v1 market's positionIds
            return self._error(404, "No orderbook exists for the requested token id")
        if self.trading_disabled:
            return self._error(503, TRADING_DISABLED)
        market, outcome = self.tokens[token]
        bids, asks = self.book_levels(market, outcome)
        return web.json_response({
            "market": market.condition_id, "asset_id": token, "timestamp": str(int(time.time() * 1000)),
            "hash": hashlib.sha1(json.dumps([str(bids), str(asks)]).encode()).hexdigest(),
            # The real CLOB lists both sides with the best price last.
            "bids": [{"price": text(p), "size": text(s)} for p, s in reversed(bids)],
            "asks": [{"price": text(p), "size": text(s)} for p, s in reversed(asks)],
            "min_order_size": text(market.min_size), "tick_size": text(market.tick), "neg_risk": market.neg_risk,
            "last_trade_price": "0.5"})

    async def _clob_market(self, request: web.Request) -> web.Response:
        """GET /clob-markets/{condition_id} (no auth): the compact market info the official SDKs size fees from."""
        market = self.markets.get(request.match_info["condition_id"])
        if market is None:
            return self._error(404, MARKET_NOT_FOUND)
        labels = json.loads(market.raw["outcomes"])
        body: dict[str, Any] = {
            "c": market.condition_id,
            "t": [{"t": market.yes_token, "o": labels[0]}, {"t": market.no_token, "o": labels[1]}],
            "mos": number(market.min_size), "mts": number(market.tick)}
        if market.neg_risk:
            body["nr"] = True  # omitted when false
        body.update(mbf=0, tbf=0)
        if market.fees_enabled:  # omitted on fee-free markets
            body["fd"] = {"r": number(market.fee_rate), "e": number(market.fee_exponent), "to": True}
        return web.json_response(body)

    async def _prices_history(self, request: web.Request) -> web.Response:
        """GET /prices-history?market=<token id>&startTs&endTs&fidelity (or interval): {"history": [{"t", "p"}]},
        oldest first, the last point of each `fidelity`-minute bucket (default 1). `interval` and startTs/endTs are
        mutually exclusive (docs). A resolved market's history is served only at 12 hours or coarser (py-clob-client
        #216); a token with no history, or one the CLOB does not know, answers an empty one (#189). A non-numeric
        id, unreadable numbers or start after end are 400 (assumed)."""
        q = request.query
        token = q.get("market", "")
        if not token.isdigit():
            return self._error(400, "Invalid market: a token id is required")
        if q.get("interval") and (q.get("startTs") or q.get("endTs")):
            return self._error(400, "interval and startTs/endTs are mutually exclusive")
        try:
            start = int(q["startTs"]) if q.get("startTs") else None
            end = int(q["endTs"]) if q.get("endTs") else None
            fidelity = int(q.get("fidelity") or 1)
        except ValueError:
            return self._error(400, "startTs, endTs and fidelity must be integers")
        if start is not None and end is not None and start > end:
            return self._error(400, "startTs must not be after endTs")
        if fidelity < 1:
            return self._error(400, "fidelity must be at least 1")
        market = self.tokens.get(token, (None, ""))[0]
        if market is not None and market.raw.get("closed") and fidelity < 720:
            return web.json_response({"history": []})
        buckets: dict[int, tuple[int, Decimal]] = {}
        for t, p in sorted(self.price_history.get(token, [])):
            if (start is None or t >= start) and (end is None or t <= end):
                buckets[t // (fidelity * 60)] = (t, p)
        return web.json_response({"history": [{"t": t, "p": float(p)} for t, p in buckets.values()]})

    async def _fee_rate(self, request: web.Request) -> web.Response:
        """GET /fee-rate?token_id= : the v1 fee *authorization* constant (`base_fee`), not the market's rate."""
        token = request.query.get("token_id", "")
        if not token.isdigit() or token not in self.tokens:  # assumed: an unknown id is also 400
            return self._error(400, "Invalid token id")
        market, _ = self.tokens[token]
        return web.json_response({"base_fee": BASE_FEE_WHEN_ENABLED if market.fees_enabled else 0})

    def _reject(self, message: str, status: int = 400) -> web.Response:
        self.rejections.append(message)
        return self._error(status, message)

    def _domains(self, market: FakeMarket) -> tuple[bytes, list[bytes]]:
        """(the separator the market's orders must be signed under, the other exchange version's separators)."""
        own = domain_separator(market.domain_version, exchange_for(
            market.domain_version, neg_risk=market.neg_risk, chain_id=self.chain_id), self.chain_id)
        if market.protocol_v2:
            others = [domain_separator("2", EXCHANGE_V2, self.chain_id),
                      domain_separator("2", NEG_RISK_EXCHANGE_V2, self.chain_id)]
        else:
            others = [domain_separator("3", exchange_for("3", chain_id=self.chain_id), self.chain_id)]
        return own, others

    def _check_signature(self, order: dict[str, Any], api: ApiKey, market: FakeMarket, kind: int,
                         struct: bytes) -> str | None:
        """None if the order is validly signed by the API key's account for this market's exchange, else why not."""
        if kind not in SIGNATURE_TYPES:
            return INVALID_SIGNATURE
        own, others = self._domains(market)
        if kind == 3:
            return self._check_deposit_wallet(order, api, struct, own, others)
        signer, maker = str(order["signer"]).lower(), str(order["maker"]).lower()
        try:
            signature = bytes.fromhex(str(order["signature"]).removeprefix("0x"))
        except ValueError:
            return INVALID_SIGNATURE
        if len(signature) != 65:
            return INVALID_SIGNATURE

        def recovered(separator: bytes) -> str | None:
            try:
                return Account._recover_hash(_digest(separator, struct), signature=signature).lower()
            except Exception:  # noqa: BLE001 - an unrecoverable signature recovers nobody
                return None

        if recovered(own) != signer:
            # Signed correctly, but for the other exchange version (domain "2" vs "3").
            if any(recovered(other) == signer for other in others):
                return ORDER_VERSION_MISMATCH
            return INVALID_SIGNATURE  # a V1-signed order, a wrong exchange or a wrong key recovers another address
        if signer != api.address.lower():
            return NOT_API_KEY_SIGNER
        if self.deposit_wallet_of(api.address) is not None:
            return USE_DEPOSIT_WALLET
        if (kind == 0 and maker != signer) or (kind in (1, 2) and maker not in self.funders.get(signer, set())):
            return INVALID_SIGNATURE  # assumed text for a maker the signer may not trade for
        return None

    def _check_deposit_wallet(self, order: dict[str, Any], api: ApiKey, struct: bytes, own: bytes,
                              others: list[bytes]) -> str | None:
        """Signature type 3 (POLY_1271): maker == signer == a deployed deposit wallet of the API key's address,
        signed the ERC-7739 nested way by the wallet's owner."""
        signer, maker = str(order["signer"]).lower(), str(order["maker"]).lower()
        if maker != signer:
            return INVALID_SIGNATURE  # assumed text
        wallet = self.deposit_wallets.get(signer)
        if wallet is None or not wallet.deployed or wallet.owner.lower() != api.address.lower():
            # The widely reported refusal: the CLOB cannot tie an undeployed (counterfactual) wallet to the key.
            return NOT_API_KEY_SIGNER
        try:
            ecdsa, separator, contents_hash, contents_type = split_1271_signature(order["signature"])
        except ValueError:
            return INVALID_SIGNATURE
        if contents_hash != struct or contents_type != ORDER_TYPE_STRING.encode():
            return INVALID_SIGNATURE
        if separator != own and separator not in others:
            return INVALID_SIGNATURE
        try:
            owner = Account._recover_hash(deposit_wallet_digest(separator, contents_hash, wallet.wallet,
                                                                self.chain_id), signature=ecdsa)
        except Exception:  # noqa: BLE001
            return INVALID_SIGNATURE
        if owner.lower() != wallet.owner.lower():
            return INVALID_SIGNATURE
        return None if separator == own else ORDER_VERSION_MISMATCH

    async def _post_order(self, request: web.Request) -> web.Response:
        body = (await request.read()).decode()
        api = self._l2(request, body)
        if isinstance(api, web.Response):
            return api
        if self.trading_disabled:
            return self._error(503, TRADING_DISABLED)
        if self.order_answer is not None:
            return web.json_response(self.order_answer(api))
        try:
            payload = json.loads(body)
            order = payload["order"]
            order_type = payload["orderType"]
            owner = payload["owner"]
            token = order["tokenId"]
            salt = order["salt"]
        except (ValueError, KeyError, TypeError):
            return self._reject("Invalid order payload")
        if not isinstance(salt, int) or not 0 <= salt < 2 ** 53 or order_type not in ("GTC", "GTD", "FOK", "FAK"):
            return self._reject("Invalid order payload")
        if owner != api.key:
            return self._reject("the order owner has to be the owner of the API KEY")
        if token not in self.tokens:
            return self._reject("Invalid token id")
        market, outcome = self.tokens[token]
        if market.raw.get("closed") or market.raw.get("acceptingOrders") is False:
            return self._reject("the market is not accepting orders")  # assumed wording; the refusal is certain
        try:
            kind = int(order["signatureType"])
            struct = order_struct_hash(order)
            maker_amount, taker_amount = int(order["makerAmount"]), int(order["takerAmount"])
        except Exception:  # noqa: BLE001 - an order that cannot even be hashed is not validly signed
            return self._reject(INVALID_SIGNATURE)
        refused = self._check_signature(order, api, market, kind, struct)
        if refused is not None:
            return self._reject(refused)
        order_id = order_hash(order, neg_risk=market.neg_risk, chain_id=self.chain_id, version=market.domain_version)
        if order["side"] not in ("BUY", "SELL"):
            return self._reject("Invalid order payload")  # assumed: the signed side is 0 or 1 on the wire
        if order_id in self.orders:
            return self._reject(f"order {order_id} is invalid. Duplicated.")
        if order["side"] == "SELL":
            return self._sell(order_id, api, market, token, outcome, order_type, order, maker_amount, taker_amount)
        size = Decimal(taker_amount) / UNITS  # shares
        notional = Decimal(maker_amount) / UNITS  # pUSD, fee excluded
        if order_type in ("FAK", "FOK"):
            maker_cap, taker_cap, template = 2, self.market_buy_taker_decimals, MARKET_BUY_PRECISION
        else:  # limit BUY: the pUSD side may carry the tick's decimals + 2 (4 on a 0.01 tick), shares 2
            maker_cap, taker_cap, template = decimals(market.tick) + 2, 2, LIMIT_BUY_PRECISION
        if decimals(notional) > maker_cap or decimals(size) > taker_cap:
            return self._reject(template.format(maker=maker_cap, taker=taker_cap))
        price = notional / size if taker_amount else Decimal(0)
        refused = self._price_and_size_problem(order_id, market, price, size, order_type)
        if refused is not None:
            return refused
        _, asks = self.book_levels(market, outcome)
        available = sum((s for p, s in asks if p <= price), Decimal(0))
        if available > 0 and notional < ONE:  # marketable (crosses the book), limit orders included
            return self._reject(MARKETABLE_MINIMUM.format(side="BUY", amount=text(notional)))
        # Assumed: the check reserves the whole notional plus the taker fee, at the order's price, on the part
        # that would take now (the SDKs size fees at the order price; any better level costs less).
        if notional + market.fee(min(size, available), price) > self.balance:
            return self._reject(NOT_ENOUGH_BALANCE)
        killed = self._killed(order_id, api, market, token, outcome, size, price, order_type, order, available,
                              "BUY")
        if killed is not None:
            return killed
        taken, paid, fee = self._take(market, outcome, price, size)
        self.balance -= paid + fee  # the fee in pUSD on top of the notional; the shares are delivered whole
        self.fees_paid += fee
        record = self._record(order_id, api, market, token, outcome, size, price, order_type, order, taken, paid,
                              self._status(order_type, taken, size), fee=fee)
        # Decimal strings: makingAmount the pUSD notional WITHOUT the fee, takingAmount the shares.
        return self._answer(record, paid, taken)

    def _sell(self, order_id: str, api: ApiKey, market: FakeMarket, token: str, outcome: str, order_type: str,
              order: dict[str, Any], maker_amount: int, taker_amount: int) -> web.Response:
        """A SELL: the shares given (makerAmount) for at least the pUSD at its limit (takerAmount), matched against
        that outcome's bids best first down to the limit; the fee comes off what it receives."""
        size = Decimal(maker_amount) / UNITS  # shares given
        notional = Decimal(taker_amount) / UNITS  # pUSD at the limit
        taker_cap = 4 if order_type in ("FAK", "FOK") else decimals(market.tick) + 2
        if decimals(size) > 2 or decimals(notional) > taker_cap:
            return self._reject(SELL_PRECISION.format(maker=2, taker=taker_cap))
        price = notional / size if maker_amount else Decimal(0)  # the CLOB reads a SELL's price as taker / maker
        refused = self._price_and_size_problem(order_id, market, price, size, order_type)
        if refused is not None:
            return refused
        bids, _ = self.book_levels(market, outcome)
        available = sum((s for p, s in bids if p >= price), Decimal(0))
        if available > 0 and notional < ONE:  # marketable: worth $1 at its limit, like a BUY
            return self._reject(MARKETABLE_MINIMUM.format(side="SELL", amount=text(notional)))
        if size > self._sellable(str(order["maker"]), token):
            return self._reject(NOT_ENOUGH_BALANCE)
        killed = self._killed(order_id, api, market, token, outcome, size, price, order_type, order, available,
                              "SELL")
        if killed is not None:
            return killed
        taken, received, fee = self._hit(market, outcome, price, size)
        self.balance += received - fee  # the fee comes off the proceeds, in pUSD
        self.fees_paid += fee
        record = self._record(order_id, api, market, token, outcome, size, price, order_type, order, taken, received,
                              self._status(order_type, taken, size), fee=fee, side="SELL")
        # makingAmount the shares sold, takingAmount the pUSD received WITHOUT the fee (assumed, as for a BUY)
        return self._answer(record, taken, received)

    def _price_and_size_problem(self, order_id: str, market: FakeMarket, price: Decimal, size: Decimal,
                                order_type: str) -> web.Response | None:
        if price % market.tick != 0 or not market.tick <= price <= ONE - market.tick:
            return self._reject(f"order {order_id} is invalid. Price ({text(price)}) breaks minimum tick size "
                                f"rule: {text(market.tick)}")
        if order_type in ("GTC", "GTD") and size < market.min_size:  # market orders have the $1 rule instead
            return self._reject(f"order {order_id} is invalid. Size ({text(size)}) lower than the minimum: "
                                f"{text(market.min_size)}")
        return None

    def _killed(self, order_id: str, api: ApiKey, market: FakeMarket, token: str, outcome: str, size: Decimal,
                price: Decimal, order_type: str, order: dict[str, Any], available: Decimal,
                side: str) -> web.Response | None:
        """FOK with too little to take, FAK with nothing: recorded cancelled, refused with the CLOB's words."""
        if order_type == "FOK" and available < size:
            message = FOK_KILLED
        elif order_type == "FAK" and available <= 0:
            message = FAK_KILLED
        else:
            return None
        self._record(order_id, api, market, token, outcome, size, price, order_type, order, Decimal(0), Decimal(0),
                     "CANCELED", side=side)
        return self._reject(message)

    @staticmethod
    def _status(order_type: str, taken: Decimal, size: Decimal) -> str:
        if order_type in ("GTC", "GTD") and taken < size:
            return "LIVE"
        return "MATCHED" if taken > 0 else "CANCELED"

    def _answer(self, record: FakeOrder, making: Decimal, taking: Decimal) -> web.Response:
        if self.delay_next > 0:
            self.delay_next -= 1
            answer, made, took = "delayed", "", ""
        else:
            answer = "matched" if record.size_matched > 0 else ("live" if record.status == "LIVE" else "unmatched")
            made, took = (text(making), text(taking)) if record.size_matched > 0 else ("", "")
        return web.json_response({
            "success": True, "errorMsg": "", "orderID": record.id, "status": answer, "makingAmount": made,
            "takingAmount": took, "tradeIDs": list(record.trades),
            "transactionsHashes": ["0x" + hashlib.sha256(t.encode()).hexdigest() for t in record.trades]})

    def _sellable(self, wallet: str, token: str) -> Decimal:
        """Shares of `token` the wallet may still sell: what it holds less what its live SELLs have committed."""
        held = self.holdings(wallet).get(token, (Decimal(0), Decimal(0)))[0]
        committed = sum((o.original_size - o.size_matched for o in self.orders.values()
                         if o.side == "SELL" and o.status == "LIVE" and o.asset_id == token
                         and o.maker_address.lower() == wallet.lower()), Decimal(0))
        return held - committed

    def _hit(self, market: FakeMarket, outcome: str, limit: Decimal,
             size: Decimal) -> tuple[Decimal, Decimal, Decimal]:
        """Hit the bids for `outcome` at or above `limit`, best first; the book shrinks.
        -> (shares sold, pUSD received before the fee, taker fee: per price level, each rounded to 0.00001)."""
        return self._walk(market, outcome, limit, size, selling=True)

    def _take(self, market: FakeMarket, outcome: str, limit: Decimal,
              size: Decimal) -> tuple[Decimal, Decimal, Decimal]:
        """Lift the offers of `outcome` at or below `limit`, best first; the book shrinks.
        -> (shares taken, pUSD notional, taker fee: per price level, each rounded to 0.00001)."""
        return self._walk(market, outcome, limit, size, selling=False)

    def _walk(self, market: FakeMarket, outcome: str, limit: Decimal, size: Decimal, *,
              selling: bool) -> tuple[Decimal, Decimal, Decimal]:
        """Trade `size` of `outcome` against its bids (a SELL) or asks (a BUY), best first up to `limit`. The
        fake keeps the YES book: a NO level is the opposite YES side mirrored, and shrinks there."""
        remaining, notional, fee = size, Decimal(0), Decimal(0)
        bids, asks = self.book_levels(market, outcome)
        for price, available in (bids if selling else asks):
            if (price < limit if selling else price > limit) or remaining <= 0:
                break
            take = min(available, remaining)
            remaining -= take
            notional += take * price
            fee += market.fee(take, price)
            yes_side = market.bids if selling == (outcome == "Yes") else market.asks
            yes_side[price if outcome == "Yes" else ONE - price] -= take
        return size - remaining, notional, fee

    def _record(self, order_id: str, api: ApiKey, market: FakeMarket, token: str, outcome: str, size: Decimal,
                price: Decimal, order_type: str, body: dict[str, Any], taken: Decimal, paid: Decimal,
                status: str, *, fee: Decimal = Decimal(0), side: str = "BUY") -> FakeOrder:
        trades = [f"trade-{len(self.orders) + 1}"] if taken > 0 else []
        record = FakeOrder(id=order_id, status=status, owner=api.key, maker_address=str(body["maker"]),
                           market=market.condition_id, asset_id=token, outcome=outcome, side=side,
                           original_size=size, size_matched=taken, price=price, order_type=order_type,
                           created_at=int(time.time()), paid=paid, trades=trades, body=body, fee=fee,
                           signature_type=int(body["signatureType"]))
        self.orders[order_id] = record
        return record

    async def _get_order(self, request: web.Request) -> web.Response:
        api = self._l2(request, "")
        if isinstance(api, web.Response):
            return api
        order = self.orders.get(request.match_info["order_id"])
        if order is None or order.owner != api.key:
            return web.json_response(None) if self.unknown_order_as_null else self._error(404, "order not found")
        return web.json_response(order.wire())

    async def _open_orders(self, request: web.Request) -> web.Response:
        api = self._l2(request, "")
        if isinstance(api, web.Response):
            return api
        query = request.query
        try:  # a base64 offset: "MA==" is 0; "LTE=" (-1) ends the listing and is no page to ask for
            offset = int(base64.b64decode(query.get("next_cursor") or "MA==", validate=True).decode())
        except (ValueError, UnicodeDecodeError):
            offset = -1
        if offset < 0:
            return self._error(400, "invalid next_cursor")
        wanted = {name: query[name] for name in ("market", "asset_id", "id") if query.get(name)}
        rows = [o for o in self.orders.values() if o.owner == api.key and o.status == "LIVE"
                and all(getattr(o, name) == value for name, value in wanted.items())]
        page = [o.wire() for o in rows[offset:offset + self.open_orders_page]]
        end = offset + self.open_orders_page >= len(rows)
        cursor = "LTE=" if end else base64.b64encode(str(offset + self.open_orders_page).encode()).decode()
        if self.open_orders_cursor is not None:
            cursor = self.open_orders_cursor
        if self.open_orders_shape == "array":
            return web.json_response(page)
        return web.json_response({"data": page, "next_cursor": cursor, "limit": self.open_orders_page,
                                  "count": len(page)})

    async def _cancel(self, request: web.Request) -> web.Response:
        body = (await request.read()).decode()
        api = self._l2(request, body)
        if isinstance(api, web.Response):
            return api
        try:
            order_id = json.loads(body)["orderID"]
        except (ValueError, KeyError, TypeError):
            return self._error(400, "Invalid payload")
        order = self.orders.get(order_id)
        if order is None or order.owner != api.key:
            return web.json_response({"canceled": [], "not_canceled": {order_id: "order not found"}})
        if order.status != "LIVE":
            return web.json_response({"canceled": [], "not_canceled": {order_id: "order can't be canceled"}})
        order.status = "CANCELED"
        return web.json_response({"canceled": [order_id], "not_canceled": {}})


    def _holders(self, api: ApiKey, signature_type: int) -> list[str]:
        """The addresses whose funds a key trades with under `signature_type` (0 the EOA, 1/2 its proxy / Safe,
        3 its deposit wallet)."""
        if signature_type == 0:
            return [api.address]
        if signature_type in (1, 2):
            return sorted(self.funders.get(api.address.lower(), set()))
        wallet = self.deposit_wallet_of(api.address)
        return [wallet.wallet] if wallet is not None else []

    async def _balance(self, request: web.Request) -> web.Response:
        """GET /balance-allowance?asset_type=COLLATERAL|CONDITIONAL|CONDITIONAL-V2[&token_id=][&signature_type=].
        Amounts are 6-decimal base units. The fake keeps one pUSD balance for every key (assumed adequate);
        conditional balances are the shares the type's wallet holds. Assumed: an absent asset_type means
        COLLATERAL; CONDITIONAL takes a v1 token id and CONDITIONAL-V2 a v2 position id, else 400."""
        api = self._l2(request, "")
        if isinstance(api, web.Response):
            return api
        query = request.query
        asset_type = query.get("asset_type", "COLLATERAL")
        try:
            kind = int(query.get("signature_type", "0"))
        except ValueError:
            kind = -1
        if kind not in SIGNATURE_TYPES:
            return self._error(400, "Invalid signature type")  # assumed text
        if asset_type == "COLLATERAL":
            return web.json_response({"balance": str(int(self.balance * UNITS)), "allowances": {
                EXCHANGE_V2: MAX_UINT256, NEG_RISK_EXCHANGE_V2: MAX_UINT256,
                exchange_for("3", chain_id=self.chain_id): MAX_UINT256}})
        if asset_type not in ("CONDITIONAL", "CONDITIONAL-V2"):
            return self._error(400, "Invalid asset type")  # assumed text
        token = query.get("token_id", "")
        entry = self.tokens.get(token)
        if entry is None or entry[0].protocol_v2 != (asset_type == "CONDITIONAL-V2"):
            return self._error(400, "Invalid token id")  # assumed
        shares = sum((self.holdings(holder).get(token, (Decimal(0), Decimal(0)))[0]
                      for holder in self._holders(api, kind)), Decimal(0))
        spenders = [exchange_for("3", chain_id=self.chain_id)] if entry[0].protocol_v2 else [
            EXCHANGE_V2, NEG_RISK_EXCHANGE_V2]
        return web.json_response({"balance": str(int(shares * UNITS)),
                                  "allowances": {spender: MAX_UINT256 for spender in spenders}})

    # ------------------------------------------------------------------ Data API

    def ledger(self, wallet: str) -> dict[str, dict[str, Decimal]]:
        """token id -> what `wallet`'s matched orders traded: shares bought and their pUSD cost, shares sold and
        the pUSD they fetched (fees apart), and shares held from elsewhere (`hold`)."""
        wallet = wallet.lower()
        rows: dict[str, dict[str, Decimal]] = {}

        def row(token: str) -> dict[str, Decimal]:
            return rows.setdefault(token, {k: Decimal(0) for k in ("bought", "cost", "sold", "proceeds", "held")})

        for order in self.orders.values():
            if order.maker_address.lower() == wallet and order.size_matched > 0:
                entry = row(order.asset_id)
                if order.side == "SELL":
                    entry["sold"] += order.size_matched
                    entry["proceeds"] += order.paid
                else:
                    entry["bought"] += order.size_matched
                    entry["cost"] += order.paid
        for (holder, token), size in self.held.items():
            if holder == wallet:
                row(token)["held"] += size
        return rows

    def holdings(self, wallet: str) -> dict[str, tuple[Decimal, Decimal]]:
        """token id -> (shares, pUSD cost of them) `wallet` holds: bought less sold on this CLOB, plus what a test
        added. A sale takes its average-cost share of the bought cost with it (assumed)."""
        held: dict[str, tuple[Decimal, Decimal]] = {}
        for token, entry in self.ledger(wallet).items():
            shares = entry["bought"] - entry["sold"] + entry["held"]
            average = entry["cost"] / entry["bought"] if entry["bought"] else Decimal(0)
            held[token] = (shares, max(entry["cost"] - average * entry["sold"], Decimal(0)))
        return held

    def _position_row(self, wallet: str, token: str, shares: Decimal, paid: Decimal,
                      held: dict[str, tuple[Decimal, Decimal]], ledger: dict[str, dict[str, Decimal]]
                      ) -> dict[str, Any]:
        market, outcome = self.tokens[token]
        index = 0 if outcome == "Yes" else 1
        opposite = market.no_token if outcome == "Yes" else market.yes_token
        resolved = market.raw.get("closed") is True and market.raw.get("umaResolutionStatus") == "resolved"
        price = float(json.loads(market.raw["outcomePrices"])[index])
        traded = ledger.get(token, {})
        bought = traded.get("bought", Decimal(0))
        cost_of_sold = traded.get("cost", Decimal(0)) / bought * traded["sold"] if bought else Decimal(0)
        realized = traded.get("proceeds", Decimal(0)) - cost_of_sold
        average = float(paid / shares) if paid and shares else 0.0
        return {
            "proxyWallet": wallet.lower(), "asset": token, "conditionId": market.condition_id,
            "size": float(shares), "avgPrice": average, "initialValue": float(paid),
            "currentValue": float(shares) * price, "cashPnl": float(shares) * price - float(paid),
            "percentPnl": 0.0, "totalBought": float(bought + traded.get("held", Decimal(0)) if traded else shares),
            "realizedPnl": float(realized), "percentRealizedPnl": 0.0,
            "curPrice": price, "redeemable": resolved,
            "mergeable": not resolved and held.get(opposite, (Decimal(0),))[0] > 0,
            "title": market.raw["question"], "slug": market.raw["slug"], "icon": "",
            "eventSlug": market.raw["events"][0]["slug"], "outcome": outcome, "outcomeIndex": index,
            "oppositeOutcome": "No" if outcome == "Yes" else "Yes", "oppositeAsset": opposite,
            "endDate": market.raw["endDate"][:10], "negativeRisk": market.neg_risk}

    async def _positions(self, request: web.Request) -> web.Response:
        query = request.query
        wallet = query.get("user", "")
        if not ADDRESS.match(wallet):
            return self._error(400, "user: must be a 0x-prefixed 40 hex address")
        try:
            limit = int(query.get("limit", "100"))
            offset = int(query.get("offset", "0"))
            threshold = Decimal(query.get("sizeThreshold", "1"))
        except (ValueError, ArithmeticError):
            return self._error(400, "limit, offset and sizeThreshold must be numbers")
        if not 0 <= limit <= POSITIONS_MAX_LIMIT:
            return self._error(400, f"limit must be between 0 and {POSITIONS_MAX_LIMIT}")
        if not 0 <= offset <= POSITIONS_MAX_OFFSET:
            return self._error(400, f"offset must be between 0 and {POSITIONS_MAX_OFFSET}")
        if not threshold.is_finite() or threshold < 0:
            return self._error(400, "sizeThreshold must be >= 0")
        held, ledger = self.holdings(wallet), self.ledger(wallet)
        rows = [self._position_row(wallet, token, shares, paid, held, ledger) for token, (shares, paid) in held.items()
                if shares > 0 and shares >= threshold]
        rows.sort(key=lambda row: (-row["size"], row["asset"]))  # sortBy=TOKENS, DESC: the real default
        page = rows[offset:offset + limit]
        if self.positions_shape == "envelope":
            return web.json_response({"data": page, "pagination": {"next_cursor": None}})
        return web.json_response(page)

    def data_app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/positions", self._positions)
        return app

    async def _ok(self, request: web.Request) -> web.Response:
        """The CLOB's health check: `GET /` answers the text "OK" (py-clob-client-v2's get_ok)."""
        return web.json_response("OK")

    @web.middleware
    async def _retirement(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if (request.method, request.path) in self.retired_routes:  # assumed: a route taken away answers 410
            return self._error(410, "this endpoint has been retired")
        return await handler(request)

    def clob_app(self) -> web.Application:
        app = web.Application(middlewares=[self._retirement])
        app.router.add_get("/", self._ok)
        app.router.add_get("/book", self._book)
        app.router.add_get("/clob-markets/{condition_id}", self._clob_market)
        app.router.add_get("/fee-rate", self._fee_rate)
        app.router.add_get("/prices-history", self._prices_history)
        app.router.add_get("/auth/derive-api-key", self._derive)
        app.router.add_post("/auth/api-key", self._create)
        app.router.add_post("/order", self._post_order)
        app.router.add_delete("/order", self._cancel)
        app.router.add_get("/data/order/{order_id}", self._get_order)
        app.router.add_get("/data/orders", self._open_orders)
        app.router.add_get("/balance-allowance", self._balance)
        return app
