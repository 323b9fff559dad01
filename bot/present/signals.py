"""A trade signal as a trader decides it: the trade first, then the case, then the buttons, details last.

Everything about the trade is said in the traded side's own terms (a NO signal shows NO's fair value,
NO's bid and ask, NO's price); a YES number on a NO signal is always labelled YES.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from pipeline.models import Side, TradeSignal

from . import fmt
from .model import Button, Confirm, Fact, Message, Section, Span, Text, Tone, bold, code, link, text, when
from .textutil import one_line, paragraph

APPROVE_ACTION = "signal_approve"
REJECT_ACTION = "signal_reject"

TITLE_MARKET_BUDGET = 60  # the market's name inside the first line; the whole name is the next line
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


def model_for_side(signal: TradeSignal) -> Decimal:
    return signal.model_probability if signal.side is Side.YES else ONE - signal.model_probability


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


def market_now(signal: TradeSignal) -> Text:
    side = fmt.side_word(signal.side)
    bid, ask = side_quote(signal)
    quote = f"bid {fmt.price(bid)} · ask {fmt.price(ask)}" if bid is not None or ask is not None else "no quote"
    paper = " (paper)" if signal.dry_run else ""
    return text(f"Market {side} at the scan: {quote}. "
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
    """A pending signal: decide it from the first two lines."""
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
    return text(f"Proposed: {order_sentence(signal)} · fair {fmt.side_word(signal.side)} "
                f"{fmt.pct(signal.probability)} · edge {fmt.cents(signal.edge, signed=True)} a contract")
