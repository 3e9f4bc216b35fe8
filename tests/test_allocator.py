"""The command line limits glibc's allocator to two arenas, so that what one thread frees serves the next."""

import os
import subprocess
import sys

import pytest

from timeseg.cli import main
from timeseg.core.model_card import SHIPPED_ROAD_MODEL

CROPS_MODEL = SHIPPED_ROAD_MODEL.with_name("crops.onnx")
LINUX_ONLY = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator: Linux only")

# In a fresh process: six threads allocate at once, each holding its arrays until all have; then glibc
# lists its arenas (malloc_stats writes one "Arena N:" block per arena to stderr).
THREADS_ALLOCATING = """
import ctypes
import sys
import threading

import numpy as np

from timeseg.core.allocator import tune_allocator

if sys.argv[1] == "tuned":
    assert tune_allocator()
together = threading.Barrier(6)

def allocate() -> None:
    held = [np.ones(8192, np.uint8) for _ in range(64)]
    together.wait()
    together.wait()

threads = [threading.Thread(target=allocate) for _ in range(6)]
for thread in threads:
    thread.start()
ctypes.CDLL("libc.so.6").malloc_stats()
for thread in threads:
    thread.join()
"""


def _arenas(mode: str) -> int:
    environment = {key: value for key, value in os.environ.items() if key != "MALLOC_ARENA_MAX"}
    done = subprocess.run([sys.executable, "-c", THREADS_ALLOCATING, mode], env=environment, capture_output=True,
                          text=True, check=True, timeout=60)
    return done.stderr.count("Arena ")


@LINUX_ONLY
def test_threads_share_two_arenas_once_the_allocator_is_tuned():
    assert _arenas("tuned") == 2
    assert _arenas("as glibc starts") > 2  # one per thread that allocates: what the engine's threads kept


@LINUX_ONLY
def test_the_command_line_tunes_the_allocator_for_itself_and_its_workers(monkeypatch):
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    assert main(["info", str(CROPS_MODEL)]) == 0
    assert os.environ["MALLOC_ARENA_MAX"] == "2"  # what timeseg batch's worker processes read at start
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")  # the user's own setting wins
    assert main(["info", str(CROPS_MODEL)]) == 0
    assert os.environ["MALLOC_ARENA_MAX"] == "4"
