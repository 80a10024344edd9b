/* SPDX-License-Identifier: MIT */
/*
 * t_reclaim_stress.c - differential stress of reclaim, swap, migration and
 * KSM: physical memory is a quarter of the working set and swap is on, so
 * pages keep leaving and coming back while they are written, forked,
 * merged and moved, and every read is compared with a reference model.
 *
 * Layout: one machine of two nodes; per worker thread w a family of
 * address spaces, a root mm and at most FAMILY_MAX - 1 forks of it (or of
 * each other), each with one private anonymous window of WIN_PAGES pages at
 * WIN(w).  Physical memory holds a quarter of the roots' windows; children
 * only add to the pressure.
 *
 * Model: per mm, one stamp per page: 0 for a page still zero, else the
 * stamp of the last full-page write, whose bytes are pat_fill(stamp).  A
 * fork copies the stamps.  A third of the writes use one of NR_COMMON
 * stamps shared by everyone, so that KSM finds identical pages across
 * families and forks.  The worker is the only one to write its family's
 * pages or change its mappings, so the model is exact, and every read it
 * makes is checked against it.
 *
 * Worker ops on a random mm of its family: write a page, read and check a
 * run of pages, MADV_PAGEOUT / MADV_COLD / MADV_DONTNEED over a random
 * range, umm_move_pages of random pages to random nodes, umm_reclaim, a KSM
 * scan step (when KSM exists), fork, exit of a child.  The "storm" thread
 * owns nothing and checks return codes only: umm_move_pages of random pages
 * of every root, PAGEOUT and COLD on random ranges of them, racing the
 * workers' faults, forks and writes.
 *
 * Meeting points: after each phase every thread stops; the machine must
 * pass umm_validate(EXACT|RMAP) (swap counts against swap PTEs included)
 * and every page of every mm must match the model.  At the end every mm
 * exits, every swap slot must be free and no frame leaked.  The run must
 * have done what it is for: pages swapped out and in, moved, and (when KSM
 * exists) merged - the most pages_sharing any KSM op saw is above zero.
 * test_detects_corruption falsifies one stamp and must see the check fail.
 * test_ksm_fork_sequence is the KSM side distilled: one thread, no swap,
 * writes, forks, exits and scans, with the rmap validated after each op.
 *
 * Replay: the seed is printed; UMM_SEED=<seed> replays each thread's op
 * sequence (thread i uses seed + i).  The interleaving is the scheduler's.
 * UMM_TEST_SHORT=1: a few seconds under TSan; UMM_TEST_LONG=1: long.
 * Parts of the engine that return -ENOSYS: swap missing skips the test;
 * move_pages and KSM missing just leave those ops out.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <time.h>

#include <umm/umm.h>

#include "tap.h"
#define FIX_VALIDATE	(UMM_VALIDATE_EXACT | UMM_VALIDATE_RMAP)
#include "swap_fixture.h"

#define NR_WORKERS	2
#define FAMILY_MAX	3		/* mms per family, root included */
#define WIN_PAGES	128
#define WIN(w)		(BASE + (uint64_t)(w) * 0x10000000ULL)
#define NR_COMMON	4		/* stamps 1..NR_COMMON: shared bytes */
#define LOG_RING	16
#define LOG_LEN		96

static uint64_t seed;
static atomic_bool stop;		/* a thread failed: everyone stops */
static atomic_ulong ksm_sharing_max;	/* the most pages_sharing a KSM op saw */
static struct timespec phase_deadline;	/* workers past their ops stop here at the latest */

struct mmodel {
	struct umm_mm *mm;		/* NULL: slot free */
	unsigned int id;		/* for messages */
	uint64_t stamp[WIN_PAGES];
};

struct worker {
	unsigned int id;
	struct umm *u;
	struct mmodel fam[FAMILY_MAX];	/* fam[0] is the root */
	uint64_t rs, next_stamp, nr_ops, op;
	unsigned int next_mm_id;
	char log[LOG_RING][LOG_LEN];
	char err[512];
};

struct storm {
	struct umm *u;
	struct worker *w;		/* the workers, whose roots it hits */
	uint64_t rs, moved, paged;
	char err[160];
};

/* ---- failure reporting ---- */

static void wlog(struct worker *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void wlog(struct worker *w, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(w->log[w->op % LOG_RING], LOG_LEN, fmt, ap);
	va_end(ap);
}

static bool wfail(struct worker *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bool wfail(struct worker *w, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(w->err, sizeof(w->err), fmt, ap);
	va_end(ap);
	stop = true;
	return false;
}

/* The machine's state, for a failure message. */
static void machine_diag(struct umm *u)
{
	struct umm_vmscan_stat vs = vstat(u);
	struct umm_stat st = ustat(u);

	TAP_DIAG("machine: %" PRIu64 " of %" PRIu64 " frames free; swap %" PRIu64 " of %" PRIu64
		 " free, %" PRIu64 " in swap cache; LRU anon %" PRIu64 "+%" PRIu64
		 " unevictable %" PRIu64 " isolated %" PRIu64, st.nr_free, st.nr_frames,
		 vs.swap_free, vs.swap_slots, vs.nr_swapcache, vs.nr_active_anon,
		 vs.nr_inactive_anon, vs.nr_unevictable, vs.nr_isolated);
}

static void wdump(const struct worker *w)
{
	TAP_DIAG("worker %u, op %" PRIu64 " (seed %" PRIu64 "): %s", w->id, w->op, seed, w->err);
	machine_diag(w->u);
	for (uint64_t i = w->op >= LOG_RING ? w->op - LOG_RING + 1 : 0; i <= w->op; i++)
		TAP_DIAG("  op %" PRIu64 ": %s", i, w->log[i % LOG_RING]);
}

/* ---- pages against the model ---- */

static void stamp_fill(uint64_t *buf, uint64_t stamp)
{
	if (stamp)
		pat_fill(buf, stamp, 0);
	else
		memset(buf, 0, PS);
}

/* Read @n pages of @m from page @p and compare each with its stamp. */
static bool check_pages(struct worker *w, struct mmodel *m, unsigned int p, unsigned int n)
{
	static __thread uint64_t buf[8 * PS / 8];
	uint64_t want[PS / 8], base = WIN(w->id);
	ssize_t r;

	r = umm_read(m->mm, base + PG(p), buf, PG(n));
	if (r != (ssize_t)PG(n))
		return wfail(w, "mm %u: read of %u pages at %#" PRIx64 " = %zd", m->id, n,
			     base + PG(p), r);
	for (unsigned int i = 0; i < n; i++) {
		const uint64_t *got = buf + i * (PS / 8);

		stamp_fill(want, m->stamp[p + i]);
		if (memcmp(got, want, PS)) {
			unsigned int off = 0;

			while (got[off] == want[off])
				off++;
			return wfail(w, "mm %u: page %#" PRIx64 " should hold stamp %#" PRIx64
				     ": word %u is %#" PRIx64 ", want %#" PRIx64, m->id,
				     base + PG(p + i), m->stamp[p + i], off, got[off], want[off]);
		}
	}
	return true;
}

static bool check_mm(struct worker *w, struct mmodel *m)
{
	for (unsigned int p = 0; p < WIN_PAGES; p += 8)
		if (!check_pages(w, m, p, 8))
			return false;
	return true;
}

/* ---- the worker's ops ---- */

static struct mmodel *pick_mm(struct worker *w)
{
	for (;;) {
		struct mmodel *m = &w->fam[tap_rand(&w->rs) % FAMILY_MAX];

		if (m->mm)
			return m;
	}
}

static bool op_write(struct worker *w, struct mmodel *m)
{
	unsigned int p = tap_rand(&w->rs) % WIN_PAGES;
	uint64_t buf[PS / 8], stamp;
	ssize_t r;

	if (tap_rand(&w->rs) % 3 == 0)
		stamp = 1 + tap_rand(&w->rs) % NR_COMMON;
	else
		stamp = w->next_stamp++;
	wlog(w, "mm %u: write page %u stamp %#" PRIx64, m->id, p, stamp);
	stamp_fill(buf, stamp);
	r = umm_write(m->mm, WIN(w->id) + PG(p), buf, PS);
	if (r != PS)
		return wfail(w, "mm %u: write of page %u = %zd", m->id, p, r);
	m->stamp[p] = stamp;
	return true;
}

static void pick_range(struct worker *w, unsigned int max, unsigned int *p, unsigned int *n)
{
	*n = 1 + tap_rand(&w->rs) % max;
	*p = tap_rand(&w->rs) % (WIN_PAGES - *n + 1);
}

static bool op_read(struct worker *w, struct mmodel *m)
{
	unsigned int p, n;

	pick_range(w, 8, &p, &n);
	wlog(w, "mm %u: read pages %u..%u", m->id, p, p + n - 1);
	return check_pages(w, m, p, n);
}

static bool op_madvise(struct worker *w, struct mmodel *m, int advice)
{
	unsigned int p, n;
	int r;

	pick_range(w, 16, &p, &n);
	wlog(w, "mm %u: madvise(%d) pages %u..%u", m->id, advice, p, p + n - 1);
	r = umm_madvise(m->mm, WIN(w->id) + PG(p), PG(n), advice);
	if (r)
		return wfail(w, "mm %u: madvise(%d) of pages %u..%u = %d", m->id, advice, p,
			     p + n - 1, r);
	if (advice == UMM_MADV_DONTNEED)
		memset(&m->stamp[p], 0, n * sizeof(m->stamp[0]));
	return true;
}

/*
 * Move @n (at most MOVE_MAX) random pages of @mm's window at @base to random
 * nodes; each status must be the node asked for, or a reason move_pages(2)
 * allows.  Return: the pages moved, or -1 with @err filled.
 */
#define MOVE_MAX	8
static int move_random(struct umm_mm *mm, uint64_t base, uint64_t *rs, unsigned int n,
		       char *err, size_t errlen)
{
	uint64_t addrs[MOVE_MAX] = { 0 };
	int nodes[MOVE_MAX] = { 0 }, status[MOVE_MAX], moved = 0, r;

	if (n > MOVE_MAX)
		n = MOVE_MAX;
	for (unsigned int i = 0; i < n; i++) {
		addrs[i] = base + PG(tap_rand(rs) % WIN_PAGES);
		nodes[i] = tap_rand(rs) % 2;
		status[i] = 0x7777;
	}
	r = umm_move_pages(mm, n, addrs, nodes, status);
	if (r) {
		snprintf(err, errlen, "umm_move_pages = %d", r);
		return -1;
	}
	for (unsigned int i = 0; i < n; i++) {
		if (status[i] == nodes[i]) {
			moved++;
			continue;
		}
		/* zero page or swapped out; held by someone; target node full */
		if (status[i] == -ENOENT || status[i] == -EBUSY || status[i] == -ENOMEM)
			continue;
		snprintf(err, errlen, "move of %#" PRIx64 " to node %d: status %d", addrs[i],
			 nodes[i], status[i]);
		return -1;
	}
	return moved;
}

static bool op_move(struct worker *w, struct mmodel *m)
{
	char err[160];

	wlog(w, "mm %u: move_pages", m->id);
	if (move_random(m->mm, WIN(w->id), &w->rs, 1 + tap_rand(&w->rs) % MOVE_MAX, err,
			sizeof(err)) < 0)
		return wfail(w, "mm %u: %s", m->id, err);
	return true;
}

static bool op_fork(struct worker *w, struct mmodel *parent)
{
	struct mmodel *child = NULL;
	int r;

	for (unsigned int i = 1; i < FAMILY_MAX; i++)
		if (!w->fam[i].mm)
			child = &w->fam[i];
	if (!child)
		return true;
	child->id = w->id * 1000 + w->next_mm_id++;
	wlog(w, "mm %u: fork -> mm %u", parent->id, child->id);
	r = umm_mm_fork(parent->mm, &child->mm);
	if (r) {
		child->mm = NULL;
		return wfail(w, "mm %u: fork = %d", parent->id, r);
	}
	memcpy(child->stamp, parent->stamp, sizeof(child->stamp));
	return true;
}

static bool op_exit(struct worker *w)
{
	struct mmodel *m = &w->fam[1 + tap_rand(&w->rs) % (FAMILY_MAX - 1)];

	if (!m->mm)
		return true;
	wlog(w, "mm %u: exit", m->id);
	umm_mm_exit(m->mm);
	m->mm = NULL;
	return true;
}

static bool op_reclaim(struct worker *w)
{
	unsigned long got;
	int r;

	wlog(w, "umm_reclaim(32)");
	r = umm_reclaim(w->u, 32, &got);
	return r ? wfail(w, "umm_reclaim = %d", r) : true;
}

static bool op_ksm(struct worker *w)
{
	int r;

	struct umm_ksm_stats ks;
	unsigned long seen;

	wlog(w, "umm_ksm_scan(32)");
	r = umm_ksm_scan(w->u, 32);
	if (r < 0)
		return wfail(w, "umm_ksm_scan = %d", r);
	umm_ksm_get_stats(w->u, &ks);
	seen = atomic_load(&ksm_sharing_max);
	while (ks.pages_sharing > seen &&
	       !atomic_compare_exchange_weak(&ksm_sharing_max, &seen, ks.pages_sharing))
		;
	return true;
}

static bool one_op(struct worker *w)
{
	struct mmodel *m = pick_mm(w);
	unsigned int dice = tap_rand(&w->rs) % 100;

	if (dice < 40)
		return op_write(w, m);
	if (dice < 65)
		return op_read(w, m);
	if (dice < 72)
		return op_madvise(w, m, UMM_MADV_PAGEOUT);
	if (dice < 76)
		return op_madvise(w, m, UMM_MADV_COLD);
	if (dice < 78)
		return op_madvise(w, m, UMM_MADV_DONTNEED);
	if (dice < 86)
		return caps.move ? op_move(w, m) : true;
	if (dice < 89)
		return caps.reclaim ? op_reclaim(w) : true;
	if (dice < 94)
		return caps.ksm ? op_ksm(w) : true;
	if (dice < 97)
		return op_fork(w, m);
	return op_exit(w);
}

/*
 * Has the run done what it is for (test_stress's last checks)?  Under a
 * loaded host the storm may get few turns while the workers do their ops:
 * they go on until it has, or until the phase's deadline.
 */
static bool goals_met(struct umm *u)
{
	struct umm_vmscan_stat vs = vstat(u);
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	if (now.tv_sec > phase_deadline.tv_sec)
		return true;	/* give up waiting: the checks will say what is missing */
	return vs.pswpout && vs.pswpin && (!caps.move || vs.pgmigrate_success) &&
	       (!caps.ksm || atomic_load(&ksm_sharing_max));
}

static void *worker_fn(void *arg)
{
	struct worker *w = arg;

	for (uint64_t i = 0; !stop && (i < w->nr_ops || !goals_met(w->u)); i++, w->op++)
		if (!one_op(w))
			break;
	return NULL;
}

/* Moves and PAGEOUT/COLD on the roots of every family; return codes only. */
static void *storm_fn(void *arg)
{
	struct storm *s = arg;

	while (!stop) {
		struct worker *w = &s->w[tap_rand(&s->rs) % NR_WORKERS];
		struct umm_mm *root = w->fam[0].mm;
		unsigned int dice = tap_rand(&s->rs) % 10;

		if (dice < 8 && caps.move) {
			int moved = move_random(root, WIN(w->id), &s->rs, MOVE_MAX, s->err,
						sizeof(s->err));
			if (moved < 0)
				break;
			s->moved += moved;
		} else {
			unsigned int n = 1 + tap_rand(&s->rs) % 16;
			unsigned int p = tap_rand(&s->rs) % (WIN_PAGES - n + 1);
			int advice = dice == 9 ? UMM_MADV_COLD : UMM_MADV_PAGEOUT;
			int r = umm_madvise(root, WIN(w->id) + PG(p), PG(n), advice);

			if (r) {
				snprintf(s->err, sizeof(s->err), "madvise(%d) = %d", advice, r);
				break;
			}
			s->paged += n;
		}
	}
	if (s->err[0])
		stop = true;
	return NULL;
}

/* ---- the run ---- */

struct run {
	struct umm *u;
	struct worker w[NR_WORKERS];
	struct storm storm;
};

static bool run_init(struct run *r)
{
	const size_t ws = (size_t)NR_WORKERS * WIN_PAGES * PS;

	memset(r, 0, sizeof(*r));
	stop = false;
	ASSERT_OK(make_swap_machine(ws / 4, 2, 4 * ws, 0, &r->u));
	for (unsigned int i = 0; i < NR_WORKERS; i++) {
		struct worker *w = &r->w[i];

		w->id = i;
		w->u = r->u;
		w->rs = seed + i;
		w->next_stamp = ((uint64_t)(i + 1) << 40) + NR_COMMON + 1;
		w->fam[0].id = i * 1000;
		w->next_mm_id = 1;
		ASSERT_OK(umm_mm_create(r->u, &w->fam[0].mm));
		ASSERT_OK(map_at(w->fam[0].mm, WIN(i), WIN_PAGES, RW, PRIV));
		if (caps.ksm)
			ASSERT_OK(umm_madvise(w->fam[0].mm, WIN(i), PG(WIN_PAGES),
					      UMM_MADV_MERGEABLE));
	}
	r->storm.u = r->u;
	r->storm.w = r->w;
	r->storm.rs = seed + 100;
	return true;
}

/* Every thread stopped: validate and compare every page of every mm. */
static bool run_check(struct run *r)
{
	if (!settled_valid(r->u)) {
		machine_diag(r->u);
		return false;
	}
	for (unsigned int i = 0; i < NR_WORKERS; i++) {
		struct worker *w = &r->w[i];

		for (unsigned int k = 0; k < FAMILY_MAX; k++) {
			if (w->fam[k].mm && !check_mm(w, &w->fam[k])) {
				wdump(w);
				return false;
			}
		}
	}
	return true;
}

/* One phase: workers and the storm run @ops ops each, then everyone stops. */
static bool run_phase(struct run *r, uint64_t ops)
{
	pthread_t th[NR_WORKERS], storm;
	bool ok = true;

	clock_gettime(CLOCK_MONOTONIC, &phase_deadline);
	phase_deadline.tv_sec += 30;

	for (unsigned int i = 0; i < NR_WORKERS; i++) {
		r->w[i].nr_ops = ops;
		ASSERT_EQ(pthread_create(&th[i], NULL, worker_fn, &r->w[i]), 0);
	}
	ASSERT_EQ(pthread_create(&storm, NULL, storm_fn, &r->storm), 0);
	for (unsigned int i = 0; i < NR_WORKERS; i++)
		pthread_join(th[i], NULL);
	stop = true;
	pthread_join(storm, NULL);
	for (unsigned int i = 0; i < NR_WORKERS; i++) {
		if (r->w[i].err[0]) {
			wdump(&r->w[i]);
			ok = false;
		}
	}
	if (r->storm.err[0]) {
		TAP_DIAG("storm (seed %" PRIu64 "): %s", seed, r->storm.err);
		ok = false;
	}
	stop = false;
	return ok && run_check(r);
}

/* Exit everything: every slot free, nothing leaked. */
static bool run_fini(struct run *r)
{
	for (unsigned int i = 0; i < NR_WORKERS; i++)
		for (unsigned int k = 0; k < FAMILY_MAX; k++)
			if (r->w[i].fam[k].mm)
				umm_mm_exit(r->w[i].fam[k].mm);
	machine_settle(r->u);
	ASSERT_TRUE(swap_all_free(r->u));
	return machine_done(r->u);
}

static uint64_t ops_per_phase(void)
{
	return tap_short() ? 400 : tap_long() ? 50000 : 4000;
}

static bool test_stress(void)
{
	struct umm_vmscan_stat vs;
	struct umm_ksm_stats ks;
	static struct run r;

	NEED(swap);
	ASSERT_TRUE(run_init(&r));
	ksm_sharing_max = 0;
	for (int phase = 0; phase < 3; phase++)
		ASSERT_TRUE(run_phase(&r, ops_per_phase()));
	vs = vstat(r.u);
	umm_ksm_get_stats(r.u, &ks);
	TAP_DIAG("pswpout %" PRIu64 " pswpin %" PRIu64 " pgsteal %" PRIu64 " kswapd_runs %"
		 PRIu64 " direct_reclaims %" PRIu64, vs.pswpout, vs.pswpin, vs.pgsteal,
		 vs.kswapd_runs, vs.direct_reclaims);
	TAP_DIAG("storm: %" PRIu64 " pages on the node asked for; pgmigrate_success %" PRIu64
		 " fail %" PRIu64 "; KSM pages_sharing %lu at the end, at most %lu", r.storm.moved,
		 vs.pgmigrate_success, vs.pgmigrate_fail, ks.pages_sharing,
		 atomic_load(&ksm_sharing_max));
	/* the run did what it is for: pages went out and came back, moved, and merged */
	ASSERT_TRUE(vs.pswpout > 0);
	ASSERT_TRUE(vs.pswpin > 0);
	if (caps.move)
		ASSERT_TRUE(vs.pgmigrate_success > 0);
	if (caps.ksm)
		ASSERT_TRUE(atomic_load(&ksm_sharing_max) > 0);
	return run_fini(&r);
}

/* The checker checks: one falsified stamp must be caught. */
static bool test_detects_corruption(void)
{
	static struct run r;
	bool caught;

	NEED(swap);
	ASSERT_TRUE(run_init(&r));
	ASSERT_TRUE(run_phase(&r, ops_per_phase() / 4));
	struct mmodel *m = &r.w[0].fam[0];
	m->stamp[WIN_PAGES / 2] ^= 1;
	printf("# a mismatch is expected below\n");
	caught = !check_mm(&r.w[0], m);
	if (caught)
		TAP_DIAG("caught: %s", r.w[0].err);
	m->stamp[WIN_PAGES / 2] ^= 1;
	stop = false;
	ASSERT_TRUE(caught);
	ASSERT_TRUE(run_check(&r));
	return run_fini(&r);
}

/*
 * The stress's KSM failures, distilled to one thread and no swap: random
 * writes of two shared contents, DONTNEED, KSM scan steps, forks and exits
 * in a family of four mms, umm_validate(EXACT|RMAP) after every op.  The
 * rmap (rmap_walk_ksm) must find every PTE that maps a KSM page however
 * the family forked and exited around it.  Deterministic for a seed.
 */
#define SEQ_PAGES	16
#define SEQ_LOG		24

static bool test_ksm_fork_sequence(void)
{
	struct umm_mm *mms[4] = { 0 };
	int ids[4] = { 0 }, next = 1, nlog = 0;
	char msg[256], log[SEQ_LOG][64];
	uint64_t rs = seed ^ 0x4b534d;
	uint8_t buf[PS];
	struct umm *u;

	NEED(ksm);
	ASSERT_OK(make_machine(16 << 20, 1, 0, &u));
	ASSERT_OK(umm_mm_create(u, &mms[0]));
	ASSERT_OK(map_at(mms[0], BASE, SEQ_PAGES, RW, PRIV));
	ASSERT_OK(umm_madvise(mms[0], BASE, PG(SEQ_PAGES), UMM_MADV_MERGEABLE));
	for (int op = 0; op < (tap_short() ? 1000 : 4000); op++) {
		int d = tap_rand(&rs) % 100, i;
		char *l = log[nlog++ % SEQ_LOG];

		do
			i = tap_rand(&rs) % 4;
		while (!mms[i]);
		if (d < 50) {
			int p = tap_rand(&rs) % SEQ_PAGES, v = 1 + tap_rand(&rs) % 2;

			memset(buf, v, PS);
			ASSERT_EQ(umm_write(mms[i], AT(p), buf, PS), PS);
			snprintf(l, 64, "mm%d: write %d to page %d", ids[i], v, p);
		} else if (d < 60) {
			int p = tap_rand(&rs) % SEQ_PAGES;

			ASSERT_OK(umm_madvise(mms[i], AT(p), PS, UMM_MADV_DONTNEED));
			snprintf(l, 64, "mm%d: DONTNEED page %d", ids[i], p);
		} else if (d < 80) {
			ASSERT_TRUE(umm_ksm_scan(u, 16) >= 0);
			snprintf(l, 64, "umm_ksm_scan(16)");
		} else if (d < 90) {
			int j = 1;

			while (j < 4 && mms[j])
				j++;
			if (j == 4) {
				snprintf(l, 64, "(no room to fork)");
				continue;
			}
			ASSERT_OK(umm_mm_fork(mms[i], &mms[j]));
			ids[j] = next++;
			snprintf(l, 64, "mm%d: fork -> mm%d", ids[i], ids[j]);
		} else {
			int j = 1 + tap_rand(&rs) % 3;

			if (!mms[j]) {
				snprintf(l, 64, "(no child %d to exit)", j);
				continue;
			}
			snprintf(l, 64, "mm%d: exit", ids[j]);
			umm_mm_exit(mms[j]);
			mms[j] = NULL;
		}
		if (umm_validate(u, UMM_VALIDATE_EXACT | UMM_VALIDATE_RMAP, msg, sizeof(msg))) {
			TAP_DIAG("op %d (seed %" PRIu64 "): umm_validate: %s; the last ops:", op,
				 seed, msg);
			for (int k = nlog > SEQ_LOG ? nlog - SEQ_LOG : 0; k < nlog; k++)
				TAP_DIAG("  %s", log[k % SEQ_LOG]);
			return false;
		}
	}
	for (int i = 0; i < 4; i++)
		if (mms[i])
			umm_mm_exit(mms[i]);
	return machine_done(u);
}

int main(void)
{
	seed = tap_seed();
	if (!tmp_init("reclaim")) {
		printf("1..0 # SKIP cannot make a temporary directory\n");
		return 0;
	}
	probe_engine();
	RUN_TEST_CAPS(test_stress);
	RUN_TEST_CAPS(test_detects_corruption);
	RUN_TEST_CAPS(test_ksm_fork_sequence);
	tmp_cleanup();
	return tap_done();
}
