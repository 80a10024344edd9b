// SPDX-License-Identifier: MIT
/*
 * rmap.c - reverse mapping: from a frame back to the PTEs that map it.
 *
 * Lock ordering in umm's mm (outermost first):
 *
 *   mm->mmap_lock
 *     page lock (PG_locked)
 *       mapping->i_mmap_rwsem
 *         anon_vma->root->rwsem
 *           mm->page_table_lock or pte table lock (pte_lockptr())
 *             per-CPU free-list lock (pcp->lock), then node->lock
 *
 * The MMU-notifier range rwsem (mmu_notifier.c) is read-locked by every
 * invalidation wherever it sits in this order, as the kernel's SRCU read
 * side is entered; it is write-locked only by notifier registration and
 * release, which hold nothing below mmap_lock while they wait.
 *
 * umm->mm_lock (the list of address spaces) is taken outside mmap_lock;
 * umm->as_lock (the list of page-cache objects) nests inside everything but
 * the free-list locks.  Access sections (tlb.c) take no lock at all;
 * flush_tlb_mm() may be called with any of the above held because it only
 * waits for sections.
 *
 * Anonymous memory.  Every VMA with anonymous pages has an anon_vma and a
 * chain of anon_vma_chain links (avc), one per anon_vma whose pages it may
 * map: its own and, after fork, those of every ancestor.  Each anon_vma
 * keeps its avcs in an interval tree keyed by the VMA's page offsets, so
 * the VMAs that may map a page are found in O(log n + k) from the page's
 * anon_vma and index, whatever the number of forks.  All anon_vmas of one
 * fork lineage share a root whose rwsem serialises the trees.  A new page
 * belongs to the faulting VMA's own anon_vma (page->mapping, tagged
 * PAGE_MAPPING_ANON) at index vm_pgoff + offset, which mremap preserves; a
 * page reused after COW moves to the reusing VMA's anon_vma.  fork reuses
 * an anon_vma that no VMA owns any more and that has at most one child,
 * so a chain of forking-and-exiting processes does not grow the chains.
 *
 * Files and shared anonymous memory.  The VMAs mapping an address_space
 * sit in its i_mmap interval tree; page->mapping is the address_space and
 * page->index the offset in it.
 *
 * Lifetime.  An anon_vma lives while its tree holds an avc (its initial
 * reference), plus one per child that names it root or parent, plus walkers'
 * references.  Walkers find it from a page without any lock: they read
 * page->mapping under rcu_read_lock(), take a reference only if the count
 * is not zero and the page is still mapped, and the anon_vma is freed only
 * after an RCU grace period (liburcu), so the read is always of valid memory.
 *
 * Mapcount: page->_mapcount + 1 is the number of PTEs mapping the page;
 * each such PTE also holds one reference (_refcount).
 */
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "internal.h"

/* ---- anon_vma and anon_vma_chain ---- */

static struct anon_vma_chain *avc_alloc(struct umm *u)
{
	return should_fail(u, UMM_FAULT_ANON_VMA_ALLOC) ? NULL : calloc(1, sizeof(struct anon_vma_chain));
}

static struct anon_vma *anon_vma_alloc(struct umm *u)
{
	struct anon_vma *av = should_fail(u, UMM_FAULT_ANON_VMA_ALLOC) ? NULL :
			      calloc(1, sizeof(*av));

	if (!av)
		return NULL;
	av->root = av;
	atomic_init(&av->refcount, 1);
	pthread_rwlock_init(&av->rwsem, NULL);
	av->rb_root = RB_ROOT;
	return av;
}

#if defined(__SANITIZE_THREAD__)
char rcu_tsan_marker;
#endif

static void anon_vma_free_rcu(struct rcu_head *head)
{
	struct anon_vma *av = container_of(head, struct anon_vma, rcu);

	rcu_tsan_acquire();
	pthread_rwlock_destroy(&av->rwsem);
	free(av);
}

void put_anon_vma(struct anon_vma *av)
{
	while (av && atomic_fetch_sub(&av->refcount, 1) == 1) {
		struct anon_vma *parent = av->parent, *root = av->root;

		rcu_tsan_release();	/* what we did to it happens-before the free */
		call_rcu(&av->rcu, anon_vma_free_rcu);
		if (root != av && root != parent)
			put_anon_vma(root);
		av = parent;
	}
}

static inline void anon_vma_lock_write(struct anon_vma *av)
{
	pthread_rwlock_wrlock(&av->root->rwsem);
}

static inline void anon_vma_unlock_write(struct anon_vma *av)
{
	pthread_rwlock_unlock(&av->root->rwsem);
}

static inline void avc_set_range(struct anon_vma_chain *avc)
{
	struct vm_area_struct *vma = avc->vma;

	avc->itn.start = vma->vm_pgoff;
	avc->itn.last = vma->vm_pgoff + vma_pages(vma) - 1;
}

/* Link @vma to @av through @avc.  Context: @av's root rwsem held for write. */
static void anon_vma_chain_link(struct vm_area_struct *vma, struct anon_vma_chain *avc,
				struct anon_vma *av)
{
	avc->vma = vma;
	avc->anon_vma = av;
	list_add(&avc->same_vma, &vma->anon_vma_chain);
	avc_set_range(avc);
	interval_tree_insert(&avc->itn, &av->rb_root);
}

/*
 * anon_vma_prepare - make sure @vma has an anon_vma before its first
 * anonymous page is mapped.  Return: 0 or -ENOMEM.
 * Context: mmap_lock held for read; races with other faults on @vma are
 * settled under page_table_lock.
 */
int anon_vma_prepare(struct vm_area_struct *vma)
{
	struct umm_mm *mm = vma->vm_mm;
	struct anon_vma *av;
	struct anon_vma_chain *avc;

	if (likely(atomic_load_explicit((_Atomic(struct anon_vma *) *)&vma->anon_vma,
					memory_order_acquire)))
		return 0;
	av = anon_vma_alloc(vma->vm_mm->u);
	avc = avc_alloc(vma->vm_mm->u);
	if (!av || !avc) {
		free(avc);
		if (av)
			put_anon_vma(av);
		return -ENOMEM;
	}
	anon_vma_lock_write(av);
	spin_lock(&mm->page_table_lock);
	if (!vma->anon_vma) {
		anon_vma_chain_link(vma, avc, av);
		av->num_active_vmas++;
		atomic_store_explicit((_Atomic(struct anon_vma *) *)&vma->anon_vma, av,
				      memory_order_release);
		av = NULL;
		avc = NULL;
	}
	spin_unlock(&mm->page_table_lock);
	if (av) {
		anon_vma_unlock_write(av);
		put_anon_vma(av);
		free(avc);
	} else {
		anon_vma_unlock_write(vma->anon_vma);
	}
	return 0;
}

/*
 * anon_vma_clone - link @dst to every anon_vma @src is linked to (a split,
 * a merge that adopts @src's pages, mremap's copy, fork).  @dst->anon_vma
 * becomes @src->anon_vma unless it is already set or (for fork, with
 * @reuse) an unowned anon_vma with at most one child is reused instead.
 * Return: 0 or -ENOMEM (nothing linked).
 * Context: mmap_lock held for write; @dst's range is final.
 */
static int __anon_vma_clone(struct vm_area_struct *dst, struct vm_area_struct *src, bool reuse)
{
	struct anon_vma_chain *pavc, *avc;
	struct list_head fresh;
	struct anon_vma *root = NULL;
	unsigned int n = 0;

	INIT_LIST_HEAD(&fresh);
	list_for_each_entry(pavc, &src->anon_vma_chain, same_vma)
		n++;
	for (unsigned int i = 0; i < n; i++) {
		avc = avc_alloc(dst->vm_mm->u);
		if (!avc) {
			struct anon_vma_chain *tmp;

			list_for_each_entry_safe(avc, tmp, &fresh, same_vma)
				free(avc);
			return -ENOMEM;
		}
		list_add(&avc->same_vma, &fresh);
	}
	if (!n)
		return 0;
	/* walk oldest first (the list is newest first) so dst's order matches */
	for (pavc = list_entry(src->anon_vma_chain.prev, struct anon_vma_chain, same_vma);
	     &pavc->same_vma != &src->anon_vma_chain;
	     pavc = list_entry(pavc->same_vma.prev, struct anon_vma_chain, same_vma)) {
		struct anon_vma *av = pavc->anon_vma;

		if (!root) {
			root = av->root;
			pthread_rwlock_wrlock(&root->rwsem);
		}
		avc = list_first_entry(&fresh, struct anon_vma_chain, same_vma);
		list_del_init(&avc->same_vma);
		anon_vma_chain_link(dst, avc, av);
		if (reuse && !dst->anon_vma && av != src->anon_vma &&
		    av->num_active_vmas == 0 && av->num_children < 2)
			dst->anon_vma = av;
	}
	if (!reuse && !dst->anon_vma)
		dst->anon_vma = src->anon_vma;
	if (dst->anon_vma)
		dst->anon_vma->num_active_vmas++;
	pthread_rwlock_unlock(&root->rwsem);
	return 0;
}

int anon_vma_clone(struct vm_area_struct *dst, struct vm_area_struct *src)
{
	dst->anon_vma = NULL;
	INIT_LIST_HEAD(&dst->anon_vma_chain);
	return __anon_vma_clone(dst, src, false);
}

/*
 * anon_vma_fork - fork's link of the child's @vma: every anon_vma of the
 * parent's @pvma, and a new anon_vma of its own (or a reused one).
 * Return: 0 or -ENOMEM.
 * Context: parent's mmap_lock held for write.
 */
int anon_vma_fork(struct vm_area_struct *vma, struct vm_area_struct *pvma)
{
	struct anon_vma *av;
	struct anon_vma_chain *avc;
	int err;

	vma->anon_vma = NULL;
	INIT_LIST_HEAD(&vma->anon_vma_chain);
	if (!pvma->anon_vma)
		return 0;
	err = __anon_vma_clone(vma, pvma, true);
	if (err)
		return err;
	if (vma->anon_vma)
		return 0;	/* reused an anon_vma nobody owns */

	av = anon_vma_alloc(vma->vm_mm->u);
	avc = avc_alloc(vma->vm_mm->u);
	if (!av || !avc) {
		free(avc);
		if (av)
			put_anon_vma(av);
		unlink_anon_vmas(vma);
		return -ENOMEM;
	}
	av->root = pvma->anon_vma->root;
	av->parent = pvma->anon_vma;
	atomic_fetch_add(&av->parent->refcount, 1);
	if (av->root != av->parent)
		atomic_fetch_add(&av->root->refcount, 1);
	anon_vma_lock_write(av);
	anon_vma_chain_link(vma, avc, av);
	av->parent->num_children++;
	av->num_active_vmas++;
	vma->anon_vma = av;
	anon_vma_unlock_write(av);
	return 0;
}

/*
 * unlink_anon_vmas - take @vma out of every anon_vma tree; anon_vmas left
 * with no avc lose their initial reference.
 * Context: mmap_lock held for write (or the mm is dying).
 */
void unlink_anon_vmas(struct vm_area_struct *vma)
{
	struct anon_vma_chain *avc, *tmp;
	struct anon_vma *root = NULL;
	struct list_head empty;

	INIT_LIST_HEAD(&empty);
	list_for_each_entry_safe(avc, tmp, &vma->anon_vma_chain, same_vma) {
		struct anon_vma *av = avc->anon_vma;

		if (!root) {
			root = av->root;
			pthread_rwlock_wrlock(&root->rwsem);
		}
		interval_tree_remove(&avc->itn, &av->rb_root);
		list_del_init(&avc->same_vma);
		if (!av->rb_root.node) {
			if (av->parent)
				av->parent->num_children--;
			list_add(&avc->same_vma, &empty);	/* put after unlocking */
		} else {
			free(avc);
		}
	}
	if (vma->anon_vma)
		vma->anon_vma->num_active_vmas--;
	if (root)
		pthread_rwlock_unlock(&root->rwsem);
	list_for_each_entry_safe(avc, tmp, &empty, same_vma) {
		put_anon_vma(avc->anon_vma);
		free(avc);
	}
	vma->anon_vma = NULL;
}

/*
 * vma_rmap_pre_update / vma_rmap_post_update - bracket any change of a
 * VMA's vm_start, vm_end or vm_pgoff: its avcs and its i_mmap node are keyed
 * by the range and must leave their trees while it changes.
 * Context: mmap_lock held for write.
 */
void vma_rmap_pre_update(struct vm_area_struct *vma)
{
	struct anon_vma_chain *avc;

	if (vma->vm_mapping) {
		pthread_rwlock_wrlock(&vma->vm_mapping->i_mmap_rwsem);
		interval_tree_remove(&vma->shared, &vma->vm_mapping->i_mmap);
	}
	if (!list_empty(&vma->anon_vma_chain)) {
		avc = list_first_entry(&vma->anon_vma_chain, struct anon_vma_chain, same_vma);
		anon_vma_lock_write(avc->anon_vma);
		list_for_each_entry(avc, &vma->anon_vma_chain, same_vma)
			interval_tree_remove(&avc->itn, &avc->anon_vma->rb_root);
	}
}

void vma_rmap_post_update(struct vm_area_struct *vma)
{
	struct anon_vma_chain *avc;

	if (!list_empty(&vma->anon_vma_chain)) {
		list_for_each_entry(avc, &vma->anon_vma_chain, same_vma) {
			avc_set_range(avc);
			interval_tree_insert(&avc->itn, &avc->anon_vma->rb_root);
		}
		avc = list_first_entry(&vma->anon_vma_chain, struct anon_vma_chain, same_vma);
		anon_vma_unlock_write(avc->anon_vma);
	}
	if (vma->vm_mapping) {
		vma_set_shared_range(vma);
		interval_tree_insert(&vma->shared, &vma->vm_mapping->i_mmap);
		pthread_rwlock_unlock(&vma->vm_mapping->i_mmap_rwsem);
	}
}

/* Lock every anon_vma root and mapping a VMA's pages can be found from. */
void vma_rmap_lock(struct vm_area_struct *vma)
{
	if (vma->vm_mapping)
		pthread_rwlock_wrlock(&vma->vm_mapping->i_mmap_rwsem);
	if (vma->anon_vma)
		anon_vma_lock_write(vma->anon_vma);
}

void vma_rmap_unlock(struct vm_area_struct *vma)
{
	if (vma->anon_vma)
		anon_vma_unlock_write(vma->anon_vma);
	if (vma->vm_mapping)
		pthread_rwlock_unlock(&vma->vm_mapping->i_mmap_rwsem);
}

/* ---- page rmap counts ---- */

/*
 * page_add_new_anon_rmap - a freshly allocated page gets its first mapping,
 * in @vma's own anon_vma.
 * Context: PTE lock held; the page is not yet visible to anyone else.
 */
void page_add_new_anon_rmap(struct umm_page *page, struct vm_area_struct *vma, uint64_t addr)
{
	atomic_store_explicit(&page->_mapcount, 0, memory_order_relaxed);
	page->index = linear_page_index(vma, addr);
	atomic_store_explicit(&page->mapping, (uintptr_t)vma->anon_vma | PAGE_MAPPING_ANON,
			      memory_order_release);
	SetPageFlag(page, PG_swapbacked);
	lru_cache_add(vma->vm_mm->u, page);
}

/*
 * page_add_anon_rmap - one more PTE maps an anonymous page that came back
 * from swap.  A page read in afresh has no anon_vma yet: it gets the
 * faulting VMA's own if this mapping is its only one, and otherwise the
 * root of the VMA's anon_vma tree - the oldest, whose tree holds every
 * VMA of the fork lineage that may share the slot (Linux's rule).
 * Context: PTE lock held; page locked.
 */
void page_add_anon_rmap(struct umm_page *page, struct vm_area_struct *vma, uint64_t addr,
			bool exclusive)
{
	if (!PageAnon(page)) {
		struct anon_vma *av = exclusive ? vma->anon_vma : vma->anon_vma->root;

		page->index = linear_page_index(vma, addr);
		atomic_store_explicit(&page->mapping, (uintptr_t)av | PAGE_MAPPING_ANON,
				      memory_order_release);
	}
	atomic_fetch_add_explicit(&page->_mapcount, 1, memory_order_relaxed);
}

/*
 * page_move_anon_rmap - @vma reuses an exclusive page after COW: it now
 * belongs to @vma's own anon_vma, so later walks need not search ancestors.
 * Context: PTE lock held; the page is mapped only there.
 */
void page_move_anon_rmap(struct umm_page *page, struct vm_area_struct *vma)
{
	if (!vma->anon_vma)
		return;
	atomic_store_explicit(&page->mapping, (uintptr_t)vma->anon_vma | PAGE_MAPPING_ANON,
			      memory_order_release);
}

/* page_add_file_rmap - one more PTE maps a page-cache page. */
void page_add_file_rmap(struct umm_page *page, struct vm_area_struct *vma)
{
	atomic_fetch_add_explicit(&page->_mapcount, 1, memory_order_relaxed);
}

/* page_dup_rmap - fork: the child's PTE maps the page too. */
void page_dup_rmap(struct umm_page *page)
{
	atomic_fetch_add_explicit(&page->_mapcount, 1, memory_order_relaxed);
}

/*
 * page_remove_rmap - one PTE stopped mapping the page.  The reference that
 * PTE held is dropped by the caller, after the flush.
 * Context: PTE lock held.
 */
void page_remove_rmap(struct umm_page *page, struct vm_area_struct *vma)
{
	int old = atomic_fetch_sub_explicit(&page->_mapcount, 1, memory_order_acq_rel);

	VM_BUG_ON(old < 0);
}

/* ---- the page lock ---- */

static long futex(_Atomic uint32_t *uaddr, int op, uint32_t val)
{
	return syscall(SYS_futex, (uint32_t *)uaddr, op, val, NULL, NULL, 0);
}

/*
 * page_lock_wait - sleep until the page lock whose word was seen as @seen
 * (with PG_waiters set by the caller) is released.  The caller holds no
 * reference: the lock holder (a migration) wakes waiters before the frame
 * is freed, and a frame's descriptor never goes away.
 */
void page_lock_wait(struct umm_page *page, uint32_t seen)
{
	if (seen & PG_locked)
		futex(&page->flags, FUTEX_WAIT_PRIVATE, seen | PG_waiters);
}

bool trylock_page(struct umm_page *page)
{
	return !(atomic_fetch_or(&page->flags, PG_locked) & PG_locked);
}

void lock_page(struct umm_page *page)
{
	while (!trylock_page(page)) {
		uint32_t f = atomic_fetch_or(&page->flags, PG_waiters);

		if (f & PG_locked)
			futex(&page->flags, FUTEX_WAIT_PRIVATE, f | PG_waiters);
	}
}

void unlock_page(struct umm_page *page)
{
	uint32_t f = atomic_fetch_and(&page->flags, ~(PG_locked | PG_waiters));

	VM_BUG_ON(!(f & PG_locked));
	if (f & PG_waiters)
		futex(&page->flags, FUTEX_WAKE_PRIVATE, INT32_MAX);
}

/* ---- rmap walks ---- */

/*
 * page_lock_anon_vma_read - find and read-lock the anon_vma of a mapped
 * anonymous page, without any lock held to start with.
 * Return: the anon_vma with a reference, read-locked; NULL if the page is
 * not (or no longer) mapped.
 */
static struct anon_vma *page_lock_anon_vma_read(struct umm_page *page)
{
	struct anon_vma *av = NULL;
	uintptr_t mapping;
	int ref;

	umm_rcu_read_lock();
	mapping = atomic_load_explicit(&page->mapping, memory_order_acquire);
	if ((mapping & PAGE_MAPPING_FLAGS) != PAGE_MAPPING_ANON || page_mapcount(page) <= 0)
		goto out;
	av = (struct anon_vma *)(mapping & ~PAGE_MAPPING_FLAGS);
	ref = atomic_load(&av->refcount);
	do {
		if (!ref) {
			av = NULL;
			goto out;
		}
	} while (!atomic_compare_exchange_weak(&av->refcount, &ref, ref + 1));
	if (page_mapcount(page) <= 0) {
		umm_rcu_read_unlock();
		put_anon_vma(av);
		return NULL;
	}
out:
	umm_rcu_read_unlock();
	if (av)
		pthread_rwlock_rdlock(&av->root->rwsem);
	return av;
}

static inline uint64_t vma_address(struct vm_area_struct *vma, uint64_t pgoff)
{
	return vma->vm_start + ((pgoff - vma->vm_pgoff) << PAGE_SHIFT);
}

/*
 * page_get_anon_vma - a reference on the anon_vma of a mapped anonymous
 * page, so that its tree can still be walked once the page is unmapped
 * (migration restores PTEs through it).  Return: the anon_vma or NULL.
 */
struct anon_vma *page_get_anon_vma(struct umm_page *page)
{
	struct anon_vma *av = page_lock_anon_vma_read(page);

	if (av)
		pthread_rwlock_unlock(&av->root->rwsem);
	return av;
}

static int rmap_walk_anon(struct umm_page *page, struct rmap_walk_control *rwc)
{
	struct anon_vma *av = rwc->anon_vma;
	uint64_t pgoff = page->index;
	struct interval_tree_node *n;

	if (av) {
		/* the caller pinned it: the page need not be mapped now */
		get_anon_vma(av);
		pthread_rwlock_rdlock(&av->root->rwsem);
	} else {
		av = page_lock_anon_vma_read(page);
	}
	if (!av)
		return 0;
	for (n = interval_tree_iter_first(&av->rb_root, pgoff, pgoff); n;
	     n = interval_tree_iter_next(n, pgoff, pgoff)) {
		struct anon_vma_chain *avc = container_of(n, struct anon_vma_chain, itn);
		struct vm_area_struct *vma = avc->vma;

		if (!rwc->rmap_one(page, vma, vma_address(vma, pgoff), rwc->arg))
			break;
		if (rwc->done && rwc->done(page))
			break;
	}
	pthread_rwlock_unlock(&av->root->rwsem);
	put_anon_vma(av);
	return 0;
}

/*
 * rmap_walk_file - walk the i_mmap tree of a file or shmem page's object.
 * The object may be torn down by a racing last munmap: it is read under
 * RCU, and once its i_mmap_rwsem is held it is either live (teardown
 * waits for the lock) or marked dead (back off).
 */
static int rmap_walk_file(struct umm_page *page, struct rmap_walk_control *rwc)
{
	struct address_space *as;
	uint64_t pgoff = page->index;
	struct interval_tree_node *n;

	umm_rcu_read_lock();
	as = (struct address_space *)atomic_load_explicit(&page->mapping, memory_order_acquire);
	if (!as) {
		umm_rcu_read_unlock();
		return 0;
	}
	pthread_rwlock_rdlock(&as->i_mmap_rwsem);
	if (as->dead) {
		pthread_rwlock_unlock(&as->i_mmap_rwsem);
		umm_rcu_read_unlock();
		return 0;
	}
	umm_rcu_read_unlock();
	for (n = interval_tree_iter_first(&as->i_mmap, pgoff, pgoff); n;
	     n = interval_tree_iter_next(n, pgoff, pgoff)) {
		struct vm_area_struct *vma = container_of(n, struct vm_area_struct, shared);

		if (!rwc->rmap_one(page, vma, vma_address(vma, pgoff), rwc->arg))
			break;
		if (rwc->done && rwc->done(page))
			break;
	}
	pthread_rwlock_unlock(&as->i_mmap_rwsem);
	return 0;
}

/*
 * rmap_walk - call rwc->rmap_one for every VMA that may map @page, with the
 * address the page would have there; the callback checks the PTE under
 * its lock.  Stops early when rmap_one returns false or rwc->done says so.
 * Context: the caller holds a reference on @page (and, for file pages,
 * the page lock or another guarantee that page->mapping stays; KSM pages
 * must be locked: their stable node's list changes under the page lock).
 */
int rmap_walk(struct umm_page *page, struct rmap_walk_control *rwc)
{
	if (PageKsm(page))
		return rmap_walk_ksm(page, rwc);
	if (PageAnon(page))
		return rmap_walk_anon(page, rwc);
	return rmap_walk_file(page, rwc);
}

/*
 * page_vma_mapped - lock the PTE table of @vma->vm_mm at @addr and return
 * the slot if it maps @page.  Return: the slot (ptl held in *@ptp) or NULL.
 */
_Atomic pte_t *page_vma_mapped(struct umm_page *page, struct vm_area_struct *vma,
				      uint64_t addr, struct pt_page **ptp)
{
	struct umm_mm *mm = vma->vm_mm;
	_Atomic pte_t *ptep;
	pte_t pte;

	if (addr < vma->vm_start || addr >= vma->vm_end)
		return NULL;
	ptep = pte_offset(mm, addr, false, ptp);
	if (!ptep)
		return NULL;
	spin_lock(pte_lockptr((*ptp)));
	pte = atomic_load_explicit(ptep, memory_order_relaxed);
	if (pte_present(pte) && !pte_special(pte) && pte_pfn(pte) == page_to_pfn(mm->u, page))
		return ptep;
	spin_unlock(pte_lockptr((*ptp)));
	return NULL;
}

struct rmap_counter {
	int count;
};

/* Walk @page with @one, which counts into a struct rmap_counter.  Return: the count. */
static int rmap_walk_count(struct umm_page *page,
			   bool (*one)(struct umm_page *, struct vm_area_struct *, uint64_t, void *))
{
	struct rmap_counter rc = { 0 };
	struct rmap_walk_control rwc = { .rmap_one = one, .arg = &rc };

	rmap_walk(page, &rwc);
	return rc.count;
}

/*
 * One mapping's accessed bit, and a secondary MMU's use of it, cleared and
 * counted.  @flush: ask secondary MMUs with clear_flush_young (reclaim's
 * decision, which must see the latest use) rather than clear_young
 * (ageing, where a use a TLB still hides only comes to light later).
 */
static bool referenced_one(struct umm_page *page, struct vm_area_struct *vma, uint64_t addr,
			   struct rmap_counter *rc, bool flush)
{
	struct umm_mm *mm = vma->vm_mm;
	struct pt_page *pt;
	_Atomic pte_t *ptep = page_vma_mapped(page, vma, addr, &pt);
	bool young;

	if (!ptep)
		return true;
	/* clearing the young bit needs no flush: a stale TLB only under-reports */
	young = atomic_fetch_and(ptep, ~_PAGE_ACCESSED) & _PAGE_ACCESSED;
	spin_unlock(pte_lockptr(pt));
	/* a secondary MMU's use counts too */
	if (flush ? mmu_notifier_clear_flush_young(mm, addr, addr + PAGE_SIZE)
		  : mmu_notifier_clear_young(mm, addr, addr + PAGE_SIZE))
		young = true;
	if (young)
		rc->count++;
	return true;
}

static bool page_referenced_one(struct umm_page *page, struct vm_area_struct *vma,
				uint64_t addr, void *arg)
{
	return referenced_one(page, vma, addr, arg, true);
}

static bool page_clear_young_one(struct umm_page *page, struct vm_area_struct *vma,
				 uint64_t addr, void *arg)
{
	return referenced_one(page, vma, addr, arg, false);
}

/*
 * A KSM page is locked for its rmap walk unless the caller holds the lock;
 * someone else holding it counts as a reference (as Linux's folio_referenced).
 */
static int referenced_walk(struct umm_page *page, bool locked,
			   bool (*one)(struct umm_page *, struct vm_area_struct *, uint64_t, void *))
{
	int ret;

	if (locked || !PageKsm(page))
		return rmap_walk_count(page, one);
	if (!trylock_page(page))
		return 1;
	ret = rmap_walk_count(page, one);
	unlock_page(page);
	return ret;
}

/*
 * page_referenced - Return: how many mappings had referenced @page, their
 * accessed bits and secondary MMUs' (clear_flush_young) cleared.
 * @locked: the caller holds the page lock (reclaim).
 */
int page_referenced(struct umm_page *page, bool locked)
{
	return referenced_walk(page, locked, page_referenced_one);
}

/*
 * page_clear_young - ageing's pass over @page: as page_referenced(), but
 * secondary MMUs hear clear_young, which need not flush their TLBs.
 * Return: how many mappings had referenced it.
 */
int page_clear_young(struct umm_page *page)
{
	return referenced_walk(page, false, page_clear_young_one);
}

static bool page_mkclean_one(struct umm_page *page, struct vm_area_struct *vma,
			     uint64_t addr, void *arg)
{
	struct rmap_counter *rc = arg;
	struct mmu_notifier_range range;
	struct pt_page *pt;
	_Atomic pte_t *ptep;
	pte_t old;

	if (!(vma->vm_flags & VM_SHARED))
		return true;
	mmu_notifier_range_init(&range, UMM_MMU_NOTIFY_PROTECTION_PAGE, vma->vm_mm, addr,
				addr + PAGE_SIZE);
	mmu_notifier_invalidate_range_start(&range);
	ptep = page_vma_mapped(page, vma, addr, &pt);
	if (ptep) {
		old = atomic_fetch_and(ptep, ~(_PAGE_RW | _PAGE_DIRTY));
		if (old & (_PAGE_RW | _PAGE_DIRTY)) {
			flush_tlb_mm(vma->vm_mm);
			mmu_notifier_invalidate_secondary_tlbs(vma->vm_mm, addr, addr + PAGE_SIZE);
			if (old & _PAGE_DIRTY)
				SetPageFlag(page, PG_dirty);
			rc->count++;
		}
		spin_unlock(pte_lockptr(pt));
	}
	mmu_notifier_invalidate_range_end(&range);
	return true;
}

/*
 * page_mkclean - write-protect and clean every shared mapping of @page, so
 * that writeback sees stable data and the next store faults and dirties
 * the page again.  PTE dirty bits move to PG_dirty.
 * Return: how many PTEs were writable or dirty.
 * Context: page locked.
 */
int page_mkclean(struct umm_page *page)
{
	return PageAnon(page) ? 0 : rmap_walk_count(page, page_mkclean_one);
}

static bool try_to_unmap_one(struct umm_page *page, struct vm_area_struct *vma,
			     uint64_t addr, void *arg)
{
	struct umm_mm *mm = vma->vm_mm;
	struct mmu_notifier_range range;
	struct pt_page *pt;
	_Atomic pte_t *ptep;
	pte_t old;

	mmu_notifier_range_init(&range, UMM_MMU_NOTIFY_CLEAR, mm, addr, addr + PAGE_SIZE);
	mmu_notifier_invalidate_range_start(&range);
	ptep = page_vma_mapped(page, vma, addr, &pt);
	if (ptep && (vma->vm_flags & VM_LOCKED)) {
		spin_unlock(pte_lockptr(pt));
		mmu_notifier_invalidate_range_end(&range);
		SetPageFlag(page, PG_mlocked);	/* reclaim culls it to the unevictable list */
		return false;
	}
	if (ptep && PageAnon(page) && swap_duplicate(mm->u, page->private)) {
		/* the slot's count is full: this mapping stays, and the walk stops */
		spin_unlock(pte_lockptr(pt));
		mmu_notifier_invalidate_range_end(&range);
		return false;
	}
	if (ptep) {
		bool anon = PageAnon(page);

		/* ptep_clear_flush: once flushed, no access goes through it */
		old = atomic_exchange_explicit(ptep, 0, memory_order_seq_cst);
		flush_tlb_mm(mm);
		mmu_notifier_invalidate_secondary_tlbs(mm, addr, addr + PAGE_SIZE);
		if (old & _PAGE_DIRTY)
			SetPageFlag(page, PG_dirty);
		if (anon) {
			/* leave the page's swap slot (counted above) for the fault to find */
			atomic_store_explicit(ptep, swp_entry_pte(SWP_SWAPFILE, page->private),
					      memory_order_release);
			add_mm_counter(mm, MM_SWAPENTS, 1);
		}
		page_remove_rmap(page, vma);
		add_mm_counter(mm, mm_counter(page), -1);
		spin_unlock(pte_lockptr(pt));
	}
	mmu_notifier_invalidate_range_end(&range);
	if (ptep)
		put_page(mm->u, page);
	return true;
}

static bool page_not_mapped(struct umm_page *page)
{
	return page_mapcount(page) <= 0;
}

/*
 * try_to_unmap - remove every mapping of @page.  Anonymous pages need a
 * swap entry to leave behind, which reclaim provides; without one, or when
 * its slot cannot count one more PTE, they stay mapped.
 * Return: true if the page is no longer mapped.
 * Context: page locked; the caller holds a reference.
 */
bool try_to_unmap(struct umm_page *page)
{
	struct rmap_walk_control rwc = { .rmap_one = try_to_unmap_one, .done = page_not_mapped };

	if (PageAnon(page) && !TestPageFlag(page, PG_swapcache))
		return false;
	rmap_walk(page, &rwc);
	return page_mapcount(page) <= 0;
}

static bool rmap_count_one(struct umm_page *page, struct vm_area_struct *vma,
			   uint64_t addr, void *arg)
{
	struct rmap_counter *rc = arg;
	struct pt_page *pt;

	if (page_vma_mapped(page, vma, addr, &pt)) {
		rc->count++;
		spin_unlock(pte_lockptr(pt));
	}
	return true;
}

static bool pte_dirty_one(struct umm_page *page, struct vm_area_struct *vma,
			  uint64_t addr, void *arg)
{
	struct rmap_counter *rc = arg;
	struct pt_page *pt;
	_Atomic pte_t *ptep = page_vma_mapped(page, vma, addr, &pt);

	if (ptep) {
		if (atomic_load_explicit(ptep, memory_order_relaxed) & _PAGE_DIRTY)
			rc->count++;
		spin_unlock(pte_lockptr(pt));
	}
	return true;
}

/* How many PTEs mapping @page carry a dirty bit (a look, nothing changes). */
int page_dirty_in_ptes(struct umm_page *page)
{
	return rmap_walk_count(page, pte_dirty_one);
}

/* How many PTEs an rmap walk finds mapping @page.  Context: page not locked. */
int page_rmap_count(struct umm_page *page)
{
	int ret;

	if (!PageKsm(page))
		return rmap_walk_count(page, rmap_count_one);
	lock_page(page);
	ret = rmap_walk_count(page, rmap_count_one);
	unlock_page(page);
	return ret;
}
