"""The store: migrations from an empty file, WAL, compare-and-set moves, one order per signal."""

from __future__ import annotations

import ast
import asyncio
import re
import sqlite3
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from pipeline.errors import ConfigError, InconsistentVenueReport
from pipeline.models import Fill, Order, OrderResult, OrderStatus, SignalStatus, TradeSignal, utcnow
from pipeline.risk import ALLOW, RiskDecision
from pipeline.store import MIN_SQLITE_VERSION, SCHEMA_VERSION, Store, check_sqlite_version

from .fakes import NOW
from .test_invariants import signal

D = Decimal


def order_for(sig, *, id="o1", paper=True) -> Order:
    now = utcnow()
    return Order(id=id, signal_id=sig.id, client_order_id=sig.client_order_id, venue=sig.market.venue,
                 market_id=sig.market.id, side=sig.side, contracts=sig.contracts, limit_price=sig.limit_price,
                 status=OrderStatus.SUBMITTING, paper=paper, created_at=now, updated_at=now)


async def test_migrates_an_empty_file_to_the_current_schema(tmp_path):
    path = tmp_path / "fresh" / "desk.db"
    store = await Store.open(path)
    assert await store.schema_version() == SCHEMA_VERSION
    assert set(await store.table_names()) >= {"cycles", "estimates", "signals", "orders", "fills", "positions",
                                              "audit_log", "desk_state"}
    await store.close()
    # Opening again is a no-op migration and keeps the data's version.
    again = await Store.open(path)
    assert await again.schema_version() == SCHEMA_VERSION
    await again.close()
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


async def test_refuses_a_database_from_a_newer_version(tmp_path):
    path = tmp_path / "future.db"
    with sqlite3.connect(path) as raw:
        raw.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(RuntimeError, match="newer than this oddsdesk"):
        await Store.open(path)


async def test_reservation_is_written_only_when_the_gate_allows(store):
    denied = await store.reserve_signal(signal(1, D(10)), lambda snap: RiskDecision.deny("no", "because"),
                                        D(1000), NOW)
    assert not denied.allowed and await store.get_signal("sig-1") is None
    assert (await store.reserve_signal(signal(2, D(10)), lambda snap: ALLOW, D(1000), NOW)).allowed
    stored = await store.get_signal("sig-2")
    assert stored.status is SignalStatus.PENDING and stored.cost == D(10)
    snap = await store.risk_snapshot(True, D(1000), NOW)
    assert snap.reserved == D(10) and snap.pending_signals == 1 and "kalshi:KXPROP-2" in snap.markets_in_play


async def test_compare_and_set_moves_once_and_refuses_illegal_moves(store):
    await store.reserve_signal(signal(1, D(5)), lambda snap: ALLOW, D(1000), NOW)
    first = await store.move_signal("sig-1", SignalStatus.PENDING, SignalStatus.APPROVED, actor="UA")
    second = await store.move_signal("sig-1", SignalStatus.PENDING, SignalStatus.REJECTED, actor="UB")
    assert first.moved and not second.moved
    assert second.signal.status is SignalStatus.APPROVED and second.decided_by == "UA"
    with pytest.raises(ValueError):
        await store.move_signal("sig-1", SignalStatus.REJECTED, SignalStatus.APPROVED, actor="UA")
    lost = [e for e in await store.audit_log("sig-1") if e.outcome == "lost_race"]
    assert [e.actor for e in lost] == ["UB"]


async def test_a_signal_can_have_only_one_order(store):
    sig = signal(1, D(5))
    await store.reserve_signal(sig, lambda snap: ALLOW, D(1000), NOW)
    await store.move_signal(sig.id, SignalStatus.PENDING, SignalStatus.APPROVED, actor="UA")
    assert await store.begin_order(order_for(sig), source=SignalStatus.APPROVED, target=None, actor="UA")
    # Same signal, new order id: the UNIQUE signal_id / client_order_id refuse it, nothing changes.
    assert not await store.begin_order(order_for(sig, id="o2"), source=SignalStatus.APPROVED, target=None,
                                       actor="UA")
    assert len(await store.orders()) == 1


async def test_begin_order_rolls_back_the_signal_move_when_the_order_exists(store):
    sig = signal(1, D(5))
    await store.reserve_signal(sig, lambda snap: ALLOW, D(1000), NOW)
    await store.move_signal(sig.id, SignalStatus.PENDING, SignalStatus.APPROVED, actor="UA")
    assert await store.begin_order(order_for(sig, paper=False), source=SignalStatus.APPROVED,
                                   target=SignalStatus.SUBMITTING, actor="UA")
    assert not await store.begin_order(order_for(sig, id="o2", paper=False), source=SignalStatus.SUBMITTING,
                                       target=SignalStatus.UNKNOWN, actor="UA")
    assert (await store.get_signal(sig.id)).status is SignalStatus.SUBMITTING


async def test_outcome_records_fills_position_and_move_together_and_never_double_counts(store):
    sig = signal(1, D(5))
    await store.reserve_signal(sig, lambda snap: ALLOW, D(1000), NOW)
    await store.move_signal(sig.id, SignalStatus.PENDING, SignalStatus.APPROVED, actor="UA")
    await store.begin_order(order_for(sig, paper=False), source=SignalStatus.APPROVED,
                            target=SignalStatus.SUBMITTING, actor="UA")
    partial = OrderResult(client_order_id=sig.client_order_id, venue_order_id="V1", status=OrderStatus.RESTING,
                          fills=(Fill(contracts=D(4), price=D("0.41"), fee=D("0.07")),))
    await store.record_outcome("o1", partial, signal_source=SignalStatus.SUBMITTING,
                               signal_target=SignalStatus.PLACED, actor="UA")
    # A later look-up reports the cumulative fills: only the new 6 are added.
    done = OrderResult(client_order_id=sig.client_order_id, venue_order_id="V1", status=OrderStatus.FILLED,
                       fills=(Fill(contracts=D(4), price=D("0.41"), fee=D("0.07")),
                              Fill(contracts=D(6), price=D("0.42"), fee=D("0.11"))))
    order = await store.record_outcome("o1", done, signal_source=SignalStatus.PLACED,
                                       signal_target=SignalStatus.PLACED, actor="reconcile")
    assert order.filled == D(10) and order.fees == D("0.18") and order.status is OrderStatus.FILLED
    assert [f.contracts for f in await store.fills_for_order("o1")] == [D(4), D(6)]
    [position] = await store.positions(paper=False)
    assert position.contracts == D(10) and position.cost == D("4.16") and position.fees == D("0.18")
    assert (await store.get_signal(sig.id)).status is SignalStatus.PLACED


async def test_expire_due_moves_only_pending_signals_past_their_time(store):
    early, late = signal(1, D(5)), signal(2, D(5))
    late = late.model_copy(update={"expires_at": NOW + timedelta(hours=2)})
    for s in (early, late):
        await store.reserve_signal(s, lambda snap: ALLOW, D(1000), NOW)
    expired = await store.expire_due(NOW + timedelta(hours=1))
    assert [s.id for s in expired] == ["sig-1"]
    assert (await store.get_signal("sig-2")).status is SignalStatus.PENDING


async def test_expire_due_moves_exactly_the_due_pending_signals_and_says_so(store):
    now = NOW + timedelta(hours=1)
    expiries = {1: now - timedelta(minutes=5), 2: now, 3: now + timedelta(seconds=1), 4: now - timedelta(minutes=9),
                5: now - timedelta(minutes=7)}
    for n, at in expiries.items():
        await store.reserve_signal(signal(n, D(5)).model_copy(update={"expires_at": at}), lambda snap: ALLOW,
                                   D(1000), NOW)
    await store.move_signal("sig-4", SignalStatus.PENDING, SignalStatus.APPROVED, actor="UA")  # decided in time
    await store.move_signal("sig-5", SignalStatus.PENDING, SignalStatus.REJECTED, actor="UB")
    expired = await store.expire_due(now, actor="sweeper-1")
    assert [(s.id, s.status, s.status_reason) for s in expired] == [
        ("sig-1", SignalStatus.EXPIRED, "expired before a decision"),
        ("sig-2", SignalStatus.EXPIRED, "expired before a decision")]  # due at its very instant too
    statuses = {n: (await store.get_signal(f"sig-{n}")).status for n in expiries}
    assert statuses == {1: SignalStatus.EXPIRED, 2: SignalStatus.EXPIRED, 3: SignalStatus.PENDING,
                        4: SignalStatus.APPROVED, 5: SignalStatus.REJECTED}
    assert await store.signal_decider("sig-1") == "sweeper-1" and await store.signal_decider("sig-4") == "UA"
    audited = [(e.subject, e.actor, e.outcome) for e in await store.audit_log() if e.action == "signal:expired"]
    assert audited == [("sig-1", "sweeper-1", "ok"), ("sig-2", "sweeper-1", "ok")]
    assert await store.expire_due(now) == []  # nothing is expired twice
    assert (await store.risk_snapshot(True, D(1000), NOW)).reserved == D(10)  # sig-3 and the approved sig-4 hold


async def test_concurrent_sweeps_of_one_database_never_expire_a_signal_twice(tmp_path):
    """Three processes' sweepers (a store each, on one file) race: every due signal expires once, by one of them."""
    stores = [await Store.open(tmp_path / "shared.db") for _ in range(3)]
    for n in range(1, 41):
        due = NOW + timedelta(minutes=10 if n % 4 else 90)  # every fourth one is not due yet
        await stores[0].reserve_signal(signal(n, D(1)).model_copy(update={"expires_at": due}), lambda snap: ALLOW,
                                       D(1000), NOW)
    swept = await asyncio.gather(*(s.expire_due(NOW + timedelta(hours=1), actor=f"sweeper-{i}")
                                   for i, s in enumerate(stores)))
    ids = [signal.id for batch in swept for signal in batch]
    assert sorted(ids) == sorted(f"sig-{n}" for n in range(1, 41) if n % 4) and len(ids) == len(set(ids)) == 30
    expired = [e for e in await stores[1].audit_log() if e.action == "signal:expired"]
    assert len(expired) == 30 and {e.outcome for e in expired} == {"ok"}
    for n, batch in enumerate(swept):  # each says exactly what it moved, and the database agrees on who did
        for moved in batch:
            assert await stores[2].signal_decider(moved.id) == f"sweeper-{n}"
    for s in stores:
        await s.close()


def test_the_sqlite_version_floor_is_checked_by_number():
    for fine in ("3.24.0", "3.35.5", "3.100.0", sqlite3.sqlite_version):
        check_sqlite_version(fine)
    for old in ("3.23.1", "3.8.11", "2.8.17"):
        with pytest.raises(ConfigError, match=rf"SQLite library is version {re.escape(old)}, older than 3\.24\.0"):
            check_sqlite_version(old)


async def test_an_sqlite_older_than_the_store_needs_is_refused_before_anything_is_created(tmp_path):
    path = tmp_path / "new" / "desk.db"
    with pytest.raises(ConfigError) as refused:
        await Store.open(path, sqlite_version="3.22.0")
    message = str(refused.value)
    assert "version 3.22.0, older than 3.24.0" in message and "nothing was started" in message
    assert not (tmp_path / "new").exists()
    store = await Store.open(path, sqlite_version="3.24.0")  # the floor itself is enough
    assert await store.schema_version() == SCHEMA_VERSION
    await store.close()


# SQL features newer than 3.24 (and the upsert, which sets the floor): none may appear in the store's statements
# without the floor (MIN_SQLITE_VERSION) rising with it. The store writes SQL keywords in capitals.
SQLITE_FEATURES = {
    r"\bON CONFLICT\b[^;]*\bDO (UPDATE|NOTHING)\b": (3, 24, 0),
    r"\bRENAME COLUMN\b": (3, 25, 0),
    r"\bOVER\s*\(|\bWINDOW\b": (3, 25, 0),
    r"\bNULLS (FIRST|LAST)\b": (3, 30, 0),
    r"\bFILTER\s*\(\s*WHERE\b": (3, 30, 0),
    r"\bGENERATED ALWAYS\b": (3, 31, 0),
    r"\biif\s*\(": (3, 32, 0),
    r"\bUPDATE\b[^;]*\bSET\b[^;]*\bFROM\b": (3, 33, 0),
    r"\bRETURNING\b": (3, 35, 0),
    r"\bDROP COLUMN\b": (3, 35, 0),
    r"\b(NOT )?MATERIALIZED\b": (3, 35, 0),
    r"\)\s*STRICT\b": (3, 37, 0),
    r"->>?|\bjson\w*\s*\(|\bunixepoch\s*\(": (3, 38, 0),
}


def store_strings() -> list[str]:
    """The string literals of pipeline/store.py (f-strings whole), docstrings left out."""
    tree = ast.parse((Path(__file__).resolve().parents[1] / "pipeline" / "store.py").read_text())
    skip: set[int] = set()
    found: list[str] = []
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) \
                and isinstance(body[0].value, ast.Constant):
            skip.add(id(body[0].value))
        if isinstance(node, ast.JoinedStr):
            skip.update(id(v) for v in node.values)
            found.append("".join(v.value if isinstance(v, ast.Constant) else "?" for v in node.values))
    found += [n.value for n in ast.walk(tree)
              if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in skip]
    return found


def test_the_store_uses_no_sqlite_feature_newer_than_its_floor():
    used = {pattern: version for pattern, version in SQLITE_FEATURES.items()
            if any(re.search(pattern, text) for text in store_strings())}
    assert {p: v for p, v in used.items() if v > MIN_SQLITE_VERSION} == {}
    assert max(used.values()) == MIN_SQLITE_VERSION  # and the floor is no higher than what is used
    returning = next(p for p, v in SQLITE_FEATURES.items() if "RETURNING" in p)
    assert re.search(returning, "UPDATE t SET a=1 WHERE b=2 RETURNING *")  # the detector sees what it looks for


async def test_trading_state_survives_reopening(tmp_path):
    from pipeline.risk import TradingState

    store = await Store.open(tmp_path / "s.db")
    assert await store.trading_state() is TradingState.ACTIVE
    assert await store.set_trading_state(TradingState.HALTED, "UA") is TradingState.ACTIVE
    await store.close()
    store = await Store.open(tmp_path / "s.db")
    assert await store.trading_state() is TradingState.HALTED
    await store.close()


async def test_later_fills_are_the_difference_of_venue_totals_whatever_their_breakdown(store):
    sig = signal(1, D(5))
    await store.reserve_signal(sig, lambda snap: ALLOW, D(1000), NOW)
    await store.move_signal(sig.id, SignalStatus.PENDING, SignalStatus.APPROVED, actor="UA")
    await store.begin_order(order_for(sig, paper=False), source=SignalStatus.APPROVED,
                            target=SignalStatus.SUBMITTING, actor="UA")
    first = OrderResult(client_order_id=sig.client_order_id, status=OrderStatus.RESTING,
                        fills=(Fill(contracts=D(3), price=D("0.40"), fee=D("0.06")),))
    await store.record_outcome("o1", first, signal_source=SignalStatus.SUBMITTING,
                               signal_target=SignalStatus.PLACED, actor="UA")
    # The venue now reports totals as one aggregate: 10 for $4.38 (3 @ 0.40 + 7 @ 0.4543...) and $0.18 fees.
    later = OrderResult(client_order_id=sig.client_order_id, status=OrderStatus.FILLED,
                        fills=(Fill(contracts=D(10), price=D("0.438"), fee=D("0.18")),))
    order = await store.record_outcome("o1", later, signal_source=SignalStatus.PLACED,
                                       signal_target=SignalStatus.PLACED, actor="reconcile")
    [position] = await store.positions(paper=False)
    # 1.20 + (4.38 - 1.20) = 4.38 exactly; fees 0.06 + 0.12
    assert position.contracts == D(10) and position.cost == D("4.380") and position.fees == D("0.18")
    assert order.average_price == D("0.438")
    fills = await store.fills_for_order("o1")
    assert [(f.contracts, f.fee) for f in fills] == [(D(3), D("0.06")), (D(7), D("0.12"))]
    # A venue that reports fewer fills than we hold is an inconsistency, not something to book.
    with pytest.raises(InconsistentVenueReport, match="fewer than"):
        await store.record_outcome("o1", first, signal_source=SignalStatus.PLACED,
                                   signal_target=SignalStatus.PLACED, actor="reconcile")
    assert await store.positions(paper=False) == [position] and len(await store.fills_for_order("o1")) == 2


async def resting_order(store, contracts: str = "10") -> TradeSignal:
    sig = signal(1, D(contracts))
    await store.reserve_signal(sig, lambda snap: ALLOW, D(1000), NOW)
    await store.move_signal(sig.id, SignalStatus.PENDING, SignalStatus.APPROVED, actor="UA")
    await store.begin_order(order_for(sig, paper=False), source=SignalStatus.APPROVED,
                            target=SignalStatus.SUBMITTING, actor="UA")
    return sig


async def test_the_same_fills_shown_at_other_prices_keep_what_was_booked(store):
    """A look-up that shows the order's limit (Polymarket) instead of its trades changes its status only."""
    sig = await resting_order(store)
    traded = OrderResult(client_order_id=sig.client_order_id, status=OrderStatus.RESTING,
                         fills=(Fill(contracts=D(4), price=D("0.42"), fee=D(0)),))
    await store.record_outcome("o1", traded, signal_source=SignalStatus.SUBMITTING, signal_target=SignalStatus.PLACED,
                               actor="UA")
    cancelled = OrderResult(client_order_id=sig.client_order_id, status=OrderStatus.PARTIALLY_FILLED,
                            fills=(Fill(contracts=D(4), price=D("0.44"), fee=D(0)),), prices_are_bounds=True)
    order = await store.record_outcome("o1", cancelled, signal_source=SignalStatus.PLACED,
                                       signal_target=SignalStatus.PLACED, actor="halt")
    assert order.status is OrderStatus.PARTIALLY_FILLED and order.filled == 4 and order.average_price == D("0.42")
    [position] = await store.positions(paper=False)
    assert position.contracts == 4 and position.cost == D("1.68")
    assert len(await store.fills_for_order("o1")) == 1


async def test_new_fills_shown_at_a_bound_are_booked_at_it_and_the_old_ones_keep_their_price(store):
    sig = await resting_order(store)
    traded = OrderResult(client_order_id=sig.client_order_id, status=OrderStatus.RESTING,
                         fills=(Fill(contracts=D(4), price=D("0.42"), fee=D("0.04")),))
    await store.record_outcome("o1", traded, signal_source=SignalStatus.SUBMITTING, signal_target=SignalStatus.PLACED,
                               actor="UA")
    later = OrderResult(client_order_id=sig.client_order_id, status=OrderStatus.FILLED,
                        fills=(Fill(contracts=D(10), price=D("0.44"), fee=D("0.10")),), prices_are_bounds=True)
    order = await store.record_outcome("o1", later, signal_source=SignalStatus.PLACED,
                                       signal_target=SignalStatus.PLACED, actor="reconcile")
    # 4 at 0.42 as traded, then 6 more at the 0.44 shown: 1.68 + 2.64, never above the limit.
    assert order.filled == 10 and order.average_price == D("0.432") and order.fees == D("0.10")
    assert [(f.contracts, f.price, f.fee) for f in await store.fills_for_order("o1")] == [
        (D(4), D("0.42"), D("0.04")), (D(6), D("0.44"), D("0.06"))]


async def test_a_look_up_older_than_a_recorded_cancel_never_takes_the_order_back(store):
    sig = await resting_order(store)
    resting = OrderResult(client_order_id=sig.client_order_id, status=OrderStatus.RESTING)
    await store.record_outcome("o1", resting, signal_source=SignalStatus.SUBMITTING, signal_target=SignalStatus.PLACED,
                               actor="UA")
    cancelled = resting.model_copy(update={"status": OrderStatus.CANCELED})
    await store.record_outcome("o1", cancelled, signal_source=SignalStatus.PLACED, signal_target=SignalStatus.PLACED,
                               actor="kill-switch")
    stale = await store.record_outcome("o1", resting, signal_source=SignalStatus.PLACED,
                                       signal_target=SignalStatus.PLACED, actor="reconciler")
    assert stale.status is OrderStatus.CANCELED


async def test_the_polymarket_journal_replaces_by_client_order_id_and_imports_only_newer_records(tmp_path):
    path = tmp_path / "desk.db"
    store, other = await Store.open(path), await Store.open(path)
    at = utcnow()
    assert await other.polymarket_order("od-1") is None
    await store.record_polymarket_order("od-1", "0xaa", '{"v": 1}', at)
    assert await other.polymarket_order("od-1") == '{"v": 1}'  # another connection (process) reads it at once
    await store.record_polymarket_order("od-1", "0xbb", '{"v": 2}', at)  # the CLOB's id corrects the hash
    assert await other.polymarket_orders() == ['{"v": 2}']
    with sqlite3.connect(path) as raw:
        assert raw.execute("SELECT order_id FROM polymarket_orders").fetchall() == [("0xbb",)]
    # An import (of the old journal file): new rows go in, a row is replaced only by a newer record.
    written = await store.import_polymarket_orders([
        ("od-1", "0xolder", '{"v": 0}', at - timedelta(seconds=1)),
        ("od-2", "0xcc", '{"v": 3}', at),
    ])
    assert written == 1 and await other.polymarket_orders() == ['{"v": 2}', '{"v": 3}']
    assert await store.import_polymarket_orders([("od-2", "0xdd", '{"v": 4}', at + timedelta(seconds=1))]) == 1
    assert await store.import_polymarket_orders([("od-2", "0xdd", '{"v": 4}', at + timedelta(seconds=1))]) == 0
    assert await other.polymarket_order("od-2") == '{"v": 4}'
    # Each journal write is synced to disk (synchronous=FULL for its commit); the connection goes back to NORMAL.
    statements: list[str] = []
    await store._db.set_trace_callback(statements.append)
    await store.record_polymarket_order("od-3", "0xee", '{"v": 5}', at)
    await store._db.set_trace_callback(None)
    assert [s.split(" (")[0] for s in statements] == ["PRAGMA synchronous=FULL", "BEGIN IMMEDIATE",
                                                       "INSERT INTO polymarket_orders", "COMMIT",
                                                       "PRAGMA synchronous=NORMAL"]
    assert (await store._fetchone("PRAGMA synchronous"))[0] == 1
    await store.close()
    await other.close()


async def test_a_database_from_before_decided_at_gains_it_and_old_decisions_have_no_time(tmp_path):
    import sqlite3

    from pipeline.store import MIGRATIONS

    path = tmp_path / "old.db"
    with sqlite3.connect(path) as raw:  # the schema as version 4 left it, with a signal already rejected
        for migration in MIGRATIONS[:4]:
            raw.executescript(migration)
        raw.execute("PRAGMA user_version = 4")
        raw.execute("INSERT INTO signals (id, cycle_id, market_key, venue, side, dry_run, status, reserved, payload,"
                    " decided_by, created_at, expires_at, updated_at) VALUES ('s1', 'c1', 'kalshi:X', 'kalshi', "
                    "'yes', 1, 'rejected', '0', '{}', 'UADMIN1', '', '', '')")
    store = await Store.open(path)
    try:
        assert await store.schema_version() == SCHEMA_VERSION
        assert await store.signal_decision("s1") == ("UADMIN1", None)
        assert await store.signal_decider("s1") == "UADMIN1"
        assert await store.signal_decision("nope") == ("", None)
    finally:
        await store.close()
