/*
 * writeback.h - writing the cache's dirty pages back to the kernel.
 *
 * The per-mapping calls are in mapping.h (they need the mapping's insides);
 * this is what the cache's entry points need besides.
 *
 * Calls page, config, log and real; called by cache.
 */
#ifndef FOLIO_WRITEBACK_H
#define FOLIO_WRITEBACK_H

#include <stdbool.h>

struct mapping;

/*
 * Are more pages dirty than FOLIO_DIRTY_LIMIT allows?  Then a writer writes
 * its own file back before it returns (until the background flusher exists,
 * this is how dirty memory stays bounded).  Lockless.
 */
bool writeback_over_limit(void);

/* Add @m to / remove it from the mappings writeback_all() visits. */
void writeback_register(struct mapping *m);
void writeback_unregister(struct mapping *m);

/*
 * Write back every mapping (sync, syncfs, fork, exec, spawn, exit).  Takes
 * each mapping's lock shared.  Returns 0 or -1 with the errno of the first
 * failure.
 */
int writeback_all(void);

/* In a fork child, with no other thread: forget every mapping. */
void writeback_forget_all(void);

#endif
