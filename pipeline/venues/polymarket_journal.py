"""The Polymarket order journal: every signed order written down (fsynced) before it is sent.

The CLOB has no client order id; an order's id is the EIP-712 hash of the signed order. A record
of what was signed (no secrets) lets a lost reply be looked up by that hash, after a restart too.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from dataclasses import asdict, dataclass
from decimal import Decimal
from pathlib import Path

from ..models import Market, OrderRequest

log = logging.getLogger(__name__)

__all__ = ["OrderJournal", "SentOrder"]


@dataclass(frozen=True)
class SentOrder:
    """Everything needed to find (or re-create bit for bit) one signed order. No secrets."""

    client_order_id: str
    order_id: str  # EIP-712 hash of the signed order = the CLOB's orderID
    market_id: str
    token_id: str
    side: str  # yes | no: the outcome token bought
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

    def same_order(self, request: OrderRequest, market: Market, order_type: str) -> bool:
        return (self.market_id == market.id and self.side == request.side.value
                and Decimal(self.contracts) == request.contracts and Decimal(self.limit_price) == request.limit_price
                and self.order_type == order_type)


class OrderJournal:
    """Append-only JSON lines, fsynced before the order leaves: survives a restart."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._loaded: dict[str, SentOrder] | None = None

    def _read(self) -> dict[str, SentOrder]:
        records: dict[str, SentOrder] = {}
        if self.path is None or not self.path.exists():
            return records
        with self.path.open(encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    record = SentOrder(**json.loads(line))
                except (ValueError, TypeError):  # a torn last line after a crash, or a foreign line
                    log.warning("polymarket order journal %s: line %d is unreadable, ignored", self.path, number)
                    continue
                records[record.client_order_id] = record  # a later line corrects an earlier one
        return records

    def _append(self, record: SentOrder) -> None:
        assert self.path is not None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(asdict(record), separators=(",", ":")) + "\n")
            f.flush()
            os.fsync(f.fileno())

    async def load(self) -> dict[str, SentOrder]:
        if self._loaded is None:
            self._loaded = await asyncio.to_thread(self._read)
        return self._loaded

    async def append(self, record: SentOrder) -> None:
        if self.path is not None:
            await asyncio.to_thread(self._append, record)
