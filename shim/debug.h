/*
 * debug.h - checks of folio's own rules, in a FOLIO_DEBUG build only
 * (make DEBUG=1, run by make check-all): the "Under X" rules of shim/LOCKING
 * asserted where a function relies on them.  Nothing in a normal build.
 *
 * glibc records the thread that holds a mutex and the thread that holds a
 * rwlock for writing (__data.__owner, __data.__cur_writer: the kernel's
 * thread id).  A rwlock held shared leaves no owner, so rules that accept
 * either mode are not checked; "exclusive" ones are.
 *
 * Owns nothing; calls log (the failure's one line) and real.
 */
#ifndef FOLIO_DEBUG_H
#define FOLIO_DEBUG_H

#include <pthread.h>
#include <stdbool.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "compiler.h"

#ifdef FOLIO_DEBUG

/* Report the rule @what broken at @file:@line, then stop the process. */
void __attribute__((noreturn, cold)) folio_debug_fail(const char *what, const char *file,
						      int line);

#define folio_assert(cond) \
	do { \
		if (unlikely(!(cond))) \
			folio_debug_fail(#cond, __FILE__, __LINE__); \
	} while (0)

static inline int folio_debug_tid(void)
{
	return (int)syscall(SYS_gettid);
}

static inline bool mutex_held(const pthread_mutex_t *lock)
{
	return lock->__data.__owner == folio_debug_tid();
}

static inline bool rwlock_held_exclusive(const pthread_rwlock_t *lock)
{
	return (int)lock->__data.__cur_writer == folio_debug_tid();
}

#else

#define folio_assert(cond)	do { } while (0)

#endif

#define assert_mutex_held(lock)		folio_assert(mutex_held(lock))
#define assert_exclusive(lock)		folio_assert(rwlock_held_exclusive(lock))

#endif
