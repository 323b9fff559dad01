"""Approve / Reject buttons. The button carries only the signal id; everything else is looked up."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond

from .. import blocks
from ..runtime import SlackDesk, refusal_reply


def register(app: AsyncApp, slack_desk: SlackDesk) -> None:
    async def decide(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond, approve: bool) -> None:
        await ack()
        action = body["actions"][0]
        # Where the click was made, as Slack says (signed): the desk acts only if it is the signal's own message.
        container = body.get("container") or {}
        decision = await slack_desk.decide(action.get("value", ""), body["user"]["id"], approve,
                                           channel=str(container.get("channel_id") or ""),
                                           ts=str(container.get("message_ts") or ""))
        if not decision.ok:
            await respond(response_type="ephemeral", replace_original=False, text=refusal_reply(decision))

    @app.action(blocks.APPROVE_ACTION)
    async def approve(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await decide(ack, body, respond, True)

    @app.action(blocks.REJECT_ACTION)
    async def reject(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await decide(ack, body, respond, False)
