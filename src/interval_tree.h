/* SPDX-License-Identifier: MIT */
/*
 * interval_tree.h - intrusive interval trees over closed ranges [start, last]
 * (uint64_t, inclusive; umm uses page-offset units), as the kernel's
 * <linux/interval_tree.h>: the anon_vma_chain tree of an anon_vma and the
 * i_mmap tree of a file are both one of these.
 *
 * Embed a struct interval_tree_node in your struct, fill in start and last,
 * insert it, and get your struct back with interval_tree_entry() (container_of)
 * from what the iterators return.  Any number of structs, of any types, can
 * embed a node; one struct can sit in several trees through several nodes.
 *
 * The tree is a red-black tree ordered by (start, last); nodes with equal
 * (start, last) - identical intervals are allowed - keep their insertion order.
 * Each node also holds __subtree_last, the largest `last` in its subtree,
 * which lets a stabbing query skip every subtree that ends before it starts:
 * finding all k nodes that overlap a range costs O(log n + k).
 *
 * Context: no locking inside.  The caller serializes every insert/remove on a
 * tree against each other and against iteration (in umm: the root anon_vma's
 * rwsem, the mapping's i_mmap_rwsem - written to change, read to walk);
 * iteration alone may run concurrently with other iteration.  A node's start
 * and last must not change while it is in a tree: remove it, change them,
 * insert it again.
 */
#ifndef UMM_INTERVAL_TREE_H
#define UMM_INTERVAL_TREE_H

#include <stdint.h>

#include "rbtree.h"

struct interval_tree_node {
	struct rb_node rb;
	uint64_t start;		/* first unit covered */
	uint64_t last;		/* last unit covered (inclusive), >= start */
	uint64_t __subtree_last;	/* max last in this subtree; tree-private */
};

#define interval_tree_entry(ptr, type, member) rb_entry(ptr, type, member)

static inline int interval_tree_empty(const struct rb_root *root)
{
	return root->node == NULL;
}

/*
 * interval_tree_insert - add @n, whose start and last the caller has set
 * (start <= last), to @root.  Never fails; @n must not already be in a tree.
 */
void interval_tree_insert(struct interval_tree_node *n, struct rb_root *root);

/* interval_tree_remove - take @n, which is in @root, out of it. */
void interval_tree_remove(struct interval_tree_node *n, struct rb_root *root);

/*
 * interval_tree_iter_first - the first node of @root, in (start, last) order,
 * that overlaps [@start, @last] (i.e. n->start <= @last && @start <= n->last).
 *
 * Return: that node, or NULL if none overlaps.
 */
struct interval_tree_node *interval_tree_iter_first(struct rb_root *root,
						    uint64_t start, uint64_t last);

/*
 * interval_tree_iter_next - the node after @n, in (start, last) order, that
 * overlaps [@start, @last]; @n came from iter_first/iter_next with the same
 * range.  The tree must not change between the calls.
 *
 * Return: that node, or NULL when there are no more.
 */
struct interval_tree_node *interval_tree_iter_next(struct interval_tree_node *n,
						   uint64_t start, uint64_t last);

/* Walk every node of @root overlapping [@start, @last]; @n is the cursor. */
#define interval_tree_foreach(n, root, start, last)				\
	for ((n) = interval_tree_iter_first((root), (start), (last)); (n);	\
	     (n) = interval_tree_iter_next((n), (start), (last)))

#endif /* UMM_INTERVAL_TREE_H */
