/*
 * killcheck - a writer to be killed, and the check of what it left.
 *
 *   killcheck MODE FILE STATE [THREADS]   write FILE until killed
 *   killcheck --verify MODE FILE STATE    after the kill: exit 0 if every
 *                                         write that returned is in FILE
 *
 * The writer publishes, in STATE (a file it maps shared, which the test
 * reads after the kill), what each write that returned put where, only
 * after it returned: so a check that finds older data than STATE says lost
 * a write that returned.  Records are 64 bytes: a sequence number, the slot
 * they belong in, a check word, and a fill derived from both, so a torn
 * record is seen.  Modes:
 *
 *   overwrite  pwrite() of records at random slots of a 4096-slot file
 *              (each thread its own slots); may be torn only where a write
 *              was in flight
 *   append     write() of records one after the other
 *   extend     pwrite() of records ever further out, leaving holes
 *   truncate   appends, and now and then an ftruncate() to fewer records
 *              (one in flight when killed may have happened or not)
 *
 * KILLCHECK_DIE=N:HOW makes the writer die by its own hand once N writes
 * returned: HOW is segv, abort, oom (allocate until the OOM killer comes)
 * or _exit.  KILLCHECK_FORK=1 writes from a
 * fork child (STATE holds the writer's pid) while the parent waits.
 *
 * Anything else (the write or its check failing) exits non-zero.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define REC		64
#define SLOTS		4096
#define MAX_THREADS	4
#define EXTEND_STRIDE	(3 * 4096 + 64)

struct record {
	uint64_t seq;
	uint32_t slot;
	uint32_t check;
	unsigned char fill[48];
};

struct state {
	uint64_t seq;				/* last sequence number handed out */
	uint64_t ops;				/* writes returned */
	uint64_t count;				/* append, extend, truncate: records that must be there */
	uint64_t pid;				/* the writer */
	uint64_t truncating;			/* truncate: 1 + records kept, while in flight */
	uint32_t inflight[MAX_THREADS];		/* overwrite: slot + 1 being written */
	uint64_t published[SLOTS];		/* overwrite: last seq returned per slot */
};

static struct state *st;
static int fd, nr_threads = 1;
static const char *mode;
static uint64_t die_at;
static const char *die_how = "";

/* One more write returned: publish it, and die if that was asked for. */
static void returned(void)
{
	if (__atomic_add_fetch(&st->ops, 1, __ATOMIC_SEQ_CST) != die_at)
		return;
	if (!strcmp(die_how, "segv")) {	/* a real fault */
		volatile int *nowhere = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS,
					     -1, 0);

		*nowhere = 1;
	}
	if (!strcmp(die_how, "abort"))
		abort();
	while (!strcmp(die_how, "oom")) {	/* until the OOM killer comes */
		char *p = malloc(1 << 20);

		if (p)
			memset(p, 1, 1 << 20);
	}
	_exit(0);
}

static uint32_t check_of(uint64_t seq, uint32_t slot)
{
	uint64_t h = (seq + 1) * 0x9E3779B97F4A7C15ull ^ slot;

	return (uint32_t)(h >> 29);
}

static void make(struct record *r, uint64_t seq, uint32_t slot)
{
	r->seq = seq;
	r->slot = slot;
	r->check = check_of(seq, slot);
	memset(r->fill, (int)((seq ^ slot) & 0xff), sizeof(r->fill));
}

static int valid(const struct record *r, uint32_t slot)
{
	if (r->slot != slot || r->check != check_of(r->seq, slot))
		return 0;
	for (size_t i = 0; i < sizeof(r->fill); i++)
		if (r->fill[i] != ((r->seq ^ slot) & 0xff))
			return 0;
	return 1;
}

static void die(const char *what)
{
	fprintf(stderr, "killcheck: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void *overwriter(void *arg)
{
	unsigned int t = (unsigned int)(uintptr_t)arg, r = 12345 + t * 7919;
	struct record rec;

	for (;;) {
		uint32_t slot = (rand_r(&r) % (SLOTS / nr_threads)) * nr_threads + t;
		uint64_t seq = __atomic_add_fetch(&st->seq, 1, __ATOMIC_SEQ_CST), old;

		make(&rec, seq, slot);
		__atomic_store_n(&st->inflight[t], slot + 1, __ATOMIC_SEQ_CST);
		if (pwrite(fd, &rec, REC, (off_t)slot * REC) != REC)
			die("pwrite");
		old = __atomic_load_n(&st->published[slot], __ATOMIC_SEQ_CST);
		while (old < seq && !__atomic_compare_exchange_n(&st->published[slot], &old, seq, 0,
								 __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
			;
		__atomic_store_n(&st->inflight[t], 0, __ATOMIC_SEQ_CST);
		returned();
		if (rand_r(&r) % 64 == 0) {	/* reads too: pages are refilled */
			struct record back;

			if (pread(fd, &back, REC, (off_t)slot * REC) != REC)
				die("pread");
		}
	}
	return NULL;
}

static void writer(void)
{
	unsigned int r = 4242;
	struct record rec;

	for (uint64_t n = 0;; n++) {
		uint64_t i = st->count;

		make(&rec, n + 1, (uint32_t)i);
		if (!strcmp(mode, "append")) {
			if (write(fd, &rec, REC) != REC)
				die("write");
		} else if (!strcmp(mode, "extend")) {
			if (pwrite(fd, &rec, REC, (off_t)i * EXTEND_STRIDE) != REC)
				die("pwrite");
		} else {	/* truncate */
			if (n % 50 == 49) {
				uint64_t keep = rand_r(&r) % (i + 1);

				/* In flight it may or may not have happened yet. */
				__atomic_store_n(&st->truncating, keep + 1, __ATOMIC_SEQ_CST);
				if (ftruncate(fd, (off_t)keep * REC) < 0 ||
				    lseek(fd, (off_t)keep * REC, SEEK_SET) < 0)
					die("ftruncate");
				__atomic_store_n(&st->count, keep, __ATOMIC_SEQ_CST);
				__atomic_store_n(&st->truncating, 0, __ATOMIC_SEQ_CST);
				continue;
			}
			if (write(fd, &rec, REC) != REC)
				die("write");
		}
		__atomic_store_n(&st->count, i + 1, __ATOMIC_SEQ_CST);
		returned();
	}
}

static int verify(void)
{
	struct record rec;
	struct stat sb;
	int bad = 0;

	if (fstat(fd, &sb) < 0)
		die("fstat");
	if (!strcmp(mode, "overwrite")) {
		for (uint32_t slot = 0; slot < SLOTS; slot++) {
			uint64_t want = st->published[slot];
			int inflight = 0;

			if (!want)
				continue;
			for (int t = 0; t < MAX_THREADS; t++)
				inflight |= st->inflight[t] == slot + 1;
			if (pread(fd, &rec, REC, (off_t)slot * REC) != REC) {
				fprintf(stderr, "slot %u: short file (%lld bytes)\n", slot,
					(long long)sb.st_size);
				return 1;
			}
			if (valid(&rec, slot) ? rec.seq >= want : inflight)
				continue;
			if (bad++ < 5)
				fprintf(stderr, "slot %u: %s, seq %llu, returned %llu\n", slot,
					valid(&rec, slot) ? "older" : "torn",
					(unsigned long long)rec.seq, (unsigned long long)want);
		}
	} else {
		off_t stride = !strcmp(mode, "extend") ? EXTEND_STRIDE : REC;

		if (st->truncating && st->truncating - 1 < st->count)
			st->count = st->truncating - 1;

		if (st->count && sb.st_size < (off_t)((st->count - 1) * stride + REC)) {
			fprintf(stderr, "%lld bytes, %llu records returned\n", (long long)sb.st_size,
				(unsigned long long)st->count);
			return 1;
		}
		for (uint64_t i = 0; i < st->count; i++) {
			if (pread(fd, &rec, REC, (off_t)i * stride) != REC || !valid(&rec, (uint32_t)i)) {
				if (bad++ < 5)
					fprintf(stderr, "record %llu of %llu missing\n",
						(unsigned long long)i,
						(unsigned long long)st->count);
			}
		}
	}
	if (bad)
		fprintf(stderr, "%s: %d of the writes that returned are not in the file (%llu "
			"returned)\n", mode, bad, (unsigned long long)st->ops);
	return bad != 0;
}

int main(int argc, char **argv)
{
	int check = argc > 1 && !strcmp(argv[1], "--verify"), sfd;
	pthread_t threads[MAX_THREADS];

	argv += check;
	argc -= check;
	if (argc < 4) {
		fprintf(stderr, "usage: killcheck [--verify] MODE FILE STATE [THREADS]\n");
		return 2;
	}
	mode = argv[1];
	if (argc > 4)
		nr_threads = atoi(argv[4]);
	if (nr_threads < 1 || nr_threads > MAX_THREADS)
		return 2;
	sfd = open(argv[3], O_RDWR | O_CREAT, 0600);
	if (sfd < 0 || ftruncate(sfd, sizeof(*st)) < 0)
		die(argv[3]);
	st = mmap(NULL, sizeof(*st), PROT_READ | PROT_WRITE, MAP_SHARED, sfd, 0);
	if (st == MAP_FAILED)
		die("mmap");
	if (getenv("KILLCHECK_DIE")) {
		die_at = strtoull(getenv("KILLCHECK_DIE"), NULL, 10);
		die_how = strchr(getenv("KILLCHECK_DIE"), ':') ? strchr(getenv("KILLCHECK_DIE"), ':') + 1 : "";
	}
	if (!check && getenv("KILLCHECK_FORK")) {
		int status;
		pid_t pid = fork();

		if (pid < 0)
			die("fork");
		if (pid > 0)
			return waitpid(pid, &status, 0) == pid && WIFEXITED(status) ?
				       WEXITSTATUS(status) : 1;
	}
	fd = open(argv[2], check ? O_RDONLY : O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		die(argv[2]);
	if (check)
		return verify();
	__atomic_store_n(&st->pid, (uint64_t)getpid(), __ATOMIC_SEQ_CST);
	if (!strcmp(mode, "overwrite")) {
		for (int t = 1; t < nr_threads; t++)
			if (pthread_create(&threads[t], NULL, overwriter, (void *)(uintptr_t)t))
				die("pthread_create");
		overwriter(0);
	} else if (!strcmp(mode, "append") || !strcmp(mode, "extend") || !strcmp(mode, "truncate")) {
		writer();
	}
	return 2;
}
