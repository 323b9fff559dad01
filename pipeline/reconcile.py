"""Reconciliation: every live order that is not final is checked at its venue, never re-sent.

Run on start and every few minutes. For each live order still `submitting` (and old enough not
to be in flight in this process), `unknown` or `resting`, the venue is asked by client order id:
- it has the order: its status and fills are recorded and the signal moves accordingly;
- it has no record of it: the order never arrived, so it is final (rejected), the signal fails
  and its capital is released;
- it cannot be asked (or has no answer yet): nothing changes; the order is listed as unresolved.
A final order whose signal still holds a reservation (a move that lost a race) is repaired too.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from .cancel import CancelReport
from .executor import LIVE_SIGNAL_STATUS
from .models import (Order, OrderResult, OrderStatus, SignalStatus, TradeSignal, Venue, VenueOrder, can_move,
                     utcnow)
from .reporter import scrub
from .store import Store
from .venues.base import VenueClient

log = logging.getLogger(__name__)

ACTOR = "reconciler"
OPEN_ORDER_STATUSES = (OrderStatus.SUBMITTING, OrderStatus.UNKNOWN, OrderStatus.RESTING)


@dataclass(frozen=True)
class ReconciledOrder:
    order: Order
    title: str
    before: OrderStatus
    after: OrderStatus
    note: str
    signal: TradeSignal | None = None  # as stored after reconciliation, so its message can be redrawn


def cancelled_items(cancels: CancelReport) -> list[ReconciledOrder]:
    """What the kill switch changed, as items whose signal messages a front end redraws."""
    notes = [(c, "cancelled: the desk is HALTED") for c in cancels.cancelled]
    notes += [(c, "filled before the kill switch's cancel reached it") for c in cancels.filled_first]
    return [ReconciledOrder(c.order, c.signal.market.title, c.before, c.order.status, note, c.signal)
            for c, note in notes]


@dataclass(frozen=True)
class PositionMismatch:
    """The venue and the desk disagree about a position (signed: + YES, - NO contracts)."""

    venue: Venue
    market_id: str
    ours: Decimal
    theirs: Decimal

    @property
    def note(self) -> str:
        if self.ours == 0:
            return f"the venue holds {self.theirs:+} the desk does not know of (not adopted)"
        if self.theirs == 0:
            return f"the desk records {self.ours:+} the venue does not hold"
        return f"the desk records {self.ours:+}, the venue holds {self.theirs:+}"


@dataclass(frozen=True)
class SkippedCheck:
    """A comparison that could not be made this pass (the venue's listing failed): said, not silently dropped."""

    venue: Venue
    what: str  # "open orders" or "positions"
    error: str  # the kind of failure (the exception's type)
    detail: str  # scrubbed of secrets

    @property
    def reason(self) -> str:
        return f"{self.error}: {self.detail}"

    @property
    def key(self) -> tuple[Venue, str, str]:
        """Stable across passes that fail the same way, so the channel is not told every few minutes."""
        return self.venue, self.what, self.error


@dataclass
class ReconcileReport:
    checked: int = 0
    resolved: list[ReconciledOrder] = field(default_factory=list)
    unresolved: list[ReconciledOrder] = field(default_factory=list)
    positions: list[PositionMismatch] = field(default_factory=list)
    released: list[TradeSignal] = field(default_factory=list)  # approved, but no order was ever written
    foreign: list[VenueOrder] = field(default_factory=list)  # working at a venue, not placed by this desk
    skipped: list[SkippedCheck] = field(default_factory=list)  # listings that failed: not compared this pass
    halt_cancels: CancelReport = field(default_factory=CancelReport)  # halted: orders found resting, cancelled

    @property
    def worth_telling(self) -> bool:
        return bool(self.resolved or self.unresolved or self.positions or self.released or self.foreign
                    or self.skipped or self.halt_cancels)


class Reconciler:
    def __init__(self, store: Store, venues: dict[Venue, VenueClient], *, secrets: tuple[str, ...] = (),
                 clock: Callable[[], datetime] = utcnow, min_age: timedelta = timedelta(minutes=2),
                 absent_after: timedelta = timedelta(seconds=60)) -> None:
        self.store = store
        self.venues = venues
        self.secrets = secrets
        self.clock = clock
        self.min_age = min_age  # a younger `submitting` order may still be on its way in this process
        # A venue's order listing can lag its matching engine: "no record" of a younger order is not
        # yet proof it was never placed.
        self.absent_after = absent_after

    async def run(self) -> ReconcileReport:
        report = ReconcileReport()
        for order in await self.store.orders(*OPEN_ORDER_STATUSES):
            if order.paper:
                await self._drop_lost_simulation(order, report)
                continue
            if order.status is OrderStatus.SUBMITTING and self.clock() - order.created_at < self.min_age:
                continue
            signal = await self.store.get_signal(order.signal_id)
            if signal is None:  # cannot happen with the foreign key; say so rather than guess
                report.unresolved.append(ReconciledOrder(order, "", order.status, order.status, "signal missing"))
                continue
            report.checked += 1
            try:
                await self._check(order, signal, report)
            except Exception as e:  # this order's answer could not be recorded; the others are still checked
                log.warning("reconciling %s failed: %s", order.client_order_id, type(e).__name__)
                note = scrub(f"could not record what {order.venue.value} reports: {e or type(e).__name__}",
                             self.secrets)
                report.unresolved.append(ReconciledOrder(order, signal.market.title, order.status, order.status,
                                                         note))
        await self._repair_signals(report)
        await self._release_orderless(report)
        await self._find_foreign_orders(report)
        await self._compare_positions(report)
        return report

    async def _find_foreign_orders(self, report: ReconcileReport) -> None:
        """Report every order working at a venue that this desk did not place; cancel nothing, adopt nothing.

        The desk writes its order row before sending, so an order it placed is always in the store.
        """
        ours = {o.client_order_id for o in await self.store.orders()}
        for venue, client in self.venues.items():
            lister = getattr(client, "open_orders", None)  # venues that can list working orders
            if lister is None:
                continue
            try:
                listed = await lister()
            except Exception as e:  # a listing failure is not a finding, but the operator must know it was not made
                report.skipped.append(self._skipped(venue, "open orders", e))
                continue
            report.foreign.extend(o for o in listed or [] if o.client_order_id not in ours)

    async def _compare_positions(self, report: ReconcileReport) -> None:
        """Report every position the venue and the desk disagree on; adopt nothing, ignore nothing."""
        ours: dict[tuple[Venue, str], Decimal] = {}
        orders = [o for o in await self.store.orders() if not o.paper]
        for position in await self.store.positions(paper=False):
            signed = position.contracts if position.side.value == "yes" else -position.contracts
            key = (position.venue, position.market_id)
            ours[key] = ours.get(key, Decimal(0)) + signed
        for venue, client in self.venues.items():
            lister = getattr(client, "signed_positions", None)  # venues that can list positions
            if lister is None:
                continue
            try:
                theirs = await lister()
            except Exception as e:  # a listing failure is not a mismatch, but the operator must know it was not made
                report.skipped.append(self._skipped(venue, "positions", e))
                continue
            if theirs is None:  # no keys: a read-only desk holds nothing there
                continue
            markets = {m for v, m in ours if v is venue} | set(theirs)
            # A listing that lags fills (Polymarket's Data API, by minutes) is not asked about a market
            # whose order just changed: that mismatch would clear itself. Rows are stamped by the wall clock.
            lag = getattr(client, "positions_lag", timedelta(0))
            markets -= {o.market_id for o in orders if o.venue is venue and utcnow() - o.updated_at < lag}
            for market_id in sorted(markets):
                mine, venues = ours.get((venue, market_id), Decimal(0)), theirs.get(market_id, Decimal(0))
                if mine != venues:
                    report.positions.append(PositionMismatch(venue, market_id, mine, venues))

    def _skipped(self, venue: Venue, what: str, error: Exception) -> SkippedCheck:
        log.warning("could not list %s %s: %s", venue.value, what, type(error).__name__)
        return SkippedCheck(venue, what, type(error).__name__, scrub(str(error) or "no detail", self.secrets))

    async def _check(self, order: Order, signal: TradeSignal, report: ReconcileReport) -> None:
        title = signal.market.title
        venue = self.venues.get(order.venue)
        if venue is None:
            report.unresolved.append(ReconciledOrder(order, title, order.status, order.status,
                                                     f"{order.venue.value} is not configured on this desk"))
            return
        try:
            found = await venue.find_order(order.client_order_id, signal.market, action=order.action)
        except Exception as e:  # the venue could not be asked: keep everything as it is
            note = scrub(f"could not ask {order.venue.value}: {e or type(e).__name__}", self.secrets)
            report.unresolved.append(ReconciledOrder(order, title, order.status, order.status, note))
            return
        if found is None:
            if order.status is OrderStatus.RESTING:  # the venue forgot a working order: a person must look
                report.unresolved.append(ReconciledOrder(order, title, order.status, order.status,
                                                         "the venue no longer lists this resting order"))
                return
            if self.clock() - order.created_at < self.absent_after:
                report.unresolved.append(ReconciledOrder(order, title, order.status, order.status,
                                                         "the venue does not list it yet; asking again later"))
                return
            found = OrderResult(client_order_id=order.client_order_id, status=OrderStatus.REJECTED,
                                reason="the venue has no record of this order: it was never placed")
        if found.status in (OrderStatus.UNKNOWN, OrderStatus.SUBMITTING):
            report.unresolved.append(ReconciledOrder(order, title, order.status, order.status,
                                                     "the venue has not settled its outcome yet"))
            return
        if found.status is order.status and found.filled == order.filled:
            return  # unchanged (a resting order still resting)
        target = LIVE_SIGNAL_STATUS.get(found.status, SignalStatus.UNKNOWN)
        source = signal.status
        if not can_move(source, target):
            target = source  # the signal is already final (e.g. placed): record fills only
        stored = await self.store.record_outcome(order.id, found, signal_source=source, signal_target=target,
                                                 actor=ACTOR, title=title)
        report.resolved.append(ReconciledOrder(stored, title, order.status, stored.status,
                                               found.reason or f"{stored.filled} filled",
                                               await self.store.get_signal(order.signal_id)))

    async def _drop_lost_simulation(self, order: Order, report: ReconcileReport) -> None:
        """A paper order is simulated and recorded at once; one still open after `min_age` lost its record
        (the process died, or the database refused the write). Nothing was traded: fail it, free its capital."""
        if self.clock() - order.created_at < self.min_age:
            return
        signal = await self.store.get_signal(order.signal_id)
        if signal is None or not can_move(signal.status, SignalStatus.FAILED):
            return
        lost = OrderResult(client_order_id=order.client_order_id, status=OrderStatus.REJECTED,
                           reason="the dry-run simulation was never recorded; nothing was traded, run a new cycle")
        stored = await self.store.record_outcome(order.id, lost, signal_source=signal.status,
                                                 signal_target=SignalStatus.FAILED, actor=ACTOR,
                                                 title=signal.market.title)
        report.resolved.append(ReconciledOrder(stored, signal.market.title, order.status, stored.status, lost.reason,
                                               await self.store.get_signal(order.signal_id)))

    async def _release_orderless(self, report: ReconcileReport) -> None:
        """An approval whose order row was never written (the database refused it) sent nothing: release it.

        The order row is committed before any network call, so no row means no order. Rows are stamped by
        the wall clock; a younger approval may still be on its way to writing its order in this process.
        """
        reason = "approved, but its order was never written (the desk's database refused it); nothing was sent"
        for signal in await self.store.approved_without_order(utcnow() - self.min_age):
            moved = await self.store.move_signal(signal.id, SignalStatus.APPROVED, SignalStatus.FAILED, actor=ACTOR,
                                                 reason=reason)
            if moved.moved and moved.signal is not None:
                report.released.append(moved.signal)

    async def _repair_signals(self, report: ReconcileReport) -> None:
        """A final order whose signal still holds capital: finish the signal's move."""
        for order in await self.store.orders(OrderStatus.FILLED, OrderStatus.PARTIALLY_FILLED,
                                             OrderStatus.CANCELED, OrderStatus.REJECTED):
            if order.paper:
                continue
            signal = await self.store.get_signal(order.signal_id)
            if signal is None or not signal.status.holds_reservation or signal.status is SignalStatus.PENDING:
                continue
            target = LIVE_SIGNAL_STATUS[order.status]
            if can_move(signal.status, target):
                moved = await self.store.move_signal(signal.id, signal.status, target, actor=ACTOR,
                                                     reason=f"order is {order.status.value}")
                if moved.moved:
                    report.resolved.append(ReconciledOrder(order, signal.market.title, order.status, order.status,
                                                           f"signal moved to {target.value}", moved.signal))
