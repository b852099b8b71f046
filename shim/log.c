/*
 * log.c - see log.h.  Calls only real_write().
 */
#include <limits.h>
#include <stdarg.h>

#include "log.h"
#include "real.h"

enum log_level folio_log_level = LOG_WARN;
static int log_fd = STDERR_FILENO;

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
	write_all(log_fd, line, len);
	errno = saved_errno;
}

bool write_all(int fd, const void *buf, size_t len)
{
	for (size_t done = 0; done < len;) {
		ssize_t w = real_write(fd, (const char *)buf + done, len - done);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return false;
		done += w;
	}
	return true;
}

int log_expand_path(const char *pattern, char *out, size_t len)
{
	size_t n = 0;

	for (const char *p = pattern; *p; p++) {
		int w;

		if (p[0] == '%' && p[1] == 'p') {
			w = snprintf(out + n, len - n, "%d", (int)getpid());
			p++;
		} else {
			w = snprintf(out + n, len - n, "%c", *p);
		}
		if (w < 0 || (size_t)w >= len - n)
			return -1;
		n += w;
	}
	if (n >= len)
		return -1;
	out[n] = '\0';
	return 0;
}

int log_open_file(const char *path)
{
	char name[PATH_MAX];
	int fd;

	if (log_expand_path(path, name, sizeof(name)) < 0) {
		errno = ENAMETOOLONG;
		return -1;
	}
	fd = real_open(name, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return -1;
	log_fd = fd;
	return 0;
}

int log_file_fd(void)
{
	return log_fd == STDERR_FILENO ? -1 : log_fd;
}

void log_file_adopt(int (*adopt)(int fd))
{
	if (log_fd != STDERR_FILENO)
		log_fd = adopt(log_fd);
}

#ifdef FOLIO_DEBUG
void folio_debug_fail(const char *what, const char *file, int line)
{
	log_error("FOLIO_DEBUG: a rule of shim/LOCKING is broken at %s:%d: %s", file, line, what);
	__builtin_trap();
}
#endif
