// SPDX-License-Identifier: MIT
/*
 * notyet.c - entry points of the API contract whose subsystems are not
 * built yet (MMU notifiers, reclaim/swap/migration, file mappings).
 * They exist so that programs written against the whole contract link;
 * each returns -ENOSYS (or does nothing, for void functions) until its
 * subsystem lands and replaces it here.
 */
#include "internal.h"

int umm_mmu_interval_notifier_insert(struct umm_mmu_interval_notifier *sub, struct umm_mm *mm,
				     uint64_t start, uint64_t length,
				     const struct umm_mmu_interval_notifier_ops *ops)
{
	return -ENOSYS;
}
void umm_mmu_interval_notifier_remove(struct umm_mmu_interval_notifier *sub) { }
unsigned long umm_mmu_interval_read_begin(struct umm_mmu_interval_notifier *sub) { return 0; }
bool umm_mmu_interval_read_retry(struct umm_mmu_interval_notifier *sub, unsigned long seq) { return true; }
bool umm_mmu_interval_check_retry(struct umm_mmu_interval_notifier *sub, unsigned long seq) { return true; }
void umm_mmu_interval_set_seq(struct umm_mmu_interval_notifier *sub, unsigned long seq) { }

int umm_reclaim(struct umm *u, unsigned long nr_pages, unsigned long *nr_reclaimed) { return -ENOSYS; }
int umm_move_pages(struct umm_mm *mm, unsigned long count, const uint64_t *addrs,
		   const int *nodes, int *status)
{
	return -ENOSYS;
}

int umm_mm_oom_reap(struct umm_mm *mm) { return -ENOSYS; }
void umm_mmu_notifier_check_map(struct umm_mmu_notifier *sub, uint64_t addr, uint64_t pfn) { }
void umm_mmu_notifier_check_unmap(struct umm_mmu_notifier *sub, uint64_t start, uint64_t end) { }
void umm_mmu_interval_check_map(struct umm_mmu_interval_notifier *sub, uint64_t addr,
				uint64_t pfn, unsigned long seq) { }
void umm_mmu_interval_check_unmap(struct umm_mmu_interval_notifier *sub, uint64_t start,
				  uint64_t end) { }
void umm_might_sleep(void) { }
unsigned long umm_mmu_notifier_checker_violations(struct umm *u) { return 0; }
