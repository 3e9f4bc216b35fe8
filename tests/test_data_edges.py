"""Edges of the data drawn into training patches (models.data_edges): white and not valid beyond them."""

import numpy as np

from timeseg.core.raster_stack import DatedRaster
from timeseg.models.data_edges import beyond_edge, with_data_edge
from timeseg.models.dataset import OpenSite, SequencePatches, Site
from timeseg.models.labels import LabelSource


def _touches_border(mask: np.ndarray) -> bool:
    return bool(mask[0].any() or mask[-1].any() or mask[:, 0].any() or mask[:, -1].any())


def test_an_edge_cuts_off_a_border_strip_and_leaves_the_centre():
    whole_sides = set()
    for seed in range(200):
        beyond = beyond_edge(64, np.random.default_rng(seed))
        assert beyond.shape == (64, 64) and beyond.any() and _touches_border(beyond)
        assert not beyond[24:40, 24:40].any()  # the patch's centre always has data
        whole_sides.add(int(beyond[0].all()) + int(beyond[-1].all()) + int(beyond[:, 0].all())
                        + int(beyond[:, -1].all()))
    # an oblique swath's edge (no whole side), a raster's edge (one) and a raster's corner (two)
    assert whole_sides >= {0, 1, 2}


def test_every_band_reads_the_fill_beyond_the_edge_and_is_not_valid_there():
    pixels = np.random.default_rng(0).integers(20, 200, (3, 3, 48, 48)).astype(np.float32)
    valid = np.ones((3, 48, 48), bool)
    some_dates = False
    for seed in range(40):
        out, out_valid, cut = with_data_edge(pixels, valid, 255.0, np.random.default_rng(seed))
        assert out.dtype == pixels.dtype and cut.any()
        assert (out.transpose(1, 0, 2, 3)[:, cut] == 255).all()  # every band of every cut date
        np.testing.assert_array_equal(out.transpose(1, 0, 2, 3)[:, ~cut], pixels.transpose(1, 0, 2, 3)[:, ~cut])
        np.testing.assert_array_equal(out_valid, ~cut)
        ending = cut.any(axis=(1, 2))
        if not ending.all():
            some_dates = True
            assert ending.any()  # at least one date ends there
    assert some_dates  # other orbits: an edge that only some dates have


def test_training_patches_hold_edges_from_their_own_random_stream(small_scene):
    """With ``data_edges=1`` every random patch holds an edge: white in every date and band, left out of the loss;
    everything else is the very sample drawn without edges."""
    year = small_scene.years[1]
    rasters = tuple(DatedRaster(p, a.date) for p, a in zip(small_scene.tci_paths[year],
                                                             small_scene.acquisitions[year]))
    site = Site(rasters, LabelSource(small_scene.labels_path, "lines", f"roads_{year}", 3))
    with OpenSite(site) as opened:
        plain = SequencePatches([opened], patch_size=64, sequence_length=3, samples_per_epoch=12)
        edged = SequencePatches([opened], patch_size=64, sequence_length=3, samples_per_epoch=12, data_edges=1.0)
        white = plain.normalisation.apply(np.full((1, 1), plain.white))[0, 0]
        for index in range(12):
            a, b = plain[index], edged[index]
            images_a, images_b = a["images"].numpy(), b["images"].numpy()
            changed = (images_a != images_b).any(axis=1)  # [T, h, w]
            assert changed.any()
            assert (images_b.transpose(1, 0, 2, 3)[:, changed] == white).all()
            lost = a["valid"].numpy() & ~b["valid"].numpy()
            every_date = changed.all(axis=0)
            assert not (b["valid"].numpy() & every_date).any()  # no date has data there: no loss
            assert (lost <= every_date).all()
            kept = b["valid"].numpy()
            np.testing.assert_array_equal(a["labels"].numpy()[kept], b["labels"].numpy()[kept])
