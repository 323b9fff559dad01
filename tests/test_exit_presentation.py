"""Exits as a trader reads them: a sale on the first line, what it returns and what it books, holding against
selling only when the analyst's fair value is known, Sell / Keep carrying only the signal id (LIVE confirmed);
outcomes that say what sold and the P&L it realised, or that nothing was sold; positions numbered, each with
its own Close button within Slack's limits. The numbers are worked out by hand in tests/golden.py."""

from __future__ import annotations

import json
from datetime import timedelta

from bot import blocks
from bot.present import outcomes, plain, replies, signals, state
from bot.present.model import Tone
from pipeline.desk import Decision
from pipeline.models import Fill, OrderStatus, SignalStatus
from pipeline.reconcile import ReconciledOrder

from .golden import (D, EXIT_FILLS, NOW, decided, exit_pending_status, make_outcome, make_position, make_status,
                     manual_exit, marked, take_profit_exit)
from .test_blocks import alltext, assert_valid, buttons, header_text

LATER = NOW + timedelta(minutes=3)


def test_an_exit_leads_with_the_sale_and_says_what_it_returns_and_books():
    signal = take_profit_exit(dry_run=True)
    message = signals.signal_proposal(signal, NOW + timedelta(minutes=18))
    assert message.kind == "signal" and message.tone is Tone.PAPER
    assert message.title == ("DRY-RUN · Sell 120 YES at $0.60 or better — about $71.60 · Will the Fed hold rates "
                             "in December? · 12 min left")
    body = plain.render(message)
    # $73.60 received less $2.00 fees = $71.60; against $52.45 paid: +$19.15. Holding at 52%: 120 x 0.52 = $62.40.
    for said in ("Why: take profit — the best bid 0.62 beats the analyst's fair 0.520",
                 "You receive about $71.60 after $2.00 fees and book +$19.15 realised: these 120 YES cost you "
                 "$52.45 with fees.",
                 "Holding is worth about $62.40 at the analyst's fair YES 52.0%: selling gains $9.20 against holding.",
                 "Sale price        $0.6133 avg; none below $0.60 (the limit)",
                 "Position          #7 · 120 YES held; all of it sold",
                 "Fair YES vs sale  52.0% vs $0.6133; selling +7.7¢ a contract over holding",
                 "Sell simulates this sale against Kalshi's real bids; no money moves"):
        assert said in body, said
    assert "Buy" not in body and "You win if" not in body and "Stake" not in body


def test_an_exit_without_a_fresh_estimate_shows_no_fair_value_edge_or_holding_line():
    signal = manual_exit()  # a person's close: no estimate
    assert signal.probability is None and signal.edge is None and signal.expected_value is None
    payload = assert_valid(blocks.render(signals.signal_proposal(signal, NOW)))
    body = alltext(payload)
    assert "Why:* a close asked for by <@UOPS01>" in body
    assert "Fair" not in body and "¢ a contract" not in body and "Holding is worth" not in body
    assert "edge" not in body.lower() and "n/a" not in body
    assert "No fresh estimate from the analyst: the sale is priced on the bids alone." in body
    # A partial exit says so: the bids near the best take 100 of the 150 held.
    assert header_text(payload).startswith(":rotating_light: LIVE · Sell 100 of 150 NO at $0.54 or better — about "
                                           "$53.87 · ")
    assert "It sells *100 of the 150* held" in body and "50 stay held" in body
    assert "*Position*\n*#12* · 150 NO held\n100 sold, 50 kept" in body
    # 55.60 - 1.73 = 53.87 received; those 100 of the 150 cost $41.60: +$12.27.
    assert "book *+$12.27* realised" in body


def test_sell_and_keep_carry_only_the_signal_id_and_live_confirms_the_exact_sale():
    paper = assert_valid(blocks.render(signals.signal_proposal(take_profit_exit(True), NOW)))
    sell, keep = buttons(paper)
    assert (sell["action_id"], sell["text"]["text"], sell["value"], sell["style"]) == (
        blocks.APPROVE_ACTION, "Sell (paper)", "sig-exit-07", "primary")
    assert (keep["action_id"], keep["text"]["text"], keep["value"]) == (blocks.REJECT_ACTION, "Keep", "sig-exit-07")
    assert "confirm" not in sell and "style" not in keep

    live = assert_valid(blocks.render(signals.signal_proposal(manual_exit(False), NOW)))
    sell, keep = buttons(live)
    assert sell["value"] == keep["value"] == "sig-exit-12" and sell["style"] == "danger"
    confirm = sell["confirm"]
    assert confirm["title"]["text"] == "Sell LIVE?" and confirm["confirm"]["text"] == "Sell for real"
    assert confirm["text"]["text"].startswith("Real money: sell 100 NO of the 150 held on Kalshi for about $53.87 "
                                              "after fees ($55.60 at the bids − $1.73 fees), nothing below $0.54 a "
                                              "contract.")


def test_a_sold_exit_says_what_it_received_and_realised_and_that_the_position_closed():
    signal = take_profit_exit(True)
    message = outcomes.signal_outcome(signal, decided(signal, OrderStatus.FILLED, EXIT_FILLS, "simulated"),
                                      "UAUTH01", LATER)
    assert message.tone is Tone.GOOD and message.kind == "outcome" and not message.buttons
    assert message.title == ("DRY-RUN · Would have sold 120 YES at avg $0.6133: received $73.60 − $2.00 fees; "
                             "realised +$19.15")
    body = plain.render(message)
    assert "Position #7 closed (paper): all 120 YES sold." in body
    assert "Realised P&L   +$19.15; those contracts cost $52.45 with fees" in body
    live = take_profit_exit(False)
    said = outcomes.signal_outcome(live, decided(live, OrderStatus.FILLED, EXIT_FILLS, "executed"), "UAUTH01", LATER)
    assert said.title.startswith("LIVE · Sold 120 YES at avg $0.6133: received $73.60 − $2.00 fees; realised +$19.15")


def test_a_partial_sale_realises_only_what_sold_and_says_what_is_still_held():
    signal = manual_exit()
    fill = (Fill(contracts=D("60"), price=D("0.56"), fee=D("1.04")),)
    message = outcomes.signal_outcome(signal, decided(signal, OrderStatus.PARTIALLY_FILLED, fill, "executed"),
                                      "UAUTH01", LATER)
    # 60 x 0.56 = $33.60 less $1.04; those 60 cost 41.60 x 60/100 = $24.96: +$7.60. 150 held - 60 = 90 left.
    assert message.tone is Tone.WARNING
    assert message.title == ("LIVE · Sold 60 of 100 NO at avg $0.56: received $33.60 − $1.04 fees; realised +$7.60; "
                             "40 not sold")
    body = plain.render(message)
    assert "Position #12: 90 NO still held." in body and "/desk close 12 proposes a fresh exit" in body
    paper = manual_exit(dry_run=True)
    simulated = outcomes.signal_outcome(paper, decided(paper, OrderStatus.PARTIALLY_FILLED, fill, "simulated"),
                                        "UAUTH01", LATER)
    assert simulated.title.startswith("DRY-RUN · Would have sold 60 of 100 NO") and \
        simulated.title.endswith("; 40 would not have sold")


def test_an_exit_that_sold_nothing_says_the_position_is_kept():
    signal = manual_exit()
    failed = outcomes.signal_outcome(signal, decided(signal, OrderStatus.REJECTED, (), "failed",
                                                     reason="Kalshi refused the order (400 invalid_order)"),
                                     "UAUTH01", LATER)
    assert failed.tone is Tone.FAILURE and failed.title == "LIVE · Nothing sold; the position is kept"
    assert "What to do: Nothing to undo: the position is kept. `/desk close 12` proposes a fresh exit." in \
        plain.render(failed)
    kept = outcomes.signal_outcome(signal, Decision(True, "rejected", "Rejected; the position is kept.",
                                                    signal=signal.model_copy(update={"status": SignalStatus.REJECTED})),
                                   "UAUTH01", LATER)
    assert kept.title == "LIVE · Kept — rejected, nothing sold" and "released" not in plain.render(kept)
    expired = outcomes.signal_expired(signal, NOW + timedelta(minutes=31))
    assert expired.title == "LIVE · Expired — nothing sold, the position is kept"
    paper = take_profit_exit(True)
    missed = outcomes.signal_outcome(paper, decided(paper, OrderStatus.FILLED, (), "simulated"), "UAUTH01", LATER)
    assert missed.title == "DRY-RUN · Paper sale would not have filled — the bids moved; the position is kept"


def test_a_reconciled_exit_reads_as_a_sale():
    signal = take_profit_exit(False).model_copy(update={"status": SignalStatus.FILLED})
    order = make_outcome(signal, OrderStatus.FILLED, EXIT_FILLS).order
    item = ReconciledOrder(order=order, title=signal.market.title, before=OrderStatus.UNKNOWN,
                           after=OrderStatus.FILLED, note="filled at the venue", signal=signal)
    message = outcomes.signal_reconciled(item, "UAUTH01", NOW, LATER)
    assert message.title == "LIVE · Sold 120 YES at avg $0.6133: received $73.60 − $2.00 fees; realised +$19.15"
    assert "Position #7 closed: all 120 YES sold." in plain.render(message)


def test_the_pending_list_shows_an_exit_without_an_edge():
    status = make_status(pending=[manual_exit(True)])
    line = plain.line(state.pending_line(status.pending[0], NOW))
    assert line.startswith("Sell 100 of 150 NO at $0.54 or better — about $53.87 · ")
    assert "exit of position #12: a close asked for" in line and "edge" not in line and "n/a" not in line


def test_each_position_is_numbered_with_a_close_button_that_carries_only_its_number():
    status = exit_pending_status()  # #2 has an exit waiting
    payload = assert_valid(blocks.render(state.positions_message(status, marked(status), NOW)))
    rows = [b for b in payload["blocks"]
            if b["type"] == "section" and b.get("text", {}).get("text", "").startswith("*#")]
    assert [r["text"]["text"][:4] for r in rows] == ["*#1*", "*#2*", "*#3*"]
    closes = [r["accessory"] for r in rows if "accessory" in r]
    assert [(c["text"]["text"], c["value"]) for c in closes] == [("Close #1", "1"), ("Close #3", "3")]
    assert [c["action_id"] for c in closes] == [blocks.CLOSE_ACTION, f"{blocks.CLOSE_ACTION}.2"]
    assert all(blocks.action_pattern(blocks.CLOSE_ACTION).match(c["action_id"]) for c in closes)
    assert "accessory" not in rows[1] and "*Exit pending* — decide it on its message" in rows[1]["text"]["text"]
    # The terminal shows the numbers too, and the buttons only where it is asked to.
    shown = plain.render(state.positions_message(status, marked(status), NOW))
    assert "#1 Position market 0" in shown and "[Close" not in shown


def test_many_positions_stay_within_slack_limits_with_unique_action_ids():
    positions = [make_position(i) for i in range(60)]
    status = make_status(positions=positions)
    message = assert_valid(blocks.render(state.positions_message(status, None, NOW)))
    closes = [b["accessory"] for b in message["blocks"] if "accessory" in b]
    assert len(message["blocks"]) <= 50 and len(closes) == state.POSITIONS_SHOWN
    assert len({c["action_id"] for c in closes}) == len(closes)
    assert "…and 20 more; close one by its number or ticker with `/desk close`." in alltext(message)
    view = assert_valid(blocks.render_home(state.home_page(status, NOW)))
    home_closes = [b["accessory"] for b in view["blocks"] if "accessory" in b]
    assert len(view["blocks"]) <= 100 and len(home_closes) == state.HOME_POSITIONS_SHOWN
    assert len({c["action_id"] for c in home_closes}) == len(home_closes)
    assert [c["value"] for c in home_closes] == [str(p.id) for p in positions[:state.HOME_POSITIONS_SHOWN]]


def test_the_close_reply_lists_what_was_proposed_and_each_refusal_with_its_reason():
    shown, unshown = take_profit_exit(True), manual_exit(True)
    results = [(Decision(True, "exit_proposed", "Exit proposed…", signal=shown), ""),
               (Decision(True, "exit_proposed", "Exit proposed…", signal=unshown), "its message could not be posted "
                                                                                   "(channel_not_found)"),
               (Decision(False, "no_bids", "Position #3 (Market) cannot be closed now: no YES bids to sell into. "
                                           "Nothing was proposed; it stays held."), "")]
    message = replies.close_reply(results)
    assert message.title == "1 exit proposed in the desk's channel; 1 not shown, 1 refused"
    assert message.tone is Tone.WARNING
    body = plain.render(message)
    assert "#7 Will the Fed hold rates in December?" in body and "Sell 120 YES at $0.60 or better" in body
    assert "proposed but not shown, so withdrawn — its message could not be posted (channel_not_found)" in body
    assert "Not proposed: Position #3 (Market) cannot be closed now: no YES bids to sell into." in body
    assert replies.close_reply([(Decision(False, "not_found", "There is no open paper position 99."), "")]).title \
        == "No exit proposed"
    nothing = replies.close_reply([(Decision(True, "nothing_held", "No open paper positions: nothing to close."), "")])
    assert nothing.title == "Nothing to close" and "No open paper positions" in plain.render(nothing)
    assert json.dumps(assert_valid(blocks.render(message)))
