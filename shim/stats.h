/*
 * stats.h - what folio did, counted per file: the report FOLIO_STATS asks
 * for at exit, and folio_stats() of include/folio.h.
 *
 * Owns the counters, the records of files no longer open and the report.
 * Each tracked inode's mapping has a struct file_stats.  The counters every
 * read or write touches ("hot": calls, bytes, misses, write lock modes) are
 * kept in per-thread lines of it: a thread with a slot of its own adds with
 * a plain load and store to a cache line no other thread writes, so a hit
 * pays no atomic and shares nothing.  Threads beyond STAT_SLOTS - 1 share
 * line 0 with atomic adds.  The rest ("cold": fills, evictions, write-back,
 * fsync, waits) are atomics on the file_stats.
 *
 * When the inode's last open goes, its counters are folded into a record
 * kept by name, so the report also covers files the program closed.
 *
 * Calls config, log and real, and callers for the report's call sites; called by
 * cache, writeback and interpose (page counts evictions through a pointer
 * it is given, knowing nothing of this).
 */
#ifndef FOLIO_STATS_H
#define FOLIO_STATS_H

#include <stdbool.h>
#include <stdint.h>

#include "compiler.h"

enum stat_hot {
	STAT_READS,		/* read calls */
	STAT_READ_BYTES,	/* bytes they returned */
	STAT_READ_MISSES,	/* read calls that needed the kernel */
	STAT_WRITES,		/* write calls */
	STAT_WRITE_BYTES,	/* bytes they accepted */
	STAT_LOCK_SHARED,	/* write lock taken shared */
	STAT_LOCK_RETAKEN,	/* ... shared, then retaken exclusive (the size moved) */
	STAT_LOCK_EXCLUSIVE,	/* ... exclusive (retaken ones included) */
	STAT_HOT_NR
};

enum stat_cold {
	STAT_LOCK_WAIT_NS = STAT_HOT_NR,	/* time writers waited for the lock */
	STAT_FILL_PAGES,	/* pages read from the kernel into the cache */
	STAT_READAHEAD_PAGES,	/* ... of them past what the read asked for */
	STAT_EVICTIONS,		/* clean pages the clock hand took */
	STAT_WB_CALLS,		/* write-back system calls */
	STAT_WB_BYTES,		/* bytes they wrote */
	STAT_WB_ERRORS,		/* failed write-back batches */
	STAT_FSYNCS,		/* fsync() and fdatasync() calls */
	STAT_FSYNC_NS,		/* time they took */
	STAT_DIRTY_PEAK,	/* most dirty pages at once: a maximum, not a sum */
	STAT_NR
};

/* Per-thread lines per file: 1 KiB. */
#define STAT_SLOTS	16

struct stat_line {
	uint64_t c[STAT_HOT_NR];
} __attribute__((aligned(64)));

struct file_stats {
	struct stat_line line[STAT_SLOTS];	/* line 0 shared, atomically */
	uint64_t cold[STAT_NR - STAT_HOT_NR];	/* atomic */
	char *name;
	struct file_stats *next, *prev;		/* the open files; stats_lock */
};

/* This thread's line, 0 if it has none (yet): stats.c. */
extern __thread unsigned int stat_slot;

void stat_add_shared(struct file_stats *st, enum stat_hot c, uint64_t v);

/* Add @v to a counter of this thread's own line: no other thread writes it. */
static inline void stat_line_add(uint64_t *p, uint64_t v)
{
	__atomic_store_n(p, __atomic_load_n(p, __ATOMIC_RELAXED) + v, __ATOMIC_RELAXED);
}

/* Count @v more of @c for @st.  Lock-free, async-signal-safe. */
static inline void stat_add(struct file_stats *st, enum stat_hot c, uint64_t v)
{
	unsigned int slot = stat_slot;

	if (likely(slot))
		stat_line_add(&st->line[slot].c[c], v);
	else
		stat_add_shared(st, c, v);
}

/* One more call of @calls for @st, and @bytes more of @bytes_counter. */
static inline void stat_add_call(struct file_stats *st, enum stat_hot calls,
				 enum stat_hot bytes_counter, uint64_t bytes)
{
	unsigned int slot = stat_slot;

	if (likely(slot)) {
		uint64_t *line = st->line[slot].c;

		stat_line_add(&line[calls], 1);
		stat_line_add(&line[bytes_counter], bytes);
	} else {
		stat_add_shared(st, calls, 1);
		stat_add_shared(st, bytes_counter, bytes);
	}
}

static inline void stat_add_cold(struct file_stats *st, enum stat_cold c, uint64_t v)
{
	__atomic_add_fetch(&st->cold[c - STAT_HOT_NR], v, __ATOMIC_RELAXED);
}

/* Where @st counts @c, for whom must count it without knowing stats.h. */
static inline uint64_t *stat_cold_counter(struct file_stats *st, enum stat_cold c)
{
	return &st->cold[c - STAT_HOT_NR];
}

/* @st's file now has @pages dirty pages, the whole cache @total. */
void stats_dirty(struct file_stats *st, unsigned long pages, unsigned long total);

/* The largest number of dirty pages there has been at once (whole cache). */
unsigned long stats_dirty_peak(void);

/*
 * Read calls served from the cache alone, of counts @c from stats_sum().
 * A snapshot taken while reads run may see a miss before its call.
 */
static inline uint64_t read_hits(const uint64_t *c)
{
	return c[STAT_READS] > c[STAT_READ_MISSES] ? c[STAT_READS] - c[STAT_READ_MISSES] : 0;
}

/* Nanoseconds on CLOCK_MONOTONIC, for the waits and latencies above. */
uint64_t stats_now_ns(void);

/*
 * Counters for the file @name (copied), or NULL with errno ENOMEM.  Under
 * no lock of the cache's.
 */
struct file_stats *stats_file_new(const char *name);
/*
 * The inode's last open is gone: fold @st into its file's record.  Counts
 * added later (a call racing with that close) are not reported.
 */
void stats_file_retire(struct file_stats *st);
/* Free @st, retired, once nothing can use it (a grace period later). */
void stats_file_free(struct file_stats *st);

/*
 * Sums of @st's counters (@st NULL: every file, open or closed) into
 * @out[STAT_NR].
 */
void stats_sum(const struct file_stats *st, uint64_t *out);

/* Constructor: set up the thread slots. */
void stats_init(void);
/*
 * The process opened its first tracked file: with FOLIO_STATS=1, keep a
 * descriptor of its stderr for the report (the program may close its own),
 * made folio's own by @adopt (fdtable_adopt()).  Until exit: a daemon's
 * caller waiting for the end of that stderr waits for the daemon
 * (FOLIO_STATS=PATH does not).
 */
void stats_keep_stderr(int (*adopt)(int fd));
/* At exit, after the last write-back: the report FOLIO_STATS asks for. */
void stats_report(void);
/* A fork child counts its own work only. */
void stats_after_fork_child(void);

#endif
