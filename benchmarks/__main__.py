"""Print the benchmark table: `.venv/bin/python -m benchmarks`."""

from __future__ import annotations

import asyncio
import logging

from . import analysis, scan, slack_ack
from .common import machine, table


async def main() -> None:
    figures = []
    for module in (scan, analysis, slack_ack):
        figures.extend(await module.run())
    print(f"Machine: {machine()}\n")
    print(table(figures))


if __name__ == "__main__":
    logging.basicConfig(level=logging.ERROR)
    asyncio.run(main())
