// SPDX-License-Identifier: MIT
/*
 * phys.c - physical memory: the frame arena, page descriptors and the
 * allocator (umm's page_alloc.c).
 *
 * The arena is a memfd mapped MAP_SHARED, so another process can map the
 * same frames.  Frame 0 is the shared zero frame.  The rest are split into
 * nr_nodes contiguous nodes.
 *
 * Allocation goes through per-CPU caches (struct pcp, indexed by the CPU the
 * thread runs on) in front of each node's free lists.  A node keeps free
 * frames in two lists:
 *
 *   warm  frames whose host memory is still present: freed frames go here,
 *         allocation takes from here first (most recently freed first);
 *   cold  frames whose host memory was handed back with a hole punch; they
 *         read as zero and cost a host fault on first touch.
 *
 * When a node holds more warm frames than warm_high, a background thread
 * punches the coldest ones (the tail of the warm deque) out of the memfd,
 * in sorted, coalesced runs, until warm_low is left: what KSM or an munmap
 * frees shows up as a drop in the process's real RSS without the freeing
 * thread paying for the hole punch.  With UMM_CONFIG_PREFAULT the arena is
 * populated at create (like a VM with preallocated RAM) and never trimmed.
 *
 * PG_zeroed marks frames known to be zero (fresh or punched host memory,
 * or cleared in the background), so that a fault needing a zeroed frame
 * skips the clear.  The same background thread clears resident free frames
 * while it has nothing to trim and moves them to a third list, "zeroed",
 * which allocation prefers: the 4 KiB clear that dominates a write fault
 * on recycled memory runs on an idle CPU instead of in the fault.  The
 * thread runs at nice 19, so that it takes only idle CPU: the frames a
 * merge or an munmap frees are not cleared ahead of the work of the
 * threads that free them.  An allocation that finds memory exhausted
 * waits for the frames it holds (at most a batch).
 */
#include <emmintrin.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/sysinfo.h>
#include <unistd.h>

#include "internal.h"

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

#define PCP_HIGH	128
#define PCP_BATCH	32

unsigned int cpu_pcp_index(struct umm *u)
{
	int cpu = sched_getcpu();

	return cpu < 0 ? 0 : (unsigned int)cpu % u->nr_pcps;
}

/* The node a CPU allocates from first. */
static inline unsigned int pcp_node(struct umm *u, unsigned int idx)
{
	return idx % u->nr_nodes;
}

static void init_free_page(struct umm *u, struct umm_page *p, unsigned int nid)
{
	atomic_init(&p->flags, PG_zeroed | PG_buddy);
	atomic_init(&p->_refcount, 0);
	atomic_init(&p->_mapcount, -1);
	atomic_init(&p->mapping, 0);
	p->node = (uint16_t)nid;
	p->machine = (uint16_t)u->machine_id;
	p->index = 0;
	INIT_LIST_HEAD(&p->lru);
	p->private = 0;
}

/* ---- node free lists (node->lock held) ---- */

static void warm_push_head(struct umm_node *n, uint32_t pfn)
{
	n->warm_head = (n->warm_head + n->cap - 1) % n->cap;
	n->warm[n->warm_head] = pfn;
	n->warm_count++;
}

static uint32_t warm_pop_head(struct umm_node *n)
{
	uint32_t pfn = n->warm[n->warm_head];

	n->warm_head = (n->warm_head + 1) % n->cap;
	n->warm_count--;
	return pfn;
}

static uint32_t warm_pop_tail(struct umm_node *n)
{
	n->warm_count--;
	return n->warm[(n->warm_head + n->warm_count) % n->cap];
}

static bool pfn_isolated(struct umm_node *n, uint32_t pfn)
{
	return unlikely(pfn < atomic_load_explicit(&n->iso_end, memory_order_relaxed)) &&
	       pfn >= atomic_load_explicit(&n->iso_start, memory_order_relaxed);
}

/* Take up to @nr free frames from node @n into @pfns.  Return: how many. */
static unsigned int node_take(struct umm_node *n, uint32_t *pfns, unsigned int nr)
{
	unsigned int got = 0, taken = 0;

	pthread_mutex_lock(&n->lock);
	while (got < nr && (n->zeroed_count || n->warm_count || n->cold_count)) {
		uint32_t pfn = n->zeroed_count ? n->zeroed[--n->zeroed_count] :
			       n->warm_count ? warm_pop_head(n) : n->cold[--n->cold_count];

		taken++;
		if (pfn_isolated(n, pfn))
			n->iso_stash[n->iso_nr++] = pfn;	/* compaction wants it free */
		else
			pfns[got++] = pfn;
	}
	atomic_fetch_sub_explicit(&n->nr_free, taken, memory_order_relaxed);
	pthread_mutex_unlock(&n->lock);
	return got;
}

static void trim_kick(struct umm *u);

static void node_give(struct umm *u, struct umm_node *n, const uint32_t *pfns, unsigned int nr)
{
	bool kick;

	pthread_mutex_lock(&n->lock);
	for (unsigned int i = 0; i < nr; i++)
		warm_push_head(n, pfns[i]);
	atomic_fetch_add_explicit(&n->nr_free, nr, memory_order_relaxed);
	kick = n->warm_count > n->warm_high || n->warm_count >= 64;
	pthread_mutex_unlock(&n->lock);
	if (kick)
		trim_kick(u);
}

/* ---- clearing and copying frames ---- */

/*
 * A frame being cleared or copied is rarely in the cache: streaming
 * stores skip the read-for-ownership and halve the cost (what the
 * kernel's clear_page_erms gets from the hardware).  The sfence orders
 * them before the PTE that publishes the frame.
 */
void clear_page(void *dst)
{
	__m128i z = _mm_setzero_si128();

	for (size_t i = 0; i < PAGE_SIZE; i += 64) {
		_mm_stream_si128((__m128i *)((char *)dst + i), z);
		_mm_stream_si128((__m128i *)((char *)dst + i + 16), z);
		_mm_stream_si128((__m128i *)((char *)dst + i + 32), z);
		_mm_stream_si128((__m128i *)((char *)dst + i + 48), z);
	}
	_mm_sfence();
}

void copy_page(void *dst, const void *src)
{
	for (size_t i = 0; i < PAGE_SIZE; i += 64) {
		const __m128i *s = (const __m128i *)((const char *)src + i);
		__m128i a = _mm_loadu_si128(s), b = _mm_loadu_si128(s + 1);
		__m128i c = _mm_loadu_si128(s + 2), d = _mm_loadu_si128(s + 3);

		_mm_stream_si128((__m128i *)((char *)dst + i), a);
		_mm_stream_si128((__m128i *)((char *)dst + i + 16), b);
		_mm_stream_si128((__m128i *)((char *)dst + i + 32), c);
		_mm_stream_si128((__m128i *)((char *)dst + i + 48), d);
	}
	_mm_sfence();
}

/* ---- allocation ---- */

static struct umm_page *prep_new_page(struct umm *u, uint32_t pfn, unsigned int flags)
{
	struct umm_page *p = pfn_to_page(u, pfn);
	uint32_t old = atomic_load_explicit(&p->flags, memory_order_relaxed);

	VM_BUG_ON(!(old & PG_buddy) || atomic_load(&p->_refcount) != 0);
	atomic_store_explicit(&p->flags, 0, memory_order_relaxed);
	atomic_store_explicit(&p->_refcount, 1, memory_order_relaxed);
	if ((flags & ALLOC_ZERO) && !(old & PG_zeroed))
		clear_page(page_address(u, p));
	return p;
}

/* Give every per-CPU cache's frames back to their nodes (memory is short). */
static void drain_all_pages(struct umm *u)
{
	for (unsigned int i = 0; i < u->nr_pcps; i++) {
		struct pcp *pcp = &u->pcps[i];
		uint32_t batch[PCP_HIGH];
		unsigned int nr;

		spin_lock(&pcp->lock);
		nr = pcp->count;
		memcpy(batch, pcp->pfns, nr * sizeof(uint32_t));
		pcp->count = 0;
		spin_unlock(&pcp->lock);
		if (nr)
			node_give(u, &u->nodes[pcp_node(u, i)], batch, nr);
	}
}

/*
 * phys_isolate_range - compaction is emptying [start, end) of node @nid:
 * from now on its free frames are held back instead of handed out.
 */
void phys_isolate_range(struct umm *u, unsigned int nid, uint64_t start, uint64_t end)
{
	struct umm_node *n = &u->nodes[nid];
	uint32_t *stash = calloc(end - start, sizeof(uint32_t));

	drain_all_pages(u);
	pthread_mutex_lock(&n->lock);
	n->iso_stash = stash;
	n->iso_nr = 0;
	if (stash) {
		atomic_store(&n->iso_start, start);
		atomic_store(&n->iso_end, end);
	}
	pthread_mutex_unlock(&n->lock);
}

/* The frames held back return to the free lists. */
void phys_unisolate_range(struct umm *u, unsigned int nid)
{
	struct umm_node *n = &u->nodes[nid];
	uint32_t *stash;
	uint64_t nr;

	pthread_mutex_lock(&n->lock);
	atomic_store(&n->iso_end, 0);
	atomic_store(&n->iso_start, 0);
	stash = n->iso_stash;
	nr = n->iso_nr;
	n->iso_stash = NULL;
	n->iso_nr = 0;
	pthread_mutex_unlock(&n->lock);
	if (nr)
		node_give(u, n, stash, (unsigned int)nr);
	free(stash);
}

/* Take a free frame without reclaiming.  Return: the page or NULL. */
static struct umm_page *__alloc_page(struct umm *u, int nid, unsigned int flags)
{
	unsigned int idx = cpu_pcp_index(u);
	struct pcp *pcp = &u->pcps[idx];
	unsigned int home = pcp_node(u, idx);
	unsigned int tries = (flags & ALLOC_THISNODE) ? 1 : u->nr_nodes;
	uint32_t pfn;

	if (should_fail(u, UMM_FAULT_FRAME_ALLOC))
		return NULL;
	if (nid < 0 || (unsigned int)nid == home) {
		spin_lock(&pcp->lock);
		if (!pcp->count)
			pcp->count = node_take(&u->nodes[home], pcp->pfns, PCP_BATCH);
		while (pcp->count) {
			struct umm_node *n = &u->nodes[home];

			pfn = pcp->pfns[--pcp->count];
			if (likely(!pfn_isolated(n, pfn))) {
				spin_unlock(&pcp->lock);
				goto got;
			}
			pthread_mutex_lock(&n->lock);
			n->iso_stash[n->iso_nr++] = pfn;
			pthread_mutex_unlock(&n->lock);
		}
		spin_unlock(&pcp->lock);
	}
	/* the preferred node directly, then every other node */
	for (unsigned int i = 0; i < tries; i++) {
		unsigned int n = (unsigned int)((nid < 0 ? home : (unsigned int)nid) + i) % u->nr_nodes;

		if (node_take(&u->nodes[n], &pfn, 1))
			goto got;
	}
	return NULL;
got:
	atomic_fetch_add_explicit(&pcp->events[PGALLOC], 1, memory_order_relaxed);
	return prep_new_page(u, pfn, flags);
}

/*
 * Wait (up to a second) for the frames the background thread is clearing
 * or punching: they are free, but on no list until it is done.
 * Return: whether there were any.
 */
static bool wait_inflight(struct umm *u)
{
	bool any = false;

	for (int tries = 0; tries < 10000; tries++) {
		unsigned int nr = 0;

		for (unsigned int i = 0; i < u->nr_nodes; i++) {
			pthread_mutex_lock(&u->nodes[i].lock);
			nr += u->nodes[i].nr_inflight;
			pthread_mutex_unlock(&u->nodes[i].lock);
		}
		if (!nr)
			break;
		any = true;
		usleep(100);
	}
	return any;
}

/*
 * alloc_page - take a free frame, preferring node @nid (-1: the CPU's node).
 * Below the node's low watermark kswapd is woken; when no node has a free
 * frame the caller reclaims directly (unless ALLOC_NORECLAIM) and tries
 * again while reclaim makes progress.
 * Return: the page with refcount 1 and no flags, or NULL when memory is
 * exhausted after reclaim.
 */
struct umm_page *alloc_page(struct umm *u, int nid, unsigned int flags)
{
	struct umm_page *page;

	int idle = 0;

	for (;;) {
		page = __alloc_page(u, nid, flags);
		if (page) {
			if (unlikely(atomic_load_explicit(&u->nodes[page->node].nr_free,
							  memory_order_relaxed) < u->nodes[page->node].wmark_low))
				wakeup_kswapd(u, page->node);
			return page;
		}
		if (flags & ALLOC_NORECLAIM)
			return NULL;
		if (try_to_free_pages(u, nid)) {
			idle = 0;	/* progress, though others may have taken it */
			continue;
		}
		/*
		 * Nothing reclaimed.  Frames may sit in other CPUs' caches, or
		 * pages be isolated by another reclaimer about to free them:
		 * give those a moment before declaring memory exhausted.
		 */
		drain_all_pages(u);
		if (wait_inflight(u))
			continue;
		if (++idle >= 16)
			return NULL;
		if (atomic_load_explicit(&u->vmstat[VMS_ISOLATED], memory_order_relaxed))
			usleep(100);
	}
}

/* free_unref_page - give a frame whose last reference went back to the allocator. */
void free_unref_page(struct umm *u, struct umm_page *p)
{
	unsigned int idx = cpu_pcp_index(u);
	struct pcp *pcp = &u->pcps[idx];
	uint32_t pfn = (uint32_t)page_to_pfn(u, p);

	VM_BUG_ON(PageReserved(p));
	VM_BUG_ON(atomic_load(&p->_mapcount) != -1);
	mn_check_frame_free(u, pfn);
	/*
	 * Release: whoever sees the mapping gone (get_ksm_page() deciding a
	 * stable node is stale, a speculative lookup) also sees everything
	 * done under the page before it was freed - an rmap walk of the
	 * node's items, in particular, is over before the node is torn down.
	 */
	atomic_store_explicit(&p->mapping, 0, memory_order_release);
	p->index = 0;
	p->private = 0;
	atomic_store_explicit(&p->flags, PG_buddy, memory_order_release);
	atomic_fetch_add_explicit(&pcp->events[PGFREE], 1, memory_order_relaxed);

	if (p->node != pcp_node(u, idx)) {
		node_give(u, &u->nodes[p->node], &pfn, 1);
		return;
	}
	spin_lock(&pcp->lock);
	pcp->pfns[pcp->count++] = pfn;
	if (pcp->count >= PCP_HIGH) {
		/* hand the oldest half back to the node */
		uint32_t batch[PCP_HIGH / 2];

		memcpy(batch, pcp->pfns, sizeof(batch));
		memmove(pcp->pfns, pcp->pfns + PCP_HIGH / 2, (pcp->count - PCP_HIGH / 2) * sizeof(uint32_t));
		pcp->count -= PCP_HIGH / 2;
		spin_unlock(&pcp->lock);
		node_give(u, &u->nodes[p->node], batch, PCP_HIGH / 2);
		return;
	}
	spin_unlock(&pcp->lock);
}

void put_page(struct umm *u, struct umm_page *p)
{
	int old = atomic_fetch_sub_explicit(&p->_refcount, 1, memory_order_acq_rel);

	VM_BUG_ON(old <= 0);
	if (old == 1) {
		if (TestPageFlag(p, PG_lru))
			lru_del_on_free(u, p);
		free_unref_page(u, p);
	}
}

uint64_t sum_vm_event(struct umm *u, enum vm_event e)
{
	uint64_t sum = 0;

	for (unsigned int i = 0; i < u->nr_pcps; i++)
		sum += atomic_load_explicit(&u->pcps[i].events[e], memory_order_relaxed);
	return sum;
}

uint64_t phys_nr_free(struct umm *u)
{
	uint64_t sum = 0;

	for (unsigned int i = 0; i < u->nr_nodes; i++)
		sum += atomic_load_explicit(&u->nodes[i].nr_free, memory_order_relaxed);
	for (unsigned int i = 0; i < u->nr_pcps; i++) {
		spin_lock(&u->pcps[i].lock);
		sum += u->pcps[i].count;
		spin_unlock(&u->pcps[i].lock);
	}
	return sum;
}

uint64_t phys_nr_free_resident(struct umm *u)
{
	uint64_t sum = 0;

	for (unsigned int i = 0; i < u->nr_nodes; i++) {
		pthread_mutex_lock(&u->nodes[i].lock);
		sum += u->nodes[i].warm_count + u->nodes[i].zeroed_count;
		pthread_mutex_unlock(&u->nodes[i].lock);
	}
	for (unsigned int i = 0; i < u->nr_pcps; i++) {
		spin_lock(&u->pcps[i].lock);
		sum += u->pcps[i].count;
		spin_unlock(&u->pcps[i].lock);
	}
	return sum;
}

/* Mark in @is_free every frame that sits on a free list or a per-CPU cache. */
void phys_mark_free_frames(struct umm *u, uint8_t *is_free)
{
	for (unsigned int i = 0; i < u->nr_pcps; i++) {
		spin_lock(&u->pcps[i].lock);
		for (unsigned int j = 0; j < u->pcps[i].count; j++)
			is_free[u->pcps[i].pfns[j]]++;
		spin_unlock(&u->pcps[i].lock);
	}
	for (unsigned int i = 0; i < u->nr_nodes; i++) {
		struct umm_node *n = &u->nodes[i];

		pthread_mutex_lock(&n->lock);
		for (uint64_t j = 0; j < n->warm_count; j++)
			is_free[n->warm[(n->warm_head + j) % n->cap]]++;
		for (uint64_t j = 0; j < n->cold_count; j++)
			is_free[n->cold[j]]++;
		for (uint64_t j = 0; j < n->zeroed_count; j++)
			is_free[n->zeroed[j]]++;
		for (unsigned int j = 0; j < n->nr_inflight; j++)
			is_free[n->inflight[j]]++;
		pthread_mutex_unlock(&n->lock);
	}
}

/* ---- handing host memory back ---- */

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* Punch @nr frames (sorted) out of the memfd, one fallocate per run. */
static void punch_frames(struct umm *u, uint32_t *pfns, unsigned int nr)
{
	unsigned int i = 0;

	qsort(pfns, nr, sizeof(*pfns), cmp_u32);
	while (i < nr) {
		unsigned int j = i + 1;

		while (j < nr && pfns[j] == pfns[j - 1] + 1)
			j++;
		fallocate(u->memfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			  (off_t)pfns[i] << PAGE_SHIFT, (off_t)(j - i) << PAGE_SHIFT);
		i = j;
	}
	for (i = 0; i < nr; i++)
		SetPageFlag(pfn_to_page(u, pfns[i]), PG_zeroed);
	atomic_fetch_add_explicit(&u->nr_returned, nr, memory_order_relaxed);
}

/* Trim one node down to warm_low.  Return: whether anything was punched. */
static bool trim_node(struct umm *u, struct umm_node *n)
{
	uint32_t batch[1024];
	unsigned int nr = 0;

	pthread_mutex_lock(&n->lock);
	while (nr < 1024 && n->warm_count > n->warm_low)
		batch[nr++] = warm_pop_tail(n);
	/* still free, but on no list while the punch runs: say where they are */
	memcpy(n->inflight, batch, nr * sizeof(uint32_t));
	n->nr_inflight = nr;
	pthread_mutex_unlock(&n->lock);
	if (!nr)
		return false;
	punch_frames(u, batch, nr);
	pthread_mutex_lock(&n->lock);
	for (unsigned int i = 0; i < nr; i++)
		n->cold[n->cold_count++] = batch[i];
	n->nr_inflight = 0;
	pthread_mutex_unlock(&n->lock);
	return true;
}

/*
 * zero_node - clear a batch of the most recently freed resident frames and
 * move them to the zeroed list.  Only frames that stay resident are worth
 * it: nothing is cleared while the node is over its trim mark.
 * Return: whether anything was cleared.
 */
static bool zero_node(struct umm *u, struct umm_node *n)
{
	uint32_t batch[64];
	unsigned int nr = 0;

	pthread_mutex_lock(&n->lock);
	/* resident free memory stays bounded: warm_high at most is kept cleared */
	while (nr < 64 && n->warm_count && n->warm_count + n->zeroed_count <= n->warm_high)
		batch[nr++] = warm_pop_head(n);
	memcpy(n->inflight, batch, nr * sizeof(uint32_t));
	n->nr_inflight = nr;
	pthread_mutex_unlock(&n->lock);
	if (!nr)
		return false;
	for (unsigned int i = 0; i < nr; i++) {
		struct umm_page *p = pfn_to_page(u, batch[i]);

		if (!TestPageFlag(p, PG_zeroed)) {
			clear_page(u->arena + ((uint64_t)batch[i] << PAGE_SHIFT));
			SetPageFlag(p, PG_zeroed);
		}
	}
	pthread_mutex_lock(&n->lock);
	for (unsigned int i = 0; i < nr; i++)
		n->zeroed[n->zeroed_count++] = batch[i];
	n->nr_inflight = 0;
	pthread_mutex_unlock(&n->lock);
	return true;
}

static void *trim_thread_fn(void *arg)
{
	struct umm *u = arg;

	/* idle CPU only (see the top of this file); raising nice needs no privilege */
	setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 19);
	pthread_mutex_lock(&u->trim_lock);
	while (!u->trim_stop) {
		bool worked = false;

		pthread_mutex_unlock(&u->trim_lock);
		for (unsigned int i = 0; i < u->nr_nodes; i++) {
			bool over;

			pthread_mutex_lock(&u->nodes[i].lock);
			over = u->nodes[i].warm_count > u->nodes[i].warm_high;
			pthread_mutex_unlock(&u->nodes[i].lock);
			if (over)
				while (trim_node(u, &u->nodes[i]))
					worked = true;
			else if (zero_node(u, &u->nodes[i]))
				worked = true;
		}
		pthread_mutex_lock(&u->trim_lock);
		if (!worked && !u->trim_stop)
			pthread_cond_wait(&u->trim_cond, &u->trim_lock);
	}
	pthread_mutex_unlock(&u->trim_lock);
	return NULL;
}

static void trim_kick(struct umm *u)
{
	if (!u->trim_started)
		return;
	pthread_mutex_lock(&u->trim_lock);
	pthread_cond_signal(&u->trim_cond);
	pthread_mutex_unlock(&u->trim_lock);
}

/* ---- setup ---- */

int phys_init(struct umm *u)
{
	uint64_t nr = u->cfg.phys_bytes >> PAGE_SHIFT;
	uint64_t per_node, pfn;
	int err = -ENOMEM;

	u->nr_frames = nr;
	u->memfd = memfd_create("umm-arena", MFD_CLOEXEC);
	if (u->memfd < 0)
		return -errno;
	if (ftruncate(u->memfd, (off_t)(nr << PAGE_SHIFT)) < 0) {
		err = -errno;
		goto out_close;
	}
	u->arena = mmap(NULL, nr << PAGE_SHIFT, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE,
			u->memfd, 0);
	if (u->arena == MAP_FAILED) {
		err = -errno;
		goto out_close;
	}
	if (u->prefault && madvise(u->arena, nr << PAGE_SHIFT, MADV_POPULATE_WRITE) < 0) {
		err = -errno == -EINVAL ? -ENOMEM : -errno;
		goto out_unmap;
	}
	/* descriptors on huge pages where the host allows: fewer TLB misses */
	u->pages = mmap(NULL, nr * sizeof(*u->pages), PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (u->pages == MAP_FAILED)
		goto out_unmap;
	madvise(u->pages, nr * sizeof(*u->pages), MADV_HUGEPAGE);

	u->nr_pcps = (unsigned int)get_nprocs_conf();
	if (u->nr_pcps < 1)
		u->nr_pcps = 1;
	u->pcps = aligned_alloc(64, sizeof(struct pcp) * u->nr_pcps);	/* struct pcp is 64-aligned */
	if (!u->pcps)
		goto out_pages;
	memset(u->pcps, 0, sizeof(struct pcp) * u->nr_pcps);
	for (unsigned int i = 0; i < u->nr_pcps; i++)
		spin_lock_init(&u->pcps[i].lock);

	/* frame 0: the shared zero frame */
	init_free_page(u, &u->pages[ZERO_PFN], 0);
	atomic_store(&u->pages[ZERO_PFN].flags, PG_reserved | PG_zeroed);
	atomic_store(&u->pages[ZERO_PFN]._refcount, 1);

	u->nr_nodes = u->cfg.nr_nodes;
	per_node = (nr - 1) / u->nr_nodes;
	pfn = 1;
	for (unsigned int i = 0; i < u->nr_nodes; i++) {
		struct umm_node *n = &u->nodes[i];
		uint64_t end = i + 1 == u->nr_nodes ? nr : pfn + per_node;
		uint64_t frames = end - pfn;

		pthread_mutex_init(&n->lock, NULL);
		n->start_pfn = pfn;
		n->end_pfn = end;
		n->cap = frames + 1;
		n->warm = malloc(n->cap * sizeof(uint32_t));
		n->cold = malloc(n->cap * sizeof(uint32_t));
		n->zeroed = malloc(n->cap * sizeof(uint32_t));
		if (!n->warm || !n->cold || !n->zeroed) {
			for (unsigned int j = 0; j <= i; j++) {
				free(u->nodes[j].warm);
				free(u->nodes[j].cold);
				free(u->nodes[j].zeroed);
			}
			goto out_pcps;
		}
		/* keep free host memory bounded: 1/32 of the node, at least 1 MiB */
		n->warm_high = u->prefault ? UINT64_MAX : max_t(uint64_t, frames / 32, 256);
		n->warm_low = u->prefault ? UINT64_MAX : n->warm_high / 2;
		n->wmark_min = max_t(uint64_t, frames / 256, 4);
		n->wmark_low = n->wmark_min * 5 / 4;
		n->wmark_high = n->wmark_min * 3 / 2;
		/* lowest pfns are handed out first */
		for (uint64_t f = end; f-- > pfn;) {
			init_free_page(u, &u->pages[f], i);
			if (u->prefault) {
				n->warm[n->warm_count++] = (uint32_t)f;
			} else {
				n->cold[n->cold_count++] = (uint32_t)f;
			}
		}
		if (u->prefault) {	/* the ring was filled from index 0 upwards: reverse it */
			for (uint64_t a = 0, b = n->warm_count - 1; a < b; a++, b--) {
				uint32_t t = n->warm[a];
				n->warm[a] = n->warm[b];
				n->warm[b] = t;
			}
		}
		atomic_init(&n->nr_free, frames);
		pfn = end;
	}

	pthread_mutex_init(&u->trim_lock, NULL);
	pthread_cond_init(&u->trim_cond, NULL);
	if (pthread_create(&u->trim_thread, NULL, trim_thread_fn, u) == 0)
		u->trim_started = true;
	return 0;

out_pcps:
	free(u->pcps);
out_pages:
	munmap(u->pages, nr * sizeof(*u->pages));
out_unmap:
	munmap(u->arena, nr << PAGE_SHIFT);
out_close:
	close(u->memfd);
	return err;
}

void phys_exit(struct umm *u)
{
	if (u->trim_started) {
		pthread_mutex_lock(&u->trim_lock);
		u->trim_stop = true;
		pthread_cond_signal(&u->trim_cond);
		pthread_mutex_unlock(&u->trim_lock);
		pthread_join(u->trim_thread, NULL);
	}
	for (unsigned int i = 0; i < u->nr_nodes; i++) {
		free(u->nodes[i].warm);
		free(u->nodes[i].cold);
		free(u->nodes[i].zeroed);
		pthread_mutex_destroy(&u->nodes[i].lock);
	}
	free(u->pcps);
	munmap(u->pages, u->nr_frames * sizeof(*u->pages));
	munmap(u->arena, u->nr_frames << PAGE_SHIFT);
	close(u->memfd);
}

int umm_arena_fd(struct umm *u, uint64_t *bytes)
{
	if (!u)
		return -EINVAL;
	if (!(u->cfg.flags & UMM_CONFIG_SHAREABLE))
		return -EPERM;
	if (bytes)
		*bytes = u->nr_frames << PAGE_SHIFT;
	return u->memfd;
}
