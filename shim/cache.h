/*
 * cache.h - the page cache's entry points for tracked files.
 *
 * Every operation on a tracked fd reaches the cache through these functions,
 * after interpose has validated the arguments the way the kernel does and
 * fdtable has given a referenced ofile.  The page cache itself (DESIGN.md
 * §2.4) is the next step; until it lands each entry point serves the call
 * with the real libc function, so behaviour is exactly native and the
 * boundary is already where the cache will be.
 *
 * Conventions: functions return what the libc call they replace returns,
 * with errno set as it would set it; @of is referenced by the caller for the
 * duration of the call; an offset of -1 in the vectored calls means "at the
 * file position", as preadv2(2) defines it.
 *
 * Calls writeback (not yet: dirty data does not exist yet), fdtable, log and
 * real; called by interpose.
 */
#ifndef FOLIO_CACHE_H
#define FOLIO_CACHE_H

#include <stdbool.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "fdtable.h"

/* Data. */
ssize_t cache_read(struct ofile *of, int fd, void *buf, size_t count);
ssize_t cache_pread(struct ofile *of, int fd, void *buf, size_t count, off_t offset);
ssize_t cache_readv(struct ofile *of, int fd, const struct iovec *iov, int iovcnt,
		    off_t offset, int rwf_flags);
ssize_t cache_write(struct ofile *of, int fd, const void *buf, size_t count);
ssize_t cache_pwrite(struct ofile *of, int fd, const void *buf, size_t count, off_t offset);
ssize_t cache_writev(struct ofile *of, int fd, const struct iovec *iov, int iovcnt,
		     off_t offset, int rwf_flags);

/* Position and size. */
off_t cache_lseek(struct ofile *of, int fd, off_t offset, int whence);
int cache_ftruncate(struct ofile *of, int fd, off_t length);
/* truncate(2) of a path whose inode is tracked. */
int cache_truncate(const char *path, off_t length);
int cache_fallocate(struct ofile *of, int fd, int mode, off_t offset, off_t length);
/* posix_fallocate and posix_fadvise return an error number, as libc does. */
int cache_posix_fallocate(struct ofile *of, int fd, off_t offset, off_t length);
int cache_fadvise(struct ofile *of, int fd, off_t offset, off_t length, int advice);
ssize_t cache_readahead(struct ofile *of, int fd, off64_t offset, size_t count);

/* Sync points. */
int cache_fsync(struct ofile *of, int fd, bool datasync);
int cache_sync_file_range(struct ofile *of, int fd, off64_t offset, off64_t nbytes,
			  unsigned int flags);
/*
 * Write back every tracked file (sync, syncfs, before fork, exec, spawn and
 * exit).  Returns 0 or -1 with errno.
 */
int cache_writeback_all(void);

/*
 * The last slot reference of @of was taken from @fd by the caller: close
 * @fd and report any deferred error, as close(2) would.
 */
int cache_close(struct ofile *of, int fd);

/* A tracked file is about to be mapped: write back and pass through. */
void *cache_mmap(struct ofile *of, void *addr, size_t length, int prot, int flags, int fd,
		 off_t offset);

/*
 * sendfile, copy_file_range and splice are about to read from @in and/or
 * write to @out (either may be NULL when untracked): write back the source,
 * forget destination pages.
 */
void cache_copy_prepare(struct ofile *in, struct ofile *out);

/*
 * stat family: @st_size and @st_blocks as the kernel reported them for the
 * inode @dev/@ino; replace them with the logical values when tracked.
 */
void cache_stat_fixup(dev_t dev, ino_t ino, off_t *st_size, blkcnt_t *st_blocks);

#endif
