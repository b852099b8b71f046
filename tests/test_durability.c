/*
 * Whole-program tests of durability (shim/guard.c, shim/guardian/): a write
 * that returned survives the death of the process that made it, as with
 * the kernel's page cache, whatever the death.
 *
 * Each test runs tests/prog/killcheck (or a real program) under folio in
 * its own directory, kills it or lets it die, waits for its guardian to
 * finish (this process is a subreaper, so the guardian, orphaned at birth,
 * becomes its child), and then checks natively that every write the
 * program saw return is in the file.  BUILD_DIR comes from the Makefile.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

#define KILLCHECK	PROG_PATH("killcheck")
#define SMALL_CACHE	"64K"

/* The writer's published state (killcheck.c's struct state): ops, pid. */
#define STATE_OPS	8
#define STATE_PID	24

static uint64_t state_word(const char *d, off_t at)
{
	char path[256];
	uint64_t v = 0;
	int fd;

	snprintf(path, sizeof(path), "%s/state", d);
	fd = open(path, O_RDONLY);
	if (fd >= 0) {
		if (pread(fd, &v, sizeof(v), at) != sizeof(v))
			v = 0;
		close(fd);
	}
	return v;
}

static void msleep(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/*
 * Start "killcheck @args..." in @d under folio (tracking *.dat), with
 * stderr to @d/err and the extra variables @env ("A=1 B=2", or "").
 */
static pid_t start(const char *d, const char *env, char *const args[])
{
	pid_t pid = fork();

	cr_assert(pid >= 0);
	if (pid == 0) {
		char *vars = strdup(env), *save = NULL, preload[512], err[256];
		int fd;

		snprintf(err, sizeof(err), "%s/err", d);
		fd = open(err, O_WRONLY | O_CREAT | O_APPEND, 0644);
		if (fd < 0 || dup2(fd, 2) < 0 || chdir(d) < 0)
			_exit(120);
		sanitizer_environment();
		snprintf(preload, sizeof(preload), "%s %s", SANITIZER_RUNTIME, LIB);
		setenv("LD_PRELOAD", preload, 1);
		setenv("FOLIO_FILES", "*.dat", 1);
		for (char *v = strtok_r(vars, " ", &save); v; v = strtok_r(NULL, " ", &save))
			putenv(v);
		execv(args[0], args);
		_exit(121);
	}
	return pid;
}

/* Wait for every descendant left (the guardians), for at most @secs. */
static void wait_for_guardians(int secs)
{
	for (int i = 0; i < secs * 100; i++) {
		pid_t p = waitpid(-1, NULL, WNOHANG);

		if (p < 0 && errno == ECHILD)
			return;
		if (p <= 0)
			msleep(10);
	}
	cr_assert_fail("a guardian is still running after %d s", secs);
}

static void become_subreaper(void)
{
	cr_assert_eq(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
}

/* Let the writer reach @ops returned writes (or end), then send @sig. */
static int kill_after(const char *d, pid_t pid, uint64_t ops, int sig)
{
	int status;

	for (int i = 0; i < 20000 && state_word(d, STATE_OPS) < ops; i++) {
		if (waitpid(pid, &status, WNOHANG) == pid)
			return status;
		usleep(500);
	}
	kill(pid, sig);
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	return status;
}

static bool verified(const char *d, const char *mode)
{
	return sh("%s --verify %s %s/f.dat %s/state 2>> %s/verify.err", KILLCHECK, mode, d, d, d) ==
	       0;
}

/*
 * @runs kills of a killcheck writer in @mode with @threads at random
 * moments (seeded), alternately with the default cache and one so small
 * that pages are evicted and filled again all the time.
 */
static void kill_many(const char *mode, const char *threads, int runs, unsigned int seed)
{
	char *d = new_dir();

	become_subreaper();
	srand(seed);
	for (int run = 0; run < runs; run++) {
		char *args[] = { KILLCHECK, (char *)mode, "f.dat", "state", (char *)threads, NULL };
		const char *env = run % 2 ? "FOLIO_CACHE_SIZE=" SMALL_CACHE : "";
		uint64_t ops = 1 + rand() % 20000;
		int status;

		sh("rm -f %s/f.dat %s/state", d, d);
		status = kill_after(d, start(d, env, args), ops, SIGKILL);
		cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
			  "%s run %d ended otherwise (status %#x), see %s/err", mode, run, status, d);
		wait_for_guardians(30);
		cr_assert(verified(d, mode), "%s, run %d (%s, killed after %llu writes): writes lost, "
			  "see %s/verify.err", mode, run, env, (unsigned long long)ops, d);
	}
	remove_dir(d);
}

Test(durability, sigkill_overwrites_at_random_offsets, .timeout = 300)
{
	kill_many("overwrite", "1", 40, 1);
}

Test(durability, sigkill_overwrites_from_two_threads, .timeout = 300)
{
	kill_many("overwrite", "2", 40, 2);
}

Test(durability, sigkill_appends, .timeout = 300)
{
	kill_many("append", "1", 40, 3);
}

Test(durability, sigkill_extending_writes, .timeout = 300)
{
	kill_many("extend", "1", 40, 4);
}

Test(durability, sigkill_appends_and_truncations, .timeout = 300)
{
	kill_many("truncate", "1", 40, 5);
}

/* The program's own deaths: a fault, abort(), _exit() (no exit handlers). */
static void own_death(const char *how, int want_sig)
{
	char *d = new_dir(), env[256];
	char *args[] = { KILLCHECK, "overwrite", "f.dat", "state", "2", NULL };
	int status;

	become_subreaper();
	/* A sanitizer's runtime would catch the fault and exit instead. */
	snprintf(env, sizeof(env), "KILLCHECK_DIE=3000:%s%s", how,
		 sanitized() ? " ASAN_OPTIONS=verify_asan_link_order=0:detect_leaks=0:handle_segv=0"
			       " UBSAN_OPTIONS=handle_segv=0" : "");
	if (sanitized()) {	/* TSan's options hold spaces: inherited, not in @env */
		char tsan[1024];

		snprintf(tsan, sizeof(tsan), "%s handle_segv=0",
			 getenv("TSAN_OPTIONS") ? getenv("TSAN_OPTIONS") : "");
		setenv("TSAN_OPTIONS", tsan, 1);
	}
	status = kill_after(d, start(d, env, args), UINT64_MAX, 0);
	if (want_sig)
		cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == want_sig,
			  "%s: status %#x", how, status);
	else
		cr_assert(WIFEXITED(status), "%s: status %#x", how, status);
	wait_for_guardians(30);
	cr_assert(verified(d, "overwrite"), "%s: writes lost, see %s/verify.err", how, d);
	remove_dir(d);
}

Test(durability, the_programs_own_fault, .timeout = 60)
{
	own_death("segv", SIGSEGV);
}

Test(durability, the_programs_own_abort, .timeout = 60)
{
	own_death("abort", SIGABRT);
}

Test(durability, the_programs_own_underscore_exit, .timeout = 60)
{
	own_death("exit", 0);
}

/*
 * Killed by the OOM killer: the writer, in a memory cgroup (v1) of 96 MiB,
 * allocates until it is chosen.
 */
Test(durability, the_oom_killer, .timeout = 120)
{
	char *d = new_dir(), cg[128], *oom;
	char *args[] = { KILLCHECK, "overwrite", "f.dat", "state", "2", NULL };
	int status;
	pid_t pid;

	become_subreaper();
	snprintf(cg, sizeof(cg), "/sys/fs/cgroup/memory/folio-test-%d", (int)getpid());
	cr_assert(mkdir(cg, 0755) == 0 || errno == EEXIST, "%s: %s (no memory cgroup here?)", cg,
		  strerror(errno));
	cr_assert_eq(sh("echo %d > %s/memory.limit_in_bytes", 96 << 20, cg), 0);
	pid = start(d, "KILLCHECK_DIE=20000:oom", args);
	cr_assert_eq(sh("echo %d > %s/cgroup.procs", (int)pid, cg), 0);
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "status %#x", status);
	oom = slurp("%s/memory.oom_control", cg);
	cr_assert(strstr(oom, "oom_kill ") && !strstr(oom, "oom_kill 0"), "no OOM kill: %s", oom);
	wait_for_guardians(30);
	sh("rmdir %s", cg);
	cr_assert(verified(d, "overwrite"), "writes lost, see %s/verify.err", d);
	remove_dir(d);
}

/* A fork child that writes has its own guardian (the parent waits). */
Test(durability, a_fork_child_killed, .timeout = 120)
{
	char *d = new_dir();
	char *args[] = { KILLCHECK, "append", "f.dat", "state", "1", NULL };
	pid_t parent, child;
	int status;

	become_subreaper();
	parent = start(d, "KILLCHECK_FORK=1", args);
	for (int i = 0; i < 10000 && (state_word(d, STATE_OPS) < 5000 ||
				      (pid_t)state_word(d, STATE_PID) == parent); i++)
		usleep(500);
	child = (pid_t)state_word(d, STATE_PID);
	cr_assert(child > 0 && child != parent, "no writer child");
	kill(child, SIGKILL);
	cr_assert_eq(waitpid(parent, &status, 0), parent);
	wait_for_guardians(30);
	cr_assert(verified(d, "append"), "writes lost, see %s/verify.err", d);
	remove_dir(d);
}

/* The file renamed, or unlinked, before the death: written in place all the same. */
Test(durability, a_renamed_and_an_unlinked_file, .timeout = 120)
{
	char *d = new_dir(), path[256];
	char *args[] = { KILLCHECK, "append", "f.dat", "state", "1", NULL };
	int status, keep;
	pid_t pid;

	become_subreaper();
	pid = start(d, "", args);
	while (state_word(d, STATE_OPS) < 2000)
		usleep(500);
	cr_assert_eq(sh("mv %s/f.dat %s/moved.dat", d, d), 0);
	status = kill_after(d, pid, state_word(d, STATE_OPS) + 2000, SIGKILL);
	cr_assert(WIFSIGNALED(status));
	wait_for_guardians(30);
	cr_assert_eq(sh("mv %s/moved.dat %s/f.dat", d, d), 0);
	cr_assert(verified(d, "append"), "renamed: writes lost, see %s/verify.err", d);

	sh("rm -f %s/f.dat %s/state", d, d);
	pid = start(d, "", args);
	while (state_word(d, STATE_OPS) < 2000)
		usleep(500);
	snprintf(path, sizeof(path), "%s/f.dat", d);
	keep = open(path, O_RDONLY);
	cr_assert(keep >= 0);
	cr_assert_eq(unlink(path), 0);
	status = kill_after(d, pid, state_word(d, STATE_OPS) + 2000, SIGKILL);
	cr_assert(WIFSIGNALED(status));
	wait_for_guardians(30);
	/* The unlinked inode, through the descriptor kept: copy it back to check. */
	snprintf(path, sizeof(path), "/proc/self/fd/%d", keep);
	cr_assert_eq(sh("cat %s > %s/f.dat", path, d), 0);
	close(keep);
	cr_assert(verified(d, "append"), "unlinked: writes lost, see %s/verify.err", d);
	remove_dir(d);
}

/* The guardian killed first: the host warns, goes on, and a new one guards it. */
Test(durability, the_guardian_killed_first, .timeout = 120)
{
	char *d = new_dir(), *err;
	char *args[] = { KILLCHECK, "overwrite", "f.dat", "state", "1", NULL };
	pid_t pid, guardian = 0;
	int status;

	become_subreaper();
	pid = start(d, "FOLIO_FLUSH_INTERVAL=50", args);
	while (state_word(d, STATE_OPS) < 2000)
		usleep(500);
	for (int i = 0; i < 200 && !guardian; i++) {	/* our child now: find it */
		char cmd[128];
		FILE *p;

		snprintf(cmd, sizeof(cmd), "pgrep -P %d -x folio-guardian", (int)getpid());
		p = popen(cmd, "r");
		if (p && fscanf(p, "%d", &guardian) != 1)
			guardian = 0;
		if (p)
			pclose(p);
		if (!guardian)
			msleep(10);
	}
	cr_assert(guardian > 0, "no guardian found");
	kill(guardian, SIGKILL);
	cr_assert_eq(waitpid(guardian, NULL, 0), guardian);
	for (int i = 0; i < 500; i++) {	/* the flusher's next round notices */
		err = slurp("%s/err", d);
		if (strstr(err, "guardian of this process died"))
			break;
		free(err);
		err = NULL;
		msleep(10);
	}
	cr_assert(err, "the host said nothing about its guardian's death");
	free(err);
	status = kill_after(d, pid, state_word(d, STATE_OPS) + 5000, SIGKILL);
	cr_assert(WIFSIGNALED(status), "the host did not go on (status %#x)", status);
	wait_for_guardians(30);
	cr_assert(verified(d, "overwrite"), "writes lost, see %s/verify.err", d);
	err = slurp("%s/err", d);
	cr_assert(strstr(err, "wrote back"), "no new guardian wrote back: %s", err);
	free(err);
	remove_dir(d);
}

/*
 * No room at recovery: a small ext2 image (folio does not cache tmpfs,
 * whose files are the kernel's page cache already), more accepted than
 * fits.  The guardian tries for FOLIO_RECOVERY_TIMEOUT seconds, then keeps
 * the rest in /dev/shm and says where: nothing is dropped without a word.
 */
Test(durability, no_space_at_recovery_keeps_the_rest, .timeout = 120)
{
	char *d = new_dir(), *err, *kept, name[256], *why;
	char *args[] = { KILLCHECK, "append", "m/f.dat", "state", "1", NULL };
	long long written = -1, held = -1;
	uint64_t ops;
	struct stat sb;
	pid_t pid;

	become_subreaper();
	if (sh("cd %s && truncate -s 2M fs.img && mkfs.ext2 -q -F fs.img && mkdir m && "
	       "mount -o loop fs.img m 2> mount.err", d)) {
		why = slurp("%s/mount.err", d);
		cr_assert_fail("cannot mount an ext2 image: %s", why);
	}
	snprintf(name, sizeof(name), "FOLIO_FILES=%s/m/*.dat", d);
	pid = start(d, strcat(name, " FOLIO_FLUSH_INTERVAL=600000 FOLIO_RECOVERY_TIMEOUT=1"), args);
	kill_after(d, pid, 48000, SIGKILL);	/* 3 MiB accepted */
	ops = state_word(d, STATE_OPS);
	wait_for_guardians(30);
	err = slurp("%s/err", d);
	sh("umount %s/m", d);
	kept = strstr(err, "kept in ");
	cr_assert(kept && sscanf(kept, "kept in %255s", name) == 1, "no word of it: %s", err);
	cr_assert(strstr(err, "No space left on device"), "%s", err);
	cr_assert_eq(stat(name, &sb), 0, "%s: %s", name, strerror(errno));
	cr_assert(sscanf(strstr(err, "wrote back "), "wrote back %lld", &written) == 1);
	cr_assert(sscanf(strstr(err, "; "), "; %lld", &held) == 1);
	/* Every record returned, and maybe the one in flight at the kill. */
	cr_assert((uint64_t)(written + held) / 64 - ops <= 1 && (written + held) % 64 == 0,
		  "written %lld + kept %lld: not the %llu records returned", written, held,
		  (unsigned long long)ops);
	cr_assert(sb.st_size > held, "the recovery file is short");
	unlink(name);
	free(err);
	remove_dir(d);
}

/*
 * sqlite3 in WAL mode, killed in the middle of a stream of transactions:
 * every transaction it answered for (the SELECT after each INSERT comes
 * back only once the INSERT committed) is in the database, which checks
 * out.  SQLite promises that with synchronous=OFF only for a machine that
 * stays up: exactly the promise folio must keep.
 */
static void sqlite_killed(const char *synchronous, unsigned int seed)
{
	char *d = new_dir();

	become_subreaper();
	srand(seed);
	for (int run = 0; run < 4; run++) {
		int status, last = 0, kill_at = 20 + rand() % 600;
		char line[64], *out;
		FILE *in, *res;
		pid_t pid;

		sh("rm -f %s/t.db*", d);
		pid = sqlite3_piped(d, &in, &res);
		fprintf(in, "PRAGMA journal_mode=WAL;\nPRAGMA synchronous=%s;\n"
			"CREATE TABLE t(i INTEGER PRIMARY KEY, v TEXT);\nSELECT 0;\n", synchronous);
		fflush(in);
		while (fgets(line, sizeof(line), res) && strcmp(line, "0\n"))
			;
		for (int i = 1; i <= kill_at; i++) {
			fprintf(in, "INSERT INTO t VALUES(%d, hex(randomblob(200)));\nSELECT %d;\n", i,
				i);
			fflush(in);
			cr_assert(fgets(line, sizeof(line), res), "sqlite3 stopped answering at %d", i);
			cr_assert_eq(atoi(line), i, "sqlite3 said %s", line);
			last = i;
		}
		kill(pid, SIGKILL);
		cr_assert_eq(waitpid(pid, &status, 0), pid);
		fclose(in);
		fclose(res);
		wait_for_guardians(30);
		cr_assert_eq(sh("cd %s && sqlite3 t.db 'PRAGMA integrity_check; "
				"SELECT count(*) FROM t WHERE i <= %d;' > check 2>&1", d, last), 0);
		out = slurp("%s/check", d);
		snprintf(line, sizeof(line), "ok\n%d\n", last);
		cr_assert_str_eq(out, line, "synchronous=%s, killed after %d commits: %s", synchronous,
				 last, out);
		free(out);
	}
	remove_dir(d);
}

Test(durability, sqlite_wal_synchronous_off_killed, .timeout = 120)
{
	sqlite_killed("OFF", 11);
}

Test(durability, sqlite_wal_synchronous_normal_killed, .timeout = 120)
{
	sqlite_killed("NORMAL", 12);
}
