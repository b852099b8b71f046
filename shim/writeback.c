/*
 * writeback.c - dirty pages back to the kernel (doc/design.md §2.5).
 *
 * Owns each mapping's dirty lists, the list of all mappings, the count of
 * dirty pages, the flusher thread and the writing itself: in file order,
 * the dirty bytes of contiguous pages coalesced into one pwritev() of up to
 * WB_BATCH pages (a batch), clipped to the logical size.
 *
 * Who writes back: the flusher thread, when a file's oldest dirty page is
 * FOLIO_FLUSH_INTERVAL old, when the dirty pages pass the background
 * threshold (half of FOLIO_DIRTY_LIMIT) or a streaming writer's window, and
 * when a writer at the limit waits; and the program's own threads at their
 * sync points (fsync, close, sync, fork, exec, exit, an unlock, a writer
 * short of pages).  Writers do not write back for the dirty limit: they
 * wait for the flusher (writeback_throttle()), as balance_dirty_pages()
 * makes them wait for the kernel's; only with no flusher (it could not be
 * started, or the process is exiting) do they write back themselves.  The
 * flusher starts with the first dirty page, leaves after FLUSHER_IDLE_MS
 * with nothing dirty and no tracked file open for writing (so that a later
 * write, which may run in a signal handler where pthread_create() is not
 * safe, seldom has to start it again), and stops at exit before the last
 * write-back.
 *
 * A pass takes the mapping's dirty stack into m->wb_list, sorted, and
 * writes it one batch at a time, all under kio_lock exclusive (mapping.h).
 * The flusher holds nothing else, and lets go of kio_lock between batches,
 * so extending writers never wait for its system calls and fills or an
 * fsync get in between; whoever takes kio_lock next carries on with
 * m->wb_list.  A sync point holds kio_lock (and no more: a writer waiting
 * for the flusher may hold the file's lock) until both lists are empty.
 *
 * A page being written has PAGE_WRITEBACK instead of PAGE_DIRTY: a writer
 * that changes it meanwhile dirties it again (it is written again later),
 * the clock hand leaves it alone, and a failed write makes it dirty again.
 * Readers copy from it as from any page: write-back only reads its data.
 *
 * The flusher also notices a dead guardian (guard_lost()) and then writes
 * everything back at once, and answers other processes that opened a file
 * this one holds (share.h): it sleeps on a futex they can ring.
 *
 * Calls page, guard, share, config, log, rcu, stats and real; called by
 * cache and crash.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <link.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>

#include "compiler.h"
#include "config.h"
#include "debug.h"
#include "errseq.h"
#include "log.h"
#include "mapping.h"
#include "real.h"
#include "share.h"
#include "writeback.h"

#ifndef RWF_DONTCACHE
#define RWF_DONTCACHE	0x80
#endif

/* Backoff of the flusher's retries of a failing file. */
#define RETRY_FIRST_MS	100u
#define RETRY_MAX_MS	5000u

static pthread_mutex_t mappings_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t mapping_unpinned = PTHREAD_COND_INITIALIZER;
static struct mapping *mappings;
/* Dirty pages of all mappings: changes on clean/dirty transitions only. */
static unsigned long nr_dirty_pages;

/*
 * The flusher.  @lock guards the fields and the conditions; the flags the
 * writers test without it (@started, @sleeping, @timer_off) are only hints
 * they confirm under it.
 */
static struct flusher {
	pthread_mutex_t lock;
	pthread_cond_t progress;	/* writers at the limit wait for clean pages */
	/* Held by the flusher while it writes a batch: exit takes it to know
	 * that no batch runs (and none starts once @stopping is set). */
	pthread_mutex_t busy;
	bool started;			/* a flusher thread runs */
	bool failed;			/* it could not be created: writers write back */
	bool stopping;			/* exit: no more write-back from the thread; set
					 * without the lock, so read atomically */
	bool sleeping;			/* waiting on @wake */
	bool timer_off;			/* ... with no deadline: nothing was dirty */
	bool kicked;			/* work was asked for while it was not waiting */
	int waiters;			/* writers waiting on @progress; changed under the
					 * lock, read without it (wake_waiters): atomic */
	unsigned long writers;		/* tracked open file descriptions that may write */
	unsigned long rounds;		/* rounds begun */
	/* Round @stuck_round, begun with writers waiting, wrote nothing and
	 * failed with @stuck_err: a writer waiting since before that round
	 * fails with it instead of waiting on.  Cleared by any batch written. */
	int stuck_err;
	unsigned long stuck_round;
} fl = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.progress = PTHREAD_COND_INITIALIZER,
	.busy = PTHREAD_MUTEX_INITIALIZER,
};

/*
 * fl.lock is also taken by the program's threads, and a signal handler doing
 * I/O on a tracked file may interrupt one holding it: that handler's writes
 * must not wait for it.  Set before the lock is taken, cleared once it is
 * released; a thread that finds it set skips what it would have done under
 * the lock (a kick, a wake-up, a throttle wait: each only an optimisation
 * or a bound that the interrupted code is already seeing to).
 */
static __thread bool fl_locked_here __attribute__((tls_model("initial-exec")));
__thread unsigned int folio_call_depth __attribute__((tls_model("initial-exec")));

/*
 * The flusher sleeps on a futex word, its bell, rather than a condition
 * variable: other processes ring it too (share.c, when a file this process
 * holds becomes shared and its dirty pages must reach the kernel now).
 * The word is in the registry's shared memory once share.c has a slot for
 * this process, a private one before.  Changed and rung under fl.lock by
 * this process; the sleeper reads it under fl.lock and waits unlocked, so
 * no ring is lost.
 */
static uint32_t private_bell;

static uint32_t *bell(void)
{
	uint32_t *shared = __atomic_load_n(&share_bell, __ATOMIC_ACQUIRE);

	return shared ? shared : &private_bell;
}

static void bell_ring(void)
{
	uint32_t *word = bell();

	__atomic_add_fetch(word, 1, __ATOMIC_SEQ_CST);
	syscall(SYS_futex, word, word == &private_bell ? FUTEX_WAKE_PRIVATE : FUTEX_WAKE,
		INT_MAX, NULL, NULL, 0);
}

/* The bell's value, read before the conditions a sleep depends on. */
static uint32_t bell_value(void)
{
	return __atomic_load_n(bell(), __ATOMIC_SEQ_CST);
}

/* Wait for a ring since the bell was @seen, or @deadline (CLOCK_MONOTONIC);
 * under fl.lock, which it drops meanwhile.  Returns ETIMEDOUT or 0. */
static int bell_wait(const struct timespec *deadline, uint32_t seen)
{
	uint32_t *word = bell();
	int op = (word == &private_bell ? FUTEX_WAIT_BITSET_PRIVATE : FUTEX_WAIT_BITSET);
	long ret;

	pthread_mutex_unlock(&fl.lock);
	ret = syscall(SYS_futex, word, op, seen, deadline, NULL, FUTEX_BITSET_MATCH_ANY);
	pthread_mutex_lock(&fl.lock);
	return ret < 0 && errno == ETIMEDOUT ? ETIMEDOUT : 0;
}

static bool fl_lock(void)
{
	if (fl_locked_here)
		return false;
	fl_locked_here = true;
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	pthread_mutex_lock(&fl.lock);
	return true;
}

static void fl_unlock(void)
{
	pthread_mutex_unlock(&fl.lock);
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	fl_locked_here = false;
}

/* The flusher exits after this long with nothing dirty and no tracked file
 * open for writing: a process with one thread again makes its system calls
 * faster (the kernel's fdget()). */
#define FLUSHER_IDLE_MS	5000u

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + 1;	/* never 0 */
}

static unsigned long dirty_limit_pages(void)
{
	return folio_config.dirty_limit >> FOLIO_PAGE_SHIFT;
}

bool writeback_over_limit(void)
{
	return __atomic_load_n(&nr_dirty_pages, __ATOMIC_RELAXED) > dirty_limit_pages();
}

static bool over_background(void)
{
	return __atomic_load_n(&nr_dirty_pages, __ATOMIC_RELAXED) > dirty_limit_pages() / 2;
}

/* ---- The list of mappings ---- */

void writeback_register(struct mapping *m)
{
	pthread_mutex_lock(&mappings_lock);
	m->prev = NULL;
	m->next = mappings;
	if (mappings)
		mappings->prev = m;
	mappings = m;
	pthread_mutex_unlock(&mappings_lock);
}

void writeback_unregister(struct mapping *m)
{
	pthread_mutex_lock(&mappings_lock);
	while (m->pins)
		pthread_cond_wait(&mapping_unpinned, &mappings_lock);
	if (m->prev)
		m->prev->next = m->next;
	else
		mappings = m->next;
	if (m->next)
		m->next->prev = m->prev;
	pthread_mutex_unlock(&mappings_lock);
}

/* ---- Errors (errseq.h) ---- */

uint64_t writeback_error_sample(struct mapping *m)
{
	return errseq_sample(&m->wb_errseq);
}

int writeback_error_check(struct mapping *m, uint64_t *since)
{
	return errseq_check(&m->wb_errseq, since);
}

/* ---- Dirty lists ---- */

static void dirty_push(struct mapping *m, struct page *page)
{
	page->dirty_next = __atomic_load_n(&m->dirty, __ATOMIC_RELAXED);
	while (!__atomic_compare_exchange_n(&m->dirty, &page->dirty_next, page, true,
					    __ATOMIC_SEQ_CST, __ATOMIC_RELAXED))
		;
}

/* The flusher or writeback_all() is done with @m.  Under mappings_lock. */
static void unpin_locked(struct mapping *m)
{
	if (--m->pins == 0)
		pthread_cond_broadcast(&mapping_unpinned);
}

/*
 * Mappings whose inode the registry says this process may have dirty pages
 * of (share.h): the flusher stays while there are any, to answer when
 * another process opens one.
 */
static unsigned long share_writers;

void writeback_share_release(struct mapping *m)
{
	if (__atomic_exchange_n(&m->share_writer, false, __ATOMIC_SEQ_CST))
		__atomic_sub_fetch(&share_writers, 1, __ATOMIC_SEQ_CST);
	share_release(m->share);
	m->share = NULL;
}

void writeback_each_mapping(void (*fn)(struct mapping *m))
{
	pthread_mutex_lock(&mappings_lock);
	for (struct mapping *m = mappings; m; m = m->next) {
		m->pins++;
		pthread_mutex_unlock(&mappings_lock);
		fn(m);
		pthread_mutex_lock(&mappings_lock);
		unpin_locked(m);
	}
	pthread_mutex_unlock(&mappings_lock);
}

bool writeback_share_writer(struct mapping *m)
{
	if (!__atomic_exchange_n(&m->share_writer, true, __ATOMIC_SEQ_CST)) {
		__atomic_add_fetch(&share_writers, 1, __ATOMIC_SEQ_CST);
		share_writer(m->share);
	}
	return share_changed(m->share, m->share_mark);
}

void mapping_account_dirty(struct mapping *m, struct page *page)
{
	uint64_t none = 0;

	/* Before the page counts: the flusher then stays (share_writers). */
	if (unlikely(m->share && !__atomic_load_n(&m->share_writer, __ATOMIC_RELAXED)))
		writeback_share_writer(m);

	unsigned long mine, all;

	mine = __atomic_add_fetch(&m->nr_dirty, 1, __ATOMIC_RELAXED);
	all = __atomic_add_fetch(&nr_dirty_pages, 1, __ATOMIC_SEQ_CST);	/* see flusher_sleep() */
	stats_dirty(m->stats, mine, all);
	dirty_push(m, page);
	/* After the push: pass_take_dirty() clears it before taking the
	 * stack, so a page it did not take has a time. */
	if (!__atomic_load_n(&m->dirty_since, __ATOMIC_SEQ_CST))
		__atomic_compare_exchange_n(&m->dirty_since, &none, now_ms(), false,
					    __ATOMIC_SEQ_CST, __ATOMIC_RELAXED);
}

static void account_clean(struct mapping *m)
{
	__atomic_sub_fetch(&m->nr_dirty, 1, __ATOMIC_RELAXED);
	__atomic_sub_fetch(&nr_dirty_pages, 1, __ATOMIC_RELAXED);
}

/* Merge two lists sorted by page index. */
static struct page *merge_by_index(struct page *a, struct page *b)
{
	struct page *head = NULL, **tail = &head;

	while (a && b) {
		struct page **take = a->index <= b->index ? &a : &b;

		*tail = *take;
		tail = &(*take)->dirty_next;
		*take = (*take)->dirty_next;
	}
	*tail = a ? a : b;
	return head;
}

/* Merge sort of a detached dirty list by page index (stable, no memory). */
static struct page *sort_by_index(struct page *list)
{
	struct page *a = NULL, *b = NULL;

	if (!list || !list->dirty_next)
		return list;
	while (list) {		/* split alternately */
		struct page *next = list->dirty_next;

		list->dirty_next = a;
		a = list;
		list = next;
		if (list) {
			next = list->dirty_next;
			list->dirty_next = b;
			b = list;
			list = next;
		}
	}
	return merge_by_index(sort_by_index(a), sort_by_index(b));
}

/* The pages dirty now join the pass, in file order.  @kio_lock exclusive. */
static void pass_take_dirty(struct mapping *m)
{
	struct page *list;

	assert_exclusive(&m->kio_lock);
	__atomic_store_n(&m->dirty_since, 0, __ATOMIC_SEQ_CST);
	list = __atomic_exchange_n(&m->dirty, NULL, __ATOMIC_SEQ_CST);
	m->wb_list = merge_by_index(m->wb_list, sort_by_index(list));
}

/*
 * Bytes [@lo, @hi) of @page were not written: dirty again (joined with what
 * a writer dirtied meanwhile).
 */
static void redirty(struct mapping *m, struct page *page, size_t lo, size_t hi)
{
	pthread_mutex_lock(&page->lock);
	__atomic_store_n(&page->flags, page->flags & ~PAGE_WRITEBACK, __ATOMIC_RELAXED);
	if (page->flags & PAGE_INDEXED) {
		if (!(page->flags & PAGE_DIRTY)) {
			__atomic_store_n(&page->flags, page->flags | PAGE_DIRTY, __ATOMIC_RELAXED);
			page->dirty_lo = lo;
			page->dirty_hi = hi;
			mapping_account_dirty(m, page);
		} else {
			if (lo < page->dirty_lo)
				page->dirty_lo = lo;
			if (hi > page->dirty_hi)
				page->dirty_hi = hi;
		}
	}
	page_journal(page);	/* writeback's range is dirty again */
	pthread_mutex_unlock(&page->lock);
}

/*
 * @page is in the kernel now.  With @drop, and unless a writer dirtied it
 * again meanwhile, it leaves the cache too (drop-behind for a streaming
 * writer: the kernel's page cache has the data, and the free list gets back
 * a page whose memory is already faulted in).
 */
static void writeback_done(struct page *page, bool drop)
{
	pthread_mutex_lock(&page->lock);
	__atomic_store_n(&page->flags, page->flags & ~PAGE_WRITEBACK, __ATOMIC_RELEASE);
	page_journal(page);	/* the kernel has it */
	if (drop && page->flags == PAGE_INDEXED) {
		urcu_bp_read_lock();
		page_remove(page);
		urcu_bp_read_unlock();
	}
	pthread_mutex_unlock(&page->lock);
}

void mapping_forget_dirty_from(struct mapping *m, uint64_t first)
{
	struct page *list = merge_by_index(m->wb_list,
					   __atomic_exchange_n(&m->dirty, NULL, __ATOMIC_ACQUIRE));
	uint64_t none = 0;
	bool kept = false;

	m->wb_list = NULL;
	while (list) {
		struct page *next = list->dirty_next;

		if (list->index >= first) {
			account_clean(m);
		} else {
			dirty_push(m, list);
			kept = true;
		}
		list = next;
	}
	if (kept)	/* pages a pass had taken are due again */
		__atomic_compare_exchange_n(&m->dirty_since, &none, now_ms(), false,
					    __ATOMIC_SEQ_CST, __ATOMIC_RELAXED);
	if (!__atomic_load_n(&m->nr_dirty, __ATOMIC_RELAXED)) {
		/* Nothing left that failed: no retries, no space error. */
		m->retry_ms = 0;
		__atomic_store_n(&m->retry_at, 0, __ATOMIC_RELAXED);
		__atomic_store_n(&m->nospace, 0, __ATOMIC_RELAXED);
	}
}

/* ---- Batches ---- */

/*
 * Write @cnt iovecs at @off with @rwf flags, going on after short writes.
 * Returns the bytes written; *@err is 0 or the errno of the failure that
 * stopped it.
 */
static size_t pwritev_all(struct mapping *m, struct iovec *iov, int cnt, off_t off, int rwf,
			  int *err)
{
	size_t total = 0;

	*err = 0;
	while (cnt > 0) {
		ssize_t n = rwf ? real_pwritev64v2(m->kfd, iov, cnt, off, rwf) :
				  real_pwritev64(m->kfd, iov, cnt, off);


		if (n < 0 && errno == EINTR)
			continue;
		stat_add_cold(m->stats, STAT_WB_CALLS, 1);
		if (n <= 0) {
			*err = n < 0 ? errno : EIO;
			break;
		}
		stat_add_cold(m->stats, STAT_WB_BYTES, n);
		total += n;
		off += n;
		while (cnt > 0 && (size_t)n >= iov->iov_len) {
			n -= iov->iov_len;
			iov++;
			cnt--;
		}
		if (cnt > 0) {
			iov->iov_base = (char *)iov->iov_base + n;
			iov->iov_len -= n;
		}
	}
	return total;
}

/*
 * Take the run at the head of m->wb_list whose dirty bytes are contiguous
 * in the file (a page joins the run only if the previous one is dirty to
 * its end and it is dirty from its start; at most WB_BATCH pages), moving
 * each from dirty to writeback, clipped to @size.  Fills m->wb_run,
 * m->wb_iov and m->wb_piece; sets *@start to the file offset of the first
 * byte.  Returns how many.  @kio_lock exclusive.
 */
static int take_run(struct mapping *m, off_t size, off_t *start)
{
	struct page **run = m->wb_run;
	struct iovec *iov = m->wb_iov;
	int n = 0;

	assert_exclusive(&m->kio_lock);
	while (m->wb_list && n < WB_BATCH) {
		struct page *page = m->wb_list;
		off_t page_start = (off_t)page->index << FOLIO_PAGE_SHIFT;
		size_t lo, hi, end;

		if (n && page->index != run[n - 1]->index + 1)
			break;
		pthread_mutex_lock(&page->lock);
		lo = page->dirty_lo;
		hi = page->dirty_hi;
		if (n && lo != 0) {		/* a gap before it: the run ends */
			pthread_mutex_unlock(&page->lock);
			break;
		}
		m->wb_list = page->dirty_next;	/* read while still dirty: then nobody pushes it */
		page_journal_writeback(page, lo, hi);
		__atomic_store_n(&page->flags, (page->flags & ~PAGE_DIRTY) | PAGE_WRITEBACK,
				 __ATOMIC_RELAXED);
		page->dirty_lo = DIRTY_NONE_LO;
		page->dirty_hi = DIRTY_NONE_HI;
		page_journal(page);	/* the same bytes, now as write-back's */
		pthread_mutex_unlock(&page->lock);
		account_clean(m);
		end = size - page_start < (off_t)hi ? (size_t)(size - page_start) : hi;
		if (page_start >= size || lo >= end) {
			/* Not in the file yet (an extending write is landing,
			 * or the range is empty): for a later pass. */
			if (lo < hi)
				redirty(m, page, lo, hi);
			else
				writeback_done(page, false);
			if (!n)
				continue;
			break;
		}
		if (!n)
			*start = page_start + lo;
		run[n] = page;
		iov[n].iov_base = page->data + lo;
		iov[n].iov_len = end - lo;
		m->wb_piece[n].lo = lo;
		m->wb_piece[n].hi = hi;
		n++;
		if (end < FOLIO_PAGE_BYTES)	/* a gap after it: the run ends */
			break;
	}
	return n;
}

#ifdef FOLIO_TEST_FAULTS
/*
 * Test builds only (tests/tests.mk builds libfolio-faults.so): while the
 * file named by FOLIO_TEST_FAULTS holds an errno number, every write-back
 * fails with it, as if the kernel had said so; everything above the system
 * call is folio's real code.
 */
static int injected_fault(void)
{
	const char *path = getenv("FOLIO_TEST_FAULTS");
	char buf[16] = "";
	int fd = path ? real_open(path, O_RDONLY | O_CLOEXEC, 0) : -1;

	if (fd < 0)
		return 0;
	if (real_read(fd, buf, sizeof(buf) - 1) < 0)
		buf[0] = '\0';
	real_close(fd);
	return atoi(buf);
}
#else
static int injected_fault(void)
{
	return 0;
}
#endif

/* Hand @n iovecs at @start to the kernel the way FOLIO_FLUSH_MODE says. */
static size_t write_run(struct mapping *m, int n, off_t start, bool background, int *err)
{
	size_t written;

	if (m->kfd < 0 || unlikely(*err = injected_fault())) {
		if (!*err)
			*err = EBADF;
		return 0;
	}
	if (folio_config.flush_mode == FLUSH_DONTCACHE && !m->no_dontcache) {
		written = pwritev_all(m, m->wb_iov, n, start, RWF_DONTCACHE, err);
		if (written || (*err != EOPNOTSUPP && *err != EINVAL))
			return written;
		m->no_dontcache = true;		/* this file system: plain writes */
		log_info("%s: the file system refuses RWF_DONTCACHE: plain pwritev()", m->name);
	}
	written = pwritev_all(m, m->wb_iov, n, start, 0, err);
	if (written && background) {		/* for start_device_writes() */
		if (start < m->wb_span_lo)
			m->wb_span_lo = start;
		if (start + (off_t)written > m->wb_span_hi)
			m->wb_span_hi = start + written;
	}
	return written;
}

/* A write-back of @m wrote something: the retries and space errors end. */
static void batch_succeeded(struct mapping *m)
{
	if (unlikely(m->retry_ms || m->nospace)) {
		m->retry_ms = 0;
		__atomic_store_n(&m->retry_at, 0, __ATOMIC_RELAXED);
		__atomic_store_n(&m->nospace, 0, __ATOMIC_RELAXED);
	}
	if (unlikely(__atomic_load_n(&fl.stuck_err, __ATOMIC_RELAXED)))
		__atomic_store_n(&fl.stuck_err, 0, __ATOMIC_RELAXED);
}

static void batch_failed(struct mapping *m, int err)
{
	log_debug("write-back of %s failed: %s", m->name, strerror(err));
	stat_add_cold(m->stats, STAT_WB_ERRORS, 1);
	errseq_set(&m->wb_errseq, err);
	if (err == ENOSPC || err == EDQUOT)
		__atomic_store_n(&m->nospace, err, __ATOMIC_RELAXED);
	m->retry_ms = m->retry_ms ? (m->retry_ms * 2 < RETRY_MAX_MS ? m->retry_ms * 2 :
							   RETRY_MAX_MS) : RETRY_FIRST_MS;
	__atomic_store_n(&m->retry_at, now_ms() + m->retry_ms, __ATOMIC_RELAXED);
}

/*
 * Write the next run of m->wb_list.  @kio_lock exclusive.  Returns the
 * pages of the run (0: the list is done); *@err is the failure, if any (the
 * pages not written are dirty again).
 */
static int write_batch(struct mapping *m, bool drop, bool background, int *err)
{
	off_t size = mapping_size(m), start = 0;	/* may grow meanwhile, not shrink */
	struct page **run = m->wb_run;
	size_t written;
	int n = take_run(m, size, &start);

	assert_exclusive(&m->kio_lock);
	*err = 0;
	if (!n)
		return 0;
	written = write_run(m, n, start, background, err);
	log_debug("write-back of %s: %d page%s at %lld, %zu bytes written%s", m->name, n,
		  n == 1 ? "" : "s", (long long)start, written,
		  background ? " by the flusher" : "");
	/* Before any page can be reclaimed: a miss must find this. */
	if (written) {
		mapping_kernel_extends(m, start + written);
		batch_succeeded(m);
	}
	for (int i = 0; i < n; i++) {
		off_t page_start = (off_t)run[i]->index << FOLIO_PAGE_SHIFT;
		size_t lo = m->wb_piece[i].lo, hi = m->wb_piece[i].hi;
		off_t done = start + (off_t)written - page_start;	/* written of this page */

		if (done > size - page_start)	/* past the snapshot: not written */
			done = size - page_start;
		if (done >= (off_t)hi)
			writeback_done(run[i], drop);
		else
			redirty(m, run[i], done > (off_t)lo ? (size_t)done : lo, hi);
	}
	if (*err)
		batch_failed(m, *err);
	return n;
}

void mapping_note_kernel_now(struct mapping *m)
{
	struct stat st;

	if (m->kfd >= 0 && real_fstat(m->kfd, &st) == 0)
		mapping_note_kernel(m, &st.st_ctim);
}

static void wake_waiters(void)
{
	if (__atomic_load_n(&fl.waiters, __ATOMIC_RELAXED) && fl_lock()) {
		pthread_cond_broadcast(&fl.progress);
		fl_unlock();
	}
}

int mapping_writeback_kio_locked(struct mapping *m)
{
	bool wrote = false;
	int err = 0;

	/* Everything dirty joins the rest of a pass another thread began. */
	pass_take_dirty(m);
	while (!err && write_batch(m, false, false, &err))
		wrote = true;
	if (wrote)
		mapping_note_kernel_now(m);
	if (err) {
		errno = err;
		return -1;
	}
	return 0;
}

int mapping_writeback(struct mapping *m)
{
	int ret;

	pthread_rwlock_wrlock(&m->kio_lock);
	ret = mapping_writeback_kio_locked(m);
	pthread_rwlock_unlock(&m->kio_lock);
	wake_waiters();
	return ret;
}

int writeback_all(void)
{
	int err = 0;

	/* Not under mappings_lock while writing: a writer waiting for the
	 * flusher may hold a file's lock, and the flusher needs the list. */
	pthread_mutex_lock(&mappings_lock);
	for (struct mapping *m = mappings; m; m = m->next) {
		if (__atomic_load_n(&m->bypass, __ATOMIC_RELAXED))
			continue;
		m->pins++;
		pthread_mutex_unlock(&mappings_lock);
		if (mapping_writeback(m) < 0 && !err)
			err = errno;
		pthread_mutex_lock(&mappings_lock);
		unpin_locked(m);
	}
	pthread_mutex_unlock(&mappings_lock);
	if (err) {
		errno = err;
		return -1;
	}
	return 0;
}

/* ---- The flusher ---- */

/*
 * FLUSH_SYNC_RANGE (and FLUSH_AUTO behind a streaming writer): have the
 * kernel start writing to the device what the pass handed it, so a later
 * fsync() has less to wait for (the advice of the 2024 discussion: submit
 * write-back from your own context).  One call for the pass, under
 * @kio_lock shared (@kfd stays), not per batch: the call may wait for the
 * device's queue (per batch, seq-write measured 0.4x-1.5x of native from
 * run to run; per pass, 1.0x-1.2x).  Not for files rewritten in place: the
 * kernel would write each page to the device every FOLIO_FLUSH_INTERVAL
 * instead of once for many rewrites.
 */
static void start_device_writes(struct mapping *m)
{
	pthread_rwlock_rdlock(&m->kio_lock);
	if (m->kfd >= 0 && m->wb_span_lo < m->wb_span_hi)
		real_sync_file_range(m->kfd, m->wb_span_lo, m->wb_span_hi - m->wb_span_lo,
				     SYNC_FILE_RANGE_WRITE);
	pthread_rwlock_unlock(&m->kio_lock);
}

/*
 * The flusher's pass over @m: what is dirty now, one batch per hold of
 * @kio_lock.  Returns whether anything was written; *@err is the failure
 * that ended it, if any.
 */
static bool flush_mapping(struct mapping *m, int *err)
{
	bool streaming = __atomic_load_n(&m->streaming, __ATOMIC_RELAXED);
	/* Drop behind a streaming writer: the kernel keeps the pages, unless
	 * told not to (then folio's copy is the only one). */
	bool drop = streaming && folio_config.flush_mode != FLUSH_DONTCACHE;
	bool wrote = false, more;

	*err = 0;
	pthread_rwlock_wrlock(&m->kio_lock);
	pass_take_dirty(m);
	more = m->wb_list != NULL;
	m->wb_span_lo = INT64_MAX;
	m->wb_span_hi = 0;
	pthread_rwlock_unlock(&m->kio_lock);
	while (more) {
		pthread_mutex_lock(&fl.busy);
		if (__atomic_load_n(&fl.stopping, __ATOMIC_ACQUIRE)) {
			pthread_mutex_unlock(&fl.busy);
			return wrote;		/* exit writes back itself */
		}
		pthread_rwlock_wrlock(&m->kio_lock);
		more = false;
		if (!__atomic_load_n(&m->bypass, __ATOMIC_RELAXED)) {
			int n = write_batch(m, drop, true, err);

			if (n && !*err) {
				wrote = true;
				more = true;
				mapping_note_kernel_now(m);
			}
		}
		pthread_rwlock_unlock(&m->kio_lock);
		pthread_mutex_unlock(&fl.busy);
		wake_waiters();
	}
	if (drop)		/* the dropped pages back on the free list, on top */
		folio_defer_flush();
	if (wrote && (folio_config.flush_mode == FLUSH_SYNC_RANGE ||
		      (folio_config.flush_mode == FLUSH_AUTO && streaming)))
		start_device_writes(m);
	return wrote;
}

/*
 * Is @m due for write-back at @now (@all: if dirty at all; @force: also
 * while backing off after a failure)?  Else its next deadline goes to
 * *@next.
 */
static bool mapping_due(struct mapping *m, uint64_t now, bool all, bool force, uint64_t *next)
{
	uint64_t since = __atomic_load_n(&m->dirty_since, __ATOMIC_RELAXED);
	uint64_t due = since + folio_config.flush_interval_ms;
	uint64_t retry_at = __atomic_load_n(&m->retry_at, __ATOMIC_RELAXED);

	if (!__atomic_load_n(&m->nr_dirty, __ATOMIC_RELAXED) ||
	    __atomic_load_n(&m->bypass, __ATOMIC_RELAXED))
		return false;
	if (retry_at > now && !force) {		/* failing: back off */
		if (retry_at < *next)
			*next = retry_at;
		return false;
	}
	if (all || retry_at || (since && due <= now) ||
	    (__atomic_load_n(&m->streaming, __ATOMIC_RELAXED) &&
	     __atomic_load_n(&m->nr_dirty, __ATOMIC_RELAXED) >= STREAM_BEHIND))
		return true;
	if (since && due < *next)
		*next = due;
	else if (!since && now + folio_config.flush_interval_ms < *next)
		*next = now + folio_config.flush_interval_ms;	/* dirty, time unknown yet */
	return false;
}

/*
 * One round: write back every mapping that is due (@all: every dirty one;
 * @force: failing ones too).  Returns the time of the next deadline
 * (UINT64_MAX: nothing dirty); sets *@progress if anything was written and
 * *@err to the first failure if nothing was.
 */
static uint64_t flush_round(bool all, bool force, bool *progress, int *err)
{
	uint64_t now = now_ms(), next = UINT64_MAX;

	*progress = false;
	*err = 0;
	pthread_mutex_lock(&mappings_lock);
	for (struct mapping *m = mappings; m; m = m->next) {
		int e;

		if (!mapping_due(m, now, all, force, &next))
			continue;
		m->pins++;
		pthread_mutex_unlock(&mappings_lock);
		if (flush_mapping(m, &e))
			*progress = true;
		else if (e && !*err)
			*err = e;
		pthread_mutex_lock(&mappings_lock);
		unpin_locked(m);
		mapping_due(m, now_ms(), false, false, &next);	/* its next deadline */
	}
	pthread_mutex_unlock(&mappings_lock);
	if (*progress)
		*err = 0;
	return next;
}

static void deadline_to_timespec(uint64_t ms, struct timespec *ts)
{
	struct timespec now;
	uint64_t cur = now_ms(), wait = ms > cur ? ms - cur : 0;

	clock_gettime(CLOCK_MONOTONIC, &now);
	ts->tv_sec = now.tv_sec + wait / 1000;
	ts->tv_nsec = now.tv_nsec + (long)(wait % 1000) * 1000000;
	if (ts->tv_nsec >= 1000000000) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000;
	}
}

/*
 * Sleep until @next (UINT64_MAX: until a writer dirties a page) or a kick.
 * Under fl.lock.  Returns false if the thread is to exit: nothing was
 * dirty for FLUSHER_IDLE_MS and no tracked file is open for writing
 * (fl.started is false then: the next write starts another).
 */
static bool flusher_sleep(uint64_t next, uint32_t seen)
{
	struct timespec ts;
	bool idle;

	__atomic_store_n(&fl.sleeping, true, __ATOMIC_SEQ_CST);
	if (next == UINT64_MAX) {
		__atomic_store_n(&fl.timer_off, true, __ATOMIC_SEQ_CST);
		/* Against writeback_dirtied(): either its writer sees
		 * timer_off and kicks, or this sees its page. */
		if (__atomic_load_n(&nr_dirty_pages, __ATOMIC_SEQ_CST)) {
			__atomic_store_n(&fl.timer_off, false, __ATOMIC_SEQ_CST);
			next = now_ms() + folio_config.flush_interval_ms;
		}
	}
	idle = next == UINT64_MAX;
	deadline_to_timespec(idle ? now_ms() + FLUSHER_IDLE_MS : next, &ts);
	if (bell_wait(&ts, seen) == ETIMEDOUT &&
	    idle && !fl.kicked && !fl.waiters && !__atomic_load_n(&fl.writers, __ATOMIC_RELAXED) &&
	    !__atomic_load_n(&share_writers, __ATOMIC_SEQ_CST)) {
		/* Against writeback_dirtied() again, on @started this time. */
		__atomic_store_n(&fl.started, false, __ATOMIC_SEQ_CST);
		if (!__atomic_load_n(&nr_dirty_pages, __ATOMIC_SEQ_CST)) {
			__atomic_store_n(&fl.sleeping, false, __ATOMIC_RELAXED);
			__atomic_store_n(&fl.timer_off, false, __ATOMIC_RELAXED);
			return false;
		}
		__atomic_store_n(&fl.started, true, __ATOMIC_SEQ_CST);
	}
	__atomic_store_n(&fl.sleeping, false, __ATOMIC_RELAXED);
	__atomic_store_n(&fl.timer_off, false, __ATOMIC_RELAXED);
	return true;
}

/*
 * Rounds while there is work: at once while the dirty pages are over the
 * background threshold (or writers wait) and rounds make progress, else at
 * the next deadline.
 */
static void *flusher_main(void *unused)
{
	uint64_t next = 0;
	bool progress = false;

	(void)unused;
	pthread_mutex_lock(&fl.lock);
	while (!__atomic_load_n(&fl.stopping, __ATOMIC_RELAXED)) {
		bool all = over_background() || fl.waiters, force = fl.waiters;
		unsigned long round;
		int err;

		uint32_t seen = bell_value();	/* before the checks: no ring lost */

		if (share_pending()) {	/* another process opened a file of ours */
			pthread_mutex_unlock(&fl.lock);
			if (!share_catch_up(false))
				usleep(1000);	/* a lock was taken: after a round */
			pthread_mutex_lock(&fl.lock);
		}
		if (!fl.kicked && !(all && progress) && next > now_ms() && !share_pending()) {
			if (!flusher_sleep(next, seen))
				break;
			next = 0;
			progress = false;
			continue;
		}
		fl.kicked = false;
		round = ++fl.rounds;
		pthread_mutex_unlock(&fl.lock);
		if (guard_lost())	/* what it guarded is in danger: all of it now */
			all = true;
		next = flush_round(all, force, &progress, &err);
		pthread_mutex_lock(&fl.lock);
		if (err && force) {	/* writers waiting, and nothing would go */
			__atomic_store_n(&fl.stuck_err, err, __ATOMIC_RELAXED);
			fl.stuck_round = round;
		}
		pthread_cond_broadcast(&fl.progress);
		if (!progress && next <= now_ms())
			next = now_ms() + RETRY_FIRST_MS;	/* failing: no busy loop */
	}
	pthread_mutex_unlock(&fl.lock);
	return NULL;
}

static int add_tls_size(struct dl_phdr_info *info, size_t size, void *total)
{
	(void)size;
	for (int i = 0; i < info->dlpi_phnum; i++)
		if (info->dlpi_phdr[i].p_type == PT_TLS)
			*(size_t *)total += info->dlpi_phdr[i].p_memsz + info->dlpi_phdr[i].p_align;
	return 0;
}

/*
 * The flusher's stack: what it needs (FLUSHER_STACK) on top of the static
 * TLS of every loaded object, which glibc carves out of the same mapping.
 * glibc takes a size with as little as 2 KiB left once the TLS is out: a
 * program with 248 KiB of __thread data crashed the flusher's first log
 * line when it asked for 256 KiB in all.
 */
#define FLUSHER_STACK	(256 << 10)
static size_t flusher_stack_size(void)
{
	size_t tls = 0;

	dl_iterate_phdr(add_tls_size, &tls);
	return FLUSHER_STACK + ((tls + 4095) & ~(size_t)4095);
}

/*
 * Start the flusher unless it runs.  Its signals are blocked: they are the
 * program's.  errno is kept: this runs inside a write that succeeded.
 */
static void flusher_start(void)
{
	int saved_errno = errno, err;
	sigset_t all, old;
	pthread_attr_t attr;
	pthread_t thread;
	size_t stack;

	if (__atomic_load_n(&fl.started, __ATOMIC_RELAXED))
		return;
	/* Before fl.lock: dl_iterate_phdr() takes the dynamic linker's lock,
	 * which a program's own callback may hold while it writes. */
	stack = flusher_stack_size();
	if (!fl_lock())
		return;
	if (fl.started || fl.failed || __atomic_load_n(&fl.stopping, __ATOMIC_RELAXED)) {
		fl_unlock();
		return;
	}
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, stack);
	err = pthread_create(&thread, &attr, flusher_main, NULL);
	pthread_attr_destroy(&attr);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err == 0) {
		__atomic_store_n(&fl.started, true, __ATOMIC_SEQ_CST);
		pthread_setname_np(thread, "folio-flush");
	} else {
		__atomic_store_n(&fl.failed, true, __ATOMIC_RELAXED);
		log_warn("cannot start the flusher thread (%s): writers write back themselves",
			 strerror(err));
	}
	fl_unlock();
	errno = saved_errno;
}

static void flusher_kick(void)
{
	if (!fl_lock())
		return;
	fl.kicked = true;
	bell_ring();
	fl_unlock();
}

void writeback_writer_opened(void)
{
	__atomic_add_fetch(&fl.writers, 1, __ATOMIC_RELAXED);
}

void writeback_writer_closed(void)
{
	__atomic_sub_fetch(&fl.writers, 1, __ATOMIC_RELAXED);
}

void writeback_dirtied(struct mapping *m)
{
	if (unlikely(!__atomic_load_n(&fl.started, __ATOMIC_SEQ_CST))) {
		if (!__atomic_load_n(&fl.failed, __ATOMIC_RELAXED) &&
		    !__atomic_load_n(&fl.stopping, __ATOMIC_RELAXED))
			flusher_start();
		return;
	}
	if (unlikely(__atomic_load_n(&fl.sleeping, __ATOMIC_SEQ_CST)) &&
	    (__atomic_load_n(&fl.timer_off, __ATOMIC_SEQ_CST) || over_background() ||
	     (__atomic_load_n(&m->streaming, __ATOMIC_RELAXED) &&
	      __atomic_load_n(&m->nr_dirty, __ATOMIC_RELAXED) >= STREAM_BEHIND)))
		flusher_kick();
}

/* No flusher (it could not start, or the process is exiting): write back here. */
static int throttle_alone(void)
{
	int saved_errno = errno;

	if (writeback_all() < 0 && writeback_over_limit())
		return -1;
	errno = saved_errno;
	return 0;
}

int writeback_throttle(void)
{
	unsigned long since;
	int err = 0;

	/*
	 * A signal handler's write that interrupted folio in its thread, or
	 * its thread's read-side section (an fd lookup, a hit: the flusher's
	 * grace periods wait for that section to end), must not wait for
	 * the flusher: the dirty limit bends.
	 */
	if (folio_call_depth > 1 || urcu_bp_read_ongoing())
		return 0;
	flusher_start();
	if (!fl_lock())
		return 0;
	if (!fl.started) {
		fl_unlock();
		return throttle_alone();
	}
	__atomic_store_n(&fl.waiters, fl.waiters + 1, __ATOMIC_RELAXED);
	fl.kicked = true;
	bell_ring();
	since = fl.rounds;
	while (writeback_over_limit() && fl.started) {
		struct timespec ts;

		if (fl.stuck_err && fl.stuck_round > since) {
			err = fl.stuck_err;
			break;
		}
		/* Woken by every batch written and every round; the timeout
		 * only bounds a wait on a flusher stuck in a slow call. */
		deadline_to_timespec(now_ms() + 1000, &ts);
		pthread_cond_clockwait(&fl.progress, &fl.lock, CLOCK_MONOTONIC, &ts);
	}
	__atomic_store_n(&fl.waiters, fl.waiters - 1, __ATOMIC_RELAXED);
	fl_unlock();
	if (err) {
		errno = err;
		return -1;
	}
	return 0;
}

/* ---- Process life ---- */

void writeback_after_fork_child(void)
{
	mappings = NULL;
	nr_dirty_pages = 0;
	share_writers = 0;
	pthread_mutex_init(&mappings_lock, NULL);
	pthread_cond_init(&mapping_unpinned, NULL);
	fl = (struct flusher){ .stuck_err = 0 };
	pthread_mutex_init(&fl.lock, NULL);
	pthread_mutex_init(&fl.busy, NULL);
	pthread_cond_init(&fl.progress, NULL);
	private_bell = 0;
}

/* Dirty bytes of @list (walked under @kio_lock). */
static unsigned long long list_dirty_bytes(struct page *list)
{
	unsigned long long bytes = 0;

	for (; list; list = list->dirty_next)
		if (list->dirty_lo < list->dirty_hi)
			bytes += list->dirty_hi - list->dirty_lo;
	return bytes;
}

void writeback_stop(void)
{
	__atomic_store_n(&fl.stopping, true, __ATOMIC_RELEASE);
	if (fl_lock()) {	/* not: an exit() in a handler that interrupted it */
		fl.started = false;
		bell_ring();
		pthread_cond_broadcast(&fl.progress);
		fl_unlock();
	}
	/* A batch under way ends; no other starts. */
	pthread_mutex_lock(&fl.busy);
	pthread_mutex_unlock(&fl.busy);
}

void writeback_exit(void)
{
	log_debug("dirty peak %lu bytes, limit %llu", stats_dirty_peak() << FOLIO_PAGE_SHIFT,
		  (unsigned long long)folio_config.dirty_limit);
	writeback_report_unwritten("and are lost at exit");
}

void writeback_report_unwritten(const char *when)
{
	pthread_mutex_lock(&mappings_lock);
	for (struct mapping *m = mappings; m; m = m->next) {
		unsigned long long bytes;

		if (!__atomic_load_n(&m->nr_dirty, __ATOMIC_RELAXED))
			continue;
		pthread_rwlock_wrlock(&m->kio_lock);
		bytes = list_dirty_bytes(m->wb_list) +
			list_dirty_bytes(__atomic_load_n(&m->dirty, __ATOMIC_ACQUIRE));
		pthread_rwlock_unlock(&m->kio_lock);
		log_error("%s: %llu bytes could not be written back (%s) %s", m->name, bytes,
			  strerror(__atomic_load_n(&m->wb_errseq, __ATOMIC_RELAXED) & ERRSEQ_ERRNO),
			  when);
	}
	pthread_mutex_unlock(&mappings_lock);
}

void writeback_crash_state(int fd)
{
	unsigned long files = 0;
	char line[512];
	int n;

	/* No lock: the crashing thread may hold any of them.  The list is only
	 * read; a mapping being unlinked at this moment may be missed. */
	for (struct mapping *m = __atomic_load_n(&mappings, __ATOMIC_ACQUIRE); m && files < 64;
	     m = __atomic_load_n(&m->next, __ATOMIC_ACQUIRE), files++) {
		bool bypass = __atomic_load_n(&m->bypass, __ATOMIC_RELAXED);

		n = snprintf(line, sizeof(line), "folio:   %s: size %lld, %lu dirty pages%s\n",
			     m->name, (long long)mapping_size(m),
			     __atomic_load_n(&m->nr_dirty, __ATOMIC_RELAXED),
			     bypass ? ", passed through" : "");
		if (!write_formatted(fd, line, sizeof(line), n))
			return;
	}
	n = snprintf(line, sizeof(line), "folio:   %lu dirty pages in all, limit %llu bytes%s\n",
		     __atomic_load_n(&nr_dirty_pages, __ATOMIC_RELAXED),
		     (unsigned long long)folio_config.dirty_limit,
		     files == 64 ? " (first 64 files shown)" : "");
	write_formatted(fd, line, sizeof(line), n);
}
