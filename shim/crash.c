/*
 * crash.c - see crash.h.  x86-64 only, like the libunwind entry points in
 * unwind.c.
 *
 * A fault in one of folio's copies of the program's buffers is not a crash:
 * uaccess_fixup() makes the copy return short, and the call fails with
 * EFAULT as natively (see uaccess.h).  Anything else resets the disposition
 * to SIG_DFL first thing: a second fault of the same signal anywhere
 * (inside the handler, or in another thread while a report is being
 * written) kills the process at once, and another crash signal finds
 * `crashing` set.  (Not SA_RESETHAND: a bad buffer must find the handler
 * still there the next time.)  The four
 * signals are blocked while it runs (sa_mask), never longer; SA_ONSTACK
 * uses the thread's alternate stack if the program set one up (folio sets
 * none: a stack overflow inside folio ends without a report, as natively).
 * Not under valgrind (3.19): for a handler with SA_ONSTACK it never grows
 * the main thread's stack to hold the signal frame, alternate stack or
 * not (ML_(sf_maybe_extend_stack) looks at the flag only), so a bad
 * buffer met a few KiB from the top of the stack killed the program ("Can't
 * extend stack ... during signal delivery"); a 20-line program with no
 * folio in it dies the same way at 37 of 128 stack depths.
 */
#include <link.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <ucontext.h>

#include "compiler.h"
#include "crash.h"
#include "log.h"
#include "page.h"
#include "real.h"
#include "uaccess.h"
#include "unwind.h"
#include "writeback.h"

/* One line of the report, formatted into line[] and written where folio's
 * messages go (stderr or FOLIO_LOG_FILE). */
#define SAY(...) \
	write_formatted(report_fd(), line, sizeof(line), snprintf(line, sizeof(line), __VA_ARGS__))

static int report_fd(void)
{
	int fd = log_file_fd();

	return fd >= 0 ? fd : STDERR_FILENO;
}

/*
 * Whose fault: the faulting instruction and the callers above it, enough
 * to see through a libc string function, a PLT stub and a helper of
 * libc's or liburcu's that folio called.
 */
#define CRASH_OWNER_FRAMES	4
#define CRASH_REPORT_FRAMES	32

static const int crash_signals[] = { SIGSEGV, SIGBUS, SIGILL, SIGFPE };
static const char *const crash_signal_names[] = { "SIGSEGV", "SIGBUS", "SIGILL", "SIGFPE" };

/* libfolio.so's executable segment, found once at install time. */
static uintptr_t text_start, text_end;
/* Set by the first thread into the handler, never cleared: the process is ending. */
static bool crashing;

static bool in_folio(void *ip)
{
	return (uintptr_t)ip - text_start < text_end - text_start;
}

static void *interrupted_pc(void *uc)
{
	return (void *)((ucontext_t *)uc)->uc_mcontext.gregs[REG_RIP];
}

/* Out of line, as report(): see crash_handler(). */
static __attribute__((noinline, cold)) bool folio_fault(void *uc)
{
	void *ips[CRASH_OWNER_FRAMES];
	int n;

	/*
	 * The common case needs no unwinding.  Unwinding a stack the program
	 * corrupted may fault in turn: that second fault kills the process with
	 * the same signal (SIG_DFL and blocked), only its core shows the handler.
	 */
	if (in_folio(interrupted_pc(uc)))
		return true;
	n = unwind_backtrace_context(uc, ips, CRASH_OWNER_FRAMES);
	for (int i = 1; i < n; i++)
		if (in_folio(ips[i]))
			return true;
	return false;
}

static const char *signal_name(int sig)
{
	for (size_t i = 0; i < ARRAY_SIZE(crash_signals); i++)
		if (crash_signals[i] == sig)
			return crash_signal_names[i];
	return "?";
}

static __attribute__((noinline, cold)) void report(int sig, const siginfo_t *info, void *uc)
{
	void *ips[CRASH_REPORT_FRAMES];
	char line[512], name[256];
	int n;

	SAY("folio: crashed with signal %d (%s) at 0x%lx - a bug in folio " FOLIO_VERSION
	    "; backtrace:\n", sig, signal_name(sig), (unsigned long)(uintptr_t)info->si_addr);
	n = unwind_backtrace_context(uc, ips, ARRAY_SIZE(ips));
	if (!n) {
		ips[0] = interrupted_pc(uc);
		n = 1;
	}
	/*
	 * unwind_name() allocates nothing and reads the ELF files with plain
	 * system calls; only dladdr1() takes the loader's lock, held by another
	 * thread at most for a dlopen or dlclose.
	 */
	for (int i = 0; i < n; i++) {
		unwind_name(ips[i], name, sizeof(name));
		SAY("folio:   #%d 0x%lx %s\n", i, (unsigned long)(uintptr_t)ips[i], name);
	}
	SAY("folio: state:\n");
	writeback_crash_state(report_fd());
}

/*
 * Its common case, a program's bad buffer met by folio's copy, runs on the
 * program's stack (or alternate stack) in ~100 bytes beside the kernel's
 * frame: the report's ~1.3 KB of buffers are in report() and folio_fault(),
 * out of line.
 */
static void crash_handler(int sig, siginfo_t *info, void *uc)
{
	struct sigaction dfl = { .sa_handler = SIG_DFL };
	int saved_errno = errno;

	if ((sig == SIGSEGV || sig == SIGBUS) && info->si_code > 0 &&
	    !page_store_holds(info->si_addr) && uaccess_fixup(uc))
		return;
	sigemptyset(&dfl.sa_mask);
	sigaction(sig, &dfl, NULL);
	/*
	 * A signal that was sent (kill, raise, sigqueue: si_code <= 0), or a
	 * machine check reported after the fact, is not repeated by returning:
	 * send it again, to arrive with SIG_DFL once the handler returns.
	 * Any other fault repeats itself when the instruction runs again.
	 */
	if (info->si_code <= 0 || (sig == SIGBUS && info->si_code == BUS_MCEERR_AO))
		raise(sig);
	else if (!__atomic_exchange_n(&crashing, true, __ATOMIC_RELAXED) && folio_fault(uc))
		report(sig, info, uc);
	errno = saved_errno;
}

static int find_text(struct dl_phdr_info *obj, size_t size, void *self)
{
	(void)size;
	for (int i = 0; i < obj->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &obj->dlpi_phdr[i];
		uintptr_t start = obj->dlpi_addr + ph->p_vaddr;

		if (ph->p_type == PT_LOAD && (ph->p_flags & PF_X) &&
		    (uintptr_t)self - start < ph->p_memsz) {
			text_start = start;
			text_end = start + ph->p_memsz;
			return 1;
		}
	}
	return 0;
}

#ifdef FOLIO_TEST_FAULTS
/*
 * Test builds only: FOLIO_TEST_CRASH=1 faults here, in the constructor,
 * FOLIO_TEST_CRASH=libc in a libc function called from here;
 * FOLIO_TEST_CRASH=arena makes the cache's memory read-only, so that the
 * program's first write faults on folio's side of a buffer copy;
 * FOLIO_TEST_CRASH=PATH faults in a thread of folio's once PATH exists,
 * after the program has dirtied what the report should list.
 */
static int *volatile crash_test_null;
static volatile size_t crash_test_len;

/* Not caught first by UBSan's null checks (make test SANITIZE=undefined). */
#define CRASH_TEST_FAULT	__attribute__((noinline, no_sanitize("undefined")))

static CRASH_TEST_FAULT void crash_test_fault(void)
{
	*crash_test_null = 1;
}

static CRASH_TEST_FAULT void crash_test_fault_in_libc(void)
{
	crash_test_len = strlen((const char *)crash_test_null);
}

static void *crash_test_wait(void *path)
{
	while (access(path, F_OK))
		usleep(10 * 1000);
	crash_test_fault();
	return NULL;
}

static void crash_test(void)
{
	const char *when = getenv("FOLIO_TEST_CRASH");
	pthread_t thread;

	if (!when || !*when)
		return;
	unwind_load();		/* as after the process's first tracked open */
	if (!strcmp(when, "1"))
		crash_test_fault();
	else if (!strcmp(when, "libc"))
		crash_test_fault_in_libc();
	else if (!strcmp(when, "arena"))
		page_store_test_protect();
	else
		pthread_create(&thread, NULL, crash_test_wait, (void *)when);
}
#else
static void crash_test(void)
{
}
#endif

void crash_handler_install(void)
{
	struct sigaction sa = {
		.sa_sigaction = crash_handler,
		.sa_flags = SA_SIGINFO | (folio_on_valgrind() ? 0 : SA_ONSTACK),
	};
	static bool installed;

	if (__atomic_exchange_n(&installed, true, __ATOMIC_RELAXED))
		return;
	dl_iterate_phdr(find_text, (void *)(uintptr_t)crash_handler_install);
	if (text_start == text_end)
		return;
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < ARRAY_SIZE(crash_signals); i++)
		sigaddset(&sa.sa_mask, crash_signals[i]);
	for (size_t i = 0; i < ARRAY_SIZE(crash_signals); i++) {
		struct sigaction old;

		if (sigaction(crash_signals[i], NULL, &old) == 0 && old.sa_handler == SIG_DFL)
			sigaction(crash_signals[i], &sa, NULL);
	}
	crash_test();
}
