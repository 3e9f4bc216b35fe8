"""Shared fixtures: small simulated scenes and tiny trained-free models."""

from __future__ import annotations

import os

import pytest

from tests_support import TEST_CARD

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture(scope="session")
def small_scene(tmp_path_factory):
    """A 96 x 96 px scene, 3 dates per period, with reflectance bands."""
    from timeseg.models.simulator import simulate_scene

    return simulate_scene(tmp_path_factory.mktemp("scene"), seed=3, size=96, dates_per_period=3,
                          write_reflectance=True)


@pytest.fixture(scope="session")
def local_model(tmp_path_factory):
    """Random weights; a one-level U-Net whose receptive field (8 px for 3 dates) fits in overlap/4."""
    import torch

    from timeseg.models.checkpoint import build_network, save_checkpoint
    from timeseg.models.export import export_checkpoint
    from timeseg.models.settings import NetworkConfig

    torch.manual_seed(3)
    config = NetworkConfig(depth=1, base_channels=4, hidden_channels=2)
    folder = tmp_path_factory.mktemp("model")
    save_checkpoint(folder / "model.pt", build_network(config), config, TEST_CARD, "final", 0, {})
    export_checkpoint(folder / "model.pt", folder / "local.onnx")
    return folder / "local.onnx"


@pytest.fixture
def provider(qgis_processing, qgis_iface):
    """The plugin loaded as QGIS loads it, for processing.run; unloaded (and its provider gone) after."""
    from qgis.core import QgsApplication

    from tests_support import load_plugin_package

    plugin = load_plugin_package().classFactory(qgis_iface)
    plugin.initGui()
    yield QgsApplication.processingRegistry().providerById("timeseg")
    plugin.unload()
    assert QgsApplication.processingRegistry().providerById("timeseg") is None

