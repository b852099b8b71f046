/*
 * uaccess.h - copies to and from the program's buffers that stop at a bad
 * address instead of crashing, as the kernel's copy_to_user() and
 * copy_from_user() do.
 *
 * The kernel answers read(fd, buf, n) with EFAULT (or a short count) when
 * @buf is not mapped or not writable; folio, copying from its cache in the
 * program's own address space, would take the fault itself.  These copies
 * first touch each page of the program's buffer with a probe, a leaf
 * function in assembly: when one faults, folio's SIGSEGV/SIGBUS handler
 * (crash.c) calls uaccess_fixup() (unless the address is folio's own page
 * memory: that is a bug, reported), which makes the probe return 1, as the
 * kernel's exception table does for its user copies; the copy then goes
 * byte-exact to return the count the kernel would.
 *
 * That needs folio's handler to be the process's: it is installed at the
 * first tracked open, and only over the default action.  In a program with
 * its own handler for those signals (or under a sanitizer, which has one),
 * a bad buffer reaches that handler as the fault it is.
 *
 * Callable anywhere, also in a read-side section or a signal handler.
 */
#ifndef FOLIO_UACCESS_H
#define FOLIO_UACCESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/*
 * The exact copies, in 16- and 64-byte steps, then (after a fault) byte by
 * byte to the bad one.  Return the bytes NOT copied or zeroed: 0, or the
 * bytes from the first bad address on, as the kernel counts them.
 */
size_t uaccess_copy_steps(void *dst, const void *src, size_t len);
size_t uaccess_clear_steps(void *dst, size_t len);
size_t uaccess_copy_tail(void *dst, const void *src, size_t len, size_t left);
size_t uaccess_clear_tail(void *dst, size_t len, size_t left);

/* One byte stored at or loaded from @p: 0, or 1 at a bad address. */
int uaccess_probe_store(void *p, unsigned char byte);
int uaccess_probe_load(const void *p);

static inline size_t uaccess_copy_exact(void *dst, const void *src, size_t len)
{
	size_t left = uaccess_copy_steps(dst, src, len);

	return left ? uaccess_copy_tail(dst, src, len, left) : 0;
}

/* The offset from @p of the first byte of the page after the one @at is in. */
static inline size_t uaccess_next_page(const void *p, size_t at)
{
	return ((((uintptr_t)p + at) | 4095) + 1) - (uintptr_t)p;
}

static inline bool uaccess_one_page(const void *p, size_t len)
{
	return ((uintptr_t)p & 4095) + len <= 4096;
}

/* Probe the pages of [@dst, @dst + @len) after the first, storing @src's
 * bytes (or zeros).  Returns 0 or 1 as a probe. */
int uaccess_probe_store_pages(void *dst, const void *src, size_t len);
int uaccess_probe_load_pages(const void *src, size_t len);

/*
 * Whether every page of the program's [@dst, @dst + @len) (@len > 0) takes
 * a store: one byte of each gets @src's byte for it (zero without @src),
 * the one it gets anyway; @first is the first of them.
 */
static inline bool uaccess_takes_stores(void *dst, unsigned char first, const void *src,
					size_t len)
{
	return !uaccess_probe_store(dst, first) &&
	       (uaccess_one_page(dst, len) || !uaccess_probe_store_pages(dst, src, len));
}

/*
 * Copy @len bytes from @src to the program's @dst.  Returns the bytes NOT
 * copied: 0, or the bytes from the first bad address on.  The common case
 * is libc's memcpy() once every page of @dst took a store
 * (uaccess_takes_stores()); only a buffer with a bad page takes the exact
 * copy.  A page another thread unmaps between the two faults as natively
 * the program's own access would.
 */
static inline size_t uaccess_copy_to(void *dst, const void *src, size_t len)
{
	if (__builtin_expect(!len, 0))
		return 0;
	if (__builtin_expect(!uaccess_takes_stores(dst, *(const unsigned char *)src, src, len), 0))
		return uaccess_copy_exact(dst, src, len);
	memcpy(dst, src, len);
	return 0;
}

/* Copy @len bytes from the program's @src to @dst: as uaccess_copy_to(). */
static inline size_t uaccess_copy_from(void *dst, const void *src, size_t len)
{
	if (__builtin_expect(!len, 0))
		return 0;
	if (__builtin_expect(uaccess_probe_load(src), 0) ||
	    (!uaccess_one_page(src, len) && uaccess_probe_load_pages(src, len)))
		return uaccess_copy_exact(dst, src, len);
	memcpy(dst, src, len);
	return 0;
}

/* Zero @len bytes of the program's @dst: as uaccess_copy_to(). */
static inline size_t uaccess_clear(void *dst, size_t len)
{
	if (__builtin_expect(!len, 0))
		return 0;
	if (__builtin_expect(!uaccess_takes_stores(dst, 0, NULL, len), 0)) {
		size_t left = uaccess_clear_steps(dst, len);

		return left ? uaccess_clear_tail(dst, len, left) : 0;
	}
	memset(dst, 0, len);
	return 0;
}

/*
 * From the handler of a SIGSEGV or SIGBUS the kernel raised for a fault
 * (si_code > 0), with its ucontext_t: if the fault is in one of the copies
 * above, make it return on resumption and return true.
 */
bool uaccess_fixup(void *uc);

#endif
