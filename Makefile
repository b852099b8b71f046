# folio - see README.md.  `make` builds build/libfolio.so; `make test` runs
# every test (installing missing Debian packages first); `make install`.

VERSION   := 0.4.0
PREFIX    ?= /usr/local
DESTDIR   ?=

# make test SANITIZE=address (or undefined, thread, or a list such as
# address,undefined): everything built with that sanitizer into
# build-SANITIZE/ (commas as +), and the whole-program tests preload its
# runtime in front of folio (ASan's when the list has it: UBSan's comes in
# as libfolio.so's dependency).  liburcu's reader registry is less aligned
# than its type says, so UBSan's alignment check is left out.  TSan does
# not model the page store's seqlock fences (gcc warns, -Wtsan): they are
# still emitted, and the copy they order is hidden from TSan (shim/page.c).
SANITIZE  ?=
# make ... DEBUG=1: with folio's rule checks (shim/debug.h: the lock rules of
# shim/LOCKING asserted), into build-debug/ (build-SANITIZE-debug/).
DEBUG     ?=
DEBUG_FLAGS := $(if $(DEBUG),-DFOLIO_DEBUG)
comma     := ,
SAN_LIST  := $(subst $(comma), ,$(SANITIZE))
ifeq ($(SANITIZE),)
BUILD     := build$(if $(DEBUG),-debug)
SAN_FLAGS :=
SAN_RUNTIME :=
else
BUILD     := build-$(subst $(comma),+,$(SANITIZE))$(if $(DEBUG),-debug)
SAN_FLAGS := -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all \
	     $(if $(filter undefined,$(SAN_LIST)),-fno-sanitize=alignment) \
	     $(if $(filter thread,$(SAN_LIST)),-Wno-tsan)
SAN_LIB   := $(firstword $(patsubst address,asan,$(filter address,$(SAN_LIST))) \
	       $(patsubst thread,tsan,$(filter thread,$(SAN_LIST))) \
	       $(patsubst undefined,ubsan,$(filter undefined,$(SAN_LIST))))
SAN_RUNTIME := $(shell $(CC) -print-file-name=lib$(SAN_LIB).so)
endif

CC        ?= cc
PKGS      := liburcu-bp libunwind
TEST_PKGS := $(PKGS) criterion

CFLAGS    ?= -O2 -g
CFLAGS    += $(SAN_FLAGS) $(DEBUG_FLAGS)
LDFLAGS   += $(SAN_FLAGS)
WARN      := -Wall -Wextra -Werror
# -fno-delete-null-pointer-checks: libc declares many arguments nonnull, and
# folio must pass NULL through to libc (which reports EFAULT) unharmed.
# -ftls-model=initial-exec: folio is loaded at start-up (LD_PRELOAD), so its
# thread-local data and liburcu's can be reached without __tls_get_addr();
# an RCU read-side section then costs 2.6 ns instead of 13 (see shim/rcu.h).
SHIM_CFLAGS = $(CFLAGS) $(WARN) -std=gnu11 -fPIC -fvisibility=hidden \
	-fno-delete-null-pointer-checks -ftls-model=initial-exec \
	-D_GNU_SOURCE -U_FORTIFY_SOURCE \
	-DFOLIO_VERSION='"$(VERSION)"' -Iinclude -Ishim \
	$(shell pkg-config --cflags $(PKGS) 2>/dev/null)
# libunwind is a build dependency for the call-site statistics to come; it
# is not linked until used: a preloaded libunwind.so would also put its
# _Unwind_* in front of libgcc_s's for the whole host program.
SHIM_LDLIBS = $(shell pkg-config --libs liburcu-bp 2>/dev/null) -ldl -lpthread

SHIM_SRCS := $(wildcard shim/*.c)
SHIM_OBJS := $(SHIM_SRCS:shim/%.c=$(BUILD)/shim/%.o)

.PHONY: all test install uninstall clean deps rcu-flavour
all: $(BUILD)/libfolio.so $(BUILD)/folio-guardian

# Each object's headers come from its .d file (-MMD; -MP: a header removed
# later is no error), so a header change rebuilds only what includes it.
$(BUILD)/shim/%.o: shim/%.c $(BUILD)/valgrind-h | $(BUILD)/shim need-libs
	$(CC) $(SHIM_CFLAGS) -MMD -MP -c $< -o $@

# Whether <valgrind/valgrind.h> is there (shim/compiler.h: folio tells that
# it runs under valgrind by it).  Rewritten only when that changes, so that
# everything is built again then, e.g. once make check-valgrind installed it
# (make records no dependency on a system header, let alone a missing one).
HAVE_VALGRIND_H := $(shell echo '\#include <valgrind/valgrind.h>' | \
		     $(CC) -E -x c - >/dev/null 2>&1 && echo yes || echo no)
.PHONY: FORCE
$(BUILD)/valgrind-h: FORCE | $(BUILD)/shim
	@[ "$$(cat $@ 2>/dev/null)" = $(HAVE_VALGRIND_H) ] || echo $(HAVE_VALGRIND_H) > $@

$(BUILD)/libfolio.so: $(SHIM_OBJS) shim/folio.map
	$(CC) $(LDFLAGS) -shared -o $@ $(SHIM_OBJS) -Wl,--version-script=shim/folio.map \
		-Wl,-z,now -Wl,-z,relro $(SHIM_LDLIBS)

# The guardian (shim/guardian/guardian.c): libfolio.so runs it from its own
# directory, so it is built and installed beside it.
$(BUILD)/folio-guardian: shim/guardian/guardian.c shim/journal.h | $(BUILD)/shim
	$(CC) $(CFLAGS) $(WARN) -std=gnu11 -D_GNU_SOURCE -Ishim $(LDFLAGS) -o $@ $<

# A clear message instead of a missing header when a library is absent.
.PHONY: need-libs
need-libs:
	@pkg-config --exists $(PKGS) || { echo "folio: missing build dependencies" \
		"($(PKGS)): run 'make deps' or scripts/install-deps" >&2; exit 1; }

$(BUILD)/shim $(BUILD)/tests:
	mkdir -p $@

# Missing Debian packages (libraries or the tools the tests run) are
# installed before anything is compiled against them.
TEST_TOOLS := pkg-config readelf man groff tar sha256sum strace setpriv sqlite3 jq fio db_bench ldb dbench pgbench \
	      mkfs.ext2 mkfs.btrfs bindfs valgrind
deps:
	@missing=; \
	for tool in $(TEST_TOOLS); do command -v $$tool >/dev/null || missing=yes; done; \
	if [ -n "$$missing" ] || ! pkg-config --exists $(TEST_PKGS); then \
		scripts/install-deps; \
	fi

include tests/tests.mk

install: $(BUILD)/libfolio.so $(BUILD)/folio-guardian
	install -d $(DESTDIR)$(PREFIX)/lib/folio $(DESTDIR)$(PREFIX)/bin \
		$(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/share/man/man1 \
		$(DESTDIR)$(PREFIX)/share/man/man3 $(DESTDIR)$(PREFIX)/share/man/man7
	install -m 0755 $(BUILD)/libfolio.so $(DESTDIR)$(PREFIX)/lib/folio/libfolio.so
	install -m 0755 $(BUILD)/folio-guardian $(DESTDIR)$(PREFIX)/lib/folio/folio-guardian
	sed -e 's|^FOLIO_LIBDIR=.*|FOLIO_LIBDIR=$(PREFIX)/lib/folio|' \
		-e 's|^FOLIO_VERSION=.*|FOLIO_VERSION=$(VERSION)|' scripts/folio \
		> $(DESTDIR)$(PREFIX)/bin/folio
	chmod 0755 $(DESTDIR)$(PREFIX)/bin/folio
	install -m 0644 include/folio.h $(DESTDIR)$(PREFIX)/include/folio.h
	install -m 0644 man/folio.1 $(DESTDIR)$(PREFIX)/share/man/man1/folio.1
	install -m 0644 man/folio.3 $(DESTDIR)$(PREFIX)/share/man/man3/folio.3
	install -m 0644 man/folio.7 $(DESTDIR)$(PREFIX)/share/man/man7/folio.7

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/lib/folio/libfolio.so $(DESTDIR)$(PREFIX)/lib/folio/folio-guardian \
		$(DESTDIR)$(PREFIX)/bin/folio \
		$(DESTDIR)$(PREFIX)/include/folio.h $(DESTDIR)$(PREFIX)/share/man/man1/folio.1 \
		$(DESTDIR)$(PREFIX)/share/man/man3/folio.3 $(DESTDIR)$(PREFIX)/share/man/man7/folio.7
	-rmdir $(DESTDIR)$(PREFIX)/lib/folio

clean:
	rm -rf $(BUILD)

-include $(SHIM_OBJS:.o=.d)
