"""QGIS Processing provider ``timeseg``: segment and change, thin adapters over ``core``."""
