/*
 * cache_size.c - the entry points for file positions and sizes: lseek,
 * truncate, fallocate, fadvise and readahead.  See cache.h and
 * cache_internal.h.
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
#include "mapping.h"
#include "real.h"
#include "writeback.h"

off_t cache_lseek(struct ofile *of, int fd, off_t offset, int whence)
{
	struct mapping *m = mapping_of(of);
	off_t base, pos;

	if (!pos_lock(of, fd)) {
		pos = real_lseek64(fd, offset, whence);
		goto out;
	}
	switch (whence) {
	case SEEK_SET:
		base = 0;
		break;
	case SEEK_CUR:
		base = of->pos;
		break;
	case SEEK_END:
		base = mapping_size(m);
		break;
	case SEEK_DATA:
	case SEEK_HOLE: {
		/* Ask the kernel, once it has everything: holes are its business.
		 * The one cancellation point of lseek's tracked path (pwritev). */
		int cancel = cancel_off();

		pthread_rwlock_rdlock(&m->lock);
		pos = mapping_writeback(m) < 0 ? -1 :
		      m->kfd < 0 ? fail(EBADF) : real_lseek64(m->kfd, offset, whence);
		pthread_rwlock_unlock(&m->lock);
		cancel_restore(cancel);
		if (pos >= 0)
			of->pos = pos;
		goto out;
	}
	default:
		pos = fail(EINVAL);
		goto out;
	}
	if (__builtin_add_overflow(base, offset, &pos) || pos < 0 ||
	    (pos > SMALLEST_MAX_BYTES && pos > mapping_max_bytes(m)))
		pos = fail(EINVAL);
	else
		of->pos = pos;
out:
	pos_unlock(of, fd);
	return pos;
}

/*
 * Before the kernel's file shrinks or is emptied: no journal record may
 * still hold bytes past its new end, or a guardian would write them back
 * after a death in between (journal.h): write the dirty pages back first.
 * Both locks exclusive.
 */
static void journal_before_truncate(struct mapping *m, off_t length)
{
	if (!bypassed(m) && length < mapping_size(m) && __atomic_load_n(&m->nr_dirty, __ATOMIC_RELAXED))
		mapping_writeback_kio_locked(m);	/* a failure: the data stays, as before */
}

int cache_ftruncate(struct ofile *of, int fd, off_t length)
{
	struct mapping *m = mapping_of(of);
	int ret;

	/* Locked also while passing through: see write_through(). */
	mapping_lock_all(m);
	journal_before_truncate(m, length);
	ret = real_ftruncate64(fd, length);
	if (ret == 0 && !bypassed(m))
		resize_locked(m, length);
	mapping_unlock_all(m);
	return ret;
}

int cache_truncate(const char *path, off_t length)
{
	struct ofile *of = fdtable_path_ofile_get(AT_FDCWD, path, 0);
	struct mapping *m;
	int ret, cancel;

	if (!of)
		return real_truncate64(path, length);
	cancel = cancel_off();
	m = mapping_of(of);
	mapping_lock_all(m);
	journal_before_truncate(m, length);
	ret = real_truncate64(path, length);
	if (ret == 0 && !bypassed(m))
		resize_locked(m, length);
	mapping_unlock_all(m);
	ofile_put(of);
	cancel_restore(cancel);
	return ret;
}

struct ofile *cache_trunc_begin(int dirfd, const char *path)
{
	struct ofile *of = fdtable_path_ofile_get(dirfd, path, 0);

	if (of) {
		mapping_lock_all(mapping_of(of));
		journal_before_truncate(mapping_of(of), 0);	/* an O_TRUNC open */
	}
	return of;
}

void cache_trunc_end(struct ofile *of, int fd)
{
	struct mapping *m = mapping_of(of);
	int saved_errno = errno;
	struct stat st;

	if (fd >= 0 && !bypassed(m) && real_fstat(fd, &st) == 0)
		resize_locked(m, st.st_size);	/* written before the open: gone */
	mapping_unlock_all(m);
	ofile_put(of);
	errno = saved_errno;
}

int cache_fallocate(struct ofile *of, int fd, int mode, off_t offset, off_t length)
{
	struct mapping *m = mapping_of(of);
	int ret;

	mapping_lock_all(m);		/* also to pass through: see write_through() */
	if (bypassed(m)) {
		ret = real_fallocate64(fd, mode, offset, length);
	} else if (mode & ~FALLOC_FL_KEEP_SIZE) {	/* punches, zeroes or moves data */
		ret = mapping_writeback_kio_locked(m);
		if (ret == 0)
			ret = real_fallocate64(fd, mode, offset, length);
		if (ret == 0)
			refresh_locked(m);
	} else {				/* allocates: the data stays as it is */
		ret = real_fallocate64(fd, mode, offset, length);
		if (ret == 0)
			mapping_note_kernel_now(m);
		if (ret == 0 && !(mode & FALLOC_FL_KEEP_SIZE) && offset + length > mapping_size(m)) {
			mapping_kernel_extends(m, offset + length);
			mapping_set_size(m, offset + length);
		}
	}
	mapping_unlock_all(m);
	return ret;
}

int cache_posix_fallocate(struct ofile *of, int fd, off_t offset, off_t length)
{
	struct mapping *m = mapping_of(of);
	int ret;

	mapping_lock_all(m);		/* also to pass through: see write_through() */
	if (bypassed(m)) {
		ret = real_posix_fallocate64(fd, offset, length);
		mapping_unlock_all(m);
		return ret;
	}
	/* glibc emulates it with writes where fallocate is missing: data first. */
	ret = mapping_writeback_kio_locked(m) < 0 ? errno : real_posix_fallocate64(fd, offset, length);
	if (ret == 0)
		mapping_note_kernel_now(m);
	if (ret == 0 && offset + length > mapping_size(m)) {
		mapping_kernel_extends(m, offset + length);
		mapping_set_size(m, offset + length);
	}
	mapping_unlock_all(m);
	return ret;
}

int cache_fadvise(struct ofile *of, int fd, off_t offset, off_t length, int advice)
{
	struct mapping *m = mapping_of(of);
	int ret = real_posix_fadvise64(fd, offset, length, advice);

	/* As the kernel does with its own: clean pages of the range go. */
	if (ret == 0 && advice == POSIX_FADV_DONTNEED && !bypassed(m) && offset >= 0) {
		uint64_t last = length > 0 ? (uint64_t)(offset + length - 1) >> FOLIO_PAGE_SHIFT :
				UINT64_MAX;

		pthread_rwlock_wrlock(&m->lock);
		drop_range(m, offset >> FOLIO_PAGE_SHIFT, last, true);
		pthread_rwlock_unlock(&m->lock);
	}
	return ret;
}

ssize_t cache_readahead(struct ofile *of, int fd, off64_t offset, size_t count)
{
	(void)of;
	return real_readahead(fd, offset, count);
}
