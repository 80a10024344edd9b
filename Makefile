# umm - plain GNU make.
#
#   make            build/libumm.{a,so}, build/umm, build/umm-uninstalled.pc
#   make test       every test (normal, ASan+UBSan and TSan builds), via prove
#   make run        build/umm run on its built-in default scenario
#   make bench      the benchmarks under bench/ (figures, side by side with the host)
#
# Sanitizer builds live in their own trees: make BUILD=build-asan SAN=asan ...

BUILD   ?= build
SAN     ?=
CC      ?= cc
PREFIX  ?= /usr/local

DEPS_OK := $(shell sh tools/deps.sh >&2 && echo ok)
ifneq ($(DEPS_OK),ok)
$(error dependencies missing, see the message above)
endif

PKGS    := liburcu-bp libxxhash
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS))
PKG_LIBS   := $(shell pkg-config --libs $(PKGS))

OPT     ?= -O2
CFLAGS  ?= $(OPT) -g
WARN    := -Wall -Wextra -Wno-unused-parameter -Wno-sign-compare -Wshadow -Wstrict-prototypes
ALL_CFLAGS := -std=gnu11 -D_GNU_SOURCE -pthread -fPIC -Iinclude -Isrc $(WARN) $(PKG_CFLAGS) $(CFLAGS)
LIBS    := $(PKG_LIBS) -pthread

ifeq ($(SAN),asan)
ALL_CFLAGS += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined -DUMM_SANITIZE=1
LIBS       += -fsanitize=address,undefined
endif
ifeq ($(SAN),tsan)
ALL_CFLAGS += -fsanitize=thread -DUMM_SANITIZE=1
LIBS       += -fsanitize=thread
endif

LIB_SRCS   := $(wildcard src/*.c)
LIB_OBJS   := $(LIB_SRCS:src/%.c=$(BUILD)/obj/%.o)
CLI_SRCS   := $(wildcard tools/umm/*.c)
CLIENT_SRCS := $(wildcard clients/*.c)
TEST_SRCS  := $(wildcard tests/t_*.c)
TESTS      := $(TEST_SRCS:tests/%.c=$(BUILD)/tests/%)
BENCH_SRCS := $(wildcard bench/*.c)
BENCHES    := $(BENCH_SRCS:bench/%.c=$(BUILD)/bench/%)
HDRS       := $(wildcard include/umm/*.h) $(wildcard src/*.h)

.PHONY: all lib test test-build run bench clean install fuzz check-san
all: $(BUILD)/libumm.a $(BUILD)/libumm.so $(BUILD)/umm $(BUILD)/umm-uninstalled.pc

lib: $(BUILD)/libumm.a

$(BUILD)/obj/%.o: src/%.c $(HDRS) Makefile
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

# KSM's page checksum, also built for AVX2 (chosen at run time: src/checksum_avx2.c)
ifeq ($(shell uname -m),x86_64)
$(BUILD)/obj/checksum_avx2.o: ALL_CFLAGS += -mavx2
endif

$(BUILD)/libumm.a: $(LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/libumm.so: $(LIB_OBJS) src/libumm.map
	$(CC) -shared -o $(BUILD)/libumm.so.0 $(LIB_OBJS) -Wl,--version-script=src/libumm.map -Wl,-soname,libumm.so.0 $(LIBS)
	ln -sf libumm.so.0 $@

$(BUILD)/umm: $(CLI_SRCS) $(CLIENT_SRCS) $(BUILD)/libumm.a $(HDRS) $(wildcard clients/*.h tools/umm/*.h)
	$(CC) $(ALL_CFLAGS) -Iclients -o $@ $(CLI_SRCS) $(CLIENT_SRCS) $(BUILD)/libumm.a $(LIBS) -lm

$(BUILD)/umm-uninstalled.pc: Makefile
	@mkdir -p $(BUILD)
	@printf '%s\n' \
	  'prefix=$(CURDIR)' \
	  'libdir=$${prefix}/$(BUILD)' \
	  'includedir=$${prefix}/include' \
	  '' \
	  'Name: umm' \
	  'Description: user-mode Linux rmap, MMU notifiers and KSM (build tree)' \
	  'Version: 0.1.0' \
	  'Requires.private: $(PKGS)' \
	  'Cflags: -I$${includedir}' \
	  'Libs: -L$${libdir} -Wl,-rpath,$${libdir} -lumm' \
	  'Libs.private: -pthread' > $@

CLIENT_HDRS := $(wildcard clients/*.h)

$(BUILD)/tests/%: tests/%.c $(wildcard tests/*.h) $(BUILD)/libumm.a $(CLIENT_SRCS) $(CLIENT_HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Itests -Iclients -o $@ $< $(CLIENT_SRCS) $(BUILD)/libumm.a $(LIBS) -lm

$(BUILD)/bench/%: bench/%.c bench/bench_common.h $(BUILD)/libumm.a $(CLIENT_SRCS) $(CLIENT_HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Ibench -Iclients -o $@ $< $(CLIENT_SRCS) $(BUILD)/libumm.a $(LIBS) -lm

test-build: all $(TESTS)

# The suite: every test in the normal build, then the short sanitizer forms.
test:
	$(MAKE) --no-print-directory test-build
	$(MAKE) --no-print-directory BUILD=build-asan SAN=asan OPT=-O1 test-build
	$(MAKE) --no-print-directory BUILD=build-tsan SAN=tsan OPT=-O1 test-build
	UMM_BUILD=build prove --timer -e tests/runner.sh $(TESTS) \
	  $(patsubst build/%,build-asan/%,$(TESTS)) \
	  $(patsubst build/%,build-tsan/%,$(TESTS))

run: all
	$(BUILD)/umm run

bench: all $(BENCHES)
	@for b in $(BENCHES); do echo "== $$b"; $$b || exit 1; done

# make install PREFIX=/usr/local (DESTDIR for staging): the library, its
# headers, a pkg-config file with PREFIX's paths, the CLI and its man page.
install: all
	install -d $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/include/umm \
	  $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1
	install -m 644 $(BUILD)/libumm.a $(DESTDIR)$(PREFIX)/lib/
	install -m 755 $(BUILD)/libumm.so.0 $(DESTDIR)$(PREFIX)/lib/libumm.so.0
	ln -sf libumm.so.0 $(DESTDIR)$(PREFIX)/lib/libumm.so
	install -m 644 include/umm/*.h $(DESTDIR)$(PREFIX)/include/umm/
	install -m 755 $(BUILD)/umm $(DESTDIR)$(PREFIX)/bin/
	install -m 644 docs/umm.1 $(DESTDIR)$(PREFIX)/share/man/man1/umm.1
	@printf '%s\n' \
	  'prefix=$(PREFIX)' \
	  'exec_prefix=$${prefix}' \
	  'libdir=$${exec_prefix}/lib' \
	  'includedir=$${prefix}/include' \
	  '' \
	  'Name: umm' \
	  'Description: user-mode Linux rmap, MMU notifiers and KSM' \
	  'Version: 0.1.0' \
	  'Requires.private: $(PKGS)' \
	  'Cflags: -I$${includedir}' \
	  'Libs: -L$${libdir} -lumm' \
	  'Libs.private: -pthread' > $(DESTDIR)$(PREFIX)/lib/pkgconfig/umm.pc
	@echo "installed into $(DESTDIR)$(PREFIX)"

clean:
	rm -rf build build-asan build-tsan

# ---- reliability: fuzzing, soak, valgrind (docs/RELIABILITY.md) ----
#
#   make fuzz [FUZZ_TIME=600]   build-fuzz/fuzz_api (libFuzzer, ASan+UBSan) on fuzz/corpus/
#   make soak [DURATION=60]     every subsystem at once, with a report (build/tests/t_soak)
#   make valgrind               the quick unit tests under valgrind
#
# `make test` builds the fuzzer too; tests/t_fuzz runs it briefly over the corpus
# (and skips when clang's libFuzzer is not there).
FUZZ_TIME ?= 600
DURATION  ?= 60
FUZZ_BIN  := build-fuzz/fuzz_api
FUZZ_CC   ?= clang
FUZZ_OK   := $(shell echo 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n) { return 0; }' | \
	       $(FUZZ_CC) -x c -fsanitize=fuzzer,address,undefined -o /dev/null - >/dev/null 2>&1 && echo ok)
VALGRIND_TESTS ?= t_interval_tree t_phys t_mmap t_fault t_rmap t_errors t_filemap \
		  t_mmu_notifier t_interval_notifier t_notifier_checker t_ksm_engine t_ksm \
		  t_fault_inject t_migrate t_swap t_shmem_swap t_clients

ifeq ($(SAN),fuzz)
ALL_CFLAGS += -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer \
	      -fno-sanitize-recover=undefined -DUMM_SANITIZE=1
LIBS       += -fsanitize=address,undefined
endif

.PHONY: fuzz-build soak valgrind clean-fuzz
ifeq ($(FUZZ_OK),ok)
fuzz-build:
	$(MAKE) --no-print-directory BUILD=build-fuzz SAN=fuzz CC=$(FUZZ_CC) OPT=-O1 build-fuzz/libumm.a
	$(MAKE) --no-print-directory BUILD=build-fuzz SAN=fuzz CC=$(FUZZ_CC) OPT=-O1 $(FUZZ_BIN)
else
fuzz-build:
	@echo "fuzz: $(FUZZ_CC) with libFuzzer not found: the fuzzer is not built (t_fuzz skips)"
endif

build-fuzz/fuzz_api: fuzz/fuzz_api.c build-fuzz/libumm.a $(HDRS)
	$(CC) $(ALL_CFLAGS) -fsanitize=fuzzer -o $@ $< build-fuzz/libumm.a $(LIBS)

fuzz: fuzz-build
	@mkdir -p build-fuzz/corpus build-fuzz/artifacts
	$(FUZZ_BIN) -max_total_time=$(FUZZ_TIME) -max_len=512 -timeout=30 -rss_limit_mb=4096 \
	  -print_final_stats=1 -artifact_prefix=build-fuzz/artifacts/ \
	  build-fuzz/corpus fuzz/corpus

test: fuzz-build

soak: all $(BUILD)/tests/t_soak
	$(BUILD)/tests/t_soak --duration $(DURATION)

valgrind: test-build
	@fail=0; for t in $(VALGRIND_TESTS); do \
	  if UMM_TEST_SHORT=1 valgrind -q --error-exitcode=1 --leak-check=full \
	       --errors-for-leak-kinds=definite --suppressions=tests/valgrind.supp \
	       $(BUILD)/tests/$$t >$(BUILD)/tests/$$t.valgrind 2>&1; \
	  then echo "valgrind clean: $$t"; \
	  else echo "valgrind FAILED: $$t (see $(BUILD)/tests/$$t.valgrind)"; fail=1; fi; \
	done; exit $$fail

clean: clean-fuzz
clean-fuzz:
	rm -rf build-fuzz
