"""The suite's own guards (tests/conftest.py) fail what they claim to fail.

Each case runs a small test file in a separate pytest process with this suite's conftest loaded as a
plugin, and reads the verdict: a guard that never fires would let a leak or a stray lookup through.
"""

from __future__ import annotations

import os
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


def test_a_secret_in_a_log_record_fails_the_test(verdict):
    passed, errors, out = verdict("import logging\n"
                                            "def test_it():\n    logging.getLogger('x').debug('auth %s', TOKEN)\n")
    assert (passed, errors) == (1, 1) and "a configured secret reached a log record" in out


def test_a_secret_sent_to_slack_fails_the_test(verdict):
    passed, errors, out = verdict("from tests.servers.slack import FakeSlack\n"
                                            "def test_it():\n"
                                            "    slack = FakeSlack()\n"
                                            "    slack.calls.append(('chat.postMessage', {'text': 'x ' + TOKEN}))\n")
    assert (passed, errors) == (1, 1) and "a configured secret reached Slack" in out


def test_a_secret_written_under_tmp_path_fails_the_test_but_a_key_file_does_not(verdict):
    passed, errors, out = verdict("def test_leak(tmp_path):\n"
                                            "    (tmp_path / 'desk.db').write_text('audit: ' + TOKEN)\n"
                                            "def test_key_file(tmp_path):\n"
                                            "    (tmp_path / 'kalshi.pem').write_text(TOKEN)\n")
    assert (passed, errors) == (2, 1) and "a configured secret was written to the desk's files" in out
    assert "desk.db" in out and "kalshi.pem" not in out


def test_a_lookup_off_loopback_fails_the_test(verdict):
    passed, errors, out = verdict("import socket\n"
                                            "def test_it():\n"
                                            "    try:\n"
                                            "        socket.getaddrinfo('api.slack.com', 443)\n"
                                            "    except OSError:\n"
                                            "        pass  # offline: the lookup itself is the fault\n"
                                            "def test_loopback():\n"
                                            "    socket.getaddrinfo('127.0.0.1', 80)\n")
    assert (passed, errors) == (2, 1) and "looked up hosts off loopback: ['api.slack.com']" in out

