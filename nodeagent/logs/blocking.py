"""Where the log shipper's blocking calls run: the executor it was handed (its own bounded pool in the
agent, so a hung disk or FIFO elsewhere cannot starve it, nor it anything else), else the loop's
default executor."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any, TypeVar

_T = TypeVar("_T")


class Blocking:
    """``await blocking(fn, *args, **kwargs)``: ``fn`` in a worker thread of ``executor``."""

    def __init__(self, executor: Executor | None = None) -> None:
        self.executor = executor

    async def __call__(self, fn: Callable[..., _T], /, *args: Any, **kwargs: Any) -> _T:
        loop = asyncio.get_running_loop()
        if kwargs:
            return await loop.run_in_executor(self.executor, functools.partial(fn, *args, **kwargs))
        return await loop.run_in_executor(self.executor, fn, *args)


DEFAULT = Blocking()  # the loop's default executor
