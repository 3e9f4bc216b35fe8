"""Sentinel-2-like scene simulator: the project's test, demo and training data.

Numpy, scipy, rasterio and GDAL's OGR only (no torch), so the engine's tests can use it.
"""

from models.simulator.scene import SimulatedScene, simulate_scene

__all__ = ["SimulatedScene", "simulate_scene"]
