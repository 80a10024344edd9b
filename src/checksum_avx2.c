// SPDX-License-Identifier: MIT
/*
 * checksum_avx2.c - KSM's page checksum (XXH3, 64 bits) built for AVX2.
 *
 * Distributions build libxxhash for baseline x86-64, where XXH3 hashes a
 * cached 4 KiB page in about 600 ns; its AVX2 code path takes about 200 ns,
 * and checksums are half of a merge scan's CPU.  This file alone is
 * compiled with -mavx2 (see the Makefile), with xxhash.h inlined, and
 * ksm.c calls it only when the CPU has AVX2; the values are XXH3's, the
 * same as the library's.  Sanitizer builds use the library (uninstrumented,
 * like the hardware-style racy page reads this hashes).
 */
#include <stddef.h>
#include <stdint.h>

#include "internal.h"

#if KSM_CHECKSUM_AVX2
#ifndef __AVX2__
#error "checksum_avx2.c is compiled with -mavx2 (see the Makefile)"
#endif
#define XXH_INLINE_ALL
#include <xxhash.h>

uint64_t ksm_checksum_avx2(const void *data, size_t len)
{
	return XXH3_64bits(data, len);
}
#endif
