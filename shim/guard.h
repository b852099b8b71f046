/*
 * guard.h - the guardian: who writes a process's dirty pages back if it
 * dies (doc/design.md §2.6).
 *
 * Owns the guardian's process as seen from the host: starting it (at the
 * first file that gets a dirty page, so a process that never writes a
 * tracked file starts none), the socket to it, the numbers (slots) it
 * knows the files by, and noticing that it died.  The guardian (shim/guardian/)
 * maps the journal, holds a descriptor of each file the host handed it,
 * and sleeps on the host's pidfd; when the host is gone it writes back
 * every byte the journal says the kernel does not have.
 *
 * A file is "guarded" once the current guardian holds a descriptor of it:
 * only then may its pages be dirty in the cache.  A write to a file that cannot be guarded (no guardian could be
 * started, no slot is free) goes to the kernel instead, as a write to a
 * set-id file does: slower, never lost.
 *
 * Locking: guard_file() and guard_file_forget() take the guardian's lock,
 * a leaf; a signal handler that interrupts its holder gets -1 (the write
 * goes to the kernel).
 *
 * Calls journal, share, log and real only.
 */
#ifndef FOLIO_GUARD_H
#define FOLIO_GUARD_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "journal_host.h"

/* A file's registration with the guardian; zero-initialised: none. */
struct guard_file {
	uint64_t gen;		/* the guardian it was handed to (guard_gen) */
	uint32_t slot;		/* its number for the guardian; 0: none */
};

/* The running guardian's number; 0 when there is none.  Changes when one
 * starts, dies or the process forks. */
extern uint64_t guard_gen;

/* Is @gf guarded by the guardian that runs now? */
static inline bool guard_file_current(const struct guard_file *gf)
{
	uint64_t gen = __atomic_load_n(&guard_gen, __ATOMIC_ACQUIRE);

	return gen && __atomic_load_n(&gf->gen, __ATOMIC_RELAXED) == gen;
}

/*
 * Hand the file @owner (@name, for messages) to the guardian, starting one
 * if none runs: @fd is an open of it for writing.  The guardian keeps its
 * own copy of @fd.  Under the mapping's lock (either
 * mode).  Returns 0, or -1 if the file cannot be guarded (the write goes
 * to the kernel); errno is kept.
 */
int guard_file(struct guard_file *gf, uint64_t owner, int fd, const char *name);

/* The file is clean and leaves the cache: the guardian closes its copy. */
void guard_file_forget(struct guard_file *gf, uint64_t owner);

/*
 * For the flusher: has the guardian died since the last call?  Then the
 * dirty pages it guarded are at risk until written back (the caller does
 * that now), and the next dirty page starts a new one.  One poll() when a
 * guardian runs.
 */
bool guard_lost(void);

/* Where the guardian's program is: set once, at start-up. */
void guard_init(void);

/* In a fork child, with no other thread: the parent's guardian is not the
 * child's (fdtable closed the socket); the child starts its own. */
void guard_after_fork_child(void);

#endif
