/* SPDX-License-Identifier: MIT */
/*
 * rbtree.h - intrusive red-black trees, used the way the kernel's
 * <linux/rbtree.h> is: the caller searches and links, the tree rebalances.
 *
 * Augmented trees keep a per-node value computed from the node and its two
 * subtrees (an interval tree's max `last`, a free-gap size, ...).  The tree
 * tells the user, through struct rb_augment_callbacks, whenever the shape
 * changes under a node, so the value stays correct across rebalancing.
 *
 * No locking here: every function expects the caller to exclude concurrent
 * writers of the same tree (and readers, which see no ordering guarantees).
 */
#ifndef UMM_RBTREE_H
#define UMM_RBTREE_H

#include <stddef.h>

struct rb_node {
	struct rb_node *parent, *left, *right;
	int red;
};
struct rb_root { struct rb_node *node; };

#define RB_ROOT ((struct rb_root){ NULL })
#define rb_entry(ptr, type, member) ((type *)((char *)(ptr) - offsetof(type, member)))

static inline void rb_link_node(struct rb_node *node, struct rb_node *parent, struct rb_node **link)
{
	node->parent = parent;
	node->left = node->right = NULL;
	node->red = 1;
	*link = node;
}
void rb_insert_color(struct rb_node *node, struct rb_root *root);
void rb_erase(struct rb_node *node, struct rb_root *root);
struct rb_node *rb_first(const struct rb_root *root);
struct rb_node *rb_last(const struct rb_root *root);
struct rb_node *rb_next(const struct rb_node *node);
struct rb_node *rb_prev(const struct rb_node *node);
void rb_replace_node(struct rb_node *victim, struct rb_node *new, struct rb_root *root);

/*
 * struct rb_augment_callbacks - how an augmented tree keeps its values.
 *
 * @propagate: recompute the value of @node from @node and its children, then
 *	of its parent, and so on up to but not including @stop (NULL: up to and
 *	including the root).  It may stop early at the first node whose value
 *	comes out unchanged: the tree only calls it when every node below is
 *	already correct and every node above was correct for @node's old value.
 * @copy: @new takes over @old's place with the same subtree below it; copy
 *	@old's value into @new (@old is leaving the tree).
 * @rotate: a rotation made @new (a child of @old) the parent of @old, in
 *	@old's former place.  @new's subtree is now exactly @old's former
 *	subtree, so new->value = old->value; then recompute @old's value from
 *	its new children (which are correct).
 */
struct rb_augment_callbacks {
	void (*propagate)(struct rb_node *node, struct rb_node *stop);
	void (*copy)(struct rb_node *old, struct rb_node *new);
	void (*rotate)(struct rb_node *old, struct rb_node *new);
};

/*
 * rb_insert_augmented - rebalance after linking @node, keeping values right.
 *
 * The caller searches, sets @node's own value to that of a one-node subtree
 * (its children are NULL), and links it with rb_link_node().  Updating the
 * ancestors' values on the way down, as the kernel's users do, is allowed but
 * not needed: this calls aug->propagate(parent, NULL) before rebalancing,
 * which stops at once if the ancestors are already right.  Rotations then
 * report through aug->rotate().
 */
void rb_insert_augmented(struct rb_node *node, struct rb_root *root,
			 const struct rb_augment_callbacks *aug);

/*
 * rb_erase_augmented - unlink @node and rebalance, keeping values right.
 *
 * Every remaining node's value is correct on return.  The values are
 * repaired (copy + propagate from the lowest changed node, O(log n)) before
 * rebalancing, whose rotations then report through aug->rotate().
 */
void rb_erase_augmented(struct rb_node *node, struct rb_root *root,
			const struct rb_augment_callbacks *aug);

#endif /* UMM_RBTREE_H */
