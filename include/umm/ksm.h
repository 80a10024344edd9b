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

/*
 * Knobs, as /sys/kernel/mm/ksm/.  Defaults (Linux's): pages_to_scan 100,
 * sleep_millisecs 20, max_page_sharing 256, merge_across_nodes true,
 * use_zero_pages false, smart_scan true, stable_node_chains_prune_millisecs
 * 2000, nr_threads 1, advisor_mode 0 (none), advisor_target_scan_time 200,
 * advisor_min_cpu 15, advisor_max_cpu 70, advisor_min_pages_to_scan 500,
 * advisor_max_pages_to_scan 30000.
 */
struct umm_ksm_params {
	unsigned long pages_to_scan; unsigned int sleep_millisecs;
	unsigned int max_page_sharing; bool merge_across_nodes; bool use_zero_pages;
	bool smart_scan; unsigned int stable_node_chains_prune_millisecs;
	unsigned int nr_threads;            /* umm: scanner threads (1 = like ksmd) */
	/* the scan-time advisor (Linux 6.9): it sets pages_to_scan itself */
	unsigned int advisor_mode;          /* UMM_KSM_ADVISOR_NONE or _SCAN_TIME */
	unsigned long advisor_target_scan_time;	/* seconds per full scan, >= 1 */
	unsigned int advisor_min_cpu, advisor_max_cpu;	/* percent of one CPU */
	unsigned long advisor_min_pages_to_scan, advisor_max_pages_to_scan;
};
#define UMM_KSM_ADVISOR_NONE		0
#define UMM_KSM_ADVISOR_SCAN_TIME	1
#define UMM_KSM_MAX_THREADS		64

int  umm_ksm_get_params(struct umm *u, struct umm_ksm_params *p);
/*
 * Apply every field at once (all checked first; nothing changes on error).
 * A field equal to its current value is never refused.  -EINVAL:
 * max_page_sharing < 2, nr_threads 0 or > UMM_KSM_MAX_THREADS, an unknown
 * advisor_mode, advisor_target_scan_time 0, a changed pages_to_scan while
 * the advisor is (or is being turned) on.  -EBUSY: max_page_sharing or
 * merge_across_nodes changed while KSM pages are shared (or stable nodes
 * that cannot be removed exist).  Turning the advisor on sets pages_to_scan
 * to advisor_min_pages_to_scan, turning it off to 100, as Linux does.
 */
int  umm_ksm_set_params(struct umm *u, const struct umm_ksm_params *p);
/* 0 stop, 1 run (ksmd thread), 2 unmerge everything, then stop; -EINVAL else. */
int  umm_ksm_set_run(struct umm *u, int run);
/*
 * umm_ksm_scan - step the scanner on the calling thread (with nr_threads - 1
 * helpers), whether or not ksmd runs: Linux's ksm_do_scan(nr_pages).  It
 * scans up to @nr_pages pages and returns early when it completes a full
 * scan (full_scans advances; the next call starts the next scan), so a
 * call with a large @nr_pages does at most one full scan.  As on Linux, a
 * page enters the unstable tree on the second scan that finds it unchanged
 * and two identical pages merge there: two full scans.  Return: 0, -EINVAL.
 */
int  umm_ksm_scan(struct umm *u, unsigned long nr_pages);
/*
 * Scan on the calling thread until full_scans has advanced by @nr (what
 * Linux's selftests wait for).  Returns at once when no address space is
 * registered (no scan could ever complete).  A page whose rmap_item cannot
 * be allocated is scanned again, as ksmd would; -ENOMEM only when that
 * keeps failing.  Return: 0, -EINVAL, -ENOMEM.
 */
int  umm_ksm_full_scans(struct umm *u, unsigned long nr);
/*
 * Merge domains (umm): pages merge only with pages of address spaces in the
 * same domain.  Domain 0 is the default (Linux's behaviour); a child
 * inherits its parent's.  Changing an mm's domain first unmerges its KSM
 * pages (as MADV_UNMERGEABLE would), so no frame is shared across domains.
 * Return: 0, -EINVAL, -ENOMEM.
 */
int  umm_mm_set_ksm_domain(struct umm_mm *mm, unsigned int id);
/* Figures of /sys/kernel/mm/ksm; general_profit counts ksm_zero_pages as Linux 6.10. */
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
