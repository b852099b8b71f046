/*
 * compiler.h - small compiler helpers shared by every shim file.
 *
 * Owns nothing; may be included anywhere.
 */
#ifndef FOLIO_COMPILER_H
#define FOLIO_COMPILER_H

#define likely(x)	__builtin_expect(!!(x), 1)
#define unlikely(x)	__builtin_expect(!!(x), 0)

/* Symbols the host program sees: the interposed libc names and folio.h. */
#define FOLIO_EXPORT	__attribute__((visibility("default")))

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
