"""A fake Slack Web API on 127.0.0.1, for the real `slack_sdk` AsyncWebClient and Bolt's AsyncApp pointed at it.

    async with FakeSlack() as slack:
        client = AsyncWebClient(token=slack.bot_token, base_url=slack.api_url)
        app = AsyncApp(client=client, signing_secret=SECRET)      # Bolt copies client.base_url per request;
                                                                  # AsyncApp(token=...) alone calls slack.com
        await client.chat_postMessage(channel="#trading-desk", text="hi")
        slack.messages("trading-desk")                           # current state of each message, by ts
        slack.faults.add("429", "/api/chat.postMessage", retry_after=1)  # LoopbackServer's plan (int seconds!)

Wire facts checked against slack_sdk 3.48 / slack_bolt 1.30 (see tests/test_fake_slack.py):
- The token travels as `Authorization: Bearer <token>`; Slack also takes a `token` form/query field, so do we.
- chat.postMessage, chat.update, chat.postEphemeral and views.publish go as JSON bodies
  (`application/json;charset=utf-8`); auth.test is a POST with an empty form body; users.info,
  conversations.info and usergroups.users.list are GETs with query parameters. Form bodies are accepted too,
  with `blocks` / `view` / `attachments` / `metadata` as JSON strings, as Slack does.
- Errors answer HTTP 200 `{"ok": false, "error": code}`; slack_sdk raises SlackApiError on `ok: false` or any
  non-200 status. A 429 answers `Retry-After: <integer seconds>` and `{"ok": false, "error": "ratelimited"}`;
  slack_sdk's retry handler does `int(header)`, so the value must be an integer (pass `retry_after=1`, not 0.5).
- Bolt calls auth.test once (lazily, on the first request it authorizes) and reads `team_id`, `user_id`
  (the bot user), `bot_id`, `enterprise_id` and the `x-oauth-scopes` response header.
- Bolt's per-request client adds `team_id` to every call's parameters; unknown parameters are ignored, as Slack does.

Block Kit is checked as Slack checks it (collecting every violation): a message answers
`{"ok": false, "error": "invalid_blocks", "errors": ["<msg> [json-pointer:/blocks/0/text/text]", ...],
"response_metadata": {"messages": ["[ERROR] <msg> [json-pointer:...]", ...]}}`; views.publish answers
`invalid_arguments` with only `response_metadata.messages` (pointers under /view/blocks), which is what Slack
answers for views. The allowed block types are narrowed to those the desk uses (section, header, context,
actions, divider, image); real Slack also accepts rich_text, markdown, input, video, file... Pass
`block_types=` to widen. `action_id` must be unique within the message (Slack's docs only promise the containing
block; `action_id_scope="block"` relaxes it).

Response URLs: `new_response_url(channel=, message_ts=, user=)` hands out `<url>/response/<token>`, which takes
what Bolt's `respond()` POSTs (JSON: text, blocks, response_type, replace_original, delete_original, thread_ts)
and records it in `responses`. Like incoming webhooks, refusals are HTTP 4xx with a plain-text code
(`no_text`, `invalid_blocks`, `invalid_payload`, `msg_too_long`; 404 `no_service` for an unknown URL,
`used_url` after 5 uses, `expired_url` after 30 minutes - assumed, Slack does not document the codes).
Effects on state: `replace_original: true` rewrites the message the URL was issued for, `delete_original: true`
deletes it, `response_type: "in_channel"` posts a new message in the channel, anything else is an ephemeral
(recorded in `ephemerals` with `"via": "response_url"`). Slack's own default for `replace_original` on
block_actions is not modelled: without an explicit flag nothing is replaced.

State: `calls` holds (method, params) for every call that reached a method (injected faults never do; they are
in `requests`), `answers` the body answered to each; `messages(channel)`, `thread()`, `ephemerals`,
`published_views` (user -> home view), `responses`. `post_rate_per_channel` (messages/second, off by default)
answers a too-fast chat.postMessage to one channel (more than `post_rate_tolerance`, 50 ms, early) with 429 +
Retry-After, like Slack's ~1/s/channel; pass a
`clock` to drive it (and message timestamps) from a test. `wait_for()` / `wait_for_calls()` wait for a Bolt
listener, which runs after the app has already answered Slack.

The refusal wording follows Slack's "<why> [json-pointer:<where>]" form; the exact words of some (duplicate ids,
enum values) are assumed.

Files, the way slack_sdk's `files_upload_v2` uploads them (checked against slack_sdk 3.48's source and Slack's method
pages for files.getUploadURLExternal / files.completeUploadExternal; see tests/test_slack_upload.py):
1. files.getUploadURLExternal: slack_sdk POSTs `filename`, `length` (and `alt_txt`, `snippet_type` when given) as
   query parameters with an empty body. `filename` and an integer `length` are required (`invalid_arguments`, with
   `response_metadata.messages`, as Slack answers a missing one); `length` 0 answers `missing_argument` (Slack's
   docs: "typically only occurs when the length provided is 0"); `alt_txt` over 1000 characters answers
   `alt_txt_too_large`. Answers `upload_url` (here `<url>/upload/v1/<ticket>`, on this server) and `file_id`.
2. The bytes: slack_sdk POSTs them raw (`application/octet-stream`, no Authorization header: the URL is the
   credential) to `upload_url`; Slack also takes a multipart form, so do we. Answers 200 `text/plain`
   (`OK - <bytes>`); slack_sdk raises SlackRequestError on any other status. Refused (HTTP 4xx, plain-text code,
   all assumed, Slack documents none): an unknown or already used URL (404 `upload_url_not_found`), a byte count
   other than the declared `length` (400 `length_mismatch`).
3. files.completeUploadExternal: `files` is a JSON array of {id, title?} (slack_sdk sends it as a JSON string in
   the query); `channel_id` (an id, never a name) or `channels` (comma-separated ids) share it, else the file stays
   private; `initial_comment` is the message text; `thread_ts` makes it a reply. Refused: a missing or malformed
   `files` (`invalid_arguments`), an id never issued, whose bytes never arrived, or already completed
   (`file_not_found`, assumed), an unknown channel (`channel_not_found`). Slack shares the file asynchronously
   (the answer comes before the message exists); this fake posts the message before answering. The message
   carries `files` ([{id, name, title, mimetype, ...}]) and `upload: true`; `blocks` are not modelled.
Both methods need the `files:write` scope (`missing_scope` with `needed` / `provided`, as Slack answers). `scopes=`
narrows what the bot token was granted; `files` holds what was uploaded: file id -> {name, title, alt_txt, length,
content, channel, thread_ts, completed}.

Not modelled: conversations.history/replies (read `messages()` instead), attachments validation,
rich_text generated from `text`, per-method tier rate limits (inject them with `rate_limit()`), enterprise grid.
"""

from __future__ import annotations

import asyncio
import json
import math
import mimetypes
import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from email import message_from_bytes
from email.policy import HTTP
from typing import Any, ClassVar, Literal
from urllib.parse import parse_qsl

from aiohttp import web

from .base import LoopbackServer, ServedFake, wait_until

# --- identities ------------------------------------------------------------------------------------------------

DEFAULT_BOT_TOKEN = "xoxb-fake-bot-token"
TEAM_ID = "T0DESK001"
TEAM_NAME = "Odds Desk"
TEAM_DOMAIN = "oddsdesk"
APP_ID = "A0DESKAPP"
BOT_ID = "B0DESKBOT"
BOT_USER_ID = "U0DESKBOT"
BOT_NAME = "oddsdesk"
DESK_CHANNEL = "C0DESK01"
DEFAULT_CHANNELS: dict[str, str] = {DESK_CHANNEL: "trading-desk", "C0ALERTS1": "desk-alerts"}
DEFAULT_USERS: dict[str, str] = {"U0TRADER1": "alice", "U0TRADER2": "bob", "U0RISK001": "carol"}
DEFAULT_USERGROUPS: dict[str, list[str]] = {"S0TRADERS": ["U0TRADER1", "U0TRADER2"], "S0RISK001": ["U0RISK001"]}
BOT_SCOPES = ("chat:write,chat:write.public,commands,users:read,usergroups:read,channels:read,groups:read,im:write,"
              "files:write")
# Methods that need a scope the bot token may not have been granted (see `scopes=`); the others are not checked.
METHOD_SCOPES: dict[str, str] = {"files.getUploadURLExternal": "files:write",
                                 "files.completeUploadExternal": "files:write"}

# --- limits ----------------------------------------------------------------------------------------------------

MAX_TEXT_CHARS = 40_000
MAX_MESSAGE_BLOCKS = 50
MAX_VIEW_BLOCKS = 100
MAX_BLOCK_ID = 255
MAX_HEADER_TEXT = 150
MAX_SECTION_TEXT = 3000
MAX_SECTION_FIELDS = 10
MAX_FIELD_TEXT = 2000
MAX_CONTEXT_ELEMENTS = 10
MAX_ACTIONS_ELEMENTS = 25
MAX_BUTTON_TEXT = 75
MAX_ACTION_ID = 255
MAX_BUTTON_VALUE = 2000
MAX_BUTTON_URL = 3000
MAX_CONFIRM_TITLE = 100
MAX_CONFIRM_TEXT = 300
MAX_CONFIRM_BUTTON = 30
MAX_ALT_TEXT = 2000
MAX_FILE_ALT_TXT = 1000  # files.getUploadURLExternal's alt_txt ("alt_txt_too_large" above it)
MAX_PRIVATE_METADATA = 3000
RESPONSE_URL_USES = 5
RESPONSE_URL_TTL = 30 * 60.0
BUTTON_STYLES = ("primary", "danger")

DESK_BLOCK_TYPES = frozenset({"section", "header", "context", "actions", "divider", "image"})
BLOCK_FIELDS: dict[str, frozenset[str]] = {
    "section": frozenset({"type", "block_id", "text", "fields", "accessory", "expand"}),
    "header": frozenset({"type", "block_id", "text"}),
    "context": frozenset({"type", "block_id", "elements"}),
    "actions": frozenset({"type", "block_id", "elements"}),
    "divider": frozenset({"type", "block_id"}),
    "image": frozenset({"type", "block_id", "image_url", "slack_file", "alt_text", "title"}),
}
# Interactive elements other than buttons are accepted with a shallow check (type, action_id).
OTHER_INTERACTIVE = frozenset({
    "checkboxes", "datepicker", "datetimepicker", "overflow", "radio_buttons", "timepicker", "workflow_button",
    "static_select", "external_select", "users_select", "conversations_select", "channels_select",
    "multi_static_select", "multi_external_select", "multi_users_select", "multi_conversations_select",
    "multi_channels_select",
})
ACCESSORY_TYPES = OTHER_INTERACTIVE | {"button", "image"}
ACTIONS_TYPES = OTHER_INTERACTIVE | {"button"}
BUTTON_FIELDS = frozenset({"type", "text", "action_id", "url", "value", "style", "confirm", "accessibility_label"})
CONFIRM_FIELDS = frozenset({"title", "text", "confirm", "deny", "style"})
TEXT_FIELDS = {"plain_text": frozenset({"type", "text", "emoji"}), "mrkdwn": frozenset({"type", "text", "verbatim"})}

# Methods slack_sdk sends as JSON; everything else arrives as form fields or query parameters.
JSON_FIELDS = ("blocks", "view", "attachments", "metadata")


def dm_channel_id(user_id: str) -> str:
    """The id of the bot's DM with a user (Slack's are `D...`); stable so events and the fake agree."""
    return "D" + user_id[1:]


def fault_body(status: int) -> dict[str, Any]:
    """Bodies for LoopbackServer's injected faults, shaped like Slack's."""
    if status == 429:
        return {"ok": False, "error": "ratelimited"}
    return {"ok": False, "error": "internal_error"}


class SlackError(Exception):
    def __init__(self, code: str, *, status: int = 200, headers: Mapping[str, str] | None = None,
                 **extra: Any) -> None:
        super().__init__(code)
        self.code, self.status, self.headers, self.extra = code, status, dict(headers or {}), extra


# --- Block Kit -------------------------------------------------------------------------------------------------


def _at(message: str, pointer: str) -> str:
    return f"{message} [json-pointer:{pointer}]"


class BlockChecker:
    """Collects every Block Kit violation in `blocks`, as Slack lists them: "<why> [json-pointer:<where>]"."""

    def __init__(self, *, block_types: Iterable[str] = DESK_BLOCK_TYPES,
                 action_id_scope: Literal["message", "block"] = "message") -> None:
        self.block_types = frozenset(block_types)
        self.action_id_scope = action_id_scope

    def check(self, blocks: Any, *, max_blocks: int, pointer: str = "/blocks") -> list[str]:
        errors: list[str] = []
        if not isinstance(blocks, list):
            return [_at("must be an array", pointer)]
        if len(blocks) > max_blocks:
            errors.append(_at(f"no more than {max_blocks} items allowed", pointer))
        block_ids: set[str] = set()
        action_ids: set[str] = set()
        for i, block in enumerate(blocks):
            if self.action_id_scope == "block":
                action_ids = set()
            self._block(block, f"{pointer}/{i}", errors, block_ids, action_ids)
        return errors

    # blocks

    def _block(self, block: Any, ptr: str, errors: list[str], block_ids: set[str], action_ids: set[str]) -> None:
        if not isinstance(block, dict):
            errors.append(_at("must be an object", ptr))
            return
        kind = block.get("type")
        if kind is None:
            errors.append(_at("missing required field: type", ptr))
            return
        if kind not in self.block_types or kind not in BLOCK_FIELDS:
            errors.append(_at(f"unsupported type: {kind}", f"{ptr}/type"))
            return
        self._extra(block, BLOCK_FIELDS[kind], ptr, errors)
        if "block_id" in block:
            block_id = block["block_id"]
            if not isinstance(block_id, str):
                errors.append(_at("must be a string", f"{ptr}/block_id"))
            elif len(block_id) > MAX_BLOCK_ID:
                errors.append(_at(f"must be less than {MAX_BLOCK_ID + 1} characters", f"{ptr}/block_id"))
            elif block_id in block_ids:
                errors.append(_at(f"duplicate block_id: {block_id}", f"{ptr}/block_id"))
            else:
                block_ids.add(block_id)
        getattr(self, f"_{kind}")(block, ptr, errors, action_ids)

    def _section(self, block: dict[str, Any], ptr: str, errors: list[str], action_ids: set[str]) -> None:
        if "text" not in block and "fields" not in block:
            errors.append(_at("must define either `text` or `fields`", ptr))
        if "text" in block:
            self._text(block["text"], f"{ptr}/text", errors, max_len=MAX_SECTION_TEXT)
        if "fields" in block:
            fields = block["fields"]
            if not isinstance(fields, list):
                errors.append(_at("must be an array", f"{ptr}/fields"))
            else:
                if not fields:
                    errors.append(_at("must provide at least 1 items", f"{ptr}/fields"))
                if len(fields) > MAX_SECTION_FIELDS:
                    errors.append(_at(f"no more than {MAX_SECTION_FIELDS} items allowed", f"{ptr}/fields"))
                for j, item in enumerate(fields):
                    self._text(item, f"{ptr}/fields/{j}", errors, max_len=MAX_FIELD_TEXT)
        if "accessory" in block:
            self._element(block["accessory"], f"{ptr}/accessory", errors, action_ids, ACCESSORY_TYPES)

    def _header(self, block: dict[str, Any], ptr: str, errors: list[str], action_ids: set[str]) -> None:
        if "text" not in block:
            errors.append(_at("missing required field: text", ptr))
        else:
            self._text(block["text"], f"{ptr}/text", errors, max_len=MAX_HEADER_TEXT, plain_only=True)

    def _context(self, block: dict[str, Any], ptr: str, errors: list[str], action_ids: set[str]) -> None:
        elements = self._elements(block, ptr, errors, MAX_CONTEXT_ELEMENTS)
        for j, element in enumerate(elements):
            eptr = f"{ptr}/elements/{j}"
            if isinstance(element, dict) and element.get("type") == "image":
                self._image_element(element, eptr, errors)
            else:
                self._text(element, eptr, errors)

    def _actions(self, block: dict[str, Any], ptr: str, errors: list[str], action_ids: set[str]) -> None:
        for j, element in enumerate(self._elements(block, ptr, errors, MAX_ACTIONS_ELEMENTS)):
            self._element(element, f"{ptr}/elements/{j}", errors, action_ids, ACTIONS_TYPES)

    def _divider(self, block: dict[str, Any], ptr: str, errors: list[str], action_ids: set[str]) -> None:
        pass

    def _image(self, block: dict[str, Any], ptr: str, errors: list[str], action_ids: set[str]) -> None:
        self._image_element(block, ptr, errors, is_block=True)
        if "title" in block:
            self._text(block["title"], f"{ptr}/title", errors, max_len=MAX_ALT_TEXT, plain_only=True)

    def _elements(self, block: dict[str, Any], ptr: str, errors: list[str], limit: int) -> list[Any]:
        elements = block.get("elements")
        if elements is None:
            errors.append(_at("missing required field: elements", ptr))
            return []
        if not isinstance(elements, list):
            errors.append(_at("must be an array", f"{ptr}/elements"))
            return []
        if not elements:
            errors.append(_at("must provide at least 1 items", f"{ptr}/elements"))
        if len(elements) > limit:
            errors.append(_at(f"no more than {limit} items allowed", f"{ptr}/elements"))
        return elements

    # elements

    def _element(self, element: Any, ptr: str, errors: list[str], action_ids: set[str],
                 allowed: frozenset[str]) -> None:
        if not isinstance(element, dict):
            errors.append(_at("must be an object", ptr))
            return
        kind = element.get("type")
        if kind is None:
            errors.append(_at("missing required field: type", ptr))
            return
        if kind not in allowed:
            errors.append(_at(f"unsupported type: {kind}", f"{ptr}/type"))
            return
        if kind == "image":
            self._image_element(element, ptr, errors)
            return
        self._action_id(element, ptr, errors, action_ids)
        if kind == "button":
            self._button(element, ptr, errors)

    def _action_id(self, element: dict[str, Any], ptr: str, errors: list[str], action_ids: set[str]) -> None:
        if "action_id" not in element:
            return  # Slack generates one
        action_id = element["action_id"]
        if not isinstance(action_id, str):
            errors.append(_at("must be a string", f"{ptr}/action_id"))
        elif not action_id:
            errors.append(_at("must be more than 0 characters", f"{ptr}/action_id"))
        elif len(action_id) > MAX_ACTION_ID:
            errors.append(_at(f"must be less than {MAX_ACTION_ID + 1} characters", f"{ptr}/action_id"))
        elif action_id in action_ids:
            errors.append(_at(f"duplicate action_id: {action_id}", f"{ptr}/action_id"))
        else:
            action_ids.add(action_id)

    def _button(self, button: dict[str, Any], ptr: str, errors: list[str]) -> None:
        self._extra(button, BUTTON_FIELDS, ptr, errors)
        if "text" not in button:
            errors.append(_at("missing required field: text", ptr))
        else:
            self._text(button["text"], f"{ptr}/text", errors, max_len=MAX_BUTTON_TEXT, plain_only=True)
        self._string(button, "value", ptr, errors, MAX_BUTTON_VALUE)
        self._string(button, "url", ptr, errors, MAX_BUTTON_URL)
        self._string(button, "accessibility_label", ptr, errors, MAX_BUTTON_TEXT)
        if "style" in button and button["style"] not in BUTTON_STYLES:
            errors.append(_at("must be one of: primary, danger", f"{ptr}/style"))
        if "confirm" in button:
            self._confirm(button["confirm"], f"{ptr}/confirm", errors)

    def _confirm(self, confirm: Any, ptr: str, errors: list[str]) -> None:
        if not isinstance(confirm, dict):
            errors.append(_at("must be an object", ptr))
            return
        self._extra(confirm, CONFIRM_FIELDS, ptr, errors)
        for name, limit, plain in (("title", MAX_CONFIRM_TITLE, True), ("text", MAX_CONFIRM_TEXT, False),
                                   ("confirm", MAX_CONFIRM_BUTTON, True), ("deny", MAX_CONFIRM_BUTTON, True)):
            if name not in confirm:
                errors.append(_at(f"missing required field: {name}", ptr))
            else:
                self._text(confirm[name], f"{ptr}/{name}", errors, max_len=limit, plain_only=plain)
        if "style" in confirm and confirm["style"] not in BUTTON_STYLES:
            errors.append(_at("must be one of: primary, danger", f"{ptr}/style"))

    def _image_element(self, image: dict[str, Any], ptr: str, errors: list[str], is_block: bool = False) -> None:
        if not is_block:
            self._extra(image, frozenset({"type", "image_url", "slack_file", "alt_text"}), ptr, errors)
        if "image_url" not in image and "slack_file" not in image:
            errors.append(_at("missing required field: image_url", ptr))
        if "alt_text" not in image:
            errors.append(_at("missing required field: alt_text", ptr))
        self._string(image, "image_url", ptr, errors, 3000)
        self._string(image, "alt_text", ptr, errors, MAX_ALT_TEXT)

    # composition objects

    def _text(self, obj: Any, ptr: str, errors: list[str], *, max_len: int | None = None,
              plain_only: bool = False) -> None:
        if not isinstance(obj, dict):
            errors.append(_at("must be an object", ptr))
            return
        kind = obj.get("type")
        if kind is None:
            errors.append(_at("missing required field: type", ptr))
        elif kind not in TEXT_FIELDS:
            errors.append(_at("must be one of: plain_text, mrkdwn", f"{ptr}/type"))
        elif plain_only and kind != "plain_text":
            errors.append(_at("must be plain_text", f"{ptr}/type"))
        else:
            self._extra(obj, TEXT_FIELDS[kind], ptr, errors)
        if "text" not in obj:
            errors.append(_at("missing required field: text", ptr))
            return
        text = obj["text"]
        if not isinstance(text, str):
            errors.append(_at("must be a string", f"{ptr}/text"))
        elif not text:
            errors.append(_at("must be more than 0 characters", f"{ptr}/text"))
        elif max_len is not None and len(text) > max_len:
            errors.append(_at(f"must be less than {max_len + 1} characters", f"{ptr}/text"))
        for flag in ("emoji", "verbatim"):
            if flag in obj and not isinstance(obj[flag], bool):
                errors.append(_at("must be a boolean", f"{ptr}/{flag}"))

    @staticmethod
    def _string(obj: dict[str, Any], name: str, ptr: str, errors: list[str], limit: int) -> None:
        if name not in obj:
            return
        value = obj[name]
        if not isinstance(value, str):
            errors.append(_at("must be a string", f"{ptr}/{name}"))
        elif len(value) > limit:
            errors.append(_at(f"must be less than {limit + 1} characters", f"{ptr}/{name}"))

    @staticmethod
    def _extra(obj: dict[str, Any], allowed: frozenset[str], ptr: str, errors: list[str]) -> None:
        for key in obj:
            if key not in allowed:
                errors.append(_at(f"invalid additional property: {key}", ptr))


def invalid_arguments(errors: list[str]) -> SlackError:
    """Slack's answer to a missing or mistyped argument of the newer methods (only `response_metadata.messages`)."""
    return SlackError("invalid_arguments", response_metadata={"messages": [f"[ERROR] {e}" for e in errors]})


def invalid_blocks(errors: list[str]) -> SlackError:
    return SlackError("invalid_blocks", errors=errors,
                      response_metadata={"messages": [f"[ERROR] {e}" for e in errors]})


# --- the fake --------------------------------------------------------------------------------------------------


@dataclass
class ResponseTarget:
    token: str
    channel: str | None
    user: str | None
    message_ts: str | None
    created: float
    uses: int = 0


class FakeSlack(ServedFake):
    """A Slack workspace with one bot, served on 127.0.0.1. See the module docstring."""

    # Every workspace made since the suite's guard last looked (tests/conftest.py): it reads what reached
    # each one after the test, when a test's local fake would already be gone, then empties the list.
    instances: ClassVar[list[FakeSlack]] = []

    def __init__(self, *, bot_token: str = DEFAULT_BOT_TOKEN, bot_user_id: str = BOT_USER_ID,
                 bot_id: str = BOT_ID, team_id: str = TEAM_ID, app_id: str = APP_ID,
                 channels: Mapping[str, str] | None = None, users: Mapping[str, str] | None = None,
                 usergroups: Mapping[str, Iterable[str]] | None = None,
                 channel_members: Mapping[str, Iterable[str]] | None = None,
                 post_rate_per_channel: float | None = None, post_rate_tolerance: float = 0.05,
                 block_types: Iterable[str] = DESK_BLOCK_TYPES,
                 action_id_scope: Literal["message", "block"] = "message",
                 clock: Callable[[], float] = time.time, scopes: Iterable[str] | None = None,
                 hang_seconds: float = 30.0, latency: float = 0.0) -> None:
        FakeSlack.instances.append(self)
        self.scopes: list[str] = list(BOT_SCOPES.split(",") if scopes is None else scopes)
        self.bot_token = bot_token
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.team_id = team_id
        self.app_id = app_id
        self.channels: dict[str, str] = dict(DEFAULT_CHANNELS if channels is None else channels)
        self.users: dict[str, str] = dict(DEFAULT_USERS if users is None else users)
        self.users.setdefault(bot_user_id, BOT_NAME)
        self.usergroups: dict[str, list[str]] = {k: list(v) for k, v in
                                                 (DEFAULT_USERGROUPS if usergroups is None else usergroups).items()}
        # channel id -> member ids; a channel not listed here has everyone in it.
        self.channel_members: dict[str, set[str]] = {k: set(v) for k, v in (channel_members or {}).items()}
        self.post_rate_per_channel = post_rate_per_channel
        # Slack lets short bursts through; a client pacing itself at exactly the rate must not be refused because
        # one request arrived a few milliseconds early (network jitter), so early arrivals within this are allowed.
        self.post_rate_tolerance = post_rate_tolerance
        self.checker = BlockChecker(block_types=block_types, action_id_scope=action_id_scope)
        self.clock = clock
        self.valid_tokens: set[str] = {bot_token}
        # Socket Mode: an app-level token opens connections and nothing else.
        self.app_token = "xapp-1-A0DESKAPP-fake-app-level-token"
        self.sockets: list[web.WebSocketResponse] = []
        self.socket_acks: dict[str, Any] = {}  # envelope_id -> the payload the app answered with

        self.calls: list[tuple[str, dict[str, Any]]] = []  # every API call that reached a method handler
        self.answers: list[dict[str, Any]] = []  # the body answered to each of `calls`, same order
        self.ephemerals: list[dict[str, Any]] = []
        self.published_views: dict[str, dict[str, Any]] = {}  # user id -> the home view now shown
        self.responses: list[dict[str, Any]] = []  # accepted bodies POSTed to response URLs, in order
        self.response_tokens: list[str] = []  # the response URL token each of `responses` went to
        self.response_urls: dict[str, ResponseTarget] = {}
        self._messages: dict[str, dict[str, dict[str, Any]]] = {}  # channel id -> ts -> message
        self._deleted: dict[str, dict[str, dict[str, Any]]] = {}
        self._last_post: dict[str, float] = {}
        self._last_ts = (0, 0)
        self._view_seq = 0
        self._changed = asyncio.Event()
        self.files: dict[str, dict[str, Any]] = {}  # file id -> what was uploaded and where it was shared
        self._upload_tickets: dict[str, str] = {}  # upload URL ticket -> file id, until its bytes arrive
        self._file_seq = 0

        self._methods: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
            "auth.test": self._auth_test,
            "chat.postMessage": self._chat_post_message,
            "chat.update": self._chat_update,
            "chat.postEphemeral": self._chat_post_ephemeral,
            "views.publish": self._views_publish,
            "usergroups.users.list": self._usergroups_users_list,
            "users.info": self._users_info,
            "conversations.info": self._conversations_info,
            "apps.connections.open": self._apps_connections_open,
            "files.getUploadURLExternal": self._files_get_upload_url_external,
            "files.completeUploadExternal": self._files_complete_upload_external,
        }
        app = web.Application(client_max_size=8 * 1024 * 1024)
        app.router.add_route("*", "/api/{method}", self._api)
        app.router.add_post("/response/{token}", self._response_url)
        app.router.add_post("/upload/v1/{ticket}", self._upload)
        app.router.add_get("/link/", self._socket_link)
        self.server = LoopbackServer(app, error_body=fault_body, hang_seconds=hang_seconds, latency=latency)

    # -- lifecycle and plumbing -----------------------------------------------------------------------------


    @property
    def api_url(self) -> str:
        """What to pass as `base_url` to AsyncWebClient (slack_sdk joins method names onto it)."""
        return self.server.url + "/api/"

    def rate_limit(self, method: str, *, times: int = 1, retry_after: int = 1) -> None:
        """Answer the next `times` calls of `method` with 429 + `Retry-After: <retry_after>` (whole seconds)."""
        self.faults.add("429", f"/api/{method}", times=times, retry_after=int(retry_after))  # type: ignore[arg-type]

    # -- looking at the state -------------------------------------------------------------------------------

    def resolve_channel(self, channel: str) -> str | None:
        """A channel id from an id, `#name` or `name` (as chat.postMessage resolves), or a user id (their DM)."""
        if channel in self.channels:
            return channel
        if channel.startswith("D") and "U" + channel[1:] in self.users:
            return self._open_dm("U" + channel[1:])  # the bot's DM with a known user always exists
        name = channel.removeprefix("#")
        for cid, cname in self.channels.items():
            if cname == name:
                return cid
        if channel in self.users:
            return self._open_dm(channel)
        return None

    def everything_received(self) -> str:
        """Every API call's parameters (the token taken out) and every response-URL body, as one text."""
        return json.dumps([self.calls, self.responses], default=str, ensure_ascii=False)

    def messages(self, channel: str) -> list[dict[str, Any]]:
        """Every message in a channel (replies included, with `thread_ts`), as it stands now, oldest first."""
        cid = self.resolve_channel(channel) or channel
        return [dict(m) for _, m in sorted(self._messages.get(cid, {}).items(), key=lambda kv: float(kv[0]))]

    def message(self, channel: str, ts: str) -> dict[str, Any] | None:
        cid = self.resolve_channel(channel) or channel
        found = self._messages.get(cid, {}).get(ts)
        return dict(found) if found is not None else None

    def thread(self, channel: str, thread_ts: str) -> list[dict[str, Any]]:
        """The replies to a message, oldest first (the parent excluded)."""
        return [m for m in self.messages(channel) if m.get("thread_ts") == thread_ts and m["ts"] != thread_ts]

    def deleted(self, channel: str) -> list[dict[str, Any]]:
        cid = self.resolve_channel(channel) or channel
        return list(self._deleted.get(cid, {}).values())

    def posted(self, method: str) -> list[dict[str, Any]]:
        """The parameters of each call to `method` that Slack accepted (`ok: true`), in order."""
        return [params for (name, params), answer in zip(self.calls, self.answers, strict=True)
                if name == method and answer.get("ok")]

    def refused(self, method: str) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        """(params, answer) for each call to `method` that was refused, in order."""
        return [(params, answer) for (name, params), answer in zip(self.calls, self.answers, strict=True)
                if name == method and not answer.get("ok")]

    def responses_to(self, url: str) -> list[dict[str, Any]]:
        """The accepted bodies POSTed to one response URL, in order."""
        token = url.rstrip("/").rsplit("/", 1)[-1]
        return [body for body, sent_to in zip(self.responses, self.response_tokens, strict=True) if sent_to == token]

    async def wait_for(self, predicate: Callable[[], Any], timeout: float = 5.0) -> Any:
        """Wait until `predicate()` is truthy (Bolt acks first and runs listeners afterwards); returns its value."""
        return await wait_until(predicate, self._changed, timeout, lambda: str([name for name, _ in self.calls]))

    async def wait_for_calls(self, method: str, count: int = 1, timeout: float = 5.0) -> list[dict[str, Any]]:
        """The accepted calls of `method`, once there are at least `count` of them."""
        def enough() -> list[dict[str, Any]] | None:
            got = self.posted(method)
            return got if len(got) >= count else None

        return await self.wait_for(enough, timeout)

    # -- setting up -----------------------------------------------------------------------------------------

    def add_channel(self, channel_id: str, name: str, members: Iterable[str] | None = None) -> None:
        self.channels[channel_id] = name
        if members is not None:
            self.channel_members[channel_id] = set(members)

    def add_user(self, user_id: str, name: str) -> None:
        self.users[user_id] = name

    def new_response_url(self, *, channel: str | None = None, message_ts: str | None = None,
                         user: str | None = None) -> str:
        """A fresh response URL; give the channel (and message_ts for an action) so respond() can act on them."""
        token = secrets.token_hex(12)
        cid = self.resolve_channel(channel) if channel else None
        self.response_urls[token] = ResponseTarget(token, cid or channel, user, message_ts, self.clock())
        return f"{self.url}/response/{token}"

    # -- HTTP -----------------------------------------------------------------------------------------------

    # -- Socket Mode -------------------------------------------------------------------------------

    def _apps_connections_open(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"url": self.url.replace("http://", "ws://") + f"/link/?ticket={secrets.token_hex(8)}"}

    async def _socket_link(self, request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse(autoping=True)
        await socket.prepare(request)
        self.sockets.append(socket)
        await socket.send_json({"type": "hello", "num_connections": len(self.sockets),
                                "debug_info": {"host": "fake-slack", "approximate_connection_time": 3600},
                                "connection_info": {"app_id": self.app_id}})
        async for message in socket:
            if message.type == web.WSMsgType.TEXT:
                data = json.loads(message.data)
                if "envelope_id" in data:
                    self.socket_acks[data["envelope_id"]] = data.get("payload")
                    self._changed.set()
        self.sockets.remove(socket)
        return socket

    async def send_envelope(self, kind: str, payload: dict[str, Any]) -> str:
        """Deliver an event over the open Socket Mode connection, as Slack does; returns its envelope id."""
        envelope_id = secrets.token_hex(8)
        await self.sockets[-1].send_json({"envelope_id": envelope_id, "type": kind, "payload": payload,
                                          "accepts_response_payload": kind != "events_api",
                                          "retry_attempt": 0, "retry_reason": ""})
        return envelope_id

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        status, headers = 200, {"x-oauth-scopes": ",".join(self.scopes)}
        try:
            params, token = await self._params(request)
        except SlackError as exc:
            self.calls.append((method, {}))
            answer: dict[str, Any] = {"ok": False, "error": exc.code, **exc.extra}
        else:
            self.calls.append((method, params))
            try:
                handler = self._methods.get(method)
                if handler is None:
                    raise SlackError("unknown_method", req_method=method)
                if not token:
                    raise SlackError("not_authed")
                if method == "apps.connections.open":
                    if token != self.app_token:
                        raise SlackError("not_allowed_token_type")
                elif token not in self.valid_tokens:
                    raise SlackError("invalid_auth")
                needed = METHOD_SCOPES.get(method)
                if needed is not None and needed not in self.scopes:
                    raise SlackError("missing_scope", needed=needed, provided=",".join(self.scopes))
                answer = {"ok": True, **handler(params)}
            except SlackError as exc:
                answer = {"ok": False, "error": exc.code, **exc.extra}
                status = exc.status
                headers.update(exc.headers)
        self.answers.append(answer)
        self._changed.set()
        return web.json_response(answer, status=status, headers=headers)

    async def _params(self, request: web.Request) -> tuple[dict[str, Any], str | None]:
        params: dict[str, Any] = dict(request.query)
        body = await request.read()
        content_type = request.content_type
        if body:
            if content_type == "application/json":
                try:
                    decoded = json.loads(body)
                except ValueError:
                    raise SlackError("invalid_json") from None
                if not isinstance(decoded, dict):
                    raise SlackError("invalid_json")
                params.update(decoded)
            elif content_type in ("application/x-www-form-urlencoded", "application/octet-stream", ""):
                params.update(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
            else:
                raise SlackError("invalid_form_data")
        token: str | None = None
        auth = request.headers.get("Authorization", "")
        if auth.startswith("Bearer "):
            token = auth[len("Bearer "):].strip()
        form_token = params.pop("token", None)
        if token is None and content_type != "application/json":
            token = form_token  # Slack takes `token` as a form/query field, never inside a JSON body
        return params, token

    @staticmethod
    def _json_field(params: dict[str, Any], name: str) -> Any:
        """`blocks` / `view` / ... may arrive as JSON strings (form bodies); decode them like Slack."""
        value = params.get(name)
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                raise SlackError(f"invalid_{name}_format" if name in ("blocks", "metadata") else "invalid_arguments",
                                 response_metadata={"messages": [f"[ERROR] invalid JSON [json-pointer:/{name}]"]}
                                 ) from None
            params[name] = value
        return value

    # -- methods --------------------------------------------------------------------------------------------

    def _auth_test(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"url": f"https://{TEAM_DOMAIN}.slack.com/", "team": TEAM_NAME, "user": BOT_NAME,
                "team_id": self.team_id, "user_id": self.bot_user_id, "bot_id": self.bot_id,
                "is_enterprise_install": False}

    def _content(self, params: dict[str, Any], *, require: bool = True) -> tuple[Any, Any]:
        """Validated (text, blocks) of a message call."""
        blocks = self._json_field(params, "blocks")
        self._json_field(params, "attachments")
        self._json_field(params, "metadata")
        text = params.get("text")
        if blocks is not None and not isinstance(blocks, list):
            raise SlackError("invalid_blocks_format")
        if require and not text and not blocks and not params.get("attachments"):
            raise SlackError("no_text")
        if isinstance(text, str) and len(text) > MAX_TEXT_CHARS:
            raise SlackError("msg_too_long")
        if blocks is not None:
            errors = self.checker.check(blocks, max_blocks=MAX_MESSAGE_BLOCKS)
            if errors:
                raise invalid_blocks(errors)
        return text, blocks

    def _channel(self, params: dict[str, Any], *, ids_only: bool = False) -> str:
        channel = params.get("channel")
        if not channel or not isinstance(channel, str):
            raise SlackError("channel_not_found")
        if ids_only:
            if self.resolve_channel(channel) != channel:  # names and user ids are not accepted here
                raise SlackError("channel_not_found")
            return channel
        cid = self.resolve_channel(channel)
        if cid is None:
            raise SlackError("channel_not_found")
        return cid

    def _chat_post_message(self, params: dict[str, Any]) -> dict[str, Any]:
        cid = self._channel(params)
        text, blocks = self._content(params)
        self._rate_check(cid)
        ts = self._next_ts()
        message: dict[str, Any] = {"type": "message", "user": self.bot_user_id, "bot_id": self.bot_id,
                                   "app_id": self.app_id, "team": self.team_id, "ts": ts, "text": text or ""}
        if blocks is not None:
            message["blocks"] = blocks
        for name in ("attachments", "metadata"):
            if params.get(name):
                message[name] = params[name]
        self._add_message(cid, message, params.get("thread_ts"))
        self._last_post[cid] = self.clock()
        return {"channel": cid, "ts": ts, "message": dict(message)}

    def _add_message(self, cid: str, message: dict[str, Any], thread_ts: Any) -> None:
        """Store a new message; with `thread_ts`, as a reply that the parent counts."""
        if thread_ts:
            message["thread_ts"] = str(thread_ts)
            parent = self._messages.get(cid, {}).get(str(thread_ts))
            if parent is not None:
                message["parent_user_id"] = parent.get("user")
                parent["thread_ts"] = parent["ts"]
                parent["reply_count"] = parent.get("reply_count", 0) + 1
                parent["latest_reply"] = message["ts"]
        self._messages.setdefault(cid, {})[message["ts"]] = message

    def _chat_update(self, params: dict[str, Any]) -> dict[str, Any]:
        cid = self._channel(params, ids_only=True)
        ts = params.get("ts")
        original = self._messages.get(cid, {}).get(str(ts)) if ts else None
        if original is None:
            raise SlackError("message_not_found")
        text, blocks = self._content(params)
        if text is not None or blocks is not None:
            original["text"] = text or ""
        if blocks is not None:  # omitted -> previous blocks retained; [] removes them
            if blocks:
                original["blocks"] = blocks
            else:
                original.pop("blocks", None)
        if params.get("attachments") is not None:
            original["attachments"] = params["attachments"]
        original["edited"] = {"user": self.bot_user_id, "ts": self._next_ts()}
        return {"channel": cid, "ts": original["ts"], "text": original["text"], "message": dict(original)}

    def _chat_post_ephemeral(self, params: dict[str, Any]) -> dict[str, Any]:
        cid = self._channel(params)
        user = params.get("user")
        if not user or user not in self.users:
            raise SlackError("user_not_found")
        members = self.channel_members.get(cid)
        if members is not None and user not in members:
            raise SlackError("user_not_in_channel")
        text, blocks = self._content(params)
        ts = self._next_ts()
        record = {"channel": cid, "user": user, "text": text or "", "message_ts": ts, "via": "chat.postEphemeral"}
        if blocks is not None:
            record["blocks"] = blocks
        if params.get("thread_ts"):
            record["thread_ts"] = params["thread_ts"]
        self.ephemerals.append(record)
        return {"message_ts": ts}

    def _views_publish(self, params: dict[str, Any]) -> dict[str, Any]:
        user_id = params.get("user_id")
        view = self._json_field(params, "view")
        if not user_id or not isinstance(view, dict):
            raise SlackError("invalid_arguments")
        if user_id not in self.users:
            raise SlackError("user_not_found")
        messages: list[str] = []
        if view.get("type") != "home":
            messages.append(_at("must be home", "/view/type"))
        if "blocks" not in view:
            messages.append(_at("missing required field: blocks", "/view"))
        else:
            messages += self.checker.check(view["blocks"], max_blocks=MAX_VIEW_BLOCKS, pointer="/view/blocks")
        metadata = view.get("private_metadata", "")
        if not isinstance(metadata, str) or len(metadata) > MAX_PRIVATE_METADATA:
            messages.append(_at(f"must be less than {MAX_PRIVATE_METADATA + 1} characters",
                                "/view/private_metadata"))
        if messages:
            raise SlackError("invalid_arguments", response_metadata={"messages": [f"[ERROR] {m}" for m in messages]})
        current = self.published_views.get(user_id)
        if params.get("hash") and current is not None and params["hash"] != current["hash"]:
            raise SlackError("hash_conflict")
        if current is None:
            self._view_seq += 1
            view_id = f"V0HOME{self._view_seq:04d}"
        else:
            view_id = current["id"]
        published = {
            "id": view_id, "team_id": self.team_id, "type": "home", "blocks": view["blocks"],
            "private_metadata": metadata, "callback_id": view.get("callback_id", ""),
            "state": {"values": {}}, "hash": f"{int(self.clock())}.{secrets.token_hex(4)}",
            "title": {"type": "plain_text", "text": "View Title", "emoji": True},
            "clear_on_close": False, "notify_on_close": False, "close": None, "submit": None,
            "previous_view_id": None, "root_view_id": view_id, "app_id": self.app_id,
            "external_id": view.get("external_id", ""), "app_installed_team_id": self.team_id,
            "bot_id": self.bot_id,
        }
        self.published_views[user_id] = published
        return {"view": dict(published)}

    def _usergroups_users_list(self, params: dict[str, Any]) -> dict[str, Any]:
        group = params.get("usergroup")
        if not group:
            raise SlackError("invalid_arguments")
        if group not in self.usergroups:
            raise SlackError("no_such_subteam")
        return {"users": list(self.usergroups[group])}

    def _users_info(self, params: dict[str, Any]) -> dict[str, Any]:
        user_id = params.get("user")
        if not user_id or user_id not in self.users:
            raise SlackError("user_not_found")
        name = self.users[user_id]
        is_bot = user_id == self.bot_user_id
        return {"user": {
            "id": user_id, "team_id": self.team_id, "name": name, "deleted": False, "color": "9f69e7",
            "real_name": name.title(), "tz": "America/New_York", "tz_label": "Eastern Standard Time",
            "tz_offset": -18000, "is_admin": False, "is_owner": False, "is_primary_owner": False,
            "is_restricted": False, "is_ultra_restricted": False, "is_bot": is_bot, "is_app_user": False,
            "updated": 1732550000,
            "profile": {"real_name": name.title(), "display_name": name, "real_name_normalized": name.title(),
                        "display_name_normalized": name, "team": self.team_id,
                        **({"bot_id": self.bot_id} if is_bot else {})},
        }}

    def _conversations_info(self, params: dict[str, Any]) -> dict[str, Any]:
        cid = params.get("channel")
        if not cid or self.resolve_channel(cid) != cid:
            raise SlackError("channel_not_found")
        if cid.startswith("D"):
            return {"channel": {"id": cid, "created": 1732550000, "is_im": True, "is_org_shared": False,
                                "user": "U" + cid[1:], "is_user_deleted": False, "priority": 0}}
        name = self.channels[cid]
        members = self.channel_members.get(cid)
        return {"channel": {
            "id": cid, "name": name, "name_normalized": name, "is_channel": True, "is_group": False,
            "is_im": False, "is_mpim": False, "is_private": False, "is_archived": False, "is_general": False,
            "is_shared": False, "is_ext_shared": False, "is_org_shared": False, "created": 1732550000,
            "creator": next(iter(self.users)), "is_member": members is None or self.bot_user_id in members,
            "topic": {"value": "", "creator": "", "last_set": 0},
            "purpose": {"value": "", "creator": "", "last_set": 0}, "previous_names": [],
            **({"num_members": len(members)} if members is not None and params.get("include_num_members") in
               ("1", 1, True, "true") else {}),
        }}

    # -- files ------------------------------------------------------------------------------------------------

    def _files_get_upload_url_external(self, params: dict[str, Any]) -> dict[str, Any]:
        filename, length = params.get("filename"), params.get("length")
        missing = [name for name, value in (("filename", filename), ("length", length)) if value in (None, "")]
        if missing:
            raise invalid_arguments([f"missing required field: {name}" for name in missing])
        if isinstance(length, bool) or not isinstance(length, (int, str)) or not str(length).isdigit():
            raise invalid_arguments(["must be an integer [json-pointer:/length]"])
        if int(length) == 0:
            raise SlackError("missing_argument")
        alt_txt = params.get("alt_txt")
        if isinstance(alt_txt, str) and len(alt_txt) > MAX_FILE_ALT_TXT:
            raise SlackError("alt_txt_too_large")
        self._file_seq += 1
        file_id = f"F0DESK{self._file_seq:05d}"
        ticket = secrets.token_urlsafe(16)
        self._upload_tickets[ticket] = file_id
        self.files[file_id] = {"name": str(filename), "title": None, "alt_txt": alt_txt, "length": int(length),
                               "content": None, "channel": None, "thread_ts": None, "completed": False}
        return {"upload_url": f"{self.url}/upload/v1/{ticket}", "file_id": file_id}

    async def _upload(self, request: web.Request) -> web.Response:
        file_id = self._upload_tickets.get(request.match_info["ticket"])
        if file_id is None:
            return web.Response(status=404, text="upload_url_not_found")
        body = await request.read()
        if request.content_type == "multipart/form-data":
            parts = message_from_bytes(f"Content-Type: {request.headers['Content-Type']}\r\n\r\n".encode() + body,
                                       policy=HTTP)
            sent = [part.get_payload(decode=True) for part in parts.iter_parts() if part.get_filename()]
            if len(sent) != 1:
                return web.Response(status=400, text="invalid_form_data")
            body = sent[0]
        record = self.files[file_id]
        if len(body) != record["length"]:
            return web.Response(status=400, text="length_mismatch")
        record["content"] = body
        del self._upload_tickets[request.match_info["ticket"]]
        self._changed.set()
        return web.Response(text=f"OK - {len(body)}")

    def _files_complete_upload_external(self, params: dict[str, Any]) -> dict[str, Any]:
        wanted = self._json_field(params, "files")
        if not isinstance(wanted, list) or not wanted or not all(
                isinstance(f, dict) and isinstance(f.get("id"), str) for f in wanted):
            raise invalid_arguments(["must be an array of objects with an id [json-pointer:/files]"])
        for item in wanted:
            record = self.files.get(item["id"])
            if record is None or record["content"] is None or record["completed"]:
                raise SlackError("file_not_found")
        targets = [c for c in str(params.get("channels") or "").split(",") if c]
        if params.get("channel_id"):
            targets.insert(0, str(params["channel_id"]))
        for cid in targets:
            if self.resolve_channel(cid) != cid or cid in self.users:
                raise SlackError("channel_not_found")
        thread_ts = params.get("thread_ts") or None
        shared = []
        for item in wanted:
            record = self.files[item["id"]]
            record.update(title=item.get("title") or record["name"], completed=True,
                          channel=targets[0] if targets else None, thread_ts=thread_ts)
            shared.append(self._file_object(item["id"]))
        for cid in targets:
            message = {"type": "message", "user": self.bot_user_id, "bot_id": self.bot_id, "app_id": self.app_id,
                       "team": self.team_id, "ts": self._next_ts(), "text": params.get("initial_comment") or "",
                       "files": [dict(f) for f in shared], "upload": True}
            self._add_message(cid, message, thread_ts)
        return {"files": [{"id": item["id"], "title": self.files[item["id"]]["title"]} for item in wanted]}

    def _file_object(self, file_id: str) -> dict[str, Any]:
        """The file as it appears in a message's `files` list (the fields the desk might read)."""
        record = self.files[file_id]
        mimetype = mimetypes.guess_type(record["name"])[0] or "application/octet-stream"
        return {"id": file_id, "name": record["name"], "title": record["title"], "mimetype": mimetype,
                "filetype": record["name"].rsplit(".", 1)[-1].lower() if "." in record["name"] else "binary",
                "size": record["length"], "user": self.bot_user_id, "is_public": True,
                **({"alt_txt": record["alt_txt"]} if record["alt_txt"] else {})}

    # -- response URLs --------------------------------------------------------------------------------------

    async def _response_url(self, request: web.Request) -> web.Response:
        target = self.response_urls.get(request.match_info["token"])
        if target is None:
            return web.Response(status=404, text="no_service")
        if self.clock() - target.created > RESPONSE_URL_TTL:
            return web.Response(status=404, text="expired_url")
        if target.uses >= RESPONSE_URL_USES:
            return web.Response(status=404, text="used_url")
        raw = await request.read()
        try:
            if request.content_type == "application/x-www-form-urlencoded":
                body = json.loads(dict(parse_qsl(raw.decode())).get("payload", ""))
            else:
                body = json.loads(raw)
        except ValueError:
            return web.Response(status=400, text="invalid_payload")
        if not isinstance(body, dict):
            return web.Response(status=400, text="invalid_payload")
        try:
            self._respond(target, body)
        except SlackError as exc:
            return web.Response(status=400, text=exc.code)
        target.uses += 1
        self.responses.append(body)
        self.response_tokens.append(target.token)
        self._changed.set()
        return web.json_response({"ok": True})

    def _respond(self, target: ResponseTarget, body: dict[str, Any]) -> None:
        response_type = body.get("response_type", "ephemeral")
        if response_type not in ("ephemeral", "in_channel"):
            raise SlackError("invalid_payload")
        if body.get("delete_original"):
            if target.channel and target.message_ts:
                gone = self._messages.get(target.channel, {}).pop(target.message_ts, None)
                if gone is not None:
                    self._deleted.setdefault(target.channel, {})[target.message_ts] = gone
            return
        text, blocks = self._content(dict(body))
        if body.get("replace_original"):
            original = self._messages.get(target.channel or "", {}).get(target.message_ts or "")
            if original is not None:
                original["text"] = text or ""
                if blocks:
                    original["blocks"] = blocks
                else:
                    original.pop("blocks", None)
                original["edited"] = {"user": self.bot_user_id, "ts": self._next_ts()}
            return
        if response_type == "in_channel" and target.channel:
            ts = self._next_ts()
            message = {"type": "message", "user": self.bot_user_id, "bot_id": self.bot_id, "app_id": self.app_id,
                       "team": self.team_id, "ts": ts, "text": text or ""}
            if blocks:
                message["blocks"] = blocks
            if body.get("thread_ts"):
                message["thread_ts"] = body["thread_ts"]
            self._messages.setdefault(target.channel, {})[ts] = message
            return
        record = {"channel": target.channel, "user": target.user, "text": text or "",
                  "message_ts": self._next_ts(), "via": "response_url"}
        if blocks:
            record["blocks"] = blocks
        self.ephemerals.append(record)

    # -- internals ------------------------------------------------------------------------------------------

    def _open_dm(self, user_id: str) -> str:
        cid = dm_channel_id(user_id)
        self._messages.setdefault(cid, {})
        return cid

    def _rate_check(self, cid: str) -> None:
        if not self.post_rate_per_channel:
            return
        last = self._last_post.get(cid)
        if last is None:
            return
        wait = 1.0 / self.post_rate_per_channel - (self.clock() - last)
        if wait > self.post_rate_tolerance:
            raise SlackError("ratelimited", status=429, headers={"Retry-After": str(max(1, math.ceil(wait)))})

    def _next_ts(self) -> str:
        """Unique, increasing message timestamps like "1732550000.000100"."""
        seconds = int(self.clock())
        last_seconds, last_seq = self._last_ts
        if seconds <= last_seconds:
            seconds, seq = last_seconds, last_seq + 100
            if seq > 999_999:
                seconds, seq = seconds + 1, 100
        else:
            seq = 100
        self._last_ts = (seconds, seq)
        return f"{seconds}.{seq:06d}"
