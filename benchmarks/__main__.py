"""Print the benchmark table: `.venv/bin/python -m benchmarks`."""

from __future__ import annotations

import asyncio
import logging

from . import analysis
from .common import machine, table


async def main() -> None:
    figures = []
    for module in (analysis,):
        figures.extend(await module.run())
    print(f"Machine: {machine()}\n")
    print(table(figures))


if __name__ == "__main__":
    logging.basicConfig(level=logging.ERROR)
    asyncio.run(main())
