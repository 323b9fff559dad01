"""P3: how fast Slack gets its ack for /scan and for button clicks while a 15,000-market cycle runs.

Slack gives an app 3 s. The app, the fakes and the cycle share one event loop here, as the app
and its cycle do in production, so anything that blocks the loop (parsing a 1,000-market page,
say) shows up as ack latency. The bound is the same ack measured on an idle desk in this run.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from bot.app import build_app, http_application
from bot.blocks import APPROVE_ACTION
from bot.runtime import SlackDesk
from bot.slack_client import Poster, web_client
from pipeline.cycle import CycleRequest
from pipeline.desk import Desk
from pipeline.store import Store
from tests.servers.base import LoopbackServer
from tests.servers.slack import DESK_CHANNEL, FakeSlack
from tests.slack_requests import FORM, block_action, post_to_app, sign, slash_command

from .common import Figure, load_config, market_world

SECRET = "benchmark-signing-secret-0123456789"
SAMPLES = 40


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def _acks(url: str, slack: FakeSlack, n: int, scan_text: str) -> tuple[list[float], list[float]]:
    scans, clicks = [], []
    for i in range(n):
        body = slash_command("/scan", scan_text, user_id="U0TRADER1", channel_id=DESK_CHANNEL,
                             response_url=slack.new_response_url())
        started = time.perf_counter()
        await post_to_app(url, body, sign(SECRET, body), content_type=FORM)
        scans.append(time.perf_counter() - started)
        click = block_action(APPROVE_ACTION, f"no-such-signal-{i}", user_id="U0TRADER1", channel_id=DESK_CHANNEL,
                             message_ts="1.000001", response_url=slack.new_response_url())
        started = time.perf_counter()
        await post_to_app(url, click, sign(SECRET, click), content_type=FORM)
        clicks.append(time.perf_counter() - started)
        await asyncio.sleep(0.05)
    return scans, clicks


async def run() -> list[Figure]:
    with tempfile.TemporaryDirectory() as tmp:
        async with FakeSlack() as slack, market_world() as world:
            settings = load_config(Path(tmp), {"approval": {"authorized_users": ["U0TRADER1"]},
                                               "storage": {"path": str(Path(tmp) / "ack.db")}},
                                   environ={"SLACK_API_URL": slack.api_url, "SLACK_BOT_TOKEN": slack.bot_token,
                                            "SLACK_SIGNING_SECRET": SECRET})
            venues = world.clients(settings)
            store = await Store.open(settings.storage.path)
            desk = Desk(settings, store, venues, None)
            client = web_client(settings)
            slack_desk = SlackDesk(desk, Poster(client), settings)
            async with LoopbackServer(http_application(build_app(slack_desk, settings, client, http=True))) as app:
                url = f"{app.url}/slack/events"
                # Idle baseline: a /scan with a bad argument takes the same parse-and-ack path without
                # starting a cycle; clicks name no signal, so nothing trades either way.
                idle_scans, idle_clicks = await _acks(url, slack, SAMPLES // 2, "kraken")
                cycle = asyncio.create_task(slack_desk.run_cycle(CycleRequest(started_by="benchmark")))
                await asyncio.sleep(0.2)
                busy_scans, busy_clicks = await _acks(url, slack, SAMPLES, "")  # answered "busy"
                busy_during = desk.running_cycle is not None
                await cycle
            for venue in venues.values():
                await venue.aclose()
            await store.close()

    def row(name: str, busy: list[float], idle: list[float]) -> Figure:
        p50, p99 = percentile(busy, 0.5) * 1000, percentile(busy, 0.99) * 1000
        i50, i99 = percentile(idle, 0.5) * 1000, percentile(idle, 0.99) * 1000
        return Figure(name, f"p50 {p50:.0f} ms, p99 {p99:.0f} ms", bound=f"idle p50 {i50:.0f} ms, p99 {i99:.0f} ms",
                      ratio=f"{p50 / i50:.1f} / {p99 / i99:.1f}",
                      note=f"{len(busy)} acks during a 15,000-market scan"
                           + ("" if busy_during else " (the cycle ended early)") + "; Slack allows 3,000 ms")

    return [row("P3 /scan ack while a cycle runs", busy_scans, idle_scans),
            row("P3 button ack while a cycle runs", busy_clicks, idle_clicks),
            Figure("P3 idle mean ack", f"{statistics.mean(idle_scans + idle_clicks) * 1000:.0f} ms")]
