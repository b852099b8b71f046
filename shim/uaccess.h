/*
 * uaccess.h - copies to and from the program's buffers that stop at a bad
 * address instead of crashing, as the kernel's copy_to_user() and
 * copy_from_user() do.
 *
 * The kernel answers read(fd, buf, n) with EFAULT (or a short count) when
 * @buf is not mapped or not writable; folio, copying from its cache in the
 * program's own address space, would take the fault itself.  These copies
 * are leaf functions in assembly, string instructions (rep movsb, rep
 * stosb) as the kernel's own user copies on CPUs with fast strings, or
 * vector moves for short copies.  When one faults, folio's SIGSEGV/SIGBUS
 * handler (crash.c) calls uaccess_fixup() (unless the address is folio's
 * own page memory: that is a bug, reported), which makes the copy return
 * what it had left, as the kernel's exception table does: a string
 * instruction stops at the first byte it cannot access, %rcx counting the
 * bytes from there on, so the count is the kernel's to the byte (a step
 * retries as one).  Under valgrind, whose %rcx at a fault is not exact,
 * the kernel counts instead (process_vm_writev/readv of the copy).
 *
 * That needs folio's handler to be the process's: it is installed at the
 * first tracked open, and only over the default action.  In a program with
 * its own handler for those signals (or under a sanitizer, which has one),
 * a bad buffer reaches that handler as the fault it is.
 *
 * Callable anywhere, also in a read-side section or a signal handler; a
 * fault's path may make a system call, with errno kept.
 */
#ifndef FOLIO_UACCESS_H
#define FOLIO_UACCESS_H

#include <stdbool.h>
#include <stddef.h>

/*
 * The copies themselves: copy @len bytes from @src to @dst / zero @len
 * bytes at @dst.  Return 0, or after a fault UACCESS_FAULTED with what
 * %rcx said was left.  uaccess_copy_steps() may stop up to 63 bytes early,
 * and under valgrind no count is exact: the functions below take these
 * results only through the *_faulted() ones.
 */
#define UACCESS_FAULTED		(1ull << 63)

size_t uaccess_copy_steps(void *dst, const void *src, size_t len);
size_t uaccess_copy_string(void *dst, const void *src, size_t len);
size_t uaccess_clear_string(void *dst, size_t len);

/*
 * After a fault, the bytes of the copy or clear that are left to the byte,
 * the bytes before them copied; @to_program: @dst is the program's (else
 * @src is).  Out of line: only a bad buffer gets here.
 */
size_t uaccess_copy_faulted(void *dst, const void *src, size_t len, size_t left,
			    bool to_program);
size_t uaccess_clear_faulted(void *dst, size_t len, size_t left);

static inline size_t uaccess_copy(void *dst, const void *src, size_t len, bool to_program)
{
	size_t left = uaccess_copy_steps(dst, src, len);

	if (__builtin_expect(left != 0, 0))
		left = uaccess_copy_faulted(dst, src, len, left, to_program);
	return left;
}

/*
 * Copy @len bytes to the program's @dst from folio's @src, or from the
 * program's @src to folio's @dst, or zero @len bytes at the program's @dst.
 * Return the bytes not done: 0, or the bytes from the first bad address on.
 */
static inline size_t uaccess_copy_to(void *dst, const void *src, size_t len)
{
	return uaccess_copy(dst, src, len, true);
}

static inline size_t uaccess_copy_from(void *dst, const void *src, size_t len)
{
	return uaccess_copy(dst, src, len, false);
}

static inline size_t uaccess_clear(void *dst, size_t len)
{
	size_t left = uaccess_clear_string(dst, len);

	if (__builtin_expect(left != 0, 0))
		left = uaccess_clear_faulted(dst, len, left);
	return left;
}

/*
 * Test switch: count every fault's bytes as under valgrind (see
 * uaccess.c), so that the unit tests run that path natively.
 */
extern bool uaccess_recount_faults;

/*
 * From the handler of a SIGSEGV or SIGBUS the kernel raised for a fault
 * (si_code > 0), with its ucontext_t: if the fault is in one of the copies
 * above, make it return on resumption and return true.
 */
bool uaccess_fixup(void *uc);

#endif
