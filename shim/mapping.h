/*
 * mapping.h - the cache's state for one open inode (the kernel's
 * address_space), shared by the cache_*.c files and writeback.c only.
 *
 * One mapping per finode, created with it and freed an RCU grace period after
 * it, so a reader inside urcu_bp_read_lock() may use a mapping it reached
 * through an ofile it got from ofile_rcu().
 *
 * Lock rules (every lock of folio and the order they nest in: shim/LOCKING):
 *   - @lock is the write lock: the cache's view of the file.  Taken shared
 *     by writes that end within the logical size, by misses and by sync
 *     points; exclusive by writes that extend, O_APPEND writes, truncation,
 *     fallocate and anything that changes the kernel's file under the
 *     cache.  Reads that hit take nothing; the flusher takes nothing either
 *     (below).  Never taken inside a read-side section (the holder may wait
 *     for a grace period in page_alloc()).
 *   - @kio_lock is the kernel's copy of the file.  Taken exclusive to
 *     change it: write-back (which holds it and nothing else in the
 *     flusher), writes that go straight to the kernel, truncation,
 *     fallocate, refreshes from the kernel, a new @kfd; so write-backs of a
 *     mapping run one batch at a time and fsync() waits for the batch
 *     another thread is writing.  Taken shared to read the kernel's data
 *     into pages and insert them, so a page can never be filled with data
 *     older than a write-back that finished before it was inserted.  Never
 *     held while allocating pages (allocation may write back).  Taken after
 *     @lock.
 *   - @size grows under @lock exclusive and shrinks only under both locks
 *     exclusive; it is read without a lock.  @ksize moves up under either
 *     lock (write-back) and is set under @kio_lock exclusive.  So a
 *     write-back under @kio_lock alone sees a size that may grow under it
 *     (an extending write is landing) but never shrink: dirty bytes past
 *     its snapshot of the size stay dirty for the next pass.
 *   - @kfd is used under either lock and replaced only under both
 *     exclusive.
 *   - The dirty pages are on the lock-free stack @dirty (pushed by the
 *     writer that dirties a page) or on @wb_list, the sorted rest of a pass,
 *     under @kio_lock exclusive.  Forgetting dirty pages needs both locks
 *     exclusive.
 *   - Order: ofile pos_lock -> @lock -> @kio_lock -> page lock.
 */
#ifndef FOLIO_MAPPING_H
#define FOLIO_MAPPING_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "guard.h"
#include "page.h"
#include "ptree.h"
#include "stats.h"

/*
 * Why a file passes through instead of being cached: the kernel's page cache
 * is the only one another view of the file sees.
 */
/*
 * Pages per pwritev() of write-back: 1 MiB.  Not IOV_MAX (1024, 4 MiB): with
 * 4 MiB batches, 256 MiB written and fsync()ed ran at 0.33x-1.19x of native
 * from run to run, with 1 MiB at 0.94x-1.0x (same machine, same hour); a
 * batch also holds @kio_lock, which a miss of the file waits for.
 */
#define WB_BATCH	256

/*
 * Dirty pages a writer at the end of the file (streaming, appending) lets
 * pile up before the flusher writes them back and drops them: 8 MiB.  A
 * small window reuses memory already faulted in (fresh arena pages cost a
 * fault and zeroing each) and the kernel's page cache holds the data anyway.
 */
#define STREAM_BEHIND	2048

enum bypass_reason {
	BYPASS_MAPPED = 1 << 0,	/* memory-mapped, until the last mapping goes */
	BYPASS_SHARED = 1 << 1,	/* a child process inherited a writable
				 * description of it, or another process holds
				 * it too (share.h), until the last close */
	BYPASS_STDFD = 1 << 2,	/* open as fd 0, 1 or 2, which libc's stdin,
				 * stdout and stderr use without calling folio,
				 * until the last close */
};

struct mapping {
	uint64_t id;			/* the pages' owner number; never reused */
	struct ptree tree;		/* page number -> page */
	pthread_rwlock_t lock;
	off_t size;			/* logical size: the kernel's plus dirty extension */
	off_t ksize;			/* the size the kernel's file has, as far as folio knows */
	/*
	 * The file's ctime as folio last saw it, after its own changes: a
	 * different one when a lock is taken means another process changed
	 * the file (kernels since 6.13 give a changed file a new ctime once
	 * the old one was queried).  Changed under @kio_lock, or @lock
	 * exclusive; also read without them as a hint (kernel_changed(),
	 * checked again under the locks), so its fields are written and read
	 * with relaxed atomics: each read whole, the pair maybe not.
	 */
	struct timespec kctime;
	/* The largest file the kernel allows this one (s_maxbytes), asked
	 * only of a position past SMALLEST_MAX_BYTES (mapping_max_bytes());
	 * 0 until then.  Atomic. */
	off_t max_bytes;
	long fs_type;			/* its file system's (statfs f_type) */
	int kfd;			/* folio's own fd, -1 if none */
	int kfd_accmode;
	bool privileged;		/* set-id bits or file capabilities: writes go through
					 * the kernel so that it drops them */
	unsigned int bypass;		/* enum bypass_reason: every call goes to the kernel */
	pthread_rwlock_t kio_lock;
	/* Write-back's batch, WB_BATCH each, under @kio_lock exclusive: kept
	 * here, not on the stack, so a close() on a small signal stack fits. */
	struct page **wb_run;
	struct iovec *wb_iov;
	struct wb_piece { uint16_t lo, hi; } *wb_piece;	/* each page's bytes */
	off_t wb_span_lo, wb_span_hi;	/* what the flusher's pass wrote */
	struct page *dirty;		/* pushed lock-free; taken whole by write-back */
	struct page *wb_list;		/* the rest of a pass, in file order; @kio_lock */
	unsigned long nr_dirty;		/* pages on both lists; atomic */
	/* When the oldest page on @dirty was dirtied, in ms (0: none) */
	uint64_t dirty_since;
	/* Written at the end of the file lately: the flusher drops behind. */
	bool streaming;
	/* Write-back errors (the kernel's errseq_t): see writeback.c. */
	uint64_t wb_errseq;
	/* ENOSPC or EDQUOT from the last write-back, until one succeeds:
	 * writes that need new space fail at once. */
	int nospace;
	bool no_dontcache;		/* the file system refused RWF_DONTCACHE */
	/* The file system writes page by page, each page whole or not at all
	 * when the program's buffer faults (btrfs): see uio_readable(). */
	bool whole_page_writes;
	/* Whether the file system takes RWF_NOWAIT reads: 0 not asked yet,
	 * 1 yes, -1 no (EOPNOTSUPP).  See nowait_refused(). */
	int8_t nowait_reads;
	/* Its entry in the user's registry of held inodes (share.h), and
	 * whether this process said it may have dirty pages of it. */
	bool share_writer;

	/* What every write reads, in the cache line of @nospace above (a
	 * line more per write measured -3.7% on make bench's pwrite-4k). */
	struct file_stats *stats;	/* stats.h: what was done with the file */
	/* Its registration with the guardian: guard.h.  Set under @lock. */
	struct guard_file guard;
	struct share_entry *share;
	uint32_t share_mark;		/* share_hold()'s: see share_changed() */

	/* After a failed write-back the flusher retries no sooner (ms). */
	uint64_t retry_at;
	unsigned int retry_ms;
	char *name;			/* for messages */

	struct mapping *next, *prev;	/* all mappings; mappings_lock */
	int pins;			/* the flusher is at work on it; mappings_lock */
};

/*
 * No file system folio caches refuses a file this large (reiserfs 3.5's
 * 2 GiB is the least): below it, a position needs no probing.
 */
#define SMALLEST_MAX_BYTES	((off_t)0x7fffffff)

/*
 * cache_page.c: the largest file @m's may be, probed with lseek(2) on
 * folio's own descriptor the first time it is needed.  Takes @kio_lock
 * shared: not under it.
 */
off_t mapping_max_bytes(struct mapping *m);

static inline off_t mapping_size(const struct mapping *m)
{
	return __atomic_load_n(&m->size, __ATOMIC_ACQUIRE);
}

static inline void mapping_set_size(struct mapping *m, off_t size)
{
	__atomic_store_n(&m->size, size, __ATOMIC_RELEASE);
}

static inline off_t mapping_ksize(const struct mapping *m)
{
	return __atomic_load_n(&m->ksize, __ATOMIC_ACQUIRE);
}

/* The kernel's file now reaches at least @end.  Under @lock. */
static inline void mapping_kernel_extends(struct mapping *m, off_t end)
{
	off_t old = __atomic_load_n(&m->ksize, __ATOMIC_RELAXED);

	while (end > old && !__atomic_compare_exchange_n(&m->ksize, &old, end, true,
							 __ATOMIC_RELEASE, __ATOMIC_RELAXED))
		;
}


/* An empty dirty range: any write's range replaces it. */
#define DIRTY_NONE_LO	FOLIO_PAGE_BYTES
#define DIRTY_NONE_HI	0

/*
 * Could a write of [@lo, @hi) of @page join its dirty range?  Yes if the
 * page is clean or the range empty; otherwise only if they overlap or
 * touch: a gap between them holds bytes folio did not write, which another
 * process may have written meanwhile.  Under the page lock.
 */
static inline bool dirty_range_joins(const struct page *page, size_t lo, size_t hi)
{
	return !(page->flags & PAGE_DIRTY) ||		/* the range means nothing */
	       page->dirty_lo > page->dirty_hi ||	/* empty */
	       (lo <= page->dirty_hi && hi >= page->dirty_lo);
}

/* Remember the kernel's ctime of @m's file now: folio just changed it. */
static inline void mapping_note_kernel(struct mapping *m, const struct timespec *ctime)
{
	__atomic_store_n(&m->kctime.tv_sec, ctime->tv_sec, __ATOMIC_RELAXED);
	__atomic_store_n(&m->kctime.tv_nsec, ctime->tv_nsec, __ATOMIC_RELAXED);
}

/*
 * writeback.c: folio just changed @m's file in the kernel, so its new ctime
 * is folio's doing.  Under @kio_lock, or @lock exclusive.
 */
void mapping_note_kernel_now(struct mapping *m);

/*
 * writeback.c: make @page, just dirtied under its lock, part of the dirty
 * list of @m.  Lock-free.
 */
void mapping_account_dirty(struct mapping *m, struct page *page);

/*
 * writeback.c: write every dirty page of @m back to the kernel, coalesced in
 * file order into pwritev() runs, the last page clipped to the logical size,
 * after the rest of any pass another thread began.  Takes @kio_lock; the
 * caller may hold @lock in either mode, or nothing.  Returns 0, or -1 with
 * errno (the pages that were not written stay dirty; the error is recorded
 * for the open files too).
 */
int mapping_writeback(struct mapping *m);

/* Same, with @kio_lock exclusive held by the caller. */
int mapping_writeback_kio_locked(struct mapping *m);

/*
 * writeback.c: with both locks exclusive, forget the dirty pages of @m at
 * or past page @first (truncation removed them).
 */
void mapping_forget_dirty_from(struct mapping *m, uint64_t first);

/* Take both locks exclusive / release them. */
static inline void mapping_lock_all(struct mapping *m)
{
	pthread_rwlock_wrlock(&m->lock);
	pthread_rwlock_wrlock(&m->kio_lock);
}

static inline void mapping_unlock_all(struct mapping *m)
{
	pthread_rwlock_unlock(&m->kio_lock);
	pthread_rwlock_unlock(&m->lock);
}

#endif
