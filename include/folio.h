/*
 * folio.h - optional API for programs that know they may run under folio.
 *
 * Declarations are weak: a program built with this header runs unchanged
 * without libfolio.so, where every function is a null pointer.  Test before
 * calling:
 *
 *	if (folio_fd_tracked && folio_fd_tracked(fd))
 *		...
 */
#ifndef FOLIO_H
#define FOLIO_H

#ifdef __cplusplus
extern "C" {
#endif

/*
 * 1 if @fd is a file folio tracks (its reads and writes go through folio's
 * cache), 0 otherwise, including for invalid fds.  Lock-free and
 * async-signal-safe.
 */
__attribute__((weak)) int folio_fd_tracked(int fd);

#ifdef __cplusplus
}
#endif

#endif
