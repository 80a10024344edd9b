// SPDX-License-Identifier: MIT
/*
 * t_pkgconfig.c - a program outside the project builds against the build
 * tree through pkg-config, as DESIGN.md promises:
 *
 *   PKG_CONFIG_PATH=build pkg-config --cflags --libs --static umm
 *
 * The build directory is the one above this binary (build/tests/t_pkgconfig
 * -> build/).  Skipped (exit 77) in the sanitizer trees, whose objects need
 * the sanitizer runtime an outside program does not link, and when there is
 * no C compiler or pkg-config.  The skip reason is printed as a TAP comment:
 * tests/runner.sh prints the "1..0 # SKIP" plan itself.
 */
#include <libgen.h>
#include <limits.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "tap.h"

static char builddir[PATH_MAX];
static char tmpdir[] = "/tmp/umm-pkgconfig-XXXXXX";

/* The outside program: a machine, a mapping, a write, a read, teardown. */
static const char outside_program[] =
	"#include <string.h>\n"
	"#include <stdio.h>\n"
	"#include <umm/umm.h>\n"
	"\n"
	"int main(void)\n"
	"{\n"
	"\tstatic const char msg[] = \"hello from outside\";\n"
	"\tstruct umm_config cfg;\n"
	"\tstruct umm_mm *mm;\n"
	"\tstruct umm *u;\n"
	"\tuint64_t addr;\n"
	"\tchar buf[sizeof(msg)];\n"
	"\n"
	"\tumm_config_init(&cfg);\n"
	"\tcfg.phys_bytes = 4u << 20;\n"
	"\tif (umm_create(&cfg, &u))\n"
	"\t\treturn 10;\n"
	"\tif (umm_mm_create(u, &mm))\n"
	"\t\treturn 11;\n"
	"\tif (umm_mmap(mm, 0, 2 * UMM_PAGE_SIZE, UMM_PROT_READ | UMM_PROT_WRITE,\n"
	"\t\t     UMM_MAP_PRIVATE | UMM_MAP_ANONYMOUS, NULL, 0, &addr))\n"
	"\t\treturn 12;\n"
	"\t/* across the page boundary */\n"
	"\tif (umm_write(mm, addr + UMM_PAGE_SIZE - 5, msg, sizeof(msg)) != (ssize_t)sizeof(msg))\n"
	"\t\treturn 13;\n"
	"\tif (umm_read(mm, addr + UMM_PAGE_SIZE - 5, buf, sizeof(buf)) != (ssize_t)sizeof(buf))\n"
	"\t\treturn 14;\n"
	"\tif (memcmp(buf, msg, sizeof(msg)))\n"
	"\t\treturn 15;\n"
	"\tumm_mm_exit(mm);\n"
	"\tif (umm_leak_check(u, NULL, NULL) != 0)\n"
	"\t\treturn 16;\n"
	"\tumm_destroy(u);\n"
	"\tputs(\"outside program ok\");\n"
	"\treturn 0;\n"
	"}\n";

/* Run @cmd through the shell; its stdout (up to @len - 1 bytes) to @out. */
static int run(const char *cmd, char *out, size_t len)
{
	size_t n = 0;
	FILE *p;
	int st;

	p = popen(cmd, "r");
	if (!p)
		return -1;
	if (out && len) {
		n = fread(out, 1, len - 1, p);
		out[n] = 0;
		while (n && (out[n - 1] == '\n' || out[n - 1] == ' '))
			out[--n] = 0;
	} else {
		char sink[256];

		while (fread(sink, 1, sizeof(sink), p) > 0)
			;
	}
	st = pclose(p);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static bool have(const char *tool)
{
	char cmd[256];

	snprintf(cmd, sizeof(cmd), "command -v %s >/dev/null 2>&1", tool);
	return run(cmd, NULL, 0) == 0;
}

static int pkg_config(const char *args, char *out, size_t len)
{
	char cmd[PATH_MAX + 256];

	snprintf(cmd, sizeof(cmd), "PKG_CONFIG_PATH='%s' pkg-config %s umm 2>&1", builddir, args);
	return run(cmd, out, len);
}

static bool file_exists(const char *dir, const char *name)
{
	char path[PATH_MAX * 2];
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return stat(path, &st) == 0;
}

/* Does some "-I<dir>" in @flags hold umm/umm.h? */
static bool has_include_dir(const char *flags)
{
	char copy[4096], *save, *tok;

	snprintf(copy, sizeof(copy), "%s", flags);
	for (tok = strtok_r(copy, " ", &save); tok; tok = strtok_r(NULL, " ", &save))
		if (!strncmp(tok, "-I", 2) && file_exists(tok + 2, "umm/umm.h"))
			return true;
	return false;
}

/* Is some "-L<dir>" in @flags the build directory, holding libumm.a? */
static bool has_build_libdir(const char *flags)
{
	char copy[4096], real[PATH_MAX], *save, *tok;

	snprintf(copy, sizeof(copy), "%s", flags);
	for (tok = strtok_r(copy, " ", &save); tok; tok = strtok_r(NULL, " ", &save))
		if (!strncmp(tok, "-L", 2) && realpath(tok + 2, real) &&
		    !strcmp(real, builddir) && file_exists(real, "libumm.a"))
			return true;
	return false;
}

static bool test_pkg_config_finds_umm(void)
{
	char out[256];

	ASSERT_EQ(pkg_config("--exists", NULL, 0), 0);
	ASSERT_EQ(pkg_config("--modversion", out, sizeof(out)), 0);
	TAP_DIAG("umm version %s", out);
	ASSERT_TRUE(out[0] >= '0' && out[0] <= '9');
	return true;
}

static bool test_flags_point_at_the_build_tree(void)
{
	char flags[4096];

	ASSERT_EQ(pkg_config("--cflags --libs --static", flags, sizeof(flags)), 0);
	TAP_DIAG("flags: %s", flags);
	ASSERT_TRUE(has_include_dir(flags));
	ASSERT_TRUE(has_build_libdir(flags));
	ASSERT_TRUE(strstr(flags, "-lumm") != NULL);
	/* --static brings in what libumm.a needs. */
	ASSERT_TRUE(strstr(flags, "-lurcu") != NULL);
	ASSERT_TRUE(strstr(flags, "-lxxhash") != NULL);
	return true;
}

static bool write_program(void)
{
	char path[PATH_MAX];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/prog.c", tmpdir);
	fp = fopen(path, "w");
	ASSERT_TRUE(fp != NULL);
	ASSERT_EQ(fwrite(outside_program, 1, sizeof(outside_program) - 1, fp),
		  sizeof(outside_program) - 1);
	ASSERT_EQ(fclose(fp), 0);
	return true;
}

/*
 * Compile prog.c in the temp dir into @exe, with the pkg-config flags
 * between @pre and @post; strict C11 and no warnings, since the public
 * header is for everyone.
 */
static bool build_program(const char *exe, const char *pre, const char *post)
{
	char cmd[PATH_MAX * 3], out[8192];
	int r;

	ASSERT_TRUE(write_program());
	snprintf(cmd, sizeof(cmd),
		 "cd '%s' && cc -std=c11 -Wall -Wextra -Werror -o %s prog.c %s "
		 "$(PKG_CONFIG_PATH='%s' pkg-config --cflags --libs --static umm) %s 2>&1",
		 tmpdir, exe, pre, builddir, post);
	r = run(cmd, out, sizeof(out));
	if (r)
		TAP_DIAG("%s\n%s", cmd, out);
	ASSERT_EQ(r, 0);
	ASSERT_TRUE(file_exists(tmpdir, exe));
	return true;
}

static bool run_program(const char *exe)
{
	char cmd[PATH_MAX + 64], out[1024];
	int r;

	ASSERT_TRUE(file_exists(tmpdir, exe));
	/* The library is found through the rpath the .pc gives, not the environment. */
	snprintf(cmd, sizeof(cmd), "cd / && env -u LD_LIBRARY_PATH '%s/%s' 2>&1", tmpdir, exe);
	r = run(cmd, out, sizeof(out));
	if (r)
		TAP_DIAG("exit %d: %s", r, out);
	ASSERT_EQ(r, 0);
	ASSERT_TRUE(strcmp(out, "outside program ok") == 0);
	return true;
}

/* As the flags come: -lumm finds libumm.so (the linker's default). */
static bool test_outside_program_builds_shared(void)
{
	return build_program("prog", "", "");
}

static bool test_outside_program_runs_shared(void)
{
	return run_program("prog");
}

/* The same flags with the archives: -lumm finds libumm.a. */
static bool test_outside_program_builds_static(void)
{
	return build_program("prog-static", "-Wl,-Bstatic", "-Wl,-Bdynamic");
}

static bool test_outside_program_runs_static(void)
{
	return run_program("prog-static");
}

static void cleanup(void)
{
	char cmd[PATH_MAX];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	run(cmd, NULL, 0);
}

int main(int argc, char **argv)
{
	char self[PATH_MAX], *bd;
	const char *base;

	if (argc < 1 || !realpath(argv[0], self)) {
		printf("# cannot resolve %s\n", argc ? argv[0] : "argv[0]");
		return 1;
	}
	bd = dirname(dirname(self));
	snprintf(builddir, sizeof(builddir), "%s", bd);
	base = strrchr(builddir, '/');
	base = base ? base + 1 : builddir;
#ifdef UMM_SANITIZE
	if (1) {
#else
	if (strstr(base, "asan") || strstr(base, "tsan") || strstr(base, "ubsan")) {
#endif
		printf("# SKIP %s is a sanitizer build: its library needs the sanitizer runtime\n",
		       base);
		return 77;
	}
	if (!have("cc") || !have("pkg-config")) {
		printf("# SKIP no cc or pkg-config on PATH\n");
		return 77;
	}
	if (!file_exists(builddir, "umm-uninstalled.pc")) {
		printf("# %s/umm-uninstalled.pc is missing: run make first\n", builddir);
		printf("not ok 1 - umm-uninstalled.pc exists\n1..1\n");
		return 1;
	}
	if (!mkdtemp(tmpdir)) {
		printf("# mkdtemp: %s\n", strerror(errno));
		return 1;
	}
	RUN_TEST(test_pkg_config_finds_umm);
	RUN_TEST(test_flags_point_at_the_build_tree);
	RUN_TEST(test_outside_program_builds_shared);
	RUN_TEST(test_outside_program_runs_shared);
	RUN_TEST(test_outside_program_builds_static);
	RUN_TEST(test_outside_program_runs_static);
	cleanup();
	return tap_done();
}
