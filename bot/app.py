"""Build the Bolt AsyncApp around a SlackDesk, and serve it: Socket Mode or HTTP at /slack/events."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from pipeline.config import Settings
from pipeline.cycle import CycleRequest
from pipeline.errors import ConfigError, CycleAlreadyRunning

from .listeners import register_all
from .runtime import SlackDesk

log = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"
SWEEP_SECONDS = 30.0


def build_app(slack_desk: SlackDesk, settings: Settings, client: AsyncWebClient, *, http: bool) -> AsyncApp:
    secret = settings.env.SLACK_SIGNING_SECRET
    signing_secret = secret.get_secret_value() if secret is not None else ""
    if http and not signing_secret:
        raise ConfigError("config error: SLACK_SIGNING_SECRET: not set; HTTP mode verifies every request with it "
                          "(Basic Information > App Credentials > Signing Secret)")
    app = AsyncApp(client=client, signing_secret=signing_secret or None,
                   request_verification_enabled=http)  # Socket Mode is authenticated by its app token
    register_all(app, slack_desk)
    return app


def http_application(app: AsyncApp, slack_desk: SlackDesk) -> web.Application:
    """An aiohttp app with Slack's endpoint. Bolt checks each request's signature and its 5-minute window; a
    correctly signed request seen before within that window is a replay (someone captured it) and is refused."""
    secret = slack_desk.settings.env.SLACK_SIGNING_SECRET
    verifier = SignatureVerifier(secret.get_secret_value() if secret is not None else "")

    async def events(request: web.Request) -> web.Response:
        body = await request.read()  # aiohttp keeps it: Bolt reads it again below
        signature = request.headers.get("X-Slack-Signature", "")
        timestamp = request.headers.get("X-Slack-Request-Timestamp", "")
        # Only a valid signature is remembered: unsigned junk must neither fill the table nor block a real request.
        if signature and verifier.is_valid(body, timestamp, signature):
            if not await slack_desk.desk.first_sight(signature):
                log.warning("refused a replayed Slack request (signed at %s)", timestamp)
                return web.Response(status=401, text="replayed request")
        return await to_aiohttp_response(await app.async_dispatch(await to_bolt_request(request)))

    application = web.Application()
    application.router.add_post(EVENTS_PATH, events)
    return application


async def every(seconds: float, job: Callable[[], Awaitable[object]], name: str) -> None:
    """Run `job` every `seconds` until cancelled; a failure is logged and the loop goes on."""
    while True:
        await asyncio.sleep(seconds)
        try:
            await job()
        except CycleAlreadyRunning:
            log.info("%s: a cycle is already running; skipped", name)
        except Exception:
            log.exception("%s failed", name)


async def scheduled_cycle(slack_desk: SlackDesk) -> None:
    """One cycle started by the schedule, into `slack.channel` (batched analysis if configured)."""
    await slack_desk.run_cycle(CycleRequest(trigger="schedule", started_by=""))


async def settle_and_reconcile(slack_desk: SlackDesk, *, on_start: bool = False) -> None:
    """Settlement first: a market that just paid out zeroes the venue's position before we compare ours."""
    try:
        await slack_desk.settle()
    except Exception:
        log.exception("settlement failed")
    await slack_desk.reconcile(on_start=on_start)


async def reconcile_now_and_every(slack_desk: SlackDesk, seconds: float) -> None:
    """Reconcile on start, then on a timer: an order left unknown by a crash is settled first thing."""
    try:
        await settle_and_reconcile(slack_desk, on_start=True)
    except Exception:
        log.exception("reconciliation on start failed")
    await every(seconds, lambda: settle_and_reconcile(slack_desk), "reconciliation")


def background_jobs(slack_desk: SlackDesk, settings: Settings) -> list[asyncio.Task[None]]:
    jobs = [asyncio.create_task(every(SWEEP_SECONDS, slack_desk.sweep, "sweeper")),
            asyncio.create_task(reconcile_now_and_every(slack_desk, settings.schedule.reconcile_seconds))]
    minutes = settings.schedule.interval_minutes
    if minutes > 0:
        jobs.append(asyncio.create_task(every(minutes * 60, lambda: scheduled_cycle(slack_desk), "scheduled cycle")))
    return jobs
