// SPDX-License-Identifier: MIT
/*
 * mmu_notifier.c - telling secondary MMUs that a mapping changed.
 *
 * A subscriber (a shadow page table, a device TLB, another process mapping
 * the frames) caches translations of an address space.  Every path that
 * takes a permission or a frame away from a present PTE brackets the
 * change with invalidate_range_start/end, so the subscriber drops what it
 * cached before the frame can be reused; aging asks it whether it used a
 * page (clear_flush_young); exit tells it the address space is going
 * (release).
 *
 * Subscriptions.  Each mm gets a struct mmu_notifier_subscriptions on first
 * registration: an RCU list of subscribers (C11 atomics for the links,
 * liburcu for the grace periods; callbacks run inside the read side and may
 * sleep, like the kernel's SRCU) and a range rwsem.
 * Every start..end pair holds the rwsem for read; registration takes it for
 * write, which is what the kernel gets from mm_take_all_locks(): it waits
 * for the invalidations in flight, so a new subscriber never sees an end
 * without its start.  A start that found no subscriptions remembers it and
 * its end does nothing, so a registration racing with it is harmless too.
 * With no subscriber, every path pays one test of mm->notifier_subscriptions.
 *
 * Unregister removes the subscriber and waits for an RCU grace period: when
 * it returns, no callback of it is running or will run.  get/put share one
 * refcounted subscription per (ops, mm); the last put frees it after a
 * grace period, which umm_mmu_notifier_synchronize() waits for.
 *
 * Interval notifiers arrive with the rest of the notifier work.
 */
#include "internal.h"

/* What the engine keeps in struct umm_mmu_notifier's private words. */
struct mn_sub {
	_Atomic(struct mn_sub *) next;		/* RCU: readers follow it locklessly */
	int users;				/* get/put references */
	bool listed;				/* on the subscriptions list */
	bool released;				/* ->release has been called */
	struct rcu_head rcu;
};
_Static_assert(sizeof(struct mn_sub) <= sizeof(((struct umm_mmu_notifier *)0)->priv),
	       "struct umm_mmu_notifier has no room for the engine's fields");

static inline struct mn_sub *mn_sub(struct umm_mmu_notifier *sub)
{
	return (struct mn_sub *)sub->priv;
}

static inline struct umm_mmu_notifier *mn_of(struct mn_sub *s)
{
	return (struct umm_mmu_notifier *)((char *)s - offsetof(struct umm_mmu_notifier, priv));
}

struct mmu_notifier_subscriptions {
	pthread_mutex_t lock;			/* list changes */
	_Atomic(struct mn_sub *) head;		/* of struct mn_sub, RCU */
	pthread_rwlock_t range_rwsem;		/* read: a range in flight; write: register */
};

static struct mmu_notifier_subscriptions *subscriptions(struct umm_mm *mm)
{
	return atomic_load_explicit(&mm->notifier_subscriptions, memory_order_acquire);
}

/* Walk the subscribers.  Context: inside umm_rcu_read_lock(). */
#define for_each_sub(s, subs) \
	for (s = atomic_load_explicit(&(subs)->head, memory_order_acquire); s; \
	     s = atomic_load_explicit(&s->next, memory_order_acquire))

/* Publish @s at the head.  Context: subs->lock held. */
static void sub_add(struct mmu_notifier_subscriptions *subs, struct mn_sub *s)
{
	atomic_store_explicit(&s->next, atomic_load_explicit(&subs->head, memory_order_relaxed),
			      memory_order_relaxed);
	atomic_store_explicit(&subs->head, s, memory_order_release);
	s->listed = true;
}

/*
 * Unlink @s; readers already on it still find the rest of the list through
 * its unchanged next link.  It may be freed only after a grace period.
 * Context: subs->lock held.
 */
static void sub_del(struct mmu_notifier_subscriptions *subs, struct mn_sub *s)
{
	_Atomic(struct mn_sub *) *link = &subs->head;
	struct mn_sub *cur;

	while ((cur = atomic_load_explicit(link, memory_order_relaxed)) != s)
		link = &cur->next;
	atomic_store_explicit(link, atomic_load_explicit(&s->next, memory_order_relaxed),
			      memory_order_release);
	s->listed = false;
}

void mmu_notifier_subscriptions_destroy(struct umm_mm *mm)
{
	struct mmu_notifier_subscriptions *subs = subscriptions(mm);

	if (!subs)
		return;
	pthread_mutex_destroy(&subs->lock);
	pthread_rwlock_destroy(&subs->range_rwsem);
	free(subs);
}

/* ---- ranges ---- */

/*
 * __mmu_notifier_invalidate_range_start - tell every subscriber a range is
 * about to change.  A non-blockable range (no RANGE_BLOCKABLE) does not
 * wait for a registration in progress and lets a subscriber refuse with
 * -EAGAIN: then the subscribers whose start succeeded get their end at once
 * and the caller must leave the range alone (and not call end).
 * Return: 0 or -EAGAIN.
 */
int __mmu_notifier_invalidate_range_start(struct mmu_notifier_range *range)
{
	struct mmu_notifier_subscriptions *subs = subscriptions(range->r.mm);
	bool blockable = range->r.flags & UMM_MMU_NOTIFIER_RANGE_BLOCKABLE;
	struct mn_sub *s, *t;
	int ret = 0;

	range->entered = false;
	if (!subs)
		return 0;
	if (blockable)
		pthread_rwlock_rdlock(&subs->range_rwsem);
	else if (pthread_rwlock_tryrdlock(&subs->range_rwsem))
		return -EAGAIN;
	umm_rcu_read_lock();
	for_each_sub(s, subs) {
		struct umm_mmu_notifier *sub = mn_of(s);

		if (!sub->ops->invalidate_range_start)
			continue;
		ret = sub->ops->invalidate_range_start(sub, &range->r);
		if (ret) {
			VM_BUG_ON(blockable);	/* only a non-blockable start may fail */
			/* back out: end for those whose start succeeded */
			for_each_sub(t, subs) {
				if (t == s)
					break;
				if (mn_of(t)->ops->invalidate_range_end)
					mn_of(t)->ops->invalidate_range_end(mn_of(t), &range->r);
			}
			break;
		}
	}
	umm_rcu_read_unlock();
	if (ret) {
		pthread_rwlock_unlock(&subs->range_rwsem);
		return ret;
	}
	range->entered = true;
	return 0;
}

void __mmu_notifier_invalidate_range_end(struct mmu_notifier_range *range)
{
	struct mmu_notifier_subscriptions *subs = subscriptions(range->r.mm);
	struct mn_sub *s;

	if (!range->entered)
		return;
	umm_rcu_read_lock();
	for_each_sub(s, subs) {
		struct umm_mmu_notifier *sub = mn_of(s);

		if (sub->ops->invalidate_range_end)
			sub->ops->invalidate_range_end(sub, &range->r);
	}
	umm_rcu_read_unlock();
	pthread_rwlock_unlock(&subs->range_rwsem);
	range->entered = false;
}

/* ---- page-level calls ---- */

enum young_op { CLEAR_FLUSH_YOUNG, CLEAR_YOUNG, TEST_YOUNG };

static int young_call(struct umm_mm *mm, uint64_t start, uint64_t end, enum young_op op)
{
	struct mmu_notifier_subscriptions *subs = subscriptions(mm);
	struct mn_sub *s;
	int young = 0;

	umm_rcu_read_lock();
	for_each_sub(s, subs) {
		struct umm_mmu_notifier *sub = mn_of(s);
		const struct umm_mmu_notifier_ops *ops = sub->ops;

		if (op == CLEAR_FLUSH_YOUNG && ops->clear_flush_young)
			young |= ops->clear_flush_young(sub, mm, start, end);
		else if (op == CLEAR_YOUNG && ops->clear_young)
			young |= ops->clear_young(sub, mm, start, end);
		else if (op == TEST_YOUNG && ops->test_young)
			young |= ops->test_young(sub, mm, start);
	}
	umm_rcu_read_unlock();
	return young;
}

/* Did a secondary MMU use [start, end)?  Clears its accessed state and flushes. */
int __mmu_notifier_clear_flush_young(struct umm_mm *mm, uint64_t start, uint64_t end)
{
	return young_call(mm, start, end, CLEAR_FLUSH_YOUNG);
}

int __mmu_notifier_clear_young(struct umm_mm *mm, uint64_t start, uint64_t end)
{
	return young_call(mm, start, end, CLEAR_YOUNG);
}

int __mmu_notifier_test_young(struct umm_mm *mm, uint64_t addr)
{
	return young_call(mm, addr, addr + PAGE_SIZE, TEST_YOUNG);
}

/*
 * __mmu_notifier_change_pte - the PTE at @addr now maps @pfn (KSM's
 * set_pte_at_notify): a subscriber may update its copy in place instead of
 * faulting it in again.  Called inside an invalidation of the page.
 */
void __mmu_notifier_change_pte(struct umm_mm *mm, uint64_t addr, uint64_t pfn, bool writable)
{
	struct mmu_notifier_subscriptions *subs = subscriptions(mm);
	struct mn_sub *s;

	umm_rcu_read_lock();
	for_each_sub(s, subs)
		if (mn_of(s)->ops->change_pte)
			mn_of(s)->ops->change_pte(mn_of(s), mm, addr, pfn, writable);
	umm_rcu_read_unlock();
}

/* Flush secondary TLBs for [start, end): called where the PTEs changed. */
void __mmu_notifier_invalidate_secondary_tlbs(struct umm_mm *mm, uint64_t start, uint64_t end)
{
	struct mmu_notifier_subscriptions *subs = subscriptions(mm);
	struct mn_sub *s;

	umm_rcu_read_lock();
	for_each_sub(s, subs)
		if (mn_of(s)->ops->invalidate_secondary_tlbs)
			mn_of(s)->ops->invalidate_secondary_tlbs(mn_of(s), mm, start, end);
	umm_rcu_read_unlock();
}

/*
 * __mmu_notifier_release - the address space is going away: every
 * subscriber's ->release runs once and leaves the list, so no start is sent
 * after it.  Context: exit_mmap, before the page tables are torn down.
 */
void __mmu_notifier_release(struct umm_mm *mm)
{
	struct mmu_notifier_subscriptions *subs = subscriptions(mm);
	struct mn_sub *chain, *s;

	/* no range in flight, and none can start: the list is about to empty */
	pthread_rwlock_wrlock(&subs->range_rwsem);
	umm_rcu_read_lock();
	/*
	 * Detach every subscriber at once, under the lock unregister takes:
	 * each ->release then runs exactly once, here or in unregister, and an
	 * unregister that finds its subscriber gone waits (synchronize_rcu)
	 * until the callback below has returned.
	 */
	pthread_mutex_lock(&subs->lock);
	chain = atomic_load_explicit(&subs->head, memory_order_relaxed);
	atomic_store_explicit(&subs->head, NULL, memory_order_release);
	for (s = chain; s; s = atomic_load_explicit(&s->next, memory_order_relaxed)) {
		s->listed = false;
		s->released = true;
	}
	pthread_mutex_unlock(&subs->lock);
	for (s = chain; s; s = atomic_load_explicit(&s->next, memory_order_acquire)) {
		struct umm_mmu_notifier *sub = mn_of(s);

		if (sub->ops->release)
			sub->ops->release(sub, mm);
	}
	umm_rcu_read_unlock();
	pthread_rwlock_unlock(&subs->range_rwsem);
	synchronize_rcu();
	rcu_tsan_acquire();
}

/* ---- registration ---- */

/* Context: mm's mmap_lock held for write. */
static int mn_register_locked(struct umm_mmu_notifier *sub, struct umm_mm *mm)
{
	struct mmu_notifier_subscriptions *subs = subscriptions(mm);
	struct mn_sub *s = mn_sub(sub);

	if (!subs) {
		subs = calloc(1, sizeof(*subs));
		if (!subs)
			return -ENOMEM;
		pthread_mutex_init(&subs->lock, NULL);
		pthread_rwlock_init(&subs->range_rwsem, NULL);
		atomic_store_explicit(&mm->notifier_subscriptions, subs, memory_order_release);
	}
	memset(s, 0, sizeof(*s));
	sub->mm = mm;
	mmgrab(mm);
	/* no invalidation may be in flight while the list grows */
	pthread_rwlock_wrlock(&subs->range_rwsem);
	pthread_mutex_lock(&subs->lock);
	sub_add(subs, s);
	pthread_mutex_unlock(&subs->lock);
	pthread_rwlock_unlock(&subs->range_rwsem);
	return 0;
}

int umm_mmu_notifier_register(struct umm_mmu_notifier *sub, struct umm_mm *mm)
{
	int err;

	if (!sub || !sub->ops || !mm)
		return -EINVAL;
	pthread_rwlock_wrlock(&mm->mmap_lock);
	err = mm->dead ? -ESRCH : mn_register_locked(sub, mm);
	pthread_rwlock_unlock(&mm->mmap_lock);
	return err;
}

/* Take @s off the list.  Return: whether it was on it. */
static bool mn_unlist(struct umm_mm *mm, struct mn_sub *s)
{
	struct mmu_notifier_subscriptions *subs = subscriptions(mm);
	bool was;

	pthread_mutex_lock(&subs->lock);
	was = s->listed;
	if (was)
		sub_del(subs, s);
	pthread_mutex_unlock(&subs->lock);
	return was;
}

/*
 * umm_mmu_notifier_unregister - ->release unless it already ran (exit), then
 * off the list; returns only when no callback of @sub can run.
 * Context: must not be called from a notifier callback.
 */
void umm_mmu_notifier_unregister(struct umm_mmu_notifier *sub, struct umm_mm *mm)
{
	struct mn_sub *s;

	if (!sub || !mm || sub->mm != mm)
		return;
	s = mn_sub(sub);
	if (mn_unlist(mm, s) && !s->released && sub->ops->release) {
		umm_rcu_read_lock();
		sub->ops->release(sub, mm);
		umm_rcu_read_unlock();
	}
	synchronize_rcu();
	rcu_tsan_acquire();	/* every reader that saw @sub is done */
	mmdrop(mm);
}

int umm_mmu_notifier_get(const struct umm_mmu_notifier_ops *ops, struct umm_mm *mm,
			 struct umm_mmu_notifier **out)
{
	struct mmu_notifier_subscriptions *subs;
	struct umm_mmu_notifier *sub = NULL;
	struct mn_sub *s;
	int err = 0;

	if (!ops || !mm || !out || !ops->alloc_notifier || !ops->free_notifier)
		return -EINVAL;
	pthread_rwlock_wrlock(&mm->mmap_lock);
	if (mm->dead) {
		err = -ESRCH;
		goto out;
	}
	subs = subscriptions(mm);
	if (subs) {
		pthread_mutex_lock(&subs->lock);
		for_each_sub(s, subs) {
			if (mn_of(s)->ops == ops && s->users) {
				s->users++;
				sub = mn_of(s);
				break;
			}
		}
		pthread_mutex_unlock(&subs->lock);
	}
	if (!sub) {
		sub = ops->alloc_notifier(mm);
		if (!sub) {
			err = -ENOMEM;
			goto out;
		}
		sub->ops = ops;
		err = mn_register_locked(sub, mm);
		if (err) {
			ops->free_notifier(sub);
			goto out;
		}
		mn_sub(sub)->users = 1;
	}
	*out = sub;
out:
	pthread_rwlock_unlock(&mm->mmap_lock);
	return err;
}

static void mn_free_rcu(struct rcu_head *head)
{
	struct mn_sub *s = container_of(head, struct mn_sub, rcu);
	struct umm_mmu_notifier *sub = mn_of(s);
	struct umm_mm *mm;

	rcu_tsan_acquire();
	mm = sub->mm;
	sub->ops->free_notifier(sub);
	mmdrop(mm);
}

/* Drop a get() reference; the last one frees the subscription after a grace period. */
void umm_mmu_notifier_put(struct umm_mmu_notifier *sub)
{
	struct mmu_notifier_subscriptions *subs;
	struct mn_sub *s;
	bool last;

	if (!sub || !sub->mm)
		return;
	s = mn_sub(sub);
	subs = subscriptions(sub->mm);
	pthread_mutex_lock(&subs->lock);
	last = --s->users == 0;
	if (last && s->listed)
		sub_del(subs, s);
	pthread_mutex_unlock(&subs->lock);
	if (!last)
		return;
	rcu_tsan_release();
	call_rcu(&s->rcu, mn_free_rcu);
}

void umm_mmu_notifier_synchronize(struct umm *u)
{
	rcu_barrier();
}
