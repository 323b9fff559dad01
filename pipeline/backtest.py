"""Build a track record fast: ask the analyst about markets that have already resolved, as of a chosen lead time
before each closed, at the price the market showed then, and score the answers at once.

Only markets that closed after the model's knowledge cutoff (analysis.knowledge_cutoff) are asked: a market
that resolved before it may be in what the model learnt, and its answer would be memory, not forecasting.
The analyst is asked exactly as a cycle asks it (same prompt, same blend, same LLM budget), dated as of that
time. Each answer is kept in the record like a cycle's (cycle id "backtest-…"), so a run that stops — the
budget, a restart — resumes where it was: a market already asked at this lead with this model and prompt is
not asked again.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal

from .analyzer import Analyzer
from .models import CycleReport, Market, Resolution, Venue
from .record import Record
from .record import build as build_record
from .reporter import ErrorReporter, scrub
from .store import Store
from .venues.base import VenueClient

BACKTEST_PREFIX = "backtest-"
PRICE_CONCURRENCY = 8  # price-history reads in flight; the venue client's rate limiter paces them
QUESTIONS_PER_CALL = 40  # markets per analyst call: its per-cycle budget and deadline bound each call

Progress = Callable[[int, int, str], Awaitable[None] | None]


@dataclass(frozen=True)
class BacktestRequest:
    lead_hours: float = 24.0
    limit: int = 50  # markets per venue
    since: datetime | None = None  # closed at or after (never before the knowledge cutoff)
    until: datetime | None = None  # closed before (default: now)
    venues: frozenset[Venue] | None = None


@dataclass
class BacktestReport:
    run_id: str
    model: str
    cutoff: datetime
    lead_hours: float
    window: tuple[datetime, datetime]
    found: int = 0  # settled markets in the window
    asked: int = 0
    resumed: int = 0  # asked by an earlier run at this lead, model and prompt
    no_price: int = 0  # the venue's history had no price at the lead time
    not_answered: int = 0  # budget, deadline or an invalid answer (see notes)
    scored: int = 0
    cost_usd: Decimal = Decimal(0)
    before_cutoff_asked: bool = False  # the request reached back before the cutoff: it was cut there
    notes: list[str] = field(default_factory=list)
    record: Record | None = None  # every backtest estimate at this lead, model and prompt, scored

    def cutoff_sentence(self) -> str:
        return (f"Markets that resolved before {self.cutoff:%Y-%m-%d} ({self.model}'s knowledge cutoff, "
                "analysis.knowledge_cutoff) are left out: the model may know how they ended, so its answer would "
                "be memory, not a forecast.")


def cutoff_of(model: str, cutoffs: dict[str, date]) -> datetime | None:
    """The model's knowledge cutoff as the start of that day in UTC; None when it is not configured."""
    day = cutoffs.get(model)
    return datetime.combine(day, time.min, tzinfo=timezone.utc) if day is not None else None


def as_of_market(market: Market, price: Decimal) -> Market:
    """The market as the analyst would have seen it then: open, at that price (bid = ask = the recorded price)."""
    return market.model_copy(update={"status": "open", "yes_bid": price, "yes_ask": price, "last_price": price})


class Backtester:
    def __init__(self, store: Store, venues: dict[Venue, VenueClient], analyzer: Analyzer, *, model: str,
                 prompt_version: str, cutoff: datetime, clock: Callable[[], datetime],
                 secrets: Callable[[], Iterable[str]] = tuple) -> None:
        self.store, self.venues, self.analyzer, self.secrets = store, venues, analyzer, secrets
        self.model, self.prompt_version, self.cutoff, self.clock = model, prompt_version, cutoff, clock

    async def run(self, request: BacktestRequest, progress: Progress | None = None) -> BacktestReport:
        now = self.clock()
        lead = timedelta(hours=request.lead_hours)
        # Asked as of close − lead, which must itself be after the cutoff: else the model knows more than the price.
        start = max(request.since or self.cutoff, self.cutoff + lead)
        end = min(request.until or now, now)
        report = BacktestReport(run_id=BACKTEST_PREFIX + uuid.uuid4().hex[:12], model=self.model,
                                cutoff=self.cutoff, lead_hours=request.lead_hours, window=(start, end),
                                before_cutoff_asked=request.since is not None and request.since < self.cutoff)
        done = await self.store.backtested(self.model, self.prompt_version, request.lead_hours)
        todo: list[tuple[Market, Resolution, datetime]] = []
        for venue, client in sorted(self.venues.items(), key=lambda kv: kv[0].value):
            if request.venues is not None and venue not in request.venues:
                continue
            try:
                settled = await client.settled_markets(start, end, request.limit)
            except Exception as e:  # noqa: BLE001 - one venue's trouble; the other is still backtested
                report.notes.append(scrub(f"could not list {venue.value}'s settled markets: {e or type(e).__name__}",
                                          list(self.secrets())))
                continue
            report.found += len(settled)
            for market, resolution in settled:
                if (market.venue.value, market.id) in done:
                    report.resumed += 1
                    continue
                todo.append((market, resolution, market.close_time - lead))
        await _tell(progress, 0, len(todo), "reading prices")
        gate = asyncio.Semaphore(PRICE_CONCURRENCY)  # the venue client's rate limiter paces them further
        prices = await asyncio.gather(*(self._price(market, as_of, gate, report) for market, _, as_of in todo))
        priced = [(as_of_market(m, p), r, a) for (m, r, a), p in zip(todo, prices) if p is not None]
        report.no_price = len(todo) - len(priced)
        for start in range(0, len(priced), QUESTIONS_PER_CALL):
            await self._ask(priced[start:start + QUESTIONS_PER_CALL], request.lead_hours, report)
            await _tell(progress, report.no_price + min(start + QUESTIONS_PER_CALL, len(priced)), len(todo),
                        priced[min(start + QUESTIONS_PER_CALL, len(priced)) - 1][0].title)
        report.record = build_record(await self.store.backtest_forecasts(self.model, self.prompt_version,
                                                                          request.lead_hours))
        return report

    async def _price(self, market: Market, as_of: datetime, gate: asyncio.Semaphore,
                     report: BacktestReport) -> Decimal | None:
        """The market's price at the lead time from the venue's history; None (said once per failure) without."""
        async with gate:
            try:
                return await self.venues[market.venue].price_at(market, as_of)
            except Exception as e:  # noqa: BLE001 - this market is left out, said once per kind of failure
                note = f"{market.venue.value} price history unavailable: {type(e).__name__}"
                if note not in report.notes:
                    report.notes.append(note)
                return None

    async def _ask(self, batch: list[tuple[Market, Resolution, datetime]], lead_hours: float,
                   report: BacktestReport) -> None:
        """Markets as they stood at their lead times, asked in one analyst call (its budget and deadline apply to
        it, as to a cycle), each dated as of its own moment; the answers kept and scored at once."""
        cycle = CycleReport(cycle_id=report.run_id, trigger="backtest", started_at=self.clock())
        reporter = ErrorReporter(cycle, self.secrets)  # the analyst's errors are scrubbed as in a cycle
        dated = hasattr(self.analyzer, "as_of")
        if dated:  # the prompt carries "today": each market is asked as of its own moment
            self.analyzer.as_of = {m.key: as_of for m, _, as_of in batch}  # type: ignore[attr-defined]
        try:
            estimates = await self.analyzer.analyze([m for m, _, _ in batch], reporter)
        finally:
            if dated:
                self.analyzer.as_of = {}  # type: ignore[attr-defined]
        for error in cycle.errors[:3]:
            if error.message not in report.notes:
                report.notes.append(error.message)
        by_key = {m.key: (m, r, as_of) for m, r, as_of in batch}
        answered = {e.market_key for e in estimates}
        report.not_answered += len(batch) - len(answered)
        for estimate in estimates:
            market, resolution, as_of = by_key[estimate.market_key]
            kept = estimate.model_copy(update={"prompt_version": estimate.prompt_version or self.prompt_version,
                                               "model": estimate.model or self.model})
            await self.store.save_estimates(report.run_id, [kept], {market.key: market}, at=as_of,
                                            backtest_lead_hours=lead_hours)
            report.asked += 1
            report.cost_usd += kept.cost_usd
            report.scored += await self.store.score_market(market.venue.value, market.id, resolution.yes_payout,
                                                           self.clock(), cycle_id=report.run_id)


async def _tell(progress: Progress | None, done: int, total: int, what: str) -> None:
    if progress is None:
        return
    result = progress(done, total, what)
    if result is not None:
        await result
