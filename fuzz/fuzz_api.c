// SPDX-License-Identifier: MIT
/*
 * fuzz_api.c - libFuzzer target over the whole public API.
 *
 * The input is a program: each operation is an opcode byte followed by its
 * argument bytes (missing bytes read as zero; the program ends with the
 * input or after MAX_STEPS operations).  It drives one machine of two
 * memory nodes with a small swap file and up to NR_MMS address spaces, all
 * working in a window of WIN pages at BASE: mmap, munmap, mprotect, mremap,
 * madvise (every advice, and unknown ones), mlock, munlock with good and bad
 * arguments, reads and writes, fork and exit, GUP get/put, pagemap, the rmap
 * operations, KSM scans, full scans, merge-any and merge domains, reclaim,
 * move_pages, compaction, the OOM reaper, MMU notifier register/unregister
 * and get/put of a recording subscriber, interval notifiers with the
 * read_begin/read_retry protocol, the statistics calls, a real file (opened
 * read-write and read-only, mapped shared and private, past its end and at
 * bad offsets, msync'd, its handles dropped and opened again), and fault
 * injection switched on and off (every kind up to UMM_FAULT_NR).
 *
 * The reference model knows, for each mm and page of the window, whether it
 * is mapped, its protection, whether it is mlocked, and its bytes: private
 * bytes of its own (copied at fork), a page of a shared object that every
 * MAP_SHARED mapping of it sees, or a page of the file (a private mapping's
 * until it writes its COW copy).  Every read, and every page a GUP returns,
 * is compared with the model; after msync, and after the last handle goes
 * with nothing mapping the file, pread() of the real file must give the
 * model's file bytes.  After every operation the VMA layout the
 * engine reports must equal the model's (when the operation succeeded; a
 * failed one may have done part of its work, as on Linux, and the layout is
 * taken from the engine, but bytes never are).  After every operation and
 * at the end umm_validate(EXACT|RMAP) must pass (DESIGN.md §4); every
 * CHECK_EVERY operations every page of every mm is read back; after every
 * mm has exited no frame may leak and the protocol checker must have
 * counted nothing.  The recording subscriber checks that starts and ends
 * pair and that nothing arrives after unregister or a start after release;
 * it also caches the translations of the pages GUP returns and reports
 * them to the protocol checker (UMM_CONFIG_NOTIFIER_CHECKER), which logs an
 * error - a failure here - if the engine changes or frees a page a
 * subscriber could still map without invalidating it first.
 *
 * A failure prints what differed and abort()s, so libFuzzer keeps the input.
 * Run an input again with: build-fuzz/fuzz_api crash-file (UMM_FUZZ_TRACE=1
 * prints each operation as it runs).  UMM_FUZZ_CORRUPT=1 flips a byte of
 * the model after each write: every input that writes and reads back must
 * then fail, which is how tests/t_fuzz.c shows that the checks check.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <umm/umm.h>

#define PS		UMM_PAGE_SIZE
#define WIN		24			/* pages in each mm's window */
#define BASE		0x200000000ULL
#define AT(p)		(BASE + (uint64_t)(p) * PS)
#define NR_MMS		4
#define NR_GUP		8
#define MAX_STEPS	200
#define CHECK_EVERY	16
#define RW		(UMM_PROT_READ | UMM_PROT_WRITE)
#define FPAGES		8			/* pages of the real file behind file mappings */

/* ---- the model ---- */

struct sobj {				/* one MAP_SHARED|MAP_ANONYMOUS object */
	int refs;
	unsigned int npages;
	uint8_t *pages[WIN];		/* NULL: still zero */
};

struct mpage {
	bool mapped, shared, locked;
	bool unknown;			/* content not modelled (after a partial failure) */
	bool maybe_zero;		/* either the bytes below or zeros (DONTNEED that failed) */
	bool file;			/* a mapping of the file, page fpg of it */
	bool ro_file;			/* shared, through the O_RDONLY handle: never writable */
	bool ro_unknown;		/* shared file page taken from the engine: ro_file unknown */
	unsigned int fpg;
	int prot;
	struct sobj *obj;		/* shared: the object and the page in it */
	unsigned int objpg;
	uint8_t *data;			/* private: NULL means zeros (a file page: the file's bytes) */
};

#define REC_XLATS	8
struct rec {				/* the recording MMU-notifier subscriber */
	struct umm_mmu_notifier mn;
	bool registered, released, fail_nonblock;
	int active;
	unsigned long starts, ends, eagain;
	/* a tiny secondary TLB: translations of pages GUP returned, reported
	 * to the protocol checker, dropped when an invalidation covers them */
	uint64_t xaddr[REC_XLATS], xpfn[REC_XLATS];
	bool xvalid[REC_XLATS];
};

struct ivl {				/* an interval notifier over part of the window */
	struct umm_mmu_interval_notifier mn;
	uint64_t start, end;
	bool inserted, fail_nonblock;
	unsigned long invalidations;
	/* one cached translation, as a secondary MMU without page references */
	uint64_t xaddr, xpfn;
	bool xvalid;
};

struct fmm {
	struct umm_mm *mm;
	struct mpage pg[WIN];
	struct rec *rec;		/* registered subscriber, or NULL */
	struct ivl *ivl;		/* inserted interval notifier, or NULL */
	struct rec *gsub;		/* the umm_mmu_notifier_get() subscription, or NULL */
	int gsub_refs;
	bool merge_any;
	bool reaped;			/* the OOM reaper went over it: faults get -EFAULT */
};

struct gup {
	struct umm_page *page;
	bool held;
};

static struct fuzz {
	struct umm *u;
	struct fmm mms[NR_MMS];
	struct gup gup[NR_GUP];
	const uint8_t *in;
	size_t len, pos;
	unsigned int step;
	bool faults_on;			/* some fault injection is on: -ENOMEM, -EIO allowed */
	bool trace;
	bool corrupt;			/* UMM_FUZZ_CORRUPT: the checker's own test */
	char swap_path[64];
	/* the file: a real temporary file, its model, and two handles on it */
	char file_path[64];
	struct umm_file *file, *rofile;	/* O_RDWR and O_RDONLY; NULL after a failed reopen */
	int check_fd;			/* plain read-only fd: pread() of what reached the file */
	unsigned long gsub_freed;	/* free_notifier calls */
	uint8_t fbytes[FPAGES * PS];
	uint8_t buf[2 * PS], want[2 * PS];
} F;

static const uint8_t zero_page[PS];

static void __attribute__((noreturn, format(printf, 1, 2))) fail(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "fuzz_api: step %u: ", F.step);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	unlink(F.swap_path);		/* abort() skips the run's own cleanup */
	unlink(F.file_path);
	abort();
}

#define TRACE(...) do { if (F.trace) { fprintf(stderr, "[%u] ", F.step); \
	fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); } } while (0)

static uint8_t in8(void)
{
	return F.pos < F.len ? F.in[F.pos++] : 0;
}

static uint32_t in16(void)
{
	return in8() | (uint32_t)in8() << 8;
}

static void log_hook(void *ctx, int level, const char *msg)
{
	if (level <= UMM_LOG_ERR)
		fail("engine logged an error: %s", msg);
}

/* ---- model helpers ---- */

static struct sobj *sobj_new(unsigned int npages)
{
	struct sobj *o = calloc(1, sizeof(*o));

	o->refs = 0;
	o->npages = npages;
	return o;
}

static void sobj_put(struct sobj *o)
{
	if (--o->refs)
		return;
	for (unsigned int i = 0; i < o->npages; i++)
		free(o->pages[i]);
	free(o);
}

static void mpage_clear(struct mpage *p)
{
	if (p->obj)
		sobj_put(p->obj);
	free(p->data);
	memset(p, 0, sizeof(*p));
}

/* The bytes @p must hold (NULL: zeros). */
static const uint8_t *mpage_bytes(const struct mpage *p)
{
	if (p->file)
		return p->data ? p->data : p->fpg < FPAGES ? F.fbytes + (size_t)p->fpg * PS : NULL;
	return p->shared ? p->obj->pages[p->objpg] : p->data;
}

/* Writable storage for @p's bytes. */
static uint8_t *mpage_store(struct mpage *p)
{
	uint8_t **slot;

	if (p->file && p->shared)
		return F.fbytes + (size_t)p->fpg * PS;
	if (p->file && !p->data) {		/* the COW copy of the file's page */
		p->data = malloc(PS);
		memcpy(p->data, F.fbytes + (size_t)p->fpg * PS, PS);
	}
	slot = p->shared ? &p->obj->pages[p->objpg] : &p->data;

	if (!*slot)
		*slot = calloc(1, PS);
	return *slot;
}

static void mpage_copy(struct mpage *dst, const struct mpage *src)
{
	*dst = *src;
	if (src->obj)
		src->obj->refs++;
	if (src->data) {
		dst->data = malloc(PS);
		memcpy(dst->data, src->data, PS);
	}
}

static bool page_readable(const struct mpage *p)
{
	return p->mapped && (p->prot & (UMM_PROT_READ | UMM_PROT_WRITE | UMM_PROT_EXEC));
}

/* A file page past the file's end has nothing behind it: -EFAULT (SIGBUS). */
static bool page_backed(const struct mpage *p)
{
	return !p->file || p->fpg < FPAGES;
}

/*
 * Populating a private writable file mapping (MAP_POPULATE, MAP_LOCKED,
 * mlock) breaks COW as Linux's populate does, and so does a write GUP: the
 * page gets its copy of the file's bytes now, and later writes of the file
 * no longer show there.  Whether it did (an injected failure may have
 * stopped it) is the engine's to say: an anonymous or swapped page.
 */
static void model_sync_cow(struct fmm *m, unsigned int first, unsigned int n)
{
	for (unsigned int i = first; i < first + n && i < WIN; i++) {
		struct mpage *p = &m->pg[i];
		struct umm_pageinfo pi;

		if (!p->file || p->shared || p->data || p->unknown || !page_backed(p))
			continue;
		if (umm_pagemap(m->mm, AT(i), &pi) == 0 &&
		    (pi.flags & (UMM_PI_ANON | UMM_PI_SWAPPED)))
			mpage_store(p);
	}
}

/* ---- checks ---- */

/* The engine's layout of @m's window must be the model's; with @resync, take it. */
static void check_layout(struct fmm *m, bool resync, const char *what)
{
	for (unsigned int i = 0; i < WIN; i++) {
		struct mpage *p = &m->pg[i];
		struct umm_vma_info vi;
		bool mapped = umm_mm_vma_next(m->mm, AT(i), &vi) == 0 && vi.start <= AT(i);
		bool file = mapped && !vi.anonymous;
		unsigned int fpg = file ? vi.pgoff + (AT(i) - vi.start) / PS : 0;

		if (!resync) {
			if (mapped != p->mapped)
				fail("%s: page %u is %smapped, the model says %smapped", what, i,
				     mapped ? "" : "not ", p->mapped ? "" : "not ");
			if (mapped && (vi.prot != p->prot || vi.shared != p->shared ||
				       vi.locked != p->locked || file != p->file))
				fail("%s: page %u: vma prot %d shared %d locked %d file %d, model "
				     "%d %d %d %d", what, i, vi.prot, vi.shared, vi.locked, file,
				     p->prot, p->shared, p->locked, p->file);
			if (file && fpg != p->fpg)
				fail("%s: page %u maps file page %u, the model says %u", what, i,
				     fpg, p->fpg);
			continue;
		}
		if (!mapped) {
			mpage_clear(p);
			continue;
		}
		if (!p->mapped || vi.shared != p->shared || file != p->file ||
		    (file && fpg != p->fpg)) {
			mpage_clear(p);
			p->mapped = true;
			p->file = file;
			p->fpg = fpg;
			if (file && vi.shared) {
				/* the file's bytes, whoever mapped it */
				p->shared = true;
				p->ro_unknown = true;
			} else {
				p->unknown = true;
				p->shared = false;	/* not modelled: never treated as shared */
			}
		}
		p->prot = vi.prot;
		p->locked = vi.locked;
	}
}

/* Compare @n bytes read at @off of page @i with the model (updating maybe_zero). */
static void check_bytes(struct fmm *m, unsigned int i, unsigned int off, const uint8_t *got,
			size_t n, const char *what)
{
	struct mpage *p = &m->pg[i];
	const uint8_t *want = mpage_bytes(p);

	if (p->unknown)
		return;
	if (!memcmp(got, (want ? want : zero_page) + off, n))
		return;
	if (p->maybe_zero && !memcmp(got, zero_page, n)) {
		/* it was zapped: from now on it is zeros */
		if (!p->shared) {
			free(p->data);
			p->data = NULL;
		}
		p->maybe_zero = false;
		return;
	}
	for (size_t k = 0; k < n; k++) {
		if (got[k] != (want ? want[off + k] : 0))
			fail("%s: mm %ld page %u offset %zu: read %#x, model %#x%s%s", what,
			     (long)(m - F.mms), i, off + k, got[k], want ? want[off + k] : 0,
			     p->shared ? " (shared)" : "", p->maybe_zero ? " (or zero)" : "");
	}
}

static void check_validate(bool final)
{
	char msg[256] = "";
	unsigned int flags = UMM_VALIDATE_RMAP | UMM_VALIDATE_EXACT;
	int r;

	for (int g = 0; g < NR_GUP; g++)
		if (F.gup[g].held)
			flags &= ~UMM_VALIDATE_EXACT;	/* a GUP reference is outstanding */
	r = umm_validate(F.u, flags, msg, sizeof(msg));
	if (r)
		fail("umm_validate%s: %d: %s", final ? " (final)" : "", r, msg);
}

static void check_recs(void)
{
	for (int k = 0; k < NR_MMS; k++) {
		struct rec *subs[] = { F.mms[k].rec, F.mms[k].gsub };

		for (int j = 0; j < 2; j++)
			if (subs[j] && subs[j]->active)
				fail("%s of mm %d: %d invalidations started and not ended",
				     j ? "get() subscription" : "subscriber", k, subs[j]->active);
	}
}

/* Read every page of @m and compare. */
static void check_all(struct fmm *m)
{
	for (unsigned int i = 0; i < WIN; i++) {
		struct mpage *p = &m->pg[i];
		ssize_t r = umm_read(m->mm, AT(i), F.buf, PS);

		if (!page_readable(p) || !page_backed(p)) {
			/* past EOF the fault needs its page table first: -ENOMEM under injection */
			if (r != -EFAULT && !(page_readable(p) && F.faults_on && r == -ENOMEM))
				fail("read of unreadable page %u: %zd", i, r);
			continue;
		}
		if (r == PS) {
			check_bytes(m, i, 0, F.buf, PS, "check_all");
			continue;
		}
		if (m->reaped && r == -EFAULT)
			continue;
		if (!F.faults_on || (r != -ENOMEM && r != -EIO))
			fail("read of mm %ld page %u: %zd", (long)(m - F.mms), i, r);
	}
}

/* ---- the recording subscriber ---- */

static struct rec *to_rec(struct umm_mmu_notifier *sub)
{
	return (struct rec *)sub;
}

/* Drop the cached translations in [start, end), telling the checker. */
static void rec_zap(struct rec *r, uint64_t start, uint64_t end)
{
	for (int k = 0; k < REC_XLATS; k++)
		if (r->xvalid[k] && r->xaddr[k] >= start && r->xaddr[k] < end) {
			umm_mmu_notifier_check_unmap(&r->mn, r->xaddr[k], r->xaddr[k] + PS);
			r->xvalid[k] = false;
		}
}

static void rec_cache(struct rec *r, uint64_t addr, uint64_t pfn)
{
	int k = (addr / PS) % REC_XLATS;

	rec_zap(r, r->xaddr[k], r->xaddr[k] + PS);
	rec_zap(r, addr, addr + PS);
	r->xaddr[k] = addr;
	r->xpfn[k] = pfn;
	r->xvalid[k] = true;
	umm_mmu_notifier_check_map(&r->mn, addr, pfn);
}

static int rec_start(struct umm_mmu_notifier *sub, const struct umm_mmu_notifier_range *range)
{
	struct rec *r = to_rec(sub);

	if (!r->registered)
		fail("invalidate_range_start after unregister");
	if (r->released)
		fail("invalidate_range_start after release");
	if (range->start >= range->end)
		fail("empty invalidation [%#llx, %#llx)", (unsigned long long)range->start,
		     (unsigned long long)range->end);
	if (r->fail_nonblock && !(range->flags & UMM_MMU_NOTIFIER_RANGE_BLOCKABLE)) {
		r->eagain++;
		return -EAGAIN;
	}
	rec_zap(r, range->start, range->end);
	r->active++;
	r->starts++;
	return 0;
}

static void rec_end(struct umm_mmu_notifier *sub, const struct umm_mmu_notifier_range *range)
{
	struct rec *r = to_rec(sub);

	if (!r->registered)
		fail("invalidate_range_end after unregister");
	if (--r->active < 0)
		fail("invalidate_range_end without a start");
	r->ends++;
}

static void rec_release(struct umm_mmu_notifier *sub, struct umm_mm *mm)
{
	struct rec *r = to_rec(sub);

	if (!r->registered)
		fail("release after unregister");
	if (r->released)
		fail("release twice");
	rec_zap(r, 0, UINT64_MAX);
	r->released = true;
}

static int rec_young(struct umm_mmu_notifier *sub, struct umm_mm *mm, uint64_t start,
		     uint64_t end)
{
	if (!to_rec(sub)->registered)
		fail("clear_young after unregister");
	return 0;
}

/* umm_mmu_notifier_get() allocates a recording subscriber; its last put() frees it. */
static struct umm_mmu_notifier *rec_alloc(struct umm_mm *mm)
{
	struct rec *r = calloc(1, sizeof(*r));

	r->registered = true;
	return &r->mn;
}

static void rec_free(struct umm_mmu_notifier *sub)
{
	F.gsub_freed++;
	free(to_rec(sub));
}

/* Both for umm_mmu_notifier_register() (which ignores alloc/free) and get(). */
static const struct umm_mmu_notifier_ops rec_ops = {
	.release = rec_release,
	.invalidate_range_start = rec_start,
	.invalidate_range_end = rec_end,
	.clear_flush_young = rec_young,
	.clear_young = rec_young,
	.alloc_notifier = rec_alloc,
	.free_notifier = rec_free,
};

static void rec_unregister(struct fmm *m)
{
	struct rec *r = m->rec;

	if (!r->released)
		rec_zap(r, 0, UINT64_MAX);
	umm_mmu_notifier_unregister(&r->mn, m->mm);
	if (r->active)
		fail("unregister with %d invalidations outstanding", r->active);
	r->registered = false;
	free(r);
	m->rec = NULL;
}

/* ---- operations ---- */

static struct fmm *pick_mm(void)
{
	uint8_t b = in8();

	for (int k = 0; k < NR_MMS; k++) {
		struct fmm *m = &F.mms[(b + k) % NR_MMS];

		if (m->mm)
			return m;
	}
	return NULL;
}

/* A page range [*first, *first + *n) inside the window. */
static void pick_range(unsigned int *first, unsigned int *n)
{
	*first = in8() % WIN;
	*n = 1 + in8() % 8;
	if (*first + *n > WIN)
		*n = WIN - *first;
}

/*
 * Bad-argument variants shared by the range calls: 0 none, 1 unaligned
 * start, 2 zero length, 3 a length that wraps, 4 a range past TASK_SIZE.
 */
static int pick_bad(uint64_t *addr, uint64_t *len)
{
	uint8_t b = in8();
	int bad = b < 200 ? 0 : 1 + b % 4;

	switch (bad) {
	case 1: *addr += 1 + b % 100; break;
	case 2: *len = 0; break;
	case 3: *len = UINT64_MAX - PS + 1; break;
	case 4: *addr = UMM_TASK_SIZE - PS; *len = 4 * PS; break;
	}
	return bad;
}

/* The arguments of a range call: pages, then the bytes passed, maybe made bad. */
struct rargs {
	unsigned int first, n;
	uint64_t addr, len;
	int bad;
};

static void pick_rargs(struct rargs *a)
{
	pick_range(&a->first, &a->n);
	a->addr = AT(a->first);
	a->len = (uint64_t)a->n * PS;
	a->bad = pick_bad(&a->addr, &a->len);
}

static void expect_err(int r, int bad, const char *what)
{
	/* a zero-length range is a no-op for munmap/mprotect/madvise/mlock: 0 or -EINVAL */
	if (bad == 2 && r == 0)
		return;
	if (r != -EINVAL && !(bad == 4 && r == -ENOMEM))
		fail("%s with bad argument %d returned %d, not -EINVAL", what, bad, r);
}

/*
 * A call the model expected to succeed returned @r: only -ENOMEM, and only
 * while faults are injected; it may have done part of its work (as Linux
 * can), so the layout is taken from the engine.  Return: whether it failed.
 */
static bool failed_under_faults(struct fmm *m, int r, const char *what)
{
	if (!r)
		return false;
	if (!F.faults_on || r != -ENOMEM)
		fail("%s: %d", what, r);
	check_layout(m, true, what);
	return true;
}

static bool range_has_hole(struct fmm *m, unsigned int first, unsigned int n)
{
	for (unsigned int i = first; i < first + n; i++)
		if (!m->pg[i].mapped)
			return true;
	return false;
}

/* The model's side of a successful mmap of pages [first, first + n): fresh pages. */
static void model_map(struct fmm *m, unsigned int first, unsigned int n, int prot, int flags)
{
	for (unsigned int i = first; i < first + n; i++) {
		mpage_clear(&m->pg[i]);
		m->pg[i].mapped = true;
		m->pg[i].prot = prot;
		m->pg[i].locked = flags & UMM_MAP_LOCKED;
	}
}

static void op_mmap(void)
{
	struct fmm *m = pick_mm();
	unsigned int first, n, i;
	uint8_t f = in8();
	int prot = in8() & 7, flags;
	uint64_t addr, len, out = 0;
	bool shared = f & 1;
	int bad, r;

	pick_range(&first, &n);
	if (!m)
		return;
	addr = AT(first);
	len = (uint64_t)n * PS;
	flags = (shared ? UMM_MAP_SHARED : UMM_MAP_PRIVATE) | UMM_MAP_ANONYMOUS |
		(f & 2 ? UMM_MAP_POPULATE : 0) | (f & 4 ? UMM_MAP_LOCKED : 0) |
		(f & 8 ? UMM_MAP_FIXED_NOREPLACE : UMM_MAP_FIXED);
	bad = pick_bad(&addr, &len);
	if (!bad && (f & 0x30) == 0x30) {
		bad = 5;
		flags |= f & 0x40 ? 0x400000 : (UMM_MAP_SHARED | UMM_MAP_PRIVATE);
		if (f & 0x80)
			flags &= ~(UMM_MAP_SHARED | UMM_MAP_PRIVATE), flags |= f & 0x40 ? 0 : 0x3;
	}
	TRACE("mmap mm%ld %#llx +%llu prot %d flags %#x bad %d", (long)(m - F.mms),
	      (unsigned long long)addr, (unsigned long long)len, prot, flags, bad);
	r = umm_mmap(m->mm, addr, len, prot, flags, NULL, 0, &out);
	if (bad) {
		if (r == 0)
			fail("mmap with bad argument %d succeeded at %#llx", bad,
			     (unsigned long long)out);
		check_layout(m, false, "bad mmap");
		return;
	}
	if (flags & UMM_MAP_FIXED_NOREPLACE) {
		bool busy = false;

		for (i = first; i < first + n; i++)
			busy |= m->pg[i].mapped;
		if (busy) {
			/* the engine may fail to allocate before it looks: -ENOMEM too */
			if (r != -EEXIST && !(F.faults_on && r == -ENOMEM))
				fail("MAP_FIXED_NOREPLACE over a mapping: %d", r);
			check_layout(m, false, "mmap noreplace");
			return;
		}
	}
	if (failed_under_faults(m, r, "mmap"))
		return;
	if (out != addr)
		fail("MAP_FIXED at %#llx returned %#llx", (unsigned long long)addr,
		     (unsigned long long)out);
	model_map(m, first, n, prot, flags);
	struct sobj *o = shared ? sobj_new(n) : NULL;
	for (i = first; o && i < first + n; i++) {
		struct mpage *p = &m->pg[i];

		p->shared = true;
		p->obj = o;
		p->objpg = i - first;
		o->refs++;
	}
	check_layout(m, false, "mmap");
}

static void op_munmap(void)
{
	struct fmm *m = pick_mm();
	struct rargs a;
	int r;

	pick_rargs(&a);
	if (!m)
		return;
	TRACE("munmap mm%ld page %u +%u bad %d", (long)(m - F.mms), a.first, a.n, a.bad);
	r = umm_munmap(m->mm, a.addr, a.len);
	if (a.bad) {
		expect_err(r, a.bad, "munmap");
		check_layout(m, false, "bad munmap");
		return;
	}
	if (failed_under_faults(m, r, "munmap"))
		return;
	for (unsigned int i = a.first; i < a.first + a.n; i++)
		mpage_clear(&m->pg[i]);
	check_layout(m, false, "munmap");
}

static void op_mprotect(void)
{
	struct fmm *m = pick_mm();
	struct rargs a;
	int prot = in8();
	int r;

	pick_rargs(&a);
	if (!m)
		return;
	if (!a.bad && (prot & 0xf8) == 0xf8)
		a.bad = 5;		/* unknown prot bits */
	else
		prot &= 7;
	TRACE("mprotect mm%ld page %u +%u prot %#x bad %d", (long)(m - F.mms), a.first, a.n, prot, a.bad);
	r = umm_mprotect(m->mm, a.addr, a.len, prot);
	if (a.bad) {
		expect_err(r, a.bad, "mprotect");
		check_layout(m, false, "bad mprotect");
		return;
	}
	if (range_has_hole(m, a.first, a.n)) {
		bool ro = false;

		/* VMAs go in order: one that may not be written, before the hole, answers */
		for (unsigned int i = a.first; i < a.first + a.n && m->pg[i].mapped; i++)
			ro |= (prot & UMM_PROT_WRITE) && (m->pg[i].ro_file || m->pg[i].ro_unknown);
		if (r != -ENOMEM && !(ro && r == -EACCES))
			fail("mprotect over a hole: %d, not -ENOMEM", r);
		check_layout(m, true, "mprotect over a hole");
		return;
	}
	if (prot & UMM_PROT_WRITE) {
		bool ro = false, maybe = false;

		/* a shared mapping of a file opened read-only can never be written */
		for (unsigned int i = a.first; i < a.first + a.n; i++) {
			ro |= m->pg[i].ro_file;
			maybe |= m->pg[i].ro_unknown;
		}
		if (ro || (maybe && r == -EACCES)) {
			if (r != -EACCES && !(F.faults_on && r == -ENOMEM))
				fail("mprotect(WRITE) of a read-only file's shared mapping: %d", r);
			check_layout(m, true, "mprotect -EACCES");
			return;
		}
	}
	if (failed_under_faults(m, r, "mprotect"))
		return;
	for (unsigned int i = a.first; i < a.first + a.n; i++)
		m->pg[i].prot = prot;
	check_layout(m, false, "mprotect");
}

/* Move the model's pages [ofirst, ofirst + n) to [nfirst, ...) of the same mm. */
static void model_move(struct fmm *m, unsigned int ofirst, unsigned int onum, unsigned int nfirst,
		       unsigned int nnum, bool dontunmap)
{
	struct mpage tmp[WIN];
	unsigned int keep = onum < nnum ? onum : nnum, i;

	memset(tmp, 0, sizeof(tmp));
	for (i = 0; i < keep; i++)
		mpage_copy(&tmp[i], &m->pg[ofirst + i]);
	for (i = keep; i < nnum; i++) {		/* grown tail: private zeros */
		tmp[i] = m->pg[ofirst + onum - 1];
		tmp[i].obj = NULL;
		tmp[i].data = NULL;
		tmp[i].maybe_zero = false;
	}
	for (i = 0; i < onum; i++) {
		struct mpage *p = &m->pg[ofirst + i];

		if (dontunmap && i < keep) {
			/* stays mapped, its pages moved away: zeros again */
			free(p->data);
			p->data = NULL;
			p->maybe_zero = false;
			p->locked = false;	/* VM_LOCKED moves with the pages */
		} else {
			mpage_clear(p);
		}
	}
	for (i = 0; i < nnum; i++) {
		mpage_clear(&m->pg[nfirst + i]);
		m->pg[nfirst + i] = tmp[i];
	}
}

static void op_mremap(void)
{
	struct fmm *m = pick_mm();
	unsigned int ofirst, onum, nfirst, nnum;
	uint8_t f = in8();
	uint64_t oaddr, olen, out = 0;
	int flags = 0, r, bad;
	bool any_shared = false;

	pick_range(&ofirst, &onum);
	nfirst = in8() % WIN;
	nnum = 1 + in8() % 8;
	if (!m)
		return;
	oaddr = AT(ofirst);
	olen = (uint64_t)onum * PS;
	bad = pick_bad(&oaddr, &olen);
	if (bad == 2) {
		/* old_len 0 duplicates a shared mapping on Linux: not a bad argument */
		olen = (uint64_t)onum * PS;
		oaddr += 1;
		bad = 1;
	}
	switch (f & 3) {
	case 0: nfirst = ofirst; break;				/* in place */
	case 1: flags = UMM_MREMAP_MAYMOVE; nfirst = ofirst; break;
	case 2: flags = UMM_MREMAP_MAYMOVE | UMM_MREMAP_FIXED; break;
	case 3: flags = UMM_MREMAP_MAYMOVE | UMM_MREMAP_FIXED | UMM_MREMAP_DONTUNMAP;
		nnum = onum; break;
	}
	if (f & 0x80) {
		bad = bad ? bad : 6;
		flags = f & 0x40 ? UMM_MREMAP_FIXED : 0x40;	/* FIXED without MAYMOVE; unknown */
	}
	if (nfirst + nnum > WIN)
		nnum = WIN - nfirst;
	if (!bad) {
		for (unsigned int i = ofirst; i < ofirst + onum; i++)
			any_shared |= m->pg[i].shared || m->pg[i].unknown || m->pg[i].file;
		/* growing a shared object or a file mapping, or DONTUNMAP of one: not modelled */
		if (any_shared && (nnum > onum || (flags & UMM_MREMAP_DONTUNMAP)))
			return;
	}
	TRACE("mremap mm%ld page %u +%u -> page %u +%u flags %#x bad %d", (long)(m - F.mms),
	      ofirst, onum, nfirst, nnum, flags, bad);
	r = umm_mremap(m->mm, oaddr, olen, (uint64_t)nnum * PS, flags, AT(nfirst), &out);
	if (bad) {
		if (r == 0)
			fail("mremap with bad argument %d succeeded", bad);
		check_layout(m, false, "bad mremap");
		return;
	}
	if (r) {
		/* the rules (one VMA, room to grow, overlap) are the engine's to apply */
		check_layout(m, true, "mremap");
		return;
	}
	if (flags & UMM_MREMAP_FIXED) {
		if (out != AT(nfirst))
			fail("MREMAP_FIXED to %#llx returned %#llx", (unsigned long long)AT(nfirst),
			     (unsigned long long)out);
	} else if (out != oaddr && out >= BASE && out < AT(WIN)) {
		nfirst = (out - BASE) / PS;
		if (nfirst + nnum > WIN)
			fail("mremap moved to %#llx, across the window's end",
			     (unsigned long long)out);
	} else if (out != oaddr) {
		/* moved out of the window: follow it there no further */
		if (range_has_hole(m, ofirst, onum))
			fail("mremap of a range with a hole succeeded");
		for (unsigned int i = ofirst; i < ofirst + onum; i++)
			mpage_clear(&m->pg[i]);
		if (umm_munmap(m->mm, out, (uint64_t)nnum * PS))
			fail("munmap of the moved range failed");
		check_layout(m, false, "mremap away");
		return;
	} else {
		nfirst = ofirst;
	}
	if (range_has_hole(m, ofirst, onum))
		fail("mremap of a range with a hole succeeded");
	model_move(m, ofirst, onum, nfirst, nnum, flags & UMM_MREMAP_DONTUNMAP);
	check_layout(m, false, "mremap");
}

static const int advices[] = {
	UMM_MADV_NORMAL, UMM_MADV_WILLNEED, UMM_MADV_DONTNEED, UMM_MADV_MERGEABLE,
	UMM_MADV_UNMERGEABLE, UMM_MADV_COLD, UMM_MADV_PAGEOUT, UMM_MADV_DONTNEED,
	UMM_MADV_MERGEABLE, UMM_MADV_PAGEOUT, 1, 2, 99, -1,
};

static void op_madvise(void)
{
	struct fmm *m = pick_mm();
	struct rargs a;
	unsigned int i;
	int advice = advices[in8() % (sizeof(advices) / sizeof(advices[0]))];
	/* RANDOM (1) and SEQUENTIAL (2) are not in umm's contract: unknown, as 99 and -1 */
	bool known = advice != 99 && advice != -1 && advice != 1 && advice != 2;
	int r;

	pick_rargs(&a);
	if (!m)
		return;
	TRACE("madvise mm%ld page %u +%u advice %d bad %d", (long)(m - F.mms), a.first, a.n,
	      advice, a.bad);
	r = umm_madvise(m->mm, a.addr, a.len, advice);
	if (!known) {
		if (r != -EINVAL)
			fail("madvise advice %d: %d, not -EINVAL", advice, r);
		check_layout(m, false, "madvise bad advice");
		return;
	}
	if (a.bad) {
		expect_err(r, a.bad, "madvise");
		check_layout(m, false, "bad madvise");
		return;
	}
	if (advice == UMM_MADV_DONTNEED) {
		for (i = a.first; i < a.first + a.n; i++) {
			struct mpage *p = &m->pg[i];

			if (!p->mapped || p->shared)
				continue;
			if (r == 0 && !p->locked) {
				free(p->data);
				p->data = NULL;
				p->maybe_zero = false;
			} else if (p->file) {
				/* its COW copy may be gone: the file's bytes again, or not */
				p->unknown |= p->data != NULL;
			} else {
				p->maybe_zero = true;
			}
		}
	}
	if (range_has_hole(m, a.first, a.n)) {
		bool locked = false;

		/* as Linux: a VMA that refuses the advice (VM_LOCKED) answers a.first */
		for (i = a.first; i < a.first + a.n; i++)
			locked |= m->pg[i].mapped && m->pg[i].locked;
		if (r != -ENOMEM && !(locked && r == -EINVAL))
			fail("madvise %d over a hole: %d, not -ENOMEM", advice, r);
	} else if (r && r != -EINVAL && r != -EAGAIN && !(F.faults_on && r == -ENOMEM)) {
		fail("madvise %d: %d", advice, r);
	}
	check_layout(m, false, "madvise");
}

static void op_mlock(bool lock)
{
	struct fmm *m = pick_mm();
	struct rargs a;
	int r;

	pick_rargs(&a);
	if (!m)
		return;
	TRACE("%s mm%ld page %u +%u bad %d", lock ? "mlock" : "munlock", (long)(m - F.mms), a.first,
	      a.n, a.bad);
	r = lock ? umm_mlock(m->mm, a.addr, a.len) : umm_munlock(m->mm, a.addr, a.len);
	if (lock)
		model_sync_cow(m, a.first, a.n);
	if (a.bad) {
		/* mlock(2) rounds an unaligned start down: 0 or -ENOMEM are answers too */
		if (a.bad != 1 || (r != 0 && r != -ENOMEM))
			expect_err(r, a.bad, lock ? "mlock" : "munlock");
		check_layout(m, r == 0, "bad mlock");
		return;
	}
	if (range_has_hole(m, a.first, a.n)) {
		if (r != -ENOMEM)
			fail("%s over a hole: %d, not -ENOMEM", lock ? "mlock" : "munlock", r);
		check_layout(m, true, "mlock over a hole");
		return;
	}
	for (unsigned int i = a.first; i < a.first + a.n && lock; i++) {
		if (page_backed(&m->pg[i]))
			continue;
		/* as Linux: the VMAs are locked, populating past EOF fails: -ENOMEM */
		if (r && r != -ENOMEM)
			fail("mlock over a file's end: %d", r);
		check_layout(m, true, "mlock past EOF");
		return;
	}
	if (r) {
		if (!F.faults_on || (r != -ENOMEM && r != -EAGAIN))
			fail("%s: %d", lock ? "mlock" : "munlock", r);
		check_layout(m, true, "mlock");
		return;
	}
	for (unsigned int i = a.first; i < a.first + a.n; i++)
		m->pg[i].locked = lock;
	check_layout(m, false, lock ? "mlock" : "munlock");
}

/* How many bytes from page @i offset @off an access of @len can reach. */
static size_t reachable(struct fmm *m, unsigned int i, unsigned int off, size_t len, bool write)
{
	size_t done = 0;

	while (done < len && i < WIN) {
		struct mpage *p = &m->pg[i];
		size_t chunk = PS - off;

		if (!p->mapped || !(write ? p->prot & UMM_PROT_WRITE : page_readable(p)) ||
		    !page_backed(p))
			break;
		if (chunk > len - done)
			chunk = len - done;
		done += chunk;
		off = 0;
		i++;
	}
	return done;
}

static void op_access(bool write)
{
	struct fmm *m = pick_mm();
	unsigned int i = in8() % WIN, off = in16() % PS;
	size_t len = 1 + in16() % (PS + 64), reach;
	uint8_t seed = in8();
	ssize_t r;

	if (!m)
		return;
	if (AT(i) + off + len > AT(WIN))
		len = AT(WIN) - AT(i) - off;
	reach = reachable(m, i, off, len, write);
	TRACE("%s mm%ld page %u off %u len %zu", write ? "write" : "read", (long)(m - F.mms), i,
	      off, len);
	if (write) {
		for (size_t k = 0; k < len; k++)
			F.buf[k] = (uint8_t)(seed + k * 7 + F.step);
		r = umm_write(m->mm, AT(i) + off, F.buf, len);
	} else {
		r = umm_read(m->mm, AT(i) + off, F.buf, len);
	}
	if (m->reaped && r == -EFAULT)
		return;			/* what the reaper took does not come back */
	if (reach == 0) {
		if (r != -EFAULT && !(F.faults_on && (r == -ENOMEM || r == -EIO)))
			fail("%s with no access: %zd, not -EFAULT", write ? "write" : "read", r);
		return;
	}
	if (r < 0) {
		if (!F.faults_on || (r != -ENOMEM && r != -EIO))
			fail("%s of %zu reachable bytes: %zd", write ? "write" : "read", reach, r);
		return;
	}
	if ((size_t)r != reach && !((F.faults_on || m->reaped) && (size_t)r < reach))
		fail("%s at page %u+%u: %zd bytes, the model says %zu", write ? "write" : "read",
		     i, off, r, reach);
	/* apply or check page by page */
	for (size_t done = 0; done < (size_t)r; ) {
		unsigned int pg = i + (off + done) / PS, po = (off + done) % PS;
		size_t chunk = PS - po;

		if (chunk > (size_t)r - done)
			chunk = (size_t)r - done;
		if (write) {
			struct mpage *p = &m->pg[pg];

			if (!p->unknown) {
				uint8_t *s;

				if (p->maybe_zero) {	/* its state is unknown until read */
					p->unknown = true;
				} else {
					s = mpage_store(p);
					memcpy(s + po, F.buf + done, chunk);
					if (F.corrupt)
						s[po] ^= 0x40;
				}
			}
		} else {
			check_bytes(m, pg, po, F.buf + done, chunk, "read");
		}
		done += chunk;
	}
}

static void op_fork(void)
{
	struct fmm *parent = pick_mm(), *child = NULL;
	int r;

	for (int k = 0; k < NR_MMS; k++)
		if (!F.mms[k].mm) {
			child = &F.mms[k];
			break;
		}
	if (!parent || !child || parent->reaped)
		return;		/* a reaped mm is dying: it does not fork */
	TRACE("fork mm%ld -> mm%ld", (long)(parent - F.mms), (long)(child - F.mms));
	r = umm_mm_fork(parent->mm, &child->mm);
	if (r) {
		if (!F.faults_on || r != -ENOMEM)
			fail("fork: %d", r);
		child->mm = NULL;
		return;
	}
	for (unsigned int i = 0; i < WIN; i++) {
		mpage_copy(&child->pg[i], &parent->pg[i]);
		child->pg[i].locked = false;		/* mlock is not inherited */
	}
	child->merge_any = parent->merge_any;
	check_layout(child, false, "fork");
}

static void ivl_remove(struct fmm *m);
static void gsub_put_all(struct fmm *m);

static void mm_gone(struct fmm *m)
{
	if (m->rec) {
		if (!m->rec->released)
			fail("mm exited without ->release");
		rec_unregister(m);
	}
	if (m->gsub && !m->gsub->released)
		fail("mm exited without ->release of its get() subscription");
	if (m->ivl)
		ivl_remove(m);		/* after exit, as a driver may: the interval holds the mm */
	if (m->gsub_refs)
		gsub_put_all(m);
	for (unsigned int i = 0; i < WIN; i++)
		mpage_clear(&m->pg[i]);
	m->mm = NULL;
	m->reaped = false;
	m->merge_any = false;
}

static void op_exit(void)
{
	struct fmm *m = pick_mm();

	if (!m)
		return;
	TRACE("exit mm%ld", (long)(m - F.mms));
	umm_mm_exit(m->mm);
	mm_gone(m);
}

static void op_create(void)
{
	int r;

	for (int k = 0; k < NR_MMS; k++) {
		struct fmm *m = &F.mms[k];

		if (m->mm)
			continue;
		TRACE("create mm%d", k);
		r = umm_mm_create(F.u, &m->mm);
		if (r && !(F.faults_on && r == -ENOMEM))
			fail("umm_mm_create: %d", r);
		if (r)
			m->mm = NULL;
		memset(m->pg, 0, sizeof(m->pg));
		return;
	}
}

static void op_gup(void)
{
	struct fmm *m = pick_mm();
	unsigned int i = in8() % WIN;
	uint8_t f = in8();
	struct gup *g = &F.gup[f % NR_GUP];
	unsigned int flags = f & 0x80 ? UMM_GUP_WRITE : 0;
	struct umm_page *page;
	struct mpage *p;
	int r;

	if (g->held) {
		TRACE("put_page %u", f % NR_GUP);
		umm_put_page(g->page);
		g->held = false;
		return;
	}
	if (!m)
		return;
	p = &m->pg[i];
	TRACE("gup mm%ld page %u flags %u", (long)(m - F.mms), i, flags);
	r = umm_get_user_page(m->mm, AT(i) + (f & 0x40 ? 123 : 0), flags, &page);
	if (r) {
		/* GUP wants VM_READ (or VM_WRITE for a write), unlike a CPU access */
		bool may = !p->mapped || !(p->prot & UMM_PROT_READ) || !page_backed(p) ||
			   ((flags & UMM_GUP_WRITE) && !(p->prot & UMM_PROT_WRITE));
		if (r != -EFAULT || !(may || m->reaped)) {
			if (!F.faults_on || (r != -ENOMEM && r != -EIO))
				fail("gup of page %u (mapped %d prot %d) flags %u: %d", i, p->mapped,
				     p->prot, flags, r);
		}
		return;
	}
	if (!p->mapped || !page_readable(p) || !page_backed(p) ||
	    ((flags & UMM_GUP_WRITE) && !(p->prot & UMM_PROT_WRITE)))
		fail("gup of page %u (mapped %d prot %d) flags %u succeeded", i, p->mapped,
		     p->prot, flags);
	model_sync_cow(m, i, 1);
	check_bytes(m, i, 0, umm_page_address(page), PS, "gup");
	if (m->rec && !m->rec->released)
		rec_cache(m->rec, AT(i), umm_page_pfn(page));
	g->page = page;
	g->held = true;
}

static void op_pagemap(void)
{
	struct fmm *m = pick_mm();
	unsigned int i = in8() % WIN;
	struct umm_pageinfo pi;
	int r;

	if (!m)
		return;
	r = umm_pagemap(m->mm, AT(i), &pi);
	if (m->pg[i].mapped ? r != 0 : r != -EFAULT)
		fail("pagemap of page %u (mapped %d): %d", i, m->pg[i].mapped, r);
	if (r == 0 && (pi.flags & UMM_PI_PRESENT) && !(pi.flags & UMM_PI_ZERO) &&
	    pi.mapcount < 1 && !(pi.flags & UMM_PI_KSM))
		fail("pagemap: present page %u with mapcount %d", i, pi.mapcount);
	if (r == 0 && (pi.flags & UMM_PI_PRESENT) && (pi.flags & UMM_PI_MLOCKED) &&
	    !m->pg[i].locked)
		fail("pagemap: page %u mlocked in a VMA that is not", i);
}

static void op_rmap(void)
{
	struct fmm *m = pick_mm();
	unsigned int i = in8() % WIN, which = in8() % 4;
	int r = 0;

	if (!m)
		return;
	TRACE("rmap op %u mm%ld page %u", which, (long)(m - F.mms), i);
	switch (which) {
	case 0: r = umm_page_referenced(m->mm, AT(i)); break;
	case 1: r = umm_page_mkclean(m->mm, AT(i)); break;
	case 2: r = umm_try_to_unmap(m->mm, AT(i)); break;
	case 3: r = umm_page_rmap_count(m->mm, AT(i)); break;
	}
	if (r < 0 && r != -EFAULT && r != -EBUSY && r != -EAGAIN &&
	    !(F.faults_on && (r == -ENOMEM || r == -EIO)))
		fail("rmap op %u on page %u: %d", which, i, r);
}

static void op_ksm(void)
{
	uint8_t b = in8();
	struct fmm *m;
	int r;

	switch (b % 4) {
	case 0:
	case 1:
		TRACE("ksm scan %u", 1 + b);
		r = umm_ksm_scan(F.u, 1 + b);
		if (r < 0)
			fail("umm_ksm_scan: %d", r);
		break;
	case 2:
		m = pick_mm();
		if (!m)
			return;
		m->merge_any = !m->merge_any;
		TRACE("merge_any mm%ld %d", (long)(m - F.mms), m->merge_any);
		r = umm_mm_set_merge_any(m->mm, m->merge_any);
		if (r && !(F.faults_on && r == -ENOMEM))
			fail("umm_mm_set_merge_any: %d", r);
		if (r)
			m->merge_any = !m->merge_any;
		break;
	case 3:
		/* unmerge everything, then back to "stopped" (scans stay manual) */
		TRACE("ksm unmerge all");
		r = umm_ksm_set_run(F.u, 2);
		if (r && !(F.faults_on && r == -ENOMEM))
			fail("umm_ksm_set_run(2): %d", r);
		umm_ksm_set_run(F.u, 0);
		break;
	}
}

static void op_reclaim(void)
{
	unsigned long got = 0;
	unsigned int n = 1 + in8() % 64;
	int r;

	TRACE("reclaim %u", n);
	r = umm_reclaim(F.u, n, &got);
	/* "up to nr_pages", says vmscan.h; reclaim works in batches of 32 (see RELIABILITY.md) */
	if (r || got > n + 32)
		fail("umm_reclaim(%u): %d, %lu reclaimed", n, r, got);
}

static void op_move_pages(void)
{
	struct fmm *m = pick_mm();
	unsigned int cnt = in8() % 5;
	uint8_t f = in8();
	uint64_t addrs[4];
	int nodes[4], status[4];
	bool bad_node = false;
	int r;

	for (unsigned int k = 0; k < 4; k++) {
		addrs[k] = AT(in8() % WIN);
		nodes[k] = (f >> k) & 1;
		if (f == 0xff && k == 0)
			nodes[k] = 7, bad_node = true;
	}
	if (!m)
		return;
	TRACE("move_pages mm%ld %u pages", (long)(m - F.mms), cnt);
	r = umm_move_pages(m->mm, cnt, addrs, f & 0x40 && !bad_node ? NULL : nodes, status);
	if (bad_node && cnt) {
		if (r != -ENODEV)
			fail("move_pages to a node that does not exist: %d", r);
		return;
	}
	if (r && !(cnt == 0 && r == -EINVAL) && !(F.faults_on && r == -ENOMEM))
		fail("move_pages: %d", r);
	for (unsigned int k = 0; k < cnt && !r; k++) {
		int s = status[k];

		if (s != 0 && s != 1 && s != -ENOENT && s != -EFAULT && s != -EBUSY &&
		    s != -ENOMEM)
			fail("move_pages: status %d", s);
		if (s == -EFAULT && m->pg[(addrs[k] - BASE) / PS].mapped)
			fail("move_pages: -EFAULT for a mapped page");
	}
}

/*
 * The OOM reaper over an mm: private ranges go (their pages then fault with
 * -EFAULT), shared ones stay; a subscriber or interval notifier refusing the
 * non-blockable start keeps its range mapped (-EAGAIN).  Bytes still
 * readable must be the model's.
 */
static void op_oom_reap(void)
{
	struct fmm *m = pick_mm();
	int r;

	if (!m)
		return;
	TRACE("oom_reap mm%ld", (long)(m - F.mms));
	r = umm_mm_oom_reap(m->mm);
	if (r && r != -EAGAIN)
		fail("umm_mm_oom_reap: %d", r);
	if (r == -EAGAIN && !(m->rec && m->rec->fail_nonblock) &&
	    !(m->ivl && m->ivl->fail_nonblock) && !F.faults_on)
		fail("umm_mm_oom_reap: -EAGAIN with no subscriber refusing");
	m->reaped = true;
	check_layout(m, false, "oom_reap");
}

static void op_compact(void)
{
	uint64_t start = 0;
	unsigned int nr = 1u << (in8() % 6);
	int r;

	TRACE("compact %u", nr);
	r = umm_compact(F.u, 0, nr, &start);
	if (r && r != -EBUSY && r != -ENOMEM)
		fail("umm_compact(%u): %d", nr, r);
}

static void op_notifier(void)
{
	struct fmm *m = pick_mm();
	uint8_t f = in8();
	int r;

	if (!m)
		return;
	if (m->rec) {
		if (f & 1) {
			m->rec->fail_nonblock = !m->rec->fail_nonblock;
			return;
		}
		TRACE("unregister mm%ld", (long)(m - F.mms));
		rec_unregister(m);
		return;
	}
	TRACE("register mm%ld", (long)(m - F.mms));
	m->rec = calloc(1, sizeof(*m->rec));
	m->rec->mn.ops = &rec_ops;
	m->rec->registered = true;
	m->rec->fail_nonblock = f & 2;
	r = umm_mmu_notifier_register(&m->rec->mn, m->mm);
	if (r) {
		if (!F.faults_on || r != -ENOMEM)
			fail("umm_mmu_notifier_register: %d", r);
		free(m->rec);
		m->rec = NULL;
	}
}

/* ---- files ---- */

/* What reached the real file (pread) must be the model's bytes of file page @fpg. */
static void check_file_page(unsigned int fpg, const char *what)
{
	uint8_t got[PS];
	ssize_t n = pread(F.check_fd, got, PS, (off_t)fpg * PS);

	if (n != PS)
		fail("%s: pread of file page %u: %zd", what, fpg, n);
	for (unsigned int k = 0; k < PS; k++)
		if (got[k] != F.fbytes[(size_t)fpg * PS + k])
			fail("%s: file page %u offset %u: the file holds %#x, model %#x", what, fpg,
			     k, got[k], F.fbytes[(size_t)fpg * PS + k]);
}

/* Does any mm map the file (or something the model does not know)? */
static bool file_maybe_mapped(void)
{
	for (int k = 0; k < NR_MMS; k++)
		for (unsigned int i = 0; F.mms[k].mm && i < WIN; i++)
			if (F.mms[k].pg[i].file || F.mms[k].pg[i].unknown)
				return true;
	return false;
}

static int file_reopen(void)
{
	int r = 0;

	if (!F.file)
		r = umm_file_open(F.u, F.file_path, O_RDWR, &F.file);
	if (!r && !F.rofile)
		r = umm_file_open(F.u, F.file_path, O_RDONLY, &F.rofile);
	if (r && !(F.faults_on && r == -ENOMEM))
		fail("umm_file_open(%s): %d", F.file_path, r);
	return r;
}

/* Drop both handles; with no mapping left the last put writes everything back. */
static void file_put_all(const char *what)
{
	bool mapped = file_maybe_mapped();

	umm_file_put(F.file);
	umm_file_put(F.rofile);
	F.file = F.rofile = NULL;
	if (mapped)
		return;
	for (unsigned int fpg = 0; fpg < FPAGES; fpg++)
		check_file_page(fpg, what);
}

/*
 * mmap of the file at a page offset (maybe past its end, maybe unaligned),
 * shared or private, through the read-write or the read-only handle.
 */
static void op_mmap_file(void)
{
	struct fmm *m = pick_mm();
	uint8_t f = in8();
	int prot = in8() & 7, flags, r;
	unsigned int fpg = in8() % (FPAGES + 4), first, n, i;
	bool shared = f & 1, ro = f & 0x10, bad = f & 0x20;
	struct umm_file *file = ro ? F.rofile : F.file;
	uint64_t off = (uint64_t)fpg * PS + (bad ? 1 + (f >> 6) * 1000 : 0), out = 0;

	pick_range(&first, &n);
	if (!m || !file)
		return;
	flags = (shared ? UMM_MAP_SHARED : UMM_MAP_PRIVATE) | UMM_MAP_FIXED |
		(f & 2 ? UMM_MAP_POPULATE : 0) | (f & 4 ? UMM_MAP_LOCKED : 0);
	TRACE("mmap file mm%ld page %u +%u file page %u%s prot %d flags %#x%s", (long)(m - F.mms),
	      first, n, fpg, bad ? " (unaligned)" : "", prot, flags, ro ? " read-only" : "");
	r = umm_mmap(m->mm, AT(first), (uint64_t)n * PS, prot, flags, file, off, &out);
	if (bad || (shared && ro && (prot & UMM_PROT_WRITE))) {
		int want = bad ? -EINVAL : -EACCES;

		if (r != want)
			fail("mmap of the file (%s): %d, not %d", bad ? "unaligned offset" :
			     "shared writable, read-only file", r, want);
		check_layout(m, false, "bad file mmap");
		return;
	}
	if (failed_under_faults(m, r, "mmap file"))
		return;
	model_map(m, first, n, prot, flags);
	for (i = first; i < first + n; i++) {
		struct mpage *p = &m->pg[i];

		p->file = true;
		p->shared = shared;
		p->ro_file = shared && ro;
		p->fpg = fpg + (i - first);
	}
	model_sync_cow(m, first, n);
	check_layout(m, false, "mmap file");
}

static const int msync_flags[] = {
	UMM_MS_SYNC, UMM_MS_ASYNC, UMM_MS_SYNC | UMM_MS_INVALIDATE, UMM_MS_INVALIDATE, 0,
	UMM_MS_SYNC, UMM_MS_ASYNC | UMM_MS_SYNC, 0x10,
};

/*
 * msync: errors as Linux (-EINVAL for bad flags or start, -ENOMEM over a
 * hole, -EBUSY for MS_INVALIDATE of a locked mapping); afterwards every
 * shared file page of the range must have reached the file.
 */
static void op_msync(void)
{
	struct fmm *m = pick_mm();
	int flags = msync_flags[in8() % 8], r;
	bool bad_flags = (flags & ~7) || (flags & 5) == 5, locked = false;
	struct rargs a;

	pick_rargs(&a);
	if (!m)
		return;
	TRACE("msync mm%ld page %u +%u flags %#x bad %d", (long)(m - F.mms), a.first, a.n, flags,
	      a.bad);
	r = umm_msync(m->mm, a.addr, a.len, flags);
	if (bad_flags) {
		if (r != -EINVAL)
			fail("msync with flags %#x: %d, not -EINVAL", flags, r);
		return;
	}
	if (a.bad) {
		/* a wrapping length: Linux says -ENOMEM */
		if (!(a.bad == 3 && r == -ENOMEM))
			expect_err(r, a.bad, "msync");
		return;
	}
	for (unsigned int i = a.first; i < a.first + a.n; i++)
		locked |= m->pg[i].mapped && m->pg[i].locked;
	if (locked && (flags & UMM_MS_INVALIDATE)) {
		if (r != -EBUSY)
			fail("msync(MS_INVALIDATE) of a locked mapping: %d, not -EBUSY", r);
		return;
	}
	if (range_has_hole(m, a.first, a.n)) {
		if (r != -ENOMEM)
			fail("msync over a hole: %d, not -ENOMEM", r);
		return;
	}
	if (r) {
		if (!F.faults_on || (r != -ENOMEM && r != -EIO))
			fail("msync: %d", r);
		return;
	}
	for (unsigned int i = a.first; i < a.first + a.n; i++) {
		struct mpage *p = &m->pg[i];

		if (p->file && p->shared && page_backed(p))
			check_file_page(p->fpg, "after msync");
	}
}

/*
 * The handles: bad opens answer their errno; O_TRUNC of the live file is
 * refused; both handles dropped and opened again (with nothing mapping the
 * file, the last put writes it back and the cache goes: what the mappings
 * read next comes from the file itself); a third handle taken and dropped.
 */
static void op_file(void)
{
	struct umm_file *f = NULL;
	int r;

	switch (in8() % 4) {
	case 0:
		TRACE("file: bad opens");
		if ((r = umm_file_open(F.u, F.file_path, O_WRONLY, &f)) != -EINVAL ||
		    (r = umm_file_open(F.u, F.file_path, O_RDONLY | O_TRUNC, &f)) != -EINVAL ||
		    (r = umm_file_open(F.u, F.file_path, O_RDWR | O_APPEND, &f)) != -EINVAL ||
		    (r = umm_file_open(F.u, "/nonexistent/umm-fuzz", O_RDONLY, &f)) != -ENOENT ||
		    (r = umm_file_open(F.u, "/tmp", O_RDONLY, &f)) != -EISDIR)
			fail("umm_file_open with a bad argument: %d", r);
		if (F.file && (r = umm_file_open(F.u, F.file_path, O_RDWR | O_TRUNC, &f)) != -EBUSY)
			fail("O_TRUNC of a file the machine has open: %d, not -EBUSY", r);
		break;
	case 1:
		TRACE("file: put both handles, open again");
		file_put_all("after the last put");
		file_reopen();
		break;
	case 2:
		TRACE("file: a third handle");
		r = umm_file_open(F.u, F.file_path, O_RDWR, &f);
		if (r && !(F.faults_on && r == -ENOMEM))
			fail("umm_file_open: %d", r);
		if (!r && umm_file_size(f) != FPAGES * PS)
			fail("umm_file_size: %lld", (long long)umm_file_size(f));
		umm_file_put(f);
		break;
	case 3:
		if (F.file && umm_file_size(F.file) != FPAGES * PS)
			fail("umm_file_size: %lld", (long long)umm_file_size(F.file));
		if (umm_file_size(NULL) != -EINVAL)
			fail("umm_file_size(NULL) is not -EINVAL");
		break;
	}
}

/* ---- the interval notifier ---- */

static bool ivl_invalidate(struct umm_mmu_interval_notifier *sub,
			   const struct umm_mmu_notifier_range *range, unsigned long cur_seq)
{
	struct ivl *v = (struct ivl *)sub;

	if (!v->inserted)
		fail("interval invalidate after remove");
	if (range->end <= v->start || range->start >= v->end)
		fail("interval [%#llx, %#llx) told of [%#llx, %#llx)",
		     (unsigned long long)v->start, (unsigned long long)v->end,
		     (unsigned long long)range->start, (unsigned long long)range->end);
	if (v->fail_nonblock && !(range->flags & UMM_MMU_NOTIFIER_RANGE_BLOCKABLE))
		return false;
	umm_mmu_interval_set_seq(sub, cur_seq);
	if (v->xvalid && v->xaddr >= range->start && v->xaddr < range->end) {
		umm_mmu_interval_check_unmap(sub, v->xaddr, v->xaddr + PS);
		v->xvalid = false;
	}
	v->invalidations++;
	return true;
}

static const struct umm_mmu_interval_notifier_ops ivl_ops = { .invalidate = ivl_invalidate };

static void ivl_remove(struct fmm *m)
{
	struct ivl *v = m->ivl;

	if (v->xvalid)
		umm_mmu_interval_check_unmap(&v->mn, v->xaddr, v->xaddr + PS);
	umm_mmu_interval_notifier_remove(&v->mn);
	v->inserted = false;
	free(v);
	m->ivl = NULL;
}

/*
 * Insert an interval notifier over pages of the window (mapped or not),
 * remove it, or fault one page of it into its "secondary TLB" as
 * hmm_range_fault users do: read_begin, GUP, and keep the translation only
 * if read_retry says no invalidation came in between (a write GUP that
 * breaks COW is one).  The checker sees every translation kept.
 */
static void op_interval(void)
{
	struct fmm *m = pick_mm();
	uint8_t f = in8();
	unsigned int first, n;
	struct umm_page *page;
	unsigned long seq;
	struct ivl *v;
	uint64_t addr;
	int r;

	pick_range(&first, &n);
	if (!m)
		return;
	v = m->ivl;
	if (!v) {
		TRACE("interval insert mm%ld page %u +%u", (long)(m - F.mms), first, n);
		v = calloc(1, sizeof(*v));
		v->start = AT(first);
		v->end = AT(first + n);
		v->inserted = true;
		v->fail_nonblock = f & 2;
		r = umm_mmu_interval_notifier_insert(&v->mn, m->mm, v->start, v->end - v->start,
						     &ivl_ops);
		if (r) {
			if (!F.faults_on || r != -ENOMEM)
				fail("umm_mmu_interval_notifier_insert: %d", r);
			free(v);
			return;
		}
		if (umm_mmu_interval_notifier_insert(&(struct ivl){ 0 }.mn, m->mm, v->start, 0,
						     &ivl_ops) != -EINVAL)
			fail("an interval of length 0 was accepted");
		m->ivl = v;
		return;
	}
	if (f & 1) {
		TRACE("interval remove mm%ld", (long)(m - F.mms));
		ivl_remove(m);
		return;
	}
	addr = v->start + (uint64_t)(f >> 2) % ((v->end - v->start) / PS) * PS;
	TRACE("interval fault mm%ld %#llx", (long)(m - F.mms), (unsigned long long)addr);
	seq = umm_mmu_interval_read_begin(&v->mn);
	r = umm_get_user_page(m->mm, addr, f & 0x80 ? UMM_GUP_WRITE : 0, &page);
	if (r)
		return;			/* op_gup checks GUP's answers */
	model_sync_cow(m, (addr - BASE) / PS, 1);
	/* the lockless hint may miss an invalidation, never invent one */
	if (umm_mmu_interval_check_retry(&v->mn, seq) && !umm_mmu_interval_read_retry(&v->mn, seq))
		fail("check_retry saw an invalidation read_retry did not");
	if (!umm_mmu_interval_read_retry(&v->mn, seq)) {
		if (v->xvalid)
			umm_mmu_interval_check_unmap(&v->mn, v->xaddr, v->xaddr + PS);
		v->xaddr = addr;
		v->xpfn = umm_page_pfn(page);
		v->xvalid = true;
		umm_mmu_interval_check_map(&v->mn, addr, v->xpfn, seq);
	}
	umm_put_page(page);
}

/* ---- umm_mmu_notifier_get()/put() ---- */

/* Drop every get() reference of @m; after synchronize the subscription is freed. */
static void gsub_put_all(struct fmm *m)
{
	unsigned long freed = F.gsub_freed;

	if (m->gsub && m->gsub->active)
		fail("get() subscription put with %d invalidations open", m->gsub->active);
	while (m->gsub_refs) {
		umm_mmu_notifier_put(&m->gsub->mn);
		m->gsub_refs--;
	}
	m->gsub = NULL;
	umm_mmu_notifier_synchronize(F.u);
	if (F.gsub_freed != freed + 1)
		fail("the last put of a get() subscription freed %lu", F.gsub_freed - freed);
}

/* get(): the same subscription while one is held; put() them all after two. */
static void op_gsub(void)
{
	struct fmm *m = pick_mm();
	struct umm_mmu_notifier *sub;
	int r;

	if (!m)
		return;
	if (m->gsub_refs == 2) {
		TRACE("notifier put x2 mm%ld", (long)(m - F.mms));
		gsub_put_all(m);
		return;
	}
	TRACE("notifier get mm%ld", (long)(m - F.mms));
	r = umm_mmu_notifier_get(&rec_ops, m->mm, &sub);
	if (r) {
		if (!F.faults_on || r != -ENOMEM)
			fail("umm_mmu_notifier_get: %d", r);
		return;
	}
	if (m->gsub && sub != &m->gsub->mn)
		fail("umm_mmu_notifier_get: a second subscription with the same ops");
	m->gsub = to_rec(sub);
	m->gsub_refs++;
}

/* ---- figures ---- */

/*
 * The statistics calls: an mm's total_vm and locked_vm are what the model
 * maps and locks, its RSS no more than it maps; its KSM status what was
 * set.  Also KSM merge domains (the bytes must not care) and full scans.
 */
static void op_stats(void)
{
	struct fmm *m = pick_mm();
	uint8_t f = in8();
	struct umm_mm_stat ms;
	struct umm_mm_ksm_stat ks;
	struct umm_stat st;
	struct umm_ksm_stats kst;
	struct umm_vmscan_stat vs;
	uint64_t mapped = 0, locked = 0;
	int r;

	umm_get_stat(F.u, &st);
	umm_ksm_get_stats(F.u, &kst);
	umm_get_vmscan_stat(F.u, &vs);
	if (st.pgfree > st.pgalloc)
		fail("umm_get_stat: %llu frames freed, %llu allocated",
		     (unsigned long long)st.pgfree, (unsigned long long)st.pgalloc);
	if (!m)
		return;
	for (unsigned int i = 0; i < WIN; i++) {
		mapped += m->pg[i].mapped;
		locked += m->pg[i].mapped && m->pg[i].locked;
	}
	umm_mm_get_stat(m->mm, &ms);
	if (ms.total_vm != mapped || ms.locked_vm != locked ||
	    ms.rss_anon + ms.rss_file + ms.rss_shmem > mapped)
		fail("umm_mm_get_stat of mm %ld: total_vm %llu locked_vm %llu rss %llu, "
		     "the model maps %llu, locks %llu", (long)(m - F.mms),
		     (unsigned long long)ms.total_vm, (unsigned long long)ms.locked_vm,
		     (unsigned long long)(ms.rss_anon + ms.rss_file + ms.rss_shmem),
		     (unsigned long long)mapped, (unsigned long long)locked);
	umm_mm_get_ksm_stat(m->mm, &ks);
	if (ks.ksm_merge_any != m->merge_any)
		fail("ksm_merge_any %d, the model says %d", ks.ksm_merge_any, m->merge_any);
	switch (f % 4) {
	case 1:
		TRACE("ksm domain mm%ld %u", (long)(m - F.mms), f / 4 % 3);
		r = umm_mm_set_ksm_domain(m->mm, f / 4 % 3);
		if (r && !(F.faults_on && r == -ENOMEM))
			fail("umm_mm_set_ksm_domain: %d", r);
		break;
	case 2:
		/* an rmap_item that cannot be allocated is retried: no scan would end */
		if (F.faults_on)
			break;
		TRACE("ksm full scan");
		if ((r = umm_ksm_full_scans(F.u, 1)))
			fail("umm_ksm_full_scans: %d", r);
		break;
	}
}

static const unsigned int fault_ppm[] = { 0, 1000, 20000, 200000 };

static void op_fault(void)
{
	uint8_t b = in8(), t = in8();
	int kind = b % UMM_FAULT_NR;
	unsigned int ppm = fault_ppm[(b >> 4) % 4];
	bool any = false;

	TRACE("fault kind %d ppm %u times %d", kind, ppm, t % 8 ? t % 8 : -1);
	if (umm_fault_inject(F.u, kind, ppm, ppm ? (t % 8 ? t % 8 : -1) : 0))
		fail("umm_fault_inject(%d) refused", kind);
	if (umm_fault_inject(F.u, UMM_FAULT_NR, 1, 1) != -EINVAL)
		fail("umm_fault_inject accepted kind UMM_FAULT_NR");
	/* once on in this run, errors stay allowed (limited counts may be left) */
	for (int k = 0; k < UMM_FAULT_NR; k++)
		any |= umm_fault_injected(F.u, k) > 0;
	F.faults_on |= ppm || any;
}

static void faults_off(void)
{
	for (int k = 0; k < UMM_FAULT_NR; k++)
		umm_fault_inject(F.u, k, 0, 0);
}

/* ---- one run ---- */

/* A fresh file of FPAGES pages of a known pattern, and its two handles. */
static void file_setup(void)
{
	int fd = open(F.file_path, O_RDWR | O_CREAT | O_TRUNC, 0644);

	for (size_t k = 0; k < sizeof(F.fbytes); k++)
		F.fbytes[k] = (uint8_t)(k * 131 + (k >> 12) * 17 + 5);
	if (fd < 0 || pwrite(fd, F.fbytes, sizeof(F.fbytes), 0) != (ssize_t)sizeof(F.fbytes))
		fail("writing %s", F.file_path);
	close(fd);
	F.check_fd = open(F.file_path, O_RDONLY);
	if (F.check_fd < 0)
		fail("opening %s", F.file_path);
	if (file_reopen())
		fail("umm_file_open(%s)", F.file_path);
}

static void run_setup(void)
{
	struct umm_config cfg;
	struct umm_ksm_params kp;

	umm_config_init(&cfg);
	cfg.phys_bytes = 4 << 20;
	cfg.nr_nodes = 2;
	cfg.swap_path = F.swap_path;
	cfg.swap_bytes = 256 << 10;
	cfg.flags = UMM_CONFIG_NOTIFIER_CHECKER;
	if (umm_create(&cfg, &F.u))
		fail("umm_create");
	umm_set_log(F.u, log_hook, NULL);
	if (umm_ksm_get_params(F.u, &kp) == 0) {
		kp.max_page_sharing = 3;	/* chains and dups with few pages */
		kp.use_zero_pages = F.len & 1;
		umm_ksm_set_params(F.u, &kp);
	}
	if (umm_mm_create(F.u, &F.mms[0].mm) || umm_mm_create(F.u, &F.mms[1].mm))
		fail("umm_mm_create");
	file_setup();
}

static void run_teardown(void)
{
	long leaked;

	faults_off();
	for (int k = 0; k < NR_MMS; k++)
		if (F.mms[k].mm)
			check_all(&F.mms[k]);
	for (int g = 0; g < NR_GUP; g++)
		if (F.gup[g].held) {
			umm_put_page(F.gup[g].page);
			F.gup[g].held = false;
		}
	check_validate(true);
	check_recs();
	for (int k = 0; k < NR_MMS; k++)
		if (F.mms[k].mm) {
			umm_mm_exit(F.mms[k].mm);
			mm_gone(&F.mms[k]);
		}
	umm_ksm_set_run(F.u, 2);	/* KSM's stable pages outlive their mms otherwise */
	file_put_all("at the end");	/* nothing maps it: everything must be in the file */
	close(F.check_fd);
	check_validate(true);
	leaked = umm_leak_check(F.u, NULL, NULL);
	if (leaked)
		fail("%ld frames leaked after every mm exited", leaked);
	if (umm_mmu_notifier_checker_violations(F.u))
		fail("the protocol checker counted %lu violations",
		     umm_mmu_notifier_checker_violations(F.u));
	umm_destroy(F.u);
	F.u = NULL;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	snprintf(F.swap_path, sizeof(F.swap_path), "/tmp/umm-fuzz-swap-%d", (int)getpid());
	snprintf(F.file_path, sizeof(F.file_path), "/tmp/umm-fuzz-file-%d", (int)getpid());
	F.trace = getenv("UMM_FUZZ_TRACE") != NULL;
	F.corrupt = getenv("UMM_FUZZ_CORRUPT") != NULL;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	F.in = data;
	F.len = size;
	F.pos = 0;
	F.faults_on = false;
	F.step = 0;
	run_setup();
	while (F.pos < F.len && F.step < MAX_STEPS) {
		uint8_t op = in8();

		switch (op % 32) {
		case 0: case 1: op_mmap(); break;
		case 2: op_munmap(); break;
		case 3: op_mprotect(); break;
		case 4: op_mremap(); break;
		case 5: case 6: op_madvise(); break;
		case 7: op_mlock(true); break;
		case 8: op_mlock(false); break;
		case 9: case 10: op_access(false); break;
		case 11: case 12: op_access(true); break;
		case 13: op_fork(); break;
		case 14: op_exit(); break;
		case 15: op_create(); break;
		case 16: op_gup(); break;
		case 17: op_pagemap(); break;
		case 18: op_rmap(); break;
		case 19: op_ksm(); break;
		case 20: op_reclaim(); break;
		case 21: op_move_pages(); break;
		case 22: op_notifier(); break;
		case 23:
			switch (in8() % 5) {
			case 0: op_compact(); break;
			case 1: faults_off(); break;
			case 4: op_oom_reap(); break;
			default: op_fault(); break;
			}
			break;
		case 24: case 25: op_mmap_file(); break;
		case 26: op_msync(); break;
		case 27: op_file(); break;
		case 28: op_interval(); break;
		case 29: op_gsub(); break;
		case 30: op_stats(); break;
		case 31: op_interval(); break;
		}
		check_recs();
		check_validate(false);		/* DESIGN.md §4, after every step */
		if (++F.step % CHECK_EVERY == 0) {
			for (int k = 0; k < NR_MMS; k++)
				if (F.mms[k].mm)
					check_all(&F.mms[k]);
		}
	}
	run_teardown();
	unlink(F.swap_path);
	unlink(F.file_path);
	return 0;
}
