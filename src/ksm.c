// SPDX-License-Identifier: MIT
/*
 * ksm.c - Kernel Samepage Merging: ksmd, mm slots, rmap items, the stable
 * and unstable trees, chains of duplicates, merge, unmerge, KSM zero pages,
 * smart scan, the scan-time advisor and the figures.
 *
 * What it does, as on Linux.  Address spaces with VM_MERGEABLE areas
 * (madvise, or merge-any for the whole mm) are registered with an mm_slot
 * on ksm_mm_head; the scanner walks the slots from a cursor, keeping one
 * rmap_item per anonymous page address, in address order per slot.  For
 * each page it first looks for an identical KSM page in the stable tree and
 * merges into it; otherwise, if the page's checksum (xxHash) is the one it
 * had at the previous scan, it searches the unstable tree (pages believed
 * unchanged, ordered by content, rebuilt every full scan) and either
 * merges with an identical page there - both become one new write-protected
 * KSM page in the stable tree - or inserts itself.  A write to a KSM page
 * faults and copies (memory.c never reuses a KSM page).  Equality is always
 * decided by a full compare after write protection: the write-protect is
 * an atomic PTE update followed by flush_tlb_mm() (tlb.c), after which no
 * store can still go through the old PTE, so the compared bytes are final.
 *
 * Stable nodes hold no page reference.  A KSM page's mapping is its stable
 * node | PAGE_MAPPING_KSM; get_ksm_page() finds the page from the node's
 * kpfn and trusts it only if the page still points back at the node,
 * taking a speculative reference; a node whose page is gone is stale and
 * is removed when found.  A node shared by max_page_sharing mappings is
 * full: further merges of the same content go to another "dup", and the
 * dups of one content hang off a "chain" node in the tree, pruned every
 * stable_node_chains_prune_millisecs.
 *
 * Beyond Linux.  (1) Merge domains: every tree key starts with the domain
 * (and, without merge_across_nodes, the memory node), so pages of different
 * domains never compare equal and never share a frame.  (2) nr_threads
 * scanner threads: the trees are sharded by checksum (identical pages have
 * identical checksums, so everything a page can merge with lives in its
 * shard), each shard under its own mutex.  The scan proceeds in phases: the
 * calling thread gathers a batch of rmap_items from the cursor (the only
 * phase that creates, frees or reaps items and slots, and that touches the
 * trees without shard locks); all threads checksum the batch's pages (no
 * page references: see ksm_checksum_chunk()); all threads merge, one shard
 * at a time each, a shard's items in scan order; then the full-scan
 * bookkeeping runs.  Phases never overlap, and within a shard the merges
 * happen in the order one thread would do them, so the result - which
 * pages merge, and every count - is the one a single thread produces
 * whenever it does not depend on the timing of racing writes.  Two things
 * keep it so: smart scan's skip decisions are taken in the merge phase
 * (whether a page is shared may change with the merges before it), and a
 * batch in which an item leaves a stable node of another shard merges in
 * scan order on one thread (ksm_batch_leaves_shard()).  (3) The rmap
 * walk of a KSM page is exact, fork families included (rmap_walk_ksm()).
 *
 * Locking (outermost first):
 *
 *   ksm->thread_mutex (ksm_thread_mutex: one scan at a time, knobs, run)
 *     shard->lock (never two at once; none in the gather phase)
 *       mm->mmap_lock (read)
 *         page lock
 *           anon_vma rwsem, PTE lock (rmap.c's order)
 *   ksm->mmlist_lock (ksm_mmlist_lock: the slot list; a spinlock taken with
 *   nothing else but mmap_lock held, never held while sleeping)
 *
 * The stable node rmap lists are changed only with the KSM page locked, so
 * rmap_walk_ksm() walks them under the page lock, as Linux does.  An mm
 * that exits is no longer touched once exit_mmap() runs: ksm_exit() moves
 * its slot behind the cursor, then takes and drops mmap_lock for write;
 * every KSM path re-checks mm_users under mmap_lock read.
 */
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "internal.h"

#define KSM_NR_SHARDS		64
#define STABLE_NODE_CHAIN	(-1024)
#define KSM_BATCH_PER_THREAD	512	/* long phases: a helper's wakeup is amortized */
#define KSM_CHUNK		16	/* checksum phase: items per unit of work */
#define KSM_PREFETCH_BYTES	1024	/* of the next page, while one is hashed */

enum { ITEM_NONE, ITEM_UNSTABLE, ITEM_STABLE };

struct ksm_shard;

/*
 * struct ksm_stable_node - a KSM page (plain node or dup) or a chain of
 * dups of one content.  Plain nodes and chains sit in their shard's stable
 * tree; dups hang in their chain's list.
 */
struct ksm_stable_node {
	struct rb_node node;			/* plain or chain: in the stable tree */
	struct list_head hlist;			/* rmap_items (plain, dup); dups (chain) */
	struct list_head hlist_dup;		/* dup: in its chain's hlist */
	struct ksm_stable_node *chain;		/* dup: its chain; NULL otherwise */
	struct ksm_shard *shard;
	_Atomic uint64_t kpfn;			/* plain, dup: the KSM page's frame */
	/*
	 * plain, dup: the anon_vma and index the page had before it became a
	 * KSM page in place (referenced; NULL if it was made from a replaced
	 * page).  Mappings it had then - in VMAs of the fork family that have
	 * no rmap_item for it - are found through them (rmap_walk_ksm).
	 */
	struct anon_vma *anon_vma;
	uint64_t index;
	/*
	 * plain, dup: where mappings may remain that no rmap_item names any
	 * more - an item left (its mm exited, or unmerged) while forks of it
	 * still map the page.  rmap_walk_ksm searches them too, so the walk
	 * stays exact until ksmd meets those mappings again.
	 */
	struct list_head ghosts;		/* of struct ksm_ghost */
	uint64_t chain_prune_time;		/* chain: ms of the last prune */
	uint64_t checksum;			/* plain, chain: of the content (a hint) */
	int rmap_hlist_len;			/* mappings; STABLE_NODE_CHAIN for a chain */
	unsigned int domain;			/* key: merge domain, then node, then bytes */
	int nid;
};

/* An (anon_vma, address) a departed rmap_item leaves behind on its node. */
struct ksm_ghost {
	struct list_head link;
	struct anon_vma *anon_vma;		/* referenced */
	uint64_t address;
};

/* struct ksm_rmap_item - one scanned page address of one mm. */
struct ksm_rmap_item {
	struct ksm_rmap_item *rmap_list;	/* next in the slot, by address */
	struct umm_mm *mm;
	uint64_t address;
	struct anon_vma *anon_vma;		/* stable: the VMA's, referenced */
	struct ksm_stable_node *head;		/* stable: its node (plain or dup) */
	/* whose tree holds it (NULL: none); read without its lock by the owner */
	_Atomic(struct ksm_shard *) shard;
	struct rb_node node;			/* unstable: in the unstable tree */
	struct list_head hlist;			/* stable: in head->hlist */
	unsigned long seqnr;			/* unstable: the scan that inserted it */
	uint64_t oldchecksum;
	uint64_t prefix;			/* unstable: page_prefix() when inserted */
	unsigned int domain;			/* unstable key */
	int nid;
	uint8_t state;				/* ITEM_* */
	uint8_t age, remaining_skips;		/* smart scan */
};

/*
 * rmap_items come from chunks of KSM_ITEM_CHUNK, kept on a free list, like
 * a kmem_cache: a first scan of 1 GiB makes 262144 of them in the gather
 * phase, which one thread runs, and malloc() one by one cost 5% of the
 * merge.  Only the gather phase (and run=2, teardown: thread_mutex held)
 * allocates and frees items, so the cache needs no lock.  Sanitizer builds
 * use malloc() for each, so that ASan still sees a use after free.
 */
#define KSM_ITEM_CHUNK	1024

struct ksm_item_chunk {
	struct ksm_item_chunk *next;
	struct ksm_rmap_item items[KSM_ITEM_CHUNK];
};

struct ksm_mm_slot {
	struct list_head mm_node;		/* in ksm_mm_head */
	struct umm_mm *mm;			/* mmgrab()bed */
	struct ksm_rmap_item *rmap_list;
	unsigned long batch_gen;		/* the batch its items were last gathered in */
};

struct ksm_shard {
	pthread_mutex_t lock;
	struct rb_root stable;
	struct rb_root unstable;
	/*
	 * The plain node or chain the last search found: a page with its
	 * checksum is tried against it first, without the walk and its
	 * compare (see stable_tree_search).
	 */
	struct ksm_stable_node *hint;
} __attribute__((aligned(64)));

/* One gathered page: what the checksum phase found for it. */
struct ksm_scan_entry {
	struct ksm_rmap_item *item;
	uint64_t pfn;				/* 0: nothing mergeable there now */
	uint64_t checksum;
	unsigned int domain;
	int nid;
	unsigned int shard;
	bool skipped;				/* by smart scan: not counted as scanned */
};

/*
 * A batch runs in two parallel phases: checksums (one unit per KSM_CHUNK
 * entries), then merges (one unit per shard: a shard's entries in scan
 * order, so that the order of the merges in a shard, and hence their
 * outcome, is the one a single thread would produce).  The phases are
 * pipelined: while a batch merges, the threads without a shard to merge
 * checksum the next batch (@ahead).  The checksum phase reads no KSM
 * structure, so it may run beside merges: it only needs mmap_lock, PTEs
 * and page contents.
 */
struct ksm_batch {
	struct ksm_scan_entry *e;
	unsigned long nr;
	unsigned long gen;			/* scan.batch_gen when gathered */
	bool stopped;				/* the gather ended before its cap */
	unsigned int *order;			/* entries sorted by shard, stable */
	unsigned int start[KSM_NR_SHARDS + 1];	/* each shard's run in order[] */
	unsigned int busy[KSM_NR_SHARDS];	/* the shards with entries: merge units */
	unsigned int merge_units;		/* 1 and !nr_busy: all in scan order */
	unsigned int nr_busy;
	struct ksm_batch *ahead;		/* checksummed in the merge phase */
	void (*fn)(struct ksm *k, struct ksm_batch *b, unsigned long unit);
	unsigned long units;
	_Atomic unsigned long next;
};

struct ksm {
	struct umm *u;
	pthread_mutex_t thread_mutex;
	spinlock_t mmlist_lock;
	_Atomic int thread_mutex_waiters;	/* callers other than ksmd queued on it */
	struct ksm_mm_slot mm_head;		/* list head; the cursor's "between scans" */
	struct {
		struct ksm_mm_slot *mm_slot;
		uint64_t address;
		struct ksm_rmap_item **rmap_list;
		_Atomic unsigned long seqnr;	/* full scans done */
		bool pass_done;
		bool nomem;			/* stopped: an rmap_item could not be allocated */
		unsigned long batch_gen;	/* batches gathered */
		unsigned long merged_gen;	/* the last batch merged */
	} scan;
	struct ksm_shard shards[KSM_NR_SHARDS];
	struct ksm_item_chunk *item_chunks;	/* every chunk, for ksm_destroy() */
	struct ksm_rmap_item *item_free;	/* free items, linked by rmap_list */
	struct umm_ksm_params p;
	_Atomic int run;
	_Atomic bool domains_used;		/* some mm left domain 0 once */
	uint64_t zero_checksum;
	uint64_t chains_pruned;			/* ms of the last prune of every chain */

	_Atomic long pages_shared, pages_sharing, pages_unshared, rmap_items;
	_Atomic long stable_node_chains, stable_node_dups;
	_Atomic unsigned long pages_scanned, pages_skipped;

	/* ksmd */
	pthread_mutex_t ksmd_lock;
	pthread_cond_t ksmd_wait;
	pthread_t ksmd;
	bool ksmd_started, ksmd_stop;

	/* scanner helpers: nr_threads - 1 threads that join each batch */
	pthread_mutex_t pool_lock;
	pthread_cond_t pool_go, pool_done;
	pthread_t helpers[UMM_KSM_MAX_THREADS];
	unsigned int nr_helpers;
	unsigned long pool_gen;
	unsigned int pool_busy;
	bool pool_stop;
	struct ksm_batch *pool_batch;
	_Atomic uint64_t scan_cpu_ns;		/* CPU the helpers spent (advisor) */

	/* advisor */
	uint64_t adv_start_ns, adv_cpu_ns;
	uint64_t adv_prev_scan_time;
};

static uint64_t now_ns(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static inline bool ksm_test_exit(struct umm_mm *mm)
{
	return atomic_load(&mm->mm_users) == 0;
}

static inline struct ksm_stable_node *page_stable_node(struct umm_page *page)
{
	uintptr_t m = atomic_load_explicit(&page->mapping, memory_order_acquire);

	if ((m & PAGE_MAPPING_FLAGS) != PAGE_MAPPING_KSM)
		return NULL;
	return (struct ksm_stable_node *)(m & ~PAGE_MAPPING_FLAGS);
}

static inline void set_page_stable_node(struct umm_page *page, struct ksm_stable_node *node)
{
	atomic_store_explicit(&page->mapping, (uintptr_t)node | PAGE_MAPPING_KSM,
			      memory_order_release);
}

static inline bool is_stable_node_chain(const struct ksm_stable_node *n)
{
	return n->rmap_hlist_len == STABLE_NODE_CHAIN;
}

/* ---- page contents ---- */

/*
 * The checksum and the unstable tree's comparisons read pages that may be
 * written meanwhile, exactly as Linux's do: a torn read only misplaces a
 * page whose contents were changing anyway.  The merge itself compares
 * again after write protection.  Hidden from TSan for that reason.
 */
#if KSM_CHECKSUM_AVX2
static _Atomic bool cpu_has_avx2;	/* set by ksm_init() */
#endif

static uint64_t calc_checksum(struct umm *u, struct umm_page *page)
{
#if KSM_CHECKSUM_AVX2
	if (atomic_load_explicit(&cpu_has_avx2, memory_order_relaxed))
		return ksm_checksum_avx2(page_address(u, page), PAGE_SIZE);
#endif
	return XXH3_64bits(page_address(u, page), PAGE_SIZE);
}

#if defined(__SANITIZE_THREAD__)
__attribute__((no_sanitize("thread")))
static int memcmp_pages(struct umm *u, struct umm_page *a, struct umm_page *b)
{
	const volatile uint64_t *x = page_address(u, a), *y = page_address(u, b);

	for (unsigned int i = 0; i < PAGE_SIZE / sizeof(uint64_t); i++) {
		uint64_t p = x[i], q = y[i];

		if (p != q)
			return p < q ? -1 : 1;
	}
	return 0;
}
#else
static int memcmp_pages(struct umm *u, struct umm_page *a, struct umm_page *b)
{
	return memcmp(page_address(u, a), page_address(u, b), PAGE_SIZE);
}
#endif

/*
 * The first 8 bytes of @page as a number that orders as memcmp() orders
 * them.  The unstable tree keeps each item's, taken when it was inserted,
 * and steers by it: a page whose first bytes differ goes left or right
 * without the tree page being looked up or read (Linux reads every page on
 * the way).  Only an equal prefix leads to the full compare.
 */
#if defined(__SANITIZE_THREAD__)
__attribute__((no_sanitize("thread")))
#endif
static uint64_t page_prefix(struct umm *u, struct umm_page *page)
{
	const volatile uint64_t *p = page_address(u, page);

	return __builtin_bswap64(*p);
}

static inline bool pages_identical(struct umm *u, struct umm_page *a, struct umm_page *b)
{
	return memcmp_pages(u, a, b) == 0;
}

/* The key every tree is ordered by before the contents. */
static inline int key_cmp(unsigned int d1, int n1, unsigned int d2, int n2)
{
	if (d1 != d2)
		return d1 < d2 ? -1 : 1;
	if (n1 != n2)
		return n1 < n2 ? -1 : 1;
	return 0;
}

static inline int page_key_nid(struct ksm *k, struct umm_page *page)
{
	return k->p.merge_across_nodes ? 0 : page->node;
}

static inline struct ksm_shard *shard_of(struct ksm *k, uint64_t checksum)
{
	return &k->shards[(checksum ^ (checksum >> 32)) % KSM_NR_SHARDS];
}

/* ---- stable nodes ---- */

static struct ksm_stable_node *alloc_stable_node(struct ksm_shard *shard, unsigned int domain,
						 int nid)
{
	struct ksm_stable_node *n = calloc(1, sizeof(*n));

	if (n) {
		INIT_LIST_HEAD(&n->hlist);
		INIT_LIST_HEAD(&n->hlist_dup);
		INIT_LIST_HEAD(&n->ghosts);
		n->shard = shard;
		n->domain = domain;
		n->nid = nid;
	}
	return n;
}

/*
 * remove_node_from_stable_tree - forget a node whose page is gone (or is
 * being unmerged): its rmap_items leave the stable tree.
 * Context: the node's shard locked (or the scanner's gather phase).
 */
static void stable_item_gone(struct ksm *k, struct ksm_rmap_item *item,
			     struct ksm_stable_node *node, bool last);

/* @node (a plain node or chain) leaves the stable tree: its shard forgets it. */
static inline void forget_hint(struct ksm_stable_node *node)
{
	if (node->shard->hint == node)
		node->shard->hint = NULL;
}

static void remove_node_from_stable_tree(struct ksm *k, struct ksm_stable_node *node)
{
	struct ksm_rmap_item *item, *tmp;

	list_for_each_entry_safe(item, tmp, &node->hlist, hlist)
		stable_item_gone(k, item, node, item->hlist.next == &node->hlist);
	if (node->chain) {
		list_del_init(&node->hlist_dup);
		atomic_fetch_sub(&k->stable_node_dups, 1);
	} else {
		forget_hint(node);
		rb_erase(&node->node, &node->shard->stable);
	}
	if (node->anon_vma)
		put_anon_vma(node->anon_vma);
	while (!list_empty(&node->ghosts)) {
		struct ksm_ghost *g = list_first_entry(&node->ghosts, struct ksm_ghost, link);

		list_del_init(&g->link);
		put_anon_vma(g->anon_vma);
		free(g);
	}
	free(node);
}

static void free_stable_node_chain(struct ksm *k, struct ksm_stable_node *chain)
{
	VM_BUG_ON(!list_empty(&chain->hlist));
	forget_hint(chain);
	rb_erase(&chain->node, &chain->shard->stable);
	atomic_fetch_sub(&k->stable_node_chains, 1);
	free(chain);
}

/*
 * get_ksm_page - the KSM page of @node, with a reference (and locked if
 * @lock), if the page still points back at @node.  Otherwise the node is
 * stale: it is removed and NULL returned.
 * Context: the node's shard locked (or the gather phase).
 */
static struct umm_page *get_ksm_page(struct ksm *k, struct ksm_stable_node *node, bool lock)
{
	struct umm *u = k->u;
	uintptr_t expected = (uintptr_t)node | PAGE_MAPPING_KSM;
	struct umm_page *page;
	uint64_t kpfn;

again:
	kpfn = atomic_load(&node->kpfn);
	page = pfn_to_page(u, kpfn);
	if (atomic_load_explicit(&page->mapping, memory_order_acquire) != expected)
		goto stale;
	if (!get_page_unless_zero(page)) {
		/*
		 * A count frozen at zero with the mapping still ours: a
		 * migration is moving the page (or it is on its way to the
		 * allocator, which clears the mapping).  Look again.
		 */
		if (atomic_load_explicit(&page->mapping, memory_order_acquire) == expected) {
			sched_yield();
			goto again;
		}
		goto stale;
	}
	if (atomic_load_explicit(&page->mapping, memory_order_acquire) != expected) {
		put_page(u, page);
		goto stale;
	}
	if (lock) {
		lock_page(page);
		if (atomic_load_explicit(&page->mapping, memory_order_acquire) != expected) {
			unlock_page(page);
			put_page(u, page);
			goto stale;
		}
	}
	return page;
stale:
	if (atomic_load(&node->kpfn) != kpfn)
		goto again;		/* migrated meanwhile: follow it */
	remove_node_from_stable_tree(k, node);
	return NULL;
}

/*
 * ksm_migrate_page - migration moved the KSM page @old to @new, which
 * already points at the same stable node: the node learns the new frame
 * before @old lets go of the node, so get_ksm_page() always finds one.
 * Context: both pages locked; @old's count frozen.
 */
void ksm_migrate_page(struct umm *u, struct umm_page *new, struct umm_page *old)
{
	struct ksm_stable_node *node = page_stable_node(new);

	VM_BUG_ON(node != page_stable_node(old));
	if (node)
		atomic_store(&node->kpfn, page_to_pfn(u, new));
}

/*
 * stable_item_gone - @item no longer counts in @node (the @last of its
 * mappings if so: pages_shared drops, else pages_sharing).
 */
static void stable_item_gone(struct ksm *k, struct ksm_rmap_item *item,
			     struct ksm_stable_node *node, bool last)
{
	atomic_fetch_sub(last ? &k->pages_shared : &k->pages_sharing, 1);
	atomic_fetch_sub(&item->mm->ksm_merging_pages, 1);
	VM_BUG_ON(node->rmap_hlist_len <= 0);
	node->rmap_hlist_len--;
	put_anon_vma(item->anon_vma);
	item->anon_vma = NULL;
	item->head = NULL;
	item->shard = NULL;
	item->state = ITEM_NONE;
	INIT_LIST_HEAD(&item->hlist);
}

/*
 * remove_rmap_item_from_tree - take @item out of the stable or unstable
 * tree it is in.  Context: @item's shard locked (or the gather phase).
 */
/*
 * keep_ghost - @item leaves @node while the page is still mapped: forks of
 * its mm may map it at the same address through the same anon_vma, with no
 * item of their own yet.  Remember where to look.
 * Context: the KSM page locked.
 */
static void keep_ghost(struct ksm_stable_node *node, struct ksm_rmap_item *item)
{
	struct ksm_ghost *g;

	list_for_each_entry(g, &node->ghosts, link)
		if (g->anon_vma == item->anon_vma && g->address == item->address)
			return;
	g = malloc(sizeof(*g));
	if (!g)
		return;		/* the walk may miss those mappings until ksmd meets them */
	g->anon_vma = item->anon_vma;
	get_anon_vma(g->anon_vma);
	g->address = item->address;
	list_add_tail(&g->link, &node->ghosts);
}

static void remove_rmap_item_from_tree(struct ksm *k, struct ksm_rmap_item *item)
{
	if (item->state == ITEM_STABLE) {
		struct ksm_stable_node *node = item->head;
		struct umm_page *page = get_ksm_page(k, node, true);

		/* a stale node took its items out already */
		if (!page)
			return;
		list_del_init(&item->hlist);
		if (page_mapcount(page) > 0)
			keep_ghost(node, item);
		unlock_page(page);
		put_page(k->u, page);
		stable_item_gone(k, item, node, list_empty(&node->hlist));
	} else if (item->state == ITEM_UNSTABLE) {
		/* an older scan's tree was reset already: nothing to erase */
		if (item->seqnr == k->scan.seqnr)
			rb_erase(&item->node, &item->shard->unstable);
		atomic_fetch_sub(&k->pages_unshared, 1);
	}
	item->state = ITEM_NONE;
	item->shard = NULL;
}

/* Take @item out of its tree under that tree's shard lock. */
static void remove_rmap_item_locked(struct ksm *k, struct ksm_rmap_item *item)
{
	struct ksm_shard *shard = item->shard;

	if (!shard)
		return;
	pthread_mutex_lock(&shard->lock);
	remove_rmap_item_from_tree(k, item);
	pthread_mutex_unlock(&shard->lock);
}

static struct ksm_rmap_item *alloc_rmap_item(struct ksm *k)
{
	struct ksm_rmap_item *item;

	if (should_fail(k->u, UMM_FAULT_RMAP_ITEM_ALLOC))
		return NULL;
#ifdef UMM_SANITIZE
	item = calloc(1, sizeof(*item));
#else
	if (!k->item_free) {
		struct ksm_item_chunk *c = malloc(sizeof(*c));

		if (!c)
			return NULL;
		c->next = k->item_chunks;
		k->item_chunks = c;
		for (unsigned int i = KSM_ITEM_CHUNK; i--;) {
			c->items[i].rmap_list = k->item_free;
			k->item_free = &c->items[i];
		}
	}
	item = k->item_free;
	k->item_free = item->rmap_list;
	memset(item, 0, sizeof(*item));
#endif
	return item;
}

static void free_rmap_item(struct ksm *k, struct ksm_rmap_item *item)
{
	atomic_fetch_sub(&k->rmap_items, 1);
	atomic_fetch_sub(&item->mm->ksm_rmap_items, 1);
#ifdef UMM_SANITIZE
	free(item);
#else
	item->rmap_list = k->item_free;
	k->item_free = item;
#endif
}

/*
 * Free every item from *@list on.  Context: no batch in flight (the gather
 * phase, run=2, teardown): the trees need no shard lock then.
 */
static void remove_trailing_rmap_items(struct ksm *k, struct ksm_rmap_item **list)
{
	while (*list) {
		struct ksm_rmap_item *item = *list;

		*list = item->rmap_list;
		remove_rmap_item_from_tree(k, item);
		free_rmap_item(k, item);
	}
}

/* ---- page tables ---- */

/*
 * find_mergeable_vma - the VM_MERGEABLE VMA with anonymous pages at @addr.
 * Context: mmap_lock held for read; NULL once the mm is exiting.
 */
static struct vm_area_struct *find_mergeable_vma(struct umm_mm *mm, uint64_t addr)
{
	struct vm_area_struct *vma;

	if (ksm_test_exit(mm))
		return NULL;
	vma = find_vma(mm, addr);
	if (!vma || vma->vm_start > addr || !(vma->vm_flags & VM_MERGEABLE) || !vma->anon_vma)
		return NULL;
	return vma;
}

/*
 * ksm_follow_pfn - the frame of the anonymous page mapped at @addr, and a
 * reference on it if @get.  PROT_NONE PTEs count (Linux merges them too);
 * the zero frame does not.  Return: the pfn, 0 for none.
 * Context: mmap_lock held.
 */
/* The frame @pte maps if it is an anonymous page KSM may merge, else 0. */
static uint64_t ksm_pte_pfn(struct umm *u, pte_t pte)
{
	struct umm_page *page;

	if (!pte_present(pte) || pte_special(pte) || pte_pfn(pte) >= u->nr_frames)
		return 0;
	page = pfn_to_page(u, pte_pfn(pte));
	return PageAnon(page) && !PageReserved(page) ? pte_pfn(pte) : 0;
}

static uint64_t ksm_follow_pfn(struct umm_mm *mm, uint64_t addr, bool get)
{
	struct pt_page *pt;
	_Atomic pte_t *ptep = pte_offset(mm, addr, false, &pt);
	uint64_t pfn;

	if (!ptep)
		return 0;
	/* a peek without a reference needs no lock: the PTE is read whole */
	if (!get)
		return ksm_pte_pfn(mm->u, atomic_load_explicit(ptep, memory_order_acquire));
	spin_lock(pte_lockptr(pt));
	pfn = ksm_pte_pfn(mm->u, atomic_load_explicit(ptep, memory_order_relaxed));
	if (pfn)
		get_page(pfn_to_page(mm->u, pfn));
	spin_unlock(pte_lockptr(pt));
	return pfn;
}

static struct umm_page *ksm_follow_page(struct umm_mm *mm, uint64_t addr)
{
	uint64_t pfn = ksm_follow_pfn(mm, addr, true);

	return pfn ? pfn_to_page(mm->u, pfn) : NULL;
}

/*
 * ksm_peek_pfn - the anonymous page mapped at @item's address now, found
 * as GUP-fast finds it: no mmap_lock, no PTE lock, no reference.  Inside
 * the caller's access section in @item's mm, the tables walked and the
 * frame found cannot be freed (the flush before that waits for the
 * section), so the frame can be read; its contents may change meanwhile.
 * Used to steer through the unstable tree, where every step would
 * otherwise take and drop some mm's mmap_lock and a PTE lock - cache lines
 * that scanner threads bounce between them.  Return: the pfn, or 0 (none,
 * or the mm is exiting).  Context: cpu_access_begin(cpu, @item->mm).
 */
static uint64_t ksm_peek_pfn(struct ksm *k, struct ksm_rmap_item *item)
{
	struct umm_mm *mm = item->mm;
	struct pt_page *pgd = __atomic_load_n(&mm->pgd, __ATOMIC_ACQUIRE);
	_Atomic pte_t *ptep;

	if (!pgd || __atomic_load_n(&mm->dead, __ATOMIC_ACQUIRE))
		return 0;
	ptep = pte_offset_lockless(pgd, item->address);
	if (!ptep)
		return 0;
	return ksm_pte_pfn(k->u, atomic_load_explicit(ptep, memory_order_acquire));
}

/* The mergeable anonymous page of @item's address now, with a reference. */
static struct umm_page *get_mergeable_page(struct ksm_rmap_item *item)
{
	struct umm_mm *mm = item->mm;
	struct umm_page *page = NULL;

	pthread_rwlock_rdlock(&mm->mmap_lock);
	if (find_mergeable_vma(mm, item->address))
		page = ksm_follow_page(mm, item->address);
	pthread_rwlock_unlock(&mm->mmap_lock);
	return page;
}

/*
 * ksm_pte_lock - start a CLEAR invalidation of the page at @addr and lock
 * its PTE.  Return: the PTE slot (its table's lock held, the range started),
 * or NULL (nothing started).  ksm_pte_unlock() ends both.
 */
static _Atomic pte_t *ksm_pte_lock(struct umm_mm *mm, uint64_t addr,
				   struct mmu_notifier_range *range, struct pt_page **pt)
{
	_Atomic pte_t *ptep = pte_offset(mm, addr, false, pt);

	if (!ptep)
		return NULL;
	mmu_notifier_range_init(range, UMM_MMU_NOTIFY_CLEAR, mm, addr, addr + PAGE_SIZE);
	mmu_notifier_invalidate_range_start(range);
	spin_lock(pte_lockptr(*pt));
	return ptep;
}

static void ksm_pte_unlock(struct mmu_notifier_range *range, struct pt_page *pt)
{
	spin_unlock(pte_lockptr(pt));
	mmu_notifier_invalidate_range_end(range);
}

/*
 * Does the locked PTE value @pte map @page, with no reference on it but the
 * mappings' and the caller's (GUP, O_DIRECT-like users could still write)?
 * GUP takes its reference under the PTE lock: none can appear while it is
 * held.  Return: 0, -EFAULT or -EBUSY.
 */
static int ksm_pte_check(struct umm *u, struct umm_page *page, pte_t pte)
{
	int swapped = TestPageFlag(page, PG_swapcache) ? 1 : 0;

	if (!pte_present(pte) || pte_special(pte) || pte_pfn(pte) != page_to_pfn(u, page))
		return -EFAULT;
	if (page_mapcount(page) + 1 + swapped != page_count(page))
		return -EBUSY;
	return 0;
}

/*
 * write_protect_page - make the PTE mapping @page at @addr read-only and
 * clean, so that its contents can be trusted: after the flush no store goes
 * through the old PTE.  Refused (-EBUSY) while anyone but the mappings and
 * the caller holds a reference.
 * Return: 0, -EFAULT or -EBUSY.  Context: mmap_lock read, page locked.
 */
static int write_protect_page(struct vm_area_struct *vma, struct umm_page *page, uint64_t addr)
{
	struct umm_mm *mm = vma->vm_mm;
	struct mmu_notifier_range range;
	struct pt_page *pt;
	_Atomic pte_t *ptep;
	int err;
	pte_t pte;

	ptep = ksm_pte_lock(mm, addr, &range, &pt);
	if (!ptep)
		return -EFAULT;
	pte = atomic_load_explicit(ptep, memory_order_relaxed);
	err = ksm_pte_check(mm->u, page, pte);
	if (!err && (pte & (_PAGE_RW | _PAGE_DIRTY))) {
		pte = atomic_fetch_and(ptep, ~(_PAGE_RW | _PAGE_DIRTY));
		flush_tlb_mm(mm);
		mmu_notifier_invalidate_secondary_tlbs(mm, addr, addr + PAGE_SIZE);
		if (pte_dirty(pte))
			SetPageFlag(page, PG_dirty);
	}
	ksm_pte_unlock(&range, pt);
	return err;
}

/*
 * replace_page - the PTE at @addr that maps @page maps @kpage instead (a
 * KSM page, or the zero frame) if their contents are the same.  Linux
 * write-protects the PTE, compares, then replaces it, each step under its
 * own PTE lock, invalidation and flush; here it is one section: the PTE is
 * cleared and flushed (no access and no GUP reaches @page through it any
 * more), the contents compared, and the PTE set to @kpage or put back as it
 * was.  An access meanwhile faults and waits on the PTE lock.  The old page
 * loses this mapping and its reference (the caller still holds its own).
 * Refused (-EBUSY) while anyone but the mappings and the caller holds a
 * reference, as write_protect_page().
 * Return: 0, -EFAULT (not mapped there any more), -ESTALE (the contents
 * differ) or -EBUSY.  Context: mmap_lock read, @page locked.
 */
static int replace_page(struct vm_area_struct *vma, struct umm_page *page,
			struct umm_page *kpage, uint64_t addr)
{
	struct umm_mm *mm = vma->vm_mm;
	struct umm *u = mm->u;
	uint64_t kpfn = page_to_pfn(u, kpage);
	struct mmu_notifier_range range;
	struct pt_page *pt;
	_Atomic pte_t *ptep;
	pte_t pte, newpte;
	int err;

	ptep = ksm_pte_lock(mm, addr, &range, &pt);
	if (!ptep)
		return -EFAULT;
	err = ksm_pte_check(u, page, atomic_load_explicit(ptep, memory_order_relaxed));
	if (err)
		goto out_unlock;
	/* ptep_clear_flush */
	pte = atomic_exchange_explicit(ptep, 0, memory_order_seq_cst);
	flush_tlb_mm(mm);
	mmu_notifier_invalidate_secondary_tlbs(mm, addr, addr + PAGE_SIZE);
	/* its swap copy (if any) is stale: as write_protect_page() */
	if (pte_dirty(pte))
		SetPageFlag(page, PG_dirty);
	if (!pages_identical(u, page, kpage)) {
		atomic_store_explicit(ptep, pte, memory_order_seq_cst);
		err = -ESTALE;
		goto out_unlock;
	}
	if (kpfn != ZERO_PFN) {
		get_page(kpage);
		atomic_fetch_add_explicit(&kpage->_mapcount, 1, memory_order_relaxed);
		newpte = pfn_pte(kpfn, vma_pte_prot(vma->vm_flags));
	} else {
		newpte = pfn_pte(ZERO_PFN, vma_pte_prot(vma->vm_flags) | _PAGE_SPECIAL |
				 _PAGE_DIRTY);
		ksm_map_zero_page(mm);
		add_mm_counter(mm, MM_ANONPAGES, -1);
	}
	/* set_pte_at_notify */
	mmu_notifier_change_pte(mm, addr, kpfn, false);
	atomic_store_explicit(ptep, newpte, memory_order_seq_cst);
	page_remove_rmap(page, vma);
	/* its last mapping went to @kpage: a copy in swap nobody names can go */
	if (page_mapcount(page) <= 0)
		try_to_free_swap(u, page);
	put_page(u, page);		/* the old PTE's reference */
	err = 0;
out_unlock:
	ksm_pte_unlock(&range, pt);
	return err;
}

/*
 * ksm_in_place_same_domain - may @page, just made a KSM page in place by an
 * item of @mm, stay one?  Not if a fork in another merge domain maps it too.
 * Against umm_mm_set_ksm_domain() this is Dekker's pattern: we store the
 * page's new mapping, then load each mapper's domain; it stores the domain,
 * then (unmerging) loads each page's mapping; one of the two sees the other.
 * Context: @page locked, mapped by @mm.
 */
static bool ksm_in_place_same_domain(struct umm_mm *mm, struct umm_page *page,
				     struct anon_vma *av)
{
	struct interval_tree_node *n;
	bool same = true;

	atomic_thread_fence(memory_order_seq_cst);
	if (!atomic_load(&mm->u->ksm->domains_used) || page_mapcount(page) < 2 || !av)
		return true;
	pthread_rwlock_rdlock(&av->root->rwsem);
	for (n = interval_tree_iter_first(&av->rb_root, page->index, page->index); n && same;
	     n = interval_tree_iter_next(n, page->index, page->index))
		if (container_of(n, struct anon_vma_chain, itn)->vma->vm_mm->ksm_domain !=
		    mm->ksm_domain)
			same = false;
	pthread_rwlock_unlock(&av->root->rwsem);
	return same;
}

/*
 * try_to_merge_one_page - make the mapping of @page at @addr share @kpage,
 * or, with @kpage NULL, turn @page itself into a (not yet stable) KSM page:
 * then *@origp is the anon_vma it belonged to, referenced (or NULL).
 * Return: 0 or -errno.  Context: mmap_lock read.
 */
static int try_to_merge_one_page(struct vm_area_struct *vma, struct umm_page *page,
				 struct umm_page *kpage, uint64_t addr, struct anon_vma **origp)
{
	int err;

	if (page == kpage)
		return 0;
	if (!PageAnon(page))
		return -EFAULT;
	/* ksmd must not wait for a page lock another path holds for long */
	if (!trylock_page(page))
		return -EBUSY;
	if (kpage) {
		err = replace_page(vma, page, kpage, addr);
	} else {
		err = write_protect_page(vma, page, addr);
		if (!err) {
			uintptr_t m = atomic_load(&page->mapping);

			*origp = NULL;
			if ((m & PAGE_MAPPING_FLAGS) == PAGE_MAPPING_ANON) {
				*origp = (struct anon_vma *)(m & ~PAGE_MAPPING_FLAGS);
				get_anon_vma(*origp);
			}
			set_page_stable_node(page, NULL);
			if (!ksm_in_place_same_domain(vma->vm_mm, page, *origp)) {
				/* a fork of another domain maps it: no KSM page there */
				atomic_store(&page->mapping, m);
				if (*origp)
					put_anon_vma(*origp);
				*origp = NULL;
				err = -EXDEV;
			} else {
				SetPageFlag(page, PG_dirty);
			}
		}
	}
	unlock_page(page);
	return err;
}

/*
 * try_to_merge_with_ksm_page - merge @item's page into @kpage (NULL: make it
 * a KSM page); on success @item takes a reference on its VMA's anon_vma,
 * which rmap_walk_ksm() will search.
 */
static int try_to_merge_with_ksm_page(struct ksm *k, struct ksm_rmap_item *item,
				      struct umm_page *page, struct umm_page *kpage,
				      struct anon_vma **origp)
{
	struct umm_mm *mm = item->mm;
	struct vm_area_struct *vma;
	int err = -EFAULT;

	pthread_rwlock_rdlock(&mm->mmap_lock);
	vma = find_mergeable_vma(mm, item->address);
	/* the mm moved to another merge domain since its page was looked at */
	if (!vma || mm->ksm_domain != item->domain)
		goto out;
	err = try_to_merge_one_page(vma, page, kpage, item->address, origp);
	if (err)
		goto out;
	remove_rmap_item_from_tree(k, item);
	item->anon_vma = vma->anon_vma;
	get_anon_vma(vma->anon_vma);
out:
	pthread_rwlock_unlock(&mm->mmap_lock);
	return err;
}

/* ---- unmerge ---- */

/* Is the PTE at @addr a KSM page or a KSM zero page?  Context: mmap_lock. */
static bool pte_is_ksm(struct umm_mm *mm, uint64_t addr)
{
	struct pt_page *pt;
	_Atomic pte_t *ptep = pte_offset(mm, addr, false, &pt);
	pte_t pte;

	if (!ptep)
		return false;
	pte = atomic_load_explicit(ptep, memory_order_acquire);
	if (!pte_present(pte))
		return false;
	if (pte_special(pte))
		return is_ksm_zero_pte(pte);
	/* seq_cst: see ksm_in_place_same_domain() */
	return (atomic_load(&pfn_to_page(mm->u, pte_pfn(pte))->mapping) & PAGE_MAPPING_FLAGS) ==
	       PAGE_MAPPING_KSM;
}

/*
 * break_ksm - give the mapping at @addr its own copy of the KSM page (or a
 * fresh page for a KSM zero page), by an unsharing fault: the PTE keeps its
 * permissions (FAULT_FLAG_UNSHARE), so read-only and PROT_NONE areas
 * unmerge too.  Return: 0 or -ENOMEM.  Context: mmap_lock held.
 */
static int break_ksm(struct vm_area_struct *vma, uint64_t addr)
{
	while (pte_is_ksm(vma->vm_mm, addr)) {
		int err = handle_mm_fault(vma, addr, FAULT_FLAG_UNSHARE);

		if (err)
			return err;
	}
	return 0;
}

/* Unmerge every KSM page of [start, end) in @vma.  Context: mmap_lock held. */
static int unmerge_ksm_pages(struct vm_area_struct *vma, uint64_t start, uint64_t end)
{
	struct umm_mm *mm = vma->vm_mm;
	uint64_t addr = start;

	while (addr < end) {
		uint64_t next = min_t(uint64_t, (addr + PMD_SIZE) & PMD_MASK, end);
		struct pt_page *pt;
		int err;

		if (ksm_test_exit(mm))
			break;
		if (!pte_offset(mm, addr, false, &pt)) {
			addr = next;
			continue;
		}
		for (; addr < next; addr += PAGE_SIZE) {
			err = break_ksm(vma, addr);
			if (err)
				return err;
		}
	}
	return 0;
}

/* Undo half a merge: @item's mapping gets its own page back. */
static void break_cow(struct ksm_rmap_item *item)
{
	struct umm_mm *mm = item->mm;
	struct vm_area_struct *vma;

	put_anon_vma(item->anon_vma);
	item->anon_vma = NULL;
	pthread_rwlock_rdlock(&mm->mmap_lock);
	vma = find_mergeable_vma(mm, item->address);
	if (vma)
		break_ksm(vma, item->address);
	pthread_rwlock_unlock(&mm->mmap_lock);
}

static void swap_items(struct ksm_rmap_item **a, struct ksm_rmap_item **b,
		       struct umm_page **pa, struct umm_page **pb)
{
	struct ksm_rmap_item *t = *a;
	struct umm_page *tp = *pa;

	*a = *b;
	*b = t;
	*pa = *pb;
	*pb = tp;
}

/*
 * try_to_merge_two_pages - make @page a KSM page and merge @tree_page into
 * it (or the other way round, if @page may not become one: merge domains).
 * Return: the KSM page (and in *@origp the anon_vma it had, for the stable
 * node), or NULL: nothing is left merged - a page made a KSM page in place
 * is an ordinary anonymous page again.
 */
static struct umm_page *try_to_merge_two_pages(struct ksm *k, struct ksm_rmap_item *item,
					       struct umm_page *page,
					       struct ksm_rmap_item *tree_item,
					       struct umm_page *tree_page,
					       struct anon_vma **origp)
{
	int err = try_to_merge_with_ksm_page(k, item, page, NULL, origp);

	if (err == -EXDEV) {
		/* @page is shared with a fork of another domain: the other way round */
		swap_items(&item, &tree_item, &page, &tree_page);
		err = try_to_merge_with_ksm_page(k, item, page, NULL, origp);
	}
	if (err)
		return NULL;
	err = try_to_merge_with_ksm_page(k, tree_item, tree_page, page, NULL);
	if (!err)
		return page;
	/* a KSM page with a single item: undo it */
	if (*origp) {
		/* in place: other mappings (forks) may share it, give it its anon_vma back */
		lock_page(page);
		if (atomic_load(&page->mapping) == PAGE_MAPPING_KSM)
			atomic_store_explicit(&page->mapping, (uintptr_t)*origp | PAGE_MAPPING_ANON,
					      memory_order_release);
		unlock_page(page);
		put_anon_vma(*origp);
		*origp = NULL;
		put_anon_vma(item->anon_vma);
		item->anon_vma = NULL;
	} else {
		break_cow(item);
	}
	return NULL;
}

/* ---- the stable tree ---- */

static uint64_t now_ms(void)
{
	return now_ns(CLOCK_MONOTONIC_COARSE) / 1000000ULL;	/* ticks: prune intervals are seconds */
}

static inline bool is_page_sharing_candidate(struct ksm *k, struct ksm_stable_node *dup)
{
	return dup->rmap_hlist_len < (int)k->p.max_page_sharing;
}

/*
 * chain_pick - look into a chain and choose the dup a new mapping should
 * join: the first non-full one from the head, where the dup being filled
 * sits (new dups go to the head).  Full dups are passed over without a look.
 * Every stable_node_chains_prune_millisecs a chain is pruned instead: every
 * dup is looked at, stale ones removed, the fullest non-full one chosen and
 * moved to the head, and a chain left with one non-full dup collapses back
 * into a plain node.
 * Return: a page of the chain's content, referenced, for the comparison
 * (the chosen dup's when there is one), and *@dupp the chosen dup or NULL;
 * NULL if the chain had no live dup (it is gone: restart the search).
 * @nodep may change to the dup that replaced the chain.
 */
static struct umm_page *chain_pick(struct ksm *k, struct ksm_stable_node **nodep,
				   struct ksm_stable_node **dupp)
{
	struct ksm_stable_node *chain = *nodep, *dup, *tmp, *found = NULL;
	struct umm_page *found_page = NULL, *any = NULL;
	bool prune = now_ms() - chain->chain_prune_time >= k->p.stable_node_chains_prune_millisecs;
	int nr = 0;

	list_for_each_entry_safe(dup, tmp, &chain->hlist, hlist_dup) {
		bool candidate = is_page_sharing_candidate(k, dup);
		struct umm_page *page;

		if (!prune && !candidate && (found || any))
			continue;
		page = get_ksm_page(k, dup, false);
		if (!page)
			continue;	/* stale: removed */
		nr++;
		if (candidate && (!found || dup->rmap_hlist_len > found->rmap_hlist_len)) {
			if (found_page)
				put_page(k->u, found_page);
			found = dup;
			found_page = page;
			if (!prune)
				break;
			continue;
		}
		if (!any)
			any = page;
		else
			put_page(k->u, page);
	}
	if (!nr) {
		free_stable_node_chain(k, chain);
		return NULL;
	}
	if (prune) {
		chain->chain_prune_time = now_ms();
		if (nr == 1 && found) {
			/* one dup below the limit: the chain is no longer needed */
			list_del_init(&found->hlist_dup);
			found->chain = NULL;
			found->checksum = chain->checksum;
			rb_replace_node(&chain->node, &found->node, &chain->shard->stable);
			forget_hint(chain);
			free(chain);
			atomic_fetch_sub(&k->stable_node_chains, 1);
			atomic_fetch_sub(&k->stable_node_dups, 1);
			*nodep = found;
		} else if (found && chain->hlist.next != &found->hlist_dup) {
			list_del_init(&found->hlist_dup);
			list_add(&found->hlist_dup, &chain->hlist);
		}
	}
	*dupp = found;
	if (found_page) {
		if (any)
			put_page(k->u, any);
		return found_page;
	}
	return any;
}

/*
 * stable_node_page - the page to compare with at @nodep, a plain node or a
 * chain (chain_pick() chooses the dup, and may collapse the chain into it:
 * *@nodep follows), referenced, and in *@dupp the node it belongs to (NULL:
 * a chain with only full dups).  NULL if the node was stale (removed).
 */
static struct umm_page *stable_node_page(struct ksm *k, struct ksm_stable_node **nodep,
					 struct ksm_stable_node **dupp)
{
	if (is_stable_node_chain(*nodep))
		return chain_pick(k, nodep, dupp);
	*dupp = *nodep;
	return get_ksm_page(k, *nodep, false);
}

/*
 * stable_tree_search - find a KSM page identical to @page (same domain and
 * node) that can take one more mapping; @page itself if it is a KSM page.
 * With @checksum (the page's), the shard's hint is tried first: if the
 * node the last search found has that checksum, its page is returned
 * without the walk and without a compare, and *@hinted says so.  That is
 * no decision: the merge compares the whole page (replace_page) and, if
 * they differ after all (-ESTALE), the caller searches again without the
 * hint.  Runs of identical pages (one shard, one thread) then cost one
 * compare each instead of two.
 * Return: the KSM page, referenced, or NULL (none, or only full ones).
 * Context: @shard locked.
 */
static struct umm_page *stable_tree_search(struct ksm *k, struct ksm_shard *shard,
					   struct umm_page *page, unsigned int domain, int nid,
					   const uint64_t *checksum, bool *hinted)
{
	struct ksm_stable_node *hint = shard->hint;
	struct rb_node *n;

	*hinted = false;
	/* a KSM page mapped without an item (forked): the item joins its node,
	 * whatever max_page_sharing says, as on Linux */
	if (page_stable_node(page)) {
		get_page(page);
		return page;
	}
	if (checksum && hint && hint->checksum == *checksum &&
	    !key_cmp(domain, nid, hint->domain, hint->nid)) {
		struct ksm_stable_node *dup;
		struct umm_page *tree_page = stable_node_page(k, &hint, &dup);

		if (tree_page) {
			if (dup && is_page_sharing_candidate(k, dup) &&
			    page_stable_node(tree_page) == dup) {
				*hinted = true;
				return tree_page;
			}
			put_page(k->u, tree_page);	/* full: the walk decides */
		}
	}
again:
	n = shard->stable.node;
	while (n) {
		struct ksm_stable_node *node = rb_entry(n, struct ksm_stable_node, node), *dup;
		struct umm_page *tree_page;
		int ret = key_cmp(domain, nid, node->domain, node->nid);

		if (ret) {
			n = ret < 0 ? n->left : n->right;
			continue;
		}
		tree_page = stable_node_page(k, &node, &dup);
		/* a chain pruned to one dup is freed; that dup took its place */
		n = &node->node;
		if (!tree_page)
			goto again;	/* the tree changed under the walk */
		ret = memcmp_pages(k->u, page, tree_page);
		if (ret) {
			put_page(k->u, tree_page);
			n = ret < 0 ? n->left : n->right;
			continue;
		}
		if (checksum) {
			shard->hint = node;	/* plain or chain: in the tree */
			node->checksum = *checksum;
		}
		if (!dup || !is_page_sharing_candidate(k, dup) || page_stable_node(tree_page) != dup) {
			/* every copy is full: merge in the unstable tree, insert a new dup */
			put_page(k->u, tree_page);
			return NULL;
		}
		return tree_page;
	}
	return NULL;
}

/*
 * stable_tree_insert - put the new KSM page @kpage in the stable tree: as a
 * plain node, or as a new dup of a full node or chain of the same content.
 * Return: its node, or NULL on -ENOMEM.  Context: @shard locked, @kpage locked.
 */
static struct ksm_stable_node *stable_tree_insert(struct ksm *k, struct ksm_shard *shard,
						  struct umm_page *kpage, unsigned int domain,
						  int nid, uint64_t checksum)
{
	struct rb_node **link, *parent;
	struct ksm_stable_node *node, *chain = NULL;

again:
	link = &shard->stable.node;
	parent = NULL;
	while (*link) {
		struct ksm_stable_node *t = rb_entry(*link, struct ksm_stable_node, node), *dup;
		struct umm_page *tree_page;
		int ret = key_cmp(domain, nid, t->domain, t->nid);

		parent = *link;
		if (ret) {
			link = ret < 0 ? &parent->left : &parent->right;
			continue;
		}
		tree_page = stable_node_page(k, &t, &dup);
		parent = &t->node;	/* a chain may have collapsed into its dup */
		if (!tree_page)
			goto again;
		ret = memcmp_pages(k->u, kpage, tree_page);
		put_page(k->u, tree_page);
		if (ret) {
			link = ret < 0 ? &parent->left : &parent->right;
			continue;
		}
		/* same content: join (or make) the chain of dups */
		if (is_stable_node_chain(t)) {
			chain = t;
		} else {
			chain = alloc_stable_node(shard, domain, nid);
			if (!chain)
				return NULL;
			chain->rmap_hlist_len = STABLE_NODE_CHAIN;
			chain->chain_prune_time = now_ms();
			chain->checksum = t->checksum;
			forget_hint(t);
			rb_replace_node(&t->node, &chain->node, &shard->stable);
			t->chain = chain;
			list_add(&t->hlist_dup, &chain->hlist);
			atomic_fetch_add(&k->stable_node_chains, 1);
			atomic_fetch_add(&k->stable_node_dups, 1);
		}
		break;
	}
	node = alloc_stable_node(shard, domain, nid);
	if (!node)
		return NULL;
	atomic_store(&node->kpfn, page_to_pfn(k->u, kpage));
	if (chain) {
		node->chain = chain;
		list_add(&node->hlist_dup, &chain->hlist);
		atomic_fetch_add(&k->stable_node_dups, 1);
		shard->hint = chain;
		chain->checksum = checksum;
	} else {
		rb_link_node(&node->node, parent, link);
		rb_insert_color(&node->node, &shard->stable);
		shard->hint = node;
		node->checksum = checksum;
	}
	set_page_stable_node(kpage, node);
	return node;
}

/*
 * stable_tree_append - @item now maps @node's page.
 * Context: @node's shard locked, its page locked.
 */
static void stable_tree_append(struct ksm *k, struct ksm_rmap_item *item,
			       struct ksm_stable_node *node)
{
	VM_BUG_ON(node->rmap_hlist_len < 0);
	node->rmap_hlist_len++;
	item->head = node;
	item->shard = node->shard;
	item->state = ITEM_STABLE;
	list_add(&item->hlist, &node->hlist);
	if (item->hlist.next != &node->hlist)
		atomic_fetch_add(&k->pages_sharing, 1);
	else
		atomic_fetch_add(&k->pages_shared, 1);
	atomic_fetch_add(&item->mm->ksm_merging_pages, 1);
}

/* ---- the unstable tree ---- */

/*
 * unstable_tree_search_insert - find a page identical to @page in the
 * unstable tree, or insert @item there.
 * Return: the tree's item, its page referenced in *@tree_pagep; or NULL.
 * Context: @shard locked.
 */
static struct ksm_rmap_item *unstable_tree_search_insert(struct ksm *k, struct ksm_shard *shard,
							 struct ksm_rmap_item *item,
							 struct umm_page *page,
							 struct umm_page **tree_pagep)
{
	struct rb_node **link = &shard->unstable.node, *parent = NULL;
	uint64_t pfn = page_to_pfn(k->u, page), prefix = page_prefix(k->u, page);
	struct umm_cpu *cpu = this_cpu();

	while (*link) {
		struct ksm_rmap_item *tree_item = rb_entry(*link, struct ksm_rmap_item, node);
		struct umm_page *tree_page;
		uint64_t tree_pfn;
		int ret = key_cmp(item->domain, item->nid, tree_item->domain, tree_item->nid);

		parent = *link;
		if (!ret && tree_item->prefix != prefix)
			ret = prefix < tree_item->prefix ? -1 : 1;
		if (ret) {
			link = ret < 0 ? &parent->left : &parent->right;
			continue;
		}
		cpu_access_begin(cpu, tree_item->mm);
		tree_pfn = ksm_peek_pfn(k, tree_item);
		/* none there: give up; the same page (a fork's other mapping): no merge */
		if (!tree_pfn || tree_pfn == pfn) {
			cpu_access_end(cpu);
			return NULL;
		}
		ret = memcmp_pages(k->u, page, pfn_to_page(k->u, tree_pfn));
		cpu_access_end(cpu);
		if (ret) {
			link = ret < 0 ? &parent->left : &parent->right;
			continue;
		}
		/*
		 * A twin: take it as a merge needs it - the frame just compared,
		 * or none.  No second compare: the merge compares again once
		 * both pages are write-protected.
		 */
		tree_page = get_mergeable_page(tree_item);
		if (!tree_page)
			return NULL;
		if (page_to_pfn(k->u, tree_page) != tree_pfn) {
			put_page(k->u, tree_page);
			return NULL;
		}
		*tree_pagep = tree_page;
		return tree_item;
	}
	item->state = ITEM_UNSTABLE;
	item->shard = shard;
	item->seqnr = k->scan.seqnr;
	item->prefix = prefix;
	rb_link_node(&item->node, parent, link);
	rb_insert_color(&item->node, &shard->unstable);
	atomic_fetch_add(&k->pages_unshared, 1);
	return NULL;
}

/* ---- merging one page ---- */

/*
 * cmp_and_merge_page - the heart of the scan, for one page: merge into the
 * stable tree, or (unchanged since the last scan) with an unstable twin.
 * Context: @shard locked; @page referenced.
 */
static void cmp_and_merge_page(struct ksm *k, struct ksm_shard *shard, struct umm_page *page,
			       struct ksm_rmap_item *item, uint64_t checksum)
{
	struct ksm_stable_node *node = page_stable_node(page);
	struct ksm_rmap_item *tree_item;
	struct umm_page *kpage, *tree_page;
	struct anon_vma *orig = NULL;
	const uint64_t *hint = &checksum;
	bool hinted;
	int err;

	if (node && item->state == ITEM_STABLE && item->head == node)
		return;		/* merged already */

again:
	kpage = stable_tree_search(k, shard, page, item->domain, item->nid, hint, &hinted);
	if (kpage == page && item->state == ITEM_STABLE && item->head == node) {
		put_page(k->u, kpage);
		return;
	}
	remove_rmap_item_from_tree(k, item);
	if (kpage) {
		err = try_to_merge_with_ksm_page(k, item, page, kpage, NULL);
		if (err == -ESTALE && hinted) {
			/* the checksum's hint was wrong (or stale): search by content */
			put_page(k->u, kpage);
			hint = NULL;
			goto again;
		}
		if (!err) {
			lock_page(kpage);
			node = page_stable_node(kpage);
			if (node)
				stable_tree_append(k, item, node);
			else
				break_cow(item);
			unlock_page(kpage);
		}
		put_page(k->u, kpage);
		return;
	}

	/* a page that changed since the last scan is not worth a place */
	if (item->oldchecksum != checksum) {
		item->oldchecksum = checksum;
		return;
	}

	if (k->p.use_zero_pages && checksum == k->zero_checksum) {
		struct umm_mm *mm = item->mm;
		struct vm_area_struct *vma;

		pthread_rwlock_rdlock(&mm->mmap_lock);
		vma = find_mergeable_vma(mm, item->address);
		err = vma ? try_to_merge_one_page(vma, page, pfn_to_page(k->u, ZERO_PFN),
						  item->address, NULL) : -EFAULT;
		pthread_rwlock_unlock(&mm->mmap_lock);
		/* not really empty after all: go on */
		if (!err)
			return;
	}

	tree_item = unstable_tree_search_insert(k, shard, item, page, &tree_page);
	if (!tree_item)
		return;
	kpage = try_to_merge_two_pages(k, item, page, tree_item, tree_page, &orig);
	put_page(k->u, tree_page);
	if (!kpage)
		return;
	lock_page(kpage);
	node = stable_tree_insert(k, shard, kpage, item->domain, item->nid, checksum);
	if (node) {
		node->anon_vma = orig;
		node->index = kpage->index;
		stable_tree_append(k, tree_item, node);
		stable_tree_append(k, item, node);
	}
	unlock_page(kpage);
	if (!node) {
		if (orig)
			put_anon_vma(orig);
		/* two mappings of a KSM page outside the tree: undo both */
		break_cow(tree_item);
		break_cow(item);
	}
}

/*
 * ksm_checksum_chunk - the first phase for KSM_CHUNK gathered items: find
 * each one's page and checksum it, which decides the shard.  A chunk holds
 * one mm's mmap_lock across its run of that mm's items while it finds
 * their pages, and reads PTEs without their lock: the scanner threads would
 * otherwise bounce those locks' cache lines between them for every page.
 * The hashing is done after, without locks.  No page reference is
 * taken: a reference held outside the shard lock could make another
 * thread's write_protect_page() of the same page fail, and the outcome
 * depend on timing.  (Reading a frame that is freed meanwhile only gives a
 * checksum that will not match anything.)
 */
static void ksm_checksum_chunk(struct ksm *k, struct ksm_batch *b, unsigned long chunk)
{
	unsigned long first = chunk * KSM_CHUNK, end = min_t(unsigned long, first + KSM_CHUNK, b->nr);
	struct vm_area_struct *vma = NULL;
	struct umm_mm *locked = NULL;
	struct umm *u = k->u;

	for (unsigned long i = first; i < end; i++) {
		struct ksm_scan_entry *e = &b->e[i];
		struct umm_mm *mm = e->item->mm;
		uint64_t addr = e->item->address;

		if (mm != locked) {
			if (locked)
				pthread_rwlock_unlock(&locked->mmap_lock);
			pthread_rwlock_rdlock(&mm->mmap_lock);
			locked = mm;
			vma = NULL;
		}
		if (!vma || addr < vma->vm_start || addr >= vma->vm_end)
			vma = find_mergeable_vma(mm, addr);
		e->pfn = vma ? ksm_follow_pfn(mm, addr, false) : 0;
		e->domain = mm->ksm_domain;
		e->shard = 0;
	}
	if (locked)
		pthread_rwlock_unlock(&locked->mmap_lock);
	for (unsigned long i = first; i < end; i++) {
		struct ksm_scan_entry *e = &b->e[i];
		struct umm_page *page;

		if (!e->pfn)
			continue;
		/*
		 * Frames lie anywhere in the arena, and the hardware prefetcher
		 * stops at each 4 KiB boundary: start the next page's first
		 * lines on their way while this one is hashed.
		 */
		for (unsigned long j = i + 1; j < end; j++) {
			if (!b->e[j].pfn)
				continue;
			for (unsigned int off = 0; off < KSM_PREFETCH_BYTES; off += 64)
				__builtin_prefetch((char *)page_address(u, pfn_to_page(u, b->e[j].pfn)) + off);
			break;
		}
		page = pfn_to_page(u, e->pfn);
		e->nid = page_key_nid(k, page);
		e->checksum = calc_checksum(u, page);
		/*
		 * The shard of the contents.  A KSM page's stable node lives
		 * there too (it was inserted by its checksum and its contents
		 * cannot change); ksm_merge_entry() takes the node's own shard
		 * should a race have put it elsewhere.  The node itself is not
		 * looked at: the previous batch's merges may be freeing it.
		 */
		e->shard = (unsigned int)(shard_of(k, e->checksum) - k->shards);
	}
}

static unsigned int skip_age(uint8_t age)
{
	if (age <= 3)
		return 1;
	if (age <= 5)
		return 2;
	if (age <= 8)
		return 4;
	return 8;
}

/*
 * should_skip_rmap_item - smart scan: a page that did not merge for a few
 * scans is looked at only every 2nd, 4th, 8th scan.  umm never skips a page
 * mapped more than once (a fork's): another mapping's item may turn it into
 * a KSM page in place at any time, and this mapping should join the node at
 * its next visit.  Context: @item's shard (if any) locked; merge phase.
 */
static bool should_skip_rmap_item(struct ksm *k, struct umm_page *page, struct ksm_rmap_item *item)
{
	uint8_t age;

	if (!k->p.smart_scan || PageKsm(page) || page_mapcount(page) > 1)
		return false;
	age = item->age;
	if (age != UINT8_MAX)
		item->age++;
	if (age < 3)
		return false;
	if (!item->remaining_skips) {
		item->remaining_skips = (uint8_t)skip_age(age);
		return false;
	}
	atomic_fetch_add_explicit(&k->pages_skipped, 1, memory_order_relaxed);
	item->remaining_skips--;
	remove_rmap_item_from_tree(k, item);
	return true;
}

/*
 * ksm_merge_entry - the second phase for one item: under its shard's lock,
 * take the page again and merge it (cmp_and_merge_page).
 */
static void ksm_merge_entry(struct ksm *k, struct ksm_scan_entry *e)
{
	struct ksm_rmap_item *item = e->item;
	struct ksm_shard *shard = &k->shards[e->shard], *old;
	struct umm_page *page;

	e->skipped = false;
	if (!e->pfn) {
		atomic_fetch_add_explicit(&k->pages_scanned, 1, memory_order_relaxed);
		return;
	}
	/*
	 * A KSM page (a fork's, or one merged since it was checksummed) is
	 * worked on under the lock of the shard its stable node lives in,
	 * which need not be the one its checksum chose.
	 */
	page = get_mergeable_page(item);
	if (page && page_stable_node(page))
		shard = page_stable_node(page)->shard;
	/* out of another shard's tree first: never two shard locks at once */
	old = item->shard;
	if (old && old != shard)
		remove_rmap_item_locked(k, item);
	pthread_mutex_lock(&shard->lock);
	if (item->shard && (item->domain != e->domain || item->nid != e->nid))
		remove_rmap_item_from_tree(k, item);
	if (!item->shard) {
		item->domain = e->domain;
		item->nid = e->nid;
	}
	/*
	 * Smart scan decides here, not when the batch is gathered: whether the
	 * page is a KSM page or shared with a fork's mapping may have changed
	 * with the merges before it - in its shard, in scan order, as one
	 * thread would see it.
	 */
	if (page && should_skip_rmap_item(k, page, item)) {
		e->skipped = true;
		put_page(k->u, page);
		pthread_mutex_unlock(&shard->lock);
		return;
	}
	atomic_fetch_add_explicit(&k->pages_scanned, 1, memory_order_relaxed);
	if (page) {
		cmp_and_merge_page(k, shard, page, item, e->checksum);
		put_page(k->u, page);
	}
	pthread_mutex_unlock(&shard->lock);
}

static void ksm_merge_shard(struct ksm *k, struct ksm_batch *b, unsigned long unit)
{
	unsigned int shard = b->busy[unit];

	for (unsigned int i = b->start[shard]; i < b->start[shard + 1]; i++)
		ksm_merge_entry(k, &b->e[b->order[i]]);
}

/*
 * Does an item of @b leave a stable node of another shard than the one it
 * merges in?  Its node then loses a mapping at its place in scan order,
 * which the node's shard must see at that very place (a full node may take
 * a page again after it, not before): such a batch merges in scan order on
 * one thread.  (Unstable-tree places need no care: an item's place there
 * is from an earlier scan, whose tree is gone.)
 */
static bool ksm_batch_leaves_shard(struct ksm *k, struct ksm_batch *b)
{
	for (unsigned long i = 0; i < b->nr; i++) {
		struct ksm_rmap_item *item = b->e[i].item;
		struct ksm_shard *shard = atomic_load_explicit(&item->shard, memory_order_relaxed);

		if (b->e[i].pfn && item->state == ITEM_STABLE && shard != &k->shards[b->e[i].shard])
			return true;
	}
	return false;
}

/* ---- the scan: slots, cursor, passes ---- */

static struct ksm_rmap_item *get_next_rmap_item(struct ksm *k, struct ksm_mm_slot *slot,
						struct ksm_rmap_item **list, uint64_t addr)
{
	struct ksm_rmap_item *item;

	while (*list) {
		item = *list;
		if (item->address == addr)
			return item;
		if (item->address > addr)
			break;
		*list = item->rmap_list;
		remove_rmap_item_from_tree(k, item);
		free_rmap_item(k, item);
	}
	item = alloc_rmap_item(k);
	if (!item)
		return NULL;
	INIT_LIST_HEAD(&item->hlist);
	item->mm = slot->mm;
	item->address = addr;
	item->rmap_list = *list;
	*list = item;
	atomic_fetch_add(&k->rmap_items, 1);
	atomic_fetch_add(&slot->mm->ksm_rmap_items, 1);
	return item;
}

/*
 * prune_stable_node_chains - every stable_node_chains_prune_millisecs, at
 * the start of a full scan, drop the stale dups of every chain and collapse
 * chains left with one dup.  (Linux prunes a chain when a search passes
 * through it; with sharded trees a chain is only ever searched by pages of
 * its own content, so the scan visits them all instead.)
 * Context: gather phase.
 */
static void prune_stable_node_chains(struct ksm *k)
{
	uint64_t now = now_ms();

	if (now - k->chains_pruned < k->p.stable_node_chains_prune_millisecs)
		return;
	k->chains_pruned = now;
	for (int i = 0; i < KSM_NR_SHARDS; i++) {
		struct rb_node *n, *next;

		for (n = rb_first(&k->shards[i].stable); n; n = next) {
			struct ksm_stable_node *node = rb_entry(n, struct ksm_stable_node, node), *dup;
			struct umm_page *page;

			next = rb_next(n);
			if (!is_stable_node_chain(node))
				continue;
			node->chain_prune_time = 0;	/* due now */
			page = chain_pick(k, &node, &dup);
			if (page)
				put_page(k->u, page);
		}
	}
}

static void advisor_start_scan(struct ksm *k);
static void advisor_stop_scan(struct ksm *k);

/*
 * Unlink and free @slot.  Context: ksm->mmlist_lock held, dropped here; if
 * @mmap_locked, mmap_lock held for read too, dropped after the flags are
 * cleared (a racing MADV_MERGEABLE then sees the mm unregistered).
 */
static void drop_mm_slot(struct ksm *k, struct ksm_mm_slot *slot, bool mmap_locked)
{
	struct umm_mm *mm = slot->mm;

	list_del_init(&slot->mm_node);
	mm->ksm_slot = NULL;
	atomic_fetch_and(&mm->ksm_flags, ~(MMF_VM_MERGEABLE | MMF_VM_MERGE_ANY));
	spin_unlock(&k->mmlist_lock);
	if (mmap_locked)
		pthread_rwlock_unlock(&mm->mmap_lock);
	free(slot);
	mmdrop(mm);
}

/*
 * scan_get_next_rmap_items - move the cursor over the next anonymous pages
 * of mergeable VMAs and put their rmap_items (created if new) in @b, up to
 * @cap.  Items for addresses the cursor passed without finding a page are
 * freed, and slots of exited mms (or with no mergeable VMA left) reaped.
 * A run of pages in one mm is gathered under one mmap_lock, one page table
 * at a time.
 * Return: true if it stopped before @cap: at the end of a full scan
 * (scan.pass_done set), when an exiting mm's items wait in a batch (reaped
 * after it), or for want of memory.
 * Context: the gather phase (thread_mutex held, no merge in flight).
 */
static bool scan_get_next_rmap_items(struct ksm *k, struct ksm_batch *b, unsigned long cap)
{
	struct ksm_mm_slot *slot;
	struct umm_mm *mm;
	bool empty;

	spin_lock(&k->mmlist_lock);
	empty = list_empty(&k->mm_head.mm_node);
	spin_unlock(&k->mmlist_lock);
	if (empty)
		return true;
	slot = k->scan.mm_slot;
	if (slot == &k->mm_head) {
		advisor_start_scan(k);
		prune_stable_node_chains(k);
		/* a new full scan: a new unstable tree */
		for (int i = 0; i < KSM_NR_SHARDS; i++)
			k->shards[i].unstable = RB_ROOT;
		spin_lock(&k->mmlist_lock);
		slot = list_entry(slot->mm_node.next, struct ksm_mm_slot, mm_node);
		k->scan.mm_slot = slot;
		spin_unlock(&k->mmlist_lock);
		if (slot == &k->mm_head)
			return true;
next_mm:
		k->scan.address = 0;
		k->scan.rmap_list = &slot->rmap_list;
	}

	mm = slot->mm;
	pthread_rwlock_rdlock(&mm->mmap_lock);
	if (ksm_test_exit(mm))
		goto exiting;
	for (struct vm_area_struct *vma = find_vma(mm, k->scan.address); vma;
	     vma = find_vma(mm, vma->vm_end)) {
		if (!(vma->vm_flags & VM_MERGEABLE))
			continue;
		if (k->scan.address < vma->vm_start)
			k->scan.address = vma->vm_start;
		/* a fault may be giving it its anon_vma right now (mmap_lock read) */
		if (!atomic_load_explicit((_Atomic(struct anon_vma *) *)&vma->anon_vma,
					  memory_order_acquire))
			k->scan.address = vma->vm_end;
		while (k->scan.address < vma->vm_end) {
			uint64_t addr = k->scan.address;
			uint64_t end = min_t(uint64_t, (addr + PMD_SIZE) & PMD_MASK, vma->vm_end);
			struct pt_page *pt;
			_Atomic pte_t *ptep = pte_offset(mm, addr, false, &pt);

			if (!ptep) {	/* no page table here: skip to the next one */
				k->scan.address = end;
				continue;
			}
			/* the rest of this table inside the VMA */
			for (; addr < end; addr += PAGE_SIZE, ptep++) {
				struct ksm_rmap_item *item;

				k->scan.address = addr + PAGE_SIZE;
				if (!ksm_pte_pfn(k->u, atomic_load_explicit(ptep, memory_order_acquire)))
					continue;
				item = get_next_rmap_item(k, slot, k->scan.rmap_list, addr);
				if (!item) {
					k->scan.address = addr;	/* -ENOMEM: retry later */
					k->scan.nomem = true;
					pthread_rwlock_unlock(&mm->mmap_lock);
					return true;
				}
				k->scan.rmap_list = &item->rmap_list;
				slot->batch_gen = k->scan.batch_gen;
				b->e[b->nr++].item = item;
				if (b->nr == cap) {
					pthread_rwlock_unlock(&mm->mmap_lock);
					return false;
				}
			}
		}
	}
	if (ksm_test_exit(mm)) {
exiting:
		if (slot->batch_gen > k->scan.merged_gen) {
			/* its items wait in a batch: reap after it */
			pthread_rwlock_unlock(&mm->mmap_lock);
			return true;
		}
		k->scan.address = 0;
		k->scan.rmap_list = &slot->rmap_list;
	}
	/* no mergeable VMA holds these addresses any more */
	remove_trailing_rmap_items(k, k->scan.rmap_list);

	spin_lock(&k->mmlist_lock);
	k->scan.mm_slot = list_entry(slot->mm_node.next, struct ksm_mm_slot, mm_node);
	/*
	 * No mergeable VMA at all: reap the slot as ksm_exit would, unless
	 * merge-any wants future VMAs (umm keeps those slots; Linux drops
	 * them and merge-any with them).
	 */
	if (k->scan.address == 0 &&
	    (ksm_test_exit(mm) || !(atomic_load(&mm->ksm_flags) & MMF_VM_MERGE_ANY))) {
		drop_mm_slot(k, slot, true);
	} else {
		pthread_rwlock_unlock(&mm->mmap_lock);
		spin_unlock(&k->mmlist_lock);
	}
	slot = k->scan.mm_slot;
	if (slot != &k->mm_head)
		goto next_mm;
	k->scan.pass_done = true;
	return true;
}

/* ---- scanner threads ---- */

static void ksm_process_batch(struct ksm *k, struct ksm_batch *b)
{
	unsigned long i;

	while ((i = atomic_fetch_add(&b->next, 1)) < b->units)
		b->fn(k, b, i);
}

static void *ksm_helper_fn(void *arg)
{
	struct ksm *k = arg;
	unsigned long gen = 0;

	pthread_mutex_lock(&k->pool_lock);
	for (;;) {
		while (!k->pool_stop && k->pool_gen == gen)
			pthread_cond_wait(&k->pool_go, &k->pool_lock);
		if (k->pool_stop)
			break;
		gen = k->pool_gen;
		pthread_mutex_unlock(&k->pool_lock);
		uint64_t t0 = now_ns(CLOCK_THREAD_CPUTIME_ID);
		ksm_process_batch(k, k->pool_batch);
		atomic_fetch_add(&k->scan_cpu_ns, now_ns(CLOCK_THREAD_CPUTIME_ID) - t0);
		pthread_mutex_lock(&k->pool_lock);
		if (--k->pool_busy == 0)
			pthread_cond_broadcast(&k->pool_done);
	}
	pthread_mutex_unlock(&k->pool_lock);
	return NULL;
}

static void ksm_pool_stop(struct ksm *k)
{
	pthread_mutex_lock(&k->pool_lock);
	k->pool_stop = true;
	pthread_cond_broadcast(&k->pool_go);
	pthread_mutex_unlock(&k->pool_lock);
	for (unsigned int i = 0; i < k->nr_helpers; i++)
		pthread_join(k->helpers[i], NULL);
	k->nr_helpers = 0;
	k->pool_stop = false;
}

/* Have nr_threads - 1 helpers.  Context: thread_mutex held. */
static void ksm_pool_resize(struct ksm *k)
{
	unsigned int want = k->p.nr_threads - 1;

	if (k->nr_helpers == want)
		return;
	ksm_pool_stop(k);
	for (unsigned int i = 0; i < want; i++) {
		if (pthread_create(&k->helpers[i], NULL, ksm_helper_fn, k))
			break;
		k->nr_helpers++;
	}
}

/* Run b->fn over b->units with every scanner thread.  Context: thread_mutex held. */
static void ksm_run_phase(struct ksm *k, struct ksm_batch *b,
			  void (*fn)(struct ksm *, struct ksm_batch *, unsigned long),
			  unsigned long units)
{
	b->fn = fn;
	b->units = units;
	atomic_store(&b->next, 0);
	if (!k->nr_helpers || units < 2) {
		ksm_process_batch(k, b);
		return;
	}
	pthread_mutex_lock(&k->pool_lock);
	k->pool_batch = b;
	k->pool_busy = k->nr_helpers;
	k->pool_gen++;
	pthread_cond_broadcast(&k->pool_go);
	pthread_mutex_unlock(&k->pool_lock);
	ksm_process_batch(k, b);
	pthread_mutex_lock(&k->pool_lock);
	while (k->pool_busy)
		pthread_cond_wait(&k->pool_done, &k->pool_lock);
	pthread_mutex_unlock(&k->pool_lock);
}

/*
 * ksm_merge_unit - a unit of the merge phase: a shard's entries in scan
 * order, all entries in scan order when the batch must merge serially, or
 * else a checksum chunk of the batch ahead.
 */
static void ksm_merge_unit(struct ksm *k, struct ksm_batch *b, unsigned long unit)
{
	if (unit >= b->merge_units)
		ksm_checksum_chunk(k, b->ahead, unit - b->merge_units);
	else if (!b->nr_busy)
		for (unsigned long i = 0; i < b->nr; i++)
			ksm_merge_entry(k, &b->e[i]);
	else
		ksm_merge_shard(k, b, unit);
}

/*
 * Sort a checksummed batch's entries by shard, scan order kept within
 * each, and choose its merge units: one per shard with work, or a single
 * one in scan order when an item leaves another shard's node.
 */
static void ksm_plan_merges(struct ksm *k, struct ksm_batch *b)
{
	unsigned int count[KSM_NR_SHARDS] = { 0 };

	b->nr_busy = 0;
	b->merge_units = 1;
	if (b->nr < 2 || ksm_batch_leaves_shard(k, b))
		return;
	for (unsigned long i = 0; i < b->nr; i++)
		count[b->e[i].shard]++;
	b->start[0] = 0;
	for (unsigned int s = 0; s < KSM_NR_SHARDS; s++) {
		b->start[s + 1] = b->start[s] + count[s];
		count[s] = b->start[s];
	}
	for (unsigned long i = 0; i < b->nr; i++)
		b->order[count[b->e[i].shard]++] = (unsigned int)i;
	/* one unit per shard with work: identical pages (one shard) run inline */
	for (unsigned int s = 0; s < KSM_NR_SHARDS; s++)
		if (b->start[s + 1] > b->start[s])
			b->busy[b->nr_busy++] = s;
	b->merge_units = b->nr_busy;
}

/* Gather up to @cap items into @b.  Return: whether it found any. */
static bool ksm_gather(struct ksm *k, struct ksm_batch *b, unsigned long cap)
{
	b->nr = 0;
	b->gen = ++k->scan.batch_gen;
	b->stopped = scan_get_next_rmap_items(k, b, cap);
	return b->nr;
}

/* A full scan's last batch has merged. */
static void ksm_end_pass(struct ksm *k)
{
	k->scan.pass_done = false;
	advisor_stop_scan(k);
	k->scan.seqnr++;
}

static bool ksm_batch_alloc(struct ksm_batch *b, unsigned long cap)
{
	b->e = malloc(cap * sizeof(*b->e));
	b->order = malloc(cap * sizeof(*b->order));
	return b->e && b->order;
}

static void ksm_batch_free(struct ksm_batch *b)
{
	free(b->e);
	free(b->order);
	b->e = NULL;
	b->order = NULL;
}

/*
 * ksm_do_scan - scan up to @nr pages, stopping early at the end of a full
 * scan.  With helpers, pages are gathered in batches of
 * KSM_BATCH_PER_THREAD per thread, and the next batch is gathered (by
 * this thread) before a batch merges, to be checksummed beside its
 * merges.  A gather never looks past the end of a full scan while a
 * batch waits: the next full scan begins with a new unstable tree.
 * Context: thread_mutex held.
 */
static void ksm_do_scan(struct ksm *k, unsigned long nr)
{
	unsigned long cap = k->nr_helpers ? KSM_BATCH_PER_THREAD * (k->nr_helpers + 1) : 1;
	struct ksm_scan_entry one;
	unsigned int one_order;
	struct ksm_batch bufs[2] = { 0 };
	struct ksm_batch *cur = &bufs[0], *next = &bufs[1];
	uint64_t cpu0 = now_ns(CLOCK_THREAD_CPUTIME_ID);
	bool ready = false;	/* cur is gathered and checksummed */

	if (cap > 1 && !(ksm_batch_alloc(&bufs[0], cap) && ksm_batch_alloc(&bufs[1], cap))) {
		ksm_batch_free(&bufs[0]);
		ksm_batch_free(&bufs[1]);
		cap = 1;
	}
	if (cap == 1) {
		cur->e = &one;
		cur->order = &one_order;
	}
	while (nr) {
		if (cap == 1) {		/* one thread: Linux's page at a time */
			if (!ksm_gather(k, cur, 1) && !k->scan.pass_done)
				break;
			if (cur->nr) {
				ksm_checksum_chunk(k, cur, 0);
				ksm_merge_entry(k, &cur->e[0]);
				k->scan.merged_gen = cur->gen;
				nr -= !cur->e[0].skipped;
			}
			if (k->scan.pass_done) {
				ksm_end_pass(k);
				break;
			}
			continue;
		}
		if (!ready) {
			if (!ksm_gather(k, cur, min_t(unsigned long, cap, nr)) && !k->scan.pass_done)
				break;
			if (cur->nr)
				ksm_run_phase(k, cur, ksm_checksum_chunk,
					      (cur->nr + KSM_CHUNK - 1) / KSM_CHUNK);
		}
		cur->ahead = NULL;
		if (cur->nr && !cur->stopped && nr > cur->nr &&
		    ksm_gather(k, next, min_t(unsigned long, cap, nr - cur->nr)))
			cur->ahead = next;
		ksm_plan_merges(k, cur);
		ksm_run_phase(k, cur, ksm_merge_unit, (cur->nr ? cur->merge_units : 0) +
			      (cur->ahead ? (next->nr + KSM_CHUNK - 1) / KSM_CHUNK : 0));
		k->scan.merged_gen = cur->gen;
		/* skipped pages do not count against pages_to_scan, as on Linux */
		for (unsigned long i = 0; i < cur->nr; i++)
			nr -= !cur->e[i].skipped;
		if (k->scan.pass_done && !cur->ahead) {
			ksm_end_pass(k);
			break;
		}
		ready = cur->ahead;
		if (ready) {
			struct ksm_batch *t = cur;

			cur = next;
			next = t;
		}
	}
	if (cap > 1) {
		ksm_batch_free(&bufs[0]);
		ksm_batch_free(&bufs[1]);
	}
	atomic_fetch_add(&k->scan_cpu_ns, now_ns(CLOCK_THREAD_CPUTIME_ID) - cpu0);
}

/* ---- the advisor (Linux 6.9's scan-time advisor) ---- */

static void advisor_start_scan(struct ksm *k)
{
	if (k->p.advisor_mode != UMM_KSM_ADVISOR_SCAN_TIME)
		return;
	k->adv_start_ns = now_ns(CLOCK_MONOTONIC);
	k->adv_cpu_ns = atomic_load(&k->scan_cpu_ns);
}

/*
 * advisor_stop_scan - after a full scan, set pages_to_scan so that the next
 * one takes advisor_target_scan_time, smoothed against the previous scan
 * time, and within the CPU and page bounds.
 */
static void advisor_stop_scan(struct ksm *k)
{
	uint64_t scan_ms, cpu_ms, cpu_percent, last, pages, per_cpu;

	if (k->p.advisor_mode != UMM_KSM_ADVISOR_SCAN_TIME || !k->adv_start_ns)
		return;
	scan_ms = (now_ns(CLOCK_MONOTONIC) - k->adv_start_ns) / 1000000ULL;
	scan_ms = scan_ms ? scan_ms : 1;
	cpu_ms = (atomic_load(&k->scan_cpu_ns) - k->adv_cpu_ns) / 1000000ULL;
	cpu_percent = cpu_ms * 100 / scan_ms;
	cpu_percent = cpu_percent ? cpu_percent : 1;
	last = k->adv_prev_scan_time ? k->adv_prev_scan_time : scan_ms;
	/* exponentially weighted scan time: 30% the last one */
	scan_ms = (scan_ms * 7 + last * 3) / 10;
	k->adv_prev_scan_time = scan_ms;
	pages = k->p.pages_to_scan * scan_ms / (k->p.advisor_target_scan_time * 1000);
	pages = pages ? pages : 1;
	/* pages one CPU-percent buys, to keep within the CPU bounds */
	per_cpu = k->p.pages_to_scan / cpu_percent;
	pages = min_t(uint64_t, pages, per_cpu * k->p.advisor_max_cpu);
	pages = max_t(uint64_t, pages, per_cpu * k->p.advisor_min_cpu);
	pages = min_t(uint64_t, pages, k->p.advisor_max_pages_to_scan);
	pages = max_t(uint64_t, pages, k->p.advisor_min_pages_to_scan);
	k->p.pages_to_scan = pages;
}

/* ---- ksmd ---- */

/*
 * thread_mutex for a caller other than ksmd (the knobs, umm_ksm_scan(),
 * validate).  glibc's mutex is not fair: ksmd at sleep_millisecs 0 takes it
 * again the moment it lets go, and a waiter could starve for as long as ksmd
 * runs.  So waiters announce themselves and ksmd stands back for them (as
 * the kernel's mutex hands off to a starving waiter).
 */
static void ksm_thread_lock(struct ksm *k)
{
	atomic_fetch_add(&k->thread_mutex_waiters, 1);
	pthread_mutex_lock(&k->thread_mutex);
	atomic_fetch_sub(&k->thread_mutex_waiters, 1);
}

static void *ksmd_fn(void *arg)
{
	struct ksm *k = arg;

	for (;;) {
		unsigned int sleep_ms;
		struct timespec ts;

		while (atomic_load(&k->thread_mutex_waiters))
			usleep(50);
		pthread_mutex_lock(&k->thread_mutex);
		if (k->run == 1)
			ksm_do_scan(k, k->p.pages_to_scan);
		sleep_ms = k->p.sleep_millisecs;
		pthread_mutex_unlock(&k->thread_mutex);

		pthread_mutex_lock(&k->ksmd_lock);
		if (k->ksmd_stop) {
			pthread_mutex_unlock(&k->ksmd_lock);
			break;
		}
		if (atomic_load(&k->run) != 1) {
			pthread_cond_wait(&k->ksmd_wait, &k->ksmd_lock);
		} else if (sleep_ms) {
			clock_gettime(CLOCK_MONOTONIC, &ts);
			ts.tv_sec += sleep_ms / 1000;
			ts.tv_nsec += (long)(sleep_ms % 1000) * 1000000L;
			if (ts.tv_nsec >= 1000000000L) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000L;
			}
			pthread_cond_timedwait(&k->ksmd_wait, &k->ksmd_lock, &ts);
		}
		pthread_mutex_unlock(&k->ksmd_lock);
		if (!sleep_ms)
			sched_yield();	/* let umm_ksm_scan() and the knobs have thread_mutex */
	}
	return NULL;
}

static void ksmd_wake(struct ksm *k)
{
	pthread_mutex_lock(&k->ksmd_lock);
	pthread_cond_broadcast(&k->ksmd_wait);
	pthread_mutex_unlock(&k->ksmd_lock);
}

/* ---- registration ---- */

/*
 * __ksm_enter - register @mm with ksmd: its slot goes just behind the
 * cursor, so that it is scanned last in this pass (letting a fresh area
 * settle), or at the end of the list while unmerging.
 * Return: 0 or -ENOMEM.  Context: mmap_lock held for write (or the mm is new).
 */
static int __ksm_enter(struct umm_mm *mm)
{
	struct ksm *k = mm->u->ksm;
	struct ksm_mm_slot *slot = calloc(1, sizeof(*slot));

	if (!slot)
		return -ENOMEM;
	slot->mm = mm;
	mmgrab(mm);
	spin_lock(&k->mmlist_lock);
	if (k->run == 2)
		list_add_tail(&slot->mm_node, &k->mm_head.mm_node);
	else
		list_add_tail(&slot->mm_node, &k->scan.mm_slot->mm_node);
	mm->ksm_slot = slot;
	atomic_fetch_or(&mm->ksm_flags, MMF_VM_MERGEABLE);
	spin_unlock(&k->mmlist_lock);
	return 0;
}

/*
 * ksm_exit - @mm is being torn down (mm_users is 0): a slot without items
 * is freed now; otherwise it moves behind the cursor for the scanner to
 * reap, and taking mmap_lock for write waits out any KSM path still in it.
 */
void ksm_exit(struct umm_mm *mm)
{
	struct ksm *k = mm->u->ksm;
	struct ksm_mm_slot *slot;
	bool easy_to_free = false;

	if (!(atomic_load(&mm->ksm_flags) & MMF_VM_MERGEABLE))
		return;
	spin_lock(&k->mmlist_lock);
	slot = mm->ksm_slot;
	if (slot && k->scan.mm_slot != slot) {
		if (!slot->rmap_list) {
			list_del_init(&slot->mm_node);
			mm->ksm_slot = NULL;
			easy_to_free = true;
		} else {
			list_del_init(&slot->mm_node);
			list_add(&slot->mm_node, &k->scan.mm_slot->mm_node);
		}
	}
	spin_unlock(&k->mmlist_lock);
	if (easy_to_free) {
		free(slot);
		atomic_fetch_and(&mm->ksm_flags, ~(MMF_VM_MERGEABLE | MMF_VM_MERGE_ANY));
		mmdrop(mm);
	} else if (slot) {
		pthread_rwlock_wrlock(&mm->mmap_lock);
		pthread_rwlock_unlock(&mm->mmap_lock);
	}
}

/* fork: the child inherits merge-any, the domain and the registration. */
int ksm_fork(struct umm_mm *mm, struct umm_mm *oldmm)
{
	unsigned long f = atomic_load(&oldmm->ksm_flags);

	mm->ksm_domain = oldmm->ksm_domain;
	if (f & MMF_VM_MERGE_ANY)
		atomic_fetch_or(&mm->ksm_flags, MMF_VM_MERGE_ANY);
	if (f & MMF_VM_MERGEABLE)
		return __ksm_enter(mm);
	return 0;
}

/* Can KSM merge in a VMA with these flags?  (vma_ksm_compatible) */
static bool vma_ksm_compatible(unsigned long vm_flags)
{
	return !(vm_flags & (VM_SHARED | VM_MAYSHARE));
}

/* The flags a new VMA gets: VM_MERGEABLE too under merge-any. */
unsigned long ksm_vma_flags(struct umm_mm *mm, bool shared, unsigned long vm_flags)
{
	if (!shared && vma_ksm_compatible(vm_flags) &&
	    (atomic_load(&mm->ksm_flags) & MMF_VM_MERGE_ANY))
		vm_flags |= VM_MERGEABLE;
	return vm_flags;
}

/*
 * ksm_madvise - the KSM half of MADV_MERGEABLE (register the mm) and
 * MADV_UNMERGEABLE (unmerge every KSM page of the range's mergeable VMAs);
 * mmap.c then sets or clears VM_MERGEABLE.
 * Return: 0 or -ENOMEM.  Context: mmap_lock held for write.
 */
int ksm_madvise(struct umm_mm *mm, uint64_t start, uint64_t end, int advice)
{
	if (advice == UMM_MADV_MERGEABLE) {
		if (!(atomic_load(&mm->ksm_flags) & MMF_VM_MERGEABLE))
			return __ksm_enter(mm);
		return 0;
	}
	for (struct vm_area_struct *vma = find_vma(mm, start); vma && vma->vm_start < end;
	     vma = find_vma(mm, vma->vm_end)) {
		int err;

		if (!(vma->vm_flags & VM_MERGEABLE) || !vma->anon_vma)
			continue;
		err = unmerge_ksm_pages(vma, max_t(uint64_t, start, vma->vm_start),
					min_t(uint64_t, end, vma->vm_end));
		if (err)
			return err;
	}
	return 0;
}

/* Set or clear VM_MERGEABLE on a VMA in place (rmap walkers read vm_flags). */
static void vma_set_mergeable(struct vm_area_struct *vma, bool on)
{
	vma_rmap_lock(vma);
	if (on)
		vma->vm_flags |= VM_MERGEABLE;
	else
		vma->vm_flags &= ~VM_MERGEABLE;
	vma_rmap_unlock(vma);
}

/* Unmerge every mergeable VMA of @mm and clear VM_MERGEABLE.  Context: mmap_lock write. */
static int ksm_del_vmas(struct umm_mm *mm)
{
	for (struct rb_node *n = rb_first(&mm->mm_rb); n; n = rb_next(n)) {
		struct vm_area_struct *vma = rb_entry(n, struct vm_area_struct, vm_rb);
		int err;

		if (!(vma->vm_flags & VM_MERGEABLE))
			continue;
		if (vma->anon_vma) {
			err = unmerge_ksm_pages(vma, vma->vm_start, vma->vm_end);
			if (err)
				return err;
		}
		vma_set_mergeable(vma, false);
	}
	return 0;
}

static void ksm_add_vmas(struct umm_mm *mm)
{
	for (struct rb_node *n = rb_first(&mm->mm_rb); n; n = rb_next(n)) {
		struct vm_area_struct *vma = rb_entry(n, struct vm_area_struct, vm_rb);

		if (!(vma->vm_flags & VM_MERGEABLE) && vma_ksm_compatible(vma->vm_flags))
			vma_set_mergeable(vma, true);
	}
}

int umm_mm_set_merge_any(struct umm_mm *mm, bool on)
{
	unsigned long f;
	int err = 0;

	if (!mm)
		return -EINVAL;
	pthread_rwlock_wrlock(&mm->mmap_lock);
	f = atomic_load(&mm->ksm_flags);
	if (on && !(f & MMF_VM_MERGE_ANY)) {
		if (!(f & MMF_VM_MERGEABLE))
			err = __ksm_enter(mm);
		if (!err) {
			atomic_fetch_or(&mm->ksm_flags, MMF_VM_MERGE_ANY);
			ksm_add_vmas(mm);
		}
	} else if (!on && (f & MMF_VM_MERGE_ANY)) {
		err = ksm_del_vmas(mm);
		if (err)
			ksm_add_vmas(mm);
		else
			atomic_fetch_and(&mm->ksm_flags, ~MMF_VM_MERGE_ANY);
	}
	pthread_rwlock_unlock(&mm->mmap_lock);
	return err;
}

int umm_mm_set_ksm_domain(struct umm_mm *mm, unsigned int id)
{
	int err = 0;

	if (!mm)
		return -EINVAL;
	pthread_rwlock_wrlock(&mm->mmap_lock);
	if (mm->ksm_domain != id) {
		unsigned int old = mm->ksm_domain;

		if (id)
			atomic_store(&mm->u->ksm->domains_used, true);
		/* first the domain (see ksm_in_place_same_domain), then unmerge:
		 * nothing this mm maps may stay shared with its old domain */
		mm->ksm_domain = id;
		for (struct rb_node *n = rb_first(&mm->mm_rb); n && !err; n = rb_next(n)) {
			struct vm_area_struct *vma = rb_entry(n, struct vm_area_struct, vm_rb);

			if (vma->anon_vma)
				err = unmerge_ksm_pages(vma, vma->vm_start, vma->vm_end);
		}
		if (err)
			mm->ksm_domain = old;
	}
	pthread_rwlock_unlock(&mm->mmap_lock);
	return err;
}

/* ---- run = 2: unmerge everything ---- */

/*
 * remove_stable_node - drop @node and make its page an ordinary anonymous
 * page again, unless something still maps it.  Return: 0 or -EBUSY.
 */
static int remove_stable_node(struct ksm *k, struct ksm_stable_node *node)
{
	struct umm_page *page = get_ksm_page(k, node, true);
	int err = 0;

	if (!page)
		return 0;	/* stale: gone already */
	if (page_mapcount(page) > 0) {
		err = -EBUSY;
	} else {
		set_page_stable_node(page, NULL);
		remove_node_from_stable_tree(k, node);
	}
	unlock_page(page);
	put_page(k->u, page);
	return err;
}

/* Return: how many stable nodes remain (still mapped).  Context: no batch in flight. */
static int remove_all_stable_nodes(struct ksm *k)
{
	int busy = 0;

	for (int i = 0; i < KSM_NR_SHARDS; i++) {
		struct ksm_shard *shard = &k->shards[i];
		struct rb_node *n, *next;

		pthread_mutex_lock(&shard->lock);
		for (n = rb_first(&shard->stable); n; n = next) {
			struct ksm_stable_node *node = rb_entry(n, struct ksm_stable_node, node);

			next = rb_next(n);
			if (is_stable_node_chain(node)) {
				struct ksm_stable_node *dup, *tmp;

				list_for_each_entry_safe(dup, tmp, &node->hlist, hlist_dup)
					if (remove_stable_node(k, dup))
						busy++;
				if (list_empty(&node->hlist))
					free_stable_node_chain(k, node);
			} else if (remove_stable_node(k, node)) {
				busy++;
			}
		}
		pthread_mutex_unlock(&shard->lock);
	}
	return busy;
}

static int unmerge_and_remove_all_rmap_items(struct ksm *k)
{
	struct ksm_mm_slot *slot;
	int err = 0;

	spin_lock(&k->mmlist_lock);
	slot = list_entry(k->mm_head.mm_node.next, struct ksm_mm_slot, mm_node);
	k->scan.mm_slot = slot;
	spin_unlock(&k->mmlist_lock);

	while (slot != &k->mm_head) {
		struct umm_mm *mm = slot->mm;

		pthread_rwlock_rdlock(&mm->mmap_lock);
		for (struct rb_node *n = rb_first(&mm->mm_rb); n && !err && !ksm_test_exit(mm);
		     n = rb_next(n)) {
			struct vm_area_struct *vma = rb_entry(n, struct vm_area_struct, vm_rb);

			if ((vma->vm_flags & VM_MERGEABLE) && vma->anon_vma)
				err = unmerge_ksm_pages(vma, vma->vm_start, vma->vm_end);
		}
		remove_trailing_rmap_items(k, &slot->rmap_list);
		pthread_rwlock_unlock(&mm->mmap_lock);
		if (err)
			break;
		spin_lock(&k->mmlist_lock);
		k->scan.mm_slot = list_entry(slot->mm_node.next, struct ksm_mm_slot, mm_node);
		if (ksm_test_exit(mm))
			drop_mm_slot(k, slot, false);
		else
			spin_unlock(&k->mmlist_lock);
		slot = k->scan.mm_slot;
	}
	if (err) {
		spin_lock(&k->mmlist_lock);
		k->scan.mm_slot = &k->mm_head;
		spin_unlock(&k->mmlist_lock);
		return err;
	}
	remove_all_stable_nodes(k);
	k->scan.seqnr = 0;
	return 0;
}

/* ---- API ---- */

static struct ksm *umm_ksm(struct umm *u)
{
	return u ? u->ksm : NULL;
}

int umm_ksm_set_run(struct umm *u, int run)
{
	struct ksm *k = umm_ksm(u);
	int err = 0;

	if (!k || run < 0 || run > 2)
		return -EINVAL;
	ksm_thread_lock(k);
	if (k->run != run) {
		k->run = run;
		if (run == 2) {
			err = unmerge_and_remove_all_rmap_items(k);
			if (err)
				k->run = 0;
		}
	}
	if (run == 1 && !k->ksmd_started) {
		if (pthread_create(&k->ksmd, NULL, ksmd_fn, k)) {
			k->run = 0;
			err = -EAGAIN;
		} else {
			k->ksmd_started = true;
		}
	}
	pthread_mutex_unlock(&k->thread_mutex);
	ksmd_wake(k);
	return err;
}

int umm_ksm_scan(struct umm *u, unsigned long nr_pages)
{
	struct ksm *k = umm_ksm(u);

	if (!k)
		return -EINVAL;
	ksm_thread_lock(k);
	ksm_pool_resize(k);
	ksm_do_scan(k, nr_pages);
	pthread_mutex_unlock(&k->thread_mutex);
	return 0;
}

/* Scans that an rmap_item allocation stops, in a row, before full_scans gives up. */
#define KSM_FULL_SCAN_NOMEM_TRIES	1000

int umm_ksm_full_scans(struct umm *u, unsigned long nr)
{
	struct ksm *k = umm_ksm(u);
	unsigned long target;
	int tries = 0, err = 0;

	if (!k)
		return -EINVAL;
	ksm_thread_lock(k);
	ksm_pool_resize(k);
	target = k->scan.seqnr + nr;
	while (k->scan.seqnr < target) {
		unsigned long before = k->scan.seqnr;

		k->scan.nomem = false;
		ksm_do_scan(k, ULONG_MAX);
		if (k->scan.seqnr != before) {
			tries = 0;
			continue;
		}
		/* nothing registered: no scan can ever complete */
		if (!k->scan.nomem)
			break;
		/* out of rmap_items: go on from the same page, as ksmd would */
		if (++tries == KSM_FULL_SCAN_NOMEM_TRIES) {
			err = -ENOMEM;
			break;
		}
	}
	pthread_mutex_unlock(&k->thread_mutex);
	return err;
}

int umm_ksm_get_params(struct umm *u, struct umm_ksm_params *p)
{
	struct ksm *k = umm_ksm(u);

	if (!k || !p)
		return -EINVAL;
	ksm_thread_lock(k);
	*p = k->p;
	pthread_mutex_unlock(&k->thread_mutex);
	return 0;
}

/* Are there KSM pages whose removal Linux's knob stores refuse to race with? */
static bool ksm_stable_busy(struct ksm *k)
{
	return atomic_load(&k->pages_shared) || remove_all_stable_nodes(k);
}

int umm_ksm_set_params(struct umm *u, const struct umm_ksm_params *p)
{
	struct ksm *k = umm_ksm(u);
	struct umm_ksm_params n;
	int err = 0;

	if (!k || !p)
		return -EINVAL;
	ksm_thread_lock(k);
	n = *p;
	if (n.max_page_sharing < 2 || !n.nr_threads || n.nr_threads > UMM_KSM_MAX_THREADS ||
	    n.advisor_mode > UMM_KSM_ADVISOR_SCAN_TIME || !n.advisor_target_scan_time) {
		err = -EINVAL;
		goto out;
	}
	if (n.pages_to_scan != k->p.pages_to_scan && n.advisor_mode != UMM_KSM_ADVISOR_NONE) {
		err = -EINVAL;	/* the advisor owns pages_to_scan */
		goto out;
	}
	if ((n.max_page_sharing != k->p.max_page_sharing ||
	     n.merge_across_nodes != k->p.merge_across_nodes) && ksm_stable_busy(k)) {
		err = -EBUSY;
		goto out;
	}
	if (n.advisor_mode != k->p.advisor_mode) {
		n.pages_to_scan = n.advisor_mode == UMM_KSM_ADVISOR_NONE ? 100 :
				  n.advisor_min_pages_to_scan;
		k->adv_start_ns = 0;
		k->adv_prev_scan_time = 0;
	}
	k->p = n;
	ksm_pool_resize(k);
out:
	pthread_mutex_unlock(&k->thread_mutex);
	if (!err)
		ksmd_wake(k);
	return err;
}

void umm_ksm_get_stats(struct umm *u, struct umm_ksm_stats *s)
{
	struct ksm *k = umm_ksm(u);
	long items, shared, sharing, unshared, zero;

	if (!s)
		return;
	memset(s, 0, sizeof(*s));
	if (!k)
		return;
	items = atomic_load(&k->rmap_items);
	shared = atomic_load(&k->pages_shared);
	sharing = atomic_load(&k->pages_sharing);
	unshared = atomic_load(&k->pages_unshared);
	zero = atomic_load(&u->ksm_zero_pages);
	s->pages_shared = shared;
	s->pages_sharing = sharing;
	s->pages_unshared = unshared;
	s->pages_volatile = items - shared - sharing - unshared > 0 ?
			    items - shared - sharing - unshared : 0;
	s->pages_scanned = atomic_load(&k->pages_scanned);
	s->pages_skipped = atomic_load(&k->pages_skipped);
	s->full_scans = atomic_load(&k->scan.seqnr);
	s->stable_node_chains = atomic_load(&k->stable_node_chains);
	s->stable_node_dups = atomic_load(&k->stable_node_dups);
	s->ksm_zero_pages = zero;
	s->general_profit = (sharing + zero) * (long)PAGE_SIZE -
			    items * (long)sizeof(struct ksm_rmap_item);
}

void umm_mm_get_ksm_stat(struct umm_mm *mm, struct umm_mm_ksm_stat *st)
{
	if (!st)
		return;
	memset(st, 0, sizeof(*st));
	if (!mm)
		return;
	st->ksm_rmap_items = atomic_load(&mm->ksm_rmap_items);
	st->ksm_zero_pages = atomic_load(&mm->ksm_zero_pages);
	st->ksm_merging_pages = atomic_load(&mm->ksm_merging_pages);
	st->ksm_process_profit = (long)(st->ksm_merging_pages + st->ksm_zero_pages) * (long)PAGE_SIZE -
				 (long)st->ksm_rmap_items * (long)sizeof(struct ksm_rmap_item);
	st->ksm_merge_any = atomic_load(&mm->ksm_flags) & MMF_VM_MERGE_ANY;
	pthread_rwlock_rdlock(&mm->mmap_lock);
	for (struct rb_node *n = rb_first(&mm->mm_rb); n; n = rb_next(n))
		if (rb_entry(n, struct vm_area_struct, vm_rb)->vm_flags & VM_MERGEABLE) {
			st->ksm_mergeable = true;
			break;
		}
	pthread_rwlock_unlock(&mm->mmap_lock);
}

/* ---- rmap ---- */

/* Is @vma linked to @av (in its tree)?  Context: their root's rwsem held. */
static bool vma_linked(struct vm_area_struct *vma, struct anon_vma *av)
{
	struct anon_vma_chain *avc;

	list_for_each_entry(avc, &vma->anon_vma_chain, same_vma)
		if (avc->anon_vma == av)
			return true;
	return false;
}

/*
 * Would a source of rmap_walk_ksm() before @upto's (the node's own
 * anon_vma, then its items in list order) reach @vma at @addr?
 */
static bool ksm_rmap_seen(struct ksm_stable_node *node, struct ksm_rmap_item *upto,
			  struct vm_area_struct *vma, uint64_t addr)
{
	struct ksm_rmap_item *item;

	if (node->anon_vma && node->index >= vma->vm_pgoff &&
	    node->index < vma->vm_pgoff + vma_pages(vma) &&
	    vma->vm_start + ((node->index - vma->vm_pgoff) << PAGE_SHIFT) == addr &&
	    vma_linked(vma, node->anon_vma))
		return true;
	list_for_each_entry(item, &node->hlist, hlist) {
		if (item == upto)
			break;
		if (item->address == addr && vma_linked(vma, item->anon_vma))
			return true;
	}
	return false;
}

/*
 * rmap_walk_ksm - every VMA that may map the KSM page @page, each once.
 * The page can be mapped where its rmap_items are, in mms forked since
 * (which have no item of their own for it), and - if it became a KSM page
 * in place - wherever the anonymous page it was was mapped (the fork family
 * of its anon_vma, some of whose VMAs may not be mergeable at all).  So the
 * walk searches the node's original anon_vma at the page's index, then each
 * item's anon_vma at the item's address, skipping a VMA an earlier source
 * reached already.  (Linux walks only the items' anon_vmas, which misses
 * the first kind and can reach a VMA through several items.)
 * Context: @page locked and referenced.
 */
/* Did a ghost before @upto already reach @vma at @addr? */
static bool ksm_ghost_seen(struct ksm_stable_node *node, struct ksm_ghost *upto,
			   struct vm_area_struct *vma, uint64_t addr)
{
	struct ksm_ghost *g;

	list_for_each_entry(g, &node->ghosts, link) {
		if (g == upto)
			break;
		if (g->address == addr && vma_linked(vma, g->anon_vma))
			return true;
	}
	return false;
}

/*
 * Walk the VMAs of @av's tree that cover @addr and were not reached
 * before (@item / @ghost: the one being searched).  Return: false to stop.
 */
static bool ksm_walk_anon_vma(struct umm_page *page, struct ksm_stable_node *node,
			      struct anon_vma *av, uint64_t addr, struct ksm_rmap_item *item,
			      struct ksm_ghost *ghost, struct rmap_walk_control *rwc)
{
	struct interval_tree_node *n;
	bool go = true;

	pthread_rwlock_rdlock(&av->root->rwsem);
	for (n = interval_tree_iter_first(&av->rb_root, 0, UINT64_MAX); n && go;
	     n = interval_tree_iter_next(n, 0, UINT64_MAX)) {
		struct vm_area_struct *vma = container_of(n, struct anon_vma_chain, itn)->vma;

		if (addr < vma->vm_start || addr >= vma->vm_end ||
		    ksm_rmap_seen(node, item, vma, addr) ||
		    (ghost && ksm_ghost_seen(node, ghost, vma, addr)))
			continue;
		go = rwc->rmap_one(page, vma, addr, rwc->arg) && !(rwc->done && rwc->done(page));
	}
	pthread_rwlock_unlock(&av->root->rwsem);
	return go;
}

int rmap_walk_ksm(struct umm_page *page, struct rmap_walk_control *rwc)
{
	struct ksm_stable_node *node = page_stable_node(page);
	struct ksm_rmap_item *item;
	struct ksm_ghost *g;
	struct interval_tree_node *n;
	bool stop = false;

	if (!node)
		return 0;
	if (node->anon_vma) {
		struct anon_vma *av = node->anon_vma;

		pthread_rwlock_rdlock(&av->root->rwsem);
		for (n = interval_tree_iter_first(&av->rb_root, node->index, node->index); n && !stop;
		     n = interval_tree_iter_next(n, node->index, node->index)) {
			struct vm_area_struct *vma = container_of(n, struct anon_vma_chain, itn)->vma;
			uint64_t addr = vma->vm_start + ((node->index - vma->vm_pgoff) << PAGE_SHIFT);

			if (!rwc->rmap_one(page, vma, addr, rwc->arg) || (rwc->done && rwc->done(page)))
				stop = true;
		}
		pthread_rwlock_unlock(&av->root->rwsem);
	}
	list_for_each_entry(item, &node->hlist, hlist)
		if (stop || !ksm_walk_anon_vma(page, node, item->anon_vma, item->address, item, NULL, rwc))
			return 0;
	/* the ghosts after every item: ksm_rmap_seen(NULL) then checks all items */
	list_for_each_entry(g, &node->ghosts, link)
		if (stop || !ksm_walk_anon_vma(page, node, g->anon_vma, g->address, NULL, g, rwc))
			return 0;
	return 0;
}

/* ---- validate's census ---- */

static void census_node(struct ksm_stable_node *node, long *shared, long *sharing,
			ksm_census_fail_fn fail, void *ctx)
{
	struct ksm_rmap_item *item;
	int len = 0;

	list_for_each_entry(item, &node->hlist, hlist) {
		len++;
		item->mm->ksm_census[1]++;
		if (item->head != node || item->state != ITEM_STABLE)
			fail(ctx, "ksm: an rmap_item in a stable node's list does not point back");
	}
	if (len)
		(*shared)++;
	if (len > 1)
		*sharing += len - 1;
	if (len != node->rmap_hlist_len)
		fail(ctx, "ksm: a stable node's rmap_hlist_len disagrees with its list");
}

/*
 * ksm_census - check every KSM figure against a walk of the trees and the
 * mm slots.  Context: quiescent use (umm_validate); takes thread_mutex.
 */
void ksm_census(struct umm *u, ksm_census_fail_fn fail, void *ctx)
{
	struct ksm *k = u->ksm;
	long shared = 0, sharing = 0, unshared = 0, items = 0, chains = 0, dups = 0;
	struct ksm_mm_slot *slot;
	char msg[256];

	ksm_thread_lock(k);
	spin_lock(&k->mmlist_lock);
	list_for_each_entry(slot, &k->mm_head.mm_node, mm_node)
		slot->mm->ksm_census[0] = slot->mm->ksm_census[1] = 0;
	list_for_each_entry(slot, &k->mm_head.mm_node, mm_node)
		for (struct ksm_rmap_item *item = slot->rmap_list; item; item = item->rmap_list) {
			items++;
			slot->mm->ksm_census[0]++;
			if (item->state == ITEM_UNSTABLE)
				unshared++;
			if (item->rmap_list && item->rmap_list->address <= item->address)
				fail(ctx, "ksm: rmap_items out of address order");
		}
	for (int i = 0; i < KSM_NR_SHARDS; i++) {
		for (struct rb_node *n = rb_first(&k->shards[i].stable); n; n = rb_next(n)) {
			struct ksm_stable_node *node = rb_entry(n, struct ksm_stable_node, node), *dup;

			if (!is_stable_node_chain(node)) {
				census_node(node, &shared, &sharing, fail, ctx);
				continue;
			}
			chains++;
			list_for_each_entry(dup, &node->hlist, hlist_dup) {
				dups++;
				census_node(dup, &shared, &sharing, fail, ctx);
			}
		}
	}
	if (items != atomic_load(&k->rmap_items) || shared != atomic_load(&k->pages_shared) ||
	    sharing != atomic_load(&k->pages_sharing) || unshared != atomic_load(&k->pages_unshared) ||
	    chains != atomic_load(&k->stable_node_chains) || dups != atomic_load(&k->stable_node_dups)) {
		snprintf(msg, sizeof(msg), "ksm: counters rmap_items %ld pages_shared %ld pages_sharing %ld "
			 "pages_unshared %ld chains %ld dups %ld, trees hold %ld %ld %ld %ld %ld %ld",
			 atomic_load(&k->rmap_items), atomic_load(&k->pages_shared),
			 atomic_load(&k->pages_sharing), atomic_load(&k->pages_unshared),
			 atomic_load(&k->stable_node_chains), atomic_load(&k->stable_node_dups),
			 items, shared, sharing, unshared, chains, dups);
		fail(ctx, msg);
	}
	list_for_each_entry(slot, &k->mm_head.mm_node, mm_node) {
		struct umm_mm *mm = slot->mm;

		if (mm->ksm_census[0] != atomic_load(&mm->ksm_rmap_items) ||
		    mm->ksm_census[1] != atomic_load(&mm->ksm_merging_pages)) {
			snprintf(msg, sizeof(msg), "ksm: mm %p: ksm_rmap_items %ld ksm_merging_pages %ld, "
				 "its slot holds %ld and the stable tree %ld", (void *)mm,
				 atomic_load(&mm->ksm_rmap_items), atomic_load(&mm->ksm_merging_pages),
				 mm->ksm_census[0], mm->ksm_census[1]);
			fail(ctx, msg);
		}
	}
	spin_unlock(&k->mmlist_lock);
	pthread_mutex_unlock(&k->thread_mutex);
}

/* ---- the machine's KSM ---- */

int ksm_init(struct umm *u)
{
	struct ksm *k = calloc(1, sizeof(*k));
	struct umm_page *zero;

	if (!k)
		return -ENOMEM;
#if KSM_CHECKSUM_AVX2
	if (__builtin_cpu_supports("avx2"))
		atomic_store_explicit(&cpu_has_avx2, true, memory_order_relaxed);
#endif
	k->u = u;
	pthread_mutex_init(&k->thread_mutex, NULL);
	spin_lock_init(&k->mmlist_lock);
	INIT_LIST_HEAD(&k->mm_head.mm_node);
	k->scan.mm_slot = &k->mm_head;
	for (int i = 0; i < KSM_NR_SHARDS; i++) {
		pthread_mutex_init(&k->shards[i].lock, NULL);
		k->shards[i].stable = RB_ROOT;
		k->shards[i].unstable = RB_ROOT;
	}
	k->p = (struct umm_ksm_params){
		.pages_to_scan = 100, .sleep_millisecs = 20, .max_page_sharing = 256,
		.merge_across_nodes = true, .use_zero_pages = false, .smart_scan = true,
		.stable_node_chains_prune_millisecs = 2000, .nr_threads = 1,
		.advisor_mode = UMM_KSM_ADVISOR_NONE, .advisor_target_scan_time = 200,
		.advisor_min_cpu = 15, .advisor_max_cpu = 70,
		.advisor_min_pages_to_scan = 500, .advisor_max_pages_to_scan = 30000,
	};
	pthread_mutex_init(&k->ksmd_lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&k->ksmd_wait, &ca);
	pthread_condattr_destroy(&ca);
	pthread_mutex_init(&k->pool_lock, NULL);
	pthread_cond_init(&k->pool_go, NULL);
	pthread_cond_init(&k->pool_done, NULL);
	zero = pfn_to_page(u, ZERO_PFN);
	k->zero_checksum = calc_checksum(u, zero);
	u->ksm = k;
	return 0;
}

/* Stop ksmd and the helpers.  Context: umm_destroy, before the mms exit. */
void ksm_stop_threads(struct umm *u)
{
	struct ksm *k = u->ksm;

	if (!k)
		return;
	pthread_mutex_lock(&k->ksmd_lock);
	k->ksmd_stop = true;
	pthread_cond_broadcast(&k->ksmd_wait);
	pthread_mutex_unlock(&k->ksmd_lock);
	if (k->ksmd_started)
		pthread_join(k->ksmd, NULL);
	k->ksmd_started = false;
	ksm_pool_stop(k);
}

/* Free every slot, item and node.  Context: every mm has exited. */
void ksm_destroy(struct umm *u)
{
	struct ksm *k = u->ksm;

	if (!k)
		return;
	ksm_stop_threads(u);
	while (!list_empty(&k->mm_head.mm_node)) {
		struct ksm_mm_slot *slot = list_first_entry(&k->mm_head.mm_node, struct ksm_mm_slot,
							    mm_node);

		remove_trailing_rmap_items(k, &slot->rmap_list);
		spin_lock(&k->mmlist_lock);
		drop_mm_slot(k, slot, false);
	}
	k->scan.mm_slot = &k->mm_head;
	remove_all_stable_nodes(k);
	while (k->item_chunks) {
		struct ksm_item_chunk *c = k->item_chunks;

		k->item_chunks = c->next;
		free(c);
	}
	for (int i = 0; i < KSM_NR_SHARDS; i++)
		pthread_mutex_destroy(&k->shards[i].lock);
	pthread_mutex_destroy(&k->thread_mutex);
	pthread_mutex_destroy(&k->ksmd_lock);
	pthread_cond_destroy(&k->ksmd_wait);
	pthread_mutex_destroy(&k->pool_lock);
	pthread_cond_destroy(&k->pool_go);
	pthread_cond_destroy(&k->pool_done);
	free(k);
	u->ksm = NULL;
}
