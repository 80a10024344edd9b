// SPDX-License-Identifier: MIT
/*
 * t_rmap.c - the anonymous reverse map through the public API: rmap counts
 * of COW-shared pages after fork and after each side writes, fork trees
 * with exits in the middle, mremap/mprotect/munmap/merges of ranges whose
 * pages come from several anon_vmas, page_referenced, try_to_unmap and
 * page_mkclean on anonymous pages, a long fork-and-exit chain, a
 * concurrent run of families forking against rmap walkers, and walkers
 * racing the teardown of the object (file or shmem) a page belongs to.
 *
 * Most tests keep a model of a fork tree: per live mm and per page, the
 * "frame" (an id) it maps: fork copies the ids, a write gives the writer a
 * new one.  Then for every live mm and page: umm_page_rmap_count() and the
 * pagemap mapcount equal the number of live mms with the same id, two
 * (mm, page) pairs have the same pfn exactly when they have the same id,
 * the bytes are those the id's writer wrote, and umm_validate(EXACT |
 * RMAP) holds.  Layouts are one character per page from BASE.
 */
#include <dlfcn.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/stat.h>

#include <umm/umm.h>

#define FIX_VALIDATE	VALIDATE_ALL
#include "tap.h"
#include "fixture.h"

/* ---- ids ---- */

/* A page's content for id @id: every word names the id and its place. */
static void id_fill(uint64_t *w, uint64_t id)
{
	for (size_t i = 0; i < PS / 8; i++)
		w[i] = id * 0x9e3779b97f4a7c15ULL + i;
}

static bool write_id(struct umm_mm *mm, uint64_t addr, uint64_t id)
{
	uint64_t w[PS / 8];
	ssize_t r;

	id_fill(w, id);
	r = umm_write(mm, addr, w, PS);
	if (r != PS)
		TAP_DIAG("umm_write(%#" PRIx64 ") = %zd", addr, r);
	return r == PS;
}

static bool holds_id(struct umm_mm *mm, uint64_t addr, uint64_t id)
{
	uint64_t w[PS / 8], want[PS / 8];
	ssize_t r = umm_read(mm, addr, w, PS);

	if (r != PS) {
		TAP_DIAG("umm_read(%#" PRIx64 ") = %zd", addr, r);
		return false;
	}
	id_fill(want, id);
	if (memcmp(w, want, PS)) {
		TAP_DIAG("page at %#" PRIx64 " does not hold id %" PRIu64 " (word 0: %#" PRIx64
			 ")", addr, id, w[0]);
		return false;
	}
	return true;
}

/* Ids @id0, @id0 + 1, ... written to the @n pages at AT(0). */
static bool write_ids(struct umm_mm *mm, int n, uint64_t id0)
{
	for (int i = 0; i < n; i++)
		ASSERT_TRUE(write_id(mm, AT(i), id0 + (uint64_t)i));
	return true;
}

/* A 16 MiB machine and an mm in it with @n pages at AT(0) (@flags: PRIV or SHRD). */
static bool parent_mm(struct umm **u, struct umm_mm **p, int n, int flags)
{
	ASSERT_OK(make_machine(16 << 20, 1, 0, u));
	ASSERT_OK(umm_mm_create(*u, p));
	ASSERT_OK(map_at(*p, AT(0), n, RW, flags));
	return true;
}

/* ---- the fork-tree model ---- */

#define MAXN	256
#define NPAGES	4

struct node {
	struct umm_mm *mm;
	int parent;
	uint64_t base;			/* where its NPAGES pages are mapped */
	uint64_t frame[NPAGES];		/* 0: never written */
};

struct tree {
	struct umm *u;
	struct node n[MAXN];
	int nr;
	uint64_t next_id;
};

static int tree_root(struct tree *t, size_t phys)
{
	memset(t, 0, sizeof(*t));
	t->next_id = 1;
	if (make_machine(phys, 1, 0, &t->u) || umm_mm_create(t->u, &t->n[0].mm))
		return -1;
	t->n[0].parent = -1;
	t->n[0].base = AT(0);
	t->nr = 1;
	return map_at(t->n[0].mm, AT(0), NPAGES, RW, PRIV);
}

static bool tree_write(struct tree *t, int i, int p)
{
	uint64_t id = t->next_id++;

	if (!write_id(t->n[i].mm, t->n[i].base + PG(p), id))
		return false;
	t->n[i].frame[p] = id;
	return true;
}

static int tree_fork(struct tree *t, int i)
{
	struct umm_mm *child;
	int j = t->nr;

	if (j == MAXN || umm_mm_fork(t->n[i].mm, &child))
		return -1;
	t->n[j] = t->n[i];
	t->n[j].mm = child;
	t->n[j].parent = i;
	t->nr++;
	return j;
}

/* The model of a moved range: node @i's pages now live at @base. */
static void tree_moved(struct tree *t, int i, uint64_t base)
{
	t->n[i].base = base;
}

static void tree_exit(struct tree *t, int i)
{
	umm_mm_exit(t->n[i].mm);
	t->n[i].mm = NULL;
}

static int tree_sharers(const struct tree *t, uint64_t id, int p)
{
	int c = 0;

	for (int j = 0; j < t->nr; j++)
		if (t->n[j].mm && t->n[j].frame[p] == id)
			c++;
	return c;
}

/*
 * Check every live node against the model: rmap counts, mapcounts, pfn
 * identity, contents; then the machine's invariants.
 */
static bool tree_check(struct tree *t)
{
	static uint64_t pfn[MAXN][NPAGES];

	for (int i = 0; i < t->nr; i++) {
		struct node *n = &t->n[i];

		if (!n->mm)
			continue;
		for (int p = 0; p < NPAGES; p++) {
			uint64_t addr = n->base + PG(p);
			struct umm_pageinfo pi = pinfo(n->mm, addr);
			int want = tree_sharers(t, n->frame[p], p), got;

			if (!n->frame[p]) {
				if (pi.flags != 0) {
					TAP_DIAG("node %d page %d: untouched but flags %#x", i, p,
						 pi.flags);
					return false;
				}
				ASSERT_ERR(umm_page_rmap_count(n->mm, addr), EFAULT);
				continue;
			}
			got = umm_page_rmap_count(n->mm, addr);
			if (got != want || pi.mapcount != want) {
				TAP_DIAG("node %d page %d (id %" PRIu64 "): rmap count %d, mapcount "
					 "%d, expected %d", i, p, n->frame[p], got, pi.mapcount, want);
				return false;
			}
			ASSERT_EQ(pi.flags & (UMM_PI_PRESENT | UMM_PI_ANON),
				  UMM_PI_PRESENT | UMM_PI_ANON);
			/* only an exclusive page may be writable */
			if (want > 1)
				ASSERT_FALSE(pi.flags & UMM_PI_WRITE);
			pfn[i][p] = pi.pfn;
			if (!holds_id(n->mm, addr, n->frame[p])) {
				TAP_DIAG("node %d page %d", i, p);
				return false;
			}
		}
	}
	for (int i = 0; i < t->nr; i++) {
		for (int j = i; j < t->nr; j++) {
			if (!t->n[i].mm || !t->n[j].mm)
				continue;
			for (int p = 0; p < NPAGES; p++) {
				uint64_t a = t->n[i].frame[p], b = t->n[j].frame[p];

				if (!a || !b)
					continue;
				if ((a == b) != (pfn[i][p] == pfn[j][p])) {
					TAP_DIAG("nodes %d, %d page %d: ids %" PRIu64 ", %" PRIu64
						 ", pfns %" PRIu64 ", %" PRIu64, i, j, p, a, b,
						 pfn[i][p], pfn[j][p]);
					return false;
				}
			}
		}
	}
	return machine_valid(t->u);
}

static bool tree_done(struct tree *t)
{
	for (int i = 0; i < t->nr; i++)
		if (t->n[i].mm)
			tree_exit(t, i);
	return machine_done(t->u);
}

/* ---- fork: counts per sharer ---- */

/*
 * parent P writes 4 pages and forks C0, C1, C2:  every page is mapped by 4.
 * Each child in turn writes page 0: its copy is its own (count 1), and P's
 * page loses one sharer each time.
 */
static bool test_fork_counts(void)
{
	struct tree t;
	int c[3];

	ASSERT_OK(tree_root(&t, 16 << 20));
	for (int p = 0; p < NPAGES; p++)
		ASSERT_TRUE(tree_write(&t, 0, p));
	ASSERT_EQ(umm_page_rmap_count(t.n[0].mm, AT(0)), 1);
	ASSERT_TRUE(tree_check(&t));
	for (int k = 0; k < 3; k++) {
		ASSERT_GE(c[k] = tree_fork(&t, 0), 1);
		ASSERT_EQ(umm_page_rmap_count(t.n[0].mm, AT(0)), k + 2);
		ASSERT_TRUE(tree_check(&t));
	}
	for (int k = 0; k < 3; k++) {
		ASSERT_TRUE(tree_write(&t, c[k], 0));
		ASSERT_EQ(umm_page_rmap_count(t.n[c[k]].mm, AT(0)), 1);
		ASSERT_EQ(umm_page_rmap_count(t.n[0].mm, AT(0)), 3 - k);
		ASSERT_EQ(umm_page_rmap_count(t.n[0].mm, AT(1)), 4);
		ASSERT_TRUE(tree_check(&t));
	}
	/* P is now alone on page 0: its write reuses the frame */
	{
		uint64_t pfn = pinfo(t.n[0].mm, AT(0)).pfn;

		ASSERT_TRUE(tree_write(&t, 0, 0));
		ASSERT_EQ(pinfo(t.n[0].mm, AT(0)).pfn, pfn);
	}
	/* a child written page, then the parent writes: the child keeps its own */
	ASSERT_TRUE(tree_write(&t, 0, 1));
	ASSERT_EQ(umm_page_rmap_count(t.n[c[1]].mm, AT(1)), 3);
	ASSERT_TRUE(tree_check(&t));
	return tree_done(&t);
}

/*
 * A child's copy that is then reused, and forked again: the reused page
 * moved to the child's anon_vma, and its own child must still find it.
 *   P writes 0; fork C; P writes 0 (copy); C writes 0 (reuse); C forks G.
 */
static bool test_reused_page_forked_again(void)
{
	struct tree t;
	int c, g, h;

	ASSERT_OK(tree_root(&t, 16 << 20));
	ASSERT_TRUE(tree_write(&t, 0, 0));
	ASSERT_GE(c = tree_fork(&t, 0), 1);
	ASSERT_TRUE(tree_write(&t, 0, 0));
	{
		uint64_t pfn = pinfo(t.n[c].mm, AT(0)).pfn;

		ASSERT_TRUE(tree_write(&t, c, 0));
		ASSERT_EQ(pinfo(t.n[c].mm, AT(0)).pfn, pfn);	/* reused */
	}
	ASSERT_TRUE(tree_check(&t));
	ASSERT_GE(g = tree_fork(&t, c), 1);
	ASSERT_EQ(umm_page_rmap_count(t.n[g].mm, AT(0)), 2);
	ASSERT_TRUE(tree_check(&t));
	tree_exit(&t, c);
	ASSERT_TRUE(tree_check(&t));
	ASSERT_GE(h = tree_fork(&t, g), 1);
	ASSERT_TRUE(tree_check(&t));
	ASSERT_TRUE(tree_write(&t, h, 0));
	ASSERT_TRUE(tree_write(&t, g, 0));
	ASSERT_TRUE(tree_check(&t));
	return tree_done(&t);
}

/*
 * A fork tree of depth 3 (21 mms); each level writes its own page before
 * forking, so a page written at a level is shared by the writer and all of
 * its descendants:
 *
 *                 R            writes page 0
 *          _______|_______
 *         A               B    write page 1
 *      ___|___         ___|___
 *     A1  A2  A3      B1  B2  B3        write page 2
 *    /\   /\  /\      /\  /\  /\
 *   ..............................      (12 leaves) write page 3
 *
 * Then some nodes write page 0 again, and intermediate nodes exit (A, A1,
 * R, ...) in a seeded order, with everything checked after each step.
 */
static bool test_fork_tree(void)
{
	uint64_t seed = tap_seed(), rng = seed | 1;
	int level_of[MAXN], width[3] = { 2, 3, 2 };
	int order[MAXN], nr;
	struct tree t;

	ASSERT_OK(tree_root(&t, 32 << 20));
	level_of[0] = 0;
	ASSERT_TRUE(tree_write(&t, 0, 0));
	for (int lvl = 0; lvl < 3; lvl++) {
		int last = t.nr;

		for (int i = 0; i < last; i++) {
			if (level_of[i] != lvl)
				continue;
			for (int k = 0; k < width[lvl]; k++) {
				int j = tree_fork(&t, i);

				ASSERT_GE(j, 1);
				level_of[j] = lvl + 1;
				ASSERT_TRUE(tree_write(&t, j, lvl + 1));
			}
		}
	}
	ASSERT_EQ(t.nr, 21);
	ASSERT_EQ(umm_page_rmap_count(t.n[0].mm, AT(0)), 21);
	ASSERT_EQ(umm_page_rmap_count(t.n[1].mm, AT(1)), 10);	/* A, 3 + 6 below */
	ASSERT_TRUE(tree_check(&t));

	/* some write page 0 again: copies of their own */
	for (int i = 3; i < t.nr; i += 4) {
		ASSERT_TRUE(tree_write(&t, i, 0));
		ASSERT_TRUE(tree_check(&t));
	}
	/* intermediate nodes go first: A, then A's first child, then R */
	nr = 0;
	order[nr++] = 1;
	for (int i = 0; i < t.nr; i++)
		if (t.n[i].parent == 1) {
			order[nr++] = i;
			break;
		}
	order[nr++] = 0;
	for (int i = 0; i < t.nr; i++)
		if (i != order[0] && i != order[1] && i != order[2])
			order[nr++] = i;
	for (int i = 3; i < nr; i++) {		/* shuffle the rest */
		int j = 3 + (int)(tap_rand(&rng) % (uint64_t)(nr - 3));
		int tmp = order[i];

		order[i] = order[j];
		order[j] = tmp;
	}
	for (int k = 0; k < nr; k++) {
		tree_exit(&t, order[k]);
		if (!tree_check(&t)) {
			TAP_DIAG("after exit %d of node %d (level %d)", k, order[k],
				 level_of[order[k]]);
			return false;
		}
		/* a survivor writes and forks now and then */
		if (k % 5 == 4 && k + 1 < nr) {
			int s = order[k + 1], j;

			ASSERT_TRUE(tree_write(&t, s, (int)(tap_rand(&rng) % NPAGES)));
			ASSERT_GE(j = tree_fork(&t, s), 1);
			level_of[j] = level_of[s] + 1;
			order[nr++] = j;
			ASSERT_TRUE(tree_check(&t));
		}
	}
	return tree_done(&t);
}

/* ---- moving and splitting ranges ---- */

/*
 * mremap of COW-shared pages keeps them in the rmap, found at the new
 * address:
 *   P: AT(0) abcd  --fork C--  P moves it to AT(100)   C keeps AT(0)
 * then P forks D (from the moved range) and D writes page 1.
 */
static bool test_mremap_cow_shared(void)
{
	uint64_t out = 0;
	struct tree t;
	int c, d;

	ASSERT_OK(tree_root(&t, 16 << 20));
	for (int p = 0; p < NPAGES; p++)
		ASSERT_TRUE(tree_write(&t, 0, p));
	ASSERT_GE(c = tree_fork(&t, 0), 1);
	ASSERT_OK(umm_mremap(t.n[0].mm, AT(0), PG(NPAGES), PG(NPAGES),
			     UMM_MREMAP_MAYMOVE | UMM_MREMAP_FIXED, AT(100), &out));
	ASSERT_EQ(out, AT(100));
	tree_moved(&t, 0, AT(100));
	ASSERT_ERR(umm_page_rmap_count(t.n[0].mm, AT(0)), EFAULT);
	ASSERT_EQ(umm_page_rmap_count(t.n[0].mm, AT(101)), 2);
	ASSERT_EQ(umm_page_rmap_count(t.n[c].mm, AT(1)), 2);
	ASSERT_TRUE(tree_check(&t));
	ASSERT_GE(d = tree_fork(&t, 0), 1);
	ASSERT_EQ(umm_page_rmap_count(t.n[c].mm, AT(1)), 3);
	ASSERT_TRUE(tree_check(&t));
	ASSERT_TRUE(tree_write(&t, d, 1));
	ASSERT_TRUE(tree_check(&t));
	/* the child moves its range too, without FIXED */
	ASSERT_OK(umm_mremap(t.n[c].mm, AT(0), PG(NPAGES), PG(NPAGES), UMM_MREMAP_MAYMOVE, 0,
			     &out));
	tree_moved(&t, c, out);		/* Linux leaves it in place; either is fine */
	ASSERT_TRUE(tree_check(&t));
	/* grow the parent's range in place: old pages stay found */
	ASSERT_OK(umm_mremap(t.n[0].mm, AT(100), PG(NPAGES), PG(NPAGES + 2), 0, 0, &out));
	ASSERT_EQ(out, AT(100));
	ASSERT_TRUE(tree_check(&t));
	ASSERT_TRUE(write_id(t.n[0].mm, AT(100 + NPAGES + 1), 999));
	ASSERT_EQ(umm_page_rmap_count(t.n[0].mm, AT(100 + NPAGES + 1)), 1);
	ASSERT_TRUE(tree_check(&t));
	return tree_done(&t);
}

/*
 * Moving only the middle of a COW-shared range splits the VMA in three;
 * every page is found where it now is.
 *   P: AT(0) abcd  --fork C--  P: AT(0) a  d   AT(50) bc
 */
static bool test_mremap_middle(void)
{
	uint64_t out = 0;
	struct umm_mm *p, *c;
	struct umm *u;

	ASSERT_TRUE(parent_mm(&u, &p, NPAGES, PRIV));
	ASSERT_TRUE(write_ids(p, NPAGES, 100));
	ASSERT_OK(umm_mm_fork(p, &c));
	ASSERT_OK(umm_mremap(p, AT(1), PG(2), PG(2), UMM_MREMAP_MAYMOVE | UMM_MREMAP_FIXED,
			     AT(50), &out));
	ASSERT_TRUE(machine_valid(u));
	ASSERT_EQ(umm_page_rmap_count(p, AT(0)), 2);
	ASSERT_EQ(umm_page_rmap_count(p, AT(50)), 2);
	ASSERT_EQ(umm_page_rmap_count(p, AT(51)), 2);
	ASSERT_EQ(umm_page_rmap_count(p, AT(3)), 2);
	ASSERT_EQ(pinfo(p, AT(50)).pfn, pinfo(c, AT(1)).pfn);
	ASSERT_TRUE(holds_id(p, AT(50), 101));
	ASSERT_TRUE(holds_id(p, AT(51), 102));
	ASSERT_ERR(umm_pagemap(p, AT(1), &(struct umm_pageinfo){ 0 }), EFAULT);	/* no VMA */
	/* write the moved copy in the parent; the child keeps the original */
	ASSERT_TRUE(write_id(p, AT(51), 7));
	ASSERT_EQ(umm_page_rmap_count(c, AT(2)), 1);
	ASSERT_TRUE(holds_id(c, AT(2), 102));
	/* put it back: the pieces may merge again; every page still found */
	ASSERT_OK(umm_mremap(p, AT(50), PG(2), PG(2), UMM_MREMAP_MAYMOVE | UMM_MREMAP_FIXED,
			     AT(1), &out));
	ASSERT_TRUE(machine_valid(u));
	for (int i = 0; i < NPAGES; i++)
		ASSERT_EQ(umm_page_rmap_count(p, AT(i)), i == 2 ? 1 : 2);
	ASSERT_TRUE(holds_id(p, AT(2), 7));
	umm_mm_exit(p);
	ASSERT_TRUE(machine_valid(u));
	for (int i = 0; i < NPAGES; i++) {
		ASSERT_EQ(umm_page_rmap_count(c, AT(i)), 1);
		ASSERT_TRUE(holds_id(c, AT(i), 100 + (uint64_t)i));
	}
	umm_mm_exit(c);
	return machine_done(u);
}

/*
 * mremap with DONTUNMAP: the pages move, the old range stays mapped and
 * empty.
 */
static bool test_mremap_dontunmap(void)
{
	uint64_t out = 0;
	struct tree t;
	int c;

	ASSERT_OK(tree_root(&t, 16 << 20));
	for (int p = 0; p < NPAGES; p++)
		ASSERT_TRUE(tree_write(&t, 0, p));
	ASSERT_GE(c = tree_fork(&t, 0), 1);
	ASSERT_OK(umm_mremap(t.n[c].mm, AT(0), PG(NPAGES), PG(NPAGES),
			     UMM_MREMAP_MAYMOVE | UMM_MREMAP_FIXED | UMM_MREMAP_DONTUNMAP,
			     AT(64), &out));
	tree_moved(&t, c, AT(64));
	ASSERT_EQ(pinfo(t.n[c].mm, AT(0)).flags, 0);
	ASSERT_ERR(umm_page_rmap_count(t.n[c].mm, AT(0)), EFAULT);
	ASSERT_TRUE(tree_check(&t));
	ASSERT_TRUE(tree_write(&t, c, 2));
	ASSERT_TRUE(tree_check(&t));
	return tree_done(&t);
}

/*
 * mprotect splitting a COW-shared VMA in the middle keeps every page found,
 * and so does restoring the protection (the pieces merge back).
 *   P: AT(0) aabbaa (6 pages, b read-only)
 */
static bool test_mprotect_split(void)
{
	struct umm_mm *p, *c;
	struct umm *u;
	struct umm_vma_info vi;

	ASSERT_TRUE(parent_mm(&u, &p, 6, PRIV));
	ASSERT_TRUE(write_ids(p, 6, 200));
	ASSERT_OK(umm_mm_fork(p, &c));
	ASSERT_OK(umm_mprotect(p, AT(2), PG(2), RO));
	ASSERT_OK(umm_mm_vma_next(p, AT(0), &vi));
	ASSERT_EQ(vi.end, AT(2));
	ASSERT_TRUE(machine_valid(u));
	for (int i = 0; i < 6; i++) {
		ASSERT_EQ(umm_page_rmap_count(p, AT(i)), 2);
		ASSERT_EQ(umm_page_rmap_count(c, AT(i)), 2);
	}
	ASSERT_TRUE(write_id(c, AT(2), 1));
	ASSERT_EQ(umm_page_rmap_count(p, AT(2)), 1);
	ASSERT_OK(umm_mprotect(p, AT(2), PG(2), RW));
	ASSERT_OK(umm_mm_vma_next(p, AT(0), &vi));
	ASSERT_EQ(vi.end, AT(6));				/* merged back */
	ASSERT_TRUE(machine_valid(u));
	for (int i = 0; i < 6; i++)
		ASSERT_EQ(umm_page_rmap_count(p, AT(i)), i == 2 ? 1 : 2);
	ASSERT_TRUE(write_id(p, AT(3), 2));
	ASSERT_EQ(umm_page_rmap_count(c, AT(3)), 1);
	for (int i = 0; i < 6; i++)
		ASSERT_TRUE(holds_id(c, AT(i), i == 2 ? 1 : 200 + (uint64_t)i));
	umm_mm_exit(c);
	ASSERT_TRUE(machine_valid(u));
	umm_mm_exit(p);
	return machine_done(u);
}

/*
 * munmap of half of a COW-shared range: the other half stays found in
 * both; the unmapped half is the child's alone.
 *   P: AT(0) abcdef  --fork C--  P: AT(0)    def
 */
static bool test_munmap_half(void)
{
	struct umm_mm *p, *c;
	struct umm *u;

	ASSERT_TRUE(parent_mm(&u, &p, 6, PRIV));
	ASSERT_TRUE(write_ids(p, 6, 300));
	ASSERT_OK(umm_mm_fork(p, &c));
	ASSERT_OK(umm_munmap(p, AT(0), PG(3)));
	ASSERT_TRUE(machine_valid(u));
	for (int i = 0; i < 6; i++) {
		ASSERT_EQ(umm_page_rmap_count(c, AT(i)), i < 3 ? 1 : 2);
		ASSERT_EQ(pinfo(c, AT(i)).mapcount, i < 3 ? 1 : 2);
		ASSERT_TRUE(holds_id(c, AT(i), 300 + (uint64_t)i));
		if (i >= 3)
			ASSERT_EQ(umm_page_rmap_count(p, AT(i)), 2);
	}
	/* the child's now-exclusive pages are reused in place */
	{
		uint64_t pfn = pinfo(c, AT(1)).pfn;

		ASSERT_TRUE(write_id(c, AT(1), 1));
		ASSERT_EQ(pinfo(c, AT(1)).pfn, pfn);
	}
	ASSERT_OK(umm_munmap(c, AT(4), PG(2)));
	ASSERT_EQ(umm_page_rmap_count(p, AT(4)), 1);
	ASSERT_EQ(umm_page_rmap_count(p, AT(3)), 2);
	ASSERT_TRUE(machine_valid(u));
	umm_mm_exit(p);
	umm_mm_exit(c);
	return machine_done(u);
}

/*
 * VMA merges must keep pages of different anon_vmas findable:
 *
 *   AT(0)  AA  CC      A and C written separately (two anon_vmas)
 *   AT(0)  AABBCC      B mapped in between: may merge with one side only
 *   AT(10)   xx  X     an empty mapping merging in front of a written one
 *
 * and all of it after a fork.
 */
static bool test_merges_keep_pages_found(void)
{
	struct umm_mm *p, *c;
	struct umm *u;

	ASSERT_TRUE(parent_mm(&u, &p, 2, PRIV));
	ASSERT_OK(map_at(p, AT(4), 2, RW, PRIV));
	for (int i = 0; i < 6; i++)
		if (i < 2 || i >= 4)
			ASSERT_TRUE(write_id(p, AT(i), 400 + (uint64_t)i));
	ASSERT_OK(map_at(p, AT(2), 2, RW, PRIV));
	ASSERT_TRUE(write_id(p, AT(2), 402));
	ASSERT_TRUE(write_id(p, AT(3), 403));
	ASSERT_TRUE(machine_valid(u));
	for (int i = 0; i < 6; i++) {
		ASSERT_EQ(umm_page_rmap_count(p, AT(i)), 1);
		ASSERT_TRUE(holds_id(p, AT(i), 400 + (uint64_t)i));
	}
	/* a written mapping, then an empty one in front of it */
	ASSERT_OK(map_at(p, AT(12), 2, RW, PRIV));
	ASSERT_TRUE(write_id(p, AT(13), 413));
	ASSERT_OK(map_at(p, AT(10), 2, RW, PRIV));
	ASSERT_TRUE(write_id(p, AT(10), 410));
	ASSERT_TRUE(machine_valid(u));
	ASSERT_EQ(umm_page_rmap_count(p, AT(10)), 1);
	ASSERT_EQ(umm_page_rmap_count(p, AT(13)), 1);

	ASSERT_OK(umm_mm_fork(p, &c));
	ASSERT_TRUE(machine_valid(u));
	for (int i = 0; i < 6; i++)
		ASSERT_EQ(umm_page_rmap_count(c, AT(i)), 2);
	ASSERT_EQ(umm_page_rmap_count(c, AT(10)), 2);
	ASSERT_EQ(umm_page_rmap_count(c, AT(13)), 2);
	/* mprotect across the former boundaries, and back */
	ASSERT_OK(umm_mprotect(c, AT(1), PG(4), RO));
	ASSERT_OK(umm_mprotect(c, AT(0), PG(6), RW));
	ASSERT_OK(umm_mprotect(c, AT(11), PG(2), RO));
	ASSERT_OK(umm_mprotect(c, AT(10), PG(4), RW));
	ASSERT_TRUE(machine_valid(u));
	for (int i = 0; i < 6; i++) {
		ASSERT_EQ(umm_page_rmap_count(p, AT(i)), 2);
		ASSERT_TRUE(write_id(c, AT(i), 500 + (uint64_t)i));
		ASSERT_EQ(umm_page_rmap_count(p, AT(i)), 1);
		ASSERT_TRUE(holds_id(p, AT(i), 400 + (uint64_t)i));
	}
	ASSERT_TRUE(machine_valid(u));
	umm_mm_exit(p);
	ASSERT_TRUE(machine_valid(u));
	umm_mm_exit(c);
	return machine_done(u);
}

/*
 * Anonymous pages of a private file mapping (COW copies) live at the
 * file's page offsets; fork and mremap must find them there too.
 */
static char file_path[64];
static int file_fd = -1;

/*
 * (Re)fill the test file with @size bytes, page n holding (n * 31 + i).
 * The file lives in a temporary directory only until it is made: both go
 * at once and the file is reached through /proc/self/fd, so a run that
 * crashes leaves nothing behind.
 */
static bool make_file(uint64_t size)
{
	uint8_t buf[PS];

	if (file_fd < 0) {
		if (!tmp_init("rmap"))
			return false;
		file_fd = open(tmp_path("f"), O_CREAT | O_RDWR, 0644);
		tmp_cleanup();
		if (file_fd < 0)
			return false;
		snprintf(file_path, sizeof(file_path), "/proc/self/fd/%d", file_fd);
	}
	if (ftruncate(file_fd, 0) < 0)
		return false;
	for (uint64_t off = 0; off < size; off += PS) {
		for (int i = 0; i < PS; i++)
			buf[i] = (uint8_t)((off >> 12) * 31 + (uint64_t)i);
		if (pwrite(file_fd, buf, PS, (off_t)off) != PS)
			return false;
	}
	return true;
}

static void remove_file(void)
{
	if (file_fd >= 0)
		close(file_fd);
	file_fd = -1;
}

static bool test_private_file_cow_pages(void)
{
	struct umm_file *f;
	struct umm_mm *p, *c;
	uint64_t out = 0;
	struct umm *u;

	ASSERT_OK(make_machine(16 << 20, 1, 0, &u));
	ASSERT_TRUE(make_file(PG(8)));
	ASSERT_OK(umm_file_open(u, file_path, O_RDWR, &f));
	ASSERT_OK(umm_mm_create(u, &p));
	ASSERT_OK(umm_mmap(p, AT(0), PG(4), RW, UMM_MAP_PRIVATE | UMM_MAP_FIXED, f, PG(3), &out));
	ASSERT_TRUE(write_id(p, AT(1), 601));
	ASSERT_TRUE(write_id(p, AT(2), 602));
	ASSERT_OK(umm_mm_fork(p, &c));
	ASSERT_EQ(umm_page_rmap_count(c, AT(1)), 2);
	ASSERT_TRUE(pinfo(c, AT(1)).flags & UMM_PI_ANON);
	ASSERT_OK(umm_mremap(c, AT(0), PG(4), PG(4), UMM_MREMAP_MAYMOVE | UMM_MREMAP_FIXED,
			     AT(40), &out));
	ASSERT_EQ(umm_page_rmap_count(p, AT(1)), 2);
	ASSERT_EQ(umm_page_rmap_count(c, AT(41)), 2);
	ASSERT_EQ(pinfo(c, AT(42)).pfn, pinfo(p, AT(2)).pfn);
	ASSERT_TRUE(machine_valid(u));
	ASSERT_TRUE(write_id(c, AT(42), 7));
	ASSERT_EQ(umm_page_rmap_count(p, AT(2)), 1);
	ASSERT_TRUE(holds_id(p, AT(2), 602));
	/* the page-cache pages of the same mapping */
	{
		uint8_t b;

		ASSERT_EQ(umm_read(p, AT(0), &b, 1), 1);
		ASSERT_EQ(umm_read(c, AT(40), &b, 1), 1);
		ASSERT_EQ(b, (uint8_t)(3 * 31));
		ASSERT_EQ(umm_page_rmap_count(p, AT(0)), 2);
		ASSERT_FALSE(pinfo(p, AT(0)).flags & UMM_PI_ANON);
	}
	ASSERT_TRUE(machine_valid(u));
	umm_mm_exit(p);
	umm_mm_exit(c);
	umm_file_put(f);
	return machine_done(u);
}

/* ---- page_referenced, try_to_unmap, page_mkclean on anonymous pages ---- */

/*
 * page_referenced counts and clears the young PTEs of a page in every mm:
 * 1 after a write, then 0; 1 after a read; after fork the child's PTE
 * starts old, so each mm's read adds one.
 */
static bool test_page_referenced(void)
{
	struct umm_mm *p, *c1, *c2;
	struct umm *u;
	uint8_t b;

	ASSERT_TRUE(parent_mm(&u, &p, 4, PRIV));
	ASSERT_ERR(umm_page_referenced(p, AT(0)), EFAULT);	/* untouched */
	ASSERT_EQ(umm_read(p, AT(3), &b, 1), 1);
	ASSERT_ERR(umm_page_referenced(p, AT(3)), EFAULT);	/* zero frame */
	ASSERT_ERR(umm_page_referenced(p, AT(8)), EFAULT);	/* no VMA */
	ASSERT_TRUE(write_id(p, AT(0), 1));
	ASSERT_TRUE(pinfo(p, AT(0)).flags & UMM_PI_YOUNG);
	ASSERT_EQ(umm_page_referenced(p, AT(0)), 1);
	ASSERT_FALSE(pinfo(p, AT(0)).flags & UMM_PI_YOUNG);
	ASSERT_EQ(umm_page_referenced(p, AT(0)), 0);
	ASSERT_EQ(umm_read(p, AT(0) + 5, &b, 1), 1);
	ASSERT_EQ(umm_page_referenced(p, AT(0)), 1);
	ASSERT_EQ(umm_page_referenced(p, AT(0)), 0);

	ASSERT_OK(umm_mm_fork(p, &c1));
	ASSERT_OK(umm_mm_fork(p, &c2));
	ASSERT_EQ(umm_page_referenced(c1, AT(0)), 0);
	ASSERT_EQ(umm_read(c1, AT(0), &b, 1), 1);
	ASSERT_EQ(umm_read(c2, AT(0), &b, 1), 1);
	ASSERT_EQ(umm_read(p, AT(0), &b, 1), 1);
	ASSERT_EQ(umm_page_referenced(c2, AT(0)), 3);
	ASSERT_EQ(umm_page_referenced(p, AT(0)), 0);
	ASSERT_EQ(umm_read(c2, AT(0), &b, 1), 1);
	ASSERT_EQ(umm_page_referenced(p, AT(0)), 1);
	ASSERT_FALSE(pinfo(c1, AT(0)).flags & UMM_PI_YOUNG);
	/* a write in the parent (COW copy): one young mapping of each page */
	ASSERT_TRUE(write_id(p, AT(0), 2));
	ASSERT_EQ(umm_read(c1, AT(0), &b, 1), 1);
	ASSERT_EQ(umm_page_referenced(p, AT(0)), 1);
	ASSERT_EQ(umm_page_referenced(c2, AT(0)), 1);		/* c1's read */
	ASSERT_EQ(umm_page_referenced(c1, AT(0)), 0);
	ASSERT_TRUE(machine_valid(u));
	umm_mm_exit(c1);
	umm_mm_exit(c2);
	umm_mm_exit(p);
	return machine_done(u);
}

/* The same on a shared anonymous page: one young PTE per mm that read it. */
static bool test_page_referenced_shared_anon(void)
{
	struct umm_mm *p, *c;
	struct umm *u;
	uint8_t b;

	ASSERT_TRUE(parent_mm(&u, &p, 2, SHRD));
	ASSERT_TRUE(write_id(p, AT(0), 1));
	ASSERT_OK(umm_mm_fork(p, &c));
	ASSERT_EQ(umm_read(c, AT(0), &b, 1), 1);
	ASSERT_EQ(umm_page_rmap_count(c, AT(0)), 2);
	ASSERT_EQ(umm_page_referenced(c, AT(0)), 2);
	ASSERT_EQ(umm_page_referenced(c, AT(0)), 0);
	ASSERT_TRUE(holds_id(c, AT(0), 1));
	ASSERT_EQ(umm_page_referenced(p, AT(0)), 1);
	/* shared mappings without dirty accounting map writable even on a read
	 * fault (Linux's shmem does too): both PTEs count */
	ASSERT_EQ(umm_page_mkclean(p, AT(0)), 2);
	ASSERT_EQ(umm_page_mkclean(p, AT(0)), 0);
	ASSERT_TRUE(write_id(c, AT(0), 12));
	ASSERT_TRUE(holds_id(p, AT(0), 12));
	ASSERT_TRUE(machine_valid(u));
	umm_mm_exit(p);
	umm_mm_exit(c);
	return machine_done(u);
}

static bool same_info(struct umm_pageinfo a, struct umm_pageinfo b)
{
	if (a.pfn != b.pfn || a.mapcount != b.mapcount || a.refcount != b.refcount ||
	    (a.flags & ~UMM_PI_YOUNG) != (b.flags & ~UMM_PI_YOUNG)) {
		TAP_DIAG("pagemap changed: pfn %" PRIu64 "->%" PRIu64 " flags %#x->%#x map %d->%d "
			 "ref %d->%d", a.pfn, b.pfn, a.flags, b.flags, a.mapcount, b.mapcount,
			 a.refcount, b.refcount);
		return false;
	}
	return true;
}

/*
 * try_to_unmap cannot unmap an anonymous page without swap: -EBUSY, and
 * nothing changed, exclusive or COW-shared.  page_mkclean leaves it alone:
 * 0, still writable (the next store takes no fault).
 */
static bool test_try_to_unmap_and_mkclean_anon(void)
{
	struct umm_pageinfo before, after;
	struct umm_stat s0, s1;
	struct umm_mm *p, *c;
	struct umm *u;
	uint8_t b;

	ASSERT_TRUE(parent_mm(&u, &p, 4, PRIV));
	ASSERT_TRUE(write_id(p, AT(0), 1));
	ASSERT_TRUE(write_id(p, AT(1), 2));
	ASSERT_EQ(umm_read(p, AT(2), &b, 1), 1);
	ASSERT_ERR(umm_try_to_unmap(p, AT(2)), EFAULT);	/* zero frame */
	ASSERT_ERR(umm_try_to_unmap(p, AT(3)), EFAULT);	/* untouched */
	ASSERT_ERR(umm_page_mkclean(p, AT(3)), EFAULT);
	ASSERT_ERR(umm_page_rmap_count(p, AT(2)), EFAULT);

	before = pinfo(p, AT(0));
	ASSERT_ERR(umm_try_to_unmap(p, AT(0)), EBUSY);
	ASSERT_TRUE(same_info(before, pinfo(p, AT(0))));
	ASSERT_TRUE(holds_id(p, AT(0), 1));
	ASSERT_EQ(umm_page_mkclean(p, AT(0)), 0);
	after = pinfo(p, AT(0));
	ASSERT_TRUE(same_info(before, after));
	ASSERT_TRUE(after.flags & UMM_PI_WRITE);
	umm_get_stat(u, &s0);
	ASSERT_TRUE(write_id(p, AT(0), 3));
	umm_get_stat(u, &s1);
	ASSERT_EQ(s1.pgfault, s0.pgfault);			/* no fault: still writable */

	ASSERT_OK(umm_mm_fork(p, &c));
	before = pinfo(c, AT(1));
	ASSERT_EQ(before.mapcount, 2);
	ASSERT_ERR(umm_try_to_unmap(c, AT(1)), EBUSY);
	ASSERT_ERR(umm_try_to_unmap(p, AT(1)), EBUSY);
	ASSERT_EQ(umm_page_mkclean(c, AT(1)), 0);
	ASSERT_TRUE(same_info(before, pinfo(c, AT(1))));
	ASSERT_TRUE(same_info(before, pinfo(p, AT(1))));
	ASSERT_EQ(umm_page_rmap_count(p, AT(1)), 2);
	ASSERT_TRUE(holds_id(c, AT(1), 2));
	ASSERT_TRUE(holds_id(p, AT(1), 2));
	ASSERT_TRUE(machine_valid(u));

	/* mlocked: -EBUSY as well */
	ASSERT_OK(umm_mlock(p, AT(0), PS));
	ASSERT_ERR(umm_try_to_unmap(p, AT(0)), EBUSY);
	ASSERT_TRUE(pinfo(p, AT(0)).flags & UMM_PI_PRESENT);
	ASSERT_TRUE(machine_valid(u));
	umm_mm_exit(c);
	umm_mm_exit(p);
	return machine_done(u);
}

/*
 * A shared anonymous page is not anonymous to the rmap: it lives in its
 * shmem object, so try_to_unmap unmaps it from both mms and the data comes
 * back on the next access.
 */
static bool test_try_to_unmap_shmem(void)
{
	struct umm_mm *p, *c;
	struct umm *u;
	uint64_t pfn;

	ASSERT_TRUE(parent_mm(&u, &p, 2, SHRD));
	ASSERT_TRUE(write_id(p, AT(0), 11));
	ASSERT_OK(umm_mm_fork(p, &c));
	ASSERT_TRUE(holds_id(c, AT(0), 11));
	pfn = pinfo(p, AT(0)).pfn;
	ASSERT_OK(umm_try_to_unmap(c, AT(0)));
	ASSERT_FALSE(pinfo(p, AT(0)).flags & UMM_PI_PRESENT);
	ASSERT_FALSE(pinfo(c, AT(0)).flags & UMM_PI_PRESENT);
	ASSERT_TRUE(machine_valid(u));
	ASSERT_TRUE(holds_id(p, AT(0), 11));
	ASSERT_TRUE(holds_id(c, AT(0), 11));
	ASSERT_EQ(pinfo(c, AT(0)).pfn, pfn);
	ASSERT_EQ(umm_page_rmap_count(p, AT(0)), 2);
	ASSERT_TRUE(machine_valid(u));
	umm_mm_exit(c);
	umm_mm_exit(p);
	return machine_done(u);
}

/* ---- a long fork-and-exit chain ---- */

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return v[n / 2];
}

/*
 * R writes 4 pages and stays; its child forks a child and exits, again and
 * again (each child the next parent), writing one page at each step:
 *
 *   R ── C1 ─x
 *        └── C2 ─x
 *              └── C3 ─x ... C1000
 *
 * R's page 0 is never written again: shared by R and the live chain
 * member (count 2) all along; pages written in the chain are the member's
 * alone.  The anon_vma chain of the live member must not grow with the
 * steps (anon_vmas nobody owns are reused, as Linux does): the median
 * fork and rmap-walk times of the last steps must stay close to those of
 * the first ones (checked outside the short, sanitized runs; a chain that
 * grows one link per step makes the last forks ~20 times slower).
 */
static bool test_long_fork_chain(void)
{
	int steps = tap_long() ? 5000 : tap_short() ? 200 : 1000;
	int check_every = tap_short() ? 20 : 10, window = steps / 10;
	double *t_fork = calloc((size_t)steps, sizeof(double));
	double *t_walk = calloc((size_t)steps, sizeof(double));
	double f0, f1, w0, w1;
	struct tree t;
	int cur;

	ASSERT_TRUE(t_fork && t_walk);
	ASSERT_OK(tree_root(&t, 16 << 20));
	for (int p = 0; p < NPAGES; p++)
		ASSERT_TRUE(tree_write(&t, 0, p));
	ASSERT_GE(cur = tree_fork(&t, 0), 1);
	ASSERT_TRUE(tree_write(&t, cur, 1));
	for (int s = 0; s < steps; s++) {
		int page = 1 + s % (NPAGES - 1), next;
		double t0;

		/* the model keeps only two live nodes: reuse slots */
		if (t.nr == MAXN) {
			t.n[1] = t.n[cur];
			cur = 1;
			t.nr = 2;
		}
		t0 = now_us();
		next = tree_fork(&t, cur);
		t_fork[s] = now_us() - t0;
		ASSERT_GE(next, 1);
		tree_exit(&t, cur);
		cur = next;
		ASSERT_TRUE(tree_write(&t, cur, page));
		t0 = now_us();
		ASSERT_EQ(umm_page_rmap_count(t.n[cur].mm, AT(0)), 2);
		ASSERT_EQ(umm_page_rmap_count(t.n[cur].mm, AT(page)), 1);
		ASSERT_EQ(umm_page_rmap_count(t.n[0].mm, AT(0)), 2);
		t_walk[s] = now_us() - t0;
		if (s % check_every == 0 && !tree_check(&t)) {
			TAP_DIAG("chain step %d", s);
			return false;
		}
	}
	ASSERT_TRUE(tree_check(&t));
	f0 = median(t_fork, window);
	f1 = median(t_fork + steps - window, window);
	w0 = median(t_walk, window);
	w1 = median(t_walk + steps - window, window);
	TAP_DIAG("fork chain of %d: median fork %.1f us -> %.1f us, 3 rmap counts %.1f us -> "
		 "%.1f us (first and last %d steps)", steps, f0, f1, w0, w1, window);
	if (!tap_short()) {
		ASSERT_TRUE(f1 < 3 * f0 + 10);
		ASSERT_TRUE(w1 < 3 * w0 + 10);
	}
	free(t_fork);
	free(t_walk);
	return tree_done(&t);
}

/*
 * The same chain with a sibling that stays: each member forks two
 * children, one continues the chain and one sleeps (lives on), so the
 * anon_vmas keep owners and counts grow with the sleepers.
 *
 *   R ── C1 ─x
 *        ├── S1 (stays)
 *        └── C2 ─x
 *              ├── S2 (stays)
 *              └── C3 ...
 */
static bool test_chain_with_sleepers(void)
{
	int steps = tap_short() ? 8 : 20;
	struct tree t;
	int cur;

	ASSERT_OK(tree_root(&t, 32 << 20));
	ASSERT_TRUE(tree_write(&t, 0, 0));
	ASSERT_GE(cur = tree_fork(&t, 0), 1);
	for (int s = 0; s < steps; s++) {
		int next, sleeper;

		ASSERT_TRUE(tree_write(&t, cur, 1 + s % (NPAGES - 1)));
		ASSERT_GE(sleeper = tree_fork(&t, cur), 1);
		ASSERT_GE(next = tree_fork(&t, cur), 1);
		tree_exit(&t, cur);
		cur = next;
		if (!tree_check(&t)) {
			TAP_DIAG("step %d", s);
			return false;
		}
		(void)sleeper;
	}
	/* every sleeper and the chain still share R's page 0 */
	ASSERT_EQ(umm_page_rmap_count(t.n[0].mm, AT(0)), steps + 2);
	return tree_done(&t);
}

/* ---- concurrency ---- */

#define CC_ANON		16
#define CC_FILE		16
#define CC_FAMILIES	3
#define CC_WALKERS	2
#define CC_ANON_AT	AT(0)
#define CC_FILE_AT	AT(64)

struct cc {
	struct umm *u;
	struct umm_mm *m;
	struct umm_file *f;
	atomic_bool stop;
	atomic_int failed;
	uint64_t last[CC_FAMILIES];	/* each family's last value in its file page */
	atomic_ulong walks, forks;
	uint64_t seed;
};

static void cc_fail(struct cc *cc, const char *what, long long v)
{
	if (atomic_fetch_add(&cc->failed, 1) == 0)
		TAP_DIAG("concurrent run: %s (%lld)", what, v);
	atomic_store(&cc->stop, true);
}

/*
 * A family: fork the long-lived mm, check its anonymous pages, write some
 * (COW), store a counter in the family's own file page, fork a grandchild
 * that checks both, write, exit both.
 */
static void *cc_family(void *arg)
{
	struct cc *cc = ((void **)arg)[0];
	int k = (int)(intptr_t)((void **)arg)[1];
	uint64_t rng = cc->seed + (uint64_t)k * 7919 + 1, val = 0;
	uint64_t fpage = CC_FILE_AT + PG(k);

	while (!atomic_load(&cc->stop)) {
		struct umm_mm *c, *g;
		uint64_t got = 0;
		int p = (int)(tap_rand(&rng) % CC_ANON);
		bool c_gone;

		if (umm_mm_fork(cc->m, &c)) {
			cc_fail(cc, "fork of the long-lived mm", 0);
			break;
		}
		atomic_fetch_add(&cc->forks, 1);
		if (!holds_id(c, CC_ANON_AT + PG(p), 1000 + (uint64_t)p))
			cc_fail(cc, "child sees the parent's page", p);
		if (umm_read(c, fpage, &got, 8) != 8 || got != val)
			cc_fail(cc, "family file page lost its value", (long long)got);
		if (!write_id(c, CC_ANON_AT + PG(p), 2000 + (uint64_t)p))
			cc_fail(cc, "child write", p);
		val++;
		if (umm_write(c, fpage, &val, 8) != 8)
			cc_fail(cc, "child file store", 0);
		cc->last[k] = val;
		if (umm_mm_fork(c, &g)) {
			cc_fail(cc, "fork of the child", 0);
			umm_mm_exit(c);
			break;
		}
		if (!holds_id(g, CC_ANON_AT + PG(p), 2000 + (uint64_t)p))
			cc_fail(cc, "grandchild sees the child's page", p);
		if (umm_read(g, fpage, &got, 8) != 8 || got != val)
			cc_fail(cc, "grandchild file page", (long long)got);
		c_gone = tap_rand(&rng) & 1;
		if (c_gone)
			umm_mm_exit(c);	/* the grandchild lives on alone */
		if (!write_id(g, CC_ANON_AT + PG((p + 1) % CC_ANON), 3000))
			cc_fail(cc, "grandchild write", p);
		val++;
		if (umm_write(g, fpage, &val, 8) != 8)
			cc_fail(cc, "grandchild file store", 0);
		cc->last[k] = val;
		if (umm_page_rmap_count(g, CC_ANON_AT + PG((p + 1) % CC_ANON)) != 1)
			cc_fail(cc, "grandchild's own page count", 0);
		if (umm_msync(g, fpage, PS, UMM_MS_SYNC))
			cc_fail(cc, "grandchild msync", 0);
		umm_mm_exit(g);
		if (!c_gone)
			umm_mm_exit(c);
	}
	return NULL;
}

/* The long-lived mm's own loads: its pages never change. */
static void *cc_reader(void *arg)
{
	struct cc *cc = arg;
	uint64_t rng = cc->seed ^ 0xabcdef;

	while (!atomic_load(&cc->stop)) {
		int p = (int)(tap_rand(&rng) % CC_ANON);
		uint64_t w;

		if (!holds_id(cc->m, CC_ANON_AT + PG(p), 1000 + (uint64_t)p))
			cc_fail(cc, "long-lived mm lost a page", p);
		p = CC_FAMILIES + (int)(tap_rand(&rng) % (CC_FILE - CC_FAMILIES));
		if (umm_read(cc->m, CC_FILE_AT + PG(p), &w, 8) != 8 ||
		    (uint8_t)w != (uint8_t)(p * 31))
			cc_fail(cc, "file page changed", p);
	}
	return NULL;
}

static bool rc_ok(int r, bool allow_busy)
{
	return r >= 0 || r == -EFAULT || (allow_busy && r == -EBUSY);
}

static void *cc_walker(void *arg)
{
	struct cc *cc = ((void **)arg)[0];
	uint64_t rng = cc->seed + 31 * (uint64_t)(intptr_t)((void **)arg)[1] + 5;

	while (!atomic_load(&cc->stop)) {
		bool file = tap_rand(&rng) & 1;
		uint64_t addr = file ? CC_FILE_AT + PG(tap_rand(&rng) % CC_FILE)
				     : CC_ANON_AT + PG(tap_rand(&rng) % CC_ANON);
		int r;

		switch (tap_rand(&rng) % 5) {
		case 0:
			r = umm_page_referenced(cc->m, addr);
			if (!rc_ok(r, false))
				cc_fail(cc, "page_referenced", r);
			break;
		case 1:
			r = umm_page_rmap_count(cc->m, addr);
			if (!rc_ok(r, false) || (!file && r == 0))
				cc_fail(cc, "page_rmap_count", r);
			break;
		case 2:
			r = umm_try_to_unmap(cc->m, addr);
			if (!rc_ok(r, true) || (!file && r != -EBUSY))
				cc_fail(cc, "try_to_unmap", r);
			break;
		case 3:
			r = umm_page_mkclean(cc->m, addr);
			if (!rc_ok(r, false) || (!file && r != 0))
				cc_fail(cc, "page_mkclean", r);
			break;
		case 4:
			r = umm_msync(cc->m, addr, PS, UMM_MS_SYNC);
			if (r)
				cc_fail(cc, "msync", r);
			break;
		}
		atomic_fetch_add(&cc->walks, 1);
	}
	return NULL;
}

static bool test_concurrent(void)
{
	pthread_t fam[CC_FAMILIES], walk[CC_WALKERS], rd;
	void *fargs[CC_FAMILIES][2], *wargs[CC_WALKERS][2];
	double secs = tap_short() ? 0.5 : 1.5;
	struct cc *cc = calloc(1, sizeof(*cc));
	uint64_t out = 0;

	ASSERT_TRUE(cc != NULL);
	cc->seed = tap_seed();
	ASSERT_OK(make_machine(64 << 20, 1, 0, &cc->u));
	ASSERT_TRUE(make_file(PG(CC_FILE)));
	ASSERT_OK(umm_file_open(cc->u, file_path, O_RDWR, &cc->f));
	ASSERT_OK(umm_mm_create(cc->u, &cc->m));
	ASSERT_OK(map_at(cc->m, CC_ANON_AT, CC_ANON, RW, PRIV));
	for (int p = 0; p < CC_ANON; p++)
		ASSERT_TRUE(write_id(cc->m, CC_ANON_AT + PG(p), 1000 + (uint64_t)p));
	ASSERT_OK(umm_mmap(cc->m, CC_FILE_AT, PG(CC_FILE), RW, UMM_MAP_SHARED | UMM_MAP_FIXED,
			   cc->f, 0, &out));
	for (int k = 0; k < CC_FAMILIES; k++) {
		uint64_t zero = 0;

		ASSERT_EQ(umm_write(cc->m, CC_FILE_AT + PG(k), &zero, 8), 8);
	}

	for (int k = 0; k < CC_FAMILIES; k++) {
		fargs[k][0] = cc;
		fargs[k][1] = (void *)(intptr_t)k;
		ASSERT_EQ(pthread_create(&fam[k], NULL, cc_family, fargs[k]), 0);
	}
	for (int k = 0; k < CC_WALKERS; k++) {
		wargs[k][0] = cc;
		wargs[k][1] = (void *)(intptr_t)k;
		ASSERT_EQ(pthread_create(&walk[k], NULL, cc_walker, wargs[k]), 0);
	}
	ASSERT_EQ(pthread_create(&rd, NULL, cc_reader, cc), 0);
	{
		double end = now_us() + secs * 1e6;

		while (now_us() < end && !atomic_load(&cc->stop))
			usleep(10000);
	}
	atomic_store(&cc->stop, true);
	for (int k = 0; k < CC_FAMILIES; k++)
		pthread_join(fam[k], NULL);
	for (int k = 0; k < CC_WALKERS; k++)
		pthread_join(walk[k], NULL);
	pthread_join(rd, NULL);
	TAP_DIAG("concurrent run: %lu family forks, %lu rmap operations",
		 (unsigned long)atomic_load(&cc->forks), (unsigned long)atomic_load(&cc->walks));
	ASSERT_EQ(atomic_load(&cc->failed), 0);
	ASSERT_TRUE(atomic_load(&cc->forks) > 0 && atomic_load(&cc->walks) > 0);

	ASSERT_TRUE(machine_valid(cc->u));
	for (int p = 0; p < CC_ANON; p++) {
		ASSERT_TRUE(holds_id(cc->m, CC_ANON_AT + PG(p), 1000 + (uint64_t)p));
		ASSERT_EQ(umm_page_rmap_count(cc->m, CC_ANON_AT + PG(p)), 1);
	}
	for (int k = 0; k < CC_FAMILIES; k++) {
		uint64_t got = 0;

		ASSERT_EQ(umm_read(cc->m, CC_FILE_AT + PG(k), &got, 8), 8);
		ASSERT_EQ(got, cc->last[k]);
	}
	ASSERT_OK(umm_msync(cc->m, CC_FILE_AT, PG(CC_FILE), UMM_MS_SYNC));
	{
		int fd = open(file_path, O_RDONLY);

		ASSERT_GE(fd, 0);
		for (int k = 0; k < CC_FAMILIES; k++) {
			uint64_t got = 0;

			ASSERT_EQ(pread(fd, &got, 8, (off_t)PG(k)), 8);
			ASSERT_EQ(got, cc->last[k]);
		}
		close(fd);
	}
	umm_mm_exit(cc->m);
	umm_file_put(cc->f);
	ASSERT_TRUE(machine_done(cc->u));
	free(cc);
	return true;
}

/* ---- rmap walks against the last reference of an object going away ---- */

/*
 * Simulated preemption: a thread that sets walk_slowly sleeps a little
 * before it takes any rwlock for read, as if descheduled right there, e.g.
 * between reading page->mapping and read-locking mapping->i_mmap_rwsem in
 * a file rmap walk.  This program's definition takes the place of libc's
 * for the engine too (static library); everyone else goes straight on.
 */
static __thread bool walk_slowly;

int pthread_rwlock_rdlock(pthread_rwlock_t *lock)
{
	static _Atomic(int (*)(pthread_rwlock_t *)) real;
	int (*fn)(pthread_rwlock_t *) = atomic_load(&real);

	if (!fn) {
		fn = (int (*)(pthread_rwlock_t *))dlsym(RTLD_NEXT, "pthread_rwlock_rdlock");
		atomic_store(&real, fn);
	}
	if (walk_slowly)
		usleep(50);
	return fn(lock);
}

#define TD_AT	AT(32)

struct td {
	struct umm_mm *mm;
	atomic_bool stop, done;
	atomic_int bad;
	atomic_ulong calls, progress;
};

/*
 * A lock taken in a freed (and reused) object can hang the run instead of
 * crashing it: report that as this test's failure after 10 s without
 * progress rather than wait for the runner's time limit.
 */
static void *td_watchdog(void *arg)
{
	struct td *td = arg;
	unsigned long last = ~0UL;
	int idle = 0;

	while (!atomic_load(&td->done)) {
		unsigned long now = atomic_load(&td->progress);

		usleep(100000);
		if (now != last) {
			last = now;
			idle = 0;
		} else if (++idle == 100) {
			printf("# no progress for 10 s after %lu rounds: a thread hangs (on a lock "
			       "of a freed object?)\nnot ok %d - test_walk_vs_last_reference\n",
			       now, tap_n + 1);
			fflush(stdout);
			_exit(1);
		}
	}
	return NULL;
}

static void *td_walker(void *arg)
{
	struct td *td = arg;

	walk_slowly = true;
	while (!atomic_load(&td->stop)) {
		int r[4] = {
			umm_page_referenced(td->mm, TD_AT),
			umm_page_rmap_count(td->mm, TD_AT),
			umm_page_mkclean(td->mm, TD_AT),
			umm_try_to_unmap(td->mm, TD_AT),
		};

		for (int i = 0; i < 4; i++)
			if (!rc_ok(r[i], i == 3) && atomic_fetch_add(&td->bad, 1) == 0)
				TAP_DIAG("rmap operation %d returned %d", i, r[i]);
		atomic_fetch_add(&td->calls, 1);
	}
	walk_slowly = false;
	return NULL;
}

/*
 * Walkers (umm_page_referenced, _rmap_count, _mkclean, try_to_unmap) aim
 * at one address while the main thread maps a file there (its umm_file
 * put at once, so the mapping holds the last reference), faults it in and
 * unmaps it, and the same with shared anonymous memory: each munmap frees
 * the object the walkers may be looking at.  A walk must hold the object
 * (address_space) alive, not just the page: ASan sees a use after free
 * otherwise.
 */
static bool test_walk_vs_last_reference(void)
{
	int iters = tap_short() ? 300 : 2000;
	pthread_t w[2], dog;
	struct umm *u;
	struct td td = { 0 };

	ASSERT_OK(make_machine(16 << 20, 1, 0, &u));
	ASSERT_TRUE(make_file(PG(4)));
	ASSERT_OK(umm_mm_create(u, &td.mm));
	ASSERT_EQ(pthread_create(&dog, NULL, td_watchdog, &td), 0);
	for (int i = 0; i < 2; i++)
		ASSERT_EQ(pthread_create(&w[i], NULL, td_walker, &td), 0);
	for (int i = 0; i < iters && !atomic_load(&td.bad); i++) {
		atomic_fetch_add(&td.progress, 1);
		struct umm_file *f = NULL;
		uint64_t out;
		uint8_t b = 0;

		if (i & 1) {
			ASSERT_OK(umm_file_open(u, file_path, O_RDWR, &f));
			ASSERT_OK(umm_mmap(td.mm, TD_AT, PG(4), RW, UMM_MAP_SHARED | UMM_MAP_FIXED,
					   f, 0, &out));
			umm_file_put(f);
		} else {
			ASSERT_OK(map_at(td.mm, TD_AT, 4, RW, SHRD));
		}
		ASSERT_EQ(umm_read(td.mm, TD_AT, &b, 1), 1);
		ASSERT_EQ(b, 0);
		ASSERT_EQ(umm_write(td.mm, TD_AT, &b, 1), 1);
		ASSERT_OK(umm_munmap(td.mm, TD_AT, PG(4)));
	}
	atomic_store(&td.stop, true);
	for (int i = 0; i < 2; i++)
		pthread_join(w[i], NULL);
	atomic_store(&td.done, true);
	pthread_join(dog, NULL);
	TAP_DIAG("%lu rounds of rmap operations", (unsigned long)atomic_load(&td.calls));
	ASSERT_EQ(atomic_load(&td.bad), 0);
	umm_mm_exit(td.mm);
	return machine_done(u);
}

int main(void)
{
	RUN_TEST(test_fork_counts);
	RUN_TEST(test_reused_page_forked_again);
	RUN_TEST(test_fork_tree);
	RUN_TEST(test_mremap_cow_shared);
	RUN_TEST(test_mremap_middle);
	RUN_TEST(test_mremap_dontunmap);
	RUN_TEST(test_mprotect_split);
	RUN_TEST(test_munmap_half);
	RUN_TEST(test_merges_keep_pages_found);
	RUN_TEST(test_private_file_cow_pages);
	RUN_TEST(test_page_referenced);
	RUN_TEST(test_page_referenced_shared_anon);
	RUN_TEST(test_try_to_unmap_and_mkclean_anon);
	RUN_TEST(test_try_to_unmap_shmem);
	RUN_TEST(test_long_fork_chain);
	RUN_TEST(test_chain_with_sleepers);
	RUN_TEST(test_concurrent);
	RUN_TEST(test_walk_vs_last_reference);
	remove_file();
	return tap_done();
}
