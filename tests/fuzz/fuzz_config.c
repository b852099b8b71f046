/*
 * fuzz_config.c - libFuzzer target for the FOLIO_* parser (shim/config.c)
 * and the FOLIO_FILES matcher and path normaliser (shim/pathmatch.c).
 *
 * Input: two bytes, a mask of which of the variables below are set; one
 * byte, the size of a small error buffer; then NUL-separated fields: the
 * first NVARS are the values of the variables in turn where the mask sets
 * them and paths where it does not; the rest are paths.  Every field is copied to
 * a buffer of its own exact size, so a read past a value's end is caught.
 *
 * Invariants (abort() if broken):
 *   - config_parse() never crashes; it is deterministic; it accepts or
 *     rejects the same way whatever the size of the error buffer.
 *   - a rejected environment leaves tracking off, and says why in one line
 *     without control characters, naming a FOLIO_ variable and its value;
 *     with a smaller buffer the line is a prefix of the same line.
 *   - an accepted one has every value within its bounds, the defaults for
 *     unset variables, sizes as an independent parser reads them, and
 *     valid, non-empty, normalised patterns without ':'.
 *   - path_match() is deterministic, and agrees with fnmatch(3) with
 *     FNM_PATHNAME wherever folio(7) gives the same meaning (no "**", no
 *     [: :] classes, no trailing lone backslash); "**" matches at least
 *     what "*" does; "\c" matches c.
 *   - path_normalize() gives an absolute path without empty, "." or ".."
 *     components that normalises to itself; path_basename() has no '/'.
 */
#include <errno.h>
#include <fnmatch.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "pathmatch.h"

static const char *const vars[] = {
	"FOLIO_FILES", "FOLIO_CACHE_SIZE", "FOLIO_DIRTY_LIMIT", "FOLIO_FLUSH_INTERVAL",
	"FOLIO_FLUSH_MODE", "FOLIO_READAHEAD", "FOLIO_STATS", "FOLIO_CALLERS", "FOLIO_LOG",
	"FOLIO_LOG_FILE", "FOLIO_DISABLE",
};
#define NVARS		(sizeof(vars) / sizeof(vars[0]))
#define MAX_PATHS	16

static char *values[NVARS];

static const char *get(const char *name)
{
	for (size_t i = 0; i < NVARS; i++)
		if (!strcmp(name, vars[i]))
			return values[i];
	return NULL;
}

static const char *value_of(const char *name)
{
	return get(name);
}

#define CHECK(cond, ...) \
	do { \
		if (!(cond)) { \
			fprintf(stderr, "fuzz_config: %s:%d: %s: ", __FILE__, __LINE__, #cond); \
			fprintf(stderr, __VA_ARGS__); \
			fputc('\n', stderr); \
			abort(); \
		} \
	} while (0)

/* A size as folio(7) defines it, read another way: strtoull and a suffix. */
static int ref_size(const char *s, uint64_t *out)
{
	unsigned long long v;
	unsigned int shift = 0;
	char *end;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno == ERANGE)
		return -1;
	if (*end && strchr("kKmMgGtT", *end) && end[1] == '\0')
		shift = 10 * ((strchr("kKmMgGtT", *end) - "kKmMgGtT" + 2) / 2);
	else if (*end)
		return -1;
	if (shift && v > (UINT64_MAX >> shift))
		return -1;
	*out = (uint64_t)v << shift;
	return 0;
}

static bool one_line(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return false;
	return true;
}

static bool same_config(const struct folio_config *a, const struct folio_config *b)
{
	if (a->enabled != b->enabled || a->npatterns != b->npatterns ||
	    a->match_full_path != b->match_full_path || a->cache_size != b->cache_size ||
	    a->dirty_limit != b->dirty_limit || a->readahead != b->readahead ||
	    a->flush_interval_ms != b->flush_interval_ms || a->flush_mode != b->flush_mode ||
	    a->stats != b->stats || a->stats_path != b->stats_path || a->callers != b->callers ||
	    a->log_path != b->log_path || a->log_level != b->log_level)
		return false;
	for (size_t i = 0; i < a->npatterns; i++)
		if (strcmp(a->patterns[i], b->patterns[i]))
			return false;
	return true;
}

static void check_rejected(const struct folio_config *cfg, const char *err, const char *small)
{
	const char *eq = strstr(err, "='");
	bool named = false;

	CHECK(!cfg->enabled, "rejected, yet tracking is on: %s", err);
	CHECK(err[0] != '\0', "rejected without a message");
	CHECK(one_line(err), "the message is not one line: %s", err);
	CHECK(!strncmp(err, "FOLIO_", 6) && eq, "the message names no variable: %s", err);
	for (size_t i = 0; i < NVARS; i++)
		named |= values[i] && strlen(vars[i]) == (size_t)(eq - err) &&
			 !strncmp(err, vars[i], eq - err);
	CHECK(named, "the message names a variable that is not set: %s", err);
	CHECK(!strncmp(err, small, strlen(small)), "a small buffer got another message: %s / %s",
	      small, err);
}

static void check_accepted(const struct folio_config *cfg, const char *err)
{
	const char *v;
	uint64_t n, cache;
	bool disabled = false;
	size_t colons = 0;
	bool slash = false;

	CHECK(err[0] == '\0', "accepted, with a message: %s", err);

	v = value_of("FOLIO_CACHE_SIZE");
	if (v) {
		CHECK(ref_size(v, &n) == 0, "cache size '%s' accepted", v);
		CHECK(cfg->cache_size == (n & ~4095ull), "cache size '%s' read as %llu", v,
		      (unsigned long long)cfg->cache_size);
	} else {
		CHECK(cfg->cache_size == FOLIO_DEFAULT_CACHE_SIZE, "default cache size");
	}
	cache = cfg->cache_size;
	CHECK(cache >= FOLIO_MIN_CACHE_SIZE && cache <= FOLIO_MAX_CACHE_SIZE && !(cache & 4095),
	      "cache size %llu", (unsigned long long)cache);

	v = value_of("FOLIO_DIRTY_LIMIT");
	if (v) {
		CHECK(ref_size(v, &n) == 0 && n >= 4096 && n <= cache, "dirty limit '%s' accepted", v);
		CHECK(cfg->dirty_limit == (n & ~4095ull), "dirty limit '%s'", v);
	} else {
		CHECK(cfg->dirty_limit == (cache / 2 & ~4095ull), "default dirty limit");
	}

	v = value_of("FOLIO_READAHEAD");
	if (v) {
		CHECK(ref_size(v, &n) == 0 && n <= cache / 4, "readahead '%s' accepted", v);
		CHECK(cfg->readahead == (n & ~4095ull), "readahead '%s'", v);
	} else {
		n = cache / 4 < FOLIO_DEFAULT_READAHEAD ? cache / 4 : FOLIO_DEFAULT_READAHEAD;
		CHECK(cfg->readahead == (n & ~4095ull), "default readahead");
	}

	v = value_of("FOLIO_FLUSH_INTERVAL");
	if (v)
		CHECK(v[0] && v[strspn(v, "0123456789")] == '\0' && ref_size(v, &n) == 0 &&
		      n >= 1 && n <= FOLIO_MAX_FLUSH_MS && cfg->flush_interval_ms == n,
		      "flush interval '%s' read as %u", v, cfg->flush_interval_ms);
	else
		CHECK(cfg->flush_interval_ms == FOLIO_DEFAULT_FLUSH_MS, "default flush interval");

	v = value_of("FOLIO_FLUSH_MODE");
	if (v)
		CHECK((cfg->flush_mode == FLUSH_AUTO && !strcmp(v, "auto")) ||
		      (cfg->flush_mode == FLUSH_PWRITEV && !strcmp(v, "pwritev")) ||
		      (cfg->flush_mode == FLUSH_DONTCACHE && !strcmp(v, "dontcache")) ||
		      (cfg->flush_mode == FLUSH_SYNC_RANGE && !strcmp(v, "sync-range")),
		      "flush mode '%s' read as %d", v, cfg->flush_mode);
	else
		CHECK(cfg->flush_mode == FLUSH_AUTO, "default flush mode");

	v = value_of("FOLIO_STATS");
	if (!v) {
		CHECK(cfg->stats == STATS_OFF, "default stats");
	} else if (config_parse_bool(v, &disabled) == 0) {
		CHECK(cfg->stats == (disabled ? STATS_STDERR : STATS_OFF), "stats '%s'", v);
	} else {
		CHECK(cfg->stats == STATS_FILE && cfg->stats_path == v && v[0] &&
		      strlen(v) < PATH_MAX, "stats '%s'", v);
	}

	v = value_of("FOLIO_CALLERS");
	if (v)
		CHECK(v[0] && v[strspn(v, "0123456789")] == '\0' && ref_size(v, &n) == 0 &&
		      n <= FOLIO_MAX_CALLERS && cfg->callers == n, "callers '%s'", v);
	else
		CHECK(cfg->callers == 0, "default callers");

	v = value_of("FOLIO_LOG");
	if (v)
		CHECK((unsigned int)cfg->log_level <= LOG_DEBUG &&
		      !strcasecmp(v, (const char *[]){ "error", "warn", "info",
						       "debug" }[cfg->log_level]),
		      "log level '%s'", v);
	else
		CHECK(cfg->log_level == LOG_WARN, "default log level");

	v = value_of("FOLIO_LOG_FILE");
	CHECK(v ? cfg->log_path == v && v[0] && strlen(v) < PATH_MAX : !cfg->log_path,
	      "log file '%s'", v ? v : "(unset)");

	disabled = false;
	v = value_of("FOLIO_DISABLE");
	CHECK(!v || config_parse_bool(v, &disabled) == 0, "FOLIO_DISABLE='%s' accepted", v);

	v = value_of("FOLIO_FILES");
	if (v)
		for (const char *s = v; *s; s++)
			colons += *s == ':';
	CHECK(v ? cfg->npatterns <= colons + 1 : cfg->npatterns == 0, "%zu patterns",
	      cfg->npatterns);
	for (size_t i = 0; i < cfg->npatterns; i++) {
		const char *p = cfg->patterns[i];
		char normal[PATH_MAX];

		CHECK(p[0] && !strchr(p, ':') && !pattern_error(p), "pattern '%s'", p);
		if (strchr(p, '/')) {
			slash = true;
			CHECK(path_normalize("/", p, normal, sizeof(normal)) == 0 &&
			      !strcmp(normal, p), "pattern '%s' not normalised", p);
		}
	}
	CHECK(cfg->match_full_path == slash, "match_full_path");
	CHECK(cfg->enabled == (!disabled && cfg->npatterns > 0), "enabled");
}

/*
 * Where folio(7) and fnmatch(3) mean the same by a pattern: not "**", not
 * the [:class:] forms folio does not have, not a trailing lone backslash
 * (fnmatch fails it, folio matches a backslash), and not "\/": glibc's
 * fnmatch with FNM_PATHNAME stops a '*' at the text's '/' before trying
 * the escaped slash there ("*\/b" does not match "a/b", "a\/b" does),
 * where folio(7) says "\c" is c (found by this fuzzer, glibc 2.36).
 */
static bool fnmatch_comparable(const char *p)
{
	size_t len = strlen(p), trailing = 0;

	if (strstr(p, "**") || strstr(p, "[:") || strstr(p, "[=") || strstr(p, "[.") ||
	    strstr(p, "\\/"))
		return false;
	while (trailing < len && p[len - 1 - trailing] == '\\')
		trailing++;
	return trailing % 2 == 0;
}

/*
 * path_match() takes time up to strlen(pattern) * strlen(text) steps (an
 * 8000-byte pattern of stars against itself: 0.4 s built plainly, 20 s
 * instrumented, found as a libFuzzer timeout); pairs past this many steps
 * are left out, as too slow to fuzz rather than wrong.  Real patterns and
 * paths stay under PATH_MAX.
 */
#define MATCH_BUDGET	(1u << 22)

static bool affordable(const char *p, const char *t)
{
	return (uint64_t)strlen(p) * (strlen(t) + 1) <= MATCH_BUDGET;
}

static void check_match(const char *p, const char *t)
{
	bool m;

	if (!affordable(p, t))
		return;
	m = path_match(p, t);

	CHECK(m == path_match(p, t), "path_match('%s', '%s') changed its mind", p, t);
	if (pattern_error(p))
		return;
	if (fnmatch_comparable(p))
		CHECK(m == (fnmatch(p, t, FNM_PATHNAME) == 0),
		      "path_match('%s', '%s') = %d, fnmatch says otherwise", p, t, m);
}

/* "**" for a "*": matches at least what the "*" did. */
static void check_starstar(const char *p, const char *t)
{
	size_t len = strlen(p);
	char *pp;

	if (!strchr(p, '*') || strstr(p, "**") || strchr(p, '\\') || strchr(p, '[') ||
	    !affordable(p, t) || 2 * len * (strlen(t) + 1) > MATCH_BUDGET || !path_match(p, t))
		return;
	pp = malloc(2 * len + 1);
	for (size_t i = 0, j = 0; i <= len; i++) {
		pp[j++] = p[i];
		if (p[i] == '*')
			pp[j++] = '*';
	}
	CHECK(path_match(pp, t), "'%s' matches '%s', '%s' does not", p, t, pp);
	free(pp);
}

static void check_paths(const char *t)
{
	char out[PATH_MAX], again[PATH_MAX], base[64];
	int r = path_normalize("/base/dir", t, out, sizeof(out));

	if (r == 0) {
		size_t len = strlen(out);

		CHECK(out[0] == '/' && !strstr(out, "//") && !strstr(out, "/./") &&
		      !strstr(out, "/../") && (len == 1 || out[len - 1] != '/') &&
		      strcmp(out + (len >= 2 ? len - 2 : 0), "/.") &&
		      strcmp(out + (len >= 3 ? len - 3 : 0), "/.."),
		      "path_normalize('%s') = '%s'", t, out);
		CHECK(path_normalize("/", out, again, sizeof(again)) == 0 && !strcmp(out, again),
		      "path_normalize('%s') = '%s', then '%s'", t, out, again);
	}
	path_basename(t, base, sizeof(base));
	CHECK(!strchr(base, '/') && strlen(base) < sizeof(base), "path_basename('%s')", t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct folio_config cfg, again, small_cfg;
	char err[512], err2[512], small[257];
	const char *paths[MAX_PATHS];
	size_t npaths = 0, pos = 3, smallsize;
	unsigned int mask;
	int r;

	if (size < 3)
		return 0;
	mask = data[0] | data[1] << 8;
	smallsize = 1 + data[2];
	for (size_t i = 0; i < NVARS + MAX_PATHS && pos <= size; i++) {
		const uint8_t *nul = memchr(data + pos, '\0', size - pos);
		size_t len = nul ? (size_t)(nul - (data + pos)) : size - pos;
		char *s = malloc(len + 1);

		memcpy(s, data + pos, len);
		s[len] = '\0';
		pos += len + 1;
		if (i < NVARS && (mask & 1u << i))
			values[i] = s;
		else if (i >= NVARS || npaths < MAX_PATHS)
			paths[npaths++] = s;
		else
			free(s);
		if (npaths == MAX_PATHS)
			break;
	}

	r = config_parse(&cfg, get, err, sizeof(err));
	CHECK(r == 0 || r == -1, "config_parse returned %d", r);
	CHECK(config_parse(&again, get, err2, sizeof(err2)) == r && !strcmp(err, err2) &&
	      (r || same_config(&cfg, &again)), "config_parse is not deterministic");
	CHECK(config_parse(&small_cfg, get, small, smallsize) == r, "the error buffer's size "
	      "changed the verdict");
	CHECK(strlen(small) < smallsize, "the error overflowed its buffer");
	if (r)
		check_rejected(&cfg, err, small);
	else
		check_accepted(&cfg, err);

	for (size_t i = 0; i < npaths; i++) {
		bool any = false, any2 = false;
		char base[PATH_MAX];

		check_paths(paths[i]);
		path_basename(paths[i], base, sizeof(base));
		/* The tracking decision over the pattern list, twice. */
		for (int round = 0; round < 2; round++)
			for (size_t k = 0; !r && k < cfg.npatterns; k++) {
				const char *t = strchr(cfg.patterns[k], '/') ? paths[i] : base;

				if (affordable(cfg.patterns[k], t))
					*(round ? &any2 : &any) |= path_match(cfg.patterns[k], t);
			}
		CHECK(any == any2, "the pattern list changed its mind on '%s'", paths[i]);
		/* Every field as a pattern against every path, and the bits. */
		for (size_t k = 0; k < npaths; k++) {
			check_match(paths[k], paths[i]);
			check_starstar(paths[k], paths[i]);
		}
		for (size_t k = 0; !r && k < cfg.npatterns; k++) {
			check_match(cfg.patterns[k], paths[i]);
			check_match(cfg.patterns[k], base);
		}
	}

	config_free(&cfg);
	config_free(&again);
	config_free(&small_cfg);
	for (size_t i = 0; i < NVARS; i++) {
		free(values[i]);
		values[i] = NULL;
	}
	for (size_t i = 0; i < npaths; i++)
		free((char *)paths[i]);
	return 0;
}
