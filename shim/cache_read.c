/*
 * cache_read.c - the read path, in the shape of mm/filemap.c's filemap_read():
 * copy what is cached (copy_hits), and on a miss fill a window of pages from
 * the kernel (fill_window, readahead when the reader is sequential) and copy
 * again.  Hits run inside the caller's read-side section and write nothing
 * shared but the page's referenced bit.  The read entry points (read, pread,
 * readv and their forms: cache_read(), cache_pread(), cache_readv()) are at
 * the end, so that a read() can be followed in this file.  See
 * cache_internal.h.
 */
#include "cache_internal.h"

/*
 * A read that misses and asks for this much or more, of a file larger than
 * the cache, goes straight from the kernel into the program's buffer
 * instead of through the cache (see read_streaming()): such a pass would
 * only push everything else out.  A file that fits is cached, so that a
 * program reading it whole and then at random finds it.
 */
#define STREAM_READ	(64 << 10)
/* Pages one miss fills at most (one preadv of 256 KiB, the default
 * readahead window; small enough for the iovecs to sit on the stack). */
#define FILL_MAX	64
/* Misses in a row that find their pages gone again before copying falls
 * back to reading from the kernel directly. */
#define FILL_TRIES	3

/*
 * Copy @len bytes from @src to @u.  Returns the bytes copied: fewer only
 * at a bad address in the program's buffers (see uaccess.h).
 */
static size_t uio_copy_to(struct uio *u, const void *src, size_t len)
{
	for (size_t done = 0; done < len;) {
		size_t n, left;

		uio_advance(u, 0);
		n = uio_room(u) < len - done ? uio_room(u) : len - done;
		left = uaccess_copy_to(uio_base(u), (const char *)src + done, n);
		uio_advance(u, n - left);
		done += n - left;
		if (left)
			return done;
	}
	return len;
}

/* A page's bytes that span iovecs: one untorn copy, then scattered. */
static __attribute__((noinline, cold)) size_t uio_copy_page_split(struct uio *u,
								  struct page *page,
								  size_t off, size_t len)
{
	unsigned char bounce[FOLIO_PAGE_BYTES];

	page_copy_out(page, off, len, bounce);
	return uio_copy_to(u, bounce, len);
}

/* Copy @len bytes of @page at @off to @u, untorn.  Returns them, or fewer
 * at a bad address. */
static size_t uio_copy_page(struct uio *u, struct page *page, size_t off, size_t len)
{
	uio_advance(u, 0);
	if (likely(uio_room(u) >= len)) {
		size_t n = page_copy_out(page, off, len, uio_base(u));

		uio_advance(u, n);
		return n;
	}
	return uio_copy_page_split(u, page, off, len);
}

/*
 * Copy from the cached pages of @m at @pos to @u, until @count bytes, the
 * first page that is not cached or a bad address in @u (then *@faulted is
 * set: no fill can help).  Inside a read-side section.  Returns the bytes
 * copied.
 */
static size_t copy_hits(struct mapping *m, struct uio *u, size_t count, off_t pos,
			bool *faulted)
{
	size_t done = 0;

	while (done < count) {
		off_t at = pos + done;
		size_t off = at & (FOLIO_PAGE_BYTES - 1);
		size_t len = FOLIO_PAGE_BYTES - off < count - done ? FOLIO_PAGE_BYTES - off :
								     count - done;
		struct page *page = ptree_lookup(&m->tree, at >> FOLIO_PAGE_SHIFT);
		size_t n;

		if (!page)
			break;
		n = uio_copy_page(u, page, off, len);
		done += n;
		if (n < len) {
			*faulted = true;
			break;
		}
	}
	return done;
}

/*
 * Read @n pages of @m from page @first into @pages from the kernel (zeros
 * past its end) and insert them.  With @lock held.  Returns 0, or -1 with
 * errno (the pages are freed either way if not inserted).  Under @kio_lock
 * shared from the read to the insert: no write-back runs in between, so a
 * page another thread wrote back (and the clock hand took) meanwhile cannot
 * come back with the data from before.
 */
static int fill_run(struct mapping *m, struct page **pages, int n, uint64_t first)
{
	off_t start = (off_t)first << FOLIO_PAGE_SHIFT;
	struct iovec iov[FILL_MAX];
	void **slots[FILL_MAX];
	ssize_t got = 0;
	int inserted = 0;

	for (int i = 0; i < n; i++) {
		iov[i].iov_base = pages[i]->data;
		iov[i].iov_len = FOLIO_PAGE_BYTES;
		slots[i] = ptree_slot(&m->tree, first + i);	/* NULL: no memory */
	}
	pthread_rwlock_rdlock(&m->kio_lock);
	if (start < mapping_ksize(m)) {
		do
			got = m->kfd < 0 || m->kfd_accmode == O_WRONLY ?
			      fail(EBADF) : real_preadv64(m->kfd, iov, n, start);
		while (got < 0 && errno == EINTR);
		if (got < 0) {
			int err = errno;

			pthread_rwlock_unlock(&m->kio_lock);
			for (int i = 0; i < n; i++)
				page_free(pages[i]);
			return fail(err);
		}
	}
	for (int i = 0; i < n; i++) {	/* past the kernel's end: zeros */
		size_t from = (size_t)i << FOLIO_PAGE_SHIFT;
		size_t have = (size_t)got > from ? (size_t)got - from : 0;

		if (have < FOLIO_PAGE_BYTES)
			memset(pages[i]->data + have, 0, FOLIO_PAGE_BYTES - have);
	}
	urcu_bp_read_lock();
	for (int i = 0; i < n; i++)
		if (slots[i] && page_insert(pages[i], slots[i], m->id, first + i, 0,
					    stat_cold_counter(m->stats, STAT_EVICTIONS)) == pages[i])
			inserted++;
	urcu_bp_read_unlock();
	stat_add_cold(m->stats, STAT_FILL_PAGES, inserted);
	/* Not inside the section: reclaim holds the free list's lock while
	 * it waits for a grace period. */
	for (int i = 0; i < n; i++)
		if (!slots[i])
			page_free(pages[i]);
	pthread_rwlock_unlock(&m->kio_lock);
	return 0;
}

static bool page_cached(struct mapping *m, uint64_t index)
{
	bool cached;

	urcu_bp_read_lock();
	cached = ptree_lookup(&m->tree, index) != NULL;
	urcu_bp_read_unlock();
	return cached;
}

/*
 * Make the pages of @m for [@pos, @pos + @count) cached, and those of the
 * readahead window after them when @of reads sequentially.  With @lock
 * held.  Returns 0, or -1 with errno.  Pages it could not allocate stay
 * uncached: the caller reads those directly.
 */
static int fill_window(struct ofile *of, struct mapping *m, off_t pos, size_t count)
{
	uint64_t first = pos >> FOLIO_PAGE_SHIFT;
	uint64_t end = ((uint64_t)pos + count + FOLIO_PAGE_BYTES - 1) >> FOLIO_PAGE_SHIFT;
	uint64_t asked = end;
	uint64_t size_pages = ((uint64_t)mapping_size(m) + FOLIO_PAGE_BYTES - 1) >>
			      FOLIO_PAGE_SHIFT;
	uint64_t ra = folio_config.readahead >> FOLIO_PAGE_SHIFT;

	if (first == __atomic_load_n(&of->ra_next, __ATOMIC_RELAXED) && end < first + ra)
		end = first + ra;
	if (end > size_pages)
		end = size_pages;
	if (end > first + FILL_MAX)
		end = first + FILL_MAX;
	__atomic_store_n(&of->ra_next, end, __ATOMIC_RELAXED);
	for (uint64_t index = first; index < end;) {
		struct page *pages[FILL_MAX];
		int n = 0;

		while (index + n < end && !page_cached(m, index + n)) {
			if (!(pages[n] = alloc_page(m)))
				break;
			n++;
		}
		if (n && fill_run(m, pages, n, index) < 0)
			return -1;
		if (index + n > asked)
			stat_add_cold(m->stats, STAT_READAHEAD_PAGES,
				      index + n - (index > asked ? index : asked));
		if (!n && index + n < end && !page_cached(m, index))
			return 0;	/* no page to be had */
		index += n ? n : 1;
	}
	return 0;
}

/*
 * Read one piece of [@pos, @pos + @count) straight from the kernel into @u,
 * for when the cache has no page to spare.  With @lock held.
 */
static __attribute__((noinline)) ssize_t read_direct(struct mapping *m, struct uio *u,
						    size_t count, off_t pos)
{
	unsigned char bounce[FOLIO_PAGE_BYTES];
	size_t len = FOLIO_PAGE_BYTES - (pos & (FOLIO_PAGE_BYTES - 1));
	off_t ksize = mapping_ksize(m);
	ssize_t got = 0;

	if (len > count)
		len = count;
	if (pos < ksize && (got = kernel_pread(m, bounce, len, pos)) < 0)
		return -1;
	memset(bounce + got, 0, len - got);
	got = uio_copy_to(u, bounce, len);
	return got ? got : fail(EFAULT);
}

/* Copy what @m caches of [@pos, @pos + @len) over @buf.  Read-side section. */
static void overlay_cached(struct mapping *m, unsigned char *buf, size_t len, off_t pos)
{
	for (size_t done = 0; done < len;) {
		off_t at = pos + done;
		size_t off = at & (FOLIO_PAGE_BYTES - 1);
		size_t n = FOLIO_PAGE_BYTES - off < len - done ? FOLIO_PAGE_BYTES - off : len - done;
		struct page *page = ptree_lookup(&m->tree, at >> FOLIO_PAGE_SHIFT);

		if (page)
			page_copy_out(page, off, n, buf + done);
		done += n;
	}
}

/*
 * A large read that misses, into one buffer: straight from the kernel into
 * the program's buffer (one copy, not two, and no cache memory touched),
 * then what folio caches in the range copied over it (dirty pages are newer
 * than the kernel's).  Under @kio_lock shared, like a fill: no write-back
 * can land between the kernel's read and the overlay.  @lock held.
 * Returns the bytes read, or -1 with errno.
 */
static ssize_t read_streaming(struct mapping *m, struct uio *u, size_t want, off_t at)
{
	unsigned char *buf = (unsigned char *)uio_base(u);
	off_t ksize;
	ssize_t got = 0;

	pthread_rwlock_rdlock(&m->kio_lock);
	ksize = mapping_ksize(m);
	if (at < ksize) {
		size_t kwant = (off_t)want < ksize - at ? want : (size_t)(ksize - at);

		got = kernel_pread(m, buf, kwant, at);
		if (got < 0) {
			pthread_rwlock_unlock(&m->kio_lock);
			return -1;
		}
	}
	/* Past the kernel's end: zeros.  A short count at a bad address. */
	want -= uaccess_clear(buf + got, want - got);
	if (!want) {
		pthread_rwlock_unlock(&m->kio_lock);
		return fail(EFAULT);
	}
	urcu_bp_read_lock();
	overlay_cached(m, buf, want, at);
	urcu_bp_read_unlock();
	pthread_rwlock_unlock(&m->kio_lock);
	uio_advance(u, want);
	return want;
}

/*
 * The miss of an RWF_NOWAIT read: what the kernel's page cache holds of
 * [@pos, @pos + @count), asked for with RWF_NOWAIT too, with what folio
 * caches copied over it, page by page through a bounce buffer; no fill, no
 * wait for a lock.  @lock and @kio_lock shared, as for read_streaming().
 * Returns the bytes copied, or -1 with errno: EAGAIN where the kernel would
 * wait for I/O or folio for a lock before the first byte.
 */
static __attribute__((noinline, cold)) ssize_t read_nowait(struct mapping *m, struct uio *u,
							   size_t count, off_t pos)
{
	unsigned char bounce[FOLIO_PAGE_BYTES];
	size_t done = 0;
	int err = 0;

	if (pthread_rwlock_tryrdlock(&m->lock))
		return fail(EAGAIN);
	if (pthread_rwlock_tryrdlock(&m->kio_lock)) {
		pthread_rwlock_unlock(&m->lock);
		return fail(EAGAIN);
	}
	while (done < count) {
		off_t at = pos + done, size = mapping_size(m), ksize = mapping_ksize(m);
		size_t len = FOLIO_PAGE_BYTES - (at & (FOLIO_PAGE_BYTES - 1)), got = 0, copied;
		bool kernel_short = false;	/* the rest is not in the kernel's cache */

		if (at >= size)
			break;
		if (len > count - done)
			len = count - done;
		if ((off_t)len > size - at)
			len = size - at;
		if (at < ksize) {
			size_t kwant = (off_t)len < ksize - at ? len : (size_t)(ksize - at);
			ssize_t r = kernel_pread_flags(m, bounce, kwant, at, RWF_NOWAIT);

			if (r < 0) {
				err = errno;
				break;
			}
			got = r;
			if (got < kwant) {
				len = got;
				kernel_short = true;
			}
		}
		if (!len)
			break;
		memset(bounce + got, 0, len - got);	/* past the kernel's end */
		urcu_bp_read_lock();
		overlay_cached(m, bounce, len, at);
		urcu_bp_read_unlock();
		copied = uio_copy_to(u, bounce, len);
		done += copied;
		if (copied < len) {
			err = EFAULT;
			break;
		}
		if (kernel_short)
			break;
	}
	pthread_rwlock_unlock(&m->kio_lock);
	pthread_rwlock_unlock(&m->lock);
	if (!done)
		return fail(err ? err : EAGAIN);
	return done;
}

/*
 * The slow half of a read: fill and copy, holding @lock shared.  @of is
 * referenced; outside any read-side section.
 */
static ssize_t read_filled(struct ofile *of, struct mapping *m, struct uio *u, size_t count,
			   off_t pos)
{
	size_t done = 0;
	int tries = 0, err = 0;
	bool faulted = false;

	pthread_rwlock_rdlock(&m->lock);
	while (done < count) {
		off_t at = pos + done, size = mapping_size(m);
		size_t want = count - done, n;

		if (at >= size)
			break;
		if ((off_t)want > size - at)
			want = size - at;
		uio_advance(u, 0);
		if (want >= STREAM_READ && uio_room(u) >= want &&
		    (uint64_t)size > (uint64_t)page_store_capacity() << FOLIO_PAGE_SHIFT) {
			ssize_t r = read_streaming(m, u, want, at);

			if (r < 0) {
				err = errno;
				break;
			}
			done += r;
			continue;
		}
		if (fill_window(of, m, at, want) < 0) {
			err = errno;
			break;
		}
		urcu_bp_read_lock();
		n = copy_hits(m, u, want, at, &faulted);
		urcu_bp_read_unlock();
		if (faulted) {
			done += n;
			err = EFAULT;
			break;
		}
		if (!n && ++tries >= FILL_TRIES) {
			ssize_t r = read_direct(m, u, want, at);

			if (r < 0) {
				err = errno;
				break;
			}
			n = r;
		}
		if (n)
			tries = 0;
		done += n;
	}
	pthread_rwlock_unlock(&m->lock);
	if (!done && err)
		return fail(err);
	return done;
}

/*
 * Read @count bytes at @pos into @u: what is cached is copied in the
 * caller's read-side section; a miss takes a reference on @of, leaves the
 * section for the I/O and comes back.  With @nowait (RWF_NOWAIT) a miss
 * takes what the kernel's page cache has without I/O (read_nowait()), and
 * says EAGAIN if that is nothing: the caller retries where it may block.
 */
ssize_t read_at(struct ofile *of, struct mapping *m, struct uio *u, size_t count,
		       off_t pos, bool nowait)
{
	off_t size = mapping_size(m);
	ssize_t n;
	size_t done;
	int cancel, saved_errno;
	bool faulted = false;

	if (pos >= size)
		return read_counted(m, 0, false);
	if ((off_t)count > size - pos)
		count = size - pos;
	if ((n = copyable(u, count)) < 0)
		return read_counted(m, -1, false);
	count = n;
	done = copy_hits(m, u, count, pos, &faulted);
	if (done == count)
		return read_counted(m, done, false);
	if (faulted)		/* as the kernel's copy_to_user() stops there */
		return read_counted(m, done ? (ssize_t)done : fail(EFAULT), false);
	if (!ofile_tryget(of))		/* the fd is closing */
		return read_counted(m, done ? (ssize_t)done : fail(EBADF), true);
	cancel = cancel_off();
	saved_errno = errno;
	urcu_bp_read_unlock();
	folio_call_depth++;	/* holding locks a handler's write-back needs */
	n = nowait ? read_nowait(m, u, count - done, pos + done) :
		     read_filled(of, m, u, count - done, pos + done);
	folio_call_depth--;
	if (n >= 0 || done) {
		n = done + (n > 0 ? n : 0);
		errno = saved_errno;	/* a short count, as a bad buffer makes */
	}
	/* Not @m after this put: it may be the last reference. */
	read_counted(m, n, true);
	ofile_put(of);
	cancel_restore(cancel);
	urcu_bp_read_lock();
	return n;
}

/* ---- Entry points ---- */

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
