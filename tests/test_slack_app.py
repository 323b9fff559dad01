"""The Slack desk end to end: signed requests over real HTTP to the app in HTTP mode, a fake Slack
Web API and fake venues on loopback. /scan -> progress -> signals -> Approve -> outcome."""

from __future__ import annotations

import asyncio
import json
import re
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bot.app import build_app, http_application
from bot.blocks import APPROVE_ACTION, REJECT_ACTION
from bot.runtime import SlackDesk
from bot.slack_client import Poster, parse_ref, web_client
from pipeline.config import load_settings
from pipeline.desk import Desk
from pipeline.errors import GiveUpError
from pipeline.models import SignalStatus
from pipeline.store import Store
from pipeline.venues.kalshi import KalshiClient

from .fakes import FakeVenue, make_book, make_market
from .servers.base import LoopbackServer
from .servers.kalshi import FakeKalshi
from .servers.slack import DESK_CHANNEL, FakeSlack
from .slack_requests import FORM, JSON, app_home_opened, block_action, post_to_app, sign, slash_command
from .test_desk import Clock, FixedAnalyzer
from .test_kalshi import FAST, KEY_ID, add_fed, kalshi_config, rsa_key

SECRET = "slack-signing-secret-for-tests-0123456"
SUMMARY = re.compile(r"Cycle (clean|partial|failed) — ")
TRADER, STRANGER = "U0TRADER1", "U0RISK001"
D = Decimal


class SlackEnv:
    def __init__(self, slack: FakeSlack, app_url: str, desk: Desk, store: Store, slack_desk: SlackDesk,
                 analyzer: FixedAnalyzer, venue: Any) -> None:
        self.slack, self.app_url, self.desk, self.store = slack, app_url, desk, store
        self.slack_desk, self.analyzer, self.venue = slack_desk, analyzer, venue

    async def post(self, body: bytes, *, content_type: str = FORM, secret: str = SECRET,
                   timestamp: int | None = None) -> tuple[int, str]:
        return await post_to_app(f"{self.app_url}/slack/events", body, sign(secret, body, timestamp),
                                 content_type=content_type)

    async def slash(self, command: str, text: str = "", user: str = TRADER,
                    channel: str = DESK_CHANNEL) -> tuple[int, str, str]:
        url = self.slack.new_response_url(channel=channel, user=user)
        status, body = await self.post(slash_command(command, text, user_id=user, channel_id=channel,
                                                     response_url=url))
        return status, body, url

    async def click(self, action: str, signal_id: str, user: str = TRADER,
                    on: tuple[str, str] | None = None) -> tuple[int, str]:
        """Click `action` on the signal's own message, or on the message at `on` = (channel, ts)."""
        channel, ts = on or parse_ref(await self.desk.message_ref(signal_id))
        url = self.slack.new_response_url(channel=channel, message_ts=ts, user=user)
        self.last_response_url = url
        return await self.post(block_action(action, signal_id, user_id=user, channel_id=channel, message_ts=ts,
                                            response_url=url, message=self.slack.message(channel, ts)))

    async def scan_and_wait(self, text: str = "") -> list:
        before = len(self.summaries())
        status, _, _ = await self.slash("/scan", text)
        assert status == 200
        await self.slack.wait_for(lambda: len(self.summaries()) > before, timeout=10)
        return await self.desk.pending_signals()

    def summaries(self) -> list[dict]:
        return [m for m in self.slack.messages(DESK_CHANNEL) if SUMMARY.search(m.get("text", ""))]

    def message_of(self, ref: str) -> dict:
        channel, ts = parse_ref(ref)
        return self.slack.message(channel, ts)


def buttons(message: dict) -> list[dict]:
    return [e for b in message.get("blocks", []) if b["type"] == "actions" for e in b["elements"]]


def text_of(message: dict) -> str:
    return json.dumps(message.get("blocks", [])) + message.get("text", "")


async def start(tmp_path: Path, *, dry_run: bool = True, venue: Any = None, users=(TRADER,), groups=(),
                clock: Clock | None = None, probability: str = "0.70", extra_env: dict | None = None,
                access: dict | None = None, channel: str = "#trading-desk", slack_hang: float = 30.0):
    slack = FakeSlack(hang_seconds=slack_hang)  # how long a "timeout" fault holds a Slack call
    await slack.__aenter__()
    config = tmp_path / "config.json"
    config.write_text(json.dumps({
        "trading": {"dry_run": dry_run}, "slack": {"channel": channel},
        "approval": {"authorized_users": list(users), "authorized_usergroups": list(groups)},
        "storage": {"path": str(tmp_path / "desk.db")}, **({"access": access} if access else {})}))
    settings = load_settings(config, environ={"SLACK_API_URL": slack.api_url, "SLACK_BOT_TOKEN": slack.bot_token,
                                              "SLACK_SIGNING_SECRET": SECRET, **(extra_env or {})})
    if venue is None:
        venue = FakeVenue()
        market = make_market("KXFED-26DEC-H0", title="Will the Fed hold in December?")
        venue.add(market, make_book(market, bids=[("0.40", "200")], asks=[("0.42", "100"), ("0.44", "100")]))
    store = await Store.open(settings.storage.path)
    markets = list(getattr(venue, "markets", {}).values()) if isinstance(venue, FakeVenue) else \
        await venue.list_markets()
    analyzer = FixedAnalyzer({m.key: probability for m in markets})
    desk = Desk(settings, store, {venue.venue: venue}, analyzer, clock=clock or Clock())
    client = web_client(settings)
    slack_desk = SlackDesk(desk, Poster(client, per_second=50), settings)
    app = build_app(slack_desk, settings, client, http=True)
    server = LoopbackServer(http_application(app, slack_desk))
    await server.__aenter__()
    env = SlackEnv(slack, server.url, desk, store, slack_desk, analyzer, venue)
    env._closers = [server.__aexit__, slack.__aexit__]  # type: ignore[attr-defined]
    return env


@pytest.fixture
async def live_kalshi():
    """A fake Kalshi holding the standard Fed market, and a signed client for it: (fake, server, client)."""
    fake = FakeKalshi(rsa_key(0).public_key(), KEY_ID)
    add_fed(fake)
    async with fake.serve() as server:
        yield fake, server, KalshiClient(fake.base_url, KEY_ID, rsa_key(0), load_settings(None, environ={}).fees,
                                         kalshi_config(), retry=FAST)


@pytest.fixture
async def envs():
    made: list[SlackEnv] = []

    async def make(*args: Any, **kwargs: Any) -> SlackEnv:
        env = await start(*args, **kwargs)
        made.append(env)
        return env

    yield make
    for env in made:
        await env.desk.aclose()
        await env.store.close()
        for close in env._closers:  # type: ignore[attr-defined]
            await close(None, None, None)


async def test_scan_is_acked_at_once_then_progress_signals_and_summary_follow(tmp_path, envs):
    env = await envs(tmp_path)
    env.analyzer.gate = asyncio.Event()  # hold the cycle in analysis
    started = time.perf_counter()
    status, body, _ = await env.slash("/scan", "kalshi limit 5")
    ack_seconds = time.perf_counter() - started
    assert status == 200 and "Starting a cycle" in body
    await env.slack.wait_for(lambda: env.desk.running_cycle is not None)
    assert ack_seconds < 3  # Slack's deadline; the cycle itself is still running
    env.analyzer.gate.set()
    await env.slack.wait_for(lambda: env.summaries(), timeout=10)
    posts = env.slack.posted("chat.postMessage")
    progress = posts[0]
    assert "cycle" in progress["text"].lower()
    progress_ts = env.slack.messages(DESK_CHANNEL)[0]["ts"]
    updates = [u for u in env.slack.posted("chat.update") if u["ts"] == progress_ts]
    assert updates and "1 signal posted · cycle clean" in updates[-1]["text"]
    [signal] = await env.desk.pending_signals()
    message = env.message_of(await env.desk.message_ref(signal.id))
    assert [b["action_id"] for b in buttons(message)] == [APPROVE_ACTION, REJECT_ACTION]
    assert all(b["value"] == signal.id for b in buttons(message))
    assert "DRY-RUN" in message["text"] and "Will the Fed hold in December?" in text_of(message)
    assert "Cycle clean — 1 signal from 1 market" in env.summaries()[0]["text"]


async def test_dry_run_approve_edits_the_message_with_the_outcome(tmp_path, envs):
    env = await envs(tmp_path)
    [signal] = await env.scan_and_wait()
    status, _ = await env.click(APPROVE_ACTION, signal.id)
    assert status == 200
    ref = await env.desk.message_ref(signal.id)
    await env.slack.wait_for(lambda: not buttons(env.message_of(ref)), timeout=5)
    message = env.message_of(ref)
    assert buttons(message) == [] and "DRY-RUN" in text_of(message) and "113" in text_of(message)
    assert (await env.store.get_signal(signal.id)).status is SignalStatus.SIMULATED
    assert env.venue.posts == 0


async def test_live_approve_places_one_order_and_shows_its_details(tmp_path, envs, live_kalshi):
    fake, _, client = live_kalshi
    env = await envs(tmp_path, dry_run=False, venue=client)
    [signal] = await env.scan_and_wait()
    message = env.message_of(await env.desk.message_ref(signal.id))
    approve = buttons(message)[0]
    assert "LIVE" in message["text"] and approve["confirm"]["confirm"]["text"]
    await env.click(APPROVE_ACTION, signal.id)
    ref = await env.desk.message_ref(signal.id)
    await env.slack.wait_for(lambda: not buttons(env.message_of(ref)), timeout=5)
    [order] = fake.orders.values()
    assert order["client_order_id"] == signal.client_order_id
    shown = text_of(env.message_of(ref))
    assert order["order_id"] in shown and "LIVE: Filled 113" in shown
    assert (await env.store.get_signal(signal.id)).status is SignalStatus.FILLED


async def test_twenty_concurrent_clicks_place_one_live_order(tmp_path, envs, live_kalshi):
    fake, _, client = live_kalshi
    env = await envs(tmp_path, dry_run=False, venue=client)
    [signal] = await env.scan_and_wait()
    results = await asyncio.gather(*(env.click(APPROVE_ACTION, signal.id) for _ in range(20)))
    assert all(status == 200 for status, _ in results)
    await env.slack.wait_for(lambda: len(env.slack.responses) >= 19, timeout=10)  # 19 private refusals
    await env.slack.wait_for(lambda: fake.orders, timeout=10)  # the one that won is placing its order
    await asyncio.sleep(0.3)  # and nothing else follows
    assert len(fake.orders) == 1 and fake.server.count("POST", "/trade-api/v2/portfolio/events/orders") == 1
    assert all("already" in r["text"] for r in env.slack.responses)


async def test_forged_or_stale_requests_get_401_and_change_nothing(tmp_path, envs):
    env = await envs(tmp_path)
    body = slash_command("/scan", "", user_id=TRADER, channel_id=DESK_CHANNEL,
                         response_url=env.slack.new_response_url())
    assert (await env.post(body, secret="not-the-secret"))[0] == 401
    assert (await env.post(body, timestamp=int(time.time()) - 600))[0] == 401
    await asyncio.sleep(0.2)
    assert env.slack.posted("chat.postMessage") == [] and env.desk.running_cycle is None
    assert await env.store.last_cycle_report() is None


async def test_an_unauthorized_click_is_refused_privately_and_changes_nothing(tmp_path, envs):
    env = await envs(tmp_path)
    [signal] = await env.scan_and_wait()
    updates_before = len(env.slack.posted("chat.update"))
    await env.click(APPROVE_ACTION, signal.id, user=STRANGER)
    await env.slack.wait_for(lambda: env.slack.responses_to(env.last_response_url))
    [reply] = env.slack.responses_to(env.last_response_url)
    assert reply["response_type"] == "ephemeral" and "not authorized" in reply["text"]
    assert (await env.store.get_signal(signal.id)).status is SignalStatus.PENDING
    assert len(env.slack.posted("chat.update")) == updates_before
    audit = [e for e in await env.store.audit_log(signal.id) if e.actor == STRANGER]
    assert audit and audit[0].outcome == "refused:not_authorized"


async def test_members_of_an_authorized_group_may_approve(tmp_path, envs):
    env = await envs(tmp_path, users=(), groups=("S0TRADERS",))
    [signal] = await env.scan_and_wait()
    await env.click(APPROVE_ACTION, signal.id, user="U0TRADER2")  # bob is in S0TRADERS
    ref = await env.desk.message_ref(signal.id)
    await env.slack.wait_for(lambda: not buttons(env.message_of(ref)), timeout=5)
    assert (await env.store.get_signal(signal.id)).status is SignalStatus.SIMULATED
    await env.click(APPROVE_ACTION, signal.id, user=STRANGER)  # carol is not
    await env.slack.wait_for(lambda: env.slack.responses_to(env.last_response_url))
    assert "not authorized" in env.slack.responses_to(env.last_response_url)[0]["text"]


async def test_an_expired_signal_refuses_and_its_message_says_so(tmp_path, envs):
    clock = Clock()
    env = await envs(tmp_path, clock=clock)
    [signal] = await env.scan_and_wait()
    clock.now = signal.expires_at + timedelta(seconds=1)
    await env.click(APPROVE_ACTION, signal.id)
    ref = await env.desk.message_ref(signal.id)
    await env.slack.wait_for(lambda: not buttons(env.message_of(ref)), timeout=5)
    assert "expired" in text_of(env.message_of(ref)).lower()
    await env.slack.wait_for(lambda: env.slack.responses_to(env.last_response_url))  # answered after the edit
    [reply] = env.slack.responses_to(env.last_response_url)
    assert "expired" in reply["text"]


async def test_the_sweeper_expires_pending_signals_and_edits_them(tmp_path, envs):
    clock = Clock()
    env = await envs(tmp_path, clock=clock)
    [signal] = await env.scan_and_wait()
    assert await env.slack_desk.sweep() == 0
    clock.now = signal.expires_at
    assert await env.slack_desk.sweep() == 1
    message = env.message_of(await env.desk.message_ref(signal.id))
    assert buttons(message) == [] and "expired" in text_of(message).lower()


async def test_a_moved_price_is_refused_with_the_new_numbers(tmp_path, envs):
    env = await envs(tmp_path)
    [signal] = await env.scan_and_wait()
    market = env.venue.markets["KXFED-26DEC-H0"]
    env.venue.books[market.id] = make_book(market, bids=[("0.46", "100")], asks=[("0.48", "100")])
    await env.click(APPROVE_ACTION, signal.id)
    await env.slack.wait_for(lambda: env.slack.responses_to(env.last_response_url))
    [reply] = env.slack.responses_to(env.last_response_url)
    assert "moved" in reply["text"] and "0.48" in reply["text"]
    assert (await env.store.get_signal(signal.id)).status is SignalStatus.PENDING


async def test_reject_frees_the_reservation_and_edits_the_message(tmp_path, envs):
    env = await envs(tmp_path)
    [signal] = await env.scan_and_wait()
    await env.click(REJECT_ACTION, signal.id)
    ref = await env.desk.message_ref(signal.id)
    await env.slack.wait_for(lambda: not buttons(env.message_of(ref)), timeout=5)
    assert (await env.store.get_signal(signal.id)).status is SignalStatus.REJECTED
    assert (await env.desk.status()).risk.reserved == 0


async def test_a_second_scan_is_told_who_started_the_running_one(tmp_path, envs):
    env = await envs(tmp_path)
    env.analyzer.gate = asyncio.Event()
    await env.slash("/scan")
    await env.slack.wait_for(lambda: env.desk.running_cycle is not None)
    status, body, _ = await env.slash("/scan", user="U0TRADER2")
    assert status == 200 and f"<@{TRADER}>" in body
    env.analyzer.gate.set()
    await env.slack.wait_for(lambda: env.summaries(), timeout=10)
    assert len(env.summaries()) == 1


async def test_bad_scan_arguments_get_a_usage_line(tmp_path, envs):
    env = await envs(tmp_path)
    status, body, _ = await env.slash("/scan", "kraken")
    assert status == 200 and "kraken" in body and "Usage" in body
    assert env.desk.running_cycle is None and env.slack.posted("chat.postMessage") == []


async def test_a_slack_429_on_posting_is_retried(tmp_path, envs):
    env = await envs(tmp_path)
    env.slack.rate_limit("chat.postMessage", times=1, retry_after=1)
    await env.scan_and_wait()
    assert env.summaries() and [r for r in env.slack.requests if r.path.endswith("chat.postMessage")]
    assert len([r for r in env.slack.requests if r.path.endswith("chat.postMessage")]) == \
        len(env.slack.posted("chat.postMessage")) + 1


async def test_desk_commands_and_pause_resume(tmp_path, envs):
    env = await envs(tmp_path)
    for sub in ("status", "help"):  # answered in the ack: no venue is asked
        status, body, _ = await env.slash("/desk", sub)
        assert status == 200 and json.loads(body)["response_type"] == "ephemeral", sub
    _, body, _ = await env.slash("/desk", "status")
    assert "DRY-RUN" in body
    for sub in ("positions", "balance"):  # the venues are asked (marks, cash): the answer follows the ack
        status, body, url = await env.slash("/desk", sub)
        assert status == 200 and not body
        [answer] = await env.slack.wait_for(lambda: env.slack.responses_to(url))
        assert answer["response_type"] == "ephemeral" and "DRY-RUN" in answer["text"], sub
    _, _, url = await env.slash("/desk", "pause", user=STRANGER)
    await env.slack.wait_for(lambda: env.slack.responses_to(url))
    assert "not authorized" in env.slack.responses_to(url)[0]["text"]
    _, _, url = await env.slash("/desk", "pause")
    await env.slack.wait_for(lambda: env.slack.responses_to(url))
    assert env.slack.responses_to(url)[0]["response_type"] == "in_channel"
    assert (await env.desk.status()).state.value == "paused"
    _, _, url = await env.slash("/desk", "resume")
    await env.slack.wait_for(lambda: env.slack.responses_to(url))
    assert (await env.desk.status()).state.value == "active"


async def test_desk_halt_cancels_a_resting_order_and_redraws_its_signal(tmp_path, envs):
    env = await envs(tmp_path, dry_run=False, extra_env={"ODDSDESK_TRADING__TIME_IN_FORCE": "good_till_canceled"})
    env.venue.rest_orders = True
    [signal] = await env.scan_and_wait()
    signal_ref = await env.desk.message_ref(signal.id)
    await env.click(APPROVE_ACTION, signal.id)
    await env.slack.wait_for(lambda: "Resting: " in text_of(env.message_of(signal_ref)), timeout=10)
    _, _, url = await env.slash("/desk", "halt", user=STRANGER)  # refused: nothing cancelled
    await env.slack.wait_for(lambda: env.slack.responses_to(url))
    assert "not authorized" in env.slack.responses_to(url)[0]["text"] and env.venue.cancels == 0
    _, _, url = await env.slash("/desk", "halt")
    await env.slack.wait_for(lambda: env.slack.responses_to(url))
    [said] = env.slack.responses_to(url)
    assert said["response_type"] == "in_channel" and "1 resting order(s) cancelled" in said["text"]
    assert env.venue.cancels == 1 and (await env.store.trading_state()).value == "halted"
    redrawn = text_of(env.message_of(signal_ref))
    assert "Cancelled — nothing filled" in redrawn and "cancelled: the desk is HALTED" in redrawn
    assert "order placed (resting)" not in redrawn


async def test_app_home_shows_the_desk(tmp_path, envs):
    env = await envs(tmp_path)
    await env.scan_and_wait()
    status, _ = await env.post(app_home_opened(TRADER), content_type=JSON)
    assert status == 200
    await env.slack.wait_for(lambda: env.slack.published_views.get(TRADER), timeout=5)
    view = env.slack.published_views[TRADER]
    shown = json.dumps(view, ensure_ascii=False)
    assert view["type"] == "home" and "DRY-RUN" in shown
    assert "Analyst vs market:* not enough resolved markets to say" in shown
    assert "0 markets scored, 1 estimates waiting" in shown


async def test_errors_arrive_as_a_report_with_details_in_its_thread_and_no_secrets(tmp_path, envs):
    secret_key = "sk-ant-secret-value-that-must-not-leak"

    class Failing(FakeVenue):
        async def list_markets(self, stats=None):
            raise GiveUpError(f"HTTP 401 with key {secret_key}")

    env = await envs(tmp_path, venue=Failing(), extra_env={"ANTHROPIC_API_KEY": secret_key})
    await env.scan_and_wait()
    def error_reports() -> list[dict]:
        return [m for m in env.slack.messages(DESK_CHANNEL) if not m.get("thread_ts")
                and re.search(r"1 error in cycle \w+", m.get("text", ""))]

    [report] = await env.slack.wait_for(error_reports)
    await env.slack.wait_for(lambda: env.slack.thread(DESK_CHANNEL, report["ts"]))
    thread = env.slack.thread(DESK_CHANNEL, report["ts"])
    assert thread and "HTTP 401" in json.dumps(thread)
    everything = json.dumps([r.json() if r.body.startswith(b"{") else r.body.decode()
                             for r in env.slack.requests])
    assert secret_key not in everything


async def test_a_scheduled_cycle_posts_into_the_configured_channel(tmp_path, envs):
    from bot.app import scheduled_cycle

    env = await envs(tmp_path)
    await scheduled_cycle(env.slack_desk)
    [summary] = env.summaries()
    assert (await env.store.last_cycle_report()).trigger == "schedule"
    assert len(await env.desk.pending_signals()) == 1 and summary  # summaries() reads #trading-desk


async def test_the_job_loop_survives_failures_and_skips_while_a_cycle_runs():
    from bot.app import every
    from pipeline.errors import CycleAlreadyRunning

    calls: list[str] = []

    async def job() -> None:
        calls.append("x")
        if len(calls) == 1:
            raise RuntimeError("boom")
        if len(calls) == 2:
            raise CycleAlreadyRunning("U1", "12:00")

    loop = asyncio.create_task(every(0.01, job, "test job"))
    while len(calls) < 4:
        await asyncio.sleep(0.01)
    loop.cancel()
    with pytest.raises(asyncio.CancelledError):
        await loop
    assert len(calls) >= 4


async def test_reconciliation_settles_an_unknown_order_and_tells_the_channel(tmp_path, envs, live_kalshi):
    from .test_kalshi import ORDERS, ORDERS_V2

    fake, server, client = live_kalshi
    env = await envs(tmp_path, dry_run=False, venue=client)
    [signal] = await env.scan_and_wait()
    server.faults.add("drop_after", ORDERS_V2, method="POST")
    server.faults.add("503", ORDERS, method="GET", times=20)
    await env.click(APPROVE_ACTION, signal.id)
    for _ in range(100):  # the click is handled after its ack: wait for the lost answer to be recorded
        if (await env.store.get_signal(signal.id)).status is SignalStatus.UNKNOWN:
            break
        await asyncio.sleep(0.05)
    assert (await env.store.get_signal(signal.id)).status is SignalStatus.UNKNOWN and len(fake.orders) == 1
    server.faults.queue.clear()
    assert await env.slack_desk.reconcile() == 1
    [note] = [m for m in env.slack.messages(DESK_CHANNEL) if m.get("text", "").startswith("Reconciliation")]
    assert "1 resolved" in note["text"] and signal.client_order_id in text_of(note)
    assert (await env.store.get_signal(signal.id)).status is SignalStatus.FILLED
    assert len(fake.orders) == 1
    # The signal's own message, last drawn as "outcome unknown", now shows the fill.
    channel, ts = (await env.store.message_ref(signal.id)).split(":", 1)
    redrawn = text_of(env.slack.message(channel, ts))
    assert "filled" in redrawn and "Reconciled with Kalshi" in redrawn and "unknown, reconciling" not in redrawn


async def test_a_standing_position_mismatch_is_told_once(tmp_path, envs, live_kalshi):
    fake, _, client = live_kalshi
    env = await envs(tmp_path, dry_run=False, venue=client)
    fake.positions["KXHAND-26DEC-T1"].position = D(4)
    await env.slack_desk.reconcile()
    await env.slack_desk.reconcile()

    def notes() -> list[dict]:
        return [m for m in env.slack.messages(DESK_CHANNEL) if m.get("text", "").startswith("Reconciliation")]

    [note] = notes()
    assert "1 position mismatch" in note["text"] and "KXHAND-26DEC-T1" in text_of(note)
    fake.positions["KXHAND-26DEC-T1"].position = D(0)  # settled by hand: the standing set changed
    await env.slack_desk.reconcile()
    assert len(notes()) == 2


async def test_a_listing_that_keeps_failing_is_told_once_as_a_check_not_made(tmp_path, envs, live_kalshi):
    from .test_kalshi import PREFIX

    _, server, client = live_kalshi
    env = await envs(tmp_path, dry_run=False, venue=client)
    server.faults.add("503", f"{PREFIX}/portfolio/positions", method="GET", times=1000)

    def notes() -> list[dict]:
        return [m for m in env.slack.messages(DESK_CHANNEL) if m.get("text", "").startswith("Reconciliation")]

    await env.slack_desk.reconcile()
    await env.slack_desk.reconcile()  # failing the same way: not told again
    [note] = notes()
    assert "1 check(s) not made" in note["text"]
    assert "could not list Kalshi positions this pass" in text_of(note)
    server.faults.queue.clear()  # the venue answers again: the standing set changed, and the channel hears it
    await env.slack_desk.reconcile()
    assert len(notes()) == 2 and "not made" not in notes()[-1]["text"]


async def test_a_settlement_and_the_loss_halt_it_causes_are_told_in_the_channel(tmp_path, envs):
    env = await envs(tmp_path, extra_env={"ODDSDESK_TRADING__DAILY_LOSS_LIMIT_FRACTION": "0.01"})
    [signal] = await env.scan_and_wait()
    await env.click(APPROVE_ACTION, signal.id)
    for _ in range(100):  # the click is handled after its ack
        if (await env.store.get_signal(signal.id)).status is SignalStatus.SIMULATED:
            break
        await asyncio.sleep(0.05)
    env.venue.resolve("KXFED-26DEC-H0", "0")  # NO won: the paper YES position is worth nothing
    assert await env.slack_desk.settle() == 1
    assert await env.slack_desk.settle() == 0  # nothing settles twice, and the halt is told once
    messages = env.slack.messages(DESK_CHANNEL)
    [settled] = [m for m in messages if m.get("text", "").startswith("Settled 1 position")]
    assert "paper -$" in settled["text"] and "DRY-RUN" in text_of(settled) and "KXFED-26DEC-H0" in text_of(settled)
    [halt] = [m for m in messages if m.get("text", "").startswith("Desk HALTED")]
    assert "reached the daily limit" in text_of(halt) and "/desk resume" in text_of(halt)
    assert (await env.store.trading_state()).value == "halted"


async def test_a_retired_kalshi_endpoint_is_told_once_in_the_channel_and_shown_until_resumed(tmp_path, envs,
                                                                                           live_kalshi):
    fake, _, client = live_kalshi
    fake.retire("POST", "/portfolio/events/orders")  # Kalshi moved on from what this desk speaks
    env = await envs(tmp_path, dry_run=False, venue=client)
    [signal] = await env.scan_and_wait()
    await env.click(APPROVE_ACTION, signal.id)

    def stopped_notices() -> list[dict]:
        return [m for m in env.slack.messages(DESK_CHANNEL) if m.get("text", "").startswith("Orders to Kalshi STOPPED")]

    [notice] = await env.slack.wait_for(stopped_notices, timeout=10)
    shown = text_of(notice)
    for words in ("Orders to Kalshi STOPPED", "deprecated_v1_order_endpoint", "oddsdesk check --venues",
                  "/desk resume kalshi", "Nothing moved", "the other venue trades on"):
        assert words in shown, words
    assert fake.orders == {}
    # /desk status says so for as long as it lasts
    _, body, _ = await env.slash("/desk", "status")
    assert "Orders to Kalshi are stopped" in body and "/desk resume kalshi" in body
    # another cycle and click: refused privately, and the channel is not told again
    fake.retired.clear()
    [again] = [s for s in await env.scan_and_wait() if s.id != signal.id] or [None]
    assert again is None  # its markets were not analysed while orders are stopped
    assert len(stopped_notices()) == 1
    # only an authorized person lifts it
    _, _, url = await env.slash("/desk", "resume kalshi", user=STRANGER)
    await env.slack.wait_for(lambda: env.slack.responses_to(url))
    assert "not authorized" in env.slack.responses_to(url)[0]["text"]
    _, _, url = await env.slash("/desk", "resume kalshi")
    await env.slack.wait_for(lambda: env.slack.responses_to(url))
    assert "Orders to kalshi resumed" in env.slack.responses_to(url)[0]["text"]
    assert (await env.desk.status()).stopped_venues == {}
