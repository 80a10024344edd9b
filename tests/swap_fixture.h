/* SPDX-License-Identifier: MIT */
/*
 * swap_fixture.h - what the reclaim, swap and migration tests share
 * (t_swap.c, t_migrate.c, t_reclaim_stress.c), included after tap.h and
 * fixture.h: machines with a swap file in the test's temporary directory,
 * a probe of which parts of the engine exist yet, TAP skips for the parts
 * that do not, and the counters these tests read.
 *
 * Validation: umm_validate() wants a quiescent machine, and kswapd is the
 * machine's own thread, so the tests validate through settled_valid(),
 * which first waits for kswapd to go idle.  t_swap's
 * test_validate_kswapd_busy checks that umm_validate() holds while kswapd
 * works, which is the engine's business.
 *
 * Skips: the engine grows subsystem by subsystem, and an entry point whose
 * subsystem is not there returns -ENOSYS (src/notyet.c).  main() probes
 * once (probe_engine()); a test needing a missing part says so with
 * NEED(cap) and is reported "ok N - name # SKIP ...".  Only the probe may
 * see -ENOSYS: inside a test that did not skip, -ENOSYS is a failure.
 */
#ifndef UMM_TESTS_SWAP_FIXTURE_H
#define UMM_TESTS_SWAP_FIXTURE_H

#include <sys/stat.h>

#include "fixture.h"
#include "settle.h"

/* ---- which parts of the engine exist ---- */

struct engine_caps {
	bool swap;		/* umm_create() takes a swap_path */
	bool reclaim;		/* umm_reclaim() */
	bool move;		/* umm_move_pages() */
	bool compact;		/* umm_compact() */
	bool inject;		/* umm_fault_inject() */
	bool ksm;		/* umm_ksm_scan() */
};

static struct engine_caps caps;
static const char *skip_reason;

/* Skip the running test unless @cap is there. */
#define NEED(cap) do { \
	if (!caps.cap) { \
		skip_reason = "engine lacks " #cap " (-ENOSYS)"; \
		return true; \
	} } while (0)

/* RUN_TEST that reports a test which called NEED() for a missing part as skipped. */
#define RUN_TEST_CAPS(fn) do { \
	skip_reason = NULL; \
	bool _ok = fn(); \
	tap_n++; \
	if (!_ok) tap_failed++; \
	printf("%s %d - %s%s%s\n", _ok ? "ok" : "not ok", tap_n, #fn, \
	       skip_reason ? " # SKIP " : "", skip_reason ? skip_reason : ""); \
	fflush(stdout); \
} while (0)

/* ---- machines with swap ---- */

/*
 * A machine of @phys bytes in @nodes nodes with a swap file of @swap bytes
 * at tmp_path("swap") (none if @swap is 0): 0 or -errno from umm_create().
 * tmp_init() must have run.
 */
static inline int make_swap_machine(size_t phys, unsigned int nodes, size_t swap,
				    struct umm **u)
{
	struct umm_config cfg;

	umm_config_init(&cfg);
	cfg.phys_bytes = phys;
	cfg.nr_nodes = nodes;
	if (swap) {
		cfg.swap_path = tmp_path("swap");
		cfg.swap_bytes = swap;
	}
	*u = NULL;
	return umm_create(&cfg, u);
}

static inline struct umm_vmscan_stat vstat(struct umm *u)
{
	struct umm_vmscan_stat st;

	memset(&st, 0xff, sizeof(st));
	umm_get_vmscan_stat(u, &st);
	return st;
}

/* Has every swap slot come back? (Printed when not.) */
static inline bool swap_all_free(struct umm *u)
{
	struct umm_vmscan_stat vs = vstat(u);

	if (vs.swap_free != vs.swap_slots)
		TAP_DIAG("swap_free %" PRIu64 " of %" PRIu64 " slots", vs.swap_free,
			 vs.swap_slots);
	return vs.swap_free == vs.swap_slots;
}

/* machine_valid() once the machine has settled. */
static inline bool settled_valid(struct umm *u)
{
	machine_settle(u);
	return machine_valid(u);
}

/* fix_fini() once the machine has settled. */
static inline bool settled_fini(struct fix *f)
{
	machine_settle(f->u);
	return fix_fini(f);
}

/*
 * Ask each part of the engine once, on a throwaway machine, whether it is
 * there.  Anything but -ENOSYS (success, -EINVAL for a request of nothing)
 * means it is.
 */
static inline void probe_engine(void)
{
	struct umm_mm *mm = NULL;
	unsigned long n;
	uint64_t start;
	struct umm *u;
	int status;

	memset(&caps, 0, sizeof(caps));
	if (make_swap_machine(4 << 20, 1, 1 << 20, &u) == 0) {
		caps.swap = true;
		umm_destroy(u);
	}
	if (make_machine(4 << 20, 1, 0, &u))
		return;
	caps.reclaim = umm_reclaim(u, 1, &n) != -ENOSYS;
	caps.compact = umm_compact(u, 0, 1, &start) != -ENOSYS;
	caps.inject = umm_fault_inject(u, UMM_FAULT_SWAP_READ, 0, 0) != -ENOSYS;
	caps.ksm = umm_ksm_scan(u, 1) != -ENOSYS;
	if (umm_mm_create(u, &mm) == 0) {
		uint64_t addr = BASE;

		caps.move = umm_move_pages(mm, 1, &addr, NULL, &status) != -ENOSYS;
		umm_mm_exit(mm);
	}
	umm_destroy(u);
	TAP_DIAG("engine: swap %d reclaim %d move_pages %d compact %d fault_inject %d ksm %d",
		 caps.swap, caps.reclaim, caps.move, caps.compact, caps.inject, caps.ksm);
}

#endif /* UMM_TESTS_SWAP_FIXTURE_H */
