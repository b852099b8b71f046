/*
 * callers.h - FOLIO_CALLERS: which places in the program issue the calls on
 * tracked files.
 *
 * Owns the table of call sites.  Each thread samples one of every
 * CALLERS_SAMPLE of its calls on tracked files: a short backtrace with
 * libunwind, whose first frame outside folio and libc is the call site
 * (the caller of pwrite(), or of the fwrite() that led to it).  The sample
 * stands for the calls the thread made since its previous one, so the
 * counts are estimates, close for any site that issues many calls.  Names
 * are resolved at exit.
 *
 * Calls unwind, config and log; called by interpose (the samples) and stats (the
 * report).
 */
#ifndef FOLIO_CALLERS_H
#define FOLIO_CALLERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "compiler.h"

enum call_kind {
	CALL_READ, CALL_PREAD, CALL_READV, CALL_PREADV,
	CALL_WRITE, CALL_PWRITE, CALL_WRITEV, CALL_PWRITEV,
	CALL_FSYNC, CALL_FDATASYNC,
	CALL_KINDS
};

/* One call in this many is unwound (per thread). */
#define CALLERS_SAMPLE	256

/* FOLIO_CALLERS asked for call sites and libunwind is there. */
extern bool callers_on;

void callers_sample(enum call_kind kind, ssize_t ret);

/*
 * A call of @kind on a tracked file returned @ret.  Called by the
 * interposed function itself (the call site is found above it).  Costs one
 * predictable branch when FOLIO_CALLERS is off.
 */
static inline void callers_note(enum call_kind kind, ssize_t ret)
{
	if (unlikely(callers_on))
		callers_sample(kind, ret);
}

/* Constructor, after config_load(): load libunwind if call sites are asked for. */
void callers_init(void);

struct call_site {
	char name[160];		/* "function+0xoff (object)" */
	enum call_kind kind;
	uint64_t calls;		/* estimated */
	uint64_t bytes;		/* estimated, of the calls that moved data */
};

/*
 * The @max sites with the most calls, busiest first, names resolved, into
 * @sites.  Returns how many.  At exit (resolving names is slow).
 */
size_t callers_top(struct call_site *sites, size_t max);

/* "pwrite" for CALL_PWRITE. */
const char *callers_kind_name(enum call_kind kind);

/* A fork child starts with no sites of its own. */
void callers_after_fork_child(void);

#endif
