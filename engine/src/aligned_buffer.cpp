#include <pageio/engine/aligned_buffer.hpp>

#include <cstdlib>
#include <cstring>
#include <new>
#include <stdexcept>
#include <string>

namespace pageio {

aligned_buffer::aligned_buffer(std::size_t size_bytes, std::size_t alignment) : alignment_(alignment) {
  if (alignment < sizeof(void*) || (alignment & (alignment - 1)) != 0) {
    throw std::invalid_argument("aligned_buffer: alignment " + std::to_string(alignment) +
                                " is not a power of two of at least " +
                                std::to_string(sizeof(void*)));
  }
  if (size_bytes == 0) return;
  void* p = nullptr;
  if (::posix_memalign(&p, alignment, size_bytes) != 0) throw std::bad_alloc();
  std::memset(p, 0, size_bytes);
  data_ = static_cast<std::byte*>(p);
  size_ = size_bytes;
}

aligned_buffer::~aligned_buffer() { std::free(data_); }

}  // namespace pageio
