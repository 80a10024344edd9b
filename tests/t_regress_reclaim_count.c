/* SPDX-License-Identifier: MIT */
/*
 * t_regress_reclaim_count.c - umm_reclaim() asked for N pages reports
 * more than N reclaimed.
 *
 * vmscan.h promises "reclaim up to @nr_pages frames ... *@nr_reclaimed (may
 * be fewer than asked)"; found by fuzz/fuzz_api.c (umm_reclaim(1) returned
 * 6 reclaimed).  Linux's try_to_free_pages() may overshoot its target by a
 * batch, so either the engine stops at @nr_pages or the header says it may
 * reclaim up to a batch (SWAP_CLUSTER_MAX) more; this test holds the header
 * to its word until one of the two changes.
 */
#include "tap.h"
#include "fixture.h"

static bool reclaim_at_most(unsigned int nodes, unsigned long ask)
{
	struct umm_config cfg;
	struct umm *u;
	struct umm_mm *mm;
	unsigned long got = 0;

	umm_config_init(&cfg);
	cfg.phys_bytes = 4 << 20;
	cfg.nr_nodes = nodes;
	cfg.swap_path = tmp_path("swap");
	cfg.swap_bytes = 1 << 20;
	ASSERT_OK(umm_create(&cfg, &u));
	ASSERT_OK(umm_mm_create(u, &mm));
	ASSERT_TRUE(map_pat(mm, AT(0), 64, RW, PRIV, 1));
	ASSERT_OK(umm_reclaim(u, ask, &got));
	TAP_DIAG("%u node(s): asked for %lu, %lu reclaimed", nodes, ask, got);
	ASSERT_TRUE(got <= ask);
	ASSERT_TRUE(check_pat(mm, AT(0), 64, 1));
	umm_mm_exit(mm);
	ASSERT_TRUE(machine_done(u));
	return true;
}

static bool test_one_node_one_page(void) { return reclaim_at_most(1, 1); }
static bool test_two_nodes_one_page(void) { return reclaim_at_most(2, 1); }
static bool test_two_nodes_five_pages(void) { return reclaim_at_most(2, 5); }

int main(void)
{
	if (!tmp_init("regress-reclaim"))
		return 1;
	RUN_TEST(test_one_node_one_page);
	RUN_TEST(test_two_nodes_one_page);
	RUN_TEST(test_two_nodes_five_pages);
	tmp_cleanup();
	return tap_done();
}
