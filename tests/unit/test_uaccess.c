/*
 * Unit tests for the copies to and from the program's buffers
 * (shim/uaccess.c): every length up to past the short-copy paths, with the
 * first bad byte at every place in and around the copy, on the load side
 * (a source running into an unmapped page) and on the store side (a
 * destination running into a read-only page).  The count must be the
 * kernel's to the byte, the bytes before the bad one copied, nothing
 * after it touched.  The test installs the SIGSEGV handler folio's crash
 * handler would be, for the fixup.
 *
 * make check-valgrind runs this under memcheck too, where the counts come
 * from the kernel instead (uaccess.c), and the bytes copied must be
 * defined for memcheck, or not, as their source was; memcheck's reports of the bad addresses, made on purpose here, are
 * turned off.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>

#if __has_include(<valgrind/memcheck.h>)
#include <valgrind/memcheck.h>
#else
#define RUNNING_ON_VALGRIND			0
#define VALGRIND_DISABLE_ERROR_REPORTING
#define VALGRIND_ENABLE_ERROR_REPORTING
#define VALGRIND_MAKE_MEM_UNDEFINED(p, n)	0
#define VALGRIND_CHECK_MEM_IS_DEFINED(p, n)	0
#endif

#include "uaccess.h"

#define PAGE		4096
#define MAX_LEN		600

static unsigned char *area;	/* a good page, then the page made bad */
static unsigned char pattern[PAGE + MAX_LEN], other[MAX_LEN + 64];

static void on_fault(int sig, siginfo_t *info, void *uc)
{
	(void)info;
	if (!uaccess_fixup(uc)) {
		signal(sig, SIG_DFL);	/* a fault outside the copies: fail */
		raise(sig);
	}
}

static void setup(void)
{
	struct sigaction sa = { .sa_sigaction = on_fault, .sa_flags = SA_SIGINFO };

	sigemptyset(&sa.sa_mask);
	cr_assert_eq(sigaction(SIGSEGV, &sa, NULL), 0);
	area = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(area, MAP_FAILED);
	for (size_t i = 0; i < sizeof(pattern); i++)
		pattern[i] = (unsigned char)(i * 7 + 3);
	VALGRIND_DISABLE_ERROR_REPORTING;
}

static void teardown(void)
{
	VALGRIND_ENABLE_ERROR_REPORTING;
	munmap(area, 2 * PAGE);
	signal(SIGSEGV, SIG_DFL);
}

/* Lengths: all of the short paths and their edges, then some string copies. */
static size_t length(size_t i)
{
	static const size_t long_ones[] = { 256, 257, 300, 511, 512, 599 };

	return i < 300 ? i : long_ones[i - 300];
}

#define NR_LENGTHS	306

/* The copy starts @good bytes before the bad page (up to 70 past its end). */
static void check_bad_source(void)
{
	cr_assert_eq(mprotect(area + PAGE, PAGE, PROT_NONE), 0);
	memcpy(area, pattern, PAGE);
	/* As a program's buffer it never wrote: memcheck must still see
	 * folio's copy of it as undefined (and report it at write-back, as it
	 * reports such a write natively). */
	(void)VALGRIND_MAKE_MEM_UNDEFINED(area, PAGE);
	for (size_t i = 0; i < NR_LENGTHS; i++) {
		size_t len = length(i);

		for (size_t good = 0; good <= len + 70 && good <= PAGE; good++) {
			const unsigned char *src = area + PAGE - good;
			size_t want = len > good ? len - good : 0, left;

			memset(other, 0xee, sizeof(other));
			left = uaccess_copy_from(other, src, len);
			cr_assert_eq(left, want, "len %zu, %zu good bytes: %zu left", len, good, left);
			cr_assert(!RUNNING_ON_VALGRIND || len == want ||
				  VALGRIND_CHECK_MEM_IS_DEFINED(other, len - want) != 0,
				  "len %zu, %zu good: undefined bytes became defined for memcheck",
				  len, good);
			cr_assert(!memcmp(other, src, len - want), "len %zu, %zu good: data", len, good);
			for (size_t b = len - want; b < sizeof(other); b++)
				cr_assert_eq(other[b], 0xee, "len %zu, %zu good: byte %zu touched", len,
					     good, b);
		}
	}
}

static void check_bad_destination(void)
{
	cr_assert_eq(mprotect(area + PAGE, PAGE, PROT_READ), 0);
	for (size_t i = 0; i < NR_LENGTHS; i++) {
		size_t len = length(i);

		for (size_t good = 0; good <= len + 70 && good <= PAGE; good++) {
			unsigned char *dst = area + PAGE - good;
			size_t want = len > good ? len - good : 0, left;

			memset(area, 0xee, PAGE);
			(void)VALGRIND_MAKE_MEM_UNDEFINED(area, PAGE);
			left = uaccess_copy_to(dst, pattern + i, len);
			cr_assert_eq(left, want, "len %zu, %zu good bytes: %zu left", len, good, left);
			cr_assert_eq(VALGRIND_CHECK_MEM_IS_DEFINED(dst, len - want), 0,
				     "len %zu, %zu good: bytes copied undefined for memcheck", len, good);
			cr_assert(!memcmp(dst, pattern + i, len - want), "len %zu, %zu good: data", len,
				  good);
			for (unsigned char *b = area; b < dst; b++)
				cr_assert_eq(*b, 0xee, "len %zu, %zu good: byte before touched", len,
					     good);
			cr_assert_eq(area[PAGE], 0, "the read-only page changed");
		}
	}
}

static void check_clearing(void)
{
	cr_assert_eq(mprotect(area + PAGE, PAGE, PROT_READ), 0);
	for (size_t len = 0; len < MAX_LEN; len += 7) {
		for (size_t good = 0; good <= len + 10; good++) {
			unsigned char *dst = area + PAGE - good;
			size_t want = len > good ? len - good : 0;

			memset(area, 0xee, PAGE);
			cr_assert_eq(uaccess_clear(dst, len), want, "len %zu, %zu good", len, good);
			for (size_t b = 0; b < len - want; b++)
				cr_assert_eq(dst[b], 0, "len %zu, %zu good: byte %zu", len, good, b);
			cr_assert(good == 0 || dst[-1] == 0xee, "len %zu: byte before cleared", len);
		}
	}
}

Test(uaccess, a_bad_source_stops_the_copy_at_its_first_byte, .init = setup, .fini = teardown)
{
	check_bad_source();
}

Test(uaccess, a_bad_destination_stops_the_copy_at_its_first_byte, .init = setup,
     .fini = teardown)
{
	check_bad_destination();
}

Test(uaccess, clearing_stops_at_the_first_bad_byte, .init = setup, .fini = teardown)
{
	check_clearing();
}

/*
 * The same with every fault's count asked of the kernel, as under valgrind
 * (whose registers at a fault are not exact): the count and the bytes must
 * be the same.
 */
Test(uaccess, faults_counted_by_the_kernel_stop_at_the_first_bad_byte, .init = setup,
     .fini = teardown)
{
	uaccess_recount_faults = true;
	check_bad_source();
	cr_assert_eq(mprotect(area + PAGE, PAGE, PROT_READ | PROT_WRITE), 0);
	memset(area + PAGE, 0, PAGE);
	check_bad_destination();
	check_clearing();
	uaccess_recount_faults = false;
}

/* make check-valgrind sets TEST_UNDER_VALGRIND: the tests above did run there. */
Test(uaccess, runs_under_valgrind_when_asked)
{
	if (getenv("TEST_UNDER_VALGRIND"))
		cr_assert(RUNNING_ON_VALGRIND, "TEST_UNDER_VALGRIND set, but not under valgrind");
}

/* Whole copies in both directions, at every alignment: the bytes arrive. */
Test(uaccess, good_buffers_are_copied_whole, .init = setup, .fini = teardown)
{
	for (size_t i = 0; i < NR_LENGTHS; i++) {
		size_t len = length(i);

		for (size_t align = 0; align < 16; align++) {
			memset(other, 0xee, sizeof(other));
			cr_assert_eq(uaccess_copy_to(other + align, pattern + i, len), 0);
			cr_assert(!memcmp(other + align, pattern + i, len), "len %zu", len);
			cr_assert(align == 0 || other[align - 1] == 0xee, "len %zu: before", len);
			cr_assert(align + len >= sizeof(other) || other[align + len] == 0xee,
				  "len %zu: after", len);
		}
	}
}
