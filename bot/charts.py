"""The analyst's track record as PNG charts: calibration and cumulative realised P&L.

Pure: data in, PNG bytes out. Drawn on a private `Figure` with the Agg canvas (never pyplot's global state), so it
is safe from any thread and needs no display. The same input gives the same bytes (no timestamp or software
version is written into the PNG).
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from pipeline.record import Score

WIDTH_IN, HEIGHT_IN, DPI = 9.0, 6.0, 100  # 900 x 600 px: readable in a Slack preview without opening it
MODEL_COLOUR, BLEND_COLOUR, COUNT_COLOUR = "#1f77b4", "#d62728", "#9e9e9e"
SERIES_COLOURS = ("#2e7d32", "#1565c0", "#ef6c00", "#6a1b9a", "#00838f", "#5d4037")
MARGIN = 0.03  # around [0, 1], so a point at 0 or 1 is not cut in half
NO_FORECASTS = "no settled forecasts yet"
NO_TRADES = "no settled trades yet"


@dataclass(frozen=True)
class CalibrationBin:
    """One forecast-probability bin [low, high): how many settled markets fell in it, the mean forecast of the
    model and of the blend (model mixed with the market) for them, and how often they resolved YES."""

    low: float
    high: float
    count: int
    model_mean: float | None
    blend_mean: float | None
    outcome_rate: float | None
    # The blend's forecasts can fall in other bins than the model's: then its own count and YES rate per bin.
    blend_count: int | None = None
    blend_rate: float | None = None

    def rate_of(self, series: str) -> float | None:
        return self.blend_rate if series == "blend" and self.blend_count is not None else self.outcome_rate

    def count_of(self, series: str) -> int:
        return self.blend_count if series == "blend" and self.blend_count is not None else self.count


def calibration_png(bins: Sequence[CalibrationBin], *, title: str) -> bytes:
    """A calibration chart (observed YES rate against mean forecast, per bin) so a reader can see at a glance
    whether the model's and the blend's probabilities mean what they say."""
    figure = _figure()
    grid = figure.add_gridspec(2, 1, height_ratios=(4, 1), hspace=0.08)
    ax = figure.add_subplot(grid[0])
    strip = figure.add_subplot(grid[1], sharex=ax)
    ax.set_title(title, parse_math=False)
    ax.plot((0, 1), (0, 1), linestyle="--", color="#757575", linewidth=1, label="perfect calibration")
    series = (("model", MODEL_COLOUR, "o", _model_mean), ("blend", BLEND_COLOUR, "s", _blend_mean))
    usable = [b for b in bins if any(b.count_of(name) > 0 and b.rate_of(name) is not None for name, *_ in series)]
    largest = max((b.count_of(name) for b in usable for name, *_ in series), default=1) or 1
    for name, colour, marker, mean_of in series:
        points = [(mean_of(b), b.rate_of(name), b.count_of(name)) for b in usable
                  if mean_of(b) is not None and b.rate_of(name) is not None and b.count_of(name) > 0]
        if not points:
            continue
        xs, ys, counts = zip(*points, strict=True)
        ax.plot(xs, ys, color=colour, linewidth=1, alpha=0.6)
        ax.scatter(xs, ys, s=[_marker_area(n, largest) for n in counts], color=colour, marker=marker,
                   edgecolors="white", linewidths=0.8, zorder=3, label=f"{name} (size = markets)")
    if not usable:
        ax.text(0.5, 0.5, NO_FORECASTS, transform=ax.transAxes, ha="center", va="center", fontsize=14,
                color="#616161", parse_math=False, bbox={"facecolor": "white", "edgecolor": "none"})
    ax.set_xlim(-MARGIN, 1 + MARGIN)
    ax.set_ylim(-MARGIN, 1 + MARGIN)
    ax.set_ylabel("observed frequency")
    ax.grid(True, linewidth=0.4, alpha=0.5)
    ax.legend(loc="upper left", fontsize=9, frameon=False)
    ax.tick_params(labelbottom=False)
    _count_strip(strip, bins)
    strip.set_xlabel("forecast probability")
    return _png(figure)


def pnl_png(series: Mapping[str, Sequence[tuple[datetime, float]]], *, title: str) -> bytes:
    """Cumulative realised P&L in dollars over time, one line per book (e.g. "paper", "live"), so the desk's
    result is one picture. Each point is one settlement's realised P&L; the chart adds them up in time order."""
    figure = _figure()
    ax = figure.add_subplot()
    ax.set_title(title, parse_math=False)
    ax.axhline(0, color="#424242", linewidth=0.8)
    drawn = 0
    for i, (name, points) in enumerate(series.items()):
        steps = cumulative(points)
        if not steps:
            continue
        xs, ys = zip(*steps, strict=True)
        colour = SERIES_COLOURS[i % len(SERIES_COLOURS)]
        ax.step(xs, ys, where="post", color=colour, linewidth=1.8, label=f"{name}: {_dollars(ys[-1])}")
        ax.plot(xs[-1:], ys[-1:], marker="o", color=colour)
        drawn += 1
    if drawn:
        locator = AutoDateLocator()
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))
        ax.legend(loc="upper left", fontsize=9, frameon=False)
    else:
        ax.text(0.5, 0.5, NO_TRADES, transform=ax.transAxes, ha="center", va="center", fontsize=14,
                color="#616161", parse_math=False)
        ax.set_xticks([])
        ax.set_yticks([0])
    ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _pos: _dollars(value)))
    ax.set_ylabel("cumulative realised P&L (USD)")
    ax.set_xlabel("settled")
    ax.grid(True, linewidth=0.4, alpha=0.5)
    return _png(figure)


def cumulative(points: Iterable[tuple[datetime, float]]) -> list[tuple[datetime, float]]:
    """Running totals of realised P&L in time order, starting from zero at the first settlement."""
    ordered = sorted(points, key=lambda point: point[0])
    if not ordered:
        return []
    total = 0.0
    steps = [(ordered[0][0], 0.0)]
    for when, amount in ordered:
        total += float(amount)
        steps.append((when, total))
    return steps


# --- drawing helpers ---------------------------------------------------------------------------------------------


def _figure() -> Figure:
    figure = Figure(figsize=(WIDTH_IN, HEIGHT_IN), dpi=DPI, facecolor="white")
    FigureCanvasAgg(figure)
    return figure


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()


def _count_strip(ax: Axes, bins: Sequence[CalibrationBin]) -> None:
    """Markets per bin as bars under the chart: a point drawn from three markets should look it."""
    drawable = [b for b in bins if b.high > b.low]
    if drawable:
        ax.bar([b.low for b in drawable], [b.count for b in drawable], width=[b.high - b.low for b in drawable],
               align="edge", color=COUNT_COLOUR, edgecolor="white", linewidth=0.8)
        top = max(b.count for b in drawable)
        for b in drawable:
            ax.text((b.low + b.high) / 2, b.count, str(b.count), ha="center", va="bottom", fontsize=8)
        ax.set_ylim(0, max(top, 1) * 1.35)
    else:
        ax.set_ylim(0, 1)
    ax.set_xlim(-MARGIN, 1 + MARGIN)
    ax.set_ylabel("markets", fontsize=9)
    ax.set_yticks([])


def _model_mean(b: CalibrationBin) -> float | None:
    return b.model_mean


def _blend_mean(b: CalibrationBin) -> float | None:
    return b.blend_mean


def _marker_area(count: int, largest: int) -> float:
    return 30.0 + 270.0 * (count / largest) ** 0.5


def _dollars(value: float) -> str:
    """"$1,250", "-$12.50": cents only when there are some."""
    sign = "-" if value < 0 else ""
    amount = abs(value)
    return f"{sign}${amount:,.0f}" if round(amount, 2) == round(amount) else f"{sign}${amount:,.2f}"


def record_bins(score: Score) -> list[CalibrationBin]:
    """The track record's model and blend calibration (pipeline/record.py), bin by bin, as drawn here."""
    return [CalibrationBin(m.low, m.high, m.count, m.mean_forecast, b.mean_forecast, m.outcome_rate,
                           blend_count=b.count, blend_rate=b.outcome_rate)
            for m, b in zip(score.calibration_model, score.calibration_blend)]


def realized_pnl(entries: Iterable[tuple[bool, datetime, Decimal]]) -> dict[str, list[tuple[datetime, float]]]:
    """Each realised P&L entry (paper?, when it was booked, amount): an exit fill or a settlement, by book ("paper",
    "live"), for pnl_png. Partial exits count when they fill, as the bankroll counts them."""
    books: dict[str, list[tuple[datetime, float]]] = {}
    for paper, at, pnl in entries:
        books.setdefault("paper" if paper else "live", []).append((at, float(pnl)))
    return books
