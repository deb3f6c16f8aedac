"""A minimal Fluentd forward receiver for benchmarks/logs: acknowledges each message's chunk and appends one
line per entry (the message's ``size`` option) to a file, so the benchmark counts records as it does for the
file sink. Not a test double: it checks nothing.

    python -m benchmarks._forward_receiver PORT OUTPUT
"""

from __future__ import annotations

import asyncio
import sys

import msgpack


async def serve(port: int, output: str) -> None:
    handle = open(output, "ab", buffering=0)  # noqa: SIM115 - open for the process's life

    async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        unpacker = msgpack.Unpacker(raw=False, max_buffer_size=64 << 20)
        while data := await reader.read(1 << 20):
            unpacker.feed(data)
            for message in unpacker:
                option = message[2] if len(message) > 2 else {}
                handle.write(b"\n" * option.get("size", 1))
                if "chunk" in option:
                    writer.write(msgpack.packb({"ack": option["chunk"]}))
        writer.close()

    async with await asyncio.start_server(connection, "127.0.0.1", port) as server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(serve(int(sys.argv[1]), sys.argv[2]))
