/*
 * stress - threads doing random file operations on shared files, checked
 * against an oracle.
 *
 *	stress DIR [--seed S] [--seconds T] [--threads N]
 *
 * Files in DIR (all named *.dat, so that FOLIO_FILES='*.dat' tracks them):
 *
 *   rec0.dat, rec1.dat	fixed-size records, in chunks of CHUNK_RECS; chunk c
 *			belongs to thread c % N, the only one writing its
 *			records.  Each record names its file, owner, index and
 *			version; its checksum and payload follow from those.
 *			The owner bumps a record's version on every rewrite,
 *			after publishing it as started and before publishing it
 *			as committed.  Every read must find each record whole
 *			(untorn), of a version between what was committed
 *			before the read and what was started after it, and not
 *			older than what the same thread saw before (holes and
 *			records past the end: version 0).
 *   log.dat		O_APPEND records of variable length from every thread
 *			(up to LOG_MAX bytes in all, then no more appends),
 *			each self-describing; a thread learns where each of its
 *			records landed from its file position and publishes it,
 *			so that any thread can check any of them, and scans
 *			check that one thread's records come in sequence.
 *   scratch.dat		truncated and re-extended by thread 0 alone, which
 *			knows every byte (the gaps read as zeros); other threads
 *			check that each byte is zero or its offset's pattern.
 *
 * Reads are pread, lseek+read, readv, preadv and memcpy from an mmap (the
 * file passes through folio while it is mapped); writes pwrite, lseek+write,
 * writev, pwritev; also fsync, fdatasync, fstat, dup, close and reopen.
 * Natively, and under folio while a file may be passing through, a read of
 * a record may be torn by a concurrent write (the kernel's copies are not
 * atomic): it is read again until whole.  folio's own copies never tear.
 *
 * At the end, with every file closed, DIR/NAME.expected is written for each
 * file with raw system calls (folio never sees them) for the caller to
 * compare with the .dat files.  The seed comes first in the output; on a
 * mismatch the program prints what it expected and got, and exits 1.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "folio.h"

#define MAX_THREADS	16
#define REC_FILES	2
#define REC_SIZE	128
#define CHUNK_RECS	48		/* 6 KiB: chunks straddle pages */
#define NCHUNK		32
#define NREC		(NCHUNK * CHUNK_RECS)
#define REC_FILE_MAX	((off_t)NREC * REC_SIZE)
#define MAX_READ_RECS	96
#define LOG_MAX		(4 << 20)
#define LOG_HDR		24
#define LOG_REC_MAX	512
#define LOG_REC_MIN	(LOG_HDR + 8)
#define LOG_RECS_MAX	(LOG_MAX / LOG_REC_MIN)	/* of one thread */
#define SCRATCH_MAX	(256 * 1024)
#define TORN_RETRIES	10000

#define REC_MAGIC	0x52434c46u	/* "FLCR" */
#define LOG_MAGIC	0x474c4c46u	/* "FLLG" */

enum { F_REC0, F_REC1, F_LOG, F_SCRATCH, NFILES };

static const char *const names[NFILES] = { "rec0", "rec1", "log", "scratch" };

struct rec {
	uint32_t magic;
	uint16_t file;
	uint16_t owner;
	uint32_t index;
	uint32_t zero;
	uint64_t version;
	uint64_t sum;
	unsigned char payload[REC_SIZE - 32];
};

struct log_hdr {
	uint32_t magic;
	uint16_t thread;
	uint16_t len;
	uint32_t seq;
	uint32_t zero;
	uint64_t sum;
};

_Static_assert(sizeof(struct rec) == REC_SIZE, "record size");
_Static_assert(sizeof(struct log_hdr) == LOG_HDR, "log header size");

struct thread {
	int id;
	pthread_t handle;
	unsigned long long rng;
	int fd[NFILES];			/* this thread's own descriptors */
	uint64_t version[REC_FILES][NREC];	/* of its own records */
	uint64_t seen[REC_FILES][NREC];	/* newest version it read */
	uint32_t log_seq;
	unsigned long ops, torn;
	uint64_t lo[NREC];		/* committed versions before a read */
	unsigned char *big;		/* LOG_MAX bytes */
};

static char dir[PATH_MAX];
static unsigned long seed;
static double seconds;
static int nthreads;
static bool tracked;
static struct timespec start;
static int shared_fd[NFILES];
static struct thread threads[MAX_THREADS];

/* The oracle, shared between threads (__atomic accesses only). */
static uint64_t started[REC_FILES][NREC], committed[REC_FILES][NREC];
static off_t rec_size_done[REC_FILES];	/* end of the furthest completed write */
static unsigned map_active[NFILES], map_gen[NFILES];
static off_t log_off[MAX_THREADS][LOG_RECS_MAX];
static uint16_t log_len[MAX_THREADS][LOG_RECS_MAX];
static uint32_t log_count[MAX_THREADS];
static off_t log_reserved;		/* bytes appends may still add up to */
static unsigned char scratch_model[SCRATCH_MAX];	/* thread 0's */
static off_t scratch_size;

static pthread_mutex_t fail_lock = PTHREAD_MUTEX_INITIALIZER;

static void fail(struct thread *t, const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&fail_lock);
	printf("stress: FAILED, seed %lu, thread %d, after %lu operations: ", seed,
	       t ? t->id : -1, t ? t->ops : 0);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n%s\n", tracked ? "(under folio)" : "(native)");
	fflush(stdout);
	_exit(1);
}

#define CHECK(t, cond, ...) \
	do { \
		if (!(cond)) \
			fail(t, __VA_ARGS__); \
	} while (0)

static unsigned long rnd(struct thread *t, unsigned long n)
{
	t->rng ^= t->rng << 13;
	t->rng ^= t->rng >> 7;
	t->rng ^= t->rng << 17;
	return n ? t->rng % n : 0;
}

static double elapsed(void)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (now.tv_sec - start.tv_sec) + (now.tv_nsec - start.tv_nsec) / 1e9;
}

static uint64_t mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ull;
	return x ^ (x >> 33);
}

static void fill_bytes(unsigned char *p, size_t n, uint64_t key)
{
	for (size_t i = 0; i < n; i += 8) {
		uint64_t v = mix(key + i);

		memcpy(p + i, &v, n - i < 8 ? n - i : 8);
	}
}

static uint64_t checksum(const void *p, size_t n)
{
	const unsigned char *b = p;
	uint64_t h = 0xcbf29ce484222325ull;

	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 0x100000001b3ull;
	return h;
}

static int owner_of(uint32_t index)
{
	return (index / CHUNK_RECS) % nthreads;
}

/* The record @index of rec file @f at @version (all zeros for version 0). */
static void make_rec(struct rec *r, int f, uint32_t index, uint64_t version)
{
	memset(r, 0, sizeof(*r));
	if (!version)
		return;
	r->magic = REC_MAGIC;
	r->file = f;
	r->owner = owner_of(index);
	r->index = index;
	r->version = version;
	fill_bytes(r->payload, sizeof(r->payload), mix(((uint64_t)f << 56) ^
						       ((uint64_t)index << 40) ^ version));
	r->sum = checksum(r, offsetof(struct rec, sum)) ^ checksum(r->payload, sizeof(r->payload));
}

static void make_log_rec(unsigned char *p, int thread, uint32_t seq, uint16_t len)
{
	struct log_hdr h = { LOG_MAGIC, thread, len, seq, 0, 0 };

	fill_bytes(p + LOG_HDR, len - LOG_HDR, mix(((uint64_t)thread << 32) ^ seq) ^ len);
	h.sum = checksum(&h, offsetof(struct log_hdr, sum)) ^ checksum(p + LOG_HDR, len - LOG_HDR);
	memcpy(p, &h, LOG_HDR);
}

static unsigned char scratch_pattern(off_t off)
{
	return (unsigned char)(off * 131 % 251 + 1);
}

static int open_file(int f, int flags)
{
	char path[PATH_MAX + 16];

	snprintf(path, sizeof(path), "%s/%s.dat", dir, names[f]);
	return open(path, flags, 0644);
}

static int own_flags(int f)
{
	return f == F_LOG ? O_RDWR | O_APPEND : O_RDWR;
}

/* ---- Record files ---- */

/* Whether a read of file @f between two snapshots may have passed through. */
struct map_snap {
	unsigned active, gen;
};

static struct map_snap map_snap(int f)
{
	return (struct map_snap){ __atomic_load_n(&map_active[f], __ATOMIC_ACQUIRE),
				  __atomic_load_n(&map_gen[f], __ATOMIC_ACQUIRE) };
}

static bool may_tear(int f, struct map_snap before)
{
	struct map_snap after = map_snap(f);

	return !tracked || before.active || after.active || before.gen != after.gen;
}

/* The first byte where the record read differs from @version's, or -1. */
static int rec_diff(const struct rec *got, int f, uint32_t index, uint64_t version)
{
	struct rec want;

	make_rec(&want, f, index, version);
	for (int i = 0; i < REC_SIZE; i++)
		if (((const unsigned char *)got)[i] != ((unsigned char *)&want)[i])
			return i;
	return -1;
}

/* The version a record read claims to be: 0 if all zero. */
static uint64_t rec_version(const struct rec *r)
{
	static const struct rec zero;

	if (!memcmp(r, &zero, sizeof(zero)))
		return 0;
	return r->version;
}

static bool rec_whole(const struct rec *r, int f, uint32_t index)
{
	return rec_diff(r, f, index, rec_version(r)) < 0;
}

static void fail_rec(struct thread *t, const char *how, int f, uint32_t index,
		     const struct rec *got, uint64_t lo, uint64_t hi)
{
	uint64_t v = rec_version(got);
	int at = rec_diff(got, f, index, v);

	fail(t, "%s: %s.dat offset %lld (record %u of thread %d): expected a whole record "
	     "of version %llu..%llu, got %s version %llu (magic %#x file %u owner %u index %u)"
	     "; first wrong byte at +%d", how, names[f], (long long)index * REC_SIZE, index,
	     owner_of(index), (unsigned long long)lo, (unsigned long long)hi,
	     at < 0 ? "whole" : "a torn", (unsigned long long)v, got->magic, got->file,
	     got->owner, got->index, at);
}

/* Read one record again, alone, until it is whole (a torn read is transient). */
static void reread_rec(struct thread *t, const char *how, int f, uint32_t index,
		       struct rec *r, const unsigned char *map)
{
	for (int i = 0; i < TORN_RETRIES && !rec_whole(r, f, index); i++) {
		if (map) {
			memcpy(r, map + (size_t)index * REC_SIZE, REC_SIZE);
			continue;
		}
		CHECK(t, pread(shared_fd[f], r, REC_SIZE, (off_t)index * REC_SIZE) == REC_SIZE,
		      "%s: %s.dat: pread of record %u again: errno %d", how, names[f], index,
		      errno);
		if (i > 100)
			sched_yield();
	}
	t->torn++;
}

/*
 * Check records @first.. of file @f read into @buf (@n bytes), against the
 * committed versions in @lo taken before the read.
 */
static void check_recs(struct thread *t, const char *how, int f, uint32_t first,
		       unsigned char *buf, size_t n, const uint64_t *lo, struct map_snap snap,
		       const unsigned char *map)
{
	bool tear = may_tear(f, snap);

	for (size_t i = 0; i < n / REC_SIZE; i++) {
		struct rec *r = (struct rec *)(buf + i * REC_SIZE);
		uint32_t index = first + i;
		uint64_t v, hi, floor = lo[i] > t->seen[f][index] ? lo[i] : t->seen[f][index];

		if (!rec_whole(r, f, index) && tear)
			reread_rec(t, how, f, index, r, map);
		hi = __atomic_load_n(&started[f][index], __ATOMIC_ACQUIRE);
		v = rec_version(r);
		if (!rec_whole(r, f, index) || v < floor || v > hi)
			fail_rec(t, how, f, index, r, floor, hi);
		t->seen[f][index] = v;
	}
}

static void snapshot(int f, uint32_t first, size_t count, uint64_t *lo)
{
	for (size_t i = 0; i < count; i++)
		lo[i] = first + i < NREC ?
			__atomic_load_n(&committed[f][first + i], __ATOMIC_ACQUIRE) : 0;
}

static ssize_t read_some(struct thread *t, int f, void *buf, size_t len, off_t off,
			 const char **how)
{
	struct iovec iov[3];
	size_t a = rnd(t, len + 1), b = rnd(t, len - a + 1);
	int fd = t->fd[f];

	iov[0] = (struct iovec){ buf, a };
	iov[1] = (struct iovec){ (char *)buf + a, b };
	iov[2] = (struct iovec){ (char *)buf + a + b, len - a - b };
	switch (rnd(t, 4)) {
	case 0:
		*how = "pread";
		return pread(shared_fd[f], buf, len, off);
	case 1:
		*how = "lseek+read";
		return lseek(fd, off, SEEK_SET) == off ? read(fd, buf, len) : -1;
	case 2:
		*how = "lseek+readv";
		return lseek(fd, off, SEEK_SET) == off ? readv(fd, iov, 3) : -1;
	default:
		*how = "preadv";
		return preadv(rnd(t, 2) ? fd : shared_fd[f], iov, 3, off);
	}
}

static void op_rec_read(struct thread *t)
{
	unsigned char *buf = t->big;
	uint64_t *lo = t->lo;
	int f = rnd(t, REC_FILES);
	uint32_t first = rnd(t, NREC + 8);
	size_t count = 1 + rnd(t, rnd(t, 4) ? 8 : MAX_READ_RECS);
	off_t off = (off_t)first * REC_SIZE, done;
	struct map_snap snap;
	const char *how;
	ssize_t n;

	snapshot(f, first, count, lo);
	done = __atomic_load_n(&rec_size_done[f], __ATOMIC_ACQUIRE);
	snap = map_snap(f);
	n = read_some(t, f, buf, count * REC_SIZE, off, &how);
	CHECK(t, n >= 0, "%s of %s.dat at %lld: errno %d", how, names[f], (long long)off, errno);
	/* Sizes are whole records; a read ends early only at the end of the file. */
	CHECK(t, n % REC_SIZE == 0 && (!n || off + n <= REC_FILE_MAX) &&
	      ((size_t)n == count * REC_SIZE || off + n >= done),
	      "%s of %s.dat: %zu bytes at %lld: expected %zu, or fewer only at the end (at "
	      "least %lld), got %zd", how, names[f], count * REC_SIZE, (long long)off,
	      count * REC_SIZE, (long long)done, n);
	if (first < NREC)
		check_recs(t, how, f, first, buf, n, lo, snap, NULL);
}

static void op_rec_mmap(struct thread *t)
{
	unsigned char *buf = t->big;
	uint64_t *lo = t->lo;
	int f = rnd(t, REC_FILES);
	off_t done;
	struct map_snap snap;
	struct stat st;
	unsigned char *map;

	snapshot(f, 0, NREC, lo);
	done = __atomic_load_n(&rec_size_done[f], __ATOMIC_ACQUIRE);
	CHECK(t, fstat(shared_fd[f], &st) == 0, "fstat: errno %d", errno);
	CHECK(t, st.st_size % REC_SIZE == 0 && st.st_size >= done && st.st_size <= REC_FILE_MAX,
	      "fstat of %s.dat: expected a size of whole records from %lld to %lld, got %lld",
	      names[f], (long long)done, (long long)REC_FILE_MAX, (long long)st.st_size);
	if (!st.st_size)
		return;
	__atomic_add_fetch(&map_active[f], 1, __ATOMIC_ACQ_REL);
	__atomic_add_fetch(&map_gen[f], 1, __ATOMIC_ACQ_REL);
	snap = map_snap(f);
	map = mmap(NULL, st.st_size, PROT_READ, MAP_SHARED, rnd(t, 2) ? t->fd[f] : shared_fd[f], 0);
	CHECK(t, map != MAP_FAILED, "mmap of %s.dat: errno %d", names[f], errno);
	memcpy(buf, map, st.st_size);
	check_recs(t, "mmap", f, 0, buf, st.st_size, lo, snap, map);
	CHECK(t, munmap(map, st.st_size) == 0, "munmap: errno %d", errno);
	__atomic_add_fetch(&map_gen[f], 1, __ATOMIC_ACQ_REL);
	__atomic_sub_fetch(&map_active[f], 1, __ATOMIC_ACQ_REL);
}

/* A chunk of this thread's, among the first ones while the files grow. */
static int pick_chunk(struct thread *t)
{
	int owned = (NCHUNK - t->id + nthreads - 1) / nthreads;
	int grown = (int)(elapsed() * 2 / seconds * owned) + 1;

	if (grown < owned && rnd(t, 4))
		owned = grown;
	return t->id + nthreads * rnd(t, owned);
}

static ssize_t write_some(struct thread *t, int f, const void *buf, size_t len, off_t off,
			  const char **how)
{
	struct iovec iov[3];
	size_t a = rnd(t, len + 1), b = rnd(t, len - a + 1);
	int fd = t->fd[f];

	iov[0] = (struct iovec){ (void *)buf, a };
	iov[1] = (struct iovec){ (char *)buf + a, b };
	iov[2] = (struct iovec){ (char *)buf + a + b, len - a - b };
	switch (rnd(t, 4)) {
	case 0:
		*how = "pwrite";
		return pwrite(rnd(t, 2) ? fd : shared_fd[f], buf, len, off);
	case 1:
		*how = "lseek+write";
		return lseek(fd, off, SEEK_SET) == off ? write(fd, buf, len) : -1;
	case 2:
		*how = "lseek+writev";
		return lseek(fd, off, SEEK_SET) == off ? writev(fd, iov, 3) : -1;
	default:
		*how = "pwritev";
		return pwritev(rnd(t, 2) ? fd : shared_fd[f], iov, 3, off);
	}
}

static void max_off(off_t *p, off_t v)
{
	off_t cur = __atomic_load_n(p, __ATOMIC_RELAXED);

	while (cur < v && !__atomic_compare_exchange_n(p, &cur, v, false, __ATOMIC_RELEASE,
							__ATOMIC_RELAXED))
		;
}

static void op_rec_write(struct thread *t)
{
	static __thread struct rec recs[CHUNK_RECS];
	int f = rnd(t, REC_FILES), c = pick_chunk(t);
	uint32_t s = rnd(t, CHUNK_RECS), n = 1 + rnd(t, rnd(t, 4) ? 4 : CHUNK_RECS);
	uint32_t first = c * CHUNK_RECS + s;
	off_t off = (off_t)first * REC_SIZE;
	const char *how;
	ssize_t got;

	if (n > CHUNK_RECS - s)
		n = CHUNK_RECS - s;
	for (uint32_t i = 0; i < n; i++) {
		uint64_t v = ++t->version[f][first + i];

		make_rec(&recs[i], f, first + i, v);
		__atomic_store_n(&started[f][first + i], v, __ATOMIC_RELEASE);
	}
	got = write_some(t, f, recs, n * REC_SIZE, off, &how);
	CHECK(t, got == (ssize_t)(n * REC_SIZE), "%s of %u records to %s.dat at %lld: "
	      "returned %zd, errno %d", how, n, names[f], (long long)off, got, errno);
	for (uint32_t i = 0; i < n; i++)
		__atomic_store_n(&committed[f][first + i], t->version[f][first + i],
				 __ATOMIC_RELEASE);
	max_off(&rec_size_done[f], off + got);
}

/* ---- The log ---- */

static void op_log_append(struct thread *t)
{
	unsigned char buf[LOG_REC_MAX];
	uint16_t len = LOG_REC_MIN + rnd(t, LOG_REC_MAX - LOG_REC_MIN + 1);
	struct iovec iov[2] = { { buf, rnd(t, len + 1) } };
	int fd = t->fd[F_LOG];
	ssize_t got;
	off_t pos;

	if (__atomic_add_fetch(&log_reserved, len, __ATOMIC_RELAXED) > LOG_MAX) {
		__atomic_sub_fetch(&log_reserved, len, __ATOMIC_RELAXED);
		return;
	}
	iov[1] = (struct iovec){ buf + iov[0].iov_len, len - iov[0].iov_len };
	make_log_rec(buf, t->id, t->log_seq, len);
	got = rnd(t, 2) ? write(fd, buf, len) : writev(fd, iov, 2);
	CHECK(t, got == len, "append of %u bytes to log.dat: returned %zd, errno %d", len, got,
	      errno);
	pos = lseek(fd, 0, SEEK_CUR);
	CHECK(t, pos >= len && pos <= LOG_MAX, "log.dat: position after an append of %u bytes: "
	      "%lld, errno %d", len, (long long)pos, errno);
	log_off[t->id][t->log_seq] = pos - len;
	log_len[t->id][t->log_seq] = len;
	__atomic_store_n(&log_count[t->id], ++t->log_seq, __ATOMIC_RELEASE);
}

/* Whether @p holds a whole log record of at most @room bytes; its header in @h. */
static bool log_rec_whole(const unsigned char *p, size_t room, struct log_hdr *h)
{
	unsigned char want[LOG_REC_MAX];

	if (room < LOG_HDR)
		return false;
	memcpy(h, p, LOG_HDR);
	if (h->magic != LOG_MAGIC || h->thread >= nthreads || h->len < LOG_REC_MIN ||
	    h->len > LOG_REC_MAX || h->len > room)
		return false;
	make_log_rec(want, h->thread, h->seq, h->len);
	return !memcmp(p, want, h->len);
}

/* Check one published record of a random thread where it landed. */
static void op_log_check(struct thread *t)
{
	unsigned char buf[LOG_REC_MAX];
	int a = rnd(t, nthreads);
	uint32_t count = __atomic_load_n(&log_count[a], __ATOMIC_ACQUIRE), i;
	struct log_hdr h = { 0 };
	ssize_t got;
	off_t off;

	if (!count)
		return;
	i = count - 1 - rnd(t, rnd(t, 2) ? count : 4 < count ? 4 : count);
	off = log_off[a][i];
	got = pread(rnd(t, 2) ? t->fd[F_LOG] : shared_fd[F_LOG], buf, LOG_REC_MAX, off);
	CHECK(t, got > 0 && log_rec_whole(buf, got, &h) && h.thread == a && h.seq == i,
	      "log.dat offset %lld: expected record %u of thread %d, got %zd bytes: "
	      "magic %#x thread %u seq %u len %u%s", (long long)off, i, a, got, h.magic,
	      h.thread, h.seq, h.len, got > 0 ? "" : " (short read)");
}

static void scan_expect(struct thread *t, const uint32_t *before, const uint32_t *next,
			size_t n)
{
	for (int a = 0; a < nthreads; a++) {
		uint32_t must = before[a];

		while (must && log_off[a][must - 1] + log_len[a][must - 1] > (off_t)n)
			must--;
		CHECK(t, next[a] >= must, "log.dat scan of %zu bytes: expected %u records of "
		      "thread %d, found %u", n, must, a, next[a]);
	}
}

/* Read the log from its start: whole records, each thread's in sequence. */
static void op_log_scan(struct thread *t)
{
	unsigned char *buf = t->big;
	uint32_t before[MAX_THREADS], next[MAX_THREADS] = { 0 };
	struct log_hdr h = { 0 };
	size_t pos = 0;
	ssize_t n;

	for (int a = 0; a < nthreads; a++)
		before[a] = __atomic_load_n(&log_count[a], __ATOMIC_ACQUIRE);
	n = pread(shared_fd[F_LOG], buf, LOG_MAX, 0);
	CHECK(t, n >= 0, "pread of log.dat: errno %d", errno);
	while (pos < (size_t)n && log_rec_whole(buf + pos, n - pos, &h)) {
		CHECK(t, h.seq == next[h.thread], "log.dat offset %zu: expected record %u of "
		      "thread %u, got record %u", pos, next[h.thread], h.thread, h.seq);
		next[h.thread]++;
		pos += h.len;
	}
	/* Only the last record may be cut short: by the end of the file. */
	CHECK(t, pos == (size_t)n || n - pos < LOG_HDR ||
	      (h.magic == LOG_MAGIC && pos + h.len > (size_t)n),
	      "log.dat offset %zu of %zd read: expected a whole record, got magic %#x thread %u "
	      "seq %u len %u", pos, n, h.magic, h.thread, h.seq, h.len);
	scan_expect(t, before, next, n);
}

/* ---- The scratch file (its static buffers and model are thread 0's) ---- */

static void fill_scratch(unsigned char *buf, off_t off, size_t len)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = scratch_pattern(off + i);
}

static void scratch_model_set(off_t off, size_t len)
{
	if (off > scratch_size)
		memset(scratch_model + scratch_size, 0, off - scratch_size);
	fill_scratch(scratch_model + off, off, len);
	if (off + (off_t)len > scratch_size)
		scratch_size = off + len;
}

static void scratch_truncate(struct thread *t)
{
	off_t len = rnd(t, 3) ? rnd(t, scratch_size + 1) : rnd(t, SCRATCH_MAX + 1);

	CHECK(t, ftruncate(rnd(t, 2) ? t->fd[F_SCRATCH] : shared_fd[F_SCRATCH], len) == 0,
	      "ftruncate of scratch.dat to %lld: errno %d", (long long)len, errno);
	if (len > scratch_size)
		memset(scratch_model + scratch_size, 0, len - scratch_size);
	scratch_size = len;
}

static void scratch_write(struct thread *t)
{
	static unsigned char buf[SCRATCH_MAX];
	size_t len = 1 + rnd(t, rnd(t, 2) ? 512 : 20000);
	off_t off = rnd(t, SCRATCH_MAX - len + 1);
	const char *how;
	ssize_t got;

	fill_scratch(buf, off, len);
	got = write_some(t, F_SCRATCH, buf, len, off, &how);
	CHECK(t, got == (ssize_t)len, "%s of %zu bytes to scratch.dat at %lld: returned %zd, "
	      "errno %d", how, len, (long long)off, got, errno);
	scratch_model_set(off, len);
}

static void scratch_compare(struct thread *t, const char *how, off_t off, size_t len,
			    ssize_t got, const unsigned char *buf)
{
	ssize_t want = off >= scratch_size ? 0 :
		       (ssize_t)((off_t)len < scratch_size - off ? (off_t)len : scratch_size - off);

	CHECK(t, got == want, "%s of %zu bytes of scratch.dat at %lld (size %lld): expected "
	      "%zd bytes, got %zd, errno %d", how, len, (long long)off, (long long)scratch_size,
	      want, got, errno);
	for (ssize_t i = 0; i < got; i++)
		CHECK(t, buf[i] == scratch_model[off + i], "%s of scratch.dat: offset %lld: "
		      "expected %u, got %u (size %lld)", how, (long long)(off + i),
		      scratch_model[off + i], buf[i], (long long)scratch_size);
}

/* The owner reads back exactly what it wrote, with zeros in the gaps. */
static void scratch_read_own(struct thread *t)
{
	static unsigned char buf[SCRATCH_MAX];
	size_t len = 1 + rnd(t, rnd(t, 2) ? 4096 : 40000);
	off_t off = rnd(t, scratch_size + 8192);
	const char *how;
	ssize_t got;

	if (off + (off_t)len > SCRATCH_MAX)
		off = SCRATCH_MAX - len;
	got = read_some(t, F_SCRATCH, buf, len, off, &how);
	scratch_compare(t, how, off, len, got, buf);
}

static void scratch_map_own(struct thread *t)
{
	struct stat st;
	unsigned char *map;

	CHECK(t, fstat(t->fd[F_SCRATCH], &st) == 0 && st.st_size == scratch_size,
	      "fstat of scratch.dat: expected size %lld, got %lld", (long long)scratch_size,
	      (long long)st.st_size);
	if (!scratch_size)
		return;
	map = mmap(NULL, scratch_size, PROT_READ, MAP_SHARED, t->fd[F_SCRATCH], 0);
	CHECK(t, map != MAP_FAILED, "mmap of scratch.dat: errno %d", errno);
	scratch_compare(t, "mmap", 0, scratch_size, scratch_size, map);
	CHECK(t, munmap(map, scratch_size) == 0, "munmap: errno %d", errno);
}

/* Anyone else: each byte is zero or its offset's pattern; short reads anywhere. */
static void scratch_read_any(struct thread *t)
{
	unsigned char buf[8192];
	size_t len = 1 + rnd(t, sizeof(buf));
	off_t off = rnd(t, SCRATCH_MAX);
	ssize_t got = pread(shared_fd[F_SCRATCH], buf, len, off);

	CHECK(t, got >= 0 && got <= (ssize_t)len, "pread of %zu bytes of scratch.dat at %lld: "
	      "returned %zd, errno %d", len, (long long)off, got, errno);
	for (ssize_t i = 0; i < got; i++)
		CHECK(t, !buf[i] || buf[i] == scratch_pattern(off + i), "pread of scratch.dat: "
		      "offset %lld: expected 0 or %u, got %u", (long long)(off + i),
		      scratch_pattern(off + i), buf[i]);
}

static void op_scratch(struct thread *t)
{
	if (t->id)
		return scratch_read_any(t);
	switch (rnd(t, 8)) {
	case 0:
		return scratch_truncate(t);
	case 1:
		return scratch_map_own(t);
	case 2: case 3: case 4:
		return scratch_write(t);
	default:
		return scratch_read_own(t);
	}
}

/* ---- Descriptors and syncs ---- */

static void op_sync(struct thread *t)
{
	int f = rnd(t, NFILES), fd = rnd(t, 2) ? t->fd[f] : shared_fd[f];

	CHECK(t, (rnd(t, 2) ? fsync(fd) : fdatasync(fd)) == 0, "fsync of %s.dat: errno %d",
	      names[f], errno);
}

/* Replace one of this thread's fds: reopen, dup, dup2 or F_DUPFD_CLOEXEC. */
static void op_fd(struct thread *t)
{
	int f = rnd(t, NFILES), old = t->fd[f], fd;

	switch (rnd(t, 4)) {
	case 0:
		CHECK(t, close(old) == 0, "close of %s.dat: errno %d", names[f], errno);
		fd = open_file(f, own_flags(f));
		break;
	case 1:
		fd = dup(old);
		CHECK(t, fd >= 0 && close(old) == 0, "dup of %s.dat: errno %d", names[f], errno);
		break;
	case 2:
		fd = fcntl(old, F_DUPFD_CLOEXEC, 20 + rnd(t, 100));
		CHECK(t, fd >= 0 && close(old) == 0, "F_DUPFD of %s.dat: errno %d", names[f],
		      errno);
		break;
	default:
		fd = open_file(f, own_flags(f));
		CHECK(t, fd >= 0 && dup2(fd, old) == old && close(fd) == 0,
		      "reopen of %s.dat onto %d: errno %d", names[f], old, errno);
		return;
	}
	CHECK(t, fd >= 0, "reopen of %s.dat: errno %d", names[f], errno);
	t->fd[f] = fd;
}

static void op_stat(struct thread *t)
{
	int f = rnd(t, REC_FILES);
	off_t done = __atomic_load_n(&rec_size_done[f], __ATOMIC_ACQUIRE), end;
	struct stat st;

	CHECK(t, fstat(t->fd[f], &st) == 0, "fstat: errno %d", errno);
	end = lseek(t->fd[f], 0, SEEK_END);
	CHECK(t, st.st_size % REC_SIZE == 0 && st.st_size >= done && end >= st.st_size &&
	      end % REC_SIZE == 0 && end <= REC_FILE_MAX, "size of %s.dat: expected whole "
	      "records, at least %lld, got fstat %lld, then SEEK_END %lld", names[f],
	      (long long)done, (long long)st.st_size, (long long)end);
}

static void one_op(struct thread *t)
{
	unsigned long r = rnd(t, 1000);

	if (r < 300)
		op_rec_read(t);
	else if (r < 560)
		op_rec_write(t);
	else if (r < 700)
		op_log_append(t);
	else if (r < 780)
		op_log_check(t);
	else if (r < 900)
		op_scratch(t);
	else if (r < 930)
		op_stat(t);
	else if (r < 950)
		op_fd(t);
	else if (r < 965)
		op_sync(t);
	else if (r < 985)
		op_rec_mmap(t);
	else if (r < 987)
		op_log_scan(t);
}

static void *run(void *arg)
{
	struct thread *t = arg;

	while (elapsed() < seconds) {
		one_op(t);
		t->ops++;
	}
	return NULL;
}

/* ---- Start and end ---- */

static void write_raw(const char *name, const void *buf, size_t len)
{
	char path[PATH_MAX + 16];
	int fd;

	snprintf(path, sizeof(path), "%s/%s.expected", dir, name);
	fd = syscall(SYS_openat, AT_FDCWD, path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	CHECK(NULL, fd >= 0 && syscall(SYS_write, fd, buf, len) == (long)len &&
	      syscall(SYS_close, fd) == 0, "writing %s failed: errno %d", path, errno);
}

static void expect_recs(int f)
{
	static struct rec image[NREC];
	off_t size = rec_size_done[f];

	for (uint32_t i = 0; i < size / REC_SIZE; i++)
		make_rec(&image[i], f, i, committed[f][i]);
	write_raw(names[f], image, size);
}

/* The log as the appends placed it: every byte covered once. */
static void expect_log(void)
{
	static unsigned char image[LOG_MAX], covered[LOG_MAX];
	off_t end = 0;

	for (int a = 0; a < nthreads; a++) {
		for (uint32_t i = 0; i < log_count[a]; i++) {
			off_t off = log_off[a][i];

			uint16_t len = log_len[a][i];

			make_log_rec(image + off, a, i, len);
			for (uint16_t k = 0; k < len; k++)
				CHECK(NULL, !covered[off + k]++, "log.dat: record %u of thread %d "
				      "at %lld overlaps another one at %lld", i, a, (long long)off,
				      (long long)(off + k));
			if (off + len > end)
				end = off + len;
		}
	}
	for (off_t k = 0; k < end; k++)
		CHECK(NULL, covered[k], "log.dat: no append covers offset %lld", (long long)k);
	write_raw("log", image, end);
}

static void open_all(void)
{
	for (int f = 0; f < NFILES; f++) {
		shared_fd[f] = open_file(f, O_RDWR | O_CREAT | O_TRUNC);
		CHECK(NULL, shared_fd[f] >= 0, "creating %s/%s.dat: errno %d", dir, names[f],
		      errno);
	}
	for (int i = 0; i < nthreads; i++)
		for (int f = 0; f < NFILES; f++) {
			threads[i].fd[f] = open_file(f, own_flags(f));
			CHECK(NULL, threads[i].fd[f] >= 0, "opening %s.dat: errno %d", names[f],
			      errno);
		}
	tracked = folio_fd_tracked && folio_fd_tracked(shared_fd[F_REC0]) &&
		  folio_fd_tracked(shared_fd[F_LOG]) && folio_fd_tracked(threads[0].fd[F_REC1]);
}

static void close_all(void)
{
	for (int i = 0; i < nthreads; i++)
		for (int f = 0; f < NFILES; f++)
			CHECK(NULL, close(threads[i].fd[f]) == 0, "close of %s.dat: errno %d",
			      names[f], errno);
	for (int f = 0; f < NFILES; f++)
		CHECK(NULL, close(shared_fd[f]) == 0, "last close of %s.dat: errno %d",
		      names[f], errno);
}

static void usage(void)
{
	fprintf(stderr, "usage: stress DIR [--seed S] [--seconds T] [--threads N]\n");
	exit(2);
}

static void parse_args(int argc, char **argv)
{
	seed = (unsigned long)time(NULL);
	seconds = 5;
	nthreads = 4;
	if (argc < 2 || argc % 2)
		usage();
	snprintf(dir, sizeof(dir), "%s", argv[1]);
	for (int i = 2; i < argc; i += 2) {
		if (!strcmp(argv[i], "--seed"))
			seed = strtoul(argv[i + 1], NULL, 10);
		else if (!strcmp(argv[i], "--seconds"))
			seconds = strtod(argv[i + 1], NULL);
		else if (!strcmp(argv[i], "--threads"))
			nthreads = atoi(argv[i + 1]);
		else
			usage();
	}
	if (nthreads < 1 || nthreads > MAX_THREADS || !(seconds > 0))
		usage();
}

int main(int argc, char **argv)
{
	unsigned long ops = 0, torn = 0;

	parse_args(argc, argv);
	printf("stress: seed %lu, %d threads, %g s, in %s\n", seed, nthreads, seconds, dir);
	fflush(stdout);
	open_all();
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (int i = 0; i < nthreads; i++) {
		threads[i].id = i;
		threads[i].rng = mix(seed * 0x9E3779B97F4A7C15ull + i + 1) | 1;
		threads[i].big = malloc(LOG_MAX);
		CHECK(NULL, threads[i].big, "out of memory");
		CHECK(NULL, pthread_create(&threads[i].handle, NULL, run, &threads[i]) == 0,
		      "pthread_create failed");
	}
	for (int i = 0; i < nthreads; i++) {
		pthread_join(threads[i].handle, NULL);
		ops += threads[i].ops;
		torn += threads[i].torn;
	}
	close_all();
	expect_recs(F_REC0);
	expect_recs(F_REC1);
	expect_log();
	write_raw("scratch", scratch_model, scratch_size);
	printf("stress: seed %lu: %lu operations, %lu torn reads read again, %s\n", seed, ops,
	       torn, tracked ? "under folio" : "native");
	return 0;
}
