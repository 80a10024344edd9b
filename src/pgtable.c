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
#include <sys/mman.h>

#include "internal.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
/* a pooled table is not heap memory: tell ASan when it is dead */
#define pt_poison(t)	ASAN_POISON_MEMORY_REGION(&(t)->e[1], sizeof(*(t)) - sizeof((t)->e[0]))
#define pt_unpoison(t)	ASAN_UNPOISON_MEMORY_REGION((t), sizeof(*(t)))
#define ASAN_UNPOISON_ALL(c) ASAN_UNPOISON_MEMORY_REGION((c), PT_CHUNK_SIZE)
#else
#define ASAN_UNPOISON_ALL(c) do { } while (0)
#define pt_poison(t)	do { } while (0)
#define pt_unpoison(t)	do { } while (0)
#endif

/*
 * A new chunk: 2 MiB, aligned, backed by a huge page where the host
 * allows it, so that walks over many address spaces' tables cost few host
 * TLB entries.  Its first page holds the tables' locks.
 */
static struct pt_chunk *pt_chunk_alloc(void)
{
	size_t len = 2 * PT_CHUNK_SIZE;
	char *raw = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uintptr_t start;

	if (raw == MAP_FAILED)
		return NULL;
	start = ((uintptr_t)raw + PT_CHUNK_SIZE - 1) & ~(uintptr_t)(PT_CHUNK_SIZE - 1);
	if (start > (uintptr_t)raw)
		munmap(raw, start - (uintptr_t)raw);
	munmap((char *)start + PT_CHUNK_SIZE, (uintptr_t)raw + len - start - PT_CHUNK_SIZE);
	madvise((void *)start, PT_CHUNK_SIZE, MADV_HUGEPAGE);
	return (struct pt_chunk *)start;
}

struct pt_page *pt_alloc(struct umm_mm *mm, int level)
{
	struct umm *u = mm->u;
	struct pt_page *t;

	if (should_fail(u, UMM_FAULT_PGTABLE_ALLOC))
		return NULL;
	spin_lock(&u->pt_lock);
	if (!u->pt_free) {
		struct pt_chunk *c;

		spin_unlock(&u->pt_lock);
		c = pt_chunk_alloc();
		if (!c)
			return NULL;
		spin_lock(&u->pt_lock);
		c->next = u->pt_chunks;
		u->pt_chunks = c;
		for (size_t i = PT_PER_CHUNK - 1; i >= 1; i--) {
			t = (struct pt_page *)((char *)c + i * sizeof(struct pt_page));
			atomic_store_explicit(&t->e[0], (uintptr_t)u->pt_free, memory_order_relaxed);
			u->pt_free = t;
			pt_poison(t);
		}
	}
	t = u->pt_free;
	u->pt_free = (struct pt_page *)atomic_load_explicit(&t->e[0], memory_order_relaxed);
	spin_unlock(&u->pt_lock);

	pt_unpoison(t);
	for (int i = 0; i < PTRS_PER_TABLE; i++)
		atomic_store_explicit(&t->e[i], 0, memory_order_relaxed);
	spin_lock_init(pte_lockptr(t));
	atomic_fetch_add_explicit(&mm->nr_ptes, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&u->nr_pgtables, 1, memory_order_relaxed);
	return t;
}

/* Context: nobody can reach @t any more (unlinked and flushed). */
void pt_free(struct umm_mm *mm, struct pt_page *t)
{
	struct umm *u = mm->u;

	atomic_fetch_sub_explicit(&mm->nr_ptes, 1, memory_order_relaxed);
	atomic_fetch_sub_explicit(&u->nr_pgtables, 1, memory_order_relaxed);
	spin_lock(&u->pt_lock);
	atomic_store_explicit(&t->e[0], (uintptr_t)u->pt_free, memory_order_relaxed);
	u->pt_free = t;
	pt_poison(t);
	spin_unlock(&u->pt_lock);
}

/* Give every chunk back to the host.  Context: the machine is being destroyed. */
void pt_pool_exit(struct umm *u)
{
	while (u->pt_chunks) {
		struct pt_chunk *c = u->pt_chunks;

		u->pt_chunks = c->next;
		ASAN_UNPOISON_ALL(c);
		munmap(c, PT_CHUNK_SIZE);
	}
	u->pt_free = NULL;
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
