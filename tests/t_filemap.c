// SPDX-License-Identifier: MIT
/*
 * t_filemap.c - file mappings over real host files: reads equal pread(2)
 * (page boundaries, offsets, the partial last page, EOF), shared writes
 * reach the file through msync, munmap, exit and the last reference and
 * never extend it, private writes never reach it, one page-cache frame is
 * shared by every mm (and across fork) until a private write copies it,
 * msync and page_mkclean clean the PTEs, try_to_unmap unmaps a file page
 * from every mm without losing dirty data, open/mmap/msync errors, RSS,
 * mremap/mprotect/DONTNEED/POPULATE/GUP on file mappings, offsets past
 * 4 GiB, and a seeded random run (UMM_SEED) against a model of the page
 * cache and of a private mapping's copies.
 *
 * Files are created under a mkdtemp() directory in /tmp with deterministic
 * content (fbyte()); the directory is removed at the end.  Each test checks
 * umm_validate(EXACT | RMAP) and, once every mm exited and every file was
 * put, umm_leak_check() == 0.
 *
 * Layouts are drawn one character per page from BASE; a digit is the file
 * page a mapping's page shows, '.' a page of the mapping past EOF.
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <umm/umm.h>

#define FIX_VALIDATE	VALIDATE_ALL
#include "tap.h"
#include "fixture.h"

#define SHARED	UMM_MAP_SHARED
#define PRIVATE	UMM_MAP_PRIVATE

/* ---- files in the temporary directory ---- */

/* The byte at @off of a file made with @tag: deterministic, varied per page. */
static uint8_t fbyte(uint64_t off, unsigned int tag)
{
	uint64_t x = (off + 0x100000001ULL * (tag + 1)) * 0x9e3779b97f4a7c15ULL;

	x ^= x >> 29;
	return (uint8_t)(x >> 32);
}

static void fill(uint8_t *buf, uint64_t off, size_t len, unsigned int tag)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = fbyte(off + i, tag);
}

/* Create (or replace) @name with @size bytes of fbyte(, @tag). */
static bool make_file(const char *name, uint64_t size, unsigned int tag)
{
	const char *path = tmp_path(name);
	uint8_t buf[PS];
	int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0644);

	if (fd < 0) {
		TAP_DIAG("open(%s): %s", path, strerror(errno));
		return false;
	}
	for (uint64_t off = 0; off < size; off += PS) {
		size_t n = (size_t)(size - off < PS ? size - off : PS);

		fill(buf, off, n, tag);
		if (pwrite(fd, buf, n, (off_t)off) != (ssize_t)n) {
			TAP_DIAG("pwrite(%s): %s", path, strerror(errno));
			close(fd);
			return false;
		}
	}
	close(fd);
	return true;
}

static int64_t host_size(const char *name)
{
	struct stat st;

	if (stat(tmp_path(name), &st) < 0)
		return -errno;
	return st.st_size;
}

/* pread the whole of @name into a new buffer (*@size bytes). */
static uint8_t *slurp(const char *name, uint64_t *size)
{
	int64_t sz = host_size(name);
	uint8_t *buf;
	int fd;

	if (sz < 0)
		return NULL;
	buf = malloc((size_t)sz + 1);
	fd = open(tmp_path(name), O_RDONLY);
	if (!buf || fd < 0 || pread(fd, buf, (size_t)sz, 0) != sz) {
		free(buf);
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	close(fd);
	*size = (uint64_t)sz;
	return buf;
}

/* Does the host file hold exactly @want (@len bytes)? */
static bool file_is(const char *name, const uint8_t *want, uint64_t len)
{
	uint64_t size = 0;
	uint8_t *got = slurp(name, &size);
	bool ok = got && size == len;

	if (!got) {
		TAP_DIAG("cannot read %s", name);
		return false;
	}
	if (size != len)
		TAP_DIAG("%s: size %" PRIu64 ", expected %" PRIu64, name, size, len);
	for (uint64_t i = 0; ok && i < len; i++) {
		if (got[i] != want[i]) {
			TAP_DIAG("%s: byte %#" PRIx64 " is %#x, expected %#x", name, i,
				 got[i], want[i]);
			ok = false;
		}
	}
	free(got);
	return ok;
}

/* Does the host file @name still hold what make_file(@name, @size, @tag) wrote? */
static bool file_as_made(const char *name, uint64_t size, unsigned int tag)
{
	uint8_t *want = malloc(size ? size : 1);
	bool ok;

	fill(want, 0, size, tag);
	ok = file_is(name, want, size);
	free(want);
	return ok;
}

/* Models of file contents (static: a failing test leaks nothing). */
static uint8_t scratch[2][PG(16)];

/* ---- fixture: one machine, up to NMM mms and NF files ---- */

#define NMM	4
#define NF	4

struct ffix {
	struct umm *u;
	struct umm_mm *mm[NMM];
	struct umm_file *f[NF];
};

static bool ffix_init(struct ffix *x, int nmm)
{
	memset(x, 0, sizeof(*x));
	ASSERT_OK(make_machine(16 << 20, 1, 0, &x->u));
	for (int i = 0; i < nmm; i++)
		ASSERT_OK(umm_mm_create(x->u, &x->mm[i]));
	return true;
}

static bool ffix_open(struct ffix *x, int i, const char *name, int flags)
{
	ASSERT_OK(umm_file_open(x->u, tmp_path(name), flags, &x->f[i]));
	return true;
}

/*
 * make_file(@name, @size, @tag), its bytes in @model (if not NULL),
 * ffix_init(@nmm), and f[0] opened O_RDWR.
 */
static bool ffix_file(struct ffix *x, int nmm, const char *name, uint64_t size,
		      unsigned int tag, uint8_t *model)
{
	if (model)
		fill(model, 0, size, tag);
	ASSERT_TRUE(make_file(name, size, tag));
	ASSERT_TRUE(ffix_init(x, nmm));
	return ffix_open(x, 0, name, O_RDWR);
}

static void ffix_exit(struct ffix *x, int i)
{
	if (x->mm[i])
		umm_mm_exit(x->mm[i]);
	x->mm[i] = NULL;
}

static void ffix_put(struct ffix *x, int i)
{
	if (x->f[i])
		umm_file_put(x->f[i]);
	x->f[i] = NULL;
}

/* Validate, exit every mm, put every file, then machine_done(). */
static bool ffix_fini(struct ffix *x)
{
	ASSERT_TRUE(machine_valid(x->u));
	for (int i = 0; i < NMM; i++)
		ffix_exit(x, i);
	for (int i = 0; i < NF; i++)
		ffix_put(x, i);
	ASSERT_TRUE(machine_done(x->u));
	x->u = NULL;
	return true;
}

/* ---- helpers ---- */

/* Read @len bytes at @addr and compare them with @want. */
static bool reads_as(struct umm_mm *mm, uint64_t addr, const uint8_t *want, size_t len)
{
	uint8_t *got = malloc(len ? len : 1);
	ssize_t r = umm_read(mm, addr, got, len);
	bool ok = r == (ssize_t)len;

	if (!ok)
		TAP_DIAG("umm_read(%#" PRIx64 ", %zu) = %zd", addr, len, r);
	for (size_t i = 0; ok && i < len; i++) {
		if (got[i] != want[i]) {
			TAP_DIAG("byte at %#" PRIx64 " is %#x, expected %#x", addr + i,
				 got[i], want[i]);
			ok = false;
		}
	}
	free(got);
	return ok;
}

/* Read @len bytes at @addr and compare them with the file bytes at @off. */
static bool reads_file(struct umm_mm *mm, uint64_t addr, uint64_t off, size_t len,
		       unsigned int tag)
{
	uint8_t *want = malloc(len ? len : 1);
	bool ok;

	fill(want, off, len, tag);
	ok = reads_as(mm, addr, want, len);
	free(want);
	return ok;
}

static bool reads_zero(struct umm_mm *mm, uint64_t addr, size_t len)
{
	uint8_t *want = calloc(1, len ? len : 1);
	bool ok = reads_as(mm, addr, want, len);

	free(want);
	return ok;
}

/* ---- reads ---- */

/*
 * A file of 5 pages and 100 bytes, mapped three ways in one mm:
 *
 *   AT(0)   012345.     shared, read-only, 7 pages
 *   AT(16)  012345.     private, read-only
 *   AT(32)  2345        private, offset PG(2)
 *
 * Every read equals pread: whole, across page boundaries, from a non-zero
 * offset; page 5 holds 100 file bytes then zeros; '.' is past EOF: -EFAULT,
 * and a read running into it stops there.
 */
static bool test_reads_equal_file(void)
{
	const uint64_t size = PG(5) + 100;
	uint64_t at[2] = { AT(0), AT(16) };
	struct umm_stat before;
	struct ffix x;
	uint8_t buf[2 * PS];

	ASSERT_TRUE(make_file("r", size, 1));
	ASSERT_TRUE(ffix_init(&x, 1));
	ASSERT_TRUE(ffix_open(&x, 0, "r", O_RDONLY));
	ASSERT_EQ(umm_file_size(x.f[0]), size);
	ASSERT_OK(map_file(x.mm[0], AT(0), 7, RO, SHARED, x.f[0], 0));
	ASSERT_OK(map_file(x.mm[0], AT(16), 7, RO, PRIVATE, x.f[0], 0));
	ASSERT_OK(map_file(x.mm[0], AT(32), 4, RO, PRIVATE, x.f[0], PG(2)));
	before = ustat(x.u);

	for (int i = 0; i < 2; i++) {
		ASSERT_TRUE(reads_file(x.mm[0], at[i] + 4000, 4000, 300, 1));	/* 0|1 */
		ASSERT_TRUE(reads_file(x.mm[0], at[i] + PG(3) - 1, PG(3) - 1, PS + 2, 1));
		ASSERT_TRUE(reads_file(x.mm[0], at[i], 0, size, 1));
		ASSERT_TRUE(reads_zero(x.mm[0], at[i] + size, PG(6) - size));
		ASSERT_ERR(umm_read(x.mm[0], at[i] + PG(6), buf, 1), EFAULT);
		ASSERT_ERR(umm_read(x.mm[0], at[i] + PG(6) + 123, buf, 10), EFAULT);
		/* a read that runs past EOF copies up to the end of the last page */
		ASSERT_EQ(umm_read(x.mm[0], at[i] + PG(5), buf, 2 * PS), PS);
		ASSERT_EQ(umm_read(x.mm[0], at[i] + PG(5) + 50, buf, 2 * PS), PS - 50);
	}
	ASSERT_ERR(umm_write(x.mm[0], AT(16) + PG(6), "x", 1), EFAULT);
	ASSERT_TRUE(reads_file(x.mm[0], AT(32), PG(2), size - PG(2), 1));
	ASSERT_TRUE(reads_file(x.mm[0], AT(32) + PG(1) - 7, PG(3) - 7, 14, 1));
	ASSERT_TRUE(reads_zero(x.mm[0], AT(32) + size - PG(2), PG(6) - size));
	ASSERT_GE(ustat(x.u).pgfault_file - before.pgfault_file, 6);
	/* nothing was written: the file is as made, and stays so */
	ASSERT_TRUE(ffix_fini(&x));
	ASSERT_TRUE(file_as_made("r", size, 1));
	return true;
}

/* A file page read through a shared read-only mapping: a page-cache frame. */
static bool test_pagemap_of_file_page(void)
{
	struct umm_pageinfo pi;
	struct ffix x;

	ASSERT_TRUE(ffix_file(&x, 1, "pm", PG(2), 2, NULL));
	ASSERT_OK(map_file(x.mm[0], AT(0), 2, RO, SHARED, x.f[0], 0));
	pi = pinfo(x.mm[0], AT(0));
	ASSERT_EQ(pi.flags, 0);			/* mapped, untouched */
	ASSERT_EQ(byte_at(x.mm[0], AT(0) + 9), fbyte(9, 2));
	pi = pinfo(x.mm[0], AT(0));
	ASSERT_TRUE(pi.flags & UMM_PI_PRESENT);
	ASSERT_FALSE(pi.flags & (UMM_PI_ANON | UMM_PI_ZERO | UMM_PI_WRITE | UMM_PI_DIRTY));
	ASSERT_NE(pi.pfn, 0);
	ASSERT_EQ(pi.mapcount, 1);
	ASSERT_EQ(pi.refcount, 2);		/* the PTE and the page cache */
	ASSERT_EQ(umm_page_rmap_count(x.mm[0], AT(0)), 1);
	ASSERT_ERR(umm_page_rmap_count(x.mm[0], AT(1)), EFAULT);
	return ffix_fini(&x);
}

/* ---- shared writes reach the file ---- */

/*
 * AT(0) 0123 shared RW over a 4-page file.  Writes across pages 0|1|2 and
 * into page 3 are in the file after msync(MS_SYNC), which also cleans and
 * write-protects the PTEs; the next store faults them writable and dirty
 * again and a second msync writes the new bytes.
 */
static bool test_shared_write_msync(void)
{
	const uint64_t size = PG(4);
	uint8_t *model = scratch[0], w[PS + 100];
	struct umm_pageinfo pi;
	struct ffix x;

	ASSERT_TRUE(ffix_file(&x, 1, "ws", size, 3, model));
	ASSERT_OK(map_file(x.mm[0], AT(0), 4, RW, SHARED, x.f[0], 0));

	fill(w, 0, sizeof(w), 77);
	ASSERT_EQ(umm_write(x.mm[0], AT(0) + PS - 50, w, sizeof(w)), sizeof(w));
	memcpy(model + PS - 50, w, sizeof(w));
	ASSERT_TRUE(put_byte(x.mm[0], AT(3) + 7, 0xa5));
	model[PG(3) + 7] = 0xa5;
	ASSERT_TRUE(reads_as(x.mm[0], AT(0), model, size));
	pi = pinfo(x.mm[0], AT(1));
	ASSERT_EQ(pi.flags & (UMM_PI_PRESENT | UMM_PI_WRITE | UMM_PI_DIRTY | UMM_PI_ANON),
		  UMM_PI_PRESENT | UMM_PI_WRITE | UMM_PI_DIRTY);

	ASSERT_OK(umm_msync(x.mm[0], AT(0), PG(4), UMM_MS_SYNC));
	ASSERT_TRUE(file_is("ws", model, size));
	for (int p = 0; p < 4; p++) {
		pi = pinfo(x.mm[0], AT(p));
		ASSERT_TRUE(pi.flags & UMM_PI_PRESENT);
		ASSERT_FALSE(pi.flags & (UMM_PI_WRITE | UMM_PI_DIRTY));
	}
	ASSERT_EQ(umm_page_mkclean(x.mm[0], AT(1)), 0);	/* already clean */

	/* a new store faults the page writable and dirty again */
	ASSERT_TRUE(put_byte(x.mm[0], AT(1) + 10, 0x5a));
	model[PG(1) + 10] = 0x5a;
	pi = pinfo(x.mm[0], AT(1));
	ASSERT_TRUE(pi.flags & UMM_PI_WRITE);
	ASSERT_TRUE(pi.flags & UMM_PI_DIRTY);
	pi = pinfo(x.mm[0], AT(2));
	ASSERT_FALSE(pi.flags & (UMM_PI_WRITE | UMM_PI_DIRTY));
	ASSERT_OK(umm_msync(x.mm[0], AT(1), PS, UMM_MS_SYNC));
	ASSERT_TRUE(file_is("ws", model, size));
	pi = pinfo(x.mm[0], AT(1));
	ASSERT_FALSE(pi.flags & (UMM_PI_WRITE | UMM_PI_DIRTY));

	/* a third round, through msync of just a part of the mapping */
	ASSERT_TRUE(put_byte(x.mm[0], AT(2) + PS - 1, 0x11));
	model[PG(3) - 1] = 0x11;
	ASSERT_OK(umm_msync(x.mm[0], AT(2), PS, UMM_MS_SYNC));
	ASSERT_TRUE(file_is("ws", model, size));
	ASSERT_TRUE(reads_as(x.mm[0], AT(0), model, size));
	ASSERT_TRUE(ffix_fini(&x));
	ASSERT_TRUE(file_is("ws", model, size));
	return true;
}

/*
 * msync of a mapping with a non-zero offset writes the right file pages:
 *   AT(0) 234   shared RW, offset PG(2), over a 6-page file.
 */
static bool test_shared_write_msync_offset(void)
{
	const uint64_t size = PG(6);
	uint8_t *model = scratch[0];
	struct ffix x;

	ASSERT_TRUE(ffix_file(&x, 1, "wo", size, 4, model));
	ASSERT_OK(map_file(x.mm[0], AT(0), 3, RW, SHARED, x.f[0], PG(2)));
	ASSERT_TRUE(reads_file(x.mm[0], AT(0), PG(2), PG(3), 4));
	for (int p = 0; p < 3; p++) {
		ASSERT_TRUE(put_byte(x.mm[0], AT(p) + 100 + p, (uint8_t)(0xc0 + p)));
		model[PG(2 + p) + 100 + p] = (uint8_t)(0xc0 + p);
	}
	ASSERT_OK(umm_msync(x.mm[0], AT(1), PG(2), UMM_MS_SYNC));	/* file pages 3, 4 */
	{
		uint64_t sz;
		uint8_t *got = slurp("wo", &sz);

		ASSERT_TRUE(got != NULL);
		ASSERT_EQ(sz, size);
		ASSERT_TRUE(!memcmp(got + PG(3), model + PG(3), PG(2)));
		ASSERT_TRUE(!memcmp(got, model, PG(2)));		/* untouched pages */
		ASSERT_TRUE(!memcmp(got + PG(5), model + PG(5), PS));
		free(got);
	}
	ASSERT_OK(umm_msync(x.mm[0], AT(0), PG(3), UMM_MS_SYNC));
	ASSERT_TRUE(file_is("wo", model, size));
	return ffix_fini(&x);
}

/*
 * Shared writes reach the file when the mapping goes away without msync:
 * munmap of a part (that part is written back), munmap of the rest.
 */
static bool test_shared_write_munmap(void)
{
	const uint64_t size = PG(3);
	uint8_t *model = scratch[0];
	struct ffix x;

	ASSERT_TRUE(ffix_file(&x, 1, "wm", size, 5, model));
	ASSERT_OK(map_file(x.mm[0], AT(0), 3, RW, SHARED, x.f[0], 0));
	for (int p = 0; p < 3; p++) {
		ASSERT_TRUE(put_byte(x.mm[0], AT(p) + 1 + p, (uint8_t)(0xd0 + p)));
		model[PG(p) + 1 + p] = (uint8_t)(0xd0 + p);
	}
	ASSERT_OK(umm_munmap(x.mm[0], AT(1), PS));
	{
		uint64_t sz;
		uint8_t *got = slurp("wm", &sz);

		ASSERT_TRUE(got != NULL);
		ASSERT_EQ(got[PG(1) + 2], 0xd1);
		free(got);
	}
	ASSERT_TRUE(machine_valid(x.u));
	ASSERT_OK(umm_munmap(x.mm[0], AT(0), PG(3)));
	ASSERT_TRUE(file_is("wm", model, size));
	ASSERT_TRUE(ffix_fini(&x));
	ASSERT_TRUE(file_is("wm", model, size));
	return true;
}

/*
 * Shared writes reach the file at exit: with the file still held by the
 * caller, and with the file put before the exit (the mapping holds the
 * last reference).
 */
static bool test_shared_write_exit(void)
{
	const uint64_t size = PG(2) + 10;
	uint8_t *model = scratch[0];
	struct ffix x;

	ASSERT_TRUE(ffix_file(&x, 2, "we", size, 6, model));
	ASSERT_OK(map_file(x.mm[0], AT(0), 3, RW, SHARED, x.f[0], 0));
	ASSERT_OK(map_file(x.mm[1], AT(4), 3, RW, SHARED, x.f[0], 0));

	ASSERT_TRUE(put_byte(x.mm[0], AT(0) + 5, 0xe0));
	model[5] = 0xe0;
	ASSERT_TRUE(put_byte(x.mm[0], AT(2) + 9, 0xe2));
	model[PG(2) + 9] = 0xe2;
	ffix_exit(&x, 0);
	ASSERT_TRUE(file_is("we", model, size));
	ASSERT_TRUE(machine_valid(x.u));

	/* mm1 sees the page cache mm0 wrote into, then writes its own */
	ASSERT_TRUE(reads_as(x.mm[1], AT(4), model, size));
	ASSERT_TRUE(put_byte(x.mm[1], AT(5) + 3, 0xe1));
	model[PG(1) + 3] = 0xe1;
	ffix_put(&x, 0);			/* the mapping now holds the last reference */
	ASSERT_TRUE(reads_as(x.mm[1], AT(4), model, size));
	ffix_exit(&x, 1);
	ASSERT_TRUE(file_is("we", model, size));
	return ffix_fini(&x);
}

/*
 * AT(0) 012   shared RW over a file of 2 pages and 10 bytes.  A store into
 * page 2 past byte 10 stays out of the file: writeback never extends it,
 * through msync, munmap, exit or the last put.
 */
static bool test_writeback_never_extends(void)
{
	const uint64_t size = PG(2) + 10;
	uint8_t *model = scratch[0], tail[200];
	struct ffix x;

	memset(tail, 0x77, sizeof(tail));
	ASSERT_TRUE(ffix_file(&x, 1, "wx", size, 7, model));
	ASSERT_OK(map_file(x.mm[0], AT(0), 3, RW, SHARED, x.f[0], 0));
	ASSERT_TRUE(put_byte(x.mm[0], AT(2) + 5, 0x55));
	model[PG(2) + 5] = 0x55;
	ASSERT_EQ(umm_write(x.mm[0], AT(2) + 100, tail, sizeof(tail)), sizeof(tail));
	ASSERT_EQ(umm_write(x.mm[0], AT(2) + PS - 4, tail, 4), 4);
	ASSERT_EQ(umm_write(x.mm[0], AT(2) + 8, tail, 4), 4);	/* straddles EOF */
	model[PG(2) + 8] = model[PG(2) + 9] = 0x77;
	ASSERT_ERR(umm_write(x.mm[0], AT(3), tail, 1), EFAULT);

	ASSERT_OK(umm_msync(x.mm[0], AT(0), PG(3), UMM_MS_SYNC));
	ASSERT_EQ(host_size("wx"), size);
	ASSERT_EQ(umm_file_size(x.f[0]), size);
	ASSERT_TRUE(file_is("wx", model, size));
	ASSERT_TRUE(put_byte(x.mm[0], AT(2) + 200, 0x66));	/* dirty the tail again */
	ASSERT_OK(umm_munmap(x.mm[0], AT(0), PG(3)));
	ASSERT_EQ(host_size("wx"), size);
	ASSERT_OK(map_file(x.mm[0], AT(0), 3, RW, SHARED, x.f[0], 0));
	ASSERT_TRUE(put_byte(x.mm[0], AT(2) + 300, 0x66));
	ffix_put(&x, 0);
	ffix_exit(&x, 0);
	ASSERT_EQ(host_size("wx"), size);
	ASSERT_TRUE(file_is("wx", model, size));
	return ffix_fini(&x);
}

/* ---- private writes never reach the file ---- */

/*
 *   mm0: AT(0) 012 private RW      AT(8) 012 shared RO
 *   mm1: AT(0) 012 shared RW (only reads)
 * mm0's private stores are seen by mm0's private mapping only; the file
 * keeps its bytes through msync, munmap, exit and the last put.
 */
static bool test_private_writes_stay_private(void)
{
	const uint64_t size = PG(3);
	uint8_t *orig = scratch[0], *priv = scratch[1];
	struct ffix x;

	ASSERT_TRUE(ffix_file(&x, 2, "pw", size, 8, orig));
	memcpy(priv, orig, size);
	ASSERT_OK(map_file(x.mm[0], AT(0), 3, RW, PRIVATE, x.f[0], 0));
	ASSERT_OK(map_file(x.mm[0], AT(8), 3, RO, SHARED, x.f[0], 0));
	ASSERT_OK(map_file(x.mm[1], AT(0), 3, RW, SHARED, x.f[0], 0));
	ASSERT_TRUE(reads_as(x.mm[1], AT(0), orig, size));	/* cache first */
	for (uint64_t off = 100; off < size; off += 1500) {
		ASSERT_TRUE(put_byte(x.mm[0], AT(0) + off, (uint8_t)~orig[off]));
		priv[off] = (uint8_t)~orig[off];
	}
	ASSERT_TRUE(reads_as(x.mm[0], AT(0), priv, size));
	ASSERT_TRUE(reads_as(x.mm[0], AT(8), orig, size));
	ASSERT_TRUE(reads_as(x.mm[1], AT(0), orig, size));
	ASSERT_OK(umm_msync(x.mm[0], AT(0), PG(3), UMM_MS_SYNC));
	ASSERT_OK(umm_msync(x.mm[1], AT(0), PG(3), UMM_MS_SYNC));
	ASSERT_TRUE(file_is("pw", orig, size));
	ASSERT_TRUE(machine_valid(x.u));
	ASSERT_OK(umm_munmap(x.mm[0], AT(0), PG(3)));
	ASSERT_TRUE(file_is("pw", orig, size));
	ASSERT_TRUE(reads_as(x.mm[0], AT(8), orig, size));

	/* again, ending with exit and put */
	ASSERT_OK(map_file(x.mm[0], AT(0), 3, RW, PRIVATE, x.f[0], 0));
	ASSERT_TRUE(put_byte(x.mm[0], AT(1), 0x42));
	ASSERT_EQ(byte_at(x.mm[0], AT(1)), 0x42);
	ASSERT_EQ(byte_at(x.mm[1], AT(1)), orig[PS]);
	ffix_exit(&x, 0);
	ffix_exit(&x, 1);
	ffix_put(&x, 0);
	ASSERT_TRUE(file_is("pw", orig, size));
	return ffix_fini(&x);
}

/* ---- one page-cache frame for every mapping ---- */

/*
 *   mm0: AT(0) 01 shared RW   mm1: AT(0) 01 shared RO   mm2: AT(0) 01 private RW
 * All three map the same frames (mapcount 3, refcount 4) until mm2 writes
 * page 0: its page becomes its own anonymous copy, the others keep theirs.
 */
static bool test_page_cache_shared_by_mms(void)
{
	struct umm_pageinfo pi[3];
	struct umm_mm_stat st;
	uint64_t pfn0;
	struct ffix x;

	ASSERT_TRUE(ffix_file(&x, 3, "pc", PG(2), 9, NULL));
	ASSERT_OK(map_file(x.mm[0], AT(0), 2, RW, SHARED, x.f[0], 0));
	ASSERT_OK(map_file(x.mm[1], AT(0), 2, RO, SHARED, x.f[0], 0));
	ASSERT_OK(map_file(x.mm[2], AT(0), 2, RW, PRIVATE, x.f[0], 0));
	for (int i = 0; i < 3; i++)
		ASSERT_TRUE(reads_file(x.mm[i], AT(0), 0, PG(2), 9));
	for (int i = 0; i < 3; i++) {
		pi[i] = pinfo(x.mm[i], AT(0));
		ASSERT_TRUE(pi[i].flags & UMM_PI_PRESENT);
		ASSERT_FALSE(pi[i].flags & (UMM_PI_ANON | UMM_PI_DIRTY));
		if (i > 0)	/* read-only, or private: a store must fault */
			ASSERT_FALSE(pi[i].flags & UMM_PI_WRITE);
		ASSERT_EQ(pi[i].pfn, pi[0].pfn);
		ASSERT_EQ(pi[i].mapcount, 3);
		ASSERT_EQ(pi[i].refcount, 4);
		ASSERT_EQ(umm_page_rmap_count(x.mm[i], AT(0)), 3);
		st = mstat(x.mm[i]);
		ASSERT_EQ(st.rss_file, 2);
		ASSERT_EQ(st.rss_anon, 0);
	}
	ASSERT_NE(pinfo(x.mm[0], AT(1)).pfn, pi[0].pfn);
	pfn0 = pi[0].pfn;

	ASSERT_TRUE(put_byte(x.mm[2], AT(0) + 1, 0x99));
	pi[2] = pinfo(x.mm[2], AT(0));
	ASSERT_NE(pi[2].pfn, pfn0);
	ASSERT_EQ(pi[2].flags & (UMM_PI_PRESENT | UMM_PI_ANON | UMM_PI_WRITE),
		  UMM_PI_PRESENT | UMM_PI_ANON | UMM_PI_WRITE);
	ASSERT_EQ(pi[2].mapcount, 1);
	ASSERT_EQ(pi[2].refcount, 1);
	ASSERT_EQ(umm_page_rmap_count(x.mm[2], AT(0)), 1);
	for (int i = 0; i < 2; i++) {
		pi[i] = pinfo(x.mm[i], AT(0));
		ASSERT_EQ(pi[i].pfn, pfn0);
		ASSERT_FALSE(pi[i].flags & UMM_PI_ANON);
		ASSERT_EQ(pi[i].mapcount, 2);
		ASSERT_EQ(pi[i].refcount, 3);
		ASSERT_EQ(umm_page_rmap_count(x.mm[i], AT(0)), 2);
		ASSERT_EQ(byte_at(x.mm[i], AT(0) + 1), fbyte(1, 9));
	}
	ASSERT_EQ(byte_at(x.mm[2], AT(0) + 1), 0x99);
	ASSERT_TRUE(reads_file(x.mm[2], AT(0) + 2, 2, PG(2) - 2, 9));
	ASSERT_EQ(pinfo(x.mm[2], AT(1)).mapcount, 3);		/* page 1 untouched */
	ASSERT_EQ(umm_page_rmap_count(x.mm[0], AT(1)), 3);
	st = mstat(x.mm[2]);
	ASSERT_EQ(st.rss_file, 1);
	ASSERT_EQ(st.rss_anon, 1);

	/* a shared store is seen by the other shared mm, not by the copy */
	ASSERT_TRUE(put_byte(x.mm[0], AT(0) + 1, 0x33));
	ASSERT_EQ(byte_at(x.mm[1], AT(0) + 1), 0x33);
	ASSERT_EQ(byte_at(x.mm[2], AT(0) + 1), 0x99);
	ASSERT_EQ(pinfo(x.mm[0], AT(0)).pfn, pfn0);
	return ffix_fini(&x);
}

/*
 * Two umm_file_open()s of one path are the same file: its page cache (one
 * frame per page) is shared by every mapping in the machine, and a store
 * through one is seen through the other.
 */
static bool test_two_opens_share_page_cache(void)
{
	struct umm_pageinfo a, b;
	struct ffix x;

	ASSERT_TRUE(ffix_file(&x, 2, "two", PS, 10, NULL));
	ASSERT_TRUE(ffix_open(&x, 1, "two", O_RDWR));
	ASSERT_OK(map_file(x.mm[0], AT(0), 1, RW, SHARED, x.f[0], 0));
	ASSERT_OK(map_file(x.mm[1], AT(0), 1, RW, SHARED, x.f[1], 0));
	ASSERT_EQ(byte_at(x.mm[0], AT(0)), fbyte(0, 10));
	ASSERT_EQ(byte_at(x.mm[1], AT(0)), fbyte(0, 10));
	ASSERT_TRUE(put_byte(x.mm[0], AT(0), 0x01));
	ASSERT_EQ(byte_at(x.mm[1], AT(0)), 0x01);
	a = pinfo(x.mm[0], AT(0));
	b = pinfo(x.mm[1], AT(0));
	ASSERT_EQ(a.pfn, b.pfn);
	ASSERT_EQ(a.mapcount, 2);
	return ffix_fini(&x);
}

/*
 * Stores through mappings of two opens of one path are both kept: each
 * store reaches the file whatever the order of the writebacks.
 */
static bool test_two_opens_lose_no_store(void)
{
	uint8_t model[PS];
	struct ffix x;

	ASSERT_TRUE(ffix_file(&x, 2, "two2", PS, 26, model));
	ASSERT_TRUE(ffix_open(&x, 1, "two2", O_RDWR));
	ASSERT_OK(map_file(x.mm[0], AT(0), 1, RW, SHARED, x.f[0], 0));
	ASSERT_OK(map_file(x.mm[1], AT(0), 1, RW, SHARED, x.f[1], 0));
	ASSERT_TRUE(put_byte(x.mm[0], AT(0), 0xa0));
	ASSERT_TRUE(put_byte(x.mm[1], AT(0) + 1, 0xa1));
	model[0] = 0xa0;
	model[1] = 0xa1;
	ffix_exit(&x, 0);
	ffix_exit(&x, 1);
	ASSERT_TRUE(file_is("two2", model, PS));
	return ffix_fini(&x);
}

/*
 * Fork: the child faults in the same page-cache frames; a private store in
 * the child copies only the child's page; shared stores are seen by both.
 *
 *   parent and child: AT(0) 0 private RW     AT(4) 1 shared RW
 */
static bool test_fork_shares_file_frames(void)
{
	struct umm_pageinfo pp, pc;
	struct umm_mm *child;
	uint64_t pfn;
	struct ffix x;

	ASSERT_TRUE(ffix_file(&x, 1, "fk", PG(2), 11, NULL));
	ASSERT_OK(map_file(x.mm[0], AT(0), 1, RW, PRIVATE, x.f[0], 0));
	ASSERT_OK(map_file(x.mm[0], AT(4), 1, RW, SHARED, x.f[0], PS));
	ASSERT_TRUE(reads_file(x.mm[0], AT(0), 0, PS, 11));
	ASSERT_TRUE(reads_file(x.mm[0], AT(4), PS, PS, 11));
	ASSERT_OK(umm_mm_fork(x.mm[0], &child));
	x.mm[1] = child;
	ASSERT_TRUE(reads_file(child, AT(0), 0, PS, 11));
	ASSERT_TRUE(reads_file(child, AT(4), PS, PS, 11));
	for (int p = 0; p < 2; p++) {
		pp = pinfo(x.mm[0], AT(4 * p));
		pc = pinfo(child, AT(4 * p));
		ASSERT_EQ(pp.pfn, pc.pfn);
		ASSERT_FALSE(pc.flags & UMM_PI_ANON);
		ASSERT_EQ(pc.mapcount, 2);
		ASSERT_EQ(pc.refcount, 3);
		ASSERT_EQ(umm_page_rmap_count(child, AT(4 * p)), 2);
	}
	ASSERT_EQ(mstat(child).rss_file, 2);
	pfn = pinfo(x.mm[0], AT(0)).pfn;	/* file page 0 */

	/* the child's private store copies; the parent keeps the cache page */
	ASSERT_TRUE(put_byte(child, AT(0) + 3, 0xcc));
	pc = pinfo(child, AT(0));
	pp = pinfo(x.mm[0], AT(0));
	ASSERT_NE(pc.pfn, pfn);
	ASSERT_TRUE(pc.flags & UMM_PI_ANON);
	ASSERT_EQ(pp.pfn, pfn);
	ASSERT_FALSE(pp.flags & UMM_PI_ANON);
	ASSERT_EQ(pp.mapcount, 1);
	ASSERT_EQ(pp.refcount, 2);
	ASSERT_EQ(byte_at(x.mm[0], AT(0) + 3), fbyte(3, 11));
	ASSERT_EQ(byte_at(child, AT(0) + 3), 0xcc);
	ASSERT_TRUE(machine_valid(x.u));

	/* shared stores cross in both directions */
	ASSERT_TRUE(put_byte(x.mm[0], AT(4) + 1, 0x10));
	ASSERT_EQ(byte_at(child, AT(4) + 1), 0x10);
	ASSERT_TRUE(put_byte(child, AT(4) + 2, 0x20));
	ASSERT_EQ(byte_at(x.mm[0], AT(4) + 2), 0x20);
	ASSERT_EQ(pinfo(x.mm[0], AT(4)).pfn, pinfo(child, AT(4)).pfn);
	ASSERT_OK(umm_msync(child, AT(4), PS, UMM_MS_SYNC));
	{
		uint64_t sz;
		uint8_t *got = slurp("fk", &sz);

		ASSERT_TRUE(got != NULL);
		ASSERT_EQ(got[PS + 1], 0x10);
		ASSERT_EQ(got[PS + 2], 0x20);
		ASSERT_EQ(got[3], fbyte(3, 11));
		free(got);
	}

	/* a fork after a private write shares the anonymous copy, COW */
	{
		struct umm_mm *gc;

		ASSERT_OK(umm_mm_fork(child, &gc));
		x.mm[2] = gc;
		ASSERT_EQ(byte_at(gc, AT(0) + 3), 0xcc);
		ASSERT_EQ(pinfo(gc, AT(0)).pfn, pinfo(child, AT(0)).pfn);
		ASSERT_EQ(umm_page_rmap_count(gc, AT(0)), 2);
		ASSERT_TRUE(put_byte(gc, AT(0) + 3, 0xdd));
		ASSERT_EQ(byte_at(child, AT(0) + 3), 0xcc);
		ASSERT_EQ(umm_page_rmap_count(child, AT(0)), 1);
	}
	return ffix_fini(&x);
}

/* ---- cleaning ---- */

/*
 * page_mkclean write-protects and cleans every shared PTE of a page and
 * counts those that were writable or dirty: 2 when two mms wrote, then 0.
 *   mm0, mm1: AT(0) 0 shared RW    mm2: AT(0) 0 shared RO   mm3: private
 */
static bool test_page_mkclean(void)
{
	const uint64_t size = PS;
	uint8_t *model = scratch[0];
	struct umm_pageinfo pi;
	struct ffix x;

	ASSERT_TRUE(ffix_file(&x, 4, "mc", size, 12, model));
	ASSERT_OK(map_file(x.mm[0], AT(0), 1, RW, SHARED, x.f[0], 0));
	ASSERT_OK(map_file(x.mm[1], AT(0), 1, RW, SHARED, x.f[0], 0));
	ASSERT_OK(map_file(x.mm[2], AT(0), 1, RO, SHARED, x.f[0], 0));
	ASSERT_OK(map_file(x.mm[3], AT(0), 1, RW, PRIVATE, x.f[0], 0));
	ASSERT_EQ(byte_at(x.mm[2], AT(0)), model[0]);
	ASSERT_EQ(byte_at(x.mm[3], AT(0)), model[0]);
	ASSERT_EQ(umm_page_mkclean(x.mm[2], AT(0)), 0);		/* nobody wrote */
	ASSERT_TRUE(put_byte(x.mm[0], AT(0) + 1, 0x01));
	ASSERT_TRUE(put_byte(x.mm[1], AT(0) + 2, 0x02));
	model[1] = 0x01;
	model[2] = 0x02;
	ASSERT_EQ(umm_page_rmap_count(x.mm[2], AT(0)), 4);
	ASSERT_EQ(umm_page_mkclean(x.mm[2], AT(0)), 2);
	ASSERT_EQ(umm_page_mkclean(x.mm[0], AT(0)), 0);
	for (int i = 0; i < 3; i++)
		ASSERT_FALSE(pinfo(x.mm[i], AT(0)).flags & UMM_PI_WRITE);
	ASSERT_EQ(umm_page_rmap_count(x.mm[2], AT(0)), 4);	/* still mapped */
	/* the dirt moved to the page: msync writes both stores */
	ASSERT_OK(umm_msync(x.mm[1], AT(0), PS, UMM_MS_SYNC));
	ASSERT_TRUE(file_is("mc", model, size));
	pi = pinfo(x.mm[0], AT(0));
	ASSERT_FALSE(pi.flags & (UMM_PI_WRITE | UMM_PI_DIRTY));

	/* one more store: one PTE to clean */
	ASSERT_TRUE(put_byte(x.mm[1], AT(0) + 3, 0x03));
	model[3] = 0x03;
	ASSERT_EQ(umm_page_mkclean(x.mm[0], AT(0)), 1);
	ASSERT_EQ(umm_page_mkclean(x.mm[0], AT(0)), 0);
	ASSERT_EQ(byte_at(x.mm[0], AT(0) + 3), 0x03);
	/* the private copy is anonymous: nothing to clean */
	ASSERT_TRUE(put_byte(x.mm[3], AT(0), 0x44));
	ASSERT_EQ(umm_page_mkclean(x.mm[3], AT(0)), 0);
	ASSERT_EQ(umm_page_rmap_count(x.mm[0], AT(0)), 3);
	ASSERT_TRUE(machine_valid(x.u));
	ffix_exit(&x, 0);
	ffix_exit(&x, 1);
	ASSERT_TRUE(file_is("mc", model, size));
	return ffix_fini(&x);
}

/* ---- try_to_unmap ---- */

/*
 *   mm0: AT(0) 01 shared RW   mm1: AT(0) 01 private RW   mm2: AT(0) 01 shared RO
 * try_to_unmap on file page 1 (found from mm1) unmaps it everywhere; the
 * page stays in the cache with mm0's dirty bytes, is faulted back in (same
 * frame) and msync writes them.
 */
static bool test_try_to_unmap_file_page(void)
{
	const uint64_t size = PG(2);
	uint8_t *model = scratch[0];
	struct umm_pageinfo pi;
	uint64_t pfn1;
	struct ffix x;

	ASSERT_TRUE(ffix_file(&x, 3, "tu", size, 13, model));
	ASSERT_OK(map_file(x.mm[0], AT(0), 2, RW, SHARED, x.f[0], 0));
	ASSERT_OK(map_file(x.mm[1], AT(0), 2, RW, PRIVATE, x.f[0], 0));
	ASSERT_OK(map_file(x.mm[2], AT(0), 2, RO, SHARED, x.f[0], 0));
	for (int i = 0; i < 3; i++)
		ASSERT_TRUE(reads_as(x.mm[i], AT(0), model, size));
	ASSERT_TRUE(put_byte(x.mm[0], AT(1) + 17, 0xd1));
	model[PS + 17] = 0xd1;
	pfn1 = pinfo(x.mm[0], AT(1)).pfn;
	ASSERT_EQ(umm_page_rmap_count(x.mm[1], AT(1)), 3);

	ASSERT_OK(umm_try_to_unmap(x.mm[1], AT(1)));
	for (int i = 0; i < 3; i++) {
		pi = pinfo(x.mm[i], AT(1));
		ASSERT_FALSE(pi.flags & UMM_PI_PRESENT);
		ASSERT_ERR(umm_page_rmap_count(x.mm[i], AT(1)), EFAULT);
		ASSERT_ERR(umm_page_referenced(x.mm[i], AT(1)), EFAULT);
		ASSERT_ERR(umm_page_mkclean(x.mm[i], AT(1)), EFAULT);
		ASSERT_ERR(umm_try_to_unmap(x.mm[i], AT(1)), EFAULT);
		ASSERT_EQ(umm_page_rmap_count(x.mm[i], AT(0)), 3);	/* page 0 stays */
		ASSERT_EQ(mstat(x.mm[i]).rss_file, 1);
	}
	ASSERT_TRUE(machine_valid(x.u));

	/* faulted back from the cache: same frame, dirty bytes intact */
	for (int i = 2; i >= 0; i--)
		ASSERT_TRUE(reads_as(x.mm[i], AT(0), model, size));
	ASSERT_EQ(pinfo(x.mm[1], AT(1)).pfn, pfn1);
	ASSERT_EQ(umm_page_rmap_count(x.mm[0], AT(1)), 3);
	ASSERT_OK(umm_msync(x.mm[0], AT(0), PG(2), UMM_MS_SYNC));
	ASSERT_TRUE(file_is("tu", model, size));

	/* dirty, unmapped, never faulted back: munmap still writes it */
	ASSERT_TRUE(put_byte(x.mm[0], AT(0) + 5, 0xd0));
	model[5] = 0xd0;
	ASSERT_OK(umm_try_to_unmap(x.mm[0], AT(0)));
	ASSERT_FALSE(pinfo(x.mm[0], AT(0)).flags & UMM_PI_PRESENT);
	ASSERT_OK(umm_munmap(x.mm[0], AT(0), PG(2)));
	ASSERT_TRUE(file_is("tu", model, size));
	ASSERT_TRUE(reads_as(x.mm[2], AT(0), model, size));
	ASSERT_TRUE(machine_valid(x.u));

	/* and the same through the last put */
	ASSERT_OK(map_file(x.mm[0], AT(0), 2, RW, SHARED, x.f[0], 0));
	ASSERT_TRUE(put_byte(x.mm[0], AT(1) + 1, 0xd2));
	model[PS + 1] = 0xd2;
	ASSERT_OK(umm_try_to_unmap(x.mm[2], AT(1)));
	ffix_put(&x, 0);
	for (int i = 0; i < 3; i++)
		ffix_exit(&x, i);
	ASSERT_TRUE(file_is("tu", model, size));
	return ffix_fini(&x);
}

/* An mlocked file page cannot be unmapped: -EBUSY, and it stays mapped. */
static bool test_try_to_unmap_mlocked(void)
{
	struct ffix x;

	ASSERT_TRUE(ffix_file(&x, 1, "tl", PS, 14, NULL));
	ASSERT_OK(map_file(x.mm[0], AT(0), 1, RW, SHARED | UMM_MAP_LOCKED, x.f[0], 0));
	ASSERT_TRUE(pinfo(x.mm[0], AT(0)).flags & UMM_PI_MLOCKED);
	ASSERT_ERR(umm_try_to_unmap(x.mm[0], AT(0)), EBUSY);
	ASSERT_TRUE(pinfo(x.mm[0], AT(0)).flags & UMM_PI_PRESENT);
	ASSERT_EQ(umm_page_rmap_count(x.mm[0], AT(0)), 1);
	ASSERT_TRUE(reads_file(x.mm[0], AT(0), 0, PS, 14));
	return ffix_fini(&x);
}

/* ---- errors ---- */

static bool test_open_errors(void)
{
	struct umm_file *f = NULL;
	struct ffix x;

	ASSERT_TRUE(make_file("oe", PS, 15));
	ASSERT_TRUE(ffix_init(&x, 0));
	ASSERT_ERR(umm_file_open(x.u, tmp_path("missing"), O_RDONLY, &f), ENOENT);
	ASSERT_ERR(umm_file_open(x.u, tmp_dir(), O_RDONLY, &f), EISDIR);
	ASSERT_ERR(umm_file_open(x.u, tmp_path("oe"), O_WRONLY, &f), EINVAL);
	ASSERT_ERR(umm_file_open(x.u, tmp_path("oe"), O_RDWR | O_APPEND, &f), EINVAL);
	ASSERT_ERR(umm_file_open(x.u, tmp_path("oe"), O_ACCMODE, &f), EINVAL);
	ASSERT_ERR(umm_file_open(x.u, NULL, O_RDONLY, &f), EINVAL);
	ASSERT_ERR(umm_file_open(x.u, tmp_path("oe"), O_RDONLY, NULL), EINVAL);
	ASSERT_TRUE(f == NULL);
	/* O_CREAT makes an empty file; O_TRUNC empties one */
	ASSERT_OK(umm_file_open(x.u, tmp_path("oc"), O_RDWR | O_CREAT, &f));
	ASSERT_EQ(umm_file_size(f), 0);
	umm_file_put(f);
	ASSERT_EQ(host_size("oc"), 0);
	ASSERT_OK(umm_file_open(x.u, tmp_path("oe"), O_RDWR | O_TRUNC, &f));
	ASSERT_EQ(umm_file_size(f), 0);
	umm_file_put(f);
	ASSERT_EQ(host_size("oe"), 0);
	/* a second open shares the cache, but may not truncate it under the first */
	ASSERT_TRUE(make_file("ot", PS, 16));
	ASSERT_OK(umm_file_open(x.u, tmp_path("ot"), O_RDWR, &f));
	{
		struct umm_file *g = NULL;

		ASSERT_ERR(umm_file_open(x.u, tmp_path("ot"), O_RDWR | O_TRUNC, &g), EBUSY);
		ASSERT_TRUE(g == NULL);
		ASSERT_EQ(host_size("ot"), PS);
		ASSERT_OK(umm_file_open(x.u, tmp_path("ot"), O_RDONLY, &g));
		ASSERT_EQ(umm_file_size(g), PS);
		umm_file_put(g);
	}
	umm_file_put(f);
	return ffix_fini(&x);
}

/* An empty file maps but has no page to fault: every access -EFAULT. */
static bool test_empty_file(void)
{
	struct ffix x;
	char c;

	ASSERT_TRUE(ffix_file(&x, 1, "empty", 0, 16, NULL));
	ASSERT_OK(map_file(x.mm[0], AT(0), 2, RW, SHARED, x.f[0], 0));
	ASSERT_ERR(umm_read(x.mm[0], AT(0), &c, 1), EFAULT);
	ASSERT_ERR(umm_write(x.mm[0], AT(1), &c, 1), EFAULT);
	ASSERT_EQ(pinfo(x.mm[0], AT(0)).flags, 0);
	ASSERT_OK(umm_msync(x.mm[0], AT(0), PG(2), UMM_MS_SYNC));
	ASSERT_TRUE(ffix_fini(&x));
	ASSERT_EQ(host_size("empty"), 0);
	return true;
}

static bool test_mmap_errors(void)
{
	uint64_t out;
	uint8_t orig[PS];
	struct ffix x;

	fill(orig, 0, PS, 17);
	ASSERT_TRUE(make_file("me", PG(2), 17));
	ASSERT_TRUE(ffix_init(&x, 1));
	ASSERT_TRUE(ffix_open(&x, 0, "me", O_RDONLY));
	ASSERT_TRUE(ffix_open(&x, 1, "me", O_RDWR));
	/* a shared writable mapping of a read-only file */
	ASSERT_ERR(umm_mmap(x.mm[0], AT(0), PS, RW, SHARED | UMM_MAP_FIXED, x.f[0], 0, &out),
		   EACCES);
	ASSERT_ERR(umm_mmap(x.mm[0], 0, PS, UMM_PROT_WRITE, SHARED, x.f[0], 0, &out), EACCES);
	/* ... read-only is fine, but can never gain write */
	ASSERT_OK(map_file(x.mm[0], AT(0), 2, RO, SHARED, x.f[0], 0));
	ASSERT_ERR(umm_mprotect(x.mm[0], AT(0), PG(2), RW), EACCES);
	ASSERT_ERR(umm_mprotect(x.mm[0], AT(1), PS, UMM_PROT_WRITE), EACCES);
	ASSERT_ERR(umm_write(x.mm[0], AT(0), "x", 1), EFAULT);
	ASSERT_OK(umm_mprotect(x.mm[0], AT(0), PS, UMM_PROT_NONE));
	ASSERT_OK(umm_mprotect(x.mm[0], AT(0), PS, RO));
	ASSERT_TRUE(reads_as(x.mm[0], AT(0), orig, PS));
	/* a private writable mapping of a read-only file is copy-on-write */
	ASSERT_OK(map_file(x.mm[0], AT(4), 2, RW, PRIVATE, x.f[0], 0));
	ASSERT_TRUE(put_byte(x.mm[0], AT(4), (uint8_t)~orig[0]));
	ASSERT_EQ(byte_at(x.mm[0], AT(4)), (uint8_t)~orig[0]);
	ASSERT_EQ(byte_at(x.mm[0], AT(0)), orig[0]);
	ASSERT_OK(map_file(x.mm[0], AT(8), 2, RO, PRIVATE, x.f[0], 0));
	ASSERT_OK(umm_mprotect(x.mm[0], AT(8), PG(2), RW));
	ASSERT_TRUE(put_byte(x.mm[0], AT(9), 0x01));
	ASSERT_OK(umm_msync(x.mm[0], AT(4), PG(2), UMM_MS_SYNC));
	ASSERT_OK(umm_msync(x.mm[0], AT(8), PG(2), UMM_MS_SYNC));
	ASSERT_ERR(umm_msync(x.mm[0], AT(4), PG(6), UMM_MS_SYNC), ENOMEM);
	/* unaligned offset, ANONYMOUS with a file, no SHARED/PRIVATE */
	ASSERT_ERR(umm_mmap(x.mm[0], AT(20), PS, RO, PRIVATE | UMM_MAP_FIXED, x.f[1], 100, &out),
		   EINVAL);
	ASSERT_ERR(umm_mmap(x.mm[0], AT(20), PS, RO, PRIVATE | UMM_MAP_FIXED, x.f[1], PS + 1,
			    &out), EINVAL);
	ASSERT_ERR(umm_mmap(x.mm[0], AT(20), PS, RW,
			    SHARED | UMM_MAP_ANONYMOUS | UMM_MAP_FIXED, x.f[1], 0, &out), EINVAL);
	ASSERT_ERR(umm_mmap(x.mm[0], AT(20), PS, RW,
			    PRIVATE | UMM_MAP_ANONYMOUS | UMM_MAP_FIXED, x.f[1], 0, &out), EINVAL);
	ASSERT_ERR(umm_mmap(x.mm[0], AT(20), PS, RW, UMM_MAP_FIXED, x.f[1], 0, &out), EINVAL);
	ASSERT_ERR(umm_mmap(x.mm[0], AT(20), PS, RW, SHARED | PRIVATE | UMM_MAP_FIXED, x.f[1],
			    0, &out), EINVAL);
	ASSERT_ERR(umm_mmap(x.mm[0], AT(20), 0, RW, SHARED | UMM_MAP_FIXED, x.f[1], 0, &out),
		   EINVAL);
	ASSERT_ERR(umm_pagemap(x.mm[0], AT(20), &(struct umm_pageinfo){ 0 }), EFAULT);
	/* the O_RDWR file maps shared writable */
	ASSERT_OK(map_file(x.mm[0], AT(20), 2, RW, SHARED, x.f[1], 0));
	ASSERT_TRUE(reads_as(x.mm[0], AT(20), orig, PS));

	/* msync: bad flags, unaligned, holes */
	ASSERT_ERR(umm_msync(x.mm[0], AT(20), PS, UMM_MS_ASYNC | UMM_MS_SYNC), EINVAL);
	ASSERT_ERR(umm_msync(x.mm[0], AT(20), PS, 0x80), EINVAL);
	ASSERT_ERR(umm_msync(x.mm[0], AT(20) + 1, PS, UMM_MS_SYNC), EINVAL);
	ASSERT_ERR(umm_msync(x.mm[0], AT(30), PS, UMM_MS_SYNC), ENOMEM);
	ASSERT_ERR(umm_msync(x.mm[0], AT(20), PG(3), UMM_MS_SYNC), ENOMEM);	/* runs off */
	ASSERT_ERR(umm_msync(x.mm[0], AT(19), PG(2), UMM_MS_SYNC), ENOMEM);	/* starts in one */
	ASSERT_OK(umm_msync(x.mm[0], AT(20), PG(2), UMM_MS_ASYNC));
	ASSERT_OK(umm_msync(x.mm[0], AT(20), PG(2), UMM_MS_INVALIDATE));
	ASSERT_OK(umm_msync(x.mm[0], AT(20), 0, UMM_MS_SYNC));
	ASSERT_OK(umm_msync(x.mm[0], AT(20), 100, UMM_MS_SYNC));	/* len rounds up */
	/* as Linux: MS_INVALIDATE of an mlocked mapping is -EBUSY; a plain sync is not */
	ASSERT_OK(umm_mlock(x.mm[0], AT(21), PS));
	ASSERT_ERR(umm_msync(x.mm[0], AT(20), PG(2), UMM_MS_INVALIDATE), EBUSY);
	ASSERT_ERR(umm_msync(x.mm[0], AT(20), PG(2), UMM_MS_SYNC | UMM_MS_INVALIDATE), EBUSY);
	ASSERT_OK(umm_msync(x.mm[0], AT(20), PG(2), UMM_MS_SYNC));
	ASSERT_OK(umm_msync(x.mm[0], AT(20), PS, UMM_MS_INVALIDATE));
	ASSERT_OK(umm_munlock(x.mm[0], AT(21), PS));
	ASSERT_OK(umm_msync(x.mm[0], AT(20), PG(2), UMM_MS_INVALIDATE));
	/* a hole between two mappings: -ENOMEM, and the mapped parts written */
	ASSERT_TRUE(put_byte(x.mm[0], AT(20), 0xfe));
	ASSERT_OK(map_file(x.mm[0], AT(23), 1, RW, SHARED, x.f[1], PS));
	ASSERT_TRUE(put_byte(x.mm[0], AT(23), 0xfd));
	ASSERT_ERR(umm_msync(x.mm[0], AT(20), PG(4), UMM_MS_SYNC), ENOMEM);
	{
		uint64_t sz;
		uint8_t *got = slurp("me", &sz);

		ASSERT_TRUE(got != NULL);
		ASSERT_EQ(got[0], 0xfe);
		ASSERT_EQ(got[PS], 0xfd);
		free(got);
	}
	/* a mapping over a file of another machine */
	{
		struct umm *u2;
		struct umm_file *f2;

		ASSERT_OK(make_machine(1 << 20, 1, 0, &u2));
		ASSERT_OK(umm_file_open(u2, tmp_path("me"), O_RDWR, &f2));
		ASSERT_ERR(umm_mmap(x.mm[0], AT(40), PS, RO, SHARED | UMM_MAP_FIXED, f2, 0, &out),
			   EINVAL);
		umm_file_put(f2);
		umm_destroy(u2);
	}
	return ffix_fini(&x);
}

/* ---- RSS ---- */

static bool test_rss_file(void)
{
	struct umm_mm_stat st;
	struct ffix x;

	ASSERT_TRUE(ffix_file(&x, 1, "rss", PG(4), 18, NULL));
	ASSERT_OK(map_file(x.mm[0], AT(0), 4, RW, SHARED, x.f[0], 0));
	ASSERT_OK(map_file(x.mm[0], AT(8), 4, RW, PRIVATE, x.f[0], 0));
	st = mstat(x.mm[0]);
	ASSERT_EQ(st.rss_file, 0);
	ASSERT_EQ(st.total_vm, 8);
	ASSERT_TRUE(reads_file(x.mm[0], AT(0), 0, PG(3), 18));
	ASSERT_EQ(mstat(x.mm[0]).rss_file, 3);
	ASSERT_TRUE(put_byte(x.mm[0], AT(3), 1));		/* shared store: file */
	ASSERT_TRUE(reads_file(x.mm[0], AT(8), 0, PG(2), 18));
	st = mstat(x.mm[0]);
	ASSERT_EQ(st.rss_file, 6);
	ASSERT_EQ(st.rss_anon, 0);
	ASSERT_TRUE(put_byte(x.mm[0], AT(9), 2));		/* COW of a cache page */
	ASSERT_TRUE(put_byte(x.mm[0], AT(10), 3));		/* COW at first touch */
	st = mstat(x.mm[0]);
	ASSERT_EQ(st.rss_file, 5);
	ASSERT_EQ(st.rss_anon, 2);
	ASSERT_EQ(st.rss_shmem, 0);
	ASSERT_TRUE(machine_valid(x.u));
	/* file page 0 is mapped at AT(0) and AT(8): both go */
	ASSERT_OK(umm_try_to_unmap(x.mm[0], AT(0)));
	ASSERT_EQ(mstat(x.mm[0]).rss_file, 3);
	ASSERT_OK(umm_munmap(x.mm[0], AT(8), PG(4)));
	st = mstat(x.mm[0]);
	ASSERT_EQ(st.rss_file, 3);
	ASSERT_EQ(st.rss_anon, 0);
	ASSERT_OK(umm_munmap(x.mm[0], AT(0), PG(4)));
	st = mstat(x.mm[0]);
	ASSERT_EQ(st.rss_file, 0);
	ASSERT_EQ(st.total_vm, 0);
	return ffix_fini(&x);
}

/* ---- mremap and mprotect of file mappings ---- */

/*
 * A shared file mapping moved by mremap keeps its file offsets: stores at
 * the new address reach the right file bytes, and the rmap finds the page
 * there.
 *   AT(0) 123 (offset PG(1)) --mremap--> AT(20) 123
 */
static bool test_mremap_file_mapping(void)
{
	const uint64_t size = PG(4);
	uint8_t *model = scratch[0];
	uint64_t out = 0;
	struct ffix x;

	ASSERT_TRUE(ffix_file(&x, 2, "mr", size, 19, model));
	ASSERT_OK(map_file(x.mm[0], AT(0), 3, RW, SHARED, x.f[0], PS));
	ASSERT_OK(map_file(x.mm[1], AT(0), 4, RO, SHARED, x.f[0], 0));
	ASSERT_TRUE(put_byte(x.mm[0], AT(1), 0x01));		/* file page 2 */
	model[PG(2)] = 0x01;
	{
		struct umm_vma_info vi;

		ASSERT_OK(umm_mm_vma_next(x.mm[0], AT(0), &vi));
		ASSERT_EQ(vi.start, AT(0));
		ASSERT_EQ(vi.pgoff, 1);
		ASSERT_TRUE(vi.shared && !vi.anonymous);
	}
	ASSERT_OK(umm_mremap(x.mm[0], AT(0), PG(3), PG(3), UMM_MREMAP_MAYMOVE | UMM_MREMAP_FIXED,
			     AT(20), &out));
	ASSERT_EQ(out, AT(20));
	{
		struct umm_vma_info vi;

		ASSERT_OK(umm_mm_vma_next(x.mm[0], AT(0), &vi));
		ASSERT_EQ(vi.start, AT(20));
		ASSERT_EQ(vi.pgoff, 1);		/* the file offset moves with it */
	}
	ASSERT_EQ(byte_at(x.mm[0], AT(21)), 0x01);
	ASSERT_TRUE(reads_as(x.mm[1], AT(0), model, size));
	ASSERT_EQ(umm_page_rmap_count(x.mm[1], AT(2)), 2);
	ASSERT_EQ(pinfo(x.mm[0], AT(21)).pfn, pinfo(x.mm[1], AT(2)).pfn);
	ASSERT_TRUE(machine_valid(x.u));
	ASSERT_TRUE(put_byte(x.mm[0], AT(22) + 1, 0x02));		/* file page 3 */
	model[PG(3) + 1] = 0x02;
	/* mprotect the middle read-only and back: the rmap still finds all */
	ASSERT_OK(umm_mprotect(x.mm[0], AT(21), PS, RO));
	ASSERT_EQ(umm_page_rmap_count(x.mm[0], AT(21)), 2);
	ASSERT_ERR(umm_write(x.mm[0], AT(21), "x", 1), EFAULT);
	ASSERT_TRUE(machine_valid(x.u));
	ASSERT_OK(umm_mprotect(x.mm[0], AT(21), PS, RW));
	ASSERT_OK(umm_msync(x.mm[0], AT(20), PG(3), UMM_MS_SYNC));
	ASSERT_TRUE(file_is("mr", model, size));
	return ffix_fini(&x);
}

/*
 * A sparse file of 8 GiB with data at 6 GiB: a mapping at that offset
 * reads and writes the right bytes (page-cache indexes past 2^20), and the
 * holes read as zeros.
 */
static bool test_large_offset(void)
{
	const uint64_t off = 6ULL << 30, size = 8ULL << 30;
	uint8_t page[PS], got[PS];
	struct ffix x;
	int fd;

	fd = open(tmp_path("big"), O_CREAT | O_TRUNC | O_RDWR, 0644);
	ASSERT_GE(fd, 0);
	fill(page, off, PS, 25);
	if (ftruncate(fd, (off_t)size) < 0 || pwrite(fd, page, PS, (off_t)off) != PS) {
		close(fd);
		TAP_DIAG("cannot make a sparse file: %s", strerror(errno));
		return false;
	}
	ASSERT_TRUE(ffix_init(&x, 1));
	ASSERT_TRUE(ffix_open(&x, 0, "big", O_RDWR));
	ASSERT_EQ(umm_file_size(x.f[0]), size);
	ASSERT_OK(map_file(x.mm[0], AT(0), 2, RW, SHARED, x.f[0], off));
	ASSERT_OK(map_file(x.mm[0], AT(4), 1, RW, PRIVATE, x.f[0], size - PS));
	ASSERT_OK(map_file(x.mm[0], AT(6), 2, RO, SHARED, x.f[0], size));	/* past EOF */
	ASSERT_TRUE(reads_file(x.mm[0], AT(0), off, PS, 25));
	ASSERT_TRUE(reads_zero(x.mm[0], AT(1), PS));
	ASSERT_TRUE(reads_zero(x.mm[0], AT(4), PS));
	ASSERT_ERR(umm_read(x.mm[0], AT(6), got, 1), EFAULT);
	ASSERT_TRUE(put_byte(x.mm[0], AT(1) + 1, 0xbb));
	ASSERT_OK(umm_msync(x.mm[0], AT(0), PG(2), UMM_MS_SYNC));
	ASSERT_EQ(pread(fd, got, 2, (off_t)(off + PS)), 2);
	ASSERT_EQ(got[0], 0);
	ASSERT_EQ(got[1], 0xbb);
	close(fd);
	ASSERT_TRUE(ffix_fini(&x));
	ASSERT_EQ(host_size("big"), size);
	unlink(tmp_path("big"));
	return true;
}

/* ---- madvise, populate, GUP ---- */

/*
 * MADV_DONTNEED drops PTEs, not data: a shared mapping's dirty bytes stay in
 * the page cache (and reach the file); a private mapping's copy is thrown
 * away and the file's bytes show through again.
 *   AT(0) 01 shared RW     AT(4) 01 private RW
 */
static bool test_dontneed_file(void)
{
	const uint64_t size = PG(2);
	uint8_t *model = scratch[0];
	struct ffix x;

	ASSERT_TRUE(ffix_file(&x, 1, "dn", size, 21, model));
	ASSERT_OK(map_file(x.mm[0], AT(0), 2, RW, SHARED, x.f[0], 0));
	ASSERT_OK(map_file(x.mm[0], AT(4), 2, RW, PRIVATE, x.f[0], 0));
	ASSERT_TRUE(put_byte(x.mm[0], AT(1) + 9, 0x91));
	model[PS + 9] = 0x91;
	ASSERT_TRUE(put_byte(x.mm[0], AT(5) + 8, 0x81));
	ASSERT_ERR(umm_madvise(x.mm[0], AT(0), PG(6), UMM_MADV_DONTNEED), ENOMEM);	/* hole */
	ASSERT_OK(umm_madvise(x.mm[0], AT(0), PG(2), UMM_MADV_DONTNEED));
	ASSERT_OK(umm_madvise(x.mm[0], AT(4), PG(2), UMM_MADV_DONTNEED));
	ASSERT_EQ(pinfo(x.mm[0], AT(1)).flags, 0);
	ASSERT_EQ(pinfo(x.mm[0], AT(5)).flags, 0);
	ASSERT_EQ(mstat(x.mm[0]).rss_file + mstat(x.mm[0]).rss_anon, 0);
	ASSERT_TRUE(reads_as(x.mm[0], AT(0), model, size));
	ASSERT_TRUE(reads_as(x.mm[0], AT(4), model, size));	/* the copy is gone */
	ASSERT_TRUE(machine_valid(x.u));
	ASSERT_OK(umm_msync(x.mm[0], AT(0), PG(2), UMM_MS_SYNC));
	ASSERT_TRUE(file_is("dn", model, size));
	return ffix_fini(&x);
}

/*
 * MAP_POPULATE on file mappings: shared ones map the cache pages, private
 * writable ones break COW at once (as Linux); pages past EOF stay empty
 * and the mmap still succeeds.
 */
static bool test_populate_file(void)
{
	struct umm_mm_stat st;
	struct ffix x;

	ASSERT_TRUE(ffix_file(&x, 1, "po", PG(2) + 1, 22, NULL));
	ASSERT_OK(map_file(x.mm[0], AT(0), 4, RW, SHARED | UMM_MAP_POPULATE, x.f[0], 0));
	st = mstat(x.mm[0]);
	ASSERT_EQ(st.rss_file, 3);
	ASSERT_EQ(st.rss_anon, 0);
	ASSERT_TRUE(pinfo(x.mm[0], AT(2)).flags & UMM_PI_PRESENT);
	ASSERT_EQ(pinfo(x.mm[0], AT(3)).flags, 0);
	ASSERT_OK(map_file(x.mm[0], AT(8), 4, RW, PRIVATE | UMM_MAP_POPULATE, x.f[0], 0));
	st = mstat(x.mm[0]);
	ASSERT_EQ(st.rss_file, 3);
	ASSERT_EQ(st.rss_anon, 3);
	ASSERT_TRUE(pinfo(x.mm[0], AT(8)).flags & UMM_PI_ANON);
	ASSERT_TRUE(reads_file(x.mm[0], AT(8), 0, PG(2) + 1, 22));
	ASSERT_OK(map_file(x.mm[0], AT(16), 4, RO, PRIVATE | UMM_MAP_POPULATE, x.f[0], 0));
	st = mstat(x.mm[0]);
	ASSERT_EQ(st.rss_file, 6);
	ASSERT_EQ(st.rss_anon, 3);
	ASSERT_EQ(umm_page_rmap_count(x.mm[0], AT(17)), 2);
	return ffix_fini(&x);
}

/*
 * A secondary MMU writing a shared file page through GUP: the store lands
 * in the page cache and msync writes it (GUP for write dirties the PTE).
 */
static bool test_gup_write_file_page(void)
{
	const uint64_t size = PS;
	uint8_t *model = scratch[0];
	struct umm_page *pg;
	struct ffix x;

	ASSERT_TRUE(ffix_file(&x, 1, "gup", size, 23, model));
	ASSERT_OK(map_file(x.mm[0], AT(0), 1, RW, SHARED, x.f[0], 0));
	ASSERT_OK(umm_get_user_page(x.mm[0], AT(0), 0, &pg));
	ASSERT_EQ(umm_page_pfn(pg), pinfo(x.mm[0], AT(0)).pfn);
	ASSERT_TRUE(!memcmp(umm_page_address(pg), model, PS));
	umm_put_page(pg);
	ASSERT_OK(umm_msync(x.mm[0], AT(0), PS, UMM_MS_SYNC));	/* clean, read-only */
	ASSERT_OK(umm_get_user_page(x.mm[0], AT(0), UMM_GUP_WRITE, &pg));
	ASSERT_EQ(umm_page_pfn(pg), pinfo(x.mm[0], AT(0)).pfn);	/* no copy */
	((uint8_t *)umm_page_address(pg))[33] = 0x33;
	model[33] = 0x33;
	umm_put_page(pg);
	ASSERT_TRUE(pinfo(x.mm[0], AT(0)).flags & UMM_PI_DIRTY);
	ASSERT_EQ(byte_at(x.mm[0], AT(0) + 33), 0x33);
	ASSERT_OK(umm_msync(x.mm[0], AT(0), PS, UMM_MS_SYNC));
	ASSERT_TRUE(file_is("gup", model, size));
	return ffix_fini(&x);
}

/*
 * Fork of a private file mapping that has both an anonymous copy (page 0)
 * and a page-cache page (page 1) mapped: the child maps both, COW; counts
 * and the rmap agree; msync on private or anonymous memory is a no-op.
 */
static bool test_fork_private_file_mixed(void)
{
	struct umm_mm *child;
	struct umm_pageinfo pp, pc;
	uint64_t out;
	struct ffix x;

	ASSERT_TRUE(ffix_file(&x, 1, "fm", PG(2), 24, NULL));
	ASSERT_OK(map_file(x.mm[0], AT(0), 2, RW, PRIVATE, x.f[0], 0));
	ASSERT_TRUE(put_byte(x.mm[0], AT(0), 0x70));
	ASSERT_TRUE(reads_file(x.mm[0], AT(1), PS, PS, 24));
	ASSERT_OK(umm_mm_fork(x.mm[0], &child));
	x.mm[1] = child;
	for (int p = 0; p < 2; p++) {
		pp = pinfo(x.mm[0], AT(p));
		pc = pinfo(child, AT(p));
		ASSERT_EQ(pp.pfn, pc.pfn);
		ASSERT_EQ(pc.mapcount, 2);
		ASSERT_EQ(!!(pc.flags & UMM_PI_ANON), p == 0);
		ASSERT_FALSE(pc.flags & UMM_PI_WRITE);
		ASSERT_EQ(umm_page_rmap_count(child, AT(p)), 2);
	}
	ASSERT_EQ(mstat(child).rss_anon, 1);
	ASSERT_EQ(mstat(child).rss_file, 1);
	ASSERT_TRUE(machine_valid(x.u));
	ASSERT_EQ(byte_at(child, AT(0)), 0x70);
	ASSERT_TRUE(put_byte(child, AT(1), 0x71));
	ASSERT_TRUE(put_byte(x.mm[0], AT(0), 0x72));
	ASSERT_EQ(byte_at(child, AT(0)), 0x70);
	ASSERT_EQ(byte_at(x.mm[0], AT(1)), fbyte(PS, 24));
	ASSERT_EQ(umm_page_rmap_count(x.mm[0], AT(1)), 1);
	ASSERT_OK(umm_msync(child, AT(0), PG(2), UMM_MS_SYNC));
	ASSERT_OK(umm_mmap(child, AT(8), PS, RW, PRIVATE | UMM_MAP_ANONYMOUS | UMM_MAP_FIXED,
			   NULL, 0, &out));
	ASSERT_TRUE(put_byte(child, AT(8), 1));
	ASSERT_OK(umm_msync(child, AT(8), PS, UMM_MS_SYNC));
	ASSERT_TRUE(ffix_fini(&x));
	ASSERT_TRUE(file_as_made("fm", PG(2), 24));
	return true;
}

/* ---- random coherence against a model ---- */

/*
 * Random stores, loads, msyncs, try_to_unmaps and mkcleans on one file of
 * 8 pages and 123 bytes:
 *   mm0: AT(0)  012345678   shared RW
 *   mm1: AT(0)  2345678     shared RW, offset PG(2)
 *   mm2: AT(0)  012345678   private RW
 * The model has the page cache (what shared mappings see, tail included)
 * and mm2's private copies.  After a final msync the file equals the
 * cache up to its size.
 */
static bool test_random_model(void)
{
	const uint64_t size = PG(8) + 123, cache_len = PG(9);
	uint64_t seed = tap_seed(), rng = seed | 1;
	uint8_t *cache = scratch[0], *priv = scratch[1];
	bool copied[9] = { false };
	int ops = tap_short() ? 300 : 3000;
	struct ffix x;

	memset(cache, 0, cache_len);	/* past EOF the cache reads zeros */
	ASSERT_TRUE(ffix_file(&x, 3, "rnd", size, 20, cache));
	ASSERT_OK(map_file(x.mm[0], AT(0), 9, RW, SHARED, x.f[0], 0));
	ASSERT_OK(map_file(x.mm[1], AT(0), 7, RW, SHARED, x.f[0], PG(2)));
	ASSERT_OK(map_file(x.mm[2], AT(0), 9, RW, PRIVATE, x.f[0], 0));

	for (int op = 0; op < ops; op++) {
		uint64_t r = tap_rand(&rng);
		uint64_t off = (r >> 8) % cache_len;
		size_t len = 1 + (size_t)((r >> 40) % 600);
		int which = (int)((r >> 4) % 3);
		uint64_t base = which == 1 ? PG(2) : 0;
		uint8_t buf[600];

		if (off < base)
			off += base;
		if (off + len > cache_len)
			len = (size_t)(cache_len - off);
		switch (r % 8) {
		case 0: case 1: case 2:		/* store */
			for (size_t i = 0; i < len; i++)
				buf[i] = (uint8_t)tap_rand(&rng);
			if (which == 2) {
				for (uint64_t p = off / PS; p <= (off + len - 1) / PS; p++) {
					if (!copied[p])
						memcpy(priv + PG(p), cache + PG(p), PS);
					copied[p] = true;
				}
				memcpy(priv + off, buf, len);
			} else {
				memcpy(cache + off, buf, len);
			}
			ASSERT_EQ(umm_write(x.mm[which], AT(0) + off - base, buf, len), len);
			break;
		case 3: case 4:			/* load and compare */
			for (size_t i = 0; i < len; i++) {
				uint64_t p = (off + i) / PS;

				buf[i] = which == 2 && copied[p] ? priv[off + i] : cache[off + i];
			}
			if (!reads_as(x.mm[which], AT(0) + off - base, buf, len)) {
				TAP_DIAG("op %d: mm%d offset %#" PRIx64, op, which, off);
				return false;
			}
			break;
		case 5: {			/* msync a few pages */
			uint64_t p0 = (off - base) / PS, n = 1 + (r >> 50) % 3;
			uint64_t npages = which == 1 ? 7 : 9;

			if (p0 + n > npages)
				n = npages - p0;
			ASSERT_OK(umm_msync(x.mm[which], AT(p0), PG(n), UMM_MS_SYNC));
			break;
		}
		case 6: {
			int ret = umm_try_to_unmap(x.mm[which], AT(0) + (off - base) / PS * PS);

			if (which == 2 && copied[off / PS])
				ASSERT_ERR(ret, EBUSY);
			else
				ASSERT_TRUE(ret == 0 || ret == -EFAULT);
			break;
		}
		case 7: {
			int ret = umm_page_mkclean(x.mm[which], AT(0) + (off - base) / PS * PS);

			ASSERT_TRUE(ret >= 0 || ret == -EFAULT);
			if (which == 2 && copied[off / PS])
				ASSERT_TRUE(ret == 0);
			break;
		}
		}
	}
	ASSERT_TRUE(machine_valid(x.u));
	ASSERT_OK(umm_msync(x.mm[1], AT(0), PG(7), UMM_MS_SYNC));
	ASSERT_OK(umm_msync(x.mm[0], AT(0), PG(9), UMM_MS_SYNC));
	ASSERT_TRUE(file_is("rnd", cache, size));
	ASSERT_TRUE(reads_as(x.mm[0], AT(0), cache, cache_len));
	ffix_exit(&x, 0);
	ffix_exit(&x, 1);
	ffix_exit(&x, 2);
	ffix_put(&x, 0);
	ASSERT_TRUE(file_is("rnd", cache, size));
	return ffix_fini(&x);
}

/*
 * msync against reclaim writing back the same pages.  msync took the
 * file's writeback lock and then each page's lock; reclaim writes back a
 * page it holds locked and then took the writeback lock: an ABBA deadlock
 * the soak found.  A thread reclaims without pause while this one writes a
 * page, msyncs the mapping and reads back what reached the file; with the
 * order wrong again it hangs (the runner's time limit ends it).
 */
struct reclaimer {
	struct umm *u;
	atomic_bool stop;
	unsigned long rounds, pages;
};

static void *reclaim_loop(void *arg)
{
	struct reclaimer *rc = arg;

	while (!atomic_load(&rc->stop)) {
		unsigned long got = 0;

		umm_reclaim(rc->u, 32, &got);
		rc->rounds++;
		rc->pages += got;
	}
	return NULL;
}

static bool test_msync_vs_reclaim(void)
{
	struct ffix x;
	struct reclaimer rc = { 0 };
	uint8_t page[PS], got[PS];
	int rounds = tap_short() ? 500 : 5000, fd, i;
	bool ok = true;
	pthread_t t;

	ASSERT_TRUE(ffix_file(&x, 1, "wb", PG(8), 1, NULL));
	ASSERT_OK(map_file(x.mm[0], AT(0), 8, RW, UMM_MAP_SHARED, x.f[0], 0));
	fd = open(tmp_path("wb"), O_RDONLY);
	ASSERT_TRUE(fd >= 0);
	rc.u = x.u;
	ASSERT_OK(pthread_create(&t, NULL, reclaim_loop, &rc));
	for (i = 0; i < rounds && ok; i++) {
		unsigned int p = i % 8;

		memset(page, (uint8_t)(i + 1), PS);
		ok = umm_write(x.mm[0], AT(p), page, PS) == PS &&
		     umm_msync(x.mm[0], AT(0), PG(8), UMM_MS_SYNC) == 0 &&
		     pread(fd, got, PS, (off_t)PG(p)) == PS && memcmp(got, page, PS) == 0;
	}
	atomic_store(&rc.stop, true);
	pthread_join(t, NULL);
	close(fd);
	TAP_DIAG("%d msyncs against %lu reclaim rounds (%lu pages reclaimed)", i, rc.rounds,
		 rc.pages);
	ASSERT_TRUE(ok);
	return ffix_fini(&x);
}

int main(void)
{
	if (!tmp_init("filemap")) {
		printf("1..0 # SKIP mkdtemp: %s\n", strerror(errno));
		return 0;
	}
	RUN_TEST(test_reads_equal_file);
	RUN_TEST(test_pagemap_of_file_page);
	RUN_TEST(test_shared_write_msync);
	RUN_TEST(test_shared_write_msync_offset);
	RUN_TEST(test_shared_write_munmap);
	RUN_TEST(test_shared_write_exit);
	RUN_TEST(test_writeback_never_extends);
	RUN_TEST(test_private_writes_stay_private);
	RUN_TEST(test_page_cache_shared_by_mms);
	RUN_TEST(test_two_opens_share_page_cache);
	RUN_TEST(test_two_opens_lose_no_store);
	RUN_TEST(test_fork_shares_file_frames);
	RUN_TEST(test_page_mkclean);
	RUN_TEST(test_try_to_unmap_file_page);
	RUN_TEST(test_try_to_unmap_mlocked);
	RUN_TEST(test_open_errors);
	RUN_TEST(test_empty_file);
	RUN_TEST(test_mmap_errors);
	RUN_TEST(test_rss_file);
	RUN_TEST(test_mremap_file_mapping);
	RUN_TEST(test_large_offset);
	RUN_TEST(test_dontneed_file);
	RUN_TEST(test_populate_file);
	RUN_TEST(test_gup_write_file_page);
	RUN_TEST(test_fork_private_file_mixed);
	RUN_TEST(test_random_model);
	RUN_TEST(test_msync_vs_reclaim);
	tmp_cleanup();
	return tap_done();
}
