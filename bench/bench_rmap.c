/* SPDX-License-Identifier: MIT */
/*
 * bench_rmap.c - the cost of rmap walks in a forking server.
 *
 * The case the anon_vma_chain design was made for (Linux commit 5beb4930,
 * "mm: change anon_vma linking to fix multi-process server scalability"):
 * a parent with P private anonymous pages, all written, forks N children;
 * each child then COW-writes its pages, so it holds private copies, except
 * for a fixed set of S "still shared" pages that nobody writes after the
 * fork.  With the old single anon_vma per lineage, finding the one PTE that
 * maps a child's private copy meant visiting the VMAs of all N+1 processes;
 * with per-process anon_vmas linked through chains, a copy belongs to its
 * child's own anon_vma and the walk visits one VMA, whatever N is.
 *
 * Figures, for N = 1, 10, 100, 1000, in ns per call (median of --reps calls,
 * each on a random child/page; the clock's own overhead is subtracted):
 *
 *   (a)   umm_page_referenced on a child's private copy: one mapping; the
 *         target is that it stays flat (N=1000 within 2x of N=1);
 *   (a10) the same, picking among the first 10 children only: the walk of
 *         (a) on the memory footprint of N=10;
 *   (a')  the same on one page called over and over (hot caches);
 *   (a-cold) (a)'s random pick, but every call comes after an untimed
 *         read+write sweep of a buffer larger than the last-level cache
 *         (1.5x its size, at least 64 MiB, in 4 KiB pages): the caches and
 *         the TLB are as cold for N = 1 as for N = 1000, so what (a) gains
 *         from N's memory footprint drops out and what is left is the
 *         walk's own scaling; fewer calls (--cold-reps, default 200) since
 *         each sweep takes tens of ms; taken for umm_page_referenced and
 *         the umm_pagemap control only;
 *   (b)   umm_page_referenced on a page still shared by all N+1 processes:
 *         N+1 mappings to visit, so it grows with N; also per mapping;
 *   (c)   umm_page_referenced on the parent's own copy after every child
 *         COW'd it away: one mapping left, but the page still belongs to
 *         the root anon_vma, whose tree holds all N+1 VMAs (Linux pays the
 *         same);
 *
 * the same with umm_page_rmap_count (a walk that only counts) and with
 * umm_pagemap, the control: it reaches the same page through the same
 * page tables but walks no rmap, so whatever it gains with N is the cost
 * of reaching 1000 address spaces' memory (cache and TLB misses), not of
 * the walk.  Then the time of the N forks (and, for context, of the
 * children's COW writes, of their exit, of one umm_validate, and the host
 * memory each child costs).
 *
 * Every N's server is built first; the timed calls are then taken in
 * rounds that visit every N in turn (so a slow patch of this shared
 * machine hits every N alike), each slice after an untimed sweep over the
 * pages it picks from.
 *
 * Nothing is asserted on time: the target is printed beside the figures.
 * What is asserted is that the engine did the work: rmap_count finds 1 PTE
 * for (a) and (c) and N+1 for (b), page_referenced counts exactly the
 * mappings that were accessed since the last call, pagemap and the bytes
 * agree, umm_validate(EXACT | RMAP) passes and nothing leaks.  A failed
 * check marks the row FAILED and the program exits 1.
 *
 * The host kernel has no userspace entry to page_referenced, so there is
 * no host column: the comparison is with the design's own scaling.
 *
 * Usage: bench_rmap [--quick] [--json] [--reps N] [--pages P] [--shared S]
 *                   [--n LIST] [--cold-reps N] [--cold-mib M]
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <umm/umm.h>

#define BENCH_NAME "bench_rmap"
#include "bench_common.h"

#define PAGE_SHIFT UMM_PAGE_SHIFT
#define PAGE_SIZE UMM_PAGE_SIZE
#define MiB ((size_t)1 << 20)

#define MAX_RUNS 8
#define MAX_CALLS 1000000
#define A_RATIO_TARGET 2.0	/* (a) at the largest N over (a) at N = 1 */

static struct {
	int ns[MAX_RUNS];
	int nr_ns;
	int calls;		/* timed calls per figure (--reps) */
	int pages;		/* P */
	int shared;		/* S: every (P / S)-th page stays shared */
	int cold_reps;		/* timed calls per (a-cold) figure, 0: not taken */
	int cold_mib;		/* size of the eviction sweep, 0: from the LLC's size */
	bool quick, json, ns_given;
} opt = {
	.ns = { 1, 10, 100, 1000 },
	.nr_ns = 4,
	.calls = 5000,
	.cold_reps = 200,
	.pages = 64,
	.shared = 16,
};

/* ---- results ---- */

enum walk { W_REFERENCED, W_COUNT, W_PAGEMAP, NR_WALKS };
enum target { T_A, T_A_HOT, T_A_FEW, T_B, T_C, NR_TARGETS };

#define FEW_CHILDREN 10		/* T_A_FEW picks among this many children only */

static const char *const walk_name[NR_WALKS] = { "umm_page_referenced", "umm_page_rmap_count",
						   "umm_pagemap" };
static const char *const target_key[NR_TARGETS] = {
	"child_private", "child_private_hot", "child_private_10", "shared", "parent_only",
};

struct fig {
	double median, p10, p90;	/* ns per call */
};

struct run {
	int n;
	size_t phys;			/* machine size */
	double fork_ms, cow_ms, exit_ms, validate_ms;
	double kib_per_child;		/* host heap the forks and COW writes took, per child */
	struct fig f[NR_WALKS][NR_TARGETS];
	struct fig cold[NR_WALKS];	/* (a-cold); NAN where not taken */
	bool valid;
};

static struct run runs[MAX_RUNS];
static int nr_runs;
static double timer_ns;		/* median cost of one now_ns() pair */


/* Checks run in loops: report the first few failures, count them all. */
static int nr_check_msgs;
#define CHECK(cond, ...) do {						\
	if (!(cond)) {							\
		if (nr_check_msgs++ < 20)				\
			fail_msg(__VA_ARGS__);				\
		cur_ok = false;						\
	}								\
} while (0)


/* Sorts @v in place. */
static struct fig summarize(double *v, int n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return (struct fig){
		.median = median_sorted(v, n),
		.p10 = v[n / 10],
		.p90 = v[n - 1 - n / 10],
	};
}


static void measure_timer(void)
{
	enum { K = 20001 };
	static double v[K];

	for (int i = 0; i < K; i++) {
		uint64_t t0 = now_ns();

		v[i] = (double)(now_ns() - t0);
	}
	timer_ns = summarize(v, K).median;
}


/* ---- the forking server ---- */

/*
 * Process 0 is the parent, 1..N the children.  Page i of the region is
 * "still shared" when i % stride == 0; the others are the children's
 * private copies after their COW writes.  The first 8 bytes of each page
 * hold tag(writer, i): the parent's before the fork, each child's own in
 * its private pages.
 */
struct server {
	struct umm *u;
	struct umm_mm **mm;		/* [0] parent, [1..n] children */
	int n;
	uint64_t base;
	int *priv, nr_priv;		/* indices of the private pages */
	int *shrd, nr_shrd;		/* indices of the still-shared pages */
	uint64_t *parent_pfn;		/* pfn of each page in the parent */
};

static inline uint64_t tag(int proc, int page)
{
	return 0x726d617000000000ULL ^ ((uint64_t)proc << 20) ^ (uint64_t)page;
}

static inline uint64_t page_addr(const struct server *s, int page)
{
	return s->base + ((uint64_t)page << PAGE_SHIFT);
}

static size_t machine_bytes(int n)
{
	/* the parent's P pages, each child's private copies, then room for slack */
	size_t frames = (size_t)opt.pages + (size_t)n * (opt.pages - opt.shared) + 256;
	size_t bytes = frames * PAGE_SIZE;

	bytes += bytes / 4 + 16 * MiB;
	return (bytes + MiB - 1) & ~(MiB - 1);
}

/* RssAnon of this process in KiB (umm's own structures; frames are shmem) */
static long rss_anon_kib(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long v = -1;

	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "RssAnon: %ld", &v) == 1)
			break;
	if (f)
		fclose(f);
	return v;
}

static void server_free(struct server *s)
{
	free(s->mm);
	free(s->priv);
	free(s->shrd);
	free(s->parent_pfn);
}

/*
 * Build the server with @n children.  Fills the fork and COW times of @r.
 * Return: false if it could not be built (the checks say why).
 */
static bool server_build(struct server *s, int n, struct run *r)
{
	struct umm_config cfg;
	int stride = opt.pages / opt.shared;
	uint64_t t_fork = 0, t0;
	long rss0;
	int ret;

	memset(s, 0, sizeof(*s));
	s->n = n;
	s->mm = calloc(n + 1, sizeof(*s->mm));
	s->priv = calloc(opt.pages, sizeof(int));
	s->shrd = calloc(opt.pages, sizeof(int));
	s->parent_pfn = calloc(opt.pages, sizeof(uint64_t));
	if (!s->mm || !s->priv || !s->shrd || !s->parent_pfn) {
		CHECK(0, "out of host memory");
		return false;
	}
	for (int i = 0; i < opt.pages; i++) {
		if (i % stride == 0 && s->nr_shrd < opt.shared)
			s->shrd[s->nr_shrd++] = i;
		else
			s->priv[s->nr_priv++] = i;
	}

	umm_config_init(&cfg);
	cfg.phys_bytes = r->phys = machine_bytes(n);
	ret = umm_create(&cfg, &s->u);
	if (ret < 0) {
		CHECK(0, "umm_create(%zu MiB) for N=%d: %s (try a smaller --pages)",
		      cfg.phys_bytes / MiB, n, strerror(-ret));
		s->u = NULL;
		return false;
	}
	umm_set_log(s->u, umm_log_cb, NULL);

	ret = umm_mm_create(s->u, &s->mm[0]);
	CHECK(ret == 0, "umm_mm_create: %d", ret);
	if (ret)
		return false;
	ret = umm_mmap(s->mm[0], 0, (uint64_t)opt.pages << PAGE_SHIFT,
		       UMM_PROT_READ | UMM_PROT_WRITE, UMM_MAP_PRIVATE | UMM_MAP_ANONYMOUS,
		       NULL, 0, &s->base);
	CHECK(ret == 0, "umm_mmap of %d pages: %d", opt.pages, ret);
	if (ret)
		return false;
	for (int i = 0; i < opt.pages; i++) {
		uint64_t v = tag(0, i);
		struct umm_pageinfo pi;
		ssize_t w = umm_write(s->mm[0], page_addr(s, i), &v, sizeof(v));

		CHECK(w == sizeof(v), "parent write of page %d: %zd", i, w);
		ret = umm_pagemap(s->mm[0], page_addr(s, i), &pi);
		CHECK(ret == 0 && (pi.flags & UMM_PI_ANON), "parent pagemap page %d: %d flags %#x",
		      i, ret, pi.flags);
		s->parent_pfn[i] = pi.pfn;
	}

	/* the forks, timed one by one so nothing else is in the figure */
	rss0 = rss_anon_kib();
	for (int c = 1; c <= n; c++) {
		t0 = now_ns();
		ret = umm_mm_fork(s->mm[0], &s->mm[c]);
		t_fork += now_ns() - t0;
		CHECK(ret == 0, "umm_mm_fork #%d: %d", c, ret);
		if (ret) {
			s->mm[c] = NULL;
			return false;
		}
	}
	r->fork_ms = t_fork / 1e6;

	/* each child makes its private copies */
	t0 = now_ns();
	for (int c = 1; c <= n; c++) {
		for (int j = 0; j < s->nr_priv; j++) {
			uint64_t v = tag(c, s->priv[j]);
			ssize_t w = umm_write(s->mm[c], page_addr(s, s->priv[j]), &v, sizeof(v));

			CHECK(w == sizeof(v), "child %d COW write of page %d: %zd", c, s->priv[j], w);
			if (w != sizeof(v))
				return false;
		}
	}
	r->cow_ms = (now_ns() - t0) / 1e6;
	if (rss0 >= 0 && rss_anon_kib() >= 0)
		r->kib_per_child = (double)(rss_anon_kib() - rss0) / n;
	return true;
}

/* Exit every child (timed), check what the parent is left with, then exit it. */
static void server_teardown(struct server *s, struct run *r)
{
	uint64_t t0 = now_ns();
	long leaked;

	if (!s->u)
		return;
	for (int c = 1; c <= s->n; c++)
		if (s->mm[c])
			umm_mm_exit(s->mm[c]);
	r->exit_ms = (now_ns() - t0) / 1e6;
	if (s->mm[0]) {
		for (int j = 0; j < s->nr_shrd; j++) {
			int got = umm_page_rmap_count(s->mm[0], page_addr(s, s->shrd[j]));

			CHECK(got == 1, "N=%d: after the children exit, shared page %d: "
			      "rmap_count %d, want 1", s->n, s->shrd[j], got);
		}
		umm_mm_exit(s->mm[0]);
	}
	leaked = umm_leak_check(s->u, NULL, NULL);
	CHECK(leaked == 0, "N=%d: umm_leak_check: %ld frames leaked", s->n, leaked);
	umm_destroy(s->u);
	s->u = NULL;
}

/* ---- correctness of the built server (untimed) ---- */

static void check_layout(struct server *s)
{
	int n = s->n;

	for (int c = 0; c <= n; c++) {
		struct umm_mm_stat st;

		umm_mm_get_stat(s->mm[c], &st);
		CHECK(st.rss_anon == (uint64_t)opt.pages, "N=%d proc %d: rss_anon %" PRIu64
		      ", want %d", n, c, st.rss_anon, opt.pages);
	}
	for (int c = 0; c <= n; c++) {
		for (int i = 0; i < opt.pages; i++) {
			bool shared = false, mine;
			struct umm_pageinfo pi;
			uint64_t v = 0;
			int ret;

			for (int j = 0; j < s->nr_shrd; j++)
				shared |= s->shrd[j] == i;
			mine = c > 0 && !shared;
			ret = umm_pagemap(s->mm[c], page_addr(s, i), &pi);
			CHECK(ret == 0, "N=%d proc %d page %d: pagemap %d", n, c, i, ret);
			if (shared) {
				CHECK(pi.pfn == s->parent_pfn[i] && pi.mapcount == n + 1 &&
				      !(pi.flags & UMM_PI_WRITE) && (pi.flags & UMM_PI_ANON),
				      "N=%d proc %d shared page %d: pfn %" PRIu64 " (parent's %" PRIu64
				      ") mapcount %d (want %d) flags %#x", n, c, i, pi.pfn,
				      s->parent_pfn[i], pi.mapcount, n + 1, pi.flags);
			} else if (mine) {
				CHECK(pi.pfn != s->parent_pfn[i] && pi.mapcount == 1 &&
				      (pi.flags & UMM_PI_WRITE) && (pi.flags & UMM_PI_ANON),
				      "N=%d child %d private page %d: pfn %" PRIu64 " (parent's %" PRIu64
				      ") mapcount %d flags %#x", n, c, i, pi.pfn, s->parent_pfn[i],
				      pi.mapcount, pi.flags);
			} else {	/* the parent's copy, every child has its own */
				CHECK(pi.pfn == s->parent_pfn[i] && pi.mapcount == 1,
				      "N=%d parent page %d: pfn %" PRIu64 " (was %" PRIu64
				      ") mapcount %d, want 1", n, i, pi.pfn, s->parent_pfn[i],
				      pi.mapcount);
			}
			ret = (int)umm_read(s->mm[c], page_addr(s, i), &v, sizeof(v));
			CHECK(ret == sizeof(v) && v == tag(mine ? c : 0, i),
			      "N=%d proc %d page %d: read %d, %#" PRIx64 " want %#" PRIx64,
			      n, c, i, ret, v, tag(mine ? c : 0, i));
		}
	}
}

static void check_rmap_counts(struct server *s)
{
	int n = s->n;

	for (int c = 1; c <= n; c++)
		for (int j = 0; j < s->nr_priv; j++) {
			int got = umm_page_rmap_count(s->mm[c], page_addr(s, s->priv[j]));

			CHECK(got == 1, "N=%d child %d private page %d: rmap_count %d, want 1",
			      n, c, s->priv[j], got);
		}
	for (int j = 0; j < s->nr_priv; j++) {
		int got = umm_page_rmap_count(s->mm[0], page_addr(s, s->priv[j]));

		CHECK(got == 1, "N=%d parent page %d: rmap_count %d, want 1", n, s->priv[j], got);
	}
	for (int j = 0; j < s->nr_shrd; j++) {
		int procs[3] = { 0, 1 + j % n, n };

		for (int k = 0; k < 3; k++) {
			int got = umm_page_rmap_count(s->mm[procs[k]], page_addr(s, s->shrd[j]));

			CHECK(got == n + 1, "N=%d proc %d shared page %d: rmap_count %d, want %d",
			      n, procs[k], s->shrd[j], got, n + 1);
		}
	}
}

/*
 * page_referenced counts exactly the mappings accessed since its last call.
 * Right after the build (no read yet): fork leaves the children's PTEs old,
 * as Linux's copy_present_pte does, so a shared page is young only in the
 * parent, and a child's copy is young from its COW write.
 */
static void check_referenced(struct server *s, uint64_t *rng)
{
	int n = s->n, got;
	int ks[4] = { 1, 2, (n + 1) / 2, n + 1 };
	int *order = malloc((n + 1) * sizeof(int));

	if (!order) {
		CHECK(0, "out of host memory");
		return;
	}
	for (int j = 0; j < s->nr_shrd; j++) {
		got = umm_page_referenced(s->mm[1 + j % n], page_addr(s, s->shrd[j]));
		CHECK(got == 1, "N=%d shared page %d after fork: referenced %d, want 1 "
		      "(the parent's write; the children's PTEs start old)", n, s->shrd[j], got);
		got = umm_page_referenced(s->mm[0], page_addr(s, s->shrd[j]));
		CHECK(got == 0, "N=%d shared page %d, second call: referenced %d, want 0",
		      n, s->shrd[j], got);
	}
	for (int c = 1; c <= n; c++) {
		int pg = s->priv[c % s->nr_priv];

		got = umm_page_referenced(s->mm[c], page_addr(s, pg));
		CHECK(got == 1, "N=%d child %d page %d after its COW write: referenced %d, want 1",
		      n, c, pg, got);
		got = umm_page_referenced(s->mm[c], page_addr(s, pg));
		CHECK(got == 0, "N=%d child %d page %d, second call: referenced %d, want 0",
		      n, c, pg, got);
	}

	/* read a shared page in k random processes: exactly k were young */
	for (int t = 0; t < 4; t++) {
		int k = ks[t] > n + 1 ? n + 1 : ks[t];
		int pg = s->shrd[t % s->nr_shrd];
		uint64_t v;

		for (int i = 0; i <= n; i++)
			order[i] = i;
		for (int i = 0; i < k; i++) {	/* partial Fisher-Yates */
			int j = i + xorshift64(rng) % (n + 1 - i), x = order[i];

			order[i] = order[j];
			order[j] = x;
		}
		got = umm_page_referenced(s->mm[0], page_addr(s, pg));
		CHECK(got >= 0, "N=%d shared page %d: referenced %d", n, pg, got);
		for (int i = 0; i < k; i++) {
			ssize_t rd = umm_read(s->mm[order[i]], page_addr(s, pg), &v, sizeof(v));

			CHECK(rd == sizeof(v) && v == tag(0, pg), "N=%d proc %d read of shared page %d",
			      n, order[i], pg);
		}
		got = umm_page_referenced(s->mm[order[0]], page_addr(s, pg));
		CHECK(got == k, "N=%d shared page %d read in %d processes: referenced %d",
		      n, pg, k, got);
		got = umm_page_referenced(s->mm[order[0]], page_addr(s, pg));
		CHECK(got == 0, "N=%d shared page %d, call after: referenced %d, want 0", n, pg, got);
	}
	free(order);
}

/* ---- the timed walks ---- */

struct pick {
	struct umm_mm *mm;
	uint64_t addr;
};

static struct pick pick_target(const struct server *s, enum target t, uint64_t *rng)
{
	int c;

	switch (t) {
	case T_A:
		c = 1 + xorshift64(rng) % s->n;
		return (struct pick){ s->mm[c], page_addr(s, s->priv[xorshift64(rng) % s->nr_priv]) };
	case T_A_HOT:
		return (struct pick){ s->mm[s->n], page_addr(s, s->priv[0]) };
	case T_A_FEW:
		c = 1 + xorshift64(rng) % (s->n < FEW_CHILDREN ? s->n : FEW_CHILDREN);
		return (struct pick){ s->mm[c], page_addr(s, s->priv[xorshift64(rng) % s->nr_priv]) };
	case T_B:
		c = xorshift64(rng) % (s->n + 1);
		return (struct pick){ s->mm[c], page_addr(s, s->shrd[xorshift64(rng) % s->nr_shrd]) };
	default:
		return (struct pick){ s->mm[0], page_addr(s, s->priv[xorshift64(rng) % s->nr_priv]) };
	}
}

/* One call of walk @w on @p; checks what it returns.  Return: its time in ns. */
static uint64_t call_once(struct server *s, enum walk w, enum target t, struct pick p)
{
	int want_maps = t == T_B ? s->n + 1 : 1;
	uint64_t t0, t1;
	int got;

	if (w == W_REFERENCED) {
		t0 = now_ns();
		got = umm_page_referenced(p.mm, p.addr);
		t1 = now_ns();
		CHECK(got >= 0 && got <= want_maps, "N=%d %s on %s: returned %d (max %d)",
		      s->n, walk_name[w], target_key[t], got, want_maps);
	} else if (w == W_COUNT) {
		t0 = now_ns();
		got = umm_page_rmap_count(p.mm, p.addr);
		t1 = now_ns();
		CHECK(got == want_maps, "N=%d %s on %s: returned %d, want %d",
		      s->n, walk_name[w], target_key[t], got, want_maps);
	} else {
		struct umm_pageinfo pi;

		t0 = now_ns();
		got = umm_pagemap(p.mm, p.addr, &pi);
		t1 = now_ns();
		CHECK(got == 0 && pi.mapcount == want_maps, "N=%d %s on %s: returned %d, "
		      "mapcount %d, want %d", s->n, walk_name[w], target_key[t], got,
		      pi.mapcount, want_maps);
	}
	return t1 - t0;
}

/*
 * The untimed warm-up of a slice: one sweep over every page the figure
 * picks from (for (b), every shared page from the parent: each call walks
 * all N+1 mappings anyway), so that the timed calls meet the steady state
 * of that working set, not what the previous slice left in the caches.
 */
static void sweep(struct server *s, enum walk w, enum target t)
{
	int nc = t == T_A_FEW && s->n > FEW_CHILDREN ? FEW_CHILDREN : s->n;

	switch (t) {
	case T_A:
	case T_A_FEW:
		for (int c = 1; c <= nc; c++)
			for (int j = 0; j < s->nr_priv; j++)
				call_once(s, w, t, (struct pick){ s->mm[c],
							      page_addr(s, s->priv[j]) });
		break;
	case T_B:
		for (int j = 0; j < s->nr_shrd; j++)
			call_once(s, w, t, (struct pick){ s->mm[0], page_addr(s, s->shrd[j]) });
		break;
	case T_C:
		for (int j = 0; j < s->nr_priv; j++)
			call_once(s, w, t, (struct pick){ s->mm[0], page_addr(s, s->priv[j]) });
		break;
	default:
		break;
	}
}

/*
 * One slice of a figure: the sweep and WARM_CALLS untimed calls, then
 * @count timed ones whose times go to @samples.  @rng carries the picks on
 * from the previous slice.
 */
#define WARM_CALLS 50

static void measure_slice(struct server *s, enum walk w, enum target t, uint64_t *rng,
			  int count, double *samples)
{
	sweep(s, w, t);
	for (int i = 0; i < WARM_CALLS + count; i++) {
		double d = (double)call_once(s, w, t, pick_target(s, t, rng)) - timer_ns;

		if (i >= WARM_CALLS)
			samples[i - WARM_CALLS] = d > 0 ? d : 0;
	}
}

/* ---- (a-cold): every call under the same cold caches ---- */

/* the walks (a-cold) is taken for: the one the target is about and the control */
static bool cold_walk(enum walk w)
{
	return w == W_REFERENCED || w == W_PAGEMAP;
}

#define PROBE_NODES 16

static struct {
	uint64_t *buf;			/* the sweep's buffer, 4 KiB pages */
	size_t bytes;
	size_t llc_bytes;		/* largest cache of cpu0, 0 if unknown */
	int llc_level;
	double sweep_ms;		/* median time of one sweep */
	double probe_warm_ns;		/* a dependent load of a line just read */
	double probe_cold_ns;		/* the same after a sweep */
	void **probe;			/* PROBE_NODES pointers, one per page */
} ev;

/* "107520K", "32M", "512": bytes, 0 if unreadable */
static size_t read_cache_size(const char *path)
{
	FILE *f = fopen(path, "r");
	unsigned long long v = 0;
	char unit = 0;
	int got;

	if (!f)
		return 0;
	got = fscanf(f, "%llu%c", &v, &unit);
	fclose(f);
	if (got < 1)
		return 0;
	if (unit == 'K' || unit == 'k')
		v <<= 10;
	else if (unit == 'M' || unit == 'm')
		v <<= 20;
	else if (unit == 'G' || unit == 'g')
		v <<= 30;
	return (size_t)v;
}

/* The largest cache of cpu0 (index3 is the L3 where there is one). */
static void probe_llc(void)
{
	for (int i = 0; i < 10; i++) {
		char path[96];
		size_t sz;
		int level = 0;
		FILE *f;

		snprintf(path, sizeof(path), "/sys/devices/system/cpu/cpu0/cache/index%d/size", i);
		sz = read_cache_size(path);
		snprintf(path, sizeof(path), "/sys/devices/system/cpu/cpu0/cache/index%d/level", i);
		f = fopen(path, "r");
		if (f) {
			if (fscanf(f, "%d", &level) != 1)
				level = 0;
			fclose(f);
		}
		if (sz > ev.llc_bytes) {
			ev.llc_bytes = sz;
			ev.llc_level = level;
		}
	}
}

/*
 * Read and write one word in every 64-byte line of the buffer: each line
 * is fetched and dirtied, so whatever the caches held before (umm's
 * structures, the page tables, the bench's own data) is pushed out to
 * memory, and the 4 KiB pages (THP off) push out the TLB's entries too.
 * The barrier keeps the compiler from dropping or shortening the loop.
 */
static void evict_caches(void)
{
	uint64_t *p = ev.buf;
	size_t words = ev.bytes / sizeof(uint64_t);

	for (size_t i = 0; i < words; i += 64 / sizeof(uint64_t))
		p[i] += i;
	__asm__ __volatile__("" : : "r"(p) : "memory");
}

/* ns per load of a chain of PROBE_NODES dependent loads, one per page */
static double probe_chain(void)
{
	void **q = ev.probe;
	uint64_t t0 = now_ns();

	while (q)
		q = (void **)*q;
	__asm__ __volatile__("" : : "r"(q) : "memory");
	return ((double)(now_ns() - t0) - timer_ns) / PROBE_NODES;
}

/*
 * Map and fault in the buffer (1.5x the largest cache, at least 64 MiB,
 * or --cold-mib), then check that a sweep does evict: a chain of loads
 * read just before a sweep must cost what memory costs after it, not what
 * the L1 costs.  Return: false if the buffer could not be had.
 */
static bool evict_setup(void)
{
	enum { TRIES = 5 };
	double sw[TRIES], warm[TRIES], cold[TRIES];
	char *pr;

	probe_llc();
	if (opt.cold_mib)
		ev.bytes = (size_t)opt.cold_mib * MiB;
	else {
		ev.bytes = ev.llc_bytes + ev.llc_bytes / 2;
		if (ev.bytes < 64 * MiB)
			ev.bytes = 64 * MiB;
		ev.bytes = (ev.bytes + MiB - 1) & ~(MiB - 1);
	}
	ev.buf = mmap(NULL, ev.bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	pr = mmap(NULL, PROBE_NODES * 4096, PROT_READ | PROT_WRITE,
		  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (ev.buf == MAP_FAILED || pr == MAP_FAILED) {
		fprintf(stderr, "bench_rmap: cannot map %zu MiB for the cache eviction: %s\n",
			ev.bytes / MiB, strerror(errno));
		ev.buf = NULL;
		return false;
	}
	madvise(ev.buf, ev.bytes, MADV_NOHUGEPAGE);
	madvise(pr, PROBE_NODES * 4096, MADV_NOHUGEPAGE);
	memset(ev.buf, 1, ev.bytes);
	/* node i in page i, at a different line of each page */
	for (int i = 0; i < PROBE_NODES; i++) {
		void **node = (void **)(pr + (size_t)i * 4096 + (size_t)(i * 5 % 64) * 64);

		*node = i + 1 < PROBE_NODES ?
			(void *)(pr + (size_t)(i + 1) * 4096 + (size_t)((i + 1) * 5 % 64) * 64) :
			NULL;
		if (i == 0)
			ev.probe = node;
	}
	for (int k = 0; k < TRIES; k++) {
		uint64_t t0;

		probe_chain();
		warm[k] = probe_chain();
		t0 = now_ns();
		evict_caches();
		sw[k] = (now_ns() - t0) / 1e6;
		(void)now_ns();
		cold[k] = probe_chain();
	}
	ev.sweep_ms = summarize(sw, TRIES).median;
	ev.probe_warm_ns = summarize(warm, TRIES).median;
	ev.probe_cold_ns = summarize(cold, TRIES).median;
	return true;
}

/*
 * One (a-cold) call: the pick is made first (it reads the bench's own
 * arrays), then the sweep, then one clock read to bring the clock's own
 * code and data back (the pair's overhead stays the timer_ns measured
 * warm), then the timed call on the cold caches.
 */
static double measure_cold_once(struct server *s, enum walk w, uint64_t *rng)
{
	struct pick p = pick_target(s, T_A, rng);
	double d;

	evict_caches();
	(void)now_ns();
	d = (double)call_once(s, w, T_A, p) - timer_ns;
	return d > 0 ? d : 0;
}

/*
 * Every N's server lives at once and the figures are taken in ROUNDS
 * rounds, each visiting every N in turn, so that a slow patch of a shared
 * machine (frequency, a noisy neighbour) lands on every N alike instead of
 * on whichever N was being measured at the time.
 */
#define ROUNDS 5

static void run_begin(struct run *r)
{
	cur_ok = r->valid;
}

static void run_end(struct run *r)
{
	r->valid = cur_ok;
}

static void bench_all(void)
{
	static struct server srv[MAX_RUNS];
	double *samples[MAX_RUNS][NR_WALKS][NR_TARGETS] = { { { NULL } } };
	double *cold_samples[MAX_RUNS][NR_WALKS] = { { NULL } };
	uint64_t rng[MAX_RUNS][NR_WALKS][NR_TARGETS];
	uint64_t cold_rng[MAX_RUNS][NR_WALKS];
	bool built[MAX_RUNS] = { false };

	/* build and check every server, one N after the other */
	for (int i = 0; i < opt.nr_ns; i++) {
		struct run *r = &runs[nr_runs++];
		uint64_t crng = 0x5eed0000ULL + opt.ns[i];

		*r = (struct run){ .n = opt.ns[i], .valid = true };
		for (int w = 0; w < NR_WALKS; w++) {
			r->cold[w] = (struct fig){ __builtin_nan(""), __builtin_nan(""),
						   __builtin_nan("") };
			cold_rng[i][w] = 0xc01dc01dc01dULL ^ ((uint64_t)r->n << 8) ^ w;
			if (opt.cold_reps && cold_walk(w)) {
				cold_samples[i][w] = malloc(opt.cold_reps * sizeof(double));
				if (!cold_samples[i][w]) {
					fprintf(stderr, "bench_rmap: out of host memory\n");
					exit(1);
				}
			}
		}
		for (int w = 0; w < NR_WALKS; w++)
			for (int t = 0; t < NR_TARGETS; t++) {
				r->f[w][t] = (struct fig){ __builtin_nan(""), __builtin_nan(""),
							   __builtin_nan("") };
				rng[i][w][t] = 0x9e3779b97f4a7c15ULL ^ ((uint64_t)r->n << 8) ^
					       (w << 4) ^ t;
				samples[i][w][t] = malloc(opt.calls * sizeof(double));
				if (!samples[i][w][t]) {
					fprintf(stderr, "bench_rmap: out of host memory\n");
					exit(1);
				}
			}
		r->fork_ms = r->cow_ms = r->exit_ms = r->validate_ms = __builtin_nan("");
		r->kib_per_child = __builtin_nan("");
		if (isatty(STDERR_FILENO))
			fprintf(stderr, "bench_rmap: building N=%d ...\r", r->n);
		run_begin(r);
		built[i] = server_build(&srv[i], r->n, r);
		if (built[i]) {
			check_referenced(&srv[i], &crng);
			check_layout(&srv[i]);
			check_rmap_counts(&srv[i]);
		}
		run_end(r);
	}

	/* the timed walks, interleaved across N */
	for (int round = 0; round < ROUNDS; round++) {
		int from = opt.calls * round / ROUNDS, to = opt.calls * (round + 1) / ROUNDS;
		int cfrom = opt.cold_reps * round / ROUNDS;
		int cto = opt.cold_reps * (round + 1) / ROUNDS;

		if (isatty(STDERR_FILENO))
			fprintf(stderr, "bench_rmap: round %d of %d ...   \r", round + 1, ROUNDS);
		for (int i = 0; i < nr_runs; i++) {
			if (!built[i])
				continue;
			run_begin(&runs[i]);
			for (int w = 0; w < NR_WALKS; w++)
				for (int t = 0; t < NR_TARGETS; t++)
					measure_slice(&srv[i], w, t, &rng[i][w][t], to - from,
						      samples[i][w][t] + from);
			run_end(&runs[i]);
		}
		/* (a-cold): one call per N and walk in turn, each after its own sweep */
		for (int k = cfrom; k < cto; k++) {
			for (int i = 0; i < nr_runs; i++) {
				if (!built[i])
					continue;
				run_begin(&runs[i]);
				for (int w = 0; w < NR_WALKS; w++)
					if (cold_samples[i][w])
						cold_samples[i][w][k] =
							measure_cold_once(&srv[i], w, &cold_rng[i][w]);
				run_end(&runs[i]);
			}
		}
	}

	/* validate, take the servers down, summarize */
	for (int i = 0; i < nr_runs; i++) {
		struct run *r = &runs[i];
		char msg[512] = "";

		run_begin(r);
		if (built[i]) {
			uint64_t t0 = now_ns();
			int ret = umm_validate(srv[i].u, UMM_VALIDATE_EXACT | UMM_VALIDATE_RMAP,
					       msg, sizeof(msg));

			r->validate_ms = (now_ns() - t0) / 1e6;
			CHECK(ret == 0, "N=%d: umm_validate(EXACT|RMAP): %d: %s", r->n, ret, msg);
			for (int w = 0; w < NR_WALKS; w++) {
				for (int t = 0; t < NR_TARGETS; t++)
					r->f[w][t] = summarize(samples[i][w][t], opt.calls);
				if (cold_samples[i][w])
					r->cold[w] = summarize(cold_samples[i][w], opt.cold_reps);
			}
		}
		server_teardown(&srv[i], r);
		server_free(&srv[i]);
		for (int w = 0; w < NR_WALKS; w++) {
			for (int t = 0; t < NR_TARGETS; t++)
				free(samples[i][w][t]);
			free(cold_samples[i][w]);
		}
		run_end(r);
		if (!r->valid)
			nr_failed++;
	}
	if (isatty(STDERR_FILENO))
		fprintf(stderr, "%40s\r", "");
}

/* ---- output ---- */


/* the runs at N = 1 and at the largest N; false if either is missing or failed */
static bool end_runs(const struct run **lo, const struct run **hi)
{
	*lo = *hi = NULL;
	for (int i = 0; i < nr_runs; i++) {
		if (runs[i].n == 1)
			*lo = &runs[i];
		if (runs[i].n > 1 && (!*hi || runs[i].n > (*hi)->n))
			*hi = &runs[i];
	}
	return *lo && *hi && (*lo)->valid && (*hi)->valid;
}

/* (a) at the largest N over (a) at N = 1, NAN if either is missing */
static double a_ratio(enum walk w, enum target t)
{
	const struct run *lo, *hi;

	if (!end_runs(&lo, &hi))
		return __builtin_nan("");
	return hi->f[w][t].median / lo->f[w][t].median;
}

/* the same for (a-cold); NAN where it was not taken */
static double cold_ratio(enum walk w)
{
	const struct run *lo, *hi;

	if (!end_runs(&lo, &hi))
		return __builtin_nan("");
	return hi->cold[w].median / lo->cold[w].median;
}

static int largest_n(void)
{
	int m = 0;

	for (int i = 0; i < nr_runs; i++)
		if (runs[i].n > m)
			m = runs[i].n;
	return m;
}

/* (a) minus the pagemap control at @n: the rmap walk without reaching the page */
static double walk_only(int n)
{
	for (int i = 0; i < nr_runs; i++)
		if (runs[i].n == n && runs[i].valid)
			return runs[i].f[W_REFERENCED][T_A].median - runs[i].f[W_PAGEMAP][T_A].median;
	return __builtin_nan("");
}

/* the same for (a-cold) */
static double cold_walk_only(int n)
{
	for (int i = 0; i < nr_runs; i++)
		if (runs[i].n == n && runs[i].valid)
			return runs[i].cold[W_REFERENCED].median - runs[i].cold[W_PAGEMAP].median;
	return __builtin_nan("");
}

static const char *verdict(double ratio)
{
	return ratio != ratio ? "-" : ratio <= A_RATIO_TARGET ? "met" : "NOT MET";
}

static const char *fmt_ratio(double v)
{
	static char buf[4][32];
	static int k;
	char *b = buf[k++ % 4];

	if (v != v)
		snprintf(b, 32, "-");
	else
		snprintf(b, 32, "%.2fx", v);
	return b;
}

static void fmt(char *buf, size_t len, double v, const char *f, bool valid)
{
	if (!valid)
		snprintf(buf, len, "FAILED");
	else if (v != v)
		snprintf(buf, len, "-");
	else
		snprintf(buf, len, f, v);
}

static void print_tables(double secs)
{
	int stride = opt.pages / opt.shared;
	char cold_what[96];

	if (ev.buf)
		snprintf(cold_what, sizeof(cold_what), "median of %d calls, umm_page_referenced "
			 "and umm_pagemap only", opt.cold_reps);
	else
		snprintf(cold_what, sizeof(cold_what), "not taken in this run (--cold-reps 0)");

	printf("machine: %s, %ld cores, %s\n", mach.cpu, mach.cores, mach.kernel);
	printf("layout: the parent maps %d pages (private anonymous, all written) and forks N "
	       "children;\n        each child COW-writes its %d private pages; %d pages (every %d%s) "
	       "stay shared by all N+1\n", opt.pages, opt.pages - opt.shared, opt.shared,
	       stride, stride == 1 ? "st" : stride == 2 ? "nd" : stride == 3 ? "rd" : "th");
	printf("figures: ns per call, median of %d calls (each on a random child/page), taken in "
	       "%d rounds that\n         visit every N in turn; each slice after an untimed sweep "
	       "over its pages and %d calls;\n         timer overhead %.0f ns subtracted\n",
	       opt.calls, ROUNDS, WARM_CALLS, timer_ns);
	printf("  (a)   a child's private copy: 1 mapping; random child and page\n"
	       "  (a10) the same, among the first %d children only (the memory footprint of N=%d)\n"
	       "  (a')  the same, one page over and over (hot caches: the walk alone)\n"
	       "  (a-cold) (a)'s random pick, each call right after an untimed sweep that evicts\n"
	       "        the caches and TLB, so every N is measured equally cold and N's footprint\n"
	       "        drops out; %s\n"
	       "  (b)   a page still shared by all N+1 processes: N+1 mappings\n"
	       "  (c)   the parent's own copy after every child COW'd: 1 mapping, but in the\n"
	       "        root anon_vma, whose tree holds all N+1 VMAs (Linux pays the same)\n",
	       FEW_CHILDREN, FEW_CHILDREN, cold_what);
	if (ev.buf)
		printf("eviction: a %zu MiB read+write sweep (%s), %.0f ms each, one\n"
		       "          per (a-cold) call; after it a load of a line read just before costs "
		       "%.0f ns\n          (%.0f ns without the sweep)\n", ev.bytes / MiB,
		       opt.cold_mib ? "--cold-mib" : ev.llc_bytes ?
		       (ev.llc_level == 3 ? "1.5x the L3, at least 64 MiB" :
			"1.5x the largest cache, at least 64 MiB") : "cache size unknown: 64 MiB",
		       ev.sweep_ms, ev.probe_cold_ns, ev.probe_warm_ns);
	else
		printf("eviction: not done, (a-cold) not taken\n");

	for (int w = 0; w < NR_WALKS; w++) {
		printf("\n%s (ns/call)%s\n", walk_name[w], w == W_PAGEMAP ?
		       ": the control, reaching the page without a walk" : "");
		printf("  %6s %11s %11s %11s %11s %11s %14s %11s\n", "N", "(a)", "(a-cold)", "(a10)",
		       "(a')", "(b)", "(b)/mapping", "(c)");
		for (int i = 0; i < nr_runs; i++) {
			const struct run *r = &runs[i];
			char a[32], ac[32], f[32], h[32], b[32], bm[32] = "-", c[32];

			fmt(a, sizeof(a), r->f[w][T_A].median, "%.0f", r->valid);
			fmt(ac, sizeof(ac), r->cold[w].median, "%.0f", r->valid);
			fmt(f, sizeof(f), r->f[w][T_A_FEW].median, "%.0f", r->valid);
			fmt(h, sizeof(h), r->f[w][T_A_HOT].median, "%.0f", r->valid);
			fmt(b, sizeof(b), r->f[w][T_B].median, "%.0f", r->valid);
			if (w != W_PAGEMAP)
				fmt(bm, sizeof(bm), r->f[w][T_B].median / (r->n + 1), "%.1f",
				    r->valid);
			fmt(c, sizeof(c), r->f[w][T_C].median, "%.0f", r->valid);
			printf("  %6d %11s %11s %11s %11s %11s %14s %11s\n", r->n, a, ac, f, h, b, bm,
			       c);
		}
		if (cold_walk(w) && ev.buf)
			printf("  N=%d / N=1: (a) %s, (a-cold) %s, (a10) %s, (a') %s\n", largest_n(),
			       fmt_ratio(a_ratio(w, T_A)), fmt_ratio(cold_ratio(w)),
			       fmt_ratio(a_ratio(w, T_A_FEW)), fmt_ratio(a_ratio(w, T_A_HOT)));
		else
			printf("  N=%d / N=1: (a) %s, (a10) %s, (a') %s\n", largest_n(),
			       fmt_ratio(a_ratio(w, T_A)), fmt_ratio(a_ratio(w, T_A_FEW)),
			       fmt_ratio(a_ratio(w, T_A_HOT)));
	}

	double ra = a_ratio(W_REFERENCED, T_A);
	double rc = cold_ratio(W_REFERENCED);
	double lo_walk = walk_only(1), hi_walk = walk_only(largest_n());
	double lo_cwalk = cold_walk_only(1), hi_cwalk = cold_walk_only(largest_n());

	printf("\ntarget: (a) umm_page_referenced on a child's private copy stays flat, "
	       "N=%d within %.0fx of N=1:\n  (a) %s -> %s\n", largest_n(), A_RATIO_TARGET,
	       fmt_ratio(ra), ra != ra ? "-" : ra <= A_RATIO_TARGET ? "met" : "NOT MET");
	printf("  (a-cold) %s -> %s%s\n", fmt_ratio(rc), verdict(rc), ev.buf ? "" : " (not taken)");
	if (ra == ra && rc == rc)
		printf("  so the %.0fx is %s by random-child (a), whose working set grows with N, and "
		       "%s by (a-cold),\n  the same pick with every N equally cold (the walk's own "
		       "scaling)\n", A_RATIO_TARGET, ra <= A_RATIO_TARGET ? "met" : "missed",
		       rc <= A_RATIO_TARGET ? "met" : "missed");
	printf("  controls: (a10) %s, (a') %s; (a) minus umm_pagemap's (a): %.0f ns at N=1, "
	       "%.0f ns at N=%d (%s)\n",
	       fmt_ratio(a_ratio(W_REFERENCED, T_A_FEW)),
	       fmt_ratio(a_ratio(W_REFERENCED, T_A_HOT)), lo_walk, hi_walk, largest_n(),
	       fmt_ratio(hi_walk / lo_walk));
	if (ev.buf)
		printf("  cold control: umm_pagemap (a-cold) %s; (a-cold) minus umm_pagemap's "
		       "(a-cold): %.0f ns at N=1,\n  %.0f ns at N=%d (%s)\n",
		       fmt_ratio(cold_ratio(W_PAGEMAP)), lo_cwalk, hi_cwalk, largest_n(),
		       fmt_ratio(hi_cwalk / lo_cwalk));

	printf("\nfork and the rest of the set-up (ms)\n");
	printf("  %6s %9s %14s %10s %13s %10s %10s %12s\n", "N", "phys MiB", "fork (N forks)",
	       "us/fork", "COW writes", "exit all", "validate", "host KiB/child");
	for (int i = 0; i < nr_runs; i++) {
		const struct run *r = &runs[i];
		char f[32], pf[32], cw[32], ex[32], va[32], kc[32];

		fmt(f, sizeof(f), r->fork_ms, "%.2f", true);
		fmt(pf, sizeof(pf), r->fork_ms * 1000 / r->n, "%.1f", true);
		fmt(cw, sizeof(cw), r->cow_ms, "%.2f", true);
		fmt(ex, sizeof(ex), r->exit_ms, "%.2f", true);
		fmt(va, sizeof(va), r->validate_ms, "%.1f", true);
		fmt(kc, sizeof(kc), r->kib_per_child, "%.1f", true);
		printf("  %6d %9zu %14s %10s %13s %10s %10s %12s%s\n", r->n, r->phys / MiB, f, pf,
		       cw, ex, va, kc, r->valid ? "" : "  (FAILED)");
	}
	printf("  (validate = umm_validate(EXACT | RMAP), once per N; host KiB/child = growth of "
	       "this process's RssAnon\n   over the forks and COW writes, per child: umm's own "
	       "structures, page tables included)\n");
	printf("\nno host column: Linux has no userspace entry to page_referenced; the comparison "
	       "is with the design's own scaling\n");
	print_total(secs, "rows");
}


static void print_json(double secs)
{
	double ra = a_ratio(W_REFERENCED, T_A);
	double rc = cold_ratio(W_REFERENCED);

	json_machine();
	printf("},\n  \"config\": {\"pages\": %d, \"shared\": %d, \"calls\": %d, "
	       "\"cold_calls\": %d, \"quick\": %s, \"timer_ns\": %.1f},\n", opt.pages,
	       opt.shared, opt.calls, ev.buf ? opt.cold_reps : 0, opt.quick ? "true" : "false",
	       timer_ns);
	printf("  \"eviction\": {\"done\": %s, \"sweep_mib\": %zu, \"llc_kib\": %zu, "
	       "\"sweep_ms\": ", ev.buf ? "true" : "false", ev.bytes / MiB, ev.llc_bytes >> 10);
	json_num(ev.buf ? ev.sweep_ms : __builtin_nan(""));
	printf(", \"load_after_sweep_ns\": ");
	json_num(ev.buf ? ev.probe_cold_ns : __builtin_nan(""));
	printf(", \"load_without_sweep_ns\": ");
	json_num(ev.buf ? ev.probe_warm_ns : __builtin_nan(""));
	printf("},\n  \"runs\": [\n");
	for (int i = 0; i < nr_runs; i++) {
		const struct run *r = &runs[i];

		printf("    {\"n\": %d, \"phys_mib\": %zu, \"fork_ms\": ", r->n, r->phys / MiB);
		json_num(r->fork_ms);
		printf(", \"cow_ms\": ");
		json_num(r->cow_ms);
		printf(", \"exit_ms\": ");
		json_num(r->exit_ms);
		printf(", \"validate_ms\": ");
		json_num(r->validate_ms);
		printf(", \"host_kib_per_child\": ");
		json_num(r->kib_per_child);
		for (int w = 0; w < NR_WALKS; w++) {
			printf(",\n     \"%s\": {", walk_name[w] + 4);
			for (int t = 0; t < NR_TARGETS; t++) {
				const struct fig *f = &r->f[w][t];

				printf("%s\"%s\": {\"median_ns\": ", t ? ", " : "", target_key[t]);
				json_num(r->valid ? f->median : __builtin_nan(""));
				printf(", \"p10_ns\": ");
				json_num(r->valid ? f->p10 : __builtin_nan(""));
				printf(", \"p90_ns\": ");
				json_num(r->valid ? f->p90 : __builtin_nan(""));
				printf("}");
			}
			if (cold_walk(w) && ev.buf) {
				const struct fig *f = &r->cold[w];

				printf(", \"child_private_cold\": {\"median_ns\": ");
				json_num(r->valid ? f->median : __builtin_nan(""));
				printf(", \"p10_ns\": ");
				json_num(r->valid ? f->p10 : __builtin_nan(""));
				printf(", \"p90_ns\": ");
				json_num(r->valid ? f->p90 : __builtin_nan(""));
				printf("}");
			}
			printf(", \"shared_ns_per_mapping\": ");
			json_num(r->valid ? r->f[w][T_B].median / (r->n + 1) : __builtin_nan(""));
			printf("}");
		}
		printf(",\n     \"valid\": %s}%s\n", r->valid ? "true" : "false",
		       i + 1 < nr_runs ? "," : "");
	}
	printf("  ],\n  \"referenced_child_private_ratio\": ");
	json_num(ra);
	printf(",\n  \"referenced_child_private_ratio_n\": %d", largest_n());
	printf(",\n  \"target_ratio\": %.1f, \"target_met\": %s", A_RATIO_TARGET,
	       ra == ra && ra <= A_RATIO_TARGET ? "true" : "false");
	printf(",\n  \"referenced_child_private_cold_ratio\": ");
	json_num(rc);
	printf(", \"pagemap_child_private_cold_ratio\": ");
	json_num(cold_ratio(W_PAGEMAP));
	printf(", \"cold_target_met\": %s", rc == rc && rc <= A_RATIO_TARGET ? "true" : "false");
	printf(",\n  \"seconds\": %.1f,\n  \"checks_passed\": %s\n}\n", secs,
	       nr_failed ? "false" : "true");
}

/* ===================================================================== */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: bench_rmap [options]\n"
		"  --reps N     timed calls per figure, median taken (default 5000)\n"
		"  --pages P    pages the parent maps (default 64)\n"
		"  --shared S   of which stay shared after the children's writes (default 16)\n"
		"  --n LIST     the numbers of children, comma-separated (default 1,10,100,1000)\n"
		"  --cold-reps N  timed calls per (a-cold) figure, each after a cache-evicting\n"
		"               sweep (default 200; 0 leaves the column out)\n"
		"  --cold-mib M the sweep's size (default 1.5x the last-level cache, >= 64 MiB)\n"
		"  --quick      N up to 100, 500 calls per figure and 10 per (a-cold) (a smoke test)\n"
		"  --json       machine-readable output\n");
}


/* --n 1,10,100: the numbers of children, each run in turn */
static void parse_ns(const char *s)
{
	char buf[256], *tok, *save;

	if (!s || strlen(s) >= sizeof(buf)) {
		fprintf(stderr, "bench_rmap: --n wants a list like 1,10,100\n");
		exit(2);
	}
	strcpy(buf, s);
	opt.nr_ns = 0;
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (opt.nr_ns == MAX_RUNS) {
			fprintf(stderr, "bench_rmap: --n takes at most %d numbers\n", MAX_RUNS);
			exit(2);
		}
		opt.ns[opt.nr_ns++] = parse_num(tok, "--n", 1, 100000);
	}
	opt.ns_given = true;
}

int main(int argc, char **argv)
{
	long reps = -1, cold_reps = -1;
	uint64_t t0;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (!strcmp(a, "--reps"))
			reps = parse_num(opt_arg(argc, argv, &i), a, 10, MAX_CALLS);
		else if (!strcmp(a, "--cold-reps"))
			cold_reps = parse_num(opt_arg(argc, argv, &i), a, 0, MAX_CALLS);
		else if (!strcmp(a, "--cold-mib"))
			opt.cold_mib = parse_num(opt_arg(argc, argv, &i), a, 1, 1 << 16);
		else if (!strcmp(a, "--n"))
			parse_ns(opt_arg(argc, argv, &i));
		else if (!strcmp(a, "--pages"))
			opt.pages = parse_num(opt_arg(argc, argv, &i), a, 2, 1 << 16);
		else if (!strcmp(a, "--shared"))
			opt.shared = parse_num(opt_arg(argc, argv, &i), a, 1, 1 << 16);
		else
			common_opt(a, &opt.quick, &opt.json, usage);
	}
	if (opt.shared >= opt.pages) {
		fprintf(stderr, "bench_rmap: --shared must be below --pages\n");
		return 2;
	}
	if (opt.quick) {
		if (!opt.ns_given)
			opt.nr_ns = 3;	/* 1, 10, 100 */
		opt.calls = 500;
		opt.cold_reps = 10;
	}
	if (reps > 0)
		opt.calls = reps;
	if (cold_reps >= 0)
		opt.cold_reps = cold_reps;

	probe_machine();
	measure_timer();
	if (opt.cold_reps && !evict_setup())
		opt.cold_reps = 0;
	t0 = now_ns();
	if (!opt.json) {
		printf("bench_rmap: rmap walks in a forking server (%s)\n", opt.quick ? "quick" : "full");
		fflush(stdout);
	}
	bench_all();

	return bench_finish(t0, opt.json, print_json, print_tables);
}
