/* SPDX-License-Identifier: MIT */
/*
 * tap.h - the tests' harness: TAP output, ASSERT_* macros that name file,
 * line and expression, a seed that every random test prints and accepts back
 * (UMM_SEED=...), and the short/long switch (UMM_TEST_SHORT=1 in CI's
 * sanitizer builds, UMM_TEST_LONG=1 for long runs).
 *
 * A test file is a list of `static bool test_xxx(void)` functions run with
 * RUN_TEST(test_xxx); main() ends with `return tap_done();`.
 */
#ifndef UMM_TESTS_TAP_H
#define UMM_TESTS_TAP_H

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int tap_n, tap_failed;

#define TAP_DIAG(...) do { printf("# "); printf(__VA_ARGS__); printf("\n"); fflush(stdout); } while (0)

#define ASSERT_TRUE(expr) do { \
	if (!(expr)) { \
		printf("# %s:%d: %s: ASSERT_TRUE(%s) failed\n", __FILE__, __LINE__, __func__, #expr); \
		return false; \
	} } while (0)
#define ASSERT_FALSE(expr) ASSERT_TRUE(!(expr))
#define ASSERT_EQ(a, b) do { \
	long long _a = (long long)(a), _b = (long long)(b); \
	if (_a != _b) { \
		printf("# %s:%d: %s: ASSERT_EQ(%s, %s) failed: %lld != %lld\n", \
		       __FILE__, __LINE__, __func__, #a, #b, _a, _b); \
		return false; \
	} } while (0)
#define ASSERT_NE(a, b) do { \
	long long _a = (long long)(a), _b = (long long)(b); \
	if (_a == _b) { \
		printf("# %s:%d: %s: ASSERT_NE(%s, %s) failed: both %lld\n", \
		       __FILE__, __LINE__, __func__, #a, #b, _a); \
		return false; \
	} } while (0)
#define ASSERT_GE(a, b) do { \
	long long _a = (long long)(a), _b = (long long)(b); \
	if (_a < _b) { \
		printf("# %s:%d: %s: ASSERT_GE(%s, %s) failed: %lld < %lld\n", \
		       __FILE__, __LINE__, __func__, #a, #b, _a, _b); \
		return false; \
	} } while (0)
/* 0 from a call that returns 0/-errno, with the errno named on failure. */
#define ASSERT_OK(call) do { \
	long long _r = (long long)(call); \
	if (_r < 0) { \
		printf("# %s:%d: %s: %s failed: %lld (%s)\n", __FILE__, __LINE__, \
		       __func__, #call, _r, strerror((int)-_r)); \
		return false; \
	} } while (0)
#define ASSERT_ERR(call, err) do { \
	long long _r = (long long)(call); \
	if (_r != -(err)) { \
		printf("# %s:%d: %s: %s returned %lld, expected -%s\n", __FILE__, \
		       __LINE__, __func__, #call, _r, #err); \
		return false; \
	} } while (0)

/* UMM_TEST_ONLY=substring runs only the tests whose name contains it. */
static inline bool tap_selected(const char *name)
{
	const char *only = getenv("UMM_TEST_ONLY");

	return !only || !*only || strstr(name, only);
}

#define RUN_TEST(fn) do { \
	if (!tap_selected(#fn)) { \
		printf("ok %d - %s # SKIP not selected by UMM_TEST_ONLY\n", ++tap_n, #fn); \
		break; \
	} \
	bool _ok = fn(); \
	tap_n++; \
	if (!_ok) tap_failed++; \
	printf("%s %d - %s\n", _ok ? "ok" : "not ok", tap_n, #fn); \
	fflush(stdout); \
} while (0)

static inline int tap_done(void)
{
	printf("1..%d\n", tap_n);
	return tap_failed ? 1 : 0;
}

static inline bool tap_short(void)
{
	const char *s = getenv("UMM_TEST_SHORT");
	return s && *s && *s != '0';
}

static inline bool tap_long(void)
{
	const char *s = getenv("UMM_TEST_LONG");
	return s && *s && *s != '0';
}

/* The run's seed: UMM_SEED from the environment, or the clock; printed. */
static inline uint64_t tap_seed(void)
{
	const char *s = getenv("UMM_SEED");
	uint64_t seed;

	if (s && *s)
		seed = strtoull(s, NULL, 0);
	else
		seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 20);
	printf("# seed %" PRIu64 " (replay with UMM_SEED=%" PRIu64 ")\n", seed, seed);
	return seed;
}

/* xorshift64*: small, fast, good enough to drive random tests. */
static inline uint64_t tap_rand(uint64_t *state)
{
	uint64_t x = *state;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*state = x ? x : 0x9e3779b97f4a7c15ULL;
	return x * 0x2545F4914F6CDD1DULL;
}

#endif /* UMM_TESTS_TAP_H */
