"""bot/charts.py: PNGs that open at the promised size, the same bytes for the same input, no crash on thin data."""

from __future__ import annotations

import io
import threading
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from matplotlib import image

from bot.charts import NO_TRADES, CalibrationBin, calibration_png, cumulative, pnl_png

PNG = b"\x89PNG\r\n\x1a\n"
T0 = datetime(2025, 3, 1, 12, tzinfo=UTC)


def opened(data: bytes) -> np.ndarray:
    assert data.startswith(PNG)
    return image.imread(io.BytesIO(data), format="png")


def bins() -> list[CalibrationBin]:
    counts = [0, 3, 8, 12, 20, 25, 14, 9, 4, 1]
    return [CalibrationBin(i / 10, (i + 1) / 10, n, (i + 0.5) / 10 if n else None, (i + 0.45) / 10 if n else None,
                           min(1.0, (i + 0.5) / 10 + 0.05) if n else None) for i, n in enumerate(counts)]


def books() -> dict[str, list[tuple[datetime, float]]]:
    return {"paper": [(T0 + timedelta(days=i), (-1) ** i * 12.5 + 3) for i in range(30)],
            "live": [(T0 + timedelta(days=3 * i), 40 - 5 * i) for i in range(8)]}


def test_calibration_is_a_900_by_600_png():
    pixels = opened(calibration_png(bins(), title="Analyst calibration"))
    assert pixels.shape[:2] == (600, 900)


def test_pnl_is_a_900_by_600_png():
    pixels = opened(pnl_png(books(), title="Realised P&L"))
    assert pixels.shape[:2] == (600, 900)


def test_the_same_input_gives_the_same_bytes():
    assert calibration_png(bins(), title="c") == calibration_png(bins(), title="c")
    assert pnl_png(books(), title="p") == pnl_png(books(), title="p")


def test_the_png_carries_no_software_or_time_stamp():
    data = pnl_png(books(), title="p")
    assert b"Software" not in data and b"tIME" not in data and b"matplotlib" not in data.lower()


def test_different_data_draws_a_different_picture():
    other = bins()
    other[5] = CalibrationBin(0.5, 0.6, 25, 0.55, 0.55, 0.2)
    assert calibration_png(other, title="c") != calibration_png(bins(), title="c")


@pytest.mark.parametrize("thin", [
    [],
    [CalibrationBin(0.0, 0.1, 0, None, None, None)],
    [CalibrationBin(0.4, 0.5, 0, 0.45, 0.45, None)],  # means without outcomes: nothing to plot
    [CalibrationBin(0.9, 1.0, 1, 1.0, None, 1.0)],  # a model point on the corner, no blend
    [CalibrationBin(0.0, 0.1, 2, None, 0.02, 0.0)],  # blend only
    [CalibrationBin(0.5, 0.5, 3, 0.5, 0.5, 0.5)],  # a degenerate (zero-width) bin
])
def test_thin_calibration_data_still_draws(thin):
    assert opened(calibration_png(thin, title="c")).shape[:2] == (600, 900)


@pytest.mark.parametrize("thin", [
    {},
    {"paper": []},
    {"paper": [(T0, 12.5)]},
    {"paper": [(T0, -3.0)], "live": []},
    {"paper": [(T0, 1.0), (T0, 2.0)]},  # two settlements at the same moment
])
def test_thin_pnl_data_still_draws(thin):
    assert opened(pnl_png(thin, title="p")).shape[:2] == (600, 900)


def test_an_empty_pnl_chart_says_so_and_differs_from_a_drawn_one():
    empty = pnl_png({}, title="p")
    assert empty == pnl_png({"paper": []}, title="p")  # nothing settled in any book: the same picture
    assert empty != pnl_png({"paper": [(T0, 1.0)]}, title="p")
    assert NO_TRADES == "no settled trades yet"


def test_titles_are_text_not_math():
    # An unpaired or paired "$" would be parsed as mathtext (and may raise); titles are drawn as typed.
    opened(pnl_png(books(), title="P&L in $ since $start"))
    opened(calibration_png(bins(), title="edge $\\frac$ here"))  # as mathtext this raises ValueError


def test_cumulative_sorts_by_time_and_starts_at_zero():
    later, earlier = T0 + timedelta(days=2), T0
    assert cumulative([(later, -5.0), (earlier, 10.0)]) == [(earlier, 0.0), (earlier, 10.0), (later, 5.0)]
    assert cumulative([]) == []


def test_charts_can_be_drawn_from_several_threads_at_once():
    expected = pnl_png(books(), title="p")
    results: list[bytes] = []

    def draw() -> None:
        results.append(pnl_png(books(), title="p"))

    threads = [threading.Thread(target=draw) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [expected] * 4
