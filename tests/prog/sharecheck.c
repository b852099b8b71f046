/*
 * sharecheck - processes that share a file see each other's writes at once.
 *
 *   sharecheck HOW FILE [ROUNDS]
 *
 * Two processes (a fork, each then opening FILE itself: two holders, not
 * an inherited description) keep FILE open and coordinate only through HOW:
 *
 *   shm    a counter in shared memory, no lock: the writer pwrite()s record
 *          i into slot i % SLOTS and then publishes i; the reader reads the
 *          slot of the last published record
 *   pipe   the writer sends i down a pipe after its pwrite() returned
 *   both   both processes write (each its own slots) and read the other's
 *          slots through the shared counters
 *   idle   the writer writes every slot while it alone holds the file, says
 *          so, and then waits without a call to folio; only then does the
 *          reader open the file and read all of it (the writer's dirty pages
 *          must reach the kernel before that open returns)
 *   kill   the same, but the writer is killed (SIGKILL) before the open:
 *          its guardian's write-back must be done before the open returns
 *   stop   the same, but the writer is stopped (SIGSTOP): the open waits a
 *          bounded time (it prints how long) and goes on; once the writer
 *          runs again (SIGCONT) its pages reach the kernel: the reader then
 *          reads them all, nothing lost
 *
 * A read that finds an older record than the one published is stale: the
 * program prints the count and exits 1 if there was any (natively: never).
 * Each process reads the file before the other opens it, so a cache that
 * kept the pages it had would serve them.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SLOTS	1024
#define REC	64

struct shared {
	uint64_t published[2];	/* per writer: the last record whose pwrite returned */
	uint32_t ready;		/* both have the file open */
	uint64_t stale;
};

static struct shared *sh;
static const char *file;
static long rounds = 200000;

static int open_file(void)
{
	char buf[REC * SLOTS];
	int fd = open(file, O_RDWR);

	if (fd < 0) {
		perror(file);
		exit(2);
	}
	if (pread(fd, buf, sizeof(buf), 0) < 0)	/* now in this process's cache, if any */
		exit(2);
	return fd;
}

static void record(uint64_t *r, uint64_t seq)
{
	for (int i = 0; i < REC / 8; i++)
		r[i] = seq;
}

/* Slot of writer @w's record @seq: writer 0 the even slots, writer 1 the odd. */
static off_t slot_of(int w, uint64_t seq)
{
	return (off_t)(((seq % (SLOTS / 2)) * 2 + w) * REC);
}

static void wait_ready(void)
{
	__atomic_add_fetch(&sh->ready, 1, __ATOMIC_SEQ_CST);
	while (__atomic_load_n(&sh->ready, __ATOMIC_SEQ_CST) < 2)
		usleep(100);
}

static void write_one(int fd, int w, uint64_t seq, int pipe_fd)
{
	uint64_t r[REC / 8];

	record(r, seq);
	if (pwrite(fd, r, REC, slot_of(w, seq)) != REC)
		exit(2);
	__atomic_store_n(&sh->published[w], seq, __ATOMIC_SEQ_CST);
	if (pipe_fd >= 0 && write(pipe_fd, &seq, sizeof(seq)) != sizeof(seq))
		exit(2);
}

/* Read writer @w's record @seq (or the newest published): stale if older. */
static void check_one(int fd, int w, uint64_t seq)
{
	uint64_t r[REC / 8];

	if (!seq)
		return;
	if (pread(fd, r, REC, slot_of(w, seq)) != REC)
		exit(2);
	/* A newer record may have replaced it in the slot, never an older one. */
	if (r[0] < seq)
		__atomic_add_fetch(&sh->stale, 1, __ATOMIC_RELAXED);
}

int main(int argc, char **argv)
{
	int p[2] = { -1, -1 }, status, fd;
	const char *how;
	pid_t pid;

	if (argc < 3)
		return 2;
	how = argv[1];
	file = argv[2];
	if (argc > 3)
		rounds = atol(argv[3]);
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED || pipe(p) < 0)
		return 2;
	{	/* made under another name, so that this process never holds it */
		char made[4096];

		snprintf(made, sizeof(made), "%s.new", file);
		fd = open(made, O_RDWR | O_CREAT | O_TRUNC, 0644);
		if (fd < 0 || ftruncate(fd, REC * SLOTS) < 0 || close(fd) || rename(made, file))
			return 2;
	}
	pid = fork();
	if (pid < 0)
		return 2;
	if (!strcmp(how, "idle") || !strcmp(how, "kill") || !strcmp(how, "stop")) {
		uint64_t r[REC / 8];
		struct timespec t0, t1;

		if (pid == 0) {
			fd = open_file();
			for (uint64_t i = 1; i <= SLOTS / 2; i++)
				write_one(fd, 0, i, -1);
			__atomic_store_n(&sh->ready, 1, __ATOMIC_SEQ_CST);
			while (__atomic_load_n(&sh->ready, __ATOMIC_SEQ_CST) != 2)
				usleep(1000);	/* idle: no call of folio's */
			_exit(0);
		}
		while (__atomic_load_n(&sh->ready, __ATOMIC_SEQ_CST) != 1)
			usleep(1000);
		if (!strcmp(how, "kill")) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
		}
		if (!strcmp(how, "stop")) {
			kill(pid, SIGSTOP);
			waitpid(pid, &status, WUNTRACED);
		}
		clock_gettime(CLOCK_MONOTONIC, &t0);
		fd = open_file();
		clock_gettime(CLOCK_MONOTONIC, &t1);
		if (!strcmp(how, "stop")) {	/* then it runs again: nothing lost */
			printf("stop: the open took %.1f s\n",
			       (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);
			kill(pid, SIGCONT);
			for (int tries = 0; tries < 300; tries++) {	/* 3 s */
				uint64_t first;

				if (pread(fd, &first, sizeof(first), slot_of(0, SLOTS / 2)) ==
				    sizeof(first) && first == SLOTS / 2)
					break;
				usleep(10000);
			}
		}
		for (uint64_t i = 1; i <= SLOTS / 2; i++) {
			if (pread(fd, r, REC, slot_of(0, i)) != REC)
				return 2;
			if (r[0] != i)
				sh->stale++;
		}
		__atomic_store_n(&sh->ready, 2, __ATOMIC_SEQ_CST);
		if (strcmp(how, "kill") &&
		    (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status)))
			return 2;
		printf("%s: %llu stale reads\n", how, (unsigned long long)sh->stale);
		return sh->stale != 0;
	}
	fd = open_file();
	wait_ready();
	if (pid == 0) {		/* writer 0 */
		for (uint64_t i = 1; i <= (uint64_t)rounds; i++) {
			write_one(fd, 0, i, !strcmp(how, "pipe") ? p[1] : -1);
			if (!strcmp(how, "both"))
				check_one(fd, 1, __atomic_load_n(&sh->published[1], __ATOMIC_SEQ_CST));
		}
		close(p[1]);
		_exit(0);
	}
	close(p[1]);
	if (!strcmp(how, "pipe")) {
		uint64_t seq;

		while (read(p[0], &seq, sizeof(seq)) == sizeof(seq))
			check_one(fd, 0, seq);
	} else {
		for (uint64_t i = 1; __atomic_load_n(&sh->published[0], __ATOMIC_SEQ_CST) < (uint64_t)rounds;
		     i++) {
			check_one(fd, 0, __atomic_load_n(&sh->published[0], __ATOMIC_SEQ_CST));
			if (!strcmp(how, "both"))
				write_one(fd, 1, i, -1);
		}
	}
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status))
		return 2;
	printf("%s: %llu stale reads\n", how, (unsigned long long)sh->stale);
	return sh->stale != 0;
}
