/*
 * interpose_io.c - read, write and everything that moves data, positions,
 * sizes or syncs an fd.  See interpose.h for the rules every wrapper follows.
 *
 * Positioned reads (pread, preadv) reach the cache inside one RCU read-side
 * section, holding the ofile without a reference count: a hit writes no
 * shared cache line (a reference count measured 27% fewer 2-thread calls,
 * make bench); a miss takes a reference itself.  Everything else may wait
 * for a lock (the file position, the write lock) and takes a reference.
 */
#include "callers.h"
#include "interpose.h"
#include "rcu.h"
#include "writeback.h"

/*
 * The tracked half of a call that takes a reference on the ofile, counted
 * as @kind by FOLIO_CALLERS (CALL_KINDS: not counted).  See cancel_off()
 * for @cancel_point: whether libc's call is a cancellation point.
 */
#define TRACKED_REF_AS(type, fd, real_call, cache_call, kind, cancel_point) \
	do { \
		struct ofile *of; \
		type ret; \
		int cancel_; \
		if (cancel_point) \
			pthread_testcancel(); \
		of = ofile_get(fd); \
		if (!of) \
			return real_call; \
		cancel_ = cancel_off(); \
		folio_call_depth++; \
		ret = cache_call; \
		folio_call_depth--; \
		ofile_put(of); \
		cancel_restore(cancel_); \
		if ((kind) != CALL_KINDS) \
			callers_note(kind, ret); \
		return ret; \
	} while (0)

/* read, write and their forms: cancellation points. */
#define TRACKED_REF_NOTED(type, fd, real_call, cache_call, kind) \
	TRACKED_REF_AS(type, fd, real_call, cache_call, kind, true)

ssize_t tracked_read(int fd, void *buf, size_t count)
{
	TRACKED_REF_NOTED(ssize_t, fd, real_read(fd, buf, count), cache_read(of, fd, buf, count),
			  CALL_READ);
}

ssize_t tracked_write(int fd, const void *buf, size_t count)
{
	TRACKED_REF_NOTED(ssize_t, fd, real_write(fd, buf, count),
			  cache_write(of, fd, buf, count), CALL_WRITE);
}

/* Not a cancellation point, and cache_lseek() guards its write-back itself. */
off_t tracked_lseek(int fd, off_t offset, int whence)
{
	struct ofile *of = ofile_get(fd);
	off_t ret;

	if (!of)
		return real_lseek64(fd, offset, whence);
	folio_call_depth++;
	ret = cache_lseek(of, fd, offset, whence);
	folio_call_depth--;
	ofile_put(of);
	return ret;
}

static ssize_t tracked_pread(int fd, void *buf, size_t count, off_t offset)
{
	struct ofile *of;
	ssize_t ret;

	pthread_testcancel();
	urcu_bp_read_lock();
	of = ofile_rcu(fd);
	if (!of) {
		urcu_bp_read_unlock();
		return real_pread64(fd, buf, count, offset);
	}
	ret = cache_pread(of, fd, buf, count, offset);
	urcu_bp_read_unlock();
	callers_note(CALL_PREAD, ret);
	return ret;
}

static ssize_t tracked_pwrite(int fd, const void *buf, size_t count, off_t offset)
{
	TRACKED_REF_NOTED(ssize_t, fd, real_pwrite64(fd, buf, count, offset),
			  cache_pwrite(of, fd, buf, count, offset), CALL_PWRITE);
}

/* @offset -1 means the file position, as for preadv2(2). */
static ssize_t tracked_readv(int fd, const struct iovec *iov, int iovcnt, off_t offset,
			     int flags)
{
	struct ofile *of;
	ssize_t ret;

	if (offset == -1)	/* at the file position: a lock to take */
		TRACKED_REF_NOTED(ssize_t, fd, real_preadv64v2(fd, iov, iovcnt, offset, flags),
				  cache_readv(of, fd, iov, iovcnt, offset, flags), CALL_READV);
	pthread_testcancel();
	urcu_bp_read_lock();
	of = ofile_rcu(fd);
	if (!of) {
		urcu_bp_read_unlock();
		return real_preadv64v2(fd, iov, iovcnt, offset, flags);
	}
	ret = cache_readv(of, fd, iov, iovcnt, offset, flags);
	urcu_bp_read_unlock();
	callers_note(CALL_PREADV, ret);
	return ret;
}

static ssize_t tracked_writev(int fd, const struct iovec *iov, int iovcnt, off_t offset,
			      int flags)
{
	TRACKED_REF_NOTED(ssize_t, fd, real_pwritev64v2(fd, iov, iovcnt, offset, flags),
			  cache_writev(of, fd, iov, iovcnt, offset, flags),
			  offset == -1 ? CALL_WRITEV : CALL_PWRITEV);
}

/* preadv(2) and pwritev(2) refuse a negative offset before looking at fd. */
static ssize_t einval(void)
{
	errno = EINVAL;
	return -1;
}

FOLIO_EXPORT ssize_t read(int fd, void *buf, size_t count)
{
	if (likely(!fd_tracked(fd)))
		return real_read(fd, buf, count);
	return tracked_read(fd, buf, count);
}

FOLIO_EXPORT ssize_t __read_chk(int fd, void *buf, size_t count, size_t buflen)
{
	if (likely(!fd_tracked(fd)))
		return real___read_chk(fd, buf, count, buflen);
	if (count > buflen)
		__chk_fail();
	return tracked_read(fd, buf, count);
}

FOLIO_EXPORT ssize_t write(int fd, const void *buf, size_t count)
{
	if (likely(!fd_tracked(fd)))
		return real_write(fd, buf, count);
	return tracked_write(fd, buf, count);
}

FOLIO_EXPORT ssize_t pread(int fd, void *buf, size_t count, off_t offset)
{
	if (likely(!fd_tracked(fd)))
		return real_pread(fd, buf, count, offset);
	return tracked_pread(fd, buf, count, offset);
}
FOLIO_ALIAS64(pread, pread64);

FOLIO_EXPORT ssize_t __pread_chk(int fd, void *buf, size_t count, off_t offset, size_t buflen)
{
	if (likely(!fd_tracked(fd)))
		return real___pread_chk(fd, buf, count, offset, buflen);
	if (count > buflen)
		__chk_fail();
	return tracked_pread(fd, buf, count, offset);
}
FOLIO_ALIAS64(__pread_chk, __pread64_chk);

FOLIO_EXPORT ssize_t pwrite(int fd, const void *buf, size_t count, off_t offset)
{
	if (likely(!fd_tracked(fd)))
		return real_pwrite(fd, buf, count, offset);
	return tracked_pwrite(fd, buf, count, offset);
}
FOLIO_ALIAS64(pwrite, pwrite64);

FOLIO_EXPORT ssize_t readv(int fd, const struct iovec *iov, int iovcnt)
{
	if (likely(!fd_tracked(fd)))
		return real_readv(fd, iov, iovcnt);
	return tracked_readv(fd, iov, iovcnt, -1, 0);
}

FOLIO_EXPORT ssize_t writev(int fd, const struct iovec *iov, int iovcnt)
{
	if (likely(!fd_tracked(fd)))
		return real_writev(fd, iov, iovcnt);
	return tracked_writev(fd, iov, iovcnt, -1, 0);
}

FOLIO_EXPORT ssize_t preadv(int fd, const struct iovec *iov, int iovcnt, off_t offset)
{
	if (likely(!fd_tracked(fd)))
		return real_preadv(fd, iov, iovcnt, offset);
	return offset < 0 ? einval() : tracked_readv(fd, iov, iovcnt, offset, 0);
}
FOLIO_ALIAS64(preadv, preadv64);

FOLIO_EXPORT ssize_t pwritev(int fd, const struct iovec *iov, int iovcnt, off_t offset)
{
	if (likely(!fd_tracked(fd)))
		return real_pwritev(fd, iov, iovcnt, offset);
	return offset < 0 ? einval() : tracked_writev(fd, iov, iovcnt, offset, 0);
}
FOLIO_ALIAS64(pwritev, pwritev64);

FOLIO_EXPORT ssize_t preadv2(int fd, const struct iovec *iov, int iovcnt, off_t offset,
			     int flags)
{
	if (likely(!fd_tracked(fd)))
		return real_preadv2(fd, iov, iovcnt, offset, flags);
	return tracked_readv(fd, iov, iovcnt, offset, flags);
}
FOLIO_ALIAS64(preadv2, preadv64v2);

FOLIO_EXPORT ssize_t pwritev2(int fd, const struct iovec *iov, int iovcnt, off_t offset,
			      int flags)
{
	if (likely(!fd_tracked(fd)))
		return real_pwritev2(fd, iov, iovcnt, offset, flags);
	return tracked_writev(fd, iov, iovcnt, offset, flags);
}
FOLIO_ALIAS64(pwritev2, pwritev64v2);

FOLIO_EXPORT off_t lseek(int fd, off_t offset, int whence)
{
	if (likely(!fd_tracked(fd)))
		return real_lseek(fd, offset, whence);
	return tracked_lseek(fd, offset, whence);
}
FOLIO_ALIAS64(lseek, lseek64);

/*
 * The less frequent calls share one shape: untracked -> libc; tracked ->
 * reference, cache, release.  TRACKED_CALL for those that are not
 * cancellation points in libc, TRACKED_CALL_POINT for those that are.
 */
#define TRACKED_CALL(type, fd, real_call, cache_fn, ...) \
	TRACKED_CALL_AS(type, fd, real_call, cache_fn, CALL_KINDS, false, ##__VA_ARGS__)

#define TRACKED_CALL_POINT(type, fd, real_call, cache_fn, kind, ...) \
	TRACKED_CALL_AS(type, fd, real_call, cache_fn, kind, true, ##__VA_ARGS__)

#define TRACKED_CALL_AS(type, fd, real_call, cache_fn, kind, cancel_point, ...) \
	do { \
		if (likely(!fd_tracked(fd))) \
			return real_call; \
		TRACKED_REF_AS(type, fd, real_call, cache_fn(of, fd, ##__VA_ARGS__), kind, \
			       cancel_point); \
	} while (0)

FOLIO_EXPORT int ftruncate(int fd, off_t length)
{
	TRACKED_CALL(int, fd, real_ftruncate(fd, length), cache_ftruncate, length);
}
FOLIO_ALIAS64(ftruncate, ftruncate64);

FOLIO_EXPORT int fallocate(int fd, int mode, off_t offset, off_t length)
{
	TRACKED_CALL_POINT(int, fd, real_fallocate(fd, mode, offset, length), cache_fallocate,
			   CALL_KINDS, mode, offset, length);
}
FOLIO_ALIAS64(fallocate, fallocate64);

FOLIO_EXPORT int posix_fallocate(int fd, off_t offset, off_t length)
{
	TRACKED_CALL(int, fd, real_posix_fallocate(fd, offset, length), cache_posix_fallocate,
		     offset, length);
}
FOLIO_ALIAS64(posix_fallocate, posix_fallocate64);

FOLIO_EXPORT int posix_fadvise(int fd, off_t offset, off_t length, int advice)
{
	TRACKED_CALL(int, fd, real_posix_fadvise(fd, offset, length, advice), cache_fadvise,
		     offset, length, advice);
}
FOLIO_ALIAS64(posix_fadvise, posix_fadvise64);

FOLIO_EXPORT ssize_t readahead(int fd, off64_t offset, size_t count)
{
	TRACKED_CALL(ssize_t, fd, real_readahead(fd, offset, count), cache_readahead,
		     offset, count);
}

FOLIO_EXPORT int fsync(int fd)
{
	TRACKED_CALL_POINT(int, fd, real_fsync(fd), cache_fsync, CALL_FSYNC, false);
}

FOLIO_EXPORT int fdatasync(int fd)
{
	TRACKED_CALL_POINT(int, fd, real_fdatasync(fd), cache_fsync, CALL_FDATASYNC, true);
}

FOLIO_EXPORT int sync_file_range(int fd, off64_t offset, off64_t nbytes, unsigned int flags)
{
	TRACKED_CALL_POINT(int, fd, real_sync_file_range(fd, offset, nbytes, flags),
			   cache_sync_file_range, CALL_KINDS, offset, nbytes, flags);
}

/* Whole-system and whole-file-system syncs write back every tracked file. */
FOLIO_EXPORT void sync(void)
{
	cache_writeback_all();
	real_sync();
}

FOLIO_EXPORT int syncfs(int fd)
{
	cache_writeback_all();
	return real_syncfs(fd);
}

/*
 * A mapped tracked file passes through while mapped, but msync is a sync
 * point all the same: the program asked for its data to be in the kernel.
 */
FOLIO_EXPORT int msync(void *addr, size_t length, int flags)
{
	cache_writeback_all();
	return real_msync(addr, length, flags);
}
