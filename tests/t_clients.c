// SPDX-License-Identifier: MIT
/*
 * t_clients.c - the secondary MMUs of clients/ (shadow: KVM-style shadow
 * page table; tlb: GRU-style device TLB) against umm.
 *
 * Unit tests, for each client: faulting in and read/write coherence with
 * the CPU path; COW after fork (a client write after the fork is not seen
 * by the child); munmap (the client's access then fails); mprotect
 * read-only (a client write faults and fails with -EFAULT, reads go on);
 * MADV_DONTNEED (the client reads zeros); reclaim to swap (the cached
 * translations go, the data comes back through the client); for shadow,
 * aging (a page the vCPU touched makes umm_page_referenced() count it, one
 * it did not touch does not) and the read-only mapping of read faults; for
 * tlb, eviction from a full set; release at umm_mm_exit (accesses fail,
 * nothing left cached); the OOM reaper's non-blockable invalidations, on
 * idle clients and on clients in use (they answer -EAGAIN rather than
 * wait); and clients registered and unregistered in a loop while another
 * thread unmaps, maps and writes (each client counts an end without its
 * start: there must be none).
 *
 * The differential stress (test_stress_*): owner threads, each writing its
 * own pages through one path (umm_write, a vCPU, the device), all reading
 * every page through their path, and a racer forking (children's memory
 * checked for leaked writes), unmapping and mapping, mprotecting,
 * DONTNEEDing and writing a window of its own, calling page_referenced,
 * and running KSM, reclaim (the machine swaps) and migration when the
 * engine has them (probed once: -ENOSYS means not yet).  Each 8-byte word an owner writes names its
 * page, its word and a version; every word anyone reads must be a version
 * of that very word no older than the last write completed before the read
 * began and no newer than the last one begun when it ended, and an owner's
 * reads of its own pages must equal its model exactly.  Runs in phases: at
 * each quiescent point umm_validate(EXACT|RMAP), and every page through
 * every path equals the model.  The machine runs the notifier protocol
 * checker: no violation may be reported.  Nothing may leak.
 *
 * Under TSan, readers stay on their own pages (reading a page another
 * thread writes is a data race by design); children are still checked.
 * Seeded: UMM_SEED=<seed> replays each thread's choices.
 */
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>

#include <umm/umm.h>

#include "shadow.h"
#include "tlb.h"

#define FIX_VALIDATE	VALIDATE_ALL
#include "tap.h"
#include "fixture.h"

#if defined(__SANITIZE_THREAD__)
#define CROSS_READS 0
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define CROSS_READS 0
#endif
#endif
#ifndef CROSS_READS
#define CROSS_READS 1
#endif

static atomic_ulong log_errors;

static void log_hook(void *ctx, int level, const char *msg)
{
	if (level <= UMM_LOG_WARN)
		TAP_DIAG("umm[%d]: %s", level, msg);
	if (level <= UMM_LOG_ERR)
		atomic_fetch_add(&log_errors, 1);
}

/* A machine that runs the protocol checker (and swaps to @swap if set), and one mm. */
static bool cfix_init_swap(struct fix *f, size_t phys, unsigned int nodes, const char *swap)
{
	struct umm_config cfg;

	umm_config_init(&cfg);
	cfg.phys_bytes = phys;
	cfg.nr_nodes = nodes;
	cfg.flags = UMM_CONFIG_NOTIFIER_CHECKER;
	cfg.swap_path = swap;
	cfg.swap_bytes = swap ? 16 << 20 : 0;
	ASSERT_OK(umm_create(&cfg, &f->u));
	umm_set_log(f->u, log_hook, NULL);
	ASSERT_OK(umm_mm_create(f->u, &f->mm));
	return true;
}

static bool cfix_init(struct fix *f, size_t phys, unsigned int nodes)
{
	return cfix_init_swap(f, phys, nodes, NULL);
}

static bool no_violations(struct umm *u)
{
	unsigned long v = umm_mmu_notifier_checker_violations(u);

	if (v)
		TAP_DIAG("the notifier protocol checker reported %lu violation(s)", v);
	return v == 0;
}

/* ---- one interface over the three access paths ---- */

enum path { P_CPU, P_VCPU, P_DEV, NR_PATHS };
static const char *const path_name[] = { "cpu", "vcpu", "dev" };

struct accessor {
	enum path path;
	struct umm_mm *mm;
	struct shadow_vcpu *vcpu;
	struct tlb_dev *dev;
};

static ssize_t acc_read(struct accessor *a, uint64_t addr, void *buf, size_t len)
{
	switch (a->path) {
	case P_VCPU:
		return shadow_vcpu_read(a->vcpu, addr, buf, len);
	case P_DEV:
		return tlb_dev_read(a->dev, addr, buf, len);
	default:
		return umm_read(a->mm, addr, buf, len);
	}
}

static ssize_t acc_write(struct accessor *a, uint64_t addr, const void *buf, size_t len)
{
	switch (a->path) {
	case P_VCPU:
		return shadow_vcpu_write(a->vcpu, addr, buf, len);
	case P_DEV:
		return tlb_dev_write(a->dev, addr, buf, len);
	default:
		return umm_write(a->mm, addr, buf, len);
	}
}

/* ---- unit tests: one client, one machine ---- */

#define U_PAGES	16

struct cl {
	struct fix f;
	struct shadow_vm *vm;
	struct shadow_vcpu *vcpu;
	struct tlb_dev *dev;
	struct accessor a;
};

static bool cl_init_swap(struct cl *c, enum path path, const char *swap)
{
	memset(c, 0, sizeof(*c));
	ASSERT_TRUE(cfix_init_swap(&c->f, 32 << 20, 1, swap));
	ASSERT_OK(map_at(c->f.mm, AT(0), U_PAGES, RW, PRIV));
	c->a.path = path;
	c->a.mm = c->f.mm;
	if (path == P_VCPU) {
		/* one page more than is mapped: the VM may cover holes */
		ASSERT_OK(shadow_vm_create(c->f.mm, AT(0), PG(U_PAGES + 1), &c->vm));
		ASSERT_OK(shadow_vcpu_create(c->vm, &c->vcpu));
		c->a.vcpu = c->vcpu;
	} else {
		ASSERT_OK(tlb_dev_create(c->f.mm, &c->dev));
		c->a.dev = c->dev;
	}
	return true;
}

static bool cl_init(struct cl *c, enum path path)
{
	return cl_init_swap(c, path, NULL);
}

static unsigned long cl_unpaired(struct cl *c)
{
	if (c->vm) {
		struct shadow_stats st;

		shadow_vm_stats(c->vm, &st);
		return st.unpaired;
	}
	struct tlb_stats st;

	tlb_dev_stats(c->dev, &st);
	return st.unpaired;
}

/* Is @addr cached by the client?  Return: 0 no, 1 read-only, 2 writable. */
static int cl_cached(struct cl *c, uint64_t addr, uint64_t *pfn)
{
	if (c->vm) {
		unsigned int f = shadow_spte(c->vm, addr, pfn);

		return !(f & SHADOW_SPTE_PRESENT) ? 0 : f & SHADOW_SPTE_WRITABLE ? 2 : 1;
	}
	bool w = false;

	return tlb_dev_lookup(c->dev, addr, pfn, &w) ? 1 + w : 0;
}

static bool cl_fini(struct cl *c)
{
	ASSERT_EQ(cl_unpaired(c), 0);
	ASSERT_TRUE(no_violations(c->f.u));
	ASSERT_TRUE(machine_valid(c->f.u));
	shadow_vcpu_destroy(c->vcpu);
	shadow_vm_destroy(c->vm);
	tlb_dev_destroy(c->dev);
	return fix_fini(&c->f);
}

static bool acc_put(struct accessor *a, uint64_t addr, uint64_t v)
{
	ssize_t r = acc_write(a, addr, &v, sizeof(v));

	if (r != sizeof(v))
		TAP_DIAG("%s write at %#" PRIx64 " = %zd", path_name[a->path], addr, r);
	return r == sizeof(v);
}

/* The word at @addr through @a, or all ones (and a message) if the read fails. */
static uint64_t acc_get(struct accessor *a, uint64_t addr)
{
	uint64_t v = ~0ULL;
	ssize_t r = acc_read(a, addr, &v, sizeof(v));

	if (r != sizeof(v)) {
		TAP_DIAG("%s read at %#" PRIx64 " = %zd", path_name[a->path], addr, r);
		return ~0ULL;
	}
	return v;
}

static uint64_t cpu_get(struct umm_mm *mm, uint64_t addr)
{
	uint64_t v = ~0ULL;

	return umm_read(mm, addr, &v, sizeof(v)) == sizeof(v) ? v : ~0ULL;
}

/*
 * Reads fault in, writes through the client reach the CPU path and back,
 * across a page boundary too; a read fault caches read-only, a write
 * writable, and the cached frame is the PTE's; outside the VM or a hole:
 * -EFAULT.
 */
static bool test_basic(enum path path)
{
	struct umm_pageinfo pi;
	uint8_t buf[64], big[PS + 64];
	uint64_t pfn = 0;
	struct cl c;

	ASSERT_TRUE(cl_init(&c, path));
	ASSERT_EQ(acc_get(&c.a, AT(1)), 0);
	ASSERT_EQ(cl_cached(&c, AT(1), NULL), 1);
	ASSERT_TRUE(acc_put(&c.a, AT(1) + 8, 0x1122334455667788ULL));
	ASSERT_EQ(cl_cached(&c, AT(1), &pfn), 2);
	pi = pinfo(c.f.mm, AT(1));
	ASSERT_TRUE(pi.flags & UMM_PI_WRITE);
	ASSERT_EQ(pi.pfn, pfn);
	ASSERT_EQ(cpu_get(c.f.mm, AT(1) + 8), 0x1122334455667788ULL);
	/* the CPU writes, the client reads through what it cached */
	ASSERT_TRUE(put_byte(c.f.mm, AT(1) + 8, 0x99));
	ASSERT_EQ(acc_get(&c.a, AT(1) + 8), 0x1122334455667799ULL);
	/* across a page boundary, both ways */
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (uint8_t)(i * 7 + 3);
	ASSERT_EQ(acc_write(&c.a, AT(3) + 100, big, sizeof(big)), sizeof(big));
	memset(buf, 0, sizeof(buf));
	ASSERT_EQ(umm_read(c.f.mm, AT(4) + 100, buf, 64), 64);
	ASSERT_TRUE(!memcmp(buf, big + PS, 64));
	ASSERT_TRUE(write_pat(c.f.mm, AT(6), 2, 42));
	ASSERT_EQ(acc_read(&c.a, AT(6), big, sizeof(big)), sizeof(big));
	ASSERT_TRUE(page_is_pat(big, AT(6), 42));
	/* holes and the VM's edge */
	if (path == P_VCPU) {
		ASSERT_ERR(acc_read(&c.a, AT(U_PAGES), buf, 8), EFAULT);
		ASSERT_ERR(acc_read(&c.a, AT(U_PAGES + 1), buf, 8), EFAULT);
		ASSERT_ERR(acc_read(&c.a, AT(0) - 8, buf, 8), EFAULT);
		/* a read that runs off the end stops there */
		ASSERT_EQ(acc_read(&c.a, AT(U_PAGES) - 8, buf, 16), 8);
	} else {
		ASSERT_ERR(acc_read(&c.a, AT(U_PAGES), buf, 8), EFAULT);
		ASSERT_ERR(acc_read(&c.a, UMM_TASK_SIZE, buf, 8), EFAULT);
	}
	return cl_fini(&c);
}

static bool test_shadow_basic(void) { return test_basic(P_VCPU); }
static bool test_tlb_basic(void) { return test_basic(P_DEV); }

/*
 * A client write after fork must not reach the child: fork write-protects
 * the parent's PTEs, so the writable translation cached before it must go.
 */
static bool test_cow_fork(enum path path)
{
	struct umm_mm *child;
	struct cl c;

	ASSERT_TRUE(cl_init(&c, path));
	ASSERT_TRUE(acc_put(&c.a, AT(2), 1111));
	ASSERT_TRUE(acc_put(&c.a, AT(5), 5555));
	ASSERT_EQ(cl_cached(&c, AT(2), NULL), 2);
	ASSERT_OK(umm_mm_fork(c.f.mm, &child));
	ASSERT_NE(cl_cached(&c, AT(2), NULL), 2);
	ASSERT_TRUE(acc_put(&c.a, AT(2), 2222));
	ASSERT_EQ(cpu_get(child, AT(2)), 1111);
	ASSERT_EQ(cpu_get(c.f.mm, AT(2)), 2222);
	ASSERT_EQ(acc_get(&c.a, AT(2)), 2222);
	/* and the child's own write does not reach the parent's client */
	ASSERT_TRUE(put_byte(child, AT(5), 0x77));
	ASSERT_EQ(acc_get(&c.a, AT(5)), 5555);
	ASSERT_EQ(cpu_get(child, AT(5)), (5555 & ~0xffULL) | 0x77);
	umm_mm_exit(child);
	/* the parent's frame is exclusive again: still coherent */
	ASSERT_TRUE(acc_put(&c.a, AT(5), 6666));
	ASSERT_EQ(cpu_get(c.f.mm, AT(5)), 6666);
	return cl_fini(&c);
}

static bool test_shadow_cow_fork(void) { return test_cow_fork(P_VCPU); }
static bool test_tlb_cow_fork(void) { return test_cow_fork(P_DEV); }

/* munmap: the translation goes and the client's next access fails. */
static bool test_munmap(enum path path)
{
	uint64_t v;
	struct cl c;

	ASSERT_TRUE(cl_init(&c, path));
	ASSERT_TRUE(acc_put(&c.a, AT(3), 33));
	ASSERT_TRUE(acc_put(&c.a, AT(4), 44));
	ASSERT_OK(umm_munmap(c.f.mm, AT(3), PG(1)));
	ASSERT_EQ(cl_cached(&c, AT(3), NULL), 0);
	ASSERT_ERR(acc_read(&c.a, AT(3), &v, 8), EFAULT);
	ASSERT_ERR(acc_write(&c.a, AT(3), &v, 8), EFAULT);
	ASSERT_EQ(acc_get(&c.a, AT(4)), 44);
	/* mapped again: a fresh zero page, through the client too */
	ASSERT_OK(map_at(c.f.mm, AT(3), 1, RW, PRIV));
	ASSERT_EQ(acc_get(&c.a, AT(3)), 0);
	return cl_fini(&c);
}

static bool test_shadow_munmap(void) { return test_munmap(P_VCPU); }
static bool test_tlb_munmap(void) { return test_munmap(P_DEV); }

/* mprotect read-only: client writes fault and fail; reads go on; RW again works. */
static bool test_mprotect(enum path path)
{
	uint64_t v = 7;
	struct cl c;

	ASSERT_TRUE(cl_init(&c, path));
	ASSERT_TRUE(acc_put(&c.a, AT(7), 77));
	ASSERT_EQ(cl_cached(&c, AT(7), NULL), 2);
	ASSERT_OK(umm_mprotect(c.f.mm, AT(6), PG(3), RO));
	ASSERT_NE(cl_cached(&c, AT(7), NULL), 2);
	ASSERT_ERR(acc_write(&c.a, AT(7), &v, 8), EFAULT);
	ASSERT_EQ(acc_get(&c.a, AT(7)), 77);
	ASSERT_EQ(cl_cached(&c, AT(7), NULL), 1);
	ASSERT_OK(umm_mprotect(c.f.mm, AT(6), PG(3), RW));
	ASSERT_TRUE(acc_put(&c.a, AT(7), 78));
	ASSERT_EQ(cpu_get(c.f.mm, AT(7)), 78);
	return cl_fini(&c);
}

static bool test_shadow_mprotect(void) { return test_mprotect(P_VCPU); }
static bool test_tlb_mprotect(void) { return test_mprotect(P_DEV); }

/* DONTNEED: the client reads zeros, not the old frame. */
static bool test_dontneed(enum path path)
{
	struct cl c;

	ASSERT_TRUE(cl_init(&c, path));
	ASSERT_TRUE(acc_put(&c.a, AT(9), 99));
	ASSERT_TRUE(acc_put(&c.a, AT(10), 1010));
	ASSERT_OK(umm_madvise(c.f.mm, AT(9), PG(1), UMM_MADV_DONTNEED));
	ASSERT_EQ(acc_get(&c.a, AT(9)), 0);
	ASSERT_EQ(acc_get(&c.a, AT(10)), 1010);
	/* a write through the client lands in the new frame the CPU sees */
	ASSERT_TRUE(acc_put(&c.a, AT(9), 999));
	ASSERT_EQ(cpu_get(c.f.mm, AT(9)), 999);
	return cl_fini(&c);
}

static bool test_shadow_dontneed(void) { return test_dontneed(P_VCPU); }
static bool test_tlb_dontneed(void) { return test_dontneed(P_DEV); }

/*
 * Reclaim swaps out pages the client caches: their translations must go
 * (try_to_unmap invalidates), and the client's next access swaps them back
 * in with the bytes it wrote.
 */
static bool test_swap(enum path path)
{
	unsigned long got = 0;
	int out = 0;
	struct cl c;

	ASSERT_TRUE(cl_init_swap(&c, path, tmp_path(path == P_VCPU ? "swap-vcpu" : "swap-dev")));
	for (int p = 0; p < U_PAGES; p++)
		ASSERT_TRUE(acc_put(&c.a, AT(p) + 8 * p, 1000 + p));
	for (int i = 0; i < 8 && out < U_PAGES / 2; i++) {
		ASSERT_OK(umm_reclaim(c.f.u, 1024, &got));
		out = 0;
		for (int p = 0; p < U_PAGES; p++)
			out += !!(pinfo(c.f.mm, AT(p)).flags & UMM_PI_SWAPPED);
	}
	TAP_DIAG("%d of %d pages swapped out", out, U_PAGES);
	ASSERT_GE(out, 1);
	for (int p = 0; p < U_PAGES; p++) {
		if (pinfo(c.f.mm, AT(p)).flags & UMM_PI_SWAPPED)
			ASSERT_EQ(cl_cached(&c, AT(p), NULL), 0);
	}
	for (int p = 0; p < U_PAGES; p++)
		ASSERT_EQ(acc_get(&c.a, AT(p) + 8 * p), 1000 + p);
	return cl_fini(&c);
}

static bool test_shadow_swap(void) { return test_swap(P_VCPU); }
static bool test_tlb_swap(void) { return test_swap(P_DEV); }

/*
 * Aging: umm_page_referenced() asks the shadow MMU through
 * clear_flush_young.  Once the PTE's and the spte's accessed bits are
 * clear, a vCPU access (which does not fault: the spte is present) must
 * make the next call count the page, and no access must leave it at 0.
 */
static bool test_shadow_aging(void)
{
	struct shadow_stats st, st2;
	struct cl c;

	ASSERT_TRUE(cl_init(&c, P_VCPU));
	ASSERT_TRUE(acc_put(&c.a, AT(5), 5));
	umm_page_referenced(c.f.mm, AT(5));	/* clear the young bits */
	ASSERT_EQ(umm_page_referenced(c.f.mm, AT(5)), 0);
	ASSERT_EQ(shadow_spte(c.vm, AT(5), NULL) & SHADOW_SPTE_ACCESSED, 0);
	ASSERT_EQ(acc_get(&c.a, AT(5)), 5);
	ASSERT_TRUE(shadow_spte(c.vm, AT(5), NULL) & SHADOW_SPTE_ACCESSED);
	ASSERT_GE(umm_page_referenced(c.f.mm, AT(5)), 1);
	ASSERT_EQ(shadow_spte(c.vm, AT(5), NULL) & SHADOW_SPTE_ACCESSED, 0);
	ASSERT_EQ(umm_page_referenced(c.f.mm, AT(5)), 0);
	/* the aging did not zap: the vCPU still reads without faulting */
	shadow_vm_stats(c.vm, &st);
	ASSERT_EQ(acc_get(&c.a, AT(5)), 5);
	shadow_vm_stats(c.vm, &st2);
	ASSERT_EQ(st2.faults, st.faults);
	ASSERT_GE(st.young, 1);
	return cl_fini(&c);
}

/*
 * A device TLB holds TLB_WAYS pages of a set: a fifth page of the same set
 * evicts one, and everything still reads and writes right.
 */
static bool test_tlb_eviction(void)
{
	struct tlb_stats st;
	struct cl c;
	int n = 0;

	ASSERT_TRUE(cl_init(&c, P_DEV));
	ASSERT_OK(map_at(c.f.mm, AT(64), TLB_SETS * (TLB_WAYS + 2), RW, PRIV));
	for (int round = 0; round < 3; round++)
		for (int w = 0; w < TLB_WAYS + 2; w++)
			ASSERT_TRUE(acc_put(&c.a, AT(64 + w * TLB_SETS), round * 100 + w));
	for (int w = 0; w < TLB_WAYS + 2; w++) {
		ASSERT_EQ(cpu_get(c.f.mm, AT(64 + w * TLB_SETS)), 200 + w);
		n += cl_cached(&c, AT(64 + w * TLB_SETS), NULL) != 0;
	}
	ASSERT_EQ(n, TLB_WAYS);
	tlb_dev_stats(c.dev, &st);
	ASSERT_GE(st.evictions, 1);
	return cl_fini(&c);
}

/*
 * umm_mm_exit: ->release empties the client, accesses fail from then on;
 * destroying the client afterwards does not call ->release again.
 */
static bool test_release(enum path path)
{
	uint64_t v;
	struct cl c;

	ASSERT_TRUE(cl_init(&c, path));
	ASSERT_TRUE(acc_put(&c.a, AT(1), 1));
	ASSERT_EQ(acc_get(&c.a, AT(2)), 0);
	umm_mm_exit(c.f.mm);
	c.f.mm = NULL;
	ASSERT_EQ(cl_cached(&c, AT(1), NULL), 0);
	ASSERT_EQ(cl_cached(&c, AT(2), NULL), 0);
	ASSERT_ERR(acc_read(&c.a, AT(1), &v, 8), EFAULT);
	ASSERT_ERR(acc_write(&c.a, AT(2), &v, 8), EFAULT);
	return cl_fini(&c);
}

static bool test_shadow_release(void) { return test_release(P_VCPU); }
static bool test_tlb_release(void) { return test_release(P_DEV); }

/*
 * The OOM reaper's non-blockable UNMAP invalidations: reaping succeeds
 * (possibly after -EAGAIN retries) and the client then holds nothing of
 * what was reaped.  Skipped while the engine answers -ENOSYS.
 */
static bool test_oom_reap(enum path path)
{
	struct cl c;
	int r;

	ASSERT_TRUE(cl_init(&c, path));
	ASSERT_TRUE(acc_put(&c.a, AT(1), 1));
	ASSERT_TRUE(acc_put(&c.a, AT(2), 2));
	r = umm_mm_oom_reap(c.f.mm);
	if (r == -ENOSYS) {
		TAP_DIAG("umm_mm_oom_reap: -ENOSYS, not tested");
		return cl_fini(&c);
	}
	for (int i = 0; i < 100 && r == -EAGAIN; i++)
		r = umm_mm_oom_reap(c.f.mm);
	ASSERT_OK(r);
	ASSERT_EQ(cl_cached(&c, AT(1), NULL), 0);
	ASSERT_EQ(cl_cached(&c, AT(2), NULL), 0);
	return cl_fini(&c);
}

static bool test_shadow_oom_reap(void) { return test_oom_reap(P_VCPU); }
static bool test_tlb_oom_reap(void) { return test_oom_reap(P_DEV); }

/*
 * The OOM reaper against clients in use: a vCPU and a device thread keep
 * writing while the main thread reaps over and over.  The reaper's
 * non-blockable starts must never sleep (the checker's might_sleep check):
 * a client that would have to wait for an access in flight answers
 * -EAGAIN, and the reaper reports it; afterwards what is mapped is
 * coherent and nothing leaked.
 */
struct reap_run {
	struct accessor a;
	atomic_bool *stop;
	long ops;
};

static void *reap_accessor(void *arg)
{
	struct reap_run *rr = arg;
	uint64_t rnd = 0x1234567 + rr->a.path;

	while (!atomic_load(rr->stop)) {
		uint64_t x = tap_rand(&rnd), v = x;

		acc_write(&rr->a, AT(x % U_PAGES) + ((x >> 8) % (PS / 8)) * 8, &v, 8);
		rr->ops++;
	}
	return NULL;
}

static bool test_oom_reap_racing(void)
{
	struct reap_run rr[2];
	struct shadow_stats sst;
	struct tlb_stats tst;
	atomic_bool stop = false;
	long ok = 0, again = 0;
	pthread_t th[2];
	struct cl c;
	int r;

	ASSERT_TRUE(cl_init(&c, P_VCPU));
	r = umm_mm_oom_reap(c.f.mm);
	if (r == -ENOSYS) {
		TAP_DIAG("umm_mm_oom_reap: -ENOSYS, not tested");
		return cl_fini(&c);
	}
	ASSERT_OK(tlb_dev_create(c.f.mm, &c.dev));
	rr[0] = (struct reap_run){ .a = c.a, .stop = &stop };
	rr[1] = (struct reap_run){ .a = { .path = P_DEV, .mm = c.f.mm, .dev = c.dev },
				   .stop = &stop };
	for (int i = 0; i < 2; i++)
		ASSERT_EQ(pthread_create(&th[i], NULL, reap_accessor, &rr[i]), 0);
	for (int i = 0; i < (tap_short() ? 200 : 2000); i++) {
		r = umm_mm_oom_reap(c.f.mm);
		if (r == -EAGAIN)
			again++;
		else if (r == 0)
			ok++;
		else
			break;
		sched_yield();
	}
	atomic_store(&stop, true);
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	ASSERT_TRUE(r == 0 || r == -EAGAIN);
	shadow_vm_stats(c.vm, &sst);
	tlb_dev_stats(c.dev, &tst);
	TAP_DIAG("reaps: %ld done, %ld -EAGAIN; shadow refused %lu, tlb refused %lu; "
		 "%ld vCPU and %ld device writes", ok, again, sst.eagain, tst.eagain, rr[0].ops,
		 rr[1].ops);
	ASSERT_GE(ok, 1);
	ASSERT_EQ(tst.unpaired, 0);
	/* quiescent: a last reap succeeds, and leaves nothing cached */
	ASSERT_OK(umm_mm_oom_reap(c.f.mm));
	for (int p = 0; p < U_PAGES; p++) {
		ASSERT_EQ(cl_cached(&c, AT(p), NULL), 0);
		ASSERT_EQ(tlb_dev_lookup(c.dev, AT(p), NULL, NULL), 0);
	}
	return cl_fini(&c);
}

/*
 * Clients registered and unregistered in a loop (each accessing a little
 * while it lives) while another thread unmaps, maps and writes the range:
 * no client may see an end without its start, and what a client reads
 * right after the writer's write is what the writer wrote.
 */
struct reg_race {
	struct umm_mm *mm;
	atomic_bool stop;
	atomic_int err;
	char why[160];
	uint64_t seed;
};

static void reg_fail(struct reg_race *rr, const char *why, long v)
{
	if (!atomic_exchange(&rr->err, 1))
		snprintf(rr->why, sizeof(rr->why), "%s: %ld", why, v);
}

static void *reg_unmapper(void *arg)
{
	struct reg_race *rr = arg;
	uint64_t rnd = rr->seed;

	while (!atomic_load(&rr->stop) && !atomic_load(&rr->err)) {
		uint64_t x = tap_rand(&rnd), p = x % U_PAGES, n = 1 + (x >> 8) % 4;
		int r;

		if (p + n > U_PAGES)
			n = U_PAGES - p;
		r = umm_munmap(rr->mm, AT(p), PG(n));
		if (!r)
			r = map_at(rr->mm, AT(p), n, RW, PRIV);
		if (!r && umm_write(rr->mm, AT(p), &x, 8) != 8)
			r = -1;
		if (r)
			reg_fail(rr, "unmapper", r);
	}
	return NULL;
}

static void *reg_registrar(void *arg)
{
	struct reg_race *rr = arg;
	uint64_t rnd = rr->seed * 31 + 7;
	long n = tap_short() ? 150 : 1000;

	for (long i = 0; i < n && !atomic_load(&rr->err); i++) {
		uint64_t x = tap_rand(&rnd), v;
		struct accessor a = { .mm = rr->mm };
		struct shadow_vm *vm = NULL;
		unsigned long unpaired;
		int r;

		if (x & 1) {
			a.path = P_VCPU;
			r = shadow_vm_create(rr->mm, AT(0), PG(U_PAGES), &vm);
			if (!r)
				r = shadow_vcpu_create(vm, &a.vcpu);
		} else {
			a.path = P_DEV;
			r = tlb_dev_create(rr->mm, &a.dev);
		}
		if (r) {
			reg_fail(rr, "create", r);
			break;
		}
		for (int k = (int)((x >> 4) % 8); k; k--)
			acc_read(&a, AT((x >> (8 + k)) % U_PAGES), &v, 8);
		if (vm) {
			struct shadow_stats st;

			shadow_vcpu_destroy(a.vcpu);
			shadow_vm_stats(vm, &st);
			unpaired = st.unpaired;
			shadow_vm_destroy(vm);
		} else {
			struct tlb_stats st;

			tlb_dev_stats(a.dev, &st);
			unpaired = st.unpaired;
			tlb_dev_destroy(a.dev);
		}
		if (unpaired)
			reg_fail(rr, "end without start", (long)unpaired);
	}
	atomic_store(&rr->stop, true);
	return NULL;
}

static bool test_register_race(void)
{
	struct reg_race rr;
	pthread_t th[2];
	struct fix f;

	memset(&rr, 0, sizeof(rr));
	rr.seed = tap_seed();
	ASSERT_TRUE(cfix_init(&f, 32 << 20, 1));
	ASSERT_OK(map_at(f.mm, AT(0), U_PAGES, RW, PRIV));
	rr.mm = f.mm;
	ASSERT_EQ(pthread_create(&th[0], NULL, reg_unmapper, &rr), 0);
	ASSERT_EQ(pthread_create(&th[1], NULL, reg_registrar, &rr), 0);
	pthread_join(th[1], NULL);
	atomic_store(&rr.stop, true);
	pthread_join(th[0], NULL);
	if (atomic_load(&rr.err))
		TAP_DIAG("failed: %s", rr.why);
	ASSERT_FALSE(atomic_load(&rr.err));
	ASSERT_TRUE(no_violations(f.u));
	return fix_fini(&f);
}

/* ---- the differential stress ---- */

#define S_OWN_PAGES	16			/* pages each owner writes */
#define S_WIN_PAGES	16			/* the racer's window */
#define S_MAX_OWNERS	6
#define S_MAX_PAGES	(S_MAX_OWNERS * S_OWN_PAGES + S_WIN_PAGES)
#define WORDS		(PS / 8)
#define S_MAGIC		0xa5ULL

/* The word @w of page @p, version @ver: names all three. */
static inline uint64_t enc(unsigned int p, unsigned int w, uint32_t ver)
{
	return S_MAGIC << 56 | (uint64_t)p << 40 | (uint64_t)w << 31 | ver;
}

struct stress;

struct owner {
	struct stress *s;
	struct accessor a;
	unsigned int first;			/* first page it owns (from AT(0)) */
	uint64_t model[S_OWN_PAGES][WORDS];
	uint32_t ver[S_OWN_PAGES];
	uint64_t rnd;
	long ops;
};

struct stress {
	struct fix f;
	unsigned int paths;			/* 1 << P_* of the clients under test */
	struct shadow_vm *vm;
	struct tlb_dev *dev;
	struct shadow_vcpu *check_vcpu;		/* the main thread's, for quiescent checks */
	struct owner owners[S_MAX_OWNERS];
	int nr_owners;
	unsigned int win;			/* first page of the racer's window */
	unsigned int nr_pages;
	_Atomic uint32_t committed[S_MAX_PAGES][WORDS];	/* last version written */
	_Atomic uint32_t started[S_MAX_PAGES];		/* last version begun */
	/* the racer's model of its window */
	uint64_t win_model[S_WIN_PAGES][WORDS];
	int win_prot[S_WIN_PAGES];
	uint32_t win_ver[S_WIN_PAGES];
	uint64_t racer_rnd;
	bool have_ksm, have_reclaim, have_migrate;
	double deadline;
	atomic_bool stop;
	atomic_int err;
	pthread_mutex_t lock;
	char why[512];
	uint64_t seed;
	long nr_forks, nr_child_words, nr_racer_ops, nr_cross;
};

static void stress_fail(struct stress *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void stress_fail(struct stress *s, const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&s->lock);
	if (!atomic_exchange(&s->err, 1)) {
		va_start(ap, fmt);
		vsnprintf(s->why, sizeof(s->why), fmt, ap);
		va_end(ap);
	}
	pthread_mutex_unlock(&s->lock);
	atomic_store(&s->stop, true);
}

static bool stopping(struct stress *s)
{
	return atomic_load(&s->stop) || now_s() >= s->deadline;
}

/*
 * Is @v a value word @w of page @p may hold, for a read that began after
 * version @lo of it was written and ended before anything newer than @hi
 * was begun?  @lo is ignored for the racer's window (it zaps pages).
 */
static bool word_ok(struct stress *s, unsigned int p, unsigned int w, uint64_t v, uint32_t lo,
		    uint32_t hi)
{
	uint32_t ver = (uint32_t)(v & 0x7fffffff);

	if (p >= s->win)
		lo = 0;
	if (!v)
		return lo == 0;
	return v >> 56 == S_MAGIC && ((v >> 40) & 0xffff) == p && ((v >> 31) & 0x1ff) == w &&
	       ver >= lo && ver <= hi;
}

/* One word of any page through @o's path, checked. */
static void cross_read(struct owner *o, unsigned int q, unsigned int w)
{
	struct stress *s = o->s;
	uint32_t lo = atomic_load_explicit(&s->committed[q][w], memory_order_acquire), hi;
	uint64_t v = 0;
	ssize_t r = acc_read(&o->a, AT(q) + w * 8, &v, 8);

	hi = atomic_load_explicit(&s->started[q], memory_order_acquire);
	if (r == -EFAULT && q >= s->win)
		return;		/* the racer unmapped it for a moment */
	if (r != 8) {
		stress_fail(s, "%s read of page %u word %u: %zd", path_name[o->a.path], q, w, r);
		return;
	}
	if (!word_ok(s, q, w, v, lo, hi))
		stress_fail(s, "%s read of page %u word %u: %#" PRIx64 ", want a version in "
			    "[%u, %u] of that word", path_name[o->a.path], q, w, v, lo, hi);
}

static void *owner_thread(void *arg)
{
	struct owner *o = arg;
	struct stress *s = o->s;

	while (!stopping(s)) {
		uint64_t x = tap_rand(&o->rnd);
		unsigned int i = (x >> 8) % S_OWN_PAGES, p = o->first + i;
		unsigned int w = (x >> 16) % WORDS;
		uint64_t v, page[WORDS];
		ssize_t r;

		switch (x % 8) {
		case 0: case 1: case 2: {
			uint32_t ver = ++o->ver[i];

			v = enc(p, w, ver);
			atomic_store_explicit(&s->started[p], ver, memory_order_release);
			r = acc_write(&o->a, AT(p) + w * 8, &v, 8);
			if (r != 8) {
				stress_fail(s, "%s write of page %u: %zd", path_name[o->a.path], p, r);
				break;
			}
			atomic_store_explicit(&s->committed[p][w], ver, memory_order_release);
			o->model[i][w] = v;
			break;
		}
		case 3:
			r = acc_read(&o->a, AT(p) + w * 8, &v, 8);
			if (r != 8 || v != o->model[i][w])
				stress_fail(s, "%s read of its own page %u word %u: %zd, %#" PRIx64
					    " instead of %#" PRIx64, path_name[o->a.path], p, w, r,
					    v, o->model[i][w]);
			break;
		case 4:
			r = acc_read(&o->a, AT(p), page, PS);
			if (r != PS || memcmp(page, o->model[i], PS))
				stress_fail(s, "%s read of its own page %u: %zd, or differs from the "
					    "model", path_name[o->a.path], p, r);
			break;
		default:
			if (CROSS_READS) {
				cross_read(o, (unsigned int)((x >> 32) % s->nr_pages), w);
				s->nr_cross++;	/* (racy count: a figure only) */
			} else {
				cross_read(o, p, w);
			}
			break;
		}
		o->ops++;
	}
	return NULL;
}

/*
 * Fork, then read two owner pages in the child twice with a pause between:
 * each word a version written no earlier than what was committed before
 * the fork, and nothing changed in between (a client writing through a
 * translation that survived fork's write-protect would change the child).
 */
static void racer_fork(struct stress *s, uint64_t x)
{
	static uint32_t lo[2][WORDS];
	static uint64_t a[2][WORDS], b[2][WORDS];
	unsigned int pg[2];
	struct umm_mm *child;
	int r;

	for (int k = 0; k < 2; k++) {
		pg[k] = (unsigned int)((x >> (8 + 16 * k)) % (s->nr_owners * S_OWN_PAGES));
		for (unsigned int w = 0; w < WORDS; w++)
			lo[k][w] = atomic_load_explicit(&s->committed[pg[k]][w],
							memory_order_acquire);
	}
	r = umm_mm_fork(s->f.mm, &child);
	if (r) {
		stress_fail(s, "fork: %d", r);
		return;
	}
	for (int k = 0; k < 2; k++) {
		uint32_t hi;

		if (umm_read(child, AT(pg[k]), a[k], PS) != PS) {
			stress_fail(s, "child read of page %u", pg[k]);
			goto out;
		}
		hi = atomic_load_explicit(&s->started[pg[k]], memory_order_acquire);
		for (unsigned int w = 0; w < WORDS; w++) {
			if (!word_ok(s, pg[k], w, a[k][w], lo[k][w], hi)) {
				stress_fail(s, "child page %u word %u: %#" PRIx64 ", want a version "
					    "in [%u, %u]", pg[k], w, a[k][w], lo[k][w], hi);
				goto out;
			}
		}
	}
	sleep_ms(1);
	for (int k = 0; k < 2; k++) {
		if (umm_read(child, AT(pg[k]), b[k], PS) != PS) {
			stress_fail(s, "child read of page %u", pg[k]);
			goto out;
		}
		for (unsigned int w = 0; w < WORDS; w++) {
			if (a[k][w] != b[k][w]) {
				stress_fail(s, "child page %u word %u changed after the fork: %#"
					    PRIx64 " -> %#" PRIx64 " (a parent write leaked)",
					    pg[k], w, a[k][w], b[k][w]);
				goto out;
			}
		}
	}
	s->nr_child_words += 2 * WORDS;
out:
	umm_mm_exit(child);
	s->nr_forks++;
}

/* Zero the racer's model of window pages [@p, @p + @n), with protection @prot. */
static void win_zap(struct stress *s, unsigned int p, unsigned int n, int prot)
{
	for (unsigned int i = p; i < p + n; i++) {
		memset(s->win_model[i], 0, PS);
		if (prot >= 0)
			s->win_prot[i] = prot;
	}
}

static void racer_step(struct stress *s)
{
	uint64_t x = tap_rand(&s->racer_rnd);
	unsigned int p = (x >> 8) % S_WIN_PAGES, n = 1 + (x >> 12) % 4, w = (x >> 16) % WORDS;
	unsigned int any = (unsigned int)((x >> 32) % s->nr_pages);
	uint64_t v;
	int r = 0;

	if (p + n > S_WIN_PAGES)
		n = S_WIN_PAGES - p;
	switch (x % 10) {
	case 0:
		racer_fork(s, x >> 4);
		break;
	case 1:
		r = umm_munmap(s->f.mm, AT(s->win + p), PG(n));
		if (!r)
			r = map_at(s->f.mm, AT(s->win + p), n, RW, PRIV);
		if (!r)
			win_zap(s, p, n, RW);
		break;
	case 2: {
		int prot = x & (1 << 30) ? RO : RW;

		r = umm_mprotect(s->f.mm, AT(s->win + p), PG(n), prot);
		for (unsigned int i = p; !r && i < p + n; i++)
			s->win_prot[i] = prot;
		break;
	}
	case 3:
		r = umm_madvise(s->f.mm, AT(s->win + p), PG(n), UMM_MADV_DONTNEED);
		if (!r)
			win_zap(s, p, n, -1);
		break;
	case 4: case 5: {
		unsigned int q = s->win + p;
		uint32_t ver = ++s->win_ver[p];
		ssize_t wr;

		v = enc(q, w, ver);
		atomic_store_explicit(&s->started[q], ver, memory_order_release);
		wr = umm_write(s->f.mm, AT(q) + w * 8, &v, 8);
		if (s->win_prot[p] == RW ? wr != 8 : wr != -EFAULT)
			stress_fail(s, "racer write of window page %u (%s): %zd", p,
				    s->win_prot[p] == RW ? "RW" : "RO", wr);
		else if (wr == 8)
			s->win_model[p][w] = v;
		break;
	}
	case 6:
		if (umm_read(s->f.mm, AT(s->win + p) + w * 8, &v, 8) != 8 ||
		    v != s->win_model[p][w])
			stress_fail(s, "racer read of window page %u word %u: %#" PRIx64
				    " instead of %#" PRIx64, p, w, v, s->win_model[p][w]);
		break;
	case 7:
		r = umm_page_referenced(s->f.mm, AT(any));
		if (r == -EFAULT || r > 0)
			r = 0;
		break;
	case 8:
		if (s->have_ksm)
			r = umm_ksm_scan(s->f.u, 64);
		if (s->have_reclaim && !r) {
			unsigned long got;

			r = umm_reclaim(s->f.u, 32, &got);
			if (r == -ENOMEM || r == -EAGAIN || r == -EBUSY)
				r = 0;	/* nothing evictable without swap */
		}
		break;
	default:
		if (s->have_migrate) {
			uint64_t addr = AT(any);
			int node = (int)(x >> 40) & 1, status = 0;

			r = umm_move_pages(s->f.mm, 1, &addr, &node, &status);
		}
		break;
	}
	if (r < 0)
		stress_fail(s, "racer op %d: %d", (int)(x % 10), r);
	s->nr_racer_ops++;
}

static void *racer_thread(void *arg)
{
	struct stress *s = arg;

	while (!stopping(s))
		racer_step(s);
	return NULL;
}

/*
 * Quiescent: every page, through every path under test, equals the model
 * (owners' and the racer's); the counting invariants hold.
 */
static bool stress_check(struct stress *s)
{
	static uint64_t page[WORDS];
	struct accessor acc[NR_PATHS];
	int nacc = 0;

	acc[nacc++] = (struct accessor){ .path = P_CPU, .mm = s->f.mm };
	if (s->vm)
		acc[nacc++] = (struct accessor){ .path = P_VCPU, .vcpu = s->check_vcpu };
	if (s->dev)
		acc[nacc++] = (struct accessor){ .path = P_DEV, .dev = s->dev };
	for (unsigned int p = 0; p < s->nr_pages; p++) {
		const uint64_t *want = p < s->win ?
			s->owners[p / S_OWN_PAGES].model[p % S_OWN_PAGES] :
			s->win_model[p - s->win];

		for (int k = 0; k < nacc; k++) {
			ssize_t r = acc_read(&acc[k], AT(p), page, PS);

			if (r != PS || memcmp(page, want, PS)) {
				TAP_DIAG("quiescent: %s read of page %u: %zd, or differs from the "
					 "model", path_name[acc[k].path], p, r);
				return false;
			}
		}
	}
	ASSERT_TRUE(machine_valid(s->f.u));
	ASSERT_TRUE(no_violations(s->f.u));
	return true;
}

static const char *paths_str(unsigned int paths)
{
	return paths == (1u << P_VCPU) ? "shadow" : paths == (1u << P_DEV) ? "tlb" : "shadow+tlb";
}

/* One stress run with the clients in @paths (1 << P_VCPU, 1 << P_DEV). */
static bool stress_run(unsigned int paths)
{
	double budget = tap_long() ? 20 : tap_short() ? 1.5 : 3;
	int phases = 3, per_path = tap_short() ? 1 : 2;
	struct stress *s = calloc(1, sizeof(*s));
	pthread_t th[S_MAX_OWNERS + 1];
	long ops = 0;
	uint64_t addr;
	int node = 0, status;
	bool slow;

	ASSERT_TRUE(s);
	atomic_store(&log_errors, 0);
	s->seed = tap_seed();
	s->paths = paths;
	s->racer_rnd = s->seed ^ 0x5bd1e995;
	pthread_mutex_init(&s->lock, NULL);
	ASSERT_TRUE(cfix_init_swap(&s->f, 64 << 20, 2, tmp_path("swap")));
	/* owners: one on the CPU path, then per_path per client */
	s->owners[s->nr_owners++].a = (struct accessor){ .path = P_CPU, .mm = s->f.mm };
	for (int k = 0; k < per_path; k++) {
		if (paths & (1u << P_VCPU))
			s->owners[s->nr_owners++].a.path = P_VCPU;
		if (paths & (1u << P_DEV))
			s->owners[s->nr_owners++].a.path = P_DEV;
	}
	s->win = s->nr_owners * S_OWN_PAGES;
	s->nr_pages = s->win + S_WIN_PAGES;
	ASSERT_OK(map_at(s->f.mm, AT(0), s->nr_pages, RW, PRIV));
	for (int i = 0; i < S_WIN_PAGES; i++)
		s->win_prot[i] = RW;
	if (paths & (1u << P_VCPU)) {
		ASSERT_OK(shadow_vm_create(s->f.mm, AT(0), PG(s->nr_pages), &s->vm));
		ASSERT_OK(shadow_vcpu_create(s->vm, &s->check_vcpu));
	}
	if (paths & (1u << P_DEV))
		ASSERT_OK(tlb_dev_create(s->f.mm, &s->dev));
	for (int i = 0; i < s->nr_owners; i++) {
		struct owner *o = &s->owners[i];

		o->s = s;
		o->first = i * S_OWN_PAGES;
		o->rnd = s->seed + (uint64_t)i * 0x9e3779b97f4a7c15ULL;
		o->a.mm = s->f.mm;
		o->a.dev = s->dev;
		if (o->a.path == P_VCPU)
			ASSERT_OK(shadow_vcpu_create(s->vm, &o->a.vcpu));
	}
	/* the engine's optional subsystems, each probed once */
	s->have_ksm = umm_ksm_scan(s->f.u, 1) != -ENOSYS;
	if (s->have_ksm)
		ASSERT_OK(umm_madvise(s->f.mm, AT(0), PG(s->nr_pages), UMM_MADV_MERGEABLE));
	s->have_reclaim = umm_reclaim(s->f.u, 0, &(unsigned long){ 0 }) != -ENOSYS;
	addr = AT(0);
	s->have_migrate = umm_move_pages(s->f.mm, 1, &addr, &node, &status) != -ENOSYS;
	/* now and then a slow invalidation: faults and drop-ins meet it in flight */
	slow = umm_fault_inject(s->f.u, UMM_FAULT_NOTIFIER_DELAY, 5000, -1) == 0;
	TAP_DIAG("%s: %d owners; KSM %s, reclaim %s, migration %s, slow invalidations %s",
		 paths_str(paths), s->nr_owners, s->have_ksm ? "on" : "n/a",
		 s->have_reclaim ? "on" : "n/a", s->have_migrate ? "on" : "n/a",
		 slow ? "on" : "n/a");

	for (int ph = 0; ph < phases && !atomic_load(&s->err); ph++) {
		s->deadline = now_s() + budget / phases;
		for (int i = 0; i < s->nr_owners; i++)
			ASSERT_EQ(pthread_create(&th[i], NULL, owner_thread, &s->owners[i]), 0);
		ASSERT_EQ(pthread_create(&th[s->nr_owners], NULL, racer_thread, s), 0);
		for (int i = 0; i <= s->nr_owners; i++)
			pthread_join(th[i], NULL);
		if (atomic_load(&s->err))
			break;
		if (!stress_check(s)) {
			TAP_DIAG("phase %d, seed %" PRIu64, ph, s->seed);
			return false;
		}
	}
	if (atomic_load(&s->err)) {
		TAP_DIAG("%s stress failed (seed %" PRIu64 "): %s", paths_str(paths), s->seed,
			 s->why);
		return false;
	}
	for (int i = 0; i < s->nr_owners; i++)
		ops += s->owners[i].ops;
	TAP_DIAG("%ld owner ops (%ld cross reads), %ld racer ops, %ld forks, %ld child words "
		 "checked", ops, s->nr_cross, s->nr_racer_ops, s->nr_forks, s->nr_child_words);
	if (s->vm) {
		struct shadow_stats st;

		shadow_vm_stats(s->vm, &st);
		TAP_DIAG("shadow: %lu faults, %lu retries, %lu zaps, %lu flushes waited, "
			 "%lu young, %lu invalidations", st.faults, st.retries, st.zaps,
			 st.flushes, st.young, st.invalidations);
		ASSERT_EQ(st.unpaired, 0);
		ASSERT_GE(st.zaps, 1);
	}
	if (s->dev) {
		struct tlb_stats st;

		tlb_dev_stats(s->dev, &st);
		TAP_DIAG("tlb: %lu hits, %lu misses, %lu drop-ins (%lu waited, %lu retried), "
			 "%lu flushes of %lu entries, %lu evictions", st.hits, st.misses,
			 st.dropins, st.dropin_waits, st.retries, st.flushes, st.flushed,
			 st.evictions);
		ASSERT_EQ(st.unpaired, 0);
		ASSERT_GE(st.flushed, 1);
	}
	ASSERT_GE(s->nr_forks, 1);
	if (s->have_reclaim) {
		struct umm_vmscan_stat vs;

		umm_get_vmscan_stat(s->f.u, &vs);
		TAP_DIAG("reclaim: %" PRIu64 " pages swapped out, %" PRIu64 " in, %" PRIu64
			 " migrated", vs.pswpout, vs.pswpin, vs.pgmigrate_success);
	}
	if (slow)
		TAP_DIAG("%" PRIu64 " invalidations slowed down",
			 umm_fault_injected(s->f.u, UMM_FAULT_NOTIFIER_DELAY));
	for (int i = 0; i < s->nr_owners; i++)
		shadow_vcpu_destroy(s->owners[i].a.vcpu);
	shadow_vcpu_destroy(s->check_vcpu);
	shadow_vm_destroy(s->vm);
	tlb_dev_destroy(s->dev);
	ASSERT_TRUE(no_violations(s->f.u));
	ASSERT_EQ(atomic_load(&log_errors), 0);
	ASSERT_TRUE(fix_fini(&s->f));
	pthread_mutex_destroy(&s->lock);
	free(s);
	return true;
}

static bool test_stress_shadow(void) { return stress_run(1u << P_VCPU); }
static bool test_stress_tlb(void) { return stress_run(1u << P_DEV); }
static bool test_stress_both(void) { return stress_run(1u << P_VCPU | 1u << P_DEV); }

int main(void)
{
	if (!tmp_init("clients")) {
		printf("1..0 # SKIP mkdtemp: %s\n", strerror(errno));
		return 0;
	}
	RUN_TEST(test_shadow_basic);
	RUN_TEST(test_tlb_basic);
	RUN_TEST(test_shadow_cow_fork);
	RUN_TEST(test_tlb_cow_fork);
	RUN_TEST(test_shadow_munmap);
	RUN_TEST(test_tlb_munmap);
	RUN_TEST(test_shadow_mprotect);
	RUN_TEST(test_tlb_mprotect);
	RUN_TEST(test_shadow_dontneed);
	RUN_TEST(test_tlb_dontneed);
	RUN_TEST(test_shadow_swap);
	RUN_TEST(test_tlb_swap);
	RUN_TEST(test_shadow_aging);
	RUN_TEST(test_tlb_eviction);
	RUN_TEST(test_shadow_release);
	RUN_TEST(test_tlb_release);
	RUN_TEST(test_shadow_oom_reap);
	RUN_TEST(test_tlb_oom_reap);
	RUN_TEST(test_oom_reap_racing);
	RUN_TEST(test_register_race);
	RUN_TEST(test_stress_shadow);
	RUN_TEST(test_stress_tlb);
	RUN_TEST(test_stress_both);
	tmp_cleanup();
	return tap_done();
}
