/*
 * bind.c - see bind.h.  Calls dladdr1, dlsym, dlvsym and, through a pointer
 * looked up with them, mprotect; nothing of folio's.
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
static const void *dyn_ptr(const struct link_map *lm, ElfW(Addr) v)
{
	return (const void *)(v < lm->l_addr ? v + lm->l_addr : v);
}

static void read_dynamic(const struct link_map *lm, struct dyn_tables *t)
{
	*t = (struct dyn_tables){ .dyn = lm->l_ld };
	for (const ElfW(Dyn) *d = lm->l_ld; d->d_tag != DT_NULL; d++) {
		switch (d->d_tag) {
		case DT_SYMTAB:		t->symtab = dyn_ptr(lm, d->d_un.d_ptr); break;
		case DT_STRTAB:		t->strtab = dyn_ptr(lm, d->d_un.d_ptr); break;
		case DT_GNU_HASH:	t->gnu_hash = dyn_ptr(lm, d->d_un.d_ptr); break;
		case DT_HASH:		t->sysv_hash = dyn_ptr(lm, d->d_un.d_ptr); break;
		case DT_RELA:		t->rela = dyn_ptr(lm, d->d_un.d_ptr); break;
		case DT_RELASZ:		t->relasz = d->d_un.d_val; break;
		case DT_JMPREL:		t->jmprel = dyn_ptr(lm, d->d_un.d_ptr); break;
		case DT_PLTRELSZ:	t->jmprelsz = d->d_un.d_val; break;
		case DT_VERSYM:		t->versym = dyn_ptr(lm, d->d_un.d_ptr); break;
		case DT_VERNEED:	t->verneed = dyn_ptr(lm, d->d_un.d_ptr); break;
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

struct relro {
	uintptr_t start, end;
};

/*
 * The pages the dynamic linker made read-only after relocating @lm, as
 * _dl_protect_relro() rounds them, from the program headers in its first
 * page (a shared library's ELF header is mapped at its load address).
 */
static struct relro find_relro(const struct link_map *lm)
{
	const ElfW(Ehdr) *eh = (const void *)lm->l_addr;
	const ElfW(Phdr) *ph;
	struct relro r = { 0, 0 };

	if (!lm->l_addr || eh->e_ident[EI_MAG0] != ELFMAG0 || eh->e_ident[EI_MAG1] != ELFMAG1 ||
	    eh->e_ident[EI_MAG2] != ELFMAG2 || eh->e_ident[EI_MAG3] != ELFMAG3)
		return r;
	ph = (const void *)(lm->l_addr + eh->e_phoff);
	for (int i = 0; i < eh->e_phnum; i++, ph++)
		if (ph->p_type == PT_GNU_RELRO) {
			r.start = (lm->l_addr + ph->p_vaddr) & ~(b.page_size - 1);
			r.end = (lm->l_addr + ph->p_vaddr + ph->p_memsz) & ~(b.page_size - 1);
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

static void rebind_relocs(const struct link_map *lm, const struct dyn_tables *t,
			  const ElfW(Rela) *rel, size_t size, const struct relro *relro)
{
	for (size_t n = size / sizeof(*rel); n--; rel++) {
		size_t symidx = ELF64_R_SYM(rel->r_info);
		const ElfW(Sym) *sym = &t->symtab[symidx];
		const char *name = t->strtab + sym->st_name, *version;
		void **slot = (void **)(lm->l_addr + rel->r_offset);
		void *fn;
		int type = ELF64_ST_TYPE(sym->st_info);

		if ((ELF64_R_TYPE(rel->r_info) != R_X86_64_JUMP_SLOT &&
		     ELF64_R_TYPE(rel->r_info) != R_X86_64_GLOB_DAT) ||
		    sym->st_shndx != SHN_UNDEF || (type != STT_FUNC && type != STT_GNU_IFUNC) ||
		    keeps_global_binding(name) || !exe_defines(name))
			continue;
		version = import_version(t, symidx);
		fn = version ? dlvsym(RTLD_NEXT, name, version) : NULL;
		if (!fn)
			fn = dlsym(RTLD_NEXT, name);
		if (fn && *slot != fn)
			write_slot(slot, fn, relro);
	}
}

static void rebind_object(const struct link_map *lm)
{
	struct relro relro = find_relro(lm);
	struct dyn_tables t;

	read_dynamic(lm, &t);
	if (!t.symtab || !t.strtab)
		return;
	rebind_relocs(lm, &t, t.rela, t.relasz, &relro);
	rebind_relocs(lm, &t, t.jmprel, t.jmprelsz, &relro);
}

/* Does the object @t of @lm list @soname in its DT_NEEDED? */
static bool needs(const struct dyn_tables *t, const char *soname)
{
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

/* libfolio.so's own link map, with b set up; NULL if something is missing. */
static struct link_map *setup(void)
{
	struct link_map *self, *exe;
	Dl_info info;

	/* Linked into a program (the unit tests), folio's calls are its own. */
	if (!dladdr1((void *)bind_to_libc, &info, (void **)&self, RTLD_DL_LINKMAP) || !self ||
	    !self->l_prev)
		return NULL;
	for (exe = self; exe->l_prev; exe = exe->l_prev)
		;
	read_dynamic(exe, &b.exe);
	b.mprotect = dlsym(RTLD_NEXT, "mprotect");
	b.page_size = 4096;	/* x86-64's: mprotect() needs no more than the alignment */
	return b.mprotect ? self : NULL;
}

void bind_to_libc(void)
{
	int saved_errno = errno, state = 0;
	struct dyn_tables bound[8];
	unsigned int nbound = 0;
	struct link_map *self;

	if (!__atomic_compare_exchange_n(&bind_state, &state, 1, false, __ATOMIC_ACQUIRE,
					 __ATOMIC_RELAXED))
		return;
	/* libfolio.so, then what it needs, directly or through those (the
	 * dynamic linker lists them after their first user). */
	for (struct link_map *lm = self = setup(); lm && nbound < ARRAY_SIZE(bound);
	     lm = lm->l_next) {
		const char *soname = base_name(lm->l_name);
		bool needed = lm == self;

		for (unsigned int i = 0; i < nbound && !needed; i++)
			needed = needs(&bound[i], soname);
		if (!needed || (lm != self && binds_as_without_folio(soname)))
			continue;
		rebind_object(lm);
		read_dynamic(lm, &bound[nbound++]);
	}
	__atomic_store_n(&bind_state, 2, __ATOMIC_RELEASE);
	errno = saved_errno;
}

void *bind_last_loaded(void)
{
	Dl_info info;
	struct link_map *lm;

	if (!dladdr1((void *)bind_to_libc, &info, (void **)&lm, RTLD_DL_LINKMAP))
		return NULL;
	while (lm && lm->l_next)
		lm = lm->l_next;
	return lm;
}

void bind_loaded_after(void *last)
{
	int saved_errno = errno;

	if (last && __atomic_load_n(&bind_state, __ATOMIC_ACQUIRE) == 2 && b.mprotect) {
		for (struct link_map *lm = ((struct link_map *)last)->l_next; lm; lm = lm->l_next)
			if (!binds_as_without_folio(base_name(lm->l_name)))
				rebind_object(lm);
	}
	errno = saved_errno;
}
