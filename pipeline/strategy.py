"""The money math, pure: no I/O, no clocks, no randomness (callers pass `now` and ids).

filter -> (analysis elsewhere) -> find_opportunity -> size_position -> build_signal -> rank.
Every market that is dropped gets a Rejection with a machine code and a human detail.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from .config import ScanConfig, TradingConfig
from .models import (ONE, ZERO, BookLevel, Estimate, FeeModel, Market, Opportunity, OrderBook, Rejection, Side,
                     TradeSignal, round_down, round_up)
from .order_rules import contract_step, minimum_contracts, minimum_notional

# Rejection codes, in the order the filter checks them.
ALREADY_HELD = "already_held"  # the cycle's own: a market the desk holds is reviewed for an exit instead
NOT_OPEN = "not_open"
NO_QUOTE = "no_quote"
CLOSES_TOO_SOON = "closes_too_soon"
CLOSES_TOO_LATE = "closes_too_late"
PRICE_OUT_OF_RANGE = "price_out_of_range"
SPREAD_TOO_WIDE = "spread_too_wide"
LOW_VOLUME = "low_volume"
LOW_LIQUIDITY = "low_liquidity"
OVER_ANALYSIS_LIMIT = "over_analysis_limit"
EMPTY_BOOK = "empty_book"
FEES_UNKNOWN = "fees_unknown"
EDGE_BELOW_MINIMUM = "edge_below_minimum"
SIZE_BELOW_MINIMUM = "size_below_minimum"
NO_EDGE_AFTER_FEES = "no_edge_after_fees"

_HOUR = Decimal(3600)
_DAY = Decimal(86400)


def _fmt(value: Decimal, places: str = "0.01") -> str:
    return str(value.quantize(Decimal(places)))


def check_market(market: Market, scan: ScanConfig, now: datetime) -> Rejection | None:
    """The first filter a market fails, or None if it may be analysed."""

    def no(reason: str, detail: str) -> Rejection:
        return Rejection(market_key=market.key, reason=reason, detail=detail)

    if market.status != "open":
        return no(NOT_OPEN, f"status is {market.status}")
    if market.yes_bid is None or market.yes_ask is None:
        return no(NO_QUOTE, "no bid or no ask on YES")
    seconds_left = Decimal((market.close_time - now).total_seconds())
    # Round the shown figure away from the limit, so the sentence never contradicts the decision.
    if seconds_left < scan.min_hours_to_close * _HOUR:
        shown = round_down(seconds_left / _HOUR, Decimal("0.01"))
        return no(CLOSES_TOO_SOON, f"closes in {shown} h (minimum {scan.min_hours_to_close} h)")
    if seconds_left > scan.max_days_to_close * _DAY:
        shown = round_up(seconds_left / _DAY, Decimal("0.01"))
        return no(CLOSES_TOO_LATE, f"closes in {shown} days (maximum {scan.max_days_to_close})")
    mid = (market.yes_bid + market.yes_ask) / 2
    if not scan.min_price <= mid <= scan.max_price:
        return no(PRICE_OUT_OF_RANGE, f"mid {_fmt(mid, '0.001')} outside {scan.min_price}-{scan.max_price}")
    spread = market.yes_ask - market.yes_bid
    if spread > scan.max_spread:
        return no(SPREAD_TOO_WIDE, f"spread {_fmt(spread, '0.001')} > {scan.max_spread}")
    if market.volume < scan.min_volume:
        return no(LOW_VOLUME, f"volume {_fmt(market.volume, '1')} < {scan.min_volume}")
    if market.liquidity < scan.min_liquidity:
        return no(LOW_LIQUIDITY, f"liquidity ${_fmt(market.liquidity, '1')} < ${scan.min_liquidity}")
    return None


@dataclass(frozen=True)
class FilterResult:
    selected: list[Market]
    rejections: list[Rejection]


def filter_markets(markets: list[Market], scan: ScanConfig, now: datetime) -> FilterResult:
    """Apply every filter, then keep the `max_markets_to_analyze` most traded."""
    passed: list[Market] = []
    rejections: list[Rejection] = []
    for market in markets:
        rejection = check_market(market, scan, now)
        if rejection is None:
            passed.append(market)
        else:
            rejections.append(rejection)
    passed.sort(key=lambda m: (-m.volume, m.key))
    limit = scan.max_markets_to_analyze
    for market in passed[limit:]:
        rejections.append(Rejection(market_key=market.key, reason=OVER_ANALYSIS_LIMIT,
                                    detail=f"only the {limit} most traded markets are analysed per cycle"))
    return FilterResult(selected=passed[:limit], rejections=rejections)


DEFAULT_MARKET_WEIGHT = Decimal("0.5")


def initial_market_weight(configured: Decimal | str) -> Decimal:
    """analysis.market_weight as a number: "auto" starts at the default until the record sets it (Desk.scan)."""
    return configured if isinstance(configured, Decimal) else DEFAULT_MARKET_WEIGHT


def blend(model_probability: Decimal, market_probability: Decimal | None, market_weight: Decimal) -> Decimal:
    """fair = w * model + (1 - w) * market, with `w` = 1 - market_weight.

    `analysis.market_weight` is the share given to the market; the model keeps the rest.
    """
    if market_probability is None:
        return model_probability
    return (ONE - market_weight) * model_probability + market_weight * market_probability


def side_edge(market: Market, book: OrderBook, estimate: Estimate, side: Side) -> Opportunity | None:
    """Edge of buying `side` at its best executable price, net of the marginal taker fee."""
    price = book.best_ask(side)
    if price is None:
        return None
    fair_yes = estimate.fair_probability
    probability = fair_yes if side is Side.YES else ONE - fair_yes
    fee = market.fees.fee_per_contract(price)
    return Opportunity(market=market, estimate=estimate, side=side, price=price,
                       probability=probability, fee_per_contract=fee, edge=probability - price - fee)


def find_opportunity(market: Market, book: OrderBook, estimate: Estimate,
                     min_edge: Decimal) -> Opportunity | Rejection:
    """The better of YES-at-the-ask and NO-at-(1 - bid), if its net edge clears `min_edge`."""
    if market.fee_model is None:
        return Rejection(market_key=market.key, reason=FEES_UNKNOWN,
                         detail="the venue's fee schedule for this market was not read; it is not priced")
    candidates = [o for o in (side_edge(market, book, estimate, s) for s in Side) if o]
    if not candidates:
        return Rejection(market_key=market.key, reason=EMPTY_BOOK, detail="nothing to buy on either side")
    best = max(candidates, key=lambda o: (o.edge, o.side is Side.YES))
    if best.edge < min_edge:
        return Rejection(market_key=market.key, reason=EDGE_BELOW_MINIMUM,
                         detail=f"best is {best.side.value.upper()} at {best.price}: edge {_fmt(best.edge, '0.001')}"
                                f" < {min_edge}")
    return best


def kelly_fraction(probability: Decimal, price: Decimal) -> Decimal:
    """f* = (q - p) / (1 - p) for a contract paying 1 bought at p; 0 when there is no edge."""
    if price >= ONE or probability <= price:
        return ZERO
    return (probability - price) / (ONE - price)


@dataclass(frozen=True)
class Sizing:
    contracts: Decimal
    cost: Decimal
    fees: Decimal
    average_price: Decimal
    limit_price: Decimal
    full_kelly: Decimal  # f* at the best price, fee included
    stake_fraction: Decimal  # (cost + fees) / bankroll actually committed
    edge: Decimal  # probability - average price - fees per contract
    expected_value: Decimal


def _fill_cost(levels: list[tuple[BookLevel, Decimal]], fees: FeeModel) -> tuple[Decimal, Decimal, Decimal]:
    """(contracts, cost, fees) of taking `n` at each level; each level's fee is rounded on its own."""
    contracts = sum((n for _, n in levels), ZERO)
    cost = sum((lvl.price * n for lvl, n in levels), ZERO)
    fee = sum((fees.fee(n, lvl.price) for lvl, n in levels), ZERO)
    return contracts, cost, fee


def _first(levels: list[tuple[BookLevel, Decimal]], total: Decimal) -> list[tuple[BookLevel, Decimal]]:
    """The best levels' contracts up to `total`: what an order for `total` takes from them."""
    kept: list[tuple[BookLevel, Decimal]] = []
    left = total
    for level, n in levels:
        if left <= 0:
            break
        kept.append((level, min(n, left)))
        left -= kept[-1][1]
    return kept


def size_position(opportunity: Opportunity, book: OrderBook, bankroll: Decimal, trading: TradingConfig
                  ) -> Sizing | Rejection:
    """Fractional Kelly, capped by `max_position_fraction` and by the book up to the limit price.

    The limit price is the worst level whose own marginal edge still clears `min_edge`, so walking the
    book never buys contracts that are not worth buying. The count is then cut to one the venue takes at
    that limit (pipeline/order_rules.py: Polymarket's amount decimals, Kalshi's contract step) and to
    what the budget pays for, fees included.
    """
    market, side, q = opportunity.market, opportunity.side, opportunity.probability
    fees = market.fees
    key, tif = market.key, trading.time_in_force
    effective_price = opportunity.price + opportunity.fee_per_contract
    full_kelly = kelly_fraction(q, effective_price)
    if full_kelly <= 0 or bankroll <= 0:
        return Rejection(market_key=key, reason=NO_EDGE_AFTER_FEES, detail="Kelly fraction is zero after fees")
    budget = min(trading.kelly_multiplier * full_kelly, trading.max_position_fraction) * bankroll

    taken: list[tuple[BookLevel, Decimal]] = []
    remaining = budget
    for level in book.asks_for(side):
        unit = level.price + fees.fee_per_contract(level.price)
        if q - unit < trading.min_edge or remaining <= 0:
            break
        if level.size < market.contract_step:
            continue  # a fractional remnant we cannot take in whole steps; better prices may follow
        n = round_down(min(level.size, remaining / unit), market.contract_step)
        if n <= 0:
            break  # the budget is spent
        taken.append((level, n))
        remaining -= n * unit

    # Cut to a count the venue takes at the limit it ends up with, then give back steps until the rounded-up
    # fees fit the budget. Fewer contracts can mean an earlier level, so a new limit and a new step.
    total = sum((n for _, n in taken), ZERO)
    chosen: list[tuple[BookLevel, Decimal]] = []
    while total > 0:
        chosen = _first(taken, total)
        step = contract_step(market, chosen[-1][0].price, tif)
        if total % step:
            total = round_down(total, step)
            continue
        _, cost, fee = _fill_cost(chosen, fees)
        if cost + fee <= budget:
            break
        total -= step
    if total <= 0:
        chosen = []
    contracts, cost, fee = _fill_cost(chosen, fees)
    limit_price = chosen[-1][0].price if chosen else opportunity.price

    least = max(minimum_contracts(market, tif), contract_step(market, limit_price, tif))
    if contracts < least:
        return Rejection(market_key=key, reason=SIZE_BELOW_MINIMUM,
                         detail=f"Kelly size ${_fmt(budget)} buys {contracts} contracts; minimum is {least}")
    floor = minimum_notional(market)
    if contracts * limit_price < floor:
        return Rejection(market_key=key, reason=SIZE_BELOW_MINIMUM,
                         detail=f"Kelly size ${_fmt(budget)} buys {contracts} at up to {limit_price}: "
                                f"${_fmt(contracts * limit_price)}, below the venue's ${floor} minimum order")
    average = cost / contracts
    expected_value = contracts * q - cost - fee
    if expected_value <= 0:
        return Rejection(market_key=key, reason=NO_EDGE_AFTER_FEES,
                         detail=f"expected value ${_fmt(expected_value)} after ${_fmt(fee)} fees")
    return Sizing(contracts=contracts, cost=cost, fees=fee, average_price=average, limit_price=limit_price,
                  full_kelly=full_kelly, stake_fraction=(cost + fee) / bankroll,
                  edge=q - average - fee / contracts, expected_value=expected_value)


def build_signal(*, signal_id: str, cycle_id: str, opportunity: Opportunity, sizing: Sizing, dry_run: bool,
                 now: datetime, expiry: timedelta, trading: TradingConfig) -> TradeSignal:
    """The pending signal, carrying the Kelly inputs (`trading`'s multiplier and cap) so a reader sees how the
    stake was chosen."""
    estimate = opportunity.estimate
    return TradeSignal(
        id=signal_id, cycle_id=cycle_id, market=opportunity.market, side=opportunity.side,
        limit_price=sizing.limit_price, contracts=sizing.contracts, cost=sizing.cost, fees=sizing.fees,
        average_price=sizing.average_price, probability=opportunity.probability,
        model_probability=estimate.model_probability, fair_yes=estimate.fair_probability, edge=sizing.edge,
        kelly_fraction=sizing.stake_fraction, expected_value=sizing.expected_value, full_kelly=sizing.full_kelly,
        kelly_multiplier=trading.kelly_multiplier, stake_cap=trading.max_position_fraction,
        market_weight=estimate.market_weight,
        reasoning=estimate.reasoning, dry_run=dry_run, created_at=now, expires_at=now + expiry)


def rank(signals: list[TradeSignal]) -> list[TradeSignal]:
    """Most expected dollars first; edge, then market key, break ties deterministically."""
    return sorted(signals, key=lambda s: (-s.expected_value, -s.edge, s.market.key))


@dataclass(frozen=True)
class Recheck:
    """A pending signal priced again against a fresh book, just before trading."""

    ok: bool
    price: Decimal | None
    edge: Decimal | None
    reason: str = ""
    code: str = "stale"  # why it was refused: stale (the book moved) or position_changed (an exit's position)


def recheck(signal: TradeSignal, book: OrderBook, min_edge: Decimal, max_slippage: Decimal,
            fees: FeeModel | None = None) -> Recheck:
    """Refuse when the price ran more than `max_slippage` past the signal's, the edge is gone, or the venue's
    fees (`fees`, the schedule in force now) would make the order cost more than the signal reserved."""
    price = book.best_ask(signal.side)
    if price is None:
        return Recheck(False, None, None, f"no {signal.side.value.upper()} offers left in the book")
    current = fees or signal.market.fees
    edge = signal.probability - price - current.fee_per_contract(price)
    if price > signal.average_price + max_slippage:
        return Recheck(False, price, edge, f"price moved from {_fmt(signal.average_price, '0.001')} to {price} "
                                           f"(more than the {max_slippage} slippage allowed)")
    if edge < min_edge:
        return Recheck(False, price, edge, f"edge is now {_fmt(edge, '0.001')} at {price}, below {min_edge}")
    worst = current.worst_order_cost(signal.contracts, signal.limit_price)
    if worst > signal.reserved:
        return Recheck(False, price, edge, f"the venue's fees changed since the signal ({current.source or 'new'}"
                                           f" schedule): the order could cost ${_fmt(worst)}, more than the "
                                           f"${_fmt(signal.reserved)} reserved")
    return Recheck(True, price, edge)
