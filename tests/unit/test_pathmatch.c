/*
 * test_pathmatch.c - unit tests for shim/pathmatch.c: path_match(),
 * pattern_error(), path_normalize() and path_basename().
 */
#include <criterion/criterion.h>
#include <limits.h>
#include <stdint.h>
#include <string.h>

#include "compiler.h"
#include "pathmatch.h"

struct match_case {
	const char *pattern;
	const char *text;
	bool match;
};

static void check_matches(const struct match_case *cases, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const struct match_case *c = &cases[i];

		cr_expect_eq(path_match(c->pattern, c->text), c->match,
			     "path_match(\"%s\", \"%s\") should be %s",
			     c->pattern, c->text, c->match ? "true" : "false");
	}
}

#define CHECK_MATCHES(cases) check_matches(cases, ARRAY_SIZE(cases))

/* ---- path_match() ---------------------------------------------------- */

Test(path_match, literal)
{
	static const struct match_case cases[] = {
		{ "/data/app.db",	"/data/app.db",		true },
		{ "app.db",		"app.db",		true },
		{ "",			"",			true },
		{ "/data/app.db",	"/data/app.dbx",	false },
		{ "/data/app.db",	"/data/app.d",		false },
		{ "/data/app.db",	"/data/app",		false },
		{ "app.db",		"App.db",		false },
		{ "app.db",		"",			false },
		{ "",			"x",			false },
	};

	CHECK_MATCHES(cases);
}

Test(path_match, star_does_not_cross_slash)
{
	static const struct match_case cases[] = {
		{ "*",			"anything",		true },
		{ "*",			"",			true },
		{ "*",			"a/b",			false },
		{ "/data/*",		"/data/x.db",		true },
		{ "/data/*",		"/data/",		true },
		{ "/data/*",		"/data/x/y.db",		false },
		{ "/data/*.db",		"/data/x.db",		true },
		{ "/data/*.db",		"/data/sub/x.db",	false },
		{ "/*/x.db",		"/data/x.db",		true },
		{ "/*/x.db",		"/a/b/x.db",		false },
		{ "/d*a/x",		"/data/x",		true },
		{ "/d*a/x",		"/dat/a/x",		false },
		{ "a*b*c",		"aXXbYYc",		true },
		{ "a*b*c",		"abc",			true },
		{ "a*b*c",		"aXXbYY",		false },
	};

	CHECK_MATCHES(cases);
}

Test(path_match, double_star_crosses_slash)
{
	static const struct match_case cases[] = {
		{ "/data/**",		"/data/x.db",		true },
		{ "/data/**",		"/data/a/b/c/x.db",	true },
		{ "/data/**",		"/data/",		true },
		{ "/data/**",		"/other/x.db",		false },
		{ "/data/**.db",	"/data/a/b/x.db",	true },
		{ "/data/**.db",	"/data/a/b/x.txt",	false },
		{ "**",			"/any/path/at/all",	true },
		{ "/**/x.db",		"/x.db",		true },
		{ "/**/x.db",		"/a/b/x.db",		true },
		{ "/**/*.db",		"/a/b/c.db",		true },
		{ "/**/*.db",		"/a/b/c.txt",		false },
	};

	CHECK_MATCHES(cases);
}

Test(path_match, double_star_between_slashes)
{
	static const struct match_case cases[] = {
		{ "/a/**/b",		"/a/b",			true },
		{ "/a/**/b",		"/a/x/b",		true },
		{ "/a/**/b",		"/a/x/y/b",		true },
		{ "/a/**/b",		"/a/x/y/z/b",		true },
		{ "/a/**/b",		"/a/b/c",		false },
		{ "/a/**/b",		"/a/xb",		false },
		{ "/a/**/b",		"/ab",			false },
		{ "/a/**/b",		"/b",			false },
		{ "/a/**/b/*.db",	"/a/b/c.db",		true },
		{ "/a/**/b/*.db",	"/a/x/y/b/c.db",	true },
		{ "/a/**/b/*.db",	"/a/x/y/b/q/c.db",	false },
	};

	CHECK_MATCHES(cases);
}

Test(path_match, question_mark)
{
	static const struct match_case cases[] = {
		{ "?",			"a",			true },
		{ "?",			"",			false },
		{ "?",			"ab",			false },
		{ "?",			"/",			false },
		{ "/a?b",		"/axb",			true },
		{ "/a?b",		"/a/b",			false },
		{ "x.d?",		"x.db",			true },
		{ "x.d?",		"x.d",			false },
	};

	CHECK_MATCHES(cases);
}

Test(path_match, brackets)
{
	static const struct match_case cases[] = {
		/* plain set */
		{ "[abc]",		"a",			true },
		{ "[abc]",		"c",			true },
		{ "[abc]",		"d",			false },
		{ "[abc]",		"",			false },
		{ "x[abc]y",		"xby",			true },
		{ "x[abc]y",		"xdy",			false },
		/* range */
		{ "[a-z]",		"a",			true },
		{ "[a-z]",		"m",			true },
		{ "[a-z]",		"z",			true },
		{ "[a-z]",		"A",			false },
		{ "[a-z]",		"0",			false },
		{ "[a-z]",		"/",			false },
		{ "[a-cx-z]",		"y",			true },
		{ "[a-cx-z]",		"m",			false },
		{ "[a-]",		"-",			true },
		{ "[a-]",		"a",			true },
		{ "[a-]",		"b",			false },
		/* negated with '!' */
		{ "[!a-z]",		"A",			true },
		{ "[!a-z]",		"5",			true },
		{ "[!a-z]",		"q",			false },
		{ "[!a-z]",		"/",			false },
		/* negated with '^' */
		{ "[^0-9]",		"x",			true },
		{ "[^0-9]",		"7",			false },
		{ "[^0-9]",		"/",			false },
		/* ']' first is a member of the set */
		{ "[]]",		"]",			true },
		{ "[]]",		"a",			false },
		{ "[]a]",		"a",			true },
		{ "[]a]",		"]",			true },
		{ "[]a]",		"b",			false },
		{ "[!]]",		"a",			true },
		{ "[!]]",		"]",			false },
		{ "[^]]",		"]",			false },
		/* escapes inside a set */
		{ "[\\]]",		"]",			true },
		{ "[\\]]",		"\\",			false },
		/* a set never matches '/', even one that lists it */
		{ "[/]",		"/",			false },
		{ "a[/]b",		"a/b",			false },
		/* with stars */
		{ "/data/[0-9]*.db",	"/data/2024.db",	true },
		{ "/data/[0-9]*.db",	"/data/x2024.db",	false },
	};

	CHECK_MATCHES(cases);
}

/*
 * Ranges compare bytes as unsigned values (folio(7): byte by byte): a range
 * across 0x7f/0x80 holds ASCII and non-ASCII bytes alike.  Found by
 * tests/fuzz/fuzz_config.c: "[\x01-\xff]" matched no ASCII letter, as the
 * bytes were compared as signed chars.
 */
Test(path_match, ranges_of_bytes_past_ascii)
{
	static const struct match_case cases[] = {
		{ "[\x01-\xff]",		"a",			true },
		{ "[\x01-\xff]",		"\xe9",		true },
		{ "[a-\xff]",		"z",			true },
		{ "[a-\xff]",		"\x80",		true },
		{ "[a-\xff]",		"A",			false },
		{ "[\x7f-\x80]",		"\x7f",		true },
		{ "[\x7f-\x80]",		"\x80",		true },
		{ "[\x7f-\x80]",		"a",			false },
		{ "[\x80-\xff]*",		"\xc3\xa9t\xc3\xa9",	true },
		{ "[\x80-\xff]*",		"ete",			false },
		{ "[!\x80-\xff]*",	"ete",			true },
		{ "[!\x80-\xff]*",	"\xc3\xa9t\xc3\xa9",	false },
		{ "[\xff-a]",		"b",			false },
		{ "[\x01-\xff]",		"/",			false },
	};

	CHECK_MATCHES(cases);
}

Test(path_match, escapes)
{
	static const struct match_case cases[] = {
		{ "\\*",		"*",			true },
		{ "\\*",		"x",			false },
		{ "\\*",		"",			false },
		{ "a\\*b",		"a*b",			true },
		{ "a\\*b",		"axb",			false },
		{ "\\[abc]",		"[abc]",		true },
		{ "\\[abc]",		"a",			false },
		{ "\\?",		"?",			true },
		{ "\\?",		"x",			false },
		{ "\\\\",		"\\",			true },
		{ "\\a",		"a",			true },
		/* a trailing backslash stands for itself */
		{ "a\\",		"a\\",			true },
		/* an escaped '/' is a '/', after a star too (glibc's fnmatch disagrees) */
		{ "a\\/b",		"a/b",			true },
		{ "*\\/b",		"a/b",			true },
		{ "/d/*\\/*.db",	"/d/x/y.db",		true },
		{ "*\\/b",		"a/c/b",		false },
	};

	CHECK_MATCHES(cases);
}

Test(path_match, unterminated_bracket_is_literal)
{
	static const struct match_case cases[] = {
		{ "[abc",		"[abc",			true },
		{ "[abc",		"a",			false },
		{ "[abc",		"abc",			false },
		{ "x[",			"x[",			true },
		{ "x[",			"x",			false },
		{ "[",			"[",			true },
		{ "[]",			"[]",			true },
		{ "*[ab",		"foo[ab",		true },
	};

	CHECK_MATCHES(cases);
}

Test(path_match, base_name_patterns)
{
	static const struct match_case cases[] = {
		{ "*.db",		"foo.db",		true },
		{ "*.db",		"foo.dbx",		false },
		{ "*.db",		".db",			true },
		{ "*.db",		"foo.db.bak",		false },
		{ "*.db",		"db",			false },
		{ "*.db",		"dir/foo.db",		false },
		{ "foo.*",		"foo.db",		true },
		{ "foo.*",		"foo.",			true },
		{ "foo.*",		"foo",			false },
		{ "*.db-*",		"foo.db-wal",		true },
		{ "*.db-*",		"foo.db",		false },
	};

	CHECK_MATCHES(cases);
}

Test(path_match, pathological_pattern_fails, .timeout = 10)
{
	char text[201];

	memset(text, 'a', 200);
	text[200] = '\0';
	/* Exponential backtracking would hang here; the matcher must not. */
	cr_expect_not(path_match("*a*a*a*a*a*a*a*a*b", text));
	cr_expect_not(path_match("**a**a**a**a**a**a**a**a**b", text));
	/* ...and the same pattern still matches when it should. */
	text[199] = 'b';
	cr_expect(path_match("*a*a*a*a*a*a*a*a*b", text));
}

/* ---- pattern_error() ------------------------------------------------- */

Test(pattern_error, valid_patterns)
{
	static const char *const valid[] = {
		"*.db", "/data/**", "/a/**/b", "foo.db", "[abc]", "[]]", "[!a-z]*",
		"\\[abc", "/data/\\[x", "?", "**",
	};

	for (size_t i = 0; i < ARRAY_SIZE(valid); i++)
		cr_expect_null(pattern_error(valid[i]),
			       "pattern_error(\"%s\") should be NULL, got \"%s\"", valid[i],
			       pattern_error(valid[i]));
}

Test(pattern_error, invalid_patterns)
{
	static const struct {
		const char *pattern;
		const char *why;	/* a substring of the message */
	} cases[] = {
		{ "",			"empty" },
		{ "data/*.db",		"absolute" },
		{ "./x.db",		"absolute" },
		{ "*/x.db",		"absolute" },
		{ "[abc",		"unterminated '['" },
		{ "/data/[a-z",		"unterminated '['" },
		{ "x[]",		"unterminated '['" },
		{ "[!]",		"unterminated '['" },
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		const char *msg = pattern_error(cases[i].pattern);

		cr_expect_not_null(msg, "pattern_error(\"%s\") should be an error",
				   cases[i].pattern);
		if (msg)
			cr_expect(strstr(msg, cases[i].why),
				  "pattern_error(\"%s\") = \"%s\", expected it to mention \"%s\"",
				  cases[i].pattern, msg, cases[i].why);
	}
}

Test(pattern_error, length_limit)
{
	static char pattern[PATH_MAX + 1];

	memset(pattern, 'a', PATH_MAX);
	pattern[0] = '/';
	pattern[PATH_MAX] = '\0';

	/* PATH_MAX characters: too long. */
	cr_expect_not_null(pattern_error(pattern));
	if (pattern_error(pattern))
		cr_expect(strstr(pattern_error(pattern), "PATH_MAX"));

	/* One less fits. */
	pattern[PATH_MAX - 1] = '\0';
	cr_expect_null(pattern_error(pattern));
}

/* ---- path_normalize() ------------------------------------------------ */

Test(path_normalize, table)
{
	static const struct {
		const char *base, *path, *want;
	} cases[] = {
		/* absolute paths ignore the base */
		{ "/base",	"/a/b",			"/a/b" },
		{ "/base",	"/",			"/" },
		/* relative paths are joined with it */
		{ "/base/dir",	"a/b",			"/base/dir/a/b" },
		{ "/base/dir",	"x.db",			"/base/dir/x.db" },
		{ "/",		"x.db",			"/x.db" },
		{ "/base/dir/",	"x.db",			"/base/dir/x.db" },
		{ "/base",	"",			"/base" },
		{ "/base",	".",			"/base" },
		/* repeated slashes collapse */
		{ "/base",	"//a///b",		"/a/b" },
		{ "//base//dir", "a//b",		"/base/dir/a/b" },
		/* "." components go */
		{ "/base",	"/a/./b/.",		"/a/b" },
		{ "/base",	"./a",			"/base/a" },
		/* ".." pops one component, never above "/" */
		{ "/base",	"/a/b/../c",		"/a/c" },
		{ "/base",	"/a/b/../..",		"/" },
		{ "/base",	"/../x",		"/x" },
		{ "/base",	"/../../..",		"/" },
		{ "/base/dir",	"../x",			"/base/x" },
		{ "/base/dir",	"a/b/../../..",		"/base" },
		{ "/base/dir",	"../../../../x",	"/x" },
		/* names that only look like dots */
		{ "/base",	"/a/.../b",		"/a/.../b" },
		{ "/base",	"/a/..b/.c",		"/a/..b/.c" },
		/* trailing slashes go */
		{ "/base",	"/a/b/",		"/a/b" },
		{ "/base",	"/a/b///",		"/a/b" },
		{ "/base",	"a/",			"/base/a" },
	};
	char out[PATH_MAX];

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		int rc;

		memset(out, 'X', sizeof(out));
		rc = path_normalize(cases[i].base, cases[i].path, out, sizeof(out));
		cr_expect_eq(rc, 0, "path_normalize(\"%s\", \"%s\") returned %d",
			     cases[i].base, cases[i].path, rc);
		if (rc == 0)
			cr_expect_str_eq(out, cases[i].want,
					 "path_normalize(\"%s\", \"%s\") = \"%s\", want \"%s\"",
					 cases[i].base, cases[i].path, out, cases[i].want);
	}
}

Test(path_normalize, result_too_long)
{
	char out[5];

	/* "/abc" needs exactly 5 bytes with its NUL. */
	cr_expect_eq(path_normalize("/", "/abc", out, sizeof(out)), 0);
	cr_expect_str_eq(out, "/abc");
	cr_expect_eq(path_normalize("/", "/a/b", out, sizeof(out)), 0);
	cr_expect_str_eq(out, "/a/b");
	cr_expect_eq(path_normalize("/", "/", out, 2), 0);
	cr_expect_str_eq(out, "/");

	cr_expect_eq(path_normalize("/", "/abcd", out, sizeof(out)), -1);
	cr_expect_eq(path_normalize("/", "/a/bc", out, sizeof(out)), -1);
	cr_expect_eq(path_normalize("/ab", "cd", out, sizeof(out)), -1);
	cr_expect_eq(path_normalize("/", "/", out, 1), -1);
	cr_expect_eq(path_normalize("/", "/", out, 0), -1);
}

Test(path_normalize, long_path_against_path_max)
{
	static char path[PATH_MAX + 2];
	static char out[PATH_MAX];

	/* "/" followed by PATH_MAX - 2 letters: PATH_MAX - 1 characters, fits. */
	memset(path, 'a', sizeof(path));
	path[0] = '/';
	path[PATH_MAX - 1] = '\0';
	cr_expect_eq(path_normalize("/", path, out, sizeof(out)), 0);
	cr_expect_eq(strlen(out), (size_t)PATH_MAX - 1);

	/* One more letter does not. */
	path[PATH_MAX - 1] = 'a';
	path[PATH_MAX] = '\0';
	cr_expect_eq(path_normalize("/", path, out, sizeof(out)), -1);
}

/* ---- path_basename() ------------------------------------------------- */

Test(path_basename, table)
{
	static const struct {
		const char *path, *want;
	} cases[] = {
		{ "a/b/c.db",		"c.db" },
		{ "/a/b/c.db",		"c.db" },
		{ "c.db",		"c.db" },
		{ "a/b/",		"b" },
		{ "a/b///",		"b" },
		{ "/a",			"a" },
		{ "/",			"" },
		{ "///",		"" },
		{ "",			"" },
	};
	char out[64];

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		memset(out, 'X', sizeof(out));
		path_basename(cases[i].path, out, sizeof(out));
		cr_expect_str_eq(out, cases[i].want, "path_basename(\"%s\") = \"%s\", want \"%s\"",
				 cases[i].path, out, cases[i].want);
	}
}

Test(path_basename, truncates_to_buffer)
{
	char out[8];

	memset(out, 'X', sizeof(out));
	path_basename("/dir/abcdefghij", out, 4);
	cr_expect_str_eq(out, "abc");
	cr_expect_eq(out[4], 'X', "wrote past the buffer");

	path_basename("/dir/abc", out, 4);
	cr_expect_str_eq(out, "abc");

	path_basename("/dir/abcd/", out, 4);
	cr_expect_str_eq(out, "abc");

	path_basename("/dir/abc", out, 1);
	cr_expect_str_eq(out, "");
}

/* ---- Fuzzing ------------------------------------------------------------ */

static uint64_t fuzz_state = 0x9a7c4ed5eedull;

static unsigned int fuzz_next(unsigned int bound)
{
	fuzz_state ^= fuzz_state >> 12;
	fuzz_state ^= fuzz_state << 25;
	fuzz_state ^= fuzz_state >> 27;
	return (fuzz_state * 0x2545f4914f6cdd1dull >> 33) % bound;
}

static void fuzz_string(char *buf, size_t size, const char *alphabet)
{
	size_t len = fuzz_next(fuzz_next(8) ? 24 : size - 1), n = strlen(alphabet);

	for (size_t i = 0; i < len; i++)
		buf[i] = alphabet[fuzz_next(n)];
	buf[len] = '\0';
}

/*
 * Random patterns (globs, brackets, escapes, "**", odd slashes) against
 * random paths: nothing crashes or overruns, an invalid pattern is said to
 * be, a pattern without metacharacters matches only itself, and paths
 * normalise into PATH_MAX.
 */
Test(pathmatch, fuzzed_patterns_and_paths, .timeout = 30)
{
	static char pattern[PATH_MAX + 64], text[PATH_MAX + 64], out[PATH_MAX];

	for (int round = 0; round < 100000; round++) {
		const char *why;

		fuzz_string(pattern, sizeof(pattern), "ab*?[]!-^\\/.");
		fuzz_string(text, sizeof(text), "ab/.-]");
		why = pattern_error(pattern);
		if (!why)
			(void)path_match(pattern, text);
		else
			cr_assert(why[0], "empty reason for '%s'", pattern);
		if (!strpbrk(pattern, "*?[\\") && !why)
			cr_assert_eq(path_match(pattern, text), !strcmp(pattern, text),
				     "literal '%s' against '%s'", pattern, text);
		if (path_normalize("/base", text, out, sizeof(out)) == 0)
			cr_assert(out[0] == '/' && strlen(out) < sizeof(out) && !strstr(out, "//"),
				  "'%s' normalised to '%s'", text, out);
	}
}

/* Stars against a long near-miss: polynomial, no backtracking blow-up. */
Test(pathmatch, many_stars_against_a_long_name, .timeout = 30)
{
	static char text[4001];

	memset(text, 'a', sizeof(text) - 1);
	cr_expect(!path_match("*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b", text));
	cr_expect(!path_match("/**/a/**/a/**/a/**/b", "/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/c"));
	cr_expect(path_match("*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a", text));
}
