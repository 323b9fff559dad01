"""Discord: the desk's messages as Discord payloads (plain dicts; no client library needed to draw them)."""

from .ids import CANCEL_ACTION, CONFIRM_ACTION, custom_id, parse_custom_id
from .markdown import DISCORD_ACTOR
from .render import confirm_payload, pages, render, render_page, render_pages, render_thread

__all__ = ["CANCEL_ACTION", "CONFIRM_ACTION", "DISCORD_ACTOR", "confirm_payload", "custom_id", "pages",
           "parse_custom_id", "render", "render_page", "render_pages", "render_thread"]
