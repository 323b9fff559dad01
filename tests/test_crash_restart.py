"""A crash between the venue taking an order and its answer arriving, with real processes on loopback.

`oddsdesk run --http` (live mode) runs against a fake Kalshi, a fake Anthropic and a fake Slack. A signed
/scan brings a signal; a signed Approve click makes the desk POST the order; the fake Kalshi executes it
(the order exists and fills) but holds its answer, and the moment it has acted the desk is SIGKILLed.
The desk is started again on the same config and database: reconciliation on start must settle the
order by its client order id, never re-post it, move the signal to its final state and redraw the
signal's original Slack message.
"""

from __future__ import annotations

import asyncio
import json
import signal
from decimal import Decimal
from typing import Any

import httpx

from bot.blocks import APPROVE_ACTION

from .processes import DeskProcess, clean_environ, free_port, rows
from .servers.anthropic import FakeAnthropic
from .servers.base import Recorded
from .servers.kalshi import FakeKalshi
from .servers.slack import DESK_CHANNEL, FakeSlack
from .slack_requests import FORM, block_action, post_to_app, sign, slash_command
from .test_kalshi import FED, KEY_ID, ORDERS, ORDERS_V2, pem, rsa_key
from .test_slack_app import SUMMARY

SECRET = "crash-restart-signing-secret-0123456789"
ANTHROPIC_KEY = "sk-ant-crash-restart-key"
TRADER = "U0TRADER1"


def signal_messages(slack: FakeSlack) -> list[dict[str, Any]]:
    return [m for m in slack.messages(DESK_CHANNEL) if any(b["type"] == "actions" for b in m.get("blocks", []))]


def buttons(message: dict[str, Any] | None) -> list[dict[str, Any]]:
    return [e for b in (message or {}).get("blocks", []) if b["type"] == "actions" for e in b["elements"]]


def updates_of(slack: FakeSlack, channel: str, ts: str, since: int = 0) -> list[dict[str, Any]]:
    """Accepted chat.update calls on one message, among Slack calls number `since` onwards."""
    return [params for (name, params), answer in list(zip(slack.calls, slack.answers, strict=True))[since:]
            if name == "chat.update" and answer.get("ok") and params.get("channel") == channel
            and params.get("ts") == ts]



def lookups(kalshi: FakeKalshi) -> int:
    """GET /portfolio/orders asked about one market's orders (reconciliation's listing of resting ones aside)."""
    return sum(1 for r in kalshi.server.requests
               if r.method == "GET" and r.path == ORDERS and r.query.get("status") != "resting")

async def test_a_desk_killed_while_its_order_answer_is_in_flight_reconciles_it_on_restart(tmp_path):
    kalshi = FakeKalshi(rsa_key(0).public_key(), KEY_ID)
    # The desk tests' Fed market and book, closing ten days from the real clock (the desk runs on it).
    kalshi.add_market(FED, yes=[("0.40", "2000"), ("0.38", "500")], no=[("0.58", "100"), ("0.56", "100"),
                                                                        ("0.50", "500")],
                      title="Will the Fed hold rates steady in December 2026?")
    key_file = tmp_path / "kalshi.pem"
    key_file.write_text(pem(rsa_key(0)))
    db = tmp_path / "desk.db"
    held = asyncio.Event()
    first: DeskProcess | None = None
    second: DeskProcess | None = None

    async with kalshi.serve(hang_seconds=30), FakeAnthropic(api_key=ANTHROPIC_KEY) as claude, FakeSlack() as slack:
        claude.responder = lambda request: {"probability": 0.7, "confidence": 0.6, "reasoning": "fixed",
                                            "key_factors": ["fixed"]}
        env = clean_environ()
        env.update({"SLACK_API_URL": slack.api_url, "SLACK_BOT_TOKEN": slack.bot_token,
                    "SLACK_SIGNING_SECRET": SECRET,
                    "KALSHI_API_URL": kalshi.base_url, "KALSHI_API_KEY_ID": KEY_ID,
                    "KALSHI_PRIVATE_KEY_PATH": str(key_file),
                    "ANTHROPIC_API_KEY": ANTHROPIC_KEY, "ANTHROPIC_BASE_URL": claude.url,
                    "ODDSDESK_TRADING__DRY_RUN": "false", "ODDSDESK_SCAN__VENUES": '["kalshi"]',
                    "ODDSDESK_APPROVAL__AUTHORIZED_USERS": f'["{TRADER}"]',
                    "ODDSDESK_STORAGE__PATH": str(db)})
        port = free_port()
        try:
            # -- run 1: a live signal, approved; killed once Kalshi has acted but before it answers --------
            first = await DeskProcess(tmp_path, "run1", env, port).start()
            scan = slash_command("/scan", "kalshi", user_id=TRADER, channel_id=DESK_CHANNEL,
                                 response_url=slack.new_response_url(channel=DESK_CHANNEL, user=TRADER))
            status, text = await post_to_app(first.url, scan, sign(SECRET, scan), content_type=FORM)
            assert status == 200 and "Starting a cycle" in text, (status, text)
            posted = await first.until(
                lambda: signal_messages(slack) and any(SUMMARY.search(m.get("text", ""))
                                                       for m in slack.messages(DESK_CHANNEL)),
                "the cycle to post a signal and its summary", timeout=30)
            assert posted
            [message] = signal_messages(slack)
            ts = message["ts"]
            [approve] = [b for b in buttons(message) if b["action_id"] == APPROVE_ACTION]
            signal_id = approve["value"]
            assert "LIVE" in message["text"], message["text"]

            def on_order_taken(request: Recorded) -> None:  # runs in the fake, right after it executed the order
                assert first is not None
                first.kill()
                held.set()

            kalshi.server.faults.add("hold_after", ORDERS_V2, method="POST", notify=on_order_taken)
            click = block_action(APPROVE_ACTION, signal_id, user_id=TRADER, channel_id=DESK_CHANNEL,
                                 message_ts=ts, response_url=slack.new_response_url(
                                     channel=DESK_CHANNEL, message_ts=ts, user=TRADER), message=message)
            try:
                status, _ = await post_to_app(first.url, click, sign(SECRET, click), content_type=FORM)
                assert status == 200
            except httpx.RemoteProtocolError:  # killed by design before its ack reached us: the race is Slack's too
                pass
            try:
                await asyncio.wait_for(held.wait(), timeout=15)
            except TimeoutError:
                raise AssertionError(f"the desk never POSTed the order; Kalshi saw "
                                     f"{[(r.method, r.path) for r in kalshi.server.requests][-10:]}\n"
                                     f"{first.logs()}") from None
            assert first.process is not None
            assert await asyncio.wait_for(first.process.wait(), timeout=10) == -signal.SIGKILL

            # The crash came where it should: Kalshi holds a filled order, the desk only its intent.
            [venue_order] = kalshi.orders.values()
            assert venue_order["status"] == "executed" and kalshi.server.count("POST", ORDERS_V2) == 1
            assert lookups(kalshi) == 0  # the desk never got far enough to look it up
            [order] = rows(db, "SELECT * FROM orders WHERE signal_id=?", (signal_id,))
            assert order["client_order_id"] == venue_order["client_order_id"]
            assert (order["status"], order["filled"], order["venue_order_id"]) == ("submitting", "0", ""), order
            assert rows(db, "SELECT status FROM signals WHERE id=?", (signal_id,)) == [{"status": "submitting"}]
            assert rows(db, "SELECT * FROM fills") == [] and rows(db, "SELECT * FROM positions") == []
            assert updates_of(slack, DESK_CHANNEL, ts) == [] and buttons(slack.message(DESK_CHANNEL, ts))

            # -- run 2: the same config and database; reconciliation on start settles the order ------------
            calls_before_restart = len(slack.calls)
            second = await DeskProcess(tmp_path, "run2", env, port).start()

            def reconciliation_notes() -> list[dict[str, Any]]:
                return [m for m in slack.messages(DESK_CHANNEL) if m.get("text", "").startswith("Reconciliation")]

            [note] = await second.until(reconciliation_notes, "the reconciliation report in the channel", timeout=15)
            assert "1 resolved, 0 unresolved" in note["text"], note["text"]
            assert order["client_order_id"] in json.dumps(note["blocks"])
            try:
                await second.until(lambda: updates_of(slack, DESK_CHANNEL, ts, since=calls_before_restart),
                                   "a chat.update of the signal's original message", timeout=5)
            except AssertionError as e:
                raise AssertionError("after the restart the desk reconciled the order but never updated the "
                                     f"signal's own message ({DESK_CHANNEL}, {ts}); it still shows Approve/Reject. "
                                     f"{e}") from None
            assert await second.stop() == 0, second.logs()
            second_err = (tmp_path / "run2.err").read_text()
            assert "oddsdesk stopped" in second_err
        finally:
            for desk in (first, second):
                if desk is not None:
                    await desk.reap()

    # -- Kalshi: one POST across both runs, one order for the client order id ---------------------------
    cid = order["client_order_id"]
    assert kalshi.server.count("POST", ORDERS_V2) == 1
    assert [o["client_order_id"] for o in kalshi.orders.values()] == [cid] and list(kalshi.client_ids) == [cid]
    assert lookups(kalshi) >= 1  # the restarted desk asked for it by client order id
    filled = Decimal(venue_order["fill_count_fp"])
    assert filled > 0 and Decimal(venue_order["remaining_count_fp"]) == 0

    # -- the database: one order, final and filled, its fill booked and the position open -----------------
    [final] = rows(db, "SELECT * FROM orders WHERE signal_id=?", (signal_id,))
    assert rows(db, "SELECT COUNT(*) AS n FROM orders") == [{"n": 1}]
    assert final["status"] == "filled" and final["venue_order_id"] == venue_order["order_id"], final
    assert Decimal(final["filled"]) == filled
    assert Decimal(final["fees"]) == Decimal(venue_order["taker_fees_dollars"]) > 0
    assert Decimal(final["cost"]) == Decimal(venue_order["taker_fill_cost_dollars"]) > 0
    fills = rows(db, "SELECT * FROM fills WHERE order_id=?", (final["id"],))
    assert fills and sum(Decimal(f["contracts"]) for f in fills) == filled
    [position] = rows(db, "SELECT * FROM positions WHERE status='open'")
    assert (position["venue"], position["market_id"], position["side"], position["paper"]) == ("kalshi", FED, "yes", 0)
    assert Decimal(position["contracts"]) == filled == kalshi.positions[FED].position
    [sig] = rows(db, "SELECT status, message_ref FROM signals WHERE id=?", (signal_id,))
    assert sig["status"] == "filled" and sig["message_ref"] == f"{DESK_CHANNEL}:{ts}", sig
    moves = rows(db, "SELECT actor, action, outcome FROM audit_log WHERE subject=? AND action LIKE 'signal:%' "
                     "ORDER BY id", (signal_id,))
    assert [(m["action"], m["outcome"]) for m in moves][-3:] == [
        ("signal:approved", "ok"), ("signal:submitting", "ok"), ("signal:filled", "ok")], moves
    assert moves[-1]["actor"] == "reconciler", moves

    # -- Slack: the original message (same channel and ts) now shows the final state -------------------
    shown = slack.message(DESK_CHANNEL, ts)
    assert shown is not None and buttons(shown) == [], shown
    everything = shown.get("text", "") + json.dumps(shown.get("blocks", []))
    assert "filled" in shown.get("text", "").lower() and venue_order["order_id"] in everything, everything
