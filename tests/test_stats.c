/*
 * Whole-program tests of the statistics: folio_stats(), the exit report on
 * stderr and as JSON, call sites (FOLIO_CALLERS).
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

/* What jq prints for @filter on @file in @d, without the newline. */
static char *jq(const char *d, const char *file, const char *filter)
{
	char *out;

	cr_assert_eq(sh("cd %s && jq -e -r '%s' %s > jq.out 2>&1", d, filter, file), 0,
		     "jq '%s' %s/%s: %s", filter, d, file, slurp("%s/jq.out", d));
	out = slurp("%s/jq.out", d);
	out[strcspn(out, "\n")] = '\0';
	return out;
}

/* ---- Statistics (FOLIO_STATS) and the API of include/folio.h ---- */

/* folio_stats() counts a known mix of calls exactly; folio_flush() writes back. */
Test(stats, api_counts_a_known_workload, .timeout = 60)
{
	remove_dir(cachecheck("stats", "env FOLIO_FLUSH_INTERVAL=60000", true));
}

/* FOLIO_STATS=PATH: JSON, %p the pid, every tracked file named, consistent. */
Test(stats, json_report_parses_and_adds_up, .timeout = 60)
{
	char *d = new_dir(), *name;
	int pid;

	cr_assert_eq(sh("cd %s && " PRELOAD "FOLIO_FILES='*.dat' FOLIO_FLUSH_INTERVAL=60000 "
			"FOLIO_STATS=$PWD/stats-%%p.json sh -c 'echo $$ > pid; exec %s stats .' "
			"> out 2> err", d, PROG("cachecheck")), 0, "%s", slurp("%s/err", d));
	name = slurp("%s/pid", d);
	pid = atoi(name);
	free(name);
	cr_assert(pid > 0);
	/* The shell tracked nothing: it wrote no report of its own. */
	cr_expect_eq(sh("cd %s && test $(ls stats-*.json | wc -l) = 1", d), 0);
	name = NULL;
	cr_assert(asprintf(&name, "stats-%d.json", pid) > 0);
	cr_expect_eq(atoi(jq(d, name, ".pid")), pid);
	cr_expect_str_eq(jq(d, name, ".total.writes"), "61");	/* + the flush check */
	cr_expect_str_eq(jq(d, name, ".total.reads"), "100");
	cr_expect_str_eq(jq(d, name, ".total.fsyncs"), "2");
	cr_expect_str_eq(jq(d, name, ".total.lock_shared"), "41");	/* + the flush check */
	cr_expect_str_eq(jq(d, name, ".files | length"), "2");
	cr_expect_str_eq(jq(d, name, ".files | map(.name) | sort | join(\",\")"),
			 "./other.dat,./stats.dat");
	cr_expect_str_eq(jq(d, name, ".files[] | select(.name == \"./other.dat\") | "
			 ".counts | [.writes, .write_bytes, .read_hits, .writeback_calls, "
			 ".dirty_peak_bytes] | map(tostring) | join(\" \")"),
			 "30 42960 50 1 40960");
	/* The totals are the sums of the files. */
	cr_expect_str_eq(jq(d, name, "([.files[].counts.write_bytes] | add) == "
			 ".total.write_bytes | tostring"), "true");
	cr_expect_str_eq(jq(d, name, "(.files | map(.counts.writeback_bytes) | add) == "
			 ".total.writeback_bytes | tostring"), "true");
	cr_expect_str_eq(slurp("%s/err", d), "");
	free(name);
	remove_dir(d);
}

/*
 * FOLIO_STATS=1: a summary on the stderr the program started with, also
 * when the program closed it and another file took fd 2 (which must get
 * nothing of folio's).
 */
Test(stats, summary_reaches_a_stderr_the_program_closed, .timeout = 60)
{
	char *d = new_dir(), *err;

	cr_assert_eq(sh("cd %s && " PRELOAD "FOLIO_FILES='*.dat' FOLIO_STATS=1 %s stats . "
			"> out 2> err", d, PROG("cachecheck")), 0, "%s", slurp("%s/err", d));
	err = slurp("%s/err", d);
	cr_expect(strstr(err, "folio: stats of pid ") && strstr(err, ": 2 files\n"), "%s", err);
	cr_expect(strstr(err, "folio:   total: 100 reads (100.0% hits, 9.8 KiB), 61 writes "
			 "(83.9 KiB)"), "%s", err);
	cr_expect(strstr(err, "folio:   ./stats.dat: 50 reads (100.0% hits, 4.9 KiB), 31 writes "
			 "(42.0 KiB); write lock 21 shared, 0 retaken, 10 exclusive"), "%s", err);
	cr_expect(strstr(err, "1 fsync, "), "%s", err);
	free(err);

	/* The program closes fd 2 and opens a file, which gets fd 2. */
	cr_assert_eq(sh("cd %s && " PRELOAD "FOLIO_FILES='*.dat' FOLIO_STATS=1 %s stats-closed . "
			"> out 2> err", d, PROG("cachecheck")), 0, "%s", slurp("%s/err", d));
	err = slurp("%s/err", d);
	cr_expect(strstr(err, "folio: stats of pid ") && strstr(err, "./stats.dat: 50 reads"),
		  "the summary did not reach the original stderr: %s", err);
	free(err);
	cr_expect_str_eq(slurp("%s/fd2.txt", d), "the program's own\n");
	remove_dir(d);
}

/* A report that cannot be written: one line, the program unharmed. */
Test(stats, unwritable_report_path_says_so, .timeout = 60)
{
	char *d = new_dir(), *err;

	cr_assert_eq(sh("cd %s && " PRELOAD "FOLIO_FILES='*.dat' FOLIO_STATS=/nonexistent/s.json "
			"%s stats . > out 2> err", d, PROG("cachecheck")), 0);
	err = slurp("%s/err", d);
	cr_expect(count_lines(err) == 1 && strstr(err, "folio: FOLIO_STATS: cannot write "
						      "/nonexistent/s.json: No such file"), "%s", err);
	cr_expect_str_eq(slurp("%s/out", d), "ok\n");
	free(err);
	/* Never through a symbolic link: a link planted at the path is refused. */
	cr_assert_eq(sh("cd %s && ln -s victim link.json && " PRELOAD "FOLIO_FILES='*.dat' "
			"FOLIO_STATS=$PWD/link.json %s stats . > out 2> err", d,
			PROG("cachecheck")), 0);
	cr_expect_eq(sh("cd %s && test ! -e victim && grep -q 'cannot write' err", d), 0, "%s",
		     slurp("%s/err", d));
	remove_dir(d);
}

/* FOLIO_LOG_FILE: the lines go to the file (created 0600, %p expanded), not stderr. */
Test(stats, log_file_takes_the_lines, .timeout = 60)
{
	char *d = new_dir(), *log;

	cr_assert_eq(sh("cd %s && " PRELOAD "FOLIO_FILES='*.dat' FOLIO_LOG=debug "
			"FOLIO_FLUSH_INTERVAL=60000 FOLIO_LOG_FILE=$PWD/folio-%%p.log %s stats . "
			"> out 2> err", d,
			PROG("cachecheck")), 0);
	cr_expect_str_eq(slurp("%s/err", d), "");
	cr_assert_eq(sh("cd %s && test $(stat -c %%a folio-*.log) = 600 && cat folio-*.log > log",
			d), 0);
	log = slurp("%s/log", d);
	cr_expect(strstr(log, "folio: info: tracking ./stats.dat as fd "), "%s", log);
	cr_expect(strstr(log, "folio: info: not tracking ./stats.txt: no pattern of FOLIO_FILES "
			  "matches it\n"), "%s", log);
	/* debug: each write-back batch; the fsync writes the 10 pages in one. */
	cr_expect(strstr(log, "folio: debug: write-back of ./stats.dat: 10 pages at 0, "
			  "40960 bytes written\n"), "%s", log);
	free(log);
	remove_dir(d);
}

/*
 * FOLIO_CALLERS: the functions that issued the calls are named (the program
 * is built with -rdynamic), with their kind and about their number.
 */
Test(stats, call_sites_are_named, .timeout = 60)
{
	char *d = new_dir(), *err;
	long calls;

	cr_assert_eq(sh("cd %s && " PRELOAD "FOLIO_FILES='*.dat' FOLIO_CALLERS=3 FOLIO_STATS=1 "
			"%s . > out 2> err", d, PROG("callsites")), 0, "%s", slurp("%s/err", d));
	err = slurp("%s/err", d);
	cr_expect(strstr(err, "folio:   call sites (one call in 256 sampled"), "%s", err);
	cr_expect(strstr(err, "folio:     journal_append_record+0x"), "%s", err);
	cr_expect(strstr(err, "(callsites): "), "%s", err);
	cr_expect_eq(count_in(d, "err", "folio:     "), 3, "%s", err);
	free(err);

	cr_assert_eq(sh("cd %s && " PRELOAD "FOLIO_FILES='*.dat' FOLIO_CALLERS=10 "
			"FOLIO_STATS=$PWD/s.json %s . > out 2> err", d, PROG("callsites")), 0);
	cr_expect_str_eq(jq(d, "s.json", ".callers | length"), "4");
	cr_expect_str_eq(jq(d, "s.json", ".callers[0] | [(.site | split(\"+\")[0]), .call, "
			 "(.bytes / .calls | tostring)] | join(\" \")"),
			 "journal_append_record pwrite 100");
	calls = atol(jq(d, "s.json", ".callers[0].calls"));
	cr_expect(calls > 9900 && calls <= 10000, "%ld pwrites estimated", calls);
	cr_expect_str_eq(jq(d, "s.json", ".callers[1] | [(.site | split(\"+\")[0]), .call, "
			 "(.bytes / .calls | tostring)] | join(\" \")"), "read_index pread 16");
	/* The stdio writes are the caller's of fprintf(), not libc's insides. */
	cr_expect_str_eq(jq(d, "s.json", "[.callers[] | select(.call == \"write\") | "
			 ".site | split(\"+\")[0]] | join(\",\")"), "log_lines");
	cr_expect_str_eq(jq(d, "s.json", "[.callers[] | select(.call == \"fsync\") | "
			 ".site | split(\"+\")[0]] | join(\",\")"), "main");
	/* Without FOLIO_CALLERS, no call sites. */
	cr_assert_eq(sh("cd %s && " PRELOAD "FOLIO_FILES='*.dat' FOLIO_STATS=$PWD/s.json "
			"%s . > out 2> err", d, PROG("callsites")), 0);
	cr_expect_str_eq(jq(d, "s.json", "has(\"callers\") | tostring"), "false");
	remove_dir(d);
}

/* A 1 MiB file read through a 64K cache: every page filled once, most evicted. */
Test(stats, fills_and_evictions_are_counted, .timeout = 60)
{
	char *d = new_dir();
	long evicted;

	cr_assert_eq(sh("cd %s && head -c 1048576 /dev/urandom > ev.dat && " PRELOAD
			"FOLIO_FILES='*.dat' FOLIO_CACHE_SIZE=64K FOLIO_STATS=$PWD/s.json "
			"sha256sum ev.dat > out 2> err && sha256sum ev.dat | cmp - out", d), 0,
		     "%s", slurp("%s/err", d));
	cr_expect_str_eq(jq(d, "s.json", ".total | [.read_bytes, .fill_pages] | "
			 "map(tostring) | join(\" \")"), "1048576 256");
	cr_expect_str_eq(jq(d, "s.json", ".total | .read_misses >= 32 and "
			 ".readahead_pages > 0 and .read_hits + .read_misses == .reads | tostring"),
			 "true");
	evicted = atol(jq(d, "s.json", ".files[0].counts.evictions"));
	cr_expect(evicted >= 256 - 16 && evicted <= 256, "%ld pages evicted", evicted);
	cr_expect_str_eq(jq(d, "s.json", ".total.evictions == .files[0].counts.evictions | "
			 "tostring"), "true");
	remove_dir(d);
}

/*
 * FOLIO_CALLERS, FOLIO_STATS=1 and FOLIO_LOG_FILE keep descriptors (libunwind's
 * pipe, stderr's copy, the log): none may take a number the program would
 * get, or be closed and reused under it.
 */
Test(stats, program_fds_are_numbered_as_natively, .timeout = 60)
{
	remove_dir(cachecheck("fdnumbers", "env FOLIO_CALLERS=5 FOLIO_STATS=1 "
			      "FOLIO_LOG_FILE=folio.log", true));
}

/*
 * A handler opening tracked files while the program reads the totals.
 * Under ThreadSanitizer each of the two runs under folio takes 11 to 23 s
 * (measured at load 2-4 on 2 cores; natively well under a second), which
 * passed 60 s beside other tests: not a hang, hence 180 s.
 */
Test(stats, signal_handler_opens_while_totals_are_read, .timeout = 180)
{
	remove_dir(cachecheck("sigopen", "", true));
}

/* FOLIO_STATS=1 in a process that tracks nothing keeps no copy of stderr. */
Test(stats, untracking_process_keeps_no_stderr, .timeout = 60)
{
	/* Under a sanitizer, sleep's runtime opens files of its own while it starts
	 * (TSan: /tmp/tsan.rodata.PID, /proc/PID/maps): list them once it has. */
	char run[200];
	char *d = new_dir();

	snprintf(run, sizeof(run), "sh -c 'sleep 30 < /dev/null > /dev/null 2>&1 & echo $! > pid' "
		 "2>&1 | cat && %sls /proc/$(cat pid)/fd/ | sort", sanitized() ? "sleep 1 && " : "");

	/* The same fds as natively (the test harness leaks some of its own). */
	cr_assert_eq(sh("cd %s && %s > native && kill $(cat pid)", d, run), 0);
	cr_assert_eq(sh("cd %s && " PRELOAD "FOLIO_FILES='*.dat' FOLIO_STATS=1 %s > folio && "
			"kill $(cat pid)", d, run), 0);
	cr_expect_str_eq(slurp("%s/folio", d), slurp("%s/native", d));
	remove_dir(d);
}
