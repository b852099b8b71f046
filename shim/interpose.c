/*
 * interpose.c - folio's life in the host process: the constructor that reads
 * the configuration, the fork handlers that keep folio's locks and RCU state
 * valid in a child, the destructor that writes back what is left, and the
 * optional API of include/folio.h.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "callers.h"
#include "config.h"
#include "folio.h"
#include "interpose.h"
#include "log.h"
#include "page.h"
#include "rcu.h"
#include "stats.h"

static void before_fork(void)
{
	stdio_before_fork();
	fdtable_before_fork();
	folio_rcu_before_fork();
}

static void after_fork_parent(void)
{
	folio_rcu_after_fork_parent();
	fdtable_after_fork_parent();
	stdio_after_fork_parent();
}

static void after_fork_child(void)
{
	folio_rcu_after_fork_child();
	fdtable_after_fork_child();
	cache_after_fork_child();
	stats_after_fork_child();
	callers_after_fork_child();
	stdio_after_fork_child();
}

void folio_passthrough_child(void)
{
	folio_config.enabled = false;
	fdtable_forget_all();
}

#ifdef __SANITIZE_THREAD__
/*
 * make test SANITIZE=thread: have ThreadSanitizer's symbolizer read its
 * files now, while the process has one thread and folio's wrappers still
 * pass everything through (before config_load()).  TSan symbolizes a stack
 * to match it against the suppressions or to report it, and its first
 * symbolization (libbacktrace) opens the program and every loaded library
 * with open(), which is folio's, instrumented.  It does so holding its
 * thread registry lock and ignoring interceptors, which also makes atomics
 * order nothing: folio's open() then looks like a race (reading an inode
 * that another thread published with a release store, fdtable.c), and the
 * report of that one waits for the lock its own thread holds.  fdcheck
 * plain hung so (a suppressed page_copy_out race in the main thread while
 * the churn threads opened tracked files), every thread blocked and the
 * SIGTERM of a timeout deferred by TSan.  libbacktrace reads everything at
 * its first use and opens no file afterwards.  About 0.1 s a process, so
 * only where FOLIO_FILES asks for folio.
 */
int __sanitizer_symbolize_pc(void *pc, const char *fmt, char *out, size_t size);

static void tsan_symbolizer_warm_up(void)
{
	const char *files = getenv("FOLIO_FILES");
	char buf[128];

	if (files && *files)
		__sanitizer_symbolize_pc((void *)tsan_symbolizer_warm_up, "%f", buf, sizeof(buf));
}
#else
static void tsan_symbolizer_warm_up(void)
{
}
#endif

/*
 * Runs before the program's own constructors (priority 101).  Wrappers that
 * run even earlier (from other libraries' constructors) resolve libc
 * lazily, and see no tracked fd.
 */
__attribute__((constructor(101))) static void folio_init(void)
{
	real_resolve();
	tsan_symbolizer_warm_up();
	cache_init();
	config_load();
	log_file_adopt(fdtable_adopt);
	stats_init();
	if (folio_config.enabled)
		callers_init();
	if (folio_config.enabled)
		log_info("caching files matching %zu pattern%s; cache %lluK, dirty limit %lluK",
			 folio_config.npatterns, folio_config.npatterns == 1 ? "" : "s",
			 (unsigned long long)folio_config.cache_size >> 10,
			 (unsigned long long)folio_config.dirty_limit >> 10);
	pthread_atfork(before_fork, after_fork_parent, after_fork_child);
}

__attribute__((destructor)) static void folio_fini(void)
{
	stdio_flush_all();
	cache_exit();
	if (!fdtable_in_vfork_child() && folio_config.enabled)
		stats_report();
}

FOLIO_EXPORT int folio_fd_tracked(int fd)
{
	return fd_tracked(fd) && !fdtable_in_vfork_child();
}

FOLIO_EXPORT int folio_flush(int fd)
{
	struct ofile *of;
	int ret, cancel;

	if (fdtable_in_vfork_child() || !folio_config.enabled)
		return 0;
	if (fd == -1)
		return cache_writeback_all();
	of = ofile_get(fd);
	if (!of)
		return 0;
	cancel = cancel_off();
	ret = cache_flush(of);
	ofile_put(of);
	cancel_restore(cancel);
	return ret;
}

FOLIO_EXPORT int folio_stats(int fd, struct folio_stats *st, size_t size)
{
	uint64_t c[STAT_NR];
	struct ofile *of = NULL;
	struct folio_stats all;

	if (fd != -1 && (fdtable_in_vfork_child() || !(of = ofile_get(fd)))) {
		errno = EBADF;
		return -1;
	}
	stats_sum(of ? cache_file_stats(of) : NULL, c);
	if (of)
		ofile_put(of);
	all = (struct folio_stats){
		.reads = c[STAT_READS], .read_bytes = c[STAT_READ_BYTES],
		.read_hits = read_hits(c),
		.read_misses = c[STAT_READ_MISSES], .fill_pages = c[STAT_FILL_PAGES],
		.readahead_pages = c[STAT_READAHEAD_PAGES], .evictions = c[STAT_EVICTIONS],
		.writes = c[STAT_WRITES], .write_bytes = c[STAT_WRITE_BYTES],
		.lock_shared = c[STAT_LOCK_SHARED], .lock_retaken = c[STAT_LOCK_RETAKEN],
		.lock_exclusive = c[STAT_LOCK_EXCLUSIVE], .lock_wait_ns = c[STAT_LOCK_WAIT_NS],
		.dirty_peak_bytes = c[STAT_DIRTY_PEAK] << FOLIO_PAGE_SHIFT,
		.writeback_calls = c[STAT_WB_CALLS], .writeback_bytes = c[STAT_WB_BYTES],
		.writeback_errors = c[STAT_WB_ERRORS], .fsyncs = c[STAT_FSYNCS],
		.fsync_ns = c[STAT_FSYNC_NS],
	};
	memcpy(st, &all, size < sizeof(all) ? size : sizeof(all));
	return 0;
}
