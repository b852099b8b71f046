/*
 * ptree.c - see ptree.h.  Calls rcu and real (mmap) only.
 */
#include <sys/mman.h>

#include "ptree.h"
#include "real.h"

/*
 * Nodes come straight from mmap(), not malloc(): a write in a signal
 * handler may need one while the thread it interrupted holds malloc's
 * locks (seen: a handler's first write to a file deadlocked against
 * threads in malloc's arena list).  One node every 512 pages of a file;
 * zeroed by the kernel.
 */
static struct ptree_node *node_new(unsigned int shift)
{
	struct ptree_node *node = real_mmap_own(NULL, sizeof(*node), PROT_READ | PROT_WRITE,
					    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (node == MAP_FAILED)
		return NULL;
	node->shift = shift;
	return node;
}

void **ptree_slot(struct ptree *t, uint64_t index)
{
	struct ptree_node *node;
	void **slot = NULL;

	pthread_mutex_lock(&t->grow_lock);
	node = t->root;
	if (!node) {
		if (!(node = node_new(0)))
			goto out;
		rcu_assign_pointer(t->root, node);
	}
	/* Grow at the top: the old root becomes slot 0 of the new one, so a
	 * reader still holding the old root finds what it looks for. */
	while (index >> node->shift >= PTREE_SLOTS) {
		struct ptree_node *top = node_new(node->shift + PTREE_BITS);

		if (!top)
			goto out;
		top->slots[0] = node;
		rcu_assign_pointer(t->root, top);
		node = top;
	}
	for (;;) {
		void **s = &node->slots[(index >> node->shift) & (PTREE_SLOTS - 1)];

		if (!node->shift) {
			slot = s;
			break;
		}
		if (!*s) {
			struct ptree_node *child = node_new(node->shift - PTREE_BITS);

			if (!child)
				goto out;
			rcu_assign_pointer(*s, child);
		}
		node = *s;
	}
out:
	pthread_mutex_unlock(&t->grow_lock);
	return slot;
}

static void walk(const struct ptree_node *node, uint64_t base, uint64_t first,
		 void (*fn)(void *entry, uint64_t index, void *arg), void *arg)
{
	for (unsigned int i = 0; i < PTREE_SLOTS; i++) {
		void *entry = rcu_dereference(node->slots[i]);
		uint64_t index = base + ((uint64_t)i << node->shift);

		if (!entry)
			continue;
		if (!node->shift) {
			if (index >= first)
				fn(entry, index, arg);
		} else if (index + (1ull << node->shift) > first) {
			walk(entry, index, first, fn, arg);
		}
	}
}

void ptree_for_each(const struct ptree *t, uint64_t first,
		    void (*fn)(void *entry, uint64_t index, void *arg), void *arg)
{
	const struct ptree_node *root = rcu_dereference(t->root);

	if (root)
		walk(root, 0, first, fn, arg);
}

static void free_node(struct ptree_node *node)
{
	if (node->shift)
		for (unsigned int i = 0; i < PTREE_SLOTS; i++)
			if (node->slots[i])
				free_node(node->slots[i]);
	real_munmap_own(node, sizeof(*node));
}

void ptree_destroy(struct ptree *t)
{
	if (t->root)
		free_node(t->root);
	t->root = NULL;
	pthread_mutex_destroy(&t->grow_lock);
}
