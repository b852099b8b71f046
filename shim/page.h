/*
 * page.h - the page store: the cache's 4 KiB pages of file data.
 *
 * Owns the arena (page memory and descriptors, allocated once, so the hit
 * path never allocates), the free list and the clock hand that reclaims
 * clean pages.  A page in use sits in one slot of its file's index (a
 * ptree, owned by the cache): page_insert() puts it there and page_remove()
 * or the clock hand take it out, each with a compare-and-swap on the slot.
 * The owner is a number the cache gives each open inode and never reuses.
 *
 * Rules, following mm/filemap.c's shape:
 *   - Lookups (in the cache's index) and untorn copies (page_copy_out) run
 *     inside urcu_bp_read_lock() and take no lock and no reference: a page
 *     stays readable until a grace period after its removal.
 *   - A page's data changes only between page_write_begin() and
 *     page_write_end(), which take the page's lock and make its sequence
 *     count odd; readers retry a copy that overlapped a change.  The count
 *     and the referenced bit live in arrays beside the arena, not in the
 *     descriptor, so a hit reads no descriptor: on a working set larger
 *     than the CPU caches that saved one memory miss per read.  A page
 *     found by a lookup may be reclaimed or removed before its lock is
 *     taken: after page_write_begin(), check PAGE_INDEXED, owner and index,
 *     and retry the lookup if they changed.
 *   - The slot of an indexed page stays valid: the cache removes every page
 *     of an index before it frees the index.
 *   - Dirty pages are never reclaimed; the cache writes them back first.
 *   - page_alloc() may wait for a grace period, holding the free list's
 *     lock: never call it, page_free(), page_store_used() or
 *     page_store_reclaimed() inside a read-side section, while holding a
 *     page lock or between page_write_begin() and page_write_end() (a
 *     reader spinning on that page would keep the grace period from
 *     ending).  Allocate first, then lock.
 *
 * Each page has a record in the journal (journal.h) saying which file and
 * bytes it holds for the guardian: page_journal().
 *
 * Calls journal, rcu, uaccess and real only.
 */
#ifndef FOLIO_PAGE_H
#define FOLIO_PAGE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "journal.h"
#include "rcu.h"

#define FOLIO_PAGE_SHIFT	12
#define FOLIO_PAGE_BYTES	(1u << FOLIO_PAGE_SHIFT)

enum page_flags {
	PAGE_INDEXED = 1 << 0,	/* in its slot of the owner's index */
	PAGE_DIRTY = 1 << 1,	/* newer than the kernel's copy; on its owner's dirty list */
	PAGE_WRITEBACK = 1 << 2,	/* its data is being written to the kernel */
};

struct page {
	/* What the guardian reads (journal.h): kept by page_insert() and
	 * page_journal(); in the journal's shared memory with the rest. */
	union {
		struct journal_page record;
		struct {
			uint64_t owner;		/* the inode state the page belongs to */
			uint64_t index;		/* file offset >> FOLIO_PAGE_SHIFT */
			uint64_t ranges;	/* the dirty and write-back ranges: the
						 * write-back one is kept only here */
		};
	};
	unsigned int flags;		/* enum page_flags; changed under the page lock, by
					 * atomic stores: reclaim's hand reads it without */
	/*
	 * The bytes writes changed since the page was last written back,
	 * [dirty_lo, dirty_hi) (empty: lo > hi); write-back writes only
	 * those, so bytes another process wrote around them survive.  Under
	 * the page lock.
	 */
	uint16_t dirty_lo, dirty_hi;
	pthread_mutex_t lock;		/* orders the writers of this page */
	void **slot;			/* its slot in the owner's index, while indexed */
	uint64_t *evictions;		/* the owner's count of pages reclaimed */
	struct folio_deferred free_later;
	struct page *dirty_next;	/* the owner's dirty list, while PAGE_DIRTY */
	unsigned char *data;		/* FOLIO_PAGE_BYTES in the arena */
};

/*
 * Tell the journal (journal.h) which bytes of @page are newer than the
 * kernel's: call after every change of its flags, dirty or write-back
 * range, under its lock, and only once the data is in the page (a range
 * that grows) or in the kernel (one that shrinks).
 */
static inline void page_journal(struct page *page)
{
	unsigned int flags = page->flags;
	uint64_t writeback = flags & PAGE_WRITEBACK ? page->ranges & ~0xffffffffull : 0;

	__atomic_store_n(&page->ranges,
			 writeback | journal_ranges(flags & PAGE_DIRTY ? page->dirty_lo : 0,
						    flags & PAGE_DIRTY ? page->dirty_hi : 0, 0, 0),
			 __ATOMIC_RELEASE);
}

/*
 * Bytes [@lo, @hi) of @page, dirty now, are about to be written back: the
 * journal has them as both until PAGE_WRITEBACK is set and the dirty range
 * emptied (then page_journal()).  Under the page lock.
 */
static inline void page_journal_writeback(struct page *page, unsigned int lo, unsigned int hi)
{
	__atomic_store_n(&page->ranges, journal_ranges(0, 0, lo, hi) | (page->ranges & 0xffffffffull),
			 __ATOMIC_RELEASE);
}

/*
 * Allocate the arena for @bytes of pages (rounded down to whole pages, at
 * least 16).  Returns 0, or -1 with errno if the memory is not there (folio
 * then stays pass-through).  Not thread-safe: once.
 */
int page_store_init(size_t bytes);

/* Release everything page_store_init() made; no page may be in use. */
void page_store_destroy(void);

/*
 * In a fork child, with no other thread: abandon the store (another thread
 * of the parent may have been changing it) and give back its memory.  The
 * next page_store_init() starts afresh.
 */
void page_store_forget(void);

/* Has page_store_init() succeeded (and not been undone)? */
bool page_store_ready(void);

/*
 * Whether @addr is page memory: a fault there is folio's own, never a bad
 * buffer of the program's.  Async-signal-safe.
 */
bool page_store_holds(const void *addr);

#ifdef FOLIO_TEST_FAULTS
/* Test builds: make page memory read-only, so the next copy into it faults. */
void page_store_test_protect(void);
#endif

/* Pages in the arena, pages not on the free list, pages reclaimed so far. */
size_t page_store_capacity(void);
size_t page_store_used(void);
unsigned long page_store_reclaimed(void);

/*
 * Copy @len bytes from offset @off of @page into @dst, never torn by a
 * concurrent writer.  Marks the page referenced.  Inside urcu_bp_read_lock().
 * Returns the bytes copied: fewer than @len only if @dst is a bad address
 * (see uaccess.h).
 */
size_t page_copy_out(struct page *page, size_t off, size_t len, void *dst);

/*
 * A free page (data unspecified, not indexed), reclaiming clean pages if the
 * free list is empty.  NULL when every page is dirty or locked.  Outside
 * any read-side section: it may wait for a grace period.
 */
struct page *page_alloc(void);

/*
 * Give back a page page_alloc() returned and that was never inserted.
 * Outside any read-side section (reclaim holds the free list's lock while it
 * waits for a grace period).
 */
void page_free(struct page *page);

/*
 * Make @page (filled by the caller) the page of @owner at @index by putting
 * it in @slot, the index's slot for it, with @flags (0 or PAGE_DIRTY)
 * besides PAGE_INDEXED.  If another thread filled the slot first, @page is
 * freed and the winner returned (add-unique, as filemap_add_folio() loses a
 * race).  The clock hand adds 1 to *@evictions (if not NULL) when it takes
 * the page: the owner's, which must outlive the page's time in the index.
 * Inside urcu_bp_read_lock().
 */
struct page *page_insert(struct page *page, void **slot, uint64_t owner, uint64_t index,
			 unsigned int flags, uint64_t *evictions);

/*
 * Take @page out of its slot; its memory returns to the free list after a
 * grace period.  Inside urcu_bp_read_lock(), with the page lock held.
 * Returns false if it was already removed.
 */
bool page_remove(struct page *page);

/* Change the data of @page: take its lock and make its count odd / even. */
void page_write_begin(struct page *page);
void page_write_end(struct page *page);

#endif
