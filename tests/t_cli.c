// SPDX-License-Identifier: MIT
/*
 * t_cli.c - the umm command, run for real: help, version, the run scenario
 * on small sizes, and bad input (one line on stderr, exit 2) and runtime
 * failures (exit 1).
 *
 * The binary is found next to this test's directory: build/tests/t_cli runs
 * build/umm (the same for build-asan/ and build-tsan/).  UMM_CLI overrides.
 */
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>

#include "tap.h"

#define RUN_TIMEOUT_MS	(240 * 1000)

static char umm_path[PATH_MAX];

/* What one run of the command did. */
struct outcome {
	int status;		/* exit status, or 128 + signal */
	char *out, *err;	/* NUL-terminated captures */
	size_t out_len, err_len;
};

static void outcome_free(struct outcome *o)
{
	free(o->out);
	free(o->err);
	memset(o, 0, sizeof(*o));
}

/* Find the binary: $UMM_CLI, else ../umm relative to this test program. */
static bool find_umm(void)
{
	const char *env = getenv("UMM_CLI");
	char self[PATH_MAX];
	ssize_t n;

	if (env && *env) {
		snprintf(umm_path, sizeof(umm_path), "%s", env);
	} else {
		n = readlink("/proc/self/exe", self, sizeof(self) - 1);
		if (n <= 0)
			return false;
		self[n] = '\0';
		snprintf(umm_path, sizeof(umm_path), "%s/umm", dirname(dirname(self)));
	}
	return access(umm_path, X_OK) == 0;
}

/* Append what is readable on @fd to *@buf; clear *@fd at end of file. */
static void drain(int *fd, char **buf, size_t *len)
{
	char chunk[4096];
	ssize_t n = read(*fd, chunk, sizeof(chunk));

	if (n <= 0) {
		close(*fd);
		*fd = -1;
		return;
	}
	*buf = realloc(*buf, *len + n + 1);
	memcpy(*buf + *len, chunk, n);
	*len += n;
	(*buf)[*len] = '\0';
}

/*
 * Run umm with the NULL-terminated @args (argv[1] onwards), capture stdout
 * and stderr, wait for it (killing it after RUN_TIMEOUT_MS).
 * Return: false if it could not be started.
 */
static bool run_umm(struct outcome *o, const char *const *args)
{
	const char *argv[32] = { umm_path };
	int po[2], pe[2], st, waited = 0, i;
	pid_t pid;

	memset(o, 0, sizeof(*o));
	o->out = calloc(1, 1);
	o->err = calloc(1, 1);
	for (i = 0; args[i] && i < 30; i++)
		argv[i + 1] = args[i];
	if (pipe2(po, O_CLOEXEC) || pipe2(pe, O_CLOEXEC))
		return false;
	fflush(stdout);
	pid = fork();
	if (pid < 0)
		return false;
	if (pid == 0) {
		dup2(po[1], 1);
		dup2(pe[1], 2);
		execv(umm_path, (char **)argv);
		_exit(127);
	}
	close(po[1]);
	close(pe[1]);
	while (po[0] >= 0 || pe[0] >= 0) {
		struct pollfd p[2] = { { po[0], POLLIN, 0 }, { pe[0], POLLIN, 0 } };

		if (poll(p, 2, 1000) == 0 && (waited += 1000) >= RUN_TIMEOUT_MS) {
			kill(pid, SIGKILL);
			waited = INT_MIN;
		}
		if (p[0].revents)
			drain(&po[0], &o->out, &o->out_len);
		if (p[1].revents)
			drain(&pe[0], &o->err, &o->err_len);
	}
	waitpid(pid, &st, 0);
	o->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	return true;
}

static int count_lines(const char *s)
{
	int n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}

/* Print @text as TAP diagnostics, each line behind "#   ". */
static void diag_text(const char *text)
{
	const char *eol;

	for (; *text; text = eol ? eol + 1 : text + strlen(text)) {
		eol = strchr(text, '\n');
		printf("#   %.*s\n", eol ? (int)(eol - text) : (int)strlen(text), text);
	}
}

/* Print what a run produced, for the log of a failing test. */
static void show(const char *const *args, const struct outcome *o)
{
	int i;

	printf("# umm");
	for (i = 0; args[i]; i++)
		printf(" '%s'", args[i]);
	printf(" -> exit %d\n# stdout:\n", o->status);
	diag_text(o->out);
	printf("# stderr:\n");
	diag_text(o->err);
}

/* The line of @text that starts with @prefix (after spaces), or NULL. */
static const char *find_line(const char *text, const char *prefix)
{
	const char *l = text;

	while (l && *l) {
		const char *s = l;

		while (*s == ' ')
			s++;
		if (!strncmp(s, prefix, strlen(prefix)))
			return s;
		l = strchr(l, '\n');
		if (l)
			l++;
	}
	return NULL;
}

/* Whether the line of @text starting with @prefix holds @word. */
static bool line_says(const char *text, const char *prefix, const char *word)
{
	const char *l = find_line(text, prefix), *w, *eol;

	if (!l)
		return false;
	w = strstr(l, word);
	eol = strchr(l, '\n');
	return w && (!eol || w < eol);
}

/* Run @args and expect @status, or report the run and fail. */
#define RUN_EXPECT(o, status_, ...) do { \
	static const char *const _args[] = { __VA_ARGS__, NULL }; \
	ASSERT_TRUE(run_umm(o, _args)); \
	if ((o)->status != (status_)) \
		show(_args, o); \
	ASSERT_EQ((o)->status, status_); \
} while (0)

static bool test_help(void)
{
	static const char *const forms[][2] = { { "--help" }, { "-h" }, { "help" } };
	struct outcome o;
	unsigned int i;

	for (i = 0; i < 3; i++) {
		ASSERT_TRUE(run_umm(&o, forms[i]));
		ASSERT_EQ(o.status, 0);
		ASSERT_TRUE(strstr(o.out, "usage: umm"));
		ASSERT_TRUE(find_line(o.out, "run "));
		ASSERT_TRUE(find_line(o.out, "help "));
		ASSERT_EQ(o.err_len, 0);
		outcome_free(&o);
	}
	return true;
}

static bool test_run_help(void)
{
	static const char *const flags[] = {
		"--phys SIZE", "--nodes N", "--guests N", "--image-pages N",
		"--data-pages N", "--cow-pct N", "--threads N", "--ops N", "--seed N",
		"--verbose", "--help", "default 256M", "default 4)", "default 4096)",
	};
	struct outcome o, o2;
	unsigned int i;

	RUN_EXPECT(&o, 0, "run", "--help");
	ASSERT_TRUE(strstr(o.out, "usage: umm run"));
	for (i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
		if (!strstr(o.out, flags[i]))
			TAP_DIAG("'%s' missing from umm run --help", flags[i]);
		ASSERT_TRUE(strstr(o.out, flags[i]));
	}
	ASSERT_EQ(o.err_len, 0);
	/* every option line shows its default, except the flags */
	RUN_EXPECT(&o2, 0, "help", "run");
	ASSERT_TRUE(!strcmp(o.out, o2.out));
	outcome_free(&o2);
	/* help wins over a mistake elsewhere on the line */
	RUN_EXPECT(&o2, 0, "run", "--guests", "abc", "-h");
	ASSERT_TRUE(!strcmp(o.out, o2.out));
	outcome_free(&o2);
	outcome_free(&o);
	return true;
}

static bool test_version(void)
{
	struct outcome o;

	RUN_EXPECT(&o, 0, "--version");
	ASSERT_TRUE(!strncmp(o.out, "umm ", 4));
	ASSERT_EQ(count_lines(o.out), 1);
	ASSERT_EQ(o.err_len, 0);
	outcome_free(&o);
	return true;
}

/* A successful run's output: every phase, the report, every verdict OK. */
static bool check_report(const struct outcome *o)
{
	static const char *const phases[] = { "boot ", "fork ", "cow ", "threads ",
					      "check ", "exit ", "report" };
	unsigned int i;

	for (i = 0; i < sizeof(phases) / sizeof(phases[0]); i++) {
		if (!find_line(o->out, phases[i]))
			TAP_DIAG("no '%s' line", phases[i]);
		ASSERT_TRUE(find_line(o->out, phases[i]));
	}
	ASSERT_TRUE(find_line(o->out, "faults "));
	ASSERT_TRUE(find_line(o->out, "copy-on-write "));
	ASSERT_TRUE(find_line(o->out, "host memory returned "));
	ASSERT_TRUE(find_line(o->out, "tlb flushes "));
	ASSERT_TRUE(line_says(o->out, "data check ", " OK"));
	ASSERT_TRUE(line_says(o->out, "validate ", " OK"));
	ASSERT_TRUE(line_says(o->out, "validate after exit ", " OK"));
	ASSERT_TRUE(strstr(o->out, "0 leaked"));
	return true;
}

static bool test_run_small(void)
{
	struct outcome o;

	if (tap_short())
		RUN_EXPECT(&o, 0, "run", "--guests", "2", "--image-pages", "256",
			   "--data-pages", "64", "--ops", "300", "--phys", "16M");
	else
		RUN_EXPECT(&o, 0, "run", "--guests", "3", "--image-pages=1024",
			   "--data-pages=256", "--ops=3000", "--phys=32M", "--threads=3");
	if (!check_report(&o))
		show((const char *const[]){ "run", "...", NULL }, &o);
	ASSERT_TRUE(check_report(&o));
	ASSERT_EQ(o.err_len, 0);
	outcome_free(&o);
	return true;
}

/* What `make run` runs: the default scenario, with no arguments. */
static bool test_run_default(void)
{
	struct outcome o;

	if (tap_short())	/* sized for an unsanitized build */
		return true;
	RUN_EXPECT(&o, 0, "run");
	ASSERT_TRUE(check_report(&o));
	ASSERT_TRUE(strstr(o.out, "4 guests x (4096 image + 1024 data) pages"));
	ASSERT_EQ(o.err_len, 0);
	outcome_free(&o);
	return true;
}

static bool test_run_phys64(void)
{
	struct outcome o;

	if (tap_short())
		RUN_EXPECT(&o, 0, "run", "--guests", "2", "--phys", "64M", "--image-pages",
			   "512", "--data-pages", "128", "--ops", "300", "--nodes", "2");
	else
		RUN_EXPECT(&o, 0, "run", "--guests", "2", "--phys", "64M", "--ops", "2000",
			   "--nodes", "2");
	ASSERT_TRUE(check_report(&o));
	ASSERT_TRUE(strstr(o.out, "16384 (64 MiB)"));
	outcome_free(&o);
	return true;
}

/* The same seed gives the same image, data and copy-on-write choices. */
static bool test_run_seed(void)
{
	struct outcome a, b;
	const char *la, *lb;

	RUN_EXPECT(&a, 0, "run", "--guests", "1", "--image-pages", "128", "--data-pages",
		   "32", "--ops", "0", "--seed", "0x2a", "--phys", "4M", "--cow-pct", "50");
	RUN_EXPECT(&b, 0, "run", "--guests=1", "--image-pages=128", "--data-pages=32",
		   "--ops=0", "--seed=42", "--phys=4096K", "--cow-pct=50");
	la = find_line(a.out, "cow ");
	lb = find_line(b.out, "cow ");
	ASSERT_TRUE(la && lb);
	ASSERT_TRUE(!strncmp(la, lb, 60));
	ASSERT_TRUE(strstr(a.out, "seed 42"));
	outcome_free(&a);
	outcome_free(&b);
	return true;
}

struct bad_case {
	const char *args[6];
	const char *want;	/* substring of the one stderr line */
};

static const struct bad_case bad_cases[] = {
	{ { NULL }, "umm: no command given" },
	{ { "frobnicate" }, "umm: unknown command 'frobnicate'" },
	{ { "--frob" }, "umm: unknown option '--frob'" },
	{ { "help", "nope" }, "umm: help: unknown command 'nope'" },
	{ { "run", "--frob" }, "umm: run: unknown option '--frob'" },
	{ { "run", "-x" }, "umm: run: unknown option '-x'" },
	{ { "run", "extra" }, "umm: run: unexpected argument 'extra'" },
	{ { "run", "--guests" }, "umm: run: --guests: missing value" },
	{ { "run", "--guests", "--phys", "64M" }, "umm: run: --guests: missing value" },
	{ { "run", "--guests=" }, "umm: run: --guests: missing value" },
	{ { "run", "--guests", "abc" }, "umm: run: --guests: 'abc' is not a number" },
	{ { "run", "--guests=abc" }, "umm: run: --guests: 'abc' is not a number" },
	{ { "run", "--guests", "4x" }, "umm: run: --guests: '4x' is not a number" },
	{ { "run", "--guests", "1.5" }, "umm: run: --guests: '1.5' is not a number" },
	{ { "run", "--guests", " 4" }, "umm: run: --guests: ' 4' is not a number" },
	{ { "run", "--guests", "-1" }, "umm: run: --guests: '-1' is negative" },
	{ { "run", "--guests", "0" }, "umm: run: --guests: '0' is too small" },
	{ { "run", "--guests", "99999999999999999999999" },
	  "umm: run: --guests: '99999999999999999999999' is too large" },
	{ { "run", "--ops", "18446744073709551616" }, "umm: run: --ops: '18446744073709551616' is too large" },
	{ { "run", "--phys", "12Q" }, "umm: run: --phys: '12Q' is not a size" },
	{ { "run", "--phys", "M" }, "umm: run: --phys: 'M' is not a size" },
	{ { "run", "--phys", "-64M" }, "umm: run: --phys: '-64M' is negative" },
	{ { "run", "--phys", "65537" }, "umm: run: --phys: '65537' is not a multiple of 4K" },
	{ { "run", "--phys", "0" }, "umm: run: --phys: '0' is too small" },
	{ { "run", "--phys", "2T" }, "umm: run: --phys: '2T' is too large (maximum 1T)" },
	{ { "run", "--phys", "17179869184T" }, "umm: run: --phys: '17179869184T' is too large" },
	{ { "run", "--cow-pct", "101" }, "umm: run: --cow-pct: '101' is too large (maximum 100)" },
	{ { "run", "--nodes", "65" }, "umm: run: --nodes: '65' is too large (maximum 64)" },
	{ { "run", "--threads", "0" }, "umm: run: --threads: '0' is too small (minimum 1)" },
	{ { "run", "--verbose=1" }, "umm: run: --verbose takes no value" },
	{ { "run", "--guests", "1024", "--threads", "64" }, "umm: run: --guests 1024 with --threads 64" },
	{ { "run", "--", "x" }, "umm: run: unexpected argument 'x'" },
};

static bool check_bad(const struct bad_case *c)
{
	struct outcome o;
	bool ok;

	ASSERT_TRUE(run_umm(&o, c->args));
	ok = o.status == 2 && o.out_len == 0 && count_lines(o.err) == 1 &&
	     o.err[o.err_len - 1] == '\n' && strstr(o.err, c->want) == o.err;
	if (!ok) {
		show(c->args, &o);
		printf("# expected: exit 2, nothing on stdout, one stderr line starting '%s'\n",
		       c->want);
	}
	outcome_free(&o);
	return ok;
}

static bool test_bad_usage(void)
{
	unsigned int i, bad = 0;

	for (i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++)
		bad += !check_bad(&bad_cases[i]);
	ASSERT_EQ(bad, 0);
	return true;
}

/* The library's -ENOMEM (no frame left) is a runtime failure: exit 1. */
static bool test_runtime_enomem(void)
{
	struct outcome o;
	const char *last;

	RUN_EXPECT(&o, 1, "run", "--phys", "1M", "--guests", "4", "--image-pages", "512");
	ASSERT_EQ(o.out_len, 0);
	ASSERT_TRUE(o.err_len > 0 && o.err[o.err_len - 1] == '\n');
	o.err[o.err_len - 1] = '\0';
	last = strrchr(o.err, '\n') ? strrchr(o.err, '\n') + 1 : o.err;
	if (!strstr(last, strerror(ENOMEM)) || strncmp(last, "umm: run: boot: ", 16))
		show((const char *const[]){ "run", "--phys", "1M", NULL }, &o);
	ASSERT_TRUE(!strncmp(last, "umm: run: boot: ", 16));
	ASSERT_TRUE(strstr(last, strerror(ENOMEM)));
	outcome_free(&o);
	return true;
}

/* A machine the library refuses (16 frames per node at least): exit 1. */
static bool test_runtime_einval(void)
{
	struct outcome o;

	RUN_EXPECT(&o, 1, "run", "--phys", "64K", "--nodes", "2");
	ASSERT_EQ(o.out_len, 0);
	ASSERT_EQ(count_lines(o.err), 1);
	ASSERT_TRUE(strstr(o.err, "umm: run: cannot create a machine"));
	ASSERT_TRUE(strstr(o.err, strerror(EINVAL)));
	outcome_free(&o);
	return true;
}

int main(int argc, char **argv)
{
	if (!find_umm()) {
		printf("not ok 1 - no umm binary at %s (build it first: make)\n1..1\n",
		       umm_path);
		return 1;
	}
	printf("# testing %s\n", umm_path);
	RUN_TEST(test_help);
	RUN_TEST(test_run_help);
	RUN_TEST(test_version);
	RUN_TEST(test_bad_usage);
	RUN_TEST(test_runtime_einval);
	RUN_TEST(test_runtime_enomem);
	RUN_TEST(test_run_seed);
	RUN_TEST(test_run_small);
	RUN_TEST(test_run_phys64);
	RUN_TEST(test_run_default);
	return tap_done();
}
