/*
 * mmaps.h - which tracked inodes are memory-mapped, and where.
 *
 * A mapped file passes through the cache (the kernel's page cache is what
 * the mapping shows), so the cache must know while any mapping of an inode
 * exists, also after the fd it was made from is closed.  Ranges are kept by
 * inode (dev, ino), not by folio's per-open state, and follow munmap and
 * mremap.  A partial munmap in the middle of a range keeps the whole range
 * (the file stays passed through: safe).
 *
 * All calls take one mutex (not on any read or write path).  Calls nothing
 * but libc; called by cache.
 */
#ifndef FOLIO_MMAPS_H
#define FOLIO_MMAPS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Lockless: is anything recorded at all?  The munmap fast path. */
bool mmaps_any(void);

/* [@addr, @addr + @len) maps the inode @dev/@ino. */
void mmaps_add(void *addr, size_t len, dev_t dev, ino_t ino);

/* Is the inode @dev/@ino mapped anywhere? */
bool mmaps_has(dev_t dev, ino_t ino);

/*
 * [@addr, @addr + @len) was unmapped.  Calls @unmapped(@dev, @ino) (without
 * the mutex) for each inode that has no mapping left.
 */
void mmaps_remove(void *addr, size_t len, void (*unmapped)(dev_t dev, ino_t ino));

/* mremap() moved or resized the mapping at @old to @addr, @len long. */
void mmaps_move(void *old, void *addr, size_t len);

#endif
