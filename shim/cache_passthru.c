/*
 * cache_passthru.c - where a file passes through the cache: while it is
 * memory-mapped, as a standard stream, and around the kernel's in-kernel
 * copies (sendfile, splice, copy_file_range), and while another process
 * holds it too (share.h); and stat's sizes while it does.  See cache.h and
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
#include "log.h"
#include "mapping.h"
#include "mmaps.h"
#include "real.h"
#include "share.h"
#include "writeback.h"

void *cache_mmap(struct ofile *of, void *addr, size_t length, int prot, int flags, int fd,
		 off_t offset)
{
	struct mapping *m = mapping_of(of);
	bool started = false;
	void *ret = MAP_FAILED;

	/*
	 * The mapping is made and recorded under the locks that
	 * inode_unmapped() takes: otherwise the munmap() of the inode's last
	 * other mapping could find no mapping left, between this one's check
	 * of BYPASS_MAPPED and its mmaps_add(), and cache the file again
	 * while this mapping shows the kernel's pages.
	 */
	mapping_lock_all(m);
	if (!(m->bypass & BYPASS_MAPPED)) {
		/* A mapping must show what was written: if that cannot reach
		 * the kernel, the mmap fails with the write-back's error. */
		if (!start_bypass_locked(m, BYPASS_MAPPED))
			goto out;
		started = true;
	}
	ret = real_mmap64(addr, length, prot, flags, fd, offset);
	if (ret != MAP_FAILED) {
		int saved_errno = errno;

		mmaps_add(ret, length, of->inode->dev, of->inode->ino);
		errno = saved_errno;
	}
out:
	mapping_unlock_all(m);
	if (started)
		log_info("%s is mapped: passing it through while it is", m->name);
	return ret;
}

void cache_std_fd(struct ofile *of)
{
	struct mapping *m = mapping_of(of);

	if (!bypassed_for(m, BYPASS_STDFD) && start_bypass(m, BYPASS_STDFD))
		log_info("%s is a standard stream's fd: passing it through", m->name);
}

#ifdef FOLIO_TEST_FAULTS
/*
 * Test builds only: FOLIO_TEST_DELAY=unmapped holds inode_unmapped() for
 * 500 us between its refresh and the end of the bypass, where a copy that
 * ended used to leave the file cached with the size from before it.
 */
static void test_delay(const char *where)
{
	const char *want = getenv("FOLIO_TEST_DELAY");

	if (want && !strcmp(want, where))
		usleep(500);
}
#else
static inline void test_delay(const char *where)
{
	(void)where;
}
#endif

/* The last mapping of the inode @dev/@ino is gone: cache it again. */
static void inode_unmapped(dev_t dev, ino_t ino)
{
	struct ofile *of = fdtable_inode_ofile_get(dev, ino);
	struct mapping *m;

	if (!of)
		return;
	m = mapping_of(of);
	mapping_lock_all(m);
	if ((m->bypass & BYPASS_MAPPED) && !mmaps_has(dev, ino)) {
		if (m->bypass == BYPASS_MAPPED) {
			refresh_locked(m);
			log_info("%s is no longer mapped: caching it again", m->name);
			test_delay("unmapped");
		}
		__atomic_and_fetch(&m->bypass, ~BYPASS_MAPPED, __ATOMIC_RELEASE);
	}
	mapping_unlock_all(m);
	ofile_put(of);
}

void cache_munmap(void *addr, size_t length)
{
	int saved_errno = errno;

	if (mmaps_any())
		mmaps_remove(addr, length, inode_unmapped);
	errno = saved_errno;
}

void cache_mremap(void *old_address, void *new_address, size_t new_size)
{
	if (mmaps_any())
		mmaps_move(old_address, new_address, new_size);
}

/*
 * The kernel is about to copy from @of (@destination: into it): its data
 * must be in the kernel, and pages a copy into it overwrites must go.
 */
static int copy_prepare_data(struct ofile *of, bool destination)
{
	struct mapping *m = mapping_of(of);
	int ret;

	if (bypassed(m))
		return 0;
	mapping_lock_all(m);
	ret = mapping_writeback_kio_locked(m);
	if (ret == 0 && destination)
		drop_pages(m, 0, true);
	mapping_unlock_all(m);
	return ret;
}

/* Lock the positions of @a and @b (either NULL, or both the same) in address
 * order: two copies in opposite directions must not deadlock. */
static void lock_two_positions(struct ofile *a, struct ofile *b)
{
	if (a == b)
		b = NULL;
	if (a && b && (uintptr_t)b < (uintptr_t)a) {
		struct ofile *t = a;

		a = b;
		b = t;
	}
	if (a)
		pthread_mutex_lock(&a->pos_lock);
	if (b)
		pthread_mutex_lock(&b->pos_lock);
}

static void lend_position(struct ofile *of, int fd)
{
	if (of && !of->pos_in_kernel)
		real_lseek64(fd, of->pos, SEEK_SET);
}

/* Take the position back from the kernel and unlock it (once per ofile). */
static void take_position(struct ofile *of, int fd)
{
	if (!of)
		return;
	if (!of->pos_in_kernel)
		pos_from_kernel(of, fd);
	pthread_mutex_unlock(&of->pos_lock);
}

int cache_copy_begin(struct ofile *in, int in_fd, struct ofile *out, int out_fd)
{
	int err = 0;

	lock_two_positions(in, out);
	lend_position(in, in_fd);
	if (out != in)
		lend_position(out, out_fd);
	if (in && copy_prepare_data(in, in == out) < 0)
		err = errno;
	if (!err && out && out != in && copy_prepare_data(out, true) < 0)
		err = errno;
	if (!err)
		return 0;
	take_position(in, in_fd);
	if (out != in)
		take_position(out, out_fd);
	return fail(err);
}

void cache_copy_end(struct ofile *in, int in_fd, struct ofile *out, int out_fd)
{
	int saved_errno = errno;
	struct mapping *m = out ? mapping_of(out) : NULL;

	take_position(in, in_fd);
	if (out != in)
		take_position(out, out_fd);
	/*
	 * What the copy wrote, and the new size.  Also when @out passed
	 * through at begin and its last mapping went meanwhile: unlike a write
	 * (write_through()), a copy holds no lock against that, and this,
	 * after the copy is in the kernel, drops what a miss cached before.
	 * Checked under the locks: inode_unmapped() clears the bypass only
	 * after its refresh, under them, and that refresh may have asked the
	 * kernel for the size before this copy extended the file.
	 */
	if (m) {
		mapping_lock_all(m);
		if (!bypassed(m))
			refresh_locked(m);
		mapping_unlock_all(m);
	}
	errno = saved_errno;
}

/*
 * The file passes through, so the kernel's size is the size, but maybe not
 * the one the caller got: start_bypass() may have written dirty data past
 * it back between the caller's stat and here.  Ask the kernel again, through
 * folio's own descriptor of the inode (checked to still be it).  Inside a
 * read-side section; errno preserved.
 */
void restat_bypassed(struct mapping *m, dev_t dev, ino_t ino, off_t *st_size,
			    blkcnt_t *st_blocks)
{
	int kfd = __atomic_load_n(&m->kfd, __ATOMIC_RELAXED), saved_errno = errno;
	struct stat st;

	if (kfd >= 0 && real_fstat(kfd, &st) == 0 && st.st_dev == dev && st.st_ino == ino) {
		*st_size = st.st_size;
		*st_blocks = st.st_blocks;
	}
	errno = saved_errno;
}

void cache_stat_fixup(dev_t dev, ino_t ino, off_t *st_size, blkcnt_t *st_blocks)
{
	if (unlikely(share_pending()) && !folio_call_depth)	/* as interpose_io.c's share_check() */
		share_catch_up(true);
	struct mapping *m;

	urcu_bp_read_lock();
	m = fdtable_inode_mapping(dev, ino);
	if (m && bypassed(m)) {
		restat_bypassed(m, dev, ino, st_size, st_blocks);
	} else if (m) {
		off_t size = mapping_size(m);

		if (size > *st_size) {	/* dirty data past the kernel's end */
			blkcnt_t blocks = (size + 4095) / 4096 * 8;

			if (blocks > *st_blocks)
				*st_blocks = blocks;
		}
		*st_size = size;
	}
	urcu_bp_read_unlock();
}
