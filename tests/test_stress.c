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

#define LIB		BUILD_DIR "/libfolio.so"
#define PROG(name)	BUILD_DIR "/tests/" name
/* With SANITIZE=..., the sanitizer's runtime must be loaded first. */
#define PRELOAD		"LD_PRELOAD='" SANITIZER_RUNTIME " " LIB "' FOLIO_FILES='*.dat' "
#define TINY		"FOLIO_CACHE_SIZE=64K FOLIO_DIRTY_LIMIT=8K FOLIO_FLUSH_INTERVAL=1 "
#define SMALL		"FOLIO_CACHE_SIZE=1M FOLIO_DIRTY_LIMIT=64K FOLIO_FLUSH_INTERVAL=5 "

static const char *const files[] = { "rec0", "rec1", "log", "scratch" };

/* Run a shell command; returns its exit status (128+n if killed by n). */
static int sh(const char *fmt, ...)
{
	char *cmd;
	va_list ap;
	int status;

	va_start(ap, fmt);
	cr_assert(vasprintf(&cmd, fmt, ap) >= 0);
	va_end(ap);
	if (SANITIZER_RUNTIME[0])
		setenv("ASAN_OPTIONS", "verify_asan_link_order=0:detect_leaks=0", 1);
	status = system(cmd);
	free(cmd);
	cr_assert(status != -1);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* The contents of a file as a string ("" if missing). */
static char *slurp(const char *fmt, ...)
{
	char *path, *buf = NULL;
	size_t len = 0;
	va_list ap;
	FILE *f;

	va_start(ap, fmt);
	cr_assert(vasprintf(&path, fmt, ap) >= 0);
	va_end(ap);
	f = fopen(path, "r");
	free(path);
	if (!f)
		return strdup("");
	if (getdelim(&buf, &len, '\0', f) < 0) {
		free(buf);
		buf = strdup("");
	}
	fclose(f);
	return buf;
}

static char *new_dir(void)
{
	char *dir = strdup("/tmp/folio-test-XXXXXX");

	cr_assert(mkdtemp(dir));
	return dir;
}

static void remove_dir(char *dir)
{
	sh("rm -rf '%s'", dir);
	free(dir);
}

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
	stress(PROG("stress"), "", 4, 3);
}

Test(stress, under_folio, .timeout = 60)
{
	stress(PROG("stress"), PRELOAD, 4, 4);
	stress(PROG("stress"), PRELOAD, 2, 2);
}

/*
 * A cache of 16 pages for ~0.6 MiB of files, a dirty limit of two pages and
 * a 1 ms flush interval: reclaim, write-back and writers waiting at the
 * limit all the time, beside the reads.
 */
Test(stress, under_folio_with_a_tiny_cache_and_dirty_limit, .timeout = 60)
{
	stress(PROG("stress"), PRELOAD TINY, 4, 4);
	stress(PROG("stress"), PRELOAD TINY, 8, 2);
}

/* 1 MiB for ~0.6 MiB of files and a log of up to 4 MiB: the reads miss. */
Test(stress, under_folio_with_a_small_cache, .timeout = 60)
{
	stress(PROG("stress"), PRELOAD SMALL, 8, 3);
}

Test(stress, under_folio_fortified, .timeout = 60)
{
	stress(PROG("stress-fortify"), PRELOAD, 4, 3);
}
