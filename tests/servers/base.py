"""A loopback HTTP server for fakes: records every request and injects faults on demand.

Faults are queued by the test (`server.faults.add(...)`) and consumed in order by matching
requests. "drop_after" runs the real handler (so the fake's state changes, as on the real
venue) and then closes the connection without answering: the client cannot know the outcome.
"hold_after" also runs the real handler, calls the fault's `notify` (if given) with the recorded
request, then holds the answer until the client goes away (say, its process was killed) or
`hang_seconds` pass, when the answer is sent late.
"malformed_after" runs the real handler too, then answers with its status and the first half of
its body: the venue acted, and its answer cannot be read.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import web

FaultKind = Literal["429", "500", "502", "503", "529", "timeout", "malformed", "drop_after", "hold_after",
                    "malformed_after"]


@dataclass
class Fault:
    kind: FaultKind
    path: str = ""  # prefix of the request path; "" matches any
    method: str = ""  # "" matches any
    times: int = 1
    retry_after: float | None = None  # sent as Retry-After on 429 when set
    notify: Callable[[Recorded], Any] | None = None  # "hold_after": called once the real handler has acted


@dataclass
class FaultPlan:
    queue: list[Fault] = field(default_factory=list)
    fired: list[tuple[str, str, str]] = field(default_factory=list)  # (kind, method, path)

    def add(self, kind: FaultKind, path: str = "", method: str = "", times: int = 1,
            retry_after: float | None = None, notify: Callable[[Recorded], Any] | None = None) -> None:
        self.queue.append(Fault(kind, path, method.upper(), times, retry_after, notify))

    def take(self, method: str, path: str) -> Fault | None:
        for fault in self.queue:
            if (not fault.method or fault.method == method) and path.startswith(fault.path):
                fault.times -= 1
                if fault.times <= 0:
                    self.queue.remove(fault)
                self.fired.append((fault.kind, method, path))
                return fault
        return None


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


class LoopbackServer:
    """`async with LoopbackServer(app) as server:` then use `server.url`."""

    def __init__(self, app: web.Application, *, error_body: Callable[[int], Any] | None = None,
                 hang_seconds: float = 30.0, latency: float = 0.0) -> None:
        self.faults = FaultPlan()
        self.requests: list[Recorded] = []
        self.latency = latency  # added to every answer, to model a distant service
        self._error_body = error_body or (lambda status: {"error": f"HTTP {status}"})
        self._hang = hang_seconds
        app.middlewares.append(self._middleware)
        self.app = app
        self._runner: web.AppRunner | None = None
        self.url = ""

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Callable[..., Any]) -> web.StreamResponse:
        body = await request.read()
        self.requests.append(Recorded(request.method, request.path, dict(request.query), dict(request.headers), body))
        if self.latency:
            await asyncio.sleep(self.latency)
        fault = self.faults.take(request.method, request.path)
        if fault is None:
            return await handler(request)
        if fault.kind == "timeout":
            await asyncio.sleep(self._hang)
            return await handler(request)
        if fault.kind == "malformed":
            return web.Response(status=200, text='{"markets": [ {"ticker": ', content_type="application/json")
        if fault.kind == "drop_after":
            await handler(request)  # the venue acts...
            assert request.transport is not None
            request.transport.abort()  # ...but the answer never leaves
            return web.Response(status=200)
        if fault.kind == "hold_after":
            response = await handler(request)  # the venue acts...
            if fault.notify is not None:
                fault.notify(Recorded(request.method, request.path, dict(request.query), dict(request.headers), body))
            deadline = asyncio.get_running_loop().time() + self._hang
            while request.transport is not None and not request.transport.is_closing():
                if asyncio.get_running_loop().time() >= deadline:
                    return response  # ...and answers late
                await asyncio.sleep(0.01)
            return web.Response(status=200)  # ...or never: the client went away while it waited
        if fault.kind == "malformed_after":
            answered = await handler(request)  # the venue acts...
            whole = bytes(getattr(answered, "body", None) or b"")
            return web.Response(status=answered.status, body=whole[:len(whole) // 2],  # ...its answer is cut off
                                content_type="application/json")
        status = int(fault.kind)
        headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
        return web.json_response(self._error_body(status), status=status, headers=headers)

    def count(self, method: str, path_prefix: str) -> int:
        return sum(1 for r in self.requests if r.method == method and r.path.startswith(path_prefix))

    async def __aenter__(self) -> "LoopbackServer":
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


class ServedFake:
    """Lifecycle shared by the fakes built on one LoopbackServer (`self.server`)."""

    server: LoopbackServer

    async def __aenter__(self):  # noqa: ANN204 - returns the subclass
        await self.server.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.server.__aexit__(*exc)

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def faults(self) -> FaultPlan:
        return self.server.faults

    @property
    def requests(self) -> list[Recorded]:
        return self.server.requests


async def wait_until(predicate: Callable[[], Any], changed: asyncio.Event, timeout: float,
                     describe: Callable[[], str]) -> Any:
    """Wait until `predicate()` is truthy, waking when the fake sets `changed` (or every 50 ms); returns its value.
    On timeout the error says what the fake saw (`describe()`), so a failing scenario tells its story."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = predicate()
        if value:
            return value
        remaining = deadline - asyncio.get_running_loop().time()
        if remaining <= 0:
            raise TimeoutError(f"condition not met within {timeout}s; calls so far: {describe()}")
        changed.clear()
        try:
            await asyncio.wait_for(changed.wait(), min(remaining, 0.05))
        except TimeoutError:
            pass
