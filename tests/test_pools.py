"""nodeagent.pools: bounded daemon-thread pools, one per job, that a stuck call cannot take over."""

from __future__ import annotations

import asyncio
import gc
import threading
import time
import weakref

from nodeagent.pools import SHUTDOWN_WAIT_SECONDS, BoundedPool


def test_at_most_size_calls_run_at_once() -> None:
    pool = BoundedPool("t", 2)
    running = 0
    peak = 0
    lock = threading.Lock()

    def call() -> None:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(0.02)
        with lock:
            running -= 1

    for future in [pool.submit(call) for _ in range(10)]:
        future.result(5)
    assert peak == 2
    pool.shutdown()


def test_an_abandoned_call_is_replaced_and_its_thread_leaves_when_it_returns() -> None:
    pool = BoundedPool("t", 1, max_abandoned=1)
    release = threading.Event()
    stuck = pool.submit(release.wait, 30)
    time.sleep(0.05)
    assert pool.abandon(stuck)
    assert pool.submit(lambda: "served").result(5) == "served"  # the replacement worker
    assert pool.stalled_for() > 0  # the stuck call still counts
    release.set()
    assert stuck.result(5) is True
    deadline = time.monotonic() + 5
    while pool.stalled_for() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert pool.stalled_for() == 0
    pool.shutdown()


def test_abandoned_calls_beyond_the_bound_get_no_replacement() -> None:
    pool = BoundedPool("t", 1, max_abandoned=0)
    release = threading.Event()
    stuck = pool.submit(release.wait, 30)
    time.sleep(0.05)
    assert not pool.abandon(stuck)
    queued = pool.submit(lambda: "later")
    time.sleep(0.1)
    assert not queued.done()  # no worker left until the stuck call returns
    release.set()
    assert queued.result(5) == "later"
    pool.shutdown()


def test_a_queued_call_is_cancelled_when_abandoned() -> None:
    pool = BoundedPool("t", 1)
    release = threading.Event()
    pool.submit(release.wait, 30)
    queued = pool.submit(lambda: "never")
    assert pool.abandon(queued) and queued.cancelled()
    release.set()
    pool.shutdown()


def test_shutdown_never_waits_for_a_stuck_call_and_threads_are_daemons() -> None:
    pool = BoundedPool("t", 1)
    release = threading.Event()
    pool.submit(release.wait, 30)
    time.sleep(0.05)
    assert all(t.daemon for t in threading.enumerate() if t.name == "nodeagent-t")
    started = time.monotonic()
    pool.shutdown(wait=True)
    assert time.monotonic() - started < SHUTDOWN_WAIT_SECONDS + 1
    release.set()


def test_it_serves_as_the_loops_default_executor() -> None:
    pool = BoundedPool("loop", 2)

    async def main() -> str:
        asyncio.get_running_loop().set_default_executor(pool)
        return await asyncio.to_thread(lambda: threading.current_thread().name)

    assert asyncio.run(main()) == "nodeagent-loop"


def test_an_idle_worker_keeps_nothing_of_its_last_call() -> None:
    # A worker waits for its next call for a long time: the last one's argument and result (a checkpoint
    # snapshot, a scan's listing) must be freed meanwhile, not kept until then.
    class Big:
        pass

    pool = BoundedPool("t", 1)
    argument, produced = Big(), []

    def call(arg: Big) -> Big:
        produced.append(weakref.ref(result := Big()))
        return result

    pool.submit(call, argument).result(5)
    gone = weakref.ref(argument)
    del argument
    deadline = time.monotonic() + 5
    while (gone() is not None or produced[0]() is not None) and time.monotonic() < deadline:
        gc.collect()
        time.sleep(0.01)
    assert gone() is None and produced[0]() is None
    pool.shutdown()
