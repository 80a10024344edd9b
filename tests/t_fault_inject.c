// SPDX-License-Identifier: MIT
/*
 * t_fault_inject.c - every kind of injected fault surfaces as an errno to
 * the call that met it, changes nothing it should not, and leaves the
 * machine valid and usable.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tap.h"
#define FIX_VALIDATE	VALIDATE_ALL
#include "fixture.h"

/* Fail the next @kind once. */
static bool inject_once(struct umm *u, int kind)
{
	ASSERT_OK(umm_fault_inject(u, kind, 1000000, 1));
	return true;
}

static bool test_args(void)
{
	struct fix f;

	ASSERT_TRUE(fix_init(&f));
	ASSERT_ERR(umm_fault_inject(NULL, UMM_FAULT_FRAME_ALLOC, 1, 1), EINVAL);
	ASSERT_ERR(umm_fault_inject(f.u, -1, 1, 1), EINVAL);
	ASSERT_ERR(umm_fault_inject(f.u, UMM_FAULT_NR, 1, 1), EINVAL);
	ASSERT_ERR(umm_fault_inject(f.u, UMM_FAULT_FRAME_ALLOC, 1000001, 1), EINVAL);
	ASSERT_ERR(umm_fault_inject(f.u, UMM_FAULT_FRAME_ALLOC, 1, -2), EINVAL);
	ASSERT_OK(umm_fault_inject(f.u, UMM_FAULT_FRAME_ALLOC, 0, 0));
	ASSERT_EQ(umm_fault_injected(f.u, UMM_FAULT_NR), 0);
	ASSERT_EQ(umm_fault_injected(NULL, 0), 0);
	return fix_fini(&f);
}

static bool test_frame_alloc(void)
{
	struct fix f;

	ASSERT_TRUE(fix_init(&f));
	ASSERT_OK(map_at(f.mm, AT(0), 4, RW, PRIV));
	ASSERT_TRUE(put_byte(f.mm, AT(0), 1));		/* tables and anon_vma exist */
	/* one failure is retried after reclaim: the caller never sees it */
	ASSERT_TRUE(inject_once(f.u, UMM_FAULT_FRAME_ALLOC));
	ASSERT_TRUE(put_byte(f.mm, AT(2), 3));
	ASSERT_EQ(umm_fault_injected(f.u, UMM_FAULT_FRAME_ALLOC), 1);
	/* every allocation failing is memory exhausted: -ENOMEM */
	ASSERT_OK(umm_fault_inject(f.u, UMM_FAULT_FRAME_ALLOC, 1000000, -1));
	ASSERT_ERR(write_byte(f.mm, AT(1), 2), ENOMEM);
	ASSERT_TRUE(umm_fault_injected(f.u, UMM_FAULT_FRAME_ALLOC) > 2);
	ASSERT_EQ(pinfo(f.mm, AT(1)).flags, 0);		/* nothing half-mapped */
	ASSERT_OK(umm_fault_inject(f.u, UMM_FAULT_FRAME_ALLOC, 0, 0));
	ASSERT_TRUE(put_byte(f.mm, AT(1), 2));
	ASSERT_EQ(byte_at(f.mm, AT(0)), 1);
	ASSERT_EQ(byte_at(f.mm, AT(1)), 2);

	/* a COW copy that cannot get its frame leaves both sides as they were */
	{
		struct umm_mm *child;

		ASSERT_OK(umm_mm_fork(f.mm, &child));
		ASSERT_OK(umm_fault_inject(f.u, UMM_FAULT_FRAME_ALLOC, 1000000, -1));
		ASSERT_ERR(write_byte(child, AT(0), 9), ENOMEM);
		ASSERT_OK(umm_fault_inject(f.u, UMM_FAULT_FRAME_ALLOC, 0, 0));
		ASSERT_EQ(byte_at(child, AT(0)), 1);
		ASSERT_EQ(byte_at(f.mm, AT(0)), 1);
		ASSERT_TRUE(machine_valid(f.u));
		umm_mm_exit(child);
	}
	return fix_fini(&f);
}

/*
 *   0   4   8
 *   AAAAAAAA       one VMA; munmap of [2, 4) must split it
 */
static bool test_vma_alloc(void)
{
	struct fix f;
	uint64_t got;

	ASSERT_TRUE(fix_init(&f));
	ASSERT_TRUE(map_pat(f.mm, AT(0), 8, RW, PRIV, 1));
	ASSERT_TRUE(inject_once(f.u, UMM_FAULT_VMA_ALLOC));
	ASSERT_ERR(umm_munmap(f.mm, AT(2), PG(2)), ENOMEM);
	ASSERT_TRUE(layout_is(f.mm, BASE, "AAAAAAAA"));
	ASSERT_TRUE(check_pat(f.mm, AT(0), 8, 1));
	ASSERT_TRUE(inject_once(f.u, UMM_FAULT_VMA_ALLOC));
	ASSERT_ERR(umm_mmap(f.mm, AT(20), PS, RW, PRIV | UMM_MAP_FIXED, NULL, 0, &got), ENOMEM);
	ASSERT_ERR(umm_pagemap(f.mm, AT(20), &(struct umm_pageinfo){ 0 }), EFAULT);
	ASSERT_TRUE(inject_once(f.u, UMM_FAULT_VMA_ALLOC));
	ASSERT_ERR(umm_mprotect(f.mm, AT(3), PS, RO), ENOMEM);
	ASSERT_EQ(prot_at(f.mm, AT(3)), RW);
	ASSERT_OK(umm_munmap(f.mm, AT(2), PG(2)));
	ASSERT_TRUE(layout_is(f.mm, BASE, "AA  AAAA"));
	return fix_fini(&f);
}

static bool test_pgtable_alloc(void)
{
	struct fix f;

	ASSERT_TRUE(fix_init(&f));
	ASSERT_OK(map_at(f.mm, AT(0), 4, RW, PRIV));
	ASSERT_TRUE(inject_once(f.u, UMM_FAULT_PGTABLE_ALLOC));
	ASSERT_ERR(write_byte(f.mm, AT(0), 5), ENOMEM);
	ASSERT_TRUE(put_byte(f.mm, AT(0), 5));
	ASSERT_EQ(byte_at(f.mm, AT(0)), 5);
	return fix_fini(&f);
}

static bool test_anon_vma_alloc(void)
{
	struct fix f;
	struct umm_mm *child = NULL;
	struct umm_mm_stat before;

	ASSERT_TRUE(fix_init(&f));
	ASSERT_OK(map_at(f.mm, AT(0), 4, RW, PRIV));
	ASSERT_TRUE(put_byte(f.mm, AT(3), 1));		/* tables exist; anon_vma too */
	ASSERT_OK(map_at(f.mm, AT(10), 4, RW, PRIV));
	ASSERT_TRUE(byte_at(f.mm, AT(10)) == 0);	/* zero page: no anon_vma yet */
	ASSERT_TRUE(inject_once(f.u, UMM_FAULT_ANON_VMA_ALLOC));
	ASSERT_ERR(write_byte(f.mm, AT(10), 7), ENOMEM);
	ASSERT_TRUE(put_byte(f.mm, AT(10), 7));

	/* fork cannot chain the child to the parent's anon_vmas: no child */
	before = mstat(f.mm);
	ASSERT_TRUE(inject_once(f.u, UMM_FAULT_ANON_VMA_ALLOC));
	ASSERT_ERR(umm_mm_fork(f.mm, &child), ENOMEM);
	ASSERT_TRUE(child == NULL);
	ASSERT_EQ(mstat(f.mm).rss_anon, before.rss_anon);
	ASSERT_EQ(ustat(f.u).nr_mms, 1);
	ASSERT_EQ(byte_at(f.mm, AT(3)), 1);
	ASSERT_TRUE(put_byte(f.mm, AT(3), 2));		/* still writable in place */
	ASSERT_OK(umm_mm_fork(f.mm, &child));
	umm_mm_exit(child);
	return fix_fini(&f);
}

/*
 * KSM cannot allocate an rmap_item: the scan leaves that page for a later
 * pass (as ksmd does on -ENOMEM) and reports no error; nothing merges
 * while the failures last, everything merges once they stop, and no byte
 * changes on the way.
 */
static bool test_rmap_item_alloc(void)
{
	struct fix f;
	struct umm_mm *other;
	struct umm_ksm_stats ks;

	ASSERT_TRUE(fix_init(&f));
	ASSERT_OK(umm_mm_create(f.u, &other));
	/* the pattern depends on the address: page i of one mm equals page i of the other */
	ASSERT_TRUE(map_pat(f.mm, AT(0), 4, RW, PRIV, 7));
	ASSERT_TRUE(map_pat(other, AT(0), 4, RW, PRIV, 7));
	ASSERT_OK(umm_madvise(f.mm, AT(0), PG(4), UMM_MADV_MERGEABLE));
	ASSERT_OK(umm_madvise(other, AT(0), PG(4), UMM_MADV_MERGEABLE));

	ASSERT_OK(umm_fault_inject(f.u, UMM_FAULT_RMAP_ITEM_ALLOC, 1000000, -1));
	for (int i = 0; i < 8; i++)
		ASSERT_OK(umm_ksm_scan(f.u, 64));
	ASSERT_TRUE(umm_fault_injected(f.u, UMM_FAULT_RMAP_ITEM_ALLOC) >= 8);
	/* a full scan that can never finish says so */
	ASSERT_ERR(umm_ksm_full_scans(f.u, 1), ENOMEM);
	umm_ksm_get_stats(f.u, &ks);
	ASSERT_EQ(ks.pages_shared, 0);
	ASSERT_EQ(ks.pages_sharing, 0);
	ASSERT_TRUE(check_pat(f.mm, AT(0), 4, 7));
	ASSERT_TRUE(machine_valid(f.u));

	/* one failure in the middle of a pass: that page waits, the others go on */
	ASSERT_OK(umm_fault_inject(f.u, UMM_FAULT_RMAP_ITEM_ALLOC, 1000000, 1));
	ASSERT_OK(umm_ksm_full_scans(f.u, 3));
	umm_ksm_get_stats(f.u, &ks);
	ASSERT_EQ(ks.pages_shared, 4);
	ASSERT_EQ(ks.pages_sharing, 4);
	ASSERT_TRUE(check_pat(f.mm, AT(0), 4, 7));
	ASSERT_TRUE(check_pat(other, AT(0), 4, 7));

	/* a write breaks the merge for its writer only */
	ASSERT_TRUE(put_byte(other, AT(2), 0x5a));
	ASSERT_EQ(byte_at(other, AT(2)), 0x5a);
	ASSERT_TRUE(check_pat(f.mm, AT(0), 4, 7));
	ASSERT_TRUE(machine_valid(f.u));
	umm_mm_exit(other);
	ASSERT_OK(umm_ksm_set_run(f.u, 2));
	return fix_fini(&f);
}

static bool swap_machine(struct fix *f, const char *name)
{
	struct umm_config cfg;

	umm_config_init(&cfg);
	cfg.phys_bytes = 8 << 20;
	cfg.swap_path = tmp_path(name);
	cfg.swap_bytes = 4 << 20;
	ASSERT_OK(umm_create(&cfg, &f->u));
	ASSERT_OK(umm_mm_create(f->u, &f->mm));
	return true;
}

static bool test_swap_io(void)
{
	struct fix f;
	struct umm_pageinfo pi;
	char buf[PS];

	ASSERT_TRUE(swap_machine(&f, "swap-io"));
	ASSERT_TRUE(map_pat(f.mm, AT(0), 4, RW, PRIV, 3));

	/* the write fails: the page stays in memory with its data */
	ASSERT_TRUE(inject_once(f.u, UMM_FAULT_SWAP_WRITE));
	ASSERT_OK(umm_madvise(f.mm, AT(0), PS, UMM_MADV_PAGEOUT));
	ASSERT_EQ(umm_fault_injected(f.u, UMM_FAULT_SWAP_WRITE), 1);
	ASSERT_TRUE(check_pat(f.mm, AT(0), 1, 3));

	/* out for real; the read fails: -EIO, never zeros, and the data stays in swap */
	ASSERT_OK(umm_madvise(f.mm, AT(1), PS, UMM_MADV_PAGEOUT));
	ASSERT_OK(umm_pagemap(f.mm, AT(1), &pi));
	ASSERT_EQ(pi.flags, UMM_PI_SWAPPED);
	ASSERT_TRUE(inject_once(f.u, UMM_FAULT_SWAP_READ));
	ASSERT_ERR(umm_read(f.mm, AT(1), buf, PS), EIO);
	ASSERT_OK(umm_pagemap(f.mm, AT(1), &pi));
	ASSERT_EQ(pi.flags, UMM_PI_SWAPPED);
	ASSERT_TRUE(check_pat(f.mm, AT(1), 1, 3));
	ASSERT_TRUE(check_pat(f.mm, AT(0), 4, 3));
	return fix_fini(&f);
}

struct sub {
	struct umm_mmu_notifier mn;
	int starts, ends;
};

static int sub_start(struct umm_mmu_notifier *mn, const struct umm_mmu_notifier_range *r)
{
	((struct sub *)mn)->starts++;
	return 0;
}

static void sub_end(struct umm_mmu_notifier *mn, const struct umm_mmu_notifier_range *r)
{
	((struct sub *)mn)->ends++;
}

static const struct umm_mmu_notifier_ops sub_ops = {
	.invalidate_range_start = sub_start, .invalidate_range_end = sub_end,
};

static bool test_notifier(void)
{
	struct fix f;
	struct sub s = { .mn.ops = &sub_ops };

	ASSERT_TRUE(fix_init(&f));
	ASSERT_TRUE(map_pat(f.mm, AT(0), 4, RW, PRIV, 1));
	ASSERT_OK(umm_mmu_notifier_register(&s.mn, f.mm));

	/* a slow subscriber: slower, not different */
	ASSERT_OK(umm_fault_inject(f.u, UMM_FAULT_NOTIFIER_DELAY, 1000000, 3));
	ASSERT_OK(umm_munmap(f.mm, AT(3), PS));
	ASSERT_OK(umm_madvise(f.mm, AT(2), PS, UMM_MADV_DONTNEED));
	ASSERT_EQ(umm_fault_injected(f.u, UMM_FAULT_NOTIFIER_DELAY), 2);
	ASSERT_EQ(s.starts, 2);
	ASSERT_EQ(s.ends, 2);

	/* a refused non-blockable start: the reaper leaves the range and says so */
	ASSERT_TRUE(inject_once(f.u, UMM_FAULT_NOTIFIER_EAGAIN));
	ASSERT_ERR(umm_mm_oom_reap(f.mm), EAGAIN);
	ASSERT_EQ(s.starts, 2);
	ASSERT_TRUE(check_pat(f.mm, AT(0), 2, 1));
	ASSERT_OK(umm_mm_oom_reap(f.mm));
	ASSERT_EQ(s.starts, s.ends);
	umm_mmu_notifier_unregister(&s.mn, f.mm);
	return fix_fini(&f);
}

/* Random failures of every kind under a mixed workload: errors, never damage. */
static bool test_random_mix(void)
{
	struct fix f;
	uint64_t seed = tap_seed(), rnd = seed;
	uint8_t model[64];
	int rounds = tap_short() ? 300 : 3000;
	struct umm_mm *child = NULL;

	ASSERT_TRUE(swap_machine(&f, "swap-mix"));
	memset(model, 0, sizeof(model));
	ASSERT_OK(map_at(f.mm, AT(0), 64, RW, PRIV));
	for (int k = 0; k < UMM_FAULT_NR; k++)
		if (k != UMM_FAULT_NOTIFIER_DELAY)
			ASSERT_OK(umm_fault_inject(f.u, k, 50000, -1));
	for (int i = 0; i < rounds; i++) {
		unsigned int p = tap_rand(&rnd) % 64;
		uint8_t b = (uint8_t)tap_rand(&rnd);
		int r;

		switch (tap_rand(&rnd) % 5) {
		case 0: case 1:
			r = (int)write_byte(f.mm, AT(p), b);
			if (r == 1)
				model[p] = b;
			else if (r != -ENOMEM && r != -EIO)
				ASSERT_EQ(r, 1);
			break;
		case 2:
			r = byte_at(f.mm, AT(p));
			if (r >= 0)
				ASSERT_EQ(r, model[p]);
			else if (r != -ENOMEM && r != -EIO)
				ASSERT_EQ(r, model[p]);
			break;
		case 3:
			umm_madvise(f.mm, AT(p), PS, UMM_MADV_PAGEOUT);
			break;
		case 4:
			if (child) {
				umm_mm_exit(child);
				child = NULL;
			} else {
				r = umm_mm_fork(f.mm, &child);
				if (r && r != -ENOMEM)
					ASSERT_OK(r);
			}
			break;
		}
	}
	for (int k = 0; k < UMM_FAULT_NR; k++) {
		if (umm_fault_injected(f.u, k))
			TAP_DIAG("kind %d: %" PRIu64 " injected", k, umm_fault_injected(f.u, k));
		ASSERT_OK(umm_fault_inject(f.u, k, 0, 0));
	}
	for (int p = 0; p < 64; p++)
		ASSERT_EQ(byte_at(f.mm, AT(p)), model[p]);
	if (child)
		umm_mm_exit(child);
	return fix_fini(&f);
}

int main(void)
{
	if (!tmp_init("fault-inject")) {
		printf("1..0 # SKIP mkdtemp: %s\n", strerror(errno));
		return 0;
	}
	RUN_TEST(test_args);
	RUN_TEST(test_frame_alloc);
	RUN_TEST(test_vma_alloc);
	RUN_TEST(test_pgtable_alloc);
	RUN_TEST(test_anon_vma_alloc);
	RUN_TEST(test_rmap_item_alloc);
	RUN_TEST(test_swap_io);
	RUN_TEST(test_notifier);
	RUN_TEST(test_random_mix);
	tmp_cleanup();
	return tap_done();
}
