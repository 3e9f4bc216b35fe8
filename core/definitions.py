"""Names and limits that the engine, the dock, Processing and the command line share.

Standard library only: the dock imports this when QGIS starts, before it knows whether
rasterio and onnxruntime are installed.
"""

import re
from collections.abc import Sequence
from pathlib import Path

DEVICES = ("auto", "cpu", "cuda")
DEVICE_WORDS = {"auto": "Auto", "cpu": "CPU", "cuda": "GPU (CUDA)"}
DATE_SELECTIONS = ("auto", "all", "last", "even")
# auto: on a CPU that computes bfloat16 (AMX, AVX-512 BF16) with OpenVINO installed bf16, on another CPU the int8
# variant, on a GPU the fp16 one, when they are beside the model; else fp32 (core.runtime.load_model)
PRECISIONS = ("auto", "fp32", "int8", "fp16", "bf16")
PRECISION_HELP = ("auto: bf16 (OpenVINO) on a CPU with AMX or AVX-512 BF16, else the model's int8 variant on the "
                  "CPU (fp16 on a GPU) when it is beside the model, else fp32")
ORIENTATIONS_HELP = ("average the map over N orientations of each tile: 8, its 4 quarter turns each also mirrored "
                     "(8 times the model's time; the road model's F1 on the real held-out areas 0.54 -> 0.57); 2, "
                     "the tile and its mirror image; 4, those and their half turns (default 1)")
SCALES_HELP = ("average the map over N scales of each tile: 3, the tile resampled to 0.75, 1 and 1.5 times its size "
               "(3.8 times the model's work; the road model's F1 on the real held-out areas 0.54 -> 0.56, about as "
               "with 8 orientations at half their time; the two do not add up) (default 1)")
PRECISION_WORDS = {"auto": "Auto", "fp32": "Full (fp32)", "int8": "Fast CPU (int8)", "fp16": "Fast GPU (fp16)",
                   "bf16": "Fast CPU with AMX (bf16)"}
MIN_TILE_SIZE, MAX_TILE_SIZE = 32, 2048  # pixels; onnxruntime's memory grows with the square of the tile
CHANGE_THRESHOLD = 0.5  # change maps from probability inputs: present from this probability
MIN_PATCH_PIXELS = 6  # change maps: new/removed patches under this many pixels are speckle
CHANGE_TOLERANCE_PX = 1  # change maps: the class within this many pixels in the other period is no change
PROBABILITY_NAME = "probability.tif"
CLASSES_NAME = "classes.tif"
OUTPUT_TAG = "timeseg_output"  # GeoTIFF tag of TimeSeg's own rasters: probability, classes or change
# GeoTIFF tags of the model that made a map: its file's name, and core.runtime.model_fingerprint
MODEL_TAG, MODEL_ID_TAG = "model", "model_sha256"
THRESHOLD_TAG = "threshold"  # a binary class map's: P from which a pixel is the class
# fitting a model to an analyst's area (models.fine_tune): single-date epochs at most (64 patches each; the
# sequence stage runs a third) and the time budget, which ends the run first on 2 cores (about 190 epochs);
# what make fine-tune-check measures; 10 epochs (27 s) gained 25-80 % as much on the real scenes (docs/models.md)
FINE_TUNE_EPOCHS = 200
FINE_TUNE_MINUTES = 5.0


FOLDER_NAME_BYTES = 100  # of UTF-8: file systems allow 255 a name, and the outputs' own names follow


def folder_name(text: str) -> str:
    """``text`` as one safe folder name: '2015/16' -> '2015-16', letters of any script kept with their marks
    ('秋', 'मार्च', 'Été' typed decomposed), no '..', no leading dot or dash, at most ``FOLDER_NAME_BYTES``."""
    import unicodedata

    kept = "".join(c if c.isalnum() or c in "_.-" or unicodedata.category(c).startswith("M") else " "
                   for c in unicodedata.normalize("NFC", text.strip()))
    name = re.sub(r"\s+", "-", kept.strip()).replace("..", "-").strip(".-")
    name = name.encode()[:FOLDER_NAME_BYTES].decode(errors="ignore").strip(".-")
    return name or "period"


def counted(count: int, noun: str) -> str:
    """``1 date``, ``2 dates``: a count and its noun (plural with an s)."""
    return f"{count} {noun}{'s' * (count != 1)}"


def listed(files: Sequence[str]) -> str:
    """``a.tif``, ``a.tif and b.tif``, ``a.tif, b.tif, c.tif and d.tif``; from five ``a.tif, b.tif, c.tif and
    2 more``."""
    if len(files) <= 4:
        return " and ".join([", ".join(files[:-1]), files[-1]] if len(files) > 1 else files)
    return f"{', '.join(files[:3])} and {len(files) - 3} more"


def device_words(provider: str) -> str:
    """An onnxruntime execution provider in plain words: CPU or GPU (CUDA)."""
    return DEVICE_WORDS["cuda" if provider == "CUDAExecutionProvider" else "cpu"]

# The runtime's pins, as requirements.txt and requirements-gpu.txt give them (tests/test_plugin.py checks they
# agree): the plugin's installer and the messages that say what to install
ONNXRUNTIME_PIN = "onnxruntime==1.32.0"
GPU_RUNTIME_PIN = "onnxruntime-gpu==1.31.1"
OPENVINO_PIN = "openvino==2026.4.1"


# a member of an archive as GDAL names it, /vsizip//data/a.zip/b.tif: the archive's path ends at its extension
_ARCHIVE_MEMBER = re.compile(r"^/vsi(zip|tar|7z|rar)/(/.+?\.(?:zip|kmz|tar|tgz|tar\.gz|7z|rar))(/.*)?$", re.IGNORECASE)
# a GDAL connection string: a raster inside a file of several (GPKG:/data/a.gpkg:table, NETCDF:"a.nc":var)
# (two letters at least: not a Windows drive; no space after the colon: not a layer named "roads: 2019")
_CONNECTION = re.compile(r"^[A-Za-z][A-Za-z0-9_]+:\S")


def gdal_path(source: Path | str) -> Path:
    """A raster's path or GDAL source as a ``Path`` that still names it: an archive's member
    (``/vsizip//data/a.zip/b.tif``, which pathlib cuts to ``/vsizip/data/...``, a relative path) in GDAL's
    braces form, ``/vsizip/{/data/a.zip}/b.tif``."""
    text = str(source)
    member = _ARCHIVE_MEMBER.match(text)
    if member:
        text = f"/vsi{member.group(1)}/{{{member.group(2)}}}{member.group(3) or ''}"
    return Path(text)


_BRACED_MEMBER = re.compile(r"^/vsi(?:zip|tar|7z|rar)/\{(.+?)\}(?:/.*)?$", re.IGNORECASE)


def archive_of(source: Path | str) -> Path | None:
    """The archive a member is read from (``/vsizip//data/a.zip/b.tif`` or its braces form: ``/data/a.zip``),
    or None."""
    text = str(source)
    member = _BRACED_MEMBER.match(text) or _ARCHIVE_MEMBER.match(text)
    if member is None:
        return None
    return Path(member.group(1) if member.re is _BRACED_MEMBER else member.group(2))


def is_gdal_source(source: Path | str) -> bool:
    """A GDAL virtual path (``/vsizip/...``) or connection string (``GPKG:a.gpkg:table``), not a file's path."""
    text = str(source)
    return text.startswith("/vsi") or bool(_CONNECTION.match(text))
