"""Exits through Slack end to end: paper positions made by a real cycle and real Approve clicks, then /desk close,
the Close buttons on /desk positions and App Home, and the exit's own Sell / Keep buttons, all as signed requests
over loopback HTTP to the app, with a fake Slack Web API and an in-memory venue whose bids the sales hit."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

from bot.blocks import APPROVE_ACTION, CLOSE_ACTION, REJECT_ACTION
from pipeline.models import SignalStatus, TradeSignal

from .fakes import FakeVenue, make_book, make_market
from .servers.slack import DESK_CHANNEL, dm_channel_id
from .slack_requests import JSON, app_home_opened, block_action, home_block_action
from .test_slack_app import STRANGER, TRADER, SlackEnv, buttons, envs, text_of  # noqa: F401 - envs is a fixture

D = Decimal
VIEWER = "U0TRADER2"  # bob: may look, not close
TICKERS = ("KXFED-26DEC-H0", "KXCPI-26DEC-T3", "KXGDP-26Q4-T2")
# Each market: YES bids 0.40 x 200 (what an exit sells into), asks 0.42 x 100 and 0.44 x 100 (what entries buy).
# The analyst's 70% makes each entry 113 YES for $47.72 + $1.94 fees ($49.66, test_desk works it out); selling
# them back at 0.40 receives $45.20 less a fee of ceil(0.07 * 113 * 0.40 * 0.60) = $1.90: $43.30 net, -$6.36 realised.
SOLD_AT, PROCEEDS, EXIT_FEES, BASIS = D("0.40"), D("45.20"), D("1.90"), D("49.66")
REALISED = PROCEEDS - EXIT_FEES - BASIS


def three_markets() -> FakeVenue:
    venue = FakeVenue()
    for ticker in TICKERS:
        market = make_market(ticker, title=f"Market {ticker}")
        venue.add(market, make_book(market, bids=[("0.40", "200")], asks=[("0.42", "100"), ("0.44", "100")]))
    return venue


async def desk_with_positions(envs: Any, tmp_path: Any, **kwargs: Any) -> SlackEnv:
    """A paper desk holding one position in each of the three markets, made as a trader makes them: /scan, then
    an authorized Approve on each signal's own message."""
    env = await envs(tmp_path, venue=three_markets(), access={"viewers": [VIEWER]}, **kwargs)
    entries = await env.scan_and_wait()
    assert len(entries) == 3
    refs = [await env.desk.message_ref(signal.id) for signal in entries]
    for signal in entries:
        await env.click(APPROVE_ACTION, signal.id)
    await env.slack.wait_for(lambda: all(not buttons(env.message_of(ref)) for ref in refs), timeout=10)
    positions = await env.store.positions(paper=True)
    assert sorted(p.market_id for p in positions) == sorted(TICKERS) and all(p.contracts == 113 for p in positions)
    return env


async def pending_exits(env: SlackEnv) -> list[TradeSignal]:
    return [s for s in await env.desk.pending_signals() if s.is_exit]


async def answer(env: SlackEnv, url: str) -> dict:
    [reply] = await env.slack.wait_for(lambda: env.slack.responses_to(url), timeout=10)
    return reply


def reply_text(reply: dict) -> str:
    return json.dumps(reply.get("blocks", []), ensure_ascii=False) + reply.get("text", "")


def accessories(payload: dict) -> list[dict]:
    return [b["accessory"] for b in payload.get("blocks", []) if "accessory" in b]


async def wait_until_decided(env: SlackEnv, signal_id: str) -> TradeSignal:
    ref = await env.desk.message_ref(signal_id)
    await env.slack.wait_for(lambda: not buttons(env.message_of(ref)), timeout=10)
    return await env.store.get_signal(signal_id)


async def test_close_all_posts_one_exit_per_position_and_only_an_approver_sells(tmp_path, envs):
    env = await desk_with_positions(envs, tmp_path)
    before = len(env.slack.messages(DESK_CHANNEL))
    status, body, url = await env.slash("/desk", "close all")
    assert status == 200 and body == ""  # acked at once; the exits are priced after the ack
    reply = await answer(env, url)
    assert reply["response_type"] == "ephemeral" and reply["text"].startswith("3 exits proposed in the desk's channel")
    exits = await pending_exits(env)
    positions = {p.id: p for p in await env.store.positions(paper=True)}
    assert sorted(s.exit.position_id for s in exits) == sorted(positions)
    assert len(env.slack.messages(DESK_CHANNEL)) == before + 3  # one message per exit, nothing else
    for signal in exits:
        assert signal.contracts == 113 and signal.limit_price == SOLD_AT and signal.proceeds == PROCEEDS - EXIT_FEES
        message = env.message_of(await env.desk.message_ref(signal.id))
        assert [(b["action_id"], b["text"]["text"], b["value"]) for b in buttons(message)] == [
            (APPROVE_ACTION, "Sell (paper)", signal.id), (REJECT_ACTION, "Keep", signal.id)]
        shown = text_of(message)
        assert message["text"].startswith("DRY-RUN: Sell 113 YES at $0.40 or better — about $43.30")
        assert f"#{signal.exit.position_id}" in shown and f"-${-REALISED}" in shown and "a close asked for by" in shown
        assert f"Market {signal.market.id}" in reply_text(reply)

    first, second = exits[0], exits[1]
    updates = len(env.slack.posted("chat.update"))
    await env.click(APPROVE_ACTION, first.id, user=STRANGER)  # not an approver: refused, privately
    [refused] = await env.slack.wait_for(lambda: env.slack.responses_to(env.last_response_url))
    assert refused["response_type"] == "ephemeral" and "not authorized" in refused["text"]
    assert (await env.store.get_signal(first.id)).status is SignalStatus.PENDING
    assert len(env.slack.posted("chat.update")) == updates
    assert (await env.store.position(first.exit.position_id)).contracts == 113

    await env.click(APPROVE_ACTION, first.id)  # an approver: the paper sale is simulated against the bids
    assert (await wait_until_decided(env, first.id)).status is SignalStatus.SIMULATED
    outcome = env.message_of(await env.desk.message_ref(first.id))
    assert outcome["text"].startswith(f"DRY-RUN: Would have sold 113 YES at avg $0.40: received $45.20 − $1.90 fees; "
                                      f"realised -${-REALISED}")
    assert f"Position #{first.exit.position_id} closed (paper)" in text_of(outcome)
    closed = await env.store.position(first.exit.position_id)
    assert closed.status == "closed" and closed.contracts == 0 and closed.realized_pnl == REALISED
    assert env.venue.posts == 0  # dry-run: the venue's order endpoint is never called

    await env.click(REJECT_ACTION, second.id)  # Keep: nothing sold, the position stays
    assert (await wait_until_decided(env, second.id)).status is SignalStatus.REJECTED
    assert "Kept — rejected, nothing sold" in env.message_of(await env.desk.message_ref(second.id))["text"]
    kept = await env.store.position(second.exit.position_id)
    assert kept.status == "open" and kept.contracts == 113 and kept.realized_pnl == 0


async def test_close_of_a_position_that_does_not_exist_is_refused_with_the_reason(tmp_path, envs):
    env = await desk_with_positions(envs, tmp_path)
    before = len(env.slack.messages(DESK_CHANNEL))
    _, _, url = await env.slash("/desk", "close 99")
    reply = await answer(env, url)
    assert reply["response_type"] == "ephemeral" and reply["text"] == "No exit proposed"
    assert "There is no open paper position 99; `/desk positions` lists them with their numbers." in reply_text(reply)
    assert len(env.slack.messages(DESK_CHANNEL)) == before and await pending_exits(env) == []
    _, _, url = await env.slash("/desk", "close")  # no position named: how to name one
    assert "Say which position" in reply_text(await answer(env, url))


async def test_a_viewer_may_look_but_not_close_and_the_refusal_is_audited(tmp_path, envs):
    env = await desk_with_positions(envs, tmp_path)
    _, _, url = await env.slash("/desk", "positions", user=VIEWER)
    assert "3 open positions" in (await answer(env, url))["text"]
    _, _, url = await env.slash("/desk", "close all", user=VIEWER)
    reply = await answer(env, url)
    assert reply["text"] == "No exit proposed"
    assert "not authorized to propose closing a position" in reply_text(reply) and "access.operators" in \
        reply_text(reply)
    assert await pending_exits(env) == []
    audit = [e for e in await env.store.audit_log() if e.actor == VIEWER and e.action == "close"]
    assert audit and audit[0].outcome == "refused:not_authorized"


async def test_close_is_refused_outside_the_desk_channel_like_scan(tmp_path, envs):
    env = await desk_with_positions(envs, tmp_path)
    status, body, _ = await env.slash("/desk", "close all", channel="C0ALERTS1")
    assert status == 200 and "The desk works in" in body and "/desk close" in body
    assert await pending_exits(env) == []


async def test_the_close_button_on_desk_positions_proposes_that_exit(tmp_path, envs):
    env = await desk_with_positions(envs, tmp_path)
    _, _, url = await env.slash("/desk", "positions")
    listed = await answer(env, url)
    closes = accessories(listed)
    numbers = sorted(int(b["value"]) for b in closes)
    assert numbers == sorted(p.id for p in await env.store.positions(paper=True))
    assert all(re.fullmatch(rf"{CLOSE_ACTION}(\.\d+)?", b["action_id"]) for b in closes)
    assert len({b["action_id"] for b in closes}) == 3  # Slack refuses repeated action ids in one message
    button = closes[1]
    click_url = env.slack.new_response_url(channel=DESK_CHANNEL, user=TRADER)
    status, _ = await env.post(block_action(button["action_id"], button["value"], user_id=TRADER,
                                            channel_id=DESK_CHANNEL, message_ts="1700000000.000100",
                                            response_url=click_url, message=listed))
    assert status == 200
    reply = await answer(env, click_url)
    assert reply["response_type"] == "ephemeral" and reply["text"] == "1 exit proposed in the desk's channel"
    [exit_] = await pending_exits(env)
    assert exit_.exit.position_id == int(button["value"]) and exit_.exit.requested_by == TRADER
    assert buttons(env.message_of(await env.desk.message_ref(exit_.id)))  # posted and linked: its buttons act
    # The list now says the exit is pending instead of offering a second Close for that position.
    _, _, url = await env.slash("/desk", "positions")
    again = await answer(env, url)
    assert sorted(b["value"] for b in accessories(again)) == sorted(b["value"] for b in closes if b is not button)
    assert "Exit pending" in reply_text(again)
    # A second click of the old button is refused: one exit per position at a time.
    click_url = env.slack.new_response_url(channel=DESK_CHANNEL, user=TRADER)
    await env.post(block_action(button["action_id"], button["value"], user_id=TRADER, channel_id=DESK_CHANNEL,
                                message_ts="1700000000.000100", response_url=click_url, message=listed))
    assert "already has exit signal" in reply_text(await answer(env, click_url))
    assert len(await pending_exits(env)) == 1


async def test_the_close_button_on_app_home_answers_by_direct_message_and_redraws_home(tmp_path, envs):
    env = await desk_with_positions(envs, tmp_path)
    await env.post(app_home_opened(TRADER), content_type=JSON)
    view = await env.slack.wait_for(lambda: env.slack.published_views.get(TRADER), timeout=5)
    closes = accessories(view)
    assert len(closes) == 3
    published = len(env.slack.posted("views.publish"))
    status, _ = await env.post(home_block_action(closes[0]["action_id"], closes[0]["value"], user_id=TRADER,
                                                 view=view))
    assert status == 200
    [dm] = await env.slack.wait_for(lambda: env.slack.messages(dm_channel_id(TRADER)), timeout=10)
    assert dm["text"] == "1 exit proposed in the desk's channel"
    [exit_] = await pending_exits(env)
    assert exit_.exit.position_id == int(closes[0]["value"])
    await env.slack.wait_for(lambda: len(env.slack.posted("views.publish")) > published, timeout=5)
    home = env.slack.published_views[TRADER]
    assert len(accessories(home)) == 2 and "Exit pending" in json.dumps(home)


async def test_a_halted_desk_still_proposes_exits_and_an_approval_still_sells(tmp_path, envs):
    env = await desk_with_positions(envs, tmp_path)
    _, _, url = await env.slash("/desk", "halt")
    await answer(env, url)
    assert (await env.store.trading_state()).value == "halted"
    ticker = TICKERS[1].lower()  # by ticker, as typed: case does not matter
    _, _, url = await env.slash("/desk", f"close {ticker}")
    assert (await answer(env, url))["text"] == "1 exit proposed in the desk's channel"
    [exit_] = await pending_exits(env)
    assert exit_.market.id == TICKERS[1]
    await env.click(APPROVE_ACTION, exit_.id)
    assert (await wait_until_decided(env, exit_.id)).status is SignalStatus.SIMULATED
    closed = await env.store.position(exit_.exit.position_id)
    assert closed.status == "closed" and closed.realized_pnl == REALISED
    assert (await env.store.trading_state()).value == "halted"  # getting out did not resume anything


async def test_an_exit_whose_message_cannot_be_posted_is_withdrawn_and_the_caller_is_told(tmp_path, envs):
    env = await desk_with_positions(envs, tmp_path)
    [position] = [p for p in await env.store.positions(paper=True) if p.market_id == TICKERS[0]]
    env.slack.faults.add("drop_after", "/api/chat.postMessage", times=3)  # the try and both connection retries
    _, _, url = await env.slash("/desk", f"close {position.id}")
    reply = await answer(env, url)
    assert reply["text"] == "No exit proposed" and reply["response_type"] == "ephemeral"
    assert "proposed but not shown, so withdrawn" in reply_text(reply) and "Nothing was sold" in reply_text(reply)
    [exit_] = [s for s in await env.store.signals() if s.is_exit]
    assert exit_.status is SignalStatus.EXPIRED and "never shown" in exit_.status_reason
    assert await env.store.exiting_positions() == {}  # nothing blocks a fresh close
    _, _, url = await env.slash("/desk", f"close #{position.id}")
    assert (await answer(env, url))["text"] == "1 exit proposed in the desk's channel"
