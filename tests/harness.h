/*
 * harness.h - what the whole-program test suites share: running shell
 * commands, reading files, a directory per test.  Included by one suite
 * per binary (all static).  BUILD_DIR, SOURCE_DIR and SANITIZER_RUNTIME
 * come from the Makefile.
 */
#ifndef FOLIO_TEST_HARNESS_H
#define FOLIO_TEST_HARNESS_H

#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define LIB		BUILD_DIR "/libfolio.so"
/* With SANITIZE=..., the sanitizer's runtime must be loaded first. */
#define PRELOAD		"LD_PRELOAD='" SANITIZER_RUNTIME " " LIB "' "

/*
 * Under a sanitizer some commands preload folio alone (the wrapper does):
 * let its runtime come later, and do not count the tools' own leaks.
 */
static bool sanitized(void)
{
	return SANITIZER_RUNTIME[0] != '\0';
}

static void sanitizer_environment(void)
{
	if (sanitized())
		setenv("ASAN_OPTIONS", "verify_asan_link_order=0:detect_leaks=0", 1);
}

/* Run a shell command; returns its exit status (128+n if killed by n). */
static int sh(const char *fmt, ...)
{
	char *cmd;
	va_list ap;
	int status;

	va_start(ap, fmt);
	cr_assert(vasprintf(&cmd, fmt, ap) >= 0);
	va_end(ap);
	sanitizer_environment();
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

/* cr_expect() that also remembers a failure in @ok, to keep the evidence. */
#define EXPECT(ok, cond, ...) \
	do { \
		bool c_ = (cond); \
		cr_expect(c_, __VA_ARGS__); \
		ok &= c_; \
	} while (0)

/* ---- What the suites of folio's own test programs share ---- */

#define PROG_PATH(name)	BUILD_DIR "/tests/" name
/* A test program as a command: behind $TEST_WRAPPER if set (see prog()). */
#define PROG(name)	prog(PROG_PATH(name))

/*
 * @path, or "$TEST_WRAPPER @path" when that is set: make check-valgrind
 * runs the test programs under valgrind so.  Commands that count the
 * program's system calls or time it use PROG_PATH() instead.  No single
 * quotes in the wrapper: some commands are quoted for sh -c.
 */
static __attribute__((unused)) const char *prog(const char *path)
{
	const char *wrapper = getenv("TEST_WRAPPER");
	char *cmd;

	if (!wrapper || !*wrapper)
		return path;
	cr_assert(asprintf(&cmd, "%s %s", wrapper, path) > 0);
	return cmd;	/* a few per test: not freed */
}

static __attribute__((unused)) int count_lines(const char *s)
{
	int n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}

/* Run "cachecheck CHECK" in a new directory, natively and under folio. */
static __attribute__((unused)) char *cachecheck(const char *check, const char *prefix, bool native)
{
	char *d = new_dir();

	if (native)
		cr_assert_eq(sh("cd %s && chmod 777 . && %s %s %s . > native.out 2>&1", d, prefix,
				PROG("cachecheck"), check), 0, "natively: %s",
			     slurp("%s/native.out", d));
	cr_assert_eq(sh("cd %s && chmod 777 . && " PRELOAD "FOLIO_FILES='*.dat' FOLIO_LOG=debug "
			"%s %s %s . > folio.out 2>&1", d, prefix, PROG("cachecheck"), check), 0,
		     "under folio: %s", slurp("%s/folio.out", d));
	cr_assert_eq(sh("cd %s && " PRELOAD "FOLIO_FILES='*.dat' %s %s %s . > fortify.out 2>&1", d,
			prefix, PROG("cachecheck-fortify"), check), 0, "fortified, under folio: %s",
		     slurp("%s/fortify.out", d));
	return d;
}

/* How many lines of @file in @d contain @what. */
static __attribute__((unused)) int count_in(const char *d, const char *file, const char *what)
{
	char *text = slurp("%s/%s", d, file);
	int n = 0;

	for (const char *p = text; (p = strstr(p, what)); p++)
		n++;
	free(text);
	return n;
}

/*
 * sqlite3 on @d/t.db under folio (the database, its WAL, index and journal
 * tracked), its stdin and stdout as @in and @out: a statement written and
 * flushed is answered line by line.  No other descriptor is inherited, so
 * closing @in is its end of input.  Returns its pid.
 */
static __attribute__((unused)) pid_t sqlite3_piped(const char *d, FILE **in, FILE **out)
{
	int to[2], from[2];
	pid_t pid;

	cr_assert_eq(pipe(to), 0);
	cr_assert_eq(pipe(from), 0);
	pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		char preload[512];

		dup2(to[0], 0);
		dup2(from[1], 1);
		closefrom(3);
		if (chdir(d) < 0)
			_exit(120);
		sanitizer_environment();
		snprintf(preload, sizeof(preload), "%s %s", SANITIZER_RUNTIME, LIB);
		setenv("LD_PRELOAD", preload, 1);
		setenv("FOLIO_FILES", "*.db:*.db-wal:*.db-shm:*.db-journal", 1);
		execlp("sqlite3", "sqlite3", "t.db", (char *)NULL);
		_exit(121);
	}
	close(to[0]);
	close(from[1]);
	*in = fdopen(to[1], "w");
	*out = fdopen(from[0], "r");
	cr_assert(*in && *out);
	return pid;
}

#endif
