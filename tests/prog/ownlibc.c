/*
 * ownlibc - a program with its own string and formatting functions under
 * libc's names, exported (built with -rdynamic), as dbench or any program
 * with a string library of its own: each one aborts when folio or a
 * library folio loaded (libunwind, liblzma, liburcu) calls it.  Natively
 * none is loaded; under folio, their calls must land in libc, whatever
 * FOLIO_LOG, FOLIO_STATS, FOLIO_CALLERS or a crash report make them do.
 * (Calls from elsewhere, such as a sanitizer's symbolizer when it prints a
 * report, are the test environment's, and get working functions.)
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
#include <dlfcn.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

extern char __executable_start[], etext[];

/* Is @path folio's, or a library folio loads? */
static int folios(const char *path)
{
	static const char *const names[] = { "libfolio", "libunwind", "liblzma", "liburcu" };
	const char *base = path;

	for (const char *p = path; *p; p++)
		if (*p == '/')
			base = p + 1;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		size_t k = 0;

		while (names[i][k] && base[k] == names[i][k])
			k++;
		if (!names[i][k])
			return 1;
	}
	return 0;
}

static void refuse(const char *name, void *caller)
{
	const char *msg = " called from outside the program: folio's call landed here\n";
	size_t n = 0, m = 0;
	Dl_info info;

	if ((char *)caller >= __executable_start && (char *)caller < etext)
		return;
	if (!dladdr(caller, &info) || !info.dli_fname || !folios(info.dli_fname))
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

/* The rest, which the program does not call: libc's, for whoever may. */
#define LIBC(name)	((__typeof__(name) *)dlsym(RTLD_NEXT, #name))

int vsnprintf(char *buf, size_t size, const char *fmt, va_list ap)
{
	REFUSE_OUTSIDERS(vsnprintf);
	return LIBC(vsnprintf)(buf, size, fmt, ap);
}

int snprintf(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;
	int n;

	REFUSE_OUTSIDERS(snprintf);
	va_start(ap, fmt);
	n = LIBC(vsnprintf)(buf, size, fmt, ap);
	va_end(ap);
	return n;
}

void qsort(void *base, size_t n, size_t size, int (*cmp)(const void *, const void *))
{
	REFUSE_OUTSIDERS(qsort);
	LIBC(qsort)(base, n, size, cmp);
}

char *getenv(const char *name)
{
	REFUSE_OUTSIDERS(getenv);
	return LIBC(getenv)(name);
}

char *strerror(int err)
{
	REFUSE_OUTSIDERS(strerror);
	return LIBC(strerror)(err);
}

int clock_gettime(clockid_t clock, struct timespec *ts)
{
	REFUSE_OUTSIDERS(clock_gettime);
	return LIBC(clock_gettime)(clock, ts);
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
