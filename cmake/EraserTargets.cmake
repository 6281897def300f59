# Helpers that give every module and test the same shape.
#
# eraser_add_module(NAME <name> SOURCES ... [PUBLIC_DEPS ...] [PRIVATE_DEPS ...])
#   Library target eraser_<name>, alias eraser::<name>. Public headers live in
#   <name>/include/eraser/<name>/, so a module can only include the modules it
#   lists as dependencies (DESIGN section 5). `cmake --install` puts them
#   under <prefix>/include/eraser/<name>/ (cmake/install.cmake).
#
# eraser_add_test(NAME <name> SOURCES ... DEPS ... [LABELS ...] [TIMEOUT s])
#   One GoogleTest executable per module, registered as one CTest test, so
#   that a Torch-linked binary pays its start-up cost once, not per case.
#
# eraser_executable(<target>)
#   Warnings, and in a sanitizer build the project's sanitizer options and
#   suppressions; every executable (tests, their child processes, the CLI,
#   benchmarks, fuzzers, examples) calls it.

function(eraser_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra)
  if(ERASER_THREAD_SAFETY)
    target_compile_options(${target} PRIVATE -Wthread-safety
      -Wthread-safety-beta)
  endif()
  if(ERASER_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()

function(eraser_add_module)
  cmake_parse_arguments(M "" "NAME" "SOURCES;PUBLIC_DEPS;PRIVATE_DEPS" ${ARGN})
  add_library(eraser_${M_NAME} STATIC ${M_SOURCES})
  add_library(eraser::${M_NAME} ALIAS eraser_${M_NAME})
  # Installed as eraser::<name> too (cmake/install.cmake).
  set_target_properties(eraser_${M_NAME} PROPERTIES EXPORT_NAME ${M_NAME})
  target_include_directories(eraser_${M_NAME}
    PUBLIC $<BUILD_INTERFACE:${CMAKE_CURRENT_SOURCE_DIR}/include>
           $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>
    PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/src)
  target_link_libraries(eraser_${M_NAME}
    PUBLIC ${M_PUBLIC_DEPS} PRIVATE ${M_PRIVATE_DEPS})
  eraser_warnings(eraser_${M_NAME})
endfunction()

function(eraser_add_test)
  cmake_parse_arguments(T "" "NAME;TIMEOUT;COST" "SOURCES;DEPS;LABELS" ${ARGN})
  add_executable(${T_NAME}_test ${T_SOURCES})
  target_link_libraries(${T_NAME}_test PRIVATE ${T_DEPS}
    GTest::gmock GTest::gtest_main)
  eraser_executable(${T_NAME}_test)
  add_test(NAME ${T_NAME} COMMAND ${T_NAME}_test)
  # A net for a hung test, not a speed check: a module's suite under
  # ThreadSanitizer on a slow machine takes several times what it takes here.
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 1800)
  endif()
  set_tests_properties(${T_NAME} PROPERTIES
    TIMEOUT ${T_TIMEOUT} LABELS "${T_NAME};${T_LABELS}")
  # ctest -j starts the costliest tests first; without it a fresh clone
  # (no CTestCostData.txt yet) runs them in declaration order and can leave
  # one core idle at the end while the longest suite runs alone.
  if(T_COST)
    set_tests_properties(${T_NAME} PROPERTIES COST ${T_COST})
  endif()
endfunction()

# In a sanitizer build every executable carries the project's sanitizer
# options and suppressions (tests/tsan.supp, tests/lsan.supp; generated into
# sanitizer_defaults.cc), so that a test binary or `eraser` run by hand, or
# started by a test, behaves as under ctest. One definition: nothing is set
# through the environment.
function(eraser_executable target)
  eraser_warnings(${target})
  if(ERASER_TSAN OR ERASER_ASAN)
    target_sources(${target} PRIVATE ${ERASER_SANITIZER_DEFAULTS})
  endif()
endfunction()

if(ERASER_TSAN OR ERASER_ASAN)
  file(READ ${PROJECT_SOURCE_DIR}/tests/tsan.supp ERASER_TSAN_SUPPRESSIONS)
  file(READ ${PROJECT_SOURCE_DIR}/tests/lsan.supp ERASER_LSAN_SUPPRESSIONS)
  set(ERASER_SANITIZER_DEFAULTS ${CMAKE_BINARY_DIR}/sanitizer_defaults.cc)
  configure_file(${PROJECT_SOURCE_DIR}/cmake/sanitizer_defaults.cc.in
    ${ERASER_SANITIZER_DEFAULTS} @ONLY)
  # An edited suppression file regenerates it.
  set_property(DIRECTORY ${PROJECT_SOURCE_DIR} APPEND PROPERTY
    CMAKE_CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/tests/tsan.supp
    ${PROJECT_SOURCE_DIR}/tests/lsan.supp)
endif()
