"""uvicorn's httptools protocol, with each response leaving in one socket write.

uvicorn writes a response's status line and headers the moment the app starts it, and its body
when the app sends it: two writes, two packets and, on a busy host, two wakeups of the client
for every response of a few hundred bytes (a submission's 202). Here the connection's transport
holds what one turn of the event loop writes and hands it to the socket at the end of that
turn: a response's head and body go as one write, a streamed response's chunks a turn later
than they would have. Closing the connection sends what is held first; aborting drops it.
`model-trainer api` serves with this protocol.
"""

from __future__ import annotations

import asyncio
from typing import Protocol, TypeAlias, runtime_checkable

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

Data: TypeAlias = "bytes | bytearray | memoryview[int]"


@runtime_checkable
class SocketTransport(Protocol):
    """What a connection's transport offers: asyncio's, or uvloop's (not an asyncio.Transport
    subclass, but the same methods)."""

    def write(self, data: Data) -> None: ...
    def close(self) -> None: ...
    def abort(self) -> None: ...
    def write_eof(self) -> None: ...
    def can_write_eof(self) -> bool: ...
    def is_closing(self) -> bool: ...
    def get_extra_info(self, name: str, default: object = None) -> object: ...
    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None: ...
    def get_protocol(self) -> asyncio.BaseProtocol: ...
    def is_reading(self) -> bool: ...
    def pause_reading(self) -> None: ...
    def resume_reading(self) -> None: ...
    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None: ...
    def get_write_buffer_limits(self) -> tuple[int, int]: ...
    def get_write_buffer_size(self) -> int: ...


class TurnBuffer(asyncio.Transport):
    """The socket's transport, with `write` deferred to the end of the event loop's turn."""

    def __init__(self, inner: SocketTransport, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self._inner, self._loop = inner, loop
        self._held: list[Data] = []

    def write(self, data: Data) -> None:
        if not self._held:
            self._loop.call_soon(self.flush)
        self._held.append(data)

    def flush(self) -> None:
        """Send what is held as one write (nothing once the connection is closing)."""
        held, self._held = self._held, []
        if held and not self._inner.is_closing():
            self._inner.write(held[0] if len(held) == 1 else b"".join(held))

    def close(self) -> None:
        self.flush()
        self._inner.close()

    def abort(self) -> None:
        self._held = []
        self._inner.abort()

    def write_eof(self) -> None:
        self.flush()
        self._inner.write_eof()

    def can_write_eof(self) -> bool:
        return self._inner.can_write_eof()

    def is_closing(self) -> bool:
        return self._inner.is_closing()

    def get_extra_info(self, name: str, default: object = None) -> object:
        return self._inner.get_extra_info(name, default)

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._inner.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._inner.get_protocol()

    def is_reading(self) -> bool:
        return self._inner.is_reading()

    def pause_reading(self) -> None:
        self._inner.pause_reading()

    def resume_reading(self) -> None:
        self._inner.resume_reading()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._inner.set_write_buffer_limits(high, low)

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._inner.get_write_buffer_limits()

    def get_write_buffer_size(self) -> int:
        return self._inner.get_write_buffer_size() + sum(len(data) for data in self._held)


class OneWriteHttpProtocol(HttpToolsProtocol):
    """uvicorn's `httptools` protocol over a TurnBuffer (uvicorn.Config(http=...))."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if not isinstance(transport, SocketTransport):
            raise TypeError(f"an HTTP connection needs a stream transport, got {transport!r}")
        super().connection_made(TurnBuffer(transport, self.loop))
