// SPDX-License-Identifier: MIT
/*
 * t_notifier_checker.c - the MMU-notifier protocol checker catches every
 * violation it claims to catch, each provoked by a deliberately broken
 * client, and stays quiet for a correct one.
 *
 * Unpaired start/end cannot come from a client: the engine's own paths
 * pair them.  Those two tests call the engine's internal entry points
 * directly (the static library exports them), as a broken engine path
 * would.
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
#include "fixture.h"
#include "internal.h"

/* ---- the log: what the checker said ---- */

static char logbuf[16384];
static size_t loglen;
static pthread_mutex_t loglock = PTHREAD_MUTEX_INITIALIZER;

static void log_fn(void *ctx, int level, const char *msg)
{
	pthread_mutex_lock(&loglock);
	loglen += snprintf(logbuf + loglen, sizeof(logbuf) - loglen, "%s\n", msg);
	if (loglen >= sizeof(logbuf))
		loglen = sizeof(logbuf) - 1;
	pthread_mutex_unlock(&loglock);
}

static void log_clear(void)
{
	loglen = 0;
	logbuf[0] = 0;
}

/* The log says @what (and @addr, unless 0). */
static bool said(const char *what, uint64_t addr)
{
	char a[32];

	if (!strstr(logbuf, what)) {
		TAP_DIAG("log lacks \"%s\"; it has:\n%s", what, logbuf);
		return false;
	}
	snprintf(a, sizeof(a), "%#" PRIx64, addr);
	if (addr && !strstr(logbuf, a)) {
		TAP_DIAG("log lacks address %s; it has:\n%s", a, logbuf);
		return false;
	}
	return true;
}

static bool checked_fix(struct fix *f)
{
	ASSERT_OK(make_machine(16 << 20, 1, UMM_CONFIG_NOTIFIER_CHECKER, &f->u));
	ASSERT_OK(umm_mm_create(f->u, &f->mm));
	umm_set_log(f->u, log_fn, NULL);
	log_clear();
	return true;
}

static unsigned long violations(struct fix *f)
{
	return umm_mmu_notifier_checker_violations(f->u);
}

/* ---- clients ---- */

/*
 * A client that keeps one translation and can be told how to misbehave.
 * A correct one drops its translation in start.
 */
struct client {
	struct umm_mmu_notifier mn;
	bool keep;		/* broken: does not drop in start */
	bool sleeps;		/* calls umm_might_sleep() in start */
	atomic_int block;	/* start blocks until unblock... */
	atomic_int blocked;
	atomic_int unblock;
};

static int client_start(struct umm_mmu_notifier *mn, const struct umm_mmu_notifier_range *r)
{
	struct client *c = (struct client *)mn;

	if (c->sleeps)
		umm_might_sleep();
	if (!c->keep)
		umm_mmu_notifier_check_unmap(mn, r->start, r->end);
	if (atomic_exchange(&c->block, 0)) {
		atomic_store(&c->blocked, 1);
		wait_flag(&c->unblock);
	}
	return 0;
}

static void client_release(struct umm_mmu_notifier *mn, struct umm_mm *mm)
{
	struct client *c = (struct client *)mn;

	if (!c->keep)
		umm_mmu_notifier_check_unmap(mn, 0, UINT64_MAX);
}

static const struct umm_mmu_notifier_ops client_ops = {
	.invalidate_range_start = client_start,
	.release = client_release,
};

/* The frame @mm maps at @addr, faulted in for writing. */
static uint64_t frame_at(struct umm_mm *mm, uint64_t addr)
{
	struct umm_page *pg;
	uint64_t pfn;

	if (umm_get_user_page(mm, addr, UMM_GUP_WRITE, &pg))
		return 0;
	pfn = umm_page_pfn(pg);
	umm_put_page(pg);
	return pfn;
}

/* ---- a correct client: silence ---- */

static bool test_correct_client_quiet(void)
{
	struct fix f;
	struct client c = { .mn.ops = &client_ops };
	struct umm_mm *child;

	ASSERT_TRUE(checked_fix(&f));
	ASSERT_TRUE(map_pat(f.mm, AT(0), 8, RW, PRIV, 1));
	ASSERT_OK(umm_mmu_notifier_register(&c.mn, f.mm));
	for (int i = 0; i < 8; i++)
		umm_mmu_notifier_check_map(&c.mn, AT(i), frame_at(f.mm, AT(i)));
	ASSERT_OK(umm_mm_fork(f.mm, &child));
	ASSERT_TRUE(put_byte(f.mm, AT(1), 9));		/* COW */
	umm_mmu_notifier_check_map(&c.mn, AT(1), frame_at(f.mm, AT(1)));
	ASSERT_OK(umm_madvise(f.mm, AT(2), PS, UMM_MADV_DONTNEED));
	ASSERT_OK(umm_mprotect(f.mm, AT(3), PS, RO));
	ASSERT_OK(umm_munmap(f.mm, AT(4), PS));
	umm_mm_exit(child);
	ASSERT_EQ(violations(&f), 0);
	ASSERT_TRUE(machine_valid(f.u));
	umm_mmu_notifier_unregister(&c.mn, f.mm);
	ASSERT_EQ(violations(&f), 0);
	ASSERT_EQ(loglen, 0);
	return fix_fini(&f);
}

/* ---- translations that outlive what they translate ---- */

static bool test_kept_across_invalidation(void)
{
	struct fix f;
	struct client c = { .mn.ops = &client_ops, .keep = true };

	ASSERT_TRUE(checked_fix(&f));
	ASSERT_TRUE(map_pat(f.mm, AT(0), 4, RW, PRIV, 1));
	ASSERT_OK(umm_mmu_notifier_register(&c.mn, f.mm));
	umm_mmu_notifier_check_map(&c.mn, AT(2), frame_at(f.mm, AT(2)));
	ASSERT_EQ(violations(&f), 0);

	/* the frame goes back to the allocator while c still maps it */
	ASSERT_OK(umm_madvise(f.mm, AT(2), PS, UMM_MADV_DONTNEED));
	ASSERT_TRUE(said("frame freed while a subscriber maps it", AT(2)));
	ASSERT_TRUE(said("translation kept across an invalidation", AT(2)));
	ASSERT_TRUE(said("event CLEAR started by madvise_dontneed", 0));
	ASSERT_EQ(violations(&f), 2);

	/* a write-protect keeps the frame: no complaint for that */
	log_clear();
	umm_mmu_notifier_check_unmap(&c.mn, 0, UINT64_MAX);
	umm_mmu_notifier_check_map(&c.mn, AT(1), frame_at(f.mm, AT(1)));
	ASSERT_OK(umm_mprotect(f.mm, AT(1), PS, RO));
	ASSERT_EQ(violations(&f), 2);

	/* a COW replaces it: stale */
	{
		struct umm_mm *child;

		ASSERT_OK(umm_mprotect(f.mm, AT(1), PS, RW));
		ASSERT_OK(umm_mm_fork(f.mm, &child));
		ASSERT_TRUE(put_byte(f.mm, AT(1), 5));
		ASSERT_TRUE(said("translation kept across an invalidation", AT(1)));
		umm_mm_exit(child);
	}
	umm_mmu_notifier_check_unmap(&c.mn, 0, UINT64_MAX);
	umm_mmu_notifier_unregister(&c.mn, f.mm);
	return fix_fini(&f);
}

/* ---- establishing when it must not ---- */

struct bg {
	pthread_t th;
	struct umm_mm *mm;
	uint64_t addr;
};

static void *bg_dontneed(void *arg)
{
	struct bg *b = arg;

	umm_madvise(b->mm, b->addr, PS, UMM_MADV_DONTNEED);
	return NULL;
}

/*
 * c heard the start; a second subscriber holds the invalidation open
 * (subscribers are called newest first, so it is registered first); c
 * installs a translation meanwhile.
 */
static bool test_establish_inside_invalidation(void)
{
	struct fix f;
	struct client holder = { .mn.ops = &client_ops };
	struct client c = { .mn.ops = &client_ops };
	struct bg b;
	uint64_t pfn;

	ASSERT_TRUE(checked_fix(&f));
	ASSERT_TRUE(map_pat(f.mm, AT(0), 4, RW, PRIV, 1));
	ASSERT_OK(umm_mmu_notifier_register(&holder.mn, f.mm));
	ASSERT_OK(umm_mmu_notifier_register(&c.mn, f.mm));
	pfn = frame_at(f.mm, AT(3));

	atomic_store(&holder.block, 1);
	b = (struct bg){ .mm = f.mm, .addr = AT(3) };
	ASSERT_OK(-pthread_create(&b.th, NULL, bg_dontneed, &b));
	ASSERT_TRUE(wait_flag(&holder.blocked));
	umm_mmu_notifier_check_map(&c.mn, AT(3), pfn);		/* c heard start: wrong */
	ASSERT_TRUE(said("translation established inside an active invalidation", AT(3)));
	ASSERT_TRUE(said("event CLEAR", 0));
	ASSERT_EQ(violations(&f), 1);
	/* the holder has not heard the start yet... it has: it is blocked in it.
	 * A subscriber that has not yet heard may still install (its start will
	 * drop it): that is the KVM race the sequence count resolves. */
	atomic_store(&holder.unblock, 1);
	pthread_join(b.th, NULL);
	umm_mmu_notifier_check_unmap(&c.mn, 0, UINT64_MAX);
	umm_mmu_notifier_unregister(&c.mn, f.mm);
	umm_mmu_notifier_unregister(&holder.mn, f.mm);
	return fix_fini(&f);
}

/* GUP, then the page changed, then the install without a retry. */
static bool test_establish_stale_frame(void)
{
	struct fix f;
	struct client c = { .mn.ops = &client_ops };
	uint64_t pfn;

	ASSERT_TRUE(checked_fix(&f));
	ASSERT_TRUE(map_pat(f.mm, AT(0), 4, RW, PRIV, 1));
	ASSERT_OK(umm_mmu_notifier_register(&c.mn, f.mm));
	pfn = frame_at(f.mm, AT(1));
	ASSERT_OK(umm_madvise(f.mm, AT(1), PS, UMM_MADV_DONTNEED));
	umm_mmu_notifier_check_map(&c.mn, AT(1), pfn);
	ASSERT_TRUE(said("translation to a frame the mm does not map there", AT(1)));
	ASSERT_EQ(violations(&f), 1);
	umm_mmu_notifier_unregister(&c.mn, f.mm);
	return fix_fini(&f);
}

struct imirror {
	struct umm_mmu_interval_notifier in;
	pthread_mutex_t lock;
};

static bool imirror_invalidate(struct umm_mmu_interval_notifier *in,
			       const struct umm_mmu_notifier_range *r, unsigned long cur_seq)
{
	struct imirror *m = (struct imirror *)in;

	pthread_mutex_lock(&m->lock);
	umm_mmu_interval_set_seq(in, cur_seq);
	umm_mmu_interval_check_unmap(in, r->start, r->end);
	pthread_mutex_unlock(&m->lock);
	return true;
}

static const struct umm_mmu_interval_notifier_ops imirror_ops = {
	.invalidate = imirror_invalidate,
};

/* An interval driver that ignores read_retry. */
static bool test_interval_stale_seq(void)
{
	struct fix f;
	struct imirror m = { .lock = PTHREAD_MUTEX_INITIALIZER };
	unsigned long seq;
	uint64_t pfn;

	ASSERT_TRUE(checked_fix(&f));
	ASSERT_TRUE(map_pat(f.mm, AT(0), 4, RW, PRIV, 1));
	ASSERT_OK(umm_mmu_interval_notifier_insert(&m.in, f.mm, AT(0), PG(4), &imirror_ops));

	/* the right way: quiet */
	seq = umm_mmu_interval_read_begin(&m.in);
	pfn = frame_at(f.mm, AT(2));
	pthread_mutex_lock(&m.lock);
	ASSERT_FALSE(umm_mmu_interval_read_retry(&m.in, seq));
	umm_mmu_interval_check_map(&m.in, AT(2), pfn, seq);
	pthread_mutex_unlock(&m.lock);
	ASSERT_EQ(violations(&f), 0);

	/* an invalidation between read_begin and the install */
	seq = umm_mmu_interval_read_begin(&m.in);
	pfn = frame_at(f.mm, AT(3));
	ASSERT_OK(umm_mprotect(f.mm, AT(3), PS, RO));
	pthread_mutex_lock(&m.lock);
	umm_mmu_interval_check_map(&m.in, AT(3), pfn, seq);	/* no read_retry */
	pthread_mutex_unlock(&m.lock);
	ASSERT_TRUE(said("stale sequence", AT(3)));
	ASSERT_EQ(violations(&f), 1);

	/* removed, then still reporting */
	umm_mmu_interval_check_unmap(&m.in, 0, UINT64_MAX);
	{
		struct umm_mm *keep = m.in.mm;

		umm_mmu_interval_notifier_remove(&m.in);
		m.in.mm = keep;		/* the broken driver keeps using it */
		log_clear();
		umm_mmu_interval_check_map(&m.in, AT(2), pfn, seq);
		m.in.mm = NULL;
	}
	ASSERT_TRUE(said("after remove", AT(2)));
	return fix_fini(&f);
}

/* ---- after release and unregister ---- */

static bool test_after_unregister_and_release(void)
{
	struct fix f;
	struct client c = { .mn.ops = &client_ops };
	struct client d = { .mn.ops = &client_ops };
	uint64_t pfn;

	ASSERT_TRUE(checked_fix(&f));
	ASSERT_TRUE(map_pat(f.mm, AT(0), 4, RW, PRIV, 1));
	ASSERT_OK(umm_mmu_notifier_register(&c.mn, f.mm));
	ASSERT_OK(umm_mmu_notifier_register(&d.mn, f.mm));
	pfn = frame_at(f.mm, AT(0));

	/* unregistered while holding a translation: it will never hear again */
	umm_mmu_notifier_check_map(&c.mn, AT(0), pfn);
	c.keep = true;
	umm_mmu_notifier_unregister(&c.mn, f.mm);
	ASSERT_TRUE(said("translations still held after unregister", AT(0)));
	ASSERT_EQ(violations(&f), 1);
	c.mn.mm = f.mm;			/* a broken client keeps going */
	umm_mmu_notifier_check_map(&c.mn, AT(0), pfn);
	ASSERT_TRUE(said("translation reported after unregister", AT(0)));
	ASSERT_EQ(violations(&f), 2);

	/* registering the same struct again starts afresh */
	c.keep = false;
	log_clear();
	ASSERT_OK(umm_mmu_notifier_register(&c.mn, f.mm));
	umm_mmu_notifier_check_map(&c.mn, AT(0), pfn);
	ASSERT_EQ(violations(&f), 2);
	umm_mmu_notifier_unregister(&c.mn, f.mm);
	ASSERT_EQ(violations(&f), 2);

	/* after the mm's release */
	umm_mm_exit(f.mm);
	umm_mmu_notifier_check_map(&d.mn, AT(1), pfn);
	ASSERT_TRUE(said("translation reported after release", AT(1)));
	ASSERT_EQ(violations(&f), 3);
	umm_mmu_notifier_unregister(&d.mn, f.mm);
	f.mm = NULL;
	return fix_fini(&f);
}

/* ---- sleeping where it must not ---- */

static bool test_sleep_in_nonblockable(void)
{
	struct fix f;
	struct client c = { .mn.ops = &client_ops, .sleeps = true };

	ASSERT_TRUE(checked_fix(&f));
	ASSERT_TRUE(map_pat(f.mm, AT(0), 4, RW, PRIV, 1));
	ASSERT_OK(umm_mmu_notifier_register(&c.mn, f.mm));
	ASSERT_OK(umm_munmap(f.mm, AT(3), PS));		/* blockable: fine */
	umm_might_sleep();				/* not in a callback: fine */
	ASSERT_EQ(violations(&f), 0);
	ASSERT_OK(umm_mm_oom_reap(f.mm));		/* not blockable */
	ASSERT_TRUE(said("sleeping in a non-blockable callback", 0));
	ASSERT_EQ(violations(&f), 1);
	umm_mmu_notifier_unregister(&c.mn, f.mm);
	return fix_fini(&f);
}

/* ---- unpaired start and end (engine paths, called directly) ---- */

static bool test_unpaired(void)
{
	struct fix f;
	struct client c = { .mn.ops = &client_ops };
	struct mmu_notifier_range range;
	char msg[256];

	ASSERT_TRUE(checked_fix(&f));
	ASSERT_TRUE(map_pat(f.mm, AT(0), 4, RW, PRIV, 1));
	ASSERT_OK(umm_mmu_notifier_register(&c.mn, f.mm));

	/* an end nobody started: reported, and not passed on */
	mmu_notifier_range_init(&range, UMM_MMU_NOTIFY_CLEAR, f.mm, AT(1), AT(2));
	range.entered = true;
	__mmu_notifier_invalidate_range_end(&range);
	ASSERT_TRUE(said("invalidate_range_end without a start", AT(1)));
	ASSERT_EQ(violations(&f), 1);

	/* a start left open: umm_validate finds it */
	mmu_notifier_range_init(&range, UMM_MMU_NOTIFY_UNMAP, f.mm, AT(2), AT(3));
	ASSERT_OK(__mmu_notifier_invalidate_range_start(&range));
	ASSERT_ERR(umm_validate(f.u, UMM_VALIDATE_EXACT, msg, sizeof(msg)), EUCLEAN);
	ASSERT_TRUE(strstr(msg, "never ended") != NULL);
	ASSERT_TRUE(said("invalidate_range_start without an end", AT(2)));
	__mmu_notifier_invalidate_range_end(&range);
	ASSERT_EQ(violations(&f), 2);
	ASSERT_TRUE(machine_valid(f.u));
	umm_mmu_notifier_unregister(&c.mn, f.mm);
	return fix_fini(&f);
}

/* ---- without the flag, every call is a no-op ---- */

static bool test_off_by_default(void)
{
	struct fix f;
	struct client c = { .mn.ops = &client_ops, .keep = true };

	ASSERT_TRUE(fix_init(&f));
	ASSERT_TRUE(map_pat(f.mm, AT(0), 4, RW, PRIV, 1));
	ASSERT_OK(umm_mmu_notifier_register(&c.mn, f.mm));
	umm_mmu_notifier_check_map(&c.mn, AT(0), frame_at(f.mm, AT(0)));
	ASSERT_OK(umm_munmap(f.mm, AT(0), PS));
	ASSERT_EQ(umm_mmu_notifier_checker_violations(f.u), 0);
	ASSERT_EQ(umm_mmu_notifier_checker_violations(NULL), 0);
	umm_mmu_notifier_unregister(&c.mn, f.mm);
	return fix_fini(&f);
}

int main(void)
{
	RUN_TEST(test_correct_client_quiet);
	RUN_TEST(test_kept_across_invalidation);
	RUN_TEST(test_establish_inside_invalidation);
	RUN_TEST(test_establish_stale_frame);
	RUN_TEST(test_interval_stale_seq);
	RUN_TEST(test_after_unregister_and_release);
	RUN_TEST(test_sleep_in_nonblockable);
	RUN_TEST(test_unpaired);
	RUN_TEST(test_off_by_default);
	return tap_done();
}
