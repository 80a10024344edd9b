// SPDX-License-Identifier: MIT
/*
 * run.c - `umm run`: a small built-in scenario that exercises the machine
 * the way a host of snapshotted virtual machines would, checks every byte,
 * and prints what the machine did.
 *
 * Phases (one line each on stdout as they finish):
 *
 *   boot     create N guest address spaces; each maps an image region and
 *            writes the same generated "kernel image" into it (as if every
 *            guest booted the same kernel), then a data region with content
 *            of its own;
 *   fork     fork each guest once: the child is its "snapshot";
 *   cow      each snapshot rewrites a fraction of its pages (copy-on-write);
 *   threads  T threads per address space read and write at random, guests
 *            and snapshots at once, checking every byte they read;
 *   check    every page of every address space is read back and compared;
 *   exit     every address space exits; nothing may leak.
 *
 * and a report: faults by kind, frames, host memory given back, TLB
 * shootdowns, RSS per guest, the data check and umm_validate()'s verdict.
 *
 * The model of what each address space holds is small: the original
 * content of every page is a function of the seed (and of the guest, for
 * data pages), and a page written since boot has a 4 KiB shadow copy.  A
 * thread only touches pages it owns (blocks of BLOCK_PAGES pages dealt out
 * round-robin), so the model needs no locking; the guest's thread t and its
 * snapshot's thread t own the same pages, which is where copy-on-write
 * races happen.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <umm/umm.h>

#include "cli.h"

#define PAGE		UMM_PAGE_SIZE
#define BLOCK_PAGES	8	/* pages a thread owns in a row */
#define CHUNK_PAGES	64	/* pages per umm_read/umm_write when filling or checking */
#define MAX_OP_BYTES	(3 * PAGE)
#define MAX_THREADS	4096	/* guests x 2 x threads */
#define MAX_REPORTED	5	/* mismatches described on stderr */

static const char *const cmd = "run";

struct run_opts {
	uint64_t phys, nodes, seed;
	uint64_t guests, image_pages, data_pages, cow_pct, threads, ops;
	bool verbose;
};

/* One address space of the scenario and what it should hold. */
struct space {
	struct umm_mm *mm;
	unsigned int guest;
	bool snapshot;
	uint64_t image_addr, data_addr;
	uint8_t **shadow;	/* per page: its bytes if written since boot, else NULL */
	struct umm_mm_stat st;	/* taken before exit */
};

/* A thread of the threads phase, on one address space. */
struct worker {
	struct run *r;
	struct space *s;
	unsigned int idx;
	pthread_t tid;
	uint64_t rng;
	uint64_t reads, writes;
	int err;		/* first error, stops the thread */
	const char *err_op;
	uint64_t err_addr;
};

struct run {
	struct run_opts o;
	struct umm *u;
	uint64_t nr_pages;	/* per address space: image + data */
	unsigned int nr_spaces;	/* live address spaces in spaces[] */
	struct space *spaces;	/* [2g] guest g, [2g + 1] its snapshot */

	/* the threads phase's start line */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool go;

	atomic_ulong mismatches;	/* pages read with wrong bytes */
	atomic_uint reported;

	/* figures for the report */
	double t_start, t_machine;
	char machine_line[64];
	struct umm_stat st_phase, st_peak, st_end;
	uint64_t cow_pages, reads, writes, pages_checked;
	int validate_err, validate_end_err;
	char validate_msg[256], validate_end_msg[256];
	long leaked;
};

/* ---- host memory ---- */

/*
 * The model and the buffers live in host memory; running out of it is not
 * something the scenario can report on, so it ends the command (exit 1).
 */
static void *xmalloc(size_t size)
{
	void *p = malloc(size);

	if (!p) {
		cli_error(cmd, "out of host memory");
		exit(CLI_EXIT_FAIL);
	}
	return p;
}

static void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n, size);

	if (!p) {
		cli_error(cmd, "out of host memory");
		exit(CLI_EXIT_FAIL);
	}
	return p;
}

/* ---- the model ---- */

static uint64_t mix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

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

/*
 * Whether image page @p is "bss": all zeros, and never written at boot, so
 * that reading it maps the zero frame.  One image page in sixteen is.
 */
static bool image_page_is_bss(const struct run *r, uint64_t p)
{
	return p < r->o.image_pages && (mix64(r->o.seed ^ mix64(p)) & 15) == 0;
}

/*
 * The bytes page @p of @s held at boot: for image pages a function of the
 * seed only (the same in every guest), for data pages of the seed and the
 * guest.
 */
static void fill_original(const struct run *r, const struct space *s, uint64_t p,
			  uint8_t *buf)
{
	uint64_t key, w[PAGE / 8];
	unsigned int i;

	if (image_page_is_bss(r, p)) {
		memset(buf, 0, PAGE);
		return;
	}
	if (p < r->o.image_pages) {
		key = mix64(r->o.seed ^ mix64(p));
	} else {
		key = mix64(r->o.seed ^ mix64(p + ((uint64_t)(s->guest + 1) << 40)));
	}
	for (i = 0; i < PAGE / 8; i++)
		w[i] = mix64(key + i);
	memcpy(buf, w, PAGE);
}

/* The bytes page @p of @s should hold now, into @buf. */
static void fill_expected(const struct run *r, const struct space *s, uint64_t p,
			  uint8_t *buf)
{
	if (s->shadow[p])
		memcpy(buf, s->shadow[p], PAGE);
	else
		fill_original(r, s, p, buf);
}

static uint64_t page_addr(const struct run *r, const struct space *s, uint64_t p)
{
	if (p < r->o.image_pages)
		return s->image_addr + p * PAGE;
	return s->data_addr + (p - r->o.image_pages) * PAGE;
}

static const char *space_role(const struct space *s)
{
	return s->snapshot ? "snapshot" : "guest";
}

/*
 * Record that @len bytes from @buf were written at page @p, offset @off of
 * @s (the range may run on into the following pages of the same region).
 * Context: the caller owns those pages.
 */
static void model_write(const struct run *r, struct space *s, uint64_t p,
		       unsigned int off, const uint8_t *buf, size_t len)
{
	while (len) {
		size_t n = PAGE - off < len ? PAGE - off : len;

		if (!s->shadow[p]) {
			s->shadow[p] = xmalloc(PAGE);
			fill_original(r, s, p, s->shadow[p]);
		}
		memcpy(s->shadow[p] + off, buf, n);
		buf += n;
		len -= n;
		off = 0;
		p++;
	}
}

/*
 * Compare @len bytes read at page @p, offset @off of @s with the model and
 * describe the first few differences on stderr.
 * Return: the number of pages that differ.
 */
static unsigned long model_check(struct run *r, const struct space *s, uint64_t p,
				 unsigned int off, const uint8_t *got, size_t len)
{
	uint8_t want[PAGE];
	unsigned long bad = 0;

	while (len) {
		size_t n = PAGE - off < len ? PAGE - off : len, i;

		fill_expected(r, s, p, want);
		if (memcmp(want + off, got, n)) {
			bad++;
			for (i = 0; want[off + i] == got[i]; i++)
				;
			if (atomic_fetch_add(&r->reported, 1) < MAX_REPORTED)
				cli_error(cmd, "mismatch: %s %u at 0x%llx: read 0x%02x, expected 0x%02x",
					  space_role(s), s->guest,
					  (unsigned long long)(page_addr(r, s, p) + off + i),
					  got[i], want[off + i]);
		}
		got += n;
		len -= n;
		off = 0;
		p++;
	}
	if (bad)
		atomic_fetch_add(&r->mismatches, bad);
	return bad;
}

static void free_shadow(const struct run *r, struct space *s)
{
	uint64_t p;

	if (!s->shadow)
		return;
	for (p = 0; p < r->nr_pages; p++)
		free(s->shadow[p]);
	free(s->shadow);
	s->shadow = NULL;
}

/* ---- helpers ---- */

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static const char *plural(uint64_t n)
{
	return n == 1 ? "" : "s";
}

static double mib(uint64_t pages)
{
	return pages * (double)PAGE / (1 << 20);
}

/*
 * Copy all @len bytes between @buf and @mm at @addr.  A short count from the
 * library is followed up, to learn why the rest could not be copied.
 * Return: 0 or a negative errno.
 */
static int xfer(struct umm_mm *mm, uint64_t addr, void *buf, size_t len, bool write)
{
	uint8_t *b = buf;

	while (len) {
		ssize_t n = write ? umm_write(mm, addr, b, len) : umm_read(mm, addr, b, len);

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

/* Print one phase line: name, what happened, faults taken, time taken. */
static void phase_done(struct run *r, const char *name, double t0, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void phase_done(struct run *r, const char *name, double t0, const char *fmt, ...)
{
	struct umm_stat st;
	char what[160];
	va_list ap;

	umm_get_stat(r->u, &st);
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	printf("%-8s %-44s %7llu faults %7.3f s\n", name, what,
	       (unsigned long long)(st.pgfault - r->st_phase.pgfault), now() - t0);
	fflush(stdout);
	r->st_phase = st;
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

/*
 * Print the one line for a library error @err met while doing what @fmt
 * says.  Running out of frames gets a hint: the scenario did not fit.
 */
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
		cli_error(cmd, "%s: %s (the scenario does not fit in --phys %s)", what,
			  strerror(-err), cli_fmt_size(sz, sizeof(sz), r->o.phys));
	else
		cli_errno(cmd, err, "%s", what);
}

/*
 * ---- phases ----
 *
 * Each phase_*() runs one phase over every address space and prints its
 * line.  Return: 0, or a negative errno after printing the one line that
 * says what failed (the caller then tears everything down).
 */

/*
 * Write the boot content of pages [@p, @p + @n) of @s (one region), in
 * runs of up to CHUNK_PAGES pages, leaving the image's bss pages untouched.
 * Return: 0 or a negative errno (after printing the error line).
 */
static int fill_region(struct run *r, struct space *s, uint64_t p, uint64_t n,
		       uint8_t *buf)
{
	while (n) {
		uint64_t k;
		int err;

		if (image_page_is_bss(r, p)) {
			p++;
			n--;
			continue;
		}
		for (k = 0; k < n && k < CHUNK_PAGES && !image_page_is_bss(r, p + k); k++)
			fill_original(r, s, p + k, buf + k * PAGE);
		err = xfer(s->mm, page_addr(r, s, p), buf, k * PAGE, true);
		if (err) {
			run_fail(r, err, "boot: guest %u: writing %s at 0x%llx", s->guest,
				 p < r->o.image_pages ? "the image" : "data",
				 (unsigned long long)page_addr(r, s, p));
			return err;
		}
		p += k;
		n -= k;
	}
	return 0;
}

/* Create guest @g's address space, map its two regions and fill them. */
static int boot_guest(struct run *r, unsigned int g, uint8_t *buf)
{
	const int prot = UMM_PROT_READ | UMM_PROT_WRITE;
	const int flags = UMM_MAP_PRIVATE | UMM_MAP_ANONYMOUS;
	struct space *s = &r->spaces[2 * g];
	int err;

	s->guest = g;
	s->shadow = xcalloc(r->nr_pages, sizeof(*s->shadow));
	err = umm_mm_create(r->u, &s->mm);
	if (err) {
		run_fail(r, err, "boot: guest %u: creating its address space", g);
		return err;
	}
	r->nr_spaces++;
	err = umm_mmap(s->mm, 0, r->o.image_pages * PAGE, prot, flags, NULL, 0,
		       &s->image_addr);
	if (!err)
		err = umm_mmap(s->mm, 0, r->o.data_pages * PAGE, prot, flags, NULL, 0,
			       &s->data_addr);
	if (err) {
		run_fail(r, err, "boot: guest %u: mapping its memory", g);
		return err;
	}
	err = fill_region(r, s, 0, r->o.image_pages, buf);
	if (!err)
		err = fill_region(r, s, r->o.image_pages, r->o.data_pages, buf);
	return err;
}

static int phase_boot(struct run *r)
{
	double t0 = now();
	uint8_t *buf = xmalloc(CHUNK_PAGES * PAGE);
	unsigned int g;
	int err = 0;

	for (g = 0; g < r->o.guests && !err; g++)
		err = boot_guest(r, g, buf);
	free(buf);
	if (err)
		return err;
	/* the machine's line waits for boot, so a failed boot prints nothing */
	printf("%-8s %-44s %7d faults %7.3f s\n", "machine", r->machine_line, 0,
	       r->t_machine);
	phase_done(r, "boot", t0, "%llu guest%s x (%llu image + %llu data) pages",
		   (unsigned long long)r->o.guests, plural(r->o.guests),
		   (unsigned long long)r->o.image_pages,
		   (unsigned long long)r->o.data_pages);
	return 0;
}

/* Fork guest @g into its snapshot, which starts with a copy of the model. */
static int fork_guest(struct run *r, unsigned int g)
{
	struct space *parent = &r->spaces[2 * g], *child = &r->spaces[2 * g + 1];
	uint64_t p;
	int err;

	*child = *parent;
	child->snapshot = true;
	child->mm = NULL;
	child->shadow = xcalloc(r->nr_pages, sizeof(*child->shadow));
	for (p = 0; p < r->nr_pages; p++) {
		if (!parent->shadow[p])
			continue;
		child->shadow[p] = xmalloc(PAGE);
		memcpy(child->shadow[p], parent->shadow[p], PAGE);
	}
	err = umm_mm_fork(parent->mm, &child->mm);
	if (!err)
		r->nr_spaces++;
	return err;
}

static int phase_fork(struct run *r)
{
	double t0 = now();
	unsigned int g;
	int err;

	for (g = 0; g < r->o.guests; g++) {
		err = fork_guest(r, g);
		if (err) {
			run_fail(r, err, "fork: guest %u", g);
			return err;
		}
	}
	phase_done(r, "fork", t0, "%llu snapshot%s", (unsigned long long)r->o.guests,
		   plural(r->o.guests));
	return 0;
}

/* Rewrite cow_pct percent of snapshot @s's pages, 64 bytes in each. */
static int cow_snapshot(struct run *r, struct space *s)
{
	uint64_t rng = mix64(r->o.seed ^ 0xc0c0c0c0ULL ^ s->guest), p;
	uint8_t bytes[64];
	int err;

	for (p = 0; p < r->nr_pages; p++) {
		unsigned int off, i;

		if (rand_below(&rng, 100) >= r->o.cow_pct)
			continue;
		off = rand_below(&rng, PAGE - sizeof(bytes) + 1);
		for (i = 0; i < sizeof(bytes); i++)
			bytes[i] = rand64(&rng);
		err = xfer(s->mm, page_addr(r, s, p) + off, bytes, sizeof(bytes), true);
		if (err) {
			run_fail(r, err, "cow: snapshot %u at 0x%llx", s->guest,
				 (unsigned long long)(page_addr(r, s, p) + off));
			return err;
		}
		model_write(r, s, p, off, bytes, sizeof(bytes));
		r->cow_pages++;
	}
	return 0;
}

static int phase_cow(struct run *r)
{
	double t0 = now();
	unsigned int g;
	int err;

	for (g = 0; g < r->o.guests; g++) {
		err = cow_snapshot(r, &r->spaces[2 * g + 1]);
		if (err)
			return err;
	}
	phase_done(r, "cow", t0, "snapshots rewrote %llu pages (%llu%%)",
		   (unsigned long long)r->cow_pages, (unsigned long long)r->o.cow_pct);
	return 0;
}

/*
 * Pick a random block that worker @w owns in the region of blocks
 * [@b0, @b1) and store it in *@b.  Block b belongs to thread b % threads.
 * Return: false if @w owns none there.
 */
static bool pick_block(struct worker *w, uint64_t b0, uint64_t b1, uint64_t *b)
{
	uint64_t t = w->r->o.threads;
	uint64_t first = b0 + (w->idx + t - b0 % t) % t;

	if (first >= b1)
		return false;
	*b = first + t * rand_below(&w->rng, (b1 - 1 - first) / t + 1);
	return true;
}

/*
 * Choose the range of one operation: a page and offset in a block @w owns
 * (writes go to the data region four times in five, reads anywhere), and a
 * length that stays inside the block: mostly small, sometimes a few pages.
 * Return: false if @w owns no block at all.
 */
static bool pick_range(struct worker *w, bool write, uint64_t *page,
		       unsigned int *off, size_t *len)
{
	const struct run *r = w->r;
	uint64_t nb_image = (r->o.image_pages + BLOCK_PAGES - 1) / BLOCK_PAGES;
	uint64_t nb_data = (r->o.data_pages + BLOCK_PAGES - 1) / BLOCK_PAGES;
	bool data = write ? rand_below(&w->rng, 5) != 0 : rand_below(&w->rng, 2);
	uint64_t b, first, last, room;

	if (!(data ? pick_block(w, nb_image, nb_image + nb_data, &b)
		   : pick_block(w, 0, nb_image, &b)) &&
	    !(data ? pick_block(w, 0, nb_image, &b)
		   : pick_block(w, nb_image, nb_image + nb_data, &b)))
		return false;
	if (b < nb_image) {
		first = b * BLOCK_PAGES;
		last = first + BLOCK_PAGES < r->o.image_pages ? first + BLOCK_PAGES
							      : r->o.image_pages;
	} else {
		first = r->o.image_pages + (b - nb_image) * BLOCK_PAGES;
		last = first + BLOCK_PAGES < r->nr_pages ? first + BLOCK_PAGES : r->nr_pages;
	}
	*page = first + rand_below(&w->rng, last - first);
	*off = rand_below(&w->rng, PAGE);
	room = (last - *page) * PAGE - *off;
	*len = rand_below(&w->rng, 10) < 7 ? 1 + rand_below(&w->rng, 256)
					    : 1 + rand_below(&w->rng, MAX_OP_BYTES);
	if (*len > room)
		*len = room;
	return true;
}

/* One random read (checked against the model) or write (recorded in it). */
static int worker_op(struct worker *w, uint8_t *buf)
{
	bool write = rand64(&w->rng) & 1;
	uint64_t p, addr;
	unsigned int off;
	size_t len, i;
	int err;

	if (!pick_range(w, write, &p, &off, &len))
		return 0;
	addr = page_addr(w->r, w->s, p) + off;
	if (write) {
		for (i = 0; i < len; i++)
			buf[i] = rand64(&w->rng);
		err = xfer(w->s->mm, addr, buf, len, true);
		if (!err)
			model_write(w->r, w->s, p, off, buf, len);
		w->writes++;
	} else {
		err = xfer(w->s->mm, addr, buf, len, false);
		if (!err)
			model_check(w->r, w->s, p, off, buf, len);
		w->reads++;
	}
	if (err) {
		w->err = err;
		w->err_op = write ? "write" : "read";
		w->err_addr = addr;
	}
	return err;
}

/* A worker: wait for the start line, then run its operations. */
static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct run *r = w->r;
	uint8_t *buf = xmalloc(MAX_OP_BYTES);
	uint64_t i;

	pthread_mutex_lock(&r->lock);
	while (!r->go)
		pthread_cond_wait(&r->cond, &r->lock);
	pthread_mutex_unlock(&r->lock);
	for (i = 0; i < r->o.ops && !w->err; i++)
		worker_op(w, buf);
	free(buf);
	return NULL;
}

/* Release every worker waiting in worker_main() at once. */
static void start_workers(struct run *r)
{
	pthread_mutex_lock(&r->lock);
	r->go = true;
	pthread_cond_broadcast(&r->cond);
	pthread_mutex_unlock(&r->lock);
}

/*
 * Start @n workers over every address space, release them together, wait
 * for all.  Return: 0, or the first error (after printing its line).
 */
static int run_workers(struct run *r, struct worker *ws, unsigned int n)
{
	unsigned int i, started;
	int err = 0;

	for (started = 0; started < n; started++) {
		err = -pthread_create(&ws[started].tid, NULL, worker_main, &ws[started]);
		if (err) {
			cli_errno(cmd, err, "threads: starting thread %u", started);
			ws[started].err = err;	/* the others stop after one op */
			for (i = 0; i < started; i++)
				ws[i].err = err;
			break;
		}
	}
	start_workers(r);
	for (i = 0; i < started; i++)
		pthread_join(ws[i].tid, NULL);
	for (i = 0; i < n && !err; i++) {
		struct worker *w = &ws[i];

		r->reads += w->reads;
		r->writes += w->writes;
		if (w->err) {
			err = w->err;
			run_fail(r, err, "threads: %s %u, thread %u: %s at 0x%llx",
				 space_role(w->s), w->s->guest, w->idx, w->err_op,
				 (unsigned long long)w->err_addr);
		}
	}
	return err;
}

static int phase_threads(struct run *r)
{
	unsigned int n = r->nr_spaces * r->o.threads, i;
	struct worker *ws = xcalloc(n, sizeof(*ws));
	double t0 = now();
	int err;

	for (i = 0; i < n; i++) {
		ws[i].r = r;
		ws[i].s = &r->spaces[i / r->o.threads];
		ws[i].idx = i % r->o.threads;
		ws[i].rng = mix64(r->o.seed ^ mix64(i + 1));
	}
	err = run_workers(r, ws, n);
	free(ws);
	if (err)
		return err;
	phase_done(r, "threads", t0, "%u threads: %llu reads, %llu writes", n,
		   (unsigned long long)r->reads, (unsigned long long)r->writes);
	return 0;
}

/* Read every page of @s back and compare it with the model. */
static int check_space(struct run *r, struct space *s, uint8_t *buf)
{
	uint64_t p = 0;
	int err;

	while (p < r->nr_pages) {
		uint64_t end = p < r->o.image_pages ? r->o.image_pages : r->nr_pages;
		uint64_t k = end - p < CHUNK_PAGES ? end - p : CHUNK_PAGES;

		err = xfer(s->mm, page_addr(r, s, p), buf, k * PAGE, false);
		if (err) {
			run_fail(r, err, "check: %s %u at 0x%llx", space_role(s), s->guest,
				 (unsigned long long)page_addr(r, s, p));
			return err;
		}
		model_check(r, s, p, 0, buf, k * PAGE);
		r->pages_checked += k;
		p += k;
	}
	return 0;
}

static int phase_check(struct run *r)
{
	uint8_t *buf = xmalloc(CHUNK_PAGES * PAGE);
	double t0 = now();
	unsigned int i;
	int err = 0;

	for (i = 0; i < r->nr_spaces && !err; i++)
		err = check_space(r, &r->spaces[i], buf);
	free(buf);
	if (err)
		return err;
	phase_done(r, "check", t0, "%u address spaces, %llu pages read back",
		   r->nr_spaces, (unsigned long long)r->pages_checked);
	return 0;
}

/* Take the figures the report shows while every address space is alive. */
static void take_peak(struct run *r)
{
	unsigned int i;

	for (i = 0; i < r->nr_spaces; i++)
		umm_mm_get_stat(r->spaces[i].mm, &r->spaces[i].st);
	umm_get_stat(r->u, &r->st_peak);
	r->validate_err = umm_validate(r->u, UMM_VALIDATE_EXACT, r->validate_msg,
				       sizeof(r->validate_msg));
}

/* Exit every address space still alive (snapshots first), newest first. */
static void exit_spaces(struct run *r)
{
	unsigned int i;

	for (i = 2 * r->o.guests; i-- > 0;) {
		struct space *s = &r->spaces[i];

		if (s->mm)
			umm_mm_exit(s->mm);
		s->mm = NULL;
		free_shadow(r, s);
	}
	r->nr_spaces = 0;
}

/* Exit everything, then validate the empty machine and look for leaks. */
static void phase_exit(struct run *r)
{
	unsigned int n = r->nr_spaces;
	double t0 = now();

	exit_spaces(r);
	umm_get_stat(r->u, &r->st_end);
	r->validate_end_err = umm_validate(r->u, UMM_VALIDATE_EXACT, r->validate_end_msg,
					   sizeof(r->validate_end_msg));
	r->leaked = umm_leak_check(r->u, NULL, NULL);
	phase_done(r, "exit", t0, "%u address spaces exited, %ld frames leaked", n,
		   r->leaked);
}

/* ---- the report ---- */

static void print_faults(const struct umm_stat *st)
{
	printf("  %-22s %llu\n", "faults", (unsigned long long)st->pgfault);
	printf("    %-20s %llu\n", "zero page", (unsigned long long)st->pgfault_zero);
	printf("    %-20s %llu\n", "anonymous", (unsigned long long)st->pgfault_anon);
	printf("    %-20s %llu\n", "copy-on-write", (unsigned long long)st->pgfault_cow);
	printf("    %-20s %llu\n", "reuse", (unsigned long long)st->pgfault_reuse);
	printf("    %-20s %llu\n", "shared (shmem)", (unsigned long long)st->pgfault_shmem);
}

static void print_rss(const struct run *r)
{
	unsigned int g;

	printf("  %-22s %10s %10s %10s %6s\n", "rss (pages)", "guest", "snapshot",
	       "vm", "vmas");
	for (g = 0; g < r->o.guests; g++) {
		const struct umm_mm_stat *a = &r->spaces[2 * g].st;
		const struct umm_mm_stat *b = &r->spaces[2 * g + 1].st;

		printf("    guest %-14u %10llu %10llu %10llu %6llu\n", g,
		       (unsigned long long)(a->rss_anon + a->rss_shmem),
		       (unsigned long long)(b->rss_anon + b->rss_shmem),
		       (unsigned long long)a->total_vm, (unsigned long long)a->map_count);
	}
}

static void print_verdict(const char *label, int err, const char *msg)
{
	if (!err)
		printf("  %-22s OK\n", label);
	else if (err == -EUCLEAN)
		printf("  %-22s FAILED: %s\n", label, msg);
	else
		printf("  %-22s FAILED: %s\n", label, strerror(-err));
}

/* Print the final report.  Return: CLI_EXIT_OK if every check passed. */
static int report(const struct run *r)
{
	const struct umm_stat *pk = &r->st_peak, *end = &r->st_end;
	unsigned long bad = atomic_load(&r->mismatches);
	uint64_t vm = 0;
	unsigned int i;

	for (i = 0; i < 2 * r->o.guests; i++)
		vm += r->spaces[i].st.total_vm;
	printf("\nreport\n");
	printf("  %-22s %llu, each with a snapshot\n", "guests",
	       (unsigned long long)r->o.guests);
	printf("  %-22s %llu (%.0f MiB) in %llu address spaces\n", "pages mapped",
	       (unsigned long long)vm, mib(vm), (unsigned long long)(2 * r->o.guests));
	print_faults(end);
	printf("  %-22s %llu (%.0f MiB): %llu in use, %llu free before exit\n", "frames",
	       (unsigned long long)pk->nr_frames, mib(pk->nr_frames),
	       (unsigned long long)(pk->nr_frames - pk->nr_free),
	       (unsigned long long)pk->nr_free);
	printf("  %-22s %llu in use, %llu free, %ld leaked\n", "frames after exit",
	       (unsigned long long)(end->nr_frames - end->nr_free),
	       (unsigned long long)end->nr_free, r->leaked);
	printf("  %-22s %llu frames (%.0f MiB); %llu free frames still resident\n",
	       "host memory returned", (unsigned long long)end->nr_returned,
	       mib(end->nr_returned), (unsigned long long)end->nr_free_resident);
	printf("  %-22s %llu, %llu of which waited for an access\n", "tlb flushes",
	       (unsigned long long)end->nr_tlb_flushes, (unsigned long long)end->nr_tlb_waits);
	print_rss(r);
	if (bad)
		printf("  %-22s FAILED %lu mismatches\n", "data check", bad);
	else
		printf("  %-22s OK (%llu reads by threads, %llu pages read back)\n",
		       "data check", (unsigned long long)r->reads,
		       (unsigned long long)r->pages_checked);
	print_verdict("validate", r->validate_err, r->validate_msg);
	print_verdict("validate after exit", r->validate_end_err, r->validate_end_msg);
	printf("  %-22s %.3f s\n", "elapsed", now() - r->t_start);
	fflush(stdout);
	if (bad || r->validate_err || r->validate_end_err || r->leaked)
		return CLI_EXIT_FAIL;
	return CLI_EXIT_OK;
}

/* ---- the command ---- */

static const struct cli_usage run_usage = {
	.synopsis = "[OPTIONS]",
	.description =
		"Boot guest address spaces on a simulated machine, all with the same image\n"
		"and their own data; fork each into a snapshot; let the snapshots rewrite\n"
		"part of their memory (copy-on-write); let threads read and write guests and\n"
		"snapshots concurrently; read everything back and check every byte; exit.\n"
		"Prints one line per phase and a report of what the machine did.",
	.footer =
		"SIZE is bytes with an optional K, M, G or T suffix (powers of 1024);\n"
		"N is a decimal (or 0x hexadecimal) integer.\n"
		"Exit status: 0 all checks passed, 1 a check or the library failed,\n"
		"2 bad usage.",
};

/*
 * Check what the option table cannot: the scenario's size as a whole.
 * Return: true, or false after printing the one error line.
 */
static bool check_opts(const struct run_opts *o)
{
	if (o->guests * 2 * o->threads > MAX_THREADS) {
		cli_error(cmd, "--guests %llu with --threads %llu makes %llu threads (maximum %d)",
			  (unsigned long long)o->guests, (unsigned long long)o->threads,
			  (unsigned long long)(o->guests * 2 * o->threads), MAX_THREADS);
		return false;
	}
	return true;
}

/* Create the machine.  Return: 0 or a negative errno (after its line). */
static int create_machine(struct run *r)
{
	struct umm_config cfg;
	struct umm_stat st;
	double t0 = now();
	char sz[32];
	int err;

	umm_config_init(&cfg);
	cfg.phys_bytes = r->o.phys;
	cfg.nr_nodes = r->o.nodes;
	err = umm_create(&cfg, &r->u);
	if (err) {
		cli_errno(cmd, err, "cannot create a machine with --phys %s and --nodes %llu",
			  cli_fmt_size(sz, sizeof(sz), r->o.phys),
			  (unsigned long long)r->o.nodes);
		return err;
	}
	umm_set_log(r->u, log_hook, r);
	umm_get_stat(r->u, &st);
	r->t_machine = now() - t0;
	snprintf(r->machine_line, sizeof(r->machine_line), "%s (%llu frames), %llu node%s, seed %llu",
		 cli_fmt_size(sz, sizeof(sz), st.nr_frames * PAGE),
		 (unsigned long long)st.nr_frames, (unsigned long long)r->o.nodes,
		 plural(r->o.nodes), (unsigned long long)r->o.seed);
	return 0;
}

/*
 * A phase failed (its line is out): the machine must still be consistent,
 * and give every frame back when the address spaces exit.  Say so only if
 * it does not, which is a bug in the library.
 */
static void check_after_failure(struct run *r)
{
	char msg[256];
	long leaked;

	if (umm_validate(r->u, UMM_VALIDATE_EXACT, msg, sizeof(msg)))
		cli_error(cmd, "after the failure, validate: %s", msg);
	exit_spaces(r);
	leaked = umm_leak_check(r->u, NULL, NULL);
	if (leaked)
		cli_error(cmd, "after the failure, %ld frames leaked", leaked);
}

/* Run the phases in order.  Return: an exit status. */
static int run_scenario(struct run *r)
{
	int err, status;

	r->t_start = now();
	err = create_machine(r);
	if (err)
		return CLI_EXIT_FAIL;
	r->spaces = xcalloc(2 * r->o.guests, sizeof(*r->spaces));
	umm_get_stat(r->u, &r->st_phase);
	err = phase_boot(r);
	if (!err)
		err = phase_fork(r);
	if (!err)
		err = phase_cow(r);
	if (!err)
		err = phase_threads(r);
	if (!err)
		err = phase_check(r);
	if (err) {
		check_after_failure(r);
		status = CLI_EXIT_FAIL;
	} else {
		take_peak(r);
		phase_exit(r);
		status = report(r);
	}
	free(r->spaces);
	umm_destroy(r->u);
	return status;
}

int cmd_run(int argc, char **argv)
{
	struct run r = {
		.o = {
			.phys = 256ULL << 20, .nodes = 1, .seed = 1, .guests = 4,
			.image_pages = 4096, .data_pages = 1024, .cow_pct = 25,
			.threads = 2, .ops = 10000,
		},
		.lock = PTHREAD_MUTEX_INITIALIZER,
		.cond = PTHREAD_COND_INITIALIZER,
	};
	struct run_opts *o = &r.o;
	const struct cli_opt opts[] = {
		{ "phys", CLI_OPT_SIZE, &o->phys, 64 << 10, 1ULL << 40, PAGE, "SIZE",
		  "simulated RAM, a multiple of 4K" },
		{ "nodes", CLI_OPT_UINT, &o->nodes, 1, 64, 0, "N", "memory nodes, 1 to 64" },
		{ "guests", CLI_OPT_UINT, &o->guests, 1, 1024, 0, "N",
		  "guest address spaces to boot" },
		{ "image-pages", CLI_OPT_UINT, &o->image_pages, 1, 1 << 24, 0, "N",
		  "pages of the image every guest boots" },
		{ "data-pages", CLI_OPT_UINT, &o->data_pages, 1, 1 << 24, 0, "N",
		  "pages of private data per guest" },
		{ "cow-pct", CLI_OPT_UINT, &o->cow_pct, 0, 100, 0, "N",
		  "percent of its pages each snapshot rewrites" },
		{ "threads", CLI_OPT_UINT, &o->threads, 1, 64, 0, "N",
		  "threads per guest and per snapshot" },
		{ "ops", CLI_OPT_UINT, &o->ops, 0, 1000000000, 0, "N",
		  "reads and writes per thread" },
		{ "seed", CLI_OPT_UINT, &o->seed, 0, UINT64_MAX, 0, "N",
		  "seed of the image, data and thread choices" },
		{ "verbose", CLI_OPT_FLAG, &o->verbose, 0, 0, 0, NULL,
		  "also print the library's informational messages" },
		{ NULL },
	};

	switch (cli_parse(cmd, opts, &run_usage, argc, argv)) {
	case CLI_PARSE_HELP:
		return CLI_EXIT_OK;
	case CLI_PARSE_ERROR:
		return CLI_EXIT_USAGE;
	case CLI_PARSE_OK:
		break;
	}
	if (!check_opts(o))
		return CLI_EXIT_USAGE;
	r.nr_pages = o->image_pages + o->data_pages;
	return run_scenario(&r);
}
