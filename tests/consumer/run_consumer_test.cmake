# Installs the pageio build tree into a scratch prefix, builds the consumer
# project against it with find_package(pageio), and runs it.
#
#   cmake -DBUILD_DIR=<pageio build dir> -DSOURCE_DIR=<tests/consumer>
#         -DWORK_DIR=<scratch dir> -DGENERATOR=<generator>
#         [-DCXX_COMPILER=<path>] [-DCXX_FLAGS=<flags>] -P run_consumer_test.cmake
foreach(var BUILD_DIR SOURCE_DIR WORK_DIR GENERATOR)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "run_consumer_test.cmake: ${var} is not set")
  endif()
endforeach()

function(run step)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "consumer test: ${step} failed (${rc}):\n${out}\n${err}")
  endif()
  message(STATUS "consumer test: ${step} ok")
  set(last_output "${out}" PARENT_SCOPE)
endfunction()

file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}/data")
set(prefix "${WORK_DIR}/prefix")

run("install" ${CMAKE_COMMAND} --install "${BUILD_DIR}" --prefix "${prefix}")
if(NOT EXISTS "${prefix}/include/pageio/engine/backend.hpp")
  message(FATAL_ERROR "consumer test: the install has no pageio headers under ${prefix}/include")
endif()
foreach(f include/pageio/version.hpp share/doc/pageio/LICENSE)
  if(NOT EXISTS "${prefix}/${f}")
    message(FATAL_ERROR "consumer test: the install has no ${f}")
  endif()
endforeach()

set(configure_args -S "${SOURCE_DIR}" -B "${WORK_DIR}/build" -G "${GENERATOR}"
    "-DCMAKE_PREFIX_PATH=${prefix}" -DCMAKE_BUILD_TYPE=Release)
if(CXX_COMPILER)
  list(APPEND configure_args "-DCMAKE_CXX_COMPILER=${CXX_COMPILER}")
endif()
if(CXX_FLAGS)
  # A sanitized pageio needs the sanitizer runtime in the program that links it.
  list(APPEND configure_args "-DCMAKE_CXX_FLAGS=${CXX_FLAGS}" "-DCMAKE_EXE_LINKER_FLAGS=${CXX_FLAGS}")
endif()
run("configure" ${CMAKE_COMMAND} ${configure_args})
run("build" ${CMAKE_COMMAND} --build "${WORK_DIR}/build")
run("run" "${WORK_DIR}/build/app" "${WORK_DIR}/data")
message(STATUS "${last_output}")
file(REMOVE_RECURSE "${WORK_DIR}")
