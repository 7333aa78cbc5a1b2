# multigil build. `make` builds multigil/_core for $(PYTHON); `make test-all`
# builds and tests every CPython >= 3.12 that scripts/pythons.sh finds.
# Default: the newest CPython >= 3.12 on this machine (the plain python3 may
# be older); override with `make PYTHON=python3.13 ...`.
ifeq ($(origin PYTHON),undefined)
PYTHON  := $(or $(shell scripts/pythons.sh | tail -n 1),python3)
endif
EXT     := $(shell $(PYTHON) -c 'import sysconfig as s; print(s.get_config_var("EXT_SUFFIX"))')
PYINC   := $(shell $(PYTHON) -c 'import sysconfig as s; print(s.get_paths()["include"])')
# TAG is e.g. .cpython-313-x86_64-linux-gnu: one object folder per Python.
TAG     := $(basename $(EXT))
# src/base: pure C (no Python.h); src/py: the Python-object layer.
BASE_SRCS := $(sort $(wildcard src/base/*.c))
PY_SRCS := $(sort $(wildcard src/py/*.c))
SRCS    := $(BASE_SRCS) $(PY_SRCS)
HDRS    := $(wildcard src/base/*.h src/py/*.h)
VARIANT ?= release
# TEST_HOOKS=1 (`make test`, `make asan`) compiles the test-only functions of
# src/py/sharedtest.c in (-DMG_TEST_HOOKS); `make build` and `pip install .`
# leave them out. FLAVOR_STAMP relinks the module when the flavor changes.
TEST_HOOKS ?= 0
FLAVOR  := $(VARIANT)$(if $(filter 1,$(TEST_HOOKS)),-hooks)
OBJDIR  := build/obj$(TAG)-$(FLAVOR)
OBJS    := $(SRCS:src/%.c=$(OBJDIR)/%.o)
TARGET  := multigil/_core$(EXT)
FLAVOR_STAMP := build/flavor$(TAG)
# CFLAGS is the user's to override; required flags live in REQ.
CFLAGS  ?= -O2 -g
REQ     := -std=gnu11 -fPIC -fvisibility=hidden -Isrc/base -Isrc/py -I$(PYINC) \
           -Wall -Wextra -Wstrict-prototypes -Wmissing-prototypes -Wshadow -Werror \
           $(if $(filter 1,$(TEST_HOOKS)),-DMG_TEST_HOOKS) \
           -DMG_BUILD_VARIANT='"$(FLAVOR)"'
SANFLAGS := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined,float-cast-overflow \
            -fno-sanitize-recover=undefined,float-cast-overflow
VENV    ?= build/venv$(TAG)
PYTEST_ARGS ?=

.PHONY: all build test test-all asan asan-build bench demo clean soak ctest tsan stress FORCE

all: build
build: $(TARGET)

$(TARGET): $(OBJS) $(FLAVOR_STAMP)
	$(CC) -shared $(LDFLAGS) $(EXTRA_LDFLAGS) -o $@ $(OBJS) -pthread

$(FLAVOR_STAMP): FORCE
	@mkdir -p $(@D); echo '$(FLAVOR)' | cmp -s - $@ || echo '$(FLAVOR)' > $@
FORCE:

$(OBJDIR)/%.o: src/%.c $(HDRS)
	@mkdir -p $(@D)
	$(CC) $(REQ) $(CFLAGS) -c -o $@ $<

# Tests for one Python, in its own venv (created with what tests need).
test:
	$(MAKE) TEST_HOOKS=1 build
	@scripts/venv.sh $(PYTHON) $(VENV)
	MULTIGIL_TEST_HOOKS=1 MULTIGIL_WATCHDOG_FD=3 $(VENV)/bin/python -m pytest -q tests $(PYTEST_ARGS) 3>&2

# Every CPython >= 3.12 found on this machine: build, then test.
test-all:
	scripts/test-all.sh

# The suite under AddressSanitizer + UndefinedBehaviorSanitizer.
asan-build:
	rm -f $(TARGET)
	$(MAKE) VARIANT=asan TEST_HOOKS=1 CFLAGS="$(SANFLAGS)" EXTRA_LDFLAGS="-fsanitize=address,undefined" build

asan: asan-build
	@scripts/venv.sh $(PYTHON) $(VENV)
	MULTIGIL_TEST_HOOKS=1 MULTIGIL_WATCHDOG_FD=3 scripts/asan-run.sh $(VENV)/bin/python -m pytest -q -p no:cacheprovider tests $(PYTEST_ARGS) 3>&2; \
	rc=$$?; rm -f $(TARGET); $(MAKE) build; exit $$rc

# C tests of src/base (no Python): tests/c/*.c with every src/base/*.c in
# one binary; `ctest` also runs them on the portable (no futex) wait.
# `tsan` runs them under ThreadSanitizer.
CTEST_DIR := build/ctest
CTEST_CC  := $(CC) -std=gnu11 -Isrc/base -Wall -Wextra -Wshadow -Werror -g -pthread
CTEST_IN  := $(sort $(wildcard tests/c/*.c)) $(BASE_SRCS)

ctest:
	@mkdir -p $(CTEST_DIR)
	$(CTEST_CC) -O1 -DMG_WAIT_NO_FUTEX -o $(CTEST_DIR)/ctest-nofutex $(CTEST_IN) -lm
	$(CTEST_CC) -O1 -o $(CTEST_DIR)/ctest $(CTEST_IN) -lm
	CTEST_LABEL=ctest-nofutex $(CTEST_DIR)/ctest-nofutex
	$(CTEST_DIR)/ctest

tsan:
	@mkdir -p $(CTEST_DIR)
	$(CTEST_CC) -O1 -fsanitize=thread -o $(CTEST_DIR)/ctest-tsan $(CTEST_IN) -lm
	TSAN_OPTIONS="halt_on_error=1 exitcode=66" $(CTEST_DIR)/ctest-tsan

bench: build
	@scripts/venv.sh $(PYTHON) $(VENV) bench
	$(VENV)/bin/python -m multigil bench

demo: build
	@scripts/venv.sh $(PYTHON) $(VENV) bench
	$(VENV)/bin/python examples/demo.py

clean:
	rm -rf build multigil/_core*.so

# The queue stress test at full size (issue #8): 1,000,000 numbered items,
# 4 producer and 4 consumer interpreters, exactly once, also closed
# mid-stream. `make test` runs it at 40,000.
stress:
	$(MAKE) TEST_HOOKS=1 build
	@scripts/venv.sh $(PYTHON) $(VENV)
	MULTIGIL_STRESS_ITEMS=1000000 MULTIGIL_TEST_HOOKS=1 $(VENV)/bin/python -m pytest -q tests/test_queue_stress.py $(PYTEST_ARGS)

# Leak soak, not in `make test`: 1,000,000 tasks through one pool and 1,000
# pool create/use/shutdown cycles (scripts/soak.py); SOAK_SECONDS=30 for
# the short version test-all runs.
SOAK_SECONDS ?=
soak: build
	$(PYTHON) scripts/soak.py $(if $(SOAK_SECONDS),--seconds $(SOAK_SECONDS))

# ---- fuzzing: libFuzzer + ASan target for the codec's decoder ----
# `make fuzz` builds build/fuzz<TAG>/fuzz_decode with clang and runs it for
# FUZZ_TIME seconds over a copy of tests/fuzz/corpus (new inputs go to
# build/, never into the seed corpus). `make fuzz-corpus` regenerates the
# seeds from dumps() of varied values. A pickle inside a message is decoded
# by CPython's pickle, whose memo may ask for huge allocations: ASan returns
# NULL for them (MemoryError) instead of reporting them as crashes.
FUZZ_CC    ?= clang
FUZZ_TIME  ?= 60
FUZZDIR    := build/fuzz$(TAG)
FUZZ_SAN   := -O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address
PYHOME     := $(shell $(PYTHON) -c 'import sys; print(sys.prefix)')
PYLIBDIR   := $(shell $(PYTHON) -c 'import sysconfig as s; print(s.get_config_var("LIBDIR"))')
PYLDVER    := $(shell $(PYTHON) -c 'import sysconfig as s; print(s.get_config_var("LDVERSION"))')
FUZZ_OBJS  := $(SRCS:src/%.c=$(FUZZDIR)/%.o)

.PHONY: fuzz fuzz-build fuzz-corpus fuzz-deps fuzz-csv

# clang and its libFuzzer runtime come from Debian.
fuzz-deps:
	@command -v $(FUZZ_CC) >/dev/null 2>&1 || { apt-get update -qq && \
	  apt-get install -y -qq clang libclang-rt-14-dev >/dev/null; }

$(FUZZDIR)/%.o: src/%.c $(HDRS) | fuzz-deps
	@mkdir -p $(@D)
	$(FUZZ_CC) $(REQ) $(FUZZ_SAN) -c -o $@ $<

$(FUZZDIR)/fuzz_decode: tests/fuzz/fuzz_decode.c $(FUZZ_OBJS)
	$(FUZZ_CC) -std=gnu11 -I$(PYINC) -DMG_PYHOME='"$(PYHOME)"' -O1 -g \
	  -fsanitize=fuzzer,address -o $@ $^ -L$(PYLIBDIR) -lpython$(PYLDVER) \
	  -Wl,-rpath,$(PYLIBDIR) -pthread -lm -ldl

fuzz-build: $(FUZZDIR)/fuzz_decode

fuzz: fuzz-build
	@mkdir -p $(FUZZDIR)/corpus
	PYTHONPATH=$(CURDIR) PYTHONMALLOC=malloc \
	  ASAN_OPTIONS=detect_leaks=0:allocator_may_return_null=1:max_allocation_size_mb=1024 \
	  $(FUZZDIR)/fuzz_decode -max_total_time=$(FUZZ_TIME) \
	  -max_len=4096 -rss_limit_mb=4096 -malloc_limit_mb=4096 -print_final_stats=1 \
	  -artifact_prefix=$(FUZZDIR)/ $(FUZZDIR)/corpus tests/fuzz/corpus

# `make fuzz-csv` fuzzes the pure-C CSV reader (src/base only, no Python):
# one-chunk per-cell and tiny-chunk multi-thread reads must agree (tests/fuzz/
# fuzz_csv.c), under ASan and UBSan, with every unzeroed output block filled
# with a byte of its own (MG_POISON_UNINIT), so that an output byte the
# reader never wrote makes the two reads differ. Seeds: tests/fuzz/csv_corpus.
FUZZ_CSV_FLAGS := -std=gnu11 -Isrc/base -O1 -g -fno-omit-frame-pointer \
                  -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
                  -DMG_POISON_UNINIT

$(FUZZDIR)/fuzz_csv: tests/fuzz/fuzz_csv.c $(BASE_SRCS) $(wildcard src/base/*.h) | fuzz-deps
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CSV_FLAGS) -o $@ tests/fuzz/fuzz_csv.c $(BASE_SRCS) -pthread -lm

fuzz-csv: $(FUZZDIR)/fuzz_csv
	@mkdir -p $(FUZZDIR)/csv_corpus
	$(FUZZDIR)/fuzz_csv -max_total_time=$(FUZZ_TIME) -max_len=4096 \
	  -print_final_stats=1 -artifact_prefix=$(FUZZDIR)/csv- \
	  $(FUZZDIR)/csv_corpus tests/fuzz/csv_corpus

fuzz-corpus: build
	$(PYTHON) tests/fuzz/make_corpus.py tests/fuzz/corpus
