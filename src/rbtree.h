/* SPDX-License-Identifier: MIT */
/*
 * rbtree.h - intrusive red-black trees, used the way the kernel's
 * <linux/rbtree.h> is: the caller searches and links, the tree rebalances.
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

#endif /* UMM_RBTREE_H */
