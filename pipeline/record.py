"""The analyst's track record: every resolved estimate scored against the market it was made against.

Pure: rows in (as Store.forecasts returns them), numbers out. Brier score and log loss of the model, the
market (its mid when the estimate was made) and the blend the desk traded on; the blend's skill against
the market (1 − Brier_blend / Brier_market: above 0 beats the market) with a seeded bootstrap 95 %
interval; calibration in ten bins; the same by venue, category, horizon and model/prompt version.

Each market counts once: its first fresh estimate (source "model" or "sample") made against a market price, per
origin (the desk's cycles, or backtests). The desk asks again about an open market every few hours; those answers
share one outcome, and counting them all would let one lucky call look like fifty. Cached answers are the same
forecast again and never count.

`evidence` is what may change how the desk trades (trading.require_record, market_weight "auto"): only the
desk's own cycles, only answers from the model itself (no recorded sample, no backtest, which a web search
or a crafted snapshot could tilt).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import numpy as np

EPSILON = 1e-6  # log loss of a 0 or 1 forecast that was wrong is finite but large
BOOTSTRAP_DRAWS = 2000
BOOTSTRAP_SEED = 20261206
CALIBRATION_BINS = 10
HORIZONS = ((24.0, "under 1 day"), (24.0 * 7, "1–7 days"), (24.0 * 30, "7–30 days"), (math.inf, "over 30 days"))


def horizon_of(hours_to_close: float | None) -> str:
    """The time-to-close bucket the record cuts by."""
    if hours_to_close is None:
        return "unknown"
    return next(label for limit, label in HORIZONS if hours_to_close < limit)


@dataclass(frozen=True)
class Forecast:
    venue: str
    market_id: str
    title: str
    category: str
    model: str
    prompt_version: str
    model_p: float
    market_p: float
    blend_p: float
    hours_to_close: float | None
    dry_run: bool
    followed: str  # none | signal | order
    outcome: float  # what one YES contract paid: 1, 0, or between for a split
    origin: str = "cycles"  # "cycles" (the desk's own) or "backtest" (asked afterwards, as of then)
    source: str = "model"  # "model", or "sample" (the recorded offline sample)

    @property
    def horizon(self) -> str:
        return horizon_of(self.hours_to_close)

    @property
    def version(self) -> str:
        return f"{self.model} · {self.prompt_version or 'unversioned'}"


def scored(rows: Iterable[Mapping[str, Any]]) -> list[Forecast]:
    """The rows that can be scored: resolved, fresh, made against a market price; each market's first, per origin
    (rows come oldest first)."""
    out = []
    seen: set[tuple[str, str, str]] = set()
    for row in rows:
        if row.get("outcome") is None or row.get("market_probability") is None:
            continue
        if row.get("source") not in ("model", "sample"):
            continue
        origin = "backtest" if str(row.get("cycle_id") or "").startswith("backtest-") else "cycles"
        key = (origin, str(row.get("venue") or ""), str(row.get("market_id") or row.get("market_key") or ""))
        if key in seen:
            continue
        seen.add(key)
        out.append(Forecast(
            venue=row.get("venue") or "", market_id=row.get("market_id") or "", title=row.get("title") or "",
            category=row.get("category") or "", model=row.get("model") or "",
            prompt_version=row.get("prompt_version") or "", model_p=float(Decimal(row["model_probability"])),
            market_p=float(Decimal(row["market_probability"])), blend_p=float(Decimal(row["fair_probability"])),
            hours_to_close=row.get("hours_to_close"), dry_run=bool(row.get("dry_run", 1)),
            followed=row.get("followed") or "none", outcome=float(Decimal(row["outcome"])), origin=origin,
            source=str(row.get("source"))))
    return out


def brier(probabilities: Sequence[float], outcomes: Sequence[float]) -> float:
    """Mean squared error of the forecasts: 0 is perfect, 0.25 is always saying 50 %."""
    if not probabilities:
        return math.nan
    return sum((p - o) ** 2 for p, o in zip(probabilities, outcomes)) / len(probabilities)


def log_loss(probabilities: Sequence[float], outcomes: Sequence[float]) -> float:
    """Mean negative log-likelihood (natural log), forecasts kept within [ε, 1 − ε]."""
    if not probabilities:
        return math.nan
    total = 0.0
    for p, o in zip(probabilities, outcomes):
        p = min(max(p, EPSILON), 1 - EPSILON)
        total -= o * math.log(p) + (1 - o) * math.log(1 - p)
    return total / len(probabilities)


def skill(candidate: float, reference: float) -> float:
    """1 − Brier_candidate / Brier_reference: above 0 the candidate beats the reference."""
    if math.isnan(candidate) or math.isnan(reference) or reference == 0:
        return math.nan
    return 1 - candidate / reference


def bootstrap_skill(forecasts: Sequence[Forecast], *, draws: int = BOOTSTRAP_DRAWS, seed: int = BOOTSTRAP_SEED,
                    ) -> tuple[float, float]:
    """A 95 % interval for the blend's skill against the market: forecasts resampled with replacement, seeded.

    Each resample's skill is 1 − Σ blend errors / Σ market errors over the drawn forecasts, so the squared errors
    are computed once and the draws are index sums (numpy, in chunks: thousands of estimates stay fast)."""
    n = len(forecasts)
    if n < 2:
        return math.nan, math.nan
    blend_err = np.array([(f.blend_p - f.outcome) ** 2 for f in forecasts])
    market_err = np.array([(f.market_p - f.outcome) ** 2 for f in forecasts])
    rng = np.random.default_rng(seed)
    values: list[np.ndarray] = []
    chunk = max(1, 2_000_000 // n)  # about 16 MB of indices at a time
    for start in range(0, draws, chunk):
        idx = rng.integers(0, n, size=(min(chunk, draws - start), n))
        market = market_err[idx].sum(axis=1)
        blend_sum = blend_err[idx].sum(axis=1)
        ok = market > 0
        values.append(1 - blend_sum[ok] / market[ok])
    found = np.sort(np.concatenate(values))
    if found.size == 0:
        return math.nan, math.nan
    return float(found[int(0.025 * (found.size - 1))]), float(found[int(math.ceil(0.975 * (found.size - 1)))])


@dataclass(frozen=True)
class CalibrationBin:
    low: float
    high: float
    count: int
    mean_forecast: float | None
    outcome_rate: float | None


def calibration(probabilities: Sequence[float], outcomes: Sequence[float], bins: int = CALIBRATION_BINS
                ) -> list[CalibrationBin]:
    """Forecasts in `bins` equal-width bins (1.0 in the last): count, mean forecast, observed frequency."""
    grouped: list[list[tuple[float, float]]] = [[] for _ in range(bins)]
    for p, o in zip(probabilities, outcomes):
        grouped[min(int(p * bins), bins - 1)].append((p, o))
    out = []
    for i, members in enumerate(grouped):
        mean = sum(p for p, _ in members) / len(members) if members else None
        rate = sum(o for _, o in members) / len(members) if members else None
        out.append(CalibrationBin(i / bins, (i + 1) / bins, len(members), mean, rate))
    return out


@dataclass(frozen=True)
class Score:
    n: int
    brier_model: float
    brier_market: float
    brier_blend: float
    log_loss_model: float
    log_loss_market: float
    log_loss_blend: float
    skill: float  # the blend against the market
    skill_low: float
    skill_high: float
    calibration_model: list[CalibrationBin] = field(default_factory=list)
    calibration_blend: list[CalibrationBin] = field(default_factory=list)

    @property
    def beats_market(self) -> bool:
        """The whole 95 % interval of the blend's skill is above zero."""
        return not math.isnan(self.skill_low) and self.skill_low > 0


def score(forecasts: Sequence[Forecast], *, draws: int = BOOTSTRAP_DRAWS, seed: int = BOOTSTRAP_SEED) -> Score:
    outcomes = [f.outcome for f in forecasts]
    model, market, blend = ([f.model_p for f in forecasts], [f.market_p for f in forecasts],
                            [f.blend_p for f in forecasts])
    low, high = bootstrap_skill(forecasts, draws=draws, seed=seed)
    return Score(n=len(forecasts), brier_model=brier(model, outcomes), brier_market=brier(market, outcomes),
                 brier_blend=brier(blend, outcomes), log_loss_model=log_loss(model, outcomes),
                 log_loss_market=log_loss(market, outcomes), log_loss_blend=log_loss(blend, outcomes),
                 skill=skill(brier(blend, outcomes), brier(market, outcomes)), skill_low=low, skill_high=high,
                 calibration_model=calibration(model, outcomes), calibration_blend=calibration(blend, outcomes))


CUTS: dict[str, Callable[[Forecast], str]] = {
    "origin": lambda f: f.origin,
    "venue": lambda f: f.venue or "unknown",
    "category": lambda f: f.category or "unknown",
    "horizon": lambda f: f.horizon,
    "version": lambda f: f.version,
}


def breakdown(forecasts: Sequence[Forecast], cut: str, *, draws: int = 500) -> dict[str, Score]:
    """Scores per value of one cut (venue, category, horizon, version), largest group first."""
    groups: dict[str, list[Forecast]] = {}
    for f in forecasts:
        groups.setdefault(CUTS[cut](f), []).append(f)
    ordered = sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    return {key: score(members, draws=draws) for key, members in ordered}


AUTO_WEIGHT_LOW, AUTO_WEIGHT_HIGH, AUTO_WEIGHT_STEP = 0.2, 1.0, 0.05  # the model never fully overrides the market


def best_market_weight(forecasts: Sequence[Forecast]) -> float:
    """The market's share w (bounded, in steps) that minimises the Brier score of w·market + (1 − w)·model over the
    record; the lower w on a tie (keep as much of the model as the record allows)."""
    outcomes = [f.outcome for f in forecasts]
    steps = int(round((AUTO_WEIGHT_HIGH - AUTO_WEIGHT_LOW) / AUTO_WEIGHT_STEP))
    best_w, best = AUTO_WEIGHT_LOW, math.inf
    for i in range(steps + 1):
        w = round(AUTO_WEIGHT_LOW + i * AUTO_WEIGHT_STEP, 4)
        value = brier([w * f.market_p + (1 - w) * f.model_p for f in forecasts], outcomes)
        if value < best - 1e-12:
            best_w, best = w, value
    return best_w


@dataclass(frozen=True)
class Trades:
    """Realised P&L of closed positions in one group, paper and live apart, and how many made money."""

    n: int
    paper_pnl: float
    live_pnl: float
    hit_rate: float  # share of closed positions with a positive realised P&L


def trades(rows: Sequence[Mapping[str, Any]]) -> Trades:
    pnl = [(bool(r.get("paper")), float(Decimal(str(r.get("realized_pnl") or 0)))) for r in rows]
    return Trades(n=len(pnl), paper_pnl=sum(v for paper, v in pnl if paper),
                  live_pnl=sum(v for paper, v in pnl if not paper),
                  hit_rate=sum(1 for _, v in pnl if v > 0) / len(pnl) if pnl else math.nan)


TRADE_CUTS: dict[str, Callable[[Mapping[str, Any]], str]] = {
    "venue": lambda r: r.get("venue") or "unknown",
    "category": lambda r: r.get("category") or "unknown",
    "horizon": lambda r: horizon_of(r.get("hours_to_close")),
    "version": lambda r: f"{r.get('model') or '?'} · {r.get('prompt_version') or 'unversioned'}",
}


def trade_breakdown(rows: Sequence[Mapping[str, Any]], cut: str) -> dict[str, Trades]:
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for row in rows:
        groups.setdefault(TRADE_CUTS[cut](row), []).append(row)
    return {key: trades(members) for key, members in sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0]))}


@dataclass(frozen=True)
class Record:
    """What `oddsdesk record` and `/desk record` show."""

    overall: Score
    cuts: dict[str, dict[str, Score]]
    waiting: int  # estimates whose markets have not resolved yet (or could not be compared)
    forecasts: list[Forecast]
    trades: Trades = Trades(0, 0.0, 0.0, math.nan)
    trade_cuts: dict[str, dict[str, Trades]] = field(default_factory=dict)
    evidence: Score | None = None  # the desk's own cycles, the model's own answers: what may change trading

    @property
    def evidence_forecasts(self) -> list[Forecast]:
        return [f for f in self.forecasts if is_evidence(f)]


def is_evidence(f: Forecast) -> bool:
    return f.origin == "cycles" and f.source == "model"


def build(rows: Sequence[Mapping[str, Any]], trade_rows: Sequence[Mapping[str, Any]] = ()) -> Record:
    forecasts = scored(rows)
    return Record(overall=score(forecasts), cuts={cut: breakdown(forecasts, cut) for cut in CUTS},
                  waiting=sum(1 for r in rows if r.get("outcome") is None and r.get("close_time")),
                  forecasts=forecasts, trades=trades(trade_rows),
                  trade_cuts={cut: trade_breakdown(trade_rows, cut) for cut in TRADE_CUTS},
                  evidence=score([f for f in forecasts if is_evidence(f)]))
