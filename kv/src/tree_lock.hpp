// The store's tree lock (store::impl::tree_mu): shared for readers and for
// writes that stay in their leaf, exclusive for the queue's leader (splits,
// batches), a checkpoint's redo point and check(). Unlike std::shared_mutex
// (glibc's default rwlock, which lets every new reader in while a writer
// waits), a waiting exclusive holder goes before readers that come after it:
// six readers that never paused kept splits out for 30 s of a 0.5 s job
// (store_test SplitsAreNotStarvedByReadersThatNeverPause). Not recursive: a
// thread holding it shared must not take it again (none does).
#pragma once

#include <pthread.h>

#include <cerrno>
#include <system_error>

namespace pageio::kv {

class tree_lock {
 public:
  tree_lock() {
    pthread_rwlockattr_t attr;
    pthread_rwlockattr_init(&attr);
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    const int rc = pthread_rwlock_init(&rw_, &attr);
    pthread_rwlockattr_destroy(&attr);
    if (rc != 0) throw std::system_error(rc, std::generic_category(), "kv: pthread_rwlock_init");
  }
  ~tree_lock() { pthread_rwlock_destroy(&rw_); }
  tree_lock(const tree_lock&) = delete;
  tree_lock& operator=(const tree_lock&) = delete;

  void lock() { check(pthread_rwlock_wrlock(&rw_)); }
  void unlock() { pthread_rwlock_unlock(&rw_); }
  void lock_shared() { check(pthread_rwlock_rdlock(&rw_)); }
  void unlock_shared() { pthread_rwlock_unlock(&rw_); }

 private:
  static void check(int rc) {
    if (rc != 0) throw std::system_error(rc, std::generic_category(), "kv: the tree lock");
  }
  pthread_rwlock_t rw_;
};

}  // namespace pageio::kv
