/* SPDX-License-Identifier: MIT */
/*
 * umm/ksm.h - same-page merging: knobs and figures named as in
 * /sys/kernel/mm/ksm and /proc/PID/ksm_stat.  Included by <umm/umm.h>.
 */
#ifndef UMM_KSM_H
#define UMM_KSM_H

#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

struct umm;
struct umm_mm;

struct umm_ksm_params {
	unsigned long pages_to_scan; unsigned int sleep_millisecs;
	unsigned int max_page_sharing; bool merge_across_nodes; bool use_zero_pages;
	bool smart_scan; unsigned int stable_node_chains_prune_millisecs;
	unsigned int nr_threads;            /* umm: scanner threads (1 = like ksmd) */
};
int  umm_ksm_get_params(struct umm *u, struct umm_ksm_params *p);
int  umm_ksm_set_params(struct umm *u, const struct umm_ksm_params *p);
int  umm_ksm_set_run(struct umm *u, int run);            /* 0 stop, 1 run, 2 unmerge all */
int  umm_ksm_scan(struct umm *u, unsigned long nr_pages); /* scan steps on the calling thread */
struct umm_ksm_stats {
	unsigned long pages_shared, pages_sharing, pages_unshared, pages_volatile,
		      pages_scanned, pages_skipped, full_scans, stable_node_chains,
		      stable_node_dups, ksm_zero_pages;
	long general_profit;
};
void umm_ksm_get_stats(struct umm *u, struct umm_ksm_stats *s);
int  umm_mm_set_merge_any(struct umm_mm *mm, bool on);    /* prctl(PR_SET_MEMORY_MERGE) */
struct umm_mm_ksm_stat {
	unsigned long ksm_rmap_items, ksm_zero_pages, ksm_merging_pages;
	long ksm_process_profit; bool ksm_merge_any, ksm_mergeable;
};
void umm_mm_get_ksm_stat(struct umm_mm *mm, struct umm_mm_ksm_stat *st);

#ifdef __cplusplus
}
#endif
#endif /* UMM_KSM_H */
