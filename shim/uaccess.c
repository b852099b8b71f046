/*
 * uaccess.c - see uaccess.h.  x86-64 only, like crash.c.
 *
 * The functions a fault may interrupt are written in assembly so that what
 * it interrupts is known exactly: no stack frame (the return address is at
 * the stack pointer), nothing saved, and from the first instruction that
 * may fault to the last, %rdx holds what to return if one does.  Resuming
 * at uaccess_fault_return returns it.  The copies keep the bytes left in
 * %rdx; each 64-byte step loads all four vectors before storing any, so a
 * fault on a load (a bad source) leaves the count exact.  The probes return
 * 1 from a fault, 0 otherwise.
 */
#include <stdint.h>
#include <ucontext.h>

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
	"	cmp	$64, %rdx\n"
	"	jb	2f\n"
	"1:	movdqu	(%rsi), %xmm0\n"
	"	movdqu	16(%rsi), %xmm1\n"
	"	movdqu	32(%rsi), %xmm2\n"
	"	movdqu	48(%rsi), %xmm3\n"
	"	movdqu	%xmm0, (%rdi)\n"
	"	movdqu	%xmm1, 16(%rdi)\n"
	"	movdqu	%xmm2, 32(%rdi)\n"
	"	movdqu	%xmm3, 48(%rdi)\n"
	"	add	$64, %rsi\n"
	"	add	$64, %rdi\n"
	"	sub	$64, %rdx\n"
	"	cmp	$64, %rdx\n"
	"	jae	1b\n"
	"2:	cmp	$16, %rdx\n"
	"	jb	3f\n"
	"	movdqu	(%rsi), %xmm0\n"
	"	movdqu	%xmm0, (%rdi)\n"
	"	add	$16, %rsi\n"
	"	add	$16, %rdi\n"
	"	sub	$16, %rdx\n"
	"	jmp	2b\n"
	"3:	test	%rdx, %rdx\n"
	"	jz	uaccess_fault_return\n"
	"	movzbl	(%rsi), %eax\n"
	"	movb	%al, (%rdi)\n"
	"	inc	%rsi\n"
	"	inc	%rdi\n"
	"	dec	%rdx\n"
	"	jmp	3b\n"
	"	.cfi_endproc\n"
	"	.size	uaccess_copy_steps, .-uaccess_copy_steps\n"
	"\n"
	"	.p2align 4\n"
	"	.globl	uaccess_clear_steps\n"
	"	.hidden	uaccess_clear_steps\n"
	"	.type	uaccess_clear_steps, @function\n"
	"uaccess_clear_steps:\n"
	"	.cfi_startproc\n"
	"	mov	%rsi, %rdx\n"
	"	pxor	%xmm0, %xmm0\n"
	"4:	cmp	$16, %rdx\n"
	"	jb	5f\n"
	"	movdqu	%xmm0, (%rdi)\n"
	"	add	$16, %rdi\n"
	"	sub	$16, %rdx\n"
	"	jmp	4b\n"
	"5:	test	%rdx, %rdx\n"
	"	jz	uaccess_fault_return\n"
	"	movb	$0, (%rdi)\n"
	"	inc	%rdi\n"
	"	dec	%rdx\n"
	"	jmp	5b\n"
	"	.cfi_endproc\n"
	"	.size	uaccess_clear_steps, .-uaccess_clear_steps\n"
	"\n"
	"	.p2align 4\n"
	"	.globl	uaccess_probe_store\n"
	"	.hidden	uaccess_probe_store\n"
	"	.type	uaccess_probe_store, @function\n"
	"uaccess_probe_store:\n"
	"	.cfi_startproc\n"
	"	mov	$1, %edx\n"
	"	movb	%sil, (%rdi)\n"
	"	xor	%eax, %eax\n"
	"	ret\n"
	"	.cfi_endproc\n"
	"	.size	uaccess_probe_store, .-uaccess_probe_store\n"
	"\n"
	"	.p2align 4\n"
	"	.globl	uaccess_probe_load\n"
	"	.hidden	uaccess_probe_load\n"
	"	.type	uaccess_probe_load, @function\n"
	"uaccess_probe_load:\n"
	"	.cfi_startproc\n"
	"	mov	$1, %edx\n"
	"	movzbl	(%rdi), %eax\n"
	"	xor	%eax, %eax\n"
	"	ret\n"
	"	.cfi_endproc\n"
	"	.size	uaccess_probe_load, .-uaccess_probe_load\n"
	"\n"
	"	.type	uaccess_fault_return, @function\n"
	"uaccess_fault_return:\n"
	"	.cfi_startproc\n"
	"	mov	%rdx, %rax\n"
	"	ret\n"
	"uaccess_text_end:\n"
	"	.cfi_endproc\n"
	"	.size	uaccess_fault_return, .-uaccess_fault_return\n");

size_t uaccess_copy_tail(void *dst, const void *src, size_t len, size_t left)
{
	for (size_t at = len - left; at < len; at++)
		if (uaccess_copy_steps((char *)dst + at, (const char *)src + at, 1))
			return len - at;
	return 0;	/* mapped meanwhile, by another thread */
}

size_t uaccess_clear_tail(void *dst, size_t len, size_t left)
{
	for (size_t at = len - left; at < len; at++)
		if (uaccess_clear_steps((char *)dst + at, 1))
			return len - at;
	return 0;
}

int uaccess_probe_store_pages(void *dst, const void *src, size_t len)
{
	for (size_t at = uaccess_next_page(dst, 0); at < len; at = uaccess_next_page(dst, at))
		if (uaccess_probe_store((char *)dst + at,
					src ? ((const unsigned char *)src)[at] : 0))
			return 1;
	return 0;
}

int uaccess_probe_load_pages(const void *src, size_t len)
{
	for (size_t at = uaccess_next_page(src, 0); at < len; at = uaccess_next_page(src, at))
		if (uaccess_probe_load((const char *)src + at))
			return 1;
	return 0;
}

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
