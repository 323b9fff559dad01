"""Analysers turn markets into fair-probability estimates.

`SampleAnalyzer` replays the bundled sample estimates (offline demo, tests); the Claude
analyser implements the same `Analyzer` protocol.
"""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Protocol

from .models import CycleReport, Estimate, Market
from .reporter import ErrorReporter
from .strategy import blend, initial_market_weight


class Analyzer(Protocol):
    market_weight: Decimal  # the market's share of the blend; the desk sets it when analysis.market_weight is "auto"

    async def analyze(self, markets: list[Market], reporter: ErrorReporter) -> list[Estimate]:
        """One estimate per market it could analyse; the rest are counted in the report."""

    async def aclose(self) -> None:
        """Release connections."""


SETTLED_ESTIMATES = "settled_estimates.json"


class SampleAnalyzer:
    """Recorded model probabilities (made without seeing prices), blended like live ones."""

    def __init__(self, path: Path, market_weight: Decimal | str) -> None:
        data = json.loads(path.read_text(encoding="utf-8"))
        self.model = str(data.get("model", "sample"))
        self.market_weight = initial_market_weight(market_weight)
        self._estimates: dict[str, dict] = dict(data["estimates"])
        # The settled sample's recorded estimates and its own knowledge cutoff, so `oddsdesk backtest --snapshot
        # sample` runs offline as it is (scripts/make_backtest_sample.py writes them).
        settled = path.with_name(SETTLED_ESTIMATES)
        extra = json.loads(settled.read_text(encoding="utf-8")) if settled.exists() else {}
        self._estimates.update(extra.get("estimates") or {})
        cutoff = extra.get("knowledge_cutoff") or data.get("knowledge_cutoff")
        self.knowledge_cutoff = date.fromisoformat(cutoff) if isinstance(cutoff, str) else None

    async def analyze(self, markets: list[Market], reporter: ErrorReporter) -> list[Estimate]:
        report: CycleReport = reporter.report
        estimates = []
        for market in markets:
            recorded = self._estimates.get(market.key)
            if recorded is None:
                report.invalid += 1
                report.rejections["no_estimate"] += 1
                continue
            model_p = Decimal(str(recorded["probability"]))
            market_p = market.mid
            estimates.append(Estimate(
                market_key=market.key, model_probability=model_p, market_probability=market_p,
                fair_probability=blend(model_p, market_p, self.market_weight), market_weight=self.market_weight,
                confidence=Decimal(str(recorded.get("confidence", "0.5"))),
                reasoning=str(recorded.get("reasoning", "")), key_factors=tuple(recorded.get("key_factors", ())),
                source="sample", model=self.model, prompt_version="sample"))
            report.analysed += 1
        return estimates

    async def aclose(self) -> None:
        pass
