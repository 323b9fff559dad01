"""P3's probe: Slack's side of the wire, in a process of its own. Prints ack latencies as JSON.

Sends signed /scan commands and Approve clicks to an app's /slack/events, one at a time, paced, and
times each until its HTTP answer (the ack). It runs apart from the desk and from the fakes so that
neither's work is counted against the other: what it measures is the desk's event loop answering.

    python -m benchmarks.ack_probe URL --response-urls FILE --pairs N          # N pairs, then exit
    python -m benchmarks.ack_probe URL --response-urls FILE --until-stdin-closes --scan-text ""

The signing secret comes from ODDSDESK_BENCH_SIGNING_SECRET (never argv, which `ps` shows).
Each request carries a fresh response URL from FILE (one JSON list), as Slack's do.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from typing import Any

import httpx

from bot.blocks import APPROVE_ACTION
from tests.servers.slack import DESK_CHANNEL
from tests.slack_requests import FORM, SLACK_USER_AGENT, block_action, sign, slash_command

USER = "U0TRADER1"
PACE = 0.05  # seconds between pairs: a busy channel, not a flood
BUSY_ANSWER = "is still running"  # bot.blocks.cycle_busy_text


async def timed_post(client: httpx.AsyncClient, url: str, secret: str, body: bytes) -> tuple[float, str]:
    headers = {"Content-Type": FORM, "User-Agent": SLACK_USER_AGENT, **sign(secret, body)}
    started = time.perf_counter()
    response = await client.post(url, content=body, headers=headers)
    elapsed = time.perf_counter() - started
    if response.status_code != 200:
        raise RuntimeError(f"the app answered {response.status_code}: {response.text[:200]}")
    return elapsed, response.text


async def probe(url: str, secret: str, response_urls: list[str], pairs: int | None, scan_text: str) -> dict[str, Any]:
    stop = asyncio.Event()
    if pairs is None:  # run until the parent closes our stdin (its cycle finished)
        loop = asyncio.get_running_loop()
        loop.run_in_executor(None, lambda: (sys.stdin.read(), loop.call_soon_threadsafe(stop.set)))
    scans: list[float] = []
    clicks: list[float] = []
    answers: dict[str, int] = {}
    urls = iter(response_urls)
    async with httpx.AsyncClient(timeout=30) as client:
        n = 0
        while not stop.is_set() and (pairs is None or n < pairs):
            body = slash_command("/scan", scan_text, user_id=USER, channel_id=DESK_CHANNEL, response_url=next(urls))
            seconds, text = await timed_post(client, url, secret, body)
            kind = "busy" if BUSY_ANSWER in text else ("started" if "Starting a cycle" in text else "other")
            answers[kind] = answers.get(kind, 0) + 1
            if kind == "started" and pairs is None:
                break  # the cycle under measurement ended and this /scan started another: stop here
            scans.append(seconds)
            click = block_action(APPROVE_ACTION, f"no-such-signal-{n}", user_id=USER, channel_id=DESK_CHANNEL,
                                 message_ts="1.000001", response_url=next(urls))
            clicks.append((await timed_post(client, url, secret, click))[0])
            n += 1
            await asyncio.sleep(PACE)
    return {"scans": scans, "clicks": clicks, "answers": answers}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--response-urls", required=True, help="a JSON file: a list of response URLs, one a request")
    parser.add_argument("--pairs", type=int, help="send this many /scan + click pairs, then stop")
    parser.add_argument("--until-stdin-closes", action="store_true", help="send pairs until stdin closes")
    parser.add_argument("--scan-text", default="", help="the /scan command's text")
    args = parser.parse_args()
    if (args.pairs is None) == (not args.until_stdin_closes):
        parser.error("give exactly one of --pairs N and --until-stdin-closes")
    secret = os.environ["ODDSDESK_BENCH_SIGNING_SECRET"]
    with open(args.response_urls) as f:
        response_urls = json.load(f)
    outcome = asyncio.run(probe(args.url, secret, response_urls, args.pairs, args.scan_text))
    json.dump(outcome, sys.stdout)


if __name__ == "__main__":
    main()
