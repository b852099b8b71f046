/*
 * Whole-program tests of the API: every call natively and under folio with
 * the transcripts compared (apicheck, plain and fortified, on several file
 * systems), the fd table against the kernel's (fdcheck), resource limits,
 * and the model checker (fsx).
 *
 * Every test works in its own directory under /tmp and runs commands with
 * /bin/sh; BUILD_DIR and SOURCE_DIR come from the Makefile.
 */
#include <criterion/criterion.h>
#include <ctype.h>
#include <regex.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

/*
 * apicheck natively and under folio in @d: whether everything matched.
 * @cached: whether folio caches files on @d's file system.
 */
static bool apicheck_matches_native(const char *prog, const char *d, bool cached)
{
	bool ok = true;
	char *err;

	/* Expectations, not assertions: the caller unmounts @d's file system. */
	EXPECT(ok, sh("cd %s && mkdir native tracked untracked disabled", d) == 0, "mkdir");
	EXPECT(ok, sh("cd %s && %s native > native.out 2> native.err", d, prog) == 0,
	       "%s failed natively", prog);
	EXPECT(ok, sh("cd %s && " PRELOAD "FOLIO_FILES='*.dat:*.txt' FOLIO_LOG=debug "
		      "%s tracked > tracked.out 2> tracked.err", d, prog) == 0,
	       "%s failed under folio, see %s/tracked.err", prog, d);
	EXPECT(ok, sh("cd %s && " PRELOAD "FOLIO_FILES='*.none' FOLIO_LOG=debug "
		      "%s untracked > untracked.out 2> untracked.err", d, prog) == 0, "untracked run");
	EXPECT(ok, sh("cd %s && " PRELOAD "FOLIO_FILES='*' FOLIO_DISABLE=1 FOLIO_LOG=debug "
		      "%s disabled > disabled.out 2> disabled.err", d, prog) == 0, "disabled run");
	if (!ok)
		return false;
	for (const char *const *run = (const char *const[]){ "tracked", "untracked",
							     "disabled", NULL }; *run; run++) {
		EXPECT(ok, sh("cd %s && diff -u native.out %s.out > %s.diff", d, *run, *run) == 0,
		       "%s: transcript differs from native: %s/%s.diff", prog, d, *run);
		EXPECT(ok, sh("cd %s && diff -r native %s > /dev/null", d, *run) == 0,
		       "%s: files differ from native in %s/%s", prog, d, *run);
	}
	err = slurp("%s/tracked.err", d);
	if (cached) {
		EXPECT(ok, strstr(err, "info: tracking ") != NULL, "no file was tracked");
		EXPECT(ok, strstr(err, "writes took the lock shared") != NULL,
		       "no write went through the cache (%s/tracked.err)", d);
	} else {
		EXPECT(ok, strstr(err, "is not cached") && !strstr(err, "info: tracking "),
		       "files on %s were tracked: %s/tracked.err", d, d);
	}
	free(err);
	err = slurp("%s/untracked.err", d);
	EXPECT(ok, !strstr(err, "info: tracking ") && !strstr(err, "writes took the lock"),
	       "untracked run went through the cache: %s", err);
	free(err);
	err = slurp("%s/disabled.err", d);
	EXPECT(ok, err[0] == '\0', "FOLIO_DISABLE=1 still logged: %s", err);
	free(err);
	return ok;
}

static void check_apicheck(const char *prog)
{
	char *d = new_dir();

	if (apicheck_matches_native(prog, d, true))
		remove_dir(d);
}

/*
 * apicheck on a file system that the shell command @mount mounts on "m" in
 * a new directory and @unmount takes off; @cached: folio caches its files.
 */
static void check_apicheck_mounted(const char *mount, const char *unmount, const char *what,
				   bool cached)
{
	char *d = new_dir(), *m;
	bool ok;

	if (sh("cd %s && mkdir m && { %s; } > why 2>&1", d, mount)) {
		char *why = slurp("%s/why", d);

		remove_dir(d);
		cr_skip_test("cannot mount %s here: %s", what, why);
	}
	cr_assert(asprintf(&m, "%s/m", d) > 0);
	ok = apicheck_matches_native(PROG("apicheck"), m, cached);
	sh("%s %s", unmount, m);
	if (ok)
		remove_dir(d);
	free(m);
}

/* apicheck on a loop-mounted image that @mkfs makes (as root). */
static void check_apicheck_on(const char *mkfs, const char *what)
{
	char mount[256];

	if (geteuid() != 0)
		cr_skip_test("needs root to mount %s", what);
	snprintf(mount, sizeof(mount), "truncate -s 300M fs.img && %s fs.img && "
		 "mount -o loop fs.img m", mkfs);
	check_apicheck_mounted(mount, "umount", what, true);
}

/*
 * The random-operation model checker: every read checked against an
 * in-memory model inside the process, the file compared with the model by
 * this process (not under folio) afterwards.  Natively first, so that a bug
 * in the checker itself shows as such.
 */
static void check_fsx(const char *prog, const char *preload, int seeds, int ops)
{
	char *d = new_dir(), *out;

	for (int seed = 1; seed <= seeds; seed++) {
		int status = sh("cd %s && %s %s . %d %d > out 2>&1", d, preload, prog, seed, ops);

		out = slurp("%s/out", d);
		cr_assert_eq(status, 0, "%s %s seed %d: %s", preload, prog, seed, out);
		cr_assert_eq(strstr(out, "under folio") != NULL, *preload != '\0',
			     "%s %s: the file was %stracked: %s", preload, prog,
			     *preload ? "not " : "", out);
		free(out);
		cr_assert_eq(sh("cmp -s %s/fsx.dat %s/fsx.expected", d, d), 0,
			     "%s %s seed %d: the file differs from the model", preload, prog, seed);
	}
	remove_dir(d);
}

/*
 * ext2 without extents: its largest file is 2 TiB (4 KiB blocks), not
 * ext4's 16 TiB; folio learns it from lseek(2) (it guessed ext4's).
 */
Test(api, every_call_is_invisible_on_ext2, .timeout = 120)
{
	check_apicheck_on("mkfs.ext2 -q -F", "an ext2 image");
}

/*
 * A FUSE file system (bindfs over a directory): folio does not cache its
 * files, so every call passes through, fopen() included (which then has to
 * put an append stream at the end itself, as glibc's fopen() does).
 */
Test(api, every_call_is_invisible_on_fuse, .timeout = 120)
{
	check_apicheck_mounted("mkdir src && bindfs src m", "fusermount -u", "bindfs (FUSE)",
			       false);
}

/*
 * btrfs writes a page's worth of the program's buffer only if all of it can
 * be read: a buffer that runs off into an unmapped page makes EFAULT or a
 * count that stops at a page of the file, not at the bad byte.
 */
Test(api, every_call_is_invisible_on_btrfs, .timeout = 120)
{
	check_apicheck_on("mkfs.btrfs -q -f", "a btrfs image");
}

Test(api, every_call_is_invisible_plain, .timeout = 120)
{
	check_apicheck(PROG("apicheck"));
}

Test(api, every_call_is_invisible_fortified, .timeout = 120)
{
	check_apicheck(PROG("apicheck-fortify"));
}

/*
 * On ramfs, which refuses RWF_NOWAIT reads (EOPNOTSUPP, also for what folio
 * has cached) and takes a write at 2^62 (that page then reaches the kernel
 * when the program lowers RLIMIT_FSIZE, not at a close under the lower
 * limit).  Transcripts only: reading the holes of a 2^62-byte ramfs file
 * whole, as diff -r would, fills memory.
 */
Test(api, every_call_is_invisible_on_ramfs, .timeout = 120)
{
	char *d;
	bool ok = true;

	if (geteuid() != 0)
		cr_skip_test("needs root to mount ramfs");
	d = new_dir();
	if (sh("cd %s && mkdir r && mount -t ramfs ramfs r 2> mount.err", d)) {
		char *why = slurp("%s/mount.err", d);

		remove_dir(d);
		cr_skip_test("cannot mount ramfs here: %s", why);
	}
	EXPECT(ok, sh("cd %s/r && mkdir native tracked && %s native > ../native.out 2>&1", d,
		      PROG("apicheck")) == 0, "apicheck failed natively");
	EXPECT(ok, sh("cd %s/r && " PRELOAD "FOLIO_FILES='*.dat:*.txt' %s tracked > ../tracked.out "
		      "2>&1", d, PROG("apicheck")) == 0, "apicheck failed under folio");
	EXPECT(ok, sh("cd %s && diff -u native.out tracked.out > tracked.diff", d) == 0,
	       "transcript differs from native: %s/tracked.diff", d);
	sh("umount %s/r", d);
	if (ok)
		remove_dir(d);
}

Test(fdtable, follows_the_kernel, .timeout = 120)
{
	char *d = new_dir();

	cr_assert_eq(sh("cd %s && mkdir plain fortify && " PRELOAD "FOLIO_FILES='*.dat' "
			"%s plain > out 2>&1", d, PROG("fdcheck")), 0, "fdcheck: %s",
		     slurp("%s/out", d));
	cr_assert_eq(sh("cd %s && " PRELOAD "FOLIO_FILES='*.dat' %s fortify > out 2>&1", d,
			PROG("fdcheck-fortify")), 0, "fdcheck-fortify: %s", slurp("%s/out", d));
	remove_dir(d);
}

Test(fsx, model_checker_native, .timeout = 120)
{
	check_fsx(PROG("fsx"), "", 2, 3000);
}

Test(fsx, model_checker_under_folio_plain, .timeout = 180)
{
	check_fsx(PROG("fsx"), PRELOAD "FOLIO_FILES='*.dat'", 12, 3000);
}

Test(fsx, model_checker_under_folio_fortified, .timeout = 180)
{
	check_fsx(PROG("fsx-fortify"), PRELOAD "FOLIO_FILES='*.dat'", 12, 3000);
}

/*
 * A cache of 16 pages for files of up to 256 KiB: every write runs out of
 * pages, writes back and reclaims, also in the middle of extending writes.
 */
Test(fsx, model_checker_with_a_tiny_cache, .timeout = 180)
{
	check_fsx(PROG("fsx"), PRELOAD "FOLIO_FILES='*.dat' FOLIO_CACHE_SIZE=64K", 12, 3000);
	check_fsx(PROG("fsx-fortify"), PRELOAD "FOLIO_FILES='*.dat' FOLIO_CACHE_SIZE=128K", 6,
		  3000);
}

/*
 * The same with a dirty limit of two pages and a 1 ms flush interval: the
 * flusher writes back all the time, beside truncations, extending writes
 * and writers waiting at the limit.
 */
Test(fsx, model_checker_with_a_tiny_dirty_limit, .timeout = 180)
{
	check_fsx(PROG("fsx"), PRELOAD "FOLIO_FILES='*.dat' FOLIO_CACHE_SIZE=64K "
		  "FOLIO_DIRTY_LIMIT=8K FOLIO_FLUSH_INTERVAL=1", 12, 3000);
}

/*
 * FOLIO_FLUSH_MODE=dontcache on a file system that refuses RWF_DONTCACHE
 * (tmpfs): plain pwritev() instead, said once, and every byte in the file.
 */
Test(fsx, dontcache_on_a_file_system_that_refuses_it, .timeout = 120)
{
	char *d, *err;

	if (geteuid() != 0)
		cr_skip_test("needs root to mount a tmpfs");
	d = new_dir();
	cr_assert_eq(sh("mkdir %s/t && mount -t tmpfs -o size=16m tmpfs %s/t", d, d), 0);
	for (int seed = 1; seed <= 3; seed++) {
		int status = sh("cd %s/t && " PRELOAD "FOLIO_FILES='*.dat' FOLIO_CACHE_SIZE=128K "
				"FOLIO_DIRTY_LIMIT=16K FOLIO_FLUSH_INTERVAL=2 FOLIO_FLUSH_MODE=dontcache "
				"FOLIO_LOG=info %s . %d 3000 > ../out 2> ../err", d, PROG("fsx"), seed);

		cr_expect_eq(status, 0, "seed %d: %s", seed, slurp("%s/out", d));
		cr_expect_eq(sh("cmp -s %s/t/fsx.dat %s/t/fsx.expected", d, d), 0,
			     "seed %d: the file differs from the model", seed);
		err = slurp("%s/err", d);
		cr_expect_eq(count_in(d, "err", "refuses RWF_DONTCACHE"), 1,
			     "seed %d: not said once that tmpfs refuses it: %s", seed, err);
		free(err);
	}
	sh("umount %s/t", d);
	remove_dir(d);
}

/*
 * ext2 refuses fallocate(2) (EOPNOTSUPP; glibc emulates posix_fallocate
 * with writes): fsx's fallocates fail as natively, the file is the model.
 */
Test(fsx, on_a_file_system_that_refuses_fallocate, .timeout = 120)
{
	char *d;

	if (geteuid() != 0)
		cr_skip_test("needs root to mount an ext2 image");
	d = new_dir();
	if (sh("cd %s && truncate -s 64M e2.img && mkfs.ext2 -q e2.img && mkdir t && "
	       "mount -o loop e2.img t 2> mount.err", d)) {
		char *why = slurp("%s/mount.err", d);

		remove_dir(d);
		cr_skip_test("cannot mount an ext2 image here (no loop device?): %s", why);
	}
	for (int seed = 1; seed <= 4; seed++) {
		const char *env = seed == 1 ? "" : PRELOAD "FOLIO_FILES='*.dat' FOLIO_CACHE_SIZE=128K";
		int status = sh("cd %s/t && %s %s . %d 3000 > ../out 2>&1", d, env, PROG("fsx"), seed);

		cr_expect_eq(status, 0, "seed %d %s: %s", seed, env, slurp("%s/out", d));
		cr_expect_eq(sh("cmp -s %s/t/fsx.dat %s/t/fsx.expected", d, d), 0,
			     "seed %d %s: the file differs from the model", seed, env);
	}
	sh("umount %s/t", d);
	remove_dir(d);
}

/* Every flush mode hands the kernel the same bytes. */
Test(fsx, model_checker_in_every_flush_mode, .timeout = 180)
{
	static const char *const modes[] = { "pwritev", "sync-range", "dontcache" };

	for (size_t i = 0; i < 3; i++) {
		char *preload;

		cr_assert(asprintf(&preload, PRELOAD "FOLIO_FILES='*.dat' FOLIO_CACHE_SIZE=128K "
				   "FOLIO_DIRTY_LIMIT=16K FOLIO_FLUSH_INTERVAL=2 "
				   "FOLIO_FLUSH_MODE=%s", modes[i]) > 0);
		check_fsx(PROG("fsx"), preload, 4, 3000);
		free(preload);
	}
}

Test(fdtable, survives_an_allocator_that_does_file_io, .timeout = 120)
{
	char *d;

	if (sanitized())
		cr_skip_test("a sanitizer's allocator replaces malloc itself");
	d = new_dir();

	cr_assert_eq(sh("cd %s && LD_PRELOAD='%s %s' FOLIO_FILES='*.dat' %s . > out 2>&1", d,
			PROG_PATH("allocator.so"), LIB, PROG("fdcheck")), 0, "fdcheck: %s",
		     slurp("%s/out", d));
	cr_assert_eq(sh("cd %s && LD_PRELOAD='%s %s' FOLIO_FILES='*' sh -c "
			"'seq 1 1000 > a.txt && sort -r a.txt | cat > b.txt' && "
			"[ \"$(sort -r a.txt)\" = \"$(cat b.txt)\" ]", d, PROG_PATH("allocator.so"), LIB), 0);
	remove_dir(d);
}

/*
 * At the fd limit the program gets EMFILE and loses nothing (folio's own
 * descriptor per tracked file counts against the limit: the program gets
 * there sooner than natively, see man 7 folio, LIMITS).
 */
Test(limits, fd_limit_loses_nothing, .timeout = 60)
{
	char *d = cachecheck("fdlimit", "sh -c 'ulimit -n 40 && exec \"$0\" \"$@\"'", true);

	/* Under folio indeed: files were tracked. */
	cr_expect(count_in(d, "folio.out", "info: tracking ./limit0.dat") >= 1, "%s",
		  slurp("%s/folio.out", d));
	remove_dir(d);
}

/* No memory for the arena: one line, pass-through, the program unharmed. */
Test(limits, arena_out_of_memory_passes_through, .timeout = 60)
{
	char *d = new_dir(), *err;

	if (sanitized()) {	/* a sanitizer's shadow memory needs more address space */
		remove_dir(d);
		return;
	}
	cr_assert_eq(sh("cd %s && ulimit -v 400000 && " PRELOAD "FOLIO_FILES='*.dat' "
			"FOLIO_CACHE_SIZE=1G %s bigwrite . > out 2> err", d, PROG("cachecheck")), 0,
		     "%s", slurp("%s/err", d));
	err = slurp("%s/err", d);
	cr_expect(count_lines(err) == 1 && strstr(err, "folio: cannot reserve the 1048576K cache: "
						      "passing files through"), "%s", err);
	free(err);
	cr_expect_str_eq(slurp("%s/out", d), "ok\n");
	remove_dir(d);
}
