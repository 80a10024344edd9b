// SPDX-License-Identifier: MIT
/*
 * bench_remote.c - the XPMEM-style remote client (clients/remote.c): what a
 * remote fault, an invalidation and a direct access cost.
 *
 * The importer is this program exec'd again ("bench_remote
 * --remote-importer SOCK CTL"), a real second process.  Figures:
 *
 *   fault round trip    the importer touches pages it does not map: one
 *                       FAULT message, a GUP in the exporter, the reply,
 *                       an mmap of the frame; beside it a bare SEQPACKET
 *                       ping-pong between the same two processes and the
 *                       exporter's own umm_get_user_page + umm_put_page.
 *   invalidation        umm_mprotect(RO) of N pages while the importer
 *                       maps all N (INVALIDATE, the importer unmaps, ACK)
 *                       against the same call while it maps none.
 *   access              random reads through the importer's window
 *                       (remote_import_read) against umm_read in the
 *                       exporter, 8 bytes and 4 KiB.
 *
 * Usage: bench_remote [--quick] [--json] [--reps N]
 */
#define BENCH_NAME "bench_remote"
#include <sys/socket.h>
#include <sys/wait.h>

#include "bench_common.h"
#include "remote.h"

#define PS		UMM_PAGE_SIZE
#define BASE		0x200000000ULL
#define ROLE		"--remote-importer"
#define MAX_N		4096UL

enum bcmd_op { B_PING = 1, B_TOUCH, B_ACCESS, B_EXIT };

struct bcmd {
	uint32_t op, write;
	uint64_t addr, npages, size;
	uint64_t ns, ops, sum;		/* answers */
	int64_t err;
};

static int bcmd_xfer(int ctl, struct bcmd *c)
{
	if (send(ctl, c, sizeof(*c), MSG_NOSIGNAL) != sizeof(*c) ||
	    recv(ctl, c, sizeof(*c), 0) != sizeof(*c))
		return -EPIPE;
	return 0;
}

/* ---- the importer ---- */

/* Touch the first word of @npages pages, in order: sum of the words read. */
static void imp_touch(struct remote_import *imp, struct bcmd *c)
{
	uint64_t t0 = now_ns(), v;

	c->sum = 0;
	c->err = 0;
	for (uint64_t p = 0; p < c->npages; p++) {
		ssize_t r = c->write ? remote_import_write(imp, c->addr + p * PS, &p, 8)
				     : remote_import_read(imp, c->addr + p * PS, &v, 8);

		if (r != 8) {
			c->err = r;
			break;
		}
		c->sum += c->write ? p : v;
	}
	c->ns = now_ns() - t0;
}

/* Random reads of @size bytes for about 0.2 s. */
static void imp_access(struct remote_import *imp, struct bcmd *c)
{
	static uint64_t buf[PS / 8];
	uint64_t rnd = 88172645463325252ULL, t0 = now_ns(), n = 0;

	c->sum = 0;
	c->err = 0;
	while (now_ns() - t0 < 200000000ULL) {
		for (int i = 0; i < 256; i++, n++) {
			uint64_t p = xorshift64(&rnd) % c->npages;
			uint64_t off = c->size < PS ? (xorshift64(&rnd) % (PS / c->size)) * c->size : 0;
			ssize_t r = remote_import_read(imp, c->addr + p * PS + off, buf, c->size);

			if (r != (ssize_t)c->size) {
				c->err = r;
				return;
			}
			c->sum += buf[0];
		}
	}
	c->ns = now_ns() - t0;
	c->ops = n;
}

static int importer_main(int sock, int ctl)
{
	struct remote_import *imp;
	struct bcmd c;

	if (remote_import(sock, &imp, NULL, NULL))
		return 1;
	while (recv(ctl, &c, sizeof(c), 0) == sizeof(c)) {
		if (c.op == B_TOUCH)
			imp_touch(imp, &c);
		else if (c.op == B_ACCESS)
			imp_access(imp, &c);
		else if (c.op == B_EXIT)
			break;
		send(ctl, &c, sizeof(c), MSG_NOSIGNAL);
	}
	remote_import_close(imp);
	send(ctl, &c, sizeof(c), MSG_NOSIGNAL);
	return 0;
}

/* ---- the exporter ---- */

static struct {
	struct umm *u;
	struct umm_mm *mm;
	struct remote_export *exp;
	int ctl;
	pid_t pid;
} rig;

static int reps = 5;
static bool quick, json;

#define CHECK(cond, ...) do { if (!(cond)) { fail_msg(__VA_ARGS__); } } while (0)

static double median(double *v, int n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return median_sorted(v, n);
}

/* Word 0 of page p holds p + 1: the sum over the first @n pages. */
static uint64_t want_sum(uint64_t n)
{
	return n * (n + 1) / 2;
}

static struct remote_export_stat estat(void)
{
	struct remote_export_stat st;

	remote_export_get_stat(rig.exp, &st);
	return st;
}

/* The importer drops every mapping: an invalidation of the whole range. */
static void drop_all(void)
{
	umm_mprotect(rig.mm, BASE, MAX_N * PS, UMM_PROT_READ);
	umm_mprotect(rig.mm, BASE, MAX_N * PS, UMM_PROT_READ | UMM_PROT_WRITE);
}

/* Have the importer map the first @n pages (read faults).  Return: ns, or 0. */
static uint64_t touch(uint64_t n, bool write)
{
	struct bcmd c = { .op = B_TOUCH, .addr = BASE, .npages = n, .write = write };

	if (bcmd_xfer(rig.ctl, &c) || c.err) {
		fail_msg("importer touch of %lu pages: %ld", (unsigned long)n, (long)c.err);
		return 0;
	}
	if (!write)
		CHECK(c.sum == want_sum(n), "importer read sum %lu, want %lu",
		      (unsigned long)c.sum, (unsigned long)want_sum(n));
	return c.ns;
}

static struct {
	double ping_us, gup_us, fault_read_us, fault_write_us;
	int nr_inval;
	uint64_t inval_n[4];
	double inval_us[4], inval_none_us[4];
	double imp_ns[2], umm_ns[2];	/* 8 B, 4 KiB */
	bool ok_fault, ok_inval, ok_access;
} fig;

static void bench_fault(void)
{
	uint64_t n = quick ? 256 : 2048;
	double ping[16], gup[16], rd[16], wr[16];
	struct bcmd c;

	cur_ok = true;
	for (int r = 0; r < reps; r++) {
		uint64_t t0 = now_ns();
		unsigned long before;

		for (int i = 0; i < 1000; i++) {
			c.op = B_PING;
			bcmd_xfer(rig.ctl, &c);
		}
		ping[r] = (now_ns() - t0) / 1000.0 / 1e3;

		t0 = now_ns();
		for (uint64_t p = 0; p < n; p++) {
			struct umm_page *page;

			if (umm_get_user_page(rig.mm, BASE + p * PS, 0, &page) == 0)
				umm_put_page(page);
		}
		gup[r] = (now_ns() - t0) / (double)n / 1e3;

		drop_all();
		before = estat().faults;
		rd[r] = touch(n, false) / (double)n / 1e3;
		CHECK(estat().faults - before == n, "%lu faults for %lu pages",
		      estat().faults - before, (unsigned long)n);
		drop_all();
		wr[r] = touch(n, true) / (double)n / 1e3;
		for (uint64_t p = 0; p < 8; p++) {
			uint64_t v = ~0ULL;

			umm_read(rig.mm, BASE + p * PS, &v, 8);
			CHECK(v == p, "page %lu: the importer's store is not there", (unsigned long)p);
		}
		for (uint64_t p = 0; p < n; p++) {	/* restore word 0 = p + 1 */
			uint64_t v = p + 1;

			umm_write(rig.mm, BASE + p * PS, &v, 8);
		}
	}
	fig.ping_us = median(ping, reps);
	fig.gup_us = median(gup, reps);
	fig.fault_read_us = median(rd, reps);
	fig.fault_write_us = median(wr, reps);
	fig.ok_fault = cur_ok;
	nr_failed += !cur_ok;
}

static void bench_inval(void)
{
	static const uint64_t sizes[] = { 1, 16, 256, 4096 };

	cur_ok = true;
	fig.nr_inval = quick ? 3 : 4;
	for (int s = 0; s < fig.nr_inval; s++) {
		uint64_t n = sizes[s];
		double held[16], none[16];

		for (int r = 0; r < reps; r++) {
			struct remote_export_stat a, b;
			uint64_t t0;

			drop_all();
			touch(n, false);
			a = estat();
			CHECK(a.mapped == n, "importer maps %lu pages, not %lu", a.mapped,
			      (unsigned long)n);
			t0 = now_ns();
			umm_mprotect(rig.mm, BASE, n * PS, UMM_PROT_READ);
			held[r] = (now_ns() - t0) / 1e3;
			b = estat();
			CHECK(b.invalidations == a.invalidations + 1 && b.mapped == 0,
			      "one invalidation expected, %lu sent, %lu still mapped",
			      b.invalidations - a.invalidations, b.mapped);
			umm_mprotect(rig.mm, BASE, n * PS, UMM_PROT_READ | UMM_PROT_WRITE);
			t0 = now_ns();
			umm_mprotect(rig.mm, BASE, n * PS, UMM_PROT_READ);
			none[r] = (now_ns() - t0) / 1e3;
			umm_mprotect(rig.mm, BASE, n * PS, UMM_PROT_READ | UMM_PROT_WRITE);
			CHECK(estat().invalidations == b.invalidations,
			      "an invalidation sent with nothing mapped");
		}
		fig.inval_n[s] = n;
		fig.inval_us[s] = median(held, reps);
		fig.inval_none_us[s] = median(none, reps);
	}
	fig.ok_inval = cur_ok;
	nr_failed += !cur_ok;
}

static void bench_access(void)
{
	static const uint64_t sizes[] = { 8, PS };
	uint64_t n = quick ? 256 : 1024;
	static uint64_t buf[PS / 8];

	cur_ok = true;
	drop_all();
	touch(n, false);
	for (int s = 0; s < 2; s++) {
		double imp[16], loc[16];

		for (int r = 0; r < reps; r++) {
			struct bcmd c = { .op = B_ACCESS, .addr = BASE, .npages = n,
					  .size = sizes[s] };
			uint64_t rnd = 88172645463325252ULL, t0, ops = 0, sum = 0;
			unsigned long faults = estat().faults;

			if (bcmd_xfer(rig.ctl, &c) || c.err || !c.ops) {
				fail_msg("importer access: %ld", (long)c.err);
				break;
			}
			imp[r] = (double)c.ns / c.ops;
			CHECK(estat().faults == faults, "the importer faulted while mapped");
			t0 = now_ns();
			while (now_ns() - t0 < 200000000ULL) {
				for (int i = 0; i < 256; i++, ops++) {
					uint64_t p = xorshift64(&rnd) % n;
					uint64_t off = sizes[s] < PS ?
						(xorshift64(&rnd) % (PS / sizes[s])) * sizes[s] : 0;

					if (umm_read(rig.mm, BASE + p * PS + off, buf, sizes[s]) !=
					    (ssize_t)sizes[s])
						cur_ok = false;
					sum += buf[0];
				}
			}
			loc[r] = (double)(now_ns() - t0) / ops;
			CHECK(sum, "umm_read read nothing but zeros");
		}
		fig.imp_ns[s] = median(imp, reps);
		fig.umm_ns[s] = median(loc, reps);
	}
	fig.ok_access = cur_ok;
	nr_failed += !cur_ok;
}

static const char *okstr(bool ok)
{
	return ok ? "" : "  FAILED";
}

static void print_tables(double secs)
{
	printf("machine: %s, %ld cores, %s\n\n", mach.cpu, mach.cores, mach.kernel);
	printf("remote fault round trip (importer touches a page it does not map)%s\n",
	       okstr(fig.ok_fault));
	printf("  %-52s %9.2f us\n", "read fault (FAULT, GUP, reply, mmap)", fig.fault_read_us);
	printf("  %-52s %9.2f us\n", "write fault", fig.fault_write_us);
	printf("  %-52s %9.2f us\n", "host: SEQPACKET ping-pong between the processes",
	       fig.ping_us);
	printf("  %-52s %9.2f us\n", "umm_get_user_page + put in the exporter", fig.gup_us);
	printf("\ninvalidation: umm_mprotect(RO) of N pages%s\n", okstr(fig.ok_inval));
	printf("  %8s %18s %18s %14s\n", "N", "importer maps N", "importer maps 0", "difference");
	for (int s = 0; s < fig.nr_inval; s++)
		printf("  %8lu %15.1f us %15.1f us %11.1f us\n", (unsigned long)fig.inval_n[s],
		       fig.inval_us[s], fig.inval_none_us[s], fig.inval_us[s] - fig.inval_none_us[s]);
	printf("\nrandom reads of mapped pages%s\n", okstr(fig.ok_access));
	printf("  %8s %22s %16s\n", "size", "remote_import_read", "umm_read");
	printf("  %8s %19.1f ns %13.1f ns\n", "8 B", fig.imp_ns[0], fig.umm_ns[0]);
	printf("  %8s %19.1f ns %13.1f ns\n", "4 KiB", fig.imp_ns[1], fig.umm_ns[1]);
	printf("\n");
	print_total(secs, "figures");
}

static void print_json(double secs)
{
	json_machine();
	printf("},\n  \"fault_read_us\": ");
	json_num(fig.fault_read_us);
	printf(", \"fault_write_us\": ");
	json_num(fig.fault_write_us);
	printf(", \"ping_us\": ");
	json_num(fig.ping_us);
	printf(", \"gup_us\": ");
	json_num(fig.gup_us);
	printf(",\n  \"invalidation\": [");
	for (int s = 0; s < fig.nr_inval; s++) {
		printf("%s{\"n\": %lu, \"mapped_us\": ", s ? ", " : "",
		       (unsigned long)fig.inval_n[s]);
		json_num(fig.inval_us[s]);
		printf(", \"unmapped_us\": ");
		json_num(fig.inval_none_us[s]);
		printf("}");
	}
	printf("],\n  \"read_8_ns\": {\"remote\": ");
	json_num(fig.imp_ns[0]);
	printf(", \"umm_read\": ");
	json_num(fig.umm_ns[0]);
	printf("}, \"read_4k_ns\": {\"remote\": ");
	json_num(fig.imp_ns[1]);
	printf(", \"umm_read\": ");
	json_num(fig.umm_ns[1]);
	printf("},\n  \"seconds\": %.1f, \"ok\": %s\n}\n", secs, nr_failed ? "false" : "true");
}

static void usage(FILE *f)
{
	fprintf(f, "usage: bench_remote [--quick] [--json] [--reps N]\n"
		"  --quick   fewer pages and sizes (a smoke test)\n"
		"  --json    the figures as JSON\n"
		"  --reps N  timed repetitions per figure (default 5, at most 16)\n");
}

static int setup(void)
{
	struct umm_config cfg;
	int sv[2], cv[2], fds[2];
	uint64_t out;

	umm_config_init(&cfg);
	cfg.phys_bytes = 64 << 20;
	cfg.flags = UMM_CONFIG_SHAREABLE;
	if (umm_create(&cfg, &rig.u) || umm_mm_create(rig.u, &rig.mm))
		return -1;
	umm_set_log(rig.u, umm_log_cb, NULL);
	if (umm_mmap(rig.mm, BASE, MAX_N * PS, UMM_PROT_READ | UMM_PROT_WRITE,
		     UMM_MAP_PRIVATE | UMM_MAP_ANONYMOUS | UMM_MAP_FIXED, NULL, 0, &out))
		return -1;
	for (uint64_t p = 0; p < MAX_N; p++) {
		uint64_t v = p + 1;

		if (umm_write(rig.mm, BASE + p * PS, &v, 8) != 8)
			return -1;
	}
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) ||
	    socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, cv))
		return -1;
	fds[0] = sv[1];
	fds[1] = cv[1];
	if (remote_spawn_self(ROLE, fds, 2, &rig.pid))
		return -1;
	close(sv[1]);
	close(cv[1]);
	rig.ctl = cv[0];
	return remote_export(rig.u, rig.mm, BASE, MAX_N * PS, sv[0], &rig.exp);
}

static void teardown(void)
{
	struct bcmd c = { .op = B_EXIT };

	bcmd_xfer(rig.ctl, &c);
	waitpid(rig.pid, NULL, 0);
	close(rig.ctl);
	remote_unexport(rig.exp);
	umm_mm_exit(rig.mm);
	umm_destroy(rig.u);
}

int main(int argc, char **argv)
{
	uint64_t t0 = now_ns();

	if (argc == 4 && !strcmp(argv[1], ROLE))
		return importer_main(atoi(argv[2]), atoi(argv[3]));
	reps_opts(argc, argv, &reps, 16, &quick, &json, usage);
	probe_machine();
	if (setup()) {
		fprintf(stderr, BENCH_NAME ": setup failed\n");
		return 1;
	}
	bench_fault();
	bench_inval();
	bench_access();
	teardown();
	return bench_finish(t0, json, print_json, print_tables);
}
