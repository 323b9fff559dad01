"""Shared pieces of the benchmarks: a result row, machine facts, settings, and the loopback market world.

The world is the 15,000-market universe (Kalshi 10,000 + Polymarket 5,000) served by the test fakes
with a set latency per answer, as the scan, cycle and ack figures all use it.
"""

from __future__ import annotations

import json
import math
import os
import platform
from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from pipeline.config import Settings, load_settings
from pipeline.models import Venue
from pipeline.venues.base import VenueClient
from pipeline.venues.kalshi import KalshiClient
from pipeline.venues.polymarket import PolymarketClient, PolymarketCredentials
from tests.servers.base import LoopbackServer
from tests.servers.kalshi import FakeKalshi
from tests.servers.polymarket import PolymarketFake

KALSHI_MARKETS, POLYMARKET_MARKETS = 10_000, 5_000
PAGE_LATENCY = 0.150  # every fake venue answer waits this long: a distant service
KALSHI_READS_PER_SECOND = 20  # Kalshi's Basic tier read limit
KEY_ID = "bench-key"


@dataclass(frozen=True)
class Figure:
    name: str
    value: str  # what was measured, with its unit
    bound: str = ""  # the bound computed in the same run, when the figure is a ratio to one
    ratio: str = ""
    note: str = ""


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> str:
    cpus = os.cpu_count() or 0
    memory = ""
    try:
        with open("/proc/meminfo") as f:
            kib = int(f.readline().split()[1])
        memory = f", {kib / 1024 / 1024:.0f} GiB"
    except OSError:
        pass
    return (f"{platform.python_implementation()} {platform.python_version()} on {platform.machine()}, "
            f"{_cpu_model()} x {cpus} cores{memory}")


def table(figures: list[Figure]) -> str:
    rows = ["| figure | measured | bound (same run) | ratio | note |", "| --- | --- | --- | --- | --- |"]
    rows += [f"| {f.name} | {f.value} | {f.bound} | {f.ratio} | {f.note} |" for f in figures]
    return "\n".join(rows)


def write_config(directory: Path, data: Mapping[str, Any]) -> Path:
    path = directory / "config.json"
    path.write_text(json.dumps(data))
    return path


def load_config(directory: Path, data: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> Settings:
    """Settings from `data` as a config.json in `directory`; the process environment is never read."""
    return load_settings(write_config(directory, data), environ=environ or {})


def chain_floor(requests: int, latency: float, rate: float) -> float:
    """Requests that each wait for the previous answer (page cursors): each costs its latency or the rate's gap."""
    return requests * max(latency, 1 / rate)


def parallel_floor(requests: int, concurrency: int, latency: float) -> float:
    """Independent requests, at most `concurrency` in flight: whole waves of `latency`."""
    return math.ceil(requests / concurrency) * latency


def signing_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def kalshi_client(fake: FakeKalshi, key: rsa.RSAPrivateKey, settings: Settings) -> KalshiClient:
    return KalshiClient(fake.base_url, KEY_ID, key, settings.fees, settings.kalshi)


@dataclass
class MarketWorld:
    """Both venues' fakes, served on loopback."""

    key: rsa.RSAPrivateKey
    kalshi: FakeKalshi
    kalshi_server: LoopbackServer
    gamma: LoopbackServer
    clob: LoopbackServer

    def clients(self, settings: Settings) -> dict[Venue, VenueClient]:
        return {
            Venue.KALSHI: kalshi_client(self.kalshi, self.key, settings),
            Venue.POLYMARKET: PolymarketClient(gamma_url=self.gamma.url, clob_url=self.clob.url,
                                               credentials=PolymarketCredentials(), config=settings.polymarket),
        }

    def environ(self) -> dict[str, str]:
        """What points the product's own composition root (bot.wiring) at these fakes, in another process."""
        pem = self.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption()).decode()
        return {"KALSHI_API_URL": self.kalshi.base_url, "KALSHI_API_KEY_ID": KEY_ID, "KALSHI_PRIVATE_KEY": pem,
                "POLYMARKET_GAMMA_URL": self.gamma.url, "POLYMARKET_CLOB_URL": self.clob.url}

    def book_requests(self) -> dict[Venue, int]:
        """Requests for order books so far, per venue (Kalshi's batches count once)."""
        return {Venue.KALSHI: sum(1 for r in self.kalshi_server.requests
                                  if r.path.endswith("/orderbook") or r.path.endswith("/orderbooks")),
                Venue.POLYMARKET: self.clob.count("GET", "/book")}

    def fee_requests(self) -> dict[Venue, int]:
        """Requests for fee schedules so far, per venue (Kalshi series and events, Polymarket CLOB markets)."""
        return {Venue.KALSHI: sum(1 for r in self.kalshi_server.requests
                                  if "/series/" in r.path or r.path.endswith("/events/fee_changes")),
                Venue.POLYMARKET: sum(1 for r in self.clob.requests if r.path.startswith("/clob-markets/"))}


@asynccontextmanager
async def market_world(latency: float = PAGE_LATENCY) -> AsyncIterator[MarketWorld]:
    key = signing_key()
    kalshi = FakeKalshi(key.public_key(), KEY_ID)
    kalshi.generate(KALSHI_MARKETS)
    polymarket = PolymarketFake(now=datetime.now(timezone.utc))  # its markets close 10 days from now
    polymarket.generate_universe(POLYMARKET_MARKETS)
    async with AsyncExitStack() as stack:
        kalshi_server = await stack.enter_async_context(kalshi.serve(latency=latency))
        gamma = await stack.enter_async_context(LoopbackServer(polymarket.gamma_app(), latency=latency))
        clob = await stack.enter_async_context(LoopbackServer(polymarket.clob_app(), latency=latency))
        yield MarketWorld(key, kalshi, kalshi_server, gamma, clob)
