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

#endif
