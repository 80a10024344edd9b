/* SPDX-License-Identifier: MIT */
/*
 * t_swap_count.c - a swap slot whose count is full.
 *
 * A slot counts the swap PTEs that name it in 31 bits; umm builds no count
 * continuations, so a count that would pass the limit is refused with
 * -ENOMEM, which is Linux's answer when it cannot allocate a continuation:
 *
 *  - fork (copy_page_range) fails with -ENOMEM, and what it had copied
 *    before the full slot is given back: every count again equals the
 *    swap PTEs that name the slot, the parent is untouched;
 *  - reclaim (try_to_unmap) leaves the mapping it could not count in
 *    place and stops, the page stays mapped there and in the swap cache,
 *    and every mm still reads its bytes.
 *
 * 2^31 PTEs cannot be built in a test, so the limit is lowered through the
 * engine's internal header (the static library exports it): the paths
 * that meet a full count are the same whatever the limit.
 * umm_validate(EXACT|RMAP) checks each slot's count against a walk of
 * every page table.
 */
#include <stdatomic.h>

#include "tap.h"
#define FIX_VALIDATE	(UMM_VALIDATE_EXACT | UMM_VALIDATE_RMAP)
#include "swap_fixture.h"
#include "internal.h"

/* swap_fix_init(), with at most @count_max swap PTEs per slot. */
static bool count_fix_init(struct fix *f, uint32_t count_max)
{
	ASSERT_TRUE(swap_fix_init(f, 16 << 20, 4 << 20));
	f->u->swap->count_max = count_max;
	return true;
}

static unsigned int pi_flags(struct umm_mm *mm, uint64_t addr)
{
	return pinfo(mm, addr).flags;
}

/*
 * Four pages in swap, counted by the parent and two forks (limit 3) except
 * pages 0 and 1, which the second child read back in (count 2).  A third
 * fork copies pages 0 and 1 and meets page 2's full count: -ENOMEM, and
 * the counts of pages 0 and 1 are 2 again.
 */
static bool test_fork_full_count(void)
{
	struct umm_mm *c1, *c2, *c3 = NULL;
	struct umm_vmscan_stat v0;
	struct fix f;

	ASSERT_TRUE(count_fix_init(&f, 3));
	ASSERT_TRUE(map_pat(f.mm, BASE, 4, RW, PRIV, 1));
	ASSERT_OK(umm_madvise(f.mm, BASE, PG(4), UMM_MADV_PAGEOUT));
	ASSERT_EQ(mstat(f.mm).swap_ents, 4);
	v0 = vstat(f.u);

	ASSERT_OK(umm_mm_fork(f.mm, &c1));
	ASSERT_OK(umm_mm_fork(f.mm, &c2));
	ASSERT_TRUE(settled_valid(f.u));		/* every slot counts 3 */
	ASSERT_TRUE(check_pat(c2, BASE, 2, 1));	/* pages 0, 1: count 2 */
	ASSERT_EQ(mstat(c2).swap_ents, 2);
	ASSERT_TRUE(settled_valid(f.u));

	ASSERT_ERR(umm_mm_fork(f.mm, &c3), ENOMEM);
	ASSERT_TRUE(settled_valid(f.u));		/* the partial copy gave its counts back */
	ASSERT_EQ(mstat(f.mm).swap_ents, 4);
	ASSERT_EQ(vstat(f.u).swap_free, v0.swap_free);

	/* a fork of c2, whose pages 0 and 1 are present, still fits */
	ASSERT_ERR(umm_mm_fork(c2, &c3), ENOMEM);	/* pages 2, 3 are full */
	umm_mm_exit(c1);
	ASSERT_OK(umm_mm_fork(c2, &c3));
	ASSERT_TRUE(settled_valid(f.u));

	ASSERT_TRUE(check_pat(f.mm, BASE, 4, 1));
	ASSERT_TRUE(check_pat(c2, BASE, 4, 1));
	ASSERT_TRUE(check_pat(c3, BASE, 4, 1));
	umm_mm_exit(c2);
	umm_mm_exit(c3);
	return swap_fix_fini(&f);
}

/*
 * One page COW-shared by three mms, limit 2: reclaim gives two of them a
 * swap entry, cannot count the third, and leaves that mapping in place.
 * The page stays in the swap cache (its slot names it), so the two
 * swapped mms fault it back from there without reading swap.
 */
static bool test_reclaim_full_count(void)
{
	struct umm_mm *mms[3];
	unsigned int swapped = 0, present = 0;
	struct umm_vmscan_stat v0, v1;
	struct fix f;

	ASSERT_TRUE(count_fix_init(&f, 2));
	ASSERT_TRUE(map_pat(f.mm, BASE, 1, RW, PRIV, 7));
	mms[0] = f.mm;
	ASSERT_OK(umm_mm_fork(f.mm, &mms[1]));
	ASSERT_OK(umm_mm_fork(f.mm, &mms[2]));
	ASSERT_EQ(pinfo(f.mm, BASE).mapcount, 3);
	v0 = vstat(f.u);

	for (int round = 0; round < 32 && swapped < 2; round++) {
		unsigned long got;

		ASSERT_OK(umm_reclaim(f.u, 4096, &got));
		swapped = 0;
		for (int i = 0; i < 3; i++)
			swapped += !!(pi_flags(mms[i], BASE) & UMM_PI_SWAPPED);
	}
	/* more reclaim changes nothing: the slot stays full */
	for (int round = 0; round < 4; round++) {
		unsigned long got;

		ASSERT_OK(umm_reclaim(f.u, 4096, &got));
	}
	swapped = present = 0;
	for (int i = 0; i < 3; i++) {
		unsigned int fl = pi_flags(mms[i], BASE);

		swapped += !!(fl & UMM_PI_SWAPPED);
		present += !!(fl & UMM_PI_PRESENT);
	}
	TAP_DIAG("%u mms swapped, %u present", swapped, present);
	ASSERT_EQ(swapped, 2);
	ASSERT_EQ(present, 1);
	ASSERT_TRUE(settled_valid(f.u));
	v1 = vstat(f.u);
	ASSERT_EQ(v1.nr_swapcache, 1);

	for (int i = 0; i < 3; i++)
		ASSERT_TRUE(check_pat(mms[i], BASE, 1, 7));
	ASSERT_EQ(vstat(f.u).pswpin, v0.pswpin);	/* from the swap cache */
	for (int i = 0; i < 3; i++)
		ASSERT_TRUE(pi_flags(mms[i], BASE) & UMM_PI_PRESENT);
	ASSERT_TRUE(settled_valid(f.u));
	umm_mm_exit(mms[1]);
	umm_mm_exit(mms[2]);
	return swap_fix_fini(&f);
}

int main(void)
{
	if (!tmp_init("swap-count")) {
		printf("1..0 # SKIP cannot make a temporary directory\n");
		return 0;
	}
	RUN_TEST_CAPS(test_fork_full_count);
	RUN_TEST_CAPS(test_reclaim_full_count);
	tmp_cleanup();
	return tap_done();
}
