/*
 * page.c - see page.h.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>

#include "journal_host.h"
#include "page.h"
#include "real.h"
#include "uaccess.h"

/* Pages reclaimed at once: one grace period is paid for a whole batch. */
#define RECLAIM_BATCH	64

/*
 * Pages faulted in at once when the free list reaches memory never used:
 * from POPULATE_FIRST, doubling up to POPULATE_BATCH.  A short-lived
 * process that writes a few pages does not pay for 2 MiB of shared memory
 * zeroed (0.4 ms measured, make bench short-writer); a streaming one soon
 * populates 2 MiB a call.
 */
#define POPULATE_FIRST	16
#define POPULATE_BATCH	512

static struct {
	struct page *pages;
	unsigned int *seqs;		/* per page: odd while a writer changes it */
	unsigned char *referenced;	/* per page: touched since the hand passed */		/* nr_pages descriptors */
	unsigned char *arena;		/* nr_pages * FOLIO_PAGE_BYTES, in the journal */
	bool shared;			/* arena and descriptors in the journal */
	size_t nr_pages;

	pthread_mutex_t free_lock;	/* protects everything below */
	struct page **free;		/* stack of free pages */
	size_t nr_free;			/* also read without the lock: written atomically */
	size_t hand;			/* the clock hand, a descriptor index */
	size_t populated;		/* pages below this were faulted in by populate_from() */
	size_t populate_batch;		/* pages populate_from() faults in next */
	unsigned long reclaimed;	/* pages the clock hand took, in all; as nr_free */
} store = {
	.free_lock = PTHREAD_MUTEX_INITIALIZER,
};

/*
 * nr_free and reclaimed change under free_lock, but page_alloc(),
 * page_store_used() and page_store_reclaimed() also read them without it
 * (a hint, or from a signal handler): their stores are relaxed atomics, so
 * such a read sees an old or a new value, never a torn one (and is no data
 * race for the compiler or ThreadSanitizer).  Under free_lock.
 */
static inline void free_push(struct page *page)
{
	store.free[store.nr_free] = page;
	__atomic_store_n(&store.nr_free, store.nr_free + 1, __ATOMIC_RELAXED);
}

static inline struct page *free_pop(void)
{
	__atomic_store_n(&store.nr_free, store.nr_free - 1, __ATOMIC_RELAXED);
	return store.free[store.nr_free];
}

static void *map_anonymous(size_t bytes)
{
	void *p = real_mmap_own(NULL, bytes, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	/*
	 * No MADV_HUGEPAGE: huge pages made hits ~20% faster before the data
	 * prefetch was added (2026-11-25), but each first touch then zeroes 2 MiB of
	 * memory the machine may never have touched, and that dominated every
	 * run that fills a fresh cache: cold sequential reads 250 MB/s with
	 * huge pages, ~1000 MB/s without, hits unchanged (make bench,
	 * 2026-11-26).
	 */
	return p == MAP_FAILED ? NULL : p;
}

int page_store_init(size_t bytes)
{
	size_t nr = bytes / FOLIO_PAGE_BYTES;

	if (nr < 16)
		nr = 16;
	store.nr_pages = nr;
	/*
	 * In the journal's shared memory, so that a guardian can write dirty
	 * pages back after the process is gone (journal.h).  Without huge
	 * pages, as before (see map_anonymous()).
	 */
	if (journal_create(nr, sizeof(struct page)) == 0) {
		store.shared = true;
		store.arena = journal.arena;
		store.pages = journal.pages;
	} else {	/* no guardian then */
		store.arena = map_anonymous(nr * FOLIO_PAGE_BYTES);
		store.pages = map_anonymous(nr * sizeof(struct page));
	}
	store.free = map_anonymous(nr * sizeof(struct page *));
	store.seqs = map_anonymous(nr * sizeof(*store.seqs));
	store.referenced = map_anonymous(nr);
	if (!store.arena || !store.pages || !store.free || !store.seqs || !store.referenced) {
		page_store_destroy();
		errno = ENOMEM;
		return -1;
	}
	for (size_t i = 0; i < nr; i++) {
		struct page *page = &store.pages[i];

		page->data = store.arena + i * FOLIO_PAGE_BYTES;
		pthread_mutex_init(&page->lock, NULL);
		store.free[nr - 1 - i] = page;
	}
	store.nr_free = nr;
	store.hand = 0;
	store.populated = 0;
	store.populate_batch = POPULATE_FIRST;
	return 0;
}

/* Give back the arena and the arrays. */
/* Pages freed while free_lock was taken further up the same thread (see
 * free_lock_take()), linked by dirty_next: a free page is clean. */
static struct page *returned;

static void unmap_store(bool forget_journal)
{
	if (!store.shared) {
		if (store.arena)
			real_munmap_own(store.arena, store.nr_pages * FOLIO_PAGE_BYTES);
		if (store.pages)
			real_munmap_own(store.pages, store.nr_pages * sizeof(struct page));
	}
	if (forget_journal)
		journal_forget();	/* a fork child has no copy of it */
	else
		journal_destroy();
	if (store.free)
		real_munmap_own(store.free, store.nr_pages * sizeof(struct page *));
	if (store.seqs)
		real_munmap_own(store.seqs, store.nr_pages * sizeof(*store.seqs));
	if (store.referenced)
		real_munmap_own(store.referenced, store.nr_pages);
	store.seqs = NULL;
	store.referenced = NULL;
	store.arena = NULL;
	store.shared = false;
	store.pages = NULL;
	store.free = NULL;
	store.nr_pages = store.nr_free = 0;
	returned = NULL;
}

void page_store_destroy(void)
{
	for (size_t i = 0; store.pages && i < store.nr_pages; i++)	/* empty the slots pointing here */
		if (store.pages[i].flags & PAGE_INDEXED)
			__atomic_store_n(store.pages[i].slot, NULL, __ATOMIC_RELEASE);
	folio_defer_flush();	/* deferred frees into the store have run */
	unmap_store(false);
}

void page_store_forget(void)
{
	unmap_store(true);
	pthread_mutex_init(&store.free_lock, NULL);
}

bool page_store_ready(void)
{
	return store.arena != NULL;
}

bool page_store_holds(const void *addr)
{
	uintptr_t start = (uintptr_t)store.arena;

	return start && (uintptr_t)addr - start < store.nr_pages * FOLIO_PAGE_BYTES;
}

#ifdef FOLIO_TEST_FAULTS
void page_store_test_protect(void)
{
	if (store.arena)
		mprotect(store.arena, store.nr_pages * FOLIO_PAGE_BYTES, PROT_READ);
}
#endif

size_t page_store_capacity(void)
{
	return store.nr_pages;
}

/*
 * A signal handler doing I/O on a tracked file may interrupt its thread
 * while it holds free_lock: the handler must not wait for it.  Set before
 * the lock is taken and cleared after it is released; a handler that finds
 * it set gets no page from page_alloc() (its caller goes to the kernel
 * directly) and leaves what it frees on @returned, a lock-free stack the
 * next holder of the lock empties.
 */
static __thread bool free_lock_here __attribute__((tls_model("initial-exec")));

static bool free_lock_take(void)
{
	struct page *page;

	if (free_lock_here)
		return false;
	free_lock_here = true;
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	pthread_mutex_lock(&store.free_lock);
	for (page = __atomic_exchange_n(&returned, NULL, __ATOMIC_ACQUIRE); page;) {
		struct page *next = page->dirty_next;

		free_push(page);
		page = next;
	}
	return true;
}

static void free_lock_drop(void)
{
	pthread_mutex_unlock(&store.free_lock);
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	free_lock_here = false;
}

unsigned long page_store_reclaimed(void)
{
	unsigned long n;

	if (!free_lock_take())
		return __atomic_load_n(&store.reclaimed, __ATOMIC_RELAXED);
	n = store.reclaimed;
	free_lock_drop();
	return n;
}

size_t page_store_used(void)
{
	size_t used;

	if (!free_lock_take())
		return store.nr_pages - __atomic_load_n(&store.nr_free, __ATOMIC_RELAXED);
	used = store.nr_pages - store.nr_free;
	free_lock_drop();
	return used;
}

/* @page's place in the arena, and so its data, count and bit: no load of @page. */
static inline size_t nr_of(const struct page *page)
{
	return page - store.pages;
}

static inline unsigned char *data_of(const struct page *page)
{
	return store.arena + (nr_of(page) << FOLIO_PAGE_SHIFT);
}

size_t page_copy_out(struct page *page, size_t off, size_t len, void *dst)
{
	size_t nr = nr_of(page), left;
	const unsigned char *src = data_of(page) + off;
	unsigned int seq, *seqp = &store.seqs[nr];

	/*
	 * On a large working set both the descriptor and the data miss the
	 * cache: start the data on its way before the sequence count's load,
	 * so the two misses overlap (measured: make bench, tiny-pread).
	 */
	__builtin_prefetch(src);
	for (;;) {
		seq = __atomic_load_n(seqp, __ATOMIC_ACQUIRE);
		if (seq & 1) {
			caa_cpu_relax();
			continue;
		}
		/* Racy by design, and unseen by ThreadSanitizer: the copy is
		 * in assembly (uaccess.c), and one that overlapped a write is
		 * thrown away below. */
		left = uaccess_copy_to(dst, src, len);
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		if (__atomic_load_n(seqp, __ATOMIC_RELAXED) == seq)
			break;
	}
	if (!__atomic_load_n(&store.referenced[nr], __ATOMIC_RELAXED))
		__atomic_store_n(&store.referenced[nr], 1, __ATOMIC_RELAXED);
	return len - left;
}

void page_write_begin(struct page *page)
{
	unsigned int *seqp = &store.seqs[nr_of(page)];

	pthread_mutex_lock(&page->lock);
	__atomic_store_n(seqp, *seqp + 1, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_RELEASE);	/* odd count before new data */
}

void page_write_end(struct page *page)
{
	unsigned int *seqp = &store.seqs[nr_of(page)];

	__atomic_store_n(seqp, *seqp + 1, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&page->lock);
}

/* Take @page out of its slot, unless something else did.  Under its lock. */
static bool unslot(struct page *page)
{
	void *expected = page;

	return __atomic_compare_exchange_n(page->slot, &expected, NULL, false, __ATOMIC_RELEASE,
					   __ATOMIC_RELAXED);
}

/* Signals a fault raises: never blocked, or a fault would kill at once. */
static const int synchronous_signals[] = { SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP,
						   SIGSYS };

/*
 * Advance the clock hand over the arena and take up to RECLAIM_BATCH clean,
 * unlocked, unreferenced pages out of their slots (a referenced one loses its
 * mark and gets another turn).  Then wait one grace period, after which no
 * reader can still be copying from them, and free them.  Under free_lock.
 *
 * The hand holds page locks, one at a time, with signals blocked: a signal
 * handler of this thread that writes or writes back the page would wait for
 * a lock its own frozen thread holds (seen: cachecheck sigalloc).  Two
 * system calls per batch of up to RECLAIM_BATCH pages.
 */
static void reclaim_locked(void)
{
	struct page *victims[RECLAIM_BATCH];
	sigset_t all, saved;
	size_t nr = 0;

	sigfillset(&all);
	for (size_t i = 0; i < ARRAY_SIZE(synchronous_signals); i++)
		sigdelset(&all, synchronous_signals[i]);
	pthread_sigmask(SIG_BLOCK, &all, &saved);
	for (size_t scanned = 0; scanned < 2 * store.nr_pages && nr < RECLAIM_BATCH; scanned++) {
		struct page *page = &store.pages[store.hand];

		store.hand = (store.hand + 1) % store.nr_pages;
		if (!(__atomic_load_n(&page->flags, __ATOMIC_RELAXED) & PAGE_INDEXED))
			continue;
		if (__atomic_load_n(&store.referenced[nr_of(page)], __ATOMIC_RELAXED)) {
			__atomic_store_n(&store.referenced[nr_of(page)], 0, __ATOMIC_RELAXED);
			continue;
		}
		if (pthread_mutex_trylock(&page->lock))
			continue;
		/* A read-side section: an owner that removes its pages and goes
		 * away meanwhile is freed only after it, @evictions with it. */
		urcu_bp_read_lock();
		if (page->flags == PAGE_INDEXED && unslot(page)) {	/* indexed, clean */
			__atomic_store_n(&page->flags, 0, __ATOMIC_RELAXED);
			if (page->evictions)
				__atomic_add_fetch(page->evictions, 1, __ATOMIC_RELAXED);
			victims[nr++] = page;
		}
		urcu_bp_read_unlock();
		pthread_mutex_unlock(&page->lock);
	}
	pthread_sigmask(SIG_SETMASK, &saved, NULL);
	if (!nr)
		return;
	urcu_bp_synchronize_rcu();
	for (size_t i = 0; i < nr; i++)
		free_push(victims[i]);
	__atomic_store_n(&store.reclaimed, store.reclaimed + nr, __ATOMIC_RELAXED);
}


/*
 * Page @nr is about to be used for the first time: fault in a batch of
 * arena memory from it at once.  One call instead of a fault per page (the
 * free list hands out never-used pages in arena order).  Under free_lock.
 */
static void populate_from(size_t nr)
{
	size_t batch = store.populate_batch,
	       n = store.nr_pages - nr < batch ? store.nr_pages - nr : batch;
	int saved_errno = errno;

	madvise(store.arena + (nr << FOLIO_PAGE_SHIFT), n << FOLIO_PAGE_SHIFT,
		MADV_POPULATE_WRITE);	/* only faster: failure changes nothing */
	store.populated = nr + n;
	if (batch < POPULATE_BATCH)
		store.populate_batch = 2 * batch;
	errno = saved_errno;
}

struct page *page_alloc(void)
{
	struct page *page = NULL;

	/* Pages removed inside read-side sections wait on the deferred list:
	 * give them back first (outside the free list's lock, which they take). */
	if (!__atomic_load_n(&store.nr_free, __ATOMIC_RELAXED))
		folio_defer_flush();
	if (!free_lock_take())
		return NULL;
	/* Not when called in a signal handler that interrupted a read-side
	 * section of this thread: the grace period would wait for it. */
	if (!store.nr_free && !urcu_bp_read_ongoing())
		reclaim_locked();
	if (store.nr_free)
		page = free_pop();
	if (page && nr_of(page) >= store.populated)
		populate_from(nr_of(page));
	free_lock_drop();
	return page;
}

void page_free(struct page *page)
{
	if (!free_lock_take()) {
		page->dirty_next = __atomic_load_n(&returned, __ATOMIC_RELAXED);
		while (!__atomic_compare_exchange_n(&returned, &page->dirty_next, page, true,
						    __ATOMIC_RELEASE, __ATOMIC_RELAXED))
			;
		return;
	}
	free_push(page);
	free_lock_drop();
}

static void page_free_deferred(struct folio_deferred *d)
{
	page_free(caa_container_of(d, struct page, free_later));
}

struct page *page_insert(struct page *page, void **slot, uint64_t owner, uint64_t index,
			 unsigned int flags, uint64_t *evictions)
{
	void *winner = NULL;

	/*
	 * Under the page lock, and marked indexed only once it is: the clock
	 * hand must never take a page that is still being added.
	 */
	pthread_mutex_lock(&page->lock);
	page->owner = owner;
	page->index = index;
	page->slot = slot;
	/* Clean since it was freed, so the journal may see a new identity
	 * before its ranges (journal.h). */
	page->evictions = evictions;
	/* The clock hand reads it without the page lock (relaxed: a hint). */
	__atomic_store_n(&store.referenced[nr_of(page)], 1, __ATOMIC_RELAXED);
	if (__atomic_compare_exchange_n(slot, &winner, page, false, __ATOMIC_RELEASE,
					__ATOMIC_ACQUIRE)) {
		__atomic_store_n(&page->flags, PAGE_INDEXED | flags, __ATOMIC_RELEASE);
		page_journal(page);
		pthread_mutex_unlock(&page->lock);
		return page;
	}
	pthread_mutex_unlock(&page->lock);
	/*
	 * Never visible, but not freed here: page_free() takes the free-list
	 * lock, which reclaim holds while it waits for this read-side section.
	 */
	folio_defer(&page->free_later, page_free_deferred);
	return winner;
}

bool page_remove(struct page *page)
{
	if (!(page->flags & PAGE_INDEXED) || !unslot(page))
		return false;
	__atomic_store_n(&page->flags, 0, __ATOMIC_RELAXED);
	page_journal(page);	/* no longer the file's data */
	folio_defer(&page->free_later, page_free_deferred);
	return true;
}
