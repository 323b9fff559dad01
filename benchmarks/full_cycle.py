"""P1 and P5: a full cycle over 15,000 markets against its critical path, and the cycle's peak memory.

Settings: page latency 150 ms on every venue answer, Kalshi 20 reads/s, Gamma at its configured rate,
a model call that takes 1.5 s at analysis.max_concurrency 8, and scan.max_markets_to_analyze 40 with
budgets and a deadline wide enough that all 40 are analysed.

The cycle runs in a child process (benchmarks.cycle_process) built by the product's composition
root, while this process serves the fakes: the desk has its event loop to itself, as in
production, and the child's peak RSS is the desk's alone.

Bound. The pipeline's stages wait for each other: filtering ranks the whole universe, so analysis
starts after the last page; books are fetched once the estimates are in. The critical path is the
sum of each stage's floor:
    scan    = max over venues of pages * max(page latency, 1 / read rate)   (cursor chains, venues at once)
    analyse = ceil(analysed / analysis.max_concurrency) * model latency
    books   = max(ceil(books / BOOK_FETCH_CONCURRENCY) * page latency,     (waves of concurrent fetches)
                  over venues, (books beyond the limiter's burst) / book rate)
Filtering, pricing, sizing and the store's writes count as free.
The naive baseline scans the venues one after the other and makes one model call at a time; its
ratio is to the same bound.
"""

from __future__ import annotations

import asyncio
import json
import math
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.config import Settings
from pipeline.cycle import BOOK_FETCH_CONCURRENCY
from pipeline.models import CycleReport, Venue
from pipeline.venues.kalshi import PAGE_LIMIT as KALSHI_PAGE
from tests.processes import clean_environ
from tests.servers.anthropic import FakeAnthropic

from .common import (KALSHI_MARKETS, KALSHI_READS_PER_SECOND, PAGE_LATENCY, POLYMARKET_MARKETS, Figure,
                     MarketWorld, chain_floor, load_config, market_world, parallel_floor, write_config)

MODEL_LATENCY = 1.5
MODEL_CONCURRENCY = 8
ANALYSED = 40
ROOT = Path(__file__).resolve().parents[1]


def cycle_config(storage: Path, model_concurrency: int) -> dict[str, Any]:
    return {
        "kalshi": {"reads_per_second": KALSHI_READS_PER_SECOND},
        "scan": {"max_markets_to_analyze": ANALYSED},
        # Budgets and deadline wide enough that every selected market is analysed, even one call at a time.
        "analysis": {"max_concurrency": model_concurrency, "budget_usd_per_cycle": 100, "budget_usd_per_day": 100,
                     "deadline_seconds": 600},
        "storage": {"path": str(storage)},
    }


@dataclass(frozen=True)
class ChildRun:
    seconds: float
    report: CycleReport | None
    peak_rss_kib: int
    books: dict[Venue, int]  # order books the fakes served during the run


async def run_child(mode: str, world: MarketWorld, model: FakeAnthropic, directory: Path,
                    model_concurrency: int = MODEL_CONCURRENCY) -> ChildRun:
    """Run benchmarks.cycle_process in `mode` against the fakes, with a fresh database."""
    run_dir = directory / mode
    run_dir.mkdir()
    config = write_config(run_dir, cycle_config(run_dir / "desk.db", model_concurrency))
    environ = {**clean_environ(), **world.environ(), "ANTHROPIC_API_KEY": model.api_key, "ANTHROPIC_BASE_URL": model.url,
               "ODDSDESK_CONFIG": str(config)}
    books_before = world.book_requests()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "benchmarks.cycle_process", mode, cwd=ROOT, env=environ,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), timeout=600)
    if process.returncode != 0:
        raise RuntimeError(f"cycle_process {mode} exited {process.returncode}: {err.decode()[-2000:]}")
    data = json.loads(out)
    books = {v: n - books_before[v] for v, n in world.book_requests().items()}
    report = CycleReport.model_validate(data["report"]) if "report" in data else None
    return ChildRun(data.get("seconds", 0.0), report, data["peak_rss_kib"], books)


@dataclass(frozen=True)
class CriticalPath:
    scan: float
    analyse: float
    books: float

    @property
    def total(self) -> float:
        return self.scan + self.analyse + self.books


def beyond_burst(requests: int, rate: float) -> float:
    """Time a token bucket (pipeline.venues.http.RateLimiter, burst = rate) needs to let `requests` through."""
    return max(0, requests - max(1, int(rate))) / rate


def critical_path(settings: Settings, books: dict[Venue, int]) -> CriticalPath:
    polymarket = settings.polymarket
    kalshi_rate = float(settings.kalshi.reads_per_second)
    book_rates = {Venue.KALSHI: kalshi_rate, Venue.POLYMARKET: float(polymarket.clob_requests_per_second)}
    scan = max(chain_floor(math.ceil(KALSHI_MARKETS / KALSHI_PAGE), PAGE_LATENCY, kalshi_rate),
               chain_floor(math.ceil(POLYMARKET_MARKETS / polymarket.page_size), PAGE_LATENCY,
                           float(polymarket.gamma_requests_per_second)))
    analyse = parallel_floor(settings.scan.max_markets_to_analyze, settings.analysis.max_concurrency, MODEL_LATENCY)
    fetches = max(parallel_floor(sum(books.values()), BOOK_FETCH_CONCURRENCY, PAGE_LATENCY),
                  *(beyond_burst(n, book_rates[venue]) for venue, n in books.items()))
    return CriticalPath(scan, analyse, fetches)


def _stages(report: CycleReport) -> str:
    t = report.timings
    return f"scan {t.get('scan', 0):.2f} + analyse {t.get('analyse', 0):.2f} + price {t.get('price', 0):.2f}"


async def run() -> list[Figure]:
    with tempfile.TemporaryDirectory() as tmp:
        # The settings the fast child loads, read here for the bound.
        settings = load_config(Path(tmp), cycle_config(Path(tmp) / "unused.db", MODEL_CONCURRENCY))
        async with market_world() as world, FakeAnthropic(latency=MODEL_LATENCY) as model:
            fast = await run_child("cycle", world, model, Path(tmp))
            naive = await run_child("naive", world, model, Path(tmp), model_concurrency=1)
            idle = await run_child("idle", world, model, Path(tmp))
    assert fast.report is not None and naive.report is not None
    books = sum(fast.books.values())
    path = critical_path(settings, fast.books)
    analysed = fast.report.analysed
    pages = "+".join(str(fast.report.venue_stats[v.value].pages) for v in (Venue.KALSHI, Venue.POLYMARKET))
    cycle_mib, idle_mib = fast.peak_rss_kib / 1024, idle.peak_rss_kib / 1024
    scanned = max(fast.report.total_scanned, 1)
    return [
        Figure("P1 full cycle: 15,000 markets, 40 analysed", f"{fast.seconds:.2f} s ({_stages(fast.report)})",
               bound=f"{path.total:.2f} s", ratio=f"{fast.seconds / path.total:.2f}",
               note=f"bound = scan {path.scan:.2f} ({pages} pages) + analyse {path.analyse:.2f} "
                    f"({ANALYSED}/{MODEL_CONCURRENCY} x {MODEL_LATENCY} s) + books {path.books:.2f} ({books} books); "
                    f"{analysed} analysed, {fast.report.signals} signals"
                    + ("" if analysed == ANALYSED else f" (expected {ANALYSED})")),
        Figure("P1 naive baseline: venues in turn, one model call at a time",
               f"{naive.seconds:.2f} s ({_stages(naive.report)})", bound=f"{path.total:.2f} s",
               ratio=f"{naive.seconds / path.total:.2f}", note=f"{naive.report.analysed} analysed"),
        Figure("P5 peak RSS of the P1 cycle", f"{cycle_mib:.0f} MiB (+{cycle_mib - idle_mib:.0f} MiB, "
                                              f"{(cycle_mib - idle_mib) * 1024 / scanned:.1f} KiB per scanned market)",
               bound=f"idle {idle_mib:.0f} MiB", ratio=f"{cycle_mib / idle_mib:.2f}",
               note="VmHWM of the child process; idle = a child that imported the same modules and ran nothing"),
    ]
