/*
 * mmaps.c - see mmaps.h.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

#include "mmaps.h"

struct mmap_range {
	uintptr_t start, end;
	dev_t dev;
	ino_t ino;
};

static pthread_mutex_t mmaps_lock = PTHREAD_MUTEX_INITIALIZER;
static struct mmap_range *ranges;
/*
 * Changed under mmaps_lock, and only by an atomic store: mmaps_any() reads
 * it without the lock.
 */
static size_t nr_ranges, max_ranges;

#ifdef __SANITIZE_THREAD__
/*
 * make test SANITIZE=thread: ThreadSanitizer's symbolizer (libbacktrace)
 * frees its memory with munmap(), which is folio's, in the middle of a
 * report or of matching a suppression.  TSan ignores that thread's
 * interceptors there, pthread_mutex_lock() too, so what mmaps_remove()
 * reads under the mutex looked like a race with the thread that wrote it
 * last, and the report of that waited for the thread registry lock its own
 * thread held: every stress run under folio hung so.  TSan's annotations
 * are not ignored there; they carry the mutex's ordering for it.
 */
void __tsan_acquire(void *addr);
void __tsan_release(void *addr);
static char mmaps_tsan_sync;
#define mmaps_tsan_acquire()	__tsan_acquire(&mmaps_tsan_sync)
#define mmaps_tsan_release()	__tsan_release(&mmaps_tsan_sync)
#else
#define mmaps_tsan_acquire()	do { } while (0)
#define mmaps_tsan_release()	do { } while (0)
#endif

static void mmaps_lock_take(void)
{
	pthread_mutex_lock(&mmaps_lock);
	mmaps_tsan_acquire();
}

static void mmaps_lock_drop(void)
{
	mmaps_tsan_release();
	pthread_mutex_unlock(&mmaps_lock);
}

#define PAGE_ROUND_UP(x)	(((x) + 4095) & ~(uintptr_t)4095)

bool mmaps_any(void)
{
	return __atomic_load_n(&nr_ranges, __ATOMIC_RELAXED) != 0;
}

void mmaps_add(void *addr, size_t len, dev_t dev, ino_t ino)
{
	mmaps_lock_take();
	if (nr_ranges == max_ranges) {
		size_t n = max_ranges ? 2 * max_ranges : 16;
		struct mmap_range *r = realloc(ranges, n * sizeof(*r));

		if (!r) {	/* the inode just stays passed through */
			mmaps_lock_drop();
			return;
		}
		ranges = r;
		max_ranges = n;
	}
	ranges[nr_ranges] = (struct mmap_range){ (uintptr_t)addr,
						 PAGE_ROUND_UP((uintptr_t)addr + len), dev, ino };
	__atomic_store_n(&nr_ranges, nr_ranges + 1, __ATOMIC_RELAXED);
	mmaps_lock_drop();
}

static bool has_locked(dev_t dev, ino_t ino)
{
	for (size_t i = 0; i < nr_ranges; i++)
		if (ranges[i].dev == dev && ranges[i].ino == ino)
			return true;
	return false;
}

bool mmaps_has(dev_t dev, ino_t ino)
{
	bool found;

	if (!mmaps_any())
		return false;
	mmaps_lock_take();
	found = has_locked(dev, ino);
	mmaps_lock_drop();
	return found;
}

void mmaps_remove(void *addr, size_t len, void (*unmapped)(dev_t dev, ino_t ino))
{
	uintptr_t start = (uintptr_t)addr, end = PAGE_ROUND_UP(start + len);
	struct mmap_range gone[8];
	size_t nr_gone = 0, n;

	mmaps_lock_take();
	n = nr_ranges;
	for (size_t i = 0; i < n;) {
		struct mmap_range *r = &ranges[i];

		if (end <= r->start || start >= r->end) {
			i++;
			continue;
		}
		if (start <= r->start && end >= r->end) {	/* all of it */
			if (nr_gone < sizeof(gone) / sizeof(gone[0]))
				gone[nr_gone++] = *r;
			*r = ranges[--n];
			continue;
		}
		if (start <= r->start)				/* its head */
			r->start = end;
		else if (end >= r->end)				/* its tail */
			r->end = start;
		i++;						/* its middle: keep */
	}
	__atomic_store_n(&nr_ranges, n, __ATOMIC_RELAXED);
	for (size_t i = 0; i < nr_gone; i++)
		if (has_locked(gone[i].dev, gone[i].ino))
			gone[i].ino = 0;	/* still mapped elsewhere */
	mmaps_lock_drop();
	for (size_t i = 0; i < nr_gone; i++)
		if (gone[i].ino)
			unmapped(gone[i].dev, gone[i].ino);
}

void mmaps_move(void *old, void *addr, size_t len)
{
	mmaps_lock_take();
	for (size_t i = 0; i < nr_ranges; i++) {
		if (ranges[i].start == (uintptr_t)old) {
			ranges[i].start = (uintptr_t)addr;
			ranges[i].end = PAGE_ROUND_UP((uintptr_t)addr + len);
			break;
		}
	}
	mmaps_lock_drop();
}
