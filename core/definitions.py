"""Names and limits that the engine, the dock, Processing and the command line share.

Standard library only: the dock imports this when QGIS starts, before it knows whether
rasterio and onnxruntime are installed.
"""

DEVICES = ("auto", "cpu", "cuda")
DEVICE_WORDS = {"auto": "Auto", "cpu": "CPU", "cuda": "GPU (CUDA)"}
DATE_SELECTIONS = ("auto", "all", "last", "even")
MIN_TILE_SIZE, MAX_TILE_SIZE = 32, 2048  # pixels; onnxruntime's memory grows with the square of the tile
PROBABILITY_NAME = "probability.tif"
CLASSES_NAME = "classes.tif"
