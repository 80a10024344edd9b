/* SPDX-License-Identifier: MIT */
/*
 * t_soak.c - every subsystem at once, for a while, with figures.
 *
 * One machine of two nodes, with less physical memory than the workers'
 * address spaces hold (so kswapd and direct reclaim swap all the time), a
 * swap file, ksmd running with a short sleep, the notifier protocol checker
 * on, and fault injection of every kind (every enum value below
 * UMM_FAULT_NR) at a low rate.  Worker threads each own an mm and a window
 * of pages, and loop over: write a page (its content is a function of a
 * small "version", so pages across workers are often equal and KSM merges
 * them), read one back and compare, DONTNEED and PAGEOUT ranges, mprotect
 * read-only and back, mlock/munlock, move_pages to the other node, GUP,
 * munmap + mmap again, fork: the child checks its copy, writes its own,
 * is OOM-reaped half of the time, and exits, and the parent's data must not
 * have moved; and its own real file, mapped MAP_SHARED: write and read
 * pages, msync and pread() them back from the file, page out, zap and
 * migrate page-cache pages while kswapd writes them back.  At the end the
 * file, unmapped and put, must hold every page's last version.  Every mm carries a
 * recording MMU-notifier subscriber that sometimes sleeps in a blockable
 * start and refuses a non-blockable one with -EAGAIN.
 *
 * Beside each worker a client thread works on a region of the same mm
 * through the secondary MMUs of clients/: a KVM-style shadow VM with one
 * vCPU over the region (shadow.c) and a GRU-style device TLB (tlb.c),
 * both caching translations without page references and reporting them to
 * the protocol checker.  It writes and reads pages through them, compares
 * with its own model (and through the CPU path now and then), and drops,
 * pages out and migrates its pages, while the worker's forks write-protect
 * the whole mm, ksmd merges, and kswapd swaps under the cached entries.
 *
 * Every CHECK_MS the main thread parks the workers, stops ksmd, and checks
 * umm_validate(EXACT|RMAP); then everything resumes.  After each operation
 * a worker checks that no invalidation it started is still open; at the
 * end every start must have had its end, and the protocol checker must
 * have reported nothing.  At the end
 * injection goes off, every page of every window is read back, the mms
 * exit and nothing may leak.
 *
 * Violations (must be 0): a read that differs from the model, a failed
 * validation, an unpaired invalidation, a checker report, a leak, an error
 * the contract does not allow.  Errors it allows while faults are injected
 * (-ENOMEM, -EIO, -EAGAIN) are counted, not violations: the data must
 * still be there once injection stops.
 *
 * Run: t_soak [--duration SECONDS] [--threads N] [--fault KIND:PPM] (only
 * that fault kind, at that rate, instead of every kind at 300 ppm);
 * UMM_SEED replays each worker's operation sequence (the interleaving is
 * the host's).  The suite runs it for 3 s (1.5 s short); `make soak
 * DURATION=600` is the long form.
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <unistd.h>

#include "tap.h"
#include "fixture.h"
#include "shadow.h"
#include "tlb.h"

#define WPAGES		192		/* pages in each worker's window */
#define WSTRIDE		(1ULL << 30)
#define WBASE(t)	(BASE + (uint64_t)(t) * WSTRIDE)
#define MAX_THREADS	8
#define CHECK_MS	250
#define NVERS		12		/* content versions: few, so KSM finds equal pages */
#define CPAGES		32		/* pages of each client region */
#define CBASE(t)	(WBASE(t) + PG(WPAGES + 64))	/* above the window, past a gap */
#define FPAGES		16		/* pages of each worker's file */
#define FBASE(t)	(CBASE(t) + PG(CPAGES + 64))	/* its shared mapping */

enum op {
	OP_WRITE, OP_READ, OP_DONTNEED, OP_PAGEOUT, OP_MPROTECT, OP_MLOCK, OP_MOVE, OP_GUP,
	OP_REMAP, OP_FORK, OP_MERGEABLE, OP_FILE, OP_NR
};
static const char *const op_names[OP_NR] = {
	"write", "read", "dontneed", "pageout", "mprotect", "mlock", "move_pages", "gup",
	"munmap+mmap", "fork+exit", "mergeable", "file",
};
/* How often each runs, in percent. */
static const unsigned char op_weight[OP_NR] = { 36, 28, 4, 5, 3, 2, 4, 5, 2, 2, 3, 6 };
enum cop {
	COP_VCPU_WRITE, COP_VCPU_READ, COP_DEV_WRITE, COP_DEV_READ, COP_CPU_READ, COP_DONTNEED,
	COP_PAGEOUT, COP_MOVE, COP_NR
};
static const char *const cop_names[COP_NR] = {
	"vcpu write", "vcpu read", "device write", "device read", "cpu read", "dontneed",
	"pageout", "move_pages",
};
static const unsigned char cop_weight[COP_NR] = { 30, 25, 12, 15, 6, 4, 4, 4 };
static const char *const fault_names[] = {
	"frame allocation", "swap read", "swap write", "vma allocation",
	"page-table allocation", "anon_vma allocation", "rmap_item allocation",
	"notifier -EAGAIN", "notifier delay",
};

struct rec {
	struct umm_mmu_notifier mn;
	atomic_int active;
	atomic_ulong starts, eagain, sleeps;
	/*
	 * A short-lived subscriber (a reaped child's) counts only what its
	 * owner's calls start: another thread's invalidation of the mm (an rmap
	 * walk from the parent's side) may lose its end to the unregister.
	 */
	bool owned;
	pthread_t owner;
};

/* The secondary MMUs' side of a worker's mm, and its thread. */
struct client {
	pthread_t thread;
	uint64_t rnd;
	struct shadow_vm *vm;
	struct shadow_vcpu *vcpu;
	struct tlb_dev *dev;
	uint8_t ver[CPAGES];		/* version of each page of the region; 0 = zeros */
	bool unknown[CPAGES];
	uint64_t ops[COP_NR];
	uint64_t errs, checked;
};

struct worker {
	pthread_t thread;
	int id;
	uint64_t rnd;
	struct umm_mm *mm;
	struct rec rec;
	struct client c;
	/* a real file of FPAGES pages, mapped MAP_SHARED at FBASE */
	struct umm_file *file;
	char fpath[256];
	int fd;				/* plain read-only fd: pread() of what reached it */
	uint8_t fver[FPAGES];		/* version of each file page; 0 = zeros */
	uint64_t fsyncs;		/* msyncs whose pages were read back from the file */
	uint8_t ver[WPAGES];		/* version of each page; 0 = zeros */
	bool unknown[WPAGES];		/* a write that stopped part way: not checked */
	uint64_t ops[OP_NR];
	uint64_t errs;			/* allowed errors while faults are injected */
	uint64_t reaps, reap_eagain;	/* children OOM-reaped; of those, refused */
	uint64_t reap_refused;		/* non-blockable starts the child's subscriber refused */
	uint64_t checked;		/* pages compared */
};

static struct soak {
	struct umm *u;
	int nthreads;
	double duration;
	bool corrupt;			/* test_detects: the model lies once */
	atomic_bool stop, pause;
	atomic_int parked;
	atomic_ulong violations;
	unsigned long validations;
	unsigned long max_sharing, max_shared;	/* KSM, as seen at meeting points */
	uint64_t min_free, min_swap_free;	/* frames and swap slots, likewise */
	unsigned long shadow_faults, shadow_zaps, shadow_retries;	/* the clients' figures */
	unsigned long dev_hits, dev_misses, dev_flushed;
	struct worker w[MAX_THREADS];
} S;

static void violation(struct worker *w, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void violation(struct worker *w, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (atomic_fetch_add(&S.violations, 1) < 20)
		TAP_DIAG("VIOLATION (worker %d): %s", w ? w->id : -1, msg);
}

static atomic_uint nr_warnings;

/* The engine's errors are violations; its warnings are shown (the first 20). */
static void log_hook(void *ctx, int level, const char *msg)
{
	if (level <= UMM_LOG_ERR)
		violation(NULL, "engine: %s", msg);
	else if (level <= UMM_LOG_WARN && atomic_fetch_add(&nr_warnings, 1) < 20)
		TAP_DIAG("engine warning: %s", msg);
}

/* ---- page contents ---- */

static void fill(uint64_t *p, unsigned int ver)
{
	for (size_t i = 0; i < PS / 8; i++)
		p[i] = ver ? (uint64_t)ver * 0x9e3779b97f4a7c15ULL + i : 0;
}

static bool holds(const uint64_t *p, unsigned int ver)
{
	for (size_t i = 0; i < PS / 8; i++)
		if (p[i] != (ver ? (uint64_t)ver * 0x9e3779b97f4a7c15ULL + i : 0))
			return false;
	return true;
}

static bool allowed(ssize_t r)
{
	return r == -ENOMEM || r == -EIO || r == -EAGAIN;
}

/* ---- the recording subscriber ---- */

/*
 * Starts minus ends on this thread: a start and its end come from the same
 * thread (the one changing the PTEs), so a worker has none open between
 * its calls.  kswapd and ksmd are never between calls from here, so for
 * them the pairing is checked at the end, when every count must be 0.
 */
static __thread int tl_open;
static __thread uint64_t tl_rnd;	/* the callbacks' coin, one per thread */

static int rec_start(struct umm_mmu_notifier *sub, const struct umm_mmu_notifier_range *range)
{
	struct rec *r = (struct rec *)sub;
	uint64_t x;

	if (r->owned && !pthread_equal(r->owner, pthread_self()))
		return 0;
	if (!tl_rnd)
		tl_rnd = (uintptr_t)&tl_rnd | 1;
	x = tap_rand(&tl_rnd);

	if (!(range->flags & UMM_MMU_NOTIFIER_RANGE_BLOCKABLE) && x % 16 == 0) {
		atomic_fetch_add(&r->eagain, 1);
		return -EAGAIN;
	}
	if ((range->flags & UMM_MMU_NOTIFIER_RANGE_BLOCKABLE) && x % 512 == 0) {
		atomic_fetch_add(&r->sleeps, 1);
		usleep(200);		/* a slow secondary MMU */
	}
	atomic_fetch_add(&r->active, 1);
	atomic_fetch_add(&r->starts, 1);
	tl_open++;
	return 0;
}

static void rec_end(struct umm_mmu_notifier *sub, const struct umm_mmu_notifier_range *range)
{
	struct rec *r = (struct rec *)sub;

	if (r->owned && !pthread_equal(r->owner, pthread_self()))
		return;
	if (atomic_fetch_sub(&r->active, 1) <= 0)
		violation(NULL, "invalidate_range_end without a start");
	tl_open--;
}

static const struct umm_mmu_notifier_ops rec_ops = {
	.invalidate_range_start = rec_start,
	.invalidate_range_end = rec_end,
};

/* ---- the workers ---- */

static void park_if_asked(void)
{
	if (!atomic_load(&S.pause))
		return;
	atomic_fetch_add(&S.parked, 1);
	while (atomic_load(&S.pause))
		usleep(200);
	atomic_fetch_sub(&S.parked, 1);
}

static uint64_t waddr(struct worker *w, unsigned int p)
{
	return WBASE(w->id) + PG(p);
}

/* Read page @p of @mm and compare it with version @ver. */
static void check_page(struct worker *w, struct umm_mm *mm, unsigned int p, unsigned int ver,
		       const char *what)
{
	uint64_t buf[PS / 8];
	ssize_t r = umm_read(mm, waddr(w, p), buf, PS);

	if (r != PS) {
		if (r < 0 && allowed(r))
			w->errs++;
		else
			violation(w, "%s: read of page %u: %zd", what, p, r);
		return;
	}
	w->checked++;
	if (!w->unknown[p] && !holds(buf, ver))
		violation(w, "%s: page %u (%#" PRIx64 ") does not hold version %u", what, p,
			  waddr(w, p), ver);
}

static void do_write(struct worker *w, unsigned int p)
{
	uint64_t buf[PS / 8];
	unsigned int ver = 1 + tap_rand(&w->rnd) % NVERS;
	ssize_t r;

	fill(buf, ver);
	r = umm_write(w->mm, waddr(w, p), buf, PS);
	if (r == PS) {
		w->ver[p] = ver;
		w->unknown[p] = false;
	} else if (r < 0 && allowed(r)) {
		w->errs++;
	} else if (r > 0) {
		w->unknown[p] = true;	/* part of it went in */
		w->errs++;
	} else {
		violation(w, "write of page %u: %zd", p, r);
	}
}

/* @call, again while injected faults make it fail with -ENOMEM, as a program would. */
#define RETRY_ENOMEM(w, call) ({					\
	int _r, _tries = 0;						\
	while ((_r = (call)) == -ENOMEM && ++_tries < 10000)		\
		(w)->errs++;						\
	_r;								\
})

/*
 * Put the window's pages [@p, @p + @n) back to mapped read-write: mprotect
 * (@remap false) or mmap over a hole (@remap true).
 */
static void restore_rw(struct worker *w, unsigned int p, unsigned int n, bool remap)
{
	int r = RETRY_ENOMEM(w, remap ? map_at(w->mm, waddr(w, p), n, RW, PRIV) :
				      umm_mprotect(w->mm, waddr(w, p), PG(n), RW));

	if (r)
		violation(w, "%s pages %u+%u back to read-write: %d", remap ? "mmap" : "mprotect",
			  p, n, r);
}

static void do_range(struct worker *w, enum op op, unsigned int p, unsigned int n)
{
	uint64_t a = waddr(w, p), len = PG(n);
	int r = 0;

	switch (op) {
	case OP_DONTNEED:
		r = umm_madvise(w->mm, a, len, UMM_MADV_DONTNEED);
		if (r == 0) {
			memset(w->ver + p, 0, n);
			memset(w->unknown + p, 0, n);
		}
		break;
	case OP_PAGEOUT:
		r = umm_madvise(w->mm, a, len, UMM_MADV_PAGEOUT);
		break;
	case OP_MERGEABLE:
		r = umm_madvise(w->mm, a, len, tap_rand(&w->rnd) % 4 ? UMM_MADV_MERGEABLE :
			       UMM_MADV_UNMERGEABLE);
		break;
	case OP_MPROTECT:
		r = umm_mprotect(w->mm, a, len, RO);
		if (r == 0) {
			for (unsigned int i = p; i < p + n; i++)
				check_page(w, w->mm, i, w->ver[i], "read-only");
			if (umm_write(w->mm, a, "x", 1) != -EFAULT)
				violation(w, "write to a read-only page went in");
		}
		/* after a failure part of the range may be read-only: undo it too */
		restore_rw(w, p, n, false);
		break;
	case OP_MLOCK:
		r = umm_mlock(w->mm, a, len);
		if (r && allowed(r))
			w->errs++;
		else if (r)
			violation(w, "mlock of pages %u+%u: %d", p, n, r);
		/* part of it may be locked even after a failure: DONTNEED refuses those */
		r = RETRY_ENOMEM(w, umm_munlock(w->mm, a, len));
		break;
	case OP_REMAP:
		r = umm_munmap(w->mm, a, len);
		if (r == 0) {
			memset(w->ver + p, 0, n);
			memset(w->unknown + p, 0, n);
			restore_rw(w, p, n, true);
		}
		break;
	default:
		break;
	}
	if (r == 0)
		return;
	if (allowed(r))
		w->errs++;
	else
		violation(w, "%s of pages %u+%u: %d", op_names[op], p, n, r);
}

static void do_move(struct worker *w, unsigned int p)
{
	uint64_t addrs[4];
	int nodes[4], status[4];
	int r;

	for (int k = 0; k < 4; k++) {
		addrs[k] = waddr(w, (p + k * 7) % WPAGES);
		nodes[k] = tap_rand(&w->rnd) & 1;
	}
	r = umm_move_pages(w->mm, 4, addrs, nodes, status);
	if (r)
		violation(w, "move_pages: %d", r);
	for (int k = 0; k < 4 && !r; k++)
		if (status[k] < 0 && status[k] != -ENOENT && status[k] != -EBUSY &&
		    status[k] != -ENOMEM)
			violation(w, "move_pages: status %d", status[k]);
}

static void do_gup(struct worker *w, unsigned int p)
{
	struct umm_page *page;
	int r = umm_get_user_page(w->mm, waddr(w, p), 0, &page);

	if (r) {
		if (allowed(r))
			w->errs++;
		else
			violation(w, "gup of page %u: %d", p, r);
		return;
	}
	w->checked++;
	if (!w->unknown[p] && !holds(umm_page_address(page), w->ver[p]))
		violation(w, "gup: page %u does not hold version %u", p, w->ver[p]);
	umm_put_page(page);
}

static void do_fork(struct worker *w)
{
	struct umm_mm *child;
	unsigned int p = tap_rand(&w->rnd) % WPAGES;
	uint64_t buf[PS / 8];
	int r = umm_mm_fork(w->mm, &child);

	if (r) {
		if (allowed(r))
			w->errs++;
		else
			violation(w, "fork: %d", r);
		return;
	}
	for (int k = 0; k < 4; k++) {
		unsigned int q = (p + k * 13) % WPAGES;

		check_page(w, child, q, w->ver[q], "child");
	}
	/* the child writes its own copy; the parent's must not change */
	fill(buf, NVERS + 1);
	r = umm_write(child, waddr(w, p), buf, PS);
	if (r != PS && !(r < 0 && allowed(r)))
		violation(w, "child write: %zd", (ssize_t)r);
	check_page(w, w->mm, p, w->ver[p], "parent after the child wrote");
	if (tap_rand(&w->rnd) & 1) {
		/*
		 * The child dies of OOM: the reaper's non-blockable invalidations
		 * (which its subscriber may refuse: -EAGAIN) take its private
		 * pages; the parent's must not notice.
		 */
		struct rec crec = { .mn.ops = &rec_ops, .owned = true, .owner = pthread_self() };
		bool reg = umm_mmu_notifier_register(&crec.mn, child) == 0;

		r = umm_mm_oom_reap(child);
		if (r && r != -EAGAIN)
			violation(w, "oom_reap of the child: %d", r);
		w->reaps++;
		w->reap_eagain += r == -EAGAIN;
		w->reap_refused += atomic_load(&crec.eagain);
		if (atomic_load(&crec.active))
			violation(w, "oom_reap left %d invalidations open", atomic_load(&crec.active));
		if (reg)
			umm_mmu_notifier_unregister(&crec.mn, child);
		check_page(w, w->mm, p, w->ver[p], "parent after the child was reaped");
	}
	umm_mm_exit(child);
}

/* ---- the worker's file ---- */

static uint64_t faddr(struct worker *w, unsigned int p)
{
	return FBASE(w->id) + PG(p);
}

/* What pread() finds of file page @p must be its version. */
static void check_file_page(struct worker *w, unsigned int p, const char *what)
{
	uint64_t buf[PS / 8];

	if (pread(w->fd, buf, PS, (off_t)PG(p)) != PS)
		violation(w, "%s: pread of file page %u failed", what, p);
	else if (!holds(buf, w->fver[p]))
		violation(w, "%s: the file's page %u does not hold version %u", what, p, w->fver[p]);
}

/*
 * The shared file mapping: write a page, read one back, msync a range and
 * pread() it from the real file, page a range out or zap it (the page
 * cache keeps the bytes), or migrate a page-cache page - while kswapd
 * writes dirty file pages back and drops clean ones.
 */
static void do_file(struct worker *w, unsigned int p, unsigned int n)
{
	uint64_t buf[PS / 8], a;
	unsigned int ver;
	int node = tap_rand(&w->rnd) & 1, status;
	ssize_t r = 0;

	p %= FPAGES;
	if (p + n > FPAGES)
		n = FPAGES - p;
	a = faddr(w, p);
	switch (tap_rand(&w->rnd) % 6) {
	case 0:
	case 1:
		ver = 1 + tap_rand(&w->rnd) % NVERS;
		fill(buf, ver);
		r = umm_write(w->mm, a, buf, PS);
		if (r == PS) {
			w->fver[p] = ver;
			r = 0;
		}
		break;
	case 2:
		r = umm_read(w->mm, a, buf, PS);
		if (r == PS) {
			w->checked++;
			if (!holds(buf, w->fver[p]))
				violation(w, "file page %u does not hold version %u", p, w->fver[p]);
			r = 0;
		}
		break;
	case 3:
		r = umm_msync(w->mm, a, PG(n), UMM_MS_SYNC);
		for (unsigned int i = p; i < p + n && r == 0; i++)
			check_file_page(w, i, "after msync");
		w->fsyncs += r == 0;
		break;
	case 4:
		r = umm_madvise(w->mm, a, PG(n), tap_rand(&w->rnd) & 1 ? UMM_MADV_PAGEOUT :
			       UMM_MADV_DONTNEED);
		break;
	case 5:
		r = umm_move_pages(w->mm, 1, &a, &node, &status);
		if (r == 0 && status < 0 && status != -ENOENT && status != -EBUSY &&
		    status != -ENOMEM)
			violation(w, "move_pages of a file page: status %d", status);
		break;
	}
	if (r == 0)
		return;
	if (r < 0 && allowed(r))
		w->errs++;
	else
		violation(w, "file operation at page %u: %zd", p, r);
}

/* A file of FPAGES zero pages, opened and mapped MAP_SHARED read-write at FBASE. */
static bool file_setup(struct worker *w)
{
	char name[32];
	int fd;

	snprintf(name, sizeof(name), "file-%d", w->id);
	snprintf(w->fpath, sizeof(w->fpath), "%s", tmp_path(name));
	fd = open(w->fpath, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || ftruncate(fd, PG(FPAGES)) < 0)
		return false;
	close(fd);
	w->fd = open(w->fpath, O_RDONLY);
	return w->fd >= 0 && umm_file_open(S.u, w->fpath, O_RDWR, &w->file) == 0 &&
	       map_file(w->mm, FBASE(w->id), FPAGES, RW, UMM_MAP_SHARED, w->file, 0) == 0;
}

/* Read the file back through the mapping; unmap and put it: the file itself must agree. */
static void file_finish(struct worker *w)
{
	uint64_t buf[PS / 8];

	for (unsigned int p = 0; p < FPAGES; p++) {
		ssize_t r = umm_read(w->mm, faddr(w, p), buf, PS);

		if (r != PS || !holds(buf, w->fver[p]))
			violation(w, "final: file page %u (read %zd) does not hold version %u", p, r,
				  w->fver[p]);
	}
	if (umm_munmap(w->mm, FBASE(w->id), PG(FPAGES)))
		violation(w, "munmap of the file");
	umm_file_put(w->file);		/* the last reference: everything written back */
	for (unsigned int p = 0; p < FPAGES; p++)
		check_file_page(w, p, "after the last put");
	close(w->fd);
}

static void *worker_fn(void *arg)
{
	struct worker *w = arg;

	w->rec.mn.ops = &rec_ops;
	if (umm_mmu_notifier_register(&w->rec.mn, w->mm))
		violation(w, "register failed");
	while (!atomic_load(&S.stop)) {
		uint64_t x = tap_rand(&w->rnd);
		unsigned int p = (x >> 8) % WPAGES, n = 1 + (x >> 20) % 16;
		unsigned int sel = x % 100;
		enum op op = 0;

		park_if_asked();
		if (p + n > WPAGES)
			n = WPAGES - p;
		while (sel >= op_weight[op])
			sel -= op_weight[op++];
		w->ops[op]++;
		switch (op) {
		case OP_WRITE:
			do_write(w, p);
			if (S.corrupt && w->id == 0 && w->ops[OP_WRITE] >= 50 && !w->unknown[p]) {
				w->ver[p] = (w->ver[p] % NVERS) + 1;	/* the model lies */
				check_page(w, w->mm, p, w->ver[p], "after the lie");
				S.corrupt = false;
			}
			break;
		case OP_READ:
			check_page(w, w->mm, p, w->ver[p], "read");
			break;
		case OP_MOVE:
			do_move(w, p);
			break;
		case OP_GUP:
			do_gup(w, p);
			break;
		case OP_FORK:
			do_fork(w);
			break;
		case OP_FILE:
			do_file(w, p, n);
			break;
		default:
			do_range(w, op, p, n);
			break;
		}
		if (tl_open) {
			violation(w, "%s returned with %d invalidations open", op_names[op],
				  tl_open);
			tl_open = 0;
		}
	}
	return NULL;
}

/* ---- the client threads: the secondary MMUs ---- */

static uint64_t caddr(struct worker *w, unsigned int p)
{
	return CBASE(w->id) + PG(p);
}

static void client_err(struct worker *w, ssize_t r, const char *what, unsigned int p)
{
	if (r < 0 && allowed(r))
		w->c.errs++;
	else
		violation(w, "client: %s of page %u: %zd", what, p, r);
}

/* What an access through @what read of region page @p (@r bytes) must be the model's. */
static void client_check(struct worker *w, unsigned int p, ssize_t r, const uint64_t *buf,
			 const char *what)
{
	struct client *c = &w->c;

	if (r != PS) {
		client_err(w, r, what, p);
		return;
	}
	c->checked++;
	if (!c->unknown[p] && !holds(buf, c->ver[p]))
		violation(w, "client: %s: page %u (%#" PRIx64 ") does not hold version %u", what,
			  p, caddr(w, p), c->ver[p]);
}

static void client_write(struct worker *w, unsigned int p, bool vcpu)
{
	struct client *c = &w->c;
	uint64_t buf[PS / 8];
	unsigned int ver = 1 + tap_rand(&c->rnd) % NVERS;
	ssize_t r;

	fill(buf, ver);
	r = vcpu ? shadow_vcpu_write(c->vcpu, caddr(w, p), buf, PS) :
		   tlb_dev_write(c->dev, caddr(w, p), buf, PS);
	if (r == PS) {
		c->ver[p] = ver;
		c->unknown[p] = false;
	} else {
		client_err(w, r, vcpu ? "vcpu write" : "device write", p);
	}
}

/* Read region page @p through the vCPU, the device or the CPU path and compare. */
static void client_read(struct worker *w, unsigned int p, enum cop op)
{
	struct client *c = &w->c;
	uint64_t buf[PS / 8];
	ssize_t r;

	switch (op) {
	case COP_VCPU_READ:
		r = shadow_vcpu_read(c->vcpu, caddr(w, p), buf, PS);
		break;
	case COP_DEV_READ:
		r = tlb_dev_read(c->dev, caddr(w, p), buf, PS);
		break;
	default:
		r = umm_read(w->mm, caddr(w, p), buf, PS);
		break;
	}
	client_check(w, p, r, buf, cop_names[op]);
}

static void *client_fn(void *arg)
{
	struct worker *w = arg;
	struct client *c = &w->c;

	while (!atomic_load(&S.stop)) {
		uint64_t x = tap_rand(&c->rnd), a;
		unsigned int p = (x >> 8) % CPAGES, sel = x % 100;
		enum cop op = 0;
		int r = 0, node = (x >> 20) & 1, status;

		park_if_asked();
		while (sel >= cop_weight[op])
			sel -= cop_weight[op++];
		c->ops[op]++;
		a = caddr(w, p);
		switch (op) {
		case COP_VCPU_WRITE:
		case COP_DEV_WRITE:
			client_write(w, p, op == COP_VCPU_WRITE);
			break;
		case COP_VCPU_READ:
		case COP_DEV_READ:
		case COP_CPU_READ:
			client_read(w, p, op);
			break;
		case COP_DONTNEED:
			r = umm_madvise(w->mm, a, PS, UMM_MADV_DONTNEED);
			if (r == 0) {
				c->ver[p] = 0;
				c->unknown[p] = false;
			}
			break;
		case COP_PAGEOUT:
			r = umm_madvise(w->mm, a, PS, UMM_MADV_PAGEOUT);
			break;
		case COP_MOVE:
			r = umm_move_pages(w->mm, 1, &a, &node, &status);
			if (r == 0 && status < 0 && status != -ENOENT && status != -EBUSY &&
			    status != -ENOMEM)
				violation(w, "client: move_pages: status %d", status);
			break;
		default:
			break;
		}
		if (r)
			client_err(w, r, cop_names[op], p);
		if (tl_open) {
			violation(w, "client: %s returned with %d invalidations open",
				  cop_names[op], tl_open);
			tl_open = 0;
		}
	}
	return NULL;
}

/* The region, a shadow VM with one vCPU over it, and a device TLB on the mm. */
static bool client_setup(struct worker *w)
{
	struct client *c = &w->c;

	return map_at(w->mm, CBASE(w->id), CPAGES, RW, PRIV) == 0 &&
	       shadow_vm_create(w->mm, CBASE(w->id), PG(CPAGES), &c->vm) == 0 &&
	       shadow_vcpu_create(c->vm, &c->vcpu) == 0 && tlb_dev_create(w->mm, &c->dev) == 0;
}

/* Read the whole region back through every path, then take the clients down. */
static void client_finish(struct worker *w)
{
	struct client *c = &w->c;
	struct shadow_stats ss;
	struct tlb_stats ts;

	static const enum cop paths[] = { COP_VCPU_READ, COP_DEV_READ, COP_CPU_READ };

	for (unsigned int p = 0; p < CPAGES; p++)
		for (int k = 0; k < 3; k++)
			client_read(w, p, paths[k]);
	shadow_vm_stats(c->vm, &ss);
	tlb_dev_stats(c->dev, &ts);
	if (ss.unpaired || ts.unpaired)
		violation(w, "client: %lu (shadow) and %lu (device) ends without a start",
			  ss.unpaired, ts.unpaired);
	S.shadow_faults += ss.faults;
	S.shadow_zaps += ss.zaps;
	S.shadow_retries += ss.retries;
	S.dev_misses += ts.misses;
	S.dev_hits += ts.hits;
	S.dev_flushed += ts.flushed;
	tlb_dev_destroy(c->dev);
	shadow_vcpu_destroy(c->vcpu);
	shadow_vm_destroy(c->vm);
}

/* ---- the checks at meeting points ---- */

/* Park the workers (if @running), stop ksmd, check; then resume. */
static void checkpoint(bool running)
{
	struct umm_ksm_stats ks;
	struct umm_stat st;
	struct umm_vmscan_stat vs;
	char msg[256] = "";
	int r;

	atomic_store(&S.pause, true);
	while (running && atomic_load(&S.parked) < 2 * S.nthreads)	/* workers, clients */
		usleep(100);
	umm_ksm_set_run(S.u, 0);
	umm_ksm_get_stats(S.u, &ks);
	umm_get_stat(S.u, &st);
	umm_get_vmscan_stat(S.u, &vs);
	if (!S.validations || st.nr_free < S.min_free)
		S.min_free = st.nr_free;
	if (!S.validations || vs.swap_free < S.min_swap_free)
		S.min_swap_free = vs.swap_free;
	if (ks.pages_sharing > S.max_sharing)
		S.max_sharing = ks.pages_sharing;
	if (ks.pages_shared > S.max_shared)
		S.max_shared = ks.pages_shared;
	r = umm_validate(S.u, UMM_VALIDATE_EXACT | UMM_VALIDATE_RMAP, msg, sizeof(msg));
	S.validations++;
	if (r)
		violation(NULL, "umm_validate: %d: %s", r, msg);
	umm_ksm_set_run(S.u, 1);
	atomic_store(&S.pause, false);
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void report(double secs)
{
	struct umm_ksm_stats ks;
	struct umm_vmscan_stat vs;
	uint64_t tot = 0, errs = 0, checked = 0, starts = 0, eagain = 0, sleeps = 0;
	uint64_t reaps = 0, reap_eagain = 0, reap_refused = 0, fsyncs = 0;

	for (int o = 0; o < OP_NR; o++) {
		uint64_t n = 0;

		for (int t = 0; t < S.nthreads; t++)
			n += S.w[t].ops[o];
		tot += n;
		TAP_DIAG("  %-12s %10" PRIu64, op_names[o], n);
	}
	for (int o = 0; o < COP_NR; o++) {
		uint64_t n = 0;

		for (int t = 0; t < S.nthreads; t++)
			n += S.w[t].c.ops[o];
		tot += n;
		TAP_DIAG("  client %-12s %10" PRIu64, cop_names[o], n);
	}
	for (int t = 0; t < S.nthreads; t++) {
		errs += S.w[t].errs + S.w[t].c.errs;
		reaps += S.w[t].reaps;
		reap_eagain += S.w[t].reap_eagain;
		reap_refused += S.w[t].reap_refused;
		fsyncs += S.w[t].fsyncs;
		checked += S.w[t].checked + S.w[t].c.checked;
		starts += atomic_load(&S.w[t].rec.starts);
		eagain += atomic_load(&S.w[t].rec.eagain);
		sleeps += atomic_load(&S.w[t].rec.sleeps);
	}
	TAP_DIAG("operations: %" PRIu64 " in %.1f s (%.0f/s), %d threads; pages compared %" PRIu64
		 "; allowed errors under injection %" PRIu64, tot, secs, tot / secs, S.nthreads,
		 checked, errs);
	for (int k = 0; k < UMM_FAULT_NR; k++)
		TAP_DIAG("faults injected: %-18s %" PRIu64,
			 k < (int)(sizeof(fault_names) / sizeof(fault_names[0])) ? fault_names[k] :
			 "(kind without a name)", umm_fault_injected(S.u, k));
	umm_get_vmscan_stat(S.u, &vs);
	umm_ksm_get_stats(S.u, &ks);
	TAP_DIAG("swap: pswpout %" PRIu64 " pswpin %" PRIu64 " read errors %" PRIu64
		 " write errors %" PRIu64 "; kswapd runs %" PRIu64 ", direct reclaims %" PRIu64,
		 vs.pswpout, vs.pswpin, vs.swap_read_errors, vs.swap_write_errors, vs.kswapd_runs,
		 vs.direct_reclaims);
	TAP_DIAG("lowest at a meeting point: %" PRIu64 " free frames, %" PRIu64 " of %" PRIu64
		 " swap slots free", S.min_free, S.min_swap_free, vs.swap_slots);
	TAP_DIAG("migration: %" PRIu64 " moved, %" PRIu64 " failed", vs.pgmigrate_success,
		 vs.pgmigrate_fail);
	TAP_DIAG("files: %" PRIu64 " msyncs read back from the file; reclaim wrote back %" PRIu64
		 " pages", fsyncs, vs.pgwriteback);
	TAP_DIAG("ksm: full scans %lu; pages_shared %lu, pages_sharing %lu at the end, "
		 "at most %lu and %lu at a meeting point", ks.full_scans, ks.pages_shared,
		 ks.pages_sharing, S.max_shared, S.max_sharing);
	TAP_DIAG("notifiers: %" PRIu64 " starts, %" PRIu64 " refused with -EAGAIN, %" PRIu64
		 " slow; checker violations %lu", starts, eagain, sleeps,
		 umm_mmu_notifier_checker_violations(S.u));
	TAP_DIAG("oom reaper: %" PRIu64 " children reaped, %" PRIu64 " of them -EAGAIN; their "
		 "subscribers refused %" PRIu64 " non-blockable starts", reaps, reap_eagain,
		 reap_refused);
	TAP_DIAG("clients: shadow VMs %lu faults, %lu zaps, %lu retries; device TLBs %lu hits, "
		 "%lu misses, %lu entries flushed", S.shadow_faults, S.shadow_zaps,
		 S.shadow_retries, S.dev_hits, S.dev_misses, S.dev_flushed);
	TAP_DIAG("invariant checks: %lu; violations: %lu", S.validations,
		 atomic_load(&S.violations));
}

static int opt_fault_kind = -1;
static unsigned int opt_fault_ppm;

/* One soak of @secs seconds; return the violations it counted. */
static unsigned long soak(uint64_t seed, double secs, int nthreads, bool corrupt)
{
	struct umm_config cfg;
	struct umm_ksm_params kp;
	struct umm_vmscan_stat vs;
	double t0, next;
	long leaked;

	memset(&S, 0, sizeof(S));
	S.nthreads = nthreads;
	S.corrupt = corrupt;
	umm_config_init(&cfg);
	/* less memory than the windows: reclaim and swap never rest */
	cfg.phys_bytes = (size_t)nthreads * WPAGES * PS * 3 / 4;
	if (cfg.phys_bytes < (1 << 20))
		cfg.phys_bytes = 1 << 20;
	cfg.nr_nodes = 2;
	cfg.swap_path = tmp_path("swap");
	cfg.swap_bytes = (size_t)nthreads * WPAGES * PS * 2;
	cfg.flags = UMM_CONFIG_NOTIFIER_CHECKER;
	if (umm_create(&cfg, &S.u)) {
		violation(NULL, "umm_create");
		return S.violations;
	}
	umm_set_log(S.u, log_hook, NULL);
	if (umm_ksm_get_params(S.u, &kp) == 0) {
		kp.sleep_millisecs = 5;
		kp.pages_to_scan = 256;
		kp.max_page_sharing = 4;
		kp.use_zero_pages = true;
		umm_ksm_set_params(S.u, &kp);
	}
	for (int k = 0; k < UMM_FAULT_NR; k++)	/* 300 ppm of each kind, or --fault's */
		if (opt_fault_kind < 0 || k == opt_fault_kind)
			umm_fault_inject(S.u, k, opt_fault_kind < 0 ? 300 : opt_fault_ppm, -1);
	for (int t = 0; t < nthreads; t++) {
		struct worker *w = &S.w[t];

		w->id = t;
		w->rnd = seed + t * 0x100000001ULL;
		w->c.rnd = seed ^ (t + 1) * 0x9e3779b97f4a7c15ULL;
		if (umm_mm_create(S.u, &w->mm) || map_at(w->mm, WBASE(t), WPAGES, RW, PRIV) ||
		    umm_mm_set_merge_any(w->mm, t & 1) || !client_setup(w) || !file_setup(w))
			violation(w, "set-up");
	}
	umm_ksm_set_run(S.u, 1);
	t0 = now();
	next = t0 + CHECK_MS / 1000.0;
	for (int t = 0; t < nthreads; t++) {
		pthread_create(&S.w[t].thread, NULL, worker_fn, &S.w[t]);
		pthread_create(&S.w[t].c.thread, NULL, client_fn, &S.w[t]);
	}
	while (now() - t0 < secs) {
		usleep(10000);
		if (now() >= next) {
			checkpoint(true);
			next = now() + CHECK_MS / 1000.0;
		}
	}
	atomic_store(&S.stop, true);
	for (int t = 0; t < nthreads; t++) {
		pthread_join(S.w[t].thread, NULL);
		pthread_join(S.w[t].c.thread, NULL);
	}
	umm_ksm_set_run(S.u, 0);
	secs = now() - t0;

	/* injection off: everything must still be there */
	for (int k = 0; k < UMM_FAULT_NR; k++)
		umm_fault_inject(S.u, k, 0, 0);
	for (int t = 0; t < nthreads; t++) {
		for (unsigned int p = 0; p < WPAGES; p++)
			check_page(&S.w[t], S.w[t].mm, p, S.w[t].ver[p], "final");
		client_finish(&S.w[t]);
		file_finish(&S.w[t]);
	}
	checkpoint(false);
	umm_ksm_set_run(S.u, 0);
	report(secs);
	for (int t = 0; t < nthreads; t++) {
		struct worker *w = &S.w[t];

		/*
		 * kswapd may be between a start and its end on this mm right now;
		 * give it a second.  (After unregister an end may never come:
		 * that is allowed, so the count is checked before.)
		 */
		for (int ms = 0; atomic_load(&w->rec.active) && ms < 1000; ms++)
			usleep(1000);
		if (atomic_load(&w->rec.active))
			violation(w, "%d invalidations never ended", atomic_load(&w->rec.active));
		umm_mmu_notifier_unregister(&w->rec.mn, w->mm);
		umm_mm_exit(w->mm);
	}
	umm_ksm_set_run(S.u, 2);
	/*
	 * kswapd may still hold a batch it isolated before the mms exited
	 * (refcount 1, on no list) and free it a moment later: a leak is
	 * what is still there after a second.
	 */
	for (int ms = 0; umm_leak_check(S.u, NULL, NULL) && ms < 1000; ms += 10)
		usleep(10000);
	leaked = umm_leak_check(S.u, leak_diag, NULL);
	if (leaked)
		violation(NULL, "%ld frames leaked", leaked);
	/*
	 * With every mm gone no swap slot may still be taken but by the swap
	 * cache (a page whose last user went while it was locked stays there,
	 * as on Linux, until reclaim drops it).
	 */
	umm_get_vmscan_stat(S.u, &vs);
	if (vs.swap_slots - vs.swap_free != vs.nr_swapcache)
		violation(NULL, "%" PRIu64 " swap slots taken after every mm exited, %" PRIu64
			  " of them by the swap cache", vs.swap_slots - vs.swap_free,
			  vs.nr_swapcache);
	if (umm_mmu_notifier_checker_violations(S.u))
		violation(NULL, "the notifier protocol checker reported %lu",
			  umm_mmu_notifier_checker_violations(S.u));
	umm_destroy(S.u);
	return atomic_load(&S.violations);
}

static double opt_duration = -1;
static int opt_threads;
static uint64_t seed;

static bool test_soak(void)
{
	double secs = opt_duration >= 0 ? opt_duration : tap_long() ? 120 : tap_short() ? 1.5 : 3;
	int threads = opt_threads ? opt_threads : tap_short() ? 2 : 3;

	ASSERT_EQ(soak(seed, secs, threads, false), 0);
	return true;
}

/* The soak's checks check: a model that lies once must be caught. */
static bool test_detects(void)
{
	unsigned long v;

	if (opt_duration >= 0)
		return true;		/* a long run by hand: just the soak */
	v = soak(seed, 1.0, 1, true);
	TAP_DIAG("with a lying model: %lu violations (expected > 0)", v);
	ASSERT_TRUE(v > 0);
	return true;
}

int main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--duration") && i + 1 < argc)
			opt_duration = atof(argv[++i]);
		else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
			opt_threads = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--fault") && i + 1 < argc &&
			 sscanf(argv[++i], "%d:%u", &opt_fault_kind, &opt_fault_ppm) != 2)
			opt_fault_kind = -1;
	}
	if (opt_threads > MAX_THREADS)
		opt_threads = MAX_THREADS;
	seed = tap_seed();
	if (!tmp_init("soak"))
		return 1;
	RUN_TEST(test_soak);
	RUN_TEST(test_detects);
	tmp_cleanup();
	return tap_done();
}
