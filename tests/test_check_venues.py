"""`oddsdesk check --venues`: a read-only probe of both venues against the pinned contracts, on the fakes,
clean and with drift injected (a removed field, an enum value the contract does not know, a retired route)."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pipeline.drift import check
from pipeline.models import Venue
from pipeline.probe import probe
from pipeline.venues.polymarket import PolymarketClient, PolymarketCredentials

from .processes import clean_environ
from .servers.base import LoopbackServer
from .servers.kalshi import FakeKalshi
from .servers.polymarket import PolymarketFake
from .test_kalshi import FAST, KEY_ID, add_fed, client_for, pem, rsa_key
from .test_polymarket import GENEROUS, KEY, WALLET, fed_market

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class World:
    kalshi: FakeKalshi
    kalshi_server: LoopbackServer
    poly: PolymarketFake
    gamma: LoopbackServer
    clob: LoopbackServer
    data: LoopbackServer

    def clients(self, *, keys: bool = True) -> dict[Venue, object]:
        kalshi = client_for(self.kalshi, unsigned=not keys)
        poly = PolymarketClient(gamma_url=self.gamma.url, clob_url=self.clob.url, data_url=self.data.url,
                                credentials=PolymarketCredentials(private_key=KEY if keys else None),
                                config=GENEROUS, retry=FAST)
        return {Venue.KALSHI: kalshi, Venue.POLYMARKET: poly}


@pytest.fixture
async def world() -> AsyncIterator[World]:
    kalshi = FakeKalshi(rsa_key(0).public_key(), KEY_ID)
    add_fed(kalshi)
    kalshi.generate(5)
    poly = PolymarketFake()
    fed_market(poly, fee_rate="0.04")
    poly.register_api_key(WALLET)
    async with kalshi.serve() as kalshi_server, LoopbackServer(poly.gamma_app()) as gamma, \
            LoopbackServer(poly.clob_app()) as clob, LoopbackServer(poly.data_app()) as data:
        yield World(kalshi, kalshi_server, poly, gamma, clob, data)


async def probed(world: World, *, keys: bool = True):
    clients = world.clients(keys=keys)
    try:
        return await probe(clients)  # type: ignore[arg-type]
    finally:
        for client in clients.values():
            await client.aclose()  # type: ignore[attr-defined]


def lines(report, severity: str) -> list[str]:
    return [f.line() for f in report.findings if f.severity == severity]


async def test_venues_that_answer_as_pinned_give_no_drift_and_nothing_is_written(world):
    report = await probed(world)
    assert lines(report, "drift") == [] and lines(report, "fail") == [], report.findings
    assert report.exit_code() == 0
    ok = "\n".join(lines(report, "ok"))
    for call in ("GET /exchange/status", "GET /markets", "GET /markets/{ticker}/orderbook", "GET /markets/orderbooks",
                 "GET /series/{series_ticker}", "GET /series/fee_changes", "GET /events/fee_changes",
                 "GET /portfolio/balance", "GET /portfolio/orders", "GET clob /", "GET gamma /markets/keyset",
                 "GET clob /book", "GET clob /clob-markets/{condition_id}", "GET clob /balance-allowance",
                 "GET clob /data/orders"):
        assert call in ok, call
    # read-only: no order, no cancel, no API key created
    writes = [r for server in (world.kalshi_server, world.clob) for r in server.requests if r.method != "GET"]
    assert writes == [] and world.kalshi.orders == {} and world.poly.orders == {}


async def test_without_keys_the_account_is_not_probed_and_that_is_said(world):
    report = await probed(world, keys=False)
    assert report.exit_code() == 0
    notes = "\n".join(lines(report, "note"))
    assert "no API keys: balance and orders not probed" in notes and "no POLYMARKET_PRIVATE_KEY" in notes


async def test_a_removed_field_a_new_enum_value_and_a_retired_route_are_each_one_line(world):
    world.kalshi.drift.drop_market_fields.add("yes_bid_dollars")
    for ticker in list(world.kalshi.markets)[:3]:
        world.kalshi.drift.market_status[ticker] = "suspended"
    world.kalshi.retire("GET", "/portfolio/orders")
    [market] = world.poly.markets.values()
    market.raw["version"] = "v3"
    report = await probed(world)
    drift = lines(report, "drift")
    assert report.exit_code() == 1
    expected = [
        "kalshi     DRIFT  GET /markets: markets[*].yes_bid_dollars: missing (the pinned contract requires it) "
        "(6 times)",
        "kalshi     DRIFT  GET /markets: markets[*].status: 'suspended' is a value the pinned contract does not know",
        "kalshi     DRIFT  GET /portfolio/orders: retired (410)",
        "polymarket DRIFT  GET gamma /markets/keyset: markets[*].version: 'v3' is a value the pinned contract "
        "does not know",
    ]
    for start in expected:
        assert sum(line.startswith(start) for line in drift) == 1, (start, drift)
    assert len(drift) == len(expected), drift  # one line per kind of problem, not per market
    # the only Polymarket market is one the desk cannot read, so its book and fees went unprobed: said, not hidden
    assert any(line.startswith("polymarket note   GET clob /book: no market the desk can read")
               for line in lines(report, "note")), lines(report, "note")


async def test_a_retired_clob_route_is_a_drift_line(world):
    [market] = world.poly.markets.values()
    world.poly.retired_routes.add(("GET", "/clob-markets/" + market.condition_id))
    report = await probed(world)
    assert report.exit_code() == 1
    [drift] = [line for line in lines(report, "drift") if line.startswith("polymarket")]
    assert drift.startswith("polymarket DRIFT  GET clob /clob-markets/{condition_id}: retired (410)"), drift


async def test_the_checker_reports_a_renamed_field_as_missing_plus_a_note_for_the_new_name():
    payload = {"series": {"ticker": "KXFED", "frequency": "custom", "title": "t", "category": "c", "categories": [],
                          "tags": [], "settlement_sources": [], "contract_url": "", "contract_terms_url": "",
                          "fee_kind": "quadratic", "fee_multiplier": 1, "additional_prohibitions": []}}
    findings = check("kalshi", "GET /series/{series_ticker}", payload, "GetSeriesResponse")
    assert [(f.severity, f.text) for f in findings] == [
        ("drift", "series.fee_type: missing (the pinned contract requires it)"),
        ("note", "series.fee_kind: a field the pinned contract does not describe")]


async def test_the_command_prints_each_drift_on_a_line_and_exits_non_zero(world, tmp_path):
    key_file = tmp_path / "kalshi.pem"
    key_file.write_text(pem(rsa_key(0)))
    env = {**clean_environ(), "KALSHI_API_URL": world.kalshi.base_url, "KALSHI_API_KEY_ID": KEY_ID,
           "KALSHI_PRIVATE_KEY_PATH": str(key_file), "POLYMARKET_GAMMA_URL": world.gamma.url,
           "POLYMARKET_CLOB_URL": world.clob.url, "POLYMARKET_DATA_URL": world.data.url,
           "ODDSDESK_STORAGE__PATH": str(tmp_path / "unused.db")}

    async def run() -> tuple[int, str, str]:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "--config", str(ROOT / "config.json"), "check", "--venues", cwd=tmp_path,
            env=env, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(process.communicate(), timeout=60)
        return process.returncode or 0, out.decode(), err.decode()

    code, out, err = await run()
    assert code == 0, out + err
    assert "DRIFT" not in out and "no drift" in err
    world.kalshi.retire("GET", "/series/{series_ticker}")
    code, out, err = await run()
    assert code == 1 and "kalshi     DRIFT  GET /series/{series_ticker}: retired (410)" in out
    assert "1 drift(s)" in err and "Going live" in err
    assert not (tmp_path / "unused.db").exists()  # a probe opens no database


async def test_the_probe_never_creates_an_api_key_and_scrubs_what_a_venue_echoes(world):
    world.poly.api_keys.clear()  # this wallet has no API key: deriving fails, and the probe must not create one
    world.kalshi.retire("GET", "/portfolio/balance", code=f"echo-{KEY_ID}")
    report = await probed(world)
    assert not any(r.method == "POST" for r in world.clob.requests) and world.poly.api_keys == {}
    failed = "\n".join(lines(report, "fail"))
    assert "no Polymarket API key could be derived for this wallet" in failed and "none was created" in failed
    everything = "\n".join(f.line() for f in report.findings)
    assert KEY_ID not in everything and "echo-<key id>" in everything
