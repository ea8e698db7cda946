# `cpack -G DEB` in a build folder: one Debian package with the command, the shared and static
# libraries, the headers and the CMake and pkg-config files. Runtime dependencies come from
# dpkg-shlibdeps; what the static library and the CMake package need is listed as Recommends.
set(CPACK_PACKAGE_NAME dmem)
set(CPACK_PACKAGE_VENDOR "dmem")
set(CPACK_PACKAGE_CONTACT "dmem maintainers <dmem@invalid>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
    "Plans and runs large diffusion models within the GPU and RAM at hand")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION libdevel)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "libspdlog-dev, libfmt-dev")
set(CPACK_GENERATOR DEB)
include(CPack)
