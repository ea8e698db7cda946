# dmem_add_plugin(<target> [MODULE|STATIC] <source>...): builds a dmem plugin the way the host
# expects it. Works in dmem's own tree and, through find_package(dmem), in a plugin author's
# project. A plugin needs only the headers (dmem::plugin_api), never libdmem.
#
#  MODULE (the default, or DMEM_STATIC_PLUGINS OFF): a library named <target>.so (no "lib"
#    prefix), only dmem_plugin_probe and dmem_plugin_entry exported (hidden visibility plus an
#    export map), no undefined symbols.
#  STATIC (the default when DMEM_STATIC_PLUGINS is ON): a static library whose entry functions
#    are dmem_plugin_probe_<name> and dmem_plugin_entry_<name>, <name> being the target without a
#    leading "dmem_plugin_" (DMEM_PLUGIN_STATIC_NAME). Inside dmem's tree it joins the generated
#    table that libdmem reads; elsewhere the host hands it over with PluginRegistry::add_plugin.
#
# dmem_install_plugin(<target>) installs a MODULE plugin where the registry looks for installed
# plugins: DMEM_PLUGIN_INSTALL_DIR (<libdir>/dmem/plugins).
set(DMEM_PLUGIN_MAP "${CMAKE_CURRENT_LIST_DIR}/dmem_plugin.map" CACHE INTERNAL
    "Export map of dmem plugins: the two entry symbols and nothing else")

function(dmem_add_plugin target)
  set(_sources ${ARGN})
  set(_kind MODULE)
  if(DMEM_STATIC_PLUGINS)
    set(_kind STATIC)
  endif()
  list(GET _sources 0 _first)
  if(_first STREQUAL "MODULE" OR _first STREQUAL "STATIC")
    set(_kind ${_first})
    list(REMOVE_AT _sources 0)
  endif()
  if(NOT _sources)
    message(FATAL_ERROR "dmem_add_plugin(${target}): name at least one source file")
  endif()
  add_library(${target} ${_kind} ${_sources})
  if(TARGET dmem::plugin_api)
    target_link_libraries(${target} PRIVATE dmem::plugin_api)
  else()
    target_link_libraries(${target} PRIVATE dmem_plugin_api)
  endif()
  set_target_properties(${target} PROPERTIES CXX_VISIBILITY_PRESET hidden
    C_VISIBILITY_PRESET hidden VISIBILITY_INLINES_HIDDEN ON)
  if(_kind STREQUAL "STATIC")
    string(REGEX REPLACE "^dmem_plugin_" "" _name "${target}")
    if(NOT _name MATCHES "^[A-Za-z0-9_]+$")
      message(FATAL_ERROR "dmem_add_plugin(${target}): a static plugin's name must be a C identifier")
    endif()
    target_compile_definitions(${target} PRIVATE DMEM_PLUGIN_STATIC_NAME=${_name})
    set_target_properties(${target} PROPERTIES DMEM_PLUGIN_STATIC_NAME ${_name})
    if(COMMAND _dmem_write_static_plugin_table)
      set_property(GLOBAL APPEND PROPERTY DMEM_STATIC_PLUGIN_TARGETS ${target})
    endif()
    return()
  endif()
  set_target_properties(${target} PROPERTIES PREFIX "" LINK_DEPENDS "${DMEM_PLUGIN_MAP}")
  target_link_options(${target} PRIVATE "LINKER:--version-script=${DMEM_PLUGIN_MAP}")
  # Sanitizer runtimes are resolved from the executable when the plugin is loaded.
  if(NOT CMAKE_CXX_FLAGS MATCHES "-fsanitize" AND NOT DMEM_SANITIZE)
    target_link_options(${target} PRIVATE LINKER:--no-undefined)
  endif()
endfunction()

function(dmem_install_plugin target)
  if(NOT DMEM_PLUGIN_INSTALL_DIR)
    include(GNUInstallDirs)
    set(DMEM_PLUGIN_INSTALL_DIR "${CMAKE_INSTALL_LIBDIR}/dmem/plugins")
  endif()
  install(TARGETS ${target} LIBRARY DESTINATION "${DMEM_PLUGIN_INSTALL_DIR}")
endfunction()
