/*
 * cache_mapping.c - the life of a mapping, the cache's state of one inode:
 * made at a file's first tracked open (fdtable's hooks), refreshed when the
 * kernel's file changed under a lock, retired and freed after its last
 * close; and the cache at the process's start, exec, fork and exit.  A
 * retired mapping leaves the guardian (guard) and the registry of held
 * inodes (share); the journal's descriptor ops are set at start.  See
 * cache.h and cache_internal.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/xattr.h>

#include "cache_internal.h"
#include "config.h"
#include "log.h"
#include "mapping.h"
#include "mmaps.h"
#include "ptree.h"
#include "share.h"
#include "crash.h"
#include "real.h"
#include "unwind.h"
#include "writeback.h"

static uint64_t last_mapping_id;

#define BTRFS_SUPER_MAGIC	0x9123683E

/* The f_type statfs(2) gives @fd's file system (0: unknown).  Keeps errno. */
static long fs_type(int fd)
{
	int saved_errno = errno;
	struct statfs sfs;
	long type = fstatfs(fd, &sfs) == 0 ? (long)sfs.f_type : 0;

	errno = saved_errno;
	return type;
}

/*
 * The mapping's rwlocks prefer writers: under a stream of shared holders an
 * extending writer or a truncation must still get its turn.  (No path takes
 * either lock shared twice, which such a lock would not allow.)
 */
static void mapping_rwlock_init(pthread_rwlock_t *lock)
{
	pthread_rwlockattr_t attr;

	pthread_rwlockattr_init(&attr);
	pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(lock, &attr);
	pthread_rwlockattr_destroy(&attr);
}

static bool cache_share_catch_up(bool wait);

struct mapping *cache_mapping_new(const char *name, int fd, const struct stat *st, int kfd,
				  int kfd_accmode)
{
	static bool store_failed;
	struct mapping *m;

	if (!page_store_ready() && page_store_init(folio_config.cache_size) < 0) {
		if (!store_failed)
			log_warn("cannot reserve the %lluK cache: passing files through",
				 (unsigned long long)folio_config.cache_size >> 10);
		store_failed = true;
		errno = EAGAIN;
		return NULL;
	}
	m = calloc(1, sizeof(*m));
	if (!m || !(m->name = strdup(name)) || !(m->stats = stats_file_new(name)) ||
	    !(m->wb_run = calloc(WB_BATCH, sizeof(*m->wb_run))) ||
	    !(m->wb_iov = calloc(WB_BATCH, sizeof(*m->wb_iov))) ||
	    !(m->wb_piece = calloc(WB_BATCH, sizeof(*m->wb_piece)))) {
		if (m) {
			stats_file_free(m->stats);
			free(m->name);
			free(m->wb_run);
			free(m->wb_iov);
		}
		free(m);
		errno = ENOMEM;
		return NULL;
	}
	m->id = __atomic_add_fetch(&last_mapping_id, 1, __ATOMIC_RELAXED);
	ptree_init(&m->tree);
	mapping_rwlock_init(&m->lock);
	mapping_rwlock_init(&m->kio_lock);
	m->size = m->ksize = st->st_size;
	m->kctime = st->st_ctim;
	m->fs_type = fs_type(fd);
	m->whole_page_writes = m->fs_type == BTRFS_SUPER_MAGIC;
	m->kfd = kfd;
	m->kfd_accmode = kfd_accmode;
	if (mmaps_has(st->st_dev, st->st_ino))		/* mapped before this open */
		m->bypass = BYPASS_MAPPED;
	if (share_init(cache_share_catch_up) == 0) {
		bool shared;

		/* Another process holds it: every holder passes it through
		 * before this open returns (share.h). */
		m->share = share_hold(st->st_dev, st->st_ino, false, &shared, &m->share_mark);
		if (shared) {
			m->bypass |= BYPASS_SHARED;
			log_info("%s: another process holds it too: passing it through", name);
		}
	}
	m->privileged = (st->st_mode & S_ISUID) ||
			(st->st_mode & (S_ISGID | S_IXGRP)) == (S_ISGID | S_IXGRP) ||
			fgetxattr(fd, "security.capability", NULL, 0) >= 0;
	writeback_register(m);
	/* Made shared between share_hold() and here: a catch-up then could not
	 * see this mapping yet. */
	if (share_changed(m->share, m->share_mark) && !(m->bypass & BYPASS_SHARED))
		m->bypass |= BYPASS_SHARED;
	return m;
}

/* Did someone else change the file since folio last saw it? */
static bool kernel_changed(struct mapping *m, const struct stat *st)
{
	return st->st_size != mapping_ksize(m) ||
	       st->st_ctim.tv_sec != __atomic_load_n(&m->kctime.tv_sec, __ATOMIC_RELAXED) ||
	       st->st_ctim.tv_nsec != __atomic_load_n(&m->kctime.tv_nsec, __ATOMIC_RELAXED);
}

void cache_lock_release(struct ofile *of)
{
	struct mapping *m = mapping_of(of);
	int saved_errno = errno, cancel = cancel_off();

	if (!bypassed(m) && mapping_writeback(m) < 0)
		log_warn("%s: write-back before an unlock failed: %s", m->name, strerror(errno));
	cancel_restore(cancel);
	errno = saved_errno;
}

void cache_lock_acquired(struct ofile *of)
{
	struct mapping *m = mapping_of(of);
	int saved_errno = errno;
	struct stat st;

	if (!bypassed(m) && m->kfd >= 0 && real_fstat(m->kfd, &st) == 0 && kernel_changed(m, &st)) {
		mapping_lock_all(m);
		refresh_locked(m);	/* another process wrote: its data, not ours */
		mapping_unlock_all(m);
	}
	errno = saved_errno;
}

void cache_mapping_reopened(struct mapping *m, int flags, const struct stat *st)
{
	/*
	 * Only O_TRUNC, or another process, changes the file behind folio.
	 * An O_TRUNC open of a file folio knew was already followed under
	 * the locks (cache_trunc_begin/end): its own truncation is noted,
	 * and writes made since must stay.
	 */
	if (!kernel_changed(m, st))
		return;
	mapping_lock_all(m);
	if (!bypassed(m) && kernel_changed(m, st)) {
		if (flags & O_TRUNC)
			resize_locked(m, st->st_size);	/* what was written before is gone */
		else
			refresh_locked(m);		/* close-to-open */
	}
	mapping_unlock_all(m);
}

void cache_set_kfd(struct mapping *m, int kfd, int kfd_accmode)
{
	mapping_lock_all(m);
	__atomic_store_n(&m->kfd, kfd, __ATOMIC_RELAXED);	/* restat_bypassed() reads it */
	m->kfd_accmode = kfd_accmode;
	mapping_unlock_all(m);
}

bool cache_mapping_unwritten(struct mapping *m)
{
	unsigned long dirty;

	/* After a batch under way: its pages are in no count until it ends
	 * (written, or dirty again). */
	pthread_rwlock_rdlock(&m->kio_lock);
	dirty = __atomic_load_n(&m->nr_dirty, __ATOMIC_RELAXED);
	pthread_rwlock_unlock(&m->kio_lock);
	return dirty != 0;
}

void cache_mapping_retire(struct mapping *m)
{
	unsigned long lost;

	writeback_unregister(m);	/* the flusher is done with it */
	lost = __atomic_load_n(&m->nr_dirty, __ATOMIC_RELAXED);
	guard_file_forget(&m->guard, m->id);
	if (folio_log_level >= LOG_DEBUG) {
		uint64_t c[STAT_NR];

		stats_sum(m->stats, c);
		log_debug("%s: writes took the lock shared %llu, retaken %llu, exclusive %llu times",
			  m->name, (unsigned long long)c[STAT_LOCK_SHARED],
			  (unsigned long long)c[STAT_LOCK_RETAKEN],
			  (unsigned long long)c[STAT_LOCK_EXCLUSIVE]);
	}
	stats_file_retire(m->stats);
	writeback_share_release(m);
	/* Only after a failed write-back at the last close, already reported. */
	if (lost)
		log_error("%s: %lu pages could not be written back and are lost", m->name, lost);
	/* Every page out of the index before it is freed (page.h). */
	mapping_lock_all(m);
	drop_pages(m, 0, false);
	mapping_unlock_all(m);
}

void cache_mapping_free(struct mapping *m)
{
	if (!m)
		return;
	ptree_destroy(&m->tree);
	pthread_rwlock_destroy(&m->lock);
	pthread_rwlock_destroy(&m->kio_lock);
	free(m->wb_run);
	free(m->wb_iov);
	free(m->wb_piece);
	stats_file_free(m->stats);
	free(m->name);
	free(m);
}

/*
 * Another process opened a file this one holds: pass each such one
 * through.  Without @share_wait (the flusher), a mapping whose locks are
 * taken is left for the next try: its holder may be a writer waiting for
 * the flusher's progress.
 */
static __thread bool share_wait, share_left;

static void share_one(struct mapping *m)
{
	int ok;

	if (!share_changed(m->share, m->share_mark) || bypassed_for(m, BYPASS_SHARED))
		return;
	ok = share_wait ? start_bypass(m, BYPASS_SHARED) : start_bypass_try(m, BYPASS_SHARED);
	if (ok < 0)
		share_left = true;
	else if (!ok)
		log_warn("%s: shared with another process, but its dirty pages cannot be "
			 "written back (%s)", m->name, strerror(errno));
}

static bool cache_share_catch_up(bool wait)
{
	share_wait = wait;
	share_left = false;
	writeback_each_mapping(share_one);
	return !share_left;
}

/*
 * What only a process that caches a file needs, set up at its first tracked
 * open rather than in every process folio is loaded into: libunwind for a
 * crash report's backtrace (0.2 ms), the crash handler (installed after the
 * program's runtime set up its own: Rust's std installs its stack overflow
 * handler only over the default action), FOLIO_STATS=1's copy of stderr.
 */
static void first_tracked_open(void)
{
	static bool done;

	if (__atomic_load_n(&done, __ATOMIC_RELAXED) ||
	    __atomic_exchange_n(&done, true, __ATOMIC_RELAXED))
		return;
	unwind_load();
	crash_handler_install();
	stats_keep_stderr(fdtable_adopt);
}

void cache_ofile_opened(struct ofile *of)
{
	first_tracked_open();
	of->wb_err_since = writeback_error_sample(mapping_of(of));
	if (writable(of))
		writeback_writer_opened();
}

void cache_exit(void)
{
	/* Not a vfork child (the parent's memory) nor a child left
	 * pass-through (its copy of folio's state may be mid-change). */
	if (fdtable_in_vfork_child() || !folio_config.enabled)
		return;
	writeback_stop();
	cache_writeback_all();
	writeback_exit();
	writeback_each_mapping(writeback_share_release);	/* the registry's slot too */
	share_exit();
}

/*
 * Before an exec: every file passes through from now on (written back
 * first), so that nothing is dirty when the program is replaced, and the
 * registry hears that this process holds nothing (the new program has no
 * flusher to answer for the old one's files).  If the exec fails, the files
 * stay passed through until their last close: slower, never wrong.
 */
static void before_exec_one(struct mapping *m)
{
	start_bypass(m, BYPASS_SHARED);
	writeback_share_release(m);
}

void cache_before_exec(void)
{
	int saved_errno = errno;

	if (cache_prepare_child(false) < 0)
		writeback_report_unwritten("before exec (lost if it succeeds)");
	if (!fdtable_in_vfork_child() && folio_config.enabled) {	/* not the parent's */
		writeback_each_mapping(before_exec_one);
		share_exit();
	}
	errno = saved_errno;
}

void cache_after_fork_child(void)
{
	page_store_forget();
	guard_after_fork_child();
	share_after_fork_child();
	writeback_after_fork_child();
}

void cache_init(void)
{
	static const struct fdtable_cache_ops ops = {
		.mapping_new = cache_mapping_new,
		.mapping_reopened = cache_mapping_reopened,
		.set_kfd = cache_set_kfd,
		.mapping_unwritten = cache_mapping_unwritten,
		.mapping_retire = cache_mapping_retire,
		.mapping_free = cache_mapping_free,
		.ofile_opened = cache_ofile_opened,
		.ofile_release = cache_ofile_release,
		.std_fd = cache_std_fd,
	};

	fdtable_set_cache_ops(&ops);
	journal_fd_ops = (struct journal_fd_ops){ fdtable_own, fdtable_close_own };
	guard_init();
}
