"""No configured secret reaches a log line, a chat message or a refusal — with every library at DEBUG.

Scenarios that handle secrets: a signed Kalshi cycle and live order, a rejected Kalshi key, a Claude
analysis (and a wrong Anthropic key), Slack posting and signed requests. Every log record of every
logger is captured at DEBUG; the raw records must be clean, not only the scrubbed output.
"""

from __future__ import annotations

import logging

import anthropic

from pipeline.claude import ClaudeAnalyzer
from pipeline.config import load_settings
from pipeline.cycle import CycleRequest
from pipeline.desk import Desk
from pipeline.models import Venue
from pipeline.reporter import SecretScrubber
from pipeline.store import Store
from pipeline.venues.kalshi import KalshiClient

from .servers.anthropic import FakeAnthropic
from .servers.kalshi import FakeKalshi
from .test_desk import ADMIN, Clock
from .test_kalshi import FAST, KEY_ID, add_fed, kalshi_config, pem, rsa_key

ANTHROPIC_KEY = "sk-ant-api03-secret-anthropic-key-0123456789"
SLACK_TOKENS = {"SLACK_BOT_TOKEN": "xoxb-1234-secret-bot-token", "SLACK_SIGNING_SECRET": "slack-signing-secret-9876",
                "SLACK_APP_TOKEN": "xapp-1-secret-app-token-5555"}
POLY = {"POLYMARKET_PRIVATE_KEY": "0x" + "ab" * 32, "POLYMARKET_API_SECRET": "cG9seS1hcGktc2VjcmV0LXZhbHVl",
        "POLYMARKET_API_PASSPHRASE": "poly-passphrase-secret", "POLYMARKET_API_KEY": "poly-api-key-secret-uuid"}


class Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if record.exc_info:
            text += logging.Formatter().formatException(record.exc_info)
        self.lines.append(text)


async def test_no_secret_reaches_any_log_record(tmp_path):
    capture = Capture()
    root = logging.getLogger()
    previous = root.level
    root.addHandler(capture)
    root.setLevel(logging.DEBUG)
    key_pem = pem(rsa_key(0))
    try:
        fake = FakeKalshi(rsa_key(0).public_key(), KEY_ID)
        add_fed(fake)
        async with fake.serve(), FakeAnthropic(api_key=ANTHROPIC_KEY) as claude:
            config = tmp_path / "c.json"
            config.write_text('{"trading": {"dry_run": false}, "approval": {"authorized_users": ["UADMIN1"]}, '
                              '"scan": {"venues": ["kalshi"]}, "storage": {"path": "%s"}}' % (tmp_path / "s.db"))
            environ = {"KALSHI_API_KEY_ID": KEY_ID, "KALSHI_PRIVATE_KEY": key_pem, "ANTHROPIC_API_KEY": ANTHROPIC_KEY,
                       "KALSHI_API_URL": fake.base_url, "ANTHROPIC_BASE_URL": claude.url, **SLACK_TOKENS, **POLY}
            settings = load_settings(config, environ=environ)
            claude.responder = lambda request: {"probability": 0.7, "confidence": 0.6, "reasoning": "fixed",
                                                "key_factors": ["fixed"]}
            secrets = settings.env.secret_values()
            assert KEY_ID in secrets and ANTHROPIC_KEY in secrets and len(secrets) >= 9
            store = await Store.open(settings.storage.path)
            kalshi = KalshiClient.from_settings(settings)
            analyzer = ClaudeAnalyzer.from_settings(settings, store)
            desk = Desk(settings, store, {Venue.KALSHI: kalshi}, analyzer, clock=Clock())
            [signal] = (await desk.scan(CycleRequest())).signals
            assert (await desk.approve(signal.id, ADMIN)).ok  # a signed, live order
            # A wrong Kalshi key and a wrong Anthropic key: the failure paths quote responses.
            stranger = KalshiClient(fake.base_url, KEY_ID, rsa_key(1), settings.fees, kalshi_config(), retry=FAST)
            try:
                await stranger.get_balance()
            except Exception as e:  # typed GiveUpError; its text is logged by callers
                logging.getLogger("test").warning("kalshi refused: %s", e)
            wrong = anthropic.AsyncAnthropic(base_url=claude.url, api_key=ANTHROPIC_KEY + "-wrong", max_retries=0)
            try:
                await wrong.messages.create(model="claude-sonnet-5", max_tokens=10,
                                            messages=[{"role": "user", "content": "hi"}])
            except anthropic.APIError as e:
                logging.getLogger("test").warning("anthropic refused: %s", e)
            await wrong.close()
            await stranger.aclose()
            await analyzer.aclose()
            await kalshi.aclose()
            await store.close()
    finally:
        root.removeHandler(capture)
        root.setLevel(previous)
    text = "\n".join(capture.lines)
    # The capture really sees the libraries' debug output, requests and all, or this test proves nothing.
    assert "HTTP Request: POST" in text and "/portfolio/orders" in text and "Request options" in text
    fragments = [s for s in secrets if s != key_pem] + [line for line in key_pem.splitlines()[1:-1]]
    leaked = [s[:12] + "…" for s in fragments if s and s in text]
    assert leaked == []
    # And the scrubber the CLI installs on its handler would redact one if it did slip through.
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "key=%s", (ANTHROPIC_KEY,), None)
    SecretScrubber(secrets).filter(record)
    assert ANTHROPIC_KEY not in record.getMessage() and "[redacted]" in record.getMessage()


def test_the_cli_log_scrubber_also_redacts_what_a_desk_derives_later():
    """The CLI's handler filter consults the desk it opened (bot/wiring.open_desk): credentials a venue client
    derives after start-up are redacted from log lines as configured ones are."""
    derived: list[str] = []
    scrubber = SecretScrubber([ANTHROPIC_KEY])
    scrubber.consult(lambda: derived)
    derived.append(POLY["POLYMARKET_API_PASSPHRASE"])  # derived after the filter was installed
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "headers %s %s", (ANTHROPIC_KEY, derived[0]), None)
    scrubber.filter(record)
    assert record.getMessage() == "headers [redacted] [redacted]"
