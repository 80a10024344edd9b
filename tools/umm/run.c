// SPDX-License-Identifier: MIT
/*
 * run.c - `umm run`: virtual machines booting the same image, merged by
 * ksmd while their vCPUs run, every byte checked.
 *
 *   boot     the image is assembled from real files on this machine
 *            (shared libraries and programs, page-aligned so that the same
 *            file gives the same pages); each guest is an address space
 *            whose guest memory holds the image followed by data of its own
 *            (one page in eight left empty), marked MADV_MERGEABLE, with a
 *            KVM-style shadow MMU (clients/shadow.h) over it;
 *   run      ksmd scans and merges while T vCPU threads per guest read and
 *            write guest memory through the shadow MMU, checking every
 *            byte they read; the progress line shows what ksmd achieved;
 *   settle   the vCPUs stop, ksmd stops, two more full scans on this
 *            thread let merging converge;
 *   check    every page of every guest is read back through its shadow
 *            MMU and compared with the model; umm_validate() checks the
 *            machine;
 *   exit     every guest exits; no frame may leak.
 *
 * The model: a page's original content is the image's (image pages), or a
 * function of the seed and the guest (data pages); a page written since
 * boot has a 4 KiB copy.  A vCPU only touches pages it owns (blocks of
 * BLOCK_PAGES pages dealt out round-robin over the guest's vCPUs), so the
 * model needs no locking, while ksmd, reclaim and the notifiers race with
 * every access.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <umm/umm.h>
#include <umm/vmscan.h>

#include "cli.h"
#include "shadow.h"

#define PAGE		UMM_PAGE_SIZE
#define BLOCK_PAGES	8	/* pages a vCPU owns in a row */
#define CHUNK_PAGES	64	/* pages per access when filling or checking */
#define MAX_OP_BYTES	(2 * PAGE)
#define MAX_VCPUS	1024	/* guests x threads */
#define MAX_REPORTED	5	/* mismatches described on stderr */
#define SAMPLE_MS	100	/* progress and plot resolution */
#define RUN_PAGES_TO_SCAN 1000	/* Linux's 100 needs minutes for a few guests */

static const char *const cmd = "run";

struct run_opts {
	uint64_t phys, swap, nodes, seed;
	uint64_t guests, image_bytes, data_pages, threads, duration_ms, write_pct, rate;
	struct cli_ksm_knobs ksm;
	struct cli_list image;
	const char *plot;
	bool json, verbose;
};

/* One guest: its address space, shadow MMU and what its memory should hold. */
struct guest {
	unsigned int id;
	struct umm_mm *mm;
	struct shadow_vm *vm;
	uint64_t base;		/* guest physical address 0 */
	uint8_t **copy;		/* per page: its bytes if written since boot */
	struct umm_mm_stat st;
	struct umm_mm_ksm_stat ksm;
	struct shadow_stats sh;
};

struct vcpu {
	struct run *r;
	struct guest *g;
	struct shadow_vcpu *cpu;
	unsigned int idx;	/* within its guest */
	pthread_t tid;
	uint64_t rng;
	uint64_t reads, writes, bytes_read;
	int err;
	const char *err_op;
	uint64_t err_gpa;
};

/* One point of the time series the progress line and the plot show. */
struct sample {
	double t;
	struct umm_ksm_stats ks;
	double saved_mib, notify_rate;
	unsigned long invalidations;
};

struct run {
	struct run_opts o;
	struct cli_image img;
	struct umm *u;
	char swap_path[64];
	char plot_tmp[4096];	/* where the plot is drawn before it replaces --plot */
	int plot_fd;
	uint64_t nr_pages, image_pages;	/* per guest */
	struct guest *guests;
	unsigned int nr_guests;		/* created so far */
	struct vcpu *vcpus;
	unsigned int nr_vcpus;
	atomic_bool stop;

	atomic_ulong mismatches;
	atomic_uint reported;

	struct sample *samples;
	size_t nr_samples, cap_samples;

	double t_start, t_boot, t_run, t_settle, t_check;
	struct umm_stat st;
	struct umm_vmscan_stat vs;
	struct umm_ksm_stats ks_run, ks;	/* at the end of run, after settling */
	uint64_t reads, writes, bytes_read, pages_checked;
	int validate_err;
	char validate_msg[256];
	long leaked;
};

static uint64_t rand64(uint64_t *state)
{
	uint64_t x = *state;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*state = x ? x : 0x9e3779b97f4a7c15ULL;
	return x * 0x2545f4914f6cdd1dULL;
}

static uint64_t rand_below(uint64_t *state, uint64_t n)
{
	return n ? rand64(state) % n : 0;
}

static double mib(uint64_t pages)
{
	return pages * (double)PAGE / (1 << 20);
}

/* ---- the model ---- */

/* Data page @p of a guest is empty one time in eight, as guests leave memory. */
static bool data_page_is_empty(const struct run *r, const struct guest *g, uint64_t p)
{
	return (cli_mix64(r->o.seed ^ cli_mix64(p ^ ((uint64_t)g->id << 40))) & 7) == 0;
}

/* The bytes page @p of @g held at boot, into @buf. */
static void fill_original(const struct run *r, const struct guest *g, uint64_t p,
			  uint8_t *buf)
{
	uint64_t key, w[PAGE / 8];
	unsigned int i;

	if (p < r->image_pages) {
		memcpy(buf, r->img.buf + p * PAGE, PAGE);
		return;
	}
	if (data_page_is_empty(r, g, p)) {
		memset(buf, 0, PAGE);
		return;
	}
	key = cli_mix64(r->o.seed ^ cli_mix64(p + ((uint64_t)(g->id + 1) << 40)));
	for (i = 0; i < PAGE / 8; i++)
		w[i] = cli_mix64(key + i);
	memcpy(buf, w, PAGE);
}

static void fill_expected(const struct run *r, const struct guest *g, uint64_t p,
			  uint8_t *buf)
{
	if (g->copy[p])
		memcpy(buf, g->copy[p], PAGE);
	else
		fill_original(r, g, p, buf);
}

/* Record @len bytes of @buf written at page @p, offset @off of @g. */
static void model_write(const struct run *r, struct guest *g, uint64_t p, unsigned int off,
			const uint8_t *buf, size_t len)
{
	while (len) {
		size_t n = PAGE - off < len ? PAGE - off : len;

		if (!g->copy[p]) {
			g->copy[p] = cli_xmalloc(cmd, PAGE);
			fill_original(r, g, p, g->copy[p]);
		}
		memcpy(g->copy[p] + off, buf, n);
		buf += n;
		len -= n;
		off = 0;
		p++;
	}
}

/* Compare @len bytes read at page @p, offset @off of @g with the model. */
static void model_check(struct run *r, const struct guest *g, uint64_t p, unsigned int off,
			const uint8_t *got, size_t len)
{
	uint8_t want[PAGE];
	unsigned long bad = 0;

	while (len) {
		size_t n = PAGE - off < len ? PAGE - off : len, i;

		fill_expected(r, g, p, want);
		if (memcmp(want + off, got, n)) {
			bad++;
			for (i = 0; want[off + i] == got[i]; i++)
				;
			if (atomic_fetch_add(&r->reported, 1) < MAX_REPORTED)
				cli_error(cmd, "mismatch: guest %u at gpa 0x%llx: read 0x%02x, expected 0x%02x",
					  g->id, (unsigned long long)(p * PAGE + off + i),
					  got[i], want[off + i]);
		}
		got += n;
		len -= n;
		off = 0;
		p++;
	}
	if (bad)
		atomic_fetch_add(&r->mismatches, bad);
}

/* ---- helpers ---- */

/* Copy all @len bytes between @buf and guest memory through @cpu (or the host side). */
static int xfer(struct shadow_vcpu *cpu, struct umm_mm *mm, uint64_t addr, void *buf,
		size_t len, bool write)
{
	uint8_t *b = buf;

	while (len) {
		ssize_t n;

		if (cpu)
			n = write ? shadow_vcpu_write(cpu, addr, b, len)
				  : shadow_vcpu_read(cpu, addr, b, len);
		else
			n = write ? umm_write(mm, addr, b, len) : umm_read(mm, addr, b, len);
		if (n < 0)
			return (int)n;
		if (n == 0)
			return -EFAULT;
		addr += n;
		b += n;
		len -= n;
	}
	return 0;
}

static void log_hook(void *ctx, int level, const char *msg)
{
	const struct run *r = ctx;
	size_t len = strlen(msg);

	if (level >= UMM_LOG_INFO && !r->o.verbose)
		return;
	while (len && msg[len - 1] == '\n')
		len--;
	fflush(stdout);
	fprintf(stderr, "umm: %.*s\n", (int)len, msg);
}

static void run_fail(const struct run *r, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void run_fail(const struct run *r, int err, const char *fmt, ...)
{
	char what[256], sz[32];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	if (err == -ENOMEM)
		cli_error(cmd, "%s: %s (the scenario does not fit in --phys %s%s)", what,
			  strerror(-err), cli_fmt_size(sz, sizeof(sz), r->o.phys),
			  r->o.swap ? " and --swap" : "");
	else
		cli_errno(cmd, err, "%s", what);
}

/* ---- boot ---- */

static int boot_guest(struct run *r, struct guest *g, uint8_t *buf)
{
	const int prot = UMM_PROT_READ | UMM_PROT_WRITE;
	uint64_t len = r->nr_pages * PAGE, p, k;
	int err;

	g->copy = cli_xcalloc(cmd, r->nr_pages, sizeof(*g->copy));
	err = umm_mm_create(r->u, &g->mm);
	if (err) {
		run_fail(r, err, "boot: guest %u: creating its address space", g->id);
		return err;
	}
	err = umm_mmap(g->mm, 0, len, prot, UMM_MAP_PRIVATE | UMM_MAP_ANONYMOUS, NULL, 0,
		       &g->base);
	if (!err)
		err = umm_madvise(g->mm, g->base, len, UMM_MADV_MERGEABLE);
	if (!err)
		err = shadow_vm_create(g->mm, g->base, len, &g->vm);
	if (err) {
		run_fail(r, err, "boot: guest %u: mapping its memory", g->id);
		return err;
	}
	/* the VMM loads the image and the data (empty pages too: the guest cleared them) */
	for (p = 0; p < r->nr_pages; p += k) {
		k = r->nr_pages - p < CHUNK_PAGES ? r->nr_pages - p : CHUNK_PAGES;
		for (uint64_t i = 0; i < k; i++)
			fill_original(r, g, p + i, buf + i * PAGE);
		err = xfer(NULL, g->mm, g->base + p * PAGE, buf, k * PAGE, true);
		if (err) {
			run_fail(r, err, "boot: guest %u: loading gpa 0x%llx", g->id,
				 (unsigned long long)(p * PAGE));
			return err;
		}
	}
	return 0;
}

static int phase_boot(struct run *r)
{
	uint8_t *buf = cli_xmalloc(cmd, CHUNK_PAGES * PAGE);
	double t0 = cli_now();
	int err = 0;

	r->guests = cli_xcalloc(cmd, r->o.guests, sizeof(*r->guests));
	for (; r->nr_guests < r->o.guests && !err; r->nr_guests++) {
		r->guests[r->nr_guests].id = r->nr_guests;
		err = boot_guest(r, &r->guests[r->nr_guests], buf);
	}
	free(buf);
	r->t_boot = cli_now() - t0;
	return err;
}

/* ---- the vCPUs ---- */

/*
 * Choose one access of vCPU @v: a data page 49 writes in 50 (else an
 * image page: guests seldom write their code), any page for a read, moved into the nearest block @v owns;
 * a length that stays in the block.  Return: false if @v owns no block.
 */
static bool pick_range(struct vcpu *v, bool write, uint64_t *page, unsigned int *off,
		       size_t *len)
{
	const struct run *r = v->r;
	uint64_t t = r->o.threads, p, b, first, last, room;

	if (write && rand_below(&v->rng, 50) && r->o.data_pages)
		p = r->image_pages + rand_below(&v->rng, r->o.data_pages);
	else if (write)
		p = rand_below(&v->rng, r->image_pages);
	else
		p = rand_below(&v->rng, r->nr_pages);
	b = p / BLOCK_PAGES - (p / BLOCK_PAGES) % t + v->idx;
	if (b * BLOCK_PAGES >= r->nr_pages) {
		if (b < t)
			return false;
		b -= t;
	}
	first = b * BLOCK_PAGES;
	last = first + BLOCK_PAGES < r->nr_pages ? first + BLOCK_PAGES : r->nr_pages;
	*page = first + p % BLOCK_PAGES;
	if (*page >= last)
		*page = last - 1;
	*off = rand_below(&v->rng, PAGE);
	room = (last - *page) * PAGE - *off;
	*len = rand_below(&v->rng, 10) < 8 ? 1 + rand_below(&v->rng, 256)
					   : 1 + rand_below(&v->rng, MAX_OP_BYTES);
	if (*len > room)
		*len = room;
	return true;
}

static int vcpu_op(struct vcpu *v, uint8_t *buf)
{
	bool write = rand_below(&v->rng, 100) < v->r->o.write_pct;
	uint64_t p, gpa;
	unsigned int off;
	size_t len, i;
	int err;

	if (!pick_range(v, write, &p, &off, &len))
		return 0;
	gpa = v->g->base + p * PAGE + off;
	if (write) {
		for (i = 0; i < len; i++)
			buf[i] = rand64(&v->rng);
		err = xfer(v->cpu, NULL, gpa, buf, len, true);
		if (!err)
			model_write(v->r, v->g, p, off, buf, len);
		v->writes++;
	} else {
		err = xfer(v->cpu, NULL, gpa, buf, len, false);
		if (!err)
			model_check(v->r, v->g, p, off, buf, len);
		v->reads++;
		v->bytes_read += len;
	}
	if (err) {
		v->err = err;
		v->err_op = write ? "write" : "read";
		v->err_gpa = gpa - v->g->base;
	}
	return err;
}

/* Sleep until @t (CLOCK_MONOTONIC seconds). */
static void sleep_until(double t)
{
	double d = t - cli_now();
	struct timespec ts;

	if (d <= 0)
		return;
	ts.tv_sec = (time_t)d;
	ts.tv_nsec = (long)((d - ts.tv_sec) * 1e9);
	nanosleep(&ts, NULL);
}

/* A vCPU thread: accesses at --rate per second until told to stop. */
static void *vcpu_main(void *arg)
{
	struct vcpu *v = arg;
	struct run *r = v->r;
	uint8_t *buf = cli_xmalloc(cmd, MAX_OP_BYTES);
	double t0 = cli_now();
	uint64_t n = 0;

	while (!atomic_load_explicit(&r->stop, memory_order_relaxed) && !v->err) {
		vcpu_op(v, buf);
		if (r->o.rate && !(++n % 16))
			sleep_until(t0 + (double)n / r->o.rate);
	}
	free(buf);
	return NULL;
}

static int start_vcpus(struct run *r)
{
	unsigned int i;
	int err;

	r->vcpus = cli_xcalloc(cmd, r->o.guests * r->o.threads, sizeof(*r->vcpus));
	for (i = 0; i < r->o.guests * r->o.threads; i++) {
		struct vcpu *v = &r->vcpus[i];

		v->r = r;
		v->g = &r->guests[i / r->o.threads];
		v->idx = i % r->o.threads;
		v->rng = cli_mix64(r->o.seed ^ cli_mix64(i + 1));
		err = shadow_vcpu_create(v->g->vm, &v->cpu);
		if (!err)
			err = -pthread_create(&v->tid, NULL, vcpu_main, v);
		if (err) {
			if (v->cpu)
				shadow_vcpu_destroy(v->cpu);
			v->cpu = NULL;
			cli_errno(cmd, err, "starting vCPU %u of guest %u", v->idx, v->g->id);
			return err;
		}
		r->nr_vcpus++;
	}
	return 0;
}

/* Stop and join every vCPU; sum their figures.  Return: the first error. */
static int stop_vcpus(struct run *r)
{
	unsigned int i;
	int err = 0;

	atomic_store(&r->stop, true);
	for (i = 0; i < r->nr_vcpus; i++) {
		struct vcpu *v = &r->vcpus[i];

		pthread_join(v->tid, NULL);
		shadow_vcpu_destroy(v->cpu);
		v->cpu = NULL;
		r->reads += v->reads;
		r->writes += v->writes;
		r->bytes_read += v->bytes_read;
		if (v->err && !err) {
			err = v->err;
			run_fail(r, err, "guest %u, vCPU %u: %s at gpa 0x%llx", v->g->id, v->idx,
				 v->err_op, (unsigned long long)v->err_gpa);
		}
	}
	r->nr_vcpus = 0;
	return err;
}

/* ---- sampling and the progress line ---- */

static unsigned long invalidations(const struct run *r)
{
	struct shadow_stats st;
	unsigned long n = 0;
	unsigned int i;

	for (i = 0; i < r->nr_guests; i++) {
		shadow_vm_stats(r->guests[i].vm, &st);
		n += st.invalidations;
	}
	return n;
}

static double saved_mib(const struct umm_ksm_stats *ks)
{
	return mib(ks->pages_sharing + ks->ksm_zero_pages);
}

static void take_sample(struct run *r)
{
	struct sample *s, *prev;

	if (r->nr_samples == r->cap_samples) {
		r->cap_samples = r->cap_samples ? 2 * r->cap_samples : 256;
		r->samples = realloc(r->samples, r->cap_samples * sizeof(*r->samples));
		if (!r->samples) {
			cli_error(cmd, "out of host memory");
			exit(CLI_EXIT_FAIL);
		}
	}
	s = &r->samples[r->nr_samples++];
	prev = r->nr_samples > 1 ? s - 1 : NULL;
	s->t = cli_now() - r->t_start;
	umm_ksm_get_stats(r->u, &s->ks);
	s->saved_mib = saved_mib(&s->ks);
	s->invalidations = invalidations(r);
	s->notify_rate = prev && s->t > prev->t
		? (s->invalidations - prev->invalidations) / (s->t - prev->t) : 0;
}

/*
 * The progress line, cut to the terminal's width: a line that wrapped
 * could not be rewritten in place by the next one.
 */
static void print_progress(const struct run *r, const char *phase)
{
	const struct sample *s = &r->samples[r->nr_samples - 1];
	struct winsize ws;
	char line[256];
	int width = sizeof(line) - 1;

	if (!ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) && ws.ws_col > 1 && ws.ws_col < width)
		width = ws.ws_col - 1;
	/* most telling first: a narrow terminal loses the end */
	snprintf(line, sizeof(line), "%s %.1fs: saved %.1f MiB, shared/sharing %lu/%lu, "
		 "notifier %.0f/s, scanned %lu, full scans %lu", phase, s->t, s->saved_mib,
		 s->ks.pages_shared, s->ks.pages_sharing, s->notify_rate, s->ks.pages_scanned,
		 s->ks.full_scans);
	printf("\r\033[K%.*s", width, line);
	fflush(stdout);
}

/* ---- phases ---- */

static int phase_run(struct run *r, bool progress)
{
	double t0 = cli_now(), end = t0 + r->o.duration_ms / 1e3, next = t0;
	int err, err2;

	err = umm_ksm_set_run(r->u, 1);
	if (err) {
		cli_errno(cmd, err, "starting ksmd");
		return err;
	}
	err = start_vcpus(r);
	while (!err && cli_now() < end) {
		next += SAMPLE_MS / 1e3;
		sleep_until(next < end ? next : end);
		take_sample(r);
		if (progress)
			print_progress(r, "run");
	}
	err2 = stop_vcpus(r);
	umm_ksm_get_stats(r->u, &r->ks_run);
	r->t_run = cli_now() - t0;
	return err ? err : err2;
}

/* ksmd stops; scans on this thread until a full scan changes nothing (at least two). */
static int phase_settle(struct run *r, bool progress)
{
	double t0 = cli_now();
	struct umm_ksm_stats a, b;
	int i, err;

	err = umm_ksm_set_run(r->u, 0);
	for (i = 0; !err && i < 8; i++) {
		umm_ksm_get_stats(r->u, &a);
		err = umm_ksm_full_scans(r->u, 1);
		umm_ksm_get_stats(r->u, &b);
		take_sample(r);
		if (progress)
			print_progress(r, "settle");
		if (i >= 1 && a.pages_shared == b.pages_shared &&
		    a.pages_sharing == b.pages_sharing && a.ksm_zero_pages == b.ksm_zero_pages)
			break;
	}
	if (progress)
		printf("\n");
	if (err)
		cli_errno(cmd, err, "settle: ksm scan");
	umm_ksm_get_stats(r->u, &r->ks);
	if (r->o.ksm.advisor_mode != UMM_KSM_ADVISOR_NONE) {
		struct umm_ksm_params p;

		if (!umm_ksm_get_params(r->u, &p))
			r->o.ksm.pages_to_scan = p.pages_to_scan;	/* the advisor's last choice */
	}
	r->t_settle = cli_now() - t0;
	return err;
}

/* Read every page of every guest back through its shadow MMU. */
static int phase_check(struct run *r)
{
	uint8_t *buf = cli_xmalloc(cmd, CHUNK_PAGES * PAGE);
	double t0 = cli_now();
	unsigned int i;
	int err = 0;

	for (i = 0; i < r->nr_guests && !err; i++) {
		struct guest *g = &r->guests[i];
		struct shadow_vcpu *cpu;
		uint64_t p, k;

		err = shadow_vcpu_create(g->vm, &cpu);
		if (err) {
			cli_errno(cmd, err, "check: guest %u: a vCPU", g->id);
			break;
		}
		for (p = 0; p < r->nr_pages && !err; p += k) {
			k = r->nr_pages - p < CHUNK_PAGES ? r->nr_pages - p : CHUNK_PAGES;
			err = xfer(cpu, NULL, g->base + p * PAGE, buf, k * PAGE, false);
			if (err)
				run_fail(r, err, "check: guest %u at gpa 0x%llx", g->id,
					 (unsigned long long)(p * PAGE));
			else
				model_check(r, g, p, 0, buf, k * PAGE);
			r->pages_checked += k;
		}
		shadow_vcpu_destroy(cpu);
	}
	free(buf);
	for (i = 0; i < r->nr_guests; i++) {
		umm_mm_get_stat(r->guests[i].mm, &r->guests[i].st);
		umm_mm_get_ksm_stat(r->guests[i].mm, &r->guests[i].ksm);
		shadow_vm_stats(r->guests[i].vm, &r->guests[i].sh);
	}
	umm_get_stat(r->u, &r->st);
	umm_get_vmscan_stat(r->u, &r->vs);
	r->validate_err = umm_validate(r->u, UMM_VALIDATE_EXACT, r->validate_msg,
				       sizeof(r->validate_msg));
	r->t_check = cli_now() - t0;
	return err;
}

/* Exit every guest; count the frames that did not come back. */
static void phase_exit(struct run *r)
{
	unsigned int i;

	for (i = r->nr_guests; i-- > 0;) {
		struct guest *g = &r->guests[i];

		if (g->vm)
			shadow_vm_destroy(g->vm);
		if (g->mm)
			umm_mm_exit(g->mm);
		if (g->copy)
			for (uint64_t p = 0; p < r->nr_pages; p++)
				free(g->copy[p]);
		free(g->copy);
	}
	r->nr_guests = 0;
	r->leaked = umm_leak_check(r->u, NULL, NULL);
}

/* ---- the report ---- */

static bool run_ok(const struct run *r)
{
	return !atomic_load(&r->mismatches) && !r->validate_err && !r->leaked;
}

static void report_text(const struct run *r)
{
	const struct umm_ksm_stats *ks = &r->ks;
	uint64_t mapped = r->o.guests * r->nr_pages;
	unsigned long bad = atomic_load(&r->mismatches);
	char sz[32];
	unsigned int i;

	printf("\nreport\n");
	printf("  %-22s %llu pages (%.1f MiB) from %llu files, %llu empty pages\n", "image",
	       (unsigned long long)r->image_pages, mib(r->image_pages),
	       (unsigned long long)r->img.files, (unsigned long long)r->img.zero_pages);
	printf("  %-22s %llu x (%llu image + %llu data pages), %llu vCPUs each\n", "guests",
	       (unsigned long long)r->o.guests, (unsigned long long)r->image_pages,
	       (unsigned long long)r->o.data_pages, (unsigned long long)r->o.threads);
	printf("  %-22s %s (%llu frames), swap %s\n", "machine",
	       cli_fmt_size(sz, sizeof(sz), r->st.nr_frames * PAGE),
	       (unsigned long long)r->st.nr_frames, r->o.swap ? cli_fmt_size(sz, sizeof(sz), r->o.swap) : "none");
	printf("  %-22s ", "ksm knobs");
	cli_ksm_text(stdout, "                         ", &r->o.ksm);
	printf("  %-22s %10s %10s\n", "ksm", "after run", "settled");
#define ROW(name, field) printf("    %-20s %10lu %10lu\n", name, r->ks_run.field, ks->field)
	ROW("pages_shared", pages_shared);
	ROW("pages_sharing", pages_sharing);
	ROW("pages_unshared", pages_unshared);
	ROW("pages_volatile", pages_volatile);
	ROW("ksm_zero_pages", ksm_zero_pages);
	ROW("pages_scanned", pages_scanned);
	ROW("full_scans", full_scans);
	ROW("stable_node_chains", stable_node_chains);
	ROW("stable_node_dups", stable_node_dups);
#undef ROW
	printf("    %-20s %10ld %10ld\n", "general_profit", r->ks_run.general_profit,
	       ks->general_profit);
	printf("  %-22s %.1f MiB of %.1f MiB mapped (%.1f%%), general profit %.1f MiB\n",
	       "saved", saved_mib(ks), mib(mapped),
	       mapped ? 100.0 * (ks->pages_sharing + ks->ksm_zero_pages) / mapped : 0.0,
	       ks->general_profit / 1048576.0);
	printf("  %-22s %6s %10s %8s %10s %9s %8s\n", "per guest", "rss", "merging", "zero",
	       "profit", "faults", "zaps");
	for (i = 0; i < r->o.guests; i++) {
		const struct guest *g = &r->guests[i];

		printf("    guest %-14u %6llu %10lu %8lu %10ld %9lu %8lu\n", g->id,
		       (unsigned long long)(g->st.rss_anon + g->st.rss_shmem),
		       g->ksm.ksm_merging_pages, g->ksm.ksm_zero_pages,
		       g->ksm.ksm_process_profit, g->sh.faults, g->sh.zaps);
	}
	printf("  %-22s %llu reads (%.1f MiB), %llu writes, %lu notifier invalidations (%.0f/s)\n",
	       "vcpus", (unsigned long long)r->reads, r->bytes_read / 1048576.0,
	       (unsigned long long)r->writes, r->samples[r->nr_samples - 1].invalidations,
	       r->samples[r->nr_samples - 1].invalidations / (r->t_run + r->t_settle + 1e-9));
	printf("  %-22s %llu faults, %llu copy-on-write, %llu frames allocated\n", "faults",
	       (unsigned long long)r->st.pgfault, (unsigned long long)r->st.pgfault_cow,
	       (unsigned long long)r->st.pgalloc);
	printf("  %-22s %llu out, %llu in, %llu reclaimed, %llu kswapd runs\n", "swap",
	       (unsigned long long)r->vs.pswpout, (unsigned long long)r->vs.pswpin,
	       (unsigned long long)r->vs.pgsteal, (unsigned long long)r->vs.kswapd_runs);
	printf("  %-22s boot %.2f s, run %.2f s, settle %.2f s, check %.2f s\n", "time",
	       r->t_boot, r->t_run, r->t_settle, r->t_check);
	if (bad)
		printf("  %-22s FAILED: %lu pages read back wrong\n", "data check", bad);
	else
		printf("  %-22s OK (%llu pages read back)\n", "data check",
		       (unsigned long long)r->pages_checked);
	if (r->validate_err)
		printf("  %-22s FAILED: %s\n", "validate", r->validate_msg);
	else
		printf("  %-22s OK\n", "validate");
	printf("  %-22s %ld frames\n", "leaked", r->leaked);
}

static void json_ksm(FILE *f, const struct umm_ksm_stats *k)
{
	fprintf(f, "{\"pages_shared\": %lu, \"pages_sharing\": %lu, \"pages_unshared\": %lu, "
		"\"pages_volatile\": %lu, \"ksm_zero_pages\": %lu, \"pages_scanned\": %lu, "
		"\"full_scans\": %lu, \"stable_node_chains\": %lu, \"stable_node_dups\": %lu, "
		"\"general_profit\": %ld, \"saved_mib\": %.3f}",
		k->pages_shared, k->pages_sharing, k->pages_unshared, k->pages_volatile,
		k->ksm_zero_pages, k->pages_scanned, k->full_scans, k->stable_node_chains,
		k->stable_node_dups, k->general_profit, saved_mib(k));
}

/* The report as one JSON object, built in memory and written in one go. */
static int report_json(const struct run *r)
{
	struct cli_json j;
	FILE *f = cli_json_open(cmd, &j);
	size_t i;

	if (!f)
		return -ENOMEM;
	fprintf(f, "{\"command\": \"run\", \"ok\": %s, \"seed\": %llu,\n",
		run_ok(r) ? "true" : "false", (unsigned long long)r->o.seed);
	fprintf(f, " \"image\": {\"pages\": %llu, \"files\": %llu, \"zero_pages\": %llu, \"paths\": [",
		(unsigned long long)r->image_pages, (unsigned long long)r->img.files,
		(unsigned long long)r->img.zero_pages);
	for (i = 0; i < r->o.image.n; i++) {
		fputs(i ? ", " : "", f);
		cli_json_str(f, r->o.image.v[i]);
	}
	fprintf(f, "]},\n \"guests\": %llu, \"data_pages\": %llu, \"vcpus_per_guest\": %llu,\n",
		(unsigned long long)r->o.guests, (unsigned long long)r->o.data_pages,
		(unsigned long long)r->o.threads);
	fprintf(f, " \"machine\": {\"frames\": %llu, \"phys_bytes\": %llu, \"swap_bytes\": %llu},\n",
		(unsigned long long)r->st.nr_frames, (unsigned long long)r->o.phys,
		(unsigned long long)r->o.swap);
	fprintf(f, " \"knobs\": {");
	cli_ksm_json(f, &r->o.ksm);
	fprintf(f, "},\n");
	fprintf(f, " \"ksm_after_run\": ");
	json_ksm(f, &r->ks_run);
	fprintf(f, ",\n \"ksm\": ");
	json_ksm(f, &r->ks);
	fprintf(f, ",\n \"mapped_pages\": %llu,\n \"per_guest\": [",
		(unsigned long long)(r->o.guests * r->nr_pages));
	for (i = 0; i < r->o.guests; i++) {
		const struct guest *g = &r->guests[i];

		fprintf(f, "%s\n  {\"guest\": %u, \"rss\": %llu, \"ksm_merging_pages\": %lu, "
			"\"ksm_zero_pages\": %lu, \"ksm_process_profit\": %ld, \"shadow_faults\": %lu, "
			"\"shadow_zaps\": %lu, \"invalidations\": %lu}", i ? "," : "", g->id,
			(unsigned long long)(g->st.rss_anon + g->st.rss_shmem),
			g->ksm.ksm_merging_pages, g->ksm.ksm_zero_pages, g->ksm.ksm_process_profit,
			g->sh.faults, g->sh.zaps, g->sh.invalidations);
	}
	fprintf(f, "],\n \"vcpus\": {\"reads\": %llu, \"writes\": %llu, \"bytes_read\": %llu},\n",
		(unsigned long long)r->reads, (unsigned long long)r->writes,
		(unsigned long long)r->bytes_read);
	fprintf(f, " \"faults\": {\"pgfault\": %llu, \"cow\": %llu, \"pgalloc\": %llu},\n",
		(unsigned long long)r->st.pgfault, (unsigned long long)r->st.pgfault_cow,
		(unsigned long long)r->st.pgalloc);
	fprintf(f, " \"swap\": {\"pswpout\": %llu, \"pswpin\": %llu, \"pgsteal\": %llu},\n",
		(unsigned long long)r->vs.pswpout, (unsigned long long)r->vs.pswpin,
		(unsigned long long)r->vs.pgsteal);
	fprintf(f, " \"seconds\": {\"boot\": %.3f, \"run\": %.3f, \"settle\": %.3f, \"check\": %.3f},\n",
		r->t_boot, r->t_run, r->t_settle, r->t_check);
	fprintf(f, " \"mismatches\": %lu, \"pages_checked\": %llu, \"validate\": ",
		atomic_load(&r->mismatches), (unsigned long long)r->pages_checked);
	cli_json_str(f, r->validate_err ? r->validate_msg : "ok");
	fprintf(f, ", \"leaked_frames\": %ld,\n \"samples\": [", r->leaked);
	for (i = 0; i < r->nr_samples; i++) {
		const struct sample *s = &r->samples[i];

		fprintf(f, "%s\n  {\"t\": %.3f, \"pages_scanned\": %lu, \"full_scans\": %lu, "
			"\"pages_shared\": %lu, \"pages_sharing\": %lu, \"saved_mib\": %.3f, "
			"\"notifier_per_s\": %.0f}", i ? "," : "", s->t, s->ks.pages_scanned,
			s->ks.full_scans, s->ks.pages_shared, s->ks.pages_sharing, s->saved_mib,
			s->notify_rate);
	}
	fprintf(f, "]}\n");
	return cli_json_emit(cmd, &j);
}

/* ---- the plot ---- */

/*
 * Make sure gnuplot can run: install Debian's gnuplot-nox when it is
 * missing (as root).  Return: true, or false after the one error line.
 */
static bool plot_ready(void)
{
	if (!system("command -v gnuplot >/dev/null 2>&1"))
		return true;
	if (geteuid()) {
		cli_error(cmd, "--plot: gnuplot is not installed (apt-get install gnuplot-nox, as root)");
		return false;
	}
	fprintf(stderr, "umm: run: --plot: installing gnuplot-nox ...\n");
	if (system("apt-get install -y gnuplot-nox >&2 2>/dev/null || "
		   "(apt-get update >&2 2>/dev/null && apt-get install -y gnuplot-nox >&2 2>/dev/null)") ||
	    system("command -v gnuplot >/dev/null 2>&1")) {
		cli_error(cmd, "--plot: gnuplot is not installed and 'apt-get install -y gnuplot-nox' failed");
		return false;
	}
	return true;
}

/*
 * Create the file the plot is drawn into before anything runs: a hidden
 * temporary one beside --plot, renamed over it once gnuplot has succeeded,
 * so that a failure leaves no partial picture and an unwritable path is
 * found at once; a signal removes it (cli_tmp_create()).
 * Return: true, or false after the one error line.
 */
static bool plot_open(struct run *r)
{
	const char *base = strrchr(r->o.plot, '/');
	struct stat st;
	int n;

	if (!stat(r->o.plot, &st) && S_ISDIR(st.st_mode)) {
		cli_error(cmd, "--plot %s: is a directory", r->o.plot);
		return false;
	}
	base = base ? base + 1 : r->o.plot;
	if (!*base) {
		cli_error(cmd, "--plot %s: no file name", r->o.plot);
		return false;
	}
	n = snprintf(r->plot_tmp, sizeof(r->plot_tmp), "%.*s.%s.XXXXXX",
		     (int)(base - r->o.plot), r->o.plot, base);
	if (n >= (int)sizeof(r->plot_tmp)) {
		r->plot_tmp[0] = 0;
		cli_error(cmd, "--plot %s: the path is too long", r->o.plot);
		return false;
	}
	r->plot_fd = cli_tmp_create(r->plot_tmp, O_CLOEXEC);
	if (r->plot_fd < 0) {
		cli_errno(cmd, -errno, "--plot %s: cannot create it", r->o.plot);
		r->plot_tmp[0] = 0;
		return false;
	}
	return true;
}

/* Drop the temporary plot file, if it is still there. */
static void plot_close(struct run *r)
{
	if (r->plot_fd >= 0)
		close(r->plot_fd);
	r->plot_fd = -1;
	if (r->plot_tmp[0])
		cli_tmp_remove(r->plot_tmp);
	r->plot_tmp[0] = 0;
}

/* The first line gnuplot wrote on @f (its stderr), into @buf. */
static const char *first_line(FILE *f, char *buf, size_t len)
{
	rewind(f);
	while (fgets(buf, (int)len, f)) {
		buf[strcspn(buf, "\n")] = 0;
		if (buf[strspn(buf, " \t^")])
			return buf;
	}
	return "no message";
}

/*
 * Draw saved memory and scan progress over time: gnuplot reads its script
 * (the samples inline) on stdin and writes the PNG on stdout, into the file
 * plot_open() made, which then replaces r->o.plot.  No file name reaches
 * gnuplot or a shell.
 */
static int write_plot(struct run *r)
{
	FILE *script = tmpfile(), *errs = tmpfile();
	char msg[256];
	struct stat st;
	size_t i;
	pid_t pid;
	int wst = 0, err = 0;

	if (!script || !errs) {
		cli_errno(cmd, -errno, "--plot: a temporary file");
		err = -EIO;
		goto out;
	}
	fprintf(script, "set terminal png size 900,500\n"
		"set title 'umm run: %llu guests, same image, ksmd merging'\n"
		"set xlabel 'seconds'\nset ylabel 'MiB saved'\nset y2label 'pages scanned'\n"
		"set ytics nomirror\nset y2tics\nset key left top\nset grid\n$samples << EOD\n",
		(unsigned long long)r->o.guests);
	for (i = 0; i < r->nr_samples; i++)
		fprintf(script, "%.3f %.3f %lu %lu\n", r->samples[i].t, r->samples[i].saved_mib,
			r->samples[i].ks.pages_scanned, r->samples[i].ks.full_scans);
	fprintf(script, "EOD\nplot $samples using 1:2 with lines lw 2 title 'saved (MiB)', "
		"$samples using 1:3 axes x1y2 with lines title 'pages scanned'\n");
	if (fflush(script) || ftruncate(r->plot_fd, 0)) {
		cli_errno(cmd, -errno, "--plot: writing the script");
		err = -EIO;
		goto out;
	}
	rewind(script);
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		dup2(fileno(script), 0);
		dup2(r->plot_fd, 1);
		dup2(fileno(errs), 2);
		execlp("gnuplot", "gnuplot", (char *)NULL);
		_exit(127);
	}
	if (pid < 0 || waitpid(pid, &wst, 0) < 0) {
		cli_errno(cmd, -errno, "--plot: running gnuplot");
		err = -EIO;
	} else if (!WIFEXITED(wst) || WEXITSTATUS(wst) || fstat(r->plot_fd, &st) || !st.st_size) {
		cli_error(cmd, "--plot %s: gnuplot failed: %s", r->o.plot,
			  first_line(errs, msg, sizeof(msg)));
		err = -EIO;
	} else if (fsync(r->plot_fd) || rename(r->plot_tmp, r->o.plot)) {
		cli_errno(cmd, -errno, "--plot %s", r->o.plot);
		err = -EIO;
	} else {
		cli_tmp_forget(r->plot_tmp);	/* it is r->o.plot now */
		r->plot_tmp[0] = 0;
	}
out:
	if (script)
		fclose(script);
	if (errs)
		fclose(errs);
	plot_close(r);
	return err;
}

/* ---- the command ---- */

static const struct cli_usage run_usage = {
	.synopsis = "[OPTIONS]",
	.description =
		"Boot guests (address spaces with a KVM-style shadow MMU) that all load the\n"
		"same image, assembled from real files on this machine (--image), plus data\n"
		"of their own; let ksmd merge identical pages while vCPU threads read and\n"
		"write guest memory; settle, read everything back, check every byte and the\n"
		"machine's invariants, exit the guests.  On a terminal a progress line shows\n"
		"elapsed time, pages scanned, pages shared/sharing, memory saved and MMU\n"
		"notifier invalidations per second; a report follows.  The ksm flags are the\n"
		"knobs of /sys/kernel/mm/ksm.",
	.footer =
		"SIZE is bytes with an optional K, M, G or T suffix (powers of 1024);\n"
		"N is a decimal (or 0x hexadecimal) integer; --image may be repeated.\n"
		"With --swap, a temporary swap file of that size is used: make --phys\n"
		"small to run under memory pressure.  SIGINT, SIGTERM or SIGHUP remove\n"
		"the temporary swap and plot files, then end the command as the signal\n"
		"does (--plot's file is left as it was).\n"
		"Exit status: 0 all checks passed, 1 a check or the library failed,\n"
		"2 bad usage (including an --image path that does not exist, or a\n"
		"--plot file that cannot be created: nothing is run then).",
};

/* Size the machine: every guest's pages, a quarter more, and 8 MiB. */
static uint64_t auto_phys(const struct run *r)
{
	uint64_t b = r->o.guests * r->nr_pages * PAGE;

	return ((b + b / 4 + (8ULL << 20)) + (1 << 20) - 1) & ~((1ULL << 20) - 1);
}

static int create_machine(struct run *r)
{
	struct umm_config cfg;
	char sz[32];
	int fd, err;

	umm_config_init(&cfg);
	cfg.phys_bytes = r->o.phys;
	cfg.nr_nodes = r->o.nodes;
	if (r->o.swap) {
		const char *tmp = getenv("TMPDIR");

		snprintf(r->swap_path, sizeof(r->swap_path), "%s/umm-swap-XXXXXX",
			 tmp && *tmp && strlen(tmp) < 40 ? tmp : "/tmp");
		fd = cli_tmp_create(r->swap_path, O_CLOEXEC);
		if (fd < 0) {
			cli_errno(cmd, -errno, "--swap: creating %s", r->swap_path);
			r->swap_path[0] = 0;
			return -EIO;
		}
		close(fd);
		cfg.swap_path = r->swap_path;
		cfg.swap_bytes = r->o.swap;
	}
	err = umm_create(&cfg, &r->u);
	if (err) {
		cli_errno(cmd, err, "cannot create a machine with --phys %s and --nodes %llu",
			  cli_fmt_size(sz, sizeof(sz), r->o.phys), (unsigned long long)r->o.nodes);
		return err;
	}
	umm_set_log(r->u, log_hook, r);
	err = cli_ksm_apply(r->u, &r->o.ksm);
	if (err)
		cli_errno(cmd, err, "setting the ksm knobs");
	return err;
}

static int run_scenario(struct run *r)
{
	bool progress = !r->o.json && isatty(STDOUT_FILENO);
	int err, status = CLI_EXIT_FAIL;

	r->t_start = cli_now();
	err = create_machine(r);
	if (!err)
		err = phase_boot(r);
	/* said once the guests are up: a failed boot leaves stdout empty */
	if (!err && !r->o.json)
		printf("umm run: %llu guests x (%llu image + %llu data pages), %llu vCPUs each, "
		       "%.1f s, seed %llu\n", (unsigned long long)r->o.guests,
		       (unsigned long long)r->image_pages, (unsigned long long)r->o.data_pages,
		       (unsigned long long)r->o.threads, r->o.duration_ms / 1e3,
		       (unsigned long long)r->o.seed);
	if (!err)
		err = phase_run(r, progress);
	if (!err)
		err = phase_settle(r, progress);
	if (!err)
		err = phase_check(r);
	if (r->u) {
		phase_exit(r);
		if (!err) {
			if (r->o.json)
				err = report_json(r);
			else
				report_text(r);
		}
		if (!err && r->o.plot)
			err = write_plot(r);
		if (!err)
			status = run_ok(r) ? CLI_EXIT_OK : CLI_EXIT_FAIL;
		umm_destroy(r->u);
	}
	if (r->swap_path[0])
		cli_tmp_remove(r->swap_path);
	free(r->guests);
	free(r->vcpus);
	free(r->samples);
	return status;
}

/* Check what the option table cannot, load the image, run.  Return: an exit status. */
static int run_parsed(struct run *r)
{
	int status;

	if (r->o.guests * r->o.threads > MAX_VCPUS) {
		cli_error(cmd, "--guests %llu with --threads %llu makes %llu vCPUs (maximum %d)",
			  (unsigned long long)r->o.guests, (unsigned long long)r->o.threads,
			  (unsigned long long)(r->o.guests * r->o.threads), MAX_VCPUS);
		return CLI_EXIT_USAGE;
	}
	if (!cli_ksm_check(cmd, &r->o.ksm))
		return CLI_EXIT_USAGE;
	if (r->o.plot && !plot_open(r))
		return CLI_EXIT_USAGE;
	if (r->o.plot && !plot_ready()) {
		plot_close(r);
		return CLI_EXIT_FAIL;
	}
	status = cli_image_load(cmd, &r->o.image, r->o.image_bytes, &r->img);
	if (status) {
		plot_close(r);
		return status;
	}
	r->image_pages = r->img.pages;
	r->nr_pages = r->image_pages + r->o.data_pages;
	if (!r->o.phys)
		r->o.phys = auto_phys(r);
	status = run_scenario(r);
	plot_close(r);
	cli_image_free(&r->img);
	return status;
}

int cmd_run(int argc, char **argv)
{
	struct run r = {
		.plot_fd = -1,
		.o = {
			.phys = 0, .nodes = 1, .seed = 1, .guests = 4, .image_bytes = 8 << 20,
			.data_pages = 1024, .threads = 2, .duration_ms = 3000, .write_pct = 20,
			.rate = 2000,
			.image = CLI_DEFAULT_IMAGE,
		},
	};
	struct run_opts *o = &r.o;
	struct cli_opt opts[32] = {
		{ "guests", CLI_OPT_UINT, &o->guests, 1, 256, 0, "N", "guests to boot" },
		{ "image", CLI_OPT_LIST, &o->image, 0, 0, 0, "PATH",
		  "file or directory the image is read from" },
		{ "image-size", CLI_OPT_SIZE, &o->image_bytes, PAGE, 1ULL << 32, PAGE, "SIZE",
		  "most bytes of files in the image" },
		{ "data-pages", CLI_OPT_UINT, &o->data_pages, 0, 1 << 22, 0, "N",
		  "pages of private data per guest" },
		{ "threads", CLI_OPT_UINT, &o->threads, 1, 64, 0, "N", "vCPU threads per guest" },
		{ "duration", CLI_OPT_UINT, &o->duration_ms, 0, 3600000, 0, "MS",
		  "how long the vCPUs run while ksmd merges" },
		{ "write-pct", CLI_OPT_UINT, &o->write_pct, 0, 100, 0, "N",
		  "percent of vCPU accesses that are writes" },
		{ "rate", CLI_OPT_UINT, &o->rate, 0, 100000000, 0, "N",
		  "accesses per second per vCPU (0: as fast as it can)" },
		{ "phys", CLI_OPT_SIZE, &o->phys, 0, 1ULL << 40, PAGE, "SIZE",
		  "simulated RAM (0: enough for every guest)" },
		{ "swap", CLI_OPT_SIZE, &o->swap, 0, 1ULL << 40, PAGE, "SIZE",
		  "temporary swap file (0: no swap)" },
		{ "nodes", CLI_OPT_UINT, &o->nodes, 1, 64, 0, "N", "memory nodes" },
		{ "seed", CLI_OPT_UINT, &o->seed, 0, UINT64_MAX, 0, "N",
		  "seed of the data and the vCPUs' choices" },
		{ "json", CLI_OPT_FLAG, &o->json, 0, 0, 0, NULL,
		  "print the report as one JSON object instead" },
		{ "plot", CLI_OPT_STRING, &o->plot, 0, 0, 0, "FILE.png",
		  "draw memory saved and pages scanned over time (gnuplot)" },
		{ "verbose", CLI_OPT_FLAG, &o->verbose, 0, 0, 0, NULL,
		  "also print the library's informational messages" },
	};
	size_t n = 0;

	while (opts[n].name)
		n++;
	cli_ksm_defaults(&o->ksm);
	o->ksm.pages_to_scan = RUN_PAGES_TO_SCAN;
	cli_ksm_opts(&o->ksm, &opts[n]);
	switch (cli_parse(cmd, opts, &run_usage, argc, argv)) {
	case CLI_PARSE_HELP:
		n = CLI_EXIT_OK;
		break;
	case CLI_PARSE_ERROR:
		n = CLI_EXIT_USAGE;
		break;
	case CLI_PARSE_OK:
		n = run_parsed(&r);
		break;
	}
	cli_list_free(&o->image);
	return (int)n;
}
