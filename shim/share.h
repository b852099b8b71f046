/*
 * share.h - files that other processes hold too (doc/design.md §2.6).
 *
 * Owns the user's registry: a file under /dev/shm (0600, the user's, never
 * through a symbolic link) that every folio process of the user maps, with
 * a slot per live process and an entry per inode that says which processes
 * hold it in their caches.  A process holds an inode from the first
 * tracked open of it to the mapping's retirement.
 *
 * The rule it keeps: an inode that two live processes hold is "shared",
 * and a shared inode passes through in every process that holds it (the
 * kernel's page cache is the one copy), from before the open that made it
 * shared returns:
 *   - an opener that finds another live holder marks the entry shared and
 *     rings every other holder (each such opener does: none relies on the
 *     mark alone); holders found dead are forgotten, once their guardian
 *     is done (an inode number comes back after a file is deleted);
 *   - a holder catches up at its next tracked call (share_pending(): one
 *     load of its own slot, no system call) or, when idle, in its flusher
 *     thread, which sleeps on the same word: each mapping of a newly
 *     shared inode writes its dirty pages back, drops its pages and passes
 *     through (BYPASS_SHARED); then it acknowledges;
 *   - the opener waits for the acknowledgement of every holder that may
 *     have dirty pages (one that has the file open for writing, and so a
 *     flusher thread) for at most SHARE_WAIT_MS, and for none of a dead
 *     one (its guardian writes its pages back).
 *
 * Robust against a process dying at any instruction: a slot's owner is its
 * pid and start time in one word (taken with a compare-and-swap); a dead
 * process's slot is taken over, and its bits cleared, by the next process
 * that needs a slot or finds it among an inode's holders.
 *
 * Calls real and log only; the cache's catch-up is a hook (share_init()).
 */
#ifndef FOLIO_SHARE_H
#define FOLIO_SHARE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* The longest an open waits for a holder to write its pages back. */
#define SHARE_WAIT_MS	5000

struct share_entry;

/* This process's slot: its catch-up word, read by every tracked call. */
extern uint32_t *share_bell;		/* rung for the flusher and for catch-up */
extern uint32_t share_seen;		/* the share_gen this process caught up with; atomic */
extern uint32_t *share_gen;		/* bumped when an inode it holds becomes shared */

/*
 * Has an inode this process holds become shared since it last caught up?
 * Lock-free; a load of a line only other processes write, rarely.
 */
static inline bool share_pending(void)
{
	uint32_t *gen = __atomic_load_n(&share_gen, __ATOMIC_RELAXED);

	return gen && __atomic_load_n(gen, __ATOMIC_ACQUIRE) !=
			      __atomic_load_n(&share_seen, __ATOMIC_RELAXED);
}

/*
 * Map the registry and take a slot, once, at the first tracked open.
 * @catch_up is called with no lock held to make every shared inode this
 * process holds pass through (share_catch_up() calls it); with @wait false
 * it must not wait for a lock, and returns false if something is left.  0,
 * or -1 if there is no registry (one warning; files are then not known to
 * be shared).
 */
int share_init(bool (*catch_up)(bool wait));

/*
 * This process now holds @dev/@ino (a new mapping), @writer if it may
 * write it.  Returns the entry to give back to share_release(), and sets
 * *@shared if the inode is (or now becomes) shared: the mapping then
 * passes through from the start.  Becoming shared rings the other holders
 * and waits for those that may have dirty pages (see above).  Takes no
 * lock of folio's; may wait up to SHARE_WAIT_MS.  NULL with *@shared set
 * when the registry is full (the safe answer).
 */
struct share_entry *share_hold(dev_t dev, ino_t ino, bool writer, bool *shared,
			       uint32_t *mark);

/*
 * Has another process made @e's inode shared since share_hold() gave
 * @mark?  (A count of the times it was, not a flag: an inode number comes
 * back after a file is deleted, with its old entry.)
 */
bool share_changed(const struct share_entry *e, uint32_t mark);

/* The mapping of @e is retired: this process no longer holds the inode. */
void share_release(struct share_entry *e);

/*
 * Catch up: run the hook, then acknowledge the generation seen.  Called by
 * a tracked call that found share_pending() (@wait: it may wait for a
 * mapping's locks) and by the flusher (not @wait: a writer holding a lock
 * may be waiting for the flusher; it tries again after a round).  Returns
 * whether it caught up.
 */
bool share_catch_up(bool wait);

/*
 * Exit or exec: give the slot back.  The caller share_release()d every
 * entry it held first.
 */
void share_exit(void);

/* This process may now have dirty pages of the inode of @e. */
void share_writer(struct share_entry *e);

/* This process's guardian is @pid: an opener waits for it if we die. */
void share_set_guardian(pid_t pid);

/* In a fork child: the parent's slot is not the child's. */
void share_after_fork_child(void);

#endif
