#include "write_buffer.hpp"

#include <algorithm>
#include <bit>
#include <functional>
#include <mutex>
#include <shared_mutex>

namespace pageio::kv {

namespace {

std::size_t filter_slots(std::uint64_t limit_bytes) {
  const std::uint64_t pairs = limit_bytes / write_buffer::cost(1, 0);
  return std::bit_ceil(std::clamp<std::uint64_t>(4 * pairs, std::uint64_t{1} << 16, std::uint64_t{1} << 26));
}

}  // namespace

write_buffer::write_buffer(std::uint64_t limit_bytes)
    : limit_(limit_bytes),
      filter_mask_(filter_slots(limit_bytes) - 1),
      filter_(std::make_unique<std::atomic<std::uint8_t>[]>(filter_mask_ + 1)) {}

std::size_t write_buffer::hash_of(std::string_view key) noexcept { return std::hash<std::string_view>{}(key); }

// The shard takes the hash's low bits; the filter the ones above them.
write_buffer::shard& write_buffer::shard_at(std::size_t h) const noexcept { return shards_[h % shards]; }

std::atomic<std::uint8_t>& write_buffer::filter_at(std::size_t h) const noexcept {
  return filter_[(h / shards) & filter_mask_];
}

write_buffer::shard& write_buffer::shard_of(std::string_view key) const noexcept { return shard_at(hash_of(key)); }

std::size_t write_buffer::filter_slot(std::string_view key) const noexcept {
  return static_cast<std::size_t>(&filter_at(hash_of(key)) - filter_.get());
}

bool write_buffer::may_hold(std::string_view key) const noexcept {
  return filter_at(hash_of(key)).load(std::memory_order_acquire) != 0;
}

void write_buffer::count(std::atomic<std::uint8_t>& slot, bool add) noexcept {
  // Released (an add) or acquired and released (a drop: a get that reads
  // the 0 sees what the dropper did before); never past the sticky top.
  std::uint8_t n = slot.load(std::memory_order_relaxed);
  while (n != filter_sticky &&
         !slot.compare_exchange_weak(n, add ? n + 1 : n - 1, add ? std::memory_order_release : std::memory_order_acq_rel,
                                     std::memory_order_relaxed)) {
  }
}

lsn_t write_buffer::lsn_of_locked(std::string_view key) const {
  const shard& s = shard_of(key);
  const auto it = s.by_key.find(key);
  return it == s.by_key.end() ? 0 : it->second.lsn;
}

void write_buffer::shard::add_aged(const std::string* key, slot& sl, lsn_t lsn) {
  if (by_age.empty() || by_age.back().lsn <= lsn) {
    sl.age = first_age + by_age.size();
    by_age.push_back({lsn, key, &sl});
    return;
  }
  // Out of order (no caller does this: the shard's lock is held from the
  // append on): kept correct all the same, at the cost of renumbering.
  auto at = std::upper_bound(by_age.begin(), by_age.end(), lsn, [](lsn_t l, const aged& a) { return l < a.lsn; });
  at = by_age.insert(at, {lsn, key, &sl});
  for (auto i = at; i != by_age.end(); ++i) {
    if (i->key != nullptr) i->s->age = first_age + static_cast<std::uint64_t>(i - by_age.begin());
  }
}

void write_buffer::shard::make_stale(const slot& sl) {
  by_age[sl.age - first_age].key = nullptr;
  ++stale;
  while (!by_age.empty() && by_age.front().key == nullptr) {
    by_age.pop_front();
    ++first_age;
    --stale;
  }
  if (stale > 1024 && stale > 2 * (by_age.size() - stale)) {
    std::deque<aged> live;
    for (const aged& a : by_age) {
      if (a.key == nullptr) continue;
      a.s->age = live.size();
      live.push_back(a);
    }
    by_age.swap(live);
    first_age = 0;
    stale = 0;
  }
}

void write_buffer::put_locked(std::string_view key, std::string_view value, lsn_t lsn) {
  const std::size_t h = hash_of(key);
  shard& s = shard_at(h);
  auto it = s.by_key.find(key);
  if (it == s.by_key.end()) {
    it = s.by_key.emplace(std::string(key), slot{std::string(value), lsn}).first;
    bytes_.fetch_add(cost(key.size(), value.size()), std::memory_order_relaxed);
    count(filter_at(h), true);
    count_.fetch_add(1, std::memory_order_release);
  } else {
    s.make_stale(it->second);
    bytes_.fetch_add(cost(key.size(), value.size()) - cost(key.size(), it->second.value.size()),
                     std::memory_order_relaxed);  // modular: a smaller value subtracts
    it->second.value.assign(value);
    it->second.lsn = lsn;
  }
  s.add_aged(&it->first, it->second, lsn);
}

bool write_buffer::drop_locked(std::string_view key) {
  const std::size_t h = hash_of(key);  // before the erase: `key` may be the node's own
  shard& s = shard_at(h);
  const auto it = s.by_key.find(key);
  if (it == s.by_key.end()) return false;
  s.make_stale(it->second);
  bytes_.fetch_sub(cost(it->first.size(), it->second.value.size()), std::memory_order_relaxed);
  s.by_key.erase(it);
  count(filter_at(h), false);
  count_.fetch_sub(1, std::memory_order_release);
  return true;
}

std::optional<std::string> write_buffer::get(std::string_view key) const {
  const std::size_t h = hash_of(key);
  if (filter_at(h).load(std::memory_order_acquire) == 0) return std::nullopt;  // may_hold() false
  const shard& s = shard_at(h);
  std::shared_lock l(s.mu);
  const auto it = s.by_key.find(key);
  if (it == s.by_key.end()) return std::nullopt;
  return it->second.value;
}

lsn_t write_buffer::lsn_of(std::string_view key) const {
  std::shared_lock l(shard_of(key).mu);
  return lsn_of_locked(key);
}

bool write_buffer::drop(std::string_view key) {
  std::unique_lock l(shard_of(key).mu);
  return drop_locked(key);
}

bool write_buffer::drop_if(std::string_view key, lsn_t lsn) {
  std::unique_lock l(shard_of(key).mu);
  return lsn_of_locked(key) == lsn && drop_locked(key);
}

void write_buffer::put(std::string_view key, std::string_view value, lsn_t lsn) {
  std::unique_lock l(shard_of(key).mu);
  put_locked(key, value, lsn);
}

void write_buffer::range(std::string_view from, bool from_open, const std::string* to, std::vector<pair>& out,
                         std::size_t max) const {
  const std::size_t first = out.size();
  for (const shard& s : shards_) {
    std::shared_lock l(s.mu);
    auto it = from_open ? s.by_key.upper_bound(from) : s.by_key.lower_bound(from);
    for (std::size_t n = 0; it != s.by_key.end() && n < max && (to == nullptr || it->first < *to); ++it, ++n) {
      out.push_back({it->first, it->second.value, it->second.lsn});
    }
  }
  std::sort(out.begin() + static_cast<std::ptrdiff_t>(first), out.end(),
            [](const pair& a, const pair& b) { return a.key < b.key; });
  if (out.size() - first > max) out.resize(first + max);
}

std::vector<write_buffer::pair> write_buffer::run_from(std::string_view from, std::size_t n) const {
  // The n smallest keys at or after `start` over all shards, kept sorted as
  // they are found: a shard is read only while its keys would still make
  // the cut, so a run copies about n log(shards) pairs, not n per shard.
  auto collect = [&](std::string_view start) {
    std::vector<pair> out;
    if (n == 0) return out;
    out.reserve(n + 1);
    for (const shard& s : shards_) {
      std::shared_lock l(s.mu);
      for (auto it = s.by_key.lower_bound(start); it != s.by_key.end(); ++it) {
        if (out.size() == n && it->first >= out.back().key) break;  // and so is every later key here
        const auto at = std::upper_bound(out.begin(), out.end(), std::string_view(it->first),
                                         [](std::string_view k, const pair& p) { return k < p.key; });
        out.insert(at, pair{it->first, it->second.value, it->second.lsn});
        if (out.size() > n) out.pop_back();
      }
    }
    return out;
  };
  std::vector<pair> out = collect(from);
  return out.empty() ? collect({}) : out;
}

std::pair<lsn_t, std::string> write_buffer::oldest() const {
  std::pair<lsn_t, std::string> best{0, {}};
  for (const shard& s : shards_) {
    std::shared_lock l(s.mu);
    if (s.by_age.empty()) continue;  // else its front is not stale
    const aged& a = s.by_age.front();
    if (best.first == 0 || a.lsn < best.first) best = {a.lsn, *a.key};
  }
  return best;
}

buffer_guard::buffer_guard(write_buffer& b, std::string_view key) : b_(b), key_(key) {
  // Off and empty stays empty: nothing buffers then.
  if (b.limit() == 0 && b.empty_hint()) return;
  mu_ = &b.lock_of(key);
  mu_->lock_shared();
  held_ = shared;
  if (b.lsn_of_locked(key) == 0) return;
  mu_->unlock_shared();
  held_ = none;
  mu_->lock();
  held_ = exclusive;
  // Only a buffered put can have come in between (it adds; the caller holds
  // the key's leaf or tree_mu exclusively, so no drop of it runs).
  buffered_ = b.lsn_of_locked(key) != 0;
}

buffer_guard::~buffer_guard() {
  if (held_ == shared) mu_->unlock_shared();
  if (held_ == exclusive) mu_->unlock();
}

void buffer_guard::drop() {
  if (buffered_) b_.drop_locked(key_);
  buffered_ = false;
}

}  // namespace pageio::kv
