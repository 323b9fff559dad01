"""A cycle in the channel: one progress line edited as it runs, then a summary that says at once whether
the cycle was clean, partial or failed, and an error report naming each venue that failed."""

from __future__ import annotations

import enum
from datetime import datetime

from pipeline.models import CycleError, CycleReport

from . import fmt
from .model import Message, Section, Text, Tone, bold, code, join, text, when
from .outcomes import actor
from .textutil import one_line

ERROR_LINE_BUDGET = 1000
ERRORS_PER_THREAD_MESSAGE = 40
BAR_WIDTH = 16

STAGE_LABELS = {
    "scanning": "Scanning venues",
    "filtering": "Filtering markets",
    "analysing": "Analysing markets",
    "pricing": "Pricing against the order books",
    "sizing": "Sizing signals",
    "done": "Cycle computed",
}


class Health(str, enum.Enum):
    CLEAN = "clean"
    PARTIAL = "partial"
    FAILED = "failed"


def failed_venues(report: CycleReport) -> dict[str, str]:
    """venue -> why its scan failed."""
    return {venue: stats.error for venue, stats in sorted(report.venue_stats.items()) if stats.error}


def health(report: CycleReport) -> Health:
    """Failed: no venue could be read. Partial: a venue failed or anything else went wrong. Clean otherwise."""
    failed = failed_venues(report)
    if failed and len(failed) >= max(len(report.venue_stats), 1) and report.total_scanned == 0:
        return Health.FAILED
    if failed or report.errors:
        return Health.PARTIAL
    return Health.CLEAN


HEALTH_TONES = {Health.CLEAN: Tone.GOOD, Health.PARTIAL: Tone.WARNING, Health.FAILED: Tone.FAILURE}


def bar(done: int, total: int, width: int = BAR_WIDTH) -> str:
    """A progress bar of plain characters (not inline code, which Slack draws red)."""
    if total <= 0:
        return ""
    ratio = min(max(done / total, 0.0), 1.0)
    filled = int(round(ratio * width))
    return f"{'▰' * filled}{'▱' * (width - filled)} {ratio * 100:.0f}%"


def progress(stage: str, done: int, total: int, *, started_by: str, dry_run: bool, venues: str,
             posting: int | None = None) -> Message:
    """The one message edited as a cycle goes. `posting`: the cycle is computed and its signals are being posted."""
    tag = fmt.mode_tag(dry_run)
    if posting is not None:
        step = f"Posting {fmt.plural(posting, 'signal')}"
    else:
        label = STAGE_LABELS.get(stage) or one_line(stage, 60) or "Working"
        step = f"{label} {done:,}/{total:,}" if total > 0 else label
    lines = [text(bold(step))]
    if total > 0 and posting is None:
        lines.append(text(bar(done, total)))
    return Message(kind="progress", tone=Tone.BUSY, title=f"{tag} · Cycle running — {step}", lines=tuple(lines),
                   footer=(started_line(started_by, venues),), notification=f"{tag} cycle: {step}")


def started_line(started_by: str, venues: str) -> Text:
    line = text("started by ", actor(started_by or "schedule"))
    return text(line, f" · venues: {one_line(venues, 200)}") if venues else line


def progress_finished(report: CycleReport, posted: int, *, venues: str) -> Message:
    """The progress message's last state: only once every signal is in the channel."""
    state = health(report)
    tag = fmt.mode_tag(report.dry_run)
    said = f"{fmt.plural(posted, 'signal')} posted · cycle {state.value}"
    failed = failed_venues(report)
    lines = [text(bold(said))]
    if failed:
        lines.append(text("Failed: " + ", ".join(fmt.venue_name(v) for v in failed) + " — see the summary below."))
    return Message(kind="progress", tone=HEALTH_TONES[state], title=f"{tag} · {said}", lines=tuple(lines),
                   footer=(started_line(report.started_by, venues),), notification=f"{tag} cycle: {said}")


def busy(started_by: str, started_at: datetime) -> Text:
    return text("A cycle started by ", actor(started_by or "schedule"), " at ",
                when(started_at, fmt.utc(started_at, "%H:%M:%S")),
                " is still running (its signals are not all posted yet); try again when its summary is in.")


def funnel(report: CycleReport) -> Text:
    """scanned → passed filters → analysed → opportunities → signals; a failed venue says failed, not 0."""
    failed = failed_venues(report)
    parts = []
    for venue in sorted(set(report.scanned) | set(report.venue_stats)):
        if venue in failed:
            parts.append(f"{fmt.venue_name(venue)} failed")
        else:
            parts.append(f"{fmt.venue_name(venue)} {report.scanned.get(venue, 0):,}")
    analysed = f"analysed {report.analysed:,}" + (f" (cached {report.cached:,})" if report.cached else "")
    return text(f"scanned {report.total_scanned:,} ({', '.join(parts) or 'no venue answered'}) → passed filters "
                f"{report.passed_filters:,} → {analysed} → opportunities {report.opportunities:,} → ",
                bold(f"signals {report.signals:,}"))


def skipped(report: CycleReport) -> list[str]:
    parts = []
    if report.skipped_budget:
        parts.append(f"{report.skipped_budget:,} skipped by the LLM budget")
    if report.skipped_deadline:
        parts.append(f"{report.skipped_deadline:,} not analysed before the deadline")
    if report.invalid:
        parts.append(f"{report.invalid:,} without a valid estimate")
    return parts


def elapsed(report: CycleReport) -> float:
    return ((report.finished_at or report.started_at) - report.started_at).total_seconds()


def venue_detail(venue: str, report: CycleReport) -> Text:
    stats = report.venue_stats[venue]
    line = (f"{fmt.venue_name(venue)}: {stats.markets:,} markets read · {fmt.plural(stats.pages, 'page')} · "
            f"{fmt.plural(stats.requests, 'request')} · {fmt.plural(stats.retries, 'retry', 'retries')} · "
            f"{stats.seconds:.2f} s")
    if stats.skipped:
        line += f" · {stats.skipped:,} objects skipped"
    if stats.error:
        line += " · failed, none of its markets used"
    return text(line)


def summary_title(report: CycleReport) -> str:
    state = health(report)
    signals = fmt.plural(report.signals, "signal") + (f" ({fmt.plural(report.exits, 'exit')})" if report.exits
                                                      else "")
    failed = failed_venues(report)
    if state is Health.FAILED:
        said = f"Cycle failed — {', '.join(fmt.venue_name(v) for v in failed) or 'no venue'} unreadable, no signals"
    elif state is Health.PARTIAL:
        why = (f"{', '.join(fmt.venue_name(v) for v in failed)} failed" if failed
               else fmt.plural(len(report.errors), "error"))
        said = f"Cycle partial — {why}; {signals} from {fmt.plural(report.total_scanned, 'market')}"
    else:
        said = f"Cycle clean — {signals} from {fmt.plural(report.total_scanned, 'market')}"
    return f"{fmt.mode_tag(report.dry_run)} · {said}"


def held_positions(report: CycleReport) -> Text | None:
    """What the review of held positions did: how many were priced, exits proposed, and why the rest were kept."""
    kept = sum(report.holds.values())
    if not (report.positions_reviewed or report.exits or kept):
        return None
    said = text(bold("Held positions:"), f" {report.positions_reviewed:,} reviewed · "
                f"{fmt.plural(report.exits, 'exit')} proposed")
    if not kept:
        return said
    return text(said, " · kept: ", join((text(code(one_line(why, 40)), f" {n:,}")
                                         for why, n in report.holds.most_common(4))))


def summary(report: CycleReport) -> Message:
    """The funnel of one cycle and what explains it; the header alone tells clean from partial from failed."""
    state = health(report)
    lines: list[Text] = []
    for venue, why in failed_venues(report).items():
        lines.append(text(bold(f"{fmt.venue_name(venue)} failed:"), f" {one_line(why, 300)}"))
    lines.append(funnel(report))
    extra = skipped(report)
    if extra:
        lines.append(text(bold("Skipped:"), " " + " · ".join(extra)))
    if report.risk_denied:
        lines.append(text(bold("Held back by risk limits:"), f" {report.risk_denied:,}"))
    held = held_positions(report)
    if held is not None:
        lines.append(held)
    top = report.top_rejections(6)
    if top:
        lines.append(text(bold("Why markets were dropped:"), " ",
                          join((text(code(one_line(reason, 80)), f" {n:,}") for reason, n in top))))
    for note in report.notes[:5]:
        lines.append(text(one_line(note, 500)))
    if report.errors:
        lines.append(text(bold(f"{fmt.plural(len(report.errors), 'error')} — details in the thread below")))
    sections = []
    if report.venue_stats:
        sections.append(Section("Venues", tuple(venue_detail(v, report) for v in sorted(report.venue_stats))))
    timings = " · ".join(f"{one_line(stage, 40)} {seconds:.2f}s" for stage, seconds in
                         list(report.timings.items())[:20])
    footer = (
        text(f"LLM cost {fmt.usd(report.llm_cost_usd)} (billed in both modes) · {elapsed(report):.2f} s"
             + (f" · {timings}" if timings else "")),
        text("cycle ", code(one_line(report.cycle_id, 100)), f" · {one_line(report.trigger, 40)} · ",
             started_line(report.started_by, ""), " · ",
             when(report.started_at, fmt.utc(report.started_at, "%Y-%m-%d %H:%M:%S"))),
    )
    title = summary_title(report)
    return Message(kind="summary", tone=HEALTH_TONES[state], title=title, lines=tuple(lines),
                   sections=tuple(sections), footer=footer, notification=title)


def error_line(index: int, error: CycleError) -> Text:
    venue = f" · {fmt.venue_name(error.venue)}" if error.venue else ""
    return text(bold(f"{index}."), " ", code(one_line(error.stage or "?", 40)), venue, " · ",
                fmt.utc(error.at, "%H:%M:%S"), ": ", one_line(error.message, ERROR_LINE_BUDGET))


def where_errors_were(report: CycleReport) -> str:
    """'Kalshi 2, analysis 1': venues by name first, then stages without a venue."""
    counts: dict[str, int] = {}
    for error in report.errors:
        key = fmt.venue_name(error.venue) if error.venue else one_line(error.stage or "other", 40)
        counts[key] = counts.get(key, 0) + 1
    shown = ", ".join(f"{key} {n:,}" for key, n in list(counts.items())[:10])
    return shown + (", …" if len(counts) > 10 else "")


def error_report(report: CycleReport) -> Message:
    """A short message for the channel naming where the errors were, and the errors in its thread."""
    total = len(report.errors)
    tag = fmt.mode_tag(report.dry_run)
    cycle = one_line(report.cycle_id, 60)
    if not total:
        return Message(kind="errors", tone=Tone.GOOD, title=f"{tag} · Cycle {cycle}: no errors")
    failed = failed_venues(report)
    title = (f"{tag} · {fmt.plural(total, 'error')} in cycle {cycle}"
             + (f" — {', '.join(fmt.venue_name(v) for v in failed)} failed" if failed else ""))
    thread = []
    for start in range(0, total, ERRORS_PER_THREAD_MESSAGE):
        chunk = report.errors[start:start + ERRORS_PER_THREAD_MESSAGE]
        last = start + len(chunk)
        heading = f"Errors {start + 1:,}–{last:,} of {total:,} · cycle {cycle}"
        thread.append(Message(kind="error_details", tone=Tone.WARNING, title=heading,
                              lines=tuple(error_line(start + i + 1, e) for i, e in enumerate(chunk)),
                              notification=f"{tag} {heading}"))
    return Message(kind="errors", tone=Tone.FAILURE if health(report) is Health.FAILED else Tone.WARNING,
                   title=title, lines=(text(bold("Where:"), " ", where_errors_were(report)),
                                       text("Each error, in order, is in the thread below.")),
                   footer=(text("cycle ", code(one_line(report.cycle_id, 100))),),
                   notification=f"{title} — details in thread", thread=tuple(thread))
