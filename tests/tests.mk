# Included by the Makefile: building and running the tests.
#
#   make test    installs missing Debian packages, builds the library, the
#                criterion unit tests and the programs the whole-program
#                tests run under LD_PRELOAD (plain and fortified), and runs
#                every test.

TESTS_DIR   := $(BUILD)/tests
TEST_CFLAGS  = -O2 -g $(SAN_FLAGS) $(DEBUG_FLAGS) $(WARN) -std=gnu11 -D_GNU_SOURCE -Ishim -Iinclude \
	-DBUILD_DIR='"$(abspath $(BUILD))"' -DSOURCE_DIR='"$(abspath .)"' \
	-DSANITIZER_RUNTIME='"$(SAN_RUNTIME)"'
PROG_CFLAGS := -O2 -g $(SAN_FLAGS) $(WARN) -Iinclude
# Leaks are not what the sanitizer runs look for: folio's fork children and
# the test harness keep memory on purpose.
# TSan: stop at the first report (a criterion test then crashes; a program
# exits 66), with the suppressions of tests/tsan.supp; die_after_fork=0: a
# fork child of the multi-threaded tests starts folio's flusher thread, which
# TSan would otherwise refuse ("starting new threads after multi-threaded
# fork is not supported"): it works with glibc, as the plain runs show.
SAN_ENV     := $(if $(SANITIZE),ASAN_OPTIONS=detect_leaks=0 UBSAN_OPTIONS=print_stacktrace=1 \
	       TSAN_OPTIONS='halt_on_error=1 second_deadlock_stack=1 die_after_fork=0 \
	       suppressions=$(abspath tests/tsan.supp)')
FORTIFY     := -D_FORTIFY_SOURCE=2 -D_FILE_OFFSET_BITS=64

# Unit tests link the pure shim modules directly.
UNIT_SHIM   := shim/bind.c shim/config.c shim/fdtable.c shim/pathmatch.c shim/log.c shim/real.c shim/page.c shim/ptree.c \
	       shim/rcu.c shim/uaccess.c shim/journal.c
UNIT_LIBS    = $(shell pkg-config --cflags --libs liburcu-bp) -lcriterion -ldl -lpthread
UNIT_TESTS  := $(TESTS_DIR)/test_config $(TESTS_DIR)/test_pathmatch $(TESTS_DIR)/test_page \
	       $(TESTS_DIR)/test_debug $(TESTS_DIR)/test_errseq $(TESTS_DIR)/test_fdtable \
	       $(TESTS_DIR)/test_uaccess \
	       $(TESTS_DIR)/test_ptree
# Static TLS sizes around what left folio's flusher 2 KiB of its stack.
BIGTLS      := $(TESTS_DIR)/bigtls-244 $(TESTS_DIR)/bigtls-248 $(TESTS_DIR)/bigtls-252
PROGRAMS    := $(TESTS_DIR)/apicheck $(TESTS_DIR)/apicheck-fortify \
	       $(TESTS_DIR)/fdcheck $(TESTS_DIR)/fdcheck-fortify \
	       $(TESTS_DIR)/fsx $(TESTS_DIR)/fsx-fortify \
	       $(TESTS_DIR)/stress $(TESTS_DIR)/stress-fortify \
	       $(TESTS_DIR)/cachecheck $(TESTS_DIR)/cachecheck-fortify \
	       $(TESTS_DIR)/crashcheck
PROGRAMS    += $(TESTS_DIR)/allocator.so $(TESTS_DIR)/libfolio-faults.so $(TESTS_DIR)/folio-guardian \
	       $(TESTS_DIR)/callsites \
	       $(TESTS_DIR)/ownlibc $(TESTS_DIR)/killcheck $(TESTS_DIR)/sharecheck $(BIGTLS)
# The whole-program suites by area (tests/README): the ones that run folio's
# test programs, then crash reports, stress and real programs.
PROGRAM_SUITES := $(TESTS_DIR)/test_api $(TESTS_DIR)/test_cache $(TESTS_DIR)/test_writeback \
		  $(TESTS_DIR)/test_stats $(TESTS_DIR)/test_tools
PROGRAM_TESTS := $(PROGRAM_SUITES) $(TESTS_DIR)/test_crash $(TESTS_DIR)/test_durability \
		 $(TESTS_DIR)/test_sharing $(TESTS_DIR)/test_stress \
		 $(TESTS_DIR)/test_real
# Criterion's sandbox needs an address ThreadSanitizer leaves free (see the file).
CRITERION_TSAN := $(if $(filter thread,$(SAN_LIST)),tests/tsan_criterion.c)

.PHONY: check check-quick check-valgrind valgrind-run check-all
# The wrapper tests run scripts/folio, which preloads the plain build/libfolio.so
# (not the sanitized one): a sanitizer run builds that too.  A plain make test
# ends with check-quick under ASan and UBSan together (QUICK_SANITIZE).
QUICK_SANITIZE := address,undefined
test: deps
	@$(if $(SANITIZE),$(MAKE) --no-print-directory SANITIZE= all &&) \
		$(MAKE) --no-print-directory check \
		$(if $(SANITIZE),,&& $(MAKE) --no-print-directory SANITIZE=$(QUICK_SANITIZE) check-quick)

check: all $(UNIT_TESTS) $(PROGRAMS) $(PROGRAM_TESTS)
	@for t in $(UNIT_TESTS) $(PROGRAM_TESTS); do \
		echo "== $$t"; \
		$(SAN_ENV) $$t --jobs=2 || exit 1; \
	done
	@$(MAKE) --no-print-directory fuzz-short
	@echo "make test$(if $(SANITIZE), SANITIZE=$(SANITIZE)): all tests passed"

# The CI-length sanitizer pass of make test: the unit tests and the quickest
# whole-program tests that reach every layer (every call, descriptors, torn
# pages, write-back with a tiny cache and dirty limit, injected errors, the
# statistics), in a build with SANITIZE (make test runs it with
# QUICK_SANITIZE).  The full runs are make test SANITIZE=... and check-all.
QUICK_LIST  := api/* fdtable/follows_the_kernel cache/pages_are_never_torn \
	       cache/large_reads_see_dirty_pages_and_holes fsx/model_checker_with_a_tiny_* \
	       writeback/errors_reach_each_open_file_once stats/json_report_parses_and_adds_up \
	       symbols/calls_never_land_in_the_programs_own_functions \
	       durability/sigkill_overwrites_from_two_threads durability/the_programs_own_fault
empty       :=
space       := $(empty) $(empty)
QUICK_TESTS := @($(subst $(space),|,$(strip $(QUICK_LIST))))
check-quick: all $(UNIT_TESTS) $(PROGRAMS) $(PROGRAM_TESTS)
	@for t in $(UNIT_TESTS); do \
		echo "== $$t"; \
		$(SAN_ENV) $$t --jobs=2 || exit 1; \
	done
	@for t in $(PROGRAM_SUITES) $(TESTS_DIR)/test_durability; do \
		echo "== $$t, a few"; \
		$(SAN_ENV) $$t --jobs=2 --filter '$(QUICK_TESTS)' || exit 1; \
	done
	@echo "make check-quick SANITIZE=$(SANITIZE): all tests passed"

# make check-valgrind: the whole-program tests with each of folio's test
# programs under memcheck (TEST_WRAPPER, read by tests/harness.h's prog()),
# in the plain build; a memcheck error makes the program exit 99 and its
# test fail.  Then the copies of bad buffers (test_uaccess), whose counts
# valgrind makes folio take from the kernel (shim/uaccess.c).
# Suppressions, each with its reason: tests/valgrind.supp.
# The suites that run folio's test programs; config/* counts the lines each
# process prints, and the valgrind launcher loads folio too.
VALGRIND_TESTS := @(api|fdtable|cache|writeback|fsx|stats|limits)/*
VALGRIND := valgrind -q --error-exitcode=99 --trace-children=no \
	--suppressions=$(abspath tests/valgrind.supp)
check-valgrind: deps
	@command -v valgrind >/dev/null || scripts/install-deps
	@$(MAKE) --no-print-directory SANITIZE= valgrind-run

valgrind-run: all $(PROGRAMS) $(PROGRAM_TESTS) $(TESTS_DIR)/test_uaccess
	@for t in $(TESTS_DIR)/test_api $(TESTS_DIR)/test_cache $(TESTS_DIR)/test_writeback \
		  $(TESTS_DIR)/test_stats; do \
		echo "== $$t under TEST_WRAPPER='$(VALGRIND)'"; \
		TEST_WRAPPER='$(VALGRIND)' $$t --jobs=2 --filter '$(VALGRIND_TESTS)' || exit 1; \
	done
	@echo "== $(TESTS_DIR)/test_uaccess under valgrind"
	@TEST_UNDER_VALGRIND=1 $(subst --trace-children=no,--trace-children=yes,$(VALGRIND)) \
		$(TESTS_DIR)/test_uaccess
	@echo "make check-valgrind: all tests passed"

# make check-all: every check there is, with TEST_LONG=1 for the suites
# that have long runs of real programs: make test plain and with each
# sanitizer, the plain suites with DEBUG=1 (folio's lock rules asserted),
# valgrind, then the targets in LONG_TARGETS.
LONG_TARGETS ?= soak
check-all: deps
	@for san in "" address undefined thread; do \
		TEST_LONG=1 $(MAKE) --no-print-directory test SANITIZE=$$san || exit 1; \
	done
	@$(MAKE) --no-print-directory SANITIZE= DEBUG= all && \
		TEST_LONG=1 $(MAKE) --no-print-directory check DEBUG=1
	@TEST_LONG=1 $(MAKE) --no-print-directory check-valgrind
	@$(foreach t,$(LONG_TARGETS),TEST_LONG=1 $(MAKE) --no-print-directory SANITIZE= $(t) &&) true
	@echo "make check-all: all checks passed"

$(TESTS_DIR)/test_%: tests/unit/test_%.c $(UNIT_SHIM) $(wildcard shim/*.h) $(CRITERION_TSAN) \
		     $(BUILD)/valgrind-h | $(TESTS_DIR)
	$(CC) $(TEST_CFLAGS) $< $(UNIT_SHIM) $(CRITERION_TSAN) -o $@ $(UNIT_LIBS)

# The whole-program suites (test_real: real programs natively and under
# folio, their data compared; TEST_LONG=1 for longer runs).
$(PROGRAM_TESTS): $(TESTS_DIR)/%: tests/%.c tests/harness.h $(CRITERION_TSAN) | $(TESTS_DIR)
	$(CC) $(TEST_CFLAGS) $< $(CRITERION_TSAN) -o $@ -lcriterion

# make soak: tests/prog/stress under folio for SOAK_SECONDS over SOAK_RUNS
# runs (scripts/soak says how).
SOAK_SECONDS ?= 300
SOAK_RUNS    ?= 12

.PHONY: soak
soak: deps
	@$(MAKE) -s --no-print-directory all $(TESTS_DIR)/stress
	@$(SAN_ENV) scripts/soak $(abspath $(TESTS_DIR))/stress $(SOAK_SECONDS) $(SOAK_RUNS) \
		$(SAN_RUNTIME) $(abspath $(BUILD))/libfolio.so

# folio with the write-back fault switch FOLIO_TEST_FAULTS (shim/writeback.c):
# errors the kernel gives rarely on demand, for the tests only.
# libfolio-faults.so finds its guardian beside it, as libfolio.so does.
$(TESTS_DIR)/folio-guardian: $(BUILD)/folio-guardian | $(TESTS_DIR)
	cp $< $@

$(TESTS_DIR)/libfolio-faults.so: $(SHIM_SRCS) $(wildcard shim/*.h) shim/folio.map | $(TESTS_DIR)
	$(CC) $(SHIM_CFLAGS) $(LDFLAGS) -DFOLIO_TEST_FAULTS -shared -o $@ $(SHIM_SRCS) \
		-Wl,--version-script=shim/folio.map $(SHIM_LDLIBS)

# -rdynamic: the call-site statistics name its functions.
$(TESTS_DIR)/callsites: tests/prog/callsites.c | $(TESTS_DIR)
	$(CC) $(PROG_CFLAGS) -rdynamic $< -o $@

# -rdynamic: it exports its own strlen, snprintf and the rest; -fno-builtin
# and no loop-to-memcpy conversion, so that they do not call themselves.
$(TESTS_DIR)/ownlibc: tests/prog/ownlibc.c | $(TESTS_DIR)
	$(CC) $(PROG_CFLAGS) -rdynamic -fno-builtin -fno-tree-loop-distribute-patterns $< -o $@

$(BIGTLS): $(TESTS_DIR)/bigtls-%: tests/prog/bigtls.c | $(TESTS_DIR)
	$(CC) $(PROG_CFLAGS) -DTLS_KB=$* $< -o $@

$(TESTS_DIR)/allocator.so: tests/prog/allocator.c | $(TESTS_DIR)
	$(CC) $(PROG_CFLAGS) -fPIC -shared $< -o $@

$(TESTS_DIR)/%-fortify: tests/prog/%.c include/folio.h | $(TESTS_DIR)
	$(CC) $(PROG_CFLAGS) $(FORTIFY) $< -o $@ -lpthread

$(TESTS_DIR)/%: tests/prog/%.c include/folio.h | $(TESTS_DIR)
	$(CC) $(PROG_CFLAGS) $< -o $@ -lpthread

# The read-side cost of the liburcu flavours (see shim/rcu.h): each flavour
# with the loop in the program and in a shared library, as in folio.
rcu-flavour: deps | $(TESTS_DIR)
	@scripts/rcu-flavour $(CC) $(TESTS_DIR)

# What folio adds to a call on an untracked fd (the wrapper's fast path).
$(TESTS_DIR)/untracked: tests/bench/untracked.c | $(TESTS_DIR)
	$(CC) $(PROG_CFLAGS) $< -o $@ -ldl

bench-untracked: all $(TESTS_DIR)/untracked
	scripts/bench-untracked $(BUILD) 9

# The page store's hit path alone (lookup + untorn copy), as folio builds it.
$(TESTS_DIR)/pagehit: tests/bench/pagehit.c shim/bind.c shim/page.c shim/journal.c shim/ptree.c shim/rcu.c shim/real.c shim/uaccess.c \
		       | $(TESTS_DIR)
	$(CC) $(SHIM_CFLAGS) -fPIE $^ -o $@ $(UNIT_LIBS)

bench-pagehit: $(TESTS_DIR)/pagehit
	$(TESTS_DIR)/pagehit

# make bench: folio against native, side by side (QUICK=1: under a minute).
$(TESTS_DIR)/micro: tests/bench/micro.c | $(TESTS_DIR)
	$(CC) $(PROG_CFLAGS) $< -o $@ -lpthread -lm

.PHONY: bench
bench: deps
	@command -v gnuplot >/dev/null || scripts/install-deps
	@$(MAKE) --no-print-directory all $(TESTS_DIR)/micro
	@scripts/bench $(BUILD) $(QUICK)

# libFuzzer target for the FOLIO_* parser and the FOLIO_FILES matcher
# (tests/fuzz/fuzz_config.c), built with clang, ASan and UBSan.  make test
# runs it for FUZZ_SHORT seconds from the seed corpus tests/fuzz/corpus;
# make fuzz for FUZZ_SECONDS, keeping what it finds in $(BUILD)/fuzz/corpus.
# A crash leaves its input in $(BUILD)/fuzz/crash-*: run the target on it.
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 300
FUZZ_SHORT   ?= 10
FUZZ_DIR     := $(BUILD)/fuzz
FUZZ_SHIM    := shim/bind.c shim/config.c shim/pathmatch.c shim/log.c shim/real.c
FUZZ_RUN      = $(FUZZ_DIR)/fuzz_config -artifact_prefix=$(FUZZ_DIR)/ -timeout=10 \
		-print_final_stats=1 $(FUZZ_DIR)/corpus tests/fuzz/corpus

$(FUZZ_DIR):
	mkdir -p $@ $@/corpus

$(FUZZ_DIR)/fuzz_config: tests/fuzz/fuzz_config.c $(FUZZ_SHIM) $(wildcard shim/*.h) | $(FUZZ_DIR)
	$(FUZZ_CC) -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
		$(WARN) -std=gnu11 -D_GNU_SOURCE -Ishim -Iinclude $< $(FUZZ_SHIM) -o $@ -ldl

.PHONY: fuzz fuzz-short
fuzz-short:
	@if ! command -v $(FUZZ_CC) > /dev/null; then \
		echo "== fuzz: no $(FUZZ_CC): skipped (scripts/install-deps installs clang)"; \
	else \
		$(MAKE) --no-print-directory $(FUZZ_DIR)/fuzz_config > /dev/null && \
		echo "== $(FUZZ_DIR)/fuzz_config, $(FUZZ_SHORT) s" && \
		$(FUZZ_RUN) -max_total_time=$(FUZZ_SHORT) > $(FUZZ_DIR)/fuzz.log 2>&1 && \
		grep -h '^stat::number_of_executed_units' $(FUZZ_DIR)/fuzz.log || \
		{ tail -n 40 $(FUZZ_DIR)/fuzz.log; echo "fuzz: failed, see $(FUZZ_DIR)/fuzz.log"; \
		  exit 1; }; \
	fi

fuzz: $(FUZZ_DIR)/fuzz_config
	$(FUZZ_RUN) -max_total_time=$(FUZZ_SECONDS)
