"""Sentinel-2-like scene simulator: the project's test, demo and training data.

Numpy, scipy, rasterio and GDAL's OGR only (no torch), so the engine's tests can use it.
"""

from .scene import SimulatedScene, simulate_scene

# Raise when the simulator's output changes: cached training scenes of another version are not reused.
SIMULATOR_VERSION = 4

__all__ = ["SIMULATOR_VERSION", "SimulatedScene", "simulate_scene"]
