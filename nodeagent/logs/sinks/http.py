"""Generic HTTP: the batch as NDJSON (one :meth:`Record.to_json` per line) in one request.

Options:
  url          where to send (required, http:// or https://)
  method       POST (default), PUT or PATCH
  headers      extra request headers (default none)
  gzip         gzip the body, ``Content-Encoding: gzip`` (default false)
  timeout      per request (default 10s)
  username, password | password_file   HTTP basic auth (default none)
A 2xx answer is delivery; 429, 5xx and connection errors are retried; other 4xx drop the batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from nodeagent.logs.encoding import encode_json_lines
from nodeagent.logs.record import Record
from nodeagent.logs.sinks._http import HttpPoster, read_common_http_options
from nodeagent.logs.sinks._options import OptionReader, parse_http_url, parse_str
from nodeagent.logs.sinks.base import Sink

NDJSON = "application/x-ndjson"
METHODS = ("POST", "PUT", "PATCH")


def _parse_method(raw: Any) -> str:
    method = parse_str(raw).upper()
    if method not in METHODS:
        raise ValueError(f"expected one of {', '.join(METHODS)}, got {raw!r}")
    return method


class HttpSink(Sink):
    type: ClassVar[str] = "http"

    def __init__(self, name: str, options: dict[str, Any]) -> None:
        super().__init__(name, options)
        reader = OptionReader(self.type, options)
        self.url = reader.take("url", parse_http_url)
        self.method = reader.take("method", _parse_method, "POST")
        settings = read_common_http_options(reader, gzip_default=False)
        reader.finish()
        self._poster = HttpPoster(name, self.method, self.url, settings)

    async def start(self) -> None:
        await self._poster.start()

    async def send(self, batch: Sequence[Record]) -> None:
        if batch:
            await self._poster.post(encode_json_lines(batch), NDJSON)

    async def close(self) -> None:
        await self._poster.close()
