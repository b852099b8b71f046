/*
 * cache_sync.c - the sync points: fsync, folio_flush, sync_file_range, the
 * last close, a child about to run (fork, exec, spawn), and the calls that
 * change a file's attributes.  See cache.h and cache_internal.h.
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
#include "log.h"
#include "mapping.h"
#include "real.h"
#include "writeback.h"

/*
 * Write back the file of @of for a sync point of the program's: 0, or -1
 * with the error of this write-back or of one since @of last heard of one.
 */
static int writeback_for_sync(struct ofile *of)
{
	struct mapping *m = mapping_of(of);
	int err;

	if (!bypassed(m))
		mapping_writeback(m);	/* an error is recorded for every description */
	err = writeback_error_check(m, &of->wb_err_since);
	return err ? fail(err) : 0;
}

int cache_fsync(struct ofile *of, int fd, bool datasync)
{
	struct file_stats *st = mapping_of(of)->stats;
	uint64_t start = stats_now_ns();
	int ret = writeback_for_sync(of);

	if (ret == 0)
		ret = datasync ? real_fdatasync(fd) : real_fsync(fd);
	stat_add_cold(st, STAT_FSYNCS, 1);
	stat_add_cold(st, STAT_FSYNC_NS, stats_now_ns() - start);
	return ret;
}

int cache_flush(struct ofile *of)
{
	struct mapping *m = mapping_of(of);

	return bypassed(m) ? 0 : mapping_writeback(m);
}

struct file_stats *cache_file_stats(struct ofile *of)
{
	return mapping_of(of)->stats;
}

int cache_sync_file_range(struct ofile *of, int fd, off64_t offset, off64_t nbytes,
			  unsigned int flags)
{
	struct mapping *m = mapping_of(of);

	/*
	 * As the kernel: a write-back error is reported (and counts as seen)
	 * only by a call that waits; SYNC_FILE_RANGE_WRITE alone only starts
	 * the writing.
	 */
	if (flags & (SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WAIT_AFTER)) {
		if (writeback_for_sync(of) < 0)
			return -1;
	} else if ((flags & SYNC_FILE_RANGE_WRITE) && !bypassed(m)) {
		int saved_errno = errno;

		mapping_writeback(m);
		errno = saved_errno;
	}
	return real_sync_file_range(fd, offset, nbytes, flags);
}


/*
 * @fd goes to a child process (@all_fds: whatever its close-on-exec flag).
 * A writable description: the child may write the file through it, which
 * this process's cache would not see, so the file passes through from now
 * on.  Either way the position is the child's too: handed to the kernel,
 * and kept there.
 */
static void share_with_child(int fd, struct ofile *of, void *all_fds)
{
	struct mapping *m = mapping_of(of);

	if (!all_fds && (real_fcntl(fd, F_GETFD, NULL) & FD_CLOEXEC))
		return;
	if (writable(of) && !bypassed_for(m, BYPASS_SHARED) && start_bypass(m, BYPASS_SHARED))
		log_info("%s is open for writing in a child process: passing it through",
			 m->name);
	pthread_mutex_lock(&of->pos_lock);
	if (bypassed(m))
		pos_to_kernel(of, fd);
	else if (!of->pos_in_kernel) {
		real_lseek64(fd, of->pos, SEEK_SET);
		of->pos_shared = true;
	}
	pthread_mutex_unlock(&of->pos_lock);
}

int cache_prepare_child(bool all_fds)
{
	int saved_errno = errno, ret = cache_writeback_all(), err = errno;

	if (!fdtable_in_vfork_child() && fdtable_any_tracked())
		fdtable_for_each(share_with_child, all_fds ? (void *)1 : NULL);
	errno = ret == 0 ? saved_errno : err;
	return ret;
}

int cache_writeback_all(void)
{
	int saved_errno = errno, ret, cancel;

	/* The parent writes back, not its vfork child. */
	if (fdtable_in_vfork_child() || !fdtable_any_tracked())
		return 0;
	cancel = cancel_off();
	ret = writeback_all();
	cancel_restore(cancel);
	if (ret == 0)
		errno = saved_errno;
	return ret;
}

int cache_close(struct ofile *of, int fd)
{
	int err = 0, ret;

	/* The last fd of this open file description: close-to-open. */
	if (writable(of) && __atomic_load_n(&of->refs, __ATOMIC_RELAXED) == 1) {
		if (writeback_for_sync(of) < 0)
			err = errno;
		of->closing_wrote_back = true;	/* not again in cache_ofile_release() */
	}
	ret = real_close(fd);
	if (ret == 0 && err)
		return fail(err);
	return ret;
}

/* The last reference may go in any call (dup2, close_range, ...): write-back
 * with cancellation off (see cancel_off()). */
void cache_ofile_release(struct ofile *of)
{
	struct mapping *m = mapping_of(of);
	int cancel;

	if (!writable(of))
		return;
	cancel = cancel_off();
	if (!of->closing_wrote_back && !bypassed(m) && mapping_writeback(m) < 0)
		log_warn("%s: write-back failed: %s", m->name, strerror(errno));
	writeback_writer_closed();
	cancel_restore(cancel);
}

void cache_attr_begin(struct ofile *of)
{
	struct mapping *m = mapping_of(of);
	int cancel = cancel_off();

	if (!bypassed(m) && mapping_writeback(m) < 0)
		log_warn("%s: write-back before a mode change failed: %s", m->name,
			 strerror(errno));
	cancel_restore(cancel);
}

void cache_attr_end(struct ofile *of)
{
	struct mapping *m = mapping_of(of);
	int saved_errno = errno;

	pthread_rwlock_wrlock(&m->lock);
	m->privileged = m->kfd >= 0 && still_privileged(m->kfd);
	pthread_rwlock_unlock(&m->lock);
	errno = saved_errno;
}

void cache_fsize_limit_begin(rlim_t new_limit)
{
	struct rlimit rl;
	int saved_errno = errno;

	if (getrlimit(RLIMIT_FSIZE, &rl) || new_limit < rl.rlim_cur)
		cache_writeback_all();
	errno = saved_errno;
}
