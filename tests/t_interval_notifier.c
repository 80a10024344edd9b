// SPDX-License-Identifier: MIT
/*
 * t_interval_notifier.c - interval notifiers and their sequence protocol,
 * and the OOM reaper's non-blockable path.
 *
 * A "mirror" below is what a device driver keeps: an interval of an mm
 * and, for the stress test, a table of the frames it mirrors, filled by
 * the collision-retry protocol (read_begin, GUP, driver lock, read_retry)
 * and emptied by ->invalidate under the same lock.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tap.h"
#define FIX_VALIDATE	VALIDATE_ALL
#include "fixture.h"

#define MAXLOG 256

struct inv {
	int event;
	uint64_t start, end;
	unsigned int flags;
};

struct mirror {
	struct umm_mmu_interval_notifier in;
	pthread_mutex_t lock;			/* the driver lock */
	struct inv log[MAXLOG];
	atomic_int nr_inv;
	atomic_int block;			/* next ->invalidate blocks... */
	atomic_int blocked;			/* ...and says it is blocked... */
	atomic_int unblock;			/* ...until this is set */
	bool refuse_nonblock;			/* answer false when not blockable */
	/* the mirror table (stress): frame pointers per page, NULL = none */
	uint64_t base;
	unsigned long npages;
	void **frames;
	atomic_ulong installs, retries;
};

static bool mirror_invalidate(struct umm_mmu_interval_notifier *in,
			      const struct umm_mmu_notifier_range *r, unsigned long cur_seq)
{
	struct mirror *m = (struct mirror *)in;
	int n;

	if (!(r->flags & UMM_MMU_NOTIFIER_RANGE_BLOCKABLE) && m->refuse_nonblock)
		return false;
	if (atomic_exchange(&m->block, 0)) {
		atomic_store(&m->blocked, 1);
		wait_flag(&m->unblock);
	}
	pthread_mutex_lock(&m->lock);
	umm_mmu_interval_set_seq(in, cur_seq);
	n = atomic_load(&m->nr_inv);
	if (n < MAXLOG)
		m->log[n] = (struct inv){ r->event, r->start, r->end, r->flags };
	atomic_store(&m->nr_inv, n + 1);
	if (m->frames) {
		uint64_t lo = r->start > m->base ? r->start : m->base;
		uint64_t hi = r->end < m->base + PG(m->npages) ? r->end : m->base + PG(m->npages);

		for (uint64_t a = lo & ~(uint64_t)(PS - 1); a < hi; a += PS)
			m->frames[(a - m->base) / PS] = NULL;
		if (lo < hi)
			umm_mmu_interval_check_unmap(in, lo, hi);
	}
	pthread_mutex_unlock(&m->lock);
	return true;
}

static const struct umm_mmu_interval_notifier_ops mirror_ops = {
	.invalidate = mirror_invalidate,
};

static struct mirror *mirror_new(struct umm_mm *mm, uint64_t start, uint64_t len)
{
	struct mirror *m = calloc(1, sizeof(*m));

	if (!m)
		return NULL;
	pthread_mutex_init(&m->lock, NULL);
	if (umm_mmu_interval_notifier_insert(&m->in, mm, start, len, &mirror_ops)) {
		free(m);
		return NULL;
	}
	return m;
}

static void mirror_free(struct mirror *m)
{
	umm_mmu_interval_notifier_remove(&m->in);
	pthread_mutex_destroy(&m->lock);
	free(m->frames);
	free(m);
}

/* The @i-th invalidation @m saw was @event over [start, end). */
static bool inv_is(struct mirror *m, int i, int event, uint64_t start, uint64_t end)
{
	struct inv *v = &m->log[i];

	ASSERT_TRUE(atomic_load(&m->nr_inv) > i);
	if (v->event != event || v->start != start || v->end != end) {
		TAP_DIAG("invalidation %d: event %d [%#" PRIx64 ", %#" PRIx64 "), expected %d [%#"
			 PRIx64 ", %#" PRIx64 ")", i, v->event, v->start, v->end, event, start, end);
		return false;
	}
	return true;
}

/* ---- arguments ---- */

static bool test_insert_args(void)
{
	struct fix f;
	struct mirror m = { 0 };
	const struct umm_mmu_interval_notifier_ops none = { 0 };

	ASSERT_TRUE(fix_init(&f));
	ASSERT_ERR(umm_mmu_interval_notifier_insert(NULL, f.mm, AT(0), PS, &mirror_ops), EINVAL);
	ASSERT_ERR(umm_mmu_interval_notifier_insert(&m.in, NULL, AT(0), PS, &mirror_ops), EINVAL);
	ASSERT_ERR(umm_mmu_interval_notifier_insert(&m.in, f.mm, AT(0), PS, NULL), EINVAL);
	ASSERT_ERR(umm_mmu_interval_notifier_insert(&m.in, f.mm, AT(0), PS, &none), EINVAL);
	ASSERT_ERR(umm_mmu_interval_notifier_insert(&m.in, f.mm, AT(0), 0, &mirror_ops), EINVAL);
	ASSERT_ERR(umm_mmu_interval_notifier_insert(&m.in, f.mm, UINT64_MAX - PS, 3 * PS,
						    &mirror_ops), EINVAL);
	/* a whole-address-space interval is fine */
	ASSERT_OK(umm_mmu_interval_notifier_insert(&m.in, f.mm, 0, UINT64_MAX, &mirror_ops));
	ASSERT_EQ(m.in.start, 0);
	ASSERT_EQ(m.in.last, UINT64_MAX - 1);
	umm_mmu_interval_notifier_remove(&m.in);
	umm_mmu_interval_notifier_remove(NULL);		/* harmless */
	return fix_fini(&f);
}

/* ---- which intervals hear what ---- */

/*
 *   0         10        20        30   40
 *   AAAAAAAAAA          BBBBBBBBBB          intervals
 *   xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx  one VMA, every page touched
 */
static bool test_only_overlapping(void)
{
	struct fix f;
	struct mirror *a, *b;

	ASSERT_TRUE(fix_init(&f));
	ASSERT_TRUE(map_pat(f.mm, AT(0), 40, RW, PRIV, 1));
	ASSERT_TRUE((a = mirror_new(f.mm, AT(0), PG(10))) != NULL);
	ASSERT_TRUE((b = mirror_new(f.mm, AT(20), PG(10))) != NULL);

	ASSERT_OK(umm_munmap(f.mm, AT(5), PS));
	ASSERT_EQ(atomic_load(&a->nr_inv), 1);
	ASSERT_EQ(atomic_load(&b->nr_inv), 0);
	ASSERT_TRUE(inv_is(a, 0, UMM_MMU_NOTIFY_UNMAP, AT(5), AT(6)));
	ASSERT_TRUE(a->log[0].flags & UMM_MMU_NOTIFIER_RANGE_BLOCKABLE);

	ASSERT_OK(umm_madvise(f.mm, AT(25), PS, UMM_MADV_DONTNEED));
	ASSERT_EQ(atomic_load(&a->nr_inv), 1);
	ASSERT_EQ(atomic_load(&b->nr_inv), 1);
	ASSERT_TRUE(inv_is(b, 0, UMM_MMU_NOTIFY_CLEAR, AT(25), AT(26)));

	/* a range over both reaches both; the last byte of A counts */
	ASSERT_OK(umm_mprotect(f.mm, AT(9), PG(12), RO));
	ASSERT_EQ(atomic_load(&a->nr_inv), 2);
	ASSERT_EQ(atomic_load(&b->nr_inv), 2);
	ASSERT_TRUE(inv_is(a, 1, UMM_MMU_NOTIFY_PROTECTION_VMA, AT(9), AT(21)));
	ASSERT_TRUE(inv_is(b, 1, UMM_MMU_NOTIFY_PROTECTION_VMA, AT(9), AT(21)));

	/* the gap between them is nobody's business */
	ASSERT_OK(umm_munmap(f.mm, AT(12), PG(6)));
	/* a range ending exactly where B starts does not touch B */
	ASSERT_OK(umm_munmap(f.mm, AT(19), PS));
	ASSERT_EQ(atomic_load(&a->nr_inv), 2);
	ASSERT_EQ(atomic_load(&b->nr_inv), 2);

	/* a COW break in A after fork: PROTECTION_PAGE at fork, CLEAR at the break */
	{
		struct umm_mm *child;
		int before = atomic_load(&a->nr_inv);

		ASSERT_OK(umm_mm_fork(f.mm, &child));
		ASSERT_TRUE(atomic_load(&a->nr_inv) > before);
		ASSERT_EQ(a->log[before].event, UMM_MMU_NOTIFY_PROTECTION_PAGE);
		ASSERT_TRUE(put_byte(f.mm, AT(2), 7));
		ASSERT_TRUE(inv_is(a, atomic_load(&a->nr_inv) - 1, UMM_MMU_NOTIFY_CLEAR, AT(2), AT(3)));
		ASSERT_TRUE(check_pat(child, AT(2), 1, 1));
		umm_mm_exit(child);
	}
	mirror_free(a);
	mirror_free(b);
	return fix_fini(&f);
}

/* ---- the sequence ---- */

static bool test_sequence(void)
{
	struct fix f;
	struct mirror *m;
	unsigned long seq, seq2;

	ASSERT_TRUE(fix_init(&f));
	ASSERT_TRUE(map_pat(f.mm, AT(0), 8, RW, PRIV, 1));
	ASSERT_TRUE((m = mirror_new(f.mm, AT(0), PG(4))) != NULL);

	seq = umm_mmu_interval_read_begin(&m->in);
	ASSERT_FALSE(umm_mmu_interval_check_retry(&m->in, seq));
	pthread_mutex_lock(&m->lock);
	ASSERT_FALSE(umm_mmu_interval_read_retry(&m->in, seq));
	pthread_mutex_unlock(&m->lock);

	/* outside the interval: the sequence stays good */
	ASSERT_OK(umm_madvise(f.mm, AT(6), PS, UMM_MADV_DONTNEED));
	ASSERT_FALSE(umm_mmu_interval_check_retry(&m->in, seq));

	/* inside: every sequence handed out before is refused */
	ASSERT_OK(umm_madvise(f.mm, AT(1), PS, UMM_MADV_DONTNEED));
	ASSERT_TRUE(umm_mmu_interval_check_retry(&m->in, seq));
	pthread_mutex_lock(&m->lock);
	ASSERT_TRUE(umm_mmu_interval_read_retry(&m->in, seq));
	pthread_mutex_unlock(&m->lock);

	seq2 = umm_mmu_interval_read_begin(&m->in);
	ASSERT_NE(seq2, seq);
	ASSERT_FALSE(umm_mmu_interval_check_retry(&m->in, seq2));
	mirror_free(m);
	return fix_fini(&f);
}

/* ---- blocking: read_begin, insert and remove against a running invalidation ---- */

struct bg {
	pthread_t th;
	struct umm_mm *mm;
	struct mirror *m;
	uint64_t addr;
	unsigned long seq;
	atomic_int done;
};

static void *bg_munmap(void *arg)
{
	struct bg *b = arg;

	umm_munmap(b->mm, b->addr, PS);
	atomic_store(&b->done, 1);
	return NULL;
}

static void *bg_read_begin(void *arg)
{
	struct bg *b = arg;

	b->seq = umm_mmu_interval_read_begin(&b->m->in);
	atomic_store(&b->done, 1);
	return NULL;
}

static void *bg_remove(void *arg)
{
	struct bg *b = arg;

	umm_mmu_interval_notifier_remove(&b->m->in);
	atomic_store(&b->done, 1);
	return NULL;
}

/* Start a munmap of @addr whose ->invalidate on @m blocks; wait until it does. */
static bool start_blocked_munmap(struct bg *t, struct umm_mm *mm, struct mirror *m, uint64_t addr)
{
	memset(t, 0, sizeof(*t));
	t->mm = mm;
	t->addr = addr;
	atomic_store(&m->unblock, 0);
	atomic_store(&m->blocked, 0);
	atomic_store(&m->block, 1);
	ASSERT_OK(-pthread_create(&t->th, NULL, bg_munmap, t));
	ASSERT_TRUE(wait_flag(&m->blocked));
	return true;
}

/*
 * A read_begin while an invalidation runs but before it reached this
 * interval returns at once: the sequence it hands out is refused by
 * read_retry once ->invalidate has called set_seq.
 */
static bool test_read_begin_before_set_seq(void)
{
	struct fix f;
	struct mirror *m;
	struct bg inval, reader = { 0 };

	ASSERT_TRUE(fix_init(&f));
	ASSERT_TRUE(map_pat(f.mm, AT(0), 8, RW, PRIV, 1));
	ASSERT_TRUE((m = mirror_new(f.mm, AT(0), PG(8))) != NULL);
	ASSERT_TRUE(start_blocked_munmap(&inval, f.mm, m, AT(3)));	/* blocks before set_seq */
	reader.m = m;
	ASSERT_OK(-pthread_create(&reader.th, NULL, bg_read_begin, &reader));
	pthread_join(reader.th, NULL);
	ASSERT_EQ(atomic_load(&reader.done), 1);
	ASSERT_FALSE(umm_mmu_interval_check_retry(&m->in, reader.seq));
	atomic_store(&m->unblock, 1);
	pthread_join(inval.th, NULL);
	pthread_mutex_lock(&m->lock);
	ASSERT_TRUE(umm_mmu_interval_read_retry(&m->in, reader.seq));
	pthread_mutex_unlock(&m->lock);
	mirror_free(m);
	return fix_fini(&f);
}

/* An interval whose ->invalidate blocks after set_seq: read_begin must wait. */
static bool late_invalidate(struct umm_mmu_interval_notifier *in,
			    const struct umm_mmu_notifier_range *r, unsigned long cur_seq)
{
	struct mirror *m = (struct mirror *)in;

	pthread_mutex_lock(&m->lock);
	umm_mmu_interval_set_seq(in, cur_seq);
	pthread_mutex_unlock(&m->lock);
	if (atomic_exchange(&m->block, 0)) {
		atomic_store(&m->blocked, 1);
		wait_flag(&m->unblock);
	}
	atomic_fetch_add(&m->nr_inv, 1);
	return true;
}

static const struct umm_mmu_interval_notifier_ops late_ops = { .invalidate = late_invalidate };

static bool test_read_begin_waits_for_end(void)
{
	struct fix f;
	struct mirror m = { 0 };
	struct bg inval, reader = { 0 };
	unsigned long seq;

	ASSERT_TRUE(fix_init(&f));
	ASSERT_TRUE(map_pat(f.mm, AT(0), 8, RW, PRIV, 1));
	pthread_mutex_init(&m.lock, NULL);
	ASSERT_OK(umm_mmu_interval_notifier_insert(&m.in, f.mm, AT(0), PG(8), &late_ops));

	ASSERT_TRUE(start_blocked_munmap(&inval, f.mm, &m, AT(3)));
	/* the invalidation is running and has set our sequence: odd */
	ASSERT_EQ(m.in.invalidate_seq & 1, 1);
	reader.m = &m;
	ASSERT_OK(-pthread_create(&reader.th, NULL, bg_read_begin, &reader));
	sleep_ms(50);
	ASSERT_EQ(atomic_load(&reader.done), 0);	/* asleep in read_begin */
	atomic_store(&m.unblock, 1);
	pthread_join(inval.th, NULL);
	pthread_join(reader.th, NULL);
	ASSERT_EQ(atomic_load(&reader.done), 1);
	/* what it got is good: nothing runs now */
	ASSERT_FALSE(umm_mmu_interval_check_retry(&m.in, reader.seq));
	seq = umm_mmu_interval_read_begin(&m.in);
	ASSERT_EQ(seq, reader.seq);
	umm_mmu_interval_notifier_remove(&m.in);
	return fix_fini(&f);
}

/*
 * An interval inserted while an invalidation walks the tree joins it when
 * the walk ends; its first read_begin waits for that, since it may
 * overlap what was invalidated without having heard of it.
 */
static bool test_insert_during_invalidation(void)
{
	struct fix f;
	struct mirror *a, c = { 0 };
	struct bg inval, reader = { 0 };

	ASSERT_TRUE(fix_init(&f));
	ASSERT_TRUE(map_pat(f.mm, AT(0), 16, RW, PRIV, 1));
	ASSERT_TRUE((a = mirror_new(f.mm, AT(0), PG(8))) != NULL);
	ASSERT_TRUE(start_blocked_munmap(&inval, f.mm, a, AT(3)));

	pthread_mutex_init(&c.lock, NULL);
	ASSERT_OK(umm_mmu_interval_notifier_insert(&c.in, f.mm, AT(2), PG(10), &mirror_ops));
	reader.m = &c;
	ASSERT_OK(-pthread_create(&reader.th, NULL, bg_read_begin, &reader));
	sleep_ms(50);
	ASSERT_EQ(atomic_load(&reader.done), 0);
	atomic_store(&a->unblock, 1);
	pthread_join(inval.th, NULL);
	pthread_join(reader.th, NULL);
	ASSERT_EQ(atomic_load(&c.nr_inv), 0);	/* it missed that one... */
	ASSERT_FALSE(umm_mmu_interval_check_retry(&c.in, reader.seq));
	/* ...and is in the tree for the next */
	ASSERT_OK(umm_munmap(f.mm, AT(10), PS));
	ASSERT_EQ(atomic_load(&c.nr_inv), 1);
	ASSERT_TRUE(inv_is(&c, 0, UMM_MMU_NOTIFY_UNMAP, AT(10), AT(11)));
	ASSERT_TRUE(umm_mmu_interval_check_retry(&c.in, reader.seq));
	umm_mmu_interval_notifier_remove(&c.in);
	mirror_free(a);
	return fix_fini(&f);
}

/* remove waits for an ->invalidate in flight; after it, no more calls. */
static bool test_remove_waits(void)
{
	struct fix f;
	struct mirror *a, *b;
	struct bg inval, remover = { 0 };
	int calls;

	ASSERT_TRUE(fix_init(&f));
	ASSERT_TRUE(map_pat(f.mm, AT(0), 16, RW, PRIV, 1));
	ASSERT_TRUE((a = mirror_new(f.mm, AT(0), PG(8))) != NULL);
	ASSERT_TRUE((b = mirror_new(f.mm, AT(0), PG(16))) != NULL);
	ASSERT_TRUE(start_blocked_munmap(&inval, f.mm, a, AT(3)));

	remover.m = a;
	ASSERT_OK(-pthread_create(&remover.th, NULL, bg_remove, &remover));
	sleep_ms(50);
	ASSERT_EQ(atomic_load(&remover.done), 0);	/* a's ->invalidate is running */
	/* removing one that is not being called does not wait */
	atomic_store(&a->unblock, 1);
	pthread_join(inval.th, NULL);
	pthread_join(remover.th, NULL);
	calls = atomic_load(&b->nr_inv);
	ASSERT_EQ(calls, 1);
	ASSERT_OK(umm_munmap(f.mm, AT(4), PS));
	ASSERT_EQ(atomic_load(&b->nr_inv), 2);
	ASSERT_EQ(atomic_load(&a->nr_inv), 1);		/* removed: not called */
	pthread_mutex_destroy(&a->lock);
	free(a);
	mirror_free(b);
	return fix_fini(&f);
}

/* ---- exit ---- */

static bool test_release(void)
{
	struct fix f;
	struct mirror *m;

	ASSERT_TRUE(fix_init(&f));
	ASSERT_TRUE(map_pat(f.mm, AT(0), 4, RW, PRIV, 1));
	ASSERT_TRUE((m = mirror_new(f.mm, AT(100), PG(4))) != NULL);
	umm_mm_exit(f.mm);
	f.mm = NULL;
	ASSERT_EQ(atomic_load(&m->nr_inv), 1);
	ASSERT_TRUE(inv_is(m, 0, UMM_MMU_NOTIFY_RELEASE, 0, UINT64_MAX));
	/* the mm struct outlives its exit while the interval holds it */
	mirror_free(m);
	return fix_fini(&f);
}

/* ---- the OOM reaper ---- */

struct refuser {
	struct umm_mmu_notifier mn;
	bool refuse;
	atomic_int starts, ends, nonblock;
};

static int refuser_start(struct umm_mmu_notifier *mn, const struct umm_mmu_notifier_range *r)
{
	struct refuser *x = (struct refuser *)mn;

	if (!(r->flags & UMM_MMU_NOTIFIER_RANGE_BLOCKABLE)) {
		atomic_fetch_add(&x->nonblock, 1);
		if (x->refuse)
			return -EAGAIN;
	}
	atomic_fetch_add(&x->starts, 1);
	return 0;
}

static void refuser_end(struct umm_mmu_notifier *mn, const struct umm_mmu_notifier_range *r)
{
	atomic_fetch_add(&((struct refuser *)mn)->ends, 1);
}

static const struct umm_mmu_notifier_ops refuser_ops = {
	.invalidate_range_start = refuser_start,
	.invalidate_range_end = refuser_end,
};

/*
 *   0    4    8      16
 *   PPPP SSSS MMMMMMM      P private, S shared, M private watched by a mirror
 */
static bool test_oom_reap(void)
{
	struct fix f;
	struct mirror *m;
	struct refuser x = { .mn.ops = &refuser_ops };
	struct umm_pageinfo pi;

	ASSERT_TRUE(fix_init(&f));
	ASSERT_TRUE(map_pat(f.mm, AT(0), 4, RW, PRIV, 1));
	ASSERT_TRUE(map_pat(f.mm, AT(5), 4, RW, SHRD, 2));
	ASSERT_TRUE(map_pat(f.mm, AT(10), 6, RW, PRIV, 3));
	ASSERT_TRUE((m = mirror_new(f.mm, AT(10), PG(6))) != NULL);
	m->refuse_nonblock = true;
	ASSERT_OK(umm_mmu_notifier_register(&x.mn, f.mm));
	ASSERT_ERR(umm_mm_oom_reap(NULL), EINVAL);

	/* the mirror refuses its VMA: -EAGAIN, that VMA stays */
	ASSERT_ERR(umm_mm_oom_reap(f.mm), EAGAIN);
	pi = pinfo(f.mm, AT(0));
	ASSERT_EQ(pi.flags & UMM_PI_PRESENT, 0);		/* reaped */
	ASSERT_TRUE(check_pat(f.mm, AT(5), 4, 2));		/* shared: left */
	ASSERT_TRUE(check_pat(f.mm, AT(10), 6, 3));		/* refused: left */
	/* the classic subscriber heard the first VMA only: the mirror refused
	 * before it was asked about the third */
	ASSERT_EQ(atomic_load(&x.starts), 1);
	ASSERT_EQ(atomic_load(&x.ends), 1);
	ASSERT_EQ(atomic_load(&m->nr_inv), 0);

	/* the victim's memory is not coming back */
	ASSERT_ERR(umm_write(f.mm, AT(1), "x", 1), EFAULT);

	/* a classic subscriber refusing: no end for it, nothing reaped */
	m->refuse_nonblock = false;
	x.refuse = true;
	ASSERT_ERR(umm_mm_oom_reap(f.mm), EAGAIN);
	ASSERT_TRUE(check_pat(f.mm, AT(10), 6, 3));
	ASSERT_EQ(atomic_load(&x.ends), 1);
	/* the mirror said yes before the refusal and was told nothing more:
	 * intervals have no end, the sequence just moved on */
	ASSERT_TRUE(atomic_load(&m->nr_inv) >= 1);

	x.refuse = false;
	ASSERT_OK(umm_mm_oom_reap(f.mm));
	pi = pinfo(f.mm, AT(12));
	ASSERT_EQ(pi.flags & UMM_PI_PRESENT, 0);
	ASSERT_TRUE(atomic_load(&x.nonblock) >= 3);
	ASSERT_EQ(atomic_load(&x.starts), atomic_load(&x.ends));
	ASSERT_TRUE(machine_valid(f.u));

	umm_mmu_notifier_unregister(&x.mn, f.mm);
	mirror_free(m);
	umm_mm_exit(f.mm);
	f.mm = NULL;
	return fix_fini(&f);
}

/* ---- stress: a mirroring driver against writers and mutators ---- */

/*
 * Each page holds its number and a stamp in its first 16 bytes; one writer
 * owns each page and bumps the stamp with umm_write.  Mirror threads fault
 * pages into the mirror with the retry protocol and read the stamp
 * straight from the frame, under the driver lock: it must name the page,
 * and never be older than what the writer had finished writing before the
 * read started.  A mirror that missed an invalidation (a COW after fork,
 * an mprotect, a DONTNEED) would show an old frame and fail that.
 */
struct stress {
	struct umm *u;
	struct umm_mm *mm;
	struct mirror *m;
	unsigned long npages;
	_Atomic uint64_t *done;		/* per page: last stamp fully written */
	atomic_int stop;
	atomic_int bad;
	uint64_t seed;
	atomic_ulong reads, writes, mutations;
};

static void *stress_writer(void *arg)
{
	struct stress *s = arg;
	uint64_t rnd = s->seed ^ 0x1234;

	while (!atomic_load(&s->stop)) {
		unsigned long p = tap_rand(&rnd) % s->npages;
		uint64_t w[2] = { p, atomic_load(&s->done[p]) + 1 };

		if (umm_write(s->mm, AT(p), w, sizeof(w)) == sizeof(w)) {
			atomic_store(&s->done[p], w[1]);
			atomic_fetch_add(&s->writes, 1);
		}
	}
	return NULL;
}

static bool mirror_fault(struct mirror *m, struct umm_mm *mm, unsigned long p)
{
	for (int tries = 0; tries < 1000; tries++) {
		unsigned long seq = umm_mmu_interval_read_begin(&m->in);
		struct umm_page *pg;

		if (umm_get_user_page(mm, AT(p), 0, &pg))
			return false;
		pthread_mutex_lock(&m->lock);
		if (umm_mmu_interval_read_retry(&m->in, seq)) {
			pthread_mutex_unlock(&m->lock);
			umm_put_page(pg);
			atomic_fetch_add(&m->retries, 1);
			continue;
		}
		m->frames[p] = umm_page_address(pg);
		umm_mmu_interval_check_map(&m->in, AT(p), umm_page_pfn(pg), seq);
		atomic_fetch_add(&m->installs, 1);
		pthread_mutex_unlock(&m->lock);
		umm_put_page(pg);	/* the notifier, not a pin, keeps it valid */
		return true;
	}
	return false;
}

static void *stress_mirror(void *arg)
{
	struct stress *s = arg;
	uint64_t rnd = s->seed ^ 0x5678;

	while (!atomic_load(&s->stop)) {
		unsigned long p = tap_rand(&rnd) % s->npages;
		uint64_t floor = atomic_load(&s->done[p]);
		volatile uint64_t *w;

		pthread_mutex_lock(&s->m->lock);
		w = s->m->frames[p];
		if (w) {
			uint64_t page = w[0], stamp = w[1];

			if (stamp && (page != p || stamp < floor)) {
				TAP_DIAG("mirror read page %lu: (%" PRIu64 ", %" PRIu64 "), writer "
					 "finished %" PRIu64 " before the read", p, page, stamp, floor);
				atomic_store(&s->bad, 1);
			}
			atomic_fetch_add(&s->reads, 1);
		}
		pthread_mutex_unlock(&s->m->lock);
		if (!w)
			mirror_fault(s->m, s->mm, p);
	}
	return NULL;
}

static void *stress_mutator(void *arg)
{
	struct stress *s = arg;
	uint64_t rnd = s->seed ^ 0x9abc;

	while (!atomic_load(&s->stop)) {
		unsigned long p = tap_rand(&rnd) % s->npages;
		struct umm_mm *child;

		switch (tap_rand(&rnd) % 3) {
		case 0:		/* COW: every page write-protected, the next write copies */
			if (!umm_mm_fork(s->mm, &child))
				umm_mm_exit(child);
			break;
		case 1:		/* a moment read-only */
			umm_mprotect(s->mm, AT(p), PS, RO);
			umm_mprotect(s->mm, AT(p), PS, RW);
			break;
		case 2:		/* aging: clear_flush_young reaches nobody here */
			umm_page_referenced(s->mm, AT(p));
			break;
		}
		atomic_fetch_add(&s->mutations, 1);
	}
	return NULL;
}

static bool test_mirror_stress(void)
{
	struct stress s = { 0 };
	pthread_t w, r[2], mu;
	double secs = tap_short() ? 0.5 : 2.0;

	s.seed = tap_seed();
	s.npages = 64;
	ASSERT_OK(make_machine(32 << 20, 1, UMM_CONFIG_NOTIFIER_CHECKER, &s.u));
	ASSERT_OK(umm_mm_create(s.u, &s.mm));
	ASSERT_OK(map_at(s.mm, AT(0), s.npages, RW, PRIV));
	s.done = calloc(s.npages, sizeof(*s.done));
	ASSERT_TRUE(s.done != NULL);
	for (unsigned long p = 0; p < s.npages; p++) {
		uint64_t w0[2] = { p, 0 };

		ASSERT_EQ(umm_write(s.mm, AT(p), w0, sizeof(w0)), sizeof(w0));
	}
	ASSERT_TRUE((s.m = mirror_new(s.mm, AT(0), PG(s.npages))) != NULL);
	s.m->base = AT(0);
	s.m->npages = s.npages;
	s.m->frames = calloc(s.npages, sizeof(void *));
	ASSERT_TRUE(s.m->frames != NULL);

	pthread_create(&w, NULL, stress_writer, &s);
	for (int i = 0; i < 2; i++)
		pthread_create(&r[i], NULL, stress_mirror, &s);
	pthread_create(&mu, NULL, stress_mutator, &s);
	sleep_ms((int)(secs * 1000));
	atomic_store(&s.stop, 1);
	pthread_join(w, NULL);
	for (int i = 0; i < 2; i++)
		pthread_join(r[i], NULL);
	pthread_join(mu, NULL);
	TAP_DIAG("%lu writes, %lu mirror reads, %lu installs, %lu retries, %lu mutations",
		 atomic_load(&s.writes), atomic_load(&s.reads), atomic_load(&s.m->installs),
		 atomic_load(&s.m->retries), atomic_load(&s.mutations));
	ASSERT_EQ(atomic_load(&s.bad), 0);
	ASSERT_TRUE(atomic_load(&s.reads) > 0 && atomic_load(&s.m->installs) > 0);
	ASSERT_EQ(umm_mmu_notifier_checker_violations(s.u), 0);
	ASSERT_TRUE(machine_valid(s.u));
	/* the mirror drops everything before it goes */
	pthread_mutex_lock(&s.m->lock);
	umm_mmu_interval_check_unmap(&s.m->in, AT(0), AT(s.npages));
	pthread_mutex_unlock(&s.m->lock);
	mirror_free(s.m);
	umm_mm_exit(s.mm);
	free(s.done);
	ASSERT_EQ(umm_mmu_notifier_checker_violations(s.u), 0);
	return machine_done(s.u);
}

int main(void)
{
	RUN_TEST(test_insert_args);
	RUN_TEST(test_only_overlapping);
	RUN_TEST(test_sequence);
	RUN_TEST(test_read_begin_before_set_seq);
	RUN_TEST(test_read_begin_waits_for_end);
	RUN_TEST(test_insert_during_invalidation);
	RUN_TEST(test_remove_waits);
	RUN_TEST(test_release);
	RUN_TEST(test_oom_reap);
	RUN_TEST(test_mirror_stress);
	return tap_done();
}
