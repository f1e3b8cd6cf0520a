# System libraries pageio builds on (Debian: scripts/setup.sh installs them).
find_package(Boost 1.81 REQUIRED)
# Boost.Asio (pageio/engine/asio.hpp) runs on threads.
find_package(Threads REQUIRED)

find_path(PAGEIO_LIBAIO_INCLUDE libaio.h)
find_library(PAGEIO_LIBAIO aio)
if(NOT PAGEIO_LIBAIO_INCLUDE OR NOT PAGEIO_LIBAIO)
  message(FATAL_ERROR "libaio not found: install libaio-dev (scripts/setup.sh does)")
endif()

find_path(PAGEIO_LIBURING_INCLUDE liburing.h)
find_library(PAGEIO_LIBURING uring)
if(NOT PAGEIO_LIBURING_INCLUDE OR NOT PAGEIO_LIBURING)
  message(FATAL_ERROR "liburing not found: install liburing-dev (scripts/setup.sh does)")
endif()
