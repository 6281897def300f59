# The CTest test `embed_installed`: eraser installed under a prefix is a
# package another project finds. Installs the Development component of
# BUILD_DIR under WORK_DIR/prefix, configures examples/embed there as a
# project of its own with find_package(eraser), builds it with the same
# compiler and runs it; then removes WORK_DIR.
#
#   cmake -DBUILD_DIR=... -DSOURCE_DIR=... -DWORK_DIR=... -DCXX=...
#         -DBUILD_TYPE=... [-DLAUNCHER=ccache] -P tests/install_test.cmake
foreach(var BUILD_DIR SOURCE_DIR WORK_DIR CXX BUILD_TYPE)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "install_test.cmake: -D${var}=... is required")
  endif()
endforeach()

function(run what)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out
    ERROR_VARIABLE out)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "install_test: ${what} failed (${rc}): ${ARGN}\n${out}")
  endif()
  message(STATUS "install_test: ${what}: done")
  set(out "${out}" PARENT_SCOPE)
endfunction()

file(REMOVE_RECURSE ${WORK_DIR})
set(prefix ${WORK_DIR}/prefix)
run("install" ${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${prefix}
  --component Development)

# Nothing installed may point back into the source or build tree: the
# package must work once those are gone.
file(GLOB_RECURSE installed_cmake ${prefix}/*.cmake)
if(NOT installed_cmake)
  message(FATAL_ERROR "install_test: no CMake package files under ${prefix}")
endif()
foreach(f IN LISTS installed_cmake)
  file(READ ${f} text)
  foreach(tree ${SOURCE_DIR} ${BUILD_DIR})
    string(FIND "${text}" "${tree}/" at)
    if(NOT at EQUAL -1)
      message(FATAL_ERROR "install_test: ${f} names ${tree}")
    endif()
  endforeach()
endforeach()

# The example, built as a separate project: it sees only the prefix.
set(launcher)
if(LAUNCHER)
  set(launcher -DCMAKE_CXX_COMPILER_LAUNCHER=${LAUNCHER})
endif()
run("configure examples/embed" ${CMAKE_COMMAND}
  -S ${SOURCE_DIR}/examples/embed -B ${WORK_DIR}/build -G Ninja
  -DCMAKE_BUILD_TYPE=${BUILD_TYPE} -DCMAKE_CXX_COMPILER=${CXX}
  -DCMAKE_PREFIX_PATH=${prefix} ${launcher})
run("build examples/embed" ${CMAKE_COMMAND} --build ${WORK_DIR}/build)
run("run embed_example" ${WORK_DIR}/build/embed_example ${WORK_DIR}/data)
message("${out}")
file(REMOVE_RECURSE ${WORK_DIR})
