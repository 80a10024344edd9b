// SPDX-License-Identifier: MIT
/*
 * t_cli.c - the umm command, run for real: help, version, every subcommand
 * on small sizes (run's KSM figures checked exactly on an image the test
 * makes; --json parsed), estimate against a real process with known content
 * and against what the host kernel's KSM merged in it, kernel-compare, bad
 * input (one line on stderr, exit 2) and runtime failures (exit 1), and
 * make install into a temporary PREFIX with a program built against the
 * installed pkg-config file.
 *
 * Where the test drives the host kernel's KSM (/sys/kernel/mm/ksm, root
 * only), it saves the knobs it writes and restores them, run = 0 last.
 *
 * The binary is found next to this test's directory: build/tests/t_cli runs
 * build/umm (the same for build-asan/ and build-tsan/).  UMM_CLI overrides.
 */
#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <libgen.h>
#include <limits.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "tap.h"

#define RUN_TIMEOUT_MS	(240 * 1000)
#define KSM_DIR		"/sys/kernel/mm/ksm/"

static char umm_path[PATH_MAX];
static uid_t run_as;	/* nonzero: the command runs as this user (and group) */

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
		if (run_as && (setgroups(0, NULL) || setgid(run_as) || setuid(run_as)))
			_exit(126);
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
	const char *const _args[] = { __VA_ARGS__, NULL }; \
	ASSERT_TRUE(run_umm(o, _args)); \
	if ((o)->status != (status_)) \
		show(_args, o); \
	ASSERT_EQ((o)->status, status_); \
} while (0)

/* ---- JSON: validity through python3 when there is one, fields by hand ---- */

/*
 * Whether @text is one valid JSON document.  Return: 1 yes, 0 no, -1 no
 * python3 to ask (the caller notes the skip).
 */
static int json_valid(const char *text)
{
	FILE *p;
	int st;

	if (system("command -v python3 >/dev/null 2>&1"))
		return -1;
	p = popen("python3 -c 'import json,sys; d=json.load(sys.stdin); "
		  "sys.exit(0 if isinstance(d, dict) else 1)' 2>/dev/null", "w");
	if (!p)
		return -1;
	fputs(text, p);
	st = pclose(p);
	return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

#define ASSERT_JSON(text) do { \
	int _v = json_valid(text); \
	if (_v < 0) \
		TAP_DIAG("no python3: JSON validity not checked"); \
	else if (!_v) \
		diag_text(text); \
	ASSERT_TRUE(_v != 0); \
} while (0)

/*
 * The number after "@key": in @text, searching from the first @anchor
 * (NULL: the start).  Return: false if not found.
 */
static bool json_num(const char *text, const char *anchor, const char *key, long long *v)
{
	char pat[96];
	const char *s = anchor ? strstr(text, anchor) : text;
	char *end;

	if (!s)
		return false;
	snprintf(pat, sizeof(pat), "\"%s\": ", key);
	s = strstr(s, pat);
	if (!s)
		return false;
	*v = strtoll(s + strlen(pat), &end, 10);
	return end != s + strlen(pat);
}

#define ASSERT_JNUM(text, anchor, key, v) do { \
	if (!json_num(text, anchor, key, v)) \
		TAP_DIAG("no \"%s\" after %s in the JSON", key, anchor ? anchor : "the start"); \
	ASSERT_TRUE(json_num(text, anchor, key, v)); \
} while (0)

/* ---- scratch directories ---- */

static bool make_tmpdir(char *dir, size_t len)
{
	snprintf(dir, len, "/tmp/umm-t_cli-XXXXXX");
	return mkdtemp(dir) != NULL;
}

static void remove_tree(const char *dir)
{
	char cmd[PATH_MAX + 16];

	if (strncmp(dir, "/tmp/umm-t_cli-", 15))
		return;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd))
		TAP_DIAG("could not remove %s", dir);
}

static bool write_file(const char *path, const void *buf, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	bool ok;

	if (fd < 0)
		return false;
	ok = write(fd, buf, len) == (ssize_t)len;
	return !close(fd) && ok;
}

static void fill_random(uint64_t *rng, void *buf, size_t len)
{
	uint8_t *b = buf;

	while (len--)
		*b++ = (uint8_t)tap_rand(rng);
}

/* ---- help and version ---- */

static bool test_help(void)
{
	static const char *const forms[][2] = { { "--help" }, { "-h" }, { "help" } };
	static const char *const cmds[] = { "run ", "estimate ", "kernel-compare ", "help " };
	struct outcome o;
	unsigned int i, j;

	for (i = 0; i < 3; i++) {
		ASSERT_TRUE(run_umm(&o, forms[i]));
		ASSERT_EQ(o.status, 0);
		ASSERT_TRUE(strstr(o.out, "usage: umm"));
		for (j = 0; j < sizeof(cmds) / sizeof(cmds[0]); j++)
			ASSERT_TRUE(find_line(o.out, cmds[j]));
		ASSERT_EQ(o.err_len, 0);
		outcome_free(&o);
	}
	return true;
}

static bool has_all(const char *text, const char *const *words, size_t n, const char *what)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!strstr(text, words[i])) {
			TAP_DIAG("'%s' missing from %s", words[i], what);
			return false;
		}
	return true;
}

static bool test_run_help(void)
{
	static const char *const flags[] = {
		"--guests N", "--image PATH", "--image-size SIZE", "--data-pages N",
		"--threads N", "--duration MS", "--phys SIZE", "--swap SIZE", "--json",
		"--plot FILE.png", "--seed N", "--pages_to_scan N", "--sleep_millisecs MS",
		"--max_page_sharing N", "--merge_across_nodes 0|1", "--use_zero_pages 0|1",
		"--smart_scan 0|1", "--stable_node_chains_prune_millisecs MS",
		"--advisor_mode none|scan-time", "--advisor_target_scan_time S",
		"--advisor_max_cpu PCT", "--advisor_min_pages_to_scan N",
		"--advisor_max_pages_to_scan N", "--ksm-threads N", "--help",
		"(default /usr/lib", " /usr/bin)", "default 4)",
	};
	struct outcome o, o2;

	RUN_EXPECT(&o, 0, "run", "--help");
	ASSERT_TRUE(strstr(o.out, "usage: umm run"));
	ASSERT_TRUE(has_all(o.out, flags, sizeof(flags) / sizeof(flags[0]), "umm run --help"));
	ASSERT_EQ(o.err_len, 0);
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

static bool test_other_help(void)
{
	static const char *const est[] = { "usage: umm estimate", "--pid PID", "--all",
					   "--use_zero_pages [0|1]", "--top N", "--json" };
	static const char *const kc[] = { "usage: umm kernel-compare", "--copies N",
					  "--allow-no-kernel", "--pages_to_scan N",
					  "--advisor_mode none|scan-time", "--json",
					  "run = 0" };
	struct outcome o;

	RUN_EXPECT(&o, 0, "estimate", "--help");
	ASSERT_TRUE(has_all(o.out, est, sizeof(est) / sizeof(est[0]), "umm estimate --help"));
	outcome_free(&o);
	RUN_EXPECT(&o, 0, "help", "kernel-compare");
	ASSERT_TRUE(has_all(o.out, kc, sizeof(kc) / sizeof(kc[0]), "umm kernel-compare --help"));
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

/* ---- run ---- */

/* The small image every run test boots: a few hundred KiB of real files. */
#define SMALL_RUN "--image-size", "256K", "--data-pages", "64", "--duration", "300", \
	"--rate", "500"

static bool check_text_report(const struct outcome *o)
{
	static const char *const lines[] = { "umm run: ", "report", "image ", "guests ",
					     "machine ", "ksm knobs ", "pages_shared ",
					     "pages_sharing ", "saved ", "per guest ", "vcpus ",
					     "swap ", "time " };
	unsigned int i;

	for (i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
		if (!find_line(o->out, lines[i]))
			TAP_DIAG("no '%s' line", lines[i]);
		ASSERT_TRUE(find_line(o->out, lines[i]));
	}
	ASSERT_TRUE(line_says(o->out, "data check ", " OK"));
	ASSERT_TRUE(line_says(o->out, "validate ", " OK"));
	ASSERT_TRUE(line_says(o->out, "leaked ", " 0 frames"));
	/* not a terminal: no progress line */
	ASSERT_FALSE(strchr(o->out, '\r'));
	return true;
}

static bool test_run_small(void)
{
	struct outcome o;

	RUN_EXPECT(&o, 0, "run", "--guests", "3", SMALL_RUN, "--threads", "2");
	if (!check_text_report(&o))
		show((const char *const[]){ "run", "...", NULL }, &o);
	ASSERT_TRUE(check_text_report(&o));
	ASSERT_EQ(o.err_len, 0);
	outcome_free(&o);
	return true;
}

/*
 * Exact figures on an image the test writes: file a holds 5 random pages
 * and 100 bytes (a sixth page, mostly zeros), file b a random page and two
 * empty ones.  G guests with no data and no writes: each of the 7 distinct
 * non-empty pages is shared once and sharing G - 1 times; the 2G empty
 * pages form one more KSM page (use_zero_pages 0) or become KSM zero pages.
 */
static bool run_exact(const char *dir, unsigned int guests, bool zero_pages)
{
	const char *uz = zero_pages ? "1" : "0";
	char g[8];
	struct outcome o;
	long long v;

	snprintf(g, sizeof(g), "%u", guests);
	RUN_EXPECT(&o, 0, "run", "--image", dir, "--guests", g, "--data-pages", "0",
		   "--write-pct", "0", "--duration", "200", "--use-zero-pages", uz, "--json");
	ASSERT_JSON(o.out);
	ASSERT_TRUE(strstr(o.out, "\"ok\": true"));
	ASSERT_JNUM(o.out, "\"image\"", "pages", &v);
	ASSERT_EQ(v, 9);
	ASSERT_JNUM(o.out, "\"image\"", "files", &v);
	ASSERT_EQ(v, 2);
	ASSERT_JNUM(o.out, "\"image\"", "zero_pages", &v);
	ASSERT_EQ(v, 2);
	ASSERT_JNUM(o.out, "\"ksm\": ", "pages_shared", &v);
	ASSERT_EQ(v, 7 + !zero_pages);
	ASSERT_JNUM(o.out, "\"ksm\": ", "pages_sharing", &v);
	ASSERT_EQ(v, 7 * (guests - 1) + (zero_pages ? 0 : 2 * guests - 1));
	ASSERT_JNUM(o.out, "\"ksm\": ", "ksm_zero_pages", &v);
	ASSERT_EQ(v, zero_pages ? 2 * guests : 0);
	ASSERT_JNUM(o.out, "\"ksm\": ", "pages_unshared", &v);
	ASSERT_EQ(v, 0);
	ASSERT_JNUM(o.out, NULL, "mismatches", &v);
	ASSERT_EQ(v, 0);
	ASSERT_JNUM(o.out, NULL, "leaked_frames", &v);
	ASSERT_EQ(v, 0);
	ASSERT_TRUE(strstr(o.out, "\"validate\": \"ok\""));
	ASSERT_TRUE(strstr(o.out, "\"samples\": [\n  {\"t\": "));
	ASSERT_EQ(o.err_len, 0);
	outcome_free(&o);
	return true;
}

static bool test_run_exact(void)
{
	uint64_t rng = tap_seed();
	uint8_t *buf = calloc(6, 4096);
	char dir[64], path[128];
	bool ok;

	ASSERT_TRUE(buf && make_tmpdir(dir, sizeof(dir)));
	fill_random(&rng, buf, 5 * 4096 + 100);
	snprintf(path, sizeof(path), "%s/a", dir);
	ASSERT_TRUE(write_file(path, buf, 5 * 4096 + 100));
	memset(buf, 0, 6 * 4096);
	fill_random(&rng, buf, 4096);
	snprintf(path, sizeof(path), "%s/b", dir);
	ASSERT_TRUE(write_file(path, buf, 3 * 4096));
	/* a link and a subdirectory are not part of the image */
	snprintf(path, sizeof(path), "%s/c-link", dir);
	ASSERT_EQ(symlink("a", path), 0);
	snprintf(path, sizeof(path), "%s/d-dir", dir);
	ASSERT_EQ(mkdir(path, 0755), 0);
	free(buf);
	ok = run_exact(dir, 3, false) && run_exact(dir, 2, true);
	remove_tree(dir);
	return ok;
}

/* Writes, several vCPUs, JSON: consistent figures, every byte checked. */
static bool test_run_json(void)
{
	struct outcome o;
	long long shared, sharing, guests, reads, writes;

	RUN_EXPECT(&o, 0, "run", "--guests", "2", SMALL_RUN, "--threads", "3", "--json",
		   "--seed", "7", "--sleep-millisecs", "5");
	ASSERT_JSON(o.out);
	ASSERT_TRUE(o.out[0] == '{' && o.out[o.out_len - 2] == '}');
	ASSERT_TRUE(strstr(o.out, "\"ok\": true"));
	ASSERT_JNUM(o.out, NULL, "guests", &guests);
	ASSERT_EQ(guests, 2);
	ASSERT_JNUM(o.out, NULL, "seed", &shared);
	ASSERT_EQ(shared, 7);
	ASSERT_JNUM(o.out, "\"knobs\"", "sleep_millisecs", &shared);
	ASSERT_EQ(shared, 5);
	ASSERT_JNUM(o.out, "\"ksm\": ", "pages_shared", &shared);
	ASSERT_JNUM(o.out, "\"ksm\": ", "pages_sharing", &sharing);
	/* two guests boot the same 64-page image: it merges (a page both
	 * guests wrote since may be shared with no sharer left) */
	ASSERT_TRUE(shared > 0 && sharing > 0);
	ASSERT_JNUM(o.out, "\"vcpus\"", "reads", &reads);
	ASSERT_JNUM(o.out, "\"vcpus\"", "writes", &writes);
	ASSERT_TRUE(reads > 0 && writes > 0);
	ASSERT_TRUE(strstr(o.out, "\"per_guest\": [\n  {\"guest\": 0"));
	ASSERT_TRUE(strstr(o.out, "{\"guest\": 1"));
	ASSERT_EQ(o.err_len, 0);
	outcome_free(&o);
	return true;
}

/*
 * On a terminal (a pty 80 columns wide): the live progress line, rewritten
 * in place, with elapsed time, memory saved, shared/sharing, notifier
 * events per second and pages scanned, never wider than the terminal.
 */
static bool test_run_progress(void)
{
	struct winsize ws = { .ws_row = 24, .ws_col = 80 };
	char *out = calloc(1, 1), *line, *save;
	size_t len = 0;
	int m, sl, st, lines = 0, waited = 0;
	pid_t pid;

	ASSERT_EQ(openpty(&m, &sl, NULL, NULL, &ws), 0);
	fflush(stdout);
	pid = fork();
	ASSERT_TRUE(pid >= 0);
	if (pid == 0) {
		dup2(sl, 1);
		dup2(sl, 2);
		execl(umm_path, umm_path, "run", "--guests", "2", SMALL_RUN, "--duration", "600",
		      (char *)NULL);
		_exit(127);
	}
	close(sl);
	while (m >= 0) {
		struct pollfd p = { m, POLLIN, 0 };

		if (poll(&p, 1, 1000) == 0 && (waited += 1000) >= RUN_TIMEOUT_MS)
			kill(pid, SIGKILL);
		if (p.revents)
			drain(&m, &out, &len);	/* EIO once the command has gone */
	}
	waitpid(pid, &st, 0);
	if (!WIFEXITED(st) || WEXITSTATUS(st))
		diag_text(out);
	ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	ASSERT_TRUE(strstr(out, "\r\033[Krun "));
	ASSERT_TRUE(strstr(out, "\r\033[Ksettle "));
	ASSERT_TRUE(strstr(out, "data check"));
	for (line = strtok_r(out, "\r\n", &save); line; line = strtok_r(NULL, "\r\n", &save)) {
		if (strncmp(line, "\033[K", 3))
			continue;
		lines++;
		if (strlen(line + 3) > 79)
			TAP_DIAG("progress line of %zu columns: %s", strlen(line + 3), line + 3);
		ASSERT_TRUE(strlen(line + 3) <= 79);
		if (strstr(line, "run ") != line + 3)
			continue;
		ASSERT_TRUE(strstr(line, "s: saved ") && strstr(line, " MiB, shared/sharing ") &&
			    strstr(line, ", notifier ") && strstr(line, "/s, scanned "));
	}
	ASSERT_GE(lines, 3);
	free(out);
	return true;
}

/* Memory pressure: less RAM than the guests need, a swap file. */
static bool test_run_swap(void)
{
	struct outcome o;
	long long out;

	RUN_EXPECT(&o, 0, "run", "--guests", "2", "--image-size", "512K", "--data-pages", "256",
		   "--duration", "300", "--rate", "500", "--phys", "2M", "--swap", "8M", "--json");
	ASSERT_JSON(o.out);
	ASSERT_TRUE(strstr(o.out, "\"ok\": true"));
	ASSERT_JNUM(o.out, "\"swap\": {", "pswpout", &out);
	ASSERT_TRUE(out > 0);
	outcome_free(&o);
	return true;
}

/* What `make run` runs: the default scenario, with no arguments. */
static bool test_run_default(void)
{
	struct outcome o;

	if (tap_short()) {	/* sized for an unsanitized build */
		TAP_DIAG("short mode: the default scenario is left to the normal build");
		return true;
	}
	RUN_EXPECT(&o, 0, "run");
	ASSERT_TRUE(check_text_report(&o));
	ASSERT_TRUE(strstr(o.out, "4 guests x ("));
	ASSERT_EQ(o.err_len, 0);
	outcome_free(&o);
	return true;
}

/* Entries in @dir (not . and ..); the names go to diagnostics with @show. */
static int dir_count(const char *dir, bool show)
{
	struct dirent *de;
	DIR *d = opendir(dir);
	int n = 0;

	while (d && (de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		n++;
		if (show)
			TAP_DIAG("%s/%s", dir, de->d_name);
	}
	if (d)
		closedir(d);
	return d ? n : -1;
}

/* Whether @dir holds exactly the one entry @name (no temporary file left). */
static bool dir_holds_only(const char *dir, const char *name)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (dir_count(dir, false) == 1 && !access(path, F_OK))
		return true;
	TAP_DIAG("%s should hold %s alone; it holds:", dir, name);
	dir_count(dir, true);
	return false;
}

/*
 * --plot draws a PNG; a gnuplot that fails half-way leaves the old file
 * as it was and no partial one; a path that cannot be created is refused
 * before anything runs.
 */
static bool test_run_plot(void)
{
	static const char fake[] = "#!/bin/sh\nprintf '\\211PNG partial'\n"
				   "echo '         ^' >&2\necho 'line 7: something broke' >&2\nexit 1\n";
	char dir[64], png[96], bin[96], path[PATH_MAX + 128], buf[16] = "";
	unsigned char magic[8] = { 0 };
	const char *old_path = getenv("PATH");
	struct outcome o;
	int fd;

	if (system("command -v gnuplot >/dev/null 2>&1")) {
		TAP_DIAG("skipped: no gnuplot here (the build installs it as root; not in a test)");
		return true;
	}
	ASSERT_TRUE(make_tmpdir(dir, sizeof(dir)));
	snprintf(png, sizeof(png), "%s/saved.png", dir);
	RUN_EXPECT(&o, 0, "run", "--guests", "2", SMALL_RUN, "--plot", png);
	fd = open(png, O_RDONLY);
	ASSERT_TRUE(fd >= 0);
	ASSERT_EQ(read(fd, magic, 8), 8);
	close(fd);
	ASSERT_TRUE(!memcmp(magic, "\x89PNG\r\n\x1a\n", 8));
	ASSERT_TRUE(dir_holds_only(dir, "saved.png"));
	ASSERT_EQ(o.err_len, 0);
	outcome_free(&o);

	/* a gnuplot that writes half a picture and fails */
	ASSERT_TRUE(write_file(png, "old", 3));
	snprintf(bin, sizeof(bin), "%s/bin", dir);
	ASSERT_EQ(mkdir(bin, 0755), 0);
	snprintf(path, sizeof(path), "%s/gnuplot", bin);
	ASSERT_TRUE(write_file(path, fake, strlen(fake)));
	ASSERT_EQ(chmod(path, 0755), 0);
	snprintf(path, sizeof(path), "%s:%s", bin, old_path ? old_path : "/usr/bin:/bin");
	setenv("PATH", path, 1);
	{
		const char *args[] = { "run", "--guests", "2", SMALL_RUN, "--plot", png, "--json", NULL };

		ASSERT_TRUE(run_umm(&o, args));
	}
	if (old_path)
		setenv("PATH", old_path, 1);
	ASSERT_EQ(o.status, 1);
	ASSERT_JSON(o.out);
	ASSERT_EQ(count_lines(o.err), 1);
	snprintf(path, sizeof(path), "umm: run: --plot %s: gnuplot failed: line 7: something broke\n", png);
	if (strcmp(o.err, path))
		diag_text(o.err);
	ASSERT_TRUE(!strcmp(o.err, path));
	outcome_free(&o);
	fd = open(png, O_RDONLY);
	ASSERT_TRUE(fd >= 0);
	ASSERT_EQ(read(fd, buf, sizeof(buf)), 3);
	close(fd);
	ASSERT_TRUE(!strcmp(buf, "old"));
	snprintf(path, sizeof(path), "rm -rf '%s'", bin);
	ASSERT_EQ(system(path), 0);
	ASSERT_TRUE(dir_holds_only(dir, "saved.png"));

	/* a directory this user may not write into: refused at once, exit 2 */
	if (!geteuid()) {
		ASSERT_EQ(chmod(dir, 0755), 0);
		run_as = 65534;
		{
			const char *args[] = { "run", "--plot", png, NULL };

			ASSERT_TRUE(run_umm(&o, args));
		}
		run_as = 0;
		if (o.status != 126) {
			ASSERT_EQ(o.status, 2);
			ASSERT_EQ(o.out_len, 0);
			ASSERT_EQ(count_lines(o.err), 1);
			ASSERT_TRUE(strstr(o.err, "cannot create it: Permission denied"));
		}
		outcome_free(&o);
		ASSERT_TRUE(dir_holds_only(dir, "saved.png"));
	}
	remove_tree(dir);
	return true;
}

/*
 * Send @sig to `umm run --swap --plot @png` (swap file in @dir through
 * TMPDIR) once its vCPU threads run, with @before entries in @dir then.
 * The command dies of the signal and takes its temporary files with it:
 * @dir holds its @before entries again.
 */
static bool interrupt_run(const char *dir, const char *png, int sig, bool plot, int before)
{
	char task[64];
	int st, i, threads = 0;
	pid_t pid;

	fflush(stdout);
	pid = fork();
	ASSERT_TRUE(pid >= 0);
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);

		/* a shell's background job starts with SIGINT ignored: not this one */
		signal(SIGINT, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		signal(SIGHUP, SIG_DFL);
		setenv("TMPDIR", dir, 1);
		dup2(null, 1);
		dup2(null, 2);
		/* 2 guests x 3 vCPUs, under memory pressure, until the signal */
		execl(umm_path, umm_path, "run", "--guests", "2", "--threads", "3",
		      "--image-size", "512K", "--data-pages", "256", "--duration", "600000",
		      "--phys", "2M", "--swap", "8M", plot ? "--plot" : NULL, png, (char *)NULL);
		_exit(127);
	}
	/* main, ksmd, kswapd and at least four vCPUs: the guests are running */
	snprintf(task, sizeof(task), "/proc/%d/task", (int)pid);
	for (i = 0; i < 6000 && (threads = dir_count(task, false)) >= 0 && threads < 7; i++)
		usleep(10000);
	if (threads < 7 || dir_count(dir, false) != before + 1 + plot) {
		TAP_DIAG("%d threads; in %s:", threads, dir);
		dir_count(dir, true);
		kill(pid, SIGKILL);
		waitpid(pid, &st, 0);
		return false;
	}
	ASSERT_EQ(kill(pid, sig), 0);
	ASSERT_EQ(waitpid(pid, &st, 0), pid);
	if (!WIFSIGNALED(st))
		TAP_DIAG("exit status %d", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
	ASSERT_TRUE(WIFSIGNALED(st));
	ASSERT_EQ(WTERMSIG(st), sig);
	if (dir_count(dir, false) != before)
		dir_count(dir, true);
	ASSERT_EQ(dir_count(dir, false), before);
	return true;
}

/*
 * SIGINT, SIGTERM or SIGHUP while `umm run` runs: no temporary swap or
 * plot file is left, --plot's file is absent or as it was, and the
 * command ends as the signal's default action ends it.
 */
static bool test_run_signal(void)
{
	bool plot = !system("command -v gnuplot >/dev/null 2>&1");
	char dir[64], png[96], buf[16] = "";
	int fd;

	if (!plot)
		TAP_DIAG("no gnuplot here: the swap file alone");
	ASSERT_TRUE(make_tmpdir(dir, sizeof(dir)));
	snprintf(png, sizeof(png), "%s/saved.png", dir);
	ASSERT_TRUE(interrupt_run(dir, png, SIGINT, plot, 0));
	ASSERT_EQ(access(png, F_OK), -1);
	ASSERT_TRUE(write_file(png, "old", 3));
	ASSERT_TRUE(interrupt_run(dir, png, SIGTERM, plot, 1));
	ASSERT_TRUE(interrupt_run(dir, png, SIGHUP, plot, 1));
	fd = open(png, O_RDONLY);
	ASSERT_TRUE(fd >= 0);
	ASSERT_EQ(read(fd, buf, sizeof(buf)), 3);
	close(fd);
	ASSERT_TRUE(!strcmp(buf, "old"));
	remove_tree(dir);
	return true;
}

/*
 * Every knob of the host's /sys/kernel/mm/ksm (a file root may write, but
 * run: that is the command's job) is a flag of run and kernel-compare with
 * the same name; the dashed spelling is the same flag; the scan-time
 * advisor runs and keeps pages_to_scan within its bounds.
 */
static bool test_run_knobs(void)
{
	static const char *const cmds[] = { "run", "kernel-compare" };
	struct outcome o, help[2];
	struct dirent *de;
	long long v;
	unsigned int i, knobs = 0;
	DIR *d;

	for (i = 0; i < 2; i++)
		RUN_EXPECT(&help[i], 0, cmds[i], "--help");
	d = opendir(KSM_DIR);
	while (d && (de = readdir(d))) {
		char path[300], flag[300];
		struct stat st;

		snprintf(path, sizeof(path), KSM_DIR "%s", de->d_name);
		if (stat(path, &st) || !S_ISREG(st.st_mode) || !(st.st_mode & S_IWUSR) ||
		    !strcmp(de->d_name, "run"))
			continue;
		snprintf(flag, sizeof(flag), "--%s ", de->d_name);
		for (i = 0; i < 2; i++) {
			if (!strstr(help[i].out, flag))
				TAP_DIAG("host knob %s is not a flag of umm %s", de->d_name, cmds[i]);
			ASSERT_TRUE(strstr(help[i].out, flag));
		}
		knobs++;
	}
	if (d)
		closedir(d);
	TAP_DIAG("%u knobs of the host's %s are flags", knobs, KSM_DIR);
	for (i = 0; i < 2; i++)
		outcome_free(&help[i]);
	RUN_EXPECT(&o, 0, "run", "--guests", "2", SMALL_RUN, "--pages-to-scan", "321", "--json");
	ASSERT_JNUM(o.out, "\"knobs\"", "pages_to_scan", &v);
	ASSERT_EQ(v, 321);
	outcome_free(&o);
	RUN_EXPECT(&o, 0, "run", "--guests", "2", SMALL_RUN, "--pages_to_scan", "0",
		   "--stable_node_chains_prune_millisecs", "4294967295", "--json");
	ASSERT_JSON(o.out);
	ASSERT_JNUM(o.out, "\"knobs\"", "pages_to_scan", &v);
	ASSERT_EQ(v, 0);
	ASSERT_TRUE(strstr(o.out, "\"ok\": true"));
	outcome_free(&o);
	RUN_EXPECT(&o, 0, "run", "--guests", "2", SMALL_RUN, "--advisor_mode", "scan-time",
		   "--advisor_target_scan_time", "1", "--advisor_min_pages_to_scan", "700",
		   "--advisor_max_pages_to_scan", "900", "--json");
	ASSERT_JSON(o.out);
	ASSERT_TRUE(strstr(o.out, "\"ok\": true"));
	ASSERT_TRUE(strstr(o.out, "\"advisor_mode\": \"scan-time\""));
	ASSERT_JNUM(o.out, "\"knobs\"", "pages_to_scan", &v);
	ASSERT_TRUE(v >= 700 && v <= 900);
	ASSERT_JNUM(o.out, "\"ksm\": ", "pages_sharing", &v);
	ASSERT_TRUE(v > 0);
	outcome_free(&o);
	return true;
}

/* ---- bad input ---- */

struct bad_case {
	const char *args[8];
	const char *want;	/* substring of the one stderr line */
	int status;		/* 2 bad usage, 1 a runtime error */
};

static const struct bad_case bad_cases[] = {
	{ { NULL }, "umm: no command given", 2 },
	{ { "frobnicate" }, "umm: unknown command 'frobnicate'", 2 },
	{ { "--frob" }, "umm: unknown option '--frob'", 2 },
	{ { "help", "nope" }, "umm: help: unknown command 'nope'", 2 },
	{ { "run", "--frob" }, "umm: run: unknown option '--frob'", 2 },
	{ { "run", "-x" }, "umm: run: unknown option '-x'", 2 },
	{ { "run", "extra" }, "umm: run: unexpected argument 'extra'", 2 },
	{ { "run", "--guests" }, "umm: run: --guests: missing value", 2 },
	{ { "run", "--guests", "--phys", "64M" }, "umm: run: --guests: missing value", 2 },
	{ { "run", "--guests=" }, "umm: run: --guests: missing value", 2 },
	{ { "run", "--guests", "abc" }, "umm: run: --guests: 'abc' is not a number", 2 },
	{ { "run", "--guests=abc" }, "umm: run: --guests: 'abc' is not a number", 2 },
	{ { "run", "--guests", "4x" }, "umm: run: --guests: '4x' is not a number", 2 },
	{ { "run", "--guests", "1.5" }, "umm: run: --guests: '1.5' is not a number", 2 },
	{ { "run", "--guests", " 4" }, "umm: run: --guests: ' 4' is not a number", 2 },
	{ { "run", "--guests", "-1" }, "umm: run: --guests: '-1' is negative", 2 },
	{ { "run", "--guests", "0" }, "umm: run: --guests: '0' is too small", 2 },
	{ { "run", "--guests", "99999999999999999999999" },
	  "umm: run: --guests: '99999999999999999999999' is too large", 2 },
	{ { "run", "--seed", "18446744073709551616" }, "umm: run: --seed: '18446744073709551616' is too large", 2 },
	{ { "run", "--phys", "12Q" }, "umm: run: --phys: '12Q' is not a size", 2 },
	{ { "run", "--phys", "M" }, "umm: run: --phys: 'M' is not a size", 2 },
	{ { "run", "--phys", "-64M" }, "umm: run: --phys: '-64M' is negative", 2 },
	{ { "run", "--phys", "65537" }, "umm: run: --phys: '65537' is not a multiple of 4K", 2 },
	{ { "run", "--phys", "2T" }, "umm: run: --phys: '2T' is too large (maximum 1T)", 2 },
	{ { "run", "--phys", "17179869184T" }, "umm: run: --phys: '17179869184T' is too large", 2 },
	{ { "run", "--write-pct", "101" }, "umm: run: --write-pct: '101' is too large (maximum 100)", 2 },
	{ { "run", "--nodes", "65" }, "umm: run: --nodes: '65' is too large (maximum 64)", 2 },
	{ { "run", "--threads", "0" }, "umm: run: --threads: '0' is too small (minimum 1)", 2 },
	{ { "run", "--verbose=1" }, "umm: run: --verbose takes no value", 2 },
	{ { "run", "--json=yes" }, "umm: run: --json takes no value", 2 },
	{ { "run", "--plot" }, "umm: run: --plot: missing value", 2 },
	{ { "run", "--image=" }, "umm: run: --image: missing value", 2 },
	{ { "run", "--plot", "/nonexistent/umm-plot/x.png" },
	  "umm: run: --plot /nonexistent/umm-plot/x.png: cannot create it: No such file or directory", 2 },
	{ { "run", "--plot", "/tmp" }, "umm: run: --plot /tmp: is a directory", 2 },
	{ { "run", "--plot", "/tmp/" }, "umm: run: --plot /tmp/: is a directory", 2 },
	{ { "run", "--merge_across_nodes", "2" },
	  "umm: run: --merge_across_nodes: '2' is too large (maximum 1)", 2 },
	{ { "run", "--max-page-sharing", "1" },
	  "umm: run: --max_page_sharing: '1' is too small (minimum 2)", 2 },
	{ { "run", "--max_page_sharing", "2147483648" },
	  "umm: run: --max_page_sharing: '2147483648' is too large (maximum 2147483647)", 2 },
	{ { "run", "--ksm-threads", "65" }, "umm: run: --ksm-threads: '65' is too large (maximum 64)", 2 },
	{ { "run", "--pages-to-scan", "x" }, "umm: run: --pages_to_scan: 'x' is not a number", 2 },
	{ { "run", "--pages_to_scan", "4294967296" },
	  "umm: run: --pages_to_scan: '4294967296' is too large (maximum 4294967295)", 2 },
	{ { "run", "--advisor_mode", "fast" },
	  "umm: run: --advisor_mode: 'fast' is not one of none|scan-time", 2 },
	{ { "run", "--advisor_mode=" }, "umm: run: --advisor_mode: missing value", 2 },
	{ { "run", "--advisor_target_scan_time", "0" },
	  "umm: run: --advisor_target_scan_time: '0' is too small (minimum 1)", 2 },
	{ { "run", "--advisor_mode", "scan-time", "--pages_to_scan", "500" },
	  "umm: run: --pages_to_scan: the scan-time advisor sets pages_to_scan itself", 2 },
	{ { "kernel-compare", "--pages_to_scan", "5", "--advisor-mode", "scan-time" },
	  "umm: kernel-compare: --pages_to_scan: the scan-time advisor sets pages_to_scan itself", 2 },
	/* Linux refuses any write to pages_to_scan under the advisor, the default value too */
	{ { "run", "--advisor_mode", "scan-time", "--pages_to_scan", "1000" },
	  "umm: run: --pages_to_scan: the scan-time advisor sets pages_to_scan itself", 2 },
	{ { "run", "--pages-to-scan=100", "--advisor_mode=scan-time" },
	  "umm: run: --pages_to_scan: the scan-time advisor sets pages_to_scan itself", 2 },
	{ { "kernel-compare", "--advisor_mode", "scan-time", "--pages_to_scan", "1000" },
	  "umm: kernel-compare: --pages_to_scan: the scan-time advisor sets pages_to_scan itself", 2 },
	{ { "run", "--guests", "256", "--threads", "64" }, "umm: run: --guests 256 with --threads 64", 2 },
	{ { "run", "--", "x" }, "umm: run: unexpected argument 'x'", 2 },
	{ { "run", "--image", "/nonexistent/umm-image" },
	  "umm: run: --image /nonexistent/umm-image: No such file or directory", 2 },
	{ { "run", "--image", "/usr/bin", "--image", "/nonexistent/b" },
	  "umm: run: --image /nonexistent/b: No such file or directory", 2 },
	{ { "run", "--image", "/dev/null" }, "umm: run: --image /dev/null: not a file or directory", 2 },
	{ { "estimate" }, "umm: estimate: no process given (--pid PID or --all)", 2 },
	{ { "estimate", "--pid" }, "umm: estimate: --pid: missing value", 2 },
	{ { "estimate", "--pid", "abc" }, "umm: estimate: --pid: 'abc' is not a process ID", 2 },
	{ { "estimate", "--pid", "0" }, "umm: estimate: --pid: '0' is not a process ID", 2 },
	{ { "estimate", "--pid", "-5" }, "umm: estimate: --pid: '-5' is not a process ID", 2 },
	{ { "estimate", "--all", "--top", "x" }, "umm: estimate: --top: 'x' is not a number", 2 },
	{ { "estimate", "--use-zero-pages=2", "--all" },
	  "umm: estimate: --use_zero_pages: '2' is too large (maximum 1)", 2 },
	{ { "estimate", "--all", "--use_zero_pages", "yes" },
	  "umm: estimate: --use_zero_pages: 'yes' is not a number", 2 },
	{ { "estimate", "--use_zero_pages", "1", "2" }, "umm: estimate: unexpected argument '2'", 2 },
	{ { "estimate", "1234" }, "umm: estimate: unexpected argument '1234'", 2 },
	{ { "kernel-compare", "--copies", "0" }, "umm: kernel-compare: --copies: '0' is too small", 2 },
	{ { "kernel-compare", "--frob" }, "umm: kernel-compare: unknown option '--frob'", 2 },
	{ { "kernel-compare", "--image", "/nonexistent/k", "--allow-no-kernel" },
	  "umm: kernel-compare: --image /nonexistent/k: No such file or directory", 2 },
	/* runtime errors: exit 1 */
	{ { "estimate", "--pid", "1073741823" }, "umm: estimate: pid 1073741823: no such process", 1 },
};

static bool check_bad(const struct bad_case *c)
{
	int want = c->status;
	struct outcome o;
	bool ok;

	ASSERT_TRUE(run_umm(&o, c->args));
	ok = o.status == want && o.out_len == 0 && count_lines(o.err) == 1 &&
	     o.err[o.err_len - 1] == '\n' && strstr(o.err, c->want) == o.err;
	if (!ok) {
		show(c->args, &o);
		printf("# expected: exit %d, nothing on stdout, one stderr line starting '%s'\n",
		       want, c->want);
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

/* The library's -ENOMEM (no frame left, no swap) is a runtime failure: exit 1. */
static bool test_runtime_enomem(void)
{
	struct outcome o;
	const char *last;

	RUN_EXPECT(&o, 1, "run", "--phys", "1M", "--guests", "4", "--image-size", "1M");
	ASSERT_EQ(o.out_len, 0);
	ASSERT_TRUE(o.err_len > 0 && o.err[o.err_len - 1] == '\n');
	o.err[o.err_len - 1] = '\0';
	last = strrchr(o.err, '\n') ? strrchr(o.err, '\n') + 1 : o.err;
	if (!strstr(last, strerror(ENOMEM)) || strncmp(last, "umm: run: boot: ", 16))
		show((const char *const[]){ "run", "--phys", "1M", NULL }, &o);
	ASSERT_TRUE(!strncmp(last, "umm: run: boot: ", 16));
	ASSERT_TRUE(strstr(last, strerror(ENOMEM)));
	outcome_free(&o);
	/* --json: nothing half-written either */
	RUN_EXPECT(&o, 1, "run", "--phys", "1M", "--guests", "4", "--image-size", "1M", "--json");
	ASSERT_EQ(o.out_len, 0);
	outcome_free(&o);
	return true;
}

/* A machine the library refuses (16 frames per node at least): exit 1. */
static bool test_runtime_einval(void)
{
	struct outcome o;

	RUN_EXPECT(&o, 1, "run", "--phys", "64K", "--nodes", "2", "--image-size", "64K");
	ASSERT_EQ(o.out_len, 0);
	ASSERT_EQ(count_lines(o.err), 1);
	ASSERT_TRUE(strstr(o.err, "umm: run: cannot create a machine"));
	ASSERT_TRUE(strstr(o.err, strerror(EINVAL)));
	outcome_free(&o);
	return true;
}

/* ---- the host kernel's KSM ---- */

static bool kernel_ksm_usable(void)
{
	return !geteuid() && !access(KSM_DIR "run", W_OK);
}

static bool ksm_get(const char *name, char *buf, size_t len)
{
	char path[128];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), KSM_DIR "%s", name);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return false;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = 0;
	buf[strcspn(buf, "\n")] = 0;
	return true;
}

static long ksm_long(const char *name)
{
	char buf[32];

	return ksm_get(name, buf, sizeof(buf)) ? atol(buf) : -1;
}

static bool ksm_set(const char *name, const char *val)
{
	char path[128];
	bool ok;
	int fd;

	snprintf(path, sizeof(path), KSM_DIR "%s", name);
	fd = open(path, O_WRONLY);
	if (fd < 0)
		return false;
	ok = write(fd, val, strlen(val)) == (ssize_t)strlen(val);
	close(fd);
	return ok;
}

/*
 * The knobs the test writes, saved and put back with run = 0 last; and
 * advisor_mode ("[none] scan-time"), which only kernel-compare writes:
 * saved to see that it put it back.
 */
struct ksm_saved {
	char pages_to_scan[32], sleep_millisecs[32], use_zero_pages[32], advisor_mode[32];
};

static void ksm_save(struct ksm_saved *s)
{
	if (!ksm_get("advisor_mode", s->advisor_mode, sizeof(s->advisor_mode)))
		strcpy(s->advisor_mode, "-");
	if (!ksm_get("pages_to_scan", s->pages_to_scan, sizeof(s->pages_to_scan)))
		strcpy(s->pages_to_scan, "100");
	if (!ksm_get("sleep_millisecs", s->sleep_millisecs, sizeof(s->sleep_millisecs)))
		strcpy(s->sleep_millisecs, "20");
	if (!ksm_get("use_zero_pages", s->use_zero_pages, sizeof(s->use_zero_pages)))
		strcpy(s->use_zero_pages, "0");
}

static void ksm_restore(const struct ksm_saved *s)
{
	ksm_set("pages_to_scan", s->pages_to_scan);
	ksm_set("sleep_millisecs", s->sleep_millisecs);
	ksm_set("use_zero_pages", s->use_zero_pages);
	ksm_set("run", "0");
}

/* ---- estimate against a real process ---- */

/*
 * The process with known content, built uninstrumented (a sanitizer's
 * shadow would only add noise): 300 identical random pages (more than one
 * KSM page may back at max_page_sharing 256: a chain of two), 16 empty
 * pages (written, so they are real anonymous pages), 32 distinct random
 * pages;
 * with argv[1] "1" it asks for the kernel's KSM first (PR_SET_MEMORY_MERGE).
 * It prints "ready HEX" (the duplicated page's first 16 bytes) and waits for
 * its stdin to close.
 */
static const char child_src[] =
	"#include <stdio.h>\n#include <stdlib.h>\n#include <string.h>\n#include <unistd.h>\n"
	"#include <sys/mman.h>\n#include <sys/prctl.h>\n"
	"#ifndef PR_SET_MEMORY_MERGE\n#define PR_SET_MEMORY_MERGE 67\n#endif\n"
	"static unsigned long long s;\n"
	"static unsigned char rnd(void) { s ^= s << 13; s ^= s >> 7; s ^= s << 17; return s >> 24; }\n"
	"int main(int argc, char **argv)\n{\n"
	"\tunsigned char *m, c;\n\tint i, j;\n"
	"\ts = strtoull(argv[2], NULL, 0) | 1;\n"
	"\tif (argv[1][0] == '1' && prctl(PR_SET_MEMORY_MERGE, 1, 0, 0, 0)) {\n"
	"\t\tprintf(\"noprctl\\n\");\n\t\tfflush(stdout);\n\t}\n"
	"\tm = mmap(NULL, 348 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);\n"
	"\tif (m == MAP_FAILED)\n\t\treturn 1;\n"
	"\tmadvise(m, 348 * 4096, MADV_NOHUGEPAGE);\n"
	"\tfor (j = 0; j < 4096; j++)\n\t\tm[j] = rnd();\n"
	"\tfor (i = 1; i < 300; i++)\n\t\tmemcpy(m + i * 4096, m, 4096);\n"
	"\tfor (i = 300; i < 316; i++)\n\t\tmemset(m + i * 4096, 0, 4096);\n"
	"\tfor (i = 316; i < 348; i++)\n\t\tfor (j = 0; j < 4096; j++)\n\t\t\tm[i * 4096 + j] = rnd();\n"
	"\tprintf(\"ready \");\n\tfor (j = 0; j < 16; j++)\n\t\tprintf(\"%02x\", m[j]);\n"
	"\tprintf(\"\\n\");\n\tfflush(stdout);\n"
	"\twhile (read(0, &c, 1) > 0)\n\t\t;\n\treturn 0;\n}\n";

struct child {
	pid_t pid;
	int in, out;		/* its stdin (ours to close), its stdout */
	char hex[33];	/* the duplicated page's first 16 bytes */
};

static bool build_child(const char *dir, char *exe, size_t len)
{
	char src[128], cmd[512];

	snprintf(src, sizeof(src), "%s/child.c", dir);
	snprintf(exe, len, "%s/child", dir);
	if (!write_file(src, child_src, strlen(child_src)))
		return false;
	snprintf(cmd, sizeof(cmd), "cc -O1 -o '%s' '%s' >/dev/null 2>&1", exe, src);
	return system(cmd) == 0;
}

static bool start_child(struct child *c, const char *exe, bool merge, uint64_t seed)
{
	char seedstr[32], line[64] = "";
	int pin[2], pout[2];
	ssize_t n, got = 0;

	snprintf(seedstr, sizeof(seedstr), "%llu", (unsigned long long)seed);
	if (pipe2(pin, O_CLOEXEC) || pipe2(pout, O_CLOEXEC))
		return false;
	c->pid = fork();
	if (c->pid < 0)
		return false;
	if (c->pid == 0) {
		dup2(pin[0], 0);
		dup2(pout[1], 1);
		execl(exe, exe, merge ? "1" : "0", seedstr, (char *)NULL);
		_exit(127);
	}
	close(pin[0]);
	close(pout[1]);
	c->in = pin[1];
	c->out = pout[0];
	while (got < (ssize_t)sizeof(line) - 1 && !strchr(line, '\n') &&
	       (n = read(c->out, line + got, sizeof(line) - 1 - got)) > 0)
		got += n;
	if (strncmp(line, "ready ", 6)) {
		TAP_DIAG("the child said '%s'", line);
		return false;
	}
	memcpy(c->hex, line + 6, 32);
	c->hex[32] = 0;
	return true;
}

static void stop_child(struct child *c)
{
	int st;

	close(c->in);
	close(c->out);
	waitpid(c->pid, &st, 0);
}

/* The count of the "top" entry whose prefix is @hex (and zero flag @zero). */
static long long top_count(const char *json, const char *hex, bool zero)
{
	char pat[96];
	const char *p, *q;

	snprintf(pat, sizeof(pat), "\"prefix\": \"%s\", \"zero\": %s}", hex, zero ? "true" : "false");
	p = strstr(json, pat);
	if (!p)
		return -1;
	for (q = p; q > json && strncmp(q, "{\"count\": ", 10); q--)
		;
	return strtoll(q + 10, NULL, 10);
}

/*
 * estimate --pid CHILD: the figures its known content implies; its
 * ksm_merging_pages, ksm_zero_pages, pages_shared and pages_sharing.
 */
static bool estimate_child(const struct child *c, bool zero_pages, long long *merging,
			   long long *zero, long long *shared, long long *sharing)
{
	char pid[16];
	struct outcome o;
	long long v;

	snprintf(pid, sizeof(pid), "%d", (int)c->pid);
	if (zero_pages)
		RUN_EXPECT(&o, 0, "estimate", "--pid", pid, "--json", "--top", "50",
			   "--use-zero-pages");
	else
		RUN_EXPECT(&o, 0, "estimate", "--pid", pid, "--json", "--top", "50");
	ASSERT_JSON(o.out);
	ASSERT_JNUM(o.out, "\"processes\"", "pid", &v);
	ASSERT_EQ(v, c->pid);
	ASSERT_JNUM(o.out, "\"processes\"", "pages", &v);
	ASSERT_GE(v, 348);
	/* the 300 copies are one content, found 300 times exactly */
	if (top_count(o.out, c->hex, false) != 300)
		diag_text(o.out);
	ASSERT_EQ(top_count(o.out, c->hex, false), 300);
	ASSERT_GE(top_count(o.out, "00000000000000000000000000000000", true), 16);
	ASSERT_JNUM(o.out, "\"processes\"", "ksm_merging_pages", merging);
	ASSERT_JNUM(o.out, "\"processes\"", "ksm_zero_pages", zero);
	ASSERT_JNUM(o.out, "\"total\"", "pages_shared", shared);
	ASSERT_JNUM(o.out, "\"total\"", "pages_sharing", sharing);
	/* 300 copies at max_page_sharing 256: two KSM pages, 298 sharing */
	ASSERT_GE(*shared, 2);
	if (zero_pages) {
		ASSERT_GE(*zero, 16);
		ASSERT_GE(*merging, 300);
		ASSERT_GE(*sharing, 298);
	} else {
		ASSERT_EQ(*zero, 0);
		ASSERT_GE(*merging, 316);
		ASSERT_GE(*sharing, 298 + 15);
	}
	ASSERT_JNUM(o.out, "\"total\"", "saved_mib", &v);
	ASSERT_EQ(o.err_len, 0);
	outcome_free(&o);
	return true;
}

/*
 * estimate's use_zero_pages, as run and kernel-compare spell it (0|1) and
 * as a switch, with and without '=': what each asks for is what ran.
 */
static bool estimate_zero_spellings(const struct child *c)
{
	static const struct {
		const char *opt, *val;	/* val NULL: the option alone, before --json */
		bool on;
	} sp[] = {
		{ "--use_zero_pages", "1", true }, { "--use_zero_pages", "0", false },
		{ "--use_zero_pages=1", NULL, true }, { "--use-zero-pages=0", NULL, false },
		{ "--use-zero-pages", NULL, true }, { "--use_zero_pages", NULL, true },
	};
	char pid[16];
	struct outcome o;
	long long zero;
	size_t i;

	snprintf(pid, sizeof(pid), "%d", (int)c->pid);
	for (i = 0; i < sizeof(sp) / sizeof(sp[0]); i++) {
		RUN_EXPECT(&o, 0, "estimate", "--pid", pid, sp[i].opt, sp[i].val ? sp[i].val : "--json",
			   "--json");
		ASSERT_JSON(o.out);
		if (!strstr(o.out, sp[i].on ? "\"use_zero_pages\": true" : "\"use_zero_pages\": false"))
			TAP_DIAG("%s %s: use_zero_pages is not %d", sp[i].opt,
				 sp[i].val ? sp[i].val : "", sp[i].on);
		ASSERT_TRUE(strstr(o.out, sp[i].on ? "\"use_zero_pages\": true" :
				   "\"use_zero_pages\": false"));
		ASSERT_JNUM(o.out, "\"processes\"", "ksm_zero_pages", &zero);
		if (sp[i].on)
			ASSERT_GE(zero, 16);
		else
			ASSERT_EQ(zero, 0);
		outcome_free(&o);
	}
	return true;
}

static long proc_long(pid_t pid, const char *name)
{
	char path[64], buf[32] = "";
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, name);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	return n > 0 ? atol(buf) : -1;
}

#define PM_PRESENT	(1ULL << 63)
#define PM_PFN_MASK	((1ULL << 55) - 1)
#define KPF_KSM		21

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/*
 * What the kernel's KSM made of process @pid: its pages that are KSM pages
 * (/proc/PID/maps and pagemap for the pfns, /proc/kpageflags for KPF_KSM),
 * as distinct KSM pages (*@shared) and the rest (*@sharing): the figures
 * /sys/kernel/mm/ksm would show if this process were KSM's only user.
 * Return: false when they cannot be read.
 */
static bool kernel_ksm_pages(pid_t pid, long *shared, long *sharing)
{
	char path[64], line[512];
	uint64_t *pfns = NULL, e, f;
	size_t n = 0, cap = 0, i;
	unsigned long long a, b;
	int pm, kf;
	FILE *maps;
	bool ok;

	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	maps = fopen(path, "r");
	snprintf(path, sizeof(path), "/proc/%d/pagemap", (int)pid);
	pm = open(path, O_RDONLY);
	kf = open("/proc/kpageflags", O_RDONLY);
	ok = maps && pm >= 0 && kf >= 0;
	while (ok && fgets(line, sizeof(line), maps)) {
		if (sscanf(line, "%llx-%llx", &a, &b) != 2 || strstr(line, "[vsyscall]"))
			continue;
		for (; ok && a < b; a += 4096) {
			if (pread(pm, &e, 8, (off_t)(a / 4096 * 8)) != 8 || !(e & PM_PRESENT))
				continue;
			if (pread(kf, &f, 8, (off_t)((e & PM_PFN_MASK) * 8)) != 8 ||
			    !(f & (1ULL << KPF_KSM)))
				continue;
			if (n == cap) {
				cap = cap ? 2 * cap : 1024;
				pfns = realloc(pfns, cap * sizeof(*pfns));
				ok = pfns != NULL;
			}
			if (ok)
				pfns[n++] = e & PM_PFN_MASK;
		}
	}
	if (ok) {
		qsort(pfns, n, sizeof(*pfns), cmp_u64);
		*shared = 0;
		for (i = 0; i < n; i++)
			*shared += !i || pfns[i] != pfns[i - 1];
		*sharing = (long)n - *shared;
	}
	free(pfns);
	if (maps)
		fclose(maps);
	if (pm >= 0)
		close(pm);
	if (kf >= 0)
		close(kf);
	return ok;
}

/*
 * Estimate the child, then let the host kernel's KSM merge it
 * (PR_SET_MEMORY_MERGE) and wait for it to converge: umm must have found
 * the very pages the kernel merged.  Knobs restored, run = 0, whatever
 * happens.
 */
static bool estimate_vs_kernel(const char *exe, uint64_t seed, bool uz)
{
	struct ksm_saved saved;
	struct child c;
	long fs0, fs, kmerging = -1, last = -2, kzero, kshared = -1, ksharing = -1;
	long long merging = -1, zero = -1, shared = -1, sharing = -1;
	bool ok, interfered = false, kpages = false;
	double t0;
	char v[32];

	ksm_save(&saved);
	if (!ksm_set("use_zero_pages", uz ? "1" : "0")) {
		ksm_restore(&saved);
		TAP_DIAG("skipped the kernel comparison with use_zero_pages %d: cannot set it", uz);
		return true;
	}
	if (!start_child(&c, exe, true, seed)) {
		ksm_restore(&saved);
		ASSERT_TRUE(false);
	}
	/*
	 * umm first, on the process as it is: once the kernel has mapped its
	 * empty pages to the zero page (use_zero_pages), they are no longer
	 * anonymous pages that anyone, kernel or umm, would scan.
	 */
	ok = estimate_child(&c, uz, &merging, &zero, &shared, &sharing);
	fs0 = ksm_long("full_scans");
	ok = ok && ksm_set("pages_to_scan", "5000") && ksm_set("sleep_millisecs", "10") &&
	     ksm_set("run", "1");
	for (t0 = (double)time(NULL); ok && time(NULL) - t0 < 60;) {
		usleep(20000);
		if (ksm_long("run") != 1 || ksm_long("pages_to_scan") != 5000 ||
		    ksm_long("use_zero_pages") != uz) {
			interfered = true;
			break;
		}
		fs = ksm_long("full_scans");
		if (fs < fs0)
			fs0 = fs;	/* someone reset it */
		if (fs < fs0 + 3)
			continue;
		kmerging = proc_long(c.pid, "ksm_merging_pages");
		if (kmerging == last)
			break;
		last = kmerging;
		fs0 = fs - 2;	/* one more full scan, then compare */
	}
	snprintf(v, sizeof(v), "%ld", ksm_long("full_scans"));
	ksm_set("run", "0");	/* stop scanning: nothing changes under the estimate */
	kzero = -1;
	{
		char path[64], line[128];
		FILE *f;

		snprintf(path, sizeof(path), "/proc/%d/ksm_stat", (int)c.pid);
		f = fopen(path, "r");
		while (f && fgets(line, sizeof(line), f))
			if (!strncmp(line, "ksm_zero_pages ", 15))
				kzero = atol(line + 15);
		if (f)
			fclose(f);
	}
	kpages = kernel_ksm_pages(c.pid, &kshared, &ksharing);
	stop_child(&c);
	ksm_restore(&saved);
	ASSERT_TRUE(ok);
	ASSERT_EQ(ksm_long("run"), 0);
	if (interfered) {
		/* the host's KSM is shared: another user's knobs are not a umm bug */
		TAP_DIAG("skipped the kernel comparison: someone else drove %s meanwhile", KSM_DIR);
		return true;
	}
	TAP_DIAG("host kernel merged %ld pages of the child (%ld zero pages, %ld KSM pages + %ld "
		 "sharing, use_zero_pages %d, full_scans %s); umm's estimate: %lld merging, "
		 "%lld zero pages, %lld shared + %lld sharing", kmerging, kzero, kshared, ksharing,
		 uz, v, merging, zero, shared, sharing);
	ASSERT_EQ(merging, kmerging);
	if (kzero >= 0)
		ASSERT_EQ(zero, kzero);
	if (!kpages) {
		TAP_DIAG("the kernel's KSM pages of the child not compared: no /proc/kpageflags");
	} else if (ksm_long("max_page_sharing") != 256) {
		TAP_DIAG("the kernel's KSM pages not compared: the host's max_page_sharing is %ld",
			 ksm_long("max_page_sharing"));
	} else {
		ASSERT_EQ(shared, kshared);
		ASSERT_EQ(sharing, ksharing);
	}
	return true;
}

static bool test_estimate_process(void)
{
	uint64_t seed = tap_seed();
	long long merging, zero, shared, sharing;
	char dir[64], exe[128];
	struct child c;
	bool ok;

	ASSERT_TRUE(make_tmpdir(dir, sizeof(dir)));
	if (!build_child(dir, exe, sizeof(exe))) {
		remove_tree(dir);
		TAP_DIAG("skipped: no C compiler to build the child process");
		return true;
	}
	ASSERT_TRUE(start_child(&c, exe, false, seed));
	ok = estimate_child(&c, false, &merging, &zero, &shared, &sharing) &&
	     estimate_child(&c, true, &merging, &zero, &shared, &sharing) &&
	     estimate_zero_spellings(&c);
	stop_child(&c);
	ASSERT_TRUE(ok);
	/* the same pid again, once it is gone: exit 1, one line */
	{
		char pid[16];
		const char *args[] = { "estimate", "--pid", pid, NULL };
		struct outcome o;

		snprintf(pid, sizeof(pid), "%d", (int)c.pid);
		ASSERT_TRUE(run_umm(&o, args));
		ASSERT_EQ(o.status, 1);
		ASSERT_EQ(o.out_len, 0);
		ASSERT_EQ(count_lines(o.err), 1);
		ASSERT_TRUE(strstr(o.err, "no such process"));
		outcome_free(&o);
	}
	if (kernel_ksm_usable())
		ok = estimate_vs_kernel(exe, seed, false) && estimate_vs_kernel(exe, seed + 1, true);
	else
		TAP_DIAG("skipped the kernel comparison: %s", geteuid() ?
			 "not root" : "no writable " KSM_DIR);
	remove_tree(dir);
	return ok;
}

/* A process this user may not read: exit 1, one line. */
static bool test_estimate_unreadable(void)
{
	struct outcome o;
	const char *args[] = { "estimate", "--pid", "1", NULL };

	if (geteuid()) {
		TAP_DIAG("skipped: needs root to become another user");
		return true;
	}
	run_as = 65534;
	ASSERT_TRUE(run_umm(&o, args));
	run_as = 0;
	if (o.status == 126) {
		TAP_DIAG("skipped: cannot run the command as nobody");
		outcome_free(&o);
		return true;
	}
	ASSERT_EQ(o.status, 1);
	ASSERT_EQ(o.out_len, 0);
	ASSERT_EQ(count_lines(o.err), 1);
	ASSERT_TRUE(strstr(o.err, "umm: estimate: pid 1: cannot read its memory"));
	outcome_free(&o);
	return true;
}

static bool test_estimate_all(void)
{
	struct outcome o;
	long long v;

	if (tap_short()) {
		TAP_DIAG("short mode: estimate --all is left to the normal build");
		return true;
	}
	RUN_EXPECT(&o, 0, "estimate", "--all", "--json", "--top", "3");
	ASSERT_JSON(o.out);
	ASSERT_JNUM(o.out, "\"total\"", "pages", &v);
	ASSERT_TRUE(v > 0);
	ASSERT_JNUM(o.out, "\"total\"", "full_scans", &v);
	ASSERT_GE(v, 2);
	outcome_free(&o);
	return true;
}

/* ---- kernel-compare ---- */

static bool test_kernel_compare(void)
{
	struct ksm_saved before, after;
	struct outcome o;
	long long um, km, v;

	if (!kernel_ksm_usable()) {
		RUN_EXPECT(&o, 1, "kernel-compare", "--copies", "2", "--image-size", "64K");
		ASSERT_EQ(o.out_len, 0);
		ASSERT_EQ(count_lines(o.err), 1);
		outcome_free(&o);
		RUN_EXPECT(&o, 0, "kernel-compare", "--copies", "2", "--image-size", "64K",
			   "--data-pages", "16", "--allow-no-kernel");
		ASSERT_TRUE(strstr(o.out, "host kernel: "));
		outcome_free(&o);
		TAP_DIAG("skipped the host side: no usable %s", KSM_DIR);
		return true;
	}
	ksm_save(&before);
	{
		const char *args[] = { "kernel-compare", "--copies", "3", "--image-size", "256K",
				       "--data-pages", "64", "--json", NULL };

		ASSERT_TRUE(run_umm(&o, args));
		if (o.status && !strstr(o.out, "\"interfered\": true"))
			show(args, &o);
		ASSERT_TRUE(o.status == 0 || strstr(o.out, "\"interfered\": true"));
	}
	ksm_save(&after);
	ASSERT_EQ(ksm_long("run"), 0);
	ASSERT_TRUE(!strcmp(before.pages_to_scan, after.pages_to_scan));
	ASSERT_TRUE(!strcmp(before.sleep_millisecs, after.sleep_millisecs));
	ASSERT_JSON(o.out);
	ASSERT_TRUE(strstr(o.out, "\"umm\": {\"ran\": true, \"done\": true"));
	if (strstr(o.out, "\"interfered\": true")) {
		/* the host's KSM is shared: another user's knobs are not a umm bug */
		TAP_DIAG("skipped the comparison: someone else drove %s meanwhile", KSM_DIR);
		outcome_free(&o);
		return true;
	}
	ASSERT_TRUE(strstr(o.out, "\"kernel\": {\"ran\": true, \"done\": true"));
	ASSERT_JNUM(o.out, "\"umm\"", "ksm_merging_pages", &um);
	ASSERT_JNUM(o.out, "\"kernel\"", "ksm_merging_pages", &km);
	ASSERT_JNUM(o.out, NULL, "image_pages", &v);
	/* three copies of the image: every image page merges, on both sides */
	ASSERT_GE(um, 3 * v);
	ASSERT_EQ(um, km);
	/* the kernel's figures are this process's own: the same KSM pages */
	ASSERT_JNUM(o.out, "\"umm\"", "pages_shared", &um);
	ASSERT_JNUM(o.out, "\"kernel\"", "pages_shared", &km);
	ASSERT_EQ(um, km);
	ASSERT_JNUM(o.out, "\"umm\"", "pages_sharing", &um);
	ASSERT_JNUM(o.out, "\"kernel\"", "pages_sharing", &km);
	ASSERT_EQ(um, km);
	outcome_free(&o);
	/* the scan-time advisor on both sides; advisor_mode and pages_to_scan come back */
	if (strcmp(before.advisor_mode, "-")) {
		const char *args[] = { "kernel-compare", "--copies", "2", "--image-size", "256K",
				       "--data-pages", "64", "--advisor_mode", "scan-time",
				       "--advisor_target_scan_time", "1", "--json", NULL };

		ASSERT_TRUE(run_umm(&o, args));
		if (o.status && !strstr(o.out, "\"interfered\": true"))
			show(args, &o);
		ASSERT_TRUE(o.status == 0 || strstr(o.out, "\"interfered\": true"));
		ASSERT_JSON(o.out);
		ASSERT_TRUE(strstr(o.out, "\"advisor_mode\": \"scan-time\""));
		ksm_save(&after);
		ASSERT_EQ(ksm_long("run"), 0);
		ASSERT_TRUE(!strcmp(before.advisor_mode, after.advisor_mode));
		ASSERT_TRUE(!strcmp(before.pages_to_scan, after.pages_to_scan));
		ASSERT_TRUE(!strcmp(before.sleep_millisecs, after.sleep_millisecs));
		if (!strstr(o.out, "\"interfered\": true")) {
			ASSERT_JNUM(o.out, "\"umm\"", "ksm_merging_pages", &um);
			ASSERT_JNUM(o.out, "\"kernel\"", "ksm_merging_pages", &km);
			ASSERT_EQ(um, km);
		}
		outcome_free(&o);
	}
	/* the table, and the same again without permission (as nobody) */
	RUN_EXPECT(&o, 0, "kernel-compare", "--copies", "2", "--image-size", "64K",
		   "--data-pages", "16");
	ASSERT_TRUE(find_line(o.out, "pages_sharing "));
	ASSERT_TRUE(find_line(o.out, "seconds to converge "));
	ASSERT_TRUE(find_line(o.out, "ksmd CPU seconds "));
	outcome_free(&o);
	run_as = 65534;
	{
		const char *args[] = { "kernel-compare", "--copies", "2", "--image-size", "64K", NULL };

		ASSERT_TRUE(run_umm(&o, args));
	}
	run_as = 0;
	if (o.status != 126) {
		ASSERT_EQ(o.status, 1);
		ASSERT_EQ(o.out_len, 0);
		ASSERT_EQ(count_lines(o.err), 1);
		ASSERT_TRUE(strstr(o.err, "no permission to drive the host kernel's KSM"));
	}
	outcome_free(&o);
	ASSERT_EQ(ksm_long("run"), 0);
	return true;
}

/* A signal during the kernel's side: the knobs come back, run = 0. */
static bool test_kernel_compare_signal(void)
{
	struct ksm_saved before, after;
	int po[2], st;
	pid_t pid;

	if (!kernel_ksm_usable() || tap_short()) {
		TAP_DIAG("skipped: %s", tap_short() ? "short mode" : "no usable " KSM_DIR);
		return true;
	}
	ksm_save(&before);
	ASSERT_EQ(pipe2(po, O_CLOEXEC), 0);
	pid = fork();
	ASSERT_TRUE(pid >= 0);
	if (pid == 0) {
		dup2(po[1], 1);
		dup2(po[1], 2);
		/* umm converges fast (many pages per batch); the kernel then crawls */
		execl(umm_path, umm_path, "kernel-compare", "--copies", "2", "--image-size", "1M",
		      "--pages-to-scan", "7", "--sleep-millisecs", "1000", (char *)NULL);
		_exit(127);
	}
	close(po[1]);
	/* wait until the kernel's knob shows our value: the kernel side has started */
	for (int i = 0; i < 300; i++) {
		char v[32];

		if (ksm_get("pages_to_scan", v, sizeof(v)) && !strcmp(v, "7"))
			break;
		usleep(20000);
	}
	usleep(100000);
	kill(pid, SIGINT);
	waitpid(pid, &st, 0);
	close(po[0]);
	ksm_save(&after);
	ASSERT_TRUE(WIFEXITED(st));
	ASSERT_EQ(WEXITSTATUS(st), 1);
	ASSERT_EQ(ksm_long("run"), 0);
	ASSERT_TRUE(!strcmp(before.pages_to_scan, after.pages_to_scan));
	ASSERT_TRUE(!strcmp(before.sleep_millisecs, after.sleep_millisecs));
	return true;
}

/* ---- make install ---- */

static const char outside_program[] =
	"#include <stdio.h>\n#include <string.h>\n#include <umm/umm.h>\n"
	"int main(void)\n{\n"
	"\tstruct umm_config cfg;\n\tstruct umm *u;\n\tstruct umm_mm *mm;\n"
	"\tuint64_t a;\n\tchar buf[6] = \"\";\n"
	"\tumm_config_init(&cfg);\n\tcfg.phys_bytes = 4 << 20;\n"
	"\tif (umm_create(&cfg, &u) || umm_mm_create(u, &mm))\n\t\treturn 1;\n"
	"\tif (umm_mmap(mm, 0, 4096, UMM_PROT_READ | UMM_PROT_WRITE,\n"
	"\t\t     UMM_MAP_PRIVATE | UMM_MAP_ANONYMOUS, NULL, 0, &a))\n\t\treturn 1;\n"
	"\tif (umm_write(mm, a, \"hello\", 5) != 5 || umm_read(mm, a, buf, 5) != 5)\n\t\treturn 1;\n"
	"\tumm_mm_exit(mm);\n\tumm_destroy(u);\n"
	"\tprintf(\"%s\\n\", buf);\n\treturn strcmp(buf, \"hello\") != 0;\n}\n";

static bool test_install(void)
{
	char builddir[PATH_MAX], srcdir[PATH_MAX], dir[64], cmd[4 * PATH_MAX];
	char *slash;
	struct stat st;

#ifdef UMM_SANITIZE
	TAP_DIAG("skipped: sanitizer build (an outside program cannot link its objects)");
	return true;
#endif
	if (system("command -v cc >/dev/null 2>&1 && command -v pkg-config >/dev/null 2>&1")) {
		TAP_DIAG("skipped: no cc or pkg-config");
		return true;
	}
	snprintf(builddir, sizeof(builddir), "%s", umm_path);
	slash = strrchr(builddir, '/');
	ASSERT_TRUE(slash);
	*slash = 0;			/* .../build */
	snprintf(srcdir, sizeof(srcdir), "%s", builddir);
	slash = strrchr(srcdir, '/');
	ASSERT_TRUE(slash);
	*slash = 0;			/* the source tree */
	snprintf(cmd, sizeof(cmd), "%s/Makefile", srcdir);
	if (access(cmd, R_OK)) {
		TAP_DIAG("skipped: no Makefile above %s", builddir);
		return true;
	}
	ASSERT_TRUE(make_tmpdir(dir, sizeof(dir)));
	snprintf(cmd, sizeof(cmd), "make -s -C '%s' BUILD='%s' PREFIX='%s/usr' install >'%s/make.log' 2>&1",
		 srcdir, slash + 1, dir, dir);
	if (system(cmd)) {
		snprintf(cmd, sizeof(cmd), "sed 's/^/# /' '%s/make.log'", dir);
		ASSERT_EQ(system(cmd), 0);
		ASSERT_TRUE(false);
	}
	snprintf(cmd, sizeof(cmd), "%s/usr/share/man/man1/umm.1", dir);
	ASSERT_EQ(stat(cmd, &st), 0);
	snprintf(cmd, sizeof(cmd), "%s/usr/include/umm/umm.h", dir);
	ASSERT_EQ(stat(cmd, &st), 0);
	snprintf(cmd, sizeof(cmd), "grep -qx 'prefix=%s/usr' '%s/usr/lib/pkgconfig/umm.pc'", dir, dir);
	ASSERT_EQ(system(cmd), 0);
	snprintf(cmd, sizeof(cmd), "'%s/usr/bin/umm' --version | grep -q '^umm '", dir);
	ASSERT_EQ(system(cmd), 0);
	snprintf(cmd, sizeof(cmd), "%s/prog.c", dir);
	ASSERT_TRUE(write_file(cmd, outside_program, strlen(outside_program)));
	/* shared, as the .pc says, and static */
	snprintf(cmd, sizeof(cmd),
		 "cd '%s' && export PKG_CONFIG_PATH='%s/usr/lib/pkgconfig' && "
		 "cc -o prog prog.c $(pkg-config --cflags --libs umm) && "
		 "LD_LIBRARY_PATH='%s/usr/lib' ./prog | grep -qx hello && "
		 "cc -static-libgcc -o prog-static prog.c $(pkg-config --cflags umm) "
		 "'%s/usr/lib/libumm.a' $(pkg-config --libs --static umm | sed 's/-lumm//') && "
		 "./prog-static | grep -qx hello", dir, dir, dir, dir);
	if (system(cmd))
		TAP_DIAG("building against the installed umm.pc failed: %s", cmd);
	ASSERT_EQ(system(cmd), 0);
	remove_tree(dir);
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
	RUN_TEST(test_other_help);
	RUN_TEST(test_version);
	RUN_TEST(test_bad_usage);
	RUN_TEST(test_runtime_einval);
	RUN_TEST(test_runtime_enomem);
	RUN_TEST(test_run_exact);
	RUN_TEST(test_run_small);
	RUN_TEST(test_run_json);
	RUN_TEST(test_run_progress);
	RUN_TEST(test_run_knobs);
	RUN_TEST(test_run_swap);
	RUN_TEST(test_run_plot);
	RUN_TEST(test_run_signal);
	RUN_TEST(test_run_default);
	RUN_TEST(test_estimate_process);
	RUN_TEST(test_estimate_unreadable);
	RUN_TEST(test_estimate_all);
	RUN_TEST(test_kernel_compare);
	RUN_TEST(test_kernel_compare_signal);
	RUN_TEST(test_install);
	return tap_done();
}
