/*
 * Whole-program tests of write-back: errors reaching each open file once,
 * the dirty limit, ENOSPC and EDQUOT, lingering data, the flusher's life,
 * exec and exit (tests/prog/cachecheck under the fault-injection build).
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
 * Run "@prog @check ." in @d under the test build with the write-back fault
 * switch (@d/fault) and the extra variables @env; stdout to @d/out, stderr
 * to @d/err.  Returns the exit status.
 */
static int under_faults(const char *d, const char *env, const char *prog, const char *check)
{
	return sh("cd %s && LD_PRELOAD='" SANITIZER_RUNTIME " " PROG_PATH("libfolio-faults.so") "' "
		  "FOLIO_FILES='*.dat' FOLIO_TEST_FAULTS=%s/fault %s %s %s . > out 2> err", d, d,
		  env, prog, check);
}

/* The dirty peak a run under FOLIO_LOG=debug reported at exit, in bytes. */
static unsigned long dirty_peak(const char *d)
{
	char *out = slurp("%s/folio.out", d), *p = strstr(out, "dirty peak ");
	unsigned long peak = 0;

	cr_assert(p && sscanf(p, "dirty peak %lu bytes", &peak) == 1, "%s", out);
	free(out);
	return peak;
}

/*
 * glibc carves a thread's static TLS out of its stack and accepts a stack
 * size that leaves 2 KiB: a program with 248 KiB of __thread data crashed
 * folio's flusher (256 KiB asked) at its first log line.
 */
Test(writeback, flusher_starts_beside_a_large_static_tls, .timeout = 60)
{
	static const char *const sizes[] = { "244", "248", "252" };
	char *d = new_dir(), *out;

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		int status = sh("cd %s && " PRELOAD "FOLIO_FILES='*.dat' FOLIO_LOG=debug "
				"FOLIO_FLUSH_INTERVAL=10 %s-%s %s > out 2> err", d,
				PROG("bigtls"), sizes[i], d);

		out = slurp("%s/out", d);
		cr_expect(status == 0 && !strcmp(out, "ok\n"), "%s KiB of TLS: status %d, %s%s",
			  sizes[i], status, out, slurp("%s/err", d));
		free(out);
	}
	remove_dir(d);
}

/*
 * Injected write-back errors (the test build's switch): each open file
 * description hears of an error once, at its fsync or close, also one
 * opened after an error nobody was told of; writers at the dirty limit get
 * the error instead of waiting; data that cannot be written is named at
 * exit.
 */
Test(writeback, errors_reach_each_open_file_once, .timeout = 60)
{
	const char *const progs[] = { PROG("cachecheck"), PROG("cachecheck-fortify") };

	for (size_t i = 0; i < 2; i++) {
		char *d = new_dir(), *err;

		cr_expect_eq(under_faults(d, "FOLIO_FLUSH_INTERVAL=50 FOLIO_DIRTY_LIMIT=64K",
					  progs[i], "errors"), 0, "%s: %s", progs[i],
			     slurp("%s/err", d));
		err = slurp("%s/err", d);
		cr_expect(strstr(err, "folio: ./lost.dat: 5000 bytes could not be written back "
				 "(Input/output error)"), "no word of the lost data: %s", err);
		free(err);
		remove_dir(d);
	}
}

/* EDQUOT, injected: these kernels have quotas for no file system. */
Test(writeback, over_quota_writes_needing_space_fail_until_there_is_room, .timeout = 60)
{
	char *d = new_dir();

	cr_expect_eq(under_faults(d, "FOLIO_FLUSH_INTERVAL=60000", PROG("cachecheck"), "quota"),
		     0, "%s", slurp("%s/err", d));
	remove_dir(d);
}

/*
 * Data whose write-back fails at the last close is not dropped: the file's
 * state stays until the flusher writes it, and a new open finds it.
 */
Test(writeback, data_outlives_a_failed_last_close, .timeout = 60)
{
	char *d = new_dir();

	cr_expect_eq(under_faults(d, "FOLIO_FLUSH_INTERVAL=50", PROG("cachecheck"), "linger"), 0,
		     "%s", slurp("%s/err", d));
	remove_dir(d);
}

/* An exec with data that cannot be written says so: the new program loses it. */
Test(writeback, exec_names_data_it_loses, .timeout = 60)
{
	char *d = new_dir(), *err;

	cr_expect_eq(under_faults(d, "", PROG("cachecheck"), "execlost"), 0, "%s",
		     slurp("%s/err", d));
	err = slurp("%s/err", d);
	cr_expect(strstr(err, "folio: ./execlost.dat: 3000 bytes could not be written back "
			 "(Input/output error) before exec"), "%s", err);
	free(err);
	remove_dir(d);
}

/* 4 writers, a 256K limit: the dirty pages never pass it by more than a batch. */
Test(writeback, dirty_limit_holds_under_four_writers, .timeout = 120)
{
	char *d = cachecheck("dirtylimit", "FOLIO_CACHE_SIZE=4M FOLIO_DIRTY_LIMIT=256K", true);
	unsigned long peak = dirty_peak(d);

	cr_expect_leq(peak, (256ul << 10) + (1ul << 20), "dirty peak %lu bytes", peak);
	cr_expect_geq(peak, 128ul << 10, "16 MiB of writes never dirtied 128K?");
	remove_dir(d);
}

/* One 1 MiB write under a 64K limit waits page by page. */
Test(writeback, one_long_write_keeps_the_dirty_limit, .timeout = 60)
{
	char *d = cachecheck("bigwrite", "FOLIO_CACHE_SIZE=8M FOLIO_DIRTY_LIMIT=64K", false);
	unsigned long peak = dirty_peak(d);

	cr_expect_leq(peak, 128ul << 10, "dirty peak %lu bytes", peak);
	remove_dir(d);
}

/* 64 MiB in 64 KiB write()s reach the kernel in at most 300 write calls. */
Test(writeback, sequential_writes_are_batched, .timeout = 60)
{
	char *d = new_dir();

	/* The calls on seq.dat (-y names each fd's file): a TEST_WRAPPER such
	 * as valgrind makes writes of its own. */
	cr_assert_eq(sh("cd %s && strace -f -y -o trace -e trace=write,pwrite64,pwritev,pwritev2 "
			"env " PRELOAD "FOLIO_FILES='*.dat' %s seqwrite . > out", d,
			PROG("cachecheck")), 0, "%s", slurp("%s/out", d));
	cr_assert_eq(sh("cd %s && test $(stat -c %%s seq.dat) -eq 67108864 && "
			"test $(tr -d s < seq.dat | wc -c) -eq 0", d), 0, "seq.dat is not 64 MiB of s");
	cr_expect_eq(sh("cd %s && grep -c 'seq\\.dat>' trace > count && "
			"test $(cat count) -gt 0 && test $(cat count) -le 300", d), 0,
		     "%s write calls on seq.dat", slurp("%s/count", d));
	remove_dir(d);
}

/*
 * What a killed writer loses: at most about FOLIO_FLUSH_INTERVAL of writes.
 * A writer stamps each 64-byte record with the time; 1.9 s later it gets
 * SIGKILL; the kernel's file must hold a prefix of the records reaching to
 * within 200 ms (the interval) plus 500 ms (the flusher's pass, a loaded
 * machine) of the kill.  (With the default 1 s interval the newest record
 * would be some 900 ms old.)
 */
Test(writeback, sigkill_loses_at_most_the_flush_interval, .timeout = 60)
{
	char *d = new_dir(), *cmd, log[4096];
	uint64_t rec[8], killed_at, newest = 0, n = 0;
	struct timespec ts;
	int status;
	pid_t pid;
	FILE *f;

	cr_assert(asprintf(&cmd, "cd %s && exec env " PRELOAD "FOLIO_FILES='*.dat' "
			   "FOLIO_FLUSH_INTERVAL=200 %s stream .", d, PROG_PATH("cachecheck")) > 0);
	sanitizer_environment();
	pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	usleep(1900 * 1000);
	clock_gettime(CLOCK_MONOTONIC, &ts);
	killed_at = ts.tv_sec * 1000ull + ts.tv_nsec / 1000000;
	kill(pid, SIGKILL);
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "the writer ended early");
	snprintf(log, sizeof(log), "%s/log.dat", d);
	f = fopen(log, "r");
	cr_assert(f, "no log.dat");
	while (fread(rec, sizeof(rec), 1, f) == 1) {
		cr_assert_eq(rec[0], n, "record %lu holds %lu: not a prefix", (unsigned long)n,
			     (unsigned long)rec[0]);
		newest = rec[1];
		n++;
	}
	fclose(f);
	cr_assert_gt(n, 0, "nothing of 1.9 s of writes reached the kernel");
	cr_expect_leq(killed_at - newest, 700, "the newest record in the kernel is %lu ms older "
		      "than the kill", (unsigned long)(killed_at - newest));
	free(cmd);
	remove_dir(d);
}

/*
 * fork() while two threads write and the flusher runs every millisecond:
 * no deadlock, and each child caches (and writes back) a file of its own.
 */
Test(writeback, fork_while_the_flusher_runs, .timeout = 120)
{
	remove_dir(cachecheck("forks", "FOLIO_FLUSH_INTERVAL=1", true));
}

/*
 * A writer waiting at the dirty limit in the middle of a long write holds
 * its file's lock: sync() and exit() must not wait for that lock while the
 * flusher waits for them.
 */
Test(writeback, sync_and_exit_beside_a_writer_at_the_limit, .timeout = 120)
{
	char *d = new_dir();

	cr_expect_eq(sh("cd %s && " PRELOAD "FOLIO_FILES='*.dat' FOLIO_DIRTY_LIMIT=64K "
			"timeout 60 %s syncwrite . > out 2>&1", d, PROG("cachecheck")), 0, "%s",
		     slurp("%s/out", d));
	remove_dir(d);
}

/* The flusher leaves after 5 s with nothing dirty or open for writing, and comes back. */
Test(writeback, the_flusher_leaves_when_idle, .timeout = 120)
{
	remove_dir(cachecheck("idle", "", true));
}
