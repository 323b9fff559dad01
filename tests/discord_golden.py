"""Discord payloads of a representative set of message kinds, drawn from the same messages as Slack's goldens.

`python -m tests.discord_golden write` rewrites tests/data/discord_golden/*.json (the bodies Discord is sent);
`python -m tests.discord_golden show NAME…` prints them roughly as Discord lays them out (there is no previewer).
tests/test_discord_render.py checks that rendering still gives exactly these payloads.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from bot import discord
from bot.present import state
from bot.present.model import Page

from . import golden

GOLDEN = Path(__file__).parent / "data" / "discord_golden"
# Slack golden names whose Discord payloads are kept: each kind a trader decides from or reads.
KEPT = ("signal_paper_no", "signal_live_no", "signal_live_long_title_polymarket", "exit_live_take_profit",
        "exit_paper_take_profit", "outcome_paper_fill", "outcome_live_failed", "outcome_exit_live_partial",
        "outcome_expired", "progress_running", "summary_partial", "errors_partial_channel", "positions_paper",
        "positions_exit_pending", "help", "record", "home_paper", "status_paper")


def many_positions() -> Any:
    """30 positions: more Close buttons than one Discord message holds."""
    status = golden.make_status(positions=[golden.make_position(i) for i in range(30)], pending=[])
    return state.positions_message(status, golden.marked(status), golden.NOW)


def cases() -> dict[str, Any]:
    """name -> Discord payload, or {"channel": …, "thread": […]} for a message with a thread, or a list of pages."""
    said = golden.messages()
    out: dict[str, Any] = {}
    for name in KEPT:
        message = said[name]
        if isinstance(message, Page):
            out[name] = discord.render_page(message)
        elif message.thread:
            out[name] = {"channel": discord.render(message), "thread": discord.render_thread(message)}
        else:
            out[name] = discord.render(message)
    out["positions_many"] = discord.render(many_positions())
    out["positions_many_pages"] = discord.render_pages(many_positions())
    live = said["signal_live_no"]
    out["confirm_live"] = discord.confirm_payload(live.buttons[0])
    out["confirm_live_exit"] = discord.confirm_payload(said["exit_live_take_profit"].buttons[0])
    return out


def write() -> None:
    golden.write(GOLDEN, cases())


def payloads(kept: Any) -> list[dict[str, Any]]:
    """Every Discord message body in a kept case."""
    if isinstance(kept, list):
        return kept
    if "thread" in kept:
        return [kept["channel"], *kept["thread"]]
    return [kept]


def show(payload: dict[str, Any]) -> str:
    """A rough picture of a message: content, then each embed's title, text, fields and footer, then the buttons."""
    styles = {1: "primary", 2: "secondary", 3: "success", 4: "danger"}
    out = [payload.get("content", "")]
    for embed in payload.get("embeds", []):
        out.append(f"┃ #{embed.get('color', 0):06x}  {embed.get('title', '')}")
        out.extend(f"┃ {line}" for line in embed.get("description", "").split("\n"))
        for field in embed.get("fields", []):
            out.append(f"┃ [{field['name']}]{' (inline)' if field.get('inline') else ''}")
            out.extend(f"┃   {line}" for line in field["value"].split("\n"))
        if "footer" in embed:
            out.extend(f"┃ · {line}" for line in embed["footer"]["text"].split("\n"))
    for row in payload.get("components", []):
        out.append("  ".join(f"[{b['label']} · {styles.get(b['style'], b['style'])} · {b['custom_id']}]"
                             for b in row["components"]))
    if payload.get("flags"):
        out.append(f"(flags {payload['flags']})")
    return "\n".join(out)


if __name__ == "__main__":
    if sys.argv[1:] == ["write"]:
        write()
    elif sys.argv[1:2] == ["show"]:
        made = cases()
        for name in sys.argv[2:] or sorted(made):
            print(f"=== {name}")
            print("\n\n".join(show(p) for p in payloads(made[name])))
    else:
        print(__doc__)
