/*
 * Whole-program tests of what surrounds the library: the configuration's
 * bad values, the folio wrapper, the exported and imported symbols, the
 * layering of the object files, the man pages and make install.
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

/* A bad value: one line naming it, pass-through, the program unchanged. */
static void check_bad_setting(const char *assignment, const char *expect)
{
	char *d = new_dir(), *out, *err;
	int status;

	status = sh("cd %s && " PRELOAD "FOLIO_FILES='*.dat' %s sh -c "
		    "'echo out; %s --probe probe.dat; exit 3' > out 2> err",
		    d, assignment, PROG("fdcheck"));
	out = slurp("%s/out", d);
	err = slurp("%s/err", d);
	cr_expect_eq(status, 3, "%s changed the exit status", assignment);
	cr_expect_str_eq(out, "out\n0\n", "%s: output changed or a file was tracked", assignment);
	/* One line per process that loaded folio: sh and fdcheck. */
	cr_expect_eq(count_lines(err), 2, "%s: expected one line per process, got: %s",
		     assignment, err);
	cr_expect(!strncmp(err, "folio: ", 7) && strstr(err, expect) &&
		  strstr(err, "running as pass-through"), "%s: message was: %s", assignment, err);
	free(out);
	free(err);
	remove_dir(d);
}

#define WRAPPER		SOURCE_DIR "/scripts/folio"

/* Every symbol the issue lists, with the version glibc 2.36 gives it. */
static const char *const required_symbols[] = {
	"open", "open64", "openat", "openat64", "creat", "creat64", "__open_2", "__open64_2",
	"__openat_2", "__openat64_2", "mkstemp", "mkstemp64", "mkostemp", "mkostemp64",
	"mkstemps", "mkstemps64", "mkostemps", "mkostemps64", "fopen", "fopen64", "freopen",
	"freopen64", "fdopen", "fclose", "read", "write", "pread", "pread64", "pwrite", "pwrite64",
	"__read_chk", "__pread_chk", "__pread64_chk", "readv", "writev", "preadv", "preadv64",
	"pwritev", "pwritev64", "preadv2", "preadv64v2", "pwritev2", "pwritev64v2", "lseek",
	"lseek64", "ftruncate", "ftruncate64", "truncate", "truncate64", "fallocate",
	"fallocate64", "posix_fallocate", "posix_fallocate64", "posix_fadvise",
	"posix_fadvise64", "readahead", "fsync", "fdatasync", "sync_file_range", "sync",
	"syncfs", "msync", "stat", "stat64", "lstat", "lstat64", "fstat", "fstat64", "fstatat",
	"fstatat64", "statx", "__xstat", "__xstat64", "__lxstat", "__lxstat64", "__fxstat",
	"__fxstat64", "__fxstatat", "__fxstatat64", "close", "close_range", "closefrom", "dup",
	"dup2", "dup3", "fcntl", "fcntl64", "mmap", "mmap64", "munmap", "mremap", "sendfile",
	"sendfile64", "copy_file_range", "splice", "fork", "_Fork", "vfork", "posix_spawn",
	"posix_spawnp", "system", "popen", "execve", "execv", "execvp", "execvpe", "execl",
	"execlp", "execle", "fexecve", "exit", "_exit", "_Exit", "rename", "renameat",
	"renameat2", "unlink", "unlinkat", "chmod", "fchmod", "fchmodat", "chown", "lchown",
	"fchown", "fchownat", "flock", "lockf", "lockf64", "setrlimit", "setrlimit64", "prlimit",
	"prlimit64",
};

/* "name@VER" or "name@@VER" lines for the defined dynamic symbols of @lib. */
static char *defined_symbols(const char *lib, const char *out)
{
	cr_assert_eq(sh("readelf --dyn-syms -W %s | awk '$7 != \"UND\" && $8 ~ /@/ {print $8}' "
			"| sort > %s", lib, out), 0);
	return slurp("%s", out);
}

static bool has_line(const char *text, const char *line)
{
	size_t n = strlen(line);

	for (const char *p = text; (p = strstr(p, line)); p += n)
		if ((p == text || p[-1] == '\n') && p[n] == '\n')
			return true;
	return false;
}

/*
 * Everything libfolio.so imports, reviewed for how it binds (shim/bind.h):
 * functions go to libc's definition when the program's executable exports
 * the same name (the allocator excepted), data and the C runtime's weak
 * hooks as the dynamic linker binds them.  An import not on the list fails
 * here until someone has looked at how it binds and added it.
 */
static const char *const reviewed_imports[] = {
	/* the C runtime's weak hooks, undefined in practice */
	"_ITM_deregisterTMCloneTable", "_ITM_registerTMCloneTable", "__cxa_finalize",
	"__gmon_start__",
	/* data: one object per process, wherever it lives */
	"__environ", "environ",
	/* the allocator: whoever the program or a preload puts in front */
	"aligned_alloc", "calloc", "free", "malloc", "realloc",
	/* liburcu-bp's (its data, and functions named urcu_bp_*) */
	"urcu_bp_after_fork_child", "urcu_bp_after_fork_parent", "urcu_bp_before_fork",
	"urcu_bp_gp", "urcu_bp_has_sys_membarrier", "urcu_bp_reader", "urcu_bp_register",
	"urcu_bp_synchronize_rcu",
	/* libc's functions: rebound to libc if the executable has its own */
	"__chk_fail", "__errno_location", "__fpurge", "__register_atfork", "clearerr",
	"clock_gettime", "dl_iterate_phdr", "dladdr", "dladdr1", "dlclose", "dlerror", "dlinfo",
	"dlopen", "dlsym", "dlvsym", "fflush", "fflush_unlocked", "fgetxattr",
	"fopencookie", "fstatfs", "getcwd", "getenv", "getpid", "getrlimit", "kill",
	"madvise", "memchr", "memcpy", "memmove", "memset", "process_vm_readv",
	"process_vm_writev", "pthread_attr_destroy", "pthread_attr_init",
	"pthread_attr_setdetachstate", "pthread_attr_setstacksize",
	"pthread_cond_broadcast", "pthread_cond_clockwait", "pthread_cond_init",
	"pthread_cond_signal", "pthread_cond_wait", "pthread_create", "pthread_key_create",
	"pthread_mutex_destroy", "pthread_mutex_init", "pthread_mutex_lock",
	"pthread_mutex_trylock", "pthread_mutex_unlock", "pthread_rwlock_destroy",
	"pthread_rwlock_init", "pthread_rwlock_rdlock", "pthread_rwlock_tryrdlock",
	"pthread_rwlock_trywrlock", "pthread_rwlock_unlock", "pthread_rwlock_wrlock",
	"pthread_rwlockattr_destroy", "pthread_rwlockattr_init",
	"pthread_rwlockattr_setkind_np", "pthread_setcancelstate", "pthread_setname_np",
	"pthread_setspecific", "pthread_sigmask", "pthread_testcancel", "qsort", "raise",
	"readlink", "sched_yield", "sigaction", "sigaddset", "sigdelset", "sigemptyset",
	"sigfillset", "snprintf", "strcasecmp", "strchr", "strcmp", "strcpy", "strcspn",
	"strdup", "strerror", "strlen", "strncmp", "strrchr", "strspn", "strtol", "syscall",
	"vsnprintf",
	/* ... and the guardian's start and socket (shim/guard.c, shim/journal.c) */
	"__clone", "memfd_create", "poll", "sendmsg", "socketpair", "waitpid",
	/* ... and the registry of shared files (shim/share.c) */
	"geteuid", "strtoull", "usleep",
};

/*
 * Real Debian programs, every file tracked: the same outputs as natively,
 * and folio did track their files.
 */
static const char tools_script[] =
	"set -e\n"
	"cp in.bin cp.bin\n"
	"cat in.txt in.txt > cat.txt\n"
	"dd if=in.bin of=dd.bin bs=1000 skip=3 count=50 status=none\n"
	"dd if=in.txt of=dd.bin bs=512 seek=400 conv=notrunc status=none\n"
	"mkdir x && tar cf t.tar in.txt in.bin && tar xf t.tar -C x\n"
	"sort in.txt > sorted.txt\n"
	"sort -o sorted2.txt -r in.txt\n"
	"sha256sum in.bin in.txt > sums.txt\n"
	"sha256sum in.bin\n"
	"cat in.txt | sort | sha256sum\n";

Test(tools, coreutils_and_tar_identical, .timeout = 120)
{
	char *d, *native, *folio, *err;

	/* ASan's aligned_alloc() refuses what dd asks for, with or without folio. */
	if (sanitized())
		cr_skip_test("the tools are not built for the sanitizer");
	d = new_dir();
	cr_assert_eq(sh("cd %s && mkdir src && head -c 300000 /dev/urandom > src/in.bin && "
			"seq 1 20000 | sed 's/$/ line/' > src/in.txt && "
			"cp -a src native && cp -a src folio", d), 0);
	cr_assert_eq(sh("cd %s/native && cat > ../script <<'EOF'\n%sEOF\n", d, tools_script), 0);
	cr_assert_eq(sh("cd %s/native && sh ../script > ../native.out 2>&1", d), 0);
	cr_assert_eq(sh("cd %s/folio && " PRELOAD "FOLIO_FILES='*' FOLIO_LOG=info "
			"sh ../script > ../folio.out 2> ../folio.err", d), 0,
		     "tools failed under folio: %s", slurp("%s/folio.err", d));
	native = slurp("%s/native.out", d);
	folio = slurp("%s/folio.out", d);
	cr_expect_str_eq(folio, native);
	cr_expect_eq(sh("diff -r %s/native %s/folio", d, d), 0, "outputs differ");
	err = slurp("%s/folio.err", d);
	cr_expect(strstr(err, "info: tracking in.bin") && strstr(err, "info: tracking cp.bin") &&
		  strstr(err, "info: tracking sorted.txt") && strstr(err, "info: tracking t.tar"),
		  "folio did not track the tools' files: %s", err);
	free(native);
	free(folio);
	free(err);
	remove_dir(d);
}

Test(config, bad_values_pass_through, .timeout = 60)
{
	check_bad_setting("FOLIO_CACHE_SIZE=12Q", "FOLIO_CACHE_SIZE='12Q': expected a size");
	check_bad_setting("FOLIO_CACHE_SIZE=-1", "FOLIO_CACHE_SIZE='-1'");
	check_bad_setting("FOLIO_CACHE_SIZE=99999999999999999999999", "FOLIO_CACHE_SIZE=");
	check_bad_setting("FOLIO_CACHE_SIZE=", "FOLIO_CACHE_SIZE=''");
	check_bad_setting("FOLIO_DIRTY_LIMIT=1G FOLIO_CACHE_SIZE=64M", "FOLIO_DIRTY_LIMIT='1G'");
	check_bad_setting("FOLIO_FLUSH_INTERVAL=soon", "FOLIO_FLUSH_INTERVAL='soon'");
	check_bad_setting("FOLIO_READAHEAD=1T", "FOLIO_READAHEAD='1T'");
	check_bad_setting("FOLIO_LOG=loud", "FOLIO_LOG='loud'");
	check_bad_setting("FOLIO_DISABLE=maybe", "FOLIO_DISABLE='maybe'");
	check_bad_setting("FOLIO_STATS=", "FOLIO_STATS=''");
	check_bad_setting("FOLIO_CALLERS=many", "FOLIO_CALLERS='many'");
	check_bad_setting("FOLIO_CALLERS=100000", "FOLIO_CALLERS='100000'");
	check_bad_setting("FOLIO_LOG_FILE=", "FOLIO_LOG_FILE=''");
	check_bad_setting("FOLIO_LOG_FILE=/nonexistent/folio.log", "FOLIO_LOG_FILE: cannot open");
	/* A value with a newline still makes one line. */
	check_bad_setting("FOLIO_LOG=\"$(printf 'lo\\nud')\"", "FOLIO_LOG='lo?ud'");
}

Test(config, bad_pattern_passes_through, .timeout = 60)
{
	char *d = new_dir(), *out, *err;

	cr_assert_eq(sh("cd %s && " PRELOAD "FOLIO_FILES='data/*.dat' %s --probe p.dat > out 2> err",
			d, PROG("fdcheck")), 0);
	out = slurp("%s/out", d);
	err = slurp("%s/err", d);
	cr_expect_str_eq(out, "0\n");
	cr_expect(strstr(err, "FOLIO_FILES='data/*.dat'") && strstr(err, "absolute") &&
		  count_lines(err) == 1, "%s", err);
	free(out);
	free(err);
	remove_dir(d);
}

Test(config, unknown_variable_warns_and_runs, .timeout = 60)
{
	char *d = new_dir(), *out, *err;

	cr_assert_eq(sh("cd %s && " PRELOAD "FOLIO_FILES='*.dat' FOLIO_FILEZ=x %s --probe p.dat "
			"> out 2> err", d, PROG("fdcheck")), 0);
	out = slurp("%s/out", d);
	err = slurp("%s/err", d);
	cr_expect_str_eq(out, "1\n");
	cr_expect(strstr(err, "FOLIO_FILEZ") && count_lines(err) == 1, "%s", err);
	free(out);
	free(err);
	remove_dir(d);
}

Test(wrapper, options_and_exit_status, .timeout = 60)
{
	char *d = new_dir(), *out;

	cr_expect_eq(sh("%s --help > %s/help", WRAPPER, d), 0);
	out = slurp("%s/help", d);
	cr_expect(strstr(out, "Usage: folio"), "%s", out);
	free(out);
	cr_expect_eq(sh("%s --version > %s/version", WRAPPER, d), 0);
	out = slurp("%s/version", d);
	cr_expect(!strncmp(out, "folio ", 6), "%s", out);
	free(out);
	cr_expect_eq(sh("%s 2>/dev/null", WRAPPER), 125, "no command");
	cr_expect_eq(sh("%s --bogus true 2>/dev/null", WRAPPER), 125, "unknown option");
	cr_expect_eq(sh("%s --files 2>/dev/null", WRAPPER), 125, "missing argument");
	cr_expect_eq(sh("%s --files 'a:b' true 2>/dev/null", WRAPPER), 125, "':' in a pattern");
	cr_expect_eq(sh("%s -- /no/such/command 2>/dev/null", WRAPPER), 127);
	cr_expect_eq(sh("%s -- %s 2>/dev/null", WRAPPER, WRAPPER ".nonexec"), 127);
	cr_expect_eq(sh("touch %s/plain && %s -- %s/plain 2>/dev/null", d, WRAPPER, d), 126);
	cr_expect_eq(sh("%s sh -c 'exit 7'", WRAPPER), 7);
	remove_dir(d);
}

Test(wrapper, sets_the_environment, .timeout = 60)
{
	char *d = new_dir(), *out;

	cr_assert_eq(sh("cd %s && LD_PRELOAD=libm.so.6 %s --files '*.db' --files sub/x.db "
			"--cache 64M --dirty=8M --stats=/tmp/s.json --log info --callers 7 "
			"--log-file=f.log -- env > env 2> err", d, WRAPPER), 0);
	out = slurp("%s/env", d);
	cr_expect(strstr(out, "\nFOLIO_FILES=*.db:/tmp/folio-test-") || !strncmp(out, "FOLIO_FILES=*.db:/tmp/folio-test-", 33), "%s", out);
	cr_expect(strstr(out, "/sub/x.db\n"), "relative path pattern not made absolute: %s", out);
	cr_expect(strstr(out, "FOLIO_CACHE_SIZE=64M\n") && strstr(out, "FOLIO_DIRTY_LIMIT=8M\n") &&
		  strstr(out, "FOLIO_STATS=/tmp/s.json\n") && strstr(out, "FOLIO_LOG=info\n") &&
		  strstr(out, "FOLIO_CALLERS=7\n") && strstr(out, "FOLIO_LOG_FILE=f.log\n"),
		  "%s", out);
	/* The wrapper preloads the library of the source tree's build/. */
	cr_expect(strstr(out, "\nLD_PRELOAD=/") && strstr(out, "/build/libfolio.so libm.so.6\n"),
		  "%s", out);
	free(out);
	if (sanitized()) {	/* build/ may not exist, and is not the sanitized build */
		remove_dir(d);
		return;
	}
	cr_assert_eq(sh("cd %s && %s --files '*.dat' %s --probe w.dat > probe", d, WRAPPER,
			PROG("fdcheck")), 0);
	out = slurp("%s/probe", d);
	cr_expect_str_eq(out, "1\n", "the wrapper did not make folio track the file");
	free(out);
	remove_dir(d);
}

Test(symbols, exports_every_required_symbol_at_libc_version, .timeout = 60)
{
	char *d = new_dir(), *ours, *libc, *libc_path;
	size_t n = sizeof(required_symbols) / sizeof(required_symbols[0]);
	int exported = 0;

	cr_assert_eq(sh("gcc -print-file-name=libc.so.6 > %s/libc", d), 0);
	libc_path = slurp("%s/libc", d);
	libc_path[strcspn(libc_path, "\n")] = '\0';
	{
		char a[256], b[256];

		snprintf(a, sizeof(a), "%s/ours", d);
		snprintf(b, sizeof(b), "%s/libcsyms", d);
		ours = defined_symbols(LIB, a);
		libc = defined_symbols(libc_path, b);
	}
	for (size_t i = 0; i < n; i++) {
		char want[128];

		/* The default version libc gives the symbol. */
		for (const char *p = libc; (p = strstr(p, required_symbols[i])); p++) {
			size_t len = strlen(required_symbols[i]);

			if ((p == libc || p[-1] == '\n') && !strncmp(p + len, "@@", 2)) {
				size_t end = strcspn(p, "\n");

				snprintf(want, sizeof(want), "%.*s", (int)end, p);
				cr_expect(has_line(ours, want), "libfolio.so does not export %s", want);
				exported++;
				break;
			}
		}
	}
	cr_expect_eq(exported, (int)n, "some required symbols have no default version in libc");
	cr_expect(has_line(ours, "posix_spawn@GLIBC_2.2.5") &&
		  has_line(ours, "posix_spawnp@GLIBC_2.2.5"), "old posix_spawn versions missing");
	/* Nothing else: the required list, the old spawns and folio's own API. */
	/* + pipe2, for libunwind's pipe (interpose_fd.c) */
	cr_expect_eq(count_lines(ours), (int)n + 2 + 3 + 1, "unexpected exports:\n%s", ours);
	cr_expect(has_line(ours, "pipe2@@GLIBC_2.9"));
	cr_expect(has_line(ours, "folio_fd_tracked@@FOLIO_1"));
	cr_expect(has_line(ours, "folio_flush@@FOLIO_1"));
	cr_expect(has_line(ours, "folio_stats@@FOLIO_1"));
	free(ours);
	free(libc);
	free(libc_path);
	remove_dir(d);
}

Test(symbols, library_never_calls_its_own_wrappers, .timeout = 60)
{
	char *d = new_dir(), *relocs;

	/* A PLT/GOT relocation against an exported name is a call to folio's own
	 * wrapper from inside folio: recursion, and the wrong layer. */
	cr_assert_eq(sh("readelf --dyn-syms -W %s | awk '$7 != \"UND\" && $8 ~ /@/ "
			"{sub(/@.*/, \"\", $8); print $8}' | sort -u > %s/exports && "
			"readelf -rW %s | awk '/JUMP_SLOT|GLOB_DAT/ {sub(/@.*/, \"\", $5); print $5}' "
			"| sort -u > %s/relocs && comm -12 %s/exports %s/relocs > %s/both",
			LIB, d, LIB, d, d, d, d), 0);
	relocs = slurp("%s/both", d);
	cr_expect_str_empty(relocs, "folio calls its own wrappers: %s", relocs);
	free(relocs);
	remove_dir(d);
}

Test(symbols, every_import_is_reviewed, .timeout = 60)
{
	char *d = new_dir(), *imports, *line;
	size_t n = sizeof(reviewed_imports) / sizeof(reviewed_imports[0]), read = 0;

	/* A sanitizer build adds its runtime's entry points. */
	cr_assert_eq(sh("readelf --dyn-syms -W %s | awk '$7 == \"UND\" && $8 != \"\" "
			"{sub(/@.*/, \"\", $8); print $8}' | "
			"grep -v -E '^__(asan|ubsan|tsan|lsan|sanitizer)_' | sort -u > %s/imports",
			LIB, d), 0);
	imports = slurp("%s/imports", d);
	for (line = strtok(imports, "\n"); line; line = strtok(NULL, "\n")) {
		bool known = false;

		for (size_t i = 0; i < n && !known; i++)
			known = !strcmp(line, reviewed_imports[i]);
		cr_expect(known, "libfolio.so imports %s, which is not reviewed: see shim/bind.h "
			  "and add it to reviewed_imports", line);
		read++;
	}
	cr_expect_gt(read, n / 2, "only %zu imports read", read);
	free(imports);
	remove_dir(d);
}

/*
 * tests/prog/ownlibc exports its own strlen, memcpy, snprintf, qsort and
 * more, each aborting when called from outside the program (dbench exports
 * its own snprintf).  Under folio it runs exactly as natively, whatever
 * folio logs, counts or reports: no call of folio's, nor of the libraries
 * folio loads, lands in it.
 */
Test(symbols, calls_never_land_in_the_programs_own_functions, .timeout = 120)
{
	static const char *const levels[] = { "error", "warn", "info", "debug" };
	char *d = new_dir(), *native, *out, *err;
	int status;

	cr_assert_eq(sh("cd %s && %s %s > native", d, PROG("ownlibc"), d), 0);
	native = slurp("%s/native", d);
	for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++) {
		status = sh("cd %s && " PRELOAD "FOLIO_FILES='*.dat' FOLIO_LOG=%s FOLIO_STATS=1 "
			    "FOLIO_CALLERS=5 %s %s > out 2> err", d, levels[i], PROG("ownlibc"), d);
		out = slurp("%s/out", d);
		err = slurp("%s/err", d);
		cr_expect_eq(status, 0, "FOLIO_LOG=%s: status %d: %s", levels[i], status, err);
		cr_expect_str_eq(out, native, "FOLIO_LOG=%s", levels[i]);
		cr_expect(strstr(err, "folio: stats of pid "), "no statistics: %s", err);
		cr_expect(strstr(err, "folio:   call sites ("), "no call sites: %s", err);
		cr_expect(!strstr(err, "ownlibc: "), "FOLIO_LOG=%s: %s", levels[i], err);
		free(out);
		free(err);
	}
	/* A crash report, and libunwind behind it: folio's test build faults
	 * in a thread of its own once "go" exists. */
	status = sh("cd %s && ulimit -c 0 && exec env ASAN_OPTIONS=detect_leaks=0:handle_segv=0 "
		    "UBSAN_OPTIONS=handle_segv=0 TSAN_OPTIONS=\"$TSAN_OPTIONS:handle_segv=0\" "
		    "LD_PRELOAD='" SANITIZER_RUNTIME " " PROG_PATH("libfolio-faults.so") "' "
		    "FOLIO_FILES='*.dat' FOLIO_TEST_CRASH=%s/go %s %s wait %s/go > out 2> err",
		    d, d, PROG("ownlibc"), d, d);
	err = slurp("%s/err", d);
	cr_expect_eq(status, 128 + SIGSEGV, "status %d: %s", status, err);
	cr_expect(strstr(err, "folio: crashed with signal 11 (SIGSEGV)") &&
		  strstr(err, " crash_test_fault+0x"), "no report: %s", err);
	cr_expect(!strstr(err, "ownlibc: "), "%s", err);
	free(err);
	free(native);
	remove_dir(d);
}

/*
 * Every module an object file calls (nm) is named in the first comment of
 * its source or header, where each file says whom it calls: a new call
 * across files fails here until that line says so.
 */
Test(symbols, calls_lines_name_every_module_called, .timeout = 60)
{
	char *d = new_dir(), *out;
	int status;

	status = sh("%s/scripts/check-calls %s/shim %s/shim > %s/out 2>&1", SOURCE_DIR, BUILD_DIR,
		    SOURCE_DIR, d);
	out = slurp("%s/out", d);
	cr_expect_eq(status, 0, "%s", out);
	free(out);
	remove_dir(d);
}

/*
 * Calls between the library's object files go one way (interpose, fdtable,
 * cache, writeback, the kernel; fdtable reaches the cache through the hooks
 * the cache registers): an edge from each object to the objects defining
 * what it uses, and tsort(1) finds no loop.
 */
Test(symbols, no_cycle_between_object_files, .timeout = 60)
{
	char *d = new_dir(), *loops;

	cr_assert_eq(sh("cd " BUILD_DIR "/shim && ls *.o > /dev/null && "
			"for o in *.o; do nm --defined-only -g $o | "
			"awk -v o=\"${o%%.o}\" 'NF == 3 {print $3, o}'; done | sort > %s/defs && "
			"for o in *.o; do nm -u $o | awk -v o=\"${o%%.o}\" '{print $2, o}'; done "
			"| sort > %s/uses && join %s/defs %s/uses | awk '$2 != $3 {print $3, $2}' "
			"| sort -u > %s/edges && test -s %s/edges", d, d, d, d, d, d), 0);
	sh("tsort %s/edges > /dev/null 2> %s/loops", d, d);
	loops = slurp("%s/loops", d);
	cr_expect_str_empty(loops, "object files that call each other:\n%s", loops);
	free(loops);
	remove_dir(d);
}

Test(man, pages_render_cleanly, .timeout = 60)
{
	const char *pages[] = { SOURCE_DIR "/man/folio.1", SOURCE_DIR "/man/folio.3",
				SOURCE_DIR "/man/folio.7" };

	for (int i = 0; i < 3; i++) {
		char *d = new_dir(), *warnings;

		cr_assert_eq(sh("MANWIDTH=80 man --warnings -l %s > %s/out 2> %s/warnings",
				pages[i], d, d), 0);
		warnings = slurp("%s/warnings", d);
		cr_expect_str_empty(warnings, "%s: %s", pages[i], warnings);
		free(warnings);
		remove_dir(d);
	}
}

/* Each variable's entry in folio(7) gives its default and an example. */
Test(man, every_variable_has_a_default_and_an_example, .timeout = 60)
{
	char *d = new_dir(), *missing;

	cr_assert_eq(sh("awk '/^\\.SH ENVIRONMENT/ { on = 1 } /^\\.SH TRACKING/ { on = 0 } on' "
			"%s/man/folio.7 | awk '/^\\.TP/ { getline; if (name) print name, d, e; "
			"name = $2; d = e = 0; next } /^\\.S[SH]/ { if (name) print name, d, e; "
			"name = \"\" } /^Default/ { d = 1 } /^Example/ { e = 1 }' > %s/entries && "
			"test $(wc -l < %s/entries) -ge 11 && grep -v ' 1 1$' %s/entries > %s/missing; "
			"test $? -le 1", SOURCE_DIR, d, d, d, d), 0);
	missing = slurp("%s/missing", d);
	cr_expect_str_empty(missing, "entries without a default or an example: %s", missing);
	free(missing);
	remove_dir(d);
}

/* Every field of struct folio_stats is described in folio(3) and folio(7). */
Test(man, every_statistic_is_documented, .timeout = 60)
{
	char *d = new_dir(), *missing;

	cr_assert_eq(sh("cd %s && sed -n '/^struct folio_stats {/,/^};/p' include/folio.h | "
			"grep -oE 'uint64_t [a-z_]+;' | sed 's/uint64_t //; s/;//' > %s/fields && "
			"test $(wc -l < %s/fields) -ge 19", SOURCE_DIR, d, d), 0);
	cr_assert_eq(sh("for f in $(cat %s/fields); do grep -q \"$f;\" %s/man/folio.3 || "
			"echo \"$f (folio.3)\"; grep -q \"^\\.BR* .*$f\" %s/man/folio.7 || "
			"echo \"$f (folio.7)\"; done > %s/missing", d, SOURCE_DIR, SOURCE_DIR, d), 0);
	missing = slurp("%s/missing", d);
	cr_expect_str_empty(missing, "not documented: %s", missing);
	free(missing);
	remove_dir(d);
}

Test(man, every_variable_is_documented, .timeout = 60)
{
	char *d = new_dir(), *missing;

	cr_assert_eq(sh("cd %s && grep -ohE '\"FOLIO_[A-Z_]+\"' shim/*.c | tr -d '\"' | sort -u "
			"> %s/vars && test -s %s/vars", SOURCE_DIR, d, d), 0);
	cr_assert_eq(sh("for v in $(cat %s/vars); do grep -q \"$v\" %s/man/folio.7 || echo $v; "
			"done > %s/missing", d, SOURCE_DIR, d), 0);
	missing = slurp("%s/missing", d);
	cr_expect_str_empty(missing, "not in man/folio.7: %s", missing);
	free(missing);
	remove_dir(d);
}

Test(install, prefix_has_a_working_wrapper, .timeout = 120)
{
	char *d, *out;

	if (strstr(SANITIZER_RUNTIME, "libtsan"))
		cr_skip_test("the wrapper preloads folio alone, and a program built with "
			     "ThreadSanitizer needs its runtime loaded first");
	d = new_dir();

	cr_assert_eq(sh("make -s -C %s install PREFIX=%s/usr > %s/log 2>&1", SOURCE_DIR, d, d), 0,
		     "%s", slurp("%s/log", d));
	cr_expect_eq(sh("cd %s/usr && test -x bin/folio && test -f lib/folio/libfolio.so && "
			"test -f include/folio.h && test -f share/man/man1/folio.1 && "
			"test -f share/man/man7/folio.7", d), 0);
	cr_assert_eq(sh("cd %s && PATH=%s/usr/bin:$PATH folio --files '*.dat' %s --probe i.dat "
			"> probe", d, d, PROG("fdcheck")), 0);
	out = slurp("%s/probe", d);
	cr_expect_str_eq(out, "1\n");
	free(out);
	remove_dir(d);
}
