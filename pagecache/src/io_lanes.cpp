// I/O lanes: a small pool of backends the pool's own reads and writes run on.
// A thread borrows an idle one, submits, reaps its own completions and gives
// it back, so a backend is never driven by two threads at once. A lone
// request goes on a lane of options::lone_backend (by default a plain
// system call on the waiting thread).

#include "pool_internal.hpp"

namespace pageio::pagecache {

buffer_pool::lane* buffer_pool::borrow_lane(bool lone) {
  lone = lone && !opts_.make_backend && !opts_.lone_backend.empty();
  {
    std::lock_guard lock(lanes_mu_);
    std::vector<lane*>& idle = lone ? idle_lone_lanes_ : idle_lanes_;
    if (!idle.empty()) {
      lane* l = idle.back();
      idle.pop_back();
      return l;
    }
  }
  auto l = std::make_unique<lane>();
  l->lone = lone;
  if (opts_.make_backend) {
    l->backend = opts_.make_backend();
  } else {
    backend_options bo;
    bo.queue_depth = opts_.queue_depth;
    l->backend = make_backend(lone ? opts_.lone_backend : opts_.backend, bo);
  }
  lane* raw = l.get();
  std::lock_guard lock(lanes_mu_);
  all_lanes_.push_back(std::move(l));
  return raw;
}

void buffer_pool::return_lane(lane* l) noexcept {
  std::lock_guard lock(lanes_mu_);
  (l->lone ? idle_lone_lanes_ : idle_lanes_).push_back(l);
}

void buffer_pool::run_on_lane(std::span<io_request> reqs) {
  std::size_t done = 0;
  request_list batch;
  for (auto& q : reqs) {
    q.on_complete = &count_done;
    q.user_data = &done;
    batch.push_back(q);
  }
  lane* l = nullptr;
  try {
    l = borrow_lane(/*lone=*/reqs.size() == 1);  // may fail to build a backend
    l->backend->submit(batch);
    while (done < reqs.size()) l->backend->reap(reqs.size() - done);
  } catch (...) {
    // The backend itself broke (not an I/O error): let it finish what it holds.
    batch.clear();
    if (l != nullptr) {
      try {
        l->backend->drain();
      } catch (...) {
      }
      return_lane(l);
    }
    throw;
  }
  return_lane(l);
}


}  // namespace pageio::pagecache
