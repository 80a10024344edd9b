/* SPDX-License-Identifier: MIT */
/*
 * umm/vmscan.h - reclaim, swap and migration.  Included by <umm/umm.h>.
 */
#ifndef UMM_VMSCAN_H
#define UMM_VMSCAN_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct umm;
struct umm_mm;

int umm_reclaim(struct umm *u, unsigned long nr_pages, unsigned long *nr_reclaimed);
int umm_move_pages(struct umm_mm *mm, unsigned long count, const uint64_t *addrs,
		   const int *nodes, int *status);       /* move_pages(2) semantics */

#ifdef __cplusplus
}
#endif
#endif /* UMM_VMSCAN_H */
