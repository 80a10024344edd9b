// SPDX-License-Identifier: MIT
/*
 * vmscan.c - the LRU lists and page reclaim: kswapd, direct reclaim,
 * umm_reclaim, MADV_PAGEOUT and MADV_COLD.
 *
 * LRU lists.  Pages that reclaim may take (anonymous pages, and page-cache
 * pages of real files) sit on one of four lists - inactive/active x
 * anon/file - or on the unevictable list once found mlocked.  Shared
 * anonymous (shmem) pages are on the anon lists and swap like anonymous
 * pages (their slot takes their place in the object's page cache); on a
 * machine without swap they live on the unevictable list, where migration
 * and compaction still move them.
 * The lists are sharded per (node, CPU slot), each shard with its own
 * lock, so a fault adds its page under a lock no other CPU wants (the
 * kernel gets the same effect with per-CPU folio batches); reclaim of a
 * node walks its shards in turn.  The LRU holds no reference: a page
 * whose last reference goes is taken off its list by put_page.
 *
 * Isolation.  Reclaim takes a page off its list together with a
 * reference (only if the count was not already zero), works on it with the
 * page lock held - trylock only: reclaim can run inside any allocation and
 * must never wait for a page lock someone holds while allocating - and
 * either frees it or puts it back.
 *
 * Second chance.  page_referenced() (accessed bits, and secondary MMUs'
 * clear_flush_young) decides: a referenced anonymous page, or a file page
 * referenced twice, goes back to the active list; the active lists are
 * aged into the inactive ones when they outgrow them, their accessed bits
 * cleared by page_clear_young() (secondary MMUs' clear_young).
 *
 * Freeing.  An anonymous page gets a swap slot and enters the swap cache,
 * try_to_unmap() leaves a swap entry in every PTE that mapped it, it is
 * written out if dirty, and then - only if nothing but reclaim and the
 * cache still hold it, checked by freezing the count from 2 to 0 - it
 * leaves the cache and its frame is free.  A file page is unmapped,
 * written back if dirty, and dropped from the page cache the same way.
 * Anything that fails on the way keeps the page, data intact.
 */
#include <stdio.h>
#include <time.h>

#include "internal.h"

enum lru_list {
	LRU_INACTIVE_ANON, LRU_ACTIVE_ANON, LRU_INACTIVE_FILE, LRU_ACTIVE_FILE,
	LRU_UNEVICTABLE, NR_LRU_LISTS
};

struct lruvec {
	spinlock_t lock;
	struct list_head lists[NR_LRU_LISTS];
	_Atomic long nr[NR_LRU_LISTS];
} __attribute__((aligned(64)));

struct scan_control {
	unsigned long nr_to_reclaim;
	unsigned long nr_reclaimed;
	unsigned long nr_scanned;
	bool ignore_references;		/* MADV_PAGEOUT: reclaim even if young */
};

static inline void list_del_entry(struct list_head *e)
{
	e->next->prev = e->prev;
	e->prev->next = e->next;
}

static enum lru_list page_lru(struct umm_page *page)
{
	uint32_t f = atomic_load(&page->flags);

	if (f & PG_unevictable)
		return LRU_UNEVICTABLE;
	return ((f & PG_swapbacked) ? LRU_INACTIVE_ANON : LRU_INACTIVE_FILE) + !!(f & PG_active);
}

/*
 * lock_page_lruvec - lock the shard @page is on.  A page changes lists only
 * with both shards' locks taken in turn, and joining one stores lru_shard
 * before it sets PG_lru: so under a shard's lock, PG_lru set and then
 * lru_shard naming this shard mean the page is on this shard's list and
 * stays there.  Return: the locked shard, or NULL (nothing locked) if the
 * page is on no list.
 */
static struct lruvec *lock_page_lruvec(struct umm *u, struct umm_page *page)
{
	for (;;) {
		uint16_t shard = atomic_load_explicit(&page->lru_shard, memory_order_acquire);
		struct lruvec *lv = &u->lruvecs[shard];

		if (!TestPageFlag(page, PG_lru))
			return NULL;
		spin_lock(&lv->lock);
		if (TestPageFlag(page, PG_lru) &&
		    atomic_load_explicit(&page->lru_shard, memory_order_acquire) == shard)
			return lv;
		spin_unlock(&lv->lock);
	}
}

/* ---- setup ---- */

int lru_init(struct umm *u)
{
	u->nr_lruvecs = u->nr_nodes * u->nr_pcps;
	u->lruvecs = aligned_alloc(64, sizeof(struct lruvec) * u->nr_lruvecs);
	if (!u->lruvecs)
		return -ENOMEM;
	for (unsigned int i = 0; i < u->nr_lruvecs; i++) {
		struct lruvec *lv = &u->lruvecs[i];

		spin_lock_init(&lv->lock);
		for (int l = 0; l < NR_LRU_LISTS; l++) {
			INIT_LIST_HEAD(&lv->lists[l]);
			atomic_init(&lv->nr[l], 0);
		}
	}
	pthread_mutex_init(&u->kswapd_lock, NULL);
	pthread_cond_init(&u->kswapd_cond, NULL);
	{
		pthread_rwlockattr_t a;

		/* validate must not starve behind a busy kswapd */
		pthread_rwlockattr_init(&a);
		pthread_rwlockattr_setkind_np(&a, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
		pthread_rwlock_init(&u->reclaim_lock, &a);
		pthread_rwlockattr_destroy(&a);
	}
	return 0;
}

/* Stop kswapd (for good: it is not restarted). */
void kswapd_stop(struct umm *u)
{
	pthread_mutex_lock(&u->kswapd_lock);
	u->kswapd_stop = true;
	pthread_cond_signal(&u->kswapd_cond);
	pthread_mutex_unlock(&u->kswapd_lock);
	if (u->kswapd_started)
		pthread_join(u->kswapd_thread, NULL);
	u->kswapd_started = false;
}

void lru_exit(struct umm *u)
{
	kswapd_stop(u);
	pthread_mutex_destroy(&u->kswapd_lock);
	pthread_cond_destroy(&u->kswapd_cond);
	pthread_rwlock_destroy(&u->reclaim_lock);
	free(u->lruvecs);
}

/* ---- adding, removing, isolating ---- */

/* Add @page to the LRU of its node, on this CPU's shard. */
static void add_page_to_lru(struct umm *u, struct umm_page *page, bool tail)
{
	unsigned int shard = page->node * u->nr_pcps + cpu_pcp_index(u);
	struct lruvec *lv = &u->lruvecs[shard];
	enum lru_list lru;

	spin_lock(&lv->lock);
	VM_BUG_ON(TestPageFlag(page, PG_lru));
	lru = page_lru(page);
	atomic_store_explicit(&page->lru_shard, (uint16_t)shard, memory_order_release);
	if (tail)
		list_add_tail(&page->lru, &lv->lists[lru]);
	else
		list_add(&page->lru, &lv->lists[lru]);
	atomic_fetch_add_explicit(&lv->nr[lru], 1, memory_order_relaxed);
	SetPageFlag(page, PG_lru);
	spin_unlock(&lv->lock);
}

/*
 * lru_cache_add - a page reclaim may take became used (a new anonymous
 * page, a page read into a file's cache).  Context: any; takes the shard
 * lock, innermost.
 */
void lru_cache_add(struct umm *u, struct umm_page *page)
{
	add_page_to_lru(u, page, false);
}

/* The page's last reference went: off its list before the frame is free. */
void lru_del_on_free(struct umm *u, struct umm_page *page)
{
	struct lruvec *lv = lock_page_lruvec(u, page);

	if (!lv)
		return;
	list_del_entry(&page->lru);
	atomic_fetch_sub_explicit(&lv->nr[page_lru(page)], 1, memory_order_relaxed);
	ClearPageFlag(page, PG_lru);
	spin_unlock(&lv->lock);
}

/*
 * isolate_lru_page - take @page off its list with a reference.
 * Return: true if it was on a list and is now ours to put back.
 */
bool isolate_lru_page(struct umm *u, struct umm_page *page)
{
	struct lruvec *lv;
	bool ret = false;

	lv = lock_page_lruvec(u, page);
	if (!lv)
		return false;
	if (get_page_unless_zero(page)) {
		list_del_entry(&page->lru);
		atomic_fetch_sub_explicit(&lv->nr[page_lru(page)], 1, memory_order_relaxed);
		ClearPageFlag(page, PG_lru);
		atomic_fetch_add(&u->vmstat[VMS_ISOLATED], 1);
		ret = true;
	}
	spin_unlock(&lv->lock);
	return ret;
}

/* Put an isolated page back (on the list its flags now say) and drop our reference. */
void putback_lru_page(struct umm *u, struct umm_page *page)
{
	atomic_fetch_sub(&u->vmstat[VMS_ISOLATED], 1);
	add_page_to_lru(u, page, false);
	put_page(u, page);
}

static void putback_lru_page_tail(struct umm *u, struct umm_page *page)
{
	atomic_fetch_sub(&u->vmstat[VMS_ISOLATED], 1);
	add_page_to_lru(u, page, true);
	put_page(u, page);
}

/*
 * Isolate up to @nr pages from the tail of @lru in @lv into @out.
 * Return: how many.
 */
static unsigned long isolate_lru_pages(struct umm *u, struct lruvec *lv, enum lru_list lru,
				       unsigned long nr, struct umm_page **out)
{
	unsigned long got = 0, looked = 0;

	spin_lock(&lv->lock);
	while (got < nr && looked++ < 4 * nr && !list_empty(&lv->lists[lru])) {
		struct umm_page *page = list_entry(lv->lists[lru].prev, struct umm_page, lru);

		list_del_entry(&page->lru);
		if (!get_page_unless_zero(page)) {
			/* being freed: put_page will look for it on a list */
			list_add(&page->lru, &lv->lists[lru]);
			continue;
		}
		atomic_fetch_sub_explicit(&lv->nr[lru], 1, memory_order_relaxed);
		ClearPageFlag(page, PG_lru);
		out[got++] = page;
	}
	spin_unlock(&lv->lock);
	atomic_fetch_add(&u->vmstat[VMS_ISOLATED], got);
	return got;
}

/* ---- freeing a page reclaim has unmapped ---- */

/*
 * remove_mapping - take @page out of the swap cache or the page cache and
 * free it, if nothing but reclaim and that cache hold it.
 * Return: true if the frame is free.  Context: page locked and isolated.
 */
static bool remove_mapping(struct umm *u, struct umm_page *page)
{
	uintptr_t mapping = atomic_load_explicit(&page->mapping, memory_order_relaxed);
	int32_t two = 2;

	if (TestPageFlag(page, PG_swapcache) && mapping && !PageAnon(page)) {
		/*
		 * shmem: the page cache and the swap cache both hold it; its
		 * slot takes its place in the page cache, with a swap count.
		 */
		struct address_space *as = (struct address_space *)mapping;
		int32_t three = 3;

		pthread_mutex_lock(&as->i_pages_lock);
		if (radix_lookup(&as->i_pages, page->index) != page ||
		    !atomic_compare_exchange_strong(&page->_refcount, &three, 0)) {
			pthread_mutex_unlock(&as->i_pages_lock);
			return false;
		}
		if (swap_duplicate(u, page->private)) {
			atomic_store(&page->_refcount, 3);	/* unfreeze: it stays */
			pthread_mutex_unlock(&as->i_pages_lock);
			return false;
		}
		radix_replace(&as->i_pages, page->index, swap_radix_entry(page->private));
		as->nrpages--;
		as->nrswapped++;
		pthread_mutex_unlock(&as->i_pages_lock);
		delete_from_swap_cache(u, page);
		atomic_store_explicit(&page->mapping, 0, memory_order_relaxed);
	} else if (TestPageFlag(page, PG_swapcache)) {
		/*
		 * anon, or with no mapping: read in by a fault that then lost
		 * its race, or shmem truncated while reclaim held it.  A
		 * lookup takes its reference only from a non-zero count.
		 */
		if (!atomic_compare_exchange_strong(&page->_refcount, &two, 0))
			return false;
		delete_from_swap_cache(u, page);
	} else {
		struct address_space *as = (struct address_space *)mapping;

		if (!as || PageAnon(page))
			return false;
		/* page-cache lookups take their reference under i_pages_lock */
		pthread_mutex_lock(&as->i_pages_lock);
		if (!atomic_compare_exchange_strong(&page->_refcount, &two, 0)) {
			pthread_mutex_unlock(&as->i_pages_lock);
			return false;
		}
		radix_delete(&as->i_pages, page->index);
		as->nrpages--;
		pthread_mutex_unlock(&as->i_pages_lock);
	}
	atomic_fetch_sub(&u->vmstat[VMS_ISOLATED], 1);
	ClearPageFlag(page, PG_locked);		/* nobody can wait: nobody has a reference */
	free_unref_page(u, page);
	return true;
}

enum page_outcome { PAGE_KEEP, PAGE_ACTIVATE, PAGE_CULL, PAGE_FREED };

/*
 * shrink_page - try to free one isolated page.
 * Return: what became of it (the caller puts back all but PAGE_FREED).
 */
static enum page_outcome shrink_page(struct umm *u, struct umm_page *page,
				     struct scan_control *sc)
{
	bool anon = TestPageFlag(page, PG_swapbacked);
	enum page_outcome ret = PAGE_KEEP;
	uint64_t slot;

	if (!trylock_page(page))
		return PAGE_KEEP;
	if (TestPageFlag(page, PG_mlocked)) {
		ret = PAGE_CULL;
		goto unlock;
	}
	if (!sc->ignore_references && page_mapcount(page) > 0) {
		int referenced = page_referenced(page, true);
		bool was = atomic_fetch_and(&page->flags, ~PG_referenced) & PG_referenced;

		if (referenced) {
			if (anon || was || referenced > 1) {
				ret = PAGE_ACTIVATE;
				goto unlock;
			}
			SetPageFlag(page, PG_referenced);
			goto unlock;
		}
	}
	if (anon && !TestPageFlag(page, PG_swapcache)) {
		if (!PageAnon(page)) {
			if (!atomic_load_explicit(&page->mapping, memory_order_relaxed))
				goto unlock;	/* shmem truncated: freed once we let go */
			if (!u->swap) {
				ret = PAGE_CULL;	/* shmem with no swap: nowhere to go */
				goto unlock;
			}
		}
		if (!u->swap || !(slot = get_swap_slot(u))) {
			ret = PAGE_ACTIVATE;
			goto unlock;
		}
		add_to_swap_cache(u, page, slot);
		SetPageFlag(page, PG_dirty);	/* the slot holds nothing yet */
	}
	if (page_mapcount(page) > 0 && !try_to_unmap(page)) {
		ret = TestPageFlag(page, PG_mlocked) ? PAGE_CULL : PAGE_ACTIVATE;
		goto unlock;
	}
	if (TestPageFlag(page, PG_dirty)) {
		int err;

		ClearPageFlag(page, PG_dirty);
		if (TestPageFlag(page, PG_swapcache)) {
			err = swap_writepage(u, page, page->private);
		} else {
			err = filemap_write_page(page);
			if (!err)
				atomic_fetch_add(&u->vmstat[VMS_PGWRITEBACK], 1);
		}
		if (err) {
			SetPageFlag(page, PG_dirty);
			ret = PAGE_ACTIVATE;
			goto unlock;
		}
	}
	if (page_mapcount(page) > 0 || !remove_mapping(u, page))
		goto unlock;
	return PAGE_FREED;
unlock:
	unlock_page(page);
	return ret;
}

/* Reclaim from an isolated batch; put back what stays. */
static void shrink_page_list(struct umm *u, struct umm_page **pages, unsigned long nr,
			     struct scan_control *sc)
{
	for (unsigned long i = 0; i < nr; i++) {
		struct umm_page *page = pages[i];

		sc->nr_scanned++;
		switch (shrink_page(u, page, sc)) {
		case PAGE_FREED:
			sc->nr_reclaimed++;
			continue;
		case PAGE_ACTIVATE:
			SetPageFlag(page, PG_active);
			atomic_fetch_add(&u->vmstat[VMS_PGACTIVATE], 1);
			break;
		case PAGE_CULL:
			SetPageFlag(page, PG_unevictable);
			ClearPageFlag(page, PG_active);
			break;
		case PAGE_KEEP:
			break;
		}
		putback_lru_page(u, page);
	}
	atomic_fetch_add(&u->vmstat[VMS_PGSCAN], nr);
}

#define SWAP_CLUSTER_MAX 32

/* Age up to @nr pages from the tail of an active list into its inactive list. */
static void shrink_active_list(struct umm *u, struct lruvec *lv, enum lru_list lru,
			       unsigned long nr)
{
	struct umm_page *pages[SWAP_CLUSTER_MAX];

	while (nr) {
		unsigned long got = isolate_lru_pages(u, lv, lru, min_t(unsigned long, nr,
									SWAP_CLUSTER_MAX), pages);

		if (!got)
			break;
		nr -= min_t(unsigned long, nr, got);
		for (unsigned long i = 0; i < got; i++) {
			/*
			 * the accessed bits start over: the page must earn its
			 * way back (secondary MMUs hear clear_young: no flush)
			 */
			if (page_mapcount(pages[i]) > 0)
				page_clear_young(pages[i]);
			ClearPageFlag(pages[i], PG_active | PG_referenced);
			atomic_fetch_add(&u->vmstat[VMS_PGDEACTIVATE], 1);
			putback_lru_page(u, pages[i]);
		}
	}
}

static void shrink_inactive_list(struct umm *u, struct lruvec *lv, enum lru_list lru,
				 unsigned long nr, struct scan_control *sc)
{
	struct umm_page *pages[SWAP_CLUSTER_MAX];

	while (nr && sc->nr_reclaimed < sc->nr_to_reclaim) {
		/* no more than is still wanted: umm_reclaim(u, 1) frees one page */
		unsigned long want = min_t(unsigned long, min_t(unsigned long, nr, SWAP_CLUSTER_MAX),
					   sc->nr_to_reclaim - sc->nr_reclaimed);
		unsigned long got = isolate_lru_pages(u, lv, lru, want, pages);

		if (!got)
			break;
		nr -= min_t(unsigned long, nr, got);
		shrink_page_list(u, pages, got, sc);
	}
}

/*
 * One list pair at one priority: scan its size >> @prio pages (at least a
 * batch), ageing the active list first when it outgrew the inactive one.
 */
static void shrink_list_pair(struct umm *u, struct lruvec *lv, enum lru_list inactive,
			     int prio, struct scan_control *sc)
{
	long ni = atomic_load(&lv->nr[inactive]), na = atomic_load(&lv->nr[inactive + 1]);
	unsigned long nr = (unsigned long)(ni + na) >> prio;

	if (ni + na <= 0)
		return;
	nr = max_t(unsigned long, nr, SWAP_CLUSTER_MAX);
	if (na > ni)
		shrink_active_list(u, lv, inactive + 1, min_t(unsigned long, nr, (unsigned long)na));
	shrink_inactive_list(u, lv, inactive, nr, sc);
}

#define DEF_PRIORITY 12

/*
 * shrink_node - reclaim from node @nid until sc->nr_to_reclaim pages are
 * free: passes over every shard at rising pressure, each scanning a
 * larger part of the lists (1/4096 of them, then 1/2048, ... all of them),
 * as the kernel's priorities do, so a list of referenced pages is aged and
 * then reclaimed rather than rotated forever.
 */
static void shrink_node(struct umm *u, unsigned int nid, struct scan_control *sc)
{
	unsigned int first = nid * u->nr_pcps;

	for (int prio = DEF_PRIORITY; prio >= 0 && sc->nr_reclaimed < sc->nr_to_reclaim; prio--) {
		for (unsigned int i = 0; i < u->nr_pcps && sc->nr_reclaimed < sc->nr_to_reclaim; i++) {
			struct lruvec *lv = &u->lruvecs[first + i];

			shrink_list_pair(u, lv, LRU_INACTIVE_FILE, prio, sc);
			if (u->swap && nr_swap_free(u))
				shrink_list_pair(u, lv, LRU_INACTIVE_ANON, prio, sc);
		}
	}
}

static unsigned long do_reclaim(struct umm *u, int nid, unsigned long nr, bool refs)
{
	struct scan_control sc = { .nr_to_reclaim = nr, .ignore_references = !refs };

	for (unsigned int i = 0; i < u->nr_nodes && sc.nr_reclaimed < nr; i++) {
		unsigned int n = (unsigned int)((nid < 0 ? 0 : nid) + (int)i) % u->nr_nodes;

		shrink_node(u, n, &sc);
	}
	atomic_fetch_add(&u->vmstat[VMS_PGSTEAL], sc.nr_reclaimed);
	return sc.nr_reclaimed;
}

/*
 * try_to_free_pages - direct reclaim: an allocation found no free frame.
 * Return: pages freed.  Context: no spinlock held; may take page locks
 * (trylock), anon_vma and i_mmap rwsems, PTLs.
 */
unsigned long try_to_free_pages(struct umm *u, int nid)
{
	atomic_fetch_add(&u->vmstat[VMS_DIRECT_RECLAIMS], 1);
	return do_reclaim(u, nid, SWAP_CLUSTER_MAX, true);
}

int umm_reclaim(struct umm *u, unsigned long nr_pages, unsigned long *nr_reclaimed)
{
	unsigned long done;

	if (!u)
		return -EINVAL;
	done = nr_pages ? do_reclaim(u, -1, nr_pages, true) : 0;
	if (nr_reclaimed)
		*nr_reclaimed = done;
	return 0;
}

/* ---- kswapd ---- */

static uint64_t node_free(struct umm *u, unsigned int nid)
{
	return atomic_load_explicit(&u->nodes[nid].nr_free, memory_order_relaxed);
}

static bool node_needs_reclaim(struct umm *u, unsigned int nid)
{
	return node_free(u, nid) < u->nodes[nid].wmark_low;
}

static void *kswapd(void *arg)
{
	struct umm *u = arg;

	pthread_mutex_lock(&u->kswapd_lock);
	while (!u->kswapd_stop) {
		bool progress = false;

		pthread_mutex_unlock(&u->kswapd_lock);
		for (unsigned int nid = 0; nid < u->nr_nodes; nid++) {
			atomic_fetch_add(&u->vmstat[VMS_KSWAPD_RUNS], 1);
			while (node_free(u, nid) < u->nodes[nid].wmark_high && !u->kswapd_stop) {
				struct scan_control sc = { .nr_to_reclaim = SWAP_CLUSTER_MAX };

				pthread_rwlock_rdlock(&u->reclaim_lock);
				shrink_node(u, nid, &sc);
				pthread_rwlock_unlock(&u->reclaim_lock);
				atomic_fetch_add(&u->vmstat[VMS_PGSTEAL], sc.nr_reclaimed);
				if (!sc.nr_reclaimed)
					break;
				progress = true;
			}
		}
		pthread_mutex_lock(&u->kswapd_lock);
		u->kswapd_wake = false;
		if (!progress) {
			/* nothing reclaimable now: don't spin, wait to be asked again */
			struct timespec ts;

			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += 20 * 1000000;
			if (ts.tv_nsec >= 1000000000) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000;
			}
			pthread_cond_timedwait(&u->kswapd_cond, &u->kswapd_lock, &ts);
		}
		while (!u->kswapd_wake && !u->kswapd_stop)
			pthread_cond_wait(&u->kswapd_cond, &u->kswapd_lock);
	}
	pthread_mutex_unlock(&u->kswapd_lock);
	return NULL;
}

/* An allocation took node @nid below its low watermark. */
void wakeup_kswapd(struct umm *u, unsigned int nid)
{
	if (!node_needs_reclaim(u, nid) || atomic_load_explicit(&u->kswapd_wake, memory_order_relaxed))
		return;
	pthread_mutex_lock(&u->kswapd_lock);
	if (!u->kswapd_started && !u->kswapd_stop)
		u->kswapd_started = !pthread_create(&u->kswapd_thread, NULL, kswapd, u);
	u->kswapd_wake = true;
	pthread_cond_signal(&u->kswapd_cond);
	pthread_mutex_unlock(&u->kswapd_lock);
}

/* ---- madvise and mlock ---- */

struct page_list {
	struct umm_page **pages;
	unsigned long nr, cap;
};

/*
 * collect_pages - every normal page mapped in [start, end) of @mm for which
 * @want (called under the PTE lock) says yes, with a reference, into @pl.
 * Context: mmap_lock held.
 */
static void collect_pages(struct umm_mm *mm, uint64_t start, uint64_t end,
			  bool (*want)(struct umm_page *page, _Atomic pte_t *ptep),
			  struct page_list *pl)
{
	for (uint64_t addr = start; addr < end; addr += PAGE_SIZE) {
		struct pt_page *pt;
		_Atomic pte_t *ptep = pte_offset(mm, addr, false, &pt);
		struct umm_page *page;
		pte_t pte;

		if (!ptep) {
			addr = ((addr + PMD_SIZE) & PMD_MASK) - PAGE_SIZE;
			continue;
		}
		if (pl->nr == pl->cap) {
			unsigned long cap = pl->cap ? pl->cap * 2 : 64;
			struct umm_page **p = realloc(pl->pages, cap * sizeof(*p));

			if (!p)
				return;
			pl->pages = p;
			pl->cap = cap;
		}
		spin_lock(pte_lockptr(pt));
		pte = atomic_load_explicit(ptep, memory_order_relaxed);
		page = pte_present(pte) && !pte_special(pte) ? pfn_to_page(mm->u, pte_pfn(pte)) : NULL;
		if (page && want(page, ptep)) {
			get_page(page);
			pl->pages[pl->nr++] = page;
		}
		spin_unlock(pte_lockptr(pt));
	}
}

/* MADV_COLD/PAGEOUT leave pages other mappings use alone, and age the rest. */
static bool want_private(struct umm_page *page, _Atomic pte_t *ptep)
{
	if (page_mapcount(page) != 1 || PageKsm(page) || !(atomic_load(ptep) & _PAGE_PRESENT))
		return false;
	atomic_fetch_and(ptep, ~_PAGE_ACCESSED);
	return true;
}

static void madv_collect(struct vm_area_struct *vma, uint64_t start, uint64_t end, void *arg)
{
	collect_pages(vma->vm_mm, start, end, want_private, arg);
}

/*
 * madvise_cold_or_pageout - MADV_COLD moves the range's private pages to
 * the tail of their inactive list; MADV_PAGEOUT reclaims them now (swap
 * for anonymous pages, writeback for file pages), references or not.
 * Return: 0 or -ENOMEM for a hole.  Context: mmap_lock held for read; the
 * caller has refused ranges with mlocked VMAs.
 */
int madvise_cold_or_pageout(struct umm_mm *mm, uint64_t start, uint64_t end, bool pageout)
{
	struct umm *u = mm->u;
	struct page_list pl = { 0 };
	struct scan_control sc = { .ignore_references = true };
	unsigned long nr = 0;
	int err = walk_vma_range(mm, start, end, madv_collect, &pl);

	/* isolate what is on the LRU; the rest is busy elsewhere */
	for (unsigned long i = 0; i < pl.nr; i++) {
		if (isolate_lru_page(u, pl.pages[i]))
			pl.pages[nr++] = pl.pages[i];
		put_page(u, pl.pages[i]);
	}
	if (pageout) {
		sc.nr_to_reclaim = nr;
		for (unsigned long i = 0; i < nr; i += SWAP_CLUSTER_MAX)
			shrink_page_list(u, pl.pages + i, min_t(unsigned long, SWAP_CLUSTER_MAX, nr - i),
					 &sc);
		atomic_fetch_add(&u->vmstat[VMS_PGSTEAL], sc.nr_reclaimed);
	} else {
		for (unsigned long i = 0; i < nr; i++) {
			ClearPageFlag(pl.pages[i], PG_active | PG_referenced);
			atomic_fetch_add(&u->vmstat[VMS_PGDEACTIVATE], 1);
			putback_lru_page_tail(u, pl.pages[i]);
		}
	}
	free(pl.pages);
	return err;
}

static bool want_mlocked(struct umm_page *page, _Atomic pte_t *ptep)
{
	return TestPageFlag(page, PG_mlocked);
}

/*
 * munlock_range - [start, end) of @mm is no longer locked: its pages that
 * reclaim found mlocked become evictable again (if another locked mapping
 * still holds one, reclaim will find that out again).
 * Context: mmap_lock held.
 */
void munlock_range(struct umm_mm *mm, uint64_t start, uint64_t end)
{
	struct page_list pl = { 0 };

	collect_pages(mm, start, end, want_mlocked, &pl);
	for (unsigned long i = 0; i < pl.nr; i++) {
		struct umm_page *page = pl.pages[i];

		if (isolate_lru_page(mm->u, page)) {
			ClearPageFlag(page, PG_mlocked | PG_unevictable);
			putback_lru_page(mm->u, page);
		}
		put_page(mm->u, page);
	}
	free(pl.pages);
}

/* ---- figures ---- */

void umm_get_vmscan_stat(struct umm *u, struct umm_vmscan_stat *st)
{
	long nr[NR_LRU_LISTS] = { 0 };

	if (!st)
		return;
	memset(st, 0, sizeof(*st));
	if (!u)
		return;
	for (unsigned int i = 0; i < u->nr_lruvecs; i++)
		for (int l = 0; l < NR_LRU_LISTS; l++)
			nr[l] += atomic_load(&u->lruvecs[i].nr[l]);
	st->nr_inactive_anon = nr[LRU_INACTIVE_ANON];
	st->nr_active_anon = nr[LRU_ACTIVE_ANON];
	st->nr_inactive_file = nr[LRU_INACTIVE_FILE];
	st->nr_active_file = nr[LRU_ACTIVE_FILE];
	st->nr_unevictable = nr[LRU_UNEVICTABLE];
	st->nr_isolated = atomic_load(&u->vmstat[VMS_ISOLATED]);
	if (u->swap) {
		st->swap_slots = u->swap->nr_slots - 1;
		st->swap_free = nr_swap_free(u);
		st->nr_swapcache = atomic_load(&u->swap->nr_swapcache);
	}
	st->pgscan = atomic_load(&u->vmstat[VMS_PGSCAN]);
	st->pgsteal = atomic_load(&u->vmstat[VMS_PGSTEAL]);
	st->pgactivate = atomic_load(&u->vmstat[VMS_PGACTIVATE]);
	st->pgdeactivate = atomic_load(&u->vmstat[VMS_PGDEACTIVATE]);
	st->pswpin = atomic_load(&u->vmstat[VMS_PSWPIN]);
	st->pswpout = atomic_load(&u->vmstat[VMS_PSWPOUT]);
	st->pgwriteback = atomic_load(&u->vmstat[VMS_PGWRITEBACK]);
	st->kswapd_runs = atomic_load(&u->vmstat[VMS_KSWAPD_RUNS]);
	st->direct_reclaims = atomic_load(&u->vmstat[VMS_DIRECT_RECLAIMS]);
	st->pgmigrate_success = atomic_load(&u->vmstat[VMS_PGMIGRATE_SUCCESS]);
	st->pgmigrate_fail = atomic_load(&u->vmstat[VMS_PGMIGRATE_FAIL]);
	st->compact_migrated = atomic_load(&u->vmstat[VMS_COMPACT_MIGRATED]);
	st->swap_read_errors = atomic_load(&u->vmstat[VMS_SWAP_READ_ERRORS]);
	st->swap_write_errors = atomic_load(&u->vmstat[VMS_SWAP_WRITE_ERRORS]);
}

/* The LRU lists' census for umm_validate: every page on a list says so. */
int lru_census_check(struct umm *u, char *msg, size_t len)
{
	for (unsigned int i = 0; i < u->nr_lruvecs; i++) {
		struct lruvec *lv = &u->lruvecs[i];

		spin_lock(&lv->lock);
		for (int l = 0; l < NR_LRU_LISTS; l++) {
			struct umm_page *page;
			long n = 0;

			list_for_each_entry(page, &lv->lists[l], lru) {
				n++;
				if (!TestPageFlag(page, PG_lru) || page_lru(page) != (enum lru_list)l ||
				    atomic_load(&page->lru_shard) != i || !page_count(page)) {
					snprintf(msg, len, "pfn %llu on LRU list %d of shard %u: flags %#x "
						 "refcount %d", (unsigned long long)page_to_pfn(u, page), l, i,
						 atomic_load(&page->flags), page_count(page));
					spin_unlock(&lv->lock);
					return -EUCLEAN;
				}
			}
			if (n != atomic_load(&lv->nr[l])) {
				snprintf(msg, len, "LRU list %d of shard %u holds %ld pages, counter says %ld",
					 l, i, n, atomic_load(&lv->nr[l]));
				spin_unlock(&lv->lock);
				return -EUCLEAN;
			}
		}
		spin_unlock(&lv->lock);
	}
	return 0;
}
