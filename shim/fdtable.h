/*
 * fdtable.h - which fds are tracked files, and what they share.
 *
 * Owns four things (doc/design.md §2.3):
 *   - the fd slots: fd -> struct ofile, one pointer per fd number, read
 *     without a lock by every wrapper;
 *   - struct ofile, the open file description as folio sees it (access mode
 *     and status flags), shared by every fd dup()ed from one open;
 *   - struct finode, the per-inode state keyed by st_dev + st_ino, shared by
 *     every open of one file, found through an RCU hash, with folio's own
 *     descriptor for the file;
 *   - the owned fds: which fd numbers are folio's own, hidden from the
 *     program (see fdtable_is_owned()).
 *
 * Lock rules: readers of the slots and of the inode hash take no lock (the
 * hash under urcu_bp_read_lock()).  Changes to the hash and to finode open
 * counts happen under fdtable_lock with all signals blocked, so a signal
 * handler may open or close files.  Slots are written with atomic exchanges.
 * ofile and finode memory is freed after an RCU grace period.
 *
 * Calls config, pathmatch, rcu, log, real, and the cache through the hooks
 * it registers (struct fdtable_cache_ops: a finode owns its mapping);
 * called by interpose and cache.
 */
#ifndef FOLIO_FDTABLE_H
#define FOLIO_FDTABLE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "compiler.h"
#include "rcu.h"

struct finode {
	struct cds_hlist_node hnode;	/* in the inode hash */
	dev_t dev;
	ino_t ino;
	unsigned long nopen;		/* ofiles on this inode; fdtable_lock */
	/* On the list of finodes with no open whose data could not be
	 * written yet (fdtable.c); fdtable_lock. */
	bool lingers;
	struct finode *linger_next;
	char *name;			/* the path of its first open, for messages */
	/*
	 * folio's own open of the file, for misses and write-back: O_CLOEXEC,
	 * the widest access mode an app open had (never wider), placed high
	 * in the fd space and hidden from the program (see "owned fds").  -1
	 * if the file could not be reopened.  Changes under fdtable_lock.
	 */
	int kfd;
	int kfd_accmode;
	struct mapping *mapping;	/* the cache's state for the inode; never NULL */
	struct folio_deferred free_later;
};

struct stat;
struct mapping;
struct ofile;

/*
 * The cache's hooks: how fdtable tells the cache of a finode's mapping and
 * of an ofile's life.  The cache registers them with fdtable_set_cache_ops()
 * before any file is tracked (cache_init(), from folio's constructor), so
 * that fdtable calls no function of the cache by name (as the kernel's
 * address_space_operations, or liburcu's cds_lfht_mm_type).  What each does
 * is said at the cache's function (cache.h).
 */
struct fdtable_cache_ops {
	/* Under fdtable_lock. */
	struct mapping *(*mapping_new)(const char *name, int fd, const struct stat *st,
				       int kfd, int kfd_accmode);
	void (*mapping_reopened)(struct mapping *m, int flags, const struct stat *st);
	void (*set_kfd)(struct mapping *m, int kfd, int kfd_accmode);
	bool (*mapping_unwritten)(struct mapping *m);
	void (*mapping_retire)(struct mapping *m);
	/* Not under fdtable_lock: a grace period after the retire. */
	void (*mapping_free)(struct mapping *m);
	/* Not under fdtable_lock. */
	void (*ofile_opened)(struct ofile *of);
	void (*ofile_release)(struct ofile *of);
	void (*std_fd)(struct ofile *of);
};

/* Once, before the first tracked open. */
void fdtable_set_cache_ops(const struct fdtable_cache_ops *ops);

struct ofile {
	struct finode *inode;
	int flags;			/* O_ACCMODE and status flags, as F_GETFL */
	unsigned long refs;		/* fd slots + callers in flight; atomic */
	/*
	 * The file position of read(), write() and lseek(), kept by folio
	 * (the kernel's stays where it was) unless @pos_in_kernel: then the
	 * kernel's is the position (before folio first moves it, and while
	 * the file passes through).  @pos_shared: a child process shares the description, so
	 * each use of @pos reads it from the kernel first and writes it back
	 * after.  Under @pos_lock.
	 */
	pthread_mutex_t pos_lock;
	off_t pos;
	bool pos_in_kernel;
	bool pos_shared;
	uint64_t ra_next;		/* the page a sequential reader wants next */
	uint64_t wb_err_since;		/* the write-back errors it was told of (writeback.h) */
	bool closing_wrote_back;	/* its last close() wrote back already */
	struct folio_deferred free_later;
};

/*
 * fd numbers folio can track.  Larger fds (only possible when fs.nr_open and
 * RLIMIT_NOFILE were raised past it) pass through.  The slots are BSS: pages
 * of it are only touched up to the highest fd the program uses.
 */
#define FD_SLOTS	(1u << 20)

extern struct ofile *fd_slots[FD_SLOTS];

/*
 * The hot check of every wrapper: is @fd tracked?  One bounds check and one
 * load, no lock, safe before the constructor ran (the slots start empty).
 * A non-NULL answer may be stale by the time it is used: take a reference
 * with ofile_get() before touching the ofile.
 */
static inline bool fd_tracked(int fd)
{
	return (unsigned int)fd < FD_SLOTS &&
	       __atomic_load_n(&fd_slots[fd], __ATOMIC_RELAXED) != NULL;
}

/* Reference the ofile of @fd, or NULL if it is not (or no longer) tracked. */
struct ofile *ofile_get(int fd);

/*
 * The ofile of @fd, or NULL, inside urcu_bp_read_lock(): valid until the
 * read-side section ends, with no reference taken (no shared write, so
 * threads using one fd do not bounce a cache line).  For calls that do not
 * block for long; ofile_get() for the others (fsync, fallocate, ...).
 */
struct ofile *ofile_rcu(int fd);

/*
 * Take a reference on @of, found inside urcu_bp_read_lock(), unless its
 * last one is already gone (a reference from zero would revive a closing
 * description): then false.
 */
bool ofile_tryget(struct ofile *of);

/* Drop a reference from ofile_get() or a slot; the last one frees.
 * Preserves errno. */
void ofile_put(struct ofile *of);

/*
 * After a successful open of @path (relative to @dirfd) with @flags gave
 * @fd: decide once whether it is tracked (doc/design.md §3) and if so fill its
 * slot.  Preserves errno.
 */
void fdtable_open(int fd, int dirfd, const char *path, int flags);

/*
 * Could an open of @path become tracked?  (Tracking is on and the path
 * matches FOLIO_FILES, or some inode is tracked already and @path may be it.)
 * Lets fopen() keep libc's own stream for everything else.
 */
bool fdtable_path_may_track(const char *path);

/* Does @path, opened relative to @dirfd, match a FOLIO_FILES pattern? */
bool path_selected(int dirfd, const char *path);

/* @newfd now refers to what @oldfd refers to (dup, dup2, dup3, F_DUPFD). */
void fdtable_dup(int oldfd, int newfd);

/*
 * Empty the slot of @fd and return what it held (the caller owns that
 * reference and must ofile_put() it), or NULL.
 */
struct ofile *fdtable_take(int fd);

/* Give back to @fd the ofile fdtable_take() took, with its reference. */
void fdtable_restore(int fd, struct ofile *of);

/* Forget every tracked fd in [@first, @last] (close_range, closefrom). */
void fdtable_forget_range(unsigned int first, unsigned int last);

/* F_SETFL succeeded on @fd: record the new status flags. */
void fdtable_set_flags(int fd, int flags);

/*
 * Is the inode @dev/@ino open through a tracked fd?  Lockless (RCU), for
 * path-based calls (stat, truncate) that must stay coherent with the cache.
 */
bool fdtable_inode_tracked(dev_t dev, ino_t ino);

/*
 * Owned fds: folio's own descriptors.  The program must not see them: close()
 * of one fails with EBADF as if it were not open, dup2()/dup3() onto one
 * first moves folio's elsewhere, close_range()/closefrom() close around
 * them, a fork child closes them, exec closes them (O_CLOEXEC).
 */
bool fdtable_is_owned(int fd);

/*
 * @fd, opened for folio's own use outside the table (libunwind's pipe, the
 * log file, the copy of stderr), is owned from now on: moved out of the
 * program's way like folio's descriptors of tracked files, hidden from its
 * close() and closefrom(), kept by a fork child.  Returns the number to use
 * from now on (@fd if it could not move).  Async-signal-safe.
 */
int fdtable_adopt(int fd);

/*
 * A descriptor folio made for itself outside the table (the journal's
 * memfd, the guardian's socket): moved high and marked folio's, so the
 * program's close() and dup2() leave it alone and a fork child closes its
 * copy.  Returns the number to use.  Takes no lock (the callers hold
 * locks fdtable_lock nests outside of).  fdtable_close_own() closes one.
 */
int fdtable_own(int fd);
void fdtable_close_own(int fd);

/*
 * @fd is owned and the program dup2()s onto it: move folio's descriptor to
 * another number.  Returns @fd if it must be closed should the dup2 fail
 * (folio no longer uses it), else -1.
 */
int fdtable_move_owned(int fd);

/*
 * close_range(@first, @last, @flags) without closing owned fds: libc's
 * close_range on the pieces between them.  Returns 0 or -1 with errno.
 */
int fdtable_close_range_unowned(unsigned int first, unsigned int last, int flags);

/*
 * Call @fn(@fd, @of, @arg) for every tracked fd, with a reference on @of
 * held across the call.  For the sync points that visit every open file.
 */
void fdtable_for_each(void (*fn)(int fd, struct ofile *of, void *arg), void *arg);

/*
 * The mapping of the tracked inode @dev/@ino, or NULL.  Inside
 * urcu_bp_read_lock(): valid until the read-side section ends.
 */
struct mapping *fdtable_inode_mapping(dev_t dev, ino_t ino);

/* A referenced ofile open on the inode @dev/@ino, or NULL. */
struct ofile *fdtable_inode_ofile_get(dev_t dev, ino_t ino);

/*
 * A referenced ofile open on the inode that @path (relative to @dirfd;
 * @at_flags: AT_SYMLINK_NOFOLLOW, AT_EMPTY_PATH) names, or NULL.  For
 * calls by name on a file that may be tracked.  Preserves errno.
 */
struct ofile *fdtable_path_ofile_get(int dirfd, const char *path, int at_flags);

/* Is any file tracked at all?  A quick exit for path-based wrappers. */
bool fdtable_any_tracked(void);

/*
 * vfork(): between begin (in the parent thread, before the system call) and
 * end (in the parent, after the child exec'd or exited) the calling thread's
 * child shares folio's memory; every fdtable call then treats all fds as
 * untracked and changes nothing.
 */
void fdtable_vfork_begin(void);
void fdtable_vfork_end(void);
bool fdtable_in_vfork_child(void);

/*
 * In a child process only, with no other thread: drop every slot and inode
 * without freeing (the memory is the parent's copy and nothing else refers
 * to it).  Touches only the slots up to the highest fd used.
 */
void fdtable_forget_all(void);

/* fork() handlers: hold the table lock across fork; the child forgets all. */
void fdtable_before_fork(void);
void fdtable_after_fork_parent(void);
void fdtable_after_fork_child(void);

/*
 * "/proc/self/fd/@fd" in @buf: the path that reopens an fd's file, formatted
 * by hand.  It runs in open() and so in signal handlers, on alternate stacks
 * the size of the kernel's minimum plus a little (folio.7, "Signal
 * handlers"), where a printf-style formatter costs kilobytes of stack under
 * a sanitizer's interceptor.
 */
#define FD_PROC_PATH_MAX	sizeof("/proc/self/fd/-2147483648")
static inline const char *fd_proc_path(char buf[FD_PROC_PATH_MAX], int fd)
{
	static const char prefix[] = "/proc/self/fd/";
	char digits[11];
	unsigned int n = fd < 0 ? -(unsigned int)fd : (unsigned int)fd;
	size_t len = 0, i = sizeof(prefix) - 1;

	do
		digits[len++] = '0' + n % 10;
	while ((n /= 10) != 0);
	__builtin_memcpy(buf, prefix, i);
	if (fd < 0)
		buf[i++] = '-';
	while (len)
		buf[i++] = digits[--len];
	buf[i] = '\0';
	return buf;
}

#endif
