// SPDX-License-Identifier: MIT
/*
 * umm.c - the machine: create, destroy, figures, and the checks of
 * DESIGN.md's counting invariants (umm_validate, umm_leak_check).
 */
#include <stdio.h>

#include "internal.h"

void vm_bug(const char *file, int line, const char *expr)
{
	fprintf(stderr, "umm: BUG at %s:%d: %s\n", file, line, expr);
	abort();
}

void machine_log(struct umm *u, int level, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	if (!u->log_fn)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	u->log_fn(u->log_ctx, level, msg);
}

void umm_set_log(struct umm *u, umm_log_fn fn, void *ctx)
{
	if (!u)
		return;
	u->log_fn = fn;
	u->log_ctx = ctx;
}

void umm_config_init(struct umm_config *cfg)
{
	if (!cfg)
		return;
	memset(cfg, 0, sizeof(*cfg));
	cfg->phys_bytes = 256ULL << 20;
	cfg->nr_nodes = 1;
}

#define UMM_CONFIG_KNOWN (UMM_CONFIG_SHAREABLE | UMM_CONFIG_NOTIFIER_CHECKER | UMM_CONFIG_PREFAULT)
#define MIN_FRAMES_PER_NODE 16

int umm_create(const struct umm_config *cfg, struct umm **out)
{
	struct umm_config def;
	struct umm *u;
	int err;

	if (!out)
		return -EINVAL;
	if (!cfg) {
		umm_config_init(&def);
		cfg = &def;
	}
	if ((cfg->flags & ~UMM_CONFIG_KNOWN) || !cfg->nr_nodes || cfg->nr_nodes > 64)
		return -EINVAL;
	if ((cfg->phys_bytes >> PAGE_SHIFT) < (uint64_t)MIN_FRAMES_PER_NODE * cfg->nr_nodes ||
	    (cfg->phys_bytes >> PAGE_SHIFT) > UINT32_MAX)
		return -EINVAL;
	if (cfg->swap_bytes && !cfg->swap_path)
		return -EINVAL;		/* swap space needs a file */

	u = calloc(1, sizeof(*u));
	if (!u)
		return -ENOMEM;
	u->cfg = *cfg;
	u->cfg.phys_bytes &= PAGE_MASK;
	u->cfg.swap_path = NULL;	/* not ours to keep: swap_init uses cfg's */
	u->prefault = cfg->flags & UMM_CONFIG_PREFAULT;
	pthread_mutex_init(&u->mm_lock, NULL);
	pthread_mutex_init(&u->as_lock, NULL);
	spin_lock_init(&u->pt_lock);
	INIT_LIST_HEAD(&u->mm_list);
	INIT_LIST_HEAD(&u->as_list);
	u->machine_id = machine_register(u);
	if (u->machine_id < 0) {
		err = u->machine_id;
		goto out_free;
	}
	err = phys_init(u);
	if (err)
		goto out_unregister;
	err = lru_init(u);
	if (err)
		goto out_phys;
	if (cfg->swap_path) {
		u->cfg.swap_path = cfg->swap_path;
		err = swap_init(u);
		u->cfg.swap_path = NULL;
		if (err)
			goto out_lru;
	}
	if (cfg->flags & UMM_CONFIG_NOTIFIER_CHECKER) {
		err = mn_check_init(u);
		if (err)
			goto out_swap;
	}
	err = ksm_init(u);
	if (err) {
		mn_check_exit(u);
		goto out_swap;
	}
	*out = u;
	return 0;

out_swap:
	swap_exit(u);
out_lru:
	lru_exit(u);
out_phys:
	phys_exit(u);
out_unregister:
	machine_unregister(u);
out_free:
	pthread_mutex_destroy(&u->mm_lock);
	free(u);
	return err;
}

static void log_leak(void *ctx, uint64_t pfn, int refcount, int mapcount, unsigned long flags)
{
	struct umm *u = ctx;

	machine_log(u, UMM_LOG_ERR, "leaked frame: pfn %llu refcount %d mapcount %d flags %#lx",
		(unsigned long long)pfn, refcount, mapcount, flags);
}

void umm_destroy(struct umm *u)
{
	long leaked;

	if (!u)
		return;
	ksm_stop_threads(u);
	/* exit whatever the user left alive */
	for (;;) {
		struct umm_mm *mm = NULL;

		pthread_mutex_lock(&u->mm_lock);
		if (!list_empty(&u->mm_list))
			mm = list_first_entry(&u->mm_list, struct umm_mm, mmlist);
		pthread_mutex_unlock(&u->mm_lock);
		if (!mm)
			break;
		atomic_store(&mm->mm_users, 1);
		umm_mm_exit(mm);
	}
	kswapd_stop(u);		/* it holds isolated pages while it works */
	ksm_destroy(u);		/* slots of exited mms, rmap_items, stable nodes */
	swap_cache_drop_all(u);	/* pages no PTE will ever fault back */
	leaked = umm_leak_check(u, log_leak, u);
	if (leaked)
		machine_log(u, UMM_LOG_ERR, "%ld frames leaked at destroy", leaked);
	/* shmem objects can only outlive their mappings through a leak */
	while (!list_empty(&u->as_list)) {
		struct address_space *as = list_first_entry(&u->as_list, struct address_space, as_list);

		atomic_store(&as->refcount, 1);
		mapping_put(as);
	}
	rcu_barrier();		/* anon_vmas waiting for a grace period */
	pt_pool_exit(u);
	lru_exit(u);		/* kswapd stops */
	mn_check_exit(u);
	swap_exit(u);
	phys_exit(u);
	machine_unregister(u);
	pthread_mutex_destroy(&u->mm_lock);
	pthread_mutex_destroy(&u->as_lock);
	free(u);
}

void umm_get_stat(struct umm *u, struct umm_stat *st)
{
	if (!u || !st)
		return;
	memset(st, 0, sizeof(*st));
	st->nr_frames = u->nr_frames;
	st->nr_free = phys_nr_free(u);
	st->nr_free_resident = phys_nr_free_resident(u);
	st->nr_returned = atomic_load(&u->nr_returned);
	pthread_mutex_lock(&u->mm_lock);
	st->nr_mms = u->nr_mms;
	pthread_mutex_unlock(&u->mm_lock);
	st->nr_pgtables = (uint64_t)atomic_load(&u->nr_pgtables);
	st->nr_tlb_flushes = sum_vm_event(u, TLB_FLUSH);
	st->nr_tlb_waits = sum_vm_event(u, TLB_WAIT);
	st->pgfault = sum_vm_event(u, PGFAULT);
	st->pgfault_zero = sum_vm_event(u, PGFAULT_ZERO);
	st->pgfault_anon = sum_vm_event(u, PGFAULT_ANON);
	st->pgfault_shmem = sum_vm_event(u, PGFAULT_SHMEM);
	st->pgfault_file = sum_vm_event(u, PGFAULT_FILE);
	st->pgfault_cow = sum_vm_event(u, PGFAULT_COW);
	st->pgfault_reuse = sum_vm_event(u, PGFAULT_REUSE);
	st->pgalloc = sum_vm_event(u, PGALLOC);
	st->pgfree = sum_vm_event(u, PGFREE);
}

/* ---- invariant checks ---- */

struct census {
	struct umm *u;
	int32_t *maps;		/* PTEs mapping each frame */
	int32_t *cache;		/* page-cache and swap-cache references to each frame */
	uint32_t *swap_ptes;	/* swap PTEs naming each slot */
	char *msg;
	size_t msglen;
	int err;
};

static void census_fail(struct census *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void census_fail(struct census *c, const char *fmt, ...)
{
	va_list ap;

	if (c->err)
		return;
	c->err = -EUCLEAN;
	if (c->msg && c->msglen) {
		va_start(ap, fmt);
		vsnprintf(c->msg, c->msglen, fmt, ap);
		va_end(ap);
	}
}

/* A non-present PTE: a swap entry names a slot; nothing else may be left. */
static void census_swap_pte(struct census *c, struct umm_mm *mm, pte_t e, uint64_t addr, long *rss)
{
	if (is_swapfile_pte(e) && c->u->swap && swp_offset(e) && swp_offset(e) < c->u->swap->nr_slots) {
		c->swap_ptes[swp_offset(e)]++;
		rss[MM_SWAPENTS]++;
		return;
	}
	census_fail(c, "mm %p: %s PTE %#llx at %#llx", (void *)mm,
		    is_migration_pte(e) ? "migration entry left in a" : "bad non-present",
		    (unsigned long long)e, (unsigned long long)addr);
}

static void census_fail_msg(void *ctx, const char *msg)
{
	census_fail(ctx, "%s", msg);
}

/*
 * Walk @t (level @level, covering from @base), counting mapped frames;
 * rss[NR_MM_COUNTERS] counts KSM zero pages.
 */
static void census_walk(struct census *c, struct umm_mm *mm, struct pt_page *t, int level,
			uint64_t base, long *rss, long *tables)
{
	(*tables)++;
	for (unsigned int i = 0; i < PTRS_PER_TABLE; i++) {
		uint64_t addr = base + ((uint64_t)i << (PAGE_SHIFT + 9 * (level - 1)));
		uint64_t e = atomic_load(&t->e[i]);
		struct vm_area_struct *vma;

		if (!e)
			continue;
		if (level > 1) {
			census_walk(c, mm, (struct pt_page *)e, level - 1, addr, rss, tables);
			continue;
		}
		vma = find_vma(mm, addr);
		if (!vma || vma->vm_start > addr) {
			census_fail(c, "mm %p: PTE %#llx at %#llx outside any VMA", (void *)mm,
				    (unsigned long long)e, (unsigned long long)addr);
			continue;
		}
		if (!pte_present(e)) {
			census_swap_pte(c, mm, e, addr, rss);
			continue;
		}
		if (pte_pfn(e) >= c->u->nr_frames) {
			census_fail(c, "mm %p: PTE %#llx at %#llx: pfn out of range", (void *)mm,
				    (unsigned long long)e, (unsigned long long)addr);
			continue;
		}
		if (pte_special(e)) {
			if (pte_pfn(e) != ZERO_PFN || pte_write(e))
				census_fail(c, "mm %p: bad special PTE %#llx at %#llx", (void *)mm,
					    (unsigned long long)e, (unsigned long long)addr);
			if (is_ksm_zero_pte(e))
				rss[NR_MM_COUNTERS]++;
			continue;
		}
		if (pte_pfn(e) == ZERO_PFN) {
			census_fail(c, "mm %p: zero frame mapped as a normal page at %#llx", (void *)mm,
				    (unsigned long long)addr);
			continue;
		}
		if (pte_write(e) && !(vma->vm_flags & VM_WRITE))
			census_fail(c, "mm %p: writable PTE at %#llx in a read-only VMA", (void *)mm,
				    (unsigned long long)addr);
		c->maps[pte_pfn(e)]++;
		rss[mm_counter(pfn_to_page(c->u, pte_pfn(e)))]++;
	}
}

static void census_cache(uint64_t index, void *item, void *arg)
{
	struct census *c = arg;

	if (radix_is_swap(item)) {		/* a shmem page in swap names its slot */
		if (c->swap_ptes && c->u->swap && radix_swap_slot(item) < c->u->swap->nr_slots)
			c->swap_ptes[radix_swap_slot(item)]++;
		return;
	}
	c->cache[page_to_pfn(c->u, item)]++;
}

/* The swap cache holds one reference on each page in it. */
static void census_swap_cache(struct census *c)
{
	struct swap_info *si = c->u->swap;

	if (!si)
		return;
	for (uint64_t s = 1; s < si->nr_slots; s++) {
		struct umm_page *page = atomic_load(&si->cache[s]);

		if (page)
			c->cache[page_to_pfn(c->u, page)]++;
	}
}

/* Count the page-cache references every frame holds. */
static void census_page_cache(struct census *c)
{
	struct address_space *as;

	pthread_mutex_lock(&c->u->as_lock);
	list_for_each_entry(as, &c->u->as_list, as_list) {
		pthread_mutex_lock(&as->i_pages_lock);
		radix_for_each(&as->i_pages, census_cache, c);
		pthread_mutex_unlock(&as->i_pages_lock);
	}
	pthread_mutex_unlock(&c->u->as_lock);
}

int umm_validate(struct umm *u, unsigned int flags, char *msg, size_t msglen)
{
	struct census c = { .u = u, .msg = msg, .msglen = msglen };
	uint8_t *is_free;
	struct umm_mm *mm;
	uint64_t nr_free = 0;
	long ksm_zero = 0;

	if (!u || (flags & ~(UMM_VALIDATE_EXACT | UMM_VALIDATE_RMAP)))
		return -EINVAL;
	if (msg && msglen)
		msg[0] = 0;
	c.maps = calloc(u->nr_frames, sizeof(int32_t));
	c.cache = calloc(u->nr_frames, sizeof(int32_t));
	c.swap_ptes = calloc(u->swap ? u->swap->nr_slots : 1, sizeof(uint32_t));
	is_free = calloc(u->nr_frames, 1);
	if (!c.maps || !c.cache || !c.swap_ptes || !is_free) {
		free(c.maps);
		free(c.cache);
		free(c.swap_ptes);
		free(is_free);
		return -ENOMEM;
	}

	/* kswapd holds pages isolated while it works: let it finish first */
	pthread_rwlock_wrlock(&u->reclaim_lock);
	ksm_census(u, census_fail_msg, &c);
	pthread_mutex_lock(&u->mm_lock);
	list_for_each_entry(mm, &u->mm_list, mmlist) {
		long rss[NR_MM_COUNTERS + 1] = { 0 }, tables = 0;
		uint64_t total = 0;

		pthread_rwlock_rdlock(&mm->mmap_lock);
		for (struct rb_node *n = rb_first(&mm->mm_rb); n; n = rb_next(n)) {
			struct vm_area_struct *v = rb_entry(n, struct vm_area_struct, vm_rb);
			struct rb_node *nx = rb_next(n);

			total += vma_pages(v);
			if (v->vm_start >= v->vm_end || !PAGE_ALIGNED(v->vm_start | v->vm_end))
				census_fail(&c, "mm %p: bad VMA [%#llx, %#llx)", (void *)mm,
					    (unsigned long long)v->vm_start, (unsigned long long)v->vm_end);
			if (nx && rb_entry(nx, struct vm_area_struct, vm_rb)->vm_start < v->vm_end)
				census_fail(&c, "mm %p: VMAs overlap at %#llx", (void *)mm,
					    (unsigned long long)v->vm_start);
		}
		if (total != mm->total_vm)
			census_fail(&c, "mm %p: total_vm %llu, VMAs cover %llu pages", (void *)mm,
				    (unsigned long long)mm->total_vm, (unsigned long long)total);
		census_walk(&c, mm, mm->pgd, 4, 0, rss, &tables);
		for (int i = 0; i < NR_MM_COUNTERS; i++)
			if (rss[i] != atomic_load(&mm->rss[i]))
				census_fail(&c, "mm %p: rss counter %d is %ld, page tables hold %ld",
					    (void *)mm, i, atomic_load(&mm->rss[i]), rss[i]);
		if (rss[NR_MM_COUNTERS] != atomic_load(&mm->ksm_zero_pages))
			census_fail(&c, "mm %p: ksm_zero_pages %ld, page tables hold %ld", (void *)mm,
				    atomic_load(&mm->ksm_zero_pages), rss[NR_MM_COUNTERS]);
		ksm_zero += rss[NR_MM_COUNTERS];
		if (tables != atomic_load(&mm->nr_ptes))
			census_fail(&c, "mm %p: %ld page-table pages counted, %ld reachable", (void *)mm,
				    atomic_load(&mm->nr_ptes), tables);
		pthread_rwlock_unlock(&mm->mmap_lock);
	}
	census_page_cache(&c);
	census_swap_cache(&c);
	pthread_mutex_unlock(&u->mm_lock);
	if (ksm_zero != atomic_load(&u->ksm_zero_pages))
		census_fail(&c, "ksm_zero_pages %ld, page tables hold %ld",
			    atomic_load(&u->ksm_zero_pages), ksm_zero);

	phys_mark_free_frames(u, is_free);
	for (uint64_t pfn = 1; pfn < u->nr_frames; pfn++) {
		struct umm_page *p = pfn_to_page(u, pfn);
		int ref = page_count(p), maps = page_mapcount(p);
		int want = c.maps[pfn] + c.cache[pfn];

		if (is_free[pfn]) {
			nr_free++;
			if (is_free[pfn] > 1 || ref || maps || !TestPageFlag(p, PG_buddy))
				census_fail(&c, "pfn %llu: free (%d times) but refcount %d mapcount %d",
					    (unsigned long long)pfn, is_free[pfn], ref, maps);
			continue;
		}
		if (maps != c.maps[pfn])
			census_fail(&c, "pfn %llu: mapcount %d, but %d PTEs map it",
				    (unsigned long long)pfn, maps, c.maps[pfn]);
		if ((flags & UMM_VALIDATE_RMAP) && c.maps[pfn]) {
			int found = page_rmap_count(p);

			if (found != c.maps[pfn])
				census_fail(&c, "pfn %llu (%s, index %llu): rmap_walk finds %d mappings, "
					    "page tables hold %d", (unsigned long long)pfn,
					    PageKsm(p) ? "ksm" : PageAnon(p) ? "anon" : "file",
					    (unsigned long long)p->index,
					    found, c.maps[pfn]);
		}
		if (ref < want || (ref > want && (flags & UMM_VALIDATE_EXACT)) || (!ref && !want))
			census_fail(&c, "pfn %llu: refcount %d, expected %s%d (%d PTEs, %d cache)",
				    (unsigned long long)pfn, ref, flags & UMM_VALIDATE_EXACT ? "" : ">= ",
				    want, c.maps[pfn], c.cache[pfn]);
	}
	if (nr_free != phys_nr_free(u))
		census_fail(&c, "free lists hold %llu frames, counters say %llu",
			    (unsigned long long)nr_free, (unsigned long long)phys_nr_free(u));
	if (!c.err && u->swap)
		c.err = swap_census_check(u, c.swap_ptes, msg, msglen);
	if (!c.err)
		c.err = lru_census_check(u, msg, msglen);
	/* kswapd's invalidations too: they must not look unpaired */
	if (!c.err)
		c.err = mn_check_validate(u, msg, msglen);
	pthread_rwlock_unlock(&u->reclaim_lock);
	free(c.maps);
	free(c.cache);
	free(c.swap_ptes);
	free(is_free);
	return c.err;
}

long umm_leak_check(struct umm *u, umm_leak_fn cb, void *ctx)
{
	uint8_t *is_free;
	int32_t *held;
	struct census c = { .u = u };
	long leaked = 0;
	bool mms;

	if (!u)
		return -EINVAL;
	is_free = calloc(u->nr_frames, 1);
	held = calloc(u->nr_frames, sizeof(int32_t));
	if (!is_free || !held) {
		free(is_free);
		free(held);
		return -ENOMEM;
	}
	c.cache = held;
	pthread_rwlock_wrlock(&u->reclaim_lock);	/* no batch isolated by kswapd */
	pthread_mutex_lock(&u->mm_lock);
	mms = !list_empty(&u->mm_list);
	pthread_mutex_unlock(&u->mm_lock);
	census_page_cache(&c);
	census_swap_cache(&c);
	phys_mark_free_frames(u, is_free);
	for (uint64_t pfn = 1; pfn < u->nr_frames; pfn++) {
		struct umm_page *p = pfn_to_page(u, pfn);

		if (is_free[pfn] || held[pfn] || (mms && page_mapcount(p) > 0))
			continue;
		leaked++;
		if (cb)
			cb(ctx, pfn, page_count(p), page_mapcount(p), atomic_load(&p->flags));
	}
	pthread_rwlock_unlock(&u->reclaim_lock);
	free(is_free);
	free(held);
	return leaked;
}
