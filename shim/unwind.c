/*
 * unwind.c - see unwind.h.  Calls bind, log, real and libc only.
 */
#include <dlfcn.h>
#include <elf.h>
#include <link.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/*
 * For the types only.  The header renames unw_step and the rest to the
 * library's symbols by macro; every call here goes through the pointers
 * below, resolved by those names.
 */
#define UNW_LOCAL_ONLY
#include <libunwind.h>

#include "bind.h"
#include "compiler.h"
#include "log.h"
#include "real.h"
#include "unwind.h"

#define UNWIND_LIBRARY		"libunwind.so.8"
/* unw_backtrace() starts at its return address: in unwind_backtrace(). */
#define UNWIND_OWN_FRAMES	1
#define UNWIND_MAX_FRAMES	128

/*
 * Under ThreadSanitizer, unwind_backtrace() steps a cursor itself instead
 * of calling unw_backtrace().  unw_backtrace()'s fast path (tdep_trace)
 * gives each thread a trace cache that a pthread key destructor frees;
 * like TSan's own key destructor, it waits for the last of glibc's
 * PTHREAD_DESTRUCTOR_ITERATIONS rounds, and TSan's key is older, so TSan
 * has destroyed the thread's state when libunwind's mempool_free() calls
 * pthread_mutex_lock() (TSan's interceptor): every thread that took a
 * sample segfaults as it exits.  The cursor loop is unw_backtrace()'s own
 * slow path and keeps no per-thread state.
 */
#ifdef __SANITIZE_THREAD__
#define UNWIND_STEP_ONLY	1
#else
#define UNWIND_STEP_ONLY	0
#endif

static struct {
	int (*backtrace)(void **ips, int size);
	int (*getcontext)(unw_context_t *uc);
	int (*init_local2)(unw_cursor_t *cursor, unw_context_t *uc, int flags);
	int (*step)(unw_cursor_t *cursor);
	int (*get_reg)(unw_cursor_t *cursor, int reg, unw_word_t *val);
} unw;

/* Set, with release, once every pointer in unw is valid. */
static bool loaded;
__thread bool unwind_active __attribute__((tls_model("initial-exec")));
/* 0: not tried, 1: being loaded, 2: tried.  Not a pthread_once: the
 * dlopen() may open files, and an open in the thread that is loading
 * comes back to unwind_load() (cache_ofile_opened()). */
static int load_state;

static void load(void)
{
	static struct bind_snapshot before;	/* under load_state */
	void *lib;

	bind_snapshot(&before);
	lib = dlopen(UNWIND_LIBRARY, RTLD_NOW | RTLD_LOCAL);

	if (!lib) {
		log_info("no backtraces: %s", dlerror());
		return;
	}
	unw.backtrace = dlsym(lib, "unw_backtrace");
	unw.init_local2 = dlsym(lib, "_ULx86_64_init_local2");
	unw.step = dlsym(lib, "_ULx86_64_step");
	unw.get_reg = dlsym(lib, "_ULx86_64_get_reg");
	unw.getcontext = dlsym(lib, "_Ux86_64_getcontext");
	if (!unw.backtrace || !unw.init_local2 || !unw.step || !unw.get_reg ||
	    (UNWIND_STEP_ONLY && !unw.getcontext)) {
		log_info("no backtraces: %s lacks an entry point folio uses", UNWIND_LIBRARY);
		dlclose(lib);
		return;
	}
	bind_library_to_libc(lib, &before);
	__atomic_store_n(&loaded, true, __ATOMIC_RELEASE);
}

bool unwind_load(void)
{
	int state = 0;

	if (__atomic_compare_exchange_n(&load_state, &state, 1, false, __ATOMIC_ACQUIRE,
					__ATOMIC_RELAXED)) {
		load();
		__atomic_store_n(&load_state, 2, __ATOMIC_RELEASE);
	}
	return __atomic_load_n(&loaded, __ATOMIC_ACQUIRE);
}

/* The return addresses from @uc's frame outwards into @ips, at most @max. */
static int step_frames(unw_context_t *uc, int flags, void **ips, int max)
{
	unw_cursor_t cursor;
	unw_word_t ip;
	int n = 0;

	if (unw.init_local2(&cursor, uc, flags) == 0) {
		/* ips[0] may be 0 (a call through NULL): libunwind steps past it. */
		while (n < max && unw.get_reg(&cursor, UNW_REG_IP, &ip) == 0) {
			ips[n++] = (void *)ip;
			if (unw.step(&cursor) <= 0)
				break;
		}
	}
	return n;
}

__attribute__((noinline)) int unwind_backtrace(void **ips, int max, int skip)
{
	void *all[UNWIND_MAX_FRAMES];
	int n, drop = UNWIND_OWN_FRAMES + skip;
	unw_context_t uc;

	if (!__atomic_load_n(&loaded, __ATOMIC_ACQUIRE) || max <= 0 || skip < 0 ||
	    drop >= UNWIND_MAX_FRAMES)
		return 0;
	if (max > UNWIND_MAX_FRAMES - drop)
		max = UNWIND_MAX_FRAMES - drop;
	unwind_active = true;
	/* Both start at the return address in this function (see UNWIND_STEP_ONLY). */
	if (!UNWIND_STEP_ONLY)
		n = unw.backtrace(all, drop + max);
	else
		n = unw.getcontext(&uc) ? 0 : step_frames(&uc, 0, all, drop + max);
	n -= drop;
	unwind_active = false;
	if (n <= 0)
		return 0;
	memcpy(ips, all + drop, n * sizeof(*ips));
	return n;
}

int unwind_backtrace_context(void *uc, void **ips, int max)
{
	int n;

	if (!__atomic_load_n(&loaded, __ATOMIC_ACQUIRE))
		return 0;
	unwind_active = true;
	n = step_frames(uc, UNW_INIT_SIGNAL_FRAME, ips, max);
	unwind_active = false;
	return n;
}

/* The last component of @path. */
static const char *base_name(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash ? slash + 1 : path;
}

/*
 * The function symbol of the ELF file @elf (@size bytes) whose extent holds
 * the address @addr (as the file numbers it): .symtab, which has the static
 * functions too, else .dynsym.  Returns the name (in @elf) and sets @off,
 * or NULL.  Checks every offset against @size: the file may be anything.
 */
static const char *elf_function(const char *elf, size_t size, uintptr_t addr, uintptr_t *off)
{
	const ElfW(Ehdr) *eh = (const void *)elf;
	const ElfW(Shdr) *sh;

	if (size < sizeof(*eh) || memcmp(eh->e_ident, ELFMAG, SELFMAG) ||
	    eh->e_ident[EI_CLASS] != ELFCLASS64 || eh->e_shentsize != sizeof(*sh) ||
	    eh->e_shoff > size || eh->e_shnum > (size - eh->e_shoff) / sizeof(*sh))
		return NULL;
	sh = (const void *)(elf + eh->e_shoff);
	for (int pass = 0; pass < 2; pass++) {
		for (unsigned int i = 0; i < eh->e_shnum; i++) {
			const ElfW(Shdr) *tab = &sh[i], *str = &sh[tab->sh_link];
			const ElfW(Sym) *sym = (const void *)(elf + tab->sh_offset);
			size_t n = tab->sh_size / sizeof(*sym);

			if (tab->sh_type != (pass ? SHT_DYNSYM : SHT_SYMTAB) ||
			    tab->sh_link >= eh->e_shnum || tab->sh_offset > size ||
			    n > (size - tab->sh_offset) / sizeof(*sym) || str->sh_offset > size ||
			    str->sh_size > size - str->sh_offset)
				continue;
			for (size_t j = 0; j < n; j++) {
				if (ELF64_ST_TYPE(sym[j].st_info) != STT_FUNC ||
				    sym[j].st_shndx == SHN_UNDEF || addr < sym[j].st_value ||
				    addr - sym[j].st_value >= sym[j].st_size ||
				    sym[j].st_name >= str->sh_size ||
				    !memchr(elf + str->sh_offset + sym[j].st_name, '\0',
					    str->sh_size - sym[j].st_name))
					continue;
				*off = addr - sym[j].st_value;
				return elf + str->sh_offset + sym[j].st_name;
			}
		}
	}
	return NULL;
}

/* "function+0xoff" for @addr in the file @path, from its symbol tables. */
static bool symbol_name(const char *path, uintptr_t addr, char *buf, size_t len)
{
	int fd = real_open(path, O_RDONLY | O_CLOEXEC, 0);
	const char *name = NULL;
	struct stat st;
	uintptr_t off;
	void *elf;

	if (fd < 0)
		return false;
	elf = real_fstat(fd, &st) || st.st_size <= 0 ? MAP_FAILED :
	      real_mmap(NULL, st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	real_close(fd);
	if (elf == MAP_FAILED)
		return false;
	name = elf_function(elf, st.st_size, addr, &off);
	if (name)
		snprintf(buf, len, "%s+0x%lx", name, (unsigned long)off);
	real_munmap(elf, st.st_size);
	return name != NULL;
}

void unwind_name(void *ip, char *buf, size_t len)
{
	struct link_map *obj;
	uintptr_t addr;
	Dl_info info;

	if (!len)
		return;
	if (!dladdr1(ip, &info, (void **)&obj, RTLD_DL_LINKMAP) || !obj) {
		snprintf(buf, len, "0x%lx", (unsigned long)(uintptr_t)ip);
		return;
	}
	/* Symbol values and addr2line count from the object's load bias. */
	addr = (uintptr_t)ip - obj->l_addr;
	if (symbol_name(obj->l_name[0] ? obj->l_name : "/proc/self/exe", addr, buf, len))
		return;
	snprintf(buf, len, "%s+0x%lx", obj->l_name[0] ? base_name(obj->l_name) :
		 info.dli_fname && info.dli_fname[0] ? base_name(info.dli_fname) : "program",
		 (unsigned long)addr);
}
