/*
 * guard.c - see guard.h.
 *
 * Starting the guardian.  It must not be the program's child: a SIGCHLD
 * would reach the program's handler and its wait() could reap it, and a
 * zombie would stay behind if the host exec()s.  So the host clone()s a
 * child with no exit signal (invisible to wait() without __WCLONE), which
 * clone()s the guardian's process and exits at once; the host reaps it.
 * Both with CLONE_VM | CLONE_VFORK, as posix_spawn(): no copy of the
 * host's memory.  The guardian calls setsid(): a terminal's ^C to the
 * host's process group does not reach it.
 * The guardian's descriptors: the socket as 3, /dev/null as 0 and 1, and
 * as 2 for its messages the file of FOLIO_LOG_FILE if folio has one open,
 * else the host's 2; no other descriptor of the host's.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "compiler.h"
#include "guard.h"
#include "log.h"
#include "real.h"
#include "share.h"

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC	(1U << 2)
#endif

/* After a guardian could not be started, none is tried again for this long. */
#define RETRY_SPAWN_MS	1000

uint64_t guard_gen;

static struct {
	pthread_mutex_t lock;
	int sock;			/* the host's end; -1: no guardian */
	uint64_t gen;			/* its number, when it runs; the last one's else */
	uint64_t failed_at;		/* ms: the last start that failed */
	bool warned;			/* about a failed start */
	bool lost;			/* a death found outside guard_lost(): report it there */
	/* The guardian's numbers for files: a stack of the freed ones, then
	 * @next_slot and up never used.  Slot 0 means none. */
	uint32_t next_slot;
	uint32_t nr_free;
	uint32_t *free_slots;
} g = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.sock = -1,
	.next_slot = 1,
};

static char program[PATH_MAX];	/* the guardian's program: beside libfolio.so */

/*
 * The lock is taken with every signal blocked, as fdtable_lock is: it is
 * taken under a mapping's lock (a write), and a handler that interrupted
 * its holder and wrote to that file would wait for the mapping's lock
 * (seen: fdcheck's signal storm).  A handler never waits for its own
 * thread either (as fl_lock() in writeback.c).
 */
static __thread bool guard_locked_here __attribute__((tls_model("initial-exec")));

static bool guard_lock(sigset_t *old)
{
	sigset_t all;

	if (guard_locked_here)
		return false;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, old);
	guard_locked_here = true;
	pthread_mutex_lock(&g.lock);
	return true;
}

static void guard_unlock(const sigset_t *old)
{
	pthread_mutex_unlock(&g.lock);
	guard_locked_here = false;
	pthread_sigmask(SIG_SETMASK, old, NULL);
}

void guard_init(void)
{
	Dl_info info;
	const char *slash;
	size_t dir;

	if (!dladdr((void *)guard_init, &info) || !info.dli_fname ||
	    !(slash = strrchr(info.dli_fname, '/')))
		return;
	dir = slash + 1 - info.dli_fname;
	if (dir + sizeof("folio-guardian") > sizeof(program))
		return;
	memcpy(program, info.dli_fname, dir);
	memcpy(program + dir, "folio-guardian", sizeof("folio-guardian"));
}

/* ---- Messages ---- */

/* Send @msg with up to two descriptors.  0, or -1 with errno (EPIPE: gone). */
static int send_msg(const struct guard_msg *msg, const int *fds, int nr_fds)
{
	union {
		char buf[CMSG_SPACE(2 * sizeof(int))];
		struct cmsghdr align;
	} control;
	struct iovec iov = { (void *)msg, sizeof(*msg) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	ssize_t n;

	if (nr_fds) {
		struct cmsghdr *c;

		memset(&control, 0, sizeof(control));
		mh.msg_control = control.buf;
		mh.msg_controllen = CMSG_SPACE(nr_fds * sizeof(int));
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(nr_fds * sizeof(int));
		memcpy(CMSG_DATA(c), fds, nr_fds * sizeof(int));
	}
	do
		n = sendmsg(g.sock, &mh, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	return n == (ssize_t)sizeof(*msg) ? 0 : -1;
}

/* ---- Starting it ---- */

struct spawn_args {
	int sock;
	int log_fd;		/* FOLIO_LOG_FILE's, to be the guardian's 2; -1: none */
	char *const *argv;
	char *const *envp;
	int exec_errno;		/* set by the guardian's process if its exec fails */
	pid_t pid;		/* the guardian's */
};

static char spawn_stacks[2][16 << 10] __attribute__((aligned(64)));

/*
 * glibc's clone() under its other name: ThreadSanitizer intercepts clone(),
 * and its interceptor run in a child that shares the host's memory corrupts
 * its view of the host's threads (a mutex held twice, it said).
 */
extern int __clone(int (*fn)(void *), void *stack, int flags, void *arg, ...);

/*
 * The guardian's process until it execs: in the host's memory (CLONE_VM)
 * with the host's thread and the first child stopped (CLONE_VFORK), so
 * system calls only, nothing that locks or allocates, no sanitizer's code.
 */
FOLIO_NO_SANITIZE
static int exec_guardian(void *arg)
{
	struct spawn_args *a = arg;
	long null;

	if (a->sock == 3)
		syscall(SYS_fcntl, 3, F_SETFD, 0);
	else if (syscall(SYS_dup3, a->sock, 3, 0) < 0)
		goto fail;
	if (a->log_fd >= 0 && a->log_fd != 2)
		syscall(SYS_dup3, a->log_fd, 2, 0);
	null = syscall(SYS_openat, AT_FDCWD, "/dev/null", O_RDWR);
	if (null >= 0) {
		if (null != 0)
			syscall(SYS_dup3, null, 0, 0);
		if (null != 1)
			syscall(SYS_dup3, null, 1, 0);
	}
	syscall(SYS_close_range, 4, ~0U, 0);
	syscall(SYS_execve, program, a->argv, a->envp);
fail:
	a->exec_errno = errno;
	syscall(SYS_exit, 127);
	return 127;
}

/*
 * The host's clone()d child, with no exit signal: it starts the guardian
 * as its own child and exits, so the guardian belongs to init (or a
 * subreaper) at once.  It does not exec itself: an exec makes a process's
 * exit signal SIGCHLD again, which would reach the program.
 */
FOLIO_NO_SANITIZE
static int spawn_child(void *arg)
{
	struct spawn_args *a = arg;
	pid_t pid = __clone(exec_guardian, spawn_stacks[1] + sizeof(spawn_stacks[1]),
			    CLONE_VM | CLONE_VFORK | SIGCHLD, a);

	if (pid < 0)
		a->exec_errno = errno;
	a->pid = pid;
	syscall(SYS_exit, a->exec_errno ? 1 : 0);
	return 1;
}

/* What the guardian needs of the host's environment. */
static const char *const passed_env[] = { "FOLIO_RECOVERY_TIMEOUT" };

/*
 * Start a guardian and send it the journal.  Under the lock.  Returns 0,
 * or -1 (warned once).
 */
static int spawn_locked(void)
{
	char host[24], *argv[] = { "folio-guardian", host, NULL };
	char *envp[ARRAY_SIZE(passed_env) + 1];
	struct spawn_args a;
	struct guard_msg hello = { .type = GUARD_HELLO };
	int sv[2] = { -1, -1 }, fds[2] = { journal.fd, -1 }, status = 0, err = 0, nr_env = 0;
	sigset_t all, old;
	pid_t pid;

	if (!program[0] || journal.fd < 0) {
		err = !program[0] ? ENOENT : ENOMEM;
		goto fail;
	}
	for (size_t i = 0; i < ARRAY_SIZE(passed_env); i++) {
		extern char **environ;

		for (char **e = environ; e && *e; e++)
			if (!strncmp(*e, passed_env[i], strlen(passed_env[i])) &&
			    (*e)[strlen(passed_env[i])] == '=')
				envp[nr_env++] = *e;
	}
	envp[nr_env] = NULL;
	snprintf(host, sizeof(host), "%d", (int)getpid());
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		err = errno;
		goto fail;
	}
	a = (struct spawn_args){ .sock = sv[1], .log_fd = log_file_fd(), .argv = argv,
				 .envp = envp };
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);	/* no handler of the host's in the child */
	pid = __clone(spawn_child, spawn_stacks[0] + sizeof(spawn_stacks[0]),
		      CLONE_VM | CLONE_VFORK, &a);
	err = errno;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	real_close(sv[1]);
	if (pid < 0)
		goto fail;
	while (waitpid(pid, &status, __WCLONE) < 0 && errno == EINTR)
		;
	if (!WIFEXITED(status) || WEXITSTATUS(status)) {
		err = a.exec_errno ? a.exec_errno : ECHILD;
		goto fail;
	}
	g.sock = journal_own_fd(sv[0]);
	sv[0] = -1;
	fds[1] = syscall(SYS_pidfd_open, getpid(), 0);
	if (fds[1] < 0 || send_msg(&hello, fds, 2) < 0) {
		err = errno;
		if (fds[1] >= 0)
			real_close(fds[1]);
		journal_close_fd(g.sock);
		g.sock = -1;
		goto fail;
	}
	real_close(fds[1]);
	share_set_guardian(a.pid);
	g.gen++;
	__atomic_store_n(&guard_gen, g.gen, __ATOMIC_RELEASE);
	g.warned = false;
	log_debug("guardian %s started", program);
	return 0;
fail:
	if (sv[0] >= 0)
		real_close(sv[0]);
	g.failed_at = monotonic_ms();
	if (!g.warned)
		log_warn("cannot start the guardian %s (%s): writes to tracked files go to the "
			 "kernel at once until one runs", program[0] ? program : "folio-guardian",
			 strerror(err));
	g.warned = true;
	return -1;
}

/* The guardian is gone: forget it.  Under the lock. */
static void lost_locked(void)
{
	if (g.sock < 0)
		return;
	journal_close_fd(g.sock);
	g.sock = -1;
	/* What it guarded must go to the kernel now: guard_lost() says so. */
	__atomic_store_n(&g.lost, true, __ATOMIC_RELAXED);
	__atomic_store_n(&guard_gen, 0, __ATOMIC_RELEASE);
	log_warn("the guardian of this process died: its dirty pages go to the kernel now, "
		 "and a new one starts at the next write");
}

/* ---- Files ---- */

static uint32_t slot_take(void)
{
	if (g.nr_free)
		return g.free_slots[--g.nr_free];
	if (g.next_slot < JOURNAL_FILES)
		return g.next_slot++;
	return 0;
}

static void slot_give(uint32_t slot)
{
	if (!g.free_slots) {
		g.free_slots = malloc(JOURNAL_FILES * sizeof(*g.free_slots));
		if (!g.free_slots)
			return;	/* lost to reuse: there are many */
	}
	g.free_slots[g.nr_free++] = slot;
}

int guard_file(struct guard_file *gf, uint64_t owner, int fd, const char *name)
{
	struct guard_msg msg = { .type = GUARD_FILE, .owner = owner };
	int saved_errno = errno, ret = -1;
	sigset_t old;

	if (fd < 0 || !journal.base || !guard_lock(&old))
		return -1;
	if (guard_file_current(gf)) {	/* another writer of the file did it */
		ret = 0;
		goto out;
	}
	if (g.sock < 0 && g.failed_at && monotonic_ms() - g.failed_at < RETRY_SPAWN_MS)
		goto out;
	if (!gf->slot && !(gf->slot = slot_take()))
		goto out;
	msg.slot = gf->slot;
	snprintf(msg.name, sizeof(msg.name), "%s", name ? name : "?");
	for (int tries = 0; tries < 2; tries++) {
		if (g.sock < 0 && spawn_locked() < 0)
			break;
		if (send_msg(&msg, &fd, 1) == 0) {
			__atomic_store_n(&gf->gen, g.gen, __ATOMIC_RELEASE);
			ret = 0;
			break;
		}
		lost_locked();	/* it died since: once more with a new one */
	}
out:
	guard_unlock(&old);
	errno = saved_errno;
	return ret;
}

void guard_file_forget(struct guard_file *gf, uint64_t owner)
{
	struct guard_msg msg = { .type = GUARD_FORGET, .owner = owner };
	int saved_errno = errno;
	sigset_t old;

	if (!gf->slot || !guard_lock(&old))
		return;
	if (guard_file_current(gf)) {
		msg.slot = gf->slot;
		if (send_msg(&msg, NULL, 0) < 0)
			lost_locked();
	}
	slot_give(gf->slot);
	gf->slot = 0;
	gf->gen = 0;
	guard_unlock(&old);
	errno = saved_errno;
}

bool guard_lost(void)
{
	struct pollfd p;
	bool lost;
	int saved_errno = errno;
	sigset_t old;

	if (!__atomic_load_n(&guard_gen, __ATOMIC_RELAXED) &&
	    !__atomic_load_n(&g.lost, __ATOMIC_RELAXED))
		return false;
	if (!guard_lock(&old))
		return false;
	p = (struct pollfd){ .fd = g.sock, .events = POLLRDHUP };
	if (g.sock >= 0 && poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR)))
		lost_locked();
	lost = __atomic_exchange_n(&g.lost, false, __ATOMIC_RELAXED);
	guard_unlock(&old);
	errno = saved_errno;
	return lost;
}

void guard_after_fork_child(void)
{
	pthread_mutex_init(&g.lock, NULL);
	guard_locked_here = false;
	g.lost = false;
	/* Closed with folio's other descriptors, unless the fork came between
	 * its making and its marking: nothing has opened one since. */
	if (g.sock >= 0)
		real_close(g.sock);
	g.sock = -1;
	g.next_slot = 1;
	g.nr_free = 0;
	g.failed_at = 0;
	g.warned = false;
	__atomic_store_n(&guard_gen, 0, __ATOMIC_RELEASE);
}
