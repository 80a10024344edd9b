// SPDX-License-Identifier: MIT
/*
 * filemap.c - the page cache: address_space objects holding pages by
 * index.  Shared anonymous memory (a shmem object per MAP_SHARED|
 * MAP_ANONYMOUS mapping, inherited across fork) uses it today; files
 * mapped from the host come with the file-mapping work.
 *
 * The index is a radix tree of 64-way nodes whose height grows with the
 * largest index, protected by the object's i_pages_lock.
 */
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

void *radix_lookup(struct radix_root *r, uint64_t index)
{
	struct radix_node *n = r->node;

	if (!n || index > radix_max(r->height))
		return NULL;
	for (unsigned int h = r->height; h > 1; h--) {
		n = n->slots[(index >> ((h - 1) * RADIX_SHIFT)) & (RADIX_SLOTS - 1)];
		if (!n)
			return NULL;
	}
	return n->slots[index & (RADIX_SLOTS - 1)];
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

/* ---- shmem objects ---- */

struct address_space *shmem_create(struct umm *u)
{
	struct address_space *as = calloc(1, sizeof(*as));

	if (!as)
		return NULL;
	as->u = u;
	atomic_init(&as->refcount, 1);
	pthread_mutex_init(&as->i_pages_lock, NULL);
	pthread_mutex_lock(&u->as_lock);
	list_add_tail(&as->as_list, &u->as_list);
	pthread_mutex_unlock(&u->as_lock);
	return as;
}

void mapping_get(struct address_space *as)
{
	atomic_fetch_add(&as->refcount, 1);
}

static void release_cached_page(uint64_t index, void *item, void *arg)
{
	struct address_space *as = arg;
	struct umm_page *page = item;

	atomic_store_explicit(&page->mapping, 0, memory_order_relaxed);
	put_page(as->u, page);
}

/* Drop a reference; the last one truncates the cache (shmem evict_inode). */
void mapping_put(struct address_space *as)
{
	struct umm *u = as->u;

	if (atomic_fetch_sub(&as->refcount, 1) != 1)
		return;
	pthread_mutex_lock(&u->as_lock);
	list_del_init(&as->as_list);
	pthread_mutex_unlock(&u->as_lock);
	radix_for_each(&as->i_pages, release_cached_page, as);
	radix_free(&as->i_pages);
	pthread_mutex_destroy(&as->i_pages_lock);
	free(as);
}

/*
 * shmem_get_page - the page at @index of a shmem object, created zeroed if
 * absent.  Return: 0 and *@pagep with a reference the caller owns, or
 * -ENOMEM.
 */
int shmem_get_page(struct address_space *as, uint64_t index, struct umm_page **pagep)
{
	struct umm *u = as->u;
	struct umm_page *page, *new = NULL;
	int err;

	for (;;) {
		pthread_mutex_lock(&as->i_pages_lock);
		page = radix_lookup(&as->i_pages, index);
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
			*pagep = new;
			return 0;
		}
		pthread_mutex_unlock(&as->i_pages_lock);
		new = alloc_page(u, -1, ALLOC_ZERO);
		if (!new)
			return -ENOMEM;
		new->index = index;
		atomic_store_explicit(&new->mapping, (uintptr_t)as, memory_order_relaxed);
		SetPageFlag(new, PG_swapbacked);
	}
}
