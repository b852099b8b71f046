/*
 * cache.c - see cache.h.  Until the page cache lands every entry point is a
 * traced pass-through; FOLIO_LOG=debug shows each call crossing the boundary
 * (the whole-program tests rely on that to prove every wrapper reaches it).
 */
#include "cache.h"
#include "log.h"
#include "real.h"

#define trace(op, fd)	log_debug("%s: fd %d", op, fd)

ssize_t cache_read(struct ofile *of, int fd, void *buf, size_t count)
{
	(void)of;
	trace("read", fd);
	return real_read(fd, buf, count);
}

ssize_t cache_pread(struct ofile *of, int fd, void *buf, size_t count, off_t offset)
{
	(void)of;
	trace("pread", fd);
	return real_pread64(fd, buf, count, offset);
}

ssize_t cache_readv(struct ofile *of, int fd, const struct iovec *iov, int iovcnt,
		    off_t offset, int rwf_flags)
{
	(void)of;
	trace("readv", fd);
	return real_preadv64v2(fd, iov, iovcnt, offset, rwf_flags);
}

ssize_t cache_write(struct ofile *of, int fd, const void *buf, size_t count)
{
	(void)of;
	trace("write", fd);
	return real_write(fd, buf, count);
}

ssize_t cache_pwrite(struct ofile *of, int fd, const void *buf, size_t count, off_t offset)
{
	(void)of;
	trace("pwrite", fd);
	return real_pwrite64(fd, buf, count, offset);
}

ssize_t cache_writev(struct ofile *of, int fd, const struct iovec *iov, int iovcnt,
		     off_t offset, int rwf_flags)
{
	(void)of;
	trace("writev", fd);
	return real_pwritev64v2(fd, iov, iovcnt, offset, rwf_flags);
}

off_t cache_lseek(struct ofile *of, int fd, off_t offset, int whence)
{
	(void)of;
	trace("lseek", fd);
	return real_lseek64(fd, offset, whence);
}

int cache_ftruncate(struct ofile *of, int fd, off_t length)
{
	(void)of;
	trace("ftruncate", fd);
	return real_ftruncate64(fd, length);
}

int cache_truncate(const char *path, off_t length)
{
	log_debug("truncate: %s", path);
	return real_truncate64(path, length);
}

int cache_fallocate(struct ofile *of, int fd, int mode, off_t offset, off_t length)
{
	(void)of;
	trace("fallocate", fd);
	return real_fallocate64(fd, mode, offset, length);
}

int cache_posix_fallocate(struct ofile *of, int fd, off_t offset, off_t length)
{
	(void)of;
	trace("posix_fallocate", fd);
	return real_posix_fallocate64(fd, offset, length);
}

int cache_fadvise(struct ofile *of, int fd, off_t offset, off_t length, int advice)
{
	(void)of;
	trace("posix_fadvise", fd);
	return real_posix_fadvise64(fd, offset, length, advice);
}

ssize_t cache_readahead(struct ofile *of, int fd, off64_t offset, size_t count)
{
	(void)of;
	trace("readahead", fd);
	return real_readahead(fd, offset, count);
}

int cache_fsync(struct ofile *of, int fd, bool datasync)
{
	(void)of;
	trace(datasync ? "fdatasync" : "fsync", fd);
	return datasync ? real_fdatasync(fd) : real_fsync(fd);
}

int cache_sync_file_range(struct ofile *of, int fd, off64_t offset, off64_t nbytes,
			  unsigned int flags)
{
	(void)of;
	trace("sync_file_range", fd);
	return real_sync_file_range(fd, offset, nbytes, flags);
}

int cache_writeback_all(void)
{
	if (fdtable_in_vfork_child())	/* the parent writes back, not its vfork child */
		return 0;
	if (fdtable_any_tracked())
		log_debug("writeback_all: every tracked file");
	return 0;
}

int cache_close(struct ofile *of, int fd)
{
	(void)of;
	trace("close", fd);
	return real_close(fd);
}

void *cache_mmap(struct ofile *of, void *addr, size_t length, int prot, int flags, int fd,
		 off_t offset)
{
	(void)of;
	trace("mmap", fd);
	return real_mmap64(addr, length, prot, flags, fd, offset);
}

void cache_copy_prepare(struct ofile *in, struct ofile *out)
{
	(void)in;
	(void)out;
	log_debug("copy_prepare:%s%s", in ? " source" : "", out ? " destination" : "");
}

void cache_stat_fixup(dev_t dev, ino_t ino, off_t *st_size, blkcnt_t *st_blocks)
{
	(void)st_size;
	(void)st_blocks;
	if (fdtable_inode_tracked(dev, ino))
		log_debug("stat: inode %lu", (unsigned long)ino);
}
