/*
 * cache.h - the page cache's entry points for tracked files.
 *
 * Every operation on a tracked fd reaches the cache through these functions
 * (doc/design.md §2.4): reads that hit are copied from the page store under RCU
 * with no lock and no system call; misses read through folio's own fd with
 * readahead; writes copy into pages under the mapping's write lock, taken
 * shared unless the write may change the size; dirty pages go back to the
 * kernel from the flusher thread and at the sync points (writeback.c).
 *
 * Conventions: functions return what the libc call they replace returns,
 * with errno set as it would set it (and untouched on success); an offset of
 * -1 in the vectored calls means "at the file position", as preadv2(2)
 * defines it.  @of is referenced by the caller for the duration of the call,
 * except for cache_pread() and positioned cache_readv(), which are called
 * inside urcu_bp_read_lock() with an ofile from ofile_rcu(): on a miss they
 * take a reference and leave the read-side section to do the I/O, and are
 * back inside it when they return.
 *
 * Calls writeback, page, ptree, uaccess (the program's buffers), mmaps,
 * stats, fdtable (to visit open files), config, log, real, and at the first
 * tracked open unwind and crash (crash reports); called by interpose, and
 * by fdtable through the hooks it registers (cache_init()).
 */
#ifndef FOLIO_CACHE_H
#define FOLIO_CACHE_H

#include <stdbool.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "fdtable.h"

struct stat;
struct mapping;

/*
 * Register the hooks below with fdtable (struct fdtable_cache_ops): once,
 * before the first tracked open.
 */
void cache_init(void);

/*
 * fdtable's hooks, the first five under fdtable_lock.  A new mapping for the file
 * @name open as @fd with status @st, folio's own descriptor @kfd open with
 * @kfd_accmode: NULL, with errno and a message, if the cache cannot take it.
 */
struct mapping *cache_mapping_new(const char *name, int fd, const struct stat *st, int kfd,
				  int kfd_accmode);
/*
 * Another open (@flags) of the inode of @m, which now has status @st: an
 * O_TRUNC open truncated the file behind the cache; a size that changed
 * otherwise means another process changed it (close-to-open).
 */
void cache_mapping_reopened(struct mapping *m, int flags, const struct stat *st);
/* folio's own descriptor of @m is now @kfd (-1: none); waits for its users. */
void cache_set_kfd(struct mapping *m, int kfd, int kfd_accmode);
/*
 * Does @m hold data that could not be written back?  Then its inode's state
 * stays after the last close (until the data is written, or a new open
 * takes it back), so nothing a write accepted is dropped.
 */
bool cache_mapping_unwritten(struct mapping *m);
/* The last open of the inode is gone: nothing may use @m any more. */
void cache_mapping_retire(struct mapping *m);
/* Free @m, a grace period after it was retired (under no lock). */
void cache_mapping_free(struct mapping *m);

/*
 * @of was just opened (not under fdtable_lock): it hears of write-back
 * errors from now on, and a writable one keeps the flusher (writeback.h).
 */
void cache_ofile_opened(struct ofile *of);

/*
 * The last reference to @of is gone (not under fdtable_lock, outside any
 * read-side section): write back what it may have written.
 */
void cache_ofile_release(struct ofile *of);

/*
 * @of was just installed as fd 0, 1 or 2 (not under fdtable_lock): libc's
 * standard streams read and write those without folio, so the file passes
 * through from now on.
 */
void cache_std_fd(struct ofile *of);

/* fork child, no other thread: forget the cache, start afresh when needed. */
void cache_after_fork_child(void);

/*
 * At exit: the flusher stops, everything is written back a last time, and
 * folio says which files keep data that could not be written.
 */
void cache_exit(void);

/*
 * Before an exec: as cache_prepare_child(false), and folio says which files
 * keep data that could not be written (lost if the exec succeeds).
 */
void cache_before_exec(void);

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
/*
 * Around an open of @path (relative to @dirfd) with O_TRUNC: if the file is
 * cached, begin returns its referenced ofile with the write lock held, so
 * that no write-back runs while the kernel truncates; end (with the fd the
 * open returned, or -1) makes the cache agree and releases both.  Both
 * preserve errno.
 */
struct ofile *cache_trunc_begin(int dirfd, const char *path);
void cache_trunc_end(struct ofile *of, int fd);

/* truncate(2) of a path whose inode is tracked. */
int cache_truncate(const char *path, off_t length);
int cache_fallocate(struct ofile *of, int fd, int mode, off_t offset, off_t length);
/* posix_fallocate and posix_fadvise return an error number, as libc does. */
int cache_posix_fallocate(struct ofile *of, int fd, off_t offset, off_t length);
int cache_fadvise(struct ofile *of, int fd, off_t offset, off_t length, int advice);
ssize_t cache_readahead(struct ofile *of, int fd, off64_t offset, size_t count);

/* folio_flush(): write @of's file back, without the fsync. */
int cache_flush(struct ofile *of);
/* folio_stats(): the counters of @of's file. */
struct file_stats *cache_file_stats(struct ofile *of);

/* Sync points. */
int cache_fsync(struct ofile *of, int fd, bool datasync);
int cache_sync_file_range(struct ofile *of, int fd, off64_t offset, off64_t nbytes,
			  unsigned int flags);
/*
 * Write back every tracked file (sync, syncfs, msync, exit).  Returns 0 or
 * -1 with errno.
 */
int cache_writeback_all(void);

/*
 * The program sets its own RLIMIT_FSIZE to @new_limit (setrlimit, prlimit):
 * begin writes back every tracked file first if the limit goes down, so that
 * data the old limit accepted reaches the kernel under it; end, after the
 * call, takes the limit the kernel now has for the checks of later writes.
 * Both keep errno.
 */
void cache_fsize_limit_begin(rlim_t new_limit);
void cache_fsize_limit_end(void);

/*
 * Another process is about to share this one's open files: write back every
 * tracked file; for each fd the child inherits (@all_fds: fork, or spawn
 * file actions that may dup any fd; else those without FD_CLOEXEC), give
 * the kernel folio's file position and keep it there, and pass the file
 * through from now on if the description is writable (the child could
 * write it behind the cache).  Returns 0 or -1 with errno.
 */
int cache_prepare_child(bool all_fds);

/*
 * The last slot reference of @of was taken from @fd by the caller: close
 * @fd and report any deferred error, as close(2) would.
 */
int cache_close(struct ofile *of, int fd);

/*
 * A file lock on @of's file (fcntl F_SETLK*, flock, lockf): release is
 * called before an unlock and writes back, so the next holder sees what
 * this process wrote; acquired after a lock was taken, and forgets the
 * clean pages if another process changed the file meanwhile.  Lock
 * consistency, as NFS keeps it.  Both preserve errno.
 */
void cache_lock_release(struct ofile *of);
void cache_lock_acquired(struct ofile *of);

/*
 * chmod or chown of the inode of @of: begin writes its dirty data back,
 * end (errno preserved) re-reads whether writes must drop set-id bits.
 */
void cache_attr_begin(struct ofile *of);
void cache_attr_end(struct ofile *of);

/*
 * A tracked file is about to be mapped: write back, drop the pages, pass
 * the file through until its last mapping is gone (cache_munmap).
 */
void *cache_mmap(struct ofile *of, void *addr, size_t length, int prot, int flags, int fd,
		 off_t offset);

/*
 * munmap() succeeded / mremap() moved or resized a mapping: a tracked file
 * whose last mapping went is cached again.  Cheap when nothing tracked is
 * mapped; errno preserved.
 */
void cache_munmap(void *addr, size_t length);
void cache_mremap(void *old_address, void *new_address, size_t new_size);

/*
 * sendfile, copy_file_range and splice read from @in and/or write to @out
 * (either may be NULL when untracked) in the kernel, at the file positions
 * or not.  Begin: write back, give the kernel folio's positions and hold
 * them; 0, or -1 with errno if the data could not be written back (then the
 * copy must not run, and end must not be called).  End: take the positions
 * back, forget destination pages the copy overwrote, take the destination's
 * size from the kernel.  End preserves errno.
 */
int cache_copy_begin(struct ofile *in, int in_fd, struct ofile *out, int out_fd);
void cache_copy_end(struct ofile *in, int in_fd, struct ofile *out, int out_fd);

/*
 * stat family: @st_size and @st_blocks as the kernel reported them for the
 * inode @dev/@ino; replace them with the logical values when tracked (or
 * the kernel's newer ones, when the file started passing through since).
 */
void cache_stat_fixup(dev_t dev, ino_t ino, off_t *st_size, blkcnt_t *st_blocks);

#endif
