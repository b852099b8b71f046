/*
 * fdtable.c - see fdtable.h.
 */
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/vfs.h>

#include "config.h"
#include "debug.h"
#include "fdtable.h"
#include "log.h"
#include "pathmatch.h"
#include "real.h"

/* The cache's hooks (fdtable.h); set once, before any file is tracked. */
static const struct fdtable_cache_ops *cache_ops;

void fdtable_set_cache_ops(const struct fdtable_cache_ops *ops)
{
	cache_ops = ops;
}

struct ofile *fd_slots[FD_SLOTS];
/* One past the highest fd ever given a slot: bounds the range scans. */
static unsigned int fd_high;

/* The slot value of an owned fd: never dereferenced. */
static struct ofile owned_marker;
#define FD_OWNED	(&owned_marker)

static pthread_mutex_t fdtable_lock = PTHREAD_MUTEX_INITIALIZER;

/*
 * Set in a thread between its vfork() and the child's exec or exit.  The
 * child runs on this thread's stack and TLS and shares every page with the
 * parent, so it must not change folio's state: to the child every fd is
 * untracked.
 */
static __thread int in_vfork_child __attribute__((tls_model("initial-exec")));	/* depth */
static sigset_t fork_sigmask;		/* the forking thread's mask, under the lock */

#define INODE_BUCKETS	256
static struct cds_hlist_head inode_hash[INODE_BUCKETS];
static unsigned long ninodes;		/* finodes in the hash; atomic reads */
/*
 * Finodes whose last open closed while their mapping still held data that
 * could not be written back: they stay in the hash, with folio's own fd,
 * so the flusher keeps trying and a new open of the file finds the data.
 * Under fdtable_lock; linked through linger_next.
 */
static struct finode *lingering;

/*
 * File systems whose regular files folio caches: local disk and memory file
 * systems (values from <linux/magic.h>).  Network and FUSE file systems,
 * proc, sysfs, devtmpfs, cgroup and the like pass through.
 */
static const unsigned long cached_fs_types[] = {
	0xEF53,		/* ext2, ext3, ext4 */
	0x58465342,	/* xfs */
	0x9123683E,	/* btrfs */
	0x01021994,	/* tmpfs */
	0x858458F6,	/* ramfs */
	0xF2F52010,	/* f2fs */
	0xCA451A4E,	/* bcachefs */
	0x3153464A,	/* jfs */
	0x52654973,	/* reiserfs */
	0x3434,		/* nilfs2 */
	0x2FC12FC1,	/* zfs */
	0x794C7630,	/* overlayfs */
	0x4D44,		/* vfat, msdos */
	0x2011BAB0,	/* exfat */
};

static void close_own_fd(struct finode *fi);
static void set_own_fd(struct finode *fi, int fd, int accmode);
static void own_fd_lost(int fd);

static void lock_table(sigset_t *old)
{
	sigset_t all;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, old);
	pthread_mutex_lock(&fdtable_lock);
}

static void unlock_table(const sigset_t *old)
{
	pthread_mutex_unlock(&fdtable_lock);
	pthread_sigmask(SIG_SETMASK, old, NULL);
}

static struct cds_hlist_head *inode_bucket(dev_t dev, ino_t ino)
{
	unsigned long h = (unsigned long)ino * 0x9E3779B97F4A7C15ul ^ (unsigned long)dev;

	return &inode_hash[(h >> 32) % INODE_BUCKETS];
}

static struct finode *inode_lookup(dev_t dev, ino_t ino)
{
	struct finode *fi;

	cds_hlist_for_each_entry_rcu_2(fi, inode_bucket(dev, ino), hnode)
		if (fi->dev == dev && fi->ino == ino)
			return fi;
	return NULL;
}

bool fdtable_inode_tracked(dev_t dev, ino_t ino)
{
	bool found;

	if (!fdtable_any_tracked())
		return false;
	urcu_bp_read_lock();
	found = inode_lookup(dev, ino) != NULL;
	urcu_bp_read_unlock();
	return found;
}

bool fdtable_any_tracked(void)
{
	return __atomic_load_n(&ninodes, __ATOMIC_RELAXED) != 0;
}

static void finode_free(struct folio_deferred *d)
{
	struct finode *fi = caa_container_of(d, struct finode, free_later);

	cache_ops->mapping_free(fi->mapping);
	free(fi->name);
	free(fi);
}

static void ofile_free(struct folio_deferred *d)
{
	struct ofile *of = caa_container_of(d, struct ofile, free_later);

	pthread_mutex_destroy(&of->pos_lock);
	free(of);
}

void fdtable_vfork_begin(void)
{
	in_vfork_child++;	/* a count: a vfork child may vfork again */
}

void fdtable_vfork_end(void)
{
	in_vfork_child--;
}

bool fdtable_in_vfork_child(void)
{
	return in_vfork_child > 0;
}

struct ofile *ofile_get(int fd)
{
	struct ofile *of;

	if ((unsigned int)fd >= FD_SLOTS || in_vfork_child)
		return NULL;
	urcu_bp_read_lock();
	of = rcu_dereference(fd_slots[fd]);
	if (of == FD_OWNED)
		of = NULL;
	if (of && !ofile_tryget(of))
		of = NULL;		/* being freed: the fd is closing */
	urcu_bp_read_unlock();
	return of;
}

bool ofile_tryget(struct ofile *of)
{
	unsigned long refs = __atomic_load_n(&of->refs, __ATOMIC_RELAXED);

	do {
		if (refs == 0)
			return false;
	} while (!__atomic_compare_exchange_n(&of->refs, &refs, refs + 1, true, __ATOMIC_ACQUIRE,
					      __ATOMIC_RELAXED));
	return true;
}

struct ofile *ofile_rcu(int fd)
{
	struct ofile *of;

	if ((unsigned int)fd >= FD_SLOTS || in_vfork_child)
		return NULL;
	of = rcu_dereference(fd_slots[fd]);
	return of == FD_OWNED ? NULL : of;
}

/* @fi has no open left: out of the hash, freed by the caller.  fdtable_lock. */
static void finode_retire(struct finode *fi)
{
	assert_mutex_held(&fdtable_lock);
	cache_ops->mapping_retire(fi->mapping);
	close_own_fd(fi);
	cds_hlist_del_rcu(&fi->hnode);
	__atomic_store_n(&ninodes, ninodes - 1, __ATOMIC_RELAXED);
}

/*
 * Retire the lingering finodes whose data has been written since (and drop
 * from the list those opened again), pushing the retired ones on *@gone
 * (through linger_next) for the caller to free.  Under fdtable_lock.
 */
static void retire_written(struct finode **gone)
{
	struct finode **link = &lingering;

	assert_mutex_held(&fdtable_lock);
	while (*link) {
		struct finode *fi = *link;

		if (fi->nopen == 0 && cache_ops->mapping_unwritten(fi->mapping)) {
			link = &fi->linger_next;
			continue;
		}
		*link = fi->linger_next;
		fi->lingers = false;
		if (fi->nopen == 0) {
			finode_retire(fi);
			fi->linger_next = *gone;
			*gone = fi;
		}
	}
}

void ofile_put(struct ofile *of)
{
	struct finode *fi = of->inode, *gone = NULL;
	int saved_errno;
	sigset_t old;

	if (__atomic_sub_fetch(&of->refs, 1, __ATOMIC_ACQ_REL) != 0)
		return;
	saved_errno = errno;
	cache_ops->ofile_release(of);	/* writes back: outside the table lock */
	lock_table(&old);
	if (--fi->nopen == 0 && !fi->lingers) {
		if (cache_ops->mapping_unwritten(fi->mapping)) {
			fi->lingers = true;	/* nothing written is dropped */
			fi->linger_next = lingering;
			lingering = fi;
		} else {
			finode_retire(fi);
			fi->linger_next = NULL;
			gone = fi;
		}
	}
	if (lingering)
		retire_written(&gone);
	unlock_table(&old);
	while (gone) {
		struct finode *next = gone->linger_next;

		folio_defer(&gone->free_later, finode_free);
		gone = next;
	}
	folio_defer(&of->free_later, ofile_free);
	errno = saved_errno;
}

/*
 * Make fd_high cover @fd.  Called before the slot is filled: a fork in
 * between must not give a child a filled slot above the range it clears.
 */
static void cover_fd(int fd)
{
	unsigned int high = __atomic_load_n(&fd_high, __ATOMIC_RELAXED);

	while ((unsigned int)fd >= high &&
	       !__atomic_compare_exchange_n(&fd_high, &high, fd + 1, true,
					    __ATOMIC_SEQ_CST, __ATOMIC_RELAXED))
		;
}

/* Put @of (which may be NULL) into the slot of @fd, taking a reference. */
static void slot_install(int fd, struct ofile *of)
{
	struct ofile *old;

	if (of) {
		__atomic_add_fetch(&of->refs, 1, __ATOMIC_RELAXED);
		cover_fd(fd);
	}
	old = __atomic_exchange_n(&fd_slots[fd], of, __ATOMIC_SEQ_CST);
	if (old == FD_OWNED)
		own_fd_lost(fd);
	else if (old)
		ofile_put(old);
	if (of && fd <= STDERR_FILENO)
		cache_ops->std_fd(of);
}

void fdtable_restore(int fd, struct ofile *of)
{
	slot_install(fd, of);
	ofile_put(of);
}

struct ofile *fdtable_take(int fd)
{
	struct ofile *of;

	if (!fd_tracked(fd) || in_vfork_child || fdtable_is_owned(fd))
		return NULL;
	of = __atomic_exchange_n(&fd_slots[fd], NULL, __ATOMIC_ACQ_REL);
	if (of == FD_OWNED) {	/* raced with an owned fd taking the number */
		__atomic_store_n(&fd_slots[fd], FD_OWNED, __ATOMIC_RELEASE);
		return NULL;
	}
	return of;
}

bool fdtable_is_owned(int fd)
{
	return (unsigned int)fd < FD_SLOTS &&
	       __atomic_load_n(&fd_slots[fd], __ATOMIC_RELAXED) == FD_OWNED;
}

/* Make @fd owned (or not): its slot, and the bound of the range scans. */
static void mark_owned(int fd, bool owned)
{
	if (owned)
		cover_fd(fd);
	__atomic_store_n(&fd_slots[fd], owned ? FD_OWNED : NULL, __ATOMIC_SEQ_CST);
}

/*
 * Move @fd to a number in the top quarter of the fd space (below FD_SLOTS),
 * out of the way of programs that expect low numbers.  Keeps @fd where it is
 * if there is no room.  Returns the fd to use.
 */
static int move_high(int fd)
{
	struct rlimit rl;
	unsigned long hint = FD_SLOTS / 4 * 3;
	int high;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
	    rl.rlim_cur < FD_SLOTS)
		hint = rl.rlim_cur / 4 * 3;
	if ((unsigned long)fd >= hint)
		return fd;
	high = real_fcntl(fd, F_DUPFD_CLOEXEC, (void *)hint);
	if (high < 0 || (unsigned int)high >= FD_SLOTS) {
		if (high >= 0)
			real_close(high);
		return fd;
	}
	real_close(fd);
	return high;
}

/*
 * Owned fds folio did not open itself (libunwind's pipe, the log file, the
 * copy of stderr): a fork child keeps them, since their users keep their
 * numbers.  Under fdtable_lock; read without it in a fork child.
 */
#define ADOPTED_MAX	8
static int adopted[ADOPTED_MAX];
static unsigned int nr_adopted;

int fdtable_adopt(int fd)
{
	sigset_t old;

	if (fd < 0 || in_vfork_child)
		return fd;
	fd = move_high(fd);
	if ((unsigned int)fd >= FD_SLOTS || fd_tracked(fd))
		return fd;
	lock_table(&old);
	if (nr_adopted < ADOPTED_MAX) {
		adopted[nr_adopted++] = fd;
		mark_owned(fd, true);
	}
	unlock_table(&old);
	return fd;
}

int fdtable_own(int fd)
{
	if (fd < 0 || in_vfork_child)
		return fd;
	fd = move_high(fd);
	if ((unsigned int)fd < FD_SLOTS && !fd_tracked(fd))
		mark_owned(fd, true);
	return fd;
}

void fdtable_close_own(int fd)
{
	if ((unsigned int)fd < FD_SLOTS && fdtable_is_owned(fd))
		mark_owned(fd, false);
	real_close(fd);
}

/* The program dup2()s onto adopted @fd.  Under fdtable_lock. */
static void forget_adopted(int fd)
{
	assert_mutex_held(&fdtable_lock);
	for (unsigned int i = 0; i < nr_adopted; i++)
		if (adopted[i] == fd)
			adopted[i] = adopted[--nr_adopted];
}

/* In a fork child, with no other thread. */
static bool is_adopted(int fd)
{
	for (unsigned int i = 0; i < nr_adopted; i++)
		if (adopted[i] == fd)
			return true;
	return false;
}


/*
 * folio's own descriptor for the file open as @app_fd with access @accmode:
 * a new open file description (its own offset, no O_APPEND), through
 * /proc/self/fd so that it names the same inode even if unlinked.  -1 if
 * the file cannot be reopened (permissions changed since, for example).
 * Under fdtable_lock.
 */
static int open_own_fd(int app_fd, int accmode)
{
	char link[FD_PROC_PATH_MAX];
	int fd;

	assert_mutex_held(&fdtable_lock);
	fd = real_open(fd_proc_path(link, app_fd), accmode | O_CLOEXEC | O_NOCTTY, 0);
	if (fd < 0)
		return -1;
	fd = move_high(fd);
	mark_owned(fd, true);
	return fd;
}

/*
 * The kernel gave the number of an owned fd to a new open: something closed
 * folio's descriptor behind its back (a raw close system call).  Forget it;
 * folio reopens the file when it needs it again.
 */
static void own_fd_lost(int fd)
{
	sigset_t old;

	lock_table(&old);
	for (size_t i = 0; i < INODE_BUCKETS; i++) {
		struct finode *fi;

		cds_hlist_for_each_entry_2(fi, &inode_hash[i], hnode)
			if (fi->kfd == fd)
				set_own_fd(fi, -1, 0);
	}
	unlock_table(&old);
	log_warn("folio's own descriptor %d was closed by the program", fd);
}

/*
 * @fi's own descriptor is now @fd (-1: none).  The cache stops using the old
 * one before this returns.  Under fdtable_lock.
 */
static void set_own_fd(struct finode *fi, int fd, int accmode)
{
	assert_mutex_held(&fdtable_lock);
	fi->kfd = fd;
	fi->kfd_accmode = accmode;
	if (fi->mapping)
		cache_ops->set_kfd(fi->mapping, fd, accmode);
}

/* Close folio's own descriptor of @fi.  Under fdtable_lock. */
static void close_own_fd(struct finode *fi)
{
	int fd = fi->kfd;

	assert_mutex_held(&fdtable_lock);
	if (fd < 0)
		return;
	set_own_fd(fi, -1, 0);
	mark_owned(fd, false);
	real_close(fd);
}

/* Does access mode @want grant more than @have? */
static bool wider_access(int want, int have)
{
	return want != have && have != O_RDWR;
}

/*
 * Give @fi an own descriptor at least as wide as @accmode (the access of a
 * new app open @app_fd), never wider than the program's opens.  Under
 * fdtable_lock.
 */
static void widen_own_fd(struct finode *fi, int app_fd, int accmode)
{
	int want = fi->kfd < 0 ? accmode :
		   wider_access(accmode, fi->kfd_accmode) ? O_RDWR : fi->kfd_accmode;
	int fd, old;

	if (fi->kfd >= 0 && want == fi->kfd_accmode)
		return;
	fd = open_own_fd(app_fd, want);
	if (fd < 0) {
		if (fi->kfd < 0)
			log_info("not tracking %s: folio cannot reopen it (%s)", fi->name,
				 strerror(errno));
		return;
	}
	old = fi->kfd;
	set_own_fd(fi, fd, want);	/* the cache moves over before the old one closes */
	if (old >= 0) {
		mark_owned(old, false);
		real_close(old);
	}
}

int fdtable_move_owned(int fd)
{
	struct finode *fi = NULL;
	sigset_t old;
	int moved = -1;

	if (in_vfork_child)
		return -1;	/* the child's table is its own copy */
	lock_table(&old);
	for (size_t i = 0; i < INODE_BUCKETS && !fi; i++) {
		struct finode *each;

		cds_hlist_for_each_entry_2(each, &inode_hash[i], hnode)
			if (each->kfd == fd)
				fi = each;
	}
	if (fi) {
		int to = real_fcntl(fd, F_DUPFD_CLOEXEC, (void *)(long)(fd + 1));

		if (to >= 0 && (unsigned int)to < FD_SLOTS) {
			mark_owned(to, true);
			set_own_fd(fi, to, fi->kfd_accmode);
		} else {
			if (to >= 0)
				real_close(to);
			set_own_fd(fi, -1, 0);	/* dup2 takes the number: folio loses its fd */
		}
		moved = fd;
	}
	forget_adopted(fd);	/* its user loses it: the program takes the number */
	mark_owned(fd, false);
	unlock_table(&old);
	return moved;
}

int fdtable_close_range_unowned(unsigned int first, unsigned int last, int flags)
{
	unsigned int high = __atomic_load_n(&fd_high, __ATOMIC_RELAXED);
	int ret = 0;

	if (in_vfork_child)
		return real_close_range(first, last, flags);
	for (unsigned int fd = first; fd <= last && fd < high; fd++) {
		if (!fdtable_is_owned(fd))
			continue;
		if (fd > first && real_close_range(first, fd - 1, flags) < 0)
			ret = -1;
		first = fd + 1;
		if (first == 0)		/* wrapped past ~0u */
			return ret;
	}
	if (first <= last && real_close_range(first, last, flags) < 0)
		ret = -1;
	return ret;
}

/*
 * A finode for the file open as @fd, with its own descriptor and a mapping,
 * or NULL (with a message saying why) if folio cannot cache it.  Under
 * fdtable_lock.
 */
static struct finode *finode_new(int fd, const struct stat *st, int accmode, const char *path)
{
	struct finode *fi = calloc(1, sizeof(*fi));

	if (!fi || !(fi->name = strdup(path))) {
		free(fi);
		errno = ENOMEM;
		return NULL;
	}
	fi->dev = st->st_dev;
	fi->ino = st->st_ino;
	fi->kfd = -1;
	widen_own_fd(fi, fd, accmode);
	if (fi->kfd < 0) {
		free(fi->name);
		free(fi);
		return NULL;	/* widen_own_fd() said why */
	}
	fi->mapping = cache_ops->mapping_new(fi->name, fd, st, fi->kfd, fi->kfd_accmode);
	if (!fi->mapping) {
		close_own_fd(fi);
		free(fi->name);
		free(fi);
		return NULL;
	}
	return fi;
}

static struct ofile *ofile_new(int fd, const struct stat *st, int flags, const char *path)
{
	struct ofile *of = calloc(1, sizeof(*of));
	struct finode *fi;
	sigset_t old;

	if (!of)
		return NULL;
	of->flags = flags & ~(O_CREAT | O_EXCL | O_NOCTTY | O_TRUNC | O_CLOEXEC);
	pthread_mutex_init(&of->pos_lock, NULL);
	of->pos_in_kernel = true;	/* until folio first moves it (see pos_follow()) */
	lock_table(&old);
	fi = inode_lookup(st->st_dev, st->st_ino);
	if (!fi) {
		fi = finode_new(fd, st, flags & O_ACCMODE, path);
		if (!fi) {
			unlock_table(&old);
			pthread_mutex_destroy(&of->pos_lock);
			free(of);
			return NULL;
		}
		cds_hlist_add_head_rcu(&fi->hnode, inode_bucket(fi->dev, fi->ino));
		__atomic_store_n(&ninodes, ninodes + 1, __ATOMIC_RELAXED);
	} else {
		widen_own_fd(fi, fd, flags & O_ACCMODE);
		cache_ops->mapping_reopened(fi->mapping, flags, st);
	}
	fi->nopen++;
	of->inode = fi;
	unlock_table(&old);
	return of;
}

/*
 * Does the absolute, normalised form of @path (opened relative to @dirfd)
 * match a pattern containing '/'?  Out of line, with the one path buffer, so
 * that opens with only base-name patterns cost no stack: programs open files
 * on small signal stacks.
 */
static __attribute__((noinline)) bool full_path_selected(int dirfd, const char *path)
{
	char full[PATH_MAX];
	size_t len = 0, n = strlen(path);

	if (path[0] != '/') {
		if (dirfd == AT_FDCWD) {
			if (!getcwd(full, sizeof(full)))
				return false;
			len = strlen(full);
		} else {
			char link[FD_PROC_PATH_MAX];
			ssize_t got;

			got = readlink(fd_proc_path(link, dirfd), full, sizeof(full) - 1);
			if (got <= 0)
				return false;
			len = got;
		}
		full[len++] = '/';
	}
	if (len + n >= sizeof(full))
		return false;
	memcpy(full + len, path, n + 1);
	if (path_normalize("/", full, full, sizeof(full)))
		return false;
	for (size_t i = 0; i < folio_config.npatterns; i++) {
		const char *pattern = folio_config.patterns[i];

		if (strchr(pattern, '/') && path_match(pattern, full))
			return true;
	}
	return false;
}

/*
 * Does @path (as opened relative to @dirfd) match a FOLIO_FILES pattern?
 * Preserves errno.
 */
bool path_selected(int dirfd, const char *path)
{
	const char *slash = strrchr(path, '/');
	const char *name = slash ? slash + 1 : path;
	int saved_errno = errno;
	bool selected = false;

	/* A name ending in '/' is a directory, never a file folio tracks. */
	if (*name == '\0')
		return false;
	for (size_t i = 0; i < folio_config.npatterns && !selected; i++) {
		const char *pattern = folio_config.patterns[i];

		selected = !strchr(pattern, '/') && path_match(pattern, name);
	}
	if (!selected && folio_config.match_full_path)
		selected = full_path_selected(dirfd, path);
	errno = saved_errno;
	return selected;
}

static bool fs_type_cached(unsigned long type)
{
	for (size_t i = 0; i < ARRAY_SIZE(cached_fs_types); i++)
		if (cached_fs_types[i] == type)
			return true;
	return false;
}

bool fdtable_path_may_track(const char *path)
{
	return folio_config.enabled && (path_selected(AT_FDCWD, path) || fdtable_any_tracked());
}

void fdtable_open(int fd, int dirfd, const char *path, int flags)
{
	int saved_errno = errno;
	struct statfs sfs;
	struct stat st;
	struct ofile *of;
	bool selected;

	if (fd < 0 || in_vfork_child)
		return;
	if ((unsigned int)fd >= FD_SLOTS) {
		log_info("not tracking fd %d (%s): above the %u fds folio tracks", fd, path, FD_SLOTS);
		return;
	}
	if (fd_tracked(fd))		/* left by a close folio did not see */
		slot_install(fd, NULL);
	if (!folio_config.enabled)
		return;
	selected = path_selected(dirfd, path);
	if (!selected && !fdtable_any_tracked())
		goto not_selected;
	if (flags & (O_PATH | O_DIRECT)) {
		if (selected)
			log_info("not tracking %s: opened with %s", path,
				 flags & O_PATH ? "O_PATH" : "O_DIRECT");
		goto out;
	}
	if (real_fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		if (selected)
			log_info("not tracking %s: not a regular file", path);
		goto out;
	}
	if (!selected && !fdtable_inode_tracked(st.st_dev, st.st_ino))
		goto not_selected;
	if (fstatfs(fd, &sfs) || !fs_type_cached(sfs.f_type)) {
		log_info("not tracking %s: file system type 0x%lx is not cached", path,
			 (unsigned long)sfs.f_type);
		goto out;
	}
	of = ofile_new(fd, &st, flags, path);
	if (!of) {
		if (errno == ENOMEM)
			log_warn("not tracking %s: out of memory", path);
		goto out;
	}
	cache_ops->ofile_opened(of);		/* may start a thread: not under the table lock */
	slot_install(fd, of);
	log_info("tracking %s as fd %d%s", path, fd, selected ? "" : " (inode already tracked)");
	goto out;
not_selected:
	log_info("not tracking %s: no pattern of FOLIO_FILES matches it", path);
out:
	errno = saved_errno;
}

void fdtable_dup(int oldfd, int newfd)
{
	struct ofile *of;

	if ((unsigned int)newfd >= FD_SLOTS || (!fd_tracked(oldfd) && !fd_tracked(newfd)) ||
	    in_vfork_child)
		return;
	of = ofile_get(oldfd);
	if (!of && !fd_tracked(newfd))
		return;
	slot_install(newfd, of);
	if (of)
		ofile_put(of);
}

void fdtable_forget_range(unsigned int first, unsigned int last)
{
	unsigned int high = __atomic_load_n(&fd_high, __ATOMIC_RELAXED);

	if (in_vfork_child)
		return;
	for (unsigned int fd = first; fd <= last && fd < high; fd++) {
		struct ofile *of = fdtable_take(fd);

		if (of)
			ofile_put(of);
	}
}

void fdtable_set_flags(int fd, int flags)
{
	struct ofile *of = ofile_get(fd);
	const int settable = O_APPEND | O_ASYNC | O_DIRECT | O_NOATIME | O_NONBLOCK;

	if (!of)
		return;
	__atomic_store_n(&of->flags, (of->flags & ~settable) | (flags & settable),
			 __ATOMIC_RELAXED);
	ofile_put(of);
}

void fdtable_for_each(void (*fn)(int fd, struct ofile *of, void *arg), void *arg)
{
	unsigned int high = __atomic_load_n(&fd_high, __ATOMIC_RELAXED);

	for (unsigned int fd = 0; fd < high; fd++) {
		struct ofile *of;

		if (!fd_tracked(fd) || !(of = ofile_get(fd)))
			continue;
		fn(fd, of, arg);
		ofile_put(of);
	}
}

struct mapping *fdtable_inode_mapping(dev_t dev, ino_t ino)
{
	struct finode *fi = fdtable_any_tracked() ? inode_lookup(dev, ino) : NULL;

	return fi ? fi->mapping : NULL;
}

struct ofile *fdtable_inode_ofile_get(dev_t dev, ino_t ino)
{
	unsigned int high = __atomic_load_n(&fd_high, __ATOMIC_RELAXED);

	for (unsigned int fd = 0; fd < high; fd++) {
		struct ofile *of;

		if (!fd_tracked(fd) || !(of = ofile_get(fd)))
			continue;
		if (of->inode->dev == dev && of->inode->ino == ino)
			return of;
		ofile_put(of);
	}
	return NULL;
}

struct ofile *fdtable_path_ofile_get(int dirfd, const char *path, int at_flags)
{
	int saved_errno = errno;
	struct ofile *of = NULL;
	struct stat st;

	if (fdtable_any_tracked() &&
	    real_fstatat(dirfd, path, &st, at_flags & (AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH)) == 0)
		of = fdtable_inode_ofile_get(st.st_dev, st.st_ino);
	errno = saved_errno;
	return of;
}

void fdtable_before_fork(void)
{
	lock_table(&fork_sigmask);
}

void fdtable_after_fork_parent(void)
{
	unlock_table(&fork_sigmask);
}

/*
 * The child starts with every inherited fd in pass-through (doc/design.md §4):
 * its copies of the parent's ofiles and finodes are dropped, not freed (they
 * were copied by fork and nothing else refers to them).
 */
void fdtable_after_fork_child(void)
{
	sigset_t old = fork_sigmask;

	fdtable_forget_all();
	pthread_mutex_init(&fdtable_lock, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
}

void fdtable_forget_all(void)
{
	/* folio's own fds were inherited too: the child has no use for them,
	 * but for the adopted ones, whose users live on in the child. */
	for (unsigned int fd = 0; fd < fd_high; fd++)
		if (fd_slots[fd] == FD_OWNED && !is_adopted(fd))
			real_close(fd);
	memset(fd_slots, 0, sizeof(fd_slots[0]) * fd_high);
	fd_high = 0;
	for (unsigned int i = 0; i < nr_adopted; i++)
		mark_owned(adopted[i], true);
	for (size_t i = 0; i < INODE_BUCKETS; i++)
		CDS_INIT_HLIST_HEAD(&inode_hash[i]);
	ninodes = 0;
	lingering = NULL;
}
