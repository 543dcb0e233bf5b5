"""Give memory back to the system as soon as a mail is done with.

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

import ctypes
import ctypes.util
import logging

log = logging.getLogger(__name__)

M_MMAP_THRESHOLD = -3  # glibc's malloc.h
THRESHOLD = 256 * 1024


def release_large_blocks() -> bool:
    """Make blocks of 256 KB or more mappings of their own; True where that was done."""
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
