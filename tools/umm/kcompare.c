// SPDX-License-Identifier: MIT
/*
 * kcompare.c - `umm kernel-compare`: the same content merged by umm's KSM
 * and by the host kernel's (/sys/kernel/mm/ksm, root), side by side.
 *
 * The content is what `umm run` boots: COPIES copies of an image made of
 * real files, each followed by data of its own.  umm gets one address
 * space per copy; the kernel gets one MADV_MERGEABLE mapping per copy in
 * this process.  Both run ksmd with the same knobs until two full scans
 * have passed and a further one changes nothing; the table shows the
 * counts, the wall time to converge and ksmd's CPU time.
 *
 * The kernel's knobs this command writes are saved first and written back
 * afterwards, and run is left at 0, also when a signal ends the command.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <umm/umm.h>

#include "cli.h"

static const char *const cmd = "kernel-compare";

#define KSM_DIR		"/sys/kernel/mm/ksm/"
#define POLL_MS		10
#define KC_PAGES_TO_SCAN 1000	/* the default, as for umm run */

/* What one side did. */
struct side {
	bool ran;		/* it ran, whether or not it converged */
	bool done;
	bool interfered;	/* the kernel's knobs changed under us: another user */
	char why[160];		/* when not done: why */
	long pages_shared, pages_sharing;	/* the kernel's: deltas of host-wide figures */
	unsigned long ksm_zero_pages, merging, full_scans;
	long general_profit;
	double seconds, cpu_seconds;
};

struct kc {
	struct cli_ksm_knobs k;
	struct cli_list image;
	uint64_t image_bytes, copies, data_pages, timeout_ms, seed;
	bool json, allow_no_kernel;
	struct cli_image img;
	uint64_t pages_per_copy;
	struct side umm, kern;
};

static volatile sig_atomic_t got_signal;

static void on_signal(int sig)
{
	got_signal = sig;
}

static void sleep_ms(unsigned int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* Page @p of copy @c: the image's page, then data of the copy's own. */
static void fill_page(const struct kc *kc, uint64_t c, uint64_t p, uint8_t *buf)
{
	uint64_t w[CLI_PAGE / 8], key;
	unsigned int i;

	if (p < kc->img.pages) {
		memcpy(buf, kc->img.buf + p * CLI_PAGE, CLI_PAGE);
		return;
	}
	key = cli_mix64(kc->seed ^ cli_mix64(p + ((c + 1) << 40)));
	if ((key & 7) == 0) {
		memset(buf, 0, CLI_PAGE);
		return;
	}
	for (i = 0; i < CLI_PAGE / 8; i++)
		w[i] = cli_mix64(key + i);
	memcpy(buf, w, CLI_PAGE);
}

/* ---- umm's side ---- */

static void log_hook(void *ctx, int level, const char *msg)
{
	if (level < UMM_LOG_INFO)
		fprintf(stderr, "umm: %s\n", msg);
}

static bool converged(const struct umm_ksm_stats *a, const struct umm_ksm_stats *b)
{
	return a->pages_shared == b->pages_shared && a->pages_sharing == b->pages_sharing &&
	       a->ksm_zero_pages == b->ksm_zero_pages;
}

static int umm_side(struct kc *kc)
{
	struct side *s = &kc->umm;
	struct umm_ksm_stats st, mark;
	struct umm_config cfg;
	struct umm_mm **mms;
	uint8_t *buf = cli_xmalloc(cmd, CLI_PAGE);
	double t0, c0, end;
	struct umm *u;
	uint64_t c, p;
	int err;

	umm_config_init(&cfg);
	cfg.phys_bytes = (kc->copies * kc->pages_per_copy * 5 / 4 + 4096) * CLI_PAGE;
	err = umm_create(&cfg, &u);
	if (err) {
		cli_errno(cmd, err, "a umm machine for %llu pages",
			  (unsigned long long)(kc->copies * kc->pages_per_copy));
		free(buf);
		return err;
	}
	umm_set_log(u, log_hook, NULL);
	mms = cli_xcalloc(cmd, kc->copies, sizeof(*mms));
	err = cli_ksm_apply(u, &kc->k);
	for (c = 0; !err && c < kc->copies; c++) {
		uint64_t addr;

		err = umm_mm_create(u, &mms[c]);
		if (!err)
			err = umm_mmap(mms[c], 0, kc->pages_per_copy * CLI_PAGE,
				       UMM_PROT_READ | UMM_PROT_WRITE,
				       UMM_MAP_PRIVATE | UMM_MAP_ANONYMOUS, NULL, 0, &addr);
		if (!err)
			err = umm_madvise(mms[c], addr, kc->pages_per_copy * CLI_PAGE,
					  UMM_MADV_MERGEABLE);
		for (p = 0; !err && p < kc->pages_per_copy; p++) {
			fill_page(kc, c, p, buf);
			if (umm_write(mms[c], addr + p * CLI_PAGE, buf, CLI_PAGE) != CLI_PAGE)
				err = -EFAULT;
		}
	}
	free(buf);
	if (err) {
		cli_errno(cmd, err, "loading the content into umm");
		umm_destroy(u);
		free(mms);
		return err;
	}
	/* ksmd as the kernel's: a thread, batches of pages_to_scan, sleeps between */
	t0 = cli_now();
	c0 = cli_cpu_now();
	end = t0 + kc->timeout_ms / 1e3;
	umm_ksm_get_stats(u, &mark);
	err = umm_ksm_set_run(u, 1);
	while (!err && !got_signal && cli_now() < end) {
		sleep_ms(POLL_MS);
		umm_ksm_get_stats(u, &st);
		if (st.full_scans < 2)
			continue;
		if (st.full_scans >= mark.full_scans + 1 && mark.full_scans >= 2 && converged(&mark, &st)) {
			s->done = true;
			break;
		}
		if (st.full_scans > mark.full_scans)
			mark = st;
	}
	s->ran = true;
	s->seconds = cli_now() - t0;
	s->cpu_seconds = cli_cpu_now() - c0;
	umm_ksm_set_run(u, 0);
	umm_ksm_get_stats(u, &st);
	s->pages_shared = st.pages_shared;
	s->pages_sharing = st.pages_sharing;
	s->ksm_zero_pages = st.ksm_zero_pages;
	s->full_scans = st.full_scans;
	s->general_profit = st.general_profit;
	for (c = 0; c < kc->copies; c++) {
		struct umm_mm_ksm_stat ms;

		umm_mm_get_ksm_stat(mms[c], &ms);
		s->merging += ms.ksm_merging_pages;
	}
	if (!s->done)
		snprintf(s->why, sizeof(s->why), got_signal ? "interrupted" :
			 "did not converge within --timeout");
	umm_destroy(u);
	free(mms);
	return err;
}

/* ---- the kernel's side ---- */

/*
 * The knobs this command may write, and what they held before, in the
 * order they are written back: advisor_mode first, because changing it
 * resets pages_to_scan (to 100, or advisor_min_pages_to_scan), and
 * pages_to_scan only while the advisor is off (Linux refuses it else).
 * merge_across_nodes is not written: Linux refuses it while any KSM page
 * exists on the host, and one node makes it moot.
 */
enum {
	KNOB_ADVISOR_MODE, KNOB_PAGES_TO_SCAN, KNOB_SLEEP, KNOB_MAX_PAGE_SHARING,
	KNOB_USE_ZERO_PAGES, KNOB_SMART_SCAN, KNOB_PRUNE, KNOB_ADV_TARGET, KNOB_ADV_MAX_CPU,
	KNOB_ADV_MIN_PAGES, KNOB_ADV_MAX_PAGES,
};
static const char *const knob_names[] = {
	"advisor_mode", "pages_to_scan", "sleep_millisecs", "max_page_sharing", "use_zero_pages",
	"smart_scan", "stable_node_chains_prune_millisecs", "advisor_target_scan_time",
	"advisor_max_cpu", "advisor_min_pages_to_scan", "advisor_max_pages_to_scan",
};
#define NR_KNOBS (sizeof(knob_names) / sizeof(knob_names[0]))

static char saved[NR_KNOBS][32];
static bool have_saved[NR_KNOBS];

static int ksm_read(const char *name, char *buf, size_t len)
{
	char path[128];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), KSM_DIR "%s", name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return -EIO;
	buf[n] = 0;
	buf[strcspn(buf, "\n")] = 0;
	if (strchr(buf, '[')) {	/* "[none] scan-time": the one in brackets */
		char *w = strchr(buf, '[') + 1;

		w[strcspn(w, "]")] = 0;
		memmove(buf, w, strlen(w) + 1);
	}
	return 0;
}

static unsigned long ksm_ul(const char *name)
{
	char buf[32];

	return ksm_read(name, buf, sizeof(buf)) ? 0 : strtoul(buf, NULL, 10);
}

static int ksm_write(const char *name, const char *val)
{
	char path[128];
	int fd, err = 0;

	snprintf(path, sizeof(path), KSM_DIR "%s", name);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (write(fd, val, strlen(val)) < 0)
		err = -errno;
	close(fd);
	return err;
}

/*
 * Write every saved knob back, in knob_names' order, and stop ksmd.  Safe
 * to call twice.  pages_to_scan cannot be written back while the advisor
 * that was on before owns it.
 */
static void kernel_restore(void)
{
	size_t i;

	ksm_write("run", "0");
	for (i = 0; i < NR_KNOBS; i++)
		if (have_saved[i] && !ksm_write(knob_names[i], saved[i]))
			have_saved[i] = false;
}

/*
 * Whether the host kernel's KSM can be driven: says why not into @why.
 */
static bool kernel_available(char *why, size_t len)
{
	if (access(KSM_DIR "run", F_OK)) {
		snprintf(why, len, "the host kernel has no KSM (%srun is missing)", KSM_DIR);
		return false;
	}
	if (geteuid() || access(KSM_DIR "run", W_OK)) {
		snprintf(why, len, "no permission to drive the host kernel's KSM (%s needs root)",
			 KSM_DIR);
		return false;
	}
	return true;
}

/* ksmd's CPU time (user + system) in seconds, from /proc/PID/stat; -1 if unknown. */
static double ksmd_cpu(void)
{
	static int pid;
	char path[300], buf[512], comm[32];
	unsigned long ut, st;
	DIR *d;
	struct dirent *de;
	FILE *f;
	char *p;

	if (!pid && (d = opendir("/proc"))) {
		while (!pid && (de = readdir(d))) {
			int fd;
			ssize_t n;

			snprintf(path, sizeof(path), "/proc/%s/comm", de->d_name);
			fd = open(path, O_RDONLY | O_CLOEXEC);
			if (fd < 0)
				continue;
			n = read(fd, comm, sizeof(comm) - 1);
			close(fd);
			if (n == 5 && !memcmp(comm, "ksmd\n", 5))
				pid = atoi(de->d_name);
		}
		closedir(d);
	}
	if (!pid)
		return -1;
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	p = fgets(buf, sizeof(buf), f);
	fclose(f);
	if (!p || !(p = strrchr(buf, ')')))
		return -1;
	/* fields after ')': state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime */
	if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
		return -1;
	return (double)(ut + st) / sysconf(_SC_CLK_TCK);
}

static unsigned long self_ksm(const char *field)
{
	char line[128];
	unsigned long v = 0;
	size_t n = strlen(field);
	FILE *f = fopen("/proc/self/ksm_stat", "r");

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, field, n) && line[n] == ' ')
			v = strtoul(line + n + 1, NULL, 10);
	fclose(f);
	return v;
}

/* Save knob @i and write @v into it unless it holds that already.  Return: 0 or -errno. */
static int kernel_set_knob(size_t i, const char *v)
{
	int err;

	if (ksm_read(knob_names[i], saved[i], sizeof(saved[i])))
		return 0;	/* an older kernel without this knob */
	if (!strcmp(v, saved[i]))
		return 0;
	have_saved[i] = true;
	err = ksm_write(knob_names[i], v);
	if (err)
		cli_errno(cmd, err, "writing %s%s = %s", KSM_DIR, knob_names[i], v);
	return err;
}

/*
 * Set the host's knobs to @kc's.  With the advisor asked for, pages_to_scan
 * is left to it and advisor_mode is written last; without it, advisor_mode
 * is written first.  Either way pages_to_scan is saved when advisor_mode
 * changes, since that change resets it.
 */
static int kernel_set_knobs(const struct kc *kc)
{
	const struct cli_ksm_knobs *k = &kc->k;
	const uint64_t vals[NR_KNOBS] = {
		[KNOB_PAGES_TO_SCAN] = k->pages_to_scan, [KNOB_SLEEP] = k->sleep_millisecs,
		[KNOB_MAX_PAGE_SHARING] = k->max_page_sharing,
		[KNOB_USE_ZERO_PAGES] = k->use_zero_pages, [KNOB_SMART_SCAN] = k->smart_scan,
		[KNOB_PRUNE] = k->stable_node_chains_prune_millisecs,
		[KNOB_ADV_TARGET] = k->advisor_target_scan_time,
		[KNOB_ADV_MAX_CPU] = k->advisor_max_cpu,
		[KNOB_ADV_MIN_PAGES] = k->advisor_min_pages_to_scan,
		[KNOB_ADV_MAX_PAGES] = k->advisor_max_pages_to_scan,
	};
	const char *mode = cli_ksm_advisor_mode(k);
	bool advisor = k->advisor_mode != UMM_KSM_ADVISOR_NONE;
	char v[32];
	size_t i;
	int err = 0;

	if (!ksm_read(knob_names[KNOB_PAGES_TO_SCAN], saved[KNOB_PAGES_TO_SCAN], sizeof(saved[0])) &&
	    !ksm_read(knob_names[KNOB_ADVISOR_MODE], v, sizeof(v)) && strcmp(v, mode))
		have_saved[KNOB_PAGES_TO_SCAN] = true;
	if (!advisor)
		err = kernel_set_knob(KNOB_ADVISOR_MODE, mode);
	for (i = KNOB_PAGES_TO_SCAN; !err && i < NR_KNOBS; i++) {
		if (i == KNOB_PAGES_TO_SCAN && advisor)
			continue;
		snprintf(v, sizeof(v), "%llu", (unsigned long long)vals[i]);
		err = kernel_set_knob(i, v);
	}
	if (!err && advisor)
		err = kernel_set_knob(KNOB_ADVISOR_MODE, mode);
	return err;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

#define PM_PRESENT	(1ULL << 63)
#define PM_PFN_MASK	((1ULL << 55) - 1)
#define KPF_KSM		21

/*
 * This process's own share of the kernel's pages_shared and pages_sharing:
 * the pages of @maps that are KSM pages (/proc/self/pagemap for the pfn,
 * /proc/kpageflags for KPF_KSM, root), as distinct KSM pages and the rest.
 * The host-wide counters would also move with other processes' KSM pages
 * (and with stale stable nodes ksmd prunes), so they are not used when
 * these files can be read.  Return: false when they cannot.
 */
static bool kernel_own_counts(const struct kc *kc, uint8_t *const *maps, long *shared,
			      long *sharing)
{
	uint64_t n = 0, i, c, p, e, f, *pfns;
	int pm = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	int kf = open("/proc/kpageflags", O_RDONLY | O_CLOEXEC);
	bool ok = pm >= 0 && kf >= 0;

	pfns = cli_xcalloc(cmd, kc->copies * kc->pages_per_copy, sizeof(*pfns));
	for (c = 0; ok && c < kc->copies; c++)
		for (p = 0; ok && p < kc->pages_per_copy; p++) {
			uintptr_t va = (uintptr_t)maps[c] + p * CLI_PAGE;

			ok = pread(pm, &e, 8, (off_t)(va / CLI_PAGE * 8)) == 8;
			if (!ok || !(e & PM_PRESENT))
				continue;
			if (!(e & PM_PFN_MASK)) {
				ok = false;	/* pfns hidden: not root */
				break;
			}
			ok = pread(kf, &f, 8, (off_t)((e & PM_PFN_MASK) * 8)) == 8;
			if (ok && (f & (1ULL << KPF_KSM)))
				pfns[n++] = e & PM_PFN_MASK;
		}
	if (ok) {
		qsort(pfns, n, sizeof(*pfns), cmp_u64);
		*shared = 0;
		for (i = 0; i < n; i++)
			*shared += !i || pfns[i] != pfns[i - 1];
		*sharing = (long)n - *shared;
	}
	free(pfns);
	if (pm >= 0)
		close(pm);
	if (kf >= 0)
		close(kf);
	return ok;
}

/* Whether someone else drove the host's KSM while this side ran. */
static bool kernel_interfered(const struct kc *kc)
{
	char mode[32];

	if (ksm_ul("run") != 1)
		return true;
	if (kc->k.advisor_mode == UMM_KSM_ADVISOR_NONE)
		return ksm_ul("pages_to_scan") != kc->k.pages_to_scan;
	return !ksm_read("advisor_mode", mode, sizeof(mode)) &&
	       strcmp(mode, cli_ksm_advisor_mode(&kc->k));
}

static int kernel_side(struct kc *kc)
{
	struct side *s = &kc->kern;
	uint64_t bytes = kc->pages_per_copy * CLI_PAGE, c, p;
	unsigned long fs0, base_shared, base_sharing;
	unsigned long last_fs = 0, last_merging = ~0UL;
	uint8_t **maps = cli_xcalloc(cmd, kc->copies, sizeof(*maps));
	double t0, cpu0, end;
	int err = 0;

	for (c = 0; c < kc->copies; c++) {
		maps[c] = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (maps[c] == MAP_FAILED) {
			maps[c] = NULL;
			err = -errno;
			cli_errno(cmd, err, "host memory for copy %llu", (unsigned long long)c);
			goto out;
		}
		madvise(maps[c], bytes, MADV_NOHUGEPAGE);
		for (p = 0; p < kc->pages_per_copy; p++)
			fill_page(kc, c, p, maps[c] + p * CLI_PAGE);
		if (madvise(maps[c], bytes, MADV_MERGEABLE)) {
			err = -errno;
			cli_errno(cmd, err, "madvise(MADV_MERGEABLE)");
			goto out;
		}
	}
	err = kernel_set_knobs(kc);
	if (err)
		goto out;
	base_shared = ksm_ul("pages_shared");
	base_sharing = ksm_ul("pages_sharing");
	fs0 = ksm_ul("full_scans");
	cpu0 = ksmd_cpu();
	t0 = cli_now();
	end = t0 + kc->timeout_ms / 1e3;
	err = ksm_write("run", "1");
	if (err) {
		cli_errno(cmd, err, "writing %srun = 1", KSM_DIR);
		goto out;
	}
	/*
	 * Other users of the host's KSM move its global counters too (a
	 * process exits, someone writes run = 2): convergence is judged on
	 * this process's own merging pages, scans counted as they advance.
	 */
	while (!got_signal && cli_now() < end) {
		unsigned long fs, merging;

		sleep_ms(POLL_MS);
		if (kernel_interfered(kc)) {
			s->interfered = true;
			break;
		}
		fs = ksm_ul("full_scans");
		if (fs < fs0)
			fs0 = fs;	/* the counter went back: count from here */
		if (fs < fs0 + 2 || fs == last_fs)
			continue;
		merging = self_ksm("ksm_merging_pages");
		if (merging == last_merging) {
			s->done = true;
			break;
		}
		last_fs = fs;
		last_merging = merging;
	}
	s->ran = true;
	s->seconds = cli_now() - t0;
	s->cpu_seconds = cpu0 < 0 ? -1 : ksmd_cpu() - cpu0;
	ksm_write("run", "0");
	if (!kernel_own_counts(kc, maps, &s->pages_shared, &s->pages_sharing)) {
		/* host-wide counters, as deltas: others' KSM pages may come and go meanwhile */
		s->pages_shared = ksm_ul("pages_shared") - base_shared;
		s->pages_sharing = ksm_ul("pages_sharing") - base_sharing;
	}
	s->ksm_zero_pages = self_ksm("ksm_zero_pages");
	s->full_scans = ksm_ul("full_scans") - fs0;
	s->general_profit = self_ksm("ksm_process_profit");
	s->merging = self_ksm("ksm_merging_pages");
	if (s->interfered)
		snprintf(s->why, sizeof(s->why), "someone else changed %s meanwhile (run, "
			 "pages_to_scan or advisor_mode): no comparison", KSM_DIR);
	else if (!s->done)
		snprintf(s->why, sizeof(s->why), got_signal ? "interrupted" :
			 "did not converge within --timeout");
out:
	for (c = 0; c < kc->copies; c++)
		if (maps[c])
			munmap(maps[c], bytes);
	free(maps);
	kernel_restore();
	return err;
}

/* ---- the report ---- */

static void row(const char *name, const struct side *b, long va, long vb)
{
	printf("  %-22s %14ld ", name, va);
	if (b->ran)
		printf("%14ld\n", vb);
	else
		printf("%14s\n", "-");
}

static void report_text(const struct kc *kc)
{
	const struct side *u = &kc->umm, *k = &kc->kern;
	bool kv = k->ran;

	printf("content: %llu copies x (%llu image pages from %llu files + %llu data pages) = %llu pages\n",
	       (unsigned long long)kc->copies, (unsigned long long)kc->img.pages,
	       (unsigned long long)kc->img.files, (unsigned long long)kc->data_pages,
	       (unsigned long long)(kc->copies * kc->pages_per_copy));
	printf("knobs: ");
	cli_ksm_text(stdout, "       ", &kc->k);
	printf("\n");
	printf("  %-22s %14s %14s\n", "", "umm", "host kernel");
	row("pages_shared", k, u->pages_shared, k->pages_shared);
	row("pages_sharing", k, u->pages_sharing, k->pages_sharing);
	row("ksm_zero_pages", k, u->ksm_zero_pages, k->ksm_zero_pages);
	row("ksm_merging_pages", k, u->merging, k->merging);
	row("full_scans", k, u->full_scans, k->full_scans);
	printf("  %-22s %14.3f ", "seconds to converge", u->seconds);
	kv ? printf("%14.3f\n", k->seconds) : printf("%14s\n", "-");
	printf("  %-22s %14.3f ", "ksmd CPU seconds", u->cpu_seconds);
	kv && k->cpu_seconds >= 0 ? printf("%14.3f\n", k->cpu_seconds) : printf("%14s\n", "-");
	if (!u->done)
		printf("umm: %s\n", u->why);
	if (!k->done)
		printf("host kernel: %s\n", k->why);
}

static void json_side(FILE *f, const struct side *s)
{
	fprintf(f, "{\"ran\": %s, \"done\": %s, \"interfered\": %s, \"why\": ",
		s->ran ? "true" : "false", s->done ? "true" : "false",
		s->interfered ? "true" : "false");
	cli_json_str(f, s->why);
	fprintf(f, ", \"pages_shared\": %ld, \"pages_sharing\": %ld, \"ksm_zero_pages\": %lu, "
		"\"ksm_merging_pages\": %lu, \"full_scans\": %lu, \"seconds\": %.3f, "
		"\"cpu_seconds\": %.3f}", s->pages_shared, s->pages_sharing, s->ksm_zero_pages,
		s->merging, s->full_scans, s->seconds, s->cpu_seconds);
}

static int report_json(const struct kc *kc)
{
	struct cli_json j;
	FILE *f = cli_json_open(cmd, &j);

	if (!f)
		return -ENOMEM;
	fprintf(f, "{\"command\": \"kernel-compare\", \"copies\": %llu, \"image_pages\": %llu, "
		"\"data_pages\": %llu, \"pages\": %llu,\n \"knobs\": {",
		(unsigned long long)kc->copies, (unsigned long long)kc->img.pages,
		(unsigned long long)kc->data_pages,
		(unsigned long long)(kc->copies * kc->pages_per_copy));
	cli_ksm_json(f, &kc->k);
	fprintf(f, "},\n \"umm\": ");
	json_side(f, &kc->umm);
	fprintf(f, ",\n \"kernel\": ");
	json_side(f, &kc->kern);
	fprintf(f, "}\n");
	return cli_json_emit(cmd, &j);
}

static const struct cli_usage kc_usage = {
	.synopsis = "[OPTIONS]",
	.description =
		"Merge the same content with umm's KSM and with the host kernel's\n"
		"(/sys/kernel/mm/ksm, root): COPIES copies of an image made of real files,\n"
		"each with data of its own.  Both run ksmd with the same knobs until two full\n"
		"scans have passed and one more changes nothing; a table shows the counts,\n"
		"the time to converge and ksmd's CPU time side by side.  The kernel's knobs\n"
		"are written back afterwards and its ksmd left stopped (run = 0), also when\n"
		"a signal ends the command.",
	.footer =
		"Without KSM in the host kernel, or without permission to drive it, the\n"
		"command says so in one line and exits 1; with --allow-no-kernel it shows\n"
		"umm's column alone and exits 0.\n"
		"Exit status: 0 success, 1 a side failed or could not run, 2 bad usage.",
};

/* Load the image, check the host, run both sides.  Return: an exit status. */
static int kc_parsed(struct kc *kc)
{
	struct sigaction sa = { .sa_handler = on_signal };
	int err, status = CLI_EXIT_OK;
	char why[160];
	bool kernel_ok;

	if (!cli_ksm_check(cmd, &kc->k))
		return CLI_EXIT_USAGE;
	status = cli_image_load(cmd, &kc->image, kc->image_bytes, &kc->img);
	if (status)
		return status;
	kernel_ok = kernel_available(why, sizeof(why));
	if (!kernel_ok && !kc->allow_no_kernel) {
		cli_error(cmd, "%s", why);
		cli_image_free(&kc->img);
		return CLI_EXIT_FAIL;
	}
	if (!kernel_ok)
		snprintf(kc->kern.why, sizeof(kc->kern.why), "%s", why);
	kc->pages_per_copy = kc->img.pages + kc->data_pages;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	err = umm_side(kc);
	if (!err && kernel_ok && !got_signal)
		err = kernel_side(kc);
	if (kernel_ok)
		kernel_restore();	/* again: nothing may be left running */
	if (got_signal) {
		cli_error(cmd, "interrupted by signal %d; the kernel's KSM knobs were restored, run = 0",
			  (int)got_signal);
		status = CLI_EXIT_FAIL;
	} else if (err) {
		status = CLI_EXIT_FAIL;
	} else {
		if (kc->json && report_json(kc))
			status = CLI_EXIT_FAIL;
		else if (!kc->json)
			report_text(kc);
		if (!kc->umm.done || (kernel_ok && !kc->kern.done))
			status = CLI_EXIT_FAIL;
	}
	cli_image_free(&kc->img);
	return status;
}

int cmd_kernel_compare(int argc, char **argv)
{
	struct kc kc = {
		.image = CLI_DEFAULT_IMAGE,
		.image_bytes = 4 << 20, .copies = 4, .data_pages = 256, .timeout_ms = 60000,
		.seed = 1,
	};
	struct cli_opt opts[24] = {
		{ "copies", CLI_OPT_UINT, &kc.copies, 1, 256, 0, "N", "copies of the image" },
		{ "image", CLI_OPT_LIST, &kc.image, 0, 0, 0, "PATH",
		  "file or directory the image is read from" },
		{ "image-size", CLI_OPT_SIZE, &kc.image_bytes, CLI_PAGE, 1ULL << 32, CLI_PAGE, "SIZE",
		  "most bytes of files in the image" },
		{ "data-pages", CLI_OPT_UINT, &kc.data_pages, 0, 1 << 22, 0, "N",
		  "pages of data of its own after each copy" },
		{ "timeout", CLI_OPT_UINT, &kc.timeout_ms, 100, 3600000, 0, "MS",
		  "give up on a side that has not converged by then" },
		{ "allow-no-kernel", CLI_OPT_FLAG, &kc.allow_no_kernel, 0, 0, 0, NULL,
		  "without the host's KSM, show umm's side alone" },
		{ "json", CLI_OPT_FLAG, &kc.json, 0, 0, 0, NULL,
		  "print the figures as one JSON object instead" },
	};
	size_t n = 0;
	int status = CLI_EXIT_OK;

	while (opts[n].name)
		n++;
	cli_ksm_defaults(&kc.k);
	kc.k.pages_to_scan = KC_PAGES_TO_SCAN;
	cli_ksm_opts(&kc.k, &opts[n]);
	switch (cli_parse(cmd, opts, &kc_usage, argc, argv)) {
	case CLI_PARSE_HELP:
		status = CLI_EXIT_OK;
		break;
	case CLI_PARSE_ERROR:
		status = CLI_EXIT_USAGE;
		break;
	case CLI_PARSE_OK:
		status = kc_parsed(&kc);
		break;
	}
	cli_list_free(&kc.image);
	return status;
}
