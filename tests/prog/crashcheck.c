/*
 * crashcheck - the program side of tests/test_crash.c: crashes of its own,
 * its own handler, and what it sees of folio's crash handler.  Works in the
 * current directory.
 *
 *	crashcheck plain		write crash.dat, exit 0
 *	crashcheck own-segv		store through NULL in main()
 *	crashcheck own-segv-libc	fault inside libc (strlen(NULL))
 *	crashcheck own-handler		install a SIGSEGV handler (it prints "own
 *					handler ran" and exits 3), write
 *					crash.dat, then fault
 *	crashcheck kill-self		kill(getpid(), SIGSEGV); "survived", exit 0
 *					if that returns
 *	crashcheck disposition		print each crash signal's disposition at
 *					start, then again after writing crash.dat
 *	crashcheck half-bad		write 4096 bytes to an empty crash.dat
 *					from a buffer whose second half is
 *					on a PROT_NONE page (not unmapped:
 *					folio's first mmap could land there); print
 *					what pwrite returned
 *	crashcheck dirty-wait FILE	write crash.dat and keep it open and dirty,
 *					create FILE, wait (folio's test build,
 *					FOLIO_TEST_CRASH=FILE, faults then); after
 *					10 s "no crash", exit 1
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "folio.h"

static const int signals[] = { SIGSEGV, SIGBUS, SIGILL, SIGFPE };
static const char *const signal_names[] = { "SIGSEGV", "SIGBUS", "SIGILL", "SIGFPE" };

/*
 * The compiler cannot know it is NULL, so the store is really made; nor
 * does UBSan catch it first (make test SANITIZE=undefined).
 */
static int *volatile null_pointer;

#define FAULT	__attribute__((noinline, no_sanitize("undefined")))

static FAULT void store_through_null(void)
{
	*null_pointer = 1;
}

static FAULT size_t strlen_of_null(void)
{
	return strlen((const char *)null_pointer);
}

static int write_dat(void)
{
	static char data[10000];
	int fd = open("crash.dat", O_CREAT | O_TRUNC | O_RDWR, 0644);

	memset(data, 'x', sizeof(data));
	if (fd < 0 || write(fd, data, sizeof(data)) != sizeof(data)) {
		perror("crashcheck: crash.dat");
		exit(1);
	}
	return fd;
}

static void own_handler(int sig)
{
	static const char msg[] = "crashcheck: own handler ran\n";

	(void)sig;
	if (write(STDOUT_FILENO, msg, sizeof(msg) - 1) < 0)
		_exit(4);
	_exit(3);
}

static void print_dispositions(void)
{
	for (size_t i = 0; i < sizeof(signals) / sizeof(signals[0]); i++) {
		struct sigaction sa;

		if (sigaction(signals[i], NULL, &sa)) {
			perror("crashcheck: sigaction");
			exit(1);
		}
		printf("%s: ", signal_names[i]);
		if (sa.sa_handler == SIG_DFL)
			printf("default\n");
		else if (sa.sa_handler == SIG_IGN)
			printf("ignored\n");
		else
			printf("handler%s%s%s%s\n", sa.sa_flags & SA_SIGINFO ? " siginfo" : "",
			       sa.sa_flags & SA_ONSTACK ? " onstack" : "",
			       sa.sa_flags & SA_RESETHAND ? " resethand" : "",
			       sa.sa_flags & SA_NODEFER ? " nodefer" : "");
	}
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "";

	if (!strcmp(mode, "plain")) {
		close(write_dat());
	} else if (!strcmp(mode, "own-segv")) {
		store_through_null();
	} else if (!strcmp(mode, "own-segv-libc")) {
		printf("%zu\n", strlen_of_null());
	} else if (!strcmp(mode, "own-handler")) {
		signal(SIGSEGV, own_handler);
		close(write_dat());	/* folio at work after the handler is set */
		store_through_null();
	} else if (!strcmp(mode, "kill-self")) {
		kill(getpid(), SIGSEGV);
		printf("survived\n");
	} else if (!strcmp(mode, "disposition")) {
		print_dispositions();
		close(write_dat());
		printf("after a tracked open:\n");
		print_dispositions();
	} else if (!strcmp(mode, "half-bad")) {
		int fd = open("crash.dat", O_CREAT | O_TRUNC | O_RDWR, 0644);
		char *buf = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
				 -1, 0);

		if (fd < 0 || buf == MAP_FAILED || mprotect(buf + 4096, 4096, PROT_NONE)) {
			perror("crashcheck: half-bad");
			return 1;
		}
		memset(buf, 'y', 4096);
		printf("pwrite: %zd\n", pwrite(fd, buf + 2048, 4096, 0));
		close(fd);
	} else if (!strcmp(mode, "dirty-wait") && argc > 2) {
		int fd = write_dat();

		if (!folio_fd_tracked || !folio_fd_tracked(fd)) {
			printf("crash.dat is not tracked\n");
			return 1;
		}
		close(open(argv[2], O_CREAT | O_WRONLY, 0644));
		sleep(10);
		printf("no crash\n");
		return 1;
	} else {
		fprintf(stderr, "usage: crashcheck plain|own-segv|own-segv-libc|own-handler|"
			"kill-self|disposition|half-bad|dirty-wait FILE\n");
		return 2;
	}
	return 0;
}
