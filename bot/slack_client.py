"""The Slack Web API client and a poster that keeps to Slack's per-channel pace."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from slack_sdk.http_retry.builtin_async_handlers import (AsyncConnectionErrorRetryHandler,
                                                         AsyncRateLimitErrorRetryHandler,
                                                         AsyncServerErrorRetryHandler)
from slack_sdk.web.async_client import AsyncWebClient

from pipeline.config import Settings
from pipeline.errors import ConfigError


def web_client(settings: Settings, token: str | None = None) -> AsyncWebClient:
    """A client for SLACK_API_URL that retries 429 (honouring Retry-After), 5xx and dropped connections."""
    if token is None:
        secret = settings.env.SLACK_BOT_TOKEN
        if secret is None or not secret.get_secret_value():
            raise ConfigError("config error: SLACK_BOT_TOKEN: not set; copy the Bot User OAuth Token (xoxb-...) "
                              "from the app's OAuth & Permissions page")
        token = secret.get_secret_value()
    base_url = settings.env.SLACK_API_URL
    if not base_url.endswith("/"):
        base_url += "/"
    return AsyncWebClient(token=token, base_url=base_url, timeout=30, retry_handlers=[
        AsyncRateLimitErrorRetryHandler(max_retry_count=5),
        AsyncServerErrorRetryHandler(max_retry_count=2),
        AsyncConnectionErrorRetryHandler(max_retry_count=2),
    ])


class Poster:
    """Posts and edits messages, at most `per_second` new posts per channel (Slack allows about 1/s)."""

    def __init__(self, client: AsyncWebClient, per_second: float = 1.0) -> None:
        self.client = client
        self.interval = 1.0 / per_second
        self._next: dict[str, float] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._ids: dict[str, str] = {}  # "#trading-desk" -> "C0…": Slack paces by channel id

    async def _pace(self, channel: str) -> None:
        channel = self._ids.get(channel, channel)
        async with self._locks.setdefault(channel, asyncio.Lock()):
            now = time.monotonic()
            wait = self._next.get(channel, now) - now
            if wait > 0:
                await asyncio.sleep(wait)
            self._next[channel] = max(now, self._next.get(channel, now)) + self.interval

    async def post(self, channel: str, message: dict[str, Any], thread_ts: str | None = None) -> tuple[str, str]:
        """Post; returns (channel id, ts), which together name the message for later edits."""
        await self._pace(channel)
        response = await self.client.chat_postMessage(channel=channel, thread_ts=thread_ts, **message)
        channel_id = response["channel"]
        if channel != channel_id and channel not in self._ids:
            self._ids[channel] = channel_id
            self._next[channel_id] = max(self._next.get(channel_id, 0.0), self._next.pop(channel, 0.0))
        return channel_id, response["ts"]

    def channel_id(self, channel: str) -> str | None:
        """The id of a channel posted to by name, once a post there has told it."""
        return self._ids.get(channel)

    async def update(self, channel: str, ts: str, message: dict[str, Any]) -> None:
        await self.client.chat_update(channel=channel, ts=ts, **message)

    async def ephemeral(self, channel: str, user: str, text: str, blocks: list[dict] | None = None) -> None:
        await self.client.chat_postEphemeral(channel=channel, user=user, text=text, blocks=blocks)

    async def upload_png(self, channel: str, filename: str, data: bytes, *, title: str, alt_text: str,
                         comment: str = "", thread_ts: str | None = None) -> str:
        """Share a chart in a channel (or thread) as Slack now wants files shared (get an upload URL, send the
        bytes, complete); returns the file id. Slack's errors propagate as slack_sdk's; the caller decides.

        files.completeUploadExternal takes a channel id, never a name: a name is used as its id once a post there
        has told it (see `channel_id`); an unknown name is passed on and Slack refuses it."""
        await self._pace(channel)
        response = await self.client.files_upload_v2(
            channel=self._ids.get(channel, channel), filename=filename, content=data, title=title, alt_txt=alt_text,
            initial_comment=comment or None, thread_ts=thread_ts)
        return str(response["file"]["id"])


def message_ref(channel: str, ts: str) -> str:
    return f"{channel}:{ts}"


def parse_ref(ref: str) -> tuple[str, str] | None:
    channel, _, ts = ref.partition(":")
    return (channel, ts) if channel and ts else None
