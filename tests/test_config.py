"""Config: file + ODDSDESK_<SECTION>__<KEY> overrides, frozen, unknown keys refused, one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from pydantic import ValidationError

from pipeline.config import FeesConfig, Settings, load_settings
from pipeline.errors import ConfigError

from .conftest import make_settings

ROOT = Path(__file__).resolve().parents[1]


def write(tmp_path, data) -> Path:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(data) if not isinstance(data, str) else data)
    return path


def test_shipped_config_is_valid_and_dry_run():
    settings = load_settings(ROOT / "config.json", environ={})
    assert settings.trading.dry_run is True
    assert settings.approval.authorized_users == ()


def test_env_overrides_every_section_with_json_values(tmp_path):
    path = write(tmp_path, {"trading": {"dry_run": True}})
    settings = load_settings(path, environ={
        "ODDSDESK_TRADING__DRY_RUN": "false",
        "ODDSDESK_APPROVAL__AUTHORIZED_USERS": '["U123ABC"]',
        "ODDSDESK_SLACK__CHANNEL": "#desk-test",
        "ODDSDESK_SCAN__VENUES": '["kalshi"]',
        "ODDSDESK_ANALYSIS__MODEL": "claude-haiku-4-5",
    })
    assert settings.trading.dry_run is False
    assert settings.approval.authorized_users == ("U123ABC",)
    assert settings.slack.channel == "#desk-test" and settings.scan.venues == ("kalshi",)
    assert settings.analysis.model == "claude-haiku-4-5"


def test_settings_are_frozen():
    settings = Settings()
    with pytest.raises(ValidationError):
        settings.trading.dry_run = False  # type: ignore[misc]


@pytest.mark.parametrize("data, env, expected", [
    ({"trading": {"dryrun": True}}, {}, "config error: trading.dryrun: unknown key; allowed: dry_run,"),
    ({"tradng": {}}, {}, "config error: tradng: unknown key; allowed: trading, fees"),
    ({"trading": {"min_edge": 1.5}}, {}, "config error: trading.min_edge: Input should be less than 1 (got 1.5)"),
    ({}, {"ODDSDESK_TRADING__KELLY_MULTIPLIER": "0"}, "[from ODDSDESK_TRADING__KELLY_MULTIPLIER]"),
    ({}, {"ODDSDESK_TRADING__DRYRUN": "1"}, "config error: ODDSDESK_TRADING__DRYRUN: trading has no key 'dryrun'"),
    ({}, {"ODDSDESK_NOPE__X": "1"}, "config error: ODDSDESK_NOPE__X: not a setting"),
    ({"scan": {"venues": ["kalshi", "ftx"]}}, {}, "scan.venues.1: allowed: 'kalshi' or 'polymarket' (got 'ftx')"),
    ({"scan": {"min_price": 0.9, "max_price": 0.5}}, {}, "scan.min_price must be below scan.max_price"),
    ({"approval": {"authorized_users": ["alice"]}}, {}, "'alice' is not a Slack user id"),
    ({"trading": {"time_in_force": "forever"}}, {}, "trading.time_in_force: allowed:"),
    ('{"trading": ', {}, "not valid JSON"),
    ([1, 2], {}, "the top level must be an object"),
])
def test_bad_config_is_one_clear_line(tmp_path, data, env, expected):
    path = write(tmp_path, data)
    with pytest.raises(ConfigError) as info:
        load_settings(path, environ=env)
    message = str(info.value)
    assert expected in message
    assert "\n" not in message


def test_missing_explicit_config_file_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="file not found"):
        load_settings(tmp_path / "nope.json", environ={})


def test_bad_secret_setting_names_the_variable(tmp_path):
    with pytest.raises(ConfigError, match="POLYMARKET_SIGNATURE_TYPE"):
        load_settings(write(tmp_path, {}), environ={"POLYMARKET_SIGNATURE_TYPE": "7"})


def _oddsdesk(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ODDSDESK_")}
    return subprocess.run([sys.executable, "-m", "bot", *args], capture_output=True, text=True, timeout=60,
                          env={**clean, **env}, cwd=cwd)


def test_check_exits_2_with_one_line_and_starts_nothing(tmp_path):
    path = write(tmp_path, {"trading": {"max_position_fraction": 2}})
    proc = _oddsdesk("--config", str(path), "check", env={}, cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0
    assert "trading.max_position_fraction" in proc.stderr and proc.stdout == ""
    assert not list(tmp_path.glob("*.db"))


def test_check_prints_effective_config_with_secrets_redacted(tmp_path):
    secrets = {"SLACK_BOT_TOKEN": "xoxb-very-secret-token", "ANTHROPIC_API_KEY": "sk-ant-secret-123",
               "KALSHI_PRIVATE_KEY": "-----BEGIN PRIVATE KEY-----abc", "POLYMARKET_API_SECRET": "c2VjcmV0c2VjcmV0"}
    proc = _oddsdesk("--config", str(write(tmp_path, {})), "check",
                     env={**secrets, "ODDSDESK_TRADING__MIN_EDGE": "0.1"}, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    shown = json.loads(proc.stdout)
    assert shown["trading"]["min_edge"] == "0.1"
    assert shown["env"]["SLACK_BOT_TOKEN"] == "set (redacted)" and shown["env"]["SLACK_APP_TOKEN"] == "not set"
    for value in secrets.values():
        assert value not in proc.stdout + proc.stderr


@pytest.mark.parametrize("zero", [0, 0.0, "0", "0.000", "0E-3"])
def test_a_zero_polymarket_rate_in_any_spelling_is_refused_as_the_old_default(zero):
    with pytest.raises(ValueError, match="would now price every Polymarket market as fee-free"):
        FeesConfig(polymarket_taker_rate=zero)
    assert FeesConfig(polymarket_taker_rate="0.001").polymarket_taker_rate == Decimal("0.001")


def test_check_says_which_fee_overrides_replace_the_venues_fees_and_refuses_an_old_config(tmp_path):
    proc = _oddsdesk("--config", str(write(tmp_path, {"fees": {"kalshi_series_rates": {"INX": 0.035},
                                                                "polymarket_taker_rate": 0.02}})), "check",
                     env={}, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "fee overrides replace the venues' own fees: Kalshi INX at 0.035, every Polymarket market at 0.02" \
        in proc.stderr
    old = write(tmp_path, {"fees": {"kalshi_taker_rate": 0.07, "polymarket_taker_rate": 0}})
    proc = _oddsdesk("--config", str(old), "check", env={}, cwd=tmp_path)
    assert proc.returncode == 2 and "fees.kalshi_taker_rate was removed" in proc.stderr


def test_access_roles_take_user_and_group_ids_and_refuse_names(tmp_path):
    from pipeline.access import AccessPolicy, Action, Role

    settings = make_settings(tmp_path, approval={"authorized_users": ["UAPPROVE1"], "authorized_usergroups": ["SAPPROVE"]},
                             access={"operators": ["UOPER0001", "SOPS00001"], "viewers": ["UVIEW0001", "SOPS00001"]})
    policy = AccessPolicy(settings.approval, settings.access)
    assert policy.role("UAPPROVE1") is Role.APPROVER and policy.role("UOPER0001") is Role.OPERATOR
    assert policy.role("UVIEW0001") is Role.VIEWER and policy.role("USTRANGER") is Role.NOBODY
    # A group listed for two roles grants the higher; approvers' groups outrank everything.
    assert policy.role("UX", frozenset({"SOPS00001"})) is Role.OPERATOR
    assert policy.role("UVIEW0001", frozenset({"SAPPROVE"})) is Role.APPROVER
    # No group is asked about when the id already grants the role; only groups that could grant it otherwise.
    assert policy.groups_to_check("UOPER0001", Action.HALT) == ()
    assert policy.groups_to_check("UVIEW0001", Action.HALT) == ("SAPPROVE", "SOPS00001")
    assert policy.groups_to_check("UVIEW0001", Action.APPROVE) == ("SAPPROVE",)
    for entry in ("alice", "#ops", "u123"):
        with pytest.raises(ConfigError, match="access.operators"):
            make_settings(tmp_path, access={"operators": [entry]})
