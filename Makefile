# Cria build. `make run` sets everything up and runs the default job; `make test` runs the tests.
# Every target carries a one-line comment; `make help` lists them.

SHELL := /bin/bash
JAVA_HOME := $(shell tools/find-jdk)
ifeq ($(JAVA_HOME),)
$(error no JDK 25 found: install Temurin 25 (https://adoptium.net) or set CRIA_JAVA_HOME)
endif
export JAVA_HOME
# Maven's own libraries warn on JDK 25 about sun.misc.Unsafe; those warnings are not ours.
export MAVEN_OPTS ?= --sun-misc-unsafe-memory-access=allow --enable-native-access=ALL-UNNAMED
MVN := mvn -B --no-transfer-progress -Dstyle.color=never
NVCC ?= $(shell command -v nvcc 2>/dev/null)
CC ?= gcc

JAR := target/cria.jar
SOURCES := $(shell find java/src/main -type f) pom.xml
KDIR := target/generated-resources/kernels/cria/kernels
KERNEL_HDRS := $(wildcard kernels/*.cuh)
ifeq ($(NVCC),)
FATBINS :=
else
FATBINS := $(patsubst kernels/%.cu,$(KDIR)/%.fatbin,$(wildcard kernels/*.cu))
endif
NVCC_ARCHS := -gencode arch=compute_80,code=sm_80 -gencode arch=compute_86,code=sm_86 \
              -gencode arch=compute_89,code=sm_89 -gencode arch=compute_90,code=sm_90 \
              -gencode arch=compute_90,code=compute_90
NATIVE_SRC := $(wildcard native/*.c) $(wildcard native/*.h)
NATIVE_LIB := target/native/libcria.so
# The library ships in the jar for this OS and architecture (cria/native/<os>-<arch>/libcria.so).
PLATFORM := $(shell uname -s | tr A-Z a-z)-$(shell uname -m)
NATIVE_RES := target/generated-resources/native/cria/native/$(PLATFORM)/libcria.so
# x86-64: the kernels are written for AVX-512 VNNI and built for exactly that ISA (not
# -march=native), so that the library in the jar runs on every CPU that has it; native/cpu.c is
# built for the baseline and tells the loader whether this CPU does. Elsewhere: the portable C.
ifeq ($(shell uname -m),x86_64)
NATIVE_ISA := -march=x86-64-v4 -mavx512vnni
NATIVE_NEEDS := -DCRIA_NEEDS_X86_64_V4_VNNI
endif
DEMO_MODEL := target/demo/cria-demo.gguf
# The default model: trained once by `make run` on the built-in story corpus, then reused.
DEFAULT_DIR := target/default
DEFAULT_MODEL := $(DEFAULT_DIR)/cria-stories.gguf
DEFAULT_TRAIN := --vocab-size 512 --dim 64 --layers 5 --heads 8 --kv-heads 4 --ffn 172 --ctx 128 --batch 16 \
                 --steps 800 --lr 3e-3 --warmup 30 --schedule cosine --min-lr 3e-4 --weight-decay 0.1 --eval-every 100 --seed 1
AOT := target/cria.aot

.PHONY: all build run test bench kernels native install clean help

all: build ## build everything: CUDA kernels (when nvcc is here), the native CPU library, the jar

build: $(JAR) $(NATIVE_LIB) target/java-home $(AOT) ## the same as all
	@[ -n "$(NVCC)" ] || echo "make: nvcc not found: CUDA kernels not built; the CPU path works and --backend cuda will say so"

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' Makefile | sed 's/:.*## /\t/'

run: build $(DEFAULT_MODEL) ## build, train the default model once (about 2 minutes), generate text with it
	@echo "== the default model: $(DEFAULT_MODEL)"
	@./cria info $(DEFAULT_MODEL) | sed -n 's/^ *general.description *string *"\(.*\)"/==   \1/p'
	@echo "==   (trained by Cria itself on its built-in corpus of simple stories; loss curve: $(DEFAULT_DIR)/loss.png)"
	@echo "== ./cria generate -m $(DEFAULT_MODEL) -p 'once upon a time' -n 120 --seed 7"
	@./cria generate -m $(DEFAULT_MODEL) -p "once upon a time" -n 120 --seed 7
	@echo
	@echo "== To run a real model (any Llama-family GGUF, e.g. from Hugging Face):"
	@echo "==   ./cria generate -m path/to/model.gguf -p 'Once upon a time' -n 128"
	@echo "==   ./cria generate -m path/to/model.gguf --chat        (interactive chat)"
	@echo "==   ./cria --help                                       (every verb; README.md has examples)"

test: build ## run the whole test suite (tests that need ../shared or a GPU skip and say why)
	@# UserProjectTest installs the jar with the install plugin: fetched here, with the build's other plugins
	@$(MVN) -q org.apache.maven.plugins:maven-install-plugin:3.1.4:help > /dev/null
	$(MVN) test

bench: build ## JMH microbenchmarks of the CPU matrix products (whole models: ./cria bench, see BENCHMARKS.md)
	@$(MVN) -q test-compile dependency:build-classpath -Dmdep.outputFile=target/test-classpath.txt -Dmdep.includeScope=test
	"$(JAVA_HOME)/bin/java" --enable-native-access=ALL-UNNAMED --add-modules jdk.incubator.vector -Dcria.native.dir=target/native \
	  -cp "target/test-classes:target/classes:$$(cat target/test-classpath.txt)" org.openjdk.jmh.Main \
	  $(or $(BENCH_ARGS),-f 1 -wi 3 -w 1s -i 5 -r 1s) cria.bench

kernels: $(FATBINS) ## compile each kernels/<family>.cu into a fatbin (sm_80..sm_90 + PTX) for the jar

native: $(NATIVE_LIB) ## build the C kernels in native/ into target/native/libcria.so (loaded through FFM)

install: build ## install dev.cria:cria (jar with its native library and kernels, sources, Javadoc) into the local Maven repository
	tools/maven-install

clean: ## remove everything the build made
	rm -rf target

$(JAR): $(SOURCES) $(FATBINS) $(NATIVE_RES)
	$(MVN) -q -DskipTests package

$(KDIR)/%.fatbin: kernels/%.cu $(KERNEL_HDRS)
	@mkdir -p $(dir $@)
	$(NVCC) -std=c++17 -O3 --threads 0 --fatbin $(NVCC_ARCHS) -Ikernels -o $@ $<

$(NATIVE_LIB): $(NATIVE_SRC)
	@mkdir -p $(dir $@)
	@echo "cc: native/*.c -> $@"
	@$(CC) -O3 -Wall -fPIC $(NATIVE_NEEDS) -c native/cpu.c -o target/native/cpu.o && \
	  $(CC) -O3 $(NATIVE_ISA) -ffp-contract=off -Wall -fPIC -shared -o $@ $(filter-out native/cpu.c,$(wildcard native/*.c)) target/native/cpu.o -lm || \
	  { echo "make: native library not built (C compiler failed); the pure-Java CPU path is used"; rm -f $@; }

$(NATIVE_RES): $(NATIVE_LIB)
	@mkdir -p $(dir $@)
	@if [ -s $(NATIVE_LIB) ]; then cp $(NATIVE_LIB) $@; else rm -f $@; fi

target/java-home:
	@mkdir -p target && echo "$(JAVA_HOME)" > $@

$(DEMO_MODEL): $(JAR) target/java-home
	@mkdir -p $(dir $@)
	@./cria synth --like tiny --type Q8_0 --seed 1 -o $@ > /dev/null 2>&1 || { echo "make: could not make the demo model"; exit 1; }

# Made once: later runs reuse it (delete $(DEFAULT_DIR) to train it again).
$(DEFAULT_MODEL): | $(JAR) $(NATIVE_LIB) target/java-home
	@mkdir -p $(DEFAULT_DIR)
	@echo "== training the default model (once; about 2 minutes on 2 cores): ./cria train --data $(DEFAULT_DIR)/stories.txt $(DEFAULT_TRAIN)"
	@./cria stories -o $(DEFAULT_DIR)/stories.txt --bytes 3000000 --seed 1
	@./cria train --data $(DEFAULT_DIR)/stories.txt $(DEFAULT_TRAIN) -o $@ --log $(DEFAULT_DIR)/train.jsonl \
	  --png $(DEFAULT_DIR)/loss.png --print-every 50

# JDK 25's ahead-of-time cache: classes loaded and linked, and method profiles, from one training
# run, so that every later start is faster. The launcher uses it only while it matches the jar.
$(AOT): $(JAR) $(NATIVE_LIB) $(DEMO_MODEL)
	@CRIA_AOT_TRAIN=$@ ./cria generate -m $(DEMO_MODEL) -p "Once upon a time" -n 8 --seed 1 > /dev/null 2>&1 \
	  || { echo "make: the start-up cache was not made (Cria works without it, only starts slower)"; rm -f $@; }
