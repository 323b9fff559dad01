"""Getting out, pure: when to propose selling a held position, how much the book takes, and what it returns.

No I/O, no clocks (callers pass `now` and ids). Prices are in the held side's terms: selling YES hits the YES
bids; selling NO hits the NO bids, which are the YES asks mirrored (OrderBook.bids_for).

The rules, first that applies wins:
- closing_soon: the market closes within trading.exit.hours_before_close;
- stop_loss: selling at the best bid, after its fee, returns at most (1 - trading.exit.stop_loss_fraction) of
  what the position cost, entry fees included;
- take_profit / edge_gone: the best bid, after its fee, beats the analyst's blended fair value of the side by
  trading.min_edge (take profit when that bid is above the average price paid, edge gone when below);
- manual: a person asked (/desk close), whatever the numbers.
An exit sells the bids best first, never further than approval.max_slippage below the best one, and for an edge
exit only the levels that still beat the fair value by min_edge: a thin book is not dumped into.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from .config import TradingConfig
from .models import (ONE, ZERO, Estimate, ExitReason, ExitTerms, FeeModel, Market, OrderAction, OrderBook, Position,
                     Side, TradeSignal, round_down)
from .order_rules import contract_step, order_size_problem
from .strategy import Recheck

EXIT_TIME_IN_FORCE = "immediate_or_cancel"  # Kalshi takes reduce-only orders only as IOC; a sell never rests
EDGE_REASONS = frozenset({ExitReason.TAKE_PROFIT, ExitReason.EDGE_GONE})
_HOUR = Decimal(3600)


def _fmt(value: Decimal, places: str = "0.01") -> str:
    return str(value.quantize(Decimal(places)))


def side_probability(fair_yes: Decimal, side: Side) -> Decimal:
    return fair_yes if side is Side.YES else ONE - fair_yes


def exit_edge(price: Decimal, fair: Decimal, fees: FeeModel) -> Decimal:
    """What selling one contract at `price` beats holding it by: the price less its fee, less the fair value."""
    return price - fees.fee_per_contract(price) - fair


@dataclass(frozen=True)
class ExitQuote:
    """What selling into the book returns now."""

    contracts: Decimal  # what the bids take (at most what is held)
    proceeds: Decimal  # gross dollars received
    fees: Decimal  # taker fees, each level's rounded on its own
    average_price: Decimal
    limit_price: Decimal  # the lowest level taken: the least the order accepts
    best_bid: Decimal
    held: Decimal  # what the position held

    @property
    def net(self) -> Decimal:
        return self.proceeds - self.fees

    @property
    def partial(self) -> bool:
        return self.contracts < self.held


@dataclass(frozen=True)
class Hold:
    """Why a position is kept (a rule did not trigger, or the book takes nothing): told in the cycle report."""

    code: str
    detail: str


def quote_exit(held: Decimal, market: Market, book: OrderBook, side: Side, max_slippage: Decimal,
               fair: Decimal | None = None, min_edge: Decimal | None = None) -> ExitQuote | Hold:
    """Sell up to `held` into the bids best first, down to `max_slippage` below the best bid; with `fair` and
    `min_edge`, only levels whose exit edge still clears `min_edge`. Counts are cut to what the venue takes."""
    levels = book.bids_for(side)
    if not levels:
        return Hold("no_bids", f"no {side.value.upper()} bids to sell into")
    fees = market.fees
    best = levels[0].price
    floor = best - max_slippage
    taken: list[tuple[Decimal, Decimal]] = []
    left = held
    for level in levels:
        if level.price < floor or left <= 0:
            break
        if fair is not None and min_edge is not None and exit_edge(level.price, fair, fees) < min_edge:
            break
        step = contract_step(market, level.price, EXIT_TIME_IN_FORCE, action=OrderAction.SELL)
        n = round_down(min(level.size, left), step)
        if n <= 0:
            continue  # a remnant smaller than one step; a lower level may still take whole steps
        taken.append((level.price, n))
        left -= n
    contracts = sum((n for _, n in taken), ZERO)
    if contracts <= 0:
        smallest = contract_step(market, best, EXIT_TIME_IN_FORCE, action=OrderAction.SELL)
        if held < smallest:
            return Hold("below_venue_step", f"the {held} held is less than the smallest sale the venue takes "
                                            f"({smallest}); it is kept until the market settles")
        return Hold("no_bids", f"the {side.value.upper()} bids within {max_slippage} of the best ({best}) take "
                               f"none of the {held} held in the steps the venue trades")
    limit = taken[-1][0]
    problem = order_size_problem(market, contracts, limit, EXIT_TIME_IN_FORCE, action=OrderAction.SELL)
    if problem:
        return Hold("size_below_minimum", f"{problem}; what the venue will not take is kept until the market "
                                          "settles")
    proceeds = sum((p * n for p, n in taken), ZERO)
    fee = sum((fees.fee(n, p) for p, n in taken), ZERO)
    return ExitQuote(contracts=contracts, proceeds=proceeds, fees=fee, average_price=proceeds / contracts,
                     limit_price=limit, best_bid=best, held=held)


@dataclass(frozen=True)
class ExitCase:
    reason: ExitReason
    detail: str
    quote: ExitQuote


def review_position(position: Position, market: Market, book: OrderBook, estimate: Estimate | None,
                    trading: TradingConfig, max_slippage: Decimal, now: datetime) -> ExitCase | Hold:
    """Should the desk propose selling this position now? The first rule that applies (module docstring)."""
    side, rules = position.side, trading.exit
    best = book.best_bid(side)
    if best is None:
        return Hold("no_bids", f"no {side.value.upper()} bids to sell into")
    hours_left = Decimal((market.close_time - now).total_seconds()) / _HOUR
    if rules.hours_before_close is not None and hours_left <= rules.hours_before_close:
        return _case(ExitReason.CLOSING_SOON, f"closes in {_fmt(max(hours_left, ZERO), '0.1')} h (trading.exit."
                                              f"hours_before_close {rules.hours_before_close})",
                     position, market, book, max_slippage)
    basis = position.cost + position.fees
    if rules.stop_loss_fraction is not None and basis > 0:
        value = (best - market.fees.fee_per_contract(best)) * position.contracts
        if value <= basis * (ONE - rules.stop_loss_fraction):
            lost = ONE - value / basis
            return _case(ExitReason.STOP_LOSS, f"worth {_fmt(value)} at the best bid against {_fmt(basis)} paid, "
                                               f"{_fmt(lost * 100, '0.1')}% down (trading.exit.stop_loss_fraction "
                                               f"{rules.stop_loss_fraction})", position, market, book, max_slippage)
    if estimate is None:
        return Hold("no_estimate", "no fresh estimate, and no rule that needs none applies")
    fair = side_probability(estimate.fair_probability, side)
    edge = exit_edge(best, fair, market.fees)
    if edge < trading.min_edge:
        return Hold("edge_below_minimum", f"selling at {best} beats the fair {_fmt(fair, '0.001')} by "
                                          f"{_fmt(edge, '0.001')}, below {trading.min_edge}")
    paid = position.cost / position.contracts if position.contracts else ZERO
    reason = ExitReason.TAKE_PROFIT if best > paid else ExitReason.EDGE_GONE
    detail = (f"the best bid {best} beats the analyst's fair {_fmt(fair, '0.001')} by {_fmt(edge, '0.001')} after "
              f"fees (paid {_fmt(paid, '0.001')})")
    return _case(reason, detail, position, market, book, max_slippage, fair=fair, min_edge=trading.min_edge)


def _case(reason: ExitReason, detail: str, position: Position, market: Market, book: OrderBook,
          max_slippage: Decimal, *, fair: Decimal | None = None, min_edge: Decimal | None = None) -> ExitCase | Hold:
    quote = quote_exit(position.contracts, market, book, position.side, max_slippage, fair, min_edge)
    return quote if isinstance(quote, Hold) else ExitCase(reason, detail, quote)


def build_exit_signal(*, signal_id: str, cycle_id: str, position: Position, market: Market, case: ExitCase,
                      estimate: Estimate | None, dry_run: bool, now: datetime, expiry: timedelta,
                      requested_by: str = "") -> TradeSignal:
    """The pending exit signal: what selling returns against the book now, and, with an estimate, what holding is
    worth instead."""
    quote, side = case.quote, position.side
    assert position.id is not None, "a stored position has an id"
    held = position.contracts
    basis = (position.cost + position.fees) if quote.contracts == held else (
        (position.cost + position.fees) * quote.contracts / held)
    fair = side_probability(estimate.fair_probability, side) if estimate is not None else None
    return TradeSignal(
        id=signal_id, cycle_id=cycle_id, market=market, side=side, limit_price=quote.limit_price,
        contracts=quote.contracts, cost=quote.proceeds, fees=quote.fees, average_price=quote.average_price,
        probability=fair, model_probability=estimate.model_probability if estimate is not None else None,
        fair_yes=estimate.fair_probability if estimate is not None else None,
        edge=(quote.average_price - quote.fees / quote.contracts - fair) if fair is not None else None,
        expected_value=(quote.net - quote.contracts * fair) if fair is not None else None,
        market_weight=estimate.market_weight if estimate is not None else None,
        reasoning=estimate.reasoning if estimate is not None else "",
        action=OrderAction.SELL,
        exit=ExitTerms(reason=case.reason, position_id=position.id, held=held, basis=basis, detail=case.detail,
                       requested_by=requested_by),
        dry_run=dry_run, created_at=now, expires_at=now + expiry)


def recheck_exit(signal: TradeSignal, book: OrderBook, held_now: Decimal | None, min_edge: Decimal,
                 max_slippage: Decimal, fees: FeeModel) -> Recheck:
    """An exit priced again just before it goes: the position must still hold what it sells, the best bid must not
    have fallen more than `max_slippage` below the signal's average, and an edge exit must still have its edge."""
    assert signal.exit is not None
    side = signal.side.value.upper()
    if not held_now:
        return Recheck(False, None, None, "the position is closed; there is nothing left to sell",
                       code="position_changed")
    if held_now < signal.contracts:
        return Recheck(False, None, None, f"the position holds {held_now} now, fewer than the {signal.contracts} "
                                          "this exit sells; close it again for a fresh exit", code="position_changed")
    best = book.best_bid(signal.side)
    if best is None:
        return Recheck(False, None, None, f"no {side} bids left in the book")
    edge = exit_edge(best, signal.probability, fees) if signal.probability is not None else None
    if best < signal.average_price - max_slippage:
        return Recheck(False, best, edge, f"the best {side} bid fell from {_fmt(signal.average_price, '0.001')} to "
                                          f"{best} (more than the {max_slippage} slippage allowed)")
    if best < signal.limit_price:
        return Recheck(False, best, edge, f"the best {side} bid {best} is below this exit's limit "
                                          f"{signal.limit_price}")
    if signal.exit.reason in EDGE_REASONS and edge is not None and edge < min_edge:
        return Recheck(False, best, edge, f"selling at {best} now beats the fair value by {_fmt(edge, '0.001')}, "
                                          f"below {min_edge}: the reason to exit is gone")
    return Recheck(True, best, edge)
