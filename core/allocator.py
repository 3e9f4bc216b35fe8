"""glibc's allocator set so that freed memory goes back to the system (Linux command line only).

glibc serves a block above its mmap threshold with its own mapping, unmapped when freed, but each time
such a block is freed it raises the threshold to that block's size (up to 32 MB): from then on GDAL's
decoded blocks (3 MB for a 1024 px JPEG 2000 block of 3 bands) and the tiles' arrays come from the
heap, where what is freed mostly stays resident. It also gives each thread its own heap (arena). A
fixed threshold and two arenas took a full Sentinel-2 tile of 5 JPEG 2000 dates from 1.09 to 0.84 GB
peak in the same 315 s (README, Speed and memory). Inside QGIS the allocator is QGIS's: nothing is set.
"""

from __future__ import annotations

import ctypes
import os
import sys

M_MMAP_THRESHOLD = -3  # mallopt's parameters (malloc.h)
M_ARENA_MAX = -8
# the parameter, its environment variable (which wins, and which child processes such as timeseg batch's
# workers read at their start), and the value set
SETTINGS = ((M_MMAP_THRESHOLD, "MALLOC_MMAP_THRESHOLD_", 128 << 10), (M_ARENA_MAX, "MALLOC_ARENA_MAX", 2))


def tune_allocator() -> bool:
    """Fix glibc's mmap threshold at 128 KiB and its arenas at 2 for this process and the processes it
    starts, where the environment does not set them already. False where the C library is not glibc."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):  # musl and other C libraries
        return False
    for parameter, variable, value in SETTINGS:
        if variable not in os.environ:
            mallopt(parameter, value)
            os.environ[variable] = str(value)
    return True
