"""Generic HTTP: the batch as NDJSON (one :meth:`Record.to_json` per line) in one request.

Options:
  url          where to send (required, http:// or https://)
  method       POST (default), PUT or PATCH
  headers      extra request headers (default none)
  gzip         gzip the body, ``Content-Encoding: gzip`` (default false)
  timeout      per request (default 10s)
  bearer_token | bearer_token_file, basic_auth {username, password | password_file} (also flat:
  username, password | password_file)   credentials; see :mod:`nodeagent.logs.sinks._http`
A 2xx answer is delivery; 429, 5xx and connection errors are retried; other 4xx drop the batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from nodeagent.config.schema import REQUIRED, Field, Section
from nodeagent.config.values import parse_choice, parse_http_url, parse_str
from nodeagent.logs.encoding import encode_json_lines
from nodeagent.logs.record import Record
from nodeagent.logs.sinks._http import HttpPoster, PostingSink, check_http_options, http_fields

NDJSON = "application/x-ndjson"
METHODS = ("POST", "PUT", "PATCH")


def _parse_method(raw: Any) -> str:
    return parse_choice(*METHODS)(parse_str(raw).upper())


class HttpSink(PostingSink):
    type: ClassVar[str] = "http"
    option_schema: ClassVar[Section] = Section(
        (
            Field("url", REQUIRED, "Where to send (http:// or https://).", parse_http_url),
            Field("method", "POST", f"One of {', '.join(METHODS)}.", _parse_method),
            *http_fields(gzip_default=False),
        ),
        subject="a http sink",
        check=check_http_options,
    )

    def __init__(self, name: str, options: dict[str, Any]) -> None:
        super().__init__(name, options)
        settings = self.read_options()
        self.url, self.method = settings["url"], settings["method"]
        self._poster = HttpPoster(name, self.method, self.url, settings)

    async def send(self, batch: Sequence[Record]) -> None:
        if batch:
            await self._poster.post(encode_json_lines(batch), NDJSON)
