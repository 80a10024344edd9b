// SPDX-License-Identifier: MIT
/*
 * tlb.c - umm's TLB shootdown, and the mmu_gather built on it.
 *
 * The problem.  A CPU access (umm_read, umm_write) walks the page tables
 * without locks, loads a PTE, checks it allows the access and copies bytes
 * to or from the frame.  Meanwhile another thread may write-protect that
 * PTE (fork, KSM, page_mkclean), replace it (COW, KSM merge, migration) or
 * clear it (munmap, DONTNEED, reclaim) and then reuse the frame, compare its
 * contents or copy it.  On hardware the TLB shootdown closes that window:
 * the changer sends an IPI and waits until every CPU that might cache the
 * old translation has dropped it.  umm needs the same guarantee: once a
 * PTE change has been flushed, no access is still going through the old
 * PTE.  Without it a store could land in a page KSM has just found equal,
 * or in a frame already given to someone else.
 *
 * The mechanism: access sections.  Every thread that accesses an address
 * space is a "CPU" with a struct umm_cpu (registered on first use, its slot
 * recycled when the thread exits).  An access is bracketed:
 *
 *	cpu_access_begin(cpu, mm)   cpu->mm = mm; cpu->seq++ (odd; full barrier)
 *	walk, load PTE (seq_cst), check, set A/D with a CAS, copy the bytes
 *	cpu_access_end(cpu)         cpu->seq++ (even; release)
 *
 * Sections never block and never nest: a fault ends the section, is handled
 * with the usual locks, and the access retries.
 *
 * A PTE change is an atomic read-modify-write (so that a racing A/D update
 * is never lost) followed by flush_tlb_mm(mm): a seq_cst fence, then for
 * every CPU slot whose seq is odd and whose mm is this mm, wait until its
 * seq moves on.  This is Dekker's pattern: the accessor does "seq++; load
 * PTE", the flusher does "store PTE; load seq", all sequentially
 * consistent, so either the flusher sees the section (and waits for it to
 * end, release/acquire making its copy happen-before whatever the flusher
 * does next), or the accessor's PTE load sees the new PTE.  When
 * flush_tlb_mm() returns, no access can still use the old PTE, which is
 * exactly what ptep_clear_flush() promises on Linux.
 *
 * Costs.  An access pays one locked instruction (the odd increment) and a
 * plain store; no lock, no shared cache line: CPU accesses scale with
 * threads.  A flush reads one cache line per registered CPU and waits only
 * for sections that are in progress in this mm at that instant, and a
 * section is a single page's memcpy, so waits are short and bounded.
 * Flushes are batched the way Linux batches them: one per mmu_gather batch
 * in zap, one per mprotect/fork/mremap range.
 *
 * Freeing.  Frames unmapped under a gather and page-table pages unlinked by
 * free_pgtables() are freed only after the gather's flush, i.e. after every
 * access section that could have seen them has ended: the grace period of
 * an RCU scheme, scoped to one mm's CPUs.  Walkers that take locks (faults
 * under mmap_lock, rmap walks under the anon_vma/i_mmap locks) are excluded
 * by those locks, as on Linux.
 */
#include <sched.h>
#include <stdio.h>

#include "internal.h"

#define CPU_CHUNK	256
#define CPU_CHUNKS	256		/* up to 65536 threads accessing at once */

static struct umm_cpu *cpu_chunks[CPU_CHUNKS];
static _Atomic int nr_cpu_slots;	/* high-water mark of slots handed out */
static pthread_mutex_t cpu_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_key_t cpu_key;
static pthread_once_t cpu_once = PTHREAD_ONCE_INIT;

__thread struct umm_cpu *current_cpu;

static inline struct umm_cpu *cpu_slot(int i)
{
	return &cpu_chunks[i / CPU_CHUNK][i % CPU_CHUNK];
}

static void cpu_release(void *arg)
{
	struct umm_cpu *c = arg;

	VM_BUG_ON(atomic_load(&c->seq) & 1);
	atomic_store_explicit(&c->mm, NULL, memory_order_relaxed);
	atomic_store_explicit(&c->in_use, 0, memory_order_release);
}

static void cpu_key_init(void)
{
	pthread_key_create(&cpu_key, cpu_release);
}

/*
 * cpu_register - give the calling thread a CPU slot.
 * A slot is never freed, only recycled, so flushers may read any slot
 * below nr_cpu_slots without locks.
 */
struct umm_cpu *cpu_register(void)
{
	struct umm_cpu *c = NULL;
	int n;

	pthread_once(&cpu_once, cpu_key_init);
	pthread_mutex_lock(&cpu_lock);
	n = atomic_load(&nr_cpu_slots);
	for (int i = 0; i < n; i++) {
		if (!atomic_load(&cpu_slot(i)->in_use)) {
			c = cpu_slot(i);
			break;
		}
	}
	if (!c) {
		VM_BUG_ON(n >= CPU_CHUNK * CPU_CHUNKS);
		if (!cpu_chunks[n / CPU_CHUNK]) {
			struct umm_cpu *chunk = aligned_alloc(128, sizeof(*chunk) * CPU_CHUNK);

			VM_BUG_ON(!chunk);
			memset(chunk, 0, sizeof(*chunk) * CPU_CHUNK);
			for (int i = 0; i < CPU_CHUNK; i++)
				chunk[i].index = n + i;
			cpu_chunks[n / CPU_CHUNK] = chunk;
		}
		c = cpu_slot(n);
		atomic_store_explicit(&nr_cpu_slots, n + 1, memory_order_release);
	}
	atomic_store(&c->in_use, 1);
	pthread_mutex_unlock(&cpu_lock);
	pthread_setspecific(cpu_key, c);
	current_cpu = c;
	return c;
}

/*
 * flush_tlb_mm - the shootdown: wait until no access section that may have
 * loaded a PTE of @mm before this call is still running.
 * Context: any; may be called with a page-table lock held (sections never
 * take locks).  The PTE changes to be flushed must already be stored.
 */
void flush_tlb_mm(struct umm_mm *mm)
{
	struct umm_cpu *self = current_cpu;
	struct umm *u = mm->u;
	bool waited = false;
	int n;

	atomic_thread_fence(memory_order_seq_cst);
	n = atomic_load_explicit(&nr_cpu_slots, memory_order_acquire);
	for (int i = 0; i < n; i++) {
		struct umm_cpu *c = cpu_slot(i);
		uint64_t s = atomic_load_explicit(&c->seq, memory_order_seq_cst);
		unsigned int spins = 0;

		if (!(s & 1) || c == self)
			continue;
		if (atomic_load_explicit(&c->mm, memory_order_acquire) != mm)
			continue;
		waited = true;
		while (atomic_load_explicit(&c->seq, memory_order_acquire) == s) {
			if (++spins > 64)
				sched_yield();
			else
				__builtin_ia32_pause();
		}
	}
	count_vm_event(u, TLB_FLUSH);
	if (waited)
		count_vm_event(u, TLB_WAIT);
}

/* ---- mmu_gather: batch the frees behind one flush ---- */

void tlb_gather_mmu(struct mmu_gather *tlb, struct umm_mm *mm, bool fullmm)
{
	tlb->mm = mm;
	tlb->fullmm = fullmm;
	tlb->need_flush = false;
	tlb->nr_pages = 0;
	tlb->nr_tables = 0;
}

/*
 * tlb_flush_mmu - flush, then drop the references of every gathered page and
 * free every gathered page-table page.
 */
void tlb_flush_mmu(struct mmu_gather *tlb)
{
	struct umm *u = tlb->mm->u;

	if (!tlb->need_flush && !tlb->nr_pages && !tlb->nr_tables)
		return;
	flush_tlb_mm(tlb->mm);
	tlb->need_flush = false;
	for (unsigned int i = 0; i < tlb->nr_pages; i++) {
		struct umm_page *page = tlb->pages[i];

		if (unlikely(TestPageFlag(page, PG_swapcache)))
			free_swap_cache(u, page);
		put_page(u, page);
	}
	tlb->nr_pages = 0;
	for (unsigned int i = 0; i < tlb->nr_tables; i++)
		pt_free(tlb->mm, tlb->tables[i]);
	tlb->nr_tables = 0;
}

void tlb_remove_page(struct mmu_gather *tlb, struct umm_page *page)
{
	tlb->need_flush = true;
	tlb->pages[tlb->nr_pages++] = page;
	if (tlb->nr_pages == MMU_GATHER_BATCH)
		tlb_flush_mmu(tlb);
}

void tlb_remove_table(struct mmu_gather *tlb, struct pt_page *t)
{
	tlb->need_flush = true;
	tlb->tables[tlb->nr_tables++] = t;
	if (tlb->nr_tables == sizeof(tlb->tables) / sizeof(tlb->tables[0]))
		tlb_flush_mmu(tlb);
}

void tlb_finish_mmu(struct mmu_gather *tlb)
{
	tlb_flush_mmu(tlb);
}
