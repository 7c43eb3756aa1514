"""How the C library's allocator keeps memory between the chunks of a job."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

#: ``mallopt`` parameters (glibc's malloc.h).
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
#: Blocks up to this size come from the heap, where freed memory is used again.
MMAP_THRESHOLD = 256 * 2**20
#: Free memory at the top of the heap is handed back to the system only beyond this.
TRIM_THRESHOLD = 2**30
#: Environment variables by which a user tunes glibc's allocator; set, they are left to rule.
MALLOC_VARIABLES = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "GLIBC_TUNABLES")


def keep_freed_memory() -> bool:
    """Have the C library keep the memory the job frees for its next chunk; True if set.

    glibc serves a block of 32 MiB and more (less, at first) with its own mapping and unmaps
    it when freed, so every chunk's large arrays (pandas' blocks, numpy's temporaries of 40,000
    households' months) are new pages the system must zero again: scoring 100,000 households
    took 1.6 million page faults. Served from the heap and kept, they are reused: the same score
    took 8–12% less wall and CPU time, and about 0.1 GB more resident memory (the memory held
    stays near the peak, which the job reaches anyway; docs/operations.md). Does nothing on
    another C library or system, or where one of :data:`MALLOC_VARIABLES` is set. The command
    line calls this before any job; forked workers inherit it.

    Examples
    --------
    >>> keep_freed_memory() in {True, False}
    True
    """
    if not sys.platform.startswith("linux") or any(os.environ.get(v) for v in MALLOC_VARIABLES):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)
                and mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
