/*
 * writeback.h - writing the cache's dirty pages back to the kernel: the
 * flusher thread, the dirty limit, write-back errors.
 *
 * The per-mapping calls are in mapping.h (they need the mapping's insides);
 * this is what the cache's entry points need besides.
 *
 * Calls page, config, log, rcu, stats and real; called by cache and crash.
 */
#ifndef FOLIO_WRITEBACK_H
#define FOLIO_WRITEBACK_H

#include <stdbool.h>
#include <stdint.h>

struct mapping;

/*
 * The program's calls into folio now running on this thread: more than one
 * in a signal handler that interrupted one.  The interrupted call may be
 * queued for a lock the flusher needs, so a nested call never waits for
 * the flusher.  Kept by the interpose layer around calls that may write.
 */
extern __thread unsigned int folio_call_depth;

/*
 * A writer is about to dirty pages, holding no lock of folio's but perhaps
 * its file's @lock (mapping.h: the flusher needs none).  At
 * FOLIO_DIRTY_LIMIT it waits until the flusher has brought the dirty pages
 * under it (woken by write-back progress, never polling).  Returns 0, or -1
 * with errno when write-back is failing and the limit cannot be kept: the
 * write must fail rather than wait forever.
 */
int writeback_throttle(void);

/* Lockless: is writeback_throttle() needed before dirtying more? */
bool writeback_over_limit(void);

/*
 * A tracked open file description that may write was opened / released:
 * the flusher, once started, stays while there is one (or anything dirty).
 */
void writeback_writer_opened(void);
void writeback_writer_closed(void);

/*
 * A write dirtied pages of @m, and the writer holds no lock of folio's:
 * start the flusher on the first dirty page, wake it when there is work it
 * does not know of (its timer is not running; the background threshold or
 * a streaming writer's window is reached).  Cheap when there is nothing to
 * do.
 */
void writeback_dirtied(struct mapping *m);

/* Add @m to / remove it from the mappings write-back visits; removal waits
 * until the flusher is done with @m. */
void writeback_register(struct mapping *m);
void writeback_unregister(struct mapping *m);

/*
 * Write back every mapping (sync, syncfs, fork, exec, spawn, exit).  Takes
 * each mapping's lock shared.  Returns 0 or -1 with the errno of the first
 * failure.
 */
int writeback_all(void);

/*
 * At exit: writeback_stop() ends the flusher's work (a batch under way
 * finishes, no other starts; writers write back themselves from then on);
 * after the last writeback_all(), writeback_exit() says which files keep
 * data that could not be written, and how much.
 */
void writeback_stop(void);
void writeback_exit(void);

/* Say which files keep data that could not be written, how much, and
 * @when ("and are lost at exit"). */
void writeback_report_unwritten(const char *when);

/*
 * A crash report: each file's name, size and dirty pages, and the dirty
 * total, as lines on @fd.  Takes no lock and allocates nothing (the
 * crashing thread may hold anything); async-signal-safe as far as
 * snprintf() is.
 */
void writeback_crash_state(int fd);

/* In a fork child, with no other thread: no flusher, no mapping (the child
 * starts its own flusher if it caches). */
void writeback_after_fork_child(void);

/*
 * Call @fn on every mapping, each pinned and with no lock held (so @fn may
 * take the mapping's locks).  Not inside a read-side section.
 */
void writeback_each_mapping(void (*fn)(struct mapping *m));

/* @m leaves the registry of held inodes (share.h): retirement, exit. */
void writeback_share_release(struct mapping *m);

/*
 * The registry is told that this process may have dirty pages of @m's
 * inode (the flusher stays to answer for them), before the first one is.
 * Returns whether the inode is shared: then it must not be.
 */
bool writeback_share_writer(struct mapping *m);

/*
 * Write-back errors as the kernel's errseq_t reports them: an open file
 * description samples @m's error state when it is opened, and
 * writeback_error_check() reports each error recorded since (once per
 * description, at its fsync or close).  An error nobody has seen yet is
 * reported to descriptions opened after it too.
 */
uint64_t writeback_error_sample(struct mapping *m);
int writeback_error_check(struct mapping *m, uint64_t *since);

#endif
