/* SPDX-License-Identifier: MIT */
/*
 * bench_swap.c - what memory that leaves and comes back costs: swap
 * throughput, migration throughput and reclaim's CPU per page.
 *
 * Figures (median of --reps runs unless said otherwise):
 *
 *   swap-out, sequential   a machine of P MiB (--phys-mb, default 64) with a
 *                          swap file of 4P; an mm writes a working set of 2P
 *                          once, page after page (one 4 KiB write each);
 *                          MiB/s of pages written to swap (pswpout) per
 *                          second of that pass, and of the pass itself;
 *   swap-in, sequential    then reads one word of every page in order: MiB/s
 *                          read from swap (pswpin) per second; with memory
 *                          full, every swap-in also costs a swap-out;
 *   swap-in, random        one word of every page in a random order;
 *   swap-out+in, random    a 4 KiB write to every page in a random order;
 *   swap-out, random       a fresh machine of the same size whose 2P working
 *                          set is written once in a random order (a new
 *                          permutation each run): MiB/s of pswpout;
 *   migration, anonymous   a machine of two nodes; --move-mb (default 32) of
 *                          written private pages moved to the other node by
 *                          umm_move_pages() in batches of 512: pages/s;
 *   migration, KSM         pages that KSM merged (each frame mapped twice)
 *                          moved the same way, when KSM exists;
 *   reclaim CPU per page   thread CPU time (CLOCK_THREAD_CPUTIME_ID) of
 *                          umm_reclaim(1024) calls on a machine filled to
 *                          90%, over the pages they reclaimed (pgsteal): the
 *                          direct-reclaim cost, swap write included; and the
 *                          process's CPU (getrusage: every thread, kswapd
 *                          included) of the sequential swap-out pass over
 *                          its pgsteal.
 *
 * The reference: the host has no swap here (/proc/swaps is read and its
 * state printed), so there is no host swap column.  What the host does give
 * is the floor under umm's swap I/O: pwrite()/pread() of 4 KiB blocks to a
 * file in the same directory as umm's swap file (the ordinary host I/O
 * umm's swap uses), sequential and random, printed beside the figures.
 *
 * Checks, not timings, decide the exit code: every page read back holds
 * what was written to it, pages really went to swap (pswpout, pswpin) and
 * really moved (status, node), umm_validate(EXACT|RMAP) passes, every swap
 * slot is free after exit and no frame leaks.  A failed check marks the
 * figure FAILED and the program exits 1.  A part of the engine that is not
 * built yet (-ENOSYS) makes its figures "n/a".
 *
 * Usage: bench_swap [--quick] [--json] [--reps N] [--phys-mb P] [--move-mb M]
 *                   [--dir D]
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <umm/umm.h>

#define BENCH_NAME "bench_swap"
#include "bench_common.h"
#include "../tests/settle.h"

#define PAGE		UMM_PAGE_SIZE
#define MiB		(1024.0 * 1024.0)
#define MAX_REPS	15
#define MAX_FIGS	32
#define BASE		0x200000000ULL
#define MOVE_BATCH	512

#define CHECK(cond, ...) do { if (!(cond)) fail_msg(__VA_ARGS__); } while (0)

static struct {
	int reps;
	size_t phys_mb, move_mb;
	const char *dir;
	bool quick, json;
} opt = { .reps = 3, .phys_mb = 64, .move_mb = 32, .dir = "/tmp" };

struct fig {
	const char *group, *name, *unit;
	double umm, host;		/* NAN: none */
	bool valid, na;
	char note[96];
};

static struct fig figs[MAX_FIGS];
static int nr_figs;
static char swap_path[256];
static bool lazy_arena;		/* machine_create() without PREFAULT */
static char host_swap[128];

static struct fig *add_fig(const char *group, const char *name, const char *unit, double umm,
			   double host)
{
	struct fig *f = &figs[nr_figs++];

	*f = (struct fig){ .group = group, .name = name, .unit = unit, .umm = umm,
			   .host = host, .valid = cur_ok };
	if (!cur_ok)
		nr_failed++;
	return f;
}

static void add_na(const char *group, const char *name, const char *unit, const char *why)
{
	struct fig *f = add_fig(group, name, unit, NAN, NAN);

	f->na = true;
	snprintf(f->note, sizeof(f->note), "%s", why);
}

static double median_of(double *v, int n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return median_sorted(v, n);
}

static double thread_cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static double process_cpu_ns(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e9 +
	       (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e3;
}

static struct umm_vmscan_stat vstat(struct umm *u)
{
	struct umm_vmscan_stat st;

	memset(&st, 0, sizeof(st));
	umm_get_vmscan_stat(u, &st);
	return st;
}

/* The word every page starts with after write number @gen. */
static inline uint64_t page_word(uint64_t page, unsigned int gen)
{
	return (page + 1) * 0x9e3779b97f4a7c15ULL ^ gen;
}

static void shuffle(uint64_t *v, uint64_t n, uint64_t *rs)
{
	for (uint64_t i = 0; i < n; i++)
		v[i] = i;
	for (uint64_t i = n - 1; i > 0; i--) {
		uint64_t j = xorshift64(rs) % (i + 1), t = v[i];

		v[i] = v[j];
		v[j] = t;
	}
}

/* ---- machines ---- */

/*
 * A machine of @phys bytes in @nodes nodes with @swap bytes of swap (0:
 * none).  PREFAULT: the arena's host memory is present from the start, so
 * the figures are umm's work, not the host's shmem faults on first touch
 * of a frame (bench_machine's "lazy arena" row shows that cost).
 */
static struct umm *machine_create(size_t phys, unsigned int nodes, size_t swap, int *err)
{
	struct umm_config cfg;
	struct umm *u = NULL;

	umm_config_init(&cfg);
	cfg.phys_bytes = phys;
	cfg.nr_nodes = nodes;
	cfg.flags = lazy_arena ? 0 : UMM_CONFIG_PREFAULT;
	if (swap) {
		cfg.swap_path = swap_path;
		cfg.swap_bytes = swap;
	}
	*err = umm_create(&cfg, &u);
	if (*err) {
		if (*err != -ENOSYS)
			fail_msg("umm_create(%zu MiB, %u nodes, %zu MiB swap): %s", phys >> 20,
				 nodes, swap >> 20, strerror(-*err));
		return NULL;
	}
	umm_set_log(u, umm_log_cb, NULL);
	return u;
}

/* Exit @mm, then: validate, every slot free, nothing leaked; destroy. */
static void machine_teardown(struct umm *u, struct umm_mm *mm)
{
	struct umm_vmscan_stat vs;
	char msg[256] = "";
	long leaked;
	int r;

	machine_settle(u);
	r = umm_validate(u, UMM_VALIDATE_EXACT | UMM_VALIDATE_RMAP, msg, sizeof(msg));
	CHECK(r == 0, "umm_validate: %d: %s", r, msg);
	umm_mm_exit(mm);
	vs = vstat(u);
	CHECK(vs.swap_free == vs.swap_slots, "after exit: swap_free %" PRIu64 " of %" PRIu64,
	      vs.swap_free, vs.swap_slots);
	leaked = umm_leak_check(u, NULL, NULL);
	CHECK(leaked == 0, "umm_leak_check: %ld frames leaked", leaked);
	umm_destroy(u);
}

static struct umm_mm *mm_with_region(struct umm *u, uint64_t pages)
{
	struct umm_mm *mm = NULL;
	uint64_t out;
	int r = umm_mm_create(u, &mm);

	if (!r)
		r = umm_mmap(mm, BASE, pages * PAGE, UMM_PROT_READ | UMM_PROT_WRITE,
			     UMM_MAP_PRIVATE | UMM_MAP_ANONYMOUS | UMM_MAP_FIXED, NULL, 0, &out);
	CHECK(r == 0, "mm and %" PRIu64 " pages: %s", pages, strerror(-r));
	return r ? NULL : mm;
}

/* Write every page (4 KiB, page_word() first) in @order: false on a failure. */
static bool write_pages(struct umm_mm *mm, const uint64_t *order, uint64_t n, unsigned int gen)
{
	static uint64_t buf[PAGE / 8];

	for (uint64_t i = 0; i < n; i++) {
		uint64_t p = order ? order[i] : i;

		buf[0] = page_word(p, gen);
		buf[1] = p;
		ssize_t r = umm_write(mm, BASE + p * PAGE, buf, PAGE);
		if (r != PAGE) {
			fail_msg("umm_write of page %" PRIu64 ": %zd", p, r);
			return false;
		}
	}
	return true;
}

/* Read the first word of every page in @order and check it. */
static bool read_pages(struct umm_mm *mm, const uint64_t *order, uint64_t n, unsigned int gen)
{
	for (uint64_t i = 0; i < n; i++) {
		uint64_t p = order ? order[i] : i, w = 0;
		ssize_t r = umm_read(mm, BASE + p * PAGE, &w, 8);

		if (r != 8 || w != page_word(p, gen)) {
			fail_msg("page %" PRIu64 ": read %zd, word %#" PRIx64 ", want %#" PRIx64, p,
				 r, w, page_word(p, gen));
			return false;
		}
	}
	return true;
}

/* ---- swap throughput ---- */

enum { SW_OUT_SEQ, SW_OUT_PASS, SW_OUT_RAND, SW_IN_SEQ, SW_IN_RAND, SW_RW_RAND, SW_CPU, NR_SW };

/* What one timed pass over every page moved through swap, and in how long. */
struct pass {
	double secs, cpu_ns;		/* wall time; CPU of every thread */
	uint64_t in, out, steal;	/* pswpin, pswpout, pgsteal */
};

static bool timed_pass(struct umm *u, struct umm_mm *mm, const uint64_t *order, uint64_t n,
		       bool write, unsigned int gen, struct pass *p)
{
	struct umm_vmscan_stat v0 = vstat(u), v1;
	double t0 = now_ns(), c0 = process_cpu_ns();
	bool ok = write ? write_pages(mm, order, n, gen) : read_pages(mm, order, n, gen);

	p->secs = (now_ns() - t0) / 1e9;
	p->cpu_ns = process_cpu_ns() - c0;
	v1 = vstat(u);
	p->in = v1.pswpin - v0.pswpin;
	p->out = v1.pswpout - v0.pswpout;
	p->steal = v1.pgsteal - v0.pgsteal;
	return ok;
}

static inline double mib_per_s(uint64_t pages, double secs)
{
	return pages * PAGE / MiB / secs;
}

/* One run of the five passes, on two machines; figures in MiB/s (and ns of CPU per page). */
static bool swap_run(double *fig, uint64_t *rs)
{
	const size_t phys = opt.phys_mb << 20;
	const uint64_t n = 2 * (phys / PAGE);
	struct umm_mm *mm;
	uint64_t *order;
	struct pass p;
	struct umm *u;
	int err;

	cur_ok = true;
	u = machine_create(phys, 1, 4 * phys, &err);
	if (!u)
		return false;
	mm = mm_with_region(u, n);
	order = malloc(n * sizeof(*order));
	if (!mm || !order)
		goto out;

	if (!timed_pass(u, mm, NULL, n, true, 1, &p))
		goto out;
	fig[SW_OUT_SEQ] = mib_per_s(p.out, p.secs);
	fig[SW_OUT_PASS] = mib_per_s(n, p.secs);
	fig[SW_CPU] = p.steal ? p.cpu_ns / p.steal : NAN;
	CHECK(p.out >= n / 2, "sequential write of 2x memory: only %" PRIu64
	      " of %" PRIu64 " pages swapped out", p.out, n);

	if (!timed_pass(u, mm, NULL, n, false, 1, &p))
		goto out;
	fig[SW_IN_SEQ] = mib_per_s(p.in, p.secs);
	CHECK(p.in >= n / 2, "sequential read: only %" PRIu64 " swap-ins", p.in);

	shuffle(order, n, rs);
	if (!timed_pass(u, mm, order, n, false, 1, &p))
		goto out;
	fig[SW_IN_RAND] = mib_per_s(p.in, p.secs);
	CHECK(p.in >= n / 4, "random read: only %" PRIu64 " swap-ins", p.in);

	shuffle(order, n, rs);
	if (!timed_pass(u, mm, order, n, true, 2, &p))
		goto out;
	fig[SW_RW_RAND] = mib_per_s(p.in + p.out, p.secs);
	read_pages(mm, NULL, n, 2);
	machine_teardown(u, mm);
	mm = NULL;

	/* a fresh machine whose working set is first written in a random order */
	u = machine_create(phys, 1, 4 * phys, &err);
	if (!u)
		goto out;
	mm = mm_with_region(u, n);
	if (!mm)
		goto out;
	shuffle(order, n, rs);
	if (!timed_pass(u, mm, order, n, true, 3, &p))
		goto out;
	fig[SW_OUT_RAND] = mib_per_s(p.out, p.secs);
	CHECK(p.out >= n / 2, "random write of 2x memory: only %" PRIu64 " of %" PRIu64
	      " pages swapped out", p.out, n);
	read_pages(mm, NULL, n, 3);
out:
	free(order);
	if (mm)
		machine_teardown(u, mm);
	else if (u)
		umm_destroy(u);
	return cur_ok;
}

static void bench_swap_throughput(void)
{
	static const char *const name[NR_SW] = {
		[SW_OUT_SEQ] = "swap-out, sequential write (pswpout)",
		[SW_OUT_PASS] = "  ... the write pass itself",
		[SW_OUT_RAND] = "swap-out, random write (pswpout)",
		[SW_IN_SEQ] = "swap-in, sequential read (pswpin)",
		[SW_IN_RAND] = "swap-in, random read (pswpin)",
		[SW_RW_RAND] = "swap-out+in, random write (pswpin+pswpout)",
		[SW_CPU] = "CPU per reclaimed page, write pass (all threads)",
	};
	double v[NR_SW][MAX_REPS];
	uint64_t rs = 0x5eed;
	int err, ok = 0;
	struct umm *probe;

	cur_ok = true;
	probe = machine_create(16 << 20, 1, 16 << 20, &err);

	if (!probe) {
		for (int k = 0; k < NR_SW; k++)
			add_na("swap", name[k], k == SW_CPU ? "ns/page" : "MiB/s",
			       "swap not built (-ENOSYS)");
		return;
	}
	umm_destroy(probe);
	bool all_ok = true;

	for (int rep = 0; rep < opt.reps; rep++) {
		double fig[NR_SW];

		for (int k = 0; k < NR_SW; k++)
			fig[k] = NAN;
		all_ok &= swap_run(fig, &rs);
		for (int k = 0; k < NR_SW; k++)
			v[k][ok] = fig[k];
		ok++;
		if (!all_ok)
			break;	/* one failed run is enough to mark the figures */
	}
	cur_ok = all_ok;
	for (int k = 0; k < NR_SW; k++) {
		struct fig *f = add_fig("swap", name[k], k == SW_CPU ? "ns/page" : "MiB/s",
					ok ? median_of(v[k], ok) : NAN, NAN);
		snprintf(f->note, sizeof(f->note), "working set %zu MiB, memory %zu MiB",
			 2 * opt.phys_mb, opt.phys_mb);
	}
}

/* ---- the host's file I/O under the swap file ---- */

/* MiB/s of 4 KiB pwrite (@write) or pread over @n blocks, in @order (NULL: in turn). */
static double host_io(int fd, bool write, const uint64_t *order, uint64_t n)
{
	static char buf[PAGE];
	uint64_t t0 = now_ns();

	for (uint64_t i = 0; i < n; i++) {
		uint64_t b = order ? order[i] : i;
		ssize_t r = write ? pwrite(fd, buf, PAGE, b * PAGE) : pread(fd, buf, PAGE, b * PAGE);

		if (r != PAGE)
			return NAN;
		buf[0]++;
	}
	return n * PAGE / MiB / ((now_ns() - t0) / 1e9);
}

static double host_fig[3];	/* write seq, read seq, read random */

static void bench_host_io(void)
{
	const uint64_t n = 2 * ((opt.phys_mb << 20) / PAGE);
	char path[300];
	uint64_t *order = malloc(n * sizeof(*order)), rs = 0x1234;
	int fd;

	snprintf(path, sizeof(path), "%s/bench_swap-host-%d", opt.dir, (int)getpid());
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || !order) {
		host_fig[0] = host_fig[1] = host_fig[2] = NAN;
		free(order);
		return;
	}
	/* the median of --reps passes, each on a file truncated first, as
	 * umm's runs each start on a fresh swap file */
	double v[3][MAX_REPS];
	for (int rep = 0; rep < opt.reps; rep++) {
		if (ftruncate(fd, 0))
			break;
		v[0][rep] = host_io(fd, true, NULL, n);
		v[1][rep] = host_io(fd, false, NULL, n);
		shuffle(order, n, &rs);
		v[2][rep] = host_io(fd, false, order, n);
	}
	for (int k = 0; k < 3; k++)
		host_fig[k] = median_of(v[k], opt.reps);
	close(fd);
	unlink(path);
	free(order);
}

/* ---- migration ---- */

/* Move @n pages starting at BASE to the other node in batches; pages/s. */
static double move_all(struct umm_mm *mm, uint64_t n, int *cur_node, uint64_t stride)
{
	uint64_t addrs[MOVE_BATCH];
	int nodes[MOVE_BATCH], status[MOVE_BATCH];
	uint64_t t0 = now_ns(), moved = 0;
	int to = 1 - *cur_node;

	for (uint64_t i = 0; i < n; i += MOVE_BATCH) {
		unsigned long c = n - i < MOVE_BATCH ? n - i : MOVE_BATCH;

		for (unsigned long k = 0; k < c; k++) {
			addrs[k] = BASE + (i + k) * stride * PAGE;
			nodes[k] = to;
		}
		int r = umm_move_pages(mm, c, addrs, nodes, status);
		CHECK(r == 0, "umm_move_pages: %d", r);
		for (unsigned long k = 0; k < c; k++)
			moved += status[k] == to;
	}
	double secs = (now_ns() - t0) / 1e9;

	CHECK(moved == n, "moved %" PRIu64 " of %" PRIu64 " pages to node %d", moved, n, to);
	*cur_node = to;
	return moved / secs;
}

/* Where is the page at BASE? (Every page of a run is moved together.) */
static int node_at_base(struct umm_mm *mm)
{
	uint64_t addr = BASE;
	int st = -1;

	umm_move_pages(mm, 1, &addr, NULL, &st);
	return st;
}

/*
 * Anonymous pages to the other node and back, on a PREFAULT arena or (with
 * @lazy) on a default one, whose free frames hand their host memory back:
 * there every move's new frame costs a host shmem fault too.
 */
static void bench_migrate_anon(bool lazy)
{
	const char *name = lazy ? "  ... lazy arena (host fault per new frame)" :
				  "anonymous pages, to the other node";
	const uint64_t n = (opt.move_mb << 20) / PAGE;
	double v[MAX_REPS];
	struct umm_mm *mm;
	struct umm *u;
	int err, node;

	cur_ok = true;
	lazy_arena = lazy;
	u = machine_create(2 * (opt.move_mb << 20) + (16 << 20), 2, 0, &err);
	lazy_arena = false;
	if (!u) {
		add_na("migration", name, "pages/s", "umm_create failed");
		return;
	}
	mm = mm_with_region(u, n);
	if (!mm || !write_pages(mm, NULL, n, 1)) {
		umm_destroy(u);
		add_fig("migration", name, "pages/s", NAN, NAN);
		return;
	}
	uint64_t addr = BASE;
	int st;
	if (umm_move_pages(mm, 1, &addr, NULL, &st) == -ENOSYS) {
		machine_teardown(u, mm);
		add_na("migration", name, "pages/s", "move_pages not built (-ENOSYS)");
		return;
	}
	/* one untimed pass gets every page onto one node */
	node = 1 - node_at_base(mm);
	move_all(mm, n, &node, 1);
	for (int rep = 0; rep < opt.reps; rep++)
		v[rep] = move_all(mm, n, &node, 1);
	read_pages(mm, NULL, n, 1);
	machine_teardown(u, mm);
	struct fig *f = add_fig("migration", name, "pages/s", median_of(v, opt.reps), NAN);
	snprintf(f->note, sizeof(f->note), "%" PRIu64 " pages, batches of %d", n, MOVE_BATCH);
}

/*
 * KSM pages: pairs of identical pages (page 2i and 2i+1 hold the same bytes)
 * merged by KSM, so each frame is mapped twice; the even pages are moved.
 */
static void bench_migrate_ksm(void)
{
	const char *name = "KSM pages (2 mappings each), to the other node";
	const uint64_t pairs = (opt.move_mb << 20) / PAGE / 4;
	struct umm_ksm_stats ks;
	double v[MAX_REPS];
	struct umm_mm *mm;
	struct umm *u;
	int err, node;

	cur_ok = true;
	u = machine_create(2 * (opt.move_mb << 20) + (16 << 20), 2, 0, &err);
	if (!u) {
		add_na("migration", name, "pages/s", "umm_create failed");
		return;
	}
	if (umm_ksm_scan(u, 1) == -ENOSYS) {
		umm_destroy(u);
		add_na("migration", name, "pages/s", "KSM not built (-ENOSYS)");
		return;
	}
	mm = mm_with_region(u, 2 * pairs);
	if (!mm) {
		umm_destroy(u);
		return;
	}
	umm_madvise(mm, BASE, 2 * pairs * PAGE, UMM_MADV_MERGEABLE);
	static uint64_t buf[PAGE / 8];
	for (uint64_t p = 0; p < 2 * pairs; p++) {
		buf[0] = page_word(p / 2, 1);
		CHECK(umm_write(mm, BASE + p * PAGE, buf, PAGE) == PAGE, "write %" PRIu64, p);
	}
	for (int i = 0; i < 64; i++) {
		umm_ksm_scan(u, 4 * pairs);
		umm_ksm_get_stats(u, &ks);
		if (ks.pages_sharing >= pairs)
			break;
	}
	CHECK(ks.pages_sharing >= pairs, "KSM merged %lu of %" PRIu64 " pairs", ks.pages_sharing,
	      pairs);
	node = 1 - node_at_base(mm);
	move_all(mm, pairs, &node, 2);
	for (int rep = 0; rep < opt.reps; rep++)
		v[rep] = move_all(mm, pairs, &node, 2);
	for (uint64_t p = 0; p < 2 * pairs; p++) {
		uint64_t w = 0;

		umm_read(mm, BASE + p * PAGE, &w, 8);
		CHECK(w == page_word(p / 2, 1), "KSM page %" PRIu64 " lost its bytes", p);
		if (w != page_word(p / 2, 1))
			break;
	}
	machine_teardown(u, mm);
	struct fig *f = add_fig("migration", name, "pages/s", median_of(v, opt.reps), NAN);
	snprintf(f->note, sizeof(f->note), "%" PRIu64 " KSM frames", pairs);
}

/* ---- reclaim's CPU per page (direct reclaim) ---- */

static void bench_reclaim_cpu(void)
{
	const char *name = "CPU per reclaimed page, umm_reclaim (direct)";
	const size_t phys = opt.phys_mb << 20;
	const uint64_t n = phys / PAGE * 9 / 10;
	struct umm_vmscan_stat v0, v1;
	double v[MAX_REPS];
	unsigned long got;
	struct umm_mm *mm;
	struct umm *u;
	int err, ok = 0;

	cur_ok = true;
	for (int rep = 0; rep < opt.reps; rep++) {
		cur_ok = true;
		u = machine_create(phys, 1, 2 * phys, &err);
		if (!u) {
			add_na("reclaim", name, "ns/page",
			       err == -ENOSYS ? "swap not built (-ENOSYS)" : "umm_create failed");
			return;
		}
		mm = mm_with_region(u, n);
		if (!mm || !write_pages(mm, NULL, n, 1)) {
			umm_destroy(u);
			break;
		}
		v0 = vstat(u);
		double c0 = thread_cpu_ns();
		for (uint64_t done = 0; done < n / 2;) {
			int r = umm_reclaim(u, 1024, &got);

			CHECK(r == 0, "umm_reclaim: %d", r);
			if (r || !got)
				break;
			done += got;
		}
		double cpu = thread_cpu_ns() - c0;
		v1 = vstat(u);
		CHECK(v1.pgsteal - v0.pgsteal >= n / 4, "umm_reclaim reclaimed only %" PRIu64
		      " pages", v1.pgsteal - v0.pgsteal);
		if (v1.pgsteal > v0.pgsteal)
			v[ok++] = cpu / (v1.pgsteal - v0.pgsteal);
		read_pages(mm, NULL, n, 1);
		machine_teardown(u, mm);
	}
	struct fig *f = add_fig("reclaim", name, "ns/page", ok ? median_of(v, ok) : NAN, NAN);
	snprintf(f->note, sizeof(f->note), "thread CPU / pgsteal, swap write included");
}

/* ---- output ---- */

static void probe_host_swap(void)
{
	FILE *f = fopen("/proc/swaps", "r");
	char line[256];
	int n = 0;

	while (f && fgets(line, sizeof(line), f))
		n++;
	if (f)
		fclose(f);
	snprintf(host_swap, sizeof(host_swap), "%s",
		 !f ? "unknown (/proc/swaps unreadable)" :
		 n <= 1 ? "none (/proc/swaps lists no swap device)" : "present");
}

/* A figure in a 12-wide column: 3 significant digits, never an exponent. */
static void print_value(double v, const char *none)
{
	if (isnan(v))
		printf("%12s ", none);
	else if (v >= 100)
		printf("%12.0f ", v);
	else
		printf("%12.3g ", v);
}

static void print_tables(double secs)
{
	const char *group = "";

	printf("bench_swap: %s, %ld cores, %s\n", mach.cpu, mach.cores, mach.kernel);
	printf("host swap: %s: no host swap column; the host column is the floor under umm's\n"
	       "swap I/O, 4 KiB pwrite/pread to a file in %s\n\n", host_swap, opt.dir);
	printf("%-52s %12s %12s  %-8s %s\n", "figure", "umm", "host file", "unit", "");
	for (int i = 0; i < nr_figs; i++) {
		const struct fig *f = &figs[i];

		if (strcmp(group, f->group)) {
			group = f->group;
			printf("-- %s\n", group);
		}
		printf("%-52s ", f->name);
		print_value(f->na ? NAN : f->umm, f->na ? "n/a" : "nan");
		print_value(f->host, "-");
		printf(" %-8s %s%s\n", f->unit, f->valid ? "" : "FAILED ", f->note);
	}
	print_total(secs, "figures");
}

static void print_json(double secs)
{
	json_machine();
	printf(", \"host_swap\": ");
	json_str(host_swap);
	printf("},\n  \"figures\": [\n");
	for (int i = 0; i < nr_figs; i++) {
		const struct fig *f = &figs[i];

		printf("    {\"group\": ");
		json_str(f->group);
		printf(", \"name\": ");
		json_str(f->name);
		printf(", \"unit\": ");
		json_str(f->unit);
		printf(", \"umm\": ");
		json_num(f->na ? NAN : f->umm);
		printf(", \"host_file\": ");
		json_num(f->host);
		printf(", \"valid\": %s}%s\n", f->valid ? "true" : "false",
		       i + 1 < nr_figs ? "," : "");
	}
	printf("  ],\n  \"seconds\": %.1f\n}\n", secs);
}

static void usage(FILE *out)
{
	fprintf(out, "usage: bench_swap [--quick] [--json] [--reps N] [--phys-mb P] "
		     "[--move-mb M] [--dir D]\n");
}

int main(int argc, char **argv)
{
	uint64_t t0 = now_ns();

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--reps"))
			opt.reps = parse_num(opt_arg(argc, argv, &i), "--reps", 1, MAX_REPS);
		else if (!strcmp(argv[i], "--phys-mb"))
			opt.phys_mb = parse_num(opt_arg(argc, argv, &i), "--phys-mb", 1, 4096);
		else if (!strcmp(argv[i], "--move-mb"))
			opt.move_mb = parse_num(opt_arg(argc, argv, &i), "--move-mb", 1, 4096);
		else if (!strcmp(argv[i], "--dir"))
			opt.dir = opt_arg(argc, argv, &i) ?: "/tmp";
		else
			common_opt(argv[i], &opt.quick, &opt.json, usage);
	}
	if (opt.quick) {
		opt.phys_mb = 8;
		opt.move_mb = 4;
		opt.reps = 1;
	}
	snprintf(swap_path, sizeof(swap_path), "%s/bench_swap-%d.swap", opt.dir, (int)getpid());
	probe_machine();
	probe_host_swap();

	bench_host_io();
	bench_swap_throughput();
	/* the host-file column sits beside the swap figures it is the floor of */
	for (int i = 0; i < nr_figs; i++) {
		if (strstr(figs[i].name, "swap-out, sequential"))
			figs[i].host = host_fig[0];
		else if (strstr(figs[i].name, "swap-in, sequential"))
			figs[i].host = host_fig[1];
		else if (strstr(figs[i].name, "swap-in, random"))
			figs[i].host = host_fig[2];
	}
	bench_migrate_anon(false);
	bench_migrate_anon(true);
	bench_migrate_ksm();
	bench_reclaim_cpu();
	unlink(swap_path);
	return bench_finish(t0, opt.json, print_json, print_tables);
}
