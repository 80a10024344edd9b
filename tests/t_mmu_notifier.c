// SPDX-License-Identifier: MIT
/*
 * t_mmu_notifier.c - classic MMU notifiers through the public API: which
 * invalidations each path sends (munmap, MADV_DONTNEED, COW breaks, fork,
 * mprotect, mremap, page_mkclean/msync, try_to_unmap), over which ranges
 * and with which event; none for faults that take nothing away; aging
 * through clear_flush_young; ->release once at exit and nothing after;
 * register/unregister (a late subscriber sees only later events and never
 * an end without its start, unregister waits for running callbacks and
 * stops them); get/put/synchronize; several subscribers each seeing every
 * event; subscribers whose ops are all NULL; the same paths with no
 * subscriber at all; exit racing rmap walkers from other mms and racing
 * unregister; a concurrent run of faults, COW breaks, forks and munmaps
 * against threads registering and unregistering subscribers; and a
 * KVM-style shadow MMU (GUP + invalidate sequence) driven by a seeded
 * random run and by several threads, whose translations must still match
 * the PTEs whenever the mm is quiescent (every PTE change was covered).
 *
 * A recording subscriber (struct rec) logs every callback (kind, event,
 * range, calling thread) under its own lock and checks the protocol as the
 * callbacks arrive: per thread, an end must close the innermost open start
 * with the same range values; no start after ->release; no callback once
 * unregister returned or after free_notifier; range->mm is the mm it was
 * registered with; ranges are page-aligned, non-empty and BLOCKABLE.
 * Tests then check the starts a step produced: an exact list, or for
 * paths that may split per VMA (munmap, DONTNEED, mprotect, mremap) that
 * every range lies inside the call's range and that together they cover
 * each page marked 'x' in a drawing one character per page.
 *
 * Interval notifiers are not exercised here.
 */
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stddef.h>
#include <sys/stat.h>

#include <umm/umm.h>

#define FIX_VALIDATE	VALIDATE_ALL
#include "tap.h"
#include "fixture.h"

#define EV_UNMAP	UMM_MMU_NOTIFY_UNMAP
#define EV_CLEAR	UMM_MMU_NOTIFY_CLEAR
#define EV_PVMA		UMM_MMU_NOTIFY_PROTECTION_VMA
#define EV_PPAGE	UMM_MMU_NOTIFY_PROTECTION_PAGE

/* ---- threads get small ids for the log ---- */

static atomic_int next_tid = 1;
static _Thread_local int my_tid;

static int tid(void)
{
	if (!my_tid)
		my_tid = atomic_fetch_add(&next_tid, 1);
	return my_tid;
}

/* ---- the recording subscriber ---- */

enum kind { K_START, K_END, K_RELEASE, K_CFY, K_CY, K_TY, K_CHANGE_PTE, K_SECTLB };

static const char *const kind_name[] = {
	"start", "end", "release", "clear_flush_young", "clear_young", "test_young",
	"change_pte", "invalidate_secondary_tlbs",
};

static const char *const event_name[] = {
	"UNMAP", "CLEAR", "PROTECTION_VMA", "PROTECTION_PAGE", "SOFT_DIRTY", "RELEASE",
	"MIGRATE", "EXCLUSIVE",
};

static const char *ev_str(int event)
{
	return event >= 0 && event < 8 ? event_name[event] : "?";
}

struct ev {
	enum kind kind;
	int event;
	unsigned int flags;
	struct umm_mm *mm;
	uint64_t start, end;
	int tid;
};

#define REC_MAXLOG	(1 << 16)
#define REC_MAXOPEN	64

struct rec;
typedef void (*rec_hook)(struct rec *r, const struct umm_mmu_notifier_range *range);

struct rec {
	struct umm_mmu_notifier mn;	/* what the engine sees */
	const char *name;
	struct umm_mm *mm;		/* the mm it subscribes to: every range's mm */
	struct umm *u;			/* if set: ->release samples the machine's figures */
	pthread_mutex_t lock;
	struct ev *log;
	size_t nr, cap, dropped;
	struct ev open[REC_MAXOPEN];	/* starts without their end yet */
	int nr_open;
	unsigned long nr_starts, nr_ends, nr_release, nr_cfy;
	atomic_int young;		/* what the aging callbacks return */
	atomic_bool unregistering;	/* set before unregister is called */
	atomic_bool unregistered;	/* set once unregister returned */
	atomic_bool freed;		/* free_notifier ran */
	atomic_int nr_free;
	bool released;
	uint64_t free_at_release, pgtables_at_release;
	int nr_bad;
	char bad[256];			/* the first violation */
	rec_hook start_hook;		/* called (unlocked) in each start */
	rec_hook end_hook;		/* ... and in each end, before logging it */
	void (*release_hook)(struct rec *r);	/* ... and at the end of ->release */
	void *priv;
	bool unlogged;			/* check only: long runs keep no log */
};

#define rec_of(sub)	((struct rec *)((char *)(sub) - offsetof(struct rec, mn)))

/* Every rec made, freed by recs_free_all() at the end of a passing test. */
static pthread_mutex_t recs_lock = PTHREAD_MUTEX_INITIALIZER;
static struct rec **recs;
static size_t nr_recs, cap_recs;

static const struct umm_mmu_notifier_ops rec_ops;

static struct rec *rec_new(const char *name, struct umm_mm *mm)
{
	struct rec *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	r->mn.ops = &rec_ops;
	r->name = name;
	r->mm = mm;
	pthread_mutex_init(&r->lock, NULL);
	pthread_mutex_lock(&recs_lock);
	if (nr_recs == cap_recs) {
		cap_recs = cap_recs ? 2 * cap_recs : 64;
		recs = realloc(recs, cap_recs * sizeof(*recs));
	}
	recs[nr_recs++] = r;
	pthread_mutex_unlock(&recs_lock);
	return r;
}

static void recs_free_all(void)
{
	pthread_mutex_lock(&recs_lock);
	for (size_t i = 0; i < nr_recs; i++) {
		pthread_mutex_destroy(&recs[i]->lock);
		free(recs[i]->log);
		free(recs[i]);
	}
	nr_recs = 0;
	pthread_mutex_unlock(&recs_lock);
}

/* Note a protocol violation.  Context: r->lock held. */
static void rec_bad(struct rec *r, const char *what, const struct ev *e)
{
	if (!r->nr_bad++)
		snprintf(r->bad, sizeof(r->bad),
			 "%s: %s (%s %s [%#" PRIx64 ", %#" PRIx64 ") thread %d)", r->name, what,
			 kind_name[e->kind], e->kind <= K_END ? ev_str(e->event) : "", e->start,
			 e->end, e->tid);
}

/* Log @e and check what every callback must satisfy.  Context: r->lock held. */
static void rec_log(struct rec *r, const struct ev *e)
{
	if (atomic_load(&r->unregistered))
		rec_bad(r, "callback after unregister returned", e);
	if (atomic_load(&r->freed))
		rec_bad(r, "callback after free_notifier", e);
	if (e->mm != r->mm)
		rec_bad(r, "callback for another mm", e);
	if (r->unlogged)
		return;
	if (r->nr == r->cap && r->cap < REC_MAXLOG) {
		size_t cap = r->cap ? 2 * r->cap : 64;
		struct ev *log = realloc(r->log, cap * sizeof(*log));

		if (log) {
			r->log = log;
			r->cap = cap;
		}
	}
	if (r->nr < r->cap)
		r->log[r->nr++] = *e;
	else
		r->dropped++;
}

static bool range_sane(const struct umm_mmu_notifier_range *range)
{
	return range->start < range->end && !(range->start % PS) && !(range->end % PS) &&
	       range->end <= UMM_TASK_SIZE && (range->flags & UMM_MMU_NOTIFIER_RANGE_BLOCKABLE);
}

static int rec_start(struct umm_mmu_notifier *sub, const struct umm_mmu_notifier_range *range)
{
	struct rec *r = rec_of(sub);
	struct ev e = { K_START, (int)range->event, range->flags, range->mm, range->start,
			range->end, tid() };

	pthread_mutex_lock(&r->lock);
	rec_log(r, &e);
	r->nr_starts++;
	/* (unregister may run ->release while other threads still invalidate) */
	if (r->released && !atomic_load(&r->unregistering))
		rec_bad(r, "start after release", &e);
	if (!range_sane(range))
		rec_bad(r, "bad range (unaligned, empty or not blockable)", &e);
	if (r->nr_open < REC_MAXOPEN)
		r->open[r->nr_open++] = e;
	else
		rec_bad(r, "too many open starts", &e);
	pthread_mutex_unlock(&r->lock);
	if (r->start_hook)
		r->start_hook(r, range);
	return 0;
}

static void rec_end(struct umm_mmu_notifier *sub, const struct umm_mmu_notifier_range *range)
{
	struct rec *r = rec_of(sub);
	struct ev e = { K_END, (int)range->event, range->flags, range->mm, range->start,
			range->end, tid() };
	int i;

	if (r->end_hook)
		r->end_hook(r, range);
	pthread_mutex_lock(&r->lock);
	rec_log(r, &e);
	r->nr_ends++;
	for (i = r->nr_open - 1; i >= 0; i--)
		if (r->open[i].tid == e.tid)
			break;
	if (i < 0) {
		rec_bad(r, "end without its start", &e);
	} else {
		const struct ev *s = &r->open[i];

		if (s->event != e.event || s->start != e.start || s->end != e.end ||
		    s->flags != e.flags || s->mm != e.mm)
			rec_bad(r, "end does not match this thread's innermost start", &e);
		r->open[i] = r->open[--r->nr_open];
	}
	pthread_mutex_unlock(&r->lock);
}

static void rec_release(struct umm_mmu_notifier *sub, struct umm_mm *mm)
{
	struct rec *r = rec_of(sub);
	struct ev e = { K_RELEASE, 0, 0, mm, 0, 0, tid() };
	struct umm_stat st = { 0 };

	if (r->u)
		umm_get_stat(r->u, &st);
	pthread_mutex_lock(&r->lock);
	rec_log(r, &e);
	if (r->released)
		rec_bad(r, "second release", &e);
	r->released = true;
	r->nr_release++;
	r->free_at_release = st.nr_free;
	r->pgtables_at_release = st.nr_pgtables;
	pthread_mutex_unlock(&r->lock);
	if (r->release_hook)
		r->release_hook(r);
}

static int rec_aging(struct umm_mmu_notifier *sub, enum kind k, struct umm_mm *mm,
		     uint64_t start, uint64_t end)
{
	struct rec *r = rec_of(sub);
	struct ev e = { k, 0, 0, mm, start, end, tid() };

	pthread_mutex_lock(&r->lock);
	rec_log(r, &e);
	if (k == K_CFY)
		r->nr_cfy++;
	pthread_mutex_unlock(&r->lock);
	return atomic_load(&r->young);
}

static int rec_cfy(struct umm_mmu_notifier *sub, struct umm_mm *mm, uint64_t start,
		   uint64_t end)
{
	return rec_aging(sub, K_CFY, mm, start, end);
}

static int rec_cy(struct umm_mmu_notifier *sub, struct umm_mm *mm, uint64_t start,
		  uint64_t end)
{
	return rec_aging(sub, K_CY, mm, start, end);
}

static int rec_ty(struct umm_mmu_notifier *sub, struct umm_mm *mm, uint64_t addr)
{
	return rec_aging(sub, K_TY, mm, addr, addr + PS);
}

static void rec_change_pte(struct umm_mmu_notifier *sub, struct umm_mm *mm, uint64_t addr,
			   uint64_t pfn, bool writable)
{
	rec_aging(sub, K_CHANGE_PTE, mm, addr, addr + PS);
}

static void rec_sectlb(struct umm_mmu_notifier *sub, struct umm_mm *mm, uint64_t start,
		       uint64_t end)
{
	rec_aging(sub, K_SECTLB, mm, start, end);
}

static const struct umm_mmu_notifier_ops rec_ops = {
	.release = rec_release,
	.clear_flush_young = rec_cfy,
	.clear_young = rec_cy,
	.test_young = rec_ty,
	.change_pte = rec_change_pte,
	.invalidate_range_start = rec_start,
	.invalidate_range_end = rec_end,
	.invalidate_secondary_tlbs = rec_sectlb,
};

/* A new rec registered on @mm. */
static struct rec *rec_reg(const char *name, struct umm_mm *mm)
{
	struct rec *r = rec_new(name, mm);
	int err;

	if (!r)
		return NULL;
	err = umm_mmu_notifier_register(&r->mn, mm);
	if (err) {
		TAP_DIAG("umm_mmu_notifier_register(%s) = %d", name, err);
		return NULL;
	}
	return r;
}

static void rec_unreg(struct rec *r)
{
	atomic_store(&r->unregistering, true);
	umm_mmu_notifier_unregister(&r->mn, r->mm);
	atomic_store(&r->unregistered, true);
}

/* Where the log ends now: what a step adds comes after. */
static size_t rec_mark(struct rec *r)
{
	size_t n;

	pthread_mutex_lock(&r->lock);
	n = r->nr;
	pthread_mutex_unlock(&r->lock);
	return n;
}

static void rec_dump(struct rec *r, size_t from)
{
	pthread_mutex_lock(&r->lock);
	for (size_t i = from; i < r->nr; i++) {
		const struct ev *e = &r->log[i];

		TAP_DIAG("  %s[%zu]: %s %s [%#" PRIx64 ", %#" PRIx64 ") flags %#x thread %d",
			 r->name, i, kind_name[e->kind], e->kind <= K_END ? ev_str(e->event) : "",
			 e->start, e->end, e->flags, e->tid);
	}
	pthread_mutex_unlock(&r->lock);
}

/* No violation so far; with @quiet, also no invalidation open and nothing dropped. */
static bool rec_ok_(struct rec *r, bool quiet)
{
	bool ok;

	pthread_mutex_lock(&r->lock);
	ok = !r->nr_bad && (!quiet || (!r->nr_open && !r->dropped));
	if (r->nr_bad)
		TAP_DIAG("%d violation(s), first: %s", r->nr_bad, r->bad);
	if (quiet && r->nr_open)
		TAP_DIAG("%s: %d start(s) without an end on a quiescent mm", r->name, r->nr_open);
	if (quiet && r->dropped)
		TAP_DIAG("%s: log overflowed", r->name);
	pthread_mutex_unlock(&r->lock);
	return ok;
}

static bool rec_ok(struct rec *r)
{
	return rec_ok_(r, true);
}

/* The log entries of @kind since @from, at most @max into @out: their number. */
static int rec_get(struct rec *r, size_t from, enum kind kind, struct ev *out, int max)
{
	int n = 0;

	pthread_mutex_lock(&r->lock);
	for (size_t i = from; i < r->nr; i++)
		if (r->log[i].kind == kind) {
			if (n < max)
				out[n] = r->log[i];
			n++;
		}
	pthread_mutex_unlock(&r->lock);
	return n;
}

struct want {
	int event;
	uint64_t start, end;
};

/*
 * Since @from, @r's starts were exactly @w[0..n) in this order, each ended,
 * and nothing broke the protocol.
 */
static bool starts_are(struct rec *r, size_t from, int n, const struct want *w)
{
	struct ev got[64];
	int nr = rec_get(r, from, K_START, got, 64);
	bool ok = rec_ok(r) && nr == n;

	for (int i = 0; ok && i < n; i++)
		ok = got[i].event == w[i].event && got[i].start == w[i].start &&
		     got[i].end == w[i].end;
	if (!ok) {
		TAP_DIAG("%s: expected %d start(s):", r->name, n);
		for (int i = 0; i < n; i++)
			TAP_DIAG("  want %s [%#" PRIx64 ", %#" PRIx64 ")", ev_str(w[i].event),
				 w[i].start, w[i].end);
		rec_dump(r, from);
	}
	return ok;
}

#define STARTS_ARE(r, from, ...) \
	starts_are((r), (from), (int)(sizeof((struct want[]){ __VA_ARGS__ }) / \
				      sizeof(struct want)), (struct want[]){ __VA_ARGS__ })

static bool no_starts(struct rec *r, size_t from)
{
	return starts_are(r, from, 0, NULL);
}

/*
 * Since @from, every start of @r was @event over a range inside [lo, hi),
 * each ended, and together they cover the page lo + PG(i) for every 'x' at
 * @must[i].  (A path may send one range per VMA or one for the whole call.)
 */
static bool starts_cover(struct rec *r, size_t from, int event, uint64_t lo, uint64_t hi,
			 const char *must)
{
	struct ev got[256];
	int nr = rec_get(r, from, K_START, got, 256);
	bool ok = rec_ok(r) && nr <= 256;

	for (int i = 0; ok && i < nr; i++) {
		if (got[i].event != event) {
			TAP_DIAG("%s: start %d is %s, want %s", r->name, i, ev_str(got[i].event),
				 ev_str(event));
			ok = false;
		} else if (got[i].start < lo || got[i].end > hi) {
			TAP_DIAG("%s: start %d [%#" PRIx64 ", %#" PRIx64 ") outside [%#" PRIx64
				 ", %#" PRIx64 ")", r->name, i, got[i].start, got[i].end, lo, hi);
			ok = false;
		}
	}
	for (size_t p = 0; ok && must[p]; p++) {
		uint64_t a = lo + PG(p);
		bool in = false;

		if (must[p] != 'x')
			continue;
		for (int i = 0; i < nr && !in; i++)
			in = got[i].start <= a && a < got[i].end;
		if (!in) {
			TAP_DIAG("%s: page %#" PRIx64 " not covered by any %s start", r->name, a,
				 ev_str(event));
			ok = false;
		}
	}
	if (!ok)
		rec_dump(r, from);
	return ok;
}

/* Since @from, @r saw nothing at all (no callback of any kind). */
static bool nothing_since(struct rec *r, size_t from)
{
	size_t n = rec_mark(r);

	if (n != from) {
		TAP_DIAG("%s: %zu unexpected callback(s):", r->name, n - from);
		rec_dump(r, from);
	}
	return rec_ok(r) && n == from;
}

static unsigned long rec_nr_release(struct rec *r)
{
	unsigned long n;

	pthread_mutex_lock(&r->lock);
	n = r->nr_release;
	pthread_mutex_unlock(&r->lock);
	return n;
}

/* ---- host files ---- */

static uint8_t fbyte(uint64_t off)
{
	return (uint8_t)((off >> 12) * 37 + (off & 0xfff) * 7 + 1);
}

/* Create @name with @npages pages of fbyte(). */
static bool make_file(const char *name, int npages)
{
	const char *path = tmp_path(name);
	uint8_t buf[PS];
	int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0644);

	if (fd < 0) {
		TAP_DIAG("open(%s): %s", path, strerror(errno));
		return false;
	}
	for (int p = 0; p < npages; p++) {
		for (int i = 0; i < PS; i++)
			buf[i] = fbyte(PG(p) + (uint64_t)i);
		if (pwrite(fd, buf, PS, (off_t)PG(p)) != PS) {
			close(fd);
			return false;
		}
	}
	close(fd);
	return true;
}

/* ---- registration ---- */

/*
 * register checks its arguments; unregister of a live mm calls ->release
 * once and nothing else; nothing is called afterwards.
 */
static bool test_register_unregister(void)
{
	struct fix f;
	struct rec *r;
	size_t m;

	ASSERT_TRUE(fix_init(&f));
	r = rec_new("r", f.mm);
	ASSERT_TRUE(r);
	ASSERT_ERR(umm_mmu_notifier_register(NULL, f.mm), EINVAL);
	ASSERT_ERR(umm_mmu_notifier_register(&r->mn, NULL), EINVAL);
	ASSERT_OK(umm_mmu_notifier_register(&r->mn, f.mm));
	ASSERT_OK(map_at(f.mm, AT(0), 4, RW, PRIV));
	ASSERT_TRUE(write_pat(f.mm, AT(0), 2, 1));
	ASSERT_TRUE(no_starts(r, 0));
	rec_unreg(r);
	ASSERT_EQ(rec_nr_release(r), 1);
	ASSERT_TRUE(rec_ok(r));
	m = rec_mark(r);
	ASSERT_EQ(m, 1);				/* only the release */
	/* every path again: nothing reaches it */
	ASSERT_OK(umm_munmap(f.mm, AT(0), PG(1)));
	ASSERT_OK(umm_madvise(f.mm, AT(1), PG(1), UMM_MADV_DONTNEED));
	ASSERT_OK(umm_mprotect(f.mm, AT(2), PG(1), RO));
	ASSERT_TRUE(write_pat(f.mm, AT(3), 1, 2));
	ASSERT_EQ(umm_page_referenced(f.mm, AT(3)), 1);
	{
		struct umm_mm *c;

		ASSERT_OK(umm_mm_fork(f.mm, &c));
		ASSERT_TRUE(write_pat(f.mm, AT(3), 1, 3));
		umm_mm_exit(c);
	}
	ASSERT_TRUE(fix_fini(&f));
	ASSERT_TRUE(nothing_since(r, m));
	recs_free_all();
	return true;
}

/* ---- test prologues and epilogues ---- */

/* fix_init(), then a recorder "r" registered on its mm. */
static bool fix_rec(struct fix *f, struct rec **r)
{
	ASSERT_TRUE(fix_init(f));
	*r = rec_reg("r", f->mm);
	ASSERT_TRUE(*r);
	return true;
}

/* fix_fini(), then free every recorder. */
static bool fix_done(struct fix *f)
{
	ASSERT_TRUE(fix_fini(f));
	recs_free_all();
	return true;
}

/* Unregister @r, then fix_done(). */
static bool fix_rec_done(struct fix *f, struct rec *r)
{
	rec_unreg(r);
	return fix_done(f);
}

/* The recorders' names of file_mm()'s mms in the rmap tests. */
static const char *const mm_name[] = { "m0", "m1", "m2" };

/* A file @name of @npages (make_file()), a machine, the file opened on it. */
static bool file_machine(const char *name, int npages, struct umm **u, struct umm_file **file)
{
	ASSERT_TRUE(make_file(name, npages));
	ASSERT_OK(make_machine(16 << 20, 1, 0, u));
	ASSERT_OK(umm_file_open(*u, tmp_path(name), O_RDWR, file));
	return true;
}

/* Validate, unregister r[i] and exit mm[i] for each of @n, put @file. */
static bool mms_put(struct umm *u, struct umm_file *file, struct umm_mm **mm, struct rec **r,
		    int n)
{
	ASSERT_TRUE(machine_valid(u));
	for (int i = 0; i < n; i++) {
		rec_unreg(r[i]);
		umm_mm_exit(mm[i]);
	}
	umm_file_put(file);
	return true;
}

/*
 * A new mm in @u mapping 2 pages of @file at @addr, and a recorder @name
 * registered on it.
 */
static bool file_mm(struct umm *u, struct umm_file *file, uint64_t addr, int prot, int flags,
		    const char *name, struct umm_mm **mm, struct rec **r)
{
	ASSERT_OK(umm_mm_create(u, mm));
	ASSERT_OK(map_file(*mm, addr, 2, prot, flags, file, 0));
	*r = rec_reg(name, *mm);
	ASSERT_TRUE(*r);
	return true;
}

/* machine_done(), then free every recorder. */
static bool machine_done_all(struct umm *u)
{
	ASSERT_TRUE(machine_done(u));
	recs_free_all();
	return true;
}

/* ---- faults that take nothing away ---- */

/*
 * Reads (zero frame or present page), writes to fresh pages, writes that
 * reuse an exclusive page (after the other side of a fork exited or
 * copied), GUP of present pages, shared-anon writes: no invalidation.
 */
static bool test_faults_send_nothing(void)
{
	struct umm_page *pg;
	struct umm_mm *c;
	uint8_t buf[64];
	struct fix f;
	struct rec *r;
	uint64_t reuse;
	size_t m;

	ASSERT_TRUE(fix_init(&f));
	ASSERT_OK(map_at(f.mm, AT(0), 8, RW, PRIV));
	ASSERT_OK(map_at(f.mm, AT(10), 2, RW, SHRD));
	r = rec_reg("r", f.mm);
	ASSERT_TRUE(r);
	ASSERT_EQ(umm_read(f.mm, AT(0), buf, sizeof(buf)), sizeof(buf));	/* zero frame */
	ASSERT_TRUE(pinfo(f.mm, AT(0)).flags & UMM_PI_ZERO);
	ASSERT_TRUE(write_pat(f.mm, AT(1), 3, 1));				/* fresh */
	ASSERT_TRUE(write_pat(f.mm, AT(1), 3, 2));				/* again */
	ASSERT_TRUE(check_pat(f.mm, AT(1), 3, 2));
	ASSERT_TRUE(write_pat(f.mm, AT(10), 2, 3));				/* shmem */
	ASSERT_TRUE(write_pat(f.mm, AT(10), 2, 4));
	ASSERT_OK(umm_get_user_page(f.mm, AT(5), UMM_GUP_WRITE, &pg));		/* fresh */
	umm_put_page(pg);
	ASSERT_OK(umm_get_user_page(f.mm, AT(1), 0, &pg));
	umm_put_page(pg);
	ASSERT_OK(umm_get_user_page(f.mm, AT(1), UMM_GUP_WRITE, &pg));
	umm_put_page(pg);
	ASSERT_TRUE(no_starts(r, 0));

	/* fork: the child exits, then the parent's write reuses its page */
	ASSERT_OK(umm_mm_fork(f.mm, &c));
	umm_mm_exit(c);
	m = rec_mark(r);
	reuse = ustat(f.u).pgfault_reuse;
	ASSERT_TRUE(write_pat(f.mm, AT(1), 1, 5));
	ASSERT_EQ(ustat(f.u).pgfault_reuse, reuse + 1);
	ASSERT_TRUE(no_starts(r, m));

	/* fork: the child copies, then the parent reuses */
	ASSERT_OK(umm_mm_fork(f.mm, &c));
	ASSERT_TRUE(write_pat(c, AT(2), 1, 6));
	m = rec_mark(r);
	ASSERT_TRUE(write_pat(f.mm, AT(2), 1, 7));
	ASSERT_EQ(ustat(f.u).pgfault_reuse, reuse + 2);
	ASSERT_TRUE(no_starts(r, m));
	ASSERT_TRUE(check_pat(c, AT(2), 1, 6));
	umm_mm_exit(c);
	ASSERT_TRUE(no_starts(r, m));			/* the child's exit is not ours */
	ASSERT_TRUE(machine_valid(f.u));
	ASSERT_TRUE(fix_rec_done(&f, r));
	return true;
}

/* ---- COW breaks ---- */

/*
 * Breaking COW replaces a present PTE: CLEAR over exactly that page, in
 * the mm that writes (the other side keeps its PTE); also for the zero
 * frame and for GUP with WRITE.
 *
 *   p: 0 written, 1 written, 2 read (zero frame), 3 written; fork -> c
 */
static bool test_cow_break(void)
{
	struct umm_page *pg;
	struct rec *rp, *rc;
	struct umm_mm *c;
	struct fix f;
	uint8_t b;
	size_t mp, mc;

	ASSERT_TRUE(fix_init(&f));
	ASSERT_OK(map_at(f.mm, AT(0), 4, RW, PRIV));
	ASSERT_TRUE(write_pat(f.mm, AT(0), 2, 1));
	ASSERT_EQ(umm_read(f.mm, AT(2), &b, 1), 1);
	ASSERT_TRUE(write_pat(f.mm, AT(3), 1, 1));
	ASSERT_OK(umm_mm_fork(f.mm, &c));
	rp = rec_reg("p", f.mm);
	rc = rec_reg("c", c);
	ASSERT_TRUE(rp && rc);

	mp = rec_mark(rp);
	mc = rec_mark(rc);
	ASSERT_TRUE(write_pat(c, AT(0), 1, 2));			/* the child copies */
	ASSERT_TRUE(STARTS_ARE(rc, mc, { EV_CLEAR, AT(0), AT(1) }));
	ASSERT_TRUE(no_starts(rp, mp));

	mc = rec_mark(rc);
	ASSERT_TRUE(write_pat(f.mm, AT(1), 1, 3));		/* the parent copies */
	ASSERT_TRUE(STARTS_ARE(rp, mp, { EV_CLEAR, AT(1), AT(2) }));
	ASSERT_TRUE(no_starts(rc, mc));

	mp = rec_mark(rp);
	ASSERT_TRUE(pinfo(f.mm, AT(2)).flags & UMM_PI_ZERO);
	ASSERT_TRUE(write_pat(f.mm, AT(2) + 0, 1, 4));		/* the zero frame */
	ASSERT_TRUE(STARTS_ARE(rp, mp, { EV_CLEAR, AT(2), AT(3) }));
	ASSERT_TRUE(no_starts(rc, mc));

	mp = rec_mark(rp);
	ASSERT_OK(umm_get_user_page(c, AT(3), UMM_GUP_WRITE, &pg));	/* GUP breaks COW */
	umm_put_page(pg);
	ASSERT_TRUE(STARTS_ARE(rc, mc, { EV_CLEAR, AT(3), AT(4) }));
	ASSERT_TRUE(no_starts(rp, mp));

	/* a one-byte store in the middle of a page: the range is still the page */
	{
		struct umm_mm *g;
		struct rec *rg;
		size_t mg;

		ASSERT_OK(umm_mm_fork(f.mm, &g));
		rg = rec_reg("g", g);
		ASSERT_TRUE(rg);
		mg = rec_mark(rg);
		ASSERT_TRUE(put_byte(g, AT(1) + 1234, 0x5a));
		ASSERT_TRUE(STARTS_ARE(rg, mg, { EV_CLEAR, AT(1), AT(2) }));
		ASSERT_TRUE(check_pat(f.mm, AT(1), 1, 3));
		rec_unreg(rg);
		umm_mm_exit(g);
	}
	ASSERT_TRUE(check_pat(c, AT(0), 1, 2));
	ASSERT_TRUE(check_pat(c, AT(1), 1, 1));
	ASSERT_TRUE(check_pat(f.mm, AT(0), 1, 1));
	ASSERT_TRUE(check_pat(f.mm, AT(2), 1, 4));
	ASSERT_TRUE(rec_ok(rp) && rec_ok(rc));
	ASSERT_TRUE(machine_valid(f.u));
	rec_unreg(rc);
	rec_unreg(rp);
	umm_mm_exit(c);
	ASSERT_TRUE(fix_done(&f));
	return true;
}

/*
 * Private file mappings: a write to an untouched page copies without
 * replacing anything (no invalidation); a write after a read replaces the
 * page-cache page's PTE (CLEAR over the page).
 */
static bool test_cow_break_file(void)
{
	struct umm_file *file;
	struct fix f;
	struct rec *r;
	size_t m;

	ASSERT_TRUE(make_file("cow", 4));
	ASSERT_TRUE(fix_init(&f));
	ASSERT_OK(umm_file_open(f.u, tmp_path("cow"), O_RDWR, &file));
	ASSERT_OK(map_file(f.mm, AT(0), 4, RW, UMM_MAP_PRIVATE, file, 0));
	r = rec_reg("r", f.mm);
	ASSERT_TRUE(r);
	ASSERT_TRUE(put_byte(f.mm, AT(0), 1));			/* untouched: do_cow_fault */
	ASSERT_EQ(byte_at(f.mm, AT(1)), fbyte(PG(1)));		/* maps the cache page */
	ASSERT_TRUE(no_starts(r, 0));
	m = rec_mark(r);
	ASSERT_TRUE(put_byte(f.mm, AT(1) + 7, 2));
	ASSERT_TRUE(STARTS_ARE(r, m, { EV_CLEAR, AT(1), AT(2) }));
	ASSERT_TRUE(pinfo(f.mm, AT(1)).flags & UMM_PI_ANON);
	ASSERT_EQ(byte_at(f.mm, AT(1) + 8), fbyte(PG(1) + 8));
	rec_unreg(r);
	umm_file_put(file);
	ASSERT_TRUE(fix_done(&f));
	return true;
}

/* ---- fork ---- */

/*
 * fork write-protects the parent's private pages: PROTECTION_PAGE on the
 * parent over each private VMA with anonymous pages (the whole VMA), in
 * address order; nothing for untouched, zero-frame-only or shared VMAs.
 *
 *   AAAA BB CC DD EEE FF      A private, pages 0 and 2 written
 *                             B private, untouched
 *                             C private, read only (zero frame)
 *                             D shared anonymous, written
 *                             E private, its middle page written
 *                             F private file, one page copied by a write
 */
static bool test_fork(void)
{
	struct umm_file *file;
	struct umm_mm *c, *c2;
	struct rec *r, *rc;
	struct fix f;
	uint8_t b;
	size_t m;

	ASSERT_TRUE(make_file("fork", 2));
	ASSERT_TRUE(fix_init(&f));
	ASSERT_OK(umm_file_open(f.u, tmp_path("fork"), O_RDWR, &file));
	ASSERT_OK(map_at(f.mm, AT(0), 4, RW, PRIV));
	ASSERT_OK(map_at(f.mm, AT(5), 2, RW, PRIV));
	ASSERT_OK(map_at(f.mm, AT(8), 2, RW, PRIV));
	ASSERT_OK(map_at(f.mm, AT(11), 2, RW, SHRD));
	ASSERT_OK(map_at(f.mm, AT(14), 3, RW, PRIV));
	ASSERT_OK(map_file(f.mm, AT(18), 2, RW, UMM_MAP_PRIVATE, file, 0));
	ASSERT_TRUE(layout_is(f.mm, BASE, "AAAA BB CC DD EEE FF"));
	ASSERT_TRUE(write_pat(f.mm, AT(0), 1, 1));
	ASSERT_TRUE(write_pat(f.mm, AT(2), 1, 1));
	ASSERT_EQ(umm_read(f.mm, AT(8), &b, 1), 1);
	ASSERT_TRUE(write_pat(f.mm, AT(11), 2, 1));
	ASSERT_TRUE(write_pat(f.mm, AT(15), 1, 1));
	ASSERT_EQ(byte_at(f.mm, AT(19)), fbyte(PG(1)));
	ASSERT_TRUE(put_byte(f.mm, AT(18), 9));
	r = rec_reg("p", f.mm);
	ASSERT_TRUE(r);
	m = rec_mark(r);
	ASSERT_OK(umm_mm_fork(f.mm, &c));
	ASSERT_TRUE(STARTS_ARE(r, m, { EV_PPAGE, AT(0), AT(4) }, { EV_PPAGE, AT(14), AT(17) },
			       { EV_PPAGE, AT(18), AT(20) }));
	ASSERT_EQ(rec_get(r, m, K_RELEASE, NULL, 0), 0);

	/* a subscriber of the child sees its own COW, the parent's nothing */
	rc = rec_reg("c", c);
	ASSERT_TRUE(rc);
	m = rec_mark(r);
	ASSERT_TRUE(write_pat(c, AT(2), 1, 2));
	ASSERT_TRUE(STARTS_ARE(rc, 0, { EV_CLEAR, AT(2), AT(3) }));
	ASSERT_TRUE(no_starts(r, m));

	/* fork of the child: the child's subscriber sees the PROTECTION_PAGEs */
	ASSERT_OK(umm_mm_fork(c, &c2));
	ASSERT_TRUE(STARTS_ARE(rc, 0, { EV_CLEAR, AT(2), AT(3) }, { EV_PPAGE, AT(0), AT(4) },
			       { EV_PPAGE, AT(14), AT(17) }, { EV_PPAGE, AT(18), AT(20) }));
	ASSERT_TRUE(no_starts(r, m));
	ASSERT_TRUE(check_pat(c2, AT(2), 1, 2));
	ASSERT_TRUE(check_pat(f.mm, AT(2), 1, 1));
	ASSERT_TRUE(machine_valid(f.u));
	umm_mm_exit(c2);
	rec_unreg(rc);
	umm_mm_exit(c);
	ASSERT_TRUE(no_starts(r, m));
	rec_unreg(r);
	umm_file_put(file);
	ASSERT_TRUE(fix_done(&f));
	return true;
}

/* ---- munmap ---- */

/*
 * munmap: UNMAP ranges inside the call's range covering every page that
 * was mapped; nothing for a range with no VMA.
 *
 *   AAAAAAAA          written; munmap pages 2..4
 *   _BBB CC DD        B written, hole, C read (zero frame), D shared written;
 *                     munmap from the page before B to the page after D
 */
static bool test_munmap(void)
{
	struct fix f;
	struct rec *r;
	uint8_t b;
	size_t m;

	ASSERT_TRUE(fix_rec(&f, &r));
	ASSERT_TRUE(map_pat(f.mm, AT(0), 8, RW, PRIV, 1));
	m = rec_mark(r);
	ASSERT_OK(umm_munmap(f.mm, AT(2), PG(3)));
	ASSERT_TRUE(starts_cover(r, m, EV_UNMAP, AT(2), AT(5), "xxx"));
	ASSERT_TRUE(layout_is(f.mm, BASE, "AA   BBB"));

	ASSERT_TRUE(map_pat(f.mm, AT(21), 3, RW, PRIV, 2));
	ASSERT_OK(map_at(f.mm, AT(25), 2, RO, PRIV));
	ASSERT_EQ(umm_read(f.mm, AT(25), &b, 1), 1);
	ASSERT_EQ(umm_read(f.mm, AT(26), &b, 1), 1);
	ASSERT_TRUE(map_pat(f.mm, AT(28), 2, RW, SHRD, 3));
	ASSERT_TRUE(layout_is(f.mm, AT(20), " AAA BB CC "));
	m = rec_mark(r);
	ASSERT_OK(umm_munmap(f.mm, AT(20), PG(11)));
	ASSERT_TRUE(starts_cover(r, m, EV_UNMAP, AT(20), AT(31), " xxx xx xx "));
	ASSERT_TRUE(layout_is(f.mm, AT(20), "           "));

	/* over nothing, or refused: nothing */
	m = rec_mark(r);
	ASSERT_OK(umm_munmap(f.mm, AT(40), PG(8)));
	ASSERT_ERR(umm_munmap(f.mm, AT(0) + 1, PG(1)), EINVAL);
	ASSERT_ERR(umm_munmap(f.mm, AT(0), 0), EINVAL);
	ASSERT_TRUE(no_starts(r, m));

	/* the rest, one page of the last VMA first */
	m = rec_mark(r);
	ASSERT_OK(umm_munmap(f.mm, AT(7), PG(1)));
	ASSERT_TRUE(starts_cover(r, m, EV_UNMAP, AT(7), AT(8), "x"));
	m = rec_mark(r);
	ASSERT_OK(umm_munmap(f.mm, AT(0), PG(8)));
	ASSERT_TRUE(starts_cover(r, m, EV_UNMAP, AT(0), AT(8), "xx   xx"));
	ASSERT_EQ(mstat(f.mm).rss_anon, 0);

	/* MAP_FIXED over a populated range unmaps it too */
	ASSERT_TRUE(map_pat(f.mm, AT(0), 4, RW, PRIV, 4));
	m = rec_mark(r);
	ASSERT_OK(map_at(f.mm, AT(1), 2, RW, PRIV));
	ASSERT_TRUE(starts_cover(r, m, EV_UNMAP, AT(1), AT(3), "xx"));
	ASSERT_TRUE(zeros_at(f.mm, AT(1), 2));
	ASSERT_TRUE(check_pat(f.mm, AT(3), 1, 4));
	ASSERT_TRUE(fix_rec_done(&f, r));
	return true;
}

/* ---- MADV_DONTNEED ---- */

/*
 * DONTNEED zaps: CLEAR ranges inside the call's range covering what was
 * mapped, private or shared.
 *
 *   AAAAAAAA BB   A private written (pages 2..4 made RO: three VMAs), B shared
 */
static bool test_dontneed(void)
{
	struct fix f;
	struct rec *r;
	size_t m;

	ASSERT_TRUE(fix_rec(&f, &r));
	ASSERT_TRUE(map_pat(f.mm, AT(0), 8, RW, PRIV, 1));
	ASSERT_TRUE(map_pat(f.mm, AT(9), 2, RW, SHRD, 2));
	m = rec_mark(r);
	ASSERT_OK(umm_madvise(f.mm, AT(1), PG(3), UMM_MADV_DONTNEED));
	ASSERT_TRUE(starts_cover(r, m, EV_CLEAR, AT(1), AT(4), "xxx"));
	ASSERT_TRUE(zeros_at(f.mm, AT(1), 3));
	ASSERT_TRUE(check_pat(f.mm, AT(4), 4, 1));

	ASSERT_TRUE(write_pat(f.mm, AT(1), 3, 3));
	ASSERT_OK(umm_mprotect(f.mm, AT(2), PG(3), RO));
	ASSERT_TRUE(layout_is(f.mm, BASE, "AABBBCCC"));
	m = rec_mark(r);
	ASSERT_OK(umm_madvise(f.mm, AT(0), PG(8), UMM_MADV_DONTNEED));
	ASSERT_TRUE(starts_cover(r, m, EV_CLEAR, AT(0), AT(8), "xxxxxxxx"));
	ASSERT_TRUE(zeros_at(f.mm, AT(0), 8));

	/* refused: nothing sent */
	ASSERT_OK(umm_mlock(f.mm, AT(9), PG(2)));
	m = rec_mark(r);
	ASSERT_ERR(umm_madvise(f.mm, AT(9), PG(2), UMM_MADV_DONTNEED), EINVAL);
	ASSERT_ERR(umm_madvise(f.mm, AT(1), PG(1), 12345), EINVAL);
	ASSERT_TRUE(no_starts(r, m));
	ASSERT_OK(umm_munlock(f.mm, AT(9), PG(2)));

	m = rec_mark(r);
	ASSERT_OK(umm_madvise(f.mm, AT(9), PG(2), UMM_MADV_DONTNEED));
	ASSERT_TRUE(starts_cover(r, m, EV_CLEAR, AT(9), AT(11), "xx"));
	ASSERT_TRUE(check_pat(f.mm, AT(9), 2, 2));		/* shmem keeps the data */
	ASSERT_TRUE(fix_rec_done(&f, r));
	return true;
}

/* ---- mprotect ---- */

/*
 * mprotect: PROTECTION_VMA ranges inside the call's range covering the
 * mapped pages whose protection changes, whether write is taken away or
 * given back (VMAs that already had the protection may be skipped, as
 * Linux does); a store denied by the protection sends nothing.
 */
static bool test_mprotect(void)
{
	struct fix f;
	struct rec *r;
	size_t m;

	ASSERT_TRUE(fix_rec(&f, &r));
	ASSERT_TRUE(map_pat(f.mm, AT(0), 8, RW, PRIV, 1));
	m = rec_mark(r);
	ASSERT_OK(umm_mprotect(f.mm, AT(2), PG(3), RO));
	ASSERT_TRUE(starts_cover(r, m, EV_PVMA, AT(2), AT(5), "xxx"));
	ASSERT_TRUE(layout_is(f.mm, BASE, "AABBBCCC"));
	ASSERT_FALSE(pinfo(f.mm, AT(3)).flags & UMM_PI_WRITE);

	m = rec_mark(r);
	ASSERT_ERR(write_byte(f.mm, AT(3), 1), EFAULT);
	ASSERT_TRUE(no_starts(r, m));

	m = rec_mark(r);
	ASSERT_OK(umm_mprotect(f.mm, AT(0), PG(8), RW));		/* three VMAs, merged */
	ASSERT_TRUE(starts_cover(r, m, EV_PVMA, AT(0), AT(8), "  xxx   "));
	ASSERT_TRUE(layout_is(f.mm, BASE, "AAAAAAAA"));
	ASSERT_TRUE(write_pat(f.mm, AT(3), 1, 2));
	ASSERT_TRUE(check_pat(f.mm, AT(2), 1, 1));

	m = rec_mark(r);
	ASSERT_OK(umm_mprotect(f.mm, AT(0), PG(8), UMM_PROT_NONE));
	ASSERT_TRUE(starts_cover(r, m, EV_PVMA, AT(0), AT(8), "xxxxxxxx"));
	ASSERT_ERR(byte_at(f.mm, AT(0)), EFAULT);
	ASSERT_TRUE(fix_rec_done(&f, r));
	return true;
}

/* ---- mremap ---- */

/*
 * mremap moving pages: UNMAP over the old range (inside it, covering
 * what was mapped); growing in place sends nothing; shrinking unmaps the
 * tail (UNMAP); DONTUNMAP empties the old range (UNMAP over it).
 */
static bool test_mremap(void)
{
	struct fix f;
	struct rec *r;
	uint64_t out;
	size_t m;

	ASSERT_TRUE(fix_rec(&f, &r));
	ASSERT_TRUE(map_pat(f.mm, AT(0), 4, RW, PRIV, 1));
	m = rec_mark(r);
	ASSERT_OK(umm_mremap(f.mm, AT(0), PG(4), PG(4), UMM_MREMAP_MAYMOVE | UMM_MREMAP_FIXED,
			     AT(20), &out));
	ASSERT_EQ(out, AT(20));
	ASSERT_TRUE(starts_cover(r, m, EV_UNMAP, AT(0), AT(4), "xxxx"));
	ASSERT_TRUE(pat_at(f.mm, AT(20), AT(0), 4, 1));

	m = rec_mark(r);
	ASSERT_OK(umm_mremap(f.mm, AT(20), PG(4), PG(6), 0, 0, &out));	/* grow in place */
	ASSERT_EQ(out, AT(20));
	ASSERT_TRUE(no_starts(r, m));

	m = rec_mark(r);
	ASSERT_OK(umm_mremap(f.mm, AT(20), PG(6), PG(2), 0, 0, &out));	/* shrink */
	ASSERT_TRUE(starts_cover(r, m, EV_UNMAP, AT(22), AT(26), "xx"));
	ASSERT_TRUE(layout_is(f.mm, AT(20), "AA    "));

	m = rec_mark(r);
	ASSERT_OK(umm_mremap(f.mm, AT(20), PG(2), PG(2),
			     UMM_MREMAP_MAYMOVE | UMM_MREMAP_FIXED | UMM_MREMAP_DONTUNMAP, AT(40),
			     &out));
	ASSERT_TRUE(starts_cover(r, m, EV_UNMAP, AT(20), AT(22), "xx"));
	ASSERT_TRUE(zeros_at(f.mm, AT(20), 2));
	ASSERT_TRUE(pat_at(f.mm, AT(40), AT(0), 2, 1));
	ASSERT_TRUE(fix_rec_done(&f, r));
	return true;
}

/* ---- rmap operations: page_mkclean, msync, try_to_unmap ---- */

/*
 * page_mkclean and msync of a shared file page: PROTECTION_PAGE over the
 * page, at each mm's own address, in every mm whose shared mapping maps
 * it; nothing for a private mapping of the file.  A store that dirties the
 * cleaned page again sends nothing.
 *
 *   m0: shared at AT(0), writes page 0     m1: shared at AT(10), reads page 0
 *   m2: private at AT(20), reads page 0
 */
static bool test_page_mkclean(void)
{
	struct umm_file *file;
	struct umm_mm *mm[3];
	struct rec *r[3];
	struct umm *u;
	size_t m[3];

	ASSERT_TRUE(file_machine("mkclean", 2, &u, &file));
	for (int i = 0; i < 3; i++)
		ASSERT_TRUE(file_mm(u, file, AT(10 * i), RW, i < 2 ? UMM_MAP_SHARED : UMM_MAP_PRIVATE,
				    mm_name[i], &mm[i], &r[i]));
	ASSERT_TRUE(put_byte(mm[0], AT(0) + 5, 0xee));
	ASSERT_EQ(byte_at(mm[1], AT(10) + 5), 0xee);
	ASSERT_EQ(byte_at(mm[2], AT(20) + 5), 0xee);
	for (int i = 0; i < 3; i++)
		ASSERT_TRUE(no_starts(r[i], 0));

	for (int i = 0; i < 3; i++)
		m[i] = rec_mark(r[i]);
	ASSERT_GE(umm_page_mkclean(mm[1], AT(10)), 1);
	ASSERT_TRUE(STARTS_ARE(r[0], m[0], { EV_PPAGE, AT(0), AT(1) }));
	ASSERT_TRUE(STARTS_ARE(r[1], m[1], { EV_PPAGE, AT(10), AT(11) }));
	ASSERT_TRUE(no_starts(r[2], m[2]));

	/* dirty again: no invalidation for making a PTE writable */
	for (int i = 0; i < 3; i++)
		m[i] = rec_mark(r[i]);
	ASSERT_TRUE(put_byte(mm[1], AT(10) + 6, 0xef));
	ASSERT_TRUE(put_byte(mm[0], AT(0) + 7, 0xf0));
	for (int i = 0; i < 3; i++)
		ASSERT_TRUE(no_starts(r[i], m[i]));

	/* msync writes page 0 back after cleaning it; page 1 was never dirty */
	ASSERT_OK(umm_msync(mm[0], AT(0), PG(2), UMM_MS_SYNC));
	ASSERT_TRUE(STARTS_ARE(r[0], m[0], { EV_PPAGE, AT(0), AT(1) }));
	ASSERT_TRUE(STARTS_ARE(r[1], m[1], { EV_PPAGE, AT(10), AT(11) }));
	ASSERT_TRUE(no_starts(r[2], m[2]));
	ASSERT_FALSE(pinfo(mm[0], AT(0)).flags & (UMM_PI_WRITE | UMM_PI_DIRTY));
	ASSERT_TRUE(mms_put(u, file, mm, r, 3));
	ASSERT_TRUE(machine_done_all(u));
	return true;
}

/*
 * msync over pages nobody dirtied since the last writeback has nothing to
 * write, so (as on Linux, where writeback only cleans dirty pages) it
 * write-protects nothing and sends no invalidation.
 */
static bool test_msync_clean_sends_nothing(void)
{
	struct umm_file *file;
	struct umm_mm *mm[2];
	struct rec *r[2];
	struct umm *u;
	size_t m[2];
	bool ok;

	ASSERT_TRUE(file_machine("msclean", 2, &u, &file));
	for (int i = 0; i < 2; i++)
		ASSERT_TRUE(file_mm(u, file, AT(10 * i), RW, UMM_MAP_SHARED, mm_name[i], &mm[i],
				    &r[i]));
	ASSERT_TRUE(put_byte(mm[0], AT(0), 0x42));
	ASSERT_EQ(byte_at(mm[1], AT(10)), 0x42);
	ASSERT_EQ(byte_at(mm[1], AT(11)), fbyte(PG(1)));	/* read, never written */
	ASSERT_OK(umm_msync(mm[0], AT(0), PG(2), UMM_MS_SYNC));
	/* (checked into ok, so that a failure still tears down: ASan stays quiet) */
	ok = STARTS_ARE(r[0], 0, { EV_PPAGE, AT(0), AT(1) }) &&
	     STARTS_ARE(r[1], 0, { EV_PPAGE, AT(10), AT(11) });
	for (int i = 0; i < 2; i++)
		m[i] = rec_mark(r[i]);
	ASSERT_OK(umm_msync(mm[1], AT(10), PG(2), UMM_MS_SYNC));
	ASSERT_OK(umm_msync(mm[0], AT(0), PG(2), UMM_MS_SYNC));
	for (int i = 0; i < 2; i++)
		ok = no_starts(r[i], m[i]) && ok;
	ASSERT_TRUE(mms_put(u, file, mm, r, 2));
	ASSERT_TRUE(machine_done_all(u));
	return ok;
}

/*
 * try_to_unmap of a file page: CLEAR over the page at each mm's own
 * address in every mm mapping it (shared or private, read-only); of a
 * shared anonymous page: the same in both sides of a fork.
 */
static bool test_try_to_unmap(void)
{
	struct umm_file *file;
	struct umm_mm *mm[3], *c;
	struct rec *r[3], *rc;
	struct umm *u;
	size_t m[3];

	ASSERT_TRUE(file_machine("ttu", 2, &u, &file));
	for (int i = 0; i < 3; i++) {
		ASSERT_TRUE(file_mm(u, file, AT(10 * i + 3), i == 2 ? RO : RW,
				    i == 1 ? UMM_MAP_PRIVATE : UMM_MAP_SHARED, mm_name[i], &mm[i],
				    &r[i]));
		ASSERT_EQ(byte_at(mm[i], AT(10 * i + 4)), fbyte(PG(1)));
		m[i] = rec_mark(r[i]);
	}
	ASSERT_TRUE(put_byte(mm[0], AT(4) + 1, 0x77));		/* dirty: no event */
	ASSERT_TRUE(no_starts(r[0], m[0]));
	ASSERT_EQ(umm_page_rmap_count(mm[2], AT(24)), 3);
	ASSERT_OK(umm_try_to_unmap(mm[2], AT(24)));
	for (int i = 0; i < 3; i++) {
		ASSERT_TRUE(STARTS_ARE(r[i], m[i], { EV_CLEAR, AT(10 * i + 4), AT(10 * i + 5) }));
		ASSERT_FALSE(pinfo(mm[i], AT(10 * i + 4)).flags & UMM_PI_PRESENT);
	}
	ASSERT_EQ(byte_at(mm[1], AT(14) + 1), 0x77);
	ASSERT_TRUE(mms_put(u, file, mm, r, 3));

	/* shared anonymous memory, across fork */
	ASSERT_OK(umm_mm_create(u, &mm[0]));
	ASSERT_TRUE(map_pat(mm[0], AT(0), 2, RW, SHRD, 1));
	ASSERT_OK(umm_mm_fork(mm[0], &c));
	ASSERT_TRUE(check_pat(c, AT(1), 1, 1));
	r[0] = rec_reg("p", mm[0]);
	rc = rec_reg("c", c);
	ASSERT_TRUE(r[0] && rc);
	ASSERT_OK(umm_try_to_unmap(c, AT(1)));
	ASSERT_TRUE(STARTS_ARE(r[0], 0, { EV_CLEAR, AT(1), AT(2) }));
	ASSERT_TRUE(STARTS_ARE(rc, 0, { EV_CLEAR, AT(1), AT(2) }));
	ASSERT_TRUE(check_pat(c, AT(0), 2, 1));
	ASSERT_TRUE(machine_valid(u));
	rec_unreg(rc);
	rec_unreg(r[0]);
	umm_mm_exit(c);
	umm_mm_exit(mm[0]);
	ASSERT_TRUE(machine_done_all(u));
	return true;
}

/* ---- aging ---- */

static bool cfy_calls(struct rec *r, size_t from, int n, struct umm_mm *mm, uint64_t addr)
{
	struct ev got[16];
	int nr = rec_get(r, from, K_CFY, got, 16);
	bool ok = nr == n;

	for (int i = 0; ok && i < nr; i++)
		ok = got[i].mm == mm && got[i].start == addr && got[i].end == addr + PS;
	if (!ok) {
		TAP_DIAG("%s: want %d clear_flush_young(%#" PRIx64 ", +4096)", r->name, n, addr);
		rec_dump(r, from);
	}
	return ok && rec_ok(r);
}

/*
 * umm_page_referenced asks every subscriber of each mapping's mm
 * (clear_flush_young over the page) and counts a mapping young if its PTE
 * or any secondary MMU says so.
 */
static bool test_page_referenced(void)
{
	struct rec *rp, *rp2, *rc;
	struct umm_mm *c;
	struct fix f;
	size_t mp, mp2, mc;

	ASSERT_TRUE(fix_init(&f));
	ASSERT_TRUE(map_pat(f.mm, AT(0), 2, RW, PRIV, 1));
	rp = rec_reg("p", f.mm);
	ASSERT_TRUE(rp);
	ASSERT_EQ(umm_page_referenced(f.mm, AT(0)), 1);		/* the PTE was young */
	ASSERT_TRUE(cfy_calls(rp, 0, 1, f.mm, AT(0)));
	ASSERT_EQ(umm_page_referenced(f.mm, AT(0)), 0);
	ASSERT_TRUE(cfy_calls(rp, 0, 2, f.mm, AT(0)));
	atomic_store(&rp->young, 1);
	ASSERT_EQ(umm_page_referenced(f.mm, AT(0)), 1);		/* young in the secondary MMU */
	ASSERT_TRUE(cfy_calls(rp, 0, 3, f.mm, AT(0)));
	ASSERT_TRUE(no_starts(rp, 0));

	/* two mappings after fork, two subscribers on the parent */
	ASSERT_OK(umm_mm_fork(f.mm, &c));
	ASSERT_TRUE(STARTS_ARE(rp, 0, { EV_PPAGE, AT(0), AT(2) }));
	mp = rec_mark(rp);
	rc = rec_reg("c", c);
	rp2 = rec_reg("p2", f.mm);
	ASSERT_TRUE(rc && rp2);
	atomic_store(&rp->young, 0);
	ASSERT_GE(umm_page_referenced(c, AT(1)), 0);		/* clear the PTEs' young bits */
	ASSERT_EQ(umm_page_referenced(c, AT(1)), 0);
	mp2 = rec_mark(rp2);
	mc = rec_mark(rc);
	atomic_store(&rp->young, 1);
	ASSERT_EQ(umm_page_referenced(c, AT(1)), 1);		/* the parent's secondary */
	ASSERT_TRUE(cfy_calls(rp, mp, 3, f.mm, AT(1)));
	ASSERT_TRUE(cfy_calls(rp2, mp2, 1, f.mm, AT(1)));
	ASSERT_TRUE(cfy_calls(rc, mc, 1, c, AT(1)));
	atomic_store(&rp2->young, 1);
	ASSERT_EQ(umm_page_referenced(f.mm, AT(1)), 1);		/* one mapping, however many */
	atomic_store(&rc->young, 1);
	ASSERT_EQ(umm_page_referenced(f.mm, AT(1)), 2);
	atomic_store(&rp->young, 0);
	atomic_store(&rp2->young, 0);
	ASSERT_EQ(umm_page_referenced(f.mm, AT(1)), 1);
	ASSERT_TRUE(cfy_calls(rc, mc, 4, c, AT(1)));
	/* a read makes the child's PTE young: still one for that mapping */
	ASSERT_TRUE(check_pat(c, AT(1), 1, 1));
	ASSERT_EQ(umm_page_referenced(f.mm, AT(1)), 1);
	atomic_store(&rc->young, 0);
	ASSERT_EQ(umm_page_referenced(f.mm, AT(1)), 0);
	ASSERT_TRUE(no_starts(rp, mp) && no_starts(rp2, 0) && no_starts(rc, 0));
	rec_unreg(rc);
	rec_unreg(rp2);
	rec_unreg(rp);
	umm_mm_exit(c);
	ASSERT_TRUE(fix_done(&f));
	return true;
}

/* ---- exit ---- */

/*
 * exit: each subscriber's ->release once, before the page tables and
 * frames are torn down, and nothing after it; the mm is gone from the
 * machine (not alive) but unregister must still be called, and does not
 * call ->release again.
 */
static bool test_exit_release(void)
{
	struct umm_stat before;
	struct rec *r1, *r2;
	struct fix f;
	size_t m1, m2;

	ASSERT_TRUE(fix_init(&f));
	ASSERT_TRUE(map_pat(f.mm, AT(0), 16, RW, PRIV, 1));
	ASSERT_TRUE(map_pat(f.mm, AT(20), 2, RW, SHRD, 1));
	r1 = rec_reg("r1", f.mm);
	r2 = rec_reg("r2", f.mm);
	ASSERT_TRUE(r1 && r2);
	r1->u = f.u;
	m1 = rec_mark(r1);
	m2 = rec_mark(r2);
	before = ustat(f.u);
	umm_mm_exit(f.mm);
	ASSERT_EQ(rec_nr_release(r1), 1);
	ASSERT_EQ(rec_nr_release(r2), 1);
	/* only the release: no start before it, none after */
	ASSERT_EQ(rec_mark(r1), m1 + 1);
	ASSERT_EQ(rec_mark(r2), m2 + 1);
	ASSERT_EQ(rec_get(r1, m1, K_RELEASE, NULL, 0), 1);
	ASSERT_EQ(rec_get(r2, m2, K_RELEASE, NULL, 0), 1);
	ASSERT_TRUE(rec_ok(r1) && rec_ok(r2));
	/* ->release ran before anything was freed */
	ASSERT_EQ(r1->free_at_release, before.nr_free);
	ASSERT_EQ(r1->pgtables_at_release, before.nr_pgtables);
	ASSERT_GE(ustat(f.u).nr_free, before.nr_free + 16);
	ASSERT_EQ(ustat(f.u).nr_mms, before.nr_mms - 1);
	umm_mmu_notifier_unregister(&r1->mn, f.mm);
	ASSERT_EQ(rec_nr_release(r1), 1);
	ASSERT_EQ(rec_mark(r1), m1 + 1);
	umm_mmu_notifier_unregister(&r2->mn, f.mm);
	ASSERT_EQ(rec_nr_release(r2), 1);
	ASSERT_EQ(rec_mark(r2), m2 + 1);
	f.mm = NULL;
	ASSERT_TRUE(fix_done(&f));
	return true;
}

/*
 * The exit of a child sends nothing to the parent's subscribers even
 * though it unmaps COW-shared pages; an mm exiting with a subscriber whose
 * unregister comes only after the machine saw other mms come and go.
 */
static bool test_exit_child(void)
{
	struct umm_mm *c, *d;
	struct rec *rp, *rc;
	struct fix f;
	size_t m;

	ASSERT_TRUE(fix_init(&f));
	ASSERT_TRUE(map_pat(f.mm, AT(0), 4, RW, PRIV, 1));
	rp = rec_reg("p", f.mm);
	ASSERT_TRUE(rp);
	ASSERT_OK(umm_mm_fork(f.mm, &c));
	rc = rec_reg("c", c);
	ASSERT_TRUE(rc);
	m = rec_mark(rp);
	umm_mm_exit(c);
	ASSERT_TRUE(nothing_since(rp, m));
	ASSERT_EQ(rec_nr_release(rc), 1);
	ASSERT_OK(umm_mm_create(f.u, &d));
	ASSERT_TRUE(map_pat(d, AT(0), 4, RW, PRIV, 2));
	umm_mm_exit(d);
	rec_unreg(rc);
	ASSERT_EQ(rec_nr_release(rc), 1);
	ASSERT_TRUE(nothing_since(rp, m));
	ASSERT_TRUE(fix_rec_done(&f, rp));
	return true;
}

/* ---- several subscribers ---- */

/* A bit of everything in @mm: each step sends something. */
static bool all_paths(struct fix *f, uint64_t base)
{
	struct umm_mm *c;
	uint64_t out;

	ASSERT_TRUE(map_pat(f->mm, base, 8, RW, PRIV, 1));
	ASSERT_OK(umm_mm_fork(f->mm, &c));		/* PROTECTION_PAGE */
	ASSERT_TRUE(write_pat(f->mm, base, 1, 2));	/* CLEAR */
	umm_mm_exit(c);
	ASSERT_OK(umm_madvise(f->mm, base + PG(1), PG(1), UMM_MADV_DONTNEED));
	ASSERT_OK(umm_mprotect(f->mm, base + PG(2), PG(2), RO));
	ASSERT_OK(umm_mremap(f->mm, base + PG(4), PG(2), PG(2),
			     UMM_MREMAP_MAYMOVE | UMM_MREMAP_FIXED, base + PG(20), &out));
	ASSERT_OK(umm_munmap(f->mm, base + PG(6), PG(2)));
	ASSERT_OK(umm_munmap(f->mm, base, PG(30)));
	return true;
}

static bool same_starts(struct rec *a, size_t fa, struct rec *b, size_t fb)
{
	struct ev x[64], y[64];
	int nx = rec_get(a, fa, K_START, x, 64), ny = rec_get(b, fb, K_START, y, 64);
	bool ok = nx == ny && nx <= 64 && nx > 0;

	for (int i = 0; ok && i < nx; i++)
		ok = x[i].event == y[i].event && x[i].start == y[i].start && x[i].end == y[i].end;
	if (!ok) {
		TAP_DIAG("%s and %s saw different starts:", a->name, b->name);
		rec_dump(a, fa);
		rec_dump(b, fb);
	}
	return ok && rec_ok(a) && rec_ok(b);
}

/* Three subscribers of one mm each see every event, in the same order. */
static bool test_multiple_subscribers(void)
{
	struct rec *r[3];
	struct fix f;

	ASSERT_TRUE(fix_init(&f));
	for (int i = 0; i < 3; i++) {
		r[i] = rec_reg(i == 0 ? "r0" : i == 1 ? "r1" : "r2", f.mm);
		ASSERT_TRUE(r[i]);
	}
	ASSERT_TRUE(all_paths(&f, AT(0)));
	ASSERT_GE(rec_get(r[0], 0, K_START, NULL, 0), 7);
	ASSERT_TRUE(same_starts(r[0], 0, r[1], 0));
	ASSERT_TRUE(same_starts(r[0], 0, r[2], 0));
	/* one thread: each start was ended before the next began */
	for (int i = 0; i < 3; i++) {
		struct ev s[64], e[64];
		int ns = rec_get(r[i], 0, K_START, s, 64), ne = rec_get(r[i], 0, K_END, e, 64);

		ASSERT_EQ(ns, ne);
		ASSERT_TRUE(ns <= 64);
		for (int k = 0; k < ns; k++) {
			ASSERT_EQ(s[k].start, e[k].start);
			ASSERT_EQ(s[k].end, e[k].end);
			ASSERT_EQ(s[k].event, e[k].event);
		}
		pthread_mutex_lock(&r[i]->lock);
		for (size_t k = 0, open = 0; k < r[i]->nr; k++) {
			if (r[i]->log[k].kind == K_START && open++) {
				pthread_mutex_unlock(&r[i]->lock);
				TAP_DIAG("%s: nested start at log entry %zu", r[i]->name, k);
				rec_dump(r[i], 0);
				return false;
			}
			if (r[i]->log[k].kind == K_END)
				open--;
		}
		pthread_mutex_unlock(&r[i]->lock);
	}
	for (int i = 0; i < 3; i++)
		rec_unreg(r[i]);
	ASSERT_TRUE(fix_done(&f));
	return true;
}

/* A subscriber registered later sees exactly what the first sees from then on. */
static bool test_late_subscriber(void)
{
	struct rec *a, *b;
	struct fix f;
	size_t ma;

	ASSERT_TRUE(fix_init(&f));
	a = rec_reg("a", f.mm);
	ASSERT_TRUE(a);
	ASSERT_TRUE(all_paths(&f, AT(0)));
	ma = rec_mark(a);
	b = rec_reg("b", f.mm);
	ASSERT_TRUE(b);
	ASSERT_EQ(rec_mark(b), 0);
	ASSERT_TRUE(all_paths(&f, AT(100)));
	ASSERT_TRUE(same_starts(a, ma, b, 0));
	rec_unreg(b);
	rec_unreg(a);
	ASSERT_TRUE(fix_done(&f));
	return true;
}

/* After unregister returns, nothing reaches that subscriber; the others go on. */
static bool test_unregister_stops(void)
{
	struct rec *a, *b;
	struct fix f;
	size_t ma, mb;

	ASSERT_TRUE(fix_init(&f));
	a = rec_reg("a", f.mm);
	b = rec_reg("b", f.mm);
	ASSERT_TRUE(a && b);
	ASSERT_TRUE(all_paths(&f, AT(0)));
	rec_unreg(a);
	ASSERT_EQ(rec_nr_release(a), 1);
	ma = rec_mark(a);
	mb = rec_mark(b);
	ASSERT_TRUE(all_paths(&f, AT(0)));
	ASSERT_TRUE(map_pat(f.mm, AT(0), 2, RW, PRIV, 1));
	ASSERT_EQ(umm_page_referenced(f.mm, AT(0)), 1);
	ASSERT_TRUE(nothing_since(a, ma));
	ASSERT_GE(rec_get(b, mb, K_START, NULL, 0), 7);
	ASSERT_EQ(rec_get(b, mb, K_CFY, NULL, 0), 1);
	/* and a second registration of the same struct works like new */
	ASSERT_OK(umm_mmu_notifier_register(&a->mn, f.mm));
	atomic_store(&a->unregistered, false);
	pthread_mutex_lock(&a->lock);
	a->released = false;
	pthread_mutex_unlock(&a->lock);
	ma = rec_mark(a);
	ASSERT_OK(umm_munmap(f.mm, AT(0), PG(2)));
	ASSERT_TRUE(starts_cover(a, ma, EV_UNMAP, AT(0), AT(2), "xx"));
	rec_unreg(a);
	rec_unreg(b);
	ASSERT_TRUE(fix_done(&f));
	return true;
}

/* Every ops member NULL: every path must cope. */
static bool test_null_ops(void)
{
	static const struct umm_mmu_notifier_ops none;
	struct umm_mmu_notifier sub = { .ops = &none };
	struct umm_mmu_notifier sub2 = { .ops = &none };
	struct fix f;

	ASSERT_TRUE(fix_init(&f));
	ASSERT_OK(umm_mmu_notifier_register(&sub, f.mm));
	ASSERT_TRUE(all_paths(&f, AT(0)));
	ASSERT_TRUE(map_pat(f.mm, AT(0), 2, RW, PRIV, 1));
	ASSERT_EQ(umm_page_referenced(f.mm, AT(0)), 1);
	ASSERT_EQ(umm_page_referenced(f.mm, AT(0)), 0);
	umm_mmu_notifier_unregister(&sub, f.mm);
	ASSERT_OK(umm_mmu_notifier_register(&sub2, f.mm));
	ASSERT_TRUE(machine_valid(f.u));
	umm_mm_exit(f.mm);				/* ->release is NULL */
	umm_mmu_notifier_unregister(&sub2, f.mm);
	f.mm = NULL;
	ASSERT_TRUE(fix_fini(&f));
	return true;
}

/*
 * With no subscriber (never one, and one that came and went) every path
 * works: contents, counts and the rmap stay right.
 */
static bool test_no_subscriber(void)
{
	struct umm_file *file;
	struct umm_mm *c;
	struct fix f;

	ASSERT_TRUE(make_file("nosub", 2));
	for (int round = 0; round < 2; round++) {
		ASSERT_TRUE(fix_init(&f));
		if (round) {
			struct rec *r = rec_reg("r", f.mm);

			ASSERT_TRUE(r);
			rec_unreg(r);
		}
		ASSERT_TRUE(all_paths(&f, AT(0)));
		ASSERT_TRUE(map_pat(f.mm, AT(0), 4, RW, PRIV, 1));
		ASSERT_OK(umm_mm_fork(f.mm, &c));
		ASSERT_TRUE(write_pat(c, AT(0), 1, 2));
		ASSERT_TRUE(check_pat(f.mm, AT(0), 4, 1));
		ASSERT_TRUE(check_pat(c, AT(0), 1, 2));
		ASSERT_GE(umm_page_referenced(f.mm, AT(1)), 1);
		ASSERT_OK(umm_file_open(f.u, tmp_path("nosub"), O_RDWR, &file));
		ASSERT_OK(map_file(f.mm, AT(10), 2, RW, UMM_MAP_SHARED, file, 0));
		ASSERT_TRUE(put_byte(f.mm, AT(10), 3));
		ASSERT_EQ(umm_page_mkclean(f.mm, AT(10)), 1);
		ASSERT_OK(umm_msync(f.mm, AT(10), PG(2), UMM_MS_SYNC));
		ASSERT_OK(umm_try_to_unmap(f.mm, AT(10)));
		ASSERT_EQ(byte_at(f.mm, AT(10)), 3);
		ASSERT_TRUE(machine_valid(f.u));
		umm_mm_exit(c);
		umm_file_put(file);
		ASSERT_TRUE(fix_fini(&f));
	}
	recs_free_all();
	return true;
}

/* ---- registration against running invalidations ---- */

static atomic_int blk_in, blk_go, blk_done;
static struct rec *blk_rec;

/* A start hook: the first UNMAP start waits until told to go on. */
static void block_hook(struct rec *r, const struct umm_mmu_notifier_range *range)
{
	if (range->event != EV_UNMAP || atomic_exchange(&blk_in, 1))
		return;
	if (!wait_flag(&blk_go)) {
		pthread_mutex_lock(&r->lock);
		r->nr_bad++;
		snprintf(r->bad, sizeof(r->bad), "%s: never told to go on", r->name);
		pthread_mutex_unlock(&r->lock);
	}
	if (atomic_load(&r->unregistered)) {
		pthread_mutex_lock(&r->lock);
		if (!r->nr_bad++)
			snprintf(r->bad, sizeof(r->bad),
				 "%s: unregister returned while its start callback ran", r->name);
		pthread_mutex_unlock(&r->lock);
	}
}

static void *munmap_thread(void *arg)
{
	struct umm_mm *mm = arg;

	if (umm_munmap(mm, AT(0), PG(4)))
		atomic_store(&blk_done, -1);
	else
		atomic_store(&blk_done, 1);
	return NULL;
}

static atomic_int reg_done;
static struct rec *late_rec;

static void *register_thread(void *arg)
{
	struct umm_mm *mm = arg;

	atomic_store(&reg_done, umm_mmu_notifier_register(&late_rec->mn, mm) ? -1 : 1);
	return NULL;
}

static void *unregister_thread(void *arg)
{
	rec_unreg(blk_rec);
	atomic_store(&reg_done, 1);
	return NULL;
}

/* fix_init(), 4 pattern pages at AT(0), the flags reset, blk_rec registered with block_hook. */
static bool blk_fix(struct fix *f)
{
	ASSERT_TRUE(fix_init(f));
	ASSERT_TRUE(map_pat(f->mm, AT(0), 4, RW, PRIV, 1));
	atomic_store(&blk_in, 0);
	atomic_store(&blk_go, 0);
	atomic_store(&blk_done, 0);
	atomic_store(&reg_done, 0);
	blk_rec = rec_reg("blocker", f->mm);
	ASSERT_TRUE(blk_rec);
	blk_rec->start_hook = block_hook;
	return true;
}

/*
 * Start munmap_thread (t1) on @f's mm; once blk_rec's start callback is
 * blocked in it, start @fn(@arg) (t2) and give it 100 ms to run into the
 * invalidation in flight.
 */
static bool blk_race(struct fix *f, pthread_t *t1, pthread_t *t2, void *(*fn)(void *), void *arg)
{
	ASSERT_EQ(pthread_create(t1, NULL, munmap_thread, f->mm), 0);
	ASSERT_TRUE(wait_flag(&blk_in));
	ASSERT_EQ(pthread_create(t2, NULL, fn, arg), 0);
	sleep_ms(100);
	return true;
}

/*
 * A subscriber registered while an invalidation is in flight never sees
 * its end without its start.
 */
static bool test_register_during_invalidation(void)
{
	pthread_t t1, t2;
	struct fix f;

	ASSERT_TRUE(blk_fix(&f));
	late_rec = rec_new("late", f.mm);
	ASSERT_TRUE(late_rec);
	ASSERT_TRUE(blk_race(&f, &t1, &t2, register_thread, f.mm));
	if (atomic_load(&reg_done))
		TAP_DIAG("register returned while an invalidation was in flight");
	atomic_store(&blk_go, 1);
	pthread_join(t1, NULL);
	pthread_join(t2, NULL);
	ASSERT_EQ(atomic_load(&blk_done), 1);
	ASSERT_EQ(atomic_load(&reg_done), 1);
	ASSERT_TRUE(rec_ok(blk_rec));
	ASSERT_TRUE(rec_ok(late_rec));			/* no end without its start */
	ASSERT_EQ(rec_get(late_rec, 0, K_END, NULL, 0), rec_get(late_rec, 0, K_START, NULL, 0));
	/* from now on the late one sees everything */
	ASSERT_TRUE(map_pat(f.mm, AT(0), 2, RW, PRIV, 2));
	{
		size_t m = rec_mark(late_rec);

		ASSERT_OK(umm_munmap(f.mm, AT(0), PG(2)));
		ASSERT_TRUE(starts_cover(late_rec, m, EV_UNMAP, AT(0), AT(2), "xx"));
	}
	rec_unreg(blk_rec);
	rec_unreg(late_rec);
	ASSERT_TRUE(fix_done(&f));
	return true;
}

/*
 * unregister while the subscriber's start callback runs on another thread:
 * it returns only after that callback returned.
 */
static bool test_unregister_during_callback(void)
{
	pthread_t t1, t2;
	struct fix f;

	ASSERT_TRUE(blk_fix(&f));
	ASSERT_TRUE(blk_race(&f, &t1, &t2, unregister_thread, NULL));
	atomic_store(&blk_go, 1);
	pthread_join(t1, NULL);
	pthread_join(t2, NULL);
	ASSERT_EQ(atomic_load(&blk_done), 1);
	ASSERT_TRUE(rec_ok_(blk_rec, false));	/* its end may never come */
	ASSERT_EQ(rec_nr_release(blk_rec), 1);
	{
		size_t m = rec_mark(blk_rec);

		ASSERT_TRUE(all_paths(&f, AT(0)));
		ASSERT_EQ(rec_mark(blk_rec), m);
		ASSERT_TRUE(rec_ok_(blk_rec, false));
	}
	ASSERT_TRUE(fix_done(&f));
	return true;
}

/* ---- get / put / synchronize ---- */

static atomic_int g_allocs, g_frees, g_fail_alloc;

static struct umm_mmu_notifier *get_alloc(struct umm_mm *mm)
{
	struct rec *r;

	if (atomic_load(&g_fail_alloc))
		return NULL;
	r = rec_new("got", mm);
	if (!r)
		return NULL;
	atomic_fetch_add(&g_allocs, 1);
	r->mn.ops = NULL;		/* the engine sets ->ops and ->mm */
	return &r->mn;
}

static void get_free(struct umm_mmu_notifier *sub)
{
	struct rec *r = rec_of(sub);

	atomic_fetch_add(&r->nr_free, 1);
	atomic_store(&r->freed, true);
	atomic_fetch_add(&g_frees, 1);
}

#define GET_OPS { .release = rec_release, .clear_flush_young = rec_cfy, \
		  .invalidate_range_start = rec_start, .invalidate_range_end = rec_end, \
		  .alloc_notifier = get_alloc, .free_notifier = get_free }
static const struct umm_mmu_notifier_ops get_ops_a = GET_OPS;
static const struct umm_mmu_notifier_ops get_ops_b = GET_OPS;

/*
 * One refcounted subscription per (ops, mm): a second get returns it, the
 * last put unregisters it and frees it (free_notifier once) by the time
 * umm_mmu_notifier_synchronize() returns; nothing reaches it after.
 */
static bool test_get_put(void)
{
	struct umm_mmu_notifier *a, *a2, *b, *a3;
	struct umm_mm *mm2;
	struct rec *ra, *rb;
	struct fix f;
	size_t m;

	atomic_store(&g_allocs, 0);
	atomic_store(&g_frees, 0);
	atomic_store(&g_fail_alloc, 0);
	ASSERT_TRUE(fix_init(&f));
	ASSERT_OK(umm_mmu_notifier_get(&get_ops_a, f.mm, &a));
	ASSERT_TRUE(a);
	ASSERT_EQ(atomic_load(&g_allocs), 1);
	ASSERT_TRUE(a->ops == &get_ops_a);
	ASSERT_TRUE(a->mm == f.mm);
	ASSERT_OK(umm_mmu_notifier_get(&get_ops_a, f.mm, &a2));
	ASSERT_TRUE(a2 == a);
	ASSERT_EQ(atomic_load(&g_allocs), 1);
	ASSERT_OK(umm_mmu_notifier_get(&get_ops_b, f.mm, &b));
	ASSERT_TRUE(b != a);
	ASSERT_TRUE(b->ops == &get_ops_b);
	ASSERT_EQ(atomic_load(&g_allocs), 2);
	ra = rec_of(a);
	rb = rec_of(b);

	/* both receive events */
	ASSERT_TRUE(map_pat(f.mm, AT(0), 4, RW, PRIV, 1));
	ASSERT_OK(umm_munmap(f.mm, AT(0), PG(1)));
	ASSERT_TRUE(starts_cover(ra, 0, EV_UNMAP, AT(0), AT(1), "x"));
	ASSERT_TRUE(starts_cover(rb, 0, EV_UNMAP, AT(0), AT(1), "x"));

	/* one put of two: still subscribed */
	umm_mmu_notifier_put(a);
	umm_mmu_notifier_synchronize(f.u);
	ASSERT_EQ(atomic_load(&g_frees), 0);
	m = rec_mark(ra);
	ASSERT_OK(umm_munmap(f.mm, AT(1), PG(1)));
	ASSERT_TRUE(starts_cover(ra, m, EV_UNMAP, AT(1), AT(2), "x"));

	/* the last put: freed by synchronize, exactly once, and silent after */
	umm_mmu_notifier_put(a);
	umm_mmu_notifier_synchronize(f.u);
	ASSERT_EQ(atomic_load(&ra->nr_free), 1);
	ASSERT_EQ(atomic_load(&g_frees), 1);
	m = rec_mark(ra);
	ASSERT_OK(umm_munmap(f.mm, AT(2), PG(1)));
	ASSERT_EQ(umm_page_referenced(f.mm, AT(3)), 1);
	ASSERT_TRUE(nothing_since(ra, m));
	ASSERT_EQ(rec_get(rb, 0, K_CFY, NULL, 0), 1);
	umm_mmu_notifier_synchronize(f.u);
	ASSERT_EQ(atomic_load(&ra->nr_free), 1);

	/* a get after the last put makes a new subscription */
	ASSERT_OK(umm_mmu_notifier_get(&get_ops_a, f.mm, &a3));
	ASSERT_EQ(atomic_load(&g_allocs), 3);
	ASSERT_TRUE(rec_of(a3) != ra);

	/* another mm: another subscription */
	ASSERT_OK(umm_mm_create(f.u, &mm2));
	ASSERT_OK(umm_mmu_notifier_get(&get_ops_a, mm2, &a2));
	ASSERT_TRUE(a2 != a3);
	ASSERT_TRUE(a2->mm == mm2);
	ASSERT_EQ(atomic_load(&g_allocs), 4);

	/* exit with subscriptions held: ->release once; the put after frees */
	umm_mm_exit(mm2);
	ASSERT_EQ(rec_nr_release(rec_of(a2)), 1);
	ASSERT_EQ(atomic_load(&rec_of(a2)->nr_free), 0);
	umm_mmu_notifier_put(a2);
	umm_mmu_notifier_synchronize(f.u);
	ASSERT_EQ(atomic_load(&rec_of(a2)->nr_free), 1);
	ASSERT_EQ(rec_nr_release(rec_of(a2)), 1);
	ASSERT_TRUE(rec_ok(rec_of(a2)));

	umm_mmu_notifier_put(a3);
	umm_mmu_notifier_put(b);
	umm_mmu_notifier_synchronize(f.u);
	ASSERT_EQ(atomic_load(&g_frees), 4);
	ASSERT_EQ(atomic_load(&rb->nr_free), 1);
	ASSERT_EQ(atomic_load(&rec_of(a3)->nr_free), 1);
	ASSERT_TRUE(rec_ok(ra) && rec_ok(rb));
	ASSERT_TRUE(fix_fini(&f));
	ASSERT_EQ(atomic_load(&g_frees), 4);
	recs_free_all();
	return true;
}

/* alloc_notifier failing: -ENOMEM and nothing to free. */
static bool test_get_enomem(void)
{
	struct umm_mmu_notifier *a = NULL;
	struct fix f;

	atomic_store(&g_allocs, 0);
	atomic_store(&g_frees, 0);
	atomic_store(&g_fail_alloc, 1);
	ASSERT_TRUE(fix_init(&f));
	ASSERT_ERR(umm_mmu_notifier_get(&get_ops_a, f.mm, &a), ENOMEM);
	umm_mmu_notifier_synchronize(f.u);
	ASSERT_EQ(atomic_load(&g_frees), 0);
	atomic_store(&g_fail_alloc, 0);
	ASSERT_OK(umm_mmu_notifier_get(&get_ops_a, f.mm, &a));
	ASSERT_TRUE(map_pat(f.mm, AT(0), 1, RW, PRIV, 1));
	ASSERT_OK(umm_munmap(f.mm, AT(0), PG(1)));
	ASSERT_TRUE(starts_cover(rec_of(a), 0, EV_UNMAP, AT(0), AT(1), "x"));
	umm_mmu_notifier_put(a);
	umm_mmu_notifier_synchronize(f.u);
	ASSERT_EQ(atomic_load(&g_frees), 1);
	ASSERT_TRUE(fix_done(&f));
	return true;
}

/* ---- exit against rmap walkers from other mms ---- */

static atomic_int rr_releases, rr_stop, rr_in_release;

/* The second ->release to run holds exit up for a while. */
static void slow_second_release(struct rec *r)
{
	if (atomic_fetch_add(&rr_releases, 1) == 1) {
		atomic_store(&rr_in_release, 1);
		sleep_ms(100);
	}
}

static void *mkclean_walker(void *arg)
{
	struct umm_mm *y = arg;

	while (!atomic_load(&rr_stop))
		if (umm_page_mkclean(y, AT(0)) < 0)
			break;
	return NULL;
}

/*
 * exit: once a subscriber's ->release returned, no start reaches it, even
 * from an rmap walk started in another mm (here page_mkclean of a shared
 * file page through mm Y, whose walk visits X's VMA while X exits).  Two
 * subscribers on X; the second ->release to run sleeps, so the first has
 * returned long before exit takes the subscriptions down.
 */
static bool test_release_vs_rmap_walker(void)
{
	struct umm_file *file;
	struct umm_mm *x, *y;
	struct rec *r1, *r2;
	pthread_t th;
	struct umm *u;
	bool ok;

	ASSERT_TRUE(file_machine("relwalk", 1, &u, &file));
	ASSERT_OK(umm_mm_create(u, &x));
	ASSERT_OK(umm_mm_create(u, &y));
	ASSERT_OK(map_file(x, AT(0), 1, RW, UMM_MAP_SHARED, file, 0));
	ASSERT_OK(map_file(y, AT(0), 1, RW, UMM_MAP_SHARED, file, 0));
	ASSERT_TRUE(put_byte(x, AT(0), 1));
	ASSERT_TRUE(put_byte(y, AT(0) + 1, 2));
	r1 = rec_reg("x1", x);
	r2 = rec_reg("x2", x);
	ASSERT_TRUE(r1 && r2);
	r1->release_hook = slow_second_release;
	r1->unlogged = r2->unlogged = true;
	r2->release_hook = slow_second_release;
	atomic_store(&rr_releases, 0);
	atomic_store(&rr_stop, 0);
	atomic_store(&rr_in_release, 0);
	ASSERT_EQ(pthread_create(&th, NULL, mkclean_walker, y), 0);
	sleep_ms(5);
	umm_mm_exit(x);
	atomic_store(&rr_stop, 1);
	pthread_join(th, NULL);
	ASSERT_EQ(atomic_load(&rr_in_release), 1);
	ASSERT_EQ(rec_nr_release(r1), 1);
	ASSERT_EQ(rec_nr_release(r2), 1);
	/* (checked into ok, so that a failure still tears down: ASan stays quiet) */
	ok = rec_ok_(r1, false) && rec_ok_(r2, false);
	ASSERT_GE(umm_page_mkclean(y, AT(0)), 0);
	rec_unreg(r1);
	rec_unreg(r2);
	umm_mm_exit(y);
	umm_file_put(file);
	ASSERT_TRUE(machine_done_all(u));
	return ok;
}

/* ---- exit against unregister ---- */

static atomic_int eu_calls, eu_in_release;

/* The first ->release lets unregister start, then takes its time. */
static void slow_first_release(struct rec *r)
{
	if (atomic_fetch_add(&eu_calls, 1) == 0) {
		atomic_store(&eu_in_release, 1);
		sleep_ms(100);
	}
}

static void *unregister_when_releasing(void *arg)
{
	struct rec *r = arg;

	if (wait_flag(&eu_in_release))
		rec_unreg(r);
	return NULL;
}

/*
 * exit and unregister of the same subscriber at once: ->release runs
 * exactly once (here exit's is still running when unregister comes), and
 * nothing reaches the subscriber after both returned.
 */
static bool test_exit_vs_unregister(void)
{
	struct fix f;
	struct rec *r;
	pthread_t th;
	bool ok;

	ASSERT_TRUE(fix_init(&f));
	ASSERT_TRUE(map_pat(f.mm, AT(0), 4, RW, PRIV, 1));
	r = rec_reg("r", f.mm);
	ASSERT_TRUE(r);
	r->release_hook = slow_first_release;
	atomic_store(&eu_calls, 0);
	atomic_store(&eu_in_release, 0);
	ASSERT_EQ(pthread_create(&th, NULL, unregister_when_releasing, r), 0);
	umm_mm_exit(f.mm);
	pthread_join(th, NULL);
	f.mm = NULL;
	ASSERT_EQ(atomic_load(&eu_in_release), 1);
	/* (checked into ok, so that a failure still tears down: ASan stays quiet) */
	ok = rec_ok(r);
	if (rec_nr_release(r) != 1) {
		TAP_DIAG("->release ran %lu times", rec_nr_release(r));
		ok = false;
	}
	ASSERT_TRUE(fix_done(&f));
	return ok;
}

/*
 * An exited mm a subscriber still holds: a new registration or get is
 * refused (it could never be told anything), and the holder's unregister
 * still works.
 */
static bool test_register_after_exit(void)
{
	struct umm_mmu_notifier *g = NULL;
	struct rec *r, *late;
	struct fix f;

	ASSERT_TRUE(fix_init(&f));
	r = rec_reg("r", f.mm);
	late = rec_new("late", f.mm);
	ASSERT_TRUE(r && late);
	umm_mm_exit(f.mm);
	ASSERT_TRUE(umm_mmu_notifier_register(&late->mn, f.mm) < 0);
	ASSERT_TRUE(umm_mmu_notifier_get(&get_ops_a, f.mm, &g) < 0);
	ASSERT_EQ(rec_nr_release(r), 1);
	ASSERT_EQ(rec_mark(late), 0);
	umm_mmu_notifier_unregister(&r->mn, f.mm);
	f.mm = NULL;
	ASSERT_TRUE(fix_fini(&f));
	ASSERT_EQ(rec_nr_release(r), 1);
	recs_free_all();
	return true;
}

/* ---- concurrency ---- */

#define R_PAGES	64		/* AT(0..63): faults and COW */
#define S_BASE	AT(100)		/* AT(100..115): mapped and unmapped over and over */
#define S_PAGES	16

struct stress {
	struct fix f;
	atomic_bool stop;
	atomic_int err;
	atomic_long nr_ops, nr_regs;
	double deadline;
	uint64_t seed;
	char why[128];
};

static void stress_fail(struct stress *s, const char *what, long r)
{
	if (!atomic_exchange(&s->err, 1))
		snprintf(s->why, sizeof(s->why), "%s: %ld", what, r);
}

static void *stress_faulter(void *arg)
{
	struct stress *s = arg;
	uint64_t rnd = s->seed ^ (uint64_t)tid() * 0x9e3779b97f4a7c15ULL;
	uint64_t w;

	while (!atomic_load(&s->stop)) {
		uint64_t x = tap_rand(&rnd), a;
		ssize_t r;

		if (x & 1)
			a = AT(x % R_PAGES) + (x >> 40) % (PS - 8);
		else
			a = S_BASE + PG((x >> 8) % S_PAGES);
		if (x & 2)
			r = umm_write(s->f.mm, a, &x, 8);
		else
			r = umm_read(s->f.mm, a, &w, 8);
		if (r != 8 && !(a >= S_BASE && r == -EFAULT))
			stress_fail(s, "faulter access", r);
		if (!(x & 0x3f0)) {
			struct umm_page *pg;

			if (umm_get_user_page(s->f.mm, AT(x % R_PAGES), UMM_GUP_WRITE, &pg) == 0)
				umm_put_page(pg);
			else
				stress_fail(s, "gup", -1);
		}
		atomic_fetch_add(&s->nr_ops, 1);
	}
	return NULL;
}

static void *stress_forker(void *arg)
{
	struct stress *s = arg;
	uint64_t rnd = s->seed ^ 0x1234567ULL;

	while (!atomic_load(&s->stop)) {
		struct umm_mm *c;
		int r = umm_mm_fork(s->f.mm, &c);

		if (r) {
			stress_fail(s, "fork", r);
			break;
		}
		struct rec *rc = NULL;

		if (tap_rand(&rnd) & 1) {
			rc = rec_new("child", c);
			if (!rc || umm_mmu_notifier_register(&rc->mn, c)) {
				stress_fail(s, "register on the child", -1);
				break;
			}
		}
		for (int i = 0; i < 4; i++) {
			uint64_t x = tap_rand(&rnd);

			if (write_byte(x & 1 ? c : s->f.mm, AT((x >> 8) % R_PAGES), (uint8_t)x) != 1)
				stress_fail(s, "cow write", -1);
		}
		umm_mm_exit(c);
		if (rc) {
			rec_unreg(rc);
			pthread_mutex_lock(&rc->lock);
			if (rc->nr_release != 1 || rc->nr_bad || rc->nr_open)
				stress_fail(s, "child subscriber across exit", (long)rc->nr_release);
			pthread_mutex_unlock(&rc->lock);
		}
		atomic_fetch_add(&s->nr_ops, 1);
	}
	return NULL;
}

static void *stress_unmapper(void *arg)
{
	struct stress *s = arg;
	uint64_t rnd = s->seed ^ 0x7654321ULL;

	while (!atomic_load(&s->stop)) {
		uint64_t x = tap_rand(&rnd), out;
		int r = map_at(s->f.mm, S_BASE, S_PAGES, RW, PRIV);

		if (r) {
			stress_fail(s, "map", r);
			break;
		}
		for (int i = 0; i < 6; i++)
			write_byte(s->f.mm, S_BASE + PG((x >> (4 * i)) % S_PAGES), 1);
		switch ((x >> 32) % 4) {
		case 0:
			r = umm_madvise(s->f.mm, S_BASE + PG(2), PG(4), UMM_MADV_DONTNEED);
			break;
		case 1:
			r = umm_mprotect(s->f.mm, S_BASE + PG(4), PG(4), RO);
			break;
		case 2:
			r = umm_mremap(s->f.mm, S_BASE, PG(S_PAGES), PG(S_PAGES / 2), 0, 0, &out);
			break;
		default:
			r = umm_munmap(s->f.mm, S_BASE + PG(x % S_PAGES), PG(1));
			break;
		}
		if (r)
			stress_fail(s, "unmapper step", r);
		r = umm_munmap(s->f.mm, S_BASE, PG(S_PAGES));
		if (r)
			stress_fail(s, "munmap", r);
		atomic_fetch_add(&s->nr_ops, 1);
	}
	return NULL;
}

static void *stress_registrar(void *arg)
{
	struct stress *s = arg;
	uint64_t rnd = s->seed ^ (uint64_t)tid() * 0x2545F4914F6CDD1DULL;
	long n = tap_long() ? 20000 : tap_short() ? 300 : 2000;

	for (long i = 0; i < n && !atomic_load(&s->err) && now_s() < s->deadline; i++) {
		uint64_t x = tap_rand(&rnd);
		struct rec *r = rec_new("stress", s->f.mm);
		int err;

		if (!r) {
			stress_fail(s, "rec_new", -1);
			break;
		}
		err = umm_mmu_notifier_register(&r->mn, s->f.mm);
		if (err) {
			stress_fail(s, "register", err);
			break;
		}
		for (uint64_t k = x % 8; k; k--)
			sched_yield();
		if (x & 0x100)
			sleep_ms(0);
		rec_unreg(r);
		if (!rec_ok_(r, false)) {
			stress_fail(s, "subscriber broke the protocol", i);
			break;
		}
		pthread_mutex_lock(&r->lock);
		if (r->nr_release != 1)
			stress_fail(s, "release count after unregister", (long)r->nr_release);
		pthread_mutex_unlock(&r->lock);
		if (x & 0x200) {
			struct umm_mmu_notifier *g;

			if (umm_mmu_notifier_get(&get_ops_a, s->f.mm, &g)) {
				stress_fail(s, "get", -1);
				break;
			}
			for (uint64_t k = (x >> 12) % 4; k; k--)
				sched_yield();
			umm_mmu_notifier_put(g);
		}
		atomic_fetch_add(&s->nr_regs, 1);
	}
	return NULL;
}

/*
 * Faults, COW breaks (CPU and GUP), forks, map/DONTNEED/mprotect/mremap/
 * munmap cycles in one mm, while two threads register and unregister
 * subscribers (and get/put one) in a loop.  Every subscriber's log stays
 * well paired: never an end without its start or out of order on a
 * thread, never a callback after unregister returned, ->release exactly
 * once by the time unregister returned.  A subscriber registered for the
 * whole run ends with every start ended.
 */
static bool test_concurrent_register(void)
{
	struct stress s;
	pthread_t th[6];
	struct rec *whole;
	int n = 0;

	memset(&s, 0, sizeof(s));
	s.seed = tap_seed();
	s.deadline = now_s() + budget_s(3);
	atomic_store(&g_fail_alloc, 0);
	ASSERT_TRUE(fix_init_phys(&s.f, 32 << 20));
	ASSERT_OK(map_at(s.f.mm, AT(0), R_PAGES, RW, PRIV));
	whole = rec_new("whole", s.f.mm);
	ASSERT_TRUE(whole);
	whole->unlogged = true;
	ASSERT_OK(umm_mmu_notifier_register(&whole->mn, s.f.mm));
	ASSERT_EQ(pthread_create(&th[n++], NULL, stress_faulter, &s), 0);
	ASSERT_EQ(pthread_create(&th[n++], NULL, stress_faulter, &s), 0);
	ASSERT_EQ(pthread_create(&th[n++], NULL, stress_forker, &s), 0);
	ASSERT_EQ(pthread_create(&th[n++], NULL, stress_unmapper, &s), 0);
	ASSERT_EQ(pthread_create(&th[n++], NULL, stress_registrar, &s), 0);
	ASSERT_EQ(pthread_create(&th[n++], NULL, stress_registrar, &s), 0);
	pthread_join(th[4], NULL);
	pthread_join(th[5], NULL);
	atomic_store(&s.stop, true);
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	umm_mmu_notifier_synchronize(s.f.u);
	TAP_DIAG("%ld operations, %ld registrations", atomic_load(&s.nr_ops),
		 atomic_load(&s.nr_regs));
	if (atomic_load(&s.err))
		TAP_DIAG("failed: %s", s.why);
	ASSERT_FALSE(atomic_load(&s.err));
	ASSERT_TRUE(rec_ok(whole));
	ASSERT_GE(whole->nr_starts, 1);
	ASSERT_EQ(whole->nr_starts, whole->nr_ends);
	/* every other subscriber: clean, and none still open unless unregistered mid-way */
	pthread_mutex_lock(&recs_lock);
	for (size_t i = 0; i < nr_recs; i++) {
		struct rec *r = recs[i];

		pthread_mutex_lock(&r->lock);
		if (r->nr_bad) {
			TAP_DIAG("%s", r->bad);
			pthread_mutex_unlock(&r->lock);
			pthread_mutex_unlock(&recs_lock);
			return false;
		}
		pthread_mutex_unlock(&r->lock);
	}
	pthread_mutex_unlock(&recs_lock);
	ASSERT_TRUE(machine_valid(s.f.u));
	rec_unreg(whole);
	ASSERT_TRUE(fix_fini(&s.f));
	recs_free_all();
	return true;
}

/* ---- a shadow MMU: every PTE change is covered ---- */

/*
 * A KVM-style secondary MMU over SH_PAGES pages from BASE: a table of
 * translations (pfn, writable) filled through GUP under the
 * invalidate-sequence protocol (install only if no invalidation started or
 * ran since the lookup began), zapped by invalidate_range_start.  If every
 * change of a present PTE is bracketed by an invalidation, then on a
 * quiescent mm each valid entry still matches the PTE: same pfn, and
 * writable only if the PTE is.
 */
#define SH_PAGES	24		/* P: AT(0..15) private anon; F: AT(16..23) shared file */
#define SH_FILE		16

struct shadow {
	pthread_mutex_t lock;
	struct umm_mm *mm;
	unsigned long seq;
	int in_progress;
	struct { bool valid, writable; uint64_t pfn; } e[SH_PAGES];
	unsigned long fills, zaps;
};

static void shadow_start(struct rec *r, const struct umm_mmu_notifier_range *range)
{
	struct shadow *sh = r->priv;

	pthread_mutex_lock(&sh->lock);
	sh->in_progress++;
	sh->seq++;
	for (int i = 0; i < SH_PAGES; i++)
		if (AT(i) >= range->start && AT(i) < range->end && sh->e[i].valid) {
			sh->e[i].valid = false;
			sh->zaps++;
		}
	pthread_mutex_unlock(&sh->lock);
}

static void shadow_end(struct rec *r, const struct umm_mmu_notifier_range *range)
{
	struct shadow *sh = r->priv;

	pthread_mutex_lock(&sh->lock);
	sh->in_progress--;
	sh->seq++;
	pthread_mutex_unlock(&sh->lock);
}

/* Fault page @i into the shadow table.  Return: 0, or GUP's error. */
static int shadow_fill(struct shadow *sh, int i, bool write)
{
	for (int tries = 0; tries < 100000; tries++) {
		struct umm_page *pg;
		unsigned long seq;
		bool busy, done = false;
		int err;

		pthread_mutex_lock(&sh->lock);
		seq = sh->seq;
		busy = sh->in_progress > 0;
		pthread_mutex_unlock(&sh->lock);
		if (busy) {
			sched_yield();
			continue;
		}
		err = umm_get_user_page(sh->mm, AT(i), write ? UMM_GUP_WRITE : 0, &pg);
		if (err)
			return err;
		pthread_mutex_lock(&sh->lock);
		if (sh->seq == seq && !sh->in_progress) {
			sh->e[i].valid = true;
			sh->e[i].writable = write;
			sh->e[i].pfn = umm_page_pfn(pg);
			sh->fills++;
			done = true;
		}
		pthread_mutex_unlock(&sh->lock);
		umm_put_page(pg);
		if (done)
			return 0;
	}
	return -EBUSY;
}

/* On a quiescent mm: every valid translation still matches its PTE. */
static bool shadow_coherent(struct shadow *sh, const char *after)
{
	bool ok = true;

	pthread_mutex_lock(&sh->lock);
	for (int i = 0; i < SH_PAGES; i++) {
		struct umm_pageinfo pi;

		if (!sh->e[i].valid)
			continue;
		if (umm_pagemap(sh->mm, AT(i), &pi))
			memset(&pi, 0, sizeof(pi));
		if (!(pi.flags & UMM_PI_PRESENT) || pi.pfn != sh->e[i].pfn ||
		    (sh->e[i].writable && !(pi.flags & UMM_PI_WRITE))) {
			TAP_DIAG("after %s: shadow page %d holds pfn %" PRIu64 "%s, the PTE: "
				 "flags %#x pfn %" PRIu64 " (no invalidation covered the change)",
				 after, i, sh->e[i].pfn, sh->e[i].writable ? " writable" : "",
				 pi.flags, pi.pfn);
			ok = false;
		}
	}
	pthread_mutex_unlock(&sh->lock);
	return ok;
}

static const char *const shadow_op_name[] = {
	"write", "read", "fill read", "fill write", "fork+COW", "DONTNEED", "mprotect RO",
	"mprotect RW", "munmap+map", "mremap away and back", "msync", "page_mkclean",
	"try_to_unmap", "page_referenced", "write through Y", "MAP_FIXED over",
};

/* One random step on the shadowed mm @x (and @y, which maps the file too). */
static int shadow_step(struct shadow *sh, struct umm_mm *y, uint64_t *rnd, int op)
{
	struct umm_mm *x = sh->mm;
	uint64_t v = tap_rand(rnd), out;
	int i = (int)(v % SH_PAGES), p = (int)((v >> 8) % SH_FILE), n = 1 + (int)((v >> 16) % 4);
	int f = SH_FILE + (int)((v >> 24) % (SH_PAGES - SH_FILE));
	uint8_t b = (uint8_t)(v >> 32);
	int r = 0;

	if (p + n > SH_FILE)
		n = SH_FILE - p;
	switch (op) {
	case 0:
		r = write_byte(x, AT(i) + (v >> 40) % PS, b) == 1 ? 0 : -1;
		if (r && prot_at(x, AT(i)) == RO)
			r = 0;
		break;
	case 1:
		r = byte_at(x, AT(i)) >= 0 ? 0 : -1;
		break;
	case 2:
	case 3:
		r = shadow_fill(sh, i, op == 3);
		if (r == -EFAULT && op == 3 && prot_at(x, AT(i)) == RO)
			r = 0;
		break;
	case 4: {
		struct umm_mm *c;

		r = umm_mm_fork(x, &c);
		if (r)
			break;
		for (int k = 0; k < 3; k++) {
			uint64_t w = tap_rand(rnd);

			write_byte(w & 1 ? c : x, AT((w >> 8) % SH_FILE), (uint8_t)w);
		}
		umm_mm_exit(c);
		break;
	}
	case 5:
		r = umm_madvise(x, AT(p), PG(n), UMM_MADV_DONTNEED);
		break;
	case 6:
		r = umm_mprotect(x, AT(p), PG(n), RO);
		break;
	case 7:
		r = umm_mprotect(x, AT(0), PG(SH_FILE), RW);
		break;
	case 8:
		r = umm_munmap(x, AT(p), PG(n));
		if (!r)
			r = map_at(x, AT(p), n, RW, PRIV);
		break;
	case 9:
		r = umm_mremap(x, AT(p), PG(n), PG(n), UMM_MREMAP_MAYMOVE | UMM_MREMAP_FIXED,
			       AT(64), &out);
		if (r == -EFAULT)	/* the range spans VMAs (split by mprotect) */
			r = 0;
		else if (!r)
			r = umm_mremap(x, AT(64), PG(n), PG(n),
				       UMM_MREMAP_MAYMOVE | UMM_MREMAP_FIXED, AT(p), &out);
		break;
	case 10:
		r = umm_msync(x, AT(SH_FILE), PG(SH_PAGES - SH_FILE), UMM_MS_SYNC);
		break;
	case 11:
		r = umm_page_mkclean(v & 1 ? x : y, AT(f));
		if (r == -EFAULT)
			r = 0;
		break;
	case 12:
		r = umm_try_to_unmap(v & 1 ? x : y, AT(f));
		if (r == -EFAULT)
			r = 0;
		break;
	case 13:
		r = umm_page_referenced(x, AT(i));
		if (r == -EFAULT || r > 0)
			r = 0;
		break;
	case 14:
		r = write_byte(y, AT(f), b) == 1 ? 0 : -1;
		break;
	default:
		r = map_at(x, AT(p), n, RW, PRIV);
		break;
	}
	return r < 0 ? r : 0;
}

static bool shadow_setup(struct fix *f, struct umm_file **file, struct umm_mm **y,
			 struct shadow *sh, struct rec **r)
{
	ASSERT_TRUE(make_file("shadow", SH_PAGES - SH_FILE));
	ASSERT_TRUE(fix_init_phys(f, 32 << 20));
	ASSERT_OK(umm_file_open(f->u, tmp_path("shadow"), O_RDWR, file));
	ASSERT_OK(umm_mm_create(f->u, y));
	ASSERT_OK(map_at(f->mm, AT(0), SH_FILE, RW, PRIV));
	ASSERT_OK(map_file(f->mm, AT(SH_FILE), SH_PAGES - SH_FILE, RW, UMM_MAP_SHARED, *file, 0));
	ASSERT_OK(map_file(*y, AT(SH_FILE), SH_PAGES - SH_FILE, RW, UMM_MAP_SHARED, *file, 0));
	memset(sh, 0, sizeof(*sh));
	pthread_mutex_init(&sh->lock, NULL);
	sh->mm = f->mm;
	*r = rec_new("shadow", f->mm);
	ASSERT_TRUE(*r);
	(*r)->priv = sh;
	(*r)->start_hook = shadow_start;
	(*r)->end_hook = shadow_end;
	ASSERT_OK(umm_mmu_notifier_register(&(*r)->mn, f->mm));
	return true;
}

static bool shadow_teardown(struct fix *f, struct umm_file *file, struct umm_mm *y,
			    struct shadow *sh, struct rec *r)
{
	ASSERT_TRUE(machine_valid(f->u));
	rec_unreg(r);
	umm_mm_exit(y);
	umm_file_put(file);
	ASSERT_TRUE(fix_fini(f));
	pthread_mutex_destroy(&sh->lock);
	recs_free_all();
	return true;
}

/*
 * A seeded random run (UMM_SEED) of every path against the shadow MMU,
 * checking after each step that the shadow is still coherent.
 */
static bool test_shadow_random(void)
{
	uint64_t seed = tap_seed(), rnd = seed;
	long steps = tap_long() ? 50000 : tap_short() ? 600 : 4000;
	struct umm_file *file;
	struct umm_mm *y;
	struct shadow sh;
	struct rec *r;
	struct fix f;

	ASSERT_TRUE(shadow_setup(&f, &file, &y, &sh, &r));
	for (long k = 0; k < steps; k++) {
		uint64_t v = tap_rand(&rnd);
		/* fills are the common case, so there is something to invalidate */
		int op = v % 3 ? (int)((v >> 8) % 2) + 2 : (int)((v >> 8) % 16);
		int err = shadow_step(&sh, y, &rnd, op);

		if (err) {
			TAP_DIAG("step %ld (%s) failed: %d", k, shadow_op_name[op], err);
			return false;
		}
		if (!shadow_coherent(&sh, shadow_op_name[op])) {
			TAP_DIAG("step %ld, seed %" PRIu64, k, seed);
			return false;
		}
		ASSERT_TRUE(rec_ok(&*r));
	}
	TAP_DIAG("%lu fills, %lu zaps", sh.fills, sh.zaps);
	ASSERT_GE(sh.zaps, 1);
	return shadow_teardown(&f, file, y, &sh, r);
}

struct shadow_run {
	struct shadow *sh;
	struct umm_mm *y;
	uint64_t seed;
	int kind;			/* 0: fills, 1: CPU accesses, 2: everything else */
	atomic_bool *stop;
	atomic_int *err;
};

static void *shadow_thread(void *arg)
{
	struct shadow_run *sr = arg;
	uint64_t rnd = sr->seed;

	while (!atomic_load(sr->stop)) {
		uint64_t v = tap_rand(&rnd);
		int op = sr->kind == 0 ? 2 + (int)(v % 2) : sr->kind == 1 ? (int)(v % 2)
			 : 4 + (int)(v % 12);
		int err = shadow_step(sr->sh, sr->y, &rnd, op);

		/* other threads move and protect pages under this one's feet */
		if (err == -EBUSY && op == 12)
			err = 0;	/* a fill or access mapped the page again meanwhile */
		if (err && err != -EFAULT && err != -1 && !atomic_exchange(sr->err, 1))
			TAP_DIAG("%s failed: %d", shadow_op_name[op], err);
	}
	return NULL;
}

/*
 * The same steps from several threads at once (two filling the shadow, one
 * accessing through the CPU, one changing mappings); once they stop, the
 * shadow is coherent and every start was ended.
 */
static bool test_shadow_concurrent(void)
{
	uint64_t seed = tap_seed();
	struct shadow_run sr[4];
	atomic_bool stop = false;
	atomic_int err = 0;
	struct umm_file *file;
	struct umm_mm *y;
	struct shadow sh;
	pthread_t th[4];
	struct rec *r;
	struct fix f;
	double end;

	ASSERT_TRUE(shadow_setup(&f, &file, &y, &sh, &r));
	pthread_mutex_lock(&r->lock);
	r->unlogged = true;
	pthread_mutex_unlock(&r->lock);
	for (int i = 0; i < 4; i++) {
		sr[i] = (struct shadow_run){ &sh, y, seed + (uint64_t)i * 7919, i < 2 ? 0 : i - 1,
					     &stop, &err };
		ASSERT_EQ(pthread_create(&th[i], NULL, shadow_thread, &sr[i]), 0);
	}
	end = now_s() + budget_s(2);
	while (now_s() < end && !atomic_load(&err))
		sleep_ms(10);
	atomic_store(&stop, true);
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	ASSERT_FALSE(atomic_load(&err));
	TAP_DIAG("%lu fills, %lu zaps", sh.fills, sh.zaps);
	ASSERT_TRUE(rec_ok(r));
	ASSERT_EQ(sh.in_progress, 0);
	ASSERT_TRUE(shadow_coherent(&sh, "the concurrent run"));
	return shadow_teardown(&f, file, y, &sh, r);
}

/*
 * KSM: write-protecting a page and replacing it with the KSM page are each
 * a CLEAR invalidation of that page, and the replacement's change_pte
 * (set_pte_at_notify) arrives inside it with the KSM page's frame; a COW
 * break of a merged page and MADV_UNMERGEABLE are CLEAR invalidations too.
 *
 *   0   1   2
 *   A   A   B      two pages of one content, one of another
 */
static bool test_ksm_merge(void)
{
	struct fix f;
	struct rec *r;
	struct ev cp[8];
	struct umm_pageinfo p0, p1;
	uint8_t buf[PS];
	size_t from;
	int n;

	ASSERT_TRUE(fix_rec(&f, &r));
	ASSERT_OK(map_at(f.mm, AT(0), 3, RW, PRIV));
	memset(buf, 0x5a, PS);
	ASSERT_EQ(umm_write(f.mm, AT(0), buf, PS), PS);
	ASSERT_EQ(umm_write(f.mm, AT(1), buf, PS), PS);
	ASSERT_TRUE(put_byte(f.mm, AT(2), 1));
	ASSERT_OK(umm_madvise(f.mm, AT(0), PG(3), UMM_MADV_MERGEABLE));
	from = rec_mark(r);
	for (int i = 0; i < 8 && !(pinfo(f.mm, AT(1)).flags & UMM_PI_KSM); i++)
		ASSERT_OK(umm_ksm_scan(f.u, 16));
	ASSERT_OK(umm_pagemap(f.mm, AT(0), &p0));
	ASSERT_OK(umm_pagemap(f.mm, AT(1), &p1));
	ASSERT_TRUE((p0.flags & UMM_PI_KSM) && (p1.flags & UMM_PI_KSM));
	ASSERT_EQ(p0.pfn, p1.pfn);

	/* one change_pte, to the KSM frame, for the page that was replaced */
	n = rec_get(r, from, K_CHANGE_PTE, cp, 8);
	ASSERT_EQ(n, 1);
	ASSERT_TRUE(cp[0].start == AT(0) || cp[0].start == AT(1));
	pthread_mutex_lock(&r->lock);
	for (size_t i = from; i < r->nr; i++) {
		const struct ev *e = &r->log[i];

		if (e->kind != K_CHANGE_PTE)
			continue;
		/* inside a CLEAR of exactly that page: the start just before, the end after */
		ASSERT_TRUE(i > from && i + 1 < r->nr);
		ASSERT_TRUE(r->log[i - 1].kind == K_START || r->log[i - 1].kind == K_SECTLB);
		ASSERT_TRUE(r->log[i + 1].kind == K_END || r->log[i + 1].kind == K_SECTLB);
	}
	pthread_mutex_unlock(&r->lock);
	ASSERT_TRUE(starts_cover(r, from, EV_CLEAR, AT(0), AT(2), "xx"));

	/* a write to a merged page copies it: CLEAR of that page */
	from = rec_mark(r);
	ASSERT_TRUE(put_byte(f.mm, AT(1), 7));
	ASSERT_TRUE(STARTS_ARE(r, from, { EV_CLEAR, AT(1), AT(2) }));
	ASSERT_EQ(byte_at(f.mm, AT(0)), 0x5a);

	/* unmerging breaks what is left shared: CLEAR again */
	from = rec_mark(r);
	ASSERT_OK(umm_madvise(f.mm, AT(0), PG(3), UMM_MADV_UNMERGEABLE));
	ASSERT_TRUE(rec_get(r, from, K_START, cp, 8) >= 0);
	ASSERT_FALSE(pinfo(f.mm, AT(0)).flags & UMM_PI_KSM);
	ASSERT_TRUE(rec_ok(r));
	return fix_rec_done(&f, r);
}

int main(void)
{
	if (!tmp_init("mmu-notifier")) {
		printf("1..0 # SKIP mkdtemp: %s\n", strerror(errno));
		return 0;
	}
	RUN_TEST(test_register_unregister);
	RUN_TEST(test_faults_send_nothing);
	RUN_TEST(test_cow_break);
	RUN_TEST(test_cow_break_file);
	RUN_TEST(test_fork);
	RUN_TEST(test_munmap);
	RUN_TEST(test_dontneed);
	RUN_TEST(test_mprotect);
	RUN_TEST(test_mremap);
	RUN_TEST(test_page_mkclean);
	RUN_TEST(test_msync_clean_sends_nothing);
	RUN_TEST(test_try_to_unmap);
	RUN_TEST(test_page_referenced);
	RUN_TEST(test_exit_release);
	RUN_TEST(test_exit_child);
	RUN_TEST(test_release_vs_rmap_walker);
	RUN_TEST(test_multiple_subscribers);
	RUN_TEST(test_late_subscriber);
	RUN_TEST(test_unregister_stops);
	RUN_TEST(test_null_ops);
	RUN_TEST(test_no_subscriber);
	RUN_TEST(test_register_during_invalidation);
	RUN_TEST(test_unregister_during_callback);
	RUN_TEST(test_get_put);
	RUN_TEST(test_get_enomem);
	RUN_TEST(test_exit_vs_unregister);
	RUN_TEST(test_register_after_exit);
	RUN_TEST(test_concurrent_register);
	RUN_TEST(test_shadow_random);
	RUN_TEST(test_shadow_concurrent);
	RUN_TEST(test_ksm_merge);
	tmp_cleanup();
	return tap_done();
}
