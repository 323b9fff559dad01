"""Block Kit rendering: escaping of hostile text and Slack's limits on every payload, checked by a validator
that walks any payload. What each message says is tested in tests/test_presentation.py."""

from __future__ import annotations

import json
import re
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from slack_sdk.models.blocks import Block

from bot import blocks
from bot.present import cycles, fmt, outcomes, signals, state, textutil
from bot.present.model import Message, Tone, text
from pipeline.desk import Decision
from pipeline.models import CycleError, OrderStatus, Side, VenueScanStats
from pipeline.risk import TradingState

from .golden import (D, FULL_FILL, HOSTILE_TITLE, NOW, make_outcome, make_position, make_report, make_signal,
                     make_status, with_kelly)

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
        allowed = {"header": {"text"}, "section": {"text", "fields", "accessory"}, "context": {"elements"},
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
            if "accessory" in block:  # the desk puts a button beside an item (a position's Close)
                if "text" not in block:
                    self.fail(where, "accessory without text")
                self.button(block["accessory"], f"{where}.accessory")
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


def signal_payload(signal) -> dict[str, Any]:
    return blocks.render(signals.signal_proposal(signal, NOW))


def header_text(payload: dict[str, Any]) -> str:
    return payload["blocks"][0]["text"]["text"]


# ------------------------------------------------------------------------------------------------
# The validator itself catches what it should
# ------------------------------------------------------------------------------------------------


def test_the_validator_catches_every_kind_of_violation():
    good = assert_valid(signal_payload(with_kelly(make_signal(dry_run=False))))
    fields = [i for i, b in enumerate(good["blocks"]) if "fields" in b][0]
    cases = {
        "too many blocks": lambda p: p["blocks"].extend([{"type": "divider"}] * 50),
        "header too long": lambda p: p["blocks"][0]["text"].update(text="x" * 151),
        "astral header counted twice": lambda p: p["blocks"][0]["text"].update(text="😀" * 76),
        "section too long": lambda p: p["blocks"][1]["text"].update(text="y" * 3001),
        "too many fields": lambda p: p["blocks"][fields]["fields"].extend([dict(p["blocks"][fields]["fields"][0])] * 7),
        "unescaped mention": lambda p: p["blocks"][1]["text"].update(text="hi <!channel>"),
        "foreign link": lambda p: p["blocks"][1]["text"].update(text="<https://a.test|x|y>"),
        "bare ampersand": lambda p: p["blocks"][1]["text"].update(text="a & b"),
        "not verbatim": lambda p: p["blocks"][1]["text"].pop("verbatim"),
        "lone surrogate": lambda p: p["blocks"][1]["text"].update(text="a\ud83d"),
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
# How the model is drawn
# ------------------------------------------------------------------------------------------------


def test_a_message_is_drawn_in_its_own_order_with_the_tone_on_the_header():
    from bot.present.model import Button, Confirm, Fact, Section
    message = Message(kind="signal", tone=Tone.LIVE, title="LIVE · Buy 1 YES", lines=(text("first"), text("second")),
                      facts=(Fact("Edge", text("+1.0¢")),),
                      buttons=(Button("signal_approve", "Place LIVE order…", "sig-1", Tone.LIVE,
                                      Confirm("Sure?", "Buy 1 YES", "Place real order", "Cancel")),
                               Button("signal_reject", "Reject", "sig-1")),
                      sections=(Section("Why", (text("because"),)),), footer=(text("ids"),), notification="note")
    payload = assert_valid(blocks.render(message))
    kinds = [b["type"] for b in payload["blocks"]]
    assert kinds == ["header", "section", "section", "actions", "section", "context"]
    assert header_text(payload) == ":rotating_light: LIVE · Buy 1 YES" and payload["text"] == "note"
    assert payload["blocks"][1]["text"]["text"] == "first\nsecond"
    assert payload["blocks"][2]["fields"][0]["text"] == "*Edge*\n+1.0¢"
    live, reject = buttons(payload)
    assert live["style"] == "danger" and live["confirm"]["style"] == "danger" and "style" not in reject
    assert payload["blocks"][3]["block_id"] == blocks.SIGNAL_ACTIONS_BLOCK
    paper = blocks.render(Message(kind="signal", tone=Tone.PAPER, title="DRY-RUN · Buy",
                                  buttons=(Button("signal_approve", "Approve (paper)", "s", Tone.PAPER),)))
    assert header_text(paper).startswith(":test_tube:") and buttons(paper)[0]["style"] == "primary"


def test_spans_become_mrkdwn_and_hostile_text_stays_text():
    from bot.present.model import bold, code, link, user
    line = text("a ", bold("b"), " ", code("x`y"), " ", link("https://ok.test/?a=1&b=2", "T|<x>"), " ",
                user("UAUTH01"), " ", user("<!channel>"), " ", bold(" spaced "), " ", bold("*star*"))
    drawn = blocks.mrkdwn(line)
    assert drawn == ("a *b* `x'y` *<https://ok.test/?a=1&amp;b=2|T &lt;x&gt;>* <@UAUTH01> &lt;!channel&gt;  "
                     "*spaced*  *star*")


def test_money_prices_and_probabilities_are_formatted():
    assert fmt.usd(D("1234.5")) == "$1,234.50"
    assert fmt.usd(D("-12.3")) == "-$12.30"
    assert fmt.usd(D("13.055"), signed=True) == "+$13.06"
    assert fmt.usd(D("0"), signed=True) == "$0.00"
    assert fmt.usd(D("NaN")) == "n/a"
    assert fmt.price(D("0.44")) == "$0.44"
    assert fmt.price(D("0.4223008849")) == "$0.4223"
    assert fmt.price(D("0.001")) == "$0.001"
    assert fmt.price(D("0.5")) == "$0.50"
    assert fmt.pct(D("0.555")) == "55.5%"
    assert fmt.pct(D("0.11553"), signed=True) == "+11.6%"
    assert fmt.pct(D("-0.02"), signed=True) == "-2.0%"
    assert fmt.cents(D("0.2197"), signed=True) == "+22.0¢"
    assert fmt.count(D("113")) == "113" and fmt.count(D("1130.00")) == "1,130"
    assert fmt.count(D("12.50")) == "12.5"
    assert fmt.duration(30) == "1 min" and fmt.duration(3600 * 2 + 300) == "2 h 5 min"
    assert fmt.duration(86400 * 10) == "10 days"
    assert fmt.countdown(NOW + timedelta(minutes=12), NOW) == "in 12 min"
    assert fmt.countdown(NOW - timedelta(minutes=3), NOW) == "3 min ago"
    assert fmt.short_id("0x" + "ab" * 32) == "0xababab…ababab" and fmt.short_id("V-123") == "V-123"


def test_hostile_title_reasoning_and_rules_cannot_ping_or_link():
    signal = make_signal(dry_run=False, title=HOSTILE_TITLE, reasoning=f"Because {HOSTILE_TITLE}",
                         rules=f"Rules {HOSTILE_TITLE}", market_id="<!here>")
    payload = assert_valid(signal_payload(signal))
    dumped = json.dumps(payload, ensure_ascii=False)
    for forbidden in ("<!channel>", "<!here>", "<https://evil.test", "<@U999>", "<#C1>"):
        assert forbidden not in dumped, forbidden
    body = alltext(payload)
    # In the link label the pipe is stripped; elsewhere it is kept, escaped.
    assert ("<https://kalshi.com/markets/kxfed|&lt;!channel&gt; buy now &amp; &lt;https://evil.test click&gt; "
            "&lt;@U999&gt; &lt;#C1&gt;>") in body
    assert "Because &lt;!channel&gt; buy now &amp; &lt;https://evil.test|click&gt;" in body
    assert "Rules &lt;!channel&gt;" in body and "&lt;!here&gt;" in body
    # plain_text (the header, the confirm dialog) shows the title with its brackets defused
    confirm = buttons(payload)[0]["confirm"]["text"]["text"]
    assert "‹!channel›" in confirm and "<" not in confirm and "‹!channel›" in header_text(payload)


@pytest.mark.parametrize("url,expected", [
    ("javascript:alert(1)", None),
    ("", None),
    ("https://ok.test/a|b>c<d e", "https://ok.test/a%7Cb%3Ec%3Cd%20e"),
    ("https://ok.test/?a=1&b=2", "https://ok.test/?a=1&amp;b=2"),
    ("https://ok.test/" + "x" * 5000, None),
])
def test_market_urls_are_made_safe_or_dropped(url, expected):
    signal = make_signal(url=url, title="Plain title")
    body = alltext(assert_valid(signal_payload(signal)))
    if expected is None:
        assert "*Plain title*" in body and "<http" not in body
    else:
        assert f"<{expected}|Plain title>" in body


def test_long_reasoning_is_clipped_with_an_ellipsis():
    signal = make_signal(reasoning="word " * 2000)
    why = [t for t in texts(signal_payload(signal)) if t.startswith("*Why:*")][0]
    assert why.endswith("…") and blocks.units(why) <= signals.REASONING_BUDGET + 20


def test_refusal_replies_are_escaped_and_clipped():
    from bot.runtime import refusal_reply
    assert refusal_reply(Decision(False, "not_authorized", "You are not authorized <!channel> & co.")) == \
        "You are not authorized &lt;!channel&gt; &amp; co."
    assert refusal_reply(Decision(False, "x", "")) == "x"
    long = refusal_reply(Decision(False, "x", "y" * 5000))
    assert blocks.units(long) <= 3000 and long.endswith("…")


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
# Long lists stay within a message and a Home tab
# ------------------------------------------------------------------------------------------------


def thread_lines(thread: list[dict[str, Any]]) -> list[str]:
    return [line for message in thread for block in find_blocks(message, "section")
            for line in block["text"]["text"].split("\n")]


def test_error_report_splits_500_long_errors_and_keeps_every_one_in_order():
    errors = [CycleError(stage=["scanning", "analysing", "pricing"][i % 3], venue=["kalshi", "polymarket", ""][i % 3],
                         message=f"error {i} " + "detail & <more> " * (i % 40 * 10), at=NOW) for i in range(500)]
    report = cycles.error_report(make_report(errors=errors))
    summary, thread = assert_valid(blocks.render(report)), [assert_valid(blocks.render(m)) for m in report.thread]
    assert "500 errors" in header_text(summary) and "Kalshi 167" in alltext(summary)
    assert len(thread) > 1
    lines = thread_lines(thread)
    assert len(lines) == 500
    for i, (line, error) in enumerate(zip(lines, errors), 1):
        assert line.startswith(f"*{i}.* `{error.stage}`"), line[:80]
        raw = " ".join(error.message.split())
        if len(raw) <= cycles.ERROR_LINE_BUDGET and len(line) < blocks.LINE_BUDGET:
            assert line.endswith(f": {blocks.escape(raw)}")
        else:
            assert line.endswith("…") and blocks.escape(raw[:200]) in line
        if error.venue:
            assert fmt.venue_name(error.venue) in line
    spans = [re.search(r"Errors ([\d,]+)–([\d,]+) of 500", header_text(m)).groups() for m in thread]
    bounds = [(int(a.replace(",", "")), int(b.replace(",", ""))) for a, b in spans]
    assert bounds[0][0] == 1 and bounds[-1][1] == 500
    assert all(b[0] == a[1] + 1 for a, b in zip(bounds, bounds[1:]))


def test_500_hostile_huge_errors_stay_within_limits_and_escaped():
    errors = [CycleError(stage=FRAGMENTS[i % len(FRAGMENTS)] * 3, venue=FRAGMENTS[(i + 1) % len(FRAGMENTS)],
                         message=FRAGMENTS[(i + 2) % len(FRAGMENTS)] * (50 + i * 7), at=NOW) for i in range(500)]
    report = make_report(errors=errors, notes=[e.message for e in errors[:30]])
    assert_valid(blocks.render(cycles.summary(report)))
    channel = cycles.error_report(report)
    assert_valid(blocks.render(channel))
    thread = [assert_valid(blocks.render(m)) for m in channel.thread]
    for message in thread:
        assert "<!channel>" not in json.dumps(message, ensure_ascii=False)
    assert [line.split(".*", 1)[0] for line in thread_lines(thread)] == [f"*{i}" for i in range(1, 501)]


def test_home_with_80_pending_signals_and_60_positions_stays_within_100_blocks():
    pending = [make_signal(id=f"sig-{i}", title=f"{HOSTILE_TITLE} {i}") for i in range(80)]
    positions = [make_position(i) for i in range(60)]
    view = assert_valid(blocks.render_home(state.home_page(make_status(pending=pending, positions=positions), NOW)))
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
       code=st.sampled_from(["executed", "simulated", "failed", "rejected", "stale", "already_decided", "<!channel>"]))
def test_any_signal_renders_within_limits_and_escaped(title, reasoning, rules, url, market_id, dry_run, side,
                                                      contracts, cost, message, actor, code):
    signal = with_kelly(make_signal(title=title, reasoning=reasoning, rules=rules, url=url, market_id=market_id,
                                    dry_run=dry_run, side=side, contracts=str(contracts), cost=str(cost)))
    pending = assert_valid(signal_payload(signal))
    approve, reject = buttons(pending)
    assert approve["value"] == reject["value"] == signal.id
    assert ("confirm" in approve) is (not dry_run)
    assert header_text(pending).startswith(":test_tube: DRY-RUN · Buy" if dry_run else ":rotating_light: LIVE · Buy")
    outcome = make_outcome(signal, OrderStatus.FILLED, FULL_FILL, reason=message, venue_order_id=message[:3000])
    decision = Decision(code in ("executed", "simulated", "rejected"), code, message, signal=outcome.signal,
                        outcome=outcome if code in ("executed", "simulated", "failed") else None,
                        details={"decided_by": actor, "decided_at": NOW.isoformat()})
    decided = assert_valid(blocks.render(outcomes.signal_outcome(signal, decision, actor, NOW)))
    assert not find_blocks(decided, "actions")
    assert fmt.mode_tag(dry_run) in header_text(decided)
    assert_valid(blocks.render(outcomes.signal_expired(signal, NOW)))
    reply = blocks.render_text(outcomes.refusal(decision))
    assert blocks.units(reply) <= 3000
    problems_in = Validator()
    problems_in.mrkdwn(reply, "reply")
    assert not problems_in.problems
    reply.encode("utf-8")


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
    summary = assert_valid(blocks.render(cycles.summary(report)))
    assert fmt.mode_tag(dry_run) in header_text(summary)
    channel = cycles.error_report(report)
    assert_valid(blocks.render(channel))
    thread = [assert_valid(blocks.render(m)) for m in channel.thread]
    lines = thread_lines(thread)
    assert [line.split(".*", 1)[0] for line in lines] == [f"*{i}" for i in range(1, len(errors) + 1)]
    assert_valid(blocks.render(cycles.progress(codes[0] if codes else "scanning", len(errors), 500,
                                               started_by=started_by, dry_run=dry_run, venues=venue_error)))
    assert_valid(blocks.render(cycles.progress_finished(report, len(errors), venues=venue_error)))
    assert blocks.units(blocks.render_text(cycles.busy(started_by, NOW))) <= 3000


@PROPERTY
@given(titles=st.lists(any_text, min_size=1, max_size=5), n_pending=st.integers(0, 80),
       n_positions=st.integers(0, 60), dry_run=st.booleans(), state_=st.sampled_from(TradingState),
       started_by=any_text, url=urls)
def test_any_desk_status_renders_within_limits(titles, n_pending, n_positions, dry_run, state_, started_by, url):
    pending = [make_signal(id=f"sig-{i}", title=titles[i % len(titles)], url=url, dry_run=dry_run)
               for i in range(n_pending)]
    positions = [make_position(i, paper=dry_run, title=titles[i % len(titles)]) for i in range(n_positions)]
    status = make_status(dry_run=dry_run, pending=pending, positions=positions, state=state_,
                         last_cycle=make_report(cycle_id=titles[0], started_by=started_by))
    for message in (state.status_message(status), state.positions_message(status),
                    state.balance_message(status, {"kalshi": titles[0]})):
        assert_valid(blocks.render(message))
    home = assert_valid(blocks.render_home(state.home_page(status, NOW)))
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
        assert not (rest and textutil._extends(rest[0])) and not kept.endswith("\u200d")
    else:
        assert out == full


@settings(max_examples=200, deadline=None)
@given(raw=any_text, limit=st.integers(1, 200))
def test_plain_text_is_clipped_and_defused(raw, limit):
    out = blocks.plain(raw, limit)
    out.encode("utf-8")
    assert blocks.units(out) <= max(limit, 1) and "<" not in out and ">" not in out


def test_an_oversized_message_keeps_its_header_its_buttons_and_its_small_print():
    from bot.present.model import Button, Section
    huge = Message(kind="signal", tone=Tone.LIVE, title="LIVE · Buy",
                   lines=tuple(text("x" * 2900) for _ in range(60)),
                   buttons=(Button("signal_approve", "Place LIVE order…", "s", Tone.LIVE),
                            Button("signal_reject", "Reject", "s")),
                   sections=tuple(Section("Why", (text("y" * 2900),)) for _ in range(20)), footer=(text("ids"),))
    payload = assert_valid(blocks.render(huge))
    kinds = [b["type"] for b in payload["blocks"]]
    assert len(kinds) == 50 and kinds[0] == "header" and kinds[-1] == "context" and "actions" in kinds
    assert [b["elements"][0]["text"] for b in find_blocks(payload, "context")][-1] == "ids"
    assert "…more than one message holds" in alltext(payload)
