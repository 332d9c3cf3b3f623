# Nixery in C++: build, run and test. Plain GNU make; everything is built
# under build/. `make run` and `make test` install the Debian packages they
# need when they are missing.

PREFIX     ?= /usr/local
DESTDIR    ?=
BUILD      ?= build
CXX        ?= g++
PKGS       := libcurl openssl sqlite3 libarchive zlib RapidJSON

CXXFLAGS   ?= -O2 -g
WARNINGS   := -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Wcast-align \
              -Wunused -Woverloaded-virtual -Wnull-dereference -Wformat=2
ALL_CXXFLAGS = -std=c++20 $(WARNINGS) $(CXXFLAGS) -Isrc -MMD -MP \
               $(shell pkg-config --cflags $(PKGS) 2>/dev/null) -pthread
LDLIBS     := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lfcgi -pthread

# Debian packages, by purpose. .ci/run installs all of them.
DEBIAN_BUILD := g++ make pkg-config libfcgi-dev rapidjson-dev libcurl4-openssl-dev \
                libssl-dev libsqlite3-dev libarchive-dev zlib1g-dev doctest-dev
DEBIAN_RUN   := nginx nix-bin busybox-static git ca-certificates
# The S3 tests run s3rver from the npm registry; Debian's npm brings node.
# An npm already on PATH (NodeSource's node bundles one) is used as it is.
DEBIAN_NPM   := $(if $(shell command -v npm 2>/dev/null),,npm)
DEBIAN_TEST  := skopeo umoci python3 python3-cryptography curl openssl clang-format $(DEBIAN_NPM)

SRC_ALL    := $(shell find src -name '*.cpp' | sort)
SRC_MAIN   := src/main.cpp
SRC_LIB    := $(filter-out $(SRC_MAIN),$(SRC_ALL))
SRC_UNIT   := $(sort $(wildcard tests/unit/*.cpp))
SRC_TOOLS  := $(sort $(wildcard tests/tools/*.cpp))
OBJ_LIB    := $(SRC_LIB:%.cpp=$(BUILD)/obj/%.o)
OBJ_MAIN   := $(SRC_MAIN:%.cpp=$(BUILD)/obj/%.o)
OBJ_UNIT   := $(SRC_UNIT:%.cpp=$(BUILD)/obj/%.o)

SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

.PHONY: all test unit integration run deps-build deps-run deps-test print-debian-packages \
        install uninstall clean format check

all: $(BUILD)/nixery $(BUILD)/unit-tests $(BUILD)/storage-tool

$(BUILD)/nixery: $(OBJ_MAIN) $(BUILD)/libnixery.a
	$(CXX) $(ALL_CXXFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/libnixery.a: $(OBJ_LIB)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/unit-tests: $(OBJ_UNIT) $(BUILD)/libnixery.a
	$(CXX) $(ALL_CXXFLAGS) -o $@ $^ $(LDLIBS)

# A test program that drives one storage backend (tests/integration).
$(BUILD)/storage-tool: $(BUILD)/obj/tests/tools/storage_tool.o $(BUILD)/libnixery.a
	$(CXX) $(ALL_CXXFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/obj/%.o: %.cpp
	@mkdir -p $(dir $@)
	$(CXX) $(ALL_CXXFLAGS) -c -o $@ $<

-include $(OBJ_LIB:.o=.d) $(OBJ_MAIN:.o=.d) $(OBJ_UNIT:.o=.d) $(BUILD)/obj/tests/tools/storage_tool.d

# --- Debian packages ---------------------------------------------------------
define ensure_debian_packages
	@missing=$$(for p in $(1); do \
	    dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'ok installed' || echo $$p; \
	  done); \
	if [ -n "$$missing" ]; then \
	  echo "installing missing Debian packages:" $$missing; \
	  $(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi
endef

deps-build:
	$(call ensure_debian_packages,$(DEBIAN_BUILD))
deps-run: deps-build
	$(call ensure_debian_packages,$(DEBIAN_RUN))
deps-test: deps-run
	$(call ensure_debian_packages,$(DEBIAN_TEST))

print-debian-packages:
	@echo $(DEBIAN_BUILD) $(DEBIAN_RUN) $(DEBIAN_TEST)

# --- run and test ------------------------------------------------------------
# The instance `make run` starts; every setting can be overridden from the
# environment (see README.md).
RUN_STATE   ?= $(CURDIR)/var/state
RUN_STORAGE ?= $(CURDIR)/var/storage

run: deps-run
	@$(MAKE) --no-print-directory $(BUILD)/nixery
	NIXERY_STATE_DIR=$${NIXERY_STATE_DIR:-$(RUN_STATE)} \
	STORAGE_PATH=$${STORAGE_PATH:-$(if $(filter gcs s3,$(NIXERY_STORAGE_BACKEND)),,$(RUN_STORAGE))} \
	  exec $(BUILD)/nixery run

test: deps-test
	@$(MAKE) --no-print-directory all
	$(BUILD)/unit-tests
	@$(MAKE) --no-print-directory check
	@$(MAKE) --no-print-directory integration

unit: $(BUILD)/unit-tests
	$(BUILD)/unit-tests

integration: $(BUILD)/nixery
	/usr/bin/python3 -m unittest discover -v -s tests/integration -t tests/integration

clean:
	rm -rf $(BUILD)

format:
	clang-format -i $(SRC_ALL) $(shell find src tests/unit -name '*.hpp') $(SRC_UNIT) $(SRC_TOOLS)

# --- checks --------------------------------------------------------------------
# The core is pure: no I/O, no clock, no environment, no adapter libraries.
CORE_FORBIDDEN := fcgiapp.h|curl/|sqlite3.h|archive|unistd.h|fstream|iostream|cstdio|ctime|chrono|filesystem|sys/|getenv|fopen

check:
	@if grep -nE '#include <($(CORE_FORBIDDEN))|getenv|std::time|system_clock' src/core/*; then \
	  echo "src/core must stay pure (see STYLE)"; exit 1; fi
	clang-format --dry-run -Werror $(SRC_ALL) $(shell find src tests/unit -name '*.hpp') $(SRC_UNIT) $(SRC_TOOLS)
	$(MAKE) --no-print-directory BUILD=build/check CXXFLAGS="-O1 -g -Werror -fsanitize=address,undefined -fno-omit-frame-pointer" all
	ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1 build/check/unit-tests
