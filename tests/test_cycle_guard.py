"""The one-cycle-at-a-time guard holds until the front end has shown the cycle's signals (Desk.scan's `deliver`)."""

from __future__ import annotations

import asyncio

import pytest

from pipeline.cycle import CycleRequest, CycleResult
from pipeline.errors import CycleAlreadyRunning

from .test_desk import make_desk


async def test_a_second_cycle_is_refused_while_the_first_one_delivers_its_signals(tmp_path):
    desk, venue, store = await make_desk(tmp_path)
    shown = asyncio.Event()
    delivered: list[CycleResult] = []

    async def deliver(result: CycleResult) -> None:
        await shown.wait()  # the front end still posting the signals
        delivered.append(result)

    try:
        first = asyncio.create_task(desk.scan(CycleRequest(started_by="UALICE"), deliver=deliver))
        for _ in range(200):  # until the cycle itself is done and only the delivery is left
            await asyncio.sleep(0.01)
            if await store.signals():
                break
        assert await store.signals() and not first.done()
        assert desk.running_cycle is not None and desk.running_cycle[0] == "UALICE"
        with pytest.raises(CycleAlreadyRunning) as busy:
            await desk.scan(CycleRequest(started_by="UBOB"))
        assert "UALICE" in busy.value.reason
        shown.set()
        result = await first
        assert delivered == [result] and len(result.signals) == 1
        assert desk.running_cycle is None
        third = await desk.scan(CycleRequest(started_by="UBOB"))  # the guard is free again
        assert third.report.cycle_id != result.report.cycle_id
    finally:
        await store.close()


async def test_a_delivery_that_fails_still_frees_the_guard(tmp_path):
    desk, venue, store = await make_desk(tmp_path)

    async def deliver(result: CycleResult) -> None:
        raise RuntimeError("chat is down")

    try:
        with pytest.raises(RuntimeError, match="chat is down"):
            await desk.scan(deliver=deliver)
        assert desk.running_cycle is None
        assert (await desk.scan()).report.cycle_id  # a next cycle runs
    finally:
        await store.close()
