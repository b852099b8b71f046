/*
 * real.h - the libc functions folio overrides, as libc implements them.
 *
 * Owns the table of real entry points, resolved with dlsym(RTLD_NEXT, ...)
 * (dlvsym for the versions folio also exports under an old version).  This
 * is folio's "kernel" side: every layer may call real_*(); no layer may call
 * an interposed name directly, because inside libfolio.so that name binds to
 * folio's own wrapper.  The symbols tests in tests/test_tools.c check
 * the library for such calls.
 *
 * Resolution is lazy and lock-free: the first real_*() call (or the
 * constructor, whichever comes first) resolves the whole table.  dlsym() may
 * allocate, and an allocator preloaded beside folio may call mmap() or open()
 * from inside that allocation; such a nested call finds its entry still empty
 * and runs the fallback given in the table: the raw system call where there
 * is one, otherwise a failure with ENOSYS.  No lock is taken, so a signal
 * handler may also be the first caller.
 */
#ifndef FOLIO_REAL_H
#define FOLIO_REAL_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

#include "compiler.h"

/* Declared by no header of glibc 2.33+, still exported for old binaries. */
int __xstat(int ver, const char *path, struct stat *st);
int __xstat64(int ver, const char *path, struct stat64 *st);
int __lxstat(int ver, const char *path, struct stat *st);
int __lxstat64(int ver, const char *path, struct stat64 *st);
int __fxstat(int ver, int fd, struct stat *st);
int __fxstat64(int ver, int fd, struct stat64 *st);
int __fxstatat(int ver, int dirfd, const char *path, struct stat *st, int flags);
int __fxstatat64(int ver, int dirfd, const char *path, struct stat64 *st, int flags);
int __open_2(const char *path, int flags);
int __open64_2(const char *path, int flags);
int __openat_2(int dirfd, const char *path, int flags);
int __openat64_2(int dirfd, const char *path, int flags);
ssize_t __read_chk(int fd, void *buf, size_t n, size_t buflen);
ssize_t __pread_chk(int fd, void *buf, size_t n, off_t off, size_t buflen);
ssize_t __pread64_chk(int fd, void *buf, size_t n, off64_t off, size_t buflen);
void __chk_fail(void) __attribute__((noreturn));
int fcntl64(int fd, int cmd, ...);

typedef int (*posix_spawn_fn)(pid_t *, const char *,
			      const posix_spawn_file_actions_t *,
			      const posix_spawnattr_t *, char *const[],
			      char *const[]);

#define ENOSYS_FAIL(ret)	(errno = ENOSYS, (ret))

/*
 * X(return type, name, pointer parameter types, named parameters, arguments,
 *   fallback expression), with the dlsym name.  Variadic functions keep their
 * variadic pointer type; folio always passes the optional argument.
 */
#define FOLIO_REAL_FUNCS(X) \
X(int, open, (const char *, int, ...), (const char *p, int f, mode_t m), (p, f, m), \
  syscall(SYS_openat, AT_FDCWD, p, f, m)) \
X(int, openat, (int, const char *, int, ...), (int d, const char *p, int f, mode_t m), (d, p, f, m), \
  syscall(SYS_openat, d, p, f, m)) \
X(int, creat, (const char *, mode_t), (const char *p, mode_t m), (p, m), \
  syscall(SYS_openat, AT_FDCWD, p, O_CREAT | O_WRONLY | O_TRUNC, m)) \
X(int, __open_2, (const char *, int), (const char *p, int f), (p, f), \
  syscall(SYS_openat, AT_FDCWD, p, f)) \
X(int, __open64_2, (const char *, int), (const char *p, int f), (p, f), \
  syscall(SYS_openat, AT_FDCWD, p, f)) \
X(int, __openat_2, (int, const char *, int), (int d, const char *p, int f), (d, p, f), \
  syscall(SYS_openat, d, p, f)) \
X(int, __openat64_2, (int, const char *, int), (int d, const char *p, int f), (d, p, f), \
  syscall(SYS_openat, d, p, f)) \
X(int, mkstemp, (char *), (char *t), (t), ENOSYS_FAIL(-1)) \
X(int, mkostemp, (char *, int), (char *t, int f), (t, f), ENOSYS_FAIL(-1)) \
X(int, mkstemps, (char *, int), (char *t, int s), (t, s), ENOSYS_FAIL(-1)) \
X(int, mkostemps, (char *, int, int), (char *t, int s, int f), (t, s, f), ENOSYS_FAIL(-1)) \
X(FILE *, fopen, (const char *, const char *), (const char *p, const char *m), (p, m), \
  ENOSYS_FAIL(NULL)) \
X(FILE *, fopen64, (const char *, const char *), (const char *p, const char *m), (p, m), \
  ENOSYS_FAIL(NULL)) \
X(FILE *, freopen, (const char *, const char *, FILE *), (const char *p, const char *m, FILE *s), \
  (p, m, s), ENOSYS_FAIL(NULL)) \
X(FILE *, freopen64, (const char *, const char *, FILE *), (const char *p, const char *m, FILE *s), \
  (p, m, s), ENOSYS_FAIL(NULL)) \
X(FILE *, fdopen, (int, const char *), (int fd, const char *m), (fd, m), ENOSYS_FAIL(NULL)) \
X(int, fclose, (FILE *), (FILE *s), (s), ENOSYS_FAIL(EOF)) \
X(ssize_t, read, (int, void *, size_t), (int fd, void *b, size_t n), (fd, b, n), \
  syscall(SYS_read, fd, b, n)) \
X(ssize_t, write, (int, const void *, size_t), (int fd, const void *b, size_t n), (fd, b, n), \
  syscall(SYS_write, fd, b, n)) \
X(ssize_t, pread, (int, void *, size_t, off_t), (int fd, void *b, size_t n, off_t o), \
  (fd, b, n, o), syscall(SYS_pread64, fd, b, n, o)) \
X(ssize_t, pread64, (int, void *, size_t, off64_t), (int fd, void *b, size_t n, off64_t o), \
  (fd, b, n, o), syscall(SYS_pread64, fd, b, n, o)) \
X(ssize_t, pwrite, (int, const void *, size_t, off_t), (int fd, const void *b, size_t n, off_t o), \
  (fd, b, n, o), syscall(SYS_pwrite64, fd, b, n, o)) \
X(ssize_t, pwrite64, (int, const void *, size_t, off64_t), \
  (int fd, const void *b, size_t n, off64_t o), (fd, b, n, o), syscall(SYS_pwrite64, fd, b, n, o)) \
X(ssize_t, __read_chk, (int, void *, size_t, size_t), (int fd, void *b, size_t n, size_t l), \
  (fd, b, n, l), syscall(SYS_read, fd, b, n)) \
X(ssize_t, __pread_chk, (int, void *, size_t, off_t, size_t), \
  (int fd, void *b, size_t n, off_t o, size_t l), (fd, b, n, o, l), syscall(SYS_pread64, fd, b, n, o)) \
X(ssize_t, readv, (int, const struct iovec *, int), (int fd, const struct iovec *v, int c), \
  (fd, v, c), syscall(SYS_readv, fd, v, c)) \
X(ssize_t, writev, (int, const struct iovec *, int), (int fd, const struct iovec *v, int c), \
  (fd, v, c), syscall(SYS_writev, fd, v, c)) \
X(ssize_t, preadv, (int, const struct iovec *, int, off_t), \
  (int fd, const struct iovec *v, int c, off_t o), (fd, v, c, o), ENOSYS_FAIL(-1)) \
X(ssize_t, preadv64, (int, const struct iovec *, int, off64_t), \
  (int fd, const struct iovec *v, int c, off64_t o), (fd, v, c, o), ENOSYS_FAIL(-1)) \
X(ssize_t, pwritev, (int, const struct iovec *, int, off_t), \
  (int fd, const struct iovec *v, int c, off_t o), (fd, v, c, o), ENOSYS_FAIL(-1)) \
X(ssize_t, pwritev64, (int, const struct iovec *, int, off64_t), \
  (int fd, const struct iovec *v, int c, off64_t o), (fd, v, c, o), ENOSYS_FAIL(-1)) \
X(ssize_t, preadv2, (int, const struct iovec *, int, off_t, int), \
  (int fd, const struct iovec *v, int c, off_t o, int f), (fd, v, c, o, f), ENOSYS_FAIL(-1)) \
X(ssize_t, preadv64v2, (int, const struct iovec *, int, off64_t, int), \
  (int fd, const struct iovec *v, int c, off64_t o, int f), (fd, v, c, o, f), ENOSYS_FAIL(-1)) \
X(ssize_t, pwritev2, (int, const struct iovec *, int, off_t, int), \
  (int fd, const struct iovec *v, int c, off_t o, int f), (fd, v, c, o, f), ENOSYS_FAIL(-1)) \
X(ssize_t, pwritev64v2, (int, const struct iovec *, int, off64_t, int), \
  (int fd, const struct iovec *v, int c, off64_t o, int f), (fd, v, c, o, f), ENOSYS_FAIL(-1)) \
X(off_t, lseek, (int, off_t, int), (int fd, off_t o, int w), (fd, o, w), syscall(SYS_lseek, fd, o, w)) \
X(off64_t, lseek64, (int, off64_t, int), (int fd, off64_t o, int w), (fd, o, w), \
  syscall(SYS_lseek, fd, o, w)) \
X(int, ftruncate, (int, off_t), (int fd, off_t l), (fd, l), syscall(SYS_ftruncate, fd, l)) \
X(int, ftruncate64, (int, off64_t), (int fd, off64_t l), (fd, l), syscall(SYS_ftruncate, fd, l)) \
X(int, truncate, (const char *, off_t), (const char *p, off_t l), (p, l), syscall(SYS_truncate, p, l)) \
X(int, truncate64, (const char *, off64_t), (const char *p, off64_t l), (p, l), \
  syscall(SYS_truncate, p, l)) \
X(int, fallocate, (int, int, off_t, off_t), (int fd, int m, off_t o, off_t l), (fd, m, o, l), \
  syscall(SYS_fallocate, fd, m, o, l)) \
X(int, fallocate64, (int, int, off64_t, off64_t), (int fd, int m, off64_t o, off64_t l), \
  (fd, m, o, l), syscall(SYS_fallocate, fd, m, o, l)) \
X(int, posix_fallocate, (int, off_t, off_t), (int fd, off_t o, off_t l), (fd, o, l), ENOSYS) \
X(int, posix_fallocate64, (int, off64_t, off64_t), (int fd, off64_t o, off64_t l), (fd, o, l), ENOSYS) \
X(int, posix_fadvise, (int, off_t, off_t, int), (int fd, off_t o, off_t l, int a), (fd, o, l, a), ENOSYS) \
X(int, posix_fadvise64, (int, off64_t, off64_t, int), (int fd, off64_t o, off64_t l, int a), \
  (fd, o, l, a), ENOSYS) \
X(ssize_t, readahead, (int, off64_t, size_t), (int fd, off64_t o, size_t n), (fd, o, n), \
  syscall(SYS_readahead, fd, o, n)) \
X(int, fsync, (int), (int fd), (fd), syscall(SYS_fsync, fd)) \
X(int, fdatasync, (int), (int fd), (fd), syscall(SYS_fdatasync, fd)) \
X(int, sync_file_range, (int, off64_t, off64_t, unsigned int), \
  (int fd, off64_t o, off64_t n, unsigned int f), (fd, o, n, f), syscall(SYS_sync_file_range, fd, o, n, f)) \
X(void, sync, (void), (void), (), syscall(SYS_sync)) \
X(int, syncfs, (int), (int fd), (fd), syscall(SYS_syncfs, fd)) \
X(int, msync, (void *, size_t, int), (void *a, size_t n, int f), (a, n, f), syscall(SYS_msync, a, n, f)) \
X(int, stat, (const char *, struct stat *), (const char *p, struct stat *s), (p, s), \
  syscall(SYS_newfstatat, AT_FDCWD, p, s, 0)) \
X(int, stat64, (const char *, struct stat64 *), (const char *p, struct stat64 *s), (p, s), \
  syscall(SYS_newfstatat, AT_FDCWD, p, s, 0)) \
X(int, lstat, (const char *, struct stat *), (const char *p, struct stat *s), (p, s), \
  syscall(SYS_newfstatat, AT_FDCWD, p, s, AT_SYMLINK_NOFOLLOW)) \
X(int, lstat64, (const char *, struct stat64 *), (const char *p, struct stat64 *s), (p, s), \
  syscall(SYS_newfstatat, AT_FDCWD, p, s, AT_SYMLINK_NOFOLLOW)) \
X(int, fstat, (int, struct stat *), (int fd, struct stat *s), (fd, s), syscall(SYS_fstat, fd, s)) \
X(int, fstat64, (int, struct stat64 *), (int fd, struct stat64 *s), (fd, s), syscall(SYS_fstat, fd, s)) \
X(int, fstatat, (int, const char *, struct stat *, int), \
  (int d, const char *p, struct stat *s, int f), (d, p, s, f), syscall(SYS_newfstatat, d, p, s, f)) \
X(int, fstatat64, (int, const char *, struct stat64 *, int), \
  (int d, const char *p, struct stat64 *s, int f), (d, p, s, f), syscall(SYS_newfstatat, d, p, s, f)) \
X(int, statx, (int, const char *, int, unsigned int, struct statx *), \
  (int d, const char *p, int f, unsigned int m, struct statx *s), (d, p, f, m, s), \
  syscall(SYS_statx, d, p, f, m, s)) \
X(int, __xstat, (int, const char *, struct stat *), (int v, const char *p, struct stat *s), \
  (v, p, s), syscall(SYS_newfstatat, AT_FDCWD, p, s, 0)) \
X(int, __xstat64, (int, const char *, struct stat64 *), (int v, const char *p, struct stat64 *s), \
  (v, p, s), syscall(SYS_newfstatat, AT_FDCWD, p, s, 0)) \
X(int, __lxstat, (int, const char *, struct stat *), (int v, const char *p, struct stat *s), \
  (v, p, s), syscall(SYS_newfstatat, AT_FDCWD, p, s, AT_SYMLINK_NOFOLLOW)) \
X(int, __lxstat64, (int, const char *, struct stat64 *), (int v, const char *p, struct stat64 *s), \
  (v, p, s), syscall(SYS_newfstatat, AT_FDCWD, p, s, AT_SYMLINK_NOFOLLOW)) \
X(int, __fxstat, (int, int, struct stat *), (int v, int fd, struct stat *s), (v, fd, s), \
  syscall(SYS_fstat, fd, s)) \
X(int, __fxstat64, (int, int, struct stat64 *), (int v, int fd, struct stat64 *s), (v, fd, s), \
  syscall(SYS_fstat, fd, s)) \
X(int, __fxstatat, (int, int, const char *, struct stat *, int), \
  (int v, int d, const char *p, struct stat *s, int f), (v, d, p, s, f), \
  syscall(SYS_newfstatat, d, p, s, f)) \
X(int, __fxstatat64, (int, int, const char *, struct stat64 *, int), \
  (int v, int d, const char *p, struct stat64 *s, int f), (v, d, p, s, f), \
  syscall(SYS_newfstatat, d, p, s, f)) \
X(int, close, (int), (int fd), (fd), syscall(SYS_close, fd)) \
X(int, close_range, (unsigned int, unsigned int, int), (unsigned int a, unsigned int b, int f), \
  (a, b, f), syscall(SYS_close_range, a, b, f)) \
X(void, closefrom, (int), (int fd), (fd), syscall(SYS_close_range, fd, ~0U, 0)) \
X(int, dup, (int), (int fd), (fd), syscall(SYS_dup, fd)) \
X(int, dup2, (int, int), (int a, int b), (a, b), syscall(SYS_dup2, a, b)) \
X(int, dup3, (int, int, int), (int a, int b, int f), (a, b, f), syscall(SYS_dup3, a, b, f)) \
X(int, pipe2, (int *, int), (int *p, int f), (p, f), syscall(SYS_pipe2, p, f)) \
X(int, fcntl, (int, int, ...), (int fd, int c, void *a), (fd, c, a), syscall(SYS_fcntl, fd, c, a)) \
X(void *, mmap, (void *, size_t, int, int, int, off_t), \
  (void *a, size_t n, int p, int f, int fd, off_t o), (a, n, p, f, fd, o), \
  (void *)syscall(SYS_mmap, a, n, p, f, fd, o)) \
X(void *, mmap64, (void *, size_t, int, int, int, off64_t), \
  (void *a, size_t n, int p, int f, int fd, off64_t o), (a, n, p, f, fd, o), \
  (void *)syscall(SYS_mmap, a, n, p, f, fd, o)) \
X(int, munmap, (void *, size_t), (void *a, size_t n), (a, n), syscall(SYS_munmap, a, n)) \
X(void *, mremap, (void *, size_t, size_t, int, ...), \
  (void *a, size_t o, size_t n, int f, void *na), (a, o, n, f, na), \
  (void *)syscall(SYS_mremap, a, o, n, f, na)) \
X(ssize_t, sendfile, (int, int, off_t *, size_t), (int o, int i, off_t *p, size_t n), (o, i, p, n), \
  syscall(SYS_sendfile, o, i, p, n)) \
X(ssize_t, copy_file_range, (int, off64_t *, int, off64_t *, size_t, unsigned int), \
  (int i, off64_t *pi, int o, off64_t *po, size_t n, unsigned int f), (i, pi, o, po, n, f), \
  syscall(SYS_copy_file_range, i, pi, o, po, n, f)) \
X(ssize_t, splice, (int, off64_t *, int, off64_t *, size_t, unsigned int), \
  (int i, off64_t *pi, int o, off64_t *po, size_t n, unsigned int f), (i, pi, o, po, n, f), \
  syscall(SYS_splice, i, pi, o, po, n, f)) \
X(pid_t, fork, (void), (void), (), ENOSYS_FAIL(-1)) \
X(pid_t, _Fork, (void), (void), (), ENOSYS_FAIL(-1)) \
X(pid_t, vfork, (void), (void), (), ENOSYS_FAIL(-1)) \
X(int, posix_spawn, (pid_t *, const char *, const posix_spawn_file_actions_t *, \
		      const posix_spawnattr_t *, char *const[], char *const[]), \
  (pid_t *pid, const char *p, const posix_spawn_file_actions_t *fa, const posix_spawnattr_t *at, \
   char *const av[], char *const ev[]), (pid, p, fa, at, av, ev), ENOSYS) \
X(int, posix_spawnp, (pid_t *, const char *, const posix_spawn_file_actions_t *, \
		       const posix_spawnattr_t *, char *const[], char *const[]), \
  (pid_t *pid, const char *p, const posix_spawn_file_actions_t *fa, const posix_spawnattr_t *at, \
   char *const av[], char *const ev[]), (pid, p, fa, at, av, ev), ENOSYS) \
X(int, system, (const char *), (const char *c), (c), ENOSYS_FAIL(-1)) \
X(FILE *, popen, (const char *, const char *), (const char *c, const char *m), (c, m), \
  ENOSYS_FAIL(NULL)) \
X(int, execve, (const char *, char *const[], char *const[]), \
  (const char *p, char *const av[], char *const ev[]), (p, av, ev), syscall(SYS_execve, p, av, ev)) \
X(int, execv, (const char *, char *const[]), (const char *p, char *const av[]), (p, av), \
  ENOSYS_FAIL(-1)) \
X(int, execvp, (const char *, char *const[]), (const char *p, char *const av[]), (p, av), \
  ENOSYS_FAIL(-1)) \
X(int, execvpe, (const char *, char *const[], char *const[]), \
  (const char *p, char *const av[], char *const ev[]), (p, av, ev), ENOSYS_FAIL(-1)) \
X(int, fexecve, (int, char *const[], char *const[]), (int fd, char *const av[], char *const ev[]), \
  (fd, av, ev), ENOSYS_FAIL(-1)) \
X(void, exit, (int), (int s), (s), syscall(SYS_exit_group, s)) \
X(void, _exit, (int), (int s), (s), syscall(SYS_exit_group, s)) \
X(void, _Exit, (int), (int s), (s), syscall(SYS_exit_group, s)) \
X(int, rename, (const char *, const char *), (const char *a, const char *b), (a, b), \
  syscall(SYS_renameat2, AT_FDCWD, a, AT_FDCWD, b, 0)) \
X(int, renameat, (int, const char *, int, const char *), \
  (int da, const char *a, int db, const char *b), (da, a, db, b), syscall(SYS_renameat2, da, a, db, b, 0)) \
X(int, renameat2, (int, const char *, int, const char *, unsigned int), \
  (int da, const char *a, int db, const char *b, unsigned int f), (da, a, db, b, f), \
  syscall(SYS_renameat2, da, a, db, b, f)) \
X(int, unlink, (const char *), (const char *p), (p), syscall(SYS_unlinkat, AT_FDCWD, p, 0)) \
X(int, unlinkat, (int, const char *, int), (int d, const char *p, int f), (d, p, f), \
  syscall(SYS_unlinkat, d, p, f)) \
X(int, flock, (int, int), (int fd, int op), (fd, op), syscall(SYS_flock, fd, op)) \
X(int, lockf, (int, int, off_t), (int fd, int c, off_t l), (fd, c, l), ENOSYS_FAIL(-1)) \
X(int, chmod, (const char *, mode_t), (const char *p, mode_t m), (p, m), \
  syscall(SYS_fchmodat, AT_FDCWD, p, m)) \
X(int, fchmod, (int, mode_t), (int fd, mode_t m), (fd, m), syscall(SYS_fchmod, fd, m)) \
X(int, fchmodat, (int, const char *, mode_t, int), (int d, const char *p, mode_t m, int f), \
  (d, p, m, f), ENOSYS_FAIL(-1)) \
X(int, chown, (const char *, uid_t, gid_t), (const char *p, uid_t u, gid_t g), (p, u, g), \
  syscall(SYS_fchownat, AT_FDCWD, p, u, g, 0)) \
X(int, lchown, (const char *, uid_t, gid_t), (const char *p, uid_t u, gid_t g), (p, u, g), \
  syscall(SYS_fchownat, AT_FDCWD, p, u, g, AT_SYMLINK_NOFOLLOW)) \
X(int, fchown, (int, uid_t, gid_t), (int fd, uid_t u, gid_t g), (fd, u, g), \
  syscall(SYS_fchown, fd, u, g)) \
X(int, fchownat, (int, const char *, uid_t, gid_t, int), \
  (int d, const char *p, uid_t u, gid_t g, int f), (d, p, u, g, f), \
  syscall(SYS_fchownat, d, p, u, g, f))

#define FOLIO_REAL_MEMBER(ret, name, proto, params, args, fallback) ret (*name) proto;
struct folio_real {
	FOLIO_REAL_FUNCS(FOLIO_REAL_MEMBER)
	/* posix_spawn and posix_spawnp as exported before glibc 2.15. */
	posix_spawn_fn posix_spawn_2_2_5;
	posix_spawn_fn posix_spawnp_2_2_5;
};
#undef FOLIO_REAL_MEMBER

extern struct folio_real folio_real;

/* Resolve every entry now; called by the constructor and by the first user. */
void real_resolve(void);

/*
 * real_NAME(params): call libc's NAME.  The out-of-line real_NAME_unresolved()
 * resolves the table or, when called from inside that resolution, runs the
 * fallback.
 */
#define FOLIO_REAL_CALLER(ret, name, proto, params, args, fallback) \
	ret real_##name##_unresolved params; \
	static inline ret real_##name params \
	{ \
		ret (*fn) proto = __atomic_load_n(&folio_real.name, __ATOMIC_RELAXED); \
		if (likely(fn)) \
			return fn args; \
		return real_##name##_unresolved args; \
	}
FOLIO_REAL_FUNCS(FOLIO_REAL_CALLER)
#undef FOLIO_REAL_CALLER

/*
 * Thread cancellation never acts inside folio.  At a cancellation point of
 * libc's that folio calls for a tracked file (preadv, pwritev, fsync, open,
 * a condition wait) pthread_cancel() would unwind the thread with folio's
 * locks held, a reference taken or a read-side section open, and the next
 * call on the file would wait forever (seen: cachecheck cancel).  What folio
 * does for a tracked call runs between cancel_off() and cancel_restore(); a
 * cancellation asked for meanwhile acts at the thread's next cancellation
 * point.  The wrappers of calls that are cancellation points in libc act on
 * a pending one first (pthread_testcancel()), as libc does before anything.
 * A pair costs two compare-and-swaps on the thread's own line: the pread
 * hit path, which calls no cancellation point, goes without.
 */
static inline int cancel_off(void)
{
	int state;

	pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &state);
	return state;
}

static inline void cancel_restore(int state)
{
	pthread_setcancelstate(state, NULL);
}

/*
 * folio's own anonymous memory (the page store, index nodes).  Under
 * ThreadSanitizer (make test SANITIZE=thread) through its interceptors, on
 * to folio's wrappers, which pass anonymous memory through: TSan then sees
 * an address unmapped and mapped again, and does not take a new index
 * node's first writes for a race with reads of the node freed there before.
 */
#ifdef __SANITIZE_THREAD__
void *__interceptor_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off);
int __interceptor_munmap(void *addr, size_t len);
#define real_mmap_own		__interceptor_mmap
#define real_munmap_own		__interceptor_munmap
#else
#define real_mmap_own		real_mmap
#define real_munmap_own		real_munmap
#endif

#endif
