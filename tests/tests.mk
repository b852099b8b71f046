# Included by the Makefile: building and running the tests.
#
#   make test    installs missing Debian packages, builds the library, the
#                criterion unit tests and the programs the whole-program
#                tests run under LD_PRELOAD (plain and fortified), and runs
#                every test.

TESTS_DIR   := $(BUILD)/tests
TEST_CFLAGS  = -O2 -g $(SAN_FLAGS) $(WARN) -std=gnu11 -D_GNU_SOURCE -Ishim -Iinclude \
	-DBUILD_DIR='"$(abspath $(BUILD))"' -DSOURCE_DIR='"$(abspath .)"' \
	-DSANITIZER_RUNTIME='"$(SAN_RUNTIME)"'
PROG_CFLAGS := -O2 -g $(SAN_FLAGS) $(WARN) -Iinclude
# Leaks are not what the sanitizer runs look for: folio's fork children and
# the test harness keep memory on purpose.
SAN_ENV     := $(if $(SANITIZE),ASAN_OPTIONS=detect_leaks=0 UBSAN_OPTIONS=print_stacktrace=1)
FORTIFY     := -D_FORTIFY_SOURCE=2 -D_FILE_OFFSET_BITS=64

# Unit tests link the pure shim modules directly.
UNIT_SHIM   := shim/config.c shim/pathmatch.c shim/log.c shim/real.c shim/page.c shim/ptree.c \
	       shim/rcu.c
UNIT_LIBS    = $(shell pkg-config --cflags --libs liburcu-bp) -lcriterion -ldl -lpthread
UNIT_TESTS  := $(TESTS_DIR)/test_config $(TESTS_DIR)/test_pathmatch $(TESTS_DIR)/test_page \
	       $(TESTS_DIR)/test_ptree
PROGRAMS    := $(TESTS_DIR)/apicheck $(TESTS_DIR)/apicheck-fortify \
	       $(TESTS_DIR)/fdcheck $(TESTS_DIR)/fdcheck-fortify \
	       $(TESTS_DIR)/fsx $(TESTS_DIR)/fsx-fortify \
	       $(TESTS_DIR)/cachecheck $(TESTS_DIR)/cachecheck-fortify \
	       $(TESTS_DIR)/crashcheck
PROGRAMS    += $(TESTS_DIR)/allocator.so $(TESTS_DIR)/libfolio-faults.so $(TESTS_DIR)/callsites
PROGRAM_TESTS := $(TESTS_DIR)/test_programs $(TESTS_DIR)/test_crash $(TESTS_DIR)/test_real

.PHONY: check
# The wrapper tests run scripts/folio, which preloads the plain build/libfolio.so
# (not the sanitized one): a sanitizer run builds that too.
test: deps
	@$(if $(SANITIZE),$(MAKE) --no-print-directory SANITIZE= all &&) \
		$(MAKE) --no-print-directory check

check: all $(UNIT_TESTS) $(PROGRAMS) $(PROGRAM_TESTS)
	@for t in $(UNIT_TESTS) $(PROGRAM_TESTS); do \
		echo "== $$t"; \
		$(SAN_ENV) $$t --jobs=2 || exit 1; \
	done
	@$(MAKE) --no-print-directory fuzz-short
	@echo "make test$(if $(SANITIZE), SANITIZE=$(SANITIZE)): all tests passed"

$(TESTS_DIR)/test_%: tests/unit/test_%.c $(UNIT_SHIM) $(wildcard shim/*.h) | $(TESTS_DIR)
	$(CC) $(TEST_CFLAGS) $< $(UNIT_SHIM) -o $@ $(UNIT_LIBS)

$(TESTS_DIR)/test_programs: tests/test_programs.c | $(TESTS_DIR)
	$(CC) $(TEST_CFLAGS) $< -o $@ -lcriterion

$(TESTS_DIR)/test_crash: tests/test_crash.c | $(TESTS_DIR)
	$(CC) $(TEST_CFLAGS) $< -o $@ -lcriterion

# Real programs (sqlite3, db_bench, fio) natively and under folio, their data
# compared; FOLIO_LONG=1 for longer runs.
$(TESTS_DIR)/test_real: tests/test_real.c | $(TESTS_DIR)
	$(CC) $(TEST_CFLAGS) $< -o $@ -lcriterion

# folio with the write-back fault switch FOLIO_TEST_FAULTS (shim/writeback.c):
# errors the kernel gives rarely on demand, for the tests only.
$(TESTS_DIR)/libfolio-faults.so: $(SHIM_SRCS) $(wildcard shim/*.h) shim/folio.map | $(TESTS_DIR)
	$(CC) $(SHIM_CFLAGS) $(LDFLAGS) -DFOLIO_TEST_FAULTS -shared -o $@ $(SHIM_SRCS) \
		-Wl,--version-script=shim/folio.map $(SHIM_LDLIBS)

# -rdynamic: the call-site statistics name its functions.
$(TESTS_DIR)/callsites: tests/prog/callsites.c | $(TESTS_DIR)
	$(CC) $(PROG_CFLAGS) -rdynamic $< -o $@

$(TESTS_DIR)/allocator.so: tests/prog/allocator.c | $(TESTS_DIR)
	$(CC) $(PROG_CFLAGS) -fPIC -shared $< -o $@

$(TESTS_DIR)/%-fortify: tests/prog/%.c include/folio.h | $(TESTS_DIR)
	$(CC) $(PROG_CFLAGS) $(FORTIFY) $< -o $@ -lpthread

$(TESTS_DIR)/%: tests/prog/%.c include/folio.h | $(TESTS_DIR)
	$(CC) $(PROG_CFLAGS) $< -o $@ -lpthread

# The read-side cost of the liburcu flavours (see shim/rcu.h): each flavour
# with the loop in the program and in a shared library, as in folio.
RCU_BENCH := tests/bench/rcu_flavour.c
rcu-flavour: deps | $(TESTS_DIR)
	@for f in bp memb; do \
		F=$$(echo $$f | tr a-z A-Z); \
		$(CC) -O2 -DFLAVOUR_$$F $(RCU_BENCH) -o $(TESTS_DIR)/rcu-$$f -lurcu-$$f && \
		$(CC) -O2 -fPIC -shared -DFLAVOUR_$$F -DLOOP_IN_LIBRARY -DBUILD_LIBRARY \
			$(RCU_BENCH) -o $(TESTS_DIR)/librcu-$$f.so -lurcu-$$f && \
		$(CC) -O2 -DFLAVOUR_$$F -DLOOP_IN_LIBRARY $(RCU_BENCH) -o $(TESTS_DIR)/rcu-$$f-lib \
			$(TESTS_DIR)/librcu-$$f.so -Wl,-rpath,$(abspath $(TESTS_DIR)) -lurcu-$$f && \
		mkdir -p $(TESTS_DIR)/ie && \
		$(CC) -O2 -fPIC -shared -ftls-model=initial-exec -DFLAVOUR_$$F -DLOOP_IN_LIBRARY \
			-DBUILD_LIBRARY $(RCU_BENCH) -o $(TESTS_DIR)/ie/librcu-$$f.so -lurcu-$$f && \
		$(CC) -O2 -DFLAVOUR_$$F -DLOOP_IN_LIBRARY -DTLS_NOTE='" (initial-exec TLS)"' \
			$(RCU_BENCH) -o $(TESTS_DIR)/rcu-$$f-lib-ie $(TESTS_DIR)/ie/librcu-$$f.so \
			-Wl,-rpath,$(abspath $(TESTS_DIR))/ie -lurcu-$$f || exit 1; \
	done
	@for r in 1 2; do for f in bp memb; do \
		$(TESTS_DIR)/rcu-$$f; $(TESTS_DIR)/rcu-$$f-lib; $(TESTS_DIR)/rcu-$$f-lib-ie; \
	done; done

# What folio adds to a call on an untracked fd (the wrapper's fast path).
$(TESTS_DIR)/untracked: tests/bench/untracked.c | $(TESTS_DIR)
	$(CC) $(PROG_CFLAGS) $< -o $@ -ldl

bench-untracked: all $(TESTS_DIR)/untracked
	scripts/bench-untracked $(BUILD) 9

# The page store's hit path alone (lookup + untorn copy), as folio builds it.
$(TESTS_DIR)/pagehit: tests/bench/pagehit.c shim/page.c shim/ptree.c shim/rcu.c shim/real.c \
		       | $(TESTS_DIR)
	$(CC) $(SHIM_CFLAGS) -fPIE $^ -o $@ $(UNIT_LIBS)

bench-pagehit: $(TESTS_DIR)/pagehit
	$(TESTS_DIR)/pagehit

# make bench: folio against native, side by side (QUICK=1: under a minute).
$(TESTS_DIR)/micro: tests/bench/micro.c | $(TESTS_DIR)
	$(CC) $(PROG_CFLAGS) $< -o $@ -lpthread

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
FUZZ_SHIM    := shim/config.c shim/pathmatch.c shim/log.c shim/real.c
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
