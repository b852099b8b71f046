/*
 * Whole-program tests of the crash report (shim/crash.c): a program's own
 * crashes and handlers are untouched under folio; a fault inside folio
 * (the test build's FOLIO_TEST_CRASH switch) is reported, then kills the
 * process with the same signal; the handler is there only when folio is
 * enabled and nobody else handles the signal.
 *
 * Every test works in its own directory under /tmp, runs tests/prog/
 * crashcheck with core dumps off, and looks at how it ended and at its
 * stdout (out) and stderr (err).  BUILD_DIR comes from the Makefile.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "harness.h"

#define FAULTS_LIB	BUILD_DIR "/tests/libfolio-faults.so"
#define CRASHCHECK	BUILD_DIR "/tests/crashcheck"
/*
 * With SANITIZE=..., the sanitizer's runtime is loaded first, told to leave
 * the crash signals alone (else it handles them, and folio stays out).
 */
#define SAN_SIGNALS	"handle_segv=0:handle_sigbus=0:handle_sigfpe=0:handle_sigill=0"
/* TSan's keeps what make test passed (the suppressions) and adds these. */
#define SAN_ENV		"ASAN_OPTIONS=detect_leaks=0:verify_asan_link_order=0:" SAN_SIGNALS " " \
			"UBSAN_OPTIONS=" SAN_SIGNALS " " \
			"TSAN_OPTIONS=\"$TSAN_OPTIONS:" SAN_SIGNALS "\" "
#define UNDER(lib)	"LD_PRELOAD='" SANITIZER_RUNTIME " " lib "' "
#define FOLIO		UNDER(LIB) "FOLIO_FILES='*.dat' "
#define FAULTS		UNDER(FAULTS_LIB) "FOLIO_FILES='*.dat' "

/*
 * Run "crashcheck @args" in @dir with the variables @env (and the preload
 * they name) and core dumps off; stdout to @dir/out, stderr to @dir/err.
 * The shell execs the program, so the status is the program's own.
 */
static int run(const char *dir, const char *env, const char *fmt, ...)
{
	char *args, *cmd;
	va_list ap;
	int status;

	va_start(ap, fmt);
	cr_assert(vasprintf(&args, fmt, ap) >= 0);
	va_end(ap);
	cr_assert(asprintf(&cmd, "cd %s && ulimit -c 0 && exec env " SAN_ENV "%s " CRASHCHECK
			   " %s > out 2> err", dir, env, args) >= 0);
	status = system(cmd);
	cr_assert(status != -1);
	free(cmd);
	free(args);
	return status;
}

static bool killed_by(int status, int sig)
{
	return WIFSIGNALED(status) && WTERMSIG(status) == sig;
}

/* The program's own faults end as natively, and folio says nothing. */
Test(crash, own_fault_is_untouched, .timeout = 60)
{
	static const char *const modes[] = { "own-segv", "own-segv-libc" };

	for (size_t i = 0; i < 2; i++) {
		char *d = new_dir(), *err;
		int status;

		cr_expect(killed_by(run(d, "", "%s", modes[i]), SIGSEGV),
			  "%s: natively not killed by SIGSEGV", modes[i]);
		status = run(d, FOLIO, "%s", modes[i]);
		err = slurp("%s/err", d);
		cr_expect(killed_by(status, SIGSEGV), "%s: status 0x%x under folio: %s", modes[i],
			  status, err);
		cr_expect(!strstr(err, "folio:"), "%s: folio spoke: %s", modes[i], err);
		free(err);
		remove_dir(d);
	}
}

/*
 * Under folio the fault that kills is the program's own, repeated (as
 * strace sees it: the same siginfo), not one folio sent.
 */
Test(crash, own_fault_kills_with_its_own_siginfo, .timeout = 60)
{
	char *d = new_dir(), *trace;
	int status;

	status = run(d, "FOLIO_FILES='*.dat' strace -qq -e trace=none -o trace -E LD_PRELOAD='"
		     SANITIZER_RUNTIME " " LIB "'", "own-segv");
	trace = slurp("%s/trace", d);
	cr_expect(killed_by(status, SIGSEGV), "status 0x%x: %s", status, trace);
	cr_expect(strstr(trace, "si_code=SEGV_MAPERR, si_addr=NULL"), "no fault seen: %s", trace);
	cr_expect(!strstr(trace, "SI_TKILL") && !strstr(trace, "SI_USER"),
		  "the fatal signal was sent, not the fault: %s", trace);
	cr_expect(strstr(trace, "+++ killed by SIGSEGV"), "not killed by the fault: %s", trace);
	free(trace);
	remove_dir(d);
}

/* A handler the program installs replaces folio's and runs. */
Test(crash, own_handler_runs, .timeout = 60)
{
	char *d = new_dir(), *out, *err;
	int status;

	status = run(d, FOLIO, "own-handler");
	out = slurp("%s/out", d);
	err = slurp("%s/err", d);
	cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 3, "status 0x%x: %s%s", status,
		  out, err);
	cr_expect(strstr(out, "crashcheck: own handler ran"), "out: %s", out);
	cr_expect(!strstr(err, "folio:"), "folio spoke: %s", err);
	free(out);
	free(err);
	remove_dir(d);
}

/* A crash signal sent with kill() is not a fault: it still kills. */
Test(crash, sent_signal_still_kills, .timeout = 60)
{
	char *d = new_dir(), *out, *err;
	int status;

	status = run(d, FOLIO, "kill-self");
	out = slurp("%s/out", d);
	err = slurp("%s/err", d);
	cr_expect(killed_by(status, SIGSEGV), "status 0x%x: %s%s", status, out, err);
	cr_expect(!strstr(err, "folio:"), "folio spoke: %s", err);
	free(out);
	free(err);
	remove_dir(d);
}

/*
 * A fault inside folio is reported (signal, the frames named, folio's
 * state), then kills the process with that signal.
 */
Test(crash, folio_fault_is_reported, .timeout = 60)
{
	char *d = new_dir(), *err;
	int status;

	status = run(d, FAULTS "FOLIO_TEST_CRASH=1", "plain");
	err = slurp("%s/err", d);
	cr_expect(killed_by(status, SIGSEGV), "status 0x%x: %s", status, err);
	cr_expect(strstr(err, "folio: crashed with signal 11 (SIGSEGV) at 0x0 - a bug in folio "),
		  "no report: %s", err);
	cr_expect(strstr(err, "folio:   #0 0x") && strstr(err, " crash_test_fault+0x"),
		  "the faulting function is not named: %s", err);
	/* At the process's first tracked open, when folio installs its handler. */
	cr_expect(strstr(err, "folio: state:\nfolio:   crash.dat: size 0, 0 dirty pages\n"
			 "folio:   0 dirty pages in all, limit "), "no state: %s", err);
	free(err);
	remove_dir(d);
}

/* A fault in libc called by folio is folio's too. */
Test(crash, folio_fault_in_libc_is_reported, .timeout = 60)
{
	char *d = new_dir(), *err;
	int status;

	status = run(d, FAULTS "FOLIO_TEST_CRASH=libc", "plain");
	err = slurp("%s/err", d);
	cr_expect(killed_by(status, SIGSEGV), "status 0x%x: %s", status, err);
	cr_expect(strstr(err, "folio: crashed with signal 11 (SIGSEGV) at 0x0 - a bug in folio "),
		  "no report: %s", err);
	cr_expect(strstr(err, "folio:   #1 0x") && strstr(err, " crash_test_fault_in_libc+0x"),
		  "folio's caller is not named: %s", err);
	free(err);
	remove_dir(d);
}

/*
 * A fault on the cache's side of a copy of the program's buffer is a bug in
 * folio, reported as one: not taken for a bad buffer and answered EFAULT.
 */
Test(crash, fault_in_page_memory_is_not_a_bad_buffer, .timeout = 60)
{
	char *d = new_dir(), *out, *err;
	int status;

	/* Without the fault, the copy stops at the bad page, as natively. */
	status = run(d, FAULTS, "half-bad");
	out = slurp("%s/out", d);
	cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0 && !strcmp(out, "pwrite: 2048\n"),
		  "status 0x%x: %s", status, out);
	free(out);
	status = run(d, FAULTS "FOLIO_TEST_CRASH=arena", "half-bad");
	out = slurp("%s/out", d);
	err = slurp("%s/err", d);
	cr_expect(killed_by(status, SIGSEGV), "status 0x%x: %s%s", status, out, err);
	cr_expect(strstr(err, "folio: crashed with signal 11 (SIGSEGV) at 0x"), "no report: %s",
		  err);
	free(out);
	free(err);
	remove_dir(d);
}

/* The report lists the files folio holds, with their dirty pages. */
Test(crash, report_lists_dirty_files, .timeout = 60)
{
	char *d = new_dir(), *out, *err;
	int status;

	status = run(d, FAULTS "FOLIO_FLUSH_INTERVAL=3600000 FOLIO_TEST_CRASH=crash.now",
		     "dirty-wait crash.now");
	out = slurp("%s/out", d);
	err = slurp("%s/err", d);
	cr_expect(killed_by(status, SIGSEGV), "status 0x%x: %s%s", status, out, err);
	cr_expect(strstr(err, " crash_test_fault+0x") && strstr(err, " crash_test_wait+0x"),
		  "the faulting thread's frames are not named: %s", err);
	cr_expect(strstr(err, "crash.dat: size 10000, 3 dirty pages\n"), "crash.dat not listed: %s",
		  err);
	cr_expect(strstr(err, "folio:   3 dirty pages in all"), "no dirty total: %s", err);
	free(out);
	free(err);
	remove_dir(d);
}

/*
 * The handler is there only when folio is enabled and the signal had its
 * default action: folio disabled, or a signal the parent left ignored,
 * keep what they had.
 */
Test(crash, handler_only_when_enabled, .timeout = 60)
{
	static const char handlers[] =
		"SIGSEGV: handler siginfo onstack\n"
		"SIGBUS: handler siginfo onstack\n"
		"SIGILL: handler siginfo onstack\n"
		"SIGFPE: handler siginfo onstack\n";
	static const char defaults[] =
		"SIGSEGV: default\nSIGBUS: default\nSIGILL: default\nSIGFPE: default\n";
	static const char after[] = "after a tracked open:\n";
	/* Not before the first tracked open: a runtime that sets up its own
	 * handlers only over the default action (Rust's std) still does. */
	static const struct {
		const char *env, *before, *after;
	} runs[] = {
		{ UNDER(LIB), defaults, defaults },
		{ FOLIO "FOLIO_DISABLE=1", defaults, defaults },
		{ FOLIO "FOLIO_CACHE_SIZE=bad", defaults, defaults },
		{ FOLIO, defaults, handlers },
	};
	char *d = new_dir(), *out;

	for (size_t i = 0; i < sizeof(runs) / sizeof(runs[0]); i++) {
		char *expect;

		cr_expect_eq(run(d, runs[i].env, "disposition"), 0, "%s", runs[i].env);
		out = slurp("%s/out", d);
		cr_assert(asprintf(&expect, "%s%s%s", runs[i].before, after, runs[i].after) > 0);
		cr_expect_str_eq(out, expect, "with %s", runs[i].env);
		free(expect);
		free(out);
	}
	/* exec keeps an ignored disposition; so does folio. */
	cr_assert(asprintf(&out, "cd %s && trap '' SEGV && exec env " SAN_ENV FOLIO CRASHCHECK
			   " disposition > out 2> err", d) >= 0);
	cr_expect_eq(system(out), 0);
	free(out);
	out = slurp("%s/out", d);
	cr_expect(strstr(out, "after a tracked open:\nSIGSEGV: ignored\nSIGBUS: handler "),
		  "ignored SIGSEGV: %s", out);
	free(out);
	remove_dir(d);
}
