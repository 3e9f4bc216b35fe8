"""Sentinel-2 products as they come (.SAFE folders and their .zip, L1C and L2A) through the engine,
Processing and the dock, giving the same maps as their true-colour images as GeoTIFFs."""

from __future__ import annotations

import shutil
import zipfile

import numpy as np
import pytest
import rasterio
from osgeo import gdal

from timeseg.cli import main


def product(folder, tci_tif, date: str, level: str, as_zip: bool):
    """A minimal product holding only its TCI (lossless JPEG 2000) where ESA puts it."""
    name = f"S2B_MSI{level}_{date}T103109_N0211_R108_T33UUU_{date}T124409.SAFE"
    granule = folder / name / "GRANULE" / f"L{level[-2:]}_T33UUU_A009668_{date}T103431" / "IMG_DATA"
    if level == "L2A":
        target = granule / "R10m" / f"T33UUU_{date}T103109_TCI_10m.jp2"
    else:
        target = granule / f"T33UUU_{date}T103109_TCI.jp2"
    target.parent.mkdir(parents=True)
    gdal.Translate(str(target), str(tci_tif), format="JP2OpenJPEG", creationOptions=["REVERSIBLE=YES",
                                                                                      "QUALITY=100"])
    if not as_zip:
        return folder / name
    archive = folder / name.replace(".SAFE", ".zip")
    with zipfile.ZipFile(archive, "w") as zipped:
        for path in (folder / name).rglob("*"):
            zipped.write(path, str(path.relative_to(folder)))
    shutil.rmtree(folder / name)
    return archive


@pytest.fixture(scope="module")
def products(small_scene, tmp_path_factory):
    """The three 2019 dates as products: an L1C .SAFE folder, an L2A .zip, an L1C .zip."""
    folder = tmp_path_factory.mktemp("products")
    kinds = (("L1C", False), ("L2A", True), ("L1C", True))
    made = []
    for tif, acquisition, (level, as_zip) in zip(small_scene.tci_paths[2019], small_scene.acquisitions[2019], kinds):
        made.append(product(folder, tif, acquisition.date.strftime("%Y%m%d"), level, as_zip))
    return made


def test_products_give_the_maps_of_their_images(products, small_scene, local_model, tmp_path, capsys):
    manifest = products[0] / "manifest.safe"  # a .SAFE folder given by its manifest, as a file dialog picks it
    manifest.write_text("<xfdu:XFDU/>")
    renamed = tmp_path / "download (1).zip"  # a zip renamed by the browser: its date is that of the .SAFE inside
    shutil.copy(products[2], renamed)
    assert main(["segment", "--model", str(local_model), "--output", str(tmp_path / "products"),
                 *map(str, [manifest, products[1], renamed])]) == 0
    dates = ", ".join(str(a.date) for a in small_scene.acquisitions[2019])
    assert f"3 dates ({dates})" in capsys.readouterr().out
    assert main(["segment", "--model", str(local_model), "--output", str(tmp_path / "tifs"),
                 *map(str, small_scene.tci_paths[2019])]) == 0
    with rasterio.open(tmp_path / "products" / "probability.tif") as a, \
            rasterio.open(tmp_path / "tifs" / "probability.tif") as b:
        assert a.transform == b.transform and a.crs == b.crs
        assert np.allclose(a.read(), b.read(), atol=1e-6, equal_nan=True)


def test_a_product_without_a_true_colour_image_is_refused(tmp_path, local_model, small_scene, capsys):
    empty = tmp_path / "S2A_MSIL1C_20190105T103431_N0207_R108_T33UUU_20190105T123408.SAFE"
    (empty / "GRANULE").mkdir(parents=True)
    assert main(["segment", "--model", str(local_model), "--output", str(tmp_path / "o"), str(empty)]) == 1
    assert "holds no images" in capsys.readouterr().err
    broken = tmp_path / "S2A_MSIL2A_20190105T103431_N0207_R108_T33UUU_20190105T123408.zip"
    broken.write_text("not a zip")
    assert main(["segment", "--model", str(local_model), "--output", str(tmp_path / "o"), str(broken)]) == 1
    assert "is not a readable zip: download the product again" in capsys.readouterr().err
    # a download damaged inside its image (the zip's directory intact): GDAL would read it without a word
    (tmp_path / "damaged").mkdir()
    zipped = product(tmp_path / "damaged", small_scene.tci_paths[2019][0], "20190105", "L2A", as_zip=True)
    data = bytearray(zipped.read_bytes())
    with zipfile.ZipFile(zipped) as archive:
        image = next(info for info in archive.infolist() if info.filename.endswith(".jp2"))
    middle = image.header_offset + 200 + image.compress_size // 2
    data[middle:middle + 64] = bytes(64)
    zipped.write_bytes(bytes(data))
    assert main(["segment", "--model", str(local_model), "--output", str(tmp_path / "o"), str(zipped)]) == 1
    assert (f"{zipped.name} is damaged (T33UUU_20190105T103109_TCI_10m.jp2 does not match its checksum): download "
            "the product again") in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_products_through_processing(products, small_scene, local_model, tmp_path, provider):
    import processing

    result = processing.run("timeseg:segment", {
        "PRODUCTS": ";".join(str(p) for p in products), "MODEL": str(local_model), "DEVICE": 1,
        "OUTPUT_PROBABILITY": str(tmp_path / "p.tif"), "OUTPUT_CLASSES": str(tmp_path / "c.tif")})
    with rasterio.open(result["OUTPUT_CLASSES"]) as classes, rasterio.open(small_scene.tci_paths[2019][0]) as tif:
        assert classes.transform == tif.transform
        assert classes.tags()["dates"] == ",".join(str(a.date) for a in small_scene.acquisitions[2019])


def test_products_added_in_the_dock(products, small_scene, local_model, qgis_iface, qgis_new_project, tmp_path):
    from qgis.core import QgsProject

    from tests_support import load_plugin_package

    plugin = load_plugin_package().classFactory(qgis_iface)
    plugin.initGui()
    plugin.toggle_dock(True)
    try:
        assert plugin.dock.add_products(products) == []
        chosen, undated = plugin.dock.table.checked_layers()
        assert undated == [] and sorted(layer.date for layer in chosen) == [a.date for a in
                                                                            small_scene.acquisitions[2019]]
        assert len(QgsProject.instance().mapLayers()) == 3
        # a renamed download, and one zipped again a folder deeper: named and dated by the .SAFE they hold
        zipped = products[1]
        renamed = tmp_path / "download.zip"
        shutil.copyfile(zipped, renamed)
        nested = tmp_path / "nested_download.zip"
        with zipfile.ZipFile(zipped) as source, zipfile.ZipFile(nested, "w") as target:
            for info in source.infolist():
                target.writestr("downloads/" + info.filename, source.read(info))
        QgsProject.instance().removeAllMapLayers()
        assert plugin.dock.add_products([renamed, nested]) == []
        chosen, undated = plugin.dock.table.checked_layers()
        assert undated == [] and [layer.date for layer in chosen] == [small_scene.acquisitions[2019][1].date] * 2
        assert main(["segment", "--model", str(local_model), "--output", str(tmp_path / "nested"), str(nested),
                     str(products[0])]) == 0
        # a GeoTIFF is no product: said so, with what to do
        assert plugin.dock.add_products([small_scene.tci_paths[2019][0]]) == [
            f"{small_scene.tci_paths[2019][0].name} is not a Sentinel-2 product (a .SAFE folder or its .zip): add it "
            "as a raster layer"]
    finally:
        plugin.unload()


def band_product(folder, tci_tif, date: str, baseline: str = "N0211"):
    """An L2A product with B02 at 10 m, B05 at 20 m and B01 at 60 m (uint16 reflectance x 10000; from
    ``baseline`` N0400 on, plus ESA's offset of 1000, 0 where no data)."""
    name = f"S2B_MSIL2A_{date}T103109_{baseline}_R108_T33UUU_{date}T124409.SAFE"
    images = folder / name / "GRANULE" / f"L2A_T33UUU_A009668_{date}T103431" / "IMG_DATA"
    with rasterio.open(tci_tif) as source:
        data, profile = source.read(1).astype(np.uint16) * 40, source.profile
    if baseline >= "N0400":
        data = np.where(data > 0, data + 1000, 0).astype(np.uint16)
    for band, metres in (("B02", 10), ("B05", 20), ("B01", 60)):
        step = metres // 10
        target = images / f"R{metres}m" / f"T33UUU_{date}T103109_{band}_{metres}m.jp2"
        target.parent.mkdir(parents=True, exist_ok=True)
        transform = profile["transform"] * rasterio.Affine.scale(step)
        tif = folder / f"{band}_{date}.tif"
        with rasterio.open(tif, "w", driver="GTiff", width=data.shape[1] // step, height=data.shape[0] // step,
                           count=1, dtype="uint16", crs=profile["crs"], transform=transform) as out:
            out.write(data[::step, ::step][None])
        gdal.Translate(str(target), str(tif), format="JP2OpenJPEG", creationOptions=["REVERSIBLE=YES",
                                                                                      "QUALITY=100"])
    return folder / name


def test_a_multi_band_model_takes_its_bands_from_the_products(small_scene, local_model, tmp_path, capsys):
    """A model of bands B02, B05, B01 (uint16) reads them from L2A products, each from its finest file,
    stacked and resampled to 10 m on the fly."""
    import json as json_module

    import onnx

    from timeseg.core.sentinel2 import product_source

    model = onnx.load(str(local_model))
    card = {p.key: p.value for p in model.metadata_props}
    card.update(bands=json_module.dumps(["B02", "B05", "B01"]), input_dtype=json_module.dumps("uint16"),
                input_scale=json_module.dumps(1e-4))
    del model.metadata_props[:]
    for key, value in card.items():
        model.metadata_props.add(key=key, value=value)
    onnx.save(model, str(tmp_path / "bands.onnx"))
    products = [band_product(tmp_path, tif, a.date.strftime("%Y%m%d"))
                for tif, a in zip(small_scene.tci_paths[2019][:2], small_scene.acquisitions[2019][:2])]
    with rasterio.open(product_source(products[0], ["B02", "B05", "B01"], "uint16")) as stacked, \
            rasterio.open(small_scene.tci_paths[2019][0]) as tif:
        assert stacked.count == 3 and stacked.res == (10.0, 10.0) and stacked.bounds == tif.bounds
        assert stacked.dtypes[0] == "uint16"
        assert np.array_equal(stacked.read(1), tif.read(1).astype(np.uint16) * 40)  # B02 as it is
    assert main(["segment", "--model", str(tmp_path / "bands.onnx"), "--output", str(tmp_path / "out"),
                 *map(str, products)]) == 0
    assert "2 dates" in capsys.readouterr().out
    # a true-colour GeoTIFF among the products: the message names the product, not the bands' VRT made of it
    tif = small_scene.tci_paths[2019][2]
    assert main(["segment", "--model", str(tmp_path / "bands.onnx"), "--output", str(tmp_path / "mixed"),
                 *map(str, products), str(tif)]) == 1
    err = capsys.readouterr().err
    assert f"{tif.name} names its bands B04, B03, B02; the model needs B02, B05, B01" in err and ".vrt" not in err
    with pytest.raises(Exception, match="has no band B10"):
        product_source(products[0], ["B02", "B10", "B01"], "uint16")
    # processed from 2022 on (baseline 04.00): the same reflectance once ESA's offset is taken off; bands named
    newer = band_product(tmp_path / "newer", small_scene.tci_paths[2019][0], small_scene.acquisitions[2019][0]
                         .date.strftime("%Y%m%d"), "N0400")
    with rasterio.open(product_source(products[0], ["B02", "B05", "B01"], "uint16")) as older, \
            rasterio.open(product_source(newer, ["B02", "B05", "B01"], "uint16")) as offset:
        assert np.array_equal(offset.read(), older.read()) and offset.dtypes[0] == "uint16"
        assert offset.descriptions == older.descriptions == ("B02", "B05", "B01")
    assert main(["segment", "--model", str(tmp_path / "bands.onnx"), "--output", str(tmp_path / "newer_out"),
                 str(newer), str(products[1])]) == 0
    assert "name no bands" not in capsys.readouterr().err


def _metadata(product_folder, level: str, offset: int | None) -> None:
    """ESA's product metadata file at the top of the ``.SAFE``, declaring ``offset`` (-1000 from baseline 04.00)
    for every band, or no offset."""
    tag, listing = ("RADIO_ADD_OFFSET", "Radiometric_Offset_List") if level == "L1C" else \
        ("BOA_ADD_OFFSET", "BOA_ADD_OFFSET_VALUES_LIST")
    rows = "".join(f'<{tag} band_id="{band}">{offset}</{tag}>' for band in range(13)) if offset is not None else ""
    (product_folder / f"MTD_MSI{level}.xml").write_text(
        f'<?xml version="1.0" encoding="UTF-8"?><n1:Level-{level[1:]}_User_Product><n1:General_Info>'
        f"<Product_Image_Characteristics><{listing}>{rows}</{listing}></Product_Image_Characteristics>"
        "</n1:General_Info></n1:Level-{level[1:]}_User_Product>")


def test_products_as_mirrors_and_archives_name_and_pack_them(small_scene, tmp_path):
    """Found by a QA round on products as downloaded:
    - two products of one file name in two folders each read their own bands (both read the last one's VRT);
    - baseline 04.00's offset as the metadata declares it, in a product renamed without '_N0400_' (it was read
      with the offset in: 62 % of a crop map's pixels differed);
    - the date of the .SAFE a zip holds, not of the zip's name (a mirror's or another product's);
    - a long name of before December 2016 dated by its sensing date (_V...), not its processing date;
    - a zip whose top folder is not named .SAFE, or with the product's files at its top ("no true-colour image")."""
    from timeseg.core.sentinel2 import baseline_offset, product_date, product_source

    tif = small_scene.tci_paths[2019][0]
    date = small_scene.acquisitions[2019][0].date.strftime("%Y%m%d")
    first, second = tmp_path / "a", tmp_path / "b"
    made = [band_product(first, tif, date), band_product(second, small_scene.tci_paths[2019][1], date)]
    renamed = []
    for folder, made_product in zip((first, second), made):
        archive = folder / "product.zip"
        with zipfile.ZipFile(archive, "w") as zipped:
            for path in made_product.rglob("*"):
                zipped.write(path, str(path.relative_to(folder)))
        renamed.append(archive)
    sources = [product_source(archive, ["B02", "B05", "B01"], "uint16") for archive in renamed]  # as a run does
    stacks = []
    for source in sources:
        with rasterio.open(source) as stacked:
            stacks.append(stacked.read(1))
    with rasterio.open(small_scene.tci_paths[2019][1]) as other:
        assert np.array_equal(stacks[1], other.read(1).astype(np.uint16) * 40)
    assert not np.array_equal(stacks[0], stacks[1])
    # the offset as declared: a baseline 04.00 product whose name lost its baseline
    newer = band_product(tmp_path / "newer", tif, date, "N0400")
    plain = newer.with_name(newer.name.replace("_N0400", ""))
    newer.rename(plain)
    assert baseline_offset(plain) == 0  # its name says nothing
    _metadata(plain, "L2A", -1000)
    assert baseline_offset(plain) == 1000
    with rasterio.open(product_source(plain, ["B02"], "uint16")) as declared, \
            rasterio.open(product_source(made[0], ["B02"], "uint16")) as older:
        assert np.array_equal(declared.read(), older.read())
    _metadata(plain, "L2A", None)  # a product before 04.00 whose metadata declares no offset
    assert baseline_offset(plain.with_name(plain.name)) == 0
    # dates: a zip named by a mirror with another date, and a long name of 2016
    mirrored = tmp_path / "S2A_MSIL2A_20240105T000000_N0500_R108_T33UUU_20240105T000000.zip"
    shutil.copy(renamed[0], mirrored)
    assert str(product_date(mirrored)) == small_scene.acquisitions[2019][0].date.isoformat()
    old = "S2A_OPER_PRD_MSIL1C_PDMC_20161226T160311_R022_V20151205T103402_20151205T103402.SAFE"
    assert str(product_date(tmp_path / old)) == "2015-12-05"
    # a zip of the product's folder named otherwise, and one of its files at the top
    tci_product = product(tmp_path / "tci", tif, date, "L1C", as_zip=False)
    for top in ("S2B_MSIL1C_" + date + "_unpacked", ""):
        archive = tmp_path / f"layout{len(top)}_{date}.zip"
        with zipfile.ZipFile(archive, "w") as zipped:
            for path in tci_product.rglob("*"):
                inside = path.relative_to(tci_product)
                zipped.write(path, f"{top}/{inside}" if top else str(inside))
        with rasterio.open(product_source(archive, ["B04", "B03", "B02"], "uint8")) as read, \
                rasterio.open(tif) as expected:
            assert np.array_equal(read.read(), expected.read())


def test_products_read_with_gdal_exceptions_on(small_scene, tmp_path):
    """Many QGIS plugins turn GDAL's Python exceptions on (GDAL 4 does by default): a band model's product
    raised 'unknown error occurred' on the command line, and aborted QGIS from the dock."""
    from timeseg.core.sentinel2 import product_source

    made = band_product(tmp_path, small_scene.tci_paths[2019][0],
                        small_scene.acquisitions[2019][0].date.strftime("%Y%m%d"))
    was = gdal.GetUseExceptions()
    gdal.UseExceptions()
    try:
        with rasterio.open(product_source(made, ["B02", "B05", "B01"], "uint16")) as stacked:
            assert stacked.count == 3
    finally:
        if not was:
            gdal.DontUseExceptions()


def test_a_product_without_its_true_colour_image_is_read_from_its_bands(small_scene, local_model, tmp_path,
                                                                        capsys):
    """A product without a TCI (some mirrors leave it out) gave "holds no true-colour image ... give an L1C or
    L2A product": its B04, B03, B02 are read and made true colour as ESA makes it, the map as of its TCI."""
    from timeseg.core.true_colour import TCI_SATURATION

    tif = small_scene.tci_paths[2019][0]
    date = small_scene.acquisitions[2019][0].date.strftime("%Y%m%d")
    name = f"S2B_MSIL1C_{date}T103109_N0211_R108_T33UUU_{date}T124409.SAFE"
    images = tmp_path / name / "GRANULE" / f"L1C_T33UUU_A009668_{date}T103431" / "IMG_DATA"
    images.mkdir(parents=True)
    with rasterio.open(tif) as source:
        tci, profile = source.read(), source.profile
    # reflectance x 10000 whose true colour (0..0.3558 -> 1..255) is the TCI's values
    reflectance = np.rint(tci.astype(np.float64) / 255 * TCI_SATURATION * 1e4).astype(np.uint16)
    for band, values in zip(("B04", "B03", "B02"), reflectance):
        band_tif = tmp_path / f"{band}.tif"
        profile.update(count=1, dtype="uint16", nodata=None)
        with rasterio.open(band_tif, "w", **profile) as out:
            out.write(values[None])
        gdal.Translate(str(images / f"T33UUU_{date}T103109_{band}.jp2"), str(band_tif), format="JP2OpenJPEG",
                       creationOptions=["REVERSIBLE=YES", "QUALITY=100"])
    second = str(small_scene.tci_paths[2019][1])  # the test model reads two dates at least
    for source, out in ((tmp_path / name, "bands"), (tif, "tci")):
        assert main(["segment", "--model", str(local_model), "--output", str(tmp_path / out), "--precision", "fp32",
                     str(source), second]) == 0, capsys.readouterr().err
    with rasterio.open(tmp_path / "bands" / "classes.tif") as a, rasterio.open(tmp_path / "tci" / "classes.tif") as b:
        assert a.transform == b.transform and (a.read() == b.read()).mean() > 0.99


def several_granules(tif, folder):
    """A product of before December 2016 whose two granules hold the left and right halves of ``tif``."""
    name = "S2A_OPER_PRD_MSIL1C_PDMC_20161226T160311_R022_V20151205T103402_20151205T103402.SAFE"
    with rasterio.open(tif) as source:
        width = source.width
    for index, (offset, size) in enumerate(((0, width // 2), (width // 2, width - width // 2))):
        images = folder / name / "GRANULE" / f"S2A_OPER_MSI_L1C_TL_SGS__20161226T120000_A00238{index}_T33UU{index}" \
            / "IMG_DATA"
        images.mkdir(parents=True)
        gdal.Translate(str(images / f"S2A_OPER_MSI_L1C_TL_SGS__20161226T120000_A00238{index}_T33UU{index}_TCI.jp2"),
                       str(tif), format="JP2OpenJPEG", srcWin=[offset, 0, size, width],
                       creationOptions=["REVERSIBLE=YES", "QUALITY=100"])
    return folder / name


def test_a_product_of_several_granules_is_read_as_their_mosaic(small_scene, tmp_path):
    """A product of before December 2016 holds several granules: only the first was read (the others dropped
    without a word); now their mosaic."""
    from timeseg.core.sentinel2 import true_colour_path

    tif = small_scene.tci_paths[2019][0]
    with rasterio.open(true_colour_path(several_granules(tif, tmp_path))) as mosaic, rasterio.open(tif) as whole:
        assert mosaic.bounds == whole.bounds and np.array_equal(mosaic.read(), whole.read())


def test_a_product_of_several_granules_added_in_the_dock_is_found_again_by_its_saved_project(
        small_scene, qgis_iface, qgis_new_project, tmp_path):
    """Its layer showed a mosaic in GDAL's memory, which a project saved and opened again no longer found."""
    from qgis.core import QgsProject

    from tests_support import load_plugin_package

    tif = small_scene.tci_paths[2019][0]
    plugin = load_plugin_package().classFactory(qgis_iface)
    plugin.initGui()
    plugin.toggle_dock(True)
    try:
        assert plugin.dock.add_products([several_granules(tif, tmp_path)]) == []
        project = QgsProject.instance()
        assert project.write(str(tmp_path / "granules.qgz"))
        project.clear()
        assert project.read(str(tmp_path / "granules.qgz"))
        (layer,) = project.mapLayers().values()
        assert layer.isValid() and not layer.source().startswith("/vsimem"), layer.source()
        with rasterio.open(layer.source()) as mosaic, rasterio.open(tif) as whole:
            assert np.array_equal(mosaic.read(), whole.read())
        chosen, undated = plugin.dock.table.checked_layers()
        assert undated == [] and [layer.date.isoformat() for layer in chosen] == ["2015-12-05"]
    finally:
        plugin.unload()


def test_two_tiles_of_one_pass_are_told_apart_as_products(small_scene, local_model, tmp_path, capsys):
    """Two products of one date (two MGRS tiles of one pass): "mosaic them first" could not be done to a product;
    the refusal says to run the tiles apart."""
    date = small_scene.acquisitions[2019][0].date.strftime("%Y%m%d")
    one = product(tmp_path, small_scene.tci_paths[2019][0], date, "L1C", as_zip=False)
    other = one.with_name(one.name.replace("T33UUU", "T33UVU"))
    shutil.copytree(one, other)
    assert main(["segment", "--model", str(local_model), "--output", str(tmp_path / "o"), str(one), str(other)]) == 1
    assert "two tiles of one pass, which a run maps apart: give the products of one tile" in capsys.readouterr().err


def test_a_zip_of_two_products_is_refused_and_a_stray_granule_folder_is_not_read(small_scene, tmp_path):
    """A zip of two products was read as a mosaic of both dates, and a stray GRANULE folder elsewhere in a zip
    as part of the product (the image of another date on top)."""
    from timeseg.core.sentinel2 import ProductError, true_colour_path

    acquisitions, tifs = small_scene.acquisitions[2019], small_scene.tci_paths[2019]
    first = product(tmp_path / "a", tifs[0], acquisitions[0].date.strftime("%Y%m%d"), "L1C", as_zip=False)
    second = product(tmp_path / "b", tifs[1], acquisitions[1].date.strftime("%Y%m%d"), "L1C", as_zip=False)
    for made in (first, second):
        (made / "MTD_MSIL1C.xml").write_text("<n1:Level-1C_User_Product/>")
    both, stray = tmp_path / "two_products.zip", tmp_path / f"S2B_MSIL1C_{acquisitions[0].date:%Y%m%d}_stray.zip"
    with zipfile.ZipFile(both, "w") as zipped:
        for made in (first, second):
            for path in made.rglob("*"):
                zipped.write(path, str(path.relative_to(made.parent)))
    with zipfile.ZipFile(stray, "w") as zipped:
        for path in first.rglob("*"):
            zipped.write(path, str(path.relative_to(first.parent)))
        for path in (second / "GRANULE").rglob("*"):
            zipped.write(path, f"extras/old/{path.relative_to(second)}")
    with pytest.raises(ProductError, match="two_products.zip holds 2 products .*: give one product per file"):
        true_colour_path(both)
    with rasterio.open(true_colour_path(stray)) as read, rasterio.open(tifs[0]) as own:
        assert np.array_equal(read.read(), own.read())


def test_a_deepness_model_reads_a_products_true_colour_image(small_scene, tmp_path, capsys):
    """A Deepness model (three unnamed 8-bit bands) given products: 'has no band band 1 ... download it again'
    of intact products; it reads their TCI, as the same image given as a GeoTIFF."""
    from test_deepness import BIAS, WEIGHTS, deepness_model

    model = deepness_model(tmp_path / "water.onnx", WEIGHTS, BIAS, {"0": "water"}, "Sigmoid")
    tif = small_scene.tci_paths[2019][0]
    made = product(tmp_path, tif, small_scene.acquisitions[2019][0].date.strftime("%Y%m%d"), "L2A", as_zip=True)
    for source, out in ((made, "product"), (tif, "tif")):
        assert main(["segment", "--model", str(model), "--output", str(tmp_path / out), "--precision", "fp32",
                     str(source)]) == 0, capsys.readouterr().err
    with rasterio.open(tmp_path / "product" / "probability.tif") as a, rasterio.open(tmp_path / "tif" /
                                                                                      "probability.tif") as b:
        assert np.array_equal(a.read(), b.read(), equal_nan=True)
