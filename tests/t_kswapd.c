/* SPDX-License-Identifier: MIT */
/*
 * t_kswapd.c - who reclaims when memory runs low:
 *
 *  - kswapd: an allocation that leaves a node below its low watermark
 *    wakes it, and it alone (no allocation fails, so no direct reclaim)
 *    swaps pages out until the node is back at its high watermark - and
 *    stops there, rather than emptying memory;
 *  - direct reclaim: with kswapd stopped, a working set twice memory is
 *    written and read back whole, every frame coming from reclaim done by
 *    the allocating thread when it finds none free.
 *
 * The watermarks and a node's free count are the engine's internals
 * (src/internal.h, exported by the static library); the test reads them,
 * and stops kswapd, through it.  Waiting for kswapd is a wait for a state,
 * bounded only so that a kswapd that never gets there fails rather than
 * hangs.
 */
#include <stdatomic.h>

#include "tap.h"
#define FIX_VALIDATE	(UMM_VALIDATE_EXACT | UMM_VALIDATE_RMAP)
#include "swap_fixture.h"
#include "internal.h"

static uint64_t node_free_frames(struct umm *u)
{
	return atomic_load(&u->nodes[0].nr_free);
}

/*
 * Write pages of a region larger than memory one at a time until the node
 * falls below its low watermark (that allocation wakes kswapd), then stop:
 * kswapd must bring the node up to its high watermark by itself.
 */
static bool test_kswapd_watermarks(void)
{
	const uint64_t n = 2 * (64 << 20) / PS;
	struct umm_vmscan_stat v;
	uint64_t written = 0, low, high, free_now = 0;
	struct fix f;

	ASSERT_TRUE(swap_fix_init(&f, 64 << 20, 256 << 20));
	low = f.u->nodes[0].wmark_low;
	high = f.u->nodes[0].wmark_high;
	ASSERT_OK(map_at(f.mm, BASE, n, RW, PRIV));
	while (written < n && node_free_frames(f.u) >= low) {
		ASSERT_TRUE(write_pat(f.mm, AT(written), 1, 1));
		written++;
	}
	TAP_DIAG("below the low watermark after %" PRIu64 " pages; node free %" PRIu64
		 ", watermarks low %" PRIu64 " high %" PRIu64, written, node_free_frames(f.u),
		 low, high);
	ASSERT_TRUE(written < n);

	for (int ms = 0; ms < 60000; ms++) {
		free_now = node_free_frames(f.u);
		if (free_now >= high && vstat(f.u).kswapd_runs > 0)
			break;
		usleep(1000);
	}
	machine_settle(f.u);
	v = vstat(f.u);
	free_now = node_free_frames(f.u);
	TAP_DIAG("then node free %" PRIu64 "; kswapd runs %" PRIu64 ", pgsteal %" PRIu64
		 ", pswpout %" PRIu64 ", direct reclaims %" PRIu64, free_now, v.kswapd_runs,
		 v.pgsteal, v.pswpout, v.direct_reclaims);
	ASSERT_GE(free_now, high);
	ASSERT_TRUE(v.kswapd_runs > 0);
	ASSERT_TRUE(v.pswpout > 0);
	ASSERT_EQ(v.direct_reclaims, 0);
	/* it stopped near the high watermark: most of what was written is still in memory */
	ASSERT_TRUE(v.pgsteal < written / 4);
	ASSERT_TRUE(mstat(f.mm).rss_anon > written / 2);

	ASSERT_TRUE(check_pat(f.mm, BASE, written, 1));
	return swap_fix_fini(&f);
}

/* kswapd stopped: the allocating thread reclaims for itself. */
static bool test_direct_reclaim_alone(void)
{
	const uint64_t n = 2 * (4 << 20) / PS;
	struct umm_vmscan_stat v;
	struct fix f;

	ASSERT_TRUE(swap_fix_init(&f, 4 << 20, 16 << 20));
	kswapd_stop(f.u);
	ASSERT_TRUE(map_pat(f.mm, BASE, n, RW, PRIV, 3));
	ASSERT_TRUE(check_pat(f.mm, BASE, n, 3));
	v = vstat(f.u);
	TAP_DIAG("direct reclaims %" PRIu64 ", pgsteal %" PRIu64 ", pswpout %" PRIu64
		 ", pswpin %" PRIu64, v.direct_reclaims, v.pgsteal, v.pswpout, v.pswpin);
	ASSERT_EQ(v.kswapd_runs, 0);
	ASSERT_TRUE(v.direct_reclaims > 0);
	ASSERT_TRUE(v.pswpout >= n / 2);
	ASSERT_TRUE(v.pswpin > 0);
	return swap_fix_fini(&f);
}

int main(void)
{
	if (!tmp_init("kswapd")) {
		printf("1..0 # SKIP cannot make a temporary directory\n");
		return 0;
	}
	RUN_TEST_CAPS(test_kswapd_watermarks);
	RUN_TEST_CAPS(test_direct_reclaim_alone);
	tmp_cleanup();
	return tap_done();
}
