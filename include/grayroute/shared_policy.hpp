// The policy a gateway serves with, replaced whole on reload while requests decide.
//
//   grayroute::shared_policy live(std::make_shared<const grayroute::policy>(config));
//   // per request, any thread:
//   std::shared_ptr<const grayroute::policy> p = live.load();
//   grayroute::decision d = p->decide(request, headers);
//   p->route_name(d.route);          // names from the same policy that decided
//   // on SIGHUP, after the new file parsed and validated:
//   live.store(std::make_shared<const grayroute::policy>(new_config));
//
// A request keeps the policy it loaded until it drops the pointer, so a decision, its
// route name and its rule name always come from one policy even when a reload lands
// in the middle; the old policy is freed by the last request that used it. load() copies
// a shared_ptr under a mutex held for that copy only (no allocation); a bad new
// configuration throws while building, before store(), so the old policy keeps serving.
#ifndef GRAYROUTE_SHARED_POLICY_HPP
#define GRAYROUTE_SHARED_POLICY_HPP

#include <memory>
#include <mutex>
#include <utility>

#include "policy.hpp"
#include "version.hpp"

GRAYROUTE_NAMESPACE_BEGIN

class shared_policy {
 public:
  explicit shared_policy(std::shared_ptr<const policy> initial) : current_(std::move(initial)) {}

  shared_policy(const shared_policy&) = delete;
  shared_policy& operator=(const shared_policy&) = delete;

  /// The policy to decide this request with; keep it for the request's lifetime.
  std::shared_ptr<const policy> load() const noexcept {
    std::lock_guard<std::mutex> lock(mutex_);
    return current_;
  }

  /// Publishes `next`: requests that load() after this returns use it.
  void store(std::shared_ptr<const policy> next) noexcept {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      current_.swap(next);
    }
    // `next` (the old policy) is released here, outside the lock.
  }

 private:
  mutable std::mutex mutex_;
  std::shared_ptr<const policy> current_;
};

GRAYROUTE_NAMESPACE_END

#endif  // GRAYROUTE_SHARED_POLICY_HPP
