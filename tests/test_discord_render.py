"""Discord rendering: every message kind the desk has, drawn from the same chat-neutral messages as Slack's, checked
against Discord's limits and for hostile text by a validator that walks any payload on its own (it uses nothing of
the renderer's), golden payloads for a representative set, the custom_id scheme and the LIVE confirmation."""

from __future__ import annotations

import ast
import json
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot import discord
from bot.discord import CANCEL_ACTION, CONFIRM_ACTION, custom_id, parse_custom_id
from bot.present import cycles, outcomes, signals
from bot.present.model import (Button, Fact, Message, Page, Row, Section, Span, Style, Tone, bold, code, link, text,
                               user, when)
from bot.present.signals import APPROVE_ACTION, REJECT_ACTION
from bot.present.state import CLOSE_ACTION
from pipeline.desk import Decision
from pipeline.models import OrderStatus, SignalStatus

from . import discord_golden, golden
from .golden import FULL_FILL, NOW, decided, make_signal, no_signal

LATER = NOW + timedelta(minutes=3)
SNOWFLAKE = "412345678901234567"

# ------------------------------------------------------------------------------------------------
# The validator: Discord's limits (Message resource: Create Message, Embed Limits; Component Reference) and what
# untrusted text must never become, checked on the payload alone
# ------------------------------------------------------------------------------------------------

PAYLOAD_KEYS = {"content", "embeds", "components", "allowed_mentions", "flags"}
EMBED_KEYS = {"title", "description", "color", "fields", "footer", "author", "timestamp", "url"}
BUTTON_KEYS = {"type", "style", "label", "custom_id", "disabled", "emoji"}
CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
LINK = re.compile(r"\[((?:\\.|[^\\\[\]])*)\]\((https?://[^\s()<>\[\]]+)\)")
OUR_ANGLE = re.compile(r"<(?:@\d{17,20}|t:-?\d+:[tTdDfFR])>")
SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
LINE_MARKUP = re.compile(r"^\s*(?:#|>|-\s|-#|\+\s|\*\s|\d+[.)]\s)")


def u16(value: str) -> int:
    return len(value.encode("utf-16-le", "surrogatepass")) // 2


def scan(value: str) -> tuple[list[int], set[int]]:
    """(positions of the characters that are markup if markup they make, positions inside inline code). A backslash
    escapes the next character; inside `code` nothing is escaped and nothing is markup."""
    free, code, i = [], set(), 0
    while i < len(value):
        if value[i] == "\\" and i + 1 < len(value):
            i += 2
            continue
        if value[i] == "`" and "`" in value[i + 1:]:
            end = value.index("`", i + 1)
            free += [i, end]
            code.update(range(i + 1, end))
            i = end + 1
            continue
        free.append(i)
        i += 1
    return free, code


def unescaped(value: str) -> list[int]:
    return scan(value)[0]


def shown(value: str) -> str:
    """What a reader sees of escaped text: escapes and zero-width spaces gone."""
    return re.sub(r"\\(.)", r"\1", value, flags=re.DOTALL).replace("\u200b", "")


class Validator:
    def __init__(self) -> None:
        self.problems: list[str] = []

    def fail(self, where: str, what: str) -> None:
        self.problems.append(f"{where}: {what}")

    def string(self, value: Any, where: str, limit: int, *, required: bool = True) -> None:
        if not isinstance(value, str):
            return self.fail(where, f"not a string: {value!r}")
        if required and not value.strip():
            self.fail(where, "empty (Discord trims whitespace, then refuses it)")
        if u16(value) > limit:
            self.fail(where, f"{u16(value)} > {limit} characters")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            self.fail(where, "lone surrogate")
        if CONTROL.search(value):
            self.fail(where, "control or bidi-override character")

    def markup(self, value: str, where: str, *, links: bool) -> None:
        """Only our own markup may be live: bold, code, masked http(s) links, known users, times."""
        if re.search(r"@(everyone|here)", value, re.IGNORECASE):
            self.fail(where, f"a live @everyone/@here: {value[:100]!r}")
        positions, code = scan(value)
        free = set(positions)
        targets: list[tuple[int, int]] = []
        for i in sorted(free):
            if value[i] == "<" and not OUR_ANGLE.match(value, i):
                self.fail(where, f"an unescaped < that is not ours: {value[i:i + 30]!r}")
            if value[i] == "[":
                match = LINK.match(value, i)
                if not links or match is None:
                    self.fail(where, f"an unescaped [ that is not our link: {value[i:i + 40]!r}")
                else:
                    targets.append(match.span(2))
        outside = "".join(ch for i, ch in enumerate(value)
                          if i not in code and not any(a <= i < b for a, b in targets))
        for match in SCHEME.finditer(outside):
            if match.end() - 3 in set(unescaped(outside)):  # the ':' of '://' unescaped: Discord would link it
                self.fail(where, f"a live url outside our links: {outside[match.start():match.start() + 40]!r}")
        for line in value.split("\n"):
            if LINE_MARKUP.match(line):
                self.fail(where, f"a heading, quote or list marker starts a line: {line[:40]!r}")

    def embed(self, embed: Any, where: str) -> int:
        if not isinstance(embed, dict):
            self.fail(where, "not an object")
            return 0
        if set(embed) - EMBED_KEYS:
            self.fail(where, f"unknown keys {set(embed) - EMBED_KEYS}")
        size = 0
        if "title" in embed:
            self.string(embed["title"], f"{where}.title", 256)
            self.markup(embed["title"], f"{where}.title", links=False)
            size += u16(embed["title"])
        if "description" in embed:
            self.string(embed["description"], f"{where}.description", 4096)
            self.markup(embed["description"], f"{where}.description", links=True)
            size += u16(embed["description"])
        color = embed.get("color", 0)
        if not isinstance(color, int) or not 0 <= color <= 0xFFFFFF:
            self.fail(where, f"bad color {color!r}")
        fields = embed.get("fields", [])
        if len(fields) > 25:
            self.fail(where, f"{len(fields)} fields > 25")
        for n, field in enumerate(fields):
            self.string(field.get("name"), f"{where}.fields[{n}].name", 256)
            self.string(field.get("value"), f"{where}.fields[{n}].value", 1024)
            self.markup(field.get("name", ""), f"{where}.fields[{n}].name", links=False)
            self.markup(field.get("value", ""), f"{where}.fields[{n}].value", links=True)
            if not isinstance(field.get("inline", False), bool):
                self.fail(where, "inline is not a boolean")
            size += u16(field.get("name", "")) + u16(field.get("value", ""))
        if "footer" in embed:
            self.string(embed["footer"].get("text"), f"{where}.footer", 2048)
            size += u16(embed["footer"].get("text", ""))
        if "author" in embed:
            self.string(embed["author"].get("name"), f"{where}.author", 256)
            size += u16(embed["author"].get("name", ""))
        return size

    def components(self, rows: Any, where: str) -> list[str]:
        ids: list[str] = []
        if not isinstance(rows, list) or len(rows) > 5:
            self.fail(where, f"not a list of at most 5 action rows: {rows!r}"[:200])
            return ids
        for r, row in enumerate(rows):
            items = row.get("components", [])
            if row.get("type") != 1 or not 1 <= len(items) <= 5:
                self.fail(f"{where}[{r}]", "not an action row of 1 to 5 components")
            for b, item in enumerate(items):
                at = f"{where}[{r}][{b}]"
                if set(item) - BUTTON_KEYS or item.get("type") != 2 or item.get("style") not in (1, 2, 3, 4):
                    self.fail(at, f"not a button with a custom_id: {item!r}")
                self.string(item.get("label"), f"{at}.label", 80)
                cid = item.get("custom_id")
                if not isinstance(cid, str) or not 1 <= len(cid) <= 100 or not cid.isascii():
                    self.fail(at, f"bad custom_id {cid!r}")
                ids.append(cid)
        if len(ids) != len(set(ids)):
            self.fail(where, f"custom_ids repeat: {ids}")
        return ids

    def payload(self, payload: Any, where: str = "payload") -> None:
        if not isinstance(payload, dict) or set(payload) - PAYLOAD_KEYS:
            return self.fail(where, f"not a message body: {str(payload)[:200]}")
        if not (payload.get("content") or payload.get("embeds") or payload.get("components")):
            self.fail(where, "nothing to send")
        if "content" in payload:
            self.string(payload["content"], f"{where}.content", 2000, required=False)
            self.markup(payload["content"], f"{where}.content", links=True)
            if OUR_ANGLE.search(payload["content"]) and "<@" in payload["content"]:
                self.fail(where, "a mention in the content (it would ping)")
        embeds = payload.get("embeds", [])
        if len(embeds) > 10:
            self.fail(where, f"{len(embeds)} embeds > 10")
        total = sum(self.embed(e, f"{where}.embeds[{i}]") for i, e in enumerate(embeds))
        if total > 6000:
            self.fail(where, f"embeds hold {total} > 6000 characters")
        self.components(payload.get("components", []), f"{where}.components")
        mentions = payload.get("allowed_mentions")
        if not isinstance(mentions, dict) or mentions.get("parse") != [] or set(mentions) - {"parse", "users"}:
            self.fail(where, f"allowed_mentions must parse nothing: {mentions!r}")
        else:
            users = mentions.get("users", [])
            alltext = json.dumps(payload, ensure_ascii=False)
            if len(users) > 100 or any(not re.fullmatch(r"\d{17,20}", u) or f"<@{u}>" not in alltext for u in users):
                self.fail(where, f"allowed users not all named in the message: {users}")
        if payload.get("flags", 0) not in (0, 64):
            self.fail(where, f"flags {payload.get('flags')}")


def assert_valid(*payloads: dict[str, Any]) -> None:
    validator = Validator()
    for n, payload in enumerate(payloads):
        validator.payload(payload, f"payload[{n}]")
    assert validator.problems == []


def all_buttons(payload: dict[str, Any]) -> list[dict[str, Any]]:
    return [b for row in payload["components"] for b in row["components"]]


def payloads_of(said: Any) -> list[dict[str, Any]]:
    """Every Discord body a golden message becomes: a message and its thread, a thread's pages, or a page."""
    if isinstance(said, Page):
        return [discord.render_page(said)]
    if isinstance(said, list):
        return [p for m in said for p in discord.render_pages(m)]
    return [discord.render(said), *discord.render_pages(said), *discord.render_thread(said)]


def test_the_validator_sees_what_it_must_refuse():
    good = discord.render(golden.messages()["signal_live_no"])
    bad = json.loads(json.dumps(good))
    bad["embeds"][0]["description"] += "\n@everyone <@&1> [x](javascript:alert(1)) https://evil\n# h"
    bad["embeds"][0]["fields"] = bad["embeds"][0]["fields"] * 7
    bad["components"][0]["components"] *= 2
    bad["allowed_mentions"] = {"parse": ["everyone"]}
    validator = Validator()
    validator.payload(bad)
    said = "\n".join(validator.problems)
    for expected in ("@everyone", "unescaped <", "unescaped [", "live url", "marker starts a line", "fields > 25",
                     "custom_ids repeat", "parse nothing"):
        assert expected in said, expected
    bad["components"] *= 6
    bad["embeds"][0]["title"] = "t" * 257
    validator = Validator()
    validator.payload(bad)
    said = "\n".join(validator.problems)
    assert "at most 5 action rows" in said and "257 > 256" in said
    validator = Validator()
    validator.payload(dict(good, embeds=[{"description": "x" * 2500}] * 3))
    assert validator.problems == ["payload: embeds hold 7500 > 6000 characters"]
    assert_valid(good)


# ------------------------------------------------------------------------------------------------
# Every message kind, from the same messages Slack draws
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(golden.messages()))
def test_every_message_kind_renders_within_discord_limits(name):
    assert_valid(*payloads_of(golden.messages()[name]))


@pytest.mark.parametrize("name", sorted(golden.messages()))
def test_discord_says_what_slack_says(name):
    """No second copy: each embed's title is the message's title, each fact a field, each button the model's."""
    said = golden.messages()[name]
    parts = said.parts if isinstance(said, Page) else said if isinstance(said, list) else [said]
    payload = payloads_of(said)[0] if not isinstance(said, list) else None
    for index, message in enumerate(parts):
        if isinstance(said, list):
            payload, embed = discord.render(message), discord.render(message)["embeds"][0]
        else:
            embed = payload["embeds"][min(index, len(payload["embeds"]) - 1)]
        if message.title:
            assert shown(embed["title"]).endswith(message.title)
        names = [shown(f["name"]) for f in embed.get("fields", [])]
        assert [f.label for f in message.facts] == names[:len(message.facts)]
        labels = [b["label"] for b in all_buttons(payload)]
        assert all(b.label in labels for b in message.buttons)


def test_every_kind_is_drawn_and_long_reports_are_kept_whole_in_their_thread():
    kinds = {m.kind for said in golden.messages().values()
             for m in (said.parts if isinstance(said, Page) else said if isinstance(said, list) else [said])}
    assert {"signal", "outcome", "expired", "reconciled", "progress", "summary", "errors", "error_details", "status",
            "balance", "positions", "help", "reconcile", "orders_stopped", "record", "close", "loss_halt"} <= kinds
    report = golden.partial_report()
    errors = [e.model_copy(update={"message": f"error {i}: " + "x" * 990}) for i, e in enumerate(report.errors * 50)]
    thread = discord.render_thread(cycles.error_report(report.model_copy(update={"errors": errors})))
    assert_valid(*thread)
    text_of_thread = "".join(shown(p["embeds"][0]["description"]) for p in thread)
    assert all(f"error {i}: " in text_of_thread for i in range(100)) and len(thread) > 3
    assert all(re.search(r"\(\d+/\d+\)$", p["embeds"][0]["title"]) for p in thread)


# ------------------------------------------------------------------------------------------------
# The golden payloads
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(discord_golden.cases()))
def test_discord_golden_payloads_are_what_rendering_gives(name):
    payload = discord_golden.cases()[name]
    kept = json.loads((discord_golden.GOLDEN / f"{name}.json").read_text())
    assert payload == kept, f"{name} changed: look with `python -m tests.discord_golden show {name}`, then write"
    assert_valid(*discord_golden.payloads(payload))


def test_every_discord_golden_file_is_a_case():
    assert sorted(p.stem for p in discord_golden.GOLDEN.glob("*.json")) == sorted(discord_golden.cases())


def test_the_picture_shows_title_text_fields_and_buttons():
    picture = discord_golden.show(discord.render(golden.messages()["signal_live_no"]))
    assert "🚨 LIVE · Buy 122 NO" in picture and "[Edge after fees] (inline)" in picture
    assert "[Place LIVE order… · danger · signal_approve:sig-0001]" in picture


# ------------------------------------------------------------------------------------------------
# Hostile text
# ------------------------------------------------------------------------------------------------

HOSTILE = ("@everyone @here <@&123456789012345678> <@412345678901234567> <#1> <t:0:R> </scan:1> <:x:1> "
           "[click](http://evil.test) **b** `t` ||s|| ~~s~~ __u__ \\ https://evil.test/x discord.gg/evil")
assert len(HOSTILE) < 200  # the presenter's budget for a market's name: all of it is shown
HOSTILE_LINES = "# Heading\n## Two\n-# sub\n- item\n* star\n+ plus\n> quote\n>>> all\n1. one\n2) two\n```block```"


def hostile_signal(dry_run: bool = False, title: str = HOSTILE):
    return make_signal(dry_run=dry_run, title=title, reasoning=HOSTILE_LINES + "\n" + HOSTILE,
                       rules=HOSTILE, url="https://kalshi.com/markets/x(1)", market_id="`<@&1>`")


@pytest.mark.parametrize("dry_run", [True, False])
def test_a_hostile_market_title_is_shown_as_written_and_does_nothing(dry_run):
    signal = hostile_signal(dry_run)
    payload = discord.render(signals.signal_proposal(signal, NOW))
    assert_valid(payload)
    embed = payload["embeds"][0]
    assert HOSTILE in shown(embed["description"])  # the market line: the title, as the venue wrote it
    assert HOSTILE[:40] in shown(embed["title"]) and shown(payload["content"]).startswith(
        f"{'DRY-RUN' if dry_run else 'LIVE'}: Buy 113 YES")
    why = next(f["value"] for f in embed["fields"] if f["name"] == "Why")
    assert shown(why).startswith("# Heading\n## Two\n-# sub\n- item")  # the reasoning's lines, none of them markup
    assert payload["allowed_mentions"] == {"parse": []}
    assert "https://kalshi.com/markets/x%281%29" in embed["description"]  # the market's own link, made safe


def test_a_hostile_title_in_every_place_it_appears():
    signal = hostile_signal()
    result = decided(signal, OrderStatus.REJECTED, (), "failed", reason=HOSTILE)
    messages = [outcomes.signal_outcome(signal, result, "UAUTH01", LATER), outcomes.signal_expired(signal, LATER),
                outcomes.signal_outcome(signal, Decision(True, "rejected", HOSTILE, signal=signal.model_copy(
                    update={"status": SignalStatus.REJECTED})), HOSTILE, LATER)]
    for message in messages:
        payload = discord.render(message)
        assert_valid(payload)
        assert HOSTILE[:60] in shown(json.dumps(payload, ensure_ascii=False).replace("\\\\", "\\"))


def test_a_ten_thousand_character_title_is_cut_and_the_buttons_stay():
    title = ("@everyone **[x](http://evil)** `" * 400)[:10_000]
    message = signals.signal_proposal(hostile_signal(title=title), NOW)
    raw = Message(kind="signal", tone=Tone.LIVE, title=title, lines=(text(title),), facts=(Fact(title, text(title)),),
                  buttons=message.buttons, sections=(Section(title, (text(title),)),), footer=(text(title),),
                  notification=title)
    for item in (message, raw):
        payload = discord.render(item)
        assert_valid(payload)
        assert "…" in payload["embeds"][0]["title"]
        assert [b["custom_id"] for b in all_buttons(payload)] == ["signal_approve:sig-0001", "signal_reject:sig-0001"]


def test_a_message_too_big_for_discord_cuts_details_first_and_keeps_its_decision():
    signal = make_signal(dry_run=False)
    buttons = signals.signal_proposal(signal, NOW).buttons
    huge = Message(kind="signal", tone=Tone.LIVE, title="T" * 1000,
                   lines=tuple(text(bold(f"line {i} "), "l" * 1000) for i in range(50)),
                   facts=tuple(Fact(f"fact {i} " + "F" * 300, text("v" * 2000)) for i in range(30)),
                   buttons=buttons,
                   sections=tuple(Section(f"S{i}", tuple(text("s" * 500) for _ in range(20))) for i in range(10)),
                   footer=(text("f" * 5000),), notification="n" * 5000)
    payload = discord.render(huge)
    assert_valid(payload)
    embed = payload["embeds"][0]
    assert [b["label"] for b in all_buttons(payload)] == ["Place LIVE order…", "Reject"]
    assert embed["fields"][-1] == {"name": "…", "value": "more than one Discord message holds", "inline": False}
    assert "line 0" in embed["description"] and "more" in embed["description"].rsplit("\n", 1)[-1]
    assert u16(payload["content"]) <= 300
    whole = discord.render(Message(kind="signal", tone=Tone.LIVE, title="t", lines=(text("l" * 500),),
                                   sections=(Section("Why", (text("w" * 900),)),), footer=(text("f"),)))
    assert [f["name"] for f in whole["embeds"][0]["fields"]] == ["Why"]  # nothing cut when it fits


# ------------------------------------------------------------------------------------------------
# People and times
# ------------------------------------------------------------------------------------------------


def outcome_by(actor: str) -> dict[str, Any]:
    signal = make_signal(dry_run=False)
    return discord.render(outcomes.signal_outcome(signal, decided(signal, OrderStatus.FILLED, FULL_FILL, "executed"),
                                                  actor, LATER))


def test_a_discord_user_the_desk_knows_is_mentioned_and_listed_and_nobody_else():
    payload = outcome_by(discord.DISCORD_ACTOR + SNOWFLAKE)
    assert_valid(payload)
    assert f"Approved by <@{SNOWFLAKE}> at <t:" in payload["embeds"][0]["description"]
    assert payload["allowed_mentions"] == {"parse": [], "users": [SNOWFLAKE]}
    assert f"<@{SNOWFLAKE}>" not in payload["content"]


@pytest.mark.parametrize("actor, words", [
    ("UAUTH01", "Approved by Slack user UAUTH01 at"),  # decided on the desk's Slack front end
    (SNOWFLAKE, f"Approved by {SNOWFLAKE} at"),  # a bare number is not known to be a Discord user
    ("discord:123", "Approved by discord:123 at"),  # not a snowflake
    ("terminal:ops", "Approved by ops (terminal) at"),
    ("<@&1> @everyone", "Approved by <@&1> @everyone at"),
])
def test_anyone_else_is_named_in_words(actor, words):
    payload = outcome_by(actor)
    assert_valid(payload)
    assert words in shown(payload["embeds"][0]["description"])
    assert payload["allowed_mentions"] == {"parse": []}


def test_a_progress_footer_names_its_starter_in_words_where_discord_draws_no_mention():
    payload = discord.render(cycles.progress("analysing", 1, 4, started_by=discord.DISCORD_ACTOR + SNOWFLAKE,
                                             dry_run=True, venues="all venues"))
    assert_valid(payload)
    assert payload["embeds"][0]["footer"]["text"] == f"started by Discord user {SNOWFLAKE} · venues: all venues"


def test_times_are_shown_in_the_readers_zone_where_discord_can_and_in_utc_where_it_cannot():
    moment = NOW + timedelta(minutes=30)
    message = Message(kind="x", tone=Tone.NEUTRAL, title="t",
                      lines=(text("at ", when(moment, "15:30 UTC"), " on ", when(moment, "Nov 20 15:30 UTC"), " ",
                                  when(moment, "15:30:00 UTC")),),
                      footer=(text("at ", when(moment, "15:30 UTC")),))
    embed = discord.render(message)["embeds"][0]
    stamp = int(moment.timestamp())
    assert embed["description"] == f"at <t:{stamp}:t> on <t:{stamp}:f> <t:{stamp}:T>"
    assert embed["footer"]["text"] == "at 15:30 UTC"


# ------------------------------------------------------------------------------------------------
# Buttons and their custom_ids
# ------------------------------------------------------------------------------------------------


def test_button_styles_follow_the_tone_and_live_and_paper_look_different():
    live = discord.render(golden.messages()["signal_live_no"])
    paper = discord.render(golden.messages()["signal_paper_no"])
    assert [b["style"] for b in all_buttons(live)] == [4, 2]  # danger, secondary
    assert [b["style"] for b in all_buttons(paper)] == [1, 2]  # primary, secondary
    colours = {discord.render(Message(kind="x", tone=tone, title="t"))["embeds"][0]["color"] for tone in Tone}
    assert len(colours) == len(Tone)


def test_an_outcome_removes_the_buttons_when_it_edits_the_proposal():
    payload = discord.render(golden.messages()["outcome_paper_fill"])
    assert payload["components"] == [] and payload["embeds"]


@pytest.mark.parametrize("name", sorted(golden.messages()))
def test_every_custom_id_names_its_action_and_only_the_id_it_acts_on(name):
    said = golden.messages()[name]
    for payload in payloads_of(said):
        for item in all_buttons(payload):
            action, value = parse_custom_id(item["custom_id"])
            assert action in (APPROVE_ACTION, REJECT_ACTION, CLOSE_ACTION)
            assert item["custom_id"].split(":", 1)[1] == value
    messages = said.parts if isinstance(said, Page) else said if isinstance(said, list) else [said]
    expected = [(b.action, b.value) for m in messages for b in m.buttons]
    expected += [(r.button.action, r.button.value) for m in messages for r in m.rows if r.button]
    got = [parse_custom_id(b["custom_id"]) for p in payloads_of(said)[:1] for b in all_buttons(p)]
    assert got == expected


def test_the_same_action_on_the_same_thing_twice_gets_a_repeat_number_and_parses_the_same():
    message = Message(kind="positions", tone=Tone.NEUTRAL, title="t",
                      rows=(Row(text("a"), Button(CLOSE_ACTION, "Close #1", "1")),
                            Row(text("b"), Button(CLOSE_ACTION, "Close #1", "1")),
                            Row(text("c"), Button(CLOSE_ACTION, "Close #2", "2"))))
    payload = discord.render(message)
    assert_valid(payload)
    ids = [b["custom_id"] for b in all_buttons(payload)]
    assert ids == ["close_position:1", "close_position.2:1", "close_position:2"]
    assert [parse_custom_id(i) for i in ids] == [(CLOSE_ACTION, "1"), (CLOSE_ACTION, "1"), (CLOSE_ACTION, "2")]


@pytest.mark.parametrize("action, value", [(APPROVE_ACTION, "sig-0001"), (REJECT_ACTION, "9f2c4e1a0b3d5e6f"),
                                           (CONFIRM_ACTION, "sig-" + "9" * 40), (CANCEL_ACTION, "a"),
                                           (CLOSE_ACTION, "7"), (CLOSE_ACTION, "123456789012345678")])
def test_custom_ids_round_trip(action, value):
    for repeat in (1, 2, 17):
        made = custom_id(action, value, repeat)
        assert len(made) <= 100 and parse_custom_id(made) == (action, value)


@pytest.mark.parametrize("forged", [
    "", "signal_approve", "signal_approve:", ":sig-1", "signal_approve:a:b", "signal_approve.1:x",
    "signal_approve.02:x", "signal_approve.1000:x", "Signal_Approve:x", "unknown_action:x", "close_position:abc",
    "close_position:0", "close_position:01", "close_position:-1", "signal_approve:sig 1", "signal_approve:../x",
    "signal_approve:-x", "signal_approve:sig\n1", "signal_approve:ünï", "signal_approve:" + "a" * 81,
    "close_position:" + "1" * 86, None, 5, b"signal_approve:x", "signal_approve :x", " signal_approve:x",
])
def test_a_malformed_custom_id_is_refused(forged):
    with pytest.raises(ValueError):
        parse_custom_id(forged)


@pytest.mark.parametrize("action, value", [("signal_approve", "x" * 81), ("signal_approve", "a:b"),
                                           ("nope", "1"), (CLOSE_ACTION, "x"), (CLOSE_ACTION, "")])
def test_a_button_the_desk_never_makes_is_refused_rather_than_drawn(action, value):
    with pytest.raises(ValueError):
        custom_id(action, value)
    with pytest.raises(ValueError):
        discord.render(Message(kind="x", tone=Tone.NEUTRAL, title="t", buttons=(Button(action, "go", value),)))


# ------------------------------------------------------------------------------------------------
# Lists with more buttons than a message holds
# ------------------------------------------------------------------------------------------------


def test_a_long_list_degrades_in_one_message_and_pages_without_losing_a_button():
    many = discord_golden.many_positions()
    closable = [r.button.value for r in many.rows if r.button]
    assert len(closable) == 30
    one = discord.render(many)
    assert_valid(one)
    shown_ids = [parse_custom_id(b["custom_id"])[1] for b in all_buttons(one)]
    assert shown_ids == closable[:len(shown_ids)] and len(shown_ids) <= 25
    assert one["embeds"][0]["description"].endswith(f"…and {30 - len(shown_ids)} more")
    pages = discord.render_pages(many)
    assert_valid(*pages)
    assert [parse_custom_id(b["custom_id"])[1] for p in pages for b in all_buttons(p)] == closable
    for n, page in enumerate(pages, 1):
        assert page["embeds"][0]["title"].endswith(f"({n}/{len(pages)})")
        for item in all_buttons(page):  # each page lists the positions it has buttons for
            assert f"**#{parse_custom_id(item['custom_id'])[1]}**" in page["embeds"][0]["description"]


def test_rows_past_the_buttons_a_message_holds_say_so():
    rows = tuple(Row(text(f"#{i}"), Button(CLOSE_ACTION, f"Close #{i}", str(i))) for i in range(1, 31))
    payload = discord.render(Message(kind="positions", tone=Tone.NEUTRAL, title="t", rows=rows,
                                     buttons=(Button(REJECT_ACTION, "Reject", "sig-1"),)))
    assert_valid(payload)
    ids = [b["custom_id"] for b in all_buttons(payload)]
    assert ids[0] == "signal_reject:sig-1" and len(ids) == 21  # the decision's own row, then 4 rows of Close
    assert "buttons only for the 20 above" in payload["embeds"][0]["description"]
    assert "#30" in payload["embeds"][0]["description"]  # its text is still shown, without a button


def test_a_page_is_one_message_with_an_embed_for_each_part():
    page = golden.messages()["home_live"]
    payload = discord.render_page(page)
    assert_valid(payload)
    assert [shown(e.get("title", "")) for e in payload["embeds"]] == [
        "🚨 " + page.parts[0].title if page.parts[0].tone is Tone.LIVE else shown(payload["embeds"][0]["title"]),
        page.parts[1].title, page.parts[2].title]
    assert payload["embeds"][-1]["footer"]["text"].endswith(page.parts[-1].footer[0][-1].text)
    assert shown(payload["content"]) == "🚨 " + page.title


# ------------------------------------------------------------------------------------------------
# The LIVE approval's second step
# ------------------------------------------------------------------------------------------------


def test_a_live_approve_has_an_ephemeral_confirmation_naming_only_the_signal():
    signal = no_signal(False)
    approve = signals.signal_proposal(signal, NOW).buttons[0]
    payload = discord.confirm_payload(approve)
    assert_valid(payload)
    assert payload["flags"] == 64
    embed = payload["embeds"][0]
    assert shown(embed["title"]) == approve.confirm.title
    assert shown(embed["description"]) == approve.confirm.body
    assert [(b["label"], b["style"], b["custom_id"]) for b in all_buttons(payload)] == [
        ("Place real order", 4, f"{CONFIRM_ACTION}:{signal.id}"), ("Cancel", 2, f"{CANCEL_ACTION}:{signal.id}")]
    hostile = signals.signal_proposal(hostile_signal(), NOW).buttons[0]
    assert_valid(discord.confirm_payload(hostile))
    assert HOSTILE[:80] in shown(discord.confirm_payload(hostile)["embeds"][0]["description"])


def test_only_an_approval_with_a_confirm_has_a_second_step():
    paper, reject = signals.signal_proposal(make_signal(dry_run=True), NOW).buttons
    for item in (paper, reject):
        with pytest.raises(ValueError):
            discord.confirm_payload(item)


# ------------------------------------------------------------------------------------------------
# Any text at all
# ------------------------------------------------------------------------------------------------

NASTY = st.sampled_from(["@everyone", "@here", "<@&1>", "<#1>", "<t:0:R>", "[a](http://e)", "**", "`", "```", "\\",
                         "# ", "\n- ", "\n> ", "\n1. ", "-# ", "||", "~~", "__", "https://x.y", "\u202e", "\ud800",
                         "👩‍👩‍👧", "🇺🇸", "e\u0301", "\x00", "&amp;", ":", "\r\n"])
RAW = st.lists(st.one_of(st.text(max_size=60), NASTY), max_size=8).map("".join)
URLS = st.sampled_from(["https://kalshi.com/m", "javascript:alert(1)", "http://a.b/(x)", "https://x.y/a b",
                        "http://user@evil", "", "ftp://x", "https://x.y/" + "a" * 600])
ACTORS = st.sampled_from([discord.DISCORD_ACTOR + SNOWFLAKE, "UAUTH01", SNOWFLAKE, "", "@everyone", "schedule"])


@st.composite
def spans(draw):
    style = draw(st.sampled_from(list(Style)))
    if style is Style.LINK:
        return link(draw(URLS), draw(RAW))
    if style is Style.USER:
        return user(draw(ACTORS))
    if style is Style.TIME:
        return when(NOW + timedelta(seconds=draw(st.integers(-10**8, 10**8))), draw(RAW))
    return Span(draw(RAW), style)


TEXTS = st.lists(spans(), max_size=6).map(tuple)


@st.composite
def messages(draw):
    n_rows = draw(st.integers(0, 40))
    ids = draw(st.lists(st.integers(1, 60), min_size=n_rows, max_size=n_rows))
    rows = tuple(Row(draw(TEXTS), Button(CLOSE_ACTION, f"Close #{i}", str(i)) if draw(st.booleans()) else None)
                 for i in ids)
    buttons = (Button(APPROVE_ACTION, draw(RAW), "sig-1", Tone.LIVE), Button(REJECT_ACTION, "Reject", "sig-1"))
    return Message(kind="x", tone=draw(st.sampled_from(list(Tone))), title=draw(RAW),
                   lines=tuple(draw(st.lists(TEXTS, max_size=8))), rows=rows,
                   facts=tuple(Fact(draw(RAW), v) for v in draw(st.lists(TEXTS, max_size=8))),
                   buttons=buttons[:draw(st.integers(0, 2))],
                   sections=tuple(Section(draw(RAW), tuple(draw(st.lists(TEXTS, max_size=5))))
                                  for _ in range(draw(st.integers(0, 4)))),
                   footer=tuple(draw(st.lists(TEXTS, max_size=3))), notification=draw(RAW))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(messages())
def test_any_message_renders_valid_and_safe(message):
    made = [discord.render(message), *discord.render_pages(message),
            discord.render_page(Page(title=message.title, tone=message.tone, parts=(message, message)))]
    assert_valid(*made)
    for payload in made:
        for item in all_buttons(payload):
            parse_custom_id(item["custom_id"])
    decision = [parse_custom_id(b["custom_id"]) for b in all_buttons(made[0])][:len(message.buttons)]
    assert decision == [(b.action, b.value) for b in message.buttons]  # the decision's buttons, first, always


@given(TEXTS, st.integers(1, 400))
@settings(max_examples=200, deadline=None)
def test_a_cut_text_stays_within_its_limit_and_leaves_no_markup_open(value, limit):
    from bot.discord.markdown import markdown
    drawn = markdown(value, limit)
    assert u16(drawn) <= limit
    validator = Validator()
    validator.markup(drawn, "text", links=True)
    assert validator.problems == []
    free = [i for i in unescaped(drawn) if drawn[i] == "`"]
    assert len(free) % 2 == 0  # every code span closed
    assert drawn.count("**") % 2 == 0 or "`" in drawn  # bold closed (a ** inside code is text)


# ------------------------------------------------------------------------------------------------
# The module itself
# ------------------------------------------------------------------------------------------------


def test_rendering_needs_no_discord_library_and_no_network():
    allowed = {"__future__", "re", "math", "dataclasses", "typing", "collections", "urllib"}
    for path in Path(discord.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                assert {a.name.split(".")[0] for a in node.names} <= allowed, path
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                assert node.module.split(".")[0] in allowed, (path, node.module)
            elif isinstance(node, ast.ImportFrom):
                assert node.level == 1 or (node.module or "").startswith("present"), (path, node.module)


def test_code_spans_never_hold_a_backtick_or_a_live_mention():
    payload = discord.render(Message(kind="x", tone=Tone.NEUTRAL, title="t", lines=(text(code("a`b @everyone")),)))
    assert payload["embeds"][0]["description"] == "`a'b @\u200beveryone`"
