/*
 * apicheck - call every function folio interposes, on the files in DIR, and
 * print one transcript line per call: result, errno, file position, data.
 *
 *	apicheck DIR
 *
 * The tests run it natively and under folio (files tracked and untracked),
 * plain and built with -D_FORTIFY_SOURCE=2 -D_FILE_OFFSET_BITS=64, and
 * require identical transcripts: folio must be invisible.  Nothing printed
 * may depend on the run (no pids, inode numbers, times or random names).
 * Ends by exec'ing cat, so exec works and sees every byte written.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <spawn.h>
#include <stdint.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#else
#define VALGRIND_DISABLE_ERROR_REPORTING
#define VALGRIND_ENABLE_ERROR_REPORTING
#endif

extern char **environ;

static char dir[PATH_MAX];
static int step;

static void report(const char *what, long ret, int err)
{
	printf("%3d %-28s ret=%ld errno=%d\n", ++step, what, ret, err);
	fflush(stdout);
}

/* Run @expr with errno cleared; print what it returned and left in errno. */
#define CALL(what, expr) \
	({ \
		long r_; \
		int e_; \
		errno = 0; \
		r_ = (long)(expr); \
		e_ = errno; \
		report(what, r_, e_); \
		r_; \
	})

static unsigned long checksum(const void *buf, size_t n)
{
	const unsigned char *p = buf;
	unsigned long h = 5381;

	for (size_t i = 0; i < n; i++)
		h = h * 33 + p[i];
	return h;
}

static void show_data(const char *what, const void *buf, long n)
{
	printf("    %s: %ld bytes, sum %lu\n", what, n, n > 0 ? checksum(buf, n) : 0);
}

static void show_pos(int fd)
{
	printf("    pos %ld\n", (long)lseek(fd, 0, SEEK_CUR));
}

static void show_size(const char *what, const struct stat *st)
{
	printf("    %s: size %ld mode %o nlink %lu\n", what, (long)st->st_size,
	       st->st_mode & 07777, (unsigned long)st->st_nlink);
}

static char *path(const char *name)
{
	static char buf[4][PATH_MAX + NAME_MAX + 2];
	static int next;
	char *p = buf[next++ % 4];

	snprintf(p, sizeof(buf[0]), "%s/%s", dir, name);
	return p;
}

static void file_sum(const char *name)
{
	char buf[65536];
	int fd = open(path(name), O_RDONLY);
	long n = fd >= 0 ? read(fd, buf, sizeof(buf)) : -1;

	show_data(name, buf, n);
	if (fd >= 0)
		close(fd);
}

static void data_calls(int fd)
{
	char buf[512], buf2[64];
	volatile size_t big = sizeof(buf);	/* defeats compile-time fortify checks */
	struct iovec iov[2];

	CALL("write", write(fd, "hello, folio\n", 13));
	show_pos(fd);
	CALL("pwrite hole", pwrite(fd, "after the hole\n", 15, 100));
	CALL("pwrite64", pwrite64(fd, "X", 1, 5));
	CALL("pwrite negative", pwrite(fd, "X", 1, -1));
	show_pos(fd);
	CALL("pread", pread(fd, buf, big, 0));
	show_data("pread", buf, 115);
	CALL("pread middle", pread(fd, buf, 30, 7));
	show_data("pread middle", buf, 30);
	CALL("pread64 middle", pread64(fd, buf, 20, 99));
	show_data("pread64 middle", buf, 20);
	CALL("pread64 past eof", pread64(fd, buf, 10, 4096));
	CALL("pread negative", pread(fd, buf, 10, -5));
	CALL("pread zero", pread(fd, buf, 0, 0));
	CALL("read", read(fd, buf, 20));
	show_data("read", buf, 20);
	CALL("read unknown size", read(fd, buf, big - 500));
	show_pos(fd);
	CALL("lseek set", lseek(fd, 3, SEEK_SET));
	CALL("lseek cur", lseek(fd, 4, SEEK_CUR));
	CALL("lseek end", lseek(fd, -2, SEEK_END));
	CALL("lseek64 end", lseek64(fd, 0, SEEK_END));
	CALL("lseek data", lseek(fd, 0, SEEK_DATA));
	CALL("lseek hole", lseek(fd, 0, SEEK_HOLE));
	CALL("lseek negative", lseek(fd, -1, SEEK_SET));
	CALL("lseek bad whence", lseek(fd, 0, 42));
	CALL("read at eof", read(fd, buf, sizeof(buf)));
	lseek(fd, 0, SEEK_SET);
	iov[0] = (struct iovec){ buf, 5 };
	iov[1] = (struct iovec){ buf2, 7 };
	CALL("readv", readv(fd, iov, 2));
	show_data("readv", buf2, 7);
	show_pos(fd);
	iov[0] = (struct iovec){ "vector", 6 };
	iov[1] = (struct iovec){ " write", 6 };
	CALL("writev", writev(fd, iov, 2));
	CALL("pwritev", pwritev(fd, iov, 2, 30));
	CALL("pwritev64", pwritev64(fd, iov, 1, 40));
	CALL("pwritev negative", pwritev(fd, iov, 2, -1));
	CALL("pwritev64 minus one", pwritev64(fd, iov, 2, -1));
	CALL("pwritev2 at pos", pwritev2(fd, iov, 2, -1, 0));
	CALL("pwritev2 sync", pwritev2(fd, iov, 1, 50, RWF_DSYNC));
	CALL("pwritev2 bad flags", pwritev2(fd, iov, 1, 50, 0x40000000));
	CALL("pwritev64v2", pwritev64v2(fd, iov, 1, 60, 0));
	show_pos(fd);
	iov[0] = (struct iovec){ buf, 10 };
	iov[1] = (struct iovec){ buf2, 10 };
	CALL("preadv", preadv(fd, iov, 2, 25));
	show_data("preadv", buf2, 10);
	CALL("preadv64", preadv64(fd, iov, 1, 0));
	CALL("preadv negative", preadv(fd, iov, 1, -3));
	CALL("preadv minus one", preadv(fd, iov, 1, -1));
	CALL("preadv64 minus one", preadv64(fd, iov, 1, -1));
	CALL("preadv2 at pos", preadv2(fd, iov, 2, -1, 0));
	CALL("preadv2 offset", preadv2(fd, iov, 2, 95, 0));
	show_data("preadv2", buf, 10);
	CALL("preadv64v2", preadv64v2(fd, iov, 1, 1, 0));
	CALL("preadv2 bad offset", preadv2(fd, iov, 1, -7, 0));
	show_pos(fd);
}

static void size_calls(int fd, const char *name)
{
	struct stat st;
	struct stat64 st64;
	struct statx stx;

	CALL("ftruncate grow", ftruncate(fd, 300));
	CALL("fstat", fstat(fd, &st));
	show_size("fstat", &st);
	CALL("ftruncate64 shrink", ftruncate64(fd, 200));
	CALL("ftruncate negative", ftruncate(fd, -1));
	CALL("stat", stat(path(name), &st));
	show_size("stat", &st);
	CALL("truncate", truncate(path(name), 180));
	CALL("truncate64", truncate64(path(name), 190));
	CALL("truncate missing", truncate(path("missing"), 1));
	CALL("lstat", lstat(path(name), &st));
	show_size("lstat", &st);
	CALL("stat64", stat64(path(name), &st64));
	CALL("lstat64", lstat64(path(name), &st64));
	CALL("fstat64", fstat64(fd, &st64));
	printf("    stat64 size %ld\n", (long)st64.st_size);
	CALL("fstatat", fstatat(AT_FDCWD, path(name), &st, 0));
	CALL("fstatat empty path", fstatat(fd, "", &st, AT_EMPTY_PATH));
	show_size("fstatat", &st);
	CALL("fstatat64", fstatat64(AT_FDCWD, path(name), &st64, 0));
	CALL("statx", statx(AT_FDCWD, path(name), 0, STATX_SIZE, &stx));
	printf("    statx size %llu\n", (unsigned long long)stx.stx_size);
	CALL("stat missing", stat(path("missing"), &st));
	CALL("fstat bad fd", fstat(-1, &st));
	CALL("fallocate", fallocate(fd, 0, 0, 8192));
	CALL("fallocate keep size", fallocate(fd, FALLOC_FL_KEEP_SIZE, 8192, 4096));
	CALL("fallocate64 bad mode", fallocate64(fd, 0x4000, 0, 10));
	CALL("posix_fallocate", posix_fallocate(fd, 0, 9000));
	CALL("posix_fallocate64 bad", posix_fallocate64(fd, -1, 10));
	CALL("posix_fadvise", posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL));
	CALL("posix_fadvise64 bad", posix_fadvise64(fd, 0, 0, 99));
	CALL("readahead", readahead(fd, 0, 4096));
	CALL("fstat", fstat(fd, &st));
	show_size("after fallocate", &st);
	CALL("ftruncate back", ftruncate(fd, 190));
}

static void sync_calls(int fd)
{
	void *map;

	CALL("fsync", fsync(fd));
	CALL("fdatasync", fdatasync(fd));
	CALL("sync_file_range", sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE));
	CALL("sync_file_range bad", sync_file_range(fd, -1, 0, 0));
	CALL("syncfs", syncfs(fd));
	sync();
	report("sync", 0, 0);
	CALL("fsync bad fd", fsync(-1));
	map = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	CALL("mmap", map == MAP_FAILED ? -1 : 0);
	show_data("mapped", map, 190);
	memcpy((char *)map + 10, "MAPPED", 6);
	CALL("msync", msync(map, 4096, MS_SYNC));
	map = mremap(map, 4096, 8192, MREMAP_MAYMOVE);
	CALL("mremap", map == MAP_FAILED ? -1 : 0);
	CALL("munmap", munmap(map, 8192));
	CALL("mmap64 anon", mmap64(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) ==
	     MAP_FAILED ? -1 : 0);
	CALL("mmap bad fd", mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, -1, 0) == MAP_FAILED);
}

/* volatile: the compiler must not see the NULL and warn or fold it. */
static char *volatile null_buffer;

static void fd_calls(int fd, const char *name)
{
	char buf[64];
	int d1, d2, fl, ro, wo;

	d1 = CALL("dup", dup(fd));
	CALL("lseek via dup", lseek(d1, 7, SEEK_SET));
	show_pos(fd);
	CALL("read via original", read(fd, buf, 5));
	show_pos(d1);
	d2 = CALL("dup2", dup2(fd, 20));
	CALL("dup2 same", dup2(fd, fd));
	CALL("dup2 bad", dup2(-1, 21));
	CALL("dup3", dup3(fd, 22, O_CLOEXEC));
	CALL("dup3 same", dup3(fd, fd, 0));
	CALL("fcntl dupfd", fcntl(fd, F_DUPFD, 30));
	CALL("fcntl dupfd cloexec", fcntl(fd, F_DUPFD_CLOEXEC, 40));
	CALL("fcntl64 getfd", fcntl64(22, F_GETFD));
	fl = CALL("fcntl getfl", fcntl(fd, F_GETFL));
	CALL("fcntl setfl append", fcntl(d2, F_SETFL, fl | O_APPEND));
	CALL("write appends", write(fd, "APPENDED\n", 9));
	show_pos(fd);
	CALL("fcntl setfl back", fcntl(fd, F_SETFL, fl));
	CALL("close dup", close(d1));
	CALL("close again", close(d1));
	CALL("read closed", read(d1, buf, 1));
	CALL("close_range", close_range(30, 30, 0));
	CALL("close_range cloexec", close_range(40, 40, CLOSE_RANGE_CLOEXEC));
	CALL("close_range bad", close_range(50, 40, 0));
	CALL("fcntl closed", fcntl(30, F_GETFD));
	CALL("read via dup2", pread(20, buf, 8, 0));
	CALL("close 20", close(20));
	CALL("close 22", close(22));
	CALL("close 40", close(40));
	ro = CALL("open rdonly", open(path(name), O_RDONLY));
	CALL("write rdonly", write(ro, "x", 1));
	CALL("pwrite rdonly", pwrite(ro, "x", 1, 0));
	wo = CALL("open wronly", open(path(name), O_WRONLY));
	CALL("read wronly", read(wo, buf, 1));
	CALL("pread wronly", pread(wo, buf, 1, 0));
	close(ro);
	close(wo);
	CALL("read bad fd", read(-1, buf, 1));
	CALL("read huge fd", read(999999, buf, 1));
	CALL("write bad fd", write(12345, buf, 1));
	CALL("read null buffer", read(fd, null_buffer, 10));
}

/*
 * Buffers the kernel cannot use: EFAULT, or a short count up to the first
 * bad byte.  @good is a page to read into; the page after it is unmapped,
 * and @readonly cannot be written.  Only where SIGSEGV had its default
 * action at start-up: folio turns its own faults into EFAULT with its
 * handler, installed only over the default (a sanitizer's runtime has its
 * own, and then the fault is the sanitizer's to report).
 */
static bool segv_default;

/*
 * A read into @bad - 3 made @depth bytes further down the stack: the
 * bytes it read (3), or what it returned otherwise.  The signal frame of
 * folio's fault goes below the stack pointer; valgrind did not grow the
 * main thread's stack for it when the handler had SA_ONSTACK (crash.c).
 */
static __attribute__((noinline)) long read_at_depth(int fd, char *bad, size_t depth)
{
	volatile char *frame = alloca(depth + 1);
	long ret;

	frame[depth] = 0;
	ret = pread(fd, bad - 3, 10, 0);
	return ret + frame[depth];
}

/*
 * Each read 8 KiB + 64 bytes below the last: below what the last one's
 * frame and handler touched, at 64 places in a page.
 */
static void stack_depth_calls(int fd, char *bad)
{
	int other = 0;

	for (size_t i = 1; i <= 64; i++)
		other += read_at_depth(fd, bad, i * (8192 + 64)) != 3;
	printf("    reads into a bad buffer at 64 stack depths: %d did not read 3 bytes\n", other);
}

static void bad_buffer_calls(int fd)
{
	char *good, *bad, *readonly;
	off_t end;

	if (!segv_default)
		return;
	good = mmap(NULL, 3 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (good == MAP_FAILED)
		return;
	bad = good + 4096;
	readonly = good + 2 * 4096;
	munmap(bad, 4096);
	mprotect(readonly, 4096, PROT_READ);
	/*
	 * memcheck reports each of these bad buffers, as it should (natively
	 * as a system call's, under folio as folio's invalid access): they
	 * are on purpose here.
	 */
	VALGRIND_DISABLE_ERROR_REPORTING;
	stack_depth_calls(fd, bad);
	CALL("pread unmapped", pread(fd, bad, 100, 0));
	CALL("pread read-only", pread(fd, readonly, 100, 0));
	CALL("pread runs off the end", pread(fd, bad - 10, 100, 0));
	show_data("  its first 10", bad - 10, 10);
	CALL("pread 4k runs off", pread(fd, good + 1000, 4096, 0));
	/* Cached on both sides by now: a bad buffer is no reason for EAGAIN. */
	CALL("preadv2 nowait unmapped",
	     preadv2(fd, (struct iovec[]){ { bad, 100 } }, 1, 0, RWF_NOWAIT));
	CALL("preadv2 nowait runs off the end",
	     preadv2(fd, (struct iovec[]){ { bad - 10, 100 } }, 1, 0, RWF_NOWAIT));
	lseek(fd, 0, SEEK_SET);
	CALL("read unmapped", read(fd, bad, 50));
	show_pos(fd);
	CALL("read runs off the end", read(fd, bad - 3, 50));
	show_pos(fd);
	CALL("readv second bad", readv(fd, (struct iovec[]){ { good, 7 }, { bad, 9 } }, 2));
	show_pos(fd);
	memset(good, 'g', 4096);
	CALL("pwrite unmapped", pwrite(fd, bad, 100, 3));
	CALL("pwrite runs off the end", pwrite(fd, bad - 20, 100, 3));
	CALL("pwrite page boundary at bad", pwrite(fd, bad - 96, 100, 4000));
	CALL("pwrite 4k runs off the end", pwrite(fd, bad - 1000, 4096, 8192));
	CALL("pwrite 200 runs off the end", pwrite(fd, bad - 150, 200, 5000));
	CALL("write runs off the end", write(fd, bad - 5, 100));
	show_pos(fd);
	CALL("pwritev second bad",
	     pwritev(fd, (struct iovec[]){ { good, 11 }, { bad, 9 } }, 2, 40));
	end = lseek(fd, 0, SEEK_END) + 3000;
	CALL("pwrite extends from bad", pwrite(fd, bad, 10, end));
	CALL("pwrite extends off the end", pwrite(fd, bad - 6, 10, end));
	show_pos(fd);
	VALGRIND_ENABLE_ERROR_REPORTING;
	munmap(good, 4096);
	munmap(readonly, 4096);
}

static void copy_calls(int fd, const char *name)
{
	int out = CALL("open copy target", open(path("copy.dat"), O_RDWR | O_CREAT | O_TRUNC, 0600));
	int pipefd[2];
	off_t off = 5;
	off64_t in_off = 0, out_off = 100;

	(void)name;
	CALL("sendfile", sendfile(out, fd, &off, 50));
	printf("    offset now %ld\n", (long)off);
	lseek(fd, 0, SEEK_SET);
	CALL("sendfile at pos", sendfile(out, fd, NULL, 20));
	show_pos(fd);
	CALL("sendfile64", sendfile64(out, fd, NULL, 10));
	CALL("copy_file_range", copy_file_range(fd, &in_off, out, &out_off, 60, 0));
	CALL("copy_file_range pos", copy_file_range(fd, NULL, out, NULL, 30, 0));
	show_pos(out);
	CALL("pipe", pipe(pipefd));
	in_off = 0;
	CALL("splice file to pipe", splice(fd, &in_off, pipefd[1], NULL, 40, 0));
	CALL("splice pipe to file", splice(pipefd[0], NULL, out, NULL, 40, 0));
	CALL("splice bad", splice(fd, NULL, out, NULL, 10, 0));
	close(pipefd[0]);
	close(pipefd[1]);
	CALL("close copy", close(out));
	file_sum("copy.dat");
}

static void stdio_calls(const char *name)
{
	char line[128];
	FILE *f, *g;
	int fd;

	f = fopen(path(name), "r+");
	CALL("fopen r+", f != NULL);
	CALL("fileno", fileno(f) >= 0);
	CALL("fgets", fgets(line, sizeof(line), f) != NULL);
	show_data("fgets", line, strlen(line));
	CALL("ftell", ftell(f));
	CALL("fseek", fseek(f, 2, SEEK_SET));
	CALL("fwrite", fwrite("STDIO", 1, 5, f));
	CALL("fflush", fflush(f));
	CALL("ftell after write", ftell(f));
	CALL("pread sees stdio", pread(fileno(f), line, 7, 0));
	show_data("pread after fflush", line, 7);
	CALL("fseek end", fseek(f, 0, SEEK_END));
	CALL("ftell end", ftell(f));
	CALL("fputs", fputs("stdio line\n", f));
	CALL("fclose", fclose(f));
	f = fopen64(path(name), "a+");
	CALL("fopen64 a+", f != NULL);
	CALL("ftell a+", ftell(f));
	CALL("fprintf", fprintf(f, "appended %d\n", 42));
	CALL("rewind+fread", (rewind(f), fread(line, 1, 20, f)));
	show_data("fread", line, 20);
	CALL("fclose a+", fclose(f));
	f = fopen(path(name), "r");
	CALL("fopen r", f != NULL);
	CALL("fwrite to r stream", fwrite("x", 1, 1, f));
	CALL("ferror", ferror(f));
	CALL("fclose r", fclose(f));
	f = fopen(path("stdio-new.txt"), "wx");
	CALL("fopen wx", f != NULL);
	CALL("fputs", fputs("new file\n", f));
	CALL("fclose wx", fclose(f));
	CALL("fopen wx exists", fopen(path("stdio-new.txt"), "wx") != NULL);
	CALL("fopen missing", fopen(path("missing"), "r") != NULL);
	CALL("fopen bad mode", fopen(path(name), "z") != NULL);
	fd = CALL("open for fdopen", open(path(name), O_RDONLY));
	g = fdopen(fd, "r");
	CALL("fdopen", g != NULL);
	CALL("fileno fdopen", fileno(g) == fd);
	CALL("fread fdopen", fread(line, 1, 30, g));
	show_data("fdopen fread", line, 30);
	CALL("fdopen w on rdonly", fdopen(fd, "w") != NULL);
	CALL("fclose fdopen", fclose(g));
	CALL("fd closed by fclose", fcntl(fd, F_GETFD));
	f = fopen(path("stdio-new.txt"), "a");
	CALL("fopen a", f != NULL);
	CALL("ftell a starts at end", ftell(f));
	CALL("fclose a", fclose(f));
	f = fopen(path("stdio-rw.txt"), "wx+");
	CALL("fopen wx+", f != NULL);
	CALL("fputs wx+", fputs("both ways\n", f));
	CALL("rewind+fgets wx+", (rewind(f), fgets(line, sizeof(line), f) != NULL));
	show_data("wx+ fgets", line, strlen(line));
	f = freopen(NULL, "w", f);
	CALL("freopen NULL w", f != NULL);
	CALL("ftell after truncation", (fseek(f, 0, SEEK_END), ftell(f)));
	CALL("freopen missing", freopen(path("no/such/dir"), "r", f) != NULL);
	f = fopen(path("stdio-new.txt"), "r");
	f = freopen(path(name), "r", f);
	CALL("freopen", f != NULL);
	CALL("fgets freopen", fgets(line, sizeof(line), f) != NULL);
	show_data("freopen fgets", line, strlen(line));
	f = freopen64(NULL, "r", f);
	CALL("freopen64 NULL", f != NULL);
	CALL("fclose freopen", fclose(f));
	file_sum("stdio-new.txt");
}

static void open_calls(void)
{
	char tmpl[PATH_MAX + 32];
	volatile int flags = O_RDWR;
	int dfd, fd;

	fd = CALL("creat", creat(path("creat.dat"), 0640));
	CALL("write creat", write(fd, "creat\n", 6));
	CALL("close creat", close(fd));
	fd = CALL("creat64", creat64(path("creat.dat"), 0640));
	CALL("close creat64", close(fd));
	fd = CALL("open64", open64(path("t1.dat"), O_RDONLY));
	CALL("close open64", close(fd));
	fd = CALL("open flags", open(path("t1.dat"), flags));
	CALL("close", close(fd));
	dfd = CALL("open dir", open(dir, O_RDONLY | O_DIRECTORY));
	fd = CALL("openat", openat(dfd, "t1.dat", flags & ~O_RDWR));
	CALL("read openat", read(fd, tmpl, 6));
	CALL("close openat", close(fd));
	fd = CALL("openat64 create", openat64(dfd, "sub/../at.dat", O_RDWR | O_CREAT, 0600));
	CALL("openat64 result", fd);
	mkdir(path("sub"), 0700);
	fd = openat64(dfd, "sub/../at.dat", O_RDWR | O_CREAT, 0600);
	CALL("openat64 create", fd >= 0);
	CALL("pwrite openat64", pwrite(fd, "at\n", 3, 0));
	CALL("close openat64", close(fd));
	CALL("openat missing", openat(dfd, "missing", O_RDONLY));
	CALL("open missing", open(path("missing"), O_RDONLY));
	CALL("open path", (fd = open(path("t1.dat"), O_PATH)) >= 0);
	close(fd);
	close(dfd);
	snprintf(tmpl, sizeof(tmpl), "%s/tmpXXXXXX", dir);
	fd = CALL("mkstemp", mkstemp(tmpl) >= 0);
	snprintf(tmpl, sizeof(tmpl), "%s/tmpXXXXXX", dir);
	fd = mkstemp64(tmpl);
	CALL("mkstemp64 write", write(fd, "tmp", 3));
	close(fd);
	unlink(tmpl);
	snprintf(tmpl, sizeof(tmpl), "%s/tmpXXXXXX.dat", dir);
	fd = mkstemps(tmpl, 4);
	CALL("mkstemps", write(fd, "tmp", 3));
	close(fd);
	unlink(tmpl);
	snprintf(tmpl, sizeof(tmpl), "%s/tmpXXXXXX", dir);
	fd = mkostemp(tmpl, O_CLOEXEC);
	CALL("mkostemp", fcntl(fd, F_GETFD));
	close(fd);
	unlink(tmpl);
	snprintf(tmpl, sizeof(tmpl), "%s/tmpXXXXXX.dat", dir);
	fd = mkostemps64(tmpl, 4, O_APPEND);
	CALL("mkostemps64", fcntl(fd, F_GETFL) & O_APPEND);
	close(fd);
	unlink(tmpl);
	snprintf(tmpl, sizeof(tmpl), "%s/badtemplate", dir);
	CALL("mkstemp bad", mkstemp(tmpl));
	/* The remaining temp files: remove so the directory listing is stable. */
	{
		DIR *d = opendir(dir);
		struct dirent *e;

		while (d && (e = readdir(d)))
			if (!strncmp(e->d_name, "tmp", 3))
				unlink(path(e->d_name));
		if (d)
			closedir(d);
	}
}

static void name_calls(void)
{
	struct stat st;
	char buf[32];
	int fd = open(path("named.dat"), O_RDWR | O_CREAT | O_TRUNC, 0600);

	CALL("write named", write(fd, "named file\n", 11));
	CALL("rename open file", rename(path("named.dat"), path("renamed.dat")));
	CALL("pwrite after rename", pwrite(fd, "NAMED", 5, 0));
	CALL("renameat", renameat(AT_FDCWD, path("renamed.dat"), AT_FDCWD, path("renamed2.dat")));
	CALL("renameat2 noreplace", renameat2(AT_FDCWD, path("renamed2.dat"), AT_FDCWD,
					       path("t1.dat"), RENAME_NOREPLACE));
	CALL("unlink open file", unlink(path("renamed2.dat")));
	CALL("fstat unlinked", fstat(fd, &st));
	show_size("unlinked", &st);
	CALL("pread unlinked", pread(fd, buf, 11, 0));
	show_data("unlinked", buf, 11);
	CALL("close unlinked", close(fd));
	CALL("unlinkat missing", unlinkat(AT_FDCWD, path("missing"), 0));
	CALL("unlink missing", unlink(path("missing")));
}

static void process_calls(int fd, const char *name)
{
	char *argv[] = { "cat", path(name), NULL };
	char buf[64];
	pid_t pid;
	int status, ret;
	FILE *p;

	CALL("pwrite before fork", pwrite(fd, "FORK", 4, 0));
	pid = fork();
	if (pid == 0) {
		/* The child inherits the fd and its offset. */
		lseek(fd, 0, SEEK_END);
		_exit(write(fd, "child\n", 6) == 6 ? 3 : 1);
	}
	waitpid(pid, &status, 0);
	CALL("fork child status", WEXITSTATUS(status));
	CALL("read after child", pread(fd, buf, 4, 0));
	show_pos(fd);
	/* Nothing buffered across vfork(): ThreadSanitizer makes it a fork()
	 * whose child's _exit() flushes a copy of stdout's buffer. */
	fflush(stdout);
	pid = vfork();
	if (pid == 0)
		_exit(4);
	waitpid(pid, &status, 0);
	CALL("vfork child status", WEXITSTATUS(status));
	pid = vfork();
	if (pid == 0) {
		execve("/bin/sh", (char *[]){ "sh", "-c", "exit 5", NULL }, environ);
		_exit(127);
	}
	waitpid(pid, &status, 0);
	CALL("vfork exec status", WEXITSTATUS(status));
	pid = _Fork();
	if (pid == 0) {
		_exit(pwrite(fd, "_F", 2, 4) == 2 ? 6 : 1);
	}
	waitpid(pid, &status, 0);
	CALL("_Fork child status", WEXITSTATUS(status));
	fflush(stdout);
	/* Report after waiting: the child's output comes first either way. */
	ret = posix_spawn(&pid, "/bin/cat", NULL, NULL, argv, environ);
	waitpid(pid, &status, 0);
	report("posix_spawn", ret, 0);
	CALL("posix_spawn status", WEXITSTATUS(status));
	ret = posix_spawnp(&pid, "cat", NULL, NULL, argv, environ);
	waitpid(pid, &status, 0);
	report("posix_spawnp", ret, 0);
	CALL("posix_spawnp missing", posix_spawnp(&pid, "no-such-program-here", NULL, NULL, argv,
						  environ));
	snprintf(buf, sizeof(buf), "exit 7");
	CALL("system", WEXITSTATUS(system(buf)));
	p = popen("wc -c < /dev/null", "r");
	CALL("popen", p != NULL);
	CALL("popen read", fread(buf, 1, sizeof(buf), p));
	CALL("pclose", pclose(p));
	pid = fork();
	if (pid == 0) {
		execl("/bin/sh", "sh", "-c", "exit 8", (char *)NULL);
		_exit(127);
	}
	waitpid(pid, &status, 0);
	CALL("execl status", WEXITSTATUS(status));
	pid = fork();
	if (pid == 0) {
		execlp("sh", "sh", "-c", "exit 9", (char *)NULL);
		_exit(127);
	}
	waitpid(pid, &status, 0);
	CALL("execlp status", WEXITSTATUS(status));
	pid = fork();
	if (pid == 0) {
		execle("/bin/sh", "sh", "-c", "exit $X", (char *)NULL, (char *[]){ "X=10", NULL });
		_exit(127);
	}
	waitpid(pid, &status, 0);
	CALL("execle status", WEXITSTATUS(status));
	pid = fork();
	if (pid == 0) {
		execvp("sh", (char *[]){ "sh", "-c", "exit 11", NULL });
		_exit(127);
	}
	waitpid(pid, &status, 0);
	CALL("execvp status", WEXITSTATUS(status));
	pid = fork();
	if (pid == 0) {
		execvpe("sh", (char *[]){ "sh", "-c", "exit $X", NULL }, (char *[]){ "X=12", NULL });
		_exit(127);
	}
	waitpid(pid, &status, 0);
	CALL("execvpe status", WEXITSTATUS(status));
	pid = fork();
	if (pid == 0) {
		int exe = open("/bin/sh", O_RDONLY | O_CLOEXEC);

		fexecve(exe, (char *[]){ "sh", "-c", "exit 13", NULL }, environ);
		_exit(127);
	}
	waitpid(pid, &status, 0);
	CALL("fexecve status", WEXITSTATUS(status));
	CALL("execv missing", execv("/no/such/program", argv));
}

/*
 * RWF_NOWAIT reads of pages in the kernel's page cache (just written) that
 * folio has not cached (the file was closed): the kernel's data, with what
 * folio has newer copied over it, not EAGAIN.
 */
static void nowait_calls(void)
{
	int fd = CALL("open nowait", open(path("nowait.dat"), O_RDWR | O_CREAT | O_TRUNC, 0644));
	char buf[3 * 4096], small[100];
	struct iovec iov[2] = { { buf, 5000 }, { small, sizeof(small) } };

	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = 'a' + i % 23;
	CALL("pwrite 12k", pwrite(fd, buf, sizeof(buf), 0));
	CALL("close nowait", close(fd));
	fd = CALL("reopen nowait", open(path("nowait.dat"), O_RDWR));
	CALL("pwrite over page 1", pwrite(fd, "newer", 5, 4096 + 900));
	memset(buf, 0, sizeof(buf));
	memset(small, 0, sizeof(small));	/* as it stays where the read fails */
	CALL("preadv2 nowait cold", preadv2(fd, iov, 2, 10, RWF_NOWAIT));
	show_data("  its first 5000", buf, 5000);
	show_data("  then", small, sizeof(small));
	CALL("preadv2 nowait across the end", preadv2(fd, iov, 1, 3 * 4096 - 50, RWF_NOWAIT));
	CALL("preadv2 nowait at the end", preadv2(fd, iov, 1, 3 * 4096, RWF_NOWAIT));
	CALL("close nowait again", close(fd));
}

/*
 * RLIMIT_FSIZE changed while files are open: a write accepted before the
 * limit went down stays accepted (close says nothing), a limit raised after
 * the open lets writes through, through each of the four calls.
 */
static void fsize_calls(void)
{
	int fd = CALL("open fsize", open(path("fsize.dat"), O_RDWR | O_CREAT | O_TRUNC, 0644));
	struct rlimit old, low;
	struct rlimit64 low64, old64;
	void (*old_handler)(int) = signal(SIGXFSZ, SIG_IGN);
	char buf[4096];

	memset(buf, 'f', sizeof(buf));
	getrlimit(RLIMIT_FSIZE, &old);
	low = (struct rlimit){ 1 << 20, old.rlim_max };
	low64 = (struct rlimit64){ 1 << 20, old.rlim_max };
	old64 = (struct rlimit64){ old.rlim_cur, old.rlim_max };
	/* Inside the file as the kernel has it: folio caches the writes. */
	CALL("ftruncate 6M", ftruncate(fd, 6 << 20));
	CALL("fsync 6M", fsync(fd));
	CALL("pwrite at 2M", pwrite(fd, buf, sizeof(buf), 2 << 20));
	CALL("setrlimit 1M", setrlimit(RLIMIT_FSIZE, &low));
	CALL("close after setrlimit", close(fd));
	fd = CALL("open under 1M", open(path("fsize.dat"), O_RDWR));
	CALL("pwrite at 1M", pwrite(fd, buf, 10, 1 << 20));
	CALL("setrlimit back", setrlimit(RLIMIT_FSIZE, &old));
	CALL("pwrite at 3M", pwrite(fd, buf, sizeof(buf), 3 << 20));
	CALL("setrlimit64 1M", setrlimit64(RLIMIT_FSIZE, &low64));
	CALL("fsync after setrlimit64", fsync(fd));
	CALL("pwrite across 1M", pwrite(fd, buf, sizeof(buf), (1 << 20) - 100));
	CALL("setrlimit64 back", setrlimit64(RLIMIT_FSIZE, &old64));
	CALL("pwrite at 4M", pwrite(fd, buf, sizeof(buf), 4 << 20));
	CALL("prlimit 1M", prlimit(getpid(), RLIMIT_FSIZE, &low, NULL));
	CALL("fdatasync after prlimit", fdatasync(fd));
	CALL("prlimit back", prlimit(0, RLIMIT_FSIZE, &old, NULL));
	CALL("pwrite at 5M", pwrite(fd, buf, sizeof(buf), 5 << 20));
	CALL("prlimit64 1M", prlimit64(0, RLIMIT_FSIZE, &low64, NULL));
	CALL("prlimit64 back", prlimit64(0, RLIMIT_FSIZE, &old64, NULL));
	CALL("close fsize", close(fd));
	signal(SIGXFSZ, old_handler);
	file_sum("fsize.dat");
}

/*
 * The edges of the kernel's rules for regular files: RWF_NOWAIT, the size
 * limits (RLIMIT_FSIZE and its SIGXFSZ, the file system's largest file),
 * offsets that overflow, DONTNEED.
 */
static void limit_calls(void)
{
	int fd = CALL("open limits", open(path("limits.dat"), O_RDWR | O_CREAT | O_TRUNC, 0644));
	struct rlimit old, small = { 1 << 20, 1 << 20 };	/* above this transcript */
	char buf[8192] = "limits";
	struct iovec iov = { buf, 4096 };
	void (*old_handler)(int) = signal(SIGXFSZ, SIG_IGN);
	struct stat st;

	/* folio asks for the times at open: a file system with fine-grained
	 * ctimes (xfs) then says EAGAIN, as it must update them, natively too. */
	CALL("fstat limits", fstat(fd, &st));
	CALL("pwritev2 RWF_NOWAIT", pwritev2(fd, &iov, 1, 0, RWF_NOWAIT));
	CALL("pwrite", pwrite(fd, buf, 4096, 0));
	CALL("fsync", fsync(fd));
	CALL("preadv2 RWF_NOWAIT hot", preadv2(fd, &iov, 1, 0, RWF_NOWAIT));
	/* Whether a RWF_NOWAIT read after DONTNEED finds the page varies natively. */
	CALL("fadvise DONTNEED", posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED));
	CALL("preadv2 unknown flag", preadv2(fd, &iov, 1, 0, 0x10000));
	CALL("pwrite at 2^62", pwrite(fd, buf, 10, 1LL << 62));
	/* Past ext2's largest file (2 TiB with 4 KiB blocks), within ext4's. */
	CALL("pwrite at 2^42", pwrite(fd, buf, 10, 1LL << 42));
	CALL("ftruncate back", ftruncate(fd, 4096));
	CALL("pwrite overflowing", pwrite(fd, buf, 10, INT64_MAX - 5));
	CALL("lseek 2^50", lseek(fd, 1LL << 50, SEEK_SET));
	CALL("lseek 2^43", lseek(fd, 1LL << 43, SEEK_SET));
	CALL("lseek end + 2^62", lseek(fd, 1LL << 62, SEEK_END));
	getrlimit(RLIMIT_FSIZE, &old);
	setrlimit(RLIMIT_FSIZE, &small);
	CALL("open under RLIMIT_FSIZE", close(fd) == 0 ?
	     (fd = open(path("limits.dat"), O_RDWR)) : -1);
	CALL("pwrite across RLIMIT_FSIZE", pwrite(fd, buf, 8192, (1 << 20) - 5000));
	CALL("pwrite at RLIMIT_FSIZE", pwrite(fd, buf, 10, 1 << 20));
	setrlimit(RLIMIT_FSIZE, &old);
	signal(SIGXFSZ, old_handler);
	CALL("close limits", close(fd));
	file_sum("limits.dat");
	nowait_calls();
}

int main(int argc, char **argv)
{
	int fd;

	struct sigaction sa;

	segv_default = sigaction(SIGSEGV, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL;
	if (argc != 2 || !realpath(argv[1], dir)) {
		fprintf(stderr, "usage: apicheck DIR\n");
		return 2;
	}
	fd = CALL("open", open(path("t1.dat"), O_RDWR | O_CREAT | O_TRUNC, 0644));
	data_calls(fd);
	size_calls(fd, "t1.dat");
	sync_calls(fd);
	fd_calls(fd, "t1.dat");
	bad_buffer_calls(fd);
	copy_calls(fd, "t1.dat");
	stdio_calls("t1.dat");
	open_calls();
	name_calls();
	process_calls(fd, "t1.dat");
	fsize_calls();		/* before limit_calls() lowers the hard limit */
	limit_calls();
	file_sum("t1.dat");
	file_sum("creat.dat");
	file_sum("at.dat");
	CALL("closefrom", (closefrom(3), fcntl(fd, F_GETFD)));
	fflush(stdout);
	execl("/bin/cat", "cat", path("t1.dat"), (char *)NULL);
	return 1;
}
