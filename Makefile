# openpose-plus — every entry point a user or CI needs. `make demo` and `make test` set
# themselves up on a fresh machine; nothing here needs a GPU.
SHELL := /bin/bash
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.setup-done
HVD_STAMP := $(VENV)/.horovod-done
PAF_SRC := $(wildcard cffi_build/*.c cffi_build/*.h cffi_build/build_paf.py)
PAF_EXT := $(VENV)/.paf-built
# Horovod builds from source against the installed TensorFlow (see ../shared/DEPENDENCIES.md).
HOROVOD_ENV := HOROVOD_WITH_TENSORFLOW=1 HOROVOD_WITHOUT_PYTORCH=1 HOROVOD_WITHOUT_MXNET=1 \
               HOROVOD_WITH_GLOO=1 HOROVOD_WITHOUT_MPI=1
PYTEST_ARGS ?=

.PHONY: setup test test-fast sanitize bench demo clean info install-service

setup: $(STAMP) $(HVD_STAMP) $(PAF_EXT)

$(STAMP): pyproject.toml setup.py constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip setuptools wheel
	$(PIP) install -q -c constraints.txt -e ".[edge,train-cpu,calib,dev]"
	touch $@

$(HVD_STAMP): $(STAMP)
	$(PY) -c "import horovod.tensorflow" 2>/dev/null || \
	  $(HOROVOD_ENV) $(PIP) install -q --no-build-isolation --no-cache-dir -c constraints.txt horovod
	touch $@

# The C grouping core: rebuilt in place whenever its sources change.
$(PAF_EXT): $(STAMP) $(PAF_SRC)
	$(PY) setup.py -q build_ext --inplace
	touch $@

test: setup
	$(PY) -m pytest -q $(PYTEST_ARGS)
	$(MAKE) sanitize

test-fast: setup
	$(PY) -m pytest -q -m "not slow" $(PYTEST_ARGS)

# The grouping tests again, against the C core built with AddressSanitizer + UBSan.
sanitize: setup
	PYTHON=$(PY) bash cffi_build/sanitize.sh

bench: setup
	$(VENV)/bin/openpose-plus bench group

info: setup
	$(VENV)/bin/openpose-plus info

demo: setup
	$(VENV)/bin/openpose-plus demo

# The daemon as a systemd service: user, unit, example config (run as root on the device).
install-service:
	sh systemd/install.sh --bin "$$(command -v openpose-plus || echo $(CURDIR)/$(VENV)/bin/openpose-plus)"

clean:
	rm -rf build dist *.egg-info edge/_paf*.so edge/_paf.c .pytest_cache out
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
