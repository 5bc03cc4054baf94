# Offline multilingual Q&A over a news corpus. `make help` lists the targets.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export HF_HUB_OFFLINE := 1

.DEFAULT_GOAL := help

help: ## List the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  %-12s %s\n", $$1, $$2}'

$(BIN)/rag: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# exactly this CPU build of torch (any other spec pulls a multi-GB CUDA build)
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[st,fit,dev,milvus,ray]'
	@touch $(BIN)/rag

install: $(BIN)/rag ## Create .venv and install the project with all extras

index: install ## Build or update the index of seeds/ in var/index
	$(BIN)/rag index

run: install ## Build the index if there is none, then serve on http://127.0.0.1:8000
	$(BIN)/rag serve

test: install ## Run every test tier: unit, slow (real models) and integration (real server)
	$(BIN)/python -m pytest -p no:cacheprovider

test-fast: install ## Run the fast unit tests only
	$(BIN)/python -m pytest -p no:cacheprovider -m "not slow and not integration"

soak: install ## The crash and concurrency tests at full length: 20 kill -9 trials each, a 120 s soak
	RAG_CRASH_TRIALS=20 RAG_SOAK_SECONDS=120 $(BIN)/python -m pytest -p no:cacheprovider tests/test_reliability.py

lint: install ## ruff, ruff format, mypy and hadolint
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/hadolint Dockerfile

eval: index ## Score the dev gold set with baselines and write reports/
	$(BIN)/rag eval --report reports

QA_DATA ?= ../shared/qa-data

gate: index ## CI regression gate: fail when a pinned score in eval/thresholds.toml drops
	$(BIN)/rag eval --gate --no-baselines
	@if [ -f $(QA_DATA)/xquad-half.jsonl ]; then \
		$(BIN)/rag eval --dataset $(QA_DATA)/xquad-half.jsonl --direction 'en>en' --no-baselines --gate; \
	else echo "no $(QA_DATA)/xquad-half.jsonl: public-set gate skipped"; fi

train: install ## Train the span reader from scratch (resumes from var/train), then calibrate it
	$(BIN)/rag train --work-dir var/train
	$(BIN)/rag calibrate

fit: index ## Re-fit the answer weights on the dev set (prints k-fold CV accuracy)
	$(BIN)/rag fit

clean: ## Remove built artifacts (index, reports, caches)
	rm -rf var reports .pytest_cache .mypy_cache .ruff_cache

.PHONY: help install index run test test-fast soak lint eval gate fit train clean
