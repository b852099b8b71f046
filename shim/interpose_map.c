/*
 * interpose_map.c - memory maps and in-kernel copies, the two ways data
 * moves without read/write.  A tracked file being mapped, or copied by the
 * kernel, must first see everything folio holds for it (doc/design.md §4).
 * A mapped tracked file passes through while any mapping of it exists, so
 * munmap and mremap tell the cache where mappings go.
 */
#include <stdarg.h>

#include "interpose.h"

static void *tracked_mmap(void *addr, size_t length, int prot, int flags, int fd, off_t offset)
{
	struct ofile *of = ofile_get(fd);
	void *ret;
	int cancel;

	if (!of)
		return real_mmap64(addr, length, prot, flags, fd, offset);
	cancel = cancel_off();
	ret = cache_mmap(of, addr, length, prot, flags, fd, offset);
	ofile_put(of);
	cancel_restore(cancel);
	return ret;
}

FOLIO_EXPORT void *mmap(void *addr, size_t length, int prot, int flags, int fd, off_t offset)
{
	if (likely(!fd_tracked(fd)) || (flags & MAP_ANONYMOUS))
		return real_mmap(addr, length, prot, flags, fd, offset);
	return tracked_mmap(addr, length, prot, flags, fd, offset);
}
FOLIO_ALIAS64(mmap, mmap64);

FOLIO_EXPORT int munmap(void *addr, size_t length)
{
	int ret = real_munmap(addr, length);

	if (ret == 0)
		cache_munmap(addr, length);
	return ret;
}

FOLIO_EXPORT void *mremap(void *old_address, size_t old_size, size_t new_size, int flags, ...)
{
	void *new_address = NULL;
	va_list ap;

	if (flags & (MREMAP_FIXED | MREMAP_DONTUNMAP)) {	/* as glibc reads it */
		va_start(ap, flags);
		new_address = va_arg(ap, void *);
		va_end(ap);
	}
	new_address = real_mremap(old_address, old_size, new_size, flags, new_address);
	if (new_address != MAP_FAILED)
		cache_mremap(old_address, new_address, new_size);
	return new_address;
}

/*
 * The kernel copies between @in and @out, at least one tracked: around the
 * copy, the cache writes back and lends the kernel its file positions.
 * copy_begin() takes the references and turns cancellation off; it returns
 * false if the copy must not run (the cache's error in errno); copy_end()
 * gives them back and returns @ret.  @cancel_point: whether libc's call is
 * a cancellation point (splice and copy_file_range; not sendfile): a
 * pending cancel acts first, as there.
 */
struct tracked_copy {
	struct ofile *in_of, *out_of;
	int in, out, cancel;
};

static bool copy_begin(struct tracked_copy *c, int in, int out, bool cancel_point)
{
	if (cancel_point)
		pthread_testcancel();
	c->in_of = ofile_get(in);
	c->out_of = ofile_get(out);
	c->in = in;
	c->out = out;
	c->cancel = cancel_off();
	return cache_copy_begin(c->in_of, in, c->out_of, out) == 0;
}

static ssize_t copy_end(struct tracked_copy *c, bool copied, ssize_t ret)
{
	if (copied)
		cache_copy_end(c->in_of, c->in, c->out_of, c->out);
	if (c->in_of)
		ofile_put(c->in_of);
	if (c->out_of)
		ofile_put(c->out_of);
	cancel_restore(c->cancel);
	return ret;
}

FOLIO_EXPORT ssize_t sendfile(int out_fd, int in_fd, off_t *offset, size_t count)
{
	struct tracked_copy c;

	if (likely(!fd_tracked(in_fd) && !fd_tracked(out_fd)))
		return real_sendfile(out_fd, in_fd, offset, count);
	if (!copy_begin(&c, in_fd, out_fd, false))
		return copy_end(&c, false, -1);
	return copy_end(&c, true, real_sendfile(out_fd, in_fd, offset, count));
}
FOLIO_ALIAS64(sendfile, sendfile64);

FOLIO_EXPORT ssize_t copy_file_range(int in_fd, off64_t *in_off, int out_fd, off64_t *out_off,
				     size_t length, unsigned int flags)
{
	struct tracked_copy c;

	if (likely(!fd_tracked(in_fd) && !fd_tracked(out_fd)))
		return real_copy_file_range(in_fd, in_off, out_fd, out_off, length, flags);
	if (!copy_begin(&c, in_fd, out_fd, true))
		return copy_end(&c, false, -1);
	return copy_end(&c, true,
			real_copy_file_range(in_fd, in_off, out_fd, out_off, length, flags));
}

FOLIO_EXPORT ssize_t splice(int in_fd, off64_t *in_off, int out_fd, off64_t *out_off,
			    size_t length, unsigned int flags)
{
	struct tracked_copy c;

	if (likely(!fd_tracked(in_fd) && !fd_tracked(out_fd)))
		return real_splice(in_fd, in_off, out_fd, out_off, length, flags);
	if (!copy_begin(&c, in_fd, out_fd, true))
		return copy_end(&c, false, -1);
	return copy_end(&c, true, real_splice(in_fd, in_off, out_fd, out_off, length, flags));
}
