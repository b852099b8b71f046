/*
 * unwind.h - stack traces with libunwind, loaded on demand.
 *
 * Owns the handle of libunwind.so.8 and the entry points resolved from it.
 * libunwind is never linked into libfolio.so: it exports _Unwind_Backtrace
 * and the rest of the _Unwind_* ABI, and backtrace(), which a preloaded
 * library would put in front of libgcc_s's and libc's for the whole host
 * program.  unwind_load() opens it RTLD_LOCAL, so nothing of it is visible
 * but the pointers kept here.  Its own calls of open, read, mmap and the
 * like bind to folio's wrappers, like any library's.
 *
 * libunwind 1.6 sets itself up at the first unwinding, not at load: it then
 * takes a lock and opens a pipe (two fds, kept for the life of the process,
 * which it uses to probe addresses when unwind information is missing).
 * unwind_load() does not set it up: a process that never unwinds keeps
 * its fds as they were.
 *
 * Calls log, real and libc (dlopen, dladdr1); called by crash and callers.
 */
#ifndef FOLIO_UNWIND_H
#define FOLIO_UNWIND_H

#include <stdbool.h>
#include <stddef.h>

/*
 * Load libunwind once (dlopen and dlsym only): 0.2 to 0.3 ms, paid at a
 * process's first tracked open rather than by every process at start-up.
 * Returns true if it is usable: false also while another call (another
 * thread, or this one further up: the dlopen() opens files) is loading it.
 * Thread-safe and idempotent; not async-signal-safe: call it from the
 * constructor or another normal context.  A missing library is said once
 * at FOLIO_LOG=info.
 */
bool unwind_load(void);

/* This thread is inside libunwind (its pipe2() is libunwind's: see pipe2()). */
extern __thread bool unwind_active;

/*
 * The return addresses on the calling thread's stack, innermost first,
 * into @ips (at most @max of them): with @skip 0, ips[0] is in the caller
 * of unwind_backtrace(); each unit of @skip drops one more frame of the
 * caller's own.  Returns the count, 0 if libunwind is not loaded.
 * About 100 ns for 4 frames, lock-free, once warm.  Not async-signal-safe
 * in a thread's first call, which sets up libunwind's per-thread trace
 * cache (256 KiB with mmap, glibc's dynamic TLS with one malloc; about
 * 0.3 ms), nor in the process's first unwinding (libunwind's set-up, see
 * above); an address seen for the first time costs a few microseconds of
 * DWARF parsing.  Under ThreadSanitizer it steps a cursor instead, with no
 * trace cache (see UNWIND_STEP_ONLY in unwind.c).
 */
int unwind_backtrace(void **ips, int max, int skip);

/*
 * The same from a signal handler's context @uc (its third argument): ips[0]
 * is the interrupted instruction (0 after a call through NULL), then the
 * return addresses of its callers.  Async-signal-safe once loaded:
 * libunwind's local cursor allocates nothing, and its locks (also the
 * set-up's, on the first unwinding) are taken with every signal blocked.
 * Trusts the unwind information: a corrupted stack can make it fault.
 */
int unwind_backtrace_context(void *uc, void **ips, int max);

/*
 * Name @ip into @buf (@len bytes, always terminated): "function+0xoff" from
 * the symbol tables of its object's ELF file (.symtab, static functions
 * included, else .dynsym; only a symbol whose extent holds @ip), else
 * "object+0xoff" (the address addr2line takes), else the bare address.
 * Needs no libunwind.  Thread-safe, allocates nothing and calls none of
 * folio's wrappers (the file is read with real_open() and real_mmap()), so
 * usable in a signal handler but for dladdr1(), which takes the loader's
 * lock.  About 30 us a call: for reports, not hot paths.
 */
void unwind_name(void *ip, char *buf, size_t len);

#endif
