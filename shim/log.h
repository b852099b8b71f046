/*
 * log.h - folio's messages on stderr, filtered by FOLIO_LOG.
 *
 * Owns the current log level.  Writes with real_write() to fd 2 from a stack
 * buffer: no stdio, no allocation, errno preserved, safe in a signal handler
 * as far as vsnprintf is.  Every line starts with "folio: ".
 */
#ifndef FOLIO_LOG_H
#define FOLIO_LOG_H

#include "compiler.h"

enum log_level { LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG };

extern enum log_level folio_log_level;

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
