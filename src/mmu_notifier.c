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
 * Interval notifiers.  A driver that mirrors only some ranges of an mm
 * (a device's page tables for a buffer) inserts an interval: its
 * ->invalidate runs only for invalidations that overlap it.  The mm keeps
 * the intervals in an interval tree and one sequence number,
 * invalidate_seq, odd while any invalidation overlapping an interval is in
 * flight.  The driver's fault path follows the collision-retry protocol:
 *
 *	seq = umm_mmu_interval_read_begin(sub);   sleeps while sub is being invalidated
 *	... umm_get_user_page() ...
 *	take the driver lock;
 *	if (umm_mmu_interval_read_retry(sub, seq)) { unlock; start over; }
 *	install the translation; unlock;
 *
 * and ->invalidate calls umm_mmu_interval_set_seq(sub, cur_seq) under that
 * same lock, which is what makes read_retry see the collision.
 * While invalidations are in flight the tree is being walked without a
 * lock, so inserts and removes are deferred to a list and applied by the
 * last invalidation to finish; a remove waits for that before returning,
 * so after it no ->invalidate of the interval runs.
 */
#include <unistd.h>

#include "internal.h"

/* What the engine keeps in struct umm_mmu_notifier's private words. */
struct mn_sub {
	_Atomic(struct mn_sub *) next;		/* RCU: readers follow it locklessly */
	int users;				/* get/put references */
	bool listed;				/* on the subscriptions list */
	bool released;				/* ->release has been called (or claimed) */
	bool exit_releases;			/* exit claimed it (not unregister) */
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
	pthread_mutex_t lock;			/* list changes; the interval tree's state */
	_Atomic(struct mn_sub *) head;		/* of struct mn_sub, RCU */
	pthread_rwlock_t range_rwsem;		/* read: a range in flight; write: register */

	/* interval notifiers; all under lock unless said otherwise */
	struct rb_root itree;			/* walked locklessly while active_ranges > 0 */
	_Atomic bool has_itree;			/* an interval was ever inserted */
	_Atomic unsigned long invalidate_seq;	/* odd: an invalidation hits the tree */
	unsigned long active_ranges;		/* invalidations between start and end */
	struct list_head deferred;		/* inserts/removes waiting for the tree */
	pthread_cond_t wq;			/* read_begin and remove wait here */
};

/* What the engine keeps in struct umm_mmu_interval_notifier's private words. */
struct mn_interval {
	struct interval_tree_node node;		/* in subs->itree */
	struct list_head deferred;		/* in subs->deferred */
	enum { MNI_IDLE, MNI_DEFER_INSERT, MNI_DEFER_REMOVE } op;
	bool in_tree;
};
_Static_assert(sizeof(struct mn_interval) <= sizeof(((struct umm_mmu_interval_notifier *)0)->priv),
	       "struct umm_mmu_interval_notifier has no room for the engine's fields");

static inline struct mn_interval *mni(struct umm_mmu_interval_notifier *sub)
{
	return (struct mn_interval *)sub->priv;
}

static inline struct umm_mmu_interval_notifier *mni_of(struct interval_tree_node *n)
{
	return (struct umm_mmu_interval_notifier *)((char *)n - offsetof(struct umm_mmu_interval_notifier, priv));
}

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
	pthread_cond_destroy(&subs->wq);
	free(subs);
}

/* ---- interval notifiers: the tree side of an invalidation ---- */

static bool mn_itree_is_invalidating(struct mmu_notifier_subscriptions *subs)
{
	return atomic_load_explicit(&subs->invalidate_seq, memory_order_relaxed) & 1;
}

/*
 * Begin an invalidation over the tree: count it active (the tree is frozen
 * until the count drops to zero) and, if it hits an interval, make the
 * sequence odd.  Return: the first interval it overlaps, or NULL.
 */
static struct interval_tree_node *mn_itree_inv_start_range(struct mmu_notifier_subscriptions *subs,
							   const struct umm_mmu_notifier_range *r,
							   unsigned long *seq)
{
	struct interval_tree_node *n;

	pthread_mutex_lock(&subs->lock);
	subs->active_ranges++;
	n = interval_tree_iter_first(&subs->itree, r->start, r->end - 1);
	if (n)
		atomic_fetch_or_explicit(&subs->invalidate_seq, 1, memory_order_relaxed);
	*seq = atomic_load_explicit(&subs->invalidate_seq, memory_order_relaxed);
	pthread_mutex_unlock(&subs->lock);
	return n;
}

/*
 * The last invalidation in flight is done: the sequence becomes even (every
 * read_begin sleeping on it wakes), and deferred inserts and removes reach
 * the tree.
 */
static void mn_itree_inv_end(struct mmu_notifier_subscriptions *subs)
{
	struct mn_interval *m, *tmp;

	pthread_mutex_lock(&subs->lock);
	if (--subs->active_ranges || !mn_itree_is_invalidating(subs)) {
		pthread_mutex_unlock(&subs->lock);
		return;
	}
	atomic_fetch_add_explicit(&subs->invalidate_seq, 1, memory_order_release);
	list_for_each_entry_safe(m, tmp, &subs->deferred, deferred) {
		if (m->op == MNI_DEFER_INSERT) {
			interval_tree_insert(&m->node, &subs->itree);
			m->in_tree = true;
		} else if (m->in_tree) {
			interval_tree_remove(&m->node, &subs->itree);
			m->in_tree = false;
		}
		m->op = MNI_IDLE;
		list_del_init(&m->deferred);
	}
	pthread_mutex_unlock(&subs->lock);
	pthread_cond_broadcast(&subs->wq);
}

/*
 * Call ->invalidate of every interval the range overlaps.  The tree cannot
 * change meanwhile (inserts and removes are deferred), so it is walked
 * without the lock.  A non-blockable range lets ->invalidate refuse
 * (return false): then the range is backed out and -EAGAIN returned.
 * Context: range rwsem held for read.
 */
static int mn_itree_invalidate(struct mmu_notifier_subscriptions *subs,
			       struct mmu_notifier_range *range)
{
	const struct umm_mmu_notifier_range *r = &range->r;
	struct interval_tree_node *n;
	unsigned long seq;

	struct umm *u = r->mm->u;
	bool blockable = r->flags & UMM_MMU_NOTIFIER_RANGE_BLOCKABLE;

	n = mn_itree_inv_start_range(subs, r, &seq);
	range->itree = true;
	for (; n; n = interval_tree_iter_next(n, r->start, r->end - 1)) {
		struct umm_mmu_interval_notifier *sub = mni_of(n);
		bool ok;

		if (unlikely(u->mn_check) && !blockable)
			mn_check_nonblock_enter(u);
		ok = sub->ops->invalidate(sub, r, seq);
		if (unlikely(u->mn_check) && !blockable)
			mn_check_nonblock_exit();
		if (!ok) {
			VM_BUG_ON(blockable);
			mn_itree_inv_end(subs);
			range->itree = false;
			return -EAGAIN;
		}
		if (unlikely(u->mn_check))
			mn_check_delivered(range, sub);
	}
	return 0;
}

/* exit: every interval hears that its whole range goes (event RELEASE). */
static void mn_itree_release(struct mmu_notifier_subscriptions *subs, struct umm_mm *mm)
{
	struct mmu_notifier_range range;

	mmu_notifier_range_init(&range, UMM_MMU_NOTIFY_RELEASE, mm, 0, UINT64_MAX);
	mn_itree_invalidate(subs, &range);
	mn_itree_inv_end(subs);
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
	struct umm *u = range->r.mm->u;
	struct mn_sub *s, *t;
	int ret = 0;

	range->entered = false;
	range->itree = false;
	if (!subs)
		return 0;
	if (!blockable && should_fail(u, UMM_FAULT_NOTIFIER_EAGAIN))
		return -EAGAIN;		/* as if a subscriber could not act without sleeping */
	if (blockable && should_fail(u, UMM_FAULT_NOTIFIER_DELAY))
		usleep(1000);		/* a slow subscriber */
	if (blockable)
		pthread_rwlock_rdlock(&subs->range_rwsem);
	else if (pthread_rwlock_tryrdlock(&subs->range_rwsem))
		return -EAGAIN;
	if (unlikely(u->mn_check))
		mn_check_range_start(range, __builtin_return_address(0));
	if (atomic_load_explicit(&subs->has_itree, memory_order_acquire)) {
		ret = mn_itree_invalidate(subs, range);
		if (ret)
			goto out_abort;
	}
	umm_rcu_read_lock();
	for_each_sub(s, subs) {
		struct umm_mmu_notifier *sub = mn_of(s);

		if (!sub->ops->invalidate_range_start)
			continue;
		if (unlikely(u->mn_check) && !blockable)
			mn_check_nonblock_enter(u);
		ret = sub->ops->invalidate_range_start(sub, &range->r);
		if (unlikely(u->mn_check) && !blockable)
			mn_check_nonblock_exit();
		if (!ret && unlikely(u->mn_check))
			mn_check_delivered(range, sub);
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
		if (range->itree)
			mn_itree_inv_end(subs);
		goto out_abort;
	}
	range->entered = true;
	return 0;

out_abort:
	if (unlikely(u->mn_check))
		mn_check_range_abort(range);
	pthread_rwlock_unlock(&subs->range_rwsem);
	return ret;
}

void __mmu_notifier_invalidate_range_end(struct mmu_notifier_range *range)
{
	struct mmu_notifier_subscriptions *subs = subscriptions(range->r.mm);
	struct mn_sub *s;

	if (!range->entered)
		return;
	if (unlikely(range->r.mm->u->mn_check) &&
	    !mn_check_range_end(range, __builtin_return_address(0)))
		return;		/* reported: an end without its start */
	if (range->itree)
		mn_itree_inv_end(subs);
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

	if (unlikely(mm->u->mn_check))
		mn_check_change_pte(mm, addr, pfn);	/* the one install allowed inside */
	umm_rcu_read_lock();
	for_each_sub(s, subs)
		if (mn_of(s)->ops->change_pte)
			mn_of(s)->ops->change_pte(mn_of(s), mm, addr, pfn, writable);
	umm_rcu_read_unlock();
	if (unlikely(mm->u->mn_check))
		mn_check_change_pte(NULL, 0, 0);
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
	if (atomic_load_explicit(&subs->has_itree, memory_order_acquire))
		mn_itree_release(subs, mm);
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
		s->exit_releases = !s->released;	/* else unregister is running it */
		s->released = true;
	}
	pthread_mutex_unlock(&subs->lock);
	for (s = chain; s; s = atomic_load_explicit(&s->next, memory_order_acquire)) {
		struct umm_mmu_notifier *sub = mn_of(s);

		if (s->exit_releases && sub->ops->release)
			sub->ops->release(sub, mm);
		if (unlikely(mm->u->mn_check))
			mn_check_sub_gone(mm->u, sub, "release");
	}
	umm_rcu_read_unlock();
	pthread_rwlock_unlock(&subs->range_rwsem);
	synchronize_rcu();
	rcu_tsan_acquire();
}

/* ---- registration ---- */

/*
 * The mm's first subscription of either kind: from here on every range
 * takes the slow path.  Context: mm's mmap_lock held for write.
 */
static struct mmu_notifier_subscriptions *mn_subscriptions_alloc(struct umm_mm *mm)
{
	struct mmu_notifier_subscriptions *subs = calloc(1, sizeof(*subs));

	if (!subs)
		return NULL;
	pthread_mutex_init(&subs->lock, NULL);
	pthread_rwlock_init(&subs->range_rwsem, NULL);
	pthread_cond_init(&subs->wq, NULL);
	INIT_LIST_HEAD(&subs->deferred);
	subs->itree = RB_ROOT;
	/* even and never 0 - 1: a fresh interval's seq never equals it */
	atomic_init(&subs->invalidate_seq, 2);
	atomic_store_explicit(&mm->notifier_subscriptions, subs, memory_order_release);
	return subs;
}

/* Context: mm's mmap_lock held for write. */
static int mn_register_locked(struct umm_mmu_notifier *sub, struct umm_mm *mm)
{
	struct mmu_notifier_subscriptions *subs = subscriptions(mm);
	struct mn_sub *s = mn_sub(sub);

	if (!subs) {
		subs = mn_subscriptions_alloc(mm);
		if (!subs)
			return -ENOMEM;
	}
	memset(s, 0, sizeof(*s));
	sub->mm = mm;
	mmgrab(mm);
	if (unlikely(mm->u->mn_check))
		mn_check_sub_new(mm->u, sub);
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

/*
 * Claim @s's ->release: true if it is listed and nobody (exit) has run it.
 * Context: exit detaches and marks every subscriber under the same lock,
 * so ->release runs exactly once, here or there.
 */
static bool mn_claim_release(struct umm_mm *mm, struct mn_sub *s)
{
	struct mmu_notifier_subscriptions *subs = subscriptions(mm);
	bool mine;

	pthread_mutex_lock(&subs->lock);
	mine = s->listed && !s->released;
	if (mine)
		s->released = true;
	pthread_mutex_unlock(&subs->lock);
	return mine;
}

/* Take @s off the list, if it is still on it. */
static void mn_unlist(struct umm_mm *mm, struct mn_sub *s)
{
	struct mmu_notifier_subscriptions *subs = subscriptions(mm);

	pthread_mutex_lock(&subs->lock);
	if (s->listed)
		sub_del(subs, s);
	pthread_mutex_unlock(&subs->lock);
}

/*
 * umm_mmu_notifier_unregister - ->release unless it already ran (exit), then
 * off the list; returns only when no callback of @sub can run.  As in
 * Linux, ->release runs while @sub is still listed: until it has stopped
 * the secondary MMU, invalidations must still reach it.
 * Context: must not be called from a notifier callback.
 */
void umm_mmu_notifier_unregister(struct umm_mmu_notifier *sub, struct umm_mm *mm)
{
	struct mn_sub *s;

	if (!sub || !mm || sub->mm != mm)
		return;
	s = mn_sub(sub);
	if (mn_claim_release(mm, s) && sub->ops->release) {
		umm_rcu_read_lock();
		sub->ops->release(sub, mm);
		umm_rcu_read_unlock();
	}
	mn_unlist(mm, s);
	if (unlikely(mm->u->mn_check))
		mn_check_sub_gone(mm->u, sub, "unregister");
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
	if (unlikely(sub->mm->u->mn_check))
		mn_check_sub_gone(sub->mm->u, sub, "the last put");
	rcu_tsan_release();
	call_rcu(&s->rcu, mn_free_rcu);
}

void umm_mmu_notifier_synchronize(struct umm *u)
{
	rcu_barrier();
}

/* ---- interval notifiers: the API ---- */

/*
 * umm_mmu_interval_notifier_insert - watch [start, start + length) of @mm.
 * If an invalidation is running, the interval joins the tree when it ends
 * and its sequence is the running one, so the first read_begin waits for
 * it: the new interval may overlap a range whose ->invalidate it missed.
 * Return: 0, -EINVAL (no ops, zero or wrapping length), -ENOMEM, -ESRCH
 * (@mm has exited).
 */
int umm_mmu_interval_notifier_insert(struct umm_mmu_interval_notifier *sub, struct umm_mm *mm,
				     uint64_t start, uint64_t length,
				     const struct umm_mmu_interval_notifier_ops *ops)
{
	struct mmu_notifier_subscriptions *subs;
	struct mn_interval *m;
	int err = 0;

	if (!sub || !mm || !ops || !ops->invalidate || !length || start + length - 1 < start)
		return -EINVAL;
	m = mni(sub);
	memset(m, 0, sizeof(*m));
	INIT_LIST_HEAD(&m->deferred);
	sub->ops = ops;
	sub->mm = mm;
	sub->start = start;
	sub->last = start + length - 1;
	m->node.start = sub->start;
	m->node.last = sub->last;

	/*
	 * Only the mm's first subscription needs mmap_lock (to publish the
	 * subscriptions); after that an insert must not wait for it: a driver
	 * may insert while a munmap holding it invalidates.
	 */
	subs = subscriptions(mm);
	if (!subs) {
		pthread_rwlock_wrlock(&mm->mmap_lock);
		subs = subscriptions(mm);
		if (mm->dead)
			err = -ESRCH;
		else if (!subs && !(subs = mn_subscriptions_alloc(mm)))
			err = -ENOMEM;
		pthread_rwlock_unlock(&mm->mmap_lock);
		if (err)
			return err;
	}
	mmgrab(mm);
	if (unlikely(mm->u->mn_check))
		mn_check_sub_new(mm->u, sub);

	pthread_mutex_lock(&subs->lock);
	atomic_store_explicit(&subs->has_itree, true, memory_order_release);
	if (subs->active_ranges) {
		if (mn_itree_is_invalidating(subs)) {
			/* walkers are in the tree: join it when they are done */
			m->op = MNI_DEFER_INSERT;
			list_add(&m->deferred, &subs->deferred);
		} else {
			/*
			 * Ranges in flight missed the tree and walk nothing, so
			 * the tree can take us now; the odd sequence makes our
			 * first read_begin wait until they are done.
			 */
			atomic_fetch_or_explicit(&subs->invalidate_seq, 1, memory_order_relaxed);
			interval_tree_insert(&m->node, &subs->itree);
			m->in_tree = true;
		}
		sub->invalidate_seq = atomic_load_explicit(&subs->invalidate_seq, memory_order_relaxed);
	} else {
		sub->invalidate_seq = atomic_load_explicit(&subs->invalidate_seq,
							   memory_order_relaxed) - 1;
		interval_tree_insert(&m->node, &subs->itree);
		m->in_tree = true;
	}
	pthread_mutex_unlock(&subs->lock);
	return 0;
}

/*
 * umm_mmu_interval_notifier_remove - stop watching.  When it returns, no
 * ->invalidate of @sub is running or will run; the memory may be freed.
 * Context: may sleep; not from inside ->invalidate.
 */
void umm_mmu_interval_notifier_remove(struct umm_mmu_interval_notifier *sub)
{
	struct mmu_notifier_subscriptions *subs;
	struct umm_mm *mm;
	struct mn_interval *m;
	unsigned long seq = 0;

	if (!sub || !sub->mm)
		return;
	mm = sub->mm;
	m = mni(sub);
	subs = subscriptions(mm);
	pthread_mutex_lock(&subs->lock);
	if (mn_itree_is_invalidating(subs)) {
		/* the tree is being walked: leave it when the walkers are done */
		if (m->op == MNI_DEFER_INSERT) {
			list_del_init(&m->deferred);
			m->op = MNI_IDLE;
		} else if (m->in_tree) {
			m->op = MNI_DEFER_REMOVE;
			list_add(&m->deferred, &subs->deferred);
			seq = atomic_load_explicit(&subs->invalidate_seq, memory_order_relaxed);
		}
	} else {
		VM_BUG_ON(m->op != MNI_IDLE);
		if (m->in_tree)
			interval_tree_remove(&m->node, &subs->itree);
		m->in_tree = false;
	}
	/* a walker may be inside our ->invalidate: wait until the sequence moves */
	while (seq && atomic_load_explicit(&subs->invalidate_seq, memory_order_relaxed) == seq)
		pthread_cond_wait(&subs->wq, &subs->lock);
	pthread_mutex_unlock(&subs->lock);
	if (unlikely(mm->u->mn_check))
		mn_check_sub_gone(mm->u, sub, "remove");
	sub->mm = NULL;
	mmdrop(mm);
}

/*
 * umm_mmu_interval_read_begin - start a read-side critical section: the
 * returned sequence goes to read_retry once the driver holds its lock.
 * Sleeps while an invalidation of this interval runs: nothing the caller
 * could look up now would survive it.
 */
unsigned long umm_mmu_interval_read_begin(struct umm_mmu_interval_notifier *sub)
{
	struct mmu_notifier_subscriptions *subs = subscriptions(sub->mm);
	unsigned long seq;
	bool invalidating;

	/*
	 * sub->invalidate_seq equals the odd subs->invalidate_seq only while
	 * an invalidation that called set_seq on this interval is in flight.
	 * Read both under the lock: mn_itree_inv_end moves the sequence on
	 * under it, so we either see the old odd value and sleep until it
	 * changes, or the new one and go on.
	 */
	pthread_mutex_lock(&subs->lock);
	seq = atomic_load_explicit((_Atomic unsigned long *)&sub->invalidate_seq, memory_order_relaxed);
	invalidating = seq == atomic_load_explicit(&subs->invalidate_seq, memory_order_relaxed);
	while (invalidating && atomic_load_explicit(&subs->invalidate_seq, memory_order_relaxed) == seq)
		pthread_cond_wait(&subs->wq, &subs->lock);
	pthread_mutex_unlock(&subs->lock);
	/* the caller's later reads of the mm happen after this */
	atomic_thread_fence(memory_order_acquire);
	return seq;
}

/*
 * umm_mmu_interval_read_retry - did an invalidation of @sub start since
 * read_begin returned @seq?  Context: the driver lock that ->invalidate
 * takes around set_seq is held, so the answer stays true until it drops.
 */
bool umm_mmu_interval_read_retry(struct umm_mmu_interval_notifier *sub, unsigned long seq)
{
	return sub->invalidate_seq != seq;
}

/* The same test without the driver lock: a hint to give up early. */
bool umm_mmu_interval_check_retry(struct umm_mmu_interval_notifier *sub, unsigned long seq)
{
	return atomic_load_explicit((_Atomic unsigned long *)&sub->invalidate_seq,
				    memory_order_relaxed) != seq;
}

/*
 * umm_mmu_interval_set_seq - from ->invalidate, under the driver lock:
 * read_retry of any sequence handed out before now answers true.
 */
void umm_mmu_interval_set_seq(struct umm_mmu_interval_notifier *sub, unsigned long seq)
{
	atomic_store_explicit((_Atomic unsigned long *)&sub->invalidate_seq, seq, memory_order_relaxed);
}
