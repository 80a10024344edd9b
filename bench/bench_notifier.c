/* SPDX-License-Identifier: MIT */
/*
 * bench_notifier.c - what MMU notifiers cost, and what a secondary MMU buys.
 *
 * (1) ns per invalidate_range_start/end pair with 0, 1, 4, 16 and 64
 *     subscribers whose start and end only count, measured on the engine's
 *     own entry points (mmu_notifier_range_init + mmu_notifier_invalidate_
 *     range_start/end from src/internal.h): the cleanest measure of a pair.
 *     With 0 subscribers the pair is the inline test of
 *     mm->notifier_subscriptions; the "added" column subtracts an empty
 *     loop that does the same range_init and compiler barrier, so what is
 *     left is what every PTE path pays without a subscriber.  Target: added
 *     cost <= 2 ns at 0 subscribers, < 500 ns per pair at 16.
 * (2) The same on real paths, end to end: MADV_DONTNEED of one touched page
 *     (a write fault + the DONTNEED per iteration) and an mprotect RO/RW
 *     toggle of one touched page, with 0 and 16 subscribers.
 * (3) Interval notifiers: one start/end pair over a page that hits exactly
 *     one interval, with 1, 1 000 and 100 000 one-page intervals inserted
 *     (umm_mmu_interval_notifier_insert).  Target < 1 us at 100 000.
 *     "n/a" while the engine answers -ENOSYS.
 * (4) The shadow client (clients/shadow.c): vCPU 8-byte reads and writes at
 *     random guest addresses over a populated region (256 MiB, --quick
 *     32 MiB) against umm_read/umm_write of the same addresses and a plain
 *     host-memory access (the floor), 1 and 2 threads; ns/op is wall time
 *     over all threads' ops, so perfect scaling halves it.
 *
 * Each figure is the median of --reps batches.  Nothing is asserted on
 * time; what is checked: the subscribers saw every start and end, the
 * interval callbacks ran once per pair, the vCPU reads return what the
 * CPU path wrote, umm_validate passes and nothing leaks.  A failed check
 * marks the figure FAILED and the exit status 1.
 *
 * Usage: bench_notifier [--quick] [--json] [--reps N]
 */
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/mman.h>

#include "internal.h"

#define BENCH_NAME "bench_notifier"
#include "bench_common.h"

#include "shadow.h"

#define MiB		((uint64_t)1 << 20)
#define GUEST_BASE	0x100000000ULL
#define MAX_SUBS	64
#define HOT_BYTES	(256 << 10)	/* the cache-resident working set */
#define barrier()	__asm__ __volatile__("" ::: "memory")

static const int nr_subs_list[] = { 0, 1, 4, 16, 64 };
#define NR_SUB_COUNTS	(int)(sizeof(nr_subs_list) / sizeof(nr_subs_list[0]))
static const long nr_intervals_list[] = { 1, 1000, 100000 };
#define NR_INTERVAL_COUNTS (int)(sizeof(nr_intervals_list) / sizeof(nr_intervals_list[0]))

static struct {
	int reps;
	bool quick, json;
} opt = { .reps = 7 };

static struct {
	double empty_ns;			/* the loop without the pair */
	double pair_ns[NR_SUB_COUNTS];
	bool pair_ok[NR_SUB_COUNTS];
	double dontneed_ns[2], mprotect_ns[2];	/* 0 and 16 subscribers */
	bool path_ok;
	double interval_ns[NR_INTERVAL_COUNTS];	/* NAN: n/a */
	bool interval_ok[NR_INTERVAL_COUNTS];
	uint64_t guest_mib;
	/* [hot][threads - 1][read/write] */
	double vcpu_ns[2][2][2], umm_ns[2][2][2], host_ns[2][2][2];
	bool access_ok;
} res;

static double median_of(double *v, int n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return median_sorted(v, n);
}

/* ---- subscribers that only count ---- */

struct counting_sub {
	struct umm_mmu_notifier mn;
	unsigned long starts, ends;
};

static int count_start(struct umm_mmu_notifier *mn, const struct umm_mmu_notifier_range *r)
{
	container_of(mn, struct counting_sub, mn)->starts++;
	return 0;
}

static void count_end(struct umm_mmu_notifier *mn, const struct umm_mmu_notifier_range *r)
{
	container_of(mn, struct counting_sub, mn)->ends++;
}

static const struct umm_mmu_notifier_ops counting_ops = {
	.invalidate_range_start = count_start,
	.invalidate_range_end = count_end,
};

static struct counting_sub subs[MAX_SUBS];

static bool register_subs(struct umm_mm *mm, int n)
{
	for (int i = 0; i < n; i++) {
		memset(&subs[i], 0, sizeof(subs[i]));
		subs[i].mn.ops = &counting_ops;
		if (umm_mmu_notifier_register(&subs[i].mn, mm)) {
			fail_msg("umm_mmu_notifier_register failed");
			return false;
		}
	}
	return true;
}

static void unregister_subs(struct umm_mm *mm, int n)
{
	for (int i = 0; i < n; i++)
		umm_mmu_notifier_unregister(&subs[i].mn, mm);
}

/* Every subscriber saw @want starts and as many ends. */
static void check_subs(int n, unsigned long want)
{
	for (int i = 0; i < n; i++)
		if (subs[i].starts != want || subs[i].ends != want)
			fail_msg("subscriber %d saw %lu starts, %lu ends; %lu pairs were sent", i,
				 subs[i].starts, subs[i].ends, want);
}

static struct umm *new_machine(size_t bytes)
{
	struct umm_config cfg;
	struct umm *u;

	umm_config_init(&cfg);
	cfg.phys_bytes = bytes;
	if (umm_create(&cfg, &u)) {
		fprintf(stderr, BENCH_NAME ": umm_create(%zu MiB) failed\n", bytes >> 20);
		exit(1);
	}
	umm_set_log(u, umm_log_cb, NULL);
	return u;
}

/* Validate, exit @mm, check for leaks, destroy. */
static void machine_done(struct umm *u, struct umm_mm *mm)
{
	char msg[256] = "";

	if (umm_validate(u, UMM_VALIDATE_EXACT, msg, sizeof(msg)))
		fail_msg("umm_validate: %s", msg);
	umm_mm_exit(mm);
	if (umm_leak_check(u, NULL, NULL))
		fail_msg("frames leaked");
	umm_destroy(u);
}

/* ---- (1) the pair ---- */

#define PAIR_ITERS 200000

static double time_pairs(struct umm_mm *mm, bool pair, long iters)
{
	struct mmu_notifier_range range;
	uint64_t t0 = now_ns();

	for (long i = 0; i < iters; i++) {
		mmu_notifier_range_init(&range, UMM_MMU_NOTIFY_CLEAR, mm, GUEST_BASE,
					GUEST_BASE + UMM_PAGE_SIZE);
		if (pair) {
			mmu_notifier_invalidate_range_start(&range);
			mmu_notifier_invalidate_range_end(&range);
		}
		barrier();
	}
	return (double)(now_ns() - t0) / iters;
}

static void bench_pairs(void)
{
	long iters = opt.quick ? PAIR_ITERS / 10 : PAIR_ITERS;
	double v[64];

	for (int k = 0; k < NR_SUB_COUNTS; k++) {
		struct umm *u = new_machine(16 * MiB);
		int n = nr_subs_list[k];
		long it = n >= 16 ? iters / 8 : iters;
		struct umm_mm *mm;

		cur_ok = true;
		if (umm_mm_create(u, &mm))
			exit(1);
		/* 0: an mm that never had a subscriber, the path every mm takes */
		if (!register_subs(mm, n))
			break;
		time_pairs(mm, true, it / 10);	/* warm-up */
		for (int r = 0; r < opt.reps; r++)
			v[r] = time_pairs(mm, true, it);
		res.pair_ns[k] = median_of(v, opt.reps);
		if (n == 0) {
			for (int r = 0; r < opt.reps; r++)
				v[r] = time_pairs(mm, false, it);
			res.empty_ns = median_of(v, opt.reps);
		}
		check_subs(n, it / 10 + (unsigned long)it * opt.reps);
		unregister_subs(mm, n);
		machine_done(u, mm);
		res.pair_ok[k] = cur_ok;
		if (!cur_ok)
			nr_failed++;
	}
}

/* ---- (2) real paths ---- */

#define PATH_ITERS 20000

static double time_dontneed(struct umm_mm *mm, long iters)
{
	uint64_t t0 = now_ns();
	char b = 1;

	for (long i = 0; i < iters; i++) {
		if (umm_write(mm, GUEST_BASE, &b, 1) != 1 ||
		    umm_madvise(mm, GUEST_BASE, UMM_PAGE_SIZE, UMM_MADV_DONTNEED)) {
			fail_msg("write + DONTNEED failed");
			break;
		}
	}
	return (double)(now_ns() - t0) / iters;
}

static double time_mprotect(struct umm_mm *mm, long iters)
{
	uint64_t t0 = now_ns();

	for (long i = 0; i < iters; i++) {
		if (umm_mprotect(mm, GUEST_BASE, UMM_PAGE_SIZE,
				 i & 1 ? UMM_PROT_READ | UMM_PROT_WRITE : UMM_PROT_READ)) {
			fail_msg("mprotect failed");
			break;
		}
	}
	return (double)(now_ns() - t0) / iters;
}

static void bench_paths(void)
{
	long iters = opt.quick ? PATH_ITERS / 10 : PATH_ITERS;
	double v[64];

	cur_ok = true;
	for (int k = 0; k < 2; k++) {
		struct umm *u = new_machine(16 * MiB);
		int n = k ? 16 : 0;
		struct umm_mm *mm;
		uint64_t out;
		char b = 1;

		if (umm_mm_create(u, &mm) ||
		    umm_mmap(mm, GUEST_BASE, 2 * UMM_PAGE_SIZE, UMM_PROT_READ | UMM_PROT_WRITE,
			     UMM_MAP_PRIVATE | UMM_MAP_ANONYMOUS | UMM_MAP_FIXED, NULL, 0, &out))
			exit(1);
		if (!register_subs(mm, n))
			break;
		time_dontneed(mm, iters / 10);
		for (int r = 0; r < opt.reps; r++)
			v[r] = time_dontneed(mm, iters);
		res.dontneed_ns[k] = median_of(v, opt.reps);
		/* one touched page, then toggles; the second page keeps the VMAs apart */
		if (umm_write(mm, GUEST_BASE, &b, 1) != 1)
			fail_msg("write failed");
		time_mprotect(mm, iters / 10);
		for (int r = 0; r < opt.reps; r++)
			v[r] = time_mprotect(mm, iters);
		res.mprotect_ns[k] = median_of(v, opt.reps);
		/* every DONTNEED and every mprotect of a present page sent one pair */
		for (int i = 0; i < n; i++)
			if (subs[i].starts != subs[i].ends || subs[i].starts < (unsigned long)iters)
				fail_msg("subscriber %d: %lu starts, %lu ends", i, subs[i].starts,
					 subs[i].ends);
		unregister_subs(mm, n);
		machine_done(u, mm);
	}
	res.path_ok = cur_ok;
	if (!cur_ok)
		nr_failed++;
}

/* ---- (3) interval notifiers ---- */

struct ival {
	struct umm_mmu_interval_notifier mni;
	unsigned long hits;
};

static bool ival_invalidate(struct umm_mmu_interval_notifier *mni,
			    const struct umm_mmu_notifier_range *range, unsigned long cur_seq)
{
	umm_mmu_interval_set_seq(mni, cur_seq);
	container_of(mni, struct ival, mni)->hits++;
	return true;
}

static const struct umm_mmu_interval_notifier_ops ival_ops = {
	.invalidate = ival_invalidate,
};

static void bench_intervals(void)
{
	long iters = opt.quick ? 20000 : 200000;
	double v[64];

	for (int k = 0; k < NR_INTERVAL_COUNTS; k++) {
		res.interval_ns[k] = NAN;
		res.interval_ok[k] = true;
	}
	for (int k = 0; k < NR_INTERVAL_COUNTS; k++) {
		long n = nr_intervals_list[k], done = 0;
		struct umm *u = new_machine(16 * MiB);
		struct ival *iv = calloc(n, sizeof(*iv));
		struct mmu_notifier_range range;
		struct umm_mm *mm;
		uint64_t target;
		int err = 0;

		cur_ok = true;
		if (!iv || umm_mm_create(u, &mm))
			exit(1);
		/* one-page intervals, one page apart: the target is in the middle */
		for (; done < n; done++) {
			err = umm_mmu_interval_notifier_insert(&iv[done].mni, mm,
							       GUEST_BASE + done * 2 * UMM_PAGE_SIZE,
							       UMM_PAGE_SIZE, &ival_ops);
			if (err)
				break;
		}
		if (!err) {
			struct ival *hit = &iv[n / 2];

			target = GUEST_BASE + (n / 2) * 2 * UMM_PAGE_SIZE;
			for (int r = -1; r < opt.reps; r++) {
				uint64_t t0 = now_ns();

				for (long i = 0; i < iters; i++) {
					mmu_notifier_range_init(&range, UMM_MMU_NOTIFY_CLEAR, mm,
								target, target + UMM_PAGE_SIZE);
					mmu_notifier_invalidate_range_start(&range);
					mmu_notifier_invalidate_range_end(&range);
				}
				if (r >= 0)
					v[r] = (double)(now_ns() - t0) / iters;
			}
			res.interval_ns[k] = median_of(v, opt.reps);
			if (hit->hits != (unsigned long)iters * (opt.reps + 1))
				fail_msg("the hit interval was called %lu times for %ld pairs",
					 hit->hits, iters * (opt.reps + 1));
			for (long i = 0; i < n; i++)
				if (&iv[i] != hit && iv[i].hits)
					fail_msg("interval %ld outside the range was called", i);
		} else if (err != -ENOSYS) {
			fail_msg("umm_mmu_interval_notifier_insert: %d", err);
		}
		for (long i = 0; i < done; i++)
			umm_mmu_interval_notifier_remove(&iv[i].mni);
		machine_done(u, mm);
		free(iv);
		res.interval_ok[k] = cur_ok;
		if (!cur_ok)
			nr_failed++;
		if (err == -ENOSYS)
			break;
	}
}

/* ---- (4) the shadow client's accesses ---- */

enum acc_kind { A_VCPU, A_UMM, A_HOST };

struct access_run {
	enum acc_kind kind;
	bool write;
	struct umm_mm *mm;
	struct shadow_vcpu *vcpu;
	char *host;
	uint64_t words, seed;
	long ops;
	uint64_t sum;
	double secs;
	pthread_barrier_t *go;
};

static void *access_thread(void *arg)
{
	struct access_run *a = arg;
	uint64_t rnd = a->seed, sum = 0, t0;
	long ops = opt.quick ? 100000 : 500000;

	pthread_barrier_wait(a->go);
	t0 = now_ns();
	for (long i = 0; i < ops; i++) {
		uint64_t off = (xorshift64(&rnd) % a->words) * 8, v = off;

		switch (a->kind) {
		case A_VCPU:
			if (a->write)
				shadow_vcpu_write(a->vcpu, GUEST_BASE + off, &v, 8);
			else
				shadow_vcpu_read(a->vcpu, GUEST_BASE + off, &v, 8);
			break;
		case A_UMM:
			if (a->write)
				umm_write(a->mm, GUEST_BASE + off, &v, 8);
			else
				umm_read(a->mm, GUEST_BASE + off, &v, 8);
			break;
		default:
			if (a->write)
				memcpy(a->host + off, &v, 8);
			else
				memcpy(&v, a->host + off, 8);
			barrier();
			break;
		}
		sum += v;
	}
	a->secs = (now_ns() - t0) / 1e9;
	a->ops = ops;
	a->sum = sum;
	return NULL;
}

/* ns per op over all @threads threads of @kind. */
static double run_access(enum acc_kind kind, bool write, int threads, struct umm_mm *mm,
			 struct shadow_vm *vm, char *host, uint64_t words)
{
	struct access_run a[2];
	pthread_barrier_t go;
	pthread_t th[2];
	double secs = 0;
	long ops = 0;

	pthread_barrier_init(&go, NULL, threads);
	for (int t = 0; t < threads; t++) {
		a[t] = (struct access_run){ kind, write, mm, NULL, host, words,
					    0x9e3779b97f4a7c15ULL * (t + 1), 0, 0, 0, &go };
		if (kind == A_VCPU && shadow_vcpu_create(vm, &a[t].vcpu))
			exit(1);
		pthread_create(&th[t], NULL, access_thread, &a[t]);
	}
	for (int t = 0; t < threads; t++) {
		pthread_join(th[t], NULL);
		secs = a[t].secs > secs ? a[t].secs : secs;
		ops += a[t].ops;
		shadow_vcpu_destroy(a[t].vcpu);
	}
	pthread_barrier_destroy(&go);
	return secs * 1e9 / ops;
}

static void bench_access(void)
{
	uint64_t bytes = (opt.quick ? 32 : 256) * MiB, words = bytes / 8, out;
	struct umm *u = new_machine(bytes + 64 * MiB);
	struct shadow_stats st;
	struct shadow_vcpu *vcpu;
	struct shadow_vm *vm;
	struct umm_mm *mm;
	char *host;
	double v[64];

	cur_ok = true;
	res.guest_mib = bytes / MiB;
	/* 4 KiB pages like the arena's, so the floor pays the same host TLB misses */
	host = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (host == MAP_FAILED || madvise(host, bytes, MADV_NOHUGEPAGE) ||
	    umm_mm_create(u, &mm) ||
	    umm_mmap(mm, GUEST_BASE, bytes, UMM_PROT_READ | UMM_PROT_WRITE,
		     UMM_MAP_PRIVATE | UMM_MAP_ANONYMOUS | UMM_MAP_FIXED | UMM_MAP_POPULATE, NULL,
		     0, &out) ||
	    shadow_vm_create(mm, GUEST_BASE, bytes, &vm) || shadow_vcpu_create(vm, &vcpu)) {
		fprintf(stderr, BENCH_NAME ": setting up the guest failed\n");
		exit(1);
	}
	/* warm-up: the CPU path writes a tag in every page, the vCPU reads it back */
	for (uint64_t off = 0; off < bytes; off += UMM_PAGE_SIZE) {
		uint64_t tag = off ^ 0x5a5a, got = 0;

		memset(host + off, 0, UMM_PAGE_SIZE);
		if (umm_write(mm, GUEST_BASE + off, &tag, 8) != 8 ||
		    shadow_vcpu_write(vcpu, GUEST_BASE + off + 8, &tag, 8) != 8 ||
		    shadow_vcpu_read(vcpu, GUEST_BASE + off, &got, 8) != 8 || got != tag) {
			fail_msg("guest page %#" PRIx64 ": the vCPU read %#" PRIx64, off, got);
			break;
		}
	}
	for (int hot = 0; hot < 2; hot++) {
		uint64_t n = hot ? HOT_BYTES / 8 : words;

		for (int t = 1; t <= 2; t++) {
			for (int w = 0; w < 2; w++) {
				int reps = opt.reps < 3 ? opt.reps : 3;

				for (int r = 0; r < reps; r++)
					v[r] = run_access(A_VCPU, w, t, mm, vm, host, n);
				res.vcpu_ns[hot][t - 1][w] = median_of(v, reps);
				for (int r = 0; r < reps; r++)
					v[r] = run_access(A_UMM, w, t, mm, vm, host, n);
				res.umm_ns[hot][t - 1][w] = median_of(v, reps);
				for (int r = 0; r < reps; r++)
					v[r] = run_access(A_HOST, w, t, mm, vm, host, n);
				res.host_ns[hot][t - 1][w] = median_of(v, reps);
			}
		}
	}
	/* what the vCPUs wrote, the CPU path reads: a sample of pages */
	for (uint64_t off = 0; off < bytes; off += 97 * UMM_PAGE_SIZE) {
		uint64_t a = 0, b = 1;

		if (umm_read(mm, GUEST_BASE + off + 8, &a, 8) != 8 ||
		    shadow_vcpu_read(vcpu, GUEST_BASE + off + 8, &b, 8) != 8 || a != b)
			fail_msg("guest %#" PRIx64 ": umm_read %#" PRIx64 ", vCPU %#" PRIx64, off,
				 a, b);
	}
	shadow_vm_stats(vm, &st);
	if (st.faults < bytes / UMM_PAGE_SIZE || st.unpaired)
		fail_msg("shadow: %lu faults for %" PRIu64 " pages, %lu unpaired ends", st.faults,
			 bytes / UMM_PAGE_SIZE, st.unpaired);
	shadow_vcpu_destroy(vcpu);
	shadow_vm_destroy(vm);
	machine_done(u, mm);
	munmap(host, bytes);
	res.access_ok = cur_ok;
	if (!cur_ok)
		nr_failed++;
}

/* ---- output ---- */

static const char *ok_str(bool ok)
{
	return ok ? "" : "  FAILED";
}

static void print_tables(double secs)
{
	printf("bench_notifier on %s, %ld cores, %s\n\n", mach.cpu, mach.cores, mach.kernel);
	printf("(1) invalidate_range_start/end pair, subscribers with counting callbacks\n");
	printf("    %-12s %12s %12s   target\n", "subscribers", "ns/pair", "added ns");
	for (int k = 0; k < NR_SUB_COUNTS; k++) {
		int n = nr_subs_list[k];

		if (n == 0)
			printf("    %-12d %12.2f %12.2f   <= 2 ns added: %s%s\n", n, res.pair_ns[k],
			       res.pair_ns[k] - res.empty_ns,
			       res.pair_ns[k] - res.empty_ns <= 2 ? "met" : "NOT MET",
			       ok_str(res.pair_ok[k]));
		else if (n == 16)
			printf("    %-12d %12.1f %12s   < 500 ns: %s%s\n", n, res.pair_ns[k], "",
			       res.pair_ns[k] < 500 ? "met" : "NOT MET", ok_str(res.pair_ok[k]));
		else
			printf("    %-12d %12.1f%s\n", n, res.pair_ns[k], ok_str(res.pair_ok[k]));
	}
	printf("    (empty loop with the same range_init: %.2f ns/iteration)\n\n", res.empty_ns);

	printf("(2) real paths, ns per iteration%s\n", ok_str(res.path_ok));
	printf("    %-40s %10s %10s %10s\n", "", "0 subs", "16 subs", "added");
	printf("    %-40s %10.0f %10.0f %10.0f\n", "write fault + MADV_DONTNEED of 1 page",
	       res.dontneed_ns[0], res.dontneed_ns[1], res.dontneed_ns[1] - res.dontneed_ns[0]);
	printf("    %-40s %10.0f %10.0f %10.0f\n\n", "mprotect RO<->RW of 1 touched page",
	       res.mprotect_ns[0], res.mprotect_ns[1], res.mprotect_ns[1] - res.mprotect_ns[0]);

	printf("(3) interval notifiers: one pair hitting one of N one-page intervals\n");
	printf("    %-12s %12s\n", "intervals", "ns/pair");
	for (int k = 0; k < NR_INTERVAL_COUNTS; k++) {
		if (res.interval_ns[k] != res.interval_ns[k])
			printf("    %-12ld %12s%s\n", nr_intervals_list[k], "n/a",
			       k ? "" : "   (umm_mmu_interval_notifier_insert: -ENOSYS)");
		else
			printf("    %-12ld %12.1f%s%s\n", nr_intervals_list[k], res.interval_ns[k],
			       k == NR_INTERVAL_COUNTS - 1 ? (res.interval_ns[k] < 1000 ?
				"   < 1 us: met" : "   < 1 us: NOT MET") : "",
			       ok_str(res.interval_ok[k]));
	}
	printf("\n(4) 8-byte accesses at random addresses, ns/op over all threads%s\n",
	       ok_str(res.access_ok));
	printf("    %-9s %-8s %-6s %12s %12s %12s %12s\n", "region", "threads", "op",
	       "shadow vCPU", "umm_read/wr", "host memcpy", "vCPU Mops/s");
	for (int hot = 0; hot < 2; hot++)
		for (int t = 0; t < 2; t++)
			for (int w = 0; w < 2; w++) {
				char region[32];

				if (hot)
					snprintf(region, sizeof(region), "%d KiB", HOT_BYTES >> 10);
				else
					snprintf(region, sizeof(region), "%" PRIu64 " MiB",
						 res.guest_mib);
				printf("    %-9s %-8d %-6s %12.1f %12.1f %12.1f %12.1f\n", region,
				       t + 1, w ? "write" : "read", res.vcpu_ns[hot][t][w],
				       res.umm_ns[hot][t][w], res.host_ns[hot][t][w],
				       1e3 / res.vcpu_ns[hot][t][w]);
			}
	printf("\n");
	print_total(secs, "figures");
}

static void print_json(double secs)
{
	json_machine();
	printf("},\n  \"pair_ns\": {");
	for (int k = 0; k < NR_SUB_COUNTS; k++) {
		printf("%s\"%d\": ", k ? ", " : "", nr_subs_list[k]);
		json_num(res.pair_ns[k]);
	}
	printf("},\n  \"empty_loop_ns\": ");
	json_num(res.empty_ns);
	printf(",\n  \"dontneed_ns\": {\"0\": ");
	json_num(res.dontneed_ns[0]);
	printf(", \"16\": ");
	json_num(res.dontneed_ns[1]);
	printf("},\n  \"mprotect_ns\": {\"0\": ");
	json_num(res.mprotect_ns[0]);
	printf(", \"16\": ");
	json_num(res.mprotect_ns[1]);
	printf("},\n  \"interval_ns\": {");
	for (int k = 0; k < NR_INTERVAL_COUNTS; k++) {
		printf("%s\"%ld\": ", k ? ", " : "", nr_intervals_list[k]);
		json_num(res.interval_ns[k]);
	}
	printf("},\n  \"access_mib\": %" PRIu64 ",\n  \"access_ns\": {", res.guest_mib);
	for (int hot = 0; hot < 2; hot++)
		for (int t = 0; t < 2; t++)
			for (int w = 0; w < 2; w++) {
				printf("%s\"%s_%d_%s\": {\"vcpu\": ", hot || t || w ? ", " : "",
				       hot ? "hot" : "region", t + 1, w ? "write" : "read");
				json_num(res.vcpu_ns[hot][t][w]);
				printf(", \"umm\": ");
				json_num(res.umm_ns[hot][t][w]);
				printf(", \"host\": ");
				json_num(res.host_ns[hot][t][w]);
				printf("}");
			}
	printf("},\n  \"total_s\": %.1f,\n  \"ok\": %s\n}\n", secs, nr_failed ? "false" : "true");
}

static void usage(FILE *f)
{
	fprintf(f, "usage: bench_notifier [--quick] [--json] [--reps N]\n");
}

int main(int argc, char **argv)
{
	uint64_t t0 = now_ns();

	reps_opts(argc, argv, &opt.reps, 64, &opt.quick, &opt.json, usage);
	probe_machine();
	bench_pairs();
	bench_paths();
	bench_intervals();
	bench_access();
	return bench_finish(t0, opt.json, print_json, print_tables);
}
