"""Memory of a judging process: given back to the system early, and capped.

limit_memory caps what a judging process may map beyond what it holds when
it starts (the judge_memory setting), so that one mail cannot exhaust the
machine.

A mail's bytes, its decoded files and the parser's copies of them are
allocations of megabytes. glibc's malloc serves such a block from its own
heap once a block as big has been freed (its mmap threshold rises with each
free, up to 32 MB), and that heap rarely shrinks: a daemon that once read a
40 MB mail would hold the memory for good, each judging process its own
copy. Fixing the threshold keeps every block over it in a mapping of its
own, returned to the system when freed, at the cost of a page fault per
4 KB when one is filled. Elsewhere than glibc this does nothing.
"""

from __future__ import annotations

import logging
import os
import resource

log = logging.getLogger(__name__)

M_MMAP_THRESHOLD = -3  # glibc's malloc.h
THRESHOLD = 256 * 1024


def release_large_blocks() -> bool:
    """Make blocks of 256 KB or more mappings of their own; True where that was done."""
    import ctypes  # here: only a judging process or the daemon gives memory back
    import ctypes.util

    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, THRESHOLD))


def limit_memory(budget: int) -> None:
    """Allow ``budget`` bytes beyond what this process already maps (Linux /proc)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            fields = [int(f) for f in statm.read().split()]
    except (OSError, ValueError):  # not Linux: the time limit still holds
        return
    page = os.sysconf("SC_PAGE_SIZE")
    for limit, used in ((resource.RLIMIT_AS, fields[0]), (resource.RLIMIT_DATA, fields[5])):
        _soft, hard = resource.getrlimit(limit)
        wanted = used * page + budget
        if hard != resource.RLIM_INFINITY:
            wanted = min(wanted, hard)
        resource.setrlimit(limit, (wanted, hard))
