/* SPDX-License-Identifier: MIT */
/*
 * cli.h - what the umm command's files share: the subcommand table entry,
 * the exit statuses, the error helpers and the option parser.
 *
 * Every subcommand is an `int fn(int argc, char **argv)` with argv[0] set to
 * its own name; it returns one of the CLI_EXIT_* statuses and, when it
 * fails, has already printed exactly one line saying why on stderr.
 */
#ifndef UMM_CLI_H
#define UMM_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define UMM_CLI_VERSION "0.1.0"

/* Exit statuses, as the usage text documents them. */
#define CLI_EXIT_OK	0	/* everything ran and every check passed */
#define CLI_EXIT_FAIL	1	/* a check failed or the library returned an error */
#define CLI_EXIT_USAGE	2	/* bad command line: nothing was run */

struct cli_cmd {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *summary;	/* one line for `umm --help` */
};

/* The subcommands (one file each). */
int cmd_run(int argc, char **argv);
int cmd_estimate(int argc, char **argv);
int cmd_kernel_compare(int argc, char **argv);

/*
 * Print "umm: CMD: MESSAGE" (or "umm: MESSAGE" when @cmd is NULL) as one line
 * on stderr.  cli_errno() appends ": strerror(-err)".
 */
void cli_error(const char *cmd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void cli_errno(const char *cmd, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* ---- options ---- */

enum cli_opt_type {
	CLI_OPT_UINT,	/* decimal (or 0x hex) integer into a uint64_t */
	CLI_OPT_SIZE,	/* bytes, with an optional K/M/G/T suffix, into a uint64_t */
	CLI_OPT_FLAG,	/* no value; sets a bool */
	CLI_OPT_STRING,	/* any non-empty text into a const char * (the last one wins) */
	CLI_OPT_LIST,	/* non-empty text, repeatable: appended to a struct cli_list */
	CLI_OPT_CHOICE,	/* one of the words of metavar "a|b|c": its index into a uint64_t */
	CLI_OPT_BOOL,	/* 0 or 1 into a uint64_t; alone (no value follows), 1 */
};

/* The values of a CLI_OPT_LIST option, in command-line order. */
struct cli_list {
	const char **v;
	size_t n;
	bool given;	/* the option appeared: the defaults already in v were dropped */
};

/*
 * One long option, --NAME=VALUE or --NAME VALUE.  The value already in
 * *val when the parser starts is the default that the help text shows.
 */
struct cli_opt {
	const char *name;	/* without the leading "--" */
	enum cli_opt_type type;
	void *val;		/* uint64_t * (UINT, SIZE, CHOICE, BOOL), bool * (FLAG),
				 * const char ** (STRING) or struct cli_list * (LIST) */
	uint64_t min, max;	/* accepted range (UINT, SIZE) */
	uint64_t align;		/* SIZE: must be a multiple of this (0: any) */
	const char *metavar;	/* "N", "SIZE", ...; CHOICE: the words, "a|b|c" */
	const char *help;	/* one line */
};

/* What a command's help says around its option list. */
struct cli_usage {
	const char *synopsis;	/* after "usage: umm CMD " */
	const char *description;	/* a paragraph; may hold newlines */
	const char *footer;	/* after the options; may be NULL */
};

enum cli_parse_result {
	CLI_PARSE_OK,		/* all options parsed, defaults overwritten */
	CLI_PARSE_HELP,		/* -h/--help: the help went to stdout */
	CLI_PARSE_ERROR,	/* one line went to stderr; exit CLI_EXIT_USAGE */
};

/*
 * Parse argv[1..argc-1] of command @cmd against @opts (ended by an entry
 * whose name is NULL).  Positional arguments are refused: no command takes
 * any yet.  On an error nothing in @opts is guaranteed untouched.
 */
enum cli_parse_result cli_parse(const char *cmd, const struct cli_opt *opts,
				const struct cli_usage *usage, int argc, char **argv);

/*
 * Whether the last cli_parse() met the option whose value lives at @val
 * (a default left alone and a value given equal to it differ here).
 */
bool cli_given(const void *val);

/* Print @cmd's help (synopsis, description, options with defaults). */
void cli_print_help(FILE *f, const char *cmd, const struct cli_opt *opts,
		    const struct cli_usage *usage);

/* Append @s to @l.  Return: false when the host is out of memory. */
bool cli_list_add(struct cli_list *l, const char *s);
/* Free what the parser added to @l (the defaults are not its own). */
void cli_list_free(struct cli_list *l);

/*
 * Strict number parsers, shared with anything else that reads numbers.
 * Return: 0, or -EINVAL (not a number / unknown suffix), -ERANGE (overflow),
 * -EDOM (negative).
 */
int cli_parse_u64(const char *s, uint64_t *out);
int cli_parse_size(const char *s, uint64_t *out);

/* Format @bytes as the shortest exact "256M"/"4K"/"1000" into @buf. */
char *cli_fmt_size(char *buf, size_t len, uint64_t bytes);

/* ---- shared helpers (util.c) ---- */

#define CLI_PAGE	4096ULL

double cli_now(void);			/* CLOCK_MONOTONIC, seconds */
double cli_cpu_now(void);		/* this process's CPU time, seconds */
uint64_t cli_mix64(uint64_t x);		/* a 64-bit mixer (splitmix64's finaliser) */
uint64_t cli_hash_page(const void *page);	/* 64-bit hash of one page's bytes */
/* Host memory for the command's own bookkeeping; running out ends it (exit 1). */
void *cli_xmalloc(const char *cmd, size_t size);
void *cli_xcalloc(const char *cmd, size_t n, size_t size);
/* @s as a JSON string, quotes included. */
void cli_json_str(FILE *f, const char *s);
/*
 * A JSON report is built in memory and written to stdout in one go, so
 * that a failure half-way leaves nothing half-written: cli_json_open()
 * gives the stream to print into (NULL after the error line), and
 * cli_json_emit() closes it and writes it all.  Return: 0 or -ENOMEM.
 */
struct cli_json {
	char *text;
	size_t len;
	FILE *f;
};
FILE *cli_json_open(const char *cmd, struct cli_json *j);
int cli_json_emit(const char *cmd, struct cli_json *j);

/*
 * Temporary files that SIGINT, SIGTERM or SIGHUP must not leave behind:
 * cli_tmp_create() makes one from mkostemp() template @tmpl (rewritten in
 * place) and records it; the first such signal unlinks every recorded file
 * and ends the process as the signal's default action would.  Return: the
 * descriptor, or -1 with errno set.  cli_tmp_forget() drops the record
 * (the file was renamed into place); cli_tmp_remove() unlinks the file too.
 */
#define CLI_TMP_MAX 2
int cli_tmp_create(char *tmpl, int flags);
void cli_tmp_forget(const char *path);
void cli_tmp_remove(const char *path);

/*
 * The KSM knobs, one flag each, named as in /sys/kernel/mm/ksm
 * (--pages_to_scan; --pages-to-scan is the same flag), with the ranges
 * Linux's stores accept, plus umm's --ksm-threads.  Fill @k with Linux's
 * defaults, then cli_ksm_opts() writes CLI_KSM_NR_OPTS option entries
 * pointing into @k at @opts.
 */
struct cli_ksm_knobs {
	uint64_t pages_to_scan, sleep_millisecs, max_page_sharing, merge_across_nodes,
		 use_zero_pages, smart_scan, stable_node_chains_prune_millisecs, nr_threads;
	uint64_t advisor_mode;	/* index into cli_ksm_advisor_modes */
	uint64_t advisor_max_cpu, advisor_min_pages_to_scan, advisor_max_pages_to_scan,
		 advisor_target_scan_time;
};
#define CLI_KSM_NR_OPTS 13
void cli_ksm_defaults(struct cli_ksm_knobs *k);
void cli_ksm_opts(struct cli_ksm_knobs *k, struct cli_opt *opts);
/*
 * What Linux refuses among the knobs together: pages_to_scan written while
 * the scan-time advisor owns it (-EINVAL, whatever the value), so any
 * --pages_to_scan with --advisor_mode scan-time.  Return: true, or false
 * after the line.
 */
bool cli_ksm_check(const char *cmd, const struct cli_ksm_knobs *k);
/* advisor_mode as /sys/kernel/mm/ksm/advisor_mode spells it: "none", "scan-time" */
const char *cli_ksm_advisor_mode(const struct cli_ksm_knobs *k);
struct umm;
/*
 * Apply @k to @u's KSM; with the advisor on, pages_to_scan is the
 * advisor's.  Return: 0 or umm_ksm_set_params()'s error.
 */
int cli_ksm_apply(struct umm *u, const struct cli_ksm_knobs *k);
/* The knobs as the members of a JSON object (no braces); as text, one line each. */
void cli_ksm_json(FILE *f, const struct cli_ksm_knobs *k);
void cli_ksm_text(FILE *f, const char *indent, const struct cli_ksm_knobs *k);

/*
 * A boot image assembled from real files: each file copied from a page
 * boundary and padded with zeros to the next, so that the same file gives
 * the same pages wherever it lands.  Directories contribute their regular
 * files (not symbolic links, not subdirectories), in name order.
 */
struct cli_image {
	uint8_t *buf;		/* pages * CLI_PAGE bytes */
	uint64_t pages, files, zero_pages;
};
/*
 * Read files from @paths until @max_bytes (page-aligned) are used.
 * Return: CLI_EXIT_OK; CLI_EXIT_USAGE when a path does not exist or
 * nothing readable was found, CLI_EXIT_FAIL out of memory (after the line).
 */
/*
 * The default image: this machine's shared libraries (Debian's multiarch
 * directory for the architecture umm was built for) and programs.
 */
extern const char *cli_default_image[2];
#define CLI_DEFAULT_IMAGE { cli_default_image, 2, false }

int cli_image_load(const char *cmd, const struct cli_list *paths, uint64_t max_bytes,
		   struct cli_image *img);
void cli_image_free(struct cli_image *img);

#endif /* UMM_CLI_H */
