/* SPDX-License-Identifier: MIT */
/*
 * t_migrate.c - page migration and compaction, with move_pages(2) as the
 * reference:
 *
 *  - umm_move_pages() with nodes NULL reports each page's node, -ENOENT
 *    where nothing (or the zero page) is mapped, -EFAULT where no VMA is;
 *  - on a machine of two nodes, moved pages really change node and frame
 *    (pagemap's pfn), keep their bytes, and every mapping of them (fork's
 *    COW sharing, shared anonymous memory, a shared file mapping) sees the
 *    new frame; moving to the node a page is on changes nothing;
 *  - a secondary MMU hears a MIGRATE invalidation for the moved page only,
 *    before its old frame goes (the protocol checker is on);
 *  - a page held by umm_get_user_page() does not move (-EBUSY);
 *  - writers and readers running while pages move underneath see their own
 *    bytes, always;
 *  - Linux's selftests/mm/rmap.c migration scenarios: a page (private and
 *    COW-shared, shared anonymous, a file's, or merged by KSM) shared
 *    across a random fork tree and moved by one process is seen at its new
 *    frame by every process; KSM merge after mremap, then migration;
 *  - umm_compact() empties a contiguous run of frames: no mapped page is
 *    left in it and every page keeps its bytes.
 *
 * umm_validate(EXACT|RMAP) after each scenario, umm_leak_check() == 0 at
 * teardown.  Tests that need a part of the engine that returns -ENOSYS skip
 * (swap_fixture.h).  UMM_SEED replays the random choices.
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>

#include <umm/umm.h>

#include "tap.h"
#define FIX_VALIDATE	(UMM_VALIDATE_EXACT | UMM_VALIDATE_RMAP)
#include "swap_fixture.h"

#define MAX_PAGES	64

static uint64_t seed;

/* A machine of @nodes nodes, 4 MiB each, with the notifier protocol checker, and an mm. */
static bool numa_fix_init(struct fix *f, unsigned int nodes)
{
	f->mm = NULL;
	ASSERT_OK(make_machine((size_t)nodes * (4 << 20), nodes, UMM_CONFIG_NOTIFIER_CHECKER,
			       &f->u));
	umm_set_log(f->u, log_diag, NULL);
	ASSERT_OK(umm_mm_create(f->u, &f->mm));
	return true;
}

/* Each of the @n pages at @addr in @mm: status[] from umm_move_pages(nodes NULL). */
static bool where(struct umm_mm *mm, uint64_t addr, unsigned long n, int *status)
{
	uint64_t addrs[MAX_PAGES];

	for (unsigned long i = 0; i < n; i++) {
		addrs[i] = addr + PG(i);
		status[i] = 0x7777;
	}
	ASSERT_OK(umm_move_pages(mm, n, addrs, NULL, status));
	return true;
}

/* The node of the page at @addr, or a negative errno from the status. */
static int node_of(struct umm_mm *mm, uint64_t addr)
{
	int st = 0x7777;
	int r = umm_move_pages(mm, 1, &addr, NULL, &st);

	return r ? r : st;
}

/*
 * Move the page at @addr of @mm to @node and check what move_pages(2)
 * promises: the status says @node, a query agrees, the frame changed if the
 * node did, and the bytes are those of pattern (@orig, @tag).
 */
static bool move_one(struct umm_mm *mm, uint64_t addr, int node, uint64_t orig, uint64_t tag)
{
	uint64_t old_pfn = pinfo(mm, addr).pfn;
	int old_node = node_of(mm, addr);
	int st = 0x7777;

	ASSERT_OK(umm_move_pages(mm, 1, &addr, &node, &st));
	if (st != node)
		TAP_DIAG("move of %#" PRIx64 " to node %d: status %d", addr, node, st);
	ASSERT_EQ(st, node);
	ASSERT_EQ(node_of(mm, addr), node);
	if (old_node == node)
		ASSERT_EQ(pinfo(mm, addr).pfn, old_pfn);
	else
		ASSERT_NE(pinfo(mm, addr).pfn, old_pfn);
	ASSERT_TRUE(pat_at(mm, addr, orig, 1, tag));
	return true;
}

/* ---- move_pages(2) status ---- */

static bool test_status(void)
{
	uint64_t addrs[10];
	int status[10], nodes[10];
	struct fix f;

	NEED(move);
	ASSERT_TRUE(numa_fix_init(&f, 2));
	/* AAAAAAAA: 0-3 written, 4-5 read (zero page), 6-7 never touched */
	ASSERT_TRUE(map_pat(f.mm, BASE, 4, RW, PRIV, 1));
	ASSERT_OK(map_at(f.mm, AT(4), 4, RW, PRIV));
	ASSERT_TRUE(zeros_at(f.mm, AT(4), 2));
	for (int i = 0; i < 8; i++)
		addrs[i] = AT(i);
	addrs[8] = AT(100);		/* no VMA */
	addrs[9] = AT(2);		/* the same page twice */

	for (int i = 0; i < 10; i++)
		status[i] = 0x7777;
	ASSERT_OK(umm_move_pages(f.mm, 10, addrs, NULL, status));
	for (int i = 0; i < 4; i++)
		ASSERT_TRUE(status[i] == 0 || status[i] == 1);
	for (int i = 4; i < 8; i++)
		ASSERT_EQ(status[i], -ENOENT);
	ASSERT_EQ(status[8], -EFAULT);
	ASSERT_EQ(status[9], status[2]);

	/* asked to move, the same answers where there is nothing to move */
	for (int i = 0; i < 10; i++) {
		nodes[i] = 1;
		status[i] = 0x7777;
	}
	ASSERT_OK(umm_move_pages(f.mm, 10, addrs, nodes, status));
	for (int i = 0; i < 4; i++)
		ASSERT_EQ(status[i], 1);
	for (int i = 4; i < 8; i++)
		ASSERT_EQ(status[i], -ENOENT);
	ASSERT_EQ(status[8], -EFAULT);
	ASSERT_EQ(status[9], 1);
	ASSERT_TRUE(check_pat(f.mm, BASE, 4, 1));
	ASSERT_TRUE(zeros_at(f.mm, AT(4), 4));

	return settled_fini(&f);
}

/* Bad arguments, as move_pages(2) answers them: a node that does not exist
 * (beyond the last, or negative) is -ENODEV, missing arrays -EINVAL. */
static bool test_bad_args(void)
{
	uint64_t addr = BASE;
	int node, status;
	struct fix f;

	NEED(move);
	ASSERT_TRUE(numa_fix_init(&f, 2));
	ASSERT_TRUE(map_pat(f.mm, BASE, 1, RW, PRIV, 1));
	node = 2;
	ASSERT_ERR(umm_move_pages(f.mm, 1, &addr, &node, &status), ENODEV);
	node = 64;
	ASSERT_ERR(umm_move_pages(f.mm, 1, &addr, &node, &status), ENODEV);
	node = -1;
	ASSERT_ERR(umm_move_pages(f.mm, 1, &addr, &node, &status), ENODEV);
	ASSERT_ERR(umm_move_pages(f.mm, 1, NULL, NULL, &status), EINVAL);
	ASSERT_ERR(umm_move_pages(f.mm, 1, &addr, NULL, NULL), EINVAL);
	ASSERT_ERR(umm_move_pages(NULL, 1, &addr, NULL, &status), EINVAL);
	ASSERT_OK(umm_move_pages(f.mm, 0, &addr, NULL, &status));
	ASSERT_TRUE(check_pat(f.mm, BASE, 1, 1));
	return settled_fini(&f);
}

/* ---- anonymous pages change node and frame ---- */

static bool test_move_anon(void)
{
	const int n = 32;
	uint64_t addrs[32], rs = seed ^ 0x1111;
	int status[32], nodes[32], before[32];
	struct umm_vmscan_stat v0;
	struct fix f;

	NEED(move);
	ASSERT_TRUE(numa_fix_init(&f, 2));
	ASSERT_TRUE(map_pat(f.mm, BASE, n, RW, PRIV, 1));
	ASSERT_TRUE(where(f.mm, BASE, n, before));
	v0 = vstat(f.u);

	/* each page to the other node, in one call */
	for (int i = 0; i < n; i++) {
		addrs[i] = AT(i);
		nodes[i] = 1 - before[i];
		status[i] = 0x7777;
	}
	ASSERT_OK(umm_move_pages(f.mm, n, addrs, nodes, status));
	for (int i = 0; i < n; i++)
		ASSERT_EQ(status[i], nodes[i]);
	ASSERT_TRUE(where(f.mm, BASE, n, status));
	for (int i = 0; i < n; i++)
		ASSERT_EQ(status[i], nodes[i]);
	ASSERT_EQ(vstat(f.u).pgmigrate_success - v0.pgmigrate_success, n);
	ASSERT_TRUE(check_pat(f.mm, BASE, n, 1));
	ASSERT_EQ(mstat(f.mm).rss_anon, n);
	ASSERT_TRUE(settled_valid(f.u));

	/* one at a time, to random nodes (the same node included) */
	for (int k = 0; k < 64; k++) {
		int p = tap_rand(&rs) % n;

		ASSERT_TRUE(move_one(f.mm, AT(p), tap_rand(&rs) % 2, AT(p), 1));
	}
	/* still writable in place, and still private */
	ASSERT_TRUE(write_pat(f.mm, BASE, n, 2));
	ASSERT_TRUE(check_pat(f.mm, BASE, n, 2));
	ASSERT_TRUE(settled_valid(f.u));
	return settled_fini(&f);
}

/* ---- pages mapped by several mms: everyone sees the new frame ---- */

/*
 * Move the pages at @addr (@n of them, pattern @tag) from @mover: @other,
 * which maps them too, sees them at the same new frame and node.
 */
static bool move_seen_by(struct umm_mm *mover, struct umm_mm *other, uint64_t addr, int n,
			 uint64_t tag, int mapcount)
{
	for (int p = 0; p < n; p++) {
		uint64_t a = addr + PG(p);
		int to = 1 - node_of(mover, a);

		ASSERT_TRUE(move_one(mover, a, to, a, tag));
		ASSERT_EQ(node_of(other, a), to);
		ASSERT_EQ(pinfo(other, a).pfn, pinfo(mover, a).pfn);
		ASSERT_EQ(pinfo(other, a).mapcount, mapcount);
		ASSERT_TRUE(pat_at(other, a, a, 1, tag));
	}
	return true;
}

/* Private pages COW-shared after fork, moved by the parent. */
static bool test_move_shared(void)
{
	struct umm_mm *child;
	struct fix f;

	NEED(move);
	ASSERT_TRUE(numa_fix_init(&f, 2));
	ASSERT_TRUE(map_pat(f.mm, AT(0), 4, RW, PRIV, 1));
	ASSERT_OK(umm_mm_fork(f.mm, &child));
	ASSERT_TRUE(move_seen_by(f.mm, child, AT(0), 4, 1, 2));
	ASSERT_TRUE(settled_valid(f.u));

	/* after the move, COW still breaks: writes stay private */
	ASSERT_TRUE(write_pat(child, AT(0), 2, 3));
	ASSERT_TRUE(check_pat(f.mm, AT(0), 4, 1));
	ASSERT_TRUE(write_pat(f.mm, AT(2), 2, 4));
	ASSERT_TRUE(check_pat(child, AT(2), 2, 1));
	ASSERT_TRUE(settled_valid(f.u));
	umm_mm_exit(child);
	return settled_fini(&f);
}

/* Shared anonymous memory (shmem to Linux, which moves it), moved by a child. */
static bool test_move_shmem(void)
{
	struct umm_mm *child;
	struct fix f;

	NEED(move);
	ASSERT_TRUE(numa_fix_init(&f, 2));
	ASSERT_TRUE(map_pat(f.mm, AT(8), 4, RW, SHRD, 2));
	ASSERT_OK(umm_mm_fork(f.mm, &child));
	/* fork copies no PTEs of shared mappings (as Linux): the child faults them in */
	ASSERT_TRUE(check_pat(child, AT(8), 4, 2));
	ASSERT_TRUE(move_seen_by(child, f.mm, AT(8), 4, 2, 2));
	ASSERT_TRUE(settled_valid(f.u));

	/* still one object: a write by either is seen by the other */
	ASSERT_TRUE(write_pat(f.mm, AT(8), 4, 4));
	ASSERT_TRUE(check_pat(child, AT(8), 4, 4));
	ASSERT_TRUE(settled_valid(f.u));
	umm_mm_exit(child);
	return settled_fini(&f);
}

static bool test_move_file(void)
{
	uint64_t w[PS / 8];
	struct umm_file *file;
	struct umm_mm *other;
	struct fix f;
	int fd;

	NEED(move);
	ASSERT_TRUE(numa_fix_init(&f, 2));
	fd = open(tmp_path("file"), O_RDWR | O_CREAT | O_TRUNC, 0644);
	ASSERT_TRUE(fd >= 0);
	for (int p = 0; p < 4; p++) {
		pat_fill(w, AT(p), 1);
		ASSERT_EQ(pwrite(fd, w, PS, PG(p)), PS);
	}
	ASSERT_OK(umm_file_open(f.u, tmp_path("file"), O_RDWR, &file));
	ASSERT_OK(umm_mm_create(f.u, &other));
	ASSERT_OK(map_file(f.mm, BASE, 4, RW, UMM_MAP_SHARED, file, 0));
	ASSERT_OK(map_file(other, BASE, 4, RO, UMM_MAP_SHARED, file, 0));
	ASSERT_TRUE(check_pat(f.mm, BASE, 4, 1));
	ASSERT_TRUE(check_pat(other, BASE, 4, 1));

	for (int p = 0; p < 4; p++) {
		int to = 1 - node_of(f.mm, AT(p));

		ASSERT_TRUE(move_one(f.mm, AT(p), to, AT(p), 1));
		ASSERT_EQ(pinfo(other, AT(p)).pfn, pinfo(f.mm, AT(p)).pfn);
	}
	ASSERT_TRUE(settled_valid(f.u));

	/* the page cache holds the new frame: a write reaches the file */
	ASSERT_TRUE(write_pat(f.mm, AT(1), 1, 2));
	ASSERT_TRUE(check_pat(other, AT(1), 1, 2));
	ASSERT_OK(umm_msync(f.mm, BASE, PG(4), UMM_MS_SYNC));
	ASSERT_EQ(pread(fd, w, PS, PG(1)), PS);
	ASSERT_TRUE(page_is_pat(w, AT(1), 2));

	umm_mm_exit(other);
	ASSERT_OK(umm_munmap(f.mm, BASE, PG(4)));
	umm_file_put(file);
	close(fd);
	return settled_fini(&f);
}

/*
 * A secondary MMU caching the translations: a move invalidates the moved
 * page's (a MIGRATE event), no other, before the old frame goes.
 */
static bool test_move_secondary_mmu(void)
{
	struct smmu s;
	struct fix f;

	NEED(move);
	ASSERT_TRUE(numa_fix_init(&f, 2));
	ASSERT_TRUE(map_pat(f.mm, BASE, 8, RW, PRIV, 1));
	ASSERT_TRUE(smmu_init(&s, f.mm, BASE, 8));
	ASSERT_TRUE(smmu_fill(&s, f.mm));
	uint64_t old = s.pfn[3];

	ASSERT_TRUE(move_one(f.mm, AT(3), 1 - node_of(f.mm, AT(3)), AT(3), 1));
	ASSERT_GE(s.by_event[UMM_MMU_NOTIFY_MIGRATE], 1);
	ASSERT_EQ(s.starts, s.ends);
	ASSERT_EQ(s.pfn[3], 0);
	ASSERT_EQ(smmu_cached(&s), 7);
	ASSERT_EQ(umm_mmu_notifier_checker_violations(f.u), 0);
	ASSERT_TRUE(smmu_fill(&s, f.mm));
	ASSERT_NE(s.pfn[3], old);
	ASSERT_EQ(s.pfn[3], pinfo(f.mm, AT(3)).pfn);
	smmu_fini(&s, f.mm);
	ASSERT_EQ(umm_mmu_notifier_checker_violations(f.u), 0);
	return settled_fini(&f);
}

/* ---- a page someone holds does not move ---- */

static bool test_move_pinned(void)
{
	struct umm_page *page;
	uint64_t addr = AT(1);
	int st, to;
	struct fix f;

	NEED(move);
	ASSERT_TRUE(numa_fix_init(&f, 2));
	ASSERT_TRUE(map_pat(f.mm, BASE, 4, RW, PRIV, 1));
	ASSERT_OK(umm_get_user_page(f.mm, addr, UMM_GUP_WRITE, &page));
	uint64_t pfn = umm_page_pfn(page);
	int from = node_of(f.mm, addr);

	to = 1 - from;
	st = 0x7777;
	ASSERT_OK(umm_move_pages(f.mm, 1, &addr, &to, &st));
	ASSERT_EQ(st, -EBUSY);
	ASSERT_EQ(node_of(f.mm, addr), from);
	ASSERT_EQ(pinfo(f.mm, addr).pfn, pfn);
	/* the holder still reaches the mapped frame, and sees writes through it */
	ASSERT_TRUE(put_byte(f.mm, addr + 5, 0xab));
	ASSERT_EQ(((uint8_t *)umm_page_address(page))[5], 0xab);
	umm_put_page(page);

	ASSERT_OK(umm_move_pages(f.mm, 1, &addr, &to, &st));
	ASSERT_EQ(st, to);
	ASSERT_NE(pinfo(f.mm, addr).pfn, pfn);
	ASSERT_EQ(byte_at(f.mm, addr + 5), 0xab);
	return settled_fini(&f);
}

/* ---- moving under concurrent accesses ---- */

#define CONC_WRITERS	2
#define CONC_PAGES	16		/* per writer */

struct conc {
	struct umm_mm *mm;
	unsigned int id;
	unsigned long ops;
	uint64_t rs;
	atomic_bool *stop;
	char err[160];
};

/* Rewrite own pages with rising tags; every read must give the last tag. */
static void *conc_writer(void *arg)
{
	struct conc *c = arg;
	uint64_t tags[CONC_PAGES] = { 0 }, w[PS / 8];
	uint64_t base = AT(c->id * 64);

	for (unsigned long i = 0; i < c->ops && !*c->stop; i++) {
		unsigned int p = tap_rand(&c->rs) % CONC_PAGES;
		uint64_t addr = base + PG(p);

		if (tap_rand(&c->rs) & 1) {
			tags[p] = i + 1;
			pat_fill(w, addr, tags[p]);
			if (umm_write(c->mm, addr, w, PS) != PS) {
				snprintf(c->err, sizeof(c->err), "write %#" PRIx64 " failed", addr);
				break;
			}
		}
		if (umm_read(c->mm, addr, w, PS) != PS) {
			snprintf(c->err, sizeof(c->err), "read %#" PRIx64 " failed", addr);
			break;
		}
		if (tags[p] ? !page_is_pat(w, addr, tags[p]) : memcmp(w, (uint8_t[PS]){ 0 }, PS)) {
			snprintf(c->err, sizeof(c->err),
				 "op %lu: page %#" PRIx64 " lost tag %" PRIu64 " (word 0: %#" PRIx64 ")",
				 i, addr, tags[p], w[0]);
			break;
		}
	}
	if (c->err[0])
		*c->stop = true;
	return NULL;
}

/* Move random pages of every writer to random nodes until told to stop. */
static void *conc_mover(void *arg)
{
	struct conc *c = arg;

	while (!*c->stop) {
		uint64_t addrs[8];
		int nodes[8], status[8];

		for (int i = 0; i < 8; i++) {
			addrs[i] = AT((tap_rand(&c->rs) % CONC_WRITERS) * 64 +
				      tap_rand(&c->rs) % CONC_PAGES);
			nodes[i] = tap_rand(&c->rs) % 2;
		}
		int r = umm_move_pages(c->mm, 8, addrs, nodes, status);
		if (r) {
			snprintf(c->err, sizeof(c->err), "umm_move_pages = %d", r);
			*c->stop = true;
			break;
		}
		for (int i = 0; i < 8; i++) {
			/* a page being written may be busy; a never-written one is absent */
			if (status[i] == nodes[i] || status[i] == -EBUSY || status[i] == -ENOENT) {
				c->ops += status[i] == nodes[i];
				continue;
			}
			snprintf(c->err, sizeof(c->err), "move of %#" PRIx64 " to %d: status %d",
				 addrs[i], nodes[i], status[i]);
			*c->stop = true;
			break;
		}
	}
	return NULL;
}

static bool test_move_concurrent(void)
{
	struct conc c[CONC_WRITERS + 1];
	pthread_t th[CONC_WRITERS + 1];
	atomic_bool stop = false;
	struct fix f;
	bool ok = true;

	NEED(move);
	ASSERT_TRUE(numa_fix_init(&f, 2));
	for (unsigned int w = 0; w < CONC_WRITERS; w++)
		ASSERT_OK(map_at(f.mm, AT(w * 64), CONC_PAGES, RW, PRIV));
	for (unsigned int i = 0; i <= CONC_WRITERS; i++) {
		c[i] = (struct conc){ .mm = f.mm, .id = i, .rs = seed + i + 1, .stop = &stop,
				      .ops = tap_short() ? 3000 : 30000 };
	}
	c[CONC_WRITERS].ops = 0;	/* the mover counts its moves there */
	ASSERT_EQ(pthread_create(&th[CONC_WRITERS], NULL, conc_mover, &c[CONC_WRITERS]), 0);
	for (unsigned int i = 0; i < CONC_WRITERS; i++)
		ASSERT_EQ(pthread_create(&th[i], NULL, conc_writer, &c[i]), 0);
	for (unsigned int i = 0; i < CONC_WRITERS; i++)
		pthread_join(th[i], NULL);
	stop = true;
	pthread_join(th[CONC_WRITERS], NULL);
	for (unsigned int i = 0; i <= CONC_WRITERS; i++) {
		if (c[i].err[0]) {
			TAP_DIAG("%s %u: %s", i < CONC_WRITERS ? "writer" : "mover", i, c[i].err);
			ok = false;
		}
	}
	TAP_DIAG("%lu pages moved under the writers", c[CONC_WRITERS].ops);
	ASSERT_TRUE(ok);
	ASSERT_TRUE(c[CONC_WRITERS].ops > 0);
	ASSERT_TRUE(settled_valid(f.u));
	return settled_fini(&f);
}

/* ---- selftests/mm/rmap.c: a page moved under every mapping of it ---- */

#define TREE_LEVELS	5
#define TREE_CHILDREN	3
#define TREE_MAX	40

/* Fill the page at @addr of @mm with bytes every process shares (same content). */
static bool write_same(struct umm_mm *mm, uint64_t addr)
{
	uint8_t buf[PS];

	memset(buf, 0x6b, PS);
	ASSERT_EQ(umm_write(mm, addr, buf, PS), PS);
	return true;
}

static bool is_same(struct umm_mm *mm, uint64_t addr)
{
	uint8_t buf[PS], want[PS];

	memset(want, 0x6b, PS);
	ASSERT_EQ(umm_read(mm, addr, buf, PS), PS);
	ASSERT_TRUE(memcmp(buf, want, PS) == 0);
	return true;
}

/* Scan until the page at @addr of each of the @n mms is a KSM page (or give up). */
static bool ksm_merge_all(struct umm *u, struct umm_mm **mms, int n, uint64_t addr)
{
	for (int round = 0; round < 64; round++) {
		int merged = 0;

		for (int i = 0; i < n; i++)
			merged += !!(pinfo(mms[i], addr).flags & UMM_PI_KSM);
		if (merged == n)
			return true;
		ASSERT_TRUE(umm_ksm_scan(u, 64) >= 0);
	}
	TAP_DIAG("KSM did not merge the page at %#" PRIx64 " in all %d mms", addr, n);
	return false;
}

/*
 * A random fork tree under @mms[0], as selftests/mm/rmap.c grows one: up to
 * TREE_LEVELS levels, each process forking 0 to TREE_CHILDREN children,
 * at most TREE_MAX processes.  Return: how many (the root included), or 0
 * when a fork failed.
 */
static int fork_tree(struct umm_mm **mms, uint64_t *rs)
{
	int n = 1, level_start = 0;

	for (int level = 1; level < TREE_LEVELS; level++) {
		int level_end = n;

		for (int p = level_start; p < level_end; p++) {
			int children = tap_rand(rs) % (TREE_CHILDREN + 1);

			/* the root always has a child: a tree of one proves nothing */
			if (p == 0 && !children)
				children = 1;
			for (int c = 0; c < children && n < TREE_MAX; c++) {
				if (umm_mm_fork(mms[p], &mms[n]))
					return 0;
				n++;
			}
		}
		level_start = level_end;
	}
	return n;
}

enum tree_backend { TREE_ANON, TREE_SHMEM, TREE_FILE };

/*
 * selftests/mm/rmap.c's migrate.anon, .shm and .file: one page, written by
 * the root before a random fork tree (a private page every process shares
 * by COW, shared anonymous memory, or a shared mapping of a file), read by
 * every process, then moved by a random one: every process maps the new
 * frame, on the new node, with the same bytes.
 */
static bool fork_tree_move(enum tree_backend backend)
{
	struct umm_mm *mms[TREE_MAX];
	struct umm_file *file = NULL;
	uint64_t rs = seed ^ (0x3333 + backend), new_pfn;
	int n, mover, to, st = 0x7777;
	uint64_t addr = BASE;
	struct fix f;

	NEED(move);
	ASSERT_TRUE(numa_fix_init(&f, 2));
	if (backend == TREE_FILE) {
		int fd = open(tmp_path("tree-file"), O_RDWR | O_CREAT | O_TRUNC, 0644);

		ASSERT_TRUE(fd >= 0);
		ASSERT_OK(ftruncate(fd, PS));
		close(fd);
		ASSERT_OK(umm_file_open(f.u, tmp_path("tree-file"), O_RDWR, &file));
		ASSERT_OK(map_file(f.mm, addr, 1, RW, UMM_MAP_SHARED, file, 0));
		ASSERT_TRUE(write_pat(f.mm, addr, 1, 5));
	} else {
		ASSERT_TRUE(map_pat(f.mm, addr, 1, RW, backend == TREE_ANON ? PRIV : SHRD, 5));
	}
	mms[0] = f.mm;
	n = fork_tree(mms, &rs);
	ASSERT_TRUE(n > 1);
	for (int i = 0; i < n; i++)
		ASSERT_TRUE(check_pat(mms[i], addr, 1, 5));
	for (int i = 1; i < n; i++)
		ASSERT_EQ(pinfo(mms[i], addr).pfn, pinfo(mms[0], addr).pfn);

	mover = tap_rand(&rs) % n;
	to = 1 - node_of(mms[mover], addr);
	ASSERT_OK(umm_move_pages(mms[mover], 1, &addr, &to, &st));
	ASSERT_EQ(st, to);
	new_pfn = pinfo(mms[mover], addr).pfn;
	TAP_DIAG("%d processes; process %d moved the page to node %d", n, mover, to);
	for (int i = 0; i < n; i++) {
		ASSERT_EQ(pinfo(mms[i], addr).pfn, new_pfn);
		ASSERT_EQ(pinfo(mms[i], addr).mapcount, n);
		ASSERT_EQ(node_of(mms[i], addr), to);
		ASSERT_TRUE(check_pat(mms[i], addr, 1, 5));
	}
	ASSERT_TRUE(settled_valid(f.u));
	for (int i = 1; i < n; i++)
		umm_mm_exit(mms[i]);
	if (file) {
		ASSERT_OK(umm_munmap(f.mm, addr, PS));
		umm_file_put(file);
	}
	return settled_fini(&f);
}

static bool test_fork_tree_anon(void)
{
	return fork_tree_move(TREE_ANON);
}

static bool test_fork_tree_shmem(void)
{
	return fork_tree_move(TREE_SHMEM);
}

static bool test_fork_tree_file(void)
{
	return fork_tree_move(TREE_FILE);
}

/*
 * migrate.ksm: a page of the same bytes in every process of a random fork
 * tree, each written after the fork (so that KSM, not COW, makes them
 * one), merged, then moved by one process: every process sees the new
 * frame and node.
 */
static bool test_ksm_fork_tree(void)
{
	struct umm_mm *mms[TREE_MAX];
	uint64_t rs = seed ^ 0x2222;
	struct fix f;
	int n;

	NEED(move);
	NEED(ksm);
	ASSERT_TRUE(numa_fix_init(&f, 2));
	ASSERT_OK(map_at(f.mm, BASE, 1, RW, PRIV));
	ASSERT_OK(umm_madvise(f.mm, BASE, PS, UMM_MADV_MERGEABLE));
	ASSERT_TRUE(write_same(f.mm, BASE));
	mms[0] = f.mm;
	n = fork_tree(mms, &rs);
	ASSERT_TRUE(n > 1);
	for (int i = 0; i < n; i++)
		ASSERT_TRUE(write_same(mms[i], BASE));
	ASSERT_TRUE(ksm_merge_all(f.u, mms, n, BASE));
	uint64_t pfn = pinfo(mms[0], BASE).pfn;
	for (int i = 1; i < n; i++)
		ASSERT_EQ(pinfo(mms[i], BASE).pfn, pfn);

	int mover = tap_rand(&rs) % n;
	int to = 1 - node_of(mms[mover], BASE);
	int st = 0x7777;
	uint64_t addr = BASE;

	ASSERT_OK(umm_move_pages(mms[mover], 1, &addr, &to, &st));
	ASSERT_EQ(st, to);
	uint64_t new_pfn = pinfo(mms[mover], BASE).pfn;
	ASSERT_NE(new_pfn, pfn);
	for (int i = 0; i < n; i++) {
		struct umm_pageinfo pi = pinfo(mms[i], BASE);

		ASSERT_EQ(pi.pfn, new_pfn);
		ASSERT_TRUE(pi.flags & UMM_PI_KSM);
		ASSERT_EQ(node_of(mms[i], BASE), to);
		ASSERT_TRUE(is_same(mms[i], BASE));
	}
	ASSERT_TRUE(settled_valid(f.u));

	/* the stable node knows the new frame: a new identical page merges into it */
	ASSERT_OK(map_at(f.mm, AT(1), 1, RW, PRIV));
	ASSERT_OK(umm_madvise(f.mm, AT(1), PS, UMM_MADV_MERGEABLE));
	ASSERT_TRUE(write_same(f.mm, AT(1)));
	ASSERT_TRUE(ksm_merge_all(f.u, &f.mm, 1, AT(1)));
	ASSERT_EQ(pinfo(f.mm, AT(1)).pfn, new_pfn);
	ASSERT_TRUE(settled_valid(f.u));
	for (int i = 1; i < n; i++)
		umm_mm_exit(mms[i]);
	return settled_fini(&f);
}

/*
 * migrate.ksm_and_mremap: 32 pages of the same bytes, the second half
 * mremapped over the first (their indexes no longer match their addresses),
 * made mergeable: KSM makes the 16 one page; moving it moves every mapping.
 *
 *   AAAAAAAAAAAAAAAA BBBBBBBBBBBBBBBB  ->  BBBBBBBBBBBBBBBB (at A's place)
 */
static bool test_ksm_and_mremap(void)
{
	const int nr = 16;
	uint64_t out = 0, old_pfn, new_pfn, addr = BASE;
	int to, st = 0x7777;
	struct fix f;

	NEED(move);
	NEED(ksm);
	ASSERT_TRUE(numa_fix_init(&f, 2));
	ASSERT_OK(map_at(f.mm, BASE, 2 * nr, RW, PRIV));
	for (int p = 0; p < 2 * nr; p++)
		ASSERT_TRUE(write_same(f.mm, AT(p)));
	ASSERT_OK(umm_mremap(f.mm, AT(nr), PG(nr), PG(nr), UMM_MREMAP_MAYMOVE | UMM_MREMAP_FIXED,
			     BASE, &out));
	ASSERT_EQ(out, BASE);
	ASSERT_OK(umm_madvise(f.mm, BASE, PG(nr), UMM_MADV_MERGEABLE));
	for (int p = 0; p < nr; p++)
		ASSERT_TRUE(ksm_merge_all(f.u, &f.mm, 1, AT(p)));
	old_pfn = pinfo(f.mm, BASE).pfn;
	for (int p = 0; p < nr; p++)
		ASSERT_EQ(pinfo(f.mm, AT(p)).pfn, old_pfn);

	to = 1 - node_of(f.mm, addr);
	ASSERT_OK(umm_move_pages(f.mm, 1, &addr, &to, &st));
	ASSERT_EQ(st, to);
	new_pfn = pinfo(f.mm, BASE).pfn;
	ASSERT_NE(new_pfn, old_pfn);
	for (int p = 0; p < nr; p++) {
		ASSERT_EQ(pinfo(f.mm, AT(p)).pfn, new_pfn);
		ASSERT_TRUE(is_same(f.mm, AT(p)));
	}
	ASSERT_TRUE(settled_valid(f.u));
	return settled_fini(&f);
}

/* KSM merge after mremap (the page's index no longer matches its address), then move. */
static bool test_ksm_mremap_move(void)
{
	uint64_t out = 0, addr = AT(32);
	int to, st = 0x7777;
	struct fix f;

	NEED(move);
	NEED(ksm);
	ASSERT_TRUE(numa_fix_init(&f, 2));
	ASSERT_OK(map_at(f.mm, AT(0), 2, RW, PRIV));
	ASSERT_OK(umm_madvise(f.mm, AT(0), PG(2), UMM_MADV_MERGEABLE));
	ASSERT_TRUE(write_same(f.mm, AT(0)));
	ASSERT_TRUE(write_same(f.mm, AT(1)));
	/* AA -> (hole) ... A at 32, A at 0 stays */
	ASSERT_OK(umm_mremap(f.mm, AT(1), PS, PS, UMM_MREMAP_MAYMOVE | UMM_MREMAP_FIXED, addr,
			     &out));
	ASSERT_EQ(out, addr);
	ASSERT_TRUE(ksm_merge_all(f.u, &f.mm, 1, AT(0)));
	ASSERT_TRUE(ksm_merge_all(f.u, &f.mm, 1, addr));
	ASSERT_EQ(pinfo(f.mm, AT(0)).pfn, pinfo(f.mm, addr).pfn);

	to = 1 - node_of(f.mm, addr);
	ASSERT_OK(umm_move_pages(f.mm, 1, &addr, &to, &st));
	ASSERT_EQ(st, to);
	ASSERT_EQ(node_of(f.mm, AT(0)), to);
	ASSERT_EQ(pinfo(f.mm, AT(0)).pfn, pinfo(f.mm, addr).pfn);
	ASSERT_TRUE(is_same(f.mm, AT(0)));
	ASSERT_TRUE(is_same(f.mm, addr));
	ASSERT_TRUE(settled_valid(f.u));
	/* COW out of the KSM page still works at the new frame */
	ASSERT_TRUE(put_byte(f.mm, addr, 1));
	ASSERT_TRUE(is_same(f.mm, AT(0)));
	ASSERT_EQ(byte_at(f.mm, addr), 1);
	return settled_fini(&f);
}

/* ---- compaction ---- */

/*
 * The frames of the @n pages at @addr, stride @step (the mapped ones of a
 * range where every other page was unmapped), into @pfns.
 */
static bool mapped_pfns(struct umm_mm *mm, uint64_t addr, uint64_t n, uint64_t step,
			uint64_t *pfns)
{
	for (uint64_t p = 0, i = 0; p < n; p += step, i++) {
		struct umm_pageinfo pi = pinfo(mm, addr + PG(p));

		ASSERT_TRUE(pi.flags & UMM_PI_PRESENT);
		pfns[i] = pi.pfn;
	}
	return true;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* The longest run of frames in [1, nr_frames) that none of @pfns[@n] is in. */
static uint64_t largest_gap(uint64_t *pfns, uint64_t n, uint64_t nr_frames)
{
	uint64_t prev = 0, best = 0;

	qsort(pfns, n, sizeof(*pfns), cmp_u64);
	for (uint64_t i = 0; i <= n; i++) {
		uint64_t next = i < n ? pfns[i] : nr_frames;

		if (next - prev - 1 > best && next > prev)
			best = next - prev - 1;
		prev = next;
	}
	return best;
}

/*
 * Fill memory but for a few frames, free every other page, and ask for a
 * run of 64 free frames: when no such run was free before (checked with
 * pagemap), compaction must migrate; afterwards no mapped page is in the
 * run and every page keeps its bytes.
 */
static bool test_compact(void)
{
	const uint64_t run = 64;
	uint64_t start = ~0ULL, n, nr_frames, gap, *pfns;
	struct umm_vmscan_stat v0;
	struct fix f;

	NEED(compact);
	ASSERT_TRUE(numa_fix_init(&f, 1));
	nr_frames = ustat(f.u).nr_frames;
	n = ustat(f.u).nr_free - 16;
	n &= ~1ULL;
	pfns = calloc(n, sizeof(*pfns));
	ASSERT_TRUE(pfns);
	ASSERT_TRUE(map_pat(f.mm, BASE, n, RW, PRIV, 1));
	for (uint64_t p = 0; p < n; p += 2)
		ASSERT_OK(umm_munmap(f.mm, AT(p), PS));
	ASSERT_TRUE(mapped_pfns(f.mm, AT(1), n, 2, pfns));
	gap = largest_gap(pfns, n / 2, nr_frames);
	v0 = vstat(f.u);

	ASSERT_OK(umm_compact(f.u, 0, run, &start));
	uint64_t migrated = vstat(f.u).compact_migrated - v0.compact_migrated;
	TAP_DIAG("largest free run before: %" PRIu64 " frames; run at pfn %" PRIu64
		 ", %" PRIu64 " frames migrated", gap, start, migrated);
	ASSERT_TRUE(start >= 1 && start + run <= nr_frames);
	if (gap < run)
		ASSERT_TRUE(migrated > 0);
	ASSERT_TRUE(mapped_pfns(f.mm, AT(1), n, 2, pfns));
	for (uint64_t i = 0; i < n / 2; i++) {
		if (pfns[i] >= start && pfns[i] < start + run)
			TAP_DIAG("a mapped page is at pfn %" PRIu64 ", inside the run", pfns[i]);
		ASSERT_FALSE(pfns[i] >= start && pfns[i] < start + run);
	}
	for (uint64_t p = 1; p < n; p += 2)
		ASSERT_TRUE(check_pat(f.mm, AT(p), 1, 1));
	ASSERT_TRUE(settled_valid(f.u));

	/* a held page is unmovable: its run is never the one chosen */
	struct umm_page *page;
	ASSERT_OK(umm_get_user_page(f.mm, AT(1), 0, &page));
	uint64_t held = umm_page_pfn(page);
	int r = umm_compact(f.u, 0, run, &start);
	ASSERT_TRUE(r == 0 || r == -EBUSY || r == -ENOMEM);
	if (r == 0)
		ASSERT_TRUE(held < start || held >= start + run);
	ASSERT_EQ(umm_page_pfn(page), held);
	umm_put_page(page);
	ASSERT_TRUE(check_pat(f.mm, AT(1), 1, 1));

	/* bad requests */
	ASSERT_ERR(umm_compact(f.u, 0, 0, &start), EINVAL);
	ASSERT_ERR(umm_compact(f.u, 1, run, &start), EINVAL);
	ASSERT_ERR(umm_compact(f.u, -1, run, &start), EINVAL);
	ASSERT_TRUE(umm_compact(f.u, 0, nr_frames + 1, &start) < 0);
	free(pfns);
	ASSERT_TRUE(settled_valid(f.u));
	return settled_fini(&f);
}

int main(void)
{
	seed = tap_seed();
	if (!tmp_init("migrate")) {
		printf("1..0 # SKIP cannot make a temporary directory\n");
		return 0;
	}
	probe_engine();
	RUN_TEST_CAPS(test_status);
	RUN_TEST_CAPS(test_bad_args);
	RUN_TEST_CAPS(test_move_anon);
	RUN_TEST_CAPS(test_move_shared);
	RUN_TEST_CAPS(test_move_shmem);
	RUN_TEST_CAPS(test_move_file);
	RUN_TEST_CAPS(test_move_secondary_mmu);
	RUN_TEST_CAPS(test_move_pinned);
	RUN_TEST_CAPS(test_move_concurrent);
	RUN_TEST_CAPS(test_fork_tree_anon);
	RUN_TEST_CAPS(test_fork_tree_shmem);
	RUN_TEST_CAPS(test_fork_tree_file);
	RUN_TEST_CAPS(test_ksm_fork_tree);
	RUN_TEST_CAPS(test_ksm_mremap_move);
	RUN_TEST_CAPS(test_ksm_and_mremap);
	RUN_TEST_CAPS(test_compact);
	tmp_cleanup();
	return tap_done();
}
