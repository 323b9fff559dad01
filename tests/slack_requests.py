"""What Slack sends to an app in HTTP mode, built and signed, so tests can POST it to the app's /slack/events.

    body = slash_command("/scan", "kalshi", user_id="U0TRADER1", channel_id=DESK_CHANNEL,
                         response_url=slack.new_response_url(channel=DESK_CHANNEL, user="U0TRADER1"))
    status, text = await post_to_app(app_url, body, sign(SECRET, body), content_type=FORM)

Shapes follow Slack's payloads and what Bolt 1.30 reads from them (slack_bolt/request/internals.py):
- slash commands are form fields; Bolt takes user_id, channel_id, team_id, response_url and `command` (its
  matcher) straight from them.
- block_actions are a form body with one field, `payload=<JSON>`; Bolt reads user.id, channel.id, team.id,
  response_url and `actions[0]` (action_id, block_id) for its matchers.
- Events API callbacks are JSON; Bolt reads event.user, event.channel, team_id / authorizations[0].
Careful: Bolt parses a form body as `payload=` JSON whenever the substring "payload" appears anywhere in it, so a
slash command whose text (or response_url) contains "payload" reaches the app as an empty body.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from typing import Any
from urllib.parse import urlencode

import httpx

from .servers.slack import APP_ID, BOT_USER_ID, DEFAULT_CHANNELS, DEFAULT_USERS, TEAM_DOMAIN, TEAM_ID, dm_channel_id

FORM = "application/x-www-form-urlencoded"
JSON = "application/json"
# The deprecated verification token Slack still sends in every payload (Bolt ignores it; signatures rule).
VERIFICATION_TOKEN = "fakeVerificationToken0001"
SLACK_USER_AGENT = "Slackbot 1.0 (+https://api.slack.com/robots)"


def sign(secret: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    """Slack's request signature: `v0=` + hex HMAC-SHA256(secret, f"v0:{ts}:{body}")."""
    ts = int(time.time()) if timestamp is None else int(timestamp)
    base = b"v0:" + str(ts).encode() + b":" + body
    digest = hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": str(ts), "X-Slack-Signature": f"v0={digest}"}


def new_trigger_id() -> str:
    return f"{secrets.randbelow(10**13):013d}.{secrets.randbelow(10**9):09d}.{secrets.token_hex(16)}"


def _ts() -> str:
    return f"{time.time():.6f}"


def _user_name(user_id: str) -> str:
    return DEFAULT_USERS.get(user_id, user_id.lower())


def _channel_name(channel_id: str) -> str:
    if channel_id.startswith("D"):
        return "directmessage"
    if channel_id.startswith("G"):
        return "privategroup"
    return DEFAULT_CHANNELS.get(channel_id, channel_id.lower())


def slash_command(command: str, text: str, *, user_id: str, channel_id: str, response_url: str,
                  team_id: str = TEAM_ID, trigger_id: str | None = None, user_name: str | None = None,
                  channel_name: str | None = None, team_domain: str = TEAM_DOMAIN, api_app_id: str = APP_ID,
                  token: str = VERIFICATION_TOKEN) -> bytes:
    """A slash command invocation, form-encoded in the field order Slack sends."""
    fields = {
        "token": token,
        "team_id": team_id,
        "team_domain": team_domain,
        "channel_id": channel_id,
        "channel_name": channel_name or _channel_name(channel_id),
        "user_id": user_id,
        "user_name": user_name or _user_name(user_id),
        "command": command,
        "text": text,
        "api_app_id": api_app_id,
        "is_enterprise_install": "false",
        "response_url": response_url,
        "trigger_id": trigger_id or new_trigger_id(),
    }
    return urlencode(fields).encode()


def _find_button(message: dict[str, Any] | None, action_id: str) -> tuple[str | None, dict[str, Any] | None]:
    for block in (message or {}).get("blocks") or []:
        elements = list(block.get("elements") or [])
        if block.get("accessory"):
            elements.append(block["accessory"])
        for element in elements:
            if isinstance(element, dict) and element.get("action_id") == action_id:
                return block.get("block_id"), element
    return None, None


def block_action_payload(action_id: str, value: str, *, user_id: str, channel_id: str, message_ts: str,
                         response_url: str, block_id: str | None = None, message: dict[str, Any] | None = None,
                         team_id: str = TEAM_ID, user_name: str | None = None, channel_name: str | None = None,
                         team_domain: str = TEAM_DOMAIN, api_app_id: str = APP_ID, token: str = VERIFICATION_TOKEN,
                         trigger_id: str | None = None, action_ts: str | None = None) -> dict[str, Any]:
    """The block_actions payload (a dict) for a button click on a message; see `block_action`."""
    found_block_id, button = _find_button(message, action_id)
    block_id = block_id or found_block_id or secrets.token_urlsafe(4)
    name = user_name or _user_name(user_id)
    shown = {"type": "message", "user": BOT_USER_ID, "ts": message_ts, "text": "", "team": team_id}
    if message:
        shown.update({k: v for k, v in message.items() if k in
                      ("type", "subtype", "user", "bot_id", "app_id", "text", "blocks", "team", "thread_ts",
                       "edited", "attachments", "metadata")})
    action: dict[str, Any] = {"action_id": action_id, "block_id": block_id,
                              "text": {"type": "plain_text", "text": "Button", "emoji": True},
                              "value": value, "type": "button", "action_ts": action_ts or _ts()}
    if button is not None:
        action["text"] = button.get("text", action["text"])
        if "style" in button:
            action["style"] = button["style"]
    return {
        "type": "block_actions",
        "user": {"id": user_id, "username": name, "name": name, "team_id": team_id},
        "api_app_id": api_app_id,
        "token": token,
        "container": {"type": "message", "message_ts": message_ts, "channel_id": channel_id,
                      "is_ephemeral": False},
        "trigger_id": trigger_id or new_trigger_id(),
        "team": {"id": team_id, "domain": team_domain},
        "enterprise": None,
        "is_enterprise_install": False,
        "channel": {"id": channel_id, "name": channel_name or _channel_name(channel_id)},
        "message": shown,
        "state": {"values": {}},
        "response_url": response_url,
        "actions": [action],
    }


def block_action(action_id: str, value: str, *, user_id: str, channel_id: str, message_ts: str,
                 response_url: str, block_id: str | None = None, message: dict[str, Any] | None = None,
                 **kwargs: Any) -> bytes:
    """A button click, form-encoded as Slack sends it: `payload=<JSON>`.

    Pass `message=slack.message(channel, ts)` (what the app posted) to echo it back as Slack does; the
    block_id and button text/style are then taken from the button with `action_id`.
    """
    payload = block_action_payload(action_id, value, user_id=user_id, channel_id=channel_id, message_ts=message_ts,
                                   response_url=response_url, block_id=block_id, message=message, **kwargs)
    return urlencode({"payload": json.dumps(payload, separators=(",", ":"))}).encode()


def home_block_action(action_id: str, value: str, *, user_id: str, view: dict[str, Any], team_id: str = TEAM_ID,
                      api_app_id: str = APP_ID, team_domain: str = TEAM_DOMAIN, token: str = VERIFICATION_TOKEN,
                      trigger_id: str | None = None) -> bytes:
    """A button click on the app's Home tab, form-encoded: `view` is the home view as published (Slack echoes it).
    Unlike a click on a message it carries no channel and no response_url: the container is the view."""
    block_id, button = _find_button(view, action_id)
    name = _user_name(user_id)
    action: dict[str, Any] = {"action_id": action_id, "block_id": block_id or secrets.token_urlsafe(4),
                              "text": (button or {}).get("text", {"type": "plain_text", "text": "Button"}),
                              "value": value, "type": "button", "action_ts": _ts()}
    payload = {
        "type": "block_actions",
        "user": {"id": user_id, "username": name, "name": name, "team_id": team_id},
        "api_app_id": api_app_id,
        "token": token,
        "container": {"type": "view", "view_id": view.get("id", "V0HOME0001")},
        "trigger_id": trigger_id or new_trigger_id(),
        "team": {"id": team_id, "domain": team_domain},
        "enterprise": None,
        "is_enterprise_install": False,
        "view": view,
        "actions": [action],
    }
    return urlencode({"payload": json.dumps(payload, separators=(",", ":"))}).encode()


def app_home_opened(user_id: str, *, team_id: str = TEAM_ID, api_app_id: str = APP_ID,
                    bot_user_id: str = BOT_USER_ID, view: dict[str, Any] | None = None,
                    event_ts: str | None = None, token: str = VERIFICATION_TOKEN) -> bytes:
    """An Events API callback for a user opening the app's Home tab (JSON)."""
    event_ts = event_ts or _ts()
    event: dict[str, Any] = {"type": "app_home_opened", "user": user_id, "channel": dm_channel_id(user_id),
                             "tab": "home", "event_ts": event_ts}
    if view is not None:
        event["view"] = view  # Slack includes the home view it last showed this user, when there is one
    body = {
        "token": token,
        "team_id": team_id,
        "context_team_id": team_id,
        "context_enterprise_id": None,
        "api_app_id": api_app_id,
        "event": event,
        "type": "event_callback",
        "event_id": "Ev" + secrets.token_hex(5).upper(),
        "event_time": int(float(event_ts)),
        "authorizations": [{"enterprise_id": None, "team_id": team_id, "user_id": bot_user_id, "is_bot": True,
                            "is_enterprise_install": False}],
        "is_ext_shared_channel": False,
    }
    return json.dumps(body, separators=(",", ":")).encode()


async def post_to_app(url: str, body: bytes, headers: dict[str, str], *, content_type: str,
                      timeout: float = 10.0) -> tuple[int, str]:
    """POST a (signed) Slack request to the app over real HTTP; returns (status, response text)."""
    sent = {"Content-Type": content_type, "User-Agent": SLACK_USER_AGENT, **headers}
    async with httpx.AsyncClient(timeout=timeout) as client:
        response = await client.post(url, content=body, headers=sent)
    return response.status_code, response.text
