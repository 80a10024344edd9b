/* SPDX-License-Identifier: MIT */
/*
 * t_stress_diff.c - differential stress test of umm's foundation.
 *
 * Several threads drive random mmap/munmap/mprotect/mremap/madvise(DONTNEED),
 * fork/exit, reads, writes and GUP against several address spaces of one
 * machine, and every answer the engine gives is compared with a small
 * reference model of what each address space must contain.  The counting
 * invariants are checked against a full page-table walk (umm_validate() with
 * UMM_VALIDATE_EXACT) at regular meeting points, and at the end no frame may
 * be left behind (umm_leak_check() == 0).
 *
 * Layout: one machine, one "shared" mm, and per worker thread t a window of
 * WIN_PAGES pages at WIN_BASE + t * WIN_STRIDE:
 *
 *   shared mm   |t0 window|..........|t1 window|..........|t2 window| ...
 *   t0 family     c1<S: fork of the shared mm (only t0's window modelled)
 *                 c2<c1: fork of c1, ...    (at most FAMILY_MAX children)
 *
 * Every worker hits the same mm's VMA tree, mmap_lock, page tables and the
 * frame allocator concurrently, but only inside its own window, so the model
 * of a window is exact.  A worker's family (forks of the shared mm and forks
 * of those) is touched by that worker alone; in a child of the shared mm the
 * other windows are a racy snapshot and are neither used nor checked.
 *
 * Model: per (mm, window), one struct mpage per page: unmapped, or mapped
 * with a prot and either private content (NULL: still zero) or a page of a
 * shared object (struct sobj, one per MAP_SHARED|MAP_ANONYMOUS mmap).  A
 * write through any mapping of a shared object is seen by all of them, fork
 * included.  DONTNEED zeroes private pages and leaves shared ones alone.
 * Fork copies the window's model (private bytes copied, objects shared).
 *
 * Answers that depend on where the engine put VMA boundaries (mremap must
 * stay inside one VMA, grows in place only at a VMA's end) are taken from
 * umm_mm_vma_next(), after checking that VMA against the model: same prot,
 * same shared-ness, one object at consecutive offsets.  Everything else,
 * including every return value, is predicted from the model alone.
 *
 * A "racer" thread (multi-thread runs) models nothing: it reads random
 * addresses of every window of the shared mm, asks umm_pagemap() and
 * umm_mm_vma_next() about them and takes GUP references on them, checking
 * return codes only, to race lookups and COW breaks against munmap, mremap,
 * mprotect and the owners' writes.
 *
 * The tests: test_holes (the error cases the random ops steer clear of,
 * deterministic), a single-thread run, a multi-thread run (4 workers and the
 * racer on 2 CPUs: oversubscribed on purpose), a run on a machine of 2
 * memory nodes, and test_detects_corruption, which flips one byte of the
 * model and must see the run fail: the checker checks.
 *
 * Replay: the run prints its seed; UMM_SEED=<seed> replays every worker's op
 * sequence (worker i's generator is seeded from seed + i).  The interleaving
 * between threads is up to the host scheduler, so a concurrency bug may need
 * a few runs with the same seed.  UMM_TEST_SHORT=1 is the CI form (a couple
 * of seconds under TSan), UMM_TEST_LONG=1 the long one, and
 * `t_stress_diff --ops N --threads T` sizes the multi-thread run by hand.
 *
 * On the first mismatch the worker prints the seed, thread, op number, mm,
 * address, expected and actual bytes from the first differing offset, and
 * its last operations (--history N), then every thread stops issuing ops.
 */
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>

#include <umm/umm.h>

#include "tap.h"

#define PAGE		UMM_PAGE_SIZE
#define WIN_PAGES	256U			/* pages in one worker's window */
#define WIN_BASE	0x10000000ULL
#define WIN_STRIDE	0x10000000ULL		/* windows never touch: no merge across */
#define FAMILY_MAX	3U			/* forked children per worker */
#define MAX_THREADS	32U
#define MAX_MAP_PAGES	16U			/* longest mmap */
#define MAX_IO		(3 * PAGE + 512)	/* longest read/write */
#define SYNC_EVERY	500UL			/* ops between meeting points */
#define LOG_RING	4096U			/* ops remembered per worker */
#define LOG_LEN		200

/* The racer may read a page while its owner writes it: a data race inside
 * memcpy that is harmless here (the racer ignores the bytes) but that TSan
 * would rightly report.  Under TSan the racer sticks to what touches no
 * frame byte (umm_pagemap(), umm_mm_vma_next(), GUP), which races the same
 * lookups against munmap/mremap/mprotect. */
#if defined(__SANITIZE_THREAD__)
#define RACER_READS 0
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define RACER_READS 0
#endif
#endif
#ifndef RACER_READS
#define RACER_READS 1
#endif

static const uint8_t zero_page[PAGE];
static pthread_mutex_t print_lock = PTHREAD_MUTEX_INITIALIZER;
static bool trace;			/* --trace: print every op as it is logged */
static unsigned int log_show = 20;	/* --history: ops shown after a failure */

static void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n, size);

	if (!p) {
		fprintf(stderr, "t_stress_diff: out of host memory\n");
		abort();
	}
	return p;
}

/* ---- the reference model ---- */

/* A MAP_SHARED|MAP_ANONYMOUS object: its pages, shared by every mapping. */
struct sobj {
	unsigned int refs;		/* modelled pages that map it */
	unsigned int id;		/* for messages */
	uint8_t *data[MAX_MAP_PAGES];	/* NULL: still zero */
};

/* What one page of a window must look like. */
struct mpage {
	bool mapped;
	uint8_t prot;			/* UMM_PROT_* */
	struct sobj *obj;		/* shared: the object; private: NULL */
	unsigned int idx;		/* shared: page within obj */
	uint8_t *data;			/* private: content; NULL: zeros */
};

struct wmodel {
	struct mpage pg[WIN_PAGES];
};

static void sobj_put(struct sobj *o)
{
	if (--o->refs)
		return;
	for (unsigned int i = 0; i < MAX_MAP_PAGES; i++)
		free(o->data[i]);
	free(o);
}

static void mpage_clear(struct mpage *pg)
{
	if (pg->obj)
		sobj_put(pg->obj);
	free(pg->data);
	memset(pg, 0, sizeof(*pg));
}

static void mpage_set_private(struct mpage *pg, int prot)
{
	mpage_clear(pg);
	pg->mapped = true;
	pg->prot = prot;
}

/* @dst gets what @src maps, as fork gives it to a child. */
static void mpage_copy(struct mpage *dst, const struct mpage *src)
{
	*dst = *src;
	if (src->obj)
		src->obj->refs++;
	if (src->data) {
		dst->data = xcalloc(1, PAGE);
		memcpy(dst->data, src->data, PAGE);
	}
}

static bool prot_readable(int prot)
{
	/* x86: any of read, write, exec makes a page readable to the CPU. */
	return prot & (UMM_PROT_READ | UMM_PROT_WRITE | UMM_PROT_EXEC);
}

static bool prot_writable(int prot)
{
	return prot & UMM_PROT_WRITE;
}

static bool mpage_can(const struct mpage *pg, bool write)
{
	return pg && pg->mapped &&
	       (write ? prot_writable(pg->prot) : prot_readable(pg->prot));
}

static const uint8_t *mpage_bytes(const struct mpage *pg)
{
	const uint8_t *d = pg->obj ? pg->obj->data[pg->idx] : pg->data;

	return d ? d : zero_page;
}

static uint8_t *mpage_bytes_w(struct mpage *pg)
{
	uint8_t **slot = pg->obj ? &pg->obj->data[pg->idx] : &pg->data;

	if (!*slot)
		*slot = xcalloc(1, PAGE);
	return *slot;
}

static struct wmodel *wmodel_dup(const struct wmodel *m)
{
	struct wmodel *c = xcalloc(1, sizeof(*c));

	for (unsigned int i = 0; i < WIN_PAGES; i++)
		mpage_copy(&c->pg[i], &m->pg[i]);
	return c;
}

static void wmodel_free(struct wmodel *m)
{
	if (!m)
		return;
	for (unsigned int i = 0; i < WIN_PAGES; i++)
		mpage_clear(&m->pg[i]);
	free(m);
}

static const char *prot_str(int prot)
{
	static const char *const s[8] = {
		"---", "r--", "-w-", "rw-", "--x", "r-x", "-wx", "rwx",
	};

	return s[prot & 7];
}

/* ---- the run and its workers ---- */

struct run;

/* One address space of a worker's family, and its model of the window. */
struct member {
	struct umm_mm *mm;		/* NULL: free slot */
	struct wmodel *m;
	char name[32];			/* "S" shared mm, "c3<S" child 3 of S */
};

enum op_kind {
	OP_READ, OP_WRITE, OP_MMAP, OP_MUNMAP, OP_MPROTECT, OP_MREMAP,
	OP_DONTNEED, OP_GUP, OP_FORK, OP_EXIT, NR_OPS,
};

static const char *const op_name[NR_OPS] = {
	"read", "write", "mmap", "munmap", "mprotect", "mremap",
	"dontneed", "gup", "fork", "exit",
};

static const unsigned int op_weight[NR_OPS] = {
	[OP_READ] = 24, [OP_WRITE] = 22, [OP_MMAP] = 10, [OP_MUNMAP] = 6,
	[OP_MPROTECT] = 6, [OP_MREMAP] = 8, [OP_DONTNEED] = 5, [OP_GUP] = 9,
	[OP_FORK] = 2, [OP_EXIT] = 1,
};

struct worker {
	struct run *run;
	unsigned int idx;
	pthread_t tid;
	uint64_t rng;
	uint64_t base;			/* the window's first address */
	unsigned long op;		/* number of the op being done */
	struct member fam[1 + FAMILY_MAX];	/* fam[0]: the shared mm */
	unsigned int next_child, next_obj;
	bool corrupted;			/* self-test: a byte was flipped */
	char log[LOG_RING][LOG_LEN];
	unsigned long nlog;
	unsigned long done[NR_OPS];	/* ops issued, by kind */
	unsigned long errs[NR_OPS];	/* ... of which the model expected to fail */
	enum op_kind kind;		/* the op being done */
	unsigned long nverify;		/* pages verified */
	pthread_mutex_t gup_lock;	/* held while storing through a GUP pointer in the
					 * shared mm: the racer's write GUP keeps out */
	struct mpage tmp[WIN_PAGES];	/* mremap's pages in flight */
	uint8_t buf[MAX_IO], exp[MAX_IO];
};

struct run {
	const char *name;
	uint64_t seed;
	struct umm *u;
	struct umm_mm *shared;
	unsigned int nthreads;
	unsigned long ops;		/* per worker */
	bool racer;
	long corrupt_at;		/* self-test: flip a byte from this op on; -1 off */
	pthread_barrier_t bar;
	atomic_bool failed;
	atomic_bool stop;
	atomic_ulong sync_epoch;	/* number of the meeting point being held */
	atomic_ulong racer_ops;
	unsigned long nvalidate;	/* validations done (serial thread only) */
	struct worker *w;
};

static uint64_t splitmix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

static uint64_t rnd(struct worker *w)
{
	return tap_rand(&w->rng);
}

static unsigned int rnd_below(struct worker *w, unsigned int n)
{
	return n ? (unsigned int)((rnd(w) >> 16) % n) : 0;
}

static uint64_t page_addr(const struct worker *w, unsigned int p)
{
	return w->base + (uint64_t)p * PAGE;
}

/* The model of the page holding @addr; NULL outside the window (never mapped). */
static struct mpage *page_at(const struct worker *w, struct wmodel *m, uint64_t addr)
{
	if (addr < w->base || addr >= w->base + (uint64_t)WIN_PAGES * PAGE)
		return NULL;
	return &m->pg[(addr - w->base) / PAGE];
}

/* Bytes derived from one random word: what writes store. */
static void fill_pattern(uint8_t *p, size_t n, uint64_t v)
{
	for (size_t i = 0; i < n; i++) {
		if (i % 8 == 0)
			v = v * 6364136223846793005ULL + 1442695040888963407ULL;
		p[i] = (uint8_t)(v >> (56 - 8 * (i % 8)));
	}
}

/* ---- the op log and failure reports ---- */

static void trace_entry(struct worker *w, const char *e)
{
	pthread_mutex_lock(&print_lock);
	printf("# t%u %s\n", w->idx, e);
	pthread_mutex_unlock(&print_lock);
}

static void oplog_v(struct worker *w, const struct member *mb, const char *fmt, va_list ap)
{
	char *e = w->log[w->nlog++ % LOG_RING];
	int n;

	n = snprintf(e, LOG_LEN, "op %lu [%s] ", w->op, mb ? mb->name : "-");
	vsnprintf(e + n, LOG_LEN - n, fmt, ap);
}

/* Log a call about to be made; oplog_rc() adds its answer. */
static void __attribute__((format(printf, 3, 4)))
oplog(struct worker *w, const struct member *mb, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	oplog_v(w, mb, fmt, ap);
	va_end(ap);
}

/* Log something that has no answer (an exit, a store through a GUP pointer). */
static void __attribute__((format(printf, 3, 4)))
oplog_note(struct worker *w, const struct member *mb, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	oplog_v(w, mb, fmt, ap);
	va_end(ap);
	if (trace)
		trace_entry(w, w->log[(w->nlog - 1) % LOG_RING]);
}

/* Append the engine's answer to the entry oplog() just made. */
static void oplog_rc(struct worker *w, long long rc)
{
	char *e = w->log[(w->nlog - 1) % LOG_RING];
	size_t n = strlen(e);

	snprintf(e + n, LOG_LEN - n, " -> %lld", rc);
	if (trace)
		trace_entry(w, e);
}

static void dump_log(struct worker *w)
{
	unsigned long first = w->nlog > log_show ? w->nlog - log_show : 0;

	printf("# last %lu ops of thread %u (oldest first):\n", w->nlog - first, w->idx);
	for (unsigned long i = first; i < w->nlog; i++)
		printf("#   %s\n", w->log[i % LOG_RING]);
}

static const char *fail_tag(const struct run *r)
{
	return r->corrupt_at >= 0 ? "DETECTED (the self-test expects this)" : "FAIL";
}

/* Report the first failure of a worker; the run then winds down. */
static bool __attribute__((format(printf, 2, 3))) wfail(struct worker *w, const char *fmt, ...)
{
	struct run *r = w->run;
	va_list ap;

	pthread_mutex_lock(&print_lock);
	printf("# %s: %s: seed %" PRIu64 " thread %u op %lu: ", fail_tag(r), r->name,
	       r->seed, w->idx, w->op);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	if (r->corrupt_at < 0)
		dump_log(w);
	fflush(stdout);
	pthread_mutex_unlock(&print_lock);
	atomic_store(&r->failed, true);
	return false;
}

static void describe_page(const struct mpage *pg, char *s, size_t n)
{
	if (!pg || !pg->mapped)
		snprintf(s, n, "unmapped");
	else if (pg->obj)
		snprintf(s, n, "%s shared obj#%u page %u", prot_str(pg->prot), pg->obj->id,
			 pg->idx);
	else
		snprintf(s, n, "%s private %s", prot_str(pg->prot),
			 pg->data ? "written" : "zero");
}

static void hex16(char *s, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n && i < 16; i++)
		s += sprintf(s, "%02x ", p[i]);
	*s = 0;
}

/* Compare @n bytes the engine gave at @addr with the model's; report the first difference. */
static bool check_bytes(struct worker *w, struct member *mb, const char *what, uint64_t addr,
			const uint8_t *exp, const uint8_t *got, size_t n)
{
	char ps[64], es[64], gs[64];
	size_t d, from;

	if (!memcmp(exp, got, n))
		return true;
	for (d = 0; exp[d] == got[d]; d++)
		;
	from = d & ~(size_t)15;
	describe_page(page_at(w, mb->m, addr + d), ps, sizeof(ps));
	hex16(es, exp + from, n - from);
	hex16(gs, got + from, n - from);
	return wfail(w, "%s mismatch in mm %s at 0x%" PRIx64 " (offset %zu of %zu, page %s): "
		     "expected 0x%02x, got 0x%02x\n#   expected @0x%" PRIx64 ": %s\n"
		     "#   actual   @0x%" PRIx64 ": %s", what, mb->name, addr + d, d, n, ps,
		     exp[d], got[d], addr + from, es, addr + from, gs);
}

/* ---- choosing what to touch ---- */

/* A page of the window, mapped if a few tries find one.  Return: true if mapped. */
static bool pick_page(struct worker *w, struct wmodel *m, unsigned int *p)
{
	for (int i = 0; i < 8; i++) {
		*p = rnd_below(w, WIN_PAGES);
		if (m->pg[*p].mapped)
			return true;
	}
	return false;
}

/* Mostly a page that allows a write, else as pick_page(). */
static bool pick_writable_page(struct worker *w, struct wmodel *m, unsigned int *p)
{
	if (rnd_below(w, 4))
		for (int i = 0; i < 8; i++) {
			*p = rnd_below(w, WIN_PAGES);
			if (mpage_can(&m->pg[*p], true))
				return true;
		}
	return pick_page(w, m, p);
}

/* An access: mostly at mapped pages, sometimes aligned, sometimes across pages. */
static void pick_access(struct worker *w, struct wmodel *m, bool write, uint64_t *addr,
			size_t *len)
{
	unsigned int p, r = rnd_below(w, 8);
	bool mapped = write ? pick_writable_page(w, m, &p) : pick_page(w, m, &p);

	if (!mapped && rnd_below(w, 4) == 0)
		p = WIN_PAGES - 1;	/* now and then, run off the window's end */
	*addr = page_addr(w, p);
	if (rnd_below(w, 3))
		*addr += rnd_below(w, PAGE);
	if (r < 3)
		*len = 1 + rnd_below(w, 64);
	else if (r < 6)
		*len = 1 + rnd_below(w, PAGE);
	else
		*len = 1 + rnd_below(w, MAX_IO);
	if (rnd_below(w, 4) == 0)	/* end on a page boundary */
		*len = ((*addr + *len + PAGE - 1) & ~(uint64_t)(PAGE - 1)) - *addr;
	if (*len > MAX_IO)
		*len = MAX_IO;
}

/* A fully mapped range [*p, *p + *n) of at most MAX_MAP_PAGES.  Return: false if none found. */
static bool pick_mapped_range(struct worker *w, struct wmodel *m, unsigned int *p,
			      unsigned int *n)
{
	unsigned int want = 1 + rnd_below(w, MAX_MAP_PAGES), e;

	if (!pick_page(w, m, p))
		return false;
	for (e = *p; e < WIN_PAGES && e < *p + want && m->pg[e].mapped; e++)
		;
	*n = e - *p;
	return true;
}

static int pick_prot(struct worker *w)
{
	static const int prots[] = {
		UMM_PROT_READ, UMM_PROT_READ, UMM_PROT_READ,
		UMM_PROT_READ | UMM_PROT_WRITE, UMM_PROT_READ | UMM_PROT_WRITE,
		UMM_PROT_READ | UMM_PROT_WRITE, UMM_PROT_READ | UMM_PROT_WRITE,
		UMM_PROT_NONE, UMM_PROT_NONE, UMM_PROT_WRITE, UMM_PROT_WRITE,
		UMM_PROT_EXEC, UMM_PROT_READ | UMM_PROT_EXEC,
	};

	return prots[rnd_below(w, sizeof(prots) / sizeof(prots[0]))];
}

/*
 * What an access of @len bytes at @addr must return: the bytes before the
 * first page that refuses it, or -EFAULT if that is the very first byte.
 */
static long long expect_access(struct worker *w, struct wmodel *m, uint64_t addr, size_t len,
			       bool write)
{
	size_t done = 0;

	while (done < len) {
		uint64_t a = addr + done;
		size_t chunk = PAGE - a % PAGE;

		if (!mpage_can(page_at(w, m, a), write))
			break;
		done += chunk < len - done ? chunk : len - done;
	}
	return done ? (long long)done : -EFAULT;
}

/* The model's bytes [addr, addr + len), all of them mapped. */
static void model_read(struct worker *w, struct wmodel *m, uint64_t addr, uint8_t *out,
		       size_t len)
{
	while (len) {
		size_t off = addr % PAGE, chunk = PAGE - off;

		if (chunk > len)
			chunk = len;
		memcpy(out, mpage_bytes(page_at(w, m, addr)) + off, chunk);
		addr += chunk;
		out += chunk;
		len -= chunk;
	}
}

static void model_write(struct worker *w, struct wmodel *m, uint64_t addr, const uint8_t *in,
			size_t len)
{
	while (len) {
		size_t off = addr % PAGE, chunk = PAGE - off;

		if (chunk > len)
			chunk = len;
		memcpy(mpage_bytes_w(page_at(w, m, addr)) + off, in, chunk);
		addr += chunk;
		in += chunk;
		len -= chunk;
	}
}

/* ---- the ops ---- */

static bool expect_rc(struct worker *w, struct member *mb, const char *call, long long rc,
		      long long want)
{
	if (rc == want) {
		if (want < 0)
			w->errs[w->kind]++;
		return true;
	}
	if (rc == -ENOMEM && want != -ENOMEM) {
		struct umm_stat st;

		umm_get_stat(w->run->u, &st);
		return wfail(w, "%s in mm %s returned -ENOMEM, the model expects %lld "
			     "(%" PRIu64 " of %" PRIu64 " frames free; if none, the machine is "
			     "too small for this run)", call, mb->name, want, st.nr_free,
			     st.nr_frames);
	}
	return wfail(w, "%s in mm %s returned %lld, the model expects %lld", call, mb->name,
		     rc, want);
}

static bool do_read(struct worker *w, struct member *mb)
{
	struct run *r = w->run;
	uint64_t addr;
	size_t len;
	long long want, rc;

	pick_access(w, mb->m, false, &addr, &len);
	want = expect_access(w, mb->m, addr, len, false);
	oplog(w, mb, "read 0x%" PRIx64 "+%zu (want %lld)", addr, len, want);
	rc = umm_read(mb->mm, addr, w->buf, len);
	oplog_rc(w, rc);
	if (!expect_rc(w, mb, "umm_read", rc, want))
		return false;
	if (rc <= 0)
		return true;
	model_read(w, mb->m, addr, w->exp, rc);
	if (r->corrupt_at >= 0 && w->idx == 0 && (long)w->op >= r->corrupt_at &&
	    !w->corrupted) {
		w->exp[rnd_below(w, rc)] ^= 0x5a;	/* self-test: a model gone wrong */
		w->corrupted = true;
	}
	return check_bytes(w, mb, "read", addr, w->exp, w->buf, rc);
}

static bool do_write(struct worker *w, struct member *mb)
{
	uint64_t addr;
	size_t len;
	long long want, rc;

	pick_access(w, mb->m, true, &addr, &len);
	fill_pattern(w->buf, len, rnd(w));
	want = expect_access(w, mb->m, addr, len, true);
	oplog(w, mb, "write 0x%" PRIx64 "+%zu (want %lld)", addr, len, want);
	rc = umm_write(mb->mm, addr, w->buf, len);
	oplog_rc(w, rc);
	if (!expect_rc(w, mb, "umm_write", rc, want))
		return false;
	if (rc > 0)
		model_write(w, mb->m, addr, w->buf, rc);
	return true;
}

static bool do_mmap(struct worker *w, struct member *mb)
{
	struct wmodel *m = mb->m;
	unsigned int p = rnd_below(w, WIN_PAGES), n = 1 + rnd_below(w, MAX_MAP_PAGES), i;
	int prot = pick_prot(w), flags = UMM_MAP_ANONYMOUS;
	bool shared = rnd_below(w, 4) == 0, noreplace = rnd_below(w, 8) == 0, busy = false;
	uint64_t out = 0;
	long long rc, want;

	if (p + n > WIN_PAGES)
		n = WIN_PAGES - p;
	flags |= shared ? UMM_MAP_SHARED : UMM_MAP_PRIVATE;
	flags |= noreplace ? UMM_MAP_FIXED_NOREPLACE : UMM_MAP_FIXED;
	if (rnd_below(w, 4) == 0)
		flags |= UMM_MAP_POPULATE;
	for (i = p; i < p + n; i++)
		busy |= m->pg[i].mapped;
	want = noreplace && busy ? -EEXIST : 0;
	oplog(w, mb, "mmap 0x%" PRIx64 "+%up %s %s%s%s (want %lld)", page_addr(w, p), n,
	      prot_str(prot), shared ? "shared" : "private",
	      flags & UMM_MAP_POPULATE ? " populate" : "", noreplace ? " noreplace" : "", want);
	rc = umm_mmap(mb->mm, page_addr(w, p), (uint64_t)n * PAGE, prot, flags, NULL, 0, &out);
	oplog_rc(w, rc);
	if (!expect_rc(w, mb, "umm_mmap", rc, want))
		return false;
	if (rc)
		return true;
	if (out != page_addr(w, p))
		return wfail(w, "umm_mmap FIXED at 0x%" PRIx64 " mapped at 0x%" PRIx64,
			     page_addr(w, p), out);
	if (shared) {
		struct sobj *o = xcalloc(1, sizeof(*o));

		o->id = w->next_obj++;
		for (i = 0; i < n; i++) {
			mpage_set_private(&m->pg[p + i], prot);
			m->pg[p + i].obj = o;
			m->pg[p + i].idx = i;
			o->refs++;
		}
	} else {
		for (i = p; i < p + n; i++)
			mpage_set_private(&m->pg[i], prot);
	}
	return true;
}

/* An op that found nothing to work on maps something instead, counted as an mmap. */
static bool fallback_mmap(struct worker *w, struct member *mb)
{
	w->done[w->kind]--;
	w->done[OP_MMAP]++;
	w->kind = OP_MMAP;
	return do_mmap(w, mb);
}

static bool do_munmap(struct worker *w, struct member *mb)
{
	unsigned int p = rnd_below(w, WIN_PAGES), n = 1 + rnd_below(w, MAX_MAP_PAGES), i;
	long long rc;

	if (rnd_below(w, 16) == 0)
		n *= 4;
	if (p + n > WIN_PAGES)
		n = WIN_PAGES - p;
	oplog(w, mb, "munmap 0x%" PRIx64 "+%up", page_addr(w, p), n);
	rc = umm_munmap(mb->mm, page_addr(w, p), (uint64_t)n * PAGE);
	oplog_rc(w, rc);
	if (!expect_rc(w, mb, "umm_munmap", rc, 0))
		return false;
	for (i = p; i < p + n; i++)
		mpage_clear(&mb->m->pg[i]);
	return true;
}

/* mprotect, only over fully mapped ranges (holes: see test_holes()). */
static bool do_mprotect(struct worker *w, struct member *mb)
{
	unsigned int p, n, i;
	int prot = pick_prot(w);
	long long rc;

	if (!pick_mapped_range(w, mb->m, &p, &n))
		return fallback_mmap(w, mb);
	oplog(w, mb, "mprotect 0x%" PRIx64 "+%up %s", page_addr(w, p), n, prot_str(prot));
	rc = umm_mprotect(mb->mm, page_addr(w, p), (uint64_t)n * PAGE, prot);
	oplog_rc(w, rc);
	if (!expect_rc(w, mb, "umm_mprotect", rc, 0))
		return false;
	for (i = p; i < p + n; i++)
		mb->m->pg[i].prot = prot;
	return true;
}

static bool do_dontneed(struct worker *w, struct member *mb)
{
	unsigned int p, n, i;
	long long rc;

	if (!pick_mapped_range(w, mb->m, &p, &n))
		return fallback_mmap(w, mb);
	oplog(w, mb, "madvise 0x%" PRIx64 "+%up DONTNEED", page_addr(w, p), n);
	rc = umm_madvise(mb->mm, page_addr(w, p), (uint64_t)n * PAGE, UMM_MADV_DONTNEED);
	oplog_rc(w, rc);
	if (!expect_rc(w, mb, "umm_madvise(DONTNEED)", rc, 0))
		return false;
	for (i = p; i < p + n; i++) {
		struct mpage *pg = &mb->m->pg[i];

		if (!pg->obj) {		/* private: back to zeros; shared: kept */
			free(pg->data);
			pg->data = NULL;
		}
	}
	return true;
}

/*
 * The engine's VMA around mapped page @p, in pages [*vs, *ve), checked
 * against the model: inside the window, every page mapped with the VMA's
 * prot, private or one shared object at consecutive offsets.
 */
static bool vma_of(struct worker *w, struct member *mb, unsigned int p, unsigned int *vs,
		   unsigned int *ve, struct umm_vma_info *vi)
{
	struct wmodel *m = mb->m;
	uint64_t end = page_addr(w, WIN_PAGES);
	int rc = umm_mm_vma_next(mb->mm, page_addr(w, p), vi);

	if (rc || vi->start > page_addr(w, p))
		return wfail(w, "mm %s: no VMA at mapped 0x%" PRIx64 " (umm_mm_vma_next: %d)",
			     mb->name, page_addr(w, p), rc);
	if (vi->start < w->base || vi->end > end || (vi->start | vi->end) % PAGE)
		return wfail(w, "mm %s: VMA [0x%" PRIx64 ", 0x%" PRIx64 ") leaves the window",
			     mb->name, vi->start, vi->end);
	*vs = (vi->start - w->base) / PAGE;
	*ve = (vi->end - w->base) / PAGE;
	for (unsigned int i = *vs; i < *ve; i++) {
		const struct mpage *pg = &m->pg[i], *prev = i > *vs ? &m->pg[i - 1] : NULL;
		char ps[64];

		if (pg->mapped && pg->prot == vi->prot && !!pg->obj == vi->shared &&
		    (!pg->obj || !prev || (prev->obj == pg->obj && prev->idx + 1 == pg->idx)))
			continue;
		describe_page(pg, ps, sizeof(ps));
		return wfail(w, "mm %s: VMA [0x%" PRIx64 ", 0x%" PRIx64 ") %s %s disagrees with "
			     "the model at 0x%" PRIx64 " (%s)", mb->name, vi->start, vi->end,
			     prot_str(vi->prot), vi->shared ? "shared" : "private",
			     page_addr(w, i), ps);
	}
	return true;
}

/* A place for @nn pages in the window that does not overlap [os, os + on). */
static bool pick_dest(struct worker *w, unsigned int os, unsigned int on, unsigned int nn,
		      unsigned int *dst)
{
	if (nn > WIN_PAGES)
		return false;
	for (int i = 0; i < 16; i++) {
		*dst = rnd_below(w, WIN_PAGES - nn + 1);
		if (*dst + nn <= os || *dst >= os + on)
			return true;
	}
	return false;
}

enum { MR_SHRINK, MR_GROW, MR_MOVE, MR_DONTUNMAP };

/*
 * mremap inside one VMA: shrink in place, grow in place (or -ENOMEM when
 * the VMA does not end there or the room is taken), move with
 * MAYMOVE|FIXED (same size, smaller, or larger for private), or move with
 * DONTUNMAP.  Shared mappings are never grown (Linux lets the VMA outgrow
 * its shmem object and faults beyond it SIGBUS) nor DONTUNMAPped.
 */
static bool do_mremap(struct worker *w, struct member *mb)
{
	static const char *const kname[] = { "shrink", "grow", "move", "dontunmap" };
	struct wmodel *m = mb->m;
	struct umm_vma_info vi;
	unsigned int p, vs, ve, os, on, nn, dst = 0, i, k, nmove;
	int kind, flags = 0;
	bool shared, can = true;
	uint64_t out = 0, want_addr;
	long long rc, want = 0;

	if (!pick_page(w, m, &p))
		return fallback_mmap(w, mb);
	if (!vma_of(w, mb, p, &vs, &ve, &vi))
		return false;
	shared = m->pg[vs].obj;
	os = vs + rnd_below(w, ve - vs);
	on = 1 + rnd_below(w, ve - os);
	kind = rnd_below(w, 4);
	if (shared && (kind == MR_GROW || kind == MR_DONTUNMAP))
		kind = MR_MOVE;
	if (kind == MR_SHRINK && on < 2)
		kind = MR_MOVE;
	if (kind == MR_GROW && os + on >= WIN_PAGES)
		kind = MR_MOVE;		/* growing would leave the window */

	switch (kind) {
	case MR_SHRINK:
		nn = 1 + rnd_below(w, on - 1);
		if (rnd_below(w, 2))
			flags = UMM_MREMAP_MAYMOVE;
		want_addr = page_addr(w, os);
		break;
	case MR_GROW:
		k = 1 + rnd_below(w, 8);
		if (os + on + k > WIN_PAGES)
			k = WIN_PAGES - os - on;
		nn = on + k;
		can = os + on == ve;
		for (i = ve; can && i < ve + k; i++)
			can = !m->pg[i].mapped;
		/* MAYMOVE only when it stays in place: a move would land outside the window. */
		if (can && rnd_below(w, 2))
			flags = UMM_MREMAP_MAYMOVE;
		want = can ? 0 : -ENOMEM;
		want_addr = page_addr(w, os);
		break;
	case MR_MOVE:
		nn = on;
		if (rnd_below(w, 3) == 0)
			nn = 1 + rnd_below(w, on);
		else if (!shared && rnd_below(w, 3) == 0)
			nn = on + 1 + rnd_below(w, 8);
		flags = UMM_MREMAP_MAYMOVE | UMM_MREMAP_FIXED;
		break;
	default:
		nn = on;
		flags = UMM_MREMAP_MAYMOVE | UMM_MREMAP_FIXED | UMM_MREMAP_DONTUNMAP;
		break;
	}
	if (flags & UMM_MREMAP_FIXED) {
		if (!pick_dest(w, os, on, nn, &dst)) {
			oplog_note(w, mb, "mremap: no room to move %up", nn);
			return true;
		}
		want_addr = page_addr(w, dst);
	}

	oplog(w, mb, "mremap %s 0x%" PRIx64 "+%up -> %up at 0x%" PRIx64 " flags %#x "
	      "(vma %s %s +%up, want %lld)", kname[kind], page_addr(w, os), on, nn, want_addr,
	      flags, prot_str(vi.prot), shared ? "shared" : "private", ve - vs, want);
	rc = umm_mremap(mb->mm, page_addr(w, os), (uint64_t)on * PAGE, (uint64_t)nn * PAGE,
			flags, flags & UMM_MREMAP_FIXED ? want_addr : 0, &out);
	oplog_rc(w, rc);
	if (!expect_rc(w, mb, "umm_mremap", rc, want))
		return false;
	if (rc)
		return true;
	if (out != want_addr)
		return wfail(w, "umm_mremap in mm %s gave 0x%" PRIx64 ", expected 0x%" PRIx64,
			     mb->name, out, want_addr);

	switch (kind) {
	case MR_SHRINK:
		for (i = os + nn; i < os + on; i++)
			mpage_clear(&m->pg[i]);
		break;
	case MR_GROW:
		for (i = os + on; i < os + nn; i++)
			mpage_set_private(&m->pg[i], vi.prot);
		break;
	default:
		/* Take the moving pages out, drop the cut tail, then land them. */
		nmove = on < nn ? on : nn;
		for (i = 0; i < nmove; i++) {
			w->tmp[i] = m->pg[os + i];
			memset(&m->pg[os + i], 0, sizeof(m->pg[0]));
		}
		for (i = os + nmove; i < os + on; i++)
			mpage_clear(&m->pg[i]);
		if (kind == MR_DONTUNMAP)	/* the old range stays, emptied */
			for (i = os; i < os + on; i++)
				mpage_set_private(&m->pg[i], vi.prot);
		for (i = dst; i < dst + nn; i++)
			mpage_clear(&m->pg[i]);
		for (i = 0; i < nmove; i++)
			m->pg[dst + i] = w->tmp[i];
		for (i = dst + nmove; i < dst + nn; i++)	/* grown while moving */
			mpage_set_private(&m->pg[i], vi.prot);
		break;
	}
	return true;
}

/*
 * GUP one page, compare its frame with the model through the direct
 * pointer, and for a write GUP store through the pointer: legal, because
 * the page was just COW-broken for this mm.
 */
static bool do_gup(struct worker *w, struct member *mb)
{
	unsigned int p, off, n;
	bool write = rnd_below(w, 2), maybe = false, ok = true;
	bool locked = write && mb == &w->fam[0];	/* see racer_main() */
	struct umm_page *page = NULL;
	struct mpage *pg;
	uint64_t addr;
	long long rc, want;
	uint8_t *frame;

	if (write)
		pick_writable_page(w, mb->m, &p);
	else
		pick_page(w, mb->m, &p);
	pg = &mb->m->pg[p];
	addr = page_addr(w, p) + (rnd_below(w, 2) ? rnd_below(w, PAGE) : 0);
	want = mpage_can(pg, write) ? 0 : -EFAULT;
	/* A read GUP of a write- or exec-only page: Linux refuses (check_vma_flags()
	 * wants VM_READ) though the CPU may read it; accept either answer. */
	if (!write && pg->mapped && !(pg->prot & UMM_PROT_READ) && mpage_can(pg, false))
		maybe = true;
	oplog(w, mb, "gup %s 0x%" PRIx64 " (want %lld%s)", write ? "write" : "read", addr, want,
	      maybe ? " or -EFAULT" : "");
	if (locked)
		pthread_mutex_lock(&w->gup_lock);
	rc = umm_get_user_page(mb->mm, addr, write ? UMM_GUP_WRITE : 0, &page);
	oplog_rc(w, rc);
	if (maybe && rc == -EFAULT) {
		w->errs[OP_GUP]++;
		goto out;
	}
	ok = expect_rc(w, mb, "umm_get_user_page", rc, want);
	if (!ok || rc)
		goto out;
	frame = umm_page_address(page);
	if (!frame) {
		ok = wfail(w, "umm_page_address gave NULL for 0x%" PRIx64, addr);
		goto put;
	}
	ok = check_bytes(w, mb, write ? "gup-write frame" : "gup frame", page_addr(w, p),
			 mpage_bytes(pg), frame, PAGE);
	if (ok && write) {
		off = rnd_below(w, PAGE);
		n = 1 + rnd_below(w, PAGE - off);
		fill_pattern(w->buf, n, rnd(w));
		memcpy(frame + off, w->buf, n);
		memcpy(mpage_bytes_w(pg) + off, w->buf, n);
		oplog_note(w, mb, "  stored %u bytes at +%u through the frame pointer", n, off);
	}
put:
	umm_put_page(page);
out:
	if (locked)
		pthread_mutex_unlock(&w->gup_lock);
	return ok;
}

static int free_child_slot(struct worker *w)
{
	for (unsigned int i = 1; i <= FAMILY_MAX; i++)
		if (!w->fam[i].mm)
			return i;
	return -1;
}

static struct member *random_child(struct worker *w)
{
	unsigned int live[FAMILY_MAX], n = 0;

	for (unsigned int i = 1; i <= FAMILY_MAX; i++)
		if (w->fam[i].mm)
			live[n++] = i;
	return n ? &w->fam[live[rnd_below(w, n)]] : NULL;
}

static void member_exit(struct worker *w, struct member *mb)
{
	oplog_note(w, mb, "exit");
	umm_mm_exit(mb->mm);
	wmodel_free(mb->m);
	memset(mb, 0, sizeof(*mb));
}

static bool do_exit(struct worker *w)
{
	struct member *mb = random_child(w);

	if (mb)
		member_exit(w, mb);
	return true;
}

static struct member *random_member(struct worker *w)
{
	struct member *c;

	if (rnd_below(w, 3) == 0 || !(c = random_child(w)))
		return &w->fam[0];
	return c;
}

static bool do_fork(struct worker *w)
{
	struct member *parent = random_member(w), *child;
	int slot = free_child_slot(w);
	long long rc;

	if (slot < 0) {
		child = random_child(w);
		if (child == parent)
			parent = &w->fam[0];
		member_exit(w, child);
		slot = child - w->fam;
	}
	child = &w->fam[slot];
	oplog(w, parent, "fork -> c%u", w->next_child);
	rc = umm_mm_fork(parent->mm, &child->mm);
	oplog_rc(w, rc);
	if (!expect_rc(w, parent, "umm_mm_fork", rc, 0)) {
		child->mm = NULL;
		return false;
	}
	child->m = wmodel_dup(parent->m);
	/* "c5<c3": child 5, forked from child 3 (only the direct parent is named) */
	snprintf(child->name, sizeof(child->name), "c%u<%.*s", w->next_child++,
		 (int)strcspn(parent->name, "<"), parent->name);
	return true;
}

static enum op_kind pick_op(struct worker *w)
{
	unsigned int x, k, total = 0;

	for (k = 0; k < NR_OPS; k++)
		total += op_weight[k];
	x = rnd_below(w, total);
	for (k = 0; x >= op_weight[k]; k++)
		x -= op_weight[k];
	return k;
}

static bool do_op(struct worker *w)
{
	enum op_kind k = pick_op(w);
	struct member *mb = random_member(w);

	w->done[k]++;
	w->kind = k;
	switch (k) {
	case OP_READ:		return do_read(w, mb);
	case OP_WRITE:		return do_write(w, mb);
	case OP_MMAP:		return do_mmap(w, mb);
	case OP_MUNMAP:		return do_munmap(w, mb);
	case OP_MPROTECT:	return do_mprotect(w, mb);
	case OP_MREMAP:		return do_mremap(w, mb);
	case OP_DONTNEED:	return do_dontneed(w, mb);
	case OP_GUP:		return do_gup(w, mb);
	case OP_FORK:		return do_fork(w);
	case OP_EXIT:		return do_exit(w);
	default:		return false;
	}
}

/*
 * Check one member's whole window: the VMAs the engine lists there against
 * the model, pagemap's answer (a VMA or -EFAULT) and every page's bytes.
 */
static bool verify_member(struct worker *w, struct member *mb)
{
	struct wmodel *m = mb->m;
	uint64_t a = w->base, end = page_addr(w, WIN_PAGES);
	bool covered[WIN_PAGES] = { false };
	struct umm_vma_info vi;
	struct umm_pageinfo pi;
	unsigned int vs, ve, i;
	long long rc, want;

	for (;;) {
		rc = umm_mm_vma_next(mb->mm, a, &vi);
		if (rc == -ENOENT || (!rc && vi.start >= end))
			break;
		if (rc)
			return wfail(w, "umm_mm_vma_next(%s, 0x%" PRIx64 "): %lld", mb->name, a, rc);
		if (vi.start < w->base || vi.end > end || vi.end <= a)
			return wfail(w, "mm %s: VMA [0x%" PRIx64 ", 0x%" PRIx64 ") leaves the window",
				     mb->name, vi.start, vi.end);
		if (!vma_of(w, mb, (vi.start - w->base) / PAGE, &vs, &ve, &vi))
			return false;
		for (i = vs; i < ve; i++)
			covered[i] = true;
		a = vi.end;
	}
	for (i = 0; i < WIN_PAGES; i++) {
		struct mpage *pg = &m->pg[i];
		uint64_t pa = page_addr(w, i);

		if (pg->mapped && !covered[i])
			return wfail(w, "mm %s: model maps 0x%" PRIx64 " but no VMA covers it",
				     mb->name, pa);
		rc = umm_pagemap(mb->mm, pa, &pi);
		if (rc != (pg->mapped ? 0 : -EFAULT))
			return wfail(w, "umm_pagemap(%s, 0x%" PRIx64 ") = %lld, page is %s", mb->name,
				     pa, rc, pg->mapped ? "mapped" : "unmapped");
		want = mpage_can(pg, false) ? PAGE : -EFAULT;
		rc = umm_read(mb->mm, pa, w->buf, PAGE);
		if (rc != want)
			return wfail(w, "verify: umm_read(%s, 0x%" PRIx64 ", 1 page) = %lld, "
				     "expected %lld", mb->name, pa, rc, want);
		if (rc > 0 && !check_bytes(w, mb, "verify (after this op)", pa, mpage_bytes(pg),
					   w->buf, PAGE))
			return false;
		w->nverify++;
	}
	return true;
}

static bool verify_family(struct worker *w)
{
	for (unsigned int i = 0; i <= FAMILY_MAX; i++)
		if (w->fam[i].mm && !verify_member(w, &w->fam[i]))
			return false;
	return true;
}

/* ---- meeting points ---- */

static void validate_now(struct run *r, const char *when)
{
	char msg[512] = "";
	int rc;

	if (atomic_load(&r->failed))
		return;
	rc = umm_validate(r->u, UMM_VALIDATE_EXACT | UMM_VALIDATE_RMAP, msg, sizeof(msg));
	r->nvalidate++;
	if (rc) {
		pthread_mutex_lock(&print_lock);
		printf("# FAIL: %s: seed %" PRIu64 ": umm_validate %s: %d: %s\n", r->name,
		       r->seed, when, rc, msg);
		fflush(stdout);
		pthread_mutex_unlock(&print_lock);
		atomic_store(&r->failed, true);
	}
}

/*
 * Every thread (workers and racer) comes here at each meeting point: the
 * machine is quiet between the two barrier waits, so one of them validates.
 */
static void meet(struct run *r, unsigned long epoch)
{
	char when[48];

	if (pthread_barrier_wait(&r->bar) == PTHREAD_BARRIER_SERIAL_THREAD) {
		snprintf(when, sizeof(when), "at meeting point %lu", epoch);
		validate_now(r, when);
	}
	pthread_barrier_wait(&r->bar);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct run *r = w->run;

	for (w->op = 0; w->op < r->ops; w->op++) {
		if (!atomic_load(&r->failed))
			do_op(w);
		if ((w->op + 1) % SYNC_EVERY == 0) {
			unsigned long epoch = (w->op + 1) / SYNC_EVERY;

			atomic_store(&r->sync_epoch, epoch);
			meet(r, epoch);
			if (!atomic_load(&r->failed))
				verify_family(w);
		}
	}
	if (!atomic_load(&r->failed))
		verify_family(w);	/* every page of every modelled window, once more */
	return NULL;
}

static void racer_fail(struct run *r, const char *call, uint64_t addr, long long rc)
{
	pthread_mutex_lock(&print_lock);
	printf("# FAIL: %s: seed %" PRIu64 ": racer: %s(0x%" PRIx64 ") = %lld\n", r->name,
	       r->seed, call, addr, rc);
	fflush(stdout);
	pthread_mutex_unlock(&print_lock);
	atomic_store(&r->failed, true);
}

/*
 * Races lookups against the workers' changes of the shared mm: reads,
 * pagemap, VMA lookups and GUP (read, or write without storing: it breaks
 * COW under the owner's feet but changes no byte) at random addresses of
 * every window.  Models nothing; checks return codes only.
 *
 * A write GUP here is kept out of the window of an owner that holds a GUP
 * pointer in the shared mm (worker.gup_lock): once another worker has
 * forked the shared mm, it would break COW and move the page to a new frame
 * while the owner still stores through the old one; with no pin and no
 * notifier that store legitimately lands in the old frame only.
 */
static void *racer_main(void *arg)
{
	struct run *r = arg;
	uint64_t rng = splitmix64(r->seed ^ 0x7261636572ULL);
	unsigned long seen = 0, n = 0;
	uint8_t buf[2 * PAGE];
	struct umm_pageinfo pi;
	struct umm_vma_info vi;
	struct umm_page *page;

	while (!atomic_load(&r->stop)) {
		unsigned long epoch = atomic_load(&r->sync_epoch);
		uint64_t x = tap_rand(&rng), addr;
		size_t len = 1 + (x >> 40) % sizeof(buf);
		long long rc;

		if (epoch != seen) {
			seen = epoch;
			meet(r, epoch);
			continue;
		}
		if (atomic_load(&r->failed))
			continue;
		addr = WIN_BASE + (x >> 8) % r->nthreads * WIN_STRIDE +
		       (x >> 20) % ((WIN_PAGES + 1) * PAGE);
		switch (x & 7) {
		case 0: case 1: case 2:
			if (RACER_READS) {
				rc = umm_read(r->shared, addr, buf, len);
				if ((rc < 0 && rc != -EFAULT && rc != -ENOMEM) || rc > (long long)len)
					racer_fail(r, "umm_read", addr, rc);
				break;
			}
			/* fall through */
		case 3: case 4:
			rc = umm_pagemap(r->shared, addr & ~(uint64_t)(PAGE - 1), &pi);
			if (rc != 0 && rc != -EFAULT)
				racer_fail(r, "umm_pagemap", addr, rc);
			break;
		case 5:
			rc = umm_mm_vma_next(r->shared, addr, &vi);
			if ((rc && rc != -ENOENT) || (!rc && vi.end <= addr))
				racer_fail(r, "umm_mm_vma_next", addr, rc);
			break;
		default:
		{
			struct worker *owner = &r->w[(addr - WIN_BASE) / WIN_STRIDE];
			bool write = (x & 1) && !pthread_mutex_trylock(&owner->gup_lock);

			rc = umm_get_user_page(r->shared, addr, write ? UMM_GUP_WRITE : 0, &page);
			if (!rc)
				umm_put_page(page);
			if (write)
				pthread_mutex_unlock(&owner->gup_lock);
			if (rc && rc != -EFAULT && rc != -ENOMEM)
				racer_fail(r, "umm_get_user_page", addr, rc);
			break;
		}
		}
		n++;
	}
	atomic_store(&r->racer_ops, n);
	return NULL;
}

/* ---- one run ---- */

struct run_opts {
	const char *name;
	uint64_t seed;
	unsigned int nthreads, nodes;
	unsigned long ops;		/* per worker */
	bool racer;
	unsigned int pin_cpus;		/* 0: let the host schedule */
	long corrupt_at;		/* -1: off */
};

static void log_hook(void *ctx, int level, const char *msg)
{
	pthread_mutex_lock(&print_lock);
	printf("# umm log (%d): %s\n", level, msg);
	pthread_mutex_unlock(&print_lock);
}

static void leak_cb(void *ctx, uint64_t pfn, int refcount, int mapcount, unsigned long flags)
{
	unsigned int *n = ctx;

	if ((*n)++ < 8)
		printf("#   leaked pfn %" PRIu64 ": refcount %d mapcount %d flags %#lx\n", pfn,
		       refcount, mapcount, flags);
}

/* Restrict @tid to the first @n CPUs this process may use (oversubscription). */
static void pin_thread(pthread_t tid, unsigned int n)
{
	cpu_set_t allowed, set;
	unsigned int got = 0;

	if (!n || sched_getaffinity(0, sizeof(allowed), &allowed))
		return;
	CPU_ZERO(&set);
	for (int c = 0; c < CPU_SETSIZE && got < n; c++)
		if (CPU_ISSET(c, &allowed)) {
			CPU_SET(c, &set);
			got++;
		}
	pthread_setaffinity_np(tid, sizeof(set), &set);
}

static double now_sec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/*
 * Frames enough that none ever runs out: every mm (the shared one and every
 * child) may hold every window fully mapped, private pages copied, with
 * room for shared objects outliving parts of their mappings and for page
 * tables.  Out-of-memory is another test's business.
 */
static size_t phys_bytes_for(unsigned int nthreads, unsigned int nodes)
{
	size_t mms = 1 + (size_t)nthreads * FAMILY_MAX;
	size_t pages = mms * nthreads * WIN_PAGES * 4 + 16384;

	return pages * PAGE * (nodes > 1 ? 2 : 1);
}

/* Return: true if the run saw no failure. */
static bool stress_run(const struct run_opts *o)
{
	struct umm_config cfg;
	struct run r = { 0 };
	unsigned long total[NR_OPS] = { 0 }, errs[NR_OPS] = { 0 }, nops = 0, nverify = 0;
	unsigned int t, nleak = 0;
	pthread_t racer;
	double t0 = now_sec();
	long leaks;
	bool ok;

	r.name = o->name;
	r.seed = o->seed;
	r.nthreads = o->nthreads;
	r.ops = o->ops;
	r.racer = o->racer;
	r.corrupt_at = o->corrupt_at;
	atomic_init(&r.failed, false);
	atomic_init(&r.stop, false);
	atomic_init(&r.sync_epoch, 0);
	atomic_init(&r.racer_ops, 0);

	umm_config_init(&cfg);
	cfg.phys_bytes = phys_bytes_for(o->nthreads, o->nodes);
	cfg.nr_nodes = o->nodes;
	if (umm_create(&cfg, &r.u)) {
		printf("# %s: umm_create(%zu bytes, %u nodes) failed\n", o->name, cfg.phys_bytes,
		       o->nodes);
		return false;
	}
	umm_set_log(r.u, log_hook, NULL);
	if (umm_mm_create(r.u, &r.shared)) {
		printf("# %s: umm_mm_create failed\n", o->name);
		umm_destroy(r.u);
		return false;
	}
	TAP_DIAG("%s: seed %" PRIu64 ", %u thread(s)%s, %lu ops each, %u node(s), %zu MiB%s",
		 o->name, o->seed, o->nthreads, o->racer ? " + racer" : "", o->ops, o->nodes,
		 cfg.phys_bytes >> 20, o->pin_cpus ? ", pinned to 2 CPUs" : "");

	r.w = xcalloc(o->nthreads, sizeof(*r.w));
	for (t = 0; t < o->nthreads; t++) {
		struct worker *w = &r.w[t];

		w->run = &r;
		w->idx = t;
		w->rng = splitmix64(o->seed + t);
		w->base = WIN_BASE + t * WIN_STRIDE;
		w->fam[0].mm = r.shared;
		w->fam[0].m = xcalloc(1, sizeof(struct wmodel));
		strcpy(w->fam[0].name, "S");
		w->next_child = 1;
		pthread_mutex_init(&w->gup_lock, NULL);
	}
	pthread_barrier_init(&r.bar, NULL, o->nthreads + (o->racer ? 1 : 0));
	for (t = 0; t < o->nthreads; t++) {
		if (pthread_create(&r.w[t].tid, NULL, worker_main, &r.w[t])) {
			fprintf(stderr, "t_stress_diff: pthread_create failed\n");
			abort();
		}
		pin_thread(r.w[t].tid, o->pin_cpus);
	}
	if (o->racer) {
		if (pthread_create(&racer, NULL, racer_main, &r)) {
			fprintf(stderr, "t_stress_diff: pthread_create failed\n");
			abort();
		}
		pin_thread(racer, o->pin_cpus);
	}
	for (t = 0; t < o->nthreads; t++)
		pthread_join(r.w[t].tid, NULL);
	atomic_store(&r.stop, true);
	if (o->racer)
		pthread_join(racer, NULL);
	pthread_barrier_destroy(&r.bar);

	/* Tear down step by step, validating in between. */
	validate_now(&r, "after the run");
	for (t = 0; t < o->nthreads; t++)
		for (unsigned int i = 1; i <= FAMILY_MAX; i++)
			if (r.w[t].fam[i].mm)
				member_exit(&r.w[t], &r.w[t].fam[i]);
	validate_now(&r, "after the children exited");
	umm_mm_exit(r.shared);
	validate_now(&r, "after every mm exited");
	leaks = umm_leak_check(r.u, leak_cb, &nleak);
	if (leaks) {
		printf("# FAIL: %s: seed %" PRIu64 ": umm_leak_check: %ld frame(s) leaked\n",
		       o->name, o->seed, leaks);
		atomic_store(&r.failed, true);
	}
	umm_destroy(r.u);

	for (t = 0; t < o->nthreads; t++) {
		for (int k = 0; k < NR_OPS; k++) {
			total[k] += r.w[t].done[k];
			errs[k] += r.w[t].errs[k];
			nops += r.w[t].done[k];
		}
		nverify += r.w[t].nverify;
		pthread_mutex_destroy(&r.w[t].gup_lock);
		wmodel_free(r.w[t].fam[0].m);
	}
	free(r.w);
	ok = !atomic_load(&r.failed);
	{
		char kinds[384];
		int n = 0;

		for (int k = 0; k < NR_OPS; k++)
			n += snprintf(kinds + n, sizeof(kinds) - n, "%s%s %lu/%lu", k ? ", " : "",
				      op_name[k], total[k], errs[k]);
		TAP_DIAG("%s: %lu ops in %.2f s (by kind: issued/expected to fail: %s), "
			 "%lu pages verified, %lu validations, racer %lu ops", o->name, nops,
			 now_sec() - t0, kinds, nverify,
			 r.nvalidate, atomic_load(&r.racer_ops));
	}
	return ok;
}

/* ---- the tests ---- */

static uint64_t seed;
static unsigned long arg_ops;		/* --ops: per worker, multi-thread run */
static unsigned int arg_threads;	/* --threads */

/*
 * Ops per worker.  Short (CI's sanitizer builds): about 2 s for the whole
 * program under TSan; default: 10-20 s; long: ten times the default.
 */
static unsigned long scale_ops(unsigned long short_ops, unsigned long dflt)
{
	if (tap_short())
		return short_ops;
	if (tap_long())
		return dflt * 10;
	return dflt;
}

static bool test_single_thread(void)
{
	struct run_opts o = {
		.name = "single-thread", .seed = seed, .nthreads = 1, .nodes = 1,
		.ops = scale_ops(4000, 400000), .corrupt_at = -1,
	};

	return stress_run(&o);
}

static bool test_multi_thread(void)
{
	struct run_opts o = {
		.name = "multi-thread", .seed = seed + 1000, .nthreads = 4, .nodes = 1,
		.ops = scale_ops(2000, 200000), .racer = true, .pin_cpus = 2, .corrupt_at = -1,
	};

	if (arg_threads)
		o.nthreads = arg_threads;
	if (arg_ops)
		o.ops = arg_ops;
	return stress_run(&o);
}

static bool test_two_nodes(void)
{
	struct run_opts o = {
		.name = "two-nodes", .seed = seed + 2000, .nthreads = 2, .nodes = 2,
		.ops = scale_ops(2000, 200000), .racer = true, .corrupt_at = -1,
	};

	return stress_run(&o);
}

/*
 * The checker itself: a run whose model has one byte flipped must fail.
 * Proves a mismatch is caught and reported (the report is printed, marked
 * as expected).
 */
static bool test_detects_corruption(void)
{
	struct run_opts o = {
		.name = "self-test", .seed = seed + 3000, .nthreads = 1, .nodes = 1,
		.ops = 2000, .corrupt_at = 200,
	};

	return !stress_run(&o);
}

/*
 * The hole cases the random ops avoid, drawn (each char one page):
 *
 *   AA.BB    A: rw- private, B: r-- private (written while it was rw-),
 *            '.' a hole
 *
 * mprotect over the hole answers -ENOMEM and leaves B alone (it stops at
 * the hole); madvise(DONTNEED) over it answers -ENOMEM too but, as Linux's
 * madvise_walk_vmas() does, still applies the advice to every mapped part,
 * on both sides of the hole.  mremap of a range that is not inside one VMA
 * answers -EFAULT, conflicting mremap flags -EINVAL, a grow into B -ENOMEM.
 */
static bool test_holes(void)
{
	struct umm_config cfg;
	struct umm *u;
	struct umm_mm *mm;
	struct umm_vma_info vi;
	uint64_t a = WIN_BASE, out;
	char msg[256];
	uint8_t b = 0x5a;
	bool ok = false;

	umm_config_init(&cfg);
	cfg.phys_bytes = 16 << 20;
	ASSERT_OK(umm_create(&cfg, &u));
	if (umm_mm_create(u, &mm))
		goto destroy;
#define CHECK(x) do { if (!(x)) { printf("# %s:%d: test_holes: %s\n", __FILE__, __LINE__, #x); \
		goto out; } } while (0)
	CHECK(!umm_mmap(mm, a, 2 * PAGE, UMM_PROT_READ | UMM_PROT_WRITE,
			UMM_MAP_PRIVATE | UMM_MAP_ANONYMOUS | UMM_MAP_FIXED, NULL, 0, &out));
	CHECK(!umm_mmap(mm, a + 3 * PAGE, 2 * PAGE, UMM_PROT_READ | UMM_PROT_WRITE,
			UMM_MAP_PRIVATE | UMM_MAP_ANONYMOUS | UMM_MAP_FIXED, NULL, 0, &out));
	CHECK(umm_write(mm, a, &b, 1) == 1);
	CHECK(umm_write(mm, a + 3 * PAGE, &b, 1) == 1);
	CHECK(!umm_mprotect(mm, a + 3 * PAGE, 2 * PAGE, UMM_PROT_READ));

	CHECK(umm_mprotect(mm, a, 5 * PAGE, UMM_PROT_READ | UMM_PROT_WRITE) == -ENOMEM);
	CHECK(!umm_mm_vma_next(mm, a + 3 * PAGE, &vi));
	CHECK(vi.start == a + 3 * PAGE && vi.prot == UMM_PROT_READ);
	CHECK(umm_write(mm, a + 3 * PAGE, &b, 1) == -EFAULT);
	CHECK(umm_mprotect(mm, a + 2 * PAGE, PAGE, UMM_PROT_READ) == -ENOMEM);

	CHECK(umm_mremap(mm, a + 2 * PAGE, PAGE, 2 * PAGE, 0, 0, &out) == -EFAULT);
	CHECK(umm_mremap(mm, a, 4 * PAGE, 4 * PAGE, UMM_MREMAP_MAYMOVE | UMM_MREMAP_FIXED,
			 a + 16 * PAGE, &out) == -EFAULT);
	CHECK(umm_mremap(mm, a, 2 * PAGE, 2 * PAGE, UMM_MREMAP_MAYMOVE | UMM_MREMAP_FIXED,
			 a + PAGE, &out) == -EINVAL);		/* overlap */
	CHECK(umm_mremap(mm, a, 2 * PAGE, 2 * PAGE, UMM_MREMAP_FIXED, a + 16 * PAGE,
			 &out) == -EINVAL);			/* FIXED without MAYMOVE */
	CHECK(umm_mremap(mm, a, PAGE, 2 * PAGE, UMM_MREMAP_MAYMOVE | UMM_MREMAP_FIXED |
			 UMM_MREMAP_DONTUNMAP, a + 16 * PAGE, &out) == -EINVAL);
	CHECK(umm_mremap(mm, a, 2 * PAGE, 4 * PAGE, 0, 0, &out) == -ENOMEM);	/* B is in the way */

	/* None of that touched the data... */
	b = 0;
	CHECK(umm_read(mm, a, &b, 1) == 1 && b == 0x5a);
	b = 0;
	CHECK(umm_read(mm, a + 3 * PAGE, &b, 1) == 1 && b == 0x5a);
	/* ...DONTNEED over the hole does, on both sides. */
	CHECK(umm_madvise(mm, a + 2 * PAGE, PAGE, UMM_MADV_DONTNEED) == -ENOMEM);
	CHECK(umm_madvise(mm, a, 5 * PAGE, UMM_MADV_DONTNEED) == -ENOMEM);
	CHECK(umm_read(mm, a, &b, 1) == 1 && b == 0);
	b = 0x5a;
	CHECK(umm_read(mm, a + 3 * PAGE, &b, 1) == 1 && b == 0);

	CHECK(!umm_munmap(mm, a, 8 * PAGE));		/* over holes: fine */
	CHECK(umm_read(mm, a, &b, 1) == -EFAULT);
	CHECK(!umm_validate(u, UMM_VALIDATE_EXACT | UMM_VALIDATE_RMAP, msg, sizeof(msg)));
	ok = true;
#undef CHECK
out:
	umm_mm_exit(mm);
	if (ok && umm_leak_check(u, NULL, NULL)) {
		printf("# test_holes: frames leaked\n");
		ok = false;
	}
destroy:
	umm_destroy(u);
	return ok;
}

static void usage(const char *prog)
{
	fprintf(stderr, "usage: %s [--ops N] [--threads T] [--test NAME] [--trace]\n"
		"  --ops N      ops per worker in the multi-thread run\n"
		"  --threads T  workers in the multi-thread run (1..%u)\n"
		"  --test NAME  run only test_NAME (holes, single_thread, multi_thread,\n"
		"               two_nodes, detects_corruption): to replay one failure\n"
		"  --trace      print every op of every worker as it completes\n"
		"  --history N  after a failure show the worker's last N ops (default 20,\n"
		"               at most %u)\n"
		"  env: UMM_SEED=S replays, UMM_TEST_SHORT=1 / UMM_TEST_LONG=1 size the runs\n",
		prog, MAX_THREADS, LOG_RING);
	exit(2);
}

static const char *only;		/* --test */

#define RUN_SELECTED(fn) do { \
	if (!only || !strcmp(only, #fn + 5)) \
		RUN_TEST(fn); \
} while (0)

int main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--ops") && i + 1 < argc)
			arg_ops = strtoul(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
			arg_threads = strtoul(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "--test") && i + 1 < argc)
			only = argv[++i];
		else if (!strcmp(argv[i], "--trace"))
			trace = true;
		else if (!strcmp(argv[i], "--history") && i + 1 < argc)
			log_show = strtoul(argv[++i], NULL, 0);
		else
			usage(argv[0]);
	}
	if (arg_threads > MAX_THREADS || log_show > LOG_RING)
		usage(argv[0]);
	seed = tap_seed();
	RUN_SELECTED(test_holes);
	RUN_SELECTED(test_single_thread);
	RUN_SELECTED(test_multi_thread);
	RUN_SELECTED(test_two_nodes);
	RUN_SELECTED(test_detects_corruption);
	return tap_done();
}
