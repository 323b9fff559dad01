"""`oddsdesk cycle` as a user runs it: a real process against fake venues and a fake Claude on loopback."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from .processes import clean_environ
from .servers.anthropic import FakeAnthropic
from .servers.kalshi import FakeKalshi
from .test_kalshi import KEY_ID, add_fed, pem, rsa_key

ROOT = Path(__file__).resolve().parents[1]
CLAUDE_KEY = "sk-ant-cycle-command-key-0123456789"


async def oddsdesk(tmp_path: Path, env: dict[str, str], *args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "--config", str(ROOT / "config.json"), *args, cwd=tmp_path, env=env,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), timeout=120)
    return process.returncode or 0, out.decode(), err.decode()


async def test_yes_is_refused_live_and_nothing_runs(tmp_path):
    key_file = tmp_path / "kalshi.pem"
    key_file.write_text(pem(rsa_key(0)))
    kalshi = FakeKalshi(rsa_key(0).public_key(), KEY_ID)
    add_fed(kalshi)
    async with kalshi.serve() as venue, FakeAnthropic(api_key=CLAUDE_KEY) as claude:
        env = {**clean_environ(), "KALSHI_API_URL": kalshi.base_url, "KALSHI_API_KEY_ID": KEY_ID,
               "KALSHI_PRIVATE_KEY_PATH": str(key_file), "ANTHROPIC_API_KEY": CLAUDE_KEY,
               "ANTHROPIC_BASE_URL": claude.url, "ODDSDESK_TRADING__DRY_RUN": "false",
               "ODDSDESK_SCAN__VENUES": '["kalshi"]', "ODDSDESK_STORAGE__PATH": str(tmp_path / "live.db")}
        code, out, err = await oddsdesk(tmp_path, env, "cycle", "--yes")
        assert code == 1 and "refused: --yes approves every signal without anyone reading it" in err
        assert "LIVE" in err and "Nothing was run" in err
        assert venue.requests == [] and claude.requests == [] and not (tmp_path / "live.db").exists()
        assert "SIGNAL" not in out and "Traceback" not in err
        # The same desk without --yes runs its cycle (no terminal here: it decides nothing), so the refusal above
        # was --yes and not a desk that could not have run.
        code, out, err = await oddsdesk(tmp_path, env, "cycle", "--no-input")
        assert code == 0, err
        assert "LIVE (real money)" in out and venue.requests and (tmp_path / "live.db").exists()


async def test_yes_still_approves_everything_in_dry_run(tmp_path):
    env = {**clean_environ(), "ODDSDESK_STORAGE__PATH": str(tmp_path / "paper.db")}
    code, out, err = await oddsdesk(tmp_path, env, "cycle", "--snapshot", "sample", "--yes")
    assert code == 0, err
    assert "DRY-RUN" in out and "DRY-RUN · Paper fill: " in out and "(left pending" not in out
