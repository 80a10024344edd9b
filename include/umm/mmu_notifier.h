/* SPDX-License-Identifier: MIT */
/*
 * umm/mmu_notifier.h - secondary MMUs: how they learn that a mapping changed.
 * Included by <umm/umm.h>.
 */
#ifndef UMM_MMU_NOTIFIER_H
#define UMM_MMU_NOTIFIER_H

#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct umm;
struct umm_mm;

enum umm_mmu_notifier_event {
	UMM_MMU_NOTIFY_UNMAP, UMM_MMU_NOTIFY_CLEAR, UMM_MMU_NOTIFY_PROTECTION_VMA,
	UMM_MMU_NOTIFY_PROTECTION_PAGE, UMM_MMU_NOTIFY_SOFT_DIRTY, UMM_MMU_NOTIFY_RELEASE,
	UMM_MMU_NOTIFY_MIGRATE, UMM_MMU_NOTIFY_EXCLUSIVE,
};
#define UMM_MMU_NOTIFIER_RANGE_BLOCKABLE 0x1
struct umm_mmu_notifier_range {
	struct umm_mm *mm; uint64_t start, end;
	enum umm_mmu_notifier_event event; unsigned int flags; void *owner;
};
struct umm_mmu_notifier;
struct umm_mmu_notifier_ops {
	void (*release)(struct umm_mmu_notifier *sub, struct umm_mm *mm);
	int  (*clear_flush_young)(struct umm_mmu_notifier *sub, struct umm_mm *mm,
				  uint64_t start, uint64_t end);
	int  (*clear_young)(struct umm_mmu_notifier *sub, struct umm_mm *mm,
			    uint64_t start, uint64_t end);
	int  (*test_young)(struct umm_mmu_notifier *sub, struct umm_mm *mm, uint64_t addr);
	void (*change_pte)(struct umm_mmu_notifier *sub, struct umm_mm *mm, uint64_t addr,
			   uint64_t pfn, bool writable);
	int  (*invalidate_range_start)(struct umm_mmu_notifier *sub,
				       const struct umm_mmu_notifier_range *range);
	void (*invalidate_range_end)(struct umm_mmu_notifier *sub,
				     const struct umm_mmu_notifier_range *range);
	void (*invalidate_secondary_tlbs)(struct umm_mmu_notifier *sub, struct umm_mm *mm,
					  uint64_t start, uint64_t end);
	struct umm_mmu_notifier *(*alloc_notifier)(struct umm_mm *mm);
	void (*free_notifier)(struct umm_mmu_notifier *sub);
};
struct umm_mmu_notifier {               /* embed in your own struct */
	const struct umm_mmu_notifier_ops *ops;
	/* private fields follow */
	struct umm_mm *mm;
	void *priv[6];
};
int  umm_mmu_notifier_register(struct umm_mmu_notifier *sub, struct umm_mm *mm);
void umm_mmu_notifier_unregister(struct umm_mmu_notifier *sub, struct umm_mm *mm);
int  umm_mmu_notifier_get(const struct umm_mmu_notifier_ops *ops, struct umm_mm *mm,
			  struct umm_mmu_notifier **out);
void umm_mmu_notifier_put(struct umm_mmu_notifier *sub);
void umm_mmu_notifier_synchronize(struct umm *u);

struct umm_mmu_interval_notifier;
struct umm_mmu_interval_notifier_ops {
	bool (*invalidate)(struct umm_mmu_interval_notifier *sub,
			   const struct umm_mmu_notifier_range *range, unsigned long cur_seq);
};
struct umm_mmu_interval_notifier {      /* embed in your own struct */
	const struct umm_mmu_interval_notifier_ops *ops;
	/* private fields follow */
	struct umm_mm *mm;
	uint64_t start, last;		/* [start, last], inclusive */
	unsigned long invalidate_seq;
	void *priv[12];
};
int  umm_mmu_interval_notifier_insert(struct umm_mmu_interval_notifier *sub,
				      struct umm_mm *mm, uint64_t start, uint64_t length,
				      const struct umm_mmu_interval_notifier_ops *ops);
void umm_mmu_interval_notifier_remove(struct umm_mmu_interval_notifier *sub);
unsigned long umm_mmu_interval_read_begin(struct umm_mmu_interval_notifier *sub);
bool umm_mmu_interval_read_retry(struct umm_mmu_interval_notifier *sub, unsigned long seq);
bool umm_mmu_interval_check_retry(struct umm_mmu_interval_notifier *sub, unsigned long seq);
void umm_mmu_interval_set_seq(struct umm_mmu_interval_notifier *sub, unsigned long seq);

/*
 * Protocol checker (a machine created with UMM_CONFIG_NOTIFIER_CHECKER;
 * otherwise each call is a no-op).  Clients report the translations they
 * cache; the checker reports, through the log hook, with addresses and
 * callers: a translation established inside an active invalidation (or, for
 * interval notifiers, with a sequence that read_retry would refuse), one
 * still cached after the invalidation of its range ended, a frame freed
 * while a subscriber reports it mapped, reports from a subscriber after its
 * release or unregister, sleeping in a non-blockable callback, and
 * unpaired invalidate_range_start/end.
 */
void umm_mmu_notifier_check_map(struct umm_mmu_notifier *sub, uint64_t addr, uint64_t pfn);
void umm_mmu_notifier_check_unmap(struct umm_mmu_notifier *sub, uint64_t start, uint64_t end);
void umm_mmu_interval_check_map(struct umm_mmu_interval_notifier *sub, uint64_t addr,
				uint64_t pfn, unsigned long seq);
void umm_mmu_interval_check_unmap(struct umm_mmu_interval_notifier *sub, uint64_t start,
				  uint64_t end);
/* "I may sleep here": a violation inside a non-blockable callback. */
void umm_might_sleep(void);
/* Violations the checker has reported on @u so far. */
unsigned long umm_mmu_notifier_checker_violations(struct umm *u);

#ifdef __cplusplus
}
#endif
#endif /* UMM_MMU_NOTIFIER_H */
