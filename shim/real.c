/*
 * real.c - resolving libc's own implementations of the interposed functions.
 *
 * Owns folio_real (see real.h).  Calls bind (first: folio's other calls to
 * libc land in libc from then on), dlsym/dlvsym and raw system calls.
 */
#include <dlfcn.h>

#include "bind.h"
#include "real.h"

struct folio_real folio_real;

/* Set while this thread is inside real_resolve(): nested calls use fallbacks. */
static __thread int resolving;
/* The table is complete: an entry still NULL does not exist in this libc. */
static int resolved;

static void *lookup(const char *name)
{
	return dlsym(RTLD_NEXT, name);
}

static void *lookup_version(const char *name, const char *version)
{
	void *fn = dlvsym(RTLD_NEXT, name, version);

	return fn ? fn : lookup(name);
}

/*
 * Entries are stored with relaxed atomics: two threads resolving at once
 * store the same values, and a reader sees either NULL (and resolves) or the
 * final pointer.
 */
#define STORE(member, value) __atomic_store_n(&folio_real.member, value, __ATOMIC_RELAXED)

void real_resolve(void)
{
	int saved_errno = errno;

	if (resolving || __atomic_load_n(&resolved, __ATOMIC_ACQUIRE))
		return;
	resolving = 1;
	bind_to_libc();
#define RESOLVE(ret, name, proto, params, args, fallback) \
	STORE(name, (ret (*) proto)lookup(#name));
	FOLIO_REAL_FUNCS(RESOLVE)
#undef RESOLVE
	STORE(posix_spawn_2_2_5, (posix_spawn_fn)lookup_version("posix_spawn", "GLIBC_2.2.5"));
	STORE(posix_spawnp_2_2_5, (posix_spawn_fn)lookup_version("posix_spawnp", "GLIBC_2.2.5"));
	resolving = 0;
	__atomic_store_n(&resolved, 1, __ATOMIC_RELEASE);
	errno = saved_errno;
}

#define UNRESOLVED(ret, name, proto, params, args, fallback) \
	ret real_##name##_unresolved params \
	{ \
		ret (*fn) proto; \
		real_resolve(); \
		fn = __atomic_load_n(&folio_real.name, __ATOMIC_RELAXED); \
		if (fn) \
			return fn args; \
		return (ret)(fallback); \
	}
FOLIO_REAL_FUNCS(UNRESOLVED)
#undef UNRESOLVED
