"""The `oddsdesk` command (same as `python -m bot`)."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import signal
import sys
from datetime import date, datetime, time, timezone
from pathlib import Path

from pipeline.backtest import BacktestRequest
from pipeline.config import CONFIG_PATH_ENV, Settings, load_settings
from pipeline.cycle import CycleRequest
from pipeline.desk import Actor
from pipeline.errors import ConfigError, RefusedError
from pipeline.models import CycleReport, Venue
from pipeline.reporter import SecretScrubber
from pipeline.store import Store
from pipeline.venues.snapshot import sample_directory

from . import terminal
from .present import plain, state
from .present.record import csv_text, record_message
from .wiring import open_desk

EXIT_CONFIG = 2

SNAPSHOT_BACKTEST_DB = "oddsdesk-snapshot-backtest.db"
SAMPLE_BANNER = ("SAMPLE DATA: a recorded snapshot of Kalshi and Polymarket markets with recorded estimates; "
                 "not live quotes. Dry-run only: no keys, no network, no money.")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="oddsdesk", description="An AI-assisted prediction-market trading desk.")
    parser.add_argument("--config", help=f"config file (env {CONFIG_PATH_ENV}, default ./config.json)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress at INFO level")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="a whole dry-run cycle offline on the bundled sample snapshot")
    demo.add_argument("--yes", action="store_true", help="approve every signal")
    demo.add_argument("--no-input", action="store_true", help="decide nothing; leave signals pending")
    demo.add_argument("--db", default="oddsdesk-demo.db", help="the demo's SQLite file (default oddsdesk-demo.db), "
                      "recreated each run; a file the demo did not make is never deleted")

    for name, text in (("scan", "scan and filter only (no model calls): why each market was dropped"),
                       ("cycle", "one cycle from the terminal, with approve/reject prompts")):
        cmd = sub.add_parser(name, help=text)
        cmd.add_argument("--venue", choices=["kalshi", "polymarket", "all"], default="all")
        cmd.add_argument("--snapshot", type=Path, help="read a recorded snapshot directory instead of the venues "
                                                       "('sample' for the bundled one)")
        if name == "cycle":
            cmd.add_argument("--limit", type=int, help="analyse at most N markets this cycle")
            cmd.add_argument("--yes", action="store_true", help="approve every signal (dry-run only; refused live)")
            cmd.add_argument("--no-input", action="store_true", help="decide nothing; leave signals pending")
        else:
            cmd.add_argument("--show", type=int, default=20, help="list this many dropped markets (default 20)")

    positions = sub.add_parser("positions", help="open positions with their numbers (what `close` takes) and what "
                                                 "selling each now would fetch")
    positions.add_argument("--snapshot", type=Path, help="mark against a recorded snapshot ('sample') instead of "
                                                         "the venues")

    close = sub.add_parser("close", help="propose selling a position, or all of them, then approve or reject each "
                                         "exit at the prompt")
    close.add_argument("ref", help="a position's number (12 or #12, see `oddsdesk positions`), its market's ticker, "
                                   "or all")
    close.add_argument("--yes", action="store_true", help="sell every exit proposed (dry-run only; refused live)")
    close.add_argument("--no-input", action="store_true", help="decide nothing; leave the exits pending")
    close.add_argument("--snapshot", type=Path, help="price against a recorded snapshot ('sample') instead of the "
                                                     "venues")

    run = sub.add_parser("run", help="the Slack app: Socket Mode with SLACK_APP_TOKEN, else HTTP")
    run.add_argument("--http", action="store_true", help="serve HTTP at /slack/events even with SLACK_APP_TOKEN")
    run.add_argument("--port", type=int, default=3000, help="HTTP port (default 3000)")
    run.add_argument("--snapshot", type=Path, help="serve the recorded snapshot ('sample') instead of the venues")

    backtest = sub.add_parser("backtest", help="ask the analyst about resolved markets as of a lead time before "
                                               "they closed, and score it (builds the track record fast)")
    backtest.add_argument("--lead-hours", type=float, default=24.0, help="ask as of this long before each market "
                                                                          "closed (default 24)")
    backtest.add_argument("--limit", type=int, default=50, help="markets per venue (default 50)")
    backtest.add_argument("--since", type=_day, help="markets that closed on or after this day (YYYY-MM-DD; never "
                                                     "before the model's knowledge cutoff)")
    backtest.add_argument("--venue", choices=["kalshi", "polymarket", "all"], default="all")
    backtest.add_argument("--web-search", action="store_true", help="let the model search the web (off by "
                                                                     "default: it could read how the market ended)")
    backtest.add_argument("--snapshot", type=Path, help="a recorded snapshot ('sample': offline, no keys)")
    backtest.add_argument("--db", type=Path, help="the SQLite file to keep the answers in (default: storage.path; "
                                                  f"with --snapshot, {SNAPSHOT_BACKTEST_DB}, so recorded sample "
                                                  "answers never enter the desk's own record)")

    record = sub.add_parser("record", help="the analyst's track record: its estimates scored against the market")
    record.add_argument("--csv", type=Path, help="also write every scored estimate to this CSV file")
    record.add_argument("--no-refresh", action="store_true", help="do not ask the venues for new resolutions first")

    check = sub.add_parser("check", help="validate the config and print it, secrets redacted; --venues probes the "
                                         "venues against the pinned contracts")
    check.add_argument("--venues", action="store_true", help="read-only probe of each configured venue: exchange "
                                                             "status, markets, a book, fees and, with keys, balance "
                                                             "and open orders; exit 1 on any drift")
    check.add_argument("--venue", choices=["kalshi", "polymarket", "all"], default="all")
    return parser


def _setup_logging(settings: Settings | None, verbose: bool) -> SecretScrubber:
    """Log to stderr through a scrubber; the desk each command opens adds the credentials its venues derive."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    scrubber = SecretScrubber(settings.env.secret_values() if settings else ())
    handler.addFilter(scrubber)
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, handlers=[handler], force=True)
    return scrubber


def _venues(choice: str) -> set[Venue] | None:
    return None if choice == "all" else {Venue(choice)}


def _snapshot(arg: Path | None) -> Path | None:
    if arg is not None and str(arg) == "sample":
        return sample_directory()
    return arg


def _clear_demo_database(db: Path) -> None:
    """Delete the previous demo's database at `db`, and nothing else: a file the demo did not make and mark is
    refused, untouched, whatever it is (a desk's real database given to --db by mistake, any other file)."""
    companions = [Path(f"{db}{suffix}") for suffix in ("-wal", "-shm")]
    if db.exists() or db.is_symlink():
        if not Store.is_demo_database(db):
            raise RefusedError("not_a_demo_database", (
                f"{db} exists and is not a database `oddsdesk demo` made, so the demo does not delete it; nothing "
                "was changed. Give --db a path that does not exist yet (the demo creates it), or remove the file "
                "yourself if it is yours to remove (so too a demo database from before demo databases were marked)."))
    elif any(p.exists() for p in companions):  # a stale WAL would be replayed into the new database
        raise RefusedError("not_a_demo_database", (
            f"{db} does not exist but {' and '.join(str(p) for p in companions if p.exists())} does, left by some "
            "other database; nothing was changed. Give --db another path, or remove those files yourself."))
    for path in (*companions, db):  # the main file last: while it stands, its mark says whose the rest are
        path.unlink(missing_ok=True)


async def _demo(settings: Settings, args: argparse.Namespace, scrubber: SecretScrubber) -> int:
    db = Path(args.db)
    _clear_demo_database(db)
    async with await Store.open(db) as store:  # marked before anything else is written to it
        await store.mark_demo()
    settings = settings.model_copy(update={
        "trading": settings.trading.model_copy(update={"dry_run": True}),
        "storage": settings.storage.model_copy(update={"path": str(db)}),
    })
    print(SAMPLE_BANNER)
    print(f"Mode: {terminal.mode_label(True)}   State: {db}")
    mode = terminal.choose_mode(args.yes, args.no_input, dry_run=settings.trading.dry_run)
    async with open_desk(settings, snapshot=sample_directory(), log_scrubber=scrubber) as desk:
        result = await desk.scan(CycleRequest(trigger="demo", started_by="terminal"),
                                 progress=lambda e: print(terminal.render_progress(e)))
        if not result.signals:
            print("No signals this cycle.")
        await terminal.decide_signals(desk, result.signals, mode, Actor.terminal())
        print(terminal.render_report(result.report, label="SAMPLE DATA"))
        stats = desk.executor.get_execution_stats()
        print(f"  dry-run outcomes: {stats['simulated']} simulated, {stats['failed']} failed")
    return 0


async def _scan(settings: Settings, args: argparse.Namespace, scrubber: SecretScrubber) -> int:
    async with open_desk(settings, snapshot=_snapshot(args.snapshot), log_scrubber=scrubber) as desk:
        result = await desk.scan(CycleRequest(trigger="scan", started_by="terminal", venues=_venues(args.venue),
                                              analyse=False, review_exits=False))
        for rejection in result.rejections[: args.show]:
            print(f"  {rejection.market_key:48.48}  {rejection.reason:20}  {rejection.detail}")
        if len(result.rejections) > args.show:
            print(f"  ... and {len(result.rejections) - args.show} more")
        print(terminal.render_report(result.report))
    return _exit_code(result.report)


async def _cycle(settings: Settings, args: argparse.Namespace, scrubber: SecretScrubber) -> int:
    mode = terminal.choose_mode(args.yes, args.no_input, dry_run=settings.trading.dry_run)  # before anything runs
    print(f"Mode: {terminal.mode_label(settings.trading.dry_run)}")
    async with open_desk(settings, snapshot=_snapshot(args.snapshot), log_scrubber=scrubber) as desk:
        request = CycleRequest(trigger="manual", started_by="terminal", venues=_venues(args.venue), limit=args.limit)
        result = await desk.scan(request, progress=lambda e: print(terminal.render_progress(e)))
        await terminal.decide_signals(desk, result.signals, mode, Actor.terminal())
        print(terminal.render_report(result.report))
    return _exit_code(result.report)


async def _positions(settings: Settings, args: argparse.Namespace, scrubber: SecretScrubber) -> int:
    async with open_desk(settings, snapshot=_snapshot(args.snapshot), log_scrubber=scrubber) as desk:
        status = await desk.status()
        marked = await desk.marked_positions()
        print(plain.render(state.positions_message(status, marked, desk.clock())))
    if any(p.status == "open" for p in status.positions):
        print("  Close one: oddsdesk close <number>|<ticker>|all")
    return 0


async def _close(settings: Settings, args: argparse.Namespace, scrubber: SecretScrubber) -> int:
    """Propose the exits as the terminal's operator, then ask about each as `cycle` does; 1 when any was refused."""
    mode = terminal.choose_mode(args.yes, args.no_input, dry_run=settings.trading.dry_run, command="close")
    print(f"Mode: {terminal.mode_label(settings.trading.dry_run)}")
    async with open_desk(settings, snapshot=_snapshot(args.snapshot), log_scrubber=scrubber) as desk:
        actor = Actor.terminal()
        ref = args.ref.strip()
        decisions = await desk.close_all(actor) if ref.lower() == "all" else [await desk.close(ref, actor)]
        print(terminal.render_close(decisions))
        await terminal.decide_signals(desk, [d.signal for d in decisions if d.ok and d.signal is not None], mode,
                                      actor)
    return 0 if all(d.ok for d in decisions) else 1


def _day(text: str) -> datetime:
    try:
        return datetime.combine(date.fromisoformat(text), time.min, tzinfo=timezone.utc)
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"{text!r} is not a day like 2026-10-31") from e


async def _backtest(settings: Settings, args: argparse.Namespace, scrubber: SecretScrubber) -> int:
    if not 1 <= args.limit <= 10_000 or not (math.isfinite(args.lead_hours) and 0 < args.lead_hours <= 24 * 365):
        raise RefusedError("bad_backtest", "--limit must be 1 to 10000 and --lead-hours above 0 and at most a year "
                                           "(8760); nothing was run.")
    analysis = settings.analysis.model_copy(update={"web_search": bool(args.web_search)})
    db = args.db or (Path(SNAPSHOT_BACKTEST_DB) if args.snapshot is not None else None)
    storage = settings.storage.model_copy(update={"path": str(db)}) if db is not None else settings.storage
    settings = settings.model_copy(update={"analysis": analysis, "storage": storage})
    async with open_desk(settings, snapshot=_snapshot(args.snapshot), log_scrubber=scrubber) as desk:
        request = BacktestRequest(lead_hours=args.lead_hours, limit=args.limit, since=args.since,
                                  venues=frozenset(_venues(args.venue)) if args.venue != "all" else None)
        report = await desk.backtest(request, progress=terminal.progress_bar(sys.stdout))
    print(terminal.render_backtest(report))
    return 0


async def _record(settings: Settings, args: argparse.Namespace, scrubber: SecretScrubber) -> int:
    async with open_desk(settings, log_scrubber=scrubber) as desk:
        if not args.no_refresh:
            scored = await desk.score_record()
            if scored:
                print(f"{scored} estimate(s) newly scored from the venues' resolutions")
        record = await desk.track_record()
    print(plain.render(record_message(record)))
    if args.csv is not None:
        args.csv.write_text(csv_text(record), encoding="utf-8")
        print(f"{len(record.forecasts)} scored estimate(s) written to {args.csv}")
    return 0


def _exit_code(report: CycleReport) -> int:
    """1 when no venue could be scanned at all: the run did not do what was asked."""
    stats = report.venue_stats.values()
    return 1 if stats and all(s.error for s in stats) else 0


async def _run(settings: Settings, args: argparse.Namespace, scrubber: SecretScrubber) -> int:
    from aiohttp import web

    from .app import background_jobs, build_app, http_application
    from .runtime import SlackDesk
    from .slack_client import Poster, web_client

    app_token = settings.env.SLACK_APP_TOKEN.get_secret_value() if settings.env.SLACK_APP_TOKEN else ""
    socket_mode = bool(app_token) and not args.http
    client = web_client(settings)
    print(f"Mode: {terminal.mode_label(settings.trading.dry_run)}; channel {settings.slack.channel}; "
          f"{'Socket Mode' if socket_mode else f'HTTP on port {args.port} at /slack/events'}")
    async with open_desk(settings, snapshot=_snapshot(args.snapshot), log_scrubber=scrubber) as desk:
        slack_desk = SlackDesk(desk, Poster(client), settings)
        app = build_app(slack_desk, settings, client, http=not socket_mode)
        jobs = background_jobs(slack_desk, settings)
        stop = asyncio.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):  # shut down cleanly: close the store and clients
            asyncio.get_running_loop().add_signal_handler(signum, stop.set)
        try:
            if socket_mode:
                from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

                handler = AsyncSocketModeHandler(app, app_token, web_client=web_client(settings, app_token))
                await handler.connect_async()
                try:
                    await stop.wait()
                finally:
                    await handler.close_async()
            else:
                runner = web.AppRunner(http_application(app, slack_desk), access_log=None)
                await runner.setup()
                await web.TCPSite(runner, "0.0.0.0", args.port).start()
                try:
                    await stop.wait()
                finally:
                    await runner.cleanup()
            print("oddsdesk stopped", file=sys.stderr)
        finally:
            for job in jobs:
                job.cancel()
    return 0


def _check(settings: Settings, args: argparse.Namespace) -> int:
    if args.venues:
        return asyncio.run(_check_venues(settings, args))
    print(json.dumps(settings.redacted(), indent=2))
    print(f"config OK; mode: {terminal.mode_label(settings.trading.dry_run)}", file=sys.stderr)
    fees = settings.fees
    if fees.kalshi_series_rates or fees.polymarket_taker_rate is not None:
        overrides = [f"Kalshi {series} at {rate}" for series, rate in sorted(fees.kalshi_series_rates.items())]
        if fees.polymarket_taker_rate is not None:
            overrides.append(f"every Polymarket market at {fees.polymarket_taker_rate}")
        print("note: fee overrides replace the venues' own fees: " + ", ".join(overrides), file=sys.stderr)
    if not settings.approval.authorized_users and not settings.approval.authorized_usergroups:
        print("note: approval.authorized_users is empty, so nobody can approve from Slack (deny by default)",
              file=sys.stderr)
    return 0


async def _check_venues(settings: Settings, args: argparse.Namespace) -> int:
    """Probe the venues read-only and print one line per finding; 1 when anything drifted or failed."""
    from pipeline.probe import probe

    from .wiring import live_venues

    chosen = settings.scan.model_copy(update={"venues": tuple(
        v for v in settings.scan.venues if args.venue in ("all", v)) or (args.venue,)})
    venues = live_venues(settings.model_copy(update={"scan": chosen}))
    try:
        report = await probe(venues)
    finally:
        for client in venues.values():
            await client.aclose()
    for finding in report.findings:
        print(finding.line())
    drifts, failures = len(report.drifts), len(report.failures)
    verdict = ("no drift: the venues answer as the pinned contracts say" if not drifts and not failures else
               f"{drifts} drift(s), {failures} failure(s): do not trade live until they are understood "
               "(README, Going live)")
    print(verdict, file=sys.stderr)
    return report.exit_code()


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = load_settings(args.config)
    except ConfigError as e:
        print(str(e), file=sys.stderr)
        return EXIT_CONFIG
    scrubber = _setup_logging(settings, args.verbose)
    try:
        if args.command == "check":
            return _check(settings, args)
        runner = {"demo": _demo, "scan": _scan, "cycle": _cycle, "run": _run, "record": _record,
                  "backtest": _backtest, "positions": _positions, "close": _close}[args.command]
        return asyncio.run(runner(settings, args, scrubber))
    except ConfigError as e:
        print(str(e), file=sys.stderr)
        return EXIT_CONFIG
    except RefusedError as e:
        print(f"refused: {e.reason}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
