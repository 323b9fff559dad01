"""A trade signal as a trader decides it: the trade first, then the case, then the buttons, details last.

Everything about the trade is said in the traded side's own terms (a NO signal shows NO's fair value,
NO's bid and ask, NO's price); a YES number on a NO signal is always labelled YES.

An exit (a signal that sells what a position holds) is said as a sale: what you receive, what those contracts
cost you, the P&L it books and, when the analyst's fair value is known, what selling gains over holding.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from pipeline.models import ExitReason, Side, TradeSignal

from . import fmt
from .model import Button, Confirm, Fact, Message, Section, Span, Text, Tone, bold, code, link, text, when
from .people import actor
from .textutil import one_line, paragraph

APPROVE_ACTION = "signal_approve"
REJECT_ACTION = "signal_reject"

TITLE_MARKET_BUDGET = 60  # the market's name inside the first line; the whole name is the next line
EXIT_TITLE_MARKET_BUDGET = 45  # a sale's first line says more ("Sell 100 of 150 NO at … or better — about …")
MARKET_BUDGET = 200
REASONING_BUDGET = 600
RULES_BUDGET = 300
ONE = Decimal(1)


def mode_tone(dry_run: bool) -> Tone:
    return Tone.PAPER if dry_run else Tone.LIVE


def order_sentence(signal: TradeSignal) -> str:
    """"Buy 113 YES at up to $0.44 — $49.66" """
    return (f"Buy {fmt.count(signal.contracts)} {fmt.side_word(signal.side)} at up to "
            f"{fmt.price(signal.limit_price)} — {fmt.usd(signal.expected_outlay)}")


def market_name(signal: TradeSignal, limit: int = MARKET_BUDGET) -> str:
    return one_line(signal.market.title, limit) or one_line(signal.market.id, limit) or "(untitled market)"


def market_line(signal: TradeSignal, now: datetime) -> Text:
    market = signal.market
    closes = market.close_time
    return text(bold_link(market.url, market_name(signal)), f" · {fmt.venue_name(market.venue)} · closes ",
                when(closes, fmt.day_and_time(closes)), f" ({fmt.countdown(closes, now)})")


def bold_link(url: str, label: str) -> Span:
    """A link when the market has a url; the bare name (bold) when it has none."""
    return link(url, label) if url else bold(label)


# -- the case, in the side's own terms --------------------------------------------------------------------


def side_quote(signal: TradeSignal) -> tuple[Decimal | None, Decimal | None]:
    """(bid, ask) of the traded side now in the market: NO's are YES's mirrored."""
    market = signal.market
    if signal.side is Side.YES:
        return market.yes_bid, market.yes_ask
    flip = fmt.other_side
    return flip(market.yes_ask), flip(market.yes_bid)


def model_for_side(signal: TradeSignal) -> Decimal | None:
    model = signal.model_probability
    return model if signal.side is Side.YES or model is None else ONE - model


def payout(signal: TradeSignal) -> Decimal:
    return signal.contracts  # every winning contract pays $1


def profit_if_right(signal: TradeSignal) -> Decimal:
    return payout(signal) - signal.expected_outlay


def expected_return(signal: TradeSignal) -> Decimal | None:
    outlay = signal.expected_outlay
    return signal.expected_value / outlay if outlay > 0 else None


def stake_text(signal: TradeSignal) -> str:
    """The stake and what bound it: the fractional Kelly, the cap, or the book and the venue's lot size."""
    stake = f"{fmt.pct(signal.kelly_fraction)} of bankroll"
    if signal.full_kelly is None or signal.kelly_multiplier is None:
        return stake
    kelly = signal.kelly_multiplier * signal.full_kelly
    multiplier = fmt.count(signal.kelly_multiplier)
    said = f"{multiplier}× Kelly = {fmt.pct(kelly)}"
    bound = min(kelly, signal.stake_cap) if signal.stake_cap is not None else kelly
    if signal.stake_cap is not None and kelly > signal.stake_cap:
        said += f", capped at {fmt.pct(signal.stake_cap)} (max_position_fraction)"
    if signal.kelly_fraction < bound * Decimal("0.98"):  # the book's depth or the venue's lot size held it back
        said += "; the book's depth or lot size cut it"
    return f"{stake}\n{said}"


def win_line(signal: TradeSignal) -> Text:
    """Payout and profit if right; the most you can lose is the worst fill the order allows (what is reserved)."""
    side = fmt.side_word(signal.side)
    worst = signal.reserved
    line = text("You win if it resolves ", bold(side), ": paid ", bold(fmt.usd(payout(signal))), ", profit ",
                bold(fmt.usd(profit_if_right(signal), signed=True)), ". Most you can lose: ", bold(fmt.usd(worst)))
    if worst - signal.expected_outlay >= Decimal("0.01"):
        line = text(line, f" if it all fills at the limit ({fmt.usd(signal.expected_outlay)} at the book now)")
    return text(line, ".")


def mode_line(signal: TradeSignal) -> Text:
    venue = fmt.venue_name(signal.market.venue)
    if signal.dry_run:
        return text(bold("Paper."), f" Approve simulates this order against {venue}'s real book; no money moves.")
    return text(bold("Real money."), f" Approve places this order on {venue}; you confirm the exact order first.")


def case_facts(signal: TradeSignal, now: datetime) -> tuple[Fact, ...]:
    side = fmt.side_word(signal.side)
    returns = expected_return(signal)
    return (
        Fact(f"Fair {side} vs price", text(bold(fmt.pct(signal.probability)), " vs ",
                                            bold(fmt.price(signal.average_price)), " avg",
                                            f" (limit {fmt.price(signal.limit_price)})")),
        Fact("Edge after fees", text(bold(f"{fmt.cents(signal.edge, signed=True)} a contract"),
                                     f"\n{fmt.pct(returns, signed=True)} expected return on cost" if returns is not None
                                     else "")),
        Fact("Stake", text(stake_text(signal))),
        Fact("Expires", text(when(signal.expires_at, fmt.clock(signal.expires_at)),
                             f" ({fmt.countdown(signal.expires_at, now)})")),
    )


def quote_words(signal: TradeSignal) -> str:
    bid, ask = side_quote(signal)
    return f"bid {fmt.price(bid)} · ask {fmt.price(ask)}" if bid is not None or ask is not None else "no quote"


def market_now(signal: TradeSignal) -> Text:
    side = fmt.side_word(signal.side)
    paper = " (paper)" if signal.dry_run else ""
    return text(f"Market {side} at the scan: {quote_words(signal)}. "
                f"Expected value {fmt.usd(signal.expected_value, signed=True)}{paper}.")


def model_line(signal: TradeSignal) -> Text:
    side = fmt.side_word(signal.side)
    said = text(f"Model: {side} {fmt.pct(model_for_side(signal))}")
    if signal.side is Side.NO:
        said = text(said, f" (YES {fmt.pct(signal.model_probability)})")
    weight = (f" at weight {fmt.count(signal.market_weight)}" if signal.market_weight is not None else "")
    return text(said, f"; blended with the market{weight}: {side} {fmt.pct(signal.probability)}.")


def fee_line(signal: TradeSignal) -> Text:
    model = signal.market.fee_model
    if model is None:
        return text(f"Fees {fmt.usd(signal.fees)} included.")
    source = one_line(model.source, 160) or "the venue's schedule"
    if model.free:
        return text(f"No fees on this market ({source}).")
    return text(f"Fees {fmt.usd(signal.fees)} included in the price above ({source}).")


def details(signal: TradeSignal) -> tuple[Section, ...]:
    sections = []
    reasoning = paragraph(signal.reasoning, REASONING_BUDGET)
    if reasoning:
        sections.append(Section("Why", (text(reasoning),)))
    rules = one_line(signal.market.rules, RULES_BUDGET)
    if rules:
        sections.append(Section("Rules", (text(rules),)))
    return tuple(sections)


def ids_line(signal: TradeSignal) -> Text:
    return text("signal ", code(one_line(signal.id, 100)), " · cycle ", code(one_line(signal.cycle_id, 100)),
                " · market ", code(one_line(signal.market.id, 120)))


def countdown_words(signal: TradeSignal, now: datetime) -> str:
    seconds = (signal.expires_at - now).total_seconds()
    return f"{fmt.duration(seconds)} left" if seconds > 0 else "expired"


def approve_button(signal: TradeSignal) -> Button:
    if signal.dry_run:
        return Button(APPROVE_ACTION, "Approve (paper)", signal.id, Tone.PAPER)
    body = (f"{order_sentence(signal)} of real money ({fmt.usd(signal.cost)} + {fmt.usd(signal.fees)} fees), "
            f"at most {fmt.usd(signal.reserved)}.\n{fmt.venue_name(signal.market.venue)} · {market_name(signal)}")
    return Button(APPROVE_ACTION, "Place LIVE order…", signal.id, Tone.LIVE,
                  Confirm("Place a LIVE order?", body, "Place real order", "Cancel"))


def signal_proposal(signal: TradeSignal, now: datetime) -> Message:
    """A pending signal: decide it from the first two lines. An exit is drawn as a sale (exit_proposal)."""
    if signal.is_exit:
        return exit_proposal(signal, now)
    tag = fmt.mode_tag(signal.dry_run)
    title = (f"{tag} · {order_sentence(signal)} · {market_name(signal, TITLE_MARKET_BUDGET)} · "
             f"{countdown_words(signal, now)}")
    reject = Button(REJECT_ACTION, "Reject", signal.id, Tone.NEUTRAL)
    return Message(
        kind="signal", tone=mode_tone(signal.dry_run), title=title,
        lines=(market_line(signal, now), win_line(signal), mode_line(signal)),
        facts=case_facts(signal, now),
        buttons=(approve_button(signal), reject),
        sections=details(signal),
        footer=(text(market_now(signal), " ", model_line(signal), " ", fee_line(signal)), ids_line(signal)),
        notification=(f"{tag}: {order_sentence(signal)} · {market_name(signal, 80)} · expires "
                      f"{fmt.clock(signal.expires_at)}"),
    )


def proposed_line(signal: TradeSignal) -> Text:
    """What was proposed, in one line, kept under an outcome."""
    if signal.is_exit:
        return exit_proposed_line(signal)
    return text(f"Proposed: {order_sentence(signal)} · fair {fmt.side_word(signal.side)} "
                f"{fmt.pct(signal.probability)} · edge {fmt.cents(signal.edge, signed=True)} a contract")


# -- exits: selling what a position holds ------------------------------------------------------------------

REASON_WORDS = {
    ExitReason.TAKE_PROFIT: "take profit",
    ExitReason.EDGE_GONE: "the edge is gone",
    ExitReason.STOP_LOSS: "stop loss",
    ExitReason.CLOSING_SOON: "the market closes soon",
    ExitReason.MANUAL: "a close asked for",
}


def reason_words(signal: TradeSignal) -> str:
    terms = signal.exit
    return REASON_WORDS.get(terms.reason, "exit") if terms is not None else "exit"


def held_count(signal: TradeSignal) -> Decimal:
    return signal.exit.held if signal.exit is not None else signal.contracts


def exit_sentence(signal: TradeSignal) -> str:
    """"Sell 120 YES at $0.60 or better — about $71.60"; a partial exit says "Sell 100 of 150 NO …"."""
    held = held_count(signal)
    part = f" of {fmt.count(held)}" if signal.contracts < held else ""
    return (f"Sell {fmt.count(signal.contracts)}{part} {fmt.side_word(signal.side)} at "
            f"{fmt.price(signal.limit_price)} or better — about {fmt.usd(signal.proceeds)}")


def basis_of(signal: TradeSignal, contracts: Decimal | None = None) -> Decimal:
    """What `contracts` of those this exit sells cost, entry fees included (all of them when None)."""
    basis = signal.exit.basis if signal.exit is not None else Decimal(0)
    if contracts is None or contracts >= signal.contracts or signal.contracts <= 0:
        return basis
    return basis * contracts / signal.contracts


def expected_realized(signal: TradeSignal) -> Decimal:
    """The P&L the sale books if it fills as priced: what it returns after fees less what those contracts cost."""
    return signal.proceeds - basis_of(signal)


def position_label(signal: TradeSignal) -> str:
    return f"#{signal.exit.position_id}" if signal.exit is not None else ""


def why_line(signal: TradeSignal) -> Text:
    terms = signal.exit
    if terms is None or terms.reason is ExitReason.MANUAL:
        return text(bold("Why:"), " a close asked for by ", actor(terms.requested_by if terms else ""), ".")
    detail = one_line(terms.detail, 400)
    asked = text(" Asked for by ", actor(terms.requested_by), ".") if terms.requested_by else None
    return text(bold(f"Why: {reason_words(signal)}"), f" — {detail}." if detail else ".", asked)


def receive_line(signal: TradeSignal) -> Text:
    """What the sale returns and the P&L it books against what those contracts cost."""
    side = fmt.side_word(signal.side)
    held = held_count(signal)
    booked = fmt.usd(expected_realized(signal), signed=True)
    line = text("You receive about ", bold(fmt.usd(signal.proceeds)), f" after {fmt.usd(signal.fees)} fees and book ",
                bold(booked), f" realised: these {fmt.count(signal.contracts)} {side} cost you "
                f"{fmt.usd(basis_of(signal))} with fees.")
    if signal.contracts < held:
        line = text(line, " It sells ", bold(f"{fmt.count(signal.contracts)} of the {fmt.count(held)}"),
                    f" held (the bids near the best take no more); {fmt.count(held - signal.contracts)} stay held.")
    return line


def hold_line(signal: TradeSignal) -> Text | None:
    """Selling against holding, at the analyst's fair value of the side; None when there is no fresh estimate."""
    fair, gain = signal.probability, signal.expected_value
    if fair is None or gain is None:
        return None
    side = fmt.side_word(signal.side)
    worth = signal.contracts * fair
    verb = "gains" if gain >= 0 else "gives up"
    return text(f"Holding is worth about {fmt.usd(worth)} at the analyst's fair {side} {fmt.pct(fair)}: selling "
                f"{verb} ", bold(fmt.usd(abs(gain))), " against holding.")


def exit_mode_line(signal: TradeSignal) -> Text:
    venue = fmt.venue_name(signal.market.venue)
    if signal.dry_run:
        return text(bold("Paper."), f" Sell simulates this sale against {venue}'s real bids; no money moves. "
                                    "Keep leaves the position as it is.")
    return text(bold("Real money."), f" Sell sends this sale to {venue}; you confirm the exact order first. Keep "
                                     "leaves the position as it is.")


def exit_facts(signal: TradeSignal, now: datetime) -> tuple[Fact, ...]:
    side = fmt.side_word(signal.side)
    held = held_count(signal)
    sold = ("all of it sold" if signal.contracts >= held else
            f"{fmt.count(signal.contracts)} sold, {fmt.count(held - signal.contracts)} kept")
    facts = [
        Fact("Sale price", text(bold(fmt.price(signal.average_price)), " avg",
                                f"\nnone below {fmt.price(signal.limit_price)} (the limit)")),
        Fact("Position", text(bold(position_label(signal)), f" · {fmt.count(held)} {side} held\n{sold}")),
    ]
    if signal.probability is not None and signal.edge is not None:
        facts.append(Fact(f"Fair {side} vs sale", text(bold(fmt.pct(signal.probability)), " vs ",
                                                       bold(fmt.price(signal.average_price)),
                                                       f"\nselling {fmt.cents(signal.edge, signed=True)} a contract "
                                                       "over holding")))
    facts.append(Fact("Expires", text(when(signal.expires_at, fmt.clock(signal.expires_at)),
                                      f" ({fmt.countdown(signal.expires_at, now)})")))
    return tuple(facts)


def exit_footer(signal: TradeSignal) -> tuple[Text, ...]:
    side = fmt.side_word(signal.side)
    said = text(f"Market {side} when proposed: {quote_words(signal)}.")
    if signal.probability is None:
        said = text(said, " No fresh estimate from the analyst: the sale is priced on the bids alone.")
    elif signal.model_probability is not None:
        said = text(said, " ", model_line(signal))
    ids = text("position ", code(position_label(signal)), " · ", ids_line(signal))
    return (text(said, " ", exit_fee_line(signal)), ids)


def exit_fee_line(signal: TradeSignal) -> Text:
    model = signal.market.fee_model
    source = (one_line(model.source, 160) if model is not None else "") or "the venue's schedule"
    if model is not None and model.free:
        return text(f"No fees on this market ({source}).")
    return text(f"Fees {fmt.usd(signal.fees)} come off what the sale receives ({source}).")


def exit_details(signal: TradeSignal) -> tuple[Section, ...]:
    """The analyst's reasoning (when there was an estimate) and the rules; "Why" is the exit's own reason."""
    return tuple(Section("Analyst" if section.heading == "Why" else section.heading, section.lines)
                 for section in details(signal))


def sell_button(signal: TradeSignal) -> Button:
    if signal.dry_run:
        return Button(APPROVE_ACTION, "Sell (paper)", signal.id, Tone.PAPER)
    held = held_count(signal)
    part = f" of the {fmt.count(held)} held" if signal.contracts < held else ""
    venue = fmt.venue_name(signal.market.venue)
    body = (f"Real money: sell {fmt.count(signal.contracts)} {fmt.side_word(signal.side)}{part} on {venue} for about "
            f"{fmt.usd(signal.proceeds)} after fees ({fmt.usd(signal.cost)} at the bids − {fmt.usd(signal.fees)} fees),"
            f" nothing below {fmt.price(signal.limit_price)} a contract.\n{market_name(signal)}")
    return Button(APPROVE_ACTION, "Sell LIVE…", signal.id, Tone.LIVE,
                  Confirm("Sell LIVE?", body, "Sell for real", "Cancel"))


def exit_proposal(signal: TradeSignal, now: datetime) -> Message:
    """A pending exit: the sale on the first line, then why, what it returns and what it books."""
    tag = fmt.mode_tag(signal.dry_run)
    title = (f"{tag} · {exit_sentence(signal)} · {market_name(signal, EXIT_TITLE_MARKET_BUDGET)} · "
             f"{countdown_words(signal, now)}")
    lines = [market_line(signal, now), why_line(signal), receive_line(signal), hold_line(signal),
             exit_mode_line(signal)]
    return Message(
        kind="signal", tone=mode_tone(signal.dry_run), title=title,
        lines=tuple(line for line in lines if line is not None),
        facts=exit_facts(signal, now),
        buttons=(sell_button(signal), Button(REJECT_ACTION, "Keep", signal.id, Tone.NEUTRAL)),
        sections=exit_details(signal),
        footer=exit_footer(signal),
        notification=(f"{tag}: {exit_sentence(signal)} · {market_name(signal, 80)} · expires "
                      f"{fmt.clock(signal.expires_at)}"),
    )


def exit_proposed_line(signal: TradeSignal) -> Text:
    """What the exit proposed, in one line, kept under its outcome."""
    return text(f"Proposed: {exit_sentence(signal)} · {reason_words(signal)} · those contracts cost "
                f"{fmt.usd(basis_of(signal))} with fees · position {position_label(signal)}")
