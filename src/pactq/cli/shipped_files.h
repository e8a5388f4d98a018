// Files the `pactq` command ships beside itself: the benchmark peers
// (bench/peers), the ONNX Runtime runner (tools/ort), the trained models
// (trained/). Found wherever the binary is: installed (<prefix>/bin/pactq with
// <prefix>/share/pactq/...), in a build tree of the source (any build folder,
// build/ or out/rel), or copied elsewhere with PACTQ_DATA_DIR naming the folder.
#pragma once
#include <string>
#include <vector>

namespace pactq::cli {

// The places searched for `relative`, in order: $PACTQ_DATA_DIR,
// <exe>/../share/pactq, the source tree the binary was built from, <exe>/..,
// the working directory.
std::vector<std::string> shipped_file_candidates(const std::string& relative);

// The first candidate that exists (a regular file, or a directory when
// `directory`), canonical; empty if none does.
std::string find_shipped_file(const std::string& relative, bool directory = false);

// One line for an error: where `relative` was looked for.
std::string shipped_file_search_note(const std::string& relative);

}  // namespace pactq::cli
