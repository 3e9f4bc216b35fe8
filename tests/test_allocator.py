"""The command line sets glibc's allocator so that memory freed after use goes back to the system."""

import os
import subprocess
import sys

import pytest

from timeseg.cli import main
from timeseg.core.model_card import SHIPPED_ROAD_MODEL

CROPS_MODEL = SHIPPED_ROAD_MODEL.with_name("crops.onnx")

# In a fresh process: a first 4 MB block freed (glibc then serves blocks of that size from its heap, unless
# its threshold is fixed), then 64 such blocks, each followed by a small one that keeps the heap from
# shrinking, all freed: the memory given back is printed.
FREED_AFTER_USE = """
import sys
import numpy as np
from timeseg.core.allocator import tune_allocator

if sys.argv[1] == "tuned":
    assert tune_allocator()

def resident() -> int:
    return int(open("/proc/self/status").read().split("VmRSS:")[1].split()[0]) << 10

first = np.ones(4 << 20, np.uint8)
del first
blocks, small = [], []
for _ in range(64):
    blocks.append(np.ones(4 << 20, np.uint8))
    small.append(np.ones(2048, np.uint8))
before = resident()
del blocks
print((before - resident()) >> 20)
"""


def _megabytes_given_back(mode: str) -> int:
    environment = {key: value for key, value in os.environ.items() if not key.startswith("MALLOC_")}
    done = subprocess.run([sys.executable, "-c", FREED_AFTER_USE, mode], env=environment, capture_output=True,
                          text=True, check=True)
    return int(done.stdout.strip())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator: Linux only")
def test_freed_blocks_go_back_to_the_system_once_the_allocator_is_tuned():
    assert _megabytes_given_back("tuned") >= 200  # of 256 MB freed
    assert _megabytes_given_back("as glibc starts") < 64  # kept on the heap: why the engine tunes it


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator: Linux only")
def test_the_command_line_tunes_the_allocator_for_itself_and_its_workers(monkeypatch, capsys):
    for variable in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_ARENA_MAX"):
        monkeypatch.delenv(variable, raising=False)
    assert main(["info", str(CROPS_MODEL)]) == 0
    assert os.environ["MALLOC_MMAP_THRESHOLD_"] == str(128 << 10) and os.environ["MALLOC_ARENA_MAX"] == "2"
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")  # the user's own setting wins
    assert main(["info", str(CROPS_MODEL)]) == 0
    assert os.environ["MALLOC_ARENA_MAX"] == "4"
