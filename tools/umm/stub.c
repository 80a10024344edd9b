#include "cli.h"
int cmd_estimate(int argc, char **argv) { return 1; }
int cmd_kernel_compare(int argc, char **argv) { return 1; }
