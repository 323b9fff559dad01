"""The fake Slack Web API, driven through the real slack_sdk AsyncWebClient (and Bolt where Bolt is the client),
plus the signed Slack-to-app requests of tests/slack_requests.py."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
from slack_bolt.async_app import AsyncApp
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_bolt.context.respond.internals import _build_message
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry import builtin_async_handlers
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from .servers.base import LoopbackServer
from .servers.slack import BOT_ID, BOT_USER_ID, DESK_CHANNEL, TEAM_ID, FakeSlack, dm_channel_id
from .slack_requests import FORM, JSON, app_home_opened, block_action, post_to_app, sign, slash_command

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
TRADER = "U0TRADER1"


class Clock:
    def __init__(self) -> None:
        self.now = 1_732_550_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    async with FakeSlack() as fake:
        yield fake


def web(slack: FakeSlack, **kwargs: Any) -> AsyncWebClient:
    kwargs.setdefault("token", slack.bot_token)
    return AsyncWebClient(base_url=slack.api_url, **kwargs)


async def refused(call: Any) -> dict[str, Any]:
    with pytest.raises(SlackApiError) as caught:
        await call
    return caught.value.response.data  # type: ignore[no-any-return]


def section(text: str = "hello", **extra: Any) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}, **extra}


def button(action_id: str = "approve", text: str = "Approve", **extra: Any) -> dict[str, Any]:
    return {"type": "button", "text": {"type": "plain_text", "text": text}, "action_id": action_id, **extra}


def confirm(**overrides: Any) -> dict[str, Any]:
    obj = {"title": {"type": "plain_text", "text": "Place order?"},
           "text": {"type": "mrkdwn", "text": "Buy 10 YES at 41c"},
           "confirm": {"type": "plain_text", "text": "Place"},
           "deny": {"type": "plain_text", "text": "Cancel"}}
    obj.update(overrides)
    return {k: v for k, v in obj.items() if v is not None}


# --- round trips ---------------------------------------------------------------------------------------------


async def test_auth_test_answers_what_bolt_reads(slack):
    answer = await web(slack).auth_test()
    assert answer["ok"] is True
    assert (answer["team_id"], answer["user_id"], answer["bot_id"]) == (TEAM_ID, BOT_USER_ID, BOT_ID)
    assert "chat:write" in answer.headers["x-oauth-scopes"]  # Bolt's AuthorizeResult.bot_scopes
    [request] = slack.requests
    assert request.method == "POST" and request.headers["Authorization"] == f"Bearer {slack.bot_token}"


async def test_post_then_update_round_trip(slack):
    client = web(slack)
    blocks = [section("*KXFED* 41c", block_id="signal"), {"type": "actions", "elements": [button()]}]
    posted = await client.chat_postMessage(channel=DESK_CHANNEL, text="New signal", blocks=blocks)
    ts = posted["ts"]
    assert posted["channel"] == DESK_CHANNEL and posted["message"]["text"] == "New signal"
    assert posted["message"]["blocks"] == blocks and posted["message"]["bot_id"] == BOT_ID
    whole, _, fraction = ts.partition(".")
    assert whole.isdigit() and len(fraction) == 6

    second = await client.chat_postMessage(channel=DESK_CHANNEL, text="Another")
    assert float(second["ts"]) > float(ts)

    updated = await client.chat_update(channel=DESK_CHANNEL, ts=ts, text="Approved by alice", blocks=[])
    assert updated["ts"] == ts and updated["text"] == "Approved by alice"
    first, other = slack.messages(DESK_CHANNEL)
    assert first["ts"] == ts and first["text"] == "Approved by alice" and "blocks" not in first and first["edited"]
    assert other["text"] == "Another"

    await client.chat_update(channel=DESK_CHANNEL, ts=second["ts"], text="Another, edited")
    assert slack.message(DESK_CHANNEL, second["ts"])["text"] == "Another, edited"  # type: ignore[index]

    assert (await refused(client.chat_update(channel=DESK_CHANNEL, ts="1.000100", text="x")))["error"] == \
        "message_not_found"
    assert (await refused(client.chat_update(channel="#trading-desk", ts=ts, text="x")))["error"] == \
        "channel_not_found"  # chat.update takes ids only
    assert len(slack.posted("chat.update")) == 2 and len(slack.refused("chat.update")) == 2


async def test_sdk_sends_messages_as_json_and_reads_as_get(slack):
    client = web(slack)
    await client.chat_postMessage(channel=DESK_CHANNEL, text="hi")
    await client.users_info(user=TRADER)
    post, info = slack.requests
    assert post.headers["Content-Type"] == "application/json;charset=utf-8"
    assert post.json() == {"channel": DESK_CHANNEL, "text": "hi"}
    assert info.method == "GET" and info.query == {"user": TRADER} and not info.body


@pytest.mark.secret_logged_on_purpose("slack_sdk logs form data at DEBUG; the desk sends its token as a header")
async def test_form_encoded_calls_and_form_token_work_like_slack(slack):
    client = web(slack, token=None)
    blocks = [section("from a form")]
    answer = await client.api_call("chat.postMessage", data={
        "token": slack.bot_token, "channel": "#trading-desk", "text": "form", "blocks": json.dumps(blocks)})
    assert answer["channel"] == DESK_CHANNEL and slack.messages(DESK_CHANNEL)[0]["blocks"] == blocks
    assert slack.requests[0].headers["Content-Type"] == "application/x-www-form-urlencoded"
    bad = await refused(client.api_call("chat.postMessage", data={
        "token": slack.bot_token, "channel": DESK_CHANNEL, "blocks": json.dumps([{"type": "section"}])}))
    assert bad["error"] == "invalid_blocks"


async def test_thread_replies(slack):
    client = web(slack)
    parent = await client.chat_postMessage(channel=DESK_CHANNEL, text="Scan done")
    reply = await client.chat_postMessage(channel=DESK_CHANNEL, text="detail", thread_ts=parent["ts"])
    assert reply["message"]["thread_ts"] == parent["ts"]
    [only] = slack.thread(DESK_CHANNEL, parent["ts"])
    assert only["text"] == "detail"
    assert slack.message(DESK_CHANNEL, parent["ts"])["reply_count"] == 1  # type: ignore[index]


async def test_ephemeral_round_trip(slack):
    client = web(slack)
    answer = await client.chat_postEphemeral(channel=DESK_CHANNEL, user=TRADER, text="only you",
                                             blocks=[section("only you")])
    assert answer["message_ts"]
    [eph] = slack.ephemerals
    assert (eph["channel"], eph["user"], eph["text"]) == (DESK_CHANNEL, TRADER, "only you")
    assert slack.messages(DESK_CHANNEL) == []
    assert (await refused(client.chat_postEphemeral(channel=DESK_CHANNEL, user="U0NOBODY", text="x")))["error"] \
        == "user_not_found"
    slack.add_channel("C0PRIVATE", "risk-room", members=["U0RISK001"])
    assert (await refused(client.chat_postEphemeral(channel="C0PRIVATE", user=TRADER, text="x")))["error"] \
        == "user_not_in_channel"


async def test_channel_names_resolve_like_slack_and_unknown_channels_fail(slack):
    client = web(slack)
    for channel in ("#trading-desk", "trading-desk", DESK_CHANNEL):
        assert (await client.chat_postMessage(channel=channel, text=channel))["channel"] == DESK_CHANNEL
    assert [m["text"] for m in slack.messages("#trading-desk")] == ["#trading-desk", "trading-desk", DESK_CHANNEL]
    assert (await refused(client.chat_postMessage(channel="#nope", text="x")))["error"] == "channel_not_found"
    assert (await refused(client.chat_postMessage(channel="C0NOPE", text="x")))["error"] == "channel_not_found"
    dm = await client.chat_postMessage(channel=TRADER, text="psst")  # a user id posts to the bot's DM
    assert dm["channel"] == dm_channel_id(TRADER) and slack.messages(dm["channel"])[0]["text"] == "psst"
    other_dm = dm_channel_id("U0TRADER2")  # the channel an app_home_opened event names, never posted to before
    assert (await client.chat_postMessage(channel=other_dm, text="hello"))["channel"] == other_dm
    assert (await client.conversations_info(channel=other_dm))["channel"]["is_im"] is True


async def test_message_needs_text_or_blocks_and_text_has_a_ceiling(slack):
    client = web(slack)
    with pytest.warns(UserWarning, match="top-level `text`"):
        assert (await refused(client.chat_postMessage(channel=DESK_CHANNEL)))["error"] == "no_text"
    assert (await refused(client.chat_postMessage(channel=DESK_CHANNEL, text="x" * 40_001)))["error"] == \
        "msg_too_long"
    await client.chat_postMessage(channel=DESK_CHANNEL, text="x" * 40_000)
    with pytest.warns(UserWarning, match="top-level `text`"):  # the SDK nags, Slack accepts blocks alone
        await client.chat_postMessage(channel=DESK_CHANNEL, blocks=[section()])


async def test_bad_tokens_and_unknown_methods(slack):
    assert (await refused(web(slack, token="xoxb-wrong").auth_test()))["error"] == "invalid_auth"
    assert (await refused(web(slack, token=None).chat_postMessage(channel=DESK_CHANNEL, text="x")))["error"] == \
        "not_authed"
    assert slack.messages(DESK_CHANNEL) == []
    unknown = await refused(web(slack).api_call("chat.frobnicate", json={"channel": DESK_CHANNEL}))
    assert unknown == {"ok": False, "error": "unknown_method", "req_method": "chat.frobnicate"}
    assert "Authorization" not in slack.requests[1].headers


async def test_users_channels_and_usergroups(slack):
    client = web(slack)
    members = await client.usergroups_users_list(usergroup="S0TRADERS")
    assert members["users"] == ["U0TRADER1", "U0TRADER2"]
    assert (await refused(client.usergroups_users_list(usergroup="S0NOPE")))["error"] == "no_such_subteam"
    user = (await client.users_info(user=TRADER))["user"]
    assert (user["id"], user["name"], user["is_bot"]) == (TRADER, "alice", False)
    assert (await client.users_info(user=BOT_USER_ID))["user"]["is_bot"] is True
    assert (await refused(client.users_info(user="U0NOPE")))["error"] == "user_not_found"
    channel = (await client.conversations_info(channel=DESK_CHANNEL))["channel"]
    assert (channel["id"], channel["name"], channel["is_channel"]) == (DESK_CHANNEL, "trading-desk", True)
    assert (await refused(client.conversations_info(channel="#trading-desk")))["error"] == "channel_not_found"


async def test_views_publish_home(slack):
    client = web(slack)
    blocks = [{"type": "header", "text": {"type": "plain_text", "text": "Desk"}}] + [section()] * 99
    answer = await client.views_publish(user_id=TRADER, view={"type": "home", "blocks": blocks})
    view = answer["view"]
    assert view["type"] == "home" and view["blocks"] == blocks and view["id"].startswith("V")
    assert slack.published_views[TRADER]["blocks"] == blocks
    again = await client.views_publish(user_id=TRADER, view={"type": "home", "blocks": [section("v2")]},
                                       hash=view["hash"])
    assert again["view"]["id"] == view["id"] and slack.published_views[TRADER]["blocks"] == [section("v2")]
    stale = await refused(client.views_publish(user_id=TRADER, view={"type": "home", "blocks": []},
                                               hash=view["hash"]))
    assert stale["error"] == "hash_conflict"
    # Views refuse bad blocks with invalid_arguments and pointers under /view/blocks, as Slack does.
    too_many = await refused(client.views_publish(user_id=TRADER, view={"type": "home", "blocks": [section()] * 101}))
    assert too_many["error"] == "invalid_arguments"
    assert too_many["response_metadata"]["messages"] == [
        "[ERROR] no more than 100 items allowed [json-pointer:/view/blocks]"]
    modal = await refused(client.views_publish(user_id=TRADER, view={"type": "modal", "blocks": []}))
    assert modal["error"] == "invalid_arguments"


# --- Block Kit -----------------------------------------------------------------------------------------------

LONG_ID = "a" * 256

REFUSED_BLOCKS: dict[str, tuple[list[dict[str, Any]], str]] = {
    "more than 50 blocks": ([{"type": "divider"}] * 51, "no more than 50 items allowed [json-pointer:/blocks]"),
    "unsupported block type": ([{"type": "input", "label": {"type": "plain_text", "text": "x"}}],
                               "unsupported type: input [json-pointer:/blocks/0/type]"),
    "block without type": ([{"text": {"type": "mrkdwn", "text": "x"}}], "missing required field: type"),
    "header over 150": ([{"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}],
                        "must be less than 151 characters [json-pointer:/blocks/0/text/text]"),
    "header in mrkdwn": ([{"type": "header", "text": {"type": "mrkdwn", "text": "*h*"}}],
                         "must be plain_text [json-pointer:/blocks/0/text/type]"),
    "section text over 3000": ([section("s" * 3001)],
                               "must be less than 3001 characters [json-pointer:/blocks/0/text/text]"),
    "section with 11 fields": ([{"type": "section", "fields": [{"type": "mrkdwn", "text": "f"}] * 11}],
                               "no more than 10 items allowed [json-pointer:/blocks/0/fields]"),
    "field over 2000": ([{"type": "section", "fields": [{"type": "mrkdwn", "text": "f"}] * 3 +
                          [{"type": "mrkdwn", "text": "f" * 2001}]}],
                        "must be less than 2001 characters [json-pointer:/blocks/0/fields/3/text]"),
    "section with neither text nor fields": ([{"type": "section", "block_id": "b"}],
                                             "must define either `text` or `fields` [json-pointer:/blocks/0]"),
    "context with 11 elements": ([{"type": "context", "elements": [{"type": "mrkdwn", "text": "c"}] * 11}],
                                 "no more than 10 items allowed [json-pointer:/blocks/0/elements]"),
    "actions with 26 elements": ([{"type": "actions", "elements": [button(f"b{i}") for i in range(26)]}],
                                 "no more than 25 items allowed [json-pointer:/blocks/0/elements]"),
    "button text over 75": ([{"type": "actions", "elements": [button(text="b" * 76)]}],
                            "must be less than 76 characters [json-pointer:/blocks/0/elements/0/text/text]"),
    "button text in mrkdwn": ([{"type": "actions", "elements": [
                                  {"type": "button", "text": {"type": "mrkdwn", "text": "*Go*"}, "action_id": "go"}]}],
                              "must be plain_text [json-pointer:/blocks/0/elements/0/text/type]"),
    "action_id over 255": ([{"type": "actions", "elements": [button(LONG_ID)]}],
                           "must be less than 256 characters [json-pointer:/blocks/0/elements/0/action_id]"),
    "action_id repeated in the message": (
        [section("a", accessory=button("approve")), {"type": "actions", "elements": [button("approve")]}],
        "duplicate action_id: approve [json-pointer:/blocks/1/elements/0/action_id]"),
    "button value over 2000": ([{"type": "actions", "elements": [button(value="v" * 2001)]}],
                               "must be less than 2001 characters [json-pointer:/blocks/0/elements/0/value]"),
    "button style not primary or danger": ([{"type": "actions", "elements": [button(style="secondary")]}],
                                           "must be one of: primary, danger [json-pointer:/blocks/0/elements/0/style]"),
    "confirm without deny": ([{"type": "actions", "elements": [button(confirm=confirm(deny=None))]}],
                             "missing required field: deny [json-pointer:/blocks/0/elements/0/confirm]"),
    "confirm title over 100": (
        [{"type": "actions", "elements": [button(confirm=confirm(title={"type": "plain_text", "text": "t" * 101}))]}],
        "must be less than 101 characters [json-pointer:/blocks/0/elements/0/confirm/title/text]"),
    "confirm title in mrkdwn": (
        [{"type": "actions", "elements": [button(confirm=confirm(title={"type": "mrkdwn", "text": "t"}))]}],
        "must be plain_text [json-pointer:/blocks/0/elements/0/confirm/title/type]"),
    "confirm text over 300": (
        [{"type": "actions", "elements": [button(confirm=confirm(text={"type": "mrkdwn", "text": "t" * 301}))]}],
        "must be less than 301 characters [json-pointer:/blocks/0/elements/0/confirm/text/text]"),
    "confirm button over 30": (
        [{"type": "actions", "elements": [button(confirm=confirm(confirm={"type": "plain_text", "text": "c" * 31}))]}],
        "must be less than 31 characters [json-pointer:/blocks/0/elements/0/confirm/confirm/text]"),
    "deny button over 30": (
        [{"type": "actions", "elements": [button(confirm=confirm(deny={"type": "plain_text", "text": "d" * 31}))]}],
        "must be less than 31 characters [json-pointer:/blocks/0/elements/0/confirm/deny/text]"),
    "block_id over 255": ([section(block_id=LONG_ID)],
                          "must be less than 256 characters [json-pointer:/blocks/0/block_id]"),
    "block_id repeated": ([section(block_id="dup"), section(block_id="dup")],
                          "duplicate block_id: dup [json-pointer:/blocks/1/block_id]"),
    "text object of unknown type": ([{"type": "section", "text": {"type": "markdown", "text": "x"}}],
                                    "must be one of: plain_text, mrkdwn [json-pointer:/blocks/0/text/type]"),
    "text given as a bare string": ([{"type": "section", "text": "x"}],
                                    "must be an object [json-pointer:/blocks/0/text]"),
    "empty text": ([section("")], "must be more than 0 characters [json-pointer:/blocks/0/text/text]"),
    "unknown property": ([{"type": "divider", "colour": "red"}],
                         "invalid additional property: colour [json-pointer:/blocks/0]"),
}


@pytest.mark.parametrize("case", list(REFUSED_BLOCKS))
async def test_block_kit_limits_refuse_what_slack_refuses(slack, case):
    blocks, expected = REFUSED_BLOCKS[case]
    answer = await refused(web(slack).chat_postMessage(channel=DESK_CHANNEL, text="fallback", blocks=blocks))
    assert answer["error"] == "invalid_blocks"
    assert any(expected in error for error in answer["errors"]), answer["errors"]
    assert answer["response_metadata"]["messages"] == [f"[ERROR] {e}" for e in answer["errors"]]
    assert slack.messages(DESK_CHANNEL) == []


async def test_block_kit_limits_apply_to_updates_and_ephemerals(slack):
    client = web(slack)
    ts = (await client.chat_postMessage(channel=DESK_CHANNEL, text="ok"))["ts"]
    assert (await refused(client.chat_update(channel=DESK_CHANNEL, ts=ts, text="x",
                                             blocks=[section("s" * 3001)])))["error"] == "invalid_blocks"
    assert (await refused(client.chat_postEphemeral(channel=DESK_CHANNEL, user=TRADER, text="x",
                                                    blocks=[{"type": "divider"}] * 51)))["error"] == "invalid_blocks"
    assert slack.messages(DESK_CHANNEL)[0]["text"] == "ok" and slack.ephemerals == []


async def test_every_violation_is_listed(slack):
    blocks = [{"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}, {"type": "section"},
              {"type": "actions", "elements": [button(style="secondary")]}]
    answer = await refused(web(slack).chat_postMessage(channel=DESK_CHANNEL, text="x", blocks=blocks))
    assert answer["errors"] == [
        "must be less than 151 characters [json-pointer:/blocks/0/text/text]",
        "must define either `text` or `fields` [json-pointer:/blocks/1]",
        "must be one of: primary, danger [json-pointer:/blocks/2/elements/0/style]",
    ]


async def test_a_full_signal_card_at_the_limits_is_accepted(slack):
    blocks = [
        {"type": "header", "text": {"type": "plain_text", "text": "H" * 150, "emoji": True}},
        {"type": "section", "block_id": "b" * 255, "text": {"type": "mrkdwn", "text": "s" * 3000},
         "fields": [{"type": "mrkdwn", "text": "f" * 2000}] + [{"type": "plain_text", "text": "edge"}] * 9,
         "accessory": button("details", "Details", url="https://kalshi.com/markets/KXFED")},
        {"type": "divider"},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": "model: claude"}] * 9 +
         [{"type": "image", "image_url": "https://example.com/a.png", "alt_text": "logo"}]},
        {"type": "image", "image_url": "https://example.com/chart.png", "alt_text": "chart",
         "title": {"type": "plain_text", "text": "Price"}},
        {"type": "actions", "block_id": "decide", "elements": [
            button("a" * 255, "A" * 75, style="primary", value="v" * 2000, confirm=confirm(
                title={"type": "plain_text", "text": "T" * 100}, text={"type": "mrkdwn", "text": "x" * 300},
                confirm={"type": "plain_text", "text": "C" * 30}, deny={"type": "plain_text", "text": "D" * 30})),
            button("reject", "Reject", style="danger", value="sig-1"),
        ] + [button(f"size-{i}", f"{i}") for i in range(23)]},
    ]
    blocks += [{"type": "divider"}] * (50 - len(blocks))
    answer = await web(slack).chat_postMessage(channel=DESK_CHANNEL, text="New signal", blocks=blocks)
    assert slack.message(DESK_CHANNEL, answer["ts"])["blocks"] == blocks  # type: ignore[index]


async def test_action_ids_may_repeat_across_blocks_when_scoped_per_block():
    async with FakeSlack(action_id_scope="block") as fake:
        blocks = [section("a", accessory=button("approve")), {"type": "actions", "elements": [button("approve")]}]
        await web(fake).chat_postMessage(channel=DESK_CHANNEL, text="x", blocks=blocks)


# --- rate limits ---------------------------------------------------------------------------------------------


async def test_injected_429_answers_like_slack(slack):
    slack.rate_limit("chat.postMessage", retry_after=3)
    with pytest.raises(SlackApiError) as caught:
        await web(slack).chat_postMessage(channel=DESK_CHANNEL, text="x")
    response = caught.value.response
    assert response.status_code == 429 and response.headers["Retry-After"] == "3"
    assert response.data == {"ok": False, "error": "ratelimited"}
    assert slack.messages(DESK_CHANNEL) == []


async def test_injected_429_is_retried_by_the_sdk_handler(slack, monkeypatch):
    # The handler sleeps int(Retry-After) + random() seconds; take the jitter out to keep the test fast.
    monkeypatch.setattr(builtin_async_handlers, "random", SimpleNamespace(random=lambda: 0.0))
    slack.rate_limit("chat.postMessage", retry_after=0)
    client = web(slack, retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=1)])
    answer = await client.chat_postMessage(channel=DESK_CHANNEL, text="eventually")
    assert answer["ok"] is True
    assert slack.server.count("POST", "/api/chat.postMessage") == 2
    assert slack.faults.fired == [("429", "POST", "/api/chat.postMessage")]
    assert [m["text"] for m in slack.messages(DESK_CHANNEL)] == ["eventually"]


async def test_per_channel_posting_rate():
    clock = Clock()
    async with FakeSlack(post_rate_per_channel=1.0, clock=clock) as fake:
        client = web(fake)
        await client.chat_postMessage(channel=DESK_CHANNEL, text="one")
        clock.now += 0.4
        with pytest.raises(SlackApiError) as caught:
            await client.chat_postMessage(channel="#trading-desk", text="too soon")
        assert caught.value.response.status_code == 429
        assert caught.value.response.headers["Retry-After"] == "1"
        assert caught.value.response["error"] == "ratelimited"
        await client.chat_postMessage(channel="C0ALERTS1", text="another channel is fine")
        clock.now += 0.57  # 30 ms early: jitter within the tolerance passes
        await client.chat_postMessage(channel=DESK_CHANNEL, text="two")
        clock.now += 0.9
        with pytest.raises(SlackApiError):
            await client.chat_postMessage(channel=DESK_CHANNEL, text="100 ms early")
        assert [m["text"] for m in fake.messages(DESK_CHANNEL)] == ["one", "two"]
        assert len(fake.refused("chat.postMessage")) == 2


# --- signed requests -----------------------------------------------------------------------------------------


def test_signed_requests_verify_and_tampered_ones_do_not():
    body = slash_command("/scan", "kalshi", user_id=TRADER, channel_id=DESK_CHANNEL,
                         response_url="https://hooks.example/commands/1")
    headers = sign(SECRET, body)
    verifier = SignatureVerifier(SECRET)
    assert verifier.is_valid_request(body, headers)
    assert verifier.is_valid_request(body.decode(), headers)
    assert not verifier.is_valid_request(body.replace(b"kalshi", b"polymarket"), headers)
    assert not SignatureVerifier("another-secret").is_valid_request(body, headers)
    stale = sign(SECRET, body, timestamp=int(time.time()) - 6 * 60)
    assert not verifier.is_valid_request(body, stale)  # Slack's 5-minute replay window
    fixed = sign(SECRET, b"x=1", timestamp=1_700_000_000)
    assert fixed["X-Slack-Request-Timestamp"] == "1700000000"
    assert fixed["X-Slack-Signature"] == SignatureVerifier(SECRET).generate_signature(
        timestamp="1700000000", body="x=1")


def test_payloads_parse_in_bolt_as_slack_payloads_do():
    command = slash_command("/scan", "kalshi min-edge 5", user_id=TRADER, channel_id=DESK_CHANNEL,
                            response_url="https://x.test/commands/1")
    fields = parse_qs(command.decode())
    assert fields["command"] == ["/scan"] and fields["text"] == ["kalshi min-edge 5"]
    req = AsyncBoltRequest(body=command.decode(), headers={"content-type": FORM})
    assert (req.context.user_id, req.context.channel_id, req.context.team_id) == (TRADER, DESK_CHANNEL, TEAM_ID)
    assert req.context.response_url == "https://x.test/commands/1" and req.body["command"] == "/scan"

    message = {"ts": "1732550000.000100", "text": "signal",
               "blocks": [{"type": "actions", "block_id": "decide", "elements": [button(style="primary")]}]}
    action = block_action("approve", "sig-1", user_id=TRADER, channel_id=DESK_CHANNEL,
                          message_ts=message["ts"], response_url="https://x.test/actions/1", message=message)
    assert list(parse_qs(action.decode())) == ["payload"]
    req = AsyncBoltRequest(body=action.decode(), headers={"content-type": FORM})
    assert req.body["type"] == "block_actions" and req.context.user_id == TRADER
    assert req.context.channel_id == DESK_CHANNEL and req.context.response_url == "https://x.test/actions/1"
    [act] = req.body["actions"]
    assert (act["action_id"], act["block_id"], act["value"], act["style"]) == ("approve", "decide", "sig-1", "primary")
    assert req.body["container"] == {"type": "message", "message_ts": message["ts"], "channel_id": DESK_CHANNEL,
                                     "is_ephemeral": False}

    event = AsyncBoltRequest(body=app_home_opened(TRADER).decode(), headers={"content-type": JSON})
    assert event.body["event"]["type"] == "app_home_opened" and event.body["event"]["tab"] == "home"
    assert event.context.user_id == TRADER and event.context.team_id == TEAM_ID


# --- response URLs -------------------------------------------------------------------------------------------


async def respond_raw(url: str, body: dict[str, Any]) -> httpx.Response:
    """POST like Bolt's respond() (slack_sdk AsyncWebhookClient): JSON with charset."""
    async with httpx.AsyncClient() as http:
        return await http.post(url, content=json.dumps(body),
                               headers={"Content-Type": "application/json;charset=utf-8"})


async def test_respond_payloads_are_recorded_and_act_on_the_channel(slack):
    ack_url = slack.new_response_url(channel=DESK_CHANNEL, user=TRADER)
    body = _build_message(text="Scanning 40 markets...", response_type="ephemeral")
    answer = await respond_raw(ack_url, body)
    assert (answer.status_code, answer.json()) == (200, {"ok": True})
    assert slack.responses == [body] and slack.responses_to(ack_url) == [body]
    assert slack.ephemerals[-1]["via"] == "response_url" and slack.ephemerals[-1]["user"] == TRADER

    in_channel = _build_message(text="Scan finished", blocks=[section("3 signals")], response_type="in_channel")
    assert (await respond_raw(ack_url, in_channel)).status_code == 200
    assert [m["text"] for m in slack.messages(DESK_CHANNEL)] == ["Scan finished"]

    card = await web(slack).chat_postMessage(channel=DESK_CHANNEL, text="signal", blocks=[section("buy?")])
    action_url = slack.new_response_url(channel=DESK_CHANNEL, message_ts=card["ts"], user=TRADER)
    replaced = _build_message(text="Approved", blocks=[section("Approved by alice")], replace_original=True)
    assert (await respond_raw(action_url, replaced)).status_code == 200
    now = slack.message(DESK_CHANNEL, card["ts"])
    assert now is not None and now["text"] == "Approved" and now["blocks"] == [section("Approved by alice")]
    assert (await respond_raw(action_url, _build_message(delete_original=True))).status_code == 200
    assert slack.message(DESK_CHANNEL, card["ts"]) is None and slack.deleted(DESK_CHANNEL)[0]["ts"] == card["ts"]


async def test_bolt_respond_reaches_the_response_url(slack):
    url = slack.new_response_url(channel=DESK_CHANNEL, user=TRADER)
    sent = await AsyncRespond(response_url=url)("Working on it", response_type="in_channel")
    assert sent.status_code == 200
    assert slack.responses == [{"text": "Working on it", "response_type": "in_channel"}]


async def test_response_urls_refuse_like_slack(slack):
    url = slack.new_response_url(channel=DESK_CHANNEL)
    bad = await respond_raw(url, {"text": "x", "blocks": [{"type": "divider"}] * 51})
    assert (bad.status_code, bad.text) == (400, "invalid_blocks")
    empty = await respond_raw(url, {"response_type": "ephemeral"})
    assert (empty.status_code, empty.text) == (400, "no_text")
    unknown = await respond_raw(f"{slack.url}/response/not-issued", {"text": "x"})
    assert (unknown.status_code, unknown.text) == (404, "no_service")
    for i in range(5):
        assert (await respond_raw(url, {"text": f"use {i}"})).status_code == 200
    sixth = await respond_raw(url, {"text": "too many"})
    assert (sixth.status_code, sixth.text) == (404, "used_url")
    assert len(slack.responses) == 5


# --- Bolt end to end -----------------------------------------------------------------------------------------


async def test_a_bolt_app_takes_signed_requests_and_posts_to_the_fake(slack):
    app = AsyncApp(client=web(slack), signing_secret=SECRET)
    seen: dict[str, Any] = {}

    @app.command("/scan")
    async def scan(ack: Any, command: dict[str, Any], respond: Any, client: AsyncWebClient, context: Any) -> None:
        await ack()
        seen["scopes"] = context.authorize_result.bot_scopes
        await respond("Scanning...")
        await client.chat_postMessage(channel=command["channel_id"], text=f"Signals for {command['text']}", blocks=[
            section("KXFED-25DEC 41c, edge 6c", block_id="sig-1"),
            {"type": "actions", "block_id": "decide-1", "elements": [
                button("approve", style="primary", value="sig-1", confirm=confirm()),
                button("reject", "Reject", style="danger", value="sig-1")]}])

    @app.action("approve")
    async def approve(ack: Any, body: dict[str, Any], action: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        seen["action"] = (body["user"]["id"], action["value"], action["block_id"])
        await client.chat_update(channel=body["channel"]["id"], ts=body["message"]["ts"],
                                 text=f"Approved by <@{body['user']['id']}>", blocks=[])

    @app.event("app_home_opened")
    async def home(event: dict[str, Any], client: AsyncWebClient) -> None:
        await client.views_publish(user_id=event["user"], view={"type": "home", "blocks": [section("Desk")]})

    async with LoopbackServer(app.web_app()) as server:
        url = server.url + "/slack/events"
        body = slash_command("/scan", "kalshi", user_id=TRADER, channel_id=DESK_CHANNEL,
                             response_url=slack.new_response_url(channel=DESK_CHANNEL, user=TRADER))
        assert await post_to_app(url, body, sign(SECRET, body), content_type=FORM) == (200, "")
        [post] = await slack.wait_for_calls("chat.postMessage")
        assert post["channel"] == DESK_CHANNEL and post["team_id"] == TEAM_ID  # Bolt adds team_id to every call
        await slack.wait_for(lambda: slack.responses)
        assert slack.responses[0]["text"] == "Scanning..."
        assert "chat:write" in seen["scopes"]

        [card] = slack.messages(DESK_CHANNEL)
        click = block_action("approve", "sig-1", user_id=TRADER, channel_id=DESK_CHANNEL, message_ts=card["ts"],
                             response_url=slack.new_response_url(channel=DESK_CHANNEL, message_ts=card["ts"]),
                             message=card)
        assert (await post_to_app(url, click, sign(SECRET, click), content_type=FORM))[0] == 200
        await slack.wait_for_calls("chat.update")
        assert seen["action"] == (TRADER, "sig-1", "decide-1")
        assert slack.messages(DESK_CHANNEL)[0]["text"] == f"Approved by <@{TRADER}>"

        opened = app_home_opened(TRADER)
        assert (await post_to_app(url, opened, sign(SECRET, opened), content_type=JSON))[0] == 200
        await slack.wait_for(lambda: TRADER in slack.published_views)

        forged = sign("not-the-secret", body)
        assert (await post_to_app(url, body, forged, content_type=FORM))[0] == 401

    assert len(slack.posted("auth.test")) == 1  # Bolt calls auth.test once, on the first request, then caches it
