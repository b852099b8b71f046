/*
 * Unit tests of shim/errseq.h: each open file description hears of each
 * write-back error once, at its next fsync or close, as with the kernel's
 * errseq_t (Documentation/filesystems/vfs.rst, "Handling errors during
 * writeback"); an error nobody heard of yet reaches descriptions opened
 * after it.
 */
#include <criterion/criterion.h>
#include <errno.h>

#include "errseq.h"

Test(errseq, no_error_no_report)
{
	uint64_t seq = 0, since = errseq_sample(&seq);

	cr_expect_eq(errseq_check(&seq, &since), 0);
	cr_expect_eq(errseq_check(&seq, &since), 0);
}

Test(errseq, each_description_hears_once)
{
	uint64_t seq = 0, a = errseq_sample(&seq), b = errseq_sample(&seq);

	errseq_set(&seq, EIO);
	cr_expect_eq(errseq_check(&seq, &a), EIO);
	cr_expect_eq(errseq_check(&seq, &a), 0, "told twice");
	cr_expect_eq(errseq_check(&seq, &b), EIO, "the second description was not told");
	cr_expect_eq(errseq_check(&seq, &b), 0);
}

Test(errseq, an_unseen_error_reaches_later_opens)
{
	uint64_t seq = 0, late;

	errseq_set(&seq, ENOSPC);
	late = errseq_sample(&seq);
	cr_expect_eq(errseq_check(&seq, &late), ENOSPC);
	/* Seen now: a description opened after that is not told. */
	late = errseq_sample(&seq);
	cr_expect_eq(errseq_check(&seq, &late), 0);
}

Test(errseq, a_new_error_after_a_seen_one_is_reported_again)
{
	uint64_t seq = 0, a = errseq_sample(&seq), b;

	errseq_set(&seq, EIO);
	cr_expect_eq(errseq_check(&seq, &a), EIO);
	b = errseq_sample(&seq);
	errseq_set(&seq, EIO);		/* the same errno again: still a new error */
	cr_expect_eq(errseq_check(&seq, &a), EIO);
	cr_expect_eq(errseq_check(&seq, &b), EIO);
}

Test(errseq, the_last_unseen_error_is_the_one_reported)
{
	uint64_t seq = 0, a = errseq_sample(&seq);

	errseq_set(&seq, EIO);
	errseq_set(&seq, ENOSPC);	/* nobody saw EIO: replaced */
	cr_expect_eq(errseq_check(&seq, &a), ENOSPC);
	cr_expect_eq(errseq_check(&seq, &a), 0);
}
