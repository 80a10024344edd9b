// SPDX-License-Identifier: MIT
/*
 * tlb.c - a GRU-style device TLB over a umm address space.
 *
 * Built only on the public API.  The TLB is set-associative (TLB_SETS sets
 * of TLB_WAYS ways, round-robin replacement) and holds frame addresses, no
 * page references: nothing is pinned, the MMU notifier alone keeps it
 * coherent, as the SGI GRU driver does it.
 *
 * The device's accesses and the TLB's contents are guarded by tlb_lock, a
 * writer-preferring rwlock: device accesses (lookup and copy) hold it for
 * read, like a translation in flight in hardware; drop-ins and flushes hold
 * it for write, so a flush returns only when no access can still go
 * through what it flushed.
 *
 * Drop-in protocol: wait until ms_range_active is zero (no invalidation of
 * the mm is running), snapshot ms_range_seq, GUP the page and drop the
 * reference at once, then install under tlb_lock only if still no
 * invalidation is active and the seq has not moved since the snapshot.
 * Any change of the PTE that GUP saw (unmap, COW, write-protect, merge,
 * migration) happens between an invalidate_range_start and its end, and
 * both bump the seq: the start under tlb_lock, the end before it drops
 * ms_range_active.  The end's bump matters: an invalidation may start
 * between the wait and the snapshot, so the snapshot already counts its
 * start while GUP still sees the old PTE; only the seq moving again at its
 * end tells the drop-in that the PTE changed after all.  So the frame is
 * still the PTE's when the entry goes in, and the entry is flushed before
 * it stops being so.
 *
 * Lock order: tlb_lock, then wait_lock.  No umm call is made under either.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "client_common.h"
#include "tlb.h"

#define PAGE_SIZE	((uint64_t)UMM_PAGE_SIZE)
#define PAGE_MASK	(~(PAGE_SIZE - 1))

#define container_of(ptr, type, member) \
	((type *)((char *)(ptr) - offsetof(type, member)))

struct tlb_entry {
	uint64_t vaddr;			/* page-aligned */
	char *frame;			/* NULL: invalid */
	uint64_t pfn;
	bool writable;
};

struct tlb_dev {
	struct umm_mmu_notifier mn;
	struct umm_mm *mm;

	pthread_rwlock_t tlb_lock;	/* read: an access; write: drop-in, flush */
	struct tlb_entry tlb[TLB_SETS][TLB_WAYS];
	unsigned int victim[TLB_SETS];
	atomic_bool released;

	_Atomic long ms_range_active;	/* invalidations between start and end */
	_Atomic unsigned long ms_range_seq; /* bumped by every start and end */
	pthread_mutex_t wait_lock;	/* ends wake drop-ins waiting for active == 0 */
	pthread_cond_t wait_cond;

	struct tlb_stats stat;		/* updated with __atomic builtins */
};

#define stat_add(dev, field, n) __atomic_fetch_add(&(dev)->stat.field, (n), __ATOMIC_RELAXED)
#define stat_inc(dev, field) stat_add(dev, field, 1)

static inline struct tlb_dev *to_dev(struct umm_mmu_notifier *mn)
{
	return container_of(mn, struct tlb_dev, mn);
}

static inline unsigned int tlb_set(uint64_t vaddr)
{
	return (vaddr / PAGE_SIZE) % TLB_SETS;
}

/* The entry translating @vaddr, if any.  Context: tlb_lock held. */
static struct tlb_entry *tlb_find(struct tlb_dev *dev, uint64_t vaddr)
{
	struct tlb_entry *set = dev->tlb[tlb_set(vaddr)];

	for (int way = 0; way < TLB_WAYS; way++)
		if (set[way].frame && set[way].vaddr == vaddr)
			return &set[way];
	return NULL;
}

/* ---- the driver ---- */

/* Sleep until no invalidation is active.  Return: whether it had to. */
static bool wait_range_inactive(struct tlb_dev *dev)
{
	bool waited = false;

	if (!atomic_load(&dev->ms_range_active))
		return false;
	pthread_mutex_lock(&dev->wait_lock);
	while (atomic_load(&dev->ms_range_active)) {
		waited = true;
		pthread_cond_wait(&dev->wait_cond, &dev->wait_lock);
	}
	pthread_mutex_unlock(&dev->wait_lock);
	return waited;
}

/*
 * tlb_dropin - the device missed on @vaddr: drop a translation in.
 * Return: 0, -EFAULT once released, or GUP's error.
 */
static int tlb_dropin(struct tlb_dev *dev, uint64_t vaddr, bool write)
{
	for (;;) {
		struct umm_page *page;
		struct tlb_entry *e;
		unsigned long seq;
		uint64_t pfn;
		char *frame;
		int err;

		if (wait_range_inactive(dev))
			stat_inc(dev, dropin_waits);
		/* no GUP on an mm whose exit has begun: its page tables are going */
		if (atomic_load(&dev->released))
			return -EFAULT;
		seq = atomic_load(&dev->ms_range_seq);
		err = umm_get_user_page(dev->mm, vaddr, write ? UMM_GUP_WRITE : 0, &page);
		if (err)
			return err;
		frame = umm_page_address(page);
		pfn = umm_page_pfn(page);
		umm_put_page(page);	/* the notifier keeps the entry honest */

		pthread_rwlock_wrlock(&dev->tlb_lock);
		if (atomic_load(&dev->released)) {
			pthread_rwlock_unlock(&dev->tlb_lock);
			return -EFAULT;
		}
		if (atomic_load(&dev->ms_range_active) ||
		    atomic_load(&dev->ms_range_seq) != seq) {
			pthread_rwlock_unlock(&dev->tlb_lock);
			stat_inc(dev, retries);
			continue;
		}
		e = tlb_find(dev, vaddr);
		if (!e) {
			unsigned int set = tlb_set(vaddr), way;

			for (way = 0; way < TLB_WAYS; way++)
				if (!dev->tlb[set][way].frame)
					break;
			if (way == TLB_WAYS) {
				way = dev->victim[set]++ % TLB_WAYS;
				/* nobody accesses through it: we hold tlb_lock for write */
				umm_mmu_notifier_check_unmap(&dev->mn, dev->tlb[set][way].vaddr,
							     dev->tlb[set][way].vaddr + PAGE_SIZE);
				stat_inc(dev, evictions);
			}
			e = &dev->tlb[set][way];
		}
		*e = (struct tlb_entry){ vaddr, frame, pfn, write };
		umm_mmu_notifier_check_map(&dev->mn, vaddr, pfn);
		pthread_rwlock_unlock(&dev->tlb_lock);
		stat_inc(dev, dropins);
		return 0;
	}
}

static ssize_t dev_access(struct tlb_dev *dev, uint64_t addr, void *buf, size_t len,
			  bool write)
{
	size_t done = 0;
	int err = 0;

	while (done < len) {
		uint64_t va = addr + done;
		size_t off, n = page_chunk(va, len - done, &off);
		struct tlb_entry *e;

		if (va < addr || va >= UMM_TASK_SIZE) {
			err = -EFAULT;
			break;
		}
		pthread_rwlock_rdlock(&dev->tlb_lock);
		e = tlb_find(dev, va & PAGE_MASK);
		if (e && (!write || e->writable)) {
			frame_io(e->frame + off, (char *)buf + done, n, write);
			pthread_rwlock_unlock(&dev->tlb_lock);
			stat_inc(dev, hits);
			done += n;
			continue;
		}
		pthread_rwlock_unlock(&dev->tlb_lock);
		stat_inc(dev, misses);
		err = tlb_dropin(dev, va & PAGE_MASK, write);
		if (err)
			break;
	}
	return done ? (ssize_t)done : err;
}

ssize_t tlb_dev_read(struct tlb_dev *dev, uint64_t addr, void *buf, size_t len)
{
	return dev_access(dev, addr, buf, len, false);
}

ssize_t tlb_dev_write(struct tlb_dev *dev, uint64_t addr, const void *buf, size_t len)
{
	return dev_access(dev, addr, (void *)buf, len, true);
}

/* ---- the MMU notifier ---- */

/* Flush the entries inside [start, end).  Context: tlb_lock held for write. */
static unsigned long tlb_flush_range(struct tlb_dev *dev, uint64_t start, uint64_t end)
{
	unsigned long nr = 0;

	for (int set = 0; set < TLB_SETS; set++) {
		for (int way = 0; way < TLB_WAYS; way++) {
			struct tlb_entry *e = &dev->tlb[set][way];

			if (e->frame && e->vaddr >= start && e->vaddr < end) {
				e->frame = NULL;
				nr++;
			}
		}
	}
	return nr;
}

static int tlb_invalidate_range_start(struct umm_mmu_notifier *mn,
				      const struct umm_mmu_notifier_range *range)
{
	struct tlb_dev *dev = to_dev(mn);
	unsigned long nr;

	if (range->flags & UMM_MMU_NOTIFIER_RANGE_BLOCKABLE) {
		umm_might_sleep();
		pthread_rwlock_wrlock(&dev->tlb_lock);
	} else if (pthread_rwlock_trywrlock(&dev->tlb_lock)) {
		stat_inc(dev, eagain);
		return -EAGAIN;
	}
	atomic_fetch_add(&dev->ms_range_active, 1);
	atomic_fetch_add(&dev->ms_range_seq, 1);
	nr = tlb_flush_range(dev, range->start, range->end);
	if (nr) {
		umm_mmu_notifier_check_unmap(&dev->mn, range->start, range->end);
		stat_inc(dev, flushes);
		stat_add(dev, flushed, nr);
	}
	pthread_rwlock_unlock(&dev->tlb_lock);
	return 0;
}

static void tlb_invalidate_range_end(struct umm_mmu_notifier *mn,
				     const struct umm_mmu_notifier_range *range)
{
	struct tlb_dev *dev = to_dev(mn);

	pthread_mutex_lock(&dev->wait_lock);
	/* the seq first: a drop-in that sees active drop sees it moved */
	atomic_fetch_add(&dev->ms_range_seq, 1);
	if (atomic_load(&dev->ms_range_active) <= 0)
		stat_inc(dev, unpaired);
	else if (atomic_fetch_sub(&dev->ms_range_active, 1) == 1)
		pthread_cond_broadcast(&dev->wait_cond);
	pthread_mutex_unlock(&dev->wait_lock);
}

static void tlb_release(struct umm_mmu_notifier *mn, struct umm_mm *mm)
{
	struct tlb_dev *dev = to_dev(mn);

	pthread_rwlock_wrlock(&dev->tlb_lock);
	atomic_store(&dev->released, true);
	atomic_fetch_add(&dev->ms_range_seq, 1);
	stat_add(dev, flushed, tlb_flush_range(dev, 0, UMM_TASK_SIZE));
	umm_mmu_notifier_check_unmap(&dev->mn, 0, UMM_TASK_SIZE);
	pthread_rwlock_unlock(&dev->tlb_lock);
}

static const struct umm_mmu_notifier_ops tlb_mmu_notifier_ops = {
	.release		= tlb_release,
	.invalidate_range_start	= tlb_invalidate_range_start,
	.invalidate_range_end	= tlb_invalidate_range_end,
};

/* ---- devices ---- */

int tlb_dev_create(struct umm_mm *mm, struct tlb_dev **out)
{
	pthread_rwlockattr_t attr;
	struct tlb_dev *dev;
	int err;

	if (!mm || !out)
		return -EINVAL;
	dev = calloc(1, sizeof(*dev));
	if (!dev)
		return -ENOMEM;
	dev->mm = mm;
	pthread_rwlockattr_init(&attr);
	/* a stream of device accesses must not starve a flush */
	pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&dev->tlb_lock, &attr);
	pthread_rwlockattr_destroy(&attr);
	pthread_mutex_init(&dev->wait_lock, NULL);
	pthread_cond_init(&dev->wait_cond, NULL);
	dev->mn.ops = &tlb_mmu_notifier_ops;
	err = umm_mmu_notifier_register(&dev->mn, mm);
	if (err) {
		pthread_cond_destroy(&dev->wait_cond);
		pthread_mutex_destroy(&dev->wait_lock);
		pthread_rwlock_destroy(&dev->tlb_lock);
		free(dev);
		return err;
	}
	*out = dev;
	return 0;
}

void tlb_dev_destroy(struct tlb_dev *dev)
{
	if (!dev)
		return;
	/* flush and refuse drop-ins before leaving the list: see shadow_vm_destroy() */
	tlb_release(&dev->mn, dev->mm);
	umm_mmu_notifier_unregister(&dev->mn, dev->mm);
	pthread_cond_destroy(&dev->wait_cond);
	pthread_mutex_destroy(&dev->wait_lock);
	pthread_rwlock_destroy(&dev->tlb_lock);
	free(dev);
}

int tlb_dev_lookup(struct tlb_dev *dev, uint64_t addr, uint64_t *pfn, bool *writable)
{
	struct tlb_entry *e;
	int found = 0;

	pthread_rwlock_rdlock(&dev->tlb_lock);
	e = tlb_find(dev, addr & PAGE_MASK);
	if (e) {
		found = 1;
		if (pfn)
			*pfn = e->pfn;
		if (writable)
			*writable = e->writable;
	}
	pthread_rwlock_unlock(&dev->tlb_lock);
	return found;
}

void tlb_dev_stats(struct tlb_dev *dev, struct tlb_stats *st)
{
	const unsigned long *from = (const unsigned long *)&dev->stat;
	unsigned long *to = (unsigned long *)st;

	for (size_t i = 0; i < sizeof(*st) / sizeof(*to); i++)
		to[i] = __atomic_load_n(&from[i], __ATOMIC_RELAXED);
}

struct umm_mmu_notifier *tlb_dev_notifier(struct tlb_dev *dev)
{
	return &dev->mn;
}
