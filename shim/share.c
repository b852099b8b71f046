/*
 * share.c - see share.h.
 *
 * The registry's layout: a header, REG_PROCS process slots of one cache
 * line each, then REG_INODES entries in an open-addressed table keyed by a
 * 64-bit mix of (dev, ino) (a collision makes two inodes look like one:
 * more passing through, never less).  Entries are never removed while a
 * process of the user runs; share_init() empties the table when it finds
 * no live process and the table more than half full.  A full table makes
 * new inodes count as shared.  share_init() takes flock() on the file so
 * that emptying it never races with a process taking its slot.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "compiler.h"
#include "log.h"
#include "real.h"
#include "share.h"

#define REG_MAGIC	0x5245474f494c4f46ull	/* "FOLIOGER" */
#define REG_VERSION	2
#define REG_PROCS	256
#define REG_WORDS	(REG_PROCS / 64)
#define REG_INODES	(1u << 16)

/*
 * Two cache lines: every tracked call of the owner reads @gen, and its
 * flusher's @bell is rung at every kick; in one line, each kick cost the
 * next call a miss (pwrite-4k, make bench's micro workload: -3.7%).
 */
struct reg_proc {
	uint64_t owner;		/* start time << 22 | pid; 0: free */
	uint32_t gen;		/* bumped when an inode it holds becomes shared */
	uint32_t acked;		/* the gen it caught up with */
	int32_t guardian;	/* its guardian's pid, 0: none yet */
	uint32_t pad[11];
	uint32_t bell;		/* its flusher sleeps on this (futex) */
	uint32_t pad2[15];
};

struct share_entry {
	uint64_t key;		/* mix of (dev, ino), never 0; 0: free */
	uint32_t shared;	/* times an opener made it shared (see share_changed()) */
	uint32_t pad;
	uint64_t holders[REG_WORDS];
	uint64_t writers[REG_WORDS];
};

struct reg_header {
	uint64_t magic;
	uint32_t version;
	uint32_t procs;
	uint32_t inodes;
	uint32_t pad;
	uint64_t used;		/* entries taken, a hint for emptying */
};

#define REG_PROCS_OFF	4096
#define REG_INODES_OFF	(REG_PROCS_OFF + REG_PROCS * sizeof(struct reg_proc))
#define REG_BYTES	(REG_INODES_OFF + (size_t)REG_INODES * sizeof(struct share_entry))

static struct reg_header *reg;
static struct reg_proc *procs;
static struct share_entry *entries;
static int self = -1;			/* our slot */
static bool (*catch_up_hook)(bool wait);
static bool tried;			/* share_init() ran: once per process */

uint32_t *share_bell, *share_gen;
uint32_t share_seen;

static long futex(uint32_t *word, int op, uint32_t val, const struct timespec *ts)
{
	return syscall(SYS_futex, word, op, val, ts, NULL, 0);
}

/*
 * /proc/@pid/stat into @buf: a pointer to the ')' that ends the name (which
 * may hold spaces and parentheses), the fields after it; NULL if gone.
 */
static char *proc_stat(pid_t pid, char *buf, size_t len)
{
	char path[64];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = real_open(path, O_RDONLY | O_CLOEXEC, 0);
	if (fd < 0)
		return NULL;
	n = real_read(fd, buf, len - 1);
	real_close(fd);
	if (n <= 0)
		return NULL;
	buf[n] = '\0';
	return strrchr(buf, ')');
}

/* The start time of @pid (field 22), 0 if it is gone or a zombie (a dead
 * process its parent has not reaped holds nothing either). */
static uint64_t start_time(pid_t pid)
{
	char buf[512], *p = proc_stat(pid, buf, sizeof(buf));

	if (p && (p[1] != ' ' || p[2] == 'Z' || p[2] == 'X'))
		return 0;
	for (int field = 2; p && field < 22; field++)
		p = strchr(p + 1, ' ');
	return p ? strtoull(p + 1, NULL, 10) : 0;
}

static uint64_t owner_of(pid_t pid)
{
	uint64_t start = start_time(pid);

	return start ? start << 22 | (uint64_t)pid : 0;
}

/* Is the process that took a slot as @owner still there? */
static bool alive(uint64_t owner)
{
	pid_t pid = owner & ((1u << 22) - 1);

	return owner && owner_of(pid) == owner;
}

static uint64_t key_of(dev_t dev, ino_t ino)
{
	uint64_t k = (uint64_t)ino * 0x9E3779B97F4A7C15ull ^ ((uint64_t)dev + 0x632BE59BD9B4E019ull);

	k ^= k >> 29;
	k *= 0xBF58476D1CE4E5B9ull;
	k ^= k >> 32;
	return k ? k : 1;
}

static void bit_clear(uint64_t *words, int slot)
{
	__atomic_and_fetch(&words[slot / 64], ~(1ull << (slot % 64)), __ATOMIC_SEQ_CST);
}

static void bit_set(uint64_t *words, int slot)
{
	__atomic_or_fetch(&words[slot / 64], 1ull << (slot % 64), __ATOMIC_SEQ_CST);
}

/* Is @pid there and not a zombie? */
static bool running(pid_t pid)
{
	char buf[512], *p = pid > 0 ? proc_stat(pid, buf, sizeof(buf)) : NULL;

	return p && p[1] == ' ' && p[2] != 'Z' && p[2] != 'X';
}

/* Forget slot @slot in every entry: its owner died, or it is ours anew. */
static void sweep(int slot)
{
	for (uint32_t i = 0; i < REG_INODES; i++) {
		struct share_entry *e = &entries[i];

		if (!__atomic_load_n(&e->key, __ATOMIC_RELAXED))
			continue;
		if (e->holders[slot / 64] & 1ull << (slot % 64))
			bit_clear(e->holders, slot);
		if (e->writers[slot / 64] & 1ull << (slot % 64))
			bit_clear(e->writers, slot);
	}
}

/*
 * Take a slot: our own from before an exec(), or a free one (its last owner
 * released what it held), else a dead process's; the first and the last
 * swept.  Under the file's flock.
 */
static int take_slot(uint64_t me)
{
	for (int pass = 0; pass < 2; pass++) {
		for (int i = 0; i < REG_PROCS; i++) {
			uint64_t old = __atomic_load_n(&procs[i].owner, __ATOMIC_ACQUIRE);

			/* Ours already: this process exec()ed; what the old
			 * program held is gone. */
			bool again = old == me;

			/* A dead owner's slot only once its guardian is done:
			 * its bits tell openers to wait for that. */
			if (!again && (pass == 0 ? old != 0 :
				       alive(old) || running(procs[i].guardian)))
				continue;
			if (!__atomic_compare_exchange_n(&procs[i].owner, &old, me, false,
							 __ATOMIC_SEQ_CST, __ATOMIC_RELAXED))
				continue;
			if (pass || again)
				sweep(i);
			return i;
		}
	}
	return -1;
}

/* No live process and a table more than half full: start it empty. */
static void maybe_empty(void)
{
	if (__atomic_load_n(&reg->used, __ATOMIC_RELAXED) < REG_INODES / 2)
		return;
	for (int i = 0; i < REG_PROCS; i++)
		if (alive(__atomic_load_n(&procs[i].owner, __ATOMIC_ACQUIRE)))
			return;
	memset(procs, 0, REG_PROCS * sizeof(*procs));
	memset(entries, 0, (size_t)REG_INODES * sizeof(*entries));
	reg->used = 0;
}

int share_init(bool (*catch_up)(bool wait))
{
	char path[64];
	struct stat st;
	uint64_t me;
	void *base;
	int fd;

	if (reg)
		return 0;
	/* Once: the flusher's bell must not move under it later. */
	if (tried)
		return -1;
	tried = true;
	catch_up_hook = catch_up;
	/* The layout's version in the name: another version's processes keep
	 * their own registry rather than sharing a misread one. */
	snprintf(path, sizeof(path), "/dev/shm/folio-registry-%d.%u", REG_VERSION,
		 (unsigned int)geteuid());
	fd = real_open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		goto fail;
	if (real_fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid() ||
	    (st.st_mode & 077)) {
		errno = EPERM;
		goto fail_fd;
	}
	if (real_flock(fd, LOCK_EX) < 0)
		goto fail_fd;
	if ((size_t)st.st_size < REG_BYTES && real_ftruncate64(fd, REG_BYTES) < 0)
		goto fail_fd;
	base = real_mmap_own(NULL, REG_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE,
			     fd, 0);
	if (base == MAP_FAILED)
		goto fail_fd;
	madvise(base, REG_BYTES, MADV_DONTFORK);
	reg = base;
	procs = (struct reg_proc *)((char *)base + REG_PROCS_OFF);
	entries = (struct share_entry *)((char *)base + REG_INODES_OFF);
	if (reg->magic != REG_MAGIC) {		/* new (zero-filled) */
		reg->version = REG_VERSION;
		reg->procs = REG_PROCS;
		reg->inodes = REG_INODES;
		__atomic_store_n(&reg->magic, REG_MAGIC, __ATOMIC_RELEASE);
	} else if (reg->version != REG_VERSION || reg->procs != REG_PROCS ||
		   reg->inodes != REG_INODES) {
		errno = EPROTO;
		goto fail_map;
	}
	maybe_empty();
	me = owner_of(getpid());
	if (!me || (self = take_slot(me)) < 0) {
		errno = EUSERS;
		goto fail_map;
	}
	real_flock(fd, LOCK_UN);
	real_close(fd);
	procs[self].acked = procs[self].gen;
	procs[self].guardian = 0;
	share_seen = procs[self].gen;
	share_bell = &procs[self].bell;
	__atomic_store_n(&share_gen, &procs[self].gen, __ATOMIC_RELEASE);
	return 0;
fail_map:
	real_munmap_own(base, REG_BYTES);
	reg = NULL;
fail_fd:
	real_close(fd);
fail:
	log_warn("no registry of shared files (%s: %s): a file other processes under folio "
		 "hold too is cached apart in each", path, strerror(errno));
	return -1;
}

/* Ring slot @p: an inode it holds is shared now. */
static void ring(int p)
{
	__atomic_add_fetch(&procs[p].gen, 1, __ATOMIC_SEQ_CST);
	__atomic_add_fetch(&procs[p].bell, 1, __ATOMIC_SEQ_CST);
	futex(&procs[p].bell, FUTEX_WAKE, INT_MAX, NULL);
}


/*
 * Slot @p's process died holding an inode: its guardian writes its dirty
 * pages back; wait for it to finish (it exits then), until @deadline.
 */
static void wait_guardian(int p, uint64_t deadline)
{
	pid_t guardian = __atomic_load_n(&procs[p].guardian, __ATOMIC_ACQUIRE);

	while (guardian > 0 && running(guardian) && monotonic_ms() < deadline)
		usleep(1000);
}

/* Wait until slot @p acknowledged @gen, it died, or the deadline passed. */
static bool wait_ack(int p, uint64_t owner, uint32_t gen, uint64_t deadline)
{
	for (;;) {
		uint32_t acked = __atomic_load_n(&procs[p].acked, __ATOMIC_ACQUIRE);
		struct timespec ts = { 0, 20 * 1000000 };

		if ((int32_t)(acked - gen) >= 0)
			return true;
		if (__atomic_load_n(&procs[p].owner, __ATOMIC_ACQUIRE) != owner || !alive(owner)) {
			wait_guardian(p, deadline);	/* gone: its guardian has its pages */
			return true;
		}
		if (monotonic_ms() >= deadline)
			return false;
		futex(&procs[p].acked, FUTEX_WAIT, acked, &ts);
	}
}

static bool has(const uint64_t *words, int p)
{
	return __atomic_load_n(&words[p / 64], __ATOMIC_SEQ_CST) & 1ull << (p % 64);
}

/*
 * The other live holders of @e; a dead one counts once its guardian, if it
 * has one, is done (an inode number is used again after a file is deleted,
 * and a holder killed long ago must not make a new file shared).  Its bits
 * stay: its slot may have a new owner by now, whose bits they may be;
 * take_slot() clears a dead slot's before the new owner sets any.
 */
/* The next slot after @p set in @words other than ours, or REG_PROCS. */
static int next_other(const uint64_t *words, int p)
{
	for (p++; p < REG_PROCS; p = (p | 63) + 1) {
		uint64_t w = __atomic_load_n(&words[p / 64], __ATOMIC_SEQ_CST) >> (p % 64) << (p % 64);

		if (self / 64 == p / 64)
			w &= ~(1ull << (self % 64));
		if (w)
			return p / 64 * 64 + __builtin_ctzll(w);
	}
	return REG_PROCS;
}

#define for_each_other(p, words) \
	for (int p = next_other(words, -1); p < REG_PROCS; p = next_other(words, p))

static int live_others(struct share_entry *e, uint64_t deadline)
{
	int live = 0;

	for_each_other(p, e->holders) {
		if (!alive(__atomic_load_n(&procs[p].owner, __ATOMIC_ACQUIRE))) {
			wait_guardian(p, deadline);	/* died holding it */
			continue;
		}
		live++;
	}
	return live;
}

/*
 * Make @e shared: ring every other holder, then wait for those that may
 * have dirty pages (a gen at least the one rung: a later ring's ack covers
 * ours).  No arrays on the stack: this may run on a small signal stack.
 * @shared counts up: a holder rung finds it moved past the mark it took
 * when it joined, whatever another process does meanwhile.
 */
static void make_shared(struct share_entry *e, uint64_t deadline)
{
	__atomic_add_fetch(&e->shared, 1, __ATOMIC_SEQ_CST);
	for_each_other(p, e->holders)
		ring(p);
	for_each_other(p, e->writers) {
		uint64_t owner;

		if (!has(e->holders, p))
			continue;
		owner = __atomic_load_n(&procs[p].owner, __ATOMIC_ACQUIRE);
		if (!wait_ack(p, owner, __atomic_load_n(&procs[p].gen, __ATOMIC_ACQUIRE), deadline))
			log_warn("process %d did not write its pages of a file back within %d ms "
				 "(stopped?): they reach the kernel when it runs again",
				 (int)(owner & ((1u << 22) - 1)), SHARE_WAIT_MS);
	}
}

/* The entry of @key, made if need be; NULL if the table is full. */
static struct share_entry *find(uint64_t key)
{
	for (uint32_t n = 0, i = key & (REG_INODES - 1); n < REG_INODES;
	     n++, i = (i + 1) & (REG_INODES - 1)) {
		struct share_entry *e = &entries[i];
		uint64_t k = __atomic_load_n(&e->key, __ATOMIC_ACQUIRE);

		if (k == key)
			return e;
		if (k)
			continue;
		if (__atomic_compare_exchange_n(&e->key, &k, key, false, __ATOMIC_SEQ_CST,
						__ATOMIC_ACQUIRE)) {
			__atomic_add_fetch(&reg->used, 1, __ATOMIC_RELAXED);
			return e;
		}
		if (k == key)
			return e;
	}
	return NULL;
}

struct share_entry *share_hold(dev_t dev, ino_t ino, bool writer, bool *shared,
			       uint32_t *mark)
{
	struct share_entry *e;
	uint64_t deadline;

	*shared = false;
	if (!reg || self < 0)
		return NULL;
	e = find(key_of(dev, ino));
	if (!e) {
		*shared = true;
		return NULL;
	}
	bit_set(e->holders, self);
	if (writer)
		bit_set(e->writers, self);
	/* After our bit: a joiner that rings us later moves it past this. */
	*mark = __atomic_load_n(&e->shared, __ATOMIC_SEQ_CST);
	/* Every joiner with live others rings them, shared already or not:
	 * one that relied on the flag could miss a holder that joined and
	 * cached meanwhile. */
	deadline = monotonic_ms() + SHARE_WAIT_MS;
	if (live_others(e, deadline)) {
		make_shared(e, deadline);
		*shared = true;
	}
	return e;
}

void share_writer(struct share_entry *e)
{
	if (e && self >= 0)
		bit_set(e->writers, self);
}

bool share_changed(const struct share_entry *e, uint32_t mark)
{
	return e && __atomic_load_n(&e->shared, __ATOMIC_ACQUIRE) != mark;
}

void share_release(struct share_entry *e)
{
	if (!e || self < 0)
		return;
	bit_clear(e->holders, self);
	bit_clear(e->writers, self);
}

bool share_catch_up(bool wait)
{
	uint32_t gen;
	int saved_errno = errno;

	if (self < 0)
		return true;
	gen = __atomic_load_n(&procs[self].gen, __ATOMIC_ACQUIRE);
	if (catch_up_hook && !catch_up_hook(wait)) {
		errno = saved_errno;
		return false;
	}
	/* Threads may catch up at once: what is acknowledged only grows. */
	__atomic_store_n(&share_seen, gen, __ATOMIC_RELAXED);
	for (uint32_t acked = __atomic_load_n(&procs[self].acked, __ATOMIC_RELAXED);
	     (int32_t)(gen - acked) > 0 &&
	     !__atomic_compare_exchange_n(&procs[self].acked, &acked, gen, true, __ATOMIC_RELEASE,
					  __ATOMIC_RELAXED);)
		;
	futex(&procs[self].acked, FUTEX_WAKE, INT_MAX, NULL);
	errno = saved_errno;
	return true;
}

void share_set_guardian(pid_t pid)
{
	if (self >= 0)
		__atomic_store_n(&procs[self].guardian, pid, __ATOMIC_RELEASE);
}

void share_exit(void)
{
	if (self < 0)
		return;
	__atomic_store_n(&share_gen, NULL, __ATOMIC_RELEASE);
	__atomic_store_n(&procs[self].owner, 0, __ATOMIC_RELEASE);
	self = -1;
}

void share_after_fork_child(void)
{
	/* Not mapped here (MADV_DONTFORK); the next tracked open maps it anew. */
	reg = NULL;
	procs = NULL;
	entries = NULL;
	self = -1;
	tried = false;
	share_gen = NULL;
	share_bell = NULL;
}
