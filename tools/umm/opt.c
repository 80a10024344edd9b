// SPDX-License-Identifier: MIT
/*
 * opt.c - the umm command's option parser and error helpers.
 *
 * Long options only (--name=value or --name value), plus -h.  Numbers are
 * parsed strictly: no sign, no trailing junk, no silent wrap-around; sizes
 * take a binary K/M/G/T suffix.  Every mistake becomes one line on stderr
 * naming the command, the option and the offending text.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static void cli_verror(const char *cmd, int err, const char *fmt, va_list ap)
{
	char msg[512];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	fflush(stdout);
	if (cmd)
		fprintf(stderr, "umm: %s: %s", cmd, msg);
	else
		fprintf(stderr, "umm: %s", msg);
	if (err)
		fprintf(stderr, ": %s", strerror(err < 0 ? -err : err));
	fputc('\n', stderr);
}

void cli_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	cli_verror(cmd, 0, fmt, ap);
	va_end(ap);
}

void cli_errno(const char *cmd, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	cli_verror(cmd, err, fmt, ap);
	va_end(ap);
}

/*
 * Parse the leading digits of @s (decimal, or hex after 0x) into *@out and
 * leave *@end at the first byte after them.
 * Return: 0, -EINVAL without a digit, -EDOM for a sign, -ERANGE on overflow.
 */
static int parse_digits(const char *s, uint64_t *out, const char **end)
{
	unsigned int base = 10;
	uint64_t v = 0;
	bool any = false, over = false;

	if (*s == '-')
		return isdigit((unsigned char)s[1]) ? -EDOM : -EINVAL;
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		s += 2;
	}
	for (;; s++) {
		unsigned int d;

		if (isdigit((unsigned char)*s))
			d = *s - '0';
		else if (base == 16 && isxdigit((unsigned char)*s))
			d = tolower((unsigned char)*s) - 'a' + 10;
		else
			break;
		if (v > (UINT64_MAX - d) / base)
			over = true;
		v = v * base + d;
		any = true;
	}
	*end = s;
	if (!any)
		return -EINVAL;
	*out = v;
	return over ? -ERANGE : 0;
}

int cli_parse_u64(const char *s, uint64_t *out)
{
	const char *end;
	int err = parse_digits(s, out, &end);

	if (err == -EINVAL || (!err && *end))
		return -EINVAL;
	if (err == -ERANGE && *end)	/* "99999999999999999999x" is junk */
		return -EINVAL;
	return err;
}

int cli_parse_size(const char *s, uint64_t *out)
{
	static const char units[] = "KMGT";
	const char *end, *u;
	uint64_t v;
	int err = parse_digits(s, &v, &end);
	unsigned int shift = 0;

	if (err == -EINVAL || err == -EDOM)
		return err;
	if (*end) {
		u = strchr(units, toupper((unsigned char)*end));
		if (!u)
			return -EINVAL;
		shift = 10 * (unsigned int)(u - units + 1);
		end++;
		if (!strcmp(end, "iB") || !strcmp(end, "B"))
			end += strlen(end);
		if (*end)
			return -EINVAL;
	}
	if (err)
		return err;
	if (shift && v > (UINT64_MAX >> shift))
		return -ERANGE;
	*out = v << shift;
	return 0;
}

char *cli_fmt_size(char *buf, size_t len, uint64_t bytes)
{
	static const char units[] = "KMGT";
	int i;

	for (i = 3; i >= 0; i--) {
		uint64_t unit = 1ULL << (10 * (i + 1));

		if (bytes && bytes % unit == 0) {
			snprintf(buf, len, "%llu%c",
				 (unsigned long long)(bytes / unit), units[i]);
			return buf;
		}
	}
	snprintf(buf, len, "%llu", (unsigned long long)bytes);
	return buf;
}

static char *fmt_value(char *buf, size_t len, const struct cli_opt *o, uint64_t v)
{
	if (o->type == CLI_OPT_SIZE)
		return cli_fmt_size(buf, len, v);
	snprintf(buf, len, "%llu", (unsigned long long)v);
	return buf;
}

/*
 * Convert and range-check @arg for option @o and store it.
 * Return: true, or false after printing the one error line.
 */
static bool set_value(const char *cmd, const struct cli_opt *o, const char *arg)
{
	char lim[32];
	uint64_t v;
	int err;

	if (!*arg) {
		cli_error(cmd, "--%s: missing value", o->name);
		return false;
	}
	err = o->type == CLI_OPT_SIZE ? cli_parse_size(arg, &v) : cli_parse_u64(arg, &v);
	switch (err) {
	case 0:
		break;
	case -EDOM:
		cli_error(cmd, "--%s: '%s' is negative", o->name, arg);
		return false;
	case -ERANGE:
		cli_error(cmd, "--%s: '%s' is too large (maximum %s)", o->name, arg,
			  fmt_value(lim, sizeof(lim), o, o->max));
		return false;
	default:
		if (o->type == CLI_OPT_SIZE)
			cli_error(cmd, "--%s: '%s' is not a size (a number with an optional K, M, G or T suffix)",
				  o->name, arg);
		else
			cli_error(cmd, "--%s: '%s' is not a number", o->name, arg);
		return false;
	}
	if (v < o->min) {
		cli_error(cmd, "--%s: '%s' is too small (minimum %s)", o->name, arg,
			  fmt_value(lim, sizeof(lim), o, o->min));
		return false;
	}
	if (v > o->max) {
		cli_error(cmd, "--%s: '%s' is too large (maximum %s)", o->name, arg,
			  fmt_value(lim, sizeof(lim), o, o->max));
		return false;
	}
	if (o->align && v % o->align) {
		cli_error(cmd, "--%s: '%s' is not a multiple of %s", o->name, arg,
			  fmt_value(lim, sizeof(lim), o, o->align));
		return false;
	}
	*(uint64_t *)o->val = v;
	return true;
}

bool cli_list_add(struct cli_list *l, const char *s)
{
	const char **v = realloc(l->v, (l->n + 1) * sizeof(*v));

	if (!v)
		return false;
	v[l->n++] = s;
	l->v = v;
	return true;
}

void cli_list_free(struct cli_list *l)
{
	if (l->given)
		free(l->v);
	l->v = NULL;
	l->n = 0;
	l->given = false;
}

/* Store text option @o's value @arg.  Return: true, or false after the error line. */
static bool set_text(const char *cmd, const struct cli_opt *o, const char *arg)
{
	struct cli_list *l = o->val;

	if (!*arg) {
		cli_error(cmd, "--%s: missing value", o->name);
		return false;
	}
	if (o->type == CLI_OPT_STRING) {
		*(const char **)o->val = arg;
		return true;
	}
	if (!l->given) {	/* the first --NAME replaces the defaults (not ours to free) */
		l->given = true;
		l->v = NULL;
		l->n = 0;
	}
	if (!cli_list_add(l, arg)) {
		cli_error(cmd, "out of host memory");
		return false;
	}
	return true;
}

/* Where the values of the options the last cli_parse() met live, once each. */
#define MAX_GIVEN 128
static const void *given[MAX_GIVEN];
static size_t nr_given;

bool cli_given(const void *val)
{
	size_t i;

	for (i = 0; i < nr_given; i++)
		if (given[i] == val)
			return true;
	return false;
}

/* Whether option name @a is @b (@len bytes): '-' and '_' are the same letter. */
static bool same_name(const char *a, const char *b, size_t len)
{
	size_t i;

	if (strlen(a) != len)
		return false;
	for (i = 0; i < len; i++)
		if (a[i] != b[i] && !(strchr("-_", a[i]) && strchr("-_", b[i])))
			return false;
	return true;
}

/*
 * The option called @name (@len bytes).  A KSM knob is spelt as in
 * /sys/kernel/mm/ksm (--pages_to_scan); --pages-to-scan finds it too, and
 * --image_size finds --image-size.
 */
/*
 * The @i-th word of CHOICE option @o's metavar ("a|b|c") into @buf.
 * Return: @buf, or NULL when there are fewer words.
 */
static const char *choice_word(const struct cli_opt *o, uint64_t i, char *buf, size_t len)
{
	const char *w = o->metavar;
	size_t n;

	for (; i; i--) {
		w = strchr(w, '|');
		if (!w)
			return NULL;
		w++;
	}
	n = strcspn(w, "|");
	snprintf(buf, len, "%.*s", (int)n, w);
	return buf;
}

/* Store the index of word @arg in @o's metavar.  Return: true, or false after the line. */
static bool set_choice(const char *cmd, const struct cli_opt *o, const char *arg)
{
	char w[64];
	uint64_t i;

	if (!*arg) {
		cli_error(cmd, "--%s: missing value", o->name);
		return false;
	}
	for (i = 0; choice_word(o, i, w, sizeof(w)); i++)
		if (!strcmp(w, arg)) {
			*(uint64_t *)o->val = i;
			return true;
		}
	cli_error(cmd, "--%s: '%s' is not one of %s", o->name, arg, o->metavar);
	return false;
}

static const struct cli_opt *find_opt(const struct cli_opt *opts, const char *name,
				      size_t len)
{
	for (; opts->name; opts++)
		if (same_name(opts->name, name, len))
			return opts;
	return NULL;
}

/*
 * Handle the option in argv[*i] (which starts with "--"), taking its value
 * from the same word or the next one.  Return: true, or false after
 * printing the one error line.
 */
static bool parse_one(const char *cmd, const struct cli_opt *opts,
		      int argc, char **argv, int *i)
{
	const char *name = argv[*i] + 2;
	const char *eq = strchr(name, '=');
	size_t len = eq ? (size_t)(eq - name) : strlen(name);
	const struct cli_opt *o = find_opt(opts, name, len);
	const char *arg;

	if (!o) {
		cli_error(cmd, "unknown option '--%.*s' (try 'umm %s --help')",
			  (int)len, name, cmd);
		return false;
	}
	if (!cli_given(o->val) && nr_given < MAX_GIVEN)	/* more than any command has */
		given[nr_given++] = o->val;
	if (o->type == CLI_OPT_FLAG) {
		if (eq) {
			cli_error(cmd, "--%s takes no value", o->name);
			return false;
		}
		*(bool *)o->val = true;
		return true;
	}
	if (eq) {
		arg = eq + 1;
	} else if (*i + 1 < argc && strncmp(argv[*i + 1], "--", 2) &&
		   (o->type != CLI_OPT_BOOL || argv[*i + 1][0] != '-')) {
		arg = argv[++*i];
	} else if (o->type == CLI_OPT_BOOL) {
		*(uint64_t *)o->val = 1;	/* a switch */
		return true;
	} else {
		cli_error(cmd, "--%s: missing value", o->name);
		return false;
	}
	if (o->type == CLI_OPT_STRING || o->type == CLI_OPT_LIST)
		return set_text(cmd, o, arg);
	if (o->type == CLI_OPT_CHOICE)
		return set_choice(cmd, o, arg);
	return set_value(cmd, o, arg);
}

enum cli_parse_result cli_parse(const char *cmd, const struct cli_opt *opts,
				const struct cli_usage *usage, int argc, char **argv)
{
	int i;

	nr_given = 0;
	/* Help wins over any mistake elsewhere on the line, as with most tools. */
	for (i = 1; i < argc && strcmp(argv[i], "--"); i++) {
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			cli_print_help(stdout, cmd, opts, usage);
			return CLI_PARSE_HELP;
		}
	}
	for (i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (!strcmp(a, "--")) {
			if (i + 1 < argc) {
				cli_error(cmd, "unexpected argument '%s'", argv[i + 1]);
				return CLI_PARSE_ERROR;
			}
			break;
		}
		if (!strncmp(a, "--", 2)) {
			if (!parse_one(cmd, opts, argc, argv, &i))
				return CLI_PARSE_ERROR;
		} else if (a[0] == '-' && a[1]) {
			cli_error(cmd, "unknown option '%s' (try 'umm %s --help')", a, cmd);
			return CLI_PARSE_ERROR;
		} else {
			cli_error(cmd, "unexpected argument '%s'", a);
			return CLI_PARSE_ERROR;
		}
	}
	return CLI_PARSE_OK;
}

/* An option's left column; a long one gets a line of its own. */
static void print_left(FILE *f, const char *left)
{
	if (strlen(left) > 20)
		fprintf(f, "  %s\n%23s", left, "");
	else
		fprintf(f, "  %-20s ", left);
}

void cli_print_help(FILE *f, const char *cmd, const struct cli_opt *opts,
		    const struct cli_usage *usage)
{
	const struct cli_opt *o;
	char left[64], def[32];

	fprintf(f, "usage: umm %s %s\n\n%s\n\noptions:\n", cmd, usage->synopsis,
		usage->description);
	for (o = opts; o->name; o++) {
		if (o->type == CLI_OPT_FLAG) {
			snprintf(left, sizeof(left), "--%s", o->name);
			print_left(f, left);
			fprintf(f, "%s\n", o->help);
			continue;
		}
		snprintf(left, sizeof(left), o->type == CLI_OPT_BOOL ? "--%s [%s]" : "--%s %s",
			 o->name, o->metavar);
		if (o->type == CLI_OPT_STRING) {
			const char *v = *(const char **)o->val;

			if (v)
				print_left(f, left), fprintf(f, "%s (default %s)\n", o->help, v);
			else
				print_left(f, left), fprintf(f, "%s\n", o->help);
		} else if (o->type == CLI_OPT_LIST) {
			const struct cli_list *l = o->val;
			size_t i;

			print_left(f, left);
			fprintf(f, "%s", o->help);
			for (i = 0; i < l->n; i++)
				fprintf(f, "%s%s", i ? " " : " (default ", l->v[i]);
			fprintf(f, "%s\n", l->n ? ")" : "");
		} else if (o->type == CLI_OPT_CHOICE) {
			print_left(f, left);
			fprintf(f, "%s (default %s)\n", o->help,
				choice_word(o, *(uint64_t *)o->val, def, sizeof(def)));
		} else {
			print_left(f, left);
			fprintf(f, "%s (default %s)\n", o->help,
				fmt_value(def, sizeof(def), o, *(uint64_t *)o->val));
		}
	}
	fprintf(f, "  %-20s %s\n", "-h, --help", "show this help and exit");
	if (usage->footer)
		fprintf(f, "\n%s\n", usage->footer);
}
