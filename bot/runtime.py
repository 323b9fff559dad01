"""SlackDesk: runs the Desk's work into Slack messages. It renders and routes; the Desk decides.

A Slack failure never sinks a cycle or a decision: it is logged and the desk carries on, and
the signal's state in the store stays the truth that later messages are rebuilt from.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

from slack_sdk.errors import SlackApiError, SlackClientError

from pipeline.access import Action
from pipeline.config import Settings
from pipeline.cycle import CycleRequest, CycleResult, Progress
from pipeline.desk import Actor, Decision, Desk
from pipeline.errors import StorageError
from pipeline.models import CycleError, SignalStatus, TradeSignal, Venue
from pipeline.record import Record
from pipeline.strategy import initial_market_weight
from pipeline.reconcile import ReconciledOrder

from . import blocks, charts
from .present import cycles, outcomes, replies, reports, signals, state
from .present import record as present_record
from .present.model import Message
from .slack_client import Poster, message_ref, parse_ref

log = logging.getLogger(__name__)

PROGRESS_EDIT_SECONDS = 1.0  # Slack tolerates about one edit a second per message
# The cycle guard is held while its signals are posted; if Slack is this slow, the signals not yet shown are
# withdrawn (their capital released) rather than left pending where nobody can see them.
DELIVER_SECONDS = 120.0
RECORD_POST_SECONDS = 600  # /desk record posts its charts to the channel at most this often; otherwise a reply
COUNTDOWNS_PER_SWEEP = 20  # pending signals whose countdown is redrawn per sweep, soonest expiry first
VIEW_GROUP_CACHE_SECONDS = 60  # membership may be this stale for looking only; never for acting
GROUP_LOOKUP_SECONDS = 2.0  # a slash command must be answered within 3 s, lookup included
# Marks and venue cash are read from the venues. Anyone who may look could open App Home or type /desk positions
# in a loop; one read shared for this long keeps them from eating the rate budget an approval's re-check needs.
VENUE_READ_SECONDS = 20.0


class SlackDesk:
    def __init__(self, desk: Desk, poster: Poster, settings: Settings, *,
                 clock: Callable[[], datetime] | None = None) -> None:
        self.desk = desk
        self.poster = poster
        self.settings = settings
        self.clock = clock or desk.clock  # the desk's time: a countdown drawn here agrees with its expiry checks
        self._groups: dict[str, tuple[float, frozenset[str]]] = {}
        self._standing: frozenset[object] = frozenset()  # unresolved orders and mismatches last told
        self._venue_reads: dict[str, tuple[float, Any]] = {}
        self._venue_read_lock = asyncio.Lock()
        # Every edit of a signal's message holds its lock, so a countdown redraw can never land after an outcome.
        self._message_locks: dict[str, asyncio.Lock] = {}
        self._countdowns: dict[str, str] = {}  # signal id -> the countdown its message shows now
        self._record_posted: tuple[float, datetime] | None = None  # (monotonic, when) the record was last posted
        self._record_lock = asyncio.Lock()

    @property
    def channel(self) -> str:
        return self.settings.slack.channel

    # -- who is clicking ---------------------------------------------------------------------

    async def actor(self, user_id: str, action: Action) -> Actor:
        """The user, with the listed user groups they belong to that could let them do `action`.

        Only groups that matter are asked about, and none when the user's own id already grants the role: a user
        listed by id is never held up by Slack's group API. Membership is read afresh for anything that moves
        money or state (someone just removed from a group is refused at once); looking may use a minute-old read.
        """
        groups: set[str] = set()
        failed = ""
        try:
            async with asyncio.timeout(GROUP_LOOKUP_SECONDS):
                for group in self.desk.access.groups_to_check(user_id, action):
                    if user_id in await self._members(group, fresh=action.moves_state):
                        groups.add(group)
        except (SlackClientError, TimeoutError) as e:  # deny by default: an unknown membership authorizes nobody
            failed = _slack_error(e) if isinstance(e, SlackClientError) else "Slack did not answer in time"
            log.warning("could not check user groups for %s: %s", user_id, failed)
        return Actor(id=user_id, groups=frozenset(groups), lookup_failed=failed)

    async def _members(self, group: str, *, fresh: bool) -> frozenset[str]:
        cached = self._groups.get(group)
        if not fresh and cached and time.monotonic() - cached[0] < VIEW_GROUP_CACHE_SECONDS:
            return cached[1]
        response = await self.poster.client.usergroups_users_list(usergroup=group)
        members = frozenset(response.get("users", []))
        self._groups[group] = (time.monotonic(), members)
        return members

    async def authorize(self, user_id: str, action: Action, subject: str = "desk") -> tuple[Actor, Decision]:
        actor = await self.actor(user_id, action)
        return actor, await self.desk.authorize(actor, action, subject)

    # -- where the desk works -----------------------------------------------------------------

    def is_desk_channel(self, channel_id: str, channel_name: str) -> bool:
        """Is this the desk's channel? By id when the desk knows it (an id in `slack.channel`, or the one learnt
        when it posted there), else by the channel's name as Slack sent it (signed with the request)."""
        known = self._desk_channel_id()
        if known is not None:
            return channel_id == known
        return bool(channel_name) and channel_name == self.channel.removeprefix("#")

    def _desk_channel_id(self) -> str | None:
        configured = self.channel
        return configured if _looks_like_channel_id(configured) else self.poster.channel_id(configured)

    async def refuse_channel(self, user_id: str, action: str, channel_id: str) -> str:
        """The sentence for a command used outside the desk's channel; audited."""
        known = self._desk_channel_id()
        decision = await self.desk.refuse(
            Actor(id=user_id), action, channel_id or "no channel", "wrong_channel",
            f"The desk works in {f'<#{known}>' if known else self.channel} only: run `/{action}` there, where its "
            "signals and their buttons are.")
        return decision.message

    # -- cycles -----------------------------------------------------------------------------

    def busy_text(self) -> str | None:
        running = self.desk.running_cycle
        return blocks.render_text(cycles.busy(*running)) if running else None

    async def run_cycle(self, request: CycleRequest, actor: Actor | None = None) -> CycleResult:
        """One cycle into the desk's channel: a progress message edited as it goes, the signals, the summary.

        The desk holds its one-cycle guard until `deliver` has posted every signal and the summary, so a `/scan`
        sent meanwhile is told a cycle is running and two cycles' messages never interleave. `actor` is the person
        who asked for it (an operator's role is needed); the schedule passes none."""
        channel = self.channel
        venues = ", ".join(sorted(v.value for v in request.venues)) if request.venues else "all venues"
        started_by = request.started_by or "schedule"
        progress_ref: tuple[str, str] | None = None
        last_edit = 0.0

        async def show(message: Message, *, force: bool = False) -> None:
            nonlocal progress_ref, last_edit
            payload = blocks.render(message)
            try:
                if progress_ref is None:
                    progress_ref = await self.poster.post(channel, payload)
                elif force or time.monotonic() - last_edit >= PROGRESS_EDIT_SECONDS:
                    await self.poster.update(*progress_ref, payload)
                else:
                    return
                last_edit = time.monotonic()
            except Exception as e:  # noqa: BLE001 - a progress line is not worth a cycle
                log.warning("progress message failed: %s", _slack_error(e))

        async def on_progress(event: Progress) -> None:
            if event.stage == "done":  # computed, not finished: its signals are not posted yet
                return
            await show(cycles.progress(event.stage, event.done, event.total, started_by=started_by,
                                       dry_run=self.desk.dry_run, venues=venues))

        async def deliver(result: CycleResult) -> None:
            posted = 0
            deadline = time.monotonic() + DELIVER_SECONDS
            try:
                await show(cycles.progress("done", 0, 0, started_by=started_by, dry_run=self.desk.dry_run,
                                           venues=venues, posting=len(result.signals)), force=True)
                for signal in result.signals:
                    posted += await self._post_signal(channel, signal, result, deadline)
            finally:  # whatever happened, the channel is told how the cycle ended
                await show(cycles.progress_finished(result.report, posted, venues=venues), force=True)
                await self._post_report(channel, result)

        return await self.desk.scan(request, progress=on_progress, actor=actor, deliver=deliver)

    async def _post_signal(self, channel: str, signal: TradeSignal, result: CycleResult, deadline: float) -> int:
        """Post one of a cycle's signals; 1 if its buttons can act, else 0 (and the cycle's report says why)."""
        late = f"the cycle's signals were not all posted within {DELIVER_SECONDS:.0f} s"
        problem = await self._show_signal(channel, signal, deadline, late=late)
        if problem:
            result.report.errors.append(CycleError(stage="slack", message=problem))
        return 0 if problem else 1

    async def _show_signal(self, channel: str, signal: TradeSignal, deadline: float, *, late: str) -> str:
        """Post a signal and link it to its message: "" when its buttons can act, else why not (a sentence).

        A signal that cannot be shown, for whatever reason, is withdrawn at once: nobody could decide it. `late`
        says why when the deadline passed first."""
        try:
            async with asyncio.timeout(max(deadline - time.monotonic(), 0.001)):
                posted = await self.poster.post(channel, blocks.render(signals.signal_proposal(signal, self.clock())))
        except Exception as e:  # noqa: BLE001 - Slack errors, timeouts, a dropped connection: all mean unseen
            why = late if isinstance(e, TimeoutError) else f"its message could not be posted ({_slack_error(e)})"
            log.error("could not post signal %s: %s", signal.id, why)
            return await self._withdraw(signal, why)
        try:
            await self.desk.attach_message(signal.id, message_ref(*posted))
        except StorageError as e:  # a click must match the stored message, so its buttons cannot act
            log.error("could not link signal %s to its message: %s", signal.id, e)
            freed = "keeping the position" if signal.is_exit else "releasing its capital"
            return (f"signal {signal.id} ({signal.market.title}) was posted but not linked to its message ({e}); its "
                    f"buttons are refused and it expires at {signal.expires_at:%H:%M UTC}, {freed}")
        return ""

    async def _withdraw(self, signal: TradeSignal, why: str) -> str:
        """Release a signal nobody can see; returns what the cycle's error report says about it."""
        what = f"signal {signal.id} ({signal.market.title}): {why}"
        try:
            released = await self.desk.withdraw_unshown(signal.id, why)
        except StorageError as e:
            if signal.is_exit:
                return f"{what}; it could not be withdrawn either ({e}); it expires at {signal.expires_at:%H:%M UTC}"
            return (f"{what}; it could not be released either ({e}), so it holds ${signal.reserved:.2f} until it "
                    f"expires at {signal.expires_at:%H:%M UTC}")
        if released is None:
            return f"{what}; it had already left pending"
        if signal.is_exit:
            return f"{what}; withdrawn, nothing sold and the position kept"
        return f"{what}; withdrawn, its ${signal.reserved:.2f} and its market's slot released"

    async def _post_report(self, channel: str, result: CycleResult) -> None:
        try:
            await self.poster.post(channel, blocks.render(cycles.summary(result.report)))
            if result.report.errors:
                report = cycles.error_report(result.report)
                report_channel, ts = await self.poster.post(channel, blocks.render(report))
                for detail in report.thread:
                    await self.poster.post(report_channel, blocks.render(detail), thread_ts=ts)
        except Exception as e:  # noqa: BLE001 - the cycle is over; the report is told in the log instead
            log.error("could not post the cycle report: %s", _slack_error(e))

    # -- exits: a person asks to sell a position -----------------------------------------------

    async def close(self, ref: str, user_id: str, *, single: bool = False) -> Message:
        """`/desk close <number|ticker|all>` or a position's Close button (`single`: one position, never "all") for
        a Slack user: the desk proposes the exits, each is posted to the desk's channel as a proposal linked to its
        message, and the reply for that person says what was proposed and what was refused, and why."""
        actor = await self.actor(user_id, Action.CLOSE)  # fresh: proposing a sale moves state
        ref = " ".join(ref.split())
        decisions = (await self.desk.close_all(actor) if not single and ref.lower() == "all"
                     else [await self.desk.close(ref, actor)])
        deadline = time.monotonic() + DELIVER_SECONDS
        shown: list[tuple[Decision, str]] = []
        for decision in decisions:
            problem = ""
            if decision.ok and decision.signal is not None:
                problem = await self._show_signal(self.channel, decision.signal, deadline,
                                                  late=f"its message was not posted within {DELIVER_SECONDS:.0f} s")
            shown.append((decision, problem))
        return replies.close_reply(shown)

    async def tell(self, user_id: str, message: Message) -> None:
        """A reply to one person who acted where there is no channel to answer in (App Home): a direct message from
        the app (its Messages tab), which needs no channel membership and stays readable."""
        try:
            await self.poster.post(user_id, blocks.render(message))
        except SlackClientError as e:
            log.error("could not send %s a direct message: %s", user_id, _slack_error(e))

    # -- decisions ----------------------------------------------------------------------------

    async def decide(self, signal_id: str, user_id: str, approve: bool, *, channel: str, ts: str) -> Decision:
        """Approve or reject for a Slack user clicking on the message at (channel, ts); the signal's own message
        shows the outcome when it changed."""
        actor = await self.actor(user_id, Action.APPROVE if approve else Action.REJECT)
        clicked = message_ref(channel, ts)  # the desk refuses a click from any message but the signal's own
        decision = await (self.desk.approve(signal_id, actor, message=clicked) if approve
                          else self.desk.reject(signal_id, actor, message=clicked))
        signal = decision.signal
        changed = decision.ok or decision.code in ("expired", "failed", "unknown", "desk_stopped", "position_changed")
        if decision.stopped is not None:  # orders to a venue were just stopped: the whole channel hears it, once
            try:
                await self.poster.post(self.channel, blocks.render(reports.orders_stopped_message(decision.stopped)))
            except SlackClientError as e:
                log.error("could not post that orders stopped: %s", _slack_error(e))
        if signal is not None and changed:
            where = parse_ref(await self.desk.message_ref(signal_id))  # the signal's own message, never the click's
            if where is not None:
                now = self.clock()
                message = blocks.render(outcomes.signal_expired(signal, now) if signal.status is SignalStatus.EXPIRED
                                        else outcomes.signal_outcome(signal, decision, actor.label, now))
                await self._edit(signal_id, where, message)
        return decision

    def _lock(self, signal_id: str) -> asyncio.Lock:
        return self._message_locks.setdefault(signal_id, asyncio.Lock())

    async def _edit(self, signal_id: str, where: tuple[str, str], payload: dict[str, Any]) -> None:
        """Edit a signal's message under its lock; a decided signal's message is never redrawn as pending after."""
        async with self._lock(signal_id):
            self._countdowns.pop(signal_id, None)
            try:
                await self.poster.update(*where, payload)
            except SlackClientError as e:
                log.error("could not update signal %s: %s", signal_id, _slack_error(e))

    async def refresh_countdowns(self) -> int:
        """Redraw pending signals whose "n min left" changed since they were drawn, soonest expiry first.

        The store is read again under the message's lock: a signal decided meanwhile is left to its outcome."""
        now = self.clock()
        pending = sorted(await self.desk.pending_signals(), key=lambda s: s.expires_at)
        live = {s.id for s in pending}
        for gone in [k for k in self._message_locks if k not in live and not self._message_locks[k].locked()]:
            self._message_locks.pop(gone, None)
            self._countdowns.pop(gone, None)
        redrawn = 0
        for signal in pending:
            if redrawn >= COUNTDOWNS_PER_SWEEP or signal.expires_at <= now:
                continue
            shown = signals.countdown_words(signal, now)
            if self._countdowns.setdefault(signal.id, signals.countdown_words(signal, signal.created_at)) == shown:
                continue
            where = parse_ref(await self.desk.message_ref(signal.id))
            if where is None:
                continue
            async with self._lock(signal.id):
                current = await self.desk.signal(signal.id)
                if current is None or current.status is not SignalStatus.PENDING:
                    continue
                try:
                    await self.poster.update(*where, blocks.render(signals.signal_proposal(current, now)))
                except SlackClientError as e:
                    log.warning("could not redraw the countdown of signal %s: %s", signal.id, _slack_error(e))
                    continue
                self._countdowns[signal.id] = shown
                redrawn += 1
        return redrawn

    async def sweep(self) -> int:
        """Expire overdue signals and say so on their messages; redraw the countdowns of the others."""
        expired = await self.desk.expire_stale()
        for signal in expired:
            where = parse_ref(await self.desk.message_ref(signal.id))
            if where is not None:
                await self._edit(signal.id, where, blocks.render(outcomes.signal_expired(signal, self.clock())))
        await self.refresh_countdowns()
        return len(expired)

    async def reconcile(self, *, on_start: bool = False) -> int:
        """Reconcile live orders with their venues; tell the channel when anything changed or is stuck."""
        report = await self.desk.reconcile(on_start=on_start)
        for item in report.resolved:
            await self._redraw_reconciled(item)
        # Standing problems are told when they appear or change, not every few minutes.
        standing = frozenset([i.order.client_order_id for i in report.unresolved] + report.positions +
                             report.foreign + [s.key for s in report.skipped] +
                             [("cancel", coid) for coid, _ in report.halt_cancels.failed])
        if report.resolved or report.released or standing != self._standing:
            try:
                await self.poster.post(self.channel, blocks.render(reports.reconcile_message(report)))
            except SlackClientError as e:
                log.error("could not post the reconciliation report: %s", _slack_error(e))
            else:
                self._standing = standing
        return len(report.resolved)

    async def settle(self) -> int:
        """Close positions in resolved markets and say so; a daily-loss halt is told loudly."""
        report = await self.desk.settle()
        try:  # the same resolutions score the analyst's record
            await self.desk.score_record()
        except Exception as e:  # noqa: BLE001 - the next pass tries again
            log.warning("could not score the track record: %s", type(e).__name__)
        for item in report.cancelled:  # the loss halt cancelled these: their messages say so
            await self._redraw_reconciled(item)
        try:
            if report.settled:
                await self.poster.post(self.channel, blocks.render(reports.settlement_message(report)))
            if report.halted:
                await self.poster.post(self.channel, blocks.render(reports.loss_halt_message(report.halted)))
        except SlackClientError as e:
            log.error("could not post the settlement report: %s", _slack_error(e))
        return len(report.settled)

    async def set_state(self, sub: str, user_id: str) -> Decision:
        """`/desk pause | resume | halt | resume <venue>` for a Slack user; the signals of orders a halt cancelled
        are redrawn."""
        verb, _, venue = sub.partition(" ")
        action = Action.RESUME_ORDERS if venue else Action(verb)
        actor = await self.actor(user_id, action)
        if venue:
            return await self.desk.resume_orders(actor, Venue(venue))
        move = {"pause": self.desk.pause, "resume": self.desk.resume, "halt": self.desk.halt}[verb]
        decision = await move(actor)
        for item in decision.changed:
            await self._redraw_reconciled(item)
        return decision

    async def _redraw_reconciled(self, item: ReconciledOrder) -> None:
        """The signal's own message shows what reconciliation learnt (its Approve reply may never have come)."""
        if item.signal is None:
            return
        where = parse_ref(await self.desk.message_ref(item.signal.id))
        if where is None:
            return
        decided_by, decided_at = await self.desk.decision_of(item.signal.id)
        await self._edit(item.signal.id, where, blocks.render(outcomes.signal_reconciled(item, decided_by, decided_at,
                                                                                         self.clock())))

    # -- App Home -----------------------------------------------------------------------------

    async def publish_home(self, user_id: str) -> None:
        """The desk for a viewer; for anyone else a home that says who to ask (never a blank tab)."""
        _, allowed = await self.authorize(user_id, Action.VIEW, "app_home")
        if not allowed.ok:
            await self.poster.client.views_publish(user_id=user_id,
                                                   view=blocks.render_home(state.home_refused_page(allowed)))
            return
        status = await self.desk.status()
        marked = await self._shared_read("marks", self.desk.marked_positions)
        cash = None if status.dry_run else await self._shared_read("cash", self.desk.venue_balances)
        record_line = present_record.headline(await self.desk.track_record())
        await self.poster.client.views_publish(user_id=user_id, view=blocks.render_home(
            state.home_page(status, self.clock(), marked, cash, record_line)))

    # -- the track record -----------------------------------------------------------------------

    async def post_record(self) -> str:
        """/desk record (the caller authorized it): the record and its two charts in the desk's channel, at most
        once per RECORD_POST_SECONDS; a request meanwhile is answered with the headline and where the charts are.
        Returns the reply for the person who asked."""
        async with self._record_lock:
            record = await self.desk.track_record()
            last = self._record_posted
            if last is not None and time.monotonic() - last[0] < RECORD_POST_SECONDS:
                return blocks.render_text(present_record.headline(record)) + (
                    f"\nThe charts were posted in the channel at {last[1]:%H:%M} UTC; they are posted at most every "
                    f"{RECORD_POST_SECONDS // 60} minutes.")
            weight = self.settings.analysis.market_weight
            said = (f"{await self.desk.auto_market_weight() or initial_market_weight(weight)} (auto)"
                    if weight == "auto" else str(weight))
            channel, ts = await self.poster.post(self.channel, blocks.render(present_record.record_message(record,
                                                                                                         said)))
            self._record_posted = (time.monotonic(), self.clock())  # posted: the limit holds whatever follows
            booked = await self.desk.realized_pnl()
            calibration, pnl = await asyncio.to_thread(_record_charts, record, booked)
            try:
                for name, data, title in (("calibration.png", calibration, "Calibration: model and blend"),
                                          ("pnl.png", pnl, "Cumulative realised P&L")):
                    await self.poster.upload_png(channel, name, data, title=title, alt_text=title, thread_ts=ts)
            except Exception as e:  # noqa: BLE001 - the numbers are posted; the thread says the pictures are not
                log.warning("could not upload the record's charts: %s", _slack_error(e))
                await self.poster.post(channel, {"text": f"The charts could not be uploaded ({_slack_error(e)}); "
                                                 "the numbers above stand. Try /desk record again in 10 minutes."},
                                       thread_ts=ts)
                return "The track record is in the channel; its charts could not be uploaded (see its thread)."
            return "The track record and its charts are in the channel (the charts in the thread under it)."

    # -- views for one person (authorized by the caller) ---------------------------------------

    async def status_view(self) -> Message:
        return state.status_message(await self.desk.status())

    async def positions_view(self) -> Message:
        """Open positions with their marks: the venues' books are read, so answer through response_url."""
        status = await self.desk.status()
        return state.positions_message(status, await self._shared_read("marks", self.desk.marked_positions),
                                       self.clock())

    async def balance_view(self) -> Message:
        """The desk's money and, live, each venue's cash (read from the venues)."""
        status = await self.desk.status()
        balances = None if status.dry_run else await self._shared_read("cash", self.desk.venue_balances)
        return state.balance_message(status, balances)

    async def _shared_read(self, key: str, read: Callable[[], Awaitable[Any]]) -> Any:
        """One venue read shared by everyone asking within VENUE_READ_SECONDS (and by concurrent askers)."""
        async with self._venue_read_lock:
            cached = self._venue_reads.get(key)
            if cached is not None and time.monotonic() - cached[0] < VENUE_READ_SECONDS:
                return cached[1]
            value = await read()
            self._venue_reads[key] = (time.monotonic(), value)
            return value


def _record_charts(record: Record, booked: list[tuple[bool, datetime, Decimal]]) -> tuple[bytes, bytes]:
    """Both pictures of the record, drawn off the event loop (matplotlib takes a good fraction of a second)."""
    calibration = charts.calibration_png(charts.record_bins(record.overall), title="Calibration: forecasts that "
                                         "resolved, model and blend against the diagonal")
    return calibration, charts.pnl_png(charts.realized_pnl(booked), title="Cumulative realised P&L, paper and live")


def refusal_reply(decision: Decision) -> str:
    """An ephemeral reply to one person: which market, and why not."""
    return blocks.render_text(outcomes.refusal(decision))


def _looks_like_channel_id(channel: str) -> bool:
    return channel[:1] in ("C", "G") and channel.isalnum() and channel.isupper()  # names are lower case


def _slack_error(error: BaseException) -> str:
    """Slack's error code, or the kind of failure; never the request (it may carry the token)."""
    if isinstance(error, SlackApiError):
        return str(error.response.get("error", "slack error"))
    return type(error).__name__
