"""ClaudeAnalyzer: calibrated fair values from Claude, cached, budgeted and fenced against injection.

- Structured outputs: the reply must be a FairValue JSON object; one that does not validate
  (bad JSON, out of range, extra fields) is asked again once, then the market is skipped.
- The model does not see the price unless `show_market_price`; its probability is blended.
- Every attempt is written to the ledger: an answer priced from its `usage`, valid or not; a refusal
  (429, 529, 5xx) at $0; one whose outcome cannot be known (timeout, lost connection, cut by the
  deadline) at its worst case. The desk retries, not the SDK, so no attempt goes unseen; each is made
  only if its worst case still fits the cycle and day budgets.
- Unchanged markets reuse their cached estimate: a second cycle over them costs nothing.
- Scheduled cycles can go through Message Batches (half price, slower).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import anthropic
from pydantic import ValidationError

from .config import Settings
from .cycle import day_start
from .errors import StorageError
from .llm_cost import Usage, cost, worst_case
from .models import Estimate, Market, Rejection, utcnow
from .prompts import PROMPT_VERSION, SYSTEM_PROMPT, FairValue, render_market
from .reporter import ErrorReporter, short
from .store import Store
from .strategy import blend, initial_market_weight

log = logging.getLogger(__name__)

WEB_SEARCH_TOOL = "web_search_20250305"
OUTPUT_FORMAT = {"type": "json_schema", "schema": anthropic.transform_schema(FairValue)}
# Errors that will fail every call alike: stop asking after the first (402: the account's billing).
FATAL = (anthropic.AuthenticationError, anthropic.PermissionDeniedError, anthropic.NotFoundError,
         anthropic.PaymentRequiredError)
# A 400 is about one request (its market's text), so it fails that market only. But some 400s hit every call: a
# setting all calls share, or a spend limit the organisation set (the API answers those with a 400 too). So after
# this many 400s with no call of the cycle answered yet, the cycle's analysis stops instead of asking for each.
BAD_REQUESTS_TO_STOP = 3


def rules_fingerprint(market: Market) -> str:
    text = f"{market.title}\n{market.rules}\n{market.close_time.isoformat()}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass
class Budget:
    """Money the analysis may still spend; reservations keep concurrent calls honest."""

    cycle_limit: Decimal
    day_limit: Decimal
    spent_today_before: Decimal
    spent: Decimal = Decimal(0)
    reserved: Decimal = Decimal(0)

    def try_reserve(self, amount: Decimal) -> bool:
        committed = self.spent + self.reserved + amount
        if committed > self.cycle_limit or self.spent_today_before + committed > self.day_limit:
            return False
        self.reserved += amount
        return True

    def settle(self, reserved: Decimal, actual: Decimal) -> None:
        self.reserved -= reserved
        self.spent += actual


@dataclass
class _Run:
    """One cycle's analysis: what was settled, for the deadline's accounting."""

    reporter: ErrorReporter
    budget: Budget
    now: datetime
    batch: bool = False
    settled: set[str] = field(default_factory=set)
    fatal: str = ""
    answered: bool = False  # some call of this cycle was answered: a 400 is then about its own market
    bad_requests: int = 0

    def reject(self, market: Market, reason: str, detail: str) -> None:
        self.settled.add(market.key)
        self.reporter.report.reject(Rejection(market_key=market.key, reason=reason, detail=detail))


class InvalidReply(Exception):
    pass


def usage_of(message: Any) -> Usage:
    u = message.usage
    server = getattr(u, "server_tool_use", None)
    return Usage(input_tokens=u.input_tokens or 0, output_tokens=u.output_tokens or 0,
                 cache_write_tokens=u.cache_creation_input_tokens or 0,
                 cache_read_tokens=u.cache_read_input_tokens or 0,
                 web_searches=(getattr(server, "web_search_requests", 0) or 0) if server else 0)


def parse_reply(message: Any) -> tuple[FairValue, tuple[str, ...]]:
    """The FairValue in the last text block, and the URLs the model cited or searched."""
    texts = [b.text for b in message.content if getattr(b, "type", "") == "text"]
    if not texts:
        raise InvalidReply(f"no text in the reply (stop reason {message.stop_reason})")
    try:
        value = FairValue.model_validate_json(texts[-1])
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "reply"
        raise InvalidReply(f"{where}: {first['msg']}") from e
    return value, cited_urls(message)


def cited_urls(message: Any, limit: int = 10) -> tuple[str, ...]:
    """Pages the model searched (web_search_tool_result) or cited in its text, first seen first."""
    found: list[Any] = []
    for block in message.content:
        if getattr(block, "type", "") == "web_search_tool_result" and isinstance(block.content, list):
            found.extend(block.content)
        found.extend(getattr(block, "citations", None) or [])
    urls = [url for url in (getattr(item, "url", None) for item in found) if url]
    return tuple(dict.fromkeys(urls))[:limit]


class ClaudeAnalyzer:
    def __init__(self, settings: Settings, store: Store, client: anthropic.AsyncAnthropic, *,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.settings = settings
        self.config = settings.analysis
        self.store = store
        # The desk retries (analysis.max_retries) so that each attempt is ledgered; a retry inside the SDK would be
        # paid for and never seen. A copy sharing the caller's connections, whatever the caller configured.
        self.client = client.with_options(max_retries=0)
        self.clock = clock
        self.price = self.config.prices[self.config.model]
        # The desk sets it before each cycle when analysis.market_weight is "auto" (Desk.scan).
        self.market_weight = initial_market_weight(self.config.market_weight)
        # Set by a backtest: market key -> the past moment its question is asked as of (the prompt's "today").
        self.as_of: dict[str, datetime] = {}
        # Estimates made with another prompt (wording, price shown, web search) are not reused.
        self.prompt_key = (PROMPT_VERSION + ("+price" if self.config.show_market_price else "")
                           + ("+search" if self.config.web_search else ""))

    @classmethod
    def from_settings(cls, settings: Settings, store: Store) -> "ClaudeAnalyzer | None":
        key = settings.env.ANTHROPIC_API_KEY
        if key is None or not key.get_secret_value():
            return None
        client = anthropic.AsyncAnthropic(api_key=key.get_secret_value(), base_url=settings.env.ANTHROPIC_BASE_URL,
                                          max_retries=0, timeout=float(settings.analysis.timeout_seconds))
        return cls(settings, store, client)

    async def aclose(self) -> None:
        await self.client.close()

    # -- the cycle's entry point -------------------------------------------------------------

    async def analyze(self, markets: list[Market], reporter: ErrorReporter) -> list[Estimate]:
        now = self.clock()
        # A backtest asks as of past moments (the prompt's "today"); the budget's day and the cache stay real: an
        # estimate made later must never answer for an earlier moment, and a backtest's must never serve a cycle.
        estimates: list[Estimate] = []
        todo: list[Market] = []
        for market in markets:
            cached = await self._cached(market, now) if not self.as_of else None
            if cached is not None:
                estimates.append(cached)
                reporter.report.cached += 1
            else:
                todo.append(market)
        if not todo:
            return estimates
        spent_today = await self.store.llm_spend_since(day_start(now))
        run = _Run(reporter, Budget(self.config.budget_usd_per_cycle, self.config.budget_usd_per_day, spent_today),
                   now, batch=self.config.batch_scheduled_cycles and reporter.report.trigger == "schedule")
        results: dict[str, Estimate] = {}
        try:
            async with asyncio.timeout(float(self.config.deadline_seconds)):
                if run.batch:
                    await self._analyze_batch(todo, run, results)
                else:
                    await self._analyze_each(todo, run, results)
        except TimeoutError:
            late = [m for m in todo if m.key not in run.settled]
            for market in late:
                run.reject(market, "analysis_deadline",
                           f"not analysed within the cycle's {self.config.deadline_seconds} s deadline")
            reporter.report.skipped_deadline += len(late)
        reporter.report.llm_cost_usd += run.budget.spent
        return estimates + [results[m.key] for m in todo if m.key in results]

    # -- cache ---------------------------------------------------------------------------

    async def _cached(self, market: Market, now: datetime) -> Estimate | None:
        found = await self.store.cached_estimate(market.key, self.config.model, self.prompt_key)
        if found is None:
            return None
        estimate, fingerprint, price_then = found
        if now - estimate.created_at >= timedelta(minutes=self.config.cache_ttl_minutes):
            return None
        if fingerprint != rules_fingerprint(market):
            return None
        mid = market.mid
        if (mid is None) != (price_then is None):
            return None
        if mid is not None and price_then is not None and abs(mid - price_then) > self.config.reanalyze_price_move:
            return None
        return estimate.model_copy(update={
            "market_probability": mid, "source": "cache", "cost_usd": Decimal(0),
            "fair_probability": blend(estimate.model_probability, mid, self.market_weight),
            "market_weight": self.market_weight})

    # -- one call at a time (concurrently) ----------------------------------------------------

    def _params(self, market: Market, now: datetime) -> dict[str, Any]:
        params: dict[str, Any] = {
            "model": self.config.model,
            "max_tokens": self.config.max_output_tokens,
            # The static instructions are cached: every call of a cycle shares them.
            "system": [{"type": "text", "text": SYSTEM_PROMPT, "cache_control": {"type": "ephemeral"}}],
            "messages": [{"role": "user", "content": render_market(market, now, self.config.show_market_price,
                                                                   self.config.max_prompt_tokens)}],
            "output_config": {"format": OUTPUT_FORMAT},
        }
        if self.config.web_search:
            params["tools"] = [{"type": WEB_SEARCH_TOOL, "name": "web_search",
                                "max_uses": self.config.web_search_max_uses}]
        return params

    def _worst_case(self, params: dict[str, Any], batch: bool) -> Decimal:
        chars = len(SYSTEM_PROMPT) + len(params["messages"][0]["content"])
        searches = self.config.web_search_max_uses if self.config.web_search else 0
        bound = worst_case(chars, self.config.max_output_tokens, self.price, searches=searches,
                           search_per_1000=self.config.web_search_usd_per_1000)
        return bound / 2 if batch else bound

    async def _analyze_each(self, markets: list[Market], run: _Run, results: dict[str, Estimate],
                            attempts: int = 2) -> None:
        gate = asyncio.Semaphore(self.config.max_concurrency)

        async def one(market: Market) -> None:
            async with gate:
                estimate = await self._analyze_one(market, run, attempts)
            if estimate is not None:
                results[market.key] = estimate

        await asyncio.gather(*(one(m) for m in markets))

    async def _analyze_one(self, market: Market, run: _Run, attempts: int) -> Estimate | None:
        report = run.reporter.report
        params = self._params(market, self.as_of.get(market.key, run.now))
        problem = ""
        for _ in range(attempts):
            answered = await self._send(market, params, run)
            if answered is None:
                return None
            message, usage, spent = answered
            try:
                value, sources = parse_reply(message)
            except InvalidReply as e:
                problem = str(e)
                await self._ledger(run, market, usage, spent, "invalid")
                continue
            await self._ledger(run, market, usage, spent, "ok")
            report.analysed += 1
            run.settled.add(market.key)
            return await self._estimate(market, value, sources, spent, run)
        report.invalid += 1
        run.reject(market, "invalid_estimate", f"reply did not validate twice: {problem}")
        return None

    async def _send(self, market: Market, params: dict[str, Any], run: _Run) -> tuple[Any, Usage, Decimal] | None:
        """One answer to `params` (its usage and price, for the caller to ledger), or None once the market is rejected.

        The desk retries, not the SDK, so that every attempt is reserved against the budget and ledgered: a refused
        one at $0, one whose outcome cannot be known (no answer, an unreadable answer, cut by the deadline) at its
        worst case, as it may have run and been paid for and the budget must never undercount.
        """
        report = run.reporter.report
        retries = self.config.max_retries
        for attempt in range(retries + 1):
            if run.fatal:
                run.reject(market, "analysis_failed", run.fatal)
                return None
            reserve = self._worst_case(params, batch=False)  # again for each attempt: each may be paid for
            if not run.budget.try_reserve(reserve):
                report.skipped_budget += 1
                run.reject(market, "over_budget", "the cycle or day LLM budget would be exceeded")
                return None
            spent = Decimal(0)
            try:
                message = await self.client.messages.create(**params)
                run.answered = True
                usage = usage_of(message)
                spent = cost(usage, self.price, search_per_1000=self.config.web_search_usd_per_1000)
                return message, usage, spent
            except asyncio.CancelledError:  # the cycle's deadline (or a shutdown), with this call in flight
                spent = reserve
                await self._ledger(run, market, Usage(), spent, "cancelled")
                raise
            except (anthropic.APIError, ValueError) as e:  # ValueError: an unreadable 200 body (JSONDecodeError)
                outcome, unknown = attempt_outcome(e)
                spent = reserve if unknown else Decimal(0)
                await self._ledger(run, market, Usage(), spent, outcome)
                error: Exception = e
            finally:
                run.budget.settle(reserve, spent)
            if isinstance(error, FATAL) or _spend_cap(error):
                if not run.fatal:  # calls already in flight fail alike; report the cause once
                    run.fatal = f"{type(error).__name__}: {_api_message(error)}"
                    run.reporter.record("analyse", f"{run.fatal} (analysis stopped for this cycle)")
                run.reject(market, "analysis_failed", run.fatal)
                return None
            if isinstance(error, anthropic.BadRequestError):
                self._bad_request(market, run, error)
                return None
            if isinstance(error, ValueError | anthropic.APIResponseValidationError):
                # Answered (and paid for) but unreadable: asking again would pay again for the same risk.
                run.reporter.record("analyse", f"{market.key}: unreadable answer from the API ({type(error).__name__})")
                run.reject(market, "analysis_failed", "unreadable answer from the API")
                return None
            if attempt < retries and retryable(error):
                await asyncio.sleep(retry_wait(error, attempt))
                continue
            # Which market (by a name a person knows), what the API said, and what became of it.
            tried = f" after {attempt} {'retry' if attempt == 1 else 'retries'}" if attempt else ""
            run.reporter.record("analyse", f"{market.key} ({short(market.title)}): {type(error).__name__}: "
                                           f"{_api_message(error)}{tried}; not analysed this cycle")
            run.reject(market, "analysis_failed", f"{type(error).__name__}{tried}")
            return None
        raise AssertionError("unreachable: the last attempt returns")

    def _bad_request(self, market: Market, run: _Run, error: anthropic.BadRequestError) -> None:
        """A 400 fails its market, with the API's reason; a run of them before any answer stops the cycle's analysis."""
        if run.fatal:  # calls in flight when the analysis stopped fail alike: the cause is reported once
            run.reject(market, "analysis_failed", run.fatal)
            return
        reason = f"BadRequestError: {_api_message(error)}"
        run.reporter.record("analyse", f"{market.key} ({short(market.title)}): {reason}; not analysed this cycle")
        run.reject(market, "analysis_failed", reason)
        if not run.answered:
            run.bad_requests += 1
            if run.bad_requests >= BAD_REQUESTS_TO_STOP:
                run.fatal = (f"{reason} ({run.bad_requests} calls refused with 400 and none answered: likely a "
                             "setting every call shares or a spend limit; analysis stopped for this cycle)")
                run.reporter.record("analyse", run.fatal)

    async def _estimate(self, market: Market, value: FairValue, sources: tuple[str, ...], spent: Decimal,
                        run: _Run) -> Estimate:
        model_p = Decimal(str(value.probability))
        estimate = Estimate(
            market_key=market.key, model_probability=model_p, market_probability=market.mid,
            fair_probability=blend(model_p, market.mid, self.market_weight), market_weight=self.market_weight,
            confidence=Decimal(str(value.confidence)), reasoning=value.reasoning,
            key_factors=tuple(value.key_factors), sources=sources, source="model", model=self.config.model,
            prompt_version=self.prompt_key, cost_usd=spent, created_at=self.as_of.get(market.key, run.now))
        if self.as_of:  # a backtest's answer is for a past moment: never a cycle's cached estimate
            return estimate
        try:
            await self.store.cache_estimate(estimate, self.prompt_key, rules_fingerprint(market), market.mid)
        except StorageError as e:  # only a later cycle's saving is lost; this answer stands
            run.reporter.record("cache", f"{market.key} ({short(market.title)}): estimate not cached ({e})")
        return estimate

    async def _ledger(self, run: _Run, market: Market, usage: Usage, spent: Decimal, outcome: str) -> None:
        # Shielded: the deadline may cancel the task writing it, never the write of a call that may have been paid.
        await asyncio.shield(self._write_ledger(run, market, usage, spent, outcome))

    async def _write_ledger(self, run: _Run, market: Market, usage: Usage, spent: Decimal, outcome: str) -> None:
        try:
            await self.store.record_llm_call(
                cycle_id=run.reporter.report.cycle_id, market_key=market.key, model=self.config.model,
                input_tokens=usage.input_tokens, output_tokens=usage.output_tokens,
                cache_write_tokens=usage.cache_write_tokens, cache_read_tokens=usage.cache_read_tokens,
                web_searches=usage.web_searches, batch=run.batch, cost_usd=spent, outcome=outcome)
        except StorageError as e:  # the call is paid either way: keep its answer, say the day's total is short
            run.reporter.record("ledger", f"{market.key} ({short(market.title)}): ${spent:.4f} of model spend could "
                                          f"not be written to the ledger ({e}); today's budget undercounts it")

    # -- Message Batches (scheduled cycles) ------------------------------------------------------

    async def _analyze_batch(self, markets: list[Market], run: _Run, results: dict[str, Estimate]) -> None:
        report = run.reporter.report
        requests, reserves, by_id = [], {}, {}
        for index, market in enumerate(markets):
            params = self._params(market, self.as_of.get(market.key, run.now))
            reserve = self._worst_case(params, batch=True)
            if not run.budget.try_reserve(reserve):
                report.skipped_budget += 1
                run.reject(market, "over_budget", "the cycle or day LLM budget would be exceeded")
                continue
            custom_id = f"m{index}"
            requests.append({"custom_id": custom_id, "params": params})
            reserves[custom_id], by_id[custom_id] = reserve, market
        if not requests:
            return
        try:
            batch = await self.client.messages.batches.create(requests=requests)
            try:
                while batch.processing_status != "ended":
                    await asyncio.sleep(float(self.config.batch_poll_seconds))
                    batch = await self.client.messages.batches.retrieve(batch.id)
            except asyncio.CancelledError:  # the deadline: do not leave the batch running
                await asyncio.shield(self._cancel_batch(batch.id))
                raise
            retry: list[Market] = []
            async for entry in await self.client.messages.batches.results(batch.id):
                market = by_id.get(entry.custom_id)
                if market is None:
                    continue
                reserve = reserves.pop(entry.custom_id)
                if entry.result.type != "succeeded":
                    run.budget.settle(reserve, Decimal(0))
                    run.reporter.record("analyse", f"{market.key}: batch result {entry.result.type}")
                    run.reject(market, "analysis_failed", f"batch result {entry.result.type}")
                    continue
                message = entry.result.message
                usage = usage_of(message)
                spent = cost(usage, self.price, search_per_1000=self.config.web_search_usd_per_1000, batch=True)
                run.budget.settle(reserve, spent)
                try:
                    value, sources = parse_reply(message)
                except InvalidReply:
                    await self._ledger(run, market, usage, spent, "invalid")
                    retry.append(market)  # asked once more, directly
                    continue
                await self._ledger(run, market, usage, spent, "ok")
                report.analysed += 1
                run.settled.add(market.key)
                results[market.key] = await self._estimate(market, value, sources, spent, run)
        except anthropic.APIError as e:
            run.reporter.record("analyse", f"batch: {type(e).__name__}: {_api_message(e)}")
            for custom_id, reserve in reserves.items():
                run.budget.settle(reserve, Decimal(0))
                run.reject(by_id[custom_id], "analysis_failed", f"batch failed: {type(e).__name__}")
            return
        for custom_id, reserve in reserves.items():  # results that never came back
            run.budget.settle(reserve, Decimal(0))
            run.reject(by_id[custom_id], "analysis_failed", "missing from the batch results")
        if retry:
            await self._analyze_each(retry, run, results, attempts=1)

    async def _cancel_batch(self, batch_id: str) -> None:
        try:
            await self.client.messages.batches.cancel(batch_id)
        except anthropic.APIError as e:
            log.warning("could not cancel batch %s: %s", batch_id, type(e).__name__)


def attempt_outcome(error: Exception) -> tuple[str, bool]:
    """What the ledger says of an attempt that failed, and whether it may have been paid for (its outcome unknown).

    An answer carrying Anthropic's error body (429, 529, 5xx, 4xx) reports no usage: the request was refused. No
    answer at all, or one that cannot be read, may hide a call that ran. A connection never made sent nothing.
    """
    if isinstance(error, anthropic.APIStatusError):
        body = error.body
        inner = body.get("error") if isinstance(body, dict) else None
        if isinstance(inner, dict) and inner.get("type"):
            return str(inner["type"]), False  # e.g. rate_limit_error, overloaded_error, api_error
        return f"http_{error.status_code}_unreadable", True  # e.g. a proxy's 502 page: the API may have run it
    if isinstance(error, anthropic.APIConnectionError):  # APITimeoutError included
        # The SDK wraps the transport's error (httpx2's): by name, so as not to depend on the SDK's transport.
        names = {type(cause).__name__ for cause in _causes(error)}
        if names & {"ConnectError", "ConnectTimeout", "PoolTimeout"}:
            return "not_sent", False
        return ("timeout" if isinstance(error, anthropic.APITimeoutError) else "connection_lost"), True
    return "unreadable", True  # a 200 whose body could not be read: answered, so paid


def retryable(error: Exception) -> bool:
    """What may pass on a later try, as the SDK judges it: the server's x-should-retry, else 408, 409, 429, 5xx;
    and every connection failure or timeout."""
    if isinstance(error, anthropic.APIStatusError):
        should = error.response.headers.get("x-should-retry")
        if should in ("true", "false"):
            return should == "true"
        return error.status_code in (408, 409, 429) or error.status_code >= 500
    return isinstance(error, anthropic.APIConnectionError)


def retry_wait(error: Exception, attempt: int) -> float:
    """Seconds before the next attempt: what the API asks for (retry-after-ms, retry-after in seconds, as Anthropic
    sends it), else the SDK's backoff, 0.5 s doubling to at most 8 s, less up to a quarter of jitter. The cycle's
    deadline bounds the wait either way."""
    if isinstance(error, anthropic.APIStatusError):
        for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
            try:
                seconds = float(error.response.headers.get(name, "")) * scale
            except ValueError:
                continue
            if seconds > 0:
                return seconds
    return min(0.5 * 2 ** attempt, 8.0) * (1 - 0.25 * random.random())


def _spend_cap(error: Exception) -> bool:
    """The monthly spend cap of the organisation's tier: a 429 no retry passes until next month (no retry-after)."""
    return isinstance(error, anthropic.RateLimitError) and error.error_code == "enforced_spend_limit_reached"


def _causes(error: BaseException) -> list[BaseException]:
    found: list[BaseException] = []
    cause = error.__cause__
    while cause is not None and cause not in found:
        found.append(cause)
        cause = cause.__cause__
    return found


def _api_message(error: anthropic.APIError) -> str:
    """The API's own message, without request bodies or headers (which could carry secrets)."""
    body = getattr(error, "body", None)
    if isinstance(body, dict):
        inner = body.get("error")
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])[:300]
    status = getattr(error, "status_code", None)
    return f"HTTP {status}" if status else type(error).__name__
