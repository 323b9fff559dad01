"""The terminal front end: prompts route to the Desk; rendering shows the mode unmistakably."""

from __future__ import annotations

import io

import pytest

from bot import terminal
from pipeline.desk import Actor
from pipeline.errors import RefusedError
from pipeline.models import SignalStatus

from .test_desk import make_desk, standard_venue
from .fakes import make_book, make_market


async def test_prompt_answers_route_to_approve_reject_and_skip(tmp_path):
    venue, _ = standard_venue()
    for n in (2, 3):
        market = make_market(f"KXOTHER-{n}")
        venue.add(market, make_book(market, bids=[("0.40", "200")], asks=[("0.42", "100"), ("0.44", "100")]))
    desk, venue, store = await make_desk(tmp_path, venue=venue)
    signals = (await desk.scan()).signals
    assert len(signals) == 3
    answers = iter(["maybe", "y", "n", "s"])  # a bad answer is asked again
    out = io.StringIO()
    decisions = await terminal.decide_signals(desk, signals, terminal.Mode.PROMPT, Actor.terminal(), out=out,
                                              ask=lambda prompt: next(answers))
    assert [d.code for d in decisions] == ["simulated", "rejected"]
    statuses = [(await store.get_signal(s.id)).status for s in signals]
    assert statuses == [SignalStatus.SIMULATED, SignalStatus.REJECTED, SignalStatus.PENDING]
    text = out.getvalue()
    assert text.count("[DRY-RUN] SIGNAL") == 3 and "skipped" in text
    assert "DRY-RUN · Paper fill: 113 YES at $0.4223" in text and "DRY-RUN · Rejected — not traded" in text
    await store.close()


async def test_end_of_input_skips_instead_of_crashing(tmp_path):
    desk, venue, store = await make_desk(tmp_path)
    signals = (await desk.scan()).signals

    def closed(prompt: str) -> str:
        raise EOFError

    decisions = await terminal.decide_signals(desk, signals, terminal.Mode.PROMPT, Actor.terminal(),
                                              out=io.StringIO(), ask=closed)
    assert decisions == [] and (await store.get_signal(signals[0].id)).status is SignalStatus.PENDING
    await store.close()


def test_choose_mode_never_prompts_without_a_terminal():
    class Pipe(io.StringIO):
        def isatty(self) -> bool:
            return False

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    for dry_run in (True, False):  # the same live as on paper, --yes apart
        assert terminal.choose_mode(False, False, Pipe(), dry_run=dry_run) is terminal.Mode.DECIDE_NONE
        assert terminal.choose_mode(False, False, Tty(), dry_run=dry_run) is terminal.Mode.PROMPT
        assert terminal.choose_mode(False, True, Tty(), dry_run=dry_run) is terminal.Mode.DECIDE_NONE
    assert terminal.choose_mode(True, False, Pipe(), dry_run=True) is terminal.Mode.APPROVE_ALL


def test_yes_never_approves_live_signals_unseen():
    """Live, every signal is approved by a person who read it: --yes is refused, with or without a terminal."""
    for yes, no_input in ((True, False), (True, True)):
        with pytest.raises(RefusedError) as refused:
            terminal.choose_mode(yes, no_input, io.StringIO(), dry_run=False)
        assert refused.value.code == "live_yes" and "LIVE" in refused.value.reason


async def test_live_signals_render_as_live(tmp_path):
    desk, venue, store = await make_desk(tmp_path, dry_run=False)
    [signal] = (await desk.scan()).signals
    text = terminal.render_signal(signal, desk.clock(), 1, 1)
    assert text.splitlines()[1].startswith("[LIVE] SIGNAL 1/1") and "DRY-RUN" not in text
    assert text.splitlines()[2].startswith("LIVE · Buy 113 YES at up to $0.44 — $")  # the trade first, as in Slack
    assert "Real money." in text and "You win if it resolves YES" in text
    await store.close()


async def test_an_exit_is_asked_about_as_a_sale_and_no_keeps_the_position(tmp_path):
    desk, venue, store = await make_desk(tmp_path)
    [entry] = (await desk.scan()).signals
    assert (await desk.approve(entry.id, Actor.terminal())).code == "simulated"
    [proposed] = await desk.close_all(Actor.terminal())
    assert proposed.code == "exit_proposed"
    asked: list[str] = []
    out = io.StringIO()

    def keep(prompt: str) -> str:
        asked.append(prompt)
        return "n"

    [decision] = await terminal.decide_signals(desk, [proposed.signal], terminal.Mode.PROMPT, Actor.terminal(),
                                               out=out, ask=keep)
    assert asked == ["  Sell? [y]es / [n]o (keep the position) / [s]kip: "]
    text = out.getvalue()
    assert "[DRY-RUN] EXIT 1/1" in text and "DRY-RUN · Sell 113 YES at $0.40 or better — about $43.30" in text
    assert decision.code == "rejected" and "DRY-RUN · Kept — rejected, nothing sold" in text
    [position] = await store.positions(paper=True)
    assert position.contracts == 113 and position.status == "open"
    await store.close()
