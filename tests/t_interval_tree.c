// SPDX-License-Identifier: MIT
/*
 * t_interval_tree.c - src/interval_tree.c and the rbtree.c it rests on.
 *
 * Fixed cases (empty, single, nested and identical intervals, the ends of
 * the uint64_t range, nodes embedded in two struct types), then randomized
 * differential runs against a brute-force array, checking after every
 * operation the red-black shape, the in-order sequence, every node's
 * __subtree_last, and the iterators' answer for random ranges.  The plain
 * rb_insert_color/rb_erase, and an augmented tree of a different kind
 * (subtree sizes), get the same treatment.
 *
 * Seeded: UMM_SEED=... replays a run.  UMM_TEST_SHORT=1 / UMM_TEST_LONG=1.
 */
#include "interval_tree.h"

#include "tap.h"

static uint64_t seed;

/* ---- shape checks shared by every tree ---- */

/* Black height of the subtree at @n, or -1 with *why set. */
static int rb_black_height(const struct rb_node *n, const struct rb_node *parent,
			   const char **why)
{
	int lh, rh;

	if (!n)
		return 1;
	if (n->parent != parent) {
		*why = "parent pointer does not point at the parent";
		return -1;
	}
	if (n->red && parent && parent->red) {
		*why = "red node with a red parent";
		return -1;
	}
	lh = rb_black_height(n->left, n, why);
	if (lh < 0)
		return -1;
	rh = rb_black_height(n->right, n, why);
	if (rh < 0)
		return -1;
	if (lh != rh) {
		*why = "black heights of the two subtrees differ";
		return -1;
	}
	return lh + !n->red;
}

static bool rb_valid(const struct rb_root *root)
{
	const char *why = NULL;

	if (root->node && root->node->red)
		why = "root is red";
	else if (rb_black_height(root->node, NULL, &why) >= 0)
		return true;
	TAP_DIAG("red-black check: %s", why);
	return false;
}

/* ---- interval tree items and the brute-force model ---- */

/* The node sits at a non-zero offset, as in the lead's structs. */
struct item {
	unsigned int seq;		/* insertion order, for identical intervals */
	bool in_tree;
	struct interval_tree_node it;
};

static struct item *item_of(struct interval_tree_node *n)
{
	return interval_tree_entry(n, struct item, it);
}

/* (start, last, seq): the order the tree must keep. */
static int item_cmp(const struct item *a, const struct item *b)
{
	if (a->it.start != b->it.start)
		return a->it.start < b->it.start ? -1 : 1;
	if (a->it.last != b->it.last)
		return a->it.last < b->it.last ? -1 : 1;
	if (a->seq != b->seq)
		return a->seq < b->seq ? -1 : 1;
	return 0;
}

static int item_pcmp(const void *a, const void *b)
{
	return item_cmp(*(struct item *const *)a, *(struct item *const *)b);
}

static bool overlaps(const struct interval_tree_node *n, uint64_t start, uint64_t last)
{
	return n->start <= last && start <= n->last;
}

/* Every node's __subtree_last against a recomputation; *max gets the subtree's. */
static bool subtree_last_ok(struct rb_node *rb, uint64_t *max)
{
	struct interval_tree_node *n;
	uint64_t m, lm = 0, rm = 0;

	if (!rb)
		return true;
	n = rb_entry(rb, struct interval_tree_node, rb);
	if (!subtree_last_ok(rb->left, &lm) || !subtree_last_ok(rb->right, &rm))
		return false;
	m = n->last;
	if (rb->left && lm > m)
		m = lm;
	if (rb->right && rm > m)
		m = rm;
	if (n->__subtree_last != m) {
		TAP_DIAG("node [%" PRIu64 ",%" PRIu64 "]: __subtree_last %" PRIu64 ", subtree max %" PRIu64,
			 n->start, n->last, n->__subtree_last, m);
		return false;
	}
	*max = m;
	return true;
}

/* Shape, in-order sequence (sorted, exactly the model's) and augmentation. */
static bool itree_valid(struct rb_root *root, struct item **model, size_t nr_model,
			struct item **scratch)
{
	size_t n = 0, i;
	uint64_t max;

	if (!rb_valid(root))
		return false;
	for (struct rb_node *rb = rb_first(root); rb; rb = rb_next(rb)) {
		if (n == nr_model) {
			TAP_DIAG("in-order walk longer than the model's %zu", nr_model);
			return false;
		}
		scratch[n++] = item_of(rb_entry(rb, struct interval_tree_node, rb));
	}
	if (n != nr_model) {
		TAP_DIAG("in-order walk has %zu nodes, model %zu", n, nr_model);
		return false;
	}
	for (i = 0; i < n; i++) {
		if (!scratch[i]->in_tree) {
			TAP_DIAG("walk reached a node the model says was removed");
			return false;
		}
		if (i && item_cmp(scratch[i - 1], scratch[i]) >= 0) {
			TAP_DIAG("in-order walk out of order at %zu", i);
			return false;
		}
	}
	return subtree_last_ok(root->node, &max);
}

/* The iterators' answer for [start, last] is the model's, in order. */
static bool query_ok(struct rb_root *root, struct item **model, size_t nr_model,
		     struct item **scratch, uint64_t start, uint64_t last)
{
	struct interval_tree_node *n;
	size_t want = 0, got = 0;

	for (size_t i = 0; i < nr_model; i++)
		if (overlaps(&model[i]->it, start, last))
			scratch[want++] = model[i];
	qsort(scratch, want, sizeof(*scratch), item_pcmp);
	interval_tree_foreach(n, root, start, last) {
		if (got == want || item_of(n) != scratch[got]) {
			TAP_DIAG("query [%" PRIu64 ",%" PRIu64 "]: answer %zu is [%" PRIu64 ",%" PRIu64 "]#%u, expected %s",
				 start, last, got, n->start, n->last, item_of(n)->seq,
				 got == want ? "none" : "another");
			return false;
		}
		got++;
	}
	if (got != want) {
		TAP_DIAG("query [%" PRIu64 ",%" PRIu64 "]: %zu answers, expected %zu",
			 start, last, got, want);
		return false;
	}
	return true;
}

/* Collect the answer to [start, last] as item seqs, for the fixed cases. */
static size_t query_seqs(struct rb_root *root, uint64_t start, uint64_t last,
			 unsigned int *out, size_t max)
{
	struct interval_tree_node *n;
	size_t k = 0;

	interval_tree_foreach(n, root, start, last)
		if (k < max)
			out[k++] = item_of(n)->seq;
		else
			return max + 1;
	return k;
}

static void item_init(struct item *it, unsigned int seq, uint64_t start, uint64_t last)
{
	memset(it, 0, sizeof(*it));
	it->seq = seq;
	it->it.start = start;
	it->it.last = last;
}

/* ---- fixed cases ---- */

static bool test_empty(void)
{
	struct rb_root root = RB_ROOT;

	ASSERT_TRUE(interval_tree_empty(&root));
	ASSERT_TRUE(interval_tree_iter_first(&root, 0, UINT64_MAX) == NULL);
	ASSERT_TRUE(interval_tree_iter_first(&root, 5, 5) == NULL);
	ASSERT_TRUE(rb_valid(&root));
	return true;
}

static bool test_single(void)
{
	struct rb_root root = RB_ROOT;
	struct item a;
	struct interval_tree_node *n;

	item_init(&a, 1, 5, 10);
	interval_tree_insert(&a.it, &root);
	ASSERT_FALSE(interval_tree_empty(&root));
	ASSERT_EQ(a.it.__subtree_last, 10);
	ASSERT_TRUE(rb_valid(&root));

	ASSERT_TRUE(interval_tree_iter_first(&root, 0, 4) == NULL);
	ASSERT_TRUE(interval_tree_iter_first(&root, 11, 20) == NULL);
	ASSERT_TRUE(interval_tree_iter_first(&root, 11, UINT64_MAX) == NULL);
	static const uint64_t hits[][2] = {
		{ 0, 5 }, { 10, 20 }, { 7, 7 }, { 5, 5 }, { 10, 10 }, { 0, UINT64_MAX }, { 6, 9 },
	};
	for (size_t i = 0; i < sizeof(hits) / sizeof(hits[0]); i++) {
		n = interval_tree_iter_first(&root, hits[i][0], hits[i][1]);
		ASSERT_TRUE(n == &a.it);
		ASSERT_TRUE(interval_tree_iter_next(n, hits[i][0], hits[i][1]) == NULL);
	}

	interval_tree_remove(&a.it, &root);
	ASSERT_TRUE(interval_tree_empty(&root));
	ASSERT_TRUE(interval_tree_iter_first(&root, 0, UINT64_MAX) == NULL);
	return true;
}

/*
 *   0         1         2
 *   01234567890123456789012
 *   AAAAAAAAAAAAAAAAAAAA       1 [0,19]
 *     BBBBBBBBBB               2 [2,11]
 *       CC                     3 [4,5]
 *       CC                     4 [4,5]   identical to 3
 *       CC                     5 [4,5]   identical to 3
 *       C                      6 [4,4]   same start, shorter
 *                 F            7 [14,14]
 *                      GGG     8 [20,22]
 */
static bool test_nested_identical(void)
{
	static const uint64_t iv[][2] = {
		{ 0, 19 }, { 2, 11 }, { 4, 5 }, { 4, 5 }, { 4, 5 }, { 4, 4 }, { 14, 14 }, { 20, 22 },
	};
	enum { N = sizeof(iv) / sizeof(iv[0]) };
	struct item items[N], *model[N], *scratch[N];
	struct rb_root root = RB_ROOT;
	unsigned int got[N + 1];
	/* insert in a scrambled order; seq is still the position in iv[] */
	static const int order[N] = { 4, 0, 7, 2, 6, 1, 5, 3 };

	for (int i = 0; i < N; i++)
		item_init(&items[i], i + 1, iv[i][0], iv[i][1]);
	for (int i = 0; i < N; i++) {
		/* identical intervals 3,4,5 must come out in insertion order */
		int k = order[i];

		items[k].seq = 100 + i;
		interval_tree_insert(&items[k].it, &root);
		items[k].in_tree = true;
	}
	for (int i = 0; i < N; i++)
		model[i] = &items[i];
	ASSERT_TRUE(itree_valid(&root, model, N, scratch));
	ASSERT_EQ(root.node ? rb_entry(root.node, struct interval_tree_node, rb)->__subtree_last : 0, 22);

	/* the three identical [4,5]: inserted as items[2] (i=3), [3] (i=7), [4] (i=0) */
	ASSERT_EQ(query_seqs(&root, 4, 4, got, N), 6);
	ASSERT_EQ(got[0], items[0].seq);
	ASSERT_EQ(got[1], items[1].seq);
	ASSERT_EQ(got[2], items[5].seq);	/* [4,4] before [4,5] */
	ASSERT_EQ(got[3], items[4].seq);	/* then the [4,5]s by insertion */
	ASSERT_EQ(got[4], items[2].seq);
	ASSERT_EQ(got[5], items[3].seq);

	ASSERT_EQ(query_seqs(&root, 12, 13, got, N), 1);
	ASSERT_EQ(got[0], items[0].seq);
	ASSERT_EQ(query_seqs(&root, 14, 14, got, N), 2);
	ASSERT_EQ(got[1], items[6].seq);
	ASSERT_EQ(query_seqs(&root, 19, 20, got, N), 2);
	ASSERT_EQ(got[0], items[0].seq);
	ASSERT_EQ(got[1], items[7].seq);
	ASSERT_EQ(query_seqs(&root, 23, UINT64_MAX, got, N), 0);
	ASSERT_EQ(query_seqs(&root, 0, UINT64_MAX, got, N), N);
	ASSERT_EQ(query_seqs(&root, 6, 11, got, N), 2);

	/* take the middle one of the identical three out, then the outermost */
	interval_tree_remove(&items[2].it, &root);
	items[2].in_tree = false;
	model[2] = model[N - 1];
	ASSERT_TRUE(itree_valid(&root, model, N - 1, scratch));
	ASSERT_EQ(query_seqs(&root, 5, 5, got, N), 4);
	ASSERT_EQ(got[2], items[4].seq);
	ASSERT_EQ(got[3], items[3].seq);

	interval_tree_remove(&items[0].it, &root);
	items[0].in_tree = false;
	model[0] = model[N - 2];
	ASSERT_TRUE(itree_valid(&root, model, N - 2, scratch));
	ASSERT_EQ(query_seqs(&root, 12, 13, got, N), 0);
	ASSERT_EQ(query_seqs(&root, 0, 3, got, N), 1);
	ASSERT_EQ(got[0], items[1].seq);
	return true;
}

static bool test_range_ends(void)
{
	static const uint64_t M = UINT64_MAX;
	struct item a, b, c, d;
	struct rb_root root = RB_ROOT;
	unsigned int got[8];

	item_init(&a, 1, 0, M);
	item_init(&b, 2, M, M);
	item_init(&c, 3, 0, 0);
	item_init(&d, 4, M - 1, M);
	interval_tree_insert(&b.it, &root);
	interval_tree_insert(&c.it, &root);
	interval_tree_insert(&d.it, &root);
	interval_tree_insert(&a.it, &root);
	ASSERT_TRUE(rb_valid(&root));

	ASSERT_EQ(query_seqs(&root, M, M, got, 8), 3);
	ASSERT_EQ(got[0], 1);
	ASSERT_EQ(got[1], 4);
	ASSERT_EQ(got[2], 2);
	ASSERT_EQ(query_seqs(&root, 0, 0, got, 8), 2);
	ASSERT_EQ(got[0], 3);
	ASSERT_EQ(got[1], 1);
	ASSERT_EQ(query_seqs(&root, 1, M - 2, got, 8), 1);
	ASSERT_EQ(query_seqs(&root, 0, M, got, 8), 4);

	interval_tree_remove(&a.it, &root);
	ASSERT_EQ(query_seqs(&root, 1, M - 2, got, 8), 0);
	ASSERT_EQ(query_seqs(&root, M - 1, M - 1, got, 8), 1);
	ASSERT_EQ(got[0], 4);
	interval_tree_remove(&d.it, &root);
	interval_tree_remove(&b.it, &root);
	interval_tree_remove(&c.it, &root);
	ASSERT_TRUE(interval_tree_empty(&root));
	return true;
}

/*
 * The lead's two users: an anon_vma_chain-like struct with its node first,
 * and a vma-like struct with its node further in and in two trees at once.
 */
struct chain_like {
	struct interval_tree_node rb;
	int id;
};
struct vma_like {
	uint64_t vm_start, vm_end;
	struct interval_tree_node shared;	/* a file's i_mmap tree */
	char pad[24];
	struct interval_tree_node other;	/* some second tree */
	int id;
};

static bool test_two_struct_types(void)
{
	struct rb_root chains = RB_ROOT, i_mmap = RB_ROOT, other = RB_ROOT;
	struct chain_like ch[3];
	struct vma_like vm[3];
	struct interval_tree_node *n;
	int sum = 0, cnt = 0;

	for (int i = 0; i < 3; i++) {
		ch[i] = (struct chain_like){ .rb = { .start = 10 * i, .last = 10 * i + 9 }, .id = i };
		vm[i] = (struct vma_like){ .shared = { .start = 5 * i, .last = 5 * i + 4 },
					   .other = { .start = 100 - 10 * i, .last = 100 },
					   .id = 10 + i };
		interval_tree_insert(&ch[i].rb, &chains);
		interval_tree_insert(&vm[i].shared, &i_mmap);
		interval_tree_insert(&vm[i].other, &other);
	}
	interval_tree_foreach(n, &chains, 9, 10) {
		sum += interval_tree_entry(n, struct chain_like, rb)->id;
		cnt++;
	}
	ASSERT_EQ(cnt, 2);
	ASSERT_EQ(sum, 0 + 1);
	sum = cnt = 0;
	interval_tree_foreach(n, &i_mmap, 4, 5) {
		sum += interval_tree_entry(n, struct vma_like, shared)->id;
		cnt++;
	}
	ASSERT_EQ(cnt, 2);
	ASSERT_EQ(sum, 10 + 11);
	/* other: vm[2] [80,100], vm[1] [90,100], vm[0] [100,100] */
	n = interval_tree_iter_first(&other, 95, 95);
	ASSERT_TRUE(n && interval_tree_entry(n, struct vma_like, other) == &vm[2]);
	n = interval_tree_iter_next(n, 95, 95);
	ASSERT_TRUE(n && interval_tree_entry(n, struct vma_like, other) == &vm[1]);
	ASSERT_TRUE(interval_tree_iter_next(n, 95, 95) == NULL);
	for (int i = 0; i < 3; i++) {
		interval_tree_remove(&vm[i].other, &other);
		ASSERT_TRUE(rb_valid(&i_mmap));
		ASSERT_TRUE(interval_tree_iter_first(&i_mmap, 5 * i, 5 * i) == &vm[i].shared);
	}
	ASSERT_TRUE(interval_tree_empty(&other));
	return true;
}

/* The checks must be able to fail, or the random runs prove nothing. */
static bool test_checks_catch_damage(void)
{
	enum { N = 64 };
	struct item items[N], *model[N], *scratch[N];
	struct rb_root root = RB_ROOT;
	struct interval_tree_node *top;

	for (int i = 0; i < N; i++) {
		item_init(&items[i], i, i, i + 3);
		interval_tree_insert(&items[i].it, &root);
		items[i].in_tree = true;
		model[i] = &items[i];
	}
	ASSERT_TRUE(itree_valid(&root, model, N, scratch));
	TAP_DIAG("three damage reports follow, as expected:");

	top = rb_entry(root.node, struct interval_tree_node, rb);
	top->__subtree_last++;
	ASSERT_FALSE(itree_valid(&root, model, N, scratch));
	top->__subtree_last--;

	root.node->red = 1;
	ASSERT_FALSE(rb_valid(&root));
	root.node->red = 0;

	items[N / 2].it.start = 1000;	/* out of order, and subtree values stale */
	ASSERT_FALSE(itree_valid(&root, model, N, scratch));
	items[N / 2].it.start = N / 2;

	ASSERT_TRUE(itree_valid(&root, model, N, scratch));
	return true;
}

/* ---- randomized differential: interval tree ---- */

static void rand_interval(uint64_t *st, uint64_t *start, uint64_t *last)
{
	uint64_t r = tap_rand(st), s;

	switch (r % 16) {
	case 0:
	case 1:			/* points, densely packed */
		s = tap_rand(st) % 64;
		*start = *last = s;
		return;
	case 2:
	case 3:			/* heavy duplication: few distinct intervals */
		s = tap_rand(st) % 8;
		*start = s;
		*last = s + tap_rand(st) % 3;
		return;
	case 4:			/* long */
		s = tap_rand(st) % 1024;
		*start = s;
		*last = s + tap_rand(st) % 1024;
		return;
	case 5:			/* at the top of the range */
		s = UINT64_MAX - tap_rand(st) % 64;
		*start = s;
		*last = s + tap_rand(st) % (UINT64_MAX - s + 1);
		return;
	case 6:			/* everything */
		*start = 0;
		*last = UINT64_MAX - (tap_rand(st) % 2);
		return;
	default:		/* short, page-offset-like */
		s = tap_rand(st) % 1024;
		*start = s;
		*last = s + tap_rand(st) % 16;
		return;
	}
}

static bool itree_random_run(unsigned int pool, unsigned int ops, unsigned int check_every,
			     unsigned int queries)
{
	uint64_t st = seed ^ 0x1f7e3c5a9b2d4e61ULL;
	struct item *items = calloc(pool, sizeof(*items));
	struct item **model = calloc(pool, sizeof(*model));
	struct item **scratch = calloc(pool, sizeof(*scratch));
	unsigned int *pos = calloc(pool, sizeof(*pos));	/* index in model[] */
	struct rb_root root = RB_ROOT;
	size_t nr = 0;
	unsigned int seq = 0, max_nr = 0;
	bool ok = false;

	if (!items || !model || !scratch || !pos)
		goto out;
	for (unsigned int op = 0; op < ops; op++) {
		/* bias toward growth in the first half, shrinkage in the second */
		unsigned int fill = op < ops / 2 ? 70 : 30;
		struct item *it = &items[tap_rand(&st) % pool];

		if (!it->in_tree && tap_rand(&st) % 100 < fill) {
			uint64_t s, l;

			rand_interval(&st, &s, &l);
			item_init(it, ++seq, s, l);
			interval_tree_insert(&it->it, &root);
			it->in_tree = true;
			pos[it - items] = nr;
			model[nr++] = it;
		} else if (it->in_tree) {
			size_t p = pos[it - items];

			interval_tree_remove(&it->it, &root);
			it->in_tree = false;
			model[p] = model[--nr];
			pos[model[p] - items] = p;
		}
		if (nr > max_nr)
			max_nr = nr;
		if (op % check_every && op != ops - 1)
			continue;
		if (!itree_valid(&root, model, nr, scratch)) {
			TAP_DIAG("after op %u (%zu nodes)", op, nr);
			goto out;
		}
		for (unsigned int q = 0; q < queries; q++) {
			uint64_t s, l;

			rand_interval(&st, &s, &l);
			if (!query_ok(&root, model, nr, scratch, s, l)) {
				TAP_DIAG("after op %u (%zu nodes)", op, nr);
				goto out;
			}
		}
	}
	/* drain: everything left comes out through remove, still checked */
	while (nr) {
		struct item *it = model[tap_rand(&st) % nr];
		size_t p = pos[it - items];

		interval_tree_remove(&it->it, &root);
		it->in_tree = false;
		model[p] = model[--nr];
		pos[model[p] - items] = p;
		if (nr % check_every == 0 && !itree_valid(&root, model, nr, scratch))
			goto out;
	}
	ok = interval_tree_empty(&root);
	TAP_DIAG("interval tree: %u ops, up to %u nodes, %u queries every %u ops",
		 ops, max_nr, queries, check_every);
out:
	free(items);
	free(model);
	free(scratch);
	free(pos);
	return ok;
}

static bool test_itree_random_small(void)
{
	/* small trees: every shape of a few nodes, many times over */
	return itree_random_run(12, tap_short() ? 3000 : 30000, 1, 4);
}

static bool test_itree_random(void)
{
	if (tap_long())
		return itree_random_run(4096, 400000, 16, 8);
	if (tap_short())
		return itree_random_run(192, 3000, 1, 3);
	return itree_random_run(512, 20000, 1, 4);
}

/* ---- randomized differential: plain and size-augmented int-keyed trees ---- */

struct knode {
	struct rb_node rb;
	int key;
	unsigned int seq;
	unsigned int size;	/* augmented: nodes in this subtree */
	bool in_tree;
};

static struct knode *kn(struct rb_node *rb)
{
	return rb_entry(rb, struct knode, rb);
}

static unsigned int size_of(struct rb_node *rb)
{
	return rb ? kn(rb)->size : 0;
}

static void size_propagate(struct rb_node *rb, struct rb_node *stop)
{
	while (rb != stop) {
		unsigned int s = 1 + size_of(rb->left) + size_of(rb->right);

		if (kn(rb)->size == s)
			break;
		kn(rb)->size = s;
		rb = rb->parent;
	}
}

static void size_copy(struct rb_node *old, struct rb_node *new)
{
	kn(new)->size = kn(old)->size;
}

static void size_rotate(struct rb_node *old, struct rb_node *new)
{
	kn(new)->size = kn(old)->size;
	kn(old)->size = 1 + size_of(old->left) + size_of(old->right);
}

static const struct rb_augment_callbacks size_aug = {
	.propagate = size_propagate, .copy = size_copy, .rotate = size_rotate,
};

static bool sizes_ok(struct rb_node *rb, unsigned int *size)
{
	unsigned int l = 0, r = 0;

	if (!rb) {
		*size = 0;
		return true;
	}
	if (!sizes_ok(rb->left, &l) || !sizes_ok(rb->right, &r))
		return false;
	*size = 1 + l + r;
	if (kn(rb)->size != *size) {
		TAP_DIAG("key %d: size %u, subtree has %u", kn(rb)->key, kn(rb)->size, *size);
		return false;
	}
	return true;
}

/*
 * aug: NULL for rb_insert_color/rb_erase.  With &size_aug, half the inserts
 * also bump the sizes on the way down (the kernel users' style), to check
 * that rb_insert_augmented takes both.
 */
static void knode_insert(struct knode *k, struct rb_root *root,
			 const struct rb_augment_callbacks *aug, bool update_on_descent)
{
	struct rb_node **link = &root->node, *parent = NULL;

	while (*link) {
		parent = *link;
		if (aug && update_on_descent)
			kn(parent)->size++;
		link = k->key < kn(parent)->key ? &parent->left : &parent->right;
	}
	k->size = 1;
	rb_link_node(&k->rb, parent, link);
	if (aug)
		rb_insert_augmented(&k->rb, root, aug);
	else
		rb_insert_color(&k->rb, root);
}

static bool knode_valid(struct rb_root *root, size_t nr, const struct rb_augment_callbacks *aug)
{
	struct knode *prev = NULL;
	size_t n = 0;
	unsigned int size;

	if (!rb_valid(root))
		return false;
	for (struct rb_node *rb = rb_first(root); rb; rb = rb_next(rb)) {
		struct knode *k = kn(rb);

		if (++n > nr || !k->in_tree) {
			TAP_DIAG("walk reached %zu nodes or a removed one (model %zu)", n, nr);
			return false;
		}
		if (prev && (prev->key > k->key || (prev->key == k->key && prev->seq >= k->seq))) {
			TAP_DIAG("out of order: (%d,#%u) before (%d,#%u)", prev->key, prev->seq, k->key, k->seq);
			return false;
		}
		prev = k;
	}
	if (n != nr) {
		TAP_DIAG("walk has %zu nodes, model %zu", n, nr);
		return false;
	}
	/* and backwards, for rb_last/rb_prev */
	for (struct rb_node *rb = rb_last(root); rb; rb = rb_prev(rb))
		n--;
	if (n) {
		TAP_DIAG("backward walk disagrees with forward walk");
		return false;
	}
	return !aug || sizes_ok(root->node, &size);
}

static bool knode_random_run(const struct rb_augment_callbacks *aug, unsigned int pool,
			     unsigned int ops, int keys)
{
	uint64_t st = seed ^ (aug ? 0x5bd1e9955bd1e995ULL : 0x2545f4914f6cdd1dULL);
	struct knode *k = calloc(pool, sizeof(*k));
	struct rb_root root = RB_ROOT;
	unsigned int seq = 0;
	size_t nr = 0;
	bool ok = false;

	if (!k)
		return false;
	for (unsigned int op = 0; op < ops; op++) {
		struct knode *x = &k[tap_rand(&st) % pool];

		if (!x->in_tree && tap_rand(&st) % 100 < (op < ops / 2 ? 70 : 30)) {
			x->key = (int)(tap_rand(&st) % keys) - keys / 2;
			x->seq = ++seq;
			knode_insert(x, &root, aug, tap_rand(&st) & 1);
			x->in_tree = true;
			nr++;
		} else if (x->in_tree) {
			if (aug)
				rb_erase_augmented(&x->rb, &root, aug);
			else
				rb_erase(&x->rb, &root);
			x->in_tree = false;
			nr--;
		} else {
			continue;
		}
		if (!knode_valid(&root, nr, aug)) {
			TAP_DIAG("after op %u (%zu nodes)", op, nr);
			goto out;
		}
	}
	for (unsigned int i = 0; i < pool; i++) {	/* drain the rest */
		if (!k[i].in_tree)
			continue;
		if (aug)
			rb_erase_augmented(&k[i].rb, &root, aug);
		else
			rb_erase(&k[i].rb, &root);
		k[i].in_tree = false;
		if (!knode_valid(&root, --nr, aug))
			goto out;
	}
	ok = root.node == NULL;
out:
	free(k);
	return ok;
}

static bool test_rb_plain_random(void)
{
	if (tap_short())
		return knode_random_run(NULL, 256, 4000, 64);
	return knode_random_run(NULL, 1024, tap_long() ? 400000 : 40000, 256) &&
	       knode_random_run(NULL, 16, 20000, 8);
}

static bool test_rb_augmented_size_random(void)
{
	if (tap_short())
		return knode_random_run(&size_aug, 256, 4000, 64);
	return knode_random_run(&size_aug, 1024, tap_long() ? 400000 : 40000, 256) &&
	       knode_random_run(&size_aug, 16, 20000, 8);
}

int main(void)
{
	seed = tap_seed();
	RUN_TEST(test_empty);
	RUN_TEST(test_single);
	RUN_TEST(test_nested_identical);
	RUN_TEST(test_range_ends);
	RUN_TEST(test_two_struct_types);
	RUN_TEST(test_checks_catch_damage);
	RUN_TEST(test_itree_random_small);
	RUN_TEST(test_itree_random);
	RUN_TEST(test_rb_plain_random);
	RUN_TEST(test_rb_augmented_size_random);
	return tap_done();
}
