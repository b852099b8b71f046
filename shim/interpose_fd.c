/*
 * interpose_fd.c - calls that close, duplicate, change or lock fds.  The fd
 * slots follow the kernel's fd table exactly: a slot is emptied before libc
 * closes its fd (so a racing open of the same number is never forgotten),
 * and filled after libc created a duplicate.  folio's own fds stay out of the
 * program's reach: close() does not see them, dup2() moves them first,
 * close_range() and closefrom() close around them.
 */
#include <stdarg.h>
#include <stdint.h>
#include <sys/file.h>
#include <unistd.h>

#include "interpose.h"
#include "unwind.h"

int tracked_close(int fd)
{
	struct ofile *of;
	int ret, cancel;

	if (fdtable_is_owned(fd)) {	/* folio's own: not open for the program */
		errno = EBADF;
		return -1;
	}
	pthread_testcancel();
	cancel = cancel_off();
	of = fdtable_take(fd);
	if (!of) {
		cancel_restore(cancel);
		return real_close(fd);
	}
	ret = cache_close(of, fd);
	ofile_put(of);
	cancel_restore(cancel);
	return ret;
}

FOLIO_EXPORT int close(int fd)
{
	if (likely(!fd_tracked(fd)))
		return real_close(fd);
	return tracked_close(fd);
}

FOLIO_EXPORT int close_range(unsigned int first, unsigned int last, int flags)
{
	const int known = CLOSE_RANGE_UNSHARE | CLOSE_RANGE_CLOEXEC;

	/* Forget only what the kernel is about to close: never on EINVAL. */
	if (first > last || (flags & ~known) || (flags & CLOSE_RANGE_CLOEXEC))
		return real_close_range(first, last, flags);
	fdtable_forget_range(first, last);
	return fdtable_close_range_unowned(first, last, flags);
}

FOLIO_EXPORT void closefrom(int lowfd)
{
	unsigned int first = lowfd < 0 ? 0 : lowfd;	/* as glibc clamps it */
	int saved_errno = errno;

	fdtable_forget_range(first, ~0u);
	if (fdtable_close_range_unowned(first, ~0u, 0) < 0 && errno == ENOSYS)
		real_closefrom(lowfd);
	errno = saved_errno;
}

static int duplicated(int oldfd, int newfd)
{
	if (newfd >= 0 && newfd != oldfd)
		fdtable_dup(oldfd, newfd);
	return newfd;
}

FOLIO_EXPORT int dup(int fd)
{
	return duplicated(fd, real_dup(fd));
}

/*
 * dup2 and dup3 close @newfd if it is open: its slot is emptied first, as
 * close() does, and given back if the call fails (then nothing was closed).
 */
static int duplicated_onto(int oldfd, int newfd, int ret, struct ofile *replaced)
{
	if (replaced) {
		if (ret < 0)
			fdtable_restore(newfd, replaced);
		else
			ofile_put(replaced);
	}
	return duplicated(oldfd, ret);
}

/*
 * Before dup2/dup3 onto @newfd: if folio owns that number, move folio's fd
 * away (the program may use any number it likes).  Returns the number to
 * close if the call then fails, or -1.
 */
static int make_room(int newfd)
{
	return unlikely(fdtable_is_owned(newfd)) ? fdtable_move_owned(newfd) : -1;
}

static int room_used(int ret, int lost)
{
	if (ret < 0 && lost >= 0) {
		int saved_errno = errno;

		real_close(lost);
		errno = saved_errno;
	}
	return ret;
}

FOLIO_EXPORT int dup2(int oldfd, int newfd)
{
	int lost = oldfd != newfd ? make_room(newfd) : -1;
	struct ofile *replaced = oldfd != newfd ? fdtable_take(newfd) : NULL;

	return room_used(duplicated_onto(oldfd, newfd, real_dup2(oldfd, newfd), replaced), lost);
}

FOLIO_EXPORT int dup3(int oldfd, int newfd, int flags)
{
	int lost = oldfd != newfd ? make_room(newfd) : -1;
	struct ofile *replaced = oldfd != newfd ? fdtable_take(newfd) : NULL;

	return room_used(duplicated_onto(oldfd, newfd, real_dup3(oldfd, newfd, flags), replaced),
			 lost);
}

/*
 * Not a call folio tracks: libunwind's.  On its first unwind libunwind opens
 * a pipe it keeps for good (it validates addresses by writing them to it);
 * made in the lowest free numbers, it would shift the program's own and be
 * at the mercy of the program's closefrom() and dup2().  So a pipe made while
 * folio unwinds goes high in the fd space, as folio's own (fdtable_adopt()).
 */
FOLIO_EXPORT int pipe2(int fds[2], int flags)
{
	int ret = real_pipe2(fds, flags);

	if (unlikely(unwind_active) && ret == 0) {
		for (int i = 0; i < 2; i++)
			fds[i] = fdtable_adopt(fds[i]);
	}
	return ret;
}

/* What fcntl's answer means for the fd slots. */
static int fcntl_done(int fd, int cmd, void *arg, int ret)
{
	if (ret < 0)
		return ret;
	switch (cmd) {
	case F_DUPFD:
	case F_DUPFD_CLOEXEC:
		return duplicated(fd, ret);
	case F_SETFL:
		if (fd_tracked(fd))
			fdtable_set_flags(fd, (int)(long)arg);
		return ret;
	default:
		return ret;
	}
}

/*
 * The optional argument is read as a pointer-sized value whatever @cmd is,
 * as glibc itself does: every fcntl argument is an int or a pointer.
 */
/*
 * File locks on a tracked file are where processes that share it meet, so
 * the cache keeps lock consistency, as NFS does: before a lock is released
 * what folio holds goes to the kernel; once one is taken, what another
 * process changed meanwhile is no longer served from the cache.
 */
static bool setlk_cmd(int cmd)
{
	return cmd == F_SETLK || cmd == F_SETLKW || cmd == F_OFD_SETLK || cmd == F_OFD_SETLKW;
}

/* @release: unlocking (write back first); else locking (revalidate after). */
#define LOCK_CALL(fd, release, real_call) \
	({ \
		struct ofile *of_ = ofile_get(fd); \
		int ret_; \
		if (of_ && (release)) \
			cache_lock_release(of_); \
		ret_ = (real_call); \
		if (of_ && !(release) && ret_ == 0) \
			cache_lock_acquired(of_); \
		if (of_) \
			ofile_put(of_); \
		ret_; \
	})

/* The lock type a F_SETLK* argument asks for; F_UNLCK if it is unreadable. */
static int lock_type(const void *arg)
{
	return (uintptr_t)arg < 65536 ? F_UNLCK : ((const struct flock *)arg)->l_type;
}

FOLIO_EXPORT int fcntl(int fd, int cmd, ...)
{
	va_list ap;
	void *arg;

	va_start(ap, cmd);
	arg = va_arg(ap, void *);
	va_end(ap);
	if (unlikely(fd_tracked(fd)) && setlk_cmd(cmd))
		return LOCK_CALL(fd, lock_type(arg) == F_UNLCK, real_fcntl(fd, cmd, arg));
	return fcntl_done(fd, cmd, arg, real_fcntl(fd, cmd, arg));
}
FOLIO_ALIAS64(fcntl, fcntl64);

FOLIO_EXPORT int flock(int fd, int op)
{
	if (likely(!fd_tracked(fd)))
		return real_flock(fd, op);
	return LOCK_CALL(fd, op & LOCK_UN, real_flock(fd, op));
}

FOLIO_EXPORT int lockf(int fd, int cmd, off_t len)
{
	if (likely(!fd_tracked(fd)) || cmd == F_TEST)
		return real_lockf(fd, cmd, len);
	return LOCK_CALL(fd, cmd == F_ULOCK, real_lockf(fd, cmd, len));
}
FOLIO_ALIAS64(lockf, lockf64);

