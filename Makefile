# SPDX-License-Identifier: Apache-2.0
# Top-level entry points. Every target installs the Debian packages it needs
# when they are missing (apt-get, as root or through sudo), then configures
# with a CMake preset (CMakePresets.json) and builds.
#   make run    build the library, daemon and tools (preset run, build-run/),
#               then start the bus daemon (shmbusd) in the foreground
#   make test   build everything, then run every test through ctest,
#               TEST_JOBS at once (those that must run alone still do:
#               tests/CMakeLists.txt)
#   make bench  build, then run the benchmarks (run it alone: it spins)
#   make deb    the Debian packages, checked by lintian, into build-deb/

PRESET ?= dev
JOBS   ?= $(shell nproc)
# Tests run at once (ctest -j): most wait on daemons, servers and timeouts.
TEST_JOBS ?= $(JOBS)
MAKEFLAGS += --no-print-directory
# The Debian packages, by what needs them. Other additions go on a line of
# their own right after the list they extend (PKGS_TEST += ...).
# The library, the daemon (liburcu, cnats) and the tools: make build, run.
PKGS_BUILD := build-essential cmake pkg-config liburcu-dev libnats-dev
# make test on top of those: cmocka, the bridge's clients (hiredis,
# redis-cli, nc, redis-py for examples/bridge_client.py), nats-server,
# strace (test_stall_wake), python3 (the shell tests' free ports).
PKGS_TEST := libcmocka-dev libhiredis-dev redis-tools netcat-openbsd nats-server strace \
             python3 python3-redis
PKGS_TEST += groff-base man-db
# shmbusd --metrics: promtool and a real Prometheus server (tests/test_metrics*.sh).
PKGS_TEST += prometheus
PKGS_TEST += python3-dev python3-pytest python3-setuptools python3-venv
# systemd-analyze (tests/test_unit.sh verifies shmbusd.service).
PKGS_TEST += systemd
# .ci/run only: sanitizers and libFuzzer (clang), the model checker, the
# formatter; liburing so that CI compiles shmbus-bench's journal-io too.
PKGS_CI := clang libclang-rt-dev clang-format spin liburing-dev
# make bench*: redis-server (bench/bridge.sh), liburing (shmbus-bench
# journal-io).
PKGS_BENCH := redis-server liburing-dev
# make deb: filled by the Debian packaging.
PKGS_DEB :=
PKGS_DEB += debhelper dpkg-dev lintian
# tests/deb-install.sh: dpkg -i does not fetch shmbusd's Depends (adduser,
# not in a minimal Debian; the libraries come with PKGS_BUILD).
PKGS_DEB += adduser
# Packages whose install enables and starts a system service on a systemd
# host (their postinst does): a NATS server on port 4222, Prometheus on
# 9090 of every interface, redis-server. The tests and benchmarks start
# private servers of their own, so the service of such a package that make
# has just installed is stopped and disabled; one installed before is left
# as it is.
PKGS_SERVICE := nats-server prometheus redis-server
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
BUILD_DIR = $(shell sed -n '/"name": "$(1)"/,/binaryDir/s/.*"binaryDir": "\$${sourceDir}\/\([^"]*\)".*/\1/p' CMakePresets.json)
SOURCES = $(shell git ls-files '*.c' '*.h' 2>/dev/null || find libshmbus tests tools bench -name '*.[ch]')

.PHONY: model-wakeup model-reap model-ack model-join model-batch
.PHONY: deps deps-test deps-ci deps-bench deps-model deps-format build build-run test run bench asan-test tsan-test model fuzz \
        format format-check clean

# apt_install PACKAGES: install those of PACKAGES that are missing.
define apt_install
	@missing=""; for p in $(1); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ] && [ -n "$(SUDO)" ] && ! command -v sudo >/dev/null; then \
	  echo "missing packages:$$missing; no sudo to install them: as root, run" >&2; \
	  echo "  apt-get install$$missing   (or apt-get install sudo; usermod -aG sudo $$(id -un))" >&2; \
	  exit 1; \
	fi; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing && \
	  for p in $$missing; do \
	    case " $(PKGS_SERVICE) " in *" $$p "*) \
	      [ -d /run/systemd/system ] || continue; \
	      echo "stopping and disabling the $$p service it started"; \
	      $(SUDO) systemctl disable --now -q $$p.service || \
	        echo "could not stop $$p.service: stop it yourself" >&2;; \
	    esac; \
	  done; \
	fi
endef

deps:
	$(call apt_install,$(PKGS_BUILD))
deps-test:
	$(call apt_install,$(PKGS_BUILD) $(PKGS_TEST))
deps-ci:
	$(call apt_install,$(PKGS_BUILD) $(PKGS_TEST) $(PKGS_CI))
deps-bench:
	$(call apt_install,$(PKGS_BUILD) $(PKGS_TEST) $(PKGS_BENCH))
# make model and make format need one tool each, not the test toolchain.
deps-model:
	$(call apt_install,build-essential spin)
deps-format:
	$(call apt_install,clang-format)

build: deps-test
	cmake --preset $(PRESET)
	cmake --build $(call BUILD_DIR,$(PRESET)) -j$(JOBS)

test: build
	cd $(call BUILD_DIR,$(PRESET)) && ctest --output-on-failure -j$(TEST_JOBS)

# The default bus (or $$SHMBUS_BUS, or BUS=name), with the TCP bridge on
# BRIDGE (BRIDGE= turns it off); Ctrl-C stops it and removes the topics no
# running process uses (the next shmbusd takes the others over), or every
# topic with STOP_CLEAN=1 (shmbusd --stop-clean).
BRIDGE ?= 127.0.0.1:7379
# What running needs only: no tests, benchmarks or Python (the man pages
# and bash completion, which need no tool, are installed with the rest).
build-run: deps
	cmake --preset run
	cmake --build build-run -j$(JOBS)

run: build-run
	build-run/daemon/shmbusd --foreground $(if $(BUS),--bus $(BUS)) \
	  $(if $(BRIDGE),--bridge $(BRIDGE)) $(if $(STOP_CLEAN),--stop-clean)

bench: deps-bench build
	bench/run-all.sh $(call BUILD_DIR,$(PRESET))/bench/shmbus-bench

# shmbusd's TCP bridge against a private redis-server, same hiredis client
# (bench/bridge.sh; REPS, COUNT, ... in the environment). Run it alone.
.PHONY: bench-bridge
bench-bridge: deps-bench build
	bench/bridge.sh $(call BUILD_DIR,$(PRESET))

# Two buses federated through a private nats-server against a plain cnats
# pair through it (bench/nats.sh; REPS, PP_COUNT, ... in the environment).
.PHONY: bench-nats
bench-nats: deps-bench build
	bench/nats.sh $(call BUILD_DIR,$(PRESET))

# The whole suite under AddressSanitizer + UndefinedBehaviorSanitizer.
asan-test: deps-ci
	cmake --preset asan
	cmake --build build-asan -j$(JOBS)
	cd build-asan && ctest --output-on-failure -j$(TEST_JOBS)

# The concurrency tests (label "stress") under ThreadSanitizer.
tsan-test: deps-ci
	cmake --preset tsan
	cmake --build build-tsan -j$(JOBS)
	cd build-tsan && ctest --output-on-failure -j$(TEST_JOBS) -L stress

# Model-check the protocols with spin: the wake-up (docs/model/wakeup.pml),
# the daemon's take-backs from dead or evicted clients and the adoption of
# kept slots (reap.pml), acknowledged groups' takes, acks and give-backs
# against the reliable gate (ack.pml), a reader seated while a publisher
# scans the gates (join.pml), and a batch claim the daemon ends (batch.pml).
# Each must pass as written and fail with its protection left out.
# One target a model, so that `make -j2 model` (.ci/run) checks two at once:
# each spin run uses one CPU.
model: model-wakeup model-reap model-ack model-join model-batch
model-wakeup: deps-model
	scripts/model-check.sh docs/model/wakeup.pml NORELAY PENDING_CLEAR_FIRST
model-reap: deps-model
	scripts/model-check.sh docs/model/reap.pml NAME_FIRST NO_LEAVING NO_RECHECK NO_GIVE_BACK_CAS
model-ack: deps-model
	scripts/model-check.sh docs/model/ack.pml SCAN_ENTRIES_FIRST DROP_HOLD_EARLY SEQ_AFTER_CAS \
		FREE_SLOT_FIRST NO_GEN NO_CURSOR_CHECK READ_RETURNED_IN_PLACE ACK_KEEPS_ALWAYS
model-join: deps-model
	scripts/model-check.sh docs/model/join.pml NO_JOINS
model-batch: deps-model
	scripts/model-check.sh docs/model/batch.pml END_AFTER_SEQ NO_CLAIM_END DAEMON_STORE COUNT_ENDED

# libFuzzer on the control-message and bridge parsers and on the daemon
# against scribbled segments (the targets: the table in scripts/fuzz.sh), for
# FUZZ_SECONDS in all (and every kept crash input). It starts from the corpus
# kept in fuzz/corpus/NAME/ and adds what it finds to build-fuzz/corpus-NAME/.
FUZZ_SECONDS ?= 20
fuzz: deps-ci
	scripts/fuzz.sh $(FUZZ_SECONDS)

# Add to fuzz/corpus/NAME/ what make fuzz found (build-fuzz/corpus-NAME/)
# that reaches coverage it lacks (libFuzzer's -merge=1); commit the result.
.PHONY: fuzz-merge
fuzz-merge: deps-ci
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

format: deps-format
	clang-format -i $(SOURCES)

format-check: deps-format
	clang-format --dry-run --Werror $(SOURCES)

# The Debian packages (debian/), built from a copy of the tracked files in
# DEB_DIR/src so that dpkg-buildpackage's output, written to the parent
# directory of the tree, lands in DEB_DIR; then lintian on them, failing on
# its errors and warnings (debian/*.lintian-overrides say why one is kept).
# tests/deb-install.sh installs them in a throwaway root.
DEB_DIR := build-deb
.PHONY: deb
deb:
	$(call apt_install,$(PKGS_BUILD) $(PKGS_DEB))
	rm -rf $(DEB_DIR) && mkdir -p $(DEB_DIR)/src
	git ls-files -z | tar --null -T - -cf - | tar -xf - -C $(DEB_DIR)/src
	cd $(DEB_DIR)/src && dpkg-buildpackage -b -us -uc -j$(JOBS)
	lintian --fail-on error,warning $(DEB_DIR)/*.changes

clean:
	rm -rf build build-run build-asan build-tsan build-release build-fuzz build-deb
