/*
 * log.c - see log.h.  Calls only real_write().
 */
#include <stdarg.h>

#include "log.h"
#include "real.h"

enum log_level folio_log_level = LOG_WARN;

/* Errors and warnings read as plain sentences; the chatty levels say so. */
static const char *const level_prefix[] = {
	[LOG_ERROR] = "folio: ", [LOG_WARN] = "folio: ",
	[LOG_INFO] = "folio: info: ", [LOG_DEBUG] = "folio: debug: ",
};

void folio_log_write(enum log_level level, const char *fmt, ...)
{
	int saved_errno = errno;
	char line[1024];
	size_t len;
	va_list ap;
	int n;

	n = snprintf(line, sizeof(line), "%s", level_prefix[level]);
	va_start(ap, fmt);
	n += vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	va_end(ap);
	len = (size_t)n < sizeof(line) - 1 ? (size_t)n : sizeof(line) - 2;
	line[len++] = '\n';
	for (size_t done = 0; done < len;) {
		ssize_t w = real_write(STDERR_FILENO, line + done, len - done);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break;
		done += w;
	}
	errno = saved_errno;
}
