/*
 * uaccess.c - see uaccess.h.  x86-64 only, like crash.c.
 *
 * The copies are written in assembly so that what a fault interrupts is
 * known exactly: no stack frame (the return address is at the stack
 * pointer), nothing saved, and from the first instruction that may fault
 * to the last, %rcx holds the bytes still to do.  Resuming at
 * uaccess_fault_return returns them, with UACCESS_FAULTED set.
 *
 * Copies of 8 to 255 bytes, where a string instruction's start-up costs
 * more than the copy (make bench, tiny-pread), move 8 or 16 bytes at a
 * time as libc's memcpy() does: the whole copy (up to 64 bytes) or a
 * 64-byte step, the last one ending at the end, loads all before it stores
 * any.  A fault there leaves %rcx at the start of the step, up to 63 bytes
 * before the bad one (the bytes after it that a step stored are stored
 * again, the same).  Other copies, and the retry after such a fault, are
 * one rep movsb, which stops exactly at the bad byte.
 */
#include <errno.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <ucontext.h>
#include <unistd.h>

#include "compiler.h"
#include "uaccess.h"

extern const char uaccess_text_start[], uaccess_text_end[], uaccess_fault_return[];

__asm__(
	"	.text\n"
	"	.p2align 4\n"
	"	.hidden	uaccess_text_start\n"
	"	.hidden	uaccess_text_end\n"
	"	.hidden	uaccess_fault_return\n"
	"	.globl	uaccess_copy_steps\n"
	"	.hidden	uaccess_copy_steps\n"
	"	.type	uaccess_copy_steps, @function\n"
	"uaccess_copy_steps:\n"
	"	.cfi_startproc\n"
	"uaccess_text_start:\n"
	"	mov	%rdx, %rcx\n"
	"	cmp	$256, %rdx\n"
	"	jae	9f\n"
	"	cmp	$64, %rdx\n"
	"	ja	4f\n"
	"	cmp	$32, %rdx\n"
	"	ja	3f\n"
	"	cmp	$16, %rdx\n"
	"	jae	2f\n"
	"	cmp	$8, %rdx\n"
	"	jb	9f\n"
	/* 8 to 15 bytes: two 8-byte moves, overlapping */
	"	mov	(%rsi), %rax\n"
	"	mov	-8(%rsi, %rdx), %r8\n"
	"	mov	%rax, (%rdi)\n"
	"	mov	%r8, -8(%rdi, %rdx)\n"
	"	jmp	10f\n"
	/* 16 to 32 bytes: two 16-byte moves */
	"2:	movdqu	(%rsi), %xmm0\n"
	"	movdqu	-16(%rsi, %rdx), %xmm1\n"
	"	movdqu	%xmm0, (%rdi)\n"
	"	movdqu	%xmm1, -16(%rdi, %rdx)\n"
	"	jmp	10f\n"
	/* 33 to 64 bytes: four */
	"3:	movdqu	(%rsi), %xmm0\n"
	"	movdqu	16(%rsi), %xmm1\n"
	"	movdqu	-32(%rsi, %rdx), %xmm2\n"
	"	movdqu	-16(%rsi, %rdx), %xmm3\n"
	"	movdqu	%xmm0, (%rdi)\n"
	"	movdqu	%xmm1, 16(%rdi)\n"
	"	movdqu	%xmm2, -32(%rdi, %rdx)\n"
	"	movdqu	%xmm3, -16(%rdi, %rdx)\n"
	"	jmp	10f\n"
	/* 65 to 255 bytes: 64-byte steps, the last one ending at the end */
	"4:	movdqu	(%rsi), %xmm0\n"
	"	movdqu	16(%rsi), %xmm1\n"
	"	movdqu	32(%rsi), %xmm2\n"
	"	movdqu	48(%rsi), %xmm3\n"
	"	movdqu	%xmm0, (%rdi)\n"
	"	movdqu	%xmm1, 16(%rdi)\n"
	"	movdqu	%xmm2, 32(%rdi)\n"
	"	movdqu	%xmm3, 48(%rdi)\n"
	"	add	$64, %rsi\n"
	"	add	$64, %rdi\n"
	"	sub	$64, %rcx\n"
	"	cmp	$64, %rcx\n"
	"	ja	4b\n"
	"	movdqu	-64(%rsi, %rcx), %xmm0\n"
	"	movdqu	-48(%rsi, %rcx), %xmm1\n"
	"	movdqu	-32(%rsi, %rcx), %xmm2\n"
	"	movdqu	-16(%rsi, %rcx), %xmm3\n"
	"	movdqu	%xmm0, -64(%rdi, %rcx)\n"
	"	movdqu	%xmm1, -48(%rdi, %rcx)\n"
	"	movdqu	%xmm2, -32(%rdi, %rcx)\n"
	"	movdqu	%xmm3, -16(%rdi, %rcx)\n"
	"	jmp	10f\n"
	/* below 8 bytes, and from 256 */
	"9:	rep movsb\n"
	"10:	xor	%eax, %eax\n"
	"	ret\n"
	"	.cfi_endproc\n"
	"	.size	uaccess_copy_steps, .-uaccess_copy_steps\n"
	"\n"
	"	.p2align 4\n"
	"	.globl	uaccess_copy_string\n"
	"	.hidden	uaccess_copy_string\n"
	"	.type	uaccess_copy_string, @function\n"
	"uaccess_copy_string:\n"
	"	.cfi_startproc\n"
	"	mov	%rdx, %rcx\n"
	"	rep movsb\n"
	"	xor	%eax, %eax\n"
	"	ret\n"
	"	.cfi_endproc\n"
	"	.size	uaccess_copy_string, .-uaccess_copy_string\n"
	"\n"
	"	.p2align 4\n"
	"	.globl	uaccess_clear_string\n"
	"	.hidden	uaccess_clear_string\n"
	"	.type	uaccess_clear_string, @function\n"
	"uaccess_clear_string:\n"
	"	.cfi_startproc\n"
	"	mov	%rsi, %rcx\n"
	"	xor	%eax, %eax\n"
	"	rep stosb\n"
	"	ret\n"
	"	.cfi_endproc\n"
	"	.size	uaccess_clear_string, .-uaccess_clear_string\n"
	"\n"
	"	.type	uaccess_fault_return, @function\n"
	"uaccess_fault_return:\n"
	"	.cfi_startproc\n"
	"	mov	%rcx, %rax\n"
	"	bts	$63, %rax\n"	/* UACCESS_FAULTED */
	"	ret\n"
	"uaccess_text_end:\n"
	"	.cfi_endproc\n"
	"	.size	uaccess_fault_return, .-uaccess_fault_return\n");

bool uaccess_fixup(void *uc)
{
	greg_t *regs = ((ucontext_t *)uc)->uc_mcontext.gregs;
	uintptr_t pc = regs[REG_RIP];

	if (pc - (uintptr_t)uaccess_text_start >=
	    (uintptr_t)uaccess_text_end - (uintptr_t)uaccess_text_start)
		return false;
	regs[REG_RIP] = (greg_t)(uintptr_t)uaccess_fault_return;
	return true;
}

_Static_assert(UACCESS_FAULTED == 1ull << 63, "uaccess_fault_return sets bit 63");

bool uaccess_recount_faults;

/*
 * Whether %rcx at a fault was exact.  Not under valgrind: its JIT writes
 * the guest's registers back lazily, and only the stack and instruction
 * pointers are exact at a memory access (--vex-iropt-register-updates).
 * There rep movsb has taken the byte off %rcx before its access faults:
 * a read into an unmapped buffer returned 1, a write from one put a byte
 * of garbage in the file.
 */
static bool fault_count_exact(void)
{
	return !uaccess_recount_faults && !folio_on_valgrind();
}

/*
 * Copy @len bytes from @src to @dst by process_vm_writev() (@dst the
 * program's) or process_vm_readv() (@src the program's) on this thread:
 * the kernel stops at the first page of the program's buffer it cannot
 * access (at the first byte on folio's side, which is good), and says how
 * far it got.  (The thread's id, not getpid(): once the main thread has
 * exited, the process's id names a task without memory, and the call says
 * ESRCH.)  Then copy those bytes again with an instruction valgrind sees:
 * its memcheck does not know that a process_vm_writev() to oneself defined
 * them, and would take a process_vm_readv()'s as defined.  That copy stops
 * at a fault too, if another thread unmapped the buffer in between; the
 * count stays the kernel's.
 *
 * Return the bytes copied, or -1 if the kernel refused the call (a seccomp
 * filter, say), errno kept.
 */
static ssize_t copy_by_kernel(void *dst, const void *src, size_t len, bool to_program)
{
	struct iovec to = { .iov_base = dst, .iov_len = len };
	struct iovec from = { .iov_base = (void *)src, .iov_len = len };
	int saved_errno = errno;
	pid_t tid = (pid_t)syscall(SYS_gettid);
	ssize_t done;

	if (to_program)
		done = process_vm_writev(tid, &from, 1, &to, 1, 0);
	else
		done = process_vm_readv(tid, &to, 1, &from, 1, 0);
	if (done < 0 && errno == EFAULT)
		done = 0;
	errno = saved_errno;
	if (done > 0)
		(void)uaccess_copy_string(dst, src, (size_t)done);
	return done;
}

/*
 * The copy faulted with @left bytes to do, as far as %rcx knew.  Without an
 * exact count and without the kernel's, say that nothing was copied: never
 * more than was.
 */
size_t uaccess_copy_faulted(void *dst, const void *src, size_t len, size_t left,
			    bool to_program)
{
	if (!fault_count_exact()) {
		ssize_t done = copy_by_kernel(dst, src, len, to_program);

		return done >= 0 ? len - (size_t)done : len;
	}
	/* A step retried as one string copy, which stops at the bad byte. */
	left &= ~UACCESS_FAULTED;
	return uaccess_copy_string((char *)dst + len - left, (const char *)src + len - left,
				   left) & ~UACCESS_FAULTED;
}

size_t uaccess_clear_faulted(void *dst, size_t len, size_t left)
{
	static const char zeros[4096];
	size_t done = 0;

	if (fault_count_exact())
		return left & ~UACCESS_FAULTED;
	while (done < len) {
		size_t chunk = len - done < sizeof(zeros) ? len - done : sizeof(zeros);
		ssize_t n = copy_by_kernel((char *)dst + done, zeros, chunk, true);

		if (n < 0)
			return len;
		done += (size_t)n;
		if ((size_t)n < chunk)
			break;
	}
	return len - done;
}
