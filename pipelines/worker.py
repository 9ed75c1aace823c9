"""Settings every worker process applies to itself, once, in its first DoFn's setup.

Why here and not only in the driver: `driver.runner.tune_malloc` sets glibc's malloc parameters and Arrow's
memory pool in the driver's environment, which the local runner's worker processes inherit. Dataflow, Flink
and Spark start their workers from their own environment, so the worker memory figures in docs/scaling.md
did not carry over to them. `apply_worker_settings` gives a worker the same settings wherever it runs: glibc's
parameters through mallopt (they act on allocations from then on), and Arrow's default pool switched to the
system allocator unless the worker's environment names a pool. A value set in the worker's environment wins.
"""

from __future__ import annotations

import ctypes
import os

# glibc gives threads that allocate their own malloc arenas (up to 8 per core) and hands little of a freed
# arena back to the system. The DirectRunner's driver moves every shuffle on many gRPC threads, so its RSS grew
# with the crawl by fragmentation alone: 25,000 pages (40 files) peaked at 543 MiB, 378 MiB with 2 arenas
# (2,500 pages: 265 and 252). Two arenas per process, here and in the workers and children it starts.
MALLOC_ARENAS = "2"
# glibc also raises its mmap threshold each time a large block is freed (up to 32 MiB), after which
# large blocks (gRPC data chunks, decoded pages, Arrow buffers) come from the arenas and stay there when
# freed. A fixed 128 KiB threshold (glibc's starting value) keeps them in mmap, handed back on free, and trims
# the heap top at 128 KiB. The driver's Python objects grew only 100 -> 127 MiB from 2,500 to 25,000 pages
# (tracemalloc), while its RSS grew ~90 MiB. 25,000 pages / 40 files, largest process: driver 334-358 ->
# 297 MiB, SDK worker 473-487 -> 433 MiB. 2,500 pages: 246 -> 235 and 397 -> 379 MiB. No slower within the
# noise: 43.3 / 45.3 s vs 47.3 / 43.3 s at 2,500 pages. The extraction children do not inherit them
# (ingest.extract.Extractor): with them trafilatura ran ~9 % slower, and a child's memory is bounded anyway.
MALLOC_THRESHOLD = "131072"
_MALLOPT = (("MALLOC_ARENA_MAX", MALLOC_ARENAS, -8), ("MALLOC_MMAP_THRESHOLD_", MALLOC_THRESHOLD, -3),
            ("MALLOC_TRIM_THRESHOLD_", MALLOC_THRESHOLD, -1))  # (environment name, default, mallopt parameter)
# pyarrow's wheels allocate from mimalloc, which keeps freed pages for reuse. Writing a shard's 2,000-document
# row group took a worker's RSS up ~60-80 MiB and mimalloc kept most of it until the part was done. From
# glibc malloc (the "system" pool), with the fixed mmap threshold above, Arrow's large buffers are mmapped
# and handed back when freed: SDK worker peak at 25,000 pages / 4 files 429-448 -> 394-397 MiB. The
# variable is read when pyarrow is first imported, so it acts on the processes this run starts.
ARROW_POOL = ("ARROW_DEFAULT_MEMORY_POOL", "system")




def set_mallopt() -> bool:
    """glibc's arena cap and mmap/trim thresholds for this process, from the environment or the defaults
    above. False where libc is not glibc."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        for name, default, param in _MALLOPT:
            libc.mallopt(param, int(os.environ.get(name, default)))
    except (OSError, AttributeError, ValueError):
        return False
    return True


_applied: dict[str, object] | None = None


def apply_worker_settings() -> dict[str, object]:
    """Once per process: mallopt, and Arrow's default pool (ARROW_POOL) unless the environment names one.
    Returns what was applied (for tests and logs)."""
    global _applied
    if _applied is None:
        import pyarrow as pa

        malloc = set_mallopt()
        if ARROW_POOL[0] not in os.environ:
            pa.set_memory_pool(pa.system_memory_pool())
        _applied = {"mallopt": malloc, "arrow_pool": pa.default_memory_pool().backend_name}
    return _applied
