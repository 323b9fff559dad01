"""The suite's own guards (tests/conftest.py) fail what they claim to fail.

Each case runs a small test file in a separate pytest process with this suite's conftest loaded as a
plugin, and reads the verdict: a guard that never fires would let a leak or a stray lookup through.
"""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parent.parent
# A secret the suite configures (tests/test_no_secrets_in_logs.py): the guards know it by that module.
IMPORT_SECRET = "from tests.test_no_secrets_in_logs import SLACK_TOKENS\nTOKEN = SLACK_TOKENS['SLACK_BOT_TOKEN']\n"


@pytest.fixture
def verdict(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch):
    """Run a test file with the suite's conftest as a plugin, in a child pytest: (passed, errors, output)."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))

    def run(body: str) -> tuple[int, int, str]:
        pytester.makepyfile(test_case=IMPORT_SECRET + body)
        result = pytester.runpytest_subprocess("-p", "tests.conftest", "-p", "no:cacheprovider", "-q",
                                               "-o", "asyncio_mode=auto",
                                               "-o", "asyncio_default_fixture_loop_scope=function")
        outcomes = result.parseoutcomes()
        return outcomes.get("passed", 0), outcomes.get("errors", 0), result.stdout.str()

    return run


CASES = {
    "a secret in a log record": (
        """
        import logging
        def test_it():
            logging.getLogger('x').debug('auth %s', TOKEN)
        """, (1, 1), "a secret reached a log record", ""),
    "a secret sent to Slack": (
        """
        from tests.servers.slack import FakeSlack
        def test_it():
            slack = FakeSlack()
            slack.calls.append(('chat.postMessage', {'text': 'x ' + TOKEN}))
        """, (1, 1), "a secret reached Slack", ""),
    "a secret sent to Discord": (
        """
        from tests.servers.discord import Call, FakeDiscord
        def test_it():
            discord = FakeDiscord()
            discord.calls.append(Call('POST', '/channels/{channel_id}/messages', {}, {}, {'content': 'x ' + TOKEN}))
        """, (1, 1), "a secret reached Discord", ""),
    "a secret written under tmp_path, but not a key file": (
        """
        def test_leak(tmp_path):
            (tmp_path / 'desk.db').write_text('audit: ' + TOKEN)
        def test_key_file(tmp_path):
            (tmp_path / 'kalshi.pem').write_text(TOKEN)
        """, (2, 1), "a secret was written to the desk's files: [('desk.db'", "kalshi.pem"),
    # Credentials a fake CLOB handed out: the desk derives them at run time, so no test module names them.
    "a derived API credential in a log record, but not one kept in memory": (
        """
        import logging
        from tests.servers.polymarket import PolymarketFake
        def test_passphrase_logged():
            api = PolymarketFake().register_api_key('0x' + '11' * 20)
            logging.getLogger('x').info('L2 headers: POLY_PASSPHRASE=%s', api.passphrase)
        def test_key_kept_in_memory():
            PolymarketFake().register_api_key('0x' + '33' * 20)
        """, (2, 1), "a secret reached a log record: [('x'", ""),
    "a derived API secret written under tmp_path": (
        """
        from tests.servers.polymarket import PolymarketFake
        def test_secret_written(tmp_path):
            api = PolymarketFake().register_api_key('0x' + '22' * 20)
            (tmp_path / 'desk.db').write_text('audit: refused: ' + api.secret)
        """, (1, 1), "a secret was written to the desk's files: [('desk.db'", ""),
    "a lookup off loopback, but not one on it": (
        """
        import socket
        def test_it():
            try:
                socket.getaddrinfo('api.slack.com', 443)
            except OSError:
                pass  # offline: the lookup itself is the fault
        def test_loopback():
            socket.getaddrinfo('127.0.0.1', 80)
        """, (2, 1), "looked up hosts off loopback: ['api.slack.com']", ""),
}


@pytest.mark.parametrize("case", list(CASES))
def test_each_guard_fails_what_it_guards_against(verdict, case):
    """Every test passes its body; the guard turns exactly one of them into an error at teardown."""
    body, outcomes, said, not_said = CASES[case]
    passed, errors, out = verdict(textwrap.dedent(body))
    assert (passed, errors) == outcomes and said in out
    assert not not_said or not_said not in out
