/* SPDX-License-Identifier: MIT */
/*
 * tlb.h - a GRU-style device TLB built on umm's public API.
 *
 * A device reaches an address space through a small fixed-size TLB of
 * virtual page -> frame translations that hold no page reference.  A miss
 * asks the "driver" to drop a translation in (GUP, then the reference goes
 * at once); drop-ins are refused while any invalidation of the mm is
 * active, and every invalidate_range_start flushes what it covers.
 */
#ifndef UMM_CLIENTS_TLB_H
#define UMM_CLIENTS_TLB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <umm/umm.h>

#define TLB_SETS	64
#define TLB_WAYS	4
#define TLB_ENTRIES	(TLB_SETS * TLB_WAYS)

struct tlb_dev;

struct tlb_stats {
	unsigned long hits, misses;
	unsigned long dropins;		/* translations dropped in */
	unsigned long dropin_waits;	/* drop-ins that waited for invalidations to end */
	unsigned long retries;		/* drop-ins refused by the sequence check */
	unsigned long flushes;		/* invalidate_range_starts that flushed something */
	unsigned long flushed;		/* entries flushed */
	unsigned long evictions;	/* valid entries replaced by a drop-in */
	unsigned long eagain;		/* non-blockable starts refused */
	unsigned long unpaired;		/* ends without a start: must stay 0 */
};

/* A device on @mm, its notifier registered.  Return: 0 and *@out, or -errno. */
int  tlb_dev_create(struct umm_mm *mm, struct tlb_dev **out);
/* Unregister (->release unless exit ran it) and free.  No access may be running. */
void tlb_dev_destroy(struct tlb_dev *dev);

/*
 * Device loads and stores at @addr, any number of threads at once.
 * Return: @len, -EFAULT (nothing mapped, no permission, device released),
 * -ENOMEM, or the bytes done before a page that cannot be reached.
 */
ssize_t tlb_dev_read(struct tlb_dev *dev, uint64_t addr, void *buf, size_t len);
ssize_t tlb_dev_write(struct tlb_dev *dev, uint64_t addr, const void *buf, size_t len);

/* Does the TLB hold @addr?  1 (and *@pfn, *@writable) or 0. */
int  tlb_dev_lookup(struct tlb_dev *dev, uint64_t addr, uint64_t *pfn, bool *writable);
void tlb_dev_stats(struct tlb_dev *dev, struct tlb_stats *st);
struct umm_mmu_notifier *tlb_dev_notifier(struct tlb_dev *dev);

#endif /* UMM_CLIENTS_TLB_H */
