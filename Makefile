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
# Gloo always; MPI too where OpenMPI is installed (make install-mpi installs it and rebuilds).
HOROVOD_ENV := HOROVOD_WITH_TENSORFLOW=1 HOROVOD_WITHOUT_PYTORCH=1 HOROVOD_WITHOUT_MXNET=1 \
               HOROVOD_WITH_GLOO=1 $(if $(shell command -v mpicc),HOROVOD_WITH_MPI=1,HOROVOD_WITHOUT_MPI=1)
PYTEST_ARGS ?=
OPP    := $(VENV)/bin/openpose-plus

.PHONY: setup wheelhouse test test-fast sanitize fuzz bench demo demo-model clean info install-service install-mpi

# The C core as a library for C/C++ programs: pack, install-pack, uninstall-pack, clean-pack.
include cffi_build/pack.mk

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

# The wheels tests/test_wheel.py installs offline, per interpreter (scripts/wheelhouse.py):
# fetched again only when pyproject.toml's requirements or the targets change.
WHEELHOUSE_STAMP := wheelhouse/.done
wheelhouse: $(WHEELHOUSE_STAMP)
$(WHEELHOUSE_STAMP): $(STAMP) pyproject.toml scripts/wheelhouse.py
	$(PY) scripts/wheelhouse.py
	touch $@

test: setup
	$(PY) -m pytest -q $(PYTEST_ARGS)
	$(MAKE) sanitize

# Two workers: the fast tier's ~1 minute on a 2-core machine (more cores: TEST_WORKERS=auto).
TEST_WORKERS ?= 2
test-fast: setup
	$(PY) -m pytest -q -n $(TEST_WORKERS) -m "not slow" $(PYTEST_ARGS)

# The grouping tests again, against the C core built with AddressSanitizer + UBSan.
sanitize: setup
	PYTHON=$(PY) bash cffi_build/sanitize.sh

# The fuzz tests of the grouping core, long (FUZZ_EXAMPLES a test), under the sanitizers.
FUZZ_EXAMPLES ?= 20000
fuzz: setup
	OPP_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) PYTHON=$(PY) bash cffi_build/sanitize.sh -k fuzz --hypothesis-show-statistics

# Grouping speed, then (with the shipped model) the device pipeline's stages and throughput.
bench: setup
	$(OPP) bench group
	if [ -d models/demo ]; then $(OPP) bench pipeline models/demo --frames 200; fi

info: setup
	$(OPP) info

demo: setup
	$(OPP) demo

# models/demo from scratch, as shipped: a held-out synthetic set (and calibration images),
# training on the CPU (models/demo.toml; about 50 minutes on 2 cores), export, then INT8
# calibration, which scores FP32, FP16 and INT8 on the held-out set (report.json/.txt).
DEMO_DATA   := out/demo-data
DEMO_BUNDLE := models/demo
DEMO_VAL    := --val-images $(DEMO_DATA)/val2017 --val-annotations $(DEMO_DATA)/annotations/person_keypoints_val2017.json
demo-model: setup
	$(OPP) synth-data $(DEMO_DATA) --images 64 --val 200 --size 320x240 --people 1 3 --height 0.4 0.95 --seed 1
	$(OPP) train --config models/demo.toml
	rm -rf $(DEMO_BUNDLE).new
	$(OPP) export runs/demo --out $(DEMO_BUNDLE).new
	$(OPP) calibrate $(DEMO_BUNDLE).new --precision int8 --images $(DEMO_DATA)/train2017 $(DEMO_VAL) --quiet \
	  > out/demo-report.json 2> out/demo-report.txt || { cat out/demo-report.txt; exit 1; }
	cat out/demo-report.txt
	mv out/demo-report.json $(DEMO_BUNDLE).new/report.json && mv out/demo-report.txt $(DEMO_BUNDLE).new/report.txt
	rm -rf $(DEMO_BUNDLE) && mv $(DEMO_BUNDLE).new $(DEMO_BUNDLE)

# The daemon as a systemd service: user, unit, example config (run as root on the device).
install-service:
	sh systemd/install.sh --bin "$$(command -v openpose-plus || echo $(CURDIR)/$(VENV)/bin/openpose-plus)"

# OpenMPI from the distribution, then Horovod rebuilt with MPI as well as gloo.
install-mpi: $(STAMP)
	VENV=$(VENV) bash scripts/install_mpi.sh
	touch $(HVD_STAMP)

clean:
	rm -rf build dist *.egg-info edge/_paf*.so edge/_paf.c .pytest_cache out
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
