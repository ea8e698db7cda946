# dmem's own build only (not installed): the table of plugins linked into libdmem. dmem_add_plugin
# in static mode appends each target to the global property DMEM_STATIC_PLUGIN_TARGETS; once the
# whole tree is configured (a deferred call), this writes the table and links each plugin's
# objects into both libdmem libraries, so neither needs a self-registering static initialiser.
set(DMEM_STATIC_TABLE_SOURCE "${PROJECT_BINARY_DIR}/src/generated/static_table.cpp")

function(_dmem_write_static_plugin_table)
  get_property(_targets GLOBAL PROPERTY DMEM_STATIC_PLUGIN_TARGETS)
  set(DMEM_STATIC_PLUGIN_DECLS "")
  set(DMEM_STATIC_PLUGIN_ENTRIES "")
  foreach(t IN LISTS _targets)
    get_target_property(_name ${t} DMEM_PLUGIN_STATIC_NAME)
    string(APPEND DMEM_STATIC_PLUGIN_DECLS "DMEM_PLUGIN_DECLARE_STATIC(${_name});\n")
    string(APPEND DMEM_STATIC_PLUGIN_ENTRIES
      "      {\"${_name}\", &dmem_plugin_probe_${_name}, &dmem_plugin_entry_${_name}},\n")
    target_sources(dmem PRIVATE $<TARGET_OBJECTS:${t}>)
    target_sources(dmem_static PRIVATE $<TARGET_OBJECTS:${t}>)
  endforeach()
  configure_file("${PROJECT_SOURCE_DIR}/src/plugin_host/static_table.cpp.in"
    "${DMEM_STATIC_TABLE_SOURCE}" @ONLY)
endfunction()

cmake_language(DEFER DIRECTORY "${PROJECT_SOURCE_DIR}" CALL _dmem_write_static_plugin_table)
