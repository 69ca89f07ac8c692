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

# The paper's studies on real data -> results/*.md|json|png, each page headed by the command,
# seed, data and git revision that made it. SIZE=small fits 2 CPU cores in about an hour;
# SIZE=full is the paper-sized setting for a GPU cluster. Caches and lifters are reused from
# runs/experiments/ (delete it to start from scratch).
SIZE    ?= small
STUDIES ?= all
experiments:
	$(BIN)/auglift study run $(STUDIES) --size $(SIZE) --seed 0 --data-root $(DATA) --out results --work runs/experiments

# Raw frames -> cached (x, y, c, d) shards on the embedded offline models (MediaPipe BlazePose +
# its landmark z). DATASET=videos|samples|images|<adapter>; ROOT=the frames' folder (default:
# DATA/videos, DATA/samples, DATA for adapters); OUT=the cache root. Re-running resumes (shards
# that verify are skipped). Other models, clusters, job arrays: `auglift precompute --help`,
# docs/cluster.md.
precompute:
	$(BIN)/auglift precompute --dataset $(DATASET) --data-root $(DATA) $(if $(ROOT),--root $(ROOT)) --out $(OUT)

# Mocap -> SIMULATED (x, y, c, d) shards: GT projected + detector-like noise, occlusion-aware
# depth from a capsule body, visibility-driven confidence, ORACLE ordinal arrays; one shard per
# (subject, action, camera), plus VIEWS virtual cameras per sequence. Resumable. All of H36M
# (205 sequences x 4 cameras) takes a few minutes on 2 cores.
SIM_DATASET ?= h36m
VIEWS       ?= 0
.PHONY: simulate
simulate:
	$(BIN)/auglift simulate --dataset $(SIM_DATASET) --data-root $(DATA) --out runs/sim_$(SIM_DATASET) --virtual-views $(VIEWS) --workers 2

clean:
	rm -rf runs .pytest_cache
