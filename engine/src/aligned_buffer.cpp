#include <pageio/engine/aligned_buffer.hpp>

#include <sys/mman.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>
#include <stdexcept>
#include <string>

namespace pageio {

namespace {

// A buffer of aligned_buffer::mapped_from bytes or more is mapped from the
// kernel instead: its pages are zero already and come in only as they are
// first touched, not all at once when the buffer is made (a fault costs
// microseconds on a virtual machine, and a 64 MiB log buffer is 16,384 of
// them), and on 2 MiB boundaries, as huge pages where the kernel allows it
// (transparent_hugepage = madvise or always): 512 times fewer faults and
// TLB entries.
constexpr std::size_t huge_page = 2u << 20;
constexpr std::size_t base_page = 4096;
static_assert(aligned_buffer::mapped_from == huge_page,
              "a mapped buffer starts on a huge page and is at least one");

bool mapped(std::size_t size, std::size_t alignment) noexcept {
  return size >= aligned_buffer::mapped_from && alignment <= huge_page;
}

std::size_t map_length(std::size_t size) noexcept { return (size + base_page - 1) / base_page * base_page; }

void* map_zeroed(std::size_t size) {
  const std::size_t len = map_length(size);
  // Room to start on a huge-page boundary; the slack either side goes back.
  const std::size_t reserve = len + huge_page;
  void* m = ::mmap(nullptr, reserve, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) throw std::bad_alloc();
  const auto base = reinterpret_cast<std::uintptr_t>(m);
  const std::uintptr_t start = (base + huge_page - 1) / huge_page * huge_page;
  if (start > base) ::munmap(m, start - base);
  if (const std::uintptr_t end = start + len, mend = base + reserve; mend > end) {
    ::munmap(reinterpret_cast<void*>(end), mend - end);
  }
  void* p = reinterpret_cast<void*>(start);
  (void)::madvise(p, len, MADV_HUGEPAGE);  // a hint: refused where huge pages are off
  return p;
}

}  // namespace

aligned_buffer::aligned_buffer(std::size_t size_bytes, std::size_t alignment) : alignment_(alignment) {
  if (alignment < sizeof(void*) || (alignment & (alignment - 1)) != 0) {
    throw std::invalid_argument("aligned_buffer: alignment " + std::to_string(alignment) +
                                " is not a power of two of at least " +
                                std::to_string(sizeof(void*)));
  }
  if (size_bytes == 0) return;
  if (mapped(size_bytes, alignment)) {
    data_ = static_cast<std::byte*>(map_zeroed(size_bytes));
    size_ = size_bytes;
    return;
  }
  void* p = nullptr;
  if (::posix_memalign(&p, alignment, size_bytes) != 0) throw std::bad_alloc();
  std::memset(p, 0, size_bytes);
  data_ = static_cast<std::byte*>(p);
  size_ = size_bytes;
}

bool aligned_buffer::populate() noexcept {
#ifndef MADV_POPULATE_WRITE
  constexpr int MADV_POPULATE_WRITE = 23;  // Linux 5.14; older headers lack it
#endif
  if (data_ == nullptr || !mapped(size_, alignment_)) return false;
  // Faults each page in as a write would, so the pages are the process's
  // own (a read would map the shared zero page), and writes nothing.
  return ::madvise(data_, map_length(size_), MADV_POPULATE_WRITE) == 0;
}

aligned_buffer::~aligned_buffer() {
  if (data_ == nullptr) return;
  if (mapped(size_, alignment_)) {
    ::munmap(data_, map_length(size_));
  } else {
    std::free(data_);
  }
}

}  // namespace pageio
