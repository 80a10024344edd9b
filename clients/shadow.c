// SPDX-License-Identifier: MIT
/*
 * shadow.c - a KVM-style shadow MMU over a umm address space.
 *
 * Only the public API is used: this file is what a hypervisor would write
 * against umm, and proves that the MMU-notifier contract is enough to cache
 * translations without pinning a single frame.
 *
 * The shadow table is flat, one spte per gfn: the frame's address with the
 * low bits for present, writable, accessed and dirty.  vCPUs read it with no
 * lock, inside a "guest mode" section: vcpu->mode_seq is odd while the vCPU
 * may be dereferencing an spte.  A zap clears sptes and then waits for every
 * vCPU that was in guest mode to leave it (shadow_flush_remote_tlbs(), the
 * equivalent of kvm_flush_remote_tlbs() kicking vCPUs out of the guest).
 * Both sides use sequentially consistent accesses: either the vCPU's load of
 * the spte sees it zapped, or the zapper's load of mode_seq sees the vCPU
 * inside, so no access can go through a zapped spte once the zap returned.
 *
 * Faults follow mmu_invalidate_seq: snapshot it under mmu_lock, fault the
 * page in with GUP (no long-term pin), and install under mmu_lock only if
 * no invalidation covering the page is in progress (the union of the
 * ranges in progress is kept, as kvm keeps it) and none ended since the
 * snapshot; then drop the GUP reference.  The notifier, not a reference, keeps the spte valid:
 * every change of the primary PTE starts with invalidate_range_start,
 * which zaps the spte before the frame can be freed, moved, merged or
 * write-protected.
 *
 * Lock order: mmu_lock, then nothing of umm's (callbacks are entered with
 * the engine's locks held; the fault path drops mmu_lock around GUP).
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "client_common.h"
#include "shadow.h"

#define PAGE_SIZE	((uint64_t)UMM_PAGE_SIZE)
#define PAGE_MASK	(~(PAGE_SIZE - 1))
#define SHADOW_MAX_VCPUS 64

/* spte bits live in the frame address's low bits */
#define SPTE_PRESENT	((uintptr_t)SHADOW_SPTE_PRESENT)
#define SPTE_WRITABLE	((uintptr_t)SHADOW_SPTE_WRITABLE)
#define SPTE_ACCESSED	((uintptr_t)SHADOW_SPTE_ACCESSED)
#define SPTE_DIRTY	((uintptr_t)SHADOW_SPTE_DIRTY)
#define SPTE_FLAGS	(PAGE_SIZE - 1)

#define container_of(ptr, type, member) \
	((type *)((char *)(ptr) - offsetof(type, member)))

struct shadow_vcpu {
	_Atomic unsigned long mode_seq;		/* odd: in guest mode */
	struct shadow_vm *vm;
} __attribute__((aligned(64)));

struct shadow_vm {
	struct umm_mmu_notifier mn;
	struct umm_mm *mm;
	uint64_t base, size;
	_Atomic uintptr_t *sptes;		/* one per gfn: frame | SPTE_* */

	pthread_mutex_t mmu_lock;		/* protects everything below */
	unsigned long mmu_invalidate_seq;
	long mmu_invalidate_in_progress;
	uint64_t mmu_invalidate_start;		/* union of the ranges in progress */
	uint64_t mmu_invalidate_end;
	bool released;
	uint64_t *pfns;				/* pfn of each present spte */
	char *arena;				/* frame of pfn 0, learnt from GUP */
	struct shadow_vcpu *vcpus[SHADOW_MAX_VCPUS];
	int nr_vcpus;

	struct shadow_stats stat;		/* updated with __atomic builtins */
};

#define stat_add(vm, field, n) __atomic_fetch_add(&(vm)->stat.field, (n), __ATOMIC_RELAXED)
#define stat_inc(vm, field) stat_add(vm, field, 1)

static inline struct shadow_vm *to_vm(struct umm_mmu_notifier *mn)
{
	return container_of(mn, struct shadow_vm, mn);
}

static inline uint64_t gpa_to_gfn(struct shadow_vm *vm, uint64_t gpa)
{
	return (gpa - vm->base) / PAGE_SIZE;
}

/* Clip [@start, @end) to the VM.  Return: false if they do not meet. */
static bool clip_range(struct shadow_vm *vm, uint64_t *start, uint64_t *end)
{
	uint64_t s = *start > vm->base ? *start : vm->base;
	uint64_t e = *end < vm->base + vm->size ? *end : vm->base + vm->size;

	if (s >= e)
		return false;
	*start = s;
	*end = e;
	return true;
}

/*
 * Must a fault of @gpa wait or give up its result?  Only while an
 * invalidation covering it is in progress, or if one ended since @seq was
 * sampled (kvm's mmu_invalidate_retry_gfn).  Context: mmu_lock held.
 */
static bool mmu_invalidate_retry(struct shadow_vm *vm, uint64_t gpa, unsigned long seq)
{
	if (vm->mmu_invalidate_in_progress && gpa >= vm->mmu_invalidate_start &&
	    gpa < vm->mmu_invalidate_end)
		return true;
	return vm->mmu_invalidate_seq != seq;
}

/* ---- the vCPU side ---- */

/*
 * Enter guest mode.  The seq_cst store orders the later spte loads after it
 * against the zapper's seq_cst spte store and mode_seq load.
 */
static inline void guest_enter(struct shadow_vcpu *vcpu)
{
	unsigned long s = atomic_load_explicit(&vcpu->mode_seq, memory_order_relaxed);

	atomic_store_explicit(&vcpu->mode_seq, s + 1, memory_order_seq_cst);
}

static inline void guest_exit(struct shadow_vcpu *vcpu)
{
	unsigned long s = atomic_load_explicit(&vcpu->mode_seq, memory_order_relaxed);

	atomic_store_explicit(&vcpu->mode_seq, s + 1, memory_order_release);
}

/*
 * The spte may serve this access: set its accessed (and dirty) bits as
 * the hardware would, unless a zap cleared it meanwhile.
 * Context: guest mode.  Return: the frame, or NULL to fault.
 */
static inline char *spte_use(_Atomic uintptr_t *sptep, bool write)
{
	uintptr_t want = write ? SPTE_PRESENT | SPTE_WRITABLE : SPTE_PRESENT;
	uintptr_t bits = write ? SPTE_ACCESSED | SPTE_DIRTY : SPTE_ACCESSED;
	uintptr_t spte = atomic_load_explicit(sptep, memory_order_seq_cst);

	for (;;) {
		if ((spte & want) != want)
			return NULL;
		if ((spte & bits) == bits)
			return (char *)(spte & ~(uintptr_t)SPTE_FLAGS);
		if (atomic_compare_exchange_weak_explicit(sptep, &spte, spte | bits,
							  memory_order_seq_cst,
							  memory_order_seq_cst))
			return (char *)(spte & ~(uintptr_t)SPTE_FLAGS);
	}
}

/*
 * shadow_page_fault - make the spte of @gpa serve a read (or a write).
 * Context: not in guest mode (GUP may invalidate, which waits for vCPUs).
 * Return: 0, or -EFAULT/-ENOMEM/... from GUP, -EFAULT once released.
 */
static int shadow_page_fault(struct shadow_vm *vm, uint64_t gpa, bool write)
{
	uint64_t gfn = gpa_to_gfn(vm, gpa);
	uintptr_t want = write ? SPTE_PRESENT | SPTE_WRITABLE : SPTE_PRESENT;

	for (;;) {
		struct umm_page *page;
		unsigned long seq;
		bool installed = false;
		char *frame;
		int err;

		pthread_mutex_lock(&vm->mmu_lock);
		if (vm->released) {
			pthread_mutex_unlock(&vm->mmu_lock);
			return -EFAULT;
		}
		/* another vCPU may have faulted it in */
		if ((atomic_load_explicit(&vm->sptes[gfn], memory_order_relaxed) & want) == want) {
			pthread_mutex_unlock(&vm->mmu_lock);
			return 0;
		}
		seq = vm->mmu_invalidate_seq;
		if (mmu_invalidate_retry(vm, gpa, seq)) {
			pthread_mutex_unlock(&vm->mmu_lock);
			stat_inc(vm, retries);
			sched_yield();
			continue;
		}
		pthread_mutex_unlock(&vm->mmu_lock);

		err = umm_get_user_page(vm->mm, gpa & PAGE_MASK, write ? UMM_GUP_WRITE : 0, &page);
		if (err)
			return err;
		frame = umm_page_address(page);

		pthread_mutex_lock(&vm->mmu_lock);
		if (!vm->released && !mmu_invalidate_retry(vm, gpa, seq)) {
			uint64_t pfn = umm_page_pfn(page);

			/* a read maps read-only: the frame may be the zero frame or COW-shared */
			atomic_store_explicit(&vm->sptes[gfn], (uintptr_t)frame | SPTE_PRESENT |
					      (write ? SPTE_WRITABLE : 0), memory_order_release);
			vm->pfns[gfn] = pfn;
			if (!vm->arena)
				vm->arena = frame - pfn * PAGE_SIZE;
			umm_mmu_notifier_check_map(&vm->mn, gpa & PAGE_MASK, pfn);
			installed = true;
		}
		pthread_mutex_unlock(&vm->mmu_lock);
		umm_put_page(page);
		if (installed) {
			stat_inc(vm, faults);
			return 0;
		}
		stat_inc(vm, retries);
	}
}

static ssize_t vcpu_access(struct shadow_vcpu *vcpu, uint64_t gpa, void *buf, size_t len,
			   bool write)
{
	struct shadow_vm *vm = vcpu->vm;
	size_t done = 0;
	int err = 0;

	while (done < len) {
		uint64_t addr = gpa + done;
		size_t off, n = page_chunk(addr, len - done, &off);
		char *frame;

		if (addr < vm->base || addr >= vm->base + vm->size || addr < gpa) {
			err = -EFAULT;
			break;
		}
		guest_enter(vcpu);
		frame = spte_use(&vm->sptes[gpa_to_gfn(vm, addr)], write);
		if (frame) {
			frame_io(frame + off, (char *)buf + done, n, write);
			guest_exit(vcpu);
			done += n;
			continue;
		}
		guest_exit(vcpu);
		err = shadow_page_fault(vm, addr, write);
		if (err)
			break;
	}
	return done ? (ssize_t)done : err;
}

ssize_t shadow_vcpu_read(struct shadow_vcpu *vcpu, uint64_t gpa, void *buf, size_t len)
{
	return vcpu_access(vcpu, gpa, buf, len, false);
}

ssize_t shadow_vcpu_write(struct shadow_vcpu *vcpu, uint64_t gpa, const void *buf, size_t len)
{
	return vcpu_access(vcpu, gpa, (void *)buf, len, true);
}

/* ---- the MMU side ---- */

/*
 * Is any vCPU in guest mode?  Context: mmu_lock held, after the zap's
 * seq_cst stores.
 */
static bool vcpus_in_guest(struct shadow_vm *vm)
{
	for (int i = 0; i < vm->nr_vcpus; i++)
		if (atomic_load_explicit(&vm->vcpus[i]->mode_seq, memory_order_seq_cst) & 1)
			return true;
	return false;
}

/*
 * shadow_flush_remote_tlbs - wait until every vCPU that was in guest mode
 * has left it: then none can still use a zapped spte.
 * Context: mmu_lock held (vCPUs never take it in guest mode); may sleep.
 */
static void shadow_flush_remote_tlbs(struct shadow_vm *vm)
{
	umm_might_sleep();
	for (int i = 0; i < vm->nr_vcpus; i++) {
		struct shadow_vcpu *vcpu = vm->vcpus[i];
		unsigned long s = atomic_load_explicit(&vcpu->mode_seq, memory_order_seq_cst);

		if (!(s & 1))
			continue;
		while (atomic_load_explicit(&vcpu->mode_seq, memory_order_acquire) == s)
			sched_yield();
	}
}

/* Zap the sptes of [@start, @end).  Context: mmu_lock held.  Return: how many. */
static unsigned long zap_range(struct shadow_vm *vm, uint64_t start, uint64_t end)
{
	unsigned long nr = 0;

	for (uint64_t gfn = gpa_to_gfn(vm, start); gfn < gpa_to_gfn(vm, end); gfn++) {
		if (!atomic_load_explicit(&vm->sptes[gfn], memory_order_relaxed))
			continue;
		atomic_store_explicit(&vm->sptes[gfn], 0, memory_order_seq_cst);
		nr++;
	}
	return nr;
}

/*
 * Every event zaps: UNMAP, CLEAR and MIGRATE take the frame away,
 * PROTECTION_* take write permission (kvm zaps those too rather than
 * downgrading), RELEASE ends everything.  A non-blockable start (the OOM
 * reaper) must not wait: it gives up with -EAGAIN when mmu_lock is
 * contended or a vCPU might still be using what it zapped.
 */
static int shadow_invalidate_range_start(struct umm_mmu_notifier *mn,
					 const struct umm_mmu_notifier_range *range)
{
	struct shadow_vm *vm = to_vm(mn);
	bool blockable = range->flags & UMM_MMU_NOTIFIER_RANGE_BLOCKABLE;
	uint64_t start = range->start, end = range->end;
	unsigned long nr;

	if (!clip_range(vm, &start, &end))
		return 0;
	if (blockable) {
		umm_might_sleep();
		pthread_mutex_lock(&vm->mmu_lock);
	} else if (pthread_mutex_trylock(&vm->mmu_lock)) {
		stat_inc(vm, eagain);
		return -EAGAIN;
	}
	stat_inc(vm, invalidations);
	if (!vm->mmu_invalidate_in_progress++) {
		vm->mmu_invalidate_start = start;
		vm->mmu_invalidate_end = end;
	} else {
		if (start < vm->mmu_invalidate_start)
			vm->mmu_invalidate_start = start;
		if (end > vm->mmu_invalidate_end)
			vm->mmu_invalidate_end = end;
	}
	nr = zap_range(vm, start, end);
	stat_add(vm, zaps, nr);
	if (nr && !blockable && vcpus_in_guest(vm)) {
		/* waiting is not allowed; and no end will come for a refused start */
		vm->mmu_invalidate_in_progress--;
		vm->mmu_invalidate_seq++;
		pthread_mutex_unlock(&vm->mmu_lock);
		stat_inc(vm, eagain);
		return -EAGAIN;
	}
	if (nr && blockable) {
		shadow_flush_remote_tlbs(vm);
		stat_inc(vm, flushes);
	}
	umm_mmu_notifier_check_unmap(&vm->mn, start, end);
	pthread_mutex_unlock(&vm->mmu_lock);
	return 0;
}

static void shadow_invalidate_range_end(struct umm_mmu_notifier *mn,
					const struct umm_mmu_notifier_range *range)
{
	struct shadow_vm *vm = to_vm(mn);
	uint64_t start = range->start, end = range->end;

	if (!clip_range(vm, &start, &end))
		return;
	pthread_mutex_lock(&vm->mmu_lock);
	if (vm->mmu_invalidate_in_progress <= 0) {
		stat_inc(vm, unpaired);
	} else {
		/* the seq first: a fault that sees in_progress drop sees it moved */
		vm->mmu_invalidate_seq++;
		vm->mmu_invalidate_in_progress--;
	}
	pthread_mutex_unlock(&vm->mmu_lock);
}

/* Accessed bits of [start, end): cleared if @clear.  Return: 1 if any was set. */
static int age_range(struct shadow_vm *vm, uint64_t start, uint64_t end, bool clear)
{
	int young = 0;

	if (!clip_range(vm, &start, &end))
		return 0;
	for (uint64_t gfn = gpa_to_gfn(vm, start); gfn < gpa_to_gfn(vm, end); gfn++) {
		_Atomic uintptr_t *sptep = &vm->sptes[gfn];
		uintptr_t spte = atomic_load_explicit(sptep, memory_order_relaxed);

		if (!(spte & SPTE_ACCESSED))
			continue;
		young = 1;
		if (clear)
			atomic_fetch_and_explicit(sptep, ~SPTE_ACCESSED, memory_order_relaxed);
	}
	if (young)
		stat_inc(vm, young);
	return young;
}

/*
 * Clearing the bit is also the flush: a vCPU tests it on every access, so
 * its next use of the page sets it again.
 */
static int shadow_clear_flush_young(struct umm_mmu_notifier *mn, struct umm_mm *mm,
				    uint64_t start, uint64_t end)
{
	return age_range(to_vm(mn), start, end, true);
}

static int shadow_clear_young(struct umm_mmu_notifier *mn, struct umm_mm *mm,
			      uint64_t start, uint64_t end)
{
	return age_range(to_vm(mn), start, end, true);
}

static int shadow_test_young(struct umm_mmu_notifier *mn, struct umm_mm *mm, uint64_t addr)
{
	return age_range(to_vm(mn), addr & PAGE_MASK, (addr & PAGE_MASK) + PAGE_SIZE, false);
}

/*
 * The PTE at @addr now maps @pfn (KSM merged the page): repoint a present
 * spte in place, read-only unless @writable.  It comes inside an
 * invalidation of the page, whose start zapped the spte already, so as in
 * kvm this finds nothing unless a subscriber kept the spte.
 */
static void shadow_change_pte(struct umm_mmu_notifier *mn, struct umm_mm *mm, uint64_t addr,
			      uint64_t pfn, bool writable)
{
	struct shadow_vm *vm = to_vm(mn);
	uint64_t start = addr & PAGE_MASK, end = start + PAGE_SIZE;
	_Atomic uintptr_t *sptep;
	uintptr_t spte;

	if (!clip_range(vm, &start, &end))
		return;
	pthread_mutex_lock(&vm->mmu_lock);
	sptep = &vm->sptes[gpa_to_gfn(vm, start)];
	spte = atomic_load_explicit(sptep, memory_order_relaxed);
	if (spte && vm->arena && !vm->released) {
		uintptr_t bits = spte & (SPTE_PRESENT | SPTE_ACCESSED);

		if (writable)
			bits |= spte & (SPTE_WRITABLE | SPTE_DIRTY);
		atomic_store_explicit(sptep, (uintptr_t)(vm->arena + pfn * PAGE_SIZE) | bits,
				      memory_order_seq_cst);
		shadow_flush_remote_tlbs(vm);
		vm->pfns[gpa_to_gfn(vm, start)] = pfn;
		umm_mmu_notifier_check_unmap(&vm->mn, start, end);
		umm_mmu_notifier_check_map(&vm->mn, start, pfn);
		stat_inc(vm, change_pte);
	}
	pthread_mutex_unlock(&vm->mmu_lock);
}

/* The address space is going: zap everything; vCPUs fault no more. */
static void shadow_release(struct umm_mmu_notifier *mn, struct umm_mm *mm)
{
	struct shadow_vm *vm = to_vm(mn);
	unsigned long nr;

	pthread_mutex_lock(&vm->mmu_lock);
	vm->released = true;
	nr = zap_range(vm, vm->base, vm->base + vm->size);
	shadow_flush_remote_tlbs(vm);
	umm_mmu_notifier_check_unmap(&vm->mn, vm->base, vm->base + vm->size);
	pthread_mutex_unlock(&vm->mmu_lock);
	stat_add(vm, zaps, nr);
}

static const struct umm_mmu_notifier_ops shadow_mmu_notifier_ops = {
	.release		= shadow_release,
	.clear_flush_young	= shadow_clear_flush_young,
	.clear_young		= shadow_clear_young,
	.test_young		= shadow_test_young,
	.change_pte		= shadow_change_pte,
	.invalidate_range_start	= shadow_invalidate_range_start,
	.invalidate_range_end	= shadow_invalidate_range_end,
};

/* ---- VMs and vCPUs ---- */

int shadow_vm_create(struct umm_mm *mm, uint64_t gpa_base, uint64_t size,
		     struct shadow_vm **out)
{
	uint64_t nr_pages = size / PAGE_SIZE;
	struct shadow_vm *vm;
	int err;

	if (!mm || !out || !size || (gpa_base | size) & ~PAGE_MASK ||
	    gpa_base + size < gpa_base || gpa_base + size > UMM_TASK_SIZE)
		return -EINVAL;
	vm = calloc(1, sizeof(*vm));
	if (!vm)
		return -ENOMEM;
	vm->sptes = calloc(nr_pages, sizeof(*vm->sptes));
	vm->pfns = calloc(nr_pages, sizeof(*vm->pfns));
	if (!vm->sptes || !vm->pfns) {
		err = -ENOMEM;
		goto out_free;
	}
	vm->mm = mm;
	vm->base = gpa_base;
	vm->size = size;
	pthread_mutex_init(&vm->mmu_lock, NULL);
	vm->mn.ops = &shadow_mmu_notifier_ops;
	err = umm_mmu_notifier_register(&vm->mn, mm);
	if (err)
		goto out_lock;
	*out = vm;
	return 0;

out_lock:
	pthread_mutex_destroy(&vm->mmu_lock);
out_free:
	free(vm->pfns);
	free(vm->sptes);
	free(vm);
	return err;
}

void shadow_vm_destroy(struct shadow_vm *vm)
{
	if (!vm)
		return;
	/*
	 * Stop the VM first, as a driver stops its device: nothing is cached
	 * once unregister takes the notifier off the mm's list, so an
	 * invalidation that no longer reaches us cannot leave a stale spte
	 * (umm's unregister unlists before it calls ->release).
	 */
	shadow_release(&vm->mn, vm->mm);
	umm_mmu_notifier_unregister(&vm->mn, vm->mm);
	pthread_mutex_destroy(&vm->mmu_lock);
	free(vm->pfns);
	free(vm->sptes);
	free(vm);
}

int shadow_vcpu_create(struct shadow_vm *vm, struct shadow_vcpu **out)
{
	struct shadow_vcpu *vcpu;
	int err = 0;

	if (!vm || !out)
		return -EINVAL;
	vcpu = aligned_alloc(64, sizeof(*vcpu));
	if (!vcpu)
		return -ENOMEM;
	memset(vcpu, 0, sizeof(*vcpu));
	vcpu->vm = vm;
	pthread_mutex_lock(&vm->mmu_lock);
	if (vm->nr_vcpus == SHADOW_MAX_VCPUS)
		err = -ENOSPC;
	else
		vm->vcpus[vm->nr_vcpus++] = vcpu;
	pthread_mutex_unlock(&vm->mmu_lock);
	if (err) {
		free(vcpu);
		return err;
	}
	*out = vcpu;
	return 0;
}

void shadow_vcpu_destroy(struct shadow_vcpu *vcpu)
{
	struct shadow_vm *vm;

	if (!vcpu)
		return;
	vm = vcpu->vm;
	pthread_mutex_lock(&vm->mmu_lock);
	for (int i = 0; i < vm->nr_vcpus; i++) {
		if (vm->vcpus[i] == vcpu) {
			vm->vcpus[i] = vm->vcpus[--vm->nr_vcpus];
			break;
		}
	}
	pthread_mutex_unlock(&vm->mmu_lock);
	free(vcpu);
}

unsigned int shadow_spte(struct shadow_vm *vm, uint64_t gpa, uint64_t *pfn)
{
	uintptr_t spte;

	if (gpa < vm->base || gpa >= vm->base + vm->size)
		return 0;
	pthread_mutex_lock(&vm->mmu_lock);
	spte = atomic_load_explicit(&vm->sptes[gpa_to_gfn(vm, gpa)], memory_order_relaxed);
	if (spte && pfn)
		*pfn = vm->pfns[gpa_to_gfn(vm, gpa)];
	pthread_mutex_unlock(&vm->mmu_lock);
	return (unsigned int)(spte & SPTE_FLAGS);
}

void shadow_vm_stats(struct shadow_vm *vm, struct shadow_stats *st)
{
	const unsigned long *from = (const unsigned long *)&vm->stat;
	unsigned long *to = (unsigned long *)st;

	for (size_t i = 0; i < sizeof(*st) / sizeof(*to); i++)
		to[i] = __atomic_load_n(&from[i], __ATOMIC_RELAXED);
}

struct umm_mmu_notifier *shadow_vm_notifier(struct shadow_vm *vm)
{
	return &vm->mn;
}
