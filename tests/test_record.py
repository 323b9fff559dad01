"""The track record: scoring on hand-worked examples, and estimates made by a cycle, followed by a signal and
an order, scored when their market resolves at the venue."""

from __future__ import annotations

import csv
import io
import math
from datetime import timedelta
from decimal import Decimal as D

import pytest

from bot.present import plain
from bot.present.record import csv_text, record_message
from pipeline import record
from pipeline.record import Forecast, bootstrap_skill, brier, calibration, log_loss, skill

from .fakes import NOW
from .test_desk import ADMIN, Clock, make_desk
from .test_slack_app import envs  # noqa: F401 - fixture


def forecast(blend: float, market: float, outcome: float, *, model: float | None = None, **kw) -> Forecast:
    base = dict(venue="kalshi", market_id="M", title="t", category="KXFED", model="claude", prompt_version="v1",
                model_p=blend if model is None else model, market_p=market, blend_p=blend, hours_to_close=30.0,
                dry_run=True, followed="none", outcome=outcome)
    base.update(kw)
    return Forecast(**base)


def test_brier_and_log_loss_on_a_hand_worked_example():
    # (0.8 - 1)² = 0.04 and (0.3 - 0)² = 0.09: mean 0.065.  -(ln 0.8 + ln 0.7) / 2 = 0.289909…
    assert brier([0.8, 0.3], [1, 0]) == pytest.approx(0.065)
    assert log_loss([0.8, 0.3], [1, 0]) == pytest.approx((0.2231435513 + 0.3566749439) / 2)
    assert log_loss([0.0], [1]) == pytest.approx(-math.log(record.EPSILON))  # certain and wrong: large, finite
    assert brier([0.5], [0.3]) == pytest.approx(0.04)  # a split resolution pays 0.30 a YES contract
    assert math.isnan(brier([], []))


def test_skill_is_one_minus_the_ratio_of_brier_scores():
    assert skill(0.065, 0.13) == pytest.approx(0.5)
    assert skill(0.13, 0.13) == 0
    assert skill(0.2, 0.1) == pytest.approx(-1.0)
    assert math.isnan(skill(0.1, 0.0))


def test_calibration_puts_forecasts_in_ten_bins_with_counts_and_observed_frequency():
    bins = calibration([0.05, 0.15, 0.15, 0.95, 1.0], [0, 1, 0, 1, 1])
    assert len(bins) == 10 and [b.count for b in bins] == [1, 2, 0, 0, 0, 0, 0, 0, 0, 2]
    assert (bins[1].mean_forecast, bins[1].outcome_rate) == (pytest.approx(0.15), 0.5)
    assert bins[9].mean_forecast == pytest.approx(0.975) and bins[9].outcome_rate == 1
    assert bins[4].mean_forecast is None and bins[4].outcome_rate is None


def test_the_bootstrap_interval_is_seeded_reproducible_and_above_zero_when_the_blend_always_wins():
    always_better = [forecast(0.7, 0.6, 1), forecast(0.3, 0.4, 0)] * 20
    low, high = bootstrap_skill(always_better)
    assert (low, high) == bootstrap_skill(always_better)  # same seed, same interval
    point = skill(brier([f.blend_p for f in always_better], [f.outcome for f in always_better]),
                  brier([f.market_p for f in always_better], [f.outcome for f in always_better]))
    assert 0 < low <= point + 1e-9 and point <= high + 1e-9
    mixed = [forecast(0.7, 0.6, 1), forecast(0.7, 0.6, 0), forecast(0.2, 0.3, 1), forecast(0.4, 0.5, 0)] * 10
    low, high = bootstrap_skill(mixed)
    assert low < 0 < high  # sometimes better, sometimes worse: the interval spans zero
    assert bootstrap_skill(mixed, seed=1) != (low, high)
    assert all(math.isnan(x) for x in bootstrap_skill(mixed[:1]))


def test_only_fresh_resolved_estimates_made_against_a_price_are_scored():
    row = dict(venue="kalshi", market_id="M", title="t", category="c", model="m", prompt_version="v", source="model",
               model_probability="0.7", market_probability="0.5", fair_probability="0.6", hours_to_close=10.0,
               dry_run=1, followed="signal", outcome="1", close_time="2026-11-01T00:00:00.000000Z")
    rows = [row, {**row, "source": "cache"}, {**row, "outcome": None}, {**row, "market_probability": None}]
    [only] = record.scored(rows)
    assert (only.model_p, only.market_p, only.blend_p, only.outcome, only.horizon) == (0.7, 0.5, 0.6, 1.0,
                                                                                       "under 1 day")
    built = record.build(rows)
    assert built.overall.n == 1 and built.waiting == 1


def test_breakdowns_cut_by_venue_category_horizon_and_version():
    forecasts = ([forecast(0.7, 0.6, 1, venue="kalshi", hours_to_close=10)] * 3 +
                 [forecast(0.3, 0.2, 1, venue="polymarket", category="us-election", hours_to_close=800,
                           prompt_version="v2")] * 2)
    by_venue = record.breakdown(forecasts, "venue")
    assert list(by_venue) == ["kalshi", "polymarket"] and by_venue["kalshi"].n == 3
    assert set(record.breakdown(forecasts, "horizon")) == {"under 1 day", "over 30 days"}
    assert set(record.breakdown(forecasts, "version")) == {"claude · v1", "claude · v2"}
    assert by_venue["kalshi"].skill == pytest.approx(1 - 0.09 / 0.16)


async def test_a_cycles_estimates_are_scored_when_their_market_resolves(tmp_path):
    clock = Clock()
    desk, venue, store = await make_desk(tmp_path, clock=clock)
    [signal] = (await desk.scan()).signals
    [row] = await store.forecasts()
    assert (row["venue"], row["market_id"], row["category"], row["followed"]) == ("kalshi", "KXFED-26DEC-H0",
                                                                                  "KXFED", "signal")
    assert row["hours_to_close"] == pytest.approx(240) and row["outcome"] is None
    assert (await desk.approve(signal.id, ADMIN)).code == "simulated"
    assert (await store.forecasts())[0]["followed"] == "order"
    assert await desk.score_record() == 0  # the market has not closed
    clock.now = NOW + timedelta(days=11)
    assert await desk.score_record() == 0  # closed, not yet resolved: asked again next pass
    venue.resolve("KXFED-26DEC-H0", "1")
    assert await desk.score_record() == 1 and await desk.score_record() == 0  # scored once
    mine = await desk.track_record()
    assert mine.overall.n == 1 and mine.waiting == 0
    # model 0.70, market mid 0.41, blend 0.555; YES won: Brier blend 0.198025 < market 0.3481
    assert mine.overall.brier_blend == pytest.approx(0.445 ** 2) and mine.overall.brier_market == pytest.approx(0.3481)
    shown = plain.render(record_message(mine))
    assert "1 markets scored, 0 estimates waiting" in shown and "not enough resolved markets to say (1 of 20)" in shown
    await store.close()


def test_the_record_message_says_whether_the_blend_beats_the_market_and_the_csv_cannot_run_formulas():
    rows = [dict(venue="kalshi", market_id=f"M{i}", title="=HYPERLINK(\"https://evil.test\")", category="KXFED",
                 model="claude", prompt_version="v1", source="model", model_probability="0.8",
                 market_probability="0.6", fair_probability="0.7", hours_to_close=50.0, dry_run=1, followed="none",
                 outcome="1" if i % 3 else "0") for i in range(30)]
    built = record.build(rows)
    message = record_message(built)
    assert message.title.startswith("Track record — ") and "30 markets scored, 0 estimates waiting" in message.title
    assert [s.heading for s in message.sections] == ["Cycles and backtests", "By venue", "By category",
                                                     "By time to close", "By model and prompt"]
    table = list(csv.reader(io.StringIO(csv_text(built))))
    assert table[0][:3] == ["venue", "market_id", "title"] and len(table) == 31
    assert all(r[2].startswith("'=") for r in table[1:])


async def test_live_approvals_wait_for_a_record_that_beats_the_market_then_go(tmp_path):
    from pipeline.desk import Desk
    from pipeline.models import Estimate, Venue
    from pipeline.store import Store

    from .conftest import make_settings
    from .fakes import make_market
    from .test_desk import FixedAnalyzer, standard_venue

    venue, _ = standard_venue()
    settings = make_settings(tmp_path, trading={"dry_run": False, "require_record": True}, record={"min_scored": 10},
                             approval={"authorized_users": ["UADMIN1"]}, storage={"path": str(tmp_path / "d.db")})
    store = await Store.open(settings.storage.path)
    desk = Desk(settings, store, {Venue.KALSHI: venue}, FixedAnalyzer({m.key: "0.70" for m in venue.markets.values()}),
                clock=Clock())
    [signal] = (await desk.scan()).signals
    refused = await desk.approve(signal.id, ADMIN)
    assert (refused.ok, refused.code) == (False, "record_required") and venue.posts == 0
    assert "0 of the 10 resolved markets needed" in refused.message and "Nothing was traded" in refused.message

    # Ten earlier estimates, resolved, where the blend was nearer the outcome than the market every time.
    old = [make_market(f"KXOLD-{i}", now=NOW - timedelta(days=20)) for i in range(10)]
    await store.save_estimates("old-cycle", [Estimate(market_key=m.key, model_probability=D("0.8"),
                                                      market_probability=D("0.6"), fair_probability=D("0.7"))
                                             for m in old], {m.key: m for m in old}, dry_run=True)
    for m in old[:9]:
        await store.score_market("kalshi", m.id, D("1"), NOW)
    assert "9 of the 10" in (await desk.approve(signal.id, ADMIN)).message
    await store.score_market("kalshi", old[9].id, D("1"), NOW)
    went = await desk.approve(signal.id, ADMIN)
    assert went.ok and went.code == "executed" and venue.posts == 1
    await store.close()


async def test_a_record_that_does_not_beat_the_market_keeps_live_approvals_waiting_with_the_numbers(tmp_path):
    from pipeline.models import Estimate

    from .fakes import make_market

    desk, venue, store = await make_desk(tmp_path, dry_run=False, trading={"require_record": True})
    old = [make_market(f"KXOLD-{i}", now=NOW - timedelta(days=20)) for i in range(60)]
    await store.save_estimates("old-cycle", [Estimate(market_key=m.key, model_probability=D("0.8"),
                                                      market_probability=D("0.6"), fair_probability=D("0.7"))
                                             for m in old], {m.key: m for m in old})
    for i, m in enumerate(old):
        await store.score_market("kalshi", m.id, D("1") if i % 2 else D("0"), NOW)
    [signal] = (await desk.scan()).signals
    refused = await desk.approve(signal.id, ADMIN)
    assert refused.code == "record_required" and "not all above zero" in refused.message and venue.posts == 0
    await store.close()


def test_the_auto_market_weight_is_the_bounded_share_that_fits_the_record_best():
    sharp_model = [forecast(0.0, 0.5, 1, model=1.0), forecast(0.0, 0.5, 0, model=0.0)] * 5
    assert record.best_market_weight(sharp_model) == record.AUTO_WEIGHT_LOW  # never below the bound
    useless_model = [forecast(0.0, 0.8, 1, model=0.0), forecast(0.0, 0.2, 0, model=1.0)] * 5
    assert record.best_market_weight(useless_model) == 1.0  # the market alone: no edge, no trades
    # model 0.9 and market 0.5 on YES wins, model 0.5 and market 0.1 on NO wins: w·0.5 + (1-w)·0.9 vs 1 and
    # w·0.1 + (1-w)·0.5 vs 0 give Brier ((0.1+0.4w)² + (0.5-0.4w)²)/2, least at w = 0.5
    halfway = [forecast(0.0, 0.5, 1, model=0.9), forecast(0.0, 0.1, 0, model=0.5)]
    assert record.best_market_weight(halfway) == pytest.approx(0.5)


async def test_with_an_auto_weight_a_cycle_blends_at_the_weight_the_record_chose_and_the_signal_says_so(tmp_path):
    from bot.present.signals import signal_proposal
    from pipeline.desk import Desk
    from pipeline.models import Estimate, Venue
    from pipeline.store import Store

    from .conftest import make_settings
    from .fakes import make_market
    from .test_desk import FixedAnalyzer, standard_venue

    venue, _ = standard_venue()
    settings = make_settings(tmp_path, analysis={"market_weight": "auto"}, record={"min_scored": 10},
                             storage={"path": str(tmp_path / "d.db")})
    store = await Store.open(settings.storage.path)
    analyzer = FixedAnalyzer({m.key: "0.70" for m in venue.markets.values()})
    desk = Desk(settings, store, {Venue.KALSHI: venue}, analyzer, clock=Clock())
    old = [make_market(f"KXOLD-{i}", now=NOW - timedelta(days=20)) for i in range(10)]
    # The model was nearer the outcome than the market on each: the record moves weight to the model (bounded).
    await store.save_estimates("old", [Estimate(market_key=m.key, model_probability=D("0.9"),
                                                market_probability=D("0.7"), fair_probability=D("0.8"))
                                       for m in old], {m.key: m for m in old})
    await desk.scan()
    assert analyzer.market_weight == D("0.5")  # nothing resolved yet: the default stands
    for m in old:
        await store.score_market("kalshi", m.id, D("1"), NOW)
    await desk.scan()
    assert analyzer.market_weight == D("0.2") and await desk.auto_market_weight() == D("0.2")
    # Ten more where the model was useless: the record no longer beats the market, so the weight is not moved.
    noise = [make_market(f"KXNOISE-{i}", now=NOW - timedelta(days=20)) for i in range(10)]
    await store.save_estimates("old2", [Estimate(market_key=m.key, model_probability=D("0.1"),
                                                 market_probability=D("0.7"), fair_probability=D("0.4"))
                                        for m in noise], {m.key: m for m in noise})
    for m in noise:
        await store.score_market("kalshi", m.id, D("1"), NOW)
    assert await desk.auto_market_weight() is None
    await store.close()
    signal = make_signal_with_weight()
    assert "blended with the market at weight 0.65: YES" in plain.render(signal_proposal(signal, NOW))


def make_signal_with_weight():
    from .golden import make_signal
    return make_signal().model_copy(update={"market_weight": D("0.65")})


async def test_desk_record_posts_the_record_and_two_charts_through_the_real_upload_flow_once_per_ten_minutes(
        tmp_path, envs):
    from matplotlib import image

    from pipeline.models import Estimate

    from .fakes import make_market
    from .servers.slack import DESK_CHANNEL
    from .test_slack_app import TRADER

    clock = Clock()
    env = await envs(tmp_path, clock=clock)
    [signal] = await env.scan_and_wait()
    # The cycle's own estimate resolves at the venue and the settlement pass scores it (SlackDesk.settle).
    clock.now = NOW + timedelta(days=11)
    env.venue.resolve("KXFED-26DEC-H0", "1")
    await env.slack_desk.settle()
    assert (await env.desk.track_record()).overall.n == 1
    old = [make_market(f"KXOLD-{i}", now=NOW - timedelta(days=20)) for i in range(12)]
    await env.store.save_estimates("old", [Estimate(market_key=m.key, model_probability=D("0.8"),
                                                    market_probability=D("0.6"), fair_probability=D("0.7"))
                                           for m in old], {m.key: m for m in old})
    for i, m in enumerate(old):
        await env.store.score_market("kalshi", m.id, D("1") if i % 4 else D("0"), NOW)

    _, _, url = await env.slash("/desk", "record", user=TRADER)
    [reply] = await env.slack.wait_for(lambda: env.slack.responses_to(url), timeout=20)
    assert reply["response_type"] == "ephemeral" and "in the channel" in reply["text"]
    [posted] = [m for m in env.slack.messages(DESK_CHANNEL) if m.get("text", "").startswith("Track record")]
    assert "13 markets scored, 0 estimates waiting" in posted["text"]
    uploads = [m for m in env.slack.thread(DESK_CHANNEL, posted["ts"]) if m.get("files")]
    assert [m["files"][0]["name"] for m in uploads] == ["calibration.png", "pnl.png"]
    for stored in env.slack.files.values():
        assert image.imread(io.BytesIO(stored["content"]), format="png").shape[:2] == (600, 900)

    _, _, again = await env.slash("/desk", "record", user=TRADER)  # a minute later: a reply, no second post
    [second] = await env.slack.wait_for(lambda: env.slack.responses_to(again), timeout=10)
    assert "Analyst vs market" in second["text"] and "posted at most every 10 minutes" in second["text"]
    assert len([m for m in env.slack.messages(DESK_CHANNEL) if m.get("text", "").startswith("Track record")]) == 1
    assert len(env.slack.files) == 2

    _, body, _ = await env.slash("/desk", "record", user="U0NOBODY1")  # a stranger: refused, nothing posted
    assert "not authorized" in body and len(env.slack.files) == 2


async def test_realised_pnl_of_closed_trades_is_cut_like_the_scores_with_a_hit_rate(tmp_path):
    clock = Clock()
    desk, venue, store = await make_desk(tmp_path, clock=clock)
    [signal] = (await desk.scan()).signals
    assert (await desk.approve(signal.id, ADMIN)).code == "simulated"  # a paper position in KXFED
    assert (await desk.track_record()).trades.n == 0  # built before the settlement: rebuilt after it
    clock.now = NOW + timedelta(days=11)
    venue.resolve("KXFED-26DEC-H0", "1")
    await desk.settle()
    mine = await desk.track_record()
    [row] = await store.trade_results()
    assert (row["category"], row["paper"]) == ("KXFED", 1) and D(row["realized_pnl"]) > 0
    assert mine.trades.n == 1 and mine.trades.hit_rate == 1.0 and mine.trades.live_pnl == 0
    assert mine.trades.paper_pnl == pytest.approx(float(D(row["realized_pnl"])))
    assert set(mine.trade_cuts["category"]) == {"KXFED"} and mine.trade_cuts["venue"]["kalshi"].n == 1
    shown = plain.render(record_message(mine))
    assert "Closed trades" in shown and "1 · paper +$" in shown and "100% made money" in shown
    assert "Realised P&L by category: KXFED: 1 · paper +$" in shown
    await store.close()


def test_trades_by_hand():
    rows = [dict(venue="kalshi", paper=1, realized_pnl="12.5", category="A", hours_to_close=10, model="m",
                 prompt_version="v"),
            dict(venue="kalshi", paper=0, realized_pnl="-4", category="A", hours_to_close=100, model="m",
                 prompt_version="v"),
            dict(venue="polymarket", paper=0, realized_pnl="6", category=None, hours_to_close=None, model=None,
                 prompt_version=None)]
    overall = record.trades(rows)
    assert (overall.n, overall.paper_pnl, overall.live_pnl, overall.hit_rate) == (3, 12.5, 2.0, 2 / 3)
    assert set(record.trade_breakdown(rows, "category")) == {"A", "unknown"}
    assert set(record.trade_breakdown(rows, "horizon")) == {"under 1 day", "1–7 days", "unknown"}


async def test_markets_that_never_resolve_do_not_keep_the_others_from_being_scored(tmp_path):
    from pipeline.models import Estimate

    from .fakes import make_market

    clock = Clock(NOW)
    desk, venue, store = await make_desk(tmp_path, clock=clock)
    stuck = [make_market(f"KXSTUCK-{i}", now=NOW - timedelta(days=30)) for i in range(2)]  # closed first, void
    fine = make_market("KXFINE-1", now=NOW - timedelta(days=20))
    for m in (*stuck, fine):
        await store.save_estimates("c", [Estimate(market_key=m.key, model_probability=D("0.6"),
                                                  market_probability=D("0.5"), fair_probability=D("0.55"))],
                                   {m.key: m})
    venue.resolve(fine.id, "1")
    assert await desk.score_record(limit=2) == 0  # the two oldest asked first, unresolved: to the back
    clock.now += timedelta(minutes=5)
    assert await desk.score_record(limit=2) == 1  # the resolved one is reached
    await store.close()


async def test_a_chart_upload_that_fails_says_so_and_the_ten_minute_limit_still_holds(tmp_path, envs):
    from .servers.slack import DESK_CHANNEL
    from .test_slack_app import TRADER

    env = await envs(tmp_path)
    env.slack.faults.add("500", "/api/files.getUploadURLExternal", times=10)
    _, _, url = await env.slash("/desk", "record", user=TRADER)
    [reply] = await env.slack.wait_for(lambda: env.slack.responses_to(url), timeout=20)
    assert "could not be uploaded" in reply["text"]
    [posted] = [m for m in env.slack.messages(DESK_CHANNEL) if m.get("text", "").startswith("Track record")]
    assert any("could not be uploaded" in m.get("text", "") for m in env.slack.thread(DESK_CHANNEL, posted["ts"]))
    _, _, again = await env.slash("/desk", "record", user=TRADER)
    [second] = await env.slack.wait_for(lambda: env.slack.responses_to(again), timeout=10)
    assert "posted at most every 10 minutes" in second["text"]
    assert len([m for m in env.slack.messages(DESK_CHANNEL) if m.get("text", "").startswith("Track record")]) == 1
