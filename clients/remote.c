// SPDX-License-Identifier: MIT
/*
 * remote.c - an XPMEM-style secondary MMU in another process: the exporter
 * serves translations of a range of one mm over a Unix socket, the
 * importer maps the frames from the arena's memfd and accesses them
 * directly.  The protocol is described in remote.h.
 *
 * Exporter threads: the receiver (reads every message: queues FAULTs,
 * records ACKs, notices the importer leaving) and the fault server (one
 * GUP at a time).  Invalidations run on whichever thread changes the PTE
 * and sleep for their ACK; they never depend on the fault server, which
 * may itself be the thread invalidating (a write GUP that breaks COW).
 *
 * Importer threads: the receiver applies FAULT_REPLYs, INVALIDATEs and
 * RELEASE to the window in arrival order, under the window lock held for
 * write; accessors hold it for read while they copy, and never while they
 * wait for a reply.
 *
 * Lock order (exporter): exp->lock is taken inside notifier callbacks
 * (under the engine's locks), so it is never held across a call into umm
 * that can fault or invalidate; only the checker's calls and a put of a
 * page still mapped (a decrement) run under it.  It also orders the
 * exporter's sends.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#include "remote.h"

#define PS		UMM_PAGE_SIZE
#define FAULT_QUEUE	64U	/* FAULTs waiting for the server: one per importer slot */
#define IMPORT_SLOTS	64U	/* FAULTs an importer keeps in flight */

/* ---- messages ---- */

/* Send one message, and @fd with it if >= 0.  Return: 0 or -errno. */
static int msg_send(int sock, const struct remote_msg *m, int fd)
{
	struct iovec iov = { .iov_base = (void *)m, .iov_len = sizeof(*m) };
	union {
		struct cmsghdr hdr;
		char buf[CMSG_SPACE(sizeof(int))];
	} cbuf;
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	ssize_t r;

	if (fd >= 0) {
		struct cmsghdr *c;

		memset(&cbuf, 0, sizeof(cbuf));
		mh.msg_control = cbuf.buf;
		mh.msg_controllen = sizeof(cbuf.buf);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof(int));
	}
	do
		r = sendmsg(sock, &mh, MSG_NOSIGNAL);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return -errno;
	return r == sizeof(*m) ? 0 : -EPROTO;
}

/*
 * Receive one message; *@fd (if not NULL) gets a descriptor passed with it
 * or -1.  Return: 0, -ENOTCONN at EOF, -EPROTO for a short record, -errno.
 */
static int msg_recv(int sock, struct remote_msg *m, int *fd)
{
	struct iovec iov = { .iov_base = m, .iov_len = sizeof(*m) };
	union {
		struct cmsghdr hdr;
		char buf[CMSG_SPACE(sizeof(int))];
	} cbuf;
	struct msghdr mh = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = cbuf.buf, .msg_controllen = sizeof(cbuf.buf),
	};
	struct cmsghdr *c;
	ssize_t r;

	if (fd)
		*fd = -1;
	do
		r = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return -errno;
	if (r == 0)
		return -ENOTCONN;
	for (c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
			int got;

			memcpy(&got, CMSG_DATA(c), sizeof(int));
			if (fd && *fd < 0)
				*fd = got;
			else
				close(got);
		}
	}
	return r == sizeof(*m) ? 0 : -EPROTO;
}

/* ---- the exporter ---- */

struct rpage {
	uint64_t pfn;
	uint64_t unmap_id;	/* the INVALIDATE that unmaps it, until acknowledged */
	bool mapped;		/* the importer may map this frame */
	bool writable;
	bool young;		/* faulted in since the last aging call */
};

struct remote_export {
	struct umm_mmu_notifier mn;	/* first: the engine's view */
	struct umm_mm *mm;
	uint64_t start, end;
	int sock;

	pthread_mutex_t lock;		/* everything below; sends to the importer */
	pthread_cond_t cond;		/* acks, queued faults, invalidations ending */
	struct rpage *pages;		/* one per page of the range */
	unsigned long nr_mapped;
	unsigned long inval_seq;	/* bumped by every start and end in range */
	int inval_active;		/* starts in range without their end yet */
	uint64_t next_id, acked;	/* INVALIDATE/RELEASE ids sent, acknowledged */
	bool peer_gone, released, stopping;
	struct remote_msg queue[FAULT_QUEUE];	/* FAULTs for the server */
	unsigned int q_head, q_len;
	struct remote_export_stat st;
	atomic_ulong nr_eagain_busy;	/* non-blockable starts that found the lock taken */

	pthread_t rx_thread, fault_thread;
	bool rx_started, fault_started;
};

#define exp_of(sub)	((struct remote_export *)(sub))

/* Clip [@start, @end) to the exported range.  Return: false if empty. */
static bool exp_clip(const struct remote_export *exp, uint64_t *start, uint64_t *end)
{
	if (*start < exp->start)
		*start = exp->start;
	if (*end > exp->end)
		*end = exp->end;
	return *start < *end;
}

static inline struct rpage *exp_page(struct remote_export *exp, uint64_t addr)
{
	return &exp->pages[(addr - exp->start) / PS];
}

/*
 * Forget every translation in [start, end), to be unmapped by INVALIDATE
 * @id (0: the importer is gone, and the checker hears at once; else the
 * caller tells it once the importer has acknowledged).
 * Return: how many there were.  Context: exp->lock held.
 */
static unsigned long exp_drop(struct remote_export *exp, uint64_t start, uint64_t end,
			      uint64_t id)
{
	unsigned long n = 0;

	if (!exp->nr_mapped)
		return 0;
	for (uint64_t a = start; a < end; a += PS) {
		struct rpage *p = exp_page(exp, a);

		if (!p->mapped)
			continue;
		p->mapped = false;
		p->writable = false;
		p->unmap_id = id;
		if (!id)
			umm_mmu_notifier_check_unmap(&exp->mn, a, a + PS);
		n++;
	}
	exp->nr_mapped -= n;
	return n;
}

/*
 * The importer acknowledged every INVALIDATE up to @id for [start, end):
 * the pages they took are unmapped there now; tell the checker.
 * Context: exp->lock held, before exp->acked moves (a start that sees the
 * ACK must find the checker told).
 */
static void exp_unmapped(struct remote_export *exp, uint64_t start, uint64_t end, uint64_t id)
{
	if (!exp_clip(exp, &start, &end))
		return;
	for (uint64_t a = start; a < end; a += PS) {
		struct rpage *p = exp_page(exp, a);

		if (p->unmap_id && p->unmap_id <= id) {
			p->unmap_id = 0;
			umm_mmu_notifier_check_unmap(&exp->mn, a, a + PS);
		}
	}
}

/*
 * The INVALIDATE a start over [start, end) must see acknowledged before
 * the PTEs may change: the newest one still unmapping a page in range
 * (another invalidation dropped it, and its ACK has not come), or 0.
 * Context: exp->lock held.
 */
static uint64_t exp_unmapping(struct remote_export *exp, uint64_t start, uint64_t end)
{
	uint64_t id = 0;

	if (exp->acked == exp->next_id || exp->peer_gone)
		return 0;
	for (uint64_t a = start; a < end; a += PS) {
		uint64_t u = exp_page(exp, a)->unmap_id;

		if (u > exp->acked && u > id)
			id = u;
	}
	return id;
}

/* Does the importer map, or still unmap, a page of [start, end)? */
static bool exp_any_mapped(struct remote_export *exp, uint64_t start, uint64_t end)
{
	if (exp_unmapping(exp, start, end))
		return true;
	if (!exp->nr_mapped)
		return false;
	for (uint64_t a = start; a < end; a += PS)
		if (exp_page(exp, a)->mapped)
			return true;
	return false;
}

/*
 * The importer is gone (EOF, or a send failed): its mappings died with it.
 * Drop every record and wake everyone waiting for it.
 * Context: exp->lock held.
 */
static void exp_peer_gone(struct remote_export *exp)
{
	if (exp->peer_gone)
		return;
	exp->peer_gone = true;
	exp->st.peer_gone = true;
	exp_drop(exp, exp->start, exp->end, 0);
	exp_unmapped(exp, exp->start, exp->end, UINT64_MAX);
	pthread_cond_broadcast(&exp->cond);
}

/* Send to the importer.  Context: exp->lock held (it orders the sends). */
static void exp_send(struct remote_export *exp, struct remote_msg *m)
{
	if (exp->peer_gone)
		return;
	if (msg_send(exp->sock, m, -1))
		exp_peer_gone(exp);
}

/*
 * Drop the translations of [start, end) and ask the importer to unmap them
 * (RELEASE: everything).  Return: the id to wait for, 0 if nothing was
 * sent (nothing mapped, or the importer is gone).  Context: exp->lock held.
 */
static uint64_t exp_invalidate(struct remote_export *exp, enum remote_msg_type type,
			       uint64_t start, uint64_t end)
{
	struct remote_msg m = { .type = type, .start = start, .end = end };

	if (exp->peer_gone || !exp_drop(exp, start, end, exp->next_id + 1))
		return 0;
	m.id = ++exp->next_id;
	exp_send(exp, &m);	/* on failure: peer gone, every waiter woken */
	return m.id;
}

/*
 * Sleep until the importer acknowledged @id, or left: only then are the
 * translations it took really gone (and the receiver told the checker).
 */
static void exp_wait_ack(struct remote_export *exp, uint64_t id)
{
	umm_might_sleep();
	pthread_mutex_lock(&exp->lock);
	while (exp->acked < id && !exp->peer_gone)
		pthread_cond_wait(&exp->cond, &exp->lock);
	pthread_mutex_unlock(&exp->lock);
}

static int remote_invalidate_range_start(struct umm_mmu_notifier *sub,
					 const struct umm_mmu_notifier_range *range)
{
	struct remote_export *exp = exp_of(sub);
	uint64_t start = range->start, end = range->end, id, pending;

	if (!exp_clip(exp, &start, &end))
		return 0;
	if (!(range->flags & UMM_MMU_NOTIFIER_RANGE_BLOCKABLE)) {
		/*
		 * Waiting for the importer's ACK would sleep, and so could
		 * waiting for the lock (its holder may be sending): give up.
		 */
		if (pthread_mutex_trylock(&exp->lock)) {
			atomic_fetch_add(&exp->nr_eagain_busy, 1);
			return -EAGAIN;
		}
		if (exp_any_mapped(exp, start, end)) {
			exp->st.eagain++;
			pthread_mutex_unlock(&exp->lock);
			return -EAGAIN;
		}
	} else {
		pthread_mutex_lock(&exp->lock);
	}
	exp->inval_active++;
	exp->inval_seq++;
	/* a concurrent invalidation's INVALIDATE may still be on its way */
	pending = exp_unmapping(exp, start, end);
	id = exp_invalidate(exp, REMOTE_MSG_INVALIDATE, start, end);
	if (id)
		exp->st.invalidations++;
	else if (!pending)
		exp->st.inval_skipped++;
	pthread_mutex_unlock(&exp->lock);
	if (id || pending)
		exp_wait_ack(exp, id > pending ? id : pending);
	return 0;
}

static void remote_invalidate_range_end(struct umm_mmu_notifier *sub,
					const struct umm_mmu_notifier_range *range)
{
	struct remote_export *exp = exp_of(sub);
	uint64_t start = range->start, end = range->end;

	if (!exp_clip(exp, &start, &end))
		return;
	pthread_mutex_lock(&exp->lock);
	exp->inval_seq++;
	if (--exp->inval_active == 0)
		pthread_cond_broadcast(&exp->cond);
	pthread_mutex_unlock(&exp->lock);
}

/*
 * The address space is going: the engine will send no more invalidations,
 * and exit unmaps every frame next, so the importer must let go of all of
 * them before this returns.
 */
static void remote_release(struct umm_mmu_notifier *sub, struct umm_mm *mm)
{
	struct remote_export *exp = exp_of(sub);
	uint64_t id;

	pthread_mutex_lock(&exp->lock);
	exp->released = true;
	exp->st.released = true;
	id = exp_invalidate(exp, REMOTE_MSG_RELEASE, exp->start, exp->end);
	pthread_cond_broadcast(&exp->cond);	/* the fault server answers -ESRCH now */
	pthread_mutex_unlock(&exp->lock);
	if (id)
		exp_wait_ack(exp, id);
}

/* Young: the importer faulted a page of [start, end) in since the last call. */
static int exp_young(struct remote_export *exp, uint64_t start, uint64_t end, bool clear)
{
	int young = 0;

	if (!exp_clip(exp, &start, &end))
		return 0;
	pthread_mutex_lock(&exp->lock);
	for (uint64_t a = start; a < end; a += PS) {
		struct rpage *p = exp_page(exp, a);

		if (p->mapped && p->young) {
			young = 1;
			if (clear)
				p->young = false;
		}
	}
	pthread_mutex_unlock(&exp->lock);
	return young;
}

static int remote_clear_flush_young(struct umm_mmu_notifier *sub, struct umm_mm *mm,
				    uint64_t start, uint64_t end)
{
	return exp_young(exp_of(sub), start, end, true);
}

static int remote_test_young(struct umm_mmu_notifier *sub, struct umm_mm *mm, uint64_t addr)
{
	return exp_young(exp_of(sub), addr, addr + PS, false);
}

static const struct umm_mmu_notifier_ops remote_mn_ops = {
	.release		= remote_release,
	.clear_flush_young	= remote_clear_flush_young,
	.clear_young		= remote_clear_flush_young,
	.test_young		= remote_test_young,
	.invalidate_range_start	= remote_invalidate_range_start,
	.invalidate_range_end	= remote_invalidate_range_end,
};

/*
 * Record the translation of @addr to @pfn and send the reply, in one
 * critical section with the invalidations' drop-and-send.
 * Context: exp->lock held; no invalidation since the GUP that found @pfn.
 */
static void exp_install(struct remote_export *exp, uint64_t addr, uint64_t pfn, bool write,
			struct remote_msg *rep)
{
	struct rpage *p = exp_page(exp, addr);

	/* a record with another pfn cannot be here: its PTE change dropped it */
	if (!p->mapped) {
		exp->nr_mapped++;
		p->writable = false;
	}
	p->mapped = true;
	p->pfn = pfn;
	p->writable |= write;	/* a read after a write keeps the write permission */
	p->young = true;
	umm_mmu_notifier_check_map(&exp->mn, addr, pfn);
	rep->pfn = pfn;
	rep->flags = p->writable ? REMOTE_WRITABLE : 0;
	exp_send(exp, rep);
}

/*
 * Why no translation may be installed any more: -ESRCH after release or
 * unexport, -ENOTCONN once the importer is gone (a record made then would
 * never be dropped).  Context: exp->lock held.
 */
static int exp_refuses(const struct remote_export *exp)
{
	if (exp->released || exp->stopping)
		return -ESRCH;
	return exp->peer_gone ? -ENOTCONN : 0;
}

/*
 * Fault @addr in and tell the importer: GUP with the invalidation sequence
 * snapshotted, install only if no invalidation started or ran meanwhile
 * (else the frame may already be on its way out: retry), drop the GUP
 * reference.  Return: 0 (reply sent), or the errno to reply.
 */
static int exp_fault_in(struct remote_export *exp, uint64_t addr, bool write,
			struct remote_msg *rep)
{
	struct umm_page *page;
	unsigned long seq;
	int err;

	for (;;) {
		pthread_mutex_lock(&exp->lock);
		while (exp->inval_active && !exp_refuses(exp))
			pthread_cond_wait(&exp->cond, &exp->lock);
		seq = exp->inval_seq;
		err = exp_refuses(exp);
		pthread_mutex_unlock(&exp->lock);
		if (err)
			return err;

		err = umm_get_user_page(exp->mm, addr, write ? UMM_GUP_WRITE : 0, &page);
		if (err) {
			/* exit may have taken the mapping: say why */
			pthread_mutex_lock(&exp->lock);
			if (exp->released)
				err = -ESRCH;
			pthread_mutex_unlock(&exp->lock);
			return err;
		}

		pthread_mutex_lock(&exp->lock);
		err = exp_refuses(exp);
		if (!err && (exp->inval_active || exp->inval_seq != seq)) {
			exp->st.fault_retries++;	/* the frame may be on its way out */
			err = -EAGAIN;
		}
		if (!err) {
			/*
			 * No long-term pin: from here the notifier keeps the
			 * frame safe.  The PTE still maps it, so this put only
			 * drops a count, before the importer hears of the frame.
			 */
			umm_put_page(page);
			exp_install(exp, addr, umm_page_pfn(page), write, rep);
			pthread_mutex_unlock(&exp->lock);
			return 0;
		}
		pthread_mutex_unlock(&exp->lock);
		umm_put_page(page);
		if (err != -EAGAIN)
			return err;
	}
}

/* Serve one FAULT.  Return: the reply's err. */
static int exp_fault(struct remote_export *exp, const struct remote_msg *req)
{
	struct remote_msg rep = { .type = REMOTE_MSG_FAULT_REPLY, .id = req->id,
				  .start = req->start };
	int err = -EFAULT;

	if (req->start >= exp->start && req->start < exp->end)
		err = exp_fault_in(exp, req->start & ~(uint64_t)(PS - 1),
				   req->flags & REMOTE_WRITE, &rep);
	pthread_mutex_lock(&exp->lock);
	exp->st.faults++;
	if (err) {
		rep.err = err;
		exp_send(exp, &rep);
	}
	pthread_mutex_unlock(&exp->lock);
	return err;
}

static void *exp_fault_server(void *arg)
{
	struct remote_export *exp = arg;

	pthread_mutex_lock(&exp->lock);
	for (;;) {
		struct remote_msg req;

		while (!exp->q_len && !exp->stopping)
			pthread_cond_wait(&exp->cond, &exp->lock);
		if (!exp->q_len)
			break;
		req = exp->queue[exp->q_head];
		exp->q_head = (exp->q_head + 1) % FAULT_QUEUE;
		exp->q_len--;
		pthread_mutex_unlock(&exp->lock);
		exp_fault(exp, &req);
		pthread_mutex_lock(&exp->lock);
	}
	pthread_mutex_unlock(&exp->lock);
	return NULL;
}

static void *exp_receiver(void *arg)
{
	struct remote_export *exp = arg;
	struct remote_msg m;

	while (msg_recv(exp->sock, &m, NULL) == 0) {
		pthread_mutex_lock(&exp->lock);
		switch (m.type) {
		case REMOTE_MSG_FAULT:
			if (exp->q_len < FAULT_QUEUE) {
				exp->queue[(exp->q_head + exp->q_len++) % FAULT_QUEUE] = m;
				pthread_cond_broadcast(&exp->cond);
			} else {
				struct remote_msg rep = { .type = REMOTE_MSG_FAULT_REPLY,
							  .id = m.id, .start = m.start,
							  .err = -EBUSY };
				exp_send(exp, &rep);
			}
			break;
		case REMOTE_MSG_ACK:	/* in order; start, end echo the request */
			if (m.id > exp->acked && m.id <= exp->next_id) {
				exp_unmapped(exp, m.start, m.end, m.id);
				exp->acked = m.id;
				pthread_cond_broadcast(&exp->cond);
			}
			break;
		case REMOTE_MSG_GOODBYE:	/* it promises it unmapped everything */
			exp_peer_gone(exp);
			break;
		default:			/* not trusted to mean anything */
			break;
		}
		pthread_mutex_unlock(&exp->lock);
	}
	pthread_mutex_lock(&exp->lock);
	exp_peer_gone(exp);
	pthread_mutex_unlock(&exp->lock);
	return NULL;
}

static void exp_free(struct remote_export *exp)
{
	pthread_mutex_destroy(&exp->lock);
	pthread_cond_destroy(&exp->cond);
	free(exp->pages);
	free(exp);
}

int remote_export(struct umm *u, struct umm_mm *mm, uint64_t start, uint64_t len, int sock,
		  struct remote_export **out)
{
	struct remote_msg hello = { .type = REMOTE_MSG_HELLO, .magic = REMOTE_MAGIC };
	struct remote_export *exp;
	int type = 0, memfd, err;
	socklen_t tl = sizeof(type);
	uint64_t bytes;

	if (!u || !mm || !out || !len || (start | len) & (PS - 1) || start + len < start ||
	    getsockopt(sock, SOL_SOCKET, SO_TYPE, &type, &tl) || type != SOCK_SEQPACKET) {
		err = -EINVAL;
		goto out_close;
	}
	memfd = umm_arena_fd(u, &bytes);
	if (memfd < 0) {
		err = memfd;
		goto out_close;
	}
	exp = calloc(1, sizeof(*exp));
	if (!exp) {
		err = -ENOMEM;
		goto out_close;
	}
	exp->pages = calloc(len / PS, sizeof(*exp->pages));
	if (!exp->pages) {
		free(exp);
		err = -ENOMEM;
		goto out_close;
	}
	pthread_mutex_init(&exp->lock, NULL);
	pthread_cond_init(&exp->cond, NULL);
	exp->mm = mm;
	exp->start = start;
	exp->end = start + len;
	exp->sock = sock;
	exp->mn.ops = &remote_mn_ops;

	err = umm_mmu_notifier_register(&exp->mn, mm);
	if (err)
		goto out_free;
	hello.start = exp->start;
	hello.end = exp->end;
	hello.pfn = bytes;
	err = msg_send(sock, &hello, memfd);
	if (err)
		goto out_unregister;
	err = -pthread_create(&exp->rx_thread, NULL, exp_receiver, exp);
	if (err)
		goto out_unregister;
	exp->rx_started = true;
	err = -pthread_create(&exp->fault_thread, NULL, exp_fault_server, exp);
	if (err)
		goto out_unregister;
	exp->fault_started = true;
	*out = exp;
	return 0;

out_unregister:
	/* no receiver to hear an ACK: ->release must not wait for one */
	pthread_mutex_lock(&exp->lock);
	exp_peer_gone(exp);
	pthread_mutex_unlock(&exp->lock);
	remote_unexport(exp);
	return err;
out_free:
	exp_free(exp);
out_close:
	close(sock);
	return err;
}

void remote_unexport(struct remote_export *exp)
{
	if (!exp)
		return;
	/*
	 * The fault server first: unregister drops the registration's
	 * reference on the mm, which may be the last, and the server must
	 * not be inside a GUP then.  FAULTs still queued are refused.
	 */
	pthread_mutex_lock(&exp->lock);
	exp->stopping = true;
	pthread_cond_broadcast(&exp->cond);
	pthread_mutex_unlock(&exp->lock);
	if (exp->fault_started)
		pthread_join(exp->fault_thread, NULL);
	/* ->release (if exit has not run it) tells the importer and waits */
	umm_mmu_notifier_unregister(&exp->mn, exp->mm);
	shutdown(exp->sock, SHUT_RDWR);		/* the receiver sees EOF */
	if (exp->rx_started)
		pthread_join(exp->rx_thread, NULL);
	close(exp->sock);
	exp_free(exp);
}

void remote_export_get_stat(struct remote_export *exp, struct remote_export_stat *st)
{
	pthread_mutex_lock(&exp->lock);
	*st = exp->st;
	st->mapped = exp->nr_mapped;
	st->eagain_busy = atomic_load(&exp->nr_eagain_busy);
	pthread_mutex_unlock(&exp->lock);
}

/* ---- the importer ---- */

enum { SLOT_NONE, SLOT_READ, SLOT_WRITE };

struct fault_slot {
	uint64_t id;
	bool busy, done;
	int err;
};

struct remote_import {
	int sock, memfd;
	uint64_t start, end, arena_bytes;
	char *window;			/* [start, end) appears here */

	pthread_rwlock_t maplock;	/* read: copying through the window; write: changing it */
	uint8_t *state;			/* per page: SLOT_*; under maplock */
	unsigned long nr_mapped;

	pthread_mutex_t lock;		/* below */
	pthread_cond_t cond;
	struct fault_slot slots[IMPORT_SLOTS];
	uint64_t next_id;
	bool released, peer_gone;
	struct remote_import_stat st;

	pthread_t rx_thread;
};

/* Put a PROT_NONE reservation over [addr, addr + len) of the window. */
static int imp_reserve(void *addr, size_t len)
{
	void *p = mmap(addr, len, PROT_NONE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | (addr ? MAP_FIXED : 0), -1, 0);

	return p == MAP_FAILED ? -errno : 0;
}

/* Unmap the window's pages [first, last).  Context: maplock held for write. */
static unsigned long imp_unmap(struct remote_import *imp, uint64_t first, uint64_t last)
{
	unsigned long n = 0;

	for (uint64_t i = first; i < last; i++) {
		uint64_t j = i;

		if (imp->state[i] == SLOT_NONE)
			continue;
		while (j < last && imp->state[j] != SLOT_NONE)
			imp->state[j++] = SLOT_NONE;
		/* one MAP_FIXED replaces the run atomically */
		imp_reserve(imp->window + i * PS, (j - i) * PS);
		n += j - i;
		i = j;
	}
	imp->nr_mapped -= n;
	return n;
}

/* Map the frame a FAULT_REPLY names.  Return: 0 or -errno. */
static int imp_map(struct remote_import *imp, const struct remote_msg *m)
{
	uint64_t i = (m->start - imp->start) / PS;
	bool writable = m->flags & REMOTE_WRITABLE;
	int err = 0;

	if (m->start < imp->start || m->start >= imp->end ||
	    m->pfn >= imp->arena_bytes / PS)
		return -EPROTO;
	pthread_rwlock_wrlock(&imp->maplock);
	if (!imp->window) {			/* closing */
		err = -ENOTCONN;
	} else if (imp->state[i] != (writable ? SLOT_WRITE : SLOT_READ)) {
		void *p = mmap(imp->window + i * PS, PS,
			       writable ? PROT_READ | PROT_WRITE : PROT_READ,
			       MAP_SHARED | MAP_FIXED, imp->memfd, (off_t)(m->pfn * PS));

		if (p == MAP_FAILED) {
			err = -errno;
			if (imp->state[i] != SLOT_NONE)
				imp_unmap(imp, i, i + 1);
		} else {
			if (imp->state[i] == SLOT_NONE)
				imp->nr_mapped++;
			imp->state[i] = writable ? SLOT_WRITE : SLOT_READ;
		}
	}
	pthread_rwlock_unlock(&imp->maplock);
	return err;
}

static void imp_complete(struct remote_import *imp, uint64_t id, int err)
{
	pthread_mutex_lock(&imp->lock);
	for (unsigned int s = 0; s < IMPORT_SLOTS; s++) {
		if (imp->slots[s].busy && imp->slots[s].id == id) {
			imp->slots[s].done = true;
			imp->slots[s].err = err;
			pthread_cond_broadcast(&imp->cond);
			break;
		}
	}
	pthread_mutex_unlock(&imp->lock);
}

static void *imp_receiver(void *arg)
{
	struct remote_import *imp = arg;
	struct remote_msg m;
	unsigned long n;
	int err;

	while (msg_recv(imp->sock, &m, NULL) == 0) {
		switch (m.type) {
		case REMOTE_MSG_FAULT_REPLY:
			err = m.err ? m.err : imp_map(imp, &m);
			imp_complete(imp, m.id, err);
			break;
		case REMOTE_MSG_INVALIDATE:
		case REMOTE_MSG_RELEASE: {
			struct remote_msg ack = { .type = REMOTE_MSG_ACK, .id = m.id,
						  .start = m.start, .end = m.end };
			uint64_t first = 0, last = (imp->end - imp->start) / PS;

			if (m.type == REMOTE_MSG_INVALIDATE) {
				if (m.start > imp->start)
					first = (m.start - imp->start) / PS;
				if (m.end < imp->end)
					last = m.end > imp->start ? (m.end - imp->start) / PS : 0;
			}
			/* waits for every access in progress through the window */
			pthread_rwlock_wrlock(&imp->maplock);
			n = first < last ? imp_unmap(imp, first, last) : 0;
			pthread_rwlock_unlock(&imp->maplock);
			pthread_mutex_lock(&imp->lock);
			imp->st.invalidations++;
			imp->st.pages_unmapped += n;
			if (m.type == REMOTE_MSG_RELEASE) {
				imp->released = true;
				imp->st.released = true;
				pthread_cond_broadcast(&imp->cond);
			}
			pthread_mutex_unlock(&imp->lock);
			msg_send(imp->sock, &ack, -1);
			break;
		}
		default:
			break;
		}
	}
	/* the exporter is gone: nothing will be invalidated any more */
	pthread_rwlock_wrlock(&imp->maplock);
	imp_unmap(imp, 0, (imp->end - imp->start) / PS);
	pthread_rwlock_unlock(&imp->maplock);
	pthread_mutex_lock(&imp->lock);
	imp->peer_gone = true;
	imp->st.peer_gone = true;
	pthread_cond_broadcast(&imp->cond);
	pthread_mutex_unlock(&imp->lock);
	return NULL;
}

/* Ask the exporter for the page at @addr and wait for the reply. */
static int imp_fault(struct remote_import *imp, uint64_t addr, bool write)
{
	struct remote_msg m = { .type = REMOTE_MSG_FAULT, .start = addr,
				.flags = write ? REMOTE_WRITE : 0 };
	struct fault_slot *slot = NULL;
	int err;

	pthread_mutex_lock(&imp->lock);
	for (;;) {
		if (imp->released || imp->peer_gone) {
			err = imp->released ? -ESRCH : -ENOTCONN;
			goto out;
		}
		for (unsigned int s = 0; s < IMPORT_SLOTS && !slot; s++)
			if (!imp->slots[s].busy)
				slot = &imp->slots[s];
		if (slot)
			break;
		pthread_cond_wait(&imp->cond, &imp->lock);
	}
	slot->busy = true;
	slot->done = false;
	slot->id = m.id = ++imp->next_id;
	imp->st.faults++;
	/* not under imp->lock: the receiver must never wait behind a full socket */
	pthread_mutex_unlock(&imp->lock);
	err = msg_send(imp->sock, &m, -1);
	pthread_mutex_lock(&imp->lock);
	while (!err && !slot->done && !imp->peer_gone)
		pthread_cond_wait(&imp->cond, &imp->lock);
	if (!err)
		err = slot->done ? slot->err : -ENOTCONN;
	slot->busy = false;
	pthread_cond_broadcast(&imp->cond);
out:
	pthread_mutex_unlock(&imp->lock);
	return err;
}

static ssize_t imp_access(struct remote_import *imp, uint64_t addr, void *buf, size_t len,
			  bool write)
{
	size_t done = 0;

	if (!imp || (!buf && len))
		return -EINVAL;
	while (done < len) {
		size_t n = PS - (addr & (PS - 1));
		bool hit = false;
		int err;

		if (n > len - done)
			n = len - done;
		if (addr < imp->start || addr >= imp->end)
			return done ? (ssize_t)done : -EFAULT;
		pthread_rwlock_rdlock(&imp->maplock);
		if (imp->state[(addr - imp->start) / PS] >= (write ? SLOT_WRITE : SLOT_READ)) {
			char *p = imp->window + (addr - imp->start);

			if (write)
				memcpy(p, (char *)buf + done, n);
			else
				memcpy((char *)buf + done, p, n);
			hit = true;
		}
		pthread_rwlock_unlock(&imp->maplock);
		if (hit) {
			done += n;
			addr += n;
			continue;
		}
		err = imp_fault(imp, addr, write);
		if (err)
			return done ? (ssize_t)done : err;
	}
	return (ssize_t)done;
}

ssize_t remote_import_read(struct remote_import *imp, uint64_t addr, void *buf, size_t len)
{
	return imp_access(imp, addr, buf, len, false);
}

ssize_t remote_import_write(struct remote_import *imp, uint64_t addr, const void *buf,
			    size_t len)
{
	return imp_access(imp, addr, (void *)buf, len, true);
}

int remote_import(int sock, struct remote_import **out, uint64_t *start, uint64_t *len)
{
	struct remote_import *imp;
	pthread_rwlockattr_t attr;
	struct remote_msg hello;
	int memfd, err;

	err = msg_recv(sock, &hello, &memfd);
	if (err)
		goto out_close;
	if (hello.type != REMOTE_MSG_HELLO || hello.magic != REMOTE_MAGIC || memfd < 0 ||
	    hello.start >= hello.end || (hello.start | hello.end) & (PS - 1)) {
		err = -EPROTO;
		goto out_memfd;
	}
	imp = calloc(1, sizeof(*imp));
	if (!imp) {
		err = -ENOMEM;
		goto out_memfd;
	}
	imp->state = calloc((hello.end - hello.start) / PS, 1);
	imp->window = mmap(NULL, hello.end - hello.start, PROT_NONE,
			   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (!imp->state || imp->window == MAP_FAILED) {
		err = -ENOMEM;
		goto out_free;
	}
	imp->sock = sock;
	imp->memfd = memfd;
	imp->start = hello.start;
	imp->end = hello.end;
	imp->arena_bytes = hello.pfn;
	/* an invalidation must not starve behind a stream of accesses */
	pthread_rwlockattr_init(&attr);
	pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&imp->maplock, &attr);
	pthread_rwlockattr_destroy(&attr);
	pthread_mutex_init(&imp->lock, NULL);
	pthread_cond_init(&imp->cond, NULL);
	err = -pthread_create(&imp->rx_thread, NULL, imp_receiver, imp);
	if (err) {
		pthread_rwlock_destroy(&imp->maplock);
		pthread_mutex_destroy(&imp->lock);
		pthread_cond_destroy(&imp->cond);
		goto out_free;
	}
	if (start)
		*start = imp->start;
	if (len)
		*len = imp->end - imp->start;
	*out = imp;
	return 0;

out_free:
	if (imp->window && imp->window != MAP_FAILED)
		munmap(imp->window, hello.end - hello.start);
	free(imp->state);
	free(imp);
out_memfd:
	if (memfd >= 0)
		close(memfd);
out_close:
	close(sock);
	return err;
}

void remote_import_get_stat(struct remote_import *imp, struct remote_import_stat *st)
{
	pthread_mutex_lock(&imp->lock);
	*st = imp->st;
	pthread_mutex_unlock(&imp->lock);
	pthread_rwlock_rdlock(&imp->maplock);
	st->mapped = imp->nr_mapped;
	pthread_rwlock_unlock(&imp->maplock);
}

void remote_import_close(struct remote_import *imp)
{
	struct remote_msg bye = { .type = REMOTE_MSG_GOODBYE };

	if (!imp)
		return;
	/* unmap first: GOODBYE promises the exporter that nothing is mapped */
	pthread_rwlock_wrlock(&imp->maplock);
	imp_unmap(imp, 0, (imp->end - imp->start) / PS);
	munmap(imp->window, imp->end - imp->start);
	imp->window = NULL;
	pthread_rwlock_unlock(&imp->maplock);
	msg_send(imp->sock, &bye, -1);
	shutdown(imp->sock, SHUT_RDWR);
	pthread_join(imp->rx_thread, NULL);
	close(imp->sock);
	close(imp->memfd);
	pthread_rwlock_destroy(&imp->maplock);
	pthread_mutex_destroy(&imp->lock);
	pthread_cond_destroy(&imp->cond);
	free(imp->state);
	free(imp);
}

/* ---- starting the other process ---- */

int remote_spawn_self(const char *role, const int *fds, int nr_fds, pid_t *pid)
{
	char num[8][16];
	char *argv[11];
	pid_t child;
	int i;

	if (!role || nr_fds < 0 || nr_fds > 8 || !pid)
		return -EINVAL;
	argv[0] = "umm-remote";
	argv[1] = (char *)role;
	for (i = 0; i < nr_fds; i++) {
		snprintf(num[i], sizeof(num[i]), "%d", fds[i]);
		argv[2 + i] = num[i];
	}
	argv[2 + nr_fds] = NULL;
	child = fork();
	if (child < 0)
		return -errno;
	if (child == 0) {
		/* only async-signal-safe calls between fork and exec */
		for (i = 0; i < nr_fds; i++)
			fcntl(fds[i], F_SETFD, 0);
		execv("/proc/self/exe", argv);
		_exit(127);
	}
	*pid = child;
	return 0;
}
