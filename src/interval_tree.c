// SPDX-License-Identifier: MIT
/*
 * interval_tree.c - red-black interval trees: struct interval_tree_node kept
 * in (start, last) order, each node augmented with __subtree_last, the max
 * `last` below it (itself included).
 *
 * The augmentation is kept by rbtree.c's augmented entry points through the
 * three callbacks below; this file only orders, recomputes and searches.
 */
#include "interval_tree.h"

static inline struct interval_tree_node *itn(struct rb_node *rb)
{
	return rb_entry(rb, struct interval_tree_node, rb);
}

/* The max `last` over @n and its children's subtrees. */
static uint64_t subtree_last(struct interval_tree_node *n)
{
	uint64_t max = n->last;

	if (n->rb.left && itn(n->rb.left)->__subtree_last > max)
		max = itn(n->rb.left)->__subtree_last;
	if (n->rb.right && itn(n->rb.right)->__subtree_last > max)
		max = itn(n->rb.right)->__subtree_last;
	return max;
}

static void itree_propagate(struct rb_node *rb, struct rb_node *stop)
{
	while (rb != stop) {
		struct interval_tree_node *n = itn(rb);
		uint64_t max = subtree_last(n);

		if (n->__subtree_last == max)
			break;
		n->__subtree_last = max;
		rb = rb->parent;
	}
}

static void itree_copy(struct rb_node *old, struct rb_node *new)
{
	itn(new)->__subtree_last = itn(old)->__subtree_last;
}

static void itree_rotate(struct rb_node *old, struct rb_node *new)
{
	itn(new)->__subtree_last = itn(old)->__subtree_last;
	itn(old)->__subtree_last = subtree_last(itn(old));
}

static const struct rb_augment_callbacks itree_augment = {
	.propagate = itree_propagate,
	.copy = itree_copy,
	.rotate = itree_rotate,
};

void interval_tree_insert(struct interval_tree_node *n, struct rb_root *root)
{
	struct rb_node **link = &root->node, *parent = NULL;

	/* Equal keys go right: identical intervals stay in insertion order. */
	while (*link) {
		struct interval_tree_node *cur = itn(*link);

		parent = *link;
		if (n->start < cur->start || (n->start == cur->start && n->last < cur->last))
			link = &parent->left;
		else
			link = &parent->right;
	}
	n->__subtree_last = n->last;
	rb_link_node(&n->rb, parent, link);
	rb_insert_augmented(&n->rb, root, &itree_augment);
}

void interval_tree_remove(struct interval_tree_node *n, struct rb_root *root)
{
	rb_erase_augmented(&n->rb, root, &itree_augment);
}

/*
 * The leftmost node under @n (inclusive) overlapping [start, last], given
 * n->__subtree_last >= start.
 *
 * Descend left whenever the left subtree reaches start: its leftmost overlap,
 * if any, comes first.  That never needs undoing: every subtree entered
 * reaches start, so the descent only fails at a node that starts after
 * last - and then so does every node after it in order, not only those here.
 * Hence NULL means "no overlap anywhere after this point", which is what
 * interval_tree_iter_next() relies on.
 */
static struct interval_tree_node *leftmost_overlap(struct interval_tree_node *n,
						   uint64_t start, uint64_t last)
{
	for (;;) {
		struct rb_node *l = n->rb.left, *r = n->rb.right;

		if (l && itn(l)->__subtree_last >= start) {
			n = itn(l);
			continue;
		}
		if (n->start > last)
			return NULL;
		if (n->last >= start)
			return n;
		/* n and its left subtree end before start: the right reaches it */
		if (!r || itn(r)->__subtree_last < start)
			return NULL;	/* unreachable while the values are right */
		n = itn(r);
	}
}

struct interval_tree_node *interval_tree_iter_first(struct rb_root *root,
						    uint64_t start, uint64_t last)
{
	struct interval_tree_node *top;

	if (!root->node)
		return NULL;
	top = itn(root->node);
	if (top->__subtree_last < start)
		return NULL;
	return leftmost_overlap(top, start, last);
}

/*
 * In-order after @n: first @n's right subtree, then each ancestor reached
 * from its left child followed by that ancestor's right subtree.  Subtrees
 * that end before start are skipped whole; the first node that starts after
 * last ends the walk.
 */
struct interval_tree_node *interval_tree_iter_next(struct interval_tree_node *n,
						   uint64_t start, uint64_t last)
{
	struct rb_node *rb = &n->rb;

	for (;;) {
		struct rb_node *r = rb->right, *p;

		if (r && itn(r)->__subtree_last >= start)
			return leftmost_overlap(itn(r), start, last);
		/* climb while coming up from a right child */
		while ((p = rb->parent) && p->right == rb)
			rb = p;
		if (!p)
			return NULL;
		rb = p;
		n = itn(rb);
		if (n->start > last)
			return NULL;
		if (n->last >= start)
			return n;
	}
}
