/*
 * interpose_meta.c - calls on names or metadata that must agree with the
 * cache: the stat family reports the logical size of tracked files,
 * truncate(2) of a tracked file goes through the cache, a mode or owner
 * change waits for the file's data to reach the kernel first (a write-back
 * after chmod u+s would make the kernel drop the bit), rename and unlink
 * pass through (folio keys files by inode, so a tracked file renamed or
 * unlinked while open keeps working; the wrappers are the place where names
 * in messages and statistics follow).
 */
#include <sys/sysmacros.h>

#include "interpose.h"

/* stat results: the logical size, when the inode is tracked. */
static inline int stat_done(int ret, struct stat *st)
{
	if (ret == 0 && unlikely(fdtable_any_tracked()))
		cache_stat_fixup(st->st_dev, st->st_ino, &st->st_size, &st->st_blocks);
	return ret;
}

static inline int stat64_done(int ret, struct stat64 *st)
{
	if (ret == 0 && unlikely(fdtable_any_tracked()))
		cache_stat_fixup(st->st_dev, st->st_ino, &st->st_size, &st->st_blocks);
	return ret;
}

FOLIO_EXPORT int stat(const char *path, struct stat *st)
{
	return stat_done(real_stat(path, st), st);
}

FOLIO_EXPORT int stat64(const char *path, struct stat64 *st)
{
	return stat64_done(real_stat64(path, st), st);
}

FOLIO_EXPORT int lstat(const char *path, struct stat *st)
{
	return stat_done(real_lstat(path, st), st);
}

FOLIO_EXPORT int lstat64(const char *path, struct stat64 *st)
{
	return stat64_done(real_lstat64(path, st), st);
}

FOLIO_EXPORT int fstat(int fd, struct stat *st)
{
	return stat_done(real_fstat(fd, st), st);
}

FOLIO_EXPORT int fstat64(int fd, struct stat64 *st)
{
	return stat64_done(real_fstat64(fd, st), st);
}

FOLIO_EXPORT int fstatat(int dirfd, const char *path, struct stat *st, int flags)
{
	return stat_done(real_fstatat(dirfd, path, st, flags), st);
}

FOLIO_EXPORT int fstatat64(int dirfd, const char *path, struct stat64 *st, int flags)
{
	return stat64_done(real_fstatat64(dirfd, path, st, flags), st);
}

FOLIO_EXPORT int __xstat(int ver, const char *path, struct stat *st)
{
	return stat_done(real___xstat(ver, path, st), st);
}

FOLIO_EXPORT int __xstat64(int ver, const char *path, struct stat64 *st)
{
	return stat64_done(real___xstat64(ver, path, st), st);
}

FOLIO_EXPORT int __lxstat(int ver, const char *path, struct stat *st)
{
	return stat_done(real___lxstat(ver, path, st), st);
}

FOLIO_EXPORT int __lxstat64(int ver, const char *path, struct stat64 *st)
{
	return stat64_done(real___lxstat64(ver, path, st), st);
}

FOLIO_EXPORT int __fxstat(int ver, int fd, struct stat *st)
{
	return stat_done(real___fxstat(ver, fd, st), st);
}

FOLIO_EXPORT int __fxstat64(int ver, int fd, struct stat64 *st)
{
	return stat64_done(real___fxstat64(ver, fd, st), st);
}

FOLIO_EXPORT int __fxstatat(int ver, int dirfd, const char *path, struct stat *st, int flags)
{
	return stat_done(real___fxstatat(ver, dirfd, path, st, flags), st);
}

FOLIO_EXPORT int __fxstatat64(int ver, int dirfd, const char *path, struct stat64 *st,
			      int flags)
{
	return stat64_done(real___fxstatat64(ver, dirfd, path, st, flags), st);
}

FOLIO_EXPORT int statx(int dirfd, const char *path, int flags, unsigned int mask,
		       struct statx *stx)
{
	int ret = real_statx(dirfd, path, flags, mask, stx);
	off_t size;
	blkcnt_t blocks;

	if (ret != 0 || likely(!fdtable_any_tracked()))
		return ret;
	size = stx->stx_size;
	blocks = stx->stx_blocks;
	cache_stat_fixup(makedev(stx->stx_dev_major, stx->stx_dev_minor), stx->stx_ino,
			 &size, &blocks);
	stx->stx_size = size;
	stx->stx_blocks = blocks;
	return ret;
}

/* Is @path a tracked file?  Preserves errno. */
static bool path_tracked(const char *path)
{
	int saved_errno = errno;
	struct stat st;
	bool tracked;

	tracked = real_stat(path, &st) == 0 && fdtable_inode_tracked(st.st_dev, st.st_ino);
	errno = saved_errno;
	return tracked;
}

FOLIO_EXPORT int truncate(const char *path, off_t length)
{
	if (likely(!fdtable_any_tracked()) || !path_tracked(path))
		return real_truncate(path, length);
	return cache_truncate(path, length);
}
FOLIO_ALIAS64(truncate, truncate64);

FOLIO_EXPORT int rename(const char *oldpath, const char *newpath)
{
	return real_rename(oldpath, newpath);
}

FOLIO_EXPORT int renameat(int olddirfd, const char *oldpath, int newdirfd, const char *newpath)
{
	return real_renameat(olddirfd, oldpath, newdirfd, newpath);
}

FOLIO_EXPORT int renameat2(int olddirfd, const char *oldpath, int newdirfd, const char *newpath,
			   unsigned int flags)
{
	return real_renameat2(olddirfd, oldpath, newdirfd, newpath, flags);
}

FOLIO_EXPORT int unlink(const char *path)
{
	return real_unlink(path);
}

FOLIO_EXPORT int unlinkat(int dirfd, const char *path, int flags)
{
	return real_unlinkat(dirfd, path, flags);
}

/*
 * chmod and chown of a tracked inode: its data goes to the kernel before, as
 * the program wrote it before; afterwards the cache learns whether writes
 * must now drop set-id bits.  Returns the referenced ofile or NULL.
 */
static struct ofile *attr_begin(int fd, int dirfd, const char *path, int flags)
{
	int saved_errno = errno;
	struct ofile *of;

	if (likely(!fdtable_any_tracked()))
		return NULL;
	of = path ? fdtable_path_ofile_get(dirfd, path, flags) :
		    fdtable_path_ofile_get(fd, "", AT_EMPTY_PATH);
	if (of)
		cache_attr_begin(of);
	errno = saved_errno;
	return of;
}

static int attr_end(struct ofile *of, int ret)
{
	if (of) {
		cache_attr_end(of);
		ofile_put(of);
	}
	return ret;
}

FOLIO_EXPORT int chmod(const char *path, mode_t mode)
{
	struct ofile *of = attr_begin(-1, AT_FDCWD, path, 0);

	return attr_end(of, real_chmod(path, mode));
}

FOLIO_EXPORT int fchmod(int fd, mode_t mode)
{
	struct ofile *of = attr_begin(fd, -1, NULL, 0);

	return attr_end(of, real_fchmod(fd, mode));
}

FOLIO_EXPORT int fchmodat(int dirfd, const char *path, mode_t mode, int flags)
{
	struct ofile *of = attr_begin(-1, dirfd, path, flags);

	return attr_end(of, real_fchmodat(dirfd, path, mode, flags));
}

FOLIO_EXPORT int chown(const char *path, uid_t owner, gid_t group)
{
	struct ofile *of = attr_begin(-1, AT_FDCWD, path, 0);

	return attr_end(of, real_chown(path, owner, group));
}

FOLIO_EXPORT int lchown(const char *path, uid_t owner, gid_t group)
{
	struct ofile *of = attr_begin(-1, AT_FDCWD, path, AT_SYMLINK_NOFOLLOW);

	return attr_end(of, real_lchown(path, owner, group));
}

FOLIO_EXPORT int fchown(int fd, uid_t owner, gid_t group)
{
	struct ofile *of = attr_begin(fd, -1, NULL, 0);

	return attr_end(of, real_fchown(fd, owner, group));
}

FOLIO_EXPORT int fchownat(int dirfd, const char *path, uid_t owner, gid_t group, int flags)
{
	struct ofile *of = attr_begin(-1, dirfd, path, flags);

	return attr_end(of, real_fchownat(dirfd, path, owner, group, flags));
}
