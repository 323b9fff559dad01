"""The offline demo as a user runs it: a subprocess, no keys, no network, seconds."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from pipeline.risk import TradingState
from pipeline.store import Store

from .processes import clean_environ

ROOT = Path(__file__).resolve().parents[1]


def run_demo(tmp_path: Path, *args: str, stdin=subprocess.DEVNULL) -> subprocess.CompletedProcess[str]:
    env = clean_environ()
    # Any attempt to reach the network fails fast instead of hanging.
    env.update({"HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9"})
    return subprocess.run([sys.executable, "-m", "bot", "--config", str(ROOT / "config.json"), "demo", *args],
                          capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path, stdin=stdin)


def test_demo_yes_shows_signals_with_dry_run_outcomes_and_a_summary(tmp_path):
    started = time.perf_counter()
    proc = run_demo(tmp_path, "--yes")
    elapsed = time.perf_counter() - started
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "SAMPLE DATA" in out and "DRY-RUN" in out
    assert out.count("[DRY-RUN] SIGNAL") >= 1
    assert "DRY-RUN · Paper fill: " in out and "no money moved" in out
    assert "scanned" in out and "passed filters" in out and "Why markets were dropped" in out
    assert "Traceback" not in proc.stderr
    assert elapsed < 60  # "seconds": generous for a loaded CI box; benchmarks measure, tests do not time
    with sqlite3.connect(tmp_path / "oddsdesk-demo.db") as db:
        simulated = db.execute("SELECT count(*) FROM signals WHERE status='simulated'").fetchone()[0]
        paper_orders = db.execute("SELECT count(*) FROM orders WHERE paper=1").fetchone()[0]
        live_orders = db.execute("SELECT count(*) FROM orders WHERE paper=0").fetchone()[0]
        cycles = db.execute("SELECT count(*) FROM cycles WHERE report IS NOT NULL").fetchone()[0]
    assert simulated >= 1 and paper_orders == simulated and live_orders == 0 and cycles == 1
    assert f"{simulated} simulated" in out


def test_demo_without_a_terminal_never_waits_and_decides_nothing(tmp_path):
    # stdin is an open pipe nobody writes to: a prompt would hang until the timeout.
    proc = run_demo(tmp_path, stdin=subprocess.PIPE)
    assert proc.returncode == 0, proc.stderr
    assert "(left pending: no input)" in proc.stdout
    with sqlite3.connect(tmp_path / "oddsdesk-demo.db") as db:
        statuses = {row[0] for row in db.execute("SELECT DISTINCT status FROM signals")}
        orders = db.execute("SELECT count(*) FROM orders").fetchone()[0]
    assert statuses == {"pending"} and orders == 0


def test_demo_is_repeatable_from_a_fresh_state_file(tmp_path):
    first = run_demo(tmp_path, "--no-input")
    second = run_demo(tmp_path, "--no-input")
    assert first.returncode == second.returncode == 0
    count = first.stdout.count("[DRY-RUN] SIGNAL")
    assert count >= 1 and second.stdout.count("[DRY-RUN] SIGNAL") == count


async def test_demo_deletes_only_a_database_it_made_itself(tmp_path):
    """`--db` pointed at the desk's real database (or any other file) by mistake: refused, not a byte changed."""
    real = tmp_path / "desk.db"
    store = await Store.open(real)
    await store.set_trading_state(TradingState.PAUSED, "UOPERATOR", "a real desk's state")
    await store.close()
    notes = tmp_path / "notes.txt"
    notes.write_text("not a database at all\n")
    for path in (real, notes):
        before = sorted(p.name for p in tmp_path.iterdir()), path.read_bytes()
        proc = run_demo(tmp_path, "--no-input", "--db", str(path))
        assert proc.returncode == 1 and "[DRY-RUN] SIGNAL" not in proc.stdout
        assert f"refused: {path} exists and is not a database `oddsdesk demo` made" in proc.stderr
        assert "nothing was changed" in proc.stderr
        assert (sorted(p.name for p in tmp_path.iterdir()), path.read_bytes()) == before  # no -wal/-shm either
    # A path of its own, run after run: the demo's mark lets it recreate that one.
    for _ in range(2):
        proc = run_demo(tmp_path, "--no-input", "--db", "mine.db")
        assert proc.returncode == 0, proc.stderr
        with sqlite3.connect(tmp_path / "mine.db") as db:
            assert db.execute("SELECT count(*) FROM cycles").fetchone()[0] == 1
    assert not Store.is_demo_database(real) and Store.is_demo_database(tmp_path / "mine.db")


def test_demo_refuses_a_stale_wal_without_its_database(tmp_path):
    (tmp_path / "gone.db-wal").write_bytes(b"frames of some other database")
    proc = run_demo(tmp_path, "--no-input", "--db", "gone.db")
    assert proc.returncode == 1 and "gone.db-wal" in proc.stderr and "nothing was changed" in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gone.db-wal"]


def test_scan_on_the_sample_explains_every_drop(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("ODDSDESK_")}
    proc = subprocess.run([sys.executable, "-m", "bot", "--config", str(ROOT / "config.json"), "scan",
                           "--snapshot", "sample", "--show", "100"], capture_output=True, text=True, timeout=120,
                          env={**env, "ODDSDESK_STORAGE__PATH": str(tmp_path / "scan.db")}, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    for reason in ("low_volume", "low_liquidity", "price_out_of_range", "closes_too_soon", "closes_too_late",
                   "spread_too_wide", "no_quote", "not_open"):
        assert reason in proc.stdout, reason
    assert "analysed 0" in proc.stdout and "signals 0" in proc.stdout


def test_a_snapshot_is_never_traded_live(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("ODDSDESK_")}
    proc = subprocess.run([sys.executable, "-m", "bot", "--config", str(ROOT / "config.json"), "cycle",
                           "--snapshot", "sample", "--no-input"], capture_output=True, text=True, timeout=120,
                          env={**env, "ODDSDESK_TRADING__DRY_RUN": "false",
                               "ODDSDESK_STORAGE__PATH": str(tmp_path / "live.db")}, cwd=tmp_path)
    assert proc.returncode == 2 and "trading.dry_run" in proc.stderr and "never traded live" in proc.stderr
    assert not (tmp_path / "live.db").exists()
