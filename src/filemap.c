// SPDX-License-Identifier: MIT
/*
 * filemap.c - the page cache: address_space objects holding pages by
 * index, for host files (one object per file in a machine, however many
 * times it is opened) and for shared anonymous memory (a shmem object per
 * MAP_SHARED|MAP_ANONYMOUS mapping, inherited across fork).
 *
 * The index is a radix tree of 64-way nodes whose height grows with the
 * largest index, protected by the object's i_pages_lock.  An object is
 * freed after an RCU grace period, so rmap walkers may reach it from a
 * page without holding a reference (see rmap_walk_file).
 *
 * Lock order for writeback: the page lock, then the object's
 * writeback_lock (held only around one page's pwrite()).  Reclaim writes a
 * page it has locked; msync and the last put lock each page in turn, so
 * they never hold writeback_lock while waiting for a page lock.
 */
#include <fcntl.h>
#include <sched.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

#define RADIX_SHIFT	6
#define RADIX_SLOTS	(1u << RADIX_SHIFT)

struct radix_node {
	void *slots[RADIX_SLOTS];
	unsigned int count;
};

static uint64_t radix_max(unsigned int height)
{
	if (height * RADIX_SHIFT >= 64)
		return UINT64_MAX;
	return (1ULL << (height * RADIX_SHIFT)) - 1;
}

/* The leaf slot for @index, or NULL if the path to it does not exist. */
static void **radix_slot(struct radix_root *r, uint64_t index)
{
	struct radix_node *n = r->node;

	if (!n || index > radix_max(r->height))
		return NULL;
	for (unsigned int h = r->height; h > 1; h--) {
		n = n->slots[(index >> ((h - 1) * RADIX_SHIFT)) & (RADIX_SLOTS - 1)];
		if (!n)
			return NULL;
	}
	return &n->slots[index & (RADIX_SLOTS - 1)];
}

void *radix_lookup(struct radix_root *r, uint64_t index)
{
	void **slot = radix_slot(r, index);

	return slot ? *slot : NULL;
}

/* Put @item where the item at @index is.  Return: the item it replaced, or NULL (none). */
void *radix_replace(struct radix_root *r, uint64_t index, void *item)
{
	void **slot = radix_slot(r, index);
	void *old = slot ? *slot : NULL;

	if (old)
		*slot = item;
	return old;
}

/* Return: 0, -EEXIST if @index holds an item, -ENOMEM. */
int radix_insert(struct radix_root *r, uint64_t index, void *item)
{
	struct radix_node *n;

	if (!r->node) {
		r->node = calloc(1, sizeof(*r->node));
		if (!r->node)
			return -ENOMEM;
		r->height = 1;
	}
	while (index > radix_max(r->height)) {
		struct radix_node *top = calloc(1, sizeof(*top));

		if (!top)
			return -ENOMEM;
		top->slots[0] = r->node;
		top->count = 1;
		r->node = top;
		r->height++;
	}
	n = r->node;
	for (unsigned int h = r->height; h > 1; h--) {
		void **slot = &n->slots[(index >> ((h - 1) * RADIX_SHIFT)) & (RADIX_SLOTS - 1)];

		if (!*slot) {
			*slot = calloc(1, sizeof(struct radix_node));
			if (!*slot)
				return -ENOMEM;
			n->count++;
		}
		n = *slot;
	}
	if (n->slots[index & (RADIX_SLOTS - 1)])
		return -EEXIST;
	n->slots[index & (RADIX_SLOTS - 1)] = item;
	n->count++;
	return 0;
}

static void *radix_delete_node(struct radix_node *n, unsigned int h, uint64_t index, bool *empty)
{
	unsigned int i = (index >> ((h - 1) * RADIX_SHIFT)) & (RADIX_SLOTS - 1);
	void *item;

	if (h == 1) {
		item = n->slots[i];
		if (item) {
			n->slots[i] = NULL;
			n->count--;
		}
	} else {
		bool child_empty = false;

		if (!n->slots[i])
			return NULL;
		item = radix_delete_node(n->slots[i], h - 1, index, &child_empty);
		if (child_empty) {
			free(n->slots[i]);
			n->slots[i] = NULL;
			n->count--;
		}
	}
	*empty = n->count == 0;
	return item;
}

void *radix_delete(struct radix_root *r, uint64_t index)
{
	bool empty = false;
	void *item;

	if (!r->node || index > radix_max(r->height))
		return NULL;
	item = radix_delete_node(r->node, r->height, index, &empty);
	if (empty) {
		free(r->node);
		r->node = NULL;
		r->height = 0;
	}
	return item;
}

static void radix_walk(struct radix_node *n, unsigned int h, uint64_t base, radix_fn fn,
		       void *arg, bool free_nodes)
{
	for (unsigned int i = 0; i < RADIX_SLOTS; i++) {
		uint64_t idx = base | ((uint64_t)i << ((h - 1) * RADIX_SHIFT));

		if (!n->slots[i])
			continue;
		if (h == 1) {
			if (fn)
				fn(idx, n->slots[i], arg);
		} else {
			radix_walk(n->slots[i], h - 1, idx, fn, arg, free_nodes);
		}
	}
	if (free_nodes)
		free(n);
}

void radix_for_each(struct radix_root *r, radix_fn fn, void *arg)
{
	if (r->node)
		radix_walk(r->node, r->height, 0, fn, arg, false);
}

void radix_free(struct radix_root *r)
{
	if (r->node)
		radix_walk(r->node, r->height, 0, NULL, NULL, true);
	r->node = NULL;
	r->height = 0;
}

/* ---- address_space objects: shmem and host files ---- */

static struct address_space *mapping_alloc(struct umm *u, int fd)
{
	struct address_space *as = calloc(1, sizeof(*as));

	if (!as)
		return NULL;
	as->u = u;
	as->fd = fd;
	as->wfd = -1;
	atomic_init(&as->refcount, 1);
	pthread_mutex_init(&as->i_pages_lock, NULL);
	pthread_mutex_init(&as->writeback_lock, NULL);
	pthread_rwlock_init(&as->i_mmap_rwsem, NULL);
	as->i_mmap = RB_ROOT;
	pthread_mutex_lock(&u->as_lock);
	list_add_tail(&as->as_list, &u->as_list);
	pthread_mutex_unlock(&u->as_lock);
	return as;
}

struct address_space *shmem_create(struct umm *u)
{
	return mapping_alloc(u, -1);
}

void mapping_get(struct address_space *as)
{
	atomic_fetch_add(&as->refcount, 1);
}

struct page_vec {
	struct umm_page **pages;
	size_t nr, cap;
};

static void grab_cached_page(uint64_t index, void *item, void *arg)
{
	struct page_vec *v = arg;

	if (radix_is_swap(item))
		return;
	if (v->nr == v->cap) {
		size_t cap = v->cap ? v->cap * 2 : 64;
		struct umm_page **p = realloc(v->pages, cap * sizeof(*p));

		if (!p)
			return;
		v->pages = p;
		v->cap = cap;
	}
	get_page(item);
	v->pages[v->nr++] = item;
}

struct swap_vec {
	uint64_t *index;
	size_t nr, cap;
};

static void grab_swap_entry(uint64_t index, void *item, void *arg)
{
	struct swap_vec *v = arg;

	if (!radix_is_swap(item))
		return;
	if (v->nr == v->cap) {
		size_t cap = v->cap ? v->cap * 2 : 64;
		uint64_t *p = realloc(v->index, cap * sizeof(*p));

		if (!p)
			return;
		v->index = p;
		v->cap = cap;
	}
	v->index[v->nr++] = index;
}

/* A dead shmem object's pages in swap: their slots are free again. */
static size_t truncate_swap(struct address_space *as)
{
	struct swap_vec v = { 0 };
	size_t left;

	pthread_mutex_lock(&as->i_pages_lock);
	radix_for_each(&as->i_pages, grab_swap_entry, &v);
	for (size_t i = 0; i < v.nr; i++) {
		void *item = radix_delete(&as->i_pages, v.index[i]);

		v.index[i] = radix_swap_slot(item);
		as->nrswapped--;
	}
	left = as->nrswapped;
	pthread_mutex_unlock(&as->i_pages_lock);
	for (size_t i = 0; i < v.nr; i++)
		free_swap_and_cache(as->u, v.index[i]);
	free(v.index);
	return left;
}

/*
 * truncate_cache - empty the cache of a dead object.  Reclaim may be
 * working on a page (it holds the page lock while it drops a page from the
 * cache), so each page is taken out under its lock, as truncate does.
 * Return: how many pages were left (memory ran short collecting them).
 */
static size_t truncate_cache(struct address_space *as)
{
	struct page_vec v = { 0 };
	size_t left;

	pthread_mutex_lock(&as->i_pages_lock);
	radix_for_each(&as->i_pages, grab_cached_page, &v);
	left = as->nrpages - v.nr;
	pthread_mutex_unlock(&as->i_pages_lock);
	for (size_t i = 0; i < v.nr; i++) {
		struct umm_page *page = v.pages[i];

		lock_page(page);
		pthread_mutex_lock(&as->i_pages_lock);
		if (radix_lookup(&as->i_pages, page->index) == page) {
			radix_delete(&as->i_pages, page->index);
			as->nrpages--;
			pthread_mutex_unlock(&as->i_pages_lock);
			VM_BUG_ON(page_mapcount(page) > 0);
			atomic_store_explicit(&page->mapping, 0, memory_order_relaxed);
			/*
			 * A shmem page reclaim wrote out but could not free
			 * sits in the swap cache too; with no object to come
			 * back to, its slot names nothing.
			 */
			if (TestPageFlag(page, PG_swapcache)) {
				VM_BUG_ON(swap_count(as->u, page->private));
				delete_from_swap_cache(as->u, page);
				put_page(as->u, page);	/* the swap cache's reference */
			}
			put_page(as->u, page);		/* the cache's reference */
		} else {
			pthread_mutex_unlock(&as->i_pages_lock);
		}
		unlock_page(page);
		put_page(as->u, page);
	}
	free(v.pages);
	return left;
}

static void mapping_free_rcu(struct rcu_head *head)
{
	struct address_space *as = container_of(head, struct address_space, rcu);

	rcu_tsan_acquire();
	pthread_mutex_destroy(&as->i_pages_lock);
	pthread_mutex_destroy(&as->writeback_lock);
	pthread_rwlock_destroy(&as->i_mmap_rwsem);
	free(as);
}

/*
 * mapping_put - drop a reference.  The last one (no VMA maps the object and
 * no umm_file names it) writes dirty file pages back and truncates the
 * cache: nothing written through a shared mapping is lost.
 */
void mapping_put(struct address_space *as)
{
	struct umm *u = as->u;

	if (atomic_fetch_sub(&as->refcount, 1) != 1)
		return;
	/* still findable by umm_file_open, which waits for us to finish */
	if (!mapping_is_shmem(as))
		filemap_write_range(as, 0, UINT64_MAX);
	pthread_rwlock_wrlock(&as->i_mmap_rwsem);
	as->dead = true;		/* walkers that reach it from now on back off */
	pthread_rwlock_unlock(&as->i_mmap_rwsem);
	pthread_mutex_lock(&u->as_lock);
	list_del_init(&as->as_list);
	pthread_mutex_unlock(&u->as_lock);
	while (truncate_cache(as) + truncate_swap(as))
		;
	radix_free(&as->i_pages);
	if (as->fd >= 0)
		close(as->fd);
	if (as->wfd >= 0)
		close(as->wfd);
	rcu_tsan_release();
	call_rcu(&as->rcu, mapping_free_rcu);
}

/* Pages a fault may reach: shmem objects have no end; files end at EOF. */
uint64_t mapping_nr_pages(struct address_space *as)
{
	if (mapping_is_shmem(as))
		return UINT64_MAX;
	return PAGE_ALIGN((uint64_t)atomic_load(&as->size)) >> PAGE_SHIFT;
}

/* Fill a new page-cache frame from the file; the tail past EOF reads zero. */
static int read_page(struct address_space *as, struct umm_page *page, uint64_t index)
{
	char *dst = page_address(as->u, page);
	size_t done = 0;

	while (done < PAGE_SIZE) {
		ssize_t n = pread(as->fd, dst + done, PAGE_SIZE - done,
				  (off_t)((index << PAGE_SHIFT) + done));

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -EIO;
		}
		if (n == 0)
			break;
		done += (size_t)n;
	}
	if (done < PAGE_SIZE)
		memset(dst + done, 0, PAGE_SIZE - done);
	return 0;
}

/*
 * shmem_swapin - bring the shmem page at @index, which is in swap slot
 * @slot, back into the page cache.  As do_swap_page: only the caller that
 * claims the slot's cache token reads it; a racer finds it in the swap
 * cache and waits on its lock.  Once in the page cache the page leaves the
 * swap cache and the slot is free: shmem keeps no copy in swap.
 * Return: 0 (look again), -ENOMEM, -EIO (the read failed; the entry stays).
 * Context: no locks held.
 */
static int shmem_swapin(struct address_space *as, uint64_t index, uint64_t slot)
{
	struct umm *u = as->u;
	struct umm_page *page = lookup_swap_cache(u, slot);
	bool moved = false;
	int err;

	if (page) {
		lock_page(page);
	} else {
		err = swapcache_prepare(u, slot);
		if (err) {
			sched_yield();		/* being read by someone else, or gone */
			return 0;
		}
		page = alloc_page(u, -1, 0);
		if (!page) {
			swapcache_clear(u, slot);
			return -ENOMEM;
		}
		trylock_page(page);
		add_to_swap_cache(u, page, slot);
		err = swap_readpage(u, page, slot);
		if (err) {
			delete_from_swap_cache(u, page);
			put_page(u, page);
			unlock_page(page);
			put_page(u, page);
			return err;
		}
	}
	pthread_mutex_lock(&as->i_pages_lock);
	if (radix_lookup(&as->i_pages, index) == swap_radix_entry(slot) &&
	    TestPageFlag(page, PG_swapcache) && page->private == slot) {
		radix_replace(&as->i_pages, index, page);
		as->nrswapped--;
		as->nrpages++;
		get_page(page);			/* the page cache's reference */
		page->index = index;
		atomic_store_explicit(&page->mapping, (uintptr_t)as, memory_order_release);
		SetPageFlag(page, PG_swapbacked | PG_dirty);
		moved = true;
	}
	pthread_mutex_unlock(&as->i_pages_lock);
	if (moved) {
		swap_free(u, slot);		/* the page cache's claim on the slot */
		delete_from_swap_cache(u, page);
		put_page(u, page);		/* the swap cache's reference */
		if (!TestPageFlag(page, PG_lru))
			lru_cache_add(u, page);
	}
	unlock_page(page);
	put_page(u, page);
	return 0;
}

/*
 * filemap_get_page - the page at @index of @as: from the cache, or a new
 * frame (zeroed for shmem, read from the file otherwise) added to it.
 * Return: 0 and *@pagep with a reference the caller owns; -ENOMEM, -EIO.
 */
int filemap_get_page(struct address_space *as, uint64_t index, struct umm_page **pagep)
{
	struct umm *u = as->u;
	struct umm_page *page, *new = NULL;
	int err;

	for (;;) {
		pthread_mutex_lock(&as->i_pages_lock);
		page = radix_lookup(&as->i_pages, index);
		if (page && radix_is_swap(page)) {
			uint64_t slot = radix_swap_slot(page);

			pthread_mutex_unlock(&as->i_pages_lock);
			if (new)
				put_page(u, new);
			new = NULL;
			err = shmem_swapin(as, index, slot);
			if (err)
				return err;
			continue;	/* look again: the page is in the cache now */
		}
		if (page) {
			get_page(page);
			pthread_mutex_unlock(&as->i_pages_lock);
			if (new)
				put_page(u, new);
			*pagep = page;
			return 0;
		}
		if (new) {
			err = radix_insert(&as->i_pages, index, new);
			if (err) {
				pthread_mutex_unlock(&as->i_pages_lock);
				put_page(u, new);
				return err;
			}
			as->nrpages++;
			get_page(new);		/* the cache's reference */
			pthread_mutex_unlock(&as->i_pages_lock);
			/*
			 * File pages can be dropped, shmem pages swapped; with
			 * no swap, shmem pages sit on the unevictable list,
			 * where migration still finds them.
			 */
			if (mapping_is_shmem(as) && !u->swap)
				SetPageFlag(new, PG_unevictable);
			lru_cache_add(u, new);
			*pagep = new;
			return 0;
		}
		pthread_mutex_unlock(&as->i_pages_lock);
		new = alloc_page(u, -1, mapping_is_shmem(as) ? ALLOC_ZERO : 0);
		if (!new)
			return -ENOMEM;
		if (!mapping_is_shmem(as)) {
			err = read_page(as, new, index);
			if (err) {
				put_page(u, new);
				return err;
			}
		}
		new->index = index;
		atomic_store_explicit(&new->mapping, (uintptr_t)as, memory_order_relaxed);
		if (mapping_is_shmem(as))
			SetPageFlag(new, PG_swapbacked);
	}
}

/* ---- writeback ---- */

struct wb_batch {
	uint64_t first, last;
	struct umm_page **pages;
	size_t nr, cap;
};

static void collect_page(uint64_t index, void *item, void *arg)
{
	struct wb_batch *b = arg;

	if (index < b->first || index > b->last)
		return;
	if (b->nr == b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 64;
		struct umm_page **p = realloc(b->pages, cap * sizeof(*p));

		if (!p)
			return;		/* the page stays dirty for the next pass */
		b->pages = p;
		b->cap = cap;
	}
	get_page(item);
	b->pages[b->nr++] = item;
}

/*
 * write_page - write @page's bytes to the file (none past EOF).
 * Return: 0 or -EIO.  Context: page locked; takes writeback_lock.
 */
static int write_page(struct address_space *as, struct umm_page *page)
{
	uint64_t pos = page->index << PAGE_SHIFT;
	int64_t size = atomic_load(&as->size);
	const char *src = page_address(as->u, page);
	size_t len, done = 0;
	int err = 0;

	if ((int64_t)pos >= size)
		return 0;	/* wholly past EOF: nothing of it belongs to the file */
	len = (size_t)min_t(int64_t, PAGE_SIZE, size - (int64_t)pos);
	pthread_mutex_lock(&as->writeback_lock);
	while (as->wfd >= 0 && done < len) {
		ssize_t n = pwrite(as->wfd, src + done, len - done, (off_t)(pos + done));

		if (n < 0) {
			if (errno == EINTR)
				continue;
			err = -EIO;
			break;
		}
		done += (size_t)n;
	}
	pthread_mutex_unlock(&as->writeback_lock);
	return err;
}

/*
 * filemap_write_page - reclaim's writeback of one unmapped dirty page.
 * Return: 0 or -EIO.  Context: page locked, isolated, mapped nowhere.
 */
int filemap_write_page(struct umm_page *page)
{
	struct address_space *as = (struct address_space *)
		atomic_load_explicit(&page->mapping, memory_order_relaxed);

	if (!as || mapping_is_shmem(as))
		return -EIO;
	return write_page(as, page);
}

/*
 * filemap_write_range - write back the dirty pages of [first, last]: each
 * page is locked, cleaned in every PTE that maps it (page_mkclean, which
 * also collects PTE dirty bits), and written if dirty.
 * Return: 0 or -EIO (the pages that failed stay dirty).
 */
int filemap_write_range(struct address_space *as, uint64_t first, uint64_t last)
{
	struct wb_batch b = { .first = first, .last = last };
	bool writable;
	int err = 0;

	if (mapping_is_shmem(as))
		return 0;
	pthread_mutex_lock(&as->writeback_lock);
	writable = as->wfd >= 0;
	pthread_mutex_unlock(&as->writeback_lock);
	if (!writable)			/* never opened for writing: nothing can be dirty */
		return 0;
	pthread_mutex_lock(&as->i_pages_lock);
	radix_for_each(&as->i_pages, collect_page, &b);
	pthread_mutex_unlock(&as->i_pages_lock);
	for (size_t i = 0; i < b.nr; i++) {
		struct umm_page *page = b.pages[i];

		lock_page(page);
		/* clean pages are left alone: no PTE changes, no notifier traffic */
		if (TestPageFlag(page, PG_dirty) || page_dirty_in_ptes(page))
			page_mkclean(page);
		if (atomic_fetch_and(&page->flags, ~PG_dirty) & PG_dirty) {
			if (write_page(as, page)) {
				SetPageFlag(page, PG_dirty);
				err = -EIO;
			}
		}
		unlock_page(page);
		put_page(as->u, page);
	}
	free(b.pages);
	return err;
}

/* ---- the public file API ---- */

struct umm_file {
	struct address_space *as;
	bool writable;			/* this handle was opened O_RDWR */
};

struct address_space *file_mapping(struct umm_file *f)
{
	return f->as;
}

bool file_writable(struct umm_file *f)
{
	return f->writable;
}

/*
 * find_file_mapping - the machine's live object for (@dev, @ino), with a
 * reference.  One being torn down is waited for: its writeback must reach
 * the file before anyone reads the file again.
 */
static struct address_space *find_file_mapping(struct umm *u, uint64_t dev, uint64_t ino)
{
	struct address_space *as;

	for (;;) {
		bool dying = false;

		pthread_mutex_lock(&u->as_lock);
		list_for_each_entry(as, &u->as_list, as_list) {
			int ref;

			if (as->fd < 0 || as->dev != dev || as->ino != ino)
				continue;
			ref = atomic_load(&as->refcount);
			while (ref && !atomic_compare_exchange_weak(&as->refcount, &ref, ref + 1))
				;
			if (ref) {
				pthread_mutex_unlock(&u->as_lock);
				return as;
			}
			dying = true;
		}
		pthread_mutex_unlock(&u->as_lock);
		if (!dying)
			return NULL;
		sched_yield();
	}
}

int umm_file_open(struct umm *u, const char *path, int open_flags, struct umm_file **out)
{
	struct address_space *as;
	struct umm_file *f;
	struct stat st;
	int fd, acc = open_flags & O_ACCMODE;

	if (!u || !path || !out || (acc != O_RDONLY && acc != O_RDWR) ||
	    (open_flags & ~(O_ACCMODE | O_CREAT | O_TRUNC | O_CLOEXEC)) ||
	    ((open_flags & O_TRUNC) && acc != O_RDWR))
		return -EINVAL;
	/* truncate only once we know no cache of the file is live */
	fd = open(path, (open_flags & ~O_TRUNC) | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		int err = S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL;

		close(fd);
		return err;
	}
	f = calloc(1, sizeof(*f));
	if (!f) {
		close(fd);
		return -ENOMEM;
	}
	f->writable = acc == O_RDWR;
	as = find_file_mapping(u, (uint64_t)st.st_dev, (uint64_t)st.st_ino);
	if (as && (open_flags & O_TRUNC)) {
		/* umm has no truncate of a live cache: refuse rather than serve stale pages */
		mapping_put(as);
		free(f);
		close(fd);
		return -EBUSY;
	}
	if (as) {
		/* the machine already caches this file: share it */
		pthread_mutex_lock(&as->writeback_lock);
		if (f->writable && as->wfd < 0) {
			as->wfd = fd;
			fd = -1;
		}
		pthread_mutex_unlock(&as->writeback_lock);
		if (fd >= 0)
			close(fd);
	} else {
		if ((open_flags & O_TRUNC) && ftruncate(fd, 0) < 0) {
			int err = -errno;

			free(f);
			close(fd);
			return err;
		}
		if (open_flags & O_TRUNC)
			st.st_size = 0;
		as = mapping_alloc(u, fd);
		if (!as) {
			free(f);
			close(fd);
			return -ENOMEM;
		}
		as->dev = (uint64_t)st.st_dev;
		as->ino = (uint64_t)st.st_ino;
		atomic_store(&as->size, (int64_t)st.st_size);
		if (f->writable)
			as->wfd = dup(fd);
	}
	f->as = as;
	*out = f;
	return 0;
}

void umm_file_put(struct umm_file *f)
{
	if (!f)
		return;
	mapping_put(f->as);
	free(f);
}

int64_t umm_file_size(struct umm_file *f)
{
	return f ? atomic_load(&f->as->size) : -EINVAL;
}
