/*
 * interpose.h - what the interpose files share.
 *
 * The interpose layer (doc/design.md §2.1) is every exported libc symbol folio
 * overrides, and nothing else, split by kind of call:
 *   interpose.c       constructor, destructor, fork handlers, folio.h API
 *   interpose_open.c  open, creat, the mkstemp family
 *   interpose_io.c    read, write and their positioned, vectored and
 *                     fortified forms; lseek, sizes, advice, sync
 *   interpose_fd.c    close, close_range, closefrom, dup*, fcntl, flock, lockf
 *   interpose_meta.c  the stat family, rename, unlink
 *   interpose_map.c   mmap, munmap, mremap, sendfile, copy_file_range, splice
 *   interpose_proc.c  fork, vfork, posix_spawn, system, popen, exec*, exit
 *   stdio.c           fopen, fdopen, freopen: fopencookie streams for
 *                     tracked files
 *
 * Every wrapper on an fd starts with fd_tracked(fd): untracked fds (almost
 * all) tail-call libc with no lock, allocation or system call.  A tracked fd
 * takes a reference on its ofile (ofile_get), calls the cache and drops the
 * reference: typed begin/end helpers (tracked_begin/tracked_end, copy_begin/
 * copy_end) around the cache's call, no macro that returns for its caller;
 * the calls of one shape are one FOLIO_TRACKED line each, and a *64 twin of
 * the same types one FOLIO_ALIAS64 line.  Wrappers leave errno exactly as
 * libc would.
 *
 * Calls fdtable, cache and real; also config, log, rcu, stats, callers and
 * stdio, and reads writeback's and unwind's thread-local flags.
 */
#ifndef FOLIO_INTERPOSE_H
#define FOLIO_INTERPOSE_H

#include "cache.h"
#include "fdtable.h"
#include "real.h"

/*
 * The tracked halves of read, write, lseek and close, shared with the stdio
 * cookie streams.  Each falls back to libc if @fd stopped being tracked.
 */
ssize_t tracked_read(int fd, void *buf, size_t count);
ssize_t tracked_write(int fd, const void *buf, size_t count);
off_t tracked_lseek(int fd, off_t offset, int whence);
int tracked_close(int fd);

/*
 * After libc opened @fd for @path (if it did): fdtable_open() decides
 * whether it is tracked, with cancellation off (see cancel_off()).
 */
static inline int opened(int fd, int dirfd, const char *path, int flags)
{
	if (fd >= 0) {
		int cancel = cancel_off();

		fdtable_open(fd, dirfd, path, flags);
		cancel_restore(cancel);
	}
	return fd;
}

/*
 * Around an open with O_TRUNC of a file that may be cached: its write lock
 * is held across the open (see cache_trunc_begin()), with cancellation off;
 * a pending cancellation acts first, as at libc's open.  NULL if the file
 * is not cached (then nothing is held).
 */
static inline struct ofile *trunc_begin(int dirfd, const char *path, int *cancel)
{
	struct ofile *of;

	pthread_testcancel();
	*cancel = cancel_off();
	of = cache_trunc_begin(dirfd, path);
	if (!of)
		cancel_restore(*cancel);
	return of;
}

static inline void trunc_end(struct ofile *of, int fd, int cancel)
{
	cache_trunc_end(of, fd);
	cancel_restore(cancel);
}

/* stdio.c: flush folio's streams into folio (exit); fork handlers. */
void stdio_flush_all(void);
void stdio_before_fork(void);
void stdio_after_fork_parent(void);
void stdio_after_fork_child(void);

/*
 * In a child made by _Fork (no fork handlers ran): forget every tracked fd
 * and stop tracking for good.  Async-signal-safe.
 */
void folio_passthrough_child(void);

#endif
