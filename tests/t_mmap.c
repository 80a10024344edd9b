// SPDX-License-Identifier: MIT
/*
 * t_mmap.c - the VMA layer: mmap, munmap, mprotect, mremap, madvise, mlock.
 *
 * Every test builds a fresh machine and address space and lays mappings out
 * with MAP_FIXED from BASE, so the layouts are known.  Layouts are drawn one
 * character per page from BASE: a letter is a page of a VMA (one letter per
 * VMA), a blank is a hole.  layout_is() checks such a drawing against
 * umm_mm_vma_next().
 */
#include <umm/umm.h>

#include "tap.h"
#include "fixture.h"

/* ---- mmap ---- */

static bool test_mmap_engine_picks_address(void)
{
	struct fix f;
	struct umm_vma_info vi;
	uint64_t a = 0, b = 0;

	ASSERT_TRUE(fix_init(&f));
	ASSERT_OK(umm_mmap(f.mm, 0, PG(4), RW, PRIV, NULL, 0, &a));
	ASSERT_EQ(a % PS, 0);
	ASSERT_GE(a, UMM_MMAP_MIN_ADDR);
	ASSERT_TRUE(a + PG(4) <= UMM_TASK_SIZE);
	ASSERT_OK(umm_mm_vma_next(f.mm, 0, &vi));
	ASSERT_EQ(vi.start, a);
	ASSERT_EQ(vi.end, a + PG(4));
	ASSERT_EQ(vi.prot, RW);
	ASSERT_FALSE(vi.shared);
	ASSERT_TRUE(vi.anonymous);
	ASSERT_FALSE(vi.locked);
	ASSERT_EQ(mstat(f.mm).map_count, 1);
	ASSERT_EQ(mstat(f.mm).total_vm, 4);

	/* A second one goes elsewhere; if adjacent, the two merge. */
	ASSERT_OK(umm_mmap(f.mm, 0, PG(4), RW, PRIV, NULL, 0, &b));
	ASSERT_TRUE(b + PG(4) <= a || b >= a + PG(4));
	ASSERT_EQ(mstat(f.mm).total_vm, 8);
	ASSERT_EQ(mstat(f.mm).map_count, (b + PG(4) == a || a + PG(4) == b) ? 1 : 2);
	ASSERT_TRUE(write_pat(f.mm, a, 4, 1));
	ASSERT_TRUE(write_pat(f.mm, b, 4, 2));
	ASSERT_TRUE(check_pat(f.mm, a, 4, 1));
	ASSERT_TRUE(check_pat(f.mm, b, 4, 2));
	return fix_fini(&f);
}

static bool test_mmap_hint_used_when_free(void)
{
	struct fix f;
	uint64_t out = 0;

	ASSERT_TRUE(fix_init(&f));
	ASSERT_OK(umm_mmap(f.mm, AT(3), PG(5), RW, PRIV, NULL, 0, &out));
	ASSERT_EQ(out, AT(3));
	ASSERT_TRUE(layout_is(f.mm, BASE, "   AAAAA  "));
	return fix_fini(&f);
}

static bool test_mmap_hint_busy_goes_elsewhere(void)
{
	struct fix f;
	struct umm_vma_info vi;
	uint64_t out = 0;

	ASSERT_TRUE(fix_init(&f));
	ASSERT_TRUE(map_pat(f.mm, BASE, 4, RW, PRIV, 7));
	/* A hint over a mapping is only a hint: no error, no replacement. */
	ASSERT_OK(umm_mmap(f.mm, AT(2), PG(4), RW, PRIV, NULL, 0, &out));
	ASSERT_NE(out, AT(2));
	ASSERT_TRUE(out + PG(4) <= BASE || out >= AT(4));
	ASSERT_TRUE(vma_at(f.mm, BASE, &vi));
	ASSERT_TRUE(vi.start <= BASE && vi.end >= AT(4));
	ASSERT_TRUE(check_pat(f.mm, BASE, 4, 7));
	ASSERT_TRUE(zeros_at(f.mm, out, 4));
	ASSERT_EQ(mstat(f.mm).total_vm, 8);
	return fix_fini(&f);
}

static bool test_mmap_fixed_replaces_middle(void)
{
	struct fix f;

	/*
	 *   0123456789
	 *   AAAAAAAAAA     mmap 10 pages RW, write a pattern
	 *   AAABBBBCCC     FIXED 3..7 R over it: B is new and empty
	 */
	ASSERT_TRUE(fix_init(&f));
	ASSERT_TRUE(map_pat(f.mm, BASE, 10, RW, PRIV, 1));
	ASSERT_EQ(mstat(f.mm).rss_anon, 10);
	ASSERT_OK(map_at(f.mm, AT(3), 4, RO, PRIV));
	ASSERT_TRUE(layout_is(f.mm, BASE, "AAABBBBCCC"));
	ASSERT_EQ(mstat(f.mm).map_count, 3);
	ASSERT_EQ(prot_at(f.mm, AT(0)), RW);
	ASSERT_EQ(prot_at(f.mm, AT(3)), RO);
	ASSERT_EQ(prot_at(f.mm, AT(9)), RW);
	ASSERT_TRUE(check_pat(f.mm, AT(0), 3, 1));
	ASSERT_TRUE(check_pat(f.mm, AT(7), 3, 1));
	ASSERT_TRUE(zeros_at(f.mm, AT(3), 4));
	ASSERT_ERR(write_byte(f.mm, AT(4), 1), EFAULT);
	ASSERT_EQ(mstat(f.mm).total_vm, 10);
	ASSERT_EQ(mstat(f.mm).rss_anon, 6);
	return fix_fini(&f);
}

static bool test_mmap_fixed_replaces_several(void)
{
	struct fix f;

	/*
	 *   0123456789
	 *   AAA BBB CC     A RW private, B R private, C RW shared; A and C written
	 *   AAAAAAAAAB     FIXED 2..9 RW private: replaces the tail of A, all of B,
	 *                  the hole and the head of C, and merges with what is
	 *                  left of A; B is C's last page (pgoff 1)
	 */
	ASSERT_TRUE(fix_init(&f));
	ASSERT_OK(map_at(f.mm, AT(0), 3, RW, PRIV));
	ASSERT_OK(map_at(f.mm, AT(4), 3, RO, PRIV));
	ASSERT_OK(map_at(f.mm, AT(8), 2, RW, SHRD));
	ASSERT_TRUE(write_pat(f.mm, AT(0), 3, 2));
	ASSERT_TRUE(write_pat(f.mm, AT(8), 2, 3));
	ASSERT_TRUE(layout_is(f.mm, BASE, "AAA BBB CC"));
	ASSERT_OK(map_at(f.mm, AT(2), 7, RW, PRIV));
	ASSERT_TRUE(layout_is(f.mm, BASE, "AAAAAAAAAB"));
	ASSERT_EQ(mstat(f.mm).map_count, 2);
	ASSERT_TRUE(check_pat(f.mm, AT(0), 2, 2));
	ASSERT_TRUE(zeros_at(f.mm, AT(2), 7));
	ASSERT_TRUE(check_pat(f.mm, AT(9), 1, 3));
	ASSERT_EQ(mstat(f.mm).total_vm, 10);
	return fix_fini(&f);
}

static bool test_mmap_fixed_noreplace(void)
{
	struct fix f;
	uint64_t out = 0;

	/*
	 *   01234567
	 *   AAAA           mmap 0..4, write a pattern
	 *     xxxx         FIXED_NOREPLACE 2..6 -> -EEXIST, nothing changes
	 *   AAAAAAAA       FIXED_NOREPLACE 4..8 -> at 4, merged
	 */
	ASSERT_TRUE(fix_init(&f));
	ASSERT_TRUE(map_pat(f.mm, BASE, 4, RW, PRIV, 4));
	ASSERT_ERR(umm_mmap(f.mm, AT(2), PG(4), RW, PRIV | UMM_MAP_FIXED_NOREPLACE, NULL, 0, &out),
		   EEXIST);
	ASSERT_TRUE(layout_is(f.mm, BASE, "AAAA    "));
	ASSERT_TRUE(check_pat(f.mm, BASE, 4, 4));
	ASSERT_EQ(mstat(f.mm).total_vm, 4);
	/* Entirely inside the existing mapping: still -EEXIST. */
	ASSERT_ERR(umm_mmap(f.mm, AT(1), PG(1), RO, PRIV | UMM_MAP_FIXED_NOREPLACE, NULL, 0, &out),
		   EEXIST);
	ASSERT_EQ(prot_at(f.mm, AT(1)), RW);
	ASSERT_OK(umm_mmap(f.mm, AT(4), PG(4), RW, PRIV | UMM_MAP_FIXED_NOREPLACE, NULL, 0, &out));
	ASSERT_EQ(out, AT(4));
	ASSERT_TRUE(layout_is(f.mm, BASE, "AAAAAAAA"));
	ASSERT_TRUE(check_pat(f.mm, BASE, 4, 4));
	return fix_fini(&f);
}

static bool test_mmap_populate_private(void)
{
	struct fix f;
	uint64_t out = 0;
	uint64_t pfns[8];

	ASSERT_TRUE(fix_init(&f));
	ASSERT_OK(umm_mmap(f.mm, BASE, PG(8), RW, PRIV | UMM_MAP_FIXED | UMM_MAP_POPULATE,
			   NULL, 0, &out));
	ASSERT_EQ(mstat(f.mm).rss_anon, 8);
	for (int i = 0; i < 8; i++) {
		unsigned int fl = pinfo(f.mm, AT(i)).flags;
		ASSERT_EQ(fl & (UMM_PI_PRESENT | UMM_PI_ANON | UMM_PI_WRITE | UMM_PI_ZERO),
			  UMM_PI_PRESENT | UMM_PI_ANON | UMM_PI_WRITE);
		pfns[i] = pinfo(f.mm, AT(i)).pfn;
		ASSERT_NE(pfns[i], 0);
		for (int j = 0; j < i; j++)
			ASSERT_NE(pfns[i], pfns[j]);
	}
	ASSERT_TRUE(zeros_at(f.mm, BASE, 8));
	/* Populated frames are used as they are: no new fault, same frame. */
	ASSERT_TRUE(write_pat(f.mm, BASE, 8, 5));
	for (int i = 0; i < 8; i++)
		ASSERT_EQ(pinfo(f.mm, AT(i)).pfn, pfns[i]);
	return fix_fini(&f);
}

static bool test_mmap_populate_readonly_maps_zero_page(void)
{
	struct fix f;
	uint64_t out = 0;
	struct umm_pageinfo pi;

	ASSERT_TRUE(fix_init(&f));
	ASSERT_OK(umm_mmap(f.mm, BASE, PG(4), RO, PRIV | UMM_MAP_FIXED | UMM_MAP_POPULATE,
			   NULL, 0, &out));
	ASSERT_EQ(mstat(f.mm).rss_anon, 0);
	for (int i = 0; i < 4; i++) {
		ASSERT_OK(umm_pagemap(f.mm, AT(i), &pi));
		ASSERT_EQ(pi.flags & (UMM_PI_PRESENT | UMM_PI_ZERO | UMM_PI_ANON | UMM_PI_WRITE),
			  UMM_PI_PRESENT | UMM_PI_ZERO);
		ASSERT_EQ(pi.pfn, 0);
	}
	return fix_fini(&f);
}

static bool test_mmap_populate_shared(void)
{
	struct fix f;
	uint64_t out = 0;

	ASSERT_TRUE(fix_init(&f));
	ASSERT_OK(umm_mmap(f.mm, BASE, PG(4), RW, SHRD | UMM_MAP_FIXED | UMM_MAP_POPULATE,
			   NULL, 0, &out));
	ASSERT_EQ(mstat(f.mm).rss_shmem, 4);
	ASSERT_EQ(mstat(f.mm).rss_anon, 0);
	for (int i = 0; i < 4; i++)
		ASSERT_EQ(pinfo(f.mm, AT(i)).flags & (UMM_PI_PRESENT | UMM_PI_ANON),
			  UMM_PI_PRESENT);
	return fix_fini(&f);
}

static bool test_mmap_locked(void)
{
	struct fix f;
	struct umm_vma_info vi;
	uint64_t out = 0;

	/*
	 *   012345
	 *   AAAAAA         MAP_LOCKED RW: populated, locked_vm 6
	 *   AA  BB         munmap 2..4: locked_vm 4
	 */
	ASSERT_TRUE(fix_init(&f));
	ASSERT_OK(umm_mmap(f.mm, BASE, PG(6), RW, PRIV | UMM_MAP_FIXED | UMM_MAP_LOCKED,
			   NULL, 0, &out));
	ASSERT_TRUE(vma_at(f.mm, BASE, &vi));
	ASSERT_TRUE(vi.locked);
	ASSERT_EQ(mstat(f.mm).locked_vm, 6);
	ASSERT_EQ(mstat(f.mm).rss_anon, 6);
	for (int i = 0; i < 6; i++)
		ASSERT_EQ(pinfo(f.mm, AT(i)).flags &
			  (UMM_PI_PRESENT | UMM_PI_MLOCKED | UMM_PI_ANON),
			  UMM_PI_PRESENT | UMM_PI_MLOCKED | UMM_PI_ANON);
	ASSERT_OK(umm_munmap(f.mm, AT(2), PG(2)));
	ASSERT_TRUE(layout_is(f.mm, BASE, "AA  BB"));
	ASSERT_EQ(mstat(f.mm).locked_vm, 4);
	ASSERT_OK(umm_munmap(f.mm, BASE, PG(6)));
	ASSERT_EQ(mstat(f.mm).locked_vm, 0);
	ASSERT_EQ(mstat(f.mm).rss_anon, 0);
	return fix_fini(&f);
}

static bool test_mlock_splits_and_munlock_merges(void)
{
	struct fix f;
	struct umm_vma_info vi;

	/*
	 *   0123456789
	 *   AAAAAAAAAA     mmap 10 pages RW, nothing touched
	 *   AAABBBBCCC     mlock 3..7: B is locked and populated
	 *   AAAAAAAAAA     munlock 3..7: one VMA again, pages stay
	 */
	ASSERT_TRUE(fix_init(&f));
	ASSERT_OK(map_at(f.mm, BASE, 10, RW, PRIV));
	ASSERT_OK(umm_mlock(f.mm, AT(3), PG(4)));
	ASSERT_TRUE(layout_is(f.mm, BASE, "AAABBBBCCC"));
	ASSERT_TRUE(vma_at(f.mm, AT(3), &vi));
	ASSERT_TRUE(vi.locked);
	ASSERT_TRUE(vma_at(f.mm, AT(2), &vi));
	ASSERT_FALSE(vi.locked);
	ASSERT_EQ(mstat(f.mm).locked_vm, 4);
	ASSERT_EQ(mstat(f.mm).rss_anon, 4);
	ASSERT_EQ(pinfo(f.mm, AT(2)).flags, 0);
	ASSERT_EQ(pinfo(f.mm, AT(7)).flags, 0);
	for (int i = 3; i < 7; i++)
		ASSERT_EQ(pinfo(f.mm, AT(i)).flags & (UMM_PI_PRESENT | UMM_PI_MLOCKED),
			  UMM_PI_PRESENT | UMM_PI_MLOCKED);

	ASSERT_OK(umm_munlock(f.mm, AT(3), PG(4)));
	ASSERT_TRUE(layout_is(f.mm, BASE, "AAAAAAAAAA"));
	ASSERT_EQ(mstat(f.mm).map_count, 1);
	ASSERT_EQ(mstat(f.mm).locked_vm, 0);
	ASSERT_EQ(mstat(f.mm).rss_anon, 4);
	for (int i = 3; i < 7; i++)
		ASSERT_EQ(pinfo(f.mm, AT(i)).flags & (UMM_PI_PRESENT | UMM_PI_MLOCKED),
			  UMM_PI_PRESENT);
	return fix_fini(&f);
}

static bool test_mlock_from_a_hole(void)
{
	struct fix f;

	/*
	 *   01234567
	 *   AAA  BBB       mlock 3..8 starts in the hole: -ENOMEM, nothing locked
	 */
	ASSERT_TRUE(fix_init(&f));
	ASSERT_OK(map_at(f.mm, AT(0), 3, RW, PRIV));
	ASSERT_OK(map_at(f.mm, AT(5), 3, RW, PRIV));
	ASSERT_ERR(umm_mlock(f.mm, AT(3), PG(5)), ENOMEM);
	ASSERT_EQ(mstat(f.mm).locked_vm, 0);
	ASSERT_TRUE(layout_is(f.mm, BASE, "AAA  BBB"));
	ASSERT_EQ(pinfo(f.mm, AT(5)).flags, 0);
	return fix_fini(&f);
}

/* ---- merging ---- */

static bool test_merge_append_and_prepend(void)
{
	struct fix f;

	/*
	 *   012345678901
	 *       AAAA       mmap 4..8
	 *       AAAAAAAA   mmap 8..12: appended
	 *   AAAAAAAAAAAA   mmap 0..4: prepended
	 */
	ASSERT_TRUE(fix_init(&f));
	ASSERT_TRUE(map_pat(f.mm, AT(4), 4, RW, PRIV, 1));
	ASSERT_OK(map_at(f.mm, AT(8), 4, RW, PRIV));
	ASSERT_TRUE(layout_is(f.mm, BASE, "    AAAAAAAA"));
	ASSERT_OK(map_at(f.mm, AT(0), 4, RW, PRIV));
	ASSERT_TRUE(layout_is(f.mm, BASE, "AAAAAAAAAAAA"));
	ASSERT_EQ(mstat(f.mm).map_count, 1);
	ASSERT_EQ(mstat(f.mm).total_vm, 12);
	ASSERT_TRUE(check_pat(f.mm, AT(4), 4, 1));
	ASSERT_TRUE(write_pat(f.mm, BASE, 12, 2));
	ASSERT_TRUE(check_pat(f.mm, BASE, 12, 2));
	return fix_fini(&f);
}

static bool test_merge_fills_hole(void)
{
	struct fix f;

	/*
	 *   012345678901
	 *   AAAA    BBBB   two untouched mappings
	 *   AAAAAAAAAAAA   mmap 4..8 joins both
	 */
	ASSERT_TRUE(fix_init(&f));
	ASSERT_OK(map_at(f.mm, AT(0), 4, RW, PRIV));
	ASSERT_OK(map_at(f.mm, AT(8), 4, RW, PRIV));
	ASSERT_EQ(mstat(f.mm).map_count, 2);
	ASSERT_OK(map_at(f.mm, AT(4), 4, RW, PRIV));
	ASSERT_TRUE(layout_is(f.mm, BASE, "AAAAAAAAAAAA"));
	ASSERT_EQ(mstat(f.mm).map_count, 1);
	return fix_fini(&f);
}

static bool test_no_merge_of_two_anon_vmas(void)
{
	struct fix f;
	struct umm_vma_info vi;

	/*
	 *   012345678901
	 *   AAAA    BBBB   both written: each has its own anon_vma
	 *   AAAAAAAABBBB   mmap 4..8 merges with one neighbour only (Linux: the
	 *                  previous one); A and B cannot share one anon_vma
	 */
	ASSERT_TRUE(fix_init(&f));
	ASSERT_OK(map_at(f.mm, AT(0), 4, RW, PRIV));
	ASSERT_OK(map_at(f.mm, AT(8), 4, RW, PRIV));
	ASSERT_TRUE(write_pat(f.mm, AT(0), 4, 1));
	ASSERT_TRUE(write_pat(f.mm, AT(8), 4, 2));
	ASSERT_OK(map_at(f.mm, AT(4), 4, RW, PRIV));
	ASSERT_EQ(mstat(f.mm).map_count, 2);
	ASSERT_TRUE(vma_at(f.mm, AT(4), &vi));
	ASSERT_TRUE((vi.start == AT(0) && vi.end == AT(8)) ||
		    (vi.start == AT(4) && vi.end == AT(12)));
	ASSERT_TRUE(check_pat(f.mm, AT(0), 4, 1));
	ASSERT_TRUE(zeros_at(f.mm, AT(4), 4));
	ASSERT_TRUE(check_pat(f.mm, AT(8), 4, 2));
	return fix_fini(&f);
}

static bool test_no_merge_when_prot_differs(void)
{
	struct fix f;

	/*
	 *   01234567
	 *   AAAABBBB       A RW, B R: two VMAs
	 *   AAAAAAAA       mprotect(B, RW): they merge
	 */
	ASSERT_TRUE(fix_init(&f));
	ASSERT_OK(map_at(f.mm, AT(0), 4, RW, PRIV));
	ASSERT_OK(map_at(f.mm, AT(4), 4, RO, PRIV));
	ASSERT_TRUE(layout_is(f.mm, BASE, "AAAABBBB"));
	ASSERT_EQ(mstat(f.mm).map_count, 2);
	ASSERT_OK(umm_mprotect(f.mm, AT(4), PG(4), RW));
	ASSERT_TRUE(layout_is(f.mm, BASE, "AAAAAAAA"));
	ASSERT_EQ(mstat(f.mm).map_count, 1);
	return fix_fini(&f);
}

static bool test_no_merge_when_sharing_differs(void)
{
	struct fix f;
	struct umm_vma_info vi;

	/*
	 *   012345678901
	 *   AAAABBBBCCCC   A private, B shared, C shared: three VMAs (each
	 *                  shared anonymous mapping is an object of its own)
	 */
	ASSERT_TRUE(fix_init(&f));
	ASSERT_OK(map_at(f.mm, AT(0), 4, RW, PRIV));
	ASSERT_OK(map_at(f.mm, AT(4), 4, RW, SHRD));
	ASSERT_OK(map_at(f.mm, AT(8), 4, RW, SHRD));
	ASSERT_TRUE(layout_is(f.mm, BASE, "AAAABBBBCCCC"));
	ASSERT_EQ(mstat(f.mm).map_count, 3);
	ASSERT_TRUE(vma_at(f.mm, AT(4), &vi));
	ASSERT_TRUE(vi.shared);
	ASSERT_TRUE(vma_at(f.mm, AT(0), &vi));
	ASSERT_FALSE(vi.shared);
	/* B and C are separate objects: a write to one does not show in the other. */
	ASSERT_TRUE(write_pat(f.mm, AT(4), 4, 3));
	ASSERT_TRUE(zeros_at(f.mm, AT(8), 4));
	return fix_fini(&f);
}

/* ---- munmap ---- */

static bool test_munmap_middle_splits(void)
{
	struct fix f;
	struct umm_pageinfo pi;

	/*
	 *   0123456789
	 *   AAAAAAAAAA     mmap 10 pages RW, write a pattern
	 *   AAA    BBB     munmap 3..7
	 */
	ASSERT_TRUE(fix_init(&f));
	ASSERT_TRUE(map_pat(f.mm, BASE, 10, RW, PRIV, 1));
	ASSERT_OK(umm_munmap(f.mm, AT(3), PG(4)));
	ASSERT_TRUE(layout_is(f.mm, BASE, "AAA    BBB"));
	ASSERT_EQ(mstat(f.mm).map_count, 2);
	ASSERT_EQ(mstat(f.mm).total_vm, 6);
	ASSERT_EQ(mstat(f.mm).rss_anon, 6);
	ASSERT_TRUE(check_pat(f.mm, AT(0), 3, 1));
	ASSERT_TRUE(check_pat(f.mm, AT(7), 3, 1));
	ASSERT_ERR(byte_at(f.mm, AT(3)), EFAULT);
	ASSERT_ERR(write_byte(f.mm, AT(6), 1), EFAULT);
	ASSERT_ERR(umm_pagemap(f.mm, AT(5), &pi), EFAULT);
	return fix_fini(&f);
}

static bool test_munmap_across_vmas(void)
{
	struct fix f;

	/*
	 *   012345678901
	 *   AAAABBBBCCCC   A RW private, B R private, C RW shared; all touched
	 *   AA        CC   munmap 2..10
	 */
	ASSERT_TRUE(fix_init(&f));
	ASSERT_OK(map_at(f.mm, AT(0), 4, RW, PRIV));
	ASSERT_OK(map_at(f.mm, AT(4), 4, RO, PRIV));
	ASSERT_OK(map_at(f.mm, AT(8), 4, RW, SHRD));
	ASSERT_TRUE(write_pat(f.mm, AT(0), 4, 1));
	ASSERT_TRUE(zeros_at(f.mm, AT(4), 4));
	ASSERT_TRUE(write_pat(f.mm, AT(8), 4, 2));
	ASSERT_EQ(mstat(f.mm).rss_shmem, 4);
	ASSERT_OK(umm_munmap(f.mm, AT(2), PG(8)));
	ASSERT_TRUE(layout_is(f.mm, BASE, "AA        CC"));
	ASSERT_EQ(mstat(f.mm).map_count, 2);
	ASSERT_EQ(mstat(f.mm).total_vm, 4);
	ASSERT_EQ(mstat(f.mm).rss_anon, 2);
	ASSERT_EQ(mstat(f.mm).rss_shmem, 2);
	ASSERT_TRUE(check_pat(f.mm, AT(0), 2, 1));
	ASSERT_TRUE(check_pat(f.mm, AT(10), 2, 2));
	for (int i = 2; i < 10; i++)
		ASSERT_ERR(byte_at(f.mm, AT(i)), EFAULT);
	return fix_fini(&f);
}

static bool test_munmap_over_holes_is_fine(void)
{
	struct fix f;

	/*
	 *   0123456789
	 *     AAAA         munmap 6..10 (nothing there): 0
	 *     AA           munmap 4..10 (half a VMA, then a hole): 0
	 */
	ASSERT_TRUE(fix_init(&f));
	ASSERT_OK(map_at(f.mm, AT(2), 4, RW, PRIV));
	ASSERT_OK(umm_munmap(f.mm, AT(6), PG(4)));
	ASSERT_TRUE(layout_is(f.mm, BASE, "  AAAA    "));
	ASSERT_OK(umm_munmap(f.mm, AT(4), PG(6)));
	ASSERT_TRUE(layout_is(f.mm, BASE, "  AA      "));
	ASSERT_EQ(mstat(f.mm).total_vm, 2);
	return fix_fini(&f);
}

/* ---- mprotect ---- */

static bool test_mprotect_splits_and_merges_back(void)
{
	struct fix f;

	/*
	 *   0123456789
	 *   AAAAAAAAAA     mmap 10 pages RW, write a pattern
	 *   AAABBBBCCC     mprotect(3..7, R): three VMAs
	 *   AAAAAAAAAA     mprotect(3..7, RW): one VMA again
	 */
	ASSERT_TRUE(fix_init(&f));
	ASSERT_TRUE(map_pat(f.mm, BASE, 10, RW, PRIV, 1));
	ASSERT_TRUE(pinfo(f.mm, AT(4)).flags & UMM_PI_WRITE);
	ASSERT_OK(umm_mprotect(f.mm, AT(3), PG(4), RO));
	ASSERT_TRUE(layout_is(f.mm, BASE, "AAABBBBCCC"));
	ASSERT_EQ(mstat(f.mm).map_count, 3);
	ASSERT_EQ(prot_at(f.mm, AT(2)), RW);
	ASSERT_EQ(prot_at(f.mm, AT(3)), RO);
	ASSERT_EQ(prot_at(f.mm, AT(6)), RO);
	ASSERT_EQ(prot_at(f.mm, AT(7)), RW);
	/* The PTEs were write-protected, not only the VMA. */
	ASSERT_FALSE(pinfo(f.mm, AT(4)).flags & UMM_PI_WRITE);
	ASSERT_ERR(write_byte(f.mm, AT(4), 1), EFAULT);
	ASSERT_TRUE(check_pat(f.mm, BASE, 10, 1));
	ASSERT_EQ(mstat(f.mm).total_vm, 10);

	ASSERT_OK(umm_mprotect(f.mm, AT(3), PG(4), RW));
	ASSERT_TRUE(layout_is(f.mm, BASE, "AAAAAAAAAA"));
	ASSERT_EQ(mstat(f.mm).map_count, 1);
	ASSERT_TRUE(check_pat(f.mm, BASE, 10, 1));
	ASSERT_TRUE(write_pat(f.mm, BASE, 10, 2));
	ASSERT_TRUE(check_pat(f.mm, BASE, 10, 2));
	ASSERT_EQ(mstat(f.mm).rss_anon, 10);
	return fix_fini(&f);
}

static bool test_mprotect_head_and_tail(void)
{
	struct fix f;

	/*
	 *   0123456789
	 *   AAAAAAAAAA     mmap 10 pages RW
	 *   AAABBBBBBB     mprotect(0..3, R)
	 *   AAABBBBCCC     mprotect(7..10, NONE)
	 */
	ASSERT_TRUE(fix_init(&f));
	ASSERT_TRUE(map_pat(f.mm, BASE, 10, RW, PRIV, 1));
	ASSERT_OK(umm_mprotect(f.mm, AT(0), PG(3), RO));
	ASSERT_TRUE(layout_is(f.mm, BASE, "AAABBBBBBB"));
	ASSERT_OK(umm_mprotect(f.mm, AT(7), PG(3), UMM_PROT_NONE));
	ASSERT_TRUE(layout_is(f.mm, BASE, "AAABBBBCCC"));
	ASSERT_EQ(prot_at(f.mm, AT(0)), RO);
	ASSERT_EQ(prot_at(f.mm, AT(5)), RW);
	ASSERT_EQ(prot_at(f.mm, AT(9)), UMM_PROT_NONE);
	ASSERT_ERR(byte_at(f.mm, AT(8)), EFAULT);
	ASSERT_ERR(write_byte(f.mm, AT(1), 0), EFAULT);
	ASSERT_TRUE(check_pat(f.mm, AT(0), 7, 1));
	/* Data under PROT_NONE survives and comes back with the permission. */
	ASSERT_OK(umm_mprotect(f.mm, AT(7), PG(3), RO));
	ASSERT_TRUE(check_pat(f.mm, AT(7), 3, 1));
	return fix_fini(&f);
}

static bool test_mprotect_over_a_hole(void)
{
	struct fix f;

	/*
	 *   0123456789
	 *   AAA  BBBBB     two VMAs with a hole
	 *                  mprotect(3..10, R) starts in the hole: -ENOMEM, nothing changes
	 *                  mprotect(0..10, R) crosses the hole: -ENOMEM, B unchanged
	 */
	ASSERT_TRUE(fix_init(&f));
	ASSERT_OK(map_at(f.mm, AT(0), 3, RW, PRIV));
	ASSERT_TRUE(map_pat(f.mm, AT(5), 5, RW, PRIV, 1));
	ASSERT_ERR(umm_mprotect(f.mm, AT(3), PG(7), RO), ENOMEM);
	ASSERT_EQ(prot_at(f.mm, AT(0)), RW);
	ASSERT_EQ(prot_at(f.mm, AT(5)), RW);
	ASSERT_TRUE(layout_is(f.mm, BASE, "AAA  BBBBB"));
	ASSERT_ERR(umm_mprotect(f.mm, AT(0), PG(10), RO), ENOMEM);
	ASSERT_EQ(prot_at(f.mm, AT(5)), RW);
	ASSERT_EQ(prot_at(f.mm, AT(9)), RW);
	ASSERT_TRUE(write_pat(f.mm, AT(5), 5, 2));
	ASSERT_TRUE(check_pat(f.mm, AT(5), 5, 2));
	return fix_fini(&f);
}

/* ---- mremap ---- */

static bool test_mremap_grows_in_place(void)
{
	struct fix f;
	uint64_t out = 0;

	/*
	 *   01234567
	 *   AAAA           mmap 4 pages, write a pattern
	 *   AAAAAAAA       mremap 4 -> 8 without MAYMOVE: room after it
	 */
	ASSERT_TRUE(fix_init(&f));
	ASSERT_TRUE(map_pat(f.mm, BASE, 4, RW, PRIV, 1));
	ASSERT_OK(umm_mremap(f.mm, BASE, PG(4), PG(8), 0, 0, &out));
	ASSERT_EQ(out, BASE);
	ASSERT_TRUE(layout_is(f.mm, BASE, "AAAAAAAA  "));
	ASSERT_EQ(mstat(f.mm).total_vm, 8);
	ASSERT_TRUE(check_pat(f.mm, BASE, 4, 1));
	ASSERT_TRUE(zeros_at(f.mm, AT(4), 4));
	ASSERT_TRUE(write_pat(f.mm, AT(4), 4, 2));
	ASSERT_TRUE(check_pat(f.mm, AT(4), 4, 2));
	return fix_fini(&f);
}

static bool test_mremap_grow_blocked_without_maymove(void)
{
	struct fix f;
	uint64_t out = 0;

	/*
	 *   01234567
	 *   AAAABBBB       B (R) is in the way
	 *                  mremap(A, 4 -> 6) without MAYMOVE: -ENOMEM, nothing changes
	 */
	ASSERT_TRUE(fix_init(&f));
	ASSERT_OK(map_at(f.mm, AT(0), 4, RW, PRIV));
	ASSERT_OK(map_at(f.mm, AT(4), 4, RO, PRIV));
	ASSERT_TRUE(write_pat(f.mm, BASE, 4, 1));
	ASSERT_ERR(umm_mremap(f.mm, BASE, PG(4), PG(6), 0, 0, &out), ENOMEM);
	ASSERT_TRUE(layout_is(f.mm, BASE, "AAAABBBB"));
	ASSERT_EQ(prot_at(f.mm, AT(4)), RO);
	ASSERT_EQ(mstat(f.mm).total_vm, 8);
	ASSERT_TRUE(check_pat(f.mm, BASE, 4, 1));
	return fix_fini(&f);
}

static bool test_mremap_maymove_moves(void)
{
	struct fix f;
	uint64_t out = 0, pfn[4];

	/*
	 *   01234567
	 *   AAAABBBB       B (R) is in the way
	 *       BBBB       mremap(A, 4 -> 8, MAYMOVE): A moves elsewhere with its
	 *                  frames; the old range is unmapped
	 */
	ASSERT_TRUE(fix_init(&f));
	ASSERT_OK(map_at(f.mm, AT(0), 4, RW, PRIV));
	ASSERT_OK(map_at(f.mm, AT(4), 4, RO, PRIV));
	ASSERT_TRUE(write_pat(f.mm, BASE, 4, 1));
	for (int i = 0; i < 4; i++)
		pfn[i] = pinfo(f.mm, AT(i)).pfn;
	ASSERT_OK(umm_mremap(f.mm, BASE, PG(4), PG(8), UMM_MREMAP_MAYMOVE, 0, &out));
	ASSERT_NE(out, BASE);
	ASSERT_EQ(out % PS, 0);
	ASSERT_TRUE(out + PG(8) <= BASE || out >= AT(8));
	ASSERT_TRUE(layout_is(f.mm, BASE, "    BBBB"));
	ASSERT_TRUE(pat_at(f.mm, out, BASE, 4, 1));
	ASSERT_TRUE(zeros_at(f.mm, out + PG(4), 4));
	for (int i = 0; i < 4; i++)
		ASSERT_EQ(pinfo(f.mm, out + PG(i)).pfn, pfn[i]);
	ASSERT_ERR(byte_at(f.mm, BASE), EFAULT);
	ASSERT_ERR(byte_at(f.mm, AT(3)), EFAULT);
	ASSERT_EQ(mstat(f.mm).total_vm, 12);
	ASSERT_EQ(mstat(f.mm).rss_anon, 4);
	ASSERT_TRUE(write_pat(f.mm, out, 8, 2));
	ASSERT_TRUE(check_pat(f.mm, out, 8, 2));
	return fix_fini(&f);
}

static bool test_mremap_shrinks(void)
{
	struct fix f;
	uint64_t out = 0;

	/*
	 *   01234567
	 *   AAAAAAAA       mmap 8, write a pattern
	 *   AAA            mremap 8 -> 3: the tail is unmapped
	 */
	ASSERT_TRUE(fix_init(&f));
	ASSERT_TRUE(map_pat(f.mm, BASE, 8, RW, PRIV, 1));
	ASSERT_OK(umm_mremap(f.mm, BASE, PG(8), PG(3), 0, 0, &out));
	ASSERT_EQ(out, BASE);
	ASSERT_TRUE(layout_is(f.mm, BASE, "AAA     "));
	ASSERT_EQ(mstat(f.mm).total_vm, 3);
	ASSERT_EQ(mstat(f.mm).rss_anon, 3);
	ASSERT_TRUE(check_pat(f.mm, BASE, 3, 1));
	ASSERT_ERR(byte_at(f.mm, AT(3)), EFAULT);
	return fix_fini(&f);
}

static bool test_mremap_fixed_replaces_target(void)
{
	struct fix f;
	uint64_t out = 0;

	/*
	 *   012345678901
	 *   AAAA    BBBB   A RW private, B RW shared; both written
	 *           AAAA   mremap(A, 4, 4, MAYMOVE|FIXED, 8): A replaces B
	 */
	ASSERT_TRUE(fix_init(&f));
	ASSERT_OK(map_at(f.mm, AT(0), 4, RW, PRIV));
	ASSERT_OK(map_at(f.mm, AT(8), 4, RW, SHRD));
	ASSERT_TRUE(write_pat(f.mm, AT(0), 4, 1));
	ASSERT_TRUE(write_pat(f.mm, AT(8), 4, 2));
	ASSERT_OK(umm_mremap(f.mm, AT(0), PG(4), PG(4), UMM_MREMAP_MAYMOVE | UMM_MREMAP_FIXED,
			     AT(8), &out));
	ASSERT_EQ(out, AT(8));
	ASSERT_TRUE(layout_is(f.mm, BASE, "        AAAA"));
	ASSERT_TRUE(pat_at(f.mm, AT(8), AT(0), 4, 1));
	ASSERT_ERR(byte_at(f.mm, AT(0)), EFAULT);
	ASSERT_EQ(mstat(f.mm).map_count, 1);
	ASSERT_EQ(mstat(f.mm).total_vm, 4);
	ASSERT_EQ(mstat(f.mm).rss_anon, 4);
	ASSERT_EQ(mstat(f.mm).rss_shmem, 0);
	return fix_fini(&f);
}

static bool test_mremap_fixed_grows_into_place(void)
{
	struct fix f;
	uint64_t out = 0;

	/*
	 *   0123456789AB
	 *   AA             A RW private, written
	 *        AAAA      mremap(A, 2, 4, MAYMOVE|FIXED, 5)
	 */
	ASSERT_TRUE(fix_init(&f));
	ASSERT_TRUE(map_pat(f.mm, AT(0), 2, RW, PRIV, 1));
	ASSERT_OK(umm_mremap(f.mm, AT(0), PG(2), PG(4), UMM_MREMAP_MAYMOVE | UMM_MREMAP_FIXED,
			     AT(5), &out));
	ASSERT_EQ(out, AT(5));
	ASSERT_TRUE(layout_is(f.mm, BASE, "     AAAA   "));
	ASSERT_TRUE(pat_at(f.mm, AT(5), AT(0), 2, 1));
	ASSERT_TRUE(zeros_at(f.mm, AT(7), 2));
	ASSERT_EQ(mstat(f.mm).total_vm, 4);
	return fix_fini(&f);
}

static bool test_mremap_dontunmap(void)
{
	struct fix f;
	uint64_t out = 0, pfn[4];
	struct umm_vma_info vi;

	/*
	 *   0123
	 *   AAAA           mmap 4, write a pattern
	 *   AAAA ... BBBB  mremap(A, 4, 4, MAYMOVE|DONTUNMAP): B has the frames,
	 *                  A stays mapped and reads zeros
	 */
	ASSERT_TRUE(fix_init(&f));
	ASSERT_TRUE(map_pat(f.mm, BASE, 4, RW, PRIV, 1));
	for (int i = 0; i < 4; i++)
		pfn[i] = pinfo(f.mm, AT(i)).pfn;
	ASSERT_OK(umm_mremap(f.mm, BASE, PG(4), PG(4),
			     UMM_MREMAP_MAYMOVE | UMM_MREMAP_DONTUNMAP, 0, &out));
	ASSERT_NE(out, BASE);
	ASSERT_TRUE(out + PG(4) <= BASE || out >= AT(4));
	ASSERT_TRUE(vma_at(f.mm, BASE, &vi));
	ASSERT_TRUE(vi.start <= BASE && vi.end >= AT(4));
	ASSERT_TRUE(pat_at(f.mm, out, BASE, 4, 1));
	for (int i = 0; i < 4; i++)
		ASSERT_EQ(pinfo(f.mm, out + PG(i)).pfn, pfn[i]);
	ASSERT_EQ(mstat(f.mm).rss_anon, 4);
	ASSERT_EQ(mstat(f.mm).total_vm, 8);
	ASSERT_EQ(pinfo(f.mm, BASE).flags, 0);
	ASSERT_TRUE(zeros_at(f.mm, BASE, 4));
	/* The two are independent now. */
	ASSERT_TRUE(write_pat(f.mm, BASE, 4, 2));
	ASSERT_TRUE(pat_at(f.mm, out, BASE, 4, 1));
	ASSERT_TRUE(check_pat(f.mm, BASE, 4, 2));
	return fix_fini(&f);
}

/* ---- madvise ---- */

static bool test_madvise_dontneed_private_zeroes(void)
{
	struct fix f;

	/*
	 *   0123
	 *   AAAA           written; DONTNEED 1..3: pages 1, 2 read zeros
	 */
	ASSERT_TRUE(fix_init(&f));
	ASSERT_TRUE(map_pat(f.mm, BASE, 4, RW, PRIV, 1));
	ASSERT_OK(umm_madvise(f.mm, AT(1), PG(2), UMM_MADV_DONTNEED));
	ASSERT_EQ(mstat(f.mm).rss_anon, 2);
	ASSERT_EQ(pinfo(f.mm, AT(1)).flags, 0);
	ASSERT_EQ(pinfo(f.mm, AT(2)).flags, 0);
	ASSERT_TRUE(layout_is(f.mm, BASE, "AAAA"));
	ASSERT_TRUE(check_pat(f.mm, AT(0), 1, 1));
	ASSERT_TRUE(zeros_at(f.mm, AT(1), 2));
	ASSERT_TRUE(check_pat(f.mm, AT(3), 1, 1));
	return fix_fini(&f);
}

static bool test_madvise_dontneed_shared_keeps_data(void)
{
	struct fix f;

	ASSERT_TRUE(fix_init(&f));
	ASSERT_TRUE(map_pat(f.mm, BASE, 4, RW, SHRD, 1));
	ASSERT_EQ(mstat(f.mm).rss_shmem, 4);
	ASSERT_OK(umm_madvise(f.mm, BASE, PG(4), UMM_MADV_DONTNEED));
	ASSERT_EQ(mstat(f.mm).rss_shmem, 0);
	ASSERT_EQ(pinfo(f.mm, AT(0)).flags, 0);
	ASSERT_TRUE(check_pat(f.mm, BASE, 4, 1));
	ASSERT_EQ(mstat(f.mm).rss_shmem, 4);
	return fix_fini(&f);
}

static const struct {
	int advice;
	const char *name;
} advices[] = {
	{ UMM_MADV_NORMAL, "NORMAL" },
	{ UMM_MADV_WILLNEED, "WILLNEED" },
	{ UMM_MADV_DONTNEED, "DONTNEED" },
	{ UMM_MADV_MERGEABLE, "MERGEABLE" },
	{ UMM_MADV_UNMERGEABLE, "UNMERGEABLE" },
	{ UMM_MADV_COLD, "COLD" },
	{ UMM_MADV_PAGEOUT, "PAGEOUT" },
};

static bool test_madvise_every_advice_accepted(void)
{
	struct fix f;

	ASSERT_TRUE(fix_init(&f));
	ASSERT_OK(map_at(f.mm, BASE, 4, RW, PRIV));
	for (size_t i = 0; i < sizeof(advices) / sizeof(advices[0]); i++) {
		int r;

		ASSERT_TRUE(write_pat(f.mm, BASE, 4, i + 1));
		r = umm_madvise(f.mm, BASE, PG(4), advices[i].advice);
		if (r) {
			TAP_DIAG("MADV_%s: %d (%s)", advices[i].name, r, strerror(-r));
			return false;
		}
		ASSERT_TRUE(layout_is(f.mm, BASE, "AAAA"));
		if (advices[i].advice == UMM_MADV_DONTNEED)
			ASSERT_TRUE(zeros_at(f.mm, BASE, 4));
		else
			ASSERT_TRUE(check_pat(f.mm, BASE, 4, i + 1));
	}
	return fix_fini(&f);
}

static bool test_madvise_mergeable_splits(void)
{
	struct fix f;
	struct umm_vma_info vi;

	/*
	 *   0123456789
	 *   AAAAAAAAAA     mmap 10 pages RW
	 *   AAABBBBCCC     MERGEABLE 3..7: B is VM_MERGEABLE
	 *   AAAAAAAAAA     UNMERGEABLE 3..7: one VMA again
	 */
	ASSERT_TRUE(fix_init(&f));
	ASSERT_OK(map_at(f.mm, BASE, 10, RW, PRIV));
	ASSERT_OK(umm_madvise(f.mm, AT(3), PG(4), UMM_MADV_MERGEABLE));
	ASSERT_TRUE(layout_is(f.mm, BASE, "AAABBBBCCC"));
	ASSERT_TRUE(vma_at(f.mm, AT(3), &vi));
	ASSERT_TRUE(vi.mergeable);
	ASSERT_TRUE(vma_at(f.mm, AT(0), &vi));
	ASSERT_FALSE(vi.mergeable);
	ASSERT_OK(umm_madvise(f.mm, AT(3), PG(4), UMM_MADV_UNMERGEABLE));
	ASSERT_TRUE(layout_is(f.mm, BASE, "AAAAAAAAAA"));
	ASSERT_TRUE(vma_at(f.mm, AT(3), &vi));
	ASSERT_FALSE(vi.mergeable);
	return fix_fini(&f);
}

static bool test_madvise_unknown_advice(void)
{
	static const int bad[] = { 5, 7, 999, -1 };
	struct fix f;

	ASSERT_TRUE(fix_init(&f));
	ASSERT_TRUE(map_pat(f.mm, BASE, 4, RW, PRIV, 1));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int r = umm_madvise(f.mm, BASE, PG(4), bad[i]);
		if (r != -EINVAL) {
			TAP_DIAG("advice %d: %d, expected -EINVAL", bad[i], r);
			return false;
		}
	}
	ASSERT_TRUE(layout_is(f.mm, BASE, "AAAA"));
	ASSERT_TRUE(check_pat(f.mm, BASE, 4, 1));
	ASSERT_EQ(mstat(f.mm).rss_anon, 4);
	return fix_fini(&f);
}

static bool test_madvise_dontneed_locked(void)
{
	struct fix f;
	uint64_t out = 0;

	ASSERT_TRUE(fix_init(&f));
	ASSERT_OK(umm_mmap(f.mm, BASE, PG(4), RW, PRIV | UMM_MAP_FIXED | UMM_MAP_LOCKED,
			   NULL, 0, &out));
	ASSERT_TRUE(write_pat(f.mm, BASE, 4, 1));
	ASSERT_ERR(umm_madvise(f.mm, BASE, PG(4), UMM_MADV_DONTNEED), EINVAL);
	ASSERT_ERR(umm_madvise(f.mm, AT(1), PG(1), UMM_MADV_DONTNEED), EINVAL);
	ASSERT_TRUE(check_pat(f.mm, BASE, 4, 1));
	ASSERT_EQ(mstat(f.mm).rss_anon, 4);
	ASSERT_EQ(mstat(f.mm).locked_vm, 4);
	return fix_fini(&f);
}

static bool test_madvise_over_a_hole(void)
{
	struct fix f;

	/*
	 *   01234567
	 *   AAA  BBB       WILLNEED 0..8, COLD 3..8 and NORMAL 3..5: -ENOMEM
	 */
	ASSERT_TRUE(fix_init(&f));
	ASSERT_OK(map_at(f.mm, AT(0), 3, RW, PRIV));
	ASSERT_TRUE(map_pat(f.mm, AT(5), 3, RW, PRIV, 1));
	ASSERT_ERR(umm_madvise(f.mm, AT(0), PG(8), UMM_MADV_WILLNEED), ENOMEM);
	ASSERT_ERR(umm_madvise(f.mm, AT(3), PG(5), UMM_MADV_COLD), ENOMEM);
	ASSERT_ERR(umm_madvise(f.mm, AT(3), PG(2), UMM_MADV_NORMAL), ENOMEM);
	ASSERT_TRUE(layout_is(f.mm, BASE, "AAA  BBB"));
	ASSERT_TRUE(check_pat(f.mm, AT(5), 3, 1));
	return fix_fini(&f);
}

/* ---- figures ---- */

static bool test_total_vm_follows_the_layout(void)
{
	struct fix f;
	uint64_t out = 0;

	ASSERT_TRUE(fix_init(&f));
	ASSERT_EQ(mstat(f.mm).total_vm, 0);
	ASSERT_EQ(mstat(f.mm).map_count, 0);
	ASSERT_OK(map_at(f.mm, AT(0), 10, RW, PRIV));		/* AAAAAAAAAA       10 */
	ASSERT_OK(map_at(f.mm, AT(12), 5, RW, SHRD));		/* AAAAAAAAAA  BBBBB 15 */
	ASSERT_EQ(mstat(f.mm).total_vm, 15);
	ASSERT_OK(umm_mprotect(f.mm, AT(2), PG(2), RO));	/* no change in size */
	ASSERT_EQ(mstat(f.mm).total_vm, 15);
	ASSERT_OK(map_at(f.mm, AT(8), 6, RW, PRIV));		/* FIXED over 8..14: 10 + 4 */
	ASSERT_EQ(mstat(f.mm).total_vm, 17);
	ASSERT_OK(umm_munmap(f.mm, AT(0), PG(1)));		/* 1..14 private, 14..17 shared */
	ASSERT_EQ(mstat(f.mm).total_vm, 16);
	ASSERT_OK(umm_mremap(f.mm, AT(14), PG(3), PG(1), 0, 0, &out));	/* shrink shared */
	ASSERT_EQ(mstat(f.mm).total_vm, 14);
	ASSERT_OK(umm_munmap(f.mm, AT(14), PG(1)));
	ASSERT_EQ(mstat(f.mm).total_vm, 13);
	ASSERT_OK(umm_mremap(f.mm, AT(4), PG(10), PG(16), 0, 0, &out));	/* grow 4..14 in place */
	ASSERT_EQ(out, AT(4));
	ASSERT_EQ(mstat(f.mm).total_vm, 19);
	ASSERT_OK(umm_munmap(f.mm, UMM_MMAP_MIN_ADDR, UMM_TASK_SIZE - UMM_MMAP_MIN_ADDR));
	ASSERT_EQ(mstat(f.mm).total_vm, 0);
	ASSERT_EQ(mstat(f.mm).map_count, 0);
	return fix_fini(&f);
}

int main(void)
{
	RUN_TEST(test_mmap_engine_picks_address);
	RUN_TEST(test_mmap_hint_used_when_free);
	RUN_TEST(test_mmap_hint_busy_goes_elsewhere);
	RUN_TEST(test_mmap_fixed_replaces_middle);
	RUN_TEST(test_mmap_fixed_replaces_several);
	RUN_TEST(test_mmap_fixed_noreplace);
	RUN_TEST(test_mmap_populate_private);
	RUN_TEST(test_mmap_populate_readonly_maps_zero_page);
	RUN_TEST(test_mmap_populate_shared);
	RUN_TEST(test_mmap_locked);
	RUN_TEST(test_mlock_splits_and_munlock_merges);
	RUN_TEST(test_mlock_from_a_hole);
	RUN_TEST(test_merge_append_and_prepend);
	RUN_TEST(test_merge_fills_hole);
	RUN_TEST(test_no_merge_of_two_anon_vmas);
	RUN_TEST(test_no_merge_when_prot_differs);
	RUN_TEST(test_no_merge_when_sharing_differs);
	RUN_TEST(test_munmap_middle_splits);
	RUN_TEST(test_munmap_across_vmas);
	RUN_TEST(test_munmap_over_holes_is_fine);
	RUN_TEST(test_mprotect_splits_and_merges_back);
	RUN_TEST(test_mprotect_head_and_tail);
	RUN_TEST(test_mprotect_over_a_hole);
	RUN_TEST(test_mremap_grows_in_place);
	RUN_TEST(test_mremap_grow_blocked_without_maymove);
	RUN_TEST(test_mremap_maymove_moves);
	RUN_TEST(test_mremap_shrinks);
	RUN_TEST(test_mremap_fixed_replaces_target);
	RUN_TEST(test_mremap_fixed_grows_into_place);
	RUN_TEST(test_mremap_dontunmap);
	RUN_TEST(test_madvise_dontneed_private_zeroes);
	RUN_TEST(test_madvise_dontneed_shared_keeps_data);
	RUN_TEST(test_madvise_every_advice_accepted);
	RUN_TEST(test_madvise_mergeable_splits);
	RUN_TEST(test_madvise_unknown_advice);
	RUN_TEST(test_madvise_dontneed_locked);
	RUN_TEST(test_madvise_over_a_hole);
	RUN_TEST(test_total_vm_follows_the_layout);
	return tap_done();
}
