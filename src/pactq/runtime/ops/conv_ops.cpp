// conv2d and linear (a 1x1 conv on a 1x1 image): the writer's form, the
// loader's validation and weight packing, and the run, in one place.
#include <algorithm>
#include <cstring>
#include <limits>
#include <vector>

#include "pactq/runtime/ops/op_table.h"
#include "pactq/runtime/pack.h"
#include "pactq/runtime/quant_format.h"

namespace pactq::rt::detail {

namespace k = kernels;

// ------------------------------------------------------------ writing

namespace {

// The weight tensor "<node>.weight" and its attributes (weight_dtype, and for
// codes weight_bits, weight_packed_bits, weight_scale).
TensorRecord weight_record(const std::string& node, const WeightData& w, size_t expected_count,
                           json& attrs) {
  const std::string tname = node + ".weight";
  writer_require(w.f32.empty() != w.codes.empty(), node,
                 "exactly one of weight.f32 / weight.codes");
  if (!w.f32.empty()) {
    writer_require(w.f32.size() == expected_count, node,
                   "weight.f32 has " + std::to_string(w.f32.size()) + " values, expected " +
                       std::to_string(expected_count));
    attrs["weight_dtype"] = "f32";
    return f32_record(tname, w.f32);
  }
  writer_require(format::valid_bits(w.bits), node, "weight.bits must be 1..8");
  writer_require(w.codes.size() == expected_count, node,
                 "weight.codes has " + std::to_string(w.codes.size()) + " values, expected " +
                     std::to_string(expected_count));
  std::vector<uint8_t> packed = pack_codes(w.codes, w.bits);
  attrs["weight_dtype"] = "codes";
  attrs["weight_bits"] = w.bits;
  attrs["weight_packed_bits"] = packed_bits_for(w.bits);
  attrs["weight_scale"] = w.scale;
  const int64_t n = static_cast<int64_t>(packed.size());
  return TensorRecord{tname, "U8", {n}, std::move(packed)};
}

NodeRecord conv_like_record(const std::string& name, const char* op, const std::string& input,
                            const Residual& r, const OutputSpec& out, const WeightData& weight,
                            size_t weight_count, const std::vector<float>& out_scale,
                            const std::vector<float>& out_bias, json attrs) {
  NodeRecord rec;
  json& j = rec.node;
  j["name"] = name;
  j["op"] = op;
  j["inputs"] = json::array({input});
  if (!r.input.empty()) {
    j["inputs"].push_back(r.input);
    attrs["residual_stride"] = r.stride;
    attrs["residual_pad_channels"] = r.pad_channels;
  }
  j["output"] = output_json(out);
  rec.tensors.push_back(weight_record(name, weight, weight_count, attrs));
  j["attrs"] = attrs;
  rec.tensors.push_back(f32_record(name + ".out_scale", out_scale));
  rec.tensors.push_back(f32_record(name + ".out_bias", out_bias));
  j["tensors"] = {{"weight", name + ".weight"},
                  {"out_scale", name + ".out_scale"},
                  {"out_bias", name + ".out_bias"}};
  return rec;
}

}  // namespace

NodeRecord write_node(const ConvNode& n) {
  writer_require(n.groups >= 1 && n.in_channels % n.groups == 0 && n.out_channels % n.groups == 0,
                 n.name, "groups must divide in_channels and out_channels");
  writer_require(static_cast<int>(n.out_scale.size()) == n.out_channels &&
                     static_cast<int>(n.out_bias.size()) == n.out_channels,
                 n.name, "out_scale/out_bias need out_channels values");
  json a;
  a["in_channels"] = n.in_channels;
  a["out_channels"] = n.out_channels;
  a["kernel"] = {n.kernel_h, n.kernel_w};
  a["stride"] = {n.stride_h, n.stride_w};
  a["padding"] = {n.pad_h, n.pad_w};
  a["groups"] = n.groups;
  const size_t count =
      static_cast<size_t>(n.out_channels) * (n.in_channels / n.groups) * n.kernel_h * n.kernel_w;
  return conv_like_record(n.name, kConv2dOp.name, n.input, n.residual, n.output, n.weight, count,
                          n.out_scale, n.out_bias, std::move(a));
}

NodeRecord write_node(const LinearNode& n) {
  writer_require(static_cast<int>(n.out_scale.size()) == n.out_features &&
                     static_cast<int>(n.out_bias.size()) == n.out_features,
                 n.name, "out_scale/out_bias need out_features values");
  json a;
  a["in_features"] = n.in_features;
  a["out_features"] = n.out_features;
  const size_t count = static_cast<size_t>(n.out_features) * n.in_features;
  return conv_like_record(n.name, kLinearOp.name, n.input, n.residual, n.output, n.weight, count,
                          n.out_scale, n.out_bias, std::move(a));
}

// ------------------------------------------------------------ parsing

namespace {

void parse_geometry(NodeParser& p) {
  Node& nd = p.node;
  const ValueInfo& x = p.input(0);
  k::ConvGeom& g = nd.geom;
  if (nd.op == Op::kConv) {
    const int cin = p.get_int(p.attrs, "in_channels", 1, kMaxDim);
    const int cout = p.get_int(p.attrs, "out_channels", 1, kMaxDim);
    p.get_pair(p.attrs, "kernel", 1, kMaxKernel, &g.kh, &g.kw);
    p.get_pair(p.attrs, "stride", 1, kMaxKernel, &g.sh, &g.sw);
    p.get_pair(p.attrs, "padding", 0, kMaxKernel, &g.ph, &g.pw);
    g.groups = p.get_int(p.attrs, "groups", 1, kMaxDim);
    if (cin != x.c) {
      p.fail("in_channels " + std::to_string(cin) + " != input channels " + std::to_string(x.c) +
             " of '" + p.input_name(0) + "'");
    }
    if (cin % g.groups || cout % g.groups) p.fail("groups must divide in/out channels");
    if (x.h + 2 * g.ph < g.kh || x.w + 2 * g.pw < g.kw) p.fail("kernel larger than input");
    g.in_h = x.h;
    g.in_w = x.w;
    g.in_c = cin;
    g.out_c = cout;
    g.out_h = (x.h + 2 * g.ph - g.kh) / g.sh + 1;
    g.out_w = (x.w + 2 * g.pw - g.kw) / g.sw + 1;
  } else {
    const int fin = p.get_int(p.attrs, "in_features", 1, kMaxElements);
    const int fout = p.get_int(p.attrs, "out_features", 1, kMaxDim);
    if (x.h != 1 || x.w != 1 || x.c != fin) {
      p.fail("linear needs an input of shape [" + std::to_string(fin) + ", 1, 1], '" +
             p.input_name(0) + "' gives [" + std::to_string(x.c) + ", " + std::to_string(x.h) +
             ", " + std::to_string(x.w) + "] (flatten first)");
    }
    g.in_c = fin;
    g.out_c = fout;
  }
  g.cin_g = g.in_c / g.groups;
  g.cout_g = g.out_c / g.groups;
}

// The weight codes (unpacked and range-checked) or float weights.
void parse_weights(NodeParser& p, int64_t count, std::vector<uint8_t>* codes,
                   std::vector<float>* wf) {
  Node& nd = p.node;
  const std::string wdt = p.get_string(p.attrs, "weight_dtype");
  std::string wname;
  const TensorInfo& wt = p.tensor("weight", &wname);
  if (wdt == "codes") {
    nd.w_codes = true;
    nd.wbits = static_cast<int>(p.as_int(p.member(p.attrs, "weight_bits"), "weight_bits",
                                         std::numeric_limits<int>::min(),
                                         std::numeric_limits<int>::max()));
    if (!format::valid_bits(nd.wbits)) {
      p.fail("unsupported weight bits " + std::to_string(nd.wbits) + " (expected 1..8)");
    }
    const int pb = p.get_int(p.attrs, "weight_packed_bits", 1, 8);
    if (pb != packed_bits_for(nd.wbits)) {
      p.fail("weight_packed_bits " + std::to_string(pb) +
             " != " + std::to_string(packed_bits_for(nd.wbits)) + " for " +
             std::to_string(nd.wbits) + "-bit weights");
    }
    nd.w_scale = p.get_float(p.attrs, "weight_scale");
    if (wt.dtype != "U8" || wt.shape.size() != 1) {
      p.fail("packed weight tensor '" + wname + "' must be U8 with shape [bytes]");
    }
    const size_t expect = packed_size(static_cast<size_t>(count), pb);
    if (static_cast<size_t>(wt.numel) != expect) {
      p.fail("packed weight tensor '" + wname + "' has " + std::to_string(wt.numel) +
             " bytes, expected " + std::to_string(expect) + " for " + std::to_string(count) +
             " codes at " + std::to_string(pb) + " bits");
    }
    *codes = unpack_codes(p.blob + wt.begin, static_cast<size_t>(wt.numel),
                          static_cast<size_t>(count), nd.wbits);
    const int nw = format::max_code(nd.wbits);
    for (size_t i = 0; i < codes->size(); ++i) {
      if ((*codes)[i] > nw) {
        p.fail("weight code " + std::to_string((*codes)[i]) + " at index " + std::to_string(i) +
               " exceeds " + std::to_string(nw) + " for " + std::to_string(nd.wbits) +
               "-bit weights");
      }
    }
  } else if (wdt == "f32") {
    if (wt.dtype != "F32") p.fail("weight tensor '" + wname + "' must be F32");
    if (wt.numel != count) {
      p.fail("weight tensor '" + wname + "' has " + std::to_string(wt.numel) +
             " elements, node needs " + std::to_string(count));
    }
    wf->resize(static_cast<size_t>(count));
    std::memcpy(wf->data(), p.blob + wt.begin, static_cast<size_t>(count) * 4);
  } else {
    p.fail("unknown weight_dtype '" + wdt + "' (expected f32 or codes)");
  }
  nd.weight_file_bytes = static_cast<size_t>(wt.end - wt.begin);
  p.weight_bytes += nd.weight_file_bytes;
}

void parse_residual(NodeParser& p) {
  Node& nd = p.node;
  const k::ConvGeom& g = nd.geom;
  nd.has_residual = true;
  nd.res_stride = p.get_int(p.attrs, "residual_stride", 1, kMaxKernel);
  nd.res_pad = p.get_int(p.attrs, "residual_pad_channels", 0, kMaxDim);
  const ValueInfo& r = p.input(1);
  const int rh = (r.h + nd.res_stride - 1) / nd.res_stride;
  const int rw = (r.w + nd.res_stride - 1) / nd.res_stride;
  if (r.c + 2 * nd.res_pad != g.out_c || rh != g.out_h || rw != g.out_w) {
    p.fail("residual '" + p.input_name(1) + "' [" + std::to_string(r.c) + ", " +
           std::to_string(r.h) + ", " + std::to_string(r.w) + "] with stride " +
           std::to_string(nd.res_stride) + " and channel pad " + std::to_string(nd.res_pad) +
           " does not match output [" + std::to_string(g.out_c) + ", " + std::to_string(g.out_h) +
           ", " + std::to_string(g.out_w) + "]");
  }
}

void parse_conv_like(NodeParser& p) {
  Node& nd = p.node;
  parse_geometry(p);
  const k::ConvGeom& g = nd.geom;
  nd.spec = p.output();
  nd.out = value_of(nd.spec, g.out_c, g.out_h, g.out_w);
  p.check_value(nd.out);
  const int64_t taps = int64_t{g.kh} * g.kw;
  const int64_t count = int64_t{g.out_c} * g.cin_g * taps;
  const int64_t kdim = int64_t{g.cin_g} * taps;

  std::vector<uint8_t> codes;
  std::vector<float> wf;
  parse_weights(p, count, &codes, &wf);
  nd.out_scale = p.f32_tensor("out_scale", g.out_c);
  nd.out_bias = p.f32_tensor("out_bias", g.out_c);
  if (nd.inputs.size() == 2) parse_residual(p);

  const ValueInfo& x = p.input(0);
  nd.integer_path = nd.w_codes && x.codes;
  if (nd.integer_path) {
    if (!format::int32_accumulator_fits(kdim, nd.wbits, x.bits)) {
      p.fail("int32 accumulator could overflow (K = " + std::to_string(kdim) + ")");
    }
    p.kernels.qconv->pack(g, codes.data(), nd.wbits, format::max_code(x.bits), &nd.qconv);
  } else {
    if (nd.w_codes) {  // dequantize
      wf.resize(codes.size());
      for (size_t i = 0; i < codes.size(); ++i) {
        wf[i] = format::weight_value(codes[i], nd.wbits, nd.w_scale);
      }
    }
    k::fconv_pack(g, wf.data(), &nd.fconv);
  }
}

// ------------------------------------------------------------ running

// A linear layer (1x1 kernel on a 1x1 image) over a batch runs as one row of
// images: the kernels then load each weight once for a block of images
// instead of once per image (AlexNet-BN's fc6 and fc7 hold 54 MB of weights,
// which per image made the layers memory-bound). Images are not adjacent in
// the arena (each value has its slack), so a chunk's inputs are gathered into
// one row and its outputs scattered back: bytes, against megabytes of weights.
bool batched_linear(const k::ConvGeom& g, const Node& nd, int batch) {
  return batch >= 2 && !nd.has_residual && g.groups == 1 && g.kh == 1 && g.kw == 1 && g.in_h == 1 &&
         g.in_w == 1 && g.out_h == 1 && g.out_w == 1;
}

void run_linear_batched(const Node& nd, const RunArgs& a, const k::KernelSet& ks,
                        const k::Epilogue& e) {
  const k::ConvGeom& g = nd.geom;
  const size_t in_bytes = static_cast<size_t>(g.in_c);  // codes
  const size_t out_bytes = static_cast<size_t>(g.out_c) * (e.out_codes ? 1 : sizeof(float));
  // One chunk per thread: each streams the weights once.
  const int chunks = std::min(a.batch, a.pool.threads());
  a.pool.parallel_for(chunks, [&](int c) {
    const int b0 = a.batch * c / chunks, b1 = a.batch * (c + 1) / chunks;
    const int n = b1 - b0;
    thread_local std::vector<uint8_t> in_row, out_row;
    in_row.resize(n * in_bytes + 64);  // kernels may read 64 bytes past the end
    out_row.resize(n * out_bytes);
    for (int i = 0; i < n; ++i)
      std::memcpy(in_row.data() + i * in_bytes, a.value(nd.inputs[0], b0 + i), in_bytes);
    k::ConvGeom row = g;
    row.in_w = row.out_w = n;
    ks.qconv->run_rows(nd.qconv, row, in_row.data(), e, out_row.data(), 0, 1);
    for (int i = 0; i < n; ++i)
      std::memcpy(a.value(nd.id, b0 + i), out_row.data() + i * out_bytes, out_bytes);
  });
}

void run_conv_like(const Node& nd, const RunArgs& a) {
  const k::ConvGeom& g = nd.geom;
  const std::vector<Node>& nodes = a.graph.nodes;
  const ValueInfo& src = nodes[nd.inputs[0]].out;
  k::Epilogue e0;
  e0.scale = nd.out_scale.data();
  e0.bias = nd.out_bias.data();
  e0.out_codes = nd.spec.codes;
  if (e0.out_codes) {
    e0.n_out = format::max_code(nd.spec.bits);
    e0.inv = format::requant_inverse(nd.spec.alpha, nd.spec.bits);
  }
  e0.act = nd.spec.act;
  e0.alpha = nd.spec.alpha;
  if (nd.has_residual) {
    const ValueInfo& r = nodes[nd.inputs[1]].out;
    e0.res_codes = r.codes;
    e0.res_scale = r.scale;
    e0.res_h = r.h;
    e0.res_w = r.w;
    e0.res_c = r.c;
    e0.res_stride = nd.res_stride;
    e0.res_pad = nd.res_pad;
  }
  const k::KernelSet& ks = *a.graph.kernels;
  if (nd.integer_path && batched_linear(g, nd, a.batch)) {
    run_linear_batched(nd, a, ks, e0);
    return;
  }
  // Work items are runs of output rows: a whole image when one thread runs
  // the layer (kernels set up per call, e.g. the table-lookup kernel's
  // activation planes, then serve every row), else about four items per
  // thread.
  const int rows = g.out_h;
  const int threads = a.pool.threads();
  const int per = threads == 1 ? rows : std::clamp(rows * a.batch / (4 * threads), 1, rows);
  const int runs = (rows + per - 1) / per;
  a.pool.parallel_for(a.batch * runs, [&](int item) {
    const int b = item / runs, oh0 = (item % runs) * per, oh1 = std::min(rows, oh0 + per);
    k::Epilogue e = e0;
    if (nd.has_residual) e.res = a.value(nd.inputs[1], b);
    const void* x = a.value(nd.inputs[0], b);
    void* y = a.value(nd.id, b);
    if (nd.integer_path) {
      ks.qconv->run_rows(nd.qconv, g, static_cast<const uint8_t*>(x), e, y, oh0, oh1);
    } else {
      ks.fconv(nd.fconv, x, src.codes, src.scale, e, y, oh0, oh1);
    }
  });
}

}  // namespace

const OpDef kConv2dOp{Op::kConv, "conv2d", 1, 2, parse_conv_like, run_conv_like};
const OpDef kLinearOp{Op::kLinear, "linear", 1, 2, parse_conv_like, run_conv_like};

}  // namespace pactq::rt::detail
