"""The Desk: what front ends call. It decides; Slack and the terminal only render and route.

Every refusal comes back as a Decision with a code and a sentence for the user, and leaves
state unchanged. Every move of a signal is a compare-and-set in the store, so a double
click, a retry or a second replica can never act twice.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from .access import AccessPolicy, Action
from .analyzer import Analyzer, SampleAnalyzer
from .backtest import BacktestReport, Backtester, BacktestRequest, cutoff_of
from .backtest import Progress as BacktestProgress
from .cancel import CancelReport, cancel_orders
from .config import Settings
from .cycle import Cycle, CycleRequest, CycleResult, ProgressCallback, day_start
from .errors import (CycleAlreadyRunning, DeskStoppedError, DryRunError, ExecutionFailedError, RefusedError,
                     StorageError, contract_cause)
from .executor import ExecutionOutcome, TradeExecutor
from .exits import EXIT_TIME_IN_FORCE, ExitCase, Hold, build_exit_signal, quote_exit, recheck_exit
from .marks import MarkedPosition, mark_position
from .models import (CycleReport, ExitReason, FeeModel, Market, OrderAction, OrderBook, OrderStatus, Position,
                     SignalStatus, TradeSignal, Venue, utcnow)
from .order_rules import contract_step
from .reconcile import ReconciledOrder, ReconcileReport, Reconciler, cancelled_items
from .record import Record, best_market_weight
from .record import build as build_record
from .settlement import SettlementReport, Settler
from .reporter import scrub
from .risk import PositionManager, RiskSnapshot, TradingState
from .store import Store, Transition, parse_ts
from .strategy import recheck
from .venues.base import VenueClient, secrets_to_scrub


def resume_advice(venue: str) -> str:
    return (f"What to do: upgrade oddsdesk to a version that speaks {venue}'s current API, run "
            f"`oddsdesk check --venues` until it reports no drift, then an authorized `/desk resume {venue}`.")


def decided_sentence(signal: TradeSignal | None, signal_id: str, by: str, at: datetime | None,
                     now: datetime) -> str:
    """One sentence for a click on a signal that already left pending: what it became, when, and by whom."""
    what = signal.market.title if signal is not None else f"Signal {signal_id}"
    status = signal.status if signal is not None else None
    when = "" if at is None else (f" at {at:%H:%M} UTC" if at.date() == now.date() else f" at {at:%Y-%m-%d %H:%M} UTC")
    if status is None:
        return f"{what}: no longer exists."
    if status is SignalStatus.EXPIRED:
        if by in ("", EXPIRY_ACTOR):
            return f"{what}: already expired{when} — nobody decided in time."
        return f"{what}: already withdrawn{when} by {by}."
    shown = status.value.replace("_", " ")
    who = f" by {by}" if by else ""
    if status in (SignalStatus.REJECTED, SignalStatus.APPROVED):
        return f"{what}: already {shown}{when}{who}."
    return f"{what}: already {shown} — approved{when}{who}."


log = logging.getLogger(__name__)

RISK_ACTOR = "risk-limit"  # who the audit log names when the daily loss limit halts the desk
HALT_ACTOR = "kill-switch"  # who cancels an order found resting after the desk was halted
EXPIRY_ACTOR = "sweeper"  # who the store names when a signal expired with nobody's decision


@dataclass(frozen=True)
class Actor:
    """Who is acting: a Slack user (with the user groups the front end resolved) or the local terminal."""

    id: str
    name: str = ""
    groups: frozenset[str] = frozenset()  # the listed user groups the front end found them in
    local: bool = False  # the person at the terminal that runs the desk, holding its keys
    lookup_failed: str = ""  # the front end could not read group membership: why (said in a refusal)

    @property
    def label(self) -> str:
        return f"terminal:{self.name or self.id}" if self.local else self.id

    @classmethod
    def terminal(cls, name: str = "operator") -> "Actor":
        return cls(id="terminal", name=name, local=True)


@dataclass(frozen=True)
class OrdersStopped:
    """Orders to `venue` stopped because it answered in a way this desk was not built for."""

    venue: str
    reason: str  # the venue's answer, scrubbed
    recorded: bool = True  # False: the database refused to keep the stop; nobody should approve there

    def sentence(self) -> str:
        if not self.recorded:
            return (f"Orders to {self.venue} must stop: {self.reason}. The desk could not record the stop; do not "
                    f"approve {self.venue} signals. {resume_advice(self.venue)}")
        return (f"Orders to {self.venue} are STOPPED: {self.reason}. Nothing was traded and nothing is held for it; "
                f"{self.venue} markets are not analysed until orders resume, and the other venues trade on. "
                f"{resume_advice(self.venue)}")


@dataclass(frozen=True)
class Decision:
    """The answer to a click or command: ok or refused, always with a sentence for the user."""

    ok: bool
    code: str
    message: str
    signal: TradeSignal | None = None
    outcome: ExecutionOutcome | None = None
    details: dict[str, str] = field(default_factory=dict)
    changed: list[ReconciledOrder] = field(default_factory=list)  # orders it changed: redraw their signals
    stopped: OrdersStopped | None = None  # orders to a venue were just stopped: the whole channel hears it, once


@dataclass(frozen=True)
class DeskStatus:
    dry_run: bool
    state: TradingState
    risk: RiskSnapshot
    pending: list[TradeSignal]
    positions: list[Position]
    cycle_running: bool
    cycle_started_by: str
    last_cycle_id: str
    llm_spend_today: Decimal
    last_cycle: CycleReport | None = None
    stopped_venues: dict[str, str] = field(default_factory=dict)  # venue -> why orders to it are stopped


@dataclass
class _RunningCycle:
    started_by: str
    started_at: datetime


class Desk:
    def __init__(self, settings: Settings, store: Store, venues: dict[Venue, VenueClient], analyzer: Analyzer | None,
                 *, clock: Callable[[], datetime] = utcnow) -> None:
        self.settings = settings
        self.store = store
        self.venues = venues
        self.clock = clock
        self.analyzer = analyzer
        self.cycle = Cycle(settings, store, venues, analyzer, clock=clock)
        self.executor = TradeExecutor(store, venues, dry_run=settings.trading.dry_run,
                                      time_in_force=settings.trading.time_in_force, clock=clock)
        self.risk = PositionManager(settings.trading)
        self.access = AccessPolicy(settings.approval, settings.access)
        self._configured_secrets = settings.env.secret_values()
        self._cancel_lock = asyncio.Lock()  # one kill-switch cancel at a time, so none is sent twice
        self._cycle_lock = asyncio.Lock()
        self._record: tuple[tuple[int, int, int], Record] | None = None  # (counts, the record built at them)
        self._running: _RunningCycle | None = None

    @property
    def dry_run(self) -> bool:
        return self.settings.trading.dry_run

    # -- cycles -----------------------------------------------------------------------------

    async def scan(self, request: CycleRequest | None = None, progress: ProgressCallback | None = None, *,
                   actor: Actor | None = None,
                   deliver: Callable[[CycleResult], Awaitable[None]] | None = None) -> CycleResult:
        """Run one cycle. Only one runs at a time; a second caller is told whose is running.

        A person's cycle names them as `actor` and needs an operator's role; the schedule passes none. `deliver`
        (a front end posting the cycle's signals and report) runs inside the one-cycle guard, so the next cycle
        cannot start before this one's signals are shown."""
        request = request or CycleRequest()
        if actor is not None:
            allowed = await self.authorize(actor, Action.SCAN)
            if not allowed.ok:
                raise RefusedError(allowed.code, allowed.message)
        if self._cycle_lock.locked() and self._running is not None:  # no await between check and take
            raise CycleAlreadyRunning(self._running.started_by, self._running.started_at.strftime("%H:%M:%S UTC"))
        async with self._cycle_lock:
            self._running = _RunningCycle(request.started_by, self.clock())
            try:
                state = await self.store.trading_state()
                if state is TradingState.HALTED:
                    raise RefusedError("desk_halted", "The desk is HALTED: no cycles until an authorized "
                                                      "`/desk resume`.")
                note = ""
                if request.analyse and state is not TradingState.ACTIVE:
                    # Scanning is free and still answers "why no trades?"; new signals are not.
                    request = dataclasses.replace(request, analyse=False)
                    note = (f"the desk is {state.value.upper()}: scanned and filtered only, no new entries"
                            + ("; held positions reviewed for exits" if request.review_exits else ""))
                await self._set_auto_weight()
                result = await self.cycle.run(request, progress, note=note)
                if deliver is not None:
                    await deliver(result)
                return result
            finally:
                self._running = None

    @property
    def running_cycle(self) -> tuple[str, datetime] | None:
        return (self._running.started_by, self._running.started_at) if self._running else None

    # -- decisions on signals ---------------------------------------------------------------

    def allows(self, actor: Actor, action: Action) -> bool:
        """Deny by default: a role by the actor's id or one of their groups (pipeline/access.py), or the local
        terminal operator, who holds the desk's keys anyway."""
        return actor.local or self.access.role(actor.id, actor.groups) >= action.needs

    async def authorize(self, actor: Actor, action: Action, subject: str = "desk") -> Decision:
        """May `actor` do `action`? A refusal is audited and carries the sentence the user sees."""
        if self.allows(actor, action):
            return Decision(True, "allowed", "")
        return await self._refuse(actor, action.value, subject, "not_authorized",
                                  self.access.refusal(action, lookup_failed=actor.lookup_failed))

    async def refuse(self, actor: Actor, action: str, subject: str, code: str, message: str) -> Decision:
        """A refusal a front end decided on its own ground (the wrong channel): audited like the desk's own."""
        return await self._refuse(actor, action, subject, code, message)

    def secret_values(self) -> list[str]:
        """Every secret the desk holds: the configured ones and the credentials its venue clients derived."""
        return secrets_to_scrub(self._configured_secrets, self.venues.values())

    def _scrub(self, text: str) -> str:
        """Messages quote venue errors; no secret, configured or derived, may ride along to chat or the audit log."""
        return scrub(text, self.secret_values())

    async def _refuse(self, actor: Actor, action: str, signal_id: str, code: str, message: str,
                      signal: TradeSignal | None = None, **details: str) -> Decision:
        message = self._scrub(message)
        await self.store.audit(actor.label, action, signal_id, f"refused:{code}", message)
        return Decision(False, code, message, signal=signal, details=details)

    async def _decidable(self, signal_id: str, actor: Actor, action: Action,
                         message: str | None) -> TradeSignal | Decision:
        """The checks approve and reject share: exists, authorized, clicked on its own message, still pending,
        not expired."""
        signal = await self.store.get_signal(signal_id)
        if signal is None:
            return await self._refuse(actor, action.value, signal_id, "not_found", f"There is no signal {signal_id}.")
        if not self.allows(actor, action):
            return await self._refuse(actor, action.value, signal_id, "not_authorized",
                                      self.access.refusal(action, lookup_failed=actor.lookup_failed), signal)
        if message is not None:  # a click: it must come from the message the signal was posted as
            posted = await self.store.message_ref(signal_id)
            if message != posted:
                return await self._refuse(actor, action.value, signal_id, "wrong_message",
                                          "This button is not on the message this signal was posted as, so it does "
                                          "not act on it; use the buttons on the signal's own message in the desk's "
                                          "channel." if posted else
                                          "This signal was never linked to a message, so no button acts on it; it "
                                          f"expires at {signal.expires_at:%H:%M UTC}"
                                          + (", keeping the position." if signal.is_exit else
                                             " and its capital is released then."),
                                          signal, posted=posted, clicked=message)
        if signal.status is not SignalStatus.PENDING:
            by, at = await self.store.signal_decision(signal_id)
            return await self._refuse(actor, action.value, signal_id, "already_decided",
                                      decided_sentence(signal, signal_id, by, at, self.clock()), signal,
                                      **_decision_details(by, at))
        if self.clock() >= signal.expires_at:
            return await self._expire(signal, actor, action, "; nothing was sold and the position is kept."
                                      if signal.is_exit else "; its capital is released.")
        return signal

    async def _expire(self, signal: TradeSignal, actor: Actor, action: Action, rest: str) -> Decision:
        """A pending signal found past its time: expired now (as the sweeper would), and the click refused."""
        moved = await self.store.move_signal(signal.id, SignalStatus.PENDING, SignalStatus.EXPIRED,
                                             actor=EXPIRY_ACTOR, reason="expired before a decision", at=self.clock())
        return await self._refuse(actor, action.value, signal.id, "expired",
                                  f"This signal expired at {signal.expires_at:%H:%M UTC}{rest}", moved.signal or signal)

    async def approve(self, signal_id: str, actor: Actor, *, message: str | None = None) -> Decision:
        """Approve for `actor`. A click passes `message`, the message it was made on (front ends' own reference,
        as given to attach_message): it must be the one the signal was posted as. The terminal passes None."""
        try:
            return await self._approve(signal_id, actor, message)
        except StorageError as e:  # before the approval was stored (after it, _approve answers): click again
            return self._storage_refusal(e, "click Approve again in a moment")

    async def reject(self, signal_id: str, actor: Actor, reason: str = "", *, message: str | None = None
                     ) -> Decision:
        try:
            return await self._reject(signal_id, actor, reason, message)
        except StorageError as e:
            return self._storage_refusal(e, "click Reject again in a moment")

    def _storage_refusal(self, error: StorageError, advice: str) -> Decision:
        return Decision(False, "storage_unavailable",
                        self._scrub(f"The desk could not save your decision: {error}. Nothing was traded; {advice}."))

    async def _approved_but_unwritten(self, signal_id: str, actor: Actor, error: StorageError) -> Decision:
        """The approval was stored but its order row was not: nothing was sent, and the signal cannot be approved
        again. Release it now if the database lets us; otherwise reconciliation does within a few minutes."""
        try:
            moved = await self.store.move_signal(signal_id, SignalStatus.APPROVED, SignalStatus.FAILED,
                                                 actor=actor.label, reason="its order could not be written; "
                                                                           "nothing was sent")
        except StorageError:
            moved = None
        then = ("its capital is released now" if moved is not None and moved.moved else
                "reconciliation releases its capital within a few minutes")
        return Decision(False, "storage_unavailable", self._scrub(
            f"Your approval was recorded but the desk could not write its order ({error}). Nothing was sent and "
            f"this signal cannot be approved again; {then}. Run a new cycle to trade this market."),
                        signal=moved.signal if moved is not None else None)

    async def _approve(self, signal_id: str, actor: Actor, message: str | None) -> Decision:
        found = await self._decidable(signal_id, actor, Action.APPROVE, message)
        if isinstance(found, Decision):
            return found
        signal = found
        if not signal.is_exit:  # getting out reduces risk: no pause, halt, loss limit or record holds an exit back
            snapshot = await self.store.risk_snapshot(signal.dry_run, self.settings.trading.initial_bankroll,
                                                      day_start(self.clock()))
            gate = self.risk.check_approval(snapshot)
            if not gate.allowed:
                return await self._refuse(actor, "approve", signal_id, gate.code, gate.reason, signal)
            waiting = await self._record_gate(signal)
            if waiting:
                return await self._refuse(actor, "approve", signal_id, "record_required", waiting, signal)
        if signal.dry_run != self.dry_run:
            return await self._refuse(actor, "approve", signal_id, "mode_changed",
                                      f"This signal was made in {'dry-run' if signal.dry_run else 'live'} mode but the "
                                      f"desk is now {'dry-run' if self.dry_run else 'live'}; run a new cycle.", signal)

        venue = self.venues.get(signal.market.venue)
        if venue is None:
            return await self._refuse(actor, "approve", signal_id, "venue_unavailable",
                                      f"{signal.market.venue.value} is not configured on this desk.", signal)
        stopped = (await self.store.stopped_venues()).get(signal.market.venue.value)
        if stopped is not None:
            return await self._refuse(actor, "approve", signal_id, "orders_stopped",
                                      f"Orders to {signal.market.venue.value} are stopped: {stopped}. Nothing was "
                                      f"traded. {resume_advice(signal.market.venue.value)}", signal)
        try:  # the book and the fee schedule in force, read afresh and at once
            book, fees = await asyncio.gather(venue.get_order_book(signal.market), self._fees_now(venue, signal))
        except Exception as e:
            return await self._refuse(actor, "approve", signal_id, "book_unavailable",
                                      f"Could not fetch the current book and fees to re-check the price: {e}. "
                                      "Nothing was traded; try again.", signal)
        if signal.is_exit:
            assert signal.exit is not None
            position = await self.store.position(signal.exit.position_id)
            held = position.contracts if position is not None and position.status == "open" else None
            check = recheck_exit(signal, book, held, self.settings.trading.min_edge,
                                 self.settings.approval.max_slippage, fees)
        else:
            check = recheck(signal, book, self.settings.trading.min_edge, self.settings.approval.max_slippage, fees)
        if not check.ok:
            said = "the market moved: " if check.code == "stale" else ""
            then = ""
            if signal.is_exit and check.code == "position_changed":  # it can never go: withdrawn, so a fresh close may
                moved = await self.store.move_signal(signal_id, SignalStatus.PENDING, SignalStatus.EXPIRED,
                                                     actor="desk", reason=f"withdrawn: {check.reason}",
                                                     at=self.clock())
                signal = moved.signal or signal
                then = " This exit is withdrawn; `/desk close` proposes a fresh one for what is held now."
            elif signal.is_exit:
                then = " Approve again if the bids come back, or Keep it and close again for a fresh price."
            return await self._refuse(actor, "approve", signal_id, check.code,
                                      f"Refused, {said}{check.reason}. Nothing was traded.{then}", signal,
                                      price=str(check.price), edge=str(check.edge))

        now = self.clock()
        moved = await self.store.move_signal(signal_id, SignalStatus.PENDING, SignalStatus.APPROVED,
                                             actor=actor.label, reason="approved", unexpired_at=now, at=now)
        if not moved.moved and moved.signal is not None and moved.signal.status is SignalStatus.PENDING:
            # Still pending, so it expired while the book was re-checked: it is over, and says so.
            return await self._expire(signal, actor, Action.APPROVE, " while its price was being re-checked; nothing "
                                      "was traded and " + ("the position is kept." if signal.is_exit
                                                           else "its capital is released."))
        if not moved.moved:
            return self._lost_race(signal_id, moved)
        try:
            outcome = await self.executor.execute_signal(moved.signal or signal, actor=actor.label)
        except StorageError as e:  # the executor absorbs them once the order row exists: this one is before
            return await self._approved_but_unwritten(signal_id, actor, e)
        except DeskStoppedError as e:
            return Decision(False, "desk_stopped", self._scrub(str(e)),
                            signal=e.outcome.signal if e.outcome else signal, outcome=e.outcome)
        except DryRunError as e:
            outcome = e.outcome
            await self._note_order(signal)
            halted, changed = await self._loss_limit_after(signal)
            return Decision(True, "simulated", self._scrub(f"{e}{halted}"),
                            signal=outcome.signal if outcome else signal, outcome=outcome, changed=changed)
        except ExecutionFailedError as e:
            outcome = e.outcome
            stopped = await self._stop_orders_on_contract_error(e, actor)
            return Decision(False, "failed", self._scrub(f"Order failed: {e}"),
                            signal=outcome.signal if outcome else signal,
                            outcome=outcome, stopped=stopped)
        code = "unknown" if outcome.signal.status is SignalStatus.UNKNOWN else "executed"
        await self._note_order(signal)
        outcome = await self._cancel_if_halted(outcome)
        stopped = await self._stop_orders_on_contract_error(outcome.contract, actor)
        halted, changed = await self._loss_limit_after(signal)
        return Decision(True, code, self._scrub(f"{outcome.message}{halted}"), signal=outcome.signal,
                        outcome=outcome, stopped=stopped, changed=changed)

    async def _loss_limit_after(self, signal: TradeSignal) -> tuple[str, list[ReconciledOrder]]:
        """An exit books realised P&L when it fills: a loss that reaches today's limit halts the desk now (not at
        the next settlement pass), and the answer says so. The order has left: nothing here may fail the answer."""
        if not signal.is_exit:
            return "", []
        try:
            halted, changed = await self._halt_on_daily_loss(self.clock())
        except Exception as e:  # noqa: BLE001 - the next settlement pass checks the limit again
            log.warning("could not check the daily loss limit after exit %s: %s", signal.id, type(e).__name__)
            return "", []
        return (f". {halted}" if halted else ""), changed

    async def _note_order(self, signal: TradeSignal) -> None:
        """The track record notes that an order followed this estimate. The order has left: nothing here may fail
        the answer. An exit follows a position, not an estimate."""
        if signal.is_exit:
            return
        try:
            await self.store.mark_followed(signal.cycle_id, [signal.market.key], "order")
        except Exception as e:  # noqa: BLE001 - a label in the record, never worth an approval's answer
            log.warning("could not note in the track record that signal %s was ordered: %s", signal.id,
                        type(e).__name__)

    async def _fees_now(self, venue: VenueClient, signal: TradeSignal) -> FeeModel:
        """The venue's fee schedule for the signal's market as it stands now, read afresh past the client's cache."""
        priced, rejected = await venue.with_fees([signal.market], self.clock(), fresh=True)
        if rejected:
            raise RefusedError(rejected[0].reason, rejected[0].detail)
        return priced[0].fees

    async def _stop_orders_on_contract_error(self, error: BaseException | None, actor: Actor) -> OrdersStopped | None:
        """A venue answered an order in a way this desk was not built for: stop orders to it until an authorized
        person resumes them. Returns what the channel must hear, the first time only (not on every refused click)."""
        cause = contract_cause(error)
        if cause is None:
            return None
        venue, reason = cause.venue, self._scrub(str(cause))
        try:
            newly = await self.store.stop_venue(venue, reason, actor.label)
        except StorageError:  # still said: the next order would meet the same answer
            return OrdersStopped(venue, reason, recorded=False)
        return OrdersStopped(venue, reason) if newly else None

    async def resume_orders(self, actor: Actor, venue: Venue) -> Decision:
        """Let orders go to a venue again after they were stopped (authorized, audited)."""
        allowed = await self.authorize(actor, Action.RESUME_ORDERS, venue.value)
        if not allowed.ok:
            return allowed
        was = await self.store.resume_venue(venue.value, actor.label)
        if not was:
            return Decision(True, "unchanged", f"Orders to {venue.value} were not stopped.")
        return Decision(True, "orders_resumed", self._scrub(f"Orders to {venue.value} resumed (they had been stopped: "
                                                            f"{was})."))

    # -- exits ----------------------------------------------------------------------------------

    async def close(self, ref: str, actor: Actor) -> Decision:
        """Propose an exit for one open position of the desk's mode, named by its number (`12`, `#12`) or its market
        (a Kalshi ticker, a Polymarket condition id). The exit is a signal like any other: it needs an approver's
        Approve before anything is sold. Allowed while the desk is PAUSED or HALTED: getting out reduces risk."""
        allowed = await self.authorize(actor, Action.CLOSE, ref.strip() or "position")
        if not allowed.ok:
            return allowed
        found = await self._position_named(ref, actor)
        if isinstance(found, Decision):
            return found
        return (await self._propose_exits([found], actor))[0]

    async def close_all(self, actor: Actor) -> list[Decision]:
        """Propose an exit for every open position of the desk's mode: one exit signal each, each approved on its
        own (each is one order with its own client order id)."""
        allowed = await self.authorize(actor, Action.CLOSE, "all positions")
        if not allowed.ok:
            return [allowed]
        positions = await self.store.positions(paper=self.dry_run)
        if not positions:
            return [Decision(True, "nothing_held", f"No open {'paper' if self.dry_run else 'live'} positions: "
                                                   "nothing to close.")]
        return await self._propose_exits(positions, actor)

    async def _position_named(self, ref: str, actor: Actor) -> Position | Decision:
        name = ref.strip().lstrip("#").strip()
        mode = "paper" if self.dry_run else "live"
        if not name:
            return await self._refuse(actor, "close", "position", "usage", "Say which position: `/desk close 12` "
                                      "(its number in `/desk positions`), its market's ticker, or `/desk close all`.")
        if name.isascii() and name.isdigit() and len(name) <= 18:  # a number the database can hold; else a ticker
            position = await self.store.position(int(name))
        else:
            named = [p for p in await self.store.positions(paper=self.dry_run) if p.market_id.lower() == name.lower()]
            position = named[0] if named else None
        if position is None:
            return await self._refuse(actor, "close", name[:80], "not_found",
                                      f"There is no open {mode} position {name[:80]}; `/desk positions` lists them "
                                      "with their numbers.")
        label = f"Position #{position.id} ({position.title or position.market_id})"
        if position.status != "open":
            return await self._refuse(actor, "close", f"position:{position.id}", "position_closed",
                                      f"{label} is closed already.")
        if position.paper != self.dry_run:
            return await self._refuse(
                actor, "close", f"position:{position.id}", "mode_changed",
                f"{label} is a {'paper' if position.paper else 'live'} position and the desk is "
                f"{'dry-run' if self.dry_run else 'live'}. "
                + ("A dry-run desk never sends a live order: live positions are closed by the desk running live "
                   "(trading.dry_run false)." if not position.paper else
                   "Paper positions are closed by the desk running in dry-run (trading.dry_run true)."))
        return position

    async def _propose_exits(self, positions: list[Position], actor: Actor) -> list[Decision]:
        """Price an exit for each position against its bids now (fresh fees, one batched book read per venue) and
        propose it; each refusal says why for that position."""
        now = self.clock()
        exiting = await self.store.exiting_positions()
        answers: dict[int, Decision] = {}
        ready: list[Position] = []
        for position in positions:
            pid = position.id or 0
            if pid in exiting:
                answers[pid] = await self._refuse(
                    actor, "close", f"position:{pid}", "exit_pending",
                    f"Position #{pid} ({position.title or position.market_id}) already has exit signal "
                    f"{exiting[pid]} pending or on its way; decide that one (Keep it, then close again for a fresh "
                    "price).")
            else:
                ready.append(position)
        markets = await self._exit_markets(ready, now)
        books = await self._fresh_books([m for m in markets.values() if isinstance(m, Market)], timeout=5.0)
        expiry = timedelta(minutes=self.settings.approval.expiry_minutes)
        fresh_since = now - timedelta(minutes=self.settings.analysis.cache_ttl_minutes)
        for position in ready:
            pid, key = position.id or 0, (position.venue, position.market_id)
            label = f"Position #{pid} ({position.title or position.market_id})"
            market = markets[pid]
            book = books.get(key, "no book was read") if isinstance(market, Market) else market
            if not isinstance(market, Market) or not isinstance(book, OrderBook):
                answers[pid] = await self._refuse(actor, "close", f"position:{pid}", "market_unavailable",
                                                  f"{label} cannot be priced now: {book}. Nothing was proposed.")
                continue
            quote = quote_exit(position.contracts, market, book, position.side, self.settings.approval.max_slippage)
            if isinstance(quote, Hold):
                answers[pid] = await self._refuse(actor, "close", f"position:{pid}", quote.code,
                                                  f"{label} cannot be closed now: {quote.detail}. Nothing was "
                                                  "proposed; it stays held.")
                continue
            estimate = await self.store.latest_estimate(market.key, fresh_since)
            signal = build_exit_signal(
                signal_id=uuid.uuid4().hex[:16], cycle_id=f"close-{uuid.uuid4().hex[:8]}", position=position,
                market=market, case=ExitCase(ExitReason.MANUAL, f"asked by {actor.label}", quote),
                estimate=estimate, dry_run=self.dry_run, now=now, expiry=expiry, requested_by=actor.label)
            reserved = await self.store.reserve_exit(signal)
            if not reserved.allowed:
                answers[pid] = await self._refuse(actor, "close", f"position:{pid}", reserved.code,
                                                  f"{label}: {reserved.reason}. Nothing was proposed.")
                continue
            await self.store.audit(actor.label, "close", signal.id, "ok", f"exit proposed for position #{pid}")
            part = ""
            if quote.partial:
                rest = quote.held - quote.contracts
                smallest = contract_step(market, quote.limit_price, EXIT_TIME_IN_FORCE, action=OrderAction.SELL)
                then = ("close again for the rest" if rest >= smallest else
                        f"the {rest} left is below the smallest sale the venue takes and is kept until the market "
                        "settles")
                part = (f" The bids within {self.settings.approval.max_slippage} of the best take {quote.contracts} "
                        f"of the {quote.held} held; {then}.")
            answers[pid] = Decision(True, "exit_proposed", self._scrub(
                f"Exit proposed for {label}: sell {quote.contracts} {position.side.value.upper()} at "
                f"{quote.limit_price} or better, about ${quote.net:.2f} after fees.{part} An approver's Approve on "
                "its message sends it."), signal=signal)
        return [answers[p.id or 0] for p in positions]

    async def _exit_markets(self, positions: list[Position], now: datetime) -> dict[int, Market | str]:
        """Each position's market with the fee schedule in force now (read afresh), or why it cannot be had."""
        stopped = await self.store.stopped_venues()
        found: dict[int, Market | str] = {}
        by_venue: dict[Venue, list[tuple[int, Market]]] = {}
        for position in positions:
            pid = position.id or 0
            market = await self.store.latest_market(position.venue, position.market_id)
            if market is None:
                found[pid] = "its market is not known to this desk"
            elif position.venue.value in stopped:
                found[pid] = f"orders to {position.venue.value} are stopped ({stopped[position.venue.value]})"
            elif position.venue not in self.venues:
                found[pid] = f"{_name(position.venue)} is not configured on this desk"
            else:
                by_venue.setdefault(position.venue, []).append((pid, market))
        for venue, group in by_venue.items():
            try:
                priced, rejected = await self.venues[venue].with_fees([m for _, m in group], now, fresh=True)
            except Exception as e:  # noqa: BLE001 - said for each position
                priced, rejected = [], []
                why = self._scrub(f"{_name(venue)}'s fees could not be read: {e or type(e).__name__}")
                for pid, _ in group:
                    found[pid] = why
                continue
            by_id = {m.id: m for m in priced}
            refusals = {r.market_key: r.detail or r.reason for r in rejected}
            for pid, market in group:
                found[pid] = by_id.get(market.id) or self._scrub(
                    f"its fees could not be read: {refusals.get(market.key, 'the venue did not say')}")
        return found

    async def _cancel_if_halted(self, outcome: ExecutionOutcome) -> ExecutionOutcome:
        """An order that was on its way when the desk was halted, and came to rest: cancel it now.

        The order has left: nothing here may turn the answer into a refusal."""
        order = outcome.order
        if order is None or order.status is not OrderStatus.RESTING or order.paper:
            return outcome
        try:
            if await self.store.trading_state() is not TradingState.HALTED:
                return outcome
            cancels = await cancel_orders(self.store, self.venues, [order], actor=HALT_ACTOR, lock=self._cancel_lock,
                                          secrets=tuple(self.secret_values()))
            stored = await self.store.order_for_signal(order.signal_id) or order
        except Exception as e:  # reconciliation cancels it while the desk is halted
            return dataclasses.replace(outcome, message=f"{outcome.message}. Could not check whether the desk was "
                                                        f"halted meanwhile ({type(e).__name__}); if it was, "
                                                        "reconciliation cancels this order")
        if not cancels:  # another path (the halt itself, reconciliation) cancelled it first
            note = ("" if stored.status is OrderStatus.RESTING else
                    f". The desk was halted while this order was on its way; it is now {stored.status.value}")
            return dataclasses.replace(outcome, order=stored, message=f"{outcome.message}{note}")
        return dataclasses.replace(outcome, order=stored, message=f"{outcome.message}. The desk was halted while this "
                                                                   f"order was on its way: {cancels.sentence()}")

    async def _reject(self, signal_id: str, actor: Actor, reason: str, message: str | None) -> Decision:
        found = await self._decidable(signal_id, actor, Action.REJECT, message)
        if isinstance(found, Decision):
            return found
        moved = await self.store.move_signal(signal_id, SignalStatus.PENDING, SignalStatus.REJECTED,
                                             actor=actor.label, reason=reason or "rejected", at=self.clock())
        if not moved.moved:
            return self._lost_race(signal_id, moved)
        if moved.signal is not None and moved.signal.is_exit:
            return Decision(True, "rejected", f"Rejected by {actor.label}; the position is kept.",
                            signal=moved.signal)
        return Decision(True, "rejected", f"Rejected by {actor.label}; ${moved.signal.reserved:.2f} released."
                        if moved.signal else "Rejected.", signal=moved.signal)

    def _lost_race(self, signal_id: str, moved: Transition) -> Decision:
        """Another click (or the sweeper) moved the signal first: say what it became, when and by whom."""
        message = decided_sentence(moved.signal, signal_id, moved.decided_by, moved.decided_at, self.clock())
        return Decision(False, "already_decided", self._scrub(message), signal=moved.signal,
                        details=_decision_details(moved.decided_by, moved.decided_at))

    async def expire_stale(self) -> list[TradeSignal]:
        """Expire every pending signal past its time; returns the ones this call expired."""
        return await self.store.expire_due(self.clock())

    # -- desk state -------------------------------------------------------------------------

    async def pause(self, actor: Actor) -> Decision:
        return await self._set_state(actor, Action.PAUSE, TradingState.PAUSED,
                                     "Paused: no new signals or approvals of entries.")

    async def resume(self, actor: Actor) -> Decision:
        return await self._set_state(actor, Action.RESUME, TradingState.ACTIVE, "Resumed: the desk is active.")

    async def halt(self, actor: Actor) -> Decision:
        """The kill switch: stop everything but reconciliation and cancel every resting live order.

        From the moment the state is stored no order is sent (the order row's transaction checks it). An order
        already on its way is cancelled as soon as it is seen resting: by its approval, or by reconciliation.
        """
        decision = await self._set_state(actor, Action.HALT, TradingState.HALTED,
                                         "HALTED: no trading until an authorized resume.")
        if not decision.ok:
            return decision
        cancels = await self._cancel_resting(actor.label)
        message = f"{decision.message} {cancels.sentence()}"
        in_flight = [o for o in await self.store.orders(OrderStatus.SUBMITTING, OrderStatus.UNKNOWN) if not o.paper]
        if in_flight:
            message += (f" {len(in_flight)} order(s) already on their way will be cancelled if they come to rest: "
                        + ", ".join(o.client_order_id for o in in_flight[:10]) + ".")
        return Decision(True, decision.code, self._scrub(message), changed=cancelled_items(cancels))

    async def _cancel_resting(self, actor: str) -> CancelReport:
        return await cancel_orders(self.store, self.venues, await self.store.orders(OrderStatus.RESTING), actor=actor,
                                   lock=self._cancel_lock, secrets=tuple(self.secret_values()))

    async def _set_state(self, actor: Actor, action: Action, state: TradingState, message: str) -> Decision:
        allowed = await self.authorize(actor, action)
        if not allowed.ok:
            return allowed
        previous = await self.store.set_trading_state(state, actor.label)
        if previous is state:
            return Decision(True, "unchanged", f"The desk is already {state.value}.")
        return Decision(True, state.value, message)

    async def status(self) -> DeskStatus:
        trading = self.settings.trading
        risk = await self.store.risk_snapshot(trading.dry_run, trading.initial_bankroll, day_start(self.clock()))
        last = await self.store.last_cycle_report()
        running = self.running_cycle
        return DeskStatus(dry_run=trading.dry_run, state=risk.state, risk=risk,
                          pending=await self.store.signals(SignalStatus.PENDING),
                          positions=await self.store.positions(paper=trading.dry_run),
                          cycle_running=running is not None, cycle_started_by=running[0] if running else "",
                          last_cycle_id=last.cycle_id if last else "",
                          llm_spend_today=await self.store.llm_spend_since(day_start(self.clock())),
                          last_cycle=last, stopped_venues=await self.store.stopped_venues())

    # -- the track record ---------------------------------------------------------------------

    async def score_record(self, limit: int = 50) -> int:
        """Score the estimates of closed markets that have resolved since (at most `limit` markets a pass, oldest
        first); returns how many estimates were scored. A venue that cannot say yet is asked again next pass."""
        scored = 0
        for venue_name, market_id in await self.store.unscored_markets(self.clock(), limit):
            client = self.venues.get(Venue(venue_name)) if venue_name in Venue._value2member_map_ else None
            if client is None:
                continue
            try:
                resolution = await client.resolution(market_id)
            except Exception as e:  # noqa: BLE001 - asked again later, behind the others
                log.info("no resolution for %s:%s yet: %s", venue_name, market_id, type(e).__name__)
                await self.store.checked_for_outcome(venue_name, market_id, self.clock())
                continue
            if resolution is not None:
                scored += await self.store.score_market(venue_name, market_id, resolution.yes_payout, self.clock())
            else:
                await self.store.checked_for_outcome(venue_name, market_id, self.clock())
        return scored

    async def _set_auto_weight(self) -> None:
        """Before a cycle: the analyst blends with the weight the record chose (analysis.market_weight "auto")."""
        if self.analyzer is None or self.settings.analysis.market_weight != "auto":
            return
        try:
            weight = await self.auto_market_weight()
        except Exception as e:  # noqa: BLE001 - the weight in use stands; the cycle is not worth losing for it
            log.warning("could not fit the market weight to the record: %s", type(e).__name__)
            return
        if weight is not None:
            self.analyzer.market_weight = weight

    async def auto_market_weight(self) -> Decimal | None:
        """analysis.market_weight "auto": the share that fitted the record best, once record.min_scored estimates
        have resolved; None when the weight is configured or the record is too short (the default stands)."""
        if self.settings.analysis.market_weight != "auto":
            return None
        record = await self.track_record()
        evidence = record.evidence
        # Only a record that beats the market on enough of the desk's own markets may move weight to the model;
        # otherwise the fit would chase noise, and the default stands.
        if evidence is None or evidence.n < self.settings.record.min_scored or not evidence.beats_market:
            return None
        return Decimal(str(best_market_weight(record.evidence_forecasts)))

    async def backtest(self, request: BacktestRequest, progress: BacktestProgress | None = None) -> BacktestReport:
        """Ask the analyst about resolved markets as of a lead time before they closed (pipeline/backtest.py)."""
        if self.analyzer is None:
            raise RefusedError("no_analyst", "A backtest needs the analyst: set ANTHROPIC_API_KEY (or use "
                                             "--snapshot sample for the recorded sample).")
        model = getattr(self.analyzer, "model", "") or self.settings.analysis.model
        cutoffs = dict(self.settings.analysis.knowledge_cutoff)
        if isinstance(self.analyzer, SampleAnalyzer) and self.analyzer.knowledge_cutoff is not None:
            cutoffs.setdefault(model, self.analyzer.knowledge_cutoff)  # the recorded sample says its own
        cutoff = cutoff_of(model, cutoffs)
        if cutoff is None:
            raise RefusedError("no_knowledge_cutoff", (
                f"Set analysis.knowledge_cutoff.{model} (a date, e.g. \"2026-03-31\") to the last day {model}'s "
                "training data may cover: the backtest asks only about markets that closed after it, since the "
                "model may know how earlier ones ended. Nothing was run."))
        if isinstance(self.analyzer, SampleAnalyzer) and await self.store.has_cycle_estimates():
            raise RefusedError("sample_into_desk", (
                "This database holds the desk's own estimates; the recorded sample's invented answers would be kept "
                "beside them. Give --db a file of its own (the default with --snapshot). Nothing was run."))
        prompt = getattr(self.analyzer, "prompt_key", "sample")
        tester = Backtester(self.store, self.venues, self.analyzer, model=model, prompt_version=prompt,
                            cutoff=cutoff, clock=self.clock, secrets=self.secret_values)
        return await tester.run(request, progress)  # the record rebuilds itself: its estimate counts changed

    async def realized_pnl(self) -> list[tuple[bool, datetime, Decimal]]:
        """Every realised P&L entry, paper and live, oldest first: (paper?, when booked, amount), one per exit fill
        and per settlement, for the record's P&L picture."""
        return [(bool(e["paper"]), parse_ts(e["at"]), Decimal(e["pnl"])) for e in await self.store.realized_ledger()]

    async def track_record(self) -> Record:
        """The analyst's record on this desk's own markets (pipeline/record.py scores it), rebuilt only when an
        estimate was added or scored since."""
        counts = await self.store.forecast_counts()
        if self._record is None or self._record[0] != counts:
            rows, trade_rows = await self.store.forecasts(), await self.store.trade_results()
            # Thousands of rows and a bootstrap per cut: off the event loop, which keeps acking Slack meanwhile.
            self._record = (counts, await asyncio.to_thread(build_record, rows, trade_rows))
        return self._record[1]

    async def _record_gate(self, signal: TradeSignal) -> str:
        """Why a live approval must wait for the record (trading.require_record), or "" when it may go."""
        if signal.dry_run or not self.settings.trading.require_record:
            return ""
        overall = (await self.track_record()).evidence
        assert overall is not None
        needed = self.settings.record.min_scored
        if overall.n >= needed and overall.beats_market:
            return ""
        said = (f"{overall.n} of the {needed} resolved markets needed (the desk's own cycles only; backtests and "
                "the sample do not count)" if overall.n < needed else
                f"the blend's skill against the market is {overall.skill * 100:+.1f}% with a 95% interval of "
                f"{overall.skill_low * 100:+.1f}% to {overall.skill_high * 100:+.1f}%, not all above zero")
        return (f"Live approvals wait for the analyst's track record (trading.require_record): {said}. Nothing was "
                "traded. `/desk record` shows the record; dry-run keeps building it.")

    # -- money at the venues ----------------------------------------------------------------

    async def venue_balances(self, timeout: float = 3.0) -> dict[Venue, Decimal | str]:
        """Cash at each configured venue, read at once; a venue that cannot say gives a short reason instead, so
        one venue's trouble never hides the other's figure."""
        venues = list(self.venues)
        found = await asyncio.gather(*(self._balance(v, timeout) for v in venues))
        return dict(zip(venues, found))

    async def _balance(self, venue: Venue, timeout: float) -> Decimal | str:
        """One venue's cash in dollars, or why it could not be read (scrubbed)."""
        client = self.venues[venue]
        read = getattr(client, "get_balance", None)
        if read is None:
            return f"{_name(venue)} has no balance to read on this desk"
        if getattr(client, "has_keys", True) is False:
            return "no API keys configured"
        try:
            async with asyncio.timeout(timeout):
                return await read()
        except TimeoutError:
            return f"{_name(venue)} did not answer in {timeout:g} s"
        except Exception as e:  # noqa: BLE001 - told as the reason, never raised
            return self._scrub(str(e) or type(e).__name__)

    async def marked_positions(self, timeout: float = 3.0) -> list[MarkedPosition]:
        """The open positions of the desk's mode, each valued at the best bid for its side now (what selling would
        fetch), so a viewer sees unrealised P&L; a figure that cannot be had carries a note saying why."""
        positions = await self.store.positions(paper=self.dry_run)
        markets = {(p.venue, p.market_id): await self.store.latest_market(p.venue, p.market_id) for p in positions}
        books = await self._fresh_books([m for m in markets.values() if m is not None], timeout)
        exiting = await self.store.exiting_positions()
        return [dataclasses.replace(mark_position(p, markets[(p.venue, p.market_id)],
                                                  books.get((p.venue, p.market_id), "market not known to this desk")),
                                    exiting=exiting.get(p.id or 0, ""))
                for p in positions]

    async def _fresh_books(self, markets: list[Market], timeout: float) -> dict[tuple[Venue, str], OrderBook | str]:
        """Each market's current book, batched per venue and bounded by `timeout`; or a short reason per market."""
        by_venue: dict[Venue, list[Market]] = {}
        for market in markets:
            by_venue.setdefault(market.venue, []).append(market)
        fetched = await asyncio.gather(*(self._venue_books(v, group, timeout) for v, group in by_venue.items()))
        return {(v, market_id): book for v, got in zip(by_venue, fetched) for market_id, book in got.items()}

    async def _venue_books(self, venue: Venue, markets: list[Market], timeout: float) -> dict[str, OrderBook | str]:
        """One venue's books for `markets` in one batched call; a failure becomes each market's note."""
        client = self.venues.get(venue)
        if client is None:
            return {m.id: f"{_name(venue)} is not configured on this desk" for m in markets}
        try:
            async with asyncio.timeout(timeout):
                got = await client.get_order_books(markets)
        except TimeoutError:
            return {m.id: f"{_name(venue)} book unavailable: no answer in {timeout:g} s" for m in markets}
        except Exception as e:  # noqa: BLE001 - told on each position, never raised
            got = {m.id: e for m in markets}
        return {m.id: self._book_or_reason(venue, got.get(m.id)) for m in markets}

    def _book_or_reason(self, venue: Venue, got: OrderBook | Exception | None) -> OrderBook | str:
        if isinstance(got, OrderBook):
            return got
        why = "the venue sent no book for it" if got is None else (str(got) or type(got).__name__)
        return self._scrub(f"{_name(venue)} book unavailable: {why}")

    async def reconcile(self, *, on_start: bool = False) -> ReconcileReport:
        """Check every live order that is not final at its venue; see pipeline/reconcile.py.

        On start nothing can be in flight in this process, so even young `submitting` orders are checked.
        """
        grace = timedelta(0) if on_start else timedelta(minutes=2)
        report = await Reconciler(self.store, self.venues, secrets=tuple(self.secret_values()), clock=self.clock,
                                  min_age=grace).run()
        if await self.store.trading_state() is TradingState.HALTED:  # what came to rest since the halt is cancelled
            report.halt_cancels = await self._cancel_resting(HALT_ACTOR)
            report.resolved += cancelled_items(report.halt_cancels)
        return report

    async def settle(self) -> SettlementReport:
        """Close positions in resolved markets; HALT the desk when today's realised loss reaches its limit."""
        # One instant for the whole pass: a loss booked at 23:59:59 counts against the day it was booked in,
        # even when the resolutions took the clock past midnight.
        now = self.clock()
        report = await Settler(self.store, self.venues, secrets=tuple(self.secret_values()), clock=lambda: now).run()
        report.halted, report.cancelled = await self._halt_on_daily_loss(now)
        return report

    async def _halt_on_daily_loss(self, now: datetime) -> tuple[str, list[ReconciledOrder]]:
        """The loss limit pulls the kill switch once a day; a person who resumes afterwards is not overruled."""
        trading = self.settings.trading
        start = day_start(now)
        snapshot = await self.store.risk_snapshot(trading.dry_run, trading.initial_bankroll, start)
        breach = self.risk.check_daily_loss(snapshot)
        if breach.allowed:
            return "", []
        reason = f"Daily loss limit: {breach.reason}."
        if not await self.store.halt_for_daily_loss(start.date().isoformat(), reason, actor=RISK_ACTOR):
            return "", []
        cancels = await self._cancel_resting(RISK_ACTOR)
        message = (f"{reason} The desk is HALTED: no cycles or approvals of entries until an authorized `/desk "
                   f"resume`; exits may still be approved. {cancels.sentence()}")
        return self._scrub(message), cancelled_items(cancels)

    async def attach_message(self, signal_id: str, ref: str) -> None:
        """Remember where a front end showed this signal, so later outcomes can edit it."""
        await self.store.set_message_ref(signal_id, ref)

    REPLAY_WINDOW = timedelta(minutes=10)  # Slack refuses requests signed more than 5 minutes ago; skew on top

    async def first_sight(self, request_signature: str) -> bool:
        """True the first time a signed request is seen, on any process sharing the database; False for a
        replay within the window in which its signature is still accepted."""
        first = await self.store.remember_request(request_signature, self.clock(), self.REPLAY_WINDOW)
        if not first:
            await self.store.audit("slack", "request", "replay", "refused:replayed",
                                   "a signed request already served was sent again; not acted on")
        return first

    async def withdraw_unshown(self, signal_id: str, why: str) -> TradeSignal | None:
        """A signal no one can see (its message could not be posted) must not hold capital or a market's slot
        until it expires: it is released at once. Returns it released, or None if it had already moved."""
        moved = await self.store.move_signal(signal_id, SignalStatus.PENDING, SignalStatus.EXPIRED,
                                             actor="desk", reason=f"never shown: {why}", at=self.clock())
        return moved.signal if moved.moved else None

    async def message_ref(self, signal_id: str) -> str:
        return await self.store.message_ref(signal_id)

    async def decision_of(self, signal_id: str) -> tuple[str, datetime | None]:
        """Who took the signal out of pending and when, for a front end redrawing it: ("", None) while pending."""
        return await self.store.signal_decision(signal_id)

    async def pending_signals(self) -> list[TradeSignal]:
        return await self.store.signals(SignalStatus.PENDING)

    async def signal(self, signal_id: str) -> TradeSignal | None:
        """The signal as stored now (a front end redraws from this, never from what it last drew)."""
        return await self.store.get_signal(signal_id)

    async def aclose(self) -> None:
        for venue in self.venues.values():
            await venue.aclose()


def _decision_details(by: str, at: datetime | None) -> dict[str, str]:
    """An already_decided refusal's details: the decider's label and the time in ISO 8601 UTC ("" when unknown)."""
    return {"decided_by": by, "decided_at": at.isoformat() if at is not None else ""}


def _name(venue: Venue) -> str:
    """A venue as people write it: Kalshi, Polymarket."""
    return venue.value.capitalize()
