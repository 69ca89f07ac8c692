# auglift — every set-up step lives here so a fresh clone needs only `make setup`.
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
DATA    ?= ../shared/data
DATASET ?= samples
ROOT    ?=
OUT     ?= runs/cache
MEDIAPIPE := mediapipe==0.10.21
TORCH     := torch==2.13.0

.PHONY: setup test demo precompute bench experiments clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

setup: $(BIN)/python
	# The pinned CPU build first: an unpinned torch would resolve to a multi-GB CUDA wheel.
	$(BIN)/pip install -q $(TORCH)
	$(BIN)/pip install -q -e '.[dev]'
	# mediapipe 0.10.21 carries the only offline pose weights (BlazePose). Its metadata asks
	# for jax, sentencepiece and sounddevice, which pose inference never imports, and for
	# numpy<2 / protobuf<5, which pyproject already pins; --no-deps keeps the resolver from
	# dragging in jax (which wants numpy>=2) while the needs it does have come from pyproject.
	$(BIN)/pip install -q --no-deps $(MEDIAPIPE)
	$(BIN)/auglift --help > /dev/null

test:
	$(BIN)/python -m pytest -q tests

demo:
	$(BIN)/auglift demo --data $(DATA) --out runs/demo

clean:
	rm -rf runs .pytest_cache
