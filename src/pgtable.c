// SPDX-License-Identifier: MIT
/*
 * pgtable.c - page-table pages: allocation, walks, and freeing them safely.
 *
 * Four levels of 512 entries (x86-64: 9/9/9/9 bits + 12-bit offset).  Upper
 * levels hold pointers to the next table; level 1 holds PTEs.  Each PTE
 * table carries its own lock (split PTL).  New tables are published with a
 * release store under mm->page_table_lock, so lockless walkers (CPU
 * accesses, see tlb.c) always find a fully initialised table; unlinked
 * tables are freed only after a flush (tlb_remove_table).
 */
#include "internal.h"

struct pt_page *pt_alloc(struct umm_mm *mm, int level)
{
	struct pt_page *t = aligned_alloc(64, (sizeof(*t) + 63) & ~(size_t)63);

	if (!t)
		return NULL;
	for (int i = 0; i < PTRS_PER_TABLE; i++)
		atomic_init(&t->e[i], 0);
	spin_lock_init(&t->ptl);
	t->level = level;
	atomic_fetch_add_explicit(&mm->nr_ptes, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&mm->u->nr_pgtables, 1, memory_order_relaxed);
	return t;
}

void pt_free(struct umm_mm *mm, struct pt_page *t)
{
	atomic_fetch_sub_explicit(&mm->nr_ptes, 1, memory_order_relaxed);
	atomic_fetch_sub_explicit(&mm->u->nr_pgtables, 1, memory_order_relaxed);
	free(t);
}

static inline unsigned int pt_index(uint64_t addr, int level)
{
	return (addr >> (PAGE_SHIFT + 9 * (level - 1))) & 511;
}

/*
 * pte_offset - find the PTE slot of @addr in @mm, allocating missing tables
 * when @alloc.  *@ptp receives the PTE table (whose ptl guards the slot).
 * Return: the slot, or NULL (no table, or no memory for one).
 * Context: mmap_lock held (read is enough).
 */
_Atomic pte_t *pte_offset(struct umm_mm *mm, uint64_t addr, bool alloc, struct pt_page **ptp)
{
	struct pt_page *t = mm->pgd;

	for (int level = 4; level > 1; level--) {
		_Atomic uint64_t *slot = &t->e[pt_index(addr, level)];
		uintptr_t next = atomic_load_explicit(slot, memory_order_acquire);

		if (!next) {
			struct pt_page *n;

			if (!alloc)
				return NULL;
			n = pt_alloc(mm, level - 1);
			if (!n)
				return NULL;
			spin_lock(&mm->page_table_lock);
			next = atomic_load_explicit(slot, memory_order_relaxed);
			if (!next) {
				atomic_store_explicit(slot, (uintptr_t)n, memory_order_release);
				next = (uintptr_t)n;
				n = NULL;
			}
			spin_unlock(&mm->page_table_lock);
			if (n)
				pt_free(mm, n);
		}
		t = (struct pt_page *)next;
	}
	if (ptp)
		*ptp = t;
	return &t->e[pt_index(addr, 1)];
}

static uint64_t level_size(int level)
{
	return 1ULL << (PAGE_SHIFT + 9 * level);
}

/*
 * free_range - unlink and gather every table below @t that maps only
 * addresses inside [floor, ceiling) and overlaps [start, end).  Such tables
 * hold no PTE any more: the range between two VMAs has none.
 */
static void free_range(struct mmu_gather *tlb, struct pt_page *t, uint64_t base, int level,
		       uint64_t floor, uint64_t ceiling, uint64_t start, uint64_t end)
{
	uint64_t sz = level_size(level - 1);	/* what one entry of @t covers */

	for (unsigned int i = pt_index(start > base ? start : base, level); i < PTRS_PER_TABLE; i++) {
		uint64_t cb = base + i * sz, ce = cb + sz;
		struct pt_page *child;

		if (cb >= end)
			break;
		child = (struct pt_page *)atomic_load_explicit(&t->e[i], memory_order_relaxed);
		if (!child)
			continue;
		if (level - 1 > 1)
			free_range(tlb, child, cb, level - 1, floor, ceiling, start, end);
		if (cb >= floor && ce <= ceiling) {
#ifdef UMM_DEBUG_PGTABLE
			for (int j = 0; j < PTRS_PER_TABLE; j++)
				VM_BUG_ON(atomic_load(&child->e[j]));
#endif
			spin_lock(&tlb->mm->page_table_lock);
			atomic_store_explicit(&t->e[i], 0, memory_order_seq_cst);
			spin_unlock(&tlb->mm->page_table_lock);
			tlb_remove_table(tlb, child);
		}
	}
}

/*
 * free_pgtables - free the page tables of [start, end) that no VMA needs:
 * those lying wholly inside [floor, ceiling), the gap between the VMAs
 * around the unmapped range (Linux's free_pgd_range).
 * Context: mmap_lock held for write; the range's PTEs already zapped.
 */
void free_pgtables(struct mmu_gather *tlb, uint64_t floor, uint64_t ceiling,
		   uint64_t start, uint64_t end)
{
	if (start >= end)
		return;
	free_range(tlb, tlb->mm->pgd, 0, 4, floor, ceiling, start, end);
}
