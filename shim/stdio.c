/*
 * stdio.c - streams on tracked files.
 *
 * glibc's stdio reads and writes through its internal __read/__write, which
 * no wrapper sees.  So fopen() and fdopen() of a tracked file return a
 * stream made with fopencookie() whose callbacks go through folio, and every
 * stdio call on it stays coherent with fd I/O.  The stream's _fileno is set
 * to the real fd (glibc marks cookie streams with -2 and treats any other
 * value as a file), so fileno() works as on a native stream.  Everything
 * else gets libc's own stream.
 *
 * freopen() of one of folio's streams is done by folio (glibc cannot reopen
 * a cookie stream); the stream stays folio's, tracked or not.  freopen() of
 * a libc stream stays libc's: a libc stream reopened onto a tracked file
 * passes through.
 *
 * Calls interpose (the tracked halves of read, write, lseek and close),
 * fdtable, cache, config, log and real; called by interpose.
 */
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio_ext.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "interpose.h"
#include "log.h"

/*
 * A stream folio made.  The cookie is this struct, not the fd itself, so
 * freopen() can tell folio's streams from libc's.
 */
struct folio_stream {
	FILE *stream;
	int fd;
	struct folio_stream *next;
};

static struct folio_stream *streams;	/* every live folio stream */
static pthread_mutex_t streams_lock = PTHREAD_MUTEX_INITIALIZER;

static ssize_t cookie_read(void *cookie, char *buf, size_t size)
{
	return tracked_read(((struct folio_stream *)cookie)->fd, buf, size);
}

static ssize_t cookie_write(void *cookie, const char *buf, size_t size)
{
	return tracked_write(((struct folio_stream *)cookie)->fd, buf, size);
}

static int cookie_seek(void *cookie, off64_t *offset, int whence)
{
	off_t pos = tracked_lseek(((struct folio_stream *)cookie)->fd, *offset, whence);

	if (pos < 0)
		return -1;
	*offset = pos;
	return 0;
}

static int cookie_close(void *cookie)
{
	struct folio_stream *fs = cookie, **p;
	int fd = fs->fd;

	pthread_mutex_lock(&streams_lock);
	for (p = &streams; *p; p = &(*p)->next) {
		if (*p == fs) {
			*p = fs->next;
			break;
		}
	}
	pthread_mutex_unlock(&streams_lock);
	free(fs);
	return tracked_close(fd);
}

static const cookie_io_functions_t tracked_stream_io = {
	.read = cookie_read,
	.write = cookie_write,
	.seek = cookie_seek,
	.close = cookie_close,
};

/*
 * The fopencookie() mode for open(2) @flags: it reads only the direction
 * and append flag, and only in this spelling ("wx+" would be write-only).
 */
static const char *cookie_mode(int flags)
{
	bool append = flags & O_APPEND;

	switch (flags & O_ACCMODE) {
	case O_RDONLY:
		return "r";
	case O_WRONLY:
		return append ? "a" : "w";
	default:
		return append ? "a+" : "r+";
	}
}

/* A folio stream on @fd, opened with open(2) @flags. */
/* real_open() for a stream, keeping a cached file coherent across O_TRUNC. */
static int open_truncating(const char *path, int flags)
{
	int cancel, fd;
	struct ofile *trunc = (flags & O_TRUNC) ? trunc_begin(AT_FDCWD, path, &cancel) : NULL;

	fd = real_open(path, flags, 0666);
	if (trunc)
		trunc_end(trunc, fd, cancel);
	return fd;
}

/* As glibc's fopen() does (its fdopen() of an O_APPEND fd does not). */
static void append_stream_to_end(int fd, int flags)
{
	if ((flags & O_APPEND) && (flags & O_ACCMODE) == O_WRONLY)
		tracked_lseek(fd, 0, SEEK_END);
}

static FILE *tracked_stream(int fd, int flags)
{
	struct folio_stream *fs = malloc(sizeof(*fs));
	FILE *stream;

	if (!fs)
		return NULL;
	fs->fd = fd;
	stream = fopencookie(fs, cookie_mode(flags), tracked_stream_io);
	if (!stream) {
		free(fs);
		return NULL;
	}
	stream->_fileno = fd;
	fs->stream = stream;
	pthread_mutex_lock(&streams_lock);
	fs->next = streams;
	streams = fs;
	pthread_mutex_unlock(&streams_lock);
	append_stream_to_end(fd, flags);
	return stream;
}

/*
 * Flush every folio stream into folio, before folio's final write-back: at
 * exit glibc flushes streams only after the destructors ran.  Unlocked, as
 * glibc's own exit-time flush, so a thread stopped inside a stream cannot
 * hang the exit.
 */
void stdio_flush_all(void)
{
	int tries = 0;

	if (fdtable_in_vfork_child())	/* the parent's streams, not ours */
		return;
	/* Others hold the lock only briefly; never wait for ever at exit. */
	while (pthread_mutex_trylock(&streams_lock)) {
		if (++tries == 1000)
			return;
		sched_yield();
	}
	for (struct folio_stream *fs = streams; fs; fs = fs->next)
		fflush_unlocked(fs->stream);
	pthread_mutex_unlock(&streams_lock);
}

void stdio_before_fork(void)
{
	pthread_mutex_lock(&streams_lock);
}

void stdio_after_fork_parent(void)
{
	pthread_mutex_unlock(&streams_lock);
}

void stdio_after_fork_child(void)
{
	pthread_mutex_init(&streams_lock, NULL);
}

static struct folio_stream *find_stream(FILE *stream)
{
	struct folio_stream *fs;

	pthread_mutex_lock(&streams_lock);
	for (fs = streams; fs && fs->stream != stream; fs = fs->next)
		;
	pthread_mutex_unlock(&streams_lock);
	return fs;
}

/*
 * open(2) flags for an fopen() mode, or -1 for a mode folio leaves to libc
 * (anything it does not fully understand, such as ",ccs=").
 */
static int mode_flags(const char *mode)
{
	int flags;

	switch (*mode) {
	case 'r': flags = O_RDONLY; break;
	case 'w': flags = O_WRONLY | O_CREAT | O_TRUNC; break;
	case 'a': flags = O_WRONLY | O_CREAT | O_APPEND; break;
	default: return -1;
	}
	for (const char *m = mode + 1; *m; m++) {
		switch (*m) {
		case '+': flags = (flags & ~O_ACCMODE) | O_RDWR; break;
		case 'x': flags |= O_EXCL; break;
		case 'e': flags |= O_CLOEXEC; break;
		case 'b': case 't': case 'm': case 'c': break;
		default: return -1;
		}
	}
	return flags;
}

/* fopen() of a file that may be tracked: open it, then choose the stream. */
static FILE *open_stream(const char *path, const char *mode, int flags)
{
	int fd = open_truncating(path, flags);
	FILE *stream;

	if (fd < 0)
		return NULL;
	opened(fd, AT_FDCWD, path, flags);
	if (fd_tracked(fd)) {
		stream = tracked_stream(fd, flags);
	} else if ((stream = real_fdopen(fd, mode))) {	/* not cached after all */
		append_stream_to_end(fd, flags);
	}
	if (!stream) {
		int saved_errno = errno;

		tracked_close(fd);
		errno = saved_errno;
	}
	return stream;
}

FOLIO_EXPORT FILE *fopen(const char *path, const char *mode)
{
	int flags;

	if (likely(!folio_config.enabled) || !path || !mode ||
	    (flags = mode_flags(mode)) < 0 || !fdtable_path_may_track(path))
		return real_fopen(path, mode);
	return open_stream(path, mode, flags);
}

FOLIO_EXPORT FILE *fopen64(const char *path, const char *mode)
{
	int flags;

	if (likely(!folio_config.enabled) || !path || !mode ||
	    (flags = mode_flags(mode)) < 0 || !fdtable_path_may_track(path))
		return real_fopen64(path, mode);
	return open_stream(path, mode, flags);
}

/*
 * fdopen() of a tracked fd, with fdopen's own checks: the mode must fit the
 * fd's access mode, and "a" turns O_APPEND on.
 */
static FILE *fdopen_tracked(int fd, const char *mode)
{
	int want = mode_flags(mode), have = real_fcntl(fd, F_GETFL, NULL);

	if (have < 0)
		return NULL;
	if (((want & O_ACCMODE) != O_WRONLY && (have & O_ACCMODE) == O_WRONLY) ||
	    ((want & O_ACCMODE) != O_RDONLY && (have & O_ACCMODE) == O_RDONLY)) {
		errno = EINVAL;
		return NULL;
	}
	if ((want & O_APPEND) && !(have & O_APPEND)) {
		if (real_fcntl(fd, F_SETFL, (void *)(long)(have | O_APPEND)) < 0)
			return NULL;
		fdtable_set_flags(fd, have | O_APPEND);
	}
	return tracked_stream(fd, want);
}

/* Stop tracking @fd: a libc stream is about to read and write it unseen. */
static void untrack_for_libc_stream(int fd)
{
	struct ofile *of = fdtable_take(fd);

	if (of) {
		log_info("fd %d passes through from now on: a libc stream uses it", fd);
		ofile_put(of);
	}
}

FOLIO_EXPORT FILE *fdopen(int fd, const char *mode)
{
	if (likely(!fd_tracked(fd)) || !mode)
		return real_fdopen(fd, mode);
	if (mode_flags(mode) < 0) {	/* e.g. ",ccs=": only libc can */
		FILE *stream = real_fdopen(fd, mode);

		if (stream)
			untrack_for_libc_stream(fd);
		return stream;
	}
	return fdopen_tracked(fd, mode);
}

/*
 * fclose() of a libc stream closes its fd inside libc, unseen: if that fd is
 * tracked (a stream opened before folio tracked the inode, or stdin reopened
 * onto a tracked file), empty its slot first, as close() does.
 */
FOLIO_EXPORT int fclose(FILE *stream)
{
	if (stream && stream->_fileno >= 0 && unlikely(fd_tracked(stream->_fileno)) &&
	    !find_stream(stream))
		untrack_for_libc_stream(stream->_fileno);
	return real_fclose(stream);
}

/*
 * glibc's freopen() cannot reopen a fopencookie() stream (it would install
 * the plain file operations over the cookie's, and crashes on its missing
 * wide-character state), so folio reopens its own streams itself, the way
 * glibc reopens a file stream: flush, open the new file, move it onto the
 * old fd number, forget buffered data, EOF, error and orientation, and take
 * the new mode.  The stream stays a cookie stream; if the new file is not
 * tracked its calls simply pass through.
 *
 * The mode bits are libio's (libio/libio.h), stable since glibc 2.0.
 */
#define LIBIO_NO_READS		0x0004
#define LIBIO_NO_WRITES		0x0008
#define LIBIO_IS_APPENDING	0x1000

static FILE *reopen_folio_stream(struct folio_stream *fs, const char *path, const char *mode)
{
	int flags = mode_flags(mode), fd, io;
	char self[FD_PROC_PATH_MAX];

	if (flags < 0) {
		errno = EINVAL;
		return NULL;
	}
	fflush(fs->stream);
	if (!path) {
		path = fd_proc_path(self, fs->fd);
		flags &= ~O_EXCL;
	}
	fd = open_truncating(path, flags);
	if (fd < 0) {
		/* As glibc: the old stream is closed either way.  The FILE stays
		 * allocated (fclose() frees it) and fails every call. */
		int saved_errno = errno;

		tracked_close(fs->fd);
		fs->fd = -1;
		fs->stream->_fileno = -1;
		errno = saved_errno;
		return NULL;
	}
	opened(fd, AT_FDCWD, path, flags);
	if (fd != fs->fd) {
		/* As dup2(): empty the old number's slot before the kernel
		 * closes it. */
		struct ofile *replaced = fdtable_take(fs->fd);

		if (real_dup3(fd, fs->fd, flags & O_CLOEXEC) < 0) {
			int saved_errno = errno;

			if (replaced)
				fdtable_restore(fs->fd, replaced);
			tracked_close(fd);
			tracked_close(fs->fd);	/* closed either way, as glibc */
			fs->fd = -1;
			fs->stream->_fileno = -1;
			errno = saved_errno;
			return NULL;
		}
		if (replaced)
			ofile_put(replaced);
		fdtable_dup(fd, fs->fd);
		tracked_close(fd);
	}
	__fpurge(fs->stream);
	clearerr(fs->stream);
	fs->stream->_offset = -1;
	fs->stream->_mode = 0;
	io = (flags & O_ACCMODE) == O_RDONLY ? LIBIO_NO_WRITES :
	     (flags & O_ACCMODE) == O_WRONLY ? LIBIO_NO_READS : 0;
	if (flags & O_APPEND)
		io |= LIBIO_IS_APPENDING;
	fs->stream->_flags = (fs->stream->_flags &
			      ~(LIBIO_NO_READS | LIBIO_NO_WRITES | LIBIO_IS_APPENDING)) | io;
	append_stream_to_end(fs->fd, flags);
	return fs->stream;
}

/* After libc reopened @stream: its fd is whatever libc made it, untracked. */
static FILE *reopened(FILE *stream, const char *path)
{
	int fd;

	if (!stream)
		return NULL;
	fd = stream->_fileno;
	if (fd >= 0 && fd_tracked(fd)) {
		struct ofile *of = fdtable_take(fd);

		if (of)
			ofile_put(of);
	}
	if (path && fdtable_path_may_track(path))
		log_info("not tracking %s: streams reopened with freopen() pass through", path);
	return stream;
}

FOLIO_EXPORT FILE *freopen(const char *path, const char *mode, FILE *stream)
{
	struct folio_stream *fs = stream && mode ? find_stream(stream) : NULL;

	if (fs)
		return reopen_folio_stream(fs, path, mode);
	return reopened(real_freopen(path, mode, stream), path);
}

FOLIO_EXPORT FILE *freopen64(const char *path, const char *mode, FILE *stream)
{
	struct folio_stream *fs = stream && mode ? find_stream(stream) : NULL;

	if (fs)
		return reopen_folio_stream(fs, path, mode);
	return reopened(real_freopen64(path, mode, stream), path);
}
