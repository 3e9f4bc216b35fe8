"""``timeseg:batch``: many places and periods on dask.distributed (``core.batch``), for the modeler and
``qgis_process``. Inside QGIS a local cluster runs worker threads (QGIS's executable cannot start
Python worker processes); a scheduler address sends the work to a running cluster."""

from __future__ import annotations

from pathlib import Path

from qgis.core import (
    QgsProcessingException,
    QgsProcessingOutputString,
    QgsProcessingParameterFile,
    QgsProcessingParameterFolderDestination,
    QgsProcessingParameterNumber,
    QgsProcessingParameterString,
)

from ..core.batch import LOCAL_WORKERS
from ..core.model_card import SHIPPED_ROAD_MODEL
from .base import TimeSegAlgorithm, described_by, with_help
from .base import tr as _tr
from .run_choices import add_run_choices, run_choices


class BatchAlgorithm(TimeSegAlgorithm):
    JOBS = "JOBS"
    MODEL = "MODEL"
    WORKERS = "WORKERS"
    SCHEDULER = "SCHEDULER"
    CLASS = "CLASS"
    OUTPUT = "OUTPUT"
    SUMMARY = "SUMMARY"

    def name(self) -> str:
        return "batch"

    def displayName(self) -> str:  # noqa: N802
        return _tr("Batch: many places and periods (dask)")

    def shortHelpString(self) -> str:  # noqa: N802
        return _tr(
            "Jobs: a CSV with the columns place,period,path (one row per dated raster; relative paths from the "
            "CSV's folder). Each place and period is segmented into <output>/<place>/<period>/, each pair of "
            "periods of a place gets <output>/<place>/change_<first>_<second>.tif, and <output>/batch.json sums "
            "up new road kilometres, times and failures. A failing place fails alone, and the algorithm then "
            "fails saying how many did once the others are done; running again skips what is complete. "
            "Workers: threads of a local dask cluster; Scheduler: the address of a running dask "
            "cluster (tcp://host:8786) to send the work to instead."
        )

    def initAlgorithm(self, config=None) -> None:  # noqa: N802
        self.addParameter(with_help(QgsProcessingParameterFile(
            self.JOBS, _tr("Jobs (CSV: place,period,path)"), extension="csv"),
            _tr("One row per dated raster or Sentinel-2 product: place,period,path (relative paths from the CSV's "
                "folder; dates from the files' names or tags)")))
        self.addParameter(with_help(QgsProcessingParameterFile(  # optional: qgis_process leaves a default out
            self.MODEL, _tr("Model (.onnx; empty: the shipped road model)"), extension="onnx",
            defaultValue=str(SHIPPED_ROAD_MODEL), optional=True),
            _tr("The model every place and period runs with (its change maps compare maps of one model)")))
        add_run_choices(self, described_by("batch", "BatchRequest"))
        self.addParameter(with_help(QgsProcessingParameterNumber(
            self.WORKERS, _tr("Workers of the local cluster"), QgsProcessingParameterNumber.Integer, LOCAL_WORKERS,
            minValue=1, maxValue=1024),
            _tr("Places and periods run at once on this machine, each on its share of the cores (not used with "
                "a scheduler)")))
        self.addParameter(with_help(QgsProcessingParameterString(
            self.SCHEDULER, _tr("Scheduler address (empty: a local cluster)"), optional=True),
            _tr("A running dask cluster to send the work to, e.g. tcp://host:8786; its workers need TimeSeg and "
                "the files at the same paths")))
        self.addParameter(with_help(QgsProcessingParameterNumber(
            self.CLASS, _tr("Change: class code to follow (empty: 1, as road; models of more classes need it)"),
            QgsProcessingParameterNumber.Integer, None, optional=True, minValue=0, maxValue=254),
            _tr("The class whose new and removed patches the change maps show")))
        self.addParameter(with_help(QgsProcessingParameterFolderDestination(self.OUTPUT, _tr("Output folder")),
                                    _tr("<place>/<period>/ maps, <place>/change_<first>_<second>.tif and batch.json "
                                        "go here; running again skips what is complete")))
        self.addOutput(QgsProcessingOutputString(self.SUMMARY, _tr("Summary (batch.json)")))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        from ..core.batch import SUMMARY_NAME, BatchCancelled, BatchRequest, failures_line, place_line, run_batch

        output = Path(self.parameterAsString(parameters, self.OUTPUT, context))
        scheduler = self.parameterAsString(parameters, self.SCHEDULER, context).strip() or None
        request = BatchRequest(
            Path(self.parameterAsFile(parameters, self.JOBS, context)),
            Path(self.parameterAsFile(parameters, self.MODEL, context) or SHIPPED_ROAD_MODEL), output,
            workers=None if scheduler else self.parameterAsInt(parameters, self.WORKERS, context),
            **run_choices(self, parameters, context),
            scheduler=scheduler,
            change_class=None if parameters.get(self.CLASS) in (None, "") else
            self.parameterAsInt(parameters, self.CLASS, context),
            worker_processes=False, progress=feedback.pushInfo,
            dashboard=lambda link: feedback.pushInfo(_tr("dask dashboard: {}").format(link)),
            done_share=lambda share: feedback.setProgress(100 * share), cancelled=feedback.isCanceled)
        summary = self.run_core(lambda: run_batch(request), (BatchCancelled,),
                                "cancelled; the tasks that had finished are kept and a rerun goes on from them")
        for failure in summary["failed"]:
            feedback.reportError(_tr("{place} {task} failed: {error}").format(**failure), fatalError=False)
        for place, report in summary["places"].items():
            feedback.pushInfo(place_line(place, report, summary["class"]))
        failures = failures_line(summary, output)
        if failures:  # a failed run for qgis_process's exit code and scripts; the log above has every task
            raise QgsProcessingException(failures)
        return {self.OUTPUT: str(output), self.SUMMARY: str(output / SUMMARY_NAME)}
