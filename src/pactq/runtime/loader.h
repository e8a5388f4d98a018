// The loader: a .pqm file's bytes -> a validated, packed CompiledGraph
// (docs/format.md). Every problem throws FormatError naming `name` and what is
// wrong; nothing in a corrupt file can crash it or make it allocate without
// bound. Internal to the runtime (Model::load is the public entry).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "pactq/runtime/compiled_graph.h"

namespace pactq::rt::detail {

// Weights are packed for `kernels`, the set that will run them.
std::shared_ptr<const CompiledGraph> load_graph(const uint8_t* data, size_t size,
                                                const std::string& name,
                                                const kernels::KernelSet& kernels);

}  // namespace pactq::rt::detail
