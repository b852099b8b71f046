/*
 * compiler.h - small compiler helpers shared by every shim file.
 *
 * Owns nothing; may be included anywhere.
 */
#ifndef FOLIO_COMPILER_H
#define FOLIO_COMPILER_H

#include <stdint.h>
#include <time.h>

#define likely(x)	__builtin_expect(!!(x), 1)
#define unlikely(x)	__builtin_expect(!!(x), 0)

/* Symbols the host program sees: the interposed libc names and folio.h. */
#define FOLIO_EXPORT	__attribute__((visibility("default")))

/*
 * Export @twin (pread64, open64, ...) as another name of folio's wrapper
 * @name: on x86-64 off_t is off64_t, and glibc's *64 functions are aliases
 * of the plain ones as well.  (Not the stat and rlimit families: their
 * *64 structs are other types to the compiler, of the same layout.)
 */
#define FOLIO_ALIAS64(name, twin) \
	extern __typeof(name) twin FOLIO_EXPORT __attribute__((alias(#name)))

/* A macro's value as a string literal, e.g. for inline assembly. */
#define FOLIO_STR_(x)	#x
#define FOLIO_STR(x)	FOLIO_STR_(x)

/*
 * No sanitizer instrumentation, in sanitizer builds, for a function that a
 * sanitizer's runtime calls before it is ready (ThreadSanitizer crashed
 * entering an instrumented setrlimit() from its constructor).
 */
#define FOLIO_NO_SANITIZE	__attribute__((no_sanitize("address", "thread", "undefined")))

#define ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))

/* Milliseconds of CLOCK_MONOTONIC: deadlines and retry times. */
static inline uint64_t monotonic_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Whether the process runs under valgrind, for the two places where its
 * signal delivery differs from the kernel's (uaccess.c, crash.c).  Its
 * client request is a few no-op instructions natively; the header comes
 * with Debian's valgrind package (scripts/install-deps), and a build
 * without it takes the kernel's behaviour everywhere.
 */
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define folio_on_valgrind()	(RUNNING_ON_VALGRIND != 0)
#else
#define folio_on_valgrind()	0
#endif

#endif
