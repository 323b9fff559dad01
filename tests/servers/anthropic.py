"""A fake Anthropic Messages API on 127.0.0.1, for the real `anthropic` SDK pointed at it with `base_url`.

    async with FakeAnthropic() as fake:
        client = AsyncAnthropic(base_url=fake.url, api_key=fake.api_key, max_retries=2)
        fake.responder = lambda request: {"probability": 0.7, ...}   # what "the model" answers
        fake.faults.add("529", "/v1/messages", retry_after=0.01)       # generic faults: LoopbackServer's plan

It answers like the real API where our code can tell the difference (wire shapes checked against the SDK
2.14.0 types) and refuses what the real API refuses, with Anthropic's error body
`{"type": "error", "error": {"type": ..., "message": ...}, "request_id": "req_..."}` and a `request-id` header.

What "the model" says is up to `responder(request_json) -> Reply | dict | list | str`: a dict or list is a JSON
answer (one text block holding `json.dumps(obj)`, as structured outputs produce; the input of a `tool_use` block
when `tool_choice` forces a tool), a str is raw text (to send invalid JSON), a `Reply` says more (a tool call,
web searches with results and citations, a stop reason, or an API error for this one request). The default
answers the request's schema with a probability hashed from the last user message, in [0.05, 0.95].

A request whose input (tools, system and messages, counted as below) is larger than the model's context window is
refused as the real API refuses it: 400 invalid_request_error "prompt is too long: N tokens > M maximum".

Usage is counted like the real thing: ~4 characters a token over tools, system and messages; prompt caching with
`cache_control` breakpoints (a prefix is cached only from the model's minimum size; a later request with the same
prefix within the TTL reads it); web search results add input tokens. The counters live on the fake
(`message_calls`, `usage_by_model`, `batch_usage_by_model`, `message_bodies`).

Not modelled: streaming (`stream: true` is refused with a message saying so), thinking blocks, images' real token
cost, rate-limit headers on successes, and server tools other than web search (accepted in `tools`, never used).
"""

from __future__ import annotations

import base64
import contextvars
import hashlib
import inspect
import json
import re
import secrets
import string
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from .base import LoopbackServer, ServedFake

# --- API constants -------------------------------------------------------------------------------------------

# "2026-10-21" is what the SDK 2.14.0 sends (anthropic._constants.ANTHROPIC_API_VERSION); 2023-06-01 is the
# long-standing public version. Anything else is refused, as the real API refuses versions it does not know.
API_VERSIONS = frozenset({"2023-01-01", "2023-06-01", "2026-10-21"})

# Server tool `type` tags and the `name` each requires, as in the SDK's ToolUnionParam (anthropic 2.14.0).
# tests/test_fake_anthropic.py checks this table against the installed SDK so drift is caught.
SERVER_TOOLS: dict[str, str | None] = {
    "bash_20250124": "bash",
    "code_execution_20250522": "code_execution",
    "code_execution_20250825": "code_execution",
    "code_execution_20260120": "code_execution",
    "code_execution_20260521": "code_execution",
    "browser_toolset_20260801": None,
    "memory_20250818": "memory",
    "computer_toolset_20260801": None,
    "text_editor_20250124": "str_replace_editor",
    "text_editor_20250429": "str_replace_based_edit_tool",
    "text_editor_20250728": "str_replace_based_edit_tool",
    "web_search_20250305": "web_search",
    "web_fetch_20250910": "web_fetch",
    "web_search_20260209": "web_search",
    "web_fetch_20260209": "web_fetch",
    "web_fetch_20260309": "web_fetch",
    "web_search_20260318": "web_search",
    "web_fetch_20260318": "web_fetch",
    "tool_search_tool_bm25_20251119": "tool_search_tool_bm25",
    "tool_search_tool_bm25": "tool_search_tool_bm25",
    "tool_search_tool_regex_20251119": "tool_search_tool_regex",
    "tool_search_tool_regex": "tool_search_tool_regex",
}
WEB_SEARCH_TOOLS = frozenset(t for t, name in SERVER_TOOLS.items() if name == "web_search")

MESSAGE_FIELDS = frozenset({
    "model", "max_tokens", "messages", "cache_control", "container", "diagnostics", "inference_geo", "metadata",
    "output_config", "service_tier", "speed", "stop_sequences", "stream", "system", "thinking", "tool_choice",
    "tools", "temperature", "top_k", "top_p",
})
COUNT_TOKENS_FIELDS = MESSAGE_FIELDS - {"max_tokens", "stream", "stop_sequences", "metadata", "service_tier",
                                        "temperature", "top_k", "top_p", "inference_geo", "container", "speed"}

MAX_CACHE_BREAKPOINTS = 4
CACHE_LOOKBACK_BLOCKS = 20  # a breakpoint also hits an entry written up to 20 blocks before it
CACHE_TTL_SECONDS = {"5m": 300.0, "1h": 3600.0}
CUSTOM_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,128}$")
MAX_BATCH_REQUESTS = 100_000
BATCH_LIFETIME = timedelta(hours=24)


# The standard context window; the 1M-token windows some models offer behind a beta header are not modelled.
CONTEXT_WINDOW = 200_000


@dataclass(frozen=True)
class ModelSpec:
    max_output_tokens: int
    cache_min_tokens: int  # the shortest prefix the API caches for this model
    display_name: str = ""
    context_window: int = CONTEXT_WINDOW  # input tokens (tools, system, messages) a request may carry


def _spec(model: str, max_output: int, cache_min: int | None = None) -> ModelSpec:
    # Rule of thumb from the brief: 1,024 tokens for Sonnet/Opus, 2,048 for Haiku. Published minimums for some
    # newer models are higher; those are given explicitly below.
    if cache_min is None:
        cache_min = 2048 if "haiku" in model else 1024
    return ModelSpec(max_output, cache_min, model.replace("-", " ").title())


DEFAULT_MODELS: dict[str, ModelSpec] = {
    # Sonnet 5.5's caching minimum is not in what we found published; Sonnet 5's (1,024) is assumed.
    "claude-sonnet-5-5": _spec("claude-sonnet-5-5", 128_000),
    "claude-sonnet-5": _spec("claude-sonnet-5", 64_000),
    "claude-opus-5": _spec("claude-opus-5", 128_000),
    "claude-haiku-4-5": _spec("claude-haiku-4-5", 64_000, 4096),
    "claude-haiku-4-5-20251001": _spec("claude-haiku-4-5-20251001", 64_000, 4096),
    "claude-sonnet-4-6": _spec("claude-sonnet-4-6", 64_000, 2048),
    "claude-sonnet-4-5": _spec("claude-sonnet-4-5", 64_000, 1024),
    "claude-sonnet-4-5-20250929": _spec("claude-sonnet-4-5-20250929", 64_000, 1024),
    "claude-opus-4-6": _spec("claude-opus-4-6", 128_000, 4096),
    "claude-opus-4-5": _spec("claude-opus-4-5", 64_000, 4096),
    "claude-opus-4-5-20251101": _spec("claude-opus-4-5-20251101", 64_000, 4096),
}

STATUS_ERRORS: dict[int, tuple[str, str]] = {
    400: ("invalid_request_error", "Invalid request"),
    401: ("authentication_error", "invalid x-api-key"),
    402: ("billing_error", "Your credit balance is too low to access the Anthropic API."),
    403: ("permission_error", "Your API key does not have permission to use the specified resource."),
    404: ("not_found_error", "Not found"),
    405: ("not_found_error", "Not found"),
    413: ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
    429: ("rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit"),
    500: ("api_error", "Internal server error"),
    502: ("api_error", "Bad gateway"),
    503: ("api_error", "Service unavailable"),
    504: ("timeout_error", "Request timeout"),
    529: ("overloaded_error", "Overloaded"),
}

_REQUEST_ID: contextvars.ContextVar[str] = contextvars.ContextVar("fake_anthropic_request_id", default="")


def new_id(prefix: str, length: int = 24) -> str:
    alphabet = string.ascii_letters + string.digits
    return prefix + "".join(secrets.choice(alphabet) for _ in range(length))


def error_body(status: int, message: str | None = None, error_type: str | None = None) -> dict[str, Any]:
    """Anthropic's error body for `status` (also LoopbackServer's `error_body` for injected faults)."""
    default_type, default_message = STATUS_ERRORS.get(status, ("api_error", f"HTTP {status}"))
    return {
        "type": "error",
        "error": {"type": error_type or default_type, "message": message or default_message},
        "request_id": _REQUEST_ID.get() or new_id("req_"),
    }


class ApiError(Exception):
    """An error answer of the API: raised anywhere in a handler, sent by the outer middleware."""

    def __init__(self, status: int, message: str, error_type: str | None = None, error_code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.error_type = error_type or STATUS_ERRORS.get(status, ("api_error", ""))[0]
        self.error_code = error_code  # error.details.error_code, e.g. "enforced_spend_limit_reached" on a 429

    def body(self) -> dict[str, Any]:
        body = error_body(self.status, self.message, self.error_type)
        if self.error_code is not None:
            body["error"]["details"] = {"error_code": self.error_code}
        return body


def _invalid(message: str) -> ApiError:
    return ApiError(400, message, "invalid_request_error")


def tokens(text: str) -> int:
    """About four characters a token, rounded up."""
    return -(-len(text) // 4)


def _dumps(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _rfc3339(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


# --- what "the model" answers ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class SearchResult:
    url: str
    title: str
    text: str = ""  # what a citation quotes from the page
    page_age: str | None = None


@dataclass(frozen=True)
class WebSearch:
    query: str
    results: Sequence[SearchResult] = ()
    error_code: str | None = None  # e.g. "unavailable", "too_many_requests": a web_search_tool_result_error


@dataclass(frozen=True)
class Reply:
    """One answer. Build with the class methods; `searches` happen before the answer, when the request has
    a web search tool and does not force a custom tool (as the real model can only search then)."""

    text: str | None = None  # the final text block, verbatim
    json_value: Any = None  # sent as json.dumps(...) in a text block, or as a forced tool's input
    is_json: bool = False
    tool_name: str | None = None
    tool_input: Mapping[str, Any] | None = None
    searches: Sequence[WebSearch] = ()
    stop_reason: str | None = None  # override, e.g. "refusal"
    error: ApiError | None = None  # the request fails with this API error (an `errored` result in a batch)

    @classmethod
    def json_object(cls, value: Any, *, searches: Sequence[WebSearch] = ()) -> Reply:
        return cls(json_value=value, is_json=True, searches=tuple(searches))

    @classmethod
    def raw_text(cls, text: str, *, searches: Sequence[WebSearch] = (), stop_reason: str | None = None) -> Reply:
        return cls(text=text, searches=tuple(searches), stop_reason=stop_reason)

    @classmethod
    def tool_call(cls, name: str, tool_input: Mapping[str, Any], *,
                  searches: Sequence[WebSearch] = ()) -> Reply:
        return cls(tool_name=name, tool_input=dict(tool_input), searches=tuple(searches))

    @classmethod
    def api_error(cls, status: int, message: str, error_type: str | None = None,
                  error_code: str | None = None) -> Reply:
        return cls(error=ApiError(status, message, error_type, error_code))

    def with_searches(self, *searches: WebSearch) -> Reply:
        return replace(self, searches=tuple(searches))


ReplyLike = Reply | Mapping[str, Any] | list[Any] | str
Responder = Callable[[dict[str, Any]], ReplyLike | Awaitable[ReplyLike]]


def as_reply(value: ReplyLike) -> Reply:
    if isinstance(value, Reply):
        return value
    if isinstance(value, str):
        return Reply.raw_text(value)
    if isinstance(value, (Mapping, list)):
        return Reply.json_object(value)
    raise TypeError(f"a responder returns Reply, dict, list or str, not {type(value).__name__}")


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    parts: list[str] = []
    for block in content if isinstance(content, list) else ():
        if isinstance(block, Mapping):
            if block.get("type") == "text":
                parts.append(str(block.get("text", "")))
            elif block.get("type") == "tool_result":
                parts.append(_text_of(block.get("content", "")))
    return "\n".join(parts)


def last_user_text(request: Mapping[str, Any]) -> str:
    for message in reversed(request.get("messages") or []):
        if isinstance(message, Mapping) and message.get("role") == "user":
            return _text_of(message.get("content"))
    return ""


def hashed_probability(text: str) -> float:
    """The default answer's probability: stable for a given text, in [0.05, 0.95], three decimals."""
    h = int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big")
    return round(0.05 + 0.9 * h / (2**64 - 1), 3)


def _schema_of(request: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The schema the answer must fit: a forced tool's input schema, else output_config.format."""
    choice = request.get("tool_choice") or {}
    custom = [t for t in request.get("tools") or [] if t.get("type") in (None, "custom")]
    if choice.get("type") == "tool":
        for tool in custom:
            if tool.get("name") == choice.get("name"):
                return tool.get("input_schema")
    if choice.get("type") == "any" and custom:
        return custom[0].get("input_schema")
    fmt = (request.get("output_config") or {}).get("format")
    return fmt.get("schema") if isinstance(fmt, Mapping) else None


def example_for_schema(schema: Mapping[str, Any], probability: float, *, root: Mapping[str, Any] | None = None,
                       key: str = "") -> Any:
    """A value that satisfies `schema`; fields named like "probability" get `probability`."""
    root = root if root is not None else schema
    if "$ref" in schema:
        ref = str(schema["$ref"])
        target: Any = root
        for part in ref.removeprefix("#/").split("/"):
            target = target.get(part, {}) if isinstance(target, Mapping) else {}
        return example_for_schema(target, probability, root=root, key=key)
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    for combiner in ("anyOf", "oneOf", "allOf"):
        options = schema.get(combiner)
        if options:
            non_null = [o for o in options if o.get("type") != "null"] or options
            return example_for_schema(non_null[0], probability, root=root, key=key)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object":
        props = schema.get("properties") or {}
        return {name: example_for_schema(sub, probability, root=root, key=name) for name, sub in props.items()}
    if kind == "array":
        items = schema.get("items") or {"type": "string"}
        count = max(int(schema.get("minItems", 0)), 2)
        if "maxItems" in schema:
            count = min(count, int(schema["maxItems"]))
        return [example_for_schema(items, probability, root=root, key=key) for _ in range(count)]
    if kind in ("number", "integer"):
        value: float = probability if "prob" in key.lower() else (0.5 if kind == "number" else 1)
        if "minimum" in schema:
            value = max(value, schema["minimum"])
        if "maximum" in schema:
            value = min(value, schema["maximum"])
        return int(value) if kind == "integer" else value
    if kind == "boolean":
        return False
    if kind == "null":
        return None
    if schema.get("format") == "date-time":
        return "2026-01-01T00:00:00Z"
    if schema.get("format") == "date":
        return "2026-01-01"
    return f"fake {key or 'text'}"


def default_search(text: str, count: int = 3) -> WebSearch:
    """A deterministic search for `text`: `count` results on example.org."""
    query = " ".join(text.split())[:80] or "news"
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:8]
    results = [SearchResult(url=f"https://example.org/{digest}/{n}", title=f"Result {n} for {query[:40]}",
                            text=f"Reported fact {n} about {query[:60]}.", page_age=f"{n} days ago")
               for n in range(1, count + 1)]
    return WebSearch(query=query, results=results)


def _has_web_search(request: Mapping[str, Any]) -> bool:
    return any(t.get("type") in WEB_SEARCH_TOOLS for t in request.get("tools") or [])


def default_responder(request: dict[str, Any]) -> Reply:
    """The schema's shape (or {"probability": p}) with p = hashed_probability(last user message); one search
    when a web search tool is offered."""
    text = last_user_text(request)
    p = hashed_probability(text)
    schema = _schema_of(request)
    value = example_for_schema(schema, p) if schema else {"probability": p}
    searches = (default_search(text),) if _has_web_search(request) else ()
    return Reply.json_object(value, searches=searches)


# Responder-level faults and helpers: each returns a responder.

def fixed(reply: ReplyLike) -> Responder:
    """Always the same answer."""
    return lambda request: reply


def sequence(*replies: ReplyLike) -> Responder:
    """Successive answers; the last one repeats (e.g. invalid once, then valid)."""
    remaining = list(replies)

    def responder(request: dict[str, Any]) -> ReplyLike:
        return remaining.pop(0) if len(remaining) > 1 else remaining[0]
    return responder


def patched(*, set_fields: Mapping[str, Any] | None = None, drop: Iterable[str] = (),
            base: Responder = default_responder) -> Responder:
    """The base answer with fields replaced or added (`set_fields`) and removed (`drop`): out-of-range values,
    missing fields, extra fields."""
    dropped = tuple(drop)

    async def responder(request: dict[str, Any]) -> Reply:
        reply = await _call(base, request)
        if not reply.is_json or not isinstance(reply.json_value, Mapping):
            return reply
        value = {k: v for k, v in reply.json_value.items() if k not in dropped}
        value.update(set_fields or {})
        return replace(reply, json_value=value)
    return responder


def out_of_range(probability: float, base: Responder = default_responder) -> Responder:
    return patched(set_fields={"probability": probability}, base=base)


def missing_fields(*names: str, base: Responder = default_responder) -> Responder:
    return patched(drop=names, base=base)


def extra_fields(base: Responder = default_responder, **fields: Any) -> Responder:
    return patched(set_fields=fields, base=base)


def invalid_json(text: str = '{"probability": 0.62, "confidence": 0.4, "reasoning": "cut sh') -> Responder:
    return fixed(Reply.raw_text(text))


async def _call(responder: Responder, request: dict[str, Any]) -> Reply:
    value = responder(request)
    if inspect.isawaitable(value):
        value = await value
    return as_reply(value)  # type: ignore[arg-type]


# --- validation ------------------------------------------------------------------------------------------------

def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_cache_control(value: Any, where: str) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise _invalid(f"{where}: Input should be a valid dictionary")
    extra = set(value) - {"type", "ttl"}
    if extra:
        raise _invalid(f"{where}.{min(extra)}: Extra inputs are not permitted")
    if value.get("type") != "ephemeral":
        raise _invalid(f"{where}.type: Input should be 'ephemeral'")
    if "ttl" in value and value["ttl"] not in CACHE_TTL_SECONDS:
        raise _invalid(f"{where}.ttl: Input should be '5m' or '1h'")
    return dict(value)


def _check_text_block(block: Any, where: str) -> None:
    if not isinstance(block, Mapping):
        raise _invalid(f"{where}: Input should be a valid dictionary")
    if block.get("type") != "text":
        raise _invalid(f"{where}.type: Input should be 'text'")
    if not isinstance(block.get("text"), str):
        raise _invalid(f"{where}.text: Field required" if "text" not in block else
                       f"{where}.text: Input should be a valid string")
    if not block["text"]:
        raise _invalid(f"{where}: text content blocks must be non-empty")
    _check_cache_control(block.get("cache_control"), f"{where}.cache_control")


USER_BLOCKS = {"text", "image", "document", "search_result", "tool_result", "container_upload"}
ASSISTANT_BLOCKS = {"text", "thinking", "redacted_thinking", "tool_use", "server_tool_use",
                    "web_search_tool_result", "web_fetch_tool_result", "code_execution_tool_result",
                    "bash_code_execution_tool_result", "text_editor_code_execution_tool_result",
                    "tool_search_tool_result", "container_upload"}


def _check_messages(messages: Any) -> None:
    if not isinstance(messages, list):
        raise _invalid("messages: Input should be a valid list")
    if not messages:
        raise _invalid("messages: at least one message is required")
    pending_tool_uses: list[str] = []
    for i, message in enumerate(messages):
        where = f"messages.{i}"
        if not isinstance(message, Mapping):
            raise _invalid(f"{where}: Input should be a valid dictionary")
        extra = set(message) - {"role", "content"}
        if extra:
            raise _invalid(f"{where}.{min(extra)}: Extra inputs are not permitted")
        role = message.get("role")
        if role not in ("user", "assistant", "system"):
            raise _invalid(f"{where}.role: Input should be 'user', 'assistant' or 'system'")
        if "content" not in message:
            raise _invalid(f"{where}.content: Field required")
        content = message["content"]
        last = i == len(messages) - 1
        if isinstance(content, str):
            blocks: list[Any] = [{"type": "text", "text": content}] if content else []
        elif isinstance(content, list):
            blocks = content
        else:
            raise _invalid(f"{where}.content: Input should be a valid string or a valid list")
        if not blocks and not (last and role == "assistant"):
            raise _invalid("messages: all messages must have non-empty content except for the optional final "
                           "assistant message")
        allowed = {"user": USER_BLOCKS, "assistant": ASSISTANT_BLOCKS, "system": {"text"}}[role]
        result_ids: set[str] = set()
        for j, block in enumerate(blocks):
            bwhere = f"{where}.content.{j}"
            if not isinstance(block, Mapping):
                raise _invalid(f"{bwhere}: Input should be a valid dictionary")
            kind = block.get("type")
            if kind not in allowed:
                raise _invalid(f"{bwhere}.type: Input tag '{kind}' found using 'type' does not match any of the "
                               f"expected tags: {', '.join(sorted(allowed))}")
            if kind == "text" and isinstance(message["content"], list):
                _check_text_block(block, bwhere)
            _check_cache_control(block.get("cache_control"), f"{bwhere}.cache_control")
            if kind == "tool_use":
                if not isinstance(block.get("id"), str) or not isinstance(block.get("name"), str):
                    raise _invalid(f"{bwhere}: tool_use blocks need an id and a name")
                if not isinstance(block.get("input"), Mapping):
                    raise _invalid(f"{bwhere}.input: Input should be a valid dictionary")
            if kind == "tool_result":
                if not isinstance(block.get("tool_use_id"), str):
                    raise _invalid(f"{bwhere}.tool_use_id: Field required")
                if block["tool_use_id"] not in pending_tool_uses:
                    raise _invalid(f"{bwhere}: unexpected `tool_use_id` found in `tool_result` blocks: "
                                   f"{block['tool_use_id']}. Each `tool_result` block must have a corresponding "
                                   "`tool_use` block in the previous message.")
                result_ids.add(block["tool_use_id"])
        if pending_tool_uses:
            missing = [tid for tid in pending_tool_uses if tid not in result_ids]
            if role != "user" or missing:
                raise _invalid(f"{where}: `tool_use` ids were found without `tool_result` blocks immediately "
                               f"after: {', '.join(missing or pending_tool_uses)}. Each `tool_use` block must have "
                               "a corresponding `tool_result` block in the next message.")
        # tool_use ids the next message must answer (a final assistant message is a prefill: nothing follows)
        pending_tool_uses = [b["id"] for b in blocks if role == "assistant" and b.get("type") == "tool_use"]
    conversation = [m for m in messages if m.get("role") != "system"]
    if conversation and conversation[0].get("role") != "user":
        raise _invalid('messages: first message must use the "user" role')


def _check_system(system: Any) -> None:
    if system is None or isinstance(system, str):
        return
    if not isinstance(system, list):
        raise _invalid("system: Input should be a valid string or a valid list")
    for i, block in enumerate(system):
        _check_text_block(block, f"system.{i}")


def _check_tools(tools: Any, tool_choice: Any, thinking: Any) -> None:
    names: list[str] = []
    if tools is not None:
        if not isinstance(tools, list):
            raise _invalid("tools: Input should be a valid list")
        for i, tool in enumerate(tools):
            where = f"tools.{i}"
            if not isinstance(tool, Mapping):
                raise _invalid(f"{where}: Input should be a valid dictionary")
            kind = tool.get("type")
            _check_cache_control(tool.get("cache_control"), f"{where}.cache_control")
            if kind in (None, "custom"):
                name = tool.get("name")
                if not isinstance(name, str):
                    raise _invalid(f"{where}.custom.name: Field required")
                if not TOOL_NAME.match(name):
                    raise _invalid(f"{where}.custom.name: String should match pattern '{TOOL_NAME.pattern}'")
                schema = tool.get("input_schema")
                if not isinstance(schema, Mapping):
                    raise _invalid(f"{where}.custom.input_schema: Field required")
                if schema.get("type") != "object":
                    raise _invalid(f"{where}.custom.input_schema.type: Input should be 'object'")
            elif kind in SERVER_TOOLS:
                required = SERVER_TOOLS[kind]
                name = tool.get("name", required)
                if required is not None and name != required:
                    raise _invalid(f"{where}.{kind}.name: Input should be '{required}'")
                if kind in WEB_SEARCH_TOOLS:
                    max_uses = tool.get("max_uses")
                    if max_uses is not None and (not _is_int(max_uses) or max_uses < 1):
                        raise _invalid(f"{where}.{kind}.max_uses: Input should be greater than 0")
                    if tool.get("allowed_domains") and tool.get("blocked_domains"):
                        raise _invalid(f"{where}.{kind}: Cannot specify both allowed_domains and blocked_domains")
            else:
                raise _invalid(f"{where}: Input tag '{kind}' found using 'type' does not match any of the expected "
                               f"tags: 'custom', {', '.join(repr(t) for t in SERVER_TOOLS)}")
            if isinstance(name, str):
                names.append(name)
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise _invalid(f"tools: Tool names must be unique. Found duplicate: {duplicates[0]}")
    if tool_choice is None:
        return
    if not isinstance(tool_choice, Mapping):
        raise _invalid("tool_choice: Input should be a valid dictionary")
    kind = tool_choice.get("type")
    if kind not in ("auto", "any", "tool", "none"):
        raise _invalid(f"tool_choice: Input tag '{kind}' found using 'type' does not match any of the expected "
                       "tags: 'auto', 'any', 'tool', 'none'")
    if kind in ("any", "tool") and not names:
        raise _invalid("tool_choice: tool_choice may only be specified while providing tools.")
    if kind == "tool":
        name = tool_choice.get("name")
        if not isinstance(name, str):
            raise _invalid("tool_choice.tool.name: Field required")
        if name not in names:
            raise _invalid(f"tool_choice.tool.name: Tool '{name}' not found in tools")
    if kind in ("any", "tool") and isinstance(thinking, Mapping) and thinking.get("type") in ("enabled", "adaptive"):
        raise _invalid("Thinking may not be enabled when tool_choice forces tool use.")


def _check_schema_node(node: Any, where: str) -> None:
    if isinstance(node, list):
        for i, item in enumerate(node):
            _check_schema_node(item, f"{where}.{i}")
        return
    if not isinstance(node, Mapping):
        return
    if node.get("type") == "object" and node.get("additionalProperties") is not False:
        raise _invalid(f"output_config.format.schema: For 'object' type, 'additionalProperties' must be explicitly "
                       f"set to false (at {where or 'root'})")
    for key in ("properties", "$defs", "definitions"):
        for name, sub in (node.get(key) or {}).items():
            _check_schema_node(sub, f"{where}.{key}.{name}".lstrip("."))
    for key in ("items", "anyOf", "oneOf", "allOf"):
        if key in node:
            _check_schema_node(node[key], f"{where}.{key}".lstrip("."))


def _check_output_config(config: Any) -> None:
    if config is None:
        return
    if not isinstance(config, Mapping):
        raise _invalid("output_config: Input should be a valid dictionary")
    extra = set(config) - {"effort", "format"}
    if extra:
        raise _invalid(f"output_config.{min(extra)}: Extra inputs are not permitted")
    if config.get("effort") not in (None, "low", "medium", "high", "xhigh", "max"):
        raise _invalid("output_config.effort: Input should be 'low', 'medium', 'high', 'xhigh' or 'max'")
    fmt = config.get("format")
    if fmt is None:
        return
    if not isinstance(fmt, Mapping):
        raise _invalid("output_config.format: Input should be a valid dictionary")
    extra = set(fmt) - {"type", "schema"}
    if extra:
        raise _invalid(f"output_config.format.{min(extra)}: Extra inputs are not permitted")
    if fmt.get("type") != "json_schema":
        raise _invalid("output_config.format.type: Input should be 'json_schema'")
    schema = fmt.get("schema")
    if not isinstance(schema, Mapping):
        raise _invalid("output_config.format.schema: Field required" if "schema" not in fmt else
                       "output_config.format.schema: Input should be a valid dictionary")
    root: Any = schema
    if "$ref" in schema:  # a root $ref (pydantic RootModel) must resolve to an object in $defs
        root = (schema.get("$defs") or {}).get(str(schema["$ref"]).rsplit("/", 1)[-1], {})
    if not (isinstance(root, Mapping) and root.get("type") == "object"):
        raise _invalid("output_config.format.schema: the schema's root must be of type 'object'")
    _check_schema_node(schema, "")


def _check_thinking(thinking: Any, max_tokens: int | None) -> None:
    if thinking is None:
        return
    if not isinstance(thinking, Mapping):
        raise _invalid("thinking: Input should be a valid dictionary")
    kind = thinking.get("type")
    if kind not in ("enabled", "disabled", "adaptive", "between_tools"):
        raise _invalid(f"thinking: Input tag '{kind}' found using 'type' does not match any of the expected tags: "
                       "'enabled', 'disabled', 'adaptive', 'between_tools'")
    if kind == "enabled":
        budget = thinking.get("budget_tokens")
        if not _is_int(budget):
            raise _invalid("thinking.enabled.budget_tokens: Field required")
        if budget < 1024:
            raise _invalid("thinking.enabled.budget_tokens: Input should be greater than or equal to 1024")
        if max_tokens is not None and budget >= max_tokens:
            raise _invalid("`max_tokens` must be greater than `thinking.budget_tokens`")


def validate_request(body: Any, models: Mapping[str, ModelSpec], *, count_only: bool = False) -> ModelSpec:
    """Refuse what the real API refuses (400 invalid_request_error, 404 for an unknown model)."""
    if not isinstance(body, Mapping):
        raise _invalid("Input should be a valid dictionary")
    allowed = COUNT_TOKENS_FIELDS if count_only else MESSAGE_FIELDS
    extra = sorted(set(body) - allowed)
    if extra:
        raise _invalid(f"{extra[0]}: Extra inputs are not permitted")
    for name in ("model", "messages") if count_only else ("model", "max_tokens", "messages"):
        if name not in body:
            raise _invalid(f"{name}: Field required")
    model = body["model"]
    if not isinstance(model, str):
        raise _invalid("model: Input should be a valid string")
    max_tokens = body.get("max_tokens")
    if not count_only:
        if not _is_int(max_tokens):
            raise _invalid("max_tokens: Input should be a valid integer")
        if max_tokens < 0:
            raise _invalid("max_tokens: Input should be greater than or equal to 0")
    _check_messages(body["messages"])
    _check_system(body.get("system"))
    _check_tools(body.get("tools"), body.get("tool_choice"), body.get("thinking"))
    _check_output_config(body.get("output_config"))
    _check_thinking(body.get("thinking"), max_tokens)
    _check_cache_control(body.get("cache_control"), "cache_control")
    stops = body.get("stop_sequences")
    if stops is not None and not (isinstance(stops, list) and all(isinstance(s, str) for s in stops)):
        raise _invalid("stop_sequences: Input should be a valid list of strings")
    if body.get("service_tier") not in (None, "auto", "standard_only"):
        raise _invalid("service_tier: Input should be 'auto' or 'standard_only'")
    if body.get("speed") not in (None, "standard", "fast"):
        raise _invalid("speed: Input should be 'standard' or 'fast'")
    metadata = body.get("metadata")
    if metadata is not None and (not isinstance(metadata, Mapping) or set(metadata) - {"user_id"}):
        raise _invalid("metadata: only `user_id` is permitted")
    if body.get("stream"):
        raise _invalid("stream: the fake Anthropic API does not implement streaming (test fake limitation)")
    spec = models.get(model)
    if spec is None:
        raise ApiError(404, f"model: {model}", "not_found_error")
    if not count_only and max_tokens > spec.max_output_tokens:
        raise _invalid(f"max_tokens: {max_tokens} > {spec.max_output_tokens}, which is the maximum allowed number "
                       f"of output tokens for {model}")
    breakpoints = _count_breakpoints(body)
    if breakpoints > MAX_CACHE_BREAKPOINTS:
        raise _invalid(f"A maximum of {MAX_CACHE_BREAKPOINTS} blocks with cache_control may be provided. "
                       f"Found {breakpoints}.")
    return spec


# --- tokens and the prompt cache -------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Unit:
    canonical: str  # what the cache key hashes
    tokens: int
    cache_control: Mapping[str, Any] | None


def _block_tokens(block: Mapping[str, Any]) -> int:
    kind = block.get("type")
    if kind == "text":
        return tokens(str(block.get("text", "")))
    if kind in ("image", "document"):
        return 1600  # a flat estimate; the fake does not decode media
    if kind == "tool_use":
        return tokens(str(block.get("name", "")) + _dumps(block.get("input", {})))
    if kind == "tool_result":
        return tokens(_text_of(block.get("content", "")))
    stripped = {k: v for k, v in block.items() if k != "cache_control"}
    return tokens(_dumps(stripped))


def prompt_units(body: Mapping[str, Any]) -> list[_Unit]:
    """Blocks in cache order (tools, system, messages), each with its tokens and its cache_control."""
    units: list[_Unit] = []
    for tool in body.get("tools") or []:
        stripped = {k: v for k, v in tool.items() if k != "cache_control"}
        units.append(_Unit("tool:" + _dumps(stripped), tokens(_dumps(stripped)), tool.get("cache_control")))
    system = body.get("system")
    blocks: list[Mapping[str, Any]] = [{"type": "text", "text": system}] if isinstance(system, str) and system \
        else list(system or [])
    for block in blocks:
        stripped = {k: v for k, v in block.items() if k != "cache_control"}
        units.append(_Unit("system:" + _dumps(stripped), _block_tokens(block), block.get("cache_control")))
    for i, message in enumerate(body.get("messages") or []):
        content = message.get("content")
        mblocks = [{"type": "text", "text": content}] if isinstance(content, str) else list(content or [])
        for block in mblocks:
            stripped = {k: v for k, v in block.items() if k != "cache_control"}
            units.append(_Unit(f"{i}:{message.get('role')}:" + _dumps(stripped), _block_tokens(block),
                               block.get("cache_control")))
    top = body.get("cache_control")
    if top and units and not units[-1].cache_control:  # automatic: on the last cacheable block
        units[-1] = replace(units[-1], cache_control=top)
    return units


def _count_breakpoints(body: Mapping[str, Any]) -> int:
    return sum(1 for unit in prompt_units(body) if unit.cache_control)


@dataclass
class CacheUsage:
    input_tokens: int
    cache_read_input_tokens: int
    cache_creation_5m: int
    cache_creation_1h: int

    @property
    def cache_creation_input_tokens(self) -> int:
        return self.cache_creation_5m + self.cache_creation_1h


class PromptCache:
    """Prefix entries keyed by model and the exact blocks up to a breakpoint, each living for its TTL after its
    last write or read."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.entries: dict[str, tuple[float, float]] = {}  # key -> (expires_at, ttl)

    def account(self, model: str, units: Sequence[_Unit], min_tokens: int, *, commit: bool = True) -> CacheUsage:
        now = self.clock()
        self.entries = {k: v for k, v in self.entries.items() if v[0] > now}
        keys: list[str] = []
        prefix_tokens: list[int] = []
        h = hashlib.sha256(model.encode("utf-8"))
        total = 0
        for unit in units:
            h.update(b"\x00" + unit.canonical.encode("utf-8"))
            keys.append(h.hexdigest())
            total += unit.tokens
            prefix_tokens.append(total)
        breakpoints = [i for i, unit in enumerate(units) if unit.cache_control]
        hit = -1
        for b in breakpoints:
            for j in range(b, max(-1, b - CACHE_LOOKBACK_BLOCKS), -1):
                if keys[j] in self.entries:
                    hit = max(hit, j)
                    break
        read = prefix_tokens[hit] if hit >= 0 else 0
        creation = {"5m": 0, "1h": 0}
        boundary = read
        writes: list[tuple[str, float]] = []
        for b in breakpoints:
            if b <= hit or prefix_tokens[b] < min_tokens:
                continue
            ttl = str((units[b].cache_control or {}).get("ttl", "5m"))
            creation[ttl] += prefix_tokens[b] - boundary
            boundary = prefix_tokens[b]
            writes.append((keys[b], CACHE_TTL_SECONDS[ttl]))
        if commit:
            if hit >= 0:
                _, ttl_seconds = self.entries[keys[hit]]
                self.entries[keys[hit]] = (now + ttl_seconds, ttl_seconds)
            for key, ttl_seconds in writes:
                self.entries[key] = (now + ttl_seconds, ttl_seconds)
        return CacheUsage(input_tokens=total - boundary, cache_read_input_tokens=read,
                          cache_creation_5m=creation["5m"], cache_creation_1h=creation["1h"])


@dataclass
class TokenTotals:
    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0
    web_search_requests: int = 0

    def add(self, usage: Mapping[str, Any]) -> None:
        self.calls += 1
        self.input_tokens += usage["input_tokens"]
        self.output_tokens += usage["output_tokens"]
        self.cache_creation_input_tokens += usage.get("cache_creation_input_tokens") or 0
        self.cache_read_input_tokens += usage.get("cache_read_input_tokens") or 0
        self.web_search_requests += ((usage.get("server_tool_use") or {}).get("web_search_requests") or 0)


# --- batches ---------------------------------------------------------------------------------------------------

@dataclass
class Batch:
    id: str
    requests: list[dict[str, Any]]  # [{custom_id, params}]
    created_at: datetime
    status: str = "in_progress"
    polls: int = 0
    ended_at: datetime | None = None
    cancel_initiated_at: datetime | None = None
    results: list[dict[str, Any]] = field(default_factory=list)


# --- the server ------------------------------------------------------------------------------------------------

class FakeAnthropic(ServedFake):
    """`async with FakeAnthropic() as fake:` then `AsyncAnthropic(base_url=fake.url, api_key=fake.api_key)`."""

    def __init__(self, *, api_key: str = "sk-ant-fake-key", models: Mapping[str, ModelSpec] | None = None,
                 responder: Responder = default_responder, batch_polls_to_end: int = 1,
                 clock: Callable[[], float] = time.monotonic, hang_seconds: float = 30.0, latency: float = 0.0) -> None:
        self.api_key = api_key
        self.models: dict[str, ModelSpec] = dict(DEFAULT_MODELS if models is None else models)
        self.responder: Responder = responder
        self.batch_polls_to_end = batch_polls_to_end  # the batch reports `ended` on this GET of it
        self.expire_custom_ids: set[str] = set()  # batch requests that end `expired` instead of being run
        self.cache = PromptCache(clock)
        self.message_calls = 0  # successful POST /v1/messages
        self.usage_by_model: dict[str, TokenTotals] = {}
        self.batch_usage_by_model: dict[str, TokenTotals] = {}
        self.batches: dict[str, Batch] = {}
        app = web.Application(middlewares=[self._outer], client_max_size=32 * 1024 * 1024)
        app.router.add_post("/v1/messages", self._messages)
        app.router.add_post("/v1/messages/count_tokens", self._count_tokens)
        app.router.add_post("/v1/messages/batches", self._batch_create)
        app.router.add_get("/v1/messages/batches", self._batch_list)
        app.router.add_get("/v1/messages/batches/{batch_id}", self._batch_retrieve)
        app.router.add_delete("/v1/messages/batches/{batch_id}", self._batch_delete)
        app.router.add_post("/v1/messages/batches/{batch_id}/cancel", self._batch_cancel)
        app.router.add_get("/v1/messages/batches/{batch_id}/results", self._batch_results)
        app.router.add_get("/v1/models", self._models_list)
        app.router.add_get("/v1/models/{model_id}", self._model_retrieve)
        self.server = LoopbackServer(app, error_body=error_body, hang_seconds=hang_seconds, latency=latency)


    @property
    def message_bodies(self) -> list[Any]:
        """Every body POSTed to /v1/messages, in order, faults and refusals included."""
        return [r.json() for r in self.server.requests if r.method == "POST" and r.path == "/v1/messages"]

    def totals(self, model: str) -> TokenTotals:
        return self.usage_by_model.get(model, TokenTotals())

    # -- plumbing --

    @web.middleware
    async def _outer(self, request: web.Request, handler: Callable[..., Any]) -> web.StreamResponse:
        request_id = new_id("req_")
        token = _REQUEST_ID.set(request_id)
        try:
            try:
                response = await handler(request)
            except ApiError as exc:
                response = web.json_response(exc.body(), status=exc.status)
            except web.HTTPException as exc:
                if exc.status < 400:
                    raise
                response = web.json_response(error_body(exc.status), status=exc.status)
            if "request-id" not in response.headers:
                response.headers["request-id"] = request_id
            return response
        finally:
            _REQUEST_ID.reset(token)

    def _authenticate(self, request: web.Request) -> None:
        key = request.headers.get("x-api-key")
        bearer = request.headers.get("authorization", "")
        if key is None and bearer.lower().startswith("bearer "):
            key = bearer[7:].strip()
        if key is None:
            raise ApiError(401, "x-api-key header is required", "authentication_error")
        if key != self.api_key:
            raise ApiError(401, "invalid x-api-key", "authentication_error")
        version = request.headers.get("anthropic-version")
        if version is None:
            raise _invalid("anthropic-version: header is required")
        if version not in API_VERSIONS:
            raise _invalid(f"anthropic-version: invalid version {version!r}")

    async def _json_body(self, request: web.Request) -> Any:
        raw = await request.read()
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise _invalid(f"There was an issue with your request body: invalid JSON ({exc})") from None

    # -- messages --

    async def _messages(self, request: web.Request) -> web.Response:
        self._authenticate(request)
        body = await self._json_body(request)
        message = await self.create_message(body, tier="standard")
        return web.json_response(message)

    async def _count_tokens(self, request: web.Request) -> web.Response:
        self._authenticate(request)
        body = await self._json_body(request)
        validate_request(body, self.models, count_only=True)
        return web.json_response({"input_tokens": sum(u.tokens for u in prompt_units(body))})

    async def create_message(self, body: Any, *, tier: str) -> dict[str, Any]:
        """Validate, ask the responder, account usage; the Message dict, or ApiError."""
        spec = validate_request(body, self.models)
        model, max_tokens = body["model"], body["max_tokens"]
        prompt_tokens = sum(unit.tokens for unit in prompt_units(body))
        if prompt_tokens > spec.context_window:  # the real API's wording and type (a 400, nothing generated)
            raise _invalid(f"prompt is too long: {prompt_tokens} tokens > {spec.context_window} maximum")
        reply = await _call(self.responder, body) if max_tokens > 0 else Reply.raw_text("")
        if reply.error is not None:
            raise reply.error
        content, stop_reason, searches_made, search_tokens = self._render(body, reply)
        output_tokens = sum(_output_tokens(block) for block in content)
        if max_tokens == 0:  # pre-warming the cache: no output at all
            content, stop_reason, output_tokens = [], "max_tokens", 0
        elif output_tokens > max_tokens:
            content, output_tokens = _truncate(content, max_tokens), max_tokens
            stop_reason = "max_tokens"
        else:
            output_tokens = max(output_tokens, 1)
        cache = self.cache.account(model, prompt_units(body), spec.cache_min_tokens)
        usage: dict[str, Any] = {
            "input_tokens": cache.input_tokens + search_tokens,
            "output_tokens": output_tokens,
            "cache_creation_input_tokens": cache.cache_creation_input_tokens,
            "cache_read_input_tokens": cache.cache_read_input_tokens,
            "cache_creation": {"ephemeral_5m_input_tokens": cache.cache_creation_5m,
                               "ephemeral_1h_input_tokens": cache.cache_creation_1h},
            "server_tool_use": ({"web_search_requests": searches_made, "web_fetch_requests": 0}
                                if searches_made else None),
            "service_tier": tier,
        }
        totals = self.batch_usage_by_model if tier == "batch" else self.usage_by_model
        totals.setdefault(model, TokenTotals()).add(usage)
        if tier != "batch":
            self.message_calls += 1
        return {
            "id": new_id("msg_"),
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": content,
            "stop_reason": stop_reason,
            "stop_sequence": None,
            "stop_details": None,
            "container": None,
            "usage": usage,
        }

    def _render(self, body: Mapping[str, Any], reply: Reply) -> tuple[list[dict[str, Any]], str, int, int]:
        """Content blocks, stop reason, searches made, input tokens the search results add."""
        choice = body.get("tool_choice") or {}
        tools = body.get("tools") or []
        custom_names = [t.get("name") for t in tools if t.get("type") in (None, "custom")]
        forced_name = choice.get("name") if choice.get("type") == "tool" else next(iter(custom_names), None)
        # Forcing a custom tool means the model calls it at once: no search, no prose. (Forcing web_search by
        # name just makes the search happen.)
        forced = choice.get("type") in ("any", "tool") and forced_name in custom_names
        structured = bool((body.get("output_config") or {}).get("format"))
        search_tool = next((t for t in tools if t.get("type") in WEB_SEARCH_TOOLS), None)
        content: list[dict[str, Any]] = []
        searches_made = search_tokens = 0
        cited: list[SearchResult] = []
        if search_tool is not None and not forced and choice.get("type") != "none":
            max_uses = search_tool.get("max_uses")
            for search in reply.searches:
                tool_use_id = new_id("srvtoolu_")
                content.append({"type": "server_tool_use", "id": tool_use_id, "name": "web_search",
                                "input": {"query": search.query}})
                if search.error_code is None and max_uses is not None and searches_made >= max_uses:
                    result: Any = {"type": "web_search_tool_result_error", "error_code": "max_uses_exceeded"}
                elif search.error_code is not None:
                    result = {"type": "web_search_tool_result_error", "error_code": search.error_code}
                else:
                    searches_made += 1
                    result = [{"type": "web_search_result", "url": r.url, "title": r.title,
                               "encrypted_content": _encrypt(r.url, r.text), "page_age": r.page_age}
                              for r in search.results]
                    search_tokens += tokens(_dumps(result)) + sum(tokens(r.text) for r in search.results)
                    cited.extend(r for r in search.results if r.text)
                content.append({"type": "web_search_tool_result", "tool_use_id": tool_use_id, "content": result})
        if cited and not structured:  # structured outputs keep the answer pure JSON: no cited prose
            for source in cited[:2]:
                content.append({"type": "text", "text": source.text, "citations": [{
                    "type": "web_search_result_location", "url": source.url, "title": source.title,
                    "encrypted_index": _encrypt(source.url), "cited_text": source.text[:150]}]})
        if reply.tool_name is not None:
            content.append({"type": "tool_use", "id": new_id("toolu_"), "name": reply.tool_name,
                            "input": dict(reply.tool_input or {})})
            return content, reply.stop_reason or "tool_use", searches_made, search_tokens
        if reply.is_json and forced and forced_name and isinstance(reply.json_value, Mapping):
            content.append({"type": "tool_use", "id": new_id("toolu_"), "name": forced_name,
                            "input": dict(reply.json_value)})
            return content, reply.stop_reason or "tool_use", searches_made, search_tokens
        text = json.dumps(reply.json_value) if reply.is_json else (reply.text or "")
        if text:
            content.append({"type": "text", "text": text})
        return content, reply.stop_reason or "end_turn", searches_made, search_tokens

    # -- batches --

    async def _batch_create(self, request: web.Request) -> web.Response:
        self._authenticate(request)
        body = await self._json_body(request)
        if not isinstance(body, Mapping):
            raise _invalid("Input should be a valid dictionary")
        extra = sorted(set(body) - {"requests"})
        if extra:
            raise _invalid(f"{extra[0]}: Extra inputs are not permitted")
        items = body.get("requests")
        if not isinstance(items, list):
            raise _invalid("requests: Field required" if "requests" not in body else
                           "requests: Input should be a valid list")
        if not items:
            raise _invalid("requests: List should have at least 1 item after validation, not 0")
        if len(items) > MAX_BATCH_REQUESTS:
            raise _invalid(f"requests: List should have at most {MAX_BATCH_REQUESTS} items after validation")
        seen: set[str] = set()
        for i, item in enumerate(items):
            where = f"requests.{i}"
            if not isinstance(item, Mapping):
                raise _invalid(f"{where}: Input should be a valid dictionary")
            extra = sorted(set(item) - {"custom_id", "params"})
            if extra:
                raise _invalid(f"{where}.{extra[0]}: Extra inputs are not permitted")
            custom_id = item.get("custom_id")
            if not isinstance(custom_id, str):
                raise _invalid(f"{where}.custom_id: Field required")
            if not CUSTOM_ID.match(custom_id):
                raise _invalid(f"{where}.custom_id: String should match pattern '{CUSTOM_ID.pattern}'")
            if custom_id in seen:
                raise _invalid(f"Found duplicate custom_id: {custom_id}. Each request in a batch must have a unique "
                               "custom_id.")
            seen.add(custom_id)
            if not isinstance(item.get("params"), Mapping):
                raise _invalid(f"{where}.params: Field required")
        # Like the real API, the params themselves are validated while the batch runs: a bad one ends `errored`.
        batch = Batch(id=new_id("msgbatch_"), requests=[dict(item) for item in items],
                      created_at=datetime.now(UTC))
        self.batches[batch.id] = batch
        return web.json_response(self._batch_json(batch, request))

    def _batch(self, batch_id: str) -> Batch:
        batch = self.batches.get(batch_id)
        if batch is None:
            raise ApiError(404, f"message_batch_id: no batch {batch_id!r}", "not_found_error")
        return batch

    async def _batch_retrieve(self, request: web.Request) -> web.Response:
        self._authenticate(request)
        batch = self._batch(request.match_info["batch_id"])
        batch.polls += 1
        if batch.status == "canceling" or (batch.status == "in_progress"
                                            and batch.polls >= self.batch_polls_to_end):
            await self._finish(batch)
        return web.json_response(self._batch_json(batch, request))

    async def _finish(self, batch: Batch) -> None:
        results: list[dict[str, Any]] = []
        for item in batch.requests:
            custom_id = item["custom_id"]
            if batch.status == "canceling":
                result: dict[str, Any] = {"type": "canceled"}
            elif custom_id in self.expire_custom_ids:
                result = {"type": "expired"}
            else:
                token = _REQUEST_ID.set(new_id("req_"))
                try:
                    result = {"type": "succeeded", "message": await self.create_message(item["params"], tier="batch")}
                except ApiError as exc:
                    result = {"type": "errored", "error": exc.body()}
                finally:
                    _REQUEST_ID.reset(token)
            results.append({"custom_id": custom_id, "result": result})
        batch.results = results
        batch.status = "ended"
        batch.ended_at = datetime.now(UTC)

    def _batch_json(self, batch: Batch, request: web.Request) -> dict[str, Any]:
        counts = {"processing": 0, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0}
        if batch.status == "ended":
            for line in batch.results:
                counts[line["result"]["type"]] += 1
        else:
            counts["processing"] = len(batch.requests)
        ended = batch.status == "ended"
        base = f"{request.scheme}://{request.host}"
        return {
            "id": batch.id,
            "type": "message_batch",
            "processing_status": batch.status,
            "request_counts": counts,
            "created_at": _rfc3339(batch.created_at),
            "expires_at": _rfc3339(batch.created_at + BATCH_LIFETIME),
            "ended_at": _rfc3339(batch.ended_at),
            "archived_at": None,
            "cancel_initiated_at": _rfc3339(batch.cancel_initiated_at),
            "results_url": f"{base}/v1/messages/batches/{batch.id}/results" if ended else None,
        }

    async def _batch_results(self, request: web.Request) -> web.Response:
        self._authenticate(request)
        batch = self._batch(request.match_info["batch_id"])
        if batch.status != "ended":
            raise ApiError(404, f"Results for message batch {batch.id} are not available until it has ended.",
                           "not_found_error")
        text = "".join(json.dumps(line) + "\n" for line in batch.results)
        return web.Response(text=text, content_type="application/x-jsonl")

    async def _batch_cancel(self, request: web.Request) -> web.Response:
        self._authenticate(request)
        batch = self._batch(request.match_info["batch_id"])
        if batch.status == "ended":
            raise _invalid(f"Message batch {batch.id} has already ended and cannot be canceled.")
        if batch.status == "in_progress":
            batch.status = "canceling"
            batch.cancel_initiated_at = datetime.now(UTC)
        return web.json_response(self._batch_json(batch, request))

    async def _batch_delete(self, request: web.Request) -> web.Response:
        self._authenticate(request)
        batch = self._batch(request.match_info["batch_id"])
        if batch.status != "ended":
            raise _invalid(f"Message batch {batch.id} is still processing; cancel it before deleting it.")
        del self.batches[batch.id]
        return web.json_response({"id": batch.id, "type": "message_batch_deleted"})

    async def _batch_list(self, request: web.Request) -> web.Response:
        self._authenticate(request)
        data = [self._batch_json(b, request) for b in sorted(self.batches.values(), key=lambda b: b.created_at,
                                                              reverse=True)]
        return web.json_response({"data": data, "has_more": False, "first_id": data[0]["id"] if data else None,
                                  "last_id": data[-1]["id"] if data else None})

    # -- models --

    def _model_json(self, model: str) -> dict[str, Any]:
        spec = self.models[model]
        return {"type": "model", "id": model, "display_name": spec.display_name or model,
                "created_at": "2025-01-01T00:00:00Z", "lifecycle": "active", "max_tokens": spec.max_output_tokens,
                "max_input_tokens": spec.context_window}

    async def _models_list(self, request: web.Request) -> web.Response:
        self._authenticate(request)
        data = [self._model_json(m) for m in self.models]
        return web.json_response({"data": data, "has_more": False, "first_id": data[0]["id"] if data else None,
                                  "last_id": data[-1]["id"] if data else None})

    async def _model_retrieve(self, request: web.Request) -> web.Response:
        self._authenticate(request)
        model = request.match_info["model_id"]
        if model not in self.models:
            raise ApiError(404, f"model: {model}", "not_found_error")
        return web.json_response(self._model_json(model))


def _encrypt(*parts: str) -> str:
    """Stands in for the opaque encrypted_content / encrypted_index strings."""
    return base64.b64encode("\x1f".join(parts).encode("utf-8")).decode("ascii")


def _output_tokens(block: Mapping[str, Any]) -> int:
    kind = block.get("type")
    if kind == "text":
        return tokens(block["text"])
    if kind in ("tool_use", "server_tool_use"):
        return tokens(str(block["name"]) + _dumps(block["input"]))
    return 0  # tool results are input, not output


def _truncate(content: list[dict[str, Any]], max_tokens: int) -> list[dict[str, Any]]:
    """Cut the answer where max_tokens runs out, as the API does (mid-word, mid-JSON)."""
    kept: list[dict[str, Any]] = []
    budget = max_tokens
    for block in content:
        cost = _output_tokens(block)
        if cost <= budget:
            kept.append(block)
            budget -= cost
            continue
        if block.get("type") == "text" and budget > 0:
            kept.append({**block, "text": block["text"][: budget * 4]})
        break
    return kept


__all__ = [
    "API_VERSIONS",
    "CONTEXT_WINDOW",
    "DEFAULT_MODELS",
    "SERVER_TOOLS",
    "ApiError",
    "Batch",
    "FakeAnthropic",
    "ModelSpec",
    "PromptCache",
    "Reply",
    "Responder",
    "SearchResult",
    "TokenTotals",
    "WebSearch",
    "default_responder",
    "default_search",
    "error_body",
    "example_for_schema",
    "extra_fields",
    "fixed",
    "hashed_probability",
    "invalid_json",
    "last_user_text",
    "missing_fields",
    "out_of_range",
    "patched",
    "prompt_units",
    "sequence",
    "tokens",
    "validate_request",
]
