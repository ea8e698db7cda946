# Install rules: public headers, libdmem (shared with a versioned SONAME, and static), the CMake
# package (find_package(dmem CONFIG) -> dmem::dmem, dmem::dmem_static) and pkg-config files
# (dmem.pc for the shared library, dmem-static.pc for the static one). tests/consumer proves them.
include(CMakePackageConfigHelpers)

set(DMEM_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/dmem)
set(DMEM_PKGCONFIG_DIR ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/dmem DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
  COMPONENT dev FILES_MATCHING PATTERN "*.hpp" PATTERN "*.h")
install(TARGETS dmem EXPORT dmemTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT runtime NAMELINK_COMPONENT dev
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT runtime)
install(TARGETS dmem_static EXPORT dmemTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT dev)
install(TARGETS dmem_plugin_api EXPORT dmemTargets)
install(EXPORT dmemTargets NAMESPACE dmem:: DESTINATION ${DMEM_CMAKE_DIR} COMPONENT dev)

configure_package_config_file(${CMAKE_CURRENT_LIST_DIR}/dmemConfig.cmake.in
  ${PROJECT_BINARY_DIR}/dmemConfig.cmake INSTALL_DESTINATION ${DMEM_CMAKE_DIR})
# 0.x: a minor release may break the API, so only the same major.minor is compatible.
write_basic_package_version_file(${PROJECT_BINARY_DIR}/dmemConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/dmemConfig.cmake ${PROJECT_BINARY_DIR}/dmemConfigVersion.cmake
  ${CMAKE_CURRENT_LIST_DIR}/DmemPlugin.cmake ${CMAKE_CURRENT_LIST_DIR}/dmem_plugin.map
  DESTINATION ${DMEM_CMAKE_DIR} COMPONENT dev)

# pkg-config: the prefix is found from the .pc file's own place, so the tree can be moved.
file(RELATIVE_PATH DMEM_PC_TO_PREFIX /${DMEM_PKGCONFIG_DIR} /)
string(REGEX REPLACE "/$" "" DMEM_PC_TO_PREFIX "${DMEM_PC_TO_PREFIX}")
# libdl for plugin loading (an empty stub on glibc >= 2.34, still needed on older systems).
set(DMEM_PC_PRIVATE_LIBS "-lspdlog -lfmt -pthread")
foreach(l IN LISTS CMAKE_DL_LIBS)
  string(APPEND DMEM_PC_PRIVATE_LIBS " -l${l}")
endforeach()
if(DMEM_HAVE_OPENBLAS)
  string(APPEND DMEM_PC_PRIVATE_LIBS " -lopenblas")
endif()
if(DMEM_HAVE_CUDA)
  string(APPEND DMEM_PC_PRIVATE_LIBS " -L${CUDAToolkit_LIBRARY_DIR} -lcudart_static -ldl -lrt")
endif()
foreach(pc dmem dmem-static)
  configure_file(${CMAKE_CURRENT_LIST_DIR}/${pc}.pc.in ${PROJECT_BINARY_DIR}/${pc}.pc @ONLY)
  install(FILES ${PROJECT_BINARY_DIR}/${pc}.pc DESTINATION ${DMEM_PKGCONFIG_DIR} COMPONENT dev)
endforeach()
