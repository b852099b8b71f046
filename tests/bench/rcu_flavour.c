/*
 * Read-side cost of the two liburcu flavours a preloaded library can use
 * without controlling the host's threads:
 *   -DFLAVOUR_BP    urcu-bp: threads register themselves on first read lock;
 *   -DFLAVOUR_MEMB  urcu-memb: explicit registration, done lazily here behind
 *                   a thread-local flag (what folio would have to add).
 * Prints ns per rcu_read_lock()/rcu_read_unlock() pair around a dependent
 * load, median of 7 rounds.  Built and run by `make rcu-flavour`.
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

int main(void)
{
	enum { ROUNDS = 7, N = 50 * 1000 * 1000 };
	static int value = 1, *shared = &value;
	double ns[ROUNDS];
	long sum = 0;

	for (int r = 0; r < ROUNDS; r++) {
		double t0 = now_ns();
		for (long i = 0; i < N; i++) {
			lazy_register();
			urcu_read_lock();
			sum += *rcu_dereference(shared);
			urcu_read_unlock();
		}
		ns[r] = (now_ns() - t0) / N;
	}
	qsort(ns, ROUNDS, sizeof(ns[0]), cmp);
	printf("%-10s %.2f ns per read-side section (median of %d, min %.2f max %.2f) [%ld]\n",
	       NAME, ns[ROUNDS / 2], ROUNDS, ns[0], ns[ROUNDS - 1], sum);
	return 0;
}
