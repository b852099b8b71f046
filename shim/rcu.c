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

void folio_rcu_before_fork(void)
{
	if (!started)
		return;
	urcu_bp_call_rcu_before_fork();
	urcu_bp_before_fork();
}

void folio_rcu_after_fork_parent(void)
{
	if (!started)
		return;
	urcu_bp_after_fork_parent();
	urcu_bp_call_rcu_after_fork_parent();
}

void folio_rcu_after_fork_child(void)
{
	if (!started)
		return;
	urcu_bp_after_fork_child();
	started = false;
	child_needs_worker = true;
}
