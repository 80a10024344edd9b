#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""
gen_corpus.py - write fuzz/corpus/: small programs for fuzz_api.c, each a
scenario worth starting from (COW after fork, shared mappings, KSM merges,
swap out and in, migration, notifiers over unmaps, fault injection, mremap
moves, bad arguments, file mappings and msync, interval notifiers,
notifier get/put, the statistics calls), plus a few seeded random ones.

The encoding mirrors fuzz_api.c: one opcode byte (taken modulo 32), then the
operation's argument bytes in the order the C code reads them.  Run from the
repository's top: python3 fuzz/gen_corpus.py
"""
import os
import random

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")

MMAP, MUNMAP, MPROTECT, MREMAP, MADVISE = 0, 2, 3, 4, 5
MLOCK, MUNLOCK, READ, WRITE, FORK, EXIT, CREATE = 7, 8, 9, 11, 13, 14, 15
GUP, PAGEMAP, RMAP, KSM, RECLAIM, MOVE, NOTIFIER, MISC = 16, 17, 18, 19, 20, 21, 22, 23
MMAP_FILE, MSYNC, FILE, INTERVAL, GSUB, STATS = 24, 26, 27, 28, 29, 30

# indexes into fuzz_api.c's msync_flags[]
MS_SYNC, MS_ASYNC, MS_SYNC_INVAL, MS_INVAL, MS_NONE, MS_BAD_BOTH, MS_BAD_UNKNOWN = 0, 1, 2, 3, 4, 6, 7
# op_file's cases
F_BAD_OPENS, F_REOPEN, F_THIRD, F_SIZE = 0, 1, 2, 3

# indexes into fuzz_api.c's advices[]
NORMAL, WILLNEED, DONTNEED, MERGEABLE, UNMERGEABLE, COLD, PAGEOUT = 0, 1, 2, 3, 4, 5, 6
BAD_ADVICE = 12
RW, RO, NONE = 3, 1, 0


class P:
    def __init__(self):
        self.b = bytearray()

    def op(self, *args):
        self.b += bytes(a & 0xff for a in args)
        return self

    def mmap(self, mm, first, n, prot=RW, shared=False, populate=False, locked=False,
             noreplace=False, bad=0):
        f = (1 if shared else 0) | (2 if populate else 0) | (4 if locked else 0) | \
            (8 if noreplace else 0)
        return self.op(MMAP, mm, f, prot, first, n - 1, 200 + bad - 1 if bad else 0)

    def munmap(self, mm, first, n, bad=0):
        return self.op(MUNMAP, mm, first, n - 1, 200 + bad - 1 if bad else 0)

    def mprotect(self, mm, first, n, prot, bad=0):
        return self.op(MPROTECT, mm, prot, first, n - 1, 200 + bad - 1 if bad else 0)

    def mremap(self, mm, first, n, nfirst, nn, mode, bad=0):
        return self.op(MREMAP, mm, mode, first, n - 1, nfirst, nn - 1,
                       200 + bad - 1 if bad else 0)

    def madvise(self, mm, first, n, adv, bad=0):
        return self.op(MADVISE, mm, adv, first, n - 1, 200 + bad - 1 if bad else 0)

    def mlock(self, mm, first, n, lock=True):
        return self.op(MLOCK if lock else MUNLOCK, mm, first, n - 1, 0)

    def access(self, write, mm, page, off=0, length=4096, seed=1):
        ln = (length - 1) % (4096 + 64)
        return self.op(WRITE if write else READ, mm, page, off & 0xff, off >> 8,
                       ln & 0xff, ln >> 8, seed)

    def write(self, mm, page, n=1, seed=1):
        for i in range(n):
            self.access(True, mm, page + i, seed=seed)
        return self

    def read(self, mm, page, n=1):
        for i in range(n):
            self.access(False, mm, page + i)
        return self

    def fork(self, mm):
        return self.op(FORK, mm)

    def exit(self, mm):
        return self.op(EXIT, mm)

    def create(self):
        return self.op(CREATE)

    def gup(self, mm, page, slot, write=False):
        return self.op(GUP, mm, page, slot | (0x80 if write else 0))

    def pagemap(self, mm, page):
        return self.op(PAGEMAP, mm, page)

    def rmap(self, mm, page, which):
        return self.op(RMAP, mm, page, which)

    def ksm_scan(self, n=200):
        return self.op(KSM, (n - 1) & ~3)         # b % 4 == 0: scan 1 + b

    def merge_any(self, mm):
        return self.op(KSM, 2, mm)

    def unmerge_all(self):
        return self.op(KSM, 3)

    def reclaim(self, n=64):
        return self.op(RECLAIM, n - 1)

    def move(self, mm, pages, nodes_bits, query=False):
        pages = (pages + [0, 0, 0, 0])[:4]
        f = (nodes_bits & 0xf) | (0x40 if query else 0)
        return self.op(MOVE, mm, len(pages), f, *pages)

    def notifier(self, mm, f=0):
        return self.op(NOTIFIER, mm, f)

    def compact(self, order=3):
        return self.op(MISC, 0, order)

    def fault(self, kind, level, times=0):
        return self.op(MISC, 2, kind | (level << 4), times)

    def faults_off(self):
        return self.op(MISC, 1)

    def oom_reap(self, mm):
        return self.op(MISC, 4, mm)

    def mmap_file(self, mm, first, n, fpg, prot=RW, shared=True, populate=False,
                  locked=False, ro=False, unaligned=False):
        f = (1 if shared else 0) | (2 if populate else 0) | (4 if locked else 0) | \
            (0x10 if ro else 0) | (0x20 if unaligned else 0)
        return self.op(MMAP_FILE, mm, f, prot, fpg, first, n - 1)

    def msync(self, mm, first, n, flags=MS_SYNC, bad=0):
        return self.op(MSYNC, mm, flags, first, n - 1, 200 + bad - 1 if bad else 0)

    def file(self, what):
        return self.op(FILE, what)

    def interval(self, mm, first=0, n=1, f=0):
        # no interval yet: insert over [first, first + n); f & 1 removes it;
        # otherwise faults page (f >> 2) of it in (f & 0x80: for writing)
        return self.op(INTERVAL, mm, f, first, n - 1)

    def gsub(self, mm):
        return self.op(GSUB, mm)

    def stats(self, mm, what=0):
        return self.op(STATS, mm, what)


def scenarios():
    s = {}
    s["cow_fork"] = P().mmap(0, 0, 8).write(0, 0, 8, 3).fork(0).write(0, 2, 2, 9) \
        .read(2, 0, 8).write(2, 4, 1, 5).read(0, 0, 8)
    s["shared_fork"] = P().mmap(0, 2, 4, shared=True).write(0, 2, 4, 7).fork(0) \
        .write(2, 3, 1, 11).read(0, 2, 4).munmap(0, 3, 1).read(2, 2, 4)
    s["dontneed"] = P().mmap(0, 0, 6).write(0, 0, 6).madvise(0, 1, 3, DONTNEED).read(0, 0, 6) \
        .mmap(1, 0, 4, shared=True).write(1, 0, 4).madvise(1, 0, 4, DONTNEED).read(1, 0, 4)
    s["mprotect_split"] = P().mmap(0, 0, 10).write(0, 0, 10).mprotect(0, 3, 3, RO) \
        .access(True, 0, 4).mprotect(0, 0, 10, NONE).read(0, 0, 2).mprotect(0, 0, 10, RW) \
        .read(0, 0, 10)
    s["mremap_grow"] = P().mmap(0, 0, 4).write(0, 0, 4).mremap(0, 0, 4, 0, 8, 0).read(0, 0, 8)
    s["mremap_move"] = P().mmap(0, 0, 4).write(0, 0, 4).mremap(0, 0, 4, 12, 4, 2) \
        .read(0, 12, 4).read(0, 0, 1)
    s["mremap_dontunmap"] = P().mmap(0, 0, 4).write(0, 0, 4).mremap(0, 0, 4, 10, 4, 3) \
        .read(0, 0, 4).read(0, 10, 4)
    s["mremap_away"] = P().mmap(0, 0, 4).write(0, 0, 4).mmap(0, 4, 2).mremap(0, 0, 4, 0, 8, 1) \
        .read(0, 0, 6)
    s["mremap_shrink_fork"] = P().mmap(0, 0, 8).write(0, 0, 8).fork(0) \
        .mremap(2, 0, 8, 0, 3, 0).read(2, 0, 8).read(0, 0, 8)
    s["ksm_merge"] = P().mmap(0, 0, 8).write(0, 0, 8, 5).mmap(1, 0, 8).write(1, 0, 8, 5) \
        .madvise(0, 0, 8, MERGEABLE).madvise(1, 0, 8, MERGEABLE).ksm_scan().ksm_scan() \
        .ksm_scan().read(0, 0, 8).write(1, 2, 1, 99).read(1, 0, 8).read(0, 0, 8)
    s["ksm_merge_any_fork"] = P().merge_any(0).mmap(0, 0, 6).write(0, 0, 6, 1).fork(0) \
        .ksm_scan().ksm_scan().write(2, 0, 1, 4).read(0, 0, 6).unmerge_all().read(2, 0, 6)
    s["ksm_zero_pages"] = P().mmap(0, 0, 8).read(0, 0, 8).access(True, 0, 0, 0, 1, 0) \
        .madvise(0, 0, 8, MERGEABLE).ksm_scan().ksm_scan().read(0, 0, 8).write(0, 1, 1, 3)
    s["ksm_chain"] = P().merge_any(0).merge_any(1).mmap(0, 0, 12).write(0, 0, 12, 8) \
        .mmap(1, 0, 12).write(1, 0, 12, 8).ksm_scan().ksm_scan().ksm_scan().fork(1) \
        .read(2, 0, 12).munmap(0, 0, 6).ksm_scan().read(1, 0, 12)
    s["swap_out_in"] = P().mmap(0, 0, 16).write(0, 0, 16, 2).madvise(0, 0, 16, PAGEOUT) \
        .pagemap(0, 3).read(0, 0, 16).reclaim(64).read(0, 0, 16)
    s["swap_fork"] = P().mmap(0, 0, 8).write(0, 0, 8, 4).fork(0).reclaim(64).write(2, 1, 1, 7) \
        .read(0, 0, 8).read(2, 0, 8)
    s["swap_shared"] = P().mmap(0, 0, 4, shared=True).write(0, 0, 4).fork(0).reclaim(64) \
        .madvise(2, 0, 4, PAGEOUT).write(2, 1, 1, 3).read(0, 0, 4)
    s["try_to_unmap"] = P().mmap(0, 0, 4).write(0, 0, 4).fork(0).rmap(0, 1, 2).rmap(2, 1, 3) \
        .read(2, 0, 4).rmap(0, 2, 0).rmap(0, 2, 1).read(0, 0, 4)
    s["migrate"] = P().mmap(0, 0, 6).write(0, 0, 6).fork(0).move(0, [0, 1, 2, 3], 0xf) \
        .read(2, 0, 6).move(2, [0, 1, 5, 23], 0x0).move(0, [0, 1], 0, query=True) \
        .compact(4).read(0, 0, 6)
    s["migrate_ksm"] = P().merge_any(0).mmap(0, 0, 4).write(0, 0, 4, 1).mmap(1, 0, 4) \
        .write(1, 0, 4, 1).merge_any(1).ksm_scan().ksm_scan().move(0, [0, 1, 2, 3], 0xf) \
        .read(1, 0, 4).write(0, 0, 1, 2).read(1, 0, 1)
    s["notifier_unmap"] = P().notifier(0).mmap(0, 0, 8).write(0, 0, 8).munmap(0, 2, 2) \
        .mprotect(0, 4, 2, RO).fork(0).write(0, 6, 1).reclaim(32).notifier(0).read(0, 0, 8)
    s["notifier_exit"] = P().notifier(0).notifier(1, 2).mmap(0, 0, 4).write(0, 0, 4).exit(0) \
        .mmap(1, 0, 4).write(1, 0, 4).madvise(1, 0, 4, PAGEOUT).exit(1).create().read(0, 0, 1)
    s["gup"] = P().mmap(0, 0, 4).write(0, 0, 4).fork(0).gup(0, 1, 0, True).gup(2, 1, 1) \
        .write(2, 1, 1, 5).read(0, 1).gup(0, 0, 0).gup(2, 0, 1).gup(0, 3, 2).munmap(0, 3, 1) \
        .gup(0, 0, 2)
    s["notifier_gup"] = P().notifier(0).merge_any(0).mmap(0, 0, 6).write(0, 0, 6, 2) \
        .mmap(1, 0, 6).write(1, 0, 6, 2).merge_any(1).gup(0, 0, 0).gup(0, 1, 1, True) \
        .gup(0, 2, 2).ksm_scan().ksm_scan().gup(0, 3, 3).move(0, [3, 4], 0xf).gup(0, 4, 4) \
        .reclaim(64).gup(0, 5, 5).fork(0).write(0, 5, 1).mprotect(0, 0, 2, RO).munmap(0, 1, 2) \
        .read(0, 0, 6).notifier(0)
    s["oom_reap"] = P().notifier(0, 2).mmap(0, 0, 4).write(0, 0, 4).mmap(0, 6, 2, shared=True) \
        .write(0, 6, 2).fork(0).oom_reap(0).read(0, 0, 8).notifier(0, 1).oom_reap(0) \
        .read(0, 0, 8).read(2, 0, 8).gup(0, 6, 0).exit(0)
    s["mlock"] = P().mmap(0, 0, 6, locked=True).write(0, 0, 6).fork(0).mlock(2, 0, 3) \
        .madvise(0, 0, 6, DONTNEED).mlock(0, 0, 6, False).reclaim(64).read(0, 0, 6) \
        .read(2, 0, 6).mlock(0, 5, 4)
    s["populate"] = P().mmap(0, 0, 8, populate=True).mmap(1, 0, 8, shared=True, populate=True) \
        .read(0, 0, 8).read(1, 0, 8).mmap(0, 2, 2, noreplace=True).mmap(0, 12, 2, noreplace=True)
    s["bad_args"] = P().mmap(0, 0, 4, bad=1).mmap(0, 0, 4, bad=2).mmap(0, 0, 4, bad=3) \
        .mmap(0, 0, 4, bad=4).mmap(0, 0, 4).munmap(0, 0, 4, bad=1).munmap(0, 0, 4, bad=3) \
        .mprotect(0, 0, 4, RO, bad=1).mprotect(0, 0, 4, 0xff).madvise(0, 0, 4, BAD_ADVICE) \
        .madvise(0, 0, 4, DONTNEED, bad=3).mremap(0, 0, 4, 8, 4, 0x80).mremap(0, 0, 4, 8, 4, 0xc2) \
        .op(MMAP, 0, 0x30, 3, 0, 3, 0).op(MMAP, 0, 0x70, 3, 0, 3, 0).read(0, 0, 4)
    s["holes"] = P().mmap(0, 0, 2).mmap(0, 4, 2).mprotect(0, 0, 6, RO).madvise(0, 0, 6, DONTNEED) \
        .mlock(0, 0, 6).mremap(0, 0, 6, 10, 6, 2).read(0, 0, 6)
    s["fault_frames"] = P().fault(0, 3).mmap(0, 0, 8).write(0, 0, 8).fork(0).write(2, 0, 8, 5) \
        .faults_off().read(0, 0, 8).read(2, 0, 8)
    s["fault_swap_read"] = P().mmap(0, 0, 8).write(0, 0, 8).reclaim(64).fault(1, 3) \
        .read(0, 0, 8).faults_off().read(0, 0, 8)
    s["fault_swap_write"] = P().fault(2, 3).mmap(0, 0, 8).write(0, 0, 8).reclaim(64) \
        .madvise(0, 0, 8, PAGEOUT).faults_off().read(0, 0, 8)
    s["fault_ksm"] = P().fault(0, 2).merge_any(0).mmap(0, 0, 8).write(0, 0, 8, 1).fork(0) \
        .ksm_scan().ksm_scan().write(2, 3, 1).faults_off().read(0, 0, 8).read(2, 0, 8)
    s["fault_migrate"] = P().mmap(0, 0, 6).write(0, 0, 6).fault(0, 3).move(0, [0, 1, 2, 3], 0xf) \
        .compact(5).faults_off().read(0, 0, 6)
    s["exit_all"] = P().mmap(0, 0, 4).write(0, 0, 4).fork(0).fork(2).exit(0).exit(1).exit(2) \
        .exit(3).create().mmap(0, 0, 2).write(0, 0, 2)
    s["pagemap"] = P().mmap(0, 0, 4).pagemap(0, 0).read(0, 0).pagemap(0, 0).write(0, 1) \
        .pagemap(0, 1).pagemap(0, 9).mlock(0, 0, 4).pagemap(0, 2)
    s["partial_page"] = P().mmap(0, 0, 3).access(True, 0, 0, 4000, 300, 7) \
        .access(False, 0, 0, 3990, 4096 + 60).mprotect(0, 1, 1, NONE) \
        .access(False, 0, 0, 4000, 300).access(True, 0, 2, 100, 50)
    s["file_shared_msync"] = P().mmap_file(0, 0, 4, 0).write(0, 0, 4, 3).msync(0, 0, 4) \
        .mmap_file(1, 0, 4, 2).read(1, 0, 4).write(1, 1, 1, 9).msync(1, 0, 2) \
        .read(0, 0, 4).msync(0, 0, 4, MS_ASYNC).msync(0, 0, 4, MS_BAD_BOTH) \
        .msync(0, 0, 4, MS_BAD_UNKNOWN).msync(0, 0, 4, bad=1).msync(0, 0, 8)
    s["file_private_cow"] = P().mmap_file(0, 0, 4, 0, shared=False).read(0, 0, 4) \
        .mmap_file(1, 0, 4, 0).write(1, 0, 2, 5).read(0, 0, 4).write(0, 1, 2, 7) \
        .write(1, 1, 2, 8).read(0, 0, 4).madvise(0, 0, 4, DONTNEED).read(0, 0, 4) \
        .fork(0).write(2, 3, 1, 4).read(0, 0, 4).msync(1, 0, 4).file(F_REOPEN)
    s["file_reopen"] = P().mmap_file(0, 0, 8, 0).write(0, 0, 8, 2).munmap(0, 0, 8) \
        .file(F_REOPEN).mmap_file(0, 4, 8, 0, shared=False).read(0, 4, 8) \
        .mmap_file(1, 0, 2, 6).write(1, 0, 2, 6).file(F_REOPEN).read(1, 0, 2).exit(1) \
        .file(F_REOPEN).read(0, 4, 8)
    s["file_eof_errors"] = P().mmap_file(0, 0, 8, 4).read(0, 0, 8).write(0, 3, 2, 1) \
        .gup(0, 5, 0).mlock(0, 0, 8).mmap_file(0, 10, 2, 0, ro=True) \
        .mmap_file(0, 12, 2, 0, ro=True, prot=RO).mprotect(0, 12, 2, RW) \
        .mmap_file(0, 14, 2, 0, ro=True, shared=False).write(0, 14, 1) \
        .mmap_file(0, 16, 2, 1, unaligned=True).file(F_BAD_OPENS).file(F_THIRD).file(F_SIZE)
    s["file_locked_invalidate"] = P().mmap_file(0, 0, 4, 0, locked=True).write(0, 0, 4) \
        .msync(0, 0, 4, MS_SYNC_INVAL).msync(0, 0, 4, MS_INVAL).mlock(0, 0, 4, False) \
        .msync(0, 0, 4, MS_SYNC_INVAL).mmap_file(0, 6, 2, 1, populate=True).read(0, 6, 2)
    s["file_swap_migrate"] = P().mmap_file(0, 0, 8, 0).write(0, 0, 8, 4) \
        .mmap_file(1, 0, 8, 0, shared=False).write(1, 2, 2, 9).reclaim(64) \
        .madvise(0, 0, 8, PAGEOUT).madvise(1, 0, 8, PAGEOUT).read(1, 0, 8) \
        .move(0, [0, 1, 2, 3], 0xf).move(1, [0, 2, 4, 6], 0x5).rmap(0, 1, 2).rmap(1, 0, 1) \
        .compact(4).read(0, 0, 8).msync(0, 0, 8)
    s["file_faults"] = P().fault(0, 3).mmap_file(0, 0, 8, 0).write(0, 0, 8, 2) \
        .fault(5, 3).mmap_file(1, 0, 8, 0, shared=False).write(1, 0, 8, 3).fork(1) \
        .faults_off().read(0, 0, 8).read(1, 0, 8).msync(0, 0, 8).file(F_REOPEN)
    s["file_populate_cow"] = P().mmap_file(0, 0, 4, 0, shared=False, populate=True) \
        .mmap_file(1, 0, 4, 0).write(1, 0, 4, 6).read(0, 0, 4) \
        .mmap_file(0, 8, 4, 0, shared=False, locked=True).write(1, 1, 1, 7).read(0, 8, 4) \
        .mmap_file(0, 12, 4, 0, shared=False).mlock(0, 12, 4).gup(0, 14, 0, True) \
        .write(1, 2, 2, 8).read(0, 12, 4).mmap_file(0, 16, 2, 2, shared=False, prot=RO, populate=True) \
        .write(1, 2, 1, 9).read(0, 16, 2)
    s["interval"] = P().mmap(0, 0, 8).write(0, 0, 8, 1).interval(0, 2, 4) \
        .interval(0, f=0x00).interval(0, f=0x84).fork(0).interval(0, f=0x88).write(0, 3, 1) \
        .madvise(0, 2, 2, DONTNEED).interval(0, f=0x0c).move(0, [2, 3, 4, 5], 0xf) \
        .reclaim(64).interval(0, f=0x04).oom_reap(0).interval(0, f=1).interval(1, 0, 8, 2) \
        .mmap(1, 0, 8).write(1, 0, 8).interval(1, f=0x10).oom_reap(1).exit(1)
    s["gsub_stats"] = P().gsub(0).gsub(0).mmap(0, 0, 6).write(0, 0, 6, 3).stats(0) \
        .gsub(0).gsub(1).mlock(0, 0, 2).stats(0).merge_any(0).stats(0, 1).stats(0, 2) \
        .mmap(1, 0, 6).write(1, 0, 6, 3).stats(1, 5).ksm_scan().ksm_scan().read(0, 0, 6) \
        .exit(1).gsub(0).stats(0, 2)
    return s


def main():
    os.makedirs(OUT, exist_ok=True)
    for f in os.listdir(OUT):
        os.unlink(os.path.join(OUT, f))
    progs = scenarios()
    rng = random.Random(8)
    for i in range(8):
        progs["random_%d" % i] = P().op(*[rng.randrange(256) for _ in range(rng.randrange(64, 400))])
    for name, p in sorted(progs.items()):
        with open(os.path.join(OUT, name), "wb") as fh:
            fh.write(bytes(p.b))
    print("%d inputs in %s" % (len(progs), OUT))


if __name__ == "__main__":
    main()
