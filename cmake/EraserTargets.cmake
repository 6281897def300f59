# Helpers that give every module and test the same shape.
#
# eraser_add_module(NAME <name> SOURCES ... [PUBLIC_DEPS ...] [PRIVATE_DEPS ...])
#   Library target eraser_<name>, alias eraser::<name>. Public headers live in
#   <name>/include/eraser/<name>/, so a module can only include the modules it
#   lists as dependencies (DESIGN section 5).
#
# eraser_add_test(NAME <name> SOURCES ... DEPS ... [LABELS ...] [TIMEOUT s])
#   One GoogleTest executable per module, registered as one CTest test, so
#   that a Torch-linked binary pays its start-up cost once, not per case.

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
  target_include_directories(eraser_${M_NAME}
    PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}/include
    PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/src)
  target_link_libraries(eraser_${M_NAME}
    PUBLIC ${M_PUBLIC_DEPS} PRIVATE ${M_PRIVATE_DEPS})
  eraser_warnings(eraser_${M_NAME})
endfunction()

function(eraser_add_test)
  cmake_parse_arguments(T "" "NAME;TIMEOUT" "SOURCES;DEPS;LABELS" ${ARGN})
  add_executable(${T_NAME}_test ${T_SOURCES})
  target_link_libraries(${T_NAME}_test PRIVATE ${T_DEPS}
    GTest::gmock GTest::gtest_main)
  eraser_warnings(${T_NAME}_test)
  add_test(NAME ${T_NAME} COMMAND ${T_NAME}_test)
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 600)
  endif()
  set_tests_properties(${T_NAME} PROPERTIES
    TIMEOUT ${T_TIMEOUT} LABELS "${T_NAME};${T_LABELS}")
  eraser_sanitizer_environment(${T_NAME})
endfunction()

# Under ThreadSanitizer, tests (and the processes they start) read the
# project's suppressions, which cover third-party libraries only. Under
# AddressSanitizer the quarantine of freed memory is kept small, so that the
# serving test's check of resident memory still means something, and
# LeakSanitizer reads tests/lsan.supp (a leak inside libpqxx).
function(eraser_sanitizer_environment test)
  if(ERASER_ASAN)
    set_property(TEST ${test} APPEND PROPERTY ENVIRONMENT
      "ASAN_OPTIONS=quarantine_size_mb=8:detect_leaks=1"
      "LSAN_OPTIONS=suppressions=${PROJECT_SOURCE_DIR}/tests/lsan.supp")
  endif()
  if(ERASER_TSAN)
    set_property(TEST ${test} APPEND PROPERTY ENVIRONMENT
      "TSAN_OPTIONS=suppressions=${PROJECT_SOURCE_DIR}/tests/tsan.supp ignore_noninstrumented_modules=1 history_size=7 second_deadlock_stack=1")
  endif()
endfunction()
