/*
 * rcu.h - the liburcu flavour folio uses, and its thread and fork rules.
 *
 * folio cannot register the host's threads, so it uses the bulletproof
 * flavour (urcu-bp): a thread registers itself on its first read-side
 * section and is unregistered by liburcu when it exits.  The alternative,
 * urcu-memb behind a thread-local "registered" flag, needs a pthread key
 * destructor to unregister every thread the host creates.  Measured with
 * tests/bench/rcu_flavour.c (`make rcu-flavour`): median of 7 rounds of 50M
 * read-side sections around a dependent load, kernel 6.18, 2 cores,
 * 2026-11-25, ns per rcu_read_lock()/rcu_read_unlock():
 *                     in a program   in a shared library   same, initial-exec TLS
 *   urcu-bp             2.2 - 2.6         13.6 - 14.4             2.4 - 2.6
 *   memb + lazy reg.    1.7 - 2.6         12.3 - 14.2             2.6
 * The flavours cost the same.  In a shared library the default TLS model
 * reaches liburcu's thread-local reader through __tls_get_addr(); folio is
 * preloaded, so it is built with -ftls-model=initial-exec and pays the
 * program's price.  bp needs no registration bookkeeping, so folio uses
 * urcu-bp.
 *
 * Everything RCU-protected in folio uses the explicit urcu_bp_* names so a
 * reader never has to guess the flavour.
 */
#ifndef FOLIO_RCU_H
#define FOLIO_RCU_H

#define _LGPL_SOURCE
#include <urcu/urcu-bp.h>
#include <urcu/pointer.h>

/*
 * rcu_assign_pointer() as what it promises, a release store.  liburcu
 * 0.13's is a write barrier and a volatile store: the same instructions on
 * x86, but a plain write for C11 and ThreadSanitizer, racing with the
 * atomic load in rcu_dereference().  Defined before <urcu/rcuhlist.h>,
 * whose list insertion uses it.
 */
#undef rcu_assign_pointer
#define rcu_assign_pointer(p, v)	__atomic_store_n(&(p), (v), __ATOMIC_RELEASE)

#include <urcu/rcuhlist.h>

/*
 * cds_hlist_del_rcu() with the unlinking store a release store, for the
 * same reason: liburcu 0.13's is CMM_STORE_SHARED(), a volatile store,
 * which raced with the lookups' rcu_dereference() (TSan: a close of a
 * tracked file by db_bench's compaction thread beside an fopen()).
 */
static inline void folio_hlist_del_rcu(struct cds_hlist_node *elem)
{
	if (elem->next)
		elem->next->prev = elem->prev;
	__atomic_store_n(&elem->prev->next, elem->next, __ATOMIC_RELEASE);
}
#define cds_hlist_del_rcu	folio_hlist_del_rcu

#ifdef __SANITIZE_THREAD__
/*
 * make test SANITIZE=thread: ThreadSanitizer cannot see a grace period.
 * liburcu is not instrumented, and urcu_bp_synchronize_rcu() learns that
 * readers have left by reading their counters.  Tell it what a grace
 * period means: what a reader did before its urcu_bp_read_unlock() happens
 * before what follows a urcu_bp_synchronize_rcu() (a free, a page's
 * reuse).  This orders more than RCU does (also read-side sections that
 * began after the grace period did), never less; races between readers
 * and writers inside a grace period are still seen.
 */
void __tsan_acquire(void *addr);
void __tsan_release(void *addr);
extern char folio_rcu_tsan_gp;

static inline void folio_tsan_read_unlock(void)
{
	__tsan_release(&folio_rcu_tsan_gp);
	_urcu_bp_read_unlock();
}

static inline void folio_tsan_synchronize_rcu(void)
{
	urcu_bp_synchronize_rcu();
	__tsan_acquire(&folio_rcu_tsan_gp);
}

#undef urcu_bp_read_unlock
#define urcu_bp_read_unlock		folio_tsan_read_unlock
#define urcu_bp_synchronize_rcu		folio_tsan_synchronize_rcu
#endif

/*
 * Freeing after a grace period without a thread.  A helper thread in the
 * host (liburcu's call_rcu worker) is not free: once a process has two
 * threads the kernel takes the slow path of fdget() and the file position
 * lock on every read, write and lseek of every fd (measured: +90 to +150 ns
 * per call on this machine).  So folio's own objects wait on a list until
 * 32 of them are there and a thread that is not inside a read-side section
 * frees them after one urcu_bp_synchronize_rcu() (1.6 us here).
 */
struct folio_deferred {
	struct folio_deferred *next;
	void (*fn)(struct folio_deferred *d);
};

/*
 * Call @fn(@d) some time after a grace period.  Lock-free and safe in a
 * signal handler; may run earlier deferred work (never from inside a
 * read-side section of the calling thread).
 */
void folio_defer(struct folio_deferred *d, void (*fn)(struct folio_deferred *d));

/*
 * Run the deferred work now (after one grace period), unless the calling
 * thread is inside a read-side section.  For allocators that need the
 * memory back (page_alloc), tests and tear-down.
 */
void folio_defer_flush(void);

/* fork() handlers: liburcu's registry lock; the child also drops the
 * parent's pending deferred frees (of state the child abandons). */
void folio_rcu_before_fork(void);
void folio_rcu_after_fork_parent(void);
void folio_rcu_after_fork_child(void);

#endif
