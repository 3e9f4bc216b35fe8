"""What the tests share: paths, the test model's card, loading the plugin package."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Card of the small random-weight test model (conftest.local_model).
TEST_CARD = {
    "architecture": "fcn_convlstm", "class_names": ["background", "road"], "bands": ["B04", "B03", "B02"],
    "input_scale": 1 / 255, "sequence_length": 3, "min_sequence_length": 2, "tile_size": 64,
    "tiles_overlap": 32, "resolution": 10.0, "threshold": 0.5, "trained_on": "random weights",
    "standardization_mean": [0.3, 0.3, 0.35], "standardization_std": [0.15, 0.12, 0.1],
}


def load_plugin_package():
    """The plugin package ``timeseg`` (installed into the venv by ``make setup``, as QGIS imports it)."""
    import timeseg

    return timeseg
