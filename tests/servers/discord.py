"""A fake Discord (REST API v10 and the gateway) on 127.0.0.1, for the real discord.py 2.x client pointed at it.

    async with FakeDiscord() as fake:
        discord.http.Route.BASE = fake.api_url                                  # every REST call, webhooks too
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(fake.gateway_url)  # the first connection
        client = discord.Client(intents=discord.Intents.none() | guilds)
        await client.login(fake.bot_token); task = asyncio.create_task(client.connect())
        await fake.wait_ready()
        interaction = await fake.slash("desk status", user=ALICE)              # INTERACTION_CREATE over the gateway
        await fake.wait_for_callback(interaction)                              # what the bot answered, and when

Pointing discord.py elsewhere (checked in discord.py 2.4.0, 2.5.0 and 2.7.1's source):
- `discord.http.Route.BASE` (class attribute, "https://discord.com/api/v10") is read when each Route is built, and
  every REST call goes through a Route, the interaction callback and the follow-up webhooks too
  (discord/webhook/async_.py imports Route from discord/http.py; it has no host of its own). `_set_api_version()`
  rewrites it, so set it after any such call. Other hard-coded hosts are only links the desk never fetches:
  `Asset.BASE` (cdn.discordapp.com), `Invite.BASE` (discord.gg), `Webhook.url` and jump URLs (discord.com).
- The gateway: a plain `discord.Client` never asks `GET /gateway/bot`; it connects to the class attribute
  `discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY` (yarl.URL("wss://gateway.discord.gg/")) and, after READY, to
  READY's `resume_gateway_url` when it resumes; an INVALID_SESSION sends it back to DEFAULT_GATEWAY. Only
  `AutoShardedClient` (with no shard_count) asks `GET /gateway/bot` for its `url`. So both must be set:
  Route.BASE = `api_url`, DEFAULT_GATEWAY = yarl.URL(`gateway_url`); or, from one setting (DISCORD_API_URL): set
  Route.BASE, log in, then DEFAULT_GATEWAY = yarl.URL(url) from `client.http.get_bot_gateway()` before connecting
  (tests/test_fake_discord.py shows both).
- The connection: `<gateway>?v=10&encoding=json&compress=zlib-stream` (or `zstd-stream` in 2.5+ when `zstandard`,
  or Python 3.14's compression.zstd, can be imported): transport compression, one zlib (or zstd) stream per
  connection, each payload flushed (zlib: ending in 00 00 ff ff) in a binary frame. The client sends plain JSON
  text. Both are spoken here, and no compression when `compress` is absent. IDENTIFY carries the bare token
  (no "Bot "), `intents`, `properties`, `compress: true` and `large_threshold`; discord.py answers HELLO with an
  immediate heartbeat, then one every `heartbeat_interval` ms from a thread.
- REST: `Authorization: Bot <token>` on bot routes; none on the interaction callback and follow-up webhooks (the
  token in the path is the credential). The callback is `POST .../callback?with_response=1` since 2.5 (it reads
  the interaction callback response, 200) and without it before (204). Follow-ups are `POST
  /webhooks/{app}/{token}?wait=1&with_components=0|1`; edits `PATCH /webhooks/{app}/{token}/messages/@original`.
- Rate limits: discord.py reads `X-RateLimit-Limit/-Remaining/-Reset-After/-Reset/-Bucket` on every answer and
  waits out an exhausted bucket before its next call; on a 429 it sleeps the body's float `retry_after` (the header
  is not read) and retries, up to 5 tries, but only when the answer carries a `Via` header: a 429 without one is
  taken for a Cloudflare ban and raised at once (http.py and webhook/async_.py). Every answer here carries
  `Via: 1.1 google`, except LoopbackServer's injected "429" fault, which plays such a ban.

What Discord checks, answered as Discord answers (status, `{"message", "code"[, "errors"]}`); sources: the official
docs (discord/discord-api-docs: interactions/receiving-and-responding, components/reference, resources/message,
topics/rate-limits, topics/opcodes-and-status-codes) and, for exact wordings, errors reported in issues:
- Bot routes without `Authorization: Bot <the token>`: 401 `{"message": "401: Unauthorized", "code": 0}`.
- The interaction callback must come within `interaction_deadline` (3 s) of the dispatch, else the token is
  invalidated: 404 `{"message": "Unknown interaction", "code": 10062}`; a second callback: 400
  `{"message": "Interaction has already been acknowledged.", "code": 40060}` (both as seen in library issues).
  DEFERRED_UPDATE_MESSAGE (6) and UPDATE_MESSAGE (7) only for component interactions, MODAL (9) not for a modal
  submit (docs); refused with 50035 here (the wording is assumed).
- Follow-ups and edits with the token for `token_ttl` (15 minutes) after the dispatch; past it 401
  `{"message": "Invalid Webhook Token", "code": 50027}` (discord-api-docs issue 6851); before any callback, or
  after the 3 s deadline passed unanswered, 404 `{"message": "Unknown Webhook", "code": 10015}` (as discord.js users
  see for a follow-up to an unanswered interaction; that this is the code for both cases is assumed).
  The first follow-up after a DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE (5) edits the loading message instead of
  posting a new one (documented backwards-compatible behaviour); `wait` is always true for follow-ups.
- Messages: content <= 2000; <= 10 embeds; an embed's title <= 256, description <= 4096, <= 25 fields, field name
  <= 256 and value <= 1024 (both required), footer text <= 2048, author name <= 256, measured with surrounding
  whitespace trimmed; <= 6000 characters over those fields of all embeds of a message ("Embed size exceeds maximum
  size of 6000", its code MAX_EMBED_SIZE_EXCEEDED assumed). Components (legacy, without IS_COMPONENTS_V2): <= 5
  action rows at the top; a row holds 1-5 buttons or one select; a button's label <= 80; a non-link button has a
  `custom_id` <= 100 and no `url`; a link button (style 5) has a `url` and no `custom_id`; custom_ids unique in the
  message (COMPONENT_CUSTOM_ID_DUPLICATED "Component custom id was already specified", discord-api-docs issue 3673).
  Length errors are 400 `{"code": 50035, "message": "Invalid Form Body", "errors": {path: {"_errors": [{"code":
  "BASE_TYPE_MAX_LENGTH", "message": "Must be N or fewer in length."}]}}}`, every violation collected; callback
  errors sit under `data`. The error code for a too-wide row is assumed (BASE_TYPE_MAX_LENGTH). An empty message:
  400 50006 "Cannot send an empty message". IS_COMPONENTS_V2 messages are checked only for <= 40 components, their
  buttons and custom_ids, and no content/embeds.
- allowed_mentions: `parse` among users/roles/everyone, not `users` (`roles`) both parsed and listed (50035,
  wording assumed), <= 100 ids each; what would ping is recorded per message (`pings`), Discord's default (no
  allowed_mentions) being to parse everything.
- Threads from a message: the thread's id is the message's id; name 1-100, auto_archive_duration one of
  60/1440/4320/10080; a second thread on a message: 400 `{"code": 160004, "message": "A thread has already been
  created for this message"}`.
- Rate limits: `set_bucket()` gives a route a bucket (limit per window, per top-level resource): its answers
  carry the X-RateLimit-* headers and a call past the limit gets 429 `{"message": "You are being rate limited.",
  "retry_after": <float s>, "global": false}` with `Retry-After` (whole seconds, rounded up) and
  `X-RateLimit-Scope: user`. `rate_limit_next()` answers the next calls of a route with such a 429 whatever the
  bucket says (a sub-limit or a shared/global limit the headers did not announce).
- Gateway: HELLO (op 10) first; IDENTIFY (op 2) with the wrong token closes 4004, bad or missing intents 4013
  (missing assumed), privileged intents the application was not granted (`privileged_intents`) 4014, a second
  IDENTIFY 4005, anything but a heartbeat before it 4003, an unknown op 4001, undecodable JSON 4002, v != 10 4012.
  READY then GUILD_CREATE (only with the GUILDS intent) for the configured guild; RESUME (op 6) replays what the
  session missed and sends RESUMED; an unknown session gets INVALID_SESSION (op 9, d=false). Heartbeats (op 1) get
  HEARTBEAT_ACK (op 11). INTERACTION_CREATE needs no intent; the bot's own MESSAGE_CREATE/UPDATE need
  GUILD_MESSAGES, THREAD_CREATE needs GUILDS.

Test-side helpers: `slash("desk approve", user=ALICE, options={...})` and `click(message_id, custom_id, user=...)`
dispatch INTERACTION_CREATE (`inject_interaction` for any other kind) and return an `Interaction` record: its
`payload`, `callback` ({type, data}) and `callback_at`, `response_message_id` (@original), `followups`, `edits`,
`refused`; `wait_for_callback/_followups/_edits` and `wait_for(predicate)` wait on them. State: `messages(channel)`
(ephemeral ones apart, in `ephemerals`, with "_for"), `message(id)`, `original(interaction)`, `thread(id)`,
`pings`, `edits`, `commands`, `calls` / `posted(route)` / `refused(route)` / `refusals`, `rate_limited`,
`identifies`, `resumes`, `closes`, `connections`. Faults: `set_bucket`, `rate_limit_next`, `drop_connection`,
`reconnect_request`, `invalidate_session`, `hide_channel`, and LoopbackServer's `faults` (bodies by `fault_body`; its
JSON is `application/json; charset=utf-8`, which discord.py reads as text: an injected 5xx is retried all the same).
Time: the deadline and the token's life run on `clock` (pass one a test can move).

Assumed (not checked against Discord): the `Via` value (discord.py checks only that there is one); the message
types of interaction answers (20 for a command's, 19 for a component's, 0 for a follow-up); the bot user's id being
the application's; a component's `id` numbering; the exact codes and wordings marked assumed above; the command
name check (ASCII word characters, lowercase; Discord's allows more scripts); error codes for a wrong application or
guild in a path (403 50001).
Not modelled: permission overwrites (a member's permissions are its roles'; `hide_channel()` makes a channel answer
403 50001 "Missing Access"), message deletion other than interaction responses, reactions, DMs, the global
50 requests/s, gateway send rate limits and heartbeat timeouts, the 100-command limit, autocomplete, modal
submissions (injectable with `inject_interaction`), attachments beyond recording multipart `files[n]`.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import math
import re
import secrets
import time
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email import message_from_bytes
from email.policy import HTTP
from typing import Any, ClassVar

from aiohttp import WSMsgType, web

from .base import LoopbackServer, ServedFake, wait_until

# --- identities ------------------------------------------------------------------------------------------------

API_VERSION = 10
API_PATH = f"/api/v{API_VERSION}"
DEFAULT_BOT_TOKEN = "MTMwMDAwMDAwMDAwMDAwMDAwMQ.GfakeB.oddsdesk-fake-discord-bot-token"
APPLICATION_ID = "1300000000000000001"
BOT_USER_ID = APPLICATION_ID  # a bot user created with its application shares its id
BOT_NAME = "oddsdesk"
VERIFY_HEX = "9c0f1e2d3b4a59687766554433221100ffeeddccbbaa99887766554433221100"
GUILD_ID = "1300000000000000100"
GUILD_NAME = "Odds Desk"
OWNER_ID = "1300000000000000900"
DESK_CHANNEL = "1300000000000000200"
ALERTS_CHANNEL = "1300000000000000201"
DEFAULT_CHANNELS: dict[str, str] = {DESK_CHANNEL: "trading-desk", ALERTS_CHANNEL: "desk-alerts"}
APPROVERS_ROLE = "1300000000000000301"
OPERATORS_ROLE = "1300000000000000302"
VIEWERS_ROLE = "1300000000000000303"
BOT_ROLE = "1300000000000000309"
DEFAULT_ROLES: dict[str, str] = {APPROVERS_ROLE: "approvers", OPERATORS_ROLE: "operators",
                                 VIEWERS_ROLE: "viewers"}
ALICE = "1300000000000000401"  # approver
BOB = "1300000000000000402"  # operator
CAROL = "1300000000000000403"  # viewer
MALLORY = "1300000000000000404"  # no role
DEFAULT_MEMBERS: dict[str, tuple[str, tuple[str, ...]]] = {
    ALICE: ("alice", (APPROVERS_ROLE,)), BOB: ("bob", (OPERATORS_ROLE,)), CAROL: ("carol", (VIEWERS_ROLE,)),
    MALLORY: ("mallory", ()), OWNER_ID: ("owner", ()),
}

DISCORD_EPOCH_MS = 1_420_070_400_000

# --- limits and codes ------------------------------------------------------------------------------------------

INTERACTION_DEADLINE = 3.0
TOKEN_TTL = 15 * 60.0
MAX_CONTENT = 2000
MAX_EMBEDS = 10
MAX_EMBED_TITLE = 256
MAX_EMBED_DESCRIPTION = 4096
MAX_EMBED_FIELDS = 25
MAX_FIELD_NAME = 256
MAX_FIELD_VALUE = 1024
MAX_FOOTER = 2048
MAX_AUTHOR_NAME = 256
MAX_EMBED_TOTAL = 6000
MAX_ACTION_ROWS = 5
MAX_ROW_BUTTONS = 5
MAX_V2_COMPONENTS = 40
MAX_CUSTOM_ID = 100
MAX_BUTTON_LABEL = 80
MAX_SELECT_OPTIONS = 25
MAX_MODAL_TITLE = 45
MAX_MENTION_IDS = 100
MAX_THREAD_NAME = 100
ARCHIVE_DURATIONS = (60, 1440, 4320, 10080)
MAX_COMMAND_NAME = 32
MAX_COMMAND_DESCRIPTION = 100
MAX_COMMAND_OPTIONS = 25
COMMAND_NAME = re.compile(r"^[-_'\w]{1,32}$")  # Discord's is [-_'\p{L}\p{N}\p{sc=Deva}\p{sc=Thai}]{1,32}

EPHEMERAL = 1 << 6
LOADING = 1 << 7
HAS_THREAD = 1 << 5
IS_COMPONENTS_V2 = 1 << 15

# Gateway intents (the bits discord.py 2.7 knows); the privileged ones must be enabled for the application.
GUILDS = 1 << 0
GUILD_MEMBERS = 1 << 1
GUILD_PRESENCES = 1 << 8
GUILD_MESSAGES = 1 << 9
MESSAGE_CONTENT = 1 << 15
VALID_INTENTS = 0b11001100011111111111111111
PRIVILEGED_INTENTS = GUILD_MEMBERS | GUILD_PRESENCES | MESSAGE_CONTENT

# Permission bits the fake hands out (a role's permissions OR'ed; no overwrites).
VIEW_CHANNEL = 1 << 10
SEND_MESSAGES = 1 << 11
EMBED_LINKS = 1 << 14
READ_MESSAGE_HISTORY = 1 << 16
USE_APPLICATION_COMMANDS = 1 << 31
CREATE_PUBLIC_THREADS = 1 << 35
SEND_MESSAGES_IN_THREADS = 1 << 38
EVERYONE_PERMISSIONS = (VIEW_CHANNEL | SEND_MESSAGES | READ_MESSAGE_HISTORY | USE_APPLICATION_COMMANDS
                        | SEND_MESSAGES_IN_THREADS)
BOT_PERMISSIONS = EVERYONE_PERMISSIONS | EMBED_LINKS | CREATE_PUBLIC_THREADS

# Interaction and callback types.
APPLICATION_COMMAND, MESSAGE_COMPONENT, MODAL_SUBMIT = 2, 3, 5
CHANNEL_MESSAGE, DEFERRED_CHANNEL_MESSAGE, DEFERRED_UPDATE, UPDATE_MESSAGE, MODAL = 4, 5, 6, 7, 9
CALLBACK_TYPES = (1, 4, 5, 6, 7, 8, 9, 10, 12)
OPTION_SUBCOMMAND, OPTION_GROUP, OPTION_STRING, OPTION_INTEGER, OPTION_BOOLEAN = 1, 2, 3, 4, 5
OPTION_USER, OPTION_CHANNEL, OPTION_ROLE, OPTION_MENTIONABLE, OPTION_NUMBER = 6, 7, 8, 9, 10


def fault_body(status: int) -> dict[str, Any]:
    """Bodies for LoopbackServer's injected faults. Its "429" plays a Cloudflare ban (no `Via`, no retry_after),
    whose body is the one Discord's edge serves (discord-api-docs issue 5810); real rate limits: `set_bucket()`,
    `rate_limit_next()`."""
    if status == 429:
        return {"code": 0, "message": "You are being blocked from accessing our API temporarily due to exceeding "
                                      "our rate limits frequently."}
    names = {500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable"}
    return {"message": f"{status}: {names.get(status, 'Error')}", "code": 0}


class DiscordError(Exception):
    def __init__(self, status: int, code: int, message: str, *, errors: dict[str, Any] | None = None,
                 headers: Mapping[str, str] | None = None, payload: dict[str, Any] | None = None) -> None:
        super().__init__(f"{status} {code} {message}")
        self.status, self.code, self.message = status, code, message
        self.errors, self.headers, self.payload = errors, dict(headers or {}), payload

    def body(self) -> dict[str, Any]:
        if self.payload is not None:
            return dict(self.payload)
        body: dict[str, Any] = {"message": self.message, "code": self.code}
        if self.errors is not None:
            body["errors"] = self.errors
        return body


def unauthorized() -> DiscordError:
    return DiscordError(401, 0, "401: Unauthorized")


def unknown(what: str, code: int) -> DiscordError:
    return DiscordError(404, code, f"Unknown {what}")


class FormErrors:
    """Collects field errors into Discord's nested `errors` object and raises 50035 Invalid Form Body."""

    def __init__(self, prefix: Iterable[str | int] = ()) -> None:
        self.prefix = tuple(prefix)
        self.tree: dict[str, Any] = {}
        self.flat: list[str] = []

    def add(self, path: Iterable[str | int], code: str, message: str) -> None:
        full = self.prefix + tuple(path)
        node = self.tree
        for part in full:
            node = node.setdefault(str(part), {})
        node.setdefault("_errors", []).append({"code": code, "message": message})
        self.flat.append(f"{'.'.join(map(str, full))}: {message}")

    def too_long(self, path: Iterable[str | int], limit: int) -> None:
        self.add(path, "BASE_TYPE_MAX_LENGTH", f"Must be {limit} or fewer in length.")

    def required(self, path: Iterable[str | int]) -> None:
        self.add(path, "BASE_TYPE_REQUIRED", "This field is required")

    def raise_if_any(self) -> None:
        if self.tree:
            raise DiscordError(400, 50035, "Invalid Form Body", errors=self.tree)


def _text_len(value: Any) -> int:
    return len(value.strip()) if isinstance(value, str) else 0


def now_iso(at: float | None = None) -> str:
    moment = datetime.fromtimestamp(time.time() if at is None else at, timezone.utc)
    return moment.isoformat(timespec="microseconds")


# --- state records ---------------------------------------------------------------------------------------------


@dataclass
class Call:
    """A request that reached a route (after its faults): the route's template, its path values, the body."""

    method: str
    route: str
    params: dict[str, str]
    query: dict[str, str]
    body: Any
    at: float = 0.0  # fake clock, when it arrived
    status: int = 0
    answer: Any = None


@dataclass
class Interaction:
    """An interaction the fake dispatched, and everything the bot did with its token."""

    id: str
    token: str
    type: int
    payload: dict[str, Any]
    user_id: str
    channel_id: str
    created_at: float  # fake clock, when the dispatch was queued
    dispatched_at: float | None = None  # fake clock, when the INTERACTION_CREATE frame went out
    message_id: str | None = None  # the message a component was on
    callback: dict[str, Any] | None = None  # the accepted {type, data}
    callback_at: float | None = None
    callback_query: dict[str, str] = field(default_factory=dict)
    response_message_id: str | None = None  # @original: the message of a type 4/5 answer, or the component's
    followups: list[str] = field(default_factory=list)  # message ids created by follow-ups
    edits: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (message id, PATCH body)
    refused: list[tuple[str, int, dict[str, Any]]] = field(default_factory=list)  # (what, status, body)
    modal: dict[str, Any] | None = None

    @property
    def callback_type(self) -> int | None:
        return None if self.callback is None else self.callback["type"]


@dataclass
class Bucket:
    limit: int
    per: float  # seconds in a window
    name: str
    windows: dict[str, tuple[float, int]] = field(default_factory=dict)  # major parameter -> (start, count)


@dataclass
class ForcedLimit:
    route: str
    retry_after: float
    times: int
    scope: str
    is_global: bool


@dataclass
class Session:
    id: str
    intents: int
    identify: dict[str, Any]
    seq: int = 0
    events: list[dict[str, Any]] = field(default_factory=list)  # every dispatched frame, for RESUME
    socket: Any = None  # the live _Connection, or None between connections


class _Connection:
    """One gateway websocket: its compression context and its session once identified."""

    def __init__(self, socket: web.WebSocketResponse, compress: str | None) -> None:
        self.socket = socket
        self.compress = compress
        self.session: Session | None = None
        self.heartbeats = 0
        self._lock = asyncio.Lock()
        if compress == "zlib-stream":
            self._zlib = zlib.compressobj()
        elif compress == "zstd-stream":
            self._zstd = _zstd_compressor()

    async def send(self, frame: dict[str, Any]) -> None:
        text = json.dumps(frame, separators=(",", ":"), ensure_ascii=False)
        async with self._lock:  # one compressed stream: frames must leave in the order they were compressed
            if self.socket.closed:
                return
            if self.compress == "zlib-stream":
                await self.socket.send_bytes(self._zlib.compress(text.encode()) + self._zlib.flush(zlib.Z_SYNC_FLUSH))
            elif self.compress == "zstd-stream":
                await self.socket.send_bytes(self._zstd(text.encode()))
            else:
                await self.socket.send_str(text)


def _zstd_compressor() -> Callable[[bytes], bytes]:
    """A streaming zstd compressor flushed per payload, as `compress=zstd-stream` wants (discord.py 2.5+ with
    `zstandard` or Python 3.14's compression.zstd)."""
    try:
        import zstandard  # type: ignore[import-not-found]
    except ImportError:
        from compression import zstd  # type: ignore[import-not-found]

        stdlib = zstd.ZstdCompressor()
        return lambda data: stdlib.compress(data, zstd.ZstdCompressor.FLUSH_BLOCK)
    stream = zstandard.ZstdCompressor().compressobj()
    return lambda data: stream.compress(data) + stream.flush(zstandard.COMPRESSOBJ_FLUSH_BLOCK)


def _zstd_available() -> bool:
    try:
        _zstd_compressor()
    except ImportError:
        return False
    return True


@dataclass(frozen=True)
class _Route:
    method: str
    template: str
    pattern: re.Pattern[str]
    handler: Callable[..., Any]
    auth: str  # "bot", "none", "interaction", "webhook"
    major: str | None  # the top-level resource parameter of the rate-limit bucket


def _json(body: Any, *, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    """Discord answers `Content-Type: application/json` exactly; discord.py decodes JSON only on that string."""
    return web.Response(body=json.dumps(body).encode(), status=status, headers=headers,
                        content_type="application/json")


def _compile(template: str) -> re.Pattern[str]:
    regex = re.sub(r"\\\{(\w+)\\\}", lambda m: f"(?P<{m.group(1)}>[^/]+)", re.escape(template))
    return re.compile(f"^{regex}$")


# --- the fake --------------------------------------------------------------------------------------------------


class FakeDiscord(ServedFake):
    instances: ClassVar[list[FakeDiscord]] = []

    def __init__(self, *, bot_token: str = DEFAULT_BOT_TOKEN, application_id: str = APPLICATION_ID,
                 guild_id: str = GUILD_ID, channels: Mapping[str, str] | None = None,
                 roles: Mapping[str, str] | None = None,
                 members: Mapping[str, tuple[str, Iterable[str]]] | None = None,
                 privileged_intents: int = 0, heartbeat_interval_ms: int = 41_250,
                 interaction_deadline: float = INTERACTION_DEADLINE, token_ttl: float = TOKEN_TTL,
                 clock: Callable[[], float] = time.monotonic, hang_seconds: float = 30.0,
                 latency: float = 0.0) -> None:
        FakeDiscord.instances.append(self)
        self.bot_token = bot_token
        self.application_id = application_id
        self.bot_user_id = application_id
        self.guild_id = guild_id
        self.privileged_intents = privileged_intents
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.interaction_deadline = interaction_deadline
        self.token_ttl = token_ttl
        self.clock = clock
        self.channels: dict[str, dict[str, Any]] = {}
        for position, (cid, name) in enumerate((channels or DEFAULT_CHANNELS).items()):
            self.add_channel(cid, name, position=position)
        self.roles: dict[str, dict[str, Any]] = {}
        self._add_role(guild_id, "@everyone", EVERYONE_PERMISSIONS, position=0)
        self._add_role(BOT_ROLE, BOT_NAME, BOT_PERMISSIONS, position=1, bot=True)
        for position, (rid, name) in enumerate((roles or DEFAULT_ROLES).items(), start=2):
            self._add_role(rid, name, EVERYONE_PERMISSIONS, position=position)
        self.members: dict[str, dict[str, Any]] = {}
        self.add_member(self.bot_user_id, BOT_NAME, [BOT_ROLE], bot=True)
        for uid, (name, member_roles) in (members or DEFAULT_MEMBERS).items():
            self.add_member(uid, name, member_roles)
        self.hidden_channels: set[str] = set()

        self.calls: list[Call] = []
        self.refusals: list[Call] = []  # calls answered 4xx
        self.commands: dict[str | None, list[dict[str, Any]]] = {}  # guild id (None: global) -> commands
        self._command_ids: dict[tuple[str | None, str, int], str] = {}
        self._messages: dict[str, dict[str, dict[str, Any]]] = {}  # channel id -> message id -> message
        self.ephemerals: dict[str, dict[str, Any]] = {}  # message id -> ephemeral message (with "_for": user id)
        self.pings: dict[str, dict[str, Any]] = {}  # message id -> who its mentions would notify
        self.edits: list[tuple[str, dict[str, Any]]] = []  # (message id, body) for every accepted edit
        self.interactions: dict[str, Interaction] = {}
        self._by_token: dict[str, Interaction] = {}
        self.buckets: dict[str, Bucket] = {}
        self._forced: list[ForcedLimit] = []
        self.rate_limited: list[tuple[float, str, str, float]] = []  # (clock, method, path, retry_after)
        self.sessions: dict[str, Session] = {}
        self.connections: list[_Connection] = []
        self.identifies: list[dict[str, Any]] = []  # IDENTIFY payloads, token taken out
        self.resumes: list[dict[str, Any]] = []  # RESUME payloads, token taken out
        self.closes: list[int] = []  # close codes the gateway sent
        self.session_start_remaining = 1000
        self._changed = asyncio.Event()
        self._outbox: list[tuple[str, dict[str, Any], int]] = []  # gateway events a REST call causes
        self._snowflake_seq = itertools.count()
        self._last_snowflake = 0

        self._routes: list[_Route] = []
        add = self._route
        add("GET", "/gateway", self._get_gateway, auth="none")
        add("GET", "/gateway/bot", self._get_gateway_bot)
        add("GET", "/users/@me", self._get_me)
        add("GET", "/oauth2/applications/@me", self._get_application)
        add("GET", "/applications/@me", self._get_application)
        for scope in ("/applications/{application_id}/commands",
                      "/applications/{application_id}/guilds/{guild_id}/commands"):
            add("GET", scope, self._get_commands)
            add("PUT", scope, self._put_commands)
        add("GET", "/channels/{channel_id}", self._get_channel, major="channel_id")
        add("POST", "/channels/{channel_id}/messages", self._post_message, major="channel_id")
        add("GET", "/channels/{channel_id}/messages/{message_id}", self._get_message, major="channel_id")
        add("PATCH", "/channels/{channel_id}/messages/{message_id}", self._patch_message, major="channel_id")
        add("POST", "/channels/{channel_id}/messages/{message_id}/threads", self._start_thread,
            major="channel_id")
        add("POST", "/interactions/{interaction_id}/{interaction_token}/callback", self._callback,
            auth="interaction", major="interaction_id")
        add("POST", "/webhooks/{application_id}/{interaction_token}", self._followup, auth="webhook",
            major="interaction_token")
        for verb, handler in (("GET", self._get_webhook_message), ("PATCH", self._patch_webhook_message),
                              ("DELETE", self._delete_webhook_message)):
            add(verb, "/webhooks/{application_id}/{interaction_token}/messages/{message_id}", handler,
                auth="webhook", major="interaction_token")

        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.router.add_route("*", API_PATH + "/{tail:.*}", self._api)
        app.router.add_get("/gateway", self._gateway)
        app.router.add_get("/gateway/resume", self._gateway)
        app.on_response_prepare.append(self._via)
        self.server = LoopbackServer(app, error_body=fault_body, hang_seconds=hang_seconds, latency=latency)

    # -- lifecycle and addresses --------------------------------------------------------------------------------

    async def __aexit__(self, *exc: object) -> None:
        for connection in list(self.connections):
            if not connection.socket.closed:
                await connection.socket.close(code=1001, message=b"fake shutting down")
        await super().__aexit__(*exc)

    @property
    def api_url(self) -> str:
        """What `discord.http.Route.BASE` must be (no trailing slash: routes start with one)."""
        return self.server.url + API_PATH

    @property
    def gateway_url(self) -> str:
        """What `DiscordWebSocket.DEFAULT_GATEWAY` must be (discord.py adds v, encoding and compress)."""
        return self.server.url.replace("http://", "ws://") + "/gateway"

    @property
    def resume_gateway_url(self) -> str:
        return self.server.url.replace("http://", "ws://") + "/gateway/resume"

    def everything_received(self) -> str:
        """Every request body and gateway payload the bot sent (tokens taken out), as one text."""
        return json.dumps([[c.body for c in self.calls], self.identifies, self.resumes], default=str,
                          ensure_ascii=False)

    # -- setting up -------------------------------------------------------------------------------------------

    def add_channel(self, channel_id: str, name: str, *, position: int | None = None) -> None:
        self.channels[channel_id] = {
            "id": channel_id, "type": 0, "guild_id": self.guild_id, "name": name,
            "position": len(self.channels) if position is None else position, "permission_overwrites": [],
            "topic": None, "nsfw": False, "last_message_id": None, "rate_limit_per_user": 0, "parent_id": None,
            "flags": 0, "last_pin_timestamp": None,
        }

    def hide_channel(self, channel_id: str) -> None:
        """The bot cannot see this channel: its routes answer 403 50001 Missing Access."""
        self.hidden_channels.add(channel_id)

    def _add_role(self, role_id: str, name: str, permissions: int, *, position: int, bot: bool = False) -> None:
        self.roles[role_id] = {
            "id": role_id, "name": name, "color": 0, "colors": {"primary_color": 0, "secondary_color": None,
                                                                 "tertiary_color": None},
            "hoist": False, "icon": None, "unicode_emoji": None, "position": position,
            "permissions": str(permissions), "managed": bot, "mentionable": False, "flags": 0,
            **({"tags": {"bot_id": self.application_id}} if bot else {}),
        }

    def add_role(self, role_id: str, name: str, permissions: int = EVERYONE_PERMISSIONS) -> None:
        self._add_role(role_id, name, permissions, position=len(self.roles))

    def add_member(self, user_id: str, name: str, roles: Iterable[str] = (), *, bot: bool = False) -> None:
        self.members[user_id] = {"user": self._user(user_id, name, bot=bot), "roles": list(roles)}

    def set_roles(self, user_id: str, roles: Iterable[str]) -> None:
        self.members[user_id]["roles"] = list(roles)

    def set_bucket(self, route: str, *, limit: int, per: float, name: str | None = None) -> Bucket:
        """Give a route ("POST /channels/{channel_id}/messages") a bucket of `limit` calls per `per` seconds, per
        top-level resource (channel, guild, interaction or webhook token)."""
        self._find_route(route)
        bucket = Bucket(limit, per, name or secrets.token_hex(16))
        self.buckets[route] = bucket
        return bucket

    def rate_limit_next(self, route: str, *, retry_after: float, times: int = 1, scope: str = "user",
                        is_global: bool = False) -> None:
        """Answer the next `times` calls of `route` 429 with this float `retry_after`, whatever its bucket says."""
        self._find_route(route)
        self._forced.append(ForcedLimit(route, retry_after, times, "global" if is_global else scope, is_global))

    # -- looking at the state ---------------------------------------------------------------------------------

    def messages(self, channel_id: str) -> list[dict[str, Any]]:
        """The channel's (or thread's) messages as they stand, oldest first; ephemeral ones are not there."""
        return [dict(m) for m in self._messages.get(channel_id, {}).values()]

    def message(self, message_id: str) -> dict[str, Any] | None:
        """A message anywhere, ephemeral ones included (with "_for": the only user who sees it)."""
        for channel in self._messages.values():
            if message_id in channel:
                return dict(channel[message_id])
        found = self.ephemerals.get(message_id)
        return dict(found) if found is not None else None

    def thread(self, thread_id: str) -> dict[str, Any]:
        return dict(self.channels[thread_id])

    def posted(self, route: str) -> list[Call]:
        """Accepted calls (2xx) of a route, e.g. "POST /channels/{channel_id}/messages"."""
        method, template = route.split(" ", 1)
        return [c for c in self.calls if c.method == method and c.route == template and 200 <= c.status < 300]

    def refused(self, route: str | None = None) -> list[Call]:
        if route is None:
            return list(self.refusals)
        method, template = route.split(" ", 1)
        return [c for c in self.refusals if c.method == method and c.route == template]

    async def wait_for(self, predicate: Callable[[], Any], timeout: float = 5.0) -> Any:
        """Wait until `predicate()` is truthy; returns its value."""
        return await wait_until(predicate, self._changed, timeout,
                                lambda: str([f"{c.method} {c.route} {c.status}" for c in self.calls]))

    async def wait_ready(self, timeout: float = 5.0) -> Session:
        """The session of a live connection that got READY."""
        return await self.wait_for(self._live_session, timeout)  # type: ignore[no-any-return]

    async def wait_for_callback(self, interaction: Interaction, timeout: float = 5.0) -> dict[str, Any]:
        return await self.wait_for(lambda: interaction.callback, timeout)  # type: ignore[no-any-return]

    async def wait_for_followups(self, interaction: Interaction, count: int = 1,
                                 timeout: float = 5.0) -> list[dict[str, Any]]:
        def enough() -> list[dict[str, Any]] | None:
            return [self.message(m) for m in interaction.followups] if len(interaction.followups) >= count else None
        return await self.wait_for(enough, timeout)  # type: ignore[no-any-return]

    async def wait_for_edits(self, interaction: Interaction, count: int = 1, timeout: float = 5.0) -> list[Any]:
        return await self.wait_for(lambda: interaction.edits if len(interaction.edits) >= count else None, timeout)

    def original(self, interaction: Interaction) -> dict[str, Any] | None:
        """The interaction's @original message as it stands."""
        if interaction.response_message_id is None:
            return None
        return self.message(interaction.response_message_id)

    # -- what a user does ---------------------------------------------------------------------------------------

    async def slash(self, command: str, *, user: str, options: Mapping[str, Any] | None = None,
                    channel: str = DESK_CHANNEL, locale: str = "en-US") -> Interaction:
        """A user runs a registered slash command: "scan", "desk status", "desk group sub". Option types come
        from the registered definition, as the user's client fills them; a command or a required option the
        user could not have given raises LookupError/ValueError here (the client would not send it)."""
        name, *path = command.split()
        definition = self._registered(name)
        options = dict(options or {})
        resolved: dict[str, dict[str, Any]] = {}
        node: dict[str, Any] = definition
        nested: list[dict[str, Any]] = []
        holder = nested
        for part in path:
            child = next((o for o in node.get("options") or [] if o["name"] == part
                          and o["type"] in (OPTION_SUBCOMMAND, OPTION_GROUP)), None)
            if child is None:
                raise LookupError(f"/{name} has no subcommand {part!r}")
            entry: dict[str, Any] = {"name": part, "type": child["type"], "options": []}
            holder.append(entry)
            holder = entry["options"]
            node = child
        if any(o["type"] in (OPTION_SUBCOMMAND, OPTION_GROUP) for o in node.get("options") or []):
            raise LookupError(f"/{command} needs a subcommand")
        declared = {o["name"]: o for o in node.get("options") or []}
        for option_name, value in options.items():
            spec = declared.get(option_name)
            if spec is None:
                raise LookupError(f"/{command} has no option {option_name!r}")
            holder.append({"name": option_name, "type": spec["type"],
                           "value": self._option_value(spec, value, resolved)})
        missing = [o["name"] for o in declared.values() if o.get("required") and o["name"] not in options]
        if missing:
            raise ValueError(f"/{command} requires {missing}")
        data: dict[str, Any] = {"id": definition["id"], "name": name, "type": 1, "options": nested}
        if definition.get("guild_id"):
            data["guild_id"] = definition["guild_id"]
        if resolved:
            data["resolved"] = resolved
        return await self.inject_interaction(APPLICATION_COMMAND, data, user=user, channel=channel, locale=locale)

    async def click(self, message_id: str, custom_id: str, *, user: str, locale: str = "en-US",
                    force: bool = False) -> Interaction:
        """A user clicks a button on a message. The button must be there, enabled, not a link, and the message
        visible to the user (an ephemeral one only to its owner); `force=True` skips those checks (a client
        showing a stale message)."""
        message = self.message(message_id)
        if message is None:
            raise LookupError(f"no message {message_id}")
        button = next((c for c in self._interactive(message.get("components") or [])
                       if c.get("custom_id") == custom_id), None)
        if not force:
            if "_for" in message and message["_for"] != user:
                raise PermissionError(f"message {message_id} is ephemeral to someone else")
            if button is None or button.get("type") != 2:
                raise LookupError(f"no button {custom_id!r} on message {message_id}; it has "
                                  f"{[c.get('custom_id') for c in self._interactive(message.get('components') or [])]}")
            if button.get("disabled"):
                raise LookupError(f"button {custom_id!r} is disabled")
        data = {"custom_id": custom_id, "component_type": 2 if button is None else button["type"]}
        if button is not None and "id" in button:
            data["id"] = button["id"]
        seen = {k: v for k, v in message.items() if k != "_for"}
        interaction = await self.inject_interaction(MESSAGE_COMPONENT, data, user=user, channel=message["channel_id"],
                                                    locale=locale, message=seen)
        interaction.message_id = message_id
        return interaction

    async def inject_interaction(self, kind: int, data: dict[str, Any], *, user: str, channel: str = DESK_CHANNEL,
                                 locale: str = "en-US", message: dict[str, Any] | None = None) -> Interaction:
        """Dispatch an INTERACTION_CREATE with the real payload shape; returns its record."""
        member = self.members.get(user)
        if member is None:
            raise LookupError(f"no member {user}")
        interaction_id = self._snowflake()
        token = "aW50ZXJhY3Rpb246" + base64.urlsafe_b64encode(
            f"{interaction_id}:{secrets.token_urlsafe(48)}".encode()).decode().rstrip("=")
        payload: dict[str, Any] = {
            "id": interaction_id, "application_id": self.application_id, "type": kind, "data": data,
            "guild_id": self.guild_id, "guild": {"id": self.guild_id, "locale": "en-US", "features": []},
            "channel_id": channel, "channel": self._partial_channel(channel),
            "member": self._member_payload(user), "token": token, "version": 1,
            "app_permissions": str(self._permissions(self.bot_user_id)), "locale": locale, "guild_locale": "en-US",
            "entitlements": [], "entitlement_sku_ids": [], "authorizing_integration_owners": {"0": self.guild_id},
            "context": 0, "attachment_size_limit": 10 * 1024 * 1024,
        }
        if message is not None:
            payload["message"] = message
        record = Interaction(interaction_id, token, kind, payload, user, channel, self.clock())
        self.interactions[interaction_id] = record
        self._by_token[token] = record
        session = self._current_session()
        if session is None:
            raise RuntimeError("no gateway session: the bot never identified")
        await self._dispatch(session, "INTERACTION_CREATE", payload)
        record.dispatched_at = self.clock() if session.socket is not None else None
        return record

    def _registered(self, name: str) -> dict[str, Any]:
        for scope in (self.guild_id, None):
            for command in self.commands.get(scope, []):
                if command["name"] == name and command.get("type", 1) == 1:
                    return command
        raise LookupError(f"/{name} is not registered (registered: "
                          f"{[c['name'] for cs in self.commands.values() for c in cs]})")

    def _option_value(self, spec: dict[str, Any], value: Any, resolved: dict[str, dict[str, Any]]) -> Any:
        kind = spec["type"]
        if kind == OPTION_STRING:
            if spec.get("choices") and value not in [c["value"] for c in spec["choices"]]:
                raise ValueError(f"{value!r} is not a choice of {spec['name']}")
            return str(value)
        if kind == OPTION_INTEGER:
            return int(value)
        if kind == OPTION_NUMBER:
            return float(value)
        if kind == OPTION_BOOLEAN:
            return bool(value)
        if kind in (OPTION_USER, OPTION_MENTIONABLE) and str(value) in self.members:
            resolved.setdefault("users", {})[str(value)] = self.members[str(value)]["user"]
            member = {k: v for k, v in self._member_payload(str(value)).items() if k not in ("user", "deaf", "mute")}
            resolved.setdefault("members", {})[str(value)] = member
            return str(value)
        if kind in (OPTION_ROLE, OPTION_MENTIONABLE) and str(value) in self.roles:
            resolved.setdefault("roles", {})[str(value)] = self.roles[str(value)]
            return str(value)
        if kind == OPTION_CHANNEL and str(value) in self.channels:
            resolved.setdefault("channels", {})[str(value)] = self._partial_channel(str(value))
            return str(value)
        raise ValueError(f"cannot give {value!r} to option {spec['name']} of type {kind}")

    # -- the gateway ------------------------------------------------------------------------------------------

    async def reconnect_request(self) -> None:
        """Send RECONNECT (op 7): the client should reconnect and resume."""
        connection = self._live_connection()
        await connection.send({"op": 7, "d": None, "s": None, "t": None})

    async def drop_connection(self, code: int = 4000) -> None:
        """Close the live connection with a resumable close code (4000 unknown error, by default)."""
        connection = self._live_connection()
        self.closes.append(code)
        await connection.socket.close(code=code, message=b"dropped by the fake")

    async def invalidate_session(self, resumable: bool = False) -> None:
        """Send INVALID_SESSION (op 9); unless resumable, the session is forgotten."""
        connection = self._live_connection()
        if not resumable and connection.session is not None:
            self.sessions.pop(connection.session.id, None)
        await connection.send({"op": 9, "d": resumable, "s": None, "t": None})

    def _live_connection(self) -> _Connection:
        live = [c for c in self.connections if not c.socket.closed and c.session is not None]
        if not live:
            raise RuntimeError("no live gateway connection")
        return live[-1]

    def _live_session(self) -> Session | None:
        live = [c for c in self.connections if not c.socket.closed and c.session is not None]
        return live[-1].session if live else None

    def _current_session(self) -> Session | None:
        """The live session, or the last one (between a drop and its RESUME, dispatches wait for the replay)."""
        live = self._live_session()
        if live is not None:
            return live
        return next(reversed(self.sessions.values()), None)

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse(autoping=True, max_msg_size=0)
        await socket.prepare(request)
        compress = request.query.get("compress")
        connection = _Connection(socket, compress if compress in ("zlib-stream", "zstd-stream") else None)
        self.connections.append(connection)
        try:
            if request.query.get("v") != str(API_VERSION):
                return await self._close(connection, 4012, "Invalid API version.")
            if request.query.get("encoding", "json") != "json":
                return await self._close(connection, 4002, "Error while decoding payload.")
            if compress == "zstd-stream" and not _zstd_available():
                return await self._close(connection, 4000, "zstd-stream asked, no zstd on this machine")
            await connection.send({"op": 10, "d": {"heartbeat_interval": self.heartbeat_interval_ms},
                                   "s": None, "t": None})
            async for frame in socket:
                if frame.type != WSMsgType.TEXT:
                    if frame.type == WSMsgType.BINARY:
                        return await self._close(connection, 4002, "Error while decoding payload.")
                    continue
                try:
                    payload = json.loads(frame.data)
                    op = payload["op"]
                except (ValueError, KeyError, TypeError):
                    return await self._close(connection, 4002, "Error while decoding payload.")
                closed = await self._gateway_op(connection, op, payload.get("d"))
                if closed:
                    return socket
        finally:
            if connection.session is not None and connection.session.socket is connection:
                connection.session.socket = None
            self._changed.set()
        return socket

    async def _close(self, connection: _Connection, code: int, reason: str) -> web.WebSocketResponse:
        self.closes.append(code)
        await connection.socket.close(code=code, message=reason.encode())
        self._changed.set()
        return connection.socket

    async def _gateway_op(self, connection: _Connection, op: Any, data: Any) -> bool:
        """Handle one client payload; True once the connection is closed."""
        if op == 1:
            connection.heartbeats += 1
            await connection.send({"op": 11, "d": None, "s": None, "t": None})
            return False
        if op == 2:
            return await self._identify(connection, data)
        if op == 6:
            return await self._resume(connection, data)
        if op in (3, 4, 8, 31):
            if connection.session is None:
                await self._close(connection, 4003, "Not authenticated.")
                return True
            return False
        await self._close(connection, 4001, "Unknown opcode.")
        return True

    async def _identify(self, connection: _Connection, data: Any) -> bool:
        if connection.session is not None:
            await self._close(connection, 4005, "Already authenticated.")
            return True
        if not isinstance(data, dict) or data.get("token") != self.bot_token:
            await self._close(connection, 4004, "Authentication failed.")
            return True
        intents = data.get("intents")
        if isinstance(intents, bool) or not isinstance(intents, int) or intents < 0 or intents & ~VALID_INTENTS:
            await self._close(connection, 4013, "Invalid intent(s).")
            return True
        if intents & PRIVILEGED_INTENTS & ~self.privileged_intents:
            await self._close(connection, 4014, "Disallowed intent(s).")
            return True
        shard = data.get("shard")
        if shard is not None and not (isinstance(shard, list) and len(shard) == 2 and 0 <= shard[0] < shard[1]):
            await self._close(connection, 4010, "Invalid shard.")
            return True
        self.identifies.append({k: v for k, v in data.items() if k != "token"})
        self.session_start_remaining -= 1
        session = Session(secrets.token_hex(16), intents, self.identifies[-1])
        self.sessions[session.id] = session
        connection.session, session.socket = session, connection
        ready = {
            "v": API_VERSION, "user_settings": {}, "user": self._user(self.bot_user_id, BOT_NAME, bot=True,
                                                                      me=True),
            "guilds": [{"id": self.guild_id, "unavailable": True}], "session_id": session.id,
            "session_type": "normal", "resume_gateway_url": self.resume_gateway_url, "relationships": [],
            "private_channels": [], "presences": [], "guild_join_requests": [], "geo_ordered_rtc_regions": [],
            "auth": {}, "application": {"id": self.application_id, "flags": 1 << 23},
            **({"shard": shard} if shard is not None else {}),
        }
        await self._dispatch(session, "READY", ready)
        if intents & GUILDS:
            await self._dispatch(session, "GUILD_CREATE", self._guild_create())
        return False

    async def _resume(self, connection: _Connection, data: Any) -> bool:
        if not isinstance(data, dict) or data.get("token") != self.bot_token:
            await self._close(connection, 4004, "Authentication failed.")
            return True
        self.resumes.append({k: v for k, v in data.items() if k != "token"})
        session = self.sessions.get(str(data.get("session_id")))
        if session is None:
            await connection.send({"op": 9, "d": False, "s": None, "t": None})
            return False
        seq = data.get("seq")
        if not isinstance(seq, int) or seq > session.seq:
            await self._close(connection, 4007, "Invalid seq.")
            return True
        connection.session, session.socket = session, connection
        for frame in session.events:
            if frame["s"] > seq:
                await connection.send(frame)
                if frame["t"] == "INTERACTION_CREATE":
                    missed = self.interactions.get(frame["d"]["id"])
                    if missed is not None and missed.dispatched_at is None:
                        missed.dispatched_at = self.clock()
        await self._dispatch(session, "RESUMED", {})
        return False

    async def _dispatch(self, session: Session, event: str, data: dict[str, Any]) -> None:
        session.seq += 1
        frame = {"op": 0, "s": session.seq, "t": event, "d": data}
        session.events.append(frame)
        if session.socket is not None:
            await session.socket.send(frame)
        self._changed.set()

    async def _dispatch_all(self, event: str, data: dict[str, Any], intent: int) -> None:
        session = self._live_session()
        if session is not None and session.intents & intent:
            await self._dispatch(session, event, data)

    # -- REST plumbing ----------------------------------------------------------------------------------------

    def _route(self, method: str, template: str, handler: Callable[..., Any], *, auth: str = "bot",
               major: str | None = None) -> None:
        self._routes.append(_Route(method, template, _compile(template), handler, auth, major))

    def _find_route(self, route: str) -> _Route:
        method, template = route.split(" ", 1)
        for candidate in self._routes:
            if candidate.method == method and candidate.template == template:
                return candidate
        raise LookupError(f"no route {route!r}")

    @staticmethod
    async def _via(request: web.Request, response: web.StreamResponse) -> None:
        """Discord's API answers come through Google's load balancer; discord.py only trusts a 429 with `Via`."""
        if response.status != 429 or "X-RateLimit-Scope" in response.headers:
            response.headers.setdefault("Via", "1.1 google")

    async def _api(self, request: web.Request) -> web.StreamResponse:
        path = "/" + request.match_info["tail"]
        matches = [(r, m) for r in self._routes if (m := r.pattern.match(path))]
        if not matches:
            return _json({"message": "404: Not Found", "code": 0}, status=404)
        chosen = next(((r, m) for r, m in matches if r.method == request.method), None)
        if chosen is None:
            return _json({"message": "405: Method Not Allowed", "code": 0}, status=405)
        route, match = chosen
        params = match.groupdict()
        query = dict(request.query)
        call = Call(request.method, route.template, params, query, None, self.clock())
        headers: dict[str, str] = {}
        self.calls.append(call)
        try:
            call.body = await self._body(request)
            if route.auth == "bot":
                self._check_bot_auth(request)
            headers = self._rate_limit(route, params)
            status, answer = route.handler(call)
        except DiscordError as exc:
            self._outbox.clear()
            call.status, call.answer = exc.status, exc.body()
            self.refusals.append(call)
            self._changed.set()
            return _json(call.answer, status=exc.status, headers={**headers, **exc.headers})
        call.status, call.answer = status, answer
        outbox, self._outbox = self._outbox, []
        for event, data, intent in outbox:
            await self._dispatch_all(event, data, intent)
        self._changed.set()
        if status == 204:
            return web.Response(status=204, headers=headers)
        return _json(answer, status=status, headers=headers)

    async def _body(self, request: web.Request) -> Any:
        raw = await request.read()  # LoopbackServer read it already; aiohttp keeps the bytes
        if request.content_type == "multipart/form-data":
            parts = message_from_bytes(f"Content-Type: {request.headers['Content-Type']}\r\n\r\n".encode() + raw,
                                       policy=HTTP)
            body: dict[str, Any] = {}
            files = []
            for part in parts.iter_parts():
                content = part.get_payload(decode=True) or b""
                if part.get_param("name", header="content-disposition") == "payload_json":
                    body = json.loads(content)
                else:
                    files.append({"name": part.get_param("name", header="content-disposition"),
                                  "filename": part.get_filename(), "size": len(content)})
            body["_files"] = files
            return body
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            raise DiscordError(400, 50109, "The request body contains invalid JSON.") from None

    def _check_bot_auth(self, request: web.Request) -> None:
        if request.headers.get("Authorization") != f"Bot {self.bot_token}":
            raise unauthorized()

    def _rate_limit(self, route: _Route, params: dict[str, str]) -> dict[str, str]:
        key = f"{route.method} {route.template}"
        major = params.get(route.major or "", "")
        now = self.clock()
        headers: dict[str, str] = {}
        bucket = self.buckets.get(key)
        if bucket is not None:
            start, count = bucket.windows.get(major, (now, 0))
            if now - start >= bucket.per:
                start, count = now, 0
            reset_after = max(0.0, bucket.per - (now - start))
            headers = {"X-RateLimit-Limit": str(bucket.limit), "X-RateLimit-Bucket": bucket.name,
                       "X-RateLimit-Reset-After": f"{reset_after:.3f}",
                       "X-RateLimit-Reset": f"{time.time() + reset_after:.3f}"}
            if count >= bucket.limit:
                headers["X-RateLimit-Remaining"] = "0"
                self._too_many(route, params, reset_after, "user", False, headers)
            bucket.windows[major] = (start, count + 1)
            headers["X-RateLimit-Remaining"] = str(bucket.limit - count - 1)
        forced = next((f for f in self._forced if f.route == key), None)
        if forced is not None:
            forced.times -= 1
            if forced.times <= 0:
                self._forced.remove(forced)
            self._too_many(route, params, forced.retry_after, forced.scope, forced.is_global, headers)
        return headers

    def _too_many(self, route: _Route, params: dict[str, str], retry_after: float, scope: str, is_global: bool,
                  headers: dict[str, str]) -> None:
        path = route.template.format(**params)
        self.rate_limited.append((self.clock(), route.method, path, retry_after))
        headers = {**headers, "Retry-After": str(max(1, math.ceil(retry_after))), "X-RateLimit-Scope": scope}
        if is_global:
            headers = {k: v for k, v in headers.items() if not k.startswith("X-RateLimit-")
                       or k == "X-RateLimit-Scope"}
            headers["X-RateLimit-Global"] = "true"
        message = "The resource is being rate limited." if scope == "shared" else "You are being rate limited."
        raise DiscordError(429, 0, message, headers=headers,
                           payload={"message": message, "retry_after": round(retry_after, 3), "global": is_global})

    def _snowflake(self) -> str:
        stamp = (int(time.time() * 1000) - DISCORD_EPOCH_MS) << 22
        value = max(stamp | (next(self._snowflake_seq) & 0xFFF), self._last_snowflake + 1)
        self._last_snowflake = value
        return str(value)

    # -- REST routes: identity and commands -------------------------------------------------------------------

    def _get_gateway(self, call: Call) -> tuple[int, Any]:
        return 200, {"url": self.gateway_url}

    def _get_gateway_bot(self, call: Call) -> tuple[int, Any]:
        return 200, {"url": self.gateway_url, "shards": 1,
                     "session_start_limit": {"total": 1000, "remaining": self.session_start_remaining,
                                             "reset_after": 14_400_000, "max_concurrency": 1}}

    def _get_me(self, call: Call) -> tuple[int, Any]:
        return 200, self._user(self.bot_user_id, BOT_NAME, bot=True, me=True)

    def _get_application(self, call: Call) -> tuple[int, Any]:
        owner = self.members.get(OWNER_ID, {}).get("user") or self._user(OWNER_ID, "owner")
        return 200, {
            "id": self.application_id, "name": BOT_NAME, "icon": None, "description": "", "summary": "",
            "type": None, "hook": True, "bot_public": False, "bot_require_code_grant": False,
            "verify_key": VERIFY_HEX, "owner": owner, "team": None, "flags": 1 << 23,
            "bot": self._user(self.bot_user_id, BOT_NAME, bot=True), "guild_id": None,
            "interactions_endpoint_url": None, "role_connections_verification_url": None,
            "event_webhooks_url": None, "event_webhooks_status": 1, "tags": [], "redirect_uris": [],
            "install_params": None, "integration_types_config": {"0": {}}, "custom_install_url": None,
            "approximate_guild_count": 1, "approximate_user_install_count": 0,
        }

    def _command_scope(self, call: Call) -> str | None:
        if call.params["application_id"] != self.application_id:
            raise DiscordError(403, 50001, "Missing Access")
        guild = call.params.get("guild_id")
        if guild is not None and guild != self.guild_id:
            raise DiscordError(403, 50001, "Missing Access")
        return guild

    def _get_commands(self, call: Call) -> tuple[int, Any]:
        return 200, [dict(c) for c in self.commands.get(self._command_scope(call), [])]

    def _put_commands(self, call: Call) -> tuple[int, Any]:
        """Bulk overwrite: every command validated, all or nothing; a command keeps its id across overwrites."""
        scope = self._command_scope(call)
        if not isinstance(call.body, list):
            raise DiscordError(400, 50035, "Invalid Form Body", errors={"_errors": [
                {"code": "BASE_TYPE_ARRAY", "message": "Must be an array."}]})
        errors = FormErrors()
        seen: set[tuple[str, int]] = set()
        for index, command in enumerate(call.body):
            self._check_command(command, (index,), errors)
            key = (str(command.get("name")), int(command.get("type", 1)))
            if key in seen:
                errors.add((index, "name"), "APPLICATION_COMMANDS_DUPLICATE_NAME",
                           "Application command names must be unique")
            seen.add(key)
        errors.raise_if_any()
        stored = []
        for command in call.body:
            kind = int(command.get("type", 1))
            ident = self._command_ids.setdefault((scope, command["name"], kind), self._snowflake())
            stored.append({
                "id": ident, "application_id": self.application_id, "version": self._snowflake(), "type": kind,
                "name": command["name"], "name_localizations": command.get("name_localizations"),
                "description": command.get("description", ""),
                "description_localizations": command.get("description_localizations"),
                "options": command.get("options") or [], "nsfw": bool(command.get("nsfw", False)),
                "default_member_permissions": command.get("default_member_permissions"),
                "contexts": command.get("contexts"), "integration_types": command.get("integration_types") or [0],
                **({"guild_id": scope} if scope else {"dm_permission": command.get("dm_permission", True)}),
            })
        self.commands[scope] = stored
        return 200, [dict(c) for c in stored]

    def _check_command(self, command: Any, at: tuple[str | int, ...], errors: FormErrors) -> None:
        if not isinstance(command, dict):
            errors.add(at, "DICT_TYPE_CONVERT", "Only dictionaries may be used in a DictType")
            return
        kind = command.get("type", 1)
        name = command.get("name")
        if not isinstance(name, str) or not name:
            errors.required(at + ("name",))
        elif len(name) > MAX_COMMAND_NAME:
            errors.too_long(at + ("name",), MAX_COMMAND_NAME)
        elif kind == 1 and (not COMMAND_NAME.match(name) or name != name.lower()):
            errors.add(at + ("name",), "APPLICATION_COMMAND_INVALID_NAME", "Command name is invalid")
        description = command.get("description", "")
        if kind == 1:
            if not isinstance(description, str) or not description:
                errors.required(at + ("description",))
            elif len(description) > MAX_COMMAND_DESCRIPTION:
                errors.too_long(at + ("description",), MAX_COMMAND_DESCRIPTION)
        self._check_options(command.get("options") or [], at + ("options",), errors)

    def _check_options(self, options: Any, at: tuple[str | int, ...], errors: FormErrors) -> None:
        if not isinstance(options, list):
            errors.add(at, "BASE_TYPE_ARRAY", "Must be an array.")
            return
        if len(options) > MAX_COMMAND_OPTIONS:
            errors.too_long(at, MAX_COMMAND_OPTIONS)
        names: set[str] = set()
        for index, option in enumerate(options):
            here = at + (index,)
            if not isinstance(option, dict):
                errors.add(here, "DICT_TYPE_CONVERT", "Only dictionaries may be used in a DictType")
                continue
            name = option.get("name")
            if not isinstance(name, str) or not COMMAND_NAME.match(name) or name != name.lower():
                errors.add(here + ("name",), "APPLICATION_COMMAND_INVALID_NAME", "Command name is invalid")
            elif name in names:
                errors.add(here + ("name",), "APPLICATION_COMMAND_OPTIONS_NAME_ALREADY_EXISTS",
                           "Option names must be unique")
            names.add(str(name))
            description = option.get("description")
            if not isinstance(description, str) or not description:
                errors.required(here + ("description",))
            elif len(description) > MAX_COMMAND_DESCRIPTION:
                errors.too_long(here + ("description",), MAX_COMMAND_DESCRIPTION)
            if option.get("type") not in range(1, 12):
                errors.add(here + ("type",), "BASE_TYPE_CHOICES", "Value must be one of {1, 2, ..., 11}.")
            if len(option.get("choices") or []) > MAX_COMMAND_OPTIONS:
                errors.too_long(here + ("choices",), MAX_COMMAND_OPTIONS)
            if option.get("type") in (OPTION_SUBCOMMAND, OPTION_GROUP):
                self._check_options(option.get("options") or [], here + ("options",), errors)

    # -- REST routes: channels and messages -------------------------------------------------------------------

    def _channel(self, channel_id: str) -> dict[str, Any]:
        channel = self.channels.get(channel_id)
        if channel is None:
            raise unknown("Channel", 10003)
        if channel_id in self.hidden_channels or channel.get("parent_id") in self.hidden_channels:
            raise DiscordError(403, 50001, "Missing Access")
        return channel

    def _stored(self, channel_id: str, message_id: str) -> dict[str, Any]:
        message = self._messages.get(channel_id, {}).get(message_id)
        if message is None:
            raise unknown("Message", 10008)
        return message

    def _get_channel(self, call: Call) -> tuple[int, Any]:
        return 200, dict(self._channel(call.params["channel_id"]))

    def _post_message(self, call: Call) -> tuple[int, Any]:
        channel_id = call.params["channel_id"]
        self._channel(channel_id)
        body = self._checked(call.body, creating=True)
        message = self._new_message(channel_id, body)
        reference = body.get("message_reference")
        if isinstance(reference, dict) and reference.get("message_id"):
            referenced = self._messages.get(reference.get("channel_id", channel_id), {}).get(
                str(reference["message_id"]))
            if referenced is None and reference.get("fail_if_not_exists", True):
                raise DiscordError(400, 50035, "Invalid Form Body", errors={"message_reference": {"_errors": [
                    {"code": "MESSAGE_REFERENCE_UNKNOWN_MESSAGE", "message": "Unknown message"}]}})
            message["type"] = 19
            message["message_reference"] = {"type": 0, "channel_id": channel_id, "guild_id": self.guild_id,
                                            "message_id": str(reference["message_id"])}
            message["referenced_message"] = referenced
        self._store(message)
        return 200, self._public(message)

    def _get_message(self, call: Call) -> tuple[int, Any]:
        self._channel(call.params["channel_id"])
        return 200, self._public(self._stored(call.params["channel_id"], call.params["message_id"]))

    def _patch_message(self, call: Call) -> tuple[int, Any]:
        channel_id = call.params["channel_id"]
        self._channel(channel_id)
        message = self._stored(channel_id, call.params["message_id"])
        if message["author"]["id"] != self.bot_user_id:
            raise DiscordError(403, 50005, "Cannot edit a message authored by another user")
        self._edit(message, self._checked(call.body, creating=False, current=message))
        return 200, self._public(message)

    def _start_thread(self, call: Call) -> tuple[int, Any]:
        channel_id, message_id = call.params["channel_id"], call.params["message_id"]
        channel = self._channel(channel_id)
        message = self._stored(channel_id, message_id)
        body = call.body if isinstance(call.body, dict) else {}
        errors = FormErrors()
        name = body.get("name")
        if not isinstance(name, str) or not name.strip():
            errors.required(("name",))
        elif len(name) > MAX_THREAD_NAME:
            errors.too_long(("name",), MAX_THREAD_NAME)
        duration = body.get("auto_archive_duration", 4320)
        if duration not in ARCHIVE_DURATIONS:
            errors.add(("auto_archive_duration",), "BASE_TYPE_CHOICES",
                       f"Value must be one of {set(ARCHIVE_DURATIONS)}.")
        errors.raise_if_any()
        if channel["type"] != 0:
            raise DiscordError(400, 50024, "Cannot execute action on this channel type")
        if message["id"] in self.channels:
            raise DiscordError(400, 160004, "A thread has already been created for this message")
        stamp = now_iso()
        thread = {
            "id": message["id"], "type": 11, "guild_id": self.guild_id, "parent_id": channel_id,
            "owner_id": self.bot_user_id, "name": name, "last_message_id": None, "rate_limit_per_user":
                body.get("rate_limit_per_user", 0), "flags": 0, "message_count": 0, "member_count": 1,
            "total_message_sent": 0, "member_ids_preview": [self.bot_user_id],
            "thread_metadata": {"archived": False, "auto_archive_duration": duration, "archive_timestamp": stamp,
                                "locked": False, "create_timestamp": stamp},
            "member": {"id": message["id"], "user_id": self.bot_user_id, "join_timestamp": stamp, "flags": 1},
        }
        self.channels[thread["id"]] = thread
        message["thread"] = dict(thread)
        message["flags"] |= HAS_THREAD
        self._emit("THREAD_CREATE", {**thread, "newly_created": True}, GUILDS)
        return 201, dict(thread)

    # -- REST routes: interactions ----------------------------------------------------------------------------

    def _callback(self, call: Call) -> tuple[int, Any]:
        record = self.interactions.get(call.params["interaction_id"])
        if record is None or record.token != call.params["interaction_token"]:
            raise unknown("interaction", 10062)
        if record.callback is not None:
            error = DiscordError(400, 40060, "Interaction has already been acknowledged.")
            record.refused.append(("callback", error.status, error.body()))
            raise error
        if self.clock() - record.created_at > self.interaction_deadline:
            error = unknown("interaction", 10062)
            record.refused.append(("callback", error.status, error.body()))
            raise error
        body = call.body if isinstance(call.body, dict) else {}
        kind = body.get("type")
        errors = FormErrors()
        if kind not in CALLBACK_TYPES:
            errors.add(("type",), "BASE_TYPE_CHOICES", f"Value must be one of {set(CALLBACK_TYPES)}.")
        elif kind in (DEFERRED_UPDATE, UPDATE_MESSAGE) and record.message_id is None:
            errors.add(("type",), "INTERACTION_RESPONSE_TYPE_INVALID",
                       "This interaction response type is only valid for component interactions")
        elif kind == MODAL and record.type == MODAL_SUBMIT:
            errors.add(("type",), "INTERACTION_RESPONSE_TYPE_INVALID",
                       "A modal submit cannot be answered with a modal")
        elif kind in (1, 8, 10, 12):
            errors.add(("type",), "INTERACTION_RESPONSE_TYPE_INVALID", "Not supported by this fake")
        errors.raise_if_any()
        data = body.get("data") if isinstance(body.get("data"), dict) else {}
        if kind in (CHANNEL_MESSAGE, UPDATE_MESSAGE):
            data = self._checked(data, creating=kind == CHANNEL_MESSAGE, prefix=("data",),
                                 current=self.message(record.message_id) if kind == UPDATE_MESSAGE else None)
        elif kind == MODAL:
            self._check_modal(data)
        try:
            answer = self._acknowledge(record, kind, data)
        except DiscordError as error:
            record.refused.append(("callback", error.status, error.body()))
            raise
        record.callback, record.callback_at, record.callback_query = {"type": kind, "data": data}, self.clock(), \
            dict(call.query)
        if call.query.get("with_response", "").lower() in ("1", "true"):
            return 200, answer
        return 204, None

    def _acknowledge(self, record: Interaction, kind: int, data: dict[str, Any]) -> dict[str, Any]:
        callback: dict[str, Any] = {"id": record.id, "type": record.type}
        resource: dict[str, Any] = {"type": kind}
        if kind == CHANNEL_MESSAGE:
            message = self._new_message(record.channel_id, data, interaction=record)
            record.response_message_id = message["id"]
            self._store(message, ephemeral_for=record.user_id if message["flags"] & EPHEMERAL else None)
            callback.update(response_message_id=message["id"], response_message_loading=False,
                            response_message_ephemeral=bool(message["flags"] & EPHEMERAL))
            resource["message"] = self._public(message)
        elif kind == DEFERRED_CHANNEL_MESSAGE:
            flags = LOADING | (EPHEMERAL if int(data.get("flags") or 0) & EPHEMERAL else 0)
            message = self._new_message(record.channel_id, {"content": ""}, interaction=record)
            message["flags"] = flags
            record.response_message_id = message["id"]
            self._store(message, ephemeral_for=record.user_id if flags & EPHEMERAL else None)
            callback.update(response_message_id=message["id"], response_message_loading=True,
                            response_message_ephemeral=bool(flags & EPHEMERAL))
        elif kind in (DEFERRED_UPDATE, UPDATE_MESSAGE):
            record.response_message_id = record.message_id
            if kind == UPDATE_MESSAGE:
                message = self._find(record.message_id or "")
                self._edit(message, data)
                record.edits.append((message["id"], data))
                resource["message"] = self._public(message)
        elif kind == MODAL:
            record.modal = data
        return {"interaction": callback, "resource": resource}

    def _check_modal(self, data: dict[str, Any]) -> None:
        errors = FormErrors(("data",))
        custom_id = data.get("custom_id")
        if not isinstance(custom_id, str) or not custom_id:
            errors.required(("custom_id",))
        elif len(custom_id) > MAX_CUSTOM_ID:
            errors.too_long(("custom_id",), MAX_CUSTOM_ID)
        title = data.get("title")
        if not isinstance(title, str) or not title:
            errors.required(("title",))
        elif len(title) > MAX_MODAL_TITLE:
            errors.too_long(("title",), MAX_MODAL_TITLE)
        components = data.get("components")
        if not isinstance(components, list) or not 1 <= len(components) <= 5:
            errors.add(("components",), "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 5 in length.")
        errors.raise_if_any()

    def _webhook(self, call: Call) -> Interaction:
        """The interaction behind a follow-up webhook route, as Discord authenticates it."""
        record = self._by_token.get(call.params["interaction_token"])
        if record is None or call.params["application_id"] != self.application_id:
            raise DiscordError(401, 50027, "Invalid Webhook Token")
        if self.clock() - record.created_at > self.token_ttl:
            error = DiscordError(401, 50027, "Invalid Webhook Token")
            record.refused.append((f"{call.method} webhook", error.status, error.body()))
            raise error
        if record.callback is None:
            error = unknown("Webhook", 10015)
            record.refused.append((f"{call.method} webhook", error.status, error.body()))
            raise error
        return record

    def _webhook_message(self, call: Call, record: Interaction) -> dict[str, Any]:
        wanted = call.params["message_id"]
        message_id = record.response_message_id if wanted == "@original" else wanted
        if message_id is None or (message_id != record.response_message_id and message_id not in record.followups):
            raise unknown("Message", 10008)
        message = self.message(message_id)
        if message is None:
            raise unknown("Message", 10008)
        return self._find(message_id)

    def _followup(self, call: Call) -> tuple[int, Any]:
        record = self._webhook(call)
        try:
            body = self._checked(call.body, creating=True)
        except DiscordError as error:
            record.refused.append(("followup", error.status, error.body()))
            raise
        original = self.message(record.response_message_id) if record.response_message_id else None
        if record.callback_type == DEFERRED_CHANNEL_MESSAGE and original is not None \
                and original["flags"] & LOADING:
            message = self._find(original["id"])  # documented: the first follow-up edits the loading message
            self._edit(message, {k: v for k, v in body.items() if k != "flags"})
            record.edits.append((message["id"], body))
            return 200, self._public(message)
        message = self._new_message(record.channel_id, body, interaction=record, followup=True)
        self._store(message, ephemeral_for=record.user_id if message["flags"] & EPHEMERAL else None)
        record.followups.append(message["id"])
        return 200, self._public(message)

    def _get_webhook_message(self, call: Call) -> tuple[int, Any]:
        record = self._webhook(call)
        return 200, self._public(self._webhook_message(call, record))

    def _patch_webhook_message(self, call: Call) -> tuple[int, Any]:
        record = self._webhook(call)
        message = self._webhook_message(call, record)
        try:
            body = self._checked(call.body, creating=False, current=message)
        except DiscordError as error:
            record.refused.append(("edit", error.status, error.body()))
            raise
        self._edit(message, body)
        record.edits.append((message["id"], body))
        return 200, self._public(message)

    def _delete_webhook_message(self, call: Call) -> tuple[int, Any]:
        record = self._webhook(call)
        message = self._webhook_message(call, record)
        self._messages.get(message["channel_id"], {}).pop(message["id"], None)
        self.ephemerals.pop(message["id"], None)
        self._emit("MESSAGE_DELETE", {"id": message["id"], "channel_id": message["channel_id"],
                                      "guild_id": self.guild_id}, GUILD_MESSAGES)
        return 204, None

    # -- messages ---------------------------------------------------------------------------------------------

    def _new_message(self, channel_id: str, body: dict[str, Any], *, interaction: Interaction | None = None,
                     followup: bool = False) -> dict[str, Any]:
        flags = int(body.get("flags") or 0)
        if interaction is None:
            flags &= ~EPHEMERAL  # only interaction responses and follow-ups can be ephemeral
        message: dict[str, Any] = {
            "id": self._snowflake(), "type": 0, "channel_id": channel_id,
            "author": self._user(self.bot_user_id, BOT_NAME, bot=True), "content": body.get("content") or "",
            "timestamp": now_iso(), "edited_timestamp": None, "tts": bool(body.get("tts", False)),
            "mention_everyone": False, "mentions": [], "mention_roles": [], "attachments": [],
            "embeds": self._embeds_out(body.get("embeds") or []),
            "components": self._components_out(body.get("components") or []), "pinned": False, "flags": flags,
            "nonce": body.get("nonce"),
        }
        if body.get("_files"):
            message["attachments"] = [{"id": self._snowflake(), "filename": f["filename"], "size": f["size"],
                                       "url": f"{self.server.url}/attachments/{f['filename']}",
                                       "proxy_url": f"{self.server.url}/attachments/{f['filename']}"}
                                      for f in body["_files"]]
        if interaction is not None:
            message["webhook_id"] = self.application_id
            message["application_id"] = self.application_id
            if not followup:
                message["type"] = 20 if interaction.type == APPLICATION_COMMAND else 19
            user = self.members[interaction.user_id]["user"]
            message["interaction_metadata"] = {
                "id": interaction.id, "type": interaction.type, "user": user,
                "authorizing_integration_owners": {"0": self.guild_id},
                **({"name": interaction.payload["data"].get("name")} if interaction.type == APPLICATION_COMMAND
                   else {"interacted_message_id": interaction.message_id}),
            }
            message["interaction"] = {"id": interaction.id, "type": interaction.type,
                                      "name": interaction.payload["data"].get("name", ""), "user": user}
        self._mentions(message, body)
        return message

    def _store(self, message: dict[str, Any], *, ephemeral_for: str | None = None) -> None:
        if ephemeral_for is not None:
            message["_for"] = ephemeral_for
            self.ephemerals[message["id"]] = message
            return
        channel_id = message["channel_id"]
        self._messages.setdefault(channel_id, {})[message["id"]] = message
        channel = self.channels.get(channel_id)
        if channel is not None:
            channel["last_message_id"] = message["id"]
            if channel["type"] == 11:
                channel["message_count"] += 1
                channel["total_message_sent"] += 1
        self._emit("MESSAGE_CREATE", {**self._public(message), "guild_id": self.guild_id, "member": {
            k: v for k, v in self._member_payload(self.bot_user_id).items() if k != "user"}}, GUILD_MESSAGES)

    def _edit(self, message: dict[str, Any], body: dict[str, Any]) -> None:
        """An edit replaces the fields it gives (`components: []` removes the buttons) and keeps the others."""
        if "content" in body:
            message["content"] = body["content"] or ""
        if "embeds" in body:
            message["embeds"] = self._embeds_out(body["embeds"] or [])
        if "components" in body:
            message["components"] = self._components_out(body["components"] or [])
        if "allowed_mentions" in body or "content" in body:
            self._mentions(message, body)
        message["flags"] &= ~LOADING
        message["edited_timestamp"] = now_iso()
        self.edits.append((message["id"], body))
        if "_for" not in message:
            self._emit("MESSAGE_UPDATE", {**self._public(message), "guild_id": self.guild_id}, GUILD_MESSAGES)

    def _find(self, message_id: str) -> dict[str, Any]:
        for channel in self._messages.values():
            if message_id in channel:
                return channel[message_id]
        if message_id in self.ephemerals:
            return self.ephemerals[message_id]
        raise unknown("Message", 10008)

    @staticmethod
    def _public(message: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in message.items() if not k.startswith("_")}

    def _emit(self, event: str, data: dict[str, Any], intent: int) -> None:
        self._outbox.append((event, json.loads(json.dumps(data)), intent))

    def _embeds_out(self, embeds: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{**{k: v for k, v in e.items() if k not in ("type", "flags")}, "type": "rich",
                 "content_scan_version": 2} for e in embeds]

    def _components_out(self, components: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Components as Discord returns them: each numbered with an `id` (sequential, skipping given ones)."""
        copied = json.loads(json.dumps(components))
        taken = {c["id"] for c in self._walk(copied) if isinstance(c.get("id"), int) and c["id"] > 0}
        counter = itertools.count(1)
        for component in self._walk(copied):
            if not isinstance(component.get("id"), int) or component["id"] <= 0:
                component["id"] = next(i for i in counter if i not in taken)
        return copied

    @classmethod
    def _walk(cls, components: list[Any]) -> Iterable[dict[str, Any]]:
        for component in components:
            if isinstance(component, dict):
                yield component
                yield from cls._walk(component.get("components") or [])
                accessory = component.get("accessory")
                if isinstance(accessory, dict):
                    yield from cls._walk([accessory])

    @classmethod
    def _interactive(cls, components: list[Any]) -> list[dict[str, Any]]:
        return [c for c in cls._walk(components) if c.get("type") in (2, 3, 5, 6, 7, 8)]

    def _mentions(self, message: dict[str, Any], body: dict[str, Any]) -> None:
        """Who the content mentions, and whom that would notify under allowed_mentions (Discord's default without
        it: everything parsed)."""
        content = message["content"]
        users = [u for u in dict.fromkeys(re.findall(r"<@!?(\d+)>", content)) if u in self.members]
        roles = [r for r in dict.fromkeys(re.findall(r"<@&(\d+)>", content)) if r in self.roles]
        everyone = "@everyone" in content or "@here" in content
        allowed = body.get("allowed_mentions") if "allowed_mentions" in body else None
        if allowed is None:
            pinged_users, pinged_roles, pinged_everyone = users, roles, everyone
        else:
            parse = allowed.get("parse") or []
            listed_users = [str(u) for u in allowed.get("users") or []]
            listed_roles = [str(r) for r in allowed.get("roles") or []]
            pinged_users = [u for u in users if "users" in parse or u in listed_users]
            pinged_roles = [r for r in roles if "roles" in parse or r in listed_roles]
            pinged_everyone = everyone and "everyone" in parse
        message["mentions"] = [self.members[u]["user"] for u in users]
        message["mention_roles"] = roles
        message["mention_everyone"] = pinged_everyone
        self.pings[message["id"]] = {"allowed_mentions": allowed, "users": pinged_users, "roles": pinged_roles,
                                     "everyone": pinged_everyone}

    # -- what Discord checks in a message ---------------------------------------------------------------------

    def _checked(self, body: Any, *, creating: bool, prefix: tuple[str, ...] = (),
                 current: dict[str, Any] | None = None) -> dict[str, Any]:
        """The message body if Discord would take it; else the 400 Discord answers."""
        if body is None:
            body = {}
        if not isinstance(body, dict):
            raise DiscordError(400, 50035, "Invalid Form Body", errors={"_errors": [
                {"code": "DICT_TYPE_CONVERT", "message": "Only dictionaries may be used in a DictType"}]})
        errors = FormErrors(prefix)
        flags = int(body.get("flags") or (current or {}).get("flags") or 0)
        content = body.get("content")
        if content is not None:
            if not isinstance(content, str):
                errors.add(("content",), "BASE_TYPE_STRING", "Must be a string.")
            elif len(content) > MAX_CONTENT:
                errors.too_long(("content",), MAX_CONTENT)
        embeds = body.get("embeds")
        if embeds is not None:
            self._check_embeds(embeds, errors)
        components = body.get("components")
        if components is not None:
            self._check_components(components, errors, v2=bool(flags & IS_COMPONENTS_V2))
        if flags & IS_COMPONENTS_V2 and (content or embeds):
            errors.add(("content" if content else "embeds",), "MESSAGE_CANNOT_USE_LEGACY_FIELDS_WITH_COMPONENTS_V2",
                       "The 'content' and 'embeds' fields cannot be used when using MessageFlags.IS_COMPONENTS_V2")
        if "allowed_mentions" in body and body["allowed_mentions"] is not None:
            self._check_allowed_mentions(body["allowed_mentions"], errors)
        errors.raise_if_any()
        if creating and not (content or embeds or components or body.get("_files") or body.get("sticker_ids")
                             or body.get("poll")):
            raise DiscordError(400, 50006, "Cannot send an empty message")
        return body

    def _check_embeds(self, embeds: Any, errors: FormErrors) -> None:
        if not isinstance(embeds, list):
            errors.add(("embeds",), "BASE_TYPE_ARRAY", "Must be an array.")
            return
        if len(embeds) > MAX_EMBEDS:
            errors.too_long(("embeds",), MAX_EMBEDS)
        total = 0
        for index, embed in enumerate(embeds):
            at: tuple[str | int, ...] = ("embeds", index)
            if not isinstance(embed, dict):
                errors.add(at, "DICT_TYPE_CONVERT", "Only dictionaries may be used in a DictType")
                continue
            for key, limit in (("title", MAX_EMBED_TITLE), ("description", MAX_EMBED_DESCRIPTION)):
                if _text_len(embed.get(key)) > limit:
                    errors.too_long(at + (key,), limit)
                total += _text_len(embed.get(key))
            for key, inner, limit in (("footer", "text", MAX_FOOTER), ("author", "name", MAX_AUTHOR_NAME)):
                part = embed.get(key)
                if isinstance(part, dict):
                    if _text_len(part.get(inner)) > limit:
                        errors.too_long(at + (key, inner), limit)
                    total += _text_len(part.get(inner))
            fields = embed.get("fields") or []
            if len(fields) > MAX_EMBED_FIELDS:
                errors.too_long(at + ("fields",), MAX_EMBED_FIELDS)
            for number, item in enumerate(fields):
                for key, limit in (("name", MAX_FIELD_NAME), ("value", MAX_FIELD_VALUE)):
                    value = item.get(key) if isinstance(item, dict) else None
                    if not isinstance(value, str) or not value.strip():
                        errors.required(at + ("fields", number, key))
                    elif _text_len(value) > limit:
                        errors.too_long(at + ("fields", number, key), limit)
                    total += _text_len(value)
        if total > MAX_EMBED_TOTAL:
            errors.add(("embeds",), "MAX_EMBED_SIZE_EXCEEDED", f"Embed size exceeds maximum size of {MAX_EMBED_TOTAL}")

    def _check_components(self, components: Any, errors: FormErrors, *, v2: bool) -> None:
        if not isinstance(components, list):
            errors.add(("components",), "BASE_TYPE_ARRAY", "Must be an array.")
            return
        custom_ids: set[str] = set()
        if v2:
            if sum(1 for _ in self._walk(components)) > MAX_V2_COMPONENTS:
                errors.add(("components",), "BASE_TYPE_MAX_LENGTH",
                           f"Must be {MAX_V2_COMPONENTS} or fewer in length.")
        elif len(components) > MAX_ACTION_ROWS:
            errors.too_long(("components",), MAX_ACTION_ROWS)
        for index, row in enumerate(components):
            at: tuple[str | int, ...] = ("components", index)
            if not isinstance(row, dict):
                errors.add(at, "DICT_TYPE_CONVERT", "Only dictionaries may be used in a DictType")
                continue
            if row.get("type") != 1:
                if not v2:
                    errors.add(at + ("type",), "UNION_TYPE_CHOICES", 'Value of field "type" must be one of (1,).')
                continue
            children = row.get("components")
            if not isinstance(children, list) or not children:
                errors.add(at + ("components",), "BASE_TYPE_MIN_LENGTH", "Must be 1 or more in length.")
                continue
            selects = [c for c in children if isinstance(c, dict) and c.get("type") in (3, 5, 6, 7, 8)]
            if selects and len(children) > 1:
                errors.add(at + ("components",), "COMPONENT_LAYOUT_WIDTH_EXCEEDED",
                           "The specified component exceeds the maximum width")
            elif len(children) > MAX_ROW_BUTTONS:
                errors.too_long(at + ("components",), MAX_ROW_BUTTONS)
            for number, child in enumerate(children):
                self._check_interactive(child, at + ("components", number), errors, custom_ids)

    def _check_interactive(self, component: Any, at: tuple[str | int, ...], errors: FormErrors,
                           custom_ids: set[str]) -> None:
        if not isinstance(component, dict):
            errors.add(at, "DICT_TYPE_CONVERT", "Only dictionaries may be used in a DictType")
            return
        kind = component.get("type")
        if kind not in (2, 3, 5, 6, 7, 8):
            errors.add(at + ("type",), "UNION_TYPE_CHOICES", 'Value of field "type" must be one of (2, 3, 5, 6, 7, 8).')
            return
        custom_id = component.get("custom_id")
        is_link = kind == 2 and component.get("style") == 5
        if kind == 2:
            style = component.get("style")
            if style not in (1, 2, 3, 4, 5, 6):
                errors.add(at + ("style",), "BASE_TYPE_CHOICES", "Value must be one of {1, 2, 3, 4, 5, 6}.")
            label = component.get("label")
            if label is not None and len(str(label)) > MAX_BUTTON_LABEL:
                errors.too_long(at + ("label",), MAX_BUTTON_LABEL)
            if is_link:
                if not component.get("url"):
                    errors.required(at + ("url",))
                if custom_id is not None:
                    errors.add(at + ("custom_id",), "BUTTON_COMPONENT_CUSTOM_ID_WITH_URL",
                               "A custom id cannot be used with a link button")
                return
            if component.get("url") is not None:
                errors.add(at + ("url",), "BUTTON_COMPONENT_URL_WITH_CUSTOM_ID",
                           "A url can only be used with a link button")
        elif kind == 3:
            options = component.get("options")
            if not isinstance(options, list) or not options:
                errors.add(at + ("options",), "BASE_TYPE_MIN_LENGTH", "Must be 1 or more in length.")
            elif len(options) > MAX_SELECT_OPTIONS:
                errors.too_long(at + ("options",), MAX_SELECT_OPTIONS)
        if not isinstance(custom_id, str) or not custom_id:
            errors.required(at + ("custom_id",))
        elif len(custom_id) > MAX_CUSTOM_ID:
            errors.too_long(at + ("custom_id",), MAX_CUSTOM_ID)
        elif custom_id in custom_ids:
            errors.add(at + ("custom_id",), "COMPONENT_CUSTOM_ID_DUPLICATED",
                       "Component custom id was already specified")
        else:
            custom_ids.add(custom_id)

    def _check_allowed_mentions(self, allowed: Any, errors: FormErrors) -> None:
        if not isinstance(allowed, dict):
            errors.add(("allowed_mentions",), "DICT_TYPE_CONVERT", "Only dictionaries may be used in a DictType")
            return
        parse = allowed.get("parse") or []
        for index, value in enumerate(parse):
            if value not in ("users", "roles", "everyone"):
                errors.add(("allowed_mentions", "parse", index), "BASE_TYPE_CHOICES",
                           "Value must be one of {'users', 'roles', 'everyone'}.")
        for kind in ("users", "roles"):
            listed = allowed.get(kind) or []
            if len(listed) > MAX_MENTION_IDS:
                errors.too_long(("allowed_mentions", kind), MAX_MENTION_IDS)
            if listed and kind in parse:
                errors.add(("allowed_mentions", kind), "MESSAGE_ALLOWED_MENTIONS_PARSE_EXCLUSIVE",
                           f'parse:["{kind}"] and {kind}: [ids...] are mutually exclusive.')

    # -- payloads ---------------------------------------------------------------------------------------------

    def _user(self, user_id: str, name: str, *, bot: bool = False, me: bool = False) -> dict[str, Any]:
        user: dict[str, Any] = {
            "id": user_id, "username": name, "discriminator": "0" if not bot else "0001",
            "global_name": None if bot else name.title(), "avatar": None, "avatar_decoration_data": None,
            "public_flags": 0, "flags": 0, "banner": None, "accent_color": None, "primary_guild": None,
            "collectibles": None, "display_name_styles": None, "clan": None,
        }
        if bot:
            user["bot"] = True
        if me:
            user.update(verified=True, mfa_enabled=False, email=None, locale="en-US", premium_type=0)
        return user

    def _permissions(self, user_id: str) -> int:
        value = int(self.roles[self.guild_id]["permissions"])
        for role in self.members[user_id]["roles"]:
            if role in self.roles:
                value |= int(self.roles[role]["permissions"])
        return value

    def _member_payload(self, user_id: str) -> dict[str, Any]:
        member = self.members[user_id]
        return {
            "user": member["user"], "roles": list(member["roles"]), "nick": None, "avatar": None, "banner": None,
            "joined_at": "2025-01-02T03:04:05.000000+00:00", "premium_since": None, "deaf": False, "mute": False,
            "pending": False, "flags": 0, "communication_disabled_until": None, "unusual_dm_activity_until": None,
            "permissions": str(self._permissions(user_id)),
        }

    def _partial_channel(self, channel_id: str) -> dict[str, Any]:
        channel = self.channels.get(channel_id)
        if channel is None:
            raise LookupError(f"no channel {channel_id}")
        keep = ("id", "type", "guild_id", "name", "position", "topic", "nsfw", "last_message_id", "parent_id",
                "flags", "rate_limit_per_user", "last_pin_timestamp", "thread_metadata", "owner_id",
                "message_count", "member_count", "total_message_sent")
        return {**{k: channel[k] for k in keep if k in channel}, "permissions": str(self._permissions(
            self.bot_user_id))}

    def _guild_create(self) -> dict[str, Any]:
        text = [dict(c) for c in self.channels.values() if c["type"] != 11]
        threads = [dict(c) for c in self.channels.values() if c["type"] == 11]
        bot = {k: v for k, v in self._member_payload(self.bot_user_id).items() if k != "permissions"}
        return {
            "id": self.guild_id, "name": GUILD_NAME, "icon": None, "splash": None, "discovery_splash": None,
            "owner_id": OWNER_ID, "afk_channel_id": None, "afk_timeout": 300, "widget_enabled": False,
            "verification_level": 1, "default_message_notifications": 1, "explicit_content_filter": 2,
            "roles": [dict(r) for r in self.roles.values()], "emojis": [], "stickers": [], "features": [],
            "mfa_level": 0, "application_id": None, "system_channel_id": None, "system_channel_flags": 0,
            "rules_channel_id": None, "max_presences": None, "max_members": 25_000, "vanity_url_code": None,
            "description": None, "banner": None, "premium_tier": 0, "premium_subscription_count": 0,
            "preferred_locale": "en-US", "public_updates_channel_id": None, "max_video_channel_users": 25,
            "max_stage_video_channel_users": 50, "nsfw_level": 0, "premium_progress_bar_enabled": False,
            "safety_alerts_channel_id": None, "incidents_data": None, "joined_at": "2025-01-02T03:04:05.000000+00:00",
            "large": False, "unavailable": False, "member_count": len(self.members), "voice_states": [],
            "members": [bot], "channels": text, "threads": threads, "presences": [], "stage_instances": [],
            "guild_scheduled_events": [], "soundboard_sounds": [], "embedded_activities": [], "lazy": True,
            "application_command_counts": {}, "home_header": None, "latest_onboarding_question_id": None,
            "version": 0,
        }
