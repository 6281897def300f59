# `cmake --install BUILD_DIR --prefix PREFIX`: the `eraser` command, and the
# engine as a library for programs that embed it (README, "Embedding the
# engine"):
#
#   PREFIX/bin/eraser
#   PREFIX/include/eraser/<module>/*.h      the public headers
#   PREFIX/lib/liberaser_<module>.a          static libraries
#   PREFIX/lib/cmake/eraser/                 eraserConfig.cmake and targets
#
# A consumer writes `find_package(eraser)` and links `eraser::engine` (and
# eraser::datasets, eraser::workloads, eraser::serve, eraser::serve_grpc as
# it needs them). The libraries are static, so the packages they link
# privately (LibTorch, RocksDB, oneTBB, ...) are found again by the config
# through Debian's own CMake and pkg-config files. The components:
# `Development` (headers, libraries, CMake files) and `Runtime` (the
# command); without --component both are installed.
include(CMakePackageConfigHelpers)

# serve_grpc's public header is serve's (eraser/serve/grpc_server.h).
set(ERASER_HEADER_DIRS common datasets storage certify metrics unlearning
  scheduler engine workloads serve)
set(ERASER_INSTALLED_TARGETS eraser_serve_grpc eraser_grpc_proto)
foreach(module IN LISTS ERASER_HEADER_DIRS)
  list(APPEND ERASER_INSTALLED_TARGETS eraser_${module})
  install(DIRECTORY ${PROJECT_SOURCE_DIR}/${module}/include/
    DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} COMPONENT Development)
endforeach()

# eraser_grpc_proto (the code protoc generates) is linked by serve_grpc
# only privately: its library is installed, its headers are not.
install(TARGETS ${ERASER_INSTALLED_TARGETS} EXPORT eraserTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT Development)
install(TARGETS eraser
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT Runtime)

set(ERASER_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/eraser)
install(EXPORT eraserTargets NAMESPACE eraser::
  DESTINATION ${ERASER_CMAKE_DIR} COMPONENT Development)
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/eraserConfig.cmake.in
  ${PROJECT_BINARY_DIR}/eraserConfig.cmake
  INSTALL_DESTINATION ${ERASER_CMAKE_DIR})
# 0.x: a consumer asking for 0.1 gets 0.1.*, never 0.2.
write_basic_package_version_file(${PROJECT_BINARY_DIR}/eraserConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/eraserConfig.cmake
  ${PROJECT_BINARY_DIR}/eraserConfigVersion.cmake
  DESTINATION ${ERASER_CMAKE_DIR} COMPONENT Development)
