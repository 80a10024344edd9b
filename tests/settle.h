/* SPDX-License-Identifier: MIT */
/*
 * settle.h - wait for a machine's own threads to go idle, for the tests
 * and benchmarks of reclaim and swap (included by swap_fixture.h and
 * bench/bench_swap.c).
 *
 * umm_validate() wants a quiescent machine, and kswapd is part of the
 * machine: after the caller's threads stop, kswapd may still be bringing
 * free memory up to its high watermark.
 */
#ifndef UMM_TESTS_SETTLE_H
#define UMM_TESTS_SETTLE_H

#include <string.h>
#include <unistd.h>

#include <umm/umm.h>

/* Wait (at most 2 s) until nothing is isolated and neither kswapd's runs
 * nor pgsteal moved for 20 ms. */
static inline void machine_settle(struct umm *u)
{
	struct umm_vmscan_stat prev, vs;

	umm_get_vmscan_stat(u, &prev);
	for (int i = 0; i < 100; i++) {
		usleep(20 * 1000);
		umm_get_vmscan_stat(u, &vs);
		if (!vs.nr_isolated && vs.kswapd_runs == prev.kswapd_runs &&
		    vs.pgsteal == prev.pgsteal)
			return;
		prev = vs;
	}
}

#endif /* UMM_TESTS_SETTLE_H */
