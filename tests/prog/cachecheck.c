/*
 * cachecheck - checks of the page cache that need a whole process.
 *
 *	cachecheck CHECK DIR
 *	cachecheck --help	lists the checks (the table in main())
 *
 * Prints "ok" and exits 0, or says what went wrong and exits 1.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sched.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/time.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "folio.h"

#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#else
#define VALGRIND_DISABLE_ERROR_REPORTING
#endif

extern char **environ;

#define FAIL(...) \
	do { \
		fprintf(stderr, "cachecheck: " __VA_ARGS__); \
		fputc('\n', stderr); \
		exit(1); \
	} while (0)
#define CHECK(cond, ...) \
	do { \
		if (!(cond)) \
			FAIL(__VA_ARGS__); \
	} while (0)

static const char *dir;
/* Per thread: the threads of untorn and copies draw numbers at once. */
static __thread unsigned long long rng = 88172645463325252ull;

static unsigned long rnd(unsigned long n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng % n;
}

static char *path(const char *name)
{
	static __thread char buf[4096];	/* forks' writer threads call it at once */

	snprintf(buf, sizeof(buf), "%s/%s", dir, name);
	return buf;
}

/* Whether folio is preloaded (valgrind sets LD_PRELOAD for its own libraries). */
static bool under_folio(void)
{
	const char *preload = getenv("LD_PRELOAD");

	return preload && strstr(preload, "libfolio");
}

/* ---- hits ---- */

#define HOT_SIZE	(1 << 20)

static int hits(void)
{
	static unsigned char model[HOT_SIZE], buf[HOT_SIZE];
	int fd = open(path("hot.dat"), O_RDWR | O_CREAT | O_TRUNC, 0644);

	CHECK(fd >= 0, "open: %s", strerror(errno));
	for (size_t i = 0; i < HOT_SIZE; i++)
		model[i] = rnd(256);
	for (size_t off = 0; off < HOT_SIZE; off += 4096)
		CHECK(write(fd, model + off, 4096) == 4096, "write: %s", strerror(errno));
	CHECK(fsync(fd) == 0, "fsync: %s", strerror(errno));
	for (int i = 0; i < 20000; i++) {
		off_t off = rnd(HOT_SIZE - 100);

		CHECK(pread(fd, buf, 100, off) == 100, "pread: %s", strerror(errno));
		CHECK(memcmp(buf, model + off, 100) == 0, "pread at %ld: wrong data", (long)off);
	}
	for (int i = 0; i < 20000; i++) {
		off_t off = rnd(HOT_SIZE / 4096) * 4096;

		for (int j = 0; j < 4096; j++)
			model[off + j] = rnd(256);
		CHECK(pwrite(fd, model + off, 4096, off) == 4096, "pwrite: %s", strerror(errno));
	}
	CHECK(lseek(fd, 0, SEEK_SET) == 0, "lseek: %s", strerror(errno));
	for (size_t off = 0; off < HOT_SIZE; off += 512)
		CHECK(read(fd, buf + off, 512) == 512, "read at %zu: %s", off, strerror(errno));
	CHECK(read(fd, buf, 1) == 0, "read past the end did not return 0");
	CHECK(memcmp(buf, model, HOT_SIZE) == 0, "read back: wrong data");
	CHECK(lseek(fd, 0, SEEK_CUR) == HOT_SIZE, "position after reading the file");
	CHECK(close(fd) == 0, "close: %s", strerror(errno));
	fd = open(path("hot.dat"), O_RDONLY);
	CHECK(fd >= 0 && pread(fd, buf, HOT_SIZE, 0) == HOT_SIZE, "reopen and read");
	CHECK(memcmp(buf, model, HOT_SIZE) == 0, "reopened: wrong data");
	close(fd);
	return 0;
}

/* ---- untorn ---- */

#define TORN_PAGES	4
static int torn_fd;
static int torn_stop;			/* atomic */
static unsigned long torn_reads, torn_writes;

static void *torn_writer(void *arg)
{
	unsigned char buf[2 * 4096];

	for (unsigned char v = (unsigned char)(long)arg; !__atomic_load_n(&torn_stop, __ATOMIC_RELAXED);
	     v += 2) {
		off_t page = rnd(TORN_PAGES - 1);

		memset(buf, v, sizeof(buf));	/* two pages of one value */
		if (pwrite(torn_fd, buf, sizeof(buf), page * 4096) != sizeof(buf))
			FAIL("pwrite: %s", strerror(errno));
		__atomic_add_fetch(&torn_writes, 1, __ATOMIC_RELAXED);
	}
	return NULL;
}

static void *torn_reader(void *arg)
{
	unsigned char buf[TORN_PAGES * 4096];

	(void)arg;
	while (!__atomic_load_n(&torn_stop, __ATOMIC_RELAXED)) {
		if (pread(torn_fd, buf, sizeof(buf), 0) != sizeof(buf))
			FAIL("pread: %s", strerror(errno));
		for (int p = 0; p < TORN_PAGES; p++)
			for (int i = 1; i < 4096; i++)
				if (buf[p * 4096 + i] != buf[p * 4096])
					FAIL("page %d torn: byte %d is %u, byte 0 is %u", p, i,
					     buf[p * 4096 + i], buf[p * 4096]);
		__atomic_add_fetch(&torn_reads, 1, __ATOMIC_RELAXED);
	}
	return NULL;
}

static int untorn(void)
{
	unsigned char zero[TORN_PAGES * 4096] = { 0 };
	pthread_t t[4];

	torn_fd = open(path("torn.dat"), O_RDWR | O_CREAT | O_TRUNC, 0644);
	CHECK(torn_fd >= 0, "open: %s", strerror(errno));
	CHECK(write(torn_fd, zero, sizeof(zero)) == sizeof(zero), "write");
	for (long i = 0; i < 4; i++)
		pthread_create(&t[i], NULL, i < 2 ? torn_writer : torn_reader, (void *)i);
	/* 1.5 s, longer (up to a minute) on a machine slow enough (a
	 * sanitizer, other load) that 100 of each have not run by then. */
	usleep(1500 * 1000);
	for (int i = 0; i < 585 && (__atomic_load_n(&torn_reads, __ATOMIC_RELAXED) <= 100 ||
				     __atomic_load_n(&torn_writes, __ATOMIC_RELAXED) <= 100); i++)
		usleep(100 * 1000);
	__atomic_store_n(&torn_stop, 1, __ATOMIC_RELAXED);
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	CHECK(torn_reads > 100 && torn_writes > 100, "too few operations: %lu reads, %lu writes",
	      torn_reads, torn_writes);
	close(torn_fd);
	return 0;
}

/* ---- locks ---- */

static int locks(void)
{
	char buf[4096] = { 'x' };
	int fd = open(path("locks.dat"), O_RDWR | O_CREAT | O_TRUNC, 0644), app;

	CHECK(fd >= 0, "open: %s", strerror(errno));
	for (int i = 0; i < 16; i++)		/* 16 extending writes */
		CHECK(write(fd, buf, sizeof(buf)) == sizeof(buf), "write");
	for (int i = 0; i < 100; i++)		/* 100 overwrites within the size */
		CHECK(pwrite(fd, buf, 100, rnd(16 * 4096 - 100)) == 100, "pwrite");
	for (int i = 0; i < 4; i++)		/* 4 that end past it */
		CHECK(pwrite(fd, buf, 100, 16 * 4096 + i * 100 - 50) == 100, "pwrite");
	app = open(path("locks.dat"), O_WRONLY | O_APPEND);
	CHECK(app >= 0, "open O_APPEND");
	for (int i = 0; i < 10; i++)		/* 10 appends */
		CHECK(write(app, buf, 10) == 10, "append");
	CHECK(lseek(fd, 0, SEEK_END) == 16 * 4096 + 350 + 100, "size: %ld",
	      (long)lseek(fd, 0, SEEK_END));
	close(app);
	close(fd);
	return 0;
}

/* ---- visible ---- */

static void child_expects(int in, int out, char what)
{
	char c, buf[8192];

	while (read(in, &c, 1) == 1) {
		int fd = open(path("visible.dat"), O_RDONLY);
		ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof(buf));

		c = 'y';
		for (ssize_t i = 0; i < n; i++)
			if (buf[i] != what)
				c = 'n';
		if (n != sizeof(buf))
			c = 'n';
		close(fd);
		if (write(out, &c, 1) != 1)
			_exit(2);
		what++;
	}
	_exit(0);
}

static char ask_child(int to, int from)
{
	char c = 'g';

	CHECK(write(to, &c, 1) == 1 && read(from, &c, 1) == 1, "child gone");
	return c;
}

static int visible(void)
{
	int to[2], from[2], fd, status;
	char buf[8192];
	pid_t pid;

	CHECK(pipe(to) == 0 && pipe(from) == 0, "pipe");
	pid = fork();
	CHECK(pid >= 0, "fork");
	if (pid == 0) {
		close(to[1]);
		close(from[0]);
		child_expects(to[0], from[1], 'a');
	}
	close(to[0]);
	close(from[1]);
	fd = open(path("visible.dat"), O_RDWR | O_CREAT | O_TRUNC, 0644);
	CHECK(fd >= 0, "open");
	memset(buf, 'a', sizeof(buf));
	CHECK(write(fd, buf, sizeof(buf)) == sizeof(buf), "write");
	CHECK(fsync(fd) == 0, "fsync");
	CHECK(ask_child(to[1], from[0]) == 'y', "after fsync the other process did not see it");
	memset(buf, 'b', sizeof(buf));
	CHECK(pwrite(fd, buf, sizeof(buf), 0) == sizeof(buf), "pwrite");
	CHECK(close(fd) == 0, "close");
	CHECK(ask_child(to[1], from[0]) == 'y', "after close the other process did not see it");
	close(to[1]);
	CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && !WEXITSTATUS(status),
	      "child failed");
	return 0;
}

/* ---- spawn ---- */

static int spawn(void)
{
	char *argv[] = { "sh", "-c", "head -c 4 <&3 > spawn.out", NULL };
	posix_spawn_file_actions_t fa;
	int fd = open(path("spawn.dat"), O_RDWR | O_CREAT | O_TRUNC, 0644), status;
	char buf[16] = { 0 }, got[8] = { 0 };
	pid_t pid;

	CHECK(fd >= 0, "open");
	CHECK(write(fd, "0123456789", 10) == 10, "write");
	CHECK(lseek(fd, 3, SEEK_SET) == 3, "lseek");
	CHECK(read(fd, buf, 2) == 2, "read");		/* now at 5 */
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, fd, 3);
	posix_spawn_file_actions_addchdir_np(&fa, dir);
	CHECK(posix_spawn(&pid, "/bin/sh", &fa, NULL, argv, environ) == 0, "posix_spawn");
	CHECK(waitpid(pid, &status, 0) == pid && status == 0, "child failed");
	fd = open(path("spawn.out"), O_RDONLY);
	CHECK(read(fd, got, sizeof(got)) == 4, "spawn.out");
	CHECK(memcmp(got, "5678", 4) == 0, "the child read '%s', not '5678'", got);
	return 0;
}

/* ---- setid ---- */

static int setid(void)
{
	int fd = open(path("setid.dat"), O_RDWR | O_CREAT | O_TRUNC, 0755);
	struct stat st;

	CHECK(fd >= 0, "open: %s", strerror(errno));
	CHECK(write(fd, "#!/bin/sh\n", 10) == 10, "write");
	CHECK(fchmod(fd, 04755) == 0, "fchmod");
	close(fd);
	fd = open(path("setid.dat"), O_RDWR);
	CHECK(fstat(fd, &st) == 0 && (st.st_mode & S_ISUID), "the bit did not stick");
	CHECK(pwrite(fd, "#", 1, 0) == 1, "pwrite: %s", strerror(errno));
	CHECK(fstat(fd, &st) == 0, "fstat");
	CHECK(!(st.st_mode & S_ISUID), "set-user-ID bit still set after a write");
	close(fd);
	return 0;
}

/* ---- copies ---- */

static int copy_a, copy_b;

static void *copier(void *arg)
{
	int from = arg ? copy_a : copy_b, to = arg ? copy_b : copy_a;

	for (int i = 0; i < 2000; i++) {
		off64_t in = rnd(60000), out = rnd(60000);

		if (copy_file_range(from, &in, to, &out, 1000, 0) < 0)
			FAIL("copy_file_range: %s", strerror(errno));
		if (lseek(from, rnd(60000), SEEK_SET) < 0 || copy_file_range(from, NULL, to, NULL,
									   100, 0) < 0)
			FAIL("copy_file_range at the positions: %s", strerror(errno));
	}
	return NULL;
}

static int copies(void)
{
	static char buf[65536];
	pthread_t t[2];

	copy_a = open(path("a.dat"), O_RDWR | O_CREAT | O_TRUNC, 0644);
	copy_b = open(path("b.dat"), O_RDWR | O_CREAT | O_TRUNC, 0644);
	CHECK(copy_a >= 0 && copy_b >= 0, "open");
	memset(buf, 'a', sizeof(buf));
	CHECK(write(copy_a, buf, sizeof(buf)) == sizeof(buf), "write");
	memset(buf, 'b', sizeof(buf));
	CHECK(write(copy_b, buf, sizeof(buf)) == sizeof(buf), "write");
	pthread_create(&t[0], NULL, copier, (void *)1);
	pthread_create(&t[1], NULL, copier, NULL);
	pthread_join(t[0], NULL);
	pthread_join(t[1], NULL);
	for (int fd = copy_a; fd; fd = fd == copy_a ? copy_b : 0) {
		ssize_t n = pread(fd, buf, sizeof(buf), 0);

		CHECK(n >= 65536, "size %zd", n);
		for (ssize_t i = 0; i < n; i++)
			CHECK(buf[i] == 'a' || buf[i] == 'b', "byte %zd is %d", i, buf[i]);
	}
	return 0;
}

/* ---- bigwrite ---- */

static int bigwrite(void)
{
	static unsigned char buf[1 << 20], back[1 << 20];
	int fd = open(path("big.dat"), O_RDWR | O_CREAT | O_TRUNC, 0644);

	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = rnd(256);
	CHECK(fd >= 0 && write(fd, buf, sizeof(buf)) == sizeof(buf), "write");
	CHECK(pread(fd, back, sizeof(back), 0) == sizeof(back), "pread");
	CHECK(memcmp(buf, back, sizeof(buf)) == 0, "read back before close: wrong data");
	CHECK(close(fd) == 0, "close");
	fd = open(path("big.dat"), O_RDONLY);
	CHECK(fd >= 0 && read(fd, back, sizeof(back)) == sizeof(back), "reopen and read");
	CHECK(memcmp(buf, back, sizeof(buf)) == 0, "read back after close: wrong data");
	return 0;
}

/* ---- bigread ---- */

static int bigread(void)
{
	enum { KSIZE = 1 << 20, SIZE = 3 << 20 };
	static unsigned char model[SIZE], buf[SIZE];
	int fd = open(path("bigread.dat"), O_RDWR | O_CREAT | O_TRUNC, 0644);

	CHECK(fd >= 0, "open");
	for (size_t i = 0; i < KSIZE; i++)
		model[i] = rnd(256);
	CHECK(write(fd, model, KSIZE) == KSIZE && fsync(fd) == 0, "write, fsync");
	close(fd);
	fd = open(path("bigread.dat"), O_RDWR);	/* a fresh cache: nothing cached */
	for (int i = 0; i < 300; i++) {		/* dirty pieces over the kernel's data */
		size_t off = rnd(KSIZE - 5000), len = rnd(5000) + 1;

		for (size_t j = 0; j < len; j++)
			model[off + j] = rnd(256);
		CHECK(pwrite(fd, model + off, len, off) == (ssize_t)len, "pwrite");
	}
	for (size_t i = 2 << 20; i < SIZE; i++)	/* past a 1 MiB hole, dirty */
		model[i] = rnd(256);
	CHECK(pwrite(fd, model + (2 << 20), SIZE - (2 << 20), 2 << 20) == SIZE - (2 << 20),
	      "pwrite past the end");
	for (int i = 0; i < 200; i++) {
		size_t off = rnd(SIZE), len = (64 << 10) + rnd(SIZE / 2);
		ssize_t want = off + len > SIZE ? (ssize_t)(SIZE - off) : (ssize_t)len;

		CHECK(pread(fd, buf, len, off) == want, "pread %zu at %zu", len, off);
		CHECK(memcmp(buf, model + off, want) == 0, "pread %zu at %zu: wrong data", len, off);
	}
	CHECK(lseek(fd, 0, SEEK_SET) == 0, "lseek");
	CHECK(read(fd, buf, SIZE) == SIZE && memcmp(buf, model, SIZE) == 0, "read all: wrong");
	close(fd);
	return 0;
}

/* ---- lockstep ---- */

enum lock_kind { BY_FCNTL, BY_OFD, BY_FLOCK, BY_LOCKF };

static void take(int fd, enum lock_kind kind, bool lock)
{
	struct flock fl = { .l_type = lock ? F_WRLCK : F_UNLCK, .l_whence = SEEK_SET };
	int ret = -1;

	switch (kind) {
	case BY_FCNTL:
		ret = fcntl(fd, F_SETLKW, &fl);
		break;
	case BY_OFD:
		ret = fcntl(fd, F_OFD_SETLKW, &fl);
		break;
	case BY_FLOCK:
		ret = flock(fd, lock ? LOCK_EX : LOCK_UN);
		break;
	case BY_LOCKF:
		ret = lockf(fd, lock ? F_LOCK : F_ULOCK, 0);
		break;
	}
	CHECK(ret == 0, "lock kind %d: %s", kind, strerror(errno));
}

/*
 * One side of the turns: wait for the baton, lock, check the counter the
 * other side left in page 1 (read through a cache that holds it from
 * before), increment it, unlock, pass the baton.
 */
static void turns(int fd, int in, int out, int first, enum lock_kind kind)
{
	for (int round = 0; round < 20; round++) {
		char c;
		int have = -1, want = 2 * round + first;

		if (round || first)
			CHECK(read(in, &c, 1) == 1, "baton");
		take(fd, kind, true);
		CHECK(pread(fd, &have, sizeof(have), 4096) == sizeof(have), "pread");
		CHECK(have == want, "lock kind %d, round %d: read %d, the other side wrote %d",
		      kind, round, have, want);
		have++;
		CHECK(pwrite(fd, &have, sizeof(have), 4096) == sizeof(have), "pwrite");
		take(fd, kind, false);
		CHECK(write(out, "b", 1) == 1, "baton");
	}
}

static int lockstep(void)
{
	for (enum lock_kind kind = BY_FCNTL; kind <= BY_LOCKF; kind++) {
		int to[2], from[2], fd, zero = 0, status;
		pid_t pid;

		fd = open(path("lockstep.dat"), O_RDWR | O_CREAT | O_TRUNC, 0644);
		CHECK(fd >= 0 && pwrite(fd, &zero, sizeof(zero), 4096) == sizeof(zero) &&
		      close(fd) == 0, "create");
		CHECK(pipe(to) == 0 && pipe(from) == 0, "pipe");
		pid = fork();
		if (pid == 0) {	/* its own open, its own cache */
			fd = open(path("lockstep.dat"), O_RDWR);
			turns(fd, to[0], from[1], 1, kind);
			_exit(0);
		}
		fd = open(path("lockstep.dat"), O_RDWR);
		turns(fd, from[0], to[1], 0, kind);
		CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && !WEXITSTATUS(status),
		      "the other side failed (lock kind %d)", kind);
		close(fd);
		close(to[0]);
		close(to[1]);
		close(from[0]);
		close(from[1]);
	}
	return 0;
}

/* ---- interleave ---- */

/*
 * Write alternate blocks, then wait for @go before closing (and so writing
 * back), then post @done: both processes hold every page before either
 * writes back.
 */
static void write_blocks(int parity, int done, int go)
{
	int fd = open(path("interleave.dat"), O_RDWR);
	char block[512], c;

	CHECK(fd >= 0, "open");
	memset(block, 'a' + parity, sizeof(block));
	for (int i = parity; i < 256; i += 2)
		CHECK(pwrite(fd, block, sizeof(block), i * 512) == sizeof(block), "pwrite");
	CHECK(write(done, "w", 1) == 1 && read(go, &c, 1) == 1, "pipe");
	CHECK(close(fd) == 0, "close");
	CHECK(write(done, "c", 1) == 1, "pipe");
}

static int interleave(void)
{
	static char buf[256 * 512];
	int fd = open(path("interleave.dat"), O_RDWR | O_CREAT | O_TRUNC, 0644), status;
	int to[2], from[2];
	char c;
	pid_t pid;

	CHECK(fd >= 0 && pwrite(fd, buf, sizeof(buf), 0) == sizeof(buf) && close(fd) == 0,
	      "create");
	CHECK(pipe(to) == 0 && pipe(from) == 0, "pipe");
	pid = fork();
	if (pid == 0) {
		write_blocks(1, from[1], to[0]);
		_exit(0);
	}
	CHECK(read(from[0], &c, 1) == 1, "child wrote");
	fd = open(path("interleave.dat"), O_RDWR);
	memset(buf, 'a', 512);
	for (int i = 0; i < 256; i += 2)
		CHECK(pwrite(fd, buf, 512, i * 512) == 512, "pwrite");
	CHECK(write(to[1], "g", 1) == 1 && read(from[0], &c, 1) == 1, "child closed");
	CHECK(close(fd) == 0, "close");
	CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && !WEXITSTATUS(status),
	      "child failed");
	fd = open(path("interleave.dat"), O_RDONLY);
	CHECK(fd >= 0 && pread(fd, buf, sizeof(buf), 0) == sizeof(buf), "read back");
	for (int i = 0; i < 256; i++)
		CHECK(buf[i * 512] == 'a' + i % 2 && buf[i * 512 + 511] == 'a' + i % 2,
		      "block %d is '%c'", i, buf[i * 512] ? buf[i * 512] : '0');
	close(fd);
	return 0;
}

/* ---- enospc ---- */

static unsigned char pattern_at(size_t i)
{
	return (unsigned char)(i * 131 + (i >> 12) * 7);
}

/* More than the 512 KiB left beside the filler, less than the 1 MiB without. */
#define ENOSPC_TOTAL	(768 << 10)

static int enospc(void)
{
	static unsigned char buf[65536], back[ENOSPC_TOTAL + 65536];
	int fill = open(path("filler"), O_WRONLY | O_CREAT | O_TRUNC, 0644);
	int fd = open(path("full.dat"), O_RDWR | O_CREAT | O_TRUNC, 0644);
	size_t accepted = 0;
	int ret, err;

	CHECK(fill >= 0 && fd >= 0, "open: %s", strerror(errno));
	memset(buf, 'f', sizeof(buf));		/* half the space goes to another file */
	for (int i = 0; i < 8; i++)
		CHECK(write(fill, buf, sizeof(buf)) == sizeof(buf), "filler: %s", strerror(errno));
	close(fill);
	while (accepted < ENOSPC_TOTAL) {
		ssize_t n;

		for (size_t i = 0; i < sizeof(buf); i++)
			buf[i] = pattern_at(accepted + i);
		n = write(fd, buf, sizeof(buf));
		if (n < 0) {
			CHECK(errno == ENOSPC, "write failed with %s", strerror(errno));
			break;
		}
		accepted += n;
		if (n < (ssize_t)sizeof(buf))
			break;
	}
	ret = fsync(fd);
	err = errno;
	if (ret == 0) {			/* natively the writes failed instead */
		CHECK(accepted < ENOSPC_TOTAL, "768 KiB fitted beside 512 KiB in 1 MiB?");
	} else {			/* under folio: at fsync, then it fits */
		CHECK(err == ENOSPC, "fsync failed with %s, not ENOSPC", strerror(err));
		CHECK(accepted == ENOSPC_TOTAL, "a write failed before fsync");
		/* Until a write-back succeeds: no new space, overwrites go on. */
		for (size_t i = 0; i < sizeof(buf); i++)
			buf[i] = pattern_at(accepted + i);
		CHECK(pwrite(fd, buf, sizeof(buf), accepted) == -1 && errno == ENOSPC,
		      "an extending write after ENOSPC did not fail at once");
		CHECK(pwrite(fd, back, 0, accepted) == 0, "a write of nothing");
		for (size_t i = 0; i < 100; i++)
			buf[i] = pattern_at(i);
		CHECK(pwrite(fd, buf, 100, 0) == 100, "an overwrite after ENOSPC: %s",
		      strerror(errno));
		CHECK(unlink(path("filler")) == 0, "unlink");
		CHECK(fsync(fd) == 0, "fsync after space was freed: %s", strerror(errno));
		for (size_t i = 0; i < 4096; i++)
			buf[i] = pattern_at(accepted + i);
		CHECK(write(fd, buf, 4096) == 4096, "an extending write once space is back: %s",
		      strerror(errno));
		accepted += 4096;
		CHECK(fsync(fd) == 0, "fsync: %s", strerror(errno));
	}
	/* Every byte the kernel has is the byte that was written. */
	{
		int raw = open(path("full.dat"), O_RDONLY);
		ssize_t n = pread(raw, back, sizeof(back), 0);

		CHECK(n >= 0, "pread");
		for (ssize_t i = 0; i < n; i++)
			CHECK(back[i] == pattern_at(i), "byte %zd of %zu is wrong", i, accepted);
		CHECK((size_t)n == accepted, "the file has %zd of the %zu bytes written", n,
		      accepted);
		close(raw);
	}
	close(fd);
	return 0;
}

/* ---- errors ---- */

static void set_fault(int err)
{
	const char *ctl = getenv("FOLIO_TEST_FAULTS");
	FILE *f;

	CHECK(ctl, "FOLIO_TEST_FAULTS is not set: run under libfolio-faults.so");
	f = fopen(ctl, "w");
	CHECK(f && fprintf(f, "%d\n", err) > 0 && fclose(f) == 0, "cannot set the fault switch");
}

static void fill_pattern(unsigned char *buf, size_t len, size_t at)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = pattern_at(at + i);
}

/* Does the kernel have @len bytes of @buf at @off in @fd's file?  Read
 * past folio with the system call. */
static bool kernel_has(int fd, const void *buf, size_t len, off_t off)
{
	static unsigned char back[65536];

	return len <= sizeof(back) && syscall(SYS_pread64, fd, back, len, off) == (long)len &&
	       memcmp(back, buf, len) == 0;
}

/* The kernel's copy of the file: read past folio with the system call. */
static void check_kernel_copy(const char *name, size_t len)
{
	static unsigned char back[1 << 20];
	int fd = open(path(name), O_RDONLY);
	long n = syscall(SYS_pread64, fd, back, sizeof(back), 0);

	CHECK(n == (long)len, "the kernel has %ld of %zu bytes", n, len);
	for (long i = 0; i < n; i++)
		CHECK(back[i] == pattern_at(i), "byte %ld in the kernel is wrong", i);
	close(fd);
}

static int errors(void)
{
	static unsigned char buf[1 << 20];
	int a = open(path("err.dat"), O_RDWR | O_CREAT | O_TRUNC, 0644);
	int b = open(path("err.dat"), O_RDWR), c, d;
	size_t len = 10000, more;
	ssize_t n;

	CHECK(a >= 0 && b >= 0, "open: %s", strerror(errno));
	set_fault(EIO);		/* first: the flusher must not write it before */
	fill_pattern(buf, len, 0);
	CHECK(write(a, buf, len) == (ssize_t)len, "write");
	CHECK(fsync(a) == -1 && errno == EIO, "fsync during EIO did not say EIO");
	c = open(path("err.dat"), O_RDWR);	/* after the error was reported */
	fill_pattern(buf, 100, len);
	CHECK(write(a, buf, 100) == 100, "a write after EIO: %s", strerror(errno));
	len += 100;
	set_fault(0);
	CHECK(fsync(a) == 0, "fsync of the description told already: %s", strerror(errno));
	CHECK(fsync(b) == -1 && errno == EIO, "the other description was not told of EIO");
	CHECK(fsync(b) == 0, "told twice: %s", strerror(errno));
	CHECK(fsync(c) == 0, "a description opened after the report was told: %s",
	      strerror(errno));
	check_kernel_copy("err.dat", len);

	/* An error nobody was told of reaches a description opened after it. */
	set_fault(EIO);
	fill_pattern(buf, 100, len);
	CHECK(write(a, buf, 100) == 100, "write");
	len += 100;
	usleep(400 * 1000);			/* the flusher tries (FOLIO_FLUSH_INTERVAL=50) */
	d = open(path("err.dat"), O_RDWR);
	set_fault(0);
	CHECK(close(d) == -1 && errno == EIO, "the flusher's error did not reach a new open");
	/* A sync_file_range() that does not wait neither reports nor consumes it. */
	CHECK(sync_file_range(a, 0, 0, SYNC_FILE_RANGE_WRITE) == 0,
	      "sync_file_range(SYNC_FILE_RANGE_WRITE) reported an error");
	CHECK(fsync(a) == -1 && errno == EIO, "the flusher's error did not reach the writer");
	CHECK(fsync(a) == 0 && fsync(b) == -1 && fsync(b) == 0 && fsync(c) == -1 &&
	      close(c) == 0, "each description once");
	check_kernel_copy("err.dat", len);

	/* At the dirty limit (FOLIO_DIRTY_LIMIT=64K) with write-back failing:
	 * an error, not a wait without end. */
	set_fault(EIO);
	more = 0;
	do {
		fill_pattern(buf, 4096, len + more);
		n = write(a, buf, 4096);
		if (n > 0)
			more += n;
	} while (n > 0 && more < sizeof(buf));
	CHECK(n == -1 && errno == EIO, "1 MiB of writes at a 64K dirty limit while write-back "
	      "fails: %s", n < 0 ? strerror(errno) : "no error");
	len += more;
	set_fault(0);
	CHECK(fsync(a) == -1 && errno == EIO, "fsync after the writers' error");
	CHECK(fsync(a) == 0, "fsync once the fault is gone: %s", strerror(errno));
	check_kernel_copy("err.dat", len);
	close(a);
	close(b);

	/* Data that can never be written is named at exit (the test reads
	 * stderr): 5000 bytes, no close. */
	set_fault(EIO);
	a = open(path("lost.dat"), O_RDWR | O_CREAT | O_TRUNC, 0644);
	CHECK(write(a, buf, 5000) == 5000, "write");
	return 0;
}

/* ---- dirtylimit ---- */

#define DL_THREADS	4
#define DL_REGION	(4 << 20)
#define DL_WRITE	(16 << 10)

static int dl_fd;

static void *dl_writer(void *arg)
{
	static unsigned char bufs[DL_THREADS][DL_WRITE];
	long t = (long)arg;
	unsigned char *buf = bufs[t];

	for (size_t done = 0; done < DL_REGION; done += DL_WRITE) {
		size_t at = t * DL_REGION + done;

		fill_pattern(buf, DL_WRITE, at);
		CHECK(pwrite(dl_fd, buf, DL_WRITE, at) == DL_WRITE, "pwrite: %s", strerror(errno));
	}
	return NULL;
}

static int dirtylimit(void)
{
	static unsigned char back[DL_WRITE];
	pthread_t threads[DL_THREADS];

	dl_fd = open(path("dl.dat"), O_RDWR | O_CREAT | O_TRUNC, 0644);
	CHECK(dl_fd >= 0 && ftruncate(dl_fd, DL_THREADS * DL_REGION) == 0, "open");
	for (long t = 0; t < DL_THREADS; t++)
		pthread_create(&threads[t], NULL, dl_writer, (void *)t);
	for (int t = 0; t < DL_THREADS; t++)
		pthread_join(threads[t], NULL);
	CHECK(close(dl_fd) == 0, "close: %s", strerror(errno));
	dl_fd = open(path("dl.dat"), O_RDONLY);
	for (size_t at = 0; at < DL_THREADS * DL_REGION; at += DL_WRITE) {
		CHECK(syscall(SYS_pread64, dl_fd, back, DL_WRITE, at) == DL_WRITE, "pread");
		for (size_t i = 0; i < DL_WRITE; i++)
			CHECK(back[i] == pattern_at(at + i), "byte %zu is wrong", at + i);
	}
	close(dl_fd);
	return 0;
}

/* ---- seqwrite, stream ---- */

static int seqwrite(void)
{
	static char buf[65536];
	int fd = open(path("seq.dat"), O_WRONLY | O_CREAT | O_TRUNC, 0644);

	memset(buf, 's', sizeof(buf));
	for (int i = 0; i < 1024; i++)
		CHECK(write(fd, buf, sizeof(buf)) == sizeof(buf), "write: %s", strerror(errno));
	CHECK(close(fd) == 0, "close: %s", strerror(errno));
	return 0;
}

/* Record i: i and the CLOCK_MONOTONIC milliseconds it was written at. */
static int stream(void)
{
	int fd = open(path("log.dat"), O_WRONLY | O_CREAT | O_TRUNC, 0644);

	CHECK(fd >= 0, "open");
	for (uint64_t i = 0;; i++) {
		uint64_t rec[8] = { i };
		struct timespec ts;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		rec[1] = ts.tv_sec * 1000ull + ts.tv_nsec / 1000000;
		CHECK(write(fd, rec, sizeof(rec)) == sizeof(rec), "write");
		usleep(500);
	}
}

/* ---- forks ---- */

static int forks_stop, forks_writing;
/* Under ThreadSanitizer 40 took 43 s, and timed out beside other tests. */
#ifdef __SANITIZE_THREAD__
#define FORKS	10
#else
#define FORKS	40
#endif

static void *fork_writer(void *arg)
{
	static unsigned char bufs[2][4096];
	unsigned char *buf = bufs[(long)arg];
	int fd = open(path((long)arg ? "fw1.dat" : "fw0.dat"), O_RDWR | O_CREAT | O_TRUNC, 0644);
	unsigned long long x = 1234567ull * ((long)arg + 1);

	CHECK(fd >= 0, "open");
	while (!__atomic_load_n(&forks_stop, __ATOMIC_RELAXED)) {
		size_t at;

		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		at = (x % 256) * 4096;
		fill_pattern(buf, 4096, at);
		CHECK(pwrite(fd, buf, 4096, at) == 4096, "pwrite: %s", strerror(errno));
		__atomic_or_fetch(&forks_writing, 1 << (long)arg, __ATOMIC_RELEASE);
	}
	CHECK(close(fd) == 0, "close");
	return NULL;
}

static int forks(void)
{
	static unsigned char buf[65536];
	pthread_t threads[2];

	for (long t = 0; t < 2; t++)
		pthread_create(&threads[t], NULL, fork_writer, (void *)t);
#ifdef __SANITIZE_ADDRESS__
	/*
	 * GCC 12's ASan does not lock its allocator around fork() as glibc's
	 * malloc does: a child that allocates while another thread of the
	 * parent was allocating at the fork waits forever.  Each child's
	 * open() allocates under folio, so the first fork waits until the
	 * writers' open() and the start of the flusher are done.
	 */
	while (__atomic_load_n(&forks_writing, __ATOMIC_ACQUIRE) != 3)
		usleep(1000);
#endif
	for (int i = 0; i < FORKS; i++) {
		char name[32];
		int status;
		pid_t pid;

		snprintf(name, sizeof(name), "child%d.dat", i);
		pid = fork();
		CHECK(pid >= 0, "fork: %s", strerror(errno));
		if (pid == 0) {		/* caches a file of its own, then exits */
			int fd = open(path(name), O_RDWR | O_CREAT | O_TRUNC, 0644);

			fill_pattern(buf, sizeof(buf), 0);
			CHECK(fd >= 0 && write(fd, buf, sizeof(buf)) == sizeof(buf), "child write");
			usleep(2000);		/* the child's own flusher runs */
			exit(0);
		}
		CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
		      WEXITSTATUS(status) == 0, "child %d failed: status 0x%x", i, status);
	}
	__atomic_store_n(&forks_stop, 1, __ATOMIC_RELAXED);
	for (int t = 0; t < 2; t++)
		pthread_join(threads[t], NULL);
	for (int i = 0; i < FORKS; i++) {
		char name[32];
		int fd;

		snprintf(name, sizeof(name), "child%d.dat", i);
		fd = open(path(name), O_RDONLY);
		CHECK(fd >= 0, "open %s", name);
		CHECK(syscall(SYS_pread64, fd, buf, sizeof(buf), 0) == sizeof(buf), "%s is short",
		      name);
		for (size_t j = 0; j < sizeof(buf); j++)
			CHECK(buf[j] == pattern_at(j), "%s: byte %zu is wrong", name, j);
		close(fd);
	}
	return 0;
}

/* ---- idle ---- */

static int threads_now(void)
{
	char buf[4096];
	FILE *f = fopen("/proc/self/status", "r");
	int n = -1;

	while (f && fgets(buf, sizeof(buf), f))
		if (sscanf(buf, "Threads: %d", &n) == 1)
			break;
	if (f)
		fclose(f);
	return n;
}

/* ThreadSanitizer starts its background thread at the first pthread_create():
 * start it before counting. */
static void *no_op(void *arg)
{
	return arg;
}

static void start_sanitizer_threads(void)
{
	pthread_t thread;

	if (pthread_create(&thread, NULL, no_op, NULL) == 0)
		pthread_join(thread, NULL);
}

/*
 * threads_now() once it stops moving: a thread that pthread_join() saw end
 * still counts in /proc a moment later (make test failed once so).
 */
static int settled_threads(void)
{
	int n = threads_now(), again;

	while (usleep(10000), (again = threads_now()) != n)
		n = again;
	return n;
}

static int idle(void)
{
	static unsigned char buf[4096];
	bool cached = under_folio();
	int base, fd;

	/* A sanitizer's or valgrind's own threads count too. */
	start_sanitizer_threads();
	base = settled_threads();
	fd = open(path("idle.dat"), O_RDWR | O_CREAT | O_TRUNC, 0644);

	CHECK(fd >= 0, "open");
	fill_pattern(buf, sizeof(buf), 0);
	CHECK(write(fd, buf, sizeof(buf)) == sizeof(buf) && fsync(fd) == 0, "write");
	CHECK(threads_now() == base + cached, "%d threads after a write", threads_now());
	sleep(6);	/* open for writing: it stays */
	CHECK(threads_now() == base + cached, "%d threads with a file open for writing",
	      threads_now());
	close(fd);
	sleep(6);
	CHECK(threads_now() == base, "%d threads after 6 s with nothing dirty or open",
	      threads_now());
	fd = open(path("idle.dat"), O_RDWR);
	CHECK(fd >= 0 && threads_now() == base, "an open started a thread");
	fill_pattern(buf, sizeof(buf), 4096);
	CHECK(pwrite(fd, buf, sizeof(buf), 4096) == sizeof(buf), "write");
	CHECK(threads_now() == base + cached, "%d threads after a new write", threads_now());
	usleep(1500 * 1000);		/* FOLIO_FLUSH_INTERVAL is 1 s */
	CHECK(kernel_has(fd, buf, sizeof(buf), 4096), "the restarted flusher did not write back");
	close(fd);
	return 0;
}

/* ---- linger ---- */

static int churn_stop;

/* Opens and closes another tracked file: the last close of a file is when
 * folio lets go of the files nothing holds. */
static void *open_close_churn(void *arg)
{
	char name[4096 + 16];	/* not path(): its buffer is the main thread's */

	(void)arg;
	snprintf(name, sizeof(name), "%s/other.dat", dir);
	while (!__atomic_load_n(&churn_stop, __ATOMIC_RELAXED)) {
		int fd = open(name, O_RDWR | O_CREAT, 0644);

		CHECK(fd >= 0 && close(fd) == 0, "churn: open or close of other.dat: %s",
		      strerror(errno));
	}
	return NULL;
}

static int linger(void)
{
	static unsigned char buf[5000], back[5000];
	pthread_t churner;
	int fd, raw;

	pthread_create(&churner, NULL, open_close_churn, NULL);
	set_fault(EIO);
	fd = open(path("linger.dat"), O_RDWR | O_CREAT | O_TRUNC, 0644);
	fill_pattern(buf, sizeof(buf), 0);
	CHECK(fd >= 0 && write(fd, buf, sizeof(buf)) == sizeof(buf), "write");
	CHECK(close(fd) == -1 && errno == EIO, "the last close did not report EIO");
	usleep(1000 * 1000);		/* retries fail beside the churn's closes */
	set_fault(0);
	/* The flusher retries, backing off from 0.1 s: give it 5 s. */
	raw = open(path("linger.dat"), O_RDONLY);
	for (int i = 0; i < 100; i++) {
		if (kernel_has(raw, buf, sizeof(buf), 0))
			break;
		usleep(50 * 1000);
	}
	CHECK(raw >= 0 && kernel_has(raw, buf, sizeof(buf), 0),
	      "data of a closed file was not written in 5 s once write-back worked");
	close(raw);
	__atomic_store_n(&churn_stop, 1, __ATOMIC_RELAXED);
	pthread_join(churner, NULL);

	/* Still failing: a new open of the file finds the data. */
	set_fault(EIO);
	fd = open(path("linger2.dat"), O_RDWR | O_CREAT | O_TRUNC, 0644);
	CHECK(fd >= 0 && write(fd, buf, sizeof(buf)) == sizeof(buf), "write");
	CHECK(close(fd) == -1 && errno == EIO, "the last close did not report EIO");
	fd = open(path("linger2.dat"), O_RDONLY);
	memset(back, 0, sizeof(back));
	CHECK(fd >= 0 && read(fd, back, sizeof(back)) == sizeof(back) &&
	      memcmp(back, buf, sizeof(back)) == 0, "a new open lost the unwritten data");
	close(fd);
	set_fault(0);
	fd = open(path("linger2.dat"), O_RDWR);
	/* A retry of the flusher's may have failed since, unseen: reported
	 * once to this new open, as the kernel's errseq does. */
	CHECK(fd >= 0 && (fsync(fd) == 0 || errno == EIO) && fsync(fd) == 0,
	      "fsync once write-back works: %s", strerror(errno));
	CHECK(kernel_has(fd, buf, sizeof(buf), 0), "fsync did not write the kept data");
	close(fd);
	return 0;
}

/* ---- syncwrite ---- */

static int writer_done;

static void *mib_appender(void *arg)
{
	static char buf[1 << 20];
	int fd = open(path("sw.dat"), O_WRONLY | O_CREAT | O_APPEND, 0644);

	(void)arg;
	memset(buf, 'a', sizeof(buf));
	for (int i = 0; i < 32; i++)
		CHECK(write(fd, buf, sizeof(buf)) == sizeof(buf), "write: %s", strerror(errno));
	__atomic_store_n(&writer_done, 1, __ATOMIC_RELEASE);
	for (;;)		/* on until the process exits */
		CHECK(write(fd, buf, sizeof(buf)) == sizeof(buf), "write: %s", strerror(errno));
	return NULL;
}

static int syncwrite(void)
{
	pthread_t writer;

	pthread_create(&writer, NULL, mib_appender, NULL);
	while (!__atomic_load_n(&writer_done, __ATOMIC_ACQUIRE))
		sync();
	puts("ok");
	fflush(stdout);
	exit(0);		/* with the writer in the middle of a write */
}

/* ---- execlost ---- */

static int execlost(void)
{
	static unsigned char buf[3000];
	int fd;

	set_fault(EIO);
	fd = open(path("execlost.dat"), O_RDWR | O_CREAT | O_TRUNC, 0644);
	CHECK(fd >= 0 && write(fd, buf, sizeof(buf)) == sizeof(buf), "write");
	execl("/bin/true", "true", (char *)NULL);
	FAIL("execl: %s", strerror(errno));
}

/* ---- stats ---- */

/* Both files: 10 extending writes, 20 overwrites, 50 reads; one fsync. */
static void stats_workload(int fd)
{
	char buf[4096] = { 's' };

	for (int i = 0; i < 10; i++)
		CHECK(write(fd, buf, sizeof(buf)) == sizeof(buf), "write");
	for (int i = 0; i < 20; i++)
		CHECK(pwrite(fd, buf, 100, i * 1000) == 100, "pwrite");
	CHECK(fsync(fd) == 0, "fsync");
	for (int i = 0; i < 50; i++)
		CHECK(pread(fd, buf, 100, i * 800) == 100, "pread");
}

#define EXPECT_COUNT(st, field, want) \
	CHECK((st).field == (want), #field " %llu, expected %llu", \
	      (unsigned long long)(st).field, (unsigned long long)(want))

static int stats(void)
{
	int fd = open(path("stats.dat"), O_RDWR | O_CREAT | O_TRUNC, 0644);
	int other = open(path("other.dat"), O_RDWR | O_CREAT | O_TRUNC, 0644);
	int plain = open(path("stats.txt"), O_RDWR | O_CREAT | O_TRUNC, 0644);
	struct folio_stats st, all;
	char buf[100];

	CHECK(fd >= 0 && other >= 0 && plain >= 0, "open: %s", strerror(errno));
	stats_workload(fd);
	stats_workload(other);
	CHECK(write(plain, "not tracked\n", 12) == 12, "write");
	close(other);		/* its counts stay in the totals */
	if (!folio_stats) {	/* natively, or built without folio */
		CHECK(!folio_flush && !folio_fd_tracked, "half of the API is there");
		return 0;
	}
	CHECK(folio_fd_tracked(fd) == 1 && folio_fd_tracked(plain) == 0 &&
	      folio_fd_tracked(-1) == 0 && folio_fd_tracked(9999) == 0, "folio_fd_tracked");

	CHECK(folio_stats(fd, &st, sizeof(st)) == 0, "folio_stats: %s", strerror(errno));
	EXPECT_COUNT(st, writes, 30);
	EXPECT_COUNT(st, write_bytes, 10 * 4096 + 20 * 100);
	EXPECT_COUNT(st, lock_shared, 20);
	EXPECT_COUNT(st, lock_exclusive, 10);
	EXPECT_COUNT(st, lock_retaken, 0);
	EXPECT_COUNT(st, reads, 50);
	EXPECT_COUNT(st, read_bytes, 50 * 100);
	EXPECT_COUNT(st, read_hits, 50);	/* every page was written here */
	EXPECT_COUNT(st, read_misses, 0);
	EXPECT_COUNT(st, fsyncs, 1);
	EXPECT_COUNT(st, dirty_peak_bytes, 10 * 4096);
	EXPECT_COUNT(st, writeback_bytes, 10 * 4096);	/* one run, at the fsync */
	EXPECT_COUNT(st, writeback_calls, 1);
	EXPECT_COUNT(st, writeback_errors, 0);
	CHECK(st.fsync_ns > 0, "fsync_ns 0");

	CHECK(folio_stats(-1, &all, sizeof(all)) == 0, "folio_stats(-1)");
	EXPECT_COUNT(all, writes, 2 * st.writes);
	EXPECT_COUNT(all, reads, 2 * st.reads);
	EXPECT_COUNT(all, fsyncs, 2);
	EXPECT_COUNT(all, writeback_bytes, 2 * st.writeback_bytes);

	/* An old caller's smaller struct: only its fields are written. */
	memset(&all, 0xff, sizeof(all));
	CHECK(folio_stats(fd, &all, offsetof(struct folio_stats, read_hits)) == 0, "small");
	CHECK(all.reads == 50 && all.read_hits == UINT64_MAX, "wrote past the size given");

	errno = 0;
	CHECK(folio_stats(plain, &st, sizeof(st)) == -1 && errno == EBADF, "untracked fd");
	CHECK(folio_stats(9999, &st, sizeof(st)) == -1 && errno == EBADF, "bad fd");

	/* folio_flush(): the kernel has the data, without an fsync. */
	CHECK(pwrite(fd, "flushed", 7, 5) == 7, "pwrite");
	CHECK(folio_flush(fd) == 0 && folio_flush(plain) == 0 && folio_flush(-1) == 0,
	      "folio_flush: %s", strerror(errno));
	CHECK(syscall(SYS_pread64, fd, buf, 7, 5) == 7 && memcmp(buf, "flushed", 7) == 0,
	      "the kernel does not have what folio_flush() wrote back");
	CHECK(folio_stats(fd, &st, sizeof(st)) == 0 && st.writeback_calls == 2 &&
	      st.fsyncs == 1, "folio_flush: %llu write-back calls, %llu fsyncs",
	      (unsigned long long)st.writeback_calls, (unsigned long long)st.fsyncs);
	close(fd);
	close(plain);
	return 0;
}

/* The same, then the program closes its stderr and a file takes fd 2. */
static int stats_closed(void)
{
	int fd;

	stats();
	close(STDERR_FILENO);
	fd = open(path("fd2.txt"), O_WRONLY | O_CREAT | O_TRUNC, 0644);
	CHECK(fd == STDERR_FILENO, "fd %d", fd);
	CHECK(write(fd, "the program's own\n", 18) == 18, "write");
	return 0;
}

/* ---- closerace ---- */

static int race_fd;

/* Its buffer in static TLS: 256 KiB more in every thread's stack, folio's
 * flusher's too (which must start all the same). */
static void *miss_reader(void *arg)
{
	static __thread char buf[256 << 10];

	(void)arg;
	for (int i = 0; i < 64; i++)
		if (pread(race_fd, buf, sizeof(buf), (off_t)(i % 32) * sizeof(buf)) < 0)
			break;		/* EBADF once closed */
	return NULL;
}

static int closerace(void)
{
	static char chunk[1 << 20];

	for (int round = 0; round < 20; round++) {
		int fd = open(path("race.dat"), O_RDWR | O_CREAT, 0644);
		pthread_t readers[2];

		CHECK(fd >= 0, "open");
		if (round == 0)
			for (int i = 0; i < 8; i++)
				CHECK(write(fd, chunk, sizeof(chunk)) == sizeof(chunk), "write");
		race_fd = fd;
		for (int i = 0; i < 2; i++)
			pthread_create(&readers[i], NULL, miss_reader, NULL);
		usleep(round * 50);
		close(fd);
		for (int i = 0; i < 2; i++)
			pthread_join(readers[i], NULL);
	}
	return 0;
}

/* ---- fdnumbers ---- */

static int sampled_fd;

static void *sampled_reads(void *arg)
{
	char buf[16];

	(void)arg;
	for (int i = 0; i < 300; i++)
		CHECK(pread(sampled_fd, buf, sizeof(buf), 0) == sizeof(buf), "pread");
	return NULL;
}

static void sample_in_a_thread(int fd)
{
	pthread_t thread;

	sampled_fd = fd;
	pthread_create(&thread, NULL, sampled_reads, NULL);
	pthread_join(thread, NULL);
}

static int fdnumbers(void)
{
	char buf[16] = "0123456789abcdef";
	int fd = open(path("numbers.dat"), O_RDWR | O_CREAT | O_TRUNC, 0644), mine, status;
	pid_t pid;

	CHECK(fd == 3, "the first open returned fd %d, not 3", fd);
	CHECK(write(fd, buf, sizeof(buf)) == sizeof(buf), "write");
	sample_in_a_thread(fd);
	closefrom(3);
	mine = open(path("mine.txt"), O_RDWR | O_CREAT | O_TRUNC, 0644);
	CHECK(mine == 3, "after closefrom(3) open returned fd %d, not 3", mine);
	CHECK(dup2(mine, 4) == 4, "dup2");
	CHECK(write(mine, "abc", 3) == 3, "write");
	fd = open(path("numbers.dat"), O_RDWR);
	CHECK(fd == 5, "open returned fd %d, not 5", fd);
	sample_in_a_thread(fd);
	pid = fork();
	if (pid == 0) {
		sample_in_a_thread(fd);
		_exit(0);
	}
	CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && !WEXITSTATUS(status),
	      "child");
	CHECK(lseek(mine, 0, SEEK_CUR) == 3 && pread(mine, buf, sizeof(buf), 0) == 3 &&
	      !memcmp(buf, "abc", 3), "the program's file was touched");
	return 0;
}

/* ---- sigopen ---- */

static double now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void open_in_handler(int sig)
{
	int saved_errno = errno;
	int fd = open(path("handler.dat"), O_RDWR | O_CREAT, 0644);

	(void)sig;
	if (fd >= 0)
		close(fd);
	errno = saved_errno;
}

static int sigopen(void)
{
	struct itimerval every = { { 0, 200 }, { 0, 200 } };
	double start = now_seconds();
	struct folio_stats st;
	int keep[64];

	/* Many open files: folio_stats(-1) holds its lock a while. */
	for (int i = 0; i < 64; i++) {
		char name[32];

		snprintf(name, sizeof(name), "keep%d.dat", i);
		keep[i] = open(path(name), O_RDWR | O_CREAT, 0644);
		CHECK(keep[i] >= 0, "open");
	}
	signal(SIGALRM, open_in_handler);
	setitimer(ITIMER_REAL, &every, NULL);
	/* 20000 calls natively take ~1 s; under valgrind the handler alone
	 * takes ~200 us, so stop after 10 s (a deadlock still hangs). */
	for (int i = 0; i < 20000 && now_seconds() - start < 10; i++)
		if (folio_stats)
			folio_stats(-1, &st, sizeof(st));
		else
			sched_yield();
	signal(SIGALRM, SIG_IGN);
	for (int i = 0; i < 64; i++)
		close(keep[i]);
	return 0;
}

/* ---- sigalloc ---- */

static int handler_fd;
static volatile sig_atomic_t handler_writes, handler_failed;
/*
 * Under valgrind a handler's run takes longer than the timer's 100 us, and
 * the program did nothing but run handlers (34 minutes, a file growing all
 * the while): after 10 s the handler stops the timer.
 */
static double handler_until;

static void write_new_page(int sig)
{
	static char page[4096] = { 'h' };
	static const struct itimerval off;
	int saved_errno = errno;

	(void)sig;
	if (now_seconds() > handler_until) {
		setitimer(ITIMER_REAL, &off, NULL);
		return;
	}
	if (pwrite(handler_fd, page, sizeof(page), (off_t)handler_writes * sizeof(page)) !=
	    sizeof(page))
		handler_failed = 1;
	handler_writes++;
	errno = saved_errno;
}

static int sigalloc(void)
{
	struct itimerval every = { { 0, 100 }, { 0, 100 } }, off = { { 0, 0 }, { 0, 0 } };
	static char page[4096] = { 'm' };
	int fd = open(path("main.dat"), O_RDWR | O_CREAT | O_TRUNC, 0644);

	handler_fd = open(path("handler.dat"), O_RDWR | O_CREAT | O_TRUNC, 0644);
	CHECK(fd >= 0 && handler_fd >= 0, "open");
	handler_until = now_seconds() + 10;
	signal(SIGALRM, write_new_page);
	setitimer(ITIMER_REAL, &every, NULL);
	for (int i = 0; i < 20000; i++)
		CHECK(pwrite(fd, page, sizeof(page), (off_t)(i % 4096) * sizeof(page)) ==
		      sizeof(page), "pwrite: %s", strerror(errno));
	setitimer(ITIMER_REAL, &off, NULL);
	signal(SIGALRM, SIG_IGN);
	CHECK(!handler_failed, "a write in the handler failed");
	CHECK(fsync(handler_fd) == 0 && fsync(fd) == 0, "fsync");
	close(handler_fd);
	close(fd);
	return 0;
}

/* ---- fdlimit ---- */

static int fdlimit(void)
{
	static int fds[4096];
	char name[32], line[32], got[32];
	int n = 0;

	for (;;) {
		int fd;

		snprintf(name, sizeof(name), "limit%d.dat", n);
		fd = open(path(name), O_RDWR | O_CREAT | O_TRUNC, 0644);
		if (fd < 0) {
			CHECK(errno == EMFILE, "open: %s", strerror(errno));
			break;
		}
		CHECK(n < 4096, "no fd limit");
		snprintf(line, sizeof(line), "file %d\n", n);
		CHECK(write(fd, line, strlen(line)) == (ssize_t)strlen(line), "write");
		fds[n++] = fd;
	}
	CHECK(n > 0, "no file could be opened");
	for (int i = 0; i < n; i++) {
		snprintf(line, sizeof(line), "file %d\n", i);
		memset(got, 0, sizeof(got));
		CHECK(pread(fds[i], got, sizeof(got) - 1, 0) == (ssize_t)strlen(line) &&
		      !strcmp(got, line), "file %d reads back wrong", i);
		CHECK(close(fds[i]) == 0, "close: %s", strerror(errno));
	}
	for (int i = 0; i < n; i++) {
		int fd;

		snprintf(name, sizeof(name), "limit%d.dat", i);
		snprintf(line, sizeof(line), "file %d\n", i);
		memset(got, 0, sizeof(got));
		fd = open(path(name), O_RDONLY);
		CHECK(fd >= 0 && read(fd, got, sizeof(got) - 1) == (ssize_t)strlen(line) &&
		      !strcmp(got, line), "file %d lost its data", i);
		close(fd);
	}
	return 0;
}

/* ---- cancel ---- */

#define CANCEL_FILE	(2 << 20)

static int cancel_fd;

#ifdef __SANITIZE_ADDRESS__
#include <sanitizer/asan_interface.h>

/*
 * GCC 12's ASan leaves the redzones of the frames a cancellation unwinds
 * poisoned, and thread-exit code that then puts a struct there through an
 * intercepted call (ASan's own sigaltstack(), liburcu-bp's pthread_sigmask())
 * is reported as a stack-buffer-overflow, with or without folio
 * (google/sanitizers#1399).  Run as the cancelled thread unwinds, this
 * unpoisons its whole stack: every frame on it is being discarded.
 */
static void unpoison_unwound_stack(void *unused)
{
	pthread_attr_t attr;
	void *stack;
	size_t size;

	(void)unused;
	if (pthread_getattr_np(pthread_self(), &attr))
		return;
	if (!pthread_attr_getstack(&attr, &stack, &size))
		ASAN_UNPOISON_MEMORY_REGION(stack, size);
	pthread_attr_destroy(&attr);
}
#else
static void unpoison_unwound_stack(void *unused)
{
	(void)unused;
}
#endif

/* Runs @fn(@arg) in a thread that may be cancelled (see above). */
static void *cancellable(void *(*fn)(void *), void *arg)
{
	void *ret;

	pthread_cleanup_push(unpoison_unwound_stack, NULL);
	ret = fn(arg);
	pthread_cleanup_pop(0);
	return ret;
}

/*
 * Misses, write-back and waits at the dirty limit: each reaches a
 * cancellation point of libc's inside folio, where the cancellation must
 * not act with folio's locks held or the thread inside a read-side section.
 */
static void *cancelled_io_body(void *arg)
{
	unsigned long long r = (uintptr_t)arg;
	char buf[4096];

	for (unsigned long i = 0;; i++) {
		off_t at;

		r ^= r << 13;
		r ^= r >> 7;
		r ^= r << 17;
		at = (off_t)(r % (CANCEL_FILE / sizeof(buf))) * sizeof(buf);
		if (pread(cancel_fd, buf, sizeof(buf), at) != sizeof(buf))
			return NULL;
		if (pwrite(cancel_fd, buf, sizeof(buf), at) != sizeof(buf))
			return NULL;
		if (read(cancel_fd, buf, 100) < 0)
			return NULL;
		if (i % 16 == 0 && fdatasync(cancel_fd))
			return NULL;
	}
}

static void *cancelled_io(void *arg)
{
	return cancellable(cancelled_io_body, arg);
}

/* Only hits: folio calls no cancellation point, but pread is one. */
static void *cancelled_hits_body(void *arg)
{
	char buf[100];

	(void)arg;
	while (pread(cancel_fd, buf, sizeof(buf), 0) == sizeof(buf))
		;
	return NULL;
}

static void *cancelled_hits(void *arg)
{
	return cancellable(cancelled_hits_body, arg);
}

/*
 * With a cancellation pending, calls that reach folio's write-back or
 * truncation: dup2() onto the file's last writable fd (not a cancellation
 * point: the thread goes on), fopen("w"), open(O_TRUNC) and an extending
 * copy_file_range() (cancellation points: they act before anything happens
 * to the file).
 */
static int pending_dup2_onto;
static volatile int pending_reached;

static void *cancel_pending_body(void *what)
{
	int nul = open("/dev/null", O_RDONLY);

	pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
	pthread_cancel(pthread_self());
	pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, NULL);
	if (!strcmp(what, "dup2")) {
		dup2(nul, pending_dup2_onto);
	} else if (!strcmp(what, "fopen")) {
		FILE *f = fopen(path("pending.dat"), "w");

		if (f)
			fclose(f);
	} else if (!strcmp(what, "copy_file_range")) {
		off64_t from = 0, to = 8192;

		copy_file_range(pending_dup2_onto, &from, pending_dup2_onto, &to, 100, 0);
	} else {
		int fd = open(path("pending.dat"), O_WRONLY | O_TRUNC);

		if (fd >= 0)
			close(fd);
	}
	pending_reached++;
	pthread_testcancel();
	return NULL;
}

static void *cancel_pending(void *arg)
{
	return cancellable(cancel_pending_body, arg);
}

static void cancel_pending_calls(void)
{
	static const char *const calls[] = { "dup2", "fopen", "open", "copy_file_range" };
	static char buf[8192];
	struct stat st;

	for (size_t i = 0; i < sizeof(calls) / sizeof(calls[0]); i++) {
		int fd = open(path("pending.dat"), O_RDWR | O_CREAT | O_TRUNC, 0644);
		int other = open(path("pending.dat"), O_RDWR);
		pthread_t thread;

		CHECK(fd >= 0 && other >= 0 && write(fd, buf, sizeof(buf)) == sizeof(buf),
		      "pending.dat");
		pending_dup2_onto = fd;
		pending_reached = 0;
		pthread_create(&thread, NULL, cancel_pending, (void *)calls[i]);
		pthread_join(thread, NULL);
		CHECK(pending_reached == (i == 0), "%s with a cancellation pending: %s", calls[i],
		      pending_reached ? "went on" : "was cancelled");
		/* The file's locks are free, and an open(O_TRUNC) or a copy
		 * that was cancelled changed nothing. */
		CHECK(pwrite(other, "zz", 2, 100) == 2 && fsync(other) == 0 &&
		      fstat(other, &st) == 0 && st.st_size == sizeof(buf),
		      "after %s: size %lld", calls[i], (long long)st.st_size);
		close(other);
		if (i)
			close(fd);
	}
}

static int cancel(void)
{
	static char chunk[CANCEL_FILE];
	char back[8];
	int fd;

	cancel_fd = open(path("cancel.dat"), O_RDWR | O_CREAT | O_TRUNC, 0644);
	CHECK(cancel_fd >= 0, "open");
	memset(chunk, 'c', sizeof(chunk));
	CHECK(write(cancel_fd, chunk, sizeof(chunk)) == sizeof(chunk), "write");
	for (int round = 0; round < 200; round++) {
		pthread_t threads[2];
		void *ret;

		for (int i = 0; i < 2; i++)
			pthread_create(&threads[i], NULL, cancelled_io,
				       (void *)(uintptr_t)(round * 2 + i + 1));
		usleep(rnd(2000));
		for (int i = 0; i < 2; i++) {
			pthread_cancel(threads[i]);
			pthread_join(threads[i], &ret);
			CHECK(ret == PTHREAD_CANCELED, "round %d: thread %d ended by itself", round, i);
		}
	}
	for (int round = 0; round < 20; round++) {
		pthread_t thread;
		void *ret;

		pthread_create(&thread, NULL, cancelled_hits, NULL);
		usleep(rnd(1000));
		pthread_cancel(thread);
		pthread_join(thread, &ret);
		CHECK(ret == PTHREAD_CANCELED, "a reader of cached data ended by itself");
	}
	cancel_pending_calls();
	/* Every lock folio has must still be free: exclusive write, truncation, sync. */
	CHECK(pwrite(cancel_fd, "extended", 8, CANCEL_FILE) == 8, "extending pwrite");
	CHECK(ftruncate(cancel_fd, CANCEL_FILE + 8) == 0, "ftruncate");
	CHECK(fsync(cancel_fd) == 0, "fsync");
	CHECK(close(cancel_fd) == 0, "close");
	fd = open(path("cancel.dat"), O_RDONLY);
	CHECK(fd >= 0 && pread(fd, back, 8, CANCEL_FILE) == 8 && !memcmp(back, "extended", 8),
	      "the last write is not in the file");
	close(fd);
	return 0;
}

/* ---- unmapwrite ---- */

#define UNMAP_SECONDS	2
#define UNMAP_REGIONS	16		/* of 64 KiB, one write each */
#define UNMAP_REGION	(64 * 1024)
#define UNMAP_SKEW	2048		/* regions start and end inside pages */
#define UNMAP_READERS	3		/* more threads than CPUs: preempted writes */

static uint64_t unmap_done[UNMAP_REGIONS];	/* the last value whose write returned */
static bool unmap_stop;
static int unmap_copy_from = -1;	/* unmapcopy: the kernel copies from this fd */

static bool unmap_stopping(void)
{
	return __atomic_load_n(&unmap_stop, __ATOMIC_RELAXED);
}

/* rnd() is not for threads. */
static unsigned long thread_rnd(unsigned long n)
{
	static __thread unsigned long long x;

	if (!x)
		x = (uintptr_t)&x | 1;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return x % n;
}

/* A pause after each unmap lets stale pages be read before the next map drops them. */
static void *unmap_mapper(void *arg)
{
	int fd = *(int *)arg;

	while (!unmap_stopping()) {
		void *map = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0);

		CHECK(map != MAP_FAILED, "mmap: %s", strerror(errno));
		CHECK(munmap(map, 4096) == 0, "munmap: %s", strerror(errno));
		usleep(100);
	}
	return NULL;
}

/* Each write puts its value in every word of a region, the regions in turn. */
static void *unmap_writer(void *arg)
{
	static uint64_t buf[UNMAP_REGION / 8];
	int fd = *(int *)arg;

	for (uint64_t v = 1; !unmap_stopping(); v++) {
		off_t at = (off_t)(v % UNMAP_REGIONS) * UNMAP_REGION + UNMAP_SKEW;

		for (size_t i = 0; i < UNMAP_REGION / 8; i++)
			buf[i] = v;
		if (unmap_copy_from < 0) {
			CHECK(pwrite(fd, buf, UNMAP_REGION, at) == UNMAP_REGION, "pwrite: %s",
			      strerror(errno));
		} else {
			loff_t from = 0, to = at;

			CHECK(pwrite(unmap_copy_from, buf, UNMAP_REGION, 0) == UNMAP_REGION &&
			      copy_file_range(unmap_copy_from, &from, fd, &to, UNMAP_REGION, 0) ==
			      UNMAP_REGION, "copy_file_range: %s", strerror(errno));
		}
		__atomic_store_n(&unmap_done[v % UNMAP_REGIONS], v, __ATOMIC_RELEASE);
	}
	return NULL;
}

static void unmap_read_one(int fd)
{
	int r = thread_rnd(UNMAP_REGIONS);
	uint64_t done = __atomic_load_n(&unmap_done[r], __ATOMIC_ACQUIRE), got = 0;
	off_t at = (off_t)r * UNMAP_REGION + UNMAP_SKEW + thread_rnd(UNMAP_REGION / 8) * 8;
	ssize_t n = pread(fd, &got, sizeof(got), at);

	CHECK(n == sizeof(got) || (!done && n >= 0), "pread at %lld: %zd bytes (%s); the "
	      "write of %llu there had returned", (long long)at, n,
	      n < 0 ? strerror(errno) : "short", (unsigned long long)done);
	CHECK(got >= done, "pread at %lld: %llu, after the write of %llu there had returned",
	      (long long)at, (unsigned long long)got, (unsigned long long)done);
}

static void *unmap_reader(void *arg)
{
	while (!unmap_stopping())
		unmap_read_one(*(int *)arg);
	return NULL;
}

static int unmapwrite(void)
{
	int fd = open(path("unmap.dat"), O_RDWR | O_CREAT | O_TRUNC, 0644);
	pthread_t mapper, writer, readers[UNMAP_READERS];

	CHECK(fd >= 0, "open: %s", strerror(errno));
	CHECK(pthread_create(&mapper, NULL, unmap_mapper, &fd) == 0 &&
	      pthread_create(&writer, NULL, unmap_writer, &fd) == 0, "pthread_create");
	for (int i = 0; i < UNMAP_READERS; i++)
		CHECK(pthread_create(&readers[i], NULL, unmap_reader, &fd) == 0, "pthread_create");
	sleep(UNMAP_SECONDS);
	__atomic_store_n(&unmap_stop, true, __ATOMIC_RELAXED);
	pthread_join(mapper, NULL);
	pthread_join(writer, NULL);
	for (int i = 0; i < UNMAP_READERS; i++)
		pthread_join(readers[i], NULL);
	CHECK(close(fd) == 0, "close: %s", strerror(errno));
	return 0;
}

/* The same, the writes made by the kernel: copy_file_range() from an untracked file. */
static int unmapcopy(void)
{
	unmap_copy_from = open(path("unmap.src"), O_RDWR | O_CREAT | O_TRUNC, 0644);
	CHECK(unmap_copy_from >= 0, "open: %s", strerror(errno));
	return unmapwrite();
}

/* ---- ownfds ---- */

/*
 * The descriptors of @name other than @mine (folio's own, under folio):
 * each close-on-exec and open with @accmode, no more.  Returns how many.
 */
static int check_other_fds(const char *name, int mine, int accmode)
{
	char link[64], target[PATH_MAX], want[PATH_MAX], info[256];
	struct dirent *e;
	DIR *d = opendir("/proc/self/fd");
	int found = 0;

	CHECK(d && realpath(path(name), want), "opendir /proc/self/fd, realpath");
	while ((e = readdir(d))) {
		int fd = atoi(e->d_name), flags = -1;
		ssize_t n;
		FILE *f;

		snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
		n = readlink(link, target, sizeof(target) - 1);
		if (n < 0 || fd == mine || fd == dirfd(d))
			continue;
		target[n] = '\0';
		if (strcmp(target, want))
			continue;
		snprintf(link, sizeof(link), "/proc/self/fdinfo/%d", fd);
		f = fopen(link, "r");
		while (f && fgets(info, sizeof(info), f))
			if (sscanf(info, "flags: %o", &flags) == 1)
				break;
		if (f)
			fclose(f);
		CHECK(flags >= 0 && (flags & O_CLOEXEC), "fd %d on %s is not close-on-exec (%o)",
		      fd, name, flags);
		CHECK((flags & O_ACCMODE) == accmode, "fd %d on %s has access mode %o, the "
		      "program's only %o", fd, name, flags & O_ACCMODE, accmode);
		found++;
	}
	closedir(d);
	return found;
}

/* folio's own descriptors never widen the program's access, nor leak to exec. */
static int ownfds(void)
{
	bool folio = under_folio();
	char buf[100];
	int fd = open(path("own.dat"), O_RDWR | O_CREAT | O_TRUNC, 0644);

	CHECK(fd >= 0 && write(fd, "0123456789", 10) == 10 && close(fd) == 0, "make own.dat");
	fd = open(path("own.dat"), O_RDONLY);
	CHECK(fd >= 0 && read(fd, buf, 10) == 10, "read own.dat");
	CHECK(check_other_fds("own.dat", fd, O_RDONLY) >= folio, "no descriptor of folio's");
	close(fd);
	fd = open(path("own.dat"), O_WRONLY);
	CHECK(fd >= 0 && pwrite(fd, "abc", 3, 2) == 3 && fsync(fd) == 0, "write own.dat");
	CHECK(check_other_fds("own.dat", fd, O_WRONLY) >= folio, "no descriptor of folio's");
	close(fd);
	return 0;
}

/* ---- quota ---- */

/*
 * EDQUOT from write-back (injected: these kernels have no quota support
 * for tmpfs, ext4 or XFS): reported at fsync; then writes that need new
 * space fail at once with it while overwrites go on, until a write-back
 * succeeds; nothing accepted is lost.
 */
static int quota(void)
{
	static unsigned char buf[8192];
	int fd = open(path("quota.dat"), O_RDWR | O_CREAT | O_TRUNC, 0644);
	size_t len = 5000;

	CHECK(fd >= 0, "open: %s", strerror(errno));
	fill_pattern(buf, 8192, 0);
	CHECK(write(fd, buf, 4096) == 4096 && fsync(fd) == 0, "write: %s", strerror(errno));
	set_fault(EDQUOT);
	CHECK(pwrite(fd, buf + 4096, len - 4096, 4096) == (ssize_t)(len - 4096), "extend");
	CHECK(fsync(fd) == -1 && errno == EDQUOT, "fsync: %s, not EDQUOT", strerror(errno));
	errno = 0;
	CHECK(pwrite(fd, buf + 6000, 100, 6000) == -1 && errno == EDQUOT,
	      "a write needing new space after EDQUOT: %s", strerror(errno));
	CHECK(pwrite(fd, buf + 100, 100, 100) == 100, "an overwrite after EDQUOT: %s",
	      strerror(errno));
	set_fault(0);
	CHECK(fsync(fd) == 0, "fsync once there is room: %s", strerror(errno));
	CHECK(pwrite(fd, buf + len, 8192 - len, len) == (ssize_t)(8192 - len),
	      "a write needing new space once write-back succeeded: %s", strerror(errno));
	len = 8192;
	CHECK(fsync(fd) == 0 && close(fd) == 0, "close");
	check_kernel_copy("quota.dat", len);
	return 0;
}

/* ---- renamed ---- */

static void expect_data(int fd, const char *want, const char *what)
{
	char buf[16] = "";
	size_t n = strlen(want);

	CHECK(pread(fd, buf, n, 0) == (ssize_t)n && !memcmp(buf, want, n),
	      "%s: read \"%.*s\", not \"%s\"", what, (int)n, buf, want);
}

/*
 * The stat family's size while the file starts and stops passing through:
 * each mmap() writes back the dirty bytes past the kernel's end and passes
 * the file through, so a size the kernel gave before that is old by the
 * time folio looks at the file (found by test_stress under TSan).
 */
static int restat_fd;
static int restat_stop;	/* atomic */

static void *restat_mapper(void *arg)
{
	(void)arg;
	while (!__atomic_load_n(&restat_stop, __ATOMIC_RELAXED)) {
		void *p = mmap(NULL, 4096, PROT_READ, MAP_SHARED, restat_fd, 0);

		if (p != MAP_FAILED)
			munmap(p, 4096);
	}
	return NULL;
}

static int restat(void)
{
	pthread_t mapper;
	long wrong = 0, i;
	struct stat st;
	time_t until = time(NULL) + 20;		/* valgrind is slower */

	restat_fd = open(path("restat.dat"), O_RDWR | O_CREAT | O_TRUNC, 0644);
	CHECK(restat_fd >= 0 && pwrite(restat_fd, "x", 1, 0) == 1, "restat.dat");
	pthread_create(&mapper, NULL, restat_mapper, NULL);
	for (i = 1; i < 200000 && (i % 1024 || time(NULL) < until); i++) {
		CHECK(pwrite(restat_fd, "y", 1, i) == 1 && fstat(restat_fd, &st) == 0, "round %ld", i);
		if (st.st_size != i + 1 && !wrong++)
			fprintf(stderr, "cachecheck: restat: size %lld after writing byte %ld\n",
				(long long)st.st_size, i);
	}
	__atomic_store_n(&restat_stop, 1, __ATOMIC_RELAXED);
	pthread_join(mapper, NULL);
	CHECK(!wrong, "%ld of %ld sizes were old", wrong, i - 1);
	close(restat_fd);
	return 0;
}

/*
 * A cached file replaced by rename(2), by another process and by this one:
 * the new file's data under the name, the old one's through the fds open
 * on it, and writes through those never reach the new file.
 */
static int renamed(void)
{
	char cmd[8192];
	int old, fresh, a, b, c;

	old = open(path("r.dat"), O_RDWR | O_CREAT | O_TRUNC, 0644);
	CHECK(old >= 0 && write(old, "old-data", 8) == 8, "write r.dat");
	expect_data(old, "old-data", "r.dat before");
	snprintf(cmd, sizeof(cmd), "cd '%s' && printf new-data > r2.dat && mv r2.dat r.dat", dir);
	CHECK(system(cmd) == 0, "%s", cmd);
	fresh = open(path("r.dat"), O_RDWR);
	CHECK(fresh >= 0, "open r.dat");
	expect_data(fresh, "new-data", "r.dat renamed over by another process");
	expect_data(old, "old-data", "the fd open on the replaced r.dat");
	CHECK(pwrite(old, "OLD", 3, 0) == 3, "pwrite to the replaced file");
	CHECK(close(old) == 0, "close the replaced file");
	expect_data(fresh, "new-data", "r.dat after writes to the replaced file");

	a = open(path("s.dat"), O_RDWR | O_CREAT | O_TRUNC, 0644);
	b = open(path("t.dat"), O_RDWR | O_CREAT | O_TRUNC, 0644);
	CHECK(a >= 0 && b >= 0 && write(a, "first", 5) == 5 && write(b, "second", 6) == 6,
	      "write s.dat and t.dat");
	expect_data(a, "first", "s.dat");
	snprintf(cmd, sizeof(cmd), "%s", path("t.dat"));	/* path(): one buffer */
	CHECK(rename(cmd, path("s.dat")) == 0, "rename: %s", strerror(errno));
	c = open(path("s.dat"), O_RDONLY);
	CHECK(c >= 0, "open s.dat");
	expect_data(c, "second", "s.dat renamed over by this process");
	expect_data(a, "first", "the fd open on the replaced s.dat");
	CHECK(pwrite(a, "FIRST", 5, 0) == 5 && close(a) == 0, "write the replaced s.dat");
	expect_data(c, "second", "s.dat after writes to the replaced file");
	expect_data(b, "second", "t.dat's fd, now s.dat's");
	CHECK(close(b) == 0 && close(c) == 0 && close(fresh) == 0, "close");
	return 0;
}

/*
 * Bad buffers in a thread after the main thread has exited (pthread_exit()
 * from main): the counts are the kernel's.  Under valgrind folio counts a
 * faulted copy with process_vm_*(), which must name the thread: the
 * process's id then names a task without memory (ESRCH), and every such
 * read failed with EFAULT.
 */
static int mainexit_fd;

static bool main_thread_exited(void)
{
	char name[64], stat[256] = "";
	FILE *f;

	snprintf(name, sizeof(name), "/proc/self/task/%d/stat", (int)getpid());
	if (!(f = fopen(name, "r")))
		return true;
	CHECK(fgets(stat, sizeof(stat), f), "read %s", name);
	fclose(f);
	return strstr(stat, ") Z ") != NULL;
}

static void *mainexit_thread(void *arg)
{
	char *good = mmap(NULL, 2 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			  -1, 0), *bad = good + 4096;

	(void)arg;
	CHECK(good != MAP_FAILED && munmap(bad, 4096) == 0, "mmap");
	for (int i = 0; i < 10000 && !main_thread_exited(); i++)
		usleep(1000);
	CHECK(main_thread_exited(), "the main thread is still there after 10 s");
	VALGRIND_DISABLE_ERROR_REPORTING;	/* memcheck reports the bad buffers */
	CHECK(pread(mainexit_fd, bad - 3, 10, 0) == 3, "pread running off a buffer");
	CHECK(pwrite(mainexit_fd, bad - 5, 10, 100) == 5, "pwrite running off a buffer");
	errno = 0;
	CHECK(pread(mainexit_fd, bad, 10, 0) == -1 && errno == EFAULT, "pread into unmapped");
	CHECK(close(mainexit_fd) == 0, "close");
	puts("mainexit: all checked");	/* the process exits 0 also if no thread ran */
	exit(0);
}

static int mainexit(void)
{
	char data[4096];
	pthread_t thread;

	memset(data, 'm', sizeof(data));
	mainexit_fd = open(path("m.dat"), O_RDWR | O_CREAT | O_TRUNC, 0644);
	CHECK(mainexit_fd >= 0 && write(mainexit_fd, data, sizeof(data)) == sizeof(data),
	      "write m.dat");
	CHECK(pthread_create(&thread, NULL, mainexit_thread, NULL) == 0, "pthread_create");
	fflush(stdout);
	pthread_exit(NULL);
}

int main(int argc, char **argv)
{
	static const struct {
		const char *name;
		int (*fn)(void);
		const char *what;
	} checks[] = {
		{ "hits", hits,
		  "reads and writes a hot file, checking every byte; run under strace, it "
		  "shows which calls reached the kernel" },
		{ "untorn", untorn,
		  "threads rewrite pages with uniform bytes while others read them: every "
		  "page read is whole" },
		{ "locks", locks,
		  "overwrites, extending writes and appends in known numbers "
		  "(FOLIO_LOG=debug reports the lock modes)" },
		{ "visible", visible,
		  "another process sees the data after fsync and after close" },
		{ "spawn", spawn,
		  "a spawned shell reading an inherited fd sees the written data at the "
		  "position folio kept" },
		{ "setid", setid,
		  "a write to a set-user-ID file drops the bit at once (run it as a user "
		  "without CAP_FSETID)" },
		{ "copies", copies,
		  "two threads copy_file_range() between two files in opposite directions" },
		{ "bigwrite", bigwrite,
		  "one 1 MiB write() (run it with a tiny cache)" },
		{ "bigread", bigread,
		  "reads of 64 KiB and more over a file with dirty pages, a hole and dirty "
		  "data past the kernel's end" },
		{ "lockstep", lockstep,
		  "two processes with the file open take turns under fcntl, flock and lockf"
		  " locks: each sees the other's writes once it holds the lock" },
		{ "interleave", interleave,
		  "two processes, each with its own open and no lock, write alternate "
		  "512-byte blocks of the same pages: neither overwrites the other's bytes" },
		{ "enospc", enospc,
		  "DIR is a 1 MiB file system: writes past its space, fsync reports ENOSPC,"
		  " and after space is freed a second fsync writes every byte write() "
		  "accepted; in between, under folio, writes that need new space fail at "
		  "once and overwrites do not" },
		{ "errors", errors,
		  "write-back errors reach each open file description once (run under "
		  "libfolio-faults.so: FOLIO_TEST_FAULTS names the switch file); writers at"
		  " the dirty limit get the error instead of waiting forever" },
		{ "dirtylimit", dirtylimit,
		  "4 threads overwrite 4 MiB each of one file in 16 KiB writes "
		  "(FOLIO_LOG=debug reports the dirty peak)" },
		{ "seqwrite", seqwrite,
		  "64 MiB in 64 KiB write()s, then close" },
		{ "stream", stream,
		  "appends 64-byte records stamped with the time, until killed" },
		{ "forks", forks,
		  "forks 40 children, each writing a file of its own, while two threads "
		  "write and the flusher runs" },
		{ "idle", idle,
		  "the flusher thread goes away after 5 s with nothing dirty and no file "
		  "open for writing, and comes back with the next write" },
		{ "linger", linger,
		  "data whose write-back fails at the last close is kept: written once "
		  "write-back works, or found by the next open, also while another thread "
		  "opens and closes files (run like errors)" },
		{ "syncwrite", syncwrite,
		  "a thread appends 1 MiB writes at a small dirty limit while another calls"
		  " sync(), then the process exits with the writer still writing" },
		{ "execlost", execlost,
		  "execs true(1) with 3000 bytes that cannot be written (run like errors: "
		  "folio says so before the exec)" },
		{ "stats", stats,
		  "a known mix of calls on two files; under folio, folio_stats() of "
		  "include/folio.h counts exactly those, folio_flush() writes the data back"
		  " (a new description reads it natively), and folio_fd_tracked() says "
		  "which fds are tracked" },
		{ "stats-closed", stats_closed,
		  "the same, then closes stderr and opens a file as fd 2 (folio's report "
		  "must not land in it)" },
		{ "closerace", closerace,
		  "threads read a file that misses the cache while main closes its fd under"
		  " them (run it with a sanitizer to see a use after free)" },
		{ "fdnumbers", fdnumbers,
		  "with FOLIO_CALLERS, FOLIO_STATS=1 and FOLIO_LOG_FILE: the program's fds "
		  "are numbered as natively, also after closefrom(3), and neither a fork "
		  "child's nor a thread's sampled calls touch the program's files" },
		{ "sigopen", sigopen,
		  "a signal handler opens and closes a tracked file every 200 us while main"
		  " reads the statistics" },
		{ "fdlimit", fdlimit,
		  "opens and writes files until EMFILE (run it under a small ulimit -n): "
		  "every byte written is read back, before and after the closes" },
		{ "sigalloc", sigalloc,
		  "a signal handler writes new pages of one file every 100 us while main "
		  "writes new pages of another through a small cache (run it with "
		  "FOLIO_CACHE_SIZE=256K): both take pages from the page store." },
		{ "cancel", cancel,
		  "threads cancelled inside folio (misses, write-back, waits at the dirty "
		  "limit) and with a cancellation pending at dup2, fopen, open and "
		  "copy_file_range: no lock of folio's is left held, no read-side section "
		  "open" },
		{ "unmapwrite", unmapwrite,
		  "a thread maps and unmaps a file over and over while another rewrites its"
		  " 64 KiB regions in turn (passing through while it is mapped) and three "
		  "read it: no read is older than a write that had returned (run it with "
		  "FOLIO_CACHE_SIZE=1M FOLIO_DIRTY_LIMIT=64K: the reads miss)" },
		{ "unmapcopy", unmapcopy,
		  "unmapwrite with the writes made by the kernel: copy_file_range() from an"
		  " untracked file" },
		{ "renamed", renamed,
		  "a cached file replaced by rename(2), by another process and by this one:"
		  " the new file's data under the name, the old one's through the fds open "
		  "on it, and writes through those never reach the new file" },
		{ "quota", quota,
		  "EDQUOT from write-back (injected, run like errors): reported at fsync; "
		  "then writes that need new space fail at once while overwrites go on, "
		  "until a write-back succeeds; nothing accepted is lost" },
		{ "ownfds", ownfds,
		  "folio's own descriptors never widen the program's access, nor leak to an"
		  " exec" },
		{ "restat", restat,
		  "one byte appended, then fstat(), 200000 times, while another thread maps"
		  " and unmaps the file: the size is always the one just written" },
		{ "mainexit", mainexit,
		  "main calls pthread_exit(); a thread then reads and writes through "
		  "buffers that run into unmapped memory: the counts are the kernel's "
		  "(under valgrind too)" },
	};

	if (argc == 2 && !strcmp(argv[1], "--help")) {
		puts("usage: cachecheck CHECK DIR; the checks:");
		for (size_t i = 0; i < sizeof(checks) / sizeof(checks[0]); i++)
			printf("  %-13s %s\n", checks[i].name, checks[i].what);
		return 0;
	}
	if (argc != 3)
		FAIL("usage: cachecheck CHECK DIR (cachecheck --help lists the checks)");
	dir = argv[2];
	for (size_t i = 0; i < sizeof(checks) / sizeof(checks[0]); i++) {
		if (strcmp(argv[1], checks[i].name) == 0) {
			checks[i].fn();
			puts("ok");
			return 0;
		}
	}
	FAIL("no check named %s", argv[1]);
}
