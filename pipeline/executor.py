"""TradeExecutor: an approved signal becomes one order, live or on paper, and never two.

The seed's surface is kept: `execute_signal` raises DryRunError in dry-run (carrying what
the order would have done) and ExecutionFailedError when a live order was not placed;
`execute_signals` returns one bool per signal (True: a live order is working or filled).
"""

from __future__ import annotations

import dataclasses
import logging
import uuid
from collections.abc import Callable
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from .errors import (DeskStoppedError, DryRunError, ExecutionFailedError, GiveUpError, OutcomeUnknownError,
                     RetryableError, StorageError, VenueContractError, contract_cause)
from .models import (Order, OrderRequest, OrderResult, OrderStatus, SignalStatus, TradeSignal, Venue, utcnow)
from .store import Store
from .venues.base import VenueClient
from .venues.paper import PaperVenue

log = logging.getLogger(__name__)

# What the signal becomes for each final order status, live.
LIVE_SIGNAL_STATUS = {
    OrderStatus.FILLED: SignalStatus.FILLED,
    OrderStatus.PARTIALLY_FILLED: SignalStatus.PARTIALLY_FILLED,
    OrderStatus.RESTING: SignalStatus.PLACED,
    OrderStatus.CANCELED: SignalStatus.FAILED,
    OrderStatus.REJECTED: SignalStatus.FAILED,
    OrderStatus.UNKNOWN: SignalStatus.UNKNOWN,
}


@dataclass(frozen=True)
class ExecutionOutcome:
    signal: TradeSignal  # as stored after execution
    order: Order | None
    result: OrderResult | None
    dry_run: bool
    message: str  # one line for a person
    # The venue answered in a way this desk was not built for, though the order may exist (a conflict with a code
    # it does not know): the Desk stops orders to that venue while reconciliation finds out.
    contract: VenueContractError | None = None

    @property
    def placed(self) -> bool:
        return not self.dry_run and self.signal.status in (SignalStatus.FILLED, SignalStatus.PARTIALLY_FILLED,
                                                           SignalStatus.PLACED)


def describe_result(signal: TradeSignal, result: OrderResult, dry_run: bool) -> str:
    side = signal.side.value.upper()
    verb = "sold" if signal.is_exit else "bought"
    lead = f"DRY-RUN: would have {verb}" if dry_run else verb.capitalize()
    if result.filled <= 0:
        prefix = "DRY-RUN: would not have filled" if dry_run else "Not filled"
        return f"{prefix}: {result.reason or result.status.value}"
    avg = result.average_price.quantize(Decimal("0.0001")) if result.average_price is not None else "?"
    title = signal.market.title if len(signal.market.title) <= 60 else signal.market.title[:59] + "…"
    money, fees = result.cost.quantize(Decimal("0.01")), result.fees.quantize(Decimal("0.01"))
    text = (f"{lead} {result.filled} {side} of \"{title}\" at avg ${avg} (limit ${signal.limit_price}) "
            + (f"for ${money} − ${fees} fees" if signal.is_exit else f"for ${money} + ${fees} fees"))
    if result.status is OrderStatus.PARTIALLY_FILLED:
        text += f"; {result.filled} of {signal.contracts} filled, rest cancelled"
    elif result.status is OrderStatus.RESTING:
        text += f"; {signal.contracts - result.filled} resting"
    return text


class TradeExecutor:
    def __init__(self, store: Store, venues: dict[Venue, VenueClient], *, dry_run: bool,
                 time_in_force: str = "immediate_or_cancel", clock: Callable[[], datetime] = utcnow) -> None:
        self.store = store
        self.clock = clock  # the Desk's: reconciliation compares order ages against it
        self.dry_run = dry_run
        self.time_in_force = time_in_force
        # In dry-run every venue is wrapped: books are real, orders are simulated.
        self.venues: dict[Venue, VenueClient] = (
            {v: PaperVenue(c) for v, c in venues.items()} if dry_run else dict(venues))
        self.stats: Counter[str] = Counter()

    async def execute_signals(self, signals: list[TradeSignal], actor: str = "executor") -> list[bool]:
        results = []
        for signal in signals:
            try:
                outcome = await self.execute_signal(signal, actor=actor)
                results.append(outcome.placed)
            except DryRunError as e:
                log.info("dry-run: %s", e)
                results.append(False)
            except ExecutionFailedError as e:
                log.error("execution failed: %s", e)
                results.append(False)
        return results

    def get_execution_stats(self) -> dict[str, int]:
        return {"executed": self.stats["placed"], "simulated": self.stats["simulated"],
                "failed": self.stats["failed"], "unknown": self.stats["unknown"],
                "total": sum(self.stats.values())}

    async def execute_signal(self, signal: TradeSignal, actor: str = "executor") -> ExecutionOutcome:
        """Place (or simulate) the order for an APPROVED signal, at most once."""
        venue = self.venues.get(signal.market.venue)
        if venue is None:
            raise ExecutionFailedError(f"venue {signal.market.venue.value} is not configured")
        now = self.clock()
        order = Order(id=uuid.uuid4().hex, signal_id=signal.id, client_order_id=signal.client_order_id,
                      venue=signal.market.venue, market_id=signal.market.id, side=signal.side, action=signal.action,
                      contracts=signal.contracts, limit_price=signal.limit_price, status=OrderStatus.SUBMITTING,
                      paper=self.dry_run, created_at=now, updated_at=now)
        target = None if self.dry_run else SignalStatus.SUBMITTING
        try:
            begun = await self.store.begin_order(order, source=SignalStatus.APPROVED, target=target, actor=actor)
        except DeskStoppedError as e:  # paused or halted meanwhile: the signal failed, nothing was sent
            self.stats["failed"] += 1
            e.outcome = ExecutionOutcome(signal=await self._reread(signal, SignalStatus.FAILED), order=None,
                                         result=None, dry_run=self.dry_run, message=str(e))
            raise
        if not begun:
            current = await self.store.get_signal(signal.id)
            status = current.status.value if current else "missing"
            raise ExecutionFailedError(f"signal {signal.id} is {status}, not approved (or already has an order); "
                                       "nothing was sent")
        # An exit is immediate-or-cancel whatever trading.time_in_force says: Kalshi takes reduce-only orders only
        # so, and a sell left resting could outlive the position it reduces.
        request = OrderRequest(client_order_id=order.client_order_id, venue=order.venue, market_id=order.market_id,
                               token_id=signal.market.yes_token_id if signal.side.value == "yes"
                               else signal.market.no_token_id,
                               side=signal.side, action=signal.action, contracts=signal.contracts,
                               limit_price=signal.limit_price,
                               time_in_force="immediate_or_cancel" if signal.is_exit
                               else self.time_in_force)  # type: ignore[arg-type]
        if self.dry_run:
            return await self._simulate(signal, order, venue, request, actor)
        return await self._place(signal, order, venue, request, actor)

    async def _simulate(self, signal: TradeSignal, order: Order, venue: VenueClient, request: OrderRequest,
                        actor: str) -> ExecutionOutcome:
        try:
            result = await venue.place_order(request, signal.market)
        except Exception as e:  # paper orders touch nothing outside: any failure is just a failure
            failed = OrderResult(client_order_id=order.client_order_id, status=OrderStatus.REJECTED,
                                 reason=f"could not simulate against the book: {e or type(e).__name__}")
            outcome = await self._record(signal, order, failed, SignalStatus.APPROVED, SignalStatus.FAILED, actor)
            self.stats["failed"] += 1
            raise ExecutionFailedError(outcome.message, outcome) from e
        outcome = await self._record(signal, order, result, SignalStatus.APPROVED, SignalStatus.SIMULATED, actor)
        self.stats["simulated"] += 1
        raise DryRunError(outcome.message, outcome)

    async def _place(self, signal: TradeSignal, order: Order, venue: VenueClient, request: OrderRequest,
                     actor: str) -> ExecutionOutcome:
        try:
            result = await venue.place_order(request, signal.market)
        except OutcomeUnknownError as e:
            outcome = await self._resolve_unknown(signal, order, venue, actor, str(e))
            contract = contract_cause(e)
            return dataclasses.replace(outcome, contract=contract) if contract is not None else outcome
        except (RetryableError, GiveUpError) as e:
            # The venue answered and did not take the order: nothing to look up. Say which venue: not
            # every venue's error text names itself.
            rejected = OrderResult(client_order_id=order.client_order_id, status=OrderStatus.REJECTED,
                                   reason=f"{signal.market.venue.value} refused the order: {e}")
            outcome = await self._record(signal, order, rejected, SignalStatus.SUBMITTING, SignalStatus.FAILED, actor)
            self.stats["failed"] += 1
            raise ExecutionFailedError(outcome.message, outcome) from e
        except Exception as e:  # anything else: we cannot tell whether it left, so look it up
            log.exception("unexpected error placing %s", order.client_order_id)
            return await self._resolve_unknown(signal, order, venue, actor, f"unexpected error: {type(e).__name__}")
        return await self._finish_live(signal, order, result, SignalStatus.SUBMITTING, actor)

    async def _finish_live(self, signal: TradeSignal, order: Order, result: OrderResult, source: SignalStatus,
                           actor: str) -> ExecutionOutcome:
        target = LIVE_SIGNAL_STATUS.get(result.status, SignalStatus.UNKNOWN)
        if result.status is OrderStatus.SUBMITTING:
            target = SignalStatus.UNKNOWN
        outcome = await self._record(signal, order, result, source, target, actor)
        if target is SignalStatus.FAILED:
            self.stats["failed"] += 1
            raise ExecutionFailedError(outcome.message, outcome)
        self.stats["unknown" if target is SignalStatus.UNKNOWN else "placed"] += 1
        return outcome

    async def _resolve_unknown(self, signal: TradeSignal, order: Order, venue: VenueClient, actor: str,
                               why: str) -> ExecutionOutcome:
        """The answer never came: mark unknown, then ask the venue by client order id. Never re-post."""
        unknown = OrderResult(client_order_id=order.client_order_id, status=OrderStatus.UNKNOWN,
                              reason=f"outcome unknown ({why}); looking it up by client order id")
        source = SignalStatus.UNKNOWN
        try:
            await self.store.record_outcome(order.id, unknown, signal_source=SignalStatus.SUBMITTING,
                                            signal_target=SignalStatus.UNKNOWN, actor=actor, title=signal.market.title)
        except Exception as e:  # the rows still read `submitting`, which reconciliation looks up just the same
            log.error("could not mark %s unknown: %s", order.client_order_id, e or type(e).__name__)
            source = SignalStatus.SUBMITTING
        try:
            found = await venue.find_order(order.client_order_id, signal.market, action=order.action)
        except Exception as e:  # reconciliation will try again later
            log.warning("look-up of %s failed: %s", order.client_order_id, type(e).__name__)
            found = None
        if found is None or found.status is OrderStatus.UNKNOWN:
            self.stats["unknown"] += 1
            current = await self._reread(signal, SignalStatus.UNKNOWN)
            if source is SignalStatus.SUBMITTING and current.status is SignalStatus.SUBMITTING:
                current = current.model_copy(update={"status": SignalStatus.UNKNOWN})  # not recorded: say what it is
            try:
                stored = await self.store.order_for_signal(signal.id)
            except StorageError:
                stored = None
            return ExecutionOutcome(signal=current, order=stored,
                                    result=unknown, dry_run=False,
                                    message=f"Order {order.client_order_id} outcome unknown ({why}); it will be "
                                            "reconciled with the venue, never re-sent")
        return await self._finish_live(signal, order, found, source, actor)

    async def _record(self, signal: TradeSignal, order: Order, result: OrderResult, source: SignalStatus,
                      target: SignalStatus, actor: str) -> ExecutionOutcome:
        try:
            stored = await self.store.record_outcome(order.id, result, signal_source=source, signal_target=target,
                                                     actor=actor, title=signal.market.title)
        except Exception as e:
            if self.dry_run:
                raise
            return self._unrecorded(signal, order, result, e)
        return ExecutionOutcome(signal=await self._reread(signal, target), order=stored, result=result,
                                dry_run=self.dry_run, message=describe_result(signal, result, self.dry_run))

    async def _reread(self, signal: TradeSignal, status: SignalStatus) -> TradeSignal:
        """The signal as stored now; if the database cannot say, as this step left it (once an order
        has left, no database error may hide what the venue said)."""
        try:
            return await self.store.get_signal(signal.id) or signal
        except StorageError:
            return signal.model_copy(update={"status": status})

    @staticmethod
    def _unrecorded(signal: TradeSignal, order: Order, result: OrderResult, error: Exception) -> ExecutionOutcome:
        """The venue answered but the desk's database did not take the answer (say, locked by another process
        past its busy timeout). Nothing was half-written: the order row and the signal still read as they did
        before the answer, and reconciliation reads the outcome back from the venue by client order id. The
        person is told what the venue said and that the order is never sent again."""
        log.error("could not record the outcome of %s: %s", order.client_order_id, error or type(error).__name__)
        venue = signal.market.venue.value
        message = (f"{describe_result(signal, result, dry_run=False)}. The desk could not record this "
                   f"({error or type(error).__name__}): until reconciliation reads it back from {venue}, the outcome "
                   f"of order {order.client_order_id} is unknown here; it is never re-sent")
        shown = signal.model_copy(update={"status": SignalStatus.UNKNOWN})
        return ExecutionOutcome(signal=shown, order=None, result=result, dry_run=False, message=message)
