/*
 * callsites - calls on tracked files from known functions, for the call-site
 * statistics (FOLIO_CALLERS).  Built with -rdynamic so that folio can name
 * its functions.
 *
 *	callsites DIR
 *
 * journal_append_record() issues 10000 100-byte pwrites, read_index() 3000
 * 16-byte preads, log_lines() 5000 fprintf()s (about 6 write()s from inside
 * stdio), all to files named *.dat in DIR.  Prints "ok".
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static void fail(const char *what)
{
	perror(what);
	exit(1);
}

__attribute__((noinline)) void journal_append_record(int fd, int i)
{
	char record[100] = "record";

	if (pwrite(fd, record, sizeof(record), (off_t)i * sizeof(record)) != sizeof(record))
		fail("pwrite");
}

__attribute__((noinline)) void read_index(int fd, int i)
{
	char entry[16];

	if (pread(fd, entry, sizeof(entry), (off_t)(i % 50) * 100) != sizeof(entry))
		fail("pread");
}

__attribute__((noinline)) void log_lines(FILE *log, int n)
{
	for (int i = 0; i < n; i++)
		if (fprintf(log, "line %d\n", i) < 0)
			fail("fprintf");
}

int main(int argc, char **argv)
{
	char path[PATH_MAX];
	FILE *log;
	int fd;

	if (argc != 2)
		fail("usage: callsites DIR");
	snprintf(path, sizeof(path), "%s/journal.dat", argv[1]);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	snprintf(path, sizeof(path), "%s/log.dat", argv[1]);
	log = fopen(path, "w");
	if (fd < 0 || !log)
		fail("open");
	for (int i = 0; i < 10000; i++)
		journal_append_record(fd, i);
	for (int i = 0; i < 3000; i++)
		read_index(fd, i);
	log_lines(log, 5000);
	if (fsync(fd) || close(fd) || fclose(log))
		fail("close");
	puts("ok");
	return 0;
}
