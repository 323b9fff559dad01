"""/scan and /desk: acknowledged at once, the work continues after the ack."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond

from pipeline.access import Action
from pipeline.cycle import CycleRequest
from pipeline.errors import RefusedError
from pipeline.models import Venue

from .. import blocks
from ..present import replies, state
from ..runtime import SlackDesk, refusal_reply

log = logging.getLogger(__name__)

def parse_scan(text: str) -> CycleRequest | str:
    """`[kalshi|polymarket|all] [limit N]` -> a request, or the reply saying what is wrong (mrkdwn, escaped)."""
    words = text.lower().split()
    venues: set[Venue] | None = None
    limit: int | None = None
    i = 0
    while i < len(words):
        word = words[i]
        if word in ("kalshi", "polymarket"):
            venues = {Venue(word)}
        elif word == "all":
            venues = None
        elif word == "limit" and i + 1 < len(words) and words[i + 1].isdigit() and 0 < int(words[i + 1]) <= 500:
            limit = int(words[i + 1])
            i += 1
        else:
            return blocks.render_text(replies.scan_not_understood(word))
        i += 1
    return CycleRequest(trigger="slash", venues=venues, limit=limit)


class Background:
    """Keeps references to work started after an ack, so it is not garbage-collected mid-flight."""

    def __init__(self) -> None:
        self.tasks: set[asyncio.Task[Any]] = set()

    def start(self, coroutine: Any) -> asyncio.Task[Any]:
        task = asyncio.create_task(coroutine)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task


def register(app: AsyncApp, slack_desk: SlackDesk) -> None:
    background = Background()

    @app.command("/scan")
    async def scan(ack: AsyncAck, command: dict[str, Any], respond: AsyncRespond) -> None:
        parsed = parse_scan(command.get("text", ""))
        if isinstance(parsed, str):
            await ack(response_type="ephemeral", text=parsed)
            return
        user = command["user_id"]
        if not slack_desk.is_desk_channel(command.get("channel_id", ""), command.get("channel_name", "")):
            await ack(response_type="ephemeral",
                      text=await slack_desk.refuse_channel(user, "scan", command.get("channel_id", "")))
            return
        busy = slack_desk.busy_text()
        if busy:
            await ack(response_type="ephemeral", text=busy)
            return
        actor, allowed = await slack_desk.authorize(user, Action.SCAN)
        if not allowed.ok:
            await ack(response_type="ephemeral", text=refusal_reply(allowed))
            return
        await ack(response_type="ephemeral", text=blocks.render_text(replies.scan_started()))
        parsed.started_by = user  # blocks render an id as a mention

        async def run() -> None:
            try:
                await slack_desk.run_cycle(parsed, actor)
            except RefusedError as e:  # a cycle already running, the desk halted, or the role gone meanwhile
                await respond(response_type="ephemeral", text=blocks.render_text(replies.cycle_refused(e.reason)))
            except Exception:
                log.exception("cycle failed")
                await respond(response_type="ephemeral", text=blocks.render_text(replies.cycle_failed()))

        background.start(run())

    async def close(ack: AsyncAck, command: dict[str, Any], respond: AsyncRespond, ref: str) -> None:
        """/desk close <number|ticker|all>: in the desk's channel, where the exits are posted for an approver."""
        user, channel = command["user_id"], command.get("channel_id", "")
        if not slack_desk.is_desk_channel(channel, command.get("channel_name", "")):
            await ack(response_type="ephemeral", text=await slack_desk.refuse_channel(user, "desk close", channel))
            return
        await ack()  # each exit is priced against its venue's bids: the answer follows through response_url
        try:
            reply = await slack_desk.close(ref, user)
        except Exception as e:  # noqa: BLE001 - the ack is gone: the person must still hear something
            log.exception("/desk close failed")
            await respond(response_type="ephemeral", text=blocks.render_text(replies.close_failed(type(e).__name__)))
            return
        await respond(response_type="ephemeral", **blocks.render(reply))

    @app.command("/desk")
    async def desk_command(ack: AsyncAck, command: dict[str, Any], respond: AsyncRespond) -> None:
        words = (command.get("text") or "help").split()
        sub = " ".join(words).lower()
        if words and words[0].lower() == "close":  # the rest as typed: a Polymarket id or a ticker
            await close(ack, command, respond, " ".join(words[1:]))
            return
        if sub in ("pause", "resume", "halt") or sub in ("resume kalshi", "resume polymarket"):
            await ack()
            decision = await slack_desk.set_state(sub, command["user_id"])
            await respond(response_type="in_channel" if decision.ok else "ephemeral",
                          text=refusal_reply(decision) if not decision.ok else
                          blocks.render_text(state.state_changed(decision, command["user_id"])))
            return
        if sub == "help":
            await ack(response_type="ephemeral", **blocks.render(state.help_message()))
        elif sub == "record":
            _, allowed = await slack_desk.authorize(command["user_id"], Action.VIEW, "desk record")
            if not allowed.ok:
                await ack(response_type="ephemeral", text=refusal_reply(allowed))
                return
            await ack()  # drawing and uploading two charts takes longer than Slack's 3 s
            try:
                said = await slack_desk.post_record()
            except Exception as e:  # noqa: BLE001 - the ack is gone: the person must still hear something
                log.exception("/desk record failed")
                said = blocks.render_text(replies.read_failed("record", type(e).__name__))
            await respond(response_type="ephemeral", text=said)
        elif sub in ("status", "positions", "balance"):
            _, allowed = await slack_desk.authorize(command["user_id"], Action.VIEW, f"desk {sub}")
            if not allowed.ok:
                await ack(response_type="ephemeral", text=refusal_reply(allowed))
                return
            if sub == "status":  # no venue is asked: answered within Slack's 3 s
                await ack(response_type="ephemeral", **blocks.render(await slack_desk.status_view()))
                return
            await ack()  # marks and venue cash take a venue round trip: the answer follows through response_url
            try:
                view = await (slack_desk.positions_view() if sub == "positions" else slack_desk.balance_view())
            except Exception as e:  # noqa: BLE001 - the ack is gone: the person must still hear something
                log.exception("/desk %s failed", sub)
                await respond(response_type="ephemeral",
                              text=blocks.render_text(replies.read_failed(sub, type(e).__name__)))
                return
            await respond(response_type="ephemeral", **blocks.render(view))
        else:
            await ack(response_type="ephemeral", text=blocks.render_text(replies.desk_not_understood(sub)))
