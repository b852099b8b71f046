/*
 * bigtls - a program with TLS_KB KiB of static TLS (built as bigtls-N for a
 * few N around 248): glibc carves every thread's static TLS out of the
 * thread's stack, folio's flusher's too.  Writes a tracked file in DIR and
 * waits for the flusher to write it back (FOLIO_FLUSH_INTERVAL short, and
 * FOLIO_LOG=debug so that it logs too); prints "ok".
 *
 *	bigtls-N DIR
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

__thread char big[TLS_KB * 1024];

int main(int argc, char **argv)
{
	char buf[4096];
	int fd;

	if (argc != 2 || chdir(argv[1])) {
		fprintf(stderr, "usage: bigtls-N DIR\n");
		return 2;
	}
	fd = open("bigtls.dat", O_RDWR | O_CREAT | O_TRUNC, 0600);
	big[0] = 1;
	memset(buf, 'x', sizeof(buf));
	for (int i = 0; i < 256; i++)
		if (fd < 0 || write(fd, buf, sizeof(buf)) != sizeof(buf))
			return 1;
	usleep(300 * 1000);
	if (close(fd))
		return 1;
	puts("ok");
	return 0;
}
