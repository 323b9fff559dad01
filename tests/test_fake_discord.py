"""The fake Discord (tests/servers/discord.py), driven by the real discord.py client over loopback: the gateway
handshake, command registration, interactions and their answers, channel messages and threads, and each refusal
Discord would give. discord.py is pointed at the fake exactly as the front end will point it (see `pointed_at`)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import discord
import pytest
import yarl
from discord import app_commands
from discord.gateway import DiscordWebSocket, KeepAliveHandler
from discord.http import Route

from .servers.discord import (ALICE, APPLICATION_ID, APPROVERS_ROLE, BOT_USER_ID, CAROL, DESK_CHANNEL, GUILD_ID,
                              MALLORY, FakeDiscord, Interaction)

GUILD = discord.Object(int(GUILD_ID))


class Clock:
    """The fake's clock: real monotonic time, plus whatever a test skips ahead."""

    def __init__(self) -> None:
        self.skew = 0.0

    def __call__(self) -> float:
        return time.monotonic() + self.skew

    def advance(self, seconds: float) -> None:
        self.skew += seconds


@contextmanager
def pointed_at(fake: FakeDiscord) -> Iterator[None]:
    """All discord.py needs to talk to another Discord: the REST base (webhooks and interaction callbacks go
    through it too) and the gateway it connects to first (it takes READY's resume_gateway_url after that)."""
    saved = Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY
    Route.BASE = fake.api_url
    DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(fake.gateway_url)
    try:
        yield
    finally:
        Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY = saved


class Bot(discord.Client):
    """A minimal client as the desk will run one: the guilds intent only, an app command tree."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("intents", discord.Intents(guilds=True))
        super().__init__(guild_ready_timeout=0.05, **kwargs)
        self.tree = app_commands.CommandTree(self)
        self.ready = asyncio.Event()
        self.failures: list[BaseException] = []  # what handlers raised (discord.py would only log it)
        self.tree.on_error = self._tree_error  # type: ignore[method-assign]

    async def on_ready(self) -> None:
        self.ready.set()

    async def _tree_error(self, interaction: discord.Interaction, error: Exception) -> None:
        self.failures.append(getattr(error, "original", error))


@asynccontextmanager
async def running(fake: FakeDiscord, client: Bot | None = None) -> AsyncIterator[Bot]:
    """Log in, connect, wait for on_ready; close the client (and its heartbeat thread) on the way out."""
    client = client or Bot()
    with pointed_at(fake):
        await client.login(fake.bot_token)
        task = asyncio.create_task(client.connect())
        try:
            await asyncio.wait_for(client.ready.wait(), 5)
            yield client
        finally:
            await client.close()
            await asyncio.wait_for(task, 5)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(autouse=True)
async def no_heartbeat_left_beating() -> AsyncIterator[None]:
    """discord.py heartbeats from a thread (gateway.KeepAliveHandler); every test must have stopped its own."""
    yield
    for _ in range(100):
        beating = [t for t in threading.enumerate() if isinstance(t, KeepAliveHandler) and t.is_alive()]
        if not beating:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"heartbeat threads still running: {beating}")


@pytest.fixture
async def fake(clock: Clock) -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord(clock=clock) as server:
        yield server


def desk_commands(client: Bot, seen: list[Any]) -> None:
    """/scan (defers, then follows up) and /desk status|approve, as the desk registers them."""

    @client.tree.command(name="scan", description="Run a trading cycle now", guild=GUILD)
    async def scan(interaction: discord.Interaction) -> None:
        response = await interaction.response.defer(thinking=True)
        seen.append(("scan", interaction.user.id, [r.id for r in interaction.user.roles], response))
        await interaction.followup.send(embed=discord.Embed(title="Cycle done", description="3 signals"))
        await interaction.followup.send("and one more thing", ephemeral=True)

    desk = app_commands.Group(name="desk", description="The trading desk")

    @desk.command(name="status", description="Desk status")
    async def status(interaction: discord.Interaction) -> None:
        await interaction.response.send_message("ACTIVE", ephemeral=True)

    @desk.command(name="approve", description="Approve a signal")
    @app_commands.describe(signal_id="The signal to approve", size="Contracts")
    async def approve(interaction: discord.Interaction, signal_id: str, size: int = 1) -> None:
        seen.append(("approve", signal_id, size))
        await interaction.response.send_message(f"approving {signal_id} x{size}")

    client.tree.add_command(desk, guild=GUILD)


async def synced(fake: FakeDiscord, seen: list[Any]) -> Bot:
    client = Bot()
    desk_commands(client, seen)
    return client


# --- connecting ----------------------------------------------------------------------------------------------


async def test_login_connect_and_ready(fake):
    async with running(fake) as client:
        assert client.user is not None and client.user.id == int(BOT_USER_ID) and client.user.bot
        assert client.application_id == int(APPLICATION_ID)
        guild = client.get_guild(int(GUILD_ID))
        assert guild is not None and guild.get_channel(int(DESK_CHANNEL)).name == "trading-desk"
        assert guild.get_role(int(APPROVERS_ROLE)).name == "approvers"
        assert guild.me is not None and guild.me.id == int(BOT_USER_ID)
        [identify] = fake.identifies
        assert identify["intents"] == discord.Intents(guilds=True).value and "token" not in identify
        [connection] = fake.connections
        assert connection.compress in ("zlib-stream", "zstd-stream")  # transport compression, as discord.py asks
        await fake.wait_for(lambda: connection.heartbeats >= 1)  # discord.py beats at once after HELLO
        assert client.latency < 5
    rest = [(c.method, c.route) for c in fake.calls]
    assert rest[:2] == [("GET", "/users/@me"), ("GET", "/oauth2/applications/@me")]
    api = [r for r in fake.requests if r.path.startswith("/api/v10/")]
    assert api and all(r.headers.get("Authorization") == f"Bot {fake.bot_token}" for r in api)


async def test_wrong_token_is_refused_over_rest_and_gateway(fake):
    with pointed_at(fake):
        client = Bot()
        with pytest.raises(discord.LoginFailure):
            await client.login("not-the-token")
        await client.close()
        assert fake.refused("GET /users/@me")[0].answer == {"message": "401: Unauthorized", "code": 0}

        client = Bot()
        await client.login(fake.bot_token)
        fake.bot_token = "rotated-token-the-client-does-not-know"
        with pytest.raises(discord.ConnectionClosed) as closed:
            await asyncio.wait_for(client.connect(reconnect=True), 5)
        assert closed.value.code == 4004 and fake.closes == [4004]
        await client.close()


async def test_privileged_intents_not_granted_are_refused(fake):
    client = Bot(intents=discord.Intents(guilds=True, message_content=True))
    with pointed_at(fake):
        await client.login(fake.bot_token)
        with pytest.raises(discord.PrivilegedIntentsRequired):
            await asyncio.wait_for(client.connect(), 5)
        await client.close()
    assert fake.closes == [4014]


async def test_one_setting_is_enough_when_the_gateway_is_asked_of_the_api(fake):
    """The front end's recipe with DISCORD_API_URL alone: set Route.BASE, log in, ask GET /gateway/bot (as an
    AutoShardedClient would) and connect where it says."""
    saved = Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY
    client = Bot()
    try:
        Route.BASE = fake.api_url
        await client.login(fake.bot_token)
        shards, url, limits = await client.http.get_bot_gateway()
        assert (shards, url, limits["remaining"]) == (1, fake.gateway_url, 1000)
        DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(url)
        task = asyncio.create_task(client.connect())
        await asyncio.wait_for(client.ready.wait(), 5)
        assert client.user is not None and len(fake.identifies) == 1
    finally:
        await client.close()
        Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY = saved
    await asyncio.wait_for(task, 5)


async def test_a_dropped_connection_resumes_and_gets_what_it_missed(fake):
    seen: list[Any] = []
    client = await synced(fake, seen)
    async with running(fake, client):
        await client.tree.sync(guild=GUILD)
        await fake.drop_connection(4000)
        interaction = await fake.slash("desk approve", user=ALICE, options={"signal_id": "S1"})  # while away
        await fake.wait_for_callback(interaction)
        [resume] = fake.resumes
        assert resume["session_id"] == next(iter(fake.sessions)) and resume["seq"] >= 2
        assert len(fake.identifies) == 1 and len(fake.connections) == 2
        assert [r.path for r in fake.requests if r.path.startswith("/gateway")] == ["/gateway", "/gateway/resume"]
        assert seen == [("approve", "S1", 1)]
        await fake.reconnect_request()  # RECONNECT: the client resumes again, to READY's resume_gateway_url
        await fake.wait_for(lambda: len(fake.resumes) == 2 and fake._live_session() is not None)
        assert len(fake.identifies) == 1


# --- commands and interactions -------------------------------------------------------------------------------


async def test_tree_sync_registers_guild_commands_and_keeps_their_ids(fake):
    client = await synced(fake, [])
    async with running(fake, client):
        first = await client.tree.sync(guild=GUILD)
        again = await client.tree.sync(guild=GUILD)
        assert sorted(c.name for c in first) == ["desk", "scan"]
        assert {c.name: c.id for c in first} == {c.name: c.id for c in again}  # a bulk overwrite keeps ids
        fetched = await client.tree.fetch_commands(guild=GUILD)
    stored = {c["name"]: c for c in fake.commands[GUILD_ID]}
    assert {c.name: c.id for c in fetched} == {name: int(c["id"]) for name, c in stored.items()}
    desk = stored["desk"]
    assert [o["name"] for o in desk["options"]] == ["status", "approve"]
    approve = desk["options"][1]
    assert [(o["name"], o["type"], o.get("required")) for o in approve["options"]] == [
        ("signal_id", 3, True), ("size", 4, False)]
    assert fake.posted("PUT /applications/{application_id}/guilds/{guild_id}/commands")[0].params == {
        "application_id": APPLICATION_ID, "guild_id": GUILD_ID}


async def test_invalid_commands_are_refused_whole(fake):
    async with running(fake) as client:
        bad = [{"name": "Scan", "description": "x", "type": 1}, {"name": "ok", "description": "d" * 101}]
        with pytest.raises(discord.HTTPException) as refused:
            await client.http.bulk_upsert_guild_commands(client.application_id, GUILD_ID, bad)
    assert refused.value.status == 400 and refused.value.code == 50035
    errors = refused.value.response and fake.refusals[-1].answer["errors"]
    assert errors["0"]["name"]["_errors"][0]["code"] == "APPLICATION_COMMAND_INVALID_NAME"
    assert errors["1"]["description"]["_errors"][0]["message"] == "Must be 100 or fewer in length."
    assert GUILD_ID not in fake.commands


async def test_slash_command_defers_then_follows_up(fake):
    seen: list[Any] = []
    client = await synced(fake, seen)
    async with running(fake, client):
        await client.tree.sync(guild=GUILD)
        interaction = await fake.slash("scan", user=ALICE)
        [first, second] = await fake.wait_for_followups(interaction, 1) and await fake.wait_for(
            lambda: [*interaction.edits, *interaction.followups] if len(interaction.edits) + len(
                interaction.followups) >= 2 else None)
    assert interaction.callback == {"type": 5, "data": {}}  # DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE
    assert interaction.callback_query == {"with_response": "1"}
    assert interaction.callback_at - interaction.created_at < 3
    [(name, user_id, role_ids, response)] = seen
    assert (name, user_id) == ("scan", int(ALICE)) and int(APPROVERS_ROLE) in role_ids
    assert response.is_thinking() and response.message_id == int(interaction.response_message_id)
    # The first follow-up after a deferral edits the "thinking" message (Discord's documented compatibility)...
    original = fake.original(interaction)
    assert original["embeds"][0]["title"] == "Cycle done" and not original["flags"] & 128
    assert original["interaction_metadata"]["user"]["id"] == ALICE and original["type"] == 20
    assert fake.messages(DESK_CHANNEL) == [original]
    # ...the next is a new message, here ephemeral: only Alice sees it, it is not in the channel.
    [followup_id] = interaction.followups
    followup = fake.message(followup_id)
    assert followup["content"] == "and one more thing" and followup["flags"] & 64 and followup["_for"] == ALICE
    assert not client.failures


async def test_subcommand_options_reach_the_handler(fake):
    seen: list[Any] = []
    client = await synced(fake, seen)
    async with running(fake, client):
        await client.tree.sync(guild=GUILD)
        interaction = await fake.slash("desk approve", user=ALICE, options={"signal_id": "SIG-42", "size": 3})
        callback = await fake.wait_for_callback(interaction)
        status = await fake.slash("desk status", user=CAROL)
        await fake.wait_for_callback(status)
        with pytest.raises(ValueError):
            await fake.slash("desk approve", user=ALICE)  # the client would not send it without signal_id
        with pytest.raises(LookupError):
            await fake.slash("desk halt", user=ALICE)
    assert seen == [("approve", "SIG-42", 3)]
    assert callback["type"] == 4 and callback["data"]["content"] == "approving SIG-42 x3"
    option = interaction.payload["data"]["options"][0]
    assert option == {"name": "approve", "type": 1, "options": [
        {"name": "signal_id", "type": 3, "value": "SIG-42"}, {"name": "size", "type": 4, "value": 3}]}
    assert status.callback["data"]["flags"] == 64 and fake.message(status.response_message_id)["_for"] == CAROL
    assert [m["content"] for m in fake.messages(DESK_CHANNEL)] == ["approving SIG-42 x3"]


class SignalView(discord.ui.View):
    """A persistent view: buttons whose custom_id carries only the signal id, answered by editing the message."""

    def __init__(self, signal_id: str, clicks: list[tuple[int, str]]) -> None:
        super().__init__(timeout=None)
        self.clicks = clicks
        for verb, style in (("approve", discord.ButtonStyle.success), ("reject", discord.ButtonStyle.danger)):
            button: discord.ui.Button[SignalView] = discord.ui.Button(
                label=verb.title(), style=style, custom_id=f"{verb}:{signal_id}")
            button.callback = self._clicked  # type: ignore[method-assign]
            self.add_item(button)

    async def _clicked(self, interaction: discord.Interaction) -> None:
        custom_id = interaction.data["custom_id"]  # type: ignore[index]
        self.clicks.append((interaction.user.id, custom_id))
        await interaction.response.edit_message(content=f"{custom_id.split(':')[0]}d by {interaction.user.name}",
                                                view=None)


async def test_button_click_on_a_persistent_view_updates_the_message(fake):
    clicks: list[tuple[int, str]] = []
    async with running(fake) as client:
        channel = client.get_channel(int(DESK_CHANNEL))
        posted = await client.http.send_message(int(DESK_CHANNEL), params=discord.http.handle_message_parameters(
            content="New signal SIG-7", view=SignalView("SIG-7", [])))  # posted by an earlier run of the desk
        posted = await channel.fetch_message(int(posted["id"]))
        client.add_view(SignalView("SIG-7", clicks))  # this run routes clicks by custom_id alone
        assert [c["custom_id"] for c in fake.message(str(posted.id))["components"][0]["components"]] == [
            "approve:SIG-7", "reject:SIG-7"]
        interaction = await fake.click(str(posted.id), "approve:SIG-7", user=ALICE)
        callback = await fake.wait_for_callback(interaction)
        with pytest.raises(LookupError):  # the buttons are gone: nobody can click again
            await fake.click(str(posted.id), "reject:SIG-7", user=MALLORY)
    assert clicks == [(int(ALICE), "approve:SIG-7")]
    assert callback["type"] == 7 and callback["data"]["components"] == []
    message = fake.message(str(posted.id))
    assert message["content"] == "approved by alice" and message["components"] == []
    assert message["edited_timestamp"] is not None and interaction.edits == [(str(posted.id), callback["data"])]
    payload = interaction.payload
    assert payload["type"] == 3 and payload["data"]["custom_id"] == "approve:SIG-7"
    assert payload["message"]["id"] == str(posted.id) and payload["member"]["user"]["id"] == ALICE
    assert payload["member"]["roles"] == [APPROVERS_ROLE] and payload["version"] == 1


async def test_on_interaction_sees_every_click_and_can_defer_the_update(fake):
    raw: list[dict[str, Any]] = []
    async with running(fake) as client:
        async def on_interaction(interaction: discord.Interaction) -> None:
            raw.append(dict(interaction.data or {}))
            await interaction.response.defer()  # DEFERRED_UPDATE_MESSAGE for a component
            await interaction.edit_original_response(content="working on it")
        client.on_interaction = on_interaction  # type: ignore[method-assign]
        channel = client.get_channel(int(DESK_CHANNEL))
        view = discord.ui.View(timeout=None)
        view.add_item(discord.ui.Button(label="Retry", custom_id="retry:E1"))
        posted = await channel.send("cycle failed", view=view)
        interaction = await fake.click(str(posted.id), "retry:E1", user=CAROL)
        await fake.wait_for_edits(interaction)
    assert raw and raw[0]["custom_id"] == "retry:E1"
    assert interaction.callback_type == 6 and fake.message(str(posted.id))["content"] == "working on it"


# --- channel messages and threads ----------------------------------------------------------------------------


def signal_embed(title: str = "KXFED-25DEC YES @ 41c", **extra: Any) -> discord.Embed:
    embed = discord.Embed(title=title, description="Edge 9.1c after fees", **extra)
    embed.add_field(name="Size", value="12 contracts").add_field(name="Fair", value="0.50")
    return embed.set_footer(text="expires in 30 min").set_author(name="oddsdesk")


async def test_post_and_edit_a_message_with_embeds_and_buttons(fake):
    async with running(fake) as client:
        channel = client.get_channel(int(DESK_CHANNEL))
        view = discord.ui.View(timeout=None)
        view.add_item(discord.ui.Button(label="Approve", custom_id="approve:S9", style=discord.ButtonStyle.success))
        view.add_item(discord.ui.Button(label="Market", url="https://kalshi.example/markets/KXFED"))
        posted = await channel.send(f"<@{ALICE}> new signal", embed=signal_embed(), view=view,
                                    allowed_mentions=discord.AllowedMentions.none())
        assert posted.embeds[0].title == "KXFED-25DEC YES @ 41c" and posted.components
        stored = fake.message(str(posted.id))
        assert stored["embeds"][0]["fields"][0] == {"inline": True, "name": "Size", "value": "12 contracts"}
        assert [b.get("custom_id") or b.get("url") for b in stored["components"][0]["components"]] == [
            "approve:S9", "https://kalshi.example/markets/KXFED"]
        assert fake.pings[str(posted.id)]["users"] == []  # mentioned, but allowed_mentions says nobody is pinged
        assert stored["mentions"][0]["id"] == ALICE

        edited = await posted.edit(content="Approved by alice", embed=signal_embed("SIMULATED"), view=None)
        assert edited.content == "Approved by alice" and edited.edited_at is not None
        fetched = await channel.fetch_message(posted.id)
        assert fetched.components == [] and fetched.embeds[0].title == "SIMULATED"

        loud = await channel.send(f"<@{ALICE}> <@&{APPROVERS_ROLE}> please look")
        assert fake.pings[str(loud.id)] == {"allowed_mentions": None, "users": [ALICE],
                                            "roles": [APPROVERS_ROLE], "everyone": False}
    assert [m["content"] for m in fake.messages(DESK_CHANNEL)] == ["Approved by alice",
                                                                   f"<@{ALICE}> <@&{APPROVERS_ROLE}> please look"]
    assert fake.edits[-1][0] == str(posted.id)


async def test_a_thread_from_a_message_takes_its_posts(fake):
    async with running(fake) as client:
        channel = client.get_channel(int(DESK_CHANNEL))
        report = await channel.send("Cycle failed: venue timeout")
        thread = await report.create_thread(name="Error details", auto_archive_duration=1440)
        assert thread.id == report.id and thread.parent_id == int(DESK_CHANNEL)  # a thread takes its message's id
        await thread.send("```Traceback ...```")
        await thread.send("retry at 12:05")
        with pytest.raises(discord.HTTPException) as again:
            await report.create_thread(name="Error details")
        with pytest.raises(discord.HTTPException) as nameless:
            await (await channel.send("x")).create_thread(name="n" * 101)
    assert again.value.status == 400 and again.value.code == 160004
    assert nameless.value.code == 50035 and "name: Must be 100 or fewer in length." in str(nameless.value)
    assert [m["content"] for m in fake.messages(str(thread.id))] == ["```Traceback ...```", "retry at 12:05"]
    assert fake.thread(str(thread.id))["message_count"] == 2
    assert fake.message(str(report.id))["thread"]["name"] == "Error details"


async def test_unknown_and_hidden_channels_and_messages_are_refused(fake):
    fake.hide_channel("1300000000000000201")
    async with running(fake) as client:
        with pytest.raises(discord.Forbidden) as hidden:
            await client.http.send_message(1300000000000000201, params=discord.http.handle_message_parameters(
                content="x"))
        with pytest.raises(discord.NotFound) as nowhere:
            await client.http.send_message(42, params=discord.http.handle_message_parameters(content="x"))
        with pytest.raises(discord.NotFound) as no_message:
            await client.get_channel(int(DESK_CHANNEL)).fetch_message(42)
        with pytest.raises(discord.HTTPException) as empty:
            await client.http.send_message(int(DESK_CHANNEL), params=discord.http.handle_message_parameters())
    assert (hidden.value.code, nowhere.value.code, no_message.value.code, empty.value.code) == (
        50001, 10003, 10008, 50006)


# --- what Discord refuses ------------------------------------------------------------------------------------


async def raw_post(client: Bot, payload: dict[str, Any]) -> Any:
    """Through discord.py's own HTTP client (its auth, rate limiting and errors), a payload a buggy renderer
    might build; discord.py's ui.View would refuse some of these locally, Discord refuses them all."""
    return await client.http.request(Route("POST", "/channels/{channel_id}/messages", channel_id=DESK_CHANNEL),
                                     json=payload)


def buttons(count: int, prefix: str = "b") -> list[dict[str, Any]]:
    return [{"type": 2, "style": 1, "label": f"B{i}", "custom_id": f"{prefix}{i}"} for i in range(count)]


async def test_component_limits_are_refused_as_discord_refuses_them(fake):
    async with running(fake) as client:
        refusals = []
        for components in (
            [{"type": 1, "components": buttons(6)}],  # six buttons in a row
            [{"type": 1, "components": buttons(1, f"r{i}-")} for i in range(6)],  # six rows
            [{"type": 1, "components": [{"type": 2, "style": 1, "label": "x", "custom_id": "c" * 101}]}],
            [{"type": 1, "components": buttons(2, "same") + [{"type": 2, "style": 2, "label": "y",
                                                             "custom_id": "same0"}]}],
            [{"type": 1, "components": [{"type": 2, "style": 5, "label": "l", "url": "https://x.example",
                                         "custom_id": "link"}, {"type": 2, "style": 1, "label": "L" * 81,
                                                                "custom_id": "ok"}]}],
        ):
            with pytest.raises(discord.HTTPException) as refused:
                await raw_post(client, {"content": "signal", "components": components})
            refusals.append(refused.value)
        accepted = await raw_post(client, {"content": "ok", "components": [
            {"type": 1, "components": buttons(5, f"r{i}-")} for i in range(5)]})  # 25 buttons: the maximum
        view = discord.ui.View()
        view.add_item(discord.ui.Button(label="too long", custom_id="approve:" + "x" * 93))  # 101 characters
        with pytest.raises(discord.HTTPException) as through_view:
            await client.get_channel(int(DESK_CHANNEL)).send("signal", view=view)
    assert all(r.status == 400 and r.code == 50035 for r in refusals)
    texts = [str(r) for r in refusals]
    assert "In components.0.components: Must be 5 or fewer in length." in texts[0]
    assert "In components: Must be 5 or fewer in length." in texts[1]
    assert "In components.0.components.0.custom_id: Must be 100 or fewer in length." in texts[2]
    assert "In components.0.components.2.custom_id: Component custom id was already specified" in texts[3]
    assert "components.0.components.0.custom_id" in texts[4] and "label: Must be 80 or fewer" in texts[4]
    assert len(accepted["components"]) == 5
    assert "custom_id: Must be 100 or fewer in length." in str(through_view.value)
    assert [m["content"] for m in fake.messages(DESK_CHANNEL)] == ["ok"]  # nothing refused was posted


async def test_embed_limits_are_refused_as_discord_refuses_them(fake):
    async with running(fake) as client:
        channel = client.get_channel(int(DESK_CHANNEL))
        cases = [
            dict(embed=discord.Embed(title="t", description="d" * 4097)),
            dict(embed=discord.Embed(title="t" * 257)),
            dict(embeds=[discord.Embed(description="d" * 4000), discord.Embed(description="e" * 2001)]),  # 6001
            dict(content="c" * 2001),
        ]
        wide = discord.Embed(title="fields")
        for i in range(26):
            wide.add_field(name=f"f{i}", value="v")
        wide.set_footer(text="f" * 2049)
        cases.append(dict(embed=wide))
        texts = []
        for case in cases:
            with pytest.raises(discord.HTTPException) as refused:
                await channel.send(**case)
            assert refused.value.code == 50035
            texts.append(str(refused.value))
        with pytest.raises(discord.HTTPException) as eleven:  # discord.py refuses this one itself; Discord too
            await raw_post(client, {"embeds": [{"title": str(i)} for i in range(11)]})
        fits = await channel.send(embeds=[discord.Embed(description="d" * 4000 + "   "),
                                          discord.Embed(description="e" * 2000)])  # whitespace is trimmed
    assert "In embeds.0.description: Must be 4096 or fewer in length." in texts[0]
    assert "In embeds.0.title: Must be 256 or fewer in length." in texts[1]
    assert "In embeds: Embed size exceeds maximum size of 6000" in texts[2]
    assert "In content: Must be 2000 or fewer in length." in texts[3]
    assert "In embeds.0.fields: Must be 25 or fewer in length." in texts[4]
    assert "In embeds.0.footer.text: Must be 2048 or fewer in length." in texts[4]
    assert fake.refusals[-1].answer["errors"] == {"embeds": {"_errors": [
        {"code": "BASE_TYPE_MAX_LENGTH", "message": "Must be 10 or fewer in length."}]}}
    assert "Must be 10 or fewer in length." in str(eleven.value)
    assert len(fits.embeds) == 2 and len(fake.messages(DESK_CHANNEL)) == 1


class Gated(Bot):
    """A bot whose /scan handler waits for the test before answering, and keeps what answering raised."""

    def __init__(self) -> None:
        super().__init__()
        self.started = asyncio.Event()
        self.go = asyncio.Event()
        self.raised: list[BaseException] = []
        self.answer = self._defer

        @self.tree.command(name="scan", description="Run a trading cycle now", guild=GUILD)
        async def scan(interaction: discord.Interaction) -> None:
            self.started.set()
            await self.go.wait()
            try:
                await self.answer(interaction)
            except discord.HTTPException as exc:
                self.raised.append(exc)

    @staticmethod
    async def _defer(interaction: discord.Interaction) -> None:
        await interaction.response.defer(thinking=True)

    async def run_scan(self, fake: FakeDiscord, *, before_answer: Any = None) -> Interaction:
        await self.tree.sync(guild=GUILD)
        interaction = await fake.slash("scan", user=ALICE)
        await asyncio.wait_for(self.started.wait(), 5)
        if before_answer is not None:
            before_answer()
        self.go.set()
        await fake.wait_for(lambda: interaction.callback or interaction.refused or self.raised)
        await asyncio.sleep(0)
        return interaction


async def test_a_callback_after_three_seconds_is_an_unknown_interaction(fake, clock):
    client = Gated()
    async with running(fake, client):
        interaction = await client.run_scan(fake, before_answer=lambda: clock.advance(3.01))
        await fake.wait_for(lambda: client.raised)
        with pytest.raises(discord.HTTPException) as late_followup:  # no answer, no webhook either
            await discord.Webhook.partial(int(APPLICATION_ID), interaction.token, client=client).send("late")
    [error] = client.raised
    assert isinstance(error, discord.NotFound) and error.code == 10062 and error.text == "Unknown interaction"
    assert interaction.callback is None and interaction.refused[0][1:] == (
        404, {"message": "Unknown interaction", "code": 10062})
    assert late_followup.value.status == 404 and late_followup.value.code == 10015
    assert fake.messages(DESK_CHANNEL) == []


async def test_just_inside_the_deadline_is_fine(fake, clock):
    client = Gated()
    async with running(fake, client):
        interaction = await client.run_scan(fake, before_answer=lambda: clock.advance(2.9))
    assert interaction.callback_type == 5 and not client.raised


async def test_an_interaction_is_acknowledged_once(fake):
    client = Gated()

    async def twice(interaction: discord.Interaction) -> None:
        await interaction.response.defer()
        # discord.py refuses a second answer on the same object itself; a second process answering the same
        # interaction (or a retried request) reaches Discord, which refuses it:
        again = discord.Interaction(data=fake.interactions[str(interaction.id)].payload, state=client._connection)
        await again.response.send_message("me too")

    client.answer = twice
    async with running(fake, client):
        interaction = await client.run_scan(fake)
        await fake.wait_for(lambda: client.raised)
    [error] = client.raised
    assert error.status == 400 and error.code == 40060 and error.text == "Interaction has already been acknowledged."
    assert interaction.callback_type == 5 and len(fake.posted(
        "POST /interactions/{interaction_id}/{interaction_token}/callback")) == 1


async def test_follow_ups_stop_working_fifteen_minutes_after_the_interaction(fake, clock):
    client = Gated()
    async with running(fake, client):
        interaction = await client.run_scan(fake)
        webhook = discord.Webhook.partial(int(APPLICATION_ID), interaction.token, client=client)
        await webhook.edit_message(int(interaction.response_message_id), content="step 1/7")
        clock.advance(14 * 60)
        await webhook.edit_message(int(interaction.response_message_id), content="step 7/7")
        clock.advance(61)
        with pytest.raises(discord.HTTPException) as expired:
            await webhook.edit_message(int(interaction.response_message_id), content="too late")
    assert expired.value.status == 401 and expired.value.code == 50027
    assert fake.original(interaction)["content"] == "step 7/7"


async def test_a_callback_with_an_oversized_answer_is_refused_under_data(fake):
    client = Gated()

    async def oversized(interaction: discord.Interaction) -> None:
        await interaction.response.send_message(embed=discord.Embed(description="d" * 4097))

    client.answer = oversized
    async with running(fake, client):
        interaction = await client.run_scan(fake)
        await fake.wait_for(lambda: client.raised)
    [error] = client.raised
    assert error.code == 50035 and "In data.embeds.0.description: Must be 4096 or fewer in length." in str(error)
    assert interaction.callback is None


async def test_update_message_is_only_for_component_interactions(fake):
    client = Gated()

    async def update(interaction: discord.Interaction) -> None:
        await client.http.request(Route("POST", "/interactions/{interaction_id}/{interaction_token}/callback",
                                        interaction_id=interaction.id, interaction_token=interaction.token),
                                  json={"type": 7, "data": {"content": "x"}})

    client.answer = update
    async with running(fake, client):
        interaction = await client.run_scan(fake)
        await fake.wait_for(lambda: client.raised)
    assert client.raised[0].code == 50035 and interaction.callback is None


# --- rate limits ---------------------------------------------------------------------------------------------


async def test_a_429_is_waited_out_and_retried(fake):
    fake.rate_limit_next("POST /channels/{channel_id}/messages", retry_after=0.25)
    async with running(fake) as client:
        sent = await client.get_channel(int(DESK_CHANNEL)).send("after the limit")
    limited, retried = [c for c in fake.calls if c.route == "/channels/{channel_id}/messages"]
    assert limited.status == 429 and limited.answer == {"message": "You are being rate limited.",
                                                        "retry_after": 0.25, "global": False}
    assert retried.status == 200 and retried.at - limited.at >= 0.25  # discord.py slept retry_after
    assert sent.content == "after the limit" and len(fake.rate_limited) == 1


async def test_follow_ups_are_rate_limited_too(fake):
    seen: list[Any] = []
    client = await synced(fake, seen)
    fake.rate_limit_next("POST /webhooks/{application_id}/{interaction_token}", retry_after=0.2, scope="shared")
    async with running(fake, client):
        await client.tree.sync(guild=GUILD)
        interaction = await fake.slash("scan", user=ALICE)
        await fake.wait_for(lambda: interaction.followups)
    posts = [c for c in fake.calls if c.route == "/webhooks/{application_id}/{interaction_token}"]
    assert [c.status for c in posts] == [429, 200, 200]  # the webhook adapter waited and retried too
    assert posts[1].at - posts[0].at >= 0.2 and posts[0].answer["message"] == "The resource is being rate limited."


async def test_a_bucket_announced_in_headers_is_respected_before_any_429(fake):
    fake.set_bucket("POST /channels/{channel_id}/messages", limit=1, per=0.3)
    async with running(fake) as client:
        channel = client.get_channel(int(DESK_CHANNEL))
        await asyncio.gather(channel.send("one"), channel.send("two"))
    posts = [c for c in fake.calls if c.route == "/channels/{channel_id}/messages"]
    assert [c.status for c in posts] == [200, 200] and not fake.rate_limited  # discord.py read Remaining: 0
    assert posts[1].at - posts[0].at >= 0.25


async def test_a_cloudflare_429_is_not_retried(fake):
    async with running(fake) as client:
        fake.faults.add("429", "/api/v10/channels/")
        with pytest.raises(discord.HTTPException) as banned:
            await client.get_channel(int(DESK_CHANNEL)).send("x")
    assert banned.value.status == 429 and fake.server.count("POST", "/api/v10/channels/") == 1
