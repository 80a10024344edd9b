/* SPDX-License-Identifier: MIT */
/*
 * shadow.h - a KVM-style secondary MMU built on umm's public API.
 *
 * A VM's guest memory is one range [gpa_base, gpa_base + size) of a
 * struct umm_mm (guest physical address == host virtual address, as a
 * memslot with one userspace_addr would make it).  A shadow table maps each
 * gfn to the frame that backs it (a direct pointer, no page reference);
 * vCPUs load and store through it without entering the engine, fault
 * missing or read-only entries in with GUP under the invalidate-sequence
 * protocol, and lose them whenever an MMU notifier says the primary
 * mapping changes.
 */
#ifndef UMM_CLIENTS_SHADOW_H
#define UMM_CLIENTS_SHADOW_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <umm/umm.h>

struct shadow_vm;
struct shadow_vcpu;

struct shadow_stats {
	unsigned long faults;		/* sptes installed by the fault path */
	unsigned long retries;		/* fault attempts refused by the sequence check */
	unsigned long zaps;		/* sptes zapped by invalidations or release */
	unsigned long flushes;		/* zaps that had to wait for a vCPU in guest mode */
	unsigned long young;		/* aging calls that found an accessed spte */
	unsigned long change_pte;	/* sptes updated in place by change_pte */
	unsigned long eagain;		/* non-blockable starts refused */
	unsigned long invalidations;	/* invalidate_range_start calls */
	unsigned long unpaired;		/* ends without a start: must stay 0 */
};

/*
 * Create a VM over [@gpa_base, @gpa_base + @size) of @mm (page-aligned)
 * and register its MMU notifier.  The range need not be mapped yet.
 * Return: 0 and *@out; -EINVAL, -ENOMEM, or the registration's error.
 */
int  shadow_vm_create(struct umm_mm *mm, uint64_t gpa_base, uint64_t size,
		      struct shadow_vm **out);
/* Unregister (->release if exit has not run it) and free.  No vCPU may remain. */
void shadow_vm_destroy(struct shadow_vm *vm);

/* A vCPU: one thread runs it at a time.  Return: 0 and *@out, or -ENOMEM. */
int  shadow_vcpu_create(struct shadow_vm *vm, struct shadow_vcpu **out);
void shadow_vcpu_destroy(struct shadow_vcpu *vcpu);

/*
 * Guest loads and stores through the shadow table, faulting entries in as
 * needed; may cross pages.  Return: @len, or -EFAULT when the first page
 * cannot be reached (outside the VM, no mapping, no permission, VM
 * released), -ENOMEM, or the bytes done before a page that cannot.
 */
ssize_t shadow_vcpu_read(struct shadow_vcpu *vcpu, uint64_t gpa, void *buf, size_t len);
ssize_t shadow_vcpu_write(struct shadow_vcpu *vcpu, uint64_t gpa, const void *buf,
			  size_t len);

/* What the spte of @gpa holds: 0 (none), or SPTE_* bits; *@pfn if present. */
#define SHADOW_SPTE_PRESENT	0x1
#define SHADOW_SPTE_WRITABLE	0x2
#define SHADOW_SPTE_ACCESSED	0x4
#define SHADOW_SPTE_DIRTY	0x8
unsigned int shadow_spte(struct shadow_vm *vm, uint64_t gpa, uint64_t *pfn);

void shadow_vm_stats(struct shadow_vm *vm, struct shadow_stats *st);
/* The notifier, for tests that drive it directly. */
struct umm_mmu_notifier *shadow_vm_notifier(struct shadow_vm *vm);

#endif /* UMM_CLIENTS_SHADOW_H */
