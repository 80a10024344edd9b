/* SPDX-License-Identifier: MIT */
/*
 * fixture.h - what the tests share, header-only, included after tap.h: a
 * machine and an mm to test in (struct fix), umm_validate() with its
 * message, the leak check at teardown, pattern pages written and checked
 * through the CPU path, byte, stat and pagemap helpers, layouts drawn in
 * ASCII, a temporary directory for host files, and the clock, sleep and
 * flag-wait helpers of the concurrent tests.
 *
 * Addresses: tests map with MAP_FIXED from BASE (8 GiB, far from where the
 * engine picks), so layouts are known.  A layout is drawn one character per
 * page from BASE: a letter is a page of a VMA (one letter per VMA), a blank
 * is a hole; layout_is() checks such a drawing against umm_mm_vma_next().
 *
 * machine_valid() checks with FIX_VALIDATE: UMM_VALIDATE_EXACT unless the
 * test defines it before including this file (t_rmap.c, t_filemap.c add
 * UMM_VALIDATE_RMAP).
 */
#ifndef UMM_TESTS_FIXTURE_H
#define UMM_TESTS_FIXTURE_H

#include <ftw.h>
#include <stdatomic.h>

#include <umm/umm.h>

#define PS	UMM_PAGE_SIZE
#define PG(n)	((uint64_t)(n) * PS)
#define BASE	0x200000000ULL		/* 8 GiB: far from where the engine picks */
#define AT(n)	(BASE + PG(n))

#define RW	(UMM_PROT_READ | UMM_PROT_WRITE)
#define RO	UMM_PROT_READ
#define PRIV	(UMM_MAP_PRIVATE | UMM_MAP_ANONYMOUS)
#define SHRD	(UMM_MAP_SHARED | UMM_MAP_ANONYMOUS)
#define VALIDATE_ALL	(UMM_VALIDATE_EXACT | UMM_VALIDATE_RMAP)

#ifndef FIX_VALIDATE
#define FIX_VALIDATE	UMM_VALIDATE_EXACT
#endif

/* ---- the machine ---- */

/* A machine of @phys bytes in @nodes nodes: 0 or -errno from umm_create(). */
static inline int make_machine(size_t phys, unsigned int nodes, unsigned int flags,
			       struct umm **u)
{
	struct umm_config cfg;

	umm_config_init(&cfg);
	cfg.phys_bytes = phys;
	cfg.nr_nodes = nodes;
	cfg.flags = flags;
	*u = NULL;
	return umm_create(&cfg, u);
}

/* umm_validate(FIX_VALIDATE), its message printed when it fails. */
static inline bool machine_valid(struct umm *u)
{
	char msg[256] = "";
	int r = umm_validate(u, FIX_VALIDATE, msg, sizeof(msg));

	if (r)
		TAP_DIAG("umm_validate: %d: %s", r, msg);
	return r == 0;
}

static inline void leak_diag(void *ctx, uint64_t pfn, int refcount, int mapcount,
			     unsigned long flags)
{
	(void)ctx;
	TAP_DIAG("leaked pfn %" PRIu64 ": refcount %d mapcount %d flags %#lx", pfn,
		 refcount, mapcount, flags);
}

/* Every mm exited and every file put: validate, check nothing leaked, destroy. */
static inline bool machine_done(struct umm *u)
{
	ASSERT_TRUE(machine_valid(u));
	ASSERT_EQ(umm_leak_check(u, leak_diag, NULL), 0);
	umm_destroy(u);
	return true;
}

/* ---- the usual fixture: one machine, one mm ---- */

struct fix {
	struct umm *u;
	struct umm_mm *mm;
};

static inline bool fix_init_phys(struct fix *f, size_t phys)
{
	f->mm = NULL;
	ASSERT_OK(make_machine(phys, 1, 0, &f->u));
	ASSERT_OK(umm_mm_create(f->u, &f->mm));
	return true;
}

static inline bool fix_init(struct fix *f)
{
	return fix_init_phys(f, 16 << 20);
}

/* Validate, exit the mm (if still there), then machine_done(). */
static inline bool fix_fini(struct fix *f)
{
	ASSERT_TRUE(machine_valid(f->u));
	if (f->mm)
		umm_mm_exit(f->mm);
	f->mm = NULL;
	ASSERT_TRUE(machine_done(f->u));
	f->u = NULL;
	return true;
}

/* ---- mappings and pattern pages ---- */

/* MAP_FIXED mapping of @n pages at @addr of @f from @off: 0 or -errno. */
static inline int map_file(struct umm_mm *mm, uint64_t addr, uint64_t n, int prot, int flags,
			   struct umm_file *f, uint64_t off)
{
	uint64_t out = 0;
	int r = umm_mmap(mm, addr, PG(n), prot, flags | UMM_MAP_FIXED, f, off, &out);

	if (r == 0 && out != addr) {
		TAP_DIAG("MAP_FIXED at %#" PRIx64 " returned %#" PRIx64, addr, out);
		return -EADDRNOTAVAIL;
	}
	return r;
}

/* MAP_FIXED anonymous mapping of @n pages at @addr (@flags: PRIV or SHRD, and more). */
static inline int map_at(struct umm_mm *mm, uint64_t addr, uint64_t n, int prot, int flags)
{
	return map_file(mm, addr, n, prot, flags, NULL, 0);
}

/* The pattern of the page that was written at @orig: every word differs. */
static inline void pat_fill(uint64_t *w, uint64_t orig, uint64_t tag)
{
	for (size_t i = 0; i < PS / 8; i++)
		w[i] = (orig + i * 8) * 0x9e3779b97f4a7c15ULL ^ tag;
}

/* Does the page at @p (a frame's address) hold the pattern of @orig, @tag? */
static inline bool page_is_pat(const void *p, uint64_t orig, uint64_t tag)
{
	uint64_t want[PS / 8];

	pat_fill(want, orig, tag);
	return memcmp(p, want, PS) == 0;
}

/* Write the pattern of each of @n pages at @addr (tagged @tag). */
static inline bool write_pat(struct umm_mm *mm, uint64_t addr, uint64_t n, uint64_t tag)
{
	uint64_t w[PS / 8];

	for (uint64_t p = 0; p < n; p++) {
		pat_fill(w, addr + PG(p), tag);
		ssize_t r = umm_write(mm, addr + PG(p), w, PS);
		if (r != PS) {
			TAP_DIAG("umm_write(%#" PRIx64 ") = %zd", addr + PG(p), r);
			return false;
		}
	}
	return true;
}

/* map_at() then write_pat(): @n fresh pages at @addr holding pattern @tag. */
static inline bool map_pat(struct umm_mm *mm, uint64_t addr, uint64_t n, int prot, int flags,
			   uint64_t tag)
{
	int r = map_at(mm, addr, n, prot, flags);

	if (r) {
		TAP_DIAG("map_at(%#" PRIx64 ", %" PRIu64 " pages) = %d", addr, n, r);
		return false;
	}
	return write_pat(mm, addr, n, tag);
}

/* Do the @n pages at @addr hold what write_pat(@orig, @tag) wrote? */
static inline bool pat_at(struct umm_mm *mm, uint64_t addr, uint64_t orig, uint64_t n,
			  uint64_t tag)
{
	uint64_t w[PS / 8];

	for (uint64_t p = 0; p < n; p++) {
		ssize_t r = umm_read(mm, addr + PG(p), w, PS);
		if (r != PS) {
			TAP_DIAG("umm_read(%#" PRIx64 ") = %zd", addr + PG(p), r);
			return false;
		}
		if (!page_is_pat(w, orig + PG(p), tag)) {
			TAP_DIAG("page %#" PRIx64 " does not hold the pattern of %#" PRIx64
				 " (tag %" PRIu64 ")", addr + PG(p), orig + PG(p), tag);
			return false;
		}
	}
	return true;
}

/* Do the @n pages at @addr hold what write_pat(@tag) wrote there? */
static inline bool check_pat(struct umm_mm *mm, uint64_t addr, uint64_t n, uint64_t tag)
{
	return pat_at(mm, addr, addr, n, tag);
}

/* Do the @n pages at @addr read as zeros? */
static inline bool zeros_at(struct umm_mm *mm, uint64_t addr, uint64_t n)
{
	static const uint8_t zero[PS];
	uint8_t buf[PS];

	for (uint64_t p = 0; p < n; p++) {
		memset(buf, 0xa5, PS);
		ssize_t r = umm_read(mm, addr + PG(p), buf, PS);
		if (r != PS) {
			TAP_DIAG("umm_read(%#" PRIx64 ") = %zd", addr + PG(p), r);
			return false;
		}
		if (memcmp(buf, zero, PS)) {
			TAP_DIAG("page %#" PRIx64 " is not zero", addr + PG(p));
			return false;
		}
	}
	return true;
}

/* ---- bytes ---- */

/* The byte at @addr, or -errno (-1 for a short read): never a byte value. */
static inline int byte_at(struct umm_mm *mm, uint64_t addr)
{
	uint8_t b;
	ssize_t r = umm_read(mm, addr, &b, 1);

	if (r == 1)
		return b;
	return r < 0 ? (int)r : -1;
}

/* umm_write() of one byte: 1 or -errno. */
static inline ssize_t write_byte(struct umm_mm *mm, uint64_t addr, uint8_t b)
{
	return umm_write(mm, addr, &b, 1);
}

/* Store one byte, which must succeed. */
static inline bool put_byte(struct umm_mm *mm, uint64_t addr, uint8_t b)
{
	ssize_t r = write_byte(mm, addr, b);

	if (r != 1)
		TAP_DIAG("umm_write(%#" PRIx64 ") = %zd", addr, r);
	return r == 1;
}

/* ---- counters and pagemap (all ones where the call fails) ---- */

static inline struct umm_mm_stat mstat(struct umm_mm *mm)
{
	struct umm_mm_stat st;

	memset(&st, 0xff, sizeof(st));
	umm_mm_get_stat(mm, &st);
	return st;
}

static inline struct umm_stat ustat(struct umm *u)
{
	struct umm_stat st;

	memset(&st, 0xff, sizeof(st));
	umm_get_stat(u, &st);
	return st;
}

static inline struct umm_pageinfo pinfo(struct umm_mm *mm, uint64_t addr)
{
	struct umm_pageinfo pi;
	int r = umm_pagemap(mm, addr, &pi);

	if (r) {
		TAP_DIAG("umm_pagemap(%#" PRIx64 ") = %d", addr, r);
		memset(&pi, 0xff, sizeof(pi));
	}
	return pi;
}

/* ---- layouts ---- */

/* The VMA holding @addr, if any. */
static inline bool vma_at(struct umm_mm *mm, uint64_t addr, struct umm_vma_info *vi)
{
	return umm_mm_vma_next(mm, addr, vi) == 0 && vi->start <= addr;
}

/* The protection of the VMA holding @addr, or -1. */
static inline int prot_at(struct umm_mm *mm, uint64_t addr)
{
	struct umm_vma_info vi;

	return vma_at(mm, addr, &vi) ? vi.prot : -1;
}

/*
 * Give each maximal run of one letter a letter of its own, in order, so that
 * "XXX YY" and "AAA BB" compare equal.
 */
static inline void layout_canon(char *s)
{
	char prev = ' ', next = 'A', cur = ' ';

	for (; *s; s++) {
		if (*s == ' ') {
			prev = ' ';
			continue;
		}
		if (*s != prev) {
			prev = *s;
			cur = next++;
		}
		*s = cur;
	}
}

/*
 * Does the address space, seen through the window of strlen(@want) pages at
 * @base, look like @want?  A VMA that crosses an edge of the window fails.
 */
static inline bool layout_is(struct umm_mm *mm, uint64_t base, const char *want)
{
	size_t n = strlen(want);
	uint64_t end = base + PG(n);
	char got[128], exp[128];
	struct umm_vma_info vi;
	uint64_t addr = base;
	char letter = 'A';
	bool crosses = false;

	if (n >= sizeof(got))
		return false;
	memset(got, ' ', n);
	got[n] = 0;
	while (umm_mm_vma_next(mm, addr, &vi) == 0 && vi.start < end) {
		if (vi.start < base || vi.end > end || vi.start >= vi.end)
			crosses = true;
		for (uint64_t a = vi.start < base ? base : vi.start; a < vi.end && a < end; a += PS)
			got[(a - base) / PS] = letter;
		letter = letter == 'Z' ? 'A' : letter + 1;
		addr = vi.end;
	}
	strcpy(exp, want);
	layout_canon(exp);
	layout_canon(got);
	if (crosses || strcmp(exp, got)) {
		TAP_DIAG("layout: want '%s', got '%s'%s", exp, got,
			 crosses ? " (a VMA crosses the window)" : "");
		return false;
	}
	return true;
}

/* ---- a temporary directory for host files ---- */

/* The directory tmp_init() made ("" before). */
static inline char *tmp_dir(void)
{
	static char dir[64];

	return dir;
}

/* Make /tmp/umm-@name-XXXXXX; tmp_cleanup() removes it and all in it. */
static inline bool tmp_init(const char *name)
{
	snprintf(tmp_dir(), 64, "/tmp/umm-%s-XXXXXX", name);
	return mkdtemp(tmp_dir()) != NULL;
}

/* @name in the directory; the last 8 results stay valid. */
static inline const char *tmp_path(const char *name)
{
	static char paths[8][256];
	static unsigned int next;
	char *p = paths[next++ % 8];

	snprintf(p, sizeof(paths[0]), "%s/%s", tmp_dir(), name);
	return p;
}

static inline int tmp_rm_one(const char *path, const struct stat *st, int type,
			     struct FTW *ftw)
{
	(void)st;
	(void)type;
	(void)ftw;
	return remove(path);
}

static inline void tmp_cleanup(void)
{
	nftw(tmp_dir(), tmp_rm_one, 8, FTW_DEPTH | FTW_PHYS);
}

/* ---- time, for the concurrent tests ---- */

static inline void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* CLOCK_MONOTONIC in seconds. */
static inline double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A run's time budget in seconds: short (sanitizers), normal, long. */
static inline double budget_s(double normal)
{
	return tap_long() ? 10 * normal : tap_short() ? normal / 3 : normal;
}

/* Wait (politely) until *@flag is set; false after about 10 s. */
static inline bool wait_flag(atomic_int *flag)
{
	for (int i = 0; i < 10000; i++) {
		if (atomic_load(flag))
			return true;
		sleep_ms(1);
	}
	return false;
}

#endif /* UMM_TESTS_FIXTURE_H */
