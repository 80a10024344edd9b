// SPDX-License-Identifier: MIT
/*
 * util.c - what several subcommands share: clocks, hashing, host memory,
 * JSON strings, temporary files that a signal removes, the KSM knob flags
 * and the boot image made of real files.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <umm/umm.h>

#include "cli.h"

double cli_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

double cli_cpu_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

uint64_t cli_mix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

uint64_t cli_hash_page(const void *page)
{
	const uint64_t *w = page;
	uint64_t h = 0x51ed270b27a0d8f5ULL;
	size_t i;

	for (i = 0; i < CLI_PAGE / 8; i++)
		h = cli_mix64(h ^ w[i]);
	return h;
}

void *cli_xmalloc(const char *cmd, size_t size)
{
	void *p = malloc(size ? size : 1);

	if (!p) {
		cli_error(cmd, "out of host memory");
		exit(CLI_EXIT_FAIL);
	}
	return p;
}

void *cli_xcalloc(const char *cmd, size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);

	if (!p) {
		cli_error(cmd, "out of host memory");
		exit(CLI_EXIT_FAIL);
	}
	return p;
}

void cli_json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char c = *s;

		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

FILE *cli_json_open(const char *cmd, struct cli_json *j)
{
	memset(j, 0, sizeof(*j));
	j->f = open_memstream(&j->text, &j->len);
	if (!j->f)
		cli_error(cmd, "out of host memory");
	return j->f;
}

int cli_json_emit(const char *cmd, struct cli_json *j)
{
	int err = 0;

	if (fclose(j->f)) {
		cli_error(cmd, "out of host memory");
		err = -ENOMEM;
	} else {
		fwrite(j->text, 1, j->len, stdout);
		fflush(stdout);
	}
	free(j->text);
	memset(j, 0, sizeof(*j));
	return err;
}

/* ---- temporary files ---- */

/*
 * The temporary files alive now.  The handler may run on any thread while
 * the command creates or drops one: a slot's path is written before it is
 * marked used, and unmarked before the slot is reused.
 */
static struct cli_tmp_slot {
	atomic_int used;
	char path[PATH_MAX];
} tmp_slots[CLI_TMP_MAX];

static const int tmp_signals[] = { SIGINT, SIGTERM, SIGHUP };

/*
 * Async-signal-safe: unlink what is recorded, then end the process as the
 * signal would have (SA_RESETHAND gave back the default action; the signal
 * is blocked until the handler returns).
 */
static void tmp_on_signal(int sig)
{
	int saved = errno;
	size_t i;

	for (i = 0; i < CLI_TMP_MAX; i++)
		if (atomic_load(&tmp_slots[i].used))
			unlink(tmp_slots[i].path);
	raise(sig);
	errno = saved;
}

/* Catch the signals once; one ignored when the command started stays ignored. */
static void tmp_catch_signals(void)
{
	static bool done;
	struct sigaction sa = { .sa_handler = tmp_on_signal, .sa_flags = SA_RESETHAND };
	struct sigaction old;
	size_t i;

	if (done)
		return;
	done = true;
	sigemptyset(&sa.sa_mask);
	for (i = 0; i < sizeof(tmp_signals) / sizeof(tmp_signals[0]); i++)
		if (!sigaction(tmp_signals[i], NULL, &old) && old.sa_handler != SIG_IGN)
			sigaction(tmp_signals[i], &sa, NULL);
}

int cli_tmp_create(char *tmpl, int flags)
{
	sigset_t set, old;
	size_t i;
	int fd, err = 0;

	tmp_catch_signals();
	sigemptyset(&set);
	for (i = 0; i < sizeof(tmp_signals) / sizeof(tmp_signals[0]); i++)
		sigaddset(&set, tmp_signals[i]);
	/* no signal on this thread between the file's birth and its record */
	pthread_sigmask(SIG_BLOCK, &set, &old);
	for (i = 0; i < CLI_TMP_MAX && atomic_load(&tmp_slots[i].used); i++)
		;
	if (i == CLI_TMP_MAX || strlen(tmpl) >= sizeof(tmp_slots[i].path)) {
		fd = -1;
		err = i == CLI_TMP_MAX ? EMFILE : ENAMETOOLONG;
	} else {
		fd = mkostemp(tmpl, flags);
		err = errno;
		if (fd >= 0) {
			strcpy(tmp_slots[i].path, tmpl);
			atomic_store(&tmp_slots[i].used, 1);
		}
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	errno = err;
	return fd;
}

void cli_tmp_forget(const char *path)
{
	size_t i;

	for (i = 0; i < CLI_TMP_MAX; i++)
		if (atomic_load(&tmp_slots[i].used) && !strcmp(tmp_slots[i].path, path))
			atomic_store(&tmp_slots[i].used, 0);
}

void cli_tmp_remove(const char *path)
{
	unlink(path);	/* first: a signal in between finds nothing left to do */
	cli_tmp_forget(path);
}

/* ---- KSM knobs ---- */

void cli_ksm_defaults(struct cli_ksm_knobs *k)
{
	*k = (struct cli_ksm_knobs){
		.pages_to_scan = 100, .sleep_millisecs = 20, .max_page_sharing = 256,
		.merge_across_nodes = 1, .use_zero_pages = 0, .smart_scan = 1,
		.stable_node_chains_prune_millisecs = 2000, .nr_threads = 1,
		.advisor_mode = UMM_KSM_ADVISOR_NONE, .advisor_max_cpu = 70,
		.advisor_min_pages_to_scan = 500, .advisor_max_pages_to_scan = 30000,
		.advisor_target_scan_time = 200,
	};
}

/* Linux's stores: kstrtouint for most, kstrtoint (>= 2) for max_page_sharing. */
void cli_ksm_opts(struct cli_ksm_knobs *k, struct cli_opt *o)
{
	const struct cli_opt t[CLI_KSM_NR_OPTS] = {
		{ "pages_to_scan", CLI_OPT_UINT, &k->pages_to_scan, 0, UINT32_MAX, 0, "N",
		  "ksm: pages scanned per batch" },
		{ "sleep_millisecs", CLI_OPT_UINT, &k->sleep_millisecs, 0, UINT32_MAX, 0, "MS",
		  "ksm: sleep between batches" },
		{ "max_page_sharing", CLI_OPT_UINT, &k->max_page_sharing, 2, INT32_MAX, 0, "N",
		  "ksm: most PTEs one KSM page may back" },
		{ "merge_across_nodes", CLI_OPT_UINT, &k->merge_across_nodes, 0, 1, 0, "0|1",
		  "ksm: merge pages of different nodes" },
		{ "use_zero_pages", CLI_OPT_UINT, &k->use_zero_pages, 0, 1, 0, "0|1",
		  "ksm: map empty pages to the zero page" },
		{ "smart_scan", CLI_OPT_UINT, &k->smart_scan, 0, 1, 0, "0|1",
		  "ksm: skip pages that did not merge lately" },
		{ "stable_node_chains_prune_millisecs", CLI_OPT_UINT,
		  &k->stable_node_chains_prune_millisecs, 0, UINT32_MAX, 0, "MS",
		  "ksm: how often stale chains are pruned" },
		{ "advisor_mode", CLI_OPT_CHOICE, &k->advisor_mode, 0, 0, 0, "none|scan-time",
		  "ksm: scan-time: the advisor sets pages_to_scan" },
		{ "advisor_target_scan_time", CLI_OPT_UINT, &k->advisor_target_scan_time, 1,
		  UINT32_MAX, 0, "S", "ksm advisor: seconds a full scan should take" },
		{ "advisor_max_cpu", CLI_OPT_UINT, &k->advisor_max_cpu, 0, UINT32_MAX, 0, "PCT",
		  "ksm advisor: most CPU percent ksmd may use" },
		{ "advisor_min_pages_to_scan", CLI_OPT_UINT, &k->advisor_min_pages_to_scan, 0,
		  UINT32_MAX, 0, "N", "ksm advisor: fewest pages per batch" },
		{ "advisor_max_pages_to_scan", CLI_OPT_UINT, &k->advisor_max_pages_to_scan, 0,
		  UINT32_MAX, 0, "N", "ksm advisor: most pages per batch" },
		{ "ksm-threads", CLI_OPT_UINT, &k->nr_threads, 1, UMM_KSM_MAX_THREADS, 0, "N",
		  "ksm: scanner threads (umm's nr_threads; Linux has 1)" },
	};

	memcpy(o, t, sizeof(t));
}

const char *cli_ksm_advisor_mode(const struct cli_ksm_knobs *k)
{
	return k->advisor_mode == UMM_KSM_ADVISOR_NONE ? "none" : "scan-time";
}

bool cli_ksm_check(const char *cmd, const struct cli_ksm_knobs *k)
{
	if (k->advisor_mode != UMM_KSM_ADVISOR_NONE && cli_given(&k->pages_to_scan)) {
		cli_error(cmd, "--pages_to_scan: the scan-time advisor sets pages_to_scan itself "
			  "(leave it out with --advisor_mode scan-time)");
		return false;
	}
	return true;
}

int cli_ksm_apply(struct umm *u, const struct cli_ksm_knobs *k)
{
	struct umm_ksm_params p;
	int err = umm_ksm_get_params(u, &p);

	if (err)
		return err;
	if (k->advisor_mode == UMM_KSM_ADVISOR_NONE)
		p.pages_to_scan = k->pages_to_scan;
	p.sleep_millisecs = k->sleep_millisecs;
	p.max_page_sharing = k->max_page_sharing;
	p.merge_across_nodes = k->merge_across_nodes;
	p.use_zero_pages = k->use_zero_pages;
	p.smart_scan = k->smart_scan;
	p.stable_node_chains_prune_millisecs = k->stable_node_chains_prune_millisecs;
	p.nr_threads = k->nr_threads;
	p.advisor_mode = k->advisor_mode;
	p.advisor_max_cpu = k->advisor_max_cpu;
	p.advisor_min_pages_to_scan = k->advisor_min_pages_to_scan;
	p.advisor_max_pages_to_scan = k->advisor_max_pages_to_scan;
	p.advisor_target_scan_time = k->advisor_target_scan_time;
	return umm_ksm_set_params(u, &p);
}

void cli_ksm_json(FILE *f, const struct cli_ksm_knobs *k)
{
	fprintf(f, "\"pages_to_scan\": %llu, \"sleep_millisecs\": %llu, "
		"\"max_page_sharing\": %llu, \"merge_across_nodes\": %llu, \"use_zero_pages\": %llu, "
		"\"smart_scan\": %llu, \"stable_node_chains_prune_millisecs\": %llu, "
		"\"advisor_mode\": \"%s\", \"advisor_target_scan_time\": %llu, "
		"\"advisor_max_cpu\": %llu, \"advisor_min_pages_to_scan\": %llu, "
		"\"advisor_max_pages_to_scan\": %llu, \"nr_threads\": %llu",
		(unsigned long long)k->pages_to_scan, (unsigned long long)k->sleep_millisecs,
		(unsigned long long)k->max_page_sharing, (unsigned long long)k->merge_across_nodes,
		(unsigned long long)k->use_zero_pages, (unsigned long long)k->smart_scan,
		(unsigned long long)k->stable_node_chains_prune_millisecs,
		cli_ksm_advisor_mode(k), (unsigned long long)k->advisor_target_scan_time,
		(unsigned long long)k->advisor_max_cpu,
		(unsigned long long)k->advisor_min_pages_to_scan,
		(unsigned long long)k->advisor_max_pages_to_scan,
		(unsigned long long)k->nr_threads);
}

void cli_ksm_text(FILE *f, const char *indent, const struct cli_ksm_knobs *k)
{
	bool adv = k->advisor_mode != UMM_KSM_ADVISOR_NONE;

	fprintf(f, "pages_to_scan %llu%s, sleep_millisecs %llu, max_page_sharing %llu,\n"
		"%smerge_across_nodes %llu, use_zero_pages %llu, smart_scan %llu,\n"
		"%sstable_node_chains_prune_millisecs %llu, nr_threads %llu,\n%sadvisor_mode %s",
		(unsigned long long)k->pages_to_scan, adv ? " (the advisor's)" : "",
		(unsigned long long)k->sleep_millisecs, (unsigned long long)k->max_page_sharing,
		indent, (unsigned long long)k->merge_across_nodes,
		(unsigned long long)k->use_zero_pages, (unsigned long long)k->smart_scan, indent,
		(unsigned long long)k->stable_node_chains_prune_millisecs,
		(unsigned long long)k->nr_threads, indent, cli_ksm_advisor_mode(k));
	if (adv)
		fprintf(f, ", advisor_target_scan_time %llu, advisor_max_cpu %llu,\n%s"
			"advisor_min_pages_to_scan %llu, advisor_max_pages_to_scan %llu",
			(unsigned long long)k->advisor_target_scan_time,
			(unsigned long long)k->advisor_max_cpu, indent,
			(unsigned long long)k->advisor_min_pages_to_scan,
			(unsigned long long)k->advisor_max_pages_to_scan);
	fputc('\n', f);
}

/* ---- the boot image ---- */

#if defined(__x86_64__)
#define MULTIARCH_LIBDIR "/usr/lib/x86_64-linux-gnu"
#elif defined(__aarch64__)
#define MULTIARCH_LIBDIR "/usr/lib/aarch64-linux-gnu"
#elif defined(__i386__)
#define MULTIARCH_LIBDIR "/usr/lib/i386-linux-gnu"
#elif defined(__powerpc64__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define MULTIARCH_LIBDIR "/usr/lib/powerpc64le-linux-gnu"
#elif defined(__s390x__)
#define MULTIARCH_LIBDIR "/usr/lib/s390x-linux-gnu"
#elif defined(__riscv) && __riscv_xlen == 64
#define MULTIARCH_LIBDIR "/usr/lib/riscv64-linux-gnu"
#else
#define MULTIARCH_LIBDIR "/usr/lib"
#endif

const char *cli_default_image[2] = { MULTIARCH_LIBDIR, "/usr/bin" };

static bool page_is_zero(const uint8_t *p)
{
	static const uint8_t zero[CLI_PAGE];

	return !memcmp(p, zero, CLI_PAGE);
}

/*
 * Append regular file @path to @img, at most @room bytes (rounded up to
 * pages).  Unreadable files are passed over: the image takes what it can.
 */
static void image_add_file(struct cli_image *img, const char *path, uint64_t room)
{
	uint8_t *dst = img->buf + img->pages * CLI_PAGE;
	uint64_t got = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

	if (fd < 0)
		return;
	while (got < room) {
		ssize_t n = read(fd, dst + got, room - got);

		if (n <= 0)
			break;
		got += n;
	}
	close(fd);
	if (!got)
		return;
	got = (got + CLI_PAGE - 1) & ~(CLI_PAGE - 1);	/* the buffer is zeroed */
	img->pages += got / CLI_PAGE;
	img->files++;
}

static uint64_t image_room(const struct cli_image *img, uint64_t max_pages)
{
	return (max_pages - img->pages) * CLI_PAGE;
}

static void image_add_dir(struct cli_image *img, const char *dir, uint64_t max_pages)
{
	struct dirent **names;
	int n, i;

	n = scandir(dir, &names, NULL, alphasort);
	if (n < 0)
		return;
	for (i = 0; i < n; i++) {
		char path[4096];
		struct stat st;

		if (img->pages < max_pages &&
		    snprintf(path, sizeof(path), "%s/%s", dir, names[i]->d_name) < (int)sizeof(path) &&
		    !lstat(path, &st) && S_ISREG(st.st_mode) && st.st_size > 0)
			image_add_file(img, path, image_room(img, max_pages));
		free(names[i]);
	}
	free(names);
}

int cli_image_load(const char *cmd, const struct cli_list *paths, uint64_t max_bytes,
		   struct cli_image *img)
{
	uint64_t max_pages = max_bytes / CLI_PAGE, p;
	struct stat st;
	size_t i;

	memset(img, 0, sizeof(*img));
	for (i = 0; i < paths->n; i++) {
		if (stat(paths->v[i], &st)) {
			cli_errno(cmd, -errno, "--image %s", paths->v[i]);
			return CLI_EXIT_USAGE;
		}
		if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode)) {
			cli_error(cmd, "--image %s: not a file or directory", paths->v[i]);
			return CLI_EXIT_USAGE;
		}
	}
	img->buf = calloc(max_pages ? max_pages : 1, CLI_PAGE);
	if (!img->buf) {
		cli_error(cmd, "out of host memory for a %llu-page image",
			  (unsigned long long)max_pages);
		return CLI_EXIT_FAIL;
	}
	for (i = 0; i < paths->n && img->pages < max_pages; i++) {
		stat(paths->v[i], &st);
		if (S_ISDIR(st.st_mode))
			image_add_dir(img, paths->v[i], max_pages);
		else
			image_add_file(img, paths->v[i], image_room(img, max_pages));
	}
	if (!img->pages) {
		cli_error(cmd, "--image: no readable file under %s%s", paths->v[0],
			  paths->n > 1 ? " and the other paths" : "");
		cli_image_free(img);
		return CLI_EXIT_USAGE;
	}
	for (p = 0; p < img->pages; p++)
		img->zero_pages += page_is_zero(img->buf + p * CLI_PAGE);
	return CLI_EXIT_OK;
}

void cli_image_free(struct cli_image *img)
{
	free(img->buf);
	memset(img, 0, sizeof(*img));
}
