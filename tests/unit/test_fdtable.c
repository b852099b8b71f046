/*
 * Unit tests of shim/fdtable.c's reference counts, with the cache replaced
 * by hooks that count their calls (fdtable reaches the cache only through
 * struct fdtable_cache_ops): a tracked open makes one mapping per inode,
 * dup()s share one ofile, and the ofile is released and the inode retired
 * exactly once, when the last descriptor and the last caller are gone.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "config.h"
#include "fdtable.h"

static int news, retires, opened, released;
static char fake_mapping[64];

static struct mapping *fake_new(const char *name, int fd, const struct stat *st, int kfd,
				int kfd_accmode)
{
	(void)name, (void)fd, (void)st, (void)kfd, (void)kfd_accmode;
	news++;
	return (struct mapping *)fake_mapping;
}

static void fake_reopened(struct mapping *m, int flags, const struct stat *st)
{
	(void)m, (void)flags, (void)st;
}

static void fake_set_kfd(struct mapping *m, int kfd, int kfd_accmode)
{
	(void)m, (void)kfd, (void)kfd_accmode;
}

static bool fake_unwritten(struct mapping *m)
{
	(void)m;
	return false;
}

static void fake_retire(struct mapping *m)
{
	(void)m;
	retires++;
}

static void fake_free(struct mapping *m)
{
	(void)m;
}

static void fake_opened(struct ofile *of)
{
	(void)of;
	opened++;
}

static void fake_released(struct ofile *of)
{
	(void)of;
	released++;
}

static void fake_std_fd(struct ofile *of)
{
	(void)of;
}

static const struct fdtable_cache_ops fake_ops = {
	.mapping_new = fake_new, .mapping_reopened = fake_reopened, .set_kfd = fake_set_kfd,
	.mapping_unwritten = fake_unwritten, .mapping_retire = fake_retire,
	.mapping_free = fake_free, .ofile_opened = fake_opened,
	.ofile_release = fake_released, .std_fd = fake_std_fd,
};

static char dir[] = "/tmp/folio-fdtable-XXXXXX";

static void setup(void)
{
	cr_assert(mkdtemp(dir));
	cr_assert_eq(chdir(dir), 0);
	setenv("FOLIO_FILES", "*.dat", 1);
	config_load();
	cr_assert(folio_config.enabled);
	fdtable_set_cache_ops(&fake_ops);
	news = retires = opened = released = 0;
}

static int open_tracked(const char *name)
{
	int fd = open(name, O_RDWR | O_CREAT, 0600);

	cr_assert(fd >= 0);
	fdtable_open(fd, AT_FDCWD, name, O_RDWR | O_CREAT);
	return fd;
}

/* What close(2) does in folio: take the slot, then drop its reference. */
static void close_tracked(int fd)
{
	struct ofile *of = fdtable_take(fd);

	if (of)
		ofile_put(of);
	close(fd);
}

Test(fdtable, only_matching_files_are_tracked, .init = setup)
{
	int fd = open_tracked("a.dat"), other = open("b.txt", O_RDWR | O_CREAT, 0600);

	fdtable_open(other, AT_FDCWD, "b.txt", O_RDWR | O_CREAT);
	cr_expect(fd_tracked(fd));
	cr_expect(!fd_tracked(other));
	cr_expect_eq(news, 1);
	cr_expect_eq(opened, 1);
	close_tracked(fd);
	close(other);
	cr_expect(!fd_tracked(fd));
	cr_expect_eq(released, 1);
	cr_expect_eq(retires, 1);
}

Test(fdtable, dups_share_one_ofile_released_at_the_last_close, .init = setup)
{
	int fd = open_tracked("a.dat"), copy = dup(fd);
	struct ofile *of, *of_copy;

	fdtable_dup(fd, copy);
	cr_expect(fd_tracked(copy));
	of = ofile_get(fd);
	of_copy = ofile_get(copy);
	cr_expect(of && of == of_copy, "a dup has another ofile");
	ofile_put(of);
	ofile_put(of_copy);
	close_tracked(fd);
	cr_expect_eq(released, 0, "released while a dup is open");
	cr_expect_eq(retires, 0);
	close_tracked(copy);
	cr_expect_eq(released, 1);
	cr_expect_eq(retires, 1);
}

Test(fdtable, a_caller_in_flight_keeps_the_ofile, .init = setup)
{
	int fd = open_tracked("a.dat");
	struct ofile *of = ofile_get(fd);

	cr_assert(of);
	close_tracked(fd);
	cr_expect_eq(released, 0, "released under a caller");
	ofile_put(of);
	cr_expect_eq(released, 1);
	cr_expect_eq(retires, 1);
}

Test(fdtable, one_mapping_per_inode, .init = setup)
{
	int a = open_tracked("a.dat"), b = open_tracked("a.dat"), c = open_tracked("c.dat");

	cr_expect_eq(news, 2, "one mapping per inode, not per open");
	cr_expect_eq(opened, 3);
	close_tracked(a);
	cr_expect_eq(retires, 0, "retired with another open of the inode left");
	close_tracked(b);
	cr_expect_eq(retires, 1);
	close_tracked(c);
	cr_expect_eq(released, 3);
	cr_expect_eq(retires, 2);
}
