/*
 * Read-side cost of the two liburcu flavours a preloaded library can use
 * without controlling the host's threads:
 *   -DFLAVOUR_BP    urcu-bp: threads register themselves on first read lock;
 *   -DFLAVOUR_MEMB  urcu-memb: explicit registration, done lazily here behind
 *                   a thread-local flag (what folio would have to add).
 * Prints ns per rcu_read_lock()/rcu_read_unlock() pair around a dependent
 * load, median of 7 rounds.  Built and run by `make rcu-flavour`, twice per
 * flavour: as a program, and with the loop in a shared library
 * (-DLOOP_IN_LIBRARY), which is folio's case: liburcu's thread-local reader
 * state is then reached through __tls_get_addr(), unless the library is
 * built with -ftls-model=initial-exec as folio is.
 */
#define _LGPL_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#if defined(FLAVOUR_BP)
#include <urcu/urcu-bp.h>
#define NAME "bp"
#define urcu_read_lock urcu_bp_read_lock
#define urcu_read_unlock urcu_bp_read_unlock
static inline void lazy_register(void) {}
#elif defined(FLAVOUR_MEMB)
#include <urcu/urcu-memb.h>
#define NAME "memb+lazy"
#define urcu_read_lock urcu_memb_read_lock
#define urcu_read_unlock urcu_memb_read_unlock
static __thread int registered;
static inline void lazy_register(void)
{
	if (__builtin_expect(!registered, 0)) {
		urcu_memb_register_thread();
		registered = 1;
	}
}
#else
#error "define FLAVOUR_BP or FLAVOUR_MEMB"
#endif

static double now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

long read_side_loop(long n);

#if !defined(LOOP_IN_LIBRARY) || defined(BUILD_LIBRARY)
long read_side_loop(long n)
{
	static int value = 1, *shared = &value;
	long sum = 0;

	for (long i = 0; i < n; i++) {
		lazy_register();
		urcu_read_lock();
		sum += *rcu_dereference(shared);
		urcu_read_unlock();
	}
	return sum;
}
#endif

#ifndef BUILD_LIBRARY
int main(void)
{
	enum { ROUNDS = 7, N = 50 * 1000 * 1000 };
	double ns[ROUNDS];
	long sum = 0;

	for (int r = 0; r < ROUNDS; r++) {
		double t0 = now_ns();

		sum += read_side_loop(N);
		ns[r] = (now_ns() - t0) / N;
	}
	qsort(ns, ROUNDS, sizeof(ns[0]), cmp);
#ifndef TLS_NOTE
#define TLS_NOTE ""
#endif
	printf("%-10s %-8s %.2f ns per read-side section (median of %d, min %.2f max %.2f)%s [%ld]\n",
	       NAME,
#ifdef LOOP_IN_LIBRARY
	       "library",
#else
	       "program",
#endif
	       ns[ROUNDS / 2], ROUNDS, ns[0], ns[ROUNDS - 1], TLS_NOTE, sum);
	return 0;
}
#endif
