/*
 * stats.c - see stats.h.  The report is formatted into a stack buffer and
 * written with real_write(): no stdio, whose streams the program may have
 * closed or be using.
 */
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>

#include "callers.h"
#include "config.h"
#include "page.h"
#include "real.h"
#include "stats.h"

/* Files the report names one by one; the rest are summed as one. */
#define RECORDS_MAX	4096
#define RECORD_BUCKETS	256
/* Files the stderr summary lists (the JSON has them all). */
#define SUMMARY_FILES	20

__thread unsigned int stat_slot __attribute__((tls_model("initial-exec")));
/* This thread asked for a slot already (and has one, or shares line 0). */
static __thread bool stat_slot_asked __attribute__((tls_model("initial-exec")));
static unsigned long slots_used = 1;	/* bit n: line n has a thread; 0 is everyone's */
static pthread_key_t slot_key;
static bool slot_key_ok;

/* A closed file's counters, by name. */
struct record {
	char *name;
	uint64_t c[STAT_NR];
	struct record *next;	/* its bucket */
};

/*
 * Taken by open() and close() of tracked files, which a signal handler may
 * call: held with every signal blocked, so that a handler never waits for
 * its own thread.
 */
static pthread_mutex_t stats_lock = PTHREAD_MUTEX_INITIALIZER;
static struct file_stats *open_files;		/* stats_lock */
static struct record *records[RECORD_BUCKETS];	/* stats_lock */
static unsigned int nr_records;
static struct record other_files = { .name = "(other files)" };
static uint64_t closed_total[STAT_NR];		/* stats_lock */
static unsigned long dirty_peak;
static unsigned long files_seen;		/* stats_file_new() calls */

static uint64_t start_ns;
/* Where the report goes when FOLIO_STATS=1: a descriptor of the stderr the
 * program started with, and that file's identity, to know it still is. */
static int report_fd = -1;
static struct stat report_st;

static void stats_lock_take(sigset_t *old)
{
	sigset_t all;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, old);
	pthread_mutex_lock(&stats_lock);
}

static void stats_lock_drop(const sigset_t *old)
{
	pthread_mutex_unlock(&stats_lock);
	pthread_sigmask(SIG_SETMASK, old, NULL);
}

uint64_t stats_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + ts.tv_nsec;
}

/* ---- Thread slots ---- */

static void slot_release(void *arg)
{
	unsigned long bit = 1ul << (uintptr_t)arg;

	/* Calls this thread makes from later destructors share line 0. */
	stat_slot = 0;
	__atomic_and_fetch(&slots_used, ~bit, __ATOMIC_RELEASE);
}

/* Give this thread a line of its own if one is free. */
static void slot_assign(void)
{
	unsigned long used = __atomic_load_n(&slots_used, __ATOMIC_RELAXED);

	stat_slot_asked = true;
	if (!slot_key_ok)
		return;
	while (~used & ((1ul << STAT_SLOTS) - 1)) {
		unsigned int slot = __builtin_ctzl(~used);

		if (__atomic_compare_exchange_n(&slots_used, &used, used | 1ul << slot, false,
						__ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) {
			/* The destructor runs only for a non-NULL value: slot > 0. */
			if (pthread_setspecific(slot_key, (void *)(uintptr_t)slot)) {
				slot_release((void *)(uintptr_t)slot);
				return;
			}
			stat_slot = slot;
			return;
		}
	}
}

void stat_add_shared(struct file_stats *st, enum stat_hot c, uint64_t v)
{
	if (!stat_slot_asked) {
		slot_assign();
		if (stat_slot) {
			stat_add(st, c, v);
			return;
		}
	}
	__atomic_add_fetch(&st->line[0].c[c], v, __ATOMIC_RELAXED);
}

/* ---- Counters ---- */

void stats_dirty(struct file_stats *st, unsigned long pages, unsigned long total)
{
	uint64_t *peak = &st->cold[STAT_DIRTY_PEAK - STAT_HOT_NR];

	if (pages > __atomic_load_n(peak, __ATOMIC_RELAXED))
		__atomic_store_n(peak, pages, __ATOMIC_RELAXED);
	if (total > __atomic_load_n(&dirty_peak, __ATOMIC_RELAXED))
		__atomic_store_n(&dirty_peak, total, __ATOMIC_RELAXED);
}

unsigned long stats_dirty_peak(void)
{
	return __atomic_load_n(&dirty_peak, __ATOMIC_RELAXED);
}

/* Add counters @from into @to: sums, but the dirty peak is a maximum. */
static void add_counts(uint64_t *to, const uint64_t *from)
{
	for (int c = 0; c < STAT_NR; c++)
		to[c] = c == STAT_DIRTY_PEAK ? (to[c] > from[c] ? to[c] : from[c]) : to[c] + from[c];
}

static void file_counts(const struct file_stats *st, uint64_t *out)
{
	memset(out, 0, STAT_NR * sizeof(*out));
	for (int slot = 0; slot < STAT_SLOTS; slot++)
		for (int c = 0; c < STAT_HOT_NR; c++)
			out[c] += __atomic_load_n(&st->line[slot].c[c], __ATOMIC_RELAXED);
	for (int c = STAT_HOT_NR; c < STAT_NR; c++)
		out[c] = __atomic_load_n(&st->cold[c - STAT_HOT_NR], __ATOMIC_RELAXED);
}

void stats_sum(const struct file_stats *st, uint64_t *out)
{
	uint64_t c[STAT_NR];
	sigset_t old_mask;

	if (st) {
		file_counts(st, out);
		return;
	}
	stats_lock_take(&old_mask);
	memcpy(out, closed_total, sizeof(closed_total));
	for (st = open_files; st; st = st->next) {
		file_counts(st, c);
		add_counts(out, c);
	}
	out[STAT_DIRTY_PEAK] = stats_dirty_peak();
	stats_lock_drop(&old_mask);
}

struct file_stats *stats_file_new(const char *name)
{
	struct file_stats *st = aligned_alloc(_Alignof(struct file_stats), sizeof(*st));
	sigset_t old_mask;

	if (!st)
		return NULL;
	memset(st, 0, sizeof(*st));
	if (!(st->name = strdup(name))) {
		free(st);
		return NULL;
	}
	stats_lock_take(&old_mask);
	files_seen++;
	st->next = open_files;
	if (open_files)
		open_files->prev = st;
	open_files = st;
	stats_lock_drop(&old_mask);
	return st;
}

static unsigned int name_hash(const char *name)
{
	unsigned int h = 5381;

	while (*name)
		h = h * 33 + (unsigned char)*name++;
	return h % RECORD_BUCKETS;
}

/* The record of @name, made if need be.  Under stats_lock. */
static struct record *record_of(const char *name)
{
	struct record **head = &records[name_hash(name)], *r;

	for (r = *head; r; r = r->next)
		if (!strcmp(r->name, name))
			return r;
	if (nr_records >= RECORDS_MAX || !(r = calloc(1, sizeof(*r))))
		return &other_files;
	if (!(r->name = strdup(name))) {
		free(r);
		return &other_files;
	}
	r->next = *head;
	*head = r;
	nr_records++;
	return r;
}

void stats_file_retire(struct file_stats *st)
{
	uint64_t c[STAT_NR];
	sigset_t old_mask;

	file_counts(st, c);
	stats_lock_take(&old_mask);
	if (st->prev)
		st->prev->next = st->next;
	else
		open_files = st->next;
	if (st->next)
		st->next->prev = st->prev;
	st->next = st->prev = NULL;
	add_counts(closed_total, c);
	/* Only a report needs them by name. */
	if (folio_config.stats != STATS_OFF)
		add_counts(record_of(st->name)->c, c);
	stats_lock_drop(&old_mask);
}

void stats_file_free(struct file_stats *st)
{
	if (!st)
		return;
	free(st->name);
	free(st);
}

/* ---- Set-up ---- */

void stats_init(void)
{
	start_ns = stats_now_ns();
	slot_key_ok = pthread_key_create(&slot_key, slot_release) == 0;
}

void stats_keep_stderr(int (*adopt)(int fd))
{
	if (folio_config.stats != STATS_STDERR || report_fd >= 0)
		return;
	report_fd = real_fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, NULL);
	if (report_fd >= 0 && real_fstat(report_fd, &report_st) < 0) {
		real_close(report_fd);
		report_fd = -1;
	}
	if (report_fd >= 0)
		report_fd = adopt(report_fd);
}

void stats_after_fork_child(void)
{
	/* The parent's counts are the parent's to report; the child forgets
	 * the parent's files (fdtable_after_fork_child()) and its records
	 * (copies, not freed). */
	pthread_mutex_init(&stats_lock, NULL);
	open_files = NULL;
	memset(records, 0, sizeof(records));
	nr_records = 0;
	memset(other_files.c, 0, sizeof(other_files.c));
	memset(closed_total, 0, sizeof(closed_total));
	dirty_peak = 0;
	files_seen = 0;
	slots_used = 1ul | (stat_slot ? 1ul << stat_slot : 0);
	start_ns = stats_now_ns();
}

/* ---- The report ---- */

struct out {
	int fd;
	size_t len;
	bool failed;
	char buf[4096];
};

static void out_flush(struct out *o)
{
	if (!o->failed && !write_all(o->fd, o->buf, o->len))
		o->failed = true;
	o->len = 0;
}

static __attribute__((format(printf, 2, 3))) void out_printf(struct out *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(o->buf + o->len, sizeof(o->buf) - o->len, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(o->buf) - o->len) {
		out_flush(o);
		va_start(ap, fmt);
		n = vsnprintf(o->buf, sizeof(o->buf), fmt, ap);
		va_end(ap);
		if (n < 0)
			return;
		o->len = (size_t)n < sizeof(o->buf) ? (size_t)n : sizeof(o->buf) - 1;
		return;
	}
	o->len += n;
}

/* @n bytes the way people read them: "512 B", "1.5 MiB". */
static const char *human(char *buf, size_t len, uint64_t n)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	double v = n;
	unsigned int u = 0;

	while (v >= 1024 && u < 4) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, len, "%llu B", (unsigned long long)n);
	else
		snprintf(buf, len, "%.1f %s", v, units[u]);
	return buf;
}

/* @name for a line of the summary: control characters as '?'. */
static const char *printable(const char *name, char *buf, size_t size)
{
	size_t i;

	for (i = 0; name[i] && i < size - 1; i++)
		buf[i] = (unsigned char)name[i] < 0x20 || name[i] == 0x7f ? '?' : name[i];
	buf[i] = '\0';
	return buf;
}

static void summary_line(struct out *o, const char *name, const uint64_t *c)
{
	char rb[32], wb[32], db[32], bb[32], ab[32], shown[PATH_MAX];
	uint64_t hits = read_hits(c);

	out_printf(o, "folio:   %s: %llu read%s (%.1f%% hits, %s), %llu write%s (%s)",
		   printable(name, shown, sizeof(shown)), (unsigned long long)c[STAT_READS],
		   c[STAT_READS] == 1 ? "" : "s",
		   c[STAT_READS] ? 100.0 * hits / c[STAT_READS] : 0.0,
		   human(rb, sizeof(rb), c[STAT_READ_BYTES]), (unsigned long long)c[STAT_WRITES],
		   c[STAT_WRITES] == 1 ? "" : "s", human(wb, sizeof(wb), c[STAT_WRITE_BYTES]));
	if (c[STAT_FILL_PAGES])
		out_printf(o, "; %llu page%s filled, %llu read ahead",
			   (unsigned long long)c[STAT_FILL_PAGES], c[STAT_FILL_PAGES] == 1 ? "" : "s",
			   (unsigned long long)c[STAT_READAHEAD_PAGES]);
	if (c[STAT_EVICTIONS])
		out_printf(o, "; %llu evicted", (unsigned long long)c[STAT_EVICTIONS]);
	if (c[STAT_WRITES])
		out_printf(o, "; write lock %llu shared, %llu retaken, %llu exclusive, %.3f ms waited",
			   (unsigned long long)c[STAT_LOCK_SHARED],
			   (unsigned long long)c[STAT_LOCK_RETAKEN],
			   (unsigned long long)c[STAT_LOCK_EXCLUSIVE], c[STAT_LOCK_WAIT_NS] / 1e6);
	if (c[STAT_DIRTY_PEAK] || c[STAT_WB_CALLS])
		out_printf(o, "; dirty peak %s; write-back %llu call%s, %s, %s a call, %llu error%s",
			   human(db, sizeof(db), c[STAT_DIRTY_PEAK] << FOLIO_PAGE_SHIFT),
			   (unsigned long long)c[STAT_WB_CALLS], c[STAT_WB_CALLS] == 1 ? "" : "s",
			   human(bb, sizeof(bb), c[STAT_WB_BYTES]),
			   human(ab, sizeof(ab), c[STAT_WB_CALLS] ? c[STAT_WB_BYTES] / c[STAT_WB_CALLS] : 0),
			   (unsigned long long)c[STAT_WB_ERRORS], c[STAT_WB_ERRORS] == 1 ? "" : "s");
	if (c[STAT_FSYNCS])
		out_printf(o, "; %llu fsync%s, %.3f ms each", (unsigned long long)c[STAT_FSYNCS],
			   c[STAT_FSYNCS] == 1 ? "" : "s", c[STAT_FSYNC_NS] / 1e6 / c[STAT_FSYNCS]);
	out_printf(o, "\n");
}

static const char *const json_names[STAT_NR] = {
	[STAT_READS] = "reads", [STAT_READ_BYTES] = "read_bytes",
	[STAT_READ_MISSES] = "read_misses", [STAT_WRITES] = "writes",
	[STAT_WRITE_BYTES] = "write_bytes", [STAT_LOCK_SHARED] = "lock_shared",
	[STAT_LOCK_RETAKEN] = "lock_retaken", [STAT_LOCK_EXCLUSIVE] = "lock_exclusive",
	[STAT_LOCK_WAIT_NS] = "lock_wait_ns", [STAT_FILL_PAGES] = "fill_pages",
	[STAT_READAHEAD_PAGES] = "readahead_pages", [STAT_EVICTIONS] = "evictions",
	[STAT_WB_CALLS] = "writeback_calls", [STAT_WB_BYTES] = "writeback_bytes",
	[STAT_WB_ERRORS] = "writeback_errors", [STAT_FSYNCS] = "fsyncs",
	[STAT_FSYNC_NS] = "fsync_ns", [STAT_DIRTY_PEAK] = "dirty_peak_bytes",
};

/* The length of the well-formed UTF-8 sequence at @s, 0 if there is none. */
static size_t utf8_length(const unsigned char *s)
{
	size_t len = s[0] >= 0xf0 && s[0] <= 0xf4 ? 4 : s[0] >= 0xe0 ? 3 : s[0] >= 0xc2 ? 2 : 0;

	for (size_t i = 1; i < len; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	return len;
}

/*
 * @s as a JSON string.  A path need not be UTF-8: a byte that does not
 * start a well-formed sequence is written as \u00XX (the code point of the
 * same number), so the output always parses.
 */
static void json_string(struct out *o, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	out_printf(o, "\"");
	while (*p) {
		size_t len = *p >= 0x80 ? utf8_length(p) : 1;

		if (*p == '"' || *p == '\\')
			out_printf(o, "\\%c", *p);
		else if (*p < 0x20 || *p == 0x7f || !len)
			out_printf(o, "\\u%04x", *p);
		else
			out_printf(o, "%.*s", (int)len, (const char *)p);
		p += len ? len : 1;
	}
	out_printf(o, "\"");
}

static void json_counts(struct out *o, const uint64_t *c)
{
	uint64_t hits = read_hits(c);

	out_printf(o, "{\"read_hits\": %llu", (unsigned long long)hits);
	for (int i = 0; i < STAT_NR; i++)
		out_printf(o, ", \"%s\": %llu", json_names[i],
			   (unsigned long long)(i == STAT_DIRTY_PEAK ? c[i] << FOLIO_PAGE_SHIFT : c[i]));
	out_printf(o, ", \"writeback_avg_bytes\": %llu, \"fsync_avg_ns\": %llu}",
		   (unsigned long long)(c[STAT_WB_CALLS] ? c[STAT_WB_BYTES] / c[STAT_WB_CALLS] : 0),
		   (unsigned long long)(c[STAT_FSYNCS] ? c[STAT_FSYNC_NS] / c[STAT_FSYNCS] : 0));
}

static int by_calls(const void *a, const void *b)
{
	const struct record *x = *(struct record *const *)a, *y = *(struct record *const *)b;
	uint64_t nx = x->c[STAT_READS] + x->c[STAT_WRITES], ny = y->c[STAT_READS] + y->c[STAT_WRITES];

	return nx < ny ? 1 : nx > ny ? -1 : strcmp(x->name, y->name);
}

/*
 * Every file's record, the open ones folded in, busiest first, into a
 * malloc'ed array (NULL if none or no memory).  At exit, under stats_lock.
 */
static struct record **collect(size_t *nr)
{
	struct record **all;
	uint64_t c[STAT_NR];
	size_t n = 0;

	for (struct file_stats *st = open_files; st; st = st->next) {
		file_counts(st, c);
		add_counts(record_of(st->name)->c, c);
	}
	*nr = 0;
	all = malloc((nr_records + 1) * sizeof(*all));
	if (!all)
		return NULL;
	for (size_t b = 0; b < RECORD_BUCKETS; b++)
		for (struct record *r = records[b]; r; r = r->next)
			all[n++] = r;
	if (other_files.c[STAT_READS] + other_files.c[STAT_WRITES] + other_files.c[STAT_WB_CALLS])
		all[n++] = &other_files;
	qsort(all, n, sizeof(*all), by_calls);
	*nr = n;
	return all;
}

/* FOLIO_CALLERS: the busiest call sites, in the summary or the JSON. */
static void report_callers(struct out *o, bool json)
{
	struct call_site *sites;
	size_t n;

	if (!callers_on || !(sites = calloc(folio_config.callers, sizeof(*sites))))
		return;
	n = callers_top(sites, folio_config.callers);
	if (json)
		out_printf(o, ",\n \"callers_sampled_1_in\": %d, \"callers\": [", CALLERS_SAMPLE);
	else if (n)
		out_printf(o, "folio:   call sites (one call in %d sampled, counts estimated):\n",
			   CALLERS_SAMPLE);
	for (size_t i = 0; i < n; i++) {
		const struct call_site *s = &sites[i];
		const char *kind = callers_kind_name(s->kind);

		if (json) {
			out_printf(o, "%s\n  {\"site\": ", i ? "," : "");
			json_string(o, s->name);
			out_printf(o, ", \"call\": \"%s\", \"calls\": %llu, \"bytes\": %llu}", kind,
				   (unsigned long long)s->calls, (unsigned long long)s->bytes);
		} else {
			out_printf(o, "folio:     %s: %llu %s", s->name,
				   (unsigned long long)s->calls, kind);
			if (s->bytes)
				out_printf(o, ", %llu bytes avg",
					   (unsigned long long)(s->bytes / s->calls));
			out_printf(o, "\n");
		}
	}
	if (json)
		out_printf(o, "]");
	free(sites);
}

/* The report's file: FOLIO_STATS's path with %p the process id. */
static int open_report_file(void)
{
	char path[PATH_MAX];
	int fd;

	if (log_expand_path(folio_config.stats_path, path, sizeof(path)) < 0) {
		log_error("FOLIO_STATS: the path is too long: no statistics written");
		return -1;
	}
	/* The path the user gave, but never through a symbolic link. */
	fd = real_open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		log_error("FOLIO_STATS: cannot write %s: %s", path, strerror(errno));
	return fd;
}

/* Where FOLIO_STATS=1 writes: the stderr folio kept, or fd 2 if that is
 * the same file; -1 if neither is (the program reused the number). */
static int summary_fd(void)
{
	struct stat st;

	if (report_fd >= 0 && real_fstat(report_fd, &st) == 0 && st.st_dev == report_st.st_dev &&
	    st.st_ino == report_st.st_ino)
		return report_fd;
	if (real_fstat(STDERR_FILENO, &st) == 0 && st.st_dev == report_st.st_dev &&
	    st.st_ino == report_st.st_ino)
		return STDERR_FILENO;
	return -1;
}

void stats_report(void)
{
	struct out o = { .fd = -1 };
	uint64_t total[STAT_NR];
	struct record **all;
	double secs = (stats_now_ns() - start_ns) / 1e9;
	int saved_errno = errno;
	sigset_t old_mask;
	size_t nr;

	if (folio_config.stats == STATS_OFF)
		return;
	stats_sum(NULL, total);
	/* Processes that never opened a file folio tracks (the shells and
	 * helpers around a program) stay silent, as they would natively. */
	if (!__atomic_load_n(&files_seen, __ATOMIC_RELAXED))
		goto out;
	o.fd = folio_config.stats == STATS_FILE ? open_report_file() : summary_fd();
	if (o.fd < 0)
		goto out;
	stats_lock_take(&old_mask);
	all = collect(&nr);
	if (folio_config.stats == STATS_STDERR) {
		out_printf(&o, "folio: stats of pid %d after %.2f s: %zu file%s\n", (int)getpid(),
			   secs, nr, nr == 1 ? "" : "s");
		summary_line(&o, "total", total);
		for (size_t i = 0; i < nr && i < SUMMARY_FILES; i++)
			summary_line(&o, all[i]->name, all[i]->c);
		if (nr > SUMMARY_FILES)
			out_printf(&o, "folio:   and %zu more files (FOLIO_STATS=PATH lists all)\n",
				   nr - SUMMARY_FILES);
	} else {
		out_printf(&o, "{\"folio\": \"%s\", \"pid\": %d, \"seconds\": %.3f, "
			   "\"cache_size\": %llu, \"dirty_limit\": %llu,\n \"total\": ",
			   FOLIO_VERSION, (int)getpid(), secs,
			   (unsigned long long)folio_config.cache_size,
			   (unsigned long long)folio_config.dirty_limit);
		json_counts(&o, total);
		out_printf(&o, ",\n \"files\": [");
		for (size_t i = 0; i < nr; i++) {
			out_printf(&o, "%s\n  {\"name\": ", i ? "," : "");
			json_string(&o, all[i]->name);
			out_printf(&o, ", \"counts\": ");
			json_counts(&o, all[i]->c);
			out_printf(&o, "}");
		}
		out_printf(&o, "]");
	}
	stats_lock_drop(&old_mask);
	free(all);
	/* Not under stats_lock: naming the sites opens files, which folio
	 * may track. */
	report_callers(&o, folio_config.stats == STATS_FILE);
	if (folio_config.stats == STATS_FILE)
		out_printf(&o, "}\n");
	out_flush(&o);
	if (folio_config.stats == STATS_FILE)
		real_close(o.fd);
out:
	errno = saved_errno;
}
