"""Each response leaves in one socket write: the transport holds a turn's writes, then sends
them together; closing sends what is held, aborting drops it."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, StreamingResponse
from starlette.routing import Route

from model_trainer.api.http_protocol import Data, OneWriteHttpProtocol, TurnBuffer

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Recorder:
    """A socket's transport that records what reaches it."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.written: list[bytes] = []
        self.closing = False
        self.protocol = asyncio.Protocol()

    def write(self, data: Data) -> None:
        self.written.append(bytes(data))

    def close(self) -> None:
        self.calls.append("close")
        self.closing = True

    def abort(self) -> None:
        self.calls.append("abort")
        self.closing = True

    def write_eof(self) -> None:
        self.calls.append("write_eof")

    def can_write_eof(self) -> bool:
        return True

    def is_closing(self) -> bool:
        return self.closing

    def get_extra_info(self, name: str, default: object = None) -> object:
        return {"peername": ("127.0.0.1", 5)}.get(name, default)

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self.calls.append("set_protocol")

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self.protocol

    def is_reading(self) -> bool:
        return True

    def pause_reading(self) -> None:
        self.calls.append("pause_reading")

    def resume_reading(self) -> None:
        self.calls.append("resume_reading")

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self.calls.append(f"limits {high} {low}")

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return (1, 2)

    def get_write_buffer_size(self) -> int:
        return 10


async def test_a_turns_writes_leave_as_one_at_its_end() -> None:
    inner = Recorder()
    buffer = TurnBuffer(inner, asyncio.get_running_loop())
    buffer.write(b"HTTP/1.1 202 Accepted\r\n\r\n")
    buffer.write(memoryview(b"{}"))
    assert inner.written == []
    assert buffer.get_write_buffer_size() == 10 + 27
    await asyncio.sleep(0)
    assert inner.written == [b"HTTP/1.1 202 Accepted\r\n\r\n{}"]
    buffer.write(b"next")
    await asyncio.sleep(0)
    assert inner.written[1:] == [b"next"]


async def test_close_sends_what_is_held_and_abort_drops_it() -> None:
    inner = Recorder()
    buffer = TurnBuffer(inner, asyncio.get_running_loop())
    buffer.write(b"last")
    buffer.write_eof()
    buffer.close()
    assert (inner.written, inner.calls) == ([b"last"], ["write_eof", "close"])
    buffer.write(b"after close")
    await asyncio.sleep(0)
    assert inner.written == [b"last"]  # a closing connection takes nothing more

    dropped = Recorder()
    buffer = TurnBuffer(dropped, asyncio.get_running_loop())
    buffer.write(b"never")
    buffer.abort()
    await asyncio.sleep(0)
    assert (dropped.written, dropped.calls) == ([], ["abort"])


async def test_everything_else_is_the_sockets_transports() -> None:
    inner = Recorder()
    buffer = TurnBuffer(inner, asyncio.get_running_loop())
    buffer.pause_reading()
    buffer.resume_reading()
    buffer.set_write_buffer_limits(8, 4)
    buffer.set_protocol(asyncio.Protocol())
    assert inner.calls == ["pause_reading", "resume_reading", "limits 8 4", "set_protocol"]
    assert buffer.get_protocol() is inner.protocol
    assert buffer.get_extra_info("peername") == ("127.0.0.1", 5)
    assert buffer.get_extra_info("socket", "none") == "none"
    assert (buffer.is_reading(), buffer.can_write_eof(), buffer.is_closing()) == (True, True, False)
    assert buffer.get_write_buffer_limits() == (1, 2)


async def test_a_connection_without_a_stream_refuses() -> None:
    config = uvicorn.Config(Starlette())
    config.load()
    protocol = OneWriteHttpProtocol(config, server_state=uvicorn.server.ServerState(), app_state={})
    with pytest.raises(TypeError, match="needs a stream transport"):
        protocol.connection_made(asyncio.BaseTransport())


async def _stream() -> AsyncIterator[bytes]:
    for chunk in (b"one ", b"two"):
        yield chunk


async def _plain(request: Request) -> PlainTextResponse:
    return PlainTextResponse("accepted", status_code=202)


async def _chunks(request: Request) -> StreamingResponse:
    return StreamingResponse(_stream())


async def test_uvicorn_serves_whole_and_streamed_responses_through_it() -> None:
    app = Starlette(routes=[Route("/plain", _plain), Route("/chunks", _chunks)])
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, port=port, http=OneWriteHttpProtocol, log_config=None, lifespan="off")
    )
    serving = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            plain = await http.get("/plain")
            chunks = await http.get("/chunks")
    finally:
        server.should_exit = True
        await serving
    assert (plain.status_code, plain.text) == (202, "accepted")
    assert (chunks.status_code, chunks.text) == (200, "one two")
