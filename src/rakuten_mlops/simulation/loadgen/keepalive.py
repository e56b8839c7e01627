"""A minimal HTTP/1.1 keep-alive client on asyncio streams: cheap enough that a load generator sharing
the server's CPUs measures the server, not itself. Plain http only; one request at a time per connection."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

from rakuten_mlops.errors import InvalidInputError


class HttpError(Exception):
    """The connection failed or the answer was not HTTP."""


class Connection:
    """One keep-alive connection to `base_url` (reconnects after a failure or `Connection: close`)."""

    def __init__(self, base_url: str, headers: dict[str, str], timeout_s: float) -> None:
        parts = urlsplit(base_url)
        if parts.scheme != "http" or not parts.hostname:
            raise InvalidInputError(f"only http:// URLs are supported here, not {base_url!r}")
        self.host = parts.hostname
        self.port = parts.port or 80
        self.prefix = parts.path.rstrip("/")
        self.timeout_s = timeout_s
        extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self._head = f"Host: {parts.netloc}\r\n{extra}"
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        """POST `body`; returns (status, response body)."""
        try:
            return await asyncio.wait_for(self._post(path, body), self.timeout_s)
        except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError) as exc:
            await self.close()
            raise HttpError(exc.__class__.__name__) from exc

    async def _post(self, path: str, body: bytes) -> tuple[int, bytes]:
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        assert self._reader is not None
        request = f"POST {self.prefix}{path} HTTP/1.1\r\n{self._head}Content-Length: {len(body)}\r\n\r\n"
        self._writer.write(request.encode("latin-1") + body)
        parts = (await self._reader.readline()).split(b" ", 2)
        if len(parts) < 2 or not parts[1].isdigit():
            raise ConnectionResetError("the server closed the connection or did not answer HTTP")
        status = int(parts[1])
        length, chunked, close = 0, False, False
        while (line := await self._reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
            elif name == b"connection" and b"close" in value.lower():
                close = True
        data = await (self._read_chunked() if chunked else self._reader.readexactly(length))
        if close:
            await self.close()
        return status, data

    async def _read_chunked(self) -> bytes:
        assert self._reader is not None
        parts = []
        while size := int((await self._reader.readline()).split(b";")[0], 16):
            parts.append(await self._reader.readexactly(size))
            await self._reader.readline()
        await self._reader.readline()
        return b"".join(parts)

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
            self._reader = None
