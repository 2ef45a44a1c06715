# Two entry points on a fresh machine with Python 3.11, git and make:
#   make demo   bake the default experiment repo into build/demo/ and run its main job
#   make test   every test of the template and the engine (slow ones included)
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
ENGINE := {{cookiecutter.project}}/engine
TORCH_VERSION ?= 2.13.0
# Empty: pip's configured index (a local CPU wheel here). Elsewhere: https://download.pytorch.org/whl/cpu
TORCH_INDEX ?=
# Debian packages the tests need; installed with apt-get only when running as root and missing.
DEBIAN_PACKAGES ?= git postgresql openssh-server openssh-client docker.io debootstrap qemu-user qemu-system-arm \
  gcc-aarch64-linux-gnu libc6-dev-arm64-cross gcc-arm-none-eabi libnewlib-arm-none-eabi ghdl systemd udev shellcheck
# Extra pytest arguments, e.g. `make test PYTEST_ARGS='-m "not slow"'`.
PYTEST_ARGS ?=

.PHONY: install debian-packages test demo clean

install: debian-packages $(VENV)/.installed

# Re-runs only when a requirement file changes. torch comes first and pinned: an unpinned torch
# pulls a multi-GB CUDA build.
$(VENV)/.installed: requirements-dev.txt $(ENGINE)/pyproject.toml | debian-packages
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX)) "torch==$(TORCH_VERSION)"
	$(BIN)/python -m pip install --quiet -e "$(ENGINE)[test,postgres,dashboard,pico,fpga]" -r requirements-dev.txt
	touch $@

debian-packages:
	@if [ "$$(id -u)" = 0 ]; then \
	  missing=""; \
	  for package in $(DEBIAN_PACKAGES); do \
	    dpkg-query -W -f='$${Status}' "$$package" 2>/dev/null | grep -q "ok installed" || missing="$$missing $$package"; \
	  done; \
	  if [ -n "$$missing" ]; then \
	    apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing; \
	  fi; \
	fi

# Two xdist workers (the machine has 2 cores); every test bakes into its own temporary folder;
# tests that need Docker share one daemon (tests/services_docker.py).
# No bytecode writes: a bake copies engine/ while other tests import it. pytest's exit code 5 (no
# test collected) fails the target like any other non-zero code.
test: install
	PYTHONDONTWRITEBYTECODE=1 $(BIN)/python -m pytest -n 2 tests "$(ENGINE)/tests" $(PYTEST_ARGS)

demo: install
	scripts/demo.sh

clean:
	rm -rf build .pytest_cache
