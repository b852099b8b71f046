/*
 * log.h - folio's messages on stderr, filtered by FOLIO_LOG.
 *
 * Owns the current log level and where lines go: fd 2, or the file
 * FOLIO_LOG_FILE names.  Writes with real_write() from a stack buffer: no
 * stdio, no allocation, errno preserved, safe in a signal handler as far as
 * vsnprintf is.  Every line starts with "folio: ".
 *
 * Calls real only.
 */
#ifndef FOLIO_LOG_H
#define FOLIO_LOG_H

#include <stdbool.h>
#include <stddef.h>

#include "compiler.h"

enum log_level { LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG };

extern enum log_level folio_log_level;

/*
 * Write @len bytes of @buf to @fd with real_write(), going on after short
 * writes and EINTR.  Returns false if the file refused the rest.  Changes
 * errno only then.  Async-signal-safe.
 */
bool write_all(int fd, const void *buf, size_t len);

/*
 * The same for what snprintf(@buf, @size, ...) just returned as @n: the
 * line as far as it fits.  False also if @n is an error.
 */
static inline bool write_formatted(int fd, const char *buf, size_t size, int n)
{
	return n > 0 && write_all(fd, buf, (size_t)n < size ? (size_t)n : size - 1);
}

/*
 * Send the lines to the file at @path from now on (%p in it: the process
 * id), appended to, created 0600 if need be, never through a symbolic
 * link, close-on-exec.  Returns 0, or -1 with errno (lines still go to fd 2).
 */
int log_open_file(const char *path);

/* The descriptor of FOLIO_LOG_FILE, -1 if lines go to stderr. */
int log_file_fd(void);

/* Let @adopt (fdtable_adopt()) make FOLIO_LOG_FILE's descriptor folio's own
 * and tell the number to use from then on. */
void log_file_adopt(int (*adopt)(int fd));

/*
 * @pattern with each "%p" replaced by the process id, into @out.  Returns
 * 0, or -1 if it does not fit.
 */
int log_expand_path(const char *pattern, char *out, size_t len);


void folio_log_write(enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define folio_log(level, ...) \
	do { \
		if (unlikely((level) <= folio_log_level)) \
			folio_log_write(level, __VA_ARGS__); \
	} while (0)

#define log_error(...)	folio_log(LOG_ERROR, __VA_ARGS__)
#define log_warn(...)	folio_log(LOG_WARN, __VA_ARGS__)
#define log_info(...)	folio_log(LOG_INFO, __VA_ARGS__)
#define log_debug(...)	folio_log(LOG_DEBUG, __VA_ARGS__)

#endif
