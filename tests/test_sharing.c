/*
 * Whole-program tests of files that several processes hold (shim/share.c):
 * a read in any process returns data at least as new as every write that
 * returned, in any process, before it began, however the processes
 * coordinate.  tests/prog/sharecheck runs two processes with one file open
 * each; sqlite3 runs as several processes on one database in WAL mode.
 * BUILD_DIR comes from the Makefile.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

/* sharecheck @how in a new directory under folio (@env more variables). */
static void sharecheck(const char *how, const char *env)
{
	char *d = new_dir(), *out;
	int status;

	status = sh("cd %s && " PRELOAD "FOLIO_FILES='*.dat' %s %s %s s.dat 100000 > out 2> err", d,
		    env, PROG("sharecheck"), how);
	out = slurp("%s/out", d);
	cr_assert_eq(status, 0, "%s: %s (see %s/err)", how, out, d);
	cr_assert(strstr(out, " 0 stale reads"), "%s", out);
	free(out);
	remove_dir(d);
}

Test(sharing, a_counter_in_shared_memory, .timeout = 120)
{
	sharecheck("shm", "");
}

Test(sharing, a_pipe, .timeout = 120)
{
	sharecheck("pipe", "");
}

Test(sharing, writers_in_both_processes, .timeout = 120)
{
	sharecheck("both", "");
}

Test(sharing, writers_in_both_processes_with_a_small_cache, .timeout = 120)
{
	sharecheck("both", "FOLIO_CACHE_SIZE=64K");
}

/* The one writer is idle: its flusher thread answers the opener. */
Test(sharing, an_idle_writers_pages_reach_the_kernel_before_the_open_returns, .timeout = 60)
{
	sharecheck("idle", "");
}

/* Killed holding dirty pages: the open waits for its guardian's write-back. */
Test(sharing, a_killed_holder, .timeout = 60)
{
	cr_assert_eq(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
	sharecheck("kill", "");
}

/* Stopped: the open goes on after a bounded wait; nothing is lost. */
Test(sharing, a_stopped_holder, .timeout = 60)
{
	char *d = new_dir(), *out, *err;
	double took = -1;

	cr_assert_eq(sh("cd %s && " PRELOAD "FOLIO_FILES='*.dat' FOLIO_LOG=info %s stop s.dat > out 2> err", d,
			PROG("sharecheck")), 0, "see %s", d);
	out = slurp("%s/out", d);
	err = slurp("%s/err", d);
	cr_assert(strstr(out, "stop: 0 stale reads"), "%s", out);
	cr_assert(sscanf(strstr(out, "took "), "took %lf", &took) == 1 && took < 8, "%s", out);
	cr_assert(strstr(err, "did not write its pages of a file back"), "%s", err);
	free(out);
	free(err);
	remove_dir(d);
}

/*
 * sqlite3 in WAL mode, two processes on one database (they signal through
 * the mapped -shm file, not file locks alone): each commit of one is seen
 * by the next transaction of the other, turn about.
 */
Test(sharing, sqlite_wal_two_processes, .timeout = 120)
{
	char *d = new_dir();
	FILE *in[2], *res[2];
	pid_t pid[2];

	for (int p = 0; p < 2; p++)
		pid[p] = sqlite3_piped(d, &in[p], &res[p]);
	fprintf(in[0], "PRAGMA journal_mode=WAL;\nCREATE TABLE t(i INTEGER PRIMARY KEY, p INT);\n"
		"SELECT 0;\n");
	fflush(in[0]);
	for (char line[64]; fgets(line, sizeof(line), res[0]) && strcmp(line, "0\n");)
		;
	for (int i = 1; i <= 400; i++) {
		int w = i % 2, r = !w;
		char line[64];

		fprintf(in[w], "INSERT INTO t VALUES(%d, %d);\nSELECT %d;\n", i, w, i);
		fflush(in[w]);
		cr_assert(fgets(line, sizeof(line), res[w]), "writer %d stopped at %d", w, i);
		cr_assert_eq(atoi(line), i, "%s", line);
		fprintf(in[r], "SELECT count(*), max(i) FROM t;\n");
		fflush(in[r]);
		cr_assert(fgets(line, sizeof(line), res[r]), "reader %d stopped at %d", r, i);
		snprintf(line + 32, 32, "%d|%d\n", i, i);
		cr_assert_str_eq(line, line + 32, "commit %d of process %d unseen by the other", i,
				 w);
	}
	for (int p = 0; p < 2; p++)
		fclose(in[p]);
	for (int p = 0; p < 2; p++) {
		int status;

		fclose(res[p]);
		cr_assert_eq(waitpid(pid[p], &status, 0), pid[p]);
	}
	cr_assert_eq(sh("cd %s && sqlite3 t.db 'PRAGMA integrity_check;' > check 2>&1", d), 0);
	cr_assert_str_eq(slurp("%s/check", d), "ok\n");
	remove_dir(d);
}
