"""Block Kit rendering: what each message says, the mode at the top, escaping of hostile text,
and Slack's limits on every payload (checked by a validator that walks any payload)."""

from __future__ import annotations

import json
import re
from collections import Counter
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from slack_sdk.models.blocks import Block

from bot import blocks
from pipeline.desk import Actor, Decision, DeskStatus
from pipeline.executor import ExecutionOutcome, describe_result
from pipeline.models import (CycleError, CycleReport, FeeModel, Fill, Market, Order, OrderResult, OrderStatus,
                             Position, Side, SignalStatus, TradeSignal, Venue, VenueScanStats)
from pipeline.risk import RiskSnapshot, TradingState

D = Decimal
NOW = datetime(2026, 11, 20, 15, 0, tzinfo=timezone.utc)
HOSTILE_TITLE = "<!channel> buy now & <https://evil.test|click> | <@U999> <#C1>"


# ------------------------------------------------------------------------------------------------
# Builders
# ------------------------------------------------------------------------------------------------


def make_signal(*, dry_run: bool = True, title: str = "Will the Fed hold rates in December?",
                reasoning: str = "Futures imply a hold; the statement language is unchanged.",
                url: str = "https://kalshi.com/markets/kxfed", market_id: str = "KXFED-26DEC-H0", id: str = "sig-0001",
                side: Side = Side.YES, rules: str = "", venue: Venue = Venue.KALSHI, status=SignalStatus.PENDING,
                contracts: str = "113", cost: str = "47.72", fees: str = "1.94") -> TradeSignal:
    market = Market(venue=venue, id=market_id, title=title, rules=rules, yes_bid=D("0.40"), yes_ask=D("0.42"),
                    volume=D("50000"), liquidity=D("5000"), close_time=NOW + timedelta(days=10), url=url,
                    fee_model=FeeModel(rate=D("0.07")))
    return TradeSignal(id=id, cycle_id="cyc-42", market=market, side=side, limit_price=D("0.44"),
                       contracts=D(contracts), cost=D(cost), fees=D(fees),
                       average_price=D("0.4223008849557522123893805310"),
                       probability=D("0.555") if side is Side.YES else D("0.445"), model_probability=D("0.70"),
                       fair_yes=D("0.555"), edge=D("0.1155309734513274336283185840"), kelly_fraction=D("0.04966"),
                       expected_value=D("13.055"), reasoning=reasoning, dry_run=dry_run, status=status,
                       created_at=NOW, expires_at=NOW + timedelta(minutes=30))


def make_outcome(signal: TradeSignal, status: OrderStatus, fills: tuple[Fill, ...], *, reason: str = "",
                 venue_order_id: str = "V-123") -> ExecutionOutcome:
    result = OrderResult(client_order_id=signal.client_order_id, venue_order_id=venue_order_id, status=status,
                         fills=fills, reason=reason)
    order = Order(id="ord-1", signal_id=signal.id, client_order_id=signal.client_order_id, venue=signal.market.venue,
                  market_id=signal.market.id, side=signal.side, contracts=signal.contracts,
                  limit_price=signal.limit_price, status=status, paper=signal.dry_run, venue_order_id=venue_order_id,
                  filled=result.filled, average_price=result.average_price, fees=result.fees, reason=reason,
                  created_at=NOW, updated_at=NOW)
    target = {OrderStatus.FILLED: SignalStatus.FILLED, OrderStatus.PARTIALLY_FILLED: SignalStatus.PARTIALLY_FILLED,
              OrderStatus.REJECTED: SignalStatus.FAILED}[status]
    if signal.dry_run and status is not OrderStatus.REJECTED:
        target = SignalStatus.SIMULATED
    done = signal.model_copy(update={"status": target})
    return ExecutionOutcome(signal=done, order=order, result=result, dry_run=signal.dry_run,
                            message=describe_result(signal, result, signal.dry_run))


FULL_FILL = (Fill(contracts=D("100"), price=D("0.42"), fee=D("1.71")),
             Fill(contracts=D("13"), price=D("0.44"), fee=D("0.23")))


def make_report(*, dry_run: bool = True, errors: list[CycleError] | None = None, **updates: Any) -> CycleReport:
    report = CycleReport(cycle_id="cyc-42", trigger="manual", started_by="UADMIN1", dry_run=dry_run,
                         started_at=NOW, finished_at=NOW + timedelta(seconds=12.5),
                         scanned={"kalshi": 1200, "polymarket": 834},
                         venue_stats={"kalshi": VenueScanStats(pages=12, requests=14, retries=2, markets=1200,
                                                               skipped=3, seconds=4.2),
                                      "polymarket": VenueScanStats(pages=9, requests=9, retries=0, markets=834,
                                                                   seconds=3.1, error="HTTP 503 from gamma")},
                         passed_filters=120, analysed=40, cached=12, skipped_budget=5, skipped_deadline=2, invalid=1,
                         opportunities=6, signals=3, risk_denied=2,
                         rejections=Counter({"volume_too_low": 900, "price_out_of_range": 400, "closes_too_late": 300,
                                             "edge_below_minimum": 30}),
                         timings={"scanning": 7.3, "analysing": 4.1, "sizing": 0.2}, llm_cost_usd=D("0.4321"),
                         errors=errors or [], notes=["the desk is PAUSED: scanned and filtered only, no new signals"])
    return report.model_copy(update=updates) if updates else report


def make_position(n: int, *, paper: bool = True, title: str | None = None) -> Position:
    return Position(venue=Venue.POLYMARKET if n % 2 else Venue.KALSHI, market_id=f"MKT-{n}", side=Side.NO,
                    paper=paper, contracts=D("50"), cost=D("21.50"), fees=D("0.35"),
                    title=title if title is not None else f"Position market {n}", opened_at=NOW - timedelta(hours=n))


def make_status(*, dry_run: bool = True, pending: list[TradeSignal] | None = None,
                positions: list[Position] | None = None, state: TradingState = TradingState.ACTIVE,
                last_cycle: CycleReport | None = None, cycle_running: bool = False) -> DeskStatus:
    pending = [make_signal(dry_run=dry_run)] if pending is None else pending
    positions = [make_position(1, paper=dry_run)] if positions is None else positions
    risk = RiskSnapshot(state=state, bankroll=D("1234.5"), reserved=D("49.66"), exposure=D("21.85"),
                        open_positions=len(positions), pending_signals=len(pending),
                        realized_today=D("-12.3"))
    return DeskStatus(dry_run=dry_run, state=state, risk=risk, pending=pending, positions=positions,
                      cycle_running=cycle_running, cycle_started_by="UADMIN1" if cycle_running else "",
                      last_cycle_id=last_cycle.cycle_id if last_cycle else "", llm_spend_today=D("1.25"),
                      last_cycle=last_cycle)


# ------------------------------------------------------------------------------------------------
# The validator: walks any payload and checks every Slack limit we rely on
# ------------------------------------------------------------------------------------------------

TOKEN = re.compile(r"<(?:https?://[^\s<>|]+(?:\|[^<>|]*)?|@[UW][A-Z0-9]+)>")
ENTITY = re.compile(r"&(?:amp|lt|gt);")
CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f\u202a-\u202e\u2066-\u2069]")
TEXT_KEYS = {"type", "text", "emoji", "verbatim"}


def u16(text: str) -> int:
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


class Validator:
    def __init__(self) -> None:
        self.problems: list[str] = []
        self.action_ids: set[str] = set()
        self.block_ids: set[str] = set()

    def fail(self, where: str, what: str) -> None:
        self.problems.append(f"{where}: {what}")

    def string(self, value: Any, where: str, limit: int) -> None:
        if not isinstance(value, str):
            return self.fail(where, f"not a string: {value!r}")
        if not value:
            self.fail(where, "empty")
        if u16(value) > limit:
            self.fail(where, f"{u16(value)} > {limit} characters")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            self.fail(where, "lone surrogate (not encodable)")
        if CONTROL.search(value):
            self.fail(where, "control or bidi-override character")

    def mrkdwn(self, text: str, where: str) -> None:
        """Untrusted text must not become a mention, a channel ping or a link: only our tokens survive."""
        outside = TOKEN.sub("", text)
        if "<" in outside or ">" in outside:
            self.fail(where, f"unescaped < or >: {text[:120]!r}")
        if "&" in ENTITY.sub("", text):
            self.fail(where, f"bare &: {text[:120]!r}")
        for token in TOKEN.findall(text):
            if token.startswith("<http") and "|" in token[1:-1].split("|", 1)[1]:
                self.fail(where, f"| inside a link label: {token!r}")

    def text_object(self, obj: Any, where: str, limit: int, plain_only: bool = False) -> None:
        if not isinstance(obj, dict):
            return self.fail(where, f"not a text object: {obj!r}")
        if set(obj) - TEXT_KEYS:
            self.fail(where, f"unknown keys {set(obj) - TEXT_KEYS}")
        kind = obj.get("type")
        if kind not in (("plain_text",) if plain_only else ("plain_text", "mrkdwn")):
            self.fail(where, f"text type {kind!r}")
        self.string(obj.get("text"), f"{where}.text", limit)
        if kind == "mrkdwn" and isinstance(obj.get("text"), str):
            if obj.get("verbatim") is not True:
                self.fail(where, "mrkdwn without verbatim: Slack would parse mentions in it")
            self.mrkdwn(obj["text"], where)
        if kind == "plain_text" and isinstance(obj.get("text"), str) and ("<" in obj["text"] or ">" in obj["text"]):
            self.fail(where, f"angle bracket in plain_text: {obj['text'][:80]!r}")

    def confirm(self, obj: Any, where: str) -> None:
        if not isinstance(obj, dict) or set(obj) - {"title", "text", "confirm", "deny", "style"}:
            return self.fail(where, f"bad confirm {obj!r}")
        self.text_object(obj.get("title"), f"{where}.title", 100, plain_only=True)
        self.text_object(obj.get("text"), f"{where}.text", 300)
        self.text_object(obj.get("confirm"), f"{where}.confirm", 30, plain_only=True)
        self.text_object(obj.get("deny"), f"{where}.deny", 30, plain_only=True)
        if obj.get("style", "primary") not in ("primary", "danger"):
            self.fail(where, "bad style")

    def button(self, el: Any, where: str) -> None:
        if not isinstance(el, dict) or el.get("type") != "button":
            return self.fail(where, f"not a button: {el!r}")
        extra = set(el) - {"type", "action_id", "text", "value", "style", "confirm", "url"}
        if extra:
            self.fail(where, f"unknown keys {extra}")
        self.text_object(el.get("text"), f"{where}.text", 75, plain_only=True)
        self.string(el.get("action_id"), f"{where}.action_id", 255)
        if el.get("action_id") in self.action_ids:
            self.fail(where, f"duplicate action_id {el.get('action_id')}")
        self.action_ids.add(el.get("action_id"))
        if "value" in el:
            self.string(el["value"], f"{where}.value", 2000)
        if el.get("style", "primary") not in ("primary", "danger"):
            self.fail(where, "bad style")
        if "confirm" in el:
            self.confirm(el["confirm"], f"{where}.confirm")

    def block(self, block: Any, where: str) -> None:
        if not isinstance(block, dict):
            return self.fail(where, "not a dict")
        kind = block.get("type")
        if "block_id" in block:
            self.string(block["block_id"], f"{where}.block_id", 255)
            if block["block_id"] in self.block_ids:
                self.fail(where, f"duplicate block_id {block['block_id']}")
            self.block_ids.add(block["block_id"])
        allowed = {"header": {"text"}, "section": {"text", "fields"}, "context": {"elements"},
                   "actions": {"elements"}, "divider": set()}
        if kind not in allowed:
            return self.fail(where, f"unknown block type {kind!r}")
        if set(block) - allowed[kind] - {"type", "block_id"}:
            self.fail(where, f"unknown keys {set(block) - allowed[kind] - {'type', 'block_id'}}")
        if kind == "header":
            self.text_object(block.get("text"), f"{where}.text", 150, plain_only=True)
        elif kind == "section":
            if "text" not in block and "fields" not in block:
                self.fail(where, "section with neither text nor fields")
            if "text" in block:
                self.text_object(block["text"], f"{where}.text", 3000)
            if "fields" in block:
                fields = block["fields"]
                if not isinstance(fields, list) or not 1 <= len(fields) <= 10:
                    self.fail(where, f"{len(fields)} fields")
                for i, field in enumerate(fields):
                    self.text_object(field, f"{where}.fields[{i}]", 2000)
        elif kind == "context":
            elements = block.get("elements")
            if not isinstance(elements, list) or not 1 <= len(elements) <= 10:
                return self.fail(where, "context needs 1..10 elements")
            for i, el in enumerate(elements):
                self.text_object(el, f"{where}.elements[{i}]", 3000)
        elif kind == "actions":
            elements = block.get("elements")
            if not isinstance(elements, list) or not 1 <= len(elements) <= 25:
                return self.fail(where, "actions needs 1..25 elements")
            for i, el in enumerate(elements):
                self.button(el, f"{where}.elements[{i}]")
        try:  # and what slack_sdk's own models (Slack's published limits) say
            Block.parse(block).validate_json()
        except Exception as e:
            self.fail(where, f"slack_sdk: {e}")

    def blocks(self, value: Any, limit: int) -> None:
        if not isinstance(value, list) or not 1 <= len(value) <= limit:
            return self.fail("blocks", f"needs 1..{limit} blocks, got {len(value) if isinstance(value, list) else value}")
        for i, block in enumerate(value):
            self.block(block, f"blocks[{i}]")


def problems(payload: dict[str, Any]) -> list[str]:
    v = Validator()
    try:
        json.dumps(payload, ensure_ascii=False).encode("utf-8")
    except (TypeError, UnicodeEncodeError) as e:
        v.fail("payload", f"not JSON/UTF-8 serialisable: {e}")
    if payload.get("type") == "home":
        if set(payload) - {"type", "blocks"}:
            v.fail("view", f"unknown keys {set(payload) - {'type', 'blocks'}}")
        v.blocks(payload.get("blocks"), 100)
    else:
        if set(payload) != {"text", "blocks"}:
            v.fail("message", f"keys {set(payload)}")
        v.string(payload.get("text"), "text", 3000)
        if isinstance(payload.get("text"), str):
            v.mrkdwn(payload["text"], "text")
        v.blocks(payload.get("blocks"), 50)
    return v.problems


def assert_valid(payload: dict[str, Any]) -> dict[str, Any]:
    found = problems(payload)
    assert not found, "\n".join(found[:20])
    return payload


def texts(payload: dict[str, Any]) -> list[str]:
    """Every string a person can read in a payload, in order (fallback first)."""
    out: list[str] = []

    def walk(node: Any, key: str = "") -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, k)
        elif isinstance(node, list):
            for v in node:
                walk(v, key)
        elif isinstance(node, str) and key == "text":
            out.append(node)

    walk(payload)
    return out


def alltext(payload: dict[str, Any]) -> str:
    return "\n".join(texts(payload))


def find_blocks(payload: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [b for b in payload["blocks"] if b["type"] == kind]


def buttons(payload: dict[str, Any]) -> list[dict[str, Any]]:
    return [el for b in find_blocks(payload, "actions") for el in b["elements"]]


# ------------------------------------------------------------------------------------------------
# The validator itself catches what it should
# ------------------------------------------------------------------------------------------------


def test_the_validator_catches_every_kind_of_violation():
    good = assert_valid(blocks.signal_message(make_signal(dry_run=False)))
    cases = {
        "too many blocks": lambda p: p["blocks"].extend([{"type": "divider"}] * 50),
        "header too long": lambda p: p["blocks"][0]["text"].update(text="x" * 151),
        "astral header counted twice": lambda p: p["blocks"][0]["text"].update(text="😀" * 76),
        "section too long": lambda p: p["blocks"][2]["text"].update(text="y" * 3001),
        "too many fields": lambda p: p["blocks"][2]["fields"].append(dict(p["blocks"][2]["fields"][0])),
        "unescaped mention": lambda p: p["blocks"][2]["text"].update(text="hi <!channel>"),
        "foreign link": lambda p: p["blocks"][2]["text"].update(text="<https://a.test|x|y>"),
        "bare ampersand": lambda p: p["blocks"][2]["text"].update(text="a & b"),
        "not verbatim": lambda p: p["blocks"][2]["text"].pop("verbatim"),
        "lone surrogate": lambda p: p["blocks"][2]["text"].update(text="a\ud83d"),
        "button text": lambda p: buttons(p)[0]["text"].update(text="b" * 76),
        "duplicate action": lambda p: buttons(p)[1].update(action_id=blocks.APPROVE_ACTION),
        "confirm text": lambda p: buttons(p)[0]["confirm"]["text"].update(text="c" * 301),
        "confirm title": lambda p: buttons(p)[0]["confirm"]["title"].update(text="c" * 101),
        "deny": lambda p: buttons(p)[0]["confirm"]["deny"].update(text="d" * 31),
        "value": lambda p: buttons(p)[0].update(value="v" * 2001),
        "fallback": lambda p: p.update(text="t" * 3001),
        "context elements": lambda p: find_blocks(p, "context")[0]["elements"].extend(
            [{"type": "mrkdwn", "text": "z", "verbatim": True}] * 10),
    }
    for name, breaks in cases.items():
        payload = json.loads(json.dumps(good))
        breaks(payload)
        assert problems(payload), f"the validator missed: {name}"


# ------------------------------------------------------------------------------------------------
# Signals
# ------------------------------------------------------------------------------------------------


def test_live_signal_message_shows_the_mode_first_and_the_whole_order():
    signal = make_signal(dry_run=False)
    payload = assert_valid(blocks.signal_message(signal))
    first = payload["blocks"][0]
    assert first["type"] == "header" and first["text"]["text"] == ":rotating_light: LIVE — real money"
    assert payload["text"].startswith(":rotating_light: LIVE — real money")
    assert "Buy 113 YES at up to $0.44 — $49.66 of real money" in payload["text"]
    body = alltext(payload)
    assert "DRY-RUN" not in body and "paper" not in body
    for expected in ("<https://kalshi.com/markets/kxfed|Will the Fed hold rates in December?>", "Kalshi · KXFED-26DEC-H0",
                     "Buy *YES* · 113 contracts", "avg $0.4223 · limit $0.44", "model 70.0% · blended 55.5%",
                     "bid $0.40 · ask $0.42", "+11.6% per contract", "5.0% of bankroll",
                     "$47.72 + $1.94 fees = *$49.66*", "+$13.06", "2026-11-20 15:30 UTC",
                     "Futures imply a hold", "signal sig-0001"):
        assert expected in body, expected


def test_live_approve_asks_for_confirmation_of_the_exact_order_and_reject_does_not():
    signal = make_signal(dry_run=False)
    approve, reject = buttons(blocks.signal_message(signal))
    assert approve["action_id"] == blocks.APPROVE_ACTION == "signal_approve" and approve["style"] == "primary"
    assert reject["action_id"] == blocks.REJECT_ACTION == "signal_reject" and "confirm" not in reject
    confirm = approve["confirm"]
    assert confirm["text"]["text"].startswith("Buy 113 YES at up to $0.44 — $49.66 of real money")
    assert "LIVE" in confirm["title"]["text"] and confirm["style"] == "danger"
    assert "LIVE" in approve["text"]["text"]


def test_dry_run_signal_message_is_paper_and_approve_has_no_confirm():
    signal = make_signal(dry_run=True)
    payload = assert_valid(blocks.signal_message(signal))
    assert payload["blocks"][0]["text"]["text"] == ":test_tube: DRY-RUN — paper"
    assert payload["text"].startswith(":test_tube: DRY-RUN — paper")
    assert "real money" not in alltext(payload) and "LIVE" not in alltext(payload)
    approve, reject = buttons(payload)
    assert "confirm" not in approve and "confirm" not in reject and approve["style"] == "primary"
    assert "Size (DRY-RUN)" in alltext(payload)


@pytest.mark.parametrize("dry_run", [True, False])
def test_buttons_carry_only_the_signal_id(dry_run):
    signal = make_signal(dry_run=dry_run, id="a8649061bc95467f")
    found = buttons(blocks.signal_message(signal))
    assert [b["action_id"] for b in found] == [blocks.APPROVE_ACTION, blocks.REJECT_ACTION]
    assert all(b["value"] == "a8649061bc95467f" for b in found)


def test_a_no_signal_states_the_probability_of_no():
    payload = assert_valid(blocks.signal_message(make_signal(side=Side.NO)))
    body = alltext(payload)
    assert "Buy *NO*" in body and "NO wins 44.5%" in body and "Buy 113 NO at up to $0.44" in payload["text"]


def test_fractional_contracts_and_large_amounts_are_formatted():
    signal = make_signal(contracts="1234.5", cost="1234.5", fees="0.005")
    body = alltext(blocks.signal_message(signal))
    assert "1,234.5 contracts" in body and "$1,234.50 + $0.01 fees = *$1,234.51*" in body


def test_money_prices_and_probabilities_are_formatted():
    assert blocks.usd(D("1234.5")) == "$1,234.50"
    assert blocks.usd(D("-12.3")) == "-$12.30"
    assert blocks.usd(D("13.055"), signed=True) == "+$13.06"
    assert blocks.usd(D("0"), signed=True) == "$0.00"
    assert blocks.usd(D("NaN")) == "n/a"
    assert blocks.price(D("0.44")) == "$0.44"
    assert blocks.price(D("0.4223008849")) == "$0.4223"
    assert blocks.price(D("0.001")) == "$0.001"
    assert blocks.price(D("0.5")) == "$0.50"
    assert blocks.pct(D("0.555")) == "55.5%"
    assert blocks.pct(D("0.11553"), signed=True) == "+11.6%"
    assert blocks.pct(D("-0.02"), signed=True) == "-2.0%"
    assert blocks.count(D("113")) == "113" and blocks.count(D("1130.00")) == "1,130"
    assert blocks.count(D("12.50")) == "12.5"


def test_hostile_title_reasoning_and_rules_cannot_ping_or_link():
    signal = make_signal(dry_run=False, title=HOSTILE_TITLE, reasoning=f"Because {HOSTILE_TITLE}",
                         rules=f"Rules {HOSTILE_TITLE}", market_id="<!here>")
    payload = assert_valid(blocks.signal_message(signal))
    dumped = json.dumps(payload, ensure_ascii=False)
    for forbidden in ("<!channel>", "<!here>", "<https://evil.test", "<@U999>", "<#C1>"):
        assert forbidden not in dumped, forbidden
    body = alltext(payload)
    # In the link label the pipe is stripped; elsewhere it is kept, escaped.
    assert ("<https://kalshi.com/markets/kxfed|&lt;!channel&gt; buy now &amp; &lt;https://evil.test click&gt; "
            "&lt;@U999&gt; &lt;#C1&gt;>") in body
    assert "Because &lt;!channel&gt; buy now &amp; &lt;https://evil.test|click&gt;" in body
    assert "Rules &lt;!channel&gt;" in body and "&lt;!here&gt;" in body
    # plain_text (the confirm dialog) shows the title with its brackets defused
    confirm = buttons(payload)[0]["confirm"]["text"]["text"]
    assert "‹!channel›" in confirm and "<" not in confirm


@pytest.mark.parametrize("url,expected", [
    ("javascript:alert(1)", None),
    ("", None),
    ("https://ok.test/a|b>c<d e", "https://ok.test/a%7Cb%3Ec%3Cd%20e"),
    ("https://ok.test/?a=1&b=2", "https://ok.test/?a=1&amp;b=2"),
    ("https://ok.test/" + "x" * 5000, None),
])
def test_market_urls_are_made_safe_or_dropped(url, expected):
    signal = make_signal(url=url, title="Plain title")
    body = alltext(assert_valid(blocks.signal_message(signal)))
    if expected is None:
        assert "*Plain title*" in body and "<http" not in body
    else:
        assert f"<{expected}|Plain title>" in body


def test_long_reasoning_is_clipped_with_an_ellipsis():
    signal = make_signal(reasoning="word " * 2000)
    why = [t for t in texts(blocks.signal_message(signal)) if t.startswith("*Why:*")][0]
    assert why.endswith("…") and blocks.units(why) <= blocks.REASONING_BUDGET + 10


# ------------------------------------------------------------------------------------------------
# Clipping and cleaning
# ------------------------------------------------------------------------------------------------


def test_clip_never_splits_an_astral_character_an_emoji_sequence_a_flag_or_an_escape():
    assert blocks.clip("abc", 3) == "abc"
    assert blocks.clip("abcdef", 4) == "abc…"
    cut = blocks.clip("a" * 9 + "😀" + "tail", 11)  # the emoji would straddle the limit
    assert cut == "a" * 9 + "…" and blocks.units(cut) <= 11
    family = "👨\u200d👩\u200d👧"
    assert blocks.clip("ab" + family + "cdef", 6) == "ab…"
    assert blocks.clip("ab🇺🇸🇫🇷cdef", 8) == "ab🇺🇸…"
    assert blocks.clip("ab👍🏽cdef", 4) == "ab…"
    assert blocks.clip("cafe\u0301 au lait", 5) == "caf…"
    escaped = blocks.md("aaaaaaa&&&&", 12)
    assert escaped == "aaaaaaa&amp;…" or not re.search(r"&(?!amp;|lt;|gt;)", escaped)
    assert not re.search(r"&(?!amp;|lt;|gt;)", blocks.md("x" * 7 + "<<<<", 10))
    assert blocks.clip("see <https://a.test/x|label> now", 15) == "see…"


def test_clean_pairs_surrogate_halves_and_drops_lone_ones_and_bidi_overrides():
    assert blocks.clean("a\ud83d\ude00b") == "a😀b"
    assert blocks.clean("a\ud83db\ude00") == "a\ufffdb\ufffd"
    assert blocks.clean("x\u202eevil\x00\r\ny") == "xevil\ny"
    cut = blocks.md("a" * 9 + "\ud83d\ude00" + "b" * 10, 11)
    cut.encode("utf-8")
    assert cut == "a" * 9 + "…"


def test_who_mentions_slack_users_and_escapes_anything_else():
    assert blocks.who("UADMIN1") == "<@UADMIN1>"
    assert blocks.who("terminal:operator") == "terminal:operator"
    assert blocks.who("<!channel>") == "&lt;!channel&gt;"
    assert blocks.who("") == "someone"


# ------------------------------------------------------------------------------------------------
# Decisions
# ------------------------------------------------------------------------------------------------


def test_live_filled_decision_shows_the_order_and_who_approved():
    signal = make_signal(dry_run=False)
    outcome = make_outcome(signal, OrderStatus.FILLED, FULL_FILL)
    decision = Decision(True, "executed", outcome.message, signal=outcome.signal, outcome=outcome)
    payload = assert_valid(blocks.signal_decided_message(signal, decision, "UADMIN1"))
    assert not find_blocks(payload, "actions")
    assert payload["blocks"][0]["text"]["text"].startswith(":rotating_light: LIVE — real money")
    assert "filled" in payload["blocks"][0]["text"]["text"]
    body = alltext(payload)
    for expected in ("*Order id*\nV-123", f"*Client order id*\n{signal.client_order_id}", "113 of 113 contracts",
                     "*Average price*\n$0.4223", "*Fees*\n$1.94", "*Cost*\n$47.72", "*Order status*\nfilled",
                     "Approved by <@UADMIN1>", "Bought 113 YES", "LIVE · signal sig-0001"):
        assert expected in body, expected
    assert "DRY-RUN" not in body
    assert payload["text"].startswith(":rotating_light: LIVE — real money") and "filled" in payload["text"]


def test_partial_fill_says_so():
    signal = make_signal(dry_run=False)
    outcome = make_outcome(signal, OrderStatus.PARTIALLY_FILLED, FULL_FILL[:1])
    decision = Decision(True, "executed", outcome.message, signal=outcome.signal, outcome=outcome)
    payload = assert_valid(blocks.signal_decided_message(signal, decision, "UADMIN1"))
    assert "partially filled" in payload["blocks"][0]["text"]["text"]
    assert "100 of 113 contracts" in alltext(payload) and "rest cancelled" in alltext(payload)


def test_dry_run_simulated_decision_is_marked_paper():
    signal = make_signal(dry_run=True)
    outcome = make_outcome(signal, OrderStatus.FILLED, FULL_FILL, venue_order_id=f"paper-{signal.client_order_id}")
    decision = Decision(True, "simulated", outcome.message, signal=outcome.signal, outcome=outcome)
    payload = assert_valid(blocks.signal_decided_message(signal, decision, "terminal:operator"))
    header = payload["blocks"][0]["text"]["text"]
    assert header.startswith(":test_tube: DRY-RUN — paper") and "simulated" in header
    body = alltext(payload)
    assert f"paper-{signal.client_order_id}" in body and "*Fees (DRY-RUN)*\n$1.94" in body
    assert "DRY-RUN: would have bought 113 YES" in body and "Approved by terminal:operator" in body
    assert "real money" not in body


def test_failed_order_shows_the_reason():
    signal = make_signal(dry_run=False)
    outcome = make_outcome(signal, OrderStatus.REJECTED, (), reason="venue refused the order: insufficient funds")
    decision = Decision(False, "failed", f"Order failed: {outcome.message}", signal=outcome.signal, outcome=outcome)
    payload = assert_valid(blocks.signal_decided_message(signal, decision, "UADMIN1"))
    assert "order failed" in payload["blocks"][0]["text"]["text"]
    body = alltext(payload)
    assert "Order failed: Not filled: venue refused the order: insufficient funds" in body
    assert "*Order status*\nrejected" in body and "0 of 113 contracts" in body and "status *failed*" in body


def test_an_approval_stopped_by_a_halt_says_nothing_was_sent():
    signal = make_signal(dry_run=False)
    stopped = Decision(False, "desk_stopped", "Not sent: the desk was halted while this approval was being checked. "
                       "Nothing was traded; its capital is released.",
                       signal=signal.model_copy(update={"status": SignalStatus.FAILED}))
    payload = assert_valid(blocks.signal_decided_message(signal, stopped, "UADMIN1"))
    assert "not sent, the desk stopped" in payload["blocks"][0]["text"]["text"]
    body = alltext(payload)
    assert "the desk was halted" in body and "Approved by <@UADMIN1>" in body and "status *failed*" in body
    assert not find_blocks(payload, "actions")


def test_reconciliation_tells_halt_cancels_and_checks_not_made():
    from pipeline.cancel import CancelReport, Cancelled
    from pipeline.reconcile import ReconcileReport, SkippedCheck, cancelled_items

    signal = make_signal(dry_run=False).model_copy(update={"status": SignalStatus.PLACED})
    order = make_outcome(signal, OrderStatus.REJECTED, ()).order.model_copy(update={"status": OrderStatus.CANCELED})
    cancels = CancelReport(cancelled=[Cancelled(order, OrderStatus.RESTING, signal)],
                           failed=[("od-other", "the venue still shows it resting")])
    report = ReconcileReport(halt_cancels=cancels, resolved=cancelled_items(cancels),
                             skipped=[SkippedCheck(Venue.POLYMARKET, "positions", "RetryableError", "timed out")])
    payload = assert_valid(blocks.reconcile_message(report))
    body = alltext(payload)
    assert f"resolved `{order.client_order_id}`" in body and "resting → *canceled*" in body
    assert "cancelled: the desk is HALTED" in body
    redrawn = assert_valid(blocks.signal_reconciled_message(report.resolved[0], "UADMIN1"))
    assert "order cancelled" in redrawn["blocks"][0]["text"]["text"] and "order placed" not in alltext(redrawn)
    assert "could NOT cancel `od-other` although the desk is HALTED — the venue still shows it resting" in body
    assert "could not list Polymarket positions, so they were not compared this pass — RetryableError" in body
    assert "1 cancelled (halted); 1 could NOT be cancelled" in payload["text"] and "1 check(s) not made" in payload["text"]


def test_rejection_and_refusal_show_the_reason_and_who():
    signal = make_signal(dry_run=False)
    rejected = Decision(True, "rejected", "Rejected by UADMIN1; $49.66 released.",
                        signal=signal.model_copy(update={"status": SignalStatus.REJECTED}))
    payload = assert_valid(blocks.signal_decided_message(signal, rejected, "UADMIN1"))
    assert "rejected" in payload["blocks"][0]["text"]["text"] and "Rejected by <@UADMIN1>" in alltext(payload)
    assert "$49.66 released" in alltext(payload) and not find_blocks(payload, "actions")

    stale = Decision(False, "stale", "Refused, the market moved: ask 0.49 > limit 0.44 <!channel>. Nothing was traded.",
                     signal=signal)
    payload = assert_valid(blocks.signal_decided_message(signal, stale, "UADMIN1"))
    body = alltext(payload)
    assert "refused (stale)" in payload["blocks"][0]["text"]["text"] and "Attempted by <@UADMIN1>" in body
    assert "ask 0.49 &gt; limit 0.44 &lt;!channel&gt;" in body and "LIVE" in payload["text"]


def test_expired_message_removes_the_buttons_and_releases_capital():
    for dry_run in (True, False):
        signal = make_signal(dry_run=dry_run)
        payload = assert_valid(blocks.signal_expired_message(signal))
        assert not find_blocks(payload, "actions")
        body = alltext(payload)
        assert "Expired at 2026-11-20 15:30 UTC* — capital released" in body
        assert "expired at 15:30 UTC — capital released" in payload["text"]
        assert payload["blocks"][0]["text"]["text"].startswith(blocks.mode_header(dry_run))


def test_refusal_text_is_the_message_escaped():
    decision = Decision(False, "not_authorized", "You are not authorized <!channel> & co.")
    assert blocks.refusal_text(decision) == "You are not authorized &lt;!channel&gt; &amp; co."
    assert blocks.refusal_text(Decision(False, "x", "")) == "x"
    long = blocks.refusal_text(Decision(False, "x", "y" * 5000))
    assert blocks.units(long) <= 3000 and long.endswith("…")


async def test_decisions_from_a_real_desk_render_in_both_modes(tmp_path):
    from .test_desk import ADMIN, make_desk

    for dry_run in (False, True):
        (tmp_path / str(dry_run)).mkdir()
        desk, venue, store = await make_desk(tmp_path / str(dry_run), dry_run=dry_run)
        [signal] = (await desk.scan()).signals
        assert_valid(blocks.signal_message(signal))
        refused = await desk.approve(signal.id, Actor(id="USTRANGER"))
        assert blocks.refusal_text(refused).startswith("You are not authorized")
        decision = await desk.approve(signal.id, ADMIN)
        payload = assert_valid(blocks.signal_decided_message(signal, decision, ADMIN.label))
        body = alltext(payload)
        assert decision.code == ("simulated" if dry_run else "executed")
        assert "113 of 113 contracts" in body and decision.outcome.order.client_order_id in body
        assert payload["blocks"][0]["text"]["text"].startswith(blocks.mode_header(dry_run))
        status = await desk.status()
        assert_valid(blocks.home_view(status, signal.created_at))
        assert_valid(blocks.positions_message(status))
        await store.close()


# ------------------------------------------------------------------------------------------------
# Cycles
# ------------------------------------------------------------------------------------------------


def test_progress_message_shows_stage_count_and_mode():
    payload = assert_valid(blocks.progress_message("analysing", 12, 40, started_by="UADMIN1", dry_run=False,
                                                   venues="kalshi, polymarket"))
    body = alltext(payload)
    assert payload["blocks"][0]["text"]["text"].startswith(":rotating_light: LIVE")
    assert "Analysing markets 12/40" in body and "30%" in body and "<@UADMIN1>" in body
    assert "venues: kalshi, polymarket" in body and payload["text"] == "LIVE cycle: Analysing markets 12/40"
    done = assert_valid(blocks.progress_message("done", 0, 0, started_by="", dry_run=True, venues="all"))
    assert "cycle finished" in done["blocks"][0]["text"]["text"] and "DRY-RUN" in done["text"]
    assert "the scheduler" in alltext(done)
    odd = assert_valid(blocks.progress_message("<!channel>", 50, 10, started_by="<!here>", dry_run=True,
                                               venues="<!channel>"))
    assert "<!" not in json.dumps(odd)


def test_cycle_busy_text_names_who_and_when():
    text = blocks.cycle_busy_text("UADMIN1", datetime(2026, 11, 20, 16, 2, 11, tzinfo=timezone(timedelta(hours=1))))
    assert "<@UADMIN1>" in text and "15:02:11 UTC" in text and "still running" in text
    assert "the scheduler" in blocks.cycle_busy_text("", NOW)


def test_cycle_summary_shows_the_funnel_reasons_costs_venues_and_errors():
    errors = [CycleError(stage="analysing", venue="kalshi", message="timeout", at=NOW)] * 3
    payload = assert_valid(blocks.cycle_summary_message(make_report(dry_run=False, errors=errors)))
    body = alltext(payload)
    assert payload["blocks"][0]["text"]["text"].startswith(":rotating_light: LIVE — real money")
    for expected in ("scanned 2,034 (Kalshi 1,200, Polymarket 834) → passed filters 120 → analysed 40 (cached 12) → "
                     "opportunities 6 → *signals 3*",
                     "5 skipped by the LLM budget", "2 not analysed before the deadline", "1 without a valid estimate",
                     "Held back by risk limits:* 2", "`volume_too_low` 900", "`price_out_of_range` 400",
                     "*LLM cost:* $0.43", "12.50 s", "scanning 7.30s", "*Kalshi*: 1,200 markets · 12 pages · "
                     "14 requests · 2 retries", "3 objects skipped", "failed: HTTP 503 from gamma",
                     "the desk is PAUSED", "3 errors — details in thread", "cycle cyc-42", "<@UADMIN1>"):
        assert expected in body, expected
    assert "3 errors — details in thread" in payload["text"] and payload["text"].startswith("LIVE")


def test_cycle_summary_without_errors_says_so():
    payload = assert_valid(blocks.cycle_summary_message(make_report()))
    assert "No errors" in alltext(payload) and "details in thread" not in payload["text"]
    assert payload["blocks"][0]["text"]["text"].startswith(":test_tube: DRY-RUN — paper")


def thread_lines(thread: list[dict[str, Any]]) -> list[str]:
    return [line for message in thread for block in find_blocks(message, "section")
            for line in block["text"]["text"].split("\n")]


def test_error_report_splits_500_long_errors_and_keeps_every_one_in_order():
    errors = [CycleError(stage=["scanning", "analysing", "pricing"][i % 3], venue=["kalshi", "polymarket", ""][i % 3],
                         message=f"error {i} " + "detail & <more> " * (i % 40 * 10), at=NOW) for i in range(500)]
    summary, thread = blocks.error_report_messages(make_report(errors=errors))
    assert_valid(summary)
    assert "500 errors — details in thread" in alltext(summary) and "167 in scanning" in alltext(summary)
    assert len(thread) > 1
    for message in thread:
        assert_valid(message)
    lines = thread_lines(thread)
    assert len(lines) == 500
    for i, (line, error) in enumerate(zip(lines, errors), 1):
        assert line.startswith(f"*{i}.* `{error.stage}`"), line[:80]
        expected = blocks.escape(" ".join(error.message.split()))
        if len(expected) <= blocks.ERROR_LINE_BUDGET:
            assert line.endswith(f": {expected}")
        else:
            assert line.endswith("…") and expected[:200] in line
        if error.venue:
            assert blocks.venue_name(error.venue) in line
    # the thread's headings cover 1..500 without gaps
    spans = [re.search(r"Errors ([\d,]+)–([\d,]+) of 500", m["text"]).groups() for m in thread]
    bounds = [(int(a.replace(",", "")), int(b.replace(",", ""))) for a, b in spans]
    assert bounds[0][0] == 1 and bounds[-1][1] == 500
    assert all(b[0] == a[1] + 1 for a, b in zip(bounds, bounds[1:]))


def test_500_hostile_huge_errors_stay_within_limits_and_escaped():
    errors = [CycleError(stage=FRAGMENTS[i % len(FRAGMENTS)] * 3, venue=FRAGMENTS[(i + 1) % len(FRAGMENTS)],
                         message=FRAGMENTS[(i + 2) % len(FRAGMENTS)] * (50 + i * 7), at=NOW) for i in range(500)]
    report = make_report(errors=errors, notes=[e.message for e in errors[:30]])
    assert_valid(blocks.cycle_summary_message(report))
    summary, thread = blocks.error_report_messages(report)
    assert_valid(summary)
    for message in thread:
        assert_valid(message)
        assert "<!channel>" not in json.dumps(message, ensure_ascii=False)
    assert [line.split(".*", 1)[0] for line in thread_lines(thread)] == [f"*{i}" for i in range(1, 501)]


def test_error_report_without_errors_has_no_thread():
    summary, thread = blocks.error_report_messages(make_report())
    assert thread == [] and "No errors" in alltext(assert_valid(summary))


# ------------------------------------------------------------------------------------------------
# Desk state
# ------------------------------------------------------------------------------------------------


def money_lines_unmarked(payload: dict[str, Any]) -> list[str]:
    """Lines showing dollars without a DRY-RUN mark (LLM spend is real money in both modes)."""
    return [line for text in texts(payload) for line in text.split("\n")
            if "$" in line and "DRY-RUN" not in line and "billed in both modes" not in line
            and not line.startswith("*")]  # a field's title line; its value is the next line


def test_status_message():
    status = make_status(dry_run=False, state=TradingState.PAUSED, last_cycle=make_report(dry_run=False))
    payload = assert_valid(blocks.status_message(status))
    body = alltext(payload)
    assert payload["blocks"][0]["text"]["text"].startswith(":rotating_light: LIVE — real money")
    for expected in ("*Mode*\nLIVE", "PAUSED", "*Bankroll*\n$1,234.50", "*Free*\n$1,162.99", "$49.66", "$21.85",
                     "(1 pending signal)", "(1 open position)", "-$12.30", "$1.25 (billed in both modes)",
                     "Last cycle cyc-42 (LIVE"):
        assert expected in body, expected
    assert "DRY-RUN" not in body
    running = assert_valid(blocks.status_message(make_status(cycle_running=True)))
    assert "A cycle is running (started by <@UADMIN1>)" in alltext(running)
    assert "DRY-RUN" in running["text"] and not money_lines_unmarked(running)


def test_balance_message_marks_paper_money():
    payload = assert_valid(blocks.balance_message(make_status(dry_run=True)))
    body = alltext(payload)
    assert "$1,234.50 (DRY-RUN)" in body and "$1,162.99 (DRY-RUN)" in body and "-$12.30 (DRY-RUN)" in body
    assert not money_lines_unmarked(payload)
    live = assert_valid(blocks.balance_message(make_status(dry_run=False)))
    assert "DRY-RUN" not in alltext(live) and "LIVE" in live["text"]


def test_positions_message():
    payload = assert_valid(blocks.positions_message(make_status(positions=[make_position(1, title=HOSTILE_TITLE)])))
    body = alltext(payload)
    assert "&lt;!channel&gt;" in body and "<!channel>" not in json.dumps(payload)
    assert "*NO* 50 @ avg $0.43 · cost $21.50 + $0.35 fees (DRY-RUN)" in body and "Polymarket · MKT-1" in body
    assert not money_lines_unmarked(payload)
    many = assert_valid(blocks.positions_message(make_status(positions=[make_position(i) for i in range(70)])))
    assert "…and 30 more" in alltext(many)
    empty = assert_valid(blocks.positions_message(make_status(positions=[])))
    assert "No open positions." in alltext(empty)


def test_help_documents_the_commands():
    payload = assert_valid(blocks.help_message())
    body = alltext(payload)
    assert "/scan* `[kalshi|polymarket|all] [limit N]`" in body
    assert "/desk* `status|positions|balance|pause|resume|halt|help`" in body
    for word in ("status", "positions", "balance", "pause", "resume", "authorized"):
        assert f"{word}" in body


def test_home_view_shows_the_desk_and_marks_paper_money():
    status = make_status(dry_run=True, last_cycle=make_report(errors=[CycleError(stage="scanning", message="x")]))
    view = assert_valid(blocks.home_view(status, NOW + timedelta(minutes=18)))
    assert view["type"] == "home"
    body = alltext(view)
    assert view["blocks"][0]["text"]["text"] == ":test_tube: oddsdesk — DRY-RUN (paper)"
    for expected in ("ACTIVE", "*Bankroll*\n$1,234.50 (DRY-RUN)", "*Pending signals (1)*", "*Open positions (1)*",
                     "Buy *YES* 113 at up to $0.44 · $49.66 (DRY-RUN)", "expires 15:30 UTC (in 12 min)",
                     "realised P&amp;L -$12.30 (DRY-RUN)", "LLM spend $1.25", "Last cycle cyc-42 (DRY-RUN",
                     "1 error", "updated 2026-11-20 15:18:00 UTC"):
        assert expected in body, expected
    assert not money_lines_unmarked(view)


def test_home_view_live_is_red_and_unmarked():
    view = assert_valid(blocks.home_view(make_status(dry_run=False), NOW))
    assert view["blocks"][0]["text"]["text"] == ":rotating_light: oddsdesk — LIVE (real money)"
    assert "DRY-RUN" not in alltext(view) and "No cycle has run yet" in alltext(view)


def test_home_view_with_80_pending_signals_and_60_positions_stays_within_100_blocks():
    pending = [make_signal(id=f"sig-{i}", title=f"{HOSTILE_TITLE} {i}") for i in range(80)]
    positions = [make_position(i) for i in range(60)]
    view = assert_valid(blocks.home_view(make_status(pending=pending, positions=positions), NOW))
    body = alltext(view)
    assert len(view["blocks"]) <= 100
    assert "*Pending signals (80)*" in body and "…and 60 more pending" in body and "…and 30 more" in body
    assert "<!channel>" not in json.dumps(view)


# ------------------------------------------------------------------------------------------------
# Property tests: hostile and huge inputs never break a limit or escape
# ------------------------------------------------------------------------------------------------

FRAGMENTS = ["<!channel>", "<!here>", "<@U123>", "<#C123|general>", "<https://evil.test|click>", "&", "&amp;", "&lt;",
             "<", ">", "|", "*", "_", "`", "~", "```", "\n", "\r\n", "\t", "😀", "👍🏽", "👨\u200d👩\u200d👧", "🇺🇸",
             "e\u0301", "\ud83d", "\ude00", "\ud83d\ude00", "\u202e", "\x00", "\x1b[31m", "é", "中文",
             ":rotating_light:", "LIVE", "$", "%", "a" * 50]
hostile = st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=12)), max_size=300).map("".join)
huge = st.builds(lambda fragment, n: fragment * n, st.sampled_from(FRAGMENTS), st.integers(1, 2000))
any_text = st.one_of(hostile, huge)
urls = st.one_of(st.just(""), any_text, any_text.map(lambda t: "https://x.test/" + t))
amounts = st.decimals(min_value=D("0.01"), max_value=D("1000000"), places=4)
PROPERTY = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                          HealthCheck.data_too_large])


@PROPERTY
@given(title=any_text, reasoning=any_text, rules=any_text, url=urls, market_id=any_text, dry_run=st.booleans(),
       side=st.sampled_from(Side), contracts=amounts, cost=amounts, message=any_text, actor=any_text,
       code=st.sampled_from(["executed", "simulated", "failed", "rejected", "stale", "<!channel>"]))
def test_any_signal_renders_within_limits_and_escaped(title, reasoning, rules, url, market_id, dry_run, side,
                                                      contracts, cost, message, actor, code):
    signal = make_signal(title=title, reasoning=reasoning, rules=rules, url=url, market_id=market_id,
                         dry_run=dry_run, side=side, contracts=str(contracts), cost=str(cost))
    pending = assert_valid(blocks.signal_message(signal))
    approve, reject = buttons(pending)
    assert approve["value"] == reject["value"] == signal.id
    assert ("confirm" in approve) is (not dry_run)
    assert pending["blocks"][0]["text"]["text"] == blocks.mode_header(dry_run)
    outcome = make_outcome(signal, OrderStatus.FILLED, FULL_FILL, reason=message, venue_order_id=message[:3000])
    decision = Decision(code in ("executed", "simulated", "rejected"), code, message, signal=outcome.signal,
                        outcome=outcome if code in ("executed", "simulated", "failed") else None)
    decided = assert_valid(blocks.signal_decided_message(signal, decision, actor))
    assert not find_blocks(decided, "actions")
    assert decided["blocks"][0]["text"]["text"].startswith(blocks.mode_header(dry_run))
    assert_valid(blocks.signal_expired_message(signal))
    text = blocks.refusal_text(decision)
    assert blocks.units(text) <= 3000 and "<" not in text
    text.encode("utf-8")


cycle_errors = st.lists(st.builds(CycleError, stage=any_text, venue=st.one_of(st.just(""), any_text),
                                  message=any_text, at=st.just(NOW)), max_size=500)


@PROPERTY
@given(errors=cycle_errors, notes=st.lists(any_text, max_size=20), codes=st.lists(any_text, max_size=20),
       venue_error=any_text, cycle_id=any_text, started_by=any_text, dry_run=st.booleans())
def test_any_cycle_report_renders_within_limits_and_keeps_every_error(errors, notes, codes, venue_error, cycle_id,
                                                                       started_by, dry_run):
    report = make_report(dry_run=dry_run, errors=errors, notes=notes, cycle_id=cycle_id, started_by=started_by,
                         rejections=Counter({c: i + 1 for i, c in enumerate(codes)}),
                         venue_stats={"kalshi": VenueScanStats(error=venue_error), venue_error[:50]: VenueScanStats()},
                         timings={c[:30]: 1.0 for c in codes})
    summary = assert_valid(blocks.cycle_summary_message(report))
    assert summary["blocks"][0]["text"]["text"].startswith(blocks.mode_header(dry_run))
    assert ("details in thread" in summary["text"]) is bool(errors)
    channel, thread = blocks.error_report_messages(report)
    assert_valid(channel)
    for message in thread:
        assert_valid(message)
    lines = thread_lines(thread)
    assert [line.split(".*", 1)[0] for line in lines] == [f"*{i}" for i in range(1, len(errors) + 1)]
    assert_valid(blocks.progress_message(codes[0] if codes else "scanning", len(errors), 500, started_by=started_by,
                                         dry_run=dry_run, venues=venue_error))
    assert blocks.units(blocks.cycle_busy_text(started_by, NOW)) <= 3000


@PROPERTY
@given(titles=st.lists(any_text, min_size=1, max_size=5), n_pending=st.integers(0, 80),
       n_positions=st.integers(0, 60), dry_run=st.booleans(), state=st.sampled_from(TradingState),
       started_by=any_text, url=urls)
def test_any_desk_status_renders_within_limits(titles, n_pending, n_positions, dry_run, state, started_by, url):
    pending = [make_signal(id=f"sig-{i}", title=titles[i % len(titles)], url=url, dry_run=dry_run)
               for i in range(n_pending)]
    positions = [make_position(i, paper=dry_run, title=titles[i % len(titles)]) for i in range(n_positions)]
    status = make_status(dry_run=dry_run, pending=pending, positions=positions, state=state,
                         last_cycle=make_report(cycle_id=titles[0], started_by=started_by))
    for payload in (blocks.status_message(status), blocks.positions_message(status), blocks.balance_message(status),
                    blocks.home_view(status, NOW)):
        assert_valid(payload)
        if dry_run:
            assert not money_lines_unmarked(payload)
    home = blocks.home_view(status, NOW)
    assert len(home["blocks"]) <= 100 and f"*Pending signals ({n_pending})*" in alltext(home)


@settings(max_examples=300, deadline=None)
@given(raw=any_text, limit=st.integers(2, 400))
def test_md_is_an_escaped_prefix_within_the_limit(raw, limit):
    out = blocks.md(raw, limit)
    out.encode("utf-8")  # no lone surrogate, ever
    assert blocks.units(out) <= limit
    assert not re.search(r"&(?!amp;|lt;|gt;)", out) and "<" not in out and ">" not in out
    full = blocks.escape(blocks.clean(raw))
    if out.endswith("…") and out != full:
        kept = out[:-1]
        assert full.startswith(kept) or full.rstrip().startswith(kept.rstrip())
        rest = full[len(kept):]
        # the cut never falls inside an entity (judged by the entities' real spans: the literal text
        # "amp;" after a complete "&amp;" is not one) or before a combining mark / joiner / modifier
        cut = len(kept.rstrip()) if not full.startswith(kept) else len(kept)
        assert not any(m.start() < cut < m.end() for m in re.finditer(r"&(amp|lt|gt);", full))
        assert not (rest and blocks._extends(rest[0])) and not kept.endswith("\u200d")
    else:
        assert out == full


@settings(max_examples=200, deadline=None)
@given(raw=any_text, limit=st.integers(1, 200))
def test_plain_text_is_clipped_and_defused(raw, limit):
    out = blocks.plain(raw, limit)
    out.encode("utf-8")
    assert blocks.units(out) <= max(limit, 1) and "<" not in out and ">" not in out
