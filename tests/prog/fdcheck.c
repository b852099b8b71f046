/*
 * fdcheck - run under folio with FOLIO_FILES='*.dat' in DIR: checks that
 * folio's fd table follows the kernel's exactly (which fds are tracked,
 * through dup, close, close_range, closefrom, fork, threads and signal
 * handlers) and that errno is what libc leaves.  Asks folio through
 * folio_fd_tracked() from include/folio.h.  Prints "ok" and exits 0, or
 * names the first failed check and exits 1.
 *
 *	fdcheck DIR
 *	fdcheck --probe FILE	print 1 if opening FILE gives a tracked fd, else 0
 *	fdcheck --sigstack DIR	print how much of a signal stack a handler uses
 *				for nothing, and for an open, write, pread,
 *				read and close of an untracked and a tracked file
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "folio.h"

static char dir[PATH_MAX];

#define CHECK(cond) \
	do { \
		if (!(cond)) { \
			printf("FAILED line %d: %s (errno %d)\n", __LINE__, #cond, errno); \
			exit(1); \
		} \
	} while (0)

static int tracked(int fd)
{
	return folio_fd_tracked(fd);
}

static char *path(const char *name)
{
	static char buf[4][PATH_MAX + NAME_MAX + 2];
	static int next;
	char *p = buf[next++ % 4];

	snprintf(p, sizeof(buf[0]), "%s/%s", dir, name);
	return p;
}

static void check_tracking_rules(void)
{
	int fd, other, pipefd[2];
	FILE *f;

	fd = open(path("a.dat"), O_RDWR | O_CREAT | O_TRUNC, 0600);
	CHECK(fd >= 0 && tracked(fd));
	other = open(path("b.txt"), O_RDWR | O_CREAT | O_TRUNC, 0600);
	CHECK(other >= 0 && !tracked(other));
	close(other);
	other = open("/dev/null", O_RDONLY);
	CHECK(!tracked(other));
	close(other);
	other = open(dir, O_RDONLY | O_DIRECTORY);
	CHECK(!tracked(other));
	close(other);
	other = open(path("a.dat"), O_PATH);
	CHECK(other >= 0 && !tracked(other));
	close(other);
	CHECK(pipe(pipefd) == 0 && !tracked(pipefd[0]) && !tracked(pipefd[1]));
	close(pipefd[0]);
	close(pipefd[1]);
	other = open("/proc/self/status", O_RDONLY);
	CHECK(!tracked(other));
	close(other);
	/* Another name for a tracked inode is tracked too. */
	CHECK(symlink(path("a.dat"), path("alias.lnk")) == 0);
	other = open(path("alias.lnk"), O_RDONLY);
	CHECK(other >= 0 && tracked(other));
	close(other);
	CHECK(link(path("a.dat"), path("hard.txt")) == 0);
	other = open(path("hard.txt"), O_RDONLY);
	CHECK(other >= 0 && tracked(other));
	close(other);
	/* Relative names, "..", openat and creat. */
	CHECK(chdir(dir) == 0);
	other = open("./sub/../rel.dat", O_RDWR | O_CREAT, 0600);
	CHECK(other < 0 && errno == ENOENT);
	CHECK(mkdir("sub", 0700) == 0);
	other = open("./sub/../rel.dat", O_RDWR | O_CREAT, 0600);
	CHECK(other >= 0 && tracked(other));
	close(other);
	other = openat(AT_FDCWD, "sub/x.dat", O_RDWR | O_CREAT, 0600);
	CHECK(other >= 0 && tracked(other));
	close(other);
	other = creat("c.dat", 0600);
	CHECK(other >= 0 && tracked(other));
	close(other);
	/* Streams. */
	f = fopen("s.dat", "w+");
	CHECK(f && tracked(fileno(f)));
	other = fileno(f);
	CHECK(fclose(f) == 0 && !tracked(other));
	f = fopen("s.txt", "w");
	CHECK(f && !tracked(fileno(f)));
	fclose(f);
	other = dup(fd);
	f = fdopen(other, "r+");
	CHECK(f && fileno(f) == other && tracked(other));
	CHECK(fclose(f) == 0 && !tracked(other) && tracked(fd));
	close(fd);
}

static void check_descriptors(void)
{
	int fd = open(path("d.dat"), O_RDWR | O_CREAT | O_TRUNC, 0600);
	int plain = open(path("d.txt"), O_RDWR | O_CREAT | O_TRUNC, 0600);
	int d;
	struct rlimit rl;

	CHECK(tracked(fd) && !tracked(plain));
	d = dup(fd);
	CHECK(tracked(d));
	CHECK(dup2(fd, 100) == 100 && tracked(100));
	CHECK(dup3(fd, 101, O_CLOEXEC) == 101 && tracked(101));
	CHECK(fcntl(fd, F_DUPFD, 200) >= 200 && tracked(200));
	CHECK(fcntl(fd, F_DUPFD_CLOEXEC, 300) >= 300 && tracked(300));
	/* An untracked fd duplicated over a tracked one. */
	CHECK(dup2(plain, 100) == 100 && !tracked(100));
	CHECK(dup2(fd, fd) == fd && tracked(fd));
	CHECK(dup2(-1, 101) == -1 && errno == EBADF && tracked(101));
	CHECK(dup3(plain, 101, 0x1234) == -1 && errno == EINVAL && tracked(101));
	/* High fd numbers: the table grows past any initial size. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_max >= 70000) {
		rl.rlim_cur = rl.rlim_max > 1048576 ? 1048576 : rl.rlim_max;
		CHECK(setrlimit(RLIMIT_NOFILE, &rl) == 0);
		CHECK(dup2(fd, 65000) == 65000 && tracked(65000));
		CHECK(close(65000) == 0 && !tracked(65000));
	}
	CHECK(close(d) == 0 && !tracked(d) && tracked(fd));
	CHECK(close(d) == -1 && errno == EBADF);
	CHECK(close_range(101, 101, CLOSE_RANGE_CLOEXEC) == 0 && tracked(101));
	CHECK(close_range(300, 200, 0) == -1 && errno == EINVAL && tracked(200));
	CHECK(close_range(101, 250, 0) == 0 && !tracked(101) && !tracked(200));
	CHECK(tracked(300));
	closefrom(300);
	CHECK(!tracked(300) && fcntl(300, F_GETFD) == -1);
	close(plain);
	close(fd);
	/* closefrom(negative) closes from 0, as glibc clamps it: in a child,
	 * whose stdout may go. */
	if (fork() == 0) {
		fd = open(path("d.dat"), O_RDWR);
		if (!tracked(fd) || dup2(fd, 400) != 400 || !tracked(400))
			_exit(2);
		closefrom(-5);
		_exit(tracked(400) || tracked(fd) ? 3 : 0);
	}
	CHECK(wait(&d) > 0 && WIFEXITED(d) && WEXITSTATUS(d) == 0);
}

/*
 * libc streams close their fds inside libc: no slot may outlive them, or a
 * later pipe or socket with the same number would look tracked.
 */
static void check_libc_streams(void)
{
	int fd = open(path("l.dat"), O_RDWR | O_CREAT | O_TRUNC, 0600), pipefd[2];
	int saved_stdin = dup(0);
	FILE *f;

	CHECK(tracked(fd));
	f = fdopen(fd, "r+,ccs=UTF-8");
	CHECK(f && !tracked(fd));
	CHECK(fclose(f) == 0);
	CHECK(pipe(pipefd) == 0 && !tracked(pipefd[0]) && !tracked(pipefd[1]));
	close(pipefd[0]);
	close(pipefd[1]);
	/* stdin reopened onto a tracked file, then closed by fclose. */
	close(0);
	CHECK(open(path("l.dat"), O_RDONLY) == 0 && tracked(0));
	CHECK(fclose(stdin) == 0 && !tracked(0));
	CHECK(pipe(pipefd) == 0 && !tracked(pipefd[0]) && !tracked(pipefd[1]));
	close(pipefd[0]);
	close(pipefd[1]);
	CHECK(dup2(saved_stdin, 0) == 0);
	close(saved_stdin);
}

/* folio's own fd for the file open as @app_fd, or -1. */
static int own_fd_of(int app_fd)
{
	DIR *d = opendir("/proc/self/fd");
	struct stat app, st;
	struct dirent *e;
	int found = -1;

	CHECK(d && fstat(app_fd, &app) == 0);
	while ((e = readdir(d))) {
		int n = atoi(e->d_name);

		if (e->d_name[0] != '.' && n != app_fd && n != dirfd(d) && fstat(n, &st) == 0 &&
		    st.st_dev == app.st_dev && st.st_ino == app.st_ino)
			found = n;
	}
	closedir(d);
	return found;
}

/*
 * folio keeps one descriptor of its own per tracked file: high, close-on-
 * exec, invisible to close(), moved away by dup2(), skipped by close_range()
 * and closefrom(), closed in fork children and with the file's last close.
 */
static void check_own_fds(void)
{
	int fd, own, plain;
	pid_t pid;

	fd = open(path("own.dat"), O_RDWR | O_CREAT | O_TRUNC, 0600);
	CHECK(tracked(fd));
	own = own_fd_of(fd);
	CHECK(own > fd + 10 && (fcntl(own, F_GETFD) & FD_CLOEXEC));
	CHECK(close(own) == -1 && errno == EBADF && fcntl(own, F_GETFD) >= 0);
	CHECK(close_range(own, own, 0) == 0 && fcntl(own, F_GETFD) >= 0);
	CHECK(dup2(fd, 100) == 100 && close_range(99, 101, 0) == 0 && fcntl(100, F_GETFD) == -1);
	CHECK(tracked(fd) && own_fd_of(fd) == own);
	pid = fork();
	if (pid == 0)
		_exit(own_fd_of(fd) < 0 ? 0 : 7);
	CHECK(waitpid(pid, &plain, 0) == pid && WIFEXITED(plain) && WEXITSTATUS(plain) == 0);
	/* The program takes folio's number: folio moves. */
	plain = open(path("own.txt"), O_RDWR | O_CREAT, 0600);
	CHECK(dup2(plain, own) == own && !tracked(own));
	CHECK(own_fd_of(fd) >= 0 && own_fd_of(fd) != own);
	CHECK(close(own) == 0 && close(plain) == 0);
	own = own_fd_of(fd);
	/* closefrom() closes everything else above fd, not folio's fd. */
	closefrom(fd + 1);
	CHECK(fcntl(own, F_GETFD) >= 0 && tracked(fd) && write(fd, "still works", 11) == 11);
	/* The file's last close closes folio's fd: nothing leaks. */
	CHECK(close(fd) == 0 && fcntl(own, F_GETFD) == -1);
}

static void check_errno(void)
{
	int fd = open(path("e.dat"), O_RDWR | O_CREAT | O_TRUNC, 0600), ro;
	char c;

	CHECK(tracked(fd));
	errno = 1234;
	ro = open(path("e.dat"), O_RDONLY);
	CHECK(ro >= 0 && tracked(ro) && errno == 1234);
	errno = 0;
	CHECK(write(ro, "x", 1) == -1 && errno == EBADF);
	CHECK(read(-1, &c, 1) == -1 && errno == EBADF);
	CHECK(pread(fd, &c, 1, -1) == -1 && errno == EINVAL);
	CHECK(lseek(fd, 0, 77) == -1 && errno == EINVAL);
	errno = 4321;
	CHECK(write(fd, "x", 1) == 1 && errno == 4321);
	CHECK(close(ro) == 0 && errno == 4321);
	close(fd);
}

/* The number of threads of this process, from /proc/self/status. */
static int threads(void)
{
	char line[256];
	int n = -1;
	FILE *f = fopen("/proc/self/status", "r");

	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, "Threads:", 8))
			n = atoi(line + 8);
	if (f)
		fclose(f);
	return n;
}

static void check_fork(void)
{
	int fd = open(path("f.dat"), O_RDWR | O_CREAT | O_TRUNC, 0600);
	pid_t pid;
	int status;

	CHECK(tracked(fd));
	pid = fork();
	if (pid == 0) {
		int mine;

		/* Inherited fds are pass-through in the child; new opens track. */
		if (tracked(fd) || write(fd, "child", 5) != 5)
			_exit(2);
		/* No folio thread was started in the child. */
		if (threads() != 1)
			_exit(4);
		mine = open(path("f.dat"), O_RDONLY);
		_exit(mine >= 0 && tracked(mine) ? 0 : 3);
	}
	CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0);
	CHECK(tracked(fd));
	pid = _Fork();
	if (pid == 0) {
		int mine = open(path("f.dat"), O_RDONLY);

		_exit(!tracked(fd) && mine >= 0 && !tracked(mine) ? 0 : 4);
	}
	CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0);
	/*
	 * A vfork child shares folio's memory: what it closes, dups or opens
	 * before exec must leave the parent's table alone.
	 */
	pid = vfork();
	if (pid == 0) {
		int plain = open(path("v.txt"), O_RDWR | O_CREAT, 0600);

		dup2(plain, fd);
		close(plain);
		open(path("v.dat"), O_RDWR | O_CREAT, 0600);
		closefrom(3);
		_exit(0);
	}
	CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0);
	CHECK(tracked(fd));
	for (int other = 0; other < 1024; other++)
		CHECK(other == fd || !tracked(other));
	pid = vfork();
	if (pid == 0) {
		execl("/bin/sh", "sh", "-c", "exit 6", (char *)NULL);
		_exit(127);
	}
	CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 6);
	CHECK(tracked(fd));
	close(fd);
}

static void *churn(void *arg)
{
	char name[PATH_MAX + 32];	/* not path(): its buffers are not per thread */
	long id = (long)arg;

	snprintf(name, sizeof(name), "%s/thread%ld.dat", dir, id);
	for (int i = 0; i < 2000; i++) {
		int fd = open(name, O_RDWR | O_CREAT, 0600);
		int d = dup(fd);

		if (fd < 0 || d < 0 || !tracked(fd) || !tracked(d) ||
		    pwrite(d, &i, sizeof(i), 0) != sizeof(i) || close(fd) || close(d))
			return (void *)1;
	}
	return NULL;
}

static volatile sig_atomic_t handler_failed;
static int signal_fd;

static void handler(int sig)
{
	int saved_errno = errno, d;
	char c;

	(void)sig;
	if (pwrite(signal_fd, "s", 1, 0) != 1 || pread(signal_fd, &c, 1, 0) != 1 || c != 's')
		handler_failed = 1;
	/* dup and close are async-signal-safe: also on tracked fds. */
	d = dup(signal_fd);
	if (d < 0 || !tracked(d) || pread(d, &c, 1, 0) != 1 || close(d) != 0)
		handler_failed = 1;
	errno = saved_errno;
}

static void check_threads_and_signals(void)
{
	struct itimerval every = { { 0, 500 }, { 0, 500 } }, off = { { 0, 0 }, { 0, 0 } };
	pthread_t threads[4];
	void *ret;

	signal_fd = open(path("signal.dat"), O_RDWR | O_CREAT | O_TRUNC, 0600);
	CHECK(tracked(signal_fd));
	CHECK(signal(SIGALRM, handler) != SIG_ERR);
	CHECK(setitimer(ITIMER_REAL, &every, NULL) == 0);
	for (long i = 0; i < 4; i++)
		CHECK(pthread_create(&threads[i], NULL, churn, (void *)i) == 0);
	for (int i = 0; i < 4; i++) {
		CHECK(pthread_join(threads[i], &ret) == 0);
		CHECK(ret == NULL);
	}
	CHECK(setitimer(ITIMER_REAL, &off, NULL) == 0);
	CHECK(!handler_failed);
	for (int fd = 0; fd < 1024; fd++)
		CHECK(fd == signal_fd || !tracked(fd));
	close(signal_fd);
}

/*
 * Crash handlers open files on small alternate stacks: folio must fit in
 * what the kernel's own signal frame needs (sysconf(_SC_MINSIGSTKSZ), which
 * differs from CPU to CPU: ~1.8 KiB on AMD EPYC, ~12 KiB with AMX) plus the
 * budget folio.7 states for a tracked open, read, write and close
 * ("Signal handlers"): 3.0 KB measured on AMD EPYC, of which the dynamic
 * linker's lazy binding inside pthread_create() (the first dirty write
 * starts the flusher) saves 896 bytes of vector registers; with AVX-512
 * that save area is ~2.5 KB, hence 6 KiB.  ThreadSanitizer gets 256 KiB more: when the
 * handler's close frees (folio's deferred frees, every 32nd object), TSan
 * matches the free in a handler against tests/tsan.supp on this stack, and
 * symbolizing the stack (libbacktrace's recursive DWARF reader) takes more
 * than that.  ASan's interceptors and redzones take more too.
 */
#if defined(__SANITIZE_THREAD__)
#define SIGSTACK_BUDGET	(256 * 1024)
#elif defined(__SANITIZE_ADDRESS__)
#define SIGSTACK_BUDGET	(16 * 1024)
#else
#define SIGSTACK_BUDGET	(6 * 1024)
#endif
#define STACK_PAINT	0xa5

enum sigstack_work { SIGSTACK_NOTHING, SIGSTACK_UNTRACKED, SIGSTACK_TRACKED };
static volatile enum sigstack_work sigstack_work;
static volatile int sigstack_result = -1;

static int file_round_trip(const char *name)
{
	char buf[64] = "written on a signal stack";
	int fd = open(path(name), O_RDWR | O_CREAT | O_TRUNC, 0600);
	int ok = fd >= 0 && write(fd, buf, sizeof(buf)) == sizeof(buf) &&
		 pread(fd, buf, sizeof(buf), 0) == sizeof(buf) &&
		 read(fd, buf, 1) == 0 && !strcmp(buf, "written on a signal stack") &&
		 tracked(fd) == (strstr(name, ".dat") != NULL);

	return close(fd) == 0 && ok;
}

static void sigstack_handler(int sig)
{
	(void)sig;
	switch (sigstack_work) {
	case SIGSTACK_NOTHING:
		sigstack_result = 1;
		break;
	case SIGSTACK_UNTRACKED:
		sigstack_result = file_round_trip("alt.txt");
		break;
	case SIGSTACK_TRACKED:
		sigstack_result = file_round_trip("alt.dat");
		break;
	}
}

/*
 * Run the handler on a fresh alternate stack of @size bytes (with an
 * inaccessible page below: an overflow faults) doing @work, and return how
 * many bytes of it were used, signal frame included.
 */
static size_t sigstack_used(size_t size, enum sigstack_work work)
{
	long page = sysconf(_SC_PAGESIZE);
	size_t mapped = (size + page - 1) / page * page;
	char *area = mmap(NULL, page + mapped, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char *base = area + page + mapped - size;
	stack_t ss = { .ss_sp = base, .ss_size = size }, off = { .ss_flags = SS_DISABLE };
	struct sigaction sa = { .sa_handler = sigstack_handler, .sa_flags = SA_ONSTACK };
	size_t untouched = 0;

	CHECK(area != MAP_FAILED && mprotect(area, page, PROT_NONE) == 0);
	memset(base, STACK_PAINT, size);
	CHECK(sigaltstack(&ss, NULL) == 0);
	CHECK(sigaction(SIGUSR1, &sa, NULL) == 0);
	sigstack_work = work;
	sigstack_result = -1;
	raise(SIGUSR1);
	CHECK(sigstack_result == 1);
	CHECK(sigaltstack(&off, NULL) == 0);
	while (untouched < size && (unsigned char)base[untouched] == STACK_PAINT)
		untouched++;
	munmap(area, page + mapped);
	return size - untouched;
}

/*
 * What each handler uses is measured on a large stack; then the tracked
 * calls run again on a stack of exactly the kernel's minimum plus the
 * budget, where going past it faults.  @verbose: print the figures (for
 * folio.7's "Signal handlers").
 */
static void check_small_signal_stack(bool verbose)
{
	size_t minimum = sysconf(_SC_MINSIGSTKSZ), large = minimum + 1024 * 1024;
	size_t frame = sigstack_used(large, SIGSTACK_NOTHING);
	size_t untracked = sigstack_used(large, SIGSTACK_UNTRACKED);
	size_t tracked = sigstack_used(large, SIGSTACK_TRACKED);

	if (verbose)
		printf("_SC_MINSIGSTKSZ %zu, budget %d: signal frame %zu bytes; beyond it, "
		       "untracked calls %zu, tracked calls %zu\n", minimum, SIGSTACK_BUDGET,
		       frame, untracked - frame, tracked - frame);
	CHECK(frame <= minimum);
	CHECK(tracked - frame <= SIGSTACK_BUDGET);
	sigstack_used(minimum + SIGSTACK_BUDGET, SIGSTACK_TRACKED);
}

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "--sigstack") && realpath(argv[2], dir)) {
		/* As in the whole run: not the process's first tracked open,
		 * which also loads libunwind (folio.7). */
		close(open(path("first.dat"), O_RDWR | O_CREAT, 0600));
		check_small_signal_stack(true);
		return 0;
	}
	if (argc == 3 && !strcmp(argv[1], "--probe")) {
		int fd = open(argv[2], O_RDWR | O_CREAT, 0600);

		printf("%d\n", fd >= 0 && folio_fd_tracked && folio_fd_tracked(fd));
		return fd >= 0 ? 0 : 1;
	}
	if (argc != 2 || !realpath(argv[1], dir)) {
		fprintf(stderr, "usage: fdcheck DIR\n");
		return 2;
	}
	if (!folio_fd_tracked) {
		printf("FAILED: not running under folio\n");
		return 1;
	}
	check_tracking_rules();
	/* folio starts no thread of its own: a second thread would make the
	 * kernel lock the file position on every read of every fd. */
	CHECK(threads() == 1);
	check_descriptors();
	check_libc_streams();
	check_own_fds();
	check_errno();
	check_fork();
	check_threads_and_signals();
	check_small_signal_stack(false);
	printf("ok\n");
	return 0;
}
