"""A minimal Elasticsearch ``_bulk`` receiver for benchmarks/logs: accepts every item, appends each source
line to a file (so the benchmark counts records as it does for the file sink) and answers as Elasticsearch
does with ``filter_path=errors,items.*.status,items.*.error``. Not a test double: it checks nothing, so
that what is measured is the agent.

    python -m benchmarks._bulk_receiver PORT OUTPUT
"""

from __future__ import annotations

import sys

from aiohttp import web

_ITEM = b'{"create":{"status":201}}'


def app(output: str) -> web.Application:
    handle = open(output, "ab", buffering=0)  # noqa: SIM115 - open for the process's life

    async def bulk(request: web.Request) -> web.Response:
        body = await request.read()  # aiohttp undoes Content-Encoding: gzip
        lines = body.split(b"\n")[:-1]
        sources = lines[1::2]
        handle.write(b"\n".join(sources) + b"\n" if sources else b"")
        answer = b'{"errors":false,"items":[' + b",".join([_ITEM] * len(sources)) + b"]}"
        return web.Response(body=answer, content_type="application/json")

    application = web.Application(client_max_size=256 * 1024 * 1024)
    application.router.add_post("/_bulk", bulk)
    return application


if __name__ == "__main__":
    web.run_app(app(sys.argv[2]), host="127.0.0.1", port=int(sys.argv[1]), print=None)
