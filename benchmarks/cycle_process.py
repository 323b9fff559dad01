"""One trading cycle in a process of its own (P1, P5): prints its wall time, report and peak memory as JSON.

Started by benchmarks/full_cycle.py, which serves the fakes and sets ODDSDESK_CONFIG and the
environment so that the product's own composition root (bot.wiring.open_desk) points at them.
Modes: `cycle` as configured; `naive` also scans one venue after the other; `idle` runs nothing
and reports the memory of a process that imported the same modules (P5's baseline).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import resource
import sys
import time
from typing import Any

from bot.wiring import open_desk
# open_desk imports these lazily; imported here so that `idle` has loaded what a cycle loads.
from pipeline.claude import ClaudeAnalyzer  # noqa: F401
from pipeline.config import load_settings
from pipeline.cycle import CycleRequest
from pipeline.models import Market, Venue
from pipeline.reporter import ErrorReporter
from pipeline.scanner import MarketScanner
from pipeline.venues.kalshi import KalshiClient  # noqa: F401
from pipeline.venues.polymarket import PolymarketClient  # noqa: F401


def peak_rss_kib() -> int:
    """This process's peak resident memory since exec, in KiB.

    /proc's VmHWM, not getrusage's ru_maxrss: a child started by fork (or vfork) then exec keeps
    its parent's peak in ru_maxrss, and the parent here holds the fakes' 15,000 markets.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux; the parent's peak may show


class OneVenueAtATime(MarketScanner):
    """The naive baseline's scanner: the product's scanner, asked for each venue in turn."""

    async def scan_all_markets(self, reporter: ErrorReporter, only: set[Venue] | None = None) -> list[Market]:
        markets: list[Market] = []
        for venue in self.venues:
            if only is None or venue in only:
                markets.extend(await super().scan_all_markets(reporter, {venue}))
        return markets


async def one_cycle(naive: bool) -> dict[str, Any]:
    settings = load_settings()  # ODDSDESK_CONFIG and the environment, as `oddsdesk cycle` reads them
    async with open_desk(settings) as desk:
        if naive:
            desk.cycle.scanner = OneVenueAtATime(desk.venues)
        started = time.perf_counter()
        result = await desk.scan(CycleRequest(trigger="benchmark"))
        seconds = time.perf_counter() - started
    return {"seconds": seconds, "report": result.report.model_dump(mode="json")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=("cycle", "naive", "idle"))
    mode = parser.parse_args().mode
    logging.basicConfig(level=logging.ERROR)
    outcome = {} if mode == "idle" else asyncio.run(one_cycle(naive=mode == "naive"))
    outcome["peak_rss_kib"] = peak_rss_kib()
    json.dump(outcome, sys.stdout)


if __name__ == "__main__":
    main()
