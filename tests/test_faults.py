"""Fault injection across whole cycles: every fault comes from a fake server on loopback or a real SQLite lock.

One small world per test: a fake Kalshi (signed, paged), a fake Polymarket (Gamma + CLOB V2), a fake
Anthropic Messages API answered per market title, and, where a test says so, a fake Slack. The Desk is
built as the scenario tests build it (real KalshiClient, PolymarketClient, ClaudeAnalyzer over HTTP),
with tight timeouts and retry backoffs, so the whole file stays well under a minute.

What every scenario checks: the cycle completes or fails with a report a person can read; every page
is delivered once; no order reaches a venue twice; an order whose answer was lost is resolved by
looking it up by client order id, never by posting again; capital is released or becomes a position.
"""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import anthropic
import pytest

from bot import blocks
from bot.present import cycles, outcomes
from bot.runtime import SlackDesk
from bot.slack_client import Poster, parse_ref, web_client
from pipeline.claude import ClaudeAnalyzer
from pipeline.config import Settings, load_settings
from pipeline.cycle import CycleRequest, Progress
from pipeline.desk import Actor, Desk
from pipeline.errors import RefusedError
from pipeline.models import OrderStatus, SignalStatus, Venue
from pipeline.store import Store
from pipeline.venues.http import RetryPolicy
from pipeline.venues.kalshi import KalshiClient
from pipeline.venues.polymarket import PolymarketClient, PolymarketCredentials
from pipeline.venues.polymarket_journal import StoreJournal

from .fakes import NOW
from .servers.anthropic import FakeAnthropic, Reply, last_user_text
from .servers.base import LoopbackServer
from .servers.kalshi import PREFIX, FakeKalshi
from .servers.polymarket import PolymarketFake
from .servers.slack import DESK_CHANNEL, FakeSlack
from .test_desk import Clock
from .test_kalshi import FED, KEY_ID, add_fed, rsa_key

D = Decimal
ADMIN = Actor(id="UADMIN1")
POLY_KEY = "0x" + "4c" * 32
KALSHI_MARKETS = f"{PREFIX}/markets"
KALSHI_ORDERS = f"{PREFIX}/portfolio/orders"  # reads (look-ups)
KALSHI_ORDERS_V2 = f"{PREFIX}/portfolio/events/orders"  # the V2 writes
GAMMA_MARKETS = "/markets/keyset"
HANG = 1.0  # a "timeout" fault holds the request this long before the fake acts on it
TIMEOUT = "0.5"  # ... and the venue clients give up after this (the loop parsing 1,000 markets must not trip it)
FAST = RetryPolicy(attempts=4, base_delay=0.001, max_delay=0.01)
LATER = timedelta(minutes=5)  # past reconciliation's grace and "absent" windows
KALSHI_FED_TITLE = "Will the Fed hold rates steady in December 2026?"
POLY_FED_TITLE = "Will the Fed cut rates in December?"
GENERATED = 1_500  # Kalshi pages hold 1,000 markets: two pages, where a test needs them
POLY_PAGES = 3  # five Polymarket markets, two a page


# -- the world ---------------------------------------------------------------------------------

def answer(probability: float) -> dict[str, Any]:
    return {"probability": probability, "confidence": 0.6, "reasoning": "Base rates and recent data.",
            "key_factors": ["base rate", "recent data"]}


def titled(request: dict[str, Any]) -> str:
    text = last_user_text(request)
    return next((line.split("Title:", 1)[1].strip() for line in text.splitlines() if "Title:" in line), "")


def default_view(request: dict[str, Any]) -> Reply | dict[str, Any]:
    """The model's view: the two Fed markets are worth 0.70, every other market about what it trades at."""
    title = titled(request)
    return answer(0.70 if title in (KALSHI_FED_TITLE, POLY_FED_TITLE) else 0.50)


@dataclass
class World:
    tmp_path: Path
    settings: Settings
    clock: Clock
    kalshi: FakeKalshi
    kalshi_server: LoopbackServer
    poly: PolymarketFake
    gamma: LoopbackServer
    clob: LoopbackServer
    claude: FakeAnthropic
    store: Store
    desk: Desk
    closers: list[Callable[[], Any]] = field(default_factory=list)

    def write_lock(self) -> WriteLock:
        """Another connection to the desk's database file, closed with the world."""
        lock = WriteLock(self.settings.storage.path)
        self.closers.append(lock.close)
        return lock

    async def reserved(self) -> Decimal:
        return (await self.desk.status()).risk.reserved


def world_settings(tmp_path: Path, *, dry_run: bool, **sections: dict[str, Any]) -> dict[str, Any]:
    base: dict[str, Any] = {
        "trading": {"dry_run": dry_run},
        "approval": {"authorized_users": ["UADMIN1"]},
        "scan": {"max_markets_to_analyze": 4, "min_volume": 25_000},  # the generated Kalshi markets trade less
        "analysis": {"max_concurrency": 2, "max_retries": 2, "timeout_seconds": 2, "deadline_seconds": 20},
        "kalshi": {"reads_per_second": 1000, "writes_per_second": 1000, "timeout_seconds": TIMEOUT},
        "polymarket": {"gamma_requests_per_second": 1000, "clob_requests_per_second": 1000,
                       "timeout_seconds": TIMEOUT, "page_size": 2},
        "slack": {"channel": "#trading-desk"},
        "storage": {"path": str(tmp_path / "desk.db")},
    }
    for section, values in sections.items():
        base[section] = {**base.get(section, {}), **values}
    return base


@asynccontextmanager
async def world(tmp_path: Path, *, dry_run: bool = False, hang: float = HANG, env: dict[str, str] | None = None,
                generated: int = 0, **sections: dict[str, Any]) -> AsyncIterator[World]:
    """Both venues, the analyst and the desk, wired as bot/wiring.py wires them (each client from its
    settings section; a fast retry policy instead of the default backoff); yields before any cycle ran."""
    kalshi = FakeKalshi(rsa_key(0).public_key(), KEY_ID, now=NOW)
    add_fed(kalshi)  # the one Kalshi market with an edge at 0.70
    kalshi.add_market("KXFLAT-26DEC-T1", yes=[("0.48", "500")], no=[("0.48", "500")], volume="40000",
                      title="Will the flat thing happen?", close_time=NOW + timedelta(days=10))
    kalshi.generate(generated)  # thinly traded: listed and filtered, never analysed
    poly = PolymarketFake(now=NOW)
    poly.add_market(POLY_FED_TITLE, bids=[("0.40", "200"), ("0.38", "500")],
                    asks=[("0.42", "100"), ("0.44", "100"), ("0.50", "500")])
    poly.add_market("Will it snow in Paris on Christmas?", bids=[("0.48", "500")], asks=[("0.52", "500")],
                    volume="30000")
    for n in range(3):
        poly.add_market(f"Will obscure thing {n} happen?", bids=[("0.30", "10")], asks=[("0.34", "10")], volume="10")

    kalshi_server = kalshi.serve(hang_seconds=hang)
    gamma = LoopbackServer(poly.gamma_app(), hang_seconds=hang)
    clob = LoopbackServer(poly.clob_app(), hang_seconds=hang)
    data = LoopbackServer(poly.data_app(), hang_seconds=hang)  # positions, for reconciliation
    claude = FakeAnthropic(responder=default_view)
    async with kalshi_server, gamma, clob, data, claude:
        config = tmp_path / "config.json"
        config.write_text(json.dumps(world_settings(tmp_path, dry_run=dry_run, **sections)))
        settings = load_settings(config, environ={
            "ANTHROPIC_API_KEY": claude.api_key, "ANTHROPIC_BASE_URL": claude.url, **(env or {})})
        clock = Clock()
        store = await Store.open(settings.storage.path)
        kalshi_client = KalshiClient(kalshi.base_url, KEY_ID, rsa_key(0), settings.fees, settings.kalshi, retry=FAST)
        poly_client = PolymarketClient(gamma_url=gamma.url, clob_url=clob.url, data_url=data.url,
                                       credentials=PolymarketCredentials(private_key=POLY_KEY), fees=settings.fees,
                                       config=settings.polymarket, time_in_force=settings.trading.time_in_force,
                                       retry=FAST, journal=StoreJournal(store))
        # As ClaudeAnalyzer.from_settings builds it, on the desk's clock.
        client = anthropic.AsyncAnthropic(api_key=claude.api_key, base_url=claude.url, max_retries=0,
                                          timeout=float(settings.analysis.timeout_seconds))
        analyzer = ClaudeAnalyzer(settings, store, client, clock=clock)
        desk = Desk(settings, store, {Venue.KALSHI: kalshi_client, Venue.POLYMARKET: poly_client}, analyzer,
                    clock=clock)
        w = World(tmp_path, settings, clock, kalshi, kalshi_server, poly, gamma, clob, claude, store, desk)
        try:
            yield w
        finally:
            for close in w.closers:
                close()
            await desk.aclose()
            await analyzer.aclose()
            await store.close()


def fault_on_gamma_page(w: World, index: int, kind: str, times: int = 1) -> None:
    """Fail the next `times` requests for Gamma page `index` (pages come in order, so: once the one before
    it has been served)."""
    if index == 0:
        w.gamma.faults.add(kind, GAMMA_MARKETS, "GET", times=times)  # type: ignore[arg-type]
        return

    def after(served: int) -> None:
        if served == index - 1:
            w.gamma.faults.add(kind, GAMMA_MARKETS, "GET", times=times)  # type: ignore[arg-type]

    w.poly.on_gamma_page = after


def summary_text(report: Any) -> str:
    """What the channel is shown of a cycle: the summary and every error line, as plain text."""
    summary = blocks.render(cycles.summary(report))
    lines = [blocks.mrkdwn(cycles.error_line(n, e)) for n, e in enumerate(report.errors, 1)]
    return json.dumps(summary["blocks"], ensure_ascii=False) + summary["text"] + "\n".join(lines)


# -- faults during the scan ---------------------------------------------------------------------

SCAN_FAULTS = ["429", "500", "502", "503", "timeout", "malformed"]


@pytest.mark.parametrize("kind", SCAN_FAULTS)
async def test_one_fault_on_a_page_of_each_venue_is_retried_and_the_cycle_still_makes_its_signals(tmp_path, kind):
    async with world(tmp_path, generated=GENERATED) as w:
        w.kalshi.fault_on_page(1, kind)  # type: ignore[arg-type]  # Kalshi's 429 carries no Retry-After
        fault_on_gamma_page(w, 1, kind)
        result = await w.desk.scan(CycleRequest())
        pending = await w.store.signals(SignalStatus.PENDING)
    report = result.report
    assert report.errors == [] and report.finished_at is not None
    assert report.scanned == {"kalshi": GENERATED + 2, "polymarket": 5}
    kalshi, poly = report.venue_stats["kalshi"], report.venue_stats["polymarket"]
    assert (kalshi.pages, kalshi.requests, kalshi.retries, kalshi.error) == (2, 3, 1, "")
    assert (poly.pages, poly.requests, poly.retries, poly.error) == (POLY_PAGES, POLY_PAGES + 1, 1, "")
    # Every page was delivered exactly once, whatever happened to the attempts before it.
    assert sorted(w.kalshi.page_fetches.values()) == [1, 1]
    assert dict(w.poly.page_fetches) == {0: 1, 1: 1, 2: 1}
    assert [k for k, _, _ in w.kalshi_server.faults.fired] == [kind] == [k for k, _, _ in w.gamma.faults.fired]
    # The cycle went all the way: one signal per Fed market, nothing doubled.
    assert sorted((s.market.venue.value, s.market.title) for s in result.signals) == [
        ("kalshi", KALSHI_FED_TITLE), ("polymarket", POLY_FED_TITLE)]
    assert sorted(s.id for s in pending) == sorted(s.id for s in result.signals)
    shown = summary_text(report)
    assert "Kalshi: 1,502 markets read · 2 pages · 3 requests · 1 retry" in shown
    assert "Polymarket: 5 markets read · 3 pages · 4 requests · 1 retry" in shown
    assert "Cycle clean — 2 signals" in shown


@pytest.mark.parametrize("down, kind, reason", [
    ("kalshi", "429", "kalshi: HTTP 429: too many requests"),  # rate-limited throughout, never a Retry-After
    ("kalshi", "timeout", "timed out"),
    ("polymarket", "503", "HTTP 503"),
    ("polymarket", "malformed", "unreadable body"),
])
async def test_a_venue_that_stays_down_fails_alone_with_a_clear_error_and_the_other_trades_on(
        tmp_path, down, kind, reason):
    async with world(tmp_path) as w:
        if down == "kalshi":
            w.kalshi_server.faults.add(kind, KALSHI_MARKETS, "GET", times=100)  # type: ignore[arg-type]
        else:
            w.gamma.faults.add(kind, GAMMA_MARKETS, "GET", times=100)  # type: ignore[arg-type]
        result = await w.desk.scan(CycleRequest())
        stored = await w.store.cycle_report(result.report.cycle_id)
    report = result.report
    up = "polymarket" if down == "kalshi" else "kalshi"
    assert report.finished_at is not None and stored is not None and stored.errors == report.errors
    assert report.scanned[down] == 0 and report.scanned[up] == {"kalshi": 2, "polymarket": 5}[up]
    [error] = report.errors
    assert (error.stage, error.venue) == ("scan", down)
    assert reason in error.message and f"gave up after {FAST.attempts} tries" in error.message
    assert report.venue_stats[down].error == error.message
    assert report.venue_stats[down].requests == FAST.attempts and report.venue_stats[down].retries == FAST.attempts - 1
    [signal] = result.signals  # the venue that answered still trades
    assert signal.market.venue.value == up
    line = blocks.mrkdwn(cycles.error_line(1, error))
    assert {"kalshi": "Kalshi", "polymarket": "Polymarket"}[down] in line and reason in line
    name = {"kalshi": "Kalshi", "polymarket": "Polymarket"}[down]
    assert f"{name} failed:* {error.message}"[:60] in summary_text(report)
    assert f"Cycle partial — {name} failed" in summary_text(report)


async def test_order_book_faults_while_pricing_are_retried_or_drop_only_that_market_with_a_reason(tmp_path):
    async with world(tmp_path) as w:
        # The cycle reads Kalshi's books in batches (GET /markets/orderbooks?tickers=...)
        w.kalshi_server.faults.add("503", f"{KALSHI_MARKETS}/orderbooks", "GET")  # once: retried
        w.kalshi_server.faults.add("timeout", f"{KALSHI_MARKETS}/orderbooks", "GET")  # then once more
        w.clob.faults.add("429", "/book", "GET", times=100)  # Polymarket's books stay rate-limited
        result = await w.desk.scan(CycleRequest())
        pending = await w.store.signals(SignalStatus.PENDING)
    report = result.report
    [signal] = result.signals
    assert signal.market.venue is Venue.KALSHI and [s.id for s in pending] == [signal.id]
    assert w.kalshi_server.count("GET", f"{KALSHI_MARKETS}/orderbooks") == 3
    assert report.analysed == 4 and report.opportunities == 1
    assert report.rejections["book_unavailable"] == 2  # both Polymarket markets analysed, neither priced
    books = sorted((e for e in report.errors if e.stage == "book"), key=lambda e: e.message)
    titles = {m.raw["question"]: m.condition_id for m in w.poly.markets.values()}
    assert [(e.venue, e.message.split(" (")[0]) for e in books] == sorted(
        ("polymarket", f"polymarket:{titles[t]}") for t in (POLY_FED_TITLE, "Will it snow in Paris on Christmas?"))
    for error in books:  # which market, by a name a person knows, what failed, and that it was retried
        assert any(t in error.message for t in titles) and "could not fetch the order book" in error.message
        assert "HTTP 429" in error.message and f"gave up after {FAST.attempts} tries" in error.message


# -- Anthropic overloaded ---------------------------------------------------------------------------

async def test_an_overloaded_model_api_is_retried_or_the_market_is_skipped_without_double_counting_cost(tmp_path):
    kalshi_fed = f"kalshi:{FED}"

    def overloaded_for_the_kalshi_fed(request: dict[str, Any]) -> Reply | dict[str, Any]:
        if titled(request) == KALSHI_FED_TITLE:  # this market's every call meets an overloaded API
            return Reply.api_error(529, "Overloaded", "overloaded_error")
        return default_view(request)

    # One call at a time, so the calls come in a known order: the most traded market (Polymarket's Fed) first.
    async with world(tmp_path, analysis={"max_concurrency": 1}) as w:
        w.claude.faults.add("529", "/v1/messages", retry_after=0.01)  # one transient 529: retried
        w.claude.responder = overloaded_for_the_kalshi_fed
        first = await w.desk.scan(CycleRequest())
        spent_first = await w.store.llm_spend_since(NOW - timedelta(days=3650))
        first_ledger = await w.store.llm_tokens(first.report.cycle_id)
        first_estimates = await w.store.estimates_for_cycle(first.report.cycle_id)
        posts_first = w.claude.server.count("POST", "/v1/messages")
        calls_first = w.claude.message_calls

        w.claude.responder = default_view  # the API recovers
        second = await w.desk.scan(CycleRequest())
        second_ledger = await w.store.llm_tokens(second.report.cycle_id)
        spent = await w.store.llm_spend_since(NOW - timedelta(days=3650))

    report = first.report
    # The failed market: skipped with a reason, no estimate, no signal; the others went on.
    assert report.analysed == 3 and report.rejections["analysis_failed"] == 1
    [error] = report.errors
    assert error.stage == "analyse" and kalshi_fed in error.message
    assert KALSHI_FED_TITLE in error.message and "OverloadedError: Overloaded after 2 retries" in error.message
    assert "not analysed this cycle" in error.message
    assert kalshi_fed not in {e.market_key for e in first_estimates} and len(first_estimates) == 3
    assert [s.market.venue for s in first.signals] == [Venue.POLYMARKET]
    # Three answered calls, the transient 529 before the first of them, and the failing market's call plus
    # the desk's 2 retries.
    assert calls_first == 3 and posts_first == 3 + 1 + 3
    assert [k for k, _, _ in w.claude.faults.fired] == ["529"]
    # Every attempt is ledgered once, but only answered calls cost money (a 529 at $0); the report says what the
    # ledger says.
    assert first_ledger["calls"] == 3 + 1 + 3 and spent_first == report.llm_cost_usd > 0
    # The next cycle asks only about the market that failed (the rest come from the cache) and trades it.
    assert second.report.analysed == 1 and second.report.cached == 3 and second_ledger["calls"] == 1
    assert [s.market.key for s in second.signals] == [kalshi_fed]
    assert w.claude.message_calls == 4
    assert spent == report.llm_cost_usd + second.report.llm_cost_usd  # nothing counted twice, nothing lost
    assert second.report.llm_cost_usd < report.llm_cost_usd


# -- Slack rate limits on posting ----------------------------------------------------------------------

@asynccontextmanager
async def slack_world(tmp_path: Path, *, slack_hang: float = 30.0,
                      **kw: Any) -> AsyncIterator[tuple[World, FakeSlack, SlackDesk, asyncio.Event]]:
    """The world behind a SlackDesk posting into a fake Slack. The analyst waits for the returned gate, so a
    test can queue Slack faults once the progress message is up and before anything else is posted."""
    slack = FakeSlack(hang_seconds=slack_hang)
    async with slack, world(tmp_path, env={"SLACK_API_URL": slack.api_url, "SLACK_BOT_TOKEN": slack.bot_token},
                            **kw) as w:
        gate = asyncio.Event()
        view = w.claude.responder

        async def gated(request: dict[str, Any]) -> Any:
            await gate.wait()
            return view(request)

        w.claude.responder = gated
        client = web_client(w.settings)  # retries 429 honouring Retry-After, as the app's client does
        yield w, slack, SlackDesk(w.desk, Poster(client, per_second=50), w.settings), gate


def postings(slack: FakeSlack) -> int:
    """chat.postMessage requests that reached Slack, refused or not."""
    return slack.server.count("POST", "/api/chat.postMessage")


def buttons_of(message: dict[str, Any] | None) -> list[str]:
    return [e.get("value", "") for b in (message or {}).get("blocks", []) if b["type"] == "actions"
            for e in b["elements"]]


async def test_a_slack_429_on_a_signal_post_is_waited_out_and_every_message_is_posted_once(tmp_path):
    async with slack_world(tmp_path) as (w, slack, slack_desk, gate):
        cycle = asyncio.create_task(slack_desk.run_cycle(CycleRequest(started_by="U0TRADER1")))
        await slack.wait_for_calls("chat.postMessage", 1)  # the progress message
        slack.rate_limit("chat.postMessage", times=1, retry_after=1)  # the first signal's post is refused once
        started = time.monotonic()
        gate.set()
        result = await asyncio.wait_for(cycle, 20)
        waited = time.monotonic() - started
        refs = {s.id: parse_ref(await w.desk.message_ref(s.id)) for s in result.signals}
    assert result.report.errors == [] and len(result.signals) == 2
    assert waited >= 1.0  # Retry-After: 1 was honoured before posting again
    posted = slack.posted("chat.postMessage")
    assert postings(slack) == len(posted) + 1 and [k for k, _, _ in slack.faults.fired] == ["429"]
    for signal in result.signals:  # each signal posted exactly once, and the desk points at that message
        carrying = [p for p in posted if signal.id in buttons_of(p)]
        assert len(carrying) == 1
        channel, ts = refs[signal.id]
        assert buttons_of(slack.message(channel, ts)) == [signal.id, signal.id]  # Approve, Reject
    summaries = [p for p in posted if "2 signals from 7 markets" in p.get("text", "")]
    assert len(summaries) == 1 and len(posted) == 1 + 2 + 1  # progress, two signals, the summary


async def test_a_slack_429_on_the_summary_is_waited_out_and_the_error_report_posted_once(tmp_path):
    async with slack_world(tmp_path) as (w, slack, slack_desk, gate):
        w.gamma.faults.add("503", GAMMA_MARKETS, "GET", times=100)  # Polymarket down: an error to report
        w.kalshi.books[FED].no = {D("0.50"): D(500)}  # and the Kalshi Fed ask moved to 0.50: no edge, no signal
        cycle = asyncio.create_task(slack_desk.run_cycle(CycleRequest(started_by="U0TRADER1")))
        await slack.wait_for_calls("chat.postMessage", 1)
        slack.rate_limit("chat.postMessage", times=1, retry_after=1)  # the summary's post is refused once
        started = time.monotonic()
        gate.set()
        result = await asyncio.wait_for(cycle, 20)
        waited = time.monotonic() - started
    assert result.signals == [] and [e.stage for e in result.report.errors] == ["scan"]
    assert waited >= 1.0
    posted = slack.posted("chat.postMessage")
    assert postings(slack) == len(posted) + 1
    summary = [p for p in posted if "Cycle partial — Polymarket failed; 0 signals from 2 markets" in p.get("text", "")]
    error_reports = [p for p in posted if re.search(r"1 error in cycle \w+ — Polymarket failed — details in thread$",
                                                    p.get("text", ""))]
    assert len(summary) == 1 and len(error_reports) == 1
    [thread] = [m for m in slack.messages(DESK_CHANNEL) if m.get("thread_ts") and m["ts"] != m["thread_ts"]]
    assert "Polymarket" in json.dumps(thread, ensure_ascii=False) and "HTTP 503" in json.dumps(thread)
    assert len(posted) == 1 + 1 + 1 + 1  # progress, summary, error report, its one detail in the thread


# -- faults while placing the order ---------------------------------------------------------------

@dataclass(frozen=True)
class Expect:
    acted: bool  # did the venue take the order?
    code: str  # the Decision the approver sees at once
    signal: SignalStatus  # ... and the signal then


ORDER_FAULTS: dict[str, Expect] = {
    "500": Expect(False, "unknown", SignalStatus.UNKNOWN),  # a 5xx may hide an order taken: looked up
    "502": Expect(False, "unknown", SignalStatus.UNKNOWN),
    "503": Expect(False, "unknown", SignalStatus.UNKNOWN),
    "429": Expect(False, "failed", SignalStatus.FAILED),  # a clear refusal: nothing to look up
    "timeout": Expect(True, "unknown", SignalStatus.UNKNOWN),  # the venue acts after the client gave up
    "malformed": Expect(False, "unknown", SignalStatus.UNKNOWN),  # a garbled 200 from something in between
    "drop_after": Expect(True, "executed", SignalStatus.FILLED),  # taken, answer lost: found by look-up
    "malformed_after": Expect(True, "executed", SignalStatus.FILLED),  # taken, answer unreadable: found
}


def order_posts(w: World, venue: Venue) -> int:
    return (w.kalshi_server.count("POST", KALSHI_ORDERS_V2) if venue is Venue.KALSHI
            else w.clob.count("POST", "/order"))


def venue_orders(w: World, venue: Venue) -> list[str]:
    """Client order ids (Kalshi) or order hashes (Polymarket) of every order the venue holds."""
    if venue is Venue.KALSHI:
        return [o["client_order_id"] for o in w.kalshi.orders.values()]
    return list(w.poly.orders)


async def wait_until(predicate: Callable[[], Any], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "not in time"
        await asyncio.sleep(0.02)


@pytest.mark.parametrize("kind", list(ORDER_FAULTS))
@pytest.mark.parametrize("venue", [Venue.KALSHI, Venue.POLYMARKET], ids=["kalshi", "polymarket"])
async def test_a_fault_while_placing_an_approved_order_leaves_one_order_or_none_and_reconciles(tmp_path, venue,
                                                                                                  kind):
    expect = ORDER_FAULTS[kind]
    async with world(tmp_path, dry_run=False) as w:
        [signal] = (await w.desk.scan(CycleRequest(venues={venue}))).signals
        assert await w.reserved() == signal.reserved > 0
        server, path = (w.kalshi_server, KALSHI_ORDERS_V2) if venue is Venue.KALSHI else (w.clob, "/order")
        server.faults.add(kind, path, "POST")  # type: ignore[arg-type]
        decision = await w.desk.approve(signal.id, ADMIN)
        now_signal = await w.store.get_signal(signal.id)
        now_order = await w.store.order_for_signal(signal.id)
        reserved_now = await w.reserved()
        if expect.acted:
            await wait_until(lambda: venue_orders(w, venue))  # a timed-out order lands late
        w.clock.now += LATER
        reconciled = await w.desk.reconcile()
        again = await w.desk.reconcile()
        twice = await w.desk.approve(signal.id, ADMIN)
        final_signal = await w.store.get_signal(signal.id)
        final_order = await w.store.order_for_signal(signal.id)
        positions = await w.store.positions(paper=False)
        status = await w.desk.status()
        posts, held = order_posts(w, venue), venue_orders(w, venue)

    # Exactly one order reached the venue or none; the single POST was never repeated.
    assert posts == 1 and len(held) == (1 if expect.acted else 0)
    assert [k for k, _, _ in server.faults.fired] == [kind]
    # What the approver was told at once, and what the desk recorded.
    assert (decision.code, now_signal.status) == (expect.code, expect.signal)
    shown = json.dumps(blocks.render(outcomes.signal_outcome(signal, decision, ADMIN.label, signal.created_at)),
                       ensure_ascii=False)
    if expect.code == "unknown":
        assert decision.message.startswith(f"Order {signal.client_order_id} outcome unknown (")
        assert "never re-sent" in decision.message and "Outcome unknown — checking with" in shown
        assert now_order.status is OrderStatus.UNKNOWN and reserved_now == signal.reserved  # held meanwhile
    elif expect.code == "failed":
        assert not decision.ok and decision.message.startswith("Order failed: Not filled: ")
        assert venue.value in decision.message.lower() and "429" in decision.message
        assert now_order.status is OrderStatus.REJECTED and reserved_now == 0
    else:
        assert decision.ok and now_order.status is OrderStatus.FILLED and reserved_now == 0
    # Reconciliation settled what was open, by look-up only; a second pass finds nothing to do.
    assert reconciled.checked == (1 if expect.code == "unknown" else 0) and reconciled.unresolved == []
    assert again.checked == 0 and not again.worth_telling
    assert not twice.ok and twice.code == "already_decided"
    assert status.risk.reserved == 0  # no capital is left held, whichever way it went
    if expect.acted:
        assert (final_signal.status, final_order.status) == (SignalStatus.FILLED, OrderStatus.FILLED)
        [position] = positions
        assert position.contracts == final_order.filled == signal.contracts
        assert status.risk.exposure == position.cost + position.fees > 0
    else:
        assert (final_signal.status, final_order.status) == (SignalStatus.FAILED, OrderStatus.REJECTED)
        assert positions == [] and status.risk.exposure == 0
        if expect.code == "unknown":
            assert "never placed" in final_order.reason


async def test_approve_while_the_book_is_unreachable_trades_nothing_and_a_later_approve_places_one_order(tmp_path):
    async with world(tmp_path, dry_run=False) as w:
        [signal] = (await w.desk.scan(CycleRequest(venues={Venue.KALSHI}))).signals
        book = f"{KALSHI_MARKETS}/{FED}/orderbook"
        w.kalshi_server.faults.add("503", book, "GET", times=FAST.attempts)  # the re-check's every try
        refused = await w.desk.approve(signal.id, ADMIN)
        pending = await w.store.get_signal(signal.id)
        reserved = await w.reserved()
        approved = await w.desk.approve(signal.id, ADMIN)  # the venue is back
        posts = w.kalshi_server.count("POST", KALSHI_ORDERS_V2)
    assert (refused.ok, refused.code) == (False, "book_unavailable")
    assert "Nothing was traded; try again" in refused.message and "gave up after 4 tries" in refused.message
    assert pending.status is SignalStatus.PENDING and reserved == signal.reserved  # still decidable
    assert approved.ok and approved.code == "executed" and posts == 1


# -- SQLite busy ---------------------------------------------------------------------------------------

class WriteLock:
    """Another process's write transaction on the desk's database file: BEGIN IMMEDIATE, held until released.

    Taken only while the desk is between transactions (it never waits: timeout 0), so holding it cannot
    stall this test's event loop."""

    def __init__(self, path: str) -> None:
        self.conn = sqlite3.connect(path, timeout=0, isolation_level=None)
        self.held_for = 0.0
        self._since = 0.0

    def take(self, seconds: float) -> None:
        self.conn.execute("BEGIN IMMEDIATE")
        self._since = time.monotonic()
        asyncio.get_running_loop().call_later(seconds, self.release)

    def release(self) -> None:
        if self.conn.in_transaction:
            self.conn.execute("ROLLBACK")
            self.held_for = time.monotonic() - self._since

    def close(self) -> None:
        self.release()
        self.conn.close()


async def shorten_busy_timeout(store: Store, milliseconds: int = 600) -> None:
    """Store.open sets `PRAGMA busy_timeout=5000`: a write waits up to 5 s for another's lock. One test below
    waits that out for real; the others shorten the wait on the store's own connection so the file stays
    fast. What happens past the timeout does not depend on its length."""
    await store._db.execute(f"PRAGMA busy_timeout={milliseconds}")


def lock_at(stage: str, lock: WriteLock, seconds: float) -> Callable[[Progress], None]:
    """A progress callback that takes the write lock as the cycle reaches `stage` (between two transactions)."""
    def on(progress: Progress) -> None:
        if progress.stage == stage and not lock.conn.in_transaction and not lock.held_for:
            lock.take(seconds)
    return on


async def test_a_brief_write_lock_while_reserving_signals_is_waited_out(tmp_path):
    async with world(tmp_path) as w:
        lock = w.write_lock()
        result = await w.desk.scan(CycleRequest(), progress=lock_at("sizing", lock, 0.4))
        pending = await w.store.signals(SignalStatus.PENDING)
        reserved = await w.reserved()
    assert lock.held_for >= 0.4 and result.report.timings["size"] >= 0.35  # it waited, then went on
    assert result.report.errors == [] and len(result.signals) == 2
    assert sorted(s.id for s in pending) == sorted(s.id for s in result.signals)
    assert reserved == sum(s.reserved for s in result.signals)


async def test_a_write_lock_past_the_busy_timeout_while_reserving_fails_the_step_in_words_and_saves_no_half(tmp_path):
    async with world(tmp_path) as w:  # the product's own 5 s busy timeout, waited out for real
        lock = w.write_lock()
        started = time.monotonic()
        result = await w.desk.scan(CycleRequest(), progress=lock_at("sizing", lock, 5.5))
        waited = time.monotonic() - started
        signals = await w.store.signals()
        reserved = await w.reserved()
        stored = await w.store.cycle_report(result.report.cycle_id)
        again = await w.desk.scan(CycleRequest())  # once the lock is gone, the same signals come back
    report = result.report
    assert waited >= 5.0 and report.finished_at is not None  # it waited the busy timeout, then finished
    assert result.signals == [] and report.signals == 0 and report.opportunities == 2
    assert signals == [] and reserved == 0  # no signal without its reservation, no reservation without signal
    [error] = report.errors
    assert error.stage == "storage"
    for words in ("desk's database", "database is locked", "0 of 2 saved", "run the cycle again"):
        assert words in error.message
    assert stored is not None and stored.errors == report.errors  # the report itself was kept
    assert len(again.signals) == 2 and again.report.cached == 4 and again.report.errors == []


async def test_a_write_lock_when_a_cycle_starts_is_a_refusal_in_words_not_a_raw_sqlite_error(tmp_path):
    async with world(tmp_path) as w:
        await shorten_busy_timeout(w.store)
        lock = w.write_lock()
        lock.take(2.0)
        with pytest.raises(RefusedError) as refused:
            await w.desk.scan(CycleRequest())
        running = w.desk.running_cycle
        listed = w.kalshi_server.count("GET", KALSHI_MARKETS) + w.gamma.count("GET", GAMMA_MARKETS)
        lock.release()
        last = await w.store.last_cycle_report()
        after = await w.desk.scan(CycleRequest())
    assert refused.value.code == "storage_unavailable"
    for words in ("could not start", "desk's database", "database is locked", "Nothing was scanned", "try again"):
        assert words in refused.value.reason
    assert running is None and listed == 0 and last is None  # nothing ran, nothing half-recorded
    assert after.report.errors == [] and len(after.signals) == 2  # and the desk is fine once the lock is gone


async def test_a_brief_write_lock_while_recording_an_order_outcome_is_waited_out(tmp_path):
    async with world(tmp_path, dry_run=False, hang=0.05) as w:
        lock = w.write_lock()
        [signal] = (await w.desk.scan(CycleRequest(venues={Venue.KALSHI}))).signals
        # The venue takes the order; as its answer comes back, another process holds the database a moment.
        w.kalshi_server.faults.add("hold_after", KALSHI_ORDERS_V2, "POST", notify=lambda _: lock.take(0.4))
        started = time.monotonic()
        decision = await w.desk.approve(signal.id, ADMIN)
        took = time.monotonic() - started
        stored = await w.store.get_signal(signal.id)
        order = await w.store.order_for_signal(signal.id)
        reserved = await w.reserved()
    assert lock.held_for >= 0.4 and took >= 0.4  # it waited for the lock, then recorded the fill
    assert decision.ok and decision.code == "executed" and decision.message.startswith("Bought 113.76 YES")
    assert stored.status is SignalStatus.FILLED and order.status is OrderStatus.FILLED and reserved == 0
    assert w.kalshi_server.count("POST", KALSHI_ORDERS_V2) == 1


async def test_a_write_lock_past_the_busy_timeout_while_recording_an_outcome_says_so_and_reconciles(tmp_path):
    async with world(tmp_path, dry_run=False, hang=0.05) as w:
        await shorten_busy_timeout(w.store)
        lock = w.write_lock()
        [signal] = (await w.desk.scan(CycleRequest(venues={Venue.KALSHI}))).signals
        w.kalshi_server.faults.add("hold_after", KALSHI_ORDERS_V2, "POST", notify=lambda _: lock.take(1.5))
        decision = await w.desk.approve(signal.id, ADMIN)  # the fill comes back; the database will not take it
        meanwhile = (await w.store.get_signal(signal.id), await w.store.order_for_signal(signal.id),
                     await w.store.positions(paper=False))
        await wait_until(lambda: not lock.conn.in_transaction)
        reserved_then = await w.reserved()  # risk_snapshot takes the write lock itself: read it once free
        w.clock.now += LATER
        reconciled = await w.desk.reconcile()
        final = (await w.store.get_signal(signal.id), await w.store.order_for_signal(signal.id),
                 await w.store.positions(paper=False), await w.desk.status())
    # The approver is told what the venue did, that the desk could not record it, and that it is never re-sent.
    assert decision.ok and decision.code == "unknown"
    for words in ("Bought 113.76 YES", "could not record", "database is locked", "reconciliation", "never re-sent"):
        assert words in decision.message
    shown = json.dumps(blocks.render(outcomes.signal_outcome(signal, decision, ADMIN.label, signal.created_at)),
                       ensure_ascii=False)
    assert "Outcome unknown — checking with" in shown
    # Nothing half-written: the order row and its signal still read `submitting`, with the capital held.
    signal_then, order_then, positions_then = meanwhile
    assert (signal_then.status, order_then.status, order_then.filled) == (
        SignalStatus.SUBMITTING, OrderStatus.SUBMITTING, 0)
    assert positions_then == [] and reserved_then == signal.reserved
    # Reconciliation reads the fill back by client order id; the order was posted once.
    assert [r.after for r in reconciled.resolved] == [OrderStatus.FILLED]
    signal_now, order_now, positions_now, status = final
    assert (signal_now.status, order_now.status, order_now.filled) == (
        SignalStatus.FILLED, OrderStatus.FILLED, signal.contracts)
    [position] = positions_now
    assert position.contracts == signal.contracts and status.risk.reserved == 0
    assert w.kalshi_server.count("POST", KALSHI_ORDERS_V2) == 1 and len(w.kalshi.orders) == 1


async def test_a_lost_order_answer_while_the_database_is_locked_is_still_found_and_recorded_once(tmp_path):
    async with world(tmp_path, dry_run=False) as w:
        await shorten_busy_timeout(w.store, 1000)
        lock = w.write_lock()
        [signal] = (await w.desk.scan(CycleRequest(venues={Venue.KALSHI}))).signals
        # Kalshi fills the order but its answer never arrives (the client gives up after 0.5 s), and from the
        # moment it filled another process holds the database for 2 s: marking the order `unknown` fails
        # (1 s busy timeout), the look-up by client order id finds the fill, and recording it waits the lock out.
        w.kalshi_server.faults.add("hold_after", KALSHI_ORDERS_V2, "POST", notify=lambda _: lock.take(2.0))
        decision = await w.desk.approve(signal.id, ADMIN)
        stored = await w.store.get_signal(signal.id)
        order = await w.store.order_for_signal(signal.id)
        reserved = await w.reserved()
        moves = [e.action for e in await w.store.audit_log(signal.id) if e.outcome == "ok"]
    assert lock.held_for >= 2.0
    assert moves == ["signal:approved", "signal:submitting", "signal:filled"]  # `unknown` never got written
    assert decision.ok and decision.code == "executed" and decision.message.startswith("Bought 113.76 YES")
    assert (stored.status, order.status, order.filled) == (SignalStatus.FILLED, OrderStatus.FILLED, signal.contracts)
    assert reserved == 0 and w.kalshi_server.count("POST", KALSHI_ORDERS_V2) == 1
    assert w.kalshi_server.count("GET", KALSHI_ORDERS) >= 1  # found by look-up, not re-sent


async def test_a_write_lock_past_the_busy_timeout_when_approving_is_refused_in_words_and_trades_nothing(tmp_path):
    async with world(tmp_path, dry_run=False) as w:
        [signal] = (await w.desk.scan(CycleRequest(venues={Venue.KALSHI}))).signals
        await shorten_busy_timeout(w.store)
        lock = w.write_lock()
        lock.take(2.0)
        decision = await w.desk.approve(signal.id, ADMIN)
        lock.release()
        stored = await w.store.get_signal(signal.id)
        reserved = await w.reserved()
    assert not decision.ok and "database" in decision.message and "nothing was traded" in decision.message.lower()
    assert stored.status is SignalStatus.PENDING and reserved == signal.reserved  # still decidable later
    assert w.kalshi_server.count("POST", KALSHI_ORDERS_V2) == 0


async def test_a_write_lock_while_linking_a_posted_signal_to_its_message_does_not_sink_the_cycle(tmp_path):
    async with slack_world(tmp_path, slack_hang=0.05) as (w, slack, slack_desk, gate):
        await shorten_busy_timeout(w.store)
        lock = w.write_lock()
        cycle = asyncio.create_task(slack_desk.run_cycle(CycleRequest(started_by="U0TRADER1")))
        await slack.wait_for_calls("chat.postMessage", 1)
        # Slack takes the first signal's message; as its answer returns, another process holds the database.
        slack.faults.add("hold_after", "/api/chat.postMessage", "POST", notify=lambda _: lock.take(2.0))
        gate.set()
        try:
            result = await asyncio.wait_for(cycle, 20)
        finally:
            await wait_until(lambda: not lock.conn.in_transaction)
    posted = slack.posted("chat.postMessage")
    assert len(result.signals) == 2 and all(
        len([p for p in posted if s.id in buttons_of(p)]) == 1 for s in result.signals)
    assert len([p for p in posted if "2 signals from 7 markets" in p.get("text", "")]) == 1
    assert any(e.stage == "slack" and "database" in e.message for e in result.report.errors)


async def test_a_write_lock_during_analysis_keeps_the_paid_answers_and_says_the_ledger_is_short(tmp_path):
    async with world(tmp_path) as w:
        await shorten_busy_timeout(w.store)
        lock = w.write_lock()
        result = await w.desk.scan(CycleRequest(), progress=lock_at("analysing", lock, 2.0))
        ledger = await w.store.llm_tokens(result.report.cycle_id)
    report = result.report
    short_ledger = [e for e in report.errors if e.stage == "ledger"]
    assert short_ledger and all("undercounts" in e.message and "database" in e.message for e in short_ledger)
    # Every paid call is either in the ledger or said, in the report, to be missing from it.
    assert ledger["calls"] + len(short_ledger) == report.analysed
    assert report.finished_at is not None and not [e for e in report.errors if e.stage == "cycle"]
