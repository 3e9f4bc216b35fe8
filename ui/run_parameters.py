"""What the dock gathers before a run: plain data, copied out of the widgets and layers."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from ..core.change import ChangeOptions
from ..core.definitions import folder_name


@dataclass(frozen=True)
class DatedLayer:
    layer_id: str
    name: str
    path: Path
    date: dt.date | None  # None: a layer ticked alone, undated (``LayerTable.checked_layers``)
    period: str


@dataclass(frozen=True)
class RunParameters:
    """One click on Run segmentation: the ticked layers, the model and the options."""

    layers: tuple[DatedLayer, ...]
    model_path: Path
    output_dir: Path
    device: str = "auto"
    precision: str = "auto"
    orientations: int = 1
    scales: int = 1
    tile_size: int | None = None
    overlap: int | None = None
    add_probability: bool = True
    change: ChangeOptions = field(default_factory=ChangeOptions)  # with two periods
    threshold: float | None = None  # None: the model card's
    aoi: str | None = None  # the engine's --aoi: bounds in the first layer's CRS, or a polygon file
    extra: dict = field(default_factory=dict)

    def periods(self) -> dict[str, list[DatedLayer]]:
        """Layers by period, periods in time order, layers by date."""
        groups: dict[str, list[DatedLayer]] = defaultdict(list)
        for layer in sorted(self.layers, key=lambda item: item.date):
            groups[layer.period].append(layer)
        return dict(sorted(groups.items(), key=lambda item: item[1][0].date))

    def segment_requests(self, cancelled=lambda: False) -> dict:
        """Period -> the engine's ``SegmentRequest`` for it, writing into ``output_dir / folder_name(period)``."""
        from ..core.raster_stack import DatedRaster
        from ..core.segment import SegmentRequest

        return {period: SegmentRequest([DatedRaster(layer.path, layer.date) for layer in layers], self.model_path,
                                       self.output_dir / folder_name(period), self.device, self.tile_size,
                                       self.overlap,
                                       precision=self.precision, orientations=self.orientations, scales=self.scales,
                                       threshold=self.threshold, aoi=self.aoi,
                                       cancelled=cancelled)
                for period, layers in self.periods().items()}
