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

/*
 * Reclaim up to @nr_pages frames now, on the calling thread, from every
 * node: clean file pages are dropped, dirty ones written back first,
 * anonymous pages go to swap (when the machine has swap), mlocked pages
 * stay.  Return: 0 and *@nr_reclaimed (may be fewer than asked), or
 * -EINVAL.
 */
int umm_reclaim(struct umm *u, unsigned long nr_pages, unsigned long *nr_reclaimed);

/*
 * move_pages(2): move the pages at @addrs to @nodes, or with @nodes NULL
 * report where they are.  @status[i] gets the node, or -ENOENT (nothing
 * mapped there or the zero page), -EFAULT (no VMA), -EBUSY (the page is
 * pinned or in use and could not move), -ENOMEM (no frame on the target
 * node).  Return: 0, -EINVAL (bad arguments), -ENODEV (a node that does
 * not exist, negative included).  Faulting accesses wait while their page moves; secondary
 * MMUs see UMM_MMU_NOTIFY_MIGRATE invalidations.
 */
int umm_move_pages(struct umm_mm *mm, unsigned long count, const uint64_t *addrs,
		   const int *nodes, int *status);

/*
 * Compaction: migrate the movable frames out of a run of @nr_frames
 * contiguous frames of node @nid so the whole run is free.  The run with
 * the fewest frames to move is chosen.  Return: 0 and *@start_pfn, -EINVAL,
 * -EBUSY (every candidate run holds an unmovable frame), -ENOMEM.
 */
int umm_compact(struct umm *u, int nid, uint64_t nr_frames, uint64_t *start_pfn);

/* What reclaim, swap and migration have done, as /proc/vmstat names it. */
struct umm_vmscan_stat {
	uint64_t nr_active_anon, nr_inactive_anon, nr_active_file, nr_inactive_file;
	uint64_t nr_unevictable, nr_isolated;
	uint64_t swap_slots, swap_free;		/* pages of swap, and free */
	uint64_t nr_swapcache;
	uint64_t pgscan, pgsteal;		/* pages scanned / reclaimed */
	uint64_t pgactivate, pgdeactivate;
	uint64_t pswpin, pswpout;		/* pages read from / written to swap */
	uint64_t pgwriteback;			/* file pages written back by reclaim */
	uint64_t kswapd_runs, direct_reclaims;
	uint64_t pgmigrate_success, pgmigrate_fail;
	uint64_t compact_migrated;
	uint64_t swap_read_errors, swap_write_errors;
};
void umm_get_vmscan_stat(struct umm *u, struct umm_vmscan_stat *st);

/*
 * Fault injection, switchable at run time (all off by default): each
 * operation of @kind fails with probability @probability_ppm parts per
 * million, at most @times more times (-1: no limit).  (0, 0) switches it
 * off.  Return: 0 or -EINVAL.
 */
enum umm_fault_kind {
	UMM_FAULT_FRAME_ALLOC,		/* a frame allocation finds nothing */
	UMM_FAULT_SWAP_READ,		/* swap-in I/O error: the access gets -EIO */
	UMM_FAULT_SWAP_WRITE,		/* swap-out I/O error: the page stays */
	UMM_FAULT_VMA_ALLOC,		/* a VMA descriptor cannot be allocated */
	UMM_FAULT_PGTABLE_ALLOC,	/* a page-table page cannot be allocated */
	UMM_FAULT_ANON_VMA_ALLOC,	/* an anon_vma or anon_vma_chain cannot be allocated */
	UMM_FAULT_RMAP_ITEM_ALLOC,	/* KSM cannot allocate an rmap_item */
	UMM_FAULT_NOTIFIER_EAGAIN,	/* a non-blockable invalidation is refused (-EAGAIN) */
	UMM_FAULT_NOTIFIER_DELAY,	/* an invalidation's callbacks are slow (1 ms) */
	UMM_FAULT_NR
};
int umm_fault_inject(struct umm *u, int kind, unsigned int probability_ppm, long times);
/* How many faults of @kind were injected so far. */
uint64_t umm_fault_injected(struct umm *u, int kind);

#ifdef __cplusplus
}
#endif
#endif /* UMM_VMSCAN_H */
