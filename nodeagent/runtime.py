"""Process-wide runtime tuning for the long-running agent, done once at start-up (``nodeagent run``).

The cyclic GC: everything alive once the agent listens (modules, settings, collectors, the application)
lives as long as the process, so it is frozen out of later collections; a scrape allocates tens of
thousands of short-lived, acyclic objects that reference counting frees, so a higher first threshold
spares most of the young-generation collections they would otherwise trigger (in-process GC time per
render 0.43 -> 0.17 ms when this was measured).
"""

from __future__ import annotations

import gc

GC_THRESHOLD = 10_000  # allocations between young-generation collections (CPython's default: 700)


def settle_after_startup() -> None:
    """Call once, when start-up is complete (the server listens, the jobs are built)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_THRESHOLD, *gc.get_threshold()[1:])
