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
 *           mm->page_table_lock or pte table lock (pt_page->ptl)
 *             per-CPU free-list lock (pcp->lock), then node->lock
 *
 * umm->mm_lock (the list of address spaces) is taken outside mmap_lock;
 * umm->as_lock (the list of page-cache objects) nests inside everything but
 * the free-list locks.
 *
 * Access sections (tlb.c) take no lock at all; flush_tlb_mm() may be called
 * with any of the above held because it only waits for sections.
 *
 * Anonymous pages point (page->mapping, tagged PAGE_MAPPING_ANON) to the
 * anon_vma of the VMA that first faulted them, and page->index is their
 * linear index in that VMA (vm_pgoff + offset), which mremap preserves.
 * Each VMA that has anonymous pages owns an anon_vma; fork gives the
 * child's VMA a new anon_vma whose parent (and root) lead back to the
 * parent's, the shape Linux's anon_vma_chain gives.
 * Shared anonymous pages belong to their shmem object's page cache
 * (page->mapping = the address_space, index = the offset in it).
 *
 * Mapcount: page->_mapcount + 1 is the number of PTEs mapping the page;
 * each such PTE also holds one reference (_refcount).
 */
#include "internal.h"

static struct anon_vma *anon_vma_alloc(void)
{
	struct anon_vma *av = calloc(1, sizeof(*av));

	if (!av)
		return NULL;
	av->root = av;
	atomic_init(&av->refcount, 1);
	pthread_rwlock_init(&av->rwsem, NULL);
	return av;
}

static void put_anon_vma(struct anon_vma *av)
{
	while (av && atomic_fetch_sub(&av->refcount, 1) == 1) {
		struct anon_vma *parent = av->parent;

		pthread_rwlock_destroy(&av->rwsem);
		free(av);
		av = parent;
	}
}

/*
 * anon_vma_prepare - make sure @vma has an anon_vma before its first
 * anonymous page is mapped.  Return: 0 or -ENOMEM.
 * Context: mmap_lock held for read; may race with other faults on @vma,
 * which page_table_lock settles.
 */
int anon_vma_prepare(struct vm_area_struct *vma)
{
	struct umm_mm *mm = vma->vm_mm;
	struct anon_vma *av;

	if (likely(atomic_load_explicit((_Atomic(struct anon_vma *) *)&vma->anon_vma,
					memory_order_acquire)))
		return 0;
	av = anon_vma_alloc();
	if (!av)
		return -ENOMEM;
	spin_lock(&mm->page_table_lock);
	if (!vma->anon_vma) {
		atomic_store_explicit((_Atomic(struct anon_vma *) *)&vma->anon_vma, av,
				      memory_order_release);
		av = NULL;
	}
	spin_unlock(&mm->page_table_lock);
	if (av)
		put_anon_vma(av);
	return 0;
}

/*
 * anon_vma_fork - give the child's copy @vma of @pvma its own anon_vma,
 * linked to the parent's.  Return: 0 or -ENOMEM.
 * Context: parent's mmap_lock held for write.
 */
int anon_vma_fork(struct vm_area_struct *vma, struct vm_area_struct *pvma)
{
	struct anon_vma *av;

	vma->anon_vma = NULL;
	if (!pvma->anon_vma)
		return 0;
	av = anon_vma_alloc();
	if (!av)
		return -ENOMEM;
	av->parent = pvma->anon_vma;
	av->root = pvma->anon_vma->root;
	atomic_fetch_add(&av->parent->refcount, 1);
	vma->anon_vma = av;
	return 0;
}

/* anon_vma_clone_ref - a split or copied VMA shares @src's anon_vma. */
void anon_vma_clone_ref(struct vm_area_struct *dst, struct vm_area_struct *src)
{
	dst->anon_vma = src->anon_vma;
	if (dst->anon_vma)
		atomic_fetch_add(&dst->anon_vma->refcount, 1);
}

void unlink_anon_vmas(struct vm_area_struct *vma)
{
	put_anon_vma(vma->anon_vma);
	vma->anon_vma = NULL;
}

/*
 * page_add_new_anon_rmap - a freshly allocated page gets its first mapping.
 * Context: PTE lock held; the page is not yet visible to anyone else.
 */
void page_add_new_anon_rmap(struct umm_page *page, struct vm_area_struct *vma, uint64_t addr)
{
	atomic_store_explicit(&page->_mapcount, 0, memory_order_relaxed);
	page->index = linear_page_index(vma, addr);
	atomic_store_explicit(&page->mapping, (uintptr_t)vma->anon_vma | PAGE_MAPPING_ANON,
			      memory_order_release);
	SetPageFlag(page, PG_swapbacked);
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
