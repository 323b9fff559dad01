"""P3: how fast Slack gets its ack for /scan and for button clicks while a P1-sized cycle runs.

Slack gives an app 3 s. Three processes, as in production:
- the desk: `python -m bot run --http`, the product's own entry point, with P1's settings (15,000
  markets over venues answering in 150 ms, Kalshi at 20 reads/s, 40 markets analysed by a model
  that takes 1.5 s at concurrency 8);
- this process: serves the fakes (Slack's Web API and response URLs, both venues, the model);
- the probe (benchmarks.ack_probe): Slack's side, sending signed /scan commands and Approve clicks
  one at a time and timing each ack, apart from the fakes' work.
Anything that blocks the desk's event loop (parsing a page, a full garbage collection, a slow
write) shows up as ack latency. The bound is the same acks measured on the same desk before the
cycle starts: idle, the /scan carries an argument it refuses (the same parse-and-ack path, no
cycle); during the cycle, a plain /scan is answered "a cycle is running". Clicks name no signal.
"""

from __future__ import annotations

import asyncio
import json
import re
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

from tests.processes import clean_environ, free_port, wait_until_serving
from tests.servers.anthropic import FakeAnthropic
from tests.servers.slack import DESK_CHANNEL, FakeSlack
from tests.slack_requests import FORM, post_to_app, sign, slash_command

from .common import Figure, MarketWorld, market_world, write_config
from .full_cycle import MODEL_CONCURRENCY, MODEL_LATENCY, ROOT, cycle_config

SECRET = "benchmark-signing-secret-0123456789"
TRADER = "U0TRADER1"
IDLE_PAIRS = 40
SUMMARY = re.compile(r"cycle \S+: .* from [\d,]+ markets? scanned")  # bot.blocks.cycle_summary_message


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def desk_environ(world: MarketWorld, slack: FakeSlack, model: FakeAnthropic, config: Path) -> dict[str, str]:
    return {**clean_environ(), **world.environ(), "ANTHROPIC_API_KEY": model.api_key, "ANTHROPIC_BASE_URL": model.url,
            "SLACK_API_URL": slack.api_url, "SLACK_BOT_TOKEN": slack.bot_token, "SLACK_SIGNING_SECRET": SECRET,
            "ODDSDESK_CONFIG": str(config)}


async def run_probe(url: str, slack: FakeSlack, directory: Path, phase: str, *args: str,
                    until: asyncio.Event | None = None) -> dict[str, Any]:
    """benchmarks.ack_probe in its own process; with `until`, it runs until that event is set."""
    urls = directory / f"response-urls-{phase}.json"
    urls.write_text(json.dumps([slack.new_response_url(channel=DESK_CHANNEL, user=TRADER) for _ in range(4000)]))
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "benchmarks.ack_probe", url, "--response-urls", str(urls), *args, cwd=ROOT,
        env={**clean_environ(), "ODDSDESK_BENCH_SIGNING_SECRET": SECRET},
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    assert process.stdin is not None
    if until is not None:
        await until.wait()
    process.stdin.close()  # the probe's cue to stop (a probe counting pairs ignores it)
    out, err = await asyncio.wait_for(process.communicate(), timeout=600)
    if process.returncode != 0:
        raise RuntimeError(f"ack_probe exited {process.returncode}: {err.decode()[-2000:]}")
    return json.loads(out)


async def measure(directory: Path) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """(idle acks, acks during the cycle, the cycle's summary message)."""
    config = write_config(directory, {**cycle_config(directory / "ack.db", MODEL_CONCURRENCY),
                                      "approval": {"authorized_users": [TRADER]}})
    port = free_port()
    url = f"http://127.0.0.1:{port}/slack/events"
    async with FakeSlack() as slack, market_world() as world, FakeAnthropic(latency=MODEL_LATENCY) as model:
        desk = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "run", "--http", "--port", str(port), cwd=directory,
            env=desk_environ(world, slack, model, config), stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
        try:
            await wait_until_serving(url, desk)
            await asyncio.sleep(1.0)  # let the start-up reconciliation finish
            idle = await run_probe(url, slack, directory, "idle", "--pairs", str(IDLE_PAIRS), "--scan-text", "kraken")
            body = slash_command("/scan", "", user_id=TRADER, channel_id=DESK_CHANNEL,
                                 response_url=slack.new_response_url(channel=DESK_CHANNEL, user=TRADER))
            status, text = await post_to_app(url, body, sign(SECRET, body), content_type=FORM)
            if status != 200 or "Starting a cycle" not in text:
                raise RuntimeError(f"the cycle did not start: {status} {text[:200]}")
            finished = asyncio.Event()

            async def watch() -> dict[str, Any]:
                summary = await slack.wait_for(lambda: next(
                    (m for m in slack.messages(DESK_CHANNEL) if SUMMARY.search(m.get("text", ""))), None), timeout=300)
                finished.set()
                return summary

            watcher = asyncio.create_task(watch())
            busy = await run_probe(url, slack, directory, "busy", "--until-stdin-closes", until=finished)
            summary = await watcher
        finally:
            desk.terminate()
            _, err = await asyncio.wait_for(desk.communicate(), timeout=30)
        if desk.returncode not in (0, -15):
            raise RuntimeError(f"oddsdesk run exited {desk.returncode}: {err.decode()[-2000:]}")
    return idle, busy, summary


async def run() -> list[Figure]:
    with tempfile.TemporaryDirectory() as tmp:
        idle, busy, summary = await measure(Path(tmp))
    answers = busy["answers"]
    answered = f"{answers.get('busy', 0)} answered 'a cycle is running'" + (
        f", {answers['started']} sent after it ended (started another; not counted)" if answers.get("started") else "")
    if answers.get("other"):
        raise RuntimeError(f"/scan during the cycle got {answers['other']} unexpected answer(s)")

    def row(name: str, during: list[float], before: list[float]) -> Figure:
        p50, p99 = percentile(during, 0.5) * 1000, percentile(during, 0.99) * 1000
        i50, i99 = percentile(before, 0.5) * 1000, percentile(before, 0.99) * 1000
        return Figure(name, f"p50 {p50:.0f} ms, p99 {p99:.0f} ms, max {max(during) * 1000:.0f} ms",
                      bound=f"idle p50 {i50:.0f} ms, p99 {i99:.0f} ms", ratio=f"{p50 / i50:.1f} / {p99 / i99:.1f}",
                      note=f"{len(during)} acks through a whole 15,000-market cycle with 40 analysed; "
                           "Slack allows 3,000 ms")

    return [row("P3 /scan ack while a cycle runs", busy["scans"], idle["scans"]),
            row("P3 button ack while a cycle runs", busy["clicks"], idle["clicks"]),
            Figure("P3 idle mean ack", f"{statistics.mean(idle['scans'] + idle['clicks']) * 1000:.1f} ms",
                   note=f"/scan during the cycle: {answered}; the cycle: "
                        f"{summary['text'].split(': ', 1)[-1][:80]}")]
