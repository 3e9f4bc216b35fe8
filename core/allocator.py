"""glibc's allocator set to two arenas, so that memory freed by one thread serves the next (Linux command line).

glibc gives each thread that allocates its own heap (arena), up to 8 per core: the reader, writer and
model threads each keep what they freed, and GDAL's decoded blocks (1 MB per band of a 1024 px JPEG 2000
block) churn through several of them. Two arenas took a full Sentinel-2 tile of 5 JPEG 2000 dates from
1.09 to 0.92 GB peak (README, Speed and memory), under the engine's 1 GB. Fixing glibc's mmap threshold
at 128 KiB as well gave 0.78 GB, but made runs up to 14 % slower (each tile's arrays mapped and
unmapped), so it is left to the user (``MALLOC_MMAP_THRESHOLD_``). Inside QGIS the allocator is QGIS's:
nothing is set.
"""

from __future__ import annotations

import ctypes
import os
import sys

M_ARENA_MAX = -8  # mallopt's parameter (malloc.h)
ARENA_VARIABLE = "MALLOC_ARENA_MAX"  # wins when set; child processes (timeseg batch's workers) read it at start
ARENAS = 2


def tune_allocator() -> bool:
    """Two glibc arenas for this process and the processes it starts, unless the environment sets
    ``MALLOC_ARENA_MAX``. False where the C library is not glibc."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):  # musl and other C libraries
        return False
    if ARENA_VARIABLE not in os.environ:
        mallopt(M_ARENA_MAX, ARENAS)
        os.environ[ARENA_VARIABLE] = str(ARENAS)
    return True
