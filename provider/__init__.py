"""QGIS Processing provider (timeseg:segment, timeseg:change): arrives with the plugin issue."""
