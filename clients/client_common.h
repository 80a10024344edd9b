/* SPDX-License-Identifier: MIT */
/*
 * client_common.h - what the secondary MMUs of clients/ (shadow, tlb) share,
 * header-only: how an access of a buffer is cut into one piece per page,
 * and the copy of a piece between a cached frame and the caller's buffer.
 *
 * Arithmetic and copies only: each client keeps its own locking, sequence
 * checks and fault path around them.  Built on the public API alone.
 */
#ifndef UMM_CLIENTS_CLIENT_COMMON_H
#define UMM_CLIENTS_CLIENT_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <umm/umm.h>

/*
 * The piece of an access at @addr with @left bytes still to go that lies in
 * @addr's page: its length, and in @off its offset in the page.
 */
static inline size_t page_chunk(uint64_t addr, size_t left, size_t *off)
{
	*off = addr & (UMM_PAGE_SIZE - 1);
	return left < UMM_PAGE_SIZE - *off ? left : UMM_PAGE_SIZE - *off;
}

/*
 * Copy between a frame and the caller's buffer.  Word-sized accesses, the
 * common case of a guest or device access, are one load and one store:
 * gcc's inline expansion of a variable-length memcpy (rep movsq) costs tens
 * of ns.
 */
static inline void frame_copy(void *dst, const void *src, size_t n)
{
	if (n == 8) {
		uint64_t v;

		memcpy(&v, src, 8);
		memcpy(dst, &v, 8);
	} else {
		memcpy(dst, src, n);
	}
}

/* @n bytes from @buf into @frame for a @write, else from @frame into @buf. */
static inline void frame_io(char *frame, char *buf, size_t n, bool write)
{
	if (write)
		frame_copy(frame, buf, n);
	else
		frame_copy(buf, frame, n);
}

#endif /* UMM_CLIENTS_CLIENT_COMMON_H */
