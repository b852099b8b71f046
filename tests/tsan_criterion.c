/*
 * Linked into the criterion programs of `make test SANITIZE=thread` only.
 *
 * Criterion's sandbox (BoxFort) maps its shared arena at a random address
 * in [0x200000000000, 0x600000000000): rand_r() & 0x3fffff, times 16 MiB,
 * ten tries, each checked with mincore().  ThreadSanitizer (gcc 12) keeps
 * almost all of that range for its shadow and reserves it, so the ten tries
 * fail and every test program aborts: "Could not initialize inheritable
 * arena" (Criterion issue 274).  The one free part is the range TSan gives
 * position-independent programs, [0x550000000000, 0x568000000000): this
 * rand_r() returns numbers that land there and are still random within it.
 * Nothing else in these programs calls rand_r().
 */
#include <stdlib.h>

int rand_r(unsigned int *seed)
{
	/* The LCG of glibc's rand_r, one step. */
	*seed = *seed * 1103515245 + 12345;
	return 0x350000 + (int)((*seed >> 8) % 0x18000);
}
