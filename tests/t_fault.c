// SPDX-License-Identifier: MIT
/*
 * t_fault.c - faults and CPU accesses: zero page, anonymous write faults,
 * copy-on-write after fork with frame reuse, shared anonymous memory across
 * fork, umm_read/umm_write across page and VMA boundaries and permissions,
 * GUP, RSS counters, and running out of frames.
 *
 * Layouts are drawn one character per page from BASE (see fixture.h).
 */
#include <umm/umm.h>

#include "tap.h"
#include "fixture.h"

#define PI_MASK (UMM_PI_PRESENT | UMM_PI_ANON | UMM_PI_ZERO | UMM_PI_WRITE | UMM_PI_DIRTY)

/*
 * fix_init(), @n pages at BASE (@flags: PRIV or SHRD) written with pattern
 * 1, and a fork of the mm into *@child; *@pfn, if wanted, is the frame at
 * BASE as the fork found it.
 */
static bool fix_forked(struct fix *f, uint64_t n, int flags, struct umm_mm **child,
		       uint64_t *pfn)
{
	ASSERT_TRUE(fix_init(f));
	ASSERT_TRUE(map_pat(f->mm, BASE, n, RW, flags, 1));
	if (pfn)
		*pfn = pinfo(f->mm, BASE).pfn;
	ASSERT_OK(umm_mm_fork(f->mm, child));
	return true;
}

/* Validate with the child still there, exit it, then fix_fini(). */
static bool fix_fini_child(struct fix *f, struct umm_mm *child)
{
	ASSERT_TRUE(machine_valid(f->u));
	umm_mm_exit(child);
	return fix_fini(f);
}

/* ---- zero page and anonymous faults ---- */

static bool test_read_untouched_gives_zero_page(void)
{
	struct fix f;
	struct umm_pageinfo pi;
	uint64_t zf;

	ASSERT_TRUE(fix_init(&f));
	ASSERT_OK(map_at(f.mm, BASE, 2, RW, PRIV));
	ASSERT_OK(umm_pagemap(f.mm, AT(0), &pi));
	ASSERT_EQ(pi.flags, 0);
	zf = ustat(f.u).pgfault_zero;
	ASSERT_TRUE(zeros_at(f.mm, AT(0), 1));
	ASSERT_EQ(ustat(f.u).pgfault_zero, zf + 1);
	pi = pinfo(f.mm, AT(0));
	ASSERT_EQ(pi.flags & PI_MASK, UMM_PI_PRESENT | UMM_PI_ZERO);
	ASSERT_EQ(pi.pfn, 0);
	ASSERT_EQ(mstat(f.mm).rss_anon, 0);
	/* The neighbour was not touched. */
	ASSERT_EQ(pinfo(f.mm, AT(1)).flags, 0);
	return fix_fini(&f);
}

static bool test_write_allocates_a_frame(void)
{
	struct fix f;
	struct umm_pageinfo pi;
	uint64_t anon;

	ASSERT_TRUE(fix_init(&f));
	ASSERT_OK(map_at(f.mm, BASE, 2, RW, PRIV));
	anon = ustat(f.u).pgfault_anon;
	ASSERT_EQ(write_byte(f.mm, AT(0) + 100, 0x5a), 1);
	ASSERT_EQ(ustat(f.u).pgfault_anon, anon + 1);
	pi = pinfo(f.mm, AT(0));
	ASSERT_EQ(pi.flags & PI_MASK, UMM_PI_PRESENT | UMM_PI_ANON | UMM_PI_WRITE | UMM_PI_DIRTY);
	ASSERT_NE(pi.pfn, 0);
	ASSERT_TRUE(pi.pfn < ustat(f.u).nr_frames);
	ASSERT_EQ(pi.mapcount, 1);
	ASSERT_EQ(pi.refcount, 1);
	ASSERT_EQ(mstat(f.mm).rss_anon, 1);
	ASSERT_EQ(byte_at(f.mm, AT(0) + 100), 0x5a);
	ASSERT_EQ(byte_at(f.mm, AT(0) + 99), 0);
	ASSERT_EQ(byte_at(f.mm, AT(0) + PS - 1), 0);
	/* A second page gets a frame of its own. */
	ASSERT_EQ(write_byte(f.mm, AT(1), 1), 1);
	ASSERT_NE(pinfo(f.mm, AT(1)).pfn, pi.pfn);
	ASSERT_EQ(mstat(f.mm).rss_anon, 2);
	return fix_fini(&f);
}

static bool test_write_after_zero_read_replaces_zero_page(void)
{
	struct fix f;
	struct umm_pageinfo pi;
	uint64_t cow;

	ASSERT_TRUE(fix_init(&f));
	ASSERT_OK(map_at(f.mm, BASE, 1, RW, PRIV));
	ASSERT_TRUE(zeros_at(f.mm, BASE, 1));
	ASSERT_EQ(pinfo(f.mm, BASE).flags & UMM_PI_ZERO, UMM_PI_ZERO);
	cow = ustat(f.u).pgfault_cow;
	ASSERT_EQ(write_byte(f.mm, BASE + 7, 0x77), 1);
	ASSERT_EQ(ustat(f.u).pgfault_cow, cow + 1);
	pi = pinfo(f.mm, BASE);
	ASSERT_EQ(pi.flags & PI_MASK, UMM_PI_PRESENT | UMM_PI_ANON | UMM_PI_WRITE | UMM_PI_DIRTY);
	ASSERT_NE(pi.pfn, 0);
	ASSERT_EQ(pi.mapcount, 1);
	ASSERT_EQ(pi.refcount, 1);
	ASSERT_EQ(mstat(f.mm).rss_anon, 1);
	ASSERT_EQ(byte_at(f.mm, BASE + 7), 0x77);
	ASSERT_EQ(byte_at(f.mm, BASE + 8), 0);
	return fix_fini(&f);
}

/* ---- fork and copy-on-write ---- */

static bool test_fork_shares_frames_read_only(void)
{
	struct fix f;
	struct umm_mm *child;

	ASSERT_TRUE(fix_forked(&f, 4, PRIV, &child, NULL));
	ASSERT_TRUE(check_pat(child, BASE, 4, 1));
	ASSERT_TRUE(check_pat(f.mm, BASE, 4, 1));
	for (int i = 0; i < 4; i++) {
		struct umm_pageinfo p = pinfo(f.mm, AT(i)), c = pinfo(child, AT(i));

		ASSERT_EQ(p.pfn, c.pfn);
		ASSERT_NE(p.pfn, 0);
		ASSERT_EQ(p.flags & (UMM_PI_PRESENT | UMM_PI_ANON | UMM_PI_WRITE),
			  UMM_PI_PRESENT | UMM_PI_ANON);
		ASSERT_EQ(c.flags & (UMM_PI_PRESENT | UMM_PI_ANON | UMM_PI_WRITE),
			  UMM_PI_PRESENT | UMM_PI_ANON);
		ASSERT_EQ(p.mapcount, 2);
		ASSERT_EQ(p.refcount, 2);
		ASSERT_EQ(c.mapcount, 2);
	}
	ASSERT_EQ(mstat(child).rss_anon, 4);
	ASSERT_EQ(mstat(child).map_count, 1);
	ASSERT_EQ(mstat(child).total_vm, 4);
	return fix_fini_child(&f, child);
}

static bool test_fork_child_write_copies_then_parent_reuses(void)
{
	struct fix f;
	struct umm_mm *child;
	struct umm_pageinfo p, c;
	uint64_t old_pfn, reuse, cow;

	ASSERT_TRUE(fix_forked(&f, 1, PRIV, &child, &old_pfn));

	/* The child writes: it gets a copy, the parent keeps the frame. */
	cow = ustat(f.u).pgfault_cow;
	ASSERT_TRUE(write_pat(child, BASE, 1, 2));
	ASSERT_EQ(ustat(f.u).pgfault_cow, cow + 1);
	c = pinfo(child, BASE);
	p = pinfo(f.mm, BASE);
	ASSERT_NE(c.pfn, old_pfn);
	ASSERT_EQ(p.pfn, old_pfn);
	ASSERT_EQ(c.flags & (UMM_PI_ANON | UMM_PI_WRITE), UMM_PI_ANON | UMM_PI_WRITE);
	ASSERT_EQ(c.mapcount, 1);
	ASSERT_EQ(c.refcount, 1);
	ASSERT_EQ(p.mapcount, 1);
	ASSERT_EQ(p.refcount, 1);
	ASSERT_FALSE(p.flags & UMM_PI_WRITE);
	ASSERT_TRUE(check_pat(child, BASE, 1, 2));
	ASSERT_TRUE(check_pat(f.mm, BASE, 1, 1));

	/* The parent is the only mapper left: its write reuses the frame. */
	reuse = ustat(f.u).pgfault_reuse;
	cow = ustat(f.u).pgfault_cow;
	ASSERT_TRUE(write_pat(f.mm, BASE, 1, 3));
	ASSERT_EQ(ustat(f.u).pgfault_reuse, reuse + 1);
	ASSERT_EQ(ustat(f.u).pgfault_cow, cow);
	p = pinfo(f.mm, BASE);
	ASSERT_EQ(p.pfn, old_pfn);
	ASSERT_TRUE(p.flags & UMM_PI_WRITE);
	ASSERT_TRUE(check_pat(f.mm, BASE, 1, 3));
	ASSERT_TRUE(check_pat(child, BASE, 1, 2));
	return fix_fini_child(&f, child);
}

static bool test_fork_parent_write_copies(void)
{
	struct fix f;
	struct umm_mm *child;
	uint64_t old_pfn;

	ASSERT_TRUE(fix_forked(&f, 2, PRIV, &child, &old_pfn));
	ASSERT_TRUE(write_pat(f.mm, BASE, 1, 2));
	ASSERT_NE(pinfo(f.mm, BASE).pfn, old_pfn);
	ASSERT_EQ(pinfo(child, BASE).pfn, old_pfn);
	ASSERT_TRUE(check_pat(child, BASE, 2, 1));
	ASSERT_TRUE(check_pat(f.mm, BASE, 1, 2));
	/* The page nobody wrote is still shared. */
	ASSERT_EQ(pinfo(f.mm, AT(1)).pfn, pinfo(child, AT(1)).pfn);
	ASSERT_EQ(pinfo(f.mm, AT(1)).mapcount, 2);
	return fix_fini_child(&f, child);
}

static bool test_fork_zero_page_stays_zero(void)
{
	struct fix f;
	struct umm_mm *child;

	ASSERT_TRUE(fix_init(&f));
	ASSERT_OK(map_at(f.mm, BASE, 1, RW, PRIV));
	ASSERT_TRUE(zeros_at(f.mm, BASE, 1));
	ASSERT_OK(umm_mm_fork(f.mm, &child));
	ASSERT_EQ(write_byte(child, BASE, 9), 1);
	ASSERT_TRUE(zeros_at(f.mm, BASE, 1));
	ASSERT_EQ(byte_at(child, BASE), 9);
	ASSERT_EQ(pinfo(f.mm, BASE).pfn, 0);
	ASSERT_NE(pinfo(child, BASE).pfn, 0);
	umm_mm_exit(child);
	return fix_fini(&f);
}

static bool test_fork_shared_anon_stays_shared(void)
{
	struct fix f;
	struct umm_mm *child;
	struct umm_pageinfo p, c;

	ASSERT_TRUE(fix_init(&f));
	ASSERT_TRUE(map_pat(f.mm, BASE, 2, RW, SHRD, 1));
	ASSERT_EQ(mstat(f.mm).rss_shmem, 2);
	p = pinfo(f.mm, BASE);
	ASSERT_EQ(p.flags & (UMM_PI_PRESENT | UMM_PI_ANON), UMM_PI_PRESENT);
	ASSERT_EQ(p.mapcount, 1);
	ASSERT_EQ(p.refcount, 2);
	ASSERT_OK(umm_mm_fork(f.mm, &child));
	ASSERT_TRUE(check_pat(child, BASE, 2, 1));
	ASSERT_TRUE(write_pat(child, BASE, 1, 2));
	ASSERT_TRUE(check_pat(f.mm, BASE, 1, 2));
	ASSERT_TRUE(write_pat(f.mm, AT(1), 1, 3));
	ASSERT_TRUE(check_pat(child, AT(1), 1, 3));
	p = pinfo(f.mm, BASE);
	c = pinfo(child, BASE);
	ASSERT_EQ(p.pfn, c.pfn);
	ASSERT_EQ(p.mapcount, 2);
	ASSERT_EQ(p.refcount, 3);
	ASSERT_TRUE(p.flags & UMM_PI_WRITE);
	ASSERT_TRUE(c.flags & UMM_PI_WRITE);
	ASSERT_EQ(mstat(child).rss_shmem, 2);
	ASSERT_EQ(mstat(child).rss_anon, 0);
	ASSERT_TRUE(machine_valid(f.u));
	/* The object outlives the parent. */
	umm_mm_exit(f.mm);
	f.mm = NULL;
	ASSERT_TRUE(check_pat(child, BASE, 1, 2));
	ASSERT_TRUE(check_pat(child, AT(1), 1, 3));
	ASSERT_EQ(pinfo(child, BASE).mapcount, 1);
	ASSERT_EQ(pinfo(child, BASE).refcount, 2);
	umm_mm_exit(child);
	return fix_fini(&f);
}

static bool test_fork_tree_depth_3(void)
{
	struct fix f;
	struct umm_mm *mm[4];

	/*
	 * root writes R everywhere; c1 = fork(root) writes pages 0, 1; c2 =
	 * fork(c1) writes pages 0, 2; c3 = fork(c2) writes pages 0, 3; then root
	 * writes page 0 again.  Page 0 is each one's own; page k (k >= 1) holds
	 * what level k wrote for levels >= k and R above.
	 *
	 *            p0 p1 p2 p3
	 *   root     r  R  R  R
	 *   c1       1  1  R  R
	 *   c2       2  1  2  R
	 *   c3       3  1  2  3
	 */
	ASSERT_TRUE(fix_init(&f));
	mm[0] = f.mm;
	ASSERT_TRUE(map_pat(mm[0], BASE, 4, RW, PRIV, 100));
	for (int l = 1; l <= 3; l++) {
		ASSERT_OK(umm_mm_fork(mm[l - 1], &mm[l]));
		ASSERT_TRUE(write_pat(mm[l], AT(0), 1, l));
		ASSERT_TRUE(write_pat(mm[l], AT(l), 1, l));
	}
	ASSERT_TRUE(write_pat(mm[0], AT(0), 1, 50));

	ASSERT_TRUE(check_pat(mm[0], AT(0), 1, 50));
	ASSERT_TRUE(check_pat(mm[0], AT(1), 3, 100));
	for (int l = 1; l <= 3; l++) {
		ASSERT_TRUE(check_pat(mm[l], AT(0), 1, l));
		for (int k = 1; k <= 3; k++)
			ASSERT_TRUE(check_pat(mm[l], AT(k), 1, k <= l ? (uint64_t)k : 100));
	}
	/* Page 3 was never written below the root's level: shared by 3 mms. */
	ASSERT_EQ(pinfo(mm[0], AT(3)).mapcount, 3);
	ASSERT_EQ(pinfo(mm[2], AT(3)).pfn, pinfo(mm[0], AT(3)).pfn);
	ASSERT_TRUE(machine_valid(f.u));

	/* Exit from the middle: the others keep their data. */
	umm_mm_exit(mm[1]);
	ASSERT_TRUE(check_pat(mm[2], AT(1), 1, 1));
	ASSERT_TRUE(check_pat(mm[3], AT(1), 1, 1));
	ASSERT_TRUE(check_pat(mm[3], AT(0), 1, 3));
	ASSERT_TRUE(check_pat(mm[0], AT(2), 1, 100));
	ASSERT_TRUE(machine_valid(f.u));
	umm_mm_exit(mm[0]);
	f.mm = NULL;
	ASSERT_TRUE(check_pat(mm[3], AT(2), 1, 2));
	ASSERT_TRUE(check_pat(mm[2], AT(3), 1, 100));
	ASSERT_TRUE(machine_valid(f.u));
	umm_mm_exit(mm[2]);
	ASSERT_TRUE(check_pat(mm[3], AT(3), 1, 3));
	umm_mm_exit(mm[3]);
	return fix_fini(&f);
}

static bool test_parent_exit_leaves_child_intact(void)
{
	struct fix f;
	struct umm_mm *child;
	uint64_t pfn, reuse;

	ASSERT_TRUE(fix_forked(&f, 4, PRIV, &child, &pfn));
	umm_mm_exit(f.mm);
	f.mm = NULL;
	ASSERT_TRUE(check_pat(child, BASE, 4, 1));
	ASSERT_EQ(pinfo(child, BASE).mapcount, 1);
	ASSERT_EQ(pinfo(child, BASE).refcount, 1);
	ASSERT_EQ(mstat(child).rss_anon, 4);
	ASSERT_TRUE(machine_valid(f.u));
	/* Left alone with the frame, the child's write reuses it. */
	reuse = ustat(f.u).pgfault_reuse;
	ASSERT_TRUE(write_pat(child, BASE, 1, 2));
	ASSERT_EQ(pinfo(child, BASE).pfn, pfn);
	ASSERT_EQ(ustat(f.u).pgfault_reuse, reuse + 1);
	f.mm = child;
	return fix_fini(&f);
}

static bool test_dontneed_in_child_after_fork(void)
{
	struct fix f;
	struct umm_mm *child;
	uint64_t pfn;

	ASSERT_TRUE(fix_forked(&f, 2, PRIV, &child, &pfn));
	ASSERT_OK(umm_madvise(child, BASE, PS, UMM_MADV_DONTNEED));
	ASSERT_TRUE(zeros_at(child, BASE, 1));
	ASSERT_TRUE(check_pat(f.mm, BASE, 2, 1));
	ASSERT_EQ(pinfo(f.mm, BASE).mapcount, 1);
	ASSERT_EQ(pinfo(f.mm, BASE).refcount, 1);
	ASSERT_EQ(mstat(child).rss_anon, 1);
	/* The parent is alone on the frame again: its write reuses it. */
	ASSERT_TRUE(write_pat(f.mm, BASE, 1, 2));
	ASSERT_EQ(pinfo(f.mm, BASE).pfn, pfn);
	ASSERT_TRUE(zeros_at(child, BASE, 1));
	return fix_fini_child(&f, child);
}

static bool test_mremap_after_fork_keeps_cow(void)
{
	struct fix f;
	struct umm_mm *child;
	uint64_t out = 0, pfn;
	uint64_t w[PS / 8];

	/*
	 *   0123456789
	 *   AAAA           parent and child share A's frames copy-on-write
	 *        AAAA      the parent moves A (MAYMOVE|FIXED 5): still COW
	 */
	ASSERT_TRUE(fix_forked(&f, 4, PRIV, &child, &pfn));
	ASSERT_OK(umm_mremap(f.mm, BASE, PG(4), PG(4), UMM_MREMAP_MAYMOVE | UMM_MREMAP_FIXED,
			     AT(5), &out));
	ASSERT_EQ(out, AT(5));
	ASSERT_EQ(pinfo(f.mm, AT(5)).pfn, pfn);
	ASSERT_EQ(pinfo(f.mm, AT(5)).mapcount, 2);
	ASSERT_FALSE(pinfo(f.mm, AT(5)).flags & UMM_PI_WRITE);
	/* The parent's write at the new place copies; the child keeps the old data. */
	pat_fill(w, BASE, 1);
	ASSERT_EQ(umm_write(f.mm, AT(5), "moved", 5), 5);
	ASSERT_NE(pinfo(f.mm, AT(5)).pfn, pfn);
	ASSERT_TRUE(check_pat(child, BASE, 4, 1));
	ASSERT_EQ(pinfo(child, BASE).pfn, pfn);
	ASSERT_EQ(pinfo(child, BASE).mapcount, 1);
	{
		uint8_t buf[PS];

		ASSERT_EQ(umm_read(f.mm, AT(5), buf, PS), PS);
		ASSERT_TRUE(memcmp(buf, "moved", 5) == 0);
		ASSERT_TRUE(memcmp(buf + 5, (uint8_t *)w + 5, PS - 5) == 0);
	}
	return fix_fini_child(&f, child);
}

static bool test_moved_shared_mapping_stays_shared(void)
{
	struct fix f;
	struct umm_mm *child;
	uint64_t out = 0;

	ASSERT_TRUE(fix_forked(&f, 2, SHRD, &child, NULL));
	ASSERT_OK(umm_mremap(f.mm, BASE, PG(2), PG(2), UMM_MREMAP_MAYMOVE | UMM_MREMAP_FIXED,
			     AT(8), &out));
	ASSERT_TRUE(write_pat(child, BASE, 1, 2));
	ASSERT_EQ(umm_write(f.mm, AT(9), "parent", 6), 6);
	ASSERT_TRUE(pat_at(f.mm, AT(8), BASE, 1, 2));
	{
		char buf[6];

		ASSERT_EQ(umm_read(child, AT(1), buf, 6), 6);
		ASSERT_TRUE(memcmp(buf, "parent", 6) == 0);
	}
	ASSERT_EQ(pinfo(f.mm, AT(8)).pfn, pinfo(child, BASE).pfn);
	return fix_fini_child(&f, child);
}

static bool test_mprotect_roundtrip_reuses_frame(void)
{
	struct fix f;
	uint64_t pfn, cow;

	ASSERT_TRUE(fix_init(&f));
	ASSERT_TRUE(map_pat(f.mm, BASE, 1, RW, PRIV, 1));
	pfn = pinfo(f.mm, BASE).pfn;
	ASSERT_OK(umm_mprotect(f.mm, BASE, PS, RO));
	ASSERT_FALSE(pinfo(f.mm, BASE).flags & UMM_PI_WRITE);
	ASSERT_OK(umm_mprotect(f.mm, BASE, PS, RW));
	cow = ustat(f.u).pgfault_cow;
	/* An exclusive frame is written in place, not copied. */
	ASSERT_TRUE(write_pat(f.mm, BASE, 1, 2));
	ASSERT_EQ(pinfo(f.mm, BASE).pfn, pfn);
	ASSERT_EQ(ustat(f.u).pgfault_cow, cow);
	ASSERT_TRUE(pinfo(f.mm, BASE).flags & UMM_PI_WRITE);
	ASSERT_TRUE(check_pat(f.mm, BASE, 1, 2));
	return fix_fini(&f);
}

/* ---- umm_read / umm_write ---- */

/* The layout "AB": fix_init(), a private page at AT(0) (@prot_a), one at AT(1) (@prot_b). */
static bool fix_init_ab(struct fix *f, int prot_a, int prot_b)
{
	ASSERT_TRUE(fix_init(f));
	ASSERT_OK(map_at(f->mm, AT(0), 1, prot_a, PRIV));
	ASSERT_OK(map_at(f->mm, AT(1), 1, prot_b, PRIV));
	return true;
}

static bool test_rw_across_pages(void)
{
	struct fix f;
	static uint8_t in[3 * PS], out[3 * PS];

	ASSERT_TRUE(fix_init(&f));
	ASSERT_OK(map_at(f.mm, BASE, 4, RW, PRIV));
	for (size_t i = 0; i < sizeof(in); i++)
		in[i] = (uint8_t)(i * 31 + 7);
	ASSERT_EQ(umm_write(f.mm, BASE + 100, in, sizeof(in)), sizeof(in));
	ASSERT_EQ(umm_read(f.mm, BASE + 100, out, sizeof(out)), sizeof(out));
	ASSERT_TRUE(memcmp(in, out, sizeof(in)) == 0);
	ASSERT_EQ(byte_at(f.mm, BASE + 99), 0);
	ASSERT_EQ(byte_at(f.mm, BASE + 100 + sizeof(in)), 0);
	ASSERT_EQ(mstat(f.mm).rss_anon, 4);
	/* Unaligned pieces of it read back the same. */
	ASSERT_EQ(umm_read(f.mm, BASE + PS - 3, out, 10), 10);
	ASSERT_TRUE(memcmp(out, in + PS - 103, 10) == 0);
	return fix_fini(&f);
}

static bool test_rw_across_vmas(void)
{
	struct fix f;
	static uint8_t in[2 * PS], out[2 * PS];

	/*
	 *   0123
	 *   AABB           A private, B shared: one access spans both
	 */
	ASSERT_TRUE(fix_init(&f));
	ASSERT_OK(map_at(f.mm, AT(0), 2, RW, PRIV));
	ASSERT_OK(map_at(f.mm, AT(2), 2, RW, SHRD));
	ASSERT_EQ(mstat(f.mm).map_count, 2);
	for (size_t i = 0; i < sizeof(in); i++)
		in[i] = (uint8_t)(i * 13 + 1);
	ASSERT_EQ(umm_write(f.mm, AT(1) + 5, in, sizeof(in)), sizeof(in));
	ASSERT_EQ(umm_read(f.mm, AT(1) + 5, out, sizeof(out)), sizeof(out));
	ASSERT_TRUE(memcmp(in, out, sizeof(in)) == 0);
	ASSERT_EQ(mstat(f.mm).rss_anon, 1);
	ASSERT_EQ(mstat(f.mm).rss_shmem, 2);
	return fix_fini(&f);
}

static bool test_write_stops_at_readonly_page(void)
{
	struct fix f;
	static uint8_t in[2 * PS];

	/*
	 *   01
	 *   AB             A RW, B R: a write from A into B stops at B
	 */
	ASSERT_TRUE(fix_init_ab(&f, RW, RO));
	memset(in, 0x3c, sizeof(in));
	ASSERT_EQ(umm_write(f.mm, AT(0), in, sizeof(in)), PS);
	ASSERT_EQ(umm_write(f.mm, AT(0) + 100, in, 8000), PS - 100);
	ASSERT_EQ(byte_at(f.mm, AT(1) - 1), 0x3c);
	ASSERT_TRUE(zeros_at(f.mm, AT(1), 1));
	ASSERT_EQ(mstat(f.mm).rss_anon, 1);
	return fix_fini(&f);
}

static bool test_write_starting_in_readonly_faults(void)
{
	struct fix f;
	static uint8_t in[2 * PS];

	/*
	 *   01
	 *   AB             A R, B RW: a write starting in A fails whole
	 */
	ASSERT_TRUE(fix_init_ab(&f, RO, RW));
	memset(in, 0x3c, sizeof(in));
	ASSERT_ERR(umm_write(f.mm, AT(0) + PS - 1, in, 2), EFAULT);
	ASSERT_ERR(umm_write(f.mm, AT(0), in, sizeof(in)), EFAULT);
	ASSERT_TRUE(zeros_at(f.mm, AT(0), 2));
	ASSERT_EQ(mstat(f.mm).rss_anon, 0);
	return fix_fini(&f);
}

static bool test_read_stops_at_hole(void)
{
	struct fix f;
	static uint8_t buf[2 * PS];

	/*
	 *   012
	 *   A B            a read from A into the hole stops at the hole
	 */
	ASSERT_TRUE(fix_init(&f));
	ASSERT_OK(map_at(f.mm, AT(0), 1, RW, PRIV));
	ASSERT_OK(map_at(f.mm, AT(2), 1, RW, PRIV));
	ASSERT_EQ(umm_read(f.mm, AT(0) + 10, buf, sizeof(buf)), PS - 10);
	ASSERT_EQ(umm_write(f.mm, AT(0) + 10, buf, sizeof(buf)), PS - 10);
	ASSERT_ERR(umm_read(f.mm, AT(1), buf, sizeof(buf)), EFAULT);
	ASSERT_ERR(umm_write(f.mm, AT(1) + PS - 1, buf, 2), EFAULT);
	ASSERT_TRUE(zeros_at(f.mm, AT(2), 1));
	return fix_fini(&f);
}

static bool test_prot_none_faults(void)
{
	struct fix f;
	uint8_t buf[16];

	ASSERT_TRUE(fix_init(&f));
	ASSERT_OK(map_at(f.mm, BASE, 1, UMM_PROT_NONE, PRIV));
	ASSERT_ERR(umm_read(f.mm, BASE, buf, sizeof(buf)), EFAULT);
	ASSERT_ERR(umm_write(f.mm, BASE, buf, sizeof(buf)), EFAULT);
	ASSERT_EQ(pinfo(f.mm, BASE).flags, 0);
	ASSERT_EQ(mstat(f.mm).rss_anon, 0);
	return fix_fini(&f);
}

static bool test_write_only_is_readable(void)
{
	struct fix f;

	ASSERT_TRUE(fix_init(&f));
	ASSERT_OK(map_at(f.mm, BASE, 1, UMM_PROT_WRITE, PRIV));
	ASSERT_EQ(write_byte(f.mm, BASE + 3, 0x42), 1);
	ASSERT_EQ(byte_at(f.mm, BASE + 3), 0x42);
	return fix_fini(&f);
}

static bool test_exec_only_is_readable_not_writable(void)
{
	struct fix f;

	ASSERT_TRUE(fix_init(&f));
	ASSERT_OK(map_at(f.mm, BASE, 1, UMM_PROT_EXEC, PRIV));
	ASSERT_TRUE(zeros_at(f.mm, BASE, 1));
	ASSERT_ERR(write_byte(f.mm, BASE, 1), EFAULT);
	return fix_fini(&f);
}

/* ---- GUP ---- */

static bool test_gup_read_of_cow_page_returns_shared_frame(void)
{
	struct fix f;
	struct umm_mm *child;
	struct umm_page *pg;
	uint64_t pfn;

	ASSERT_TRUE(fix_forked(&f, 1, PRIV, &child, &pfn));
	ASSERT_OK(umm_get_user_page(child, BASE, 0, &pg));
	ASSERT_EQ(umm_page_pfn(pg), pfn);
	ASSERT_EQ(pinfo(f.mm, BASE).mapcount, 2);
	ASSERT_EQ(pinfo(f.mm, BASE).refcount, 3);
	ASSERT_FALSE(pinfo(child, BASE).flags & UMM_PI_WRITE);
	ASSERT_TRUE(page_is_pat(umm_page_address(pg), BASE, 1));
	/* Held references are not allowed by the exact check, fine otherwise. */
	ASSERT_OK(umm_validate(f.u, 0, NULL, 0));
	ASSERT_ERR(umm_validate(f.u, UMM_VALIDATE_EXACT, NULL, 0), EUCLEAN);
	umm_put_page(pg);
	ASSERT_EQ(pinfo(f.mm, BASE).refcount, 2);
	umm_mm_exit(child);
	return fix_fini(&f);
}

static bool test_gup_write_breaks_cow(void)
{
	struct fix f;
	struct umm_mm *child;
	struct umm_page *pg;
	struct umm_pageinfo c, p;
	uint64_t pfn;

	ASSERT_TRUE(fix_forked(&f, 1, PRIV, &child, &pfn));
	ASSERT_OK(umm_get_user_page(child, BASE, UMM_GUP_WRITE, &pg));
	ASSERT_NE(umm_page_pfn(pg), pfn);
	c = pinfo(child, BASE);
	p = pinfo(f.mm, BASE);
	ASSERT_EQ(c.pfn, umm_page_pfn(pg));
	ASSERT_TRUE(c.flags & UMM_PI_WRITE);
	ASSERT_EQ(c.mapcount, 1);
	ASSERT_EQ(c.refcount, 2);
	ASSERT_EQ(p.pfn, pfn);
	ASSERT_EQ(p.mapcount, 1);
	ASSERT_EQ(p.refcount, 1);
	/* A store through the frame pointer is the child's alone. */
	memset(umm_page_address(pg), 0xee, 16);
	ASSERT_EQ(byte_at(child, BASE + 15), 0xee);
	ASSERT_TRUE(check_pat(f.mm, BASE, 1, 1));
	umm_put_page(pg);
	ASSERT_EQ(pinfo(child, BASE).refcount, 1);
	umm_mm_exit(child);
	return fix_fini(&f);
}

static bool test_gup_write_address_seen_by_read(void)
{
	struct fix f;
	struct umm_page *pg;
	uint8_t buf[8];

	ASSERT_TRUE(fix_init(&f));
	ASSERT_OK(map_at(f.mm, BASE, 2, RW, PRIV));
	ASSERT_OK(umm_get_user_page(f.mm, AT(1), UMM_GUP_WRITE, &pg));
	ASSERT_NE(umm_page_pfn(pg), 0);
	ASSERT_EQ(pinfo(f.mm, AT(1)).refcount, 2);
	memcpy((char *)umm_page_address(pg) + 4000, "secondry", 8);
	ASSERT_EQ(umm_read(f.mm, AT(1) + 4000, buf, 8), 8);
	ASSERT_TRUE(memcmp(buf, "secondry", 8) == 0);
	/* And the other way round. */
	ASSERT_EQ(umm_write(f.mm, AT(1) + 8, "cpu", 3), 3);
	ASSERT_TRUE(memcmp((char *)umm_page_address(pg) + 8, "cpu", 3) == 0);
	umm_put_page(pg);
	ASSERT_EQ(pinfo(f.mm, AT(1)).refcount, 1);
	return fix_fini(&f);
}

static bool test_gup_read_of_untouched_gives_zero_frame(void)
{
	struct fix f;
	struct umm_page *pg;
	static const uint8_t zero[PS];

	ASSERT_TRUE(fix_init(&f));
	ASSERT_OK(map_at(f.mm, BASE, 1, RO, PRIV));
	ASSERT_OK(umm_get_user_page(f.mm, BASE, 0, &pg));
	ASSERT_EQ(umm_page_pfn(pg), 0);
	ASSERT_TRUE(memcmp(umm_page_address(pg), zero, PS) == 0);
	umm_put_page(pg);
	/* No write GUP on a read-only mapping. */
	ASSERT_ERR(umm_get_user_page(f.mm, BASE, UMM_GUP_WRITE, &pg), EFAULT);
	ASSERT_ERR(umm_get_user_page(f.mm, AT(1), 0, &pg), EFAULT);
	return fix_fini(&f);
}

/* ---- counters and pagemap ---- */

static bool test_rss_back_to_zero_after_munmap(void)
{
	struct fix f;

	ASSERT_TRUE(fix_init(&f));
	ASSERT_OK(map_at(f.mm, AT(0), 8, RW, PRIV));
	ASSERT_OK(map_at(f.mm, AT(8), 4, RW, SHRD));
	ASSERT_TRUE(write_pat(f.mm, AT(0), 12, 1));
	ASSERT_EQ(mstat(f.mm).rss_anon, 8);
	ASSERT_EQ(mstat(f.mm).rss_shmem, 4);
	ASSERT_OK(umm_munmap(f.mm, AT(0), PG(12)));
	ASSERT_EQ(mstat(f.mm).rss_anon, 0);
	ASSERT_EQ(mstat(f.mm).rss_shmem, 0);
	ASSERT_EQ(mstat(f.mm).total_vm, 0);
	return fix_fini(&f);
}

static bool test_pagemap_edges(void)
{
	struct fix f;
	struct umm_pageinfo pi;

	ASSERT_TRUE(fix_init(&f));
	ASSERT_ERR(umm_pagemap(f.mm, BASE, &pi), EFAULT);
	ASSERT_OK(map_at(f.mm, BASE, 1, RW, PRIV));
	memset(&pi, 0xff, sizeof(pi));
	ASSERT_OK(umm_pagemap(f.mm, BASE + 123, &pi));
	ASSERT_EQ(pi.flags, 0);
	ASSERT_ERR(umm_pagemap(f.mm, AT(1), &pi), EFAULT);
	ASSERT_ERR(umm_pagemap(f.mm, BASE - 1, &pi), EFAULT);
	return fix_fini(&f);
}

/* ---- out of memory ---- */

/*
 * Write pattern 1 to page after page from AT(@from) on, until a write gets
 * -ENOMEM or AT(@to) is reached: *@stop is the page not written.  Any other
 * result than a whole page or -ENOMEM fails.
 */
static bool write_until_enomem(struct umm_mm *mm, uint64_t from, uint64_t to, uint64_t *stop)
{
	uint64_t w[PS / 8];

	for (*stop = from; *stop < to; (*stop)++) {
		ssize_t r;

		pat_fill(w, AT(*stop), 1);
		r = umm_write(mm, AT(*stop), w, PS);
		if (r == -ENOMEM)
			break;
		ASSERT_EQ(r, PS);
	}
	return true;
}

static bool test_out_of_frames(void)
{
	struct fix f;
	struct umm_page *pg;
	struct umm_stat st0;
	uint64_t n = 128, k, k2;

	/*
	 * 64 frames: write page after page until a write gets -ENOMEM; the
	 * machine stays sane; free half and writes work again.
	 */
	ASSERT_TRUE(fix_init_phys(&f, 64 * PS));
	st0 = ustat(f.u);
	ASSERT_EQ(st0.nr_frames, 64);
	ASSERT_OK(map_at(f.mm, BASE, n, RW, PRIV));
	ASSERT_TRUE(write_until_enomem(f.mm, 0, n, &k));
	TAP_DIAG("%" PRIu64 " pages written before -ENOMEM", k);
	ASSERT_TRUE(k < 64);
	ASSERT_GE(k, 16);
	ASSERT_EQ(pinfo(f.mm, AT(k)).flags, 0);
	ASSERT_EQ(mstat(f.mm).rss_anon, k);
	ASSERT_TRUE(machine_valid(f.u));
	/* Still out: a GUP write fails too; a read maps the zero frame. */
	ASSERT_ERR(umm_get_user_page(f.mm, AT(k), UMM_GUP_WRITE, &pg), ENOMEM);
	ASSERT_ERR(write_byte(f.mm, AT(k) + 5, 1), ENOMEM);
	ASSERT_TRUE(zeros_at(f.mm, AT(k), 1));
	ASSERT_TRUE(check_pat(f.mm, BASE, k, 1));

	/* Free the first half: writes succeed again. */
	ASSERT_OK(umm_munmap(f.mm, BASE, PG(k / 2)));
	ASSERT_TRUE(write_until_enomem(f.mm, k, n, &k2));
	TAP_DIAG("%" PRIu64 " more pages written after freeing %" PRIu64, k2 - k, k / 2);
	ASSERT_GE(k2 - k, k / 2 - 1);
	ASSERT_TRUE(k2 < n);
	ASSERT_TRUE(check_pat(f.mm, AT(k / 2), k2 - k / 2, 1));
	ASSERT_TRUE(machine_valid(f.u));
	umm_mm_exit(f.mm);
	f.mm = NULL;
	ASSERT_EQ(ustat(f.u).nr_free, st0.nr_free);
	return fix_fini(&f);
}

int main(void)
{
	RUN_TEST(test_read_untouched_gives_zero_page);
	RUN_TEST(test_write_allocates_a_frame);
	RUN_TEST(test_write_after_zero_read_replaces_zero_page);
	RUN_TEST(test_fork_shares_frames_read_only);
	RUN_TEST(test_fork_child_write_copies_then_parent_reuses);
	RUN_TEST(test_fork_parent_write_copies);
	RUN_TEST(test_fork_zero_page_stays_zero);
	RUN_TEST(test_fork_shared_anon_stays_shared);
	RUN_TEST(test_fork_tree_depth_3);
	RUN_TEST(test_parent_exit_leaves_child_intact);
	RUN_TEST(test_dontneed_in_child_after_fork);
	RUN_TEST(test_mremap_after_fork_keeps_cow);
	RUN_TEST(test_moved_shared_mapping_stays_shared);
	RUN_TEST(test_mprotect_roundtrip_reuses_frame);
	RUN_TEST(test_rw_across_pages);
	RUN_TEST(test_rw_across_vmas);
	RUN_TEST(test_write_stops_at_readonly_page);
	RUN_TEST(test_write_starting_in_readonly_faults);
	RUN_TEST(test_read_stops_at_hole);
	RUN_TEST(test_prot_none_faults);
	RUN_TEST(test_write_only_is_readable);
	RUN_TEST(test_exec_only_is_readable_not_writable);
	RUN_TEST(test_gup_read_of_cow_page_returns_shared_frame);
	RUN_TEST(test_gup_write_breaks_cow);
	RUN_TEST(test_gup_write_address_seen_by_read);
	RUN_TEST(test_gup_read_of_untouched_gives_zero_frame);
	RUN_TEST(test_rss_back_to_zero_after_munmap);
	RUN_TEST(test_pagemap_edges);
	RUN_TEST(test_out_of_frames);
	return tap_done();
}
