"""P2 and P6: model tokens of an unchanged second cycle over the first, dollars per analysed market.

The bundled sample snapshot goes through the real cycle and the real ClaudeAnalyzer (official SDK)
against the fake Messages API on loopback. The fake counts tokens as characters / 4, so absolute
token figures approximate Claude's tokenizer; the ratio P2 does not depend on that.
"""

from __future__ import annotations

import tempfile
from decimal import Decimal
from pathlib import Path

import anthropic

from pipeline.claude import ClaudeAnalyzer
from pipeline.cycle import CycleRequest
from pipeline.desk import Desk
from pipeline.models import Venue
from pipeline.store import Store
from pipeline.venues.snapshot import SnapshotVenue, sample_directory
from tests.servers.anthropic import FakeAnthropic

from .common import Figure, load_config


async def run() -> list[Figure]:
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_config(Path(tmp), {"storage": {"path": str(Path(tmp) / "bench.db")}})
        async with FakeAnthropic() as fake:
            store = await Store.open(settings.storage.path)
            client = anthropic.AsyncAnthropic(base_url=fake.url, api_key=fake.api_key, max_retries=2)
            venues = {Venue(v): SnapshotVenue(Venue(v), sample_directory(), settings.fees) for v in settings.scan.venues}
            desk = Desk(settings, store, venues, ClaudeAnalyzer(settings, store, client))
            first = (await desk.scan(CycleRequest(trigger="benchmark"))).report
            second = (await desk.scan(CycleRequest(trigger="benchmark"))).report
            tokens_first = await store.llm_tokens(first.cycle_id)
            tokens_second = await store.llm_tokens(second.cycle_id)
            await client.close()
            await store.close()

    def total(tokens: dict[str, int]) -> int:
        return sum(tokens[k] for k in ("input_tokens", "output_tokens", "cache_write_tokens", "cache_read_tokens"))

    analysed = max(first.analysed, 1)
    per_market = (first.llm_cost_usd / analysed).quantize(Decimal("0.00001"))
    ratio = total(tokens_second) / max(total(tokens_first), 1)
    return [
        Figure("P2 tokens, unchanged 2nd cycle / 1st", f"{total(tokens_second)} / {total(tokens_first)} tokens",
               ratio=f"{ratio:.3f}", note=f"2nd cycle: {second.cached} cached, {second.analysed} analysed"),
        Figure("P6 dollars per analysed market", f"${per_market} ({first.analysed} markets, "
                                                 f"{settings.analysis.model} list price)",
               note=f"{total(tokens_first) // analysed} tokens/market; cache reads "
                    f"{tokens_first['cache_read_tokens']}, writes {tokens_first['cache_write_tokens']}"),
    ]
