/*
 * bind.h - folio's calls to the C library land in the C library.
 *
 * The dynamic linker binds each function a library imports to the first
 * definition in the global scope, and the program's executable comes
 * first.  A program that exports its own snprintf, strlen or memcpy (dbench,
 * any program linked with -rdynamic) would receive folio's calls, with
 * folio's arguments, where natively no library of the process but its own
 * code calls them.  So every import of libfolio.so, of the libraries it
 * needs (liburcu's) and of those it loads later (libunwind and its
 * dependencies) that the dynamic linker bound to a function the executable
 * defines is pointed at the next definition of that name and version after
 * libfolio.so in the lookup order, as real.h's entries are: libc's, or a
 * library preloaded after folio.  Left as the dynamic linker bound them:
 *   - the allocator (malloc, calloc, realloc, free, aligned_alloc, ...):
 *     a program or preload that replaces it replaces it for every library,
 *     and memory goes back to the allocator that gave it;
 *   - data (environ): one object for the whole process, wherever it lives;
 *   - names the executable does not define: what the dynamic linker chose
 *     is then what it chooses for every library of the process (a
 *     sanitizer's interceptor, say);
 *   - libraries the program itself needs as well (listed in the
 *     executable's DT_NEEDED, or loaded before folio loaded them): the
 *     program's own bindings stay its own;
 *   - everything, in a program whose executable carries a sanitizer's
 *     runtime (clang links it in): its functions are the interceptors.
 * A shared library of the program's own that defines a libc name is not
 * the executable, and keeps folio's calls like any other library's.
 * Each import costs a lookup in the executable's hash table, once.
 *
 * Calls only the dynamic linker's interface (dladdr1, dlsym, dlvsym, dlinfo,
 * dl_iterate_phdr) and mprotect, looked up as the imports are;
 * called by real (before anything else folio does) and unwind.
 */
#ifndef FOLIO_BIND_H
#define FOLIO_BIND_H

#include <link.h>
#include <stdbool.h>

/*
 * Rebind libfolio.so and the libraries it needs, once; a call while another
 * thread (or this one, further up) is at it returns at once.  Preserves
 * errno.  Async-signal-safe as far as dlsym() is: it is run first by the
 * constructor or by the first wrapper that runs, whichever comes first.
 */
void bind_to_libc(void);

/*
 * Around folio's own dlopen() of a library (libunwind): bind_snapshot()
 * before it notes the objects loaded then; bind_library_to_libc() after it
 * rebinds the library @handle and what it needs that the dlopen() brought
 * in, not objects the program had loaded before (whose bindings are its
 * own), nor objects another thread is loading meanwhile.  Both preserve
 * errno; the objects are seen through dl_iterate_phdr(), under the dynamic
 * linker's lock.
 */
#define BIND_SNAPSHOT_MAX	256
struct bind_snapshot {
	ElfW(Addr) addr[BIND_SNAPSHOT_MAX];
	int n;
	bool truncated;
};

void bind_snapshot(struct bind_snapshot *s);
void bind_library_to_libc(void *handle, const struct bind_snapshot *before);

#endif
