// SPDX-License-Identifier: MIT
/*
 * t_ksm.c - same-page merging against the counts Linux's own KSM selftests
 * expect (tools/testing/selftests/mm/ksm_tests.c and
 * ksm_functional_tests.c), scenario by scenario, plus umm's merge domains.
 *
 *   ksm_tests -M   merge: N identical pages, with and without a
 *                  max_page_sharing limit (chains of duplicates)
 *   ksm_tests -U   a write to each merged page unmerges it
 *   ksm_tests -Z   use_zero_pages on and off
 *   ksm_tests -N   merge_across_nodes 0 and 1 on a machine of two nodes
 *   ksm_tests -C   COW after merge, one sharing at a time
 *   ksm_tests -D   run = 2 unmerges everything
 *   functional     MADV_UNMERGEABLE, unmerge of KSM zero pages, unmerge
 *                  after DONTNEED, PROT_NONE, merge-any on and off, fork
 *                  inheritance of merge-any, a forked child's
 *                  ksm_merging_pages of 0, the profit formulas, the knobs'
 *                  -EINVAL/-EBUSY
 *   more           two full scans are needed (checksum stability), a page
 *                  with an extra reference is not merged, merge domains
 *
 * Scanning is deterministic: ksmd stays off (run 0) and the test steps the
 * scanner on its own thread with umm_ksm_scan() until full_scans has grown
 * by the number of passes the scenario needs, as the selftests wait for
 * two full scans.  After every scenario the figures of umm_ksm_get_stats()
 * and umm_mm_get_ksm_stat() must equal what a walk of umm_pagemap() finds
 * (KSM pfns, their mappings, zero-page mappings; see walk_check()), the
 * profit figures must follow Linux's formulas, and umm_validate(EXACT |
 * RMAP) must hold.
 *
 * Layouts: every mm maps its pages at BASE (fixture.h); "AAAA" is one VMA
 * of 4 pages.
 */
#include <pthread.h>
#include <sched.h>

#include <umm/umm.h>

#define FIX_VALIDATE	VALIDATE_ALL
#include "tap.h"
#include "fixture.h"

#define MAXMM	8
#define KPHYS	(16 << 20)

/* ---- machine, knobs, scans ---- */

/* A machine of @nodes nodes with ksmd stopped: scans happen when we say so. */
static bool kmachine(struct umm **u, unsigned int nodes)
{
	ASSERT_OK(make_machine(KPHYS, nodes, 0, u));
	ASSERT_OK(umm_ksm_set_run(*u, 0));
	return true;
}

static struct umm_ksm_stats kstats(struct umm *u)
{
	struct umm_ksm_stats s;

	memset(&s, 0xff, sizeof(s));
	umm_ksm_get_stats(u, &s);
	return s;
}

static struct umm_mm_ksm_stat kstat_mm(struct umm_mm *mm)
{
	struct umm_mm_ksm_stat st;

	memset(&st, 0xff, sizeof(st));
	umm_mm_get_ksm_stat(mm, &st);
	return st;
}

enum knob { MAX_PAGE_SHARING, MERGE_ACROSS_NODES, USE_ZERO_PAGES, SMART_SCAN };

/* Change one knob, leaving the others as they are: 0 or -errno. */
static int set_knob(struct umm *u, enum knob k, unsigned int v)
{
	struct umm_ksm_params p;
	int r = umm_ksm_get_params(u, &p);

	if (r)
		return r;
	switch (k) {
	case MAX_PAGE_SHARING:
		p.max_page_sharing = v;
		break;
	case MERGE_ACROSS_NODES:
		p.merge_across_nodes = v;
		break;
	case USE_ZERO_PAGES:
		p.use_zero_pages = v;
		break;
	case SMART_SCAN:
		p.smart_scan = v;
		break;
	}
	return umm_ksm_set_params(u, &p);
}

/*
 * Step the scanner on this thread until @n more full scans are done.  A
 * call of umm_ksm_scan() stops at the end of a pass (as ksm_do_scan()
 * does), so no pass is overshot by more than a few pages.
 */
static bool scan_passes(struct umm *u, unsigned int n)
{
	unsigned long want = kstats(u).full_scans + n;

	for (long i = 0; i < 4000000; i++) {
		int r;

		if (kstats(u).full_scans >= want)
			return true;
		r = umm_ksm_scan(u, 16);
		if (r < 0) {
			TAP_DIAG("umm_ksm_scan() = %d (%s)", r, strerror(-r));
			return false;
		}
	}
	TAP_DIAG("full_scans stuck at %lu, wanted %lu", kstats(u).full_scans, want);
	return false;
}

/* ---- contents ---- */

/* Write @n pages at @addr, each filled with byte @c. */
static bool fill(struct umm_mm *mm, uint64_t addr, uint64_t n, int c)
{
	uint8_t buf[PS];

	memset(buf, c, PS);
	for (uint64_t i = 0; i < n; i++) {
		ssize_t r = umm_write(mm, addr + PG(i), buf, PS);

		if (r != PS) {
			TAP_DIAG("umm_write(%#" PRIx64 ") = %zd", addr + PG(i), r);
			return false;
		}
	}
	return true;
}

/* Do the @n pages at @addr hold byte @c everywhere? */
static bool filled(struct umm_mm *mm, uint64_t addr, uint64_t n, int c)
{
	uint8_t buf[PS], want[PS];

	memset(want, c, PS);
	for (uint64_t i = 0; i < n; i++) {
		ssize_t r = umm_read(mm, addr + PG(i), buf, PS);

		if (r != PS) {
			TAP_DIAG("umm_read(%#" PRIx64 ") = %zd", addr + PG(i), r);
			return false;
		}
		if (memcmp(buf, want, PS)) {
			TAP_DIAG("page %#" PRIx64 " does not hold %#x everywhere", addr + PG(i), c);
			return false;
		}
	}
	return true;
}

/* @n pages at BASE in @mm, filled with @c, MADV_MERGEABLE. */
static bool map_mergeable(struct umm_mm *mm, uint64_t n, int c)
{
	ASSERT_OK(map_at(mm, AT(0), n, RW, PRIV));
	ASSERT_TRUE(fill(mm, AT(0), n, c));
	ASSERT_OK(umm_madvise(mm, AT(0), PG(n), UMM_MADV_MERGEABLE));
	return true;
}

/* The figures Linux's assert_ksm_pages_count() accepts for @n identical pages. */
static void merge_expect(unsigned long n, unsigned long mps, unsigned long *shared,
			 unsigned long *sharing, unsigned long *unshared)
{
	unsigned long rest = n % mps;

	/* each duplicate holds up to mps mappings; a lone leftover stays unmerged */
	*shared = n / mps + (rest >= 2);
	*unshared = rest == 1;
	*sharing = n - *shared - *unshared;
}

/* A machine whose one mm has @n pages of @c at BASE, merged (two scans). */
static bool merged_mm(struct umm **u, struct umm_mm **mm, unsigned long n, int c)
{
	unsigned long shared, sharing, unshared;

	ASSERT_TRUE(kmachine(u, 1));
	ASSERT_OK(umm_mm_create(*u, mm));
	ASSERT_TRUE(map_mergeable(*mm, n, c));
	merge_expect(n, 256, &shared, &sharing, &unshared);
	ASSERT_TRUE(scan_passes(*u, 2));
	ASSERT_EQ(kstats(*u).pages_shared, shared);
	ASSERT_EQ(kstats(*u).pages_sharing, sharing);
	return true;
}

/* ---- the walk: what pagemap says the figures must be ---- */

struct walk {
	unsigned long shared, sharing, zero;	/* machine-wide */
	unsigned long merging[MAXMM], zero_mm[MAXMM];
};

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/*
 * Walk every mergeable VMA of the @nr mms: a KSM page's pfn counts once in
 * "shared" and every further mapping of it in "sharing"; a mapping of the
 * zero frame counts as a KSM zero page when @zero_is_ksm (the test wrote
 * every page it maps, so only KSM can have put the zero frame there).
 * Linux's figures count rmap items, and only mergeable VMAs get them: a
 * page a fork left shared with a VMA that is no longer mergeable can
 * become a KSM page there too (merged in place from the other side), and
 * is in no figure.
 */
static bool walk(struct umm_mm **mms, int nr, bool zero_is_ksm, struct walk *w)
{
	size_t cap = 1024, n = 0;
	uint64_t *pfns = malloc(cap * sizeof(*pfns));

	memset(w, 0, sizeof(*w));
	ASSERT_TRUE(pfns);
	for (int i = 0; i < nr; i++) {
		struct umm_vma_info vi;
		uint64_t addr = 0;

		while (umm_mm_vma_next(mms[i], addr, &vi) == 0) {
			for (uint64_t a = vi.start; a < vi.end && vi.mergeable; a += PS) {
				struct umm_pageinfo pi = pinfo(mms[i], a);

				if (!(pi.flags & UMM_PI_PRESENT))
					continue;
				if (pi.flags & UMM_PI_KSM) {
					w->merging[i]++;
					if (n == cap) {
						uint64_t *p = realloc(pfns, 2 * cap * sizeof(*pfns));

						if (!p) {
							free(pfns);
							return false;
						}
						pfns = p;
						cap *= 2;
					}
					pfns[n++] = pi.pfn;
				} else if ((pi.flags & UMM_PI_ZERO) && zero_is_ksm) {
					w->zero_mm[i]++;
					w->zero++;
				}
			}
			addr = vi.end;
		}
	}
	qsort(pfns, n, sizeof(*pfns), cmp_u64);
	for (size_t k = 0; k < n; k++)
		if (k == 0 || pfns[k] != pfns[k - 1])
			w->shared++;
	w->sharing = n - w->shared;
	free(pfns);
	return true;
}

/*
 * The figures against the walk and against each other, then umm_validate().
 * Context: at least one full scan since the last change (Linux, too, only
 * drops the rmap item of a page that was COW-broken when it scans it).
 *
 * Profit: Linux's general_profit is (pages_sharing + ksm_zero_pages) *
 * PAGE_SIZE - rmap_items * sizeof(rmap_item), ksm_process_profit the same
 * with the mm's ksm_merging_pages and its own items.  The item size is the
 * engine's business: it must be one positive size for all of them.
 */
static bool walk_check(struct umm *u, struct umm_mm **mms, int nr, bool zero_is_ksm)
{
	struct umm_ksm_stats s = kstats(u);
	unsigned long items = 0;
	long item_size = 0;
	struct walk w;

	ASSERT_TRUE(walk(mms, nr, zero_is_ksm, &w));
	ASSERT_EQ(s.pages_shared, w.shared);
	ASSERT_EQ(s.pages_sharing, w.sharing);
	if (zero_is_ksm)
		ASSERT_EQ(s.ksm_zero_pages, w.zero);
	for (int i = 0; i < nr; i++) {
		struct umm_mm_ksm_stat st = kstat_mm(mms[i]);
		long gain;

		ASSERT_EQ(st.ksm_merging_pages, w.merging[i]);
		if (zero_is_ksm)
			ASSERT_EQ(st.ksm_zero_pages, w.zero_mm[i]);
		ASSERT_GE(st.ksm_rmap_items, st.ksm_merging_pages);
		items += st.ksm_rmap_items;
		gain = (long)(st.ksm_merging_pages + st.ksm_zero_pages) * PS;
		if (!st.ksm_rmap_items) {
			ASSERT_EQ(st.ksm_process_profit, gain);
			continue;
		}
		if ((gain - st.ksm_process_profit) % (long)st.ksm_rmap_items) {
			TAP_DIAG("mm %d: profit %ld is not (%lu + %lu) pages - %lu items of one size",
				 i, st.ksm_process_profit, st.ksm_merging_pages,
				 st.ksm_zero_pages, st.ksm_rmap_items);
			return false;
		}
		if (!item_size)
			item_size = (gain - st.ksm_process_profit) / (long)st.ksm_rmap_items;
		ASSERT_EQ((gain - st.ksm_process_profit) / (long)st.ksm_rmap_items, item_size);
	}
	ASSERT_TRUE(item_size >= 0);
	if (items)
		ASSERT_TRUE(item_size > 0);
	ASSERT_EQ(s.general_profit,
		  (long)(s.pages_sharing + s.ksm_zero_pages) * PS - (long)items * item_size);
	ASSERT_GE(items, s.pages_shared + s.pages_sharing + s.pages_unshared);
	ASSERT_EQ(s.pages_volatile, items - s.pages_shared - s.pages_sharing - s.pages_unshared);
	ASSERT_TRUE(machine_valid(u));
	return true;
}

/* No two pages of the @n at @addr in @mm share a frame, none is a KSM page. */
static bool no_duplicates(struct umm_mm *mm, uint64_t addr, uint64_t n)
{
	uint64_t *pfns = calloc(n, sizeof(*pfns));
	uint64_t k = 0;
	bool ok = true;

	ASSERT_TRUE(pfns);
	for (uint64_t i = 0; i < n; i++) {
		struct umm_pageinfo pi = pinfo(mm, addr + PG(i));

		if (pi.flags & UMM_PI_KSM) {
			TAP_DIAG("page %#" PRIx64 " is still a KSM page", addr + PG(i));
			ok = false;
		}
		if ((pi.flags & UMM_PI_PRESENT) && !(pi.flags & UMM_PI_ZERO))
			pfns[k++] = pi.pfn;
	}
	qsort(pfns, k, sizeof(*pfns), cmp_u64);
	for (uint64_t i = 1; i < k; i++)
		if (pfns[i] == pfns[i - 1]) {
			TAP_DIAG("pfn %" PRIu64 " is mapped twice", pfns[i]);
			ok = false;
			break;
		}
	free(pfns);
	return ok;
}

static bool ksm_done(struct umm *u, struct umm_mm **mms, int nr)
{
	for (int i = 0; i < nr; i++)
		if (mms[i])
			umm_mm_exit(mms[i]);
	return machine_done(u);
}

/* ---- ksm_tests -M: merge ---- */

/*
 * @nmm mms with @n pages of '*' each ("AAAA...") and max_page_sharing
 * @mps (0: leave the default): after two full scans the counts are those
 * of assert_ksm_pages_count(nmm * n), and a limited chain of duplicates
 * shows in stable_node_chains and stable_node_dups.
 */
static bool merge_case(int nmm, unsigned long n, unsigned int mps)
{
	struct umm_mm *mm[MAXMM];
	unsigned long shared, sharing, unshared, total = (unsigned long)nmm * n;
	struct umm_ksm_params p;
	struct umm_ksm_stats s;
	struct umm *u;

	ASSERT_TRUE(kmachine(&u, 1));
	if (mps)
		ASSERT_OK(set_knob(u, MAX_PAGE_SHARING, mps));
	ASSERT_OK(umm_ksm_get_params(u, &p));
	for (int i = 0; i < nmm; i++) {
		ASSERT_OK(umm_mm_create(u, &mm[i]));
		ASSERT_TRUE(map_mergeable(mm[i], n, '*'));
	}
	ASSERT_TRUE(scan_passes(u, 2));
	merge_expect(total, p.max_page_sharing, &shared, &sharing, &unshared);
	s = kstats(u);
	if (s.pages_shared != shared || s.pages_sharing != sharing) {
		TAP_DIAG("%d mm(s) x %lu pages, max_page_sharing %u: shared %lu sharing %lu, "
			 "Linux: %lu %lu", nmm, n, p.max_page_sharing, s.pages_shared,
			 s.pages_sharing, shared, sharing);
		return false;
	}
	ASSERT_EQ(s.pages_unshared, unshared);
	ASSERT_EQ(s.stable_node_chains, shared >= 2 ? 1 : 0);
	ASSERT_EQ(s.stable_node_dups, shared >= 2 ? shared : 0);
	ASSERT_EQ(s.ksm_zero_pages, 0);
	for (int i = 0; i < nmm; i++) {
		ASSERT_EQ(kstat_mm(mm[i]).ksm_rmap_items, n);
		ASSERT_TRUE(kstat_mm(mm[i]).ksm_mergeable);
		ASSERT_TRUE(filled(mm[i], AT(0), n, '*'));
	}
	ASSERT_TRUE(walk_check(u, mm, nmm, true));
	return ksm_done(u, mm, nmm);
}

static bool test_merge(void)
{
	unsigned long n = tap_short() ? 64 : 512;

	ASSERT_TRUE(merge_case(1, n, 0));
	ASSERT_TRUE(merge_case(1, 2, 0));
	ASSERT_TRUE(merge_case(1, 1, 0));
	ASSERT_TRUE(merge_case(3, n / 4, 0));
	return true;
}

static bool test_merge_max_page_sharing(void)
{
	static const struct { unsigned long n; unsigned int mps; } c[] = {
		{ 2, 2 }, { 5, 2 }, { 6, 2 }, { 7, 3 }, { 8, 3 }, { 9, 3 },
		{ 25, 10 }, { 31, 10 }, { 40, 10 }, { 300, 256 }, { 513, 256 },
	};

	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++)
		ASSERT_TRUE(merge_case(1, c[i].n, c[i].mps));
	ASSERT_TRUE(merge_case(3, 7, 4));		/* chains across mms */
	return true;
}

/*
 * A page enters the unstable tree only when its checksum held across two
 * scans: after one pass nothing is merged; pages rewritten between pass 1
 * and 2 are volatile in pass 2 and merge (among themselves) in pass 3.
 *
 *   pass 1: "aaaaaaaa"   pass 2: "aaaabbbb"  ->  a merged, b volatile
 *   pass 3:                                  ->  a and b merged
 */
static bool test_two_scans_to_merge(void)
{
	struct umm_mm *mm;
	struct umm_ksm_stats s;
	struct umm *u;
	unsigned long n = 8;

	ASSERT_TRUE(kmachine(&u, 1));
	ASSERT_OK(umm_mm_create(u, &mm));
	ASSERT_TRUE(map_mergeable(mm, n, 'a'));
	ASSERT_TRUE(scan_passes(u, 1));
	s = kstats(u);
	ASSERT_EQ(s.pages_shared, 0);
	ASSERT_EQ(s.pages_sharing, 0);
	ASSERT_EQ(s.pages_volatile, n);
	ASSERT_TRUE(walk_check(u, &mm, 1, true));

	ASSERT_TRUE(fill(mm, AT(n / 2), n / 2, 'b'));
	ASSERT_TRUE(scan_passes(u, 1));
	s = kstats(u);
	ASSERT_EQ(s.pages_shared, 1);
	ASSERT_EQ(s.pages_sharing, n / 2 - 1);
	ASSERT_EQ(s.pages_volatile, n / 2);
	ASSERT_TRUE(walk_check(u, &mm, 1, true));

	ASSERT_TRUE(scan_passes(u, 1));
	s = kstats(u);
	ASSERT_EQ(s.pages_shared, 2);
	ASSERT_EQ(s.pages_sharing, n - 2);
	ASSERT_EQ(s.pages_volatile, 0);
	ASSERT_NE(pinfo(mm, AT(0)).pfn, pinfo(mm, AT(n - 1)).pfn);
	ASSERT_TRUE(filled(mm, AT(0), n / 2, 'a'));
	ASSERT_TRUE(filled(mm, AT(n / 2), n / 2, 'b'));
	ASSERT_TRUE(walk_check(u, &mm, 1, true));
	return ksm_done(u, &mm, 1);
}

/* ---- ksm_tests -U: a write unmerges ---- */

/* "AA" merged; a byte written to each page; one scan later nothing is merged. */
static bool test_unmerge_by_write(void)
{
	struct umm_mm *mm;
	struct umm *u;
	uint8_t buf[PS];

	ASSERT_TRUE(merged_mm(&u, &mm, 2, '*'));
	ASSERT_TRUE(put_byte(mm, AT(0), '-'));
	ASSERT_TRUE(put_byte(mm, AT(1), '+'));
	ASSERT_TRUE(scan_passes(u, 1));
	ASSERT_EQ(kstats(u).pages_shared, 0);
	ASSERT_EQ(kstats(u).pages_sharing, 0);
	for (int i = 0; i < 2; i++) {
		ASSERT_EQ(umm_read(mm, AT(i), buf, PS), PS);
		ASSERT_EQ(buf[0], i ? '+' : '-');
		for (int k = 1; k < PS; k++)
			ASSERT_EQ(buf[k], '*');
	}
	ASSERT_TRUE(no_duplicates(mm, AT(0), 2));
	ASSERT_TRUE(walk_check(u, &mm, 1, true));
	return ksm_done(u, &mm, 1);
}

/* ---- functional: MADV_UNMERGEABLE ---- */

/*
 * "AAAAAAAA" merged; UNMERGEABLE on the first half splits the VMA
 * ("AAAABBBB"): the first half maps no KSM page at once, the second still
 * shares one; UNMERGEABLE on all leaves no duplicate anywhere.
 */
static bool test_unmerge_madvise(void)
{
	struct umm_mm *mm;
	struct umm *u;
	unsigned long n = tap_short() ? 16 : 256;

	ASSERT_TRUE(merged_mm(&u, &mm, n, 0xcf));

	ASSERT_OK(umm_madvise(mm, AT(0), PG(n / 2), UMM_MADV_UNMERGEABLE));
	ASSERT_TRUE(no_duplicates(mm, AT(0), n / 2));
	ASSERT_TRUE(pinfo(mm, AT(n / 2)).flags & UMM_PI_KSM);
	ASSERT_TRUE(filled(mm, AT(0), n, 0xcf));
	ASSERT_TRUE(scan_passes(u, 1));
	ASSERT_EQ(kstats(u).pages_shared, 1);
	ASSERT_EQ(kstats(u).pages_sharing, n / 2 - 1);
	ASSERT_EQ(kstat_mm(mm).ksm_merging_pages, n / 2);
	ASSERT_TRUE(walk_check(u, &mm, 1, true));

	ASSERT_OK(umm_madvise(mm, AT(0), PG(n), UMM_MADV_UNMERGEABLE));
	ASSERT_TRUE(no_duplicates(mm, AT(0), n));
	ASSERT_TRUE(filled(mm, AT(0), n, 0xcf));
	ASSERT_TRUE(scan_passes(u, 1));
	ASSERT_EQ(kstats(u).pages_shared, 0);
	ASSERT_EQ(kstats(u).pages_sharing, 0);
	ASSERT_TRUE(walk_check(u, &mm, 1, true));
	/* unmerged pages are private again: writes stay in their page */
	ASSERT_TRUE(put_byte(mm, AT(1), 1));
	ASSERT_EQ(byte_at(mm, AT(0)), 0xcf);
	ASSERT_EQ(byte_at(mm, AT(2)), 0xcf);
	return ksm_done(u, &mm, 1);
}

/* ---- ksm_tests -Z and functional unmerge of zero pages ---- */

/*
 * Pages written full of zeros: with use_zero_pages they map the zero frame
 * (ksm_zero_pages, no KSM page); without, they merge like any content.
 */
static bool zero_case(bool use_zero_pages, unsigned long n)
{
	struct umm_mm *mm;
	struct umm_ksm_stats s;
	struct umm *u;

	ASSERT_TRUE(kmachine(&u, 1));
	ASSERT_OK(set_knob(u, USE_ZERO_PAGES, use_zero_pages));
	ASSERT_OK(umm_mm_create(u, &mm));
	ASSERT_TRUE(map_mergeable(mm, n, 0));
	ASSERT_TRUE(scan_passes(u, 2));
	s = kstats(u);
	ASSERT_EQ(s.pages_shared, use_zero_pages ? 0 : 1);
	ASSERT_EQ(s.pages_sharing, use_zero_pages ? 0 : n - 1);
	ASSERT_EQ(s.ksm_zero_pages, use_zero_pages ? n : 0);
	ASSERT_EQ(kstat_mm(mm).ksm_zero_pages, use_zero_pages ? n : 0);
	ASSERT_EQ(kstat_mm(mm).ksm_merging_pages, use_zero_pages ? 0 : n);
	if (use_zero_pages)
		ASSERT_TRUE(pinfo(mm, AT(0)).flags & UMM_PI_ZERO);
	ASSERT_TRUE(zeros_at(mm, AT(0), n));
	ASSERT_TRUE(walk_check(u, &mm, 1, true));
	return ksm_done(u, &mm, 1);
}

static bool test_zero_pages(void)
{
	unsigned long n = tap_short() ? 32 : 256;

	ASSERT_TRUE(zero_case(true, n));
	ASSERT_TRUE(zero_case(false, n));
	return true;
}

/*
 * use_zero_pages: merged to the zero frame; UNMERGEABLE on the first half
 * gives those back at once (ksm_zero_pages halves, no scan needed), writes
 * to the second half take the rest; the first half reads zeros and takes
 * writes into pages of its own.
 */
static bool test_unmerge_zero_pages(void)
{
	struct umm_mm *mm;
	struct umm *u;
	unsigned long n = tap_short() ? 16 : 128;

	ASSERT_TRUE(kmachine(&u, 1));
	ASSERT_OK(set_knob(u, USE_ZERO_PAGES, 1));
	ASSERT_OK(umm_mm_create(u, &mm));
	ASSERT_TRUE(map_mergeable(mm, n, 0));
	ASSERT_TRUE(scan_passes(u, 2));
	ASSERT_EQ(kstat_mm(mm).ksm_zero_pages, n);
	ASSERT_EQ(kstats(u).ksm_zero_pages, n);

	ASSERT_OK(umm_madvise(mm, AT(0), PG(n / 2), UMM_MADV_UNMERGEABLE));
	ASSERT_EQ(kstat_mm(mm).ksm_zero_pages, n / 2);
	ASSERT_EQ(kstats(u).ksm_zero_pages, n / 2);
	for (unsigned long i = n / 2; i < n; i++) {
		uint64_t v = i;

		ASSERT_EQ(umm_write(mm, AT(i), &v, sizeof(v)), sizeof(v));
	}
	ASSERT_EQ(kstat_mm(mm).ksm_zero_pages, 0);
	ASSERT_EQ(kstats(u).ksm_zero_pages, 0);
	ASSERT_TRUE(zeros_at(mm, AT(0), n / 2));
	ASSERT_TRUE(no_duplicates(mm, AT(0), n));
	for (unsigned long i = 0; i < n / 2; i++)
		ASSERT_TRUE(put_byte(mm, AT(i) + 7, (uint8_t)(i + 1)));
	for (unsigned long i = 0; i < n; i++) {
		uint64_t v;

		ASSERT_EQ(umm_read(mm, AT(i), &v, sizeof(v)), sizeof(v));
		ASSERT_EQ(v, i < n / 2 ? (uint64_t)(uint8_t)(i + 1) << 56 : i);
	}
	ASSERT_TRUE(no_duplicates(mm, AT(0), n));
	ASSERT_TRUE(scan_passes(u, 1));
	ASSERT_TRUE(walk_check(u, &mm, 1, true));
	return ksm_done(u, &mm, 1);
}

/* ---- functional: unmerge after DONTNEED, PROT_NONE ---- */

/* Merged, DONTNEED on the first half (pte_none), UNMERGEABLE on all. */
static bool test_unmerge_discarded(void)
{
	struct umm_mm *mm;
	struct umm *u;
	unsigned long n = tap_short() ? 16 : 512;

	ASSERT_TRUE(merged_mm(&u, &mm, n, 0xcf));
	ASSERT_OK(umm_madvise(mm, AT(0), PG(n / 2), UMM_MADV_DONTNEED));
	ASSERT_EQ(pinfo(mm, AT(0)).flags, 0);
	ASSERT_OK(umm_madvise(mm, AT(0), PG(n), UMM_MADV_UNMERGEABLE));
	ASSERT_TRUE(no_duplicates(mm, AT(0), n));
	ASSERT_TRUE(scan_passes(u, 1));
	ASSERT_EQ(kstats(u).pages_shared, 0);
	ASSERT_EQ(kstats(u).pages_sharing, 0);
	ASSERT_TRUE(walk_check(u, &mm, 1, false));
	ASSERT_TRUE(filled(mm, AT(n / 2), n / 2, 0xcf));
	ASSERT_TRUE(zeros_at(mm, AT(0), n / 2));
	return ksm_done(u, &mm, 1);
}

/*
 * Pages filled, then PROT_NONE, then MERGEABLE: they merge as Linux merges
 * them (the scanner does not care about protection); a CPU access faults;
 * UNMERGEABLE still breaks every sharing; back to RW the bytes are there.
 */
static bool test_prot_none(void)
{
	struct umm_mm *mm;
	struct umm *u;
	unsigned long n = tap_short() ? 16 : 256;
	uint8_t b = 0;

	ASSERT_TRUE(kmachine(&u, 1));
	ASSERT_OK(umm_mm_create(u, &mm));
	ASSERT_OK(map_at(mm, AT(0), n, RW, PRIV));
	ASSERT_TRUE(fill(mm, AT(0), n, 0x11));
	ASSERT_OK(umm_mprotect(mm, AT(0), PG(n), UMM_PROT_NONE));
	ASSERT_OK(umm_madvise(mm, AT(0), PG(n), UMM_MADV_MERGEABLE));
	ASSERT_TRUE(scan_passes(u, 2));
	ASSERT_EQ(kstat_mm(mm).ksm_merging_pages, n);
	ASSERT_EQ(kstats(u).pages_sharing, n - 1);
	ASSERT_ERR(umm_read(mm, AT(0), &b, 1), EFAULT);
	ASSERT_ERR(umm_write(mm, AT(0), &b, 1), EFAULT);
	ASSERT_TRUE(walk_check(u, &mm, 1, true));

	ASSERT_OK(umm_madvise(mm, AT(0), PG(n), UMM_MADV_UNMERGEABLE));
	ASSERT_TRUE(no_duplicates(mm, AT(0), n));
	ASSERT_OK(umm_mprotect(mm, AT(0), PG(n), RW));
	ASSERT_TRUE(filled(mm, AT(0), n, 0x11));
	ASSERT_TRUE(scan_passes(u, 1));
	ASSERT_EQ(kstats(u).pages_sharing, 0);
	ASSERT_TRUE(walk_check(u, &mm, 1, true));
	return ksm_done(u, &mm, 1);
}

/* ---- ksm_tests -N: merge across nodes ---- */

static bool pin_to_cpu(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return sched_setaffinity(0, sizeof(set), &set) == 0;
}

/*
 * The node a frame belongs to.  umm carves the arena into nr_nodes
 * contiguous runs of frames after the zero frame (phys.c), and a thread
 * allocates from the node of the CPU it runs on; the test checks that the
 * placement came out as intended before it relies on it.
 */
static unsigned int node_of(struct umm *u, uint64_t pfn, unsigned int nodes)
{
	uint64_t per_node = (ustat(u).nr_frames - 1) / nodes;
	uint64_t nid = (pfn - 1) / per_node;

	return nid >= nodes ? nodes - 1 : (unsigned int)nid;
}

/*
 * Two pages of '*' on node 0 and @per_node_extra more on each node, and
 * the same on node 1: merge_across_nodes 1 merges all of them into one KSM
 * page, 0 keeps one KSM page per node (or none where a node has one page).
 * Return: false on failure; *@skipped when the host cannot place pages.
 */
static bool nodes_case(bool across, unsigned long per_node, bool *skipped)
{
	struct umm_mm *mm;
	struct umm_ksm_stats s;
	unsigned long shared, sharing, unshared;
	struct umm *u;

	ASSERT_TRUE(kmachine(&u, 2));
	ASSERT_OK(set_knob(u, MERGE_ACROSS_NODES, across));
	ASSERT_OK(umm_mm_create(u, &mm));
	ASSERT_OK(map_at(mm, AT(0), 2 * per_node, RW, PRIV));
	for (int node = 0; node < 2; node++) {
		if (!pin_to_cpu(node)) {
			*skipped = true;
			umm_mm_exit(mm);
			umm_destroy(u);
			return true;
		}
		ASSERT_TRUE(fill(mm, AT(node * per_node), per_node, '*'));
	}
	for (unsigned long i = 0; i < 2 * per_node; i++) {
		unsigned int want = i < per_node ? 0 : 1;

		if (node_of(u, pinfo(mm, AT(i)).pfn, 2) != want) {
			TAP_DIAG("page %lu landed on node %u, not %u: cannot place pages", i,
				 node_of(u, pinfo(mm, AT(i)).pfn, 2), want);
			*skipped = true;
			umm_mm_exit(mm);
			umm_destroy(u);
			return true;
		}
	}
	ASSERT_OK(umm_madvise(mm, AT(0), PG(2 * per_node), UMM_MADV_MERGEABLE));
	ASSERT_TRUE(scan_passes(u, 2));
	if (across) {
		merge_expect(2 * per_node, 256, &shared, &sharing, &unshared);
	} else {
		merge_expect(per_node, 256, &shared, &sharing, &unshared);
		shared *= 2;
		sharing *= 2;
	}
	s = kstats(u);
	ASSERT_EQ(s.pages_shared, shared);
	ASSERT_EQ(s.pages_sharing, sharing);
	if (!across && per_node > 1)
		ASSERT_NE(pinfo(mm, AT(0)).pfn, pinfo(mm, AT(per_node)).pfn);
	if (!across)	/* a KSM page stays on the node of the pages it replaced */
		for (unsigned long i = 0; i < 2 * per_node; i++)
			if (pinfo(mm, AT(i)).flags & UMM_PI_KSM)
				ASSERT_EQ(node_of(u, pinfo(mm, AT(i)).pfn, 2), i >= per_node);
	ASSERT_TRUE(filled(mm, AT(0), 2 * per_node, '*'));
	ASSERT_TRUE(walk_check(u, &mm, 1, true));
	return ksm_done(u, &mm, 1);
}

static bool test_merge_across_nodes(void)
{
	cpu_set_t saved;
	bool skipped = false, ok;

	if (sched_getaffinity(0, sizeof(saved), &saved) || !CPU_ISSET(0, &saved) ||
	    !CPU_ISSET(1, &saved)) {
		TAP_DIAG("SKIP: needs CPUs 0 and 1 to place pages on nodes 0 and 1");
		return true;
	}
	ok = nodes_case(true, 1, &skipped) && nodes_case(false, 1, &skipped) &&
	     nodes_case(true, 3, &skipped) && nodes_case(false, 3, &skipped);
	sched_setaffinity(0, sizeof(saved), &saved);
	if (skipped)
		TAP_DIAG("SKIP: pages could not be placed on both nodes");
	return ok;
}

/* ---- ksm_tests -C: COW after merge ---- */

/*
 * @p pairs of identical pages, pair k filled with byte k + 1:
 * "aabbccdd..." merges into p KSM pages of two mappings each.  A write to
 * the first page of each pair breaks that sharing alone (the other page
 * still reads the old bytes); one scan later pages_shared is still p (one
 * mapping left each) and pages_sharing 0; writes to the second pages and a
 * scan leave nothing merged.
 */
static bool test_cow_after_merge(void)
{
	unsigned long p = tap_short() ? 16 : 200;
	struct umm_mm *mm;
	struct umm *u;
	uint8_t buf[PS];

	ASSERT_TRUE(kmachine(&u, 1));
	ASSERT_OK(umm_mm_create(u, &mm));
	ASSERT_OK(map_at(mm, AT(0), 2 * p, RW, PRIV));
	for (unsigned long k = 0; k < p; k++)
		ASSERT_TRUE(fill(mm, AT(2 * k), 2, (int)(k % 250) + 1));
	ASSERT_OK(umm_madvise(mm, AT(0), PG(2 * p), UMM_MADV_MERGEABLE));
	ASSERT_TRUE(scan_passes(u, 2));
	ASSERT_EQ(kstats(u).pages_shared, p);
	ASSERT_EQ(kstats(u).pages_sharing, p);
	ASSERT_TRUE(walk_check(u, &mm, 1, true));

	for (int half = 0; half < 2; half++) {
		for (unsigned long k = 0; k < p; k++) {
			uint64_t a = AT(2 * k + half), other = AT(2 * k + !half);
			int c = (int)(k % 250) + 1;

			ASSERT_TRUE(put_byte(mm, a + k % PS, 0));
			ASSERT_FALSE(pinfo(mm, a).flags & UMM_PI_KSM);
			ASSERT_EQ(umm_read(mm, a, buf, PS), PS);
			for (unsigned long i = 0; i < PS; i++)
				ASSERT_EQ(buf[i], i == k % PS ? 0 : c);
			if (!half)
				ASSERT_TRUE(filled(mm, other, 1, c));
		}
		ASSERT_TRUE(scan_passes(u, 1));
		ASSERT_EQ(kstats(u).pages_shared, half ? 0 : p);
		ASSERT_EQ(kstats(u).pages_sharing, 0);
		ASSERT_TRUE(walk_check(u, &mm, 1, true));
	}
	return ksm_done(u, &mm, 1);
}

/* ---- ksm_tests -D: run = 2 ---- */

/*
 * Two mms merged ("AAAA" each); run = 2 unmerges everything before it
 * returns and drops every rmap item; MADV_MERGEABLE again (Linux forgets
 * the mms on run = 2) and two scans merge them again.
 */
static bool test_unmerge_all(void)
{
	unsigned long n = tap_short() ? 32 : 512, shared, sharing, unshared;
	struct umm_mm *mm[2];
	struct umm *u;

	ASSERT_TRUE(kmachine(&u, 1));
	for (int i = 0; i < 2; i++) {
		ASSERT_OK(umm_mm_create(u, &mm[i]));
		ASSERT_TRUE(map_mergeable(mm[i], n, 0x5a));
	}
	merge_expect(2 * n, 256, &shared, &sharing, &unshared);
	ASSERT_TRUE(scan_passes(u, 2));
	ASSERT_EQ(kstats(u).pages_shared, shared);
	ASSERT_EQ(kstats(u).pages_sharing, sharing);

	ASSERT_OK(umm_ksm_set_run(u, 2));
	ASSERT_EQ(kstats(u).pages_shared, 0);
	ASSERT_EQ(kstats(u).pages_sharing, 0);
	ASSERT_EQ(kstats(u).pages_unshared, 0);
	for (int i = 0; i < 2; i++) {
		ASSERT_EQ(kstat_mm(mm[i]).ksm_rmap_items, 0);
		ASSERT_EQ(kstat_mm(mm[i]).ksm_merging_pages, 0);
		ASSERT_TRUE(no_duplicates(mm[i], AT(0), n));
		ASSERT_TRUE(filled(mm[i], AT(0), n, 0x5a));
	}
	ASSERT_NE(pinfo(mm[0], AT(0)).pfn, pinfo(mm[1], AT(0)).pfn);
	ASSERT_TRUE(walk_check(u, mm, 2, true));

	ASSERT_OK(umm_ksm_set_run(u, 0));
	for (int i = 0; i < 2; i++)
		ASSERT_OK(umm_madvise(mm[i], AT(0), PG(n), UMM_MADV_MERGEABLE));
	ASSERT_TRUE(scan_passes(u, 2));
	ASSERT_EQ(kstats(u).pages_shared, shared);
	ASSERT_EQ(kstats(u).pages_sharing, sharing);
	ASSERT_TRUE(walk_check(u, mm, 2, true));
	return ksm_done(u, mm, 2);
}

/* ---- functional: merge-any (prctl PR_SET_MEMORY_MERGE) ---- */

/*
 * merge-any without any madvise: the mm's anonymous pages merge; turning
 * it off unmerges them all at once.
 */
static bool test_merge_any(void)
{
	unsigned long n = tap_short() ? 16 : 256;
	struct umm_mm *mm;
	struct umm *u;

	ASSERT_TRUE(kmachine(&u, 1));
	ASSERT_OK(umm_mm_create(u, &mm));
	ASSERT_FALSE(kstat_mm(mm).ksm_merge_any);
	ASSERT_OK(map_at(mm, AT(0), n, RW, PRIV));
	ASSERT_TRUE(fill(mm, AT(0), n, 0x33));
	ASSERT_OK(umm_mm_set_merge_any(mm, true));
	ASSERT_TRUE(kstat_mm(mm).ksm_merge_any);
	ASSERT_TRUE(scan_passes(u, 2));
	ASSERT_EQ(kstats(u).pages_shared, 1);
	ASSERT_EQ(kstats(u).pages_sharing, n - 1);
	ASSERT_TRUE(walk_check(u, &mm, 1, true));

	ASSERT_OK(umm_mm_set_merge_any(mm, false));
	ASSERT_FALSE(kstat_mm(mm).ksm_merge_any);
	ASSERT_TRUE(no_duplicates(mm, AT(0), n));
	ASSERT_TRUE(filled(mm, AT(0), n, 0x33));
	ASSERT_TRUE(scan_passes(u, 1));
	ASSERT_EQ(kstats(u).pages_sharing, 0);
	ASSERT_TRUE(walk_check(u, &mm, 1, true));
	return ksm_done(u, &mm, 1);
}

/*
 * merge-any is inherited on fork: the child's own anonymous memory (mapped
 * after the fork, never madvised) merges with the parent's.
 */
static bool test_merge_any_fork(void)
{
	unsigned long n = 8;
	struct umm_mm *mm[2];
	struct umm *u;

	ASSERT_TRUE(kmachine(&u, 1));
	ASSERT_OK(umm_mm_create(u, &mm[0]));
	ASSERT_OK(umm_mm_set_merge_any(mm[0], true));
	ASSERT_OK(umm_mm_fork(mm[0], &mm[1]));
	ASSERT_TRUE(kstat_mm(mm[1]).ksm_merge_any);
	for (int i = 0; i < 2; i++) {
		ASSERT_OK(map_at(mm[i], AT(0), n, RW, PRIV));
		ASSERT_TRUE(fill(mm[i], AT(0), n, 0x44));
	}
	ASSERT_TRUE(scan_passes(u, 2));
	ASSERT_EQ(kstats(u).pages_shared, 1);
	ASSERT_EQ(kstats(u).pages_sharing, 2 * n - 1);
	ASSERT_EQ(pinfo(mm[0], AT(0)).pfn, pinfo(mm[1], AT(n - 1)).pfn);
	ASSERT_TRUE(walk_check(u, mm, 2, true));
	return ksm_done(u, mm, 2);
}

/*
 * A child forked after the merge maps the same KSM pages but has merged
 * nothing itself yet: ksm_merging_pages 0 and no rmap items
 * (ksm_functional_tests' fork test).  Its scans adopt them.
 */
static bool test_fork_child_merging_pages(void)
{
	unsigned long n = tap_short() ? 16 : 128;
	struct umm_mm *mm[2];
	struct umm *u;

	ASSERT_TRUE(kmachine(&u, 1));
	ASSERT_OK(umm_mm_create(u, &mm[0]));
	ASSERT_TRUE(map_mergeable(mm[0], n, 0x77));
	ASSERT_TRUE(scan_passes(u, 2));
	ASSERT_EQ(kstat_mm(mm[0]).ksm_merging_pages, n);
	ASSERT_OK(umm_mm_fork(mm[0], &mm[1]));
	ASSERT_EQ(kstat_mm(mm[1]).ksm_merging_pages, 0);
	ASSERT_EQ(kstat_mm(mm[1]).ksm_rmap_items, 0);
	ASSERT_EQ(kstat_mm(mm[1]).ksm_zero_pages, 0);
	ASSERT_TRUE(kstat_mm(mm[1]).ksm_mergeable);
	ASSERT_EQ(kstat_mm(mm[0]).ksm_merging_pages, n);
	ASSERT_TRUE(pinfo(mm[1], AT(0)).flags & UMM_PI_KSM);
	ASSERT_TRUE(filled(mm[1], AT(0), n, 0x77));

	ASSERT_TRUE(scan_passes(u, 2));
	ASSERT_EQ(kstat_mm(mm[1]).ksm_merging_pages, n);
	ASSERT_EQ(kstats(u).pages_shared, 1);
	ASSERT_EQ(kstats(u).pages_sharing, 2 * n - 1);
	ASSERT_TRUE(walk_check(u, mm, 2, true));

	/* the child writes: its copies are its own, the parent keeps the KSM page */
	ASSERT_TRUE(fill(mm[1], AT(0), n, 0x78));
	ASSERT_TRUE(filled(mm[0], AT(0), n, 0x77));
	ASSERT_TRUE(scan_passes(u, 2));
	ASSERT_EQ(kstats(u).pages_shared, 2);
	ASSERT_EQ(kstats(u).pages_sharing, 2 * n - 2);
	ASSERT_TRUE(walk_check(u, mm, 2, true));
	return ksm_done(u, mm, 2);
}

/* ---- profit ---- */

/*
 * Two mms with merged pages, KSM zero pages and unique pages: the profit
 * figures follow Linux's formulas (walk_check) and are what they say -
 * positive once enough is merged, and the sum of the mms' profits equals
 * general_profit + pages_shared pages (each mm counts its own mapping of a
 * KSM page; the machine saves all mappings but one).
 */
static bool test_profit(void)
{
	struct umm_mm *mm[2];
	struct umm_ksm_stats s;
	struct umm *u;
	long sum = 0;

	ASSERT_TRUE(kmachine(&u, 1));
	ASSERT_OK(set_knob(u, USE_ZERO_PAGES, 1));
	for (int i = 0; i < 2; i++) {
		ASSERT_OK(umm_mm_create(u, &mm[i]));
		ASSERT_OK(map_at(mm[i], AT(0), 48, RW, PRIV));
		ASSERT_TRUE(fill(mm[i], AT(0), 32, 0x21));
		ASSERT_TRUE(fill(mm[i], AT(32), 8, 0));
		ASSERT_TRUE(write_pat(mm[i], AT(40), 8, (uint64_t)i + 1));
		ASSERT_OK(umm_madvise(mm[i], AT(0), PG(48), UMM_MADV_MERGEABLE));
	}
	ASSERT_TRUE(scan_passes(u, 2));
	s = kstats(u);
	ASSERT_EQ(s.pages_shared, 1);
	ASSERT_EQ(s.pages_sharing, 63);
	ASSERT_EQ(s.ksm_zero_pages, 16);
	ASSERT_EQ(s.pages_unshared, 16);
	ASSERT_TRUE(s.general_profit > 0);
	ASSERT_TRUE(walk_check(u, mm, 2, true));
	for (int i = 0; i < 2; i++) {
		struct umm_mm_ksm_stat st = kstat_mm(mm[i]);

		ASSERT_EQ(st.ksm_rmap_items, 48);
		ASSERT_EQ(st.ksm_merging_pages, 32);
		ASSERT_EQ(st.ksm_zero_pages, 8);
		sum += st.ksm_process_profit;
	}
	ASSERT_EQ(sum, s.general_profit + (long)s.pages_shared * PS);
	return ksm_done(u, mm, 2);
}

/* ---- knobs ---- */

static bool same_params(const struct umm_ksm_params *a, const struct umm_ksm_params *b)
{
	return a->pages_to_scan == b->pages_to_scan && a->sleep_millisecs == b->sleep_millisecs &&
	       a->max_page_sharing == b->max_page_sharing &&
	       a->merge_across_nodes == b->merge_across_nodes &&
	       a->use_zero_pages == b->use_zero_pages && a->smart_scan == b->smart_scan &&
	       a->stable_node_chains_prune_millisecs == b->stable_node_chains_prune_millisecs &&
	       a->nr_threads == b->nr_threads;
}

/*
 * Linux's defaults; -EINVAL for values Linux rejects; -EBUSY for
 * max_page_sharing and merge_across_nodes changes while pages are shared,
 * with nothing applied; a field left as it is never -EBUSY; after run = 2
 * the change goes through.
 */
static bool test_knobs(void)
{
	struct umm_ksm_params p, q, r;
	struct umm_mm *mm;
	struct umm *u;

	ASSERT_TRUE(kmachine(&u, 1));
	ASSERT_OK(umm_ksm_get_params(u, &p));
	ASSERT_EQ(p.pages_to_scan, 100);
	ASSERT_EQ(p.sleep_millisecs, 20);
	ASSERT_EQ(p.max_page_sharing, 256);
	ASSERT_TRUE(p.merge_across_nodes);
	ASSERT_FALSE(p.use_zero_pages);
	ASSERT_TRUE(p.smart_scan);
	ASSERT_EQ(p.stable_node_chains_prune_millisecs, 2000);
	ASSERT_GE(p.nr_threads, 1);

	ASSERT_ERR(umm_ksm_set_params(u, NULL), EINVAL);
	ASSERT_ERR(umm_ksm_get_params(u, NULL), EINVAL);
	q = p;
	q.max_page_sharing = 1;
	ASSERT_ERR(umm_ksm_set_params(u, &q), EINVAL);
	q.max_page_sharing = 0;
	ASSERT_ERR(umm_ksm_set_params(u, &q), EINVAL);
	q = p;
	q.nr_threads = 0;
	ASSERT_ERR(umm_ksm_set_params(u, &q), EINVAL);
	ASSERT_ERR(umm_ksm_set_run(u, 3), EINVAL);
	ASSERT_ERR(umm_ksm_set_run(u, -1), EINVAL);
	ASSERT_OK(umm_ksm_get_params(u, &r));
	ASSERT_TRUE(same_params(&r, &p));

	/* pages_to_scan 0 and sleep 0 are what Linux accepts */
	q = p;
	q.pages_to_scan = 0;
	q.sleep_millisecs = 0;
	q.max_page_sharing = 2;
	ASSERT_OK(umm_ksm_set_params(u, &q));
	ASSERT_OK(umm_ksm_get_params(u, &r));
	ASSERT_EQ(r.pages_to_scan, 0);
	ASSERT_EQ(r.sleep_millisecs, 0);
	ASSERT_EQ(r.max_page_sharing, 2);
	ASSERT_OK(umm_ksm_set_params(u, &p));

	ASSERT_OK(umm_mm_create(u, &mm));
	ASSERT_TRUE(map_mergeable(mm, 4, 0x99));
	ASSERT_TRUE(scan_passes(u, 2));
	ASSERT_EQ(kstats(u).pages_shared, 1);

	ASSERT_OK(umm_ksm_set_params(u, &p));		/* nothing changes: fine */
	q = p;
	q.sleep_millisecs = 7;
	q.use_zero_pages = true;
	q.smart_scan = false;
	q.stable_node_chains_prune_millisecs = 500;
	ASSERT_OK(umm_ksm_set_params(u, &q));		/* none of these is refused */
	ASSERT_OK(umm_ksm_get_params(u, &r));
	ASSERT_EQ(r.sleep_millisecs, 7);
	ASSERT_TRUE(r.use_zero_pages);
	ASSERT_FALSE(r.smart_scan);
	ASSERT_EQ(r.stable_node_chains_prune_millisecs, 500);
	ASSERT_OK(umm_ksm_set_params(u, &p));

	q = p;
	q.max_page_sharing = 16;
	q.sleep_millisecs = 9;
	ASSERT_ERR(umm_ksm_set_params(u, &q), EBUSY);
	q = p;
	q.merge_across_nodes = false;
	ASSERT_ERR(umm_ksm_set_params(u, &q), EBUSY);
	ASSERT_OK(umm_ksm_get_params(u, &r));
	ASSERT_EQ(r.sleep_millisecs, p.sleep_millisecs);	/* all or nothing */
	ASSERT_EQ(r.max_page_sharing, p.max_page_sharing);
	ASSERT_TRUE(r.merge_across_nodes);

	ASSERT_OK(umm_ksm_set_run(u, 2));
	q = p;
	q.max_page_sharing = 16;
	q.merge_across_nodes = false;
	ASSERT_OK(umm_ksm_set_params(u, &q));
	ASSERT_OK(umm_ksm_get_params(u, &r));
	ASSERT_EQ(r.max_page_sharing, 16);
	ASSERT_FALSE(r.merge_across_nodes);
	ASSERT_OK(umm_ksm_set_run(u, 0));
	ASSERT_TRUE(filled(mm, AT(0), 4, 0x99));
	ASSERT_TRUE(walk_check(u, &mm, 1, true));
	return ksm_done(u, &mm, 1);
}

/*
 * The scan-time advisor's knobs (Linux 6.9): its defaults; -EINVAL for an
 * unknown mode, a target scan time of 0, nr_threads beyond the maximum, and
 * a changed pages_to_scan while the advisor drives it (also when the same
 * call turns it on); turning it on sets pages_to_scan to
 * advisor_min_pages_to_scan, turning it off back to 100.
 */
static bool test_advisor_knobs(void)
{
	struct umm_ksm_params p, q, r;
	struct umm *u;

	ASSERT_TRUE(kmachine(&u, 1));
	ASSERT_OK(umm_ksm_get_params(u, &p));
	ASSERT_EQ(p.advisor_mode, UMM_KSM_ADVISOR_NONE);
	ASSERT_EQ(p.advisor_target_scan_time, 200);
	ASSERT_EQ(p.advisor_min_cpu, 15);
	ASSERT_EQ(p.advisor_max_cpu, 70);
	ASSERT_EQ(p.advisor_min_pages_to_scan, 500);
	ASSERT_EQ(p.advisor_max_pages_to_scan, 30000);
	ASSERT_EQ(p.nr_threads, 1);

	q = p;
	q.advisor_mode = 2;
	ASSERT_ERR(umm_ksm_set_params(u, &q), EINVAL);
	q = p;
	q.advisor_target_scan_time = 0;
	ASSERT_ERR(umm_ksm_set_params(u, &q), EINVAL);
	q = p;
	q.nr_threads = UMM_KSM_MAX_THREADS + 1;
	ASSERT_ERR(umm_ksm_set_params(u, &q), EINVAL);
	q = p;
	q.advisor_mode = UMM_KSM_ADVISOR_SCAN_TIME;
	q.pages_to_scan = 1234;
	ASSERT_ERR(umm_ksm_set_params(u, &q), EINVAL);
	ASSERT_OK(umm_ksm_get_params(u, &r));
	ASSERT_TRUE(same_params(&r, &p));
	ASSERT_EQ(r.advisor_mode, UMM_KSM_ADVISOR_NONE);

	q.pages_to_scan = p.pages_to_scan;
	ASSERT_OK(umm_ksm_set_params(u, &q));
	ASSERT_OK(umm_ksm_get_params(u, &r));
	ASSERT_EQ(r.advisor_mode, UMM_KSM_ADVISOR_SCAN_TIME);
	ASSERT_EQ(r.pages_to_scan, r.advisor_min_pages_to_scan);
	q = r;
	q.pages_to_scan = r.pages_to_scan + 1;
	ASSERT_ERR(umm_ksm_set_params(u, &q), EINVAL);
	ASSERT_OK(umm_ksm_set_params(u, &r));		/* as it is: fine */
	q = r;
	q.advisor_mode = UMM_KSM_ADVISOR_NONE;
	ASSERT_OK(umm_ksm_set_params(u, &q));
	ASSERT_OK(umm_ksm_get_params(u, &r));
	ASSERT_EQ(r.pages_to_scan, 100);
	umm_destroy(u);
	return true;
}

/* ---- extra references ---- */

/*
 * "AAAA": the last page is held by a GUP reference when the scans come.
 * As write_protect_page() refuses a page whose refcount says someone else
 * may write to it, pages 0-2 merge and page 3 stays its own; once the
 * reference is dropped, the next scan merges it too.
 */
static bool test_extra_reference(void)
{
	struct umm_page *page;
	struct umm_mm *mm;
	struct umm *u;
	uint64_t pfn;

	ASSERT_TRUE(kmachine(&u, 1));
	ASSERT_OK(umm_mm_create(u, &mm));
	ASSERT_TRUE(map_mergeable(mm, 4, 0x42));
	pfn = pinfo(mm, AT(3)).pfn;
	ASSERT_OK(umm_get_user_page(mm, AT(3), 0, &page));
	ASSERT_EQ(umm_page_pfn(page), pfn);
	ASSERT_TRUE(scan_passes(u, 2));
	ASSERT_EQ(kstats(u).pages_shared, 1);
	ASSERT_EQ(kstats(u).pages_sharing, 2);
	ASSERT_EQ(pinfo(mm, AT(3)).pfn, pfn);
	ASSERT_FALSE(pinfo(mm, AT(3)).flags & UMM_PI_KSM);
	/* the holder still sees the page the mm maps */
	ASSERT_EQ(((uint8_t *)umm_page_address(page))[100], 0x42);
	umm_put_page(page);

	ASSERT_TRUE(scan_passes(u, 1));
	ASSERT_EQ(kstats(u).pages_shared, 1);
	ASSERT_EQ(kstats(u).pages_sharing, 3);
	ASSERT_TRUE(pinfo(mm, AT(3)).flags & UMM_PI_KSM);
	ASSERT_TRUE(filled(mm, AT(0), 4, 0x42));
	ASSERT_TRUE(walk_check(u, &mm, 1, true));
	return ksm_done(u, &mm, 1);
}

/* ---- merge domains ---- */

/* The pfns mapped at the @n pages of @a and @b have nothing in common. */
static bool frames_disjoint(struct umm_mm *a, struct umm_mm *b, unsigned long n)
{
	for (unsigned long i = 0; i < n; i++)
		for (unsigned long j = 0; j < n; j++)
			if (pinfo(a, AT(i)).pfn == pinfo(b, AT(j)).pfn) {
				TAP_DIAG("page %lu of one domain and %lu of another share pfn %" PRIu64,
					 i, j, pinfo(a, AT(i)).pfn);
				return false;
			}
	return true;
}

/*
 * mm0 and mm1 in domain 1, mm2 in domain 2, mm3 in domain 0 (the default),
 * each with n pages of the same bytes: one KSM page per domain, sharing only
 * within it; no frame is mapped from two domains (pagemap pfns).  The zero
 * frame of use_zero_pages holds nobody's data and is left out.
 */
static bool test_merge_domains(void)
{
	unsigned long n = tap_short() ? 8 : 64;
	struct umm_mm *mm[4];
	struct umm *u;
	static const unsigned int dom[4] = { 1, 1, 2, 0 };

	ASSERT_TRUE(kmachine(&u, 1));
	for (int i = 0; i < 4; i++) {
		ASSERT_OK(umm_mm_create(u, &mm[i]));
		if (dom[i])
			ASSERT_OK(umm_mm_set_ksm_domain(mm[i], dom[i]));
		ASSERT_TRUE(map_mergeable(mm[i], n, 0xd0));
	}
	ASSERT_TRUE(scan_passes(u, 2));
	ASSERT_EQ(kstats(u).pages_shared, 3);
	ASSERT_EQ(kstats(u).pages_sharing, 4 * n - 3);
	ASSERT_EQ(pinfo(mm[0], AT(0)).pfn, pinfo(mm[1], AT(0)).pfn);
	ASSERT_TRUE(frames_disjoint(mm[0], mm[2], n));
	ASSERT_TRUE(frames_disjoint(mm[0], mm[3], n));
	ASSERT_TRUE(frames_disjoint(mm[2], mm[3], n));
	for (int i = 0; i < 4; i++)
		ASSERT_EQ(kstat_mm(mm[i]).ksm_merging_pages, n);
	ASSERT_TRUE(walk_check(u, mm, 4, true));

	/*
	 * A child inherits its parent's domain: fork mm2 (domain 2) and write
	 * 0xd1 in the child, in mm0 (domain 1, alone there now) and in mm3
	 * (domain 0): three KSM pages of 0xd1, one per domain, and mm2's 0xd0.
	 */
	umm_mm_exit(mm[1]);
	ASSERT_OK(umm_mm_fork(mm[2], &mm[1]));
	ASSERT_TRUE(fill(mm[1], AT(0), n, 0xd1));
	ASSERT_TRUE(fill(mm[0], AT(0), n, 0xd1));
	ASSERT_TRUE(fill(mm[3], AT(0), n, 0xd1));
	ASSERT_TRUE(scan_passes(u, 2));
	ASSERT_EQ(kstats(u).pages_shared, 4);
	ASSERT_EQ(kstats(u).pages_sharing, 4 * n - 4);
	ASSERT_TRUE(frames_disjoint(mm[0], mm[1], n));
	ASSERT_TRUE(frames_disjoint(mm[0], mm[3], n));
	ASSERT_TRUE(frames_disjoint(mm[1], mm[3], n));
	ASSERT_TRUE(filled(mm[2], AT(0), n, 0xd0));
	ASSERT_TRUE(walk_check(u, mm, 4, true));

	/* moving mm3 to domain 1 unmerges it at once; then it merges with mm0 */
	ASSERT_OK(umm_mm_set_ksm_domain(mm[3], 1));
	ASSERT_TRUE(no_duplicates(mm[3], AT(0), n));
	ASSERT_TRUE(frames_disjoint(mm[1], mm[3], n));
	ASSERT_TRUE(filled(mm[3], AT(0), n, 0xd1));
	ASSERT_TRUE(scan_passes(u, 2));
	ASSERT_EQ(pinfo(mm[0], AT(0)).pfn, pinfo(mm[3], AT(0)).pfn);
	ASSERT_EQ(kstats(u).pages_shared, 3);
	ASSERT_EQ(kstats(u).pages_sharing, 4 * n - 3);
	ASSERT_TRUE(frames_disjoint(mm[1], mm[3], n));
	ASSERT_TRUE(walk_check(u, mm, 4, true));
	return ksm_done(u, mm, 4);
}

/* ---- KSM pages that a fork left shared with a VMA KSM does not scan ---- */

/* Every page of @mm: the rmap walk finds exactly the mappings pagemap counts. */
static bool rmap_exact(struct umm_mm *mm, unsigned long n)
{
	for (unsigned long i = 0; i < n; i++) {
		struct umm_pageinfo pi = pinfo(mm, AT(i));

		if (!(pi.flags & UMM_PI_PRESENT))
			continue;
		if (umm_page_rmap_count(mm, AT(i)) != pi.mapcount) {
			TAP_DIAG("page %lu (pfn %" PRIu64 ", flags %#x): rmap walk finds %d mappings, "
				 "mapcount %d", i, pi.pfn, pi.flags, umm_page_rmap_count(mm, AT(i)),
				 pi.mapcount);
			return false;
		}
	}
	return true;
}

enum fork_shape { PARENT_UNMERGEABLE, PARENT_MERGE_ANY_OFF, GRANDCHILD_UNMERGEABLE };

/*
 * "AA" identical in a parent, forked before any scan, then one member of
 * the family stops being mergeable while its pages are still COW-shared:
 *
 *   PARENT_UNMERGEABLE      parent MADV_UNMERGEABLE, the child merges
 *   PARENT_MERGE_ANY_OFF    merge-any in the parent (inherited), then off
 *   GRANDCHILD_UNMERGEABLE  parent -> child -> grandchild, which goes
 *                           UNMERGEABLE; parent and child merge
 *
 * The mergeable side turns a page that the other side still maps into a KSM
 * page in place (as Linux's try_to_merge_two_pages() does with the page in
 * hand), so a VMA with no rmap item maps a KSM page.  The rmap walk must
 * still find each of its mappings exactly once (umm_validate(RMAP), and
 * umm_page_rmap_count() against the mapcount): KSM pages are unmapped and
 * migrated through it.  Linux's rmap_walk_ksm() walks each item's own
 * anon_vma, which misses an ancestor's mapping and reaches a descendant's
 * through every ancestor's item; umm promises an exact walk.
 */
static bool fork_shape_case(enum fork_shape shape)
{
	struct umm_mm *mm[3] = { NULL, NULL, NULL };
	struct umm *u;

	ASSERT_TRUE(kmachine(&u, 1));
	ASSERT_OK(umm_mm_create(u, &mm[0]));
	ASSERT_OK(map_at(mm[0], AT(0), 2, RW, PRIV));
	ASSERT_TRUE(fill(mm[0], AT(0), 2, 0x42));
	if (shape == PARENT_MERGE_ANY_OFF)
		ASSERT_OK(umm_mm_set_merge_any(mm[0], true));
	else
		ASSERT_OK(umm_madvise(mm[0], AT(0), PG(2), UMM_MADV_MERGEABLE));
	ASSERT_OK(umm_mm_fork(mm[0], &mm[1]));
	switch (shape) {
	case PARENT_UNMERGEABLE:
		ASSERT_OK(umm_madvise(mm[0], AT(0), PG(2), UMM_MADV_UNMERGEABLE));
		break;
	case PARENT_MERGE_ANY_OFF:
		ASSERT_OK(umm_mm_set_merge_any(mm[0], false));
		break;
	case GRANDCHILD_UNMERGEABLE:
		ASSERT_OK(umm_mm_fork(mm[1], &mm[2]));
		ASSERT_OK(umm_madvise(mm[2], AT(0), PG(2), UMM_MADV_UNMERGEABLE));
		break;
	}
	ASSERT_TRUE(scan_passes(u, 4));
	ASSERT_EQ(kstats(u).pages_shared, 1);
	for (int i = 0; i < 3; i++) {
		if (!mm[i])
			continue;
		ASSERT_TRUE(filled(mm[i], AT(0), 2, 0x42));
		ASSERT_TRUE(rmap_exact(mm[i], 2));
	}
	ASSERT_TRUE(walk_check(u, mm, shape == GRANDCHILD_UNMERGEABLE ? 3 : 2, true));
	/* and a write in the unscanned VMA is its own */
	ASSERT_TRUE(put_byte(mm[shape == GRANDCHILD_UNMERGEABLE ? 2 : 0], AT(1), 0x43));
	ASSERT_EQ(byte_at(mm[1], AT(1)), 0x42);
	return ksm_done(u, mm, 3);
}

static bool test_fork_parent_unmergeable(void)
{
	return fork_shape_case(PARENT_UNMERGEABLE);
}

static bool test_fork_parent_merge_any_off(void)
{
	return fork_shape_case(PARENT_MERGE_ANY_OFF);
}

static bool test_fork_grandchild_unmergeable(void)
{
	return fork_shape_case(GRANDCHILD_UNMERGEABLE);
}

/*
 * The same in a family where every VMA stays mergeable: "AB" scanned three
 * times (smart scan has aged both items), B := A, fork.  In the next two
 * passes the parent's pages are skipped, and the child merges its own two
 * pages by turning the one it shares with the parent's page 1 into a KSM
 * page in place; until the parent's page is scanned again, no item of the
 * parent reaches that mapping.  The rmap walk must find it all the same.
 */
static bool test_fork_shared_page_made_ksm(void)
{
	struct umm_mm *mm[2];
	struct umm *u;

	ASSERT_TRUE(kmachine(&u, 1));
	ASSERT_OK(umm_mm_create(u, &mm[0]));
	ASSERT_OK(map_at(mm[0], AT(0), 2, RW, PRIV));
	ASSERT_TRUE(fill(mm[0], AT(0), 1, 0x42));
	ASSERT_TRUE(fill(mm[0], AT(1), 1, 0x43));
	ASSERT_OK(umm_madvise(mm[0], AT(0), PG(2), UMM_MADV_MERGEABLE));
	ASSERT_TRUE(scan_passes(u, 3));
	ASSERT_TRUE(fill(mm[0], AT(1), 1, 0x42));
	ASSERT_OK(umm_mm_fork(mm[0], &mm[1]));
	ASSERT_TRUE(scan_passes(u, 2));
	for (int i = 0; i < 2; i++) {
		ASSERT_TRUE(filled(mm[i], AT(0), 2, 0x42));
		ASSERT_TRUE(rmap_exact(mm[i], 2));
	}
	ASSERT_TRUE(machine_valid(u));
	ASSERT_TRUE(scan_passes(u, 1));
	ASSERT_TRUE(walk_check(u, mm, 2, true));
	return ksm_done(u, mm, 2);
}

int main(void)
{
	RUN_TEST(test_merge);
	RUN_TEST(test_merge_max_page_sharing);
	RUN_TEST(test_two_scans_to_merge);
	RUN_TEST(test_unmerge_by_write);
	RUN_TEST(test_unmerge_madvise);
	RUN_TEST(test_zero_pages);
	RUN_TEST(test_unmerge_zero_pages);
	RUN_TEST(test_unmerge_discarded);
	RUN_TEST(test_prot_none);
	RUN_TEST(test_merge_across_nodes);
	RUN_TEST(test_cow_after_merge);
	RUN_TEST(test_unmerge_all);
	RUN_TEST(test_merge_any);
	RUN_TEST(test_merge_any_fork);
	RUN_TEST(test_fork_child_merging_pages);
	RUN_TEST(test_profit);
	RUN_TEST(test_knobs);
	RUN_TEST(test_advisor_knobs);
	RUN_TEST(test_extra_reference);
	RUN_TEST(test_merge_domains);
	RUN_TEST(test_fork_parent_unmergeable);
	RUN_TEST(test_fork_parent_merge_any_off);
	RUN_TEST(test_fork_grandchild_unmergeable);
	RUN_TEST(test_fork_shared_page_made_ksm);
	return tap_done();
}
