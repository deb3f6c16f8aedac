"""A strict Elasticsearch ``_bulk`` endpoint for the sink tests, with injectable faults.

It answers as Elasticsearch 8 does (shapes and texts from its documentation, source and recorded
answers): NDJSON checked line by line (Content-Type, final newline, an action line naming one of
create/index/delete/update followed by its source), index names checked per item
(``invalid_index_name_exception``), data streams (``logs-*-*``) taking only ``create`` with an
``@timestamp``, field types fixed by the first document of an index (a later conflict is a
``mapper_parsing_exception``), ``filter_path`` applied, basic and ApiKey authentication (401 with
``security_exception`` and ``WWW-Authenticate``).

Faults: ``faults`` is a queue of whole-request faults taken one per request (``"429"``, ``"503"``,
``"413"``, ``"hang"`` before indexing, ``"hang-after"`` indexing, ``"reset"`` before, ``"reset-after"``);
``retry_after`` adds that header to 429/503; ``item_429_rate`` refuses that share of items with
``es_rejected_execution_exception``; ``refuse_item`` (a predicate on the source) refuses items with a
``mapper_parsing_exception``; ``max_content_length`` answers 413 to larger bodies.
"""

from __future__ import annotations

import asyncio
import base64
import json
import random
import re
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

WWW_AUTHENTICATE = ['Basic realm="security", charset="UTF-8"', 'Bearer realm="security"', "ApiKey"]
INVALID_CHARS = '\\/*?"<>| ,#:'
ACTIONS = ("create", "index", "delete", "update")


def error_body(kind: str, reason: str, status: int, **extra: Any) -> dict[str, Any]:
    cause = {"type": kind, "reason": reason, **extra}
    return {"error": {"root_cause": [cause], **cause}, "status": status}


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        body=json.dumps(body).encode(), status=status, content_type="application/json", headers=headers
    )


def index_name_error(name: str) -> str | None:
    """Why Elasticsearch refuses an index name (MetadataCreateIndexService.validateIndexOrAliasName)."""
    if not name:
        return "must not be empty"
    if any(c in name for c in '\\/*?"<>| ,'):
        return "must not contain the following characters [' ','\"','*',',','/','<','>','?','\\\\','|']"
    if "#" in name:
        return "must not contain '#'"
    if ":" in name:
        return "must not contain ':'"
    if name[0] in "_-+":
        return "must not start with '_', '-', or '+'"
    if name != name.lower():
        return "must be lowercase"
    if name in (".", ".."):
        return "must not be '.' or '..'"
    if len(name.encode()) > 255:
        return f"index name is too long, ({len(name.encode())} > 255)"
    return None


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise ValueError(f"Duplicate field '{key}'")
        seen[key] = value
    return seen


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "long" if isinstance(value, int) else "float"
    if isinstance(value, dict):
        return "object"
    return "text"


def _leaves(doc: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for key, value in doc.items():
        path = prefix + key
        out.append((path, value))
        if isinstance(value, dict):
            out.extend(_leaves(value, path + "."))
    return out


@dataclass
class FakeElasticsearch:
    users: dict[str, str] = field(default_factory=dict)  # basic auth; empty with no api_keys: no security
    api_keys: set[str] = field(default_factory=set)  # encoded keys (base64 of id:key)
    faults: list[str] = field(default_factory=list)
    retry_after: str | None = None
    item_429_rate: float = 0.0
    refuse_item: Callable[[dict[str, Any]], bool] | None = None
    max_content_length: int = 100 * 1024 * 1024
    data_stream_patterns: tuple[str, ...] = ("logs-*-*",)
    hang_seconds: float = 30.0
    seed: int = 1
    docs: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (index, source) accepted
    requests: list[dict[str, Any]] = field(default_factory=list)  # method, path, query, headers, lines
    mappings: dict[str, dict[str, str]] = field(default_factory=dict)
    statuses: list[int] = field(default_factory=list)  # every whole-request status answered

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)
        self._seq = 0
        self._data_streams: dict[str, bool] = {}

    def app(self) -> web.Application:
        app = web.Application(client_max_size=self.max_content_length * 2)
        app.router.add_post("/_bulk", self.bulk)
        app.router.add_put("/_bulk", self.bulk)
        app.router.add_post("/{index}/_bulk", self.bulk)
        return app

    # -- the endpoint -------------------------------------------------------------------------------

    async def bulk(self, request: web.Request) -> web.StreamResponse:
        response = await self._bulk(request)
        self.statuses.append(response.status)
        return response

    async def _bulk(self, request: web.Request) -> web.StreamResponse:
        fault = self.faults.pop(0) if self.faults else None
        denied = self._authenticate(request)
        if denied is not None:
            return denied
        if fault in ("hang", "reset"):
            return await self._break(request, fault)
        content_type = request.headers.get("Content-Type", "")
        media = content_type.split(";")[0].strip().lower()
        if media not in (
            "application/x-ndjson",
            "application/json",
            "application/vnd.elasticsearch+x-ndjson",
        ):
            return json_response(
                {"error": f"Content-Type header [{content_type}] is not supported", "status": 406}, 406
            )
        raw = await request.read()  # aiohttp undoes Content-Encoding: gzip as Elasticsearch does
        self.requests.append(
            {
                "path": request.path,
                "query": dict(request.query),
                "headers": dict(request.headers),
                "size": len(raw),
            }
        )
        # The "413" fault: this request is too large, one of half its size would not be (it waits for a
        # request of more than one item).
        if fault == "413" and raw.count(b"\n") <= 2:
            self.faults.insert(0, fault)
        elif len(raw) > self.max_content_length or fault == "413":
            return web.Response(status=413)  # Elasticsearch answers 413 without a body
        if fault in ("429", "503"):
            headers = {"Retry-After": self.retry_after} if self.retry_after else None
            if fault == "429":
                body = error_body(
                    "es_rejected_execution_exception",
                    "rejected execution of coordinating operation [coordinating_and_primary_bytes=104759862, "
                    "replica_bytes=0, all_bytes=104759862, coordinating_operation_bytes=20862272, "
                    "max_coordinating_and_primary_bytes=107374182]",
                    429,
                )
                return json_response(body, 429, headers)
            body = error_body(
                "cluster_block_exception", "blocked by: [SERVICE_UNAVAILABLE/2/no master];", 503
            )
            return json_response(body, 503, headers)
        if not raw:
            body = error_body("parse_exception", "request body is required", 400)
            return json_response(body, 400)
        if not raw.endswith(b"\n"):
            body = error_body(
                "illegal_argument_exception", "The bulk request must be terminated by a newline [\\n]", 400
            )
            return json_response(body, 400)
        try:
            operations = self._parse(raw, request.match_info.get("index"))
        except _Malformed as exc:
            return json_response(error_body(exc.kind, exc.reason, 400), 400)
        started = time.monotonic()
        items = []
        for number, (action, index, source) in enumerate(operations):
            items.append(self._apply(action, index, source))
            if number % 100 == 99:
                await asyncio.sleep(0)  # the shipper shares this event loop: let it breathe
        result = {
            "took": int((time.monotonic() - started) * 1000),
            "errors": any(next(iter(item.values()))["status"] >= 300 for item in items),
            "items": items,
        }
        if fault in ("hang-after", "reset-after"):
            return await self._break(request, fault)
        return json_response(_filter(result, request.query.get("filter_path")))

    async def _break(self, request: web.Request, fault: str) -> web.StreamResponse:
        if fault.startswith("hang"):
            await asyncio.sleep(self.hang_seconds)
            return web.Response(status=504)
        transport = request.transport
        if transport is not None:
            transport.abort()  # RST: the client sees a connection reset, no answer
        return web.Response(status=500)

    def _authenticate(self, request: web.Request) -> web.Response | None:
        if not self.users and not self.api_keys:
            return None
        header = request.headers.get("Authorization", "")
        scheme, _, credentials = header.partition(" ")
        path = request.path_qs
        if scheme == "Basic":
            try:
                user, _, password = base64.b64decode(credentials, validate=True).decode().partition(":")
            except ValueError:
                user, password = "", None
            if self.users.get(user) == password:
                return None
            reason = f"unable to authenticate user [{user}] for REST request [{path}]"
        elif scheme == "ApiKey":
            if credentials in self.api_keys:
                return None
            reason = (
                "unable to authenticate with provided credentials and anonymous access is not allowed "
                "for this request"
            )
        else:
            reason = f"missing authentication credentials for REST request [{path}]"
        body = error_body("security_exception", reason, 401, header={"WWW-Authenticate": WWW_AUTHENTICATE})
        response = json_response(body, 401)
        for value in WWW_AUTHENTICATE:
            response.headers.add("WWW-Authenticate", value)
        return response

    # -- NDJSON ------------------------------------------------------------------------------------

    def _parse(self, raw: bytes, default_index: str | None) -> list[tuple[str, str, Any]]:
        lines = raw.split(b"\n")[:-1]
        operations: list[tuple[str, str, Any]] = []
        number = 0
        while number < len(lines):
            line = lines[number]
            number += 1
            if not line.strip():
                continue
            try:
                action = json.loads(line)
            except ValueError as exc:
                raise _Malformed(
                    "x_content_parse_exception", f"[{number}:1] Unexpected character: {str(exc)[:80]}"
                ) from None
            if not isinstance(action, dict):
                found = "START_ARRAY" if isinstance(action, list) else "VALUE"
                raise _Malformed(
                    "illegal_argument_exception",
                    f"Malformed action/metadata line [{number}], expected START_OBJECT but found [{found}]",
                )
            if len(action) != 1 or next(iter(action)) not in ACTIONS:
                name = next(iter(action), "")
                raise _Malformed(
                    "illegal_argument_exception",
                    f"Malformed action/metadata line [{number}], expected field [create], [delete], [index] "
                    f"or [update] but found [{name}]",
                )
            kind, meta = next(iter(action.items()))
            if not isinstance(meta, dict):
                raise _Malformed(
                    "illegal_argument_exception",
                    f"Malformed action/metadata line [{number}], expected START_OBJECT but found [VALUE]",
                )
            index = meta.get("_index", default_index)
            if not isinstance(index, str):
                raise _Malformed(
                    "action_request_validation_exception", "Validation Failed: 1: index is missing;"
                )
            source: Any = None
            if kind != "delete":
                if number >= len(lines):
                    raise _Malformed(
                        "illegal_argument_exception",
                        "The bulk request must be terminated by a newline [\\n]",
                    )
                source = lines[number]
                number += 1
            operations.append((kind, index, source))
        if not operations:
            raise _Malformed(
                "action_request_validation_exception", "Validation Failed: 1: no requests added;"
            )
        return operations

    # -- one item ------------------------------------------------------------------------------------

    def _apply(self, action: str, index: str, source: bytes | None) -> dict[str, Any]:
        def refused(status: int, kind: str, reason: str, **extra: Any) -> dict[str, Any]:
            return {
                action: {
                    "_index": index,
                    "_id": None,
                    "status": status,
                    "error": {"type": kind, "reason": reason, **extra},
                }
            }

        problem = index_name_error(index)
        if problem is not None:
            return refused(
                400,
                "invalid_index_name_exception",
                f"Invalid index name [{index}], {problem}",
                index_uuid="_na_",
                index=index,
            )
        if action not in ("create", "index"):
            return refused(
                400, "illegal_argument_exception", f"the fake supports only create and index, not {action}"
            )
        doc_id = f"{self._seq + 1:020d}"
        try:
            doc = json.loads(source or b"", object_pairs_hook=_no_duplicates)
        except ValueError as exc:
            return refused(400, "document_parsing_exception", f"[1:1] failed to parse: {str(exc)[:200]}")
        if not isinstance(doc, dict):
            return refused(400, "document_parsing_exception", "[1:1] failed to parse: root must be an object")
        if self._is_data_stream(index):
            if action != "create":
                return refused(
                    400,
                    "illegal_argument_exception",
                    "only write ops with an op_type of create are allowed in data streams",
                )
            if "@timestamp" not in doc:
                return refused(
                    400,
                    "document_parsing_exception",
                    "[1:1] failed to parse: data stream timestamp field [@timestamp] is missing",
                )
        if self._random.random() < self.item_429_rate:
            return refused(
                429,
                "es_rejected_execution_exception",
                "rejected execution of primary operation [shard_detail=[" + index + "][0][C], "
                "shard_write_load=0.0, coordinating_and_primary_bytes=0, replica_bytes=0, all_bytes=0, "
                "primary_operation_bytes=4096, max_coordinating_and_primary_bytes=107374182]",
            )
        if self.refuse_item is not None and self.refuse_item(doc):
            return refused(
                400,
                "mapper_parsing_exception",
                f"failed to parse field [message] of type [long] in document with id '{doc_id}'. "
                f"Preview of field's value: '{str(doc.get('message'))[:20]}'",
                caused_by={
                    "type": "illegal_argument_exception",
                    "reason": f'For input string: "{str(doc.get("message"))[:20]}"',
                },
            )
        mapping = self.mappings.setdefault(index, {})
        for path, value in _leaves(doc):
            if value is None:
                continue
            kind = _kind(value)
            known = mapping.setdefault(path, kind)
            if known != kind and {known, kind} != {"long", "float"}:
                return refused(
                    400,
                    "mapper_parsing_exception",
                    f"failed to parse field [{path}] of type [{known}] in document with id '{doc_id}'. "
                    f"Preview of field's value: '{str(value)[:20]}'",
                )
        self.docs.append((index, doc))
        self._seq += 1
        return {
            action: {
                "_index": index,
                "_id": doc_id,
                "_version": 1,
                "result": "created",
                "_shards": {"total": 2, "successful": 1, "failed": 0},
                "_seq_no": self._seq,
                "_primary_term": 1,
                "status": 201,
            }
        }

    def _is_data_stream(self, index: str) -> bool:
        known = self._data_streams.get(index)
        if known is None:
            known = self._data_streams[index] = any(_matches(index, p) for p in self.data_stream_patterns)
        return known

    def messages(self) -> list[Any]:
        return [doc.get("message") for _, doc in self.docs]


class _Malformed(Exception):
    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(reason)
        self.kind, self.reason = kind, reason


def _matches(name: str, pattern: str) -> bool:
    return re.fullmatch(re.escape(pattern).replace(r"\*", ".*"), name) is not None


def _filter(result: dict[str, Any], filter_path: str | None) -> dict[str, Any]:
    """``filter_path`` as Elasticsearch applies it, for the forms ``key`` and ``items.*.key``."""
    if not filter_path:
        return result
    top: set[str] = set()
    item_keys: set[str] = set()
    for pattern in filter_path.split(","):
        parts = pattern.split(".")
        if len(parts) == 1:
            top.add(parts[0])
        elif parts[0] == "items" and len(parts) == 3 and parts[1] == "*":
            item_keys.add(parts[2])
    out = {key: value for key, value in result.items() if key in top}
    if item_keys:
        out["items"] = [
            {action: {k: v for k, v in outcome.items() if k in item_keys} for action, outcome in item.items()}
            for item in result["items"]
        ]
    return out


@asynccontextmanager
async def serving(fake: FakeElasticsearch) -> AsyncIterator[str]:
    """Run ``fake`` on 127.0.0.1; yields its base URL."""
    runner = web.AppRunner(fake.app(), handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()
