/*
 * cache_page.c - finding and changing a mapping's pages: pages found and
 * locked, dropped and resized, a free page taken, the kernel's reads and
 * writes on folio's own descriptor, and the switch to pass-through.  Calls
 * page, ptree, writeback and real; nothing else of the cache.  See
 * cache_internal.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/xattr.h>

#include "cache_internal.h"
#include "mapping.h"
#include "ptree.h"
#include "real.h"
#include "writeback.h"

/*
 * The page of @m at @index with its data locked (page_write_begin), or NULL
 * if it is not cached.  Outside any read-side section.
 */
struct page *find_locked(struct mapping *m, uint64_t index)
{
	for (;;) {
		struct page *page;

		urcu_bp_read_lock();
		page = ptree_lookup(&m->tree, index);
		urcu_bp_read_unlock();
		if (!page)
			return NULL;
		/* Arena memory: safe to lock even if it was reclaimed meanwhile. */
		page_write_begin(page);
		if ((page->flags & PAGE_INDEXED) && page->owner == m->id && page->index == index)
			return page;
		page_write_end(page);
	}
}

struct drop_args {
	uint64_t last;			/* pages past it stay */
	bool keep_dirty;
};

/* Inside a read-side section (the page lock is never held across a wait). */
static void drop_page(void *entry, uint64_t index, void *arg)
{
	const struct drop_args *a = arg;
	struct page *page = entry;

	if (index > a->last)
		return;
	pthread_mutex_lock(&page->lock);
	if (!(a->keep_dirty && (page->flags & (PAGE_DIRTY | PAGE_WRITEBACK))))
		page_remove(page);
	pthread_mutex_unlock(&page->lock);
}

/*
 * Forget the cached pages of @m from page @first to @last, the dirty ones too
 * unless @keep_dirty (dropping those needs @kio_lock exclusive too).  With
 * @lock exclusive.
 */
void drop_range(struct mapping *m, uint64_t first, uint64_t last, bool keep_dirty)
{
	struct drop_args a = { last, keep_dirty };

	assert_exclusive(&m->lock);
	if (!keep_dirty) {
		assert_exclusive(&m->kio_lock);
		mapping_forget_dirty_from(m, first);
	}
	urcu_bp_read_lock();
	ptree_for_each(&m->tree, first, drop_page, &a);
	urcu_bp_read_unlock();
}

void drop_pages(struct mapping *m, uint64_t first, bool keep_dirty)
{
	drop_range(m, first, UINT64_MAX, keep_dirty);
}


/*
 * The file is now @size long in the kernel and for the program (truncate,
 * or an fallocate that may move data): cached pages past it go, the tail of
 * the last one is zeroed.  With both locks exclusive.
 */
void resize_locked(struct mapping *m, off_t size)
{
	uint64_t first = ((uint64_t)size + FOLIO_PAGE_BYTES - 1) >> FOLIO_PAGE_SHIFT;
	size_t tail = size & (FOLIO_PAGE_BYTES - 1);

	assert_exclusive(&m->lock);
	assert_exclusive(&m->kio_lock);
	drop_pages(m, first, false);
	if (tail) {
		struct page *page = find_locked(m, size >> FOLIO_PAGE_SHIFT);

		if (page) {
			if (page->dirty_hi > tail)	/* dirty bytes stay inside the file */
				page->dirty_hi = tail;
			page_journal(page);	/* before the zeros: never journalled */
			memset(page->data + tail, 0, FOLIO_PAGE_BYTES - tail);
			page_write_end(page);
		}
	}
	mapping_set_size(m, size);
	__atomic_store_n(&m->ksize, size, __ATOMIC_RELEASE);
	mapping_note_kernel_now(m);
}

/* A free page, writing back @m's dirty pages if there is none.  @lock held. */
struct page *alloc_page(struct mapping *m)
{
	struct page *page = page_alloc();

	if (!page && mapping_writeback(m) == 0)
		page = page_alloc();
	return page;
}

ssize_t kernel_pread_flags(struct mapping *m, void *buf, size_t len, off_t pos, int rwf_flags)
{
	struct iovec iov = { buf, len };
	ssize_t n;

	if (m->kfd < 0 || m->kfd_accmode == O_WRONLY)
		return fail(EBADF);
	do
		n = rwf_flags ? real_preadv64v2(m->kfd, &iov, 1, pos, rwf_flags) :
				real_pread64(m->kfd, buf, len, pos);
	while (n < 0 && errno == EINTR);
	return n;
}

ssize_t kernel_pwrite(struct mapping *m, const void *buf, size_t len, off_t pos)
{
	ssize_t n;

	if (m->kfd < 0)
		return fail(EBADF);
	do
		n = real_pwrite64(m->kfd, buf, len, pos);
	while (n < 0 && errno == EINTR);
	return n;
}

/*
 * Pass @m through for @reason: everything it holds goes back to the kernel
 * first.  Returns false (and leaves @m cached) if that failed.  Under
 * mapping_lock_all().
 */
bool start_bypass_locked(struct mapping *m, enum bypass_reason reason)
{
	bool ok = true;

	assert_exclusive(&m->lock);
	assert_exclusive(&m->kio_lock);
	if (!bypassed(m)) {
		ok = mapping_writeback_kio_locked(m) == 0;
		if (ok)
			drop_pages(m, 0, false);
	}
	if (ok)
		__atomic_or_fetch(&m->bypass, reason, __ATOMIC_RELEASE);
	return ok;
}

int start_bypass_try(struct mapping *m, enum bypass_reason reason)
{
	bool ok;

	if (pthread_rwlock_trywrlock(&m->lock))
		return -1;
	if (pthread_rwlock_trywrlock(&m->kio_lock)) {
		pthread_rwlock_unlock(&m->lock);
		return -1;
	}
	ok = start_bypass_locked(m, reason);
	mapping_unlock_all(m);
	return ok;
}

bool start_bypass(struct mapping *m, enum bypass_reason reason)
{
	int cancel = cancel_off();	/* reached from dup2, fork, ...: see cancel_off() */
	bool ok;

	mapping_lock_all(m);
	ok = start_bypass_locked(m, reason);
	mapping_unlock_all(m);
	cancel_restore(cancel);
	return ok;
}

/*
 * The kernel changed the file behind the cache in ways the cache cannot
 * follow (fallocate that punches, zeroes or moves data; an in-kernel
 * copy): forget clean pages, take the sizes from the kernel.  With both
 * locks exclusive, after everything dirty went back.
 */
void refresh_locked(struct mapping *m)
{
	struct stat st;

	assert_exclusive(&m->lock);
	assert_exclusive(&m->kio_lock);
	drop_pages(m, 0, true);
	if (m->kfd >= 0 && real_fstat(m->kfd, &st) == 0) {
		mapping_note_kernel(m, &st.st_ctim);
		__atomic_store_n(&m->ksize, st.st_size, __ATOMIC_RELEASE);
		if (st.st_size > mapping_size(m) || !__atomic_load_n(&m->nr_dirty, __ATOMIC_RELAXED))
			mapping_set_size(m, st.st_size);
	}
}

#define EXT4_SUPER_MAGIC	0xEF53

/* ext4 with extents and 4 KiB blocks: 2^32 - 1 blocks. */
#define EXT4_MAX_BYTES	((off_t)0xFFFFFFFFull << 12)

static bool seek_allowed(int kfd, off_t pos)
{
	return real_lseek64(kfd, pos, SEEK_SET) == pos;
}

/*
 * The largest file the kernel lets @kfd's file reach (s_maxbytes; on ext4 a
 * file without extents has a smaller limit of its own; FAT stops at 4 GiB):
 * the largest position lseek(2) may set, which is the same limit.  Asked on
 * folio's own descriptor, whose position folio never uses: the common
 * answers first, else a binary search.  Without one (or if it cannot seek
 * at all), a guess from the file system's type.  Keeps errno.
 */
static off_t max_file_size(int kfd, long type)
{
	int saved_errno = errno;
	off_t ok = 0, refused = OFF_T_MAX;

	if (kfd < 0 || !seek_allowed(kfd, 0)) {
		ok = type == EXT4_SUPER_MAGIC ? EXT4_MAX_BYTES : OFF_T_MAX;
	} else if (seek_allowed(kfd, OFF_T_MAX)) {
		ok = OFF_T_MAX;
	} else if (seek_allowed(kfd, EXT4_MAX_BYTES) && !seek_allowed(kfd, EXT4_MAX_BYTES + 1)) {
		ok = EXT4_MAX_BYTES;
	} else {
		while (refused - ok > 1) {
			off_t mid = ok + (refused - ok) / 2;

			if (seek_allowed(kfd, mid))
				ok = mid;
			else
				refused = mid;
		}
	}
	errno = saved_errno;
	return ok;
}

off_t mapping_max_bytes(struct mapping *m)
{
	off_t max = __atomic_load_n(&m->max_bytes, __ATOMIC_RELAXED);

	if (!max) {	/* kio_lock: @kfd stays put while it is probed */
		pthread_rwlock_rdlock(&m->kio_lock);
		max = max_file_size(m->kfd, m->fs_type);
		pthread_rwlock_unlock(&m->kio_lock);
		__atomic_store_n(&m->max_bytes, max, __ATOMIC_RELAXED);
	}
	return max;
}
