"""A layer chooser that never chooses for the analyst: when its layer leaves the project (or its list) it
becomes empty; QGIS's combo box shows the next layer instead, and a run would read a layer nobody chose."""

from __future__ import annotations

from qgis.gui import QgsMapLayerComboBox


class ChosenLayerCombo(QgsMapLayerComboBox):
    """A ``QgsMapLayerComboBox`` with an empty entry, which it shows once its chosen layer is removed."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setAllowEmptyLayer(True)
        self._losing = False  # the chosen layer's row is being removed
        # the combo moves to the next row while the chosen one is removed: emptied once the removal is done
        self.model().rowsAboutToBeRemoved.connect(self._about_to_lose)
        self.model().rowsRemoved.connect(self._forget_lost)

    def _about_to_lose(self, _parent, first: int, last: int) -> None:
        self._losing = first <= self.currentIndex() <= last and self.currentLayer() is not None

    def _forget_lost(self, *_) -> None:
        if self._losing:
            self._losing = False
            self.setLayer(None)
