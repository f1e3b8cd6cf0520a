// Memory for direct I/O: one aligned allocation, freed when the owner goes.
#pragma once

#include <cstddef>
#include <span>
#include <utility>

namespace pageio {

// A zero-filled block of `size_bytes` whose address is a multiple of
// `alignment` (a power of two, at least sizeof(void*)). Move-only.
class aligned_buffer {
 public:
  aligned_buffer() noexcept = default;
  // A buffer of at least this many bytes (and an alignment of at most as
  // many) is mapped from the kernel: zero, and untouched until used. A
  // smaller one is allocated and zeroed at once.
  static constexpr std::size_t mapped_from = std::size_t{2} << 20;
  // Throws std::invalid_argument for a bad alignment, std::bad_alloc when out of memory.
  explicit aligned_buffer(std::size_t size_bytes, std::size_t alignment = 4096);
  aligned_buffer(aligned_buffer&& o) noexcept
      : data_(std::exchange(o.data_, nullptr)), size_(std::exchange(o.size_, 0)),
        alignment_(o.alignment_) {}
  aligned_buffer& operator=(aligned_buffer&& o) noexcept {
    std::swap(data_, o.data_);
    std::swap(size_, o.size_);
    std::swap(alignment_, o.alignment_);
    return *this;
  }
  aligned_buffer(const aligned_buffer&) = delete;
  aligned_buffer& operator=(const aligned_buffer&) = delete;
  ~aligned_buffer();

  std::byte* data() noexcept { return data_; }
  const std::byte* data() const noexcept { return data_; }
  char* chars() noexcept { return reinterpret_cast<char*>(data_); }
  std::size_t size() const noexcept { return size_; }
  std::size_t alignment() const noexcept { return alignment_; }
  // Maps in every page of the buffer now, without changing a byte: safe
  // while other threads write to it, so a thread of the owner's can do it
  // ahead of use (a first touch costs microseconds a page on a virtual
  // machine). Returns false where there was nothing to do (a small buffer
  // is touched when it is made) or the kernel cannot (before Linux 5.14).
  bool populate() noexcept;
  std::span<std::byte> span() noexcept { return {data_, size_}; }
  std::span<const std::byte> span() const noexcept { return {data_, size_}; }

 private:
  std::byte* data_ = nullptr;
  std::size_t size_ = 0;
  std::size_t alignment_ = 0;
};

}  // namespace pageio
