"""Holding the door (issue 12), through real signed HTTP to the app and a fake Slack on loopback: roles deny by
default, /scan only in the desk's channel, a click acts only on the signal's own message, replays are refused, a
signal nobody can see is released, a resting order stays in play, an approval cannot outlive its signal."""

from __future__ import annotations

import asyncio
import json
import re
import time
from datetime import timedelta

from bot.blocks import APPROVE_ACTION, render
from bot.present.signals import signal_proposal
from pipeline.models import SignalStatus

from .servers.slack import DESK_CHANNEL, dm_channel_id
from .slack_requests import JSON, app_home_opened, slash_command
from .test_desk import Clock
from .test_slack_app import TRADER, buttons, envs, live_kalshi, text_of  # noqa: F401 - fixtures

VIEWER, OPERATOR, NOBODY = "U0TRADER2", "U0RISK001", "U0RISK001"  # NOBODY: carol, when nothing lists her
OTHER_CHANNEL = "C0ALERTS1"


def refusals(env, url: str) -> list[str]:
    return [r["text"] for r in env.slack.responses_to(url)]


async def audited(env, outcome: str) -> list:
    return [e for e in await env.store.audit_log() if e.outcome == outcome]


async def test_a_viewer_may_look_but_not_act_and_a_stranger_sees_nothing_but_help(tmp_path, envs):
    env = await envs(tmp_path, access={"viewers": [VIEWER]})
    [signal] = await env.scan_and_wait()

    status, _, url = await env.slash("/desk", "balance", user=VIEWER)
    [answer] = await env.slack.wait_for(lambda: env.slack.responses_to(url))
    assert status == 200 and "bankroll" in json.dumps(answer).lower()
    await env.click(APPROVE_ACTION, signal.id, user=VIEWER)
    await env.slack.wait_for(lambda: env.slack.responses_to(env.last_response_url))
    [said] = refusals(env, env.last_response_url)
    assert "not authorized to approve" in said and "approval.authorized_users" in said
    assert (await env.store.get_signal(signal.id)).status is SignalStatus.PENDING
    _, body, _ = await env.slash("/scan", user=VIEWER)
    assert "not authorized to run trading cycles" in body and "access.operators" in body

    for sub in ("status", "positions", "balance"):
        _, body, _ = await env.slash("/desk", sub, user=NOBODY)
        reply = json.loads(body)
        assert reply["response_type"] == "ephemeral" and "not authorized to see" in reply["text"], sub
        assert "1,000" not in body and "Fed" not in body  # no bankroll, no positions
    _, body, _ = await env.slash("/desk", "help", user=NOBODY)
    assert "Who may do what" in body

    await env.post(app_home_opened(NOBODY), content_type=JSON)
    view = await env.slack.wait_for(lambda: env.slack.published_views.get(NOBODY))
    assert "not authorized to see" in json.dumps(view) and "DRY-RUN" not in json.dumps(view)
    actors = {e.actor for e in await audited(env, "refused:not_authorized")}
    assert {VIEWER, NOBODY} <= actors


async def test_an_operator_scans_pauses_and_halts_but_cannot_resume_or_approve(tmp_path, envs):
    env = await envs(tmp_path, access={"operators": [OPERATOR]})
    status, body, _ = await env.slash("/scan", user=OPERATOR)
    assert "Starting a cycle" in body
    await env.slack.wait_for(lambda: env.summaries(), timeout=10)
    [signal] = await env.desk.pending_signals()
    await env.click(APPROVE_ACTION, signal.id, user=OPERATOR)
    await env.slack.wait_for(lambda: env.slack.responses_to(env.last_response_url))
    assert "not authorized to approve" in refusals(env, env.last_response_url)[0]

    _, _, url = await env.slash("/desk", "halt", user=OPERATOR)
    await env.slack.wait_for(lambda: env.slack.responses_to(url))
    assert (await env.store.trading_state()).value == "halted"
    _, _, url = await env.slash("/desk", "resume", user=OPERATOR)
    await env.slack.wait_for(lambda: env.slack.responses_to(url))
    assert "not authorized to resume trading" in refusals(env, url)[0]
    assert (await env.store.trading_state()).value == "halted"


async def test_an_operator_listed_by_id_halts_while_slacks_user_group_api_fails(tmp_path, envs):
    # carol is an operator by id; bob only through a group, whose membership cannot be read right now.
    env = await envs(tmp_path, access={"operators": [OPERATOR, "S0TRADERS"]})
    env.slack.faults.add("500", "/api/usergroups.users.list", times=100)
    _, _, url = await env.slash("/desk", "pause", user=VIEWER)
    await env.slack.wait_for(lambda: env.slack.responses_to(url), timeout=10)
    [said] = refusals(env, url)
    assert "could not be checked" in said and (await env.store.trading_state()).value == "active"

    calls_before = len([r for r in env.slack.requests if r.path.endswith("usergroups.users.list")])
    _, _, url = await env.slash("/desk", "halt", user=OPERATOR)
    await env.slack.wait_for(lambda: env.slack.responses_to(url), timeout=10)
    assert "HALTED" in refusals(env, url)[0] and (await env.store.trading_state()).value == "halted"
    # Listed by id: the failing group API was not even asked.
    assert len([r for r in env.slack.requests if r.path.endswith("usergroups.users.list")]) == calls_before


async def test_someone_removed_from_an_approving_group_is_refused_at_once(tmp_path, envs):
    env = await envs(tmp_path, users=(), groups=("S0TRADERS",), access={"operators": [TRADER]})
    [signal] = await env.scan_and_wait()
    _, body, _ = await env.slash("/desk", "status", user=VIEWER)  # bob looks: his membership is now cached
    assert "DRY-RUN" in body
    env.slack.usergroups["S0TRADERS"].remove(VIEWER)
    await env.click(APPROVE_ACTION, signal.id, user=VIEWER)
    await env.slack.wait_for(lambda: env.slack.responses_to(env.last_response_url))
    assert "not authorized to approve" in refusals(env, env.last_response_url)[0]
    assert (await env.store.get_signal(signal.id)).status is SignalStatus.PENDING


async def test_scan_outside_the_desk_channel_is_refused_naming_it_and_runs_nothing(tmp_path, envs):
    env = await envs(tmp_path)
    for channel in (dm_channel_id(TRADER), OTHER_CHANNEL):
        status, body, _ = await env.slash("/scan", user=TRADER, channel=channel)
        reply = json.loads(body)
        assert status == 200 and reply["response_type"] == "ephemeral"
        assert "#trading-desk" in reply["text"] and "only" in reply["text"]
    await asyncio.sleep(0.2)
    assert env.desk.running_cycle is None and env.slack.posted("chat.postMessage") == []
    assert await env.store.last_cycle_report() is None
    refused = await audited(env, "refused:wrong_channel")
    assert [e.subject for e in refused] == [dm_channel_id(TRADER), OTHER_CHANNEL]

    # Once the desk has posted in its channel it knows the channel's id, and names it as a link.
    await env.scan_and_wait()
    _, body, _ = await env.slash("/scan", user=TRADER, channel=OTHER_CHANNEL)
    assert f"<#{DESK_CHANNEL}>" in json.loads(body)["text"]


async def test_a_desk_channel_given_by_id_is_matched_by_id(tmp_path, envs):
    env = await envs(tmp_path, channel=DESK_CHANNEL)
    _, body, _ = await env.slash("/scan", user=TRADER, channel=OTHER_CHANNEL)
    assert f"<#{DESK_CHANNEL}>" in body
    await env.scan_and_wait()
    assert env.summaries()


async def test_a_signal_that_cannot_be_posted_is_released_at_once_and_the_report_says_so(tmp_path, envs):
    env = await envs(tmp_path)
    env.analyzer.gate = asyncio.Event()  # the progress message is out; the signal's post is next
    await env.slash("/scan")
    await env.slack.wait_for(lambda: env.slack.posted("chat.postMessage"))
    env.slack.faults.add("500", "/api/chat.postMessage", times=3)  # the first try and both retries
    env.analyzer.gate.set()
    await env.slack.wait_for(lambda: env.summaries(), timeout=15)
    assert await env.desk.pending_signals() == []
    [signal] = await env.store.signals()
    assert signal.status is SignalStatus.EXPIRED and "never shown" in signal.status_reason
    snapshot = await env.store.risk_snapshot(True, env.desk.settings.trading.initial_bankroll,
                                             env.desk.clock() - timedelta(days=1))
    assert snapshot.reserved == 0 and not snapshot.markets_in_play
    report = await env.slack.wait_for(lambda: [m for m in env.slack.messages(DESK_CHANNEL) if not m.get("thread_ts")
                                               and re.search(r"1 error in cycle \w+", m.get("text", ""))])
    thread = await env.slack.wait_for(lambda: env.slack.thread(DESK_CHANNEL, report[0]["ts"]))
    assert "withdrawn" in json.dumps(thread) and "released" in json.dumps(thread)


async def test_a_click_storm_from_two_channels_places_one_order_from_the_signals_own_message(
        tmp_path, envs, live_kalshi):
    fake, _, client = live_kalshi
    env = await envs(tmp_path, dry_run=False, venue=client)
    [signal] = await env.scan_and_wait()
    ref = await env.desk.message_ref(signal.id)
    # The same buttons on a message in another channel (a copy the bot once posted there).
    copy = await env.slack_desk.poster.post(OTHER_CHANNEL, render(signal_proposal(signal, signal.created_at)))

    await env.click(APPROVE_ACTION, signal.id, on=copy)  # alone first: it must not act
    await env.slack.wait_for(lambda: env.slack.responses_to(env.last_response_url))
    assert "not on the message this signal was posted as" in refusals(env, env.last_response_url)[0]
    assert not fake.orders and (await env.store.get_signal(signal.id)).status is SignalStatus.PENDING
    assert buttons(env.slack.message(*copy))  # nothing edited the copy either

    clicks = [env.click(APPROVE_ACTION, signal.id, on=copy if i % 2 else None) for i in range(20)]
    await asyncio.gather(*clicks)
    await env.slack.wait_for(lambda: not buttons(env.message_of(ref)), timeout=10)
    await asyncio.sleep(0.3)
    assert len(fake.orders) == 1 and fake.server.count("POST", "/trade-api/v2/portfolio/events/orders") == 1
    assert (await env.store.get_signal(signal.id)).status is SignalStatus.FILLED
    [order] = fake.orders.values()
    assert order["order_id"] in text_of(env.message_of(ref))  # the signal's own message shows the fill
    assert buttons(env.slack.message(*copy))
    assert len(await audited(env, "refused:wrong_message")) == 11


async def test_a_replayed_signed_request_is_refused(tmp_path, envs):
    env = await envs(tmp_path)
    resume = slash_command("/desk", "resume", user_id=TRADER, channel_id=DESK_CHANNEL,
                           response_url=env.slack.new_response_url(channel=DESK_CHANNEL, user=TRADER))
    signed_at = int(time.time())
    assert (await env.post(resume, timestamp=signed_at))[0] == 200
    _, _, url = await env.slash("/desk", "halt")
    await env.slack.wait_for(lambda: env.slack.responses_to(url))
    assert (await env.store.trading_state()).value == "halted"
    status, _ = await env.post(resume, timestamp=signed_at)  # captured, sent again within Slack's window
    assert status == 401
    await asyncio.sleep(0.2)
    assert (await env.store.trading_state()).value == "halted"
    assert await audited(env, "refused:replayed")
    # The same command signed anew is a new request and works.
    _, _, url = await env.slash("/desk", "resume")
    await env.slack.wait_for(lambda: env.slack.responses_to(url))
    assert (await env.store.trading_state()).value == "active"


async def test_a_resting_gtc_order_keeps_its_market_in_play_for_the_next_cycle(tmp_path, envs):
    env = await envs(tmp_path, dry_run=False, extra_env={"ODDSDESK_TRADING__TIME_IN_FORCE": "good_till_canceled"})
    env.venue.rest_orders = True
    [signal] = await env.scan_and_wait()
    ref = await env.desk.message_ref(signal.id)
    await env.click(APPROVE_ACTION, signal.id)
    await env.slack.wait_for(lambda: "Resting: " in text_of(env.message_of(ref)), timeout=10)
    assert (await env.store.get_signal(signal.id)).status is SignalStatus.PLACED

    assert await env.scan_and_wait() == []  # the second cycle does not signal the same market again
    assert "risk:already_in_market" in text_of(env.summaries()[-1])
    snapshot = await env.store.risk_snapshot(False, env.desk.settings.trading.initial_bankroll,
                                             env.desk.clock() - timedelta(days=1))
    assert snapshot.live_orders == 1 and signal.market.key in snapshot.markets_in_play
    assert snapshot.exposure == signal.reserved  # every contract at the limit, with its worst fee


async def test_an_approval_whose_signal_expires_during_the_book_recheck_is_refused(tmp_path, envs):
    clock = Clock()
    env = await envs(tmp_path, clock=clock, dry_run=False)
    [signal] = await env.scan_and_wait()
    env.venue.book_gate = asyncio.Event()
    clock.now = signal.expires_at - timedelta(seconds=1)
    click = asyncio.create_task(env.click(APPROVE_ACTION, signal.id))
    await asyncio.wait_for(env.venue.held.wait(), 5)  # the approval is re-reading the book
    clock.now = signal.expires_at + timedelta(seconds=1)
    env.venue.book_gate.set()
    await click
    await env.slack.wait_for(lambda: env.slack.responses_to(env.last_response_url))
    [said] = refusals(env, env.last_response_url)
    assert "expired" in said and "while its price was being re-checked" in said
    assert env.venue.posts == 0 and (await env.store.get_signal(signal.id)).status is SignalStatus.EXPIRED
