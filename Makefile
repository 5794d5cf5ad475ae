# Everything a fresh machine needs is installed by the targets that need it: `make serve` and
# `make test` work on a clean clone (venv → model → index → run).
PYTHON_SYSTEM ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
CORPUS ?= corpus
INDEX ?= index
MODEL_DIR ?= models/multilingual-e5-small
HOST ?= 127.0.0.1
PORT ?= 8000
export HF_HUB_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

.PHONY: install model index serve test eval clean browser ocr soak bench bench-1m

install: $(VENV)/.installed

# torch first, pinned: 2.13.0 resolves to the machine's CPU wheel; letting sentence-transformers pull
# torch would download GBs of CUDA wheels.
$(VENV)/.installed: requirements.txt
	test -x $(PY) || $(PYTHON_SYSTEM) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet torch==2.13.0
	$(PIP) install --quiet -r requirements.txt
	touch $@

# The ONNX exports (indexer/onnx_export.py) are skipped while newer than the weights and made by the current recipe.
model: install
	$(PY) -m indexer.convert_model --out $(MODEL_DIR)
	$(PY) -m indexer.onnx_export --model $(MODEL_DIR)

index: model ocr
	$(PY) -m indexer build --corpus $(CORPUS) --index $(INDEX)

serve: index
	QA_INDEX=$(INDEX) QA_CORPUS=$(CORPUS) HOST=$(HOST) PORT=$(PORT) $(VENV)/bin/gunicorn -c service/gunicorn.conf.py 'service:create_app()'

test: model browser ocr
	$(PY) -m pytest -q --durations=15 tests

# The web page's browser test (tests/test_web.py) drives Debian's headless Chromium with selenium; the CJK font
# makes its screenshots (test-artifacts/) readable. Installed only when missing.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
CJK_FONT := /usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc
browser:
	@if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ] || [ ! -e $(CJK_FONT) ]; then \
		$(SUDO) apt-get update && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
			chromium chromium-driver fonts-noto-cjk; \
	fi

# Scanned PDF pages are read with Tesseract (extract/ocr.py) in Simplified, Traditional and English. Installed only
# when missing; without it such pages are skipped with that reason.
OCR_DATA := /usr/share/tesseract-ocr/5/tessdata
ocr:
	@if ! command -v tesseract >/dev/null || [ ! -e $(OCR_DATA)/chi_sim.traineddata ] || \
		[ ! -e $(OCR_DATA)/chi_tra.traineddata ] || [ ! -e $(OCR_DATA)/eng.traineddata ]; then \
		$(SUDO) apt-get update && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
			tesseract-ocr tesseract-ocr-chi-sim tesseract-ocr-chi-tra tesseract-ocr-eng; \
	fi

# Retrieval accuracy (evals/README.md): every set, or one with SET=xquad|drcd|cmrc|seed; STORE=milvus asks a
# Milvus Lite server (started and stopped by the run) instead of the embedded store. The formats set prints its PDFs
# with Chromium and reads its scanned pages with Tesseract: a fresh machine needs both.
eval: model browser ocr
	$(PY) -m evals $(if $(SET),--set $(SET),) $(if $(STORE),--store $(STORE),)

# 64 clients for 60 s against one gunicorn worker over $(INDEX), with the waiting-questions bound on and then off
# (QA_MAX_WAITING): answered and refused shares, latency, errors, worker memory growth (benchmarks/README.md).
# Not part of `make test`.
soak: index
	$(PY) -m benchmarks.soak --index $(INDEX) --clients 64 --compare-bound $(if $(SOAK_SECONDS),--seconds $(SOAK_SECONDS),)

# Performance against the raw-model floor, measured in the same run (benchmarks/README.md): the seed corpus
# and a ~20k-passage corpus made from ../shared/datasets are built, measured and served; the vector index is
# measured alone at 1M vectors. Rewrites benchmarks/RESULTS.md and its plots. QUICK=1: seed only, 100k vectors.
bench: model
	$(PY) -m benchmarks $(if $(QUICK),--quick,)

# The whole service over ~1M passages (benchmarks/million.py): a corpus recombined from the datasets' sentences,
# built cold (real encoder for 2,048 passages, calibrated copies for the rest), then asked over HTTP. 21–28 min
# on 2 cores (measured; the host's speed varies); merges its section into RESULTS.md. QUICK=1: 50k passages,
# written to .cache/quick/ only.
bench-1m: model
	$(PY) -m benchmarks --only million $(if $(QUICK),--quick,--merge)

clean:
	rm -rf $(INDEX) .pytest_cache .hypothesis
