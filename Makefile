# The two commands a newcomer runs:
#   make demo   install what is missing, build, run the main job
#   make test   install what is missing, build, run the whole test suite
# Also: make setup | build | clang | fuzz | tsan | asan | bench | sweep |
#       plot | soak | format | clean
#
# Variables: BUILD_DIR (build), BUILD_TYPE (RelWithDebInfo), JOBS (2),
# CMAKE_FLAGS (extra -D options), FUZZ_SECONDS (60 per fuzz target),
# TEST_ENV (environment for ctest, e.g. GTEST_FILTER=Suite.*).

BUILD_DIR ?= build
BUILD_TYPE ?= RelWithDebInfo
JOBS ?= 2
CMAKE_FLAGS ?=
ERASER := $(BUILD_DIR)/bin/eraser

.PHONY: all setup configure build clang clang-build fuzz test demo tsan asan bench sweep plot soak \
	format clean

all: build

setup:
	scripts/setup

configure: setup
	cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) $(CMAKE_FLAGS)

build: configure
	cmake --build $(BUILD_DIR) -j $(JOBS)

test: build
	$(TEST_ENV) ctest --test-dir $(BUILD_DIR) --output-on-failure -j $(JOBS) \
	  $(CTEST_ARGS)

# End-to-end cases that run once, in the plain build, and are filtered out
# of the sanitizer runs (clang, tsan, asan): whole `eraser` processes that
# train and replay every policy in real time, `eraser serve` replicas on
# PostgreSQL, and the model zoo's replays of every ERASER preset. Their code
# runs under the sanitizers in the module tests (Replay.*, EngineReplicas.*,
# the serve API and process tests, the zoo's other cases); under
# ThreadSanitizer on a slow 2-core machine they took 4 of the suite's 9
# minutes. A GoogleTest negative filter, passed to every test binary.
SANITIZER_SKIP := ReplayCommand.ComparesPoliciesAndWritesTheReport:$\
  ReplayCommand.SweepsDeletionRatesAndChecksTheTargets:$\
  TabularCli.TrainTraceAndReplay:$\
  TrainCommand.WritesTheReportAndReusesTheDirectory:$\
  ServeReplicas.*:ServeProcess.PrometheusScrapesTheEngine:$\
  Modules/ZooReplay.*
SANITIZER_TEST_ENV := GTEST_FILTER='-$(SANITIZER_SKIP)'
# ThreadSanitizer only: the gRPC front end's in-process tests. gRPC's
# libraries are not instrumented, so TSan sees grpcpp's inline code (built
# into our objects) synchronised by libgrpc's uninstrumented atomics and
# reports races inside grpcpp; they run under ASan/UBSan, and the engine
# calls they make are the HTTP front end's, which run under TSan.
TSAN_TEST_ENV := GTEST_FILTER='-$(SANITIZER_SKIP):GrpcServed.*'
# Likewise the command-line help and usage checks (one `eraser` process per
# subcommand and flag, 40 s under ThreadSanitizer for argument parsing), the
# storage fault sweep (about 1,300 forked processes, 1.5 minutes here; the
# store's error paths it takes run under the sanitizers in the storage
# tests' full-disk cases), the Python client's tests (whole `eraser train`
# and `eraser serve` processes driven by pytest; the routes they use run
# under the sanitizers in serve_test), the installed package's test
# (embed_installed: a sanitizer build's libraries need its runtime flags in
# the consumer; the example itself runs as embed_example), and the
# benchmarks (not built: -DERASER_BENCH=OFF).
SANITIZER_CTEST_ARGS := -E 'cli_help|fault_sweep|python_client|embed_installed'
# ThreadSanitizer only, besides: the suites labelled no_tsan, the command
# line's end-to-end suite (cli: whole `eraser` processes, several per case;
# 183 s under TSan in one CI run; each process loads Debian's Torch before
# main, 0.8 s plain, 1.7 s under ASan, 2.0 s under TSan). The threads those
# processes run (parallel training, the engine in a replay) run under TSan
# in-process in unlearning_test and workloads_test; cli runs under
# ASan/UBSan in `make clang` and in the plain build.
TSAN_CTEST_ARGS := $(SANITIZER_CTEST_ARGS) -LE no_tsan
SANITIZER_CMAKE_FLAGS := -DERASER_BENCH=OFF

# The main job: replay the default workload against the baselines and the
# ERASER policies and print the comparison (the ensemble is trained once and
# cached in $(BUILD_DIR)/cache). Builds only the `eraser` binary and what it
# links, not the tests and benchmarks.
demo: configure
	cmake --build $(BUILD_DIR) -j $(JOBS) --target eraser
	$(ERASER) replay --workload workloads/default.json \
	  --cache-dir $(BUILD_DIR)/cache --json $(BUILD_DIR)/demo-report.json

# The microbenchmarks of docs/performance.md.
bench: build
	$(BUILD_DIR)/bin/certify_bench
	$(BUILD_DIR)/bin/ensemble_bench
	$(BUILD_DIR)/bin/engine_bench --benchmark_min_time=5

# The performance sweep of docs/performance.md (about an hour): every preset
# at five deletion rates. Rewrites the measurements in docs/perf/ and the
# plot.
SWEEP_OUT := docs/perf/sweep
sweep: build
	bash -o pipefail -c '$(ERASER) replay --workload workloads/sweep.json \
	  --cache-dir $(BUILD_DIR)/cache --json $(SWEEP_OUT).json \
	  --dat $(SWEEP_OUT).dat | tee $(SWEEP_OUT).txt'
	scripts/plot-sweep $(SWEEP_OUT).dat $(SWEEP_OUT).png

# The plot alone, from the committed measurements.
plot: setup
	scripts/plot-sweep $(SWEEP_OUT).dat $(SWEEP_OUT).png

# Clang, in build-clang: -Wthread-safety as errors (every lock annotation
# checked), AddressSanitizer + UBSan, and libFuzzer instrumentation; the
# whole suite runs under the sanitizers, and the fuzz targets are built.
FUZZ_SECONDS ?= 60
clang: clang-build
	$(SANITIZER_TEST_ENV) ctest --test-dir build-clang --output-on-failure \
	  -j $(JOBS) $(SANITIZER_CTEST_ARGS)

clang-build: setup
	CC=clang CXX=clang++ cmake -S . -B build-clang -G Ninja \
	  -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) -DERASER_THREAD_SAFETY=ON \
	  -DERASER_WERROR=ON -DERASER_ASAN=ON -DERASER_FUZZ=ON \
	  $(SANITIZER_CMAKE_FLAGS) $(CMAKE_FLAGS)
	cmake --build build-clang -j $(JOBS)

# Every libFuzzer target for FUZZ_SECONDS on a copy of its seed corpus
# (builds build-clang; does not run the suite).
fuzz: clang-build
	scripts/fuzz build-clang $(FUZZ_SECONDS)

# ThreadSanitizer: a separate build tree, the whole suite but what
# TSAN_CTEST_ARGS and TSAN_TEST_ENV leave out (above).
tsan:
	$(MAKE) test BUILD_DIR=build-tsan BUILD_TYPE=RelWithDebInfo \
	  CMAKE_FLAGS="-DERASER_TSAN=ON $(SANITIZER_CMAKE_FLAGS) $(CMAKE_FLAGS)" \
	  TEST_ENV="$(TSAN_TEST_ENV)" CTEST_ARGS="$(TSAN_CTEST_ARGS)"

asan:
	$(MAKE) test BUILD_DIR=build-asan BUILD_TYPE=RelWithDebInfo \
	  CMAKE_FLAGS="-DERASER_ASAN=ON $(SANITIZER_CMAKE_FLAGS) $(CMAKE_FLAGS)" \
	  TEST_ENV="$(SANITIZER_TEST_ENV)" CTEST_ARGS="$(SANITIZER_CTEST_ARGS)"

format:
	git ls-files --cached --others --exclude-standard '*.cc' '*.h' | xargs clang-format -i

# SIGKILL `eraser serve` at random points under load and check that every
# acknowledged deletion is applied exactly once and erased (docs/storage.md).
soak: build
	scripts/soak

clean:
	rm -rf $(BUILD_DIR) build-clang build-tsan build-asan
