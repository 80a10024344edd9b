// SPDX-License-Identifier: MIT
/*
 * t_ksm_stress.c - differential stress test of KSM: writers keep changing
 * pages while ksmd merges them at full speed, and every byte read must be
 * what a reference model says.
 *
 * Each writer thread owns a family of address spaces (a root mm and up to
 * FAMILY_MAX - 1 forks of its members), each with a window of WIN pages at
 * BASE, and a model per mm: the WIN pages of bytes it must hold.  Only the
 * owner touches its mms, so the model is exact whatever KSM does.  Whole
 * pages are written with one of NR_CONTENTS contents (content 0 is all
 * zeros), so most pages have twins in every family and KSM merges across
 * mms and threads all the time; small writes make pages unique again.
 *
 * The ops, chosen at random: write a whole page (a shared content), write
 * a few bytes, read a page and compare, GUP a page and compare through the
 * frame's address, GUP for write and store through the frame (a merge that
 * ignored the extra reference would corrupt a KSM page that other mms
 * read), fork (the child's model is a copy of the parent's), exit a child,
 * MADV_UNMERGEABLE / MADV_MERGEABLE on a random range, DONTNEED of a page
 * (then rewritten whole, so no zero page from a read fault exists and every
 * mapping of the zero frame is a KSM zero page), merge-any on or off.
 *
 * Meanwhile ksmd runs with pages_to_scan large and sleep_millisecs 0, and a
 * "stepper" thread calls umm_ksm_scan() too.  Every SYNC_EVERY ops the
 * writers meet: ksmd is stopped (run 0), passes are stepped until one
 * changes nothing (rmap items of COW-broken pages are dropped as Linux drops
 * them, when it next sees them), and then every mm is read back whole
 * against its model, the
 * figures are compared with a pagemap walk (pages_shared = KSM frames
 * mapped, pages_sharing = the rest of their mappings, ksm_zero_pages, each
 * mm's ksm_merging_pages) and umm_validate(EXACT | RMAP) must hold.
 *
 * Runs: nr_threads 1 with max_page_sharing 4 (chains), nr_threads 2 with
 * use_zero_pages.  Seeded: the seed is printed, UMM_SEED=<seed> replays
 * each writer's op sequence (thread interleaving is the host's).
 * UMM_TEST_SHORT=1 is the CI form.
 */
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>

#include <umm/umm.h>

#define FIX_VALIDATE	VALIDATE_ALL
#include "tap.h"
#include "fixture.h"

#define NR_WRITERS	3
#define FAMILY_MAX	3
#define MAXMM		(NR_WRITERS * FAMILY_MAX)
#define NR_CONTENTS	5

static unsigned int win;		/* pages per mm */
static unsigned int sync_every;		/* ops between meeting points */
static unsigned int rounds;		/* meeting points per run */

struct member {
	struct umm_mm *mm;		/* NULL: free slot */
	uint8_t *model;			/* win pages */
};

struct writer {
	struct run *run;
	int id;
	uint64_t rng;
	unsigned long ops;
	struct member fam[FAMILY_MAX];
};

struct run {
	struct umm *u;
	bool use_zero_pages;
	struct writer w[NR_WRITERS];
	pthread_barrier_t meet;
	atomic_bool failed, stop;
	atomic_bool pause, paused;	/* meeting point: the stepper holds still */
	char why[512];
	pthread_mutex_t why_lock;
};

static void __attribute__((format(printf, 2, 3))) run_fail(struct run *r, const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&r->why_lock);
	if (!atomic_load(&r->failed)) {
		va_start(ap, fmt);
		vsnprintf(r->why, sizeof(r->why), fmt, ap);
		va_end(ap);
		atomic_store(&r->failed, true);
	}
	pthread_mutex_unlock(&r->why_lock);
}

static unsigned int below(struct writer *w, unsigned int n)
{
	return (unsigned int)(tap_rand(&w->rng) % n);
}

static void content_fill(uint8_t *p, unsigned int c)
{
	memset(p, c ? 0x10 * c + 1 : 0, PS);
}

static uint8_t *model_page(struct member *m, unsigned int p)
{
	return m->model + (size_t)p * PS;
}

/* ---- ops ---- */

static bool op_write_page(struct writer *w, struct member *m)
{
	unsigned int p = below(w, win), c = below(w, NR_CONTENTS);
	uint8_t buf[PS];
	ssize_t r;

	content_fill(buf, c);
	r = umm_write(m->mm, AT(p), buf, PS);
	if (r != PS) {
		run_fail(w->run, "writer %d op %lu: umm_write(page %u) = %zd", w->id, w->ops, p, r);
		return false;
	}
	memcpy(model_page(m, p), buf, PS);
	return true;
}

static bool op_write_bytes(struct writer *w, struct member *m)
{
	unsigned int p = below(w, win), off = below(w, PS - 16), len = 1 + below(w, 16);
	uint8_t buf[16];
	ssize_t r;

	for (unsigned int i = 0; i < len; i++)
		buf[i] = (uint8_t)tap_rand(&w->rng);
	r = umm_write(m->mm, AT(p) + off, buf, len);
	if (r != (ssize_t)len) {
		run_fail(w->run, "writer %d op %lu: umm_write(page %u + %u, %u) = %zd", w->id,
			 w->ops, p, off, len, r);
		return false;
	}
	memcpy(model_page(m, p) + off, buf, len);
	return true;
}

static bool compare(struct writer *w, int slot, unsigned int p, const uint8_t *got,
		    const char *how)
{
	const uint8_t *want = model_page(&w->fam[slot], p);

	if (!memcmp(got, want, PS))
		return true;
	for (unsigned int i = 0; i < PS; i++)
		if (got[i] != want[i]) {
			struct umm_pageinfo pi = pinfo(w->fam[slot].mm, AT(p));

			run_fail(w->run, "writer %d op %lu: %s of mm %d page %u: byte %u is %#x, "
				 "model %#x (pfn %" PRIu64 " flags %#x mapcount %d)", w->id,
				 w->ops, how, slot, p, i, got[i], want[i], pi.pfn, pi.flags,
				 pi.mapcount);
			break;
		}
	return false;
}

static bool op_read(struct writer *w, int slot)
{
	unsigned int p = below(w, win);
	uint8_t buf[PS];
	ssize_t r = umm_read(w->fam[slot].mm, AT(p), buf, PS);

	if (r != PS) {
		run_fail(w->run, "writer %d op %lu: umm_read(page %u) = %zd", w->id, w->ops, p, r);
		return false;
	}
	return compare(w, slot, p, buf, "umm_read");
}

static bool op_gup(struct writer *w, int slot, bool write)
{
	struct member *m = &w->fam[slot];
	unsigned int p = below(w, win);
	struct umm_page *page;
	uint8_t *addr;
	int r = umm_get_user_page(m->mm, AT(p), write ? UMM_GUP_WRITE : 0, &page);

	if (r) {
		run_fail(w->run, "writer %d op %lu: umm_get_user_page(page %u, %s) = %d", w->id,
			 w->ops, p, write ? "write" : "read", r);
		return false;
	}
	addr = umm_page_address(page);
	if (!compare(w, slot, p, addr, write ? "GUP(write)" : "GUP")) {
		umm_put_page(page);
		return false;
	}
	if (write) {
		/* a store through the frame while KSM scans: it must not merge it */
		unsigned int off = below(w, PS);
		uint8_t v = (uint8_t)tap_rand(&w->rng);

		for (int k = 0; k < 4; k++)
			sched_yield();
		addr[off] = v;
		model_page(m, p)[off] = v;
	}
	umm_put_page(page);
	return true;
}

static int free_slot(struct writer *w)
{
	for (int i = 0; i < FAMILY_MAX; i++)
		if (!w->fam[i].mm)
			return i;
	return -1;
}

static bool op_fork(struct writer *w, int slot)
{
	int c = free_slot(w), r;

	if (c < 0)
		return true;
	r = umm_mm_fork(w->fam[slot].mm, &w->fam[c].mm);
	if (r) {
		w->fam[c].mm = NULL;
		run_fail(w->run, "writer %d op %lu: umm_mm_fork = %d", w->id, w->ops, r);
		return false;
	}
	memcpy(w->fam[c].model, w->fam[slot].model, (size_t)win * PS);
	return true;
}

static void op_exit(struct writer *w, int slot)
{
	if (slot == 0)		/* the root stays */
		return;
	umm_mm_exit(w->fam[slot].mm);
	w->fam[slot].mm = NULL;
}

static bool op_madvise(struct writer *w, struct member *m)
{
	unsigned int p = below(w, win), n = 1 + below(w, win - p);
	int adv = below(w, 3) ? UMM_MADV_MERGEABLE : UMM_MADV_UNMERGEABLE;
	int r = umm_madvise(m->mm, AT(p), PG(n), adv);

	if (r)
		run_fail(w->run, "writer %d op %lu: umm_madvise(%u, %u pages, %d) = %d", w->id,
			 w->ops, p, n, adv, r);
	return r == 0;
}

/* DONTNEED one page, then write it whole: a read never maps the zero frame. */
static bool op_dontneed(struct writer *w, int slot)
{
	struct member *m = &w->fam[slot];
	unsigned int p = below(w, win);
	uint8_t buf[PS];
	int r = umm_madvise(m->mm, AT(p), PS, UMM_MADV_DONTNEED);

	if (r) {
		run_fail(w->run, "writer %d op %lu: DONTNEED = %d", w->id, w->ops, r);
		return false;
	}
	content_fill(buf, below(w, NR_CONTENTS));
	if (umm_write(m->mm, AT(p), buf, PS) != PS) {
		run_fail(w->run, "writer %d op %lu: write after DONTNEED failed", w->id, w->ops);
		return false;
	}
	memcpy(model_page(m, p), buf, PS);
	return true;
}

static bool op_merge_any(struct writer *w, struct member *m)
{
	int r = umm_mm_set_merge_any(m->mm, below(w, 2));

	if (r)
		run_fail(w->run, "writer %d op %lu: umm_mm_set_merge_any = %d", w->id, w->ops, r);
	return r == 0;
}

static bool one_op(struct writer *w)
{
	int slot;
	unsigned int x = below(w, 1000);

	do
		slot = (int)below(w, FAMILY_MAX);
	while (!w->fam[slot].mm);
	w->ops++;
	if (x < 350)
		return op_write_page(w, &w->fam[slot]);
	if (x < 480)
		return op_write_bytes(w, &w->fam[slot]);
	if (x < 800)
		return op_read(w, slot);
	if (x < 850)
		return op_gup(w, slot, false);
	if (x < 880)
		return op_gup(w, slot, true);
	if (x < 900)
		return op_fork(w, slot);
	if (x < 915) {
		op_exit(w, slot);
		return true;
	}
	if (x < 955)
		return op_madvise(w, &w->fam[slot]);
	if (x < 990)
		return op_dontneed(w, slot);
	return op_merge_any(w, &w->fam[slot]);
}

/* ---- meeting points ---- */

struct ksm_walk { unsigned long shared, sharing, zero; };

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Every mm read back whole, and the figures against a pagemap walk. */
static bool check_all(struct run *r)
{
	static uint64_t pfns[MAXMM * 1024];
	struct umm_ksm_stats s;
	struct ksm_walk kw = { 0, 0, 0 };
	size_t n = 0;
	uint8_t buf[PS];

	for (int t = 0; t < NR_WRITERS; t++) {
		struct writer *w = &r->w[t];

		for (int i = 0; i < FAMILY_MAX; i++) {
			struct member *m = &w->fam[i];
			unsigned long merging = 0, zero = 0;
			struct umm_mm_ksm_stat st;

			if (!m->mm)
				continue;
			for (unsigned int p = 0; p < win; p++) {
				struct umm_pageinfo pi = pinfo(m->mm, AT(p));
				struct umm_vma_info vi;

				if (umm_read(m->mm, AT(p), buf, PS) != PS ||
				    !compare(w, i, p, buf, "check"))
					return false;
				/* only mergeable VMAs have rmap items (see t_ksm.c's walk()) */
				if (!vma_at(m->mm, AT(p), &vi) || !vi.mergeable)
					continue;
				if (pi.flags & UMM_PI_KSM) {
					pfns[n++] = pi.pfn;
					merging++;
				} else if (pi.flags & UMM_PI_ZERO) {
					zero++;
				}
			}
			umm_mm_get_ksm_stat(m->mm, &st);
			if (st.ksm_merging_pages != merging || st.ksm_zero_pages != zero) {
				run_fail(r, "writer %d mm %d: ksm_merging_pages %lu ksm_zero_pages %lu, "
					 "pagemap %lu %lu", t, i, st.ksm_merging_pages,
					 st.ksm_zero_pages, merging, zero);
				return false;
			}
			kw.zero += zero;
		}
	}
	qsort(pfns, n, sizeof(*pfns), cmp_u64);
	for (size_t k = 0; k < n; k++)
		if (k == 0 || pfns[k] != pfns[k - 1])
			kw.shared++;
	kw.sharing = n - kw.shared;
	umm_ksm_get_stats(r->u, &s);
	if (s.pages_shared != kw.shared || s.pages_sharing != kw.sharing ||
	    s.ksm_zero_pages != kw.zero) {
		run_fail(r, "pages_shared %lu pages_sharing %lu ksm_zero_pages %lu, pagemap: %lu "
			 "%lu %lu", s.pages_shared, s.pages_sharing, s.ksm_zero_pages, kw.shared,
			 kw.sharing, kw.zero);
		return false;
	}
	if (!r->use_zero_pages && kw.zero) {
		run_fail(r, "%lu zero-frame mappings without use_zero_pages", kw.zero);
		return false;
	}
	if (!machine_valid(r->u)) {
		run_fail(r, "umm_validate failed");
		return false;
	}
	TAP_DIAG("  meeting: %lu KSM pages, %lu sharing, %lu zero, %lu full scans so far",
		 kw.shared, kw.sharing, kw.zero, s.full_scans);
	return true;
}

/* Step the scanner on this thread until full_scans has grown by @n. */
static bool scan_passes(struct run *r, unsigned int n)
{
	struct umm_ksm_stats s;
	unsigned long want;
	int e;

	umm_ksm_get_stats(r->u, &s);
	want = s.full_scans + n;
	for (long i = 0; i < 1000000 && s.full_scans < want; i++) {
		if ((e = umm_ksm_scan(r->u, 256)) < 0) {
			run_fail(r, "umm_ksm_scan = %d", e);
			return false;
		}
		umm_ksm_get_stats(r->u, &s);
	}
	if (s.full_scans < want)
		run_fail(r, "full_scans stuck at %lu at a meeting point", s.full_scans);
	return s.full_scans >= want;
}

/*
 * With the stepper still: stop ksmd, finish the pass in progress (it may
 * have seen pages before the writers stopped), then step whole passes until
 * one changes none of pages_shared, pages_sharing and ksm_zero_pages, check,
 * restart ksmd.  Why not check after one pass: a pass can turn a page that
 * a fork left shared with an mm scanned earlier in the pass (or skipped by
 * smart scan) into a KSM page, and that mm's mapping gets its rmap item on
 * the next pass only - Linux's counters lag the same way.  (t_ksm's
 * test_fork_shared_page_made_ksm pins down what the rmap walk must do then.)
 */
static void meet_quiet(struct run *r)
{
	struct umm_ksm_stats a, b;
	int e, i;

	if ((e = umm_ksm_set_run(r->u, 0))) {
		run_fail(r, "umm_ksm_set_run(0) = %d", e);
		return;
	}
	if (!scan_passes(r, 1))
		return;
	umm_ksm_get_stats(r->u, &b);
	for (i = 0; i < 20; i++) {
		a = b;
		if (!scan_passes(r, 1))
			return;
		umm_ksm_get_stats(r->u, &b);
		if (a.pages_shared == b.pages_shared && a.pages_sharing == b.pages_sharing &&
		    a.ksm_zero_pages == b.ksm_zero_pages)
			break;
	}
	if (i == 20) {
		run_fail(r, "KSM still merging after 20 passes with nothing changing");
		return;
	}
	if (check_all(r) && (e = umm_ksm_set_run(r->u, 1)))
		run_fail(r, "umm_ksm_set_run(1) = %d", e);
}

static void meet(struct run *r)
{
	atomic_store(&r->pause, true);
	while (!atomic_load(&r->paused) && !atomic_load(&r->failed))
		sched_yield();
	meet_quiet(r);
	atomic_store(&r->pause, false);
}

static void *writer_fn(void *arg)
{
	struct writer *w = arg;
	struct run *r = w->run;

	for (unsigned int round = 0; round < rounds; round++) {
		for (unsigned int i = 0; i < sync_every && !atomic_load(&r->failed); i++)
			if (!one_op(w))
				break;
		pthread_barrier_wait(&r->meet);
		if (w->id == 0 && !atomic_load(&r->failed))
			meet(r);
		pthread_barrier_wait(&r->meet);
	}
	return NULL;
}

/* Steps the scanner on its own thread as well, racing ksmd. */
static void *stepper_fn(void *arg)
{
	struct run *r = arg;

	while (!atomic_load(&r->stop)) {
		int e;

		if (atomic_load(&r->pause)) {
			atomic_store(&r->paused, true);
			while (atomic_load(&r->pause) && !atomic_load(&r->stop))
				sched_yield();
			atomic_store(&r->paused, false);
			continue;
		}
		e = umm_ksm_scan(r->u, 32);

		if (e < 0) {
			run_fail(r, "umm_ksm_scan (stepper) = %d", e);
			break;
		}
		sched_yield();
	}
	return NULL;
}

/* ---- a run ---- */

static bool stress_run(uint64_t seed, unsigned int nr_threads, unsigned int mps,
		       bool use_zero_pages)
{
	static struct run run;
	struct run *r = &run;
	pthread_t th[NR_WRITERS], stepper;
	struct umm_ksm_params p;
	bool ok;

	memset(r, 0, sizeof(*r));
	pthread_mutex_init(&r->why_lock, NULL);
	r->use_zero_pages = use_zero_pages;
	ASSERT_OK(make_machine(64 << 20, 1, 0, &r->u));
	ASSERT_OK(umm_ksm_get_params(r->u, &p));
	p.pages_to_scan = 4096;
	p.sleep_millisecs = 0;
	p.nr_threads = nr_threads;
	p.max_page_sharing = mps;
	p.use_zero_pages = use_zero_pages;
	ASSERT_OK(umm_ksm_set_params(r->u, &p));
	for (int t = 0; t < NR_WRITERS; t++) {
		struct writer *w = &r->w[t];

		w->run = r;
		w->id = t;
		w->rng = seed + (uint64_t)t * 0x9e3779b97f4a7c15ULL + 1;
		for (int i = 0; i < FAMILY_MAX; i++) {
			w->fam[i].model = calloc(win, PS);
			ASSERT_TRUE(w->fam[i].model);
		}
		ASSERT_OK(umm_mm_create(r->u, &w->fam[0].mm));
		ASSERT_OK(map_at(w->fam[0].mm, AT(0), win, RW, PRIV));
		for (unsigned int pg = 0; pg < win; pg++) {
			uint8_t *m = model_page(&w->fam[0], pg);

			content_fill(m, (pg + t) % NR_CONTENTS);
			ASSERT_EQ(umm_write(w->fam[0].mm, AT(pg), m, PS), PS);
		}
		ASSERT_OK(umm_madvise(w->fam[0].mm, AT(0), PG(win), UMM_MADV_MERGEABLE));
	}
	ASSERT_EQ(pthread_barrier_init(&r->meet, NULL, NR_WRITERS), 0);
	ASSERT_OK(umm_ksm_set_run(r->u, 1));
	ASSERT_EQ(pthread_create(&stepper, NULL, stepper_fn, r), 0);
	for (int t = 0; t < NR_WRITERS; t++)
		ASSERT_EQ(pthread_create(&th[t], NULL, writer_fn, &r->w[t]), 0);
	for (int t = 0; t < NR_WRITERS; t++)
		pthread_join(th[t], NULL);
	atomic_store(&r->stop, true);
	pthread_join(stepper, NULL);
	umm_ksm_set_run(r->u, 0);
	pthread_barrier_destroy(&r->meet);

	ok = !atomic_load(&r->failed);
	if (!ok)
		TAP_DIAG("seed %" PRIu64 ": %s", seed, r->why);
	for (int t = 0; t < NR_WRITERS; t++) {
		for (int i = 0; i < FAMILY_MAX; i++) {
			if (r->w[t].fam[i].mm)
				umm_mm_exit(r->w[t].fam[i].mm);
			free(r->w[t].fam[i].model);
		}
	}
	ASSERT_TRUE(machine_done(r->u));
	return ok;
}

static uint64_t seed;

static bool test_stress_one_thread_chains(void)
{
	return stress_run(seed, 1, 4, false);
}

static bool test_stress_two_threads_zero_pages(void)
{
	return stress_run(seed ^ 0x5bd1e995, 2, 256, true);
}

int main(void)
{
	win = tap_short() ? 24 : tap_long() ? 256 : 64;
	sync_every = tap_short() ? 150 : tap_long() ? 4000 : 800;
	rounds = tap_short() ? 3 : tap_long() ? 20 : 6;
	seed = tap_seed();
	RUN_TEST(test_stress_one_thread_chains);
	RUN_TEST(test_stress_two_threads_zero_pages);
	return tap_done();
}
