"""App Home: the desk at a glance, refreshed whenever the tab is opened."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncApp

from ..runtime import SlackDesk


def register(app: AsyncApp, slack_desk: SlackDesk) -> None:
    @app.event("app_home_opened")
    async def home_opened(event: dict[str, Any]) -> None:
        if event.get("tab", "home") == "home":
            await slack_desk.publish_home(event["user"])
