/*
 * rcu.c - see rcu.h.  Calls liburcu and pthread only.
 */
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>

#include "rcu.h"

static bool started;		/* the call_rcu worker runs in this process */
/* A fork child whose call_rcu state is still the parent's copy. */
static bool child_needs_worker;

void folio_rcu_start(void)
{
	sigset_t all, old;

	if (__atomic_load_n(&started, __ATOMIC_ACQUIRE))
		return;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	if (child_needs_worker) {
		/* Rebuilds the worker the parent had; deferred here so that a
		 * child that tracks nothing stays single-threaded. */
		urcu_bp_call_rcu_after_fork_child();
		child_needs_worker = false;
	} else {
		(void)urcu_bp_get_default_call_rcu_data();
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	__atomic_store_n(&started, true, __ATOMIC_RELEASE);
}

#define DEFER_BATCH	32

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
	if (__atomic_add_fetch(&nr_deferred, 1, __ATOMIC_RELAXED) >= DEFER_BATCH &&
	    !running_deferred && !urcu_bp_read_ongoing())
		run_deferred();
}

/*
 * liburcu's registry lock is taken by every thread's first read-side
 * section: hold it across fork so the child gets it unlocked.
 */
void folio_rcu_before_fork(void)
{
	if (started)
		urcu_bp_call_rcu_before_fork();
	urcu_bp_before_fork();
}

void folio_rcu_after_fork_parent(void)
{
	urcu_bp_after_fork_parent();
	if (started)
		urcu_bp_call_rcu_after_fork_parent();
}

void folio_rcu_after_fork_child(void)
{
	urcu_bp_after_fork_child();
	if (started) {
		started = false;
		child_needs_worker = true;
	}
}
