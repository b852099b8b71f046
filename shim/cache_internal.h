/*
 * cache_internal.h - what the page cache's files share: cache_page.c
 * (finding and changing pages), cache_read.c (the read entry points, hits,
 * misses, readahead), cache_write.c (the write entry points, the write lock
 * rule, dirtying pages, writes that go to the kernel), cache_size.c
 * (positions and sizes), cache_sync.c (sync points), cache_passthru.c
 * (where a file passes through) and cache_mapping.c (a mapping's life).
 * Not for anything outside the cache.
 */
#ifndef FOLIO_CACHE_INTERNAL_H
#define FOLIO_CACHE_INTERNAL_H

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/uio.h>

#include "cache.h"
#include "compiler.h"
#include "config.h"
#include "debug.h"
#include "log.h"
#include "mapping.h"
#include "ptree.h"
#include "real.h"
#include "uaccess.h"
#include "writeback.h"

#define OFF_T_MAX	((off_t)INT64_MAX)

/* What the kernel clamps one read or write to (MAX_RW_COUNT). */
#define MAX_RW_COUNT	((size_t)INT_MAX & ~(size_t)(FOLIO_PAGE_BYTES - 1))
/*
 * Buffers that fault: past the user address space (the kernel's access_ok()
 * refuses those at once) or below vm.mmap_min_addr's default (those fault
 * when copied, so a read at the end of the file still returns 0).  An
 * unmapped buffer in between is copied by folio and faults, as it would in
 * a libc memcpy; see folio(7).
 */
#define USER_ADDR_MIN	65536ul
#define USER_ADDR_END	((1ul << 47) - FOLIO_PAGE_BYTES)

#ifndef RWF_NOAPPEND
#define RWF_NOAPPEND	0x20
#endif
#define RWF_ATOMIC_	0x40
#define RWF_KNOWN	0xff	/* every flag this kernel knows */

/* Where pages come from and go to: an iovec array being consumed. */
struct uio {
	const struct iovec *iov;
	int cnt;
	size_t skip;		/* bytes of iov[0] already consumed */
	size_t valid;		/* bytes before the first buffer that would fault */
};

/* Empty iovecs are stepped over, so iov[0] has room unless cnt is 0. */
static inline void uio_advance(struct uio *u, size_t n)
{
	u->skip += n;
	while (u->cnt > 0 && u->skip >= u->iov->iov_len) {
		u->skip -= u->iov->iov_len;
		u->iov++;
		u->cnt--;
	}
}

static inline size_t uio_room(const struct uio *u)
{
	return u->cnt > 0 ? u->iov->iov_len - u->skip : 0;
}

static inline char *uio_base(const struct uio *u)
{
	return (char *)u->iov->iov_base + u->skip;
}

static inline ssize_t fail(int err)
{
	errno = err;
	return -1;
}

static inline bool beyond_user_space(const void *buf, size_t count)
{
	uintptr_t p = (uintptr_t)buf;

	return count && (p > USER_ADDR_END || count > USER_ADDR_END - p);
}

static inline bool in_low_page(const void *buf, size_t count)
{
	return count && (uintptr_t)buf < USER_ADDR_MIN;
}

/*
 * How much of @count bytes the kernel would copy before faulting: @count,
 * fewer, or -1 with EFAULT if nothing.
 */
static inline ssize_t copyable(const struct uio *u, size_t count)
{
	if (count && !u->valid)
		return fail(EFAULT);
	return count < u->valid ? count : u->valid;
}

static inline bool readable(const struct ofile *of)
{
	return (of->flags & O_ACCMODE) != O_WRONLY;
}

static inline bool writable(const struct ofile *of)
{
	return (of->flags & O_ACCMODE) != O_RDONLY;
}

static inline struct mapping *mapping_of(const struct ofile *of)
{
	return of->inode->mapping;
}

static inline bool bypassed(const struct mapping *m)
{
	return __atomic_load_n(&m->bypass, __ATOMIC_ACQUIRE) != 0;
}

/* Without the mapping's locks: start_bypass() may be setting another reason. */
static inline bool bypassed_for(const struct mapping *m, enum bypass_reason reason)
{
	return __atomic_load_n(&m->bypass, __ATOMIC_ACQUIRE) & reason;
}

/* rw_verify_area(): @pos + @count must not overflow. */
static inline bool range_overflows(off_t pos, size_t count)
{
	off_t end;

	return __builtin_add_overflow(pos, (off_t)count, &end);
}

/* What the read and write entry points share (cache_read.c, cache_write.c). */

/*
 * Check an iovec array as import_iovec() does and set up @u.  Returns the
 * bytes it holds (clamped to MAX_RW_COUNT) or -1 with errno.
 */
static inline ssize_t uio_init(struct uio *u, const struct iovec *iov, int cnt)
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

/* From now on the kernel keeps the position of @of.  Under its pos_lock. */
static inline void pos_to_kernel(struct ofile *of, int fd)
{
	if (!of->pos_in_kernel && real_lseek64(fd, of->pos, SEEK_SET) >= 0)
		of->pos_in_kernel = true;
}

/* From now on folio keeps the position of @of, taken from the kernel. */
static inline void pos_from_kernel(struct ofile *of, int fd)
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
 * gone.  Out of line, as rw_check().
 */
static __attribute__((noinline, unused)) bool pos_follow(struct ofile *of, int fd)
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
static inline bool pos_lock(struct ofile *of, int fd)
{
	pthread_mutex_lock(&of->pos_lock);
	return pos_follow(of, fd);
}

/* Unlock the position of @of; a shared one goes back to the kernel first. */
static inline void pos_unlock(struct ofile *of, int fd)
{
	if (of->pos_shared && !of->pos_in_kernel)
		real_lseek64(fd, of->pos, SEEK_SET);
	pthread_mutex_unlock(&of->pos_lock);
}

/*
 * The checks of preadv2/pwritev2 before any data moves, in the kernel's
 * order: offset, access mode, the iovecs, the flags.  Returns the byte
 * count with @u set up, or -1 with errno.  Out of line, as it was when the
 * read and write entry points shared one file: one copy in each of their
 * files now.
 */
static __attribute__((noinline, unused)) ssize_t rw_check(bool allowed, struct uio *u,
							 const struct iovec *iov, int iovcnt,
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

/* cache_page.c */

/*
 * pread/pwrite on folio's own descriptor of @m, retried on EINTR; EBADF if
 * there is none (or, to read, it is write-only).  With @lock held.
 * kernel_pread_flags() reads with preadv2(2)'s @rwf_flags (RWF_NOWAIT).
 */
ssize_t kernel_pread_flags(struct mapping *m, void *buf, size_t len, off_t pos, int rwf_flags);
ssize_t kernel_pwrite(struct mapping *m, const void *buf, size_t len, off_t pos);

static inline ssize_t kernel_pread(struct mapping *m, void *buf, size_t len, off_t pos)
{
	return kernel_pread_flags(m, buf, len, pos, 0);
}

/*
 * The page of @m at @index with its data locked (page_write_begin), or NULL
 * if it is not cached.  Outside any read-side section.
 */
struct page *find_locked(struct mapping *m, uint64_t index);
/* A free page, writing back @m's dirty pages if there is none.  @lock held. */
struct page *alloc_page(struct mapping *m);
/*
 * Forget the cached pages of @m from page @first on, the dirty ones too
 * unless @keep_dirty (that needs @kio_lock exclusive).  @lock exclusive.
 */
void drop_pages(struct mapping *m, uint64_t first, bool keep_dirty);
/* The same for the pages @first to @last. */
void drop_range(struct mapping *m, uint64_t first, uint64_t last, bool keep_dirty);
/*
 * The file is now @size long in the kernel and for the program (truncate,
 * or an fallocate that may move data): cached pages past it go, the tail of
 * the last one is zeroed.  With both locks exclusive.
 */
void resize_locked(struct mapping *m, off_t size);
/*
 * Pass @m through for @reason: everything it holds goes back to the kernel
 * first.  Returns false (and leaves @m cached) if that failed.
 * start_bypass_locked(): under mapping_lock_all(); start_bypass() takes it.
 */
bool start_bypass_locked(struct mapping *m, enum bypass_reason reason);
bool start_bypass(struct mapping *m, enum bypass_reason reason);
/* Same, if both locks are free at once: 1, 0 (as false above), -1 (taken). */
int start_bypass_try(struct mapping *m, enum bypass_reason reason);
/* Forget clean pages, take the sizes from the kernel.  Both locks exclusive. */
void refresh_locked(struct mapping *m);

/* cache_passthru.c */

/*
 * The kernel's size of @m, which passes through, into *@st_size and
 * *@st_blocks, asked again through folio's own descriptor of @dev/@ino.
 * Inside a read-side section; errno preserved.
 */
void restat_bypassed(struct mapping *m, dev_t dev, ino_t ino, off_t *st_size,
		     blkcnt_t *st_blocks);

/* cache_read.c */

/*
 * Read @count bytes at @pos into @u, inside the caller's read-side section
 * (a miss leaves it and comes back); @nowait (RWF_NOWAIT): a miss takes only
 * what the kernel's page cache has, EAGAIN if that is nothing.
 */
ssize_t read_at(struct ofile *of, struct mapping *m, struct uio *u, size_t count, off_t pos,
		bool nowait);

/* cache_write.c */

/*
 * Write @count bytes from @u at *@pos (at the end if @append) and leave *@pos
 * after them.  Outside any read-side section.  -2: the file is bypassed now.
 */
ssize_t write_at(struct mapping *m, struct uio *u, size_t count, off_t *pos, bool append);
/* Does the file open as @fd have set-id bits or file capabilities? */
bool still_privileged(int fd);
/*
 * A write of @m while it passes through, to the kernel under @m's lock taken
 * shared; -2 if @m is cached again (the caller writes into the cache).
 */
ssize_t write_through(struct mapping *m, int fd, const struct iovec *iov, int iovcnt,
		      off_t offset, int rwf_flags);

/*
 * Count a read call of @m that returned @n, @missed if it needed the
 * kernel, and return @n.  While @m is sure to live: before the caller drops
 * a reference that may be the last.
 */
static inline ssize_t read_counted(struct mapping *m, ssize_t n, bool missed)
{
	stat_add_call(m->stats, STAT_READS, STAT_READ_BYTES, n > 0 ? n : 0);
	if (missed)
		stat_add(m->stats, STAT_READ_MISSES, 1);
	return n;
}

#endif
