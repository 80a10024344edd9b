/* SPDX-License-Identifier: MIT */
/*
 * bench_ksm.c - umm's KSM beside the host kernel's KSM, on the same
 * content, in one run.
 *
 * Kernel side: a region of this process (private anonymous, filled,
 * MADV_MERGEABLE) and the knobs of /sys/kernel/mm/ksm (root).  Every knob
 * the bench changes is saved first and put back at the end, and run is
 * always left at 0, on every exit path (normal end, exit(), SIGINT, SIGTERM,
 * SIGHUP).  If the knobs are not writable the kernel column says
 * "unavailable" and the umm figures are still taken.
 *
 * umm side: the same bytes in one umm mm on a PREFAULT machine (no first
 * touch of the arena inside the figures), ksmd at nr_threads 1 and at the
 * number of online cores, every thread at the kernel ksmd's nice value (5):
 * on a busy machine the kernel's ksmd gets less CPU than a nice-0 thread.
 *
 * Figures (the shapes of Linux's ksm_tests -P, -D and -C):
 *
 *   merge       pages_to_scan = page count, sleep_millisecs 0, run = 1; the
 *               time until two full scans are done and pages_shared /
 *               pages_sharing reached the counts Linux's selftests expect
 *               (max_page_sharing chains included); for 100 MiB and 1 GiB
 *               of identical pages and 1 GiB of which half are copies of 64
 *               contents and half unique
 *   CPU         CPU seconds per merged GiB in the merge of 1 GiB of
 *               identical pages ("merged" = pages_shared + pages_sharing):
 *               kernel = ksmd's utime + stime (/proc/<ksmd>/stat), umm = the
 *               process's CPU time minus the bench's own (polling) thread
 *   unmerge     run = 2 on the merged 1 GiB (-D): the kernel's write to
 *               /sys/kernel/mm/ksm/run returns when all is unmerged;
 *               umm_ksm_set_run(u, 2) likewise
 *   COW break   after the merge of 100 MiB, a one-byte write to every page
 *               (-C), in ns per page
 *
 * Checks on umm: the exact counts, the bytes of sampled pages after each
 * step, stats back to 0 after run = 2, umm_validate() and no leaked frame
 * at the end.  A failed check marks the figure FAILED and the exit code 1.
 * Nothing is asserted on time; targets (from issue 5) are printed beside
 * the figures.
 *
 * Usage: bench_ksm [--size MiB] [--quick] [--json]
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <umm/umm.h>

#define BENCH_NAME "bench_ksm"
#include "bench_common.h"

#define PAGE_SIZE	UMM_PAGE_SIZE
#define MiB		((size_t)1 << 20)
#define GiB		((size_t)1 << 30)
#define NR_SAMPLES	64
#define NR_CONTENTS	64		/* distinct contents of the duplicated half */
#define TIMEOUT_SECS	120.0
#define KSM_DIR		"/sys/kernel/mm/ksm/"

#define CHECK(cond, ...) do { if (!(cond)) fail_msg(__VA_ARGS__); } while (0)

static struct {
	size_t small, big;
	bool quick, json;
	unsigned int cores;
	int nice;			/* of ksmd, and of umm's threads */
} opt = { .small = 100 * MiB, .big = 1024 * MiB };

/* ---- content: the same bytes on both sides ---- */

enum shape { IDENTICAL, HALF_DUP };

/* Page @i of a region of @npages of @shape. */
static void fill_page(uint8_t *p, size_t i, size_t npages, enum shape shape)
{
	if (shape == IDENTICAL) {
		memset(p, '*', PAGE_SIZE);
	} else if (i < npages / 2) {
		memset(p, 1 + (int)(i % NR_CONTENTS), PAGE_SIZE);
	} else {
		uint64_t v = i * 0x9e3779b97f4a7c15ULL + 1;

		memset(p, 0xee, PAGE_SIZE);
		memcpy(p, &v, sizeof(v));
	}
}

static size_t sample_page(size_t j, size_t npages)
{
	return j == 0 ? 0 : j == NR_SAMPLES - 1 ? npages - 1 : (j * 2654435761ULL) % npages;
}

/* Linux's expected counts for @n identical pages with max_page_sharing @mps. */
static void merge_expect(size_t n, unsigned long mps, size_t *shared, size_t *sharing)
{
	size_t rest = n % mps;

	*shared = n / mps + (rest >= 2);
	*sharing = n - *shared - (rest == 1);
}

static void shape_expect(size_t npages, enum shape shape, unsigned long mps, size_t *shared,
			 size_t *sharing)
{
	*shared = *sharing = 0;
	if (shape == IDENTICAL) {
		merge_expect(npages, mps, shared, sharing);
		return;
	}
	for (size_t c = 0; c < NR_CONTENTS; c++) {
		size_t n = npages / 2 / NR_CONTENTS + (c < (npages / 2) % NR_CONTENTS), a, b;

		merge_expect(n, mps, &a, &b);
		*shared += a;
		*sharing += b;
	}
}

static double cpu_secs_self(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
	       (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static double cpu_secs_thread(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void pause_us(long us)
{
	struct timespec ts = { us / 1000000, (us % 1000000) * 1000 };

	nanosleep(&ts, NULL);
}

/* ===================================================================== */
/* the kernel's knobs                                                      */

static const char *const saved_knobs[] = { "pages_to_scan", "sleep_millisecs", "advisor_mode" };
#define NR_SAVED (sizeof(saved_knobs) / sizeof(saved_knobs[0]))
static char saved_val[NR_SAVED][64];
static bool saved_ok[NR_SAVED];
static volatile sig_atomic_t kernel_touched;
static bool kernel_ok;

/* Write @val to knob @name: 0 or -errno.  Async-signal-safe. */
static int knob_write(const char *name, const char *val)
{
	char path[128] = KSM_DIR;
	size_t n = strlen(path), len = strlen(val);
	int fd, r = 0;

	for (size_t i = 0; name[i] && n < sizeof(path) - 1; i++)
		path[n++] = name[i];
	path[n] = 0;
	fd = open(path, O_WRONLY);
	if (fd < 0)
		return -errno;
	if (write(fd, val, len) != (ssize_t)len)
		r = -errno;
	close(fd);
	return r;
}

static int knob_read(const char *name, char *buf, size_t size)
{
	char path[128];
	ssize_t r;
	int fd;

	snprintf(path, sizeof(path), KSM_DIR "%s", name);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return -errno;
	r = read(fd, buf, size - 1);
	close(fd);
	if (r < 0)
		return -errno;
	buf[r] = 0;
	buf[strcspn(buf, "\n")] = 0;
	return 0;
}

static long knob_num(const char *name)
{
	char buf[64];

	return knob_read(name, buf, sizeof(buf)) ? -1 : strtol(buf, NULL, 10);
}

/* Put back every knob we changed and leave run at 0.  Async-signal-safe. */
static void kernel_restore(void)
{
	if (!kernel_touched)
		return;
	knob_write("run", "0");
	for (size_t i = 0; i < NR_SAVED; i++)
		if (saved_ok[i])
			knob_write(saved_knobs[i], saved_val[i]);
	kernel_touched = 0;
}

static void on_signal(int sig)
{
	kernel_restore();
	signal(sig, SIG_DFL);
	raise(sig);
}

/*
 * Save the knobs and see whether we may drive the kernel's KSM: root, the
 * knobs writable, run 0 now (someone else's KSM run is not ours to stop).
 */
static void kernel_probe(void)
{
	char run[16];

	kernel_ok = false;
	if (knob_read("run", run, sizeof(run)) || access(KSM_DIR "run", W_OK))
		return;
	if (strcmp(run, "0")) {
		fprintf(stderr, BENCH_NAME ": kernel KSM is running (run=%s): leaving it alone\n",
			run);
		return;
	}
	for (size_t i = 0; i < NR_SAVED; i++) {
		char *v = saved_val[i];

		if (knob_read(saved_knobs[i], v, sizeof(saved_val[i])))
			continue;
		if (!strcmp(saved_knobs[i], "advisor_mode")) {
			/* "[none] scan-time": keep the selected word */
			char *b = strchr(v, '['), *e = b ? strchr(b, ']') : NULL;

			if (!b || !e)
				continue;
			memmove(v, b + 1, e - b - 1);
			v[e - b - 1] = 0;
		}
		saved_ok[i] = true;
	}
	atexit(kernel_restore);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGHUP, on_signal);
	kernel_touched = 1;
	/* pages_to_scan is refused while the scan-time advisor drives it */
	if (saved_ok[2] && strcmp(saved_val[2], "none"))
		knob_write("advisor_mode", "none");
	kernel_ok = knob_write("run", "0") == 0;
}


/* ksmd's pid, found by its name. */
static int ksmd_pid(void)
{
	DIR *d = opendir("/proc");
	struct dirent *e;
	int pid = -1;

	while (d && (e = readdir(d))) {
		char path[300], comm[32] = "";
		FILE *f;

		if (e->d_name[0] < '0' || e->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/comm", e->d_name);
		if (!(f = fopen(path, "r")))
			continue;
		if (fgets(comm, sizeof(comm), f) && !strcmp(comm, "ksmd\n"))
			pid = atoi(e->d_name);
		fclose(f);
		if (pid > 0)
			break;
	}
	if (d)
		closedir(d);
	return pid;
}

/* The nice value of @pid (field 19 of /proc/<pid>/stat), or 0. */
static int proc_nice(int pid)
{
	char path[64], buf[1024], *p;
	FILE *f;
	size_t n;
	long nice;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	if (pid <= 0 || !(f = fopen(path, "r")))
		return 0;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	p = strrchr(buf, ')');
	/* state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt
	 * utime stime cutime cstime priority nice */
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d "
			 "%*d %ld", &nice) != 1)
		return 0;
	return (int)nice;
}

/* utime + stime of @pid in seconds, or NAN. */
static double proc_cpu_secs(int pid)
{
	char path[64], buf[1024], *p;
	unsigned long ut, st;
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	if (pid <= 0 || !(f = fopen(path, "r")))
		return __builtin_nan("");
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	p = strrchr(buf, ')');
	/* after "pid (comm)": state ppid pgrp session tty tpgid flags minflt
	 * cminflt majflt cmajflt utime stime */
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut,
			 &st) != 2)
		return __builtin_nan("");
	return (double)(ut + st) / sysconf(_SC_CLK_TCK);
}

/*
 * ksmd runs at nice 5: on a busy machine it gets less CPU than a nice-0
 * thread, so umm's scanner threads (created later, they inherit it) run at
 * ksmd's nice value too.  Return: that value.
 */
static int match_ksmd_nice(void)
{
	int nice = proc_nice(ksmd_pid());

	if (nice > 0 && setpriority(PRIO_PROCESS, 0, nice) == 0)
		return nice;
	return getpriority(PRIO_PROCESS, 0);
}

/* ===================================================================== */
/* results                                                                  */

enum col { KERNEL, UMM1, UMMN, NR_COLS };

struct fig {
	const char *name, *unit;
	double v[NR_COLS];		/* NAN: not measured */
	bool valid[NR_COLS];		/* measured, and umm's checks passed */
	bool failed[NR_COLS];		/* tried, and a check failed */
	enum col target_col;		/* the umm column the target is about */
	double target;			/* kernel/umm >= target */
	const char *target_text;
};

enum { F_MERGE_SMALL, F_MERGE_BIG, F_MERGE_HALF, F_CPU, F_UNMERGE, F_COW, NR_FIGS };
static struct fig figs[NR_FIGS];
static char merge_small_name[64], merge_big_name[64], merge_half_name[64],
	    unmerge_name[64], cpu_name[64];

static void figs_init(void)
{
	snprintf(merge_small_name, sizeof(merge_small_name), "merge %zu MiB identical",
		 opt.small / MiB);
	snprintf(merge_big_name, sizeof(merge_big_name), "merge %zu MiB identical", opt.big / MiB);
	snprintf(merge_half_name, sizeof(merge_half_name), "merge %zu MiB half duplicated",
		 opt.big / MiB);
	snprintf(unmerge_name, sizeof(unmerge_name), "unmerge %zu MiB (run=2)", opt.big / MiB);
	snprintf(cpu_name, sizeof(cpu_name), "CPU per merged GiB (%zu MiB)", opt.big / MiB);
	figs[F_MERGE_SMALL] = (struct fig){ merge_small_name, "s", .target_col = UMMN,
		.target = 2, .target_text = "umm all cores <= kernel/2" };
	figs[F_MERGE_BIG] = (struct fig){ merge_big_name, "s", .target_col = UMMN,
		.target = 2, .target_text = "umm all cores <= kernel/2" };
	figs[F_MERGE_HALF] = (struct fig){ merge_half_name, "s", .target_col = UMMN,
		.target = 2, .target_text = "umm all cores <= kernel/2" };
	figs[F_CPU] = (struct fig){ cpu_name, "CPU s/GiB", .target_col = UMM1,
		.target = 1, .target_text = "umm 1 thread <= kernel" };
	figs[F_UNMERGE] = (struct fig){ unmerge_name, "s", .target_col = UMM1,
		.target = 1, .target_text = "umm <= kernel" };
	figs[F_COW] = (struct fig){ "COW break after merge", "ns/page", .target_col = UMM1,
		.target = 1, .target_text = "umm <= kernel" };
	for (int i = 0; i < NR_FIGS; i++)
		for (int c = 0; c < NR_COLS; c++)
			figs[i].v[c] = __builtin_nan("");
}

static void fig_failed(int f, enum col c)
{
	if (!figs[f].failed[c])
		nr_failed++;
	figs[f].failed[c] = true;
	figs[f].valid[c] = false;
}

/* Record figure @f of column @c, valid unless a check failed since cur_ok was set. */
static void put_fig(int f, enum col c, double v)
{
	figs[f].v[c] = v;
	figs[f].valid[c] = cur_ok;
	if (!cur_ok)
		fig_failed(f, c);
}

/* ===================================================================== */
/* kernel side                                                              */

struct kcounts { long shared, sharing, full_scans; };

static struct kcounts kcounts(void)
{
	return (struct kcounts){ knob_num("pages_shared"), knob_num("pages_sharing"),
				 knob_num("full_scans") };
}

/*
 * Merge @bytes of @shape in this process with the kernel's ksmd; then, if
 * asked, time a one-byte write to every page (COW) or run = 2 (unmerge).
 */
static void kernel_run(size_t bytes, enum shape shape, int merge_fig, bool cpu, bool cow,
		       bool unmerge)
{
	size_t npages = bytes / PAGE_SIZE, want_shared, want_sharing;
	long mps = knob_num("max_page_sharing");
	int pid = ksmd_pid();
	struct kcounts base, c = { 0, 0, 0 };
	double cpu0, t0, secs;
	char num[32];
	uint8_t *p;
	bool done = false;

	if (!kernel_ok)
		return;
	shape_expect(npages, shape, mps, &want_shared, &want_sharing);
	/*
	 * The counts are global: pages another process has merged would move
	 * them while ksmd runs, and the expected deltas never appear.  Unmerge
	 * everything first (as after every run below; untimed).
	 */
	knob_write("run", "2");
	knob_write("run", "0");
	p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		fprintf(stderr, BENCH_NAME ": kernel: mmap %zu MiB: %s\n", bytes / MiB,
			strerror(errno));
		return;
	}
	madvise(p, bytes, MADV_NOHUGEPAGE);
	for (size_t i = 0; i < npages; i++)
		fill_page(p + i * PAGE_SIZE, i, npages, shape);
	snprintf(num, sizeof(num), "%zu", npages);
	if (knob_write("pages_to_scan", num) || knob_write("sleep_millisecs", "0") ||
	    madvise(p, bytes, MADV_MERGEABLE)) {
		fprintf(stderr, BENCH_NAME ": kernel: cannot set up KSM: %s\n", strerror(errno));
		munmap(p, bytes);
		return;
	}
	base = kcounts();
	cpu0 = proc_cpu_secs(pid);
	t0 = now_ns() / 1e9;
	knob_write("run", "1");
	while ((secs = now_ns() / 1e9 - t0) < TIMEOUT_SECS) {
		c = kcounts();
		if (c.full_scans >= base.full_scans + 2 &&
		    c.shared - base.shared == (long)want_shared &&
		    c.sharing - base.sharing == (long)want_sharing) {
			done = true;
			break;
		}
		pause_us(200);
	}
	knob_write("run", "0");
	cur_ok = true;
	if (!done) {
		fprintf(stderr, BENCH_NAME ": kernel: %s not merged in %.0f s (shared %ld sharing "
			"%ld, want %zu %zu)\n", figs[merge_fig].name, TIMEOUT_SECS,
			c.shared - base.shared, c.sharing - base.sharing, want_shared, want_sharing);
		munmap(p, bytes);
		knob_write("run", "2");
		knob_write("run", "0");
		return;
	}
	put_fig(merge_fig, KERNEL, secs);
	if (cpu)
		put_fig(F_CPU, KERNEL, (proc_cpu_secs(pid) - cpu0) /
			((double)(want_shared + want_sharing) * PAGE_SIZE / GiB));
	if (cow) {
		double t = now_ns();

		for (size_t i = 0; i < npages; i++)
			((volatile uint8_t *)p)[i * PAGE_SIZE + (i & 1023)] = 0;
		put_fig(F_COW, KERNEL, (now_ns() - t) / npages);
	}
	if (unmerge) {
		double t = now_ns() / 1e9;

		knob_write("run", "2");
		put_fig(F_UNMERGE, KERNEL, now_ns() / 1e9 - t);
		c = kcounts();
		if (c.sharing != 0)
			fprintf(stderr, BENCH_NAME ": kernel: pages_sharing %ld after run=2\n",
				c.sharing);
	}
	munmap(p, bytes);
	/* forget the region's merges before the next run (untimed) */
	knob_write("run", "2");
	knob_write("run", "0");
}

/* ===================================================================== */
/* umm side                                                                 */

/* A PREFAULT machine with room for the region twice over (COW, unmerge). */
static struct umm *umm_machine(size_t bytes)
{
	struct umm_config cfg;
	struct umm *u;
	int r;

	umm_config_init(&cfg);
	cfg.phys_bytes = 2 * bytes + 256 * MiB;
	cfg.flags = UMM_CONFIG_PREFAULT;
	r = umm_create(&cfg, &u);
	if (r < 0) {
		fail_msg("umm_create(%zu MiB): %s", cfg.phys_bytes / MiB, strerror(-r));
		return NULL;
	}
	umm_set_log(u, umm_log_cb, NULL);
	return u;
}

/* Sampled pages hold their bytes (after COW: with byte i % 1024 of page i zero). */
static void umm_check_samples(struct umm_mm *mm, uint64_t base, size_t npages, enum shape shape,
			      bool cowed, const char *when)
{
	uint8_t buf[PAGE_SIZE], want[PAGE_SIZE];

	for (size_t j = 0; j < NR_SAMPLES; j++) {
		size_t i = sample_page(j, npages);
		ssize_t r = umm_read(mm, base + i * PAGE_SIZE, buf, PAGE_SIZE);

		fill_page(want, i, npages, shape);
		if (cowed)
			want[i & 1023] = 0;
		CHECK(r == PAGE_SIZE && !memcmp(buf, want, PAGE_SIZE),
		      "%s: page %zu does not hold its bytes (read %zd)", when, i, r);
	}
}

static void umm_run(size_t bytes, enum shape shape, unsigned int threads, int merge_fig,
		    bool cpu, bool cow, bool unmerge)
{
	size_t npages = bytes / PAGE_SIZE, want_shared, want_sharing;
	enum col col = threads == 1 ? UMM1 : UMMN;
	struct umm_ksm_params kp;
	struct umm_ksm_stats s;
	struct umm_mm *mm = NULL;
	uint8_t buf[PAGE_SIZE];
	double t0, secs, cpu0, self0;
	uint64_t base = 0;
	struct umm *u;
	bool done = false;
	char msg[256];
	int r;

	cur_ok = true;
	if (!(u = umm_machine(bytes)))
		goto out;
	if ((r = umm_mm_create(u, &mm)) ||
	    (r = umm_mmap(mm, 0, bytes, UMM_PROT_READ | UMM_PROT_WRITE,
			  UMM_MAP_PRIVATE | UMM_MAP_ANONYMOUS, NULL, 0, &base))) {
		fail_msg("umm_mm_create/umm_mmap: %s", strerror(-r));
		goto out;
	}
	for (size_t i = 0; i < npages; i++) {
		fill_page(buf, i, npages, shape);
		if (umm_write(mm, base + i * PAGE_SIZE, buf, PAGE_SIZE) != PAGE_SIZE) {
			fail_msg("umm_write of page %zu failed", i);
			goto out;
		}
	}
	if ((r = umm_madvise(mm, base, bytes, UMM_MADV_MERGEABLE)) ||
	    (r = umm_ksm_get_params(u, &kp))) {
		fail_msg("MADV_MERGEABLE / umm_ksm_get_params: %s", strerror(-r));
		goto out;
	}
	if (kernel_ok) {	/* the kernel's limits, so both reach the same counts */
		kp.max_page_sharing = knob_num("max_page_sharing");
		kp.smart_scan = knob_num("smart_scan") == 1;
	}
	kp.pages_to_scan = npages;
	kp.sleep_millisecs = 0;
	kp.nr_threads = threads;
	if ((r = umm_ksm_set_params(u, &kp))) {
		fail_msg("umm_ksm_set_params: %s", strerror(-r));
		goto out;
	}
	shape_expect(npages, shape, kp.max_page_sharing, &want_shared, &want_sharing);
	umm_ksm_get_stats(u, &s);
	cpu0 = cpu_secs_self();
	self0 = cpu_secs_thread();
	t0 = now_ns() / 1e9;
	if ((r = umm_ksm_set_run(u, 1))) {
		fail_msg("umm_ksm_set_run(1): %s", strerror(-r));
		goto out;
	}
	{
		unsigned long f0 = s.full_scans;

		while ((secs = now_ns() / 1e9 - t0) < TIMEOUT_SECS) {
			umm_ksm_get_stats(u, &s);
			if (s.full_scans >= f0 + 2 && s.pages_shared == want_shared &&
			    s.pages_sharing == want_sharing) {
				done = true;
				break;
			}
			pause_us(200);
		}
	}
	cpu0 = (cpu_secs_self() - cpu0) - (cpu_secs_thread() - self0);
	umm_ksm_set_run(u, 0);
	CHECK(done, "umm: not merged in %.0f s (shared %lu sharing %lu, want %zu %zu)",
	      TIMEOUT_SECS, s.pages_shared, s.pages_sharing, want_shared, want_sharing);
	umm_check_samples(mm, base, npages, shape, false, "after merge");
	put_fig(merge_fig, col, secs);
	if (cpu)
		put_fig(F_CPU, col, cpu0 / ((double)(want_shared + want_sharing) * PAGE_SIZE / GiB));
	if (cow) {
		uint64_t t;

		cur_ok = done;
		t = now_ns();
		for (size_t i = 0; i < npages; i++) {
			uint8_t z = 0;

			if (umm_write(mm, base + i * PAGE_SIZE + (i & 1023), &z, 1) != 1) {
				fail_msg("umm_write (COW) of page %zu failed", i);
				break;
			}
		}
		t = now_ns() - t;
		umm_check_samples(mm, base, npages, shape, true, "after COW");
		put_fig(F_COW, col, (double)t / npages);
	}
	if (unmerge) {
		uint64_t t;

		cur_ok = done;
		t = now_ns();
		r = umm_ksm_set_run(u, 2);
		t = now_ns() - t;
		CHECK(r == 0, "umm_ksm_set_run(2): %s", strerror(-r));
		umm_ksm_get_stats(u, &s);
		CHECK(s.pages_shared == 0 && s.pages_sharing == 0,
		      "after run=2: pages_shared %lu pages_sharing %lu", s.pages_shared,
		      s.pages_sharing);
		umm_check_samples(mm, base, npages, shape, false, "after unmerge");
		put_fig(F_UNMERGE, col, t / 1e9);
		umm_ksm_set_run(u, 0);
	}
	cur_ok = true;
	r = umm_validate(u, UMM_VALIDATE_EXACT, msg, sizeof(msg));
	CHECK(r == 0, "umm_validate: %d: %s", r, msg);
out:
	if (u) {
		long leaked;

		if (mm)
			umm_mm_exit(mm);
		leaked = umm_leak_check(u, NULL, NULL);
		CHECK(leaked == 0, "umm_leak_check: %ld frames leaked", leaked);
		umm_destroy(u);
	}
	if (!cur_ok) {		/* nothing this run measured can be trusted */
		fig_failed(merge_fig, col);
		if (cpu)
			fig_failed(F_CPU, col);
		if (cow)
			fig_failed(F_COW, col);
		if (unmerge)
			fig_failed(F_UNMERGE, col);
	}
}

/* ===================================================================== */
/* output                                                                   */

static void fmt(char *buf, size_t n, const struct fig *f, enum col c)
{
	if (f->failed[c])
		snprintf(buf, n, "FAILED");
	else if (f->v[c] != f->v[c])
		snprintf(buf, n, c == KERNEL && !kernel_ok ? "unavail." : "-");
	else if (f->v[c] >= 100)
		snprintf(buf, n, "%.0f", f->v[c]);
	else
		snprintf(buf, n, "%.3g", f->v[c]);
}

static double ratio(const struct fig *f, enum col c)
{
	if (!f->valid[c] || !f->valid[KERNEL])
		return __builtin_nan("");
	return f->v[KERNEL] / f->v[c];
}

static void print_tables(double secs)
{
	printf("machine: %s, %ld cores, %s\n", mach.cpu, mach.cores, mach.kernel);
	if (!kernel_ok)
		printf("kernel: unavailable (/sys/kernel/mm/ksm not writable or KSM in use)\n");
	printf("umm: PREFAULT machine, ksmd with nr_threads 1 and %u, all threads at ksmd's nice "
	       "(%d); kernel/umm > 1 means umm is faster (or cheaper)\n\n", opt.cores, opt.nice);
	printf("  %-34s %-9s %9s %9s %9s %8s %8s  %s\n", "figure", "unit", "kernel", "umm 1thr",
	       "umm Nthr", "k/umm1", "k/ummN", "target");
	for (int i = 0; i < NR_FIGS; i++) {
		const struct fig *f = &figs[i];
		char k[16], a[16], b[16], ra[16] = "-", rb[16] = "-", tgt[80];
		double rt = ratio(f, f->target_col);
		bool taken = false;

		for (int c = 0; c < NR_COLS; c++)
			taken |= f->failed[c] || f->v[c] == f->v[c];
		if (!taken)		/* not in this run (--quick) */
			continue;
		fmt(k, sizeof(k), f, KERNEL);
		fmt(a, sizeof(a), f, UMM1);
		fmt(b, sizeof(b), f, UMMN);
		if (ratio(f, UMM1) == ratio(f, UMM1))
			snprintf(ra, sizeof(ra), "%.2fx", ratio(f, UMM1));
		if (ratio(f, UMMN) == ratio(f, UMMN))
			snprintf(rb, sizeof(rb), "%.2fx", ratio(f, UMMN));
		snprintf(tgt, sizeof(tgt), "%s: %s", f->target_text,
			 rt != rt ? "-" : rt >= f->target ? "met" : "NOT MET");
		printf("  %-34s %-9s %9s %9s %9s %8s %8s  %s\n", f->name, f->unit, k, a, b, ra, rb,
		       tgt);
	}
	printf("\nmerge = time from run=1 to two full scans done and the counts Linux's "
	       "selftests expect reached\n(max_page_sharing %ld); CPU = ksmd utime+stime "
	       "(kernel), process CPU minus the polling thread (umm)\n",
	       kernel_ok ? knob_num("max_page_sharing") : 256L);
	print_total(secs, "figures");
}

static void print_json(double secs)
{
	static const char *const col_name[NR_COLS] = { "kernel", "umm_1thr", "umm_nthr" };

	json_machine();
	printf("},\n  \"kernel_available\": %s, \"umm_threads\": %u, \"nice\": %d,\n"
	       "  \"results\": [\n", kernel_ok ? "true" : "false", opt.cores, opt.nice);
	for (int i = 0; i < NR_FIGS; i++) {
		const struct fig *f = &figs[i];

		printf("    {\"name\": ");
		json_str(f->name);
		printf(", \"unit\": ");
		json_str(f->unit);
		for (int c = 0; c < NR_COLS; c++) {
			printf(", \"%s\": ", col_name[c]);
			json_num(f->valid[c] ? f->v[c] : __builtin_nan(""));
		}
		printf(", \"target\": ");
		json_str(f->target_text);
		printf("}%s\n", i + 1 < NR_FIGS ? "," : "");
	}
	printf("  ],\n  \"seconds\": %.1f,\n  \"checks_passed\": %s\n}\n", secs,
	       nr_failed ? "false" : "true");
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: bench_ksm [options]\n"
		"  --size MiB   the large region (default 1024; the small one is 100 MiB)\n"
		"  --quick      the 100 MiB figures only\n"
		"  --json       machine-readable output\n");
}

int main(int argc, char **argv)
{
	uint64_t t0;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (!strcmp(a, "--size"))
			opt.big = parse_num(opt_arg(argc, argv, &i), a, 1, 8192) * MiB;
		else
			common_opt(a, &opt.quick, &opt.json, usage);
	}
	probe_machine();
	opt.cores = mach.cores > 1 ? (unsigned int)mach.cores : 1;
	figs_init();
	kernel_probe();
	opt.nice = match_ksmd_nice();
	t0 = now_ns();
	if (!opt.json) {
		printf("bench_ksm: umm's KSM beside the host kernel's (%s)\n",
		       opt.quick ? "quick" : "full");
		fflush(stdout);
	}

	/* 100 MiB identical: merge, then COW-break every page */
	kernel_run(opt.small, IDENTICAL, F_MERGE_SMALL, false, true, false);
	umm_run(opt.small, IDENTICAL, 1, F_MERGE_SMALL, false, true, false);
	umm_run(opt.small, IDENTICAL, opt.cores, F_MERGE_SMALL, false, true, false);
	if (!opt.quick) {
		/* 1 GiB identical: merge (and its CPU), then unmerge everything */
		kernel_run(opt.big, IDENTICAL, F_MERGE_BIG, true, false, true);
		umm_run(opt.big, IDENTICAL, 1, F_MERGE_BIG, true, false, true);
		umm_run(opt.big, IDENTICAL, opt.cores, F_MERGE_BIG, true, false, true);
		/* 1 GiB, half copies of 64 contents, half unique */
		kernel_run(opt.big, HALF_DUP, F_MERGE_HALF, false, false, false);
		umm_run(opt.big, HALF_DUP, 1, F_MERGE_HALF, false, false, false);
		umm_run(opt.big, HALF_DUP, opt.cores, F_MERGE_HALF, false, false, false);
	}
	kernel_restore();
	return bench_finish(t0, opt.json, print_json, print_tables);
}
