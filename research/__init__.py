"""Research code apart from the shipped library: the papers' experiments on generated data, their report
(docs/experiments.md) and the real-scene check (`timeseg-research`). Not in the plugin zip."""
