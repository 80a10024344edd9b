// SPDX-License-Identifier: MIT
/*
 * migrate.c - moving a page to another frame: move_pages(2) and compaction.
 *
 * A page is moved the way Linux moves it.  With the page isolated from the
 * LRU and locked, try_to_migrate() replaces every PTE that maps it with a
 * migration entry (the old pfn, and whether the PTE was writable), each
 * under a MIGRATE invalidation and a TLB flush, so no access - CPU or
 * secondary MMU - can still reach the old frame.  Accesses that meet a
 * migration entry wait for the page lock.  Then, if nothing but the
 * migration (and the page or swap cache) holds the old page - checked by
 * freezing its count to zero, so no new reference can appear - the cache
 * slot is pointed at the new frame, the contents and state are copied, and
 * remove_migration_ptes() walks the rmap again, turning every migration
 * entry into a PTE for the new frame.  If anything holds the old page, the
 * entries go back to it and the move is retried or reported busy.
 *
 * The anonymous page's anon_vma is pinned before the PTEs go, so the
 * restoring walk can find the VMAs even while nothing maps the page; a
 * KSM page is walked through its stable node, which learns the new frame.
 * Fork and mremap wait out migration entries rather than copying or
 * moving them, so the restoring walk cannot miss one.
 */
#include <sched.h>

#include "internal.h"

struct migrate_arg {
	struct umm_page *old, *new;
	void *owner;			/* the MIGRATE event's owner */
};

static bool try_to_migrate_one(struct umm_page *page, struct vm_area_struct *vma, uint64_t addr,
			       void *arg)
{
	struct migrate_arg *ma = arg;
	struct umm_mm *mm = vma->vm_mm;
	struct mmu_notifier_range range;
	struct pt_page *pt;
	_Atomic pte_t *ptep;
	pte_t old;

	mmu_notifier_range_init(&range, UMM_MMU_NOTIFY_MIGRATE, mm, addr, addr + PAGE_SIZE);
	range.r.owner = ma->owner;
	mmu_notifier_invalidate_range_start(&range);
	ptep = page_vma_mapped(page, vma, addr, &pt);
	if (ptep) {
		/*
		 * Writability cannot change under the PTE lock, so the entry's
		 * kind is known before the exchange; the exchange returns the
		 * dirty bit an access in flight may have just set.
		 */
		old = atomic_load_explicit(ptep, memory_order_relaxed);
		old = atomic_exchange_explicit(ptep, swp_entry_pte(pte_write(old) ?
				SWP_MIGRATION_WRITE : SWP_MIGRATION_READ, page_to_pfn(mm->u, page)),
				memory_order_seq_cst);
		flush_tlb_mm(mm);
		mmu_notifier_invalidate_secondary_tlbs(mm, addr, addr + PAGE_SIZE);
		if (old & _PAGE_DIRTY)
			SetPageFlag(page, PG_dirty);
		page_remove_rmap(page, vma);	/* the RSS counter stays: the page is in transit */
		spin_unlock(pte_lockptr(pt));
		put_page(mm->u, page);		/* the PTE's reference */
	}
	mmu_notifier_invalidate_range_end(&range);
	return true;
}

/*
 * try_to_migrate - replace every PTE of @page with a migration entry.
 * Return: true if nothing maps it any more.  Context: page locked, isolated.
 */
static bool try_to_migrate(struct umm_page *page, struct migrate_arg *ma,
			   struct anon_vma *av)
{
	struct rmap_walk_control rwc = {
		.rmap_one = try_to_migrate_one, .arg = ma, .anon_vma = av,
	};

	rmap_walk(page, &rwc);
	return page_mapcount(page) <= 0;
}

static bool remove_migration_pte(struct umm_page *page, struct vm_area_struct *vma, uint64_t addr,
				 void *arg)
{
	struct migrate_arg *ma = arg;
	struct umm_mm *mm = vma->vm_mm;
	struct umm *u = mm->u;
	struct pt_page *pt;
	_Atomic pte_t *ptep;
	pte_t pte, entry;

	if (addr < vma->vm_start || addr >= vma->vm_end)
		return true;
	ptep = pte_offset(mm, addr, false, &pt);
	if (!ptep)
		return true;
	spin_lock(pte_lockptr(pt));
	pte = atomic_load_explicit(ptep, memory_order_relaxed);
	if (!is_migration_pte(pte) || swp_offset(pte) != page_to_pfn(u, ma->old)) {
		spin_unlock(pte_lockptr(pt));
		return true;
	}
	entry = pfn_pte(page_to_pfn(u, ma->new), vma_pte_prot(vma->vm_flags) | _PAGE_ACCESSED);
	if (swp_type(pte) == SWP_MIGRATION_WRITE && (vma->vm_flags & VM_WRITE))
		entry |= _PAGE_RW | _PAGE_DIRTY;
	get_page(ma->new);
	atomic_fetch_add_explicit(&ma->new->_mapcount, 1, memory_order_relaxed);
	atomic_store_explicit(ptep, entry, memory_order_seq_cst);
	spin_unlock(pte_lockptr(pt));
	return true;
}

/* Put the PTEs back, on @ma->new (moved) or on @ma->old itself (backed out). */
static void remove_migration_ptes(struct migrate_arg *ma, struct anon_vma *av)
{
	struct rmap_walk_control rwc = {
		.rmap_one = remove_migration_pte, .arg = ma, .anon_vma = av,
	};

	rmap_walk(ma->new, &rwc);
}

/*
 * migrate_page_move_mapping - the old page's references are ours and its
 * cache's only: freeze them, and point the cache at the new page.
 * Return: 0, or -EAGAIN if someone else holds a reference.
 */
static int migrate_page_move_mapping(struct umm *u, struct umm_page *old, struct umm_page *new)
{
	int32_t expected = 1;

	if (TestPageFlag(old, PG_swapcache)) {
		uint64_t slot = old->private;

		expected = 2;
		if (!atomic_compare_exchange_strong(&old->_refcount, &expected, 0))
			return -EAGAIN;
		new->private = slot;
		SetPageFlag(new, PG_swapcache);
		atomic_store_explicit(&new->_refcount, 2, memory_order_relaxed);
		atomic_store_explicit(&u->swap->cache[slot], new, memory_order_release);
		ClearPageFlag(old, PG_swapcache);
		old->private = 0;
	} else if (!PageAnon(old)) {
		struct address_space *as = (struct address_space *)
			atomic_load_explicit(&old->mapping, memory_order_relaxed);

		if (!as)
			return -EAGAIN;		/* truncated meanwhile */
		expected = 2;
		pthread_mutex_lock(&as->i_pages_lock);
		if (!atomic_compare_exchange_strong(&old->_refcount, &expected, 0)) {
			pthread_mutex_unlock(&as->i_pages_lock);
			return -EAGAIN;
		}
		VM_BUG_ON(radix_replace(&as->i_pages, old->index, new) != old);
		atomic_store_explicit(&new->_refcount, 2, memory_order_relaxed);
		pthread_mutex_unlock(&as->i_pages_lock);
	} else {
		if (!atomic_compare_exchange_strong(&old->_refcount, &expected, 0))
			return -EAGAIN;
		atomic_store_explicit(&new->_refcount, 1, memory_order_relaxed);
	}
	return 0;
}

#define PAGE_STATE_FLAGS (PG_dirty | PG_swapbacked | PG_active | PG_referenced | PG_mlocked | \
			  PG_unevictable)

/*
 * migrate_one - move @page, isolated and locked, to a new frame on node
 * @nid.  On success @page is freed and the new page put on the LRU.
 * Return: 0, -ENOMEM (no frame there), -EAGAIN (busy now), -EBUSY.
 * Context: no locks but the page lock; the caller's isolation reference.
 */
static int migrate_one(struct umm *u, struct umm_page *page, int nid, void *owner)
{
	struct migrate_arg ma = { .old = page, .owner = owner };
	struct anon_vma *av = NULL;
	struct umm_page *new;
	int err;

	new = alloc_page(u, nid, ALLOC_THISNODE | ALLOC_NORECLAIM);
	if (!new)
		return -ENOMEM;
	trylock_page(new);
	if (PageAnon(page) && !PageKsm(page)) {	/* KSM pages: rmap_walk_ksm */
		av = page_get_anon_vma(page);
		if (!av && page_mapcount(page) > 0) {
			err = -EAGAIN;
			goto out_new;
		}
	}
	/* the new page takes the old one's place in the rmap before any PTE moves */
	new->index = page->index;
	atomic_store_explicit(&new->mapping, atomic_load(&page->mapping), memory_order_relaxed);
	ma.new = new;

	if (page_mapcount(page) > 0 && !try_to_migrate(page, &ma, av)) {
		err = -EAGAIN;
		goto restore;
	}
	err = migrate_page_move_mapping(u, page, new);
	if (err)
		goto restore;
	if (PageKsm(new))
		ksm_migrate_page(u, new, page);	/* the stable node follows the frame */
	copy_page(page_address(u, new), page_address(u, page));
	atomic_fetch_or(&new->flags, atomic_load(&page->flags) & PAGE_STATE_FLAGS);
	remove_migration_ptes(&ma, av);
	if (av)
		put_anon_vma(av);
	/* the old frame: nobody can reach it; wake the faults waiting on it */
	atomic_store_explicit(&page->mapping, 0, memory_order_release);
	atomic_fetch_and(&page->flags, ~PAGE_STATE_FLAGS);
	unlock_page(page);
	atomic_fetch_sub(&u->vmstat[VMS_ISOLATED], 1);
	free_unref_page(u, page);
	unlock_page(new);
	atomic_fetch_add(&u->vmstat[VMS_ISOLATED], 1);
	putback_lru_page(u, new);		/* drops the reference alloc_page gave */
	vmstat_inc(u, VMS_PGMIGRATE_SUCCESS);
	return 0;

restore:
	/* put every entry made so far back on the old page */
	ma.new = page;
	remove_migration_ptes(&ma, av);
	atomic_store_explicit(&new->mapping, 0, memory_order_relaxed);
	if (av)
		put_anon_vma(av);
out_new:
	unlock_page(new);
	put_page(u, new);
	return err;
}

/*
 * migrate_pages - move an isolated, referenced page to node @nid, retrying
 * transient failures as the kernel does.  The page is put back on the LRU
 * (and our reference dropped) whatever happens.  Return: 0 or -errno.
 */
static int migrate_page_to(struct umm *u, struct umm_page *page, int nid)
{
	int err = -EAGAIN;

	for (int pass = 0; pass < 10 && err == -EAGAIN; pass++) {
		if (pass)
			sched_yield();
		lock_page(page);
		err = migrate_one(u, page, nid, NULL);
		if (err)
			unlock_page(page);
	}
	if (err) {
		vmstat_inc(u, VMS_PGMIGRATE_FAIL);
		putback_lru_page(u, page);
		return err == -EAGAIN ? -EBUSY : err;
	}
	return 0;
}

/* ---- move_pages(2) ---- */

/*
 * The page mapped at @addr, referenced.  Return: the page, or NULL with
 * *@err set (-EFAULT no VMA, -ENOENT nothing or the zero page).
 */
static struct umm_page *page_for_migration(struct umm_mm *mm, uint64_t addr, int *err)
{
	struct vm_area_struct *vma = find_vma(mm, addr);
	struct umm_page *page = NULL;
	struct pt_page *pt;
	_Atomic pte_t *ptep;

	*err = -EFAULT;
	if (!vma || vma->vm_start > addr)
		return NULL;
	*err = -ENOENT;
	ptep = pte_offset(mm, addr, false, &pt);
	if (!ptep)
		return NULL;
	spin_lock(pte_lockptr(pt));
	{
		pte_t pte = atomic_load_explicit(ptep, memory_order_relaxed);

		if (pte_present(pte) && !pte_special(pte)) {
			page = pfn_to_page(mm->u, pte_pfn(pte));
			get_page(page);
		}
	}
	spin_unlock(pte_lockptr(pt));
	return page;
}

int umm_move_pages(struct umm_mm *mm, unsigned long count, const uint64_t *addrs,
		   const int *nodes, int *status)
{
	struct umm *u;

	if (!mm || (count && (!addrs || !status)))
		return -EINVAL;
	u = mm->u;
	for (unsigned long i = 0; nodes && i < count; i++)
		if (nodes[i] < 0 || (unsigned int)nodes[i] >= u->nr_nodes)
			return -ENODEV;		/* as do_pages_move: no such node online */
	for (unsigned long i = 0; i < count; i++) {
		uint64_t addr = addrs[i] & PAGE_MASK;
		struct umm_page *page;
		int err;

		if (addrs[i] >= UMM_TASK_SIZE) {
			status[i] = -EFAULT;
			continue;
		}
		pthread_rwlock_rdlock(&mm->mmap_lock);
		page = page_for_migration(mm, addr, &err);
		pthread_rwlock_unlock(&mm->mmap_lock);
		if (!page) {
			status[i] = err;
			continue;
		}
		if (!nodes || page->node == (unsigned int)nodes[i]) {
			status[i] = page->node;
			put_page(u, page);
			continue;
		}
		if (!isolate_lru_page(u, page)) {
			status[i] = -EBUSY;	/* not on the LRU: being reclaimed or moved */
			put_page(u, page);
			continue;
		}
		put_page(u, page);
		err = migrate_page_to(u, page, nodes[i]);
		status[i] = err ? err : nodes[i];
	}
	return 0;
}

/* ---- compaction ---- */

/* Can compaction move the page at @pfn?  (Free frames need no moving.) */
static bool frame_movable(struct umm *u, uint64_t pfn)
{
	uint32_t f = atomic_load(&pfn_to_page(u, pfn)->flags);

	return f & (PG_buddy | PG_lru);
}

static bool frame_free(struct umm *u, uint64_t pfn)
{
	return atomic_load(&pfn_to_page(u, pfn)->flags) & PG_buddy;
}

/*
 * umm_compact - free a run of @nr_frames frames of node @nid: pick the run
 * with the fewest pages in it whose pages can all move, keep the allocator
 * from handing out its free frames meanwhile, and migrate every page in it
 * elsewhere on the node.
 */
int umm_compact(struct umm *u, int nid, uint64_t nr_frames, uint64_t *start_pfn)
{
	struct umm_node *n;
	uint64_t best = UINT64_MAX, best_used = UINT64_MAX;
	int err = 0;

	if (!u || nid < 0 || (unsigned int)nid >= u->nr_nodes || !nr_frames || !start_pfn)
		return -EINVAL;
	n = &u->nodes[nid];
	if (nr_frames > n->end_pfn - n->start_pfn)
		return -EINVAL;
	for (uint64_t s = n->start_pfn; s + nr_frames <= n->end_pfn; s += nr_frames) {
		uint64_t used = 0;
		bool ok = true;

		for (uint64_t p = s; p < s + nr_frames && ok; p++) {
			ok = p != ZERO_PFN && frame_movable(u, p);
			used += !frame_free(u, p);
		}
		if (ok && used < best_used) {
			best = s;
			best_used = used;
		}
	}
	if (best == UINT64_MAX)
		return -EBUSY;

	phys_isolate_range(u, nid, best, best + nr_frames);
	for (uint64_t p = best; p < best + nr_frames && !err; p++) {
		struct umm_page *page = pfn_to_page(u, p);

		if (frame_free(u, p) || !get_page_unless_zero(page))
			continue;
		if (!isolate_lru_page(u, page)) {
			put_page(u, page);
			err = frame_free(u, p) ? 0 : -EBUSY;
			continue;
		}
		put_page(u, page);
		err = migrate_page_to(u, page, nid);
		if (!err)
			vmstat_inc(u, VMS_COMPACT_MIGRATED);
	}
	for (uint64_t p = best; p < best + nr_frames && !err; p++)
		if (!frame_free(u, p))
			err = -EBUSY;	/* something arrived or would not move */
	phys_unisolate_range(u, nid);
	if (!err)
		*start_pfn = best;
	return err;
}
