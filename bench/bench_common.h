/* SPDX-License-Identifier: MIT */
/*
 * bench_common.h - helpers shared by the benchmarks under bench/.
 *
 * Header-only: each bench is a single translation unit, so the state and
 * helpers here are static.  Define BENCH_NAME (the program's name, a
 * string literal used as the prefix of its messages) before including.
 */
#ifndef BENCH_COMMON_H
#define BENCH_COMMON_H

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <umm/umm.h>

#ifndef BENCH_NAME
#error "define BENCH_NAME before including bench_common.h"
#endif

static int nr_failed;        /* figures or runs whose checks failed */
static int nr_engine_errors; /* UMM_LOG_ERR messages from the library */

/* Set false by CHECK() while a figure (or run) is being measured. */
static bool cur_ok;

static void fail_msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void fail_msg(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, BENCH_NAME ": CHECK FAILED: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	cur_ok = false;
}

/* ---- small helpers ---- */

static inline uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

static inline int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Median of @n > 0 values already sorted ascending. */
static inline double median_sorted(const double *s, int n)
{
	return n & 1 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

static inline uint64_t xorshift64(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*s = x;
	return x * 0x2545F4914F6CDD1DULL;
}

static inline void umm_log_cb(void *ctx, int level, const char *msg)
{
	fprintf(stderr, "umm[%s]: %s\n", level <= UMM_LOG_ERR ? "err" :
		level <= UMM_LOG_WARN ? "warn" : "info", msg);
	if (level <= UMM_LOG_ERR) {
		nr_engine_errors++;
		cur_ok = false;
	}
}

/* ---- the machine the figures were taken on ---- */

static struct {
	char cpu[160];
	long cores;
	char kernel[256];
} mach;

static inline void probe_machine(void)
{
	struct utsname un;
	FILE *f = fopen("/proc/cpuinfo", "r");
	char line[512];

	snprintf(mach.cpu, sizeof(mach.cpu), "unknown");
	while (f && fgets(line, sizeof(line), f)) {
		char *c;

		if (strncmp(line, "model name", 10) || !(c = strchr(line, ':')))
			continue;
		c++;
		while (*c == ' ' || *c == '\t')
			c++;
		c[strcspn(c, "\n")] = 0;
		snprintf(mach.cpu, sizeof(mach.cpu), "%s", c);
		break;
	}
	if (f)
		fclose(f);
	mach.cores = sysconf(_SC_NPROCESSORS_ONLN);
	if (uname(&un) == 0)
		snprintf(mach.kernel, sizeof(mach.kernel), "%s %s %s", un.sysname, un.release,
			 un.machine);
}

/* ---- output ---- */

/* The last line of the tables; @what names the things marked FAILED. */
static inline void print_total(double secs, const char *what)
{
	printf("total time %.1f s; ", secs);
	if (nr_failed)
		printf("SOME CHECKS FAILED (%s marked FAILED are not valid)\n", what);
	else
		printf("all checks passed\n");
}

static inline void json_str(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			printf("\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			printf("\\u%04x", *s);
		else
			putchar(*s);
	}
	putchar('"');
}

static inline void json_num(double v)
{
	if (v != v)
		printf("null");
	else
		printf("%.4g", v);
}

/* The "machine" member that opens the JSON object. */
static inline void json_machine(void)
{
	printf("{\n  \"machine\": {\"cpu\": ");
	json_str(mach.cpu);
	printf(", \"cores\": %ld, \"kernel\": ", mach.cores);
	json_str(mach.kernel);
}

/* ---- options ---- */

static inline long parse_num(const char *s, const char *what, long min, long max)
{
	char *end;
	long v;

	errno = 0;
	v = s ? strtol(s, &end, 10) : 0;
	if (!s || errno || *end || v < min || v > max) {
		fprintf(stderr, BENCH_NAME ": %s wants a number in [%ld, %ld]\n", what, min, max);
		exit(2);
	}
	return v;
}

/* The value after option argv[*i], or NULL when it is the last. */
static inline const char *opt_arg(int argc, char **argv, int *i)
{
	return *i + 1 < argc ? argv[++*i] : NULL;
}

/*
 * The options every bench takes: --quick, --json, -h/--help (usage on
 * stdout, exit 0); anything else is unknown (usage on stderr, exit 2).
 */
static inline void common_opt(const char *a, bool *quick, bool *json, void (*usage)(FILE *))
{
	if (!strcmp(a, "--quick"))
		*quick = true;
	else if (!strcmp(a, "--json"))
		*json = true;
	else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
		usage(stdout);
		exit(0);
	} else {
		fprintf(stderr, BENCH_NAME ": unknown option %s\n", a);
		usage(stderr);
		exit(2);
	}
}

/*
 * The command line of a bench whose only option of its own is --reps N
 * (1 to @max_reps, into *@reps); the others go to common_opt().  --quick
 * caps *@reps at 3, so that a smoke test stays short.
 */
static inline void reps_opts(int argc, char **argv, int *reps, long max_reps, bool *quick,
			     bool *json, void (*usage)(FILE *))
{
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--reps"))
			*reps = (int)parse_num(opt_arg(argc, argv, &i), "--reps", 1, max_reps);
		else
			common_opt(argv[i], quick, json, usage);
	}
	if (*quick && *reps > 3)
		*reps = 3;
}

/*
 * The end of main(): the figures as JSON or as tables (with the seconds
 * since @t0), then library errors; returns the exit status of the bench.
 */
static inline int bench_finish(uint64_t t0, bool json, void (*print_json)(double),
			       void (*print_tables)(double))
{
	double secs = (now_ns() - t0) / 1e9;

	if (json)
		print_json(secs);
	else
		print_tables(secs);
	if (nr_engine_errors)
		fprintf(stderr, BENCH_NAME ": the library logged %d error(s)\n", nr_engine_errors);
	return nr_failed || nr_engine_errors ? 1 : 0;
}

#endif /* BENCH_COMMON_H */
