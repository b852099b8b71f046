/*
 * ptree.h - one file's page index: page number -> page, a radix tree of
 * 512-slot nodes in the shape of the kernel's xarray (two levels cover a
 * 1 GiB file, three 512 GiB).
 *
 * Why not one hash table for all files (cds_lfht, doc/design.md §2.4): a
 * hit looks up a page on every read, and on a 64 MiB working set the
 * cds_lfht lookup (bucket, dummy node, chain walk, key callback) measured
 * ~110 ns of a ~300 ns 100-byte hit here (perf, 2026-11-26); the index walk
 * is two dependent loads from cache-resident nodes.  It also makes a file's
 * pages a walk of its own tree (truncation, last close), not of the cache.
 *
 * Rules:
 *   - ptree_lookup() runs inside urcu_bp_read_lock(), lockless.  Nodes are
 *     never freed before ptree_destroy(), so a slot pointer stays valid
 *     while the tree lives.
 *   - ptree_slot() adds nodes under the tree's own mutex; a slot's value
 *     changes only by compare-and-swap (see page_publish()/page_remove()).
 *   - ptree_destroy() only after a grace period since the last lookup and
 *     once no page points into the tree.
 *
 * Calls rcu and real only; called by cache.
 */
#ifndef FOLIO_PTREE_H
#define FOLIO_PTREE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "rcu.h"

#define PTREE_BITS	9
#define PTREE_SLOTS	(1u << PTREE_BITS)

struct ptree_node {
	unsigned int shift;		/* page-number bits below this node's slots */
	void *slots[PTREE_SLOTS];	/* struct page * at shift 0, else children */
};

struct ptree {
	struct ptree_node *root;	/* NULL while empty; rcu */
	pthread_mutex_t grow_lock;	/* serialises adding nodes */
};

static inline void ptree_init(struct ptree *t)
{
	t->root = NULL;
	pthread_mutex_init(&t->grow_lock, NULL);
}

/* The page at @index, or NULL.  Inside urcu_bp_read_lock(). */
static inline void *ptree_lookup(const struct ptree *t, uint64_t index)
{
	const struct ptree_node *node = rcu_dereference(t->root);
	unsigned int shift;

	if (!node)
		return NULL;
	shift = node->shift;
	if (index >> shift >= PTREE_SLOTS)
		return NULL;
	/* A child's shift is its parent's less PTREE_BITS: only the root's
	 * is read, not a header line per level. */
	for (;;) {
		void *entry = rcu_dereference(node->slots[(index >> shift) & (PTREE_SLOTS - 1)]);

		if (!shift || !entry)
			return entry;
		node = entry;
		shift -= PTREE_BITS;
	}
}

/*
 * The slot for @index, with the nodes it needs added; NULL if memory ran
 * out.  Any context but a signal handler (it allocates).
 */
void **ptree_slot(struct ptree *t, uint64_t index);

/*
 * Call @fn(@entry, @index, @arg) for each non-empty slot from @first on, in
 * index order.  Inside urcu_bp_read_lock() taken by the caller.
 */
void ptree_for_each(const struct ptree *t, uint64_t first,
		    void (*fn)(void *entry, uint64_t index, void *arg), void *arg);

/* Free every node. */
void ptree_destroy(struct ptree *t);

#endif
