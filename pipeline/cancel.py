"""Cancelling live orders for the kill switch: each order on its own, and told truthfully.

An order counts as cancelled only when its venue then shows it cancelled (with whatever had filled
by then); one that filled first is said so; one still working, unknown to the venue, or that could
not be asked is a failure the person who pulled the switch must hear about. One order's trouble
never stops the others from being cancelled.

The halt, the loss halt, an approval that comes back resting and reconciliation may all try to
cancel at once: the caller passes one lock for all of them, and each order is read again under it,
so an order is cancelled once and the others see it already done.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from .errors import VenueContractError
from .models import Order, OrderResult, OrderStatus, TradeSignal, Venue
from .reporter import scrub
from .store import Store
from .venues.base import VenueClient

log = logging.getLogger(__name__)

GONE = (OrderStatus.CANCELED, OrderStatus.PARTIALLY_FILLED)  # no longer working: the cancel took
ANSWERS_TO_RECORD = (OrderStatus.CANCELED, OrderStatus.PARTIALLY_FILLED, OrderStatus.FILLED, OrderStatus.RESTING)


@dataclass(frozen=True)
class Cancelled:
    order: Order  # as stored afterwards
    before: OrderStatus
    signal: TradeSignal


@dataclass
class CancelReport:
    cancelled: list[Cancelled] = field(default_factory=list)  # the venue shows it cancelled
    filled_first: list[Cancelled] = field(default_factory=list)  # it filled before the cancel reached it
    failed: list[tuple[str, str]] = field(default_factory=list)  # (client order id, why)
    unrecorded: list[tuple[str, str]] = field(default_factory=list)  # cancelled at the venue, not yet recorded here

    def __bool__(self) -> bool:
        return bool(self.cancelled or self.filled_first or self.failed or self.unrecorded)

    def sentence(self) -> str:
        """One line for the channel: what was cancelled, and loudly what was not."""
        text = f"{len(self.cancelled)} resting order(s) cancelled."
        if self.filled_first:
            text += f" {len(self.filled_first)} filled before the cancel reached them."
        if self.unrecorded:
            text += (f" {len(self.unrecorded)} cancelled at the venue but not yet recorded here ("
                     + "; ".join(f"{coid}: {why}" for coid, why in self.unrecorded)
                     + "); reconciliation records them.")
        if self.failed:
            failures = "; ".join(f"{coid} ({why})" for coid, why in self.failed)
            text += f" Could NOT cancel {len(self.failed)}: {failures} — check them at the venue."
        return text


async def cancel_orders(store: Store, venues: dict[Venue, VenueClient], orders: list[Order], *, actor: str,
                        lock: asyncio.Lock, secrets: tuple[str, ...] = ()) -> CancelReport:
    """Ask each live order's venue to cancel it and record what the venue then shows."""
    report = CancelReport()
    for listed in orders:
        if listed.paper:
            continue
        async with lock:
            try:
                await _cancel_one(store, venues, listed, actor, report, secrets)
            except Exception as e:  # this order could not be cancelled; the others still are
                log.warning("cancelling %s failed: %s", listed.client_order_id, type(e).__name__)
                why = scrub(str(e) or type(e).__name__, secrets)
                report.failed.append((listed.client_order_id, why))
                if isinstance(e, VenueContractError):  # a retired cancel endpoint: no order goes there until resumed
                    try:
                        await store.stop_venue(e.venue, why, actor)
                    except Exception:  # noqa: BLE001 - the failure above is still told
                        log.exception("could not record that orders to %s stop", e.venue)
    return report


async def _cancel_one(store: Store, venues: dict[Venue, VenueClient], listed: Order, actor: str,
                      report: CancelReport, secrets: tuple[str, ...]) -> None:
    order = await store.order_for_signal(listed.signal_id)  # one order per signal: this is `listed`, as it is now
    if order is None or order.status is not OrderStatus.RESTING:
        return  # cancelled (or moved on) meanwhile by another path: nothing to do, nothing to say twice
    signal = await store.get_signal(order.signal_id)
    venue = venues.get(order.venue)
    if signal is None or venue is None:
        report.failed.append((order.client_order_id, f"no {order.venue.value} client on this desk"))
        return
    result: OrderResult | None = await venue.cancel(order, signal.market)
    if result is None:
        report.failed.append((order.client_order_id, "the venue has no record of it"))
        return
    stored = order
    if result.status in ANSWERS_TO_RECORD:
        try:
            stored = await store.record_outcome(order.id, result, signal_source=signal.status,
                                                signal_target=signal.status, actor=actor, title=signal.market.title)
        except Exception as e:  # the venue acted; only our record of it is missing
            if result.status not in GONE and result.status is not OrderStatus.FILLED:
                raise
            log.warning("recording the cancel of %s failed: %s", order.client_order_id, type(e).__name__)
            report.unrecorded.append((order.client_order_id, scrub(str(e) or type(e).__name__, secrets)))
            return
    if result.status in GONE:
        report.cancelled.append(Cancelled(stored, order.status, signal))
    elif result.status is OrderStatus.FILLED:
        report.filled_first.append(Cancelled(stored, order.status, signal))
    else:
        report.failed.append((order.client_order_id, f"the venue still shows it {result.status.value}"))
