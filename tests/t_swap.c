/* SPDX-License-Identifier: MIT */
/*
 * t_swap.c - swap and reclaim, one scenario at a time, with Linux's
 * semantics as the reference:
 *
 *  - the swap file is a real file of swap_bytes at swap_path;
 *  - a working set four times physical memory can be written and read
 *    back whole (pages go to swap and come back);
 *  - MADV_PAGEOUT writes a range's anonymous pages to swap at once
 *    (pswpout, SWAPPED in pagemap, swap_ents, rss_anon), reading brings
 *    them back (pswpin); MADV_COLD puts a range first in line for reclaim,
 *    and from several threads at once leaves the LRU lists consistent;
 *  - mlocked pages (umm_mlock or MAP_LOCKED) never leave memory, and COLD
 *    and PAGEOUT over them are refused with -EINVAL, as madvise(2) says;
 *  - reclaim asks secondary MMUs whether a page was used (clear_flush_young
 *    when it decides, clear_young when it ages active pages) and invalidates their translations before a frame goes (the protocol
 *    checker is on in every machine here);
 *  - a page COW-shared by fork keeps one swap slot for both mms, swap-in by
 *    one is seen by the other, writes after fork stay private; a KSM page
 *    (one frame, four mappings) takes one slot too, and comes back read
 *    once but unshared (a copy per mapping, as Linux), for KSM to merge again;
 *  - munmap, MADV_DONTNEED and exit free the slots of swapped pages, and a
 *    page that loses its last mapping (COW, KSM merge) its swap cache slot;
 *  - reclaim writes dirty shared file pages back to their file and drops
 *    clean ones, without touching swap;
 *  - a swap-in I/O error gives -EIO to that access only and never maps
 *    anything in its place; a swap-out I/O error leaves the page in memory;
 *  - without swap, or with swap full, anonymous memory beyond the machine
 *    gets -ENOMEM and everything already written stays readable;
 *  - concurrent faults on swapped pages (and a fork among them) read each
 *    page from swap once, through the swap cache.
 *
 * Every test ends with umm_validate(EXACT|RMAP) (which checks swap counts
 * against swap PTEs), every slot free again and umm_leak_check() == 0.
 * Parts of the engine that do not exist yet (-ENOSYS) make the tests that
 * need them skip (swap_fixture.h).  UMM_SEED replays the random orders.
 */
#include <fcntl.h>
#include <pthread.h>

#include <umm/umm.h>

#include "tap.h"
#define FIX_VALIDATE	(UMM_VALIDATE_EXACT | UMM_VALIDATE_RMAP)
#include "swap_fixture.h"

static uint64_t seed;

#if defined(__SANITIZE_THREAD__)
#define UNDER_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define UNDER_TSAN 1
#endif
#endif
#ifndef UNDER_TSAN
#define UNDER_TSAN 0
#endif

/* How many of the @n pages at @addr have every bit of @flags in pagemap. */
static uint64_t nr_with(struct umm_mm *mm, uint64_t addr, uint64_t n, unsigned int flags)
{
	uint64_t c = 0;

	for (uint64_t p = 0; p < n; p++)
		if ((pinfo(mm, addr + PG(p)).flags & flags) == flags)
			c++;
	return c;
}

/*
 * Are all @n pages at @addr in state @want: UMM_PI_SWAPPED (swapped out,
 * not present) or UMM_PI_PRESENT (present, no swap entry)?
 */
static bool all_are(struct umm_mm *mm, uint64_t addr, uint64_t n, unsigned int want)
{
	unsigned int other = want == UMM_PI_SWAPPED ? UMM_PI_PRESENT : UMM_PI_SWAPPED;

	for (uint64_t p = 0; p < n; p++) {
		unsigned int fl = pinfo(mm, addr + PG(p)).flags;

		if (!(fl & want) || (fl & other)) {
			TAP_DIAG("page %#" PRIx64 ": pagemap flags %#x, want %s",
				 addr + PG(p), fl, want == UMM_PI_SWAPPED ? "SWAPPED" : "PRESENT");
			return false;
		}
	}
	return true;
}

#define all_swapped(mm, addr, n)	all_are(mm, addr, n, UMM_PI_SWAPPED)
#define all_present(mm, addr, n)	all_are(mm, addr, n, UMM_PI_PRESENT)

/*
 * umm_reclaim() in rounds until none of the @n pages at @addr is present
 * (aging may need a few passes: a young page is activated, not reclaimed,
 * the first time reclaim sees it).  Return: the rounds it took, or 0 if
 * 32 rounds were not enough.
 */
static int reclaim_until_gone(struct umm *u, struct umm_mm *mm, uint64_t addr, uint64_t n)
{
	for (int round = 1; round <= 32; round++) {
		unsigned long got = 0;
		int r = umm_reclaim(u, 4096, &got);

		if (r) {
			TAP_DIAG("umm_reclaim = %d", r);
			return 0;
		}
		if (nr_with(mm, addr, n, UMM_PI_PRESENT) == 0)
			return round;
	}
	TAP_DIAG("%" PRIu64 " of %" PRIu64 " pages at %#" PRIx64
		 " still present after 32 rounds of umm_reclaim",
		 nr_with(mm, addr, n, UMM_PI_PRESENT), n, addr);
	return 0;
}

/* ---- the swap file ---- */

static bool test_swapfile_created(void)
{
	const size_t swap = 2 << 20;
	struct umm_vmscan_stat vs;
	struct stat st;
	struct fix f;

	NEED(swap);
	ASSERT_TRUE(swap_fix_init(&f, 4 << 20, swap));
	ASSERT_OK(stat(tmp_path("swap"), &st));
	ASSERT_TRUE(S_ISREG(st.st_mode));
	ASSERT_EQ(st.st_size, swap);
	vs = vstat(f.u);
	/* Linux keeps the first page for the header; either way, nothing in use */
	ASSERT_TRUE(vs.swap_slots == swap / PS || vs.swap_slots == swap / PS - 1);
	ASSERT_EQ(vs.swap_free, vs.swap_slots);
	ASSERT_EQ(vs.pswpin, 0);
	ASSERT_EQ(vs.pswpout, 0);
	ASSERT_TRUE(swap_fix_fini(&f));

	/* a swap file where none can be made: umm_create fails and makes nothing */
	struct umm_config cfg;
	struct umm *u = NULL;

	umm_config_init(&cfg);
	cfg.phys_bytes = 4 << 20;
	cfg.swap_path = tmp_path("no-such-dir/swap");
	cfg.swap_bytes = swap;
	ASSERT_TRUE(umm_create(&cfg, &u) < 0);
	ASSERT_TRUE(u == NULL);
	return true;
}

/* ---- a working set four times physical memory ---- */

static bool test_overcommit(void)
{
	const uint64_t n = 1024;		/* 4 MiB of pages, 1 MiB of frames */
	uint64_t order[1024], rs = seed ^ 0x5a5a;
	struct umm_vmscan_stat vs;
	struct umm_mm_stat ms;
	struct fix f;

	NEED(swap);
	ASSERT_TRUE(swap_fix_init(&f, 1 << 20, 8 << 20));
	ASSERT_TRUE(map_pat(f.mm, BASE, n, RW, PRIV, 1));
	vs = vstat(f.u);
	ASSERT_GE(vs.pswpout, n - ustat(f.u).nr_frames);
	ASSERT_TRUE(settled_valid(f.u));

	/* sequential, then random order (each page once) */
	ASSERT_TRUE(check_pat(f.mm, BASE, n, 1));
	for (uint64_t i = 0; i < n; i++)
		order[i] = i;
	for (uint64_t i = n - 1; i > 0; i--) {
		uint64_t j = tap_rand(&rs) % (i + 1), t = order[i];

		order[i] = order[j];
		order[j] = t;
	}
	for (uint64_t i = 0; i < n; i++)
		ASSERT_TRUE(check_pat(f.mm, AT(order[i]), 1, 1));
	vs = vstat(f.u);
	ASSERT_GE(vs.pswpin, n - ustat(f.u).nr_frames);
	/* one snapshot, once kswapd is idle: it may be moving pages to swap */
	machine_settle(f.u);
	ms = mstat(f.mm);
	ASSERT_EQ(ms.rss_anon + ms.swap_ents, n);

	/* rewrite half in random order, read everything back */
	for (uint64_t i = 0; i < n / 2; i++)
		ASSERT_TRUE(write_pat(f.mm, AT(order[i]), 1, 2));
	for (uint64_t i = 0; i < n; i++)
		ASSERT_TRUE(check_pat(f.mm, AT(order[i]), 1, i < n / 2 ? 2 : 1));
	ASSERT_TRUE(settled_valid(f.u));
	return swap_fix_fini(&f);
}

/*
 * The same with threads: each writes and reads back its own working set,
 * together four times a small machine's memory, with swap to spare.
 * Reclaim by one thread (or kswapd) must not make another's allocation
 * fail: no -ENOMEM while swap has room.
 */
#define OC_THREADS	3
#define OC_PAGES	96		/* per thread; the machine has 64 frames */

struct oc {
	struct umm_mm *mm;
	unsigned int id;
	char err[128];
};

static void *oc_thread(void *arg)
{
	struct oc *o = arg;
	uint64_t base = AT(o->id * 1024), w[PS / 8];

	for (int round = 0; round < 3 && !o->err[0]; round++) {
		for (uint64_t p = 0; p < OC_PAGES; p++) {
			pat_fill(w, base + PG(p), round);
			ssize_t r = umm_write(o->mm, base + PG(p), w, PS);
			if (r != PS) {
				snprintf(o->err, sizeof(o->err), "round %d: write of page %" PRIu64
					 " = %zd", round, p, r);
				break;
			}
		}
		for (uint64_t p = 0; p < OC_PAGES && !o->err[0]; p++) {
			ssize_t r = umm_read(o->mm, base + PG(p), w, PS);
			if (r != PS || !page_is_pat(w, base + PG(p), round))
				snprintf(o->err, sizeof(o->err), "round %d: read of page %" PRIu64
					 " = %zd%s", round, p, r, r == PS ? ", wrong bytes" : "");
		}
	}
	return NULL;
}

static bool test_overcommit_threads(void)
{
	struct oc o[OC_THREADS];
	pthread_t th[OC_THREADS];
	struct umm_vmscan_stat vs;
	struct fix f;
	bool ok = true;

	NEED(swap);
	ASSERT_TRUE(swap_fix_init(&f, 64 * PS, 4 << 20));
	for (unsigned int i = 0; i < OC_THREADS; i++) {
		o[i] = (struct oc){ .mm = f.mm, .id = i };
		ASSERT_OK(map_at(f.mm, AT(i * 1024), OC_PAGES, RW, PRIV));
	}
	for (unsigned int i = 0; i < OC_THREADS; i++)
		ASSERT_EQ(pthread_create(&th[i], NULL, oc_thread, &o[i]), 0);
	for (unsigned int i = 0; i < OC_THREADS; i++) {
		pthread_join(th[i], NULL);
		if (o[i].err[0]) {
			TAP_DIAG("thread %u: %s", i, o[i].err);
			ok = false;
		}
	}
	vs = vstat(f.u);
	TAP_DIAG("pswpout %" PRIu64 " pswpin %" PRIu64 " direct_reclaims %" PRIu64
		 " swap_free %" PRIu64 " of %" PRIu64, vs.pswpout, vs.pswpin,
		 vs.direct_reclaims, vs.swap_free, vs.swap_slots);
	ASSERT_TRUE(ok);
	return swap_fix_fini(&f);
}

/*
 * umm_validate() on a machine whose only activity is its own kswapd: the
 * test's threads are quiet, so the check must hold whatever kswapd is doing
 * (it is the engine's to keep its own thread out of the census).  The
 * other tests wait for kswapd to settle first; this one does not.
 */
static bool test_validate_kswapd_busy(void)
{
	struct fix f;
	int fails = 0;
	char msg[256];

	NEED(swap);
	if (UNDER_TSAN) {
		/* a census racing kswapd is a data race TSan stops the whole
		 * program for; the normal and ASan builds carry this test */
		skip_reason = "under TSan a failure would stop every later test";
		return true;
	}
	ASSERT_TRUE(swap_fix_init(&f, 1 << 20, 8 << 20));
	for (int round = 0; round < 4; round++) {
		/* a fresh burst of pressure, then validate at once, repeatedly */
		ASSERT_TRUE(map_pat(f.mm, AT(round * 512), 512, RW, PRIV, round));
		for (int i = 0; i < 8; i++) {
			msg[0] = 0;
			if (umm_validate(f.u, VALIDATE_ALL, msg, sizeof(msg))) {
				if (!fails)
					TAP_DIAG("umm_validate while kswapd works: %s", msg);
				fails++;
			}
		}
	}
	TAP_DIAG("%d of 32 validations failed", fails);
	ASSERT_EQ(fails, 0);
	return swap_fix_fini(&f);
}

/* ---- MADV_PAGEOUT and MADV_COLD ---- */

static bool test_pageout(void)
{
	struct umm_vmscan_stat v0, v1;
	struct fix f;

	NEED(swap);
	ASSERT_TRUE(swap_fix_init(&f, 16 << 20, 4 << 20));
	ASSERT_TRUE(map_pat(f.mm, BASE, 64, RW, PRIV, 1));
	ASSERT_TRUE(all_present(f.mm, BASE, 64));
	ASSERT_EQ(mstat(f.mm).rss_anon, 64);
	v0 = vstat(f.u);

	/*   AAAAAAAA  pages 16..47 go out, the rest stay */
	ASSERT_OK(umm_madvise(f.mm, AT(16), PG(32), UMM_MADV_PAGEOUT));
	v1 = vstat(f.u);
	ASSERT_EQ(v1.pswpout - v0.pswpout, 32);
	ASSERT_EQ(v0.swap_free - v1.swap_free, 32);
	ASSERT_TRUE(all_present(f.mm, BASE, 16));
	ASSERT_TRUE(all_swapped(f.mm, AT(16), 32));
	ASSERT_TRUE(all_present(f.mm, AT(48), 16));
	ASSERT_EQ(mstat(f.mm).swap_ents, 32);
	ASSERT_EQ(mstat(f.mm).rss_anon, 32);
	ASSERT_TRUE(settled_valid(f.u));

	/* reading brings them back: each page read from swap exactly once */
	ASSERT_TRUE(check_pat(f.mm, BASE, 64, 1));
	v1 = vstat(f.u);
	ASSERT_EQ(v1.pswpin - v0.pswpin, 32);
	ASSERT_TRUE(all_present(f.mm, BASE, 64));
	ASSERT_EQ(mstat(f.mm).swap_ents, 0);
	ASSERT_EQ(mstat(f.mm).rss_anon, 64);
	ASSERT_TRUE(settled_valid(f.u));

	/* out and in again after writing: the new bytes, not the old slot's */
	ASSERT_TRUE(write_pat(f.mm, AT(16), 32, 2));
	ASSERT_OK(umm_madvise(f.mm, BASE, PG(64), UMM_MADV_PAGEOUT));
	ASSERT_TRUE(all_swapped(f.mm, BASE, 64));
	ASSERT_EQ(mstat(f.mm).swap_ents, 64);
	ASSERT_TRUE(check_pat(f.mm, BASE, 16, 1));
	ASSERT_TRUE(check_pat(f.mm, AT(16), 32, 2));
	ASSERT_TRUE(check_pat(f.mm, AT(48), 16, 1));

	/* PAGEOUT over a hole: -ENOMEM, as madvise(2) */
	ASSERT_ERR(umm_madvise(f.mm, AT(60), PG(8), UMM_MADV_PAGEOUT), ENOMEM);
	return swap_fix_fini(&f);
}

/*
 * MADV_COLD: the advised pages go first.  B is written first and A last, so
 * without the advice reclaim would pick B (older); after COLD on A, A is
 * what reclaim takes.
 */
static bool test_cold_goes_first(void)
{
	const uint64_t A = AT(0), B = AT(64);
	unsigned long got = 0;
	struct fix f;

	NEED(swap);
	ASSERT_TRUE(swap_fix_init(&f, 16 << 20, 4 << 20));
	ASSERT_TRUE(map_pat(f.mm, B, 32, RW, PRIV, 2));
	ASSERT_TRUE(map_pat(f.mm, A, 32, RW, PRIV, 1));
	ASSERT_OK(umm_madvise(f.mm, A, PG(32), UMM_MADV_COLD));
	/* advice only: nothing leaves yet */
	ASSERT_TRUE(all_present(f.mm, A, 32));
	ASSERT_EQ(vstat(f.u).pswpout, 0);
	ASSERT_OK(umm_reclaim(f.u, 32, &got));
	uint64_t a = nr_with(f.mm, A, 32, UMM_PI_SWAPPED);
	uint64_t b = nr_with(f.mm, B, 32, UMM_PI_SWAPPED);
	TAP_DIAG("reclaimed %lu: %" PRIu64 " cold pages and %" PRIu64 " others swapped", got,
		 a, b);
	ASSERT_TRUE(got > 0);
	ASSERT_TRUE(a > b);
	ASSERT_TRUE(check_pat(f.mm, A, 32, 1));
	ASSERT_TRUE(check_pat(f.mm, B, 32, 2));
	return swap_fix_fini(&f);
}

/*
 * MADV_COLD from several threads over the same pages: each call takes the
 * pages off their LRU list and puts them back, maybe on another CPU's
 * list, while the others do the same.  The lists and their counters must
 * still agree (umm_validate checks), and nothing leaves memory.
 */
#define COLD_THREADS	3

static void *cold_thread(void *arg)
{
	struct umm_mm *mm = arg;
	int loops = tap_short() ? 500 : 5000;

	for (int i = 0; i < loops; i++)
		if (umm_madvise(mm, BASE, PG(64), UMM_MADV_COLD))
			return (void *)1;
	return NULL;
}

static bool test_cold_concurrent(void)
{
	pthread_t th[COLD_THREADS];
	struct fix f;
	void *ret;

	NEED(swap);
	ASSERT_TRUE(swap_fix_init(&f, 16 << 20, 4 << 20));
	ASSERT_TRUE(map_pat(f.mm, BASE, 64, RW, PRIV, 1));
	for (int i = 0; i < COLD_THREADS; i++)
		ASSERT_EQ(pthread_create(&th[i], NULL, cold_thread, f.mm), 0);
	for (int i = 0; i < COLD_THREADS; i++) {
		pthread_join(th[i], &ret);
		ASSERT_TRUE(ret == NULL);
	}
	ASSERT_TRUE(settled_valid(f.u));
	ASSERT_TRUE(all_present(f.mm, BASE, 64));
	ASSERT_TRUE(check_pat(f.mm, BASE, 64, 1));
	return swap_fix_fini(&f);
}

/* ---- mlock ---- */

static bool test_mlock_stays(void)
{
	struct fix f;

	NEED(swap);
	ASSERT_TRUE(swap_fix_init(&f, 16 << 20, 4 << 20));
	/* AAAAAAAA BBBBBBBB: A plain, then half of it mlocked; B MAP_LOCKED */
	ASSERT_TRUE(map_pat(f.mm, AT(0), 16, RW, PRIV, 1));
	ASSERT_OK(umm_mlock(f.mm, AT(4), PG(8)));
	ASSERT_TRUE(map_pat(f.mm, AT(32), 8, RW, PRIV | UMM_MAP_LOCKED, 2));
	ASSERT_EQ(mstat(f.mm).locked_vm, 16);

	/* madvise(2): COLD and PAGEOUT refuse mlocked memory, and touch nothing */
	ASSERT_ERR(umm_madvise(f.mm, AT(0), PG(16), UMM_MADV_PAGEOUT), EINVAL);
	ASSERT_ERR(umm_madvise(f.mm, AT(32), PG(8), UMM_MADV_PAGEOUT), EINVAL);
	ASSERT_ERR(umm_madvise(f.mm, AT(32), PG(8), UMM_MADV_COLD), EINVAL);
	ASSERT_TRUE(all_present(f.mm, AT(0), 16));
	ASSERT_EQ(vstat(f.u).pswpout, 0);
	ASSERT_OK(umm_madvise(f.mm, AT(0), PG(4), UMM_MADV_PAGEOUT));
	ASSERT_OK(umm_madvise(f.mm, AT(12), PG(4), UMM_MADV_PAGEOUT));
	ASSERT_TRUE(all_swapped(f.mm, AT(0), 4));
	ASSERT_TRUE(all_present(f.mm, AT(4), 8));
	ASSERT_EQ(nr_with(f.mm, AT(4), 8, UMM_PI_MLOCKED), 8);
	ASSERT_TRUE(all_swapped(f.mm, AT(12), 4));
	ASSERT_TRUE(all_present(f.mm, AT(32), 8));
	ASSERT_EQ(nr_with(f.mm, AT(32), 8, UMM_PI_MLOCKED), 8);

	/* all the reclaim one can ask for: still there, and (at the latest once
	 * reclaim has seen them) on the unevictable list */
	unsigned long got = 0;
	for (int i = 0; i < 4; i++)
		ASSERT_OK(umm_reclaim(f.u, 4096, &got));
	ASSERT_GE(vstat(f.u).nr_unevictable, 16);
	ASSERT_TRUE(all_present(f.mm, AT(4), 8));
	ASSERT_TRUE(all_present(f.mm, AT(32), 8));
	ASSERT_TRUE(settled_valid(f.u));

	/* munlock makes them evictable again */
	ASSERT_OK(umm_munlock(f.mm, AT(4), PG(8)));
	ASSERT_OK(umm_madvise(f.mm, AT(4), PG(8), UMM_MADV_PAGEOUT));
	ASSERT_TRUE(all_swapped(f.mm, AT(4), 8));

	/* mlock of swapped pages brings them in (populate) and keeps them */
	ASSERT_OK(umm_mlock(f.mm, AT(0), PG(16)));
	ASSERT_TRUE(all_present(f.mm, AT(0), 16));
	ASSERT_TRUE(check_pat(f.mm, AT(0), 16, 1));
	ASSERT_TRUE(check_pat(f.mm, AT(32), 8, 2));
	return swap_fix_fini(&f);
}

/* ---- a secondary MMU under reclaim ---- */

/*
 * A device caches the translations of A and B and keeps using A (its
 * clear_flush_young and clear_young say so).  Reclaim must ask it
 * (page_referenced and the ageing's page_clear_young reach secondary
 * MMUs), take B, keep A, and invalidate B in the
 * device before B's frames go; MADV_PAGEOUT ignores references and takes
 * A too.  The protocol checker sees every cached translation dropped in
 * time.
 */
static bool test_reclaim_secondary_mmu(void)
{
	const uint64_t A = AT(0), B = AT(16);
	struct smmu s;
	struct fix f;
	int round;

	NEED(swap);
	NEED(reclaim);
	ASSERT_TRUE(swap_fix_init(&f, 16 << 20, 4 << 20));
	ASSERT_TRUE(map_pat(f.mm, A, 32, RW, PRIV, 1));
	ASSERT_TRUE(smmu_init(&s, f.mm, A, 32));
	s.young_start = A;
	s.young_end = B;
	ASSERT_TRUE(smmu_fill(&s, f.mm));

	for (round = 0; round < 64 && nr_with(f.mm, B, 16, UMM_PI_SWAPPED) < 16; round++) {
		unsigned long got;

		ASSERT_OK(umm_reclaim(f.u, 8, &got));
	}
	TAP_DIAG("%d rounds of umm_reclaim(8); clear_flush_young %lu, clear_young %lu times",
		 round, s.flush_young_calls, s.clear_young_calls);
	ASSERT_TRUE(all_swapped(f.mm, B, 16));
	ASSERT_TRUE(all_present(f.mm, A, 16));
	/* the eviction decision asks with a flush, the ageing of active pages without */
	ASSERT_TRUE(s.flush_young_calls > 0);
	ASSERT_TRUE(s.clear_young_calls > 0);
	ASSERT_EQ(smmu_cached(&s), 16);			/* A's, still valid */
	ASSERT_EQ(s.starts, s.ends);
	ASSERT_EQ(umm_mmu_notifier_checker_violations(f.u), 0);

	ASSERT_OK(umm_madvise(f.mm, A, PG(16), UMM_MADV_PAGEOUT));
	ASSERT_TRUE(all_swapped(f.mm, A, 16));
	ASSERT_EQ(smmu_cached(&s), 0);
	ASSERT_EQ(umm_mmu_notifier_checker_violations(f.u), 0);
	ASSERT_TRUE(check_pat(f.mm, A, 32, 1));
	ASSERT_TRUE(smmu_fill(&s, f.mm));
	ASSERT_TRUE(settled_valid(f.u));
	smmu_fini(&s, f.mm);
	return swap_fix_fini(&f);
}

/* ---- fork: one slot for a COW-shared page ---- */

static bool test_fork_one_slot(void)
{
	struct umm_vmscan_stat v0, v1;
	struct umm_mm *child;
	struct fix f;

	NEED(swap);
	NEED(reclaim);
	ASSERT_TRUE(swap_fix_init(&f, 16 << 20, 4 << 20));
	ASSERT_TRUE(map_pat(f.mm, BASE, 16, RW, PRIV, 1));
	ASSERT_OK(umm_mm_fork(f.mm, &child));
	v0 = vstat(f.u);

	/* the pages are mapped by both: MADV_PAGEOUT leaves them (as Linux);
	 * reclaim takes them */
	ASSERT_TRUE(reclaim_until_gone(f.u, f.mm, BASE, 16) > 0);
	ASSERT_TRUE(all_swapped(f.mm, BASE, 16));
	ASSERT_TRUE(all_swapped(child, BASE, 16));
	v1 = vstat(f.u);
	ASSERT_EQ(v1.pswpout - v0.pswpout, 16);
	ASSERT_EQ(v0.swap_free - v1.swap_free, 16);
	ASSERT_EQ(mstat(f.mm).swap_ents, 16);
	ASSERT_EQ(mstat(child).swap_ents, 16);
	ASSERT_TRUE(settled_valid(f.u));

	/* the child brings them in; the parent finds them in the swap cache */
	ASSERT_TRUE(check_pat(child, BASE, 16, 1));
	ASSERT_TRUE(check_pat(f.mm, BASE, 16, 1));
	v1 = vstat(f.u);
	ASSERT_EQ(v1.pswpin - v0.pswpin, 16);
	for (int p = 0; p < 16; p++)
		ASSERT_EQ(pinfo(f.mm, AT(p)).pfn, pinfo(child, AT(p)).pfn);
	ASSERT_TRUE(settled_valid(f.u));

	/* writes stay private, swapped or not */
	ASSERT_TRUE(write_pat(f.mm, AT(0), 4, 2));
	ASSERT_TRUE(write_pat(child, AT(4), 4, 3));
	ASSERT_TRUE(reclaim_until_gone(f.u, f.mm, BASE, 16) > 0);
	ASSERT_TRUE(check_pat(f.mm, AT(0), 4, 2));
	ASSERT_TRUE(check_pat(f.mm, AT(4), 12, 1));
	ASSERT_TRUE(check_pat(child, AT(0), 4, 1));
	ASSERT_TRUE(check_pat(child, AT(4), 4, 3));
	ASSERT_TRUE(check_pat(child, AT(8), 8, 1));
	ASSERT_TRUE(settled_valid(f.u));

	/* the child's exit leaves the parent's slots alone */
	ASSERT_TRUE(reclaim_until_gone(f.u, f.mm, BASE, 16) > 0);
	umm_mm_exit(child);
	ASSERT_TRUE(settled_valid(f.u));
	ASSERT_TRUE(check_pat(f.mm, AT(0), 4, 2));
	ASSERT_TRUE(check_pat(f.mm, AT(4), 12, 1));
	return swap_fix_fini(&f);
}

/*
 * KSM pages go to swap through rmap_walk_ksm: one merged frame mapped four
 * times takes one slot; swapped in, the bytes are back in every mapping,
 * read from swap once, each mapping with a copy of its own (sharing is
 * broken, as Linux's ksm_might_need_to_copy breaks it), which KSM merges
 * again.
 */
static bool test_ksm_swap(void)
{
	struct umm_vmscan_stat v0, v1;
	struct umm_ksm_stats ks;
	uint8_t buf[PS];
	struct fix f;

	NEED(swap);
	NEED(reclaim);
	NEED(ksm);
	ASSERT_TRUE(swap_fix_init(&f, 16 << 20, 4 << 20));
	ASSERT_OK(map_at(f.mm, BASE, 4, RW, PRIV));
	ASSERT_OK(umm_madvise(f.mm, BASE, PG(4), UMM_MADV_MERGEABLE));
	memset(buf, 0x3c, PS);
	for (int p = 0; p < 4; p++)
		ASSERT_EQ(umm_write(f.mm, AT(p), buf, PS), PS);
	for (int i = 0; i < 64 && nr_with(f.mm, BASE, 4, UMM_PI_KSM) < 4; i++)
		ASSERT_TRUE(umm_ksm_scan(f.u, 64) >= 0);
	ASSERT_EQ(nr_with(f.mm, BASE, 4, UMM_PI_KSM), 4);
	umm_ksm_get_stats(f.u, &ks);
	ASSERT_EQ(ks.pages_shared, 1);
	v0 = vstat(f.u);

	ASSERT_TRUE(reclaim_until_gone(f.u, f.mm, BASE, 4) > 0);
	ASSERT_TRUE(all_swapped(f.mm, BASE, 4));
	v1 = vstat(f.u);
	ASSERT_EQ(v1.pswpout - v0.pswpout, 1);
	ASSERT_EQ(v0.swap_free - v1.swap_free, 1);
	ASSERT_EQ(mstat(f.mm).swap_ents, 4);
	ASSERT_TRUE(settled_valid(f.u));

	for (int p = 0; p < 4; p++) {
		uint8_t got[PS];

		ASSERT_EQ(umm_read(f.mm, AT(p), got, PS), PS);
		ASSERT_TRUE(memcmp(got, buf, PS) == 0);
	}
	ASSERT_EQ(vstat(f.u).pswpin - v0.pswpin, 1);
	/* read from swap once, but no longer shared: each mapping has its own copy */
	ASSERT_EQ(nr_with(f.mm, BASE, 4, UMM_PI_KSM), 0);
	for (int p = 0; p < 4; p++)
		for (int q = p + 1; q < 4; q++)
			ASSERT_NE(pinfo(f.mm, AT(p)).pfn, pinfo(f.mm, AT(q)).pfn);
	ASSERT_EQ(mstat(f.mm).swap_ents, 0);
	ASSERT_TRUE(settled_valid(f.u));
	/* and KSM merges them again */
	for (int i = 0; i < 64 && nr_with(f.mm, BASE, 4, UMM_PI_KSM) < 4; i++)
		ASSERT_TRUE(umm_ksm_scan(f.u, 64) >= 0);
	ASSERT_EQ(nr_with(f.mm, BASE, 4, UMM_PI_KSM), 4);
	umm_ksm_get_stats(f.u, &ks);
	ASSERT_EQ(ks.pages_shared, 1);
	ASSERT_EQ(ks.pages_sharing, 3);
	ASSERT_TRUE(settled_valid(f.u));
	/* a write to one mapping stays there */
	ASSERT_TRUE(put_byte(f.mm, AT(2), 0x11));
	ASSERT_EQ(byte_at(f.mm, AT(1)), 0x3c);
	ASSERT_EQ(byte_at(f.mm, AT(2)), 0x11);
	return swap_fix_fini(&f);
}

/*
 * Many forks of one page set: still one slot per page (the count says how
 * many PTEs name it), and the slots come back only when the last mm that
 * maps them exits, in whatever order the mms go.
 */
static bool test_fork_tree_one_slot(void)
{
	struct umm_mm *mms[9];
	uint64_t rs = seed ^ 0x7777, free0;
	struct fix f;
	int n = 1;

	NEED(swap);
	NEED(reclaim);
	ASSERT_TRUE(swap_fix_init(&f, 16 << 20, 4 << 20));
	ASSERT_TRUE(map_pat(f.mm, BASE, 8, RW, PRIV, 1));
	mms[0] = f.mm;
	for (; n < 9; n++)
		ASSERT_OK(umm_mm_fork(mms[tap_rand(&rs) % n], &mms[n]));
	free0 = vstat(f.u).swap_free;
	ASSERT_TRUE(reclaim_until_gone(f.u, f.mm, BASE, 8) > 0);
	for (int i = 0; i < n; i++) {
		ASSERT_TRUE(all_swapped(mms[i], BASE, 8));
		ASSERT_EQ(mstat(mms[i]).swap_ents, 8);
	}
	ASSERT_EQ(free0 - vstat(f.u).swap_free, 8);
	ASSERT_TRUE(settled_valid(f.u));

	/* exits in a random order; the parent's too (f.mm goes last or not) */
	for (int left = n; left > 0; left--) {
		int i = tap_rand(&rs) % left;
		struct umm_mm *mm = mms[i];

		ASSERT_TRUE(check_pat(mm, BASE, 8, 1));
		ASSERT_TRUE(reclaim_until_gone(f.u, mm, BASE, 8) > 0);
		mms[i] = mms[left - 1];
		if (mm == f.mm)
			f.mm = NULL;
		umm_mm_exit(mm);
		if (left > 1)
			ASSERT_EQ(free0 - vstat(f.u).swap_free, 8);
		ASSERT_TRUE(settled_valid(f.u));
	}
	return swap_fix_fini(&f);
}

/*
 * Swap entries move with their PTEs: mremap of a swapped range, mprotect
 * over it, a fork of it; every page then reads what was written, from
 * the new place, and writes honour the new protection.
 */
static bool test_mremap_swapped(void)
{
	uint64_t out = 0;
	struct umm_mm *child;
	struct fix f;

	NEED(swap);
	ASSERT_TRUE(swap_fix_init(&f, 16 << 20, 4 << 20));
	ASSERT_TRUE(map_pat(f.mm, AT(0), 8, RW, PRIV, 1));
	ASSERT_OK(umm_madvise(f.mm, AT(0), PG(8), UMM_MADV_PAGEOUT));
	ASSERT_TRUE(all_swapped(f.mm, AT(0), 8));

	/* AAAAAAAA -> (hole) ... AAAAAAAA at 64 */
	ASSERT_OK(umm_mremap(f.mm, AT(0), PG(8), PG(8), UMM_MREMAP_MAYMOVE | UMM_MREMAP_FIXED,
			     AT(64), &out));
	ASSERT_EQ(out, AT(64));
	ASSERT_TRUE(all_swapped(f.mm, AT(64), 8));
	ASSERT_EQ(mstat(f.mm).swap_ents, 8);
	ASSERT_TRUE(settled_valid(f.u));

	ASSERT_OK(umm_mprotect(f.mm, AT(64), PG(8), RO));
	ASSERT_OK(umm_mm_fork(f.mm, &child));
	ASSERT_EQ(write_byte(f.mm, AT(64), 1), -EFAULT);
	ASSERT_TRUE(pat_at(f.mm, AT(64), AT(0), 8, 1));
	ASSERT_TRUE(pat_at(child, AT(64), AT(0), 8, 1));
	ASSERT_OK(umm_mprotect(f.mm, AT(64), PG(8), RW));
	ASSERT_TRUE(put_byte(f.mm, AT(65), 0x42));
	ASSERT_TRUE(pat_at(child, AT(65), AT(1), 1, 1));
	ASSERT_TRUE(settled_valid(f.u));
	umm_mm_exit(child);
	return swap_fix_fini(&f);
}

/* ---- slots freed by munmap, DONTNEED and exit ---- */

static bool test_unmap_frees_slots(void)
{
	struct umm_vmscan_stat v0;
	struct fix f;

	NEED(swap);
	ASSERT_TRUE(swap_fix_init(&f, 16 << 20, 4 << 20));
	ASSERT_TRUE(map_pat(f.mm, BASE, 32, RW, PRIV, 1));
	ASSERT_OK(umm_madvise(f.mm, BASE, PG(32), UMM_MADV_PAGEOUT));
	ASSERT_TRUE(all_swapped(f.mm, BASE, 32));
	v0 = vstat(f.u);

	ASSERT_OK(umm_munmap(f.mm, AT(0), PG(8)));
	ASSERT_EQ(vstat(f.u).swap_free - v0.swap_free, 8);
	ASSERT_EQ(mstat(f.mm).swap_ents, 24);

	ASSERT_OK(umm_madvise(f.mm, AT(8), PG(8), UMM_MADV_DONTNEED));
	ASSERT_EQ(vstat(f.u).swap_free - v0.swap_free, 16);
	ASSERT_EQ(mstat(f.mm).swap_ents, 16);
	ASSERT_TRUE(zeros_at(f.mm, AT(8), 8));
	ASSERT_TRUE(settled_valid(f.u));

	/* exit frees the rest (swap_fix_fini checks) */
	ASSERT_TRUE(check_pat(f.mm, AT(16), 8, 1));
	return swap_fix_fini(&f);
}

/*
 * A page read back from swap keeps its copy there (the slot) while it is
 * only read.  When a write copies it instead of reusing it (a GUP
 * reference makes it look shared) its last mapping goes, and so must its
 * slot: nothing names it any more (Linux's free_swap_cache in
 * wp_page_copy).
 */
static bool test_cow_frees_swap_cache(void)
{
	struct umm_vmscan_stat v0, v1;
	struct umm_page *pin;
	uint64_t pfn;
	struct fix f;

	NEED(swap);
	ASSERT_TRUE(swap_fix_init(&f, 16 << 20, 4 << 20));
	ASSERT_TRUE(map_pat(f.mm, BASE, 1, RW, PRIV, 1));
	v0 = vstat(f.u);
	ASSERT_OK(umm_madvise(f.mm, BASE, PS, UMM_MADV_PAGEOUT));
	ASSERT_TRUE(check_pat(f.mm, BASE, 1, 1));		/* read: the slot stays */
	v1 = vstat(f.u);
	ASSERT_EQ(v0.swap_free - v1.swap_free, 1);
	ASSERT_EQ(v1.nr_swapcache, 1);
	pfn = pinfo(f.mm, BASE).pfn;

	ASSERT_OK(umm_get_user_page(f.mm, BASE, 0, &pin));
	ASSERT_TRUE(write_pat(f.mm, BASE, 1, 2));		/* copied: the pin holds the old */
	ASSERT_NE(pinfo(f.mm, BASE).pfn, pfn);
	v1 = vstat(f.u);
	ASSERT_EQ(v1.nr_swapcache, 0);
	ASSERT_EQ(v1.swap_free, v0.swap_free);
	ASSERT_TRUE(page_is_pat(umm_page_address(pin), BASE, 1));
	umm_put_page(pin);
	ASSERT_TRUE(check_pat(f.mm, BASE, 1, 2));
	return swap_fix_fini(&f);
}

/* ---- file pages: written back, dropped, read again ---- */

static bool test_file_reclaim(void)
{
	uint64_t w[PS / 8], want[PS / 8];
	struct umm_vmscan_stat v0, v1;
	struct umm_file *file;
	struct fix f;
	int fd;

	NEED(swap);
	NEED(reclaim);
	ASSERT_TRUE(swap_fix_init(&f, 16 << 20, 4 << 20));
	fd = open(tmp_path("file"), O_RDWR | O_CREAT | O_TRUNC, 0644);
	ASSERT_TRUE(fd >= 0);
	for (int p = 0; p < 16; p++) {
		pat_fill(w, AT(p), 1);
		ASSERT_EQ(pwrite(fd, w, PS, PG(p)), PS);
	}
	ASSERT_OK(umm_file_open(f.u, tmp_path("file"), O_RDWR, &file));
	ASSERT_OK(map_file(f.mm, BASE, 16, RW, UMM_MAP_SHARED, file, 0));
	ASSERT_TRUE(write_pat(f.mm, AT(0), 8, 2));	/* dirty */
	ASSERT_TRUE(check_pat(f.mm, AT(8), 8, 1));	/* clean */
	ASSERT_EQ(mstat(f.mm).rss_file, 16);
	v0 = vstat(f.u);

	ASSERT_TRUE(reclaim_until_gone(f.u, f.mm, BASE, 16) > 0);
	v1 = vstat(f.u);
	ASSERT_GE(v1.pgwriteback - v0.pgwriteback, 8);
	ASSERT_EQ(v1.pswpout, v0.pswpout);		/* file pages never go to swap */
	ASSERT_EQ(v1.swap_free, v1.swap_slots);
	ASSERT_EQ(nr_with(f.mm, BASE, 16, UMM_PI_SWAPPED), 0);
	ASSERT_EQ(mstat(f.mm).rss_file, 0);
	ASSERT_TRUE(settled_valid(f.u));

	/* the file has the dirty pages' new bytes, the clean pages' old ones */
	for (int p = 0; p < 16; p++) {
		ASSERT_EQ(pread(fd, w, PS, PG(p)), PS);
		pat_fill(want, AT(p), p < 8 ? 2 : 1);
		if (memcmp(w, want, PS))
			TAP_DIAG("file page %d does not hold tag %d", p, p < 8 ? 2 : 1);
		ASSERT_TRUE(memcmp(w, want, PS) == 0);
	}

	/* and reading through the mapping brings them back */
	ASSERT_TRUE(check_pat(f.mm, AT(0), 8, 2));
	ASSERT_TRUE(check_pat(f.mm, AT(8), 8, 1));
	ASSERT_EQ(mstat(f.mm).rss_file, 16);
	ASSERT_OK(umm_munmap(f.mm, BASE, PG(16)));
	umm_file_put(file);
	close(fd);
	return swap_fix_fini(&f);
}

/* ---- swap I/O errors ---- */

static bool test_swap_read_eio(void)
{
	uint8_t buf[2 * PS];
	struct fix f;

	NEED(swap);
	NEED(inject);
	ASSERT_TRUE(swap_fix_init(&f, 16 << 20, 4 << 20));
	ASSERT_TRUE(map_pat(f.mm, BASE, 8, RW, PRIV, 1));

	/* page 3 alone in swap, so that no readahead can take the one failure */
	ASSERT_OK(umm_madvise(f.mm, AT(3), PG(1), UMM_MADV_PAGEOUT));
	ASSERT_TRUE(all_swapped(f.mm, AT(3), 1));
	ASSERT_OK(umm_fault_inject(f.u, UMM_FAULT_SWAP_READ, 1000000, 1));
	ASSERT_EQ(umm_read(f.mm, AT(3), buf, PS), -EIO);
	ASSERT_EQ(umm_fault_injected(f.u, UMM_FAULT_SWAP_READ), 1);
	ASSERT_EQ(vstat(f.u).swap_read_errors, 1);
	/* nothing was mapped in its place, the other pages are untouched */
	ASSERT_TRUE(all_swapped(f.mm, AT(3), 1));
	ASSERT_TRUE(check_pat(f.mm, AT(0), 3, 1));
	ASSERT_TRUE(check_pat(f.mm, AT(4), 4, 1));
	ASSERT_TRUE(settled_valid(f.u));
	/* the injection is spent: the next read gets the bytes */
	ASSERT_TRUE(check_pat(f.mm, AT(3), 1, 1));

	/* a read across a present page and a failing one stops at the failure */
	ASSERT_OK(umm_madvise(f.mm, AT(5), PG(1), UMM_MADV_PAGEOUT));
	ASSERT_TRUE(all_swapped(f.mm, AT(5), 1));
	ASSERT_OK(umm_fault_inject(f.u, UMM_FAULT_SWAP_READ, 1000000, 1));
	ASSERT_EQ(umm_read(f.mm, AT(4), buf, 2 * PS), PS);
	ASSERT_TRUE(page_is_pat(buf, AT(4), 1));
	ASSERT_TRUE(check_pat(f.mm, AT(4), 2, 1));

	/* a write that needs a failing swap-in fails and writes nothing */
	ASSERT_OK(umm_madvise(f.mm, AT(6), PG(1), UMM_MADV_PAGEOUT));
	ASSERT_TRUE(all_swapped(f.mm, AT(6), 1));
	ASSERT_OK(umm_fault_inject(f.u, UMM_FAULT_SWAP_READ, 1000000, 1));
	ASSERT_EQ(write_byte(f.mm, AT(6) + 10, 0x5a), -EIO);
	ASSERT_TRUE(check_pat(f.mm, AT(6), 1, 1));
	ASSERT_EQ(umm_fault_injected(f.u, UMM_FAULT_SWAP_READ), 3);
	ASSERT_OK(umm_fault_inject(f.u, UMM_FAULT_SWAP_READ, 0, 0));
	ASSERT_TRUE(check_pat(f.mm, BASE, 8, 1));
	return swap_fix_fini(&f);
}

static bool test_swap_write_error(void)
{
	struct umm_vmscan_stat v0;
	struct fix f;

	NEED(swap);
	NEED(inject);
	ASSERT_TRUE(swap_fix_init(&f, 16 << 20, 4 << 20));
	ASSERT_TRUE(map_pat(f.mm, BASE, 8, RW, PRIV, 1));
	ASSERT_OK(umm_fault_inject(f.u, UMM_FAULT_SWAP_WRITE, 1000000, -1));
	v0 = vstat(f.u);
	ASSERT_OK(umm_madvise(f.mm, BASE, PG(8), UMM_MADV_PAGEOUT));
	ASSERT_GE(umm_fault_injected(f.u, UMM_FAULT_SWAP_WRITE), 1);
	ASSERT_GE(vstat(f.u).swap_write_errors, 1);
	/* the data stayed in memory: read back without any swap-in */
	ASSERT_TRUE(check_pat(f.mm, BASE, 8, 1));
	ASSERT_EQ(vstat(f.u).pswpin, v0.pswpin);
	ASSERT_TRUE(settled_valid(f.u));

	/* the device heals: the next pageout works */
	ASSERT_OK(umm_fault_inject(f.u, UMM_FAULT_SWAP_WRITE, 0, 0));
	ASSERT_OK(umm_madvise(f.mm, BASE, PG(8), UMM_MADV_PAGEOUT));
	ASSERT_TRUE(all_swapped(f.mm, BASE, 8));
	ASSERT_TRUE(check_pat(f.mm, BASE, 8, 1));
	return swap_fix_fini(&f);
}

/* ---- running out ---- */

/*
 * Write the @n pages at @addr in order until one fails.  Return: how many
 * succeeded; *@err gets the failing write's return (0 if none failed).
 */
static uint64_t write_until_fail(struct umm_mm *mm, uint64_t addr, uint64_t n, uint64_t tag,
				 long *err)
{
	uint64_t w[PS / 8];

	*err = 0;
	for (uint64_t p = 0; p < n; p++) {
		pat_fill(w, addr + PG(p), tag);
		ssize_t r = umm_write(mm, addr + PG(p), w, PS);
		if (r != PS) {
			*err = r;
			return p;
		}
	}
	return n;
}

/*
 * Fill a machine of 256 frames with @swap bytes of swap until a write gets
 * -ENOMEM.  With memory and swap both full even the read of a swapped page
 * needs a frame nobody can give (Linux would OOM-kill here), so a quarter
 * is given back first; then every page left reads what was written and
 * new memory works again.
 */
static bool run_out(size_t swap)
{
	const uint64_t n = 2048;
	uint64_t ok, nr_frames;
	struct fix f;
	long err;

	ASSERT_TRUE(swap_fix_init(&f, 1 << 20, swap));
	nr_frames = ustat(f.u).nr_frames;
	ASSERT_OK(map_at(f.mm, BASE, n, RW, PRIV));
	ok = write_until_fail(f.mm, BASE, n, 1, &err);
	TAP_DIAG("swap %zu KiB: %" PRIu64 " pages written (%" PRIu64 " frames), then %ld",
		 swap >> 10, ok, nr_frames, err);
	ASSERT_EQ(err, -ENOMEM);
	ASSERT_TRUE(ok < n);
	if (swap)
		ASSERT_TRUE(ok > nr_frames);	/* swap held some */
	else
		ASSERT_GE(ok, nr_frames / 2);
	ASSERT_TRUE(settled_valid(f.u));

	ASSERT_OK(umm_munmap(f.mm, BASE, PG(ok / 4)));
	ASSERT_TRUE(check_pat(f.mm, AT(ok / 4), ok - ok / 4, 1));
	ASSERT_TRUE(settled_valid(f.u));
	ASSERT_TRUE(map_pat(f.mm, AT(n), ok / 8, RW, PRIV, 2));
	ASSERT_TRUE(check_pat(f.mm, AT(ok / 4), ok - ok / 4, 1));
	ASSERT_TRUE(check_pat(f.mm, AT(n), ok / 8, 2));
	if (swap)
		return swap_fix_fini(&f);
	return settled_fini(&f);
}

static bool test_no_swap_enomem(void)
{
	return run_out(0);
}

static bool test_swap_full_enomem(void)
{
	NEED(swap);
	return run_out(512 << 10);
}

/* ---- concurrent swap-ins, and a fork among them ---- */

#define CONC_PAGES	64
#define CONC_READERS	3

struct conc {
	struct umm_mm *mm;
	unsigned int id;
	bool ok;
};

static void *conc_reader(void *arg)
{
	struct conc *c = arg;
	uint64_t w[PS / 8];

	c->ok = true;
	for (unsigned int i = 0; i < CONC_PAGES; i++) {
		/* each reader its own order: forward, backward, strided */
		unsigned int p = c->id == 0 ? i : c->id == 1 ? CONC_PAGES - 1 - i :
				 (i * 7) % CONC_PAGES;

		if (umm_read(c->mm, AT(p), w, PS) != PS || !page_is_pat(w, AT(p), 1)) {
			c->ok = false;
			break;
		}
	}
	return NULL;
}

static void *conc_forker(void *arg)
{
	struct conc *c = arg;
	struct umm_mm *child;

	c->ok = umm_mm_fork(c->mm, &child) == 0;
	if (!c->ok)
		return NULL;
	struct conc in_child = { .mm = child, .id = 2 };
	conc_reader(&in_child);
	c->ok = in_child.ok;
	umm_mm_exit(child);
	return NULL;
}

static bool test_concurrent_swapin(void)
{
	struct conc c[CONC_READERS + 1];
	pthread_t th[CONC_READERS + 1];
	struct umm_vmscan_stat v0;
	struct fix f;

	NEED(swap);
	ASSERT_TRUE(swap_fix_init(&f, 16 << 20, 4 << 20));
	ASSERT_TRUE(map_pat(f.mm, BASE, CONC_PAGES, RW, PRIV, 1));
	ASSERT_OK(umm_madvise(f.mm, BASE, PG(CONC_PAGES), UMM_MADV_PAGEOUT));
	ASSERT_TRUE(all_swapped(f.mm, BASE, CONC_PAGES));
	v0 = vstat(f.u);
	for (unsigned int i = 0; i <= CONC_READERS; i++) {
		c[i] = (struct conc){ .mm = f.mm, .id = i };
		ASSERT_EQ(pthread_create(&th[i], NULL,
					 i < CONC_READERS ? conc_reader : conc_forker, &c[i]), 0);
	}
	for (unsigned int i = 0; i <= CONC_READERS; i++) {
		pthread_join(th[i], NULL);
		if (!c[i].ok)
			TAP_DIAG("%s %u read a wrong page", i < CONC_READERS ? "reader" : "forker",
				 i);
		ASSERT_TRUE(c[i].ok);
	}
	/* the swap cache made every page come from the file once */
	ASSERT_EQ(vstat(f.u).pswpin - v0.pswpin, CONC_PAGES);
	ASSERT_TRUE(check_pat(f.mm, BASE, CONC_PAGES, 1));
	return swap_fix_fini(&f);
}

int main(void)
{
	seed = tap_seed();
	if (!tmp_init("swap")) {
		printf("1..0 # SKIP cannot make a temporary directory\n");
		return 0;
	}
	probe_engine();
	RUN_TEST_CAPS(test_swapfile_created);
	RUN_TEST_CAPS(test_overcommit);
	RUN_TEST_CAPS(test_overcommit_threads);
	RUN_TEST_CAPS(test_validate_kswapd_busy);
	RUN_TEST_CAPS(test_pageout);
	RUN_TEST_CAPS(test_cold_goes_first);
	RUN_TEST_CAPS(test_cold_concurrent);
	RUN_TEST_CAPS(test_mlock_stays);
	RUN_TEST_CAPS(test_reclaim_secondary_mmu);
	RUN_TEST_CAPS(test_fork_one_slot);
	RUN_TEST_CAPS(test_fork_tree_one_slot);
	RUN_TEST_CAPS(test_ksm_swap);
	RUN_TEST_CAPS(test_mremap_swapped);
	RUN_TEST_CAPS(test_unmap_frees_slots);
	RUN_TEST_CAPS(test_cow_frees_swap_cache);
	RUN_TEST_CAPS(test_file_reclaim);
	RUN_TEST_CAPS(test_swap_read_eio);
	RUN_TEST_CAPS(test_swap_write_error);
	RUN_TEST_CAPS(test_no_swap_enomem);
	RUN_TEST_CAPS(test_swap_full_enomem);
	RUN_TEST_CAPS(test_concurrent_swapin);
	tmp_cleanup();
	return tap_done();
}
