/*
 * fsx - random file operations checked against an in-memory model, in the
 * spirit of the file system exerciser fsx.
 *
 *	fsx DIR SEED OPS
 *
 * Works on DIR/fsx.dat through several fds at once (two sharing one open
 * file description through dup, one O_APPEND, one reopened from time to
 * time) and a stdio stream, with every kind of call folio serves: read,
 * write, their positioned and vectored forms, lseek, ftruncate, fallocate,
 * fsync, mmap, stdio, stat.  Every byte read is compared with the model.
 * At the end the model is written to DIR/fsx.expected with raw system calls
 * (folio never sees it), so the caller can compare the files after the
 * process is gone.  On a mismatch it prints the seed, the failing operation
 * and the last operations, and exits 1.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#define MAX_SIZE	(256 * 1024)
#define HISTORY		16

static unsigned char model[MAX_SIZE];
static off_t model_size;
static char file[PATH_MAX], expected[PATH_MAX];
static unsigned long seed, op_index;
static char history[HISTORY][128];

/* The fds: a and b share one description (dup); app is O_APPEND. */
static int fd_a, fd_b, fd_app;
static off_t pos_ab;			/* the shared file position of a and b */

static unsigned long long rng_state;

static unsigned long rnd(unsigned long n)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return n ? rng_state % n : 0;
}

static void note(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(history[op_index % HISTORY], sizeof(history[0]), fmt, ap);
	va_end(ap);
}

static void fail(const char *fmt, ...)
{
	va_list ap;

	printf("fsx: seed %lu, operation %lu: ", seed, op_index);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\nlast operations:\n");
	for (unsigned long i = op_index >= HISTORY ? op_index - HISTORY + 1 : 0; i <= op_index; i++)
		printf("  %lu: %s\n", i, history[i % HISTORY]);
	exit(1);
}

#define CHECK(cond, ...) \
	do { \
		if (!(cond)) \
			fail(__VA_ARGS__); \
	} while (0)

static void fill(unsigned char *buf, size_t n)
{
	for (size_t i = 0; i < n; i++)
		buf[i] = (unsigned char)(op_index * 31 + i * 7 + 1);
}

/* Apply a write of @n bytes at @off to the model. */
static void model_write(off_t off, const unsigned char *buf, size_t n)
{
	if (off > model_size)
		memset(model + model_size, 0, off - model_size);
	memcpy(model + off, buf, n);
	if (off + (off_t)n > model_size)
		model_size = off + n;
}

static void model_truncate(off_t len)
{
	if (len > model_size)
		memset(model + model_size, 0, len - model_size);
	model_size = len;
}

/* Compare @got bytes read at @off with the model. */
static void check_read(const char *what, off_t off, size_t asked, ssize_t got,
		       const unsigned char *buf)
{
	ssize_t want = off >= model_size ? 0 :
		       (ssize_t)((off_t)asked < model_size - off ? (off_t)asked : model_size - off);

	CHECK(got == want, "%s at %ld of %zu: got %zd bytes, model has %zd (size %ld), errno %d",
	      what, (long)off, asked, got, want, (long)model_size, errno);
	for (ssize_t i = 0; i < got; i++)
		CHECK(buf[i] == model[off + i], "%s at %ld: byte %ld is %u, model %u", what,
		      (long)off, (long)(off + i), buf[i], model[off + i]);
}

static off_t random_offset(size_t n)
{
	off_t room = (off_t)(MAX_SIZE - n);
	off_t limit = model_size + 8192 < room ? model_size + 8192 : room;

	return rnd(limit + 1);
}

static size_t random_length(void)
{
	static const size_t sizes[] = { 1, 7, 100, 512, 4095, 4096, 4097, 8192, 20000 };

	return rnd(3) ? sizes[rnd(sizeof(sizes) / sizeof(sizes[0]))] : rnd(30000) + 1;
}

static void op_pread(void)
{
	static unsigned char buf[MAX_SIZE];
	size_t n = random_length();
	off_t off = random_offset(n);

	note("pread %zu at %ld", n, (long)off);
	check_read("pread", off, n, pread(rnd(2) ? fd_a : fd_app, buf, n, off), buf);
}

static void op_pwrite(void)
{
	static unsigned char buf[MAX_SIZE];
	size_t n = random_length();
	off_t off = random_offset(n);

	note("pwrite %zu at %ld", n, (long)off);
	fill(buf, n);
	CHECK(pwrite(fd_b, buf, n, off) == (ssize_t)n, "pwrite failed: errno %d", errno);
	model_write(off, buf, n);
}

static void op_read(void)
{
	static unsigned char buf[MAX_SIZE];
	size_t n = random_length();
	ssize_t got;

	note("read %zu at pos %ld", n, (long)pos_ab);
	got = read(rnd(2) ? fd_a : fd_b, buf, n);
	check_read("read", pos_ab, n, got, buf);
	if (got > 0)
		pos_ab += got;
}

static void op_write(void)
{
	static unsigned char buf[MAX_SIZE];
	size_t n = random_length();

	if (pos_ab + (off_t)n > MAX_SIZE)
		pos_ab = lseek(fd_a, 0, SEEK_SET);
	note("write %zu at pos %ld", n, (long)pos_ab);
	fill(buf, n);
	CHECK(write(rnd(2) ? fd_a : fd_b, buf, n) == (ssize_t)n, "write failed: errno %d", errno);
	model_write(pos_ab, buf, n);
	pos_ab += n;
}

static void op_append(void)
{
	unsigned char buf[100];
	size_t n = rnd(100) + 1;

	if (model_size + (off_t)n > MAX_SIZE)
		return;
	note("append %zu at %ld", n, (long)model_size);
	fill(buf, n);
	CHECK(write(fd_app, buf, n) == (ssize_t)n, "append failed: errno %d", errno);
	model_write(model_size, buf, n);
	CHECK(lseek(fd_app, 0, SEEK_CUR) == model_size, "append left the position at %ld, not %ld",
	      (long)lseek(fd_app, 0, SEEK_CUR), (long)model_size);
}

static void op_vectored(void)
{
	static unsigned char a[MAX_SIZE / 2], b[MAX_SIZE / 2], both[MAX_SIZE];
	size_t na = random_length() / 2 + 1, nb = random_length() / 2 + 1;
	off_t off = random_offset(na + nb);
	struct iovec iov[2] = { { a, na }, { b, nb } };
	ssize_t got;

	switch (rnd(4)) {
	case 0:
		note("pwritev %zu+%zu at %ld", na, nb, (long)off);
		fill(a, na);
		fill(b, nb);
		CHECK(pwritev(fd_a, iov, 2, off) == (ssize_t)(na + nb), "pwritev: errno %d", errno);
		model_write(off, a, na);
		model_write(off + na, b, nb);
		break;
	case 1:
		note("preadv %zu+%zu at %ld", na, nb, (long)off);
		got = preadv2(fd_b, iov, 2, off, 0);
		memcpy(both, a, na);
		memcpy(both + na, b, nb);
		check_read("preadv", off, na + nb, got, both);
		break;
	case 2:
		note("readv %zu+%zu at pos %ld", na, nb, (long)pos_ab);
		got = readv(fd_a, iov, 2);
		memcpy(both, a, na);
		memcpy(both + na, b, nb);
		check_read("readv", pos_ab, na + nb, got, both);
		if (got > 0)
			pos_ab += got;
		break;
	default:
		if (pos_ab + (off_t)(na + nb) > MAX_SIZE)
			return;
		note("writev %zu+%zu at pos %ld", na, nb, (long)pos_ab);
		fill(a, na);
		fill(b, nb);
		CHECK(writev(fd_b, iov, 2) == (ssize_t)(na + nb), "writev: errno %d", errno);
		model_write(pos_ab, a, na);
		model_write(pos_ab + na, b, nb);
		pos_ab += na + nb;
		break;
	}
}

static void op_lseek(void)
{
	off_t off;

	switch (rnd(4)) {
	case 0:
		off = rnd(model_size + 5000);
		note("lseek set %ld", (long)off);
		CHECK(lseek(fd_b, off, SEEK_SET) == off, "lseek set: errno %d", errno);
		pos_ab = off;
		break;
	case 1:
		off = (off_t)rnd(4000) - 2000;
		if (pos_ab + off < 0)
			off = -pos_ab;
		note("lseek cur %ld", (long)off);
		CHECK(lseek(fd_a, off, SEEK_CUR) == pos_ab + off, "lseek cur: errno %d", errno);
		pos_ab += off;
		break;
	case 2:
		off = -(off_t)rnd(model_size + 1);
		note("lseek end %ld", (long)off);
		CHECK(lseek(fd_a, off, SEEK_END) == model_size + off, "lseek end: got %ld, size %ld",
		      (long)lseek(fd_a, 0, SEEK_CUR), (long)model_size);
		pos_ab = model_size + off;
		break;
	default:
		note("lseek bad");
		CHECK(lseek(fd_a, -1, SEEK_SET) == -1 && errno == EINVAL, "lseek -1 did not fail");
		break;
	}
}

static void op_truncate(void)
{
	off_t len = rnd(3) ? rnd(model_size + 1) : model_size + rnd(20000);

	if (len > MAX_SIZE)
		len = MAX_SIZE;
	note("ftruncate %ld", (long)len);
	CHECK(ftruncate(rnd(2) ? fd_a : fd_app, len) == 0, "ftruncate: errno %d", errno);
	model_truncate(len);
}

static void op_fallocate(void)
{
	off_t off = rnd(model_size + 4096), len = rnd(8192) + 1;
	int keep = rnd(2) ? FALLOC_FL_KEEP_SIZE : 0;

	if (off + len > MAX_SIZE)
		return;
	note("fallocate %ld+%ld%s", (long)off, (long)len, keep ? " keep size" : "");
	if (fallocate(fd_a, keep, off, len) != 0) {
		CHECK(errno == EOPNOTSUPP, "fallocate: errno %d", errno);
		return;
	}
	if (!keep && off + len > model_size)
		model_truncate(off + len);
}

static void op_stat(void)
{
	struct stat st;

	note("stat");
	CHECK(fstat(fd_b, &st) == 0 && st.st_size == model_size, "fstat size %ld, model %ld",
	      (long)st.st_size, (long)model_size);
	CHECK(stat(file, &st) == 0 && st.st_size == model_size, "stat size %ld, model %ld",
	      (long)st.st_size, (long)model_size);
}

static void op_sync(void)
{
	note("fsync");
	CHECK((rnd(2) ? fsync(fd_a) : fdatasync(fd_app)) == 0, "fsync: errno %d", errno);
}

static void op_mmap(void)
{
	unsigned char *map;

	if (model_size == 0)
		return;
	note("mmap %ld", (long)model_size);
	map = mmap(NULL, model_size, PROT_READ, MAP_SHARED, fd_a, 0);
	CHECK(map != MAP_FAILED, "mmap: errno %d", errno);
	check_read("mmap", 0, model_size, model_size, map);
	munmap(map, model_size);
}

static void op_stdio(void)
{
	static unsigned char buf[MAX_SIZE];
	FILE *f = fopen(file, "r+");
	size_t n = random_length();
	off_t off = random_offset(n);

	CHECK(f, "fopen: errno %d", errno);
	CHECK(fseeko(f, off, SEEK_SET) == 0, "fseeko: errno %d", errno);
	if (rnd(2)) {
		note("stdio fread %zu at %ld", n, (long)off);
		check_read("fread", off, n, fread(buf, 1, n, f), buf);
	} else {
		note("stdio fwrite %zu at %ld", n, (long)off);
		fill(buf, n);
		CHECK(fwrite(buf, 1, n, f) == n, "fwrite: errno %d", errno);
		model_write(off, buf, n);
	}
	CHECK(fclose(f) == 0, "fclose: errno %d", errno);
}

static void op_reopen(void)
{
	note("reopen");
	CHECK(close(fd_b) == 0 && close(fd_a) == 0, "close: errno %d", errno);
	fd_a = open(file, O_RDWR);
	CHECK(fd_a >= 0, "reopen: errno %d", errno);
	fd_b = rnd(2) ? dup(fd_a) : fcntl(fd_a, F_DUPFD_CLOEXEC, 10);
	CHECK(fd_b >= 0, "dup: errno %d", errno);
	pos_ab = 0;
}

int main(int argc, char **argv)
{
	static void (*const ops[])(void) = {
		op_pread, op_pread, op_pread, op_pwrite, op_pwrite, op_read, op_write, op_append,
		op_vectored, op_vectored, op_lseek, op_truncate, op_fallocate, op_stat, op_sync,
		op_mmap, op_stdio, op_reopen,
	};
	unsigned long nops;
	int out, tracked;
	int (*tracked_fn)(int);

	if (argc != 4) {
		fprintf(stderr, "usage: fsx DIR SEED OPS\n");
		return 2;
	}
	snprintf(file, sizeof(file), "%s/fsx.dat", argv[1]);
	snprintf(expected, sizeof(expected), "%s/fsx.expected", argv[1]);
	seed = strtoul(argv[2], NULL, 10);
	nops = strtoul(argv[3], NULL, 10);
	rng_state = seed * 0x9E3779B97F4A7C15ull + 1;
	fd_a = open(file, O_RDWR | O_CREAT | O_TRUNC, 0644);
	fd_b = dup(fd_a);
	fd_app = open(file, O_RDWR | O_APPEND);
	if (fd_a < 0 || fd_b < 0 || fd_app < 0) {
		perror(file);
		return 2;
	}
	/* Whether folio serves the file: the caller checks it did. */
	tracked_fn = (int (*)(int))dlsym(RTLD_DEFAULT, "folio_fd_tracked");
	tracked = tracked_fn && tracked_fn(fd_a) && tracked_fn(fd_b) && tracked_fn(fd_app);
	for (op_index = 0; op_index < nops; op_index++)
		ops[rnd(sizeof(ops) / sizeof(ops[0]))]();
	op_stat();
	CHECK(close(fd_a) == 0 && close(fd_b) == 0 && close(fd_app) == 0, "close: errno %d", errno);
	/* The model, written where folio cannot see it. */
	out = syscall(SYS_openat, AT_FDCWD, expected, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	CHECK(out >= 0 && syscall(SYS_write, out, model, model_size) == model_size &&
	      syscall(SYS_close, out) == 0, "writing %s failed", expected);
	printf("fsx: seed %lu: %lu operations, final size %ld%s\n", seed, nops, (long)model_size,
	       tracked ? ", under folio" : "");
	return 0;
}
