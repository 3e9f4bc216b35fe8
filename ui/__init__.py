"""Qt/QGIS user interface: the TimeSeg dock, its layer table, the background task, layer styles."""
