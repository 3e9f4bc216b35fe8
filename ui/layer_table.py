"""The dock's table of raster layers: tick, name, acquisition date, period.

It follows the project: layers added, removed and renamed show up at once. Dates are
detected as the engine does (file name, then GDAL tags) and can be edited; a layer
without a date shows an empty date in red until one is set. Periods default to the year. Each row's tick,
date and period are kept with its layer, so a saved project opens with them.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence

from qgis.core import QgsMapLayer, QgsProject, QgsRasterLayer
from qgis.PyQt.QtCore import QDate, Qt, pyqtSignal
from qgis.PyQt.QtWidgets import QAbstractItemView, QDateEdit, QHeaderView, QTableWidget, QTableWidgetItem

from .run_parameters import DatedLayer

NAME, DATE, PERIOD = 0, 1, 2
VISIBLE_ROWS = 4  # the table's least height, in rows
PERIOD_TIP = ("Double-click to edit. The ticked layers of one period make one map; with two periods the change "
              "between them (new roads) is mapped too")
PRODUCT_PROPERTY = "timeseg/product"  # a layer showing a Sentinel-2 product's TCI: the product it shows
ROW_STATE = "timeseg/row"  # a layer's tick, date and period in the dock (JSON), saved with the project
NO_DATE = QDate(1900, 1, 1)


def timeseg_output_kind(layer: QgsRasterLayer) -> str | None:
    """probability, classes or change for a raster made by TimeSeg (its ``timeseg_output`` tag), else None."""
    from osgeo import gdal

    from ..core.definitions import OUTPUT_TAG

    if layer.providerType() != "gdal":
        return None
    dataset = gdal.OpenEx(layer.source().split("|")[0], gdal.OF_RASTER)
    return dataset.GetMetadataItem(OUTPUT_TAG) if dataset is not None else None


def is_timeseg_output(layer: QgsRasterLayer) -> bool:
    """TimeSeg's own results are never inputs: marked so when added (their file may be gone since), or tagged so
    in their file."""
    from .results import RESULT_LAYER

    return bool(layer.customProperty(RESULT_LAYER)) or timeseg_output_kind(layer) is not None


def detect_layer_date(layer: QgsRasterLayer) -> dt.date | None:
    from ..core.dates import date_from_name, detect_date
    from ..core.definitions import gdal_path, is_gdal_source
    from ..core.sentinel2 import product_date

    product = layer.customProperty(PRODUCT_PROPERTY)
    path = gdal_path(layer.source())
    try:
        if product:  # its sensing date, as the engine reads it (a product of before December 2016 names two)
            return product_date(product)
        # a name and tags that disagree: the table shows the date used, and the analyst can change it
        readable = path.is_file() or is_gdal_source(layer.source())  # a file, a zip's member, a GeoPackage table
        return (detect_date(path, []) if readable else None) or date_from_name(layer.name())
    except Exception:  # an unreadable source has no date; the user can type one
        return None


class LayerTable(QTableWidget):
    """Raster layers of the project with their dates and periods."""

    selectionChangedByUser = pyqtSignal()  # noqa: N815 (Qt naming)

    def __init__(self, project: QgsProject, parent=None) -> None:
        super().__init__(0, 3, parent)
        self.project = project
        self.setHorizontalHeaderLabels([self.tr("Layer"), self.tr("Date"), self.tr("Period")])
        self.horizontalHeaderItem(PERIOD).setToolTip(PERIOD_TIP)
        self.horizontalHeader().setSectionResizeMode(NAME, QHeaderView.Stretch)
        # the date's editor shown whole (it was cut to "2021-06-"), and room for a few rows however long the
        # dock's messages grow below (after a run the table shrank to a row and a half)
        probe = self._date_editor(None)
        probe.setParent(None)  # measured, never shown
        self.horizontalHeader().resizeSection(DATE, probe.sizeHint().width())
        # a period as wide as "2019/2020" or its header (it took 104 px for "2016", and cut the layers' names)
        self.horizontalHeader().resizeSection(PERIOD, max(self.fontMetrics().horizontalAdvance(text) for text in (
            "2019/2020", self.tr("Period"))) + 4 * self.frameWidth() + 12)
        self.verticalHeader().setVisible(False)
        self.setTextElideMode(Qt.ElideMiddle)  # products' names differ in their dates and tiles, not their starts
        self.setMinimumHeight(self.horizontalHeader().sizeHint().height()
                              + VISIBLE_ROWS * self.verticalHeader().defaultSectionSize() + 2 * self.frameWidth())
        self.setSelectionMode(QAbstractItemView.NoSelection)
        self.setToolTip(self.tr("Tick the dated layers to use; dates come from the names or tags and can be "
                                "edited; the period (by default the year) groups the layers of one map"))
        self._ids: list[str] = []
        self.itemChanged.connect(self._item_changed)
        project.layersAdded.connect(self._layers_added)
        project.layersWillBeRemoved.connect(self._layers_removed)
        self._layers_added(list(project.mapLayers().values()))

    # --- following the project
    def _layers_added(self, layers: list[QgsMapLayer]) -> None:
        for layer in layers:
            # GDAL's rasters only: a web map (XYZ, WMS) is no image to segment
            if (isinstance(layer, QgsRasterLayer) and layer.providerType() == "gdal" and layer.id() not in self._ids
                    and not is_timeseg_output(layer)):
                self._add_row(layer)

    def _layers_removed(self, layer_ids: list[str]) -> None:
        for layer_id in layer_ids:
            row = self._row_of(layer_id)
            if row is not None:
                self.removeRow(row)
                self._ids.remove(layer_id)
        self._mark_missing_dates()  # a layer left ticked alone runs without a date
        self.selectionChangedByUser.emit()

    def _row_of(self, layer_id: str) -> int | None:
        for row in range(self.rowCount()):
            if self.item(row, NAME).data(Qt.UserRole) == layer_id:
                return row
        return None

    def _add_row(self, layer: QgsRasterLayer) -> None:
        self.blockSignals(True)
        row = self.rowCount()
        self.insertRow(row)
        name = QTableWidgetItem(layer.name())
        name.setToolTip(layer.name())  # the whole name, where the column cuts it
        name.setFlags(Qt.ItemIsUserCheckable | Qt.ItemIsEnabled)
        name.setCheckState(Qt.Unchecked)
        name.setData(Qt.UserRole, layer.id())
        self.setItem(row, NAME, name)
        date = detect_layer_date(layer)
        editor = self._date_editor(date)
        editor.dateChanged.connect(lambda value, layer_id=layer.id(): self._date_edited(layer_id, value))
        self.setCellWidget(row, DATE, editor)
        period = QTableWidgetItem(str(date.year) if date else "")
        period.setToolTip(PERIOD_TIP)
        self.setItem(row, PERIOD, period)
        self._ids.append(layer.id())
        layer.nameChanged.connect(self._renamed)  # a bound slot: gone with the table (a lambda outlived it)
        self._restore_row(row, layer)
        # a row restored ticked changes which rows a missing date blocks
        self._mark_missing_dates(None if name.checkState() == Qt.Checked else [row])
        self.blockSignals(False)

    def _date_editor(self, date) -> QDateEdit:
        """A row's date editor, showing ``date`` (``datetime.date``; None: "date?")."""
        editor = QDateEdit(self)
        editor.setDisplayFormat("yyyy-MM-dd")
        editor.setCalendarPopup(True)
        editor.setMinimumDate(NO_DATE)
        editor.setSpecialValueText(self.tr("date?"))
        editor.setDate(QDate(date.year, date.month, date.day) if date else NO_DATE)
        return editor

    def _save_row(self, row: int) -> None:
        """The row's tick, date and period kept with its layer, and so in the saved project (a property of
        the layer that QGIS writes with it)."""
        layer = self.project.mapLayer(self.item(row, NAME).data(Qt.UserRole))
        if layer is None:
            return
        value = self.cellWidget(row, DATE).date()
        layer.setCustomProperty(ROW_STATE, json.dumps({
            "ticked": self.item(row, NAME).checkState() == Qt.Checked,
            "date": None if value == NO_DATE else value.toString("yyyy-MM-dd"),
            "period": self.item(row, PERIOD).text()}))

    def _restore_row(self, row: int, layer: QgsRasterLayer) -> None:
        """What the analyst set for this layer before (a project saved and opened again, the plugin reloaded)."""
        try:
            state = json.loads(layer.customProperty(ROW_STATE) or "null")
        except (TypeError, ValueError):
            return
        if not isinstance(state, dict):
            return
        if state.get("date"):
            self.cellWidget(row, DATE).setDate(QDate.fromString(state["date"], "yyyy-MM-dd"))
        if isinstance(state.get("period"), str) and state["period"]:
            self.item(row, PERIOD).setText(state["period"])
        self.item(row, NAME).setCheckState(Qt.Checked if state.get("ticked") else Qt.Unchecked)

    def _renamed(self) -> None:
        layer = self.sender()
        row = self._row_of(layer.id()) if layer is not None else None
        if row is not None:
            self.item(row, NAME).setText(layer.name())
            self.item(row, NAME).setToolTip(layer.name())

    def _date_edited(self, layer_id: str, value: QDate) -> None:
        row = self._row_of(layer_id)
        if row is None:
            return
        period = self.item(row, PERIOD)
        if value != NO_DATE and not period.text():
            period.setText(str(value.year()))
        self._mark_missing_dates([row])
        self._save_row(row)
        self.selectionChangedByUser.emit()

    def _mark_missing_dates(self, rows: Sequence[int] | None = None) -> None:
        """Each missing date of ``rows`` (default: all) in red where it keeps a run from starting: not on a layer
        ticked alone, which runs without one (``checked_layers``)."""
        ticked = [row for row in range(self.rowCount()) if self.item(row, NAME).checkState() == Qt.Checked]
        for row in range(self.rowCount()) if rows is None else rows:
            missing = self.cellWidget(row, DATE).date() == NO_DATE
            self.cellWidget(row, DATE).setStyleSheet("color: red" if missing and ticked != [row] else "")
            self.cellWidget(row, DATE).setToolTip(self.tr(
                "No date found in its name or tags: give it here. A layer ticked alone runs without one (its "
                "period is then its name); ticked with others, it needs its date.") if missing else "")

    def _item_changed(self, item: QTableWidgetItem) -> None:
        if item.column() in (NAME, PERIOD):
            self._save_row(item.row())
            if item.column() == NAME:  # a tick: whether a missing date blocks the run changes
                self._mark_missing_dates()
            self.selectionChangedByUser.emit()

    # --- what the dock reads
    def set_checked(self, layer_id: str, checked: bool = True) -> None:
        row = self._row_of(layer_id)
        if row is not None:
            self.item(row, NAME).setCheckState(Qt.Checked if checked else Qt.Unchecked)

    def set_all_checked(self, checked: bool) -> None:
        for layer_id in self._ids:
            self.set_checked(layer_id, checked)
        self.selectionChangedByUser.emit()

    def set_period_checked(self, period: str) -> None:
        """Tick the layers of ``period`` (their other rows stay as they are)."""
        for row in range(self.rowCount()):
            if self._period_of(row) == period:
                self.item(row, NAME).setCheckState(Qt.Checked)
        self.selectionChangedByUser.emit()

    def periods(self) -> list[str]:
        """The periods of the listed layers, in order."""
        return sorted({p for p in (self._period_of(row) for row in range(self.rowCount())) if p})

    def period_clashes(self) -> list[str]:
        """The ticked layers' period names typed apart that would write into one folder ('2019/20' and
        '2019-20'), in words."""
        from ..core.definitions import folder_name

        typed: dict[str, set[str]] = {}
        for row in range(self.rowCount()):
            text = self.item(row, PERIOD).text().strip()
            if text and self.item(row, NAME).checkState() == Qt.Checked:
                typed.setdefault(folder_name(text), set()).add(text)
        return [self.tr("The periods {} would write into one folder, {}: name them apart").format(
            " and ".join(f"'{name}'" for name in sorted(names)), folder) for folder, names in typed.items()
            if len(names) > 1]

    def _period_of(self, row: int) -> str:
        """The row's period as typed (its spaces collapsed): layer names and messages say it so; its folder is
        ``core.definitions.folder_name`` of it."""
        return " ".join(self.item(row, PERIOD).text().split())

    def set_date(self, layer_id: str, date: dt.date) -> None:
        row = self._row_of(layer_id)
        if row is not None:
            self.cellWidget(row, DATE).setDate(QDate(date.year, date.month, date.day))

    def set_period(self, layer_id: str, period: str) -> None:
        row = self._row_of(layer_id)
        if row is not None:
            self.item(row, PERIOD).setText(period)

    def layer_ids(self) -> list[str]:
        return list(self._ids)

    def checked_layers(self, lone_undated: bool = False) -> tuple[list[DatedLayer], list[str]]:
        """Ticked layers with dates, and the names of ticked layers that lack a date. ``lone_undated``: one
        layer ticked alone needs no date (a segmentation of one image; its date None, its period the one typed
        or the layer's name)."""
        from ..core.definitions import gdal_path

        chosen = []
        for row in range(self.rowCount()):
            item = self.item(row, NAME)
            if item.checkState() != Qt.Checked:
                continue
            layer = self.project.mapLayer(item.data(Qt.UserRole))
            value = self.cellWidget(row, DATE).date()
            if layer is None:
                continue
            date = None if value == NO_DATE else dt.date(value.year(), value.month(), value.day())
            period = self._period_of(row) or (str(date.year) if date else layer.name())
            source = layer.customProperty(PRODUCT_PROPERTY) or layer.source()  # a product: the model picks its bands
            chosen.append(DatedLayer(layer.id(), layer.name(), gdal_path(source), date, period))
        if lone_undated and len(chosen) == 1:
            return chosen, []
        undated = [layer.name for layer in chosen if layer.date is None]
        chosen = [layer for layer in chosen if layer.date is not None]
        return chosen, undated
