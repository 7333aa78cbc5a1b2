# multigil build. `make` builds multigil/_core for $(PYTHON); `make test-all`
# builds and tests every CPython >= 3.12 that scripts/pythons.sh finds.
PYTHON  ?= python3
EXT     := $(shell $(PYTHON) -c 'import sysconfig as s; print(s.get_config_var("EXT_SUFFIX"))')
PYINC   := $(shell $(PYTHON) -c 'import sysconfig as s; print(s.get_paths()["include"])')
# TAG is e.g. .cpython-313-x86_64-linux-gnu: one object folder per Python.
TAG     := $(basename $(EXT))
SRCS    := $(sort $(wildcard src/*.c))
HDRS    := $(wildcard src/*.h)
VARIANT ?= release
OBJDIR  := build/obj$(TAG)-$(VARIANT)
OBJS    := $(SRCS:src/%.c=$(OBJDIR)/%.o)
TARGET  := multigil/_core$(EXT)
# CFLAGS is the user's to override; required flags live in REQ.
CFLAGS  ?= -O2 -g
REQ     := -std=gnu11 -fPIC -fvisibility=hidden -Isrc -I$(PYINC) \
           -Wall -Wextra -Wstrict-prototypes -Wmissing-prototypes -Wshadow -Werror
SANFLAGS := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
VENV    ?= build/venv$(TAG)
PYTEST_ARGS ?=

.PHONY: all build test test-all asan asan-build bench demo clean

all: build
build: $(TARGET)

$(TARGET): $(OBJS)
	$(CC) -shared $(LDFLAGS) $(EXTRA_LDFLAGS) -o $@ $^ -pthread

$(OBJDIR)/%.o: src/%.c $(HDRS)
	@mkdir -p $(@D)
	$(CC) $(REQ) $(CFLAGS) -c -o $@ $<

# Tests for one Python, in its own venv (created with what tests need).
test: build
	@scripts/venv.sh $(PYTHON) $(VENV)
	$(VENV)/bin/python -m pytest -q tests $(PYTEST_ARGS)

# Every CPython >= 3.12 found on this machine: build, then test.
test-all:
	scripts/test-all.sh

# The suite under AddressSanitizer + UndefinedBehaviorSanitizer.
asan-build:
	rm -f $(TARGET)
	$(MAKE) VARIANT=asan CFLAGS="$(SANFLAGS)" EXTRA_LDFLAGS="-fsanitize=address,undefined" build

asan: asan-build
	@scripts/venv.sh $(PYTHON) $(VENV)
	scripts/asan-run.sh $(VENV)/bin/python -m pytest -q -p no:cacheprovider tests $(PYTEST_ARGS); \
	rc=$$?; rm -f $(TARGET); $(MAKE) build; exit $$rc

bench: build
	@scripts/venv.sh $(PYTHON) $(VENV) bench
	$(VENV)/bin/python -m multigil bench

demo: build
	@scripts/venv.sh $(PYTHON) $(VENV) bench
	$(VENV)/bin/python examples/demo.py

clean:
	rm -rf build multigil/_core*.so
