// SPDX-License-Identifier: MIT
/*
 * main.c - the umm command: finds the subcommand in the table and runs it.
 *
 *   umm COMMAND [OPTIONS]     run a subcommand (umm COMMAND --help for its options)
 *   umm help [COMMAND]        the overview, or one command's help
 *   umm --help | --version
 *
 * Exit statuses: 0 success, 1 a check or the library failed, 2 bad usage.
 */
#include <string.h>

#include "cli.h"

static int cmd_help(int argc, char **argv);

static const struct cli_cmd commands[] = {
	{ "run", cmd_run, "guests boot the same image, ksmd merges while vCPUs run; check, report" },
	{ "estimate", cmd_estimate, "what KSM would save on this machine's processes now" },
	{ "kernel-compare", cmd_kernel_compare, "the same content through umm's KSM and the host kernel's" },
	{ "help", cmd_help, "show this help, or a command's help (umm help run)" },
	{ NULL, NULL, NULL },
};

static const struct cli_cmd *find_cmd(const char *name)
{
	const struct cli_cmd *c;

	for (c = commands; c->name; c++)
		if (!strcmp(c->name, name))
			return c;
	return NULL;
}

static void print_usage(FILE *f)
{
	const struct cli_cmd *c;

	fprintf(f, "usage: umm COMMAND [OPTIONS]\n"
		   "       umm help [COMMAND]\n"
		   "       umm --help | --version\n\n"
		   "umm runs Linux's memory-management core (reverse mapping, MMU notifiers,\n"
		   "same-page merging) in user space, on a simulated machine.\n\n"
		   "commands:\n");
	for (c = commands; c->name; c++)
		fprintf(f, "  %-15s %s\n", c->name, c->summary);
	fprintf(f, "\nRun 'umm COMMAND --help' for a command's options.\n"
		   "Exit status: 0 success, 1 a check or the library failed, 2 bad usage.\n");
}

/* `umm help [COMMAND]`: the overview, or COMMAND's own --help. */
static int cmd_help(int argc, char **argv)
{
	const struct cli_cmd *c;
	char help[] = "--help";
	char *av[3];

	if (argc < 2) {
		print_usage(stdout);
		return CLI_EXIT_OK;
	}
	if (argc > 2) {
		cli_error("help", "unexpected argument '%s'", argv[2]);
		return CLI_EXIT_USAGE;
	}
	c = find_cmd(argv[1]);
	if (!c) {
		cli_error("help", "unknown command '%s' (try 'umm --help')", argv[1]);
		return CLI_EXIT_USAGE;
	}
	if (c->fn == cmd_help) {
		print_usage(stdout);
		return CLI_EXIT_OK;
	}
	av[0] = argv[1];
	av[1] = help;
	av[2] = NULL;
	return c->fn(2, av);
}

int main(int argc, char **argv)
{
	const struct cli_cmd *c;
	const char *name;

	if (argc < 2) {
		cli_error(NULL, "no command given (try 'umm --help')");
		return CLI_EXIT_USAGE;
	}
	name = argv[1];
	if (!strcmp(name, "--help") || !strcmp(name, "-h")) {
		print_usage(stdout);
		return CLI_EXIT_OK;
	}
	if (!strcmp(name, "--version") || !strcmp(name, "-V")) {
		printf("umm %s\n", UMM_CLI_VERSION);
		return CLI_EXIT_OK;
	}
	c = find_cmd(name);
	if (!c) {
		if (name[0] == '-')
			cli_error(NULL, "unknown option '%s' (try 'umm --help')", name);
		else
			cli_error(NULL, "unknown command '%s' (try 'umm --help')", name);
		return CLI_EXIT_USAGE;
	}
	return c->fn(argc - 1, argv + 1);
}
