"""The benchmarks' bounds and statistics (benchmarks/): a wrong floor would make every ratio lie.

And the P3 probe against a real `oddsdesk run --http`, so the benchmark cannot rot unnoticed.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import pytest

from benchmarks.common import chain_floor, load_config, parallel_floor
from benchmarks.full_cycle import MODEL_CONCURRENCY, beyond_burst, critical_path, cycle_config
from benchmarks.slack_ack import percentile
from pipeline.models import Venue

from .processes import clean_environ, free_port, wait_until_serving
from .servers.slack import DESK_CHANNEL, FakeSlack

ROOT = Path(__file__).resolve().parents[1]


def test_a_cursor_chain_costs_each_page_its_latency_or_the_rate_gap_whichever_is_longer():
    assert chain_floor(10, 0.150, 20) == pytest.approx(1.5)  # latency dominates
    assert chain_floor(10, 0.010, 20) == pytest.approx(0.5)  # the rate limit dominates


def test_independent_requests_cost_whole_waves():
    assert parallel_floor(40, 8, 1.5) == pytest.approx(7.5)
    assert parallel_floor(41, 8, 1.5) == pytest.approx(9.0)  # one more call is one more wave
    assert parallel_floor(0, 8, 1.5) == 0


def test_a_token_bucket_lets_its_burst_through_at_once():
    assert beyond_burst(40, 120) == 0
    assert beyond_burst(130, 120) == pytest.approx(10 / 120)
    assert beyond_burst(3, 0.5) == pytest.approx(4.0)  # a burst of at least one


def test_the_p1_bound_is_the_sum_of_the_stage_floors(tmp_path):
    settings = load_config(tmp_path, cycle_config(tmp_path / "unused.db", MODEL_CONCURRENCY))
    path = critical_path(settings, {Venue.POLYMARKET: 40, Venue.KALSHI: 0},
                         {Venue.POLYMARKET: 40, Venue.KALSHI: 0})
    # Kalshi 10 pages at max(150 ms, 1/20 s); Gamma 50 pages of 100 at max(150 ms, 1/25 s): Gamma's chain.
    assert path.scan == pytest.approx(7.5)
    assert path.fees == pytest.approx(0.75)  # 40 CLOB market reads in waves of 8 at 150 ms
    assert path.analyse == pytest.approx(7.5)  # 40 calls, 8 at a time, 1.5 s each
    assert path.books == pytest.approx(0.75)  # 40 books in waves of 8 at 150 ms; within the CLOB's burst
    assert path.total == pytest.approx(16.5)
    # Kalshi's reads of a stage go at once: one wave, unless the limiter's burst of 20 binds (45 reads at 20/s)
    kalshi = critical_path(settings, {Venue.POLYMARKET: 0, Venue.KALSHI: 1}, {Venue.POLYMARKET: 0, Venue.KALSHI: 45})
    assert kalshi.books == pytest.approx(0.15) and kalshi.fees == pytest.approx(25 / 20)


def test_percentiles_pick_a_measured_value():
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 0.5) == 51 and percentile(values, 0.99) == 99 and percentile(values, 1.0) == 100
    assert percentile([7.0], 0.99) == 7.0


async def test_the_ack_probe_times_real_acks_from_oddsdesk_run(tmp_path):
    port = free_port()
    secret = "probe-signing-secret-0123456789"
    async with FakeSlack() as slack:
        env = {**clean_environ(), "SLACK_API_URL": slack.api_url, "SLACK_BOT_TOKEN": slack.bot_token,
               "SLACK_SIGNING_SECRET": secret, "ODDSDESK_APPROVAL__AUTHORIZED_USERS": '["U0TRADER1"]',
               "ODDSDESK_STORAGE__PATH": str(tmp_path / "probe.db")}
        desk = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "--config", str(ROOT / "config.json"), "run", "--http", "--port", str(port),
            "--snapshot", "sample", cwd=tmp_path, env=env, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
        url = f"http://127.0.0.1:{port}/slack/events"
        urls = tmp_path / "urls.json"
        urls.write_text(json.dumps([slack.new_response_url(channel=DESK_CHANNEL, user="U0TRADER1")
                                    for _ in range(6)]))
        try:
            await wait_until_serving(url, desk)
            probe = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "benchmarks.ack_probe", url, "--response-urls", str(urls), "--pairs", "3",
                "--scan-text", "kraken", cwd=ROOT, env={**clean_environ(), "ODDSDESK_BENCH_SIGNING_SECRET": secret},
                stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
            out, err = await asyncio.wait_for(probe.communicate(), timeout=60)
            assert probe.returncode == 0, err.decode()[-2000:]
            measured = json.loads(out)
            assert len(measured["scans"]) == len(measured["clicks"]) == 3
            assert all(0 < s < 10 for s in measured["scans"] + measured["clicks"])
            assert measured["answers"] == {"other": 3}  # "kraken" is refused: no cycle started
            # The clicks reached the desk: each named no signal and was refused privately on its response URL.
            await slack.wait_for(lambda: len(slack.responses) >= 3, timeout=15)
            assert slack.posted("chat.postMessage") == []  # nothing reached the channel
        finally:
            desk.terminate()
            await asyncio.wait_for(desk.communicate(), timeout=30)


def test_every_benchmark_module_imports():
    """A renamed helper (bot.blocks.plural once) must break the suite, not the benchmark run weeks later."""
    import importlib

    from benchmarks.__main__ import MODULES

    for module in set(MODULES.values()):
        importlib.reload(module)
    for name in ("ack_probe", "cycle_process", "common"):
        importlib.import_module(f"benchmarks.{name}")
