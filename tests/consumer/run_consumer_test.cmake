# Installs pageio into a scratch prefix and uses it from outside the tree,
# as a new user would: builds tests/consumer and every README example with
# find_package(pageio), then each example with pkg-config and with a plain
# compiler line, and runs every program built.
#
#   cmake -DSOURCE_DIR=<tests/consumer> -DEXAMPLES_DIR=<examples> -DWORK_DIR=<scratch dir>
#         -DGENERATOR=<generator> (-DBUILD_DIR=<pageio build dir> | -DSHARED_FROM=<pageio source dir>)
#         [-DWAYS=cmake,pkgconfig,plain] [-DCXX_COMPILER=<path>] [-DCXX_FLAGS=<flags>]
#         -P run_consumer_test.cmake
#
# BUILD_DIR: install that build (static libraries). SHARED_FROM: configure
# and build pageio's libraries from that source with BUILD_SHARED_LIBS=ON
# first, and install those.
cmake_policy(VERSION 3.22)
foreach(var SOURCE_DIR EXAMPLES_DIR WORK_DIR GENERATOR)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "run_consumer_test.cmake: ${var} is not set")
  endif()
endforeach()
if(NOT DEFINED WAYS)
  set(WAYS cmake,pkgconfig,plain)
endif()
string(REPLACE "," ";" WAYS "${WAYS}")
foreach(way IN LISTS WAYS)
  if(NOT way MATCHES "^(cmake|pkgconfig|plain)$")
    message(FATAL_ERROR "run_consumer_test.cmake: WAYS: no way \"${way}\" (cmake, pkgconfig, plain, comma-separated)")
  endif()
endforeach()
if(NOT WAYS)
  message(FATAL_ERROR "run_consumer_test.cmake: WAYS is empty")
endif()
if(NOT CXX_COMPILER)
  set(CXX_COMPILER c++)
endif()
separate_arguments(cxx_flags UNIX_COMMAND "${CXX_FLAGS}")

function(run step)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "consumer test: ${step} failed (${rc}):\n${out}\n${err}")
  endif()
  message(STATUS "consumer test: ${step} ok")
  set(last_output "${out}" PARENT_SCOPE)
  set(last_error "${err}" PARENT_SCOPE)
endfunction()

# Each example runs in a directory of its own, twice: the second run finds
# what the first left (a log to recover, a store to reopen).
function(run_example how exe name)
  set(dir "${WORK_DIR}/run-${how}-${name}")
  file(REMOVE_RECURSE "${dir}")
  file(MAKE_DIRECTORY "${dir}")
  run("${how}: run ${name}" "${exe}" "${dir}")
  run("${how}: run ${name} again" "${exe}" "${dir}")
  file(REMOVE_RECURSE "${dir}")
endfunction()

set(examples read_write_page epoll_loop asio_write_read wal_commit page_cache kv_store errors)
# What each example links: pkg-config modules, and the plain -l list in the
# one order a linker takes (a library before the ones it uses).
set(pc_read_write_page pageio-engine)
set(pc_epoll_loop pageio-engine)
set(pc_asio_write_read pageio-engine)
set(pc_wal_commit pageio-wal)
set(pc_page_cache pageio-pagecache pageio-wal)
set(pc_kv_store pageio-kv)
set(pc_errors pageio-kv)
set(engine_libs -lpageio_engine -laio -luring -pthread)
set(l_read_write_page ${engine_libs})
set(l_epoll_loop ${engine_libs})
set(l_asio_write_read ${engine_libs})
set(l_wal_commit -lpageio_wal ${engine_libs})
set(l_page_cache -lpageio_pagecache -lpageio_wal ${engine_libs})
set(l_kv_store -lpageio_kv -lpageio_pagecache -lpageio_wal ${engine_libs})
set(l_errors ${l_kv_store})

file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}/data")
set(prefix "${WORK_DIR}/prefix")

if(DEFINED SHARED_FROM)
  run("configure pageio (shared libraries)" ${CMAKE_COMMAND} -S "${SHARED_FROM}" -B "${WORK_DIR}/pageio-build"
      -G "${GENERATOR}" -DBUILD_SHARED_LIBS=ON -DCMAKE_BUILD_TYPE=None -DCMAKE_CXX_COMPILER=${CXX_COMPILER}
      -DPAGEIO_BUILD_TESTS=OFF -DPAGEIO_BUILD_BENCH=OFF -DPAGEIO_BUILD_EXAMPLES=OFF -DPAGEIO_BUILD_TOOLS=OFF)
  run("build pageio (shared libraries)" ${CMAKE_COMMAND} --build "${WORK_DIR}/pageio-build")
  set(BUILD_DIR "${WORK_DIR}/pageio-build")
endif()
run("install" ${CMAKE_COMMAND} --install "${BUILD_DIR}" --prefix "${prefix}")
# GNUInstallDirs' choice (lib, or lib/<multiarch> under /usr), found again.
file(GLOB_RECURSE pc_files "${prefix}/pageio-engine.pc")
if(NOT pc_files)
  message(FATAL_ERROR "consumer test: the install has no pkg-config file pageio-engine.pc")
endif()
list(GET pc_files 0 pc_file)
get_filename_component(pc_dir "${pc_file}" DIRECTORY)
get_filename_component(libdir "${pc_dir}" DIRECTORY)
foreach(f include/pageio/engine/backend.hpp include/pageio/version.hpp share/doc/pageio/LICENSE)
  if(NOT EXISTS "${prefix}/${f}")
    message(FATAL_ERROR "consumer test: the install has no ${f}")
  endif()
endforeach()
foreach(c engine wal pagecache kv)
  if(NOT EXISTS "${pc_dir}/pageio-${c}.pc")
    message(FATAL_ERROR "consumer test: the install has no pkg-config file pageio-${c}.pc")
  endif()
  if(DEFINED SHARED_FROM)
    file(GLOB so "${libdir}/libpageio_${c}.so.*.*")
    if(NOT so)
      message(FATAL_ERROR "consumer test: the shared install has no versioned libpageio_${c}.so.x.y")
    endif()
  endif()
endforeach()
# Each installed tool comes with its man page and bash completion, and
# answers --version (help2man builds the pages: scripts/setup.sh installs it).
foreach(tool pageio-bench pageio-wal pageio-kv)
  if(EXISTS "${prefix}/bin/${tool}")
    foreach(f share/man/man1/${tool}.1 share/bash-completion/completions/${tool})
      if(NOT EXISTS "${prefix}/${f}")
        message(FATAL_ERROR "consumer test: ${tool} is installed without ${f}")
      endif()
    endforeach()
    run("${tool} --version" "${prefix}/bin/${tool}" --version)
    if(NOT last_output MATCHES "^${tool} [0-9]+\\.[0-9]+\\.[0-9]+")
      message(FATAL_ERROR "consumer test: ${tool} --version said: ${last_output}")
    endif()
  endif()
endforeach()

if(DEFINED SHARED_FROM)
  run("SONAME" objdump -p "${libdir}/libpageio_kv.so")
  if(NOT last_output MATCHES "SONAME +libpageio_kv\\.so\\.[0-9]+\\.[0-9]+")
    message(FATAL_ERROR "consumer test: libpageio_kv.so has no versioned SONAME:\n${last_output}")
  endif()
endif()

if("cmake" IN_LIST WAYS)
  set(configure_args -S "${SOURCE_DIR}" -B "${WORK_DIR}/build" -G "${GENERATOR}"
      "-DCMAKE_PREFIX_PATH=${prefix}" -DCMAKE_BUILD_TYPE=None "-DEXAMPLES_DIR=${EXAMPLES_DIR}"
      "-DCMAKE_CXX_COMPILER=${CXX_COMPILER}")
  if(CXX_FLAGS)
    # A sanitized pageio needs the sanitizer runtime in the program that links it.
    list(APPEND configure_args "-DCMAKE_CXX_FLAGS=${CXX_FLAGS}" "-DCMAKE_EXE_LINKER_FLAGS=${CXX_FLAGS}")
  endif()
  run("cmake: configure" ${CMAKE_COMMAND} ${configure_args})
  run("cmake: build" ${CMAKE_COMMAND} --build "${WORK_DIR}/build")
  run("cmake: run app" "${WORK_DIR}/build/app" "${WORK_DIR}/data")
  message(STATUS "${last_output}")
  foreach(name IN LISTS examples)
    run_example(cmake "${WORK_DIR}/build/${name}" ${name})
  endforeach()
  # A component the package does not have: a clear refusal.
  execute_process(COMMAND ${CMAKE_COMMAND} -S "${SOURCE_DIR}/bad_component" -B "${WORK_DIR}/bad" -G "${GENERATOR}"
                          "-DCMAKE_PREFIX_PATH=${prefix}" "-DCMAKE_CXX_COMPILER=${CXX_COMPILER}"
                  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(rc EQUAL 0 OR NOT err MATCHES "no component \"nosuchpart\"")
    message(FATAL_ERROR "consumer test: COMPONENTS nosuchpart was not refused by name (${rc}):\n${out}\n${err}")
  endif()
  message(STATUS "consumer test: cmake: an unknown component is refused by name")
  # A missing dependency: named, with the Debian package that provides it.
  execute_process(COMMAND ${CMAKE_COMMAND} -S "${SOURCE_DIR}" -B "${WORK_DIR}/noboost" -G "${GENERATOR}"
                          "-DCMAKE_PREFIX_PATH=${prefix}" "-DCMAKE_CXX_COMPILER=${CXX_COMPILER}"
                          -DCMAKE_DISABLE_FIND_PACKAGE_Boost=TRUE
                  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(rc EQUAL 0 OR NOT err MATCHES "Boost 1.81 or newer was not found" OR NOT err MATCHES "libboost1.81-dev")
    message(FATAL_ERROR "consumer test: a missing Boost was not reported with its Debian package (${rc}):\n${out}\n${err}")
  endif()
  message(STATUS "consumer test: cmake: a missing dependency is named with its Debian package")
endif()

if("pkgconfig" IN_LIST WAYS)
  find_program(PKG_CONFIG NAMES pkg-config pkgconf REQUIRED)
  set(ENV{PKG_CONFIG_PATH} "${pc_dir}")
  foreach(name IN LISTS examples)
    run("pkg-config: flags for ${name}" ${PKG_CONFIG} --cflags --libs ${pc_${name}})
    separate_arguments(flags UNIX_COMMAND "${last_output}")
    run("pkg-config: build ${name}" ${CXX_COMPILER} -std=c++20 ${cxx_flags} "${EXAMPLES_DIR}/${name}.cpp" ${flags}
        -Wl,-rpath,${libdir} -o "${WORK_DIR}/pc-${name}")
    run_example(pkg-config "${WORK_DIR}/pc-${name}" ${name})
  endforeach()
endif()

if("plain" IN_LIST WAYS)
  foreach(name IN LISTS examples)
    run("plain: build ${name}" ${CXX_COMPILER} -std=c++20 ${cxx_flags} "${EXAMPLES_DIR}/${name}.cpp"
        -I${prefix}/include -L${libdir} ${l_${name}} -Wl,-rpath,${libdir} -o "${WORK_DIR}/plain-${name}")
    run_example(plain "${WORK_DIR}/plain-${name}" ${name})
  endforeach()
endif()
file(REMOVE_RECURSE "${WORK_DIR}")
