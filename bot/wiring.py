"""Composition root: build a Desk from settings. The only place that picks concrete venues."""

from __future__ import annotations

import gc
from contextlib import asynccontextmanager
from pathlib import Path
from typing import AsyncIterator

from pipeline.analyzer import Analyzer, SampleAnalyzer
from pipeline.config import Settings
from pipeline.desk import Desk
from pipeline.errors import ConfigError
from pipeline.models import Venue
from pipeline.reporter import SecretScrubber
from pipeline.store import Store
from pipeline.venues.base import VenueClient
from pipeline.venues.snapshot import SnapshotVenue


def snapshot_venues(settings: Settings, directory: Path) -> dict[Venue, VenueClient]:
    return {Venue(name): SnapshotVenue(Venue(name), directory, settings.fees) for name in settings.scan.venues}


def live_venues(settings: Settings, store: Store | None = None) -> dict[Venue, VenueClient]:
    """The configured venues' API clients. Reads need no keys; orders do, and say which are missing.

    A desk that trades passes its store: Polymarket's order journal is kept in it. Without one (the read-only
    `check --venues`) signed orders would only be remembered in memory.
    """
    # Imported here: the SDKs take a second or more to import, which the demo and `check` need not pay.
    from pipeline.venues.kalshi import KalshiClient
    from pipeline.venues.polymarket import PolymarketClient
    from pipeline.venues.polymarket_journal import StoreJournal

    def polymarket() -> VenueClient:
        return PolymarketClient.from_settings(settings, journal=StoreJournal(store) if store is not None else None)

    builders = {"kalshi": lambda: KalshiClient.from_settings(settings), "polymarket": polymarket}
    return {Venue(name): builders[name]() for name in settings.scan.venues}


async def import_old_journal(settings: Settings, store: Store) -> None:
    """Take a Polymarket journal file left by an older oddsdesk into the database (once: it is renamed)."""
    from pipeline.venues.polymarket_journal import import_journal_file, journal_file

    path = journal_file(settings.storage.path)
    if path is None or not path.exists():
        return
    try:
        await import_journal_file(path, store)
    except OSError as e:  # without its records a lost reply would be taken for an order never sent: do not start
        raise ConfigError(f"the Polymarket order journal {path} could not be read ({e}); it holds the orders an "
                          "older oddsdesk signed: make it readable and start again") from e


@asynccontextmanager
async def open_desk(settings: Settings, *, snapshot: Path | None = None,
                    log_scrubber: SecretScrubber | None = None) -> AsyncIterator[Desk]:
    """A Desk on a recorded snapshot (offline, sample estimates) or on the live venues, closed on exit.

    `log_scrubber`, the log handler's filter, learns the credentials the desk's venue clients derive."""
    if snapshot is not None and not (snapshot / "manifest.json").exists():
        raise ConfigError(f"config error: --snapshot {snapshot}: not a snapshot directory (no manifest.json)")
    if snapshot is not None and not settings.trading.dry_run:
        raise ConfigError("config error: trading.dry_run: a recorded snapshot is never traded live; set it to true "
                          "(or ODDSDESK_TRADING__DRY_RUN=true) to use --snapshot")
    store = await Store.open(settings.storage.path)
    analyzer: Analyzer | None
    try:
        await import_old_journal(settings, store)  # before any venue can look an order up
        if snapshot is not None:
            venues = snapshot_venues(settings, snapshot)
            analyzer = SampleAnalyzer(snapshot / "estimates.json", settings.analysis.market_weight)
        else:
            from pipeline.claude import ClaudeAnalyzer  # a second of import time: only when live

            venues = live_venues(settings, store)
            analyzer = ClaudeAnalyzer.from_settings(settings, store)  # None without ANTHROPIC_API_KEY
    except BaseException:
        await store.close()
        raise
    desk = Desk(settings, store, venues, analyzer)
    if log_scrubber is not None:
        log_scrubber.consult(desk.secret_values)
    # The SDK imports leave ~200,000 long-lived objects that every full collection would walk again,
    # on the event loop, mid-cycle; frozen, the GC pauses of a 15,000-market cycle shrank about 3x.
    gc.collect()
    gc.freeze()
    try:
        yield desk
    finally:
        await desk.aclose()
        if analyzer is not None:
            await analyzer.aclose()
        await store.close()
