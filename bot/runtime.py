"""SlackDesk: runs the Desk's work into Slack messages. It renders and routes; the Desk decides.

A Slack failure never sinks a cycle or a decision: it is logged and the desk carries on, and
the signal's state in the store stays the truth that later messages are rebuilt from.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime

from slack_sdk.errors import SlackApiError, SlackClientError

from pipeline.config import Settings
from pipeline.cycle import CycleRequest, CycleResult, Progress
from pipeline.desk import Actor, Decision, Desk
from pipeline.errors import StorageError
from pipeline.models import CycleError, SignalStatus, Venue, utcnow
from pipeline.reconcile import ReconciledOrder

from . import blocks
from .slack_client import Poster, message_ref, parse_ref

log = logging.getLogger(__name__)

PROGRESS_EDIT_SECONDS = 1.0  # Slack tolerates about one edit a second per message
GROUP_CACHE_SECONDS = 300


class SlackDesk:
    def __init__(self, desk: Desk, poster: Poster, settings: Settings, *,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.desk = desk
        self.poster = poster
        self.settings = settings
        self.clock = clock
        self._groups: dict[str, tuple[float, frozenset[str]]] = {}
        self._standing: frozenset[object] = frozenset()  # unresolved orders and mismatches last told

    @property
    def channel(self) -> str:
        return self.settings.slack.channel

    # -- who is clicking ---------------------------------------------------------------------

    async def actor(self, user_id: str) -> Actor:
        """The user with the authorized user groups they belong to (looked up, cached briefly)."""
        groups = set()
        for group in self.settings.approval.authorized_usergroups:
            if user_id in await self._members(group):
                groups.add(group)
        return Actor(id=user_id, groups=frozenset(groups))

    async def _members(self, group: str) -> frozenset[str]:
        cached = self._groups.get(group)
        if cached and time.monotonic() - cached[0] < GROUP_CACHE_SECONDS:
            return cached[1]
        try:
            response = await self.poster.client.usergroups_users_list(usergroup=group)
            members = frozenset(response.get("users", []))
        except SlackClientError as e:  # deny by default: an unknown membership authorizes nobody
            log.warning("could not list user group %s: %s", group, type(e).__name__)
            return frozenset()
        self._groups[group] = (time.monotonic(), members)
        return members

    # -- cycles -----------------------------------------------------------------------------

    def busy_text(self) -> str | None:
        running = self.desk.running_cycle
        return blocks.cycle_busy_text(*running) if running else None

    async def run_cycle(self, request: CycleRequest, channel: str | None = None) -> CycleResult:
        """One cycle into `channel`: a progress message edited as it goes, the signals, the summary."""
        channel = channel or self.channel
        venues = ", ".join(sorted(v.value for v in request.venues)) if request.venues else "all venues"
        progress_ref: tuple[str, str] | None = None
        last_edit = 0.0

        async def on_progress(event: Progress) -> None:
            nonlocal progress_ref, last_edit
            message = blocks.progress_message(event.stage, event.done, event.total,
                                              started_by=request.started_by or "the scheduler",
                                              dry_run=self.desk.dry_run, venues=venues)
            try:
                if progress_ref is None:
                    progress_ref = await self.poster.post(channel, message)
                elif event.stage == "done" or time.monotonic() - last_edit >= PROGRESS_EDIT_SECONDS:
                    await self.poster.update(*progress_ref, message)
                else:
                    return
                last_edit = time.monotonic()
            except SlackClientError as e:  # a progress line is not worth a cycle
                log.warning("progress message failed: %s", _slack_error(e))

        result = await self.desk.scan(request, progress=on_progress)
        for signal in result.signals:
            try:
                posted = await self.poster.post(channel, blocks.signal_message(signal))
            except SlackClientError as e:
                log.error("could not post signal %s: %s", signal.id, _slack_error(e))
                result.report.errors.append(CycleError(
                    stage="slack", message=f"signal {signal.id} could not be posted: {_slack_error(e)}; "
                                           "it expires unseen"))
                continue
            try:
                await self.desk.attach_message(signal.id, message_ref(*posted))
            except StorageError as e:  # the message stands and its buttons work; only later redraws are lost
                log.error("could not link signal %s to its message: %s", signal.id, e)
                result.report.errors.append(CycleError(
                    stage="slack", message=f"signal {signal.id} was posted but not linked to its message ({e}); "
                                           "its buttons work, but later outcomes will not redraw it"))
        await self._post_report(channel, result)
        return result

    async def _post_report(self, channel: str, result: CycleResult) -> None:
        try:
            await self.poster.post(channel, blocks.cycle_summary_message(result.report))
            if result.report.errors:
                summary, details = blocks.error_report_messages(result.report)
                report_channel, ts = await self.poster.post(channel, summary)
                for detail in details:
                    await self.poster.post(report_channel, detail, thread_ts=ts)
        except SlackClientError as e:
            log.error("could not post the cycle report: %s", _slack_error(e))

    # -- decisions ----------------------------------------------------------------------------

    async def decide(self, signal_id: str, user_id: str, approve: bool, *, channel: str = "",
                     ts: str = "") -> Decision:
        """Approve or reject for a Slack user; the signal's message shows the outcome when it changed."""
        actor = await self.actor(user_id)
        decision = await (self.desk.approve(signal_id, actor) if approve else self.desk.reject(signal_id, actor))
        signal = decision.signal
        changed = decision.ok or decision.code in ("expired", "failed", "unknown", "desk_stopped")
        if decision.stopped is not None:  # orders to a venue were just stopped: the whole channel hears it, once
            try:
                await self.poster.post(self.channel, blocks.orders_stopped_message(decision.stopped))
            except SlackClientError as e:
                log.error("could not post that orders stopped: %s", _slack_error(e))
        if signal is not None and changed:
            where = (channel, ts) if channel and ts else parse_ref(await self.desk.message_ref(signal_id))
            if where is not None:
                message = (blocks.signal_expired_message(signal) if signal.status is SignalStatus.EXPIRED
                           else blocks.signal_decided_message(signal, decision, actor.label))
                try:
                    await self.poster.update(*where, message)
                except SlackClientError as e:
                    log.error("could not update signal %s: %s", signal_id, _slack_error(e))
        return decision

    async def sweep(self) -> int:
        """Expire overdue signals and say so on their messages."""
        expired = await self.desk.expire_stale()
        for signal in expired:
            where = parse_ref(await self.desk.message_ref(signal.id))
            if where is None:
                continue
            try:
                await self.poster.update(*where, blocks.signal_expired_message(signal))
            except SlackClientError as e:
                log.warning("could not mark signal %s expired: %s", signal.id, _slack_error(e))
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
                await self.poster.post(self.channel, blocks.reconcile_message(report))
            except SlackClientError as e:
                log.error("could not post the reconciliation report: %s", _slack_error(e))
            else:
                self._standing = standing
        return len(report.resolved)

    async def settle(self) -> int:
        """Close positions in resolved markets and say so; a daily-loss halt is told loudly."""
        report = await self.desk.settle()
        for item in report.cancelled:  # the loss halt cancelled these: their messages say so
            await self._redraw_reconciled(item)
        try:
            if report.settled:
                await self.poster.post(self.channel, blocks.settlement_message(report))
            if report.halted:
                await self.poster.post(self.channel, blocks.loss_halt_message(report.halted))
        except SlackClientError as e:
            log.error("could not post the settlement report: %s", _slack_error(e))
        return len(report.settled)

    async def set_state(self, sub: str, user_id: str) -> Decision:
        """`/desk pause | resume | halt | resume <venue>` for a Slack user; the signals of orders a halt cancelled
        are redrawn."""
        actor = await self.actor(user_id)
        verb, _, venue = sub.partition(" ")
        if venue:
            return await self.desk.resume_orders(actor, Venue(venue))
        action = {"pause": self.desk.pause, "resume": self.desk.resume, "halt": self.desk.halt}[verb]
        decision = await action(actor)
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
        decided_by = await self.desk.decided_by(item.signal.id)
        try:
            await self.poster.update(*where, blocks.signal_reconciled_message(item, decided_by))
        except SlackClientError as e:
            log.warning("could not redraw signal %s: %s", item.signal.id, _slack_error(e))

    # -- App Home -----------------------------------------------------------------------------

    async def publish_home(self, user_id: str) -> None:
        status = await self.desk.status()
        await self.poster.client.views_publish(user_id=user_id, view=blocks.home_view(status, self.clock()))


def _slack_error(error: SlackClientError) -> str:
    if isinstance(error, SlackApiError):
        return str(error.response.get("error", "slack error"))
    return type(error).__name__
