/* SPDX-License-Identifier: MIT */
/*
 * remote.h - an XPMEM-style secondary MMU in another OS process, built on
 * umm's public API only.
 *
 * The exporter (the process that owns the umm machine, created with
 * UMM_CONFIG_SHAREABLE) offers [start, start + len) of one address space
 * to one importer over a connected AF_UNIX SOCK_SEQPACKET socket.  The
 * importer is a real second process: it receives the arena's memfd with
 * SCM_RIGHTS and maps the frames the exporter names into a window of its
 * own, then loads and stores through that window directly.  Nothing is
 * pinned: the exporter subscribes to the mm with a classic MMU notifier,
 * and every invalidation that covers a page the importer may map is a
 * message the exporter waits to see acknowledged before the PTE (and so
 * the frame) can change.
 *
 * Protocol.  Every message is one struct remote_msg (fixed size, one
 * SEQPACKET record).  Requests are numbered by their sender; a reply or an
 * acknowledgement carries the number of what it answers.
 *
 *   exporter -> importer
 *     HELLO       sent once on attach, with the memfd (SCM_RIGHTS);
 *                 start, end: the exported range; pfn: the arena's size
 *     FAULT_REPLY id of the FAULT; err 0 and pfn, flags WRITABLE, or a
 *                 negative errno (-EFAULT: no mapping or no permission,
 *                 -ENOMEM, -ESRCH: the address space is gone)
 *     INVALIDATE  id, [start, end): unmap these pages, then ACK id
 *     RELEASE     id: the address space is gone: unmap everything, ACK id;
 *                 every later access fails with -ESRCH
 *   importer -> exporter
 *     FAULT       id, start = the address, flags WRITE for a store
 *     ACK         id of the INVALIDATE or RELEASE now complete; start, end
 *                 echo its range
 *     GOODBYE     the importer has unmapped everything and is leaving
 *
 * Ordering.  The exporter records a translation and sends its FAULT_REPLY
 * under one lock, and drops translations and sends INVALIDATE under the
 * same lock, so the importer (whose single receiver thread applies replies
 * and invalidations in arrival order) never maps a frame after the
 * INVALIDATE that took it away.  INVALIDATE ids rise in send order and the
 * importer acknowledges in order, so "acked >= id" is the wait condition.
 * Invalidations run concurrently (from whichever thread changes a PTE):
 * each page remembers the INVALIDATE that is unmapping it, and a start
 * whose pages are still being unmapped by another's message waits for
 * that ACK too, even if it found nothing left to drop itself.  The
 * checker hears of an unmap when its ACK arrives, not before.
 *
 * Faults follow the KVM protocol: snapshot the invalidation sequence, fault
 * the page in with umm_get_user_page() (UMM_GUP_WRITE for a store, which
 * breaks COW), then record the pfn only if no invalidation started or ran
 * in between (else drop the reference and retry), and drop the GUP
 * reference at once.  A blockable invalidate_range_start drops the records
 * in range, sends INVALIDATE and sleeps until the ACK; a non-blockable one
 * (the OOM reaper's) cannot wait for a message, so it answers -EAGAIN when
 * the importer may map anything in range, else 0.  ->release sends RELEASE
 * and waits for its ACK: after release the engine sends no invalidations,
 * so the importer must be done with every frame before exit unmaps them.
 *
 * The importer dying (EOF, EPIPE on the socket) drops all its records and
 * wakes every waiting invalidation: callbacks always return.  A process's
 * mappings are gone before its descriptors close, so EOF means no frame is
 * mapped any more.  A stopped (not dead) importer stalls invalidations of
 * its pages, as with XPMEM.
 *
 * Aging: ->clear_flush_young and friends report a page young if the
 * importer faulted it in since the last call (the importer's direct
 * accesses are invisible); ->change_pte needs nothing (it arrives inside an
 * invalidation of the page, which dropped the record).
 */
#ifndef UMM_CLIENTS_REMOTE_H
#define UMM_CLIENTS_REMOTE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <umm/umm.h>

enum remote_msg_type {
	REMOTE_MSG_HELLO = 1,
	REMOTE_MSG_FAULT,
	REMOTE_MSG_FAULT_REPLY,
	REMOTE_MSG_INVALIDATE,
	REMOTE_MSG_RELEASE,
	REMOTE_MSG_ACK,
	REMOTE_MSG_GOODBYE,
};

#define REMOTE_MAGIC		0x756d6d72656d6f74ULL	/* "ummremot" */
#define REMOTE_WRITE		0x1	/* FAULT: a store */
#define REMOTE_WRITABLE		0x1	/* FAULT_REPLY: the frame may be written */

struct remote_msg {
	uint32_t type;		/* enum remote_msg_type */
	int32_t err;		/* FAULT_REPLY: 0 or -errno */
	uint32_t flags;		/* REMOTE_WRITE, REMOTE_WRITABLE */
	uint32_t pad;
	uint64_t id;		/* request number */
	uint64_t start, end;	/* address, or range */
	uint64_t pfn;		/* FAULT_REPLY: the frame; HELLO: the arena's bytes */
	uint64_t magic;		/* HELLO: REMOTE_MAGIC */
};

struct remote_export;
struct remote_import;

/* Figures, a snapshot. */
struct remote_export_stat {
	unsigned long faults;		/* FAULTs answered */
	unsigned long fault_retries;	/* GUPs redone because an invalidation intervened */
	unsigned long invalidations;	/* INVALIDATEs sent (and acknowledged) */
	unsigned long inval_skipped;	/* starts in range that found nothing mapped */
	unsigned long eagain;		/* non-blockable starts refused: pages mapped */
	unsigned long eagain_busy;	/* ... because the exporter's lock was taken */
	unsigned long mapped;		/* pages the importer may map now */
	bool peer_gone, released;
};

/*
 * remote_export - offer [@start, @start + @len) of @mm to the importer at
 * the other end of @sock (a connected AF_UNIX SOCK_SEQPACKET socket, which
 * the exporter now owns).  Registers the MMU notifier, sends HELLO with the
 * arena's memfd and starts the exporter's threads (a receiver, a fault
 * server).
 * Return: 0 and *@out; -EINVAL (unaligned or empty range, not a SEQPACKET
 * socket), -EPERM (machine not UMM_CONFIG_SHAREABLE), -ESRCH (@mm exited),
 * -ENOMEM, or the socket's errno.  On error @sock is closed.
 */
int remote_export(struct umm *u, struct umm_mm *mm, uint64_t start, uint64_t len, int sock,
		  struct remote_export **out);

/*
 * remote_unexport - unregister (->release runs unless exit already ran it:
 * the importer is told and acknowledges), disconnect, stop the threads and
 * free.  Context: not from a notifier callback.
 */
void remote_unexport(struct remote_export *exp);

void remote_export_get_stat(struct remote_export *exp, struct remote_export_stat *st);

/* Figures of the importer. */
struct remote_import_stat {
	unsigned long faults;		/* FAULTs sent */
	unsigned long invalidations;	/* INVALIDATEs applied */
	unsigned long pages_unmapped;	/* window slots unmapped by them */
	unsigned long mapped;		/* pages mapped now */
	bool released, peer_gone;
};

/*
 * remote_import - attach to the exporter at the other end of @sock (owned by
 * the importer from now on): receive HELLO and the memfd, reserve the
 * window, start the receiver thread.  *@start and *@len (if not NULL) get
 * the exported range.
 * Return: 0 and *@out; -EPROTO for a bad HELLO, -ENOMEM, the socket's errno.
 */
int remote_import(int sock, struct remote_import **out, uint64_t *start, uint64_t *len);

/*
 * remote_import_read/write - load/store through the importer's window,
 * faulting pages in from the exporter as needed.  Any number of threads
 * may access at once; an invalidation waits for accesses in progress on
 * the pages it takes away.
 * Return: @len, or the bytes copied before the first byte that could not
 * be reached, or (nothing copied) -EFAULT (outside the exported range, no
 * mapping or no permission in the exporter), -ESRCH (the exporter's
 * address space is gone), -ENOTCONN (the exporter went away), -ENOMEM.
 */
ssize_t remote_import_read(struct remote_import *imp, uint64_t addr, void *buf, size_t len);
ssize_t remote_import_write(struct remote_import *imp, uint64_t addr, const void *buf,
			    size_t len);

void remote_import_get_stat(struct remote_import *imp, struct remote_import_stat *st);

/*
 * remote_import_close - unmap everything, say GOODBYE, stop the receiver
 * and free.  Context: no access in progress.
 */
void remote_import_close(struct remote_import *imp);

/*
 * remote_spawn_self - fork and exec this very program (/proc/self/exe) as
 * "argv0 @role fd..." with @fds (made inheritable in the child only), so
 * the child shares nothing with the caller but those descriptors.
 * Return: 0 and *@pid, or -errno.
 */
int remote_spawn_self(const char *role, const int *fds, int nr_fds, pid_t *pid);

#endif /* UMM_CLIENTS_REMOTE_H */
