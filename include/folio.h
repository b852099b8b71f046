/*
 * folio.h - optional API for programs that know they may run under folio.
 *
 * Declarations are weak: a program built with this header runs unchanged
 * without libfolio.so, where every function is a null pointer.  Test before
 * calling:
 *
 *	if (folio_fd_tracked && folio_fd_tracked(fd))
 *		...
 *
 * No function here needs a lock held or a thread registered; each may be
 * called from any thread, and folio_fd_tracked() from a signal handler too.
 * See folio(3).
 */
#ifndef FOLIO_H
#define FOLIO_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * 1 if @fd is a file folio tracks (its reads and writes go through folio's
 * cache), 0 otherwise, including for invalid fds.  Lock-free and
 * async-signal-safe.
 */
__attribute__((weak)) int folio_fd_tracked(int fd);

/*
 * Write the data folio holds for @fd's file back to the kernel now, as the
 * background flusher would (no fsync: the kernel writes it to the device in
 * its own time; call fsync() for that).  @fd -1 means every tracked file.
 * Returns 0, also for an fd folio does not track (it holds nothing for it);
 * -1 with errno if the write-back failed (the data stays in folio, and the
 * next fsync() or close() of each open file reports the error as well).
 * May block for as long as the writes take.
 */
__attribute__((weak)) int folio_flush(int fd);

/*
 * What folio did, as FOLIO_STATS reports it at exit (see folio(7), the
 * fields of the report).  Counters since the process started, or since
 * fork() in a child.  New fields are only ever added at the end.
 */
struct folio_stats {
	uint64_t reads;			/* read calls */
	uint64_t read_bytes;		/* bytes they returned */
	uint64_t read_hits;		/* read calls served from the cache alone */
	uint64_t read_misses;		/* read calls that needed the kernel */
	uint64_t fill_pages;		/* pages read from the kernel into the cache */
	uint64_t readahead_pages;	/* ... of them past what a read asked for */
	uint64_t evictions;		/* clean pages the cache let go for room */
	uint64_t writes;		/* write calls */
	uint64_t write_bytes;		/* bytes they accepted */
	uint64_t lock_shared;		/* writes that took the file's lock shared */
	uint64_t lock_retaken;		/* ... then retook it exclusive (the size moved) */
	uint64_t lock_exclusive;	/* writes that held it exclusive */
	uint64_t lock_wait_ns;		/* time writers waited for it */
	uint64_t dirty_peak_bytes;	/* most dirty data held at once */
	uint64_t writeback_calls;	/* system calls writing dirty data back */
	uint64_t writeback_bytes;	/* bytes they wrote */
	uint64_t writeback_errors;	/* write-back batches that failed */
	uint64_t fsyncs;		/* fsync() and fdatasync() calls */
	uint64_t fsync_ns;		/* time they took */
};

/*
 * Fill @st (of @size bytes: pass sizeof(*st); an older, smaller struct gets
 * the fields it has) with the counts for @fd's file while it is open, or
 * with the process's totals (every file, open or closed) for @fd -1.
 * Returns 0, or -1 with errno EBADF if @fd is not a file folio tracks.
 * Takes a lock of folio's briefly for the totals; reading a file's counts
 * takes none.  Not async-signal-safe.
 */
__attribute__((weak)) int folio_stats(int fd, struct folio_stats *st, size_t size);

#ifdef __cplusplus
}
#endif

#endif
