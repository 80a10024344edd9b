// SPDX-License-Identifier: MIT
/* spinlock.c - the contended path of spin_lock(). */
#include <sched.h>

#include "internal.h"

void spin_lock_slow(spinlock_t *l)
{
	unsigned int spins = 0;

	do {
		while (atomic_load_explicit(&l->locked, memory_order_relaxed)) {
			if (++spins > 100)
				sched_yield();
			else
				__builtin_ia32_pause();
		}
	} while (atomic_exchange_explicit(&l->locked, 1, memory_order_acquire));
}
