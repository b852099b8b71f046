/*
 * config.h - the FOLIO_* environment, read once, validated, then read-only.
 *
 * Owns folio_config.  config_load() runs in the constructor before any file
 * can be tracked; afterwards every layer reads folio_config without locking.
 * Calls pathmatch (pattern validation) and log.
 */
#ifndef FOLIO_CONFIG_H
#define FOLIO_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "log.h"

enum stats_mode { STATS_OFF, STATS_STDERR, STATS_FILE };

/* FOLIO_FLUSH_MODE: how write-back hands dirty pages to the kernel. */
enum flush_mode {
	FLUSH_AUTO,		/* FLUSH_SYNC_RANGE for a file written at its end,
				 * FLUSH_PWRITEV for one written in place */
	FLUSH_PWRITEV,		/* pwritev(): the kernel keeps a copy in its page cache */
	FLUSH_DONTCACHE,	/* pwritev2(RWF_DONTCACHE): the kernel drops its copy once
				 * written (plain pwritev() where refused) */
	FLUSH_SYNC_RANGE,	/* pwritev(), then the flusher starts the kernel's
				 * write-out with sync_file_range(SYNC_FILE_RANGE_WRITE) */
};

struct folio_config {
	/* Tracking is on: FOLIO_FILES gave patterns, every value was valid,
	 * FOLIO_DISABLE is off.  When false folio is pure pass-through. */
	bool enabled;
	/* FOLIO_FILES split at ':' (empty entries dropped). */
	const char **patterns;
	size_t npatterns;
	char *patterns_buf;		/* the storage the patterns point into */
	/* Some pattern contains '/', so opens need the absolute path. */
	bool match_full_path;

	uint64_t cache_size;		/* FOLIO_CACHE_SIZE, bytes */
	uint64_t dirty_limit;		/* FOLIO_DIRTY_LIMIT, bytes */
	uint64_t readahead;		/* FOLIO_READAHEAD, bytes, 0 = off */
	unsigned int flush_interval_ms;	/* FOLIO_FLUSH_INTERVAL */
	enum flush_mode flush_mode;	/* FOLIO_FLUSH_MODE */
	enum stats_mode stats;		/* FOLIO_STATS */
	const char *stats_path;		/* may contain %p: the process id */
	unsigned int callers;		/* FOLIO_CALLERS: call sites in the stats */
	const char *log_path;		/* FOLIO_LOG_FILE, or NULL: stderr */
	enum log_level log_level;	/* FOLIO_LOG */
};

#define FOLIO_PAGE_SIZE			4096u
#define FOLIO_DEFAULT_CACHE_SIZE	(256ull << 20)
#define FOLIO_MIN_CACHE_SIZE		(64ull << 10)
#define FOLIO_MAX_CACHE_SIZE		(1ull << 40)
#define FOLIO_DEFAULT_READAHEAD		(256ull << 10)
#define FOLIO_DEFAULT_FLUSH_MS		1000u
#define FOLIO_MAX_FLUSH_MS		86400000u
#define FOLIO_MAX_CALLERS		1000u

extern struct folio_config folio_config;

/*
 * Parse the environment given by @get (getenv, or a test's table) into
 * @cfg.  On a bad value, writes one line for the user into @err (naming the
 * variable, the value and what was expected), leaves @cfg->enabled false and
 * returns -1; otherwise returns 0.  Allocates the pattern list with malloc.
 */
int config_parse(struct folio_config *cfg, const char *(*get)(const char *name),
		 char *err, size_t errlen);

/* Release what config_parse() allocated. */
void config_free(struct folio_config *cfg);

/*
 * Parse a size such as "512M": decimal digits and an optional K, M, G or T
 * suffix (powers of 1024, either case).  Returns 0, or -1 if malformed or
 * past UINT64_MAX.
 */
int config_parse_size(const char *s, uint64_t *out);

/* Parse 1/0, yes/no, on/off, true/false (any case).  Returns 0 or -1. */
int config_parse_bool(const char *s, bool *out);

/* Read the real environment into folio_config; report problems on stderr. */
void config_load(void);

#endif
