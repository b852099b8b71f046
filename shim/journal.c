/*
 * journal.c - the shared memory of journal.h, on the library's side.
 *
 * Owns the memfd and its one mapping: made when the page store is set up,
 * given back with it (and in a fork child, which must never write into its
 * parent's).  page.c keeps the arena and the page descriptors in it;
 * guard.c hands the memfd to the guardian.
 *
 * Calls real only.
 */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>

#include "journal.h"
#include "journal_host.h"
#include "real.h"

struct journal_host journal = { .fd = -1 };

struct journal_fd_ops journal_fd_ops;

int journal_own_fd(int fd)
{
	return journal_fd_ops.own ? journal_fd_ops.own(fd) : fd;
}

void journal_close_fd(int fd)
{
	if (journal_fd_ops.close)
		journal_fd_ops.close(fd);
	else
		real_close(fd);
}

/*
 * ftruncate() the memfd to @bytes.  A memfd's size counts against
 * RLIMIT_FSIZE like any file's (past it: EFBIG and a SIGXFSZ that would kill
 * the program): a soft limit below @bytes is raised to the hard one for the
 * call and put back, and a hard limit below it means no journal.
 */
static int size_memfd(int fd, uint64_t bytes)
{
	struct rlimit rl, raised;
	int ret, saved;

	if (syscall(SYS_prlimit64, 0, RLIMIT_FSIZE, NULL, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY ||
	    rl.rlim_cur >= bytes)
		return real_ftruncate64(fd, bytes);
	if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < bytes) {
		errno = EFBIG;
		return -1;
	}
	raised = (struct rlimit){ rl.rlim_max, rl.rlim_max };
	/* The system call: setrlimit() is folio's own wrapper. */
	if (syscall(SYS_prlimit64, 0, RLIMIT_FSIZE, &raised, NULL) < 0)
		return -1;
	ret = real_ftruncate64(fd, bytes);
	saved = errno;
	syscall(SYS_prlimit64, 0, RLIMIT_FSIZE, &rl, NULL);
	errno = saved;
	return ret;
}

static uint64_t round_up(uint64_t n)
{
	return (n + JOURNAL_PAGE - 1) & ~(uint64_t)(JOURNAL_PAGE - 1);
}

int journal_create(size_t nr_pages, size_t page_stride)
{
	uint64_t pages = round_up(sizeof(struct journal_header)),
		 arena = pages + round_up(nr_pages * page_stride),
		 bytes = arena + (uint64_t)nr_pages * JOURNAL_PAGE;
	struct journal_header *h;
	int fd, saved;
	void *base;

	fd = memfd_create("folio-journal", MFD_CLOEXEC);
	if (fd < 0)
		return -1;
	fd = journal_own_fd(fd);
	if (size_memfd(fd, bytes) < 0)
		goto fail;
	base = real_mmap_own(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd, 0);
	if (base == MAP_FAILED)
		goto fail;
	/* A fork child gets none of it: it cannot scribble on the parent's
	 * pages (page_store_forget() drops the rest of its copy). */
	madvise(base, bytes, MADV_DONTFORK);
	h = base;
	h->version = JOURNAL_VERSION;
	h->page_bytes = JOURNAL_PAGE;
	h->nr_pages = nr_pages;
	h->pages_offset = pages;
	h->page_stride = page_stride;
	h->arena_offset = arena;
	h->bytes = bytes;
	__atomic_store_n(&h->magic, JOURNAL_MAGIC, __ATOMIC_RELEASE);
	journal.fd = fd;
	journal.base = base;
	journal.bytes = bytes;
	journal.pages = (char *)base + pages;
	journal.arena = (unsigned char *)base + arena;
	return 0;
fail:
	saved = errno;
	journal_close_fd(fd);
	errno = saved;
	return -1;
}

void journal_destroy(void)
{
	if (journal.base)
		real_munmap_own(journal.base, journal.bytes);
	if (journal.fd >= 0)
		journal_close_fd(journal.fd);
	memset(&journal, 0, sizeof(journal));
	journal.fd = -1;
}

void journal_forget(void)
{
	/* Not mapped in a fork child (MADV_DONTFORK).  The memfd was closed
	 * with folio's other descriptors, unless the fork came between its
	 * making and its marking: nothing has opened one since. */
	if (journal.fd >= 0)
		real_close(journal.fd);
	memset(&journal, 0, sizeof(journal));
	journal.fd = -1;
}
