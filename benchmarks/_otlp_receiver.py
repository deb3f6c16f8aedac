"""A minimal OTLP/HTTP logs receiver for benchmarks/logs: decodes each request with the official protobuf
definitions and appends one line per log record's body to a file (so the benchmark counts records as it does
for the file sink). Not a test double: it checks nothing beyond decoding.

    python -m benchmarks._otlp_receiver PORT OUTPUT
"""

from __future__ import annotations

import sys

from aiohttp import web
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)


def app(output: str) -> web.Application:
    answer = ExportLogsServiceResponse().SerializeToString()
    handle = open(output, "ab", buffering=0)  # noqa: SIM115 - open for the process's life

    async def logs(request: web.Request) -> web.Response:
        message = ExportLogsServiceRequest.FromString(await request.read())
        bodies = [
            record.body.string_value + "\n"
            for resource in message.resource_logs
            for scope in resource.scope_logs
            for record in scope.log_records
        ]
        handle.write("".join(bodies).encode())
        return web.Response(body=answer, content_type="application/x-protobuf")

    application = web.Application(client_max_size=256 * 1024 * 1024)
    application.router.add_post("/v1/logs", logs)
    return application


if __name__ == "__main__":
    web.run_app(app(sys.argv[2]), host="127.0.0.1", port=int(sys.argv[1]), print=None)
