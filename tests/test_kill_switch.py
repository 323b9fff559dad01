"""The kill switch against everything already on its way, and each cancel told truthfully.

`/desk halt` may land while an approval is re-checking its book, or while its order is on the wire.
From the moment the halt is stored nothing is sent, and an order that was already out is cancelled
as soon as it is seen resting: by its approval, or by the next reconciliation.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from decimal import Decimal as D

from bot import blocks
from bot.present import outcomes
from pipeline.errors import GiveUpError, RetryableError
from pipeline.models import Fill, OrderStatus, SignalStatus
from pipeline.risk import TradingState

from .fakes import make_book, make_market
from .test_desk import ADMIN, Clock, make_desk, standard_venue

GTC = {"time_in_force": "good_till_canceled"}


async def live_desk(tmp_path, **kw):
    venue, _ = standard_venue()
    return await make_desk(tmp_path, dry_run=False, venue=venue, **kw)


async def test_a_halt_while_an_approval_rechecks_its_book_sends_nothing_and_frees_the_capital(tmp_path):
    desk, venue, store = await live_desk(tmp_path)
    [signal] = (await desk.scan()).signals
    venue.book_gate = asyncio.Event()
    approval = asyncio.create_task(desk.approve(signal.id, ADMIN))
    await venue.held.wait()  # the approval passed its state check and is fetching the book
    assert (await desk.halt(ADMIN)).ok
    venue.book_gate.set()
    decision = await approval
    assert not decision.ok and decision.code == "desk_stopped"
    assert "halted while this approval was being checked" in decision.message and "Nothing was traded" in decision.message
    assert venue.posts == 0 and await store.orders() == []
    stored = await store.get_signal(signal.id)
    assert stored.status is SignalStatus.FAILED and decision.signal.status is SignalStatus.FAILED
    assert (await desk.status()).risk.reserved == 0
    await store.close()


async def test_a_pause_while_an_approval_rechecks_its_book_sends_nothing_either(tmp_path):
    desk, venue, store = await make_desk(tmp_path)  # dry-run: a paused desk simulates nothing either
    [signal] = (await desk.scan()).signals
    venue.book_gate = asyncio.Event()
    approval = asyncio.create_task(desk.approve(signal.id, ADMIN))
    await venue.held.wait()
    assert (await desk.pause(ADMIN)).ok
    venue.book_gate.set()
    decision = await approval
    assert decision.code == "desk_stopped" and "the desk was paused" in decision.message
    assert await store.orders() == [] and (await store.get_signal(signal.id)).status is SignalStatus.FAILED
    await store.close()


async def test_an_order_on_the_wire_at_the_halt_is_cancelled_when_it_comes_back_resting(tmp_path):
    desk, venue, store = await live_desk(tmp_path, trading=GTC)
    venue.rest_orders = True
    [signal] = (await desk.scan()).signals
    venue.order_gate = asyncio.Event()
    approval = asyncio.create_task(desk.approve(signal.id, ADMIN))
    await venue.held.wait()  # the order row is written, the post is on its way
    halted = await desk.halt(ADMIN)
    assert "0 resting order(s) cancelled" in halted.message
    assert f"1 order(s) already on their way will be cancelled if they come to rest: {signal.client_order_id}" \
        in halted.message
    venue.order_gate.set()
    decision = await approval
    assert decision.ok and "The desk was halted while this order was on its way: 1 resting order(s) cancelled" \
        in decision.message
    order = await store.order_for_signal(signal.id)
    assert order.status is OrderStatus.CANCELED and venue.cancels == 1 and venue.posts == 1
    assert decision.outcome.order.status is OrderStatus.CANCELED  # the message is redrawn from this
    header = blocks.render(outcomes.signal_outcome(signal, decision, "UADMIN1", signal.created_at)
                           )["blocks"][0]["text"]["text"]
    assert "Cancelled — nothing filled, no money moved, nothing held" in header and "Resting" not in header
    assert (await desk.status()).risk.exposure == 0
    await store.close()


async def test_an_order_whose_answer_was_lost_at_the_halt_is_cancelled_by_reconciliation(tmp_path):
    desk, venue, store = await live_desk(tmp_path, trading=GTC)
    venue.rest_orders, venue.lose_reply = True, True
    venue.find_error = RetryableError("kalshi: timed out")  # and the look-up right after fails too
    [signal] = (await desk.scan()).signals
    venue.order_gate = asyncio.Event()
    approval = asyncio.create_task(desk.approve(signal.id, ADMIN))
    await venue.held.wait()
    await desk.halt(ADMIN)
    venue.order_gate.set()
    assert (await approval).code == "unknown" and venue.cancels == 0
    venue.find_error = None
    report = await desk.reconcile(on_start=True)  # finds it resting, and the desk is halted: cancelled
    order = await store.order_for_signal(signal.id)
    assert order.status is OrderStatus.CANCELED and venue.cancels == 1
    assert [c.order.client_order_id for c in report.halt_cancels.cancelled] == [signal.client_order_id]
    [item] = [i for i in report.resolved if i.after is OrderStatus.CANCELED]  # its message is redrawn from this
    assert item.note == "cancelled: the desk is HALTED" and item.signal.id == signal.id
    assert report.worth_telling
    again = await desk.reconcile(on_start=True)  # nothing rests any more: nothing to cancel or tell
    assert not again.halt_cancels and venue.cancels == 1
    await store.close()


async def test_an_active_desk_leaves_resting_orders_alone_in_reconciliation(tmp_path):
    desk, venue, store = await live_desk(tmp_path, trading=GTC)
    venue.rest_orders = True
    [signal] = (await desk.scan()).signals
    assert (await desk.approve(signal.id, ADMIN)).ok
    report = await desk.reconcile(on_start=True)
    assert not report.halt_cancels and venue.cancels == 0
    assert (await store.order_for_signal(signal.id)).status is OrderStatus.RESTING
    await store.close()


def two_market_venue():
    """The standard Fed market and a second one with an edge: two signals a cycle."""
    venue, _ = standard_venue()
    second = make_market("KXCPI-26DEC-T3")
    venue.add(second, make_book(second, bids=[("0.40", "200")], asks=[("0.42", "100"), ("0.44", "100")]))
    return venue


async def two_resting(tmp_path):
    venue = two_market_venue()
    venue.rest_orders = True
    desk, venue, store = await make_desk(tmp_path, dry_run=False, venue=venue, trading=GTC)
    signals = (await desk.scan()).signals
    assert len(signals) == 2
    for signal in signals:
        assert (await desk.approve(signal.id, ADMIN)).ok
    return desk, venue, store, signals


async def test_a_cancel_the_venue_does_not_honour_is_not_counted_as_cancelled(tmp_path):
    desk, venue, store, signals = await two_resting(tmp_path)
    venue.cancel_ignored = True
    halted = await desk.halt(ADMIN)
    assert "0 resting order(s) cancelled" in halted.message
    assert "Could NOT cancel 2" in halted.message and "the venue still shows it resting" in halted.message
    assert all(o.status is OrderStatus.RESTING for o in await store.orders())
    # Reconciliation keeps trying while the desk is halted, and says what still works at the venue.
    report = await desk.reconcile(on_start=True)
    assert len(report.halt_cancels.failed) == 2 and report.worth_telling
    venue.cancel_ignored = False
    report = await desk.reconcile(on_start=True)
    assert len(report.halt_cancels.cancelled) == 2
    assert all(o.status is OrderStatus.CANCELED for o in await store.orders())
    await store.close()


async def test_one_order_that_cannot_be_cancelled_does_not_stop_the_others(tmp_path):
    desk, venue, store, signals = await two_resting(tmp_path)
    first, second = sorted(await store.orders(), key=lambda o: o.created_at)
    venue.cancel_errors[first.client_order_id] = GiveUpError("kalshi: order_not_found")
    halted = await desk.halt(ADMIN)
    assert "1 resting order(s) cancelled" in halted.message
    assert f"Could NOT cancel 1: {first.client_order_id} (kalshi: order_not_found)" in halted.message
    assert (await store.order_for_signal(second.signal_id)).status is OrderStatus.CANCELED
    assert (await store.order_for_signal(first.signal_id)).status is OrderStatus.RESTING
    await store.close()


async def test_an_order_that_filled_before_the_cancel_is_said_so(tmp_path):
    desk, venue, store, signals = await two_resting(tmp_path)
    first = sorted(await store.orders(), key=lambda o: o.created_at)[0]
    filled = venue.orders[first.client_order_id].model_copy(update={"status": OrderStatus.FILLED})
    venue.orders[first.client_order_id] = filled
    venue.cancel_ignored = True  # the venue answers with the order as it is: filled
    halted = await desk.halt(ADMIN)
    assert "1 filled before the cancel reached them" in halted.message
    assert (await store.order_for_signal(first.signal_id)).status is OrderStatus.FILLED
    await store.close()


async def test_a_loss_booked_just_before_midnight_counts_against_that_day(tmp_path):
    clock = Clock(datetime(2026, 11, 20, 23, 59, 59, tzinfo=timezone.utc))
    desk, venue, store = await make_desk(tmp_path, venue=two_market_venue(), trading={"daily_loss_limit_fraction": "0.04"},
                                         clock=clock)
    for signal in (await desk.scan()).signals:
        assert (await desk.approve(signal.id, ADMIN)).ok  # two paper positions
    first = (await store.positions(paper=True))[0]
    venue.resolve(first.market_id, "0")  # a loss past the $40 limit; the other market is still open
    asked: list[str] = []

    def time_passes() -> None:  # asking about the second market takes two seconds: past midnight UTC
        asked.append("x")
        if len(asked) == 2:
            clock.now += timedelta(seconds=2)

    venue.on_resolution = time_passes
    report = await desk.settle()
    assert len(asked) == 2 and [s.position.market_id for s in report.settled] == [first.market_id]
    assert report.settled[0].position.realized_pnl < D(-40)
    assert report.halted and "Daily loss limit" in report.halted
    assert await store.trading_state() is TradingState.HALTED
    await store.close()


async def test_two_paths_cancelling_at_once_send_one_cancel_and_say_it_once(tmp_path):
    desk, venue, store, signals = await two_resting(tmp_path)
    venue.cancel_gate = asyncio.Event()
    halting = asyncio.create_task(desk.halt(ADMIN))
    await venue.held.wait()  # the halt is at the venue with its first cancel
    reconciling = asyncio.create_task(desk.reconcile(on_start=True))  # halted: it cancels what rests too
    await asyncio.sleep(0.05)
    venue.cancel_gate.set()
    halted, report = await halting, await reconciling
    assert venue.cancels == 2  # one per order, not one per path
    assert "2 resting order(s) cancelled" in halted.message and "Could NOT" not in halted.message
    assert not report.halt_cancels  # it found them already cancelled: nothing to do, nothing to say twice
    assert all(o.status is OrderStatus.CANCELED for o in await store.orders())
    await store.close()


async def test_a_cancel_the_venue_made_but_the_desk_could_not_record_is_not_called_a_failure(tmp_path):
    desk, venue, store, signals = await two_resting(tmp_path)
    first = sorted(await store.orders(), key=lambda o: o.created_at)[0]
    # The desk recorded 10 filled; the venue's cancel answer then shows none: a contradiction it will not book.
    held = venue.orders[first.client_order_id]
    venue.orders[first.client_order_id] = held.model_copy(update={"fills": (Fill(contracts=D(10), price=D("0.42"),
                                                                                 fee=D("0.17")),)})
    await desk.reconcile(on_start=True)
    assert (await store.order_for_signal(first.signal_id)).filled == 10
    venue.orders[first.client_order_id] = held
    halted = await desk.halt(ADMIN)
    assert "1 resting order(s) cancelled" in halted.message
    assert f"1 cancelled at the venue but not yet recorded here ({first.client_order_id}: " in halted.message
    assert "Could NOT" not in halted.message and venue.orders[first.client_order_id].status is OrderStatus.CANCELED
    await store.close()
