/*
 * interpose.c - folio's life in the host process: the constructor that reads
 * the configuration, the fork handlers that keep folio's locks and RCU state
 * valid in a child, the destructor that writes back what is left, and the
 * optional API of include/folio.h.
 */
#include <pthread.h>

#include "config.h"
#include "folio.h"
#include "interpose.h"
#include "log.h"
#include "rcu.h"

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
	stdio_after_fork_child();
}

void folio_passthrough_child(void)
{
	folio_config.enabled = false;
	fdtable_forget_all();
}

/*
 * Runs before the program's own constructors (priority 101).  Wrappers that
 * run even earlier (from other libraries' constructors) resolve libc
 * lazily, and see no tracked fd.
 */
__attribute__((constructor(101))) static void folio_init(void)
{
	real_resolve();
	config_load();
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
}

FOLIO_EXPORT int folio_fd_tracked(int fd)
{
	return fd_tracked(fd) && !fdtable_in_vfork_child();
}
