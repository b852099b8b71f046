/*
 * pathmatch.c - see pathmatch.h.
 *
 * The matcher follows git's wildmatch(): recursion only at stars, and the
 * ABORT_* results stop the outer loops early so that patterns such as
 * "*a*a*a*a*b" stay polynomial.
 */
#include <limits.h>
#include <string.h>

#include "pathmatch.h"

enum { MATCH, NOMATCH, ABORT_ALL, ABORT_TO_STARSTAR };

/*
 * The ']' closing the set that starts at @p ('['), or NULL if it never
 * closes.  A ']' right after "[", "[!" or "[^" belongs to the set.
 */
static const char *bracket_end(const char *p)
{
	p++;
	if (*p == '!' || *p == '^')
		p++;
	if (*p == ']')
		p++;
	for (; *p && *p != ']'; p++)
		if (*p == '\\' && p[1])
			p++;
	return *p ? p : NULL;
}

/*
 * Does @c belong to the set from @p ('[') to @end (its ']')?  Bytes compare
 * as unsigned values: [a-\xff] holds 'z' and 0x80 alike.
 */
static bool match_bracket(const char *p, const char *end, unsigned char c)
{
	bool negate = false, found = false;

	p++;
	if (*p == '!' || *p == '^') {
		negate = true;
		p++;
	}
	for (; p < end; p++) {
		unsigned char lo = *p, hi;

		if (lo == '\\' && p + 1 < end)
			lo = *++p;
		hi = lo;
		if (p[1] == '-' && p + 2 < end) {
			p += 2;
			hi = *p;
			if (hi == '\\' && p + 1 < end)
				hi = *++p;
		}
		if (c >= lo && c <= hi)
			found = true;
	}
	return c != '/' && found != negate;
}

static int do_match(const char *p, const char *t)
{
	const char *pattern_start = p;

	for (; *p; p++, t++) {
		const char *set_end;
		bool cross;

		if (*t == '\0' && *p != '*')
			return ABORT_ALL;
		switch (*p) {
		case '\\':
			if (p[1])
				p++;
			if (*t != *p)
				return NOMATCH;
			break;
		case '?':
			if (*t == '/')
				return NOMATCH;
			break;
		case '[':
			set_end = bracket_end(p);
			if (!set_end) {		/* never closes: a literal '[' */
				if (*t != '[')
					return NOMATCH;
				break;
			}
			if (!match_bracket(p, set_end, *t))
				return NOMATCH;
			p = set_end;
			break;
		case '*':
			cross = p[1] == '*';
			while (p[1] == '*')
				p++;
			p++;
			if (*p == '\0')
				return (!cross && strchr(t, '/')) ? ABORT_TO_STARSTAR : MATCH;
			/* A '**' between slashes may stand for no directory. */
			if (cross && *p == '/' && p - 3 >= pattern_start && p[-3] == '/' &&
			    do_match(p + 1, t) == MATCH)
				return MATCH;
			for (; *t; t++) {
				int r = do_match(p, t);

				if (r != NOMATCH && (!cross || r != ABORT_TO_STARSTAR))
					return r;
				if (!cross && *t == '/')
					return ABORT_TO_STARSTAR;
			}
			return ABORT_ALL;
		default:
			if (*t != *p)
				return NOMATCH;
			break;
		}
	}
	return *t ? NOMATCH : MATCH;
}

bool path_match(const char *pattern, const char *text)
{
	return do_match(pattern, text) == MATCH;
}

const char *pattern_error(const char *pattern)
{
	size_t len = strlen(pattern);

	if (len == 0)
		return "empty pattern";
	if (len >= PATH_MAX)
		return "pattern longer than PATH_MAX";
	if (memchr(pattern, '/', len) && pattern[0] != '/')
		return "a pattern containing '/' must be an absolute path";
	for (const char *p = pattern; *p; p++) {
		if (*p == '\\' && p[1]) {
			p++;
		} else if (*p == '[') {
			p = bracket_end(p);
			if (!p)
				return "unterminated '['";
		}
	}
	return NULL;
}

int path_normalize(const char *base, const char *path, char *out, size_t size)
{
	size_t len = 0;
	const char *parts[2] = { path[0] == '/' ? "" : base, path };

	if (size < 2)
		return -1;
	out[len++] = '/';
	for (int i = 0; i < 2; i++) {
		const char *s = parts[i];

		while (*s) {
			const char *comp;
			size_t n;

			while (*s == '/')
				s++;
			comp = s;
			while (*s && *s != '/')
				s++;
			n = s - comp;
			if (n == 0 || (n == 1 && comp[0] == '.'))
				continue;
			if (n == 2 && comp[0] == '.' && comp[1] == '.') {
				while (len > 1 && out[len - 1] != '/')
					len--;
				if (len > 1)
					len--;	/* the '/' before the removed component */
				continue;
			}
			if (len + (len > 1) + n + 1 > size)
				return -1;
			if (len > 1)
				out[len++] = '/';
			memmove(out + len, comp, n);	/* @out may be @path */
			len += n;
		}
	}
	out[len] = '\0';
	return 0;
}

void path_basename(const char *path, char *out, size_t size)
{
	size_t end = strlen(path), start, n;

	if (size == 0)
		return;
	while (end > 0 && path[end - 1] == '/')
		end--;
	start = end;
	while (start > 0 && path[start - 1] != '/')
		start--;
	n = end - start;
	if (n >= size)
		n = size - 1;
	memcpy(out, path + start, n);
	out[n] = '\0';
}
