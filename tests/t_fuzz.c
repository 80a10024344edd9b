/* SPDX-License-Identifier: MIT */
/*
 * t_fuzz.c - the fuzzer's short CI run (see fuzz/fuzz_api.c and
 * docs/RELIABILITY.md).
 *
 * Runs build-fuzz/fuzz_api (UMM_FUZZ_BIN overrides) over fuzz/corpus/ for
 * a few seconds with the run's seed, new inputs going to a temporary
 * directory, and checks it found nothing; first it shows that the checks
 * can fail: with UMM_FUZZ_CORRUPT=1 (the model is corrupted after each
 * write) replaying a seed input must abort with a read mismatch.
 *
 * The fuzzer is its own ASan+UBSan build, made by `make fuzz-build` (part
 * of `make test`): this test runs it from the normal build only and skips
 * (exit 77) in the sanitizer builds, and when clang's libFuzzer was not
 * there to build it.  Seconds: UMM_FUZZ_SECONDS, else 20 (10 short, 300
 * long).
 */
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "tap.h"
#include "fixture.h"

static const char *fuzz_bin(void)
{
	const char *b = getenv("UMM_FUZZ_BIN");

	return b && *b ? b : "build-fuzz/fuzz_api";
}

/* Run @argv with @env_extra set (or not); its exit status, output to @log. */
static int run(char *const argv[], const char *env_extra, const char *log)
{
	pid_t pid = fork();
	int st;

	if (pid < 0)
		return -1;
	if (pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);

		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		if (env_extra)
			putenv((char *)env_extra);
		/* libFuzzer's child must not inherit the suite's leak options */
		unsetenv("ASAN_OPTIONS");
		execv(argv[0], argv);
		_exit(127);
	}
	if (waitpid(pid, &st, 0) < 0)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static bool log_has(const char *log, const char *what)
{
	char line[1024];
	bool found = false;
	FILE *f = fopen(log, "r");

	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f))
		found = strstr(line, what) != NULL;
	fclose(f);
	return found;
}

static void log_tail(const char *log, const char *prefix)
{
	char line[1024];
	FILE *f = fopen(log, "r");

	if (!f)
		return;
	while (fgets(line, sizeof(line), f))
		if (!prefix || strstr(line, prefix))
			printf("# %s", line);
	fclose(f);
}

/* The checks fire: a corrupted model must make seed inputs fail (anonymous, file). */
static bool test_detects_corruption(void)
{
	static const char *const inputs[] = { "fuzz/corpus/cow_fork",
					      "fuzz/corpus/file_shared_msync" };

	for (int i = 0; i < 2; i++) {
		char *argv[] = { (char *)fuzz_bin(), (char *)inputs[i], NULL };
		const char *log = tmp_path("corrupt.log");
		int rc = run(argv, "UMM_FUZZ_CORRUPT=1", log);

		TAP_DIAG("%s with a corrupted model: exit %d", inputs[i], rc);
		ASSERT_NE(rc, 0);
		ASSERT_TRUE(log_has(log, ", model "));
	}
	return true;
}

/* Every seed input passes. */
static bool test_corpus_replays(void)
{
	char *argv[] = { (char *)fuzz_bin(), "-runs=0", "fuzz/corpus", NULL };
	const char *log = tmp_path("replay.log");
	int rc = run(argv, NULL, log);

	if (rc)
		log_tail(log, NULL);
	ASSERT_EQ(rc, 0);
	return true;
}

/* A short fuzzing run from the corpus, seeded. */
static bool test_short_run(uint64_t seed)
{
	const char *env = getenv("UMM_FUZZ_SECONDS");
	int secs = env && *env ? atoi(env) : tap_long() ? 300 : tap_short() ? 10 : 20;
	char a_time[32], a_seed[48], a_art[300], newdir[256];
	const char *log = tmp_path("run.log");
	int rc;

	snprintf(newdir, sizeof(newdir), "%s", tmp_path("new"));
	mkdir(newdir, 0755);
	snprintf(a_time, sizeof(a_time), "-max_total_time=%d", secs);
	snprintf(a_seed, sizeof(a_seed), "-seed=%u", (unsigned int)(seed % 4000000000u) + 1);
	snprintf(a_art, sizeof(a_art), "-artifact_prefix=%s/", tmp_dir());
	char *argv[] = { (char *)fuzz_bin(), a_time, a_seed, a_art, "-max_len=512",
			 "-timeout=30", "-print_final_stats=1", newdir, "fuzz/corpus", NULL };
	rc = run(argv, NULL, log);
	log_tail(log, "stat::number_of_executed_units");
	log_tail(log, "DONE");
	if (rc) {
		log_tail(log, NULL);
		TAP_DIAG("the failing input is kept only in %s: copy it before it is removed",
			 tmp_dir());
	}
	ASSERT_EQ(rc, 0);
	return true;
}

int main(void)
{
	uint64_t seed;
	bool ok;

#ifdef UMM_SANITIZE
	/* tests/runner.sh prints the skip plan for exit 77 */
	printf("# the fuzzer is its own ASan+UBSan build: run from build/ only\n");
	return 77;
#endif
	if (access(fuzz_bin(), X_OK)) {
		printf("# %s not built (clang's libFuzzer missing?)\n", fuzz_bin());
		return 77;
	}
	seed = tap_seed();
	if (!tmp_init("fuzz"))
		return 1;
	RUN_TEST(test_detects_corruption);
	RUN_TEST(test_corpus_replays);
	ok = test_short_run(seed);
	tap_n++;
	if (!ok)
		tap_failed++;
	printf("%s %d - test_short_run\n", ok ? "ok" : "not ok", tap_n);
	if (!ok) {
		/* keep the crash input where a human can find it */
		TAP_DIAG("crash inputs left in %s", tmp_dir());
		return tap_done();
	}
	tmp_cleanup();
	return tap_done();
}
