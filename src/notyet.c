// SPDX-License-Identifier: MIT
/*
 * notyet.c - entry points of the API contract whose subsystems are not
 * built yet (MMU notifiers, KSM, reclaim/swap/migration, file mappings).
 * They exist so that programs written against the whole contract link;
 * each returns -ENOSYS (or does nothing, for void functions) until its
 * subsystem lands and replaces it here.
 */
#include "internal.h"

int umm_ksm_get_params(struct umm *u, struct umm_ksm_params *p) { return -ENOSYS; }
int umm_ksm_set_params(struct umm *u, const struct umm_ksm_params *p) { return -ENOSYS; }
int umm_ksm_set_run(struct umm *u, int run) { return -ENOSYS; }
int umm_ksm_scan(struct umm *u, unsigned long nr_pages) { return -ENOSYS; }
void umm_ksm_get_stats(struct umm *u, struct umm_ksm_stats *s)
{
	if (s)
		memset(s, 0, sizeof(*s));
}
int umm_mm_set_merge_any(struct umm_mm *mm, bool on) { return -ENOSYS; }
void umm_mm_get_ksm_stat(struct umm_mm *mm, struct umm_mm_ksm_stat *st)
{
	if (st)
		memset(st, 0, sizeof(*st));
}

