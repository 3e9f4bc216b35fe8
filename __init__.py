"""TimeSeg QGIS plugin: land-cover and change maps from satellite image time series."""


def classFactory(iface):  # noqa: N802 (QGIS's name)
    """QGIS entry point."""
    from .plugin import TimeSegPlugin

    return TimeSegPlugin(iface)
