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
};

/*
 * One long option, --NAME=VALUE or --NAME VALUE.  The value already in
 * *val when the parser starts is the default that the help text shows.
 */
struct cli_opt {
	const char *name;	/* without the leading "--" */
	enum cli_opt_type type;
	void *val;		/* uint64_t * (UINT, SIZE) or bool * (FLAG) */
	uint64_t min, max;	/* accepted range (UINT, SIZE) */
	uint64_t align;		/* SIZE: must be a multiple of this (0: any) */
	const char *metavar;	/* "N", "SIZE", ... */
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

/* Print @cmd's help (synopsis, description, options with defaults). */
void cli_print_help(FILE *f, const char *cmd, const struct cli_opt *opts,
		    const struct cli_usage *usage);

/*
 * Strict number parsers, shared with anything else that reads numbers.
 * Return: 0, or -EINVAL (not a number / unknown suffix), -ERANGE (overflow),
 * -EDOM (negative).
 */
int cli_parse_u64(const char *s, uint64_t *out);
int cli_parse_size(const char *s, uint64_t *out);

/* Format @bytes as the shortest exact "256M"/"4K"/"1000" into @buf. */
char *cli_fmt_size(char *buf, size_t len, uint64_t bytes);

#endif /* UMM_CLI_H */
