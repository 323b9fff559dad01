"""The Polymarket order journal: every signed order written down before it is sent.

The CLOB has no client order id; an order's id is the EIP-712 hash of the signed order. A record
of what was signed (no secrets) lets a lost reply be looked up by that hash, after a restart too.

The desk's journal is its database (StoreJournal): committed and synced before the order leaves, and
read from the database on every look-up, so any process on that database sees what another signed.
Only such a journal lets "no record" mean "never sent". A client without a store (scripts, tests)
keeps its records in memory (MemoryJournal), and then "no record" only means "not signed here".

Journals used to be a JSON-lines file beside the database (`<storage.path>.polymarket-orders.jsonl`), read
once per process: a second process never saw what the first signed after it had read the file. A desk
imports such a file into its database on start (import_journal_file) and renames it so it is not taken
in twice.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from ..models import Market, OrderAction, OrderRequest

if TYPE_CHECKING:
    from ..store import Store

log = logging.getLogger(__name__)

__all__ = ["FILE_SUFFIX", "MemoryJournal", "OrderJournal", "SentOrder", "StoreJournal", "import_journal_file",
           "journal_file", "read_journal_file"]

FILE_SUFFIX = ".polymarket-orders.jsonl"  # the old journal file, beside the database


@dataclass(frozen=True)
class SentOrder:
    """Everything needed to find (or re-create bit for bit) one signed order. No secrets."""

    client_order_id: str
    order_id: str  # EIP-712 hash of the signed order = the CLOB's orderID
    market_id: str
    token_id: str
    side: str  # yes | no: the outcome token bought or sold
    contracts: str
    limit_price: str
    order_type: str
    salt: int
    timestamp: int  # ms, taken once when the order was first signed
    maker: str
    signer: str
    signature_type: int
    maker_amount: int
    taker_amount: int
    neg_risk: bool
    tick_size: str
    recorded_at: float = 0.0
    protocol: str = "v1"  # the market's protocol version: which exchange the order was signed for
    action: str = "buy"  # buy | sell; rows written before exits existed have none and were all buys

    def same_order(self, request: OrderRequest, market: Market, order_type: str) -> bool:
        return (self.market_id == market.id and self.side == request.side.value
                and self.action == request.action.value
                and Decimal(self.contracts) == request.contracts and Decimal(self.limit_price) == request.limit_price
                and self.order_type == order_type)

    @property
    def selling(self) -> bool:
        return self.action == OrderAction.SELL.value

    def to_json(self) -> str:
        """A buy's row without `action`, as before exits: an older oddsdesk on the same database still reads it."""
        fields = asdict(self)
        if fields["action"] == OrderAction.BUY.value:
            del fields["action"]
        return json.dumps(fields, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> SentOrder:
        return cls(**json.loads(text))

    @property
    def recorded(self) -> datetime:
        return datetime.fromtimestamp(self.recorded_at, timezone.utc)


class OrderJournal(Protocol):
    # True when the journal is kept across restarts and read by every process that can send this desk's orders:
    # then an order it has no record of was never sent.
    shared: bool

    async def record(self, order: SentOrder) -> None:
        """Write the order down (replacing an earlier record of its client order id); returns once it is kept."""

    async def get(self, client_order_id: str) -> SentOrder | None: ...

    async def all(self) -> list[SentOrder]: ...


class MemoryJournal:
    """This process's own records: lost on exit, unseen by other processes."""

    shared = False

    def __init__(self) -> None:
        self._orders: dict[str, SentOrder] = {}

    async def record(self, order: SentOrder) -> None:
        self._orders[order.client_order_id] = order

    async def get(self, client_order_id: str) -> SentOrder | None:
        return self._orders.get(client_order_id)

    async def all(self) -> list[SentOrder]:
        return list(self._orders.values())


class StoreJournal:
    """The desk's database. Nothing is cached: a miss now may be a hit after another process signs, and a hit
    may be corrected (the CLOB's id replacing the computed hash) by the process that sent the order."""

    shared = True

    def __init__(self, store: Store) -> None:
        self.store = store

    async def record(self, order: SentOrder) -> None:
        await self.store.record_polymarket_order(order.client_order_id, order.order_id, order.to_json(),
                                                 order.recorded)

    async def get(self, client_order_id: str) -> SentOrder | None:
        payload = await self.store.polymarket_order(client_order_id)
        return None if payload is None else SentOrder.from_json(payload)

    async def all(self) -> list[SentOrder]:
        return [SentOrder.from_json(p) for p in await self.store.polymarket_orders()]


# ---------------------------------------------------------------------- the old journal file, imported once


def journal_file(storage_path: str) -> Path | None:
    """Where the desk on this database used to keep its journal file."""
    return None if storage_path == ":memory:" else Path(f"{storage_path}{FILE_SUFFIX}")


def read_journal_file(path: Path) -> dict[str, SentOrder]:
    """Client order id -> its last record in the file; a line that cannot be read is skipped and said."""
    records: dict[str, SentOrder] = {}
    with path.open(encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = SentOrder(**json.loads(line))
            except (ValueError, TypeError):  # a torn last line after a crash, or a foreign line
                log.warning("polymarket order journal %s: line %d is unreadable, ignored", path, number)
                continue
            records[record.client_order_id] = record  # a later line corrects an earlier one
    return records


async def import_journal_file(path: Path, store: Store) -> int:
    """Take the journal file's records into the database, then rename the file `<name>.imported-<UTC time>`.

    Idempotent: a row already in the database is replaced only by a newer record. The file is kept (renamed,
    not deleted) as the record it was; a file that reappears under the old name (an older oddsdesk still
    running on this database writes one) is imported on the next start. Returns how many rows were written.
    """
    try:
        records = await asyncio.to_thread(read_journal_file, path)
    except FileNotFoundError:  # none, or another process on this database just took it in
        return 0
    written = await store.import_polymarket_orders(
        (r.client_order_id, r.order_id, r.to_json(), r.recorded) for r in records.values())
    done = path.with_name(f"{path.name}.imported-{datetime.now(timezone.utc):%Y%m%dT%H%M%S%fZ}")
    try:
        path.rename(done)
    except FileNotFoundError:
        pass  # another process renamed it first; the records are in
    except OSError as e:  # imported all the same; the next start reads it again and changes nothing
        log.warning("polymarket order journal %s imported but could not be renamed (%s); it is read again on the "
                    "next start", path, e)
        return written
    log.info("polymarket order journal %s: %d of %d records taken into the database; the file is now %s", path,
             written, len(records), done.name)
    return written
