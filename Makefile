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

# onnxruntime-web for the exported browser bundle, from the npm registry, pinned by version and SHA-256 (MIT licence).
ORT_WEB := onnxruntime-web-1.31.1
ORT_WEB_SHA256 := bdccdb9fbb9ab537247c0c734e9b1d2b1b338b4f2a09faa58f0dc1cfa27c312c
VENDOR := .vendor/$(ORT_WEB)

$(VENDOR)/ort.wasm.min.js:
	rm -rf .vendor/tmp && mkdir -p .vendor/tmp
	cd .vendor/tmp && npm pack -q --silent $(subst -web-,-web@,$(ORT_WEB)) >/dev/null
	echo "$(ORT_WEB_SHA256)  .vendor/tmp/$(ORT_WEB).tgz" | sha256sum -c --quiet
	tar -xzf .vendor/tmp/$(ORT_WEB).tgz -C .vendor/tmp
	mkdir -p $(VENDOR)
	cp .vendor/tmp/package/package.json .vendor/tmp/package/dist/ort-wasm-simd-threaded.mjs $(VENDOR)/
	cp .vendor/tmp/package/dist/ort-wasm-simd-threaded.wasm $(VENDOR)/
	cp .vendor/tmp/package/dist/ort.wasm.min.js $(VENDOR)/
	rm -rf .vendor/tmp

# litert-torch (the TFLite converter) pins packages this project cannot share: it gets an environment of its own that
# sees ours through a .pth file (about 1 GB, a minute). Optional: without it the tflite format is refused in one line.
EDGE := .venv-edge

$(EDGE)/bin/.installed: $(BIN)/.installed
	test -x $(EDGE)/bin/python || $(PY) -m venv $(EDGE)
	$(BIN)/python -c "import site; print(site.getsitepackages()[0])" > $$($(EDGE)/bin/python -c "import site; print(site.getsitepackages()[0])")/_transferlab.pth
	$(EDGE)/bin/pip install -q litert-torch==0.10.0
	touch $@

.PHONY: install vendor edge run lint test test-slow bench clean
install: $(BIN)/.installed

edge:  # best effort, as vendor
	$(MAKE) $(EDGE)/bin/.installed || echo "warning: litert-torch could not be installed; no TFLite export"

vendor:  # best effort: without npm the export says the browser bundle needs it, and its browser test is skipped
	$(MAKE) $(VENDOR)/ort.wasm.min.js || echo "warning: onnxruntime-web could not be fetched with npm; no browser bundle"

run: install vendor
	$(BIN)/python -m ui.serve --server.address $(HOST) --server.port $(PORT) $(ARGS)

lint: install  # pycodestyle, pyflakes and the complexity rules configured in pyproject.toml; ruff's formatting
	$(BIN)/ruff check engine pages ui tests bench app.py
	$(BIN)/ruff format --check engine pages ui tests bench app.py

test: lint vendor edge  # two workers share the two cores; the tests that time the page run after them, alone
	$(BIN)/python -m pytest -q -n 2 -m "not slow and not alone" tests
	$(BIN)/python -m pytest -q -m "alone and not slow" tests

test-slow: install  # the real-data accuracy claims (minutes each): EuroSAT auto on its test split, the plant probe
	$(BIN)/python -m pytest -q -m slow tests

bench: install
	$(BIN)/python bench/probe.py

clean:
	rm -rf $(VENV) $(EDGE) .pytest_cache .vendor
