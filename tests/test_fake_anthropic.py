"""The fake Anthropic API, driven only through the real `anthropic` SDK: shapes, refusals, faults, caching, batches."""

from __future__ import annotations

import json
import typing
from collections.abc import AsyncIterator
from typing import Any

import anthropic
import pydantic
import pytest
from anthropic import AsyncAnthropic
from anthropic.types import (
    CitationsWebSearchResultLocation,
    ServerToolUseBlock,
    TextBlock,
    ToolUseBlock,
    WebSearchResultBlock,
    WebSearchToolResultBlock,
)
from pydantic import BaseModel, ConfigDict, Field

from .servers.anthropic import (
    API_VERSIONS,
    CONTEXT_WINDOW,
    SERVER_TOOLS,
    FakeAnthropic,
    Reply,
    SearchResult,
    WebSearch,
    extra_fields,
    hashed_probability,
    invalid_json,
    missing_fields,
    out_of_range,
    sequence,
)

MODEL = "claude-sonnet-5"
WEB_SEARCH = {"type": "web_search_20250305", "name": "web_search", "max_uses": 2}


class Estimate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    probability: float = Field(ge=0.01, le=0.99)
    confidence: float = Field(ge=0, le=1)
    reasoning: str
    key_factors: list[str]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def fake() -> AsyncIterator[FakeAnthropic]:
    async with FakeAnthropic(hang_seconds=0.5) as f:
        yield f


def client(fake: FakeAnthropic, *, max_retries: int = 0, **kwargs: Any) -> AsyncAnthropic:
    # Strict validation: every answer must match the SDK's own types exactly.
    kwargs.setdefault("api_key", fake.api_key)
    return AsyncAnthropic(base_url=fake.url, max_retries=max_retries, _strict_response_validation=True, **kwargs)


def user(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


async def test_create_round_trip_has_every_field_and_counts_usage(fake):
    async with client(fake) as c:
        raw = await c.messages.with_raw_response.create(model=MODEL, max_tokens=200, messages=user("Will it rain?"))
        message = await raw.parse()
    assert raw.request_id and raw.request_id.startswith("req_")
    assert message.id.startswith("msg_") and message.type == "message" and message.role == "assistant"
    assert message.model == MODEL and message.stop_reason == "end_turn" and message.stop_sequence is None
    [block] = message.content
    assert isinstance(block, TextBlock)
    assert json.loads(block.text) == {"probability": hashed_probability("Will it rain?")}
    assert 0.05 <= hashed_probability("Will it rain?") <= 0.95
    usage = message.usage
    assert usage.input_tokens == 4  # 13 characters
    assert usage.output_tokens == -(-len(block.text) // 4)
    assert usage.cache_creation_input_tokens == 0 and usage.cache_read_input_tokens == 0
    assert usage.service_tier == "standard" and usage.server_tool_use is None
    assert fake.message_calls == 1
    totals = fake.totals(MODEL)
    assert (totals.calls, totals.input_tokens, totals.output_tokens) == (1, 4, usage.output_tokens)
    [recorded] = fake.requests
    assert recorded.headers["Authorization"] == f"Bearer {fake.api_key}"  # SDK 2.14 sends the key as a Bearer token
    assert recorded.headers["anthropic-version"] in API_VERSIONS
    assert fake.message_bodies == [{"model": MODEL, "max_tokens": 200, "messages": user("Will it rain?")}]


async def test_parse_sends_output_config_and_parses_the_json_into_the_model(fake):
    fake.responder = lambda request: {"probability": 0.71, "confidence": 0.6, "reasoning": "Base rate.",
                                      "key_factors": ["polls", "turnout"]}
    async with client(fake) as c:
        parsed = await c.messages.parse(model=MODEL, max_tokens=300, messages=user("Election?"),
                                        output_format=Estimate)
    assert parsed.parsed_output == Estimate(probability=0.71, confidence=0.6, reasoning="Base rate.",
                                            key_factors=["polls", "turnout"])
    fmt = fake.message_bodies[0]["output_config"]["format"]
    assert fmt["type"] == "json_schema" and set(fmt) == {"type", "schema"}
    assert fmt["schema"]["type"] == "object" and fmt["schema"]["additionalProperties"] is False


async def test_default_answer_fits_the_requested_schema(fake):
    async with client(fake) as c:
        parsed = await c.messages.parse(model=MODEL, max_tokens=300, messages=user("Fed cut in March?"),
                                        output_format=Estimate)
    assert parsed.parsed_output is not None
    assert parsed.parsed_output.probability == hashed_probability("Fed cut in March?")


async def test_a_responder_may_be_async_and_sees_the_request(fake):
    seen: list[dict[str, Any]] = []

    async def responder(request: dict[str, Any]) -> Reply:
        seen.append(request)
        return Reply.raw_text("plain words")

    fake.responder = responder
    async with client(fake) as c:
        message = await c.messages.create(model=MODEL, max_tokens=50, system="Be brief.", messages=user("Hi"))
    assert message.content[0].text == "plain words"  # type: ignore[union-attr]
    assert seen[0]["system"] == "Be brief."


async def test_wrong_key_is_an_authentication_error(fake):
    async with client(fake, api_key="sk-ant-wrong") as c:
        with pytest.raises(anthropic.AuthenticationError) as caught:
            await c.messages.create(model=MODEL, max_tokens=10, messages=user("x"))
    err = caught.value
    assert err.status_code == 401 and err.type == "authentication_error" and err.api_message == "invalid x-api-key"
    assert err.body["type"] == "error" and err.body["request_id"].startswith("req_")  # type: ignore[index]
    assert err.request_id == err.body["request_id"]  # type: ignore[index]
    assert fake.message_calls == 0


async def test_the_x_api_key_header_is_accepted_too(fake):
    headers = {"Authorization": anthropic.omit, "x-api-key": fake.api_key}
    async with client(fake, default_headers=headers) as c:
        message = await c.messages.create(model=MODEL, max_tokens=10, messages=user("x"))
    assert message.type == "message"
    assert "Authorization" not in fake.requests[0].headers and fake.requests[0].headers["x-api-key"] == fake.api_key


async def test_missing_anthropic_version_is_refused(fake):
    async with client(fake, default_headers={"anthropic-version": anthropic.omit}) as c:
        with pytest.raises(anthropic.BadRequestError, match="anthropic-version"):
            await c.messages.create(model=MODEL, max_tokens=10, messages=user("x"))


async def test_unknown_model_is_not_found(fake):
    async with client(fake) as c:
        with pytest.raises(anthropic.NotFoundError) as caught:
            await c.messages.create(model="claude-nonexistent-9", max_tokens=10, messages=user("x"))
    assert caught.value.type == "not_found_error" and "claude-nonexistent-9" in str(caught.value.api_message)


BAD_REQUESTS: list[tuple[dict[str, Any], str]] = [
    ({"max_tokens": -1}, "max_tokens"),
    ({"max_tokens": "ten"}, "max_tokens"),
    ({"max_tokens": 64_001}, "max_tokens"),
    ({"messages": []}, "messages"),
    ({"messages": [{"role": "assistant", "content": "Hi"}]}, "first message"),
    ({"messages": [{"role": "robot", "content": "Hi"}]}, "messages.0.role"),
    ({"messages": [{"role": "user", "content": ""}]}, "non-empty"),
    ({"system": [{"type": "text", "text": ""}]}, "system.0"),
    ({"system": [{"type": "text", "text": "x", "cache_control": {"type": "forever"}}]}, "cache_control"),
    ({"tool_choice": {"type": "tool", "name": "record"}}, "tool_choice"),
    ({"tools": [{"name": "record", "input_schema": {"type": "object"}}],
      "tool_choice": {"type": "tool", "name": "other"}}, "tool_choice.tool.name"),
    ({"tools": [{"type": "web_search_20990101", "name": "web_search"}]}, "tools.0"),
    ({"tools": [{"type": "web_search_20250305", "name": "search"}]}, "tools.0"),
    ({"tools": [{"type": "web_search_20250305", "name": "web_search", "max_uses": 0}]}, "max_uses"),
    ({"output_config": {"format": {"type": "json", "schema": {"type": "object"}}}}, "output_config.format.type"),
    ({"output_config": {"format": {"type": "json_schema"}}}, "output_config.format.schema"),
    ({"output_config": {"format": {"type": "json_schema", "schema": {"type": "object", "properties": {}}}}},
     "additionalProperties"),
    ({"output_config": {"format": {"type": "json_schema", "schema": {"type": "array"}}}}, "root"),
    ({"messages": [{"role": "user", "content": [
        {"type": "text", "text": f"block {i}", "cache_control": {"type": "ephemeral"}} for i in range(5)]}]},
     "maximum of 4"),
    ({"messages": [{"role": "user", "content": "Look it up"},
                   {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "t", "input": {}}]},
                   {"role": "user", "content": "and?"}]}, "tool_result"),
    ({"messages": [{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_9", "content": "1"}]}]},
     "unexpected `tool_use_id`"),
]


@pytest.mark.parametrize(("override", "named"), BAD_REQUESTS)
async def test_invalid_requests_are_refused_naming_the_field(fake, override, named):
    body: dict[str, Any] = {"model": MODEL, "max_tokens": 100, "messages": user("x"), **override}
    async with client(fake) as c:
        with pytest.raises(anthropic.BadRequestError) as caught:
            await c.messages.create(**body, timeout=30)  # a timeout skips the SDK's own max_tokens checks
    assert caught.value.type == "invalid_request_error"
    assert named in str(caught.value.api_message)
    assert fake.message_calls == 0


async def test_unknown_fields_are_refused_and_known_shapes_accepted(fake):
    async with client(fake) as c:
        with pytest.raises(anthropic.BadRequestError, match="Extra inputs are not permitted"):
            await c.messages.create(model=MODEL, max_tokens=10, messages=user("x"), extra_body={"temprature": 1})
        # Consecutive user turns are combined by the API (SDK docs), and cache_control/ttl, metadata are fine.
        message = await c.messages.create(
            model=MODEL, max_tokens=10, metadata={"user_id": "u1"},
            system=[{"type": "text", "text": "Rules.", "cache_control": {"type": "ephemeral", "ttl": "1h"}}],
            messages=[{"role": "user", "content": "one"}, {"role": "user", "content": [{"type": "text", "text": "two"}]}])
        assert message.stop_reason in ("end_turn", "max_tokens")
        # A tool round trip: the tool_use answered by a tool_result in the next user turn.
        tool = {"name": "lookup", "input_schema": {"type": "object", "properties": {}}}
        answered = await c.messages.create(model=MODEL, max_tokens=50, tools=[tool], messages=[
            {"role": "user", "content": "Look it up"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "lookup", "input": {}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "42"}]}])
    assert answered.type == "message"


async def test_a_forced_tool_gets_a_tool_use_block(fake):
    fake.responder = lambda request: {"probability": 0.3}
    tool = {"name": "record", "description": "Record it.",
            "input_schema": {"type": "object", "properties": {"probability": {"type": "number"}}}}
    async with client(fake) as c:
        message = await c.messages.create(model=MODEL, max_tokens=100, messages=user("x"), tools=[tool],
                                          tool_choice={"type": "tool", "name": "record"})
    [block] = message.content
    assert isinstance(block, ToolUseBlock) and block.name == "record" and block.input == {"probability": 0.3}
    assert block.id.startswith("toolu_") and message.stop_reason == "tool_use"


async def test_429_with_retry_after_is_retried_by_the_sdk(fake):
    fake.faults.add("429", "/v1/messages", retry_after=0.01)
    async with client(fake, max_retries=2) as c:
        message = await c.messages.create(model=MODEL, max_tokens=10, messages=user("x"))
    assert message.type == "message"
    assert len(fake.message_bodies) == 2 and fake.message_calls == 1
    assert [r.headers["x-stainless-retry-count"] for r in fake.requests] == ["0", "1"]


async def test_429_without_retries_is_a_rate_limit_error(fake):
    fake.faults.add("429", "/v1/messages", retry_after=0.01)
    async with client(fake) as c:
        with pytest.raises(anthropic.RateLimitError) as caught:
            await c.messages.create(model=MODEL, max_tokens=10, messages=user("x"))
    assert caught.value.status_code == 429 and caught.value.type == "rate_limit_error"
    assert caught.value.response.headers["retry-after"] == "0.01"


async def test_529_is_retried_then_succeeds(fake):
    fake.faults.add("529", "/v1/messages", times=2, retry_after=0.01)
    async with client(fake, max_retries=2) as c:
        message = await c.messages.create(model=MODEL, max_tokens=10, messages=user("x"))
    assert message.type == "message" and len(fake.message_bodies) == 3
    assert [kind for kind, _, _ in fake.faults.fired] == ["529", "529"]


async def test_529_without_retries_is_an_overloaded_error(fake):
    fake.faults.add("529", "/v1/messages")
    async with client(fake) as c:
        with pytest.raises(anthropic.InternalServerError) as caught:
            await c.messages.create(model=MODEL, max_tokens=10, messages=user("x"))
    err = caught.value
    assert isinstance(err, anthropic.OverloadedError) and isinstance(err, anthropic.APIStatusError)
    assert err.status_code == 529
    assert err.body == {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"},
                        "request_id": err.request_id}


async def test_500_is_an_internal_server_error_with_api_error_body(fake):
    fake.faults.add("500", "/v1/messages")
    async with client(fake) as c:
        with pytest.raises(anthropic.InternalServerError) as caught:
            await c.messages.create(model=MODEL, max_tokens=10, messages=user("x"))
    assert caught.value.status_code == 500 and caught.value.type == "api_error"


async def test_a_timeout_fault_is_an_api_timeout_error(fake):
    fake.faults.add("timeout", "/v1/messages")
    async with client(fake, timeout=0.1) as c:
        with pytest.raises(anthropic.APITimeoutError):
            await c.messages.create(model=MODEL, max_tokens=10, messages=user("x"))


async def test_a_malformed_body_is_not_a_message(fake):
    fake.faults.add("malformed", "/v1/messages")
    async with client(fake, max_retries=2) as c:
        with pytest.raises(json.JSONDecodeError):  # the SDK lets it through, not wrapped, and does not retry
            await c.messages.create(model=MODEL, max_tokens=10, messages=user("x"))
    assert len(fake.message_bodies) == 1


@pytest.mark.parametrize(("responder", "expected"), [
    (invalid_json(), "json_invalid"),
    (out_of_range(1.7), "less_than_equal"),
    (out_of_range(-0.2), "greater_than_equal"),
    (missing_fields("confidence"), "missing"),
    (extra_fields(bonus=1), "extra_forbidden"),
])
async def test_bad_answers_make_parse_raise_a_pydantic_validation_error(fake, responder, expected):
    fake.responder = responder
    async with client(fake) as c:
        with pytest.raises(pydantic.ValidationError) as caught:
            await c.messages.parse(model=MODEL, max_tokens=300, messages=user("x"), output_format=Estimate)
    assert caught.value.errors()[0]["type"] == expected
    assert fake.message_calls == 1  # the API call itself succeeded; the answer is what is wrong


async def test_an_answer_cut_at_max_tokens_stops_with_max_tokens(fake):
    fake.responder = lambda request: {"reasoning": "word " * 100}
    async with client(fake) as c:
        message = await c.messages.create(model=MODEL, max_tokens=10, messages=user("x"))
    assert message.stop_reason == "max_tokens" and message.usage.output_tokens == 10
    assert len(message.content[0].text) == 40  # type: ignore[union-attr]


async def test_sequence_answers_invalid_once_then_valid(fake):
    good = {"probability": 0.4, "confidence": 0.5, "reasoning": "r", "key_factors": []}
    fake.responder = sequence("not json", good)
    async with client(fake) as c:
        with pytest.raises(pydantic.ValidationError):
            await c.messages.parse(model=MODEL, max_tokens=100, messages=user("x"), output_format=Estimate)
        parsed = await c.messages.parse(model=MODEL, max_tokens=100, messages=user("x"), output_format=Estimate)
    assert parsed.parsed_output == Estimate(**good)


def cached_system(text: str, ttl: str | None = None) -> list[dict[str, Any]]:
    control: dict[str, Any] = {"type": "ephemeral", **({"ttl": ttl} if ttl else {})}
    return [{"type": "text", "text": text, "cache_control": control}]


LONG = "You are a careful forecaster. " * 200  # 6,000 characters: 1,500 tokens


async def test_a_long_cached_system_block_is_written_then_read():
    clock = Clock()
    async with FakeAnthropic(clock=clock) as fake, client(fake) as c:
        first = await c.messages.create(model=MODEL, max_tokens=50, system=cached_system(LONG), messages=user("A?"))
        second = await c.messages.create(model=MODEL, max_tokens=50, system=cached_system(LONG), messages=user("B?"))
        clock.now += 301  # past the 5-minute TTL of the last use
        third = await c.messages.create(model=MODEL, max_tokens=50, system=cached_system(LONG), messages=user("C?"))
    assert first.usage.cache_creation_input_tokens == 1500 and first.usage.cache_read_input_tokens == 0
    assert first.usage.cache_creation is not None and first.usage.cache_creation.ephemeral_5m_input_tokens == 1500
    assert first.usage.input_tokens == 1  # "A?" only
    assert second.usage.cache_read_input_tokens == 1500 and second.usage.cache_creation_input_tokens == 0
    assert second.usage.input_tokens == 1
    assert third.usage.cache_creation_input_tokens == 1500 and third.usage.cache_read_input_tokens == 0
    totals = fake.totals(MODEL)
    assert (totals.cache_creation_input_tokens, totals.cache_read_input_tokens) == (3000, 1500)


async def test_reads_refresh_the_ttl_and_a_changed_prefix_misses():
    clock = Clock()
    async with FakeAnthropic(clock=clock) as fake, client(fake) as c:
        async def call(system: str) -> anthropic.types.Usage:
            message = await c.messages.create(model=MODEL, max_tokens=5, system=cached_system(system),
                                              messages=user("Q"))
            return message.usage
        await call(LONG)
        clock.now += 200
        assert (await call(LONG)).cache_read_input_tokens == 1500
        clock.now += 200  # 400 s after the write, 200 s after the read
        assert (await call(LONG)).cache_read_input_tokens == 1500
        changed = await call(LONG + "Also be brief.")
    assert changed.cache_read_input_tokens == 0 and changed.cache_creation_input_tokens > 1500


async def test_short_prompts_and_small_models_minimums_are_never_cached(fake):
    async with client(fake) as c:
        for _ in range(2):
            short = await c.messages.create(model=MODEL, max_tokens=5, system=cached_system("Be brief."),
                                            messages=user("Q"))
            assert short.usage.cache_creation_input_tokens == 0 and short.usage.cache_read_input_tokens == 0
            assert short.usage.input_tokens == 3 + 1
        # 1,500 tokens: enough for claude-sonnet-5 (1,024) but not for claude-haiku-4-5 (4,096).
        for _ in range(2):
            haiku = await c.messages.create(model="claude-haiku-4-5", max_tokens=5, system=cached_system(LONG),
                                            messages=user("Q"))
            assert haiku.usage.cache_read_input_tokens == 0 and haiku.usage.input_tokens == 1501


async def test_a_breakpoint_in_messages_caches_the_whole_prefix(fake):
    document = "Resolution rules. " * 400  # 7,200 characters: 1,800 tokens
    messages = [{"role": "user", "content": [
        {"type": "text", "text": document, "cache_control": {"type": "ephemeral"}},
        {"type": "text", "text": "Question one?"}]}]
    async with client(fake) as c:
        first = await c.messages.create(model=MODEL, max_tokens=5, system="Rules.", messages=messages)
        messages[0]["content"][1] = {"type": "text", "text": "Question two, longer?"}
        second = await c.messages.create(model=MODEL, max_tokens=5, system="Rules.", messages=messages)
    assert first.usage.cache_creation_input_tokens == 2 + 1800 and first.usage.input_tokens == 4
    assert second.usage.cache_read_input_tokens == 1802 and second.usage.input_tokens == 6


async def test_batch_round_trip_polls_until_ended_and_streams_results():
    async with FakeAnthropic(batch_polls_to_end=2) as fake, client(fake) as c:
        fake.responder = lambda request: {"probability": 0.25, "confidence": 0.5, "reasoning": "r",
                                          "key_factors": ["a"]}
        fake.expire_custom_ids.add("mkt-3")
        params = {"model": MODEL, "max_tokens": 100, "messages": user("Will X happen?")}
        batch = await c.messages.batches.create(requests=[
            {"custom_id": "mkt-1", "params": params},
            {"custom_id": "mkt-2", "params": {**params, "max_tokens": -5}},  # validated while it runs
            {"custom_id": "mkt-3", "params": params},
        ])
        assert batch.id.startswith("msgbatch_") and batch.processing_status == "in_progress"
        assert batch.request_counts.processing == 3 and batch.results_url is None
        assert (batch.expires_at - batch.created_at).total_seconds() == 24 * 3600
        polled = await c.messages.batches.retrieve(batch.id)
        assert polled.processing_status == "in_progress"
        polled = await c.messages.batches.retrieve(batch.id)
        assert polled.processing_status == "ended" and polled.ended_at is not None
        assert polled.results_url == f"{fake.url}/v1/messages/batches/{batch.id}/results"
        counts = polled.request_counts
        assert (counts.processing, counts.succeeded, counts.errored, counts.expired) == (0, 1, 1, 1)
        results = {line.custom_id: line.result async for line in await c.messages.batches.results(batch.id)}
    ok = results["mkt-1"]
    assert ok.type == "succeeded"
    text = ok.message.content[0].text  # type: ignore[union-attr]
    assert text == '{"probability": 0.25, "confidence": 0.5, "reasoning": "r", "key_factors": ["a"]}'
    assert ok.message.usage.service_tier == "batch"
    bad = results["mkt-2"]
    assert bad.type == "errored" and bad.error.error.type == "invalid_request_error"
    assert "max_tokens" in bad.error.error.message
    assert results["mkt-3"].type == "expired"
    assert fake.message_calls == 0 and fake.batch_usage_by_model[MODEL].calls == 1


@pytest.mark.parametrize(("requests", "named"), [
    ([], "requests"),
    ([{"custom_id": "has space", "params": {}}], "custom_id"),
    ([{"custom_id": "x" * 65, "params": {}}], "custom_id"),
    ([{"custom_id": "a", "params": {}}, {"custom_id": "a", "params": {}}], "duplicate custom_id"),
])
async def test_batch_envelopes_are_validated_at_creation(fake, requests, named):
    async with client(fake) as c:
        with pytest.raises(anthropic.BadRequestError) as caught:
            await c.messages.batches.create(requests=requests)
    assert named in str(caught.value.api_message)


async def test_a_canceled_batch_ends_with_canceled_results():
    async with FakeAnthropic(batch_polls_to_end=5) as fake, client(fake) as c:
        params = {"model": MODEL, "max_tokens": 10, "messages": user("x")}
        batch = await c.messages.batches.create(requests=[{"custom_id": "one", "params": params}])
        canceling = await c.messages.batches.cancel(batch.id)
        assert canceling.processing_status == "canceling" and canceling.cancel_initiated_at is not None
        ended = await c.messages.batches.retrieve(batch.id)
        assert ended.processing_status == "ended" and ended.request_counts.canceled == 1
        [line] = [line async for line in await c.messages.batches.results(batch.id)]
        assert line.result.type == "canceled"
        deleted = await c.messages.batches.delete(batch.id)
        assert deleted.type == "message_batch_deleted"
        with pytest.raises(anthropic.NotFoundError):
            await c.messages.batches.retrieve(batch.id)


async def test_web_search_blocks_parse_into_the_sdk_types(fake):
    results = [SearchResult("https://example.com/a", "A", "Turnout rose to 61%.", "May 1, 2026"),
               SearchResult("https://example.com/b", "B", "Polls tightened.")]
    fake.responder = lambda request: Reply.raw_text("About 0.6.").with_searches(
        WebSearch("turnout 2026", results), WebSearch("second"), WebSearch("third", results))
    async with client(fake) as c:
        message = await c.messages.create(model=MODEL, max_tokens=300, messages=user("Turnout?"), tools=[WEB_SEARCH])
    kinds = [type(block) for block in message.content]
    assert kinds == [ServerToolUseBlock, WebSearchToolResultBlock] * 3 + [TextBlock] * 3
    use, result = message.content[0], message.content[1]
    assert isinstance(use, ServerToolUseBlock) and use.name == "web_search" and use.input == {"query": "turnout 2026"}
    assert isinstance(result, WebSearchToolResultBlock) and result.tool_use_id == use.id
    assert isinstance(result.content, list) and isinstance(result.content[0], WebSearchResultBlock)
    assert result.content[0].url == "https://example.com/a" and result.content[0].page_age == "May 1, 2026"
    over = message.content[5]
    assert isinstance(over, WebSearchToolResultBlock) and not isinstance(over.content, list)
    assert over.content.error_code == "max_uses_exceeded"  # max_uses=2, and the third search was one too many
    cited = message.content[6]
    assert isinstance(cited, TextBlock) and cited.citations
    citation = cited.citations[0]
    assert isinstance(citation, CitationsWebSearchResultLocation) and citation.url == "https://example.com/a"
    assert citation.cited_text == "Turnout rose to 61%."
    assert message.content[-1].text == "About 0.6."  # type: ignore[union-attr]
    assert message.usage.server_tool_use is not None and message.usage.server_tool_use.web_search_requests == 2
    assert fake.totals(MODEL).web_search_requests == 2
    assert message.usage.input_tokens > 3  # search results are read as input


async def test_web_search_with_structured_output_keeps_the_answer_parseable(fake):
    async with client(fake) as c:
        parsed = await c.messages.parse(model=MODEL, max_tokens=500, messages=user("Q?"), tools=[WEB_SEARCH],
                                        output_format=Estimate)
    assert [block.type for block in parsed.content] == ["server_tool_use", "web_search_tool_result", "text"]
    assert parsed.parsed_output is not None and parsed.usage.server_tool_use is not None
    assert parsed.usage.server_tool_use.web_search_requests == 1


async def test_models_list_and_count_tokens(fake):
    async with client(fake) as c:
        models = [model async for model in c.models.list()]
        counted = await c.messages.count_tokens(model=MODEL, messages=user("12345678"))
    assert MODEL in [model.id for model in models]
    assert {model.max_input_tokens for model in models} == {CONTEXT_WINDOW}
    assert counted.input_tokens == 2


async def test_a_prompt_past_the_context_window_is_refused_like_the_real_api(fake):
    system = "s" * 4_000  # 1,000 tokens: the window counts the system prompt too
    text = "x" * ((CONTEXT_WINDOW - 1_000) * 4)
    async with client(fake) as c:
        fits = await c.messages.create(model=MODEL, max_tokens=10, system=system, messages=user(text))
        with pytest.raises(anthropic.BadRequestError) as caught:
            await c.messages.create(model=MODEL, max_tokens=10, system=system, messages=user(text + "y"))
    assert fits.usage.input_tokens == CONTEXT_WINDOW
    err = caught.value
    assert err.status_code == 400 and err.type == "invalid_request_error"
    assert err.body["error"]["message"] == f"prompt is too long: {CONTEXT_WINDOW + 1} tokens > {CONTEXT_WINDOW} maximum"
    assert fake.message_calls == 1  # nothing generated, nothing counted


def test_server_tool_table_and_api_version_match_the_installed_sdk():
    from anthropic._constants import ANTHROPIC_API_VERSION
    from anthropic.types.tool_union_param import ToolUnionParam

    assert ANTHROPIC_API_VERSION in API_VERSIONS
    def literals(hint: Any) -> list[Any]:  # Optional[Literal["a", "b"]] -> ["a", "b"]
        if typing.get_origin(hint) is typing.Literal:
            return list(typing.get_args(hint))
        return [v for arg in typing.get_args(hint) for v in literals(arg)]

    sdk: dict[str, str | None] = {}
    for param in typing.get_args(ToolUnionParam):
        hints = typing.get_type_hints(param)
        for tag in literals(hints["type"]):
            if tag != "custom":
                sdk[tag] = literals(hints["name"])[0] if "name" in hints else None
    assert sdk == SERVER_TOOLS
