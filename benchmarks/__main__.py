"""Print the benchmark table: `.venv/bin/python -m benchmarks`."""

from __future__ import annotations

import asyncio
import logging

from . import analysis, scan
from .common import machine, table


async def main() -> None:
    figures = []
    for module in (scan, analysis):
        figures.extend(await module.run())
    print(f"Machine: {machine()}\n")
    print(table(figures))


if __name__ == "__main__":
    logging.basicConfig(level=logging.ERROR)
    asyncio.run(main())
