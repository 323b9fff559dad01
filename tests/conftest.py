from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from pipeline.config import Settings, load_settings
from pipeline.store import Store

# A child `python -m bot` runs this checkout's code, not the checkout the venv's editable install points at (a git
# worktree shares the main checkout's venv): this directory goes first on every child's import path.
CHECKOUT = Path(__file__).resolve().parents[1]
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(CHECKOUT), os.environ.get("PYTHONPATH", "")) if p)


def make_settings(tmp_path: Any = None, **sections: dict[str, Any]) -> Settings:
    """Settings from defaults plus per-section overrides, with no config file and no environment."""
    import json

    path = (tmp_path / "config.json") if tmp_path is not None else None
    if path is None:
        import tempfile

        path = Path(tempfile.mkdtemp()) / "config.json"
    path.write_text(json.dumps(sections, default=str))
    return load_settings(path, environ={})


@pytest.fixture
async def store(tmp_path) -> AsyncIterator[Store]:
    s = await Store.open(tmp_path / "desk.db")
    try:
        yield s
    finally:
        await s.close()


# -- no secret in any log record, in any test ---------------------------------------------------

SECRET_NAME = re.compile(r"(SECRET|TOKEN|KEY|PASSPHRASE)")
# Slack's deprecated payload `token`: the desk never configures one, and Bolt logs the bodies of forged requests.
NOT_SECRETS = {"VERIFICATION_TOKEN"}


class _LogCapture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[tuple[str, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
        except Exception:  # a broken format string is the logging library's problem, not a leak
            text = str(record.msg)
        if record.exc_info:
            text += logging.Formatter().formatException(record.exc_info)
        self.records.append((record.name, text))


def suite_secrets() -> set[str]:
    """Every secret the suite configures: module constants named like secrets, and the test RSA keys; and every
    secret derived at run time: the Polymarket L2 API credentials (key, secret, passphrase) each fake CLOB of the
    test handed out, which the desk derives from the wallet key and no test module names.

    Read from the loaded test modules after the test ran, so a new test module's secrets count too.
    """
    found: set[str] = set()
    for name, module in list(sys.modules.items()):
        if not name.startswith("tests."):
            continue
        for attribute, value in vars(module).items():
            if not SECRET_NAME.search(attribute) or not attribute.isupper() or attribute in NOT_SECRETS:
                continue
            values = value.values() if isinstance(value, dict) else [value]
            found.update(v for v in values if isinstance(v, str) and len(v) >= 12)
    kalshi = sys.modules.get("tests.test_kalshi")
    if kalshi is not None:
        for index in range(3):  # the key bodies, line by line: a PEM is never logged whole or in part
            found.update(kalshi.pem(kalshi.rsa_key(index)).splitlines()[1:-1])
    from .servers.polymarket import PolymarketFake

    for fake in PolymarketFake.instances:
        found.update(s for api in fake.issued for s in (api.key, api.secret, api.passphrase) if len(s) >= 12)
    return found


def _desk_files(request: pytest.FixtureRequest) -> list[tuple[str, str]]:
    """What the test's desks wrote under its tmp_path (databases with their audit log, journals), as text;
    key files a test wrote there to be read are not the desk's output."""
    tmp = request.node.funcargs.get("tmp_path")
    if tmp is None:
        return []
    found = []
    for path in tmp.rglob("*"):
        if path.is_file() and path.suffix not in (".pem", ".key"):
            found.append((str(path.relative_to(tmp)), path.read_bytes().decode("utf-8", "replace")))
    return found


@pytest.fixture(autouse=True)
def no_secret_in_logs(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every scenario of the suite runs with all loggers at DEBUG captured; a secret (configured, or derived at
    run time: see suite_secrets) in a log record fails it, and so does one in anything sent to a fake Slack or
    Discord (message bodies and gateway payloads; the bot's own token where it belongs is not counted) or
    written by a desk under tmp_path (its SQLite files, audit log included, and journals).

    A test that puts a secret where libraries log it on purpose (never what the desk does) says so with
    `@pytest.mark.secret_logged_on_purpose("why")`.
    """
    from .servers.discord import FakeDiscord
    from .servers.polymarket import PolymarketFake
    from .servers.slack import FakeSlack

    FakeSlack.instances.clear()
    FakeDiscord.instances.clear()
    PolymarketFake.instances.clear()
    capture = _LogCapture()
    root = logging.getLogger()
    previous = root.level
    root.addHandler(capture)
    root.setLevel(logging.DEBUG)
    try:
        yield
    finally:
        root.removeHandler(capture)
        root.setLevel(previous)
    if request.node.get_closest_marker("secret_logged_on_purpose"):
        return
    secrets = suite_secrets()
    PolymarketFake.instances.clear()
    leaks = [(logger, secret[:10] + "…") for logger, text in capture.records for secret in secrets if secret in text]
    assert not leaks, f"a secret reached a log record: {leaks[:5]}"
    sent = [w.everything_received() for w in FakeSlack.instances]
    FakeSlack.instances.clear()
    leaks = [secret[:10] + "…" for text in sent for secret in secrets if secret in text]
    assert not leaks, f"a secret reached Slack: {leaks[:5]}"
    sent = [d.everything_received() for d in FakeDiscord.instances]
    FakeDiscord.instances.clear()
    leaks = [secret[:10] + "…" for text in sent for secret in secrets if secret in text]
    assert not leaks, f"a secret reached Discord: {leaks[:5]}"
    leaks = [(name, secret[:10] + "…") for name, text in _desk_files(request) for secret in secrets if secret in text]
    assert not leaks, f"a secret was written to the desk's files: {leaks[:5]}"


# -- the suite never leaves loopback --------------------------------------------------------------

LOOPBACK_HOSTS = {"127.0.0.1", "::1", "localhost", b"127.0.0.1", b"::1", b"localhost", None, "", b""}


@pytest.fixture(autouse=True)
def stays_on_loopback(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A name lookup for any host but loopback fails the test: a client left pointing at a real service
    (its default base URL) would otherwise fail quietly here, offline, and be missed."""
    import socket

    looked_up: list[object] = []
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host not in LOOPBACK_HOSTS:
            looked_up.append(host)
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    yield
    assert not looked_up, f"the test looked up hosts off loopback: {sorted(set(map(str, looked_up)))}"
