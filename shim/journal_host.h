/*
 * journal_host.h - the journal (journal.h) as libfolio.so holds it.
 *
 * journal_create() and journal_destroy() run with the page store's
 * page_store_init() and page_store_destroy(); everything else reads
 * @journal's fields, which stay put in between.
 *
 * Calls real only.
 */
#ifndef FOLIO_JOURNAL_HOST_H
#define FOLIO_JOURNAL_HOST_H

#include <stddef.h>
#include <stdint.h>

#include "journal.h"

struct journal_host {
	int fd;				/* the memfd, owned by folio; -1: none */
	void *base;
	size_t bytes;
	void *pages;			/* the page descriptors: page.c's */
	unsigned char *arena;		/* the page store's data */
};

extern struct journal_host journal;

/*
 * How folio's own descriptors (the memfd, the guardian's socket) are kept
 * out of the program's way: @own moves one to a high number and marks it
 * folio's, returning the number to use; @close undoes that and closes it
 * (fdtable_own(), fdtable_close_own()).  Set by cache_init(); without them
 * (unit tests) descriptors stay where the kernel put them.
 */
struct journal_fd_ops {
	int (*own)(int fd);
	void (*close)(int fd);
};

extern struct journal_fd_ops journal_fd_ops;

int journal_own_fd(int fd);
void journal_close_fd(int fd);

/*
 * Make the memfd and map it for @nr_pages pages with descriptors of
 * @page_stride bytes: zero-filled, so every record is clean.  Returns 0,
 * or -1 with errno.
 */
int journal_create(size_t nr_pages, size_t page_stride);

/* Unmap it and close the memfd. */
void journal_destroy(void);

/* In a fork child: the parent's journal is not mapped here; forget it. */
void journal_forget(void);

#endif
