# Two commands do everything on a fresh machine:  `make run` (dashboard on the bundled sample)  and  `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8501
ARGS ?=

$(BIN)/.installed: requirements.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements.txt
	touch $@

.PHONY: install run lint test test-slow bench clean
install: $(BIN)/.installed

run: install
	$(BIN)/python -m ui.serve --server.address $(HOST) --server.port $(PORT) $(ARGS)

lint: install  # pycodestyle, pyflakes and the complexity rules configured in pyproject.toml; ruff's formatting
	$(BIN)/ruff check engine pages ui tests bench app.py
	$(BIN)/ruff format --check engine pages ui tests bench app.py

test: lint  # two workers share the two cores; the tests that time the page run after them, alone
	$(BIN)/python -m pytest -q -n 2 -m "not slow and not alone" tests
	$(BIN)/python -m pytest -q -m "alone and not slow" tests

test-slow: install  # the real-data accuracy claims (minutes each): EuroSAT auto on its test split, the plant probe
	$(BIN)/python -m pytest -q -m slow tests

bench: install
	$(BIN)/python bench/probe.py

clean:
	rm -rf $(VENV) .pytest_cache
