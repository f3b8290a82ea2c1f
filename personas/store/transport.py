"""How the store's driver sends and receives its messages: PyMongo's asynchronous network
layer, without the Tasks it makes for every operation.

PyMongo 4.20's async connections send through `asyncio.wait_for(write, timeout)` (on Python
3.11 a Task and a timer per write, for a write that never waits: it hands the bytes to the
transport) and receive through two Tasks raced by `asyncio.wait`: one reads the reply, the
other wakes every 0.5 s to see whether the pool interrupted the connection. That is about
0.1 ms of CPU per operation, a sixth of a `persona(id)` request (bench/PROFILE.md, "Eighth
pass"). `install()` replaces the two functions the pool calls with ones that do the same in
the operation's own Task, watched by one timer:

- the reply is awaited directly, until the operation's deadline (its time limit, or the
  socket timeout), past which `TimeoutError("timed out")` is raised, as before;
- every 0.5 s, as before, the timer checks whether the pool interrupted the connection
  (`interrupt_connections`, a closed client), and then ends the wait with
  `_OperationCancelled`, as before;
- a cancellation from anyone else (the request's deadline, a shutdown) goes through as a
  `CancelledError`, as before. The timer cancels the Task itself and takes its cancellation
  back the way `asyncio.timeout` does, so the two never mistake each other's.

Whatever ends a wait early, the pool closes the connection, as it does after any error.
Only the PyMongo version the replacement was written and tested against is changed
(`PYMONGO_VERSION`). With any other version the driver is left as it is, and `install()`
answers False."""

from __future__ import annotations

import asyncio
import time
from typing import Any, Final

import pymongo
from pymongo import _csot, network_layer
from pymongo.asynchronous import pool as _pool
from pymongo.asynchronous.pool import AsyncConnection
from pymongo.errors import ProtocolError, _OperationCancelled
from pymongo.message import _OpMsg
from pymongo.network_layer import PyMongoProtocol

# The driver's modules as the replacement reads and changes them (names they do not export).
pool: Any = _pool
layer: Any = network_layer

PYMONGO_VERSION: Final = "4.20.0"
"""The driver version whose `network_layer.async_sendall` and `async_receive_message` the
two replacements reproduce."""

POLL_SECONDS: Final[float] = layer._POLL_TIMEOUT
"""How often a wait checks whether the pool interrupted its connection (the driver's own)."""

_TIMED_OUT: Final = "timed out"
_INTERRUPTED: Final = "interrupted"


def install() -> bool:
    """Make the pool send and receive with the functions below; True when they are in use
    (installing twice changes nothing), False when the driver is not the version they were
    written for, or its pool no longer calls the functions they replace."""
    if pool.async_sendall is sendall and pool.async_receive_message is receive_message:
        return True
    if (
        pymongo.version != PYMONGO_VERSION
        or pool.async_sendall is not layer.async_sendall
        or pool.async_receive_message is not layer.async_receive_message
    ):
        return False
    pool.async_sendall = sendall
    pool.async_receive_message = receive_message
    return True


def installed() -> bool:
    """Whether the pool sends and receives with the functions below."""
    return pool.async_sendall is sendall and pool.async_receive_message is receive_message


async def sendall(protocol: PyMongoProtocol, message: bytes) -> None:
    """`network_layer.async_sendall`: the write hands the message to the transport at once,
    so the time limit can only have run out before it (as `wait_for` finds then)."""
    timeout = protocol.gettimeout
    if timeout is not None and timeout <= 0:
        raise TimeoutError(_TIMED_OUT)
    await protocol.write(message)


async def receive_message(
    connection: AsyncConnection,
    request_id: int | None,
    max_message_size: int = layer.MAX_MESSAGE_SIZE,
) -> _OpMsg:
    """`network_layer.async_receive_message`: the reply to `request_id`, unpacked; the same
    deadline, the same errors."""
    timeout = connection.conn.gettimeout
    deadline: float | None
    if _csot.get_timeout():
        deadline = _csot.get_deadline()
    else:
        deadline = time.monotonic() + timeout if timeout else None
    task = asyncio.current_task()
    assert task is not None
    watch = _Watch(connection, task, deadline)
    try:
        data, op_code = await connection.conn.get_conn.read(request_id, max_message_size)
    except asyncio.CancelledError:
        reason = watch.reason
        if reason is not None and task.uncancel() <= watch.cancelling:
            if reason is _TIMED_OUT:
                raise TimeoutError(_TIMED_OUT) from None
            raise _OperationCancelled("operation cancelled") from None
        raise
    finally:
        watch.stop()
    try:
        unpack_reply = layer._UNPACK_REPLY[op_code]
    except KeyError:
        raise ProtocolError(
            f"Got opcode {op_code!r} but expected {layer._UNPACK_REPLY.keys()!r}"
        ) from None
    reply: _OpMsg = unpack_reply(data)
    return reply


class _Watch:
    """One timer over a wait for a reply: at its deadline, or when the pool interrupted the
    connection (checked every `POLL_SECONDS`), it cancels the waiting Task and says why."""

    __slots__ = ("_connection", "_deadline", "_handle", "_loop", "_task", "cancelling", "reason")

    def __init__(
        self, connection: AsyncConnection, task: asyncio.Task[Any], deadline: float | None
    ) -> None:
        self._connection = connection
        self._task = task
        self._deadline = deadline
        self._loop = task.get_loop()
        self.cancelling = task.cancelling()
        self.reason: str | None = None
        self._handle: asyncio.TimerHandle | None = self._loop.call_later(self._delay(), self._check)

    def _delay(self) -> float:
        if self._deadline is None:
            return POLL_SECONDS
        return max(0.0, min(POLL_SECONDS, self._deadline - time.monotonic()))

    def _check(self) -> None:
        self._handle = None
        if self._connection.cancel_context.cancelled:
            self.reason = _INTERRUPTED
        elif self._deadline is not None and time.monotonic() >= self._deadline:
            self.reason = _TIMED_OUT
        else:
            self._handle = self._loop.call_later(self._delay(), self._check)
            return
        self._task.cancel()

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
