# SPDX-License-Identifier: Apache-2.0
# Thin wrapper over CMake: `make demo` and `make test` do everything on a fresh machine.
BUILD ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=

.PHONY: all deps configure build test demo demo-stop clean format

all: build

deps:
	@scripts/deps.sh

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) -DSHOAL_WERROR=$(if $(CI),ON,OFF) $(CMAKE_FLAGS)

configure: deps $(BUILD)/CMakeCache.txt

build: configure
	cmake --build $(BUILD) -j $(JOBS)

# A skipped test not in tests/skip-allow.txt fails the run (scripts/ctest-run.sh).
test: build
	scripts/ctest-run.sh $(BUILD) --output-on-failure -j 1 $(CTEST_FLAGS)

demo: build
	@scripts/demo.sh $(BUILD)

demo-stop:
	@scripts/demo.sh $(BUILD) stop

format:
	git ls-files '*.c' '*.h' | xargs clang-format -i

clean:
	rm -rf $(BUILD)
