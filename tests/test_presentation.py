"""What each message says, read as a trader reads it: the first line carries the trade or the result, a NO
trade speaks NO, an outcome replaces the proposal, a partial cycle says partial. And the golden payloads
(tests/data/golden, drawn with slack-preview) are exactly what rendering gives today."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import timedelta

import pytest

from bot import blocks
from bot.present import cycles, outcomes, plain, reports, signals, state
from bot.present.model import Style
from pipeline.desk import Decision, OrdersStopped
from pipeline.models import Fill, OrderStatus, SignalStatus, Venue

from . import golden
from .golden import (D, FULL_FILL, LONG_TITLE, NOW, POLY_ORDER_ID, clean_report, decided, failed_report,
                     make_signal, make_status, no_signal, partial_report, with_kelly)
from .test_blocks import alltext, assert_valid, buttons, find_blocks, header_text
from .test_slack_app import envs  # noqa: F401 - fixture

LATER = NOW + timedelta(minutes=3)


# -- the golden payloads -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(golden.cases()))
def test_golden_payloads_are_what_rendering_gives_and_stay_within_slack_limits(name):
    payload = golden.cases()[name]
    kept = json.loads((golden.GOLDEN / f"{name}.json").read_text())
    assert payload == kept, f"{name} changed: look at it with slack-preview, then `python -m tests.golden write`"
    for message in payload if isinstance(payload, list) else [payload]:
        assert_valid(message)


def test_every_message_kind_has_a_golden_picture():
    kinds = {name.split("_")[0] for name in golden.cases()}
    assert {"signal", "outcome", "progress", "summary", "errors", "status", "balance", "positions", "help", "home",
            "reconcile", "orders", "loss"} <= kinds


# -- signals --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dry_run", [True, False])
def test_a_signal_leads_with_the_trade_and_its_countdown(dry_run):
    signal = no_signal(dry_run)
    message = signals.signal_proposal(signal, NOW + timedelta(minutes=18))
    tag = "DRY-RUN" if dry_run else "LIVE"
    assert message.title == f"{tag} · Buy 122 NO at up to $0.39 — $47.62 · Will the Fed hold rates in December? " \
                            "· 12 min left"
    payload = blocks.render(message)
    assert header_text(payload).endswith(message.title)
    assert payload["text"].startswith(f"{tag}: Buy 122 NO at up to $0.39 — $47.62")  # the notification line
    # The second line: the market; then the case, before the buttons.
    kinds = [b["type"] for b in payload["blocks"]]
    assert kinds.index("actions") < kinds.index("context")
    case = alltext({"blocks": payload["blocks"][:kinds.index("actions")]})
    for said in ("Will the Fed hold rates in December?", "You win if it resolves *NO*: paid *$122.00*, profit "
                 "*+$74.38*", "Most you can lose: *$49.62* if it all fills at the limit ($47.62 at the book now)",
                 "*Fair NO vs price*\n*61.0%* vs *$0.38* avg (limit $0.39)", "*+22.0¢ a contract*",
                 "+56.3% expected return on cost", "15:30 UTC (in 12 min)"):
        assert said in case, said


def test_a_no_signal_shows_no_yes_price_without_saying_so():
    payload = blocks.render(signals.signal_proposal(no_signal(False), NOW))
    body = alltext(payload)
    # YES trades at $0.61 / $0.63: never shown on a NO trade, whose own bid/ask are $0.37 / $0.39.
    assert "$0.61" not in body and "$0.63" not in body and "bid $0.37 · ask $0.39" in body
    # Every YES figure that is shown says YES right before it (the model's 36.0% and the blend's 39.0%).
    for figure in ("36.0%", "39.0%"):
        for at in [m.start() for m in re.finditer(re.escape(figure), body)]:
            assert body[max(0, at - 4):at] == "YES ", body[max(0, at - 40):at + 6]
    assert "Market NO at the scan: bid $0.37 · ask $0.39" in body and "Fair NO vs price" in body
    assert "Model: NO 64.0% (YES 36.0%)" in body


def test_the_stake_says_which_kelly_and_which_cap_bound_it():
    capped = alltext(blocks.render(signals.signal_proposal(no_signal(True), NOW)))
    assert "5.0% of bankroll\n0.25× Kelly = 9.4%, capped at 5.0% (max_position_fraction)" in capped
    uncapped = with_kelly(make_signal(), full="0.12", cap="0.05")
    said = signals.stake_text(uncapped)
    assert said == "5.0% of bankroll\n0.25× Kelly = 3.0%"  # a stake above its Kelly cannot happen; said as is
    thin = with_kelly(make_signal(), full="0.4", cap="0.05").model_copy(update={"kelly_fraction": D("0.03")})
    assert signals.stake_text(thin) == ("3.0% of bankroll\n0.25× Kelly = 10.0%, capped at 5.0% "
                                        "(max_position_fraction); the book's depth or lot size cut it")
    assert signals.stake_text(make_signal()) == "5.0% of bankroll"  # an old signal without the detail


def test_live_and_dry_run_signals_look_different_at_a_glance():
    live = blocks.render(signals.signal_proposal(no_signal(False), NOW))
    paper = blocks.render(signals.signal_proposal(no_signal(True), NOW))
    assert header_text(live).startswith(":rotating_light: LIVE") and header_text(paper).startswith(":test_tube: DRY")
    live_approve, live_reject = buttons(live)
    paper_approve, _ = buttons(paper)
    assert (live_approve["style"], live_approve["text"]["text"]) == ("danger", "Place LIVE order…")
    assert (paper_approve["style"], paper_approve["text"]["text"]) == ("primary", "Approve (paper)")
    assert "confirm" not in paper_approve and "confirm" not in live_reject
    confirm = live_approve["confirm"]
    assert confirm["confirm"]["text"] == "Place real order" and confirm["style"] == "danger"
    assert confirm["text"]["text"].startswith("Buy 122 NO at up to $0.39 — $47.62 of real money ($46.36 + $1.26 fees)")
    assert "*Real money.*" in alltext(live) and "real money" not in alltext(paper).lower()
    assert alltext({"blocks": paper["blocks"]}).count("DRY-RUN") == 1  # said once, in the header


# -- outcomes -------------------------------------------------------------------------------------------------


def test_an_outcome_replaces_the_proposal_with_the_result_first():
    signal = with_kelly(make_signal(dry_run=False))
    message = outcomes.signal_outcome(signal, decided(signal, OrderStatus.FILLED, FULL_FILL, "executed"), "UAUTH01",
                                      LATER)
    assert message.title == "LIVE · Filled 113 YES at $0.4223 — $49.66"
    payload = assert_valid(blocks.render(message))
    body = alltext(payload)
    assert not find_blocks(payload, "actions") and "Expires" not in body and "left" not in header_text(payload)
    assert "Approved by <@UAUTH01> at 15:03 UTC." in body
    assert "Held: 113 YES — pays *$113.00* if it resolves YES; most you can lose *$49.66*." in body
    assert "simulated" not in body and "status" not in body.lower()  # one word for the state: the header's


def test_a_paper_fill_is_said_as_one_and_moves_no_money():
    signal = no_signal(True)
    decision = decided(signal, OrderStatus.FILLED, (Fill(contracts=D("122"), price=D("0.38"), fee=D("1.26")),),
                       "simulated", venue_order_id=f"paper-{signal.client_order_id}")
    message = outcomes.signal_outcome(signal, decision, "terminal:operator", LATER)
    assert message.title == "DRY-RUN · Paper fill: 122 NO at $0.38 — $47.62 · no money moved"
    body = alltext(blocks.render(message))
    assert "Held (paper): 122 NO" in body and "Approved by operator (terminal) at 15:03 UTC." in body


def test_a_failed_live_order_says_plainly_that_no_money_moved_and_what_to_do():
    signal = no_signal(False)
    reason = "Kalshi refused the order (400 insufficient_balance): insufficient balance"
    message = outcomes.signal_outcome(signal, decided(signal, OrderStatus.REJECTED, (), "failed", reason=reason),
                                      "UAUTH01", LATER)
    assert message.title == "LIVE · Not placed — no money moved, nothing held"
    body = alltext(blocks.render(message))
    assert body.count("insufficient_balance") == 1  # the venue's reason once, not three times
    assert "*What to do:* Add funds at Kalshi" in body and message.facts == ()


def test_outcome_ids_are_short_enough_for_a_phone_except_the_venues_own():
    signal = with_kelly(make_signal(dry_run=False, venue=Venue.POLYMARKET, title=LONG_TITLE, id="sig-" + "9" * 40))
    message = outcomes.signal_outcome(signal, decided(signal, OrderStatus.FILLED, FULL_FILL, "executed",
                                                      venue_order_id=POLY_ORDER_ID), "UAUTH01", LATER)
    codes = [s.text for line in message.footer for s in line if s.style is Style.CODE]
    assert codes[-1] == POLY_ORDER_ID and all(len(c) <= 18 for c in codes[:-1])  # ours short; theirs whole, last
    assert all(len(s.text) <= 18 for f in message.facts for s in f.value if s.style is Style.CODE)
    payload = assert_valid(blocks.render(message))
    assert len(header_text(payload)) <= 150 and header_text(payload).startswith(":white_check_mark: LIVE · Filled")


def test_expired_and_rejected_say_nothing_traded_and_what_was_released():
    signal = no_signal(True)
    expired = outcomes.signal_expired(signal, NOW + timedelta(minutes=31))
    assert expired.title == "DRY-RUN · Expired — not traded, $49.62 released"
    assert "Nobody decided by 15:30 UTC." in alltext(blocks.render(expired))
    rejected = outcomes.signal_outcome(signal, Decision(True, "rejected", "", signal=signal.model_copy(
        update={"status": SignalStatus.REJECTED})), "UAUTH01", LATER)
    assert rejected.title == "DRY-RUN · Rejected — not traded, $49.62 released"
    assert "Rejected by <@UAUTH01> at 15:03 UTC." in alltext(blocks.render(rejected))


def test_a_late_click_names_the_market_who_decided_and_when_not_raw_ids():
    signal = make_signal().model_copy(update={"status": SignalStatus.FILLED})
    decision = Decision(False, "already_decided", "raw", signal=signal,
                        details={"decided_by": "UAUTH01", "decided_at": (NOW + timedelta(minutes=2)).isoformat()})
    assert blocks.render_text(outcomes.refusal(decision)) == \
        "*Will the Fed hold rates in December?*: already filled — approved at 15:02 UTC by <@UAUTH01>."
    expired = Decision(False, "already_decided", "raw", signal=signal.model_copy(
        update={"status": SignalStatus.EXPIRED}), details={"decided_by": "sweeper", "decided_at": NOW.isoformat()})
    said = blocks.render_text(outcomes.refusal(expired))
    assert said.endswith("already expired — nobody decided by 15:30 UTC. Nothing was traded.")
    assert "sweeper" not in said
    stale = Decision(False, "stale", "Refused, the market moved: ask 0.49 > limit 0.44.", signal=make_signal())
    assert blocks.render_text(outcomes.refusal(stale)).startswith("*Will the Fed hold rates in December?*: Refused")


# -- cycles ---------------------------------------------------------------------------------------------------


def test_a_cycle_header_says_clean_partial_or_failed():
    assert cycles.summary(clean_report()).title == "DRY-RUN · Cycle clean — 3 signals from 2,034 markets"
    partial = cycles.summary(partial_report())
    assert partial.title == "DRY-RUN · Cycle partial — Kalshi failed; 3 signals from 834 markets"
    assert cycles.summary(failed_report()).title.startswith("DRY-RUN · Cycle failed — Kalshi, Polymarket unreadable")
    tones = {cycles.summary(r).tone.value for r in (clean_report(), partial_report(), failed_report())}
    assert tones == {"good", "warning", "failure"}


def test_a_partial_cycle_names_the_failed_venue_in_the_channel_and_never_contradicts_itself():
    report = partial_report()
    body = alltext(blocks.render(cycles.summary(report)))
    assert "*Kalshi failed:* HTTP 503 from /markets after 3 retries" in body
    assert "(Kalshi failed, Polymarket 834)" in body and "Kalshi 0" not in body
    assert "Kalshi: 1,000 markets read" in body and "failed, none of its markets used" in body
    channel = cycles.error_report(report)
    assert channel.title == "DRY-RUN · 2 errors in cycle cyc-42 — Kalshi failed"
    assert "Kalshi 1, analysing 1" in alltext(blocks.render(channel))


def test_the_progress_message_ends_posted_only_after_the_signals():
    running = cycles.progress("analysing", 12, 40, started_by="UOPS01", dry_run=True, venues="all venues")
    posting = cycles.progress("done", 0, 0, started_by="UOPS01", dry_run=True, venues="all venues", posting=3)
    finished = cycles.progress_finished(partial_report(), 3, venues="all venues")
    assert running.title == "DRY-RUN · Cycle running — Analysing markets 12/40"
    assert posting.title == "DRY-RUN · Cycle running — Posting 3 signals"
    assert finished.title == "DRY-RUN · 3 signals posted · cycle partial"
    bar = alltext(blocks.render(running))
    assert "▰" in bar and "`" not in bar  # a bar of plain characters: inline code is drawn red


# -- the desk's own state -------------------------------------------------------------------------------------


def test_balance_labels_the_desk_bankroll_and_live_the_venues_cash():
    live = make_status(dry_run=False)
    body = alltext(blocks.render(state.balance_message(live, {Venue.KALSHI: D("812.40"),
                                                              Venue.POLYMARKET: "no API keys configured"})))
    assert "*Desk bankroll*\n*$1,234.50*\nconfigured bankroll + realised P&amp;L" in body
    assert "*Kalshi cash*\n*$812.40*" in body and "*Polymarket cash*\nunavailable: no API keys configured" in body
    paper = alltext(blocks.render(state.balance_message(make_status(dry_run=True))))
    assert "cash" not in paper and "$1,234.50 (paper)" in paper


def test_positions_show_the_mark_unrealised_pnl_and_close_date():
    status = make_status(positions=[golden.make_position(i) for i in range(3)])
    message = state.positions_message(status, golden.marked(status), NOW)
    body = alltext(blocks.render(message))
    assert "sells now at avg $0.41 → unrealised *-$1.35*" in body and "at avg $0.47 → unrealised *+$1.65*" in body
    assert "no mark: no bid for NO" in body and "closes Nov 30 15:00 UTC (in 10 days)" in body
    assert message.title == ("DRY-RUN · 3 open positions — exposure $65.55 (paper), unrealised +$0.30 "
                             "(2 of 3 marked)")
    closed_since = golden.marked(make_status(positions=[golden.make_position(9)]))  # a mark for a gone position
    assert "+$" in state.positions_message(status, golden.marked(status) + closed_since, NOW).title
    assert state.positions_message(status, golden.marked(status) + closed_since, NOW).title == message.title


def test_a_position_is_marked_at_what_its_bids_would_take_not_the_top_price_alone():
    from pipeline.marks import mark_position
    from pipeline.models import BookLevel, OrderBook

    position = golden.make_position(1)  # 50 NO, cost $21.50 + $0.35 fees
    market = make_signal().market
    thin = OrderBook(venue=market.venue, market_id=market.id, yes_bids=(), yes_asks=(BookLevel(price=D("0.45"), size=D("1")),
                                                                    BookLevel(price=D("0.95"), size=D("100"))))
    marked = mark_position(position, market, thin)  # NO bids: 1 at $0.55, then 100 at $0.05
    assert marked.mark == (D("0.55") + 49 * D("0.05")) / 50 and marked.unrealized == D("3.00") - D("21.85")
    shallow = OrderBook(venue=market.venue, market_id=market.id, yes_bids=(), yes_asks=(BookLevel(price=D("0.45"), size=D("20")),))
    short = mark_position(position, market, shallow)
    assert short.mark == D("0.22") and short.note == "the NO bids take only 20 of 50; the rest valued at $0"
    assert mark_position(position, market, OrderBook(venue=market.venue, market_id=market.id)).note == "no bid for NO"


def test_every_message_kind_has_its_point_on_the_first_line():
    firsts = {
        "orders stopped": reports.orders_stopped_message(OrdersStopped("kalshi", "410 Gone")).title,
        "loss halt": reports.loss_halt_message("loss").title,
        "status": state.status_message(make_status(dry_run=False)).title,
        "help": state.help_message().title,
    }
    assert firsts == {"orders stopped": "Orders to Kalshi STOPPED — its API changed",
                      "loss halt": "Desk HALTED — daily loss limit",
                      "status": "LIVE · Desk ACTIVE — $1,162.99 free of $1,234.50",
                      "help": "oddsdesk — commands"}


def test_the_terminal_draws_the_same_messages():
    for message in (signals.signal_proposal(no_signal(False), NOW), cycles.summary(partial_report()),
                    outcomes.signal_outcome(no_signal(False), decided(no_signal(False), OrderStatus.REJECTED, (),
                                                                      "failed", reason="no"), "UAUTH01", LATER)):
        text = plain.render(message)
        assert message.title in text and "\x1b" not in text
        first = [line for line in text.splitlines() if not line.startswith("-")][0]
        assert first.endswith(message.title)
    hostile = plain.render(signals.signal_proposal(make_signal(title="evil \x1b[2J title"), NOW))
    assert "\x1b" not in hostile and "evil [2J title" in hostile


# -- the one-cycle guard, end to end ---------------------------------------------------------------------------


async def test_a_scan_sent_while_signals_are_being_posted_is_told_a_cycle_is_running(tmp_path, envs):
    from .servers.slack import DESK_CHANNEL

    env = await envs(tmp_path, slack_hang=1.5)
    env.analyzer.gate = asyncio.Event()
    await env.slash("/scan")
    await env.slack.wait_for(lambda: env.slack.posted("chat.postMessage"))  # the progress message is out
    env.slack.faults.add("timeout", "/api/chat.postMessage")  # the signal's own post takes 1.5 s
    env.analyzer.gate.set()
    await env.slack.wait_for(lambda: any("Posting 1 signal" in u.get("text", "")
                                         for u in env.slack.posted("chat.update")))
    status, body, _ = await env.slash("/scan")  # the cycle is computed, its signal not yet posted
    assert status == 200 and "still running" in body and not env.summaries()
    await env.slack.wait_for(env.summaries, timeout=10)
    methods = [(method, params.get("text", "")) for method, params in env.slack.calls
               if method in ("chat.postMessage", "chat.update")]
    signal_at = next(i for i, (m, t) in enumerate(methods) if m == "chat.postMessage" and "Buy 113 YES" in t)
    posted_at = next(i for i, (m, t) in enumerate(methods) if m == "chat.update" and "1 signal posted" in t)
    summary_at = next(i for i, (m, t) in enumerate(methods) if "Cycle clean" in t)
    assert signal_at < posted_at < summary_at
    assert len([m for m in env.slack.messages(DESK_CHANNEL) if "Cycle clean" in m.get("text", "")]) == 1
    await env.slack.wait_for(lambda: env.desk.running_cycle is None)  # released once the summary is in


async def test_positions_are_marked_in_slack_and_a_viewer_spamming_them_reads_the_venue_once(tmp_path, envs):
    from .test_slack_app import APPROVE_ACTION, TRADER

    env = await envs(tmp_path)
    [signal] = await env.scan_and_wait()
    await env.click(APPROVE_ACTION, signal.id)
    ref = await env.desk.message_ref(signal.id)
    await env.slack.wait_for(lambda: not buttons(env.message_of(ref)))  # decided: a paper position is held
    before = env.venue.book_reads
    answers = []
    for _ in range(5):
        _, _, url = await env.slash("/desk", "positions", user=TRADER)
        answers.append((await env.slack.wait_for(lambda u=url: env.slack.responses_to(u)))[0])
    assert env.venue.book_reads == before + 1  # one read shared by all five (and by App Home)
    shown = json.dumps(answers[-1], ensure_ascii=False)
    assert "sells now at avg $0.40 → unrealised *-$" in shown and "closes " in shown
    assert answers[-1]["text"].startswith("DRY-RUN · 1 open position — exposure $")


async def test_a_signal_post_whose_answer_never_comes_is_withdrawn_and_the_cycle_still_ends_in_the_channel(
        tmp_path, envs):
    from .servers.slack import DESK_CHANNEL

    env = await envs(tmp_path)
    env.analyzer.gate = asyncio.Event()
    await env.slash("/scan")
    await env.slack.wait_for(lambda: env.slack.posted("chat.postMessage"))  # the progress message is out
    env.slack.faults.add("drop_after", "/api/chat.postMessage", times=3)  # the try and both connection retries
    env.analyzer.gate.set()
    await env.slack.wait_for(env.summaries, timeout=15)
    [signal] = await env.store.signals()
    assert signal.status is SignalStatus.EXPIRED and "never shown" in signal.status_reason  # capital released
    assert await env.desk.pending_signals() == []
    progress = env.slack.messages(DESK_CHANNEL)[0]
    assert progress["text"] == "DRY-RUN cycle: 0 signals posted · cycle partial"
    assert "Cycle partial — 1 error" in env.summaries()[0]["text"]
    await env.slack.wait_for(lambda: env.desk.running_cycle is None)


def test_a_state_change_told_in_the_channel_cannot_ping_or_link():
    decision = Decision(True, "orders_resumed", "Orders to kalshi resumed (they had been stopped: kalshi answered "
                        "409 'x': <!channel> re-auth at <https://evil.test|kalshi.com/login>).")
    said = blocks.render_text(state.state_changed(decision, "UADMIN1"))
    assert "<!channel>" not in said and "<https://evil" not in said and said.endswith("(by <@UADMIN1>)")
    assert "&lt;!channel&gt;" in said


def test_an_order_cancelled_at_the_venue_is_not_called_refused_or_not_placed():
    from pipeline.reconcile import ReconciledOrder

    signal = make_signal(dry_run=False).model_copy(update={"status": SignalStatus.FAILED})
    order = golden.make_outcome(signal, OrderStatus.REJECTED, ()).order.model_copy(
        update={"status": OrderStatus.CANCELED, "reason": "canceled by user at the venue"})
    item = ReconciledOrder(order=order, before=OrderStatus.RESTING, after=OrderStatus.CANCELED, note="cancelled",
                           title=signal.market.title, signal=signal)
    message = outcomes.signal_reconciled(item, "UAUTH01", NOW, LATER)
    assert message.title == "LIVE · Cancelled — nothing filled, no money moved, nothing held"
    body = alltext(blocks.render(message))
    assert "*Why:* canceled by user at the venue" in body and "refused" not in body and "Not placed" not in body
    rejected = outcomes.signal_outcome(no_signal(False), decided(no_signal(False), OrderStatus.REJECTED, (), "failed",
                                                                 reason="market closed"), "UAUTH01", LATER)
    assert rejected.title == "LIVE · Not placed — no money moved, nothing held"
    assert "*Kalshi refused the order:* market closed" in alltext(blocks.render(rejected))


async def test_a_pending_signal_counts_down_and_a_decided_one_is_never_redrawn_as_pending(tmp_path, envs):
    from .test_desk import Clock
    from .test_slack_app import APPROVE_ACTION

    clock = Clock()
    env = await envs(tmp_path, clock=clock)
    [signal] = await env.scan_and_wait()
    ref = await env.desk.message_ref(signal.id)

    def header() -> str:
        return env.message_of(ref)["blocks"][0]["text"]["text"]

    assert header().endswith("· 30 min left")
    clock.now = signal.created_at + timedelta(minutes=5, seconds=10)
    await env.slack_desk.sweep()
    assert header().endswith("· 25 min left") and buttons(env.message_of(ref))
    edits = len(env.slack.posted("chat.update"))
    await env.slack_desk.sweep()  # nothing changed on the minute: no edit
    assert len(env.slack.posted("chat.update")) == edits
    await env.click(APPROVE_ACTION, signal.id)
    await env.slack.wait_for(lambda: not buttons(env.message_of(ref)))
    clock.now += timedelta(minutes=3)
    await env.slack_desk.sweep()
    assert not buttons(env.message_of(ref)) and "Paper fill" in header()


def test_words_typed_by_a_user_are_quoted_back_as_text():
    from bot.listeners.commands import parse_scan
    from bot.present import replies

    said = parse_scan("<!channel> limit 5")
    assert isinstance(said, str) and "<!channel>" not in said and "`&lt;!channel&gt;`" in said
    assert "Usage: `/scan [kalshi|polymarket|all] [limit N]`" in said
    unknown = blocks.render_text(replies.desk_not_understood("<@U1> & co"))
    assert "<@U1>" not in unknown and "`/desk &lt;@U1&gt; &amp; co`" in unknown
