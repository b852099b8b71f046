/*
 * cache_internal.h - what the page cache's three files share: cache.c (entry
 * points, sizes, positions, sync points, pass-through cases, mapping life
 * cycle), cache_read.c (hits, misses, readahead) and cache_write.c (the
 * write lock rule, dirtying pages, writes that go to the kernel).  Not for
 * anything outside the cache.
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

/* cache.c */

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
/* Forget clean pages, take the sizes from the kernel.  Both locks exclusive. */
void refresh_locked(struct mapping *m);

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
