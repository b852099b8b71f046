/*
 * config.c - see config.h.  Calls pathmatch and log only.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "pathmatch.h"

struct folio_config folio_config = {
	.log_level = LOG_WARN,
};

/* Every variable folio reads; anything else named FOLIO_* gets a warning. */
static const char *const known_vars[] = {
	"FOLIO_FILES", "FOLIO_CACHE_SIZE", "FOLIO_DIRTY_LIMIT", "FOLIO_FLUSH_INTERVAL",
	"FOLIO_FLUSH_MODE", "FOLIO_READAHEAD", "FOLIO_STATS", "FOLIO_CALLERS", "FOLIO_LOG", "FOLIO_LOG_FILE",
	"FOLIO_DISABLE", "FOLIO_RECOVERY_TIMEOUT",
#ifdef FOLIO_TEST_FAULTS
	"FOLIO_TEST_FAULTS", "FOLIO_TEST_CRASH", "FOLIO_TEST_DELAY",
#endif
};

static const char *const flush_mode_names[] = {
	[FLUSH_AUTO] = "auto",
	[FLUSH_PWRITEV] = "pwritev",
	[FLUSH_DONTCACHE] = "dontcache",
	[FLUSH_SYNC_RANGE] = "sync-range",
};

int config_parse_size(const char *s, uint64_t *out)
{
	uint64_t v = 0;
	unsigned int shift = 0;
	const char *p = s;

	if (*p < '0' || *p > '9')
		return -1;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (v > (UINT64_MAX - (*p - '0')) / 10)
			return -1;
		v = v * 10 + (*p - '0');
	}
	switch (*p) {
	case 'k': case 'K': shift = 10; p++; break;
	case 'm': case 'M': shift = 20; p++; break;
	case 'g': case 'G': shift = 30; p++; break;
	case 't': case 'T': shift = 40; p++; break;
	}
	if (*p != '\0')
		return -1;
	if (shift && v > (UINT64_MAX >> shift))
		return -1;
	*out = v << shift;
	return 0;
}

int config_parse_bool(const char *s, bool *out)
{
	static const char *const yes[] = { "1", "yes", "on", "true" };
	static const char *const no[] = { "0", "no", "off", "false" };

	for (size_t i = 0; i < ARRAY_SIZE(yes); i++) {
		if (!strcasecmp(s, yes[i])) {
			*out = true;
			return 0;
		}
		if (!strcasecmp(s, no[i])) {
			*out = false;
			return 0;
		}
	}
	return -1;
}

static int parse_log_level(const char *s, enum log_level *out)
{
	static const char *const names[] = {
		[LOG_ERROR] = "error", [LOG_WARN] = "warn",
		[LOG_INFO] = "info", [LOG_DEBUG] = "debug",
	};

	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		if (!strcasecmp(s, names[i])) {
			*out = i;
			return 0;
		}
	}
	return -1;
}

/* The message stays one line whatever the value holds: control characters as '?'. */
static void one_line(char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			*s = '?';
}

/*
 * The message for @name's bad @value in @err (one line, the variable first);
 * returns -1 for the caller to return.
 */
static __attribute__((format(printf, 5, 6))) int bad(char *err, size_t errlen, const char *name,
						      const char *value, const char *fmt, ...)
{
	int n = snprintf(err, errlen, "%s='%.200s': ", name, value);
	va_list ap;

	if (n >= 0 && (size_t)n < errlen) {
		va_start(ap, fmt);
		vsnprintf(err + n, errlen - n, fmt, ap);
		va_end(ap);
	}
	one_line(err);
	return -1;
}

static int parse_patterns(struct folio_config *cfg, const char *files, char *err, size_t errlen)
{
	size_t count = 1;
	char *copy, *p;

	for (const char *s = files; *s; s++)
		count += *s == ':';
	copy = cfg->patterns_buf = strdup(files);
	cfg->patterns = calloc(count, sizeof(*cfg->patterns));
	if (!copy || !cfg->patterns)
		return bad(err, errlen, "FOLIO_FILES", files, "out of memory");
	for (p = copy; p; ) {
		char *colon = strchr(p, ':');
		const char *why;

		if (colon)
			*colon = '\0';
		if (*p) {
			why = pattern_error(p);
			if (why)
				return bad(err, errlen, "FOLIO_FILES", files, "%s: '%.200s'", why, p);
			if (strchr(p, '/')) {
				/* Opened paths are compared normalised: so are patterns. */
				char normal[PATH_MAX];

				if (path_normalize("/", p, normal, sizeof(normal)) == 0)
					strcpy(p, normal);	/* never longer */
				cfg->match_full_path = true;
			}
			cfg->patterns[cfg->npatterns++] = p;
		}
		p = colon ? colon + 1 : NULL;
	}
	return 0;
}

static int parse_size_var(const char *(*get)(const char *), const char *name, uint64_t *out,
			  char *err, size_t errlen)
{
	const char *v = get(name);

	if (v && config_parse_size(v, out))
		return bad(err, errlen, name, v, "expected a size such as 512M");
	return 0;
}

int config_parse(struct folio_config *cfg, const char *(*get)(const char *name),
		 char *err, size_t errlen)
{
	const char *v;
	bool disabled = false;
	uint64_t interval;

	*cfg = (struct folio_config){
		.cache_size = FOLIO_DEFAULT_CACHE_SIZE,
		.dirty_limit = UINT64_MAX,
		.readahead = UINT64_MAX,
		.flush_interval_ms = FOLIO_DEFAULT_FLUSH_MS,
		.log_level = LOG_WARN,
	};
	err[0] = '\0';

	v = get("FOLIO_LOG");
	if (v && parse_log_level(v, &cfg->log_level))
		return bad(err, errlen, "FOLIO_LOG", v, "expected error, warn, info or debug");

	v = get("FOLIO_DISABLE");
	if (v && config_parse_bool(v, &disabled))
		return bad(err, errlen, "FOLIO_DISABLE", v, "expected 1 or 0 (yes/no, on/off)");

	if (parse_size_var(get, "FOLIO_CACHE_SIZE", &cfg->cache_size, err, errlen) ||
	    parse_size_var(get, "FOLIO_DIRTY_LIMIT", &cfg->dirty_limit, err, errlen) ||
	    parse_size_var(get, "FOLIO_READAHEAD", &cfg->readahead, err, errlen))
		return -1;
	v = get("FOLIO_CACHE_SIZE");
	if (cfg->cache_size < FOLIO_MIN_CACHE_SIZE || cfg->cache_size > FOLIO_MAX_CACHE_SIZE)
		return bad(err, errlen, "FOLIO_CACHE_SIZE", v, "expected a size from 64K to 1T");
	cfg->cache_size &= ~(uint64_t)(FOLIO_PAGE_SIZE - 1);

	v = get("FOLIO_DIRTY_LIMIT");
	if (!v)
		cfg->dirty_limit = cfg->cache_size / 2;
	else if (cfg->dirty_limit < FOLIO_PAGE_SIZE || cfg->dirty_limit > cfg->cache_size)
		return bad(err, errlen, "FOLIO_DIRTY_LIMIT", v, "expected a size from 4K to FOLIO_CACHE_SIZE (%llu bytes)",
		    (unsigned long long)cfg->cache_size);
	cfg->dirty_limit &= ~(uint64_t)(FOLIO_PAGE_SIZE - 1);

	v = get("FOLIO_READAHEAD");
	if (!v)
		cfg->readahead = FOLIO_DEFAULT_READAHEAD < cfg->cache_size / 4 ?
				 FOLIO_DEFAULT_READAHEAD : cfg->cache_size / 4;
	else if (cfg->readahead > cfg->cache_size / 4)
		return bad(err, errlen, "FOLIO_READAHEAD", v, "expected a size from 0 to a quarter of FOLIO_CACHE_SIZE "
		    "(%llu bytes)", (unsigned long long)(cfg->cache_size / 4));
	cfg->readahead &= ~(uint64_t)(FOLIO_PAGE_SIZE - 1);

	v = get("FOLIO_FLUSH_INTERVAL");
	if (v) {
		if (config_parse_size(v, &interval) || v[strspn(v, "0123456789")] != '\0' ||
		    interval < 1 || interval > FOLIO_MAX_FLUSH_MS)
			return bad(err, errlen, "FOLIO_FLUSH_INTERVAL", v, "expected milliseconds from 1 to %u, such as 1000",
			    FOLIO_MAX_FLUSH_MS);
		cfg->flush_interval_ms = interval;
	}

	/* Read by the guardian (shim/guardian/guardian.c), checked here. */
	v = get("FOLIO_RECOVERY_TIMEOUT");
	if (v && (v[0] == '\0' || v[strspn(v, "0123456789")] != '\0' || strlen(v) > 4 ||
		  atoi(v) > 3600))
		return bad(err, errlen, "FOLIO_RECOVERY_TIMEOUT", v,
			   "expected seconds from 0 to 3600, such as 10");

	v = get("FOLIO_FLUSH_MODE");
	if (v) {
		size_t i = 0;

		while (i < ARRAY_SIZE(flush_mode_names) && strcmp(v, flush_mode_names[i]))
			i++;
		if (i == ARRAY_SIZE(flush_mode_names))
			return bad(err, errlen, "FOLIO_FLUSH_MODE", v, "expected auto, pwritev, dontcache or sync-range");
		cfg->flush_mode = i;
	}

	v = get("FOLIO_STATS");
	if (v) {
		bool on;

		if (config_parse_bool(v, &on) == 0)
			cfg->stats = on ? STATS_STDERR : STATS_OFF;
		else if (*v == '\0' || strlen(v) >= PATH_MAX)
			return bad(err, errlen, "FOLIO_STATS", v, "expected 1, 0 or a file path");
		else {
			cfg->stats = STATS_FILE;
			cfg->stats_path = v;
		}
	}

	v = get("FOLIO_CALLERS");
	if (v) {
		uint64_t n;

		if (config_parse_size(v, &n) || v[strspn(v, "0123456789")] != '\0' ||
		    n > FOLIO_MAX_CALLERS)
			return bad(err, errlen, "FOLIO_CALLERS", v, "expected a number of call sites from 0 to %u",
			    FOLIO_MAX_CALLERS);
		cfg->callers = n;
	}

	v = get("FOLIO_LOG_FILE");
	if (v) {
		if (*v == '\0' || strlen(v) >= PATH_MAX)
			return bad(err, errlen, "FOLIO_LOG_FILE", v, "expected a file path");
		cfg->log_path = v;
	}

	v = get("FOLIO_FILES");
	if (v && parse_patterns(cfg, v, err, errlen))
		return -1;

	cfg->enabled = !disabled && cfg->npatterns > 0;
	return 0;
}

void config_free(struct folio_config *cfg)
{
	free(cfg->patterns_buf);
	free(cfg->patterns);
	cfg->patterns_buf = NULL;
	cfg->patterns = NULL;
	cfg->npatterns = 0;
}

static const char *get_env(const char *name)
{
	return getenv(name);
}

static void warn_unknown_vars(void)
{
	extern char **environ;

	for (char **e = environ; e && *e; e++) {
		size_t len = strcspn(*e, "=");
		bool known = false;

		if (strncmp(*e, "FOLIO_", 6))
			continue;
		for (size_t i = 0; i < ARRAY_SIZE(known_vars); i++)
			known |= strlen(known_vars[i]) == len && !strncmp(*e, known_vars[i], len);
		if (!known)
			log_warn("unknown variable %.*s ignored (see man 7 folio)", (int)len, *e);
	}
}

void config_load(void)
{
	char err[512];
	struct folio_config cfg;

	if (config_parse(&cfg, get_env, err, sizeof(err))) {
		config_free(&cfg);
		folio_log_level = cfg.log_level;
		log_error("%s; running as pass-through", err);
		return;
	}
	folio_log_level = cfg.log_level;
	if (cfg.log_path && log_open_file(cfg.log_path) < 0) {
		log_error("FOLIO_LOG_FILE: cannot open '%.200s': %s; running as pass-through",
			  cfg.log_path, strerror(errno));
		config_free(&cfg);
		return;
	}
	folio_config = cfg;
	warn_unknown_vars();
}
