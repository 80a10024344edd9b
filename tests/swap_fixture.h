/* SPDX-License-Identifier: MIT */
/*
 * swap_fixture.h - what the reclaim, swap and migration tests share
 * (t_swap.c, t_migrate.c, t_reclaim_stress.c), included after tap.h and
 * fixture.h: machines with a swap file in the test's temporary directory,
 * a probe of which parts of the engine exist yet, TAP skips for the parts
 * that do not, and the counters these tests read.
 *
 * Validation: umm_validate() wants a quiescent machine, and kswapd is the
 * machine's own thread, so the tests validate through settled_valid(),
 * which first waits for kswapd to go idle.  t_swap's
 * test_validate_kswapd_busy checks that umm_validate() holds while kswapd
 * works, which is the engine's business.
 *
 * Skips: the engine grows subsystem by subsystem, and an entry point whose
 * subsystem is not there returns -ENOSYS (src/notyet.c).  main() probes
 * once (probe_engine()); a test needing a missing part says so with
 * NEED(cap) and is reported "ok N - name # SKIP ...".  Only the probe may
 * see -ENOSYS: inside a test that did not skip, -ENOSYS is a failure.
 */
#ifndef UMM_TESTS_SWAP_FIXTURE_H
#define UMM_TESTS_SWAP_FIXTURE_H

#include <pthread.h>
#include <sys/stat.h>

#include "fixture.h"
#include "settle.h"

/* ---- which parts of the engine exist ---- */

struct engine_caps {
	bool swap;		/* umm_create() takes a swap_path */
	bool reclaim;		/* umm_reclaim() */
	bool move;		/* umm_move_pages() */
	bool compact;		/* umm_compact() */
	bool inject;		/* umm_fault_inject() */
	bool ksm;		/* umm_ksm_scan() */
};

static struct engine_caps caps;
static const char *skip_reason;

/* Skip the running test unless @cap is there. */
#define NEED(cap) do { \
	if (!caps.cap) { \
		skip_reason = "engine lacks " #cap " (-ENOSYS)"; \
		return true; \
	} } while (0)

/* RUN_TEST that reports a test which called NEED() for a missing part as skipped. */
#define RUN_TEST_CAPS(fn) do { \
	skip_reason = NULL; \
	bool _ok = fn(); \
	tap_n++; \
	if (!_ok) tap_failed++; \
	printf("%s %d - %s%s%s\n", _ok ? "ok" : "not ok", tap_n, #fn, \
	       skip_reason ? " # SKIP " : "", skip_reason ? skip_reason : ""); \
	fflush(stdout); \
} while (0)

/* ---- machines with swap ---- */

/* The library's messages (the protocol checker's reports among them), as TAP comments. */
static inline void log_diag(void *ctx, int level, const char *msg)
{
	(void)ctx;
	TAP_DIAG("umm log %d: %s", level, msg);
}

/*
 * A machine of @phys bytes in @nodes nodes with a swap file of @swap bytes
 * at tmp_path("swap") (none if @swap is 0) and UMM_CONFIG_@flags: 0 or
 * -errno from umm_create().  tmp_init() must have run.
 */
static inline int make_swap_machine(size_t phys, unsigned int nodes, size_t swap,
				    unsigned int flags, struct umm **u)
{
	struct umm_config cfg;

	umm_config_init(&cfg);
	cfg.phys_bytes = phys;
	cfg.nr_nodes = nodes;
	cfg.flags = flags;
	if (swap) {
		cfg.swap_path = tmp_path("swap");
		cfg.swap_bytes = swap;
	}
	*u = NULL;
	int r = umm_create(&cfg, u);
	if (r == 0)
		umm_set_log(*u, log_diag, NULL);
	return r;
}

static inline struct umm_vmscan_stat vstat(struct umm *u)
{
	struct umm_vmscan_stat st;

	memset(&st, 0xff, sizeof(st));
	umm_get_vmscan_stat(u, &st);
	return st;
}

/* Has every swap slot come back? (Printed when not.) */
static inline bool swap_all_free(struct umm *u)
{
	struct umm_vmscan_stat vs = vstat(u);

	if (vs.swap_free != vs.swap_slots)
		TAP_DIAG("swap_free %" PRIu64 " of %" PRIu64 " slots", vs.swap_free,
			 vs.swap_slots);
	return vs.swap_free == vs.swap_slots;
}

/* machine_valid() once the machine has settled. */
static inline bool settled_valid(struct umm *u)
{
	machine_settle(u);
	return machine_valid(u);
}

/* fix_fini() once the machine has settled. */
static inline bool settled_fini(struct fix *f)
{
	machine_settle(f->u);
	return fix_fini(f);
}

/* A machine of @phys bytes (one node) with @swap bytes of swap, and an mm. */
static inline bool swap_fix_init(struct fix *f, size_t phys, size_t swap)
{
	f->mm = NULL;
	ASSERT_OK(make_swap_machine(phys, 1, swap, UMM_CONFIG_NOTIFIER_CHECKER, &f->u));
	ASSERT_OK(umm_mm_create(f->u, &f->mm));
	return true;
}

/* fix_fini(), and every swap slot back first. */
static inline bool swap_fix_fini(struct fix *f)
{
	ASSERT_TRUE(settled_valid(f->u));
	if (f->mm)
		umm_mm_exit(f->mm);
	f->mm = NULL;
	ASSERT_TRUE(swap_all_free(f->u));
	ASSERT_EQ(umm_mmu_notifier_checker_violations(f->u), 0);
	return settled_fini(f);
}

/* ---- a secondary MMU ---- */

/*
 * A minimal secondary MMU over @n pages at @base of one mm: smmu_fill()
 * caches each page's translation (GUP, then reports it to the protocol
 * checker), an invalidation drops the cached ones in its range (and
 * reports that), and it counts what it was told.  With @young set, its
 * clear_flush_young/clear_young/test_young say "accessed" for every page
 * in [young_start, young_end): a device that keeps using them.
 */
#define SMMU_PAGES	64

struct smmu {
	struct umm_mmu_notifier mn;
	pthread_mutex_t lock;
	uint64_t base;
	unsigned int n;
	uint64_t pfn[SMMU_PAGES];		/* 0: nothing cached */
	unsigned long starts, ends, young_calls;
	unsigned long flush_young_calls, clear_young_calls;	/* of young_calls */
	unsigned long by_event[UMM_MMU_NOTIFY_EXCLUSIVE + 1];
	uint64_t young_start, young_end;
};

static inline int smmu_young(struct smmu *s, uint64_t start, uint64_t end)
{
	int young;

	pthread_mutex_lock(&s->lock);
	s->young_calls++;
	young = start < s->young_end && end > s->young_start;
	pthread_mutex_unlock(&s->lock);
	return young;
}

static inline int smmu_clear_flush_young(struct umm_mmu_notifier *mn, struct umm_mm *mm,
					 uint64_t start, uint64_t end)
{
	struct smmu *s = (struct smmu *)mn;

	(void)mm;
	__atomic_fetch_add(&s->flush_young_calls, 1, __ATOMIC_RELAXED);
	return smmu_young(s, start, end);
}

static inline int smmu_clear_young(struct umm_mmu_notifier *mn, struct umm_mm *mm,
				   uint64_t start, uint64_t end)
{
	struct smmu *s = (struct smmu *)mn;

	(void)mm;
	__atomic_fetch_add(&s->clear_young_calls, 1, __ATOMIC_RELAXED);
	return smmu_young(s, start, end);
}

static inline int smmu_test_young(struct umm_mmu_notifier *mn, struct umm_mm *mm,
				  uint64_t addr)
{
	(void)mm;
	return smmu_young((struct smmu *)mn, addr, addr + PS);
}

static inline int smmu_start(struct umm_mmu_notifier *mn, const struct umm_mmu_notifier_range *r)
{
	struct smmu *s = (struct smmu *)mn;

	pthread_mutex_lock(&s->lock);
	s->starts++;
	if (r->event <= UMM_MMU_NOTIFY_EXCLUSIVE)
		s->by_event[r->event]++;
	for (unsigned int i = 0; i < s->n; i++) {
		uint64_t a = s->base + PG(i);

		if (s->pfn[i] && a >= r->start && a < r->end) {
			s->pfn[i] = 0;
			umm_mmu_notifier_check_unmap(mn, a, a + PS);
		}
	}
	pthread_mutex_unlock(&s->lock);
	return 0;
}

static inline void smmu_end(struct umm_mmu_notifier *mn, const struct umm_mmu_notifier_range *r)
{
	struct smmu *s = (struct smmu *)mn;

	(void)r;
	pthread_mutex_lock(&s->lock);
	s->ends++;
	pthread_mutex_unlock(&s->lock);
}

static const struct umm_mmu_notifier_ops smmu_ops = {
	.clear_flush_young = smmu_clear_flush_young,
	.clear_young = smmu_clear_young,
	.test_young = smmu_test_young,
	.invalidate_range_start = smmu_start,
	.invalidate_range_end = smmu_end,
};

static inline bool smmu_init(struct smmu *s, struct umm_mm *mm, uint64_t base, unsigned int n)
{
	memset(s, 0, sizeof(*s));
	s->mn.ops = &smmu_ops;
	s->base = base;
	s->n = n < SMMU_PAGES ? n : SMMU_PAGES;
	pthread_mutex_init(&s->lock, NULL);
	ASSERT_OK(umm_mmu_notifier_register(&s->mn, mm));
	return true;
}

/* Cache every page's translation (the test's threads are quiet meanwhile). */
static inline bool smmu_fill(struct smmu *s, struct umm_mm *mm)
{
	for (unsigned int i = 0; i < s->n; i++) {
		struct umm_page *page;

		ASSERT_OK(umm_get_user_page(mm, s->base + PG(i), 0, &page));
		pthread_mutex_lock(&s->lock);
		s->pfn[i] = umm_page_pfn(page);
		umm_mmu_notifier_check_map(&s->mn, s->base + PG(i), s->pfn[i]);
		pthread_mutex_unlock(&s->lock);
		umm_put_page(page);
	}
	return true;
}

/* How many pages it still caches. */
static inline unsigned int smmu_cached(struct smmu *s)
{
	unsigned int c = 0;

	pthread_mutex_lock(&s->lock);
	for (unsigned int i = 0; i < s->n; i++)
		c += !!s->pfn[i];
	pthread_mutex_unlock(&s->lock);
	return c;
}

/* Drop every cached translation (reported to the checker), then unregister. */
static inline void smmu_fini(struct smmu *s, struct umm_mm *mm)
{
	pthread_mutex_lock(&s->lock);
	for (unsigned int i = 0; i < s->n; i++) {
		if (s->pfn[i])
			umm_mmu_notifier_check_unmap(&s->mn, s->base + PG(i), s->base + PG(i + 1));
		s->pfn[i] = 0;
	}
	pthread_mutex_unlock(&s->lock);
	umm_mmu_notifier_unregister(&s->mn, mm);
	pthread_mutex_destroy(&s->lock);
}

/*
 * Ask each part of the engine once, on a throwaway machine, whether it is
 * there.  Anything but -ENOSYS (success, -EINVAL for a request of nothing)
 * means it is.
 */
static inline void probe_engine(void)
{
	struct umm_mm *mm = NULL;
	unsigned long n;
	uint64_t start;
	struct umm *u;
	int status;

	memset(&caps, 0, sizeof(caps));
	if (make_swap_machine(4 << 20, 1, 1 << 20, 0, &u) == 0) {
		caps.swap = true;
		umm_destroy(u);
	}
	if (make_machine(4 << 20, 1, 0, &u))
		return;
	caps.reclaim = umm_reclaim(u, 1, &n) != -ENOSYS;
	caps.compact = umm_compact(u, 0, 1, &start) != -ENOSYS;
	caps.inject = umm_fault_inject(u, UMM_FAULT_SWAP_READ, 0, 0) != -ENOSYS;
	caps.ksm = umm_ksm_scan(u, 1) != -ENOSYS;
	if (umm_mm_create(u, &mm) == 0) {
		uint64_t addr = BASE;

		caps.move = umm_move_pages(mm, 1, &addr, NULL, &status) != -ENOSYS;
		umm_mm_exit(mm);
	}
	umm_destroy(u);
	TAP_DIAG("engine: swap %d reclaim %d move_pages %d compact %d fault_inject %d ksm %d",
		 caps.swap, caps.reclaim, caps.move, caps.compact, caps.inject, caps.ksm);
}

#endif /* UMM_TESTS_SWAP_FIXTURE_H */
