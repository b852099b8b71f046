/*
 * errseq.h - write-back errors as the kernel's lib/errseq.c keeps them: one
 * 64-bit word per file that says the last error, whether some open file
 * description was told of it, and how many errors came since.
 *
 * An open file description samples the word when it opens and checks it
 * at its fsync or close: each error recorded since is reported to it once,
 * and an error no description has seen yet is reported to descriptions
 * opened after it too.  Lock-free (atomics only); owns nothing but the
 * layout of the word.  Used by writeback.
 */
#ifndef FOLIO_ERRSEQ_H
#define FOLIO_ERRSEQ_H

#include <stdint.h>

/* The last error in the low 16 bits, SEEN once some description was told of
 * it, and above them a count of the errors since (bumped only when the last
 * one was seen: one nobody saw is replaced). */
#define ERRSEQ_ERRNO	0xffffull
#define ERRSEQ_SEEN	(1ull << 16)
#define ERRSEQ_ONE	(1ull << 17)

/* Record error @err (a positive errno) in *@seq. */
static inline void errseq_set(uint64_t *seq, int err)
{
	uint64_t old = __atomic_load_n(seq, __ATOMIC_RELAXED), new;

	do {
		new = (old & ~(ERRSEQ_ERRNO | ERRSEQ_SEEN)) | (unsigned int)err;
		if (old & ERRSEQ_SEEN)
			new += ERRSEQ_ONE;
	} while (new != old && !__atomic_compare_exchange_n(seq, &old, new, true,
							     __ATOMIC_RELEASE, __ATOMIC_RELAXED));
}

/* What a description opening now keeps in its @since for errseq_check(). */
static inline uint64_t errseq_sample(uint64_t *seq)
{
	uint64_t cur = __atomic_load_n(seq, __ATOMIC_ACQUIRE);

	return cur & ERRSEQ_SEEN ? cur : 0;	/* unseen: the new description sees it */
}

/* The error recorded since *@since (0: none), which is then seen. */
static inline int errseq_check(uint64_t *seq, uint64_t *since)
{
	uint64_t cur = __atomic_load_n(seq, __ATOMIC_ACQUIRE);

	if (cur == *since)
		return 0;
	if (!(cur & ERRSEQ_SEEN))
		__atomic_compare_exchange_n(seq, &cur, cur | ERRSEQ_SEEN, false,
					    __ATOMIC_RELAXED, __ATOMIC_RELAXED);
	*since = cur | ERRSEQ_SEEN;
	return cur & ERRSEQ_ERRNO;
}

#endif
