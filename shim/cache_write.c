/*
 * cache_write.c - the write path: the write lock rule (lock_for_write), pages
 * found or made and dirtied under their locks with the bytes written
 * recorded, and the writes that go straight to the kernel (no page to be
 * had, set-id files, files the guardian does not hold).  Pages may be dirty
 * only once the guardian holds their file (guard); each change of a dirty
 * range reaches the journal.  The write entry points (cache_write(),
 * cache_pwrite(), cache_writev()) are at the end.  See cache_internal.h.
 */
#include <signal.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "cache_internal.h"

/*
 * Copy @len bytes from @u to @dst.  Returns the bytes copied: fewer only at
 * a bad address in the program's buffers (see uaccess.h), and then @dst
 * holds exactly those.
 */
static size_t uio_copy_from(struct uio *u, void *dst, size_t len)
{
	for (size_t done = 0; done < len;) {
		size_t n, left;

		uio_advance(u, 0);
		n = uio_room(u) < len - done ? uio_room(u) : len - done;
		left = uaccess_copy_from((char *)dst + done, uio_base(u), n);
		uio_advance(u, n - left);
		done += n - left;
		if (left)
			return done;
	}
	return len;
}

/*
 * Whether all @len bytes at @u's position can be read, for a file system
 * that writes a page's worth only if it can fault in all of the program's
 * bytes for it first (btrfs: fault_in_iov_readable()): one load per page of
 * the buffer, as that makes.
 */
static bool uio_readable(const struct uio *u, size_t len)
{
	struct uio at = *u;
	unsigned char byte;

	while (len) {
		size_t n;
		const char *p;

		uio_advance(&at, 0);
		n = uio_room(&at) < len ? uio_room(&at) : len;
		if (!n)
			break;
		for (p = uio_base(&at); p < uio_base(&at) + n;
		     p = (const char *)(((uintptr_t)p | (FOLIO_PAGE_BYTES - 1)) + 1))
			if (uaccess_copy_from(&byte, p, 1))
				return false;
		uio_advance(&at, n);
		len -= n;
	}
	return true;
}

/*
 * Bytes [@lo, @hi) of @page were just written (dirty_range_joins() said they
 * may be).  Under the page lock.
 */
static void set_dirty(struct mapping *m, struct page *page, size_t lo, size_t hi)
{
	if (page->flags & PAGE_DIRTY) {
		if (lo < page->dirty_lo)
			page->dirty_lo = lo;
		if (hi > page->dirty_hi)
			page->dirty_hi = hi;
		page_journal(page);
		return;
	}
	page->dirty_lo = lo;
	page->dirty_hi = hi;
	__atomic_store_n(&page->flags, page->flags | PAGE_DIRTY, __ATOMIC_RELAXED);
	page_journal(page);
	mapping_account_dirty(m, page);
}

/*
 * A write cannot join the dirty range of page @index: write that range to
 * the kernel first, as NFS flushes an incompatible request, so the bytes in
 * between stay whatever the kernel has (another process may have written
 * them).  The page stays on the dirty list with an empty range.  @lock held.
 * Returns 0 or -1 with errno.
 */
static __attribute__((noinline)) int flush_dirty_range(struct mapping *m, uint64_t index)
{
	off_t page_start = (off_t)index << FOLIO_PAGE_SHIFT, size = mapping_size(m);
	struct page *page;
	ssize_t n = 0;

	pthread_rwlock_wrlock(&m->kio_lock);	/* before the page lock, as write-back */
	urcu_bp_read_lock();
	page = ptree_lookup(&m->tree, index);
	urcu_bp_read_unlock();
	if (page) {
		pthread_mutex_lock(&page->lock);
		if ((page->flags & PAGE_DIRTY) && page->owner == m->id && page->index == index &&
		    page->dirty_lo < page->dirty_hi) {
			size_t lo = page->dirty_lo, hi = page->dirty_hi;

			if (page_start + (off_t)hi > size)
				hi = size > page_start + (off_t)lo ? (size_t)(size - page_start) : lo;
			if (hi > lo) {
				n = kernel_pwrite(m, page->data + lo, hi - lo, page_start + lo);
				if (n >= 0 && (size_t)n < hi - lo)
					n = fail(EIO);
			}
			if (n >= 0) {
				page->dirty_lo = DIRTY_NONE_LO;
				page->dirty_hi = DIRTY_NONE_HI;
				page_journal(page);	/* the kernel has them */
				mapping_kernel_extends(m, page_start + hi);
			}
		}
		pthread_mutex_unlock(&page->lock);
	}
	if (n > 0)
		mapping_note_kernel_now(m);
	pthread_rwlock_unlock(&m->kio_lock);
	return n < 0 ? -1 : 0;
}

/* Take @lock, and count the time waited for it if it was not free. */
static void write_lock(struct mapping *m, bool exclusive)
{
	uint64_t start;

	if (!(exclusive ? pthread_rwlock_trywrlock(&m->lock) : pthread_rwlock_tryrdlock(&m->lock)))
		return;
	start = stats_now_ns();
	if (exclusive)
		pthread_rwlock_wrlock(&m->lock);
	else
		pthread_rwlock_rdlock(&m->lock);
	stat_add_cold(m->stats, STAT_LOCK_WAIT_NS, stats_now_ns() - start);
}

/*
 * Take @lock for a write of @count bytes at @pos (doc/design.md §2): shared if
 * the write ends within the logical size, is not an append and cannot need
 * privileges dropped; checked again once locked, since the size may have
 * shrunk meanwhile, and retaken exclusive then (there is no upgrade).
 * Returns whether it is held exclusive.
 */
static bool lock_for_write(struct mapping *m, off_t pos, size_t count, bool append)
{
	if (!append && !m->privileged && pos + (off_t)count <= mapping_size(m)) {
		write_lock(m, false);
		if (pos + (off_t)count <= mapping_size(m)) {
			stat_add(m->stats, STAT_LOCK_SHARED, 1);
			return false;
		}
		pthread_rwlock_unlock(&m->lock);
		stat_add(m->stats, STAT_LOCK_RETAKEN, 1);
		log_debug("%s: a write at %lld retakes the lock exclusive: the size moved",
			  m->name, (long long)pos);
	}
	write_lock(m, true);
	stat_add(m->stats, STAT_LOCK_EXCLUSIVE, 1);
	return true;
}

/* Write @len bytes from @u at @pos straight to the kernel.  @lock held. */
static __attribute__((noinline)) ssize_t write_direct(struct mapping *m, struct uio *u,
						     size_t len, off_t pos)
{
	struct uio saved = *u;
	unsigned char bounce[FOLIO_PAGE_BYTES];
	ssize_t n;

	len = uio_copy_from(u, bounce, len);
	if (!len)
		return fail(EFAULT);
	pthread_rwlock_wrlock(&m->kio_lock);	/* no fill may read around it */
	n = kernel_pwrite(m, bounce, len, pos);
	if (n > 0) {
		struct page *page = find_locked(m, pos >> FOLIO_PAGE_SHIFT);

		mapping_kernel_extends(m, pos + n);
		mapping_note_kernel_now(m);
		if (page) {	/* a fill put it in since the caller looked */
			memcpy(page->data + (pos & (FOLIO_PAGE_BYTES - 1)), bounce, n);
			page_write_end(page);
		}
	}
	pthread_rwlock_unlock(&m->kio_lock);
	if (n < 0) {
		*u = saved;
		return -1;
	}
	if ((size_t)n < len) {
		*u = saved;
		uio_advance(u, n);
	}
	return n;
}

/*
 * Write @len bytes from @u at @pos, within one page, into the cache.  @lock
 * held.  Returns @len, a short count or -1 with errno.
 */
static ssize_t write_page(struct mapping *m, struct uio *u, size_t len, off_t pos)
{
	uint64_t index = pos >> FOLIO_PAGE_SHIFT;
	size_t off = pos & (FOLIO_PAGE_BYTES - 1);
	off_t page_start = pos - off;

	for (;;) {
		struct page *page = find_locked(m, index), *won = NULL;
		struct uio saved = *u;
		size_t copied;
		void **slot;

		if (page) {
			if (unlikely(!dirty_range_joins(page, off, off + len))) {
				page_write_end(page);
				if (flush_dirty_range(m, index) < 0)
					return -1;
				continue;
			}
			len = uio_copy_from(u, page->data + off, len);
			if (len)
				set_dirty(m, page, off, off + len);
			page_write_end(page);
			return len ? (ssize_t)len : fail(EFAULT);
		}
		page = alloc_page(m);
		slot = page ? ptree_slot(&m->tree, index) : NULL;
		if (!slot) {
			if (page)
				page_free(page);
			return write_direct(m, u, len, pos);
		}
		/*
		 * The rest of the page as it is now, then this write, then in:
		 * all under kio_lock shared, as fill_run() does.  A whole page
		 * takes nothing from the kernel: no write-back can make it old.
		 */
		if (len < FOLIO_PAGE_BYTES) {
			ssize_t got = 0;

			pthread_rwlock_rdlock(&m->kio_lock);
			if (page_start < mapping_ksize(m)) {
				if (m->kfd < 0 || m->kfd_accmode == O_WRONLY) {
					pthread_rwlock_unlock(&m->kio_lock);
					page_free(page);	/* cannot read it: write through */
					return write_direct(m, u, len, pos);
				}
				got = kernel_pread(m, page->data, FOLIO_PAGE_BYTES, page_start);
				if (got < 0) {
					pthread_rwlock_unlock(&m->kio_lock);
					page_free(page);
					return -1;
				}
			}
			memset(page->data + got, 0, FOLIO_PAGE_BYTES - got);
		}
		copied = uio_copy_from(u, page->data + off, len);
		if (copied) {
			page->dirty_lo = off;
			page->dirty_hi = off + copied;
			urcu_bp_read_lock();
			won = page_insert(page, slot, m->id, index, PAGE_DIRTY,
					  stat_cold_counter(m->stats, STAT_EVICTIONS));
			urcu_bp_read_unlock();
		}
		if (len < FOLIO_PAGE_BYTES)
			pthread_rwlock_unlock(&m->kio_lock);
		if (!copied) {
			page_free(page);
			return fail(EFAULT);
		}
		if (won == page) {
			mapping_account_dirty(m, page);
			return copied;
		}
		*u = saved;		/* lost the race: write into the winner */
	}
}

/*
 * Write one page's worth, @len bytes from @u at @pos, to the cache or the
 * kernel (@direct), as the file system would with the program's buffer.
 */
static ssize_t write_chunk(struct mapping *m, struct uio *u, size_t len, off_t pos, bool direct)
{
	if (unlikely(m->whole_page_writes) && !uio_readable(u, len))
		return fail(EFAULT);
	return direct ? write_direct(m, u, len, pos) : write_page(m, u, len, pos);
}

/*
 * Write @count bytes from @u at @pos into the cache.  With @lock exclusive,
 * the size grows page by page as the data lands (as the kernel's write_end
 * does), so a write-back this write triggers for want of pages sees it.
 */
static ssize_t write_pages(struct mapping *m, struct uio *u, size_t count, off_t pos,
			   bool exclusive)
{
	int saved_errno = errno;
	size_t done = 0;

	while (done < count) {
		size_t off = (pos + done) & (FOLIO_PAGE_BYTES - 1);
		size_t len = FOLIO_PAGE_BYTES - off < count - done ? FOLIO_PAGE_BYTES - off :
								     count - done;
		ssize_t n;

		/* A long write waits at the dirty limit page by page, as
		 * balance_dirty_pages() makes it: the flusher needs no lock
		 * this holds. */
		if (done && unlikely(writeback_over_limit())) {
			if (writeback_throttle() < 0) {	/* the error comes next time */
				errno = saved_errno;
				return done;
			}
		}
		n = write_chunk(m, u, len, pos + done, false);
		if (n < 0) {
			if (!done)
				return -1;
			errno = saved_errno;	/* a short count, as a bad buffer makes */
			return done;
		}
		done += n;
		if (exclusive && pos + (off_t)done > mapping_size(m))
			mapping_set_size(m, pos + done);
		if ((size_t)n < len)
			break;
	}
	return done;
}

bool still_privileged(int fd)
{
	struct stat st;

	if (real_fstat(fd, &st) == 0 &&
	    (st.st_mode & S_ISUID || (st.st_mode & (S_ISGID | S_IXGRP)) == (S_ISGID | S_IXGRP)))
		return true;
	return fgetxattr(fd, "security.capability", NULL, 0) >= 0;
}

/*
 * Write @count bytes from @u at @pos straight to the kernel, page by page
 * (a page in the cache gets the same bytes).  @lock held.
 */
static ssize_t write_through_pages(struct mapping *m, struct uio *u, size_t count, off_t pos)
{
	int saved_errno = errno;
	size_t done = 0;

	while (done < count) {
		size_t len = FOLIO_PAGE_BYTES < count - done ? FOLIO_PAGE_BYTES : count - done;
		ssize_t n = write_chunk(m, u, len, pos + done, true);

		if (n < 0) {
			if (!done)
				return -1;
			errno = saved_errno;	/* a short count */
			break;
		}
		done += n;
		if ((size_t)n < len)
			break;
	}
	return done;
}

/*
 * A write to a file with set-id bits or capabilities: through the kernel, so
 * that it drops them, after everything cached went back and with the pages
 * it overwrites dropped.  With @lock exclusive.
 */
static ssize_t write_privileged(struct mapping *m, struct uio *u, size_t count, off_t pos)
{
	ssize_t done;

	assert_exclusive(&m->lock);
	pthread_rwlock_wrlock(&m->kio_lock);
	if (mapping_writeback_kio_locked(m) < 0) {
		pthread_rwlock_unlock(&m->kio_lock);
		return -1;
	}
	drop_pages(m, pos >> FOLIO_PAGE_SHIFT, false);
	pthread_rwlock_unlock(&m->kio_lock);
	done = write_through_pages(m, u, count, pos);
	if (done > 0 && m->kfd >= 0 && !still_privileged(m->kfd))
		m->privileged = false;
	return done;
}

/*
 * May @m's pages be dirty, or must this write go to the kernel?  Only once
 * the guardian holds the file (guard.h).  @lock held.
 */
static bool guarded(struct mapping *m)
{
	if (likely(guard_file_current(&m->guard)))
		return true;
	return m->kfd >= 0 && m->kfd_accmode != O_RDONLY &&
	       guard_file(&m->guard, m->id, m->kfd, m->name) == 0;
}

/*
 * RLIMIT_FSIZE as the last write that needed it found it (OFF_T_MAX: none;
 * -1: not read yet).  Read again before a write is cut short by it (the
 * program or another process may have raised it) and after the program
 * sets it (cache_fsize_limit_end()).
 */
static off_t fsize_limit = -1;

static off_t fsize_limit_read(void)
{
	struct rlimit rl;
	off_t limit = getrlimit(RLIMIT_FSIZE, &rl) == 0 && rl.rlim_cur < (rlim_t)OFF_T_MAX ?
		      (off_t)rl.rlim_cur : OFF_T_MAX;

	__atomic_store_n(&fsize_limit, limit, __ATOMIC_RELAXED);
	return limit;
}

void cache_fsize_limit_end(void)
{
	fsize_limit_read();
}

/*
 * How much of @count bytes at @pos the file may take, as the kernel's
 * generic_write_check_limits() decides: RLIMIT_FSIZE (reaching it sends
 * SIGXFSZ), then the file system's largest file.  0 means EFBIG.
 */
static size_t write_limit(struct mapping *m, off_t pos, size_t count)
{
	off_t limit = __atomic_load_n(&fsize_limit, __ATOMIC_RELAXED);

	if (pos + (off_t)count > limit && pos + (off_t)count > (limit = fsize_limit_read())) {
		if (pos >= limit) {
			kill(getpid(), SIGXFSZ);
			return 0;
		}
		count = limit - pos;
	}
	if (pos + (off_t)count > SMALLEST_MAX_BYTES) {
		off_t max = mapping_max_bytes(m);

		if (pos >= max)
			return 0;
		if (pos + (off_t)count > max)
			count = max - pos;
	}
	return count;
}

/*
 * After ENOSPC or EDQUOT from write-back, and until a write-back succeeds,
 * a write that needs new space (past the kernel's end of file) fails at
 * once: the space is not there, and the data could only pile up.
 */
static int space_error(struct mapping *m, off_t end)
{
	int err = __atomic_load_n(&m->nospace, __ATOMIC_RELAXED);

	return unlikely(err) && end > mapping_ksize(m) ? err : 0;
}

/* Written at the end of the file or not: the flusher drops behind or not. */
static void note_streaming(struct mapping *m, bool streaming)
{
	if (__atomic_load_n(&m->streaming, __ATOMIC_RELAXED) != streaming)
		__atomic_store_n(&m->streaming, streaming, __ATOMIC_RELAXED);
}

/*
 * Write @count bytes from @u at *@pos (at the end of the file if @append),
 * and leave *@pos after them.  @of referenced; outside any read-side
 * section.  Returns what write(2) returns, or -2 if the mapping is bypassed
 * (the caller passes the call through).
 */
ssize_t write_at(struct mapping *m, struct uio *u, size_t count, off_t *pos, bool append)
{
	bool exclusive;
	off_t at;
	ssize_t n = copyable(u, count);
	int err;

	if (n < 0)
		return -1;
	count = n;
	if (unlikely(writeback_over_limit()) && writeback_throttle() < 0)
		return -1;
	exclusive = lock_for_write(m, *pos, count, append);

	if (bypassed(m)) {		/* mapped while this waited for the lock */
		pthread_rwlock_unlock(&m->lock);
		return -2;
	}
	at = append ? mapping_size(m) : *pos;
	count = write_limit(m, at, count);
	err = count ? space_error(m, at + count) : EFBIG;
	if (err) {
		pthread_rwlock_unlock(&m->lock);
		return fail(err);
	}
	/*
	 * Another process that opens the file now either sees this one may
	 * have dirty pages (and waits for it), or this sees the file shared.
	 */
	if (unlikely(m->share && !__atomic_load_n(&m->share_writer, __ATOMIC_RELAXED)) &&
	    writeback_share_writer(m)) {
		pthread_rwlock_unlock(&m->lock);
		start_bypass(m, BYPASS_SHARED);
		return -2;
	}
	if (unlikely(m->privileged))
		n = write_privileged(m, u, count, at);
	else if (likely(guarded(m)))
		n = write_pages(m, u, count, at, exclusive);
	else
		n = write_through_pages(m, u, count, at);
	if (n > 0 && exclusive && at + n > mapping_size(m))
		mapping_set_size(m, at + n);
	if (n > 0)
		note_streaming(m, exclusive && at + n == mapping_size(m));
	pthread_rwlock_unlock(&m->lock);
	if (n > 0) {
		*pos = at + n;
		writeback_dirtied(m);
	}
	return n;
}

/* ---- Entry points ---- */

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
ssize_t write_through(struct mapping *m, int fd, const struct iovec *iov, int iovcnt,
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
