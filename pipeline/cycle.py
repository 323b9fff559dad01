"""One trading cycle: scan, filter, analyse, price, size, reserve, persist. No chat, no orders.

Each step reports into the CycleReport (counts, reasons, timings, errors) and emits a
Progress event, so a front end can show where the cycle is without knowing how it works.
"""

from __future__ import annotations

import asyncio
import inspect
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from .analyzer import Analyzer
from .config import Settings
from .errors import RefusedError
from .exits import Hold, build_exit_signal, review_position
from .models import (CycleReport, Estimate, Market, Opportunity, OrderBook, Position, Rejection, TradeSignal, Venue,
                     utcnow)
from .reporter import ErrorReporter, short
from .risk import PositionManager
from .scanner import MarketScanner
from .store import Store
from .strategy import (ALREADY_HELD, OVER_ANALYSIS_LIMIT, build_signal, filter_markets, find_opportunity, rank,
                       size_position)
from .venues.base import VenueClient, secrets_to_scrub


@dataclass(frozen=True)
class Progress:
    stage: str  # scanning | filtering | analysing | pricing | sizing | done
    done: int = 0
    total: int = 0
    message: str = ""


ProgressCallback = Callable[[Progress], Awaitable[None] | None]


@dataclass
class CycleRequest:
    trigger: str = "manual"  # manual | schedule | demo
    started_by: str = ""
    venues: set[Venue] | None = None  # None: every configured venue
    limit: int | None = None  # overrides scan.max_markets_to_analyze for this cycle
    analyse: bool = True  # False: stop after filtering (the free "why no trades?" answer)
    review_exits: bool = True  # price and re-estimate open positions, and propose the exits that are due


@dataclass
class CycleResult:
    report: CycleReport
    signals: list[TradeSignal] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)


def day_start(now: datetime) -> datetime:
    return now.astimezone(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)


class Cycle:
    def __init__(self, settings: Settings, store: Store, venues: dict[Venue, VenueClient], analyzer: Analyzer | None,
                 *, clock: Callable[[], datetime] = utcnow) -> None:
        self.settings = settings
        self.store = store
        self.venues = venues
        self.analyzer = analyzer
        self.clock = clock
        self.scanner = MarketScanner(venues)
        self.risk = PositionManager(settings.trading)

    async def run(self, request: CycleRequest, progress: ProgressCallback | None = None, note: str = ""
                  ) -> CycleResult:
        now = self.clock()
        report = CycleReport(cycle_id=uuid.uuid4().hex[:12], trigger=request.trigger, started_by=request.started_by,
                             dry_run=self.settings.trading.dry_run, started_at=now, notes=[note] if note else [])
        reporter = ErrorReporter(report, lambda: secrets_to_scrub(self.settings.env.secret_values(),
                                                                  self.venues.values()))
        result = CycleResult(report=report)
        try:
            await self.store.start_cycle(report)
        except Exception as e:  # e.g. the database locked by another process past its busy timeout
            raise RefusedError("storage_unavailable", "The cycle could not start: the desk's database refused its "
                                                      f"first write ({_why(e)}). Nothing was scanned, analysed or "
                                                      "reserved; try again in a moment.") from e

        async def emit(stage: str, done: int = 0, total: int = 0, message: str = "") -> None:
            if progress is not None:
                outcome = progress(Progress(stage, done, total, message))
                if inspect.isawaitable(outcome):
                    await outcome

        try:
            await self._run(request, report, reporter, result, emit)
        except StorageFailed as e:  # said in words: what could not be saved, and what that means
            reporter.record("storage", str(e))
        except Exception as e:  # the report still gets written, with the error in it
            reporter.record("cycle", e)
        finally:
            report.finished_at = self.clock()
            try:
                await self.store.finish_cycle(report)
            except Exception as e:  # the caller still gets the report, and is told it was not kept
                reporter.record("storage", f"this cycle's report could not be saved: the desk's database refused "
                                           f"the write ({_why(e)}); it is shown here but `status` will not know it")
            await emit("done", report.signals, report.signals, f"{report.signals} signals")
        return result

    async def _run(self, request: CycleRequest, report: CycleReport, reporter: ErrorReporter,
                   result: CycleResult, emit: Callable[..., Awaitable[None]]) -> None:
        scan_cfg = self.settings.scan
        if request.limit is not None:
            scan_cfg = scan_cfg.model_copy(update={"max_markets_to_analyze": request.limit})

        await emit("scanning", message="scanning venues")
        with _timer(report, "scan"):
            markets = await self.scanner.scan_all_markets(reporter, request.venues)

        await emit("filtering", 0, len(markets))
        with _timer(report, "filter"):
            # A market the desk holds is reviewed for an exit, not analysed for another entry (the risk gate would
            # refuse one): it does not take one of the max_markets_to_analyze places.
            try:
                held = {f"{p.venue.value}:{p.market_id}" for p in await self.store.positions(
                    paper=self.settings.trading.dry_run)}
            except Exception as e:
                raise StorageFailed(f"open positions could not be read ({_why(e)}); run the cycle again") from e
            for market in markets:
                if market.key in held:
                    self._reject(result, Rejection(market_key=market.key, reason=ALREADY_HELD,
                                                   detail="the desk holds a position here; reviewed for an exit"))
            candidates = [m for m in markets if m.key not in held] if held else markets
            # Pure CPU over the whole universe (0.1-0.3 s for 15,000 markets): in a worker thread, the
            # GIL comes back to the loop every few ms, so Slack acks are not held for the whole pass.
            filtered = await asyncio.to_thread(filter_markets, candidates, scan_cfg, self.clock())
        for rejection in filtered.rejections:
            report.reject(rejection)
        result.rejections.extend(filtered.rejections)
        report.passed_filters = len(filtered.selected) + report.rejections[OVER_ANALYSIS_LIMIT]
        if request.analyse and filtered.selected:
            await self._entries(filtered.selected, report, reporter, result, emit)
        if request.review_exits and self.settings.trading.exit.review:
            with _timer(report, "exits"):
                await self._review_positions(markets, report, reporter, result)

    async def _entries(self, selected: list[Market], report: CycleReport, reporter: ErrorReporter,
                       result: CycleResult, emit: Callable[..., Awaitable[None]]) -> None:
        """Analyse, price, size and reserve the markets that passed the filters."""
        if self.analyzer is None:
            report.notes.append("no analyst configured (set ANTHROPIC_API_KEY): scanned and filtered only")
            return
        # Fees before the model is paid for: a market whose fees cannot be known is not traded, so not analysed.
        with _timer(report, "fees"):
            tradable = await self._priced(selected, report, reporter, result)
        if not tradable:
            return
        await emit("analysing", 0, len(tradable))
        with _timer(report, "analyse"):
            estimates = await self.analyzer.analyze(tradable, reporter)
        try:
            await self.store.save_estimates(report.cycle_id, estimates, {m.key: m for m in tradable},
                                            dry_run=self.settings.trading.dry_run, at=self.clock())
        except Exception as e:
            raise StorageFailed(f"this cycle's {len(estimates)} estimates could not be saved: the desk's database "
                                f"refused the write ({_why(e)}); no signal was made, run the cycle again") from e
        await emit("analysing", len(estimates), len(tradable))

        by_key = {m.key: m for m in tradable}
        await emit("pricing", 0, len(estimates))
        with _timer(report, "price"):
            opportunities = await self._opportunities(estimates, by_key, reporter, result)
        report.opportunities = len(opportunities)

        await emit("sizing", 0, len(opportunities))
        with _timer(report, "size"):
            await self._size_and_reserve(opportunities, report, result)
        try:  # the record notes which estimates became signals; a failure here costs a label, not the cycle
            await self.store.mark_followed(report.cycle_id, [s.market.key for s in result.signals], "signal")
        except Exception as e:  # noqa: BLE001 - told in the report
            reporter.record("record", f"could not note which estimates became signals ({_why(e)})")

    async def _priced(self, markets: list[Market], report: CycleReport, reporter: ErrorReporter,
                      result: CycleResult) -> list[Market]:
        """The markets with their venue's fee schedule attached, in their order; the others rejected with the
        reason (fees not readable, a schedule the desk cannot price, or orders to the venue stopped)."""
        stopped = await self.store.stopped_venues()
        by_venue: dict[Venue, list[Market]] = {}
        for market in markets:
            if market.venue.value in stopped:
                self._reject(result, Rejection(market_key=market.key, reason="venue_orders_stopped",
                                               detail=f"orders to {market.venue.value} are stopped: "
                                                      f"{stopped[market.venue.value]}"))
            else:
                by_venue.setdefault(market.venue, []).append(market)
        for venue in stopped:
            report.notes.append(f"orders to {venue} are stopped, so its markets were not analysed: {stopped[venue]}")

        async def attach(venue: Venue, group: list[Market]) -> list[Market]:
            try:
                priced, rejected = await self.venues[venue].with_fees(group, self.clock())
            except Exception as e:  # the venue's fee schedule is out of reach: none of its markets is priced
                reporter.record("fees", f"could not read {venue.value}'s fee schedules: {e or type(e).__name__}",
                                venue=venue.value)
                priced, rejected = [], [Rejection(market_key=m.key, reason="fees_unavailable", detail=str(e))
                                        for m in group]
            for rejection in rejected:
                self._reject(result, rejection)
            return priced

        groups = await asyncio.gather(*(attach(v, g) for v, g in by_venue.items()))
        priced = {m.key: m for group in groups for m in group}
        return [priced[m.key] for m in markets if m.key in priced]

    async def _opportunities(self, estimates: list[Estimate], markets: dict[str, Market], reporter: ErrorReporter,
                             result: CycleResult) -> list[tuple[Opportunity, OrderBook]]:
        """Books for every estimated market, in batches where the venue has them, then the best side of each."""
        books = await self._books([markets[e.market_key] for e in estimates])
        priced: list[tuple[Opportunity, OrderBook]] = []
        for estimate in estimates:
            market = markets[estimate.market_key]
            book = books.get((market.venue, market.id))
            if not isinstance(book, OrderBook):
                error = book or "the venue sent no book for it"
                # Named by title too: a Polymarket key is a condition hash nobody recognises.
                reporter.record("book", f"{market.key} ({short(market.title)}): could not fetch the order book: "
                                        f"{error}", venue=market.venue.value)
                self._reject(result, Rejection(market_key=market.key, reason="book_unavailable", detail=str(error)))
                continue
            found = find_opportunity(market, book, estimate, self.settings.trading.min_edge)
            if isinstance(found, Rejection):
                self._reject(result, found)
                continue
            priced.append((found, book))
        return priced

    async def _size_and_reserve(self, opportunities: list[tuple[Opportunity, OrderBook]], report: CycleReport,
                                result: CycleResult) -> None:
        trading, now = self.settings.trading, self.clock()
        today = day_start(now)
        try:
            snapshot = await self.store.risk_snapshot(trading.dry_run, trading.initial_bankroll, today)
        except Exception as e:
            raise StorageFailed(f"the bankroll could not be read to size {len(opportunities)} opportunities: the "
                                f"desk's database refused ({_why(e)}); no signal was made, run the cycle again") from e
        candidates: list[TradeSignal] = []
        for opportunity, book in opportunities:
            sized = size_position(opportunity, book, snapshot.bankroll, trading)
            if isinstance(sized, Rejection):
                self._reject(result, sized)
                continue
            candidates.append(build_signal(
                signal_id=uuid.uuid4().hex[:16], cycle_id=report.cycle_id, opportunity=opportunity, sizing=sized,
                dry_run=trading.dry_run, now=now, expiry=timedelta(minutes=self.settings.approval.expiry_minutes),
                trading=trading))
        ranked = rank(candidates)
        for signal in ranked:
            try:
                decision = await self.store.reserve_signal(
                    signal, lambda snap, s=signal: self.risk.check_entry(snap, s), trading.initial_bankroll, today)
            except Exception as e:  # each reservation is all or nothing: the ones before this one stand
                raise StorageFailed(f"signals could not be saved: the desk's database refused the write ({_why(e)}); "
                                    f"{report.signals} of {len(ranked)} saved with their capital reserved, the rest "
                                    "dropped; run the cycle again for them") from e
            if not decision.allowed:
                report.risk_denied += 1
                self._reject(result, Rejection(market_key=signal.market.key, reason=f"risk:{decision.code}",
                                               detail=decision.reason))
                continue
            report.signals += 1
            report.signal_ids.append(signal.id)
            result.signals.append(signal)

    async def _review_positions(self, markets: list[Market], report: CycleReport, reporter: ErrorReporter,
                                result: CycleResult) -> None:
        """Every open position of the desk's mode whose market the scan listed open: its fees and book read now,
        re-estimated (the analyst's cache applies), and an exit signal proposed when a rule says so
        (pipeline/exits.py). A position whose exit is already pending or on its way is left alone."""
        trading, now = self.settings.trading, self.clock()
        try:
            positions = await self.store.positions(paper=trading.dry_run)
            exiting = await self.store.exiting_positions()
            stopped = await self.store.stopped_venues()
        except Exception as e:
            raise StorageFailed(f"open positions could not be read to review them for exits ({_why(e)}); run the "
                                "cycle again") from e
        listed = {m.key: m for m in markets}
        held: list[tuple[Position, Market]] = []
        for position in positions:
            market = listed.get(f"{position.venue.value}:{position.market_id}")
            if position.id in exiting:
                report.holds["exit_pending"] += 1
            elif market is None or market.status != "open":
                # Not listed open (closed, or on a venue this cycle did not scan): settlement closes it once the venue
                # says how it resolved.
                report.holds["market_not_listed_open"] += 1
            elif position.venue.value in stopped:
                report.holds["venue_orders_stopped"] += 1
            else:
                held.append((position, market))
        if not held:
            return
        report.positions_reviewed = len(held)
        priced = await self._fees_for([m for _, m in held], reporter)
        books = await self._books([m for m in priced.values()])
        estimates: dict[str, Estimate] = {}
        if self.analyzer is not None:
            wanted = [m for m in priced.values() if isinstance(books.get((m.venue, m.id)), OrderBook)]
            found = await self.analyzer.analyze(wanted, reporter) if wanted else []
            estimates = {e.market_key: e for e in found}
            try:  # the record keeps them like any cycle's estimates
                await self.store.save_estimates(report.cycle_id, found, {m.key: m for m in wanted},
                                                dry_run=trading.dry_run, at=now)
            except Exception as e:  # noqa: BLE001 - a record row is not worth an exit
                reporter.record("record", f"the held markets' estimates could not be saved ({_why(e)})")
        expiry = timedelta(minutes=self.settings.approval.expiry_minutes)
        for position, listed_market in held:
            market = priced.get(listed_market.key)
            book = books.get((listed_market.venue, listed_market.id)) if market is not None else None
            if market is None or not isinstance(book, OrderBook):
                report.holds["book_or_fees_unavailable"] += 1
                continue
            estimate = estimates.get(market.key)
            case = review_position(position, market, book, estimate, trading, self.settings.approval.max_slippage,
                                   now)
            if isinstance(case, Hold):
                report.holds[case.code] += 1
                continue
            signal = build_exit_signal(signal_id=uuid.uuid4().hex[:16], cycle_id=report.cycle_id, position=position,
                                       market=market, case=case, estimate=estimate, dry_run=trading.dry_run,
                                       now=now, expiry=expiry)
            try:
                decision = await self.store.reserve_exit(signal)
            except Exception as e:
                raise StorageFailed(f"exit signals could not be saved ({_why(e)}); {report.exits} saved, the rest "
                                    "dropped; run the cycle again for them") from e
            if not decision.allowed:
                report.holds[decision.code] += 1
                continue
            report.signals += 1
            report.exits += 1
            report.signal_ids.append(signal.id)
            result.signals.append(signal)

    async def _fees_for(self, markets: list[Market], reporter: ErrorReporter) -> dict[str, Market]:
        """The markets with the fee schedule in force now, by key; a venue whose fees cannot be read is told in the
        report and its markets left out."""
        by_venue: dict[Venue, list[Market]] = {}
        for market in markets:
            by_venue.setdefault(market.venue, []).append(market)

        async def attach(venue: Venue, group: list[Market]) -> list[Market]:
            try:
                priced, _ = await self.venues[venue].with_fees(group, self.clock())
            except Exception as e:  # noqa: BLE001 - told in the report; those positions are reviewed next cycle
                reporter.record("fees", f"could not read {venue.value}'s fee schedules for held markets: "
                                        f"{e or type(e).__name__}", venue=venue.value)
                return []
            return priced

        groups = await asyncio.gather(*(attach(v, g) for v, g in by_venue.items()))
        return {m.key: m for group in groups for m in group}

    async def _books(self, markets: list[Market]) -> dict[tuple[Venue, str], OrderBook | Exception]:
        """Books in one batched read per venue; a failure becomes each market's entry."""
        wanted: dict[Venue, list[Market]] = {}
        for market in markets:
            wanted.setdefault(market.venue, []).append(market)

        async def fetch(venue: Venue, group: list[Market]) -> dict[str, OrderBook | Exception]:
            try:
                return await self.venues[venue].get_order_books(group)
            except Exception as e:  # noqa: BLE001 - each market carries it
                return {m.id: e for m in group}

        fetched = await asyncio.gather(*(fetch(v, g) for v, g in wanted.items()))
        return {(venue, market_id): book for venue, got in zip(wanted, fetched) for market_id, book in got.items()}

    @staticmethod
    def _reject(result: CycleResult, rejection: Rejection) -> None:
        result.report.reject(rejection)
        result.rejections.append(rejection)


class _timer:
    def __init__(self, report: CycleReport, stage: str) -> None:
        self.report, self.stage = report, stage

    def __enter__(self) -> None:
        self.start = time.perf_counter()

    def __exit__(self, *exc: object) -> None:
        self.report.timings[self.stage] = round(time.perf_counter() - self.start, 4)


class StorageFailed(Exception):
    """A step's write to the desk's database failed; the message says what was and was not kept."""


def _why(error: BaseException) -> str:
    return str(error) or type(error).__name__
