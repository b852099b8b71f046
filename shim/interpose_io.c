/*
 * interpose_io.c - read, write and everything that moves data, positions,
 * sizes or syncs an fd.  See interpose.h for the rules every wrapper follows.
 *
 * Positioned reads (pread, preadv) reach the cache inside one RCU read-side
 * section, holding the ofile without a reference count: a hit writes no
 * shared cache line (a reference count measured 27% fewer 2-thread calls,
 * make bench); a miss takes a reference itself.  Everything else may wait
 * for a lock (the file position, the write lock) and takes a reference.
 *
 * Each tracked call first catches up if another process opened a file this
 * one holds (share.h): one load, before any lock or read-side section.
 */
#include "callers.h"
#include "interpose.h"
#include "rcu.h"
#include "share.h"
#include "writeback.h"

/* Not in a handler that interrupted a call of folio's: that call's thread
 * may hold a lock the catch-up takes; it or the flusher catches up. */
static inline void share_check(void)
{
	if (unlikely(share_pending()) && !folio_call_depth)
		share_catch_up(true);
}

/*
 * The tracked half of a call that takes a reference on the ofile: begin
 * takes the reference on @fd's ofile and turns cancellation off (false: @fd
 * is not tracked now, call libc); end drops both and counts the call as
 * @kind for FOLIO_CALLERS (CALL_KINDS: not counted), returning @ret.  See
 * cancel_off() for @cancel_point: whether libc's call is a cancellation
 * point.
 */
struct tracked_call {
	struct ofile *of;
	int cancel;
};

static inline bool tracked_begin(struct tracked_call *c, int fd, bool cancel_point)
{
	if (cancel_point)
		pthread_testcancel();
	share_check();
	c->of = ofile_get(fd);
	if (!c->of)
		return false;
	c->cancel = cancel_off();
	folio_call_depth++;
	return true;
}

static inline ssize_t tracked_end(struct tracked_call *c, enum call_kind kind, ssize_t ret)
{
	folio_call_depth--;
	ofile_put(c->of);
	cancel_restore(c->cancel);
	if (kind != CALL_KINDS)
		callers_note(kind, ret);
	return ret;
}

ssize_t tracked_read(int fd, void *buf, size_t count)
{
	struct tracked_call c;

	if (!tracked_begin(&c, fd, true))
		return real_read(fd, buf, count);
	return tracked_end(&c, CALL_READ, cache_read(c.of, fd, buf, count));
}

ssize_t tracked_write(int fd, const void *buf, size_t count)
{
	struct tracked_call c;

	if (!tracked_begin(&c, fd, true))
		return real_write(fd, buf, count);
	return tracked_end(&c, CALL_WRITE, cache_write(c.of, fd, buf, count));
}

/* Not a cancellation point, and cache_lseek() guards its write-back itself. */
off_t tracked_lseek(int fd, off_t offset, int whence)
{
	struct ofile *of;
	off_t ret;

	share_check();
	of = ofile_get(fd);
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
	share_check();
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
	struct tracked_call c;

	if (!tracked_begin(&c, fd, true))
		return real_pwrite64(fd, buf, count, offset);
	return tracked_end(&c, CALL_PWRITE, cache_pwrite(c.of, fd, buf, count, offset));
}

/* @offset -1 means the file position, as for preadv2(2). */
static ssize_t tracked_readv(int fd, const struct iovec *iov, int iovcnt, off_t offset,
			     int flags)
{
	struct tracked_call c;
	struct ofile *of;
	ssize_t ret;

	if (offset == -1) {	/* at the file position: a lock to take */
		if (!tracked_begin(&c, fd, true))
			return real_preadv64v2(fd, iov, iovcnt, offset, flags);
		return tracked_end(&c, CALL_READV,
				   cache_readv(c.of, fd, iov, iovcnt, offset, flags));
	}
	pthread_testcancel();
	share_check();
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
	struct tracked_call c;

	if (!tracked_begin(&c, fd, true))
		return real_pwritev64v2(fd, iov, iovcnt, offset, flags);
	return tracked_end(&c, offset == -1 ? CALL_WRITEV : CALL_PWRITEV,
			   cache_writev(c.of, fd, iov, iovcnt, offset, flags));
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
 * The less frequent calls share one shape, so one line defines each: the
 * exported @name(@params) passes an untracked fd to libc's @name(@args) and
 * a tracked one to @cache_call (with c.of and fd in scope), counted as
 * @kind; @cancel_point as for tracked_begin().
 */
#define FOLIO_TRACKED(type, name, params, args, cache_call, kind, cancel_point) \
	FOLIO_EXPORT type name params \
	{ \
		struct tracked_call c; \
 \
		if (likely(!fd_tracked(fd)) || !tracked_begin(&c, fd, cancel_point)) \
			return real_##name args; \
		return tracked_end(&c, kind, cache_call); \
	}

FOLIO_TRACKED(int, ftruncate, (int fd, off_t length), (fd, length),
	      cache_ftruncate(c.of, fd, length), CALL_KINDS, false)
FOLIO_ALIAS64(ftruncate, ftruncate64);
FOLIO_TRACKED(int, fallocate, (int fd, int mode, off_t offset, off_t length),
	      (fd, mode, offset, length), cache_fallocate(c.of, fd, mode, offset, length),
	      CALL_KINDS, true)
FOLIO_ALIAS64(fallocate, fallocate64);
FOLIO_TRACKED(int, posix_fallocate, (int fd, off_t offset, off_t length), (fd, offset, length),
	      cache_posix_fallocate(c.of, fd, offset, length), CALL_KINDS, false)
FOLIO_ALIAS64(posix_fallocate, posix_fallocate64);
FOLIO_TRACKED(int, posix_fadvise, (int fd, off_t offset, off_t length, int advice),
	      (fd, offset, length, advice), cache_fadvise(c.of, fd, offset, length, advice),
	      CALL_KINDS, false)
FOLIO_ALIAS64(posix_fadvise, posix_fadvise64);
FOLIO_TRACKED(ssize_t, readahead, (int fd, off64_t offset, size_t count), (fd, offset, count),
	      cache_readahead(c.of, fd, offset, count), CALL_KINDS, false)
FOLIO_TRACKED(int, fsync, (int fd), (fd), cache_fsync(c.of, fd, false), CALL_FSYNC, true)
FOLIO_TRACKED(int, fdatasync, (int fd), (fd), cache_fsync(c.of, fd, true), CALL_FDATASYNC, true)
FOLIO_TRACKED(int, sync_file_range, (int fd, off64_t offset, off64_t nbytes, unsigned int flags),
	      (fd, offset, nbytes, flags), cache_sync_file_range(c.of, fd, offset, nbytes, flags),
	      CALL_KINDS, true)

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
