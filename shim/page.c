/*
 * page.c - see page.h.
 */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#include "page.h"
#include "real.h"

/* Pages reclaimed at once: one grace period is paid for a whole batch. */
#define RECLAIM_BATCH	64

static struct {
	struct cds_lfht *hash;
	struct page *pages;		/* nr_pages descriptors */
	unsigned char *arena;		/* nr_pages * FOLIO_PAGE_BYTES */
	size_t nr_pages;

	pthread_mutex_t free_lock;	/* protects everything below */
	struct page **free;		/* stack of free pages */
	size_t nr_free;
	size_t hand;			/* the clock hand, a descriptor index */
	unsigned long reclaimed;	/* pages the clock hand took, in all */
} store = {
	.free_lock = PTHREAD_MUTEX_INITIALIZER,
};

struct page_key {
	uint64_t owner;
	uint64_t index;
};

static unsigned long page_hash(uint64_t owner, uint64_t index)
{
	uint64_t h = owner * 0x9E3779B97F4A7C15ull;

	h ^= (index + 0x632BE59BD9B4E019ull) * 0xC2B2AE3D27D4EB4Full;
	return h ^ (h >> 31);
}

static int page_match(struct cds_lfht_node *node, const void *key)
{
	const struct page *page = caa_container_of(node, struct page, node);
	const struct page_key *k = key;

	return page->owner == k->owner && page->index == k->index;
}

static void *map_anonymous(size_t bytes)
{
	void *p = real_mmap(NULL, bytes, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	/*
	 * Hits on a large cache are bound by memory latency, TLB misses
	 * included: huge pages made them ~20% faster on a 64 MiB working set
	 * (make bench-pagehit).
	 */
	madvise(p, bytes, MADV_HUGEPAGE);
	return p;
}

int page_store_init(size_t bytes)
{
	size_t nr = bytes / FOLIO_PAGE_BYTES, buckets = 1;

	if (nr < 16)
		nr = 16;
	while (buckets < nr)
		buckets <<= 1;
	store.nr_pages = nr;
	store.arena = map_anonymous(nr * FOLIO_PAGE_BYTES);
	store.pages = map_anonymous(nr * sizeof(struct page));
	store.free = map_anonymous(nr * sizeof(struct page *));
	/*
	 * liburcu asserts (aborts the process) when it cannot map a bucket
	 * table: see first that the memory is there.
	 */
	if (store.arena && store.pages && store.free) {
		void *probe = map_anonymous(buckets * sizeof(struct cds_lfht_node));

		if (probe) {
			real_munmap(probe, buckets * sizeof(struct cds_lfht_node));
			store.hash = cds_lfht_new_flavor(buckets, buckets, buckets, 0,
							 &urcu_bp_flavor, NULL);
		}
	}
	if (!store.arena || !store.pages || !store.free || !store.hash) {
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
	return 0;
}

/* Give back the arena and the arrays; forget the hash. */
static void unmap_store(void)
{
	if (store.arena)
		real_munmap(store.arena, store.nr_pages * FOLIO_PAGE_BYTES);
	if (store.pages)
		real_munmap(store.pages, store.nr_pages * sizeof(struct page));
	if (store.free)
		real_munmap(store.free, store.nr_pages * sizeof(struct page *));
	store.hash = NULL;
	store.arena = NULL;
	store.pages = NULL;
	store.free = NULL;
	store.nr_pages = store.nr_free = 0;
}

void page_store_destroy(void)
{
	if (store.hash) {
		struct cds_lfht_iter iter;
		struct page *page;

		urcu_bp_read_lock();
		cds_lfht_for_each_entry(store.hash, &iter, page, node)
			cds_lfht_del(store.hash, &page->node);
		urcu_bp_read_unlock();
		folio_defer_flush();	/* deferred frees into the store have run */
		cds_lfht_destroy(store.hash, NULL);
	}
	unmap_store();
}

void page_store_forget(void)
{
	unmap_store();		/* the hash is left behind: small */
	pthread_mutex_init(&store.free_lock, NULL);
}

bool page_store_ready(void)
{
	return store.hash != NULL;
}

size_t page_store_capacity(void)
{
	return store.nr_pages;
}

unsigned long page_store_reclaimed(void)
{
	unsigned long n;

	pthread_mutex_lock(&store.free_lock);
	n = store.reclaimed;
	pthread_mutex_unlock(&store.free_lock);
	return n;
}

size_t page_store_used(void)
{
	size_t used;

	pthread_mutex_lock(&store.free_lock);
	used = store.nr_pages - store.nr_free;
	pthread_mutex_unlock(&store.free_lock);
	return used;
}

struct page *page_find(uint64_t owner, uint64_t index)
{
	struct page_key key = { owner, index };
	struct cds_lfht_iter iter;
	struct cds_lfht_node *node;

	cds_lfht_lookup(store.hash, page_hash(owner, index), page_match, &key, &iter);
	node = cds_lfht_iter_get_node(&iter);
	return node ? caa_container_of(node, struct page, node) : NULL;
}

void page_copy_out(struct page *page, size_t off, size_t len, void *dst)
{
	unsigned int seq;

	for (;;) {
		seq = __atomic_load_n(&page->seq, __ATOMIC_ACQUIRE);
		if (seq & 1) {
			caa_cpu_relax();
			continue;
		}
		memcpy(dst, page->data + off, len);
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		if (__atomic_load_n(&page->seq, __ATOMIC_RELAXED) == seq)
			break;
	}
	if (!__atomic_load_n(&page->referenced, __ATOMIC_RELAXED))
		__atomic_store_n(&page->referenced, 1, __ATOMIC_RELAXED);
}

void page_write_begin(struct page *page)
{
	pthread_mutex_lock(&page->lock);
	__atomic_store_n(&page->seq, page->seq + 1, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_RELEASE);	/* odd count before new data */
}

void page_write_end(struct page *page)
{
	__atomic_store_n(&page->seq, page->seq + 1, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&page->lock);
}

/*
 * Advance the clock hand over the arena and take up to RECLAIM_BATCH clean,
 * unlocked, unreferenced pages out of the hash (a referenced one loses its
 * mark and gets another turn).  Then wait one grace period, after which no
 * reader can still be copying from them, and free them.  Under free_lock.
 */
static void reclaim_locked(void)
{
	struct page *victims[RECLAIM_BATCH];
	size_t nr = 0;

	for (size_t scanned = 0; scanned < 2 * store.nr_pages && nr < RECLAIM_BATCH; scanned++) {
		struct page *page = &store.pages[store.hand];

		store.hand = (store.hand + 1) % store.nr_pages;
		if (!(__atomic_load_n(&page->flags, __ATOMIC_RELAXED) & PAGE_HASHED))
			continue;
		if (__atomic_load_n(&page->referenced, __ATOMIC_RELAXED)) {
			__atomic_store_n(&page->referenced, 0, __ATOMIC_RELAXED);
			continue;
		}
		if (pthread_mutex_trylock(&page->lock))
			continue;
		if (page->flags == PAGE_HASHED) {	/* hashed, clean */
			urcu_bp_read_lock();
			if (cds_lfht_del(store.hash, &page->node) == 0) {
				__atomic_store_n(&page->flags, 0, __ATOMIC_RELAXED);
				victims[nr++] = page;
			}
			urcu_bp_read_unlock();
		}
		pthread_mutex_unlock(&page->lock);
	}
	if (!nr)
		return;
	urcu_bp_synchronize_rcu();
	for (size_t i = 0; i < nr; i++)
		store.free[store.nr_free++] = victims[i];
	store.reclaimed += nr;
}

struct page *page_alloc(void)
{
	struct page *page = NULL;

	/* Pages removed inside read-side sections wait on the deferred list:
	 * give them back first (outside the free list's lock, which they take). */
	if (!__atomic_load_n(&store.nr_free, __ATOMIC_RELAXED))
		folio_defer_flush();
	pthread_mutex_lock(&store.free_lock);
	if (!store.nr_free)
		reclaim_locked();
	if (store.nr_free)
		page = store.free[--store.nr_free];
	pthread_mutex_unlock(&store.free_lock);
	return page;
}

void page_free(struct page *page)
{
	pthread_mutex_lock(&store.free_lock);
	store.free[store.nr_free++] = page;
	pthread_mutex_unlock(&store.free_lock);
}

static void page_free_deferred(struct folio_deferred *d)
{
	page_free(caa_container_of(d, struct page, free_later));
}

struct page *page_insert(struct page *page, uint64_t owner, uint64_t index, unsigned int flags)
{
	struct page_key key = { owner, index };
	struct cds_lfht_node *node;

	/*
	 * Under the page lock, and marked hashed only once it is: the clock
	 * hand must never take a page that is still being added.
	 */
	pthread_mutex_lock(&page->lock);
	page->owner = owner;
	page->index = index;
	page->referenced = 1;
	node = cds_lfht_add_unique(store.hash, page_hash(owner, index), page_match, &key,
				   &page->node);
	if (node == &page->node) {
		__atomic_store_n(&page->flags, PAGE_HASHED | flags, __ATOMIC_RELEASE);
		pthread_mutex_unlock(&page->lock);
		return page;
	}
	pthread_mutex_unlock(&page->lock);
	/*
	 * Never visible, but not freed here: page_free() takes the free-list
	 * lock, which reclaim holds while it waits for this read-side section.
	 */
	folio_defer(&page->free_later, page_free_deferred);
	return caa_container_of(node, struct page, node);
}

bool page_remove(struct page *page)
{
	if (!(page->flags & PAGE_HASHED) || cds_lfht_del(store.hash, &page->node))
		return false;
	__atomic_store_n(&page->flags, 0, __ATOMIC_RELAXED);
	folio_defer(&page->free_later, page_free_deferred);
	return true;
}

void page_for_each_of(uint64_t owner, void (*fn)(struct page *page, void *arg), void *arg)
{
	struct cds_lfht_iter iter;
	struct page *page;

	urcu_bp_read_lock();
	cds_lfht_for_each_entry(store.hash, &iter, page, node)
		if (page->owner == owner)
			fn(page, arg);
	urcu_bp_read_unlock();
}
