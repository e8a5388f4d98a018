// Compute threads for LibTorch. 0 means every core: OpenMP's own default can
// be a single thread (seen on Debian's build in small VMs), which would leave
// half of a 2-core machine idle.
#pragma once

namespace pactq::train {

// Sets LibTorch's intra-op threads; returns the number in effect.
int set_compute_threads(int requested);

}  // namespace pactq::train
