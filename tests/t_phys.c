// SPDX-License-Identifier: MIT
/*
 * t_phys.c - the frame arena: concurrent allocation and freeing, free counts,
 * memory nodes, host memory given back (and kept with UMM_CONFIG_PREFAULT),
 * the leak check, and configuration errors.
 */
#include <pthread.h>

#include <umm/umm.h>

#include "tap.h"
#include "fixture.h"

#define MiB	(1024ULL * 1024)

/* ---- helpers ---- */

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Are the @n frame numbers all different?  (Sorts them.) */
static bool all_distinct(uint64_t *pfns, int n)
{
	qsort(pfns, n, sizeof(*pfns), cmp_u64);
	for (int i = 1; i < n; i++)
		ASSERT_NE(pfns[i], pfns[i - 1]);
	return true;
}

/* The process's resident shared memory (the arena is a shared memfd), bytes. */
static long long rss_shmem(void)
{
	char line[256];
	long long kb = -1;
	FILE *fp = fopen("/proc/self/status", "r");

	if (!fp)
		return -1;
	while (fgets(line, sizeof(line), fp))
		if (sscanf(line, "RssShmem: %lld kB", &kb) == 1)
			break;
	fclose(fp);
	return kb < 0 ? -1 : kb * 1024;
}

/* ---- concurrency ---- */

struct worker {
	pthread_t tid;
	struct umm *u;
	struct umm_mm *mm;	/* own mm, or NULL: create one per round */
	uint64_t base;
	int id, rounds, pages;
	int err;
};

/* Run @fn in a thread per worker, wait for all; none may report an error. */
static bool run_workers(struct worker *w, int n, void *(*fn)(void *))
{
	for (int i = 0; i < n; i++)
		ASSERT_EQ(pthread_create(&w[i].tid, NULL, fn, &w[i]), 0);
	for (int i = 0; i < n; i++)
		pthread_join(w[i].tid, NULL);
	for (int i = 0; i < n; i++) {
		if (w[i].err)
			TAP_DIAG("worker %d: %d (%s)", i, w[i].err, strerror(-w[i].err));
		ASSERT_EQ(w[i].err, 0);
	}
	return true;
}

/* Rounds of: (mm,) map, write, check, unmap (, exit). */
static void *worker_own_mm(void *arg)
{
	struct worker *w = arg;

	for (int r = 0; r < w->rounds && !w->err; r++) {
		struct umm_mm *mm;

		if ((w->err = umm_mm_create(w->u, &mm)))
			break;
		if ((w->err = map_at(mm, BASE, w->pages, RW, PRIV)) == 0) {
			if (!write_pat(mm, BASE, w->pages, w->id * 1000 + r))
				w->err = -EIO;
			else if (!check_pat(mm, BASE, w->pages, w->id * 1000 + r))
				w->err = -EILSEQ;
			/* Every other round: leave the pages to exit_mmap. */
			if (!w->err && (r & 1))
				w->err = umm_munmap(mm, BASE, PG(w->pages));
		}
		umm_mm_exit(mm);
	}
	return NULL;
}

static bool test_concurrent_mms_alloc_and_free(void)
{
	int nthreads = tap_short() ? 4 : 8;
	int rounds = tap_short() ? 6 : 60;
	struct worker w[8];
	struct umm_stat st0, st1;
	struct umm *u;

	ASSERT_OK(make_machine(32 * MiB, 1, 0, &u));
	st0 = ustat(u);
	for (int i = 0; i < nthreads; i++)
		w[i] = (struct worker){ .u = u, .id = i, .rounds = rounds, .pages = 256 };
	ASSERT_TRUE(run_workers(w, nthreads, worker_own_mm));
	st1 = ustat(u);
	ASSERT_GE(st1.pgalloc - st0.pgalloc, (uint64_t)nthreads * rounds * 256);
	ASSERT_EQ(st1.pgalloc - st0.pgalloc, st1.pgfree - st0.pgfree);
	ASSERT_EQ(st1.nr_free, st0.nr_free);
	ASSERT_EQ(st1.nr_mms, 0);
	return machine_done(u);
}

/* Threads fault disjoint pages of one mm. */
static void *worker_shared_mm(void *arg)
{
	struct worker *w = arg;

	if (!write_pat(w->mm, w->base, w->pages, w->id))
		w->err = -EIO;
	else if (!check_pat(w->mm, w->base, w->pages, w->id))
		w->err = -EILSEQ;
	return NULL;
}

static bool test_concurrent_faults_in_one_mm_get_distinct_frames(void)
{
	int nthreads = tap_short() ? 4 : 8, per = tap_short() ? 128 : 1024;
	int total = nthreads * per;
	struct worker w[8];
	struct umm_mm_stat ms;
	struct umm_stat st;
	struct umm_mm *mm;
	struct umm *u;
	uint64_t *pfns;

	ASSERT_OK(make_machine(64 * MiB, 1, 0, &u));
	ASSERT_OK(umm_mm_create(u, &mm));
	ASSERT_OK(map_at(mm, BASE, total, RW, PRIV));
	/* Interleave the threads' ranges so they share page tables. */
	for (int i = 0; i < nthreads; i++)
		w[i] = (struct worker){ .u = u, .mm = mm, .id = i + 1, .pages = per,
					.base = AT((uint64_t)i * per) };
	ASSERT_TRUE(run_workers(w, nthreads, worker_shared_mm));
	umm_mm_get_stat(mm, &ms);
	ASSERT_EQ(ms.rss_anon, total);
	st = ustat(u);
	pfns = calloc(total, sizeof(*pfns));
	ASSERT_TRUE(pfns != NULL);
	for (int i = 0; i < total; i++) {
		pfns[i] = pinfo(mm, AT(i)).pfn;
		ASSERT_TRUE(pfns[i] != 0 && pfns[i] < st.nr_frames);
	}
	ASSERT_TRUE(all_distinct(pfns, total));
	free(pfns);
	for (int i = 0; i < nthreads; i++)
		ASSERT_TRUE(check_pat(mm, w[i].base, per, w[i].id));
	ASSERT_TRUE(machine_valid(u));
	umm_mm_exit(mm);
	return machine_done(u);
}

/* ---- free counts ---- */

static bool test_nr_free_returns_after_munmap(void)
{
	struct umm_stat st0, st1;
	struct umm_mm *mm;
	struct umm *u;

	ASSERT_OK(make_machine(16 * MiB, 1, 0, &u));
	ASSERT_OK(umm_mm_create(u, &mm));
	st0 = ustat(u);
	ASSERT_EQ(st0.nr_frames, 16 * MiB / PS);
	ASSERT_TRUE(st0.nr_free < st0.nr_frames);	/* the zero frame is never free */
	ASSERT_GE(st0.nr_free, st0.nr_frames - 16);
	ASSERT_EQ(st0.nr_mms, 1);
	ASSERT_TRUE(map_pat(mm, BASE, 1000, RW, PRIV, 1));
	st1 = ustat(u);
	ASSERT_TRUE(st1.nr_free <= st0.nr_free - 1000);
	ASSERT_GE(st1.pgalloc - st0.pgalloc, 1000);
	ASSERT_OK(umm_munmap(mm, BASE, PG(1000)));
	st1 = ustat(u);
	ASSERT_EQ(st1.nr_free, st0.nr_free);
	ASSERT_TRUE(machine_valid(u));
	umm_mm_exit(mm);
	ASSERT_EQ(ustat(u).nr_mms, 0);
	ASSERT_EQ(ustat(u).nr_free, st0.nr_free);
	return machine_done(u);
}

/* ---- nodes ---- */

static bool test_two_nodes(void)
{
	const int n = 400;	/* more than one node's 256 frames */
	uint64_t pfns[400];
	struct umm_stat st;
	struct umm_mm *mm;
	struct umm *u;
	int low = 0, high = 0;

	ASSERT_OK(make_machine(2 * MiB, 2, 0, &u));
	st = ustat(u);
	ASSERT_EQ(st.nr_frames, 512);
	ASSERT_OK(umm_mm_create(u, &mm));
	ASSERT_TRUE(map_pat(mm, BASE, n, RW, PRIV, 1));
	for (int i = 0; i < n; i++) {
		pfns[i] = pinfo(mm, AT(i)).pfn;
		ASSERT_TRUE(pfns[i] != 0 && pfns[i] < st.nr_frames);
		if (pfns[i] < st.nr_frames / 2)
			low++;
		else
			high++;
	}
	TAP_DIAG("%d frames from the low half, %d from the high half", low, high);
	ASSERT_TRUE(low > 0 && high > 0);
	ASSERT_TRUE(all_distinct(pfns, n));
	ASSERT_TRUE(check_pat(mm, BASE, n, 1));
	ASSERT_TRUE(machine_valid(u));
	umm_mm_exit(mm);
	ASSERT_EQ(ustat(u).nr_free, st.nr_free);
	return machine_done(u);
}

static bool test_many_nodes_from_threads(void)
{
	int nthreads = 4, rounds = tap_short() ? 2 : 10;
	struct worker w[4];
	struct umm_stat st0;
	struct umm *u;

	ASSERT_OK(make_machine(8 * MiB, 4, 0, &u));
	st0 = ustat(u);
	for (int i = 0; i < nthreads; i++)
		w[i] = (struct worker){ .u = u, .id = i, .rounds = rounds, .pages = 400 };
	ASSERT_TRUE(run_workers(w, nthreads, worker_own_mm));
	ASSERT_EQ(ustat(u).nr_free, st0.nr_free);
	return machine_done(u);
}

/* ---- host memory ---- */

static bool test_host_memory_given_back(void)
{
	uint64_t phys = tap_short() ? 32 * MiB : 128 * MiB, len = phys / 2;
	uint64_t npages = len / PS;
	long long r0, r1, r2 = -1;
	struct umm_stat st0, st1;
	struct umm_mm *mm;
	struct umm *u;

	ASSERT_OK(make_machine(phys, 1, 0, &u));
	ASSERT_OK(umm_mm_create(u, &mm));
	r0 = rss_shmem();
	ASSERT_GE(r0, 0);
	st0 = ustat(u);
	ASSERT_TRUE(map_pat(mm, BASE, npages, RW, PRIV, 1));
	r1 = rss_shmem();
	TAP_DIAG("RssShmem %lld KiB -> %lld KiB after writing %" PRIu64 " KiB",
		 r0 / 1024, r1 / 1024, len / 1024);
	ASSERT_GE(r1 - r0, (long long)(len * 9 / 10));
	ASSERT_OK(umm_munmap(mm, BASE, len));
	for (int i = 0; i < 100; i++) {
		r2 = rss_shmem();
		if (r1 - r2 >= (long long)(len * 3 / 4))
			break;
		sleep_ms(20);
	}
	st1 = ustat(u);
	TAP_DIAG("RssShmem %lld KiB after munmap; nr_returned %" PRIu64 " -> %" PRIu64,
		 r2 / 1024, st0.nr_returned, st1.nr_returned);
	ASSERT_GE(r1 - r2, (long long)(len * 3 / 4));
	ASSERT_GE(st1.nr_returned - st0.nr_returned, npages * 3 / 4);
	ASSERT_TRUE(st1.nr_free_resident <= st1.nr_free);
	ASSERT_TRUE(st1.nr_free_resident < st1.nr_free - npages / 2);
	umm_mm_exit(mm);
	return machine_done(u);
}

static bool test_prefault_keeps_arena_resident(void)
{
	uint64_t phys = tap_short() ? 16 * MiB : 64 * MiB;
	long long r0, r1, r2, r3;
	struct umm_stat st;
	struct umm_mm *mm;
	struct umm *u;

	r0 = rss_shmem();
	ASSERT_GE(r0, 0);
	ASSERT_OK(make_machine(phys, 1, UMM_CONFIG_PREFAULT, &u));
	r1 = rss_shmem();
	TAP_DIAG("RssShmem %lld KiB -> %lld KiB for a %" PRIu64 " KiB prefaulted arena",
		 r0 / 1024, r1 / 1024, phys / 1024);
	ASSERT_GE(r1 - r0, (long long)(phys * 9 / 10));
	ASSERT_OK(umm_mm_create(u, &mm));
	ASSERT_TRUE(map_pat(mm, BASE, phys / 4 / PS, RW, PRIV, 1));
	ASSERT_OK(umm_munmap(mm, BASE, phys / 4));
	sleep_ms(200);
	r2 = rss_shmem();
	st = ustat(u);
	ASSERT_GE(r2 - r0, (long long)(phys * 9 / 10));
	ASSERT_EQ(st.nr_returned, 0);
	ASSERT_EQ(st.nr_free_resident, st.nr_free);
	umm_mm_exit(mm);
	umm_destroy(u);
	/* Destroying the machine gives the arena back. */
	r3 = rss_shmem();
	ASSERT_TRUE(r3 - r0 < (long long)(phys / 10));
	return true;
}

/* ---- the leak check ---- */

struct leaks {
	int n;
	uint64_t pfn[8];
};

static void on_leak(void *ctx, uint64_t pfn, int refcount, int mapcount, unsigned long flags)
{
	struct leaks *l = ctx;

	if (l->n < 8)
		l->pfn[l->n] = pfn;
	l->n++;
}

static bool test_leak_check_sees_held_reference(void)
{
	struct leaks l = { 0 };
	struct umm_page *pg;
	struct umm_stat st0;
	struct umm_mm *mm;
	struct umm *u;
	uint64_t pfn;

	ASSERT_OK(make_machine(4 * MiB, 1, 0, &u));
	ASSERT_OK(umm_mm_create(u, &mm));
	st0 = ustat(u);
	ASSERT_TRUE(map_pat(mm, BASE, 4, RW, PRIV, 1));
	ASSERT_OK(umm_get_user_page(mm, AT(2), UMM_GUP_WRITE, &pg));
	pfn = umm_page_pfn(pg);
	ASSERT_EQ(pfn, pinfo(mm, AT(2)).pfn);
	umm_mm_exit(mm);

	/* The mm is gone, the frame is not: the reference keeps it. */
	ASSERT_EQ(umm_leak_check(u, on_leak, &l), 1);
	ASSERT_EQ(l.n, 1);
	ASSERT_EQ(l.pfn[0], pfn);
	ASSERT_EQ(ustat(u).nr_free, st0.nr_free - 1);
	/* ... and still holds the data. */
	ASSERT_TRUE(page_is_pat(umm_page_address(pg), AT(2), 1));
	umm_put_page(pg);
	l.n = 0;
	ASSERT_EQ(umm_leak_check(u, on_leak, &l), 0);
	ASSERT_EQ(l.n, 0);
	ASSERT_EQ(ustat(u).nr_free, st0.nr_free);
	umm_destroy(u);
	return true;
}

/* ---- configuration ---- */

static bool test_config_defaults(void)
{
	struct umm_config cfg;
	struct umm_stat st;
	struct umm *u;

	memset(&cfg, 0xa5, sizeof(cfg));
	umm_config_init(&cfg);
	ASSERT_EQ(cfg.phys_bytes, 256 * MiB);
	ASSERT_EQ(cfg.nr_nodes, 1);
	ASSERT_TRUE(cfg.swap_path == NULL);
	ASSERT_EQ(cfg.swap_bytes, 0);
	ASSERT_EQ(cfg.flags, 0);
	ASSERT_OK(umm_create(&cfg, &u));
	st = ustat(u);
	ASSERT_EQ(st.nr_frames, 256 * MiB / PS);
	ASSERT_EQ(st.nr_mms, 0);
	ASSERT_EQ(st.pgfault, 0);
	umm_destroy(u);
	return true;
}

static bool test_config_smallest_machine(void)
{
	struct umm_mm *mm;
	struct umm *u;

	/* 16 frames per node is the least that works. */
	ASSERT_OK(make_machine(16 * PS, 1, 0, &u));
	ASSERT_EQ(ustat(u).nr_frames, 16);
	ASSERT_OK(umm_mm_create(u, &mm));
	ASSERT_TRUE(map_pat(mm, BASE, 1, RW, PRIV, 1));
	ASSERT_TRUE(check_pat(mm, BASE, 1, 1));
	umm_mm_exit(mm);
	umm_destroy(u);
	ASSERT_OK(make_machine(32 * PS, 2, 0, &u));
	umm_destroy(u);
	ASSERT_OK(make_machine(64 * 16 * PS, 64, 0, &u));
	ASSERT_EQ(ustat(u).nr_frames, 64 * 16);
	umm_destroy(u);
	return true;
}

static bool test_config_errors(void)
{
	struct umm *u;

	ASSERT_ERR(make_machine(4096, 1, 0, &u), EINVAL);
	ASSERT_ERR(make_machine(0, 1, 0, &u), EINVAL);
	ASSERT_ERR(make_machine(15 * PS, 1, 0, &u), EINVAL);
	ASSERT_ERR(make_machine(31 * PS, 2, 0, &u), EINVAL);	/* < 16 per node */
	ASSERT_ERR(make_machine(64 * MiB, 65, 0, &u), EINVAL);
	ASSERT_ERR(make_machine(64 * MiB, 100, 0, &u), EINVAL);
	ASSERT_ERR(make_machine(64 * MiB, 1, 0x80000000u, &u), EINVAL);
	ASSERT_ERR(make_machine(64 * MiB, 1, 0x100, &u), EINVAL);
	return true;
}

static bool test_config_zero_nodes(void)
{
	struct umm *u;
	int r;

	/*
	 * nr_nodes 0 in an otherwise valid config: either taken as one node or
	 * refused, never a crash or a machine without memory.
	 */
	r = make_machine(1 * MiB, 0, 0, &u);
	TAP_DIAG("nr_nodes 0: %d", r);
	if (r == 0) {
		struct umm_mm *mm;

		ASSERT_EQ(ustat(u).nr_frames, 256);
		ASSERT_OK(umm_mm_create(u, &mm));
		ASSERT_TRUE(map_pat(mm, BASE, 1, RW, PRIV, 1));
		umm_mm_exit(mm);
		umm_destroy(u);
	} else {
		ASSERT_EQ(r, -EINVAL);
	}
	return true;
}

int main(void)
{
	RUN_TEST(test_concurrent_mms_alloc_and_free);
	RUN_TEST(test_concurrent_faults_in_one_mm_get_distinct_frames);
	RUN_TEST(test_nr_free_returns_after_munmap);
	RUN_TEST(test_two_nodes);
	RUN_TEST(test_many_nodes_from_threads);
	RUN_TEST(test_host_memory_given_back);
	RUN_TEST(test_prefault_keeps_arena_resident);
	RUN_TEST(test_leak_check_sees_held_reference);
	RUN_TEST(test_config_defaults);
	RUN_TEST(test_config_smallest_machine);
	RUN_TEST(test_config_errors);
	RUN_TEST(test_config_zero_nodes);
	return tap_done();
}
