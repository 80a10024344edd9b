// SPDX-License-Identifier: MIT
/*
 * notyet.c - entry points of the API contract whose subsystems are not
 * built yet (MMU notifiers, reclaim/swap/migration, file mappings).
 * They exist so that programs written against the whole contract link;
 * each returns -ENOSYS (or does nothing, for void functions) until its
 * subsystem lands and replaces it here.
 */
#include "internal.h"

