/* SPDX-License-Identifier: MIT */
/*
 * bench_machine.c - umm beside the host kernel, doing the same work.
 *
 * Each figure puts one operation of umm next to the host kernel's own
 * implementation of it, measured in the same run on the same machine:
 *
 *   1. first-touch write fault      host: write a byte per page of fresh anon
 *                                   memory; umm: umm_write a byte per page of
 *                                   a fresh umm_mmap (three arena states)
 *   2. read fault on the zero page  host: read a byte per page; umm: umm_read
 *   3. COW fault after fork         host: fork, the child writes a byte per
 *                                   page; umm: umm_mm_fork, umm_write in child
 *   4. fork of a populated space    host: fork(); umm: umm_mm_fork
 *   5. munmap of a populated range  host: munmap; umm: umm_munmap
 *   6. 8-byte accesses to present   host: process_vm_readv/writev on itself
 *      pages, 1 and 2 threads       (and memcpy for reference); umm:
 *                                   umm_read/umm_write
 *
 * Every figure is the median of --reps repetitions after one untimed
 * warm-up repetition that both sides get alike.  Nothing here asserts on
 * time: the targets are printed beside the figures.  What is asserted is
 * that umm did the work: every umm figure is followed by checks of the
 * bytes and counters it should have produced (a broken engine must not post
 * a fast number); a failed check marks the figure FAILED and makes the
 * program exit 1.
 *
 * Usage: bench_machine [--size-mb N] [--fork-mb N] [--access-mb N]
 *                      [--reps N] [--quick] [--json]
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <umm/umm.h>

#define BENCH_NAME "bench_machine"
#include "bench_common.h"

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

#define PAGE_SHIFT UMM_PAGE_SHIFT
#define PAGE_SIZE UMM_PAGE_SIZE
#define MiB ((size_t)1 << 20)

/* Keeps the compiler from dropping or merging the host loops' accesses. */
#define barrier() __asm__ __volatile__("" ::: "memory")

#define NR_SAMPLES 64   /* pages whose bytes are read back after each umm run */
#define MAX_REPS 15

static struct {
	size_t fault_bytes;   /* faults and COW */
	size_t big_bytes;     /* fork and munmap */
	size_t access_bytes;  /* per thread, for the access figures */
	double access_secs;   /* per access run */
	int reps;
	bool quick, json;
} opt = {
	.fault_bytes = 256 * MiB,
	.big_bytes = 1024 * MiB,
	.access_bytes = 32 * MiB,
	.access_secs = 0.15,
	.reps = 5,
};

/* ---- results ---- */

enum unit { NS_PAGE, NS_OP, FACTOR };

struct row {
	const char *group, *name;
	enum unit unit;
	double host, umm;       /* NAN: not measured */
	double ref;             /* memcpy reference (access rows), else NAN */
	double ref2;            /* CPU-only reference (scaling rows), else NAN */
	double target;          /* ratio host/umm (or umm factor) >= target; 0: none */
	bool valid;             /* umm's checks passed */
	char note[96];
};

static struct row rows[64];
static int nr_rows;

#define CHECK(cond, ...) do { if (!(cond)) fail_msg(__VA_ARGS__); } while (0)

static struct row *add_row(const char *group, const char *name, enum unit unit,
			   double host, double umm, double target)
{
	struct row *r = &rows[nr_rows++];

	*r = (struct row){ .group = group, .name = name, .unit = unit, .host = host,
			   .umm = umm, .ref = __builtin_nan(""), .ref2 = __builtin_nan(""), .target = target,
			   .valid = cur_ok };
	if (!cur_ok)
		nr_failed++;
	return r;
}


static double median(const double *v, int n)
{
	double s[MAX_REPS];

	if (n <= 0)
		return __builtin_nan("");
	memcpy(s, v, n * sizeof(*v));
	qsort(s, n, sizeof(*s), cmp_double);
	return median_sorted(s, n);
}


/* Value of the byte the fault loops write to page @i (never 0). */
static inline uint8_t page_byte(size_t i, unsigned int gen)
{
	return (uint8_t)((i * 131 + gen * 29 + 7) | 1);
}

/* Pages read back after a run: first, last and a spread in between. */
static size_t sample_page(size_t j, size_t npages)
{
	if (j == 0)
		return 0;
	if (j == NR_SAMPLES - 1)
		return npages - 1;
	return (j * 2654435761ULL) % npages;
}


static struct umm *machine_create(size_t phys, bool prefault)
{
	struct umm_config cfg;
	struct umm *u;
	int r;

	umm_config_init(&cfg);
	cfg.phys_bytes = phys;
	if (prefault)
		cfg.flags |= UMM_CONFIG_PREFAULT;
	r = umm_create(&cfg, &u);
	if (r < 0) {
		fail_msg("umm_create(%zu MiB%s): %s", phys / MiB,
			 prefault ? ", PREFAULT" : "", strerror(-r));
		return NULL;
	}
	umm_set_log(u, umm_log_cb, NULL);
	return u;
}

/* Check the machine's counting invariants (untimed, on a quiescent machine). */
static void machine_validate(struct umm *u, const char *when)
{
	char msg[256] = "";
	int r = umm_validate(u, UMM_VALIDATE_EXACT, msg, sizeof(msg));

	CHECK(r == 0, "umm_validate after %s: %d: %s", when, r, msg);
}

/* Exit @mm (if any), check nothing leaked and destroy @u. */
static void machine_teardown(struct umm *u, struct umm_mm *mm)
{
	long leaked;

	if (!u)
		return;
	if (mm)
		umm_mm_exit(mm);
	leaked = umm_leak_check(u, NULL, NULL);
	CHECK(leaked == 0, "umm_leak_check: %ld frames leaked", leaked);
	umm_destroy(u);
}

static uint64_t umm_map_anon(struct umm_mm *mm, size_t len, bool populate)
{
	uint64_t addr = 0;
	int flags = UMM_MAP_PRIVATE | UMM_MAP_ANONYMOUS | (populate ? UMM_MAP_POPULATE : 0);
	int r = umm_mmap(mm, 0, len, UMM_PROT_READ | UMM_PROT_WRITE, flags, NULL, 0, &addr);

	if (r < 0) {
		fail_msg("umm_mmap(%zu MiB%s): %s", len / MiB, populate ? ", POPULATE" : "",
			 strerror(-r));
		return 0;
	}
	return addr;
}

/* Fresh anonymous host memory in 4 KiB pages, like umm's frames. */
static char *host_map(size_t len)
{
	char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED) {
		perror("bench_machine: mmap");
		exit(1);
	}
	madvise(p, len, MADV_NOHUGEPAGE);
	return p;
}

static void host_populate(char *p, size_t len)
{
	if (madvise(p, len, MADV_POPULATE_WRITE) == 0)
		return;
	for (size_t off = 0; off < len; off += PAGE_SIZE)
		((volatile char *)p)[off] = 1;
}

/* ---- the timed loops: one byte per page ---- */

static uint64_t host_write_pages(char *p, size_t npages, unsigned int gen)
{
	volatile char *v = p;
	uint64_t t0 = now_ns();

	for (size_t i = 0; i < npages; i++)
		v[i << PAGE_SHIFT] = page_byte(i, gen);
	return now_ns() - t0;
}

static uint64_t host_read_pages(const char *p, size_t npages, unsigned long *sum)
{
	const volatile char *v = p;
	unsigned long s = 0;
	uint64_t t0 = now_ns(), t;

	for (size_t i = 0; i < npages; i++)
		s += (unsigned char)v[i << PAGE_SHIFT];
	t = now_ns() - t0;
	*sum = s;
	return t;
}

/* Return: elapsed ns; the first failed access is reported and ends the loop. */
static uint64_t umm_write_pages(struct umm_mm *mm, uint64_t base, size_t npages,
				unsigned int gen)
{
	uint64_t t0 = now_ns(), t;
	size_t i;
	ssize_t r = 1;

	for (i = 0; i < npages; i++) {
		uint8_t b = page_byte(i, gen);

		r = umm_write(mm, base + (i << PAGE_SHIFT), &b, 1);
		if (r != 1)
			break;
	}
	t = now_ns() - t0;
	CHECK(i == npages, "umm_write page %zu of %zu: %zd", i, npages, r);
	return t;
}

static uint64_t umm_read_pages(struct umm_mm *mm, uint64_t base, size_t npages,
			       unsigned long *sum)
{
	unsigned long s = 0;
	uint64_t t0 = now_ns(), t;
	size_t i;
	ssize_t r = 1;

	for (i = 0; i < npages; i++) {
		uint8_t b;

		r = umm_read(mm, base + (i << PAGE_SHIFT), &b, 1);
		if (r != 1)
			break;
		s += b;
	}
	t = now_ns() - t0;
	*sum = s;
	CHECK(i == npages, "umm_read page %zu of %zu: %zd", i, npages, r);
	return t;
}

/*
 * Page content used where a page must be full of known data (COW, fork):
 * the first 8 bytes are the page index, the rest a fixed pattern.
 */
static uint8_t pattern[PAGE_SIZE];

static void init_pattern(void)
{
	uint64_t s = 0x9E3779B97F4A7C15ULL;

	for (int k = 0; k < PAGE_SIZE; k++)
		pattern[k] = (uint8_t)xorshift64(&s);
}

static void fill_page_buf(uint8_t *buf, uint64_t idx)
{
	memcpy(buf, pattern, PAGE_SIZE);
	memcpy(buf, &idx, sizeof(idx));
}

/* Bytes [from, PAGE_SIZE) of page @idx as fill_page_buf() made them?  */
static bool page_matches(const uint8_t *pg, uint64_t idx, int from)
{
	uint8_t want[PAGE_SIZE];

	fill_page_buf(want, idx);
	return memcmp(pg + from, want + from, PAGE_SIZE - from) == 0;
}

static bool umm_fill_pages(struct umm_mm *mm, uint64_t base, size_t npages)
{
	uint8_t buf[PAGE_SIZE];

	for (size_t i = 0; i < npages; i++) {
		ssize_t r;

		fill_page_buf(buf, i);
		r = umm_write(mm, base + (i << PAGE_SHIFT), buf, PAGE_SIZE);
		if (r != PAGE_SIZE) {
			fail_msg("filling page %zu: umm_write: %zd", i, r);
			return false;
		}
	}
	return true;
}

static void host_fill_pages(char *p, size_t npages)
{
	for (size_t i = 0; i < npages; i++)
		fill_page_buf((uint8_t *)p + (i << PAGE_SHIFT), i);
}

/*
 * After a fault run: byte 0 of each sampled page holds page_byte(i, gen) and
 * the rest of the page is zero (a recycled frame must have been cleared).
 */
static void umm_check_fault_pages(struct umm_mm *mm, uint64_t base, size_t npages,
				  unsigned int gen, const char *what)
{
	static const uint8_t zero[PAGE_SIZE];
	uint8_t pg[PAGE_SIZE];

	for (size_t j = 0; j < NR_SAMPLES && cur_ok; j++) {
		size_t i = sample_page(j, npages);
		ssize_t r = umm_read(mm, base + (i << PAGE_SHIFT), pg, PAGE_SIZE);

		CHECK(r == PAGE_SIZE, "%s: read back page %zu: %zd", what, i, r);
		if (r != PAGE_SIZE)
			return;
		CHECK(pg[0] == page_byte(i, gen), "%s: page %zu byte 0 is %#x, wrote %#x",
		      what, i, pg[0], page_byte(i, gen));
		CHECK(memcmp(pg + 1, zero, PAGE_SIZE - 1) == 0,
		      "%s: page %zu not zero beyond the written byte (frame not cleared)",
		      what, i);
	}
}

/* ===================================================================== */
/* 1. first-touch write fault                                             */

static const char G_WFAULT[] = "write fault, first touch";

/*
 * Write @npages pages at @base (generation @gen), then check: one anonymous
 * fault each, the pages' contents, the machine (validate, no leak; it is
 * torn down).  @what names the case in messages.  Return: elapsed ns.
 */
static uint64_t timed_write_faults(struct umm *u, struct umm_mm *mm, uint64_t base,
				   size_t npages, unsigned int gen, const char *what)
{
	struct umm_stat s0, s1;
	char when[64];
	uint64_t t;

	umm_get_stat(u, &s0);
	t = umm_write_pages(mm, base, npages, gen);
	umm_get_stat(u, &s1);
	CHECK(s1.pgfault_anon - s0.pgfault_anon == npages,
	      "%s: %" PRIu64 " anonymous faults for %zu pages",
	      what, s1.pgfault_anon - s0.pgfault_anon, npages);
	umm_check_fault_pages(mm, base, npages, gen, what);
	snprintf(when, sizeof(when), "%s write faults", what);
	machine_validate(u, when);
	machine_teardown(u, mm);
	return t;
}

static void bench_write_fault(void)
{
	size_t len = opt.fault_bytes, npages = len >> PAGE_SHIFT;
	size_t phys = len + len / 4 + 16 * MiB;
	double host[MAX_REPS] = { 0 }, fresh[MAX_REPS] = { 0 }, recycled[MAX_REPS] = { 0 };
	double lazy[MAX_REPS] = { 0 };
	bool ok_fresh = true, ok_recycled = true, ok_lazy = true;
	uint8_t dirt[PAGE_SIZE];

	memset(dirt, 0xa5, sizeof(dirt));

	/* host: fresh anonymous memory each repetition */
	for (int rep = -1; rep < opt.reps; rep++) {
		char *p = host_map(len);
		uint64_t t = host_write_pages(p, npages, 0);

		munmap(p, len);
		if (rep >= 0)
			host[rep] = (double)t / npages;
	}

	/*
	 * umm (a) and (b): a PREFAULT machine, fresh each repetition.  (a) takes
	 * frames that were never handed out; then every page is dirtied, the
	 * region unmapped and mapped again, and (b) takes those frames back,
	 * which now must be cleared on the fault path.
	 */
	for (int rep = -1; rep < opt.reps; rep++) {
		struct umm *u;
		struct umm_mm *mm = NULL;
		struct umm_stat s0, s1;
		struct umm_mm_stat ms;
		uint64_t base, t;

		cur_ok = true;
		u = machine_create(phys, true);
		if (!u || umm_mm_create(u, &mm) < 0 || !(base = umm_map_anon(mm, len, false))) {
			fail_msg("write fault: machine setup failed");
			ok_fresh = ok_recycled = false;
			machine_teardown(u, mm);
			break;
		}
		umm_get_stat(u, &s0);
		t = umm_write_pages(mm, base, npages, 1);
		umm_get_stat(u, &s1);
		umm_mm_get_stat(mm, &ms);
		CHECK(s1.pgfault_anon - s0.pgfault_anon == npages,
		      "fresh: %" PRIu64 " anonymous faults for %zu pages",
		      s1.pgfault_anon - s0.pgfault_anon, npages);
		CHECK(ms.rss_anon == npages, "fresh: rss_anon %" PRIu64 ", want %zu",
		      ms.rss_anon, npages);
		umm_check_fault_pages(mm, base, npages, 1, "fresh");
		if (rep >= 0)
			fresh[rep] = (double)t / npages;
		ok_fresh &= cur_ok;

		/* dirty every frame, give them back, map again */
		cur_ok = true;
		for (size_t i = 0; i < npages && cur_ok; i++) {
			ssize_t r = umm_write(mm, base + (i << PAGE_SHIFT), dirt, PAGE_SIZE);

			CHECK(r == PAGE_SIZE, "dirtying page %zu: %zd", i, r);
		}
		CHECK(umm_munmap(mm, base, len) == 0, "umm_munmap failed");
		base = umm_map_anon(mm, len, false);
		if (!base) {
			ok_recycled = false;
			machine_teardown(u, mm);
			break;
		}
		t = timed_write_faults(u, mm, base, npages, 2, "recycled");
		if (rep >= 0)
			recycled[rep] = (double)t / npages;
		ok_recycled &= cur_ok;
	}

	/* umm (c): a default (lazy) machine whose arena the host has not populated */
	for (int rep = -1; rep < opt.reps; rep++) {
		struct umm *u;
		struct umm_mm *mm = NULL;
		uint64_t base, t;

		cur_ok = true;
		u = machine_create(phys, false);
		if (!u || umm_mm_create(u, &mm) < 0 || !(base = umm_map_anon(mm, len, false))) {
			fail_msg("write fault (lazy): machine setup failed");
			ok_lazy = false;
			machine_teardown(u, mm);
			break;
		}
		t = timed_write_faults(u, mm, base, npages, 3, "lazy");
		if (rep >= 0)
			lazy[rep] = (double)t / npages;
		ok_lazy &= cur_ok;
	}

	double h = median(host, opt.reps);

	cur_ok = ok_fresh;
	add_row(G_WFAULT, "PREFAULT arena, fresh frames", NS_PAGE, h,
		median(fresh, opt.reps), 5);
	cur_ok = ok_recycled;
	add_row(G_WFAULT, "PREFAULT arena, recycled frames", NS_PAGE, h,
		median(recycled, opt.reps), 5);
	cur_ok = ok_lazy;
	add_row(G_WFAULT, "lazy arena, host memory untouched", NS_PAGE, h,
		median(lazy, opt.reps), 5);
}

/* ===================================================================== */
/* 2. read fault on the zero page                                          */

static const char G_RFAULT[] = "read fault, zero page";

static void bench_read_fault(void)
{
	size_t len = opt.fault_bytes, npages = len >> PAGE_SHIFT;
	double host[MAX_REPS] = { 0 }, umm[MAX_REPS] = { 0 };
	struct umm *u;
	struct umm_mm *mm = NULL;
	bool ok = true;

	for (int rep = -1; rep < opt.reps; rep++) {
		char *p = host_map(len);
		unsigned long sum;
		uint64_t t = host_read_pages(p, npages, &sum);

		munmap(p, len);
		if (sum) {
			fprintf(stderr, "bench_machine: host read fault: non-zero bytes\n");
			exit(1);
		}
		if (rep >= 0)
			host[rep] = (double)t / npages;
	}

	/* Page tables only: a small PREFAULT machine (no frame is allocated). */
	cur_ok = true;
	u = machine_create(64 * MiB, true);
	if (!u || umm_mm_create(u, &mm) < 0) {
		fail_msg("read fault: machine setup failed");
		machine_teardown(u, mm);
		add_row(G_RFAULT, "private anon, never written", NS_PAGE, median(host, opt.reps),
			__builtin_nan(""), 5);
		return;
	}
	for (int rep = -1; rep < opt.reps && ok; rep++) {
		struct umm_stat s0, s1;
		struct umm_pageinfo pi;
		unsigned long sum;
		uint64_t base, t;

		cur_ok = true;
		base = umm_map_anon(mm, len, false);
		if (!base) {
			ok = false;
			break;
		}
		umm_get_stat(u, &s0);
		t = umm_read_pages(mm, base, npages, &sum);
		umm_get_stat(u, &s1);
		CHECK(sum == 0, "zero page: read non-zero bytes (sum %lu)", sum);
		CHECK(s1.pgfault_zero - s0.pgfault_zero == npages,
		      "%" PRIu64 " zero-page faults for %zu pages",
		      s1.pgfault_zero - s0.pgfault_zero, npages);
		CHECK(s1.pgalloc - s0.pgalloc < npages / 64 + 16,
		      "zero-page reads allocated %" PRIu64 " frames",
		      s1.pgalloc - s0.pgalloc);
		for (size_t j = 0; j < NR_SAMPLES && cur_ok; j++) {
			size_t i = sample_page(j, npages);
			int r = umm_pagemap(mm, base + (i << PAGE_SHIFT), &pi);

			CHECK(r == 0 && (pi.flags & UMM_PI_PRESENT) && (pi.flags & UMM_PI_ZERO) &&
			      !(pi.flags & UMM_PI_WRITE),
			      "pagemap of page %zu after a read: r %d flags %#x pfn %" PRIu64,
			      i, r, pi.flags, pi.pfn);
		}
		if (rep == opt.reps - 1)
			machine_validate(u, "zero-page read faults");
		CHECK(umm_munmap(mm, base, len) == 0, "umm_munmap failed");
		if (rep >= 0)
			umm[rep] = (double)t / npages;
		ok &= cur_ok;
	}
	machine_teardown(u, mm);
	cur_ok = ok && cur_ok;
	add_row(G_RFAULT, "private anon, never written", NS_PAGE, median(host, opt.reps),
		median(umm, opt.reps), 5);
}

/* ===================================================================== */
/* 3. COW fault after fork                                                 */

static const char G_COW[] = "COW write fault after fork";

struct cow_report {
	uint64_t ns;
	int ok;
};

/* Bytes 1.. of the sampled pages are the parent's; byte 0 what @gen wrote. */
static bool host_cow_child_check(const char *p, size_t npages, int gen)
{
	for (size_t j = 0; j < NR_SAMPLES; j++) {
		size_t i = sample_page(j, npages);
		const uint8_t *pg = (const uint8_t *)p + (i << PAGE_SHIFT);

		if (gen >= 0 && pg[0] != page_byte(i, gen))
			return false;
		if (!page_matches(pg, i, gen >= 0 ? 1 : 0))
			return false;
	}
	return true;
}

static double host_cow_once(char *p, size_t npages, unsigned int gen)
{
	struct cow_report rep = { 0, 0 };
	int fds[2];
	pid_t pid;

	if (pipe(fds) < 0) {
		perror("bench_machine: pipe");
		exit(1);
	}
	pid = fork();
	if (pid < 0) {
		perror("bench_machine: fork");
		exit(1);
	}
	if (pid == 0) {
		close(fds[0]);
		rep.ok = host_cow_child_check(p, npages, -1);
		rep.ns = host_write_pages(p, npages, gen);
		rep.ok &= host_cow_child_check(p, npages, gen);
		if (write(fds[1], &rep, sizeof(rep)) != sizeof(rep))
			_exit(1);
		_exit(0);
	}
	close(fds[1]);
	if (read(fds[0], &rep, sizeof(rep)) != sizeof(rep))
		rep.ok = 0;
	close(fds[0]);
	waitpid(pid, NULL, 0);
	if (!rep.ok || !host_cow_child_check(p, npages, -1)) {
		fprintf(stderr, "bench_machine: host COW check failed\n");
		exit(1);
	}
	return (double)rep.ns / npages;
}

static void bench_cow_fault(void)
{
	size_t len = opt.fault_bytes, npages = len >> PAGE_SHIFT;
	double host[MAX_REPS] = { 0 }, umm[MAX_REPS] = { 0 };
	struct umm *u;
	struct umm_mm *mm = NULL;
	uint64_t base = 0;
	bool ok = true;
	char *p;

	p = host_map(len);
	host_fill_pages(p, npages);
	for (int rep = -1; rep < opt.reps; rep++) {
		double t = host_cow_once(p, npages, 4 + rep);

		if (rep >= 0)
			host[rep] = t;
	}
	munmap(p, len);

	cur_ok = true;
	u = machine_create(2 * len + len / 4 + 16 * MiB, true);
	if (!u || umm_mm_create(u, &mm) < 0 || !(base = umm_map_anon(mm, len, false)) ||
	    !umm_fill_pages(mm, base, npages)) {
		fail_msg("COW: machine setup failed");
		ok = false;
	}
	for (int rep = -1; rep < opt.reps && ok; rep++) {
		unsigned int gen = 4 + rep;
		struct umm_mm *child = NULL;
		struct umm_stat s0, s1;
		uint8_t pg[PAGE_SIZE];
		uint64_t t;
		int r;

		cur_ok = true;
		r = umm_mm_fork(mm, &child);
		if (r < 0) {
			fail_msg("umm_mm_fork: %s", strerror(-r));
			ok = false;
			break;
		}
		/* the child sees the parent's data before writing */
		for (size_t j = 0; j < NR_SAMPLES && cur_ok; j++) {
			size_t i = sample_page(j, npages);

			CHECK(umm_read(child, base + (i << PAGE_SHIFT), pg, PAGE_SIZE) == PAGE_SIZE &&
			      page_matches(pg, i, 0),
			      "COW: child does not see the parent's page %zu after fork", i);
		}
		umm_get_stat(u, &s0);
		t = umm_write_pages(child, base, npages, gen);
		umm_get_stat(u, &s1);
		CHECK(s1.pgfault_cow - s0.pgfault_cow == npages,
		      "COW: %" PRIu64 " COW copies for %zu pages",
		      s1.pgfault_cow - s0.pgfault_cow, npages);
		/* the child has its byte on a copy of the parent's page; the parent
		 * still has its own page */
		for (size_t j = 0; j < NR_SAMPLES && cur_ok; j++) {
			size_t i = sample_page(j, npages);

			CHECK(umm_read(child, base + (i << PAGE_SHIFT), pg, PAGE_SIZE) == PAGE_SIZE &&
			      pg[0] == page_byte(i, gen) && page_matches(pg, i, 1),
			      "COW: child's page %zu after the write is not byte + parent's copy", i);
			CHECK(umm_read(mm, base + (i << PAGE_SHIFT), pg, PAGE_SIZE) == PAGE_SIZE &&
			      page_matches(pg, i, 0),
			      "COW: the child's write to page %zu reached the parent", i);
		}
		if (rep == opt.reps - 1)
			machine_validate(u, "COW faults");
		umm_mm_exit(child);
		if (rep >= 0)
			umm[rep] = (double)t / npages;
		ok &= cur_ok;
	}
	machine_teardown(u, mm);
	cur_ok = ok && cur_ok;
	add_row(G_COW, "private anon, child writes", NS_PAGE, median(host, opt.reps),
		median(umm, opt.reps), 5);
}

/* ===================================================================== */
/* 4. fork of a populated address space, 5. munmap of a populated range    */

static const char G_FORK[] = "fork of a populated address space";
static const char G_MUNMAP[] = "munmap of a populated range";

static void bench_fork_munmap(void)
{
	size_t len = opt.big_bytes, npages = len >> PAGE_SHIFT;
	double hfork[MAX_REPS] = { 0 }, ufork[MAX_REPS] = { 0 }, hunmap[MAX_REPS] = { 0 };
	double uunmap[MAX_REPS] = { 0 }, usettle[MAX_REPS] = { 0 };
	struct umm *u;
	struct umm_mm *mm = NULL;
	uint64_t base = 0, free_empty = 0;
	/* page-table pages an unmapped range may keep (if they come from the arena) */
	uint64_t slack = npages / 512 + 8;
	bool ok_fork = true, ok_unmap = true;
	char *p;

	/* host fork: the parent's time in fork(); the child exits at once */
	p = host_map(len);
	host_populate(p, len);
	for (size_t i = 0; i < npages; i++)
		memcpy(p + (i << PAGE_SHIFT), &(uint64_t){ i }, sizeof(uint64_t));
	for (int rep = -1; rep < opt.reps; rep++) {
		uint64_t t0 = now_ns(), t;
		pid_t pid = fork();

		if (pid == 0)
			_exit(0);
		t = now_ns() - t0;
		if (pid < 0) {
			perror("bench_machine: fork");
			exit(1);
		}
		waitpid(pid, NULL, 0);
		if (rep >= 0)
			hfork[rep] = (double)t / npages;
	}
	munmap(p, len);   /* warm-up of the munmap figure */

	/* host munmap */
	for (int rep = 0; rep < opt.reps; rep++) {
		uint64_t t0, t;

		p = host_map(len);
		host_populate(p, len);
		t0 = now_ns();
		munmap(p, len);
		t = now_ns() - t0;
		hunmap[rep] = (double)t / npages;
	}

	cur_ok = true;
	u = machine_create(len + len / 4 + 16 * MiB, true);
	if (!u || umm_mm_create(u, &mm) < 0) {
		fail_msg("fork: machine setup failed");
		ok_fork = ok_unmap = false;
	} else {
		struct umm_stat st;

		umm_get_stat(u, &st);
		free_empty = st.nr_free;
		if (!(base = umm_map_anon(mm, len, true)))
			ok_fork = ok_unmap = false;
	}
	for (size_t i = 0; i < npages && ok_fork; i++) {
		uint64_t tag = i;

		if (umm_write(mm, base + (i << PAGE_SHIFT), &tag, sizeof(tag)) != sizeof(tag)) {
			fail_msg("fork: tagging page %zu failed", i);
			ok_fork = ok_unmap = false;
		}
	}
	for (int rep = -1; rep < opt.reps && ok_fork; rep++) {
		struct umm_mm *child = NULL;
		struct umm_mm_stat ms;
		uint64_t t0, t;
		int r;

		cur_ok = true;
		t0 = now_ns();
		r = umm_mm_fork(mm, &child);
		t = now_ns() - t0;
		if (r < 0) {
			fail_msg("umm_mm_fork: %s", strerror(-r));
			ok_fork = false;
			break;
		}
		umm_mm_get_stat(child, &ms);
		CHECK(ms.rss_anon == npages, "fork: child rss_anon %" PRIu64 ", want %zu",
		      ms.rss_anon, npages);
		for (size_t j = 0; j < NR_SAMPLES && cur_ok; j++) {
			size_t i = sample_page(j, npages);
			uint64_t tag = ~0ULL;
			struct umm_pageinfo pp, pc;

			CHECK(umm_read(child, base + (i << PAGE_SHIFT), &tag, sizeof(tag)) ==
			      sizeof(tag) && tag == i,
			      "fork: child reads %#" PRIx64 " at page %zu", tag, i);
			CHECK(umm_pagemap(mm, base + (i << PAGE_SHIFT), &pp) == 0 &&
			      umm_pagemap(child, base + (i << PAGE_SHIFT), &pc) == 0 &&
			      pp.pfn == pc.pfn && pc.mapcount == 2 && !(pc.flags & UMM_PI_WRITE) &&
			      !(pp.flags & UMM_PI_WRITE),
			      "fork: page %zu not shared write-protected (pfn %" PRIu64 "/%" PRIu64
			      ", mapcount %d, flags %#x/%#x)", i, pp.pfn, pc.pfn, pc.mapcount,
			      pp.flags, pc.flags);
		}
		if (rep == opt.reps - 1)
			machine_validate(u, "fork");
		umm_mm_exit(child);
		if (rep >= 0)
			ufork[rep] = (double)t / npages;
		ok_fork &= cur_ok;
	}

	/*
	 * umm munmap: the call, and the call plus however long it takes until
	 * every frame is back on the free lists (frees deferred past a grace
	 * period are work the host's munmap does before it returns).
	 */
	if (base) {
		cur_ok = true;
		CHECK(umm_munmap(mm, base, len) == 0, "umm_munmap failed"); /* warm-up */
		ok_unmap &= cur_ok;
	}
	for (int rep = 0; rep < opt.reps && ok_unmap; rep++) {
		struct umm_stat s0, s1;
		struct umm_mm_stat ms;
		uint64_t t0, t1, t2;
		uint8_t b;
		int r;

		cur_ok = true;
		/* the warm-up's deferred frees settle before the free count is taken */
		if (rep == 0) {
			for (int k = 0; k < 5000; k++) {
				umm_get_stat(u, &s0);
				if (s0.nr_free + slack >= free_empty)
					break;
				usleep(1000);
			}
		}
		umm_get_stat(u, &s0);
		base = umm_map_anon(mm, len, true);
		if (!base) {
			ok_unmap = false;
			break;
		}
		umm_mm_get_stat(mm, &ms);
		CHECK(ms.rss_anon == npages, "munmap: rss_anon %" PRIu64 " after POPULATE, want %zu",
		      ms.rss_anon, npages);
		t0 = now_ns();
		r = umm_munmap(mm, base, len);
		t1 = now_ns();
		do {
			umm_get_stat(u, &s1);
		} while (s1.nr_free + slack < s0.nr_free && now_ns() - t1 < 5000000000ULL);
		t2 = now_ns();
		CHECK(r == 0, "umm_munmap: %s", strerror(-r));
		CHECK(s1.nr_free + slack >= s0.nr_free, "munmap: frames still not free after 5 s "
		      "(free %" PRIu64 ", before %" PRIu64 ")", s1.nr_free, s0.nr_free);
		CHECK(s1.pgfree - s0.pgfree >= npages, "munmap: %" PRIu64 " frames freed for %zu",
		      s1.pgfree - s0.pgfree, npages);
		umm_mm_get_stat(mm, &ms);
		CHECK(ms.rss_anon == 0, "munmap: rss_anon %" PRIu64 " after munmap", ms.rss_anon);
		CHECK(umm_read(mm, base, &b, 1) == -EFAULT, "munmap: range still readable");
		uunmap[rep] = (double)(t1 - t0) / npages;
		usettle[rep] = (double)(t2 - t0) / npages;
		ok_unmap &= cur_ok;
	}
	if (u) {
		cur_ok = true;
		machine_validate(u, "munmap");
		ok_unmap &= cur_ok;
	}
	machine_teardown(u, mm);

	char *note;
	struct row *r;

	cur_ok = ok_fork && cur_ok;
	r = add_row(G_FORK, "fork(), private anon populated", NS_PAGE,
		    median(hfork, opt.reps), median(ufork, opt.reps), 1);
	note = r->note;
	snprintf(note, sizeof(r->note), "%zu MiB: host %.1f ms, umm %.1f ms", len / MiB,
		 r->host * npages / 1e6, r->umm * npages / 1e6);
	cur_ok = ok_unmap;
	r = add_row(G_MUNMAP, "munmap() returns", NS_PAGE, median(hunmap, opt.reps),
		    median(uunmap, opt.reps), 1);
	snprintf(r->note, sizeof(r->note), "%zu MiB: host %.1f ms, umm %.1f ms", len / MiB,
		 r->host * npages / 1e6, r->umm * npages / 1e6);
	cur_ok = ok_unmap;
	r = add_row(G_MUNMAP, "munmap() + frames back on free lists", NS_PAGE,
		    median(hunmap, opt.reps), median(usettle, opt.reps), 1);
	snprintf(r->note, sizeof(r->note), "%zu MiB: host %.1f ms, umm %.1f ms", len / MiB,
		 r->host * npages / 1e6, r->umm * npages / 1e6);
}

/* ===================================================================== */
/* 6. 8-byte accesses to present pages, 1 and 2 threads                    */

static const char G_ACCESS[] = "8-byte access to present pages";
static const char G_SCALE[] = "access throughput scaling, 1 -> 2 threads";

/* ACC_CPU: the loop alone (address generation, no access): the CPU's own
 * scaling at the time of the run, the ceiling for the others */
enum acc_kind { ACC_UMM, ACC_PVM, ACC_MEMCPY, ACC_CPU, NR_ACC_KINDS };

/* Content of the 8-byte word at offset @off of the access region. */
static inline uint64_t word_val(uint64_t off)
{
	return off * 0x9E3779B97F4A7C15ULL + 0x1234567;
}

struct acc_thread {
	pthread_t thread;
	pthread_barrier_t *bar;
	enum acc_kind kind;
	bool write;
	int tid;
	struct umm_mm *mm;
	uint64_t ubase;         /* umm: base of the region */
	char *hbase;            /* host: base of the region */
	size_t part_pages;      /* pages per thread */
	uint64_t seed, key;
	uint64_t secs_ns;
	/* out */
	uint64_t ops, sum, ns;
	ssize_t err;
};

/* Offset of the next access of thread @tid: a random word of its own pages. */
static inline uint64_t acc_next(uint64_t *s, int tid, size_t part_pages)
{
	uint64_t x = xorshift64(s);
	uint64_t page = (uint64_t)(((unsigned __int128)(x >> 9) * part_pages) >> 55);

	return (((uint64_t)tid * part_pages + page) << PAGE_SHIFT) + ((x & 511) << 3);
}

#define ACC_BATCH 256

/* Run ACC_BATCH-sized batches of OP until the thread's time is up. */
#define ACC_LOOP(...) do { \
	for (;;) { \
		for (int k_ = 0; k_ < ACC_BATCH; k_++) { \
			uint64_t off = acc_next(&s, a->tid, a->part_pages); \
			__VA_ARGS__; \
		} \
		ops += ACC_BATCH; \
		if (now_ns() - t0 >= a->secs_ns) \
			break; \
	} \
} while (0)

static void *acc_thread_fn(void *arg)
{
	struct acc_thread *a = arg;
	pid_t self = getpid();
	uint64_t s = a->seed, ops = 0, sum = 0, t0;
	ssize_t err = 0;

	pthread_barrier_wait(a->bar);
	t0 = now_ns();
	switch (a->kind * 2 + a->write) {
	case ACC_UMM * 2:
		ACC_LOOP({
			uint64_t v;
			ssize_t r = umm_read(a->mm, a->ubase + off, &v, 8);
			if (r != 8) { err = r; goto out; }
			sum += v;
		});
		break;
	case ACC_UMM * 2 + 1:
		ACC_LOOP({
			uint64_t v = word_val(off) ^ a->key;
			ssize_t r = umm_write(a->mm, a->ubase + off, &v, 8);
			if (r != 8) { err = r; goto out; }
		});
		break;
	case ACC_PVM * 2:
		ACC_LOOP({
			uint64_t v;
			struct iovec l = { &v, 8 }, rm = { a->hbase + off, 8 };
			ssize_t r = process_vm_readv(self, &l, 1, &rm, 1, 0);
			if (r != 8) { err = r < 0 ? -errno : r; goto out; }
			sum += v;
		});
		break;
	case ACC_PVM * 2 + 1:
		ACC_LOOP({
			uint64_t v = word_val(off) ^ a->key;
			struct iovec l = { &v, 8 }, rm = { a->hbase + off, 8 };
			ssize_t r = process_vm_writev(self, &l, 1, &rm, 1, 0);
			if (r != 8) { err = r < 0 ? -errno : r; goto out; }
		});
		break;
	case ACC_MEMCPY * 2:
		ACC_LOOP({
			uint64_t v;
			memcpy(&v, a->hbase + off, 8);
			barrier();
			sum += v;
		});
		break;
	case ACC_MEMCPY * 2 + 1:
		ACC_LOOP({
			uint64_t v = word_val(off) ^ a->key;
			memcpy(a->hbase + off, &v, 8);
			barrier();
		});
		break;
	case ACC_CPU * 2:
	case ACC_CPU * 2 + 1:
		ACC_LOOP({
			sum += off;
			barrier();
		});
		break;
	}
out:
	a->ns = now_ns() - t0;
	a->ops = ops;
	a->sum = sum;
	a->err = err;
	return NULL;
}

/* Read the word at @off of the region back through the side @kind used. */
static uint64_t acc_peek(enum acc_kind kind, struct umm_mm *mm, uint64_t ubase,
			 const char *hbase, uint64_t off)
{
	uint64_t v = 0;

	if (kind == ACC_UMM) {
		if (umm_read(mm, ubase + off, &v, 8) != 8)
			return ~word_val(off);
	} else {
		memcpy(&v, hbase + off, 8);
	}
	return v;
}

/*
 * The run did what it claims: reads summed the words the sequence points
 * at; writes left their values on the first and last addresses written.
 */
static void acc_verify(const struct acc_thread *a)
{
	uint64_t s = a->seed, sum = 0;

	if (a->kind == ACC_CPU)
		return;
	if (a->err) {
		fail_msg("access (%s, %s): error %zd", a->kind == ACC_UMM ? "umm" :
			 a->kind == ACC_PVM ? "process_vm" : "memcpy",
			 a->write ? "write" : "read", a->err);
		return;
	}
	for (uint64_t n = 0; n < a->ops; n++) {
		uint64_t off = acc_next(&s, a->tid, a->part_pages);

		if (!a->write) {
			sum += word_val(off);
		} else if (n < 256 || n >= a->ops - 256) {
			uint64_t v = acc_peek(a->kind, a->mm, a->ubase, a->hbase, off);

			if (v != (word_val(off) ^ a->key)) {
				fail_msg("access write (%s): word at offset %#" PRIx64 " is %#" PRIx64
					 ", wrote %#" PRIx64, a->kind == ACC_UMM ? "umm" : "host",
					 off, v, word_val(off) ^ a->key);
				return;
			}
		}
	}
	if (!a->write)
		CHECK(sum == a->sum, "access read (%s): sum of words read is wrong",
		      a->kind == ACC_UMM ? "umm" : "host");
}

/* One timed run.  Return: ns per op over all threads (wall time / ops). */
static double acc_run(enum acc_kind kind, bool write, int nthreads, struct umm_mm *mm,
		      uint64_t ubase, char *hbase, size_t part_pages, double secs)
{
	static uint64_t run_nr;
	struct acc_thread th[2];
	pthread_barrier_t bar;
	uint64_t ops = 0, ns = 0;

	run_nr++;
	pthread_barrier_init(&bar, NULL, nthreads);
	for (int t = 0; t < nthreads; t++) {
		th[t] = (struct acc_thread){
			.bar = &bar, .kind = kind, .write = write, .tid = t, .mm = mm,
			.ubase = ubase, .hbase = hbase, .part_pages = part_pages,
			.seed = 0x9E3779B97F4A7C15ULL * (run_nr * 2 + t + 1),
			.key = run_nr * 0x100000001ULL, .secs_ns = (uint64_t)(secs * 1e9),
		};
		if (pthread_create(&th[t].thread, NULL, acc_thread_fn, &th[t])) {
			perror("bench_machine: pthread_create");
			exit(1);
		}
	}
	for (int t = 0; t < nthreads; t++) {
		pthread_join(th[t].thread, NULL);
		ops += th[t].ops;
		if (th[t].ns > ns)
			ns = th[t].ns;
	}
	pthread_barrier_destroy(&bar);
	for (int t = 0; t < nthreads; t++)
		acc_verify(&th[t]);
	return ops ? (double)ns / ops : __builtin_nan("");
}

static void bench_access(void)
{
	size_t part = opt.access_bytes, len = 2 * part;
	size_t part_pages = part >> PAGE_SHIFT, npages = len >> PAGE_SHIFT;
	static const char *names[2][2] = {
		{ "read 8 B, 1 thread", "read 8 B, 2 threads" },
		{ "write 8 B, 1 thread", "write 8 B, 2 threads" },
	};
	double res[2][2][NR_ACC_KINDS][MAX_REPS] = { 0 };    /* [write][threads-1][kind][rep] */
	double scale[2][NR_ACC_KINDS][MAX_REPS] = { 0 };     /* [write][kind][rep] */
	double med[2][2][NR_ACC_KINDS], med_scale[2][NR_ACC_KINDS];
	bool kind_ok[NR_ACC_KINDS] = { true, true, true, true };
	bool ok = true;
	struct umm *u;
	struct umm_mm *mm = NULL;
	uint64_t base = 0;
	uint8_t buf[PAGE_SIZE];
	char *p;

	/* the same words on both sides */
	p = host_map(len);
	for (size_t i = 0; i < npages; i++)
		for (int w = 0; w < PAGE_SIZE / 8; w++)
			((uint64_t *)(p + (i << PAGE_SHIFT)))[w] = word_val((i << PAGE_SHIFT) + w * 8);

	cur_ok = true;
	u = machine_create(len + len / 4 + 16 * MiB, true);
	if (!u || umm_mm_create(u, &mm) < 0 || !(base = umm_map_anon(mm, len, true))) {
		fail_msg("access: machine setup failed");
		ok = false;
	}
	for (size_t i = 0; i < npages && ok; i++) {
		for (int w = 0; w < PAGE_SIZE / 8; w++)
			((uint64_t *)buf)[w] = word_val((i << PAGE_SHIFT) + w * 8);
		if (umm_write(mm, base + (i << PAGE_SHIFT), buf, PAGE_SIZE) != PAGE_SIZE) {
			fail_msg("access: filling page %zu failed", i);
			ok = false;
		}
	}
	kind_ok[ACC_UMM] = ok;

	/* process_vm_readv may be refused (seccomp, no CONFIG_CROSS_MEMORY_ATTACH) */
	{
		uint64_t v;
		struct iovec l = { &v, 8 }, rm = { p, 8 };

		if (process_vm_readv(getpid(), &l, 1, &rm, 1, 0) != 8) {
			fprintf(stderr, "bench_machine: process_vm_readv unavailable (%s); "
				"host access figures omitted\n", strerror(errno));
			kind_ok[ACC_PVM] = false;
		}
	}

	/*
	 * Reads first (they check the words against word_val()), then writes.
	 * The 1- and 2-thread runs of a kind go back to back and the scaling is
	 * the median of their per-repetition ratios, so that a slow patch of a
	 * noisy (shared, virtual) machine hits both sides of a ratio alike.
	 */
	for (int w = 0; w < 2; w++) {
		for (int rep = -1; rep < opt.reps; rep++) {
			for (int k = 0; k < NR_ACC_KINDS; k++) {
				double t[2];

				if (!kind_ok[k])
					continue;
				for (int nt = 1; nt <= 2; nt++) {
					cur_ok = true;
					t[nt - 1] = acc_run(k, w, nt, mm, base, p, part_pages,
							    rep < 0 ? opt.access_secs / 3
								    : opt.access_secs);
					kind_ok[k] &= cur_ok;
				}
				if (rep < 0)
					continue;
				res[w][0][k][rep] = t[0];
				res[w][1][k][rep] = t[1];
				scale[w][k][rep] = t[0] / t[1];
			}
		}
		for (int k = 0; k < NR_ACC_KINDS; k++) {
			for (int nt = 1; nt <= 2; nt++)
				med[w][nt - 1][k] = kind_ok[k] ? median(res[w][nt - 1][k], opt.reps)
							       : __builtin_nan("");
			med_scale[w][k] = kind_ok[k] ? median(scale[w][k], opt.reps)
						     : __builtin_nan("");
		}
	}
	if (u && kind_ok[ACC_UMM]) {
		cur_ok = true;
		machine_validate(u, "accesses");
		kind_ok[ACC_UMM] &= cur_ok;
	}
	cur_ok = true;
	machine_teardown(u, mm);
	kind_ok[ACC_UMM] &= cur_ok;
	munmap(p, len);

	for (int w = 0; w < 2; w++) {
		for (int nt = 1; nt <= 2; nt++) {
			struct row *r;

			cur_ok = kind_ok[ACC_UMM];
			r = add_row(G_ACCESS, names[w][nt - 1], NS_OP, med[w][nt - 1][ACC_PVM],
				    med[w][nt - 1][ACC_UMM], 0);
			r->ref = med[w][nt - 1][ACC_MEMCPY];
		}
	}
	for (int w = 0; w < 2; w++) {
		struct row *r;

		cur_ok = kind_ok[ACC_UMM];
		r = add_row(G_SCALE, w ? "write 8 B" : "read 8 B", FACTOR,
			    med_scale[w][ACC_PVM], med_scale[w][ACC_UMM], 1.8);
		r->ref = med_scale[w][ACC_MEMCPY];
		r->ref2 = med_scale[w][ACC_CPU];
	}
}

/* ===================================================================== */
/* output                                                                  */


static const char *unit_name(enum unit u)
{
	return u == NS_PAGE ? "ns/page" : u == NS_OP ? "ns/op" : "x";
}

/* host/umm for times (>1: umm faster); for scaling rows, umm's own factor. */
static double row_ratio(const struct row *r)
{
	return r->unit == FACTOR ? r->umm : r->host / r->umm;
}

static bool row_met(const struct row *r)
{
	return r->valid && row_ratio(r) >= r->target;
}

static void fmt_num(char *buf, size_t n, double v)
{
	if (v != v)
		snprintf(buf, n, "-");
	else if (v >= 1e5)
		snprintf(buf, n, "%.3g", v);
	else
		snprintf(buf, n, "%.1f", v);
}

static void fmt_factor(char *buf, size_t n, double v)
{
	if (v != v)
		snprintf(buf, n, "-");
	else
		snprintf(buf, n, "%.2fx", v);
}

static void print_tables(double secs)
{
	const char *group = NULL;

	printf("machine: %s, %ld cores, %s\n", mach.cpu, mach.cores, mach.kernel);
	printf("sizes: faults %zu MiB (%zu pages), fork/munmap %zu MiB, access %zu MiB "
	       "per thread; median of %d (after 1 warm-up)\n",
	       opt.fault_bytes / MiB, opt.fault_bytes >> PAGE_SHIFT, opt.big_bytes / MiB,
	       opt.access_bytes / MiB, opt.reps);
	printf("host/umm > 1 means umm is faster\n");

	for (int i = 0; i < nr_rows; i++) {
		const struct row *r = &rows[i];
		char h[32], m[32], ratio[32], ref[32], ref2[32], tgt[48] = "";

		if (r->group != group) {
			group = r->group;
			printf("\n%s\n", group);
			if (r->unit == FACTOR)
				printf("  %-38s %12s %12s %12s %12s  %s\n", "access",
				       "host (pvm)", "umm", "memcpy", "cpu only", "target");
			else if (r->unit == NS_OP)
				printf("  %-38s %12s %12s %9s %12s\n", "access",
				       "host ns/op", "umm ns/op", "host/umm", "memcpy ns/op");
			else
				printf("  %-38s %12s %12s %9s  %s\n", "variant",
				       "host ns/page", "umm ns/page", "host/umm", "target");
		}
		fmt_num(h, sizeof(h), r->host);
		fmt_num(m, sizeof(m), r->umm);
		fmt_num(ref, sizeof(ref), r->ref);
		if (!r->valid)
			snprintf(m, sizeof(m), "FAILED");
		if (r->host / r->umm == r->host / r->umm)
			snprintf(ratio, sizeof(ratio), "%.2fx", r->host / r->umm);
		else
			snprintf(ratio, sizeof(ratio), "-");
		if (r->target > 0)
			snprintf(tgt, sizeof(tgt), "%s%.1fx %s", r->unit == FACTOR ? "umm >= " : ">= ",
				 r->target, !r->valid ? "-" : row_met(r) ? "met" : "NOT MET");
		if (r->unit == FACTOR) {
			fmt_factor(h, sizeof(h), r->host);
			if (r->valid)
				fmt_factor(m, sizeof(m), r->umm);
			fmt_factor(ref, sizeof(ref), r->ref);
			fmt_factor(ref2, sizeof(ref2), r->ref2);
			printf("  %-38s %12s %12s %12s %12s  %s\n", r->name, h, m, ref, ref2, tgt);
		} else if (r->unit == NS_OP) {
			printf("  %-38s %12s %12s %9s %12s\n", r->name, h, m,
			       r->valid ? ratio : "-", ref);
		} else {
			printf("  %-38s %12s %12s %9s  %s\n", r->name, h, m,
			       r->valid ? ratio : "-", tgt);
		}
		if (r->note[0])
			printf("  %-38s (%s)\n", "", r->note);
	}
	printf("\naccess: host = process_vm_readv/writev of 8 bytes on this process; "
	       "ns/op = wall time / ops of all threads;\n"
	       "scaling = median of per-repetition throughput ratios; 'cpu only' (the loop "
	       "without the access) is the machine's own ceiling\n");
	print_total(secs, "figures");
}


static void print_json(double secs)
{
	json_machine();
	printf("},\n  \"config\": {\"fault_mb\": %zu, \"fork_mb\": %zu, \"access_mb\": %zu, "
	       "\"reps\": %d, \"quick\": %s},\n  \"results\": [\n",
	       opt.fault_bytes / MiB, opt.big_bytes / MiB, opt.access_bytes / MiB, opt.reps,
	       opt.quick ? "true" : "false");
	for (int i = 0; i < nr_rows; i++) {
		const struct row *r = &rows[i];

		printf("    {\"group\": ");
		json_str(r->group);
		printf(", \"name\": ");
		json_str(r->name);
		printf(", \"unit\": \"%s\", \"host\": ", unit_name(r->unit));
		json_num(r->host);
		printf(", \"umm\": ");
		json_num(r->valid ? r->umm : __builtin_nan(""));
		if (r->unit != FACTOR) {
			printf(", \"ratio\": ");
			json_num(r->valid ? r->host / r->umm : __builtin_nan(""));
		}
		if (r->ref == r->ref) {
			printf(", \"memcpy\": ");
			json_num(r->ref);
		}
		if (r->ref2 == r->ref2) {
			printf(", \"cpu_only\": ");
			json_num(r->ref2);
		}
		if (r->target > 0)
			printf(", \"target\": %.2g, \"target_met\": %s", r->target,
			       row_met(r) ? "true" : "false");
		printf(", \"valid\": %s}%s\n", r->valid ? "true" : "false",
		       i + 1 < nr_rows ? "," : "");
	}
	printf("  ],\n  \"seconds\": %.1f,\n  \"checks_passed\": %s\n}\n", secs,
	       nr_failed ? "false" : "true");
}

/* ===================================================================== */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: bench_machine [options]\n"
		"  --size-mb N    region for the fault figures (default 256)\n"
		"  --fork-mb N    populated size for fork and munmap (default 1024)\n"
		"  --access-mb N  pages per thread for the access figures (default 32)\n"
		"  --reps N       timed repetitions per figure, median taken (default 5, max %d)\n"
		"  --quick        small sizes and 3 repetitions (a smoke test)\n"
		"  --json         machine-readable output\n", MAX_REPS);
}


int main(int argc, char **argv)
{
	long size_mb = -1, fork_mb = -1, access_mb = -1, reps = -1;
	uint64_t t0;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (!strcmp(a, "--size-mb"))
			size_mb = parse_num(opt_arg(argc, argv, &i), a, 1, 1 << 16);
		else if (!strcmp(a, "--fork-mb"))
			fork_mb = parse_num(opt_arg(argc, argv, &i), a, 1, 1 << 16);
		else if (!strcmp(a, "--access-mb"))
			access_mb = parse_num(opt_arg(argc, argv, &i), a, 1, 1 << 14);
		else if (!strcmp(a, "--reps"))
			reps = parse_num(opt_arg(argc, argv, &i), a, 1, MAX_REPS);
		else
			common_opt(a, &opt.quick, &opt.json, usage);
	}
	if (opt.quick) {
		opt.fault_bytes = 16 * MiB;
		opt.big_bytes = 64 * MiB;
		opt.access_bytes = 4 * MiB;
		opt.access_secs = 0.02;
		opt.reps = 3;
	}
	if (size_mb > 0)
		opt.fault_bytes = size_mb * MiB;
	if (fork_mb > 0)
		opt.big_bytes = fork_mb * MiB;
	if (access_mb > 0)
		opt.access_bytes = access_mb * MiB;
	if (reps > 0)
		opt.reps = reps;

	probe_machine();
	init_pattern();
	t0 = now_ns();
	if (!opt.json) {
		printf("bench_machine: umm beside the host kernel (%s)\n", opt.quick ? "quick" : "full");
		fflush(stdout);
	}
	bench_write_fault();
	bench_read_fault();
	bench_cow_fault();
	bench_fork_munmap();
	bench_access();

	return bench_finish(t0, opt.json, print_json, print_tables);
}
