"""Print the benchmark table: `.venv/bin/python -m benchmarks [figure ...]` (default: every figure).

Figures: scan, p1, p2, p3, p4, p5, p6, p7, p8. Figures measured in the same run come together
(p1 with p5, p2 with p6).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from types import ModuleType

from . import analysis, approval, backtest, books, full_cycle, scan, slack_ack
from .common import Figure, machine, table

MODULES: dict[str, ModuleType] = {
    "scan": scan, "p1": full_cycle, "p2": analysis, "p3": slack_ack, "p4": approval, "p5": full_cycle,
    "p6": analysis, "p7": books, "p8": backtest,
}


async def main(names: list[str]) -> None:
    modules = list(dict.fromkeys(MODULES[name] for name in names))  # each once, in the order asked
    figures: list[Figure] = []
    for module in modules:
        figures.extend(await module.run())
    print(f"Machine: {machine()}\n")
    print(table(figures))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("figures", nargs="*", metavar="figure", help=f"any of {', '.join(MODULES)}; none means all")
    chosen = parser.parse_args().figures or list(MODULES)
    unknown = sorted(set(chosen) - set(MODULES))
    if unknown:
        parser.error(f"unknown figure {', '.join(unknown)}; choose from {', '.join(MODULES)}")
    logging.basicConfig(level=logging.ERROR)
    asyncio.run(main(chosen))
