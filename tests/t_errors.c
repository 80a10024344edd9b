// SPDX-License-Identifier: MIT
/*
 * t_errors.c - bad input (DESIGN.md §5): every call gets its errno back AND
 * leaves the address space as it was: same VMAs, same frames, same data,
 * same counters.
 *
 * Each test starts from this layout, one character per page from BASE:
 *
 *   0123456789AB
 *   AAAA  BBBBCC   A RW private (written), B R private (read: zero page),
 *                  C RW shared (written)
 *
 * Where DESIGN.md does not say, Linux's answer is expected; the few places
 * where the two differ are commented.
 */
#include <umm/umm.h>

#include "tap.h"
#include "fixture.h"

#define NPAGES	12

struct snap {
	int nr_vmas;
	struct umm_vma_info vma[16];
	struct umm_mm_stat st;
	struct umm_pageinfo pi[NPAGES];
	int pi_err[NPAGES];
};

/* The address space as fix_init_layout() left it. */
static struct snap before;

static void take_snap(struct umm_mm *mm, struct snap *s)
{
	uint64_t addr = 0;

	memset(s, 0, sizeof(*s));
	while (s->nr_vmas < 16 && umm_mm_vma_next(mm, addr, &s->vma[s->nr_vmas]) == 0)
		addr = s->vma[s->nr_vmas++].end;
	umm_mm_get_stat(mm, &s->st);
	for (int i = 0; i < NPAGES; i++)
		s->pi_err[i] = umm_pagemap(mm, AT(i), &s->pi[i]);
}

/* Is the data what setup wrote: A and C patterns (tag 0), B zeros? */
static bool data_intact(struct umm_mm *mm)
{
	return check_pat(mm, AT(0), 4, 0) && zeros_at(mm, AT(6), 4) &&
	       check_pat(mm, AT(10), 2, 0);
}

static bool unchanged(struct fix *f)
{
	struct snap now;

	take_snap(f->mm, &now);
	if (now.nr_vmas != before.nr_vmas) {
		TAP_DIAG("%d VMAs, was %d", now.nr_vmas, before.nr_vmas);
		return false;
	}
	for (int i = 0; i < now.nr_vmas; i++) {
		struct umm_vma_info *a = &now.vma[i], *b = &before.vma[i];

		if (a->start != b->start || a->end != b->end || a->prot != b->prot ||
		    a->shared != b->shared || a->locked != b->locked ||
		    a->mergeable != b->mergeable || a->pgoff != b->pgoff) {
			TAP_DIAG("VMA %d: [%#" PRIx64 ", %#" PRIx64 ") prot %d, was "
				 "[%#" PRIx64 ", %#" PRIx64 ") prot %d", i, a->start, a->end,
				 a->prot, b->start, b->end, b->prot);
			return false;
		}
	}
	if (memcmp(&now.st, &before.st, sizeof(now.st))) {
		TAP_DIAG("mm stat changed: rss_anon %" PRIu64 "/%" PRIu64 " total_vm %"
			 PRIu64 "/%" PRIu64 " map_count %" PRIu64 "/%" PRIu64,
			 now.st.rss_anon, before.st.rss_anon, now.st.total_vm,
			 before.st.total_vm, now.st.map_count, before.st.map_count);
		return false;
	}
	for (int i = 0; i < NPAGES; i++) {
		struct umm_pageinfo *a = &now.pi[i], *b = &before.pi[i];

		if (now.pi_err[i] != before.pi_err[i] || a->pfn != b->pfn ||
		    (a->flags & ~UMM_PI_YOUNG) != (b->flags & ~UMM_PI_YOUNG) ||
		    a->mapcount != b->mapcount || a->refcount != b->refcount) {
			TAP_DIAG("page %d: pagemap %d pfn %" PRIu64 " flags %#x, was %d pfn %"
				 PRIu64 " flags %#x", i, now.pi_err[i], a->pfn, a->flags,
				 before.pi_err[i], b->pfn, b->flags);
			return false;
		}
	}
	return data_intact(f->mm);
}

/* The call returns -@err and nothing changes. */
#define ASSERT_REFUSED(f, call, err) do { \
	ASSERT_ERR(call, err); \
	ASSERT_TRUE(unchanged(f)); \
} while (0)

/* An 8 MiB machine with the layout above, its snapshot taken into before. */
static bool fix_init_layout(struct fix *f)
{
	ASSERT_TRUE(fix_init_phys(f, 8 << 20));
	ASSERT_OK(map_at(f->mm, AT(0), 4, RW, PRIV));
	ASSERT_OK(map_at(f->mm, AT(6), 4, RO, PRIV));
	ASSERT_OK(map_at(f->mm, AT(10), 2, RW, SHRD));
	ASSERT_TRUE(write_pat(f->mm, AT(0), 4, 0));
	ASSERT_TRUE(write_pat(f->mm, AT(10), 2, 0));
	ASSERT_TRUE(data_intact(f->mm));	/* maps B's zero pages too */
	take_snap(f->mm, &before);
	ASSERT_EQ(before.nr_vmas, 3);
	return true;
}

/* ---- mmap ---- */

static bool test_mmap_bad_length(void)
{
	struct fix f;
	uint64_t out;

	ASSERT_TRUE(fix_init_layout(&f));
	ASSERT_REFUSED(&f, umm_mmap(f.mm, 0, 0, RW, PRIV, NULL, 0, &out), EINVAL);
	ASSERT_REFUSED(&f, umm_mmap(f.mm, AT(4), 0, RW, PRIV | UMM_MAP_FIXED, NULL, 0, &out),
		       EINVAL);
	/* FIXED: addr + len wraps, or passes the top of the user range. */
	ASSERT_REFUSED(&f, umm_mmap(f.mm, AT(4), 0 - AT(4), RW, PRIV | UMM_MAP_FIXED, NULL, 0,
				    &out), EINVAL);
	ASSERT_REFUSED(&f, umm_mmap(f.mm, UMM_TASK_SIZE - PS, PG(2), RW, PRIV | UMM_MAP_FIXED,
				    NULL, 0, &out), EINVAL);
	ASSERT_REFUSED(&f, umm_mmap(f.mm, UMM_TASK_SIZE, PS, RW, PRIV | UMM_MAP_FIXED, NULL, 0,
				    &out), EINVAL);
	/* No room for it anywhere: the address space is exhausted (Linux: -ENOMEM). */
	ASSERT_REFUSED(&f, umm_mmap(f.mm, 0, UMM_TASK_SIZE, RW, PRIV, NULL, 0, &out), ENOMEM);
	ASSERT_REFUSED(&f, umm_mmap(f.mm, 0, ~0ULL, RW, PRIV, NULL, 0, &out), ENOMEM);
	return fix_fini(&f);
}

static bool test_mmap_bad_address(void)
{
	struct fix f;
	uint64_t out;

	ASSERT_TRUE(fix_init_layout(&f));
	ASSERT_REFUSED(&f, umm_mmap(f.mm, AT(4) + 1, PS, RW, PRIV | UMM_MAP_FIXED, NULL, 0, &out),
		       EINVAL);
	ASSERT_REFUSED(&f, umm_mmap(f.mm, AT(0) + 2048, PS, RW, PRIV | UMM_MAP_FIXED, NULL, 0,
				    &out), EINVAL);
	ASSERT_REFUSED(&f, umm_mmap(f.mm, AT(4) + 8, PS, RW, PRIV | UMM_MAP_FIXED_NOREPLACE, NULL,
				    0, &out), EINVAL);
	/* Below the user range (Linux says -EPERM, from mmap_min_addr). */
	ASSERT_REFUSED(&f, umm_mmap(f.mm, 0, PS, RW, PRIV | UMM_MAP_FIXED, NULL, 0, &out), EINVAL);
	ASSERT_REFUSED(&f, umm_mmap(f.mm, UMM_MMAP_MIN_ADDR - PS, PS, RW, PRIV | UMM_MAP_FIXED,
				    NULL, 0, &out), EINVAL);
	return fix_fini(&f);
}

static bool test_mmap_unknown_prot_and_flags(void)
{
	static const int bad_prot[] = { 0x8, 0x10, 0x1000000, -1 };
	static const int bad_flags[] = { 0x4, 0x40, 0x800, 0x40000000 };
	struct fix f;
	uint64_t out;

	ASSERT_TRUE(fix_init_layout(&f));
	for (size_t i = 0; i < sizeof(bad_prot) / sizeof(bad_prot[0]); i++) {
		ASSERT_REFUSED(&f, umm_mmap(f.mm, AT(4), PG(2), RW | bad_prot[i],
					    PRIV | UMM_MAP_FIXED, NULL, 0, &out), EINVAL);
		ASSERT_REFUSED(&f, umm_mmap(f.mm, 0, PG(2), RW | bad_prot[i], PRIV, NULL, 0, &out),
			       EINVAL);
	}
	for (size_t i = 0; i < sizeof(bad_flags) / sizeof(bad_flags[0]); i++) {
		/* FIXED over A: a refusal must not have unmapped A first. */
		ASSERT_REFUSED(&f, umm_mmap(f.mm, AT(0), PG(2), RW,
					    PRIV | UMM_MAP_FIXED | bad_flags[i], NULL, 0, &out),
			       EINVAL);
		ASSERT_REFUSED(&f, umm_mmap(f.mm, 0, PG(2), RW, PRIV | bad_flags[i], NULL, 0, &out),
			       EINVAL);
	}
	return fix_fini(&f);
}

static bool test_mmap_conflicting_flags(void)
{
	struct fix f;
	uint64_t out;

	ASSERT_TRUE(fix_init_layout(&f));
	ASSERT_REFUSED(&f, umm_mmap(f.mm, AT(0), PG(2), RW,
				    UMM_MAP_SHARED | UMM_MAP_PRIVATE | UMM_MAP_ANONYMOUS | UMM_MAP_FIXED,
				    NULL, 0, &out), EINVAL);
	ASSERT_REFUSED(&f, umm_mmap(f.mm, AT(0), PG(2), RW, UMM_MAP_ANONYMOUS | UMM_MAP_FIXED,
				    NULL, 0, &out), EINVAL);
	ASSERT_REFUSED(&f, umm_mmap(f.mm, 0, PG(2), RW, UMM_MAP_ANONYMOUS, NULL, 0, &out), EINVAL);
	ASSERT_REFUSED(&f, umm_mmap(f.mm, 0, PG(2), RW, UMM_MAP_SHARED | UMM_MAP_PRIVATE |
				    UMM_MAP_ANONYMOUS, NULL, 0, &out), EINVAL);
	return fix_fini(&f);
}

static bool test_mmap_anonymous_with_file(void)
{
	/* Never dereferenced: the flags are refused before the file is looked at. */
	static uint64_t not_a_file[512];
	struct umm_file *file = (struct umm_file *)not_a_file;
	struct fix f;
	uint64_t out;
	int r;

	ASSERT_TRUE(fix_init_layout(&f));
	ASSERT_REFUSED(&f, umm_mmap(f.mm, AT(0), PG(2), RW, PRIV | UMM_MAP_FIXED, file, 0, &out),
		       EINVAL);
	ASSERT_REFUSED(&f, umm_mmap(f.mm, 0, PG(2), RW, SHRD, file, 0, &out), EINVAL);
	/* Not anonymous and no file: refused too (the errno is the file layer's). */
	r = umm_mmap(f.mm, AT(0), PG(2), RW, UMM_MAP_PRIVATE | UMM_MAP_FIXED, NULL, 0, &out);
	TAP_DIAG("file mapping without a file: %d", r);
	ASSERT_TRUE(r < 0);
	ASSERT_TRUE(unchanged(&f));
	return fix_fini(&f);
}

static bool test_mmap_unaligned_offset(void)
{
	struct fix f;
	uint64_t out;

	ASSERT_TRUE(fix_init_layout(&f));
	ASSERT_REFUSED(&f, umm_mmap(f.mm, AT(0), PG(2), RW, PRIV | UMM_MAP_FIXED, NULL, 100, &out),
		       EINVAL);
	ASSERT_REFUSED(&f, umm_mmap(f.mm, 0, PG(2), RW, SHRD, NULL, PS + 1, &out), EINVAL);
	return fix_fini(&f);
}

static bool test_mmap_fixed_noreplace_exists(void)
{
	struct fix f;
	uint64_t out;

	/*
	 *   0123456789AB
	 *   AAAA  BBBBCC
	 *      xxxx        FIXED_NOREPLACE 3..7 touches A and B: -EEXIST
	 *         xxxxxxx  9..16 touches B and C: -EEXIST
	 */
	ASSERT_TRUE(fix_init_layout(&f));
	ASSERT_REFUSED(&f, umm_mmap(f.mm, AT(3), PG(4), RW, PRIV | UMM_MAP_FIXED_NOREPLACE, NULL,
				    0, &out), EEXIST);
	ASSERT_REFUSED(&f, umm_mmap(f.mm, AT(9), PG(7), RW, PRIV | UMM_MAP_FIXED_NOREPLACE, NULL,
				    0, &out), EEXIST);
	ASSERT_REFUSED(&f, umm_mmap(f.mm, AT(7), PG(1), RO, PRIV | UMM_MAP_FIXED_NOREPLACE |
				    UMM_MAP_FIXED, NULL, 0, &out), EEXIST);
	return fix_fini(&f);
}

/* Not errors (Linux): lengths are rounded up to whole pages. */
static bool test_unaligned_length_rounds_up(void)
{
	struct fix f;
	struct umm_vma_info vi;
	uint64_t out;

	ASSERT_TRUE(fix_init_layout(&f));
	ASSERT_OK(umm_mmap(f.mm, AT(20), PS + 1, RW, PRIV | UMM_MAP_FIXED, NULL, 0, &out));
	ASSERT_OK(umm_mm_vma_next(f.mm, AT(20), &vi));
	ASSERT_EQ(vi.start, AT(20));
	ASSERT_EQ(vi.end, AT(22));
	ASSERT_OK(umm_munmap(f.mm, AT(21), 1));
	ASSERT_OK(umm_mm_vma_next(f.mm, AT(20), &vi));
	ASSERT_EQ(vi.end, AT(21));
	ASSERT_OK(umm_munmap(f.mm, AT(20), 10));
	ASSERT_TRUE(unchanged(&f));
	return fix_fini(&f);
}

/* ---- munmap, mprotect, madvise, mlock ---- */

static bool test_munmap_bad_range(void)
{
	struct fix f;

	ASSERT_TRUE(fix_init_layout(&f));
	ASSERT_REFUSED(&f, umm_munmap(f.mm, AT(0) + 1, PS), EINVAL);
	ASSERT_REFUSED(&f, umm_munmap(f.mm, AT(0) + 4095, PG(4)), EINVAL);
	ASSERT_REFUSED(&f, umm_munmap(f.mm, AT(0), 0), EINVAL);
	ASSERT_REFUSED(&f, umm_munmap(f.mm, AT(0), 0 - AT(0)), EINVAL);
	ASSERT_REFUSED(&f, umm_munmap(f.mm, AT(0), UMM_TASK_SIZE), EINVAL);
	/* A hole is not an error. */
	ASSERT_OK(umm_munmap(f.mm, AT(4), PG(2)));
	ASSERT_TRUE(unchanged(&f));
	return fix_fini(&f);
}

static bool test_mprotect_bad(void)
{
	struct fix f;

	ASSERT_TRUE(fix_init_layout(&f));
	ASSERT_REFUSED(&f, umm_mprotect(f.mm, AT(0) + 1, PS, RO), EINVAL);
	ASSERT_REFUSED(&f, umm_mprotect(f.mm, AT(0), PS, 0x8), EINVAL);
	ASSERT_REFUSED(&f, umm_mprotect(f.mm, AT(0), PS, RW | 0x100), EINVAL);
	/* Wraps (Linux: -ENOMEM; DESIGN.md: an overflowing range is -EINVAL). */
	ASSERT_REFUSED(&f, umm_mprotect(f.mm, AT(0), 0 - AT(0), RO), EINVAL);
	/* Starts in a hole, or covers one. */
	ASSERT_REFUSED(&f, umm_mprotect(f.mm, AT(4), PG(4), RO), ENOMEM);
	ASSERT_REFUSED(&f, umm_mprotect(f.mm, AT(12), PG(1), RO), ENOMEM);
	/* Length 0 does nothing, successfully (Linux). */
	ASSERT_OK(umm_mprotect(f.mm, AT(0), 0, UMM_PROT_NONE));
	ASSERT_TRUE(unchanged(&f));
	return fix_fini(&f);
}

static bool test_madvise_bad(void)
{
	struct fix f;

	ASSERT_TRUE(fix_init_layout(&f));
	ASSERT_REFUSED(&f, umm_madvise(f.mm, AT(0) + 1, PS, UMM_MADV_DONTNEED), EINVAL);
	ASSERT_REFUSED(&f, umm_madvise(f.mm, AT(0), PS, 5), EINVAL);
	ASSERT_REFUSED(&f, umm_madvise(f.mm, AT(0), PS, 1000), EINVAL);
	ASSERT_REFUSED(&f, umm_madvise(f.mm, AT(0), PS, -4), EINVAL);
	ASSERT_REFUSED(&f, umm_madvise(f.mm, AT(0), 0 - AT(0), UMM_MADV_DONTNEED), EINVAL);
	ASSERT_REFUSED(&f, umm_madvise(f.mm, AT(4), PG(2), UMM_MADV_DONTNEED), ENOMEM);
	ASSERT_REFUSED(&f, umm_madvise(f.mm, AT(4), PG(2), UMM_MADV_WILLNEED), ENOMEM);
	ASSERT_REFUSED(&f, umm_madvise(f.mm, AT(12), PG(100), UMM_MADV_COLD), ENOMEM);
	ASSERT_OK(umm_madvise(f.mm, AT(0), 0, UMM_MADV_DONTNEED));
	ASSERT_TRUE(unchanged(&f));
	return fix_fini(&f);
}

static bool test_mlock_bad(void)
{
	struct fix f;

	ASSERT_TRUE(fix_init_layout(&f));
	ASSERT_REFUSED(&f, umm_mlock(f.mm, AT(4), PG(2)), ENOMEM);
	ASSERT_REFUSED(&f, umm_mlock(f.mm, AT(12), PG(2)), ENOMEM);
	ASSERT_REFUSED(&f, umm_munlock(f.mm, AT(4), PG(1)), ENOMEM);
	ASSERT_REFUSED(&f, umm_mlock(f.mm, AT(0), 0 - AT(0)), EINVAL);
	return fix_fini(&f);
}

/*
 * A length that wraps only when rounded up to a whole page: an overflowing
 * range, -EINVAL (Linux agrees for munmap, madvise and mlock; its mprotect
 * says -ENOMEM).
 */
static bool test_length_wrapping_when_rounded(void)
{
	struct fix f;
	uint64_t out;

	ASSERT_TRUE(fix_init_layout(&f));
	ASSERT_REFUSED(&f, umm_mremap(f.mm, AT(0), ~0ULL, PS, UMM_MREMAP_MAYMOVE, 0, &out),
		       EINVAL);
	ASSERT_REFUSED(&f, umm_mremap(f.mm, AT(0), PS, ~0ULL, UMM_MREMAP_MAYMOVE, 0, &out),
		       EINVAL);
	ASSERT_REFUSED(&f, umm_munmap(f.mm, AT(0), ~0ULL), EINVAL);
	ASSERT_REFUSED(&f, umm_munmap(f.mm, AT(0), ~0ULL - 5), EINVAL);
	ASSERT_REFUSED(&f, umm_mprotect(f.mm, AT(0), ~0ULL, RO), EINVAL);
	ASSERT_REFUSED(&f, umm_madvise(f.mm, AT(0), ~0ULL, UMM_MADV_DONTNEED), EINVAL);
	ASSERT_REFUSED(&f, umm_mlock(f.mm, AT(0), ~0ULL), EINVAL);
	ASSERT_REFUSED(&f, umm_munlock(f.mm, AT(0), ~0ULL), EINVAL);
	return fix_fini(&f);
}

/* ---- mremap ---- */

static bool test_mremap_bad_arguments(void)
{
	struct fix f;
	uint64_t out;
	const int MM = UMM_MREMAP_MAYMOVE, FX = UMM_MREMAP_FIXED, DU = UMM_MREMAP_DONTUNMAP;

	ASSERT_TRUE(fix_init_layout(&f));
	ASSERT_REFUSED(&f, umm_mremap(f.mm, AT(0) + 1, PS, PG(2), MM, 0, &out), EINVAL);
	ASSERT_REFUSED(&f, umm_mremap(f.mm, AT(0), PS, PG(2), 8, 0, &out), EINVAL);
	ASSERT_REFUSED(&f, umm_mremap(f.mm, AT(0), PS, PG(2), MM | 0x100, 0, &out), EINVAL);
	ASSERT_REFUSED(&f, umm_mremap(f.mm, AT(0), PS, PS, FX, AT(20), &out), EINVAL);
	ASSERT_REFUSED(&f, umm_mremap(f.mm, AT(0), PS, PS, DU, 0, &out), EINVAL);
	ASSERT_REFUSED(&f, umm_mremap(f.mm, AT(0), PS, PG(2), MM | DU, 0, &out), EINVAL);
	ASSERT_REFUSED(&f, umm_mremap(f.mm, AT(0), PS, 0, MM, 0, &out), EINVAL);
	ASSERT_REFUSED(&f, umm_mremap(f.mm, AT(0), PS, PS, MM | FX, AT(20) + 1, &out), EINVAL);
	/* New range overlapping the old one. */
	ASSERT_REFUSED(&f, umm_mremap(f.mm, AT(0), PG(4), PG(4), MM | FX, AT(2), &out), EINVAL);
	/* New range past the top, or below the bottom. */
	ASSERT_REFUSED(&f, umm_mremap(f.mm, AT(0), PS, PG(2), MM | FX, UMM_TASK_SIZE - PS, &out),
		       EINVAL);
	ASSERT_REFUSED(&f, umm_mremap(f.mm, AT(0), PS, PS, MM | FX, 0, &out), EINVAL);
	return fix_fini(&f);
}

static bool test_mremap_bad_old_range(void)
{
	struct fix f;
	uint64_t out;

	/*
	 *   0123456789AB
	 *   AAAA  BBBBCC
	 *       xx         old range in the hole: -EFAULT
	 *     xxxx         old range across A's end into the hole: -EFAULT
	 *           xxx    old range across B and C: -EFAULT
	 *   AAAAAA         grow A in place without MAYMOVE: fits (hole), so
	 *   AAAAAAAA       grow A into B without MAYMOVE: -ENOMEM
	 */
	ASSERT_TRUE(fix_init_layout(&f));
	ASSERT_REFUSED(&f, umm_mremap(f.mm, AT(4), PS, PG(2), UMM_MREMAP_MAYMOVE, 0, &out),
		       EFAULT);
	ASSERT_REFUSED(&f, umm_mremap(f.mm, AT(2), PG(4), PG(8), UMM_MREMAP_MAYMOVE, 0, &out),
		       EFAULT);
	ASSERT_REFUSED(&f, umm_mremap(f.mm, AT(9), PG(3), PG(3),
				      UMM_MREMAP_MAYMOVE | UMM_MREMAP_FIXED, AT(30), &out), EFAULT);
	ASSERT_REFUSED(&f, umm_mremap(f.mm, AT(0), PG(4), PG(8), 0, 0, &out), ENOMEM);
	return fix_fini(&f);
}

/* ---- accesses ---- */

static bool test_access_bad(void)
{
	struct fix f;
	uint8_t buf[64];
	struct umm_page *pg;
	struct umm_pageinfo pi;

	ASSERT_TRUE(fix_init_layout(&f));
	memset(buf, 0x77, sizeof(buf));
	ASSERT_REFUSED(&f, umm_read(f.mm, AT(4), buf, sizeof(buf)), EFAULT);
	ASSERT_REFUSED(&f, umm_write(f.mm, AT(4), buf, sizeof(buf)), EFAULT);
	ASSERT_REFUSED(&f, umm_write(f.mm, AT(6) + 17, buf, sizeof(buf)), EFAULT);
	ASSERT_REFUSED(&f, umm_read(f.mm, 0, buf, sizeof(buf)), EFAULT);
	ASSERT_REFUSED(&f, umm_read(f.mm, UMM_TASK_SIZE, buf, sizeof(buf)), EFAULT);
	ASSERT_REFUSED(&f, umm_read(f.mm, ~0ULL - 10, buf, sizeof(buf)), EFAULT);
	ASSERT_REFUSED(&f, umm_write(f.mm, ~0ULL - 10, buf, sizeof(buf)), EFAULT);
	ASSERT_EQ(umm_read(f.mm, AT(0), buf, 0), 0);
	ASSERT_EQ(umm_write(f.mm, AT(4), buf, 0), 0);
	ASSERT_TRUE(unchanged(&f));
	ASSERT_REFUSED(&f, umm_get_user_page(f.mm, AT(4), 0, &pg), EFAULT);
	ASSERT_REFUSED(&f, umm_get_user_page(f.mm, AT(6), UMM_GUP_WRITE, &pg), EFAULT);
	ASSERT_REFUSED(&f, umm_get_user_page(f.mm, UMM_TASK_SIZE + PS, 0, &pg), EFAULT);
	ASSERT_REFUSED(&f, umm_get_user_page(f.mm, AT(0), 0x80, &pg), EINVAL);
	ASSERT_REFUSED(&f, umm_pagemap(f.mm, AT(4), &pi), EFAULT);
	ASSERT_REFUSED(&f, umm_pagemap(f.mm, ~0ULL, &pi), EFAULT);
	return fix_fini(&f);
}

/* ---- NULL where a pointer is required ---- */

static bool test_null_pointers(void)
{
	struct umm_config cfg;
	struct umm_vma_info vi;
	struct fix f;
	uint64_t out;

	umm_config_init(&cfg);
	cfg.phys_bytes = 1 << 20;
	ASSERT_ERR(umm_create(&cfg, NULL), EINVAL);

	ASSERT_TRUE(fix_init_layout(&f));
	ASSERT_ERR(umm_mm_create(f.u, NULL), EINVAL);
	ASSERT_ERR(umm_mm_create(NULL, NULL), EINVAL);
	ASSERT_REFUSED(&f, umm_mm_fork(f.mm, NULL), EINVAL);
	ASSERT_REFUSED(&f, umm_get_user_page(f.mm, AT(0), 0, NULL), EINVAL);
	ASSERT_REFUSED(&f, umm_pagemap(f.mm, AT(0), NULL), EINVAL);
	ASSERT_REFUSED(&f, umm_mm_vma_next(f.mm, 0, NULL), EINVAL);
	ASSERT_REFUSED(&f, umm_read(f.mm, AT(0), NULL, 8), EINVAL);
	ASSERT_REFUSED(&f, umm_write(f.mm, AT(0), NULL, 8), EINVAL);
	/* A NULL address space. */
	ASSERT_ERR(umm_mmap(NULL, 0, PS, RW, PRIV, NULL, 0, &out), EINVAL);
	ASSERT_ERR(umm_munmap(NULL, AT(0), PS), EINVAL);
	ASSERT_ERR(umm_mprotect(NULL, AT(0), PS, RO), EINVAL);
	ASSERT_ERR(umm_madvise(NULL, AT(0), PS, UMM_MADV_NORMAL), EINVAL);
	ASSERT_ERR(umm_mremap(NULL, AT(0), PS, PS, 0, 0, &out), EINVAL);
	ASSERT_ERR(umm_read(NULL, AT(0), &out, 8), EINVAL);
	ASSERT_ERR(umm_mm_vma_next(NULL, 0, &vi), EINVAL);
	return fix_fini(&f);
}

static bool test_vma_next_past_the_end(void)
{
	struct fix f;
	struct umm_vma_info vi;

	ASSERT_TRUE(fix_init_layout(&f));
	ASSERT_ERR(umm_mm_vma_next(f.mm, AT(12), &vi), ENOENT);
	ASSERT_ERR(umm_mm_vma_next(f.mm, UMM_TASK_SIZE, &vi), ENOENT);
	ASSERT_OK(umm_mm_vma_next(f.mm, AT(11), &vi));
	ASSERT_EQ(vi.start, AT(10));
	return fix_fini(&f);
}

int main(void)
{
	RUN_TEST(test_mmap_bad_length);
	RUN_TEST(test_mmap_bad_address);
	RUN_TEST(test_mmap_unknown_prot_and_flags);
	RUN_TEST(test_mmap_conflicting_flags);
	RUN_TEST(test_mmap_anonymous_with_file);
	RUN_TEST(test_mmap_unaligned_offset);
	RUN_TEST(test_mmap_fixed_noreplace_exists);
	RUN_TEST(test_unaligned_length_rounds_up);
	RUN_TEST(test_munmap_bad_range);
	RUN_TEST(test_mprotect_bad);
	RUN_TEST(test_madvise_bad);
	RUN_TEST(test_mlock_bad);
	RUN_TEST(test_length_wrapping_when_rounded);
	RUN_TEST(test_mremap_bad_arguments);
	RUN_TEST(test_mremap_bad_old_range);
	RUN_TEST(test_access_bad);
	RUN_TEST(test_null_pointers);
	RUN_TEST(test_vma_next_past_the_end);
	return tap_done();
}
