/*
 * ownlibc - a program with its own string and formatting functions under
 * libc's names, exported (built with -rdynamic), as dbench or any program
 * with a string library of its own: each one aborts when anybody outside
 * the executable calls it.  Natively nobody does (libc calls its own
 * internally); under folio, folio's calls must land in libc too, whatever
 * FOLIO_LOG, FOLIO_STATS, FOLIO_CALLERS or a crash report make it do.
 *
 *	ownlibc DIR		write, read back and fsync DIR/own.dat with the
 *				system calls and with stdio; print "ok" and a
 *				checksum of what it read
 *	ownlibc DIR wait FILE	the same, then keep own.dat dirty, create FILE
 *				and wait (folio's test build, FOLIO_TEST_CRASH=FILE,
 *				faults then); after 10 s "no crash", exit 1
 *
 * Built with -fno-builtin and without loop-to-call conversion, so that its
 * own functions do not call themselves.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

extern char __executable_start[], etext[];

static void refuse(const char *name, void *caller)
{
	const char *msg = " called from outside the program: folio's call landed here\n";
	size_t n = 0, m = 0;

	if ((char *)caller >= __executable_start && (char *)caller < etext)
		return;
	while (name[n])
		n++;
	while (msg[m])
		m++;
	if (write(2, "ownlibc: ", 9) < 0 || write(2, name, n) < 0 || write(2, msg, m) < 0)
		_exit(99);
	abort();
}

#define REFUSE_OUTSIDERS(name)	refuse(#name, __builtin_return_address(0))

size_t strlen(const char *s)
{
	size_t n = 0;

	REFUSE_OUTSIDERS(strlen);
	while (s[n])
		n++;
	return n;
}

void *memcpy(void *dst, const void *src, size_t n)
{
	volatile char *d = dst;
	const char *s = src;

	REFUSE_OUTSIDERS(memcpy);
	while (n--)
		*d++ = *s++;
	return dst;
}

void *memmove(void *dst, const void *src, size_t n)
{
	volatile char *d = dst;
	const char *s = src;

	REFUSE_OUTSIDERS(memmove);
	if (d < s)
		while (n--)
			*d++ = *s++;
	else
		while (n--)
			d[n] = s[n];
	return dst;
}

void *memset(void *dst, int c, size_t n)
{
	volatile char *d = dst;

	REFUSE_OUTSIDERS(memset);
	while (n--)
		*d++ = (char)c;
	return dst;
}

int strcmp(const char *a, const char *b)
{
	REFUSE_OUTSIDERS(strcmp);
	while (*a && *a == *b)
		a++, b++;
	return (unsigned char)*a - (unsigned char)*b;
}

int strncmp(const char *a, const char *b, size_t n)
{
	REFUSE_OUTSIDERS(strncmp);
	for (; n && *a && *a == *b; n--)
		a++, b++;
	return n ? (unsigned char)*a - (unsigned char)*b : 0;
}

char *strchr(const char *s, int c)
{
	REFUSE_OUTSIDERS(strchr);
	for (; *s; s++)
		if (*s == (char)c)
			return (char *)s;
	return c ? NULL : (char *)s;
}

char *strrchr(const char *s, int c)
{
	const char *last = NULL;

	REFUSE_OUTSIDERS(strrchr);
	do
		if (*s == (char)c)
			last = s;
	while (*s++);
	return (char *)last;
}

void *memchr(const void *p, int c, size_t n)
{
	const unsigned char *s = p;

	REFUSE_OUTSIDERS(memchr);
	for (; n--; s++)
		if (*s == (unsigned char)c)
			return (void *)s;
	return NULL;
}

/* The rest the program never calls: any call is somebody else's. */
int snprintf(char *buf, size_t size, const char *fmt, ...)
{
	REFUSE_OUTSIDERS(snprintf);
	(void)buf, (void)size, (void)fmt;
	return -1;
}

int vsnprintf(char *buf, size_t size, const char *fmt, va_list ap)
{
	REFUSE_OUTSIDERS(vsnprintf);
	(void)buf, (void)size, (void)fmt, (void)ap;
	return -1;
}

void qsort(void *base, size_t n, size_t size, int (*cmp)(const void *, const void *))
{
	REFUSE_OUTSIDERS(qsort);
	(void)base, (void)n, (void)size, (void)cmp;
}

char *getenv(const char *name)
{
	REFUSE_OUTSIDERS(getenv);
	(void)name;
	return NULL;
}

char *strerror(int err)
{
	REFUSE_OUTSIDERS(strerror);
	(void)err;
	return "";
}

int clock_gettime(clockid_t clock, struct timespec *ts)
{
	REFUSE_OUTSIDERS(clock_gettime);
	(void)clock;
	ts->tv_sec = ts->tv_nsec = 0;
	return 0;
}

static void fail(const char *what)
{
	perror(what);
	exit(1);
}

int main(int argc, char **argv)
{
	char buf[100], line[64];
	unsigned long sum = 0;
	FILE *f;
	int fd;

	if (argc != 2 && !(argc == 4 && argv[2][0] == 'w')) {
		fprintf(stderr, "usage: ownlibc DIR [wait FILE]\n");
		return 2;
	}
	if (chdir(argv[1]))
		fail(argv[1]);
	fd = open("own.dat", O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0)
		fail("open own.dat");
	for (int i = 0; i < 1000; i++) {
		for (int j = 0; j < 100; j++)
			buf[j] = (char)(i * 7 + j);
		if (write(fd, buf, sizeof(buf)) != sizeof(buf))
			fail("write");
	}
	for (off_t off = 0; off < 100000; off += 997) {
		if (pread(fd, buf, 1, off) != 1)
			fail("pread");
		sum = sum * 31 + (unsigned char)buf[0];
	}
	if (fsync(fd))
		fail("fsync");
	f = fopen("own-stdio.dat", "w+");
	if (!f)
		fail("fopen");
	for (int i = 0; i < 100; i++)
		fprintf(f, "line %d\n", i);
	rewind(f);
	while (fgets(line, sizeof(line), f))
		sum = sum * 31 + (unsigned char)line[5];
	if (fclose(f))
		fail("fclose");
	printf("ok %lu\n", sum);
	fflush(stdout);
	if (argc == 4) {
		if (pwrite(fd, buf, sizeof(buf), 0) != sizeof(buf))
			fail("pwrite");
		close(open(argv[3], O_CREAT | O_WRONLY, 0644));
		sleep(10);
		printf("no crash\n");
		return 1;
	}
	if (close(fd))
		fail("close");
	return 0;
}
