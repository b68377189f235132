# Two commands set everything up on a fresh machine: `make run` and `make test`.
# The ~5.5 GB torch venv lives under ~/.cache keyed by a hash of the requirement files, so a
# fresh clone (CI, a second checkout) reuses it; .venv is a link to it. constraints.txt pins
# every package they pull in (make lock rewrites it from the current venv).
PYTHON ?= python3
REQ_FILES := requirements.txt requirements-dev.txt constraints.txt
REQ_HASH := $(shell cat $(REQ_FILES) | sha256sum | cut -c1-16)
CACHE_DIR ?= $(HOME)/.cache/transferlab
VENV_DIR := $(CACHE_DIR)/venv-$(REQ_HASH)
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: run test venv system-deps bench dist dist-test lint clean lock

venv: $(VENV)/.ready-$(REQ_HASH) system-deps

# Qt's xcb/offscreen plugins need a few system libraries; most images have them already.
QT_LIBS := libGL.so.1 libEGL.so.1 libxkbcommon.so.0 libfontconfig.so.1 libdbus-1.so.3
system-deps:
	@missing=""; for l in $(QT_LIBS); do ldconfig -p | grep -q "$$l" || missing="$$missing $$l"; done; \
	if [ -n "$$missing" ]; then \
		echo "Installing system libraries Qt needs:$$missing"; \
		apt-get update -qq && apt-get install -y -qq libgl1 libegl1 libxkbcommon0 libfontconfig1 \
			libdbus-1-3 libxkbcommon-x11-0 libxcb-icccm4 libxcb-keysyms1 libxcb-cursor0 >/dev/null || \
		echo "Could not install them (not root?): install the packages above by hand."; \
	fi

$(VENV)/.ready-$(REQ_HASH): $(REQ_FILES)
	@if [ ! -f "$(VENV_DIR)/.complete" ]; then \
		echo "Creating the Python environment in $(VENV_DIR) (first time only, a few minutes)"; \
		rm -rf "$(VENV_DIR)" && mkdir -p "$(CACHE_DIR)" && \
		$(PYTHON) -m venv "$(VENV_DIR)" && \
		"$(VENV_DIR)/bin/python" -m pip install --quiet --upgrade pip && \
		"$(VENV_DIR)/bin/python" -m pip install --quiet -r requirements-dev.txt -c constraints.txt && \
		touch "$(VENV_DIR)/.complete"; \
	fi
	@rm -rf $(VENV) && ln -s "$(VENV_DIR)" $(VENV)
	@touch "$(VENV_DIR)/.ready-$(REQ_HASH)"

run: venv
	$(PY) main.py

# The tests run with the allocator setting the app gives itself (core/allocator.py), one
# worker per core (pytest-xdist). `make test` is the default suite (a few minutes on 2
# cores); `make test-slow` the slow cases (torchrun jobs, killed processes, the real
# datasets, every architecture); `make test-all` both, as CI runs them.
PYTEST = GLIBC_TUNABLES=$$($(PY) -c 'from core.allocator import TUNABLES; print(TUNABLES)') \
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -q -n auto --dist loadgroup
test: venv
	$(PYTEST) -m "not slow" tests
	$(VENV)/bin/lint-imports

test-slow: venv
	$(PYTEST) -m slow tests

test-all: test test-slow

# The slow checks, outside the default suite (each prints its figures).
bench: venv
	$(PY) bench/vs_lesson.py
	$(PY) bench/inference_latency.py
	$(PY) bench/ui_stall.py
	$(PY) bench/time_to_accuracy.py
	$(PY) bench/scaling.py
	$(PY) bench/load.py

# A onedir PyInstaller build in dist/TransferLab/ and its smoke test.
dist: venv
	$(VENV)/bin/pyinstaller --noconfirm --clean --log-level WARN build.spec
	@du -sh dist/TransferLab

dist-test: venv
	$(PY) scripts/dist_smoke_test.py

lint: venv
	$(VENV)/bin/lint-imports

# Rewrite constraints.txt from the current environment (after changing a requirement file).
lock:
	$(PY) -m pip freeze --exclude-editable | grep -v '^-e ' > constraints.txt

clean:
	rm -rf build dist .pytest_cache
