/*
 * callers.c - see callers.h.
 */
#include <dlfcn.h>
#include <errno.h>
#include <link.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "callers.h"
#include "config.h"
#include "log.h"
#include "unwind.h"

/* Frames looked at for one sample: stdio adds several inside libc. */
#define SAMPLE_FRAMES	24
/* Call sites kept (kind and address); samples of any more are dropped. */
#define SITES_MAX	1024
/* Executable segments of folio, libc and a sanitizer's runtime. */
#define RANGES_MAX	8

bool callers_on;

struct site {
	void *ip;		/* NULL: free */
	enum call_kind kind;
	uint64_t calls, bytes;
};

static pthread_mutex_t sites_lock = PTHREAD_MUTEX_INITIALIZER;
static struct site sites[SITES_MAX];	/* open addressing; sites_lock */

/* Code that is not a call site: folio's own and libc's (stdio's insides). */
static struct range {
	uintptr_t start, end;
} ranges[RANGES_MAX];
static int nr_ranges;

/* Per thread and kind: calls since the last sample, and the countdown to
 * the next (0: the next call is sampled). */
static __thread struct {
	uint64_t calls, bytes;
	unsigned int countdown;
} pending[CALL_KINDS] __attribute__((tls_model("initial-exec")));

static const char *const kind_names[CALL_KINDS] = {
	[CALL_READ] = "read", [CALL_PREAD] = "pread", [CALL_READV] = "readv",
	[CALL_PREADV] = "preadv", [CALL_WRITE] = "write", [CALL_PWRITE] = "pwrite",
	[CALL_WRITEV] = "writev", [CALL_PWRITEV] = "pwritev", [CALL_FSYNC] = "fsync",
	[CALL_FDATASYNC] = "fdatasync",
};

const char *callers_kind_name(enum call_kind kind)
{
	return kind_names[kind];
}

struct object_base {
	uintptr_t base[2];	/* the load addresses of folio and libc */
};

/* A sanitizer's interceptors stand between the program and libc. */
static bool sanitizer_runtime(const char *path)
{
	const char *base = strrchr(path, '/');

	base = base ? base + 1 : path;
	return !strncmp(base, "libasan.so", 10) || !strncmp(base, "libubsan.so", 11) ||
	       !strncmp(base, "libtsan.so", 10);
}

static int note_ranges(struct dl_phdr_info *info, size_t size, void *arg)
{
	const struct object_base *objs = arg;

	(void)size;
	if (info->dlpi_addr != objs->base[0] && info->dlpi_addr != objs->base[1] &&
	    !(info->dlpi_name && sanitizer_runtime(info->dlpi_name)))
		return 0;
	for (int i = 0; i < info->dlpi_phnum && nr_ranges < RANGES_MAX; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];

		if (ph->p_type == PT_LOAD && (ph->p_flags & PF_X))
			ranges[nr_ranges++] = (struct range){
				info->dlpi_addr + ph->p_vaddr,
				info->dlpi_addr + ph->p_vaddr + ph->p_memsz,
			};
	}
	return 0;
}

/*
 * Unwind once now, before the program runs: libunwind sets itself up on its
 * first unwind, which costs 0.1 ms and opens the pipe it keeps (put out of
 * the program's way: see pipe2()).
 */
static void warm_up(void)
{
	void *ip;

	unwind_backtrace(&ip, 1, 0);
}

void callers_init(void)
{
	struct object_base objs = { { 0, 0 } };
	Dl_info folio, libc;

	if (!folio_config.callers || folio_config.stats == STATS_OFF)
		return;
	if (!dladdr((void *)callers_init, &folio) || !dladdr((void *)getpid, &libc)) {
		log_warn("FOLIO_CALLERS: cannot find folio's and libc's code: no call sites");
		return;
	}
	objs.base[0] = (uintptr_t)folio.dli_fbase;
	objs.base[1] = (uintptr_t)libc.dli_fbase;
	dl_iterate_phdr(note_ranges, &objs);
	if (!unwind_load()) {
		log_warn("FOLIO_CALLERS: libunwind cannot be loaded: no call sites");
		return;
	}
	warm_up();
	callers_on = true;
}

static bool in_ranges(void *ip)
{
	for (int i = 0; i < nr_ranges; i++)
		if ((uintptr_t)ip >= ranges[i].start && (uintptr_t)ip < ranges[i].end)
			return true;
	return false;
}

/* Add a sample to its site.  Under sites_lock. */
static void record(void *ip, enum call_kind kind, uint64_t calls, uint64_t bytes)
{
	size_t h = ((uintptr_t)ip * 0x9e3779b97f4a7c15ull + kind) >> 54;	/* 10 bits */

	for (size_t probe = 0; probe < SITES_MAX; probe++) {
		struct site *s = &sites[(h + probe) % SITES_MAX];

		if (!s->ip)
			*s = (struct site){ .ip = ip, .kind = kind };
		if (s->ip == ip && s->kind == kind) {
			s->calls += calls;
			s->bytes += bytes;
			return;
		}
	}
}

__attribute__((noinline)) void callers_sample(enum call_kind kind, ssize_t ret)
{
	void *ips[SAMPLE_FRAMES];
	void *site = NULL;
	int saved_errno = errno, n;

	pending[kind].calls++;
	if (ret > 0 && kind < CALL_FSYNC)
		pending[kind].bytes += ret;
	if (pending[kind].countdown) {
		pending[kind].countdown--;
		return;
	}
	n = unwind_backtrace(ips, SAMPLE_FRAMES, 0);
	for (int i = 0; i < n && !site; i++)
		if (!in_ranges(ips[i]))
			site = ips[i];
	/* A signal handler's call while this thread holds the lock: the
	 * sample waits for the next one. */
	if (site && pthread_mutex_trylock(&sites_lock) == 0) {
		record(site, kind, pending[kind].calls, pending[kind].bytes);
		pthread_mutex_unlock(&sites_lock);
		pending[kind].calls = pending[kind].bytes = 0;
	}
	pending[kind].countdown = CALLERS_SAMPLE - 1;
	errno = saved_errno;
}

static int by_calls(const void *a, const void *b)
{
	const struct site *x = a, *y = b;

	return x->calls < y->calls ? 1 : x->calls > y->calls ? -1 : 0;
}

size_t callers_top(struct call_site *out, size_t max)
{
	struct site *all = malloc(sizeof(sites));
	size_t n = 0;

	if (!all)
		return 0;
	pthread_mutex_lock(&sites_lock);
	for (size_t i = 0; i < SITES_MAX; i++)
		if (sites[i].ip)
			all[n++] = sites[i];
	pthread_mutex_unlock(&sites_lock);
	qsort(all, n, sizeof(*all), by_calls);
	if (n > max)
		n = max;
	for (size_t i = 0; i < n; i++) {
		Dl_info info;
		size_t len;

		unwind_name(all[i].ip, out[i].name, sizeof(out[i].name));
		len = strlen(out[i].name);
		if (dladdr(all[i].ip, &info) && info.dli_fname && info.dli_fname[0]) {
			const char *base = strrchr(info.dli_fname, '/');

			snprintf(out[i].name + len, sizeof(out[i].name) - len, " (%s)",
				 base ? base + 1 : info.dli_fname);
		}
		out[i].kind = all[i].kind;
		out[i].calls = all[i].calls;
		out[i].bytes = all[i].bytes;
	}
	free(all);
	return n;
}

void callers_after_fork_child(void)
{
	pthread_mutex_init(&sites_lock, NULL);
	memset(sites, 0, sizeof(sites));
	memset(pending, 0, sizeof(pending));
}
