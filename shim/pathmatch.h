/*
 * pathmatch.h - FOLIO_FILES patterns: lexical path normalisation and glob
 * matching.
 *
 * Pure functions on strings: no allocation, no system call, no locale, so
 * they run the same before the constructor, in a signal handler and in the
 * unit tests.  Called by config (validation) and fdtable (the open decision).
 */
#ifndef FOLIO_PATHMATCH_H
#define FOLIO_PATHMATCH_H

#include <stdbool.h>
#include <stddef.h>

/*
 * Match @text against the glob @pattern:
 *   *      any run of characters other than '/'
 *   **     any run of characters, '/' included; between two slashes it
 *          also matches a single '/' (no directory at all)
 *   ?      one character other than '/'
 *   [...]  one character of the set ([!...] or [^...] negates, a-z ranges);
 *          never '/'
 *   \c     the character c itself
 * The whole of @text must match.  Runs in time bounded by
 * strlen(pattern) * strlen(text).
 */
bool path_match(const char *pattern, const char *text);

/*
 * Why @pattern is not a valid FOLIO_FILES pattern, or NULL if it is: a
 * pattern containing '/' must be absolute, brackets must close, and the
 * length is bounded by PATH_MAX.
 */
const char *pattern_error(const char *pattern);

/*
 * Write the absolute, lexically normalised form of @path into @out: @path is
 * taken relative to @base (an absolute directory) unless it starts with '/';
 * empty, "." components and repeated slashes are dropped, ".." removes the
 * previous component (never above "/").  Symbolic links are not followed: the
 * result names the path as the program spelled it.  @out may be @path
 * itself when @path is absolute.
 * Returns 0, or -1 if @base and @path together do not fit in @size bytes
 * (checked as components are added, before ".." removes any).
 */
int path_normalize(const char *base, const char *path, char *out, size_t size);

/*
 * The last component of @path, ignoring trailing slashes, copied to @out
 * (at most @size bytes, truncated; @size > 0).  "" for "/".
 */
void path_basename(const char *path, char *out, size_t size);

#endif
