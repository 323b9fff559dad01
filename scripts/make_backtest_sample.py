"""Regenerate the backtest's part of pipeline/sample/: settled.json and settled_estimates.json.

    .venv/bin/python scripts/make_backtest_sample.py

SAMPLE DATA: every market, price path and estimate below is invented. The wire payloads are what the test suite's
fake Kalshi serves for them (GET /markets and the candlesticks route, in Kalshi's 2026 format), so the snapshot
reads them through the live parsers. Deterministic: fixed tables and a seeded Random, so re-running changes
nothing. `oddsdesk backtest --snapshot sample` then runs offline: 24 markets that closed after the sample's
knowledge cutoff and 2 before it, which the backtest leaves out.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.servers.kalshi import FakeKalshi  # noqa: E402 - the fake renders the wire format
from tests.test_kalshi import rsa_key  # noqa: E402

OUT = ROOT / "pipeline" / "sample"
CAPTURED_AT = datetime(2026, 11, 20, 15, 0, tzinfo=timezone.utc)  # the snapshot's moment (manifest.json)
CUTOFF = "2026-06-30"
LABEL = "SAMPLE DATA - invented settled markets, price paths and model estimates for the offline backtest"
SERIES = (("KXCPI", "Will US CPI inflation for {m} come in above {x}%?"),
          ("KXGDPNOW", "Will the Atlanta Fed GDPNow estimate be above {x}% on the last day of {m}?"),
          ("KXHIGHNY", "Will the high temperature in NYC be above {x}5°F on {m} 15?"),
          ("KXNFLWINS", "Will the home team win game {x} of the {m} slate?"))
MONTHS = ("Jul", "Aug", "Sep", "Oct", "Nov")


def table(rng: random.Random) -> list[dict]:
    """26 markets: close time, where the market priced it 24 h before, how it resolved, what the 'model' said."""
    rows = []
    for i in range(26):
        series, title = SERIES[i % len(SERIES)]
        before_cutoff = i >= 24
        close = (datetime(2026, 6, 10, 20, tzinfo=timezone.utc) + timedelta(days=i - 24) if before_cutoff else
                 datetime(2026, 7, 15, 20, tzinfo=timezone.utc) + timedelta(days=4 * i + rng.randint(0, 3)))
        month = MONTHS[min((close.month - 7), 4)] if close.month >= 7 else "Jun"
        market_p = round(rng.uniform(0.15, 0.85), 2)
        won = rng.random() < market_p + (0.08 if i % 3 else -0.05)  # the market is roughly right
        # The invented model leans the right way a little more often than the market: a record worth reading.
        lean = 0.12 if (won == (i % 4 != 0)) else -0.10
        model_p = min(0.95, max(0.05, round(market_p + (lean if won else -lean), 2)))
        rows.append({"ticker": f"{series}-26{month.upper()}{i:02d}-T{i % 7 + 1}", "title": title.format(
            m=month, x=i % 7 + 2), "close": close, "market_p": market_p, "won": won, "model_p": model_p})
    return rows


async def render(rows: list[dict]) -> dict:
    """What the fake Kalshi serves for these markets: the listing and each one's hourly candlesticks."""
    fake = FakeKalshi(rsa_key(0).public_key(), now=CAPTURED_AT)
    rng = random.Random(7)
    for row in rows:
        path = []
        for hours in range(48, 0, -1):  # two days of hourly quotes drifting to where the market stood
            mid = min(0.97, max(0.03, row["market_p"] + rng.uniform(-0.03, 0.03) * hours / 24))
            at = row["close"] - timedelta(hours=hours)
            path.append((at, f"{max(0.01, mid - 0.01):.2f}", f"{min(0.99, mid + 0.01):.2f}", None))
        fake.add_settled_market(row["ticker"], "yes" if row["won"] else "no", row["close"], history=path)
    async with fake.serve():
        async with httpx.AsyncClient(base_url=fake.base_url) as http:
            start = int(min(r["close"] for r in rows).timestamp()) - 1
            end = int(max(r["close"] for r in rows).timestamp()) + 1
            listing = (await http.get("/markets", params={"min_close_ts": start, "max_close_ts": end,
                                                          "limit": 1000})).json()
            candles = {}
            for row in rows:
                series = row["ticker"].split("-")[0]
                close = int(row["close"].timestamp())
                answer = await http.get(f"/series/{series}/markets/{row['ticker']}/candlesticks",
                                        params={"start_ts": close - 2 * 86400, "end_ts": close,
                                                "period_interval": 60})
                answer.raise_for_status()
                candles[row["ticker"]] = answer.json()
    titled = {r["ticker"]: r["title"] for r in rows}
    markets = [{**m, "title": titled.get(m["ticker"], m.get("title", ""))} for m in listing["markets"]]
    return {"label": LABEL, "kalshi": {"markets": markets, "candlesticks": candles}, "polymarket": {}}


def estimates(rows: list[dict]) -> dict:
    return {"label": LABEL, "knowledge_cutoff": CUTOFF, "estimates": {
        f"kalshi:{r['ticker']}": {"probability": r["model_p"], "confidence": 0.6,
                                  "reasoning": "SAMPLE: an invented estimate for the offline backtest.",
                                  "key_factors": ["sample"]} for r in rows}}


def main() -> None:
    rows = table(random.Random(20261206))
    (OUT / "settled.json").write_text(json.dumps(asyncio.run(render(rows)), separators=(",", ":")) + "\n",
                                      encoding="utf-8")
    (OUT / "settled_estimates.json").write_text(json.dumps(estimates(rows), indent=1) + "\n", encoding="utf-8")
    for r in rows:
        print(f"{r['ticker']:28} closes {r['close']:%Y-%m-%d}  market {r['market_p']:.2f}  model {r['model_p']:.2f}"
              f"  {'YES' if r['won'] else 'NO '}")


if __name__ == "__main__":
    main()
