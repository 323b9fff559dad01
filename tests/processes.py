"""Helpers for tests (and benchmarks) that start `oddsdesk run` as a real process and talk to it over HTTP."""

from __future__ import annotations

import asyncio
import os
import socket

import httpx

# The desk reads these from the environment; a child gets only what the test gives it.
OUR_ENV_PREFIXES = ("ODDSDESK_", "SLACK_", "ANTHROPIC_", "KALSHI_", "POLYMARKET_")


def clean_environ() -> dict[str, str]:
    """This process's environment without any of the desk's own variables: a child sees only what it is given."""
    return {k: v for k, v in os.environ.items() if not k.startswith(OUR_ENV_PREFIXES)}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def wait_until_serving(url: str, process: asyncio.subprocess.Process) -> None:
    async with httpx.AsyncClient() as client:
        for _ in range(300):
            if process.returncode is not None:
                raise AssertionError(f"oddsdesk run exited with {process.returncode}")
            try:
                await client.post(url, content=b"")
                return
            except httpx.TransportError:
                await asyncio.sleep(0.05)
    raise AssertionError("oddsdesk run did not start serving")
