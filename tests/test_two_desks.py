"""Two desks on one database, as real processes on loopback fakes (issue 12).

`oddsdesk run --http` (live, Polymarket) is started first and reconciles on start, which lists the
account's open orders and so reads the desk's Polymarket order journal. Then a terminal
`oddsdesk cycle` at a terminal (approving at the prompt) on the same config and database places an order: the fake CLOB executes it
(it fills) and drops the answer, and every look-up by hash fails while that process lives, so it
leaves the order `unknown`. The running desk's next reconciliation must find the order filled by the
hash the other process recorded, never take it for an order that never left.

With the old journal (a JSON-lines file read once per process) the running desk still held the
journal as it read it on start, without this order: it answered "the venue does not list it yet",
and after a minute "never placed", failing a filled order and releasing its capital.
"""

from __future__ import annotations

import asyncio
import os
import pty
import sqlite3
import sys
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from eth_account import Account

from .processes import ROOT, DeskProcess, clean_environ, free_port, rows
from .servers.anthropic import FakeAnthropic
from .servers.base import LoopbackServer
from .servers.polymarket import PolymarketFake
from .servers.slack import DESK_CHANNEL, FakeSlack

SECRET = "two-desks-signing-secret-0123456789"
ANTHROPIC_KEY = "sk-ant-two-desks-key"
KEY = "0x" + "6e" * 32
WALLET = Account.from_key(KEY).address
TITLE = "Will the Fed cut rates in December?"
LOOK_UP = "/data/order/"  # GET /data/order/{hash}; not /data/orders, the listing


async def cycle(env: dict[str, str], cwd: Path) -> tuple[int, str, str]:
    """`oddsdesk cycle --venue polymarket` at a terminal (a pseudo-terminal), a person answering `y` to each
    `Approve?` as a live cycle asks (live, `--yes` is refused); run without blocking the fakes' loop."""
    controller, terminal = pty.openpty()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "--config", str(ROOT / "config.json"), "-v", "cycle", "--venue", "polymarket",
        cwd=cwd, env=env, stdin=terminal, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    os.close(terminal)
    try:
        os.write(controller, b"y\n" * 5)  # line-buffered by the terminal until each prompt reads one
        out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    finally:
        os.close(controller)
    return process.returncode or 0, out.decode(), err.decode()


def now_rows(db: Path, sql: str) -> list[dict[str, Any]]:
    """Read the database while a desk has it open (WAL: readers never block, nor are blocked)."""
    connection = sqlite3.connect(db)
    try:
        connection.row_factory = sqlite3.Row
        return [dict(r) for r in connection.execute(sql).fetchall()]
    finally:
        connection.close()


async def test_an_order_another_desk_lost_the_answer_to_is_found_by_its_hash_not_failed(tmp_path):
    poly = PolymarketFake(now=datetime.now(UTC))  # the desks run on the real clock
    fed = poly.add_market(TITLE, bids=[("0.40", "200"), ("0.38", "500")],
                          asks=[("0.42", "100"), ("0.44", "100"), ("0.50", "500")])
    db = tmp_path / "desk.db"
    running: DeskProcess | None = None
    async with LoopbackServer(poly.gamma_app()) as gamma, LoopbackServer(poly.clob_app()) as clob, \
            LoopbackServer(poly.data_app()) as data, FakeAnthropic(api_key=ANTHROPIC_KEY) as claude, \
            FakeSlack() as slack:
        claude.responder = lambda request: {"probability": 0.7, "confidence": 0.6, "reasoning": "fixed",
                                            "key_factors": ["fixed"]}
        env = clean_environ()
        env.update({"SLACK_API_URL": slack.api_url, "SLACK_BOT_TOKEN": slack.bot_token,
                    "SLACK_SIGNING_SECRET": SECRET,
                    "POLYMARKET_GAMMA_URL": gamma.url, "POLYMARKET_CLOB_URL": clob.url,
                    "POLYMARKET_DATA_URL": data.url, "POLYMARKET_PRIVATE_KEY": KEY,
                    "ANTHROPIC_API_KEY": ANTHROPIC_KEY, "ANTHROPIC_BASE_URL": claude.url,
                    "ODDSDESK_TRADING__DRY_RUN": "false", "ODDSDESK_SCAN__VENUES": '["polymarket"]',
                    "ODDSDESK_SCHEDULE__RECONCILE_SECONDS": "1", "ODDSDESK_STORAGE__PATH": str(db)})
        try:
            # -- the Slack desk, started before the order exists; its reconciliation on start read the journal ---
            running = await DeskProcess(tmp_path, "run", env, free_port()).start()
            await running.until(lambda: clob.count("GET", "/data/orders"), "reconciliation on start listing the "
                                "account's open orders", timeout=20)

            # -- a terminal cycle on the same database: executed, its answer lost, every look-up failing ----------
            clob.faults.add("drop_after", "/order", "POST")
            clob.faults.add("503", LOOK_UP, "GET", times=10_000)
            code, out, err = await cycle(env, tmp_path)
            assert code == 0, out + err
            assert "unknown" in out.lower(), out
            [order] = now_rows(db, "SELECT * FROM orders")
            assert order["status"] == "unknown" and order["filled"] == "0", order
            [placed] = poly.orders.values()  # the venue took it and filled it
            assert placed.status == "MATCHED" and placed.size_matched == Decimal(order["contracts"])
            assert placed.maker_address.lower() == WALLET.lower() and placed.market == fed.condition_id
            [journalled] = now_rows(db, "SELECT * FROM polymarket_orders")
            assert journalled["client_order_id"] == order["client_order_id"]
            assert journalled["order_id"].lower() == placed.id.lower()

            # -- the running desk, on its next pass, finds it by that hash ----------------------------------------
            clob.faults.queue.clear()

            def resolved() -> list[dict[str, Any]]:
                return [m for m in slack.messages(DESK_CHANNEL) if m.get("text", "").startswith("Reconciliation: 1 "
                                                                                               "resolved")]

            [note] = await running.until(resolved, "the running desk to resolve the other desk's order", timeout=20)
            assert order["client_order_id"] in str(note["blocks"]) and "filled" in str(note["blocks"])
            assert await running.stop() == 0, running.logs()
        finally:
            if running is not None:
                await running.reap()

    # -- one POST in all; the order filled by look-up, booked once; nothing failed or released --------------------
    assert clob.count("POST", "/order") == 1 and len(poly.orders) == 1
    assert any(r.path == f"{LOOK_UP}{journalled['order_id']}" for r in clob.requests if r.method == "GET")
    [final] = rows(db, "SELECT * FROM orders")
    assert final["status"] == "filled" and final["venue_order_id"].lower() == placed.id.lower(), final
    assert Decimal(final["filled"]) == placed.size_matched
    [position] = rows(db, "SELECT * FROM positions WHERE status='open'")
    assert (position["venue"], position["market_id"], position["paper"]) == ("polymarket", fed.condition_id, 0)
    assert Decimal(position["contracts"]) == placed.size_matched
    [signal] = rows(db, "SELECT id, status FROM signals")
    assert signal["status"] == "filled", signal
    moves = rows(db, "SELECT actor, action FROM audit_log WHERE subject=? AND action LIKE 'signal:%' ORDER BY id",
                 (signal["id"],))
    assert [(m["actor"], m["action"]) for m in moves][-3:] == [
        ("terminal:operator", "signal:submitting"), ("terminal:operator", "signal:unknown"),
        ("reconciler", "signal:filled")], moves
    assert not any(m["action"] == "signal:failed" for m in moves)
