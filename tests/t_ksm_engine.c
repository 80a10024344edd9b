// SPDX-License-Identifier: MIT
/*
 * t_ksm_engine.c - unit checks of ksm.c's machinery that the scenario tests
 * (t_ksm.c) do not reach: parallel scanning gives the counts one thread
 * gives, chains of dups collapse when pruned, rmap walks find every mapping
 * of a KSM page (forks included), the stable node holds no reference, and
 * validate's census agrees with the figures at every step.
 */
#include <signal.h>
#include <unistd.h>

#include <umm/umm.h>

#define FIX_VALIDATE	VALIDATE_ALL
#include "tap.h"
#include "fixture.h"

#define MB		(1ULL << 20)

static bool kmachine(struct umm **u, unsigned int threads, unsigned int max_sharing)
{
	struct umm_ksm_params p;

	ASSERT_OK(make_machine(64 * MB, 1, 0, u));
	ASSERT_OK(umm_ksm_get_params(*u, &p));
	p.nr_threads = threads;
	p.max_page_sharing = max_sharing;
	p.smart_scan = false;
	ASSERT_OK(umm_ksm_set_params(*u, &p));
	return true;
}

static struct umm_ksm_stats kstats(struct umm *u)
{
	struct umm_ksm_stats s;

	umm_ksm_get_stats(u, &s);
	return s;
}

/* Validate, exit the @n mms of @mm, then machine_done(). */
static bool mms_done(struct umm *u, struct umm_mm **mm, int n)
{
	ASSERT_TRUE(machine_valid(u));
	for (int i = 0; i < n; i++)
		umm_mm_exit(mm[i]);
	return machine_done(u);
}

/* @n pages at BASE: page i holds byte content[i % nc]; MADV_MERGEABLE. */
static bool map_contents(struct umm_mm *mm, uint64_t n, const uint8_t *content, unsigned int nc)
{
	uint8_t buf[PS];

	ASSERT_OK(map_at(mm, AT(0), n, RW, PRIV));
	for (uint64_t i = 0; i < n; i++) {
		memset(buf, content[i % nc], PS);
		ASSERT_EQ(umm_write(mm, AT(i), buf, PS), PS);
	}
	ASSERT_OK(umm_madvise(mm, AT(0), PG(n), UMM_MADV_MERGEABLE));
	return true;
}

/* kmachine(), one mm, and map_contents() in it. */
static bool kfix_init(struct fix *f, unsigned int threads, unsigned int max_sharing, uint64_t n,
		      const uint8_t *content, unsigned int nc)
{
	f->mm = NULL;
	ASSERT_TRUE(kmachine(&f->u, threads, max_sharing));
	ASSERT_OK(umm_mm_create(f->u, &f->mm));
	return map_contents(f->mm, n, content, nc);
}

/* kmachine(1, 256) and two mms, @x then @y, each with one page of byte @c. */
static bool kpair(struct umm **u, uint8_t c, struct umm_mm **x, struct umm_mm **y)
{
	ASSERT_TRUE(kmachine(u, 1, 256));
	ASSERT_OK(umm_mm_create(*u, x));
	ASSERT_OK(umm_mm_create(*u, y));
	ASSERT_TRUE(map_contents(*x, 1, &c, 1));
	return map_contents(*y, 1, &c, 1);
}

/* Do the KSM figures of @u read @shared pages shared and @sharing sharing? */
static bool ksm_merged(struct umm *u, unsigned long shared, unsigned long sharing)
{
	ASSERT_EQ(kstats(u).pages_shared, shared);
	ASSERT_EQ(kstats(u).pages_sharing, sharing);
	return true;
}

/*
 * Start ksmd, with no sleep between batches of @pages_to_scan pages; the
 * parameters set are left in @p.
 */
static bool ksmd_start(struct umm *u, unsigned long pages_to_scan, struct umm_ksm_params *p)
{
	ASSERT_OK(umm_ksm_get_params(u, p));
	p->pages_to_scan = pages_to_scan;
	p->sleep_millisecs = 0;
	ASSERT_OK(umm_ksm_set_params(u, p));
	ASSERT_OK(umm_ksm_set_run(u, 1));
	return true;
}

/*
 * A new mm, @i of a set, with @n pages of a mix of contents: some unique to
 * it (5..7, shifted by 10 * @i), some shared a few ways across the set, one
 * (1) by a third of all pages.
 */
static bool map_mixed(struct umm *u, struct umm_mm **mm, int i, unsigned long n)
{
	static const uint8_t contents[] = { 1, 2, 3, 1, 2, 4, 1, 1, 5, 6, 7, 1 };
	uint8_t c[12];

	for (int j = 0; j < 12; j++)
		c[j] = contents[j] >= 5 ? (uint8_t)(contents[j] + 10 * i) : contents[j];
	ASSERT_OK(umm_mm_create(u, mm));
	return map_contents(*mm, n, c, 12);
}

/* Four mixed mms (chains with max_page_sharing 16): two full scans with @threads threads. */
static bool mixed_run(unsigned int threads, struct umm_ksm_stats *out)
{
	struct umm_mm *mm[4];
	struct umm *u;

	ASSERT_TRUE(kmachine(&u, threads, 16));
	for (int i = 0; i < 4; i++)
		ASSERT_TRUE(map_mixed(u, &mm[i], i, tap_short() ? 96 : 480));
	ASSERT_OK(umm_ksm_full_scans(u, 2));
	umm_ksm_get_stats(u, out);
	return mms_done(u, mm, 4);
}

/*
 * The same with smart scan, forks and pages that change between scans:
 * each mm forks a child after the first scans, then the parents rewrite a
 * quarter of their pages (a third of those with another mm's contents);
 * six full scans with @threads threads.
 */
static bool family_run(unsigned int threads, struct umm_ksm_stats *out)
{
	struct umm_mm *mm[6];
	struct umm_ksm_params p;
	unsigned long n = tap_short() ? 48 : 240;
	struct umm *u;

	ASSERT_TRUE(kmachine(&u, threads, 8));
	ASSERT_OK(umm_ksm_get_params(u, &p));
	p.smart_scan = true;
	ASSERT_OK(umm_ksm_set_params(u, &p));
	for (int i = 0; i < 3; i++)
		ASSERT_TRUE(map_mixed(u, &mm[i], i, n));
	ASSERT_OK(umm_ksm_full_scans(u, 4));
	for (int i = 0; i < 3; i++) {
		uint8_t b[PS];

		ASSERT_OK(umm_mm_fork(mm[i], &mm[3 + i]));
		for (unsigned long pg = i; pg < n; pg += 4) {
			/* shared with other rewrites, another mm's, or unique (ages, skipped) */
			memset(b, pg % 3 == 1 ? 0x80 + (int)pg % 7 :
				  pg % 3 ? 0xc0 : 10 * ((i + 1) % 3) + 5, PS);
			b[0] = (uint8_t)i;
			b[1] = (uint8_t)pg;
			if (pg % 3 != 2)
				b[0] = b[1] = b[2];
			ASSERT_EQ(umm_write(mm[i], AT(pg), b, PS), PS);
		}
	}
	ASSERT_OK(umm_ksm_full_scans(u, 6));
	umm_ksm_get_stats(u, out);
	return mms_done(u, mm, 6);
}

/* Does a run with several threads give the merge figures of the run with one? */
static bool same_merges(const struct umm_ksm_stats *many, const struct umm_ksm_stats *one)
{
	ASSERT_EQ(many->pages_shared, one->pages_shared);
	ASSERT_EQ(many->pages_sharing, one->pages_sharing);
	ASSERT_EQ(many->pages_unshared, one->pages_unshared);
	ASSERT_EQ(many->stable_node_chains, one->stable_node_chains);
	ASSERT_EQ(many->stable_node_dups, one->stable_node_dups);
	return true;
}

/* nr_threads 1, 3 with smart scan, forks and changing pages: the same figures. */
static bool test_threads_same_counts_family(void)
{
	struct umm_ksm_stats one, many;

	ASSERT_TRUE(family_run(1, &one));
	ASSERT_GE(one.pages_skipped, 1);
	ASSERT_TRUE(family_run(3, &many));
	ASSERT_TRUE(same_merges(&many, &one));
	ASSERT_EQ(many.pages_volatile, one.pages_volatile);
	ASSERT_EQ(many.pages_skipped, one.pages_skipped);
	ASSERT_EQ(many.pages_scanned, one.pages_scanned);
	return true;
}

/* nr_threads 1, 2, 4: the same figures. */
static bool test_threads_same_counts(void)
{
	struct umm_ksm_stats one, many;

	ASSERT_TRUE(mixed_run(1, &one));
	ASSERT_GE(one.pages_shared, 4);
	ASSERT_GE(one.stable_node_chains, 1);
	for (unsigned int t = 2; t <= 4; t += 2) {
		ASSERT_TRUE(mixed_run(t, &many));
		ASSERT_TRUE(same_merges(&many, &one));
	}
	return true;
}

/* Do @u's figures read @shared, @sharing, @chains chains and @dups dups? */
static bool chained(struct umm *u, unsigned long shared, unsigned long sharing,
		    unsigned long chains, unsigned long dups)
{
	struct umm_ksm_stats s = kstats(u);

	ASSERT_EQ(s.pages_shared, shared);
	ASSERT_EQ(s.pages_sharing, sharing);
	ASSERT_EQ(s.stable_node_chains, chains);
	ASSERT_EQ(s.stable_node_dups, dups);
	return true;
}

/*
 * max_page_sharing 2 over 6 identical pages: three dups in one chain; when
 * all but one mapping of the content are gone and the prune interval has
 * passed, the chain collapses back into a plain node.
 */
static bool test_chain_collapse(void)
{
	static const uint8_t c = 0x42;
	struct umm_ksm_params p;
	struct fix f;
	uint8_t one;

	ASSERT_TRUE(kfix_init(&f, 1, 2, 6, &c, 1));
	ASSERT_OK(umm_ksm_full_scans(f.u, 2));
	ASSERT_TRUE(chained(f.u, 3, 3, 1, 3));
	ASSERT_TRUE(machine_valid(f.u));

	/* keep only page 0 mapped to the content: the other dups go stale */
	for (int i = 1; i < 6; i++) {
		one = (uint8_t)i;	/* all different */
		ASSERT_EQ(umm_write(f.mm, AT(i), &one, 1), 1);
	}
	ASSERT_OK(umm_ksm_get_params(f.u, &p));
	p.stable_node_chains_prune_millisecs = 0;
	ASSERT_OK(umm_ksm_set_params(f.u, &p));
	/* one scan drops the changed pages' items, the next one's prune collapses */
	ASSERT_OK(umm_ksm_full_scans(f.u, 2));
	ASSERT_TRUE(chained(f.u, 1, 0, 0, 0));
	ASSERT_TRUE(machine_valid(f.u));
	return fix_fini(&f);
}

/*
 * A KSM page mapped by two mms and, after fork, by their children: the
 * rmap walk finds all four mappings (validate RMAP checks every frame), the
 * page's refcount is exactly its mapcount (the stable node holds none), and
 * a child's ksm_merging_pages stays 0 until the child is scanned.
 */
static bool test_rmap_walk_ksm(void)
{
	struct umm_mm *a, *b, *ca, *cb;
	struct umm_mm_ksm_stat st;
	struct umm_pageinfo pi;
	struct umm *u;
	static const uint8_t c = 0x77;

	ASSERT_TRUE(kpair(&u, c, &a, &b));
	ASSERT_OK(umm_ksm_full_scans(u, 2));
	ASSERT_TRUE(ksm_merged(u, 1, 1));
	ASSERT_OK(umm_mm_fork(a, &ca));
	ASSERT_OK(umm_mm_fork(b, &cb));
	umm_mm_get_ksm_stat(ca, &st);
	ASSERT_EQ(st.ksm_merging_pages, 0);
	ASSERT_OK(umm_pagemap(ca, AT(0), &pi));
	ASSERT_TRUE(pi.flags & UMM_PI_KSM);
	ASSERT_EQ(pi.mapcount, 4);
	ASSERT_EQ(pi.refcount, 4);
	ASSERT_EQ(umm_page_rmap_count(a, AT(0)), 4);
	ASSERT_GE(umm_page_referenced(cb, AT(0)), 0);	/* clears every young bit */
	ASSERT_EQ(byte_at(a, AT(0)), c);
	ASSERT_EQ(byte_at(cb, AT(0)), c);
	ASSERT_EQ(umm_page_referenced(ca, AT(0)), 2);
	ASSERT_TRUE(machine_valid(u));
	/* the children join the node when scanned */
	ASSERT_OK(umm_ksm_full_scans(u, 1));
	umm_mm_get_ksm_stat(ca, &st);
	ASSERT_EQ(st.ksm_merging_pages, 1);
	ASSERT_EQ(kstats(u).pages_sharing, 3);
	ASSERT_EQ(umm_page_rmap_count(cb, AT(0)), 4);
	ASSERT_TRUE(machine_valid(u));
	/* a parent exits: its item goes at the next scan, the rest stay merged */
	umm_mm_exit(a);
	ASSERT_OK(umm_ksm_full_scans(u, 1));
	ASSERT_EQ(kstats(u).pages_sharing, 2);
	ASSERT_EQ(umm_page_rmap_count(ca, AT(0)), 3);
	return mms_done(u, (struct umm_mm *[]){ b, ca, cb }, 3);
}

/* The advisor owns pages_to_scan; its bounds hold after a scan. */
static bool test_advisor(void)
{
	static const uint8_t c[2] = { 9, 10 };
	struct umm_ksm_params p;
	struct fix f;

	ASSERT_TRUE(kfix_init(&f, 1, 256, 64, c, 2));
	ASSERT_OK(umm_ksm_get_params(f.u, &p));
	p.advisor_mode = UMM_KSM_ADVISOR_SCAN_TIME;
	p.advisor_min_pages_to_scan = 50;
	p.advisor_max_pages_to_scan = 70;
	ASSERT_OK(umm_ksm_set_params(f.u, &p));
	ASSERT_OK(umm_ksm_get_params(f.u, &p));
	ASSERT_EQ(p.pages_to_scan, 50);
	p.pages_to_scan = 1000;
	ASSERT_ERR(umm_ksm_set_params(f.u, &p), EINVAL);
	ASSERT_OK(umm_ksm_full_scans(f.u, 3));
	ASSERT_OK(umm_ksm_get_params(f.u, &p));
	ASSERT_GE(p.pages_to_scan, 50);
	ASSERT_GE(70, p.pages_to_scan);
	p.advisor_mode = UMM_KSM_ADVISOR_NONE;
	ASSERT_OK(umm_ksm_set_params(f.u, &p));
	ASSERT_OK(umm_ksm_get_params(f.u, &p));
	ASSERT_EQ(p.pages_to_scan, 100);
	p.advisor_target_scan_time = 0;
	ASSERT_ERR(umm_ksm_set_params(f.u, &p), EINVAL);
	return fix_fini(&f);
}

/* ksmd with several threads merges by itself; run 2 undoes everything. */
static bool test_ksmd_threads(void)
{
	static const uint8_t c = 0x31;
	struct umm_ksm_params p;
	struct umm_ksm_stats s;
	struct fix f;
	unsigned long n = tap_short() ? 64 : 1024;

	ASSERT_TRUE(kfix_init(&f, 3, 256, n, &c, 1));
	ASSERT_TRUE(ksmd_start(f.u, n, &p));
	for (int i = 0; i < 100000; i++) {
		s = kstats(f.u);
		if (s.pages_shared + s.pages_sharing == n)
			break;
		usleep(1000);
	}
	ASSERT_OK(umm_ksm_set_run(f.u, 0));
	s = kstats(f.u);
	ASSERT_EQ(s.pages_shared, (n + 255) / 256);
	ASSERT_EQ(s.pages_sharing, n - (n + 255) / 256);
	ASSERT_TRUE(machine_valid(f.u));
	ASSERT_OK(umm_ksm_set_run(f.u, 2));
	s = kstats(f.u);
	ASSERT_EQ(s.pages_shared, 0);
	ASSERT_EQ(s.pages_sharing, 0);
	ASSERT_EQ(s.full_scans, 0);
	ASSERT_TRUE(machine_valid(f.u));
	return fix_fini(&f);
}

static void starved(int sig)
{
	static const char msg[] = "# a knob or umm_ksm_scan() waited 60 s for a busy ksmd\n";

	(void)sig;
	if (write(STDOUT_FILENO, msg, sizeof(msg) - 1) < 0)
		_exit(2);
	_exit(1);
}

/*
 * While ksmd scans back to back (sleep_millisecs 0, a long pages_to_scan),
 * the knobs and umm_ksm_scan() still get their turn: ksmd stands back for a
 * waiter instead of retaking its mutex the moment it lets go.
 */
static bool test_knobs_while_ksmd_busy(void)
{
	uint8_t c[64];
	struct umm_ksm_params p;
	struct fix f;
	unsigned long n = 4096;

	for (unsigned int i = 0; i < 64; i++)
		c[i] = (uint8_t)(i + 1);
	ASSERT_TRUE(kfix_init(&f, 1, 256, n, c, 64));
	ASSERT_TRUE(ksmd_start(f.u, 4 * n, &p));
	signal(SIGALRM, starved);
	alarm(60);
	for (int i = 0; i < 20; i++) {
		usleep(2000);
		p.pages_to_scan = 4 * n + (unsigned int)(i & 1);
		ASSERT_OK(umm_ksm_set_params(f.u, &p));
		ASSERT_OK(umm_ksm_scan(f.u, 1));
	}
	ASSERT_OK(umm_ksm_set_run(f.u, 0));
	alarm(0);
	signal(SIGALRM, SIG_DFL);
	ASSERT_TRUE(machine_valid(f.u));
	return fix_fini(&f);
}

/*
 * As on Linux, the figures count rmap_items, not PTEs: a page shared with a
 * fork child that becomes a KSM page after the child's slot was visited in
 * this scan is mapped by the child without being counted until the child's
 * next visit.  Slots: [Q A] -> fork of A while the cursor is in Q puts the
 * child B behind the cursor: [B Q A].  Scan 2 visits B (page not KSM yet),
 * then Q, then A, which merges A's page (also B's) with Q's.
 */
static bool test_fork_child_counted_next_scan(void)
{
	static const uint8_t c = 0x66;
	struct umm_mm *q, *a, *b;
	struct umm_mm_ksm_stat st;
	struct umm_pageinfo pi;
	struct umm *u;

	ASSERT_TRUE(kpair(&u, c, &q, &a));
	ASSERT_OK(umm_ksm_scan(u, 1));		/* the cursor is in Q */
	ASSERT_OK(umm_mm_fork(a, &b));
	ASSERT_OK(umm_ksm_full_scans(u, 1));	/* ends scan 1 */
	ASSERT_OK(umm_ksm_full_scans(u, 1));	/* scan 2: B, Q, A */
	ASSERT_TRUE(ksm_merged(u, 1, 1));
	ASSERT_OK(umm_pagemap(b, AT(0), &pi));
	ASSERT_TRUE(pi.flags & UMM_PI_KSM);
	umm_mm_get_ksm_stat(b, &st);
	ASSERT_EQ(st.ksm_merging_pages, 0);
	ASSERT_TRUE(machine_valid(u));
	ASSERT_OK(umm_ksm_full_scans(u, 1));
	umm_mm_get_ksm_stat(b, &st);
	ASSERT_EQ(st.ksm_merging_pages, 1);
	ASSERT_EQ(kstats(u).pages_sharing, 2);
	return mms_done(u, (struct umm_mm *[]){ q, a, b }, 3);
}

/*
 * A page still COW-shared with a fork that moved to another merge domain
 * must not become a KSM page in place: Q and A (domain 0) merge the other
 * way round (Q's page becomes the KSM page), and B (domain 1) keeps the
 * page it shares with nobody else now.
 */
static bool test_domain_fork_shared(void)
{
	static const uint8_t c = 0x5d;
	struct umm_mm *q, *a, *b;
	struct umm_pageinfo pa, pb, pq;
	struct umm *u;

	ASSERT_TRUE(kpair(&u, c, &q, &a));
	ASSERT_OK(umm_mm_fork(a, &b));
	ASSERT_OK(umm_mm_set_ksm_domain(b, 1));
	ASSERT_OK(umm_ksm_full_scans(u, 2));
	ASSERT_TRUE(ksm_merged(u, 1, 1));
	ASSERT_OK(umm_pagemap(q, AT(0), &pq));
	ASSERT_OK(umm_pagemap(a, AT(0), &pa));
	ASSERT_OK(umm_pagemap(b, AT(0), &pb));
	ASSERT_EQ(pa.pfn, pq.pfn);
	ASSERT_NE(pb.pfn, pa.pfn);
	ASSERT_FALSE(pb.flags & UMM_PI_KSM);
	return mms_done(u, (struct umm_mm *[]){ q, a, b }, 3);
}

int main(void)
{
	RUN_TEST(test_threads_same_counts);
	RUN_TEST(test_threads_same_counts_family);
	RUN_TEST(test_chain_collapse);
	RUN_TEST(test_rmap_walk_ksm);
	RUN_TEST(test_advisor);
	RUN_TEST(test_ksmd_threads);
	RUN_TEST(test_knobs_while_ksmd_busy);
	RUN_TEST(test_fork_child_counted_next_scan);
	RUN_TEST(test_domain_fork_shared);
	return tap_done();
}
