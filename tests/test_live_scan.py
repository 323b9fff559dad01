"""Both venues at once through the fakes: the whole universe scanned, every page fetched exactly once.

Also the `oddsdesk` command itself against the fakes, as a subprocess: `scan --venue kalshi`
sees every market, and a desk whose venues are all unreachable says so and exits 1.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from pipeline.config import load_settings
from pipeline.cycle import CycleRequest
from pipeline.desk import Desk
from pipeline.models import Venue
from pipeline.store import Store
from pipeline.venues.kalshi import KalshiClient
from pipeline.venues.polymarket import PolymarketClient, PolymarketCredentials

from .processes import clean_environ
from .servers.base import LoopbackServer
from .servers.kalshi import FakeKalshi
from .servers.polymarket import PolymarketFake
from .test_kalshi import FAST, KEY_ID, kalshi_config, pem, rsa_key

ROOT = Path(__file__).resolve().parents[1]


async def test_a_cycle_over_15000_markets_fetches_every_page_once(tmp_path):
    kalshi_fake = FakeKalshi(rsa_key(0).public_key(), KEY_ID)
    kalshi_fake.generate(10_000)
    poly_fake = PolymarketFake()
    poly_fake.generate_universe(5_000)
    async with kalshi_fake.serve() as _, LoopbackServer(poly_fake.gamma_app()) as gamma, \
            LoopbackServer(poly_fake.clob_app()) as clob:
        # A fault on a Kalshi page and one on a Gamma page: retried, each page still delivered once.
        kalshi_fake.server.faults.add("500", "/trade-api/v2/markets", times=1)
        gamma.faults.add("429", "/markets/keyset", times=1)
        config = tmp_path / "config.json"
        config.write_text('{"storage": {"path": "%s"}}' % (tmp_path / "d.db"))
        settings = load_settings(config, environ={})
        venues = {
            Venue.KALSHI: KalshiClient(kalshi_fake.base_url, KEY_ID, rsa_key(0), settings.fees,
                                       kalshi_config(), retry=FAST),
            Venue.POLYMARKET: PolymarketClient(gamma_url=gamma.url, clob_url=clob.url,
                                               credentials=PolymarketCredentials(), retry=FAST,
                                               config=settings.polymarket.model_copy(update={
                                                   "gamma_requests_per_second": 1000})),
        }
        store = await Store.open(settings.storage.path)
        desk = Desk(settings, store, venues, None)
        report = (await desk.scan(CycleRequest())).report
        await desk.aclose()
        await store.close()
    assert report.scanned == {"kalshi": 10_000, "polymarket": 5_000}
    kalshi_stats, poly_stats = report.venue_stats["kalshi"], report.venue_stats["polymarket"]
    assert kalshi_stats.pages == 10 and kalshi_stats.retries == 1 and kalshi_stats.requests == 11
    assert poly_stats.pages == 50 and poly_stats.retries == 1 and poly_stats.requests == 51
    assert sorted(kalshi_fake.page_fetches.values()) == [1] * 10
    assert sorted(poly_fake.page_fetches.values()) == [1] * 50
    assert report.errors == []


async def oddsdesk(*args: str, env: dict[str, str], cwd: Path) -> tuple[int, str, str]:
    """Run the command without blocking this loop, which serves the fakes."""
    clean = clean_environ()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "--config", str(ROOT / "config.json"), *args, cwd=cwd,
        env={**clean, **env}, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        stdin=asyncio.subprocess.DEVNULL)
    out, err = await asyncio.wait_for(process.communicate(), timeout=120)
    return process.returncode or 0, out.decode(), err.decode()


async def test_oddsdesk_scan_against_the_fake_kalshi_sees_every_market(tmp_path):
    fake = FakeKalshi(rsa_key(0).public_key(), KEY_ID)
    fake.generate(2_500)
    key_file = tmp_path / "kalshi.pem"
    key_file.write_text(pem(rsa_key(0)))
    async with fake.serve():
        code, out, err = await oddsdesk(
            "scan", "--venue", "kalshi", "--show", "0",
            env={"KALSHI_API_URL": fake.base_url, "KALSHI_API_KEY_ID": KEY_ID,
                 "KALSHI_PRIVATE_KEY_PATH": str(key_file), "ODDSDESK_STORAGE__PATH": str(tmp_path / "s.db"),
                 "ODDSDESK_KALSHI__READS_PER_SECOND": "200"},
            cwd=tmp_path)
    assert code == 0, err
    assert "scanned 2,500 (Kalshi 2,500)" in out and "Kalshi: 2,500 markets read · 3 pages" in out
    assert sorted(fake.page_fetches.values()) == [1, 1, 1]
    assert fake.auth_failures == []  # every request was signed and accepted
    assert KEY_ID not in out + err and "PRIVATE KEY" not in out + err


async def test_oddsdesk_cycle_with_every_venue_down_says_so_and_exits_1(tmp_path):
    closed = "http://127.0.0.1:9"  # nothing listens on the discard port
    code, out, err = await oddsdesk(
        "cycle", "--no-input",
        env={"KALSHI_API_URL": f"{closed}/trade-api/v2", "POLYMARKET_GAMMA_URL": closed,
             "POLYMARKET_CLOB_URL": closed, "ODDSDESK_STORAGE__PATH": str(tmp_path / "c.db")},
        cwd=tmp_path)
    assert code == 1, err
    assert "Cycle failed — Kalshi, Polymarket unreadable" in out and "[FAILED]" in out
    assert "Kalshi failed: " in out and "connection failed" in out
