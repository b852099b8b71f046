/*
 * Unit tests for the page store (shim/page.c) with the per-file index the
 * cache uses (shim/ptree.c): lookups, add-unique races,
 * reclaim that spares dirty pages, untorn copies under rewriting writers,
 * and lookups, inserts, removals and reclaim racing in threads with every
 * byte served checked.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <string.h>

#include "page.h"
#include "ptree.h"

static const uint64_t owner_a = 1, owner_b = 2;
static struct ptree tree_a, tree_b;	/* the two owners' indexes */

static void setup(size_t pages)
{
	cr_assert_eq(page_store_init(pages * FOLIO_PAGE_BYTES), 0);
	cr_assert_eq(page_store_capacity(), pages);
	ptree_init(&tree_a);
	ptree_init(&tree_b);
}

static void teardown(void)
{
	page_store_destroy();
	ptree_destroy(&tree_a);
	ptree_destroy(&tree_b);
}

static struct ptree *tree_of(uint64_t owner)
{
	return owner == owner_a ? &tree_a : &tree_b;
}

/* The page of @owner at @index, or NULL.  Inside urcu_bp_read_lock(). */
static struct page *find(uint64_t owner, uint64_t index)
{
	return ptree_lookup(tree_of(owner), index);
}

/* page_insert() into @owner's index.  Inside urcu_bp_read_lock(). */
static struct page *insert(struct page *page, uint64_t owner, uint64_t index)
{
	void **slot = ptree_slot(tree_of(owner), index);

	cr_assert_not_null(slot);
	return page_insert(page, slot, owner, index, 0, NULL);
}

/* Page contents that name their owner and index in every byte. */
static unsigned char pattern(uint64_t owner, uint64_t index, size_t i)
{
	return (unsigned char)(owner * 7 + index * 13 + i);
}

static void fill(struct page *page, uint64_t owner, uint64_t index)
{
	for (size_t i = 0; i < FOLIO_PAGE_BYTES; i++)
		page->data[i] = pattern(owner, index, i);
}

static struct page *add(uint64_t owner, uint64_t index)
{
	struct page *page = page_alloc(), *got;

	cr_assert_not_null(page);
	fill(page, owner, index);
	urcu_bp_read_lock();
	got = insert(page, owner, index);
	urcu_bp_read_unlock();
	return got;
}

Test(page, find_copy_remove, .fini = teardown)
{
	unsigned char buf[FOLIO_PAGE_BYTES];
	struct page *page;

	setup(64);
	page = add(owner_a, 5);
	cr_expect_eq(page_store_used(), 1);
	urcu_bp_read_lock();
	cr_expect_eq(find(owner_a, 5), page);
	cr_expect_null(find(owner_a, 6));
	cr_expect_null(find(owner_b, 5));
	page_copy_out(page, 100, 200, buf);
	urcu_bp_read_unlock();
	for (size_t i = 0; i < 200; i++)
		cr_assert_eq(buf[i], pattern(owner_a, 5, 100 + i));
	pthread_mutex_lock(&page->lock);
	urcu_bp_read_lock();
	cr_expect(page_remove(page));
	cr_expect_not(page_remove(page), "removed twice");
	cr_expect_null(find(owner_a, 5));
	urcu_bp_read_unlock();
	pthread_mutex_unlock(&page->lock);
	folio_defer_flush();		/* the removed page went back to the free list */
	cr_expect_eq(page_store_used(), 0);
}

#define RACERS 4
static struct page *race_result[RACERS];

static void *insert_same(void *arg)
{
	long id = (long)arg;
	struct page *page = page_alloc();

	memset(page->data, (int)id, FOLIO_PAGE_BYTES);
	urcu_bp_read_lock();
	race_result[id] = insert(page, owner_a, 42);
	urcu_bp_read_unlock();
	return NULL;
}

Test(page, add_unique_has_one_winner, .fini = teardown)
{
	pthread_t threads[RACERS];

	setup(64);
	for (long i = 0; i < RACERS; i++)
		cr_assert_eq(pthread_create(&threads[i], NULL, insert_same, (void *)i), 0);
	for (int i = 0; i < RACERS; i++)
		pthread_join(threads[i], NULL);
	for (int i = 1; i < RACERS; i++)
		cr_expect_eq(race_result[i], race_result[0], "two pages for one key");
	folio_defer_flush();		/* losers are freed after a grace period */
	cr_expect_eq(page_store_used(), 1, "the losers' pages were not freed");
}

Test(page, reclaim_spares_dirty_pages, .fini = teardown)
{
	struct page *dirty[8];
	unsigned char buf[FOLIO_PAGE_BYTES];
	int allocated = 0;

	setup(16);
	for (uint64_t i = 0; i < 16; i++) {
		struct page *page = add(owner_a, i);

		if (i % 2 == 0) {
			page_write_begin(page);
			page->flags |= PAGE_DIRTY;
			page_write_end(page);
			dirty[i / 2] = page;
		}
	}
	cr_expect_eq(page_store_used(), 16);
	/* The 8 clean pages can be reclaimed, the 8 dirty ones never. */
	for (struct page *page; (page = page_alloc()); allocated++)
		cr_assert(allocated < 16, "allocated more pages than the arena holds");
	cr_expect_eq(allocated, 8);
	cr_expect_eq(page_store_reclaimed(), 8);
	urcu_bp_read_lock();
	for (int i = 0; i < 8; i++) {
		cr_expect_eq(find(owner_a, 2 * i), dirty[i], "a dirty page was reclaimed");
		page_copy_out(dirty[i], 0, FOLIO_PAGE_BYTES, buf);
		cr_expect_eq(buf[17], pattern(owner_a, 2 * i, 17));
		cr_expect_null(find(owner_a, 2 * i + 1));
	}
	urcu_bp_read_unlock();
}

/* Writers rewrite one page with a single byte value; readers must never see
 * two values in one copy (the kernel lets such reads tear; folio must not). */
static struct page *shared_page;
static int stop;			/* atomic: read by the writers */
static unsigned long torn_copies;

static void *rewriter(void *arg)
{
	for (int v = (int)(long)arg; !__atomic_load_n(&stop, __ATOMIC_RELAXED); v += 2) {
		page_write_begin(shared_page);
		memset(shared_page->data, v & 0xff, FOLIO_PAGE_BYTES);
		page_write_end(shared_page);
		for (int i = 0; i < 500; i++)	/* leave the readers some room */
			caa_cpu_relax();
	}
	return NULL;
}

static void *checker(void *arg)
{
	static __thread unsigned char buf[FOLIO_PAGE_BYTES];

	for (long n = (long)arg; n > 0; n--) {
		urcu_bp_read_lock();
		page_copy_out(shared_page, 0, FOLIO_PAGE_BYTES, buf);
		urcu_bp_read_unlock();
		if (memchr(buf, buf[0] ^ 0xff, FOLIO_PAGE_BYTES) ||
		    buf[FOLIO_PAGE_BYTES - 1] != buf[0] || buf[2048] != buf[0])
			__atomic_add_fetch(&torn_copies, 1, __ATOMIC_RELAXED);
		else
			for (size_t i = 1; i < FOLIO_PAGE_BYTES; i++)
				if (buf[i] != buf[0]) {
					__atomic_add_fetch(&torn_copies, 1, __ATOMIC_RELAXED);
					break;
				}
	}
	return NULL;
}

Test(page, copies_are_never_torn, .fini = teardown, .timeout = 60)
{
	pthread_t writers[2], readers[2];

	setup(16);
	shared_page = add(owner_a, 0);
	memset(shared_page->data, 0, FOLIO_PAGE_BYTES);
	__atomic_store_n(&stop, 0, __ATOMIC_RELAXED);
	for (long i = 0; i < 2; i++) {
		pthread_create(&writers[i], NULL, rewriter, (void *)i);
		pthread_create(&readers[i], NULL, checker, (void *)20000L);
	}
	for (int i = 0; i < 2; i++)
		pthread_join(readers[i], NULL);
	__atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
	for (int i = 0; i < 2; i++)
		pthread_join(writers[i], NULL);
	cr_expect_eq(torn_copies, 0, "%lu torn copies", torn_copies);
}

/*
 * Threads look up, insert, remove and (through a small arena) reclaim pages
 * of two owners at once; every byte copied must be the pattern of the key
 * asked for.
 */
static unsigned long wrong_bytes, hits, inserts;

static void *mixed(void *arg)
{
	unsigned long long x = (unsigned long)arg * 0x9E3779B97F4A7C15ull + 1;
	unsigned char buf[FOLIO_PAGE_BYTES];

	for (int n = 0; n < 20000; n++) {
		uint64_t owner;
		uint64_t index;
		struct page *page;

		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		owner = x & 1 ? owner_a : owner_b;
		index = (x >> 8) % 200;
		urcu_bp_read_lock();
		page = find(owner, index);
		if (page) {
			page_copy_out(page, 0, FOLIO_PAGE_BYTES, buf);
			if ((x >> 20) % 8 == 0 && !pthread_mutex_trylock(&page->lock)) {
				page_remove(page);
				pthread_mutex_unlock(&page->lock);
			}
			urcu_bp_read_unlock();
			for (size_t i = 0; i < FOLIO_PAGE_BYTES; i++)
				if (buf[i] != pattern(owner, index, i)) {
					__atomic_add_fetch(&wrong_bytes, 1, __ATOMIC_RELAXED);
					break;
				}
			__atomic_add_fetch(&hits, 1, __ATOMIC_RELAXED);
			continue;
		}
		urcu_bp_read_unlock();
		page = page_alloc();
		if (!page)
			continue;
		fill(page, owner, index);
		urcu_bp_read_lock();
		insert(page, owner, index);
		urcu_bp_read_unlock();
		__atomic_add_fetch(&inserts, 1, __ATOMIC_RELAXED);
	}
	return NULL;
}

Test(page, lookups_inserts_removals_and_reclaim_race, .fini = teardown, .timeout = 120)
{
	pthread_t threads[4];

	setup(64);
	for (long i = 0; i < 4; i++)
		pthread_create(&threads[i], NULL, mixed, (void *)(i + 1));
	for (int i = 0; i < 4; i++)
		pthread_join(threads[i], NULL);
	cr_expect_eq(wrong_bytes, 0, "%lu copies served the wrong data", wrong_bytes);
	cr_expect_gt(hits, 1000, "the race barely hit: %lu hits", hits);
	cr_expect_gt(page_store_reclaimed(), 0, "reclaim never ran (%lu inserts)", inserts);
	folio_defer_flush();
	cr_expect_leq(page_store_used(), 64);
}
