"""python-telegram-bot's HTTP transport over aiohttp, for the turn engine's sending.

PTB talks to the Bot API through a `BaseRequest`; its own is httpx. Measured on the
bench's fake Bot API (one process sending, the fake in another, `time.process_time()`
over 1,200 sendMessage/editMessageText calls, `bench/transport_cost.py`): 1.4-2.4 ms of
CPU per call through httpx, 0.18-0.19 ms through this class; a streamed answer makes
three or four calls (typing, the first piece, an edit, the final edit). PTB still
builds the requests and reads the answers (its errors, `RetryAfter`, `ChatMigrated`,
stay as they are); only the bytes travel differently.

aiohttp's connector queues requests beyond its limit in a FIFO, so hundreds of
waiting turns cost nothing per request (httpcore rescans its whole pool).
"""

from __future__ import annotations

import aiohttp
from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest, RequestData


class AiohttpRequest(BaseRequest):
    """A `BaseRequest` on one aiohttp session (one connection pool) per instance.

    Like PTB's HTTPXRequest, the session belongs to the event loop that opened it (on
    `initialize()` or the first request).
    `pool_timeout` bounds the wait for a free connection; aiohttp has no write time-out
    of its own, so a request's whole time is bounded by connect + write + read.
    """

    def __init__(
        self,
        *,
        connection_pool_size: int = 32,
        connect_timeout: float = 5.0,
        read_timeout: float = 15.0,
        write_timeout: float = 15.0,
        pool_timeout: float = 30.0,
        media_write_timeout: float = 20.0,
    ) -> None:
        self._pool_size = connection_pool_size
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._write_timeout = write_timeout
        self._pool_timeout = pool_timeout
        self._media_write_timeout = media_write_timeout
        self._session: aiohttp.ClientSession | None = None

    @property
    def read_timeout(self) -> float:
        return self._read_timeout

    async def initialize(self) -> None:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                limit=self._pool_size, limit_per_host=self._pool_size, keepalive_timeout=60
            )
            self._session = aiohttp.ClientSession(
                connector=connector, headers={"User-Agent": self.USER_AGENT}
            )

    async def shutdown(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout=BaseRequest.DEFAULT_NONE,
        write_timeout=BaseRequest.DEFAULT_NONE,
        connect_timeout=BaseRequest.DEFAULT_NONE,
        pool_timeout=BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        if self._session is None or self._session.closed:
            await self.initialize()  # PTB's Bot does not always initialise before a call
        session = self._session
        assert session is not None
        files = request_data.multipart_data if request_data else None
        parameters = request_data.json_parameters if request_data else None
        data: aiohttp.FormData | dict[str, str] | None = parameters
        if files:
            form = aiohttp.FormData()
            for name, value in (parameters or {}).items():
                form.add_field(name, value)
            for name, (file_name, content, mime_type) in files.items():
                form.add_field(name, content, filename=file_name, content_type=mime_type)
            data = form
        read = _given(read_timeout, self._read_timeout)
        connect = _given(connect_timeout, self._connect_timeout)
        pool = _given(pool_timeout, self._pool_timeout)
        write = _given(write_timeout, self._media_write_timeout if files else self._write_timeout)
        timeout = aiohttp.ClientTimeout(
            # `connect` covers waiting for a pooled connection and opening a new one.
            connect=_sum(pool, connect),
            sock_connect=connect,
            sock_read=read,
            total=_sum(connect, write, read),
        )
        try:
            async with session.request(method, url, data=data, timeout=timeout) as response:
                return response.status, await response.read()
        except TimeoutError as error:  # aiohttp's time-outs are asyncio.TimeoutError
            raise TimedOut from error
        except aiohttp.ClientError as error:
            raise NetworkError(f"aiohttp.{error.__class__.__name__}: {error}") from error


def _given(value, default: float | None) -> float | None:
    return default if isinstance(value, type(BaseRequest.DEFAULT_NONE)) else value


def _sum(*values: float | None) -> float | None:
    """None (no limit) when any part is unlimited."""
    return None if any(value is None for value in values) else sum(values)  # type: ignore[arg-type]
