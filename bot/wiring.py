"""Composition root: build a Desk from settings. The only place that picks concrete venues."""

from __future__ import annotations

from contextlib import asynccontextmanager
from pathlib import Path
from typing import AsyncIterator

from pipeline.analyzer import Analyzer, SampleAnalyzer
from pipeline.config import Settings
from pipeline.desk import Desk
from pipeline.errors import ConfigError
from pipeline.models import Venue
from pipeline.store import Store
from pipeline.venues.base import VenueClient
from pipeline.venues.snapshot import SnapshotVenue, sample_directory


def snapshot_venues(settings: Settings, directory: Path) -> dict[Venue, VenueClient]:
    return {Venue(name): SnapshotVenue(Venue(name), directory, settings.fees) for name in settings.scan.venues}


def sample_analyzer(settings: Settings, directory: Path) -> Analyzer:
    return SampleAnalyzer(directory / "estimates.json", settings.analysis.market_weight)


@asynccontextmanager
async def open_desk(settings: Settings, *, snapshot: Path | None = None) -> AsyncIterator[Desk]:
    """A Desk on the recorded snapshot (offline) or on the live venues, closed on exit."""
    if snapshot is None:
        raise ConfigError("config error: the Kalshi/Polymarket clients and the Claude analyser are not part of this "
                          "build yet; use --snapshot sample (or `oddsdesk demo`)")
    if not (snapshot / "manifest.json").exists():
        raise ConfigError(f"config error: --snapshot {snapshot}: not a snapshot directory (no manifest.json)")
    venues = snapshot_venues(settings, snapshot)
    analyzer = sample_analyzer(settings, snapshot)
    store = await Store.open(settings.storage.path)
    desk = Desk(settings, store, venues, analyzer)
    try:
        yield desk
    finally:
        await desk.aclose()
        await store.close()


def bundled_sample() -> Path:
    return sample_directory()
