/*
 * Concurrency stress: tests/prog/stress.c's threads on shared files, each
 * read checked against its oracle inside the process, then the files on
 * disk compared with the oracle's expected images by this process (not
 * under folio), so that data lost in write-back shows.  Natively first,
 * so that a bug in the oracle shows as such.  The seeds change from run to
 * run; a failure names the command that replays it.
 */
#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

#define UNDER_FOLIO	PRELOAD "FOLIO_FILES='*.dat' "
#define TINY		"FOLIO_CACHE_SIZE=64K FOLIO_DIRTY_LIMIT=8K FOLIO_FLUSH_INTERVAL=1 "
#define SMALL		"FOLIO_CACHE_SIZE=1M FOLIO_DIRTY_LIMIT=64K FOLIO_FLUSH_INTERVAL=5 "

static const char *const files[] = { "rec0", "rec1", "log", "scratch" };

static unsigned long new_seed(void)
{
	struct timespec now;

	clock_gettime(CLOCK_REALTIME, &now);
	return (unsigned long)now.tv_sec * 1000 + now.tv_nsec / 1000000 + getpid();
}

/*
 * Run @prog with @env for @seconds in a new directory; the oracle checks
 * inside, then every file against its expected image.  The directory is
 * kept when something fails.
 */
static void stress(const char *prog, const char *env, int threads, double seconds)
{
	unsigned long seed = new_seed();
	char *d = new_dir(), *cmd, *out;
	int status;

	cr_assert(asprintf(&cmd, "%s%s . --seed %lu --seconds %g --threads %d", env, prog, seed,
			   seconds, threads) > 0);
	status = sh("cd %s && %s > out 2>&1", d, cmd);
	out = slurp("%s/out", d);
	cr_assert_eq(status, 0, "%s\nreplay: cd %s && %s", out, d, cmd);
	cr_assert_eq(strstr(out, "under folio") != NULL, *env != '\0',
		     "the files were %stracked: %s", *env ? "not " : "", out);
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		status = sh("cd %s && cmp %s.dat %s.expected > cmp.out 2>&1", d, files[i], files[i]);
		cr_assert_eq(status, 0, "%s.dat on disk differs from the oracle's image: %s%s"
			     "replay: cd %s && %s", files[i], slurp("%s/cmp.out", d), out, d, cmd);
	}
	free(out);
	free(cmd);
	remove_dir(d);
}

Test(stress, oracle_holds_natively, .timeout = 60)
{
	stress(PROG_PATH("stress"), "", 4, 3);
}

Test(stress, under_folio, .timeout = 60)
{
	stress(PROG_PATH("stress"), UNDER_FOLIO, 4, 4);
	stress(PROG_PATH("stress"), UNDER_FOLIO, 2, 2);
}

/*
 * A cache of 16 pages for ~0.6 MiB of files, a dirty limit of two pages and
 * a 1 ms flush interval: reclaim, write-back and writers waiting at the
 * limit all the time, beside the reads.
 */
Test(stress, under_folio_with_a_tiny_cache_and_dirty_limit, .timeout = 60)
{
	stress(PROG_PATH("stress"), UNDER_FOLIO TINY, 4, 4);
	stress(PROG_PATH("stress"), UNDER_FOLIO TINY, 8, 2);
}

/* 1 MiB for ~0.6 MiB of files and a log of up to 4 MiB: the reads miss. */
Test(stress, under_folio_with_a_small_cache, .timeout = 60)
{
	stress(PROG_PATH("stress"), UNDER_FOLIO SMALL, 8, 3);
}

Test(stress, under_folio_fortified, .timeout = 60)
{
	stress(PROG_PATH("stress-fortify"), UNDER_FOLIO, 4, 3);
}
