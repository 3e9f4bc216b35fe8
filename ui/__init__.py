"""Qt/QGIS user interface (the TimeSeg dock): arrives with the plugin issue."""
