"""Shared fixtures: small simulated scenes and tiny trained-free models."""

from __future__ import annotations

import os
import sys

import pytest

from tests_support import ROOT

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture(scope="session")
def small_scene(tmp_path_factory):
    """A 96 x 96 px scene, 3 dates per period, with reflectance bands."""
    from models.simulator import simulate_scene

    return simulate_scene(tmp_path_factory.mktemp("scene"), seed=3, size=96, dates_per_period=3,
                          write_reflectance=True)
