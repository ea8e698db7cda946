# dmem_add_plugin(<target> <source>...): builds a dmem plugin the way the host expects it — a
# MODULE library named <target>.so (no "lib" prefix), only dmem_plugin_probe and
# dmem_plugin_entry exported (hidden visibility plus an export map), no undefined symbols, and
# no link to libdmem: a plugin needs only the headers (dmem::plugin_api). Works in dmem's own
# tree and, through find_package(dmem), in a plugin author's project.
set(DMEM_PLUGIN_MAP "${CMAKE_CURRENT_LIST_DIR}/dmem_plugin.map" CACHE INTERNAL
    "Export map of dmem plugins: the two entry symbols and nothing else")

function(dmem_add_plugin target)
  if(ARGC LESS 2)
    message(FATAL_ERROR "dmem_add_plugin(${target}): name at least one source file")
  endif()
  add_library(${target} MODULE ${ARGN})
  if(TARGET dmem::plugin_api)
    target_link_libraries(${target} PRIVATE dmem::plugin_api)
  else()
    target_link_libraries(${target} PRIVATE dmem_plugin_api)
  endif()
  set_target_properties(${target} PROPERTIES PREFIX "" CXX_VISIBILITY_PRESET hidden
    C_VISIBILITY_PRESET hidden VISIBILITY_INLINES_HIDDEN ON LINK_DEPENDS "${DMEM_PLUGIN_MAP}")
  target_link_options(${target} PRIVATE "LINKER:--version-script=${DMEM_PLUGIN_MAP}")
  # Sanitizer runtimes are resolved from the executable when the plugin is loaded.
  if(NOT CMAKE_CXX_FLAGS MATCHES "-fsanitize" AND NOT DMEM_SANITIZE)
    target_link_options(${target} PRIVATE LINKER:--no-undefined)
  endif()
endfunction()
