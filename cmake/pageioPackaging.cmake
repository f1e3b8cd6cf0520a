# How each pageio library is installed: the library (static, or shared with
# a versioned SONAME when BUILD_SHARED_LIBS is ON), its place in the CMake
# package (a component of find_package(pageio COMPONENTS ...)), and a
# pkg-config file, pageio-<component>.pc, for builds without CMake.
#
#   pageio_install_library(<target> <component> "<description>"
#                          [REQUIRES <components>...] [SYSTEM_LIBS <flags>...])
#
# REQUIRES: the pageio components it builds on (pkg-config Requires, so
# `pkg-config --libs pageio-kv` lists every library in the order a linker
# needs). SYSTEM_LIBS: what the library itself links privately (-laio):
# Libs.private for a shared library, Libs for a static one, whose users'
# link lines must name them.

# 0.x: every minor version may change the ABI, so the SONAME carries both
# (libpageio_engine.so.0.1).
set(PAGEIO_SOVERSION "${PROJECT_VERSION_MAJOR}.${PROJECT_VERSION_MINOR}")

function(pageio_install_library target component description)
  cmake_parse_arguments(PARSE_ARGV 3 arg "" "" "REQUIRES;SYSTEM_LIBS")
  set_target_properties(${target} PROPERTIES
    EXPORT_NAME ${component}
    OUTPUT_NAME ${target}
    POSITION_INDEPENDENT_CODE ON
    VERSION ${PROJECT_VERSION}
    SOVERSION ${PAGEIO_SOVERSION})
  install(TARGETS ${target} EXPORT pageioTargets
    ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
    LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} NAMELINK_COMPONENT Development
    RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
  set_property(GLOBAL APPEND PROPERTY PAGEIO_COMPONENTS ${component})

  set(requires "")
  foreach(r IN LISTS arg_REQUIRES)
    list(APPEND requires "pageio-${r} = ${PROJECT_VERSION}")
  endforeach()
  list(JOIN requires ", " requires)
  list(JOIN arg_SYSTEM_LIBS " " system_libs)
  if(BUILD_SHARED_LIBS)
    set(libs "-L\${libdir} -l${target}")
    set(libs_private "${system_libs}")
  else()
    set(libs "-L\${libdir} -l${target} ${system_libs}")
    set(libs_private "")
  endif()
  # Relative to the .pc file's own place, so an installed tree can move.
  file(RELATIVE_PATH to_prefix "/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/")
  string(REGEX REPLACE "/$" "" to_prefix "${to_prefix}")
  set(pc "${CMAKE_BINARY_DIR}/pkgconfig/pageio-${component}.pc")
  file(CONFIGURE OUTPUT "${pc}" @ONLY CONTENT [=[
prefix=${pcfiledir}/@to_prefix@
exec_prefix=${prefix}
libdir=${prefix}/@CMAKE_INSTALL_LIBDIR@
includedir=${prefix}/@CMAKE_INSTALL_INCLUDEDIR@

Name: pageio-@component@
Description: pageio @component@: @description@ (C++20: compile with -std=c++20 or later)
Version: @PROJECT_VERSION@
Requires: @requires@
Cflags: -I${includedir}
Libs: @libs@
Libs.private: @libs_private@
]=])
  install(FILES "${pc}" DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
endfunction()
