"""`oddsdesk run --http` as a user starts it: a real process serving /slack/events, the bundled sample,
a fake Slack Web API on loopback. A signed /scan brings signals to the channel; Approve simulates."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from urllib.parse import parse_qsl

from .processes import clean_environ, free_port, wait_until_serving
from .servers.slack import DESK_CHANNEL, FakeSlack
from .slack_requests import FORM, block_action, post_to_app, sign, slash_command

ROOT = Path(__file__).resolve().parents[1]
SECRET = "run-command-signing-secret-0123456789"


async def test_oddsdesk_run_serves_slack_over_http(tmp_path):
    port = free_port()
    async with FakeSlack() as slack:
        env = clean_environ()
        env.update({"SLACK_API_URL": slack.api_url, "SLACK_BOT_TOKEN": slack.bot_token,
                    "SLACK_SIGNING_SECRET": SECRET, "SLACK_APP_TOKEN": "xapp-ignored-with-http",
                    "ODDSDESK_APPROVAL__AUTHORIZED_USERS": '["U0TRADER1"]',
                    "ODDSDESK_STORAGE__PATH": str(tmp_path / "run.db")})
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "--config", str(ROOT / "config.json"), "run", "--http", "--port", str(port),
            "--snapshot", "sample", cwd=tmp_path, env=env, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        url = f"http://127.0.0.1:{port}/slack/events"
        try:
            await wait_until_serving(url, process)
            body = slash_command("/scan", "", user_id="U0TRADER1", channel_id=DESK_CHANNEL,
                                 response_url=slack.new_response_url(channel=DESK_CHANNEL, user="U0TRADER1"))
            status, text = await post_to_app(url, body, sign(SECRET, body), content_type=FORM)
            assert status == 200 and "Starting a cycle" in text
            assert (await post_to_app(url, body, sign("wrong", body), content_type=FORM))[0] == 401

            def signal_messages() -> list[dict]:
                return [m for m in slack.messages(DESK_CHANNEL)
                        if any(b["type"] == "actions" for b in m.get("blocks", []))]

            await slack.wait_for(lambda: len(signal_messages()) >= 1
                                 and any("signals from" in m.get("text", "") for m in slack.messages(DESK_CHANNEL)),
                                 timeout=30)
            first = signal_messages()[0]
            button = next(e for b in first["blocks"] if b["type"] == "actions" for e in b["elements"])
            click = block_action(button["action_id"], button["value"], user_id="U0TRADER1", channel_id=DESK_CHANNEL,
                                 message_ts=first["ts"], response_url=slack.new_response_url(), message=first)
            assert (await post_to_app(url, click, sign(SECRET, click), content_type=FORM))[0] == 200
            await slack.wait_for(lambda: "Paper fill: " in json.dumps(slack.message(DESK_CHANNEL, first["ts"]),
                                                                      ensure_ascii=False), timeout=15)
        finally:
            process.terminate()
            out, err = await asyncio.wait_for(process.communicate(), timeout=30)
    assert process.returncode == 0 and "oddsdesk stopped" in err.decode()  # SIGTERM: a clean shutdown
    assert "HTTP on port" in out.decode() and "DRY-RUN" in out.decode()
    assert SECRET not in out.decode() + err.decode() and slack.bot_token not in out.decode() + err.decode()


async def test_oddsdesk_run_uses_socket_mode_when_an_app_token_is_set(tmp_path):
    async with FakeSlack() as slack:
        env = clean_environ()
        env.update({"SLACK_API_URL": slack.api_url, "SLACK_BOT_TOKEN": slack.bot_token,
                    "SLACK_APP_TOKEN": slack.app_token,  # no signing secret: Socket Mode does not need it
                    "ODDSDESK_APPROVAL__AUTHORIZED_USERS": '["U0TRADER1"]',
                    "ODDSDESK_STORAGE__PATH": str(tmp_path / "socket.db")})
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "--config", str(ROOT / "config.json"), "run", "--snapshot", "sample",
            cwd=tmp_path, env=env, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        try:
            await slack.wait_for(lambda: slack.sockets, timeout=30)
            command = dict(parse_qsl(slash_command("/scan", "polymarket", user_id="U0TRADER1",
                                                   channel_id=DESK_CHANNEL,
                                                   response_url=slack.new_response_url()).decode()))
            envelope = await slack.send_envelope("slash_commands", command)
            ack = await slack.wait_for(lambda: envelope in slack.socket_acks and slack.socket_acks[envelope],
                                       timeout=10)
            assert "Starting a cycle" in json.dumps(ack)
            await slack.wait_for(lambda: any("signals from" in m.get("text", "") or "signal from" in m.get("text", "")
                                             for m in slack.messages(DESK_CHANNEL)), timeout=30)
            assert [c for c, _ in slack.calls].count("apps.connections.open") == 1
        finally:
            process.terminate()
            out, err = await asyncio.wait_for(process.communicate(), timeout=30)
    assert process.returncode == 0 and "Socket Mode" in out.decode(), err.decode()[-2000:]
    assert slack.app_token not in out.decode() + err.decode()
