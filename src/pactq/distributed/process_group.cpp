#define PACTQ_COMPAT_C10D
#include "pactq/distributed/process_group.h"
#include "pactq/common/format.h"

#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#if defined(USE_C10D_NCCL)
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <algorithm>
#include <chrono>
#include <thread>

#include "pactq/common/torch_compat.h"

namespace pactq::distributed {
namespace {

using std::chrono::milliseconds;

std::string first_line(const std::exception& e) {
  std::string text = e.what();
  if (const auto* c10 = dynamic_cast<const c10::Error*>(&e)) text = c10->what_without_backtrace();
  text = text.substr(0, text.find('\n'));
  // Gloo prefixes "[/path/to/file.cc:123] ": the reader needs the rest.
  if (!text.empty() && text[0] == '[') {
    const auto close = text.find("] ");
    if (close != std::string::npos) text = text.substr(close + 2);
  }
  return text;
}

std::string rank_list(const std::vector<int>& ranks) {
  std::string s;
  for (size_t i = 0; i < ranks.size(); ++i) {
    s += (i == 0 ? "" : i + 1 == ranks.size() ? " and " : ", ") + std::to_string(ranks[i]);
  }
  return (ranks.size() == 1 ? "rank " : "ranks ") + s;
}

bool is_loopback(const std::string& addr) {
  return addr == "localhost" || addr.rfind("127.", 0) == 0 || addr == "::1";
}

class C10dGroup final : public ProcessGroup {
 public:
  C10dGroup(const DistOptions& o, const at::Device& device) : o_(o) {
    const milliseconds timeout(static_cast<int64_t>(o.timeout_seconds * 1000));
    c10d::TCPStoreOptions so;
    so.port = static_cast<uint16_t>(o.master_port);
    so.isServer = o.rank == 0 && !o.agent_store;
    so.numWorkers = o.world_size;
    so.waitWorkers = false;  // we wait ourselves, to name who is missing
    so.timeout = timeout;
    so.multiTenant = true;
    try {
      tcp_ = c10::make_intrusive<c10d::TCPStore>(o.master_addr, so);
    } catch (const std::exception& e) {
      throw DistError(pactq::format(
          "rank {}: {} {}:{}: {} (is rank 0 started, is the address right, is the port free?)",
          o.rank, so.isServer ? "cannot host the store at" : "cannot reach the store at",
          o.master_addr, o.master_port, first_line(e)));
    }
    const std::string prefix = (o.store_prefix.empty() ? "" : o.store_prefix + "/") + "pactq";
    store_ = c10::make_intrusive<c10d::PrefixStore>(prefix, tcp_);
    join();
    try {
      if (device.is_cuda()) {
#if defined(USE_C10D_NCCL)
        auto opts = c10d::ProcessGroupNCCL::Options::create();
        opts->timeout = timeout;
        backend_ = c10::make_intrusive<c10d::ProcessGroupNCCL>(store_, o.rank, o.world_size, opts);
        name_ = "nccl";
#else
        throw DistError(
            "--device cuda with --world-size > 1 needs a LibTorch built with NCCL (this one has "
            "none): train on the CPU with Gloo (--device cpu)");
#endif
      } else {
        auto opts = c10d::ProcessGroupGloo::Options::create(timeout);
        // Gloo needs a device to bind: the interface named by GLOO_SOCKET_IFNAME,
        // loopback for a one-machine run, else this host's address.
        const char* ifname = std::getenv("GLOO_SOCKET_IFNAME");
        if (ifname != nullptr && *ifname != '\0') {
          opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
        } else if (is_loopback(o.master_addr)) {
          opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
        } else {
          opts->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
        }
        backend_ = c10::make_intrusive<c10d::ProcessGroupGloo>(store_, o.rank, o.world_size, opts);
        name_ = "gloo";
      }
    } catch (const DistError&) {
      throw;
    } catch (const std::exception& e) {
      fail(e, "connecting the " + std::string(device.is_cuda() ? "NCCL" : "Gloo") + " group");
    }
  }

  ~C10dGroup() override {
    leave();
  }

  int rank() const override {
    return o_.rank;
  }
  int size() const override {
    return o_.world_size;
  }
  std::string backend() const override {
    return name_;
  }

  void broadcast(std::vector<at::Tensor>& tensors, int root, const std::string& what) override {
    c10d::BroadcastOptions bo;
    bo.rootRank = root;
    run([&] { return backend_->broadcast(tensors, bo); }, what);
  }

  void allreduce_sum(at::Tensor& tensor, const std::string& what) override {
    allreduce_sum_async(tensor, what)->wait();
  }

  std::unique_ptr<PendingReduce> allreduce_sum_async(at::Tensor& tensor,
                                                     const std::string& what) override {
    struct Pending final : PendingReduce {
      C10dGroup* group;
      c10::intrusive_ptr<c10d::Work> work;
      std::string what;
      void wait() override {
        try {
          work->wait();
        } catch (const std::exception& e) {
          group->fail(e, what);
        }
      }
    };
    auto p = std::make_unique<Pending>();
    p->group = this;
    p->what = what;
    std::vector<at::Tensor> one{tensor};
    try {
      p->work = backend_->allreduce(one);  // SUM by default
    } catch (const std::exception& e) {
      fail(e, what);
    }
    return p;
  }

  void barrier(const std::string& what) override {
    run([&] { return backend_->barrier(); }, what);
  }

  void leave() override {
    if (left_) return;
    left_ = true;
    try {
      store_->set(pactq::format("done/{}", o_.rank), std::vector<uint8_t>{1});
    } catch (...) {  // rank 0 may be gone already: nothing to tell
    }
  }

  // Rethrows a collective's failure as one line naming the rank at fault: the
  // ranks still alive record that they failed too, so after a short grace the
  // ones without a record (and without a normal exit) are the culprits.
  [[noreturn]] void fail(const std::exception& e, const std::string& what) {
    const std::string cause = first_line(e);
    std::string who;
    try {
      store_->set(pactq::format("failed/{}", o_.rank), std::vector<uint8_t>{1});
      const auto grace = std::min(milliseconds(3000),
                                  milliseconds(static_cast<int64_t>(o_.timeout_seconds * 500)));
      std::this_thread::sleep_for(grace);
      std::vector<int> gone;
      for (int r = 0; r < o_.world_size; ++r) {
        if (r == o_.rank) continue;
        if (!store_->check({pactq::format("failed/{}", r)}) &&
            !store_->check({pactq::format("done/{}", r)}))
          gone.push_back(r);
      }
      who = gone.empty() ? "every other rank failed as well"
                         : rank_list(gone) + " stopped responding (exited, was killed or hung)";
    } catch (const std::exception&) {
      who = o_.rank == 0 || o_.agent_store ? "the rendezvous store is unreachable"
                                           : pactq::format("rank 0 (the store at {}:{}) is gone",
                                                           o_.master_addr, o_.master_port);
    }
    left_ = true;  // a failed rank is not a normal exit
    throw DistError(pactq::format("rank {}: {} failed: {}; {}", o_.rank, what, cause, who));
  }

 private:
  template <typename Launch>
  void run(Launch launch, const std::string& what) {
    try {
      launch()->wait();
    } catch (const std::exception& e) {
      fail(e, what);
    }
  }

  // Every rank announces itself; a rank missing after the timeout is named.
  void join() {
    const milliseconds timeout(static_cast<int64_t>(o_.timeout_seconds * 1000));
    std::vector<std::string> keys;
    for (int r = 0; r < o_.world_size; ++r) keys.push_back(pactq::format("joined/{}", r));
    try {
      store_->set(keys[static_cast<size_t>(o_.rank)], std::vector<uint8_t>{1});
      store_->wait(keys, timeout);
    } catch (const std::exception& e) {
      std::vector<int> missing;
      try {
        for (int r = 0; r < o_.world_size; ++r)
          if (!store_->check({keys[static_cast<size_t>(r)]})) missing.push_back(r);
      } catch (const std::exception&) {
        throw DistError(pactq::format("rank {}: lost the store at {}:{} while joining: {}", o_.rank,
                                      o_.master_addr, o_.master_port, first_line(e)));
      }
      if (missing.empty())
        throw DistError(pactq::format("rank {}: joining failed: {}", o_.rank, first_line(e)));
      throw DistError(pactq::format(
          "rank {}: {} did not join within {:g} s (started? --world-size {} on every rank? can "
          "it reach {}:{}?)",
          o_.rank, rank_list(missing), o_.timeout_seconds, o_.world_size, o_.master_addr,
          o_.master_port));
    }
  }

  DistOptions o_;
  c10::intrusive_ptr<c10d::TCPStore> tcp_;
  c10::intrusive_ptr<c10d::Store> store_;
  c10::intrusive_ptr<compat::CollectiveBackend> backend_;
  std::string name_;
  bool left_ = false;
};

}  // namespace

std::unique_ptr<ProcessGroup> ProcessGroup::connect(const DistOptions& options,
                                                    const at::Device& device) {
  return std::make_unique<C10dGroup>(options, device);
}

}  // namespace pactq::distributed
