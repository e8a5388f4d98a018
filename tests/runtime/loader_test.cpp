// The loader rejects every kind of corruption with a FormatError that names
// the file and the problem, and never crashes on mutated input.
#include <gtest/gtest.h>

#include <functional>
#include <nlohmann/json.hpp>
#include <random>

#include "pactq/runtime/model.h"
#include "pactq/runtime/writer.h"
#include "test_util.h"

namespace pactq::rt {
namespace {

using nlohmann::json;

// A small valid model: input -> fp conv -> 4-bit conv -> 3-bit conv (+residual)
// -> gap -> linear.
std::vector<uint8_t> valid_model() {
  std::mt19937 rng(3);
  ModelWriter w;
  w.set_model("tiny");
  w.add(InputNode{"input", 3, 6, 6, {0.f, 0.f, 0.f}, {1.f, 1.f, 1.f}});
  auto conv = [&](const std::string& name, const std::string& input, int cin, int cout, int bits,
                  OutputSpec out) {
    ConvNode c;
    c.name = name;
    c.input = input;
    c.in_channels = cin;
    c.out_channels = cout;
    c.kernel_h = c.kernel_w = 3;
    c.pad_h = c.pad_w = 1;
    const size_t n = static_cast<size_t>(cin) * cout * 9;
    c.weight = bits ? WeightData::Codes(test::random_codes(rng, n, bits), bits, 1.f)
                    : WeightData::Float(test::random_floats(rng, n, -1.f, 1.f));
    c.out_scale.assign(cout, 0.05f);
    c.out_bias.assign(cout, 0.1f);
    c.output = out;
    return c;
  };
  w.add(conv("conv1", "input", 3, 8, 0, OutputSpec::Codes(4, 2.f)));
  w.add(conv("conv2", "conv1", 8, 8, 4, OutputSpec::Codes(4, 2.f)));
  ConvNode c3 = conv("conv3", "conv2", 8, 8, 3, OutputSpec::Codes(4, 2.f));
  c3.residual = Residual{"conv1", 1, 0};
  w.add(c3);
  w.add(GlobalAvgPoolNode{"gap", "conv3", OutputSpec::Float()});
  LinearNode fc;
  fc.name = "fc";
  fc.input = "gap";
  fc.in_features = 8;
  fc.out_features = 4;
  fc.weight = WeightData::Float(test::random_floats(rng, 32, -1.f, 1.f));
  fc.out_scale.assign(4, 1.f);
  fc.out_bias.assign(4, 0.f);
  fc.output = OutputSpec::Float();
  w.add(fc);
  return w.serialize();
}

struct Parts {
  json header;
  std::vector<uint8_t> data;
};

Parts split(const std::vector<uint8_t>& b) {
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= static_cast<uint64_t>(b[i]) << (8 * i);
  Parts p;
  p.header = json::parse(b.begin() + 8, b.begin() + 8 + static_cast<long>(n));
  p.data.assign(b.begin() + 8 + static_cast<long>(n), b.end());
  return p;
}

std::vector<uint8_t> join_raw(const std::string& h, const std::vector<uint8_t>& data) {
  std::vector<uint8_t> out(8 + h.size() + data.size());
  const uint64_t n = h.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<uint8_t>(n >> (8 * i));
  std::copy(h.begin(), h.end(), out.begin() + 8);
  std::copy(data.begin(), data.end(), out.begin() + 8 + static_cast<long>(h.size()));
  return out;
}

std::vector<uint8_t> join(const Parts& p) {
  return join_raw(p.header.dump(), p.data);
}

// Applies `edit` to the graph JSON inside the metadata.
std::vector<uint8_t> edit_graph(const std::function<void(json&)>& edit) {
  Parts p = split(valid_model());
  json g = json::parse(p.header["__metadata__"]["graph"].get<std::string>());
  edit(g);
  p.header["__metadata__"]["graph"] = g.dump();
  return join(p);
}

json& node(json& g, const std::string& name) {
  for (json& n : g["nodes"])
    if (n["name"] == name) return n;
  throw std::runtime_error("no node " + name);
}

void expect_rejected(const std::vector<uint8_t>& bytes, const std::string& needle) {
  try {
    (void)Model::load_from_memory(bytes.data(), bytes.size(), "model.pqm");
    ADD_FAILURE() << "accepted; expected error containing: " << needle;
  } catch (const FormatError& e) {
    const std::string msg = e.what();
    EXPECT_EQ(msg.rfind("model.pqm: ", 0), 0u) << msg;
    EXPECT_NE(msg.find(needle), std::string::npos)
        << "message: " << msg << "\nexpected: " << needle;
  }
}

TEST(Loader, ValidModelLoads) {
  const auto b = valid_model();
  Model m = Model::load_from_memory(b.data(), b.size(), "model.pqm");
  EXPECT_EQ(m.classes(), 4);
}

TEST(Loader, RejectsTruncatedFile) {
  auto b = valid_model();
  b.resize(b.size() - 10);
  expect_rejected(b, "exceed data size");
  b.resize(5);
  expect_rejected(b, "file too small");
  auto c = valid_model();
  c.resize(40);  // cuts the header
  expect_rejected(c, "exceeds file size");
}

TEST(Loader, RejectsHeaderLengthBeyondFile) {
  auto b = valid_model();
  const uint64_t n = b.size();
  for (int i = 0; i < 8; ++i) b[i] = static_cast<uint8_t>(n >> (8 * i));
  expect_rejected(b, "header length");
  for (int i = 0; i < 8; ++i) b[i] = 0xFF;
  expect_rejected(b, "exceeds file size");
}

TEST(Loader, RejectsCorruptedJson) {
  auto b = valid_model();
  b[8] = '[';
  expect_rejected(b, "not valid JSON");
  auto c = valid_model();
  c[20] = '\x01';
  expect_rejected(c, "JSON");
}

TEST(Loader, RejectsMissingMetadataOrGraph) {
  Parts p = split(valid_model());
  p.header.erase("__metadata__");
  expect_rejected(join(p), "missing __metadata__");
  Parts q = split(valid_model());
  q.header["__metadata__"].erase("graph");
  expect_rejected(join(q), "lacks 'graph'");
  Parts r = split(valid_model());
  r.header["__metadata__"]["graph"] = "{not json";
  expect_rejected(join(r), "graph is not valid JSON");
  Parts s = split(valid_model());
  s.header["__metadata__"]["model"] = 3;
  expect_rejected(join(s), "must be a string");
}

TEST(Loader, RejectsUnknownFormatOrVersion) {
  Parts p = split(valid_model());
  p.header["__metadata__"]["format_version"] = "2";
  expect_rejected(join(p), "unsupported format_version '2'");
  Parts q = split(valid_model());
  q.header["__metadata__"]["format"] = "onnx";
  expect_rejected(join(q), "not 'pqm'");
}

TEST(Loader, RejectsUnknownOp) {
  expect_rejected(edit_graph([](json& g) { node(g, "conv2")["op"] = "conv3d"; }),
                  "node 'conv2': unknown op 'conv3d'");
}

TEST(Loader, RejectsUnsupportedBits) {
  expect_rejected(edit_graph([](json& g) { node(g, "conv2")["attrs"]["weight_bits"] = 9; }),
                  "unsupported weight bits 9");
  expect_rejected(edit_graph([](json& g) { node(g, "conv2")["attrs"]["weight_bits"] = 0; }),
                  "unsupported weight bits 0");
  expect_rejected(edit_graph([](json& g) { node(g, "conv1")["output"]["bits"] = 12; }),
                  "unsupported activation bits 12");
  expect_rejected(edit_graph([](json& g) { node(g, "conv2")["attrs"]["weight_packed_bits"] = 8; }),
                  "weight_packed_bits 8 != 4");
}

TEST(Loader, RejectsOffsetsOutOfRange) {
  Parts p = split(valid_model());
  p.header["conv2.weight"]["data_offsets"] = {100, 9000};
  expect_rejected(join(p), "tensor 'conv2.weight': data_offsets [100, 9000] exceed data size");
  Parts q = split(valid_model());
  auto off = q.header["conv2.out_scale"]["data_offsets"];
  q.header["conv2.out_scale"]["data_offsets"] = {off[0].get<int>() + 4, off[1].get<int>() + 4};
  expect_rejected(join(q), "overlap");
  Parts r = split(valid_model());
  r.header["conv2.out_scale"]["data_offsets"] = {-1, 4};
  expect_rejected(join(r), "out of range");
  Parts s = split(valid_model());
  s.header["conv2.out_scale"]["dtype"] = "F16";
  expect_rejected(join(s), "unsupported dtype 'F16'");
}

TEST(Loader, RejectsShapeMismatch) {
  // Tensor vs node.
  Parts p = split(valid_model());
  p.header["conv1.out_scale"]["shape"] = {2, 4};  // same bytes, still 8 elements: accepted
  EXPECT_NO_THROW(Model::load_from_memory(join(p).data(), join(p).size()));
  p.header["conv1.out_scale"]["shape"] = {9};
  expect_rejected(join(p), "data_offsets span 32 bytes but dtype F32 shape has 36");
  expect_rejected(edit_graph([](json& g) { node(g, "conv1")["attrs"]["out_channels"] = 9; }),
                  "has 216 elements, node needs 243");
  // Node vs graph (shape inference).
  expect_rejected(edit_graph([](json& g) { node(g, "conv2")["attrs"]["in_channels"] = 4; }),
                  "in_channels 4 != input channels 8");
  expect_rejected(edit_graph([](json& g) { node(g, "fc")["attrs"]["in_features"] = 16; }),
                  "linear needs an input of shape [16, 1, 1]");
  expect_rejected(
      edit_graph([](json& g) { node(g, "conv3")["attrs"]["residual_pad_channels"] = 2; }),
      "does not match output");
  expect_rejected(edit_graph([](json& g) {
                    node(g, "conv2")["attrs"]["kernel"] = {9, 9};
                  }),
                  "kernel larger than input");
}

TEST(Loader, RejectsPackedSizeMismatch) {
  expect_rejected(edit_graph([](json& g) {
                    node(g, "conv2")["attrs"]["weight_bits"] = 2;
                    node(g, "conv2")["attrs"]["weight_packed_bits"] = 2;
                  }),
                  "packed weight tensor 'conv2.weight' has 288 bytes, expected 144");
}

TEST(Loader, RejectsDanglingInputReference) {
  expect_rejected(edit_graph([](json& g) { node(g, "conv2")["inputs"] = {"nope"}; }),
                  "input 'nope' is not an earlier node");
  expect_rejected(edit_graph([](json& g) { node(g, "conv2")["tensors"]["weight"] = "ghost"; }),
                  "weight tensor 'ghost' not in file");
  expect_rejected(edit_graph([](json& g) { g["output"] = "ghost"; }),
                  "output 'ghost' is not a node");
  expect_rejected(edit_graph([](json& g) { node(g, "conv2")["name"] = "conv1"; }),
                  "duplicate node name");
}

TEST(Loader, RejectsCodesAboveRange) {
  // conv3 has 3-bit codes stored in 4-bit packing: a nibble of 15 is invalid.
  Parts p = split(valid_model());
  const size_t begin = p.header["conv3.weight"]["data_offsets"][0].get<size_t>();
  p.data[begin + 5] = 0xF0;
  expect_rejected(join(p), "weight code 15 at index 11 exceeds 7 for 3-bit weights");
}

// A file that cannot be opened or read is an IoError with the OS's reason,
// not a FormatError: nothing is wrong with a file nobody could read.
TEST(Loader, MissingOrUnreadableFileIsAnIoError) {
  try {
    (void)Model::load("/nonexistent/dir/m.pqm");
    ADD_FAILURE();
  } catch (const IoError& e) {
    EXPECT_EQ(std::string(e.what()),
              "/nonexistent/dir/m.pqm: cannot open file: No such file or directory");
  }
  const std::string dir = ::testing::TempDir();  // opens on Linux, fails at read()
  try {
    (void)Model::load(dir);
    ADD_FAILURE();
  } catch (const IoError& e) {
    EXPECT_EQ(std::string(e.what()), dir + ": cannot read file: Is a directory");
  }
}

TEST(Loader, StaysReadableBySafetensorsRules) {
  // Tensors tile the data section exactly, in order, with no holes; every
  // metadata value is a string; the header is padded to 8 bytes.
  const auto b = valid_model();
  Parts p = split(b);
  std::vector<std::pair<size_t, size_t>> spans;
  for (auto it = p.header.begin(); it != p.header.end(); ++it) {
    if (it.key() == "__metadata__") {
      for (const auto& v : *it) EXPECT_TRUE(v.is_string());
      continue;
    }
    spans.emplace_back(it.value()["data_offsets"][0].get<size_t>(),
                       it.value()["data_offsets"][1].get<size_t>());
  }
  std::sort(spans.begin(), spans.end());
  size_t pos = 0;
  for (const auto& s : spans) {
    EXPECT_EQ(s.first, pos);
    pos = s.second;
  }
  EXPECT_EQ(pos, p.data.size());
  EXPECT_EQ((b.size() - p.data.size()) % 8, 0u);
}

TEST(Loader, RandomMutationsNeverCrash) {
  const auto good = valid_model();
  Parts parts = split(good);
  const size_t header_end = good.size() - parts.data.size();
  std::mt19937 rng(77);
  std::vector<float> pixels(3 * 36, 0.5f);
  int accepted = 0;
  for (int it = 0; it < 3000; ++it) {
    auto b = good;
    const int flips = 1 + static_cast<int>(rng() % 4);
    const bool data_only = it % 2 == 0;
    for (int f = 0; f < flips; ++f) {
      const size_t lo = data_only ? header_end : 0;
      const size_t i = lo + rng() % (b.size() - lo);
      b[i] = static_cast<uint8_t>(rng());
    }
    if (it % 50 == 0) b.resize(rng() % b.size());
    try {
      Model m = Model::load_from_memory(b.data(), b.size(), "mut.pqm");
      ++accepted;
      if (data_only) (void)m.run(pixels.data(), 1);
    } catch (const FormatError&) {
    }
  }
  EXPECT_GT(accepted, 0);
}

}  // namespace
}  // namespace pactq::rt
