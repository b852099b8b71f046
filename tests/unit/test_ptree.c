/*
 * Unit tests for the per-file page index (shim/ptree.c): slots for indexes
 * from 0 to past 2^40, lookups of absent indexes, a walk in index order from
 * a given page, and lookups that race with the tree growing at the top and
 * at the leaves.
 */
#include <criterion/criterion.h>
#include <pthread.h>

#include "ptree.h"

static struct ptree tree;

static void setup(void)
{
	ptree_init(&tree);
}

static void teardown(void)
{
	ptree_destroy(&tree);
}

/* A distinct non-NULL entry for each index. */
static void *entry_for(uint64_t index)
{
	return (void *)(uintptr_t)((index << 4) | 8);
}

static void put(uint64_t index)
{
	void **slot = ptree_slot(&tree, index);

	cr_assert_not_null(slot);
	cr_assert_null(*slot, "slot of %llu not empty", (unsigned long long)index);
	__atomic_store_n(slot, entry_for(index), __ATOMIC_RELEASE);
}

static const uint64_t sparse[] = {
	0, 1, 511, 512, 513, 262143, 262144, 1ull << 27, (1ull << 27) + 5, 1ull << 40,
	(1ull << 40) + 511,
};

Test(ptree, slots_and_lookups_from_empty_to_2_to_the_40, .init = setup, .fini = teardown)
{
	urcu_bp_read_lock();
	cr_expect_null(ptree_lookup(&tree, 0), "an empty tree found something");
	urcu_bp_read_unlock();
	for (size_t i = 0; i < sizeof(sparse) / sizeof(sparse[0]); i++)
		put(sparse[i]);
	urcu_bp_read_lock();
	for (size_t i = 0; i < sizeof(sparse) / sizeof(sparse[0]); i++)
		cr_expect_eq(ptree_lookup(&tree, sparse[i]), entry_for(sparse[i]), "index %llu",
			     (unsigned long long)sparse[i]);
	cr_expect_null(ptree_lookup(&tree, 2));
	cr_expect_null(ptree_lookup(&tree, 1ull << 30));
	cr_expect_null(ptree_lookup(&tree, 1ull << 50), "past the top of the tree");
	urcu_bp_read_unlock();
	/* The same slot again, not a new one. */
	cr_expect_eq(*ptree_slot(&tree, 1ull << 40), entry_for(1ull << 40));
}

static uint64_t seen[32];
static int nseen;

static void record(void *entry, uint64_t index, void *arg)
{
	(void)arg;
	cr_expect_eq(entry, entry_for(index));
	if (nseen < 32)
		seen[nseen++] = index;
}

Test(ptree, walk_in_index_order_from_a_page, .init = setup, .fini = teardown)
{
	for (size_t i = sizeof(sparse) / sizeof(sparse[0]); i-- > 0;)
		put(sparse[i]);
	urcu_bp_read_lock();
	ptree_for_each(&tree, 513, record, NULL);
	urcu_bp_read_unlock();
	cr_assert_eq(nseen, 7);
	for (int i = 0; i < nseen; i++)
		cr_expect_eq(seen[i], sparse[i + 4], "walk position %d", i);
}

/*
 * One thread adds slots in an order that grows the tree at the top again
 * and again while others look up what is already there: every published
 * entry must be found, nothing else.
 */
static volatile uint64_t published;	/* entries 0..published-1 exist */
static int done;			/* atomic: read by the lookers */
static unsigned long misses, wrong;

static uint64_t nth_index(uint64_t n)
{
	return n * 0x10001ull % (1ull << 36);	/* spreads over 2^36 pages */
}

static void *grower(void *arg)
{
	(void)arg;
	for (uint64_t n = 0; n < 20000; n++) {
		put(nth_index(n));
		__atomic_store_n(&published, n + 1, __ATOMIC_RELEASE);
	}
	__atomic_store_n(&done, 1, __ATOMIC_RELAXED);
	return NULL;
}

static void *looker(void *arg)
{
	unsigned long long x = (uintptr_t)arg * 0x9E3779B97F4A7C15ull + 1;

	while (!__atomic_load_n(&done, __ATOMIC_RELAXED)) {
		uint64_t have = __atomic_load_n(&published, __ATOMIC_ACQUIRE), n;
		void *got;

		if (!have)
			continue;
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		n = x % have;
		urcu_bp_read_lock();
		got = ptree_lookup(&tree, nth_index(n));
		urcu_bp_read_unlock();
		if (!got)
			__atomic_add_fetch(&misses, 1, __ATOMIC_RELAXED);
		else if (got != entry_for(nth_index(n)))
			__atomic_add_fetch(&wrong, 1, __ATOMIC_RELAXED);
	}
	return NULL;
}

Test(ptree, lookups_race_with_growth, .init = setup, .fini = teardown, .timeout = 60)
{
	pthread_t g, l[2];

	pthread_create(&l[0], NULL, looker, (void *)1);
	pthread_create(&l[1], NULL, looker, (void *)2);
	pthread_create(&g, NULL, grower, NULL);
	pthread_join(g, NULL);
	pthread_join(l[0], NULL);
	pthread_join(l[1], NULL);
	cr_expect_eq(misses, 0, "%lu published entries not found", misses);
	cr_expect_eq(wrong, 0, "%lu lookups found another entry", wrong);
}
