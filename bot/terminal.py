"""The desk in a terminal: render signals, ask for decisions, print outcomes and the summary.

Rendering functions are pure (they return text); `decide_signals` does the I/O.
"""

from __future__ import annotations

import enum
import sys
from collections.abc import Callable
from datetime import datetime
from typing import TextIO

from pipeline.cycle import Progress
from pipeline.desk import Actor, Decision, Desk
from pipeline.errors import RefusedError
from pipeline.models import CycleReport, SignalStatus, TradeSignal

from pipeline.backtest import BacktestReport

from .present import cycles, outcomes, plain, replies, reports
from .present import record as present_record
from .present.textutil import clean
from .present import signals as present_signals

RULE = plain.RULE


def mode_label(dry_run: bool) -> str:
    return "DRY-RUN (paper: no money moves)" if dry_run else "LIVE (real money)"


def render_signal(signal: TradeSignal, now: datetime, index: int = 0, total: int = 0) -> str:
    """The signal as Slack shows it, in text; `index/total` when several are decided in a row."""
    shown = plain.render(present_signals.signal_proposal(signal, now)).removeprefix(RULE + "\n")
    count = f" {index}/{total}" if total else ""
    kind = "EXIT" if signal.is_exit else "SIGNAL"
    return f"{RULE}\n[{'DRY-RUN' if signal.dry_run else 'LIVE'}] {kind}{count}\n{shown}"


def render_close(decisions: list[Decision]) -> str:
    """What `oddsdesk close` proposed and what the desk refused, and why; each exit is then shown and asked about."""
    return plain.render(replies.close_reply([(d, "") for d in decisions], in_channel=False))


def render_decision(decision: Decision, signal: TradeSignal, actor: Actor, now: datetime) -> str:
    """What happened, as the signal's message says after a decision; a refusal says why."""
    if decision.signal is not None and decision.signal.status is SignalStatus.EXPIRED:
        text = plain.render(outcomes.signal_expired(decision.signal, now))
    elif decision.ok or decision.code in ("failed", "unknown", "desk_stopped"):
        text = plain.render(outcomes.signal_outcome(signal, decision, actor.label, now))
    else:
        text = "  Refused: " + plain.line(outcomes.refusal(decision))
    if decision.stopped is not None:  # orders to a venue were just stopped: said loudly here too
        text += "\n" + plain.render(reports.orders_stopped_message(decision.stopped))
    return text


def render_report(report: CycleReport, label: str = "") -> str:
    """The cycle's summary, then every error (the terminal has no thread)."""
    text = plain.render(cycles.summary(report))
    if label:
        text = text.replace(RULE + "\n", f"{RULE}\n[{label}] ", 1)
    details = [plain.line(cycles.error_line(i, e)) for i, e in enumerate(report.errors, 1)]
    return "\n".join([text, *("    " + d for d in details)])


def render_progress(event: Progress) -> str:
    if event.total:
        return f"  .. {event.stage} {event.done}/{event.total}"
    return f"  .. {event.stage}{': ' + event.message if event.message else ''}"


def progress_bar(out: TextIO, width: int = 30) -> Callable[[int, int, str], None]:
    """A progress bar on one line, redrawn in place on a terminal; every tenth step as a line otherwise."""
    live = out.isatty()
    shown = {"tenth": -1}

    def draw(done: int, total: int, what: str) -> None:
        if total <= 0:
            return
        filled = int(width * done / total)
        line = f"  [{'#' * filled}{'.' * (width - filled)}] {done}/{total} {clean(what)[:50]}"
        if live:
            print(f"\r{line:<{width + 70}}", end="" if done < total else "\n", file=out, flush=True)
        elif done * 10 // total != shown["tenth"] or done == total:
            shown["tenth"] = done * 10 // total
            print(line, file=out)

    return draw


def render_backtest(report: BacktestReport) -> str:
    """The run, then the record of every backtest at its lead, model and prompt."""
    parts = [plain.render(present_record.backtest_message(report))]
    if report.record is not None:
        parts.append(plain.render(present_record.record_message(report.record)))
    return "\n".join(parts)


class Mode(enum.Enum):
    PROMPT = "prompt"  # ask at the terminal for each signal
    APPROVE_ALL = "yes"
    DECIDE_NONE = "no-input"


LIVE_YES_REFUSED = ("--yes approves every signal without anyone reading it, and this desk is LIVE (trading.dry_run "
                    "is false): real orders would follow. Nothing was run. Live, approve each signal at the prompt "
                    "(run `oddsdesk {command}` in a terminal, without --yes); --yes is for dry-run.")


def choose_mode(yes: bool, no_input: bool, stdin: TextIO = sys.stdin, *, dry_run: bool,
                command: str = "cycle") -> Mode:
    """Never wait for input when nobody can type it; never approve live signals nobody has seen."""
    if yes and not dry_run:
        raise RefusedError("live_yes", LIVE_YES_REFUSED.format(command=command))
    if yes:
        return Mode.APPROVE_ALL
    if no_input or not stdin.isatty():
        return Mode.DECIDE_NONE
    return Mode.PROMPT


async def decide_signals(desk: Desk, signals: list[TradeSignal], mode: Mode, actor: Actor,
                         out: TextIO = sys.stdout, ask: Callable[[str], str] = input) -> list[Decision]:
    decisions = []
    for index, signal in enumerate(signals, 1):
        print(render_signal(signal, desk.clock(), index, len(signals)), file=out)
        if mode is Mode.DECIDE_NONE:
            print("  (left pending: no input)", file=out)
            continue
        question = ("  Sell? [y]es / [n]o (keep the position) / [s]kip: " if signal.is_exit else
                    "  Approve? [y]es / [n]o (reject) / [s]kip: ")
        answer = "y" if mode is Mode.APPROVE_ALL else _ask(ask, question)
        if answer == "s":
            print("  skipped: left pending until it expires", file=out)
            continue
        decision = await (desk.approve(signal.id, actor) if answer == "y" else desk.reject(signal.id, actor))
        print(render_decision(decision, signal, actor, desk.clock()), file=out)
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
