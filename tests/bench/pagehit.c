/*
 * pagehit - the cost of a cache hit in the page store alone: read-side
 * section, index lookup (shim/ptree.c) and an untorn copy, for 100-byte and 4 KiB reads at
 * random offsets of a 64 MiB "file" held in the store.  Run by
 * `make bench-pagehit`; built like folio (initial-exec TLS).
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "page.h"
#include "ptree.h"

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

/* pread(2) and mmap+memcpy of a hot file of @pages pages, random offsets. */
static void kernel_reference(uint64_t pages)
{
	char name[] = "/tmp/folio-pagehit.XXXXXX";
	static unsigned char buf[FOLIO_PAGE_BYTES];
	unsigned long long x = 88172645463325252ull, sum = 0;
	size_t size = pages * FOLIO_PAGE_BYTES;
	int fd = mkstemp(name);
	unsigned char *map;

	unlink(name);
	for (size_t off = 0; off < size; off += sizeof(buf))
		if (fd < 0 || pwrite(fd, buf, sizeof(buf), off) != sizeof(buf))
			return;
	map = mmap(NULL, size, PROT_READ, MAP_SHARED | MAP_POPULATE, fd, 0);
	for (int kind = 0; kind < 4; kind++) {
		size_t len = kind % 2 ? FOLIO_PAGE_BYTES : 100;
		long n = kind < 2 ? 5000000 : 500000;
		double t0 = now_ns();

		for (long i = 0; i < n; i++) {
			size_t off;

			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			off = (x % pages) * FOLIO_PAGE_BYTES + (len == 100 ? (x >> 20) % 3996 : 0);
			if (kind < 2)
				memcpy(buf, map + off, len);
			else
				sum += pread(fd, buf, len, off);
			sum += buf[0];
		}
		printf("%llu pages, %s, %4zu bytes: %.1f ns  [%llu]\n", (unsigned long long)pages,
		       kind < 2 ? "mmap+memcpy" : "pread(2)", len, (now_ns() - t0) / n, sum & 1);
	}
	munmap(map, size);
	close(fd);
}

int main(int argc, char **argv)
{
	enum { N = 5000000 };
	const uint64_t FILE_PAGES = argc > 1 ? strtoull(argv[1], NULL, 10) : 16384;
	static struct ptree tree;
	static unsigned char buf[FOLIO_PAGE_BYTES];
	unsigned long long x = 88172645463325252ull, sum = 0;

	if (page_store_init((size_t)FILE_PAGES * FOLIO_PAGE_BYTES))
		return 1;
	ptree_init(&tree);
	for (uint64_t i = 0; i < FILE_PAGES; i++) {
		struct page *page = page_alloc();

		page->data[0] = (unsigned char)i;
		urcu_bp_read_lock();
		page_insert(page, ptree_slot(&tree, i), 1, i, 0, NULL);
		urcu_bp_read_unlock();
	}
	for (size_t len = 100; len <= FOLIO_PAGE_BYTES; len = len == 100 ? FOLIO_PAGE_BYTES : len + 1) {
		double t0 = now_ns();

		for (long n = 0; n < N; n++) {
			struct page *page;

			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			urcu_bp_read_lock();
			page = ptree_lookup(&tree, x % FILE_PAGES);
			page_copy_out(page, len == 100 ? (x >> 20) % 3996 : 0, len, buf);
			urcu_bp_read_unlock();
			sum += buf[0];
		}
		printf("%llu pages, hit, %4zu bytes: %.1f ns  [%llu]\n", (unsigned long long)FILE_PAGES, len, (now_ns() - t0) / N, sum & 1);
	}
	kernel_reference(FILE_PAGES);
	return 0;
}
