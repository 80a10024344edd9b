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

$(BUILD)/tests/%: tests/%.c tests/tap.h tests/fixture.h $(BUILD)/libumm.a $(CLIENT_SRCS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Itests -Iclients -o $@ $< $(CLIENT_SRCS) $(BUILD)/libumm.a $(LIBS) -lm

$(BUILD)/bench/%: bench/%.c bench/bench_common.h $(BUILD)/libumm.a $(CLIENT_SRCS)
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
