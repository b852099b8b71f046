/*
 * test_config.c - unit tests for shim/config.c: config_parse_size(),
 * config_parse_bool() and config_parse() over a fake environment.
 */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

#define KiB (1ull << 10)
#define MiB (1ull << 20)
#define GiB (1ull << 30)
#define TiB (1ull << 40)

/* ---- config_parse_size() --------------------------------------------- */

Test(config_parse_size, valid)
{
	static const struct {
		const char *s;
		uint64_t want;
	} cases[] = {
		{ "0",				0 },
		{ "1",				1 },
		{ "4096",			4096 },
		{ "007",			7 },
		{ "4K",				4 * KiB },
		{ "4k",				4 * KiB },
		{ "512M",			512 * MiB },
		{ "512m",			512 * MiB },
		{ "2G",				2 * GiB },
		{ "2g",				2 * GiB },
		{ "1T",				TiB },
		{ "1t",				TiB },
		{ "0K",				0 },
		{ "18446744073709551615",	UINT64_MAX },
		{ "16777215T",			16777215 * TiB },
		{ "17179869183G",		17179869183ull * GiB },
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		uint64_t out = 12345;
		int rc = config_parse_size(cases[i].s, &out);

		cr_expect_eq(rc, 0, "config_parse_size(\"%s\") returned %d", cases[i].s, rc);
		cr_expect_eq(out, cases[i].want, "config_parse_size(\"%s\") = %llu, want %llu",
			     cases[i].s, (unsigned long long)out,
			     (unsigned long long)cases[i].want);
	}
}

Test(config_parse_size, invalid)
{
	static const char *const cases[] = {
		/* past UINT64_MAX */
		"99999999999999999999", "18446744073709551616", "17179869184G",
		"16777216T", "18014398509481984K",
		/* malformed */
		"", "12Q", "K", "-1", "+1", " 1", "1 ", "1KB", "1.5G", "0x10", "1K1",
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		uint64_t out = 0;

		cr_expect_eq(config_parse_size(cases[i], &out), -1,
			     "config_parse_size(\"%s\") should fail", cases[i]);
	}
}

/* ---- config_parse_bool() --------------------------------------------- */

Test(config_parse_bool, valid)
{
	static const struct {
		const char *s;
		bool want;
	} cases[] = {
		{ "1", true },	{ "yes", true },	{ "on", true },		{ "true", true },
		{ "YES", true },	{ "On", true },		{ "TRUE", true },	{ "tRuE", true },
		{ "0", false },	{ "no", false },	{ "off", false },	{ "false", false },
		{ "NO", false },	{ "Off", false },	{ "FALSE", false },	{ "fAlSe", false },
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		bool out = !cases[i].want;
		int rc = config_parse_bool(cases[i].s, &out);

		cr_expect_eq(rc, 0, "config_parse_bool(\"%s\") returned %d", cases[i].s, rc);
		cr_expect_eq(out, cases[i].want, "config_parse_bool(\"%s\") gave %d",
			     cases[i].s, out);
	}
}

Test(config_parse_bool, invalid)
{
	static const char *const cases[] = {
		"", "2", "-1", "y", "n", "t", "f", "yess", "tru", " yes", "yes ", "enable",
		"disabled", "01",
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		bool out = false;

		cr_expect_eq(config_parse_bool(cases[i], &out), -1,
			     "config_parse_bool(\"%s\") should fail", cases[i]);
	}
}

/* ---- config_parse() over a fake environment --------------------------- */

#define FAKE_MAX 16

static struct {
	const char *name;
	const char *value;
} fake_env[FAKE_MAX];
static size_t fake_count;

static struct folio_config cfg;
static char err[512];

static void fake_reset(void)
{
	fake_count = 0;
	memset(fake_env, 0, sizeof(fake_env));
	memset(&cfg, 0, sizeof(cfg));
	memset(err, 0, sizeof(err));
}

static void fake_set(const char *name, const char *value)
{
	for (size_t i = 0; i < fake_count; i++) {
		if (!strcmp(fake_env[i].name, name)) {
			fake_env[i].value = value;
			return;
		}
	}
	cr_assert_lt(fake_count, (size_t)FAKE_MAX, "fake environment full");
	fake_env[fake_count].name = name;
	fake_env[fake_count].value = value;
	fake_count++;
}

static const char *fake_get(const char *name)
{
	for (size_t i = 0; i < fake_count; i++)
		if (!strcmp(fake_env[i].name, name))
			return fake_env[i].value;
	return NULL;
}

/* Parse the fake environment into cfg/err; the caller calls config_free(). */
static int parse(void)
{
	return config_parse(&cfg, fake_get, err, sizeof(err));
}

/* A parse that must succeed, with the error shown if it does not. */
#define PARSE_OK() \
	do { \
		int rc_ = parse(); \
		cr_expect_eq(rc_, 0, "config_parse failed: %s", err); \
	} while (0)

TestSuite(config_parse, .init = fake_reset);

Test(config_parse, defaults)
{
	PARSE_OK();
	cr_expect_not(cfg.enabled);
	cr_expect_eq(cfg.npatterns, 0);
	cr_expect_not(cfg.match_full_path);
	cr_expect_eq(cfg.cache_size, 256 * MiB);
	cr_expect_eq(cfg.dirty_limit, cfg.cache_size / 2);
	cr_expect_eq(cfg.readahead, 256 * KiB);
	cr_expect_eq(cfg.flush_interval_ms, 1000u);
	cr_expect_eq(cfg.stats, STATS_OFF);
	cr_expect_eq(cfg.log_level, LOG_WARN);
	cr_expect_eq(cfg.flush_mode, FLUSH_AUTO);
	config_free(&cfg);
}

Test(config_parse, flush_modes)
{
	static const struct { const char *name; enum flush_mode mode; } modes[] = {
		{ "auto", FLUSH_AUTO },
		{ "pwritev", FLUSH_PWRITEV },
		{ "dontcache", FLUSH_DONTCACHE },
		{ "sync-range", FLUSH_SYNC_RANGE },
	};

	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		fake_set("FOLIO_FLUSH_MODE", modes[i].name);
		PARSE_OK();
		cr_expect_eq(cfg.flush_mode, modes[i].mode, "%s", modes[i].name);
		config_free(&cfg);
	}
	fake_set("FOLIO_FLUSH_MODE", "Pwritev");	/* exact names only */
	cr_expect_eq(parse(), -1);
	cr_expect(strstr(err, "FOLIO_FLUSH_MODE") && strstr(err, "'Pwritev'") &&
		  strstr(err, "auto, pwritev, dontcache or sync-range"), "%s", err);
}

Test(config_parse, every_variable_valid)
{
	fake_set("FOLIO_FILES", "/srv/db/**");
	fake_set("FOLIO_CACHE_SIZE", "1G");
	fake_set("FOLIO_DIRTY_LIMIT", "100M");
	fake_set("FOLIO_READAHEAD", "1M");
	fake_set("FOLIO_FLUSH_INTERVAL", "500");
	fake_set("FOLIO_STATS", "yes");
	fake_set("FOLIO_LOG", "error");
	fake_set("FOLIO_DISABLE", "no");
	PARSE_OK();
	cr_expect(cfg.enabled);
	cr_expect_eq(cfg.cache_size, GiB);
	cr_expect_eq(cfg.dirty_limit, 100 * MiB);
	cr_expect_eq(cfg.readahead, MiB);
	cr_expect_eq(cfg.flush_interval_ms, 500u);
	cr_expect_eq(cfg.stats, STATS_STDERR);
	cr_expect_eq(cfg.log_level, LOG_ERROR);
	config_free(&cfg);
}

Test(config_parse, files_two_patterns)
{
	fake_set("FOLIO_FILES", "*.db:/data/**");
	PARSE_OK();
	cr_expect(cfg.enabled);
	cr_assert_eq(cfg.npatterns, 2);
	cr_expect_str_eq(cfg.patterns[0], "*.db");
	cr_expect_str_eq(cfg.patterns[1], "/data/**");
	cr_expect(cfg.match_full_path);
	config_free(&cfg);
	cr_expect_null(cfg.patterns);
	cr_expect_eq(cfg.npatterns, 0);
}

Test(config_parse, path_patterns_normalised)
{
	fake_set("FOLIO_FILES", "/data/./db/../*.db://srv//x/**/:*.db");
	PARSE_OK();
	cr_assert_eq(cfg.npatterns, 3);
	cr_expect_str_eq(cfg.patterns[0], "/data/*.db");
	cr_expect_str_eq(cfg.patterns[1], "/srv/x/**");
	cr_expect_str_eq(cfg.patterns[2], "*.db");
	config_free(&cfg);
}

Test(config_parse, files_base_names_only)
{
	fake_set("FOLIO_FILES", "*.db:*.sqlite");
	PARSE_OK();
	cr_expect(cfg.enabled);
	cr_expect_eq(cfg.npatterns, 2);
	cr_expect_not(cfg.match_full_path);
	config_free(&cfg);
}

Test(config_parse, files_empty_entries_dropped)
{
	static const struct {
		const char *files;
		size_t npatterns;
	} cases[] = {
		{ ":*.db::",		1 },
		{ "*.db:",		1 },
		{ "::*.db::/x/*:",	2 },
		{ "::",			0 },
		{ ":",			0 },
		{ "",			0 },
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		int rc;

		fake_reset();
		fake_set("FOLIO_FILES", cases[i].files);
		rc = parse();
		cr_expect_eq(rc, 0, "FOLIO_FILES='%s': %s", cases[i].files, err);
		cr_expect_eq(cfg.npatterns, cases[i].npatterns, "FOLIO_FILES='%s': %zu patterns",
			     cases[i].files, cfg.npatterns);
		cr_expect_eq(cfg.enabled, cases[i].npatterns > 0, "FOLIO_FILES='%s': enabled=%d",
			     cases[i].files, cfg.enabled);
		for (size_t j = 0; j < cfg.npatterns; j++)
			cr_expect_neq(cfg.patterns[j][0], '\0', "FOLIO_FILES='%s': empty pattern",
				      cases[i].files);
		config_free(&cfg);
	}

	fake_reset();
	fake_set("FOLIO_FILES", ":*.db::");
	PARSE_OK();
	cr_assert_eq(cfg.npatterns, 1);
	cr_expect_str_eq(cfg.patterns[0], "*.db");
	cr_expect_not(cfg.match_full_path);
	config_free(&cfg);
}

Test(config_parse, disable)
{
	static const struct {
		const char *value;
		bool enabled;
	} cases[] = {
		{ "1", false }, { "yes", false }, { "ON", false }, { "true", false },
		{ "0", true },	{ "no", true },	  { "off", true }, { "FALSE", true },
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		int rc;

		fake_reset();
		fake_set("FOLIO_FILES", "*.db:/data/**");
		fake_set("FOLIO_DISABLE", cases[i].value);
		rc = parse();
		cr_expect_eq(rc, 0, "FOLIO_DISABLE='%s': %s", cases[i].value, err);
		cr_expect_eq(cfg.enabled, cases[i].enabled, "FOLIO_DISABLE='%s': enabled=%d",
			     cases[i].value, cfg.enabled);
		config_free(&cfg);
	}
}

/*
 * Every bad value: config_parse() returns -1, leaves tracking off even
 * though FOLIO_FILES names files, and says which variable, which value and
 * what it expected.
 */
#define BAD_VALUE(name, value, expect)	{ name, value, expect, NULL, NULL }
#define BAD_VALUE_WITH(name, value, expect, other, other_value) \
	{ name, value, expect, other, other_value }

Test(config_parse, bad_values)
{
	static const struct {
		const char *name, *value;
		const char *expect;		/* a substring of err */
		const char *other, *other_value; /* another variable, or NULL */
	} cases[] = {
		BAD_VALUE("FOLIO_CACHE_SIZE", "12Q", "expected a size"),
		BAD_VALUE("FOLIO_CACHE_SIZE", "", "expected a size"),
		BAD_VALUE("FOLIO_CACHE_SIZE", "-1", "expected a size"),
		BAD_VALUE("FOLIO_CACHE_SIZE", "99999999999999999999", "expected a size"),
		BAD_VALUE("FOLIO_CACHE_SIZE", "1K", "expected a size"),	/* too small */
		BAD_VALUE("FOLIO_CACHE_SIZE", "0", "expected a size"),
		BAD_VALUE("FOLIO_CACHE_SIZE", "65535", "expected a size"),
		BAD_VALUE("FOLIO_CACHE_SIZE", "2T", "expected a size"),	/* too big */
		BAD_VALUE("FOLIO_CACHE_SIZE", "1099511627777", "expected a size"),
		BAD_VALUE("FOLIO_DIRTY_LIMIT", "lots", "expected a size"),
		BAD_VALUE("FOLIO_DIRTY_LIMIT", "512M", "expected a size"),	/* > 256M default */
		BAD_VALUE_WITH("FOLIO_DIRTY_LIMIT", "65M", "expected a size",
			       "FOLIO_CACHE_SIZE", "64M"),
		BAD_VALUE("FOLIO_DIRTY_LIMIT", "0", "expected a size"),
		BAD_VALUE("FOLIO_DIRTY_LIMIT", "4095", "expected a size"),
		BAD_VALUE("FOLIO_READAHEAD", "1x", "expected a size"),
		BAD_VALUE_WITH("FOLIO_READAHEAD", "512K", "expected a size",
			       "FOLIO_CACHE_SIZE", "1M"),
		BAD_VALUE("FOLIO_READAHEAD", "65M", "expected a size"),	/* > 256M / 4 */
		BAD_VALUE("FOLIO_FLUSH_INTERVAL", "0", "expected milliseconds"),
		BAD_VALUE("FOLIO_FLUSH_INTERVAL", "86400001", "expected milliseconds"),
		BAD_VALUE("FOLIO_FLUSH_INTERVAL", "10K", "expected milliseconds"),
		BAD_VALUE("FOLIO_FLUSH_INTERVAL", "abc", "expected milliseconds"),
		BAD_VALUE("FOLIO_FLUSH_INTERVAL", "", "expected milliseconds"),
		BAD_VALUE("FOLIO_FLUSH_INTERVAL", "-5", "expected milliseconds"),
		BAD_VALUE("FOLIO_FLUSH_INTERVAL", "99999999999999999999", "expected milliseconds"),
		BAD_VALUE("FOLIO_STATS", "", "expected 1, 0 or a file path"),
		BAD_VALUE("FOLIO_LOG", "verbose", "expected error, warn, info or debug"),
		BAD_VALUE("FOLIO_LOG", "", "expected error, warn, info or debug"),
		BAD_VALUE("FOLIO_DISABLE", "maybe", "expected 1 or 0"),
		BAD_VALUE("FOLIO_DISABLE", "", "expected 1 or 0"),
		BAD_VALUE("FOLIO_FILES", "data/*.db", "absolute"),
		BAD_VALUE("FOLIO_FILES", "*.db:rel/x.db", "absolute"),
		BAD_VALUE("FOLIO_FILES", "[abc", "unterminated '['"),
		BAD_VALUE("FOLIO_FILES", "/data/[a-z:*.db", "unterminated '['"),
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		char quoted[256];
		int rc;

		fake_reset();
		fake_set("FOLIO_FILES", "*.db:/data/**");
		if (cases[i].other)
			fake_set(cases[i].other, cases[i].other_value);
		fake_set(cases[i].name, cases[i].value);
		rc = parse();

		snprintf(quoted, sizeof(quoted), "%s='%s'", cases[i].name, cases[i].value);
		cr_expect_eq(rc, -1, "%s should be rejected", quoted);
		cr_expect_not(cfg.enabled, "%s: tracking left on", quoted);
		cr_expect(strstr(err, quoted), "%s: err \"%s\" does not quote it", quoted, err);
		cr_expect(strstr(err, cases[i].expect), "%s: err \"%s\" does not say \"%s\"",
			  quoted, err, cases[i].expect);
		config_free(&cfg);
	}
}

Test(config_parse, cache_size_example_message)
{
	fake_set("FOLIO_CACHE_SIZE", "12Q");
	cr_expect_eq(parse(), -1);
	cr_expect_not(cfg.enabled);
	cr_expect(strstr(err, "FOLIO_CACHE_SIZE='12Q'"), "err: %s", err);
	cr_expect(strstr(err, "expected a size"), "err: %s", err);
	config_free(&cfg);
}

Test(config_parse, cache_size_bounds)
{
	static const struct {
		const char *value;
		uint64_t want;
	} cases[] = {
		{ "64K",	64 * KiB },
		{ "65536",	64 * KiB },
		{ "64M",	64 * MiB },
		{ "1T",		TiB },
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		int rc;

		fake_reset();
		fake_set("FOLIO_CACHE_SIZE", cases[i].value);
		rc = parse();
		cr_expect_eq(rc, 0, "FOLIO_CACHE_SIZE='%s': %s", cases[i].value, err);
		cr_expect_eq(cfg.cache_size, cases[i].want, "FOLIO_CACHE_SIZE='%s' gave %llu",
			     cases[i].value, (unsigned long long)cfg.cache_size);
		config_free(&cfg);
	}
}

Test(config_parse, dirty_limit_within_cache)
{
	fake_set("FOLIO_CACHE_SIZE", "64M");
	fake_set("FOLIO_DIRTY_LIMIT", "1M");
	PARSE_OK();
	cr_expect_eq(cfg.cache_size, 64 * MiB);
	cr_expect_eq(cfg.dirty_limit, MiB);
	config_free(&cfg);

	/* Equal to the cache is the upper bound, 4K the lower. */
	fake_set("FOLIO_DIRTY_LIMIT", "64M");
	PARSE_OK();
	cr_expect_eq(cfg.dirty_limit, 64 * MiB);
	config_free(&cfg);

	fake_set("FOLIO_DIRTY_LIMIT", "4K");
	PARSE_OK();
	cr_expect_eq(cfg.dirty_limit, 4 * KiB);
	config_free(&cfg);
}

Test(config_parse, small_cache_defaults)
{
	fake_set("FOLIO_CACHE_SIZE", "1M");
	PARSE_OK();
	cr_expect_eq(cfg.cache_size, MiB);
	cr_expect_eq(cfg.dirty_limit, 512 * KiB);
	cr_expect_eq(cfg.readahead, 256 * KiB);
	config_free(&cfg);

	/* Below 1M the default readahead shrinks to a quarter of the cache. */
	fake_set("FOLIO_CACHE_SIZE", "512K");
	PARSE_OK();
	cr_expect_eq(cfg.dirty_limit, 256 * KiB);
	cr_expect_eq(cfg.readahead, 128 * KiB);
	config_free(&cfg);

	fake_set("FOLIO_CACHE_SIZE", "64K");
	PARSE_OK();
	cr_expect_eq(cfg.dirty_limit, 32 * KiB);
	cr_expect_eq(cfg.readahead, 16 * KiB);
	config_free(&cfg);
}

Test(config_parse, readahead)
{
	fake_set("FOLIO_READAHEAD", "0");
	PARSE_OK();
	cr_expect_eq(cfg.readahead, 0);
	config_free(&cfg);

	/* Exactly a quarter of the cache is allowed. */
	fake_set("FOLIO_CACHE_SIZE", "1M");
	fake_set("FOLIO_READAHEAD", "256K");
	PARSE_OK();
	cr_expect_eq(cfg.readahead, 256 * KiB);
	config_free(&cfg);

	fake_set("FOLIO_READAHEAD", "256K");
	fake_set("FOLIO_CACHE_SIZE", "1023K");
	cr_expect_eq(parse(), -1, "readahead 256K above a quarter of a 1020K cache");
	cr_expect(strstr(err, "FOLIO_READAHEAD='256K'"), "err: %s", err);
	config_free(&cfg);
}

Test(config_parse, flush_interval)
{
	static const struct {
		const char *value;
		unsigned int want;
	} cases[] = {
		{ "250",	250 },
		{ "1",		1 },
		{ "86400000",	86400000 },
		{ "0001",	1 },
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		int rc;

		fake_reset();
		fake_set("FOLIO_FLUSH_INTERVAL", cases[i].value);
		rc = parse();
		cr_expect_eq(rc, 0, "FOLIO_FLUSH_INTERVAL='%s': %s", cases[i].value, err);
		cr_expect_eq(cfg.flush_interval_ms, cases[i].want,
			     "FOLIO_FLUSH_INTERVAL='%s' gave %u", cases[i].value,
			     cfg.flush_interval_ms);
		config_free(&cfg);
	}
}

Test(config_parse, stats)
{
	static const struct {
		const char *value;
		enum stats_mode want;
		const char *path;
	} cases[] = {
		{ "1",			STATS_STDERR,	NULL },
		{ "on",			STATS_STDERR,	NULL },
		{ "TRUE",		STATS_STDERR,	NULL },
		{ "off",		STATS_OFF,	NULL },
		{ "0",			STATS_OFF,	NULL },
		{ "no",			STATS_OFF,	NULL },
		{ "/tmp/x.json",	STATS_FILE,	"/tmp/x.json" },
		{ "stats.json",		STATS_FILE,	"stats.json" },
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		int rc;

		fake_reset();
		fake_set("FOLIO_STATS", cases[i].value);
		rc = parse();
		cr_expect_eq(rc, 0, "FOLIO_STATS='%s': %s", cases[i].value, err);
		cr_expect_eq(cfg.stats, cases[i].want, "FOLIO_STATS='%s' gave mode %d",
			     cases[i].value, cfg.stats);
		if (cases[i].path) {
			cr_expect_not_null(cfg.stats_path, "FOLIO_STATS='%s': no path",
					   cases[i].value);
			if (cfg.stats_path)
				cr_expect_str_eq(cfg.stats_path, cases[i].path);
		}
		config_free(&cfg);
	}
}

Test(config_parse, log_level)
{
	static const struct {
		const char *value;
		enum log_level want;
	} cases[] = {
		{ "debug", LOG_DEBUG }, { "INFO", LOG_INFO }, { "Warn", LOG_WARN },
		{ "error", LOG_ERROR },
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		int rc;

		fake_reset();
		fake_set("FOLIO_LOG", cases[i].value);
		rc = parse();
		cr_expect_eq(rc, 0, "FOLIO_LOG='%s': %s", cases[i].value, err);
		cr_expect_eq(cfg.log_level, cases[i].want, "FOLIO_LOG='%s' gave %d",
			     cases[i].value, cfg.log_level);
		config_free(&cfg);
	}
}

Test(config_parse, relative_pattern_with_slash)
{
	fake_set("FOLIO_FILES", "data/*.db");
	cr_expect_eq(parse(), -1);
	cr_expect_not(cfg.enabled);
	cr_expect(strstr(err, "FOLIO_FILES='data/*.db'"), "err: %s", err);
	cr_expect(strstr(err, "absolute"), "err: %s", err);
	config_free(&cfg);
}

Test(config_parse, unterminated_bracket_pattern)
{
	fake_set("FOLIO_FILES", "[abc");
	cr_expect_eq(parse(), -1);
	cr_expect_not(cfg.enabled);
	cr_expect(strstr(err, "FOLIO_FILES='[abc'"), "err: %s", err);
	config_free(&cfg);
}

Test(config_parse, sizes_rounded_down_to_pages)
{
	fake_set("FOLIO_CACHE_SIZE", "100000");
	PARSE_OK();
	cr_expect_eq(cfg.cache_size, 98304);
	cr_expect_eq(cfg.dirty_limit, 98304 / 2);
	config_free(&cfg);

	fake_reset();
	fake_set("FOLIO_DIRTY_LIMIT", "10000");
	fake_set("FOLIO_READAHEAD", "10000");
	PARSE_OK();
	cr_expect_eq(cfg.dirty_limit, 8192);
	cr_expect_eq(cfg.readahead, 8192);
	config_free(&cfg);

	/* The derived defaults are whole pages too: 17 pages / 2 -> 8 pages, / 4 -> 4. */
	fake_reset();
	fake_set("FOLIO_CACHE_SIZE", "69632");
	PARSE_OK();
	cr_expect_eq(cfg.cache_size, 69632);
	cr_expect_eq(cfg.dirty_limit, 32768);
	cr_expect_eq(cfg.readahead, 16384);
	config_free(&cfg);
}

/* ---- Fuzzing: random values for every variable ------------------------- */

/*
 * Every variable, given random values (garbage, huge and negative numbers,
 * empty strings, long strings, odd globs): config_parse() either accepts
 * them with every setting within its bounds, or refuses with one line that
 * names a variable; it never crashes or overruns.  FUZZ_SEED=N replays a
 * run (the seed is printed when a case fails).
 */
static const char *const fuzz_vars[] = {
	"FOLIO_FILES", "FOLIO_CACHE_SIZE", "FOLIO_DIRTY_LIMIT", "FOLIO_FLUSH_INTERVAL",
	"FOLIO_FLUSH_MODE", "FOLIO_READAHEAD", "FOLIO_STATS", "FOLIO_CALLERS", "FOLIO_LOG",
	"FOLIO_LOG_FILE", "FOLIO_DISABLE",
};

static uint64_t fuzz_state;

static uint64_t fuzz_next(void)
{
	/* xorshift64*: deterministic from the seed */
	fuzz_state ^= fuzz_state >> 12;
	fuzz_state ^= fuzz_state << 25;
	fuzz_state ^= fuzz_state >> 27;
	return fuzz_state * 0x2545f4914f6cdd1dull;
}

/* A random value into @buf (@size bytes), shaped like what people mistype. */
static const char *fuzz_value(char *buf, size_t size)
{
	static const char *const pieces[] = {
		"0", "1", "4096", "64K", "1T", "2T", "-1", "+5", " 7", "7 ", "K", "M", "G", "T",
		"99999999999999999999", "18446744073709551615", "0x10", "1e9", "*", "?", "[",
		"]", "[!a-z]", "**", "/", "//", "/..", "./", ":", "::", "\\", "\\*", "a", ".dat",
		"auto", "pwritev", "dontcache", "sync-range", "debug", "yes", "off", "TRUE", "%p",
		"\xff", "\x01", "\t", "\n", "é",
	};
	size_t len = 0;
	int parts = fuzz_next() % 8;

	if (fuzz_next() % 16 == 0) {	/* long: near and past PATH_MAX */
		size_t n = 3000 + fuzz_next() % 2000;

		for (len = 0; len < n && len < size - 1; len++)
			buf[len] = "ab*/?[]:"[fuzz_next() % 8];
		buf[len] = '\0';
		return buf;
	}
	for (int i = 0; i < parts; i++) {
		const char *p = pieces[fuzz_next() % ARRAY_SIZE(pieces)];
		size_t n = strlen(p);

		if (fuzz_next() % 4 == 0) {	/* a random byte, never NUL */
			buf[len++] = 1 + fuzz_next() % 255;
			continue;
		}
		if (len + n >= size)
			break;
		memcpy(buf + len, p, n);
		len += n;
	}
	buf[len] = '\0';
	return buf;
}

Test(config_parse, fuzzed_values_are_accepted_within_bounds_or_refused_in_one_line)
{
	static char values[ARRAY_SIZE(fuzz_vars)][6000];
	const char *seed = getenv("FUZZ_SEED");
	uint64_t first = seed ? strtoull(seed, NULL, 0) : 0x5eed0f0110ull;
	int accepted = 0, enabled = 0;

	for (int round = 0; round < 20000; round++) {
		int rc;

		fuzz_state = first + round * 0x9e3779b97f4a7c15ull;
		if (!fuzz_state)
			fuzz_state = 1;
		fake_reset();
		for (size_t v = 0; v < ARRAY_SIZE(fuzz_vars); v++)
			if (fuzz_next() % 3 == 0)
				fake_set(fuzz_vars[v], fuzz_value(values[v], sizeof(values[v])));
		rc = parse();
		if (rc == 0) {
			cr_assert(cfg.cache_size >= FOLIO_MIN_CACHE_SIZE &&
				  cfg.cache_size <= FOLIO_MAX_CACHE_SIZE &&
				  cfg.dirty_limit >= 4096 && cfg.dirty_limit <= cfg.cache_size &&
				  cfg.readahead <= cfg.cache_size / 4 && cfg.flush_interval_ms >= 1 &&
				  cfg.flush_interval_ms <= FOLIO_MAX_FLUSH_MS &&
				  cfg.callers <= FOLIO_MAX_CALLERS &&
				  cfg.enabled == (cfg.npatterns > 0 && cfg.enabled),
				  "seed %#llx: accepted out of bounds",
				  (unsigned long long)(first + round * 0x9e3779b97f4a7c15ull));
			accepted++;
			enabled += cfg.enabled;
			for (size_t i = 0; i < cfg.npatterns; i++)
				cr_assert(cfg.patterns[i][0] && !strchr(cfg.patterns[i], ':'));
		} else {
			cr_assert(rc == -1 && !strncmp(err, "FOLIO_", 6) && !strchr(err, '\n') &&
				  strlen(err) < sizeof(err) && !cfg.enabled,
				  "seed %#llx: refused with: %s",
				  (unsigned long long)(first + round * 0x9e3779b97f4a7c15ull), err);
		}
		config_free(&cfg);
	}
	/* The values reach past the first check: some are taken, some enable. */
	cr_expect(accepted > 300 && accepted < 19000 && enabled > 50,
		  "%d accepted, %d enabled of 20000", accepted, enabled);
}
