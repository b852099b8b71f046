/*
 * bind.c - see bind.h.  Calls dladdr1, dlsym, dlvsym, dlinfo, dl_iterate_phdr
 * and, through a pointer looked up with dlsym, mprotect; nothing of folio's.
 */
#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <gnu/lib-names.h>
#include <link.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/mman.h>

#include "bind.h"
#include "compiler.h"

/* The dynamic tables of one object, as the dynamic linker relocated them. */
struct dyn_tables {
	const ElfW(Sym) *symtab;
	const char *strtab;
	const uint32_t *gnu_hash, *sysv_hash;
	const ElfW(Rela) *rela, *jmprel;
	size_t relasz, jmprelsz;
	const ElfW(Versym) *versym;
	const ElfW(Verneed) *verneed;
	const ElfW(Dyn) *dyn;
};

static struct {
	int (*mprotect)(void *, size_t, int);
	uintptr_t page_size;
	struct dyn_tables exe;
	bool exe_sanitized;
} b;

/* 0: not bound, 1: being bound, 2: bound. */
static int bind_state;

static bool same_string(const char *a, const char *b)
{
	while (*a && *a == *b)
		a++, b++;
	return *a == *b;
}

static bool has_prefix(const char *s, const char *prefix)
{
	while (*prefix && *s == *prefix)
		s++, prefix++;
	return !*prefix;
}

static const char *base_name(const char *path)
{
	const char *base = path;

	for (; *path; path++)
		if (*path == '/')
			base = path + 1;
	return base;
}

/*
 * ld.so relocates the address-valued entries of a writable dynamic section
 * in place (elf_get_dynamic_info()); an entry below the load address has
 * not been.
 */
static const void *dyn_ptr(ElfW(Addr) addr, ElfW(Addr) v)
{
	return (const void *)(v < addr ? v + addr : v);
}

static void read_dynamic(ElfW(Addr) addr, const ElfW(Dyn) *dyn, struct dyn_tables *t)
{
	*t = (struct dyn_tables){ .dyn = dyn };
	for (const ElfW(Dyn) *d = dyn; d->d_tag != DT_NULL; d++) {
		switch (d->d_tag) {
		case DT_SYMTAB:		t->symtab = dyn_ptr(addr, d->d_un.d_ptr); break;
		case DT_STRTAB:		t->strtab = dyn_ptr(addr, d->d_un.d_ptr); break;
		case DT_GNU_HASH:	t->gnu_hash = dyn_ptr(addr, d->d_un.d_ptr); break;
		case DT_HASH:		t->sysv_hash = dyn_ptr(addr, d->d_un.d_ptr); break;
		case DT_RELA:		t->rela = dyn_ptr(addr, d->d_un.d_ptr); break;
		case DT_RELASZ:		t->relasz = d->d_un.d_val; break;
		case DT_JMPREL:		t->jmprel = dyn_ptr(addr, d->d_un.d_ptr); break;
		case DT_PLTRELSZ:	t->jmprelsz = d->d_un.d_val; break;
		case DT_VERSYM:		t->versym = dyn_ptr(addr, d->d_un.d_ptr); break;
		case DT_VERNEED:	t->verneed = dyn_ptr(addr, d->d_un.d_ptr); break;
		}
	}
}

static bool defines_function(const struct dyn_tables *t, const ElfW(Sym) *sym, const char *name)
{
	int type = ELF64_ST_TYPE(sym->st_info);

	return sym->st_shndx != SHN_UNDEF && sym->st_value &&
	       (type == STT_FUNC || type == STT_GNU_IFUNC) &&
	       ELF64_ST_BIND(sym->st_info) != STB_LOCAL &&
	       same_string(t->strtab + sym->st_name, name);
}

/* Does the executable export a function called @name?  Its hash tables. */
static bool exe_defines(const char *name)
{
	const struct dyn_tables *t = &b.exe;

	if (!t->symtab || !t->strtab)
		return false;
	if (t->gnu_hash) {
		const uint32_t *gh = t->gnu_hash, nbuckets = gh[0], symoffset = gh[1];
		const uint32_t *buckets = gh + 4 + gh[2] * (sizeof(ElfW(Addr)) / 4);
		const uint32_t *chain = buckets + nbuckets;
		uint32_t h = 5381, i;

		for (const char *s = name; *s; s++)
			h = h * 33 + (unsigned char)*s;
		i = buckets[h % nbuckets];
		if (!i || i < symoffset)
			return false;
		for (;; i++) {
			if ((chain[i - symoffset] | 1) == (h | 1) &&
			    defines_function(t, &t->symtab[i], name))
				return true;
			if (chain[i - symoffset] & 1)
				break;
		}
		return false;
	}
	if (t->sysv_hash) {
		const uint32_t nbucket = t->sysv_hash[0], *bucket = t->sysv_hash + 2;
		const uint32_t *chain = bucket + nbucket;
		uint32_t h = 0;

		for (const char *s = name; *s; s++) {
			h = (h << 4) + (unsigned char)*s;
			h ^= (h >> 24) & 0xf0;
		}
		for (uint32_t i = bucket[(h & 0x0fffffff) % nbucket]; i; i = chain[i])
			if (defines_function(t, &t->symtab[i], name))
				return true;
	}
	return false;
}

/*
 * Left to whoever the dynamic linker chose (bind.h): the allocator.
 * Functions only are rebound, so data such as environ needs no entry.
 */
static bool keeps_global_binding(const char *name)
{
	static const char *const names[] = {
		"malloc", "calloc", "realloc", "reallocarray", "free", "aligned_alloc",
		"posix_memalign", "memalign", "valloc", "pvalloc", "malloc_usable_size",
	};

	for (size_t i = 0; i < ARRAY_SIZE(names); i++)
		if (same_string(name, names[i]))
			return true;
	return false;
}

/* The version an object asks of @symidx ("GLIBC_2.14"), or NULL. */
static const char *import_version(const struct dyn_tables *t, size_t symidx)
{
	const ElfW(Verneed) *vn = t->verneed;
	ElfW(Half) ndx;

	if (!t->versym || !vn)
		return NULL;
	ndx = t->versym[symidx] & 0x7fff;
	if (ndx < 2)
		return NULL;
	for (;;) {
		const ElfW(Vernaux) *aux = (const void *)((const char *)vn + vn->vn_aux);

		for (unsigned int i = 0; i < vn->vn_cnt; i++) {
			if (aux->vna_other == ndx)
				return t->strtab + aux->vna_name;
			aux = (const void *)((const char *)aux + aux->vna_next);
		}
		if (!vn->vn_next)
			return NULL;
		vn = (const void *)((const char *)vn + vn->vn_next);
	}
}

/*
 * A loaded object as dl_iterate_phdr() shows it, under the dynamic linker's
 * lock: whole (relocated) while listed there, its program headers at hand.
 */
struct object {
	ElfW(Addr) addr;
	const ElfW(Phdr) *phdr;
	int phnum;
	const char *name;
	struct dyn_tables t;
};

struct relro {
	uintptr_t start, end;
};

/* The pages the dynamic linker made read-only, as _dl_protect_relro() rounds them. */
static struct relro find_relro(const struct object *o)
{
	struct relro r = { 0, 0 };

	for (int i = 0; i < o->phnum; i++)
		if (o->phdr[i].p_type == PT_GNU_RELRO) {
			r.start = (o->addr + o->phdr[i].p_vaddr) & ~(b.page_size - 1);
			r.end = (o->addr + o->phdr[i].p_vaddr + o->phdr[i].p_memsz) &
				~(b.page_size - 1);
		}
	return r;
}

/* Point @slot at @fn; a page the dynamic linker made read-only stays so. */
static void write_slot(void **slot, void *fn, const struct relro *relro)
{
	uintptr_t page = (uintptr_t)slot & ~(b.page_size - 1);
	bool read_only = page >= relro->start && page < relro->end;

	if (read_only && b.mprotect((void *)page, b.page_size, PROT_READ | PROT_WRITE))
		return;
	__atomic_store_n(slot, fn, __ATOMIC_RELAXED);
	if (read_only)
		b.mprotect((void *)page, b.page_size, PROT_READ);
}

static void rebind_relocs(const struct object *o, const ElfW(Rela) *rel, size_t size,
			  const struct relro *relro)
{
	for (size_t n = size / sizeof(*rel); n--; rel++) {
		const struct dyn_tables *t = &o->t;
		size_t symidx = ELF64_R_SYM(rel->r_info);
		const ElfW(Sym) *sym = &t->symtab[symidx];
		const char *name = t->strtab + sym->st_name, *version;
		void **slot = (void **)(o->addr + rel->r_offset);
		void *fn;
		int type = ELF64_ST_TYPE(sym->st_info);

		if ((ELF64_R_TYPE(rel->r_info) != R_X86_64_JUMP_SLOT &&
		     ELF64_R_TYPE(rel->r_info) != R_X86_64_GLOB_DAT) ||
		    sym->st_shndx != SHN_UNDEF || (type != STT_FUNC && type != STT_GNU_IFUNC) ||
		    keeps_global_binding(name) || !exe_defines(name) || b.exe_sanitized)
			continue;
		version = import_version(t, symidx);
		fn = version ? dlvsym(RTLD_NEXT, name, version) : NULL;
		if (!fn)
			fn = dlsym(RTLD_NEXT, name);
		if (fn && *slot != fn)
			write_slot(slot, fn, relro);
	}
}

static void rebind_object(const struct object *o)
{
	struct relro relro = find_relro(o);

	if (!o->t.symtab || !o->t.strtab)
		return;
	rebind_relocs(o, o->t.rela, o->t.relasz, &relro);
	rebind_relocs(o, o->t.jmprel, o->t.jmprelsz, &relro);
}

/* Does the object of @t list @soname in its DT_NEEDED? */
static bool needs(const struct dyn_tables *t, const char *soname)
{
	if (!t->dyn || !t->strtab)
		return false;
	for (const ElfW(Dyn) *d = t->dyn; d->d_tag != DT_NULL; d++)
		if (d->d_tag == DT_NEEDED && same_string(t->strtab + d->d_un.d_val, soname))
			return true;
	return false;
}

/*
 * A library that binds as it would without folio: the C library's own
 * (libc, the dynamic linker, the stubs libdl and libpthread), a sanitizer's
 * runtime (test builds), or one the executable needs itself.
 */
static bool binds_as_without_folio(const char *soname)
{
	static const char *const glibc[] = { LIBC_SO, LD_SO, LIBDL_SO, LIBPTHREAD_SO };
	static const char *const sanitizers[] = { "libasan.", "libtsan.", "libubsan.", "liblsan." };

	for (size_t i = 0; i < ARRAY_SIZE(glibc); i++)
		if (same_string(soname, glibc[i]))
			return true;
	for (size_t i = 0; i < ARRAY_SIZE(sanitizers); i++)
		if (has_prefix(soname, sanitizers[i]))
			return true;
	return needs(&b.exe, soname);
}

/* ---- The objects to rebind ---- */

#define MAX_OBJECTS	128

struct objects {
	struct object o[MAX_OBJECTS];
	int n;
	bool truncated;
};

static int collect(struct dl_phdr_info *info, size_t size, void *arg)
{
	struct objects *all = arg;
	struct object *o;

	(void)size;
	if (all->n == MAX_OBJECTS) {
		all->truncated = true;
		return 1;
	}
	o = &all->o[all->n++];
	*o = (struct object){ .addr = info->dlpi_addr, .phdr = info->dlpi_phdr,
			      .phnum = info->dlpi_phnum, .name = info->dlpi_name };
	for (int i = 0; i < o->phnum; i++)
		if (o->phdr[i].p_type == PT_DYNAMIC)
			read_dynamic(o->addr, (const void *)(o->addr + o->phdr[i].p_vaddr), &o->t);
	return 0;
}

static bool listed(const ElfW(Addr) *addrs, int n, ElfW(Addr) addr)
{
	for (int i = 0; i < n; i++)
		if (addrs[i] == addr)
			return true;
	return false;
}

/*
 * The program is built with a sanitizer (clang links the runtime into the
 * executable): its interceptors are the executable's, and folio's calls go
 * to them as they would without the executable's own functions.
 */
static bool exe_is_sanitizer(void)
{
	static const char *const inits[] = { "__asan_init", "__tsan_init", "__msan_init",
					     "__hwasan_init" };

	for (size_t i = 0; i < ARRAY_SIZE(inits); i++)
		if (exe_defines(inits[i]))
			return true;
	return false;
}

/*
 * Rebind the object at load address @root and what it needs, directly or
 * through those, leaving out the objects at the @nold addresses in @old
 * (loaded before folio's dlopen()) and those that bind as without folio.
 * The dynamic linker lists a needed object after its first user.
 */
static void rebind_from(ElfW(Addr) root, const ElfW(Addr) *old, int nold)
{
	static struct objects all;	/* under bind_state or unwind's load_state */
	bool chosen[MAX_OBJECTS] = { false };

	all.n = 0;
	dl_iterate_phdr(collect, &all);
	if (all.n == 0)
		return;
	b.exe = all.o[0].t;		/* the executable comes first */
	b.exe_sanitized = exe_is_sanitizer();
	for (int i = 1; i < all.n; i++) {
		const char *soname = base_name(all.o[i].name);
		bool needed = all.o[i].addr == root;

		for (int j = 1; j < i && !needed; j++)
			needed = chosen[j] && needs(&all.o[j].t, soname);
		if (!needed || listed(old, nold, all.o[i].addr) ||
		    (all.o[i].addr != root && binds_as_without_folio(soname)))
			continue;
		chosen[i] = true;
		rebind_object(&all.o[i]);
	}
}

/* libfolio.so's load address, with b set up; 0 if there is nothing to do. */
static ElfW(Addr) setup(void)
{
	struct link_map *self;
	Dl_info info;

	/* Linked into a program (the unit tests), folio's calls are its own. */
	if (!dladdr1((void *)bind_to_libc, &info, (void **)&self, RTLD_DL_LINKMAP) || !self ||
	    !self->l_prev)
		return 0;
	b.mprotect = dlsym(RTLD_NEXT, "mprotect");
	b.page_size = 4096;	/* x86-64's: mprotect() needs no more than the alignment */
	return b.mprotect ? self->l_addr : 0;
}

void bind_to_libc(void)
{
	int saved_errno = errno, state = 0;
	ElfW(Addr) self;

	if (!__atomic_compare_exchange_n(&bind_state, &state, 1, false, __ATOMIC_ACQUIRE,
					 __ATOMIC_RELAXED))
		return;
	if ((self = setup()))
		rebind_from(self, NULL, 0);
	__atomic_store_n(&bind_state, 2, __ATOMIC_RELEASE);
	errno = saved_errno;
}

static int note_addr(struct dl_phdr_info *info, size_t size, void *arg)
{
	struct bind_snapshot *s = arg;

	(void)size;
	if (s->n == BIND_SNAPSHOT_MAX) {
		s->truncated = true;
		return 1;
	}
	s->addr[s->n++] = info->dlpi_addr;
	return 0;
}

void bind_snapshot(struct bind_snapshot *s)
{
	s->n = 0;
	s->truncated = false;
	dl_iterate_phdr(note_addr, s);
}

void bind_library_to_libc(void *handle, const struct bind_snapshot *before)
{
	int saved_errno = errno;
	struct link_map *lm;

	/* A snapshot that lost objects could rebind the program's own. */
	if (__atomic_load_n(&bind_state, __ATOMIC_ACQUIRE) == 2 && b.mprotect &&
	    !before->truncated && dlinfo(handle, RTLD_DI_LINKMAP, &lm) == 0 &&
	    !listed(before->addr, before->n, lm->l_addr))
		rebind_from(lm->l_addr, before->addr, before->n);
	errno = saved_errno;
}
