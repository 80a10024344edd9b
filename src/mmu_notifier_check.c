// SPDX-License-Identifier: MIT
/*
 * mmu_notifier_check.c - the MMU-notifier protocol checker
 * (UMM_CONFIG_NOTIFIER_CHECKER).
 *
 * A secondary MMU is correct only if it follows a protocol nobody can see
 * from outside: it drops what it cached when an invalidation starts, it
 * establishes nothing while one it heard of is running (or it uses the
 * interval sequence to notice the collision), and it never touches a frame
 * after the mm stopped mapping it.  Clients tell the checker what they
 * cache (umm_mmu_notifier_check_map/_unmap and the interval variants); the
 * engine tells it what it invalidates.  The checker reports, through the
 * machine's log hook, with the addresses and the callers (resolved with
 * dladdr where the symbol is exported):
 *
 *   - a translation established inside an active invalidation that was
 *     delivered to that subscriber, outside its change_pte callback;
 *   - an interval translation established with a sequence read_retry would
 *     refuse;
 *   - a translation to a frame the mm does not map at that address (the
 *     retry protocol skipped: the PTE changed between GUP and install);
 *   - a translation still cached when the invalidation of its range ends,
 *     while the mm's PTE no longer maps that frame there;
 *   - a frame freed while a subscriber reports it mapped;
 *   - a report from a subscriber after its release, unregister or remove;
 *   - umm_might_sleep() inside a non-blockable callback;
 *   - an invalidate_range_end without its start, and (at umm_validate) a
 *     start whose end never came.
 *
 * The state is one table of translations keyed by (subscriber, address),
 * a count of translations per frame, and the list of invalidations in
 * flight with the subscribers each was delivered to, all under one mutex
 * that is a leaf in the lock order.  It is a debugging aid: it serialises
 * what it watches.
 */
#include <dlfcn.h>
#include <stdio.h>

#include "internal.h"

struct mn_xlat {			/* one translation a subscriber reports */
	struct mn_xlat *next;
	const void *sub;
	struct umm_mm *mm;
	uint64_t addr, pfn;
	const void *caller;
};

struct mn_active {			/* an invalidation between start and end */
	struct list_head link;
	const struct mmu_notifier_range *range;
	const char *origin;		/* the path that set the range up */
	const void *caller;
	const void **delivered;		/* subscribers whose start ran */
	unsigned int nr_delivered, cap;
};

struct mn_gone {			/* a subscriber after release/unregister */
	struct mn_gone *next;
	const void *sub;
	const char *why;
};

struct mn_recent {			/* an invalidation that ended, for reports */
	const struct umm_mm *mm;
	uint64_t start, end;
	int event;
	const char *origin;
};
#define NR_RECENT 64

struct mn_checker {
	struct mn_recent recent[NR_RECENT];	/* a ring of the last ends */
	unsigned int recent_next;
	pthread_mutex_t lock;
	struct mn_xlat **hash;
	uint64_t nr_buckets, nr_xlat;
	_Atomic uint32_t *frame_maps;	/* translations per pfn */
	struct list_head active;
	struct mn_gone *gone;
	_Atomic unsigned long violations;
};

/* What the thread is inside of: a non-blockable callback, a change_pte. */
static __thread struct {
	struct umm *u;
	int nonblock;
	const struct umm_mm *cpte_mm;
	uint64_t last_pte;			/* what mm_pfn_at saw, for messages */
	uint64_t cpte_addr, cpte_pfn;
} mn_ctx;

static const char *sym(const void *addr, char *buf, size_t len)
{
	Dl_info info;

	if (addr && dladdr(addr, &info) && info.dli_sname)
		snprintf(buf, len, "%s+%#lx", info.dli_sname,
			 (unsigned long)((const char *)addr - (const char *)info.dli_saddr));
	else
		snprintf(buf, len, "%p", addr);
	return buf;
}

/* "madvise_dontneed (0x...)": the path by name, the call site by address. */
static const char *origin(const char *fn, const void *caller, char *buf, size_t len)
{
	char s[64];

	if (fn)
		snprintf(buf, len, "%s (%s)", fn, sym(caller, s, sizeof(s)));
	else
		sym(caller, buf, len);
	return buf;
}

static const char *const event_name[] = {
	[UMM_MMU_NOTIFY_UNMAP] = "UNMAP", [UMM_MMU_NOTIFY_CLEAR] = "CLEAR",
	[UMM_MMU_NOTIFY_PROTECTION_VMA] = "PROTECTION_VMA",
	[UMM_MMU_NOTIFY_PROTECTION_PAGE] = "PROTECTION_PAGE",
	[UMM_MMU_NOTIFY_SOFT_DIRTY] = "SOFT_DIRTY", [UMM_MMU_NOTIFY_RELEASE] = "RELEASE",
	[UMM_MMU_NOTIFY_MIGRATE] = "MIGRATE", [UMM_MMU_NOTIFY_EXCLUSIVE] = "EXCLUSIVE",
};

static void violation(struct umm *u, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void violation(struct umm *u, const char *fmt, ...)
{
	char msg[400];
	va_list ap;

	atomic_fetch_add(&u->mn_check->violations, 1);
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	machine_log(u, UMM_LOG_ERR, "mmu-notifier checker: %s", msg);
}

int mn_check_init(struct umm *u)
{
	struct mn_checker *c = calloc(1, sizeof(*c));

	if (!c)
		return -ENOMEM;
	c->nr_buckets = 1024;
	c->hash = calloc(c->nr_buckets, sizeof(*c->hash));
	c->frame_maps = calloc(u->nr_frames, sizeof(*c->frame_maps));
	if (!c->hash || !c->frame_maps) {
		free(c->hash);
		free(c->frame_maps);
		free(c);
		return -ENOMEM;
	}
	pthread_mutex_init(&c->lock, NULL);
	INIT_LIST_HEAD(&c->active);
	u->mn_check = c;
	return 0;
}

void mn_check_exit(struct umm *u)
{
	struct mn_checker *c = u->mn_check;

	if (!c)
		return;
	for (uint64_t b = 0; b < c->nr_buckets; b++)
		for (struct mn_xlat *x = c->hash[b], *nx; x; x = nx) {
			nx = x->next;
			free(x);
		}
	for (struct mn_gone *g = c->gone, *ng; g; g = ng) {
		ng = g->next;
		free(g);
	}
	while (!list_empty(&c->active)) {
		struct mn_active *a = list_first_entry(&c->active, struct mn_active, link);

		list_del_init(&a->link);
		free(a->delivered);
		free(a);
	}
	pthread_mutex_destroy(&c->lock);
	free(c->hash);
	free(c->frame_maps);
	free(c);
	u->mn_check = NULL;
}

/* ---- the translation table ---- */

static uint64_t xlat_hash(const struct mn_checker *c, const void *sub, uint64_t addr)
{
	uint64_t h = ((uintptr_t)sub >> 4) * 0x9e3779b97f4a7c15ULL ^ (addr >> PAGE_SHIFT) * 0xc2b2ae3d27d4eb4fULL;

	return (h ^ (h >> 29)) & (c->nr_buckets - 1);
}

static struct mn_xlat **xlat_find(struct mn_checker *c, const void *sub, uint64_t addr)
{
	struct mn_xlat **p = &c->hash[xlat_hash(c, sub, addr)];

	while (*p && ((*p)->sub != sub || (*p)->addr != addr))
		p = &(*p)->next;
	return p;
}

static void xlat_grow(struct mn_checker *c)
{
	uint64_t old = c->nr_buckets;
	struct mn_xlat **oh = c->hash, **nh = calloc(old * 2, sizeof(*nh));

	if (!nh)
		return;			/* longer chains, still correct */
	c->hash = nh;
	c->nr_buckets = old * 2;
	for (uint64_t b = 0; b < old; b++)
		for (struct mn_xlat *x = oh[b], *nx; x; x = nx) {
			uint64_t h = xlat_hash(c, x->sub, x->addr);

			nx = x->next;
			x->next = nh[h];
			nh[h] = x;
		}
	free(oh);
}

static void xlat_del(struct mn_checker *c, struct mn_xlat **p)
{
	struct mn_xlat *x = *p;

	*p = x->next;
	c->nr_xlat--;
	if (x->pfn < UINT64_MAX)
		atomic_fetch_sub(&c->frame_maps[x->pfn], 1);
	free(x);
}

/* Drop @sub's translations in [start, end).  Context: c->lock held. */
static void xlat_drop_range(struct mn_checker *c, const void *sub, uint64_t start, uint64_t end)
{
	if ((end - start) >> PAGE_SHIFT <= c->nr_xlat) {
		for (uint64_t a = start & PAGE_MASK; a < end && a >= start; a += PAGE_SIZE) {
			struct mn_xlat **p = xlat_find(c, sub, a);

			if (*p)
				xlat_del(c, p);
		}
		return;
	}
	for (uint64_t b = 0; b < c->nr_buckets; b++)
		for (struct mn_xlat **p = &c->hash[b]; *p;) {
			if ((*p)->sub == sub && (*p)->addr >= start && (*p)->addr < end)
				xlat_del(c, p);
			else
				p = &(*p)->next;
		}
}

/*
 * What the mm maps at @addr now: a pfn, or UINT64_MAX.  Page tables are
 * never handed back to the host while the machine lives, so a walk racing
 * with a free reads stale but valid memory; the caller only uses the
 * answer where the protocol says the PTE is stable for it.
 */
static uint64_t mm_pfn_at(struct umm_mm *mm, uint64_t addr)
{
	struct pt_page *pgd = __atomic_load_n(&mm->pgd, __ATOMIC_ACQUIRE);
	_Atomic pte_t *ptep;
	pte_t pte;

	if (!pgd)
		return UINT64_MAX;
	ptep = pte_offset_lockless(pgd, addr);
	if (!ptep)
		return UINT64_MAX;
	pte = atomic_load_explicit(ptep, memory_order_acquire);
	mn_ctx.last_pte = pte;
	return pte_present(pte) ? pte_pfn(pte) : UINT64_MAX;
}

/* ---- subscribers that are gone ---- */

static const char *gone_why(struct mn_checker *c, const void *sub)
{
	for (struct mn_gone *g = c->gone; g; g = g->next)
		if (g->sub == sub)
			return g->why;
	return NULL;
}

/* @sub was released, unregistered or removed: it must report nothing more. */
void mn_check_sub_gone(struct umm *u, const void *sub, const char *why)
{
	struct mn_checker *c = u->mn_check;
	struct mn_gone *g;

	unsigned long kept = 0;
	char s1[96];

	pthread_mutex_lock(&c->lock);
	if (!gone_why(c, sub) && (g = malloc(sizeof(*g)))) {
		g->sub = sub;
		g->why = why;
		g->next = c->gone;
		c->gone = g;
	}
	/* it will hear of no invalidation again: it must hold nothing */
	for (uint64_t b = 0; b < c->nr_buckets; b++)
		for (struct mn_xlat **p = &c->hash[b]; *p;) {
			if ((*p)->sub != sub) {
				p = &(*p)->next;
				continue;
			}
			if (!kept++)
				snprintf(s1, sizeof(s1), "addr %#llx pfn %#llx",
					 (unsigned long long)(*p)->addr, (unsigned long long)(*p)->pfn);
			xlat_del(c, p);
		}
	pthread_mutex_unlock(&c->lock);
	if (kept)
		violation(u, "%lu translations still held after %s: sub %p, first %s", kept, why,
			  sub, s1);
}

/* @sub (re)registered: a struct may be reused after its unregister. */
void mn_check_sub_new(struct umm *u, const void *sub)
{
	struct mn_checker *c = u->mn_check;

	pthread_mutex_lock(&c->lock);
	for (struct mn_gone **p = &c->gone; *p; p = &(*p)->next)
		if ((*p)->sub == sub) {
			struct mn_gone *g = *p;

			*p = g->next;
			free(g);
			break;
		}
	pthread_mutex_unlock(&c->lock);
}

/* ---- invalidations in flight ---- */

static struct mn_active *active_find(struct mn_checker *c, const struct mmu_notifier_range *range)
{
	struct mn_active *a;

	list_for_each_entry(a, &c->active, link)
		if (a->range == range)
			return a;
	return NULL;
}

void mn_check_range_start(struct mmu_notifier_range *range, const void *caller)
{
	struct umm *u = range->r.mm->u;
	struct mn_checker *c = u->mn_check;
	struct mn_active *a = calloc(1, sizeof(*a));

	if (!a)
		return;
	a->range = range;
	a->origin = range->origin;
	a->caller = caller;
	pthread_mutex_lock(&c->lock);
	list_add_tail(&a->link, &c->active);
	pthread_mutex_unlock(&c->lock);
}

/* @sub's start (or ->invalidate) for @range returned: it may not establish now. */
void mn_check_delivered(struct mmu_notifier_range *range, const void *sub)
{
	struct mn_checker *c = range->r.mm->u->mn_check;
	struct mn_active *a;

	pthread_mutex_lock(&c->lock);
	a = active_find(c, range);
	if (a && a->nr_delivered == a->cap) {
		unsigned int cap = a->cap ? a->cap * 2 : 8;
		const void **d = realloc(a->delivered, cap * sizeof(*d));

		if (d) {
			a->delivered = d;
			a->cap = cap;
		}
	}
	if (a && a->nr_delivered < a->cap)
		a->delivered[a->nr_delivered++] = sub;
	pthread_mutex_unlock(&c->lock);
}

static void active_free(struct mn_active *a)
{
	list_del_init(&a->link);
	free(a->delivered);
	free(a);
}

/* A non-blockable start backed out: no end follows. */
void mn_check_range_abort(struct mmu_notifier_range *range)
{
	struct mn_checker *c = range->r.mm->u->mn_check;
	struct mn_active *a;

	pthread_mutex_lock(&c->lock);
	a = active_find(c, range);
	if (a)
		active_free(a);
	pthread_mutex_unlock(&c->lock);
}

/*
 * The engine is about to send end for @range.  Every subscriber it was
 * delivered to must have dropped the translations the change made stale.
 * Return: false for an end without a start (the caller sends nothing).
 */
bool mn_check_range_end(struct mmu_notifier_range *range, const void *caller)
{
	const struct umm_mmu_notifier_range *r = &range->r;
	struct umm *u = r->mm->u;
	struct mn_checker *c = u->mn_check;
	struct mn_active *a;
	char s1[96], s2[96];

	pthread_mutex_lock(&c->lock);
	a = active_find(c, range);
	if (!a) {
		pthread_mutex_unlock(&c->lock);
		violation(u, "invalidate_range_end without a start: mm %p [%#llx, %#llx) event %s, "
			  "ended by %s", (void *)r->mm, (unsigned long long)r->start,
			  (unsigned long long)r->end, event_name[r->event],
			  origin(range->origin, caller, s1, sizeof(s1)));
		return false;
	}
	for (uint64_t b = 0; b < c->nr_buckets; b++) {
		for (struct mn_xlat *x = c->hash[b]; x; x = x->next) {
			if (x->mm != r->mm || x->addr < r->start || x->addr >= r->end)
				continue;
			if (r->event != UMM_MMU_NOTIFY_RELEASE && mm_pfn_at(r->mm, x->addr) == x->pfn)
				continue;
			pthread_mutex_unlock(&c->lock);
			violation(u, "translation kept across an invalidation: sub %p mm %p addr %#llx "
				  "pfn %#llx (installed by %s); invalidation [%#llx, %#llx) event %s "
				  "started by %s", x->sub, (void *)x->mm, (unsigned long long)x->addr,
				  (unsigned long long)x->pfn, sym(x->caller, s1, sizeof(s1)),
				  (unsigned long long)r->start, (unsigned long long)r->end,
				  event_name[r->event], origin(a->origin, a->caller, s2, sizeof(s2)));
			pthread_mutex_lock(&c->lock);
			goto done;	/* one report per invalidation is enough */
		}
	}
done:
	c->recent[c->recent_next++ % NR_RECENT] = (struct mn_recent){ r->mm, r->start, r->end,
								     r->event, range->origin };
	active_free(a);
	pthread_mutex_unlock(&c->lock);
	return true;
}

/* ---- what clients report ---- */

static void check_map(struct umm_mm *mm, const void *sub, uint64_t addr, uint64_t pfn,
		      const void *caller, bool stale_seq)
{
	struct umm *u = mm->u;
	struct mn_checker *c = u->mn_check;
	struct mn_active *a;
	struct mn_xlat **p, *x;
	const char *why;
	uint64_t now;
	char s1[96], s2[96];

	addr &= PAGE_MASK;
	pthread_mutex_lock(&c->lock);
	why = gone_why(c, sub);
	if (why) {
		pthread_mutex_unlock(&c->lock);
		violation(u, "translation reported after %s: sub %p mm %p addr %#llx pfn %#llx by %s",
			  why, sub, (void *)mm, (unsigned long long)addr, (unsigned long long)pfn,
			  sym(caller, s1, sizeof(s1)));
		return;
	}
	if (stale_seq) {
		pthread_mutex_unlock(&c->lock);
		violation(u, "translation established with a stale sequence (read_retry would refuse "
			  "it): interval %p mm %p addr %#llx pfn %#llx by %s", sub, (void *)mm,
			  (unsigned long long)addr, (unsigned long long)pfn, sym(caller, s1, sizeof(s1)));
		return;
	}
	list_for_each_entry(a, &c->active, link) {
		const struct umm_mmu_notifier_range *r = &a->range->r;
		bool heard = false;

		if (r->mm != mm || addr < r->start || addr >= r->end)
			continue;
		for (unsigned int i = 0; i < a->nr_delivered; i++)
			heard |= a->delivered[i] == sub;
		if (!heard || (mn_ctx.cpte_mm == mm && mn_ctx.cpte_addr == addr && mn_ctx.cpte_pfn == pfn))
			continue;
		pthread_mutex_unlock(&c->lock);
		violation(u, "translation established inside an active invalidation: sub %p mm %p "
			  "addr %#llx pfn %#llx by %s; invalidation [%#llx, %#llx) event %s started by %s",
			  sub, (void *)mm, (unsigned long long)addr, (unsigned long long)pfn,
			  sym(caller, s1, sizeof(s1)), (unsigned long long)r->start,
			  (unsigned long long)r->end, event_name[r->event],
			  origin(a->origin, a->caller, s2, sizeof(s2)));
		return;
	}
	/*
	 * Between exit starting and ->release, a client may still install what
	 * it faulted in; release will make it drop it (checked then).
	 */
	now = __atomic_load_n(&mm->dead, __ATOMIC_ACQUIRE) ? pfn : mm_pfn_at(mm, addr);
	if (now != pfn) {
		char seen[160] = "none";

		/* the last invalidation of this address that ended, if we remember one */
		for (unsigned int i = 1; i <= NR_RECENT; i++) {
			struct mn_recent *r = &c->recent[(c->recent_next - i) % NR_RECENT];

			if (r->mm == mm && addr >= r->start && addr < r->end) {
				snprintf(seen, sizeof(seen), "[%#llx, %#llx) %s by %s, %u ends ago",
					 (unsigned long long)r->start, (unsigned long long)r->end,
					 event_name[r->event], r->origin ? r->origin : "?", i);
				break;
			}
		}
		pthread_mutex_unlock(&c->lock);
		machine_log(u, UMM_LOG_ERR, "mmu-notifier checker: last invalidation there: %s", seen);
		violation(u, "translation to a frame the mm does not map there: sub %p mm %p addr %#llx "
			  "pfn %#llx, the PTE is %#llx; by %s (retry protocol skipped?)", sub,
			  (void *)mm, (unsigned long long)addr, (unsigned long long)pfn,
			  (unsigned long long)mn_ctx.last_pte, sym(caller, s1, sizeof(s1)));
		return;
	}
	p = xlat_find(c, sub, addr);
	x = *p;
	if (x) {
		atomic_fetch_sub(&c->frame_maps[x->pfn], 1);
	} else {
		x = calloc(1, sizeof(*x));
		if (!x)
			goto out;
		x->sub = sub;
		x->addr = addr;
		*p = x;
		if (++c->nr_xlat > 2 * c->nr_buckets)
			xlat_grow(c);
	}
	x->mm = mm;
	x->pfn = pfn;
	x->caller = caller;
	atomic_fetch_add(&c->frame_maps[pfn], 1);
out:
	pthread_mutex_unlock(&c->lock);
}

void umm_mmu_notifier_check_map(struct umm_mmu_notifier *sub, uint64_t addr, uint64_t pfn)
{
	if (sub && sub->mm && sub->mm->u->mn_check && pfn < sub->mm->u->nr_frames)
		check_map(sub->mm, sub, addr, pfn, __builtin_return_address(0), false);
}

void umm_mmu_interval_check_map(struct umm_mmu_interval_notifier *sub, uint64_t addr,
				uint64_t pfn, unsigned long seq)
{
	if (sub && sub->mm && sub->mm->u->mn_check && pfn < sub->mm->u->nr_frames)
		check_map(sub->mm, sub, addr, pfn, __builtin_return_address(0),
			  umm_mmu_interval_read_retry(sub, seq));
}

static void check_unmap(struct umm_mm *mm, const void *sub, uint64_t start, uint64_t end)
{
	struct mn_checker *c = mm->u->mn_check;

	pthread_mutex_lock(&c->lock);
	xlat_drop_range(c, sub, start & PAGE_MASK, end);
	pthread_mutex_unlock(&c->lock);
}

void umm_mmu_notifier_check_unmap(struct umm_mmu_notifier *sub, uint64_t start, uint64_t end)
{
	if (sub && sub->mm && sub->mm->u->mn_check && start < end)
		check_unmap(sub->mm, sub, start, end);
}

void umm_mmu_interval_check_unmap(struct umm_mmu_interval_notifier *sub, uint64_t start,
				  uint64_t end)
{
	if (sub && sub->mm && sub->mm->u->mn_check && start < end)
		check_unmap(sub->mm, sub, start, end);
}

/* A frame goes back to the allocator: nobody may still translate to it. */
void __mn_check_frame_free(struct umm *u, uint64_t pfn)
{
	struct mn_checker *c = u->mn_check;
	char s1[96];

	if (!atomic_load_explicit(&c->frame_maps[pfn], memory_order_relaxed))
		return;
	pthread_mutex_lock(&c->lock);
	for (uint64_t b = 0; b < c->nr_buckets; b++)
		for (struct mn_xlat *x = c->hash[b]; x; x = x->next) {
			if (x->pfn != pfn)
				continue;
			pthread_mutex_unlock(&c->lock);
			violation(u, "frame freed while a subscriber maps it: pfn %#llx, sub %p mm %p "
				  "addr %#llx (installed by %s)", (unsigned long long)pfn, x->sub,
				  (void *)x->mm, (unsigned long long)x->addr, sym(x->caller, s1, sizeof(s1)));
			return;
		}
	pthread_mutex_unlock(&c->lock);
}

/* ---- the calling thread's context ---- */

void mn_check_nonblock_enter(struct umm *u)
{
	mn_ctx.u = u;
	mn_ctx.nonblock++;
}

void mn_check_nonblock_exit(void)
{
	mn_ctx.nonblock--;
}

void mn_check_change_pte(struct umm_mm *mm, uint64_t addr, uint64_t pfn)
{
	mn_ctx.cpte_mm = mm;
	mn_ctx.cpte_addr = addr & PAGE_MASK;
	mn_ctx.cpte_pfn = pfn;
}

void umm_might_sleep(void)
{
	char s1[96];

	if (mn_ctx.nonblock && mn_ctx.u && mn_ctx.u->mn_check)
		violation(mn_ctx.u, "sleeping in a non-blockable callback, at %s",
			  sym(__builtin_return_address(0), s1, sizeof(s1)));
}

unsigned long umm_mmu_notifier_checker_violations(struct umm *u)
{
	return u && u->mn_check ? atomic_load(&u->mn_check->violations) : 0;
}

/*
 * At a quiescent point no invalidation may be in flight: one that is was
 * started and never ended.  Return: 0 or -EUCLEAN with @msg filled in.
 */
int mn_check_validate(struct umm *u, char *msg, size_t len)
{
	struct mn_checker *c = u->mn_check;
	struct mn_active *a;
	char s1[96];
	int err = 0;

	if (!c)
		return 0;
	pthread_mutex_lock(&c->lock);
	list_for_each_entry(a, &c->active, link) {
		const struct umm_mmu_notifier_range *r = &a->range->r;

		atomic_fetch_add(&c->violations, 1);
		machine_log(u, UMM_LOG_ERR, "mmu-notifier checker: invalidate_range_start without an "
			    "end: mm %p [%#llx, %#llx) event %s, started by %s", (void *)r->mm,
			    (unsigned long long)r->start, (unsigned long long)r->end,
			    event_name[r->event], origin(a->origin, a->caller, s1, sizeof(s1)));
		if (!err && msg && len)
			snprintf(msg, len, "invalidation [%#llx, %#llx) started by %s never ended",
				 (unsigned long long)r->start, (unsigned long long)r->end, s1);
		err = -EUCLEAN;
	}
	pthread_mutex_unlock(&c->lock);
	return err;
}
