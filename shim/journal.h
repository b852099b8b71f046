/*
 * journal.h - the memory folio shares with its guardian (doc/design.md §2.6).
 *
 * One memfd holds the page arena, the page descriptors, each of which
 * starts with the record that says what its page is (the file it belongs
 * to: the owner number of its mapping; its page number in that file; the
 * bytes of it newer than the kernel's copy).  No file's size: writing the
 * dirty bytes back extends a file as far as the process had (an extending
 * write dirties up to its last byte; a truncation or fallocate() goes to
 * the kernel at once).  The record is in the descriptor so that
 * a write, which locks and changes the descriptor anyway, touches no other
 * cache line to keep it.  The process writes it; its guardian (shim/guardian/) maps it too
 * and reads it only after the process is gone, when no store to it can
 * come any more.  So a record needs no lock: it must only be right after
 * any instruction at which the process may die.  The rules that make it so:
 *
 *   - A page record's owner and index are set before it is marked dirty,
 *     and it is clean (both ranges empty) whenever they change.
 *   - The ranges of a page are one 64-bit word, stored whole (x86-64
 *     stores of an aligned word are atomic), after the bytes they cover
 *     are in the arena when the range grows, and only after the kernel
 *     has those bytes when it shrinks: so the record covers at least every
 *     byte a returned write put there that the kernel does not have.
 *
 * Shared by libfolio.so (journal.c, page.c, guard.c) and the guardian
 * program, which must agree on it byte for byte: JOURNAL_VERSION changes
 * with any change of layout.  Includes nothing of folio's.
 */
#ifndef FOLIO_JOURNAL_H
#define FOLIO_JOURNAL_H

#include <stdint.h>
#include <sys/types.h>

#define JOURNAL_MAGIC	0x4c4e524a4f494c46ull	/* "FOLIOJRNL" */
#define JOURNAL_VERSION	1
#define JOURNAL_PAGE	4096u

/* Files the guardian can hold at once (struct guard_msg's @slot). */
#define JOURNAL_FILES	65536u

struct journal_header {
	uint64_t magic;
	uint32_t version;
	uint32_t page_bytes;
	uint64_t nr_pages;
	uint64_t pages_offset;	/* nr_pages descriptors, page_stride bytes apart, */
	uint64_t page_stride;	/* each starting with its struct journal_page */
	uint64_t arena_offset;	/* nr_pages * page_bytes of data */
	uint64_t bytes;		/* the whole memfd */
};

/*
 * What page @i of the arena holds: at pages_offset + i * page_stride.  @ranges packs two byte ranges of the
 * page, each [lo, hi) and empty when lo >= hi: bits 0-15 lo and 16-31 hi of
 * the dirty bytes (the page's dirty_lo/dirty_hi), bits 32-47 lo and 48-63
 * hi of the bytes a write-back is writing to the kernel.
 */
struct journal_page {
	uint64_t owner;
	uint64_t index;
	uint64_t ranges;
};

/* Both ranges empty: a fresh (zero-filled) memfd is all clean. */
#define JOURNAL_CLEAN	0ull

/* Pack two ranges; an empty one is stored as 0-0. */
static inline uint64_t journal_ranges(unsigned int lo, unsigned int hi, unsigned int wlo,
				      unsigned int whi)
{
	if (lo >= hi)
		lo = hi = 0;
	if (wlo >= whi)
		wlo = whi = 0;
	return (uint64_t)lo | (uint64_t)hi << 16 | (uint64_t)wlo << 32 | (uint64_t)whi << 48;
}

static inline unsigned int journal_range_lo(uint64_t ranges, int which)
{
	return (ranges >> (32 * which)) & 0xffff;
}

static inline unsigned int journal_range_hi(uint64_t ranges, int which)
{
	return (ranges >> (32 * which + 16)) & 0xffff;
}

/*
 * Messages on the guardian's socket (SOCK_SEQPACKET), host to guardian.
 * GUARD_HELLO comes first, with the journal's memfd and a pidfd of the host;
 * GUARD_FILE with the descriptor to write @owner's pages through (an open of
 * the same inode: a rename or unlink changes nothing), before any page of it
 * is dirty; GUARD_FORGET once the file is clean and gone from the cache.
 */
enum guard_msg_type {
	GUARD_HELLO = 1,
	GUARD_FILE,
	GUARD_FORGET,
};

#define GUARD_NAME_MAX	240

struct guard_msg {
	uint32_t type;
	uint32_t slot;
	uint64_t owner;
	char name[GUARD_NAME_MAX];	/* GUARD_FILE: for the guardian's messages */
};

#endif
