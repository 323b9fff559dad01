"""The backtest: resolved markets after the model's knowledge cutoff, asked as of a lead time before they closed at
the price then, kept in the record and scored at once; resumable; refused without a cutoff."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal as D

import pytest

from bot.present import plain
from bot.present.record import backtest_message
from pipeline.backtest import BacktestRequest
from pipeline.desk import Desk
from pipeline.errors import RefusedError
from pipeline.models import Market, Resolution, Venue
from pipeline.store import Store

from .conftest import make_settings
from .fakes import FakeVenue, make_market
from .test_desk import Clock, FixedAnalyzer

UTC = timezone.utc
NOW = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)
CUTOFF = date(2026, 6, 30)


class SettledVenue(FakeVenue):
    """A venue whose resolved markets and price histories the test sets."""

    def __init__(self) -> None:
        super().__init__()
        self.settled_list: list[tuple[Market, Resolution]] = []
        self.prices: dict[str, list[tuple[datetime, D]]] = {}
        self.windows: list[tuple[datetime, datetime]] = []

    def add_settled(self, market: Market, yes_payout: str, history: Sequence[tuple[datetime, str]] = ()) -> None:
        self.settled_list.append((market, Resolution(venue=market.venue, market_id=market.id,
                                                     yes_payout=D(yes_payout))))
        self.prices[market.id] = [(at, D(p)) for at, p in history]

    async def settled_markets(self, closed_after: datetime, closed_before: datetime, limit: int
                              ) -> list[tuple[Market, Resolution]]:
        self.windows.append((closed_after, closed_before))
        inside = [(m, r) for m, r in self.settled_list if closed_after <= m.close_time < closed_before]
        return sorted(inside, key=lambda mr: mr[0].close_time, reverse=True)[:limit]

    async def price_at(self, market: Market, at: datetime) -> D | None:
        before = [(t, p) for t, p in self.prices.get(market.id, []) if t <= at and at - t <= timedelta(days=1)]
        return max(before)[1] if before else None


class DatedAnalyzer(FixedAnalyzer):
    """Records what "today" was when it was asked, as the real analyst puts it in the prompt."""

    def __init__(self, probabilities: dict[str, str]) -> None:
        super().__init__(probabilities)
        self.as_of: dict[str, datetime] = {}
        self.asked_on: list[datetime | None] = []

    async def analyze(self, markets, reporter):
        self.asked_on.extend(self.as_of.get(m.key) for m in markets)
        return await super().analyze(markets, reporter)


def closed(ticker: str, when: datetime) -> Market:
    return make_market(ticker, now=when - timedelta(days=10))  # make_market closes it 10 days after `now`


async def setup(tmp_path, *, cutoffs: dict | None = None):
    venue = SettledVenue()
    a_close, b_close = datetime(2026, 9, 1, 18, tzinfo=UTC), datetime(2026, 10, 1, 18, tzinfo=UTC)
    a, b = closed("KXA-26SEP-T1", a_close), closed("KXB-26OCT-T1", b_close)
    old = closed("KXOLD-26MAY-T1", datetime(2026, 5, 1, 18, tzinfo=UTC))
    blind = closed("KXNOPRICE-26OCT-T1", datetime(2026, 10, 15, 18, tzinfo=UTC))
    venue.add_settled(a, "1", [(a_close - timedelta(hours=30), "0.35"), (a_close - timedelta(hours=25), "0.40")])
    venue.add_settled(b, "0", [(b_close - timedelta(hours=24), "0.55")])
    venue.add_settled(old, "1", [(old.close_time - timedelta(hours=24), "0.50")])
    venue.add_settled(blind, "1")
    analyzer = DatedAnalyzer({m.key: "0.70" for m in (a, b, old, blind)})
    settings = make_settings(tmp_path, analysis={"knowledge_cutoff": {"claude-sonnet-5-5": str(CUTOFF)}
                                                 if cutoffs is None else cutoffs},
                             storage={"path": str(tmp_path / "d.db")})
    store = await Store.open(settings.storage.path)
    desk = Desk(settings, store, {Venue.KALSHI: venue}, analyzer, clock=Clock(NOW))
    return desk, venue, analyzer, store, (a, b)


async def test_a_backtest_asks_as_of_the_lead_time_at_the_price_then_and_scores_at_once(tmp_path):
    desk, venue, analyzer, store, (a, b) = await setup(tmp_path)
    seen: list[tuple[int, int]] = []
    report = await desk.backtest(BacktestRequest(lead_hours=24), progress=lambda d, t, w: seen.append((d, t)))
    assert venue.windows == [(datetime(2026, 7, 1, tzinfo=UTC), NOW)]  # asked as of no earlier than the cutoff
    assert (report.found, report.asked, report.scored, report.no_price, report.resumed) == (3, 2, 2, 1, 0)
    assert seen[0] == (0, 3) and seen[-1] == (3, 3)
    # Dated as of 24 h before each close, newest close first.
    assert analyzer.asked_on == [b.close_time - timedelta(hours=24), a.close_time - timedelta(hours=24)]
    rows = {r["market_id"]: r for r in await store.forecasts()}
    assert rows[a.id]["market_probability"] == "0.40" and rows[b.id]["market_probability"] == "0.55"
    assert rows[a.id]["hours_to_close"] == pytest.approx(24) and rows[a.id]["lead_hours"] == 24
    assert rows[a.id]["outcome"] == "1" and rows[b.id]["outcome"] == "0"
    assert rows[a.id]["cycle_id"].startswith("backtest-")
    record = report.record
    assert record is not None and record.overall.n == 2 and record.forecasts[0].origin == "backtest"
    # blend 0.5 x 0.70 + 0.5 x price: A 0.55 (YES won), B 0.625 (NO won); market 0.40 and 0.55
    assert record.overall.brier_blend == pytest.approx((0.45 ** 2 + 0.625 ** 2) / 2)
    assert record.overall.brier_market == pytest.approx((0.6 ** 2 + 0.55 ** 2) / 2)
    said = plain.render(backtest_message(report))
    assert "2 asked, 2 scored" in said and "before 2026-06-30" in said and "1 without a price 24 h before" in said
    assert (await desk.track_record()).cuts["origin"]["backtest"].n == 2
    await store.close()


async def test_a_backtest_resumes_where_it_was_and_says_when_the_window_reached_before_the_cutoff(tmp_path):
    desk, venue, analyzer, store, _ = await setup(tmp_path)
    await desk.backtest(BacktestRequest(lead_hours=24))
    again = await desk.backtest(BacktestRequest(lead_hours=24, since=datetime(2026, 4, 1, tzinfo=UTC)))
    assert (again.resumed, again.asked, again.no_price) == (2, 0, 1)  # the old market stays out: before the cutoff
    assert again.before_cutoff_asked and venue.windows[-1][0] == datetime(2026, 7, 1, tzinfo=UTC)
    assert "was cut there" in plain.render(backtest_message(again))
    other_lead = await desk.backtest(BacktestRequest(lead_hours=48))  # another lead is another question
    assert other_lead.resumed == 0 and len(analyzer.asked_on) == 2  # 48 h before close: no price for A or B
    await store.close()


async def test_a_backtest_without_the_models_knowledge_cutoff_is_refused_and_runs_nothing(tmp_path):
    desk, venue, analyzer, store, _ = await setup(tmp_path, cutoffs={})
    with pytest.raises(RefusedError) as refused:
        await desk.backtest(BacktestRequest())
    assert refused.value.code == "no_knowledge_cutoff" and "analysis.knowledge_cutoff.claude-sonnet-5-5" in \
        refused.value.reason
    assert venue.windows == [] and analyzer.asked_on == [] and await store.forecasts() == []
    await store.close()


async def test_a_venue_whose_history_cannot_be_read_leaves_its_markets_out_with_a_note(tmp_path):
    desk, venue, analyzer, store, _ = await setup(tmp_path)

    async def broken(market, at):
        raise ConnectionError("history down")

    venue.price_at = broken
    report = await desk.backtest(BacktestRequest())
    assert (report.asked, report.no_price) == (0, 3) and report.notes == ["kalshi price history unavailable: "
                                                                         "ConnectionError"]
    await store.close()


async def test_a_backtest_against_the_fake_kalshi_reads_its_settled_markets_and_candles_and_leaves_out_the_old(
        tmp_path):
    from .servers.kalshi import FakeKalshi
    from .test_kalshi import client_for, rsa_key

    fake = FakeKalshi(rsa_key(0).public_key(), now=NOW)
    a_close, b_close = NOW - timedelta(days=20), NOW - timedelta(days=40)
    fake.add_settled_market("KXCPI-26OCT-A", "yes", a_close,
                            history=[(a_close - timedelta(hours=26), "0.30", "0.34", None),
                                     (a_close - timedelta(hours=25), "0.36", "0.40", "0.38")])
    fake.add_settled_market("KXGDP-26OCT-B", "no", b_close,
                            history=[(b_close - timedelta(hours=24, minutes=30), "0.60", "0.62", None)])
    fake.add_settled_market("KXOLD-26MAY-C", "yes", datetime(2026, 5, 20, tzinfo=UTC),  # before the cutoff
                            history=[(datetime(2026, 5, 19, tzinfo=UTC), "0.50", "0.52", None)])
    async with fake.serve():
        client = client_for(fake, unsigned=True)
        analyzer = DatedAnalyzer({"kalshi:KXCPI-26OCT-A": "0.60", "kalshi:KXGDP-26OCT-B": "0.40",
                                  "kalshi:KXOLD-26MAY-C": "0.90"})
        settings = make_settings(tmp_path, analysis={"knowledge_cutoff": {"claude-sonnet-5-5": str(CUTOFF)}},
                                 storage={"path": str(tmp_path / "k.db")})
        store = await Store.open(settings.storage.path)
        desk = Desk(settings, store, {Venue.KALSHI: client}, analyzer, clock=Clock(NOW))
        try:
            report = await desk.backtest(BacktestRequest(lead_hours=24, limit=10))
        finally:
            await client.aclose()
    assert (report.found, report.asked, report.scored, report.no_price) == (2, 2, 2, 0)
    rows = {r["market_id"]: r for r in await store.forecasts()}
    assert set(rows) == {"KXCPI-26OCT-A", "KXGDP-26OCT-B"}  # the market before the cutoff was never asked
    assert D(rows["KXCPI-26OCT-A"]["market_probability"]) == D("0.38")  # mid of 0.36 / 0.40, an hour before
    assert D(rows["KXGDP-26OCT-B"]["market_probability"]) == D("0.61")
    assert (rows["KXCPI-26OCT-A"]["outcome"], rows["KXGDP-26OCT-B"]["outcome"]) == ("1", "0")
    assert analyzer.asked_on == [a_close - timedelta(hours=24), b_close - timedelta(hours=24)]
    await store.close()


async def test_oddsdesk_backtest_on_the_bundled_sample_runs_offline_and_resumes(tmp_path):
    from .test_live_scan import oddsdesk

    db = tmp_path / "bt.db"
    code, out, err = await oddsdesk("backtest", "--snapshot", "sample", "--db", str(db), env={}, cwd=tmp_path)
    assert code == 0, err
    assert "Backtest — 24 asked, 24 scored" in out and "before 2026-06-30" in out and "are left out" in out
    assert "Track record — " in out and "24 markets scored, 0 estimates waiting" in out and "Traceback" not in err
    assert not (tmp_path / "oddsdesk.db").exists()  # sample answers never enter a desk's own record
    code, out, _ = await oddsdesk("backtest", "--snapshot", "sample", "--db", str(db), env={}, cwd=tmp_path)
    assert code == 0 and "24 found · 24 asked by an earlier run" in out and "0 asked, 0 scored" in out
    code, out, err = await oddsdesk("record", "--no-refresh", "--csv", str(tmp_path / "r.csv"), env={}, cwd=tmp_path)
    assert code == 0 and "0 scored" in out  # the desk's own record, untouched by the sample


async def test_backtest_answers_and_repeats_of_one_market_never_open_the_live_gate(tmp_path):
    """One lucky market asked fifty times, and a backtest of many winners: neither is the desk's own record."""
    from pipeline.models import Estimate

    venue = SettledVenue()
    winners = [closed(f"KXWIN-26SEP-T{i}", datetime(2026, 9, 1, 18, tzinfo=UTC) + timedelta(days=i))
               for i in range(30)]
    for m in winners:
        venue.add_settled(m, "1", [(m.close_time - timedelta(hours=24), "0.50")])
    analyzer = DatedAnalyzer({m.key: "0.90" for m in winners})
    settings = make_settings(tmp_path, trading={"dry_run": False, "require_record": True}, record={"min_scored": 10},
                             analysis={"knowledge_cutoff": {"claude-sonnet-5-5": str(CUTOFF)}},
                             approval={"authorized_users": ["UADMIN1"]}, storage={"path": str(tmp_path / "g.db")})
    store = await Store.open(settings.storage.path)
    desk = Desk(settings, store, {Venue.KALSHI: venue}, analyzer, clock=Clock(NOW))
    report = await desk.backtest(BacktestRequest())
    assert report.scored == 30 and report.record.overall.beats_market  # the backtest looks great...
    lucky = make_market("KXLUCKY-26DEC-T1", now=NOW - timedelta(days=20))
    for i in range(50):  # ...and one market the desk asked about every few hours, which then won
        await store.save_estimates(f"cycle-{i}", [Estimate(market_key=lucky.key, model_probability=D("0.8"),
                                                           market_probability=D("0.6"), fair_probability=D("0.7"))],
                                   {lucky.key: lucky}, dry_run=False)
    await store.score_market("kalshi", lucky.id, D("1"), NOW)
    record = await desk.track_record()
    assert record.evidence is not None and record.evidence.n == 1  # one market, counted once
    assert "1 of the 10 resolved markets needed" in await desk._record_gate(_live_signal())
    assert await desk.auto_market_weight() is None
    await store.close()


def _live_signal():
    from .golden import make_signal
    return make_signal(dry_run=False)


async def test_a_backtest_never_scores_the_desks_own_estimates_and_skips_questions_dated_before_the_cutoff(tmp_path):
    from pipeline.models import Estimate

    desk, venue, analyzer, store, (a, b) = await setup(tmp_path)
    mine = a.model_copy(update={"close_time": NOW + timedelta(days=30)})  # the desk's own estimate, market open
    await store.save_estimates("cycle-1", [Estimate(market_key=a.key, model_probability=D("0.5"),
                                                    market_probability=D("0.5"), fair_probability=D("0.5"))],
                               {a.key: mine})
    early = closed("KXEARLY-26JUL-T1", datetime(2026, 6, 30, 10, tzinfo=UTC))  # its lead time is before the cutoff
    venue.add_settled(early, "1", [(early.close_time - timedelta(hours=24), "0.50")])
    await desk.backtest(BacktestRequest(lead_hours=24))
    rows = await store.forecasts()
    assert [r["outcome"] for r in rows if r["cycle_id"] == "cycle-1"] == [None]  # untouched by the answer key
    assert all(r["market_id"] != early.id for r in rows)
    await store.close()


async def test_a_sample_backtest_into_a_desks_own_database_is_refused(tmp_path):
    from pipeline.analyzer import SampleAnalyzer
    from pipeline.models import Estimate
    from pipeline.venues.snapshot import sample_directory

    settings = make_settings(tmp_path, storage={"path": str(tmp_path / "desk.db")})
    store = await Store.open(settings.storage.path)
    m = make_market("KXMINE-26DEC-T1")
    await store.save_estimates("cycle-1", [Estimate(market_key=m.key, model_probability=D("0.5"),
                                                    market_probability=D("0.5"), fair_probability=D("0.5"))], {m.key: m})
    analyzer = SampleAnalyzer(sample_directory() / "estimates.json", D("0.5"))
    desk = Desk(settings, store, {Venue.KALSHI: SettledVenue()}, analyzer, clock=Clock(NOW))
    with pytest.raises(RefusedError) as refused:
        await desk.backtest(BacktestRequest())
    assert refused.value.code == "sample_into_desk" and len(await store.forecasts()) == 1
    await store.close()


def test_absurd_backtest_arguments_are_refused_with_a_sentence(capsys):
    from bot.__main__ import main

    from .test_live_scan import ROOT

    for lead in ("nan", "inf", "-1", "1e9"):
        assert main(["--config", str(ROOT / "config.json"), "backtest", "--lead-hours", lead]) == 1
        assert "--lead-hours above 0 and at most a year" in capsys.readouterr().err


async def test_what_a_backtest_reports_never_carries_a_secret(tmp_path):
    desk, venue, analyzer, store, _ = await setup(tmp_path)
    venue.secrets_derived = ["sk-derived-secret-0123456789"]

    async def failing(closed_after, closed_before, limit):
        raise ConnectionError("refused for key sk-derived-secret-0123456789")

    async def answering_with_an_error(markets, reporter):
        reporter.record("analyse", "HTTP 401 for key sk-derived-secret-0123456789")
        return []

    venue.settled_markets = failing
    report = await desk.backtest(BacktestRequest())
    assert report.notes and all("sk-derived-secret" not in n for n in report.notes)
    venue.settled_markets = SettledVenue.settled_markets.__get__(venue)
    analyzer.analyze = answering_with_an_error
    report = await desk.backtest(BacktestRequest())
    assert report.not_answered == 2 and report.notes and all("sk-derived-secret" not in n for n in report.notes)
    await store.close()
