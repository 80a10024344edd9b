/* SPDX-License-Identifier: MIT */
/*
 * t_regress_validate_kswapd.c - umm_validate() reports kswapd's own
 * invalidation as one that "never ended".
 *
 * umm_validate() waits for kswapd by taking reclaim_lock for write, but
 * runs the notifier checker's census (mn_check_validate) after dropping
 * it: kswapd, still below its high watermark, takes the lock back, starts
 * an invalidation in try_to_unmap_one, and the census reports
 * "invalidation [...) started by try_to_unmap_one never ended" (and the
 * checker logs an error), on a machine whose user is quiet.  Found by
 * t_soak (one of ~1200 meeting points in 300 s).
 *
 * Here: a machine with the checker on and a little memory, a subscriber
 * whose blockable start takes a while (so kswapd's invalidations stay
 * open), and a loop that makes memory pressure, then validates.  Every
 * validation must pass; today some fail within a few seconds.
 */
#include <pthread.h>
#include <stdatomic.h>

#include "tap.h"
#include "fixture.h"

static int slow_start(struct umm_mmu_notifier *sub, const struct umm_mmu_notifier_range *r)
{
	if (r->flags & UMM_MMU_NOTIFIER_RANGE_BLOCKABLE)
		usleep(300);
	return 0;
}

static void nop_end(struct umm_mmu_notifier *sub, const struct umm_mmu_notifier_range *r)
{
}

static const struct umm_mmu_notifier_ops slow_ops = {
	.invalidate_range_start = slow_start,
	.invalidate_range_end = nop_end,
};

static atomic_int checker_errors;

static void log_hook(void *ctx, int level, const char *msg)
{
	if (level <= UMM_LOG_ERR && atomic_fetch_add(&checker_errors, 1) < 3)
		TAP_DIAG("engine error: %s", msg);
}

static bool test_validate_while_kswapd_works(void)
{
	struct umm_config cfg;
	struct umm_mmu_notifier sub = { .ops = &slow_ops };
	struct umm *u;
	struct umm_mm *mm;
	unsigned int pages = 1024, bad = 0, rounds = tap_short() ? 300 : 400;
	char msg[256];
	uint64_t seed = tap_seed(), rnd = seed;

	umm_config_init(&cfg);
	cfg.phys_bytes = 2 << 20;		/* 512 frames for 1024 pages */
	cfg.swap_path = tmp_path("swap");
	cfg.swap_bytes = 8 << 20;
	cfg.flags = UMM_CONFIG_NOTIFIER_CHECKER;
	ASSERT_OK(umm_create(&cfg, &u));
	umm_set_log(u, log_hook, NULL);
	ASSERT_OK(umm_mm_create(u, &mm));
	ASSERT_OK(umm_mmu_notifier_register(&sub, mm));
	ASSERT_OK(map_at(mm, AT(0), pages, RW, PRIV));
	for (unsigned int i = 0; i < rounds; i++) {
		/* touch a stretch: allocations below the watermark wake kswapd */
		for (unsigned int k = 0; k < 48; k++)
			ASSERT_TRUE(put_byte(mm, AT(tap_rand(&rnd) % pages), (uint8_t)i));
		if (umm_validate(u, UMM_VALIDATE_RMAP, msg, sizeof(msg))) {
			if (bad++ < 3)
				TAP_DIAG("round %u: umm_validate: %s", i, msg);
		}
	}
	TAP_DIAG("%u of %u validations failed; %d engine errors logged", bad, rounds,
		 atomic_load(&checker_errors));
	umm_mmu_notifier_unregister(&sub, mm);
	umm_mm_exit(mm);
	umm_destroy(u);
	ASSERT_EQ(bad, 0);
	ASSERT_EQ(atomic_load(&checker_errors), 0);
	return true;
}

int main(void)
{
	if (!tmp_init("regress-validate"))
		return 1;
	RUN_TEST(test_validate_while_kswapd_works);
	tmp_cleanup();
	return tap_done();
}
