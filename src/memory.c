// SPDX-License-Identifier: MIT
/*
 * memory.c - faults, CPU accesses, GUP, zap, and copy-on-write fork.
 *
 * CPU accesses and the TLB shootdown
 * ----------------------------------
 * umm_read()/umm_write() are umm's load and store instructions.  They walk
 * the page tables without taking any lock, inside an "access section"
 * (tlb.c): the thread announces itself, loads the PTE, checks it permits
 * the access (present, writable for a store), sets the accessed/dirty bits
 * with a compare-and-swap exactly as the MMU would, copies at most one
 * page, and leaves the section.  Anything else (no PTE, read-only PTE for a
 * store, a PROT_NONE or swap PTE) ends the section and takes the fault path
 * below under mmap_lock, then retries.
 *
 * Every PTE change that takes a permission or a frame away (zap, COW
 * replacement, fork's write-protect, mprotect, mremap's move) is an atomic
 * RMW on the PTE followed by flush_tlb_mm(), which waits for the access
 * sections of that mm in progress at that instant.  When the flush returns
 * no access can still go through the old PTE: only then does umm drop the
 * old frame's mapping (zap gathers the frames and frees them after the
 * flush; COW puts the old frame after it).  Upgrades (setting the write
 * bit on reuse, setting A/D) need no flush, as on x86.
 *
 * Faults
 * ------
 * handle_mm_fault() runs with mmap_lock held for read and the VMA checked.
 * Pages are allocated, zeroed or copied outside the PTE lock; the PTE is
 * re-checked under the lock before it is installed (someone may have won
 * the race, in which case the new page is simply freed).
 */
#include <stdio.h>

#include "internal.h"


/* The normal page behind a present PTE; NULL for the zero frame. */
struct umm_page *vm_normal_page(struct umm *u, pte_t pte)
{
	if (pte_special(pte))
		return NULL;
	return pfn_to_page(u, pte_pfn(pte));
}


static inline bool pte_same(pte_t a, pte_t b) { return a == b; }

/* Context: the PTE table's lock held. */
static inline pte_t ptep_get(_Atomic pte_t *ptep)
{
	return atomic_load_explicit(ptep, memory_order_relaxed);
}

/* ---- anonymous and shared-anonymous faults ---- */

/*
 * map_new_anon_page - install a new, private, writable anonymous page at an
 * empty PTE (unless a racing fault filled it first: then the page is freed).
 * Return: 0.  Context: the page is ours alone; PTE lock not held.
 */
static int map_new_anon_page(struct vm_area_struct *vma, uint64_t addr, _Atomic pte_t *ptep,
			     struct pt_page *pt, struct umm_page *page, enum vm_event event)
{
	struct umm_mm *mm = vma->vm_mm;
	struct umm *u = mm->u;
	pte_t entry = pfn_pte(page_to_pfn(u, page), vma_pte_prot(vma->vm_flags) | _PAGE_RW |
			      _PAGE_ACCESSED | _PAGE_DIRTY);

	spin_lock(pte_lockptr(pt));
	if (!pte_none(ptep_get(ptep))) {
		spin_unlock(pte_lockptr(pt));
		put_page(u, page);
		return 0;
	}
	page_add_new_anon_rmap(page, vma, addr);
	add_mm_counter(mm, MM_ANONPAGES, 1);
	atomic_store_explicit(ptep, entry, memory_order_seq_cst);
	spin_unlock(pte_lockptr(pt));
	count_vm_event(u, event);
	return 0;
}

static int do_anonymous_page(struct vm_area_struct *vma, uint64_t addr, _Atomic pte_t *ptep,
			     struct pt_page *pt, unsigned int flags)
{
	struct umm *u = vma->vm_mm->u;
	struct umm_page *page;
	pte_t entry;

	if (!(flags & FAULT_FLAG_WRITE)) {
		/* read of never-written memory: the shared zero frame */
		entry = pfn_pte(ZERO_PFN, vma_pte_prot(vma->vm_flags) | _PAGE_SPECIAL | _PAGE_ACCESSED);
		spin_lock(pte_lockptr(pt));
		if (pte_none(ptep_get(ptep)))
			atomic_store_explicit(ptep, entry, memory_order_seq_cst);
		spin_unlock(pte_lockptr(pt));
		count_vm_event(u, PGFAULT_ZERO);
		return 0;
	}

	if (anon_vma_prepare(vma))
		return -ENOMEM;
	page = alloc_page(u, -1, ALLOC_ZERO);
	if (!page)
		return -ENOMEM;
	return map_new_anon_page(vma, addr, ptep, pt, page, PGFAULT_ANON);
}

/*
 * do_cow_fault - a write to a private file mapping where nothing is mapped
 * yet: the page cache's copy becomes this mapping's own anonymous page.
 */
static int do_cow_fault(struct vm_area_struct *vma, uint64_t addr, _Atomic pte_t *ptep,
			struct pt_page *pt, struct umm_page *cache)
{
	struct umm *u = vma->vm_mm->u;
	struct umm_page *page;

	if (anon_vma_prepare(vma) || !(page = alloc_page(u, -1, 0))) {
		put_page(u, cache);
		return -ENOMEM;
	}
	copy_page(page_address(u, page), page_address(u, cache));
	put_page(u, cache);
	return map_new_anon_page(vma, addr, ptep, pt, page, PGFAULT_COW);
}

/*
 * do_fault - first touch of a file or shmem mapping: map the page-cache
 * page (writable only in a shared writable mapping; a private mapping gets
 * it read-only, and a write copies it).  Past EOF there is nothing to map:
 * -EFAULT (SIGBUS on Linux).
 */
static int do_fault(struct vm_area_struct *vma, uint64_t addr, _Atomic pte_t *ptep,
		    struct pt_page *pt, unsigned int flags)
{
	struct umm_mm *mm = vma->vm_mm;
	struct umm *u = mm->u;
	struct address_space *as = vma->vm_mapping;
	uint64_t index = linear_page_index(vma, addr);
	bool shared = vma->vm_flags & VM_SHARED;
	struct umm_page *page;
	pte_t entry;
	int err;

	if (index >= mapping_nr_pages(as))
		return -EFAULT;
	err = filemap_get_page(as, index, &page);
	if (err)
		return err;
	if ((flags & FAULT_FLAG_WRITE) && !shared)
		return do_cow_fault(vma, addr, ptep, pt, page);
	entry = pfn_pte(page_to_pfn(u, page), vma_pte_prot(vma->vm_flags) | _PAGE_ACCESSED);
	if (shared && (vma->vm_flags & VM_WRITE))
		entry |= _PAGE_RW;
	if (flags & FAULT_FLAG_WRITE)
		entry |= _PAGE_DIRTY;
	spin_lock(pte_lockptr(pt));
	if (!pte_none(ptep_get(ptep))) {
		spin_unlock(pte_lockptr(pt));
		put_page(u, page);
		return 0;
	}
	page_add_file_rmap(page, vma);
	add_mm_counter(mm, mm_counter(page), 1);
	atomic_store_explicit(ptep, entry, memory_order_seq_cst);	/* the cache's ref moves to the PTE */
	spin_unlock(pte_lockptr(pt));
	count_vm_event(u, mapping_is_shmem(as) ? PGFAULT_SHMEM : PGFAULT_FILE);
	return 0;
}

/*
 * wp_page_copy - break COW: give this mapping its own copy of the page (or a
 * zeroed page in place of the zero frame), replace the PTE, flush, and only
 * then drop the old page.  @unshare (break_ksm): the copy keeps the old
 * PTE's permissions instead of becoming writable.
 */
static int wp_page_copy(struct vm_area_struct *vma, uint64_t addr, _Atomic pte_t *ptep,
			struct pt_page *pt, pte_t orig, struct umm_page *old, bool unshare)
{
	struct umm_mm *mm = vma->vm_mm;
	struct umm *u = mm->u;
	struct mmu_notifier_range range;
	struct umm_page *new;
	pte_t entry;

	if (anon_vma_prepare(vma))
		goto oom;
	new = alloc_page(u, -1, old ? 0 : ALLOC_ZERO);
	if (!new)
		goto oom;
	if (old)
		copy_page(page_address(u, new), page_address(u, old));

	if (unshare)
		entry = pfn_pte(page_to_pfn(u, new), vma_pte_prot(vma->vm_flags) | _PAGE_ACCESSED);
	else
		entry = pfn_pte(page_to_pfn(u, new), vma_pte_prot(vma->vm_flags) | _PAGE_RW |
				_PAGE_ACCESSED | _PAGE_DIRTY);
	mmu_notifier_range_init(&range, UMM_MMU_NOTIFY_CLEAR, mm, addr & PAGE_MASK,
				(addr & PAGE_MASK) + PAGE_SIZE);
	mmu_notifier_invalidate_range_start(&range);
	spin_lock(pte_lockptr(pt));
	if (!pte_same(ptep_get(ptep), orig)) {
		spin_unlock(pte_lockptr(pt));
		mmu_notifier_invalidate_range_end(&range);
		put_page(u, new);
		if (old)
			put_page(u, old);
		return 0;
	}
	page_add_new_anon_rmap(new, vma, addr);
	if (!old || !PageAnon(old)) {
		/* from the zero frame or a page-cache page to an anonymous page */
		add_mm_counter(mm, MM_ANONPAGES, 1);
		if (old)
			add_mm_counter(mm, mm_counter(old), -1);
	}
	/* ptep_clear_flush + set_pte_at: no access goes through @orig after this */
	atomic_exchange_explicit(ptep, entry, memory_order_seq_cst);
	flush_tlb_mm(mm);
	mmu_notifier_invalidate_secondary_tlbs(mm, range.r.start, range.r.end);
	if (old)
		page_remove_rmap(old, vma);
	else
		ksm_might_unmap_zero_page(mm, orig);
	spin_unlock(pte_lockptr(pt));
	mmu_notifier_invalidate_range_end(&range);
	count_vm_event(u, PGFAULT_COW);
	if (old) {
		free_swap_cache(u, old);
		put_page(u, old);	/* the mapping's reference */
		put_page(u, old);	/* ours, taken by do_wp_page */
	}
	return 0;
oom:
	if (old)
		put_page(u, old);
	return -ENOMEM;
}

/*
 * do_wp_page - a write to a present, read-only PTE in a writable VMA.
 * Shared mappings simply become writable.  A private anonymous page that
 * only this mapping uses (one map, no other reference) is reused in place;
 * anything else is copied.
 * Context: PTE lock held on entry; dropped on return.
 */
static int do_wp_page(struct vm_area_struct *vma, uint64_t addr, _Atomic pte_t *ptep,
		      struct pt_page *pt, pte_t orig)
{
	struct umm *u = vma->vm_mm->u;
	struct umm_page *page = vm_normal_page(u, orig);

	if (vma->vm_flags & VM_SHARED) {
		atomic_compare_exchange_strong(ptep, &orig, orig | _PAGE_RW | _PAGE_DIRTY | _PAGE_ACCESSED);
		spin_unlock(pte_lockptr(pt));
		return 0;
	}
	/* an exclusive page that still has a copy in swap: let the copy go */
	if (page && PageAnon(page) && !PageKsm(page) && page_mapcount(page) == 1 &&
	    TestPageFlag(page, PG_swapcache) && page_count(page) == 2 && trylock_page(page)) {
		try_to_free_swap(u, page);
		unlock_page(page);
	}
	if (page && PageAnon(page) && !PageKsm(page) &&
	    page_mapcount(page) == 1 && page_count(page) == 1) {
		if (atomic_compare_exchange_strong(ptep, &orig,
						   orig | _PAGE_RW | _PAGE_DIRTY | _PAGE_ACCESSED)) {
			page_move_anon_rmap(page, vma);
			count_vm_event(u, PGFAULT_REUSE);
		}
		spin_unlock(pte_lockptr(pt));
		return 0;
	}
	if (page)
		get_page(page);
	spin_unlock(pte_lockptr(pt));
	return wp_page_copy(vma, addr, ptep, pt, orig, page, false);
}

/*
 * do_unshare - break_ksm's fault (FAULT_FLAG_UNSHARE): a KSM page, or the
 * zero frame KSM mapped, is replaced by a private copy with the same
 * permissions, whatever the VMA allows (PROT_NONE and read-only areas
 * unmerge too).  Anything else is left alone.
 * Context: PTE lock held on entry; dropped on return.
 */
static int do_unshare(struct vm_area_struct *vma, uint64_t addr, _Atomic pte_t *ptep,
		      struct pt_page *pt, pte_t orig)
{
	struct umm_page *page = vm_normal_page(vma->vm_mm->u, orig);

	if (page ? !PageKsm(page) : !is_ksm_zero_pte(orig)) {
		spin_unlock(pte_lockptr(pt));
		return 0;
	}
	if (page)
		get_page(page);
	spin_unlock(pte_lockptr(pt));
	return wp_page_copy(vma, addr, ptep, pt, orig, page, true);
}

/*
 * Can this mapping use the page the swap cache holds, or must it have a
 * copy (Linux's ksm_might_need_to_copy)?  A KSM page is copied: sharing
 * ends when KSM pages come back from swap, and the stable node never has
 * to learn of a mapping ksmd did not make.  So is an anonymous page whose
 * index or anon_vma lineage does not fit this VMA: a swap slot KSM had
 * shared between different addresses leads the first fault's page to the
 * others, and the anon rmap could not find it at theirs.
 */
static bool swap_page_needs_copy(struct umm_page *page, struct vm_area_struct *vma, uint64_t addr)
{
	uintptr_t m = atomic_load_explicit(&page->mapping, memory_order_acquire);
	struct anon_vma *av;

	if (PageKsm(page))
		return true;
	if (!(m & PAGE_MAPPING_ANON))
		return false;		/* read in afresh: this mapping sets it up */
	av = (struct anon_vma *)(m & ~PAGE_MAPPING_FLAGS);
	return page->index != linear_page_index(vma, addr) || av->root != vma->anon_vma->root;
}

/*
 * do_swap_copy - map a private copy of the page the swap cache holds for
 * this entry (see swap_page_needs_copy); the slot loses this PTE's count.
 * Context: page locked and referenced (both given up here); no PTE lock.
 */
static int do_swap_copy(struct vm_area_struct *vma, uint64_t addr, _Atomic pte_t *ptep,
			    struct pt_page *pt, pte_t orig, struct umm_page *page)
{
	struct umm_mm *mm = vma->vm_mm;
	struct umm *u = mm->u;
	struct umm_page *new = alloc_page(u, -1, 0);
	int err = 0;

	if (!new) {
		err = -ENOMEM;
		goto out;
	}
	copy_page(page_address(u, new), page_address(u, page));
	spin_lock(pte_lockptr(pt));
	if (!pte_same(ptep_get(ptep), orig)) {
		spin_unlock(pte_lockptr(pt));
		put_page(u, new);
		goto out;
	}
	swap_free(u, swp_offset(orig));
	add_mm_counter(mm, MM_SWAPENTS, -1);
	add_mm_counter(mm, MM_ANONPAGES, 1);
	page_add_new_anon_rmap(new, vma, addr);
	atomic_store_explicit(ptep, pfn_pte(page_to_pfn(u, new), vma_pte_prot(vma->vm_flags) |
					    _PAGE_ACCESSED), memory_order_seq_cst);
	spin_unlock(pte_lockptr(pt));
out:
	unlock_page(page);
	put_page(u, page);
	return err;
}

/*
 * do_swap_page - a fault on a swap entry: take the page from the swap
 * cache, or read it in (only the fault that claims the slot's cache token
 * reads; the others find its page in the cache and wait on its lock), and
 * map it again.  The page leaves swap when this mapping is its only user
 * and it is written to, or swap is getting full; otherwise the copy in
 * swap stays valid and the page can be dropped again without a write.
 * Return: 0 (retry the access), -ENOMEM, -EIO (the read failed: the swap
 * entry stays, nothing is mapped in its place).
 * Context: mmap_lock held for read; no other lock.
 */
static int do_swap_page(struct vm_area_struct *vma, uint64_t addr, _Atomic pte_t *ptep,
			struct pt_page *pt, pte_t orig, unsigned int flags)
{
	struct umm_mm *mm = vma->vm_mm;
	struct umm *u = mm->u;
	uint64_t slot = swp_offset(orig);
	struct umm_page *page;
	bool exclusive;
	pte_t entry;
	int err;

	VM_BUG_ON(!u->swap || !slot || slot >= u->swap->nr_slots);
	if (anon_vma_prepare(vma))
		return -ENOMEM;
	for (;;) {
		page = lookup_swap_cache(u, slot);
		if (page)
			break;
		err = swapcache_prepare(u, slot);
		if (err == -ENOENT)
			return 0;		/* the entry went: look at the PTE again */
		if (err == -EEXIST) {
			sched_yield();		/* being read in, or leaving the cache */
			continue;
		}
		page = alloc_page(u, -1, 0);
		if (!page) {
			swapcache_clear(u, slot);
			return -ENOMEM;
		}
		trylock_page(page);		/* ours alone: cannot fail */
		add_to_swap_cache(u, page, slot);
		err = swap_readpage(u, page, slot);
		if (err) {
			delete_from_swap_cache(u, page);
			put_page(u, page);	/* the cache's reference */
			unlock_page(page);
			put_page(u, page);
			return err;
		}
		lru_cache_add(u, page);
		unlock_page(page);
		break;
	}
	lock_page(page);
	if (swap_page_needs_copy(page, vma, addr))
		return do_swap_copy(vma, addr, ptep, pt, orig, page);
	spin_lock(pte_lockptr(pt));
	if (!pte_same(ptep_get(ptep), orig) || !TestPageFlag(page, PG_swapcache) ||
	    page->private != slot) {
		spin_unlock(pte_lockptr(pt));
		unlock_page(page);
		put_page(u, page);
		return 0;
	}
	exclusive = !swap_free(u, slot) && page_mapcount(page) == 0;
	add_mm_counter(mm, MM_SWAPENTS, -1);
	add_mm_counter(mm, MM_ANONPAGES, 1);
	page_add_anon_rmap(page, vma, addr, exclusive);
	entry = pfn_pte(page_to_pfn(u, page), vma_pte_prot(vma->vm_flags) | _PAGE_ACCESSED);
	if (exclusive && ((flags & FAULT_FLAG_WRITE) || (vma->vm_flags & VM_LOCKED) ||
			  nr_swap_free(u) < u->swap->nr_slots / 2)) {
		/* ours alone: the copy in swap is not needed any more */
		delete_from_swap_cache(u, page);
		put_page(u, page);		/* the cache's reference */
		if ((flags & FAULT_FLAG_WRITE) && (vma->vm_flags & VM_WRITE))
			entry |= _PAGE_RW | _PAGE_DIRTY;
	}
	atomic_store_explicit(ptep, entry, memory_order_seq_cst);	/* our reference moves to it */
	spin_unlock(pte_lockptr(pt));
	unlock_page(page);
	return 0;
}

/*
 * migration_entry_wait - the page at this PTE is being moved: wait until
 * the migration, which holds the page lock, puts a PTE back.
 * Context: PTE lock held on entry, dropped on return.
 */
static int migration_entry_wait(struct umm *u, struct pt_page *pt, pte_t orig)
{
	struct umm_page *page = pfn_to_page(u, swp_offset(orig));
	/*
	 * While the entry is in the PTE (checked under its lock, held here)
	 * the migration holds the page lock, and it wakes waiters before it
	 * frees the frame: wait without a reference, which would make the
	 * migration's reference count check fail.
	 */
	uint32_t seen = atomic_fetch_or(&page->flags, PG_waiters);

	spin_unlock(pte_lockptr(pt));
	page_lock_wait(page, seen);
	return 0;
}

/*
 * handle_mm_fault - resolve a fault at @addr for the access @flags describes.
 * Return: 0 (the access should retry), -ENOMEM.
 * Context: mmap_lock held for read; the VMA permits the access.
 */
int handle_mm_fault(struct vm_area_struct *vma, uint64_t addr, unsigned int flags)
{
	struct umm_mm *mm = vma->vm_mm;
	struct pt_page *pt;
	_Atomic pte_t *ptep;
	pte_t pte;

	count_vm_event(mm->u, PGFAULT);
	if (unlikely(atomic_load_explicit(&mm->unstable, memory_order_relaxed)))
		return -EFAULT;		/* reaped: its memory is not coming back */
	ptep = pte_offset(mm, addr, true, &pt);
	if (!ptep)
		return -ENOMEM;
	pte = atomic_load_explicit(ptep, memory_order_acquire);
	if (pte_none(pte)) {
		if (flags & FAULT_FLAG_UNSHARE)
			return 0;	/* nothing to unshare */
		if (vma->vm_mapping)
			return do_fault(vma, addr, ptep, pt, flags);
		return do_anonymous_page(vma, addr, ptep, pt, flags);
	}
	spin_lock(pte_lockptr(pt));
	pte = ptep_get(ptep);
	if (is_migration_pte(pte))
		return migration_entry_wait(mm->u, pt, pte);
	if (is_swapfile_pte(pte)) {
		spin_unlock(pte_lockptr(pt));
		return do_swap_page(vma, addr, ptep, pt, pte, flags);
	}
	if ((flags & FAULT_FLAG_UNSHARE) && pte_present(pte))
		return do_unshare(vma, addr, ptep, pt, pte);
	if (!pte_present(pte) || pte_protnone(pte)) {
		/* a PROT_NONE PTE in an accessible VMA is a racing mprotect: retry */
		spin_unlock(pte_lockptr(pt));
		return 0;
	}
	if ((flags & FAULT_FLAG_WRITE) && !pte_write(pte))
		return do_wp_page(vma, addr, ptep, pt, pte);
	/* spurious: the access sets A/D itself */
	spin_unlock(pte_lockptr(pt));
	return 0;
}

/* Does @vma allow a read (any of R/W/X, as x86) or a write? */
static inline bool vma_permits(const struct vm_area_struct *vma, bool write)
{
	return write ? (vma->vm_flags & VM_WRITE) : (vma->vm_flags & VM_ACCESS_FLAGS);
}

/*
 * fault_in - the slow path of a CPU access or GUP: find the VMA, check the
 * access, handle the fault.
 * Return: 0 to retry the access, -EFAULT, -ENOMEM.
 * Context: mmap_lock held for read.
 */
static int fault_in(struct umm_mm *mm, uint64_t addr, bool write)
{
	struct vm_area_struct *vma = find_vma(mm, addr);

	if (!vma || vma->vm_start > addr || !vma_permits(vma, write))
		return -EFAULT;
	return handle_mm_fault(vma, addr, write ? FAULT_FLAG_WRITE : 0);
}

/*
 * Word-sized accesses are a load and a store, as the instruction they stand
 * for; a variable-length memcpy would be a rep movs costing tens of ns.
 */
static inline void copy_access(void *dst, const void *src, size_t n)
{
	switch (n) {
	case 8: memcpy(dst, src, 8); break;
	case 4: memcpy(dst, src, 4); break;
	case 2: memcpy(dst, src, 2); break;
	case 1: memcpy(dst, src, 1); break;
	default: memcpy(dst, src, n); break;
	}
}

/*
 * access_one - one CPU access inside one page, lockless.
 * Return: true if done, false if the caller must fault and retry.
 */
static inline bool access_one(struct umm_mm *mm, struct umm_cpu *cpu, uint64_t addr,
			      void *buf, size_t n, bool write)
{
	pte_t need = write ? (_PAGE_PRESENT | _PAGE_RW) : _PAGE_PRESENT;
	pte_t bits = write ? (_PAGE_ACCESSED | _PAGE_DIRTY) : _PAGE_ACCESSED;
	_Atomic pte_t *ptep;
	pte_t pte;
	char *frame;

	cpu_access_begin(cpu, mm);
	ptep = pte_offset_lockless(mm->pgd, addr);
	if (!ptep)
		goto miss;
	pte = atomic_load_explicit(ptep, memory_order_seq_cst);
	while ((pte & need) == need && (pte & bits) != bits) {
		/* the MMU's A/D update: atomic, and only on the PTE we checked */
		if (atomic_compare_exchange_weak(ptep, &pte, pte | bits))
			pte |= bits;
	}
	if ((pte & need) != need)
		goto miss;
	frame = mm->u->arena + (pte_pfn(pte) << PAGE_SHIFT) + (addr & ~PAGE_MASK);
	if (write)
		copy_access(frame, buf, n);
	else
		copy_access(buf, frame, n);
	cpu_access_end(cpu);
	return true;
miss:
	cpu_access_end(cpu);
	return false;
}

static ssize_t access_mm(struct umm_mm *mm, uint64_t addr, void *buf, size_t len, bool write)
{
	struct umm_cpu *cpu;
	size_t done = 0;

	if (!mm || (!buf && len))
		return -EINVAL;
	if (unlikely(__atomic_load_n(&mm->dead, __ATOMIC_RELAXED)))
		return -EFAULT;		/* exited; a notifier may still hold the struct */
	if (addr + len < addr)
		len = -addr;		/* stop at the top of the address space */
	cpu = this_cpu();
	while (done < len) {
		size_t n = min_t(size_t, len - done, PAGE_SIZE - (addr & ~PAGE_MASK));
		int err;

		if (likely(addr < UMM_TASK_SIZE &&
			   access_one(mm, cpu, addr, (char *)buf + done, n, write))) {
			done += n;
			addr += n;
			continue;
		}
		if (addr >= UMM_TASK_SIZE)
			err = -EFAULT;
		else {
			pthread_rwlock_rdlock(&mm->mmap_lock);
			err = fault_in(mm, addr, write);
			pthread_rwlock_unlock(&mm->mmap_lock);
		}
		if (err)
			return done ? (ssize_t)done : err;
	}
	return (ssize_t)done;
}

ssize_t umm_read(struct umm_mm *mm, uint64_t addr, void *buf, size_t len)
{
	return access_mm(mm, addr, buf, len, false);
}

ssize_t umm_write(struct umm_mm *mm, uint64_t addr, const void *buf, size_t len)
{
	return access_mm(mm, addr, (void *)buf, len, true);
}

/* ---- GUP ---- */

/*
 * follow_page - under the PTE lock, take a reference on the page mapped at
 * @addr if the PTE already allows the access.  Return: the page or NULL.
 */
static struct umm_page *follow_page(struct umm_mm *mm, uint64_t addr, bool write)
{
	struct umm *u = mm->u;
	struct umm_page *page = NULL;
	struct pt_page *pt;
	_Atomic pte_t *ptep = pte_offset(mm, addr, false, &pt);
	pte_t pte;

	if (!ptep)
		return NULL;
	spin_lock(pte_lockptr(pt));
	pte = ptep_get(ptep);
	if ((pte & _PAGE_PRESENT) && (!write || pte_write(pte))) {
		page = pfn_to_page(u, pte_pfn(pte));
		get_page(page);
		atomic_fetch_or(ptep, write ? (_PAGE_ACCESSED | _PAGE_DIRTY) : _PAGE_ACCESSED);
	}
	spin_unlock(pte_lockptr(pt));
	return page;
}

int umm_get_user_page(struct umm_mm *mm, uint64_t addr, unsigned int gup_flags,
		      struct umm_page **pagep)
{
	bool write = gup_flags & UMM_GUP_WRITE;
	int err = 0;

	if (!mm || !pagep || (gup_flags & ~UMM_GUP_WRITE))
		return -EINVAL;
	if (addr >= UMM_TASK_SIZE)
		return -EFAULT;
	pthread_rwlock_rdlock(&mm->mmap_lock);
	for (;;) {
		struct umm_page *page;

		if (mm->dead) {		/* exited: page tables gone */
			err = -EFAULT;
			break;
		}
		page = follow_page(mm, addr, write);

		if (page) {
			*pagep = page;
			break;
		}
		err = fault_in(mm, addr, write);
		if (err)
			break;
	}
	pthread_rwlock_unlock(&mm->mmap_lock);
	return err;
}

static struct umm *page_umm(const struct umm_page *page);

void *umm_page_address(struct umm_page *page)
{
	struct umm *u = page ? page_umm(page) : NULL;

	return u ? page_address(u, page) : NULL;
}

uint64_t umm_page_pfn(const struct umm_page *page)
{
	struct umm *u = page ? page_umm(page) : NULL;

	return u ? page_to_pfn(u, page) : (uint64_t)-1;
}

void umm_put_page(struct umm_page *page)
{
	struct umm *u = page ? page_umm(page) : NULL;

	if (u)
		put_page(u, page);
}

/*
 * Machines register themselves in a small table so that a bare struct
 * umm_page pointer (what GUP hands out, as the kernel's) finds its machine
 * with one load: each descriptor carries its machine's slot.
 */
#define MAX_MACHINES 1024
static _Atomic(struct umm *) machines[MAX_MACHINES];
static pthread_mutex_t machines_lock = PTHREAD_MUTEX_INITIALIZER;

/* Return: the slot, or -ENOSPC when MAX_MACHINES machines exist at once. */
int machine_register(struct umm *u)
{
	int ret = -ENOSPC;

	pthread_mutex_lock(&machines_lock);
	for (int i = 0; i < MAX_MACHINES; i++) {
		if (!atomic_load(&machines[i])) {
			atomic_store(&machines[i], u);
			ret = i;
			break;
		}
	}
	pthread_mutex_unlock(&machines_lock);
	return ret;
}

void machine_unregister(struct umm *u)
{
	pthread_mutex_lock(&machines_lock);
	atomic_store(&machines[u->machine_id], NULL);
	pthread_mutex_unlock(&machines_lock);
}

static struct umm *page_umm(const struct umm_page *page)
{
	struct umm *u = atomic_load_explicit(&machines[page->machine % MAX_MACHINES],
					     memory_order_acquire);

	if (!u || page < u->pages || page >= u->pages + u->nr_frames)
		return NULL;
	return u;
}

/* ---- reverse-map operations on the page at an address ---- */

/* The normal page mapped at @addr, with a reference; -EFAULT if none. */
static int page_at(struct umm_mm *mm, uint64_t addr, struct umm_page **pagep)
{
	struct vm_area_struct *vma;
	struct pt_page *pt;
	_Atomic pte_t *ptep;
	int err = -EFAULT;

	if (!mm)
		return -EINVAL;
	pthread_rwlock_rdlock(&mm->mmap_lock);
	vma = find_vma(mm, addr);
	if (vma && vma->vm_start <= addr && (ptep = pte_offset(mm, addr, false, &pt))) {
		pte_t pte;

		spin_lock(pte_lockptr(pt));
		pte = ptep_get(ptep);
		if (pte_present(pte) && !pte_special(pte)) {
			*pagep = pfn_to_page(mm->u, pte_pfn(pte));
			get_page(*pagep);
			err = 0;
		}
		spin_unlock(pte_lockptr(pt));
	}
	pthread_rwlock_unlock(&mm->mmap_lock);
	return err;
}

int umm_page_referenced(struct umm_mm *mm, uint64_t addr)
{
	struct umm_page *page;
	int ret = page_at(mm, addr, &page);

	if (ret)
		return ret;
	ret = page_referenced(page, false);
	put_page(mm->u, page);
	return ret;
}

int umm_page_mkclean(struct umm_mm *mm, uint64_t addr)
{
	struct umm_page *page;
	int ret = page_at(mm, addr, &page);

	if (ret)
		return ret;
	lock_page(page);
	ret = page_mkclean(page);
	unlock_page(page);
	put_page(mm->u, page);
	return ret;
}

int umm_try_to_unmap(struct umm_mm *mm, uint64_t addr)
{
	struct umm_page *page;
	int ret = page_at(mm, addr, &page);

	if (ret)
		return ret;
	lock_page(page);
	ret = try_to_unmap(page) ? 0 : -EBUSY;
	unlock_page(page);
	put_page(mm->u, page);
	return ret;
}

int umm_page_rmap_count(struct umm_mm *mm, uint64_t addr)
{
	struct umm_page *page;
	int ret = page_at(mm, addr, &page);

	if (ret)
		return ret;
	ret = page_rmap_count(page);
	put_page(mm->u, page);
	return ret;
}

/* ---- pagemap ---- */

int umm_pagemap(struct umm_mm *mm, uint64_t addr, struct umm_pageinfo *info)
{
	struct vm_area_struct *vma;
	struct pt_page *pt;
	_Atomic pte_t *ptep;
	int err = 0;

	if (!mm || !info)
		return -EINVAL;
	memset(info, 0, sizeof(*info));
	pthread_rwlock_rdlock(&mm->mmap_lock);
	vma = find_vma(mm, addr);
	if (!vma || vma->vm_start > addr) {
		err = -EFAULT;
		goto out;
	}
	ptep = pte_offset(mm, addr, false, &pt);
	if (ptep) {
		pte_t pte;

		spin_lock(pte_lockptr(pt));
		pte = ptep_get(ptep);
		if (is_swap_pte(pte))
			info->flags = UMM_PI_SWAPPED;	/* or in migration, which /proc shows alike */
		if (pte_present(pte)) {
			struct umm_page *page = vm_normal_page(mm->u, pte);

			info->pfn = pte_pfn(pte);
			info->flags = UMM_PI_PRESENT;
			if (pte_dirty(pte))
				info->flags |= UMM_PI_DIRTY;
			if (pte_young(pte))
				info->flags |= UMM_PI_YOUNG;
			if (pte_write(pte))
				info->flags |= UMM_PI_WRITE;
			if (!page) {
				info->flags |= UMM_PI_ZERO;
			} else {
				if (PageAnon(page))
					info->flags |= UMM_PI_ANON;
				if (PageKsm(page))
					info->flags |= UMM_PI_KSM;
				if (TestPageFlag(page, PG_dirty))
					info->flags |= UMM_PI_DIRTY;
				if (vma->vm_flags & VM_LOCKED)
					info->flags |= UMM_PI_MLOCKED;
				info->mapcount = page_mapcount(page);
				info->refcount = page_count(page);
			}
		}
		spin_unlock(pte_lockptr(pt));
	}
	if (!info->flags && vma->vm_mapping && mapping_is_shmem(vma->vm_mapping)) {
		/* a shmem page in swap leaves its slot in the object, not in the PTE */
		struct address_space *as = vma->vm_mapping;
		void *item;

		pthread_mutex_lock(&as->i_pages_lock);
		item = radix_lookup(&as->i_pages, linear_page_index(vma, addr));
		if (item && radix_is_swap(item))
			info->flags = UMM_PI_SWAPPED;
		pthread_mutex_unlock(&as->i_pages_lock);
	}
out:
	pthread_rwlock_unlock(&mm->mmap_lock);
	return err;
}

/* ---- zap ---- */

static void zap_pte_range(struct mmu_gather *tlb, struct vm_area_struct *vma,
			  struct pt_page *pt, uint64_t addr, uint64_t end)
{
	struct umm_mm *mm = vma->vm_mm;
	struct umm *u = mm->u;

	spin_lock(pte_lockptr(pt));
	for (; addr < end; addr += PAGE_SIZE) {
		_Atomic pte_t *ptep = &pt->e[(addr >> PAGE_SHIFT) & 511];
		struct umm_page *page;
		pte_t pte;

		if (pte_none(ptep_get(ptep)))
			continue;
		pte = atomic_exchange_explicit(ptep, 0, memory_order_seq_cst);
		tlb->need_flush = true;
		if (is_swapfile_pte(pte)) {
			free_swap_and_cache(u, swp_offset(pte));
			add_mm_counter(mm, MM_SWAPENTS, -1);
			continue;
		}
		if (is_migration_pte(pte)) {
			/* the page keeps counting where it did until it is moved */
			add_mm_counter(mm, mm_counter(pfn_to_page(u, swp_offset(pte))), -1);
			continue;
		}
		page = vm_normal_page(u, pte);
		if (!page) {
			ksm_might_unmap_zero_page(mm, pte);
			continue;
		}
		if (pte_dirty(pte) && !PageAnon(page))
			SetPageFlag(page, PG_dirty);
		page_remove_rmap(page, vma);
		add_mm_counter(mm, mm_counter(page), -1);
		tlb_remove_page(tlb, page);
	}
	spin_unlock(pte_lockptr(pt));
}

/*
 * unmap_vmas - zap every PTE of [start, end) inside @vma; the frames are
 * freed by the gather after its flush.
 * Context: mmap_lock held (read for DONTNEED, write for munmap/exit).
 */
void unmap_vmas(struct mmu_gather *tlb, struct vm_area_struct *vma, uint64_t start, uint64_t end)
{
	struct umm_mm *mm = vma->vm_mm;
	uint64_t addr = start;

	while (addr < end) {
		uint64_t next = min_t(uint64_t, (addr + PMD_SIZE) & PMD_MASK, end);
		struct pt_page *pt;

		if (pte_offset(mm, addr, false, &pt))
			zap_pte_range(tlb, vma, pt, addr, next);
		addr = next;
	}
}

/* ---- fork ---- */

/*
 * copy_page_range - fork's copy of a private VMA's PTEs: both sides map the
 * same frames, write-protected, each mapping holding a reference.  The
 * parent is flushed by the caller once every VMA is copied.
 * Return: 0, or -ENOMEM (a page table, or a swap slot whose count is full;
 * what was copied stays for the caller's exit of the child).
 * Context: parent's mmap_lock held for write; child not yet visible.
 */
int copy_page_range(struct vm_area_struct *dst, struct vm_area_struct *src)
{
	struct umm_mm *dst_mm = dst->vm_mm, *src_mm = src->vm_mm;
	struct umm *u = src_mm->u;
	uint64_t addr = src->vm_start;
	int err = 0;

	while (addr < src->vm_end && !err) {
		uint64_t next = min_t(uint64_t, (addr + PMD_SIZE) & PMD_MASK, src->vm_end);
		struct pt_page *spt, *dpt;
		_Atomic pte_t *sptep, *dptep;
		long rss[NR_MM_COUNTERS] = { 0 };
		bool waited = false;

		sptep = pte_offset(src_mm, addr, false, &spt);
		if (!sptep) {
			addr = next;
			continue;
		}
		dptep = pte_offset(dst_mm, addr, true, &dpt);
		if (!dptep)
			return -ENOMEM;
		spin_lock(pte_lockptr(spt));
		spin_lock(pte_lockptr(dpt));
		for (; addr < next; addr += PAGE_SIZE, sptep++, dptep++) {
			pte_t pte = ptep_get(sptep);
			struct umm_page *page;

			if (pte_none(pte))
				continue;
			if (is_migration_pte(pte)) {
				/*
				 * Don't copy it: the migration's walk may have
				 * passed the child already.  Wait for the move
				 * to finish and copy what it leaves.
				 */
				spin_unlock(pte_lockptr(dpt));
				migration_entry_wait(u, spt, pte);
				waited = true;
				break;
			}
			if (is_swapfile_pte(pte)) {
				/* a full count fails the fork, as Linux without a continuation */
				err = swap_duplicate(u, swp_offset(pte));
				if (err)
					break;
				atomic_store_explicit(dptep, pte, memory_order_relaxed);
				rss[MM_SWAPENTS]++;
				continue;
			}
			page = vm_normal_page(u, pte);
			if (page) {
				get_page(page);
				page_dup_rmap(page);
				rss[mm_counter(page)]++;
			} else if (is_ksm_zero_pte(pte)) {
				/* the child's PTE counts as its own KSM zero page */
				ksm_map_zero_page(dst_mm);
			}
			if (pte_write(pte)) {
				atomic_fetch_and(sptep, ~_PAGE_RW);
				pte &= ~_PAGE_RW;
			}
			atomic_store_explicit(dptep, pte & ~_PAGE_ACCESSED, memory_order_relaxed);
		}
		if (!waited) {		/* else: locks dropped, go on from @addr */
			spin_unlock(pte_lockptr(dpt));
			spin_unlock(pte_lockptr(spt));
		}
		for (int i = 0; i < NR_MM_COUNTERS; i++)
			if (rss[i])
				add_mm_counter(dst_mm, i, rss[i]);
	}
	return err;
}

/* ---- mprotect and mremap on PTEs ---- */

/*
 * change_protection - make the PTEs of [start, end) agree with @newflags:
 * write permission is removed where the VMA lost it (never added: the
 * write fault does that), PROT_NONE PTEs lose CPU access but keep their
 * frame, and come back when access returns.  Flushes before returning.
 * Context: mmap_lock held for write.
 */
void change_protection(struct vm_area_struct *vma, uint64_t start, uint64_t end,
		       unsigned long newflags)
{
	struct umm_mm *mm = vma->vm_mm;
	bool none = !(newflags & VM_ACCESS_FLAGS);
	bool nowrite = !(newflags & VM_WRITE);
	struct mmu_notifier_range range;
	bool changed = false;
	uint64_t addr = start;

	mmu_notifier_range_init(&range, UMM_MMU_NOTIFY_PROTECTION_VMA, mm, start, end);
	mmu_notifier_invalidate_range_start(&range);
	while (addr < end) {
		uint64_t next = min_t(uint64_t, (addr + PMD_SIZE) & PMD_MASK, end);
		struct pt_page *pt;
		_Atomic pte_t *ptep = pte_offset(mm, addr, false, &pt);

		if (!ptep) {
			addr = next;
			continue;
		}
		spin_lock(pte_lockptr(pt));
		for (; addr < next; addr += PAGE_SIZE, ptep++) {
			pte_t old = ptep_get(ptep), new;

			do {
				if (!pte_present(old))
					break;
				new = old;
				if (none)
					new = (new & ~(_PAGE_PRESENT | _PAGE_RW)) | _PAGE_PROTNONE;
				else if (pte_protnone(new))
					new = (new & ~_PAGE_PROTNONE) | _PAGE_PRESENT;
				if (nowrite)
					new &= ~_PAGE_RW;
				if (new == old)
					break;
				changed = true;
			} while (!atomic_compare_exchange_weak(ptep, &old, new));
		}
		spin_unlock(pte_lockptr(pt));
	}
	if (changed) {
		flush_tlb_mm(mm);
		mmu_notifier_invalidate_secondary_tlbs(mm, start, end);
	}
	mmu_notifier_invalidate_range_end(&range);
}

/*
 * move_page_tables - mremap's move: carry every PTE of [old_addr, +len) to
 * [new_addr, +len).  Frames, counts and page indexes stay as they are (the
 * new VMA keeps the old pgoff).  Flushes the old range before returning.
 * Return: 0, or -ENOMEM if a table could not be allocated (the PTEs moved
 * so far stay moved, as on Linux, and the caller moves them back).
 * Context: mmap_lock held for write.
 */
int move_page_tables(struct vm_area_struct *vma, uint64_t old_addr, struct vm_area_struct *new_vma,
		     uint64_t new_addr, uint64_t len)
{
	struct umm_mm *mm = vma->vm_mm;
	struct mmu_notifier_range range;
	bool moved = false;
	int err = 0;

	mmu_notifier_range_init(&range, UMM_MMU_NOTIFY_UNMAP, mm, old_addr, old_addr + len);
	mmu_notifier_invalidate_range_start(&range);
	for (uint64_t off = 0; off < len; off += PAGE_SIZE) {
		struct pt_page *opt, *npt;
		_Atomic pte_t *optep, *nptep;
		pte_t pte;

		optep = pte_offset(mm, old_addr + off, false, &opt);
		if (!optep) {
			/* skip to the next PTE table */
			uint64_t next = ((old_addr + off + PMD_SIZE) & PMD_MASK) - old_addr;

			off = next - PAGE_SIZE;
			continue;
		}
		if (pte_none(atomic_load_explicit(optep, memory_order_relaxed)))
			continue;
		nptep = pte_offset(mm, new_addr + off, true, &npt);
		if (!nptep) {
			err = -ENOMEM;
			break;
		}
		spin_lock(pte_lockptr(opt));
		pte = atomic_load_explicit(optep, memory_order_relaxed);
		if (is_migration_pte(pte)) {
			/* the migration's walk could miss it at either address: wait */
			migration_entry_wait(mm->u, opt, pte);
			off -= PAGE_SIZE;
			continue;
		}
		if (npt != opt)
			spin_lock(pte_lockptr(npt));
		pte = atomic_exchange_explicit(optep, 0, memory_order_seq_cst);
		VM_BUG_ON(!pte_none(atomic_load_explicit(nptep, memory_order_relaxed)));
		atomic_store_explicit(nptep, pte, memory_order_seq_cst);
		if (npt != opt)
			spin_unlock(pte_lockptr(npt));
		spin_unlock(pte_lockptr(opt));
		moved = true;
	}
	if (moved) {
		flush_tlb_mm(mm);
		mmu_notifier_invalidate_secondary_tlbs(mm, old_addr, old_addr + len);
	}
	mmu_notifier_invalidate_range_end(&range);
	return err;
}

/*
 * populate_vma_range - fault in [start, end) as mlock/MAP_POPULATE do:
 * write faults for private writable mappings (to break COW now), read
 * faults otherwise.  Stops quietly at the first failure, as Linux does.
 * Context: mmap_lock held for read.
 */
int populate_vma_range(struct umm_mm *mm, uint64_t start, uint64_t end)
{
	for (uint64_t addr = start; addr < end; addr += PAGE_SIZE) {
		struct vm_area_struct *vma = find_vma(mm, addr);
		bool write;
		int err;

		if (!vma || vma->vm_start > addr)
			return -ENOMEM;
		if (!(vma->vm_flags & VM_ACCESS_FLAGS)) {
			addr = vma->vm_end - PAGE_SIZE;
			continue;
		}
		write = (vma->vm_flags & (VM_WRITE | VM_SHARED)) == VM_WRITE;
		for (;;) {
			struct umm_page *page = follow_page(mm, addr, write);

			if (page) {
				put_page(mm->u, page);
				break;
			}
			err = handle_mm_fault(vma, addr, write ? FAULT_FLAG_WRITE : 0);
			if (err)
				return err;
		}
	}
	return 0;
}
