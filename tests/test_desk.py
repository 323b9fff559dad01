"""The Desk end to end on an in-memory venue: cycle -> signal -> approve/reject/expire -> outcome."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from pipeline.cycle import CycleRequest
from pipeline.desk import Actor, Desk
from pipeline.errors import CycleAlreadyRunning, GiveUpError
from pipeline.models import Estimate, Market, OrderStatus, SignalStatus
from pipeline.reporter import ErrorReporter
from pipeline.risk import TradingState
from pipeline.store import Store
from pipeline.strategy import blend

from .conftest import make_settings
from .fakes import NOW, FakeVenue, make_book, make_market

D = Decimal
ADMIN = Actor(id="UADMIN1")
STRANGER = Actor(id="USTRANGER")


class FixedAnalyzer:
    """Model probabilities set by the test; blended with the market like the real analyser."""

    def __init__(self, probabilities: dict[str, str], market_weight: Decimal = D("0.5")) -> None:
        self.probabilities = probabilities
        self.market_weight = market_weight
        self.gate: asyncio.Event | None = None

    async def analyze(self, markets: list[Market], reporter: ErrorReporter) -> list[Estimate]:
        if self.gate is not None:
            await self.gate.wait()
        out = []
        for m in markets:
            if m.key in self.probabilities:
                p = D(self.probabilities[m.key])
                out.append(Estimate(market_key=m.key, model_probability=p, market_probability=m.mid,
                                    fair_probability=blend(p, m.mid, self.market_weight), reasoning="test"))
                reporter.report.analysed += 1
        return out


class Clock:
    def __init__(self, now: datetime = NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def standard_venue() -> tuple[FakeVenue, Market]:
    venue = FakeVenue()
    market = make_market("KXFED-26DEC-H0")
    venue.add(market, make_book(market, bids=[("0.40", "200"), ("0.38", "500")],
                                asks=[("0.42", "100"), ("0.44", "100"), ("0.50", "500")]))
    return venue, market


async def make_desk(tmp_path, *, dry_run: bool = True, users=("UADMIN1",), clock: Clock | None = None,
                    venue: FakeVenue | None = None, probability: str = "0.70",
                    trading: dict | None = None) -> tuple[Desk, FakeVenue, Store]:
    if venue is None:
        venue, _ = standard_venue()
    settings = make_settings(tmp_path, trading={"dry_run": dry_run, **(trading or {})}, approval={"authorized_users": list(users)},
                             storage={"path": str(tmp_path / "desk.db")})
    store = await Store.open(settings.storage.path)
    analyzer = FixedAnalyzer({m.key: probability for m in venue.markets.values()})
    desk = Desk(settings, store, {venue.venue: venue}, analyzer, clock=clock or Clock())
    return desk, venue, store


@pytest.fixture
async def desk_env(tmp_path):
    desk, venue, store = await make_desk(tmp_path)
    yield desk, venue, store
    await store.close()


async def test_cycle_makes_a_sized_signal_and_reserves_its_capital(desk_env):
    desk, venue, store = desk_env
    result = await desk.scan(CycleRequest())
    report = result.report
    assert report.scanned == {"kalshi": 1} and report.passed_filters == 1 and report.analysed == 1
    assert report.opportunities == 1 and report.signals == 1
    [signal] = result.signals
    # fair = 0.5*0.70 + 0.5*0.41 = 0.555; budget = min(0.25*f*, 0.05) * 1000 = $50 (cap binds).
    # 100 @ 0.42 (fee 1.71) + 13 @ 0.44 (fee 0.23): 0.50 level has edge 0.0375 < 0.08 and is not taken.
    assert signal.contracts == D(113) and signal.limit_price == D("0.44")
    assert signal.cost == D("47.72") and signal.fees == D("1.94") and signal.expected_outlay == D("49.66")
    # Held until the outcome is known: the worst case, all 113 at the 0.44 limit (49.72) + fee 1.95.
    status = await desk.status()
    assert signal.reserved == D("51.67")
    assert status.risk.reserved == D("51.67") and status.risk.free == D("948.33")
    assert [s.id for s in status.pending] == [signal.id]
    assert await store.cycle_report(report.cycle_id) is not None


async def test_dry_run_approve_simulates_against_the_book_and_records_a_paper_position(desk_env):
    desk, venue, store = desk_env
    [signal] = (await desk.scan()).signals
    decision = await desk.approve(signal.id, ADMIN)
    assert decision.ok and decision.code == "simulated"
    assert decision.message.startswith("DRY-RUN: would have bought 113 YES")
    assert venue.posts == 0  # dry-run never reaches the venue's order endpoint
    stored = await store.get_signal(signal.id)
    assert stored.status is SignalStatus.SIMULATED
    order = await store.order_for_signal(signal.id)
    assert order.paper and order.status is OrderStatus.FILLED and order.filled == D(113)
    assert order.client_order_id == signal.client_order_id
    [position] = await store.positions(paper=True)
    assert position.contracts == D(113) and position.cost == D("47.72") and position.fees == D("1.94")
    risk = (await desk.status()).risk
    assert risk.reserved == 0 and risk.exposure == D("49.66")


async def test_unauthorized_click_changes_nothing_and_is_audited(desk_env):
    desk, venue, store = desk_env
    [signal] = (await desk.scan()).signals
    decision = await desk.approve(signal.id, STRANGER)
    assert not decision.ok and decision.code == "not_authorized"
    assert (await store.get_signal(signal.id)).status is SignalStatus.PENDING
    assert await store.order_for_signal(signal.id) is None
    refusals = [e for e in await store.audit_log(signal.id) if e.outcome == "refused:not_authorized"]
    assert refusals and refusals[0].actor == "USTRANGER"
    assert not (await desk.reject(signal.id, STRANGER)).ok


async def test_nobody_may_approve_from_chat_when_the_list_is_empty(tmp_path):
    desk, venue, store = await make_desk(tmp_path, users=())
    [signal] = (await desk.scan()).signals
    assert (await desk.approve(signal.id, ADMIN)).code == "not_authorized"
    group_member = Actor(id="UOTHER", groups=frozenset({"S0TRADERS"}))
    assert (await desk.approve(signal.id, group_member)).code == "not_authorized"
    # The person at the terminal that runs the desk holds its keys and may decide.
    assert (await desk.approve(signal.id, Actor.terminal())).ok
    await store.close()


async def test_usergroup_membership_authorizes(tmp_path):
    venue, _ = standard_venue()
    settings = make_settings(tmp_path, approval={"authorized_usergroups": ["S0TRADERS"]},
                             storage={"path": str(tmp_path / "d.db")})
    store = await Store.open(settings.storage.path)
    desk = Desk(settings, store, {venue.venue: venue}, FixedAnalyzer({"kalshi:KXFED-26DEC-H0": "0.70"}),
                clock=Clock())
    [signal] = (await desk.scan()).signals
    assert (await desk.approve(signal.id, Actor(id="UX", groups=frozenset({"S0TRADERS"})))).ok
    await store.close()


async def test_twenty_concurrent_live_approvals_place_exactly_one_order(tmp_path):
    desk, venue, store = await make_desk(tmp_path, dry_run=False)
    [signal] = (await desk.scan()).signals
    decisions = await asyncio.gather(*(desk.approve(signal.id, ADMIN) for _ in range(20)))
    assert sum(d.ok for d in decisions) == 1
    assert venue.posts == 1 and len(venue.orders) == 1
    assert len(await store.orders()) == 1
    losers = [d for d in decisions if not d.ok]
    assert all(d.code == "already_decided" for d in losers)
    assert all(d.details["decided_by"] == "UADMIN1" and d.details["decided_at"] for d in losers)
    assert (await store.get_signal(signal.id)).status is SignalStatus.FILLED
    await store.close()


async def test_live_order_whose_reply_is_lost_is_found_by_client_id_not_reposted(tmp_path):
    desk, venue, store = await make_desk(tmp_path, dry_run=False)
    [signal] = (await desk.scan()).signals
    venue.lose_reply = True
    decision = await desk.approve(signal.id, ADMIN)
    assert decision.ok and decision.code == "executed"
    assert venue.posts == 1
    order = await store.order_for_signal(signal.id)
    assert order.status is OrderStatus.FILLED and order.venue_order_id == "V-1" and order.filled == D(113)
    assert (await store.get_signal(signal.id)).status is SignalStatus.FILLED
    [position] = await store.positions(paper=False)
    assert position.contracts == D(113)
    await store.close()


async def test_live_order_refused_by_the_venue_fails_and_releases_capital(tmp_path):
    desk, venue, store = await make_desk(tmp_path, dry_run=False)
    [signal] = (await desk.scan()).signals
    venue.refuse_with = GiveUpError("insufficient balance")
    decision = await desk.approve(signal.id, ADMIN)
    assert not decision.ok and decision.code == "failed" and "insufficient balance" in decision.message
    stored = await store.get_signal(signal.id)
    assert stored.status is SignalStatus.FAILED
    assert (await store.order_for_signal(signal.id)).status is OrderStatus.REJECTED
    assert (await desk.status()).risk.reserved == 0
    await store.close()


async def test_expired_signal_refuses_and_releases(tmp_path):
    clock = Clock()
    desk, venue, store = await make_desk(tmp_path, clock=clock)
    [signal] = (await desk.scan()).signals
    clock.now = signal.expires_at + timedelta(seconds=1)
    decision = await desk.approve(signal.id, ADMIN)
    assert not decision.ok and decision.code == "expired"
    assert (await store.get_signal(signal.id)).status is SignalStatus.EXPIRED
    assert (await desk.status()).risk.reserved == 0
    assert await store.order_for_signal(signal.id) is None
    await store.close()


async def test_sweeper_expires_only_due_signals(tmp_path):
    clock = Clock()
    desk, venue, store = await make_desk(tmp_path, clock=clock)
    [signal] = (await desk.scan()).signals
    assert await desk.expire_stale() == []
    clock.now = signal.expires_at
    [expired] = await desk.expire_stale()
    assert expired.id == signal.id and expired.status is SignalStatus.EXPIRED
    assert await desk.expire_stale() == []  # a second sweep moves nothing
    await store.close()


async def test_stale_price_refuses_with_the_new_numbers_and_changes_nothing(desk_env):
    desk, venue, store = desk_env
    [signal] = (await desk.scan()).signals
    market = venue.markets["KXFED-26DEC-H0"]
    venue.books[market.id] = make_book(market, bids=[("0.45", "100")], asks=[("0.47", "100")])
    decision = await desk.approve(signal.id, ADMIN)
    assert not decision.ok and decision.code == "stale"
    assert "0.47" in decision.message and decision.details["price"] == "0.47"
    assert (await store.get_signal(signal.id)).status is SignalStatus.PENDING


async def test_book_unavailable_at_approval_refuses(desk_env):
    desk, venue, store = desk_env
    [signal] = (await desk.scan()).signals
    venue.book_error = GiveUpError("503 trading disabled")
    decision = await desk.approve(signal.id, ADMIN)
    assert decision.code == "book_unavailable" and "Nothing was traded" in decision.message
    assert (await store.get_signal(signal.id)).status is SignalStatus.PENDING


async def test_reject_releases_the_reservation_and_cannot_be_undone(desk_env):
    desk, venue, store = desk_env
    [signal] = (await desk.scan()).signals
    decision = await desk.reject(signal.id, ADMIN)
    assert decision.ok and "$51.67 released" in decision.message
    assert (await desk.status()).risk.reserved == 0
    again = await desk.approve(signal.id, ADMIN)
    assert again.code == "already_decided" and "rejected" in again.message and "UADMIN1" in again.message


async def test_a_second_click_after_an_approval_is_told_who_approved_and_when(tmp_path):
    clock = Clock()
    desk, venue, store = await make_desk(tmp_path, clock=clock, users=("UADMIN1", "UOTHER"))
    [signal] = (await desk.scan()).signals
    clock.now = NOW + timedelta(minutes=3)
    assert (await desk.approve(signal.id, ADMIN)).ok
    clock.now = NOW + timedelta(minutes=5)
    again = await desk.approve(signal.id, Actor(id="UOTHER"))
    assert again.code == "already_decided" and not again.ok
    assert again.details == {"decided_by": "UADMIN1", "decided_at": "2026-11-20T15:03:00+00:00"}
    assert again.message == f"{signal.market.title}: already simulated — approved at 15:03 UTC by UADMIN1."
    assert await desk.decision_of(signal.id) == ("UADMIN1", NOW + timedelta(minutes=3))
    assert (await desk.reject(signal.id, ADMIN)).details["decided_by"] == "UADMIN1"
    await store.close()


async def test_a_click_on_a_signal_the_sweeper_expired_says_nobody_decided_in_time(tmp_path):
    clock = Clock()
    desk, venue, store = await make_desk(tmp_path, clock=clock)
    [signal] = (await desk.scan()).signals
    assert await desk.decision_of(signal.id) == ("", None)  # pending: nobody yet
    clock.now = signal.expires_at
    await desk.expire_stale()
    clock.now = signal.expires_at + timedelta(minutes=2)
    late = await desk.approve(signal.id, ADMIN)
    assert late.code == "already_decided"
    assert late.message == (f"{signal.market.title}: already expired at {signal.expires_at:%H:%M} UTC — nobody "
                            "decided in time.")
    assert late.details["decided_at"] == signal.expires_at.isoformat()
    await store.close()


async def test_paused_desk_makes_no_signals_and_refuses_approvals(desk_env):
    desk, venue, store = desk_env
    [signal] = (await desk.scan()).signals
    assert (await desk.pause(STRANGER)).code == "not_authorized"
    assert (await desk.pause(ADMIN)).ok
    assert (await store.trading_state()) is TradingState.PAUSED
    decision = await desk.approve(signal.id, ADMIN)
    assert decision.code == "desk_paused"
    assert (await store.get_signal(signal.id)).status is SignalStatus.PENDING
    assert (await desk.reject(signal.id, ADMIN)).ok  # exits are still allowed
    result = await desk.scan()
    assert result.signals == [] and result.report.analysed == 0 and "PAUSED" in result.report.notes[0]
    assert (await desk.resume(ADMIN)).ok
    assert len((await desk.scan()).signals) == 1


async def test_a_second_cycle_while_one_runs_is_told_who_started_it(desk_env):
    desk, venue, store = desk_env
    gate = asyncio.Event()
    desk.cycle.analyzer.gate = gate
    first = asyncio.create_task(desk.scan(CycleRequest(started_by="UALICE")))
    await asyncio.sleep(0.05)
    with pytest.raises(CycleAlreadyRunning) as info:
        await desk.scan(CycleRequest(started_by="UBOB"))
    assert "UALICE" in info.value.reason
    gate.set()
    assert len((await first).signals) == 1


async def test_second_cycle_on_the_same_market_is_held_back_by_risk(desk_env):
    desk, venue, store = desk_env
    assert len((await desk.scan()).signals) == 1
    second = await desk.scan()
    assert second.signals == [] and second.report.risk_denied == 1
    assert second.report.rejections["risk:already_in_market"] == 1


async def test_signal_made_in_dry_run_is_not_traded_live(tmp_path):
    desk, venue, store = await make_desk(tmp_path, dry_run=True)
    [signal] = (await desk.scan()).signals
    live = Desk(desk.settings.model_copy(update={"trading": desk.settings.trading.model_copy(
        update={"dry_run": False})}), store, {venue.venue: venue}, desk.cycle.analyzer, clock=Clock())
    decision = await live.approve(signal.id, ADMIN)
    assert decision.code == "mode_changed" and venue.posts == 0
    await store.close()


async def test_venue_failure_during_scan_is_reported_not_fatal(tmp_path):
    class BrokenVenue(FakeVenue):
        async def list_markets(self, stats=None):
            raise GiveUpError("HTTP 401: check KALSHI_API_KEY_ID")

    desk, venue, store = await make_desk(tmp_path, venue=BrokenVenue())
    result = await desk.scan()
    assert result.report.scanned == {"kalshi": 0}
    assert [e.stage for e in result.report.errors] == ["scan"]
    assert "401" in result.report.errors[0].message
    await store.close()


# A credential a venue client derives while it runs (as Polymarket's L2 key is derived from the wallet key): named
# here only so the suite's secret guard knows it too.
DERIVED_SECRET = "derived-l2-passphrase-5f0c9a71e2"


async def test_a_credential_a_venue_derived_while_running_is_scrubbed_like_a_configured_one(tmp_path):
    class DerivingVenue(FakeVenue):
        async def list_markets(self, stats=None):
            self.secrets_derived.append(DERIVED_SECRET)  # derived on first use: after the desk was built
            raise GiveUpError(f"HTTP 401: the gateway refused passphrase {DERIVED_SECRET}")

    desk, venue, store = await make_desk(tmp_path, venue=DerivingVenue())
    try:  # closed whatever happens: an open store's thread would keep a failed run from exiting
        assert DERIVED_SECRET not in desk.secret_values()
        result = await desk.scan()
        [error] = result.report.errors
        assert error.message == "HTTP 401: the gateway refused passphrase [redacted]"
        assert (await store.cycle_report(result.report.cycle_id)).errors == [error]  # as stored
        assert DERIVED_SECRET in desk.secret_values() and desk.settings.env.secret_values() == []
    finally:
        await store.close()


async def test_dry_run_simulation_failure_fails_the_signal_and_frees_capital(desk_env):
    desk, venue, store = desk_env
    [signal] = (await desk.scan()).signals
    original = venue.get_order_book
    calls = 0

    async def book_then_break(market):
        nonlocal calls
        calls += 1
        if calls == 1:  # the re-check at Approve sees the book; the simulation then cannot
            return await original(market)
        raise KeyError("book vanished")

    venue.get_order_book = book_then_break
    decision = await desk.approve(signal.id, ADMIN)
    assert not decision.ok and decision.code == "failed" and "book vanished" in decision.message
    assert (await store.get_signal(signal.id)).status is SignalStatus.FAILED
    assert (await store.order_for_signal(signal.id)).status is OrderStatus.REJECTED
    assert (await desk.status()).risk.reserved == 0


async def test_without_an_analyst_the_cycle_scans_filters_and_says_why_it_stopped(tmp_path):
    venue, _ = standard_venue()
    settings = make_settings(tmp_path, storage={"path": str(tmp_path / "d.db")})
    store = await Store.open(settings.storage.path)
    desk = Desk(settings, store, {venue.venue: venue}, None, clock=Clock())
    result = await desk.scan()
    assert result.signals == [] and result.report.passed_filters == 1 and result.report.analysed == 0
    assert "ANTHROPIC_API_KEY" in result.report.notes[0]
    await store.close()


async def test_refusals_never_carry_a_configured_secret(tmp_path):
    from pipeline.config import load_settings

    secret = "kalshi-key-id-secret-abcdef123456"
    venue, _ = standard_venue()
    config = tmp_path / "c.json"
    config.write_text('{"approval": {"authorized_users": ["UADMIN1"]}, "storage": {"path": "%s"}}'
                      % (tmp_path / "s.db"))
    settings = load_settings(config, environ={"KALSHI_API_KEY_ID": secret})
    store = await Store.open(settings.storage.path)
    desk = Desk(settings, store, {venue.venue: venue}, FixedAnalyzer({"kalshi:KXFED-26DEC-H0": "0.70"}),
                clock=Clock())
    [signal] = (await desk.scan()).signals
    venue.book_error = GiveUpError(f"401 for key {secret}")
    decision = await desk.approve(signal.id, ADMIN)
    assert decision.code == "book_unavailable" and secret not in decision.message and "[redacted]" in decision.message
    assert all(secret not in e.detail for e in await store.audit_log(signal.id))
    await store.close()


async def test_the_seed_surface_execute_signals_and_stats(tmp_path):
    """`execute_signals` -> one bool per signal (True: a live order is working or filled)."""
    for dry_run, expected in ((True, [False]), (False, [True])):
        (tmp_path / str(dry_run)).mkdir()
        desk, venue, store = await make_desk(tmp_path / str(dry_run), dry_run=dry_run)
        [signal] = (await desk.scan()).signals
        moved = await store.move_signal(signal.id, SignalStatus.PENDING, SignalStatus.APPROVED, actor="UADMIN1")
        assert await desk.executor.execute_signals([moved.signal]) == expected
        assert await desk.executor.execute_signals([moved.signal]) == [False]  # never twice
        stats = desk.executor.get_execution_stats()
        assert (stats["simulated"], stats["executed"]) == ((1, 0) if dry_run else (0, 1))
        assert venue.posts == (0 if dry_run else 1) and len(await store.orders()) == 1
        await store.close()


async def test_an_order_row_the_database_refuses_after_the_approval_gives_true_advice(tmp_path):
    """The approval is stored, its order row is not (a trigger makes the database refuse it, as a full disk or a
    broken file would): the desk must not say "click Approve again" — the signal is no longer pending."""
    import sqlite3

    desk, venue, store = await make_desk(tmp_path, dry_run=False)
    [signal] = (await desk.scan()).signals
    with sqlite3.connect(desk.settings.storage.path) as raw:
        raw.execute("CREATE TRIGGER refuse_orders BEFORE INSERT ON orders BEGIN "
                    "INSERT INTO no_such_table VALUES (1); END")
    decision = await desk.approve(signal.id, ADMIN)
    assert not decision.ok and decision.code == "storage_unavailable"
    assert "click Approve again" not in decision.message
    for words in ("approval was recorded", "Nothing was sent", "cannot be approved again", "released now"):
        assert words in decision.message
    assert venue.posts == 0 and (await store.get_signal(signal.id)).status is SignalStatus.FAILED
    assert (await desk.status()).risk.reserved == 0
    again = await desk.approve(signal.id, ADMIN)
    assert again.code == "already_decided" and "failed" in again.message
    await store.close()


async def test_a_resting_order_counts_as_an_open_position_for_the_limit(tmp_path):
    venue = FakeVenue()
    for ticker in ("KXA-1", "KXB-1"):
        market = make_market(ticker)
        venue.add(market, make_book(market, bids=[("0.40", "200")], asks=[("0.42", "100"), ("0.44", "100")]))
    venue.rest_orders = True
    desk, venue, store = await make_desk(tmp_path, dry_run=False, venue=venue,
                                         trading={"max_open_positions": 2, "time_in_force": "good_till_canceled"})
    first = (await desk.scan()).signals
    assert len(first) == 2
    for signal in first:
        assert (await desk.approve(signal.id, ADMIN)).ok
    assert {s.status for s in await store.signals()} == {SignalStatus.PLACED}  # both resting, nothing held
    market = make_market("KXC-1")
    venue.add(market, make_book(market, bids=[("0.40", "200")], asks=[("0.42", "100"), ("0.44", "100")]))
    desk.cycle.analyzer.probabilities[market.key] = "0.70"
    report = (await desk.scan()).report
    assert report.signals == 0 and report.rejections["risk:max_open_positions"] == 1
    status = await desk.status()
    assert status.risk.live_orders == 2 and status.risk.exposure == sum(s.reserved for s in first)
    await store.close()
