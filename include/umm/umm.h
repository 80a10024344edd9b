/* SPDX-License-Identifier: MIT */
/*
 * umm.h - the public API of umm, the user-mode twin of Linux's mm/.
 *
 * One struct umm is one machine: simulated physical memory (frames in a
 * memfd arena), optional swap, the KSM daemon and reclaim.  Address spaces
 * (struct umm_mm) live inside it; threads "load and store" through
 * umm_read()/umm_write(); secondary MMUs reach frames with
 * umm_get_user_page() and keep coherent through MMU notifiers.
 *
 * Conventions: every function that can fail returns 0 (or a count) on
 * success and a negative errno on failure.  Nothing prints, exits or aborts
 * on bad input.  All functions are thread-safe unless stated otherwise.
 */
#ifndef UMM_UMM_H
#define UMM_UMM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#define UMM_PAGE_SHIFT 12
#define UMM_PAGE_SIZE 4096

struct umm;
struct umm_mm;
struct umm_file;
struct umm_page;

/* ---- the machine ---- */

/* umm_config.flags */
#define UMM_CONFIG_SHAREABLE		0x1 /* arena may be passed to another process */
#define UMM_CONFIG_NOTIFIER_CHECKER	0x2 /* run the MMU-notifier protocol checker */
#define UMM_CONFIG_PREFAULT		0x4 /* populate the whole arena at create and keep it
					     * resident (like a VM with preallocated RAM) */

struct umm_config {
	size_t phys_bytes;        /* simulated physical memory (default 256 MiB) */
	unsigned int nr_nodes;    /* memory nodes (default 1) */
	const char *swap_path;    /* swap file to create/use; NULL: no swap */
	size_t swap_bytes;
	unsigned int flags;       /* UMM_CONFIG_* */
};

/* Fill @cfg with the defaults. */
void umm_config_init(struct umm_config *cfg);

/*
 * Create a machine.  Return: 0 and *@out, -EINVAL for a bad config (fewer
 * than 16 frames per node, more than 64 nodes, unknown flags), -ENOMEM when
 * the host cannot provide the arena.
 */
int  umm_create(const struct umm_config *cfg, struct umm **out);

/*
 * Tear the machine down: exits any address space still alive, stops the
 * machine's threads, checks that every frame came back (leaks are reported
 * through the log hook, see umm_set_log()) and frees everything.
 * Context: no other thread may use @u or anything inside it any more.
 */
void umm_destroy(struct umm *u);

/* Diagnostics: the library never prints; it reports through this hook. */
enum umm_log_level { UMM_LOG_ERR = 3, UMM_LOG_WARN = 4, UMM_LOG_INFO = 6 };
typedef void (*umm_log_fn)(void *ctx, int level, const char *msg);
void umm_set_log(struct umm *u, umm_log_fn fn, void *ctx);

/* Machine-wide figures (a snapshot; counters move while threads run). */
struct umm_stat {
	uint64_t nr_frames;          /* frames in the arena, zero frame included */
	uint64_t nr_free;            /* free frames (resident or returned to the host) */
	uint64_t nr_free_resident;   /* free frames whose host memory is still present */
	uint64_t nr_returned;        /* frames whose host memory was handed back so far */
	uint64_t nr_mms;             /* live address spaces */
	uint64_t nr_pgtables;        /* page-table pages in use */
	uint64_t nr_tlb_flushes;     /* TLB-shootdown equivalents performed */
	uint64_t nr_tlb_waits;       /* ... of which had to wait for a CPU access */
	/* vm events since create, as /proc/vmstat counts them */
	uint64_t pgfault;            /* faults handled (CPU accesses and GUP) */
	uint64_t pgfault_zero;       /* read faults that mapped the zero frame */
	uint64_t pgfault_anon;       /* write faults that allocated an anonymous frame */
	uint64_t pgfault_shmem;      /* faults on shared anonymous memory */
	uint64_t pgfault_file;       /* faults that mapped a file's page-cache page */
	uint64_t pgfault_cow;        /* copy-on-write copies (zero frame included) */
	uint64_t pgfault_reuse;      /* write faults that reused an exclusive frame */
	uint64_t pgalloc, pgfree;    /* frames allocated / freed */
};
void umm_get_stat(struct umm *u, struct umm_stat *st);

/*
 * Walk every address space and every frame and check DESIGN.md's counting
 * invariants: each frame's mapcount equals the PTEs that map it, refcount >=
 * mapcount + 1 (+1 for the page cache), RSS counters equal what the page
 * tables hold, every frame is free or accounted for.  With
 * UMM_VALIDATE_EXACT, a frame may not hold references beyond those (no GUP
 * reference outstanding).  The first @msglen - 1 bytes of a description of
 * the first violation go to @msg.
 * Context: a quiescent machine (no concurrent faults or changes); takes
 * every mm's mmap_lock for read.
 * Return: 0 if all holds, -EUCLEAN on a violation.
 */
#define UMM_VALIDATE_EXACT 0x1
#define UMM_VALIDATE_RMAP  0x2	/* also: rmap_walk of every mapped frame finds
				 * exactly the PTEs a scan of every page table finds */
int umm_validate(struct umm *u, unsigned int flags, char *msg, size_t msglen);

/*
 * Count frames that are neither free nor reachable from an address space,
 * the page cache or a held reference.  Meaningful when every mm has exited:
 * then any frame not free is a leak, and @cb (if not NULL) is called once
 * per leaked frame.  Return: the number of leaked frames.
 */
typedef void (*umm_leak_fn)(void *ctx, uint64_t pfn, int refcount, int mapcount,
			    unsigned long flags);
long umm_leak_check(struct umm *u, umm_leak_fn cb, void *ctx);

/* ---- address spaces ---- */

int  umm_mm_create(struct umm *u, struct umm_mm **out);
int  umm_mm_fork(struct umm_mm *parent, struct umm_mm **child);  /* COW, anon_vma_fork */
void umm_mm_exit(struct umm_mm *mm);                     /* exit_mmap; ->release; frees */
/*
 * The OOM reaper's pass over a victim: unmap every private (anonymous or
 * COW) range without sleeping.  MMU notifiers see non-blockable UNMAP
 * invalidations; a range whose subscriber answers -EAGAIN is left mapped.
 * Return: 0 when everything was reaped, -EAGAIN if a range was left (try
 * again later, as the kernel's reaper does), -ESRCH if @mm has exited.
 */
int  umm_mm_oom_reap(struct umm_mm *mm);

#define UMM_PROT_NONE	0x0
#define UMM_PROT_READ	0x1
#define UMM_PROT_WRITE	0x2
#define UMM_PROT_EXEC	0x4

#define UMM_MAP_SHARED		0x01
#define UMM_MAP_PRIVATE		0x02
#define UMM_MAP_FIXED		0x10
#define UMM_MAP_ANONYMOUS	0x20
#define UMM_MAP_POPULATE	0x8000
#define UMM_MAP_LOCKED		0x2000
#define UMM_MAP_FIXED_NOREPLACE	0x100000

/* Lowest and highest+1 addresses umm_mmap() hands out or accepts. */
#define UMM_MMAP_MIN_ADDR	0x10000ULL
#define UMM_TASK_SIZE		0x00007ffffffff000ULL

/*
 * Map [addr, addr + len).  addr 0 without FIXED: the engine picks.  A
 * non-FIXED hint is used if the range is free.  Return: 0 and *@out_addr;
 * -EINVAL for bad length, alignment, flags or prot; -EEXIST for
 * FIXED_NOREPLACE over a mapping; -ENOMEM when no room is left; -EACCES for
 * a shared writable mapping of a read-only file.
 */
int umm_mmap(struct umm_mm *mm, uint64_t addr, uint64_t len, int prot, int flags,
	     struct umm_file *file, uint64_t offset, uint64_t *out_addr);
int umm_munmap(struct umm_mm *mm, uint64_t addr, uint64_t len);
/* Return: -ENOMEM if part of the range is not mapped (as Linux). */
int umm_mprotect(struct umm_mm *mm, uint64_t addr, uint64_t len, int prot);

#define UMM_MREMAP_MAYMOVE	1
#define UMM_MREMAP_FIXED	2
#define UMM_MREMAP_DONTUNMAP	4
int umm_mremap(struct umm_mm *mm, uint64_t old_addr, uint64_t old_len, uint64_t new_len,
	       int flags /* UMM_MREMAP_{MAYMOVE,FIXED,DONTUNMAP} */, uint64_t new_addr,
	       uint64_t *out_addr);

#define UMM_MADV_NORMAL		0
#define UMM_MADV_WILLNEED	3
#define UMM_MADV_DONTNEED	4
#define UMM_MADV_MERGEABLE	12
#define UMM_MADV_UNMERGEABLE	13
#define UMM_MADV_COLD		20
#define UMM_MADV_PAGEOUT	21
/*
 * madvise(2).  Return: 0; -EINVAL for bad arguments or unknown advice, and
 * for DONTNEED, COLD or PAGEOUT over an mlocked mapping (nothing of the
 * range is touched); -ENOMEM if part of the range is not mapped.
 */
int umm_madvise(struct umm_mm *mm, uint64_t addr, uint64_t len, int advice);

/* mlock(2)/munlock(2): populate and mark VM_LOCKED; -ENOMEM over holes. */
int umm_mlock(struct umm_mm *mm, uint64_t addr, uint64_t len);
int umm_munlock(struct umm_mm *mm, uint64_t addr, uint64_t len);

/* Per-address-space figures, as /proc/PID/status has them (in pages). */
struct umm_mm_stat {
	uint64_t rss_anon, rss_file, rss_shmem, swap_ents;
	uint64_t total_vm, locked_vm, map_count, pgtables;
};
void umm_mm_get_stat(struct umm_mm *mm, struct umm_mm_stat *st);

/* One VMA as /proc/PID/maps shows it; for iteration with umm_mm_vma_next(). */
struct umm_vma_info {
	uint64_t start, end, pgoff;
	int prot;                   /* UMM_PROT_* */
	bool shared, anonymous, locked, mergeable;
};
/* The first VMA that ends above @addr.  Return: 0, or -ENOENT past the last. */
int umm_mm_vma_next(struct umm_mm *mm, uint64_t addr, struct umm_vma_info *info);

/* ---- files ---- */

/*
 * Open a real host file for mapping.  @open_flags: O_RDONLY or O_RDWR, plus
 * O_CREAT (mode 0644) and O_TRUNC (with O_RDWR).  The file's page cache is
 * shared by every mapping and every open of it in the machine.  Return: 0
 * and *@out (one reference); the negative errno of open(2); -EINVAL for
 * other flags; -EBUSY, with the file untouched, for O_TRUNC of a file the
 * machine already has open.
 */
int  umm_file_open(struct umm *u, const char *path, int open_flags, struct umm_file **out);
/* Drop the caller's reference; the last one writes back dirty pages. */
void umm_file_put(struct umm_file *f);
/* Size in bytes of the host file (as fstat), or a negative errno. */
int64_t umm_file_size(struct umm_file *f);

#define UMM_MS_ASYNC		1
#define UMM_MS_INVALIDATE	2
#define UMM_MS_SYNC		4
/*
 * msync(2): write back the dirty pages of shared file mappings in range,
 * after write-protecting and cleaning every PTE that maps them
 * (page_mkclean), so later stores fault and dirty them again.
 * Return: 0; -EINVAL (bad flags, unaligned), -ENOMEM (hole), -EBUSY
 * (MS_INVALIDATE over an mlocked mapping, as Linux), -EIO.
 */
int  umm_msync(struct umm_mm *mm, uint64_t addr, uint64_t len, int flags);

/* ---- reverse-map operations on the page mapped at an address ---- */

/*
 * page_referenced: test and clear the young bit in every PTE that maps the
 * page (found through the rmap), as reclaim's aging does.
 * Return: how many mappings had referenced it; -EFAULT if nothing is mapped
 * there (or the zero frame is).
 */
int umm_page_referenced(struct umm_mm *mm, uint64_t addr);
/* page_mkclean: write-protect and clean every shared mapping's PTE.
 * Return: how many PTEs were dirty or writable; -EFAULT as above. */
int umm_page_mkclean(struct umm_mm *mm, uint64_t addr);
/* try_to_unmap: unmap the page from every address space mapping it.
 * Return: 0 if it is no longer mapped; -EBUSY if it cannot be (an anonymous
 * page with no swap to hold it); -EFAULT as above. */
int umm_try_to_unmap(struct umm_mm *mm, uint64_t addr);
/* Return: how many PTEs rmap_walk finds mapping the page at @addr. */
int umm_page_rmap_count(struct umm_mm *mm, uint64_t addr);

/* ---- CPU accesses ---- */

/*
 * Load/store through @mm's page tables, faulting as needed, across page and
 * VMA boundaries.  Once a PTE change (write-protect, unmap, replace,
 * migrate) has returned, no access can still go through the old PTE.
 * Return: @len, or the bytes copied before the first inaccessible byte
 * (like process_vm_readv()), or a negative errno if the first byte cannot
 * be reached: -EFAULT (no mapping or no permission), -ENOMEM (no frame
 * left), -EIO (swap-in failed).
 */
ssize_t umm_read(struct umm_mm *mm, uint64_t addr, void *buf, size_t len);
ssize_t umm_write(struct umm_mm *mm, uint64_t addr, const void *buf, size_t len);

#define UMM_GUP_WRITE 0x1
/*
 * get_user_pages for one page: fault it in (breaking COW for a write) and
 * return it with a reference.  No long-term pin: a secondary MMU must drop
 * what it cached when an MMU notifier says so.
 */
int   umm_get_user_page(struct umm_mm *mm, uint64_t addr, unsigned int gup_flags,
			struct umm_page **page);
void *umm_page_address(struct umm_page *page);          /* direct pointer to the frame */
uint64_t umm_page_pfn(const struct umm_page *page);
void  umm_put_page(struct umm_page *page);

/*
 * The arena's memfd, for another process to map frames directly (remote
 * attach): frame @pfn is at offset pfn * UMM_PAGE_SIZE.  Owned by @u: do
 * not close it; pass it over a Unix socket (SCM_RIGHTS).  *@bytes gets the
 * arena's size.  Return: the fd, or -EPERM unless the machine was created
 * with UMM_CONFIG_SHAREABLE.
 */
int umm_arena_fd(struct umm *u, uint64_t *bytes);

/* pagemap + kpageflags in one */
#define UMM_PI_PRESENT	0x001
#define UMM_PI_SWAPPED	0x002
#define UMM_PI_ANON	0x004
#define UMM_PI_KSM	0x008
#define UMM_PI_ZERO	0x010
#define UMM_PI_DIRTY	0x020
#define UMM_PI_YOUNG	0x040
#define UMM_PI_WRITE	0x080
#define UMM_PI_MLOCKED	0x100
struct umm_pageinfo { uint64_t pfn; unsigned int flags; int mapcount; int refcount; };
/*
 * SWAPPED: the PTE holds a swap (or migration) entry, or - shared anonymous
 * memory - the PTE is empty and the object keeps the page in swap.
 * Return: 0 (flags 0 if nothing is mapped there yet), -EFAULT without a VMA.
 */
int umm_pagemap(struct umm_mm *mm, uint64_t addr, struct umm_pageinfo *info);

#ifdef __cplusplus
}
#endif

#include <umm/mmu_notifier.h>
#include <umm/ksm.h>
#include <umm/vmscan.h>

#endif /* UMM_UMM_H */
