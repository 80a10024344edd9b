// SPDX-License-Identifier: MIT
/*
 * t_shmem_swap.c - shared anonymous memory goes to swap and comes back:
 * its pages leave their slot in the page cache, every mapping (across
 * forks) faults the same page back in, slots are freed when the object
 * goes, and concurrent users see one page, never two.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tap.h"
#define FIX_VALIDATE	VALIDATE_ALL
#include "fixture.h"

static bool shm_machine(struct fix *f, const char *name, size_t phys, size_t swap)
{
	struct umm_config cfg;

	umm_config_init(&cfg);
	cfg.phys_bytes = phys;
	cfg.swap_path = tmp_path(name);
	cfg.swap_bytes = swap;
	ASSERT_OK(umm_create(&cfg, &f->u));
	ASSERT_OK(umm_mm_create(f->u, &f->mm));
	return true;
}

static struct umm_vmscan_stat vstat(struct umm *u)
{
	struct umm_vmscan_stat v;

	umm_get_vmscan_stat(u, &v);
	return v;
}

static uint64_t stamp(unsigned long page, unsigned int gen)
{
	return ((uint64_t)page << 16) | gen;
}

/* Twice memory in shared anonymous pages, shared with a child: both see every write. */
static bool test_overcommit_shared(void)
{
	const unsigned long n = 1024;		/* 4 MiB in a 2 MiB machine */
	struct umm_vmscan_stat v;
	struct umm_mm *child;
	struct fix f;

	ASSERT_TRUE(shm_machine(&f, "swap-over", 2 << 20, 16 << 20));
	ASSERT_OK(map_at(f.mm, AT(0), n, RW, SHRD));
	for (unsigned long p = 0; p < n; p++) {
		uint64_t w = stamp(p, 1);

		ASSERT_EQ(umm_write(f.mm, AT(p) + 8, &w, 8), 8);
	}
	ASSERT_OK(umm_mm_fork(f.mm, &child));
	for (unsigned long p = 0; p < n; p += 2) {
		uint64_t w = stamp(p, 2);

		ASSERT_EQ(umm_write(child, AT(p) + 8, &w, 8), 8);
	}
	for (unsigned long p = 0; p < n; p++) {
		uint64_t a = 0, b = 0, want = stamp(p, p % 2 ? 1 : 2);

		ASSERT_EQ(umm_read(f.mm, AT(p) + 8, &a, 8), 8);
		ASSERT_EQ(umm_read(child, AT(p) + 8, &b, 8), 8);
		ASSERT_EQ(a, want);
		ASSERT_EQ(b, want);
	}
	v = vstat(f.u);
	TAP_DIAG("pswpout %" PRIu64 " pswpin %" PRIu64 " swap free %" PRIu64 " of %" PRIu64,
		 v.pswpout, v.pswpin, v.swap_free, v.swap_slots);
	ASSERT_TRUE(v.pswpout > 0 && v.pswpin > 0);
	ASSERT_EQ(v.nr_unevictable, 0);
	ASSERT_TRUE(machine_valid(f.u));
	umm_mm_exit(child);
	ASSERT_TRUE(machine_valid(f.u));
	umm_mm_exit(f.mm);
	f.mm = NULL;
	/* the object is gone: so are its slots */
	v = vstat(f.u);
	ASSERT_EQ(v.swap_free, v.swap_slots);
	return fix_fini(&f);
}

/* Without swap, shmem pages stay in memory on the unevictable list. */
static bool test_no_swap_unevictable(void)
{
	struct fix f;
	unsigned long got;

	ASSERT_TRUE(fix_init(&f));
	ASSERT_OK(map_at(f.mm, AT(0), 8, RW, SHRD));
	for (int p = 0; p < 8; p++)
		ASSERT_TRUE(put_byte(f.mm, AT(p), (uint8_t)p));
	ASSERT_OK(umm_reclaim(f.u, 64, &got));
	ASSERT_EQ(vstat(f.u).nr_unevictable, 8);
	for (int p = 0; p < 8; p++)
		ASSERT_EQ(byte_at(f.mm, AT(p)), p);
	return fix_fini(&f);
}

/*
 * A shmem page reclaim could not free (someone held a reference) stays in
 * the page cache and the swap cache at once; when the object goes, it
 * leaves both and its slot is free again.
 */
static bool test_truncate_swapcache(void)
{
	struct umm_vmscan_stat v;
	struct umm_page *held;
	struct fix f;

	ASSERT_TRUE(shm_machine(&f, "swap-trunc", 4 << 20, 4 << 20));
	ASSERT_OK(map_at(f.mm, AT(0), 4, RW, SHRD));
	for (int p = 0; p < 4; p++)
		ASSERT_TRUE(put_byte(f.mm, AT(p), (uint8_t)(p + 1)));
	ASSERT_OK(umm_get_user_page(f.mm, AT(1), 0, &held));
	ASSERT_OK(umm_madvise(f.mm, AT(0), PG(4), UMM_MADV_PAGEOUT));
	v = vstat(f.u);
	ASSERT_EQ(v.pswpout, 4);		/* written, but page 1 could not go */
	ASSERT_EQ(v.swap_free, v.swap_slots - 4);
	ASSERT_EQ(*(uint8_t *)umm_page_address(held), 2);
	umm_put_page(held);
	ASSERT_TRUE(machine_valid(f.u));
	ASSERT_OK(umm_munmap(f.mm, AT(0), PG(4)));
	v = vstat(f.u);
	ASSERT_EQ(v.swap_free, v.swap_slots);
	ASSERT_TRUE(machine_valid(f.u));
	return fix_fini(&f);
}

/*
 * umm_pagemap says SWAPPED for a shared anonymous page whose object holds
 * it in swap, in every mm that maps the object (PTE empty or not), and
 * PRESENT once it is faulted back:
 *
 *   P: SSSS....   after PAGEOUT of pages 0-3 (4-7 never touched)
 *   C: SSSS....   the child (fork copies no shared PTEs)
 *   C reads 0:    C P...., P -SSS: the page is in memory, P's PTE empty
 */
static bool test_pagemap_swapped(void)
{
	struct umm_mm *child;
	struct fix f;

	ASSERT_TRUE(shm_machine(&f, "swap-pagemap", 4 << 20, 4 << 20));
	ASSERT_OK(map_at(f.mm, AT(0), 8, RW, SHRD));
	for (int p = 0; p < 4; p++)
		ASSERT_TRUE(put_byte(f.mm, AT(p), (uint8_t)(p + 1)));
	ASSERT_OK(umm_mm_fork(f.mm, &child));
	ASSERT_OK(umm_madvise(f.mm, AT(0), PG(4), UMM_MADV_PAGEOUT));
	ASSERT_EQ(vstat(f.u).pswpout, 4);
	for (int p = 0; p < 8; p++) {
		unsigned int want = p < 4 ? UMM_PI_SWAPPED : 0;

		ASSERT_EQ(pinfo(f.mm, AT(p)).flags, want);
		ASSERT_EQ(pinfo(child, AT(p)).flags, want);
	}
	ASSERT_EQ(byte_at(child, AT(0)), 1);
	ASSERT_TRUE(pinfo(child, AT(0)).flags & UMM_PI_PRESENT);
	ASSERT_EQ(pinfo(f.mm, AT(0)).flags, 0);
	ASSERT_EQ(pinfo(f.mm, AT(1)).flags, UMM_PI_SWAPPED);
	for (int p = 0; p < 4; p++)
		ASSERT_EQ(byte_at(f.mm, AT(p)), p + 1);
	for (int p = 0; p < 4; p++)
		ASSERT_TRUE(pinfo(f.mm, AT(p)).flags & UMM_PI_PRESENT);
	ASSERT_EQ(pinfo(child, AT(1)).flags, 0);
	ASSERT_TRUE(machine_valid(f.u));
	umm_mm_exit(child);
	return fix_fini(&f);
}

/*
 * Threads bump counters in shared pages of two mms (parent and child)
 * while memory is a quarter of them: a page faulted back twice would
 * split the counter and lose increments.
 */
struct bump {
	struct umm_mm *mm;
	unsigned long npages, rounds;
	unsigned int id;
	atomic_int bad;
};

static void *bumper(void *arg)
{
	struct bump *b = arg;

	for (unsigned long r = 0; r < b->rounds; r++) {
		for (unsigned long p = 0; p < b->npages; p++) {
			uint64_t addr = AT(p) + 64 * b->id, v;

			if (umm_read(b->mm, addr, &v, 8) != 8 || v != r) {
				atomic_store(&b->bad, 1);
				return NULL;
			}
			v = r + 1;
			if (umm_write(b->mm, addr, &v, 8) != 8) {
				atomic_store(&b->bad, 1);
				return NULL;
			}
		}
	}
	return NULL;
}

static bool test_concurrent(void)
{
	const unsigned long n = 512;
	struct bump b[2] = { 0 };
	pthread_t th[2];
	struct umm_mm *child;
	struct fix f;

	ASSERT_TRUE(shm_machine(&f, "swap-conc", 1 << 20, 8 << 20));
	ASSERT_OK(map_at(f.mm, AT(0), n, RW, SHRD));
	for (unsigned long p = 0; p < n; p++)
		ASSERT_TRUE(put_byte(f.mm, AT(p) + 200, 1));	/* the pages exist */
	ASSERT_OK(umm_mm_fork(f.mm, &child));
	for (int i = 0; i < 2; i++) {
		b[i] = (struct bump){ .mm = i ? child : f.mm, .npages = n,
				      .rounds = tap_short() ? 2 : 6, .id = (unsigned int)i };
		ASSERT_OK(-pthread_create(&th[i], NULL, bumper, &b[i]));
	}
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	ASSERT_EQ(atomic_load(&b[0].bad), 0);
	ASSERT_EQ(atomic_load(&b[1].bad), 0);
	/* each thread's counters, seen from the other mm too */
	for (unsigned long p = 0; p < n; p++)
		for (int i = 0; i < 2; i++) {
			uint64_t v = 0;

			ASSERT_EQ(umm_read(i ? f.mm : child, AT(p) + 64 * i, &v, 8), 8);
			ASSERT_EQ(v, b[i].rounds);
		}
	ASSERT_TRUE(vstat(f.u).pswpout > 0);
	ASSERT_TRUE(machine_valid(f.u));
	umm_mm_exit(child);
	return fix_fini(&f);
}

int main(void)
{
	if (!tmp_init("shmem-swap")) {
		printf("1..0 # SKIP mkdtemp: %s\n", strerror(errno));
		return 0;
	}
	RUN_TEST(test_overcommit_shared);
	RUN_TEST(test_no_swap_unevictable);
	RUN_TEST(test_pagemap_swapped);
	RUN_TEST(test_truncate_swapcache);
	RUN_TEST(test_concurrent);
	tmp_cleanup();
	return tap_done();
}
