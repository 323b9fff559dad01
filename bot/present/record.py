"""The analyst's track record as a message: does the blend the desk trades on beat the market, by how much,
and where. Numbers are labelled for what they are; a skill whose 95 % interval spans zero says so."""

from __future__ import annotations

import math

from pipeline.backtest import BacktestReport
from pipeline.record import Record, Score, Trades

from . import fmt
from .model import Fact, Message, Section, Text, Tone, bold, code, text
from .textutil import one_line

CUT_TITLES = {"origin": "Cycles and backtests", "venue": "By venue", "category": "By category",
              "horizon": "By time to close", "version": "By model and prompt"}
ROWS_PER_CUT = 8


def _pct(value: float) -> str:
    return fmt.pct(value, signed=True)


def num(value: float, digits: int = 3) -> str:
    return "n/a" if math.isnan(value) else f"{value:.{digits}f}"


MIN_FOR_VERDICT = 20  # fewer resolved markets than this and an interval says little; no verdict is given


def verdict(score: Score) -> str:
    if score.n < MIN_FOR_VERDICT or math.isnan(score.skill_low):
        return f"not enough resolved markets to say ({score.n} of {MIN_FOR_VERDICT})"
    if score.skill_low > 0:
        return "the blend beats the market"
    if score.skill_high < 0:
        return "the market beats the blend"
    return "no better than the market so far (the interval spans zero)"


def skill_text(score: Score) -> str:
    return (f"{_pct(score.skill)} (95% {_pct(score.skill_low)} to {_pct(score.skill_high)})"
            if not math.isnan(score.skill) else "n/a")


def evidence_text(record: Record) -> str:
    """The part of the record trading.require_record and market_weight "auto" look at: the desk's own cycles."""
    evidence = record.evidence
    if evidence is None or not evidence.n:
        return "none yet: only the desk's own cycles count (not backtests, not the sample)"
    return f"{evidence.n:,} markets from the desk's own cycles · skill {skill_text(evidence)}"


def headline(record: Record) -> Text:
    """One line for App Home: does the analyst beat the market, by how much, on how many resolved estimates."""
    overall = record.overall
    return text(bold("Analyst vs market:"), f" {verdict(overall)} · skill {skill_text(overall)} · "
                f"{overall.n:,} markets scored, {record.waiting:,} estimates waiting · ", code("/desk record"),
                " for the charts")


def trades_text(t: Trades) -> str:
    if not t.n:
        return "none yet"
    return (f"{t.n:,} · paper {fmt.usd(t.paper_pnl, signed=True)} · live {fmt.usd(t.live_pnl, signed=True)} · {t.hit_rate * 100:.0f}% made money")


def trade_line(key: str, t: Trades) -> Text:
    return text(bold(key), f": {trades_text(t)}")


def cut_line(key: str, score: Score) -> Text:
    return text(bold(key), f": {score.n:,} scored · Brier blend {num(score.brier_blend)} vs market "
                f"{num(score.brier_market)} (model {num(score.brier_model)}) · skill {skill_text(score)}")


def record_message(record: Record, market_weight: str = "") -> Message:
    """The record; `market_weight` says what analysis.market_weight is now (e.g. "0.65 (auto)")."""
    overall = record.overall
    title = (f"Track record — {verdict(overall)}: skill {skill_text(overall)}, {overall.n:,} markets scored, "
             f"{record.waiting:,} estimates waiting")
    tone = (Tone.GOOD if overall.beats_market and overall.n >= MIN_FOR_VERDICT else
            Tone.WARNING if overall.n else Tone.NEUTRAL)
    facts = (
        Fact("Brier (lower is better)", text(f"blend {num(overall.brier_blend)} · market "
                                             f"{num(overall.brier_market)} · model {num(overall.brier_model)}")),
        Fact("Log loss", text(f"blend {num(overall.log_loss_blend)} · market {num(overall.log_loss_market)} · "
                              f"model {num(overall.log_loss_model)}")),
        Fact("Skill vs market", text(bold(skill_text(overall)), "\n1 − Brier blend / Brier market")),
        Fact("Markets scored / estimates waiting", text(f"{overall.n:,} / {record.waiting:,}")),
        Fact("What may gate live trading", text(evidence_text(record))),
        Fact("Closed trades", text(trades_text(record.trades))),
    ) + ((Fact("Market weight in the blend", text(market_weight)),) if market_weight else ())
    sections = tuple(Section(CUT_TITLES[cut], tuple(cut_line(key, s) for key, s in list(scores.items())[:ROWS_PER_CUT]))
                     for cut, scores in record.cuts.items() if scores)
    if record.trades.n:
        sections += tuple(Section(f"Realised P&L {CUT_TITLES[cut][0].lower()}{CUT_TITLES[cut][1:]}",
                                  tuple(trade_line(key, t) for key, t in list(groups.items())[:ROWS_PER_CUT]))
                          for cut, groups in record.trade_cuts.items() if groups)
    return Message(kind="record", tone=tone, title=title, facts=facts, sections=sections,
                   footer=(text("Each resolved market counts once (its first fresh estimate against a market price); the "
                                "interval is a seeded bootstrap over those markets."),),
                   notification=title)


CSV_FIELDS = ("venue", "market_id", "title", "category", "model", "prompt_version", "model_p", "market_p",
              "blend_p", "hours_to_close", "horizon", "dry_run", "followed", "outcome")


def csv_text(record: Record) -> str:
    """Every scored estimate, one row each, for a spreadsheet (titles as the venue wrote them, quoted by csv)."""
    import csv
    import io

    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_FIELDS)
    for f in record.forecasts:
        writer.writerow([f.venue, f.market_id, _cell(f.title), _cell(f.category), f.model, f.prompt_version,
                         f.model_p, f.market_p, f.blend_p, "" if f.hours_to_close is None else
                         round(f.hours_to_close, 2), f.horizon, int(f.dry_run), f.followed, f.outcome])
    return out.getvalue()


def _cell(value: str) -> str:
    """A spreadsheet runs a cell starting with = + - @ as a formula: a market title must stay text."""
    return f"'{value}" if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value



def backtest_message(report: BacktestReport) -> Message:
    """What a backtest did: how many markets it found, asked and scored, what it cost, and why some are missing."""
    start, end = report.window
    title = (f"Backtest — {report.asked:,} asked, {report.scored:,} scored, ${report.cost_usd:.2f} · "
             f"{report.lead_hours:g} h before close · {report.model}")
    lines = [
        text(f"Settled markets that closed {start:%Y-%m-%d} to {end:%Y-%m-%d}: {report.found:,} found · "
             f"{report.resumed:,} asked by an earlier run (not asked again) · {report.no_price:,} without a price "
             f"{report.lead_hours:g} h before close · {report.not_answered:,} not answered"),
        text(report.cutoff_sentence() + (" The window you asked for reached back before it and was cut there."
                                         if report.before_cutoff_asked else "")),
        *(text(one_line(note, 300)) for note in report.notes[:5]),
    ]
    return Message(kind="backtest", tone=Tone.GOOD if report.asked else Tone.WARNING, title=title,
                   lines=tuple(lines), notification=title)
