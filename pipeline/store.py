"""SQLite state (aiosqlite, WAL): the only SQL in the project.

Rules this module keeps:
- every signal move is one compare-and-set (`UPDATE ... WHERE id=? AND status=?`);
- a reservation is checked and written in one `BEGIN IMMEDIATE` transaction, so two
  cycles or two processes cannot both spend the same dollar;
- an order row (with its UNIQUE client order id, one per signal) is committed before any
  network call; its outcome, fills, position and the signal's move commit together.

Decimals are stored as TEXT and summed in Python: SQLite's SUM would go through floats.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import asynccontextmanager, closing
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiosqlite

from .errors import ConfigError, DeskStoppedError, InconsistentVenueReport, StorageError
from .models import (ZERO, CycleReport, Estimate, Fill, Market, Order, OrderAction, OrderResult, OrderStatus, Position,
                     Resolution, SignalStatus, Side, TradeSignal, Venue, can_move, utcnow)
from .risk import RiskDecision, RiskSnapshot, TradingState

MIGRATIONS: tuple[str, ...] = (
    # 1: the desk core
    """
    CREATE TABLE cycles (
        id TEXT PRIMARY KEY, trigger TEXT NOT NULL, started_by TEXT NOT NULL, dry_run INTEGER NOT NULL,
        started_at TEXT NOT NULL, finished_at TEXT, report TEXT
    );
    CREATE TABLE estimates (
        id INTEGER PRIMARY KEY AUTOINCREMENT, cycle_id TEXT, market_key TEXT NOT NULL, model TEXT NOT NULL,
        source TEXT NOT NULL, model_probability TEXT NOT NULL, market_probability TEXT,
        fair_probability TEXT NOT NULL, payload TEXT NOT NULL, created_at TEXT NOT NULL
    );
    CREATE INDEX estimates_by_market ON estimates (market_key, model, created_at);
    CREATE TABLE signals (
        id TEXT PRIMARY KEY, cycle_id TEXT NOT NULL, market_key TEXT NOT NULL, venue TEXT NOT NULL,
        side TEXT NOT NULL, dry_run INTEGER NOT NULL, status TEXT NOT NULL, status_reason TEXT NOT NULL DEFAULT '',
        reserved TEXT NOT NULL, payload TEXT NOT NULL, decided_by TEXT NOT NULL DEFAULT '',
        message_ref TEXT NOT NULL DEFAULT '', created_at TEXT NOT NULL, expires_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE INDEX signals_by_status ON signals (status, expires_at);
    CREATE TABLE orders (
        id TEXT PRIMARY KEY, signal_id TEXT NOT NULL UNIQUE REFERENCES signals (id),
        client_order_id TEXT NOT NULL UNIQUE, venue TEXT NOT NULL, market_id TEXT NOT NULL, side TEXT NOT NULL,
        contracts TEXT NOT NULL, limit_price TEXT NOT NULL, status TEXT NOT NULL, paper INTEGER NOT NULL,
        venue_order_id TEXT NOT NULL DEFAULT '', filled TEXT NOT NULL DEFAULT '0', average_price TEXT,
        fees TEXT NOT NULL DEFAULT '0', reason TEXT NOT NULL DEFAULT '', created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE INDEX orders_by_status ON orders (status);
    CREATE TABLE fills (
        id INTEGER PRIMARY KEY AUTOINCREMENT, order_id TEXT NOT NULL REFERENCES orders (id),
        contracts TEXT NOT NULL, price TEXT NOT NULL, fee TEXT NOT NULL, created_at TEXT NOT NULL
    );
    CREATE TABLE positions (
        id INTEGER PRIMARY KEY AUTOINCREMENT, venue TEXT NOT NULL, market_id TEXT NOT NULL, side TEXT NOT NULL,
        paper INTEGER NOT NULL, title TEXT NOT NULL DEFAULT '', contracts TEXT NOT NULL, cost TEXT NOT NULL,
        fees TEXT NOT NULL, status TEXT NOT NULL DEFAULT 'open', realized_pnl TEXT NOT NULL DEFAULT '0',
        opened_at TEXT NOT NULL, closed_at TEXT
    );
    CREATE UNIQUE INDEX positions_one_open ON positions (venue, market_id, side, paper) WHERE status = 'open';
    CREATE TABLE audit_log (
        id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL,
        subject TEXT NOT NULL DEFAULT '', outcome TEXT NOT NULL, detail TEXT NOT NULL DEFAULT ''
    );
    CREATE TABLE desk_state (key TEXT PRIMARY KEY, value TEXT NOT NULL, updated_at TEXT NOT NULL,
                             updated_by TEXT NOT NULL);
    """,
    # 2: the analyst's estimate cache and its spending ledger
    """
    CREATE TABLE estimate_cache (
        market_key TEXT NOT NULL, model TEXT NOT NULL, prompt_version TEXT NOT NULL, rules_hash TEXT NOT NULL,
        market_price TEXT, payload TEXT NOT NULL, created_at TEXT NOT NULL,
        PRIMARY KEY (market_key, model, prompt_version)
    );
    CREATE TABLE llm_ledger (
        id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, cycle_id TEXT NOT NULL, market_key TEXT NOT NULL,
        model TEXT NOT NULL, input_tokens INTEGER NOT NULL, output_tokens INTEGER NOT NULL,
        cache_write_tokens INTEGER NOT NULL, cache_read_tokens INTEGER NOT NULL, web_searches INTEGER NOT NULL,
        batch INTEGER NOT NULL, cost_usd TEXT NOT NULL, outcome TEXT NOT NULL
    );
    CREATE INDEX llm_ledger_by_time ON llm_ledger (at);
    """,
    # 3: an order's exact cumulative cost, so later fills are recorded as differences of venue totals
    """
    ALTER TABLE orders ADD COLUMN cost TEXT NOT NULL DEFAULT '0';
    """,
    # 4: shared by every process on the database: the Polymarket order journal (what was signed, before it was
    # sent) and the signatures of Slack requests already served (a replay is refused)
    """
    CREATE TABLE polymarket_orders (
        client_order_id TEXT PRIMARY KEY, order_id TEXT NOT NULL, payload TEXT NOT NULL, recorded_at TEXT NOT NULL
    );
    CREATE INDEX polymarket_orders_by_hash ON polymarket_orders (order_id);
    CREATE TABLE seen_requests (signature TEXT PRIMARY KEY, seen_at TEXT NOT NULL);
    CREATE INDEX seen_requests_by_time ON seen_requests (seen_at);
    """,
    # 5: when a signal left pending (beside who moved it), so a late click is told when it was decided
    """
    ALTER TABLE signals ADD COLUMN decided_at TEXT NOT NULL DEFAULT '';
    """,
    # 6: the track record: what each estimate was made against, what followed it, and how its market resolved
    """
    ALTER TABLE estimates ADD COLUMN venue TEXT NOT NULL DEFAULT '';
    ALTER TABLE estimates ADD COLUMN market_id TEXT NOT NULL DEFAULT '';
    ALTER TABLE estimates ADD COLUMN title TEXT NOT NULL DEFAULT '';
    ALTER TABLE estimates ADD COLUMN category TEXT NOT NULL DEFAULT '';
    ALTER TABLE estimates ADD COLUMN prompt_version TEXT NOT NULL DEFAULT '';
    ALTER TABLE estimates ADD COLUMN close_time TEXT NOT NULL DEFAULT '';
    ALTER TABLE estimates ADD COLUMN hours_to_close REAL;
    ALTER TABLE estimates ADD COLUMN dry_run INTEGER NOT NULL DEFAULT 1;
    ALTER TABLE estimates ADD COLUMN followed TEXT NOT NULL DEFAULT 'none';
    ALTER TABLE estimates ADD COLUMN outcome TEXT;
    ALTER TABLE estimates ADD COLUMN resolved_at TEXT;
    ALTER TABLE estimates ADD COLUMN lead_hours REAL;
    ALTER TABLE estimates ADD COLUMN outcome_checked_at TEXT;
    UPDATE estimates SET venue = substr(market_key, 1, instr(market_key, ':') - 1),
        market_id = substr(market_key, instr(market_key, ':') + 1) WHERE venue = '' AND instr(market_key, ':') > 0;
    CREATE INDEX estimates_unscored ON estimates (outcome, close_time);
    CREATE INDEX estimates_by_venue_market ON estimates (venue, market_id);
    """,
    # 7: exits. Signals and orders say which way they trade; an exit signal names the position it closes. Realised
    # P&L becomes a ledger, one row per exit fill and per settlement, so a partial exit is booked when it fills
    # (bankroll and today's loss read the ledger); the closed positions' P&L so far is carried over as settlements.
    """
    ALTER TABLE signals ADD COLUMN action TEXT NOT NULL DEFAULT 'buy';
    ALTER TABLE signals ADD COLUMN position_id INTEGER;
    ALTER TABLE orders ADD COLUMN action TEXT NOT NULL DEFAULT 'buy';
    CREATE INDEX signals_by_position ON signals (position_id, status);
    CREATE TABLE realized (
        id INTEGER PRIMARY KEY AUTOINCREMENT, position_id INTEGER NOT NULL REFERENCES positions (id),
        order_id TEXT REFERENCES orders (id), paper INTEGER NOT NULL, kind TEXT NOT NULL,
        contracts TEXT NOT NULL DEFAULT '', proceeds TEXT NOT NULL DEFAULT '', fees TEXT NOT NULL DEFAULT '',
        basis TEXT NOT NULL DEFAULT '', pnl TEXT NOT NULL, at TEXT NOT NULL
    );
    CREATE INDEX realized_by_time ON realized (paper, at);
    INSERT INTO realized (position_id, paper, kind, contracts, pnl, at)
        SELECT id, paper, 'settlement', contracts, realized_pnl, closed_at FROM positions
        WHERE status = 'closed' AND closed_at IS NOT NULL;
    """,
)

SCHEMA_VERSION = len(MIGRATIONS)

# The oldest SQLite library the store works with: its newest feature is the upsert (`INSERT ... ON CONFLICT (...)
# DO UPDATE`, 3.24.0); the rest is older (WAL 3.7.0, partial indexes 3.8.0, `wal_checkpoint(TRUNCATE)` 3.8.8).
# Nothing newer, RETURNING (3.35.0) included: tests/test_store.py checks the statements against this floor.
MIN_SQLITE_VERSION = (3, 24, 0)


def check_sqlite_version(found: str) -> None:
    """Refuse, in a sentence, an SQLite library (`sqlite3.sqlite_version`, e.g. "3.22.0") older than the store
    needs: otherwise the desk would start and fail later, statement by statement."""
    parts = re.findall(r"\d+", found)[:3]
    version = tuple(int(p) for p in parts) + (0,) * (3 - len(parts))
    if version < MIN_SQLITE_VERSION:
        needed = ".".join(map(str, MIN_SQLITE_VERSION))
        raise ConfigError(f"config error: storage: this Python's SQLite library is version {found}, older than "
                          f"{needed}, the oldest the desk's database works with (its upserts need it); nothing was "
                          f"started. Run oddsdesk on a Python whose sqlite3 module uses SQLite {needed} or newer.")


def _unavailable(error: sqlite3.OperationalError) -> StorageError:
    return StorageError(f"the desk's database is unavailable ({error}); nothing of this step was written")


def ts(value: datetime) -> str:
    """Fixed-width UTC text, so comparing strings compares times."""
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_ts(value: str) -> datetime:
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)


def _dec(value: Any) -> Decimal:
    return Decimal(str(value))


def _decided_at(row: sqlite3.Row) -> datetime | None:
    """A signal row's decided_at: empty while pending, and on rows decided before the column existed."""
    return parse_ts(row["decided_at"]) if row["decided_at"] else None


@dataclass(frozen=True)
class AuditEntry:
    at: datetime
    actor: str
    action: str
    subject: str
    outcome: str
    detail: str


@dataclass(frozen=True)
class Transition:
    """The result of one compare-and-set on a signal."""

    moved: bool
    signal: TradeSignal | None  # as it is now (after the move, or as found when it did not move)
    decided_by: str = ""
    decided_at: datetime | None = None  # when it left pending; None while pending or for rows older than that


FORECAST_COLUMNS = ("cycle_id, venue, market_id, market_key, title, category, model, prompt_version, source,"
                    " model_probability, market_probability, fair_probability, hours_to_close, dry_run, followed,"
                    " outcome, created_at, resolved_at, lead_hours, close_time")


class ExitInFlight(Exception):
    """A position could not be settled now: an exit of it may be selling its contracts (Store.settle_position)."""


class Store:
    def __init__(self, db: aiosqlite.Connection, path: str) -> None:
        self._db = db
        self.path = path
        self._lock = asyncio.Lock()  # one connection: transactions must not interleave

    @classmethod
    async def open(cls, path: str | Path, *, sqlite_version: str = sqlite3.sqlite_version) -> "Store":
        """Open (creating and migrating as needed) the database at `path`. `sqlite_version` is the library's,
        checked before anything is created."""
        check_sqlite_version(sqlite_version)
        path = str(path)
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        db = await aiosqlite.connect(path, isolation_level=None)  # we issue BEGIN ourselves
        db.row_factory = aiosqlite.Row
        await db.execute("PRAGMA journal_mode=WAL")
        await db.execute("PRAGMA busy_timeout=5000")
        await db.execute("PRAGMA foreign_keys=ON")
        await db.execute("PRAGMA synchronous=NORMAL")
        store = cls(db, path)
        try:
            await store._migrate()
        except BaseException:
            await db.close()  # do not leave the connection's thread behind
            raise
        return store

    async def close(self) -> None:
        await self._db.close()

    async def __aenter__(self) -> "Store":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @asynccontextmanager
    async def _tx(self, mode: str = "IMMEDIATE", *, synced: bool = False) -> AsyncIterator[aiosqlite.Connection]:
        """One transaction: IMMEDIATE takes the write lock up front (no upgrade deadlocks); DEFERRED only reads.

        `synced`: the commit reaches the disk before it returns. WAL with synchronous=NORMAL survives a crash of
        the process but may lose its last commits to a power cut; FULL syncs the WAL at this commit.
        """
        async with self._lock:
            try:
                if synced:
                    await self._db.execute("PRAGMA synchronous=FULL")  # not allowed inside a transaction
                try:
                    await self._db.execute(f"BEGIN {mode}")
                except sqlite3.OperationalError as e:
                    raise _unavailable(e) from e
                try:
                    yield self._db
                    await self._db.execute("COMMIT")
                except BaseException as e:
                    if self._db.in_transaction:
                        await self._db.execute("ROLLBACK")
                    if isinstance(e, sqlite3.OperationalError):
                        raise _unavailable(e) from e
                    raise
            finally:
                if synced:
                    await self._db.execute("PRAGMA synchronous=NORMAL")

    async def _fetchall(self, sql: str, params: Iterable[Any] = ()) -> list[sqlite3.Row]:
        async with self._lock:
            try:
                async with self._db.execute(sql, tuple(params)) as cursor:
                    return list(await cursor.fetchall())
            except sqlite3.OperationalError as e:
                raise _unavailable(e) from e

    async def _fetchone(self, sql: str, params: Iterable[Any] = ()) -> sqlite3.Row | None:
        rows = await self._fetchall(sql, params)
        return rows[0] if rows else None

    # -- schema -------------------------------------------------------------------------

    async def schema_version(self) -> int:
        row = await self._fetchone("PRAGMA user_version")
        return int(row[0]) if row else 0

    async def _migrate(self) -> None:
        async with self._tx() as db:
            async with db.execute("PRAGMA user_version") as cursor:
                row = await cursor.fetchone()
            current = int(row[0]) if row else 0
            if current > SCHEMA_VERSION:
                raise RuntimeError(f"{self.path} has schema version {current}, newer than this oddsdesk "
                                   f"({SCHEMA_VERSION}); upgrade oddsdesk")
            for version in range(current + 1, SCHEMA_VERSION + 1):
                for statement in MIGRATIONS[version - 1].split(";"):
                    if statement.strip():
                        await db.execute(statement)
                await db.execute(f"PRAGMA user_version = {version}")

    async def table_names(self) -> list[str]:
        rows = await self._fetchall("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name")
        return [r["name"] for r in rows if not r["name"].startswith("sqlite_")]

    # -- desk state and audit ---------------------------------------------------------------

    async def trading_state(self) -> TradingState:
        row = await self._fetchone("SELECT value FROM desk_state WHERE key='trading_state'")
        return TradingState(row["value"]) if row else TradingState.ACTIVE

    @staticmethod
    async def _state_in(db: aiosqlite.Connection) -> TradingState:
        """The trading state as this transaction sees it."""
        async with db.execute("SELECT value FROM desk_state WHERE key='trading_state'") as cursor:
            row = await cursor.fetchone()
        return TradingState(row["value"]) if row else TradingState.ACTIVE

    async def set_trading_state(self, state: TradingState, actor: str, reason: str = "") -> TradingState:
        """Set the state and audit it; returns the state it replaced."""
        now = ts(utcnow())
        async with self._tx() as db:
            previous = await self._state_in(db)
            await db.execute(
                "INSERT INTO desk_state (key, value, updated_at, updated_by) VALUES ('trading_state', ?, ?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value=excluded.value, updated_at=excluded.updated_at, "
                "updated_by=excluded.updated_by", (state.value, now, actor))
            await self._audit(db, actor, "set_state", state.value, "ok", reason or f"was {previous.value}")
        return previous

    async def halt_for_daily_loss(self, day: str, reason: str, actor: str = "risk") -> bool:
        """HALT the desk for the day's loss, once per day: a person who resumes it is not overruled.

        Returns whether this call halted it (False: already halted, or halted and resumed today).
        """
        now = ts(utcnow())
        async with self._tx() as db:
            async with db.execute("SELECT key, value FROM desk_state WHERE key IN ('trading_state', 'loss_halt_day')"
                                  ) as cursor:
                held = {r["key"]: r["value"] for r in await cursor.fetchall()}
            if held.get("trading_state") == TradingState.HALTED.value or held.get("loss_halt_day") == day:
                return False
            for key, value in (("trading_state", TradingState.HALTED.value), ("loss_halt_day", day)):
                await db.execute(
                    "INSERT INTO desk_state (key, value, updated_at, updated_by) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT (key) DO UPDATE SET value=excluded.value, updated_at=excluded.updated_at, "
                    "updated_by=excluded.updated_by", (key, value, now, actor))
            await self._audit(db, actor, "set_state", TradingState.HALTED.value, "ok", reason)
        return True

    # Orders to a venue stop when it answers in a way the desk was not built for (a retired endpoint, an error code
    # it has never seen): one row per venue, until an authorized person resumes it. Kept across restarts.
    STOP_PREFIX = "orders_stopped:"

    async def stopped_venues(self) -> dict[str, str]:
        """Venue -> why orders to it are stopped."""
        rows = await self._fetchall("SELECT key, value FROM desk_state WHERE key LIKE ?", (f"{self.STOP_PREFIX}%",))
        return {r["key"][len(self.STOP_PREFIX):]: r["value"] for r in rows}

    async def stop_venue(self, venue: str, reason: str, actor: str) -> bool:
        """Stop orders to `venue`; True when this call stopped them (so the channel is told once)."""
        key, now = f"{self.STOP_PREFIX}{venue}", ts(utcnow())
        async with self._tx() as db:
            async with db.execute("SELECT 1 FROM desk_state WHERE key=?", (key,)) as cursor:
                if await cursor.fetchone() is not None:
                    return False
            await db.execute("INSERT INTO desk_state (key, value, updated_at, updated_by) VALUES (?, ?, ?, ?)",
                             (key, reason, now, actor))
            await self._audit(db, actor, "stop_orders", venue, "ok", reason)
        return True

    async def resume_venue(self, venue: str, actor: str) -> str:
        """Let orders go to `venue` again; returns why they had been stopped ("" if they were not)."""
        key = f"{self.STOP_PREFIX}{venue}"
        async with self._tx() as db:
            async with db.execute("SELECT value FROM desk_state WHERE key=?", (key,)) as cursor:
                row = await cursor.fetchone()
            if row is None:
                return ""
            await db.execute("DELETE FROM desk_state WHERE key=?", (key,))
            await self._audit(db, actor, "resume_orders", venue, "ok", f"had been stopped: {row['value']}")
        return str(row["value"])

    # The offline demo's mark: `oddsdesk demo` deletes the database at its --db path only when it carries this.
    DEMO_KEY = "demo_database"
    DEMO_MARK = "made by oddsdesk demo; the next demo run with this path deletes it"

    async def mark_demo(self) -> None:
        """Mark this database as the offline demo's own, checkpointed into the main file (what
        `is_demo_database` reads)."""
        async with self._tx() as db:
            await db.execute("INSERT OR IGNORE INTO desk_state (key, value, updated_at, updated_by) "
                             "VALUES (?, ?, ?, 'demo')", (self.DEMO_KEY, self.DEMO_MARK, ts(utcnow())))
        if self.path != ":memory:":
            await self._fetchall("PRAGMA wal_checkpoint(TRUNCATE)")

    @classmethod
    def is_demo_database(cls, path: str | Path) -> bool:
        """Whether the file at `path` is a database `mark_demo` marked; anything else (another desk's database,
        a file of another kind, a directory, nothing) is False. Opened immutable: reading it writes nothing,
        not even a -wal or -shm beside a file that is not ours."""
        try:
            uri = Path(path).resolve(strict=True).as_uri() + "?mode=ro&immutable=1"
            with closing(sqlite3.connect(uri, uri=True)) as db:
                row = db.execute("SELECT value FROM desk_state WHERE key=?", (cls.DEMO_KEY,)).fetchone()
        except (OSError, sqlite3.Error):
            return False
        return row is not None and row[0] == cls.DEMO_MARK

    @staticmethod
    async def _audit(db: aiosqlite.Connection, actor: str, action: str, subject: str, outcome: str,
                     detail: str = "") -> None:
        await db.execute("INSERT INTO audit_log (at, actor, action, subject, outcome, detail) VALUES (?,?,?,?,?,?)",
                         (ts(utcnow()), actor, action, subject, outcome, detail))

    async def remember_request(self, signature: str, now: datetime, window: timedelta) -> bool:
        """Remember a signed request; False if it was already seen within `window` (a replay)."""
        async with self._tx() as db:
            await db.execute("DELETE FROM seen_requests WHERE seen_at<?", (ts(now - window),))
            async with db.execute("INSERT INTO seen_requests (signature, seen_at) VALUES (?, ?) "
                                  "ON CONFLICT (signature) DO NOTHING", (signature, ts(now))) as cursor:
                return cursor.rowcount == 1

    async def audit(self, actor: str, action: str, subject: str, outcome: str, detail: str = "") -> None:
        async with self._tx() as db:
            await self._audit(db, actor, action, subject, outcome, detail)

    async def audit_log(self, subject: str | None = None) -> list[AuditEntry]:
        sql = "SELECT * FROM audit_log" + (" WHERE subject=?" if subject else "") + " ORDER BY id"
        rows = await self._fetchall(sql, (subject,) if subject else ())
        return [AuditEntry(parse_ts(r["at"]), r["actor"], r["action"], r["subject"], r["outcome"], r["detail"])
                for r in rows]

    # -- cycles and estimates ---------------------------------------------------------------

    async def start_cycle(self, report: CycleReport) -> None:
        async with self._tx() as db:
            await db.execute("INSERT INTO cycles (id, trigger, started_by, dry_run, started_at) VALUES (?,?,?,?,?)",
                             (report.cycle_id, report.trigger, report.started_by, int(report.dry_run),
                              ts(report.started_at)))

    async def finish_cycle(self, report: CycleReport) -> None:
        async with self._tx() as db:
            await db.execute("UPDATE cycles SET finished_at=?, report=? WHERE id=?",
                             (ts(report.finished_at or utcnow()), report.model_dump_json(), report.cycle_id))

    async def cycle_report(self, cycle_id: str) -> CycleReport | None:
        row = await self._fetchone("SELECT report FROM cycles WHERE id=?", (cycle_id,))
        return CycleReport.model_validate_json(row["report"]) if row and row["report"] else None

    async def last_cycle_report(self) -> CycleReport | None:
        row = await self._fetchone("SELECT report FROM cycles WHERE report IS NOT NULL "
                                   "ORDER BY started_at DESC LIMIT 1")
        return CycleReport.model_validate_json(row["report"]) if row else None

    async def save_estimates(self, cycle_id: str, estimates: Iterable[Estimate],
                             markets: Mapping[str, Market] | None = None, *, dry_run: bool = True,
                             at: datetime | None = None, backtest_lead_hours: float | None = None) -> None:
        """Each estimate with what it was made against (the market, its mid, the hours left at `at`, the cycle's
        time), for the record."""
        rows = []
        for e in estimates:
            market = (markets or {}).get(e.market_key)
            hours = ((market.close_time - (at or e.created_at)).total_seconds() / 3600 if market is not None
                     else None)
            rows.append((cycle_id, e.market_key, e.model, e.source, str(e.model_probability),
                         None if e.market_probability is None else str(e.market_probability), str(e.fair_probability),
                         e.model_dump_json(), ts(e.created_at), market.venue.value if market else "",
                         market.id if market else "", market.title if market else "",
                         market.category if market else "", e.prompt_version,
                         ts(market.close_time) if market else "", hours, int(dry_run), backtest_lead_hours))
        if not rows:
            return
        async with self._tx() as db:
            await db.executemany(
                "INSERT INTO estimates (cycle_id, market_key, model, source, model_probability, market_probability,"
                " fair_probability, payload, created_at, venue, market_id, title, category, prompt_version,"
                " close_time, hours_to_close, dry_run, lead_hours) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                rows)

    async def mark_followed(self, cycle_id: str, market_keys: Iterable[str], what: str) -> None:
        """What followed a cycle's estimates: a signal, then an order (never downgraded)."""
        order = {"none": 0, "signal": 1, "order": 2}
        keys = list(market_keys)
        if what not in order or not keys:
            return
        lower = [k for k, rank in order.items() if rank < order[what]]
        async with self._tx() as db:
            await db.execute(
                f"UPDATE estimates SET followed=? WHERE cycle_id=? AND market_key IN ({','.join('?' * len(keys))})"
                f" AND followed IN ({','.join('?' * len(lower))})", (what, cycle_id, *keys, *lower))

    async def unscored_markets(self, now: datetime, limit: int) -> list[tuple[str, str]]:
        """(venue, market id) of closed markets with estimates still waiting for their resolution, oldest first."""
        rows = await self._fetchall(
            "SELECT venue, market_id, MIN(close_time) AS closed, MAX(COALESCE(outcome_checked_at, '')) AS checked"
            " FROM estimates WHERE outcome IS NULL AND venue != '' AND close_time != '' AND close_time <= ?"
            " GROUP BY venue, market_id ORDER BY checked, closed LIMIT ?",
            (ts(now), limit))
        return [(r["venue"], r["market_id"]) for r in rows]

    async def score_market(self, venue: str, market_id: str, yes_payout: Decimal, at: datetime, *,
                           cycle_id: str | None = None) -> int:
        """Score the estimates of a resolved market (only one run's with `cycle_id`: a backtest's answer key must
        never score the desk's own estimates); returns how many were scored."""
        only = " AND cycle_id=?" if cycle_id is not None else ""
        params = (str(yes_payout), ts(at), venue, market_id, *((cycle_id,) if cycle_id is not None else ()))
        async with self._tx() as db:
            async with db.execute("UPDATE estimates SET outcome=?, resolved_at=? WHERE venue=? AND market_id=?"
                                  f" AND outcome IS NULL{only}", params) as cursor:
                return cursor.rowcount

    async def checked_for_outcome(self, venue: str, market_id: str, at: datetime) -> None:
        """A market asked about and not resolved yet goes to the back of the queue (no stuck market starves the rest)."""
        async with self._tx() as db:
            await db.execute("UPDATE estimates SET outcome_checked_at=? WHERE venue=? AND market_id=? AND outcome IS"
                             " NULL", (ts(at), venue, market_id))

    async def has_cycle_estimates(self) -> bool:
        """Does this database hold the desk's own estimates (not only backtests)?"""
        row = await self._fetchone("SELECT 1 AS x FROM estimates WHERE cycle_id IS NULL OR cycle_id NOT LIKE"
                                   " 'backtest-%' LIMIT 1")
        return row is not None

    async def forecast_counts(self) -> tuple[int, int, int]:
        """(estimates, resolved estimates, closed positions): the record is rebuilt only when these change."""
        row = await self._fetchone("SELECT COUNT(*) AS n, COUNT(outcome) AS scored,"
                                   " (SELECT COUNT(*) FROM positions WHERE status = 'closed') AS closed FROM estimates")
        return (row["n"], row["scored"], row["closed"]) if row else (0, 0, 0)

    async def forecasts(self) -> list[dict[str, Any]]:
        """Every estimate with what the record needs, oldest first (the record module scores them)."""
        rows = await self._fetchall(f"SELECT {FORECAST_COLUMNS} FROM estimates ORDER BY created_at, id")
        return [dict(r) for r in rows]

    async def trade_results(self) -> list[dict[str, Any]]:
        """Each closed position's realised P&L with the estimate that led to its order (the latest one followed by
        an order in that market), so the record can cut P&L the way it cuts scores."""
        rows = await self._fetchall(
            "SELECT p.venue, p.market_id, p.paper, p.realized_pnl, p.closed_at, e.category, e.model,"
            " e.prompt_version, e.hours_to_close FROM positions p LEFT JOIN estimates e ON e.id = ("
            "  SELECT id FROM estimates WHERE venue = p.venue AND market_id = p.market_id AND followed = 'order'"
            "  AND dry_run = p.paper AND created_at <= p.opened_at ORDER BY created_at DESC, id DESC LIMIT 1)"
            " WHERE p.status = 'closed' ORDER BY p.closed_at, p.id")
        return [dict(r) for r in rows]

    async def backtested(self, model: str, prompt_version: str, lead_hours: float) -> set[tuple[str, str]]:
        """(venue, market id) a backtest already asked at this lead with this model and prompt: not asked again."""
        rows = await self._fetchall("SELECT DISTINCT venue, market_id FROM estimates WHERE cycle_id LIKE 'backtest-%'"
                                    " AND model=? AND prompt_version=? AND lead_hours=?",
                                    (model, prompt_version, lead_hours))
        return {(r["venue"], r["market_id"]) for r in rows}

    async def backtest_forecasts(self, model: str, prompt_version: str, lead_hours: float) -> list[dict[str, Any]]:
        """The backtests' estimates at this lead, model and prompt, whichever run made them."""
        rows = await self._fetchall(f"SELECT {FORECAST_COLUMNS} FROM estimates WHERE cycle_id LIKE 'backtest-%' AND"
                                    " model=? AND prompt_version=? AND lead_hours=? ORDER BY created_at, id",
                                    (model, prompt_version, lead_hours))
        return [dict(r) for r in rows]

    async def latest_estimate(self, market_key: str, since: datetime) -> Estimate | None:
        """The desk's own newest estimate of a market made since `since` (never a backtest's), or None."""
        row = await self._fetchone("SELECT payload FROM estimates WHERE market_key=? AND created_at>=? AND (cycle_id IS"
                                   " NULL OR cycle_id NOT LIKE 'backtest-%') ORDER BY created_at DESC, id DESC LIMIT 1",
                                   (market_key, ts(since)))
        return Estimate.model_validate_json(row["payload"]) if row else None

    async def estimates_for_cycle(self, cycle_id: str) -> list[Estimate]:
        rows = await self._fetchall("SELECT payload FROM estimates WHERE cycle_id=? ORDER BY id", (cycle_id,))
        return [Estimate.model_validate_json(r["payload"]) for r in rows]

    # -- the analyst's cache and ledger --------------------------------------------------------

    async def cached_estimate(self, market_key: str, model: str, prompt_version: str
                              ) -> tuple[Estimate, str, Decimal | None] | None:
        """(estimate, rules hash, market price then) of the last analysis, if any."""
        row = await self._fetchone("SELECT payload, rules_hash, market_price FROM estimate_cache "
                                   "WHERE market_key=? AND model=? AND prompt_version=?",
                                   (market_key, model, prompt_version))
        if row is None:
            return None
        price = None if row["market_price"] is None else _dec(row["market_price"])
        return Estimate.model_validate_json(row["payload"]), row["rules_hash"], price

    async def cache_estimate(self, estimate: Estimate, prompt_version: str, rules_hash: str,
                             market_price: Decimal | None) -> None:
        async with self._tx() as db:
            await db.execute(
                "INSERT INTO estimate_cache (market_key, model, prompt_version, rules_hash, market_price, payload,"
                " created_at) VALUES (?,?,?,?,?,?,?) ON CONFLICT (market_key, model, prompt_version) DO UPDATE SET"
                " rules_hash=excluded.rules_hash, market_price=excluded.market_price, payload=excluded.payload,"
                " created_at=excluded.created_at",
                (estimate.market_key, estimate.model, prompt_version, rules_hash,
                 None if market_price is None else str(market_price), estimate.model_dump_json(),
                 ts(estimate.created_at)))

    async def record_llm_call(self, *, cycle_id: str, market_key: str, model: str, input_tokens: int,
                              output_tokens: int, cache_write_tokens: int, cache_read_tokens: int, web_searches: int,
                              batch: bool, cost_usd: Decimal, outcome: str, at: datetime | None = None) -> None:
        async with self._tx() as db:
            await db.execute(
                "INSERT INTO llm_ledger (at, cycle_id, market_key, model, input_tokens, output_tokens,"
                " cache_write_tokens, cache_read_tokens, web_searches, batch, cost_usd, outcome)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (ts(at or utcnow()), cycle_id, market_key, model, input_tokens, output_tokens, cache_write_tokens,
                 cache_read_tokens, web_searches, int(batch), str(cost_usd), outcome))

    async def llm_spend_since(self, since: datetime) -> Decimal:
        rows = await self._fetchall("SELECT cost_usd FROM llm_ledger WHERE at>=?", (ts(since),))
        return sum((_dec(r["cost_usd"]) for r in rows), ZERO)

    async def llm_tokens(self, cycle_id: str) -> dict[str, int]:
        rows = await self._fetchall("SELECT input_tokens, output_tokens, cache_write_tokens, cache_read_tokens, "
                                    "web_searches FROM llm_ledger WHERE cycle_id=?", (cycle_id,))
        keys = ("input_tokens", "output_tokens", "cache_write_tokens", "cache_read_tokens", "web_searches")
        return {k: sum(r[k] for r in rows) for k in keys} | {"calls": len(rows)}

    # -- signals ------------------------------------------------------------------------

    @staticmethod
    def _signal(row: sqlite3.Row) -> TradeSignal:
        signal = TradeSignal.model_validate_json(row["payload"])
        return signal.model_copy(update={"status": SignalStatus(row["status"]), "status_reason": row["status_reason"]})

    async def _snapshot(self, db: aiosqlite.Connection, dry_run: bool, initial_bankroll: Decimal,
                        day_start: datetime) -> RiskSnapshot:
        paper = int(dry_run)
        holding = tuple(s.value for s in SignalStatus if s.holds_reservation)
        marks = ",".join("?" * len(holding))
        # Entries only: an exit holds no capital, and its market is in play through the position it closes.
        async with db.execute(f"SELECT market_key, reserved FROM signals WHERE dry_run=? AND action='buy' AND "
                              f"status IN ({marks})", (paper, *holding)) as cursor:
            held = list(await cursor.fetchall())
        async with db.execute("SELECT venue, market_id, cost, fees FROM positions WHERE paper=? AND status='open'",
                              (paper,)) as cursor:
            open_positions = list(await cursor.fetchall())
        async with db.execute("SELECT pnl, at FROM realized WHERE paper=?", (paper,)) as cursor:
            booked = list(await cursor.fetchall())
        # Every order that can still fill is in play: resting, unknown, submitting. One whose signal still holds
        # its reservation is covered by it; any other (a GTC order resting after its signal was placed) holds
        # the rest of its contracts at the limit, with the fee at its worst.
        live = tuple(o.value for o in OrderStatus if not o.is_final)
        # A sell can only return money, so only buys count.
        async with db.execute(f"SELECT o.venue, o.market_id, o.contracts, o.filled, o.limit_price, s.status AS "
                              f"signal_status, s.payload FROM orders o JOIN signals s ON s.id = o.signal_id "
                              f"WHERE o.paper=? AND o.action='buy' AND o.status IN ({','.join('?' * len(live))})",
                              (paper, *live)) as cursor:
            orders = list(await cursor.fetchall())
        state = await self._state_in(db)
        realized = sum((_dec(r["pnl"]) for r in booked), ZERO)
        today = ts(day_start)
        realized_today = sum((_dec(r["pnl"]) for r in booked if r["at"] >= today), ZERO)
        exposure = sum((_dec(p["cost"]) + _dec(p["fees"]) for p in open_positions), ZERO)
        counted = {r["market_key"] for r in held} | {f"{p['venue']}:{p['market_id']}" for p in open_positions}
        uncovered = [o for o in orders if o["signal_status"] not in holding]
        for order in uncovered:
            remaining = _dec(order["contracts"]) - _dec(order["filled"])
            if remaining > 0:
                fees = TradeSignal.model_validate_json(order["payload"]).market.fees
                exposure += fees.worst_order_cost(remaining, _dec(order["limit_price"]))
        order_markets = {f"{o['venue']}:{o['market_id']}" for o in uncovered} - counted
        return RiskSnapshot(
            state=state,
            bankroll=initial_bankroll + realized,
            reserved=sum((_dec(r["reserved"]) for r in held), ZERO),
            exposure=exposure,
            open_positions=len(open_positions),
            pending_signals=len(held),
            live_orders=len(order_markets),
            markets_in_play=frozenset(counted | order_markets),
            realized_today=realized_today,
        )

    async def risk_snapshot(self, dry_run: bool, initial_bankroll: Decimal, day_start: datetime) -> RiskSnapshot:
        async with self._tx("DEFERRED") as db:  # a consistent read; another process's write lock does not block it
            return await self._snapshot(db, dry_run, initial_bankroll, day_start)

    async def reserve_signal(self, signal: TradeSignal, gate: Callable[[RiskSnapshot], RiskDecision],
                             initial_bankroll: Decimal, day_start: datetime) -> RiskDecision:
        """Judge the signal against a snapshot and, if allowed, insert it as pending: atomically."""
        now = ts(utcnow())
        async with self._tx() as db:
            decision = gate(await self._snapshot(db, signal.dry_run, initial_bankroll, day_start))
            if decision.allowed:
                await self._insert_signal(db, signal, now)
        return decision

    @staticmethod
    async def _insert_signal(db: aiosqlite.Connection, signal: TradeSignal, now: str) -> None:
        await db.execute(
            "INSERT INTO signals (id, cycle_id, market_key, venue, side, dry_run, status, reserved, payload,"
            " created_at, expires_at, updated_at, action, position_id) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (signal.id, signal.cycle_id, signal.market.key, signal.market.venue.value, signal.side.value,
             int(signal.dry_run), SignalStatus.PENDING.value, str(signal.reserved),
             signal.model_dump_json(), ts(signal.created_at), ts(signal.expires_at), now, signal.action.value,
             signal.exit.position_id if signal.exit is not None else None))

    async def reserve_exit(self, signal: TradeSignal) -> RiskDecision:
        """Insert an exit signal as pending if its position is open, holds the contracts it sells, and has no
        other exit pending or on its way: atomically, so two closes of one position cannot both be proposed.

        The desk's state is not checked: getting out reduces risk, so it is allowed while PAUSED or HALTED.
        """
        assert signal.exit is not None
        position_id = signal.exit.position_id
        async with self._tx() as db:
            async with db.execute("SELECT * FROM positions WHERE id=?", (position_id,)) as cursor:
                row = await cursor.fetchone()
            if row is None or row["status"] != "open":
                return RiskDecision.deny("position_closed", f"position {position_id} is not open any more")
            position = self._position(row)
            if (position.venue, position.market_id, position.side, position.paper) != (
                    signal.market.venue, signal.market.id, signal.side, signal.dry_run):
                raise ValueError(f"exit signal {signal.id} does not match position {position_id}")
            if signal.contracts > position.contracts:
                return RiskDecision.deny("more_than_held", f"it sells {signal.contracts} contracts; the position "
                                                           f"holds {position.contracts}")
            sql, params = self._exits(self._IN_PLAY)
            async with db.execute(sql + " AND s.position_id=? LIMIT 1", (*params, position_id)) as cursor:
                other = await cursor.fetchone()
            if other is not None:
                return RiskDecision.deny("exit_pending", f"position {position_id} already has exit signal "
                                                         f"{other['id']} pending or on its way")
            await self._insert_signal(db, signal, ts(utcnow()))
        return RiskDecision(True)

    # An exit is in play from its proposal until its order is final: pending, approved, submitting or unknown, or
    # with an order the venue may still fill (one placed that rests, whatever its signal says). It is in flight
    # once approved: from then on what the position holds is not known until its order is.
    _IN_PLAY = tuple(s.value for s in SignalStatus if s.holds_reservation)
    _FLYING = (SignalStatus.APPROVED.value, SignalStatus.SUBMITTING.value, SignalStatus.UNKNOWN.value)
    _WORKING = tuple(o.value for o in OrderStatus if not o.is_final)

    @classmethod
    def _exits(cls, statuses: tuple[str, ...]) -> tuple[str, tuple[str, ...]]:
        """(SQL selecting position_id, id of exit signals in `statuses` or with a working order; its parameters)."""
        sql = (f"SELECT s.position_id, s.id FROM signals s LEFT JOIN orders o ON o.signal_id = s.id "
               f"WHERE s.action='sell' AND s.position_id IS NOT NULL AND (s.status IN "
               f"({','.join('?' * len(statuses))}) OR o.status IN ({','.join('?' * len(cls._WORKING))}))")
        return sql, (*statuses, *cls._WORKING)

    async def exiting_positions(self) -> dict[int, str]:
        """Position id -> the exit signal pending or on its way for it (its order not final yet)."""
        sql, params = self._exits(self._IN_PLAY)
        return {int(r["position_id"]): r["id"] for r in await self._fetchall(sql, params)}

    async def realized_ledger(self, paper: bool | None = None) -> list[dict[str, Any]]:
        """Every realised P&L entry (an exit fill or a settlement), oldest first."""
        where = " WHERE paper=?" if paper is not None else ""
        rows = await self._fetchall(f"SELECT * FROM realized{where} ORDER BY at, id",
                                    (int(paper),) if paper is not None else ())
        return [dict(r) for r in rows]

    async def position(self, position_id: int) -> Position | None:
        row = await self._fetchone("SELECT * FROM positions WHERE id=?", (position_id,))
        return self._position(row) if row else None

    async def get_signal(self, signal_id: str) -> TradeSignal | None:
        row = await self._fetchone("SELECT * FROM signals WHERE id=?", (signal_id,))
        return self._signal(row) if row else None

    async def signal_decider(self, signal_id: str) -> str:
        return (await self.signal_decision(signal_id))[0]

    async def signal_decision(self, signal_id: str) -> tuple[str, datetime | None]:
        """Who moved the signal out of pending and when: ("", None) while pending or when it is not known."""
        row = await self._fetchone("SELECT decided_by, decided_at FROM signals WHERE id=?", (signal_id,))
        return (row["decided_by"], _decided_at(row)) if row else ("", None)

    async def latest_market(self, venue: Venue, market_id: str) -> Market | None:
        """The market as the newest signal on it saw it: a position keeps no market snapshot of its own."""
        row = await self._fetchone("SELECT payload FROM signals WHERE market_key=? ORDER BY created_at DESC, id DESC "
                                   "LIMIT 1", (f"{venue.value}:{market_id}",))
        return TradeSignal.model_validate_json(row["payload"]).market if row else None

    async def signals(self, *statuses: SignalStatus, cycle_id: str | None = None) -> list[TradeSignal]:
        clauses, params = [], []
        if statuses:
            clauses.append(f"status IN ({','.join('?' * len(statuses))})")
            params.extend(s.value for s in statuses)
        if cycle_id:
            clauses.append("cycle_id=?")
            params.append(cycle_id)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = await self._fetchall(f"SELECT * FROM signals{where} ORDER BY created_at, id", params)
        return [self._signal(r) for r in rows]

    async def move_signal(self, signal_id: str, source: SignalStatus, target: SignalStatus, *, actor: str,
                          reason: str = "", unexpired_at: datetime | None = None,
                          at: datetime | None = None) -> Transition:
        """One compare-and-set. Exactly one caller can win a given move.

        With `unexpired_at` the signal must also not have expired by then: an approval that took its time
        re-checking the book cannot outlive the signal. `at` is when a move out of pending was decided (the
        desk's clock; now by default)."""
        if not can_move(source, target):
            raise ValueError(f"a signal cannot move from {source.value} to {target.value}")
        async with self._tx() as db:
            moved = await self._cas(db, signal_id, source, target, actor, reason, unexpired_at=unexpired_at, at=at)
            async with db.execute("SELECT * FROM signals WHERE id=?", (signal_id,)) as cursor:
                row = await cursor.fetchone()
        if row is None:
            return Transition(moved, None)
        return Transition(moved, self._signal(row), row["decided_by"], _decided_at(row))

    async def _cas(self, db: aiosqlite.Connection, signal_id: str, source: SignalStatus, target: SignalStatus,
                   actor: str, reason: str, *, unexpired_at: datetime | None = None,
                   at: datetime | None = None) -> bool:
        decided = ", decided_by=?, decided_at=?" if source is SignalStatus.PENDING else ""
        params: list[Any] = [target.value, reason, ts(utcnow())]
        if decided:
            params.extend((actor, ts(at or utcnow())))
        where, condition = [signal_id, source.value], ""
        if unexpired_at is not None:
            condition = " AND expires_at>?"
            where.append(ts(unexpired_at))
        async with db.execute(f"UPDATE signals SET status=?, status_reason=?, updated_at=?{decided} "
                              f"WHERE id=? AND status=?{condition}", (*params, *where)) as cursor:
            moved = cursor.rowcount == 1
        expected = source.value + (f" and unexpired at {ts(unexpired_at)}" if unexpired_at is not None else "")
        await self._audit(db, actor, f"signal:{target.value}", signal_id, "ok" if moved else "lost_race",
                          reason if moved else f"expected {expected}")
        return moved

    async def expire_due(self, now: datetime, actor: str = "sweeper") -> list[TradeSignal]:
        """Move every pending signal past its expiry to expired; returns those this call moved.

        The due rows are read and each moved by compare-and-set in one IMMEDIATE transaction (no RETURNING,
        which SQLite before 3.35 lacks): another sweep waits for the write lock and then finds them moved.
        """
        reason, pending, expired = "expired before a decision", SignalStatus.PENDING.value, SignalStatus.EXPIRED.value
        moved: list[TradeSignal] = []
        async with self._tx() as db:
            async with db.execute("SELECT * FROM signals WHERE status=? AND expires_at<=? ORDER BY expires_at, id",
                                  (pending, ts(now))) as cursor:
                due = list(await cursor.fetchall())
            for row in due:
                async with db.execute("UPDATE signals SET status=?, status_reason=?, updated_at=?, decided_by=?, "
                                      "decided_at=? WHERE id=? AND status=?",
                                      (expired, reason, ts(now), actor, ts(now), row["id"], pending)) as cursor:
                    if cursor.rowcount != 1:
                        continue
                await self._audit(db, actor, "signal:expired", row["id"], "ok", reason)
                moved.append(self._signal(row).model_copy(update={"status": SignalStatus.EXPIRED,
                                                                  "status_reason": reason}))
        return moved

    async def approved_without_order(self, approved_before: datetime) -> list[TradeSignal]:
        """Signals approved before `approved_before` whose order row was never written: nothing was sent."""
        rows = await self._fetchall(
            "SELECT s.* FROM signals s LEFT JOIN orders o ON o.signal_id = s.id "
            "WHERE s.status=? AND o.id IS NULL AND s.updated_at<=? ORDER BY s.updated_at",
            (SignalStatus.APPROVED.value, ts(approved_before)))
        return [self._signal(r) for r in rows]

    async def set_message_ref(self, signal_id: str, ref: str) -> None:
        async with self._tx() as db:
            await db.execute("UPDATE signals SET message_ref=? WHERE id=?", (ref, signal_id))

    async def message_ref(self, signal_id: str) -> str:
        row = await self._fetchone("SELECT message_ref FROM signals WHERE id=?", (signal_id,))
        return row["message_ref"] if row else ""

    # -- the Polymarket order journal ----------------------------------------------------------
    # The CLOB has no client order id: an order is found by the hash of what was signed. The venue client writes
    # that here before it sends the order (payload: its own JSON), and every process on the database reads it
    # from here, so a record one process wrote is seen by all of them.

    async def record_polymarket_order(self, client_order_id: str, order_id: str, payload: str,
                                      recorded_at: datetime) -> None:
        """Write one signed order, on disk when this returns; a later write for the same client order id
        replaces it (the CLOB answered with another id than the hash computed)."""
        async with self._tx(synced=True) as db:
            await db.execute(
                "INSERT INTO polymarket_orders (client_order_id, order_id, payload, recorded_at) VALUES (?,?,?,?) "
                "ON CONFLICT (client_order_id) DO UPDATE SET order_id=excluded.order_id, payload=excluded.payload,"
                " recorded_at=excluded.recorded_at", (client_order_id, order_id, payload, ts(recorded_at)))

    async def import_polymarket_orders(self, records: Iterable[tuple[str, str, str, datetime]]) -> int:
        """Take in (client order id, order id, payload, recorded at) from elsewhere (the old journal file): a row
        already here is replaced only by a newer record. Returns how many rows were written."""
        written = 0
        async with self._tx(synced=True) as db:
            for client_order_id, order_id, payload, recorded_at in records:
                async with db.execute(
                        "INSERT INTO polymarket_orders (client_order_id, order_id, payload, recorded_at)"
                        " VALUES (?,?,?,?) ON CONFLICT (client_order_id) DO UPDATE SET order_id=excluded.order_id,"
                        " payload=excluded.payload, recorded_at=excluded.recorded_at"
                        " WHERE excluded.recorded_at > polymarket_orders.recorded_at",
                        (client_order_id, order_id, payload, ts(recorded_at))) as cursor:
                    written += cursor.rowcount
        return written

    async def polymarket_order(self, client_order_id: str) -> str | None:
        """The payload recorded for the client order id, read from the database each time (another process may
        have written it since)."""
        row = await self._fetchone("SELECT payload FROM polymarket_orders WHERE client_order_id=?",
                                   (client_order_id,))
        return row["payload"] if row else None

    async def polymarket_orders(self) -> list[str]:
        rows = await self._fetchall("SELECT payload FROM polymarket_orders ORDER BY recorded_at, client_order_id")
        return [r["payload"] for r in rows]

    # -- orders, fills, positions ---------------------------------------------------------

    @staticmethod
    def _order(row: sqlite3.Row) -> Order:
        return Order(
            id=row["id"], signal_id=row["signal_id"], client_order_id=row["client_order_id"],
            venue=Venue(row["venue"]), market_id=row["market_id"], side=Side(row["side"]),
            action=OrderAction(row["action"]), contracts=_dec(row["contracts"]), limit_price=_dec(row["limit_price"]),
            status=OrderStatus(row["status"]),
            paper=bool(row["paper"]), venue_order_id=row["venue_order_id"], filled=_dec(row["filled"]),
            average_price=None if row["average_price"] is None else _dec(row["average_price"]),
            fees=_dec(row["fees"]), reason=row["reason"], created_at=parse_ts(row["created_at"]),
            updated_at=parse_ts(row["updated_at"]))

    async def begin_order(self, order: Order, *, source: SignalStatus, target: SignalStatus | None,
                          actor: str) -> bool:
        """Write the order row (status submitting) and move the signal, in one transaction.

        With `target` None the signal only has to be in `source`. Returns False, writing
        nothing, when the signal is elsewhere or already has an order: the UNIQUE signal_id
        and client_order_id make a second order for one signal impossible.

        The desk must be ACTIVE, and orders to the venue not stopped, in that same transaction: a pause,
        halt or venue stop that landed while the approval was re-checking the book fails the signal
        instead (its capital released) and raises DeskStoppedError. Nothing is sent after `/desk halt`
        has returned, nor after a venue's unknown answer stopped its orders.
        """
        stopped: str | None = None
        exit_ = order.action is OrderAction.SELL
        try:
            async with self._tx() as db:
                state = await self._state_in(db)
                async with db.execute("SELECT value FROM desk_state WHERE key=?",
                                      (f"{self.STOP_PREFIX}{order.venue.value}",)) as cursor:
                    venue_stop = await cursor.fetchone()
                # An exit reduces risk: a pause or halt does not hold it back; a venue stop does (the desk does
                # not understand that venue's answers any more).
                halted = state is not TradingState.ACTIVE and not exit_
                gone = await self._exit_gone(db, order) if exit_ else ""
                if halted or venue_stop is not None or gone:
                    what = (gone or (f"orders to {order.venue.value} were stopped" if venue_stop is not None
                                     else f"the desk was {state.value}"))
                    reason = f"{what} while this approval was on its way; nothing was sent"
                    if not await self._cas(db, order.signal_id, source, SignalStatus.FAILED, actor, reason):
                        return False
                    stopped = what  # committed as the block ends; said below
                elif not await self._signal_moves(db, order.signal_id, source, target, actor):
                    return False
                else:
                    await db.execute(
                        "INSERT INTO orders (id, signal_id, client_order_id, venue, market_id, side, contracts,"
                        " limit_price, status, paper, created_at, updated_at, action)"
                        " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                        (order.id, order.signal_id, order.client_order_id, order.venue.value, order.market_id,
                         order.side.value, str(order.contracts), str(order.limit_price), order.status.value,
                         int(order.paper), ts(order.created_at), ts(order.updated_at), order.action.value))
        except sqlite3.IntegrityError:  # the signal already has its order; the move rolled back with it
            return False
        if stopped is not None:
            released = "nothing is sold" if exit_ else "its capital is released"
            raise DeskStoppedError(stopped, f"Not sent: {stopped} while this approval was being checked. Nothing "
                                            f"was traded; {released}.")
        return True

    async def _exit_gone(self, db: aiosqlite.Connection, order: Order) -> str:
        """Why an exit order may not go (its position closed or shrank since the approval's check), or ""."""
        async with db.execute("SELECT contracts FROM positions WHERE venue=? AND market_id=? AND side=? AND paper=? "
                              "AND status='open'", (order.venue.value, order.market_id, order.side.value,
                                                    int(order.paper))) as cursor:
            row = await cursor.fetchone()
        if row is None:
            return "the position was closed"
        if _dec(row["contracts"]) < order.contracts:
            return f"the position shrank to {_dec(row['contracts'])} contracts"
        return ""

    async def _signal_moves(self, db: aiosqlite.Connection, signal_id: str, source: SignalStatus,
                            target: SignalStatus | None, actor: str) -> bool:
        """Move the signal from `source` to `target`, or with `target` None only check it is in `source`."""
        if target is not None:
            return await self._cas(db, signal_id, source, target, actor, "order submitting")
        async with db.execute("SELECT status FROM signals WHERE id=?", (signal_id,)) as cursor:
            row = await cursor.fetchone()
        return row is not None and row["status"] == source.value

    async def record_outcome(self, order_id: str, result: OrderResult, *, signal_source: SignalStatus,
                             signal_target: SignalStatus, actor: str, title: str = "") -> Order:
        """Order status, its fills, the position and the signal's move, all or nothing."""
        now = utcnow()
        async with self._tx() as db:
            async with db.execute("SELECT * FROM orders WHERE id=?", (order_id,)) as cursor:
                row = await cursor.fetchone()
            if row is None:
                raise KeyError(f"no order {order_id}")
            order = self._order(row)
            # Venues report cumulative totals; a later look-up repeats what we hold. Book the difference.
            old_cost = _dec(row["cost"])
            added = result.filled - order.filled
            if added < 0:
                raise InconsistentVenueReport(
                    f"order {order.client_order_id}: the venue now reports {result.filled} filled, fewer than the "
                    f"{order.filled} already recorded; nothing was changed, check the order at the venue")
            status = result.status
            if order.status.is_final and not status.is_final:
                status = order.status  # a look-up older than a cancel or fill already recorded: never go back
            if added == 0:  # the same fills again: what is booked stands (a look-up may state prices less exactly)
                filled, cost, fees = order.filled, old_cost, order.fees
            elif result.prices_are_bounds:  # only the new contracts are booked, at the price the venue shows
                share = added / result.filled
                filled = result.filled
                cost = old_cost + result.cost * share
                fees = order.fees + result.fees * share
            else:
                filled, cost, fees = result.filled, result.cost, result.fees
            added_cost, added_fees = cost - old_cost, fees - order.fees
            average = cost / filled if filled else None
            await db.execute(
                "UPDATE orders SET status=?, venue_order_id=?, filled=?, cost=?, average_price=?, fees=?, reason=?,"
                " updated_at=? WHERE id=?",
                (status.value, result.venue_order_id or order.venue_order_id, str(filled), str(cost),
                 None if average is None else str(average), str(fees), result.reason, ts(now), order_id))
            if added > 0:
                await db.execute("INSERT INTO fills (order_id, contracts, price, fee, created_at) VALUES (?,?,?,?,?)",
                                 (order_id, str(added), str(added_cost / added), str(added_fees), ts(now)))
                if order.action is OrderAction.SELL:
                    await self._reduce_position(db, order, added, added_cost, added_fees, actor, now)
                else:
                    await self._add_to_position(db, order, added, added_cost, added_fees, title, now)
            if signal_source != signal_target:
                await self._cas(db, order.signal_id, signal_source, signal_target, actor,
                                result.reason or result.status.value)
            async with db.execute("SELECT * FROM orders WHERE id=?", (order_id,)) as cursor:
                return self._order(await cursor.fetchone())

    async def _add_to_position(self, db: aiosqlite.Connection, order: Order, contracts: Decimal, cost: Decimal,
                               fees: Decimal, title: str, now: datetime) -> None:
        key = (order.venue.value, order.market_id, order.side.value, int(order.paper))
        async with db.execute("SELECT id, contracts, cost, fees FROM positions WHERE venue=? AND market_id=? AND "
                              "side=? AND paper=? AND status='open'", key) as cursor:
            row = await cursor.fetchone()
        if row is None:
            await db.execute("INSERT INTO positions (venue, market_id, side, paper, title, contracts, cost, fees,"
                             " opened_at) VALUES (?,?,?,?,?,?,?,?,?)",
                             (*key, title, str(contracts), str(cost), str(fees), ts(now)))
        else:
            await db.execute("UPDATE positions SET contracts=?, cost=?, fees=? WHERE id=?",
                             (str(_dec(row["contracts"]) + contracts), str(_dec(row["cost"]) + cost),
                              str(_dec(row["fees"]) + fees), row["id"]))

    async def _reduce_position(self, db: aiosqlite.Connection, order: Order, contracts: Decimal, proceeds: Decimal,
                               fees: Decimal, actor: str, now: datetime) -> None:
        """An exit's new fills: the position gives up the contracts sold with their share of its cost and entry fees
        (average cost), and the difference is booked as realised P&L in the ledger, once per fill. Never below
        zero: a venue reporting more sold than held (it should not: exits are reduce-only) books what was held
        and says so in the audit log. The last contract sold closes the position."""
        subject = f"{order.venue.value}:{order.market_id}:{order.side.value}"
        async with db.execute("SELECT * FROM positions WHERE venue=? AND market_id=? AND side=? AND paper=? AND "
                              "status='open'", (order.venue.value, order.market_id, order.side.value,
                                                int(order.paper))) as cursor:
            row = await cursor.fetchone()
        if row is None:
            await self._audit(db, actor, "position:exit_unmatched", subject, "inconsistent",
                              f"order {order.client_order_id} sold {contracts} but no position is open; check the "
                              "account at the venue")
            return
        held, cost, entry_fees = _dec(row["contracts"]), _dec(row["cost"]), _dec(row["fees"])
        sold = min(contracts, held)
        if sold < contracts:
            await self._audit(db, actor, "position:exit_excess", subject, "inconsistent",
                              f"order {order.client_order_id} reports {contracts} sold; the position held {held}. "
                              f"{sold} booked; check the account at the venue")
            proceeds, fees = proceeds * sold / contracts, fees * sold / contracts
        left = held - sold
        # The whole remainder goes with the last contract, so a closed position keeps no rounding dust.
        basis_cost = cost if left == 0 else cost * sold / held
        basis_fees = entry_fees if left == 0 else entry_fees * sold / held
        pnl = proceeds - fees - basis_cost - basis_fees
        closed = left == 0
        await db.execute("UPDATE positions SET contracts=?, cost=?, fees=?, realized_pnl=?, status=?, closed_at=? "
                         "WHERE id=?", (str(left), str(cost - basis_cost), str(entry_fees - basis_fees),
                                        str(_dec(row["realized_pnl"]) + pnl), "closed" if closed else "open",
                                        ts(now) if closed else None, row["id"]))
        await db.execute("INSERT INTO realized (position_id, order_id, paper, kind, contracts, proceeds, fees, basis,"
                         " pnl, at) VALUES (?,?,?,?,?,?,?,?,?,?)",
                         (row["id"], order.id, int(order.paper), "exit", str(sold), str(proceeds), str(fees),
                          str(basis_cost + basis_fees), str(pnl), ts(now)))

    async def settle_position(self, position: Position, resolution: Resolution, *, actor: str,
                              now: datetime) -> Position | None:
        """Close an open position at its market's payout and book the realised P&L, all at once.

        Returns the closed position, or None when it was no longer open (settled by another run).
        The contracts, cost and fees are re-read inside the transaction: a fill recorded meanwhile counts.
        """
        key = (position.venue.value, position.market_id, position.side.value, int(position.paper))
        async with self._tx() as db:
            async with db.execute("SELECT * FROM positions WHERE venue=? AND market_id=? AND side=? AND paper=? AND "
                                  "status='open'", key) as cursor:
                row = await cursor.fetchone()
            if row is None:
                return None
            # An exit approved while the resolution was being asked may be selling these contracts right now: paying
            # them out too would book money the account does not get. Settled on a later pass, once it is known.
            sql, params = self._exits(self._FLYING)
            async with db.execute(sql + " AND s.position_id=? LIMIT 1", (*params, row["id"])) as cursor:
                if await cursor.fetchone() is not None:
                    raise ExitInFlight(f"{key[0]} {key[1]}: an exit of this position is on its way; settled once its "
                                       "outcome is known")
            payout = _dec(row["contracts"]) * resolution.payout(position.side)
            basis = _dec(row["cost"]) + _dec(row["fees"])
            realized = payout - basis  # what is left settles; what exits sold was booked when it filled
            await db.execute("UPDATE positions SET status='closed', realized_pnl=?, closed_at=? WHERE id=?",
                             (str(_dec(row["realized_pnl"]) + realized), ts(now), row["id"]))
            await db.execute("INSERT INTO realized (position_id, paper, kind, contracts, proceeds, fees, basis, pnl,"
                             " at) VALUES (?,?,?,?,?,?,?,?,?)",
                             (row["id"], row["paper"], "settlement", row["contracts"], str(payout), "0", str(basis),
                              str(realized), ts(now)))
            await self._audit(db, actor, "position:settled", f"{key[0]}:{key[1]}:{key[2]}",
                              "ok", f"{'paper' if position.paper else 'live'}: paid {payout}, realised {realized} "
                                    f"({resolution.detail})")
            async with db.execute("SELECT * FROM positions WHERE id=?", (row["id"],)) as cursor:
                return self._position(await cursor.fetchone())

    async def order_for_signal(self, signal_id: str) -> Order | None:
        row = await self._fetchone("SELECT * FROM orders WHERE signal_id=?", (signal_id,))
        return self._order(row) if row else None

    async def orders(self, *statuses: OrderStatus) -> list[Order]:
        where = f" WHERE status IN ({','.join('?' * len(statuses))})" if statuses else ""
        rows = await self._fetchall(f"SELECT * FROM orders{where} ORDER BY created_at, id",
                                    [s.value for s in statuses])
        return [self._order(r) for r in rows]

    async def fills_for_order(self, order_id: str) -> list[Fill]:
        rows = await self._fetchall("SELECT contracts, price, fee FROM fills WHERE order_id=? ORDER BY id",
                                    (order_id,))
        return [Fill(contracts=_dec(r["contracts"]), price=_dec(r["price"]), fee=_dec(r["fee"])) for r in rows]

    async def positions(self, *, paper: bool | None = None, open_only: bool = True) -> list[Position]:
        clauses, params = [], []
        if paper is not None:
            clauses.append("paper=?")
            params.append(int(paper))
        if open_only:
            clauses.append("status='open'")
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = await self._fetchall(f"SELECT * FROM positions{where} ORDER BY opened_at, id", params)
        return [self._position(r) for r in rows]

    @staticmethod
    def _position(r: sqlite3.Row) -> Position:
        return Position(id=r["id"], venue=Venue(r["venue"]), market_id=r["market_id"], side=Side(r["side"]),
                        paper=bool(r["paper"]), contracts=_dec(r["contracts"]), cost=_dec(r["cost"]), fees=_dec(r["fees"]), title=r["title"],
                        status=r["status"], realized_pnl=_dec(r["realized_pnl"]), opened_at=parse_ts(r["opened_at"]),
                        closed_at=parse_ts(r["closed_at"]) if r["closed_at"] else None)
