/*
 * untracked - the cost folio adds to a call on an fd it does not track.
 *
 *	untracked FILE [CALLS]
 *
 * Times CALLS (default 5M) lseek(fd, 0, SEEK_CUR) and 100-byte pread calls
 * on FILE and prints ns per call.  Run it natively and under folio with FILE
 * not matched by FOLIO_FILES (`make bench-untracked` alternates the two);
 * the difference is the wrapper: one bounds check, one load and a tail call.
 *
 * Under folio it also pairs the two in one process: blocks of 1000 lseek
 * calls through folio's wrapper alternate with blocks through libc's own
 * lseek (found in libc.so.6 directly), so machine noise hits both alike.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static void paired(int fd, long calls)
{
	void *libc = dlopen("libc.so.6", RTLD_NOLOAD | RTLD_LAZY);
	off_t (*libc_lseek)(int, off_t, int) = libc ? dlsym(libc, "lseek") : NULL;
	double wrapped = 0, direct = 0, t0, t1, t2;
	long sum = 0;

	if (!libc_lseek || libc_lseek == lseek)
		return;		/* not under folio */
	for (long done = 0; done < calls; done += 1000) {
		t0 = now_ns();
		for (int i = 0; i < 1000; i++)
			sum += lseek(fd, 0, SEEK_CUR);
		t1 = now_ns();
		for (int i = 0; i < 1000; i++)
			sum += libc_lseek(fd, 0, SEEK_CUR);
		t2 = now_ns();
		wrapped += t1 - t0;
		direct += t2 - t1;
	}
	printf("paired lseek: folio %.2f ns  libc %.2f ns  wrapper %.2f ns  [%ld]\n",
	       wrapped / calls, direct / calls, (wrapped - direct) / calls, sum & 1);
}

int main(int argc, char **argv)
{
	long calls = argc > 2 ? atol(argv[2]) : 5000000;
	int fd = argc > 1 ? open(argv[1], O_RDONLY) : -1;
	char buf[100];
	double t0, seek_ns, pread_ns;
	long sum = 0;

	if (fd < 0 || calls <= 0) {
		fprintf(stderr, "usage: untracked FILE [CALLS]\n");
		return 2;
	}
	t0 = now_ns();
	for (long i = 0; i < calls; i++)
		sum += lseek(fd, 0, SEEK_CUR);
	seek_ns = (now_ns() - t0) / calls;
	t0 = now_ns();
	for (long i = 0; i < calls; i++)
		sum += pread(fd, buf, sizeof(buf), (i * 4096) & 0xfffff);
	pread_ns = (now_ns() - t0) / calls;
	printf("lseek %.1f ns  pread100 %.1f ns  [%ld]\n", seek_ns, pread_ns, sum & 1);
	paired(fd, calls);
	return 0;
}
