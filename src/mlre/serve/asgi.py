"""The service's own ASGI layers, outside FastAPI: the body-size limit, the prediction fast
path that answers the three prediction endpoints' JSON requests without FastAPI's routing, and
each client's budget of work."""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable

from fastapi.responses import JSONResponse, Response
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: What answers a prediction endpoint: its raw body and headers in, a response out.
Handler = Callable[[bytes, Headers], Awaitable[Response]]


class BodyLimit:
    """ASGI middleware: a body over ``limit`` bytes gets 413 before the app reads it whole
    (by its Content-Length, or while it streams in chunks)."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await _too_large(send, self.limit)
            return
        seen = 0
        started = False

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise _TooLarge()
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited, tracking_send)
        except _TooLarge:
            if not started:
                await _too_large(send, self.limit)


class _TooLarge(Exception):
    pass


class PredictFastPath:
    """ASGI middleware: ``POST`` of a JSON body to one of ``handlers``' paths is answered by that
    handler directly, without FastAPI's routing, request objects and exception middleware
    (about half a millisecond a request on a small machine, a tenth of a one-row prediction).
    The same handlers serve the routes FastAPI documents; anything else passes through."""

    def __init__(
        self,
        app: ASGIApp,
        handlers: dict[str, Handler],
        on_error: Callable[[Exception], Response],
    ) -> None:
        self.app, self.handlers, self.on_error = app, handlers, on_error

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        handler = self.handlers.get(scope["path"]) if scope["type"] == "http" else None
        if handler is None or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        if content_type(headers) != "application/json":
            await self.app(scope, receive, send)
            return
        chunks, more = [], True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        try:
            response = await handler(b"".join(chunks), headers)
        except Exception as err:
            response = self.on_error(err)
        await response(scope, receive, send)


def content_type(headers: Headers) -> str:
    """The media type of a request (JSON when it names none), without its parameters."""
    return headers.get("content-type", "application/json").split(";")[0].strip()


async def _too_large(send: Send, limit: int) -> None:
    await _answer(send, 413, f"the request body is over the limit of {limit:,} bytes")


async def _answer(
    send: Send, status: int, error: str, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    """Answer a request from an ASGI layer: ``{"error": error}`` with ``status``."""
    body = JSONResponse({"error": error}, status_code=status).body
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


#: A client's work: one unit a request, and one more per this many bytes of body.
UNIT_BYTES = 16 * 1024
#: What a request refused as malformed (4xx) costs on top: a client that keeps sending what the
#: service must parse and refuse runs out of budget first.
ERROR_COST = 5.0
#: Clients whose budgets are remembered at most (the least recently seen are forgotten first).
MAX_CLIENTS = 65_536


class ClientBudget:
    """ASGI middleware: each client (``identify``: its key's name or its address) has a budget of
    work that refills at ``rate`` units a second up to ``burst``. A request that would overdraw
    it gets 429 with Retry-After before its body is read; bodies and client errors are charged
    as they happen. Requests without a body (health, metrics, reads) pass free."""

    def __init__(
        self,
        app: ASGIApp,
        rate: float,
        burst: float,
        identify: Callable[[Scope], str],
        on_throttle: Callable[[], None],
    ) -> None:
        self.app, self.rate, self.burst = app, rate, burst
        self.identify, self.on_throttle = identify, on_throttle
        self.buckets: OrderedDict[str, list[float]] = OrderedDict()

    def _balance(self, who: str) -> list[float]:
        """The client's [units left, when counted], refilled to now."""
        now = time.monotonic()
        bucket = self.buckets.pop(who, None) or [self.burst, now]
        bucket[0] = min(self.burst, bucket[0] + (now - bucket[1]) * self.rate)
        bucket[1] = now
        self.buckets[who] = bucket  # most recently seen last
        while len(self.buckets) > MAX_CLIENTS:
            self.buckets.popitem(last=False)
        return bucket

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        who = self.identify(scope)
        declared = dict(scope.get("headers") or []).get(b"content-length", b"0")
        size = int(declared) if declared.isdigit() else 0
        cost = 1.0 + size / UNIT_BYTES
        bucket = self._balance(who)
        if bucket[0] < min(cost, self.burst):
            self.on_throttle()
            await _throttled(send, (min(cost, self.burst) - bucket[0]) / self.rate)
            return
        bucket[0] -= cost
        seen, status = 0, 0

        async def counting() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
            return message

        async def watching(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, counting, watching)
        finally:
            extra = max(0, seen - size) / UNIT_BYTES  # a body longer than declared, or chunked
            if 400 <= status < 500 and status != 429:
                extra += ERROR_COST
            if extra:
                self._balance(who)[0] -= extra


async def _throttled(send: Send, wait: float) -> None:
    await _answer(
        send,
        429,
        "too many requests from this client: wait and retry",
        [(b"retry-after", str(max(1, math.ceil(wait))).encode())],
    )
