/*
 * writeback.c - dirty pages back to the kernel (DESIGN.md §2.5).
 *
 * Owns each mapping's dirty list, the list of all mappings, the count of
 * dirty pages, and the writing of dirty pages: in file order, the dirty
 * bytes of contiguous pages coalesced into one pwritev(), clipped to the
 * logical size.  For now write-back runs at the sync points only (fsync,
 * close, sync, fork, exec, exit, an unlock, a writer short of pages or over
 * the dirty limit); the background flusher is the next step.
 *
 * A page being written has PAGE_WRITEBACK instead of PAGE_DIRTY: a writer
 * that changes it meanwhile dirties it again (it is written again later),
 * the clock hand leaves it alone, and a failed write makes it dirty again.
 *
 * Calls page, config, log and real; called by cache.
 */
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>

#include "config.h"
#include "log.h"
#include "mapping.h"
#include "real.h"
#include "writeback.h"

static pthread_mutex_t mappings_lock = PTHREAD_MUTEX_INITIALIZER;
static struct mapping *mappings;
/* Dirty pages of all mappings: changes on clean/dirty transitions only. */
static unsigned long nr_dirty_pages;

bool writeback_over_limit(void)
{
	return __atomic_load_n(&nr_dirty_pages, __ATOMIC_RELAXED) >
	       folio_config.dirty_limit >> FOLIO_PAGE_SHIFT;
}

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
	if (m->prev)
		m->prev->next = m->next;
	else
		mappings = m->next;
	if (m->next)
		m->next->prev = m->prev;
	pthread_mutex_unlock(&mappings_lock);
}

void writeback_forget_all(void)
{
	mappings = NULL;
	nr_dirty_pages = 0;
	pthread_mutex_init(&mappings_lock, NULL);
}

static void dirty_push(struct mapping *m, struct page *page)
{
	page->dirty_next = __atomic_load_n(&m->dirty, __ATOMIC_RELAXED);
	while (!__atomic_compare_exchange_n(&m->dirty, &page->dirty_next, page, true,
					    __ATOMIC_RELEASE, __ATOMIC_RELAXED))
		;
}

void mapping_account_dirty(struct mapping *m, struct page *page)
{
	__atomic_add_fetch(&m->nr_dirty, 1, __ATOMIC_RELAXED);
	__atomic_add_fetch(&nr_dirty_pages, 1, __ATOMIC_RELAXED);
	dirty_push(m, page);
}

static void account_clean(struct mapping *m)
{
	__atomic_sub_fetch(&m->nr_dirty, 1, __ATOMIC_RELAXED);
	__atomic_sub_fetch(&nr_dirty_pages, 1, __ATOMIC_RELAXED);
}

/* Merge sort of a detached dirty list by page index (stable, no memory). */
static struct page *sort_by_index(struct page *list)
{
	struct page *a = NULL, *b = NULL, *head = NULL, **tail = &head;

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
	a = sort_by_index(a);
	b = sort_by_index(b);
	while (a && b) {
		struct page **take = a->index <= b->index ? &a : &b;

		*tail = *take;
		tail = &(*take)->dirty_next;
		*take = (*take)->dirty_next;
	}
	*tail = a ? a : b;
	return head;
}

/*
 * Bytes [@lo, @hi) of @page were not written: dirty again (joined with what
 * a writer dirtied meanwhile).
 */
static void redirty(struct mapping *m, struct page *page, size_t lo, size_t hi)
{
	pthread_mutex_lock(&page->lock);
	page->flags &= ~PAGE_WRITEBACK;
	if (page->flags & PAGE_INDEXED) {
		if (!(page->flags & PAGE_DIRTY)) {
			page->flags |= PAGE_DIRTY;
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
	if (drop && page->flags == PAGE_INDEXED) {
		urcu_bp_read_lock();
		page_remove(page);
		urcu_bp_read_unlock();
	}
	pthread_mutex_unlock(&page->lock);
}

/*
 * Write @cnt iovecs at @off, going on after short writes.  Returns the bytes
 * written; *@err is 0 or the errno of the failure that stopped it.
 */
static size_t pwritev_all(int fd, struct iovec *iov, int cnt, off_t off, int *err)
{
	size_t total = 0;

	*err = 0;
	while (cnt > 0) {
		ssize_t n = real_pwritev64(fd, iov, cnt, off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			*err = n < 0 ? errno : EIO;
			break;
		}
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
 * Take the run at the head of *@list whose dirty bytes are contiguous in the
 * file (a page joins the run only if the previous one is dirty to its end
 * and it is dirty from its start; at most WB_BATCH pages), moving each from
 * dirty to writeback.  Fills m->wb_run, m->wb_iov and m->wb_piece; sets
 * *@start to the file offset of the first byte.  Returns how many.
 */
static int take_run(struct mapping *m, struct page **list, off_t size, off_t *start)
{
	struct page **run = m->wb_run;
	struct iovec *iov = m->wb_iov;
	int n = 0;

	while (*list && n < WB_BATCH) {
		struct page *page = *list;
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
		*list = page->dirty_next;	/* read while still dirty: then nobody pushes it */
		__atomic_store_n(&page->flags, (page->flags & ~PAGE_DIRTY) | PAGE_WRITEBACK,
				 __ATOMIC_RELAXED);
		page->dirty_lo = DIRTY_NONE_LO;
		page->dirty_hi = DIRTY_NONE_HI;
		pthread_mutex_unlock(&page->lock);
		account_clean(m);
		if (page_start >= size) {	/* not part of the file (yet): keep it dirty */
			redirty(m, page, lo, hi);
			continue;
		}
		end = size - page_start < (off_t)hi ? (size_t)(size - page_start) : hi;
		if (lo >= end) {		/* nothing left inside the file */
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

static int writeback_locked(struct mapping *m, bool drop)
{
	struct page *list, **run = m->wb_run;
	off_t size = mapping_size(m);	/* stable: the caller holds the lock */
	bool wrote_any = false;
	int err = 0;

	/*
	 * Even with nothing dirty: another thread may be writing pages back
	 * (it took them off the list); wait for it, as fsync() must.
	 */
	pthread_rwlock_wrlock(&m->kio_lock);
	list = sort_by_index(__atomic_exchange_n(&m->dirty, NULL, __ATOMIC_ACQUIRE));
	while (list && !err) {
		off_t start = 0;
		int n = take_run(m, &list, size, &start);
		size_t written, end;

		if (!n)
			continue;
		written = m->kfd < 0 ? (err = EBADF, 0) :
			  pwritev_all(m->kfd, m->wb_iov, n, start, &err);
		/* Before any page can be reclaimed: a miss must find this. */
		if (written) {
			mapping_kernel_extends(m, start + written);
			wrote_any = true;
		}
		for (int i = 0; i < n; i++) {
			/* Where page i ends in the run (pwritev_all() shortened iov[]). */
			off_t page_end = ((off_t)run[i]->index << FOLIO_PAGE_SHIFT) +
					 m->wb_piece[i].hi;

			end = (page_end > size ? size : page_end) - start;
			if (end <= written)
				writeback_done(run[i], drop);
			else
				redirty(m, run[i], m->wb_piece[i].lo, m->wb_piece[i].hi);
		}
	}
	if (wrote_any) {		/* this change of the file is folio's own */
		struct stat st;

		if (m->kfd >= 0 && real_fstat(m->kfd, &st) == 0)
			mapping_note_kernel(m, &st.st_ctim);
	}
	while (list) {			/* after an error: still dirty, back on the list */
		struct page *next = list->dirty_next;

		dirty_push(m, list);
		list = next;
	}
	pthread_rwlock_unlock(&m->kio_lock);
	if (drop)		/* the dropped pages back on the free list, on top */
		folio_defer_flush();
	if (err) {
		log_debug("write-back of %s failed: %s", m->name, strerror(err));
		__atomic_store_n(&m->wb_err, err, __ATOMIC_RELAXED);
		errno = err;
		return -1;
	}
	return 0;
}

int mapping_writeback_locked(struct mapping *m)
{
	return writeback_locked(m, false);
}

int mapping_writeback_behind(struct mapping *m)
{
	return writeback_locked(m, true);
}

int mapping_writeback(struct mapping *m)
{
	int ret;

	pthread_rwlock_rdlock(&m->lock);
	ret = mapping_writeback_locked(m);
	pthread_rwlock_unlock(&m->lock);
	return ret;
}

void mapping_forget_dirty_from(struct mapping *m, uint64_t first)
{
	struct page *list = __atomic_exchange_n(&m->dirty, NULL, __ATOMIC_ACQUIRE);

	while (list) {
		struct page *next = list->dirty_next;

		if (list->index >= first)
			account_clean(m);
		else
			dirty_push(m, list);
		list = next;
	}
}

int writeback_all(void)
{
	int err = 0;

	pthread_mutex_lock(&mappings_lock);
	for (struct mapping *m = mappings; m; m = m->next)
		if (!__atomic_load_n(&m->bypass, __ATOMIC_RELAXED) && mapping_writeback(m) < 0 && !err)
			err = errno;
	pthread_mutex_unlock(&mappings_lock);
	if (err) {
		errno = err;
		return -1;
	}
	return 0;
}
