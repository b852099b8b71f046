/*
 * micro - folio's micro workloads.  One binary, run natively and under folio
 * by scripts/bench: only LD_PRELOAD differs.
 *
 *	micro WORKLOAD FILE SECONDS
 *
 * Prints one line: "<value> <unit>" (higher is better for ops/s and MB/s,
 * lower for ns).  FILE must exist and be at least 64 MiB, except for the
 * writing workloads, which make their own.
 *
 *   tiny-pread      100-byte random preads of a hot file            ops/s
 *   pread-4k        4 KiB random preads of a hot file                ops/s
 *   mmap-tiny       100-byte memcpy from an mmap of it (the limit)   ops/s
 *   mmap-4k         4 KiB memcpy from an mmap of it (the limit)      ops/s
 *   anon-tiny       100-byte memcpy from a copy of it in anonymous   ops/s
 *                   memory with transparent huge pages (the limit)
 *   anon-4k         the same, 4 KiB                                  ops/s
 *   pwrite-4k-1t    4 KiB in-place random pwrites, 1 thread          ops/s
 *   pwrite-4k-2t    the same from 2 threads on one file              ops/s
 *   read-p50/p99    100-byte pread latency while a thread overwrites ns
 *   mmap-p99        the same of a memcpy from an mmap (the limit)    ns
 *   seq-write       64 KiB writes of 256 MiB, then fsync             MB/s
 *   append          4 threads appending 100-byte records (O_APPEND)  ops/s
 *   cold-seq        sequential 128 KiB reads of a file just dropped  MB/s
 *                   from the kernel's cache (posix_fadvise DONTNEED)
 *   cold-rand       4 KiB random preads of such a file               ops/s
 *   open-close      open() and close() of FILE (a tracked file: the    ops/s
 *                   registry's lookup at each first open included)
 *   short-writer    processes that open FILE, write 64 KiB, close it procs/s
 *                   and exit, one after the other (under folio each
 *                   starts a guardian: the cost of starting one)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define FILE_SIZE	(64L << 20)

/*
 * The limit rows take the faster of two copies, as the fastest differs
 * between processors: libc's memcpy() through copy_fn, which the compiler
 * cannot see through, and the compiler's own inline copy of a fixed length
 * (GCC 12: "rep movsq").  perf annotate showed the inline copy taking 94% of
 * the loop on Intel Xeon, at a tenth of libc's vector copy; on AMD EPYC it
 * is the faster (16 M 100-byte copies a second against libc's 10 M).
 * Checked with perf record -e cpu-clock and perf annotate of copy_loop():
 * one branch calls libc (__memmove_avx_unaligned_erms here), the other
 * is the rep movsq.
 */
static void *(*volatile copy_fn)(void *, const void *, size_t) = memcpy;

static inline void limit_copy(char *dst, const char *src, size_t len, int inline_copy)
{
	if (!inline_copy)
		copy_fn(dst, src, len);
	else if (len == 100)
		__builtin_memcpy(dst, src, 100);
	else
		__builtin_memcpy(dst, src, 4096);
	__asm__ volatile("" : : "r"(dst) : "memory");
}

static const char *file;
static double seconds;
static volatile int stop;

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static unsigned long long next(unsigned long long *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

static int open_or_die(int flags)
{
	int fd;

	if (flags & O_TRUNC)	/* a new file each run: no truncation cost */
		unlink(file);
	fd = open(file, flags, 0644);

	if (fd < 0) {
		perror(file);
		exit(1);
	}
	return fd;
}

/*
 * Read the whole file once through @fd, so that it is hot in folio's cache
 * as the script made it hot in the kernel's ("hot file" workloads measure
 * hits on both sides).
 */
static void warm(int fd)
{
	static char buf[1 << 20];

	while (read(fd, buf, sizeof(buf)) > 0)
		;
}

/* Random preads of @len bytes for the given time; ops/s. */
static double random_preads(size_t len, long size)
{
	static char buf[4096];
	unsigned long long x = 88172645463325252ull;
	int fd = open_or_die(O_RDONLY);
	long ops = 0;
	double t0, t;

	warm(fd);
	t0 = now();
	do {
		for (int i = 0; i < 1000; i++) {
			off_t off = next(&x) % (size - len);

			if (len == 4096)
				off &= ~4095L;
			if (pread(fd, buf, len, off) != (ssize_t)len)
				exit(1);
		}
		ops += 1000;
	} while ((t = now()) - t0 < seconds);
	close(fd);
	return ops / (t - t0);
}

/* The file mapped and its pages in the mapping (mapped: folio passes it through). */
static char *map_file(int fd)
{
	char *map = mmap(NULL, FILE_SIZE, PROT_READ, MAP_SHARED | MAP_POPULATE, fd, 0);

	if (map == MAP_FAILED)
		exit(1);
	return map;
}

/*
 * memcpy() of @len bytes from @src (the file's 64 MiB) at the offsets
 * random_preads() reads: the physical limit of a cache in the process.
 */
static double copy_loop(const char *src, size_t len, int inline_copy)
{
	static char buf[4096];
	unsigned long long x = 88172645463325252ull;
	long ops = 0;
	double t0 = now(), t;

	do {
		for (int i = 0; i < 1000; i++) {
			off_t off = next(&x) % (FILE_SIZE - len);

			if (len == 4096)
				off &= ~4095L;
			limit_copy(buf, src + off, len, inline_copy);
		}
		ops += 1000;
	} while ((t = now()) - t0 < seconds);
	return ops / (t - t0);
}

static double limit_copies(const char *src, size_t len)
{
	double libc = copy_loop(src, len, 0), inlined = copy_loop(src, len, 1);

	return libc > inlined ? libc : inlined;
}

/* From a mapping of the file. */
static double mmap_copies(size_t len)
{
	int fd = open_or_die(O_RDONLY);
	char *map = map_file(fd);
	double v = limit_copies(map, len);

	munmap(map, FILE_SIZE);
	close(fd);
	return v;
}

/* From a copy of the file in anonymous memory, in huge pages if it gets them. */
static double anon_copies(size_t len)
{
	int fd = open_or_die(O_RDONLY);
	char *copy = mmap(NULL, FILE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			  -1, 0);
	double v;

	if (copy == MAP_FAILED)
		exit(1);
	madvise(copy, FILE_SIZE, MADV_HUGEPAGE);
	for (long done = 0; done < FILE_SIZE;) {
		ssize_t n = pread(fd, copy + done, FILE_SIZE - done, done);

		if (n <= 0)
			exit(1);
		done += n;
	}
	v = limit_copies(copy, len);
	munmap(copy, FILE_SIZE);
	close(fd);
	return v;
}

struct writer {
	int fd;
	unsigned long long seed;
	long ops;
	size_t len;
	int append;
};

static void *write_loop(void *arg)
{
	struct writer *w = arg;
	char buf[4096];

	memset(buf, 'w', sizeof(buf));
	while (!stop) {
		for (int i = 0; i < 100; i++) {
			ssize_t n = w->append ? write(w->fd, buf, w->len) :
				    pwrite(w->fd, buf, w->len,
					   (next(&w->seed) % (FILE_SIZE / 4096)) * 4096);

			if (n != (ssize_t)w->len)
				exit(1);
		}
		w->ops += 100;
	}
	return NULL;
}

/* @threads writers for the given time; total ops/s. */
static double writers(int threads, size_t len, int append)
{
	struct writer w[8];
	pthread_t tid[8];
	double t0 = now(), t;
	long ops = 0;
	int fd = open_or_die(append ? O_WRONLY | O_APPEND | O_CREAT | O_TRUNC : O_RDWR);

	stop = 0;
	for (int i = 0; i < threads; i++) {
		w[i] = (struct writer){ fd, 88172645463325252ull * (i + 1), 0, len, append };
		pthread_create(&tid[i], NULL, write_loop, &w[i]);
	}
	while ((t = now()) - t0 < seconds)
		usleep(10000);
	stop = 1;
	for (int i = 0; i < threads; i++) {
		pthread_join(tid[i], NULL);
		ops += w[i].ops;
	}
	close(fd);		/* under folio, where the data reaches the kernel: timed */
	t = now();
	return ops / (t - t0);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/*
 * p50 or p99 (@pct) of 100-byte pread latency under a nonstop overwriter;
 * with @mapped, of a copy from an mmap of the file instead (the limit: 1
 * libc's memcpy(), 2 the inline copy).
 */
static double latency_under_write(int pct, int mapped)
{
	enum { SAMPLES = 200000 };
	static double lat[SAMPLES];
	unsigned long long x = 1234567ull;
	struct writer w = { open_or_die(O_RDWR), 99, 0, 4096, 0 };
	int fd = open_or_die(O_RDONLY);
	pthread_t tid;
	double t0;
	char buf[100], *map = mapped ? map_file(fd) : NULL;
	long n = 0;

	warm(fd);
	t0 = now();
	stop = 0;
	pthread_create(&tid, NULL, write_loop, &w);
	while (n < SAMPLES && now() - t0 < seconds) {
		off_t off = next(&x) % (FILE_SIZE - 100);
		double a = now();

		if (map)
			limit_copy(buf, map + off, sizeof(buf), mapped == 2);
		else if (pread(fd, buf, sizeof(buf), off) != sizeof(buf))
			exit(1);
		lat[n++] = (now() - a) * 1e9;
	}
	stop = 1;
	pthread_join(tid, NULL);
	if (map)
		munmap(map, FILE_SIZE);
	close(fd);
	close(w.fd);
	qsort(lat, n, sizeof(lat[0]), cmp_double);
	return lat[(n - 1) * pct / 100];
}

static double sequential_write(void)
{
	static char buf[65536];
	long total = 256L << 20;
	int fd = open_or_die(O_WRONLY | O_CREAT | O_TRUNC);
	double t0 = now(), t;

	memset(buf, 's', sizeof(buf));
	for (long done = 0; done < total; done += sizeof(buf))
		if (write(fd, buf, sizeof(buf)) != sizeof(buf))
			exit(1);
	if (fsync(fd))
		exit(1);
	t = now();
	close(fd);
	return total / (t - t0) / 1e6;
}

/*
 * Drop @fd's file from the kernel's page cache (clean pages go at once).
 * Only this file: a global drop_caches would make every other workload of
 * the run cold too.
 */
static void drop_caches(int fd)
{
	fdatasync(fd);
	posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
}

static double cold_read(int random)
{
	static char buf[131072];
	unsigned long long x = 55555ull;
	int fd = open_or_die(O_RDONLY);
	long ops = 0, bytes = 0;
	double t0, t;

	drop_caches(fd);
	t0 = now();
	do {
		ssize_t n;

		if (random)
			n = pread(fd, buf, 4096, (next(&x) % (FILE_SIZE / 4096)) * 4096);
		else
			n = pread(fd, buf, sizeof(buf), bytes % FILE_SIZE);
		if (n <= 0)
			exit(1);
		bytes += n;
		ops++;
	} while ((t = now()) - t0 < seconds && (random || bytes < FILE_SIZE));
	close(fd);
	return random ? ops / (t - t0) : bytes / (t - t0) / 1e6;
}

static double open_closes(void)
{
	long ops = 0;
	double t0 = now(), t;

	close(open_or_die(O_RDWR | O_CREAT));
	do {
		for (int i = 0; i < 64; i++) {
			int fd = open(file, O_RDWR);

			if (fd < 0 || close(fd))
				exit(1);
		}
		ops += 64;
	} while ((t = now()) - t0 < seconds);
	return ops / (t - t0);
}

/* One short-lived writer: the child of short_writers(). */
static int short_writer_child(void)
{
	static char buf[65536];
	int fd = open_or_die(O_WRONLY | O_CREAT | O_TRUNC);

	memset(buf, 'w', sizeof(buf));
	if (write(fd, buf, sizeof(buf)) != sizeof(buf) || close(fd))
		return 1;
	return 0;
}

static double short_writers(void)
{
	extern char **environ;
	char *args[] = { "micro", "short-writer-child", (char *)file, "0", NULL };
	long procs = 0;
	double t0 = now(), t;

	do {
		int status;
		pid_t pid;

		if (posix_spawn(&pid, "/proc/self/exe", NULL, NULL, args, environ) ||
		    waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status))
			exit(1);
		procs++;
	} while ((t = now()) - t0 < seconds);
	return procs / (t - t0);
}

int main(int argc, char **argv)
{
	const char *w;
	double v;
	const char *unit = "ops/s";

	if (argc != 4) {
		fprintf(stderr, "usage: micro WORKLOAD FILE SECONDS\n");
		return 2;
	}
	w = argv[1];
	file = argv[2];
	seconds = atof(argv[3]);
	if (!strcmp(w, "tiny-pread"))
		v = random_preads(100, FILE_SIZE);
	else if (!strcmp(w, "pread-4k"))
		v = random_preads(4096, FILE_SIZE);
	else if (!strcmp(w, "mmap-4k"))
		v = mmap_copies(4096);
	else if (!strcmp(w, "mmap-tiny"))
		v = mmap_copies(100);
	else if (!strcmp(w, "anon-4k"))
		v = anon_copies(4096);
	else if (!strcmp(w, "anon-tiny"))
		v = anon_copies(100);
	else if (!strcmp(w, "pwrite-4k-1t"))
		v = writers(1, 4096, 0);
	else if (!strcmp(w, "pwrite-4k-2t"))
		v = writers(2, 4096, 0);
	else if (!strcmp(w, "read-p50"))
		v = latency_under_write(50, 0), unit = "ns";
	else if (!strcmp(w, "read-p99"))
		v = latency_under_write(99, 0), unit = "ns";
	else if (!strcmp(w, "mmap-p99"))
		v = fmin(latency_under_write(99, 1), latency_under_write(99, 2)), unit = "ns";
	else if (!strcmp(w, "seq-write"))
		v = sequential_write(), unit = "MB/s";
	else if (!strcmp(w, "append"))
		v = writers(4, 100, 1);
	else if (!strcmp(w, "cold-seq"))
		v = cold_read(0), unit = "MB/s";
	else if (!strcmp(w, "cold-rand"))
		v = cold_read(1);
	else if (!strcmp(w, "open-close"))
		v = open_closes();
	else if (!strcmp(w, "short-writer"))
		v = short_writers(), unit = "procs/s";
	else if (!strcmp(w, "short-writer-child"))
		return short_writer_child();
	else {
		fprintf(stderr, "micro: unknown workload %s\n", w);
		return 2;
	}
	printf("%.1f %s\n", v, unit);
	return 0;
}
