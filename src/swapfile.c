// SPDX-License-Identifier: MIT
/*
 * swapfile.c - the swap device, its slots and counts, and the swap cache.
 *
 * One swap file per machine, a real file on the host written with pwrite
 * and read with pread.  Slot 0 is never handed out, so a swap entry is
 * never confused with an empty PTE.
 *
 * Swap counts (swap_map).  Each slot's word counts the swap PTEs that name
 * it, plus SWAP_HAS_CACHE while a page for it sits in the swap cache: a
 * page shared by forked mms keeps one slot whose count is the number of
 * PTEs, as Linux keeps it.  Counts are 31 bits wide, so Linux's count
 * continuations are not built: a count that would pass count_max is
 * refused with -ENOMEM, which is what Linux answers when it cannot
 * allocate a continuation (fork fails, reclaim keeps the page mapped), and
 * the word never overflows into SWAP_HAS_CACHE.  A slot is free when its
 * word is zero.
 *
 * The swap cache.  A page being swapped out or in is found by its slot:
 * cache[slot] points at it, page->private holds the slot and PG_swapcache
 * is set; the cache holds one reference.  This is how concurrent faults of
 * a swapped page, and forked mms that share its slot, all get the same
 * frame.  SWAP_HAS_CACHE is also the "someone is reading this slot in"
 * token: only the fault that sets it allocates the page.
 *
 * Lookups are lockless (a reference is taken only if the count is not
 * zero, then the page is checked to still be the slot's); inserts and
 * deletes change cache[slot] with the page locked.
 */
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

#define SWAP_HAS_CACHE	0x80000000u
#define SWAP_COUNT_MASK	0x7fffffffu

/* ---- fault injection ---- */

int umm_fault_inject(struct umm *u, int kind, unsigned int probability_ppm, long times)
{
	struct fault_attr *fa;

	if (!u || kind < 0 || kind >= UMM_FAULT_NR || probability_ppm > 1000000 || times < -1)
		return -EINVAL;
	fa = &u->faults[kind];
	atomic_store(&fa->times, probability_ppm ? times : 0);
	atomic_store(&fa->probability, probability_ppm);
	return 0;
}

uint64_t umm_fault_injected(struct umm *u, int kind)
{
	if (!u || kind < 0 || kind >= UMM_FAULT_NR)
		return 0;
	return atomic_load(&u->faults[kind].injected);
}

/* Should this operation of @kind fail?  Return: true when one is injected. */
bool __should_fail(struct umm *u, int kind)
{
	static __thread uint64_t rnd;
	struct fault_attr *fa = &u->faults[kind];
	unsigned int p = atomic_load_explicit(&fa->probability, memory_order_relaxed);
	long t;

	if (!rnd)
		rnd = (uint64_t)(uintptr_t)&rnd * 0x9e3779b97f4a7c15ULL | 1;
	rnd ^= rnd << 13;
	rnd ^= rnd >> 7;
	rnd ^= rnd << 17;
	if (p < 1000000 && rnd % 1000000 >= p)
		return false;
	t = atomic_load(&fa->times);
	do {
		if (t == 0)
			return false;
	} while (t > 0 && !atomic_compare_exchange_weak(&fa->times, &t, t - 1));
	atomic_fetch_add(&fa->injected, 1);
	return true;
}

/* ---- the device ---- */

/*
 * swap_init - open (creating if needed) the swap file and size it.
 * swap_bytes 0 takes the size of an existing file.
 * Return: 0, -EINVAL (too small), or the host's -errno.
 */
int swap_init(struct umm *u)
{
	const char *path = u->cfg.swap_path;
	struct swap_info *si;
	struct stat st;
	uint64_t bytes = u->cfg.swap_bytes & PAGE_MASK;
	int err;

	si = calloc(1, sizeof(*si));
	if (!si)
		return -ENOMEM;
	si->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (si->fd < 0) {
		err = -errno;
		goto out_free;
	}
	if (fstat(si->fd, &st) < 0) {
		err = -errno;
		goto out_close;
	}
	if (!bytes)
		bytes = (uint64_t)st.st_size & PAGE_MASK;
	if (bytes < 2 * PAGE_SIZE) {
		err = -EINVAL;
		goto out_close;
	}
	if ((uint64_t)st.st_size < bytes && ftruncate(si->fd, (off_t)bytes) < 0) {
		err = -errno;
		goto out_close;
	}
	si->nr_slots = bytes >> PAGE_SHIFT;
	si->map = calloc(si->nr_slots, sizeof(*si->map));
	si->cache = calloc(si->nr_slots, sizeof(*si->cache));
	if (!si->map || !si->cache) {
		err = -ENOMEM;
		goto out_arrays;
	}
	si->map[0] = SWAP_COUNT_MASK;		/* never handed out */
	si->count_max = SWAP_COUNT_MASK - 1;
	atomic_init(&si->nr_free, si->nr_slots - 1);
	si->cursor = 1;
	spin_lock_init(&si->lock);
	u->swap = si;
	return 0;

out_arrays:
	free(si->map);
	free(si->cache);
out_close:
	close(si->fd);
out_free:
	free(si);
	return err;
}

void swap_exit(struct umm *u)
{
	struct swap_info *si = u->swap;

	if (!si)
		return;
	close(si->fd);
	free(si->map);
	free(si->cache);
	free(si);
	u->swap = NULL;
}

uint64_t nr_swap_free(struct umm *u)
{
	return u->swap ? atomic_load(&u->swap->nr_free) : 0;
}

/*
 * get_swap_slot - a free slot, already marked SWAP_HAS_CACHE for the page
 * about to enter the cache.  Return: the slot, or 0 when swap is full.
 */
uint64_t get_swap_slot(struct umm *u)
{
	struct swap_info *si = u->swap;
	uint64_t slot = 0;

	if (!si || !atomic_load_explicit(&si->nr_free, memory_order_relaxed))
		return 0;
	spin_lock(&si->lock);
	for (uint64_t i = 0; i < si->nr_slots; i++) {
		uint64_t s = si->cursor;
		uint32_t zero = 0;

		si->cursor = s + 1 < si->nr_slots ? s + 1 : 1;
		if (atomic_compare_exchange_strong(&si->map[s], &zero, SWAP_HAS_CACHE)) {
			slot = s;
			atomic_fetch_sub(&si->nr_free, 1);
			break;
		}
	}
	spin_unlock(&si->lock);
	return slot;
}

static void slot_freed(struct swap_info *si)
{
	atomic_fetch_add(&si->nr_free, 1);
}

/*
 * swap_duplicate - one more swap PTE names @slot (fork, try_to_unmap).
 * Return: 0, or -ENOMEM when the slot already counts count_max PTEs (the
 * count is left as it was).
 */
int swap_duplicate(struct umm *u, uint64_t slot)
{
	struct swap_info *si = u->swap;
	uint32_t old = atomic_load(&si->map[slot]);

	do {
		VM_BUG_ON(!old);
		if ((old & SWAP_COUNT_MASK) >= si->count_max)
			return -ENOMEM;
	} while (!atomic_compare_exchange_weak(&si->map[slot], &old, old + 1));
	return 0;
}

/* How many swap PTEs name @slot. */
unsigned int swap_count(struct umm *u, uint64_t slot)
{
	return atomic_load(&u->swap->map[slot]) & SWAP_COUNT_MASK;
}

/*
 * swap_free - a swap PTE naming @slot went away (zap, swap-in).  The slot
 * is free once neither a PTE nor the cache names it.
 * Return: the count left.
 */
unsigned int swap_free(struct umm *u, uint64_t slot)
{
	uint32_t old = atomic_fetch_sub(&u->swap->map[slot], 1);

	VM_BUG_ON(!(old & SWAP_COUNT_MASK));
	if (old == 1)
		slot_freed(u->swap);
	return (old - 1) & SWAP_COUNT_MASK;
}

/*
 * swapcache_prepare - claim the right to read @slot into a new page.
 * Return: 0 (claimed: HAS_CACHE set), -EEXIST (a page for it is in the
 * cache or being read by someone else: look again), -ENOENT (no PTE names
 * the slot any more: the fault raced with a zap or another swap-in).
 */
int swapcache_prepare(struct umm *u, uint64_t slot)
{
	_Atomic uint32_t *m = &u->swap->map[slot];
	uint32_t old = atomic_load(m);

	do {
		if (!(old & SWAP_COUNT_MASK))
			return -ENOENT;
		if (old & SWAP_HAS_CACHE)
			return -EEXIST;
	} while (!atomic_compare_exchange_weak(m, &old, old | SWAP_HAS_CACHE));
	return 0;
}

/* Drop the cache's claim on @slot; the slot is free if nothing else names it. */
void swapcache_clear(struct umm *u, uint64_t slot)
{
	uint32_t old = atomic_fetch_and(&u->swap->map[slot], ~SWAP_HAS_CACHE);

	VM_BUG_ON(!(old & SWAP_HAS_CACHE));
	if (old == SWAP_HAS_CACHE)
		slot_freed(u->swap);
}

/* ---- the swap cache ---- */

/* Put @page (locked, ours) in the cache at @slot, whose HAS_CACHE we hold. */
void add_to_swap_cache(struct umm *u, struct umm_page *page, uint64_t slot)
{
	VM_BUG_ON(!(atomic_load(&u->swap->map[slot]) & SWAP_HAS_CACHE));
	get_page(page);				/* the cache's reference */
	__atomic_store_n(&page->private, slot, __ATOMIC_RELAXED);
	SetPageFlag(page, PG_swapcache | PG_swapbacked);
	atomic_store_explicit(&u->swap->cache[slot], page, memory_order_release);
	atomic_fetch_add(&u->swap->nr_swapcache, 1);
}

/*
 * delete_from_swap_cache - take @page out of the cache and give up its
 * slot's HAS_CACHE; the caller drops the cache's reference.
 * Context: page locked.
 */
void delete_from_swap_cache(struct umm *u, struct umm_page *page)
{
	uint64_t slot = page->private;

	VM_BUG_ON(!TestPageFlag(page, PG_swapcache));
	atomic_store_explicit(&u->swap->cache[slot], NULL, memory_order_release);
	ClearPageFlag(page, PG_swapcache);
	__atomic_store_n(&page->private, 0, __ATOMIC_RELAXED);
	atomic_fetch_sub(&u->swap->nr_swapcache, 1);
	swapcache_clear(u, slot);
}

/* Take a reference unless the count already reached zero (the page is being freed). */
bool get_page_unless_zero(struct umm_page *p)
{
	int32_t c = atomic_load_explicit(&p->_refcount, memory_order_relaxed);

	do {
		if (!c)
			return false;
	} while (!atomic_compare_exchange_weak_explicit(&p->_refcount, &c, c + 1,
							 memory_order_acquire, memory_order_relaxed));
	return true;
}

/*
 * lookup_swap_cache - the page cached for @slot, with a reference.
 * Return: the page (which may be unlocked, so still being read: lock it to
 * wait), or NULL.
 */
struct umm_page *lookup_swap_cache(struct umm *u, uint64_t slot)
{
	for (;;) {
		struct umm_page *page = atomic_load_explicit(&u->swap->cache[slot], memory_order_acquire);

		if (!page)
			return NULL;
		if (!get_page_unless_zero(page))
			continue;	/* being freed: the entry goes in a moment */
		/* the page may be leaving the cache under its lock: checked, not trusted */
		if (TestPageFlag(page, PG_swapcache) &&
		    __atomic_load_n(&page->private, __ATOMIC_RELAXED) == slot &&
		    atomic_load_explicit(&u->swap->cache[slot], memory_order_acquire) == page)
			return page;
		put_page(u, page);
	}
}

/*
 * free_swap_and_cache - zap's end of a swap PTE: drop the count, and if
 * that was the last one and a page waits in the cache unmapped, free it
 * now rather than leave it for reclaim.
 */
void free_swap_and_cache(struct umm *u, uint64_t slot)
{
	struct umm_page *page;

	if (swap_free(u, slot))
		return;
	if (!(atomic_load(&u->swap->map[slot]) & SWAP_HAS_CACHE))
		return;
	page = lookup_swap_cache(u, slot);
	if (!page)
		return;
	if (trylock_page(page)) {
		if (TestPageFlag(page, PG_swapcache) && page->private == slot &&
		    page_mapcount(page) == 0 && !swap_count(u, slot)) {
			delete_from_swap_cache(u, page);
			put_page(u, page);	/* the cache's reference */
		}
		unlock_page(page);
	}
	put_page(u, page);
}

/*
 * try_to_free_swap - @page (locked) no longer needs its slot: nothing but
 * the cache names it.  Return: true if it left the cache (its reference
 * dropped).
 */
bool try_to_free_swap(struct umm *u, struct umm_page *page)
{
	if (!TestPageFlag(page, PG_swapcache) || swap_count(u, page->private))
		return false;
	delete_from_swap_cache(u, page);
	put_page(u, page);
	return true;
}

/*
 * free_swap_cache - @page just lost a mapping (zap, COW): if that was its
 * last one and no swap PTE names its slot, the copy in swap is of no use
 * and the page leaves the cache, rather than hold the slot until reclaim
 * finds it.  Context: @page not locked by the caller (it is tried here).
 */
void free_swap_cache(struct umm *u, struct umm_page *page)
{
	if (TestPageFlag(page, PG_swapcache) && page_mapcount(page) <= 0 && trylock_page(page)) {
		try_to_free_swap(u, page);
		unlock_page(page);
	}
}

/* At destroy: every page still in the swap cache (no PTE names its slot any more) goes. */
void swap_cache_drop_all(struct umm *u)
{
	struct swap_info *si = u->swap;

	if (!si)
		return;
	for (uint64_t s = 1; s < si->nr_slots; s++) {
		struct umm_page *page = lookup_swap_cache(u, s);

		if (!page)
			continue;
		lock_page(page);
		if (TestPageFlag(page, PG_swapcache) && page->private == s) {
			delete_from_swap_cache(u, page);
			put_page(u, page);
		}
		unlock_page(page);
		put_page(u, page);
	}
}

/* ---- I/O ---- */

static int swap_io(struct umm *u, struct umm_page *page, uint64_t slot, bool write)
{
	char *buf = page_address(u, page);
	off_t pos = (off_t)(slot << PAGE_SHIFT);
	size_t done = 0;

	if (should_fail(u, write ? UMM_FAULT_SWAP_WRITE : UMM_FAULT_SWAP_READ))
		return -EIO;
	while (done < PAGE_SIZE) {
		ssize_t n = write ? pwrite(u->swap->fd, buf + done, PAGE_SIZE - done, pos + (off_t)done)
				  : pread(u->swap->fd, buf + done, PAGE_SIZE - done, pos + (off_t)done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -EIO;
		done += (size_t)n;
	}
	return 0;
}

/* Read @slot into @page.  Return: 0 or -EIO; never a silent zero page. */
int swap_readpage(struct umm *u, struct umm_page *page, uint64_t slot)
{
	int err = swap_io(u, page, slot, false);

	vmstat_inc(u, err ? VMS_SWAP_READ_ERRORS : VMS_PSWPIN);
	return err;
}

int swap_writepage(struct umm *u, struct umm_page *page, uint64_t slot)
{
	int err = swap_io(u, page, slot, true);

	vmstat_inc(u, err ? VMS_SWAP_WRITE_ERRORS : VMS_PSWPOUT);
	return err;
}

/* ---- a census for umm_validate ---- */

/*
 * swap_census_check - every slot's count equals the swap PTEs that name
 * it (@ptes, gathered by the walk), HAS_CACHE matches the cache, and the
 * free count matches.  Return: 0 or -EUCLEAN with @msg filled in.
 */
int swap_census_check(struct umm *u, const uint32_t *ptes, char *msg, size_t len)
{
	struct swap_info *si = u->swap;
	uint64_t nr_free = 0;

	for (uint64_t s = 1; s < si->nr_slots; s++) {
		uint32_t m = atomic_load(&si->map[s]);
		struct umm_page *page = atomic_load(&si->cache[s]);

		if (!m)
			nr_free++;
		if ((m & SWAP_COUNT_MASK) != ptes[s]) {
			snprintf(msg, len, "swap slot %llu: count %u, %u swap PTEs name it",
				 (unsigned long long)s, m & SWAP_COUNT_MASK, ptes[s]);
			return -EUCLEAN;
		}
		if (!!(m & SWAP_HAS_CACHE) != !!page ||
		    (page && (page->private != s || !TestPageFlag(page, PG_swapcache)))) {
			snprintf(msg, len, "swap slot %llu: HAS_CACHE %d but the cache holds %p",
				 (unsigned long long)s, !!(m & SWAP_HAS_CACHE), (void *)page);
			return -EUCLEAN;
		}
	}
	if (nr_free != atomic_load(&si->nr_free)) {
		snprintf(msg, len, "swap: %llu free slots, counter says %llu",
			 (unsigned long long)nr_free, (unsigned long long)atomic_load(&si->nr_free));
		return -EUCLEAN;
	}
	return 0;
}
