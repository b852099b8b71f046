/*
 * interpose_proc.c - calls that start or end processes.  Before another
 * process can look at a tracked file (fork, vfork, posix_spawn, system,
 * popen, every exec) and before this one ends, folio writes back everything
 * it holds (doc/design.md §4).  The fork handlers that keep folio's own state
 * consistent in the child are in interpose.c.  Also the process's file size
 * limit, which writes are checked against when folio accepts them: lowering
 * it first writes back what the old limit accepted.
 */
#include <limits.h>
#include <stdarg.h>

#include "interpose.h"
#include "log.h"

FOLIO_EXPORT pid_t fork(void)
{
	cache_prepare_child(true);
	return real_fork();
}

/*
 * _Fork runs no fork handlers and its child may only call async-signal-safe
 * functions, so the child cannot rebuild folio's state: it stays pure
 * pass-through.
 */
FOLIO_EXPORT pid_t _Fork(void)
{
	pid_t pid;

	cache_prepare_child(true);
	pid = real__Fork();
	if (pid == 0)
		folio_passthrough_child();
	return pid;
}

/*
 * vfork's child borrows the parent's stack and memory until it execs or
 * exits.  So the wrapper makes the system call itself, as glibc's vfork.S
 * does: the return address is kept in %rdi, not on the shared stack, and
 * the child returns without any frame of folio's.  Around it, folio writes
 * back and marks the thread so that the child leaves folio's state alone
 * (see fdtable_vfork_begin()); the parent clears the mark once it runs
 * again.  glibc 2.36 on Debian runs without CET shadow stacks, which
 * glibc's version also handles.
 */
__attribute__((used)) void folio_vfork_prepare(void)
{
	int saved_errno = errno;

	cache_prepare_child(false);
	fdtable_vfork_begin();
	errno = saved_errno;
}

__attribute__((used)) void folio_vfork_parent(void)
{
	int saved_errno = errno;

	fdtable_vfork_end();
	errno = saved_errno;
}

__attribute__((used)) pid_t folio_vfork_failed(int error)
{
	fdtable_vfork_end();
	errno = error;
	return -1;
}

#if defined(__x86_64__)
__asm__(".text\n"
	".globl vfork\n"
	".type vfork, @function\n"
	"vfork:\n"
	"	endbr64\n"
	"	sub $8, %rsp\n"		/* align the stack for the call */
	"	call folio_vfork_prepare\n"
	"	add $8, %rsp\n"
	"	pop %rdi\n"			/* the return address, off the stack */
	"	mov $" FOLIO_STR(SYS_vfork) ", %eax\n"
	"	syscall\n"
	"	push %rdi\n"
	"	cmp $-4095, %eax\n"
	"	jae 2f\n"
	"	test %eax, %eax\n"
	"	jz 1f\n"			/* the child returns at once */
	"	push %rax\n"			/* the parent: the child is gone */
	"	call folio_vfork_parent\n"
	"	pop %rax\n"
	"1:	ret\n"
	"2:	neg %eax\n"
	"	mov %eax, %edi\n"
	"	sub $8, %rsp\n"
	"	call folio_vfork_failed\n"
	"	add $8, %rsp\n"
	"	ret\n"
	".size vfork, .-vfork\n");
#else
#error "vfork interposition is written for x86_64 only"
#endif

static int spawn(posix_spawn_fn fn, pid_t *pid, const char *path,
		 const posix_spawn_file_actions_t *actions, const posix_spawnattr_t *attr,
		 char *const argv[], char *const envp[])
{
	cache_prepare_child(actions != NULL);
	if (!fn)
		return ENOSYS;
	return fn(pid, path, actions, attr, argv, envp);
}

static posix_spawn_fn resolved(posix_spawn_fn *slot)
{
	if (!__atomic_load_n(slot, __ATOMIC_RELAXED))
		real_resolve();
	return __atomic_load_n(slot, __ATOMIC_RELAXED);
}

/* posix_spawn and posix_spawnp exist twice in glibc; folio exports both. */
FOLIO_EXPORT int folio_posix_spawn(pid_t *pid, const char *path,
				   const posix_spawn_file_actions_t *actions,
				   const posix_spawnattr_t *attr, char *const argv[],
				   char *const envp[])
{
	return spawn(resolved(&folio_real.posix_spawn), pid, path, actions, attr, argv, envp);
}
__asm__(".symver folio_posix_spawn, posix_spawn@@GLIBC_2.15");

FOLIO_EXPORT int folio_posix_spawn_2_2_5(pid_t *pid, const char *path,
					 const posix_spawn_file_actions_t *actions,
					 const posix_spawnattr_t *attr, char *const argv[],
					 char *const envp[])
{
	return spawn(resolved(&folio_real.posix_spawn_2_2_5), pid, path, actions, attr, argv,
		     envp);
}
__asm__(".symver folio_posix_spawn_2_2_5, posix_spawn@GLIBC_2.2.5");

FOLIO_EXPORT int folio_posix_spawnp(pid_t *pid, const char *file,
				    const posix_spawn_file_actions_t *actions,
				    const posix_spawnattr_t *attr, char *const argv[],
				    char *const envp[])
{
	return spawn(resolved(&folio_real.posix_spawnp), pid, file, actions, attr, argv, envp);
}
__asm__(".symver folio_posix_spawnp, posix_spawnp@@GLIBC_2.15");

FOLIO_EXPORT int folio_posix_spawnp_2_2_5(pid_t *pid, const char *file,
					  const posix_spawn_file_actions_t *actions,
					  const posix_spawnattr_t *attr, char *const argv[],
					  char *const envp[])
{
	return spawn(resolved(&folio_real.posix_spawnp_2_2_5), pid, file, actions, attr, argv,
		     envp);
}
__asm__(".symver folio_posix_spawnp_2_2_5, posix_spawnp@GLIBC_2.2.5");

FOLIO_EXPORT int system(const char *command)
{
	cache_prepare_child(false);
	return real_system(command);
}

FOLIO_EXPORT FILE *popen(const char *command, const char *type)
{
	cache_prepare_child(false);
	return real_popen(command, type);
}

FOLIO_EXPORT int execve(const char *path, char *const argv[], char *const envp[])
{
	cache_before_exec();
	return real_execve(path, argv, envp);
}

FOLIO_EXPORT int execv(const char *path, char *const argv[])
{
	cache_before_exec();
	return real_execv(path, argv);
}

FOLIO_EXPORT int execvp(const char *file, char *const argv[])
{
	cache_before_exec();
	return real_execvp(file, argv);
}

FOLIO_EXPORT int execvpe(const char *file, char *const argv[], char *const envp[])
{
	cache_before_exec();
	return real_execvpe(file, argv, envp);
}

FOLIO_EXPORT int fexecve(int fd, char *const argv[], char *const envp[])
{
	cache_before_exec();
	return real_fexecve(fd, argv, envp);
}

/*
 * execl, execlp and execle: gather the list into an argv array, as glibc
 * does, and continue as execv, execvp and execve.
 */
#define GATHER_ARGS(argv, arg, ap, after_null) \
	do { \
		size_t n_ = 1; \
		va_start(ap, arg); \
		while (va_arg(ap, char *)) \
			n_++; \
		va_end(ap); \
		argv = __builtin_alloca((n_ + 1) * sizeof(char *)); \
		argv[0] = (char *)arg; \
		va_start(ap, arg); \
		for (size_t i_ = 1; i_ <= n_; i_++) \
			argv[i_] = va_arg(ap, char *); \
		after_null; \
		va_end(ap); \
	} while (0)

FOLIO_EXPORT int execl(const char *path, const char *arg, ...)
{
	va_list ap;
	char **argv;

	GATHER_ARGS(argv, arg, ap, (void)0);
	cache_before_exec();
	return real_execv(path, argv);
}

FOLIO_EXPORT int execlp(const char *file, const char *arg, ...)
{
	va_list ap;
	char **argv;

	GATHER_ARGS(argv, arg, ap, (void)0);
	cache_before_exec();
	return real_execvp(file, argv);
}

FOLIO_EXPORT int execle(const char *path, const char *arg, ...)
{
	va_list ap;
	char **argv, **envp;

	GATHER_ARGS(argv, arg, ap, envp = va_arg(ap, char **));
	cache_before_exec();
	return real_execve(path, argv, envp);
}

FOLIO_EXPORT void exit(int status)
{
	stdio_flush_all();
	cache_writeback_all();
	real_exit(status);
	__builtin_unreachable();
}

FOLIO_EXPORT void _exit(int status)
{
	cache_writeback_all();
	real__exit(status);
	__builtin_unreachable();
}

FOLIO_EXPORT void _Exit(int status)
{
	cache_writeback_all();
	real__Exit(status);
	__builtin_unreachable();
}

/* ---- RLIMIT_FSIZE ---- */

/*
 * The four calls are glibc's system call prlimit64 on x86_64 (struct rlimit
 * is struct rlimit64 there), made here directly: a sanitizer's runtime sets
 * RLIMIT_CORE in its constructor, before folio could look up libc's, and
 * before it could run instrumented code (FOLIO_NO_SANITIZE), which the path
 * of every other limit avoids.
 */
static inline __attribute__((always_inline)) int sys_prlimit(pid_t pid, int resource,
							     const void *new_limit,
							     void *old_limit)
{
	return syscall(SYS_prlimit64, pid, resource, new_limit, old_limit);
}

/* (A NULL @new_limit, which glibc declares impossible, gets EFAULT.) */
static FOLIO_NO_SANITIZE bool sets_own_limit(pid_t pid, const void *new_limit)
{
	return new_limit && (pid == 0 || pid == getpid());
}

/*
 * Set @resource of @pid to @new_limit, @old_limit out; see
 * cache_fsize_limit_begin() for this process's RLIMIT_FSIZE.  The *64 calls
 * pass their struct rlimit64, which is struct rlimit on x86_64.
 */
static inline __attribute__((always_inline)) FOLIO_NO_SANITIZE
int set_limit(pid_t pid, int resource, const struct rlimit *new_limit, struct rlimit *old_limit)
{
	int ret;

	if (resource != RLIMIT_FSIZE || !sets_own_limit(pid, new_limit))
		return sys_prlimit(pid, resource, new_limit, old_limit);
	cache_fsize_limit_begin(new_limit->rlim_cur);
	ret = sys_prlimit(pid, resource, new_limit, old_limit);
	cache_fsize_limit_end();
	return ret;
}

FOLIO_EXPORT FOLIO_NO_SANITIZE int setrlimit(__rlimit_resource_t resource,
					      const struct rlimit *rlim)
{
	return set_limit(0, resource, rlim, NULL);
}

FOLIO_EXPORT FOLIO_NO_SANITIZE int setrlimit64(__rlimit_resource_t resource,
						const struct rlimit64 *rlim)
{
	return set_limit(0, resource, (const struct rlimit *)rlim, NULL);
}

FOLIO_EXPORT FOLIO_NO_SANITIZE int prlimit(pid_t pid, __rlimit_resource_t resource,
					    const struct rlimit *new_limit, struct rlimit *old_limit)
{
	return set_limit(pid, resource, new_limit, old_limit);
}

FOLIO_EXPORT FOLIO_NO_SANITIZE int prlimit64(pid_t pid, __rlimit_resource_t resource,
					      const struct rlimit64 *new_limit,
					      struct rlimit64 *old_limit)
{
	return set_limit(pid, resource, (const struct rlimit *)new_limit,
			 (struct rlimit *)old_limit);
}
