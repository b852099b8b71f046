/*
 * rcu.c - see rcu.h.  Calls liburcu and pthread only.
 */
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>

#include "rcu.h"

#define DEFER_BATCH	32

#ifdef __SANITIZE_THREAD__
char folio_rcu_tsan_gp;		/* the grace period, for ThreadSanitizer (rcu.h) */
#endif

static struct folio_deferred *deferred;	/* pushed lock-free */
static unsigned long nr_deferred;
/* This thread is running deferred work (a signal handler must not nest). */
static __thread int running_deferred;

static void run_deferred(void)
{
	struct folio_deferred *list;

	running_deferred = 1;
	list = __atomic_exchange_n(&deferred, NULL, __ATOMIC_ACQ_REL);
	__atomic_store_n(&nr_deferred, 0, __ATOMIC_RELAXED);
	if (list) {
		urcu_bp_synchronize_rcu();
		while (list) {
			struct folio_deferred *next = list->next;

			list->fn(list);
			list = next;
		}
	}
	running_deferred = 0;
}

void folio_defer(struct folio_deferred *d, void (*fn)(struct folio_deferred *d))
{
	d->fn = fn;
	d->next = __atomic_load_n(&deferred, __ATOMIC_RELAXED);
	while (!__atomic_compare_exchange_n(&deferred, &d->next, d, true, __ATOMIC_RELEASE,
					    __ATOMIC_RELAXED))
		;
	if (__atomic_add_fetch(&nr_deferred, 1, __ATOMIC_RELAXED) >= DEFER_BATCH)
		folio_defer_flush();
}

void folio_defer_flush(void)
{
	if (!running_deferred && !urcu_bp_read_ongoing())
		run_deferred();
}

/*
 * liburcu's registry lock is taken by every thread's first read-side
 * section: hold it across fork so the child gets it unlocked.
 */
void folio_rcu_before_fork(void)
{
	urcu_bp_before_fork();
}

void folio_rcu_after_fork_parent(void)
{
	urcu_bp_after_fork_parent();
}

void folio_rcu_after_fork_child(void)
{
	urcu_bp_after_fork_child();
	/* The parent's pending frees are of its state, which the child
	 * abandons (the page arena goes away): never run them here. */
	deferred = NULL;
	nr_deferred = 0;
}
