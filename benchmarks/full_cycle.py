"""P1 and P5: a full cycle over 15,000 markets against its critical path, and the cycle's peak memory.

Settings: page latency 150 ms on every venue answer, Kalshi 20 reads/s, Gamma at its configured rate,
a model call that takes 1.5 s at analysis.max_concurrency 8, and scan.max_markets_to_analyze 40 with
budgets and a deadline wide enough that all 40 are analysed.

The cycle runs in a child process (benchmarks.cycle_process) built by the product's composition
root, while this process serves the fakes: the desk has its event loop to itself, as in
production, and the child's peak RSS is the desk's alone.

Bound. The pipeline's stages wait for each other: filtering ranks the whole universe, so fees are read
after the last page, analysis after the fees, books once the estimates are in. The critical path is
the sum of each stage's floor, the venues at once within a stage:
    scan    = max over venues of pages * max(page latency, 1 / read rate)   (cursor chains)
    fees    = max(Kalshi: one wave of series/event reads, or their time past the limiter's burst;
                  Polymarket: waves of BOOK_CONCURRENCY CLOB-market reads)
    analyse = ceil(analysed / analysis.max_concurrency) * model latency
    books   = max(Kalshi: one wave of batches of 100, or their time past the burst;
                  Polymarket: waves of BOOK_CONCURRENCY book reads, or their time past the burst)
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
from pipeline.venues.polymarket import BOOK_CONCURRENCY
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
    books: dict[Venue, int]  # requests for order books the fakes served during the run
    fees: dict[Venue, int]  # requests for fee schedules


async def run_child(mode: str, world: MarketWorld, model: FakeAnthropic, directory: Path,
                    model_concurrency: int = MODEL_CONCURRENCY) -> ChildRun:
    """Run benchmarks.cycle_process in `mode` against the fakes, with a fresh database."""
    run_dir = directory / mode
    run_dir.mkdir()
    config = write_config(run_dir, cycle_config(run_dir / "desk.db", model_concurrency))
    environ = {**clean_environ(), **world.environ(), "ANTHROPIC_API_KEY": model.api_key, "ANTHROPIC_BASE_URL": model.url,
               "ODDSDESK_CONFIG": str(config)}
    books_before, fees_before = world.book_requests(), world.fee_requests()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "benchmarks.cycle_process", mode, cwd=ROOT, env=environ,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), timeout=600)
    if process.returncode != 0:
        raise RuntimeError(f"cycle_process {mode} exited {process.returncode}: {err.decode()[-2000:]}")
    data = json.loads(out)
    books = {v: n - books_before[v] for v, n in world.book_requests().items()}
    fees = {v: n - fees_before[v] for v, n in world.fee_requests().items()}
    report = CycleReport.model_validate(data["report"]) if "report" in data else None
    return ChildRun(data.get("seconds", 0.0), report, data["peak_rss_kib"], books, fees)


@dataclass(frozen=True)
class CriticalPath:
    scan: float
    fees: float
    analyse: float
    books: float

    @property
    def total(self) -> float:
        return self.scan + self.fees + self.analyse + self.books


def beyond_burst(requests: int, rate: float) -> float:
    """Time a token bucket (pipeline.venues.http.RateLimiter, burst = rate) needs to let `requests` through."""
    return max(0, requests - max(1, int(rate))) / rate


def _reads(requests: int, concurrency: int, rate: float) -> float:
    """Independent reads, at most `concurrency` at once, through a token bucket: whichever binds."""
    if requests <= 0:
        return 0.0
    return max(parallel_floor(requests, concurrency, PAGE_LATENCY), beyond_burst(requests, rate))


def critical_path(settings: Settings, books: dict[Venue, int], fees: dict[Venue, int]) -> CriticalPath:
    polymarket = settings.polymarket
    kalshi_rate = float(settings.kalshi.reads_per_second)
    clob_rate = float(polymarket.clob_requests_per_second)
    scan = max(chain_floor(math.ceil(KALSHI_MARKETS / KALSHI_PAGE), PAGE_LATENCY, kalshi_rate),
               chain_floor(math.ceil(POLYMARKET_MARKETS / polymarket.page_size), PAGE_LATENCY,
                           float(polymarket.gamma_requests_per_second)))
    analyse = parallel_floor(settings.scan.max_markets_to_analyze, settings.analysis.max_concurrency, MODEL_LATENCY)
    # Kalshi's reads of one stage all go at once (gathered), Polymarket's BOOK_CONCURRENCY at a time.
    fee_floor = max(_reads(fees[Venue.KALSHI], 10_000, kalshi_rate),
                    _reads(fees[Venue.POLYMARKET], BOOK_CONCURRENCY, clob_rate))
    book_floor = max(_reads(books[Venue.KALSHI], 10_000, kalshi_rate),
                     _reads(books[Venue.POLYMARKET], BOOK_CONCURRENCY, clob_rate))
    return CriticalPath(scan, fee_floor, analyse, book_floor)


def _stages(report: CycleReport) -> str:
    t = report.timings
    return (f"scan {t.get('scan', 0):.2f} + fees {t.get('fees', 0):.2f} + analyse {t.get('analyse', 0):.2f} + price "
            f"{t.get('price', 0):.2f}")


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
    path = critical_path(settings, fast.books, fast.fees)
    fee_reads = sum(fast.fees.values())
    analysed = fast.report.analysed
    pages = "+".join(str(fast.report.venue_stats[v.value].pages) for v in (Venue.KALSHI, Venue.POLYMARKET))
    cycle_mib, idle_mib = fast.peak_rss_kib / 1024, idle.peak_rss_kib / 1024
    scanned = max(fast.report.total_scanned, 1)
    return [
        Figure("P1 full cycle: 15,000 markets, 40 analysed", f"{fast.seconds:.2f} s ({_stages(fast.report)})",
               bound=f"{path.total:.2f} s", ratio=f"{fast.seconds / path.total:.2f}",
               note=f"bound = scan {path.scan:.2f} ({pages} pages) + fees {path.fees:.2f} ({fee_reads} reads) + "
                    f"analyse {path.analyse:.2f} ({ANALYSED}/{MODEL_CONCURRENCY} x {MODEL_LATENCY} s) + books "
                    f"{path.books:.2f} ({books} book requests); "
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
