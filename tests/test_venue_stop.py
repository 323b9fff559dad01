"""A venue that answers an order in a way the desk was not built for (a retired endpoint, an error code it has
never seen) stops orders to that venue: once, loudly, kept across restarts, shown in status, lifted only by an
authorized person; the other venue trades on."""

from __future__ import annotations

from decimal import Decimal

from pipeline.desk import Desk
from pipeline.errors import VenueContractError
from pipeline.models import SignalStatus, Venue
from pipeline.store import Store

from .conftest import make_settings
from .fakes import FakeVenue, make_book, make_market
from .test_desk import ADMIN, STRANGER, Clock, FixedAnalyzer

D = Decimal
RETIRED = VenueContractError("kalshi", "kalshi: deprecated_v1_order_endpoint: Please switch to the V2 endpoints "
                                       "(order od-x). Kalshi has retired an endpoint this desk uses",
                             code="deprecated_v1_order_endpoint")


def two_venues() -> tuple[FakeVenue, FakeVenue]:
    kalshi, polymarket = FakeVenue(Venue.KALSHI), FakeVenue(Venue.POLYMARKET)
    for venue, ids in ((kalshi, ("KXFED-26DEC-H0", "KXCPI-26NOV-T3")), (polymarket, ("0xpoly1",))):
        for market_id in ids:
            market = make_market(market_id, venue=venue.venue)
            venue.add(market, make_book(market, bids=[("0.40", "200")], asks=[("0.42", "100"), ("0.44", "100")]))
    return kalshi, polymarket


async def open_desk(tmp_path, kalshi: FakeVenue, polymarket: FakeVenue) -> tuple[Desk, Store, FixedAnalyzer]:
    settings = make_settings(tmp_path, trading={"dry_run": False}, approval={"authorized_users": ["UADMIN1"]},
                             storage={"path": str(tmp_path / "desk.db")})
    store = await Store.open(settings.storage.path)
    keys = [m.key for v in (kalshi, polymarket) for m in v.markets.values()]
    analyzer = FixedAnalyzer({key: "0.70" for key in keys})
    desk = Desk(settings, store, {Venue.KALSHI: kalshi, Venue.POLYMARKET: polymarket}, analyzer, clock=Clock())
    return desk, store, analyzer


async def test_a_retired_endpoint_stops_orders_to_that_venue_once_loudly_and_the_other_trades_on(tmp_path):
    kalshi, polymarket = two_venues()
    kalshi.refuse_with = RETIRED
    desk, store, _ = await open_desk(tmp_path, kalshi, polymarket)
    signals = {s.market.id: s for s in (await desk.scan()).signals}
    assert set(signals) == {"KXFED-26DEC-H0", "KXCPI-26NOV-T3", "0xpoly1"}

    first = await desk.approve(signals["KXFED-26DEC-H0"].id, ADMIN)
    assert not first.ok and first.code == "failed" and kalshi.posts == 1
    assert first.stopped is not None and first.stopped.venue == "kalshi" and first.stopped.recorded
    said = first.stopped.sentence()
    assert "Orders to kalshi are STOPPED" in said and "oddsdesk check --venues" in said
    assert "/desk resume kalshi" in said and "Nothing was traded" in said
    assert "deprecated_v1_order_endpoint" in first.stopped.reason
    failed = await store.get_signal(signals["KXFED-26DEC-H0"].id)
    held = (await desk.status()).risk.reserved  # its capital is released: only the other two still hold theirs
    assert failed.status is SignalStatus.FAILED and held == sum(
        signals[m].reserved for m in ("KXCPI-26NOV-T3", "0xpoly1"))
    assert (await store.stopped_venues())["kalshi"].startswith("kalshi: deprecated_v1_order_endpoint")

    # The next Kalshi approval is refused before anything is sent, and the channel is not told again.
    second = await desk.approve(signals["KXCPI-26NOV-T3"].id, ADMIN)
    assert not second.ok and second.code == "orders_stopped" and second.stopped is None and kalshi.posts == 1
    assert "Orders to kalshi are stopped" in second.message and "/desk resume kalshi" in second.message
    assert (await store.get_signal(signals["KXCPI-26NOV-T3"].id)).status is SignalStatus.PENDING

    # Polymarket trades on.
    other = await desk.approve(signals["0xpoly1"].id, ADMIN)
    assert other.ok and other.code == "executed" and polymarket.posts == 1
    status = await desk.status()
    assert set(status.stopped_venues) == {"kalshi"}
    entries = [e for e in await store.audit_log("kalshi") if e.action == "stop_orders"]
    assert len(entries) == 1 and entries[0].actor == "UADMIN1"
    await store.close()


async def test_an_unknown_error_code_stops_orders_too_and_a_cycle_skips_the_venue_until_resumed(tmp_path):
    kalshi, polymarket = two_venues()
    kalshi.refuse_with = VenueContractError("kalshi", "kalshi: brand_new_code: something new (order od-y). Kalshi "
                                                      "answered an order with an error code this desk has never seen",
                                            code="brand_new_code")
    desk, store, _ = await open_desk(tmp_path, kalshi, polymarket)
    [signal, *_] = [s for s in (await desk.scan()).signals if s.market.venue is Venue.KALSHI]
    decision = await desk.approve(signal.id, ADMIN)
    assert decision.stopped is not None and "brand_new_code" in decision.stopped.reason

    # Kalshi's markets are not analysed (no model money spent on what cannot be traded), with the reason.
    result = await desk.scan()
    assert {s.market.venue for s in result.signals} <= {Venue.POLYMARKET}
    assert result.report.rejections["venue_orders_stopped"] == 2
    assert any("orders to kalshi are stopped" in note for note in result.report.notes)

    # A restart keeps the stop; a stranger cannot lift it; an authorized person can.
    await store.close()
    kalshi.refuse_with = None
    desk, store, _ = await open_desk(tmp_path, kalshi, polymarket)
    assert set((await desk.status()).stopped_venues) == {"kalshi"}
    refused = await desk.resume_orders(STRANGER, Venue.KALSHI)
    assert not refused.ok and refused.code == "not_authorized"
    assert [e.outcome for e in await store.audit_log("kalshi") if e.action == "resume_orders"] == [
        "refused:not_authorized"]
    lifted = await desk.resume_orders(ADMIN, Venue.KALSHI)
    assert lifted.ok and lifted.code == "orders_resumed" and "brand_new_code" in lifted.message
    assert (await desk.status()).stopped_venues == {}
    assert (await desk.resume_orders(ADMIN, Venue.KALSHI)).code == "unchanged"
    fresh = [s for s in (await desk.scan()).signals if s.market.venue is Venue.KALSHI]
    assert fresh and (await desk.approve(fresh[0].id, ADMIN)).code == "executed"
    await store.close()


async def test_an_ordinary_refusal_does_not_stop_the_venue(tmp_path):
    from pipeline.errors import GiveUpError

    kalshi, polymarket = two_venues()
    kalshi.refuse_with = GiveUpError("kalshi: insufficient_balance: insufficient balance (order od-z)")
    desk, store, _ = await open_desk(tmp_path, kalshi, polymarket)
    [signal, *_] = [s for s in (await desk.scan()).signals if s.market.venue is Venue.KALSHI]
    decision = await desk.approve(signal.id, ADMIN)
    assert not decision.ok and decision.code == "failed" and decision.stopped is None
    assert await store.stopped_venues() == {}
    await store.close()


async def test_a_stop_that_lands_while_an_approval_rechecks_its_book_sends_nothing(tmp_path):
    import asyncio

    kalshi, polymarket = two_venues()
    desk, store, _ = await open_desk(tmp_path, kalshi, polymarket)
    [signal, *_] = [s for s in (await desk.scan()).signals if s.market.venue is Venue.KALSHI]
    kalshi.book_gate = asyncio.Event()  # hold the approval at its book fetch, past the stop's first check
    approval = asyncio.create_task(desk.approve(signal.id, ADMIN))
    await kalshi.held.wait()
    assert await store.stop_venue("kalshi", "kalshi: a code never seen (another approval)", "UOTHER")
    kalshi.book_gate.set()
    decision = await approval
    assert not decision.ok and decision.code == "desk_stopped" and kalshi.posts == 0
    assert "orders to kalshi were stopped while this approval was on its way" in (
        await store.get_signal(signal.id)).status_reason
    assert (await store.get_signal(signal.id)).status is SignalStatus.FAILED
    await store.close()


async def test_a_conflict_the_desk_cannot_read_leaves_the_order_unknown_and_stops_the_venue(tmp_path):
    from pipeline.errors import OutcomeUnknownError

    kalshi, polymarket = two_venues()
    contract = VenueContractError("kalshi", "kalshi: brand_new_conflict: refused (order od-c)", code="brand_new_conflict")
    unknown = OutcomeUnknownError("kalshi: order od-c may exist already; not listed yet")
    unknown.__cause__ = contract
    kalshi.refuse_with = unknown
    desk, store, _ = await open_desk(tmp_path, kalshi, polymarket)
    [signal, *_] = [s for s in (await desk.scan()).signals if s.market.venue is Venue.KALSHI]
    decision = await desk.approve(signal.id, ADMIN)
    # held, not released: reconciliation finds out whether it exists; and no more orders go to Kalshi meanwhile
    assert decision.code == "unknown" and decision.stopped is not None and decision.stopped.venue == "kalshi"
    assert (await store.get_signal(signal.id)).status is SignalStatus.UNKNOWN
    assert set(await store.stopped_venues()) == {"kalshi"}
    await store.close()
