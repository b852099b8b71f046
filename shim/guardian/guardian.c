/*
 * folio-guardian - writes back what a process under folio had accepted
 * when it died (doc/design.md §2.6, folio(7) "What can be lost").
 *
 * Started by libfolio.so (shim/guard.c) as `folio-guardian PID`, with its
 * socket as descriptor 3; never by hand.  Its parent exits at once, so it
 * is nobody's child but init's (or a subreaper's); it calls setsid(), out of
 * the terminal's reach.  From the socket it gets the journal (journal.h), a
 * pidfd of the host and a descriptor of each file the host may have dirty
 * pages of.  It waits.  When the host is gone (any death: a signal, the OOM
 * killer, _exit) it reads what is left in the socket, writes every dirty
 * and in-flight byte range of the journal's pages through the descriptor
 * of its file (the same inode, renamed or unlinked or not; writing them
 * extends the file as far as the process had), says what it wrote, and
 * exits.  When the socket
 * closes with the host alive (the host exec()ed: folio wrote everything
 * back before, and the journal is no longer mapped there) it does the
 * same; if the host still maps the journal it leaves quietly.
 *
 * A write that fails (ENOSPC, EIO) is tried again every 100 ms for
 * FOLIO_RECOVERY_TIMEOUT seconds (10); what is still not written then goes
 * to a file under /dev/shm named in the message, never nowhere.
 *
 * Messages go to its standard error: folio's FOLIO_LOG_FILE if the host
 * had one open, else the host's standard error when the guardian started;
 * errors also to syslog.  Uses libc only.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "journal.h"

#define SOCK		3
#define RETRY_MS	100
#define IOV_BATCH	256

struct file {
	uint64_t owner;
	int fd1;		/* the descriptor + 1; 0: none (a zeroed table is empty) */
	char *name;
	size_t written;		/* bytes written back at recovery */
	size_t kept;		/* bytes that went to the recovery file */
	int err;
};

static struct file *files;	/* by slot */
static pid_t host;
static int pidfd = -1;
static const struct journal_header *jh;
static size_t journal_bytes;
static ino_t journal_ino;

static void say(int prio, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = snprintf(line, sizeof(line), "folio-guardian[%d]: ", (int)getpid());
	vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
	va_end(ap);
	if (prio <= LOG_ERR)
		syslog(LOG_USER | prio, "%s", line + n);
	strcat(line, "\n");
	if (write(2, line, strlen(line)) < 0)
		return;
}

/* ---- Messages ---- */

static void take_hello(int *fds, int nr)
{
	struct stat st;
	void *p;

	if (nr < 2 || jh)
		return;
	pidfd = fds[1];
	if (fstat(fds[0], &st) < 0 || (size_t)st.st_size < sizeof(*jh))
		return;
	p = mmap(NULL, st.st_size, PROT_READ, MAP_SHARED, fds[0], 0);
	close(fds[0]);
	if (p == MAP_FAILED)
		return;
	jh = p;
	if (jh->magic != JOURNAL_MAGIC || jh->version != JOURNAL_VERSION ||
	    jh->page_bytes != JOURNAL_PAGE || jh->bytes > (uint64_t)st.st_size ||
	    jh->page_stride < sizeof(struct journal_page) ||
	    jh->pages_offset + jh->nr_pages * jh->page_stride > jh->bytes ||
	    jh->arena_offset + jh->nr_pages * JOURNAL_PAGE > jh->bytes) {
		say(LOG_ERR, "process %d: a journal of another version of folio", (int)host);
		munmap(p, st.st_size);
		jh = NULL;
		return;
	}
	journal_bytes = st.st_size;
	journal_ino = st.st_ino;
}

static void take_file(const struct guard_msg *m, int fd)
{
	struct file *f;

	if (m->slot == 0 || m->slot >= JOURNAL_FILES) {
		if (fd >= 0)
			close(fd);
		return;
	}
	f = &files[m->slot];
	if (f->fd1)
		close(f->fd1 - 1);
	free(f->name);
	f->owner = m->owner;
	f->fd1 = fd + 1;
	f->name = strndup(m->name, GUARD_NAME_MAX);
}

static void forget_file(const struct guard_msg *m)
{
	struct file *f;

	if (m->slot == 0 || m->slot >= JOURNAL_FILES)
		return;
	f = &files[m->slot];
	if (f->owner != m->owner)
		return;
	if (f->fd1)
		close(f->fd1 - 1);
	free(f->name);
	f->name = NULL;
	f->fd1 = 0;
	f->owner = 0;
}

/* Read one message.  1: one taken, 0: end of the stream, -1: none now. */
static int receive(int flags)
{
	union {
		char buf[CMSG_SPACE(2 * sizeof(int))];
		struct cmsghdr align;
	} control;
	struct guard_msg msg;
	struct iovec iov = { &msg, sizeof(msg) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf,
			     .msg_controllen = sizeof(control.buf) };
	int fds[2] = { -1, -1 }, nr = 0;
	ssize_t n;

	do
		n = recvmsg(SOCK, &mh, MSG_CMSG_CLOEXEC | flags);
	while (n < 0 && errno == EINTR);
	if (n == 0)
		return 0;
	if (n < 0)
		return errno == EAGAIN ? -1 : 0;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
			int got = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);

			for (int i = 0; i < got; i++) {
				int fd;

				memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
				if (nr < 2)
					fds[nr++] = fd;
				else
					close(fd);
			}
		}
	if ((size_t)n != sizeof(msg)) {
		for (int i = 0; i < nr; i++)
			close(fds[i]);
		return 1;
	}
	switch (msg.type) {
	case GUARD_HELLO:
		take_hello(fds, nr);
		break;
	case GUARD_FILE:
		take_file(&msg, nr ? fds[0] : -1);
		break;
	case GUARD_FORGET:
		forget_file(&msg);
		/* fallthrough */
	default:
		for (int i = 0; i < nr; i++)
			close(fds[i]);
	}
	return 1;
}

/* ---- Writing back ---- */

struct piece {
	uint32_t slot;
	uint32_t len;
	uint64_t off;
	const unsigned char *data;
};

static int by_file_offset(const void *a, const void *b)
{
	const struct piece *x = a, *y = b;

	if (x->slot != y->slot)
		return x->slot < y->slot ? -1 : 1;
	return x->off < y->off ? -1 : x->off > y->off;
}

/* The slot of the file @owner, 0 if the guardian holds none. */
static uint32_t slot_of(uint64_t owner, uint32_t *hint)
{
	if (*hint && files[*hint].owner == owner && files[*hint].fd1)
		return *hint;
	for (uint32_t s = 1; s < JOURNAL_FILES; s++)
		if (files[s].fd1 && files[s].owner == owner)
			return *hint = s;
	return 0;
}

/*
 * Add [lo, hi) of page @i (@index of @slot's file) to @v.  Written, they
 * extend the file as far as the process had: its size is no further than
 * the last dirty byte or the kernel's size (journal.h).
 */
static size_t add_piece(struct piece *v, size_t n, uint32_t slot, uint64_t index, size_t i,
			unsigned int lo, unsigned int hi)
{
	const unsigned char *arena = (const unsigned char *)jh + jh->arena_offset;

	if (lo >= hi)
		return n;
	v[n] = (struct piece){ slot, hi - lo, index * JOURNAL_PAGE + lo,
			       arena + i * JOURNAL_PAGE + lo };
	return n + 1;
}

/* Every byte range the journal holds, as pieces sorted by file and offset. */
static size_t collect(struct piece **out)
{
	const char *pages = (const char *)jh + jh->pages_offset;
	struct piece *v = NULL;
	size_t n = 0, cap = 0;
	uint32_t hint = 0;

	for (size_t i = 0; i < jh->nr_pages; i++) {
		const struct journal_page *p =
			(const struct journal_page *)(pages + i * jh->page_stride);
		uint64_t r = __atomic_load_n(&p->ranges, __ATOMIC_ACQUIRE);
		unsigned int lo = journal_range_lo(r, 0), hi = journal_range_hi(r, 0),
			     wlo = journal_range_lo(r, 1), whi = journal_range_hi(r, 1);
		uint32_t slot;

		if (!r || !(slot = slot_of(p->owner, &hint)))
			continue;
		if (n + 2 > cap) {
			cap = cap ? 2 * cap : 1024;
			v = realloc(v, cap * sizeof(*v));
			if (!v) {
				say(LOG_ERR, "out of memory");
				exit(1);
			}
		}
		if (lo < hi && wlo < whi && lo <= whi && wlo <= hi) {	/* one range */
			lo = lo < wlo ? lo : wlo;
			hi = hi > whi ? hi : whi;
			wlo = whi = 0;
		}
		n = add_piece(v, n, slot, p->index, i, wlo, whi);
		n = add_piece(v, n, slot, p->index, i, lo, hi);
	}
	if (n)
		qsort(v, n, sizeof(*v), by_file_offset);
	*out = v;
	return n;
}

/* Write pieces [0, @n) (one file, contiguous) with as few calls as can be. */
static int write_run(int fd, struct piece *p, size_t n)
{
	struct iovec iov[IOV_BATCH];
	size_t cnt = n < IOV_BATCH ? n : IOV_BATCH;
	uint64_t off = p[0].off;
	ssize_t w;

	for (size_t i = 0; i < cnt; i++)
		iov[i] = (struct iovec){ (void *)p[i].data, p[i].len };
	w = pwritev(fd, iov, cnt, off);
	if (w < 0)
		return errno == EINTR ? 0 : -errno;
	if (w == 0)
		return -EIO;
	/* Drop what was written from the front of the pieces. */
	for (size_t i = 0; i < cnt && w > 0; i++) {
		size_t take = (size_t)w < p[i].len ? (size_t)w : p[i].len;

		files[p[i].slot].written += take;
		p[i].off += take;
		p[i].data += take;
		p[i].len -= take;
		w -= take;
	}
	return 0;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Keep what could not be written in a file under /dev/shm; its name or NULL. */
static const char *keep(uint32_t slot, struct piece *v, size_t n, char *name, size_t len)
{
	int fd;

	snprintf(name, len, "/dev/shm/folio-recovery.%d.%u", (int)host, slot);
	fd = open(name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return NULL;
	dprintf(fd, "folio recovery: %s\n", files[slot].name ? files[slot].name : "?");
	for (size_t i = 0; i < n; i++) {
		if (v[i].slot != slot || !v[i].len)
			continue;
		dprintf(fd, "%llu %u\n", (unsigned long long)v[i].off, v[i].len);
		if (write(fd, v[i].data, v[i].len) != (ssize_t)v[i].len) {
			close(fd);
			return NULL;
		}
		files[slot].kept += v[i].len;
		if (write(fd, "\n", 1) != 1) {
			close(fd);
			return NULL;
		}
	}
	if (fsync(fd) < 0 || close(fd) < 0)
		return NULL;
	return name;
}

static void recover(const char *why)
{
	const char *env = getenv("FOLIO_RECOVERY_TIMEOUT");
	uint64_t deadline = now_ms() + (env ? strtoull(env, NULL, 10) : 10) * 1000;
	struct piece *v;
	size_t n, left;

	if (!jh)
		return;
	n = collect(&v);
	for (;;) {
		left = 0;
		for (size_t i = 0; i < n;) {
			size_t j = i + 1;
			int err;

			if (!v[i].len) {
				i++;
				continue;
			}
			while (j < n && v[j].slot == v[i].slot && v[j].off == v[j - 1].off + v[j - 1].len &&
			       v[j].len)
				j++;
			err = write_run(files[v[i].slot].fd1 - 1, v + i, j - i);
			if (err)
				files[v[i].slot].err = -err;
			/* Again from the first piece not wholly written. */
			while (i < j && !v[i].len)
				i++;
			if (err) {
				for (; i < j; i++)
					left += v[i].len;
			}
		}
		if (!left || now_ms() >= deadline)
			break;
		usleep(RETRY_MS * 1000);
		for (uint32_t s = 1; s < JOURNAL_FILES; s++)
			files[s].err = 0;
	}
	for (uint32_t s = 1; s < JOURNAL_FILES; s++) {
		char name[96];
		const char *kept;
		size_t unwritten = 0;

		if (!files[s].fd1)
			continue;
		for (size_t i = 0; i < n; i++)
			if (v[i].slot == s)
				unwritten += v[i].len;
		if (!files[s].written && !unwritten && !files[s].err)
			continue;
		if (!unwritten && !files[s].err) {
			say(LOG_NOTICE, "%s: wrote back %zu bytes after process %d %s",
			    files[s].name, files[s].written, (int)host, why);
			continue;
		}
		kept = unwritten ? keep(s, v, n, name, sizeof(name)) : NULL;
		if (kept)
			say(LOG_ERR, "%s: wrote back %zu bytes after process %d %s; %zu bytes could "
			    "not be written (%s) and are kept in %s", files[s].name, files[s].written,
			    (int)host, why, unwritten, strerror(files[s].err), kept);
		else
			say(LOG_ERR, "%s: wrote back %zu bytes after process %d %s; %zu bytes could "
			    "not be written (%s) and are LOST", files[s].name, files[s].written,
			    (int)host, why, unwritten, strerror(files[s].err));
	}
	free(v);
}

/* Does the host still map this journal?  Then it lives on with its data. */
static bool host_maps_journal(void)
{
	char path[64], line[512];
	bool found = false;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/maps", (int)host);
	if (!(f = fopen(path, "re")))
		return true;	/* cannot tell: never write under a live host */
	while (!found && fgets(line, sizeof(line), f)) {
		unsigned long long ino;

		if (sscanf(line, "%*s %*s %*s %*s %llu", &ino) == 1 && ino == journal_ino &&
		    strstr(line, "folio-journal"))
			found = true;
	}
	fclose(f);
	return found;
}

static bool host_dead(void)
{
	struct pollfd p = { pidfd, POLLIN, 0 };

	return pidfd >= 0 && poll(&p, 1, 0) > 0;
}

int main(int argc, char **argv)
{
	struct sigaction ign = { .sa_handler = SIG_IGN };
	/* SIGXFSZ: the host's RLIMIT_FSIZE holds here too, as EFBIG. */
	static const int ignored[] = { SIGINT, SIGQUIT, SIGHUP, SIGPIPE, SIGTSTP, SIGTTIN,
				       SIGTTOU, SIGUSR1, SIGUSR2, SIGXFSZ };
	sigset_t none;

	if (argc != 2 || fcntl(SOCK, F_GETFD) < 0) {
		fprintf(stderr, "folio-guardian: started by libfolio.so, not by hand\n");
		return 2;
	}
	host = atoi(argv[1]);
	setsid();
	if (chdir("/") < 0)
		return 1;
	for (size_t i = 0; i < sizeof(ignored) / sizeof(ignored[0]); i++)
		sigaction(ignored[i], &ign, NULL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	openlog("folio-guardian", LOG_PID, LOG_USER);
	files = calloc(JOURNAL_FILES, sizeof(*files));
	if (!files)
		return 1;
	for (;;) {
		struct pollfd p[2] = { { SOCK, POLLIN, 0 }, { pidfd, POLLIN, 0 } };
		int got;

		if (poll(p, pidfd >= 0 ? 2 : 1, -1) < 0) {
			if (errno == EINTR)
				continue;
			return 1;
		}
		if (p[1].revents) {
			while (receive(MSG_DONTWAIT) > 0)	/* all it sent before it died */
				;
			recover("ended");
			return 0;
		}
		if (!(p[0].revents & (POLLIN | POLLHUP | POLLERR)))
			continue;
		got = receive(0);
		if (got > 0)
			continue;
		/*
		 * The stream ended: the host is dying (its descriptors close
		 * before its pidfd says so), exec()ed, or closed the socket.
		 */
		if (pidfd < 0)
			return 0;	/* never got going */
		p[1].revents = 0;
		poll(&p[1], 1, 1000);
		if (host_dead()) {
			recover("ended");
		} else if (!host_maps_journal()) {
			recover("replaced its program");
		} else {
			say(LOG_WARNING, "process %d closed folio's socket: its writes are no longer "
			    "kept safe from its crash", (int)host);
		}
		return 0;
	}
}
