/*
 * interpose_open.c - every call that makes a new fd for a named file.  After
 * libc opened it, fdtable_open() decides once whether the fd is tracked.
 */
#include <stdarg.h>

#include "interpose.h"

/* The mode argument, present only when the flags create a file. */
#define OPEN_MODE(flags, last) \
	({ \
		mode_t mode_ = 0; \
		if (__OPEN_NEEDS_MODE(flags)) { \
			va_list ap_; \
			va_start(ap_, last); \
			mode_ = va_arg(ap_, mode_t); \
			va_end(ap_); \
		} \
		mode_; \
	})

/*
 * An open with O_TRUNC truncates in the kernel before folio sees the fd.  If
 * the file is cached, its write lock is held across the open, so that no
 * write-back puts data from before the truncation back after it.
 */
#define OPENED(call, dirfd, path, flags) \
	({ \
		int cancel_, fd_; \
		struct ofile *trunc_ = unlikely((flags) & O_TRUNC) ? \
				       trunc_begin(dirfd, path, &cancel_) : NULL; \
		fd_ = (call); \
		if (trunc_) \
			trunc_end(trunc_, fd_, cancel_); \
		opened(fd_, dirfd, path, flags); \
	})

FOLIO_EXPORT int open(const char *path, int flags, ...)
{
	return OPENED(real_open(path, flags, OPEN_MODE(flags, flags)), AT_FDCWD, path, flags);
}
FOLIO_ALIAS64(open, open64);

FOLIO_EXPORT int openat(int dirfd, const char *path, int flags, ...)
{
	return OPENED(real_openat(dirfd, path, flags, OPEN_MODE(flags, flags)), dirfd, path, flags);
}
FOLIO_ALIAS64(openat, openat64);

FOLIO_EXPORT int __open_2(const char *path, int flags)
{
	return OPENED(real___open_2(path, flags), AT_FDCWD, path, flags);
}

FOLIO_EXPORT int __open64_2(const char *path, int flags)
{
	return OPENED(real___open64_2(path, flags), AT_FDCWD, path, flags);
}

FOLIO_EXPORT int __openat_2(int dirfd, const char *path, int flags)
{
	return OPENED(real___openat_2(dirfd, path, flags), dirfd, path, flags);
}

FOLIO_EXPORT int __openat64_2(int dirfd, const char *path, int flags)
{
	return OPENED(real___openat64_2(dirfd, path, flags), dirfd, path, flags);
}

#define CREAT_FLAGS	(O_CREAT | O_WRONLY | O_TRUNC)

FOLIO_EXPORT int creat(const char *path, mode_t mode)
{
	return OPENED(real_creat(path, mode), AT_FDCWD, path, CREAT_FLAGS);
}
FOLIO_ALIAS64(creat, creat64);

/* mkstemp and friends open the name they wrote into @template this way. */
#define MKSTEMP_FLAGS	(O_RDWR | O_CREAT | O_EXCL)

FOLIO_EXPORT int mkstemp(char *template)
{
	return opened(real_mkstemp(template), AT_FDCWD, template, MKSTEMP_FLAGS);
}
FOLIO_ALIAS64(mkstemp, mkstemp64);

FOLIO_EXPORT int mkostemp(char *template, int flags)
{
	return opened(real_mkostemp(template, flags), AT_FDCWD, template, MKSTEMP_FLAGS | flags);
}
FOLIO_ALIAS64(mkostemp, mkostemp64);

FOLIO_EXPORT int mkstemps(char *template, int suffixlen)
{
	return opened(real_mkstemps(template, suffixlen), AT_FDCWD, template, MKSTEMP_FLAGS);
}
FOLIO_ALIAS64(mkstemps, mkstemps64);

FOLIO_EXPORT int mkostemps(char *template, int suffixlen, int flags)
{
	return opened(real_mkostemps(template, suffixlen, flags), AT_FDCWD, template,
		      MKSTEMP_FLAGS | flags);
}
FOLIO_ALIAS64(mkostemps, mkostemps64);

