// SPDX-License-Identifier: MIT
/*
 * t_remote.c - the XPMEM-style remote client (clients/remote.c) with a real
 * second process.
 *
 * Each test builds a machine (UMM_CONFIG_SHAREABLE | NOTIFIER_CHECKER), an
 * mm with a range at BASE, and exports the range to an importer: this very
 * program, forked and exec'd as "t_remote --remote-importer SOCK CTL", so
 * it has nothing but the two sockets (the arena's memfd is O_CLOEXEC and
 * arrives over SOCK).  The test drives the importer over CTL (struct cmd:
 * read, write, hash every page, run the stress side, exit) while it drives
 * the exporter's mm directly.
 *
 * Basic tests: each direction of data; COW after umm_mm_fork (the
 * importer's store breaks COW, its stale read-only mapping is invalidated
 * when the parent breaks it); munmap, mprotect RO, DONTNEED; the importer
 * killed while holding mappings (munmap must not hang); ->release at
 * umm_mm_exit (later accesses fail with -ESRCH); the OOM reaper's
 * non-blockable path (-EAGAIN while the importer maps the range); shared
 * anonymous memory across a fork, and a shared file under msync (its
 * page_mkclean must make the importer's next store fault).
 *
 * Differential stress (seeded, UMM_SEED): pages belong to exporter threads
 * or to importer threads (page p to owner p % owners); each owner stamps
 * its pages with (page, owner, counter) in every word (mixed with the word
 * index), reads its own pages back exactly and the other process's pages
 * word by word (a word is zero or a stamp of that page and owner, and the
 * smallest counter seen never goes down).  Layout, one letter per 8 pages
 * of the 64:
 *
 *	AAAAATBB	A: owners' pages; T: twins; B: owners' pages, zappable
 *
 * In B a page is the last stamp or zero (DONTNEED, munmap+mmap).  The
 * twins are the racer's, all with the same bytes, for KSM to merge under
 * the importer.  The racer forks children (each child's pages must be a
 * frozen, uniform snapshot, checked twice), toggles mprotect, zaps B,
 * rewrites the twins, asks page_referenced, reclaims and pages windows out
 * to swap, and — when the engine has them — runs KSM, migration and
 * compaction.  At the end both processes hash every page: the importer's
 * view (through its frames) must equal the exporter's (umm_read), and that
 * must equal the model (each owner's last counter).  umm_validate(EXACT |
 * RMAP) runs with the importer idle but still holding translations (they
 * hold no page reference), the checker must have seen nothing, and nothing
 * may leak.  A second run kills the importer a third of the way in.
 *
 * Threads read only their own pages and the other process's, so that no
 * two threads of one process copy the same frame at once (that would be a
 * true data race for TSan, and other tests cover it).
 */
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <umm/umm.h>

#define FIX_VALIDATE	VALIDATE_ALL
#include "tap.h"
#include "fixture.h"
#include "remote.h"

#define ROLE_IMPORTER	"--remote-importer"

/* ---- the control channel ---- */

enum cmd_op { CMD_READ = 1, CMD_WRITE, CMD_HASH, CMD_STAT, CMD_STRESS, CMD_EXIT };

#define MAX_PAGES	(PS / 8)	/* a page of counters or hashes */

struct cmd {
	uint32_t op;
	int32_t pad;
	int64_t ret;
	uint64_t addr, len;
	uint64_t arg[8];
	uint8_t data[PS];
};

static int cmd_xfer(int sock, struct cmd *c)
{
	ssize_t r = send(sock, c, sizeof(*c), MSG_NOSIGNAL);

	if (r != sizeof(*c))
		return -EPIPE;
	r = recv(sock, c, sizeof(*c), 0);
	return r == sizeof(*c) ? 0 : -EPIPE;
}

static uint64_t page_hash(const void *p)
{
	const uint64_t *w = p;
	uint64_t h = 0xcbf29ce484222325ULL;

	for (size_t i = 0; i < PS / 8; i++)
		h = (h ^ w[i]) * 0x100000001b3ULL;
	return h;
}

/* ---- stamps ---- */

#define CTR_MASK	((1ULL << 40) - 1)

static inline uint64_t word_mix(size_t i)
{
	return (uint64_t)i * 0x9e3779b97f4a7c15ULL;
}

static inline uint64_t stamp(uint64_t page, unsigned int owner, uint64_t ctr, size_t i)
{
	return (page << 48 | (uint64_t)owner << 40 | ctr) ^ word_mix(i);
}

static void stamp_fill(uint64_t *w, uint64_t page, unsigned int owner, uint64_t ctr)
{
	for (size_t i = 0; i < PS / 8; i++)
		w[i] = stamp(page, owner, ctr, i);
}

static bool page_zero(const uint64_t *w)
{
	for (size_t i = 0; i < PS / 8; i++)
		if (w[i])
			return false;
	return true;
}

/* Exactly the stamp of @ctr (or, if @zero_ok, all zero)? */
static bool stamp_exact(const uint64_t *w, uint64_t page, unsigned int owner, uint64_t ctr,
			bool zero_ok)
{
	if (zero_ok && page_zero(w))
		return true;
	for (size_t i = 0; i < PS / 8; i++)
		if (w[i] != stamp(page, owner, ctr, i))
			return false;
	return true;
}

/*
 * A page someone else writes: every word zero (only where @zero_ok) or a
 * stamp of @page by @owner.  *@min gets the smallest counter seen, or 0 if
 * a word was zero.  Return: the index of the first bad word, or -1.
 */
static long stamp_loose(const uint64_t *w, uint64_t page, unsigned int owner, bool zero_ok,
			uint64_t *min)
{
	*min = CTR_MASK;
	for (size_t i = 0; i < PS / 8; i++) {
		uint64_t v;

		if (!w[i] && zero_ok) {
			*min = 0;
			continue;
		}
		v = w[i] ^ word_mix(i);
		if (v >> 48 != page || ((v >> 40) & 0xff) != owner)
			return (long)i;
		if ((v & CTR_MASK) < *min)
			*min = v & CTR_MASK;
	}
	return -1;
}

/* ---- the stress layout, shared by both processes ---- */

struct layout {
	uint64_t seed, base, npages;
	uint64_t nzap;				/* pages [npages - nzap, npages) may be zapped */
	uint64_t ntwin;				/* the ntwin pages below them are twins */
	unsigned int nexp, nimp;		/* owners: exporter threads, importer threads */
	unsigned int duration_ms;
};

/*
 * Twins are written by the racer, all with the same bytes, so that KSM
 * (when the engine has it) merges them under the importer's mappings.
 */
#define TWIN_OWNER	0xfeU

static inline bool is_twin(const struct layout *l, uint64_t p)
{
	return p < l->npages - l->nzap && p >= l->npages - l->nzap - l->ntwin;
}

static inline unsigned int owner_of(const struct layout *l, uint64_t p)
{
	if (is_twin(l, p))
		return TWIN_OWNER;
	return (unsigned int)(p % (l->nexp + l->nimp)) + 1;	/* 1-based: a word is never 0 */
}

/* The page number a page's stamps carry: 0 for every twin. */
static inline uint64_t tag_of(const struct layout *l, uint64_t p)
{
	return is_twin(l, p) ? 0 : p;
}

static inline bool owner_is_exporter(const struct layout *l, unsigned int owner)
{
	return owner <= l->nexp || owner == TWIN_OWNER;
}

static inline bool zappable(const struct layout *l, uint64_t p)
{
	return p >= l->npages - l->nzap;
}

static void sleep_us(long us)
{
	struct timespec ts = { us / 1000000, (us % 1000000) * 1000 };

	nanosleep(&ts, NULL);
}

/*
 * One owner's run, in either process: write own pages with rising
 * counters, read them back exactly, and check the other process's pages
 * loosely.  @access is umm_read/umm_write or the importer's.
 */
struct owner_run {
	const struct layout *l;
	unsigned int owner;
	uint64_t rnd;
	uint64_t *ctr;			/* per page: last counter written (model) */
	uint64_t *seen;			/* per page: smallest counter last seen */
	ssize_t (*rd)(void *ctx, uint64_t addr, void *buf, size_t len);
	ssize_t (*wr)(void *ctx, uint64_t addr, const void *buf, size_t len);
	void *ctx;
	atomic_int *stop;
	unsigned long writes, reads, efault, errors;
	char what[200];			/* the first error */
};

static void run_err(struct owner_run *o, const char *fmt, uint64_t p, long a, long b)
{
	if (!o->errors++)
		snprintf(o->what, sizeof(o->what), fmt, (unsigned long)p, a, b);
	atomic_store(o->stop, 1);
}

static void *owner_thread(void *arg)
{
	struct owner_run *o = arg;
	const struct layout *l = o->l;
	unsigned int owners = l->nexp + l->nimp;
	double deadline = now_s() + l->duration_ms / 1000.0;
	uint64_t w[PS / 8];
	uint64_t nmine = (l->npages + owners - 1 - (o->owner - 1)) / owners;

	while (!atomic_load(o->stop) && now_s() < deadline) {
		uint64_t p = (o->owner - 1) + (tap_rand(&o->rnd) % nmine) * owners;
		uint64_t addr = l->base + PG(p), q, min;
		ssize_t r;
		long bad;

		if (is_twin(l, p))
			continue;
		/* a store of the next counter; -EFAULT (RO, hole) leaves the model */
		stamp_fill(w, p, o->owner, o->ctr[p] + 1);
		r = o->wr(o->ctx, addr, w, PS);
		if (r == PS) {
			o->ctr[p]++;
			o->writes++;
		} else if (r == -EFAULT) {
			o->efault++;
		} else {
			run_err(o, "write page %lu: %ld", p, (long)r, 0);
			break;
		}
		r = o->rd(o->ctx, addr, w, PS);
		if (r == PS && !stamp_exact(w, p, o->owner, o->ctr[p], zappable(l, p))) {
			run_err(o, "own page %lu: not counter %ld (word 0: %#lx)", p,
				(long)o->ctr[p], (long)w[0]);
			break;
		} else if (r != PS && r != -EFAULT) {
			run_err(o, "read own page %lu: %ld", p, (long)r, 0);
			break;
		}

		/* a page of the other process */
		do
			q = tap_rand(&o->rnd) % l->npages;
		while (owner_is_exporter(l, owner_of(l, q)) == owner_is_exporter(l, o->owner));
		r = o->rd(o->ctx, l->base + PG(q), w, PS);
		if (r == -EFAULT) {
			o->efault++;
			continue;
		}
		if (r != PS) {
			run_err(o, "read page %lu: %ld", q, (long)r, 0);
			break;
		}
		o->reads++;
		bad = stamp_loose(w, tag_of(l, q), owner_of(l, q), zappable(l, q), &min);
		if (bad >= 0) {
			run_err(o, "page %lu word %ld holds %#lx: not its owner's stamp", q, bad,
				(long)w[bad]);
			break;
		}
		if (min && min < o->seen[q]) {
			run_err(o, "page %lu went back from counter %ld to %ld", q,
				(long)o->seen[q], (long)min);
			break;
		}
		o->seen[q] = min;
	}
	return NULL;
}

/* ---- the importer process ---- */

static ssize_t imp_rd(void *ctx, uint64_t addr, void *buf, size_t len)
{
	return remote_import_read(ctx, addr, buf, len);
}

static ssize_t imp_wr(void *ctx, uint64_t addr, const void *buf, size_t len)
{
	return remote_import_write(ctx, addr, buf, len);
}

/* CMD_STRESS in the importer: its owners' threads; counters go back in data. */
static void importer_stress(struct remote_import *imp, struct cmd *c)
{
	struct layout l;
	struct owner_run *runs;
	pthread_t *tids;
	uint64_t *ctr = (uint64_t *)c->data;
	atomic_int stop = 0;

	memcpy(&l, c->arg, sizeof(l));
	memset(c->arg, 0, sizeof(c->arg));
	runs = calloc(l.nimp, sizeof(*runs));
	tids = calloc(l.nimp, sizeof(*tids));
	memset(c->data, 0, sizeof(c->data));
	c->ret = 0;
	for (unsigned int t = 0; t < l.nimp; t++) {
		struct owner_run *o = &runs[t];

		o->l = &l;
		o->owner = l.nexp + 1 + t;
		o->rnd = l.seed * 31 + o->owner;
		o->ctr = ctr;			/* disjoint pages per owner */
		o->seen = calloc(l.npages, sizeof(uint64_t));
		o->rd = imp_rd;
		o->wr = imp_wr;
		o->ctx = imp;
		o->stop = &stop;
		pthread_create(&tids[t], NULL, owner_thread, o);
	}
	for (unsigned int t = 0; t < l.nimp; t++) {
		struct owner_run *o = &runs[t];

		pthread_join(tids[t], NULL);
		if (o->errors)
			TAP_DIAG("importer owner %u: %s", o->owner, o->what);
		c->ret += o->errors;
		c->arg[0] += o->writes;
		c->arg[1] += o->reads;
		c->arg[2] += o->efault;
		free(o->seen);
	}
	free(runs);
	free(tids);
}

static int importer_main(int sock, int ctl)
{
	struct remote_import *imp;
	struct remote_import_stat st;
	struct cmd c;
	int err;

	err = remote_import(sock, &imp, NULL, NULL);
	if (err) {
		TAP_DIAG("importer: remote_import: %d", err);
		return 1;
	}
	while (recv(ctl, &c, sizeof(c), 0) == sizeof(c)) {
		switch (c.op) {
		case CMD_READ:
			c.ret = remote_import_read(imp, c.addr, c.data, c.len);
			break;
		case CMD_WRITE:
			c.ret = remote_import_write(imp, c.addr, c.data, c.len);
			break;
		case CMD_HASH: {	/* c.len pages from c.addr: hash of each, 0 if unreadable */
			uint64_t *h = (uint64_t *)c.data, w[PS / 8];

			c.ret = 0;
			for (uint64_t p = 0; p < c.len && p < MAX_PAGES; p++) {
				ssize_t r = remote_import_read(imp, c.addr + PG(p), w, PS);

				h[p] = r == PS ? page_hash(w) : 0;
				c.ret += r != PS;
			}
			break;
		}
		case CMD_STAT:
			remote_import_get_stat(imp, &st);
			c.arg[0] = st.faults;
			c.arg[1] = st.invalidations;
			c.arg[2] = st.pages_unmapped;
			c.arg[3] = st.mapped;
			c.arg[4] = st.released;
			c.ret = 0;
			break;
		case CMD_STRESS:
			importer_stress(imp, &c);
			break;
		case CMD_EXIT:
			remote_import_close(imp);
			c.ret = 0;
			send(ctl, &c, sizeof(c), MSG_NOSIGNAL);
			return 0;
		default:
			c.ret = -EINVAL;
		}
		if (send(ctl, &c, sizeof(c), MSG_NOSIGNAL) != sizeof(c))
			break;
	}
	remote_import_close(imp);
	return 0;
}

/* ---- the exporter's rig ---- */

struct rig {
	char swap[64];			/* the swap file, if any */
	struct umm *u;
	struct umm_mm *mm;
	struct remote_export *exp;
	uint64_t npages;
	int ctl;
	pid_t pid;
};

static void log_diag(void *ctx, int level, const char *msg)
{
	(void)ctx;
	TAP_DIAG("umm[%d]: %s", level, msg);
}

/*
 * A machine of @nodes nodes (with 16 MiB of swap if @swap), an mm with
 * @npages RW private pages at BASE, exported to a new importer.
 */
static bool rig_up_swap(struct rig *r, uint64_t npages, unsigned int nodes, bool swap)
{
	int sv[2], cv[2], fds[2];
	struct umm_config cfg;

	memset(r, 0, sizeof(*r));
	r->npages = npages;
	r->ctl = -1;
	umm_config_init(&cfg);
	cfg.phys_bytes = 64 << 20;
	cfg.nr_nodes = nodes;
	cfg.flags = UMM_CONFIG_SHAREABLE | UMM_CONFIG_NOTIFIER_CHECKER;
	if (swap) {
		snprintf(r->swap, sizeof(r->swap), "/tmp/umm-remote-swap-%d", (int)getpid());
		cfg.swap_path = r->swap;
		cfg.swap_bytes = 16 << 20;
	}
	ASSERT_OK(umm_create(&cfg, &r->u));
	umm_set_log(r->u, log_diag, NULL);
	ASSERT_OK(umm_mm_create(r->u, &r->mm));
	ASSERT_OK(map_at(r->mm, BASE, npages, RW, PRIV));
	ASSERT_OK(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv));
	ASSERT_OK(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, cv));
	fds[0] = sv[1];
	fds[1] = cv[1];
	ASSERT_OK(remote_spawn_self(ROLE_IMPORTER, fds, 2, &r->pid));
	close(sv[1]);
	close(cv[1]);
	r->ctl = cv[0];
	ASSERT_OK(remote_export(r->u, r->mm, BASE, PG(npages), sv[0], &r->exp));
	return true;
}

static bool rig_up(struct rig *r, uint64_t npages, unsigned int nodes)
{
	return rig_up_swap(r, npages, nodes, false);
}

/* Ask the importer to leave (if alive), unexport, exit the mm, check the machine. */
static bool rig_down(struct rig *r)
{
	struct cmd c = { .op = CMD_EXIT };
	int status = 0;

	if (r->pid > 0) {
		ASSERT_OK(cmd_xfer(r->ctl, &c));
		ASSERT_EQ(waitpid(r->pid, &status, 0), r->pid);
		ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	close(r->ctl);
	remote_unexport(r->exp);
	if (r->mm)
		umm_mm_exit(r->mm);
	umm_mmu_notifier_synchronize(r->u);
	ASSERT_EQ(umm_mmu_notifier_checker_violations(r->u), 0);
	ASSERT_TRUE(machine_done(r->u));
	if (r->swap[0])
		unlink(r->swap);
	return true;
}

/* The importer's load/store of @len bytes at @addr: its return value. */
static int64_t rig_read(struct rig *r, uint64_t addr, void *buf, size_t len)
{
	struct cmd c = { .op = CMD_READ, .addr = addr, .len = len };

	if (cmd_xfer(r->ctl, &c))
		return -EPIPE;
	if (c.ret > 0)
		memcpy(buf, c.data, (size_t)c.ret);
	return c.ret;
}

static int64_t rig_write(struct rig *r, uint64_t addr, const void *buf, size_t len)
{
	struct cmd c = { .op = CMD_WRITE, .addr = addr, .len = len };

	memcpy(c.data, buf, len);
	if (cmd_xfer(r->ctl, &c))
		return -EPIPE;
	return c.ret;
}

/* The importer's figures: faults, invalidations, pages unmapped, mapped, released. */
static bool rig_stat(struct rig *r, uint64_t st[5])
{
	struct cmd c = { .op = CMD_STAT };

	ASSERT_OK(cmd_xfer(r->ctl, &c));
	memcpy(st, c.arg, 5 * sizeof(uint64_t));
	return true;
}

static struct remote_export_stat exp_stat(struct rig *r)
{
	struct remote_export_stat st;

	remote_export_get_stat(r->exp, &st);
	return st;
}

/* Does the importer read the pattern write_pat(@tag) left at page @n? */
static bool imp_pat(struct rig *r, uint64_t n, uint64_t tag)
{
	uint8_t buf[PS];

	ASSERT_EQ(rig_read(r, AT(n), buf, PS), PS);
	if (!page_is_pat(buf, AT(n), tag)) {
		TAP_DIAG("importer: page %" PRIu64 " does not hold pattern %" PRIu64, n, tag);
		return false;
	}
	return true;
}

/* The importer stores pattern @tag at page @n. */
static bool imp_write_pat(struct rig *r, uint64_t n, uint64_t tag)
{
	uint64_t w[PS / 8];

	pat_fill(w, AT(n), tag);
	ASSERT_EQ(rig_write(r, AT(n), w, PS), PS);
	return true;
}

static bool imp_zeros(struct rig *r, uint64_t n)
{
	uint64_t w[PS / 8];

	ASSERT_EQ(rig_read(r, AT(n), w, PS), PS);
	ASSERT_TRUE(page_zero(w));
	return true;
}

/* ---- basic tests ---- */

static bool test_read_write(void)
{
	struct rig r;
	uint8_t buf[64], want[64];
	uint64_t st[5];

	ASSERT_TRUE(rig_up(&r, 8, 1));
	ASSERT_TRUE(write_pat(r.mm, AT(0), 4, 1));
	for (int n = 0; n < 4; n++)
		ASSERT_TRUE(imp_pat(&r, n, 1));
	/* across a page boundary, and beyond the range */
	ASSERT_EQ(umm_read(r.mm, AT(1) - 32, want, 64), 64);
	ASSERT_EQ(rig_read(&r, AT(1) - 32, buf, 64), 64);
	ASSERT_EQ(memcmp(buf, want, 64), 0);
	ASSERT_EQ(rig_read(&r, AT(8) - 16, buf, 64), 16);
	ASSERT_ERR(rig_read(&r, AT(8), buf, 1), EFAULT);
	ASSERT_ERR(rig_read(&r, BASE - 1, buf, 1), EFAULT);
	/* the other way: the importer's stores, seen by the exporter's loads */
	ASSERT_TRUE(imp_write_pat(&r, 5, 2));
	ASSERT_TRUE(check_pat(r.mm, AT(5), 1, 2));
	ASSERT_TRUE(imp_write_pat(&r, 2, 3));	/* a page it had mapped read-only */
	ASSERT_TRUE(check_pat(r.mm, AT(2), 1, 3));
	/* a never-touched page reads as zero (the zero frame, mapped read-only) */
	ASSERT_TRUE(imp_zeros(&r, 7));
	ASSERT_TRUE(put_byte(r.mm, AT(7) + 5, 0x5a));
	ASSERT_EQ(rig_read(&r, AT(7) + 5, buf, 1), 1);
	ASSERT_EQ(buf[0], 0x5a);

	ASSERT_TRUE(rig_stat(&r, st));
	ASSERT_GE(st[0], 7);			/* faults */
	ASSERT_GE(exp_stat(&r).invalidations, 1);	/* zero frame replaced under it */
	ASSERT_TRUE(machine_valid(r.u));	/* translations hold no reference */
	return rig_down(&r);
}

/*
 * umm_mm_fork write-protects the parent: the importer's writable mapping
 * must go, and its next store must break COW in the parent (the child keeps
 * the old contents).  A read-only mapping of a COW-shared frame must go
 * when the parent breaks COW: afterwards the importer sees the parent's copy.
 */
static bool test_cow_fork(void)
{
	struct umm_mm *child;
	struct rig r;

	ASSERT_TRUE(rig_up(&r, 4, 1));
	ASSERT_TRUE(write_pat(r.mm, AT(0), 4, 1));
	ASSERT_TRUE(imp_write_pat(&r, 0, 2));	/* mapped writable */
	ASSERT_TRUE(imp_pat(&r, 1, 1));		/* mapped read-only */
	ASSERT_OK(umm_mm_fork(r.mm, &child));

	ASSERT_TRUE(imp_write_pat(&r, 0, 3));
	ASSERT_TRUE(check_pat(r.mm, AT(0), 1, 3));
	ASSERT_TRUE(check_pat(child, AT(0), 1, 2));

	ASSERT_TRUE(write_pat(r.mm, AT(1), 1, 4));	/* the parent breaks COW */
	ASSERT_TRUE(imp_pat(&r, 1, 4));
	ASSERT_TRUE(check_pat(child, AT(1), 1, 1));
	/* and the child's own store does not reach the importer */
	ASSERT_TRUE(write_pat(child, AT(1), 1, 5));
	ASSERT_TRUE(imp_pat(&r, 1, 4));
	ASSERT_TRUE(machine_valid(r.u));
	umm_mm_exit(child);
	ASSERT_TRUE(imp_pat(&r, 0, 3));
	return rig_down(&r);
}

static bool test_munmap(void)
{
	struct rig r;
	uint8_t b;

	ASSERT_TRUE(rig_up(&r, 4, 1));
	ASSERT_TRUE(write_pat(r.mm, AT(0), 4, 1));
	for (int n = 0; n < 4; n++)
		ASSERT_TRUE(imp_pat(&r, n, 1));
	ASSERT_OK(umm_munmap(r.mm, AT(1), PG(2)));
	ASSERT_EQ(exp_stat(&r).mapped, 2);
	ASSERT_ERR(rig_read(&r, AT(1), &b, 1), EFAULT);
	ASSERT_ERR(rig_write(&r, AT(2), &b, 1), EFAULT);
	ASSERT_TRUE(imp_pat(&r, 0, 1));
	ASSERT_TRUE(imp_pat(&r, 3, 1));
	/* a new mapping there: fresh zero pages */
	ASSERT_OK(map_at(r.mm, AT(1), 2, RW, PRIV));
	ASSERT_TRUE(imp_zeros(&r, 1));
	ASSERT_TRUE(imp_write_pat(&r, 2, 6));
	ASSERT_TRUE(check_pat(r.mm, AT(2), 1, 6));
	return rig_down(&r);
}

static bool test_mprotect(void)
{
	struct rig r;
	uint8_t b = 7;

	ASSERT_TRUE(rig_up(&r, 4, 1));
	ASSERT_TRUE(imp_write_pat(&r, 0, 1));
	ASSERT_OK(umm_mprotect(r.mm, AT(0), PG(4), RO));
	ASSERT_ERR(rig_write(&r, AT(0), &b, 1), EFAULT);
	ASSERT_ERR(rig_write(&r, AT(3), &b, 1), EFAULT);
	ASSERT_TRUE(imp_pat(&r, 0, 1));
	ASSERT_OK(umm_mprotect(r.mm, AT(0), PG(4), UMM_PROT_NONE));
	ASSERT_ERR(rig_read(&r, AT(0), &b, 1), EFAULT);
	ASSERT_OK(umm_mprotect(r.mm, AT(0), PG(4), RW));
	ASSERT_EQ(rig_write(&r, AT(0) + 9, &b, 1), 1);
	ASSERT_EQ(byte_at(r.mm, AT(0) + 9), 7);
	return rig_down(&r);
}

static bool test_dontneed(void)
{
	struct rig r;

	ASSERT_TRUE(rig_up(&r, 4, 1));
	ASSERT_TRUE(imp_write_pat(&r, 0, 1));
	ASSERT_TRUE(imp_write_pat(&r, 1, 1));
	ASSERT_OK(umm_madvise(r.mm, AT(0), PG(1), UMM_MADV_DONTNEED));
	ASSERT_TRUE(imp_zeros(&r, 0));
	ASSERT_TRUE(zeros_at(r.mm, AT(0), 1));
	ASSERT_TRUE(imp_pat(&r, 1, 1));
	ASSERT_TRUE(check_pat(r.mm, AT(1), 1, 1));
	return rig_down(&r);
}

/* The importer is killed holding writable mappings: munmap must not wait for it. */
static bool test_importer_dies(void)
{
	struct remote_export_stat st;
	struct rig r;
	int status;

	ASSERT_TRUE(rig_up(&r, 8, 1));
	for (int n = 0; n < 8; n++)
		ASSERT_TRUE(imp_write_pat(&r, n, 1));
	ASSERT_EQ(exp_stat(&r).mapped, 8);
	ASSERT_OK(kill(r.pid, SIGKILL));
	ASSERT_EQ(waitpid(r.pid, &status, 0), r.pid);
	r.pid = 0;
	ASSERT_TRUE(check_pat(r.mm, AT(0), 8, 1));	/* its stores stay */
	ASSERT_OK(umm_munmap(r.mm, AT(0), PG(8)));
	st = exp_stat(&r);
	ASSERT_TRUE(st.peer_gone);
	ASSERT_EQ(st.mapped, 0);
	return rig_down(&r);
}

/* Exit: ->release tells the importer, which unmaps everything; later accesses: -ESRCH. */
static bool test_release(void)
{
	struct rig r;
	uint64_t st[5];
	uint8_t b;

	ASSERT_TRUE(rig_up(&r, 4, 1));
	ASSERT_TRUE(imp_write_pat(&r, 0, 1));
	ASSERT_TRUE(imp_pat(&r, 0, 1));
	/*
	 * The fault server's last install happened before the importer got
	 * its reply, but TSan cannot see an order made through another
	 * process: take the exporter's lock to show it.
	 */
	exp_stat(&r);
	umm_mm_exit(r.mm);
	r.mm = NULL;
	ASSERT_TRUE(exp_stat(&r).released);
	ASSERT_EQ(exp_stat(&r).mapped, 0);
	ASSERT_TRUE(rig_stat(&r, st));
	ASSERT_EQ(st[3], 0);			/* nothing mapped */
	ASSERT_EQ(st[4], 1);			/* released */
	ASSERT_ERR(rig_read(&r, AT(0), &b, 1), ESRCH);
	ASSERT_ERR(rig_write(&r, AT(1), &b, 1), ESRCH);
	return rig_down(&r);
}

/*
 * The OOM reaper cannot wait for a message: while the importer maps the
 * range, its non-blockable start answers -EAGAIN and the range stays.
 */
/*
 * umm_mm_oom_reap(), tried again (as the kernel's reaper retries) while the
 * exporter refused only because its lock was taken at that moment - by its
 * fault server or ACK reader, whose timing the test does not control.
 */
static int oom_reap_unbusy(struct rig *r)
{
	int err;

	for (int i = 0; i < 1000; i++) {
		unsigned long busy = exp_stat(r).eagain_busy;

		err = umm_mm_oom_reap(r->mm);
		if (err != -EAGAIN || exp_stat(r).eagain_busy == busy)
			break;
		sleep_ms(1);
	}
	return err;
}

static bool test_oom_reap(void)
{
	struct rig r;
	int err;

	ASSERT_TRUE(rig_up(&r, 4, 1));
	ASSERT_TRUE(write_pat(r.mm, AT(0), 4, 1));
	ASSERT_TRUE(imp_pat(&r, 2, 1));
	err = oom_reap_unbusy(&r);
	if (err == -ENOSYS) {
		TAP_DIAG("umm_mm_oom_reap: -ENOSYS, not checked");
		return rig_down(&r);
	}
	ASSERT_ERR(err, EAGAIN);
	ASSERT_GE(exp_stat(&r).eagain, 1);
	ASSERT_TRUE(imp_pat(&r, 2, 1));		/* still there, still mapped */
	ASSERT_OK(umm_madvise(r.mm, AT(2), PG(1), UMM_MADV_DONTNEED));
	ASSERT_EQ(exp_stat(&r).mapped, 0);
	ASSERT_OK(oom_reap_unbusy(&r));
	return rig_down(&r);
}

/*
 * Shared memory: a MAP_SHARED anonymous range is one object for the parent,
 * its fork and the importer; and a shared file mapping, where msync's
 * page_mkclean must take the importer's write permission away so that its
 * next store dirties the page again and reaches the file.
 */
static bool test_shared_and_file(void)
{
	struct umm_mm *child;
	struct umm_file *file;
	uint64_t st0[5], st1[5], w[PS / 8];
	char path[128];
	struct rig r;
	int fd;

	ASSERT_TRUE(rig_up(&r, 4, 1));
	ASSERT_OK(map_at(r.mm, AT(0), 2, RW, SHRD));
	ASSERT_TRUE(imp_write_pat(&r, 0, 1));
	ASSERT_OK(umm_mm_fork(r.mm, &child));
	ASSERT_TRUE(check_pat(child, AT(0), 1, 1));
	ASSERT_TRUE(imp_write_pat(&r, 0, 2));		/* no COW: one object */
	ASSERT_TRUE(check_pat(child, AT(0), 1, 2));
	ASSERT_TRUE(write_pat(child, AT(1), 1, 3));
	ASSERT_TRUE(imp_pat(&r, 1, 3));
	umm_mm_exit(child);

	snprintf(path, sizeof(path), "/tmp/umm-remote-%d", (int)getpid());
	fd = open(path, O_CREAT | O_TRUNC | O_RDWR, 0644);
	ASSERT_TRUE(fd >= 0);
	ASSERT_EQ(ftruncate(fd, PG(2)), 0);
	ASSERT_OK(umm_file_open(r.u, path, O_RDWR, &file));
	ASSERT_OK(map_file(r.mm, AT(2), 2, RW, UMM_MAP_SHARED, file, 0));
	ASSERT_TRUE(imp_write_pat(&r, 2, 4));
	ASSERT_OK(umm_msync(r.mm, AT(2), PG(2), UMM_MS_SYNC));
	ASSERT_EQ(pread(fd, w, PS, 0), PS);
	ASSERT_TRUE(page_is_pat(w, AT(2), 4));
	ASSERT_TRUE(rig_stat(&r, st0));
	ASSERT_TRUE(imp_write_pat(&r, 2, 5));		/* must fault: the PTE is clean */
	ASSERT_TRUE(rig_stat(&r, st1));
	ASSERT_EQ(st1[0], st0[0] + 1);
	ASSERT_OK(umm_msync(r.mm, AT(2), PG(2), UMM_MS_SYNC));
	ASSERT_EQ(pread(fd, w, PS, 0), PS);
	ASSERT_TRUE(page_is_pat(w, AT(2), 5));
	ASSERT_TRUE(machine_valid(r.u));
	ASSERT_OK(umm_munmap(r.mm, AT(2), PG(2)));
	umm_file_put(file);
	close(fd);
	unlink(path);
	return rig_down(&r);
}

/* ---- differential stress ---- */

static ssize_t exp_rd(void *ctx, uint64_t addr, void *buf, size_t len)
{
	return umm_read(ctx, addr, buf, len);
}

static ssize_t exp_wr(void *ctx, uint64_t addr, const void *buf, size_t len)
{
	return umm_write(ctx, addr, buf, len);
}

#define NR_RACER_OPS	10

struct racer {
	struct rig *r;
	const struct layout *l;
	uint64_t rnd;
	atomic_int *stop;
	uint64_t *ctr;			/* the model: the twins' counters are the racer's */
	uint64_t twin_ctr;
	unsigned long ops[NR_RACER_OPS];
	unsigned long ksm_sharing;	/* the most pages_sharing seen after a scan */
	bool has_ksm, has_reclaim, has_migrate, has_compact;
	unsigned long errors;
	char what[200];
};

static const char *const racer_op_name[] = {
	"fork", "munmap+mmap", "mprotect", "dontneed", "page_referenced", "ksm", "reclaim",
	"migrate", "twins", "compact",
};

static void racer_err(struct racer *rc, const char *fmt, long a, long b)
{
	if (!rc->errors++)
		snprintf(rc->what, sizeof(rc->what), fmt, a, b);
	atomic_store(rc->stop, 1);
}

/*
 * A forked child's view of page @p: a frozen snapshot, so every word of
 * one stamp (a store caught half way is impossible: fork waits for
 * accesses in progress and for the importer's ACK).
 */
static bool child_page_ok(const struct layout *l, const uint64_t *w, uint64_t p)
{
	uint64_t min, ctr = (w[0] ^ word_mix(0)) & CTR_MASK;

	if (page_zero(w))
		return zappable(l, p);
	if (stamp_loose(w, tag_of(l, p), owner_of(l, p), false, &min) >= 0)
		return false;
	return stamp_exact(w, tag_of(l, p), owner_of(l, p), ctr, false);
}

static void racer_fork(struct racer *rc)
{
	const struct layout *l = rc->l;
	struct umm_mm *child;
	uint64_t *snap, w[PS / 8];
	int err = umm_mm_fork(rc->r->mm, &child);

	if (err) {
		racer_err(rc, "umm_mm_fork: %ld", err, 0);
		return;
	}
	snap = calloc(l->npages, PS);
	for (uint64_t p = 0; p < l->npages && !rc->errors; p++) {
		uint64_t *s = snap + p * (PS / 8);
		ssize_t r = umm_read(child, l->base + PG(p), s, PS);

		if (r == -EFAULT && zappable(l, p)) {
			s[0] = 1;		/* a hole: stays a hole */
			continue;
		}
		if (r != PS || !child_page_ok(l, s, p))
			racer_err(rc, "child page %ld not a snapshot (read %ld)", (long)p, r);
	}
	sleep_us(300);
	for (uint64_t p = 0; p < l->npages && !rc->errors; p++) {
		uint64_t *s = snap + p * (PS / 8);
		ssize_t r = umm_read(child, l->base + PG(p), w, PS);

		if (r == -EFAULT && s[0] == 1 && zappable(l, p))
			continue;
		if (r != PS || memcmp(w, s, PS))
			racer_err(rc, "child page %ld changed after fork (read %ld)", (long)p, r);
	}
	free(snap);
	umm_mm_exit(child);
}

/* Write every twin with the same new bytes (a page made read-only keeps its old ones). */
static int racer_twins(struct racer *rc)
{
	const struct layout *l = rc->l;
	uint64_t w[PS / 8];

	rc->twin_ctr++;
	stamp_fill(w, 0, TWIN_OWNER, rc->twin_ctr);
	for (uint64_t p = 0; p < l->npages; p++) {
		ssize_t r;

		if (!is_twin(l, p))
			continue;
		r = umm_write(rc->r->mm, l->base + PG(p), w, PS);
		if (r == PS)
			rc->ctr[p] = rc->twin_ctr;
		else if (r != -EFAULT)
			return (int)r;
	}
	return 0;
}

/* A random window of 1..@max pages in [first, last). */
static void racer_window(struct racer *rc, uint64_t first, uint64_t last, uint64_t max,
			 uint64_t *addr, uint64_t *len)
{
	uint64_t p = first + tap_rand(&rc->rnd) % (last - first);
	uint64_t n = 1 + tap_rand(&rc->rnd) % max;

	if (p + n > last)
		n = last - p;
	*addr = rc->l->base + PG(p);
	*len = PG(n);
}

static void *racer_thread(void *arg)
{
	struct racer *rc = arg;
	const struct layout *l = rc->l;
	struct umm_mm *mm = rc->r->mm;
	struct umm *u = rc->r->u;
	double deadline = now_s() + l->duration_ms / 1000.0;
	uint64_t zap0 = l->npages - l->nzap;

	while (!atomic_load(rc->stop) && now_s() < deadline) {
		int op = (int)(tap_rand(&rc->rnd) % NR_RACER_OPS);
		uint64_t addr, len;
		int err = 0;

		switch (op) {
		case 0:
			racer_fork(rc);
			break;
		case 1:
			racer_window(rc, zap0, l->npages, 4, &addr, &len);
			err = umm_munmap(mm, addr, len);
			sleep_us(50);
			if (!err)
				err = map_at(mm, addr, len / PS, RW, PRIV);
			break;
		case 2:
			racer_window(rc, 0, l->npages, 8, &addr, &len);
			err = umm_mprotect(mm, addr, len, RO);
			sleep_us(50);
			if (!err)
				err = umm_mprotect(mm, addr, len, RW);
			break;
		case 3:
			racer_window(rc, zap0, l->npages, 4, &addr, &len);
			err = umm_madvise(mm, addr, len, UMM_MADV_DONTNEED);
			break;
		case 4:
			racer_window(rc, 0, l->npages, 1, &addr, &len);
			err = umm_page_referenced(mm, addr);
			err = err == -EFAULT || err >= 0 ? 0 : err;
			break;
		case 5:
			if (!rc->has_ksm)
				continue;
			err = umm_madvise(mm, l->base, PG(l->npages), UMM_MADV_MERGEABLE);
			if (!err)
				err = umm_ksm_scan(u, 2 * l->npages);
			if (!err) {
				struct umm_ksm_stats ks;

				umm_ksm_get_stats(u, &ks);
				if (ks.pages_sharing > rc->ksm_sharing)
					rc->ksm_sharing = ks.pages_sharing;
			}
			break;
		case 6: {
			unsigned long got;

			if (!rc->has_reclaim)
				continue;
			if (tap_rand(&rc->rnd) & 1) {
				err = umm_reclaim(u, 16, &got);
			} else {	/* swap a window out: the importer must fault it back */
				racer_window(rc, 0, l->npages, 8, &addr, &len);
				err = umm_madvise(mm, addr, len, UMM_MADV_PAGEOUT);
				err = err == -ENOMEM ? 0 : err;	/* a hole */
			}
			break;
		}
		case 7: {
			uint64_t addrs[4];
			int nodes[4], status[4];

			if (!rc->has_migrate)
				continue;
			for (int i = 0; i < 4; i++) {
				racer_window(rc, 0, l->npages, 1, &addrs[i], &len);
				nodes[i] = (int)(tap_rand(&rc->rnd) % 2);
			}
			err = umm_move_pages(mm, 4, addrs, nodes, status);
			break;
		}
		case 8:
			err = racer_twins(rc);
			break;
		case 9: {
			uint64_t pfn;

			if (!rc->has_compact)
				continue;
			err = umm_compact(u, (int)(tap_rand(&rc->rnd) % 2), 16, &pfn);
			err = err == -EBUSY || err == -ENOMEM ? 0 : err;
			break;
		}
		}
		if (err < 0) {
			racer_err(rc, "racer op %ld: %ld", op, err);
			break;
		}
		rc->ops[op]++;
		sleep_us(200);
	}
	return NULL;
}

/* Does the engine have @what?  (-ENOSYS until its subsystem lands.) */
static bool engine_has(struct rig *r, int what)
{
	unsigned long got;
	int node = 0, status;
	uint64_t addr = BASE;

	switch (what) {
	case 0:
		return umm_ksm_scan(r->u, 0) != -ENOSYS;
	case 1:
		return umm_reclaim(r->u, 0, &got) != -ENOSYS;
	case 2:
		return umm_move_pages(r->mm, 1, &addr, &node, &status) != -ENOSYS;
	default:
		return umm_compact(r->u, 0, 1, &addr) != -ENOSYS;
	}
}

/*
 * The end of a run: both processes' views of every page agree, and match
 * the model (every owner's last counter; zero allowed where zaps ran).
 */
static bool stress_verify(struct rig *r, const struct layout *l, const uint64_t *ctr)
{
	struct cmd c = { .op = CMD_HASH, .addr = l->base, .len = l->npages };
	const uint64_t *h = (const uint64_t *)c.data;
	uint64_t w[PS / 8];

	ASSERT_OK(cmd_xfer(r->ctl, &c));
	ASSERT_EQ(c.ret, 0);			/* the importer read every page */
	for (uint64_t p = 0; p < l->npages; p++) {
		unsigned int owner = owner_of(l, p);

		ASSERT_EQ(umm_read(r->mm, l->base + PG(p), w, PS), PS);
		if (page_hash(w) != h[p]) {
			TAP_DIAG("page %" PRIu64 ": the importer sees other bytes than umm_read", p);
			return false;
		}
		if (!stamp_exact(w, tag_of(l, p), owner, ctr[p], zappable(l, p))) {
			TAP_DIAG("page %" PRIu64 " (owner %u, %s): not counter %" PRIu64
				 ", word 0 %#" PRIx64, p, owner,
				 owner_is_exporter(l, owner) ? "exporter" : "importer", ctr[p], w[0]);
			return false;
		}
	}
	return true;
}

/*
 * One run: @nexp exporter owners and the racer here, @nimp importer owners
 * there, for @secs.  With @kill, the importer is killed a third of the way
 * in, holding mappings: the exporter's side must run to the end (no
 * invalidation may wait for it) and its own pages must still be exact.
 */
static bool stress_run(unsigned int nexp, unsigned int nimp, uint64_t npages, double secs,
		       bool kill_importer)
{
	struct layout l = {
		.npages = npages, .nzap = npages / 4, .ntwin = npages / 8,
		.nexp = nexp, .nimp = nimp,
		.base = BASE,
	};
	struct cmd c = { .op = CMD_STRESS };
	struct owner_run runs[8];
	pthread_t tids[8], rtid;
	struct racer rc;
	atomic_int stop = 0;
	uint64_t *ctr, w[PS / 8];
	struct remote_export_stat est;
	unsigned long writes = 0, reads = 0, efault = 0, errors = 0;
	struct layout li;
	struct rig r;
	int status;

	ASSERT_TRUE(nexp <= 8 && npages <= MAX_PAGES);
	l.seed = tap_seed();
	l.duration_ms = (unsigned int)(secs * 1000);
	ASSERT_TRUE(rig_up_swap(&r, npages, 2, true));
	ctr = calloc(npages, sizeof(*ctr));
	/* counter 0 everywhere: region A never holds a zero word */
	for (uint64_t p = 0; p < npages; p++) {
		stamp_fill(w, tag_of(&l, p), owner_of(&l, p), 0);
		ASSERT_EQ(umm_write(r.mm, BASE + PG(p), w, PS), PS);
	}
	memset(&rc, 0, sizeof(rc));
	rc.r = &r;
	rc.l = &l;
	rc.rnd = l.seed ^ 0x5eed;
	rc.stop = &stop;
	rc.ctr = ctr;
	rc.has_ksm = engine_has(&r, 0);
	rc.has_reclaim = engine_has(&r, 1);
	rc.has_migrate = engine_has(&r, 2);
	rc.has_compact = engine_has(&r, 3);

	li = l;
	if (kill_importer)
		li.duration_ms *= 100;		/* it will not see the end */
	memcpy(c.arg, &li, sizeof(li));
	ASSERT_EQ(send(r.ctl, &c, sizeof(c), MSG_NOSIGNAL), sizeof(c));
	for (unsigned int t = 0; t < nexp; t++) {
		struct owner_run *o = &runs[t];

		memset(o, 0, sizeof(*o));
		o->l = &l;
		o->owner = t + 1;
		o->rnd = l.seed * 31 + o->owner;
		o->ctr = ctr;
		o->seen = calloc(npages, sizeof(uint64_t));
		o->rd = exp_rd;
		o->wr = exp_wr;
		o->ctx = r.mm;
		o->stop = &stop;
		ASSERT_OK(-pthread_create(&tids[t], NULL, owner_thread, o));
	}
	ASSERT_OK(-pthread_create(&rtid, NULL, racer_thread, &rc));
	if (kill_importer) {
		/* once it is busy (a sanitized exec takes a while), in the middle */
		for (int i = 0; i < 10000 && exp_stat(&r).faults < 32; i++)
			sleep_us(1000);
		sleep_us((long)(secs * 1e6 / 3));
		kill(r.pid, SIGKILL);
		waitpid(r.pid, &status, 0);
		r.pid = 0;
	}
	pthread_join(rtid, NULL);
	for (unsigned int t = 0; t < nexp; t++) {
		struct owner_run *o = &runs[t];

		pthread_join(tids[t], NULL);
		if (o->errors)
			TAP_DIAG("exporter owner %u: %s", o->owner, o->what);
		writes += o->writes;
		reads += o->reads;
		efault += o->efault;
		errors += o->errors;
		free(o->seen);
	}
	if (rc.errors)
		TAP_DIAG("racer: %s", rc.what);
	memset(c.arg, 0, sizeof(c.arg));
	c.ret = 0;
	if (!kill_importer)
		ASSERT_EQ(recv(r.ctl, &c, sizeof(c), 0), sizeof(c));
	est = exp_stat(&r);
	TAP_DIAG("exporter: %lu writes %lu reads %lu efault; importer: %" PRIu64 " writes %"
		 PRIu64 " reads %" PRIu64 " efault; %lu faults (%lu retried), %lu invalidations"
		 " (%lu with nothing mapped)", writes, reads, efault, c.arg[0], c.arg[1],
		 c.arg[2], est.faults, est.fault_retries, est.invalidations, est.inval_skipped);
	{
		char line[256];
		int n = 0;

		for (int op = 0; op < NR_RACER_OPS; op++)
			n += snprintf(line + n, sizeof(line) - n, " %s %lu", racer_op_name[op],
				      rc.ops[op]);
		struct umm_vmscan_stat vs;

		umm_get_vmscan_stat(r.u, &vs);
		TAP_DIAG("racer:%s", line);
		TAP_DIAG("KSM merged up to %lu pages; %" PRIu64 " pages swapped out, %" PRIu64
			 " in; %" PRIu64 " migrated", rc.ksm_sharing, vs.pswpout, vs.pswpin,
			 vs.pgmigrate_success);
	}
	ASSERT_EQ(errors, 0);
	ASSERT_EQ(rc.errors, 0);
	ASSERT_EQ(c.ret, 0);
	ASSERT_TRUE(writes > 0 && est.faults > 0);
	if (kill_importer) {
		/* its pages are frozen: check the exporter's exactly, its loosely */
		ASSERT_TRUE(est.peer_gone);
		ASSERT_EQ(est.mapped, 0);
		for (uint64_t p = 0; p < npages; p++) {
			unsigned int owner = owner_of(&l, p);
			uint64_t min;

			ASSERT_EQ(umm_read(r.mm, BASE + PG(p), w, PS), PS);
			if (owner_is_exporter(&l, owner))
				ASSERT_TRUE(stamp_exact(w, tag_of(&l, p), owner, ctr[p],
							zappable(&l, p)));
			else
				ASSERT_EQ(stamp_loose(w, p, owner, zappable(&l, p), &min), -1);
		}
	} else {
		ASSERT_TRUE(c.arg[0] > 0 && c.arg[1] > 0);
		/* the importer's counters for its pages complete the model */
		for (uint64_t p = 0; p < npages; p++)
			if (!owner_is_exporter(&l, owner_of(&l, p)))
				ctr[p] = ((uint64_t *)c.data)[p];
		ASSERT_TRUE(stress_verify(&r, &l, ctr));
		/* quiescent, the importer idle but mapping pages: they hold no reference */
		ASSERT_GE(exp_stat(&r).mapped, 1);
	}
	ASSERT_TRUE(machine_valid(r.u));
	free(ctr);
	return rig_down(&r);
}

static bool test_stress(void)
{
	return stress_run(2, 2, 64, budget_s(3), false);
}

/* The importer killed in the middle of a stress run. */
static bool test_stress_importer_dies(void)
{
	return stress_run(2, 2, 64, budget_s(1.5), true);
}

int main(int argc, char **argv)
{
	if (argc == 4 && !strcmp(argv[1], ROLE_IMPORTER))
		return importer_main(atoi(argv[2]), atoi(argv[3]));
	RUN_TEST(test_read_write);
	RUN_TEST(test_cow_fork);
	RUN_TEST(test_munmap);
	RUN_TEST(test_mprotect);
	RUN_TEST(test_dontneed);
	RUN_TEST(test_importer_dies);
	RUN_TEST(test_release);
	RUN_TEST(test_oom_reap);
	RUN_TEST(test_shared_and_file);
	RUN_TEST(test_stress);
	RUN_TEST(test_stress_importer_dies);
	return tap_done();
}
