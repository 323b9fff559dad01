"""Bolt listeners, one small module each; `register_all(app, slack_desk)` wires them."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from ..runtime import SlackDesk
from . import actions, commands, home


def register_all(app: AsyncApp, slack_desk: SlackDesk) -> None:
    commands.register(app, slack_desk)
    actions.register(app, slack_desk)
    home.register(app, slack_desk)
