"""`oddsdesk positions` and `oddsdesk close` as a user runs them: real processes on the bundled sample snapshot
(offline, dry-run), on positions made by `oddsdesk cycle --yes` in the same database."""

from __future__ import annotations

import re
from decimal import Decimal

from pipeline.store import Store

from .processes import clean_environ
from .test_cycle_command import oddsdesk


def paper_env(tmp_path) -> dict[str, str]:
    # Any attempt to reach the network fails fast: the snapshot must be all it reads.
    return {**clean_environ(), "ODDSDESK_STORAGE__PATH": str(tmp_path / "paper.db"),
            "HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9"}


async def test_close_all_yes_sells_every_paper_position_and_books_what_it_realised(tmp_path):
    env = paper_env(tmp_path)
    code, _, err = await oddsdesk(tmp_path, env, "cycle", "--snapshot", "sample", "--yes")
    assert code == 0, err
    async with await Store.open(tmp_path / "paper.db") as store:
        held = await store.positions(paper=True)
    assert len(held) >= 3

    code, out, err = await oddsdesk(tmp_path, env, "positions", "--snapshot", "sample")
    assert code == 0, err
    assert f"DRY-RUN · {len(held)} open positions" in out and "oddsdesk close <number>|<ticker>|all" in out
    assert all(f"#{p.id} " in out for p in held)  # each numbered as `close` takes it

    code, out, err = await oddsdesk(tmp_path, env, "close", "99", "--snapshot", "sample", "--yes")
    assert code == 1 and "There is no open paper position 99" in out and "EXIT" not in out

    code, out, err = await oddsdesk(tmp_path, env, "close", "all", "--snapshot", "sample", "--yes")
    assert code == 0, err
    assert "Traceback" not in err
    assert f"{len(held)} exits proposed" in out
    assert out.count("[DRY-RUN] EXIT ") == len(held) and "Why: a close asked for by operator (terminal)" in out
    sold = re.findall(r"DRY-RUN · Would have sold .*; realised ([-+]\$[\d.,]+)", out)
    assert len(sold) == len(held)

    async with await Store.open(tmp_path / "paper.db") as store:
        after = {p.id: p for p in await store.positions(paper=True, open_only=False)}
        pending = await store.exiting_positions()
    assert pending == {}  # every exit was decided
    for position in held:
        now = after[position.id]
        # What is left is at most the dust the venue's lot size could not sell; its cost went with what sold.
        assert now.contracts < Decimal("0.1") and now.realized_pnl != 0
    booked = sum((after[p.id].realized_pnl for p in held), Decimal(0))
    said = sum((Decimal(v.replace("$", "").replace(",", "")) for v in sold), Decimal(0))
    assert abs(booked - said) < Decimal("0.01") * len(held)  # the messages said what the store booked


async def test_close_yes_is_refused_live_before_anything_runs(tmp_path):
    env = {**paper_env(tmp_path), "ODDSDESK_TRADING__DRY_RUN": "false"}
    code, out, err = await oddsdesk(tmp_path, env, "close", "all", "--yes")
    assert code == 1 and "refused: --yes approves every signal" in err and "`oddsdesk close`" in err
    assert not (tmp_path / "paper.db").exists() and "EXIT" not in out
