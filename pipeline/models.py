"""The desk's domain: markets, books, estimates, signals, orders, fills, positions, reports.

Prices are Decimal dollars in [0, 1] per contract; counts are Decimal (Kalshi counts are
2-decimal strings, Polymarket sizes are fractional). Times are timezone-aware UTC.
Everything here is a frozen value: a change is a new value, persisted by the store.
"""

from __future__ import annotations

import enum
import hashlib
from collections import Counter
from datetime import datetime, timezone
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from .errors import FeesUnknownError

ONE = Decimal(1)
ZERO = Decimal(0)
CENT = Decimal("0.01")


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("datetime must be timezone-aware")
    return value.astimezone(timezone.utc)


AwareDatetime = Annotated[datetime, AfterValidator(_aware)]
Price = Annotated[Decimal, Field(ge=0, le=1)]


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def round_up(value: Decimal, step: Decimal) -> Decimal:
    return (value / step).to_integral_value(rounding=ROUND_CEILING) * step


def round_down(value: Decimal, step: Decimal) -> Decimal:
    return (value / step).to_integral_value(rounding=ROUND_FLOOR) * step


def plain(value: Decimal) -> Decimal:
    """An exact decimal as people write it: 0.2500 -> 0.25, 113.00 -> 113 (not normalize()'s 1.13E+2)."""
    return value.quantize(ONE) if value == value.to_integral_value() else value.normalize()


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Venue(str, enum.Enum):
    KALSHI = "kalshi"
    POLYMARKET = "polymarket"


class Side(str, enum.Enum):
    YES = "yes"
    NO = "no"

    @property
    def other(self) -> "Side":
        return Side.NO if self is Side.YES else Side.YES


class OrderAction(str, enum.Enum):
    """Which way money moves: an entry buys contracts of a side, an exit sells contracts of a side it holds."""

    BUY = "buy"
    SELL = "sell"


class ExitReason(str, enum.Enum):
    """Why the desk proposes getting out of a position (pipeline/exits.py)."""

    TAKE_PROFIT = "take_profit"  # the bid beats the fair value by min_edge, above what was paid
    EDGE_GONE = "edge_gone"  # the bid beats the fair value by min_edge, below what was paid
    STOP_LOSS = "stop_loss"  # selling now returns less than (1 - trading.exit.stop_loss_fraction) of the cost
    CLOSING_SOON = "closing_soon"  # the market closes within trading.exit.hours_before_close
    MANUAL = "manual"  # a person asked: /desk close, a Close button, `oddsdesk close`


class FeeModel(Frozen):
    """What one trade costs in fees: `round_up(rate * C * (P * (1 - P)) ** exponent, rounding)` for a taker.

    Kalshi: rate = 0.07 x the series' fee_multiplier, exponent 1, each trade's fee rounded up to $0.0001, and up
    to a cent more per order from rounding the balance change (rebated once it passes a cent): `per_order`.
    Series with maker fees charge `maker_rate` (0.25 or 0.5 of the taker rate) on resting orders that fill.
    Polymarket: the market's taker rate and exponent from the CLOB, rounded to 0.00001 pUSD; makers pay nothing.
    `source` says where the schedule came from, for the person reading a signal.
    """

    rate: Decimal = Field(ge=0, le=1)
    maker_rate: Decimal = Field(default=ZERO, ge=0, le=1)
    exponent: int = Field(default=1, ge=1, le=4)
    rounding: Decimal = Field(default=CENT, gt=0)
    per_order: Decimal = Field(default=ZERO, ge=0)  # the most an order's rounding can add on top of its trades
    source: str = ""

    def _curve(self, price: Decimal) -> Decimal:
        return (price * (ONE - price)) ** self.exponent

    def fee(self, contracts: Decimal, price: Decimal) -> Decimal:
        """A taker's fee for one trade of `contracts` at `price`."""
        if contracts <= 0 or self.rate == 0:
            return ZERO
        return round_up(self.rate * contracts * self._curve(price), self.rounding)

    def maker_fee(self, contracts: Decimal, price: Decimal) -> Decimal:
        if contracts <= 0 or self.maker_rate == 0:
            return ZERO
        return round_up(self.maker_rate * contracts * self._curve(price), self.rounding)

    def fee_per_contract(self, price: Decimal) -> Decimal:
        """Unrounded marginal taker fee, used to rank edges before a size is known."""
        return self.rate * self._curve(price)

    def worst_order_fee(self, contracts: Decimal, limit_price: Decimal) -> Decimal:
        """The most fees an order of `contracts` filling at or below `limit_price` can cost.

        rate * (P(1 - P))^e peaks at 0.5, so the worst price is the limit or 0.5, whichever is lower. The order
        may fill in several trades, each rounded up on its own: `per_order` covers that, and Kalshi's rounding of
        the balance change.
        """
        worst_price = min(limit_price, Decimal("0.5"))
        return self.fee(contracts, worst_price) + self.per_order

    def worst_order_cost(self, contracts: Decimal, limit_price: Decimal) -> Decimal:
        """The most an order can cost: every contract filled at the limit, plus worst_order_fee."""
        return contracts * limit_price + self.worst_order_fee(contracts, limit_price)

    @property
    def free(self) -> bool:
        return self.rate == 0 and self.maker_rate == 0 and self.per_order == 0


class Market(Frozen):
    venue: Venue
    id: str  # Kalshi ticker, Polymarket conditionId
    title: str
    rules: str = ""
    status: Literal["open", "closed", "settled", "paused"] = "open"
    yes_bid: Price | None = None
    yes_ask: Price | None = None
    last_price: Price | None = None
    volume: Decimal = Field(default=ZERO, ge=0)  # contracts traded (Kalshi) / dollars (Polymarket)
    liquidity: Decimal = Field(default=ZERO, ge=0)  # dollars resting near the touch
    close_time: AwareDatetime
    url: str = ""
    tick_size: Decimal = Field(default=CENT, gt=0)
    contract_step: Decimal = Field(default=ONE, gt=0)  # smallest count increment
    min_order_size: Decimal = Field(default=ZERO, ge=0)
    # None until the venue's fee schedule for this market has been read (scans list markets without it):
    # nothing is priced, sized or traded on a market whose fees are not known.
    fee_model: FeeModel | None = None
    fee_waived_until: AwareDatetime | None = None  # Kalshi: no fees on this market until then
    event: str = ""  # Kalshi event ticker / Polymarket event slug, for grouping
    yes_token_id: str = ""  # Polymarket outcome ids (token ids for v1 markets, position ids for v2); empty on Kalshi
    no_token_id: str = ""
    neg_risk: bool = False
    protocol: Literal["v1", "v2"] = "v1"  # Polymarket: v2 markets are traded on ExchangeV3 (EIP-712 domain "3")

    @property
    def key(self) -> str:
        return f"{self.venue.value}:{self.id}"

    @property
    def category(self) -> str:
        """What the track record groups it by: Kalshi's series (the event ticker's prefix), Polymarket's event."""
        if self.venue is Venue.KALSHI:
            return (self.event or self.id).split("-")[0]
        return self.event

    @property
    def fees(self) -> FeeModel:
        """The fee schedule; refuses to guess when the venue's has not been read."""
        if self.fee_model is None:
            raise FeesUnknownError(f"{self.key}: the venue's fee schedule for this market has not been read")
        return self.fee_model

    @property
    def mid(self) -> Decimal | None:
        if self.yes_bid is not None and self.yes_ask is not None:
            return (self.yes_bid + self.yes_ask) / 2
        return self.last_price


class BookLevel(Frozen):
    price: Price
    size: Decimal = Field(gt=0)


class OrderBook(Frozen):
    """Both sides in YES terms: bids best (highest) first, asks best (lowest) first."""

    venue: Venue
    market_id: str
    yes_bids: tuple[BookLevel, ...] = ()
    yes_asks: tuple[BookLevel, ...] = ()
    fetched_at: AwareDatetime = Field(default_factory=utcnow)

    def asks_for(self, side: Side) -> tuple[BookLevel, ...]:
        """What a buyer of `side` can lift, best first, priced in that side's terms.

        Buying NO at q is selling YES at 1 - q, so NO asks are the YES bids mirrored.
        """
        return self.yes_asks if side is Side.YES else _mirrored(self.yes_bids)

    def best_ask(self, side: Side) -> Decimal | None:
        levels = self.asks_for(side)
        return levels[0].price if levels else None

    def bids_for(self, side: Side) -> tuple[BookLevel, ...]:
        """What a seller of `side` can hit, best first, priced in that side's terms.

        Selling NO at q is buying YES at 1 - q, so NO bids are the YES asks mirrored.
        """
        return self.yes_bids if side is Side.YES else _mirrored(self.yes_asks)

    def best_bid(self, side: Side) -> Decimal | None:
        levels = self.bids_for(side)
        return levels[0].price if levels else None


def _mirrored(levels: tuple[BookLevel, ...]) -> tuple[BookLevel, ...]:
    """YES levels in NO's terms: a YES price p is a NO price 1 - p, same size, same order (best first)."""
    return tuple(BookLevel(price=ONE - lvl.price, size=lvl.size) for lvl in levels)


class Estimate(Frozen):
    """A fair probability of YES, raw from the model and blended with the market."""

    market_key: str
    model_probability: Decimal = Field(ge=0, le=1)
    market_probability: Decimal | None = None
    fair_probability: Decimal = Field(ge=0, le=1)
    confidence: Decimal = Field(default=Decimal("0.5"), ge=0, le=1)
    reasoning: str = ""
    key_factors: tuple[str, ...] = ()
    source: Literal["model", "cache", "sample"] = "model"
    sources: tuple[str, ...] = ()  # web pages the model cited, when it searched
    model: str = ""
    prompt_version: str = ""  # the prompt (and its options) that produced it: the track record is cut by it
    market_weight: Decimal | None = None  # the market's share in fair_probability
    cost_usd: Decimal = ZERO
    created_at: AwareDatetime = Field(default_factory=utcnow)


class Opportunity(Frozen):
    """The better side of a market against its executable price, before sizing."""

    market: Market
    estimate: Estimate
    side: Side
    price: Price  # best executable price for `side`
    probability: Decimal  # fair probability that `side` wins
    fee_per_contract: Decimal
    edge: Decimal  # probability - price - fee_per_contract


class SignalStatus(str, enum.Enum):
    PENDING = "pending"
    APPROVED = "approved"
    SUBMITTING = "submitting"
    PLACED = "placed"
    FILLED = "filled"
    PARTIALLY_FILLED = "partially_filled"
    FAILED = "failed"
    UNKNOWN = "unknown"
    REJECTED = "rejected"
    EXPIRED = "expired"
    SIMULATED = "simulated"

    @property
    def is_final(self) -> bool:
        return self in FINAL_SIGNAL_STATUSES

    @property
    def holds_reservation(self) -> bool:
        """Capital stays reserved until the order's outcome is known."""
        return self in (SignalStatus.PENDING, SignalStatus.APPROVED, SignalStatus.SUBMITTING,
                        SignalStatus.UNKNOWN)


FINAL_SIGNAL_STATUSES = frozenset({
    SignalStatus.PLACED, SignalStatus.FILLED, SignalStatus.PARTIALLY_FILLED, SignalStatus.FAILED,
    SignalStatus.REJECTED, SignalStatus.EXPIRED, SignalStatus.SIMULATED,
})

# A signal's life (DESIGN.md). Every move is one compare-and-set from one of these sources.
SIGNAL_TRANSITIONS: dict[SignalStatus, frozenset[SignalStatus]] = {
    SignalStatus.PENDING: frozenset({SignalStatus.APPROVED, SignalStatus.REJECTED, SignalStatus.EXPIRED}),
    SignalStatus.APPROVED: frozenset({SignalStatus.SUBMITTING, SignalStatus.SIMULATED, SignalStatus.FAILED}),
    SignalStatus.SUBMITTING: frozenset({SignalStatus.PLACED, SignalStatus.FILLED, SignalStatus.PARTIALLY_FILLED,
                                        SignalStatus.FAILED, SignalStatus.UNKNOWN}),
    SignalStatus.UNKNOWN: frozenset({SignalStatus.PLACED, SignalStatus.FILLED, SignalStatus.PARTIALLY_FILLED,
                                     SignalStatus.FAILED}),
}


def can_move(source: SignalStatus, target: SignalStatus) -> bool:
    return target in SIGNAL_TRANSITIONS.get(source, frozenset())


class ExitTerms(Frozen):
    """What an exit signal closes and why: the position as it stood when the exit was proposed."""

    reason: ExitReason
    position_id: int
    held: Decimal = Field(gt=0)  # contracts the position held then (the exit sells up to this many)
    basis: Decimal = Field(ge=0)  # what the contracts sold cost, entry fees included (their share of the position)
    detail: str = ""  # the rule in words, e.g. "closes in 2.5 h (trading.exit.hours_before_close 6)"
    requested_by: str = ""  # who asked, for a manual close


class TradeSignal(Frozen):
    """A proposed order awaiting a person's decision. An entry (action BUY) buys `contracts` of `side`; an exit
    (action SELL, `exit` set) sells `contracts` of `side` that a position holds. Money fields are in the traded
    side's terms: an entry's `cost` is paid, an exit's is received."""

    id: str
    cycle_id: str
    market: Market
    side: Side
    limit_price: Price  # worst price we accept per contract: the most a buy pays, the least a sell takes
    contracts: Decimal = Field(gt=0)
    cost: Decimal  # dollars exchanged for `contracts` walking the book to limit_price: paid (buy), received (sell)
    fees: Decimal  # estimated taker fees for that fill
    average_price: Price
    # The analyst's view; an exit proposed without a fresh estimate (a person's close) has none.
    probability: Decimal | None = None  # fair probability that `side` wins (blended)
    model_probability: Decimal | None = None  # raw model probability of YES
    fair_yes: Decimal | None = None  # blended probability of YES
    edge: Decimal | None = None  # entry: fair - price - fee per contract; exit: price - fee - fair per contract
    kelly_fraction: Decimal = ZERO  # fraction of bankroll actually staked (entries)
    expected_value: Decimal | None = None  # dollars: an entry's expected profit; an exit's gain over holding
    action: OrderAction = OrderAction.BUY
    exit: ExitTerms | None = None
    # How the stake was chosen (None on signals stored before these were kept):
    full_kelly: Decimal | None = None  # f* at the best price, fee included (Sizing.full_kelly)
    kelly_multiplier: Decimal | None = None  # trading.kelly_multiplier at sizing time
    stake_cap: Decimal | None = None  # trading.max_position_fraction at sizing time
    market_weight: Decimal | None = None  # the market's share in fair_yes (analysis.market_weight, or "auto"'s)
    reasoning: str = ""
    dry_run: bool = True
    status: SignalStatus = SignalStatus.PENDING
    status_reason: str = ""
    created_at: AwareDatetime
    expires_at: AwareDatetime

    @model_validator(mode="after")
    def _complete(self) -> "TradeSignal":
        if self.action is OrderAction.BUY and (self.exit is not None or None in (
                self.probability, self.model_probability, self.fair_yes, self.edge, self.expected_value)):
            raise ValueError("an entry signal carries the analyst's probabilities, edge and expected value, and no "
                             "exit terms")
        if self.action is OrderAction.SELL and self.exit is None:
            raise ValueError("an exit signal names the position it closes (exit terms)")
        return self

    @property
    def is_exit(self) -> bool:
        return self.action is OrderAction.SELL

    @property
    def proceeds(self) -> Decimal:
        """An exit's expected cash in, after fees, against the book it was priced on."""
        return self.cost - self.fees

    @property
    def reserved(self) -> Decimal:
        """Capital held for this signal until its order's outcome is known: the most the order can cost.

        An exit holds none: it sells what is held (reduce-only), and pays its fee out of what it receives.

        Every contract may fill at the limit price (the book can thin out before the order goes, within
        approval.max_slippage), with the fee at its highest rate for prices up to the limit and every
        trade's rounding (FeeModel.worst_order_fee).
        """
        if self.is_exit:
            return ZERO
        worst = self.market.fees.worst_order_cost(self.contracts, self.limit_price)
        return max(worst, self.cost + self.fees)

    @property
    def expected_outlay(self) -> Decimal:
        """What the order costs against the book the signal was sized on (nothing for an exit)."""
        return ZERO if self.is_exit else self.cost + self.fees

    @property
    def client_order_id(self) -> str:
        return client_order_id_for(self.id)


def client_order_id_for(signal_id: str) -> str:
    """Deterministic, so a retry or restart can only ever name the same order."""
    digest = hashlib.sha256(signal_id.encode()).hexdigest()[:24]
    return f"od-{digest}"


class OrderStatus(str, enum.Enum):
    SUBMITTING = "submitting"  # row written, request not yet answered
    RESTING = "resting"
    FILLED = "filled"
    PARTIALLY_FILLED = "partially_filled"  # final: remainder cancelled (IOC)
    CANCELED = "canceled"  # final, nothing filled
    REJECTED = "rejected"
    UNKNOWN = "unknown"  # outcome not known: look it up by client_order_id

    @property
    def is_final(self) -> bool:
        return self in (OrderStatus.FILLED, OrderStatus.PARTIALLY_FILLED, OrderStatus.CANCELED,
                        OrderStatus.REJECTED)


class OrderRequest(Frozen):
    """An immutable command to a venue; the client order id makes it idempotent.

    A BUY takes `contracts` of `side` paying at most `limit_price` each. A SELL gives back `contracts` of `side`
    that the account holds, receiving at least `limit_price` each; it only ever reduces a position (Kalshi:
    reduce-only, immediate-or-cancel; Polymarket: a SELL of the outcome token held).
    """

    client_order_id: str
    venue: Venue
    market_id: str
    token_id: str = ""  # Polymarket outcome token being bought or sold
    side: Side
    action: OrderAction = OrderAction.BUY
    contracts: Decimal = Field(gt=0)
    limit_price: Price
    time_in_force: Literal["immediate_or_cancel", "fill_or_kill", "good_till_canceled"] = "immediate_or_cancel"


class Fill(Frozen):
    """Contracts traded at one price, in the traded side's terms: paid per contract for a buy, received for a
    sell; the fee is on top of a buy and comes off a sell."""

    contracts: Decimal = Field(gt=0)
    price: Price
    fee: Decimal = ZERO


class OrderResult(Frozen):
    """What a venue says about an order."""

    client_order_id: str
    venue_order_id: str = ""
    status: OrderStatus
    fills: tuple[Fill, ...] = ()
    reason: str = ""
    # The venue showed how many filled but not at what prices (Polymarket's order look-up shows its limit):
    # the fills' prices are a bound (upper for a buy, lower for a sell), and the exact prices already recorded
    # are kept.
    prices_are_bounds: bool = False

    @property
    def filled(self) -> Decimal:
        return sum((f.contracts for f in self.fills), ZERO)

    @property
    def cost(self) -> Decimal:
        return sum((f.contracts * f.price for f in self.fills), ZERO)

    @property
    def fees(self) -> Decimal:
        return sum((f.fee for f in self.fills), ZERO)

    @property
    def average_price(self) -> Decimal | None:
        return (self.cost / self.filled) if self.filled else None


class Order(Frozen):
    id: str
    signal_id: str
    client_order_id: str
    venue: Venue
    market_id: str
    side: Side
    action: OrderAction = OrderAction.BUY
    contracts: Decimal
    limit_price: Decimal
    status: OrderStatus
    paper: bool
    venue_order_id: str = ""
    filled: Decimal = ZERO
    average_price: Decimal | None = None
    fees: Decimal = ZERO
    reason: str = ""
    created_at: AwareDatetime
    updated_at: AwareDatetime


class Position(Frozen):
    """What the desk holds in one market on one side, in one mode. Exits shrink `contracts` and take the sold
    share of `cost` and `fees` with them (average cost); `realized_pnl` adds up every exit and the settlement."""

    id: int | None = None  # the store's row id: how a person names it (/desk close 12)
    venue: Venue
    market_id: str
    side: Side
    paper: bool
    contracts: Decimal
    cost: Decimal  # dollars paid for the contracts, fees excluded
    fees: Decimal
    title: str = ""
    status: Literal["open", "closed"] = "open"
    realized_pnl: Decimal = ZERO
    opened_at: AwareDatetime
    closed_at: AwareDatetime | None = None

    @property
    def exposure(self) -> Decimal:
        return self.cost + self.fees if self.status == "open" else ZERO


class VenueOrder(Frozen):
    """An order working at a venue, as its listing shows it (for finding orders the desk did not place)."""

    venue: Venue
    order_id: str
    client_order_id: str = ""
    market_id: str
    side: str = ""
    remaining: Decimal = ZERO


class Resolution(Frozen):
    """How a market resolved: what one YES contract pays (1 YES won, 0 NO won, between for a split)."""

    venue: Venue
    market_id: str
    yes_payout: Decimal = Field(ge=0, le=1)
    detail: str = ""  # the venue's words, e.g. "result yes" or "outcomePrices [1, 0]"

    def payout(self, side: Side) -> Decimal:
        """Dollars one contract of `side` is paid at settlement."""
        return self.yes_payout if side is Side.YES else ONE - self.yes_payout


class Rejection(Frozen):
    """Why a market did not become a signal: a code for machines, a detail for people."""

    market_key: str
    reason: str
    detail: str = ""


class CycleError(Frozen):
    stage: str
    venue: str = ""
    message: str
    at: AwareDatetime = Field(default_factory=utcnow)


class VenueScanStats(BaseModel):
    """How one venue's scan went: filled in by the venue client while it pages."""

    pages: int = 0
    requests: int = 0
    retries: int = 0
    markets: int = 0  # normalised markets returned
    skipped: int = 0  # objects that were not tradable binary markets or could not be read
    skip_reasons: dict[str, int] = Field(default_factory=dict)  # skips the funnel names (e.g. an unknown protocol)
    seconds: float = 0.0
    error: str = ""


class CycleReport(BaseModel):
    """Counts at every stage of one cycle. Mutable while the cycle runs, then frozen by use."""

    cycle_id: str
    trigger: str = "manual"
    started_by: str = ""
    dry_run: bool = True
    started_at: AwareDatetime = Field(default_factory=utcnow)
    finished_at: AwareDatetime | None = None
    scanned: dict[str, int] = Field(default_factory=dict)  # per venue
    venue_stats: dict[str, VenueScanStats] = Field(default_factory=dict)
    passed_filters: int = 0
    analysed: int = 0
    cached: int = 0
    skipped_budget: int = 0
    skipped_deadline: int = 0
    invalid: int = 0
    opportunities: int = 0
    signals: int = 0  # entries and exits made pending
    exits: int = 0  # of those, exits: held positions the desk proposes selling
    positions_reviewed: int = 0  # open positions priced against their bids (and re-estimated) for an exit
    holds: Counter[str] = Field(default_factory=Counter)  # why reviewed positions were kept (pipeline/exits.Hold codes)
    risk_denied: int = 0
    rejections: Counter[str] = Field(default_factory=Counter)
    timings: dict[str, float] = Field(default_factory=dict)  # seconds per stage
    llm_cost_usd: Decimal = ZERO
    errors: list[CycleError] = Field(default_factory=list)
    signal_ids: list[str] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)  # things the reader should know, e.g. "desk is paused"

    @property
    def total_scanned(self) -> int:
        return sum(self.scanned.values())

    def top_rejections(self, n: int = 5) -> list[tuple[str, int]]:
        return self.rejections.most_common(n)

    def reject(self, rejection: Rejection) -> None:
        self.rejections[rejection.reason] += 1
