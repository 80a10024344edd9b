// SPDX-License-Identifier: MIT
/*
 * estimate.c - `umm estimate`: what KSM would save on this machine now.
 *
 * The anonymous pages of real processes are read (/proc/PID/maps for the
 * private mappings, /proc/PID/pagemap for which of their pages are present
 * anonymous pages, /proc/PID/mem for the bytes; root reads them all), the
 * pages the host kernel's KSM could scan are loaded into a umm machine
 * sized for them, one address space per process, all MADV_MERGEABLE; KSM
 * runs with Linux's default knobs until a full scan changes nothing, and
 * the figures are those of /sys/kernel/mm/ksm and /proc/PID/ksm_stat.
 *
 * Which pages: as the kernel's KSM under PR_SET_MEMORY_MERGE, every
 * present anonymous page of a private mapping (heap, stack, anonymous
 * mappings, and the copied-on-write pages of private file mappings); not
 * page-cache pages, not the shared zero page, not swapped-out pages, not
 * the vDSO.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <umm/umm.h>

#include "cli.h"

static const char *const cmd = "estimate";

#define PM_PRESENT	(1ULL << 63)
#define PM_SWAP		(1ULL << 62)
#define PM_FILE		(1ULL << 61)
#define PM_PFN_MASK	((1ULL << 55) - 1)
#define READ_PAGES	256	/* pages per pread of /proc/PID/mem */

/* One process's anonymous pages, as read. */
struct proc {
	int pid;
	char comm[32];
	uint8_t *data;		/* pages * CLI_PAGE bytes */
	uint64_t pages, cap;
	uint64_t regions;
	struct umm_mm *mm;
	struct umm_mm_ksm_stat ksm;
};

/* A page's identity for the duplicate census. */
struct key {
	uint64_t hash;
	uint8_t prefix[16];
	uint16_t nz_off;	/* where the first non-zero byte is (not compared) */
	uint8_t nz[8];		/* the bytes there */
};

struct group {
	uint64_t count;
	struct key key;
	bool zero;
};

struct estimate {
	bool all, json;
	uint64_t use_zero_pages;	/* 0|1, as /sys/kernel/mm/ksm/use_zero_pages */
	uint64_t top, max_bytes;
	struct cli_list pids;
	struct proc *procs;
	size_t nr_procs;
	uint64_t skipped, total_pages;
	uint64_t max_vma, skipped_vmas;	/* mappings too large to walk (sanitizer shadows) */
	uint64_t zero_pfn;	/* the shared zero page's pfn, 0 if unknown */
	struct key *keys;
	struct group *groups;
	size_t nr_groups;
	struct umm *u;
	struct umm_ksm_stats ks;
	double t_read, t_load, t_scan, cpu_scan;
};

/*
 * The pfn of the shared zero page, so that pages mapping it are passed
 * over as the kernel's KSM passes them over.  Only root sees pfns.
 */
static uint64_t find_zero_pfn(void)
{
	volatile char *p = mmap(NULL, CLI_PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint64_t e = 0;
	int fd;

	if (p == MAP_FAILED)
		return 0;
	(void)p[0];
	fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		if (pread(fd, &e, sizeof(e), (off_t)((uintptr_t)p / CLI_PAGE * 8)) != sizeof(e))
			e = 0;
		close(fd);
	}
	munmap((void *)p, CLI_PAGE);
	return (e & PM_PRESENT) ? e & PM_PFN_MASK : 0;
}

static int proc_grow(struct proc *pr, uint64_t more)
{
	uint64_t cap = pr->cap ? pr->cap : 256;
	uint8_t *d;

	if (pr->pages + more <= pr->cap)
		return 0;
	while (cap < pr->pages + more)
		cap *= 2;
	d = realloc(pr->data, cap * CLI_PAGE);
	if (!d)
		return -ENOMEM;
	pr->data = d;
	pr->cap = cap;
	return 0;
}

/*
 * Whether a line of /proc/PID/maps is a mapping whose pages the kernel's
 * KSM may scan: private, and not one of the kernel's special mappings.
 */
static bool mapping_mergeable(const char *perms, const char *path)
{
	if (perms[3] != 'p')
		return false;
	return strcmp(path, "[vdso]") && strcmp(path, "[vvar]") && strcmp(path, "[vsyscall]") &&
	       strcmp(path, "[uprobes]") && strncmp(path, "[vvar_", 6);
}

/*
 * Append the present anonymous pages of [@start, @end) of @pr.
 * Return: 0, or a negative errno when the host is out of memory.
 */
static int read_region(struct estimate *e, struct proc *pr, int mem, int pagemap,
		       uint64_t start, uint64_t end)
{
	uint64_t pm[READ_PAGES];
	uint64_t a = start;

	while (a < end) {
		uint64_t n = (end - a) / CLI_PAGE < READ_PAGES ? (end - a) / CLI_PAGE : READ_PAGES;
		ssize_t got = pread(pagemap, pm, n * 8, (off_t)(a / CLI_PAGE * 8));
		uint64_t i, j;

		if (got <= 0)
			return 0;
		n = got / 8;
		for (i = 0; i < n; i = j) {
			/* a run of pages to read */
			for (j = i; j < n; j++) {
				bool take = (pm[j] & PM_PRESENT) && !(pm[j] & PM_FILE) &&
					    !(e->zero_pfn && (pm[j] & PM_PFN_MASK) == e->zero_pfn);

				if (!take)
					break;
			}
			if (j == i) {
				j++;
				continue;
			}
			if (proc_grow(pr, j - i))
				return -ENOMEM;
			got = pread(mem, pr->data + pr->pages * CLI_PAGE, (j - i) * CLI_PAGE,
				    (off_t)(a + i * CLI_PAGE));
			if (got > 0)
				pr->pages += got / CLI_PAGE;
		}
		a += n * CLI_PAGE;
	}
	return 0;
}

static int open_proc_file(int pid, const char *name)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/%s", pid, name);
	return open(path, O_RDONLY | O_CLOEXEC);
}

/*
 * Read process @pr->pid's anonymous memory.  Return: 0, or a negative
 * errno (-ESRCH when it does not exist, -EACCES/-EPERM when it cannot be
 * read, -ENOMEM).
 */
static int read_proc(struct estimate *e, struct proc *pr)
{
	int maps_fd, mem = -1, pagemap = -1, err = 0;
	char line[4096 + 256];
	unsigned long long start = 0, end = 0;
	bool mergeable = false;
	FILE *maps;
	ssize_t n;
	int fd;

	fd = open_proc_file(pr->pid, "comm");
	if (fd < 0)
		return errno == ENOENT ? -ESRCH : -errno;
	n = read(fd, pr->comm, sizeof(pr->comm) - 1);
	close(fd);
	pr->comm[n > 0 ? n : 0] = 0;
	if (n > 0 && pr->comm[n - 1] == '\n')
		pr->comm[n - 1] = 0;
	maps_fd = open_proc_file(pr->pid, "smaps");
	if (maps_fd < 0)
		return errno == ENOENT ? -ESRCH : -errno;
	maps = fdopen(maps_fd, "r");
	while (!err && maps && fgets(line, sizeof(line), maps)) {
		char perms[8] = "", path[4096] = "";
		unsigned long long kb, a, b;
		int off = 0;

		if (sscanf(line, "%llx-%llx %7s %*s %*s %*s%n", &a, &b, perms, &off) >= 3) {
			start = a;
			end = b;
			sscanf(line + off, " %4095[^\n]", path);
			mergeable = mapping_mergeable(perms, path);
			continue;
		}
		/* a mapping's "Anonymous:" line: read it only if it has such pages */
		if (!mergeable || sscanf(line, "Anonymous: %llu kB", &kb) != 1 || !kb)
			continue;
		if (end - start > e->max_vma) {
			e->skipped_vmas++;
			continue;
		}
		/* opened at the first mapping: kernel threads have none, and no mem */
		if (mem < 0 && (mem = open_proc_file(pr->pid, "mem")) < 0)
			err = errno == ENOENT ? -ESRCH : -errno;
		if (!err && pagemap < 0 && (pagemap = open_proc_file(pr->pid, "pagemap")) < 0)
			err = errno == ENOENT ? -ESRCH : -errno;
		if (err)
			break;
		pr->regions++;
		err = read_region(e, pr, mem, pagemap, start, end);
	}
	if (maps)
		fclose(maps);
	else
		close(maps_fd);
	if (mem >= 0)
		close(mem);
	if (pagemap >= 0)
		close(pagemap);
	return err;
}

static void proc_free(struct proc *pr)
{
	free(pr->data);
	pr->data = NULL;
}

/* Collect the PIDs to read: --pid (checked) or every process (--all). */
static int collect_pids(struct estimate *e)
{
	size_t i;

	if (e->all) {
		DIR *d = opendir("/proc");
		struct dirent *de;

		if (!d) {
			cli_errno(cmd, -errno, "/proc");
			return CLI_EXIT_FAIL;
		}
		while ((de = readdir(d))) {
			char *end;
			long pid = strtol(de->d_name, &end, 10);

			if (*end || pid <= 0 || pid == getpid())
				continue;
			e->procs = realloc(e->procs, (e->nr_procs + 1) * sizeof(*e->procs));
			if (!e->procs) {
				cli_error(cmd, "out of host memory");
				closedir(d);
				return CLI_EXIT_FAIL;
			}
			memset(&e->procs[e->nr_procs], 0, sizeof(*e->procs));
			e->procs[e->nr_procs++].pid = (int)pid;
		}
		closedir(d);
	}
	for (i = 0; i < e->pids.n; i++) {
		uint64_t pid;
		size_t j;

		if (cli_parse_u64(e->pids.v[i], &pid) || !pid || pid > 0x3fffffff) {
			cli_error(cmd, "--pid: '%s' is not a process ID", e->pids.v[i]);
			return CLI_EXIT_USAGE;
		}
		for (j = 0; j < e->nr_procs && e->procs[j].pid != (int)pid; j++)
			;
		if (j < e->nr_procs)
			continue;	/* named twice, or also in --all */
		e->procs = realloc(e->procs, (e->nr_procs + 1) * sizeof(*e->procs));
		if (!e->procs) {
			cli_error(cmd, "out of host memory");
			return CLI_EXIT_FAIL;
		}
		memset(&e->procs[e->nr_procs], 0, sizeof(*e->procs));
		e->procs[e->nr_procs++].pid = (int)pid;
	}
	return CLI_EXIT_OK;
}

/*
 * Read every process.  A PID named with --pid must be readable; with --all
 * the processes that vanish or cannot be read are counted and passed over.
 */
static int read_all(struct estimate *e)
{
	double t0 = cli_now();
	size_t i, kept = 0;

	e->zero_pfn = find_zero_pfn();
	for (i = 0; i < e->nr_procs; i++) {
		struct proc *pr = &e->procs[i];
		bool named = false;
		int err = read_proc(e, pr);

		for (size_t j = 0; j < e->pids.n; j++)
			named |= (int)strtol(e->pids.v[j], NULL, 0) == pr->pid;
		if (err == -ENOMEM) {
			cli_error(cmd, "out of host memory reading pid %d", pr->pid);
			return CLI_EXIT_FAIL;
		}
		if (err && named) {
			if (err == -ESRCH)
				cli_error(cmd, "pid %d: no such process", pr->pid);
			else
				cli_errno(cmd, err, "pid %d: cannot read its memory", pr->pid);
			return CLI_EXIT_FAIL;
		}
		if (err || (!pr->pages && !named)) {
			e->skipped += err != 0;
			proc_free(pr);
			continue;
		}
		e->total_pages += pr->pages;
		if (e->total_pages * CLI_PAGE > e->max_bytes) {
			cli_error(cmd, "more than --max-size %llu MiB of anonymous memory to load",
				  (unsigned long long)(e->max_bytes >> 20));
			return CLI_EXIT_FAIL;
		}
		e->procs[kept++] = *pr;
	}
	e->nr_procs = kept;
	e->t_read = cli_now() - t0;
	return CLI_EXIT_OK;
}

/* ---- the duplicate census ---- */

static int cmp_key(const void *a, const void *b)
{
	const struct key *x = a, *y = b;

	if (x->hash != y->hash)
		return x->hash < y->hash ? -1 : 1;
	return memcmp(x->prefix, y->prefix, sizeof(x->prefix));
}

static int cmp_group(const void *a, const void *b)
{
	const struct group *x = a, *y = b;

	if (x->count != y->count)
		return x->count > y->count ? -1 : 1;
	return cmp_key(&x->key, &y->key);
}


/* Hash every page; group equal contents, most frequent first. */
static void census(struct estimate *e)
{
	static const uint8_t zero[CLI_PAGE];
	uint64_t n = 0, i, zero_hash = cli_hash_page(zero);
	size_t p;

	e->keys = cli_xcalloc(cmd, e->total_pages, sizeof(*e->keys));
	for (p = 0; p < e->nr_procs; p++)
		for (i = 0; i < e->procs[p].pages; i++, n++) {
			const uint8_t *pg = e->procs[p].data + i * CLI_PAGE;

			struct key *k = &e->keys[n];
			unsigned int off = 0;

			k->hash = cli_hash_page(pg);
			memcpy(k->prefix, pg, sizeof(k->prefix));
			while (off < CLI_PAGE - 1 && !pg[off])
				off++;
			off = off < CLI_PAGE - sizeof(k->nz) ? off : CLI_PAGE - sizeof(k->nz);
			k->nz_off = off;
			memcpy(k->nz, pg + off, sizeof(k->nz));
		}
	qsort(e->keys, n, sizeof(*e->keys), cmp_key);
	e->groups = cli_xcalloc(cmd, n, sizeof(*e->groups));
	for (i = 0; i < n; i++) {
		if (!i || cmp_key(&e->keys[i], &e->keys[i - 1])) {
			e->groups[e->nr_groups].key = e->keys[i];
			e->groups[e->nr_groups].zero = e->keys[i].hash == zero_hash;
			e->nr_groups++;
		}
		e->groups[e->nr_groups - 1].count++;
	}
	qsort(e->groups, e->nr_groups, sizeof(*e->groups), cmp_group);
}

/* ---- the machine ---- */

static void log_hook(void *ctx, int level, const char *msg)
{
	if (level < UMM_LOG_INFO)
		fprintf(stderr, "umm: %s\n", msg);
}

/* Load every process into its own address space of a machine sized for all. */
static int load(struct estimate *e)
{
	const int prot = UMM_PROT_READ | UMM_PROT_WRITE;
	struct umm_config cfg;
	struct cli_ksm_knobs k;
	double t0 = cli_now();
	size_t i;
	int err;

	umm_config_init(&cfg);
	cfg.phys_bytes = (e->total_pages + e->total_pages / 8 + 4096) * CLI_PAGE;
	err = umm_create(&cfg, &e->u);
	if (err) {
		cli_errno(cmd, err, "a machine for %llu pages", (unsigned long long)e->total_pages);
		return err;
	}
	umm_set_log(e->u, log_hook, e);
	cli_ksm_defaults(&k);
	k.use_zero_pages = e->use_zero_pages;
	err = cli_ksm_apply(e->u, &k);
	for (i = 0; !err && i < e->nr_procs; i++) {
		struct proc *pr = &e->procs[i];
		uint64_t addr, done;

		err = umm_mm_create(e->u, &pr->mm);
		if (err)
			break;
		if (!pr->pages)
			continue;
		err = umm_mmap(pr->mm, 0, pr->pages * CLI_PAGE, prot,
			       UMM_MAP_PRIVATE | UMM_MAP_ANONYMOUS, NULL, 0, &addr);
		if (!err)
			err = umm_madvise(pr->mm, addr, pr->pages * CLI_PAGE, UMM_MADV_MERGEABLE);
		for (done = 0; !err && done < pr->pages * CLI_PAGE;) {
			ssize_t n = umm_write(pr->mm, addr + done, pr->data + done,
					      pr->pages * CLI_PAGE - done);

			if (n <= 0)
				err = n ? (int)n : -EFAULT;
			else
				done += n;
		}
		proc_free(pr);
	}
	if (err)
		cli_errno(cmd, err, "loading the pages into the machine");
	e->t_load = cli_now() - t0;
	return err;
}

/* Scan until a full scan changes nothing (two at least: pages merge on the second). */
static int converge(struct estimate *e)
{
	double t0 = cli_now(), c0 = cli_cpu_now();
	struct umm_ksm_stats a, b;
	int i, err = 0;

	for (i = 0; !err && i < 16; i++) {
		umm_ksm_get_stats(e->u, &a);
		err = umm_ksm_full_scans(e->u, 1);
		umm_ksm_get_stats(e->u, &b);
		if (i >= 1 && a.pages_shared == b.pages_shared &&
		    a.pages_sharing == b.pages_sharing && a.ksm_zero_pages == b.ksm_zero_pages)
			break;
	}
	if (err)
		cli_errno(cmd, err, "ksm scan");
	umm_ksm_get_stats(e->u, &e->ks);
	for (size_t p = 0; p < e->nr_procs; p++)
		umm_mm_get_ksm_stat(e->procs[p].mm, &e->procs[p].ksm);
	e->t_scan = cli_now() - t0;
	e->cpu_scan = cli_cpu_now() - c0;
	return err;
}

/* ---- the report ---- */

static double mib(double pages)
{
	return pages * CLI_PAGE / 1048576.0;
}

/* The first 16 bytes of a content in hexadecimal, into @buf (33 bytes). */
static void hex_prefix(char *buf, const struct group *g)
{
	unsigned int i;

	for (i = 0; i < 16; i++)
		sprintf(buf + 2 * i, "%02x", g->key.prefix[i]);
}

/* Where a content that starts with zeros has its first non-zero bytes, into @buf (48). */
static const char *hex_nonzero(char *buf, const struct group *g)
{
	unsigned int i, n;

	if (g->zero || g->key.nz_off < 16)
		return "";
	n = sprintf(buf, "  (+0x%03x: ", g->key.nz_off);
	for (i = 0; i < 8; i++)
		n += sprintf(buf + n, "%02x", g->key.nz[i]);
	sprintf(buf + n, ")");
	return buf;
}

static void report_text(const struct estimate *e)
{
	const struct umm_ksm_stats *k = &e->ks;
	char hex[33], nz[48];
	size_t i;

	printf("%8s %-16s %10s %10s %8s %12s\n", "pid", "command", "anon pages", "merging",
	       "zero", "profit MiB");
	for (i = 0; i < e->nr_procs; i++) {
		const struct proc *pr = &e->procs[i];

		printf("%8d %-16.16s %10llu %10lu %8lu %12.2f\n", pr->pid, pr->comm,
		       (unsigned long long)pr->pages, pr->ksm.ksm_merging_pages,
		       pr->ksm.ksm_zero_pages, pr->ksm.ksm_process_profit / 1048576.0);
	}
	printf("\ntotal: %zu process%s (%llu passed over: gone or unreadable; %llu mappings "
	       "larger than --max-vma), %llu pages (%.1f MiB)\n",
	       e->nr_procs, e->nr_procs == 1 ? "" : "es", (unsigned long long)e->skipped,
	       (unsigned long long)e->skipped_vmas,
	       (unsigned long long)e->total_pages, mib(e->total_pages));
	printf("  %-20s %lu\n", "pages_shared", k->pages_shared);
	printf("  %-20s %lu\n", "pages_sharing", k->pages_sharing);
	printf("  %-20s %lu\n", "pages_unshared", k->pages_unshared);
	printf("  %-20s %lu\n", "ksm_zero_pages", k->ksm_zero_pages);
	printf("  %-20s %.1f MiB (%.1f%% of the anonymous memory read)\n", "saved",
	       mib(k->pages_sharing + k->ksm_zero_pages),
	       e->total_pages ? 100.0 * (k->pages_sharing + k->ksm_zero_pages) / e->total_pages : 0.0);
	printf("  %-20s %.1f MiB\n", "general_profit", k->general_profit / 1048576.0);
	printf("  %-20s %lu full scans in %.2f s (%.2f s CPU); read %.2f s, load %.2f s\n",
	       "ksm (Linux defaults)", k->full_scans, e->t_scan, e->cpu_scan, e->t_read, e->t_load);
	printf("\nmost duplicated contents:\n%10s  %s\n", "pages", "first bytes");
	for (i = 0; i < e->nr_groups && i < e->top && e->groups[i].count > 1; i++) {
		hex_prefix(hex, &e->groups[i]);
		printf("%10llu  %s%s%s\n", (unsigned long long)e->groups[i].count, hex,
		       e->groups[i].zero ? "  (zero page)" : "", hex_nonzero(nz, &e->groups[i]));
	}
}

static int report_json(const struct estimate *e)
{
	const struct umm_ksm_stats *k = &e->ks;
	struct cli_json j;
	FILE *f = cli_json_open(cmd, &j);
	char hex[33];
	size_t i;

	if (!f)
		return -ENOMEM;
	fprintf(f, "{\"command\": \"estimate\", \"use_zero_pages\": %s, \"processes\": [",
		e->use_zero_pages ? "true" : "false");
	for (i = 0; i < e->nr_procs; i++) {
		const struct proc *pr = &e->procs[i];

		fprintf(f, "%s\n  {\"pid\": %d, \"comm\": ", i ? "," : "", pr->pid);
		cli_json_str(f, pr->comm);
		fprintf(f, ", \"pages\": %llu, \"ksm_merging_pages\": %lu, \"ksm_zero_pages\": %lu, "
			"\"ksm_process_profit\": %ld, \"ksm_rmap_items\": %lu}",
			(unsigned long long)pr->pages, pr->ksm.ksm_merging_pages,
			pr->ksm.ksm_zero_pages, pr->ksm.ksm_process_profit, pr->ksm.ksm_rmap_items);
	}
	fprintf(f, "],\n \"skipped\": %llu, \"skipped_mappings\": %llu,\n \"total\": {\"pages\": %llu, \"pages_shared\": %lu, "
		"\"pages_sharing\": %lu, \"pages_unshared\": %lu, \"ksm_zero_pages\": %lu, "
		"\"saved_mib\": %.3f, \"general_profit\": %ld, \"full_scans\": %lu, "
		"\"scan_seconds\": %.3f, \"scan_cpu_seconds\": %.3f},\n \"top\": [",
		(unsigned long long)e->skipped, (unsigned long long)e->skipped_vmas,
		(unsigned long long)e->total_pages,
		k->pages_shared, k->pages_sharing, k->pages_unshared, k->ksm_zero_pages,
		mib(k->pages_sharing + k->ksm_zero_pages), k->general_profit, k->full_scans,
		e->t_scan, e->cpu_scan);
	for (i = 0; i < e->nr_groups && i < e->top && e->groups[i].count > 1; i++) {
		hex_prefix(hex, &e->groups[i]);
		fprintf(f, "%s{\"count\": %llu, \"first_nonzero_offset\": %u, \"prefix\": \"%s\", "
			"\"zero\": %s}", i ? ", " : "", (unsigned long long)e->groups[i].count,
			(unsigned int)(e->groups[i].zero ? CLI_PAGE : e->groups[i].key.nz_off), hex,
			e->groups[i].zero ? "true" : "false");
	}
	fprintf(f, "]}\n");
	return cli_json_emit(cmd, &j);
}

static const struct cli_usage estimate_usage = {
	.synopsis = "[--pid PID ...] [--all] [OPTIONS]",
	.description =
		"Estimate what the kernel's KSM would save on this machine now: read the\n"
		"anonymous memory of real processes (/proc/PID/maps, pagemap and mem; root\n"
		"can read every process), load it into a umm machine, run KSM with Linux's\n"
		"default knobs until it converges, and report per process and in total the\n"
		"pages shared and sharing, memory saved, zero pages, general profit, and the\n"
		"most duplicated contents.  Processes merge with each other, as under the\n"
		"kernel's KSM.",
	.footer =
		"--pid may be repeated.  A PID given with --pid that does not exist or cannot\n"
		"be read is an error; --all passes over such processes (and this one).\n"
		"Exit status: 0 success, 1 a process could not be read or the library\n"
		"failed, 2 bad usage.",
};

int cmd_estimate(int argc, char **argv)
{
	struct estimate e = { .top = 10, .max_bytes = 8ULL << 30, .max_vma = 64ULL << 30 };
	const struct cli_opt opts[] = {
		{ "pid", CLI_OPT_LIST, &e.pids, 0, 0, 0, "PID", "a process to read" },
		{ "all", CLI_OPT_FLAG, &e.all, 0, 0, 0, NULL, "read every process" },
		{ "use_zero_pages", CLI_OPT_BOOL, &e.use_zero_pages, 0, 1, 0, "0|1",
		  "ksm: map empty pages to the zero page; alone: 1" },
		{ "top", CLI_OPT_UINT, &e.top, 0, 1000, 0, "N",
		  "most duplicated contents to list" },
		{ "max-size", CLI_OPT_SIZE, &e.max_bytes, 1 << 20, 1ULL << 40, 0, "SIZE",
		  "refuse to load more anonymous memory than this" },
		{ "max-vma", CLI_OPT_SIZE, &e.max_vma, CLI_PAGE, 1ULL << 50, CLI_PAGE, "SIZE",
		  "pass over larger mappings (sanitizer shadows: too long to walk)" },
		{ "json", CLI_OPT_FLAG, &e.json, 0, 0, 0, NULL,
		  "print the report as one JSON object instead" },
		{ NULL },
	};
	int status;
	size_t i;

	switch (cli_parse(cmd, opts, &estimate_usage, argc, argv)) {
	case CLI_PARSE_HELP:
		status = CLI_EXIT_OK;
		goto out;
	case CLI_PARSE_ERROR:
		status = CLI_EXIT_USAGE;
		goto out;
	case CLI_PARSE_OK:
		break;
	}
	if (!e.all && !e.pids.n) {
		cli_error(cmd, "no process given (--pid PID or --all)");
		status = CLI_EXIT_USAGE;
		goto out;
	}
	status = collect_pids(&e);
	if (status == CLI_EXIT_OK)
		status = read_all(&e);
	if (status == CLI_EXIT_OK) {
		census(&e);
		if (load(&e) || converge(&e))
			status = CLI_EXIT_FAIL;
	}
	if (status == CLI_EXIT_OK) {
		if (e.json)
			status = report_json(&e) ? CLI_EXIT_FAIL : CLI_EXIT_OK;
		else
			report_text(&e);
	}
	for (i = 0; i < e.nr_procs; i++)
		proc_free(&e.procs[i]);
	umm_destroy(e.u);
	free(e.procs);
	free(e.keys);
	free(e.groups);
out:
	cli_list_free(&e.pids);
	return status;
}
