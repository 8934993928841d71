# SPDX-License-Identifier: Apache-2.0
# Top-level entry points. Every target installs the Debian packages it needs
# when they are missing (apt-get, as root or through sudo), then configures
# with a CMake preset (CMakePresets.json) and builds.
#   make run    build, then start the bus daemon (shmbusd) in the foreground
#   make test   build, then run every test through ctest, TEST_JOBS at once
#               (those that must run alone still do: tests/CMakeLists.txt)
#   make bench  build, then run the benchmarks (run it alone: it spins)

PRESET ?= dev
JOBS   ?= $(shell nproc)
# Tests run at once (ctest -j): most wait on daemons, servers and timeouts.
TEST_JOBS ?= $(JOBS)
MAKEFLAGS += --no-print-directory
PKGS   := build-essential cmake pkg-config liburcu-dev libcmocka-dev libhiredis-dev redis-tools netcat-openbsd \
          redis-server clang libclang-rt-dev clang-format strace spin python3 libnats-dev \
          nats-server liburing-dev
PKGS   += systemd
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
BUILD_DIR = $(shell sed -n '/"name": "$(1)"/,/binaryDir/s/.*"binaryDir": "\$${sourceDir}\/\([^"]*\)".*/\1/p' CMakePresets.json)
SOURCES = $(shell git ls-files '*.c' '*.h' 2>/dev/null || find libshmbus tests tools bench -name '*.[ch]')

.PHONY: deps build test run bench asan-test tsan-test model fuzz format format-check clean

deps:
	@missing=""; for p in $(PKGS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi

build: deps
	cmake --preset $(PRESET)
	cmake --build $(call BUILD_DIR,$(PRESET)) -j$(JOBS)

test: build
	cd $(call BUILD_DIR,$(PRESET)) && ctest --output-on-failure -j$(TEST_JOBS)

# The default bus (or $$SHMBUS_BUS, or BUS=name), with the TCP bridge on
# BRIDGE (BRIDGE= turns it off); Ctrl-C stops it and removes the topics no
# running process uses (the next shmbusd takes the others over), or every
# topic with STOP_CLEAN=1 (shmbusd --stop-clean).
BRIDGE ?= 127.0.0.1:7379
run: build
	$(call BUILD_DIR,$(PRESET))/daemon/shmbusd --foreground $(if $(BUS),--bus $(BUS)) \
	  $(if $(BRIDGE),--bridge $(BRIDGE)) $(if $(STOP_CLEAN),--stop-clean)

bench: build
	bench/run-all.sh $(call BUILD_DIR,$(PRESET))/bench/shmbus-bench

# shmbusd's TCP bridge against a private redis-server, same hiredis client
# (bench/bridge.sh; REPS, COUNT, ... in the environment). Run it alone.
.PHONY: bench-bridge
bench-bridge: build
	bench/bridge.sh $(call BUILD_DIR,$(PRESET))

# Two buses federated through a private nats-server against a plain cnats
# pair through it (bench/nats.sh; REPS, PP_COUNT, ... in the environment).
.PHONY: bench-nats
bench-nats: build
	bench/nats.sh $(call BUILD_DIR,$(PRESET))

# The whole suite under AddressSanitizer + UndefinedBehaviorSanitizer.
asan-test: deps
	cmake --preset asan
	cmake --build build-asan -j$(JOBS)
	cd build-asan && ctest --output-on-failure -j$(TEST_JOBS)

# The concurrency tests (label "stress") under ThreadSanitizer.
tsan-test: deps
	cmake --preset tsan
	cmake --build build-tsan -j$(JOBS)
	cd build-tsan && ctest --output-on-failure -j$(TEST_JOBS) -L stress

# Model-check the protocols with spin: the wake-up (docs/model/wakeup.pml),
# the daemon's take-backs from dead or evicted clients and the adoption of
# kept slots (reap.pml), acknowledged groups' takes, acks and give-backs
# against the reliable gate (ack.pml), a reader seated while a publisher
# scans the gates (join.pml). Each must pass as written and fail with its
# protection left out.
model: deps
	scripts/model-check.sh docs/model/wakeup.pml NORELAY PENDING_CLEAR_FIRST
	scripts/model-check.sh docs/model/reap.pml NAME_FIRST NO_LEAVING NO_RECHECK NO_GIVE_BACK_CAS
	scripts/model-check.sh docs/model/ack.pml SCAN_ENTRIES_FIRST DROP_HOLD_EARLY SEQ_AFTER_CAS \
		FREE_SLOT_FIRST NO_GEN NO_CURSOR_CHECK READ_RETURNED_IN_PLACE ACK_KEEPS_ALWAYS
	scripts/model-check.sh docs/model/join.pml NO_JOINS
	scripts/model-check.sh docs/model/batch.pml END_AFTER_SEQ NO_CLAIM_END DAEMON_STORE COUNT_ENDED

# libFuzzer on the control-message and bridge parsers and on the daemon
# against scribbled segments (the targets: the table in scripts/fuzz.sh), for
# FUZZ_SECONDS in all (and every kept crash input). It starts from the corpus
# kept in fuzz/corpus/NAME/ and adds what it finds to build-fuzz/corpus-NAME/.
FUZZ_SECONDS ?= 20
fuzz: deps
	scripts/fuzz.sh $(FUZZ_SECONDS)

# Add to fuzz/corpus/NAME/ what make fuzz found (build-fuzz/corpus-NAME/)
# that reaches coverage it lacks (libFuzzer's -merge=1); commit the result.
.PHONY: fuzz-merge
fuzz-merge: deps
	scripts/fuzz.sh --merge

# The chaos test (tests/stress/chaos.c: SIGKILL at random, daemon bounces)
# for SECONDS seconds; PRESET=tsan or asan to soak under a sanitizer (with
# ctest's options).
SECONDS ?= 600
.PHONY: soak
soak: build
	SHMBUS_CHAOS_SECONDS=$(SECONDS) \
	TSAN_OPTIONS="halt_on_error=1 history_size=7 suppressions=$(CURDIR)/tests/tsan.supp" \
	$(call BUILD_DIR,$(PRESET))/tests/stress_chaos

format: deps
	clang-format -i $(SOURCES)

format-check: deps
	clang-format --dry-run --Werror $(SOURCES)

clean:
	rm -rf build build-asan build-tsan build-release build-fuzz
