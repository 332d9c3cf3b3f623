# Nixery in C++: build, run and test. Plain GNU make; everything is built
# under build/. `make run` and `make test` install the Debian packages they
# need when they are missing.

# Compile in parallel unless the caller chose a number of jobs.
ifeq ($(filter -j%,$(MAKEFLAGS)),)
MAKEFLAGS  += -j$(shell nproc 2>/dev/null || echo 2)
endif

PREFIX     ?= /usr/local
DESTDIR    ?=
BUILD      ?= build
CXX        ?= g++
PKGS       := libcurl openssl sqlite3 libarchive zlib libdeflate libzstd RapidJSON

CXXFLAGS   ?= -O2 -g
WARNINGS   := -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Wcast-align \
              -Wunused -Woverloaded-virtual -Wnull-dereference -Wformat=2 \
              -Wimplicit-fallthrough -Wextra-semi \
              $(if $(findstring clang,$(shell $(CXX) --version 2>/dev/null)),,-Wlogical-op)
ALL_CXXFLAGS = -std=c++20 $(WARNINGS) $(CXXFLAGS) -Isrc -MMD -MP \
               $(shell pkg-config --cflags $(PKGS) 2>/dev/null) -pthread
# Read when linking (=, not :=): `make deps-build` may install pkg-config
# after this file was read.
LDLIBS      = $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lfcgi -pthread

# Debian packages, by purpose. .ci/run installs all of them.
DEBIAN_BUILD := g++ make pkg-config libfcgi-dev rapidjson-dev libcurl4-openssl-dev \
                libssl-dev libsqlite3-dev libarchive-dev zlib1g-dev libdeflate-dev libzstd-dev \
                doctest-dev
DEBIAN_RUN   := nginx nix-bin busybox-static git ca-certificates
# The S3 tests run s3rver from the npm registry; Debian's npm brings node.
# An npm already on PATH (NodeSource's node bundles one) is used as it is.
DEBIAN_NPM   := $(if $(shell command -v npm 2>/dev/null),,npm)
DEBIAN_TEST  := skopeo umoci podman runc docker.io containerd python3 python3-cryptography curl time \
                openssl clang-format pigz zstd \
                systemd clang libclang-rt-14-dev $(DEBIAN_NPM)

SRC_ALL    := $(shell find src -name '*.cpp' | sort)
SRC_MAIN   := src/main.cpp
SRC_LIB    := $(filter-out $(SRC_MAIN),$(SRC_ALL))
SRC_UNIT   := $(sort $(wildcard tests/unit/*.cpp))
SRC_TOOLS  := $(sort $(wildcard tests/tools/*.cpp))
OBJ_LIB    := $(SRC_LIB:%.cpp=$(BUILD)/obj/%.o)
OBJ_MAIN   := $(SRC_MAIN:%.cpp=$(BUILD)/obj/%.o)
OBJ_UNIT   := $(SRC_UNIT:%.cpp=$(BUILD)/obj/%.o)

SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

.PHONY: fuzz fuzz-build soak
.PHONY: all test unit integration run bench bench-layering deps-build deps-run deps-test print-debian-packages \
        install uninstall clean format check

all: $(BUILD)/nixery $(BUILD)/unit-tests $(BUILD)/storage-tool

$(BUILD)/nixery: $(OBJ_MAIN) $(BUILD)/libnixery.a
	$(CXX) $(ALL_CXXFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/libnixery.a: $(OBJ_LIB)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/unit-tests: $(OBJ_UNIT) $(BUILD)/libnixery.a
	$(CXX) $(ALL_CXXFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/bench-pack: $(BUILD)/obj/tests/bench/pack.o $(BUILD)/libnixery.a
	$(CXX) $(ALL_CXXFLAGS) -o $@ $^ $(LDLIBS)

# A test program that drives one storage backend (tests/integration).
$(BUILD)/storage-tool: $(BUILD)/obj/tests/tools/storage_tool.o $(BUILD)/libnixery.a
	$(CXX) $(ALL_CXXFLAGS) -o $@ $^ $(LDLIBS)

# A libFuzzer harness (tests/fuzz), linked against a library built for it
# (see `make fuzz`).
.PRECIOUS: $(BUILD)/obj/tests/fuzz/%.o
$(BUILD)/fuzz_%: $(BUILD)/obj/tests/fuzz/fuzz_%.o $(BUILD)/libnixery.a
	$(CXX) $(ALL_CXXFLAGS) -fsanitize=fuzzer -o $@ $^ $(LDLIBS)

$(BUILD)/obj/%.o: %.cpp
	@mkdir -p $(dir $@)
	$(CXX) $(ALL_CXXFLAGS) -c -o $@ $<

-include $(OBJ_LIB:.o=.d) $(OBJ_MAIN:.o=.d) $(OBJ_UNIT:.o=.d) $(BUILD)/obj/tests/bench/pack.d \
         $(BUILD)/obj/tests/tools/storage_tool.d $(wildcard $(BUILD)/obj/tests/fuzz/*.d)

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

# ARGS goes to doctest: `make unit ARGS='-ts=core'` (a folder's suite),
# `ARGS='-tc=*LockTable*'` (test cases).
unit: $(BUILD)/unit-tests
	$(BUILD)/unit-tests $(ARGS)

# Test modules run side by side (tests/integration/run.py): J at once.
# K selects tests as unittest's -k does (`make integration K=gc`), M modules
# (`make integration M='test_pull test_run'`).
J ?= 4
integration: $(BUILD)/nixery $(BUILD)/storage-tool
	/usr/bin/python3 tests/integration/run.py -j $(J) $(if $(K),-k '$(K)') $(M)

# Ten minutes of mixed load on one local instance (SOAK_SECONDS); prints
# requests, failed valid pulls (must be 0) and the workers' RSS and fds.
soak: $(BUILD)/nixery
	/usr/bin/python3 tests/soak/soak.py

# Benchmarks print figures; they are not pass/fail tests.
bench: deps-test
	$(call ensure_debian_packages,wrk apache2-utils)
	tests/bench/pack.sh
	tests/bench/serve.sh
	@$(MAKE) --no-print-directory bench-layering

# Bytes a node downloads for a corpus of related images (Debian's dependency
# data standing in for Nix closures), per layering strategy and budget.
bench-layering: $(BUILD)/nixery
	@apt-cache show zlib1g >/dev/null 2>&1 || $(SUDO) apt-get update -qq
	nice -n 19 tests/bench/layering.py --nixery $(BUILD)/nixery

# --- fuzzing -------------------------------------------------------------------
# libFuzzer harnesses, one per parser of untrusted input (tests/fuzz/*.cpp).
# Each runs FUZZ_SECONDS on its seed corpus (tests/fuzz/corpus/<harness>,
# read-only) plus a working corpus under build/fuzz/corpus; a crash stops
# `make fuzz` and leaves its input in build/fuzz/crashes/.
FUZZ_BUILD   := build/fuzz
FUZZ_CXX     ?= $(if $(shell command -v ccache 2>/dev/null),ccache clang++,clang++)
FUZZ_FLAGS   := -O1 -g -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all \
                -fsanitize-recover=pointer-overflow -fno-omit-frame-pointer \
                -Wno-ambiguous-reversed-operator
FUZZERS      := $(patsubst tests/fuzz/%.cpp,%,$(sort $(wildcard tests/fuzz/fuzz_*.cpp)))
FUZZ_SECONDS ?= 60

fuzz-build:
	@$(MAKE) --no-print-directory BUILD=$(FUZZ_BUILD) CXX='$(FUZZ_CXX)' CXXFLAGS='$(FUZZ_FLAGS)' \
	  $(FUZZERS:%=$(FUZZ_BUILD)/%)

fuzz: fuzz-build
	@mkdir -p $(FUZZ_BUILD)/crashes
	@for f in $(FUZZERS); do \
	  mkdir -p $(FUZZ_BUILD)/corpus/$$f && \
	  echo "fuzz $$f for $(FUZZ_SECONDS) s" && \
	  UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1:suppressions=tests/fuzz/ubsan.supp \
	    $(FUZZ_BUILD)/$$f -max_total_time=$(FUZZ_SECONDS) \
	    -max_len=65536 -timeout=10 -rss_limit_mb=1024 -print_final_stats=1 \
	    -artifact_prefix=$(FUZZ_BUILD)/crashes/$$f- \
	    $(FUZZ_BUILD)/corpus/$$f tests/fuzz/corpus/$$f 2>$(FUZZ_BUILD)/$$f.log || \
	    { tail -50 $(FUZZ_BUILD)/$$f.log; exit 1; }; \
	  grep -E '^stat::number_of_executed_units|^stat::new_units_added' $(FUZZ_BUILD)/$$f.log; \
	done

clean:
	rm -rf $(BUILD)

# --- install -----------------------------------------------------------------
# The binary finds its data files in ../share/nixery next to it, so BINDIR
# and DATADIR follow PREFIX. systemd reads units from PREFIX/lib/systemd/system
# for PREFIX /usr and /usr/local alike, and sysusers.d from PREFIX/lib too.
NIX_FILES       := $(wildcard src/nix/*.nix)
NGINX_TEMPLATES := $(wildcard nginx/*.conf.in)
BINDIR          := $(PREFIX)/bin
DATADIR         := $(PREFIX)/share/nixery
SYSCONFDIR      ?= /etc
SYSTEMDUNITDIR  ?= $(PREFIX)/lib/systemd/system
SYSUSERSDIR     ?= $(PREFIX)/lib/sysusers.d
NGINX_SITES     ?= $(SYSCONFDIR)/nginx/sites-available
NGINX_ENABLED   ?= $(SYSCONFDIR)/nginx/sites-enabled
UNITS           := nixery.service nixery.socket nixery-gc.service nixery-gc.timer
# The production nginx configuration `make install` renders with
# `nixery nginx-config`; the defaults are those of nixery.service and
# nixery.socket. README.md, "Deploy on a VPS", says what to change.
SITE_SERVER_NAME     ?= _
SITE_HTTPS_LISTEN    ?= 443
SITE_HTTP_LISTEN     ?= 80
SITE_CERTIFICATE     ?= $(SYSCONFDIR)/nixery/tls/fullchain.pem
SITE_CERTIFICATE_KEY ?= $(SYSCONFDIR)/nixery/tls/privkey.pem
SITE_SOCKET          ?= /run/nixery/fcgi.sock
SITE_CACHE_DIR       ?= /var/lib/nginx/nixery-cache
SITE_ACCESS_LOG      ?= /var/log/nginx/access.log
SITE_STATE_DIR       ?= /var/lib/nixery
SITE_STORAGE_PATH    ?= /var/lib/nixery/storage
SITE_BUILD_TIMEOUT   ?= 1800
# More options of `nixery nginx-config`: --http2-directive (nginx >= 1.25.1),
# --ktls (nginx >= 1.21.4 with OpenSSL 3).
SITE_NGINX_OPTIONS   ?=

# nixery.conf in NGINX_SITES is the administrator's once installed: it is
# written only when absent (like nginx's own nginx.conf), and removed by
# uninstall only when it is still the one install rendered, together with
# the link to it in NGINX_ENABLED (README.md's `ln -s`, or a relative one),
# which would otherwise stop nginx from starting. Unchanged is the same as
# the copy kept as DATADIR/nginx/nixery.conf.installed (a later install may
# render with other SITE_* values) or as the latest rendering, which install
# always updates, DATADIR/nginx/nixery.conf (README's upgrade step copies it).
install: $(BUILD)/nixery
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(DATADIR)/sql $(DESTDIR)$(DATADIR)/nix/demo \
	  $(DESTDIR)$(DATADIR)/nginx $(DESTDIR)$(SYSTEMDUNITDIR) $(DESTDIR)$(SYSUSERSDIR) \
	  $(DESTDIR)$(NGINX_SITES)
	install -m 0755 $(BUILD)/nixery $(DESTDIR)$(BINDIR)/nixery
	install -m 0644 sql/*.sql $(DESTDIR)$(DATADIR)/sql/
	install -m 0644 $(NIX_FILES) $(DESTDIR)$(DATADIR)/nix/
	install -m 0644 src/nix/demo/default.nix $(DESTDIR)$(DATADIR)/nix/demo/
	install -m 0644 $(NGINX_TEMPLATES) $(DESTDIR)$(DATADIR)/nginx/
	install -m 0644 systemd/nixery.env.example $(DESTDIR)$(DATADIR)/nixery.env.example
	for unit in $(UNITS); do \
	  sed 's|@BINDIR@|$(BINDIR)|g' systemd/$$unit > $(DESTDIR)$(SYSTEMDUNITDIR)/$$unit && \
	  chmod 0644 $(DESTDIR)$(SYSTEMDUNITDIR)/$$unit || exit 1; \
	done
	install -m 0644 systemd/nixery.sysusers $(DESTDIR)$(SYSUSERSDIR)/nixery.conf
	env NIXERY_STATE_DIR='$(SITE_STATE_DIR)' STORAGE_PATH='$(SITE_STORAGE_PATH)' \
	  NIXERY_BUILD_TIMEOUT='$(SITE_BUILD_TIMEOUT)' $(BUILD)/nixery nginx-config \
	  --server-name '$(SITE_SERVER_NAME)' --listen '$(SITE_HTTPS_LISTEN)' \
	  --http-listen '$(SITE_HTTP_LISTEN)' --certificate '$(SITE_CERTIFICATE)' \
	  --certificate-key '$(SITE_CERTIFICATE_KEY)' --socket '$(SITE_SOCKET)' \
	  --cache-dir '$(SITE_CACHE_DIR)' --access-log '$(SITE_ACCESS_LOG)' $(SITE_NGINX_OPTIONS) \
	  > $(DESTDIR)$(DATADIR)/nginx/nixery.conf
	@if [ -e $(DESTDIR)$(NGINX_SITES)/nixery.conf ]; then \
	  echo "kept $(DESTDIR)$(NGINX_SITES)/nixery.conf; the new rendering is $(DESTDIR)$(DATADIR)/nginx/nixery.conf"; \
	else \
	  echo "install -m 0644 $(DESTDIR)$(DATADIR)/nginx/nixery.conf $(DESTDIR)$(NGINX_SITES)/nixery.conf"; \
	  install -m 0644 $(DESTDIR)$(DATADIR)/nginx/nixery.conf $(DESTDIR)$(NGINX_SITES)/nixery.conf; \
	  install -m 0644 $(DESTDIR)$(DATADIR)/nginx/nixery.conf $(DESTDIR)$(DATADIR)/nginx/nixery.conf.installed; \
	fi

uninstall:
	@site=$(DESTDIR)$(NGINX_SITES)/nixery.conf; \
	if cmp -s "$$site" $(DESTDIR)$(DATADIR)/nginx/nixery.conf.installed || \
	   cmp -s "$$site" $(DESTDIR)$(DATADIR)/nginx/nixery.conf; then \
	  echo "rm -f $(DESTDIR)$(NGINX_SITES)/nixery.conf"; rm -f $(DESTDIR)$(NGINX_SITES)/nixery.conf; \
	  link=$(DESTDIR)$(NGINX_ENABLED)/nixery.conf; \
	  if [ -L "$$link" ]; then \
	    case "$$(readlink "$$link")" in \
	      $(NGINX_SITES)/nixery.conf|../$(notdir $(NGINX_SITES))/nixery.conf) \
	        echo "rm -f $$link"; rm -f "$$link";; \
	    esac; \
	  fi; \
	elif [ -e $(DESTDIR)$(NGINX_SITES)/nixery.conf ]; then \
	  echo "kept $(DESTDIR)$(NGINX_SITES)/nixery.conf: it was changed after install"; \
	fi
	rm -f $(DESTDIR)$(BINDIR)/nixery $(DESTDIR)$(SYSUSERSDIR)/nixery.conf
	rm -f $(addprefix $(DESTDIR)$(SYSTEMDUNITDIR)/,$(UNITS))
	rm -f $(DESTDIR)$(DATADIR)/sql/*.sql $(addprefix $(DESTDIR)$(DATADIR)/nix/,$(notdir $(NIX_FILES))) \
	  $(DESTDIR)$(DATADIR)/nix/demo/default.nix $(DESTDIR)$(DATADIR)/nixery.env.example \
	  $(addprefix $(DESTDIR)$(DATADIR)/nginx/,$(notdir $(NGINX_TEMPLATES))) \
	  $(DESTDIR)$(DATADIR)/nginx/nixery.conf $(DESTDIR)$(DATADIR)/nginx/nixery.conf.installed
	-rmdir $(DESTDIR)$(DATADIR)/sql $(DESTDIR)$(DATADIR)/nix/demo $(DESTDIR)$(DATADIR)/nix \
	  $(DESTDIR)$(DATADIR)/nginx $(DESTDIR)$(DATADIR)

format:
	clang-format -i $(SRC_ALL) $(shell find src tests/unit -name '*.hpp') $(SRC_UNIT) $(SRC_TOOLS)

# --- checks --------------------------------------------------------------------
# The core is pure: no I/O, no clock, no environment, no adapter libraries.
CORE_FORBIDDEN := fcgiapp.h|curl/|sqlite3.h|archive|unistd.h|fstream|iostream|cstdio|ctime|chrono|filesystem|sys/|getenv|fopen

# Dependencies point down: only config reads the environment, util knows
# nothing of the rest, commands are the edge, and the adapters below the
# builder know neither it nor the registry.
check:
	@if grep -nE '#include <($(CORE_FORBIDDEN))|getenv|std::time|system_clock' src/core/*; then \
	  echo "src/core must stay pure (see STYLE)"; exit 1; fi
	@if grep -n 'getenv' $(filter-out src/config.cpp,$(SRC_ALL)); then \
	  echo "only src/config.* reads the environment (see STYLE)"; exit 1; fi
	@if grep -n '#include "' src/util/* | grep -v '#include "util/'; then \
	  echo "src/util includes only src/util (see STYLE)"; exit 1; fi
	@if grep -rn '#include "cmd/' src --exclude-dir=cmd --exclude=main.cpp; then \
	  echo "only main.cpp and src/cmd include src/cmd (see STYLE)"; exit 1; fi
	@if grep -rnE '#include "(registry|builder|fcgi|cmd)/' src/core src/util src/storage src/nix \
	  src/pack src/cache src/http; then \
	  echo "the adapters depend on neither the builder nor the registry (see STYLE)"; exit 1; fi
	clang-format --dry-run -Werror $(SRC_ALL) $(shell find src tests/unit -name '*.hpp') $(SRC_UNIT) $(SRC_TOOLS)
	$(MAKE) --no-print-directory BUILD=build/check CXXFLAGS="-O1 -g -Werror -fsanitize=address,undefined -fno-omit-frame-pointer" all
	ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1 build/check/unit-tests
	@$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=5
