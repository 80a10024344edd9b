// SPDX-License-Identifier: MIT
/*
 * mmap.c - address spaces and their VMAs: mmap, munmap, mprotect, mremap,
 * madvise, mlock, fork's dup_mmap and exit_mmap.
 *
 * VMAs live in a red-black tree keyed by start address (O(log n) lookup).
 * Every change to the tree happens with mmap_lock held for write; faults
 * and lookups hold it for read.  Ranges are split at their edges before a
 * change and adjacent compatible VMAs are merged back afterwards, as
 * Linux's vma_merge() does, so a sequence of mprotects that restores the
 * original protection restores a single VMA.
 */
#include <stdio.h>

#include "internal.h"

#define MMAP_BASE	0x00007f0000000000ULL
#define ADDR_SPACE_TOP	(1ULL << 48)

/* ---- the VMA tree ---- */

/* find_vma - the first VMA with vm_end > @addr, or NULL. Context: mmap_lock. */
struct vm_area_struct *find_vma(struct umm_mm *mm, uint64_t addr)
{
	struct rb_node *n = mm->mm_rb.node;
	struct vm_area_struct *found = NULL;

	while (n) {
		struct vm_area_struct *v = rb_entry(n, struct vm_area_struct, vm_rb);

		if (v->vm_end > addr) {
			found = v;
			if (v->vm_start <= addr)
				break;
			n = n->left;
		} else {
			n = n->right;
		}
	}
	return found;
}

static struct vm_area_struct *vma_next(struct vm_area_struct *v)
{
	struct rb_node *n = rb_next(&v->vm_rb);

	return n ? rb_entry(n, struct vm_area_struct, vm_rb) : NULL;
}

static struct vm_area_struct *vma_prev(struct vm_area_struct *v)
{
	struct rb_node *n = rb_prev(&v->vm_rb);

	return n ? rb_entry(n, struct vm_area_struct, vm_rb) : NULL;
}

/* Insert @vma in @mm's tree and, if it maps an object, in its i_mmap. */
static void vma_link(struct umm_mm *mm, struct vm_area_struct *vma)
{
	struct rb_node **link = &mm->mm_rb.node, *parent = NULL;

	if (vma->vm_mapping) {
		pthread_rwlock_wrlock(&vma->vm_mapping->i_mmap_rwsem);
		vma_set_shared_range(vma);
		interval_tree_insert(&vma->shared, &vma->vm_mapping->i_mmap);
		pthread_rwlock_unlock(&vma->vm_mapping->i_mmap_rwsem);
	}

	while (*link) {
		struct vm_area_struct *v = rb_entry(*link, struct vm_area_struct, vm_rb);

		parent = *link;
		link = vma->vm_start < v->vm_start ? &parent->left : &parent->right;
	}
	rb_link_node(&vma->vm_rb, parent, link);
	rb_insert_color(&vma->vm_rb, &mm->mm_rb);
	mm->map_count++;
}

static void vma_unlink(struct umm_mm *mm, struct vm_area_struct *vma)
{
	rb_erase(&vma->vm_rb, &mm->mm_rb);
	mm->map_count--;
	if (vma->vm_mapping) {
		pthread_rwlock_wrlock(&vma->vm_mapping->i_mmap_rwsem);
		interval_tree_remove(&vma->shared, &vma->vm_mapping->i_mmap);
		pthread_rwlock_unlock(&vma->vm_mapping->i_mmap_rwsem);
	}
}

static struct vm_area_struct *vma_alloc(struct umm_mm *mm)
{
	struct vm_area_struct *v = should_fail(mm->u, UMM_FAULT_VMA_ALLOC) ? NULL :
				   calloc(1, sizeof(*v));

	if (v) {
		v->vm_mm = mm;
		INIT_LIST_HEAD(&v->anon_vma_chain);
	}
	return v;
}

/*
 * vma_dup - a copy of @src's fields, holding its own reference on the
 * mapped object, not yet in any tree and with no anon_vma chain: the
 * caller sets the range, then anon_vma_clone()s and links it.
 */
static struct vm_area_struct *vma_dup(struct vm_area_struct *src)
{
	struct vm_area_struct *v = vma_alloc(src->vm_mm);

	if (!v)
		return NULL;
	v->vm_start = src->vm_start;
	v->vm_end = src->vm_end;
	v->vm_flags = src->vm_flags;
	v->vm_pgoff = src->vm_pgoff;
	v->vm_mapping = src->vm_mapping;
	if (v->vm_mapping)
		mapping_get(v->vm_mapping);
	return v;
}

/*
 * vma_free - release an unlinked VMA.  A shared file mapping going away
 * writes its dirty pages back, so nothing stored through it is lost.
 */
static void vma_free(struct vm_area_struct *v)
{
	unlink_anon_vmas(v);
	if (v->vm_mapping) {
		if ((v->vm_flags & VM_SHARED) && !mapping_is_shmem(v->vm_mapping))
			filemap_write_range(v->vm_mapping, v->vm_pgoff, v->vm_pgoff + vma_pages(v) - 1);
		mapping_put(v->vm_mapping);
	}
	free(v);
}

/*
 * split_vma - cut @vma at @addr.  @vma keeps [vm_start, addr); the returned
 * new VMA is [addr, vm_end).  Return: the new VMA, NULL on -ENOMEM.
 * Context: mmap_lock held for write.
 */
static struct vm_area_struct *split_vma(struct umm_mm *mm, struct vm_area_struct *vma, uint64_t addr)
{
	struct vm_area_struct *upper;

	VM_BUG_ON(addr <= vma->vm_start || addr >= vma->vm_end || !PAGE_ALIGNED(addr));
	upper = vma_dup(vma);
	if (!upper)
		return NULL;
	upper->vm_start = addr;
	upper->vm_pgoff += (addr - vma->vm_start) >> PAGE_SHIFT;
	if (anon_vma_clone(upper, vma)) {
		vma_free(upper);
		return NULL;
	}
	vma_rmap_pre_update(vma);
	vma->vm_end = addr;
	vma_rmap_post_update(vma);
	vma_link(mm, upper);
	return upper;
}

/* Can @a and its right neighbour @b become one VMA? */
static bool can_merge(const struct vm_area_struct *a, const struct vm_area_struct *b)
{
	return a->vm_end == b->vm_start && a->vm_flags == b->vm_flags &&
	       a->vm_mapping == b->vm_mapping &&
	       a->vm_pgoff + vma_pages(a) == b->vm_pgoff &&
	       (a->anon_vma == b->anon_vma || !a->anon_vma || !b->anon_vma);
}

/*
 * merge_into - fold @b into @a (its left neighbour).  If only @b has
 * anonymous pages, @a first links to all of @b's anon_vmas.
 * Return: false (nothing changed) if that link could not be allocated.
 */
static bool merge_into(struct umm_mm *mm, struct vm_area_struct *a, struct vm_area_struct *b)
{
	if (!a->anon_vma && b->anon_vma && anon_vma_clone(a, b))
		return false;
	vma_unlink(mm, b);
	vma_rmap_pre_update(a);
	a->vm_end = b->vm_end;
	vma_rmap_post_update(a);
	vma_free(b);
	return true;
}

/*
 * vma_try_merge - merge @vma with its neighbours where compatible.
 * Return: the VMA that now covers @vma's range.
 */
static struct vm_area_struct *vma_try_merge(struct umm_mm *mm, struct vm_area_struct *vma)
{
	struct vm_area_struct *prev = vma_prev(vma), *next = vma_next(vma);

	if (next && can_merge(vma, next))
		merge_into(mm, vma, next);
	if (prev && can_merge(prev, vma) && merge_into(mm, prev, vma))
		vma = prev;
	return vma;
}

/*
 * vma_isolate - split so that [start, end) (inside @vma) is a VMA of its own.
 * Return: that VMA, or NULL on -ENOMEM.
 */
static struct vm_area_struct *vma_isolate(struct umm_mm *mm, struct vm_area_struct *vma,
					  uint64_t start, uint64_t end)
{
	if (vma->vm_start < start) {
		vma = split_vma(mm, vma, start);
		if (!vma)
			return NULL;
	}
	if (vma->vm_end > end && !split_vma(mm, vma, end))
		return NULL;
	return vma;
}

/* ---- address-space lifetime ---- */

int umm_mm_create(struct umm *u, struct umm_mm **out)
{
	struct umm_mm *mm;

	if (!u || !out)
		return -EINVAL;
	mm = calloc(1, sizeof(*mm));
	if (!mm)
		return -ENOMEM;
	mm->u = u;
	mm->pgd = pt_alloc(mm, 4);
	if (!mm->pgd) {
		free(mm);
		return -ENOMEM;
	}
	pthread_rwlockattr_t attr;
	pthread_rwlockattr_init(&attr);
	/* writers (munmap, fork) must not starve behind a stream of faults */
	pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&mm->mmap_lock, &attr);
	pthread_rwlockattr_destroy(&attr);
	spin_lock_init(&mm->page_table_lock);
	mm->mm_rb = RB_ROOT;
	mm->mmap_base = MMAP_BASE;
	atomic_init(&mm->mm_users, 1);
	atomic_init(&mm->mm_count, 1);
	pthread_mutex_lock(&u->mm_lock);
	list_add_tail(&mm->mmlist, &u->mm_list);
	u->nr_mms++;
	pthread_mutex_unlock(&u->mm_lock);
	*out = mm;
	return 0;
}

void mmgrab(struct umm_mm *mm)
{
	atomic_fetch_add(&mm->mm_count, 1);
}

void mmdrop(struct umm_mm *mm)
{
	if (atomic_fetch_sub(&mm->mm_count, 1) != 1)
		return;
	mmu_notifier_subscriptions_destroy(mm);
	pthread_rwlock_destroy(&mm->mmap_lock);
	free(mm);
}

/* Remove and free every VMA in [start, end) after zapping it. */
static void remove_vmas(struct umm_mm *mm, struct vm_area_struct *first, uint64_t end,
			struct mmu_gather *tlb)
{
	struct vm_area_struct *v = first, *prev = vma_prev(first), *next = NULL;
	struct vm_area_struct *batch[64];
	uint64_t start = first->vm_start, floor, ceiling;
	unsigned int nr = 0;

	while (v && v->vm_start < end) {
		next = vma_next(v);
		unmap_vmas(tlb, v, v->vm_start, v->vm_end);
		mm->total_vm -= vma_pages(v);
		if (v->vm_flags & VM_LOCKED)
			mm->locked_vm -= vma_pages(v);
		/* out of every rmap tree before its page tables can go */
		vma_unlink(mm, v);
		unlink_anon_vmas(v);
		if (nr == 64) {
			tlb_flush_mmu(tlb);
			for (unsigned int i = 0; i < nr; i++)
				vma_free(batch[i]);
			nr = 0;
		}
		batch[nr++] = v;
		v = next;
	}
	/* v is now the first VMA above the range: tables up to it may go */
	floor = prev ? prev->vm_end : 0;
	ceiling = v ? v->vm_start : ADDR_SPACE_TOP;
	free_pgtables(tlb, floor, ceiling, start, end);
	tlb_flush_mmu(tlb);
	for (unsigned int i = 0; i < nr; i++)
		vma_free(batch[i]);
}

/*
 * do_munmap - unmap [start, end).  Return: 0 or -ENOMEM (a split failed;
 * nothing was unmapped).
 * Context: mmap_lock held for write.
 */
static int do_munmap(struct umm_mm *mm, uint64_t start, uint64_t end)
{
	struct vm_area_struct *vma = find_vma(mm, start), *last;
	struct mmu_notifier_range range;
	struct mmu_gather tlb;

	if (!vma || vma->vm_start >= end)
		return 0;
	last = find_vma(mm, end - 1);
	/* split the last first: after it, a failure leaves nothing changed */
	if (last && last->vm_start < end && last->vm_end > end && !split_vma(mm, last, end))
		return -ENOMEM;
	if (vma->vm_start < start) {
		vma = split_vma(mm, vma, start);
		if (!vma)
			return -ENOMEM;
	}
	mmu_notifier_range_init(&range, UMM_MMU_NOTIFY_UNMAP, mm, start, end);
	mmu_notifier_invalidate_range_start(&range);
	tlb_gather_mmu(&tlb, mm, false);
	remove_vmas(mm, vma, end, &tlb);
	tlb_finish_mmu(&tlb);
	mmu_notifier_invalidate_range_end(&range);
	return 0;
}

static void exit_mmap(struct umm_mm *mm)
{
	struct rb_node *n;
	struct mmu_gather tlb;

	ksm_exit(mm);
	pthread_rwlock_wrlock(&mm->mmap_lock);
	__atomic_store_n(&mm->dead, true, __ATOMIC_RELEASE);	/* no new subscriber from here on */
	pthread_rwlock_unlock(&mm->mmap_lock);
	/* secondary MMUs drop everything now; no start is sent after this */
	mmu_notifier_release(mm);
	pthread_rwlock_wrlock(&mm->mmap_lock);
	tlb_gather_mmu(&tlb, mm, true);
	n = rb_first(&mm->mm_rb);
	if (n)
		remove_vmas(mm, rb_entry(n, struct vm_area_struct, vm_rb), ADDR_SPACE_TOP, &tlb);
	tlb_finish_mmu(&tlb);
	pthread_rwlock_unlock(&mm->mmap_lock);
	pt_free(mm, mm->pgd);
	__atomic_store_n(&mm->pgd, NULL, __ATOMIC_RELEASE);
}

void umm_mm_exit(struct umm_mm *mm)
{
	struct umm *u;

	if (!mm)
		return;
	u = mm->u;
	if (atomic_fetch_sub(&mm->mm_users, 1) != 1)
		return;
	exit_mmap(mm);
	pthread_mutex_lock(&u->mm_lock);
	list_del_init(&mm->mmlist);
	u->nr_mms--;
	pthread_mutex_unlock(&u->mm_lock);
	mmdrop(mm);
}

/* ---- mmap ---- */

#define MAP_KNOWN (UMM_MAP_SHARED | UMM_MAP_PRIVATE | UMM_MAP_FIXED | UMM_MAP_ANONYMOUS | \
		   UMM_MAP_POPULATE | UMM_MAP_LOCKED | UMM_MAP_FIXED_NOREPLACE)
#define PROT_KNOWN (UMM_PROT_READ | UMM_PROT_WRITE | UMM_PROT_EXEC)

static unsigned long prot_to_vm(int prot)
{
	return (prot & UMM_PROT_READ ? VM_READ : 0) | (prot & UMM_PROT_WRITE ? VM_WRITE : 0) |
	       (prot & UMM_PROT_EXEC ? VM_EXEC : 0);
}

/* Is [start, end) inside the user address range? */
static bool range_ok(uint64_t start, uint64_t len)
{
	return start >= UMM_MMAP_MIN_ADDR && start + len >= start && start + len <= UMM_TASK_SIZE;
}

static bool range_free(struct umm_mm *mm, uint64_t start, uint64_t end)
{
	struct vm_area_struct *v = find_vma(mm, start);

	return !v || v->vm_start >= end;
}

/*
 * get_unmapped_area - a free range of @len bytes: the hint if it is free,
 * else the highest gap below mmap_base (top-down, as Linux), else the
 * lowest above it.  Return: the address or 0.
 */
static uint64_t get_unmapped_area(struct umm_mm *mm, uint64_t hint, uint64_t len)
{
	uint64_t high = mm->mmap_base;
	struct rb_node *n;

	if (hint && PAGE_ALIGNED(hint) && range_ok(hint, len) && range_free(mm, hint, hint + len))
		return hint;
	for (n = rb_last(&mm->mm_rb); n; n = rb_prev(n)) {
		struct vm_area_struct *v = rb_entry(n, struct vm_area_struct, vm_rb);

		if (v->vm_start >= high)
			continue;
		if (v->vm_end <= high && high - v->vm_end >= len)
			return high - len;
		high = v->vm_start;
	}
	if (high >= UMM_MMAP_MIN_ADDR && high - UMM_MMAP_MIN_ADDR >= len)
		return high - len;
	/* bottom-up above mmap_base */
	high = mm->mmap_base;
	for (struct vm_area_struct *v = find_vma(mm, high); ; v = vma_next(v)) {
		uint64_t gap_end = v ? v->vm_start : UMM_TASK_SIZE;

		if (gap_end > high && gap_end - high >= len)
			return high;
		if (!v)
			return 0;
		if (v->vm_end > high)
			high = v->vm_end;
	}
}

int umm_mmap(struct umm_mm *mm, uint64_t addr, uint64_t len, int prot, int flags,
	     struct umm_file *file, uint64_t offset, uint64_t *out_addr)
{
	bool fixed = flags & (UMM_MAP_FIXED | UMM_MAP_FIXED_NOREPLACE);
	bool shared = flags & UMM_MAP_SHARED;
	struct vm_area_struct *vma;
	struct address_space *obj = NULL;
	unsigned long vm_flags;
	int err;

	if (!mm || (prot & ~PROT_KNOWN) || (flags & ~MAP_KNOWN) || !len)
		return -EINVAL;
	if (!(flags & UMM_MAP_SHARED) == !(flags & UMM_MAP_PRIVATE))
		return -EINVAL;
	if (!(flags & UMM_MAP_ANONYMOUS) == !file)
		return -EINVAL;		/* anonymous with a file, or a file mapping without */
	if (!PAGE_ALIGNED(offset) || offset + PAGE_ALIGN(len) < offset)
		return -EINVAL;
	if (PAGE_ALIGN(len) < len)
		return -ENOMEM;
	len = PAGE_ALIGN(len);
	if (fixed && (!PAGE_ALIGNED(addr) || !range_ok(addr, len)))
		return -EINVAL;

	vm_flags = prot_to_vm(prot) | VM_MAYREAD | VM_MAYWRITE | VM_MAYEXEC;
	if (shared)
		vm_flags |= VM_SHARED | VM_MAYSHARE;
	vm_flags = ksm_vma_flags(mm, shared, vm_flags);
	if (flags & UMM_MAP_LOCKED)
		vm_flags |= VM_LOCKED;
	if (file) {
		obj = file_mapping(file);
		if (obj->u != mm->u)
			return -EINVAL;
		if (shared && !file_writable(file)) {
			/* a shared mapping of a read-only file can never be written */
			if (prot & UMM_PROT_WRITE)
				return -EACCES;
			vm_flags &= ~VM_MAYWRITE;
		}
	}

	vma = vma_alloc(mm);
	if (!vma)
		return -ENOMEM;
	if (file) {
		mapping_get(obj);
	} else if (shared) {
		obj = shmem_create(mm->u);
		if (!obj) {
			free(vma);
			return -ENOMEM;
		}
	}

	pthread_rwlock_wrlock(&mm->mmap_lock);
	if (flags & UMM_MAP_FIXED_NOREPLACE) {
		if (!range_free(mm, addr, addr + len)) {
			err = -EEXIST;
			goto out_unlock;
		}
	} else if (flags & UMM_MAP_FIXED) {
		err = do_munmap(mm, addr, addr + len);
		if (err)
			goto out_unlock;
	} else {
		addr = get_unmapped_area(mm, PAGE_ALIGN(addr), len);
		if (!addr) {
			err = -ENOMEM;
			goto out_unlock;
		}
	}
	vma->vm_start = addr;
	vma->vm_end = addr + len;
	vma->vm_flags = vm_flags;
	vma->vm_mapping = obj;
	vma->vm_pgoff = file ? offset >> PAGE_SHIFT : shared ? 0 : addr >> PAGE_SHIFT;
	vma_link(mm, vma);
	mm->total_vm += len >> PAGE_SHIFT;
	if (vm_flags & VM_LOCKED)
		mm->locked_vm += len >> PAGE_SHIFT;
	vma_try_merge(mm, vma);
	pthread_rwlock_unlock(&mm->mmap_lock);

	if (flags & (UMM_MAP_POPULATE | UMM_MAP_LOCKED)) {
		pthread_rwlock_rdlock(&mm->mmap_lock);
		populate_vma_range(mm, addr, addr + len);
		pthread_rwlock_unlock(&mm->mmap_lock);
	}
	if (out_addr)
		*out_addr = addr;
	return 0;

out_unlock:
	pthread_rwlock_unlock(&mm->mmap_lock);
	if (obj)
		mapping_put(obj);
	free(vma);
	return err;
}

/* Validate a (start, len) range argument the way munmap/mprotect/madvise do. */
static int check_range(uint64_t start, uint64_t len, uint64_t *end)
{
	if (!PAGE_ALIGNED(start) || PAGE_ALIGN(len) < len)
		return -EINVAL;
	len = PAGE_ALIGN(len);
	if (start + len < start || start + len > UMM_TASK_SIZE)
		return -EINVAL;
	*end = start + len;
	return 0;
}

int umm_munmap(struct umm_mm *mm, uint64_t addr, uint64_t len)
{
	uint64_t end;
	int err;

	if (!mm || !len)
		return -EINVAL;
	err = check_range(addr, len, &end);
	if (err)
		return err;
	pthread_rwlock_wrlock(&mm->mmap_lock);
	err = do_munmap(mm, addr, end);
	pthread_rwlock_unlock(&mm->mmap_lock);
	return err;
}

/* ---- changing VMA flags over a range: mprotect, mlock, madvise ---- */

/*
 * vma_modify_flags - give [start, end) (inside @vma) @newflags: split,
 * update the PTEs if access changed, merge back.
 * Return: 0 or -ENOMEM.  Context: mmap_lock held for write.
 */
static int vma_modify_flags(struct umm_mm *mm, struct vm_area_struct *vma, uint64_t start,
			    uint64_t end, unsigned long newflags)
{
	unsigned long old = vma->vm_flags;
	uint64_t pages = (end - start) >> PAGE_SHIFT;

	if (newflags == old)
		return 0;
	vma = vma_isolate(mm, vma, start, end);
	if (!vma)
		return -ENOMEM;
	vma_rmap_lock(vma);	/* rmap walkers read vm_flags */
	vma->vm_flags = newflags;
	vma_rmap_unlock(vma);
	if ((old ^ newflags) & VM_ACCESS_FLAGS)
		change_protection(vma, start, end, newflags);
	if ((old ^ newflags) & VM_LOCKED)
		mm->locked_vm = newflags & VM_LOCKED ? mm->locked_vm + pages : mm->locked_vm - pages;
	vma_try_merge(mm, vma);
	return 0;
}

typedef unsigned long (*flags_fn)(const struct vm_area_struct *vma, unsigned long arg, int *err);

/*
 * apply_flags - call vma_modify_flags() on every VMA piece of [start, end)
 * with the flags @fn computes.  A hole gives -ENOMEM after the pieces
 * before it were changed (as Linux's mprotect); @fn may refuse a VMA by
 * setting *err.
 * Context: mmap_lock held for write.
 */
static int apply_flags(struct umm_mm *mm, uint64_t start, uint64_t end, flags_fn fn,
		       unsigned long arg)
{
	uint64_t pos = start;

	while (pos < end) {
		struct vm_area_struct *vma = find_vma(mm, pos);
		unsigned long newflags;
		uint64_t to;
		int err = 0;

		if (!vma || vma->vm_start > pos)
			return -ENOMEM;
		to = min_t(uint64_t, vma->vm_end, end);
		newflags = fn(vma, arg, &err);
		if (err)
			return err;
		err = vma_modify_flags(mm, vma, pos, to, newflags);
		if (err)
			return err;
		pos = to;
	}
	return 0;
}

static unsigned long mprotect_flags(const struct vm_area_struct *vma, unsigned long prot, int *err)
{
	unsigned long newflags = (vma->vm_flags & ~VM_ACCESS_FLAGS) | prot_to_vm((int)prot);

	if ((newflags & VM_WRITE) && !(vma->vm_flags & VM_MAYWRITE))
		*err = -EACCES;
	return newflags;
}

int umm_mprotect(struct umm_mm *mm, uint64_t addr, uint64_t len, int prot)
{
	uint64_t end;
	int err;

	if (!mm || (prot & ~PROT_KNOWN))
		return -EINVAL;
	err = check_range(addr, len, &end);
	if (err || addr == end)
		return err;
	pthread_rwlock_wrlock(&mm->mmap_lock);
	err = apply_flags(mm, addr, end, mprotect_flags, (unsigned long)prot);
	pthread_rwlock_unlock(&mm->mmap_lock);
	return err;
}

static unsigned long set_flag(const struct vm_area_struct *vma, unsigned long flag, int *err)
{
	return vma->vm_flags | flag;
}

static unsigned long clear_flag(const struct vm_area_struct *vma, unsigned long flag, int *err)
{
	return vma->vm_flags & ~flag;
}

/* mlock and munlock: all of the range must be mapped (checked first). */
static int do_mlock(struct umm_mm *mm, uint64_t addr, uint64_t len, bool lock)
{
	uint64_t end, pos;
	int err;

	if (!mm)
		return -EINVAL;
	err = check_range(addr & PAGE_MASK, len + (addr & ~PAGE_MASK), &end);
	addr &= PAGE_MASK;
	if (err || addr == end)
		return err;
	pthread_rwlock_wrlock(&mm->mmap_lock);
	for (pos = addr; pos < end;) {
		struct vm_area_struct *vma = find_vma(mm, pos);

		if (!vma || vma->vm_start > pos) {
			err = -ENOMEM;
			goto out;
		}
		pos = vma->vm_end;
	}
	err = apply_flags(mm, addr, end, lock ? set_flag : clear_flag, VM_LOCKED);
	if (!err && lock)
		populate_vma_range(mm, addr, end);
	if (!err && !lock)
		munlock_range(mm, addr, end);
out:
	pthread_rwlock_unlock(&mm->mmap_lock);
	return err;
}

int umm_mlock(struct umm_mm *mm, uint64_t addr, uint64_t len)
{
	return do_mlock(mm, addr, len, true);
}

int umm_munlock(struct umm_mm *mm, uint64_t addr, uint64_t len)
{
	return do_mlock(mm, addr, len, false);
}

/* ---- madvise ---- */

static unsigned long mergeable_flags(const struct vm_area_struct *vma, unsigned long on, int *err)
{
	/* KSM merges only private (anonymous or COWed) pages; shared areas are left alone */
	if (vma->vm_flags & (VM_SHARED | VM_MAYSHARE))
		return vma->vm_flags;
	return on ? vma->vm_flags | VM_MERGEABLE : vma->vm_flags & ~VM_MERGEABLE;
}

/*
 * walk_vma_range - call @fn for the part of every VMA inside [start, end).
 * Return: 0, or -ENOMEM if the range has a hole (the VMAs are still walked).
 * Context: mmap_lock held.
 */
int walk_vma_range(struct umm_mm *mm, uint64_t start, uint64_t end,
		   void (*fn)(struct vm_area_struct *vma, uint64_t start, uint64_t end, void *arg),
		   void *arg)
{
	bool hole = false;
	uint64_t pos;

	for (pos = start; pos < end;) {
		struct vm_area_struct *vma = find_vma(mm, pos);

		if (!vma || vma->vm_start >= end) {
			hole = true;
			break;
		}
		if (vma->vm_start > pos)
			hole = true;
		pos = max_t(uint64_t, pos, vma->vm_start);
		fn(vma, pos, min_t(uint64_t, vma->vm_end, end), arg);
		pos = vma->vm_end;
	}
	return hole ? -ENOMEM : 0;
}

static void dontneed_one(struct vm_area_struct *vma, uint64_t start, uint64_t end, void *tlb)
{
	unmap_vmas(tlb, vma, start, end);
}

/*
 * Does a VM_LOCKED VMA meet [start, end)?  DONTNEED, COLD and PAGEOUT
 * refuse mlocked memory with -EINVAL (madvise(2)); umm refuses before
 * touching any of the range.  Context: mmap_lock held.
 */
static bool range_has_locked(struct umm_mm *mm, uint64_t start, uint64_t end)
{
	for (uint64_t pos = start; pos < end;) {
		struct vm_area_struct *vma = find_vma(mm, pos);

		if (!vma || vma->vm_start >= end)
			break;
		if (vma->vm_flags & VM_LOCKED)
			return true;
		pos = vma->vm_end;
	}
	return false;
}

static int madvise_dontneed(struct umm_mm *mm, uint64_t start, uint64_t end)
{
	struct mmu_notifier_range range;
	struct mmu_gather tlb;
	int err;

	if (range_has_locked(mm, start, end))
		return -EINVAL;
	mmu_notifier_range_init(&range, UMM_MMU_NOTIFY_CLEAR, mm, start, end);
	mmu_notifier_invalidate_range_start(&range);
	tlb_gather_mmu(&tlb, mm, false);
	err = walk_vma_range(mm, start, end, dontneed_one, &tlb);
	tlb_finish_mmu(&tlb);
	mmu_notifier_invalidate_range_end(&range);
	return err;
}

/*
 * umm_mm_oom_reap - __oom_reap_task_mm: take a victim's private memory
 * away without waiting for anyone.  The mm is marked unstable first, so a
 * fault that would bring memory back fails (the kernel's SIGBUS from
 * check_stable_address_space).  Each private VMA is zapped under a
 * non-blockable UNMAP invalidation; a subscriber that cannot act without
 * sleeping answers -EAGAIN and that VMA stays for a later pass.  Shared
 * mappings are left to exit: their pages stay in the page cache anyway.
 * Context: takes mmap_lock for read, without waiting for it.
 */
int umm_mm_oom_reap(struct umm_mm *mm)
{
	struct vm_area_struct *vma;
	int ret = 0;

	if (!mm)
		return -EINVAL;
	if (pthread_rwlock_tryrdlock(&mm->mmap_lock))
		return -EAGAIN;
	if (mm->dead) {
		pthread_rwlock_unlock(&mm->mmap_lock);
		return -ESRCH;
	}
	atomic_store(&mm->unstable, true);
	for (vma = find_vma(mm, 0); vma; vma = vma_next(vma)) {
		struct mmu_notifier_range range;
		struct mmu_gather tlb;

		if (vma->vm_flags & VM_SHARED)
			continue;
		mmu_notifier_range_init(&range, UMM_MMU_NOTIFY_UNMAP, mm, vma->vm_start, vma->vm_end);
		range.r.flags &= ~UMM_MMU_NOTIFIER_RANGE_BLOCKABLE;
		if (mmu_notifier_invalidate_range_start(&range)) {
			ret = -EAGAIN;
			continue;
		}
		tlb_gather_mmu(&tlb, mm, false);
		unmap_vmas(&tlb, vma, vma->vm_start, vma->vm_end);
		tlb_finish_mmu(&tlb);
		mmu_notifier_invalidate_range_end(&range);
	}
	pthread_rwlock_unlock(&mm->mmap_lock);
	return ret;
}

/* Is all of [start, end) mapped? */
static bool range_mapped(struct umm_mm *mm, uint64_t start, uint64_t end)
{
	for (uint64_t pos = start; pos < end;) {
		struct vm_area_struct *vma = find_vma(mm, pos);

		if (!vma || vma->vm_start > pos)
			return false;
		pos = vma->vm_end;
	}
	return true;
}

int umm_madvise(struct umm_mm *mm, uint64_t addr, uint64_t len, int advice)
{
	uint64_t end;
	int err;

	if (!mm)
		return -EINVAL;
	switch (advice) {
	case UMM_MADV_NORMAL: case UMM_MADV_WILLNEED: case UMM_MADV_DONTNEED:
	case UMM_MADV_MERGEABLE: case UMM_MADV_UNMERGEABLE:
	case UMM_MADV_COLD: case UMM_MADV_PAGEOUT:
		break;
	default:
		return -EINVAL;
	}
	err = check_range(addr, len, &end);
	if (err || addr == end)
		return err;

	switch (advice) {
	case UMM_MADV_DONTNEED:
		pthread_rwlock_rdlock(&mm->mmap_lock);
		err = madvise_dontneed(mm, addr, end);
		pthread_rwlock_unlock(&mm->mmap_lock);
		return err;
	case UMM_MADV_MERGEABLE:
	case UMM_MADV_UNMERGEABLE:
		pthread_rwlock_wrlock(&mm->mmap_lock);
		/* register with ksmd, or unmerge the range first */
		err = ksm_madvise(mm, addr, end, advice);
		if (!err)
			err = apply_flags(mm, addr, end, mergeable_flags, advice == UMM_MADV_MERGEABLE);
		pthread_rwlock_unlock(&mm->mmap_lock);
		return err;
	case UMM_MADV_COLD:
	case UMM_MADV_PAGEOUT:
		pthread_rwlock_rdlock(&mm->mmap_lock);
		if (range_has_locked(mm, addr, end))
			err = -EINVAL;
		else
			err = madvise_cold_or_pageout(mm, addr, end, advice == UMM_MADV_PAGEOUT);
		pthread_rwlock_unlock(&mm->mmap_lock);
		return err;
	default:
		/* NORMAL, WILLNEED: advice only */
		pthread_rwlock_rdlock(&mm->mmap_lock);
		err = range_mapped(mm, addr, end) ? 0 : -ENOMEM;
		pthread_rwlock_unlock(&mm->mmap_lock);
		return err;
	}
}

/* ---- msync ---- */

int umm_msync(struct umm_mm *mm, uint64_t addr, uint64_t len, int flags)
{
	uint64_t end, pos;
	int err = 0;

	if (!mm || (flags & ~(UMM_MS_ASYNC | UMM_MS_SYNC | UMM_MS_INVALIDATE)) ||
	    ((flags & UMM_MS_ASYNC) && (flags & UMM_MS_SYNC)))
		return -EINVAL;
	err = check_range(addr, len, &end);
	if (err || addr == end)
		return err;
	pthread_rwlock_rdlock(&mm->mmap_lock);
	for (pos = addr; pos < end;) {
		struct vm_area_struct *vma = find_vma(mm, pos);
		uint64_t to;

		if (!vma || vma->vm_start >= end) {
			err = -ENOMEM;
			break;
		}
		if (vma->vm_start > pos)
			err = -ENOMEM;		/* a hole: go on, report it at the end */
		if ((flags & UMM_MS_INVALIDATE) && (vma->vm_flags & VM_LOCKED)) {
			err = -EBUSY;		/* as Linux: locked pages cannot be invalidated */
			break;
		}
		pos = max_t(uint64_t, pos, vma->vm_start);
		to = min_t(uint64_t, vma->vm_end, end);
		if ((vma->vm_flags & VM_SHARED) && vma->vm_mapping &&
		    filemap_write_range(vma->vm_mapping, linear_page_index(vma, pos),
					linear_page_index(vma, to - PAGE_SIZE)))
			err = -EIO;
		pos = to;
	}
	pthread_rwlock_unlock(&mm->mmap_lock);
	return err;
}

/* ---- mremap ---- */

/*
 * move_vma - move [old_addr, +old_len) of @vma to a new VMA at [new_addr,
 * +new_len): page tables move, frames stay.  Unless @dontunmap, the old
 * range is unmapped.  Return: 0 or -ENOMEM (nothing moved).
 * Context: mmap_lock held for write; [new_addr, +new_len) is free.
 */
static int move_vma(struct umm_mm *mm, struct vm_area_struct *vma, uint64_t old_addr,
		    uint64_t old_len, uint64_t new_addr, uint64_t new_len, bool dontunmap)
{
	struct vm_area_struct *new;
	int err;

	/*
	 * Break KSM pages first, as Linux does: their rmap items know them by
	 * address, and they should not turn up where other KSM pages were.
	 */
	err = ksm_madvise(mm, old_addr, old_addr + old_len, UMM_MADV_UNMERGEABLE);
	if (err)
		return err;
	vma = find_vma(mm, old_addr);
	vma = vma_isolate(mm, vma, old_addr, old_addr + old_len);
	if (!vma)
		return -ENOMEM;
	new = vma_dup(vma);
	if (!new)
		return -ENOMEM;
	new->vm_start = new_addr;
	new->vm_end = new_addr + new_len;
	if (anon_vma_clone(new, vma)) {
		vma_free(new);
		return -ENOMEM;
	}
	vma_link(mm, new);
	/* rmap walkers must not look between the old and the new place */
	vma_rmap_lock(vma);
	err = move_page_tables(vma, old_addr, new, new_addr, old_len);
	if (err)
		move_page_tables(new, new_addr, vma, old_addr, old_len);
	vma_rmap_unlock(vma);
	if (err) {
		vma_unlink(mm, new);
		vma_free(new);
		return err;
	}
	mm->total_vm += new_len >> PAGE_SHIFT;
	if (new->vm_flags & VM_LOCKED)
		mm->locked_vm += new_len >> PAGE_SHIFT;
	if (dontunmap) {
		/* the old range stays mapped, empty and unlocked (Linux) */
		if (vma->vm_flags & VM_LOCKED)
			vma_modify_flags(mm, vma, vma->vm_start, vma->vm_end, vma->vm_flags & ~VM_LOCKED);
	} else {
		do_munmap(mm, old_addr, old_addr + old_len);
	}
	new = vma_try_merge(mm, find_vma(mm, new_addr));
	if (new->vm_flags & VM_LOCKED && new_len > old_len)
		populate_vma_range(mm, new_addr + old_len, new_addr + new_len);
	return 0;
}

int umm_mremap(struct umm_mm *mm, uint64_t old_addr, uint64_t old_len, uint64_t new_len,
	       int flags, uint64_t new_addr, uint64_t *out_addr)
{
	bool maymove = flags & UMM_MREMAP_MAYMOVE, fixed = flags & UMM_MREMAP_FIXED;
	bool dontunmap = flags & UMM_MREMAP_DONTUNMAP;
	struct vm_area_struct *vma;
	uint64_t ret = old_addr;
	int err = 0;

	if (!mm || (flags & ~(UMM_MREMAP_MAYMOVE | UMM_MREMAP_FIXED | UMM_MREMAP_DONTUNMAP)))
		return -EINVAL;
	if (!PAGE_ALIGNED(old_addr) || ((fixed || dontunmap) && !maymove))
		return -EINVAL;
	if (PAGE_ALIGN(old_len) < old_len || PAGE_ALIGN(new_len) < new_len)
		return -EINVAL;
	old_len = PAGE_ALIGN(old_len);
	new_len = PAGE_ALIGN(new_len);
	if (!new_len || !old_len || (dontunmap && old_len != new_len))
		return -EINVAL;
	if (!range_ok(old_addr, old_len))
		return -EINVAL;
	if (fixed) {
		if (!PAGE_ALIGNED(new_addr) || !range_ok(new_addr, new_len))
			return -EINVAL;
		if (new_addr < old_addr + old_len && old_addr < new_addr + new_len)
			return -EINVAL;
	}

	pthread_rwlock_wrlock(&mm->mmap_lock);
	vma = find_vma(mm, old_addr);
	if (!vma || vma->vm_start > old_addr || old_addr + old_len > vma->vm_end) {
		err = -EFAULT;
		goto out;
	}
	if (fixed) {
		err = do_munmap(mm, new_addr, new_addr + new_len);
		if (err)
			goto out;
		vma = find_vma(mm, old_addr);
		if (old_len > new_len) {
			err = do_munmap(mm, old_addr + new_len, old_addr + old_len);
			if (err)
				goto out;
			old_len = new_len;
			vma = find_vma(mm, old_addr);
		}
		err = move_vma(mm, vma, old_addr, old_len, new_addr, new_len, dontunmap);
		ret = new_addr;
		goto out;
	}
	if (!dontunmap && new_len <= old_len) {
		if (new_len < old_len)
			err = do_munmap(mm, old_addr + new_len, old_addr + old_len);
		goto out;
	}
	if (!dontunmap && old_addr + old_len == vma->vm_end) {
		struct vm_area_struct *next = vma_next(vma);
		uint64_t new_end = old_addr + new_len;

		if (new_end <= UMM_TASK_SIZE && (!next || next->vm_start >= new_end)) {
			/* grow in place */
			uint64_t delta = (new_len - old_len) >> PAGE_SHIFT;

			vma_rmap_pre_update(vma);
			vma->vm_end = new_end;
			vma_rmap_post_update(vma);
			mm->total_vm += delta;
			if (vma->vm_flags & VM_LOCKED)
				mm->locked_vm += delta;
			vma = vma_try_merge(mm, vma);
			if (vma->vm_flags & VM_LOCKED)
				populate_vma_range(mm, old_addr + old_len, new_end);
			goto out;
		}
	}
	if (!maymove) {
		err = -ENOMEM;
		goto out;
	}
	new_addr = get_unmapped_area(mm, 0, new_len);
	if (!new_addr) {
		err = -ENOMEM;
		goto out;
	}
	err = move_vma(mm, vma, old_addr, old_len, new_addr, new_len, dontunmap);
	ret = new_addr;
out:
	pthread_rwlock_unlock(&mm->mmap_lock);
	if (!err && out_addr)
		*out_addr = ret;
	return err;
}

/* ---- fork ---- */

/*
 * umm_mm_fork - dup_mmap: the child gets a copy of every VMA; private
 * mappings share their frames copy-on-write (both sides write-protected),
 * shared mappings share their object and fault in.  Locks are not
 * inherited.  The parent's PTEs are flushed before the child exists, so no
 * parent store can land in a frame the child already sees.
 */
int umm_mm_fork(struct umm_mm *parent, struct umm_mm **childp)
{
	struct umm_mm *child;
	struct rb_node *n;
	int err;

	if (!parent || !childp)
		return -EINVAL;
	err = umm_mm_create(parent->u, &child);
	if (err)
		return err;
	pthread_rwlock_wrlock(&parent->mmap_lock);
	child->mmap_base = parent->mmap_base;
	err = ksm_fork(child, parent);
	if (err) {
		pthread_rwlock_unlock(&parent->mmap_lock);
		umm_mm_exit(child);
		return err;
	}
	for (n = rb_first(&parent->mm_rb); n; n = rb_next(n)) {
		struct vm_area_struct *pv = rb_entry(n, struct vm_area_struct, vm_rb);
		struct vm_area_struct *cv;

		if (pv->vm_flags & VM_DONTCOPY)
			continue;
		cv = vma_alloc(child);
		if (!cv) {
			err = -ENOMEM;
			break;
		}
		cv->vm_start = pv->vm_start;
		cv->vm_end = pv->vm_end;
		cv->vm_flags = pv->vm_flags & ~VM_LOCKED;
		cv->vm_pgoff = pv->vm_pgoff;
		cv->vm_mapping = pv->vm_mapping;
		if (cv->vm_mapping)
			mapping_get(cv->vm_mapping);
		err = anon_vma_fork(cv, pv);
		if (err) {
			vma_free(cv);
			break;
		}
		vma_link(child, cv);
		child->total_vm += vma_pages(cv);
		if (!(pv->vm_flags & VM_SHARED) && pv->anon_vma) {
			struct mmu_notifier_range range;

			/* the parent's PTEs lose write permission */
			mmu_notifier_range_init(&range, UMM_MMU_NOTIFY_PROTECTION_PAGE, parent,
						pv->vm_start, pv->vm_end);
			mmu_notifier_invalidate_range_start(&range);
			err = copy_page_range(cv, pv);
			flush_tlb_mm(parent);
			mmu_notifier_invalidate_range_end(&range);
			if (err)
				break;
		}
	}
	flush_tlb_mm(parent);
	pthread_rwlock_unlock(&parent->mmap_lock);
	if (err) {
		umm_mm_exit(child);
		return err;
	}
	*childp = child;
	return 0;
}

/* ---- reporting ---- */

void umm_mm_get_stat(struct umm_mm *mm, struct umm_mm_stat *st)
{
	if (!mm || !st)
		return;
	memset(st, 0, sizeof(*st));
	pthread_rwlock_rdlock(&mm->mmap_lock);
	st->rss_anon = (uint64_t)atomic_load(&mm->rss[MM_ANONPAGES]);
	st->rss_file = (uint64_t)atomic_load(&mm->rss[MM_FILEPAGES]);
	st->rss_shmem = (uint64_t)atomic_load(&mm->rss[MM_SHMEMPAGES]);
	st->swap_ents = (uint64_t)atomic_load(&mm->rss[MM_SWAPENTS]);
	st->total_vm = mm->total_vm;
	st->locked_vm = mm->locked_vm;
	st->map_count = mm->map_count;
	st->pgtables = (uint64_t)atomic_load(&mm->nr_ptes);
	pthread_rwlock_unlock(&mm->mmap_lock);
}

int umm_mm_vma_next(struct umm_mm *mm, uint64_t addr, struct umm_vma_info *info)
{
	struct vm_area_struct *v;
	int err = 0;

	if (!mm || !info)
		return -EINVAL;
	pthread_rwlock_rdlock(&mm->mmap_lock);
	v = find_vma(mm, addr);
	if (!v) {
		err = -ENOENT;
	} else {
		info->start = v->vm_start;
		info->end = v->vm_end;
		info->pgoff = v->vm_pgoff;
		info->prot = (v->vm_flags & VM_READ ? UMM_PROT_READ : 0) |
			     (v->vm_flags & VM_WRITE ? UMM_PROT_WRITE : 0) |
			     (v->vm_flags & VM_EXEC ? UMM_PROT_EXEC : 0);
		info->shared = v->vm_flags & VM_SHARED;
		info->anonymous = !v->vm_mapping || mapping_is_shmem(v->vm_mapping);
		info->locked = v->vm_flags & VM_LOCKED;
		info->mergeable = v->vm_flags & VM_MERGEABLE;
	}
	pthread_rwlock_unlock(&mm->mmap_lock);
	return err;
}
