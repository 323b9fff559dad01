"""The desk in a terminal: render signals, ask for decisions, print outcomes and the summary.

Rendering functions are pure (they return text); `decide_signals` does the I/O.
"""

from __future__ import annotations

import enum
import sys
from collections.abc import Callable
from decimal import Decimal
from typing import TextIO

from pipeline.cycle import Progress
from pipeline.desk import Actor, Decision, Desk
from pipeline.errors import RefusedError
from pipeline.models import CycleReport, TradeSignal

RULE = "-" * 78


def _pct(value: Decimal | None, signed: bool = False) -> str:
    if value is None:
        return "n/a"
    text = f"{value * 100:.1f}%"
    return f"+{text}" if signed and value > 0 else text


def _usd(value: Decimal, signed: bool = False) -> str:
    text = f"${abs(value):,.2f}"
    if value < 0:
        return f"-{text}"
    return f"+{text}" if signed else text


def mode_label(dry_run: bool) -> str:
    return "DRY-RUN (paper: no money moves)" if dry_run else "LIVE (real money)"


def render_signal(signal: TradeSignal, index: int = 0, total: int = 0) -> str:
    market = signal.market
    tag = "DRY-RUN" if signal.dry_run else "LIVE"
    count = f" {index}/{total}" if total else ""
    quote = f"bid {market.yes_bid} / ask {market.yes_ask}" if market.yes_bid is not None else "no quote"
    lines = [
        RULE,
        f"[{tag}] SIGNAL{count}  {market.venue.value}  {market.id}",
        f"  {market.title}",
        f"  Buy {signal.side.value.upper()}: {signal.contracts} contracts, limit ${signal.limit_price}, "
        f"avg ${signal.average_price:.4f}",
        f"  Cost {_usd(signal.cost)} + {_usd(signal.fees)} fees   Expected value {_usd(signal.expected_value, True)}",
        f"  Fair YES: model {_pct(signal.model_probability)}, blended {_pct(signal.fair_yes)}   "
        f"Market YES {quote}",
        f"  Edge after fees {_pct(signal.edge, True)}   Stake {_pct(signal.kelly_fraction)} of bankroll",
        f"  Expires {signal.expires_at:%Y-%m-%d %H:%M} UTC   {market.url}",
    ]
    if signal.reasoning:
        lines.append(f"  Why: {signal.reasoning[:300]}")
    return "\n".join(lines)


def render_decision(decision: Decision) -> str:
    mark = "OK " if decision.ok else "NO "
    text = f"  {mark}{decision.message}"
    if decision.stopped is not None:  # orders to a venue were just stopped: said loudly here too
        text += f"\n  !! {decision.stopped.sentence()}"
    return text


def render_report(report: CycleReport, label: str = "") -> str:
    scanned = ", ".join(f"{venue} {n}" for venue, n in sorted(report.scanned.items()))
    elapsed = ((report.finished_at or report.started_at) - report.started_at).total_seconds()
    analysed = f"analysed {report.analysed}" + (f" (cached {report.cached})" if report.cached else "")
    skipped = []
    if report.skipped_budget:
        skipped.append(f"{report.skipped_budget} skipped by budget")
    if report.skipped_deadline:
        skipped.append(f"{report.skipped_deadline} not analysed before the deadline")
    if report.invalid:
        skipped.append(f"{report.invalid} without a valid estimate")
    funnel = (f"scanned {report.total_scanned} ({scanned or 'no venue answered'}) -> passed filters "
              f"{report.passed_filters} -> {analysed} -> opportunities {report.opportunities} -> "
              f"signals {report.signals}")
    lines = [
        RULE,
        f"CYCLE {report.cycle_id}  {mode_label(report.dry_run)}{'  ' + label if label else ''}  {elapsed:.2f} s",
        f"  {funnel}",
    ]
    for venue, stats in sorted(report.venue_stats.items()):
        line = (f"  {venue}: {stats.markets} markets in {stats.pages} pages, {stats.requests} requests, "
                f"{stats.retries} retries, {stats.seconds:.2f} s")
        if stats.skipped:
            line += f", {stats.skipped} objects skipped"
        if stats.error:
            line += f"; FAILED: {stats.error[:160]}"
        lines.append(line)
    if skipped:
        lines.append(f"  {'; '.join(skipped)}")
    if report.risk_denied:
        lines.append(f"  {report.risk_denied} held back by risk limits")
    top = report.top_rejections(6)
    if top:
        lines.append("  top reasons markets were dropped: " + ", ".join(f"{reason} {n}" for reason, n in top))
    timings = ", ".join(f"{stage} {seconds:.2f}s" for stage, seconds in report.timings.items())
    lines.append(f"  LLM cost {_usd(report.llm_cost_usd)}   timings: {timings or 'n/a'}")
    for note in report.notes:
        lines.append(f"  note: {note}")
    if report.errors:
        lines.append(f"  {len(report.errors)} error(s):")
        lines.extend(f"    - [{e.stage}{' ' + e.venue if e.venue else ''}] {e.message[:200]}" for e in report.errors)
    else:
        lines.append("  errors: none")
    return "\n".join(lines)


def render_progress(event: Progress) -> str:
    if event.total:
        return f"  .. {event.stage} {event.done}/{event.total}"
    return f"  .. {event.stage}{': ' + event.message if event.message else ''}"


class Mode(enum.Enum):
    PROMPT = "prompt"  # ask at the terminal for each signal
    APPROVE_ALL = "yes"
    DECIDE_NONE = "no-input"


LIVE_YES_REFUSED = ("--yes approves every signal without anyone reading it, and this desk is LIVE (trading.dry_run "
                    "is false): real orders would follow. Nothing was run. Live, approve each signal at the prompt "
                    "(run `oddsdesk cycle` in a terminal, without --yes); --yes is for dry-run.")


def choose_mode(yes: bool, no_input: bool, stdin: TextIO = sys.stdin, *, dry_run: bool) -> Mode:
    """Never wait for input when nobody can type it; never approve live signals nobody has seen."""
    if yes and not dry_run:
        raise RefusedError("live_yes", LIVE_YES_REFUSED)
    if yes:
        return Mode.APPROVE_ALL
    if no_input or not stdin.isatty():
        return Mode.DECIDE_NONE
    return Mode.PROMPT


async def decide_signals(desk: Desk, signals: list[TradeSignal], mode: Mode, actor: Actor,
                         out: TextIO = sys.stdout, ask: Callable[[str], str] = input) -> list[Decision]:
    decisions = []
    for index, signal in enumerate(signals, 1):
        print(render_signal(signal, index, len(signals)), file=out)
        if mode is Mode.DECIDE_NONE:
            print("  (left pending: no input)", file=out)
            continue
        answer = "y" if mode is Mode.APPROVE_ALL else _ask(ask, "  Approve? [y]es / [n]o (reject) / [s]kip: ")
        if answer == "s":
            print("  skipped: left pending until it expires", file=out)
            continue
        decision = await (desk.approve(signal.id, actor) if answer == "y" else desk.reject(signal.id, actor))
        print(render_decision(decision), file=out)
        decisions.append(decision)
    return decisions


def _ask(ask: Callable[[str], str], prompt: str) -> str:
    while True:
        try:
            answer = ask(prompt).strip().lower()[:1]
        except EOFError:
            return "s"
        if answer in ("y", "n", "s"):
            return answer
