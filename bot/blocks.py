"""Block Kit rendering of the desk: signals, outcomes, cycle progress and summaries, status, App Home.

Pure functions: no I/O and no clock (`now` is passed in). Each message function returns a
payload for chat.postMessage / chat.update, `{"text": <fallback>, "blocks": [...]}`;
`home_view` returns a view for views.publish.

The same content as `bot/terminal.py`, richer. The mode is the first thing on every
message that concerns money: ":rotating_light: LIVE — real money" or ":test_tube: DRY-RUN — paper".

Everything that comes from outside (market titles, rules, urls, model reasoning, error
messages, venue ids) is treated as hostile: cleaned (lone surrogates replaced, bidi overrides
and control characters dropped), escaped for mrkdwn (`&`, `<`, `>`), rendered with
`verbatim: true` so Slack does not turn text into mentions or links, and clipped with "…"
without splitting a character, a grapheme or an escape. Lengths are counted in UTF-16 code
units, which is never less than Slack's character count, so every limit holds.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any
from urllib.parse import quote, urlsplit

from pipeline.desk import Decision, DeskStatus, OrdersStopped
from pipeline.models import CycleReport, Order, OrderResult, OrderStatus, Position, Side, SignalStatus, TradeSignal
from pipeline.reconcile import ReconciledOrder, ReconcileReport
from pipeline.settlement import SettlementReport
from pipeline.risk import TradingState

APPROVE_ACTION = "signal_approve"
REJECT_ACTION = "signal_reject"
SIGNAL_ACTIONS_BLOCK = "signal_actions"

# Slack's limits (https://api.slack.com/reference/block-kit).
MAX_MESSAGE_BLOCKS = 50
MAX_VIEW_BLOCKS = 100
MAX_HEADER = 150
MAX_SECTION_TEXT = 3000
MAX_FIELDS = 10
MAX_FIELD_TEXT = 2000
MAX_CONTEXT_ELEMENTS = 10
MAX_BUTTON_TEXT = 75
MAX_BUTTON_VALUE = 2000
MAX_CONFIRM_TITLE = 100
MAX_CONFIRM_TEXT = 300
MAX_CONFIRM_BUTTON = 30
MAX_FALLBACK = 3000

# Our own, tighter budgets: short fallbacks (they become notifications), short titles.
FALLBACK_BUDGET = 300
TITLE_BUDGET = 200
URL_BUDGET = 1500
REASONING_BUDGET = 600
RULES_BUDGET = 300
ERROR_LINE_BUDGET = 1000
THREAD_MESSAGE_BUDGET = 12000  # section text per thread message, so a message stays readable
THREAD_MESSAGE_SECTIONS = 40
HOME_PENDING_SHOWN = 20
HOME_POSITIONS_SHOWN = 30
POSITIONS_SHOWN = 40

ELLIPSIS = "…"

# ----------------------------------------------------------------------------------------------
# Text: cleaning, escaping, clipping
# ----------------------------------------------------------------------------------------------

_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ufff9-\ufffb]")
_WHITESPACE = re.compile(r"\s+")
_ZWJ = "\u200d"
_SLACK_USER = re.compile(r"[UW][A-Z0-9]{2,30}")


def units(text: str) -> int:
    """Length in UTF-16 code units: an emoji outside the BMP counts 2, never less than Slack counts."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def clean(text: object) -> str:
    """Printable text: surrogate halves paired or replaced, CR normalised, controls and bidi overrides dropped."""
    value = "" if text is None else str(text)
    if any("\ud800" <= ch <= "\udfff" for ch in value):
        value = value.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    value = value.replace("\r\n", "\n").replace("\r", "\n").replace("\t", " ")
    return _CONTROL.sub("", value)


def escape(text: str) -> str:
    """mrkdwn's three control characters, so `<!channel>` or `<https://x|y>` stays text."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _extends(ch: str) -> bool:
    """Characters that belong to the grapheme before them: cutting before one would break it."""
    cp = ord(ch)
    return (ch == _ZWJ or unicodedata.category(ch) in ("Mn", "Me", "Mc")
            or 0xFE00 <= cp <= 0xFE0F or 0x1F3FB <= cp <= 0x1F3FF
            or 0xE0020 <= cp <= 0xE007F or 0xE0100 <= cp <= 0xE01EF)


def _regional(ch: str) -> bool:
    return 0x1F1E6 <= ord(ch) <= 0x1F1FF


def _grapheme_cut(text: str, cut: int) -> int:
    """Move `cut` left until it does not split an emoji sequence, a flag or a combining mark."""
    while 0 < cut < len(text) and (_extends(text[cut]) or text[cut - 1] == _ZWJ):
        cut -= 1
    if 0 < cut < len(text) and _regional(text[cut]) and _regional(text[cut - 1]):
        run, i = 0, cut - 1
        while i >= 0 and _regional(text[i]):
            run, i = run + 1, i - 1
        if run % 2:
            cut -= 1
    return cut


def clip(text: str, limit: int, *, markup: bool = True) -> str:
    """`text` in at most `limit` UTF-16 units; a cut is marked with "…".

    With `markup` the text is mrkdwn we produced (escaped): a cut never leaves half an entity
    (`&am…`) or half a link or mention (`<https://…`).
    """
    if units(text) <= limit:
        return text
    budget, used, cut = limit - units(ELLIPSIS), 0, 0
    for i, ch in enumerate(text):
        width = 2 if ord(ch) > 0xFFFF else 1
        if used + width > budget:
            break
        used, cut = used + width, i + 1
    head = text[:_grapheme_cut(text, cut)]
    if markup:
        amp = head.rfind("&")
        if amp != -1 and ";" not in head[amp:]:
            head = head[:amp]
        lt = head.rfind("<")
        if lt != -1 and ">" not in head[lt:]:
            head = head[:lt]
    return head.rstrip() + ELLIPSIS


def md(raw: object, limit: int) -> str:
    """Untrusted text for mrkdwn: cleaned, escaped, clipped. Newlines are kept."""
    return clip(escape(clean(raw)), limit)


def md_line(raw: object, limit: int) -> str:
    """Untrusted text for one line of mrkdwn: whitespace (newlines too) collapsed."""
    return clip(escape(_WHITESPACE.sub(" ", clean(raw)).strip()), limit)


def plain(raw: object, limit: int) -> str:
    """Untrusted text for a plain_text object: angle brackets defused in case a client parses them."""
    text = _WHITESPACE.sub(" ", clean(raw)).strip().replace("<", "‹").replace(">", "›")
    return clip(text, limit, markup=False)


def safe_url(url: object) -> str | None:
    """An http(s) url fit for `<url|label>`: percent-encoded (no `|`, `<`, `>`, spaces) and `&` escaped."""
    text = clean(url).strip()
    if not text or len(text) > URL_BUDGET:
        return None
    try:
        parts = urlsplit(text)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    quoted = quote(text, safe=";/?:@=&$-_.+!*'(),%#~[]")
    if len(quoted) > URL_BUDGET:
        return None
    return escape(quoted)


def link(url: object, label: object, limit: int = TITLE_BUDGET) -> str:
    """`<url|label>` with the label escaped and stripped of `|`; just the label when the url is unusable."""
    text = md_line(clean(label).replace("|", " "), limit) or "(untitled)"
    target = safe_url(url)
    return f"<{target}|{text}>" if target else text


def who(label: str, default: str = "someone") -> str:
    """A Slack user id as a mention; anything else (terminal:operator, schedule) as escaped text."""
    if not label:
        return default
    if _SLACK_USER.fullmatch(label):
        return f"<@{label}>"
    return md_line(label, 80)


# ----------------------------------------------------------------------------------------------
# Numbers
# ----------------------------------------------------------------------------------------------


def _finite(value: Any) -> bool:
    try:
        return value is not None and Decimal(value).is_finite()
    except (InvalidOperation, TypeError, ValueError):
        return False


def usd(value: Decimal | int | float | None, signed: bool = False) -> str:
    """Dollars with 2 decimals and thousands separators: $1,234.56, -$3.10, +$13.06 when signed."""
    if not _finite(value):
        return "n/a"
    amount = Decimal(value).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    text = f"${abs(amount):,.2f}"
    if amount < 0:
        return f"-{text}"
    return f"+{text}" if signed and amount > 0 else text


def price(value: Decimal | None) -> str:
    """A contract price with up to 4 decimals and at least 2: $0.44, $0.4223, $0.001."""
    if not _finite(value):
        return "n/a"
    text = f"{Decimal(value).quantize(Decimal('0.0001'), rounding=ROUND_HALF_UP):f}"
    whole, _, frac = text.partition(".")
    frac = frac.rstrip("0").ljust(2, "0")
    return f"${whole}.{frac}"


def pct(value: Decimal | None, signed: bool = False) -> str:
    """A probability or fraction as a percentage with 1 decimal: 55.5%, +11.6% when signed."""
    if not _finite(value):
        return "n/a"
    scaled = (Decimal(value) * 100).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)
    text = f"{scaled:.1f}%"
    return f"+{text}" if signed and scaled > 0 else text


def count(value: Decimal | int | None) -> str:
    """Contracts: whole numbers with separators (1,130), fractions as needed (12.5)."""
    if not _finite(value):
        return "n/a"
    number = Decimal(value)
    if number == number.to_integral_value():
        return f"{int(number):,}"
    return f"{number.normalize():,f}"


def utc(moment: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    if moment is None:
        return "n/a"
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc)
    return f"{moment.strftime(fmt)} UTC"


def plural(n: int, word: str, many: str | None = None) -> str:
    return f"{n:,} {word if n == 1 else (many or word + 's')}"


# ----------------------------------------------------------------------------------------------
# Mode
# ----------------------------------------------------------------------------------------------

LIVE_HEADER = ":rotating_light: LIVE — real money"
DRY_RUN_HEADER = ":test_tube: DRY-RUN — paper"


def mode_header(dry_run: bool) -> str:
    return DRY_RUN_HEADER if dry_run else LIVE_HEADER


def mode_tag(dry_run: bool) -> str:
    return "DRY-RUN" if dry_run else "LIVE"


def mode_line(dry_run: bool) -> str:
    if dry_run:
        return (":test_tube: *DRY-RUN* — approving simulates the order against the real order book; "
                "no money moves.")
    return ":rotating_light: *LIVE* — approving places a real order with real money."


def money(value: Decimal, dry_run: bool, signed: bool = False) -> str:
    """Dollars of the desk's bankroll, marked when they are paper dollars."""
    return usd(value, signed) + (" (DRY-RUN)" if dry_run else "")


VENUE_NAMES = {"kalshi": "Kalshi", "polymarket": "Polymarket"}


def venue_name(venue: object) -> str:
    value = getattr(venue, "value", venue)
    return VENUE_NAMES.get(str(value), md_line(value, 40))


# ----------------------------------------------------------------------------------------------
# Block builders (every text passes through clip)
# ----------------------------------------------------------------------------------------------


def _mrkdwn(text: str, limit: int) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": clip(text, limit) or " ", "verbatim": True}


def _plain_text(text: str, limit: int) -> dict[str, Any]:
    return {"type": "plain_text", "text": clip(text, limit, markup=False) or " ", "emoji": True}


def header(text: str) -> dict[str, Any]:
    return {"type": "header", "text": _plain_text(text, MAX_HEADER)}


def section(text: str | None = None, fields: Sequence[str] = ()) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "section"}
    if text is not None or not fields:
        block["text"] = _mrkdwn(text or " ", MAX_SECTION_TEXT)
    if fields:
        block["fields"] = [_mrkdwn(f, MAX_FIELD_TEXT) for f in list(fields)[:MAX_FIELDS]]
    return block


def context(*texts: str) -> dict[str, Any]:
    elements = [_mrkdwn(t, MAX_FIELD_TEXT) for t in texts if t][:MAX_CONTEXT_ELEMENTS]
    return {"type": "context", "elements": elements or [_mrkdwn(" ", MAX_FIELD_TEXT)]}


def divider() -> dict[str, Any]:
    return {"type": "divider"}


def message(fallback: str, blocks: list[dict[str, Any]]) -> dict[str, Any]:
    return {"text": clip(fallback, FALLBACK_BUDGET) or " ", "blocks": blocks[:MAX_MESSAGE_BLOCKS]}


def pack_lines(lines: Iterable[str], limit: int = MAX_SECTION_TEXT) -> list[str]:
    """Join lines into as few texts of at most `limit` units as possible; an over-long line is clipped."""
    chunks: list[str] = []
    current = ""
    for line in lines:
        line = clip(line, limit)
        if current and units(current) + 1 + units(line) > limit:
            chunks.append(current)
            current = ""
        current = f"{current}\n{line}" if current else line
    if current:
        chunks.append(current)
    return chunks


# ----------------------------------------------------------------------------------------------
# Signals
# ----------------------------------------------------------------------------------------------


def order_sentence(signal: TradeSignal) -> str:
    """"Buy 113 YES at up to $0.44 — $49.66 of real money" (or "of paper money")."""
    kind = "paper money" if signal.dry_run else "real money"
    return (f"Buy {count(signal.contracts)} {signal.side.value.upper()} at up to {price(signal.limit_price)} "
            f"— {usd(signal.expected_outlay)} of {kind}")


def _market_lines(signal: TradeSignal) -> str:
    market = signal.market
    return (f"*{link(market.url, market.title)}*\n"
            f"{venue_name(market.venue)} · {md_line(market.id, 200)}")


def _signal_fields(signal: TradeSignal) -> list[str]:
    market = signal.market
    side = signal.side.value.upper()
    fair = f"model {pct(signal.model_probability)} · blended {pct(signal.fair_yes)}"
    if signal.side is Side.NO:
        fair += f"\n(NO wins {pct(signal.probability)})"
    quote_text = (f"bid {price(market.yes_bid)} · ask {price(market.yes_ask)}"
                  if market.yes_bid is not None or market.yes_ask is not None else "no quote")
    paper = " (DRY-RUN)" if signal.dry_run else ""
    return [
        f"*Order*\nBuy *{side}* · {count(signal.contracts)} contracts",
        f"*Price per contract*\navg {price(signal.average_price)} · limit {price(signal.limit_price)}",
        f"*Size{paper}*\n{usd(signal.cost)} + {usd(signal.fees)} fees = *{usd(signal.expected_outlay)}* · "
        f"{usd(signal.reserved)} held (all at the limit)",
        f"*Edge after fees*\n{pct(signal.edge, signed=True)} per contract",
        f"*Fair value (YES)*\n{fair}",
        f"*Market (YES)*\n{quote_text}",
        f"*Kelly stake*\n{pct(signal.kelly_fraction)} of bankroll",
        f"*Expected value{paper}*\n{usd(signal.expected_value, signed=True)}",
        f"*Expires*\n{utc(signal.expires_at)}",
        f"*Market closes*\n{utc(market.close_time)}",
    ]


def fee_line(signal: TradeSignal) -> str:
    """Where the fee in the signal's numbers comes from: the venue's schedule for this market, or the config."""
    model = signal.market.fee_model
    if model is None:
        return ""
    source = md_line(model.source, 160) or "the venue's schedule"
    if model.free:
        return f"Fees: none on this market ({source})"
    return f"Fees: {usd(signal.fees)} in this order's price ({source})"


def _signal_summary(signal: TradeSignal) -> list[dict[str, Any]]:
    blocks = [section(_market_lines(signal), _signal_fields(signal))]
    fees = fee_line(signal)
    if fees:
        blocks.append(context(fees))
    if clean(signal.reasoning).strip():
        blocks.append(section(f"*Why:* {md(signal.reasoning.strip(), REASONING_BUDGET)}"))
    if clean(signal.market.rules).strip():
        blocks.append(context(f"Rules: {md_line(signal.market.rules, RULES_BUDGET)}"))
    return blocks


def _signal_context(signal: TradeSignal, *extra: str) -> dict[str, Any]:
    return context(f"{mode_tag(signal.dry_run)} · signal {md_line(signal.id, 100)} · cycle "
                   f"{md_line(signal.cycle_id, 100)} · created {utc(signal.created_at)}", *extra)


def _fallback_title(signal: TradeSignal) -> str:
    return md_line(signal.market.title, 80) or md_line(signal.market.id, 80)


def _approve_button(signal: TradeSignal) -> dict[str, Any]:
    button: dict[str, Any] = {
        "type": "button",
        "action_id": APPROVE_ACTION,
        "text": _plain_text("Approve (dry-run)" if signal.dry_run else "Approve — LIVE order", MAX_BUTTON_TEXT),
        "style": "primary",
        "value": signal.id,
    }
    if not signal.dry_run:
        details = (f"{order_sentence(signal)} ({usd(signal.cost)} + {usd(signal.fees)} fees).\n"
                   f"{venue_name(signal.market.venue)} · {plain(signal.market.title, 200)}")
        button["confirm"] = {
            "title": _plain_text("Place a LIVE order?", MAX_CONFIRM_TITLE),
            "text": _plain_text(details, MAX_CONFIRM_TEXT),
            "confirm": _plain_text("Place real order", MAX_CONFIRM_BUTTON),
            "deny": _plain_text("Cancel", MAX_CONFIRM_BUTTON),
            "style": "danger",
        }
    return button


def signal_message(signal: TradeSignal) -> dict[str, Any]:
    """A pending signal with Approve / Reject. LIVE approval asks for confirmation of the exact order."""
    reject = {"type": "button", "action_id": REJECT_ACTION, "text": _plain_text("Reject", MAX_BUTTON_TEXT),
              "value": signal.id}
    blocks = [
        header(mode_header(signal.dry_run)),
        section(mode_line(signal.dry_run)),
        *_signal_summary(signal),
        {"type": "actions", "block_id": SIGNAL_ACTIONS_BLOCK, "elements": [_approve_button(signal), reject]},
        _signal_context(signal),
    ]
    fallback = (f"{mode_header(signal.dry_run)}: {order_sentence(signal)} · {_fallback_title(signal)} · "
                f"expires {utc(signal.expires_at, '%H:%M')}")
    return message(fallback, blocks)


# A placed signal stays placed; its order can move on (filled later, cancelled by the kill switch).
_PLACED_ORDER_LABELS = {
    OrderStatus.FILLED: (":white_check_mark:", "filled"),
    OrderStatus.PARTIALLY_FILLED: (":large_yellow_circle:", "partially filled, rest cancelled"),
    OrderStatus.CANCELED: (":octagonal_sign:", "order cancelled"),
}


def _outcome_label(decision: Decision, status: SignalStatus) -> tuple[str, str]:
    """(emoji, label) for what happened to the signal; the label is plain text, not yet escaped."""
    order = decision.outcome.order if decision.outcome is not None else None
    if decision.code == "executed" and status is SignalStatus.PLACED and order is not None \
            and order.status is not OrderStatus.RESTING:  # it rested, then the kill switch cancelled it
        return _PLACED_ORDER_LABELS.get(order.status, (":information_source:", order.status.value))
    if decision.code == "executed":
        return {SignalStatus.FILLED: (":white_check_mark:", "filled"),
                SignalStatus.PARTIALLY_FILLED: (":large_yellow_circle:", "partially filled"),
                SignalStatus.PLACED: (":hourglass_flowing_sand:", "order placed (resting)"),
                }.get(status, (":white_check_mark:", status.value.replace("_", " ")))
    if decision.code == "simulated":
        return ":white_check_mark:", "simulated, no money moved"
    if decision.code == "unknown":
        return ":warning:", "outcome unknown, reconciling"
    if decision.code == "rejected":
        return ":no_entry_sign:", "rejected"
    if decision.code == "failed":
        return ":x:", "order failed"
    if decision.code == "desk_stopped":
        return ":octagonal_sign:", "not sent, the desk stopped"
    code = clean(decision.code)[:40]
    if decision.ok:
        return ":white_check_mark:", code
    return ":x:", f"refused ({code})"


def _outcome_fields(decision: Decision, dry_run: bool) -> list[str]:
    outcome = decision.outcome
    if outcome is None or (outcome.order is None and outcome.result is None):
        return []
    return _order_fields(outcome.order, outcome.result, outcome.signal.contracts, dry_run)


def _order_fields(order: Order | None, result: OrderResult | None, contracts: Decimal,
                  dry_run: bool) -> list[str]:
    """The order as the venue last showed it; the stored order row wins over the raw reply."""
    shown = order if order is not None else result
    assert shown is not None
    venue_order_id = (order.venue_order_id if order else "") or (result.venue_order_id if result else "")
    client_order_id = order.client_order_id if order else (result.client_order_id if result else "")
    if order is not None:
        contracts = order.contracts
    paper = " (DRY-RUN)" if dry_run else ""
    fields = [
        f"*Order id*\n{md_line(venue_order_id, 200) or 'n/a'}",
        f"*Client order id*\n{md_line(client_order_id, 200) or 'n/a'}",
        f"*Filled*\n{count(shown.filled)} of {count(contracts)} contracts",
        f"*Average price*\n{price(shown.average_price) if shown.average_price is not None else 'n/a'}",
        f"*Fees{paper}*\n{usd(shown.fees)}",
        f"*Order status*\n{md_line(shown.status.value, 40)}",
    ]
    if result is not None:
        fields.insert(4, f"*Cost{paper}*\n{usd(result.cost)}")
    reason = (order.reason if order is not None else "") or (result.reason if result is not None else "")
    if reason:
        fields.append(f"*Venue says*\n{md_line(reason, 500)}")
    return fields


def signal_decided_message(signal: TradeSignal, decision: Decision, actor_label: str) -> dict[str, Any]:
    """The signal's message after a decision: no buttons, the outcome, who decided and the mode."""
    current = decision.signal or signal
    emoji, label = _outcome_label(decision, current.status)
    if decision.code == "rejected":
        verb = "Rejected by"
    elif decision.ok or decision.code in ("failed", "unknown", "desk_stopped"):
        verb = "Approved by"
    else:
        verb = "Attempted by"
    blocks = [
        header(f"{mode_header(signal.dry_run)} · {plain(label, 60)}"),
        *_signal_summary(signal),
        divider(),
        section(f"{emoji} {md(decision.message or label, 2000)}", _outcome_fields(decision, signal.dry_run)),
        _signal_context(signal, f"{verb} {who(actor_label)} · status *{current.status.value}*"),
    ]
    fallback = (f"{mode_header(signal.dry_run)}: {md_line(label, 60)} · {_fallback_title(signal)} · "
                f"{verb.lower()} {md_line(actor_label, 40) or 'someone'}")
    return message(fallback, blocks)


def signal_expired_message(signal: TradeSignal) -> dict[str, Any]:
    """The signal's message once it expired undecided: buttons removed, capital released."""
    expired = (f":hourglass: *Expired at {utc(signal.expires_at)}* — capital released "
               f"({money(signal.reserved, signal.dry_run)} no longer reserved). Nothing was traded.")
    blocks = [
        header(f"{mode_header(signal.dry_run)} · expired"),
        *_signal_summary(signal),
        divider(),
        section(expired),
        _signal_context(signal),
    ]
    fallback = (f"{mode_header(signal.dry_run)}: expired at {utc(signal.expires_at, '%H:%M')} — capital released · "
                f"{_fallback_title(signal)}")
    return message(fallback, blocks)


_RECONCILED_LABELS = {
    SignalStatus.FILLED: (":white_check_mark:", "filled"),
    SignalStatus.PARTIALLY_FILLED: (":large_yellow_circle:", "partially filled"),
    SignalStatus.PLACED: (":hourglass_flowing_sand:", "order placed (resting)"),
    SignalStatus.FAILED: (":x:", "order failed"),
    SignalStatus.UNKNOWN: (":warning:", "outcome unknown, reconciling"),
}


def signal_reconciled_message(item: ReconciledOrder, decided_by: str) -> dict[str, Any]:
    """The signal's message redrawn once reconciliation learnt its order's outcome (e.g. after a restart)."""
    signal = item.signal
    assert signal is not None
    emoji, label = _RECONCILED_LABELS.get(signal.status, (":information_source:", signal.status.value))
    if signal.status is SignalStatus.PLACED and item.order.status is not OrderStatus.RESTING:
        # A placed signal stays placed; its order moved on (filled later, or cancelled by the kill switch).
        emoji, label = _PLACED_ORDER_LABELS.get(item.order.status, (emoji, item.order.status.value))
    note = (f"{emoji} *Reconciled with {venue_name(item.order.venue)}:* {md_line(item.note, 500)} "
            f"(was {item.before.value}, now {item.after.value}).")
    blocks = [
        header(f"{mode_header(signal.dry_run)} · {plain(label, 60)}"),
        *_signal_summary(signal),
        divider(),
        section(note, _order_fields(item.order, None, signal.contracts, signal.dry_run)),
        _signal_context(signal, f"Approved by {who(decided_by)} · status *{signal.status.value}*"),
    ]
    fallback = f"{mode_header(signal.dry_run)}: {md_line(label, 60)} (reconciled) · {_fallback_title(signal)}"
    return message(fallback, blocks)


def refusal_text(decision: Decision) -> str:
    """The decision's sentence for an ephemeral reply, escaped."""
    return md(decision.message or decision.code or "Refused.", MAX_FALLBACK) or "Refused."


# ----------------------------------------------------------------------------------------------
# Cycles
# ----------------------------------------------------------------------------------------------

STAGE_LABELS = {
    "scanning": "Scanning venues",
    "filtering": "Filtering markets",
    "analysing": "Analysing markets",
    "pricing": "Pricing against the order books",
    "sizing": "Sizing signals",
    "done": "Done",
}


def _bar(done: int, total: int, width: int = 20) -> str:
    if total <= 0:
        return ""
    ratio = min(max(done / total, 0.0), 1.0)
    filled = int(round(ratio * width))
    return f"`{'█' * filled}{'░' * (width - filled)}` {ratio * 100:.0f}%"


def progress_message(stage: str, done: int, total: int, *, started_by: str, dry_run: bool,
                     venues: str) -> dict[str, Any]:
    """The one message edited as a cycle goes: stage, x/y, the mode."""
    finished = stage == "done"
    label = STAGE_LABELS.get(stage) or md_line(stage, 60) or "Working"
    step = f"{label} {done:,}/{total:,}" if total > 0 else label
    lines = [f"{':white_check_mark:' if finished else ':hourglass_flowing_sand:'} *{step}*"]
    if total > 0:
        lines.append(_bar(done, total))
    blocks = [
        header(f"{mode_header(dry_run)} · {'cycle finished' if finished else 'cycle running'}"),
        section("\n".join(lines)),
        context(f"{mode_tag(dry_run)} · started by {who(started_by, 'the scheduler')} · venues: "
                f"{md_line(venues, 200) or 'all'}"),
    ]
    fallback = f"{mode_tag(dry_run)} cycle: {step}"
    return message(fallback, blocks)


def cycle_busy_text(started_by: str, started_at: datetime) -> str:
    return (f":hourglass_flowing_sand: A cycle started by {who(started_by, 'the scheduler')} at "
            f"{utc(started_at, '%H:%M:%S')} is still running; its summary will be posted when it finishes.")


def _funnel(report: CycleReport) -> str:
    per_venue = ", ".join(f"{venue_name(v)} {n:,}" for v, n in sorted(report.scanned.items()))
    analysed = f"analysed {report.analysed:,}" + (f" (cached {report.cached:,})" if report.cached else "")
    return (f"scanned {report.total_scanned:,} ({per_venue or 'no venue answered'}) → passed filters "
            f"{report.passed_filters:,} → {analysed} → opportunities {report.opportunities:,} → "
            f"*signals {report.signals:,}*")


def _skipped(report: CycleReport) -> list[str]:
    parts = []
    if report.skipped_budget:
        parts.append(f"{report.skipped_budget:,} skipped by the LLM budget")
    if report.skipped_deadline:
        parts.append(f"{report.skipped_deadline:,} not analysed before the deadline")
    if report.invalid:
        parts.append(f"{report.invalid:,} without a valid estimate")
    return parts


def _venue_line(venue: str, stats: Any) -> str:
    line = (f"*{venue_name(venue)}*: {stats.markets:,} markets · {plural(stats.pages, 'page')} · "
            f"{plural(stats.requests, 'request')} · {plural(stats.retries, 'retry', 'retries')} · {stats.seconds:.2f} s")
    if stats.skipped:
        line += f" · {stats.skipped:,} objects skipped"
    if stats.error:
        line += f" · :x: failed: {md_line(stats.error, 300)}"
    return line


def _elapsed(report: CycleReport) -> float:
    return ((report.finished_at or report.started_at) - report.started_at).total_seconds()


def _code(raw: object, limit: int = 80) -> str:
    """A machine code (rejection reason, stage) in inline code; backticks inside cannot break out."""
    text = md_line(clean(raw).replace("`", "'"), limit) or "?"
    return f"`{text}`"


def _error_summary_line(report: CycleReport) -> str:
    return f":warning: *{plural(len(report.errors), 'error')} — details in thread*"


def cycle_summary_message(report: CycleReport) -> dict[str, Any]:
    """The funnel of one cycle and everything that explains it."""
    blocks: list[dict[str, Any]] = [
        header(f"{mode_header(report.dry_run)} · cycle {'finished' if report.finished_at else 'report'}"),
        section(f":bar_chart: {_funnel(report)}"),
    ]
    details = []
    skipped = _skipped(report)
    if skipped:
        details.append("*Skipped:* " + " · ".join(skipped))
    if report.risk_denied:
        details.append(f"*Held back by risk limits:* {report.risk_denied:,}")
    top = report.top_rejections(6)
    if top:
        details.append("*Why markets were dropped:* " + " · ".join(f"{_code(code)} {n:,}" for code, n in top))
    if details:
        blocks.append(section("\n".join(details)))
    venue_lines = [_venue_line(v, s) for v, s in sorted(report.venue_stats.items())]
    for text in pack_lines(venue_lines)[:3]:
        blocks.append(section(text))
    timings = " · ".join(f"{md_line(stage, 40)} {seconds:.2f}s" for stage, seconds in list(report.timings.items())[:20])
    blocks.append(section(f"*LLM cost:* {usd(report.llm_cost_usd)} (billed in both modes) · *Time:* "
                          f"{_elapsed(report):.2f} s" + (f"\n*Stages:* {timings}" if timings else "")))
    notes = [f":information_source: {md_line(note, 500)}" for note in report.notes]
    for text in pack_lines(notes)[:3]:
        blocks.append(section(text))
    blocks.append(section(_error_summary_line(report) if report.errors else ":white_check_mark: No errors"))
    blocks.append(context(f"{mode_tag(report.dry_run)} · cycle {md_line(report.cycle_id, 100)} · "
                          f"{md_line(report.trigger, 40)} · started by {who(report.started_by, 'the scheduler')} "
                          f"at {utc(report.started_at, '%Y-%m-%d %H:%M:%S')}"))
    fallback = (f"{mode_tag(report.dry_run)} cycle {md_line(report.cycle_id, 40)}: "
                f"{plural(report.signals, 'signal')} from {plural(report.total_scanned, 'market')} scanned")
    if report.errors:
        fallback += f" — {plural(len(report.errors), 'error')} — details in thread"
    return message(fallback, blocks)


def error_line(index: int, error: Any) -> str:
    """One error, one line: number, stage, venue, message (clipped to ERROR_LINE_BUDGET)."""
    venue = f" · {venue_name(error.venue)}" if error.venue else ""
    return f"*{index}.* {_code(error.stage or '?')}{venue} · {utc(error.at, '%H:%M:%S')}: {md_line(error.message, ERROR_LINE_BUDGET)}"


def error_report_messages(report: CycleReport) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A short summary for the channel, and the errors for its thread, one line each, split to fit."""
    total = len(report.errors)
    by_stage: dict[str, int] = {}
    for error in report.errors:
        by_stage[error.stage] = by_stage.get(error.stage, 0) + 1
    stages = ", ".join(f"{n:,} in {md_line(stage, 40)}" for stage, n in list(by_stage.items())[:10])
    if total:
        lead = f"{_error_summary_line(report)}\n{stages}" + (", …" if len(by_stage) > 10 else "")
    else:
        lead = ":white_check_mark: No errors"
    summary = message(
        f"{mode_tag(report.dry_run)} cycle {md_line(report.cycle_id, 40)}: "
        + (f"{plural(total, 'error')} — details in thread" if total else "no errors"),
        [section(lead), context(f"{mode_tag(report.dry_run)} · cycle {md_line(report.cycle_id, 100)}")])

    # Lines into sections of at most MAX_SECTION_TEXT, sections into messages within the budget.
    sections: list[tuple[int, int, str]] = []  # (first error number, last error number, text)
    current, start = "", 1
    for number, error in enumerate(report.errors, 1):
        line = clip(error_line(number, error), MAX_SECTION_TEXT)
        if current and units(current) + 1 + units(line) > MAX_SECTION_TEXT:
            sections.append((start, number - 1, current))
            current = ""
        if not current:
            start = number
        current = f"{current}\n{line}" if current else line
    if current:
        sections.append((start, total, current))

    batches: list[list[tuple[int, int, str]]] = []
    used = 0
    for entry in sections:
        size = units(entry[2])
        if not batches or used + size > THREAD_MESSAGE_BUDGET or len(batches[-1]) >= THREAD_MESSAGE_SECTIONS:
            batches.append([])
            used = 0
        batches[-1].append(entry)
        used += size

    thread = []
    for batch in batches:
        title = f"Errors {batch[0][0]:,}–{batch[-1][1]:,} of {total:,} · cycle {md_line(report.cycle_id, 100)}"
        thread.append(message(f"{mode_tag(report.dry_run)} {title}",
                              [context(f"{mode_tag(report.dry_run)} · {title}"),
                               *(section(text) for _, _, text in batch)]))
    return summary, thread


# ----------------------------------------------------------------------------------------------
# Desk state
# ----------------------------------------------------------------------------------------------

STATE_BADGES = {
    TradingState.ACTIVE: ":large_green_circle: ACTIVE",
    TradingState.PAUSED: ":double_vertical_bar: PAUSED — no new entries",
    TradingState.HALTED: ":octagonal_sign: HALTED — no trading",
}


def _state(state: TradingState) -> str:
    return STATE_BADGES.get(state, md_line(getattr(state, "value", state), 40).upper())


def last_cycle_line(status: DeskStatus) -> str:
    if status.cycle_running:
        return f":hourglass_flowing_sand: A cycle is running (started by {who(status.cycle_started_by, 'the scheduler')})."
    report = status.last_cycle
    if report is None:
        if status.last_cycle_id:
            return f"Last cycle {md_line(status.last_cycle_id, 100)}."
        return "No cycle has run yet. Start one with `/scan`."
    line = (f"Last cycle {md_line(report.cycle_id, 100)} ({mode_tag(report.dry_run)}, "
            f"{utc(report.started_at, '%Y-%m-%d %H:%M')}): {plural(report.total_scanned, 'market')} scanned → "
            f"{report.passed_filters:,} passed filters → {report.analysed:,} analysed → "
            f"{plural(report.signals, 'signal')} · LLM {usd(report.llm_cost_usd)}")
    if report.errors:
        line += f" · {plural(len(report.errors), 'error')}"
    return line


def _money_fields(status: DeskStatus) -> list[str]:
    risk, dry = status.risk, status.dry_run
    return [
        f"*Bankroll*\n{money(risk.bankroll, dry)}",
        f"*Free*\n{money(risk.free, dry)}",
        f"*Reserved* ({plural(risk.pending_signals, 'pending signal')})\n{money(risk.reserved, dry)}",
        f"*Exposure* ({plural(risk.open_positions, 'open position')})\n{money(risk.exposure, dry)}",
        f"*Realised P&amp;L today*\n{money(risk.realized_today, dry, signed=True)}",
        f"*LLM spend today*\n{usd(status.llm_spend_today)} (billed in both modes)",
    ]


def stopped_venue_lines(status: DeskStatus) -> list[str]:
    """One line per venue whose orders are stopped: why, and how they resume."""
    return [f":no_entry_sign: *Orders to {venue_name(venue)} are stopped* — {md_line(why, 400)} · resume with "
            f"`/desk resume {md_line(venue, 20)}` once `oddsdesk check --venues` passes"
            for venue, why in sorted(status.stopped_venues.items())]


def status_message(status: DeskStatus) -> dict[str, Any]:
    fields = [f"*Mode*\n{mode_tag(status.dry_run)}", f"*Trading*\n{_state(status.state)}", *_money_fields(status)]
    blocks = [
        header(f"{mode_header(status.dry_run)} · desk status"),
        section(mode_line(status.dry_run), fields),
        *[section(line) for line in stopped_venue_lines(status)],
        context(last_cycle_line(status)),
    ]
    fallback = (f"{mode_header(status.dry_run)} · {status.state.value.upper()} · bankroll "
                f"{money(status.risk.bankroll, status.dry_run)}, free {money(status.risk.free, status.dry_run)}")
    return message(fallback, blocks)


def position_line(position: Position, dry_run: bool = False) -> str:
    """A position in two lines; its money marked DRY-RUN when it is paper or the desk is in dry-run."""
    title = md_line(position.title, 150) or md_line(position.market_id, 150)
    average = position.cost / position.contracts if _finite(position.contracts) and position.contracts else None
    paper = " (DRY-RUN)" if position.paper or dry_run else ""
    return (f"*{title}*\n{venue_name(position.venue)} · {md_line(position.market_id, 100)} · "
            f"*{position.side.value.upper()}* {count(position.contracts)} @ avg {price(average)} · "
            f"cost {usd(position.cost)} + {usd(position.fees)} fees{paper} · opened {utc(position.opened_at)}")


def positions_message(status: DeskStatus) -> dict[str, Any]:
    positions = [p for p in status.positions if p.status == "open"]
    dry = status.dry_run
    exposure = sum((p.exposure for p in positions), Decimal(0))
    blocks: list[dict[str, Any]] = [
        header(f"{mode_header(dry)} · open positions"),
        section(f"*{plural(len(positions), 'open position')}* · exposure {money(exposure, dry)}"
                if positions else "No open positions."),
    ]
    for position in positions[:POSITIONS_SHOWN]:
        blocks.append(section(position_line(position, dry)))
    if len(positions) > POSITIONS_SHOWN:
        blocks.append(context(f"…and {len(positions) - POSITIONS_SHOWN:,} more"))
    blocks.append(context(f"{mode_tag(dry)} · {'paper positions' if dry else 'positions on the venues'}"))
    return message(f"{mode_header(dry)}: {plural(len(positions), 'open position')}, exposure {money(exposure, dry)}",
                   blocks)


def balance_message(status: DeskStatus) -> dict[str, Any]:
    dry = status.dry_run
    blocks = [
        header(f"{mode_header(dry)} · balance"),
        section(None, _money_fields(status)),
        context("Bankroll is the initial bankroll plus realised P&amp;L in this mode; "
                "free = bankroll − reserved − exposure."),
    ]
    return message(f"{mode_header(dry)}: bankroll {money(status.risk.bankroll, dry)}, free "
                   f"{money(status.risk.free, dry)}, reserved {money(status.risk.reserved, dry)}, exposure "
                   f"{money(status.risk.exposure, dry)}", blocks)


def help_message() -> dict[str, Any]:
    scan = ("*/scan* `[kalshi|polymarket|all] [limit N]`\nRun one trading cycle: scan the venues, filter, ask "
            "the model for fair values of at most N markets, and post each trade signal here with Approve / "
            "Reject. Without arguments: every configured venue and the configured limit.")
    desk = ("*/desk* `status|positions|balance|pause|resume|halt|help`\n"
            "• `status` — mode, trading state, bankroll and the last cycle (viewers)\n"
            "• `positions` — open positions (viewers)\n"
            "• `balance` — bankroll, free, reserved, exposure, today's P&amp;L and LLM spend (viewers)\n"
            "• `pause` — no new signals or approvals until `resume` (operators)\n"
            "• `halt` — the kill switch: cancel resting orders, stop all trading and cycles (operators)\n"
            "• `resume` — the desk is active again (approvers)\n"
            "• `resume kalshi|polymarket` — let orders go to a venue again after the desk stopped them because the "
            "venue's API changed (approvers; run `oddsdesk check --venues` first)\n"
            "• `help` — this message (everyone)")
    buttons = ("*Approve / Reject*\nOnly approvers (approval.authorized_users or approval.authorized_usergroups) "
               "may decide, and only with the buttons on the signal's own message. A LIVE approval asks you to "
               "confirm the exact order; a DRY-RUN approval simulates it against the real order book. A signal not "
               "decided before it expires is dropped and its capital released.")
    roles = ("*Who may do what*\nApprovers may do everything; operators (access.operators) run `/scan` in the "
             "desk's channel, pause and halt; viewers (access.viewers) see status, positions, balance and App Home. "
             "Everyone else gets this help only.")
    return message("oddsdesk help: /scan [kalshi|polymarket|all] [limit N] · "
                   "/desk status|positions|balance|pause|resume|halt|help",
                   [header("oddsdesk — commands"), section(scan), section(desk), section(buttons), section(roles)])


def home_refused_view(decision: Decision) -> dict[str, Any]:
    """App Home for someone who may not see the desk: who to ask, and nothing about the desk."""
    return {"type": "home", "blocks": [header("oddsdesk"), section(refusal_text(decision)),
                                       context("`/desk help` lists the commands and who may use them.")]}


def _expires_in(signal: TradeSignal, now: datetime) -> str:
    seconds = (signal.expires_at - now).total_seconds()
    if seconds <= 0:
        return f"expired at {utc(signal.expires_at, '%H:%M')}"
    return f"expires {utc(signal.expires_at, '%H:%M')} (in {plural(math.ceil(seconds / 60), 'min', 'min')})"


def pending_signal_text(signal: TradeSignal, now: datetime, dry_run: bool = False) -> str:
    """A pending signal in three lines, for the App Home."""
    paper = " (DRY-RUN)" if signal.dry_run or dry_run else ""
    return (f"*{link(signal.market.url, signal.market.title, 150)}*\n"
            f"{venue_name(signal.market.venue)} · Buy *{signal.side.value.upper()}* {count(signal.contracts)} at up "
            f"to {price(signal.limit_price)} · {usd(signal.expected_outlay)}{paper} · edge {pct(signal.edge, signed=True)} · "
            f"EV {usd(signal.expected_value, signed=True)}{paper}\n"
            f"{_expires_in(signal, now)} · signal {md_line(signal.id, 60)}")


def home_view(status: DeskStatus, now: datetime) -> dict[str, Any]:
    """The App Home: the desk at a glance. Never more than 100 blocks."""
    dry = status.dry_run
    blocks: list[dict[str, Any]] = [
        header(f"{':test_tube:' if dry else ':rotating_light:'} oddsdesk — "
               f"{'DRY-RUN (paper)' if dry else 'LIVE (real money)'}"),
        section(f"{mode_line(dry)}\n*Trading:* {_state(status.state)}", _money_fields(status)),
        *[section(line) for line in stopped_venue_lines(status)],
        context(last_cycle_line(status)),
        divider(),
        section(f"*Pending signals ({len(status.pending):,})*" + ("" if status.pending else "\nNone.")),
    ]
    for signal in status.pending[:HOME_PENDING_SHOWN]:
        blocks.append(section(pending_signal_text(signal, now, dry)))
    if len(status.pending) > HOME_PENDING_SHOWN:
        blocks.append(context(f"…and {len(status.pending) - HOME_PENDING_SHOWN:,} more pending; decide them in the "
                              "channel"))
    positions = [p for p in status.positions if p.status == "open"]
    blocks += [divider(), section(f"*Open positions ({len(positions):,})*" + ("" if positions else "\nNone."))]
    lines = [position_line(p, dry).replace("\n", " · ") for p in positions[:HOME_POSITIONS_SHOWN]]
    for text in pack_lines(lines)[:10]:
        blocks.append(section(text))
    if len(positions) > HOME_POSITIONS_SHOWN:
        blocks.append(context(f"…and {len(positions) - HOME_POSITIONS_SHOWN:,} more; `/desk positions` lists them"))
    blocks += [
        divider(),
        section(f"*Today:* realised P&amp;L {money(status.risk.realized_today, dry, signed=True)} · LLM spend "
                f"{usd(status.llm_spend_today)} (billed in both modes)"),
        context(f"{mode_tag(dry)} · updated {utc(now, '%Y-%m-%d %H:%M:%S')}"),
    ]
    return {"type": "home", "blocks": blocks[:MAX_VIEW_BLOCKS]}


def reconcile_message(report: ReconcileReport) -> dict[str, Any]:
    """What reconciliation found: orders it settled and orders it could not (a person should look)."""
    lines = []
    for item in report.resolved:
        lines.append(f"• resolved `{item.order.client_order_id}` ({md_line(item.title, 80)}): "
                     f"{item.before.value} → *{item.after.value}*, {count(item.order.filled)} filled — "
                     f"{md_line(item.note, 200)}")
    for item in report.unresolved:
        lines.append(f"• :warning: unresolved `{item.order.client_order_id}` ({md_line(item.title, 80)}): "
                     f"still {item.before.value} — {md_line(item.note, 200)}")
    for signal in report.released:
        lines.append(f"• released signal `{md_line(signal.id, 40)}` ({md_line(signal.market.title, 80)}): "
                     f"{md_line(signal.status_reason, 200)}; {usd(signal.reserved)} no longer reserved")
    for order in report.foreign:
        lines.append(f"• :warning: order `{md_line(order.order_id, 80)}` at {venue_name(order.venue)} "
                     f"(`{md_line(order.market_id, 80)}`, {md_line(order.side, 10)}, {count(order.remaining)} "
                     "resting) was not placed by this desk: not adopted, not cancelled — check it at the venue")
    for mismatch in report.positions:
        lines.append(f"• :warning: position {mismatch.venue.value} `{md_line(mismatch.market_id, 80)}`: "
                     f"{md_line(mismatch.note, 200)}")
    cancels = report.halt_cancels  # what it did cancel is among the resolved above
    for coid, why in cancels.failed:
        lines.append(f"• :warning: could NOT cancel `{md_line(coid, 80)}` although the desk is HALTED — "
                     f"{md_line(why, 200)}; check it at the venue")
    for skipped in report.skipped:
        lines.append(f"• :warning: could not list {venue_name(skipped.venue)} {skipped.what}, so they were not "
                     f"compared this pass — {md_line(skipped.reason, 200)}")
    text = (f"Reconciliation: {len(report.resolved)} resolved, {len(report.unresolved)} unresolved "
            f"of {report.checked} live orders checked" +
            (f"; {len(report.positions)} position mismatch(es)" if report.positions else "") +
            (f"; {len(report.released)} approval(s) released" if report.released else "") +
            (f"; {len(report.foreign)} order(s) not placed by this desk" if report.foreign else "") +
            (f"; {len(report.skipped)} check(s) not made" if report.skipped else "") +
            (f"; {len(cancels.cancelled)} cancelled (halted)" if cancels.cancelled else "") +
            (f"; {len(cancels.failed)} could NOT be cancelled" if cancels.failed else ""))
    body = clip("\n".join(lines), 2900)
    return {"text": text, "blocks": [
        {"type": "section", "text": {"type": "mrkdwn", "text": clip(f"*{text}*", 300), "verbatim": True}},
        {"type": "section", "text": {"type": "mrkdwn", "text": body or "nothing to report", "verbatim": True}},
    ]}


def settlement_message(report: SettlementReport) -> dict[str, Any]:
    """Positions closed by their markets' resolution, with realised P&L; paper and live told apart."""
    lines = []
    for item in report.settled:
        p = item.position
        lines.append(f"• {mode_tag(p.paper)} {venue_name(p.venue)} `{md_line(p.market_id, 80)}` "
                     f"({md_line(p.title, 80) or 'untitled'}): {count(p.contracts)} {p.side.value.upper()} paid "
                     f"{usd(item.payout)} − cost {usd(p.cost)} − fees {usd(p.fees)} = "
                     f"*{usd(p.realized_pnl, signed=True)}* — {md_line(item.resolution.detail, 80)}")
    totals = [f"{'paper' if paper else 'live'} {usd(report.realized(paper), signed=True)}"
              for paper in (False, True) if any(s.position.paper is paper for s in report.settled)]
    text = f"Settled {plural(len(report.settled), 'position')}: realised " + ", ".join(totals)
    blocks = [section(f"*{md_line(text, 200)}*")]
    blocks += [section(chunk) for chunk in pack_lines(lines)]
    return message(text, blocks)


def orders_stopped_message(stopped: OrdersStopped) -> dict[str, Any]:
    """Orders to a venue were just stopped (a retired endpoint, an unknown error): loud, once, with what to do."""
    name = venue_name(stopped.venue)
    steps = ("1. Upgrade oddsdesk to a version that speaks the venue's current API.\n"
             "2. Run `oddsdesk check --venues` until it reports no drift.\n"
             f"3. An authorized user: `/desk resume {md_line(stopped.venue, 20)}`.")
    nothing = (f"*Nothing moved:* the refused order traded nothing and holds nothing. {name}'s markets are not "
               "analysed and its signals cannot be approved until then; the other venue trades on.")
    if not stopped.recorded:
        nothing = (f"*The desk could not record the stop* (its database refused): do not approve {name} signals "
                   "until this is resolved.")
    return message(f"Orders to {name} STOPPED — {md_line(stopped.reason, 240)}", [
        header(f":no_entry_sign: Orders to {name} STOPPED — its API changed"),
        section(f"*Why:* {md(stopped.reason, 1500)}"),
        section(nothing),
        section(f"*What to do:*\n{steps}"),
        context("`/desk status` shows the stop until it is lifted."),
    ])


def loss_halt_message(reason: str) -> dict[str, Any]:
    """The daily loss limit pulled the kill switch: loud, and says how to come back."""
    return message(f"Desk HALTED: {md_line(reason, 200)}", [
        header(":octagonal_sign: Desk HALTED — daily loss limit"),
        section(md(reason, 2000)),
        context("Only reconciliation and settlement run now. An authorized user can `/desk resume`; "
                "new entries stay refused for the rest of the day by the limit itself."),
    ])
