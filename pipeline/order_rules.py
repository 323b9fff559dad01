"""Which order sizes a venue accepts at a given price: pure, shared by the sizer and the Polymarket client (which
refuses before signing what the CLOB would refuse), so a signal is only ever sized to an order the venue takes.

Kalshi counts contracts in steps of 0.01 (fixed-point counts), or whole contracts where the operator set
`kalshi.fractional_contracts: false` or a market still says `fractional_trading_enabled: false`; any price on
the market's tick is fine.

Polymarket's CLOB checks the two amounts of a signed order, not the share count: a BUY's makerAmount is the
pUSD paid and its takerAmount the shares received, a SELL's makerAmount the shares given and its takerAmount
the pUSD received, and each may carry only so many decimals. A market order (FAK/FOK) BUY takes pUSD to 2
decimals and shares to 4; a limit order (GTC/GTD) BUY takes pUSD to 4 and shares to 2. A SELL keeps its
makerAmount (shares) to 2 decimals and its takerAmount (pUSD) to 4, market or limit: "invalid amounts, the sell
orders maker amount supports a max accuracy of 2 decimals, taker amount a max of 4 decimals" is the refusal
public clients quote for a FOK SELL, and py-clob-client-v2's builder rounds both SELL kinds that way
(get_order_amounts / get_market_order_amounts: shares to 2, pUSD to the tick's amount decimals, 4 on a 0.01
tick; the desk keeps 4 on finer ticks too, which is never more than the CLOB takes). At a price p the share
count n must therefore keep n (shares) and n * p (pUSD) both on their grids: the smallest such n is the share
step at that price, e.g. 0.25 at 0.44 for a FAK BUY (0.25 * 0.44 = 0.11), 0.01 for a GTC BUY or any SELL on a
cent tick. The desk keeps share counts to 2 decimals as well, so the step is the least common multiple of the
two.

Minimums: an order that crosses the book must be worth at least $1 at its limit price, a SELL as much as a BUY
("invalid amount for a marketable SELL order, min size: $1" is quoted by public clients beside the BUY's; every
order the desk sends crosses: its limit is a level of the book it was sized on), so a position worth less than
$1 at the bid cannot be sold on the CLOB; a limit order (GTC/GTD) must also be at least the market's minimum
size in shares, which market orders (FAK/FOK) are exempt from (assumed the same for a SELL). Sources: the CLOB's
own refusals quoted in py-clob-client(-v2) and rs-clob-client issues (README, Polymarket).
"""

from __future__ import annotations

from decimal import Decimal
from math import gcd

from .models import ONE, ZERO, Market, OrderAction, Venue, plain

MARKET_ORDER_TIFS = frozenset({"immediate_or_cancel", "fill_or_kill"})  # FAK / FOK on the CLOB
POLYMARKET_MARKETABLE_MINIMUM = Decimal(1)  # pUSD, for any order that crosses the book, BUY or SELL
# is a market order -> (decimals of the pUSD amount, of the share amount), for each direction
POLYMARKET_BUY_AMOUNT_DECIMALS: dict[bool, tuple[int, int]] = {True: (2, 4), False: (4, 2)}
POLYMARKET_SELL_AMOUNT_DECIMALS: dict[bool, tuple[int, int]] = {True: (4, 2), False: (4, 2)}
POLYMARKET_AMOUNT_DECIMALS = {OrderAction.BUY: POLYMARKET_BUY_AMOUNT_DECIMALS,
                              OrderAction.SELL: POLYMARKET_SELL_AMOUNT_DECIMALS}


def _decimals(value: Decimal) -> int:
    """Digits after the point of an exact decimal (0.440 -> 2, 5 -> 0)."""
    exponent = value.normalize().as_tuple().exponent
    return max(0, -int(exponent))


def polymarket_share_step(price: Decimal, *, market_order: bool, action: OrderAction = OrderAction.BUY) -> Decimal:
    """The smallest share count n > 0 an order may trade whose shares and pUSD (n * price) both meet the CLOB's
    decimals for its direction and type."""
    if not ZERO < price < ONE:
        raise ValueError(f"price {price} is not between 0 and 1")
    usd_places, share_places = POLYMARKET_AMOUNT_DECIMALS[action][market_order]
    places = _decimals(price)
    numerator = int(price.scaleb(places))  # price = numerator / 10^places
    # n = k / 10^share_places; n * price = k * numerator / 10^(share_places + places) must be a multiple of
    # 10^-usd_places, i.e. 10^(share_places + places - usd_places) must divide k * numerator.
    power = share_places + places - usd_places
    if power <= 0:
        k = 1
    else:
        modulus = 10 ** power
        k = modulus // gcd(modulus, numerator)
    return plain(Decimal(k).scaleb(-share_places))


def _lcm(a: Decimal, b: Decimal) -> Decimal:
    places = max(_decimals(a), _decimals(b))
    x, y = int(a.scaleb(places)), int(b.scaleb(places))
    return plain(Decimal(x * y // gcd(x, y)).scaleb(-places))


def contract_step(market: Market, price: Decimal, time_in_force: str,
                  action: OrderAction = OrderAction.BUY) -> Decimal:
    """The step an order's contract count must be a multiple of, buying (or selling) at `price`. Kalshi's step
    is the market's, whichever way."""
    if market.venue is Venue.POLYMARKET:
        rule = polymarket_share_step(price, market_order=time_in_force in MARKET_ORDER_TIFS, action=action)
        return _lcm(rule, market.contract_step)
    return market.contract_step


def minimum_notional(market: Market) -> Decimal:
    """The least an order that crosses the book may be worth at its limit price (Polymarket's $1, for a SELL as
    for a BUY)."""
    return POLYMARKET_MARKETABLE_MINIMUM if market.venue is Venue.POLYMARKET else ZERO


def minimum_contracts(market: Market, time_in_force: str) -> Decimal:
    """The market's minimum order size, which Polymarket applies to limit orders only (a SELL's assumed alike)."""
    if market.venue is Venue.POLYMARKET and time_in_force in MARKET_ORDER_TIFS:
        return ZERO
    return market.min_order_size


def order_size_problem(market: Market, contracts: Decimal, price: Decimal, time_in_force: str,
                       action: OrderAction = OrderAction.BUY) -> str:
    """Why `contracts` at `price` is not an order the venue takes, or "" when it is."""
    step = contract_step(market, price, time_in_force, action)
    unit = "shares" if market.venue is Venue.POLYMARKET else "contracts"
    if contracts <= 0 or contracts % step != 0:
        return f"{contracts} {unit} is not a multiple of {step}, the step an order at {price} must keep"
    least = minimum_contracts(market, time_in_force)
    if contracts < least:
        return f"{contracts} {unit} is below the market's minimum order size of {least}"
    floor = minimum_notional(market)
    if contracts * price < floor:
        return f"{contracts} {unit} at {price} is worth ${contracts * price}, below the ${floor} minimum"
    return ""
