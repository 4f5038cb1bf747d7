# shuttle for nginx
#
#   make            the nginx module and the programs, into build/
#   make deps       install the Debian packages the project needs
#   make test       deps + build + every test (prove)
#   make bench      deps + build + the benchmarks
#   make faults     deps + build + the fault matrix, one line per fault
#   make run        deps + build + a local platform under .run/
#   make stop       stop what make run started
#   make install    the module and programs into the system
#   make deb        Debian packages into build/deb/ (debian/, debhelper):
#                   libnginx-mod-http-shuttle, shuttle-builder, shuttle-cli
#   make test-deb   make deb, then install, use and purge them on this
#                   machine (system-wide; not part of make test)
#
# make NGINX_SRC=/path/to/nginx-x.y.z builds the module against an upstream
# nginx source tree (--with-compat) instead of Debian's nginx-dev tree.

NGINX_SRC    ?= /usr/share/nginx/src
NGINX        ?= /usr/sbin/nginx
PREFIX       ?= /usr/local
MODULES_DIR  ?= /usr/lib/nginx/modules

CC           ?= cc
CFLAGS       ?= -O2 -g
SHUTTLE_CFLAGS = -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror \
                 -Wno-unused-parameter -Iinclude $(BUILDER_INCS) $(CFLAGS) \
                 $(shell pkg-config --cflags libpq 2>/dev/null)

B            := build
DEBIAN_SRC   := /usr/share/nginx/src

# Debian's tree ships the exact flags its nginx was configured with; an
# upstream tree only needs --with-compat to make a loadable module.
ifeq ($(NGINX_SRC),$(DEBIAN_SRC))
NGX_CONF_FLAGS = $(shell bash -c '. $(DEBIAN_SRC)/conf_flags && \
                                  echo "$${NGX_CONF_FLAGS[@]}"')
else
NGX_CONF_FLAGS = --with-compat
endif

DEPS_PKGS := gcc make pkg-config perl nginx nginx-dev libpcre2-dev \
             zlib1g-dev libssl-dev libsqlite3-dev sqlite3 libjansson-dev \
             libarchive-dev libmicrohttpd-dev libcurl4-openssl-dev wrk \
             curl libelf-dev libpq-dev postgresql libseccomp-dev
# what make test needs beside: a browser for the dashboard's test, strace
# (races held open in the module's), openssl (a TLS backend's certificate)
TEST_DEPS_PKGS := chromium chromium-driver strace openssl

MODULE_SRCS := $(wildcard ngx_shuttle_module/*.c ngx_shuttle_module/*.h) \
               include/shuttle_zone.h
# the builder's files, in builder/ and its folders (docs/layout.md); each
# folder is on the include path, so a header is named by its file name
BUILDER_SRCS := $(wildcard builder/*.c builder/*/*.c)
BUILDER_HDRS := $(wildcard builder/*.h builder/*/*.h) include/shuttle_zone.h
BUILDER_INCS := -Ibuilder $(patsubst %/,-I%,$(sort $(dir \
                  $(wildcard builder/*/*.h))))
BUILDER_LIBS = $(shell pkg-config --libs libarchive sqlite3 libmicrohttpd \
                 jansson libcrypto libelf libpq libseccomp) -lpthread
# the builder's sources but its main(): what the unit tests link with
BUILDER_LIB_SRCS := $(filter-out builder/main.c,$(BUILDER_SRCS))

LOADER_SRCS := $(wildcard loader/*.c)
LOADER_HDRS := $(wildcard loader/*.h) include/shuttle.h \
               include/shuttle_loader.h
# no libpq: the loader dlopen()s it for the services that use PostgreSQL
# (linked, it is about 11 ms of every loader's start)
LOADER_LIBS = $(shell pkg-config --libs libmicrohttpd jansson sqlite3) \
              -ldl -lpthread

# the tenants' sandbox, a library of its own (builder/sandbox/): the
# builder, the loader and the CLI link it
SANDBOX_SRCS := $(wildcard builder/sandbox/*.c)
SANDBOX_HDRS := $(wildcard builder/sandbox/*.h)

# the CLI builds projects for "shuttle run" with the builder's own rules,
# and reads their resource declarations as the builder does
CLI_BUILDER := $(wildcard builder/build/build*.c) $(SANDBOX_SRCS) \
               $(wildcard builder/build/resources.c)
CLI_SRCS := $(wildcard cli/*.c)
CLI_HDRS := $(wildcard cli/*.h) $(wildcard builder/build/build*.h) \
            $(wildcard builder/build/resources.h) $(SANDBOX_HDRS)
# libcurl and libarchive are dlopen()ed by the commands that use them
# (cli/lazy.c): linked, they are most of every start's cost
CLI_LIBS = $(shell pkg-config --libs jansson libelf libseccomp) \
           -ldl -lpthread

PROGRAMS := $(B)/bin/shuttle-builder \
            $(if $(LOADER_SRCS),$(B)/bin/shuttle-loader) \
            $(if $(CLI_SRCS),$(B)/bin/shuttle)
MODULE   := $(B)/modules/ngx_http_shuttle_module.so
# every t/unit/NAME.c is a test program build/t/NAME
TESTBINS := $(patsubst t/unit/%.c,$(B)/t/%,$(wildcard t/unit/*.c))

.PHONY: all deps test bench faults run stop install deb deb-deps test-deb \
        clean

all: $(MODULE) $(PROGRAMS) $(TESTBINS)


# the nginx module ------------------------------------------------------

$(B)/nginx/Makefile: config $(NGINX_SRC)/src/core/nginx.h
	rm -rf $(B)/nginx-src $(B)/nginx
	mkdir -p $(B)/nginx-src $(B)/nginx
	cp -a $(NGINX_SRC)/auto $(NGINX_SRC)/src $(NGINX_SRC)/configure \
	    $(B)/nginx-src/
	cd $(B)/nginx-src && ./configure $(NGX_CONF_FLAGS) \
	    --with-cc-opt='-O2 -g' \
	    --add-dynamic-module=$(CURDIR) --builddir=$(abspath $(B))/nginx \
	    > $(abspath $(B))/nginx/configure.log 2>&1 \
	    || { tail -20 $(abspath $(B))/nginx/configure.log; exit 1; }

$(MODULE): $(B)/nginx/Makefile $(MODULE_SRCS)
	$(MAKE) -C $(B)/nginx-src -f $(abspath $(B))/nginx/Makefile modules
	mkdir -p $(B)/modules
	cp $(B)/nginx/ngx_http_shuttle_module.so $@


# programs -------------------------------------------------------------

$(B)/bin/shuttle-builder: $(BUILDER_SRCS) $(BUILDER_HDRS)
	mkdir -p $(B)/bin
	$(CC) $(SHUTTLE_CFLAGS) -Ibuilder -o $@ $(BUILDER_SRCS) $(BUILDER_LIBS)

# the loader exports the SDK's functions to the services it dlopen()s
# and links the sandbox's code: a warm loader sets a sandbox up itself
$(B)/bin/shuttle-loader: $(LOADER_SRCS) $(LOADER_HDRS) $(SANDBOX_SRCS) \
                         $(SANDBOX_HDRS)
	mkdir -p $(B)/bin
	$(CC) $(SHUTTLE_CFLAGS) -Iloader -Ibuilder -rdynamic -o $@ \
	    $(LOADER_SRCS) $(SANDBOX_SRCS) $(LOADER_LIBS) \
	    $(shell pkg-config --libs libseccomp)

$(B)/bin/shuttle: $(CLI_SRCS) $(CLI_HDRS) $(CLI_BUILDER)
	mkdir -p $(B)/bin
	$(CC) $(SHUTTLE_CFLAGS) -Icli -Ibuilder -o $@ $(CLI_SRCS) \
	    $(CLI_BUILDER) $(CLI_LIBS)

$(B)/t/%: t/unit/%.c t/unit/tap.h $(BUILDER_LIB_SRCS) $(BUILDER_HDRS)
	mkdir -p $(B)/t
	$(CC) $(SHUTTLE_CFLAGS) -Ibuilder -o $@ $< $(BUILDER_LIB_SRCS) \
	    $(BUILDER_LIBS)

# fuzzing ----------------------------------------------------------------
#
# Every t/fuzz/TARGET.c is a libFuzzer target over one parser of untrusted
# bytes.  make builds each, with gcc, AddressSanitizer and UBSan, into a
# replay driver build/t/fuzz-replay-TARGET that runs it on the files named
# (t/fuzz-replay.t feeds it t/fuzz/corpus/TARGET/, so an input kept from a
# sanitizer's finding fails make test); make fuzz builds them with clang and
# libFuzzer into build/fuzz/ and runs each for FUZZ_SECONDS, its new inputs
# kept in build/fuzz/corpus/TARGET/; make check-asan builds the unit tests
# with the sanitizers and runs them, and the replays.

FUZZ_SECONDS    ?= 60
FUZZ_CC         ?= clang
FUZZ_DEPS_PKGS  := clang libclang-rt-14-dev
# by the code they link with: the builder's, the loader's, the module's
FUZZ_BTARGETS   := keys extract manifest resources zone deployargs
# builder/api/*.c are included by its target, not linked
FUZZ_ATARGETS   := apibody
FUZZ_LTARGETS   := route request
# loader/resources.c is included by its target, not linked
FUZZ_RTARGETS   := resfd
FUZZ_MTARGETS   := modzone modkeys
# and nginx's HTTP parsers, t/fuzz/ngx_fuzz_parse.c's stand-ins
FUZZ_NTARGETS   := modrelay
FUZZ_CTARGETS   := ignore cliconfig cliapi
FUZZ_TARGETS    := $(FUZZ_BTARGETS) $(FUZZ_ATARGETS) \
                   $(FUZZ_LTARGETS) $(FUZZ_RTARGETS) \
                   $(FUZZ_MTARGETS) $(FUZZ_NTARGETS) $(FUZZ_CTARGETS)
FUZZ_CFLAGS      = $(SHUTTLE_CFLAGS) -Ibuilder -Iloader -Icli -It/fuzz
# -Werror is gcc's gate (make all); clang's extra warnings are only shown
FUZZ_CC_CFLAGS  := -Wno-error
ASAN_FLAGS      := -fsanitize=address,undefined -fno-sanitize-recover=all \
                   -fno-omit-frame-pointer
LIBFUZZER_FLAGS := -fsanitize=fuzzer-no-link,address,undefined \
                   -fno-sanitize-recover=all -fno-omit-frame-pointer
LIBFUZZER_LINK   = $(subst fuzzer-no-link,fuzzer,$(LIBFUZZER_FLAGS))

FUZZ_BUILDER_OBJS := $(BUILDER_LIB_SRCS:.c=.o) t/fuzz/fuzz.o
FUZZ_LOADER_OBJS  := $(patsubst %.c,%.o,\
                       $(filter-out loader/main.c,$(LOADER_SRCS))) \
                     t/fuzz/fuzz.o
# the CLI's code, its main() renamed (cli_error() and friends are there)
FUZZ_CLI_OBJS     := $(CLI_SRCS:.c=.o) $(CLI_BUILDER:.c=.o) t/fuzz/fuzz.o
FUZZ_HDRS         := $(BUILDER_HDRS) $(LOADER_HDRS) $(CLI_HDRS) t/fuzz/fuzz.h

# the module's targets #include its .c files, compiled against the
# configured nginx tree with nginx's warnings; t/fuzz/ngx_fuzz.c stands in
# for the few nginx functions they run (see t/fuzz/ngx_fuzz.h)
FUZZ_NGX_SRC      := $(B)/nginx-src/src
FUZZ_NGX_CFLAGS    = $(CFLAGS) -W -Wall -Wpointer-arith \
                     -Wno-unused-parameter -Werror \
                     $(addprefix -I$(FUZZ_NGX_SRC)/,core event event/modules \
                       os/unix http http/modules http/v2) \
                     -I$(B)/nginx -Iinclude -Ingx_shuttle_module -It/fuzz
FUZZ_NGX_SRCS     := $(FUZZ_MTARGETS:%=t/fuzz/%.c) t/fuzz/ngx_fuzz.c \
                     $(FUZZ_NTARGETS:%=t/fuzz/%.c) t/fuzz/ngx_fuzz_parse.c
FUZZ_MODULE_OBJS  := t/fuzz/ngx_fuzz.o t/fuzz/ngx_unreached.o t/fuzz/fuzz.o

# the replay drivers that make test runs are built with the sanitizers on
FUZZ_REPLAYS  := $(FUZZ_TARGETS:%=$(B)/t/fuzz-replay-%)
FUZZERS       := $(FUZZ_TARGETS:%=$(B)/fuzz/fuzz-%)
ASAN_REPLAYS  := $(FUZZ_REPLAYS)
ASAN_TESTBINS := $(patsubst t/unit/%.c,$(B)/t/asan/%,$(wildcard t/unit/*.c))

.PHONY: fuzz fuzz-deps check-asan

all: $(FUZZ_REPLAYS)

# objects: gcc with sanitizers, clang with libFuzzer's and the sanitizers
$(B)/fuzz/asan/%.o: %.c $(FUZZ_HDRS)
	mkdir -p $(@D)
	$(CC) $(FUZZ_CFLAGS) $(ASAN_FLAGS) -c -o $@ $<

$(B)/fuzz/clang/%.o: %.c $(FUZZ_HDRS)
	mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(FUZZ_CC_CFLAGS) $(LIBFUZZER_FLAGS) -c -o $@ $<

# the targets that #include the file they test
$(B)/fuzz/asan/t/fuzz/apibody.o $(B)/fuzz/clang/t/fuzz/apibody.o: \
        $(wildcard builder/api/*.c builder/api/*.h)
$(B)/fuzz/asan/t/fuzz/resfd.o $(B)/fuzz/clang/t/fuzz/resfd.o: \
        loader/resources.c

$(B)/fuzz/asan/cli/main.o $(B)/fuzz/clang/cli/main.o: \
        FUZZ_CFLAGS += -Dmain=cli_main

$(FUZZ_NGX_SRCS:%.c=$(B)/fuzz/asan/%.o): $(B)/fuzz/asan/%.o: %.c \
        $(MODULE_SRCS) t/fuzz/ngx_fuzz.h t/fuzz/fuzz.h | $(B)/nginx/Makefile
	mkdir -p $(@D)
	$(CC) $(FUZZ_NGX_CFLAGS) $(ASAN_FLAGS) -c -o $@ $<

$(FUZZ_NGX_SRCS:%.c=$(B)/fuzz/clang/%.o): $(B)/fuzz/clang/%.o: %.c \
        $(MODULE_SRCS) t/fuzz/ngx_fuzz.h t/fuzz/fuzz.h | $(B)/nginx/Makefile
	mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_NGX_CFLAGS) $(FUZZ_CC_CFLAGS) $(LIBFUZZER_FLAGS) \
	    -c -o $@ $<

# $(call fuzz_family,TARGETS,OBJECTS,LIBS): each target's replay driver
# and libFuzzer binary, linked with OBJECTS
define fuzz_family
$(1:%=$(B)/t/fuzz-replay-%): $(B)/t/fuzz-replay-%: \
        $(B)/fuzz/asan/t/fuzz/%.o $(B)/fuzz/asan/t/fuzz/replay.o \
        $(addprefix $(B)/fuzz/asan/,$(2))
	mkdir -p $$(@D)
	$$(CC) $$(ASAN_FLAGS) -o $$@ $$^ $(3)

$(1:%=$(B)/fuzz/fuzz-%): $(B)/fuzz/fuzz-%: \
        $(B)/fuzz/clang/t/fuzz/%.o $(addprefix $(B)/fuzz/clang/,$(2))
	$$(FUZZ_CC) $$(LIBFUZZER_LINK) -o $$@ $$^ $(3)
endef

$(eval $(call fuzz_family,$(FUZZ_BTARGETS),$(FUZZ_BUILDER_OBJS),\
                          $(BUILDER_LIBS)))
$(eval $(call fuzz_family,$(FUZZ_ATARGETS),\
                          $(filter-out builder/api/%.o,$(FUZZ_BUILDER_OBJS)),\
                          $(BUILDER_LIBS)))
$(eval $(call fuzz_family,$(FUZZ_LTARGETS),$(FUZZ_LOADER_OBJS),\
                          $(LOADER_LIBS)))
$(eval $(call fuzz_family,$(FUZZ_RTARGETS),\
                          $(filter-out loader/resources.o,$(FUZZ_LOADER_OBJS)),\
                          $(LOADER_LIBS)))
$(eval $(call fuzz_family,$(FUZZ_MTARGETS),$(FUZZ_MODULE_OBJS),-lcrypto))
$(eval $(call fuzz_family,$(FUZZ_NTARGETS),\
                          $(FUZZ_MODULE_OBJS) t/fuzz/ngx_fuzz_parse.o,-lcrypto))
$(eval $(call fuzz_family,$(FUZZ_CTARGETS),$(FUZZ_CLI_OBJS),$(CLI_LIBS)))

$(B)/t/asan/%: t/unit/%.c t/unit/tap.h \
        $(addprefix $(B)/fuzz/asan/,$(BUILDER_LIB_SRCS:.c=.o))
	mkdir -p $(@D)
	$(CC) $(SHUTTLE_CFLAGS) -Ibuilder $(ASAN_FLAGS) -o $@ $< \
	    $(addprefix $(B)/fuzz/asan/,$(BUILDER_LIB_SRCS:.c=.o)) \
	    $(BUILDER_LIBS)

fuzz-deps:
	$(MAKE) deps DEPS_PKGS="$(FUZZ_DEPS_PKGS)"

# FUZZ_TARGETS="zone route" runs those only; a crash leaves its input in
# build/fuzz/crash-*, to be fixed and added to t/fuzz/corpus/TARGET/
fuzz: fuzz-deps
	$(MAKE) $(FUZZERS)
	@for t in $(FUZZ_TARGETS); do \
	    mkdir -p $(B)/fuzz/corpus/$$t || exit 1; \
	    echo "fuzz $$t: $(FUZZ_SECONDS) s"; \
	    $(B)/fuzz/fuzz-$$t -max_total_time=$(FUZZ_SECONDS) \
	        -close_fd_mask=3 -print_final_stats=1 \
	        -artifact_prefix=$(B)/fuzz/crash-$$t- \
	        $(B)/fuzz/corpus/$$t t/fuzz/corpus/$$t || exit 1; \
	done

# the unit tests that have a t/NAME.t (zone-poke is a helper), under prove
ASAN_UNITS = $(filter $(patsubst t/%.t,$(B)/t/asan/%,$(wildcard t/*.t)),\
               $(ASAN_TESTBINS))

check-asan: $(ASAN_TESTBINS) $(ASAN_REPLAYS)
	prove --exec '' $(ASAN_UNITS)
	@for t in $(FUZZ_TARGETS); do \
	    log=$(B)/t/asan/fuzz-replay-$$t.log; \
	    $(B)/t/fuzz-replay-$$t t/fuzz/corpus/$$t/* \
	        > /dev/null 2> $$log || { cat $$log; exit 1; }; \
	    echo "fuzz-replay-$$t: $$(tail -1 $$log), clean"; \
	done

# the module's tests under the sanitizers -----------------------------------
#
# make check-module-asan builds the module again, with AddressSanitizer
# and UBSan, in a tree of its own (build/asan-nginx/), and runs the
# module's tests (MODULE_ASAN_TESTS) against $(NGINX) started by a wrapper
# that preloads gcc's libasan: the workers fork from that master and keep
# the runtime.  A sanitizer's report goes to build/asan-nginx/log/ (the
# workers run as nobody); any report fails the target.  Leaks are not
# looked for: nginx leaves its cycle's memory to the exit.

ASAN_NGX_MODULE   := $(B)/asan-nginx/ngx_http_shuttle_module.so
ASAN_NGX_WRAPPER  := $(B)/asan-nginx/nginx
ASAN_NGX_LOG      := $(B)/asan-nginx/log
MODULE_ASAN_TESTS ?= $(wildcard t/module-*.t) t/route.t

.PHONY: check-module-asan

$(B)/asan-nginx/Makefile: config $(NGINX_SRC)/src/core/nginx.h
	rm -rf $(B)/asan-nginx-src $(B)/asan-nginx
	mkdir -p $(B)/asan-nginx-src $(B)/asan-nginx
	cp -a $(NGINX_SRC)/auto $(NGINX_SRC)/src $(NGINX_SRC)/configure \
	    $(B)/asan-nginx-src/
	cd $(B)/asan-nginx-src && ./configure $(NGX_CONF_FLAGS) \
	    --with-cc-opt='-O1 -g $(ASAN_FLAGS)' --with-ld-opt='$(ASAN_FLAGS)' \
	    --add-dynamic-module=$(CURDIR) \
	    --builddir=$(abspath $(B))/asan-nginx \
	    > $(abspath $(B))/asan-nginx/configure.log 2>&1 \
	    || { tail -20 $(abspath $(B))/asan-nginx/configure.log; exit 1; }

$(ASAN_NGX_MODULE): $(B)/asan-nginx/Makefile $(MODULE_SRCS)
	$(MAKE) -C $(B)/asan-nginx-src -f $(abspath $(B))/asan-nginx/Makefile \
	    modules

$(ASAN_NGX_WRAPPER): Makefile
	mkdir -p $(@D)
	printf '%s\n' '#!/bin/sh' \
	    'LD_PRELOAD=$(shell $(CC) -print-file-name=libasan.so)' \
	    'ASAN_OPTIONS=detect_leaks=0:log_path=$(abspath $(ASAN_NGX_LOG))/asan' \
	    'UBSAN_OPTIONS=print_stacktrace=1:log_path=$(abspath $(ASAN_NGX_LOG))/ubsan' \
	    'export LD_PRELOAD ASAN_OPTIONS UBSAN_OPTIONS' \
	    'exec $(NGINX) "$$@"' > $@
	chmod 755 $@

check-module-asan: all $(ASAN_NGX_MODULE) $(ASAN_NGX_WRAPPER)
	rm -rf $(ASAN_NGX_LOG)
	mkdir -p $(ASAN_NGX_LOG)
	chmod 1777 $(ASAN_NGX_LOG)
	SHUTTLE_MODULE=$(abspath $(ASAN_NGX_MODULE)) \
	NGINX_BINARY=$(abspath $(ASAN_NGX_WRAPPER)) \
	    prove $(MODULE_ASAN_TESTS); rc=$$?; \
	for f in $(ASAN_NGX_LOG)/*; do \
	    [ -e "$$f" ] || continue; echo "== $$f"; cat "$$f"; rc=1; \
	done; \
	[ $$rc = 0 ] && echo "check-module-asan: no sanitizer report"; \
	exit $$rc

# the two commands and friends -------------------------------------------

deps:
	@missing=""; for p in $(DEPS_PKGS); do \
	    dpkg-query -W -f='$${Status}' $$p 2>/dev/null \
	        | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	    echo "installing:$$missing"; \
	    sudo=""; [ "$$(id -u)" = 0 ] || sudo=sudo; \
	    $$sudo apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq \
	        --no-install-recommends $$missing; \
	fi

# no include circle between the project's files (t/check-includes.t too)
.PHONY: check-includes
check-includes:
	perl t/check-includes.pl

test: deps check-includes
	$(MAKE) deps DEPS_PKGS="$(TEST_DEPS_PKGS)"
	$(MAKE) all
	prove -j2 t/

bench: deps
	$(MAKE) all
	perl t/bench/bench.pl

# the fault matrix (t/faults-*.t) with its long cases, one line per fault
faults: deps
	$(MAKE) all
	@rm -f $(B)/faults.tsv
	SHUTTLE_FAULTS_FULL=1 SHUTTLE_FAULTS_REPORT=$(CURDIR)/$(B)/faults.tsv \
	    prove t/faults-*.t; rc=$$?; \
	perl t/faults-table.pl $(B)/faults.tsv; exit $$rc

# PORT=8080: where the local platform listens (127.0.0.1 only)
PORT ?= 8080
# IDLE=2s: projects with no request for that long scale to zero (0: never)
IDLE ?= 0

run: deps
	$(MAKE) all
	@IDLE='$(IDLE)' sh conf/local.sh start $(PORT)

stop:
	@sh conf/local.sh stop

install: all
	install -d $(DESTDIR)$(MODULES_DIR) $(DESTDIR)$(PREFIX)/bin \
	    $(DESTDIR)$(PREFIX)/include
	install -m 0644 $(MODULE) $(DESTDIR)$(MODULES_DIR)/
	install -m 0755 $(PROGRAMS) $(DESTDIR)$(PREFIX)/bin/
	install -m 0644 include/shuttle.h include/shuttle_res.h \
	    include/shuttle_zone.h \
	    $(DESTDIR)$(PREFIX)/include/

# Debian packages --------------------------------------------------------
#
# make deb copies the tree (without build/, .git, .run/) to
# build/deb/shuttle-VERSION/ and runs dpkg-buildpackage there: the .debs,
# .buildinfo and .changes land in build/deb/, the checkout stays clean.
# lintian then checks them (debian/*.lintian-overrides explain the rest).

DEB_DEPS_PKGS := debhelper dpkg-dev fakeroot lintian gcc make pkg-config \
                 nginx nginx-dev libpcre2-dev zlib1g-dev libssl-dev \
                 libsqlite3-dev libjansson-dev libarchive-dev \
                 libmicrohttpd-dev libcurl4-openssl-dev libelf-dev \
                 libpq-dev libseccomp-dev
DEB_VERSION = $(shell dpkg-parsechangelog -l debian/changelog -S Version)
DEB_DIR     := $(B)/deb

deb-deps:
	$(MAKE) deps DEPS_PKGS="$(DEB_DEPS_PKGS)"

deb: deb-deps
	rm -rf $(DEB_DIR)
	mkdir -p $(DEB_DIR)/shuttle-$(DEB_VERSION)
	tar -c --exclude=./build --exclude=./.git --exclude=./.run -f - . \
	    | tar -x -C $(DEB_DIR)/shuttle-$(DEB_VERSION)
	cd $(DEB_DIR)/shuttle-$(DEB_VERSION) && \
	    dpkg-buildpackage -b -us -uc > ../build.log 2>&1 \
	    || { tail -40 ../build.log; exit 1; }
	rm -rf $(DEB_DIR)/shuttle-$(DEB_VERSION)
	@cd $(DEB_DIR) && ls -l *.deb && \
	    echo "lintian:" && lintian --fail-on error *.changes && \
	    echo "lintian: no error"

# installs the three packages, runs the platform from them with the stock
# nginx, purges them and checks the machine is as it was (t/deb/test-deb.sh)
test-deb: deb
	$(MAKE) deps DEPS_PKGS="curl perl"
	bash t/deb/test-deb.sh $(DEB_DIR)

clean:
	rm -rf $(B)
