// SPDX-License-Identifier: MIT
/*
 * rbtree.c - red-black tree rebalancing (CLRS, with parent pointers).
 *
 * One implementation serves plain and augmented trees: the plain entry
 * points pass aug = NULL.  For augmented trees the invariant is kept in two
 * places only:
 *  - rotate() reports every rotation through aug->rotate(), which is all the
 *    rebalancing loops (insert fixup, erase fixup) ever change in the shape;
 *  - the splice in rb_erase_augmented(), and the new leaf in
 *    rb_insert_augmented(), change the set of nodes under a path, so the
 *    values along that path are recomputed with aug->propagate() before the
 *    fixup loop starts rotating.
 * Recolouring never touches the values.
 */
#include "rbtree.h"

static void rotate(struct rb_root *root, struct rb_node *x, int left,
		   const struct rb_augment_callbacks *aug)
{
	/* left: x's right child y takes x's place, x becomes y's left child */
	struct rb_node *y = left ? x->right : x->left;
	struct rb_node *mid = left ? y->left : y->right;

	if (left) {
		x->right = mid;
		y->left = x;
	} else {
		x->left = mid;
		y->right = x;
	}
	if (mid)
		mid->parent = x;
	y->parent = x->parent;
	if (!x->parent)
		root->node = y;
	else if (x->parent->left == x)
		x->parent->left = y;
	else
		x->parent->right = y;
	x->parent = y;
	if (aug)
		aug->rotate(x, y);
}

static void insert_fixup(struct rb_node *z, struct rb_root *root,
			 const struct rb_augment_callbacks *aug)
{
	while (z->parent && z->parent->red) {
		struct rb_node *p = z->parent, *g = p->parent;
		int p_is_left = g->left == p;
		struct rb_node *uncle = p_is_left ? g->right : g->left;

		if (uncle && uncle->red) {
			p->red = 0;
			uncle->red = 0;
			g->red = 1;
			z = g;
			continue;
		}
		if (p_is_left ? z == p->right : z == p->left) {
			z = p;
			rotate(root, z, p_is_left, aug);
			p = z->parent;
		}
		p->red = 0;
		g->red = 1;
		rotate(root, g, !p_is_left, aug);
	}
	root->node->red = 0;
}

void rb_insert_color(struct rb_node *z, struct rb_root *root)
{
	insert_fixup(z, root, NULL);
}

void rb_insert_augmented(struct rb_node *z, struct rb_root *root,
			 const struct rb_augment_callbacks *aug)
{
	/* z's own value is the caller's; its ancestors gained z below them. */
	if (z->parent)
		aug->propagate(z->parent, NULL);
	insert_fixup(z, root, aug);
}

static void transplant(struct rb_root *root, struct rb_node *u, struct rb_node *v)
{
	if (!u->parent)
		root->node = v;
	else if (u == u->parent->left)
		u->parent->left = v;
	else
		u->parent->right = v;
	if (v)
		v->parent = u->parent;
}

static void erase_fixup(struct rb_root *root, struct rb_node *x, struct rb_node *xp,
			const struct rb_augment_callbacks *aug)
{
	while (x != root->node && (!x || !x->red)) {
		int x_is_left = xp->left == x;
		struct rb_node *w = x_is_left ? xp->right : xp->left;

		if (w->red) {
			w->red = 0;
			xp->red = 1;
			rotate(root, xp, x_is_left, aug);
			w = x_is_left ? xp->right : xp->left;
		}
		if ((!w->left || !w->left->red) && (!w->right || !w->right->red)) {
			w->red = 1;
			x = xp;
			xp = x->parent;
			continue;
		}
		if (x_is_left ? (!w->right || !w->right->red) : (!w->left || !w->left->red)) {
			struct rb_node *c = x_is_left ? w->left : w->right;

			c->red = 0;
			w->red = 1;
			rotate(root, w, !x_is_left, aug);
			w = x_is_left ? xp->right : xp->left;
		}
		w->red = xp->red;
		xp->red = 0;
		if (x_is_left ? w->right : w->left)
			(x_is_left ? w->right : w->left)->red = 0;
		rotate(root, xp, x_is_left, aug);
		x = root->node;
		xp = NULL;
	}
	if (x)
		x->red = 0;
}

/*
 * Unlink z.  x is the node that moved into the removed black slot (maybe
 * NULL) and xp its parent, for the fixup.  With aug, the values are
 * repaired before the fixup:
 *  - z had at most one child: z's parent lost z, propagate from there;
 *  - z's successor y was its right child: y took z's place and z's left
 *    subtree, so y starts from z's value and is recomputed upward;
 *  - y was deeper: y's old parent lost y, recompute up to (not including)
 *    y in z's place, then y itself (holding z's value) upward.
 */
static void erase(struct rb_node *z, struct rb_root *root,
		  const struct rb_augment_callbacks *aug)
{
	struct rb_node *x, *xp;
	int removed_red = z->red;

	if (!z->left || !z->right) {
		x = z->left ? z->left : z->right;
		xp = z->parent;
		transplant(root, z, x);
		if (aug && xp)
			aug->propagate(xp, NULL);
	} else {
		struct rb_node *y = z->right;

		while (y->left)
			y = y->left;
		removed_red = y->red;
		x = y->right;
		if (y->parent == z) {
			xp = y;
		} else {
			xp = y->parent;
			transplant(root, y, y->right);
			y->right = z->right;
			y->right->parent = y;
		}
		transplant(root, z, y);
		y->left = z->left;
		y->left->parent = y;
		y->red = z->red;
		if (aug) {
			aug->copy(z, y);
			if (xp != y)
				aug->propagate(xp, y);
			aug->propagate(y, NULL);
		}
	}
	if (!removed_red)
		erase_fixup(root, x, xp, aug);
}

void rb_erase(struct rb_node *z, struct rb_root *root)
{
	erase(z, root, NULL);
}

void rb_erase_augmented(struct rb_node *z, struct rb_root *root,
			const struct rb_augment_callbacks *aug)
{
	erase(z, root, aug);
}

struct rb_node *rb_first(const struct rb_root *root)
{
	struct rb_node *n = root->node;

	if (n)
		while (n->left)
			n = n->left;
	return n;
}

struct rb_node *rb_last(const struct rb_root *root)
{
	struct rb_node *n = root->node;

	if (n)
		while (n->right)
			n = n->right;
	return n;
}

struct rb_node *rb_next(const struct rb_node *n)
{
	if (n->right) {
		n = n->right;
		while (n->left)
			n = n->left;
		return (struct rb_node *)n;
	}
	while (n->parent && n == n->parent->right)
		n = n->parent;
	return n->parent;
}

struct rb_node *rb_prev(const struct rb_node *n)
{
	if (n->left) {
		n = n->left;
		while (n->right)
			n = n->right;
		return (struct rb_node *)n;
	}
	while (n->parent && n == n->parent->left)
		n = n->parent;
	return n->parent;
}

/* rb_replace_node - @new takes @victim's place, colour and children. */
void rb_replace_node(struct rb_node *victim, struct rb_node *new, struct rb_root *root)
{
	struct rb_node *parent = victim->parent;

	*new = *victim;
	if (victim->left)
		victim->left->parent = new;
	if (victim->right)
		victim->right->parent = new;
	if (!parent)
		root->node = new;
	else if (parent->left == victim)
		parent->left = new;
	else
		parent->right = new;
}
