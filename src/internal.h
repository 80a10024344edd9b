/* SPDX-License-Identifier: MIT */
/*
 * internal.h - what umm's subsystems share and nobody outside sees.
 *
 * Names follow Linux's mm/ so that a reader who knows rmap.c, memory.c and
 * page_alloc.c finds things where they expect them.
 */
#ifndef UMM_INTERNAL_H
#define UMM_INTERNAL_H

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <umm/umm.h>

#include <urcu-bp.h>

#include "interval_tree.h"
#include "list.h"
#include "rbtree.h"

#define PAGE_SHIFT	UMM_PAGE_SHIFT
#define PAGE_SIZE	((uint64_t)UMM_PAGE_SIZE)
#define PAGE_MASK	(~(PAGE_SIZE - 1))
#define PAGE_ALIGN(x)	(((x) + PAGE_SIZE - 1) & PAGE_MASK)
#define PAGE_ALIGNED(x)	(((x) & (PAGE_SIZE - 1)) == 0)

#define likely(x)	__builtin_expect(!!(x), 1)
#define unlikely(x)	__builtin_expect(!!(x), 0)
#define READ_ONCE(x)	atomic_load_explicit(&(x), memory_order_relaxed)
#define WRITE_ONCE(x, v) atomic_store_explicit(&(x), (v), memory_order_relaxed)
#define min_t(t, a, b)	((t)(a) < (t)(b) ? (t)(a) : (t)(b))
#define max_t(t, a, b)	((t)(a) > (t)(b) ? (t)(a) : (t)(b))

#ifndef container_of
#define container_of(ptr, type, member) \
	((type *)((char *)(ptr) - offsetof(type, member)))
#endif

/*
 * VM_BUG_ON: an invariant the code relies on.  A violated one is a bug in
 * umm, never bad input, so aborting (with a message) is right.
 */
void vm_bug(const char *file, int line, const char *expr) __attribute__((noreturn));
#define VM_BUG_ON(cond) do { if (unlikely(cond)) vm_bug(__FILE__, __LINE__, #cond); } while (0)

/* ------------------------------------------------------------------ */
/* RCU (liburcu, bulletproof flavour: any thread may read)              */

/*
 * TSan cannot see liburcu's grace periods, so under TSan each read-side
 * exit "releases" a marker that every deferred free "acquires": the
 * happens-before edge RCU guarantees, made visible to the checker.
 */
#if defined(__SANITIZE_THREAD__)
void __tsan_acquire(void *addr);
void __tsan_release(void *addr);
extern char rcu_tsan_marker;
#define rcu_tsan_release() __tsan_release(&rcu_tsan_marker)
#define rcu_tsan_acquire() __tsan_acquire(&rcu_tsan_marker)
#else
#define rcu_tsan_release() do { } while (0)
#define rcu_tsan_acquire() do { } while (0)
#endif
static inline void umm_rcu_read_lock(void) { rcu_read_lock(); }
static inline void umm_rcu_read_unlock(void) { rcu_tsan_release(); rcu_read_unlock(); }

/* ------------------------------------------------------------------ */
/* Locks                                                               */

/* A test-and-test-and-set spinlock that yields when it has spun a while. */
typedef struct { _Atomic int locked; } spinlock_t;
void spin_lock_slow(spinlock_t *l);
static inline void spin_lock_init(spinlock_t *l) { atomic_init(&l->locked, 0); }
static inline void spin_lock(spinlock_t *l)
{
	if (likely(!atomic_exchange_explicit(&l->locked, 1, memory_order_acquire)))
		return;
	spin_lock_slow(l);
}
static inline bool spin_trylock(spinlock_t *l)
{
	return !atomic_load_explicit(&l->locked, memory_order_relaxed) &&
	       !atomic_exchange_explicit(&l->locked, 1, memory_order_acquire);
}
static inline void spin_unlock(spinlock_t *l)
{
	atomic_store_explicit(&l->locked, 0, memory_order_release);
}

/* ------------------------------------------------------------------ */
/* Physical memory: frames and their descriptors (phys.c)              */

/* struct umm_page flags (a 32-bit word so the page lock can be a futex) */
enum pageflags {
	PG_locked	= 1u << 0,	/* page lock held */
	PG_waiters	= 1u << 1,	/* someone sleeps on the page lock */
	PG_reserved	= 1u << 2,	/* the zero frame: never freed */
	PG_zeroed	= 1u << 3,	/* contents known to be zero (fresh host memory) */
	PG_dirty	= 1u << 4,
	PG_swapbacked	= 1u << 5,	/* anon or shmem: needs swap to be evicted */
	PG_mlocked	= 1u << 6,
	PG_lru		= 1u << 7,
	PG_active	= 1u << 8,
	PG_referenced	= 1u << 9,
	PG_swapcache	= 1u << 10,
	PG_writeback	= 1u << 11,
	PG_buddy	= 1u << 12,	/* on a free list or a per-CPU cache */
	PG_unevictable	= 1u << 13,	/* on the unevictable list (found mlocked) */
};

/* page->mapping low bits, as Linux tags them */
#define PAGE_MAPPING_ANON	0x1UL
#define PAGE_MAPPING_MOVABLE	0x2UL
#define PAGE_MAPPING_KSM	(PAGE_MAPPING_ANON | PAGE_MAPPING_MOVABLE)
#define PAGE_MAPPING_FLAGS	(PAGE_MAPPING_ANON | PAGE_MAPPING_MOVABLE)

/* The kernel's struct page: one per frame, indexed by pfn. */
struct umm_page {
	_Atomic uint32_t flags;
	_Atomic int32_t _refcount;
	_Atomic int32_t _mapcount;	/* -1: not mapped */
	uint16_t node;
	uint16_t machine;		/* index in the machine registry (memory.c) */
	_Atomic uint16_t lru_shard;	/* which LRU shard it is on, while PG_lru (vmscan.c) */
	_Atomic uintptr_t mapping;	/* anon_vma | address_space | stable_node, tagged */
	uint64_t index;			/* page offset within the mapping */
	struct list_head lru;
	uint64_t private;		/* swap entry while in the swap cache */
};

struct pcp {				/* a per-CPU cache of free frames */
	spinlock_t lock;
	unsigned int count;
	uint32_t pfns[128];
	_Atomic uint64_t events[16];	/* vm event counters, summed on read */
} __attribute__((aligned(64)));

enum vm_event {
	PGFAULT, PGFAULT_ZERO, PGFAULT_ANON, PGFAULT_SHMEM, PGFAULT_FILE, PGFAULT_COW, PGFAULT_REUSE,
	PGALLOC, PGFREE, TLB_FLUSH, TLB_WAIT, NR_VM_EVENTS
};

/*
 * A memory node: its frames [start_pfn, end_pfn) and two free lists.
 * "warm" frames still have host memory behind them (a deque: allocation
 * and frees at the head, trimming takes the coldest from the tail); "cold"
 * frames had their host memory punched out and read as zero.
 */
struct umm_node {
	pthread_mutex_t lock;
	uint64_t start_pfn, end_pfn;
	uint32_t *warm;			/* ring of pfns */
	uint64_t warm_head, warm_count, cap;
	uint32_t *cold;			/* stack of pfns */
	uint64_t cold_count;
	uint32_t *zeroed;		/* stack of pfns cleared in the background */
	uint64_t zeroed_count;
	uint32_t inflight[1024];	/* frames being punched or cleared: free, on no list */
	unsigned int nr_inflight;
	uint64_t warm_high, warm_low;	/* trim above high, down to low */
	uint64_t wmark_min, wmark_low, wmark_high;	/* for reclaim */
	_Atomic uint64_t nr_free;
	/* compaction: free frames of [iso_start, iso_end) are held back */
	_Atomic uint64_t iso_start, iso_end;
	uint32_t *iso_stash;
	uint64_t iso_nr;
};

/* Counters of reclaim, swap and migration (vmscan.c, swapfile.c, migrate.c). */
enum vmstat_item {
	VMS_ISOLATED, VMS_PGSCAN, VMS_PGSTEAL, VMS_PGACTIVATE, VMS_PGDEACTIVATE,
	VMS_PSWPIN, VMS_PSWPOUT, VMS_PGWRITEBACK, VMS_KSWAPD_RUNS, VMS_DIRECT_RECLAIMS,
	VMS_PGMIGRATE_SUCCESS, VMS_PGMIGRATE_FAIL, VMS_COMPACT_MIGRATED,
	VMS_SWAP_READ_ERRORS, VMS_SWAP_WRITE_ERRORS, NR_VMSTAT
};

/* One kind of injectable fault (swapfile.c), as the kernel's fault_attr. */
struct fault_attr {
	_Atomic unsigned int probability;	/* parts per million */
	_Atomic long times;			/* left to inject; -1: no limit */
	_Atomic uint64_t injected;
};

struct swap_info;
struct lruvec;

struct umm {
	struct umm_config cfg;
	int machine_id;			/* slot in the registry GUP'd pages find us by */
	int memfd;
	char *arena;			/* nr_frames * PAGE_SIZE, MAP_SHARED of memfd */
	uint64_t nr_frames;
	struct umm_page *pages;		/* descriptors, indexed by pfn */
	struct umm_node nodes[64];
	unsigned int nr_nodes;
	struct pcp *pcps;
	unsigned int nr_pcps;
	bool prefault;

	/* returning host memory of free frames and clearing them, in the background */
	pthread_t trim_thread;
	bool trim_started, trim_stop;
	pthread_mutex_t trim_lock;
	pthread_cond_t trim_cond;
	_Atomic uint64_t nr_returned;

	pthread_mutex_t mm_lock;	/* protects mm_list; taken outside mmap_lock */
	struct list_head mm_list;
	pthread_mutex_t as_lock;	/* protects as_list; innermost, may nest in mmap_lock */
	struct list_head as_list;	/* address_spaces (shmem objects, files) */
	uint64_t nr_mms;

	umm_log_fn log_fn;
	void *log_ctx;
	_Atomic long nr_pgtables;

	struct mn_checker *mn_check;	/* UMM_CONFIG_NOTIFIER_CHECKER (mmu_notifier_check.c) */

	/* reclaim (vmscan.c) and swap (swapfile.c) */
	struct lruvec *lruvecs;		/* nr_nodes x nr_pcps shards */
	unsigned int nr_lruvecs;
	struct swap_info *swap;		/* NULL: no swap */
	pthread_t kswapd_thread;
	pthread_mutex_t kswapd_lock;
	pthread_cond_t kswapd_cond;
	bool kswapd_started, kswapd_stop;
	_Atomic bool kswapd_wake;
	pthread_rwlock_t reclaim_lock;	/* read: kswapd at work; write: umm_validate */
	_Atomic uint64_t vmstat[NR_VMSTAT];
	struct fault_attr faults[UMM_FAULT_NR];

	/* page-table pages: a pool of huge-page-backed chunks (pgtable.c) */
	spinlock_t pt_lock;
	struct pt_chunk *pt_chunks;
	struct pt_page *pt_free;

	struct ksm *ksm;		/* ksmd, its trees and knobs (ksm.c) */
	_Atomic long ksm_zero_pages;	/* PTEs KSM pointed at the zero frame */
};

#define ZERO_PFN 0

static inline struct umm_page *pfn_to_page(struct umm *u, uint64_t pfn) { return &u->pages[pfn]; }
static inline uint64_t page_to_pfn(struct umm *u, const struct umm_page *p) { return (uint64_t)(p - u->pages); }
static inline void *page_address(struct umm *u, const struct umm_page *p)
{
	return u->arena + (page_to_pfn(u, p) << PAGE_SHIFT);
}
static inline int page_mapcount(struct umm_page *p) { return atomic_load(&p->_mapcount) + 1; }
static inline int page_count(struct umm_page *p) { return atomic_load(&p->_refcount); }
static inline bool PageAnon(struct umm_page *p) { return atomic_load_explicit(&p->mapping, memory_order_relaxed) & PAGE_MAPPING_ANON; }
static inline bool PageKsm(struct umm_page *p)
{
	return (atomic_load_explicit(&p->mapping, memory_order_relaxed) & PAGE_MAPPING_FLAGS) == PAGE_MAPPING_KSM;
}
static inline bool PageReserved(struct umm_page *p) { return atomic_load_explicit(&p->flags, memory_order_relaxed) & PG_reserved; }
static inline void SetPageFlag(struct umm_page *p, uint32_t f) { atomic_fetch_or(&p->flags, f); }
static inline void ClearPageFlag(struct umm_page *p, uint32_t f) { atomic_fetch_and(&p->flags, ~f); }
static inline bool TestPageFlag(struct umm_page *p, uint32_t f) { return atomic_load(&p->flags) & f; }

static inline void get_page(struct umm_page *p) { atomic_fetch_add_explicit(&p->_refcount, 1, memory_order_relaxed); }
bool get_page_unless_zero(struct umm_page *p);
void put_page(struct umm *u, struct umm_page *p);
void free_unref_page(struct umm *u, struct umm_page *p);

#define ALLOC_ZERO 0x1			/* the caller wants zeroed contents */
#define ALLOC_NORECLAIM 0x2		/* fail rather than reclaim (a spinlock is held) */
#define ALLOC_THISNODE 0x4		/* only node @nid will do (migration) */
struct umm_page *alloc_page(struct umm *u, int nid, unsigned int flags);
void clear_page(void *dst);
void copy_page(void *dst, const void *src);
unsigned int cpu_pcp_index(struct umm *u);
static inline void count_vm_event(struct umm *u, enum vm_event e)
{
	atomic_fetch_add_explicit(&u->pcps[cpu_pcp_index(u)].events[e], 1, memory_order_relaxed);
}
uint64_t sum_vm_event(struct umm *u, enum vm_event e);
int phys_init(struct umm *u);
void phys_exit(struct umm *u);
void phys_mark_free_frames(struct umm *u, uint8_t *is_free);
uint64_t phys_nr_free(struct umm *u);
uint64_t phys_nr_free_resident(struct umm *u);

int machine_register(struct umm *u);
void machine_unregister(struct umm *u);
void machine_log(struct umm *u, int level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* ------------------------------------------------------------------ */
/* Page tables (pgtable.c)                                             */

typedef uint64_t pte_t;

/* PTE bits, x86-64 layout */
#define _PAGE_PRESENT	(1ULL << 0)
#define _PAGE_RW	(1ULL << 1)
#define _PAGE_USER	(1ULL << 2)
#define _PAGE_ACCESSED	(1ULL << 5)
#define _PAGE_DIRTY	(1ULL << 6)
#define _PAGE_PROTNONE	(1ULL << 8)	/* mapped, but no CPU access (PROT_NONE) */
#define _PAGE_SPECIAL	(1ULL << 9)	/* no struct page behind it: the zero frame */
#define _PAGE_SOFT_DIRTY (1ULL << 11)
#define PTE_PFN_MASK	0x000ffffffffff000ULL

static inline bool pte_none(pte_t p) { return p == 0; }
static inline bool pte_present(pte_t p) { return p & (_PAGE_PRESENT | _PAGE_PROTNONE); }
static inline bool pte_write(pte_t p) { return p & _PAGE_RW; }
static inline bool pte_young(pte_t p) { return p & _PAGE_ACCESSED; }
static inline bool pte_dirty(pte_t p) { return p & _PAGE_DIRTY; }
static inline bool pte_special(pte_t p) { return p & _PAGE_SPECIAL; }
static inline bool pte_protnone(pte_t p) { return (p & (_PAGE_PRESENT | _PAGE_PROTNONE)) == _PAGE_PROTNONE; }
static inline uint64_t pte_pfn(pte_t p) { return (p & PTE_PFN_MASK) >> PAGE_SHIFT; }
static inline pte_t pfn_pte(uint64_t pfn, pte_t prot) { return (pfn << PAGE_SHIFT) | prot; }

/*
 * Swap and migration entries: non-present PTEs (neither PRESENT nor
 * PROTNONE) marked with bit 1; bits 2-3 say which kind, bits 12 and up
 * hold the swap slot or, for a migration entry, the pfn being migrated.
 */
#define _PAGE_SWP_ENTRY	(1ULL << 1)
#define SWP_TYPE_SHIFT	2
enum { SWP_SWAPFILE, SWP_MIGRATION_READ, SWP_MIGRATION_WRITE };
static inline bool is_swap_pte(pte_t p) { return !pte_present(p) && (p & _PAGE_SWP_ENTRY); }
static inline pte_t swp_entry_pte(unsigned int type, uint64_t offset)
{
	return (offset << PAGE_SHIFT) | ((pte_t)type << SWP_TYPE_SHIFT) | _PAGE_SWP_ENTRY;
}
static inline unsigned int swp_type(pte_t p) { return (unsigned int)(p >> SWP_TYPE_SHIFT) & 3; }
static inline uint64_t swp_offset(pte_t p) { return (p & PTE_PFN_MASK) >> PAGE_SHIFT; }
static inline bool is_migration_pte(pte_t p) { return is_swap_pte(p) && swp_type(p) != SWP_SWAPFILE; }
static inline bool is_swapfile_pte(pte_t p) { return is_swap_pte(p) && swp_type(p) == SWP_SWAPFILE; }

#define PTRS_PER_TABLE	512
#define PGDIR_SHIFT	39
#define PUD_SHIFT	30
#define PMD_SHIFT	21
#define PMD_SIZE	(1ULL << PMD_SHIFT)
#define PMD_MASK	(~(PMD_SIZE - 1))

/*
 * One page-table page: exactly 4 KiB of entries.  Level 4 is the PGD,
 * level 1 holds PTEs.  Upper levels store pointers to the next table
 * (0 = none).  Each PTE table has its own lock (split PTL), kept outside
 * the table as Linux keeps it in the table's struct page: tables are carved
 * from 2 MiB huge-page-backed chunks whose first page holds the locks of
 * the chunk's tables (pgtable.c).  Upper levels change under
 * mm->page_table_lock.
 */
struct pt_page {
	_Atomic uint64_t e[PTRS_PER_TABLE];
};

#define PT_CHUNK_SIZE	(2ULL << 20)
#define PT_PER_CHUNK	(PT_CHUNK_SIZE / sizeof(struct pt_page))
struct pt_chunk {			/* the first 4 KiB of a chunk */
	spinlock_t ptl[PT_PER_CHUNK];
	struct pt_chunk *next;
};

static inline spinlock_t *pte_lockptr(struct pt_page *t)
{
	struct pt_chunk *c = (struct pt_chunk *)((uintptr_t)t & ~(uintptr_t)(PT_CHUNK_SIZE - 1));

	return &c->ptl[((uintptr_t)t & (PT_CHUNK_SIZE - 1)) / sizeof(struct pt_page)];
}
void pt_pool_exit(struct umm *u);

struct umm_mm;
struct vm_area_struct;

/* Walk to the PTE for @addr, allocating tables if @alloc.  NULL: none / -ENOMEM. */
_Atomic pte_t *pte_offset(struct umm_mm *mm, uint64_t addr, bool alloc, struct pt_page **ptp);
/* Lockless walk for CPU accesses: acquire loads only; call inside an access section. */
static inline _Atomic pte_t *pte_offset_lockless(struct pt_page *pgd, uint64_t addr)
{
	struct pt_page *t = pgd;
	int shift;

	for (shift = PGDIR_SHIFT; shift > PAGE_SHIFT; shift -= 9) {
		uintptr_t next = atomic_load_explicit(&t->e[(addr >> shift) & 511], memory_order_acquire);
		if (!next)
			return NULL;
		t = (struct pt_page *)next;
	}
	return &t->e[(addr >> PAGE_SHIFT) & 511];
}
struct pt_page *pt_alloc(struct umm_mm *mm, int level);
void pt_free(struct umm_mm *mm, struct pt_page *t);
struct mmu_gather;
void free_pgtables(struct mmu_gather *tlb, uint64_t floor, uint64_t ceiling, uint64_t start, uint64_t end);
/* Call @fn for every present or swap PTE of [start, end) with its table's lock held. */
typedef int (*pte_fn)(struct umm_mm *mm, uint64_t addr, _Atomic pte_t *ptep, void *arg);

/* ------------------------------------------------------------------ */
/* TLB shootdown and the gather (tlb.c)                                */

/*
 * A thread that accesses address spaces is a "CPU".  It announces each
 * access (an odd sequence number, the mm it is in) so that a PTE change can
 * wait for the accesses that may still use the old PTE: see tlb.c.
 */
struct umm_cpu {
	_Atomic uint64_t seq;			/* odd inside an access section */
	_Atomic(struct umm_mm *) mm;
	_Atomic int in_use;
	int index;
} __attribute__((aligned(128)));

extern __thread struct umm_cpu *current_cpu;
struct umm_cpu *cpu_register(void);
static inline struct umm_cpu *this_cpu(void)
{
	struct umm_cpu *c = current_cpu;
	return likely(c) ? c : cpu_register();
}
static inline void cpu_access_begin(struct umm_cpu *c, struct umm_mm *mm)
{
	atomic_store_explicit(&c->mm, mm, memory_order_release);
	/* full barrier: the flusher's PTE store and our PTE load are ordered */
	atomic_fetch_add_explicit(&c->seq, 1, memory_order_seq_cst);
}
static inline void cpu_access_end(struct umm_cpu *c)
{
	uint64_t s = atomic_load_explicit(&c->seq, memory_order_relaxed);
	atomic_store_explicit(&c->seq, s + 1, memory_order_release);
}
void flush_tlb_mm(struct umm_mm *mm);

#define MMU_GATHER_BATCH 512
struct mmu_gather {
	struct umm_mm *mm;
	bool need_flush;
	bool fullmm;
	unsigned int nr_pages, nr_tables;
	struct umm_page *pages[MMU_GATHER_BATCH];
	struct pt_page *tables[64];
};
void tlb_gather_mmu(struct mmu_gather *tlb, struct umm_mm *mm, bool fullmm);
void tlb_remove_page(struct mmu_gather *tlb, struct umm_page *page);
void tlb_remove_table(struct mmu_gather *tlb, struct pt_page *t);
void tlb_flush_mmu(struct mmu_gather *tlb);
void tlb_finish_mmu(struct mmu_gather *tlb);

/* ------------------------------------------------------------------ */
/* Address spaces and VMAs (mmap.c)                                    */

#define VM_READ		0x00000001UL
#define VM_WRITE	0x00000002UL
#define VM_EXEC		0x00000004UL
#define VM_SHARED	0x00000008UL
#define VM_MAYREAD	0x00000010UL
#define VM_MAYWRITE	0x00000020UL
#define VM_MAYEXEC	0x00000040UL
#define VM_MAYSHARE	0x00000080UL
#define VM_LOCKED	0x00002000UL
#define VM_DONTCOPY	0x00020000UL
#define VM_MERGEABLE	0x80000000UL
#define VM_ACCESS_FLAGS	(VM_READ | VM_WRITE | VM_EXEC)

enum { MM_FILEPAGES, MM_ANONPAGES, MM_SWAPENTS, MM_SHMEMPAGES, NR_MM_COUNTERS };

struct address_space;
struct anon_vma;

struct vm_area_struct {
	uint64_t vm_start, vm_end;
	struct umm_mm *vm_mm;
	unsigned long vm_flags;			/* changed under the rmap locks too */
	uint64_t vm_pgoff;			/* in pages */
	struct address_space *vm_mapping;	/* file or shmem object; NULL: anonymous */
	struct interval_tree_node shared;	/* in vm_mapping->i_mmap */
	struct anon_vma *anon_vma;		/* where new anonymous pages go */
	struct list_head anon_vma_chain;	/* anon_vma_chain.same_vma */
	struct rb_node vm_rb;
};

struct umm_mm {
	struct umm *u;
	struct pt_page *pgd;
	pthread_rwlock_t mmap_lock;
	spinlock_t page_table_lock;		/* upper page-table levels, anon_vma_prepare */
	struct rb_root mm_rb;			/* VMAs by address */
	unsigned long map_count;
	uint64_t total_vm, locked_vm;		/* pages; under mmap_lock */
	_Atomic long rss[NR_MM_COUNTERS];
	_Atomic long nr_ptes;
	_Atomic int mm_users;			/* address space users */
	_Atomic int mm_count;			/* references to the struct */
	uint64_t mmap_base;
	bool dead;
	_Atomic bool unstable;			/* OOM-reaped: faults fail (MMF_UNSTABLE) */
	struct list_head mmlist;		/* in umm->mm_list */
	_Atomic(void *) notifier_subscriptions;	/* MMU notifiers (mmu_notifier.c) */

	/* KSM (ksm.c) */
	struct ksm_mm_slot *ksm_slot;		/* under ksm_mmlist_lock */
	_Atomic unsigned long ksm_flags;	/* MMF_VM_MERGEABLE, MMF_VM_MERGE_ANY */
	_Atomic unsigned int ksm_domain;	/* merge domain; changed under mmap_lock */
	_Atomic long ksm_merging_pages;		/* this mm's rmap_items in the stable tree */
	_Atomic long ksm_rmap_items;
	_Atomic long ksm_zero_pages;		/* its PTEs KSM mapped to the zero frame */
	long ksm_census[2];			/* scratch for umm_validate */
};

#define MMF_VM_MERGEABLE	0x1UL	/* registered with ksmd (has an mm slot) */
#define MMF_VM_MERGE_ANY	0x2UL	/* every compatible VMA is VM_MERGEABLE */

static inline void add_mm_counter(struct umm_mm *mm, int member, long v)
{
	atomic_fetch_add_explicit(&mm->rss[member], v, memory_order_relaxed);
}
static inline uint64_t vma_pages(const struct vm_area_struct *v) { return (v->vm_end - v->vm_start) >> PAGE_SHIFT; }
static inline uint64_t linear_page_index(const struct vm_area_struct *v, uint64_t addr)
{
	return ((addr - v->vm_start) >> PAGE_SHIFT) + v->vm_pgoff;
}
static inline bool vma_is_anonymous(const struct vm_area_struct *v) { return !v->vm_mapping; }
static inline void vma_set_shared_range(struct vm_area_struct *v)
{
	v->shared.start = v->vm_pgoff;
	v->shared.last = v->vm_pgoff + vma_pages(v) - 1;
}

struct vm_area_struct *find_vma(struct umm_mm *mm, uint64_t addr);
int walk_vma_range(struct umm_mm *mm, uint64_t start, uint64_t end,
		   void (*fn)(struct vm_area_struct *vma, uint64_t start, uint64_t end, void *arg),
		   void *arg);
void mmgrab(struct umm_mm *mm);
void mmdrop(struct umm_mm *mm);

/* ------------------------------------------------------------------ */
/* Faults and zap (memory.c)                                           */

#define FAULT_FLAG_WRITE 0x1
#define FAULT_FLAG_UNSHARE 0x2		/* break_ksm: copy a KSM page, keep the permissions */
int handle_mm_fault(struct vm_area_struct *vma, uint64_t addr, unsigned int flags);
void unmap_vmas(struct mmu_gather *tlb, struct vm_area_struct *vma, uint64_t start, uint64_t end);
int copy_page_range(struct vm_area_struct *dst, struct vm_area_struct *src);
void change_protection(struct vm_area_struct *vma, uint64_t start, uint64_t end, unsigned long newflags);
int move_page_tables(struct vm_area_struct *vma, uint64_t old_addr, struct vm_area_struct *new_vma,
		     uint64_t new_addr, uint64_t len);
int populate_vma_range(struct umm_mm *mm, uint64_t start, uint64_t end);
struct umm_page *vm_normal_page(struct umm *u, pte_t pte);

/* ------------------------------------------------------------------ */
/* KSM (ksm.c)                                                         */

/*
 * A KSM zero page: the zero frame mapped in place of an empty page by KSM
 * (use_zero_pages).  KSM marks the special PTE dirty, which a read fault's
 * zero-page PTE never is, so unmap can tell them apart and keep the count.
 */
static inline bool is_ksm_zero_pte(pte_t pte)
{
	return pte_special(pte) && pte_dirty(pte);
}

static inline void ksm_map_zero_page(struct umm_mm *mm)
{
	atomic_fetch_add_explicit(&mm->u->ksm_zero_pages, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&mm->ksm_zero_pages, 1, memory_order_relaxed);
}

/* A PTE goes away (zap, COW, unmerge): was it a KSM zero page? */
static inline void ksm_might_unmap_zero_page(struct umm_mm *mm, pte_t pte)
{
	if (is_ksm_zero_pte(pte)) {
		atomic_fetch_sub_explicit(&mm->u->ksm_zero_pages, 1, memory_order_relaxed);
		atomic_fetch_sub_explicit(&mm->ksm_zero_pages, 1, memory_order_relaxed);
	}
}

int ksm_init(struct umm *u);
void ksm_stop_threads(struct umm *u);
void ksm_destroy(struct umm *u);
void ksm_exit(struct umm_mm *mm);
int ksm_fork(struct umm_mm *mm, struct umm_mm *oldmm);
int ksm_madvise(struct umm_mm *mm, uint64_t start, uint64_t end, int advice);
unsigned long ksm_vma_flags(struct umm_mm *mm, bool shared, unsigned long vm_flags);
struct rmap_walk_control;
int rmap_walk_ksm(struct umm_page *page, struct rmap_walk_control *rwc);
void ksm_migrate_page(struct umm *u, struct umm_page *new, struct umm_page *old);
typedef void (*ksm_census_fail_fn)(void *ctx, const char *msg);
void ksm_census(struct umm *u, ksm_census_fail_fn fail, void *ctx);

#define PTE_USER_BITS	(_PAGE_PRESENT | _PAGE_USER)
/* The PTE protection bits a VMA's flags give (vm_get_page_prot). */
static inline pte_t vma_pte_prot(unsigned long vm_flags)
{
	if (!(vm_flags & VM_ACCESS_FLAGS))
		return _PAGE_PROTNONE | _PAGE_USER;
	return PTE_USER_BITS;
}

/* ------------------------------------------------------------------ */
/* Reverse mapping (rmap.c)                                            */

struct anon_vma {
	struct anon_vma *root;			/* of the fork lineage; its rwsem rules */
	struct anon_vma *parent;		/* the anon_vma this one was forked from */
	_Atomic int refcount;
	unsigned long num_children;		/* anon_vmas forked from this one */
	unsigned long num_active_vmas;		/* VMAs whose ->anon_vma is this */
	pthread_rwlock_t rwsem;
	struct rb_root rb_root;			/* interval tree of anon_vma_chain.itn */
	struct rcu_head rcu;
};

struct anon_vma_chain {
	struct vm_area_struct *vma;
	struct anon_vma *anon_vma;
	struct list_head same_vma;		/* in vma->anon_vma_chain */
	struct interval_tree_node itn;		/* in anon_vma->rb_root: the VMA's pgoffs */
};

struct rmap_walk_control {
	void *arg;
	struct anon_vma *anon_vma;		/* pinned by the caller: walk it even unmapped */
	/* false stops the walk */
	bool (*rmap_one)(struct umm_page *page, struct vm_area_struct *vma, uint64_t addr, void *arg);
	bool (*done)(struct umm_page *page);
};

int anon_vma_prepare(struct vm_area_struct *vma);
int anon_vma_clone(struct vm_area_struct *dst, struct vm_area_struct *src);
int anon_vma_fork(struct vm_area_struct *vma, struct vm_area_struct *pvma);
void unlink_anon_vmas(struct vm_area_struct *vma);
void put_anon_vma(struct anon_vma *av);
static inline void get_anon_vma(struct anon_vma *av) { atomic_fetch_add(&av->refcount, 1); }
void vma_rmap_pre_update(struct vm_area_struct *vma);
void vma_rmap_post_update(struct vm_area_struct *vma);
void vma_rmap_lock(struct vm_area_struct *vma);
void vma_rmap_unlock(struct vm_area_struct *vma);
void page_add_new_anon_rmap(struct umm_page *page, struct vm_area_struct *vma, uint64_t addr);
void page_move_anon_rmap(struct umm_page *page, struct vm_area_struct *vma);
int rmap_walk(struct umm_page *page, struct rmap_walk_control *rwc);
int page_referenced(struct umm_page *page, bool locked);
int page_clear_young(struct umm_page *page);
int page_mkclean(struct umm_page *page);
bool try_to_unmap(struct umm_page *page);
int page_rmap_count(struct umm_page *page);
int page_dirty_in_ptes(struct umm_page *page);
_Atomic pte_t *page_vma_mapped(struct umm_page *page, struct vm_area_struct *vma,
			       uint64_t addr, struct pt_page **ptp);
bool trylock_page(struct umm_page *page);
void lock_page(struct umm_page *page);
void page_lock_wait(struct umm_page *page, uint32_t seen);
struct anon_vma *page_get_anon_vma(struct umm_page *page);
void unlock_page(struct umm_page *page);
void page_add_file_rmap(struct umm_page *page, struct vm_area_struct *vma);
void page_dup_rmap(struct umm_page *page);
void page_remove_rmap(struct umm_page *page, struct vm_area_struct *vma);

/* ------------------------------------------------------------------ */
/* Page cache (filemap.c): shared anonymous memory now, real files later */

struct radix_node;
struct radix_root {
	struct radix_node *node;
	unsigned int height;
};
void *radix_lookup(struct radix_root *r, uint64_t index);
int radix_insert(struct radix_root *r, uint64_t index, void *item);
void *radix_delete(struct radix_root *r, uint64_t index);
void *radix_replace(struct radix_root *r, uint64_t index, void *item);

/*
 * A shmem page in swap leaves its slot in i_pages in its place, tagged in
 * the low bits (pages are aligned), as the kernel's xarray value entries.
 */
static inline bool radix_is_swap(const void *item) { return (uintptr_t)item & 2; }
static inline void *swap_radix_entry(uint64_t slot) { return (void *)(uintptr_t)((slot << 2) | 2); }
static inline uint64_t radix_swap_slot(const void *item) { return (uintptr_t)item >> 2; }
typedef void (*radix_fn)(uint64_t index, void *item, void *arg);
void radix_for_each(struct radix_root *r, radix_fn fn, void *arg);
void radix_free(struct radix_root *r);

struct address_space {
	struct umm *u;
	_Atomic int refcount;
	pthread_mutex_t i_pages_lock;
	struct radix_root i_pages;
	uint64_t nrpages;			/* pages in i_pages */
	uint64_t nrswapped;			/* shmem: swap entries in i_pages */
	struct list_head as_list;		/* in umm->as_list */
	pthread_rwlock_t i_mmap_rwsem;
	struct rb_root i_mmap;			/* interval tree of vma->shared */
	int fd;					/* host file, for reading; -1 for shmem */
	int wfd;				/* the same file opened O_RDWR, or -1 */
	uint64_t dev, ino;			/* which file: one cache per file */
	_Atomic int64_t size;			/* bytes (files) */
	pthread_mutex_t writeback_lock;		/* also guards wfd */
	bool dead;				/* torn down; under i_mmap_rwsem */
	struct rcu_head rcu;
};

static inline bool mapping_is_shmem(const struct address_space *as) { return as->fd < 0; }
/* Which RSS counter a mapped page counts in. */
static inline int mm_counter(struct umm_page *page)
{
	uintptr_t m = atomic_load_explicit(&page->mapping, memory_order_relaxed);

	if (m & PAGE_MAPPING_ANON)
		return MM_ANONPAGES;
	return m && mapping_is_shmem((struct address_space *)m) ? MM_SHMEMPAGES : MM_FILEPAGES;
}

struct address_space *shmem_create(struct umm *u);
void mapping_get(struct address_space *as);
void mapping_put(struct address_space *as);
/* Find (reading in, for files) or create the page at @index; returns it with a reference. */
int filemap_get_page(struct address_space *as, uint64_t index, struct umm_page **pagep);
uint64_t mapping_nr_pages(struct address_space *as);	/* pages a fault may reach */
struct address_space *file_mapping(struct umm_file *f);
bool file_writable(struct umm_file *f);
int filemap_write_range(struct address_space *as, uint64_t first, uint64_t last);

/* ------------------------------------------------------------------ */
/* MMU notifiers (mmu_notifier.c): the one-pointer test on every path  */

static inline bool mm_has_notifiers(struct umm_mm *mm)
{
	return unlikely(atomic_load_explicit(&mm->notifier_subscriptions,
					     memory_order_acquire) != NULL);
}

struct mmu_notifier_range {
	struct umm_mmu_notifier_range r;	/* what subscribers see */
	bool entered;				/* start reached subscribers: end must too */
	bool itree;				/* counted active on the interval tree */
	const char *origin;			/* the path that set it up (__func__) */
};

int __mmu_notifier_invalidate_range_start(struct mmu_notifier_range *range);
void __mmu_notifier_invalidate_range_end(struct mmu_notifier_range *range);
int __mmu_notifier_clear_flush_young(struct umm_mm *mm, uint64_t start, uint64_t end);
int __mmu_notifier_clear_young(struct umm_mm *mm, uint64_t start, uint64_t end);
int __mmu_notifier_test_young(struct umm_mm *mm, uint64_t addr);
void __mmu_notifier_change_pte(struct umm_mm *mm, uint64_t addr, uint64_t pfn, bool writable);
void __mmu_notifier_invalidate_secondary_tlbs(struct umm_mm *mm, uint64_t start, uint64_t end);
void __mmu_notifier_release(struct umm_mm *mm);
void mmu_notifier_subscriptions_destroy(struct umm_mm *mm);

/* The protocol checker (mmu_notifier_check.c), when the machine has one. */
int mn_check_init(struct umm *u);
void mn_check_exit(struct umm *u);
int mn_check_validate(struct umm *u, char *msg, size_t len);
void mn_check_range_start(struct mmu_notifier_range *range, const void *caller);
void mn_check_delivered(struct mmu_notifier_range *range, const void *sub);
void mn_check_range_abort(struct mmu_notifier_range *range);
bool mn_check_range_end(struct mmu_notifier_range *range, const void *caller);
void mn_check_sub_gone(struct umm *u, const void *sub, const char *why);
void mn_check_sub_new(struct umm *u, const void *sub);
void mn_check_nonblock_enter(struct umm *u);
void mn_check_nonblock_exit(void);
void mn_check_change_pte(struct umm_mm *mm, uint64_t addr, uint64_t pfn);
void __mn_check_frame_free(struct umm *u, uint64_t pfn);
static inline void mn_check_frame_free(struct umm *u, uint64_t pfn)
{
	if (unlikely(u->mn_check))
		__mn_check_frame_free(u, pfn);
}

static inline void __mmu_notifier_range_init(struct mmu_notifier_range *range,
					     enum umm_mmu_notifier_event event, struct umm_mm *mm,
					     uint64_t start, uint64_t end, const char *origin)
{
	range->r.mm = mm;
	range->r.start = start;
	range->r.end = end;
	range->r.event = event;
	range->r.flags = UMM_MMU_NOTIFIER_RANGE_BLOCKABLE;
	range->r.owner = NULL;
	range->entered = false;
	range->itree = false;
	range->origin = origin;
}
/* The range remembers the function that set it up, for the checker's reports. */
#define mmu_notifier_range_init(range, event, mm, start, end) \
	__mmu_notifier_range_init(range, event, mm, start, end, __func__)

/* Return: 0, or -EAGAIN from a non-blockable start (then no end follows). */
static inline int mmu_notifier_invalidate_range_start(struct mmu_notifier_range *range)
{
	if (mm_has_notifiers(range->r.mm))
		return __mmu_notifier_invalidate_range_start(range);
	return 0;
}

static inline void mmu_notifier_invalidate_range_end(struct mmu_notifier_range *range)
{
	if (range->entered)
		__mmu_notifier_invalidate_range_end(range);
}

static inline int mmu_notifier_clear_flush_young(struct umm_mm *mm, uint64_t start, uint64_t end)
{
	return mm_has_notifiers(mm) ? __mmu_notifier_clear_flush_young(mm, start, end) : 0;
}

static inline int mmu_notifier_clear_young(struct umm_mm *mm, uint64_t start, uint64_t end)
{
	return mm_has_notifiers(mm) ? __mmu_notifier_clear_young(mm, start, end) : 0;
}

static inline void mmu_notifier_invalidate_secondary_tlbs(struct umm_mm *mm, uint64_t start,
							  uint64_t end)
{
	if (mm_has_notifiers(mm))
		__mmu_notifier_invalidate_secondary_tlbs(mm, start, end);
}

/* set_pte_at_notify's half: the PTE at @addr now maps @pfn (KSM's replace_page). */
static inline void mmu_notifier_change_pte(struct umm_mm *mm, uint64_t addr, uint64_t pfn,
					   bool writable)
{
	if (mm_has_notifiers(mm))
		__mmu_notifier_change_pte(mm, addr, pfn, writable);
}

static inline void mmu_notifier_release(struct umm_mm *mm)
{
	if (mm_has_notifiers(mm))
		__mmu_notifier_release(mm);
}

/* ------------------------------------------------------------------ */
/* Reclaim (vmscan.c), swap (swapfile.c), migration (migrate.c)       */

static inline void vmstat_inc(struct umm *u, enum vmstat_item i)
{
	atomic_fetch_add_explicit(&u->vmstat[i], 1, memory_order_relaxed);
}

bool __should_fail(struct umm *u, int kind);
static inline bool should_fail(struct umm *u, int kind)
{
	return unlikely(atomic_load_explicit(&u->faults[kind].probability, memory_order_relaxed)) &&
	       __should_fail(u, kind);
}

int lru_init(struct umm *u);
void lru_exit(struct umm *u);
void kswapd_stop(struct umm *u);
void phys_isolate_range(struct umm *u, unsigned int nid, uint64_t start, uint64_t end);
void phys_unisolate_range(struct umm *u, unsigned int nid);
void lru_cache_add(struct umm *u, struct umm_page *page);
void lru_del_on_free(struct umm *u, struct umm_page *page);
bool isolate_lru_page(struct umm *u, struct umm_page *page);
void putback_lru_page(struct umm *u, struct umm_page *page);
unsigned long try_to_free_pages(struct umm *u, int nid);
void wakeup_kswapd(struct umm *u, unsigned int nid);
int madvise_cold_or_pageout(struct umm_mm *mm, uint64_t start, uint64_t end, bool pageout);
void munlock_range(struct umm_mm *mm, uint64_t start, uint64_t end);
int lru_census_check(struct umm *u, char *msg, size_t len);

struct swap_info {
	int fd;
	uint64_t nr_slots;			/* slot 0 is never used */
	_Atomic uint32_t *map;			/* swap count | SWAP_HAS_CACHE, per slot */
	_Atomic(struct umm_page *) *cache;	/* the swap cache, by slot */
	spinlock_t lock;			/* the allocation cursor */
	uint64_t cursor;
	_Atomic uint64_t nr_free;
	_Atomic uint64_t nr_swapcache;
	uint32_t count_max;			/* most PTEs one slot may count */
};
int swap_init(struct umm *u);
void swap_exit(struct umm *u);
uint64_t nr_swap_free(struct umm *u);
uint64_t get_swap_slot(struct umm *u);
int swap_duplicate(struct umm *u, uint64_t slot);
unsigned int swap_count(struct umm *u, uint64_t slot);
unsigned int swap_free(struct umm *u, uint64_t slot);
int swapcache_prepare(struct umm *u, uint64_t slot);
void swapcache_clear(struct umm *u, uint64_t slot);
void add_to_swap_cache(struct umm *u, struct umm_page *page, uint64_t slot);
void delete_from_swap_cache(struct umm *u, struct umm_page *page);
struct umm_page *lookup_swap_cache(struct umm *u, uint64_t slot);
void free_swap_and_cache(struct umm *u, uint64_t slot);
bool try_to_free_swap(struct umm *u, struct umm_page *page);
void free_swap_cache(struct umm *u, struct umm_page *page);
int swap_readpage(struct umm *u, struct umm_page *page, uint64_t slot);
int swap_writepage(struct umm *u, struct umm_page *page, uint64_t slot);
int swap_census_check(struct umm *u, const uint32_t *ptes, char *msg, size_t len);
void swap_cache_drop_all(struct umm *u);

int filemap_write_page(struct umm_page *page);
void page_add_anon_rmap(struct umm_page *page, struct vm_area_struct *vma, uint64_t addr,
			bool exclusive);

/* KSM's page checksum built for AVX2 (checksum_avx2.c); use it only where the CPU has it. */
#if defined(__x86_64__) && !defined(UMM_SANITIZE)
#define KSM_CHECKSUM_AVX2 1
uint64_t ksm_checksum_avx2(const void *data, size_t len);
#else
#define KSM_CHECKSUM_AVX2 0
#endif

#endif /* UMM_INTERNAL_H */
