"""Approve / Reject buttons, and a position's Close. A button carries only the signal id or the position's number;
everything else is looked up."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond

from .. import blocks
from ..present import replies
from ..present.model import Message, Tone
from ..runtime import SlackDesk, refusal_reply

log = logging.getLogger(__name__)


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

    @app.action(blocks.action_pattern(blocks.CLOSE_ACTION))
    async def close_position(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        """Propose selling one position for the user who clicked; the exit is posted to the desk's channel. From App
        Home there is no channel or response URL to answer in: the answer comes as a direct message from the app and
        the Home tab is redrawn (the button becomes "exit pending")."""
        await ack()
        user = body["user"]["id"]
        try:
            reply = await slack_desk.close(str(body["actions"][0].get("value", "")), user, single=True)
        except Exception as e:  # noqa: BLE001 - the ack is gone: the person must still hear something
            log.exception("Close failed")
            reply = Message(kind="close", tone=Tone.FAILURE, title="No exit proposed",
                            lines=(replies.close_failed(type(e).__name__),))
        if (body.get("container") or {}).get("type") == "view":
            await slack_desk.tell(user, reply)
            await slack_desk.publish_home(user)
        else:
            await respond(response_type="ephemeral", replace_original=False, **blocks.render(reply))
