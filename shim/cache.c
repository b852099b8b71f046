/*
 * cache.c - see cache.h: the entry points, file positions, sizes, sync
 * points, the cases where a file passes through, and the life of a mapping.
 * The read and write paths are in cache_read.c and cache_write.c.
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
#include "crash.h"
#include "real.h"
#include "unwind.h"
#include "writeback.h"

static uint64_t last_mapping_id;

/*
 * Check an iovec array as import_iovec() does and set up @u.  Returns the
 * bytes it holds (clamped to MAX_RW_COUNT) or -1 with errno.
 */
static ssize_t uio_init(struct uio *u, const struct iovec *iov, int cnt)
{
	size_t total = 0;

	bool faults = false;

	if (cnt < 0 || cnt > IOV_MAX)
		return fail(EINVAL);
	if (cnt && (beyond_user_space(iov, cnt * sizeof(*iov)) ||
		    in_low_page(iov, cnt * sizeof(*iov))))
		return fail(EFAULT);
	u->valid = 0;
	for (int i = 0; i < cnt; i++) {
		if ((ssize_t)iov[i].iov_len < 0)
			return fail(EINVAL);
		if (beyond_user_space(iov[i].iov_base, iov[i].iov_len))
			return fail(EFAULT);
		faults |= in_low_page(iov[i].iov_base, iov[i].iov_len);
		total += iov[i].iov_len;
		if (total > MAX_RW_COUNT)
			total = MAX_RW_COUNT;
		if (!faults)
			u->valid = total;
	}
	u->iov = iov;
	u->cnt = cnt;
	u->skip = 0;
	return total;
}


/* ---- Finding and changing pages ---- */

/*
 * The page of @m at @index with its data locked (page_write_begin), or NULL
 * if it is not cached.  Outside any read-side section.
 */
struct page *find_locked(struct mapping *m, uint64_t index)
{
	for (;;) {
		struct page *page;

		urcu_bp_read_lock();
		page = ptree_lookup(&m->tree, index);
		urcu_bp_read_unlock();
		if (!page)
			return NULL;
		/* Arena memory: safe to lock even if it was reclaimed meanwhile. */
		page_write_begin(page);
		if ((page->flags & PAGE_INDEXED) && page->owner == m->id && page->index == index)
			return page;
		page_write_end(page);
	}
}

struct drop_args {
	uint64_t last;			/* pages past it stay */
	bool keep_dirty;
};

/* Inside a read-side section (the page lock is never held across a wait). */
static void drop_page(void *entry, uint64_t index, void *arg)
{
	const struct drop_args *a = arg;
	struct page *page = entry;

	if (index > a->last)
		return;
	pthread_mutex_lock(&page->lock);
	if (!(a->keep_dirty && (page->flags & (PAGE_DIRTY | PAGE_WRITEBACK))))
		page_remove(page);
	pthread_mutex_unlock(&page->lock);
}

/*
 * Forget the cached pages of @m from page @first on (dirty ones too, unless
 * @keep_dirty: then with @kio_lock exclusive too).  With @lock exclusive.
 */
static void drop_range(struct mapping *m, uint64_t first, uint64_t last, bool keep_dirty)
{
	struct drop_args a = { last, keep_dirty };

	if (!keep_dirty)
		mapping_forget_dirty_from(m, first);
	urcu_bp_read_lock();
	ptree_for_each(&m->tree, first, drop_page, &a);
	urcu_bp_read_unlock();
}

void drop_pages(struct mapping *m, uint64_t first, bool keep_dirty)
{
	drop_range(m, first, UINT64_MAX, keep_dirty);
}


/*
 * The file is now @size long in the kernel and for the program (truncate,
 * or an fallocate that may move data): cached pages past it go, the tail of
 * the last one is zeroed.  With both locks exclusive.
 */
static void resize_locked(struct mapping *m, off_t size)
{
	uint64_t first = ((uint64_t)size + FOLIO_PAGE_BYTES - 1) >> FOLIO_PAGE_SHIFT;
	size_t tail = size & (FOLIO_PAGE_BYTES - 1);

	drop_pages(m, first, false);
	if (tail) {
		struct page *page = find_locked(m, size >> FOLIO_PAGE_SHIFT);

		if (page) {
			memset(page->data + tail, 0, FOLIO_PAGE_BYTES - tail);
			if (page->dirty_hi > tail)	/* dirty bytes stay inside the file */
				page->dirty_hi = tail;
			page_write_end(page);
		}
	}
	mapping_set_size(m, size);
	__atomic_store_n(&m->ksize, size, __ATOMIC_RELEASE);
	mapping_note_kernel_now(m);
}

/* A free page, writing back @m's dirty pages if there is none.  @lock held. */
struct page *alloc_page(struct mapping *m)
{
	struct page *page = page_alloc();

	if (!page && mapping_writeback(m) == 0)
		page = page_alloc();
	return page;
}

ssize_t kernel_pread_flags(struct mapping *m, void *buf, size_t len, off_t pos, int rwf_flags)
{
	struct iovec iov = { buf, len };
	ssize_t n;

	if (m->kfd < 0 || m->kfd_accmode == O_WRONLY)
		return fail(EBADF);
	do
		n = rwf_flags ? real_preadv64v2(m->kfd, &iov, 1, pos, rwf_flags) :
				real_pread64(m->kfd, buf, len, pos);
	while (n < 0 && errno == EINTR);
	return n;
}

ssize_t kernel_pwrite(struct mapping *m, const void *buf, size_t len, off_t pos)
{
	ssize_t n;

	if (m->kfd < 0)
		return fail(EBADF);
	do
		n = real_pwrite64(m->kfd, buf, len, pos);
	while (n < 0 && errno == EINTR);
	return n;
}

/*
 * Pass @m through for @reason: everything it holds goes back to the kernel
 * first.  Returns false (and leaves @m cached) if that failed.  Under
 * mapping_lock_all().
 */
static bool start_bypass_locked(struct mapping *m, enum bypass_reason reason)
{
	bool ok = true;

	if (!bypassed(m)) {
		ok = mapping_writeback_kio_locked(m) == 0;
		if (ok)
			drop_pages(m, 0, false);
	}
	if (ok)
		__atomic_or_fetch(&m->bypass, reason, __ATOMIC_RELEASE);
	return ok;
}

static bool start_bypass(struct mapping *m, enum bypass_reason reason)
{
	int cancel = cancel_off();	/* reached from dup2, fork, ...: see cancel_off() */
	bool ok;

	mapping_lock_all(m);
	ok = start_bypass_locked(m, reason);
	mapping_unlock_all(m);
	cancel_restore(cancel);
	return ok;
}

/* ---- Entry points: data ---- */

/* From now on the kernel keeps the position of @of.  Under its pos_lock. */
static void pos_to_kernel(struct ofile *of, int fd)
{
	if (!of->pos_in_kernel && real_lseek64(fd, of->pos, SEEK_SET) >= 0)
		of->pos_in_kernel = true;
}

/* From now on folio keeps the position of @of, taken from the kernel. */
static void pos_from_kernel(struct ofile *of, int fd)
{
	off_t pos = real_lseek64(fd, 0, SEEK_CUR);

	if (pos >= 0) {
		of->pos = pos;
		of->pos_in_kernel = false;
	}
}

/*
 * Under the pos_lock of @of: whether folio keeps its position (false: the
 * kernel's is the one to use, the file is mapped).  The position moves to
 * the kernel when the file gets mapped and back when the last mapping is
 * gone.
 */
static bool pos_follow(struct ofile *of, int fd)
{
	bool mapped = bypassed(mapping_of(of));

	if (!of->pos_in_kernel && mapped) {
		pos_to_kernel(of, fd);
	} else if ((of->pos_in_kernel && !mapped) || of->pos_shared) {
		pos_from_kernel(of, fd);
	}
	return !of->pos_in_kernel;
}

/* Lock the file position of @of; false if the kernel's is the one to use. */
static bool pos_lock(struct ofile *of, int fd)
{
	pthread_mutex_lock(&of->pos_lock);
	return pos_follow(of, fd);
}

/* Unlock the position of @of; a shared one goes back to the kernel first. */
static void pos_unlock(struct ofile *of, int fd)
{
	if (of->pos_shared && !of->pos_in_kernel)
		real_lseek64(fd, of->pos, SEEK_SET);
	pthread_mutex_unlock(&of->pos_lock);
}

/*
 * The checks of preadv2/pwritev2 before any data moves, in the kernel's
 * order: offset, access mode, the iovecs, the flags.  Returns the byte
 * count with @u set up, or -1 with errno.
 */
static ssize_t rw_check(bool allowed, struct uio *u, const struct iovec *iov, int iovcnt,
			off_t offset, int rwf_flags)
{
	ssize_t count;

	if (offset < -1)
		return fail(EINVAL);
	if (!allowed)
		return fail(EBADF);
	count = uio_init(u, iov, iovcnt);
	if (count >= 0 && ((rwf_flags & ~RWF_KNOWN) || (rwf_flags & RWF_ATOMIC_)))
		return fail(EOPNOTSUPP);
	return count;
}

ssize_t cache_read(struct ofile *of, int fd, void *buf, size_t count)
{
	struct iovec iov = { buf, count };

	return cache_readv(of, fd, &iov, 1, -1, 0);
}

/*
 * The commonest hit: @count bytes at @offset within one cached page, into a
 * buffer the checks of the general path would pass.  Returns the bytes
 * copied, or -2 to take the general path.  Inside the caller's read-side
 * section.
 */
static inline ssize_t pread_one_page(struct mapping *m, void *buf, size_t count, off_t offset)
{
	size_t off = offset & (FOLIO_PAGE_BYTES - 1);
	off_t size = mapping_size(m);
	struct page *page;

	if (off + count > FOLIO_PAGE_BYTES || in_low_page(buf, count) ||
	    beyond_user_space(buf, count) || unlikely(bypassed(m)))
		return -2;
	if (offset >= size)
		return 0;
	if ((off_t)count > size - offset)
		count = size - offset;
	page = ptree_lookup(&m->tree, offset >> FOLIO_PAGE_SHIFT);
	if (!page)
		return -2;
	if (page_copy_out(page, off, count, buf) < count)
		return -2;	/* a bad buffer: the general path tells */
	return count;
}

ssize_t cache_pread(struct ofile *of, int fd, void *buf, size_t count, off_t offset)
{
	struct iovec iov = { buf, count };

	if (offset < 0)
		return fail(EINVAL);
	if (likely(readable(of))) {
		struct mapping *m = mapping_of(of);
		ssize_t n = pread_one_page(m, buf, count, offset);

		if (likely(n != -2))
			return read_counted(m, n, false);
	}
	return cache_readv(of, fd, &iov, 1, offset, 0);
}

/*
 * Whether the file system refuses RWF_NOWAIT reads (EOPNOTSUPP, as ramfs
 * does): then so must folio, hits too.  Asked once a file, with a one-byte
 * RWF_NOWAIT read of the program's @fd (a read of nothing would not be
 * checked).  Inside the caller's read-side section; keeps errno.
 */
static __attribute__((noinline, cold)) bool nowait_refused(struct mapping *m, int fd)
{
	int known = __atomic_load_n(&m->nowait_reads, __ATOMIC_RELAXED);

	if (!known) {
		int saved_errno = errno, cancel = cancel_off();
		char byte;
		struct iovec iov = { &byte, 1 };

		known = real_preadv64v2(fd, &iov, 1, 0, RWF_NOWAIT) < 0 && errno == EOPNOTSUPP ?
			-1 : 1;
		cancel_restore(cancel);
		errno = saved_errno;
		__atomic_store_n(&m->nowait_reads, known, __ATOMIC_RELAXED);
	}
	return known < 0;
}

/* read_at() counts the calls it serves; the others are counted here. */
ssize_t cache_readv(struct ofile *of, int fd, const struct iovec *iov, int iovcnt,
		    off_t offset, int rwf_flags)
{
	struct mapping *m = mapping_of(of);
	struct uio u;
	ssize_t count = rw_check(readable(of), &u, iov, iovcnt, offset, rwf_flags), n;

	if (count < 0)
		return read_counted(m, -1, false);
	if (unlikely(rwf_flags & RWF_NOWAIT) && nowait_refused(m, fd))
		return read_counted(m, fail(EOPNOTSUPP), false);
	if (offset >= 0) {	/* inside the caller's read-side section */
		if (range_overflows(offset, count))
			return read_counted(m, fail(EINVAL), false);
		if (unlikely(bypassed(m))) {
			int cancel = cancel_off();

			n = real_preadv64v2(fd, iov, iovcnt, offset, rwf_flags);
			cancel_restore(cancel);
			return read_counted(m, n, true);
		}
		return read_at(of, m, &u, count, offset, rwf_flags & RWF_NOWAIT);
	}
	if (!pos_lock(of, fd)) {
		n = read_counted(m, real_preadv64v2(fd, iov, iovcnt, -1, rwf_flags), true);
	} else if (range_overflows(of->pos, count)) {
		n = read_counted(m, fail(EINVAL), false);
	} else {
		urcu_bp_read_lock();
		n = read_at(of, m, &u, count, of->pos, rwf_flags & RWF_NOWAIT);
		urcu_bp_read_unlock();
		if (n > 0)
			of->pos += n;
	}
	pos_unlock(of, fd);
	return n;
}

ssize_t cache_write(struct ofile *of, int fd, const void *buf, size_t count)
{
	struct iovec iov = { (void *)buf, count };

	return cache_writev(of, fd, &iov, 1, -1, 0);
}

ssize_t cache_pwrite(struct ofile *of, int fd, const void *buf, size_t count, off_t offset)
{
	struct iovec iov = { (void *)buf, count };

	if (offset < 0)
		return fail(EINVAL);
	return cache_writev(of, fd, &iov, 1, offset, 0);
}

/* RWF_DSYNC, RWF_SYNC or O_SYNC/O_DSYNC: the write is on disk when it returns. */
static int write_sync(struct mapping *m, int rwf_flags, int flags)
{
	int ret;

	if (!(rwf_flags & (RWF_DSYNC | RWF_SYNC)) && !(flags & (O_SYNC | O_DSYNC)))
		return 0;
	pthread_rwlock_rdlock(&m->lock);
	ret = mapping_writeback(m);
	if (!ret)
		ret = (rwf_flags & RWF_SYNC) || (flags & O_SYNC) == O_SYNC ? real_fsync(m->kfd) :
								   real_fdatasync(m->kfd);
	pthread_rwlock_unlock(&m->lock);
	return ret;
}

/*
 * RWF_NOWAIT: whether a buffered write may say EAGAIN or is refused
 * (EOPNOTSUPP on ext4) is the file system's business, so the kernel does the
 * write itself, after the cache gave it everything and dropped its pages.
 */
static __attribute__((noinline)) ssize_t write_nowait(struct ofile *of, int fd,
						      const struct iovec *iov, int iovcnt,
						      off_t offset, int rwf_flags)
{
	struct mapping *m = mapping_of(of);
	ssize_t n;

	if (offset < 0 && pos_lock(of, fd))
		pos_to_kernel(of, fd);
	mapping_lock_all(m);
	n = mapping_writeback_kio_locked(m);
	if (n == 0) {
		drop_pages(m, 0, false);
		n = real_pwritev64v2(fd, iov, iovcnt, offset, rwf_flags);
		if (n > 0)
			refresh_locked(m);
	}
	mapping_unlock_all(m);
	if (offset < 0) {
		if (!bypassed(m) && of->pos_in_kernel)	/* take it back */
			pos_from_kernel(of, fd);
		pthread_mutex_unlock(&of->pos_lock);
	}
	return n;
}

/*
 * A write of @m while it passes through goes to the kernel under its lock
 * taken shared: the file goes back to being cached (inode_unmapped()) with
 * the lock exclusive, so not before the write is in the kernel, where the
 * cache's refresh and its misses find it.  Returns -2 if @m is cached
 * again (the caller writes into the cache).
 */
static ssize_t write_through(struct mapping *m, int fd, const struct iovec *iov, int iovcnt,
			     off_t offset, int rwf_flags)
{
	ssize_t n = -2;
	int saved_errno;

	pthread_rwlock_rdlock(&m->lock);
	if (bypassed(m))
		n = real_pwritev64v2(fd, iov, iovcnt, offset, rwf_flags);
	saved_errno = errno;
	pthread_rwlock_unlock(&m->lock);
	errno = saved_errno;
	return n;
}

/* A write at the position of @of, whichever of folio and the kernel keeps it. */
static ssize_t write_at_pos(struct ofile *of, int fd, struct uio *u, const struct iovec *iov,
			    int iovcnt, size_t count, int rwf_flags, bool append)
{
	struct mapping *m = mapping_of(of);
	bool cached = pos_lock(of, fd);
	ssize_t n;

	for (n = -2; n == -2; cached = pos_follow(of, fd)) {
		if (!cached)
			n = write_through(m, fd, iov, iovcnt, -1, rwf_flags);
		else if (!count)
			n = 0;
		else if (range_overflows(of->pos, count))
			n = fail(EINVAL);
		else
			n = write_at(m, u, count, &of->pos, append);
	}
	pos_unlock(of, fd);
	return n;
}

static ssize_t writev_uncounted(struct ofile *of, int fd, const struct iovec *iov, int iovcnt,
				off_t offset, int rwf_flags)
{
	struct mapping *m = mapping_of(of);
	bool append = of->flags & O_APPEND;
	struct uio u;
	ssize_t count = rw_check(writable(of), &u, iov, iovcnt, offset, rwf_flags), n;
	off_t pos;

	if (count < 0)
		return -1;
	if (unlikely(rwf_flags & RWF_NOWAIT))
		return write_nowait(of, fd, iov, iovcnt, offset, rwf_flags);
	if (rwf_flags & RWF_APPEND)
		append = true;
	if (rwf_flags & RWF_NOAPPEND)
		append = false;
	if (offset >= 0) {
		if (range_overflows(offset, count))
			return fail(EINVAL);
		if (!count)
			return 0;
		pos = offset;
		do {
			n = bypassed(m) ? write_through(m, fd, iov, iovcnt, offset, rwf_flags) :
					  write_at(m, &u, count, &pos, append);
		} while (n == -2);
	} else {
		n = write_at_pos(of, fd, &u, iov, iovcnt, count, rwf_flags, append);
	}
	if (n > 0 && write_sync(m, rwf_flags, of->flags) < 0)
		return -1;
	return n;
}

ssize_t cache_writev(struct ofile *of, int fd, const struct iovec *iov, int iovcnt,
		     off_t offset, int rwf_flags)
{
	ssize_t n = writev_uncounted(of, fd, iov, iovcnt, offset, rwf_flags);

	stat_add_call(mapping_of(of)->stats, STAT_WRITES, STAT_WRITE_BYTES, n > 0 ? n : 0);
	return n;
}

/* ---- Entry points: position and size ---- */

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
	if (__builtin_add_overflow(base, offset, &pos) || pos < 0 || pos > m->max_bytes)
		pos = fail(EINVAL);
	else
		of->pos = pos;
out:
	pos_unlock(of, fd);
	return pos;
}

int cache_ftruncate(struct ofile *of, int fd, off_t length)
{
	struct mapping *m = mapping_of(of);
	int ret;

	/* Locked also while passing through: see write_through(). */
	mapping_lock_all(m);
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

	if (of)
		mapping_lock_all(mapping_of(of));
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

/*
 * The kernel changed the file behind the cache in ways the cache cannot
 * follow (fallocate that punches, zeroes or moves data; an in-kernel
 * copy): forget clean pages, take the sizes from the kernel.  With both
 * locks exclusive, after everything dirty went back.
 */
void refresh_locked(struct mapping *m)
{
	struct stat st;

	drop_pages(m, 0, true);
	if (m->kfd >= 0 && real_fstat(m->kfd, &st) == 0) {
		mapping_note_kernel(m, &st.st_ctim);
		__atomic_store_n(&m->ksize, st.st_size, __ATOMIC_RELEASE);
		if (st.st_size > mapping_size(m) || !__atomic_load_n(&m->nr_dirty, __ATOMIC_RELAXED))
			mapping_set_size(m, st.st_size);
	}
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

/* ---- Sync points ---- */

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

/* ---- Maps and in-kernel copies ---- */

void *cache_mmap(struct ofile *of, void *addr, size_t length, int prot, int flags, int fd,
		 off_t offset)
{
	struct mapping *m = mapping_of(of);
	bool started = false;
	void *ret = MAP_FAILED;

	/*
	 * The mapping is made and recorded under the locks that
	 * inode_unmapped() takes: otherwise the munmap() of the inode's last
	 * other mapping could find no mapping left, between this one's check
	 * of BYPASS_MAPPED and its mmaps_add(), and cache the file again
	 * while this mapping shows the kernel's pages.
	 */
	mapping_lock_all(m);
	if (!(m->bypass & BYPASS_MAPPED)) {
		/* A mapping must show what was written: if that cannot reach
		 * the kernel, the mmap fails with the write-back's error. */
		if (!start_bypass_locked(m, BYPASS_MAPPED))
			goto out;
		started = true;
	}
	ret = real_mmap64(addr, length, prot, flags, fd, offset);
	if (ret != MAP_FAILED) {
		int saved_errno = errno;

		mmaps_add(ret, length, of->inode->dev, of->inode->ino);
		errno = saved_errno;
	}
out:
	mapping_unlock_all(m);
	if (started)
		log_info("%s is mapped: passing it through while it is", m->name);
	return ret;
}

void cache_std_fd(struct ofile *of)
{
	struct mapping *m = mapping_of(of);

	if (!bypassed_for(m, BYPASS_STDFD) && start_bypass(m, BYPASS_STDFD))
		log_info("%s is a standard stream's fd: passing it through", m->name);
}

#ifdef FOLIO_TEST_FAULTS
/*
 * Test builds only: FOLIO_TEST_DELAY=unmapped holds inode_unmapped() for
 * 500 us between its refresh and the end of the bypass, where a copy that
 * ended used to leave the file cached with the size from before it.
 */
static void test_delay(const char *where)
{
	const char *want = getenv("FOLIO_TEST_DELAY");

	if (want && !strcmp(want, where))
		usleep(500);
}
#else
static inline void test_delay(const char *where)
{
	(void)where;
}
#endif

/* The last mapping of the inode @dev/@ino is gone: cache it again. */
static void inode_unmapped(dev_t dev, ino_t ino)
{
	struct ofile *of = fdtable_inode_ofile_get(dev, ino);
	struct mapping *m;

	if (!of)
		return;
	m = mapping_of(of);
	mapping_lock_all(m);
	if ((m->bypass & BYPASS_MAPPED) && !mmaps_has(dev, ino)) {
		if (m->bypass == BYPASS_MAPPED) {
			refresh_locked(m);
			log_info("%s is no longer mapped: caching it again", m->name);
			test_delay("unmapped");
		}
		__atomic_and_fetch(&m->bypass, ~BYPASS_MAPPED, __ATOMIC_RELEASE);
	}
	mapping_unlock_all(m);
	ofile_put(of);
}

void cache_munmap(void *addr, size_t length)
{
	int saved_errno = errno;

	if (mmaps_any())
		mmaps_remove(addr, length, inode_unmapped);
	errno = saved_errno;
}

void cache_mremap(void *old_address, void *new_address, size_t new_size)
{
	if (mmaps_any())
		mmaps_move(old_address, new_address, new_size);
}

/*
 * The kernel is about to copy from @of (@destination: into it): its data
 * must be in the kernel, and pages a copy into it overwrites must go.
 */
static int copy_prepare_data(struct ofile *of, bool destination)
{
	struct mapping *m = mapping_of(of);
	int ret;

	if (bypassed(m))
		return 0;
	mapping_lock_all(m);
	ret = mapping_writeback_kio_locked(m);
	if (ret == 0 && destination)
		drop_pages(m, 0, true);
	mapping_unlock_all(m);
	return ret;
}

/* Lock the positions of @a and @b (either NULL, or both the same) in address
 * order: two copies in opposite directions must not deadlock. */
static void lock_two_positions(struct ofile *a, struct ofile *b)
{
	if (a == b)
		b = NULL;
	if (a && b && (uintptr_t)b < (uintptr_t)a) {
		struct ofile *t = a;

		a = b;
		b = t;
	}
	if (a)
		pthread_mutex_lock(&a->pos_lock);
	if (b)
		pthread_mutex_lock(&b->pos_lock);
}

static void lend_position(struct ofile *of, int fd)
{
	if (of && !of->pos_in_kernel)
		real_lseek64(fd, of->pos, SEEK_SET);
}

/* Take the position back from the kernel and unlock it (once per ofile). */
static void take_position(struct ofile *of, int fd)
{
	if (!of)
		return;
	if (!of->pos_in_kernel)
		pos_from_kernel(of, fd);
	pthread_mutex_unlock(&of->pos_lock);
}

int cache_copy_begin(struct ofile *in, int in_fd, struct ofile *out, int out_fd)
{
	int err = 0;

	lock_two_positions(in, out);
	lend_position(in, in_fd);
	if (out != in)
		lend_position(out, out_fd);
	if (in && copy_prepare_data(in, in == out) < 0)
		err = errno;
	if (!err && out && out != in && copy_prepare_data(out, true) < 0)
		err = errno;
	if (!err)
		return 0;
	take_position(in, in_fd);
	if (out != in)
		take_position(out, out_fd);
	return fail(err);
}

void cache_copy_end(struct ofile *in, int in_fd, struct ofile *out, int out_fd)
{
	int saved_errno = errno;
	struct mapping *m = out ? mapping_of(out) : NULL;

	take_position(in, in_fd);
	if (out != in)
		take_position(out, out_fd);
	/*
	 * What the copy wrote, and the new size.  Also when @out passed
	 * through at begin and its last mapping went meanwhile: unlike a write
	 * (write_through()), a copy holds no lock against that, and this,
	 * after the copy is in the kernel, drops what a miss cached before.
	 * Checked under the locks: inode_unmapped() clears the bypass only
	 * after its refresh, under them, and that refresh may have asked the
	 * kernel for the size before this copy extended the file.
	 */
	if (m) {
		mapping_lock_all(m);
		if (!bypassed(m))
			refresh_locked(m);
		mapping_unlock_all(m);
	}
	errno = saved_errno;
}

/*
 * The file passes through, so the kernel's size is the size, but maybe not
 * the one the caller got: start_bypass() may have written dirty data past
 * it back between the caller's stat and here.  Ask the kernel again, through
 * folio's own descriptor of the inode (checked to still be it).  Inside a
 * read-side section; errno preserved.
 */
static void restat_bypassed(struct mapping *m, dev_t dev, ino_t ino, off_t *st_size,
			    blkcnt_t *st_blocks)
{
	int kfd = __atomic_load_n(&m->kfd, __ATOMIC_RELAXED), saved_errno = errno;
	struct stat st;

	if (kfd >= 0 && real_fstat(kfd, &st) == 0 && st.st_dev == dev && st.st_ino == ino) {
		*st_size = st.st_size;
		*st_blocks = st.st_blocks;
	}
	errno = saved_errno;
}

void cache_stat_fixup(dev_t dev, ino_t ino, off_t *st_size, blkcnt_t *st_blocks)
{
	struct mapping *m;

	urcu_bp_read_lock();
	m = fdtable_inode_mapping(dev, ino);
	if (m && bypassed(m)) {
		restat_bypassed(m, dev, ino, st_size, st_blocks);
	} else if (m) {
		off_t size = mapping_size(m);

		if (size > *st_size) {	/* dirty data past the kernel's end */
			blkcnt_t blocks = (size + 4095) / 4096 * 8;

			if (blocks > *st_blocks)
				*st_blocks = blocks;
		}
		*st_size = size;
	}
	urcu_bp_read_unlock();
}

/* ---- Mappings: life cycle (fdtable's hooks) ---- */

#define EXT4_SUPER_MAGIC	0xEF53
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

/* ext4 with extents and 4 KiB blocks: 2^32 - 1 blocks. */
#define EXT4_MAX_BYTES	((off_t)0xFFFFFFFFull << 12)

static bool seek_allowed(int kfd, off_t pos)
{
	return real_lseek64(kfd, pos, SEEK_SET) == pos;
}

/*
 * The largest file the kernel lets @kfd's file reach (s_maxbytes; on ext4 a
 * file without extents has a smaller limit of its own; FAT stops at 4 GiB):
 * the largest position lseek(2) may set, which is the same limit.  Asked on
 * folio's own descriptor, whose position folio never uses: the common
 * answers first, else a binary search.  Without one (or if it cannot seek
 * at all), a guess from @fd's file system.  Keeps errno.
 */
static off_t max_file_size(int kfd, int fd)
{
	int saved_errno = errno;
	off_t ok = 0, refused = OFF_T_MAX;

	if (kfd < 0 || !seek_allowed(kfd, 0)) {
		ok = fs_type(fd) == EXT4_SUPER_MAGIC ? EXT4_MAX_BYTES : OFF_T_MAX;
	} else if (seek_allowed(kfd, OFF_T_MAX)) {
		ok = OFF_T_MAX;
	} else if (seek_allowed(kfd, EXT4_MAX_BYTES) && !seek_allowed(kfd, EXT4_MAX_BYTES + 1)) {
		ok = EXT4_MAX_BYTES;
	} else {
		while (refused - ok > 1) {
			off_t mid = ok + (refused - ok) / 2;

			if (seek_allowed(kfd, mid))
				ok = mid;
			else
				refused = mid;
		}
	}
	errno = saved_errno;
	return ok;
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
	m->max_bytes = max_file_size(kfd, fd);
	m->whole_page_writes = fs_type(fd) == BTRFS_SUPER_MAGIC;
	m->kfd = kfd;
	m->kfd_accmode = kfd_accmode;
	if (mmaps_has(st->st_dev, st->st_ino))		/* mapped before this open */
		m->bypass = BYPASS_MAPPED;
	m->privileged = (st->st_mode & S_ISUID) ||
			(st->st_mode & (S_ISGID | S_IXGRP)) == (S_ISGID | S_IXGRP) ||
			fgetxattr(fd, "security.capability", NULL, 0) >= 0;
	writeback_register(m);
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
	if (folio_log_level >= LOG_DEBUG) {
		uint64_t c[STAT_NR];

		stats_sum(m->stats, c);
		log_debug("%s: writes took the lock shared %llu, retaken %llu, exclusive %llu times",
			  m->name, (unsigned long long)c[STAT_LOCK_SHARED],
			  (unsigned long long)c[STAT_LOCK_RETAKEN],
			  (unsigned long long)c[STAT_LOCK_EXCLUSIVE]);
	}
	stats_file_retire(m->stats);
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
}

void cache_before_exec(void)
{
	int saved_errno = errno;

	if (cache_prepare_child(false) < 0)
		writeback_report_unwritten("before exec (lost if it succeeds)");
	errno = saved_errno;
}

void cache_after_fork_child(void)
{
	page_store_forget();
	writeback_after_fork_child();
}
