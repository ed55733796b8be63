"""Refuse request bodies past MAX_REQUEST_BYTES before they are buffered or parsed.

A declared Content-Length over the limit is answered 413 at once; any other body is read here
(FastAPI would buffer it whole anyway) and refused the moment it passes the limit. FastAPI turns
errors raised while it reads a body into a generic 400, so the refusal is sent from here.
Corpus uploads stream to disk under their own limit (MAX_CORPUS_BYTES): their path is left alone.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from model_trainer.api.errors import error_response
from model_trainer.errors import ModelTrainerError

STREAMED_PATHS = frozenset({"/v1/corpora"})


def too_large(limit: int) -> ModelTrainerError:
    return ModelTrainerError(
        "REQUEST_TOO_LARGE",
        f"request body exceeds the limit of {limit} bytes (MAX_REQUEST_BYTES)",
        details={"limit": limit},
    )


def declared_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length" and value.isdigit():
            return int(value)
    return None


class BodyLimit:
    def __init__(self, app: ASGIApp, *, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in STREAMED_PATHS:
            await self.app(scope, receive, send)
            return
        declared = declared_length(scope)
        body = None if declared is not None and declared > self.limit else await self.read(receive)
        if body is None:
            await error_response(too_large(self.limit))(scope, receive, send)
            return
        await self.app(scope, replay(body, receive), send)

    async def read(self, receive: Receive) -> bytes | None:
        """The whole body, or None once it passes the limit (FastAPI buffers it all anyway)."""
        body = bytearray()
        while True:
            message = await receive()
            body += message.get("body", b"")
            if len(body) > self.limit:
                return None
            if not message.get("more_body", False):
                return bytes(body)


def replay(body: bytes, receive: Receive) -> Receive:
    """Hands the app the body already read, then the client's own messages (a disconnect)."""
    pending = [{"type": "http.request", "body": body, "more_body": False}]

    async def replayed() -> Message:
        return pending.pop() if pending else await receive()

    return replayed
