"""The Processing algorithms, run through processing.run as the toolbox and qgis_process do."""

import numpy as np
import pytest
import rasterio

from tests_support import load_plugin_package


@pytest.fixture
def provider(qgis_processing, qgis_iface):
    from qgis.core import QgsApplication

    plugin = load_plugin_package().classFactory(qgis_iface)
    plugin.initGui()
    yield QgsApplication.processingRegistry().providerById("timeseg")
    plugin.unload()
    assert QgsApplication.processingRegistry().providerById("timeseg") is None


def test_provider_lists_its_algorithms(provider):
    assert sorted(a.id() for a in provider.algorithms()) == ["timeseg:batch", "timeseg:change", "timeseg:segment",
                                                          "timeseg:train"]
    segment = provider.algorithm("segment")
    names = [p.name() for p in segment.parameterDefinitions()]
    assert names == ["INPUT", "DATES", "MODEL", "DEVICE", "PRECISION", "TILE_SIZE", "OVERLAP", "OUTPUT_PROBABILITY",
                     "OUTPUT_CLASSES"]


def test_segment_then_change_through_processing_run(provider, local_model, small_scene, tmp_path):
    import processing

    results = {}
    for year in small_scene.years:
        results[year] = processing.run("timeseg:segment", {
            "INPUT": [str(p) for p in small_scene.tci_paths[year]],
            "MODEL": str(local_model), "DEVICE": 1, "TILE_SIZE": 0, "OVERLAP": -1,
            "OUTPUT_PROBABILITY": str(tmp_path / f"p{year}.tif"), "OUTPUT_CLASSES": str(tmp_path / f"c{year}.tif"),
        })
        with rasterio.open(results[year]["OUTPUT_PROBABILITY"]) as p, \
                rasterio.open(small_scene.tci_paths[year][0]) as ref:
            assert p.transform == ref.transform and p.crs == ref.crs
            assert np.nanmax(p.read(1)) <= 1
    change = processing.run("timeseg:change", {
        "BEFORE": results[2016]["OUTPUT_CLASSES"], "AFTER": results[2019]["OUTPUT_CLASSES"], "MIN_PATCH": 0,
        "OUTPUT": str(tmp_path / "change.tif")})
    with rasterio.open(change["OUTPUT"]) as dataset:
        assert set(np.unique(dataset.read(1))) <= {0, 1, 2, 255}
    assert (tmp_path / "change.json").is_file()


def test_segment_errors_become_processing_errors(provider, local_model, small_scene, tmp_path):
    import processing
    from qgis.core import QgsProcessingException

    with pytest.raises(QgsProcessingException, match="2 dates for 3 rasters"):
        processing.run("timeseg:segment", {
            "INPUT": [str(p) for p in small_scene.tci_paths[2019]], "DATES": "2019-01-01,2019-02-01",
            "MODEL": str(local_model), "OUTPUT_PROBABILITY": str(tmp_path / "p.tif"),
            "OUTPUT_CLASSES": str(tmp_path / "c.tif")})
