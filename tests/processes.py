"""Helpers for tests (and benchmarks) that start `oddsdesk run` as a real process and talk to it over HTTP."""

from __future__ import annotations

import asyncio
import os
import socket
import sqlite3
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import httpx

ROOT = Path(__file__).resolve().parents[1]

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


class DeskProcess:
    """One `oddsdesk run --http` process, its output in files (a killed process leaves no pipe to drain)."""

    def __init__(self, tmp_path: Path, name: str, env: dict[str, str], port: int) -> None:
        self.tmp_path, self.name, self.env, self.port = tmp_path, name, env, port
        self.process: asyncio.subprocess.Process | None = None
        self.url = f"http://127.0.0.1:{port}/slack/events"

    def _log(self, stream: str) -> BinaryIO:
        return (self.tmp_path / f"{self.name}.{stream}").open("wb")

    async def start(self) -> DeskProcess:
        with self._log("out") as out, self._log("err") as err:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bot", "--config", str(ROOT / "config.json"), "-v", "run", "--http",
                "--port", str(self.port), cwd=self.tmp_path, env=self.env, stdin=asyncio.subprocess.DEVNULL,
                stdout=out, stderr=err)
        try:
            await wait_until_serving(self.url, self.process)
        except AssertionError as e:
            raise AssertionError(f"{self.name}: {e}\n{self.logs()}") from None
        return self

    def logs(self, tail: int = 4000) -> str:
        parts = []
        for stream in ("out", "err"):
            path = self.tmp_path / f"{self.name}.{stream}"
            text = path.read_text(errors="replace") if path.exists() else ""
            parts.append(f"--- {self.name} std{stream} (tail) ---\n{text[-tail:]}")
        return "\n".join(parts)

    def kill(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.kill()

    async def stop(self) -> int:
        """SIGTERM (the desk shuts down cleanly) and wait; SIGKILL if it does not."""
        assert self.process is not None
        if self.process.returncode is None:
            self.process.terminate()
        try:
            return await asyncio.wait_for(self.process.wait(), timeout=15)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()
            raise AssertionError(f"{self.name} did not stop on SIGTERM within 15 s\n{self.logs()}") from None

    async def reap(self) -> None:
        """In `finally`: whatever happened, no child outlives the test."""
        if self.process is None:
            return
        self.kill()
        try:
            await asyncio.wait_for(self.process.wait(), timeout=10)
        except TimeoutError:
            pass

    async def until(self, predicate: Callable[[], Any], what: str, timeout: float) -> Any:
        """Poll `predicate` until it is truthy; fail fast (with the logs) if the desk exits, or at the deadline."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            assert self.process is not None
            if self.process.returncode is not None:
                raise AssertionError(f"{self.name} exited ({self.process.returncode}) while waiting for {what}\n"
                                     f"{self.logs()}")
            if time.monotonic() >= deadline:
                raise AssertionError(f"timed out after {timeout} s waiting for {what}\n{self.logs()}")
            await asyncio.sleep(0.02)


def rows(db: Path, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    """Read the desk's database read-only (only when no desk process is running)."""
    connection = sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True)
    try:
        connection.row_factory = sqlite3.Row
        return [dict(r) for r in connection.execute(sql, params).fetchall()]
    finally:
        connection.close()
