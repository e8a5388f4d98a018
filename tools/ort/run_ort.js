#!/usr/bin/env node
// Runs an .onnx file in ONNX Runtime (CPU) on pixels in [0, 1], NCHW float32,
// the input `pactq run` takes, and writes the logits: pactq's consumer check
// for its ONNX export (tests/test_onnx_export.cpp, docs/onnx.md).
//
//   node run_ort.js MODEL.onnx --raw PIXELS.f32 --shape N,C,H,W --out LOGITS.f32
//   node run_ort.js MODEL.onnx --cifar test_batch.bin [--limit N]
//   node run_ort.js MODEL.onnx --idx t10k-images-idx3-ubyte.gz --labels t10k-labels-idx1-ubyte.gz
//
// Options: --batch B (default 100), --threads T (intra-op threads; 0 = ORT's
// default), --outputs a,b (more graph outputs, each written raw to
// --out-dir/<name>.bin, batches concatenated). Prints one JSON line: images,
// classes, top-1 when labels are known, the ORT version.
'use strict';
const fs = require('fs');
const path = require('path');
const zlib = require('zlib');

function fail(msg) {
  process.stderr.write(`run_ort.js: ${msg}\n`);
  process.exit(2);
}

function parseArgs(argv) {
  const a = {batch: 100, threads: 0, limit: 0, outputs: []};
  const valued = [
    'raw', 'shape', 'cifar', 'idx', 'labels', 'limit', 'batch', 'threads', 'out', 'outputs',
    'out-dir'
  ];
  for (let i = 0; i < argv.length; ++i) {
    const k = argv[i];
    if (k.startsWith('--')) {
      const name = k.slice(2);
      if (!valued.includes(name)) fail(`unknown option ${k}`);
      if (i + 1 >= argv.length) fail(`${k} needs a value`);
      a[name] = argv[++i];
    } else if (!a.model) {
      a.model = k;
    } else {
      fail(`unexpected argument ${k}`);
    }
  }
  if (!a.model)
    fail('usage: run_ort.js MODEL.onnx (--raw F --shape N,C,H,W | --cifar F | --idx F)');
  for (const k of ['batch', 'threads', 'limit']) {
    const v = Number(a[k]);
    if (!Number.isInteger(v) || v < 0 || (k === 'batch' && v === 0)) {
      fail(`--${k} ${a[k]}: expected a ${k === 'batch' ? 'positive' : 'non-negative'} integer`);
    }
    a[k] = v;
  }
  if (typeof a.outputs === 'string') a.outputs = a.outputs.split(',').filter((s) => s);
  return a;
}

function readFile(file, what) {
  let b;
  try {
    b = fs.readFileSync(file);
  } catch (e) {
    fail(`${what} ${file}: ${e.message}`);
  }
  return file.endsWith('.gz') ? zlib.gunzipSync(b) : b;
}

// { pixels: Float32Array [N*C*H*W], dims: [N, C, H, W], labels: Uint8Array | null }
function loadInput(a) {
  if (a.raw) {
    if (!a.shape) fail('--raw needs --shape N,C,H,W');
    const dims = a.shape.split(',').map(Number);
    if (dims.length !== 4 || dims.some((d) => !Number.isInteger(d) || d <= 0)) {
      fail(`--shape ${a.shape}: expected four positive integers N,C,H,W`);
    }
    const b = readFile(a.raw, '--raw');
    const count = dims.reduce((x, y) => x * y, 1);
    if (b.length !== 4 * count) {
      fail(`--raw ${a.raw}: ${b.length} bytes, expected ${4 * count} for float32 [${dims}]`);
    }
    const px = new Float32Array(count);
    for (let i = 0; i < count; ++i) px[i] = b.readFloatLE(4 * i);
    return {pixels: px, dims, labels: null};
  }
  if (a.cifar) {
    const b = readFile(a.cifar, '--cifar');
    const rec = 3073;
    if (b.length % rec !== 0) fail(`--cifar ${a.cifar}: size is not a multiple of ${rec} bytes`);
    let n = b.length / rec;
    if (a.limit) n = Math.min(n, a.limit);
    const px = new Float32Array(n * 3072);
    const labels = new Uint8Array(n);
    for (let i = 0; i < n; ++i) {
      labels[i] = b[i * rec];
      for (let j = 0; j < 3072; ++j) px[i * 3072 + j] = b[i * rec + 1 + j] / 255;
    }
    return {pixels: px, dims: [n, 3, 32, 32], labels};
  }
  if (a.idx) {
    const b = readFile(a.idx, '--idx');
    if (b.length < 16 || b.readUInt32BE(0) !== 0x803)
      fail(`--idx ${a.idx}: not an idx3 image file`);
    let n = b.readUInt32BE(4);
    const h = b.readUInt32BE(8), w = b.readUInt32BE(12);
    if (b.length !== 16 + n * h * w) fail(`--idx ${a.idx}: truncated`);
    if (a.limit) n = Math.min(n, a.limit);
    const px = new Float32Array(n * h * w);
    for (let i = 0; i < px.length; ++i) px[i] = b[16 + i] / 255;
    let labels = null;
    if (a.labels) {
      const l = readFile(a.labels, '--labels');
      if (l.length < 8 || l.readUInt32BE(0) !== 0x801) fail(`--labels ${a.labels}: not idx1`);
      labels = l.subarray(8, 8 + n);
    }
    return {pixels: px, dims: [n, 1, h, w], labels};
  }
  fail('give the input: --raw F --shape N,C,H,W, --cifar F or --idx F');
}

async function main() {
  const a = parseArgs(process.argv.slice(2));
  let ort;
  try {
    ort = require('onnxruntime-node');
  } catch (e) {
    fail(`onnxruntime-node is not installed beside this script (scripts/setup installs it): ${
        e.message}`);
  }
  const input = loadInput(a);
  // No spin-waiting in ORT's thread pool: on a loaded machine (CI, tests
  // running beside builds) spinning threads starve the ones doing the work.
  const opts = {
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
    interOpNumThreads: 1,
    extra: {session: {intra_op: {allow_spinning: '0'}}},
  };
  if (a.threads) opts.intraOpNumThreads = a.threads;
  let session;
  try {
    session = await ort.InferenceSession.create(a.model, opts);
  } catch (e) {
    fail(`${a.model}: ONNX Runtime cannot load it: ${e.message}`);
  }
  const [n, c, h, w] = input.dims;
  const per = c * h * w;
  const fetch = [session.outputNames[0], ...a.outputs];
  const outDir = a['out-dir'] || '.';
  const sinks = a.outputs.map((name) => fs.openSync(path.join(outDir, `${name}.bin`), 'w'));
  const logitsFd = a.out ? fs.openSync(a.out, 'w') : null;
  let classes = 0, correct = 0;
  for (let s = 0; s < n; s += a.batch) {
    const b = Math.min(a.batch, n - s);
    const x =
        new ort.Tensor('float32', input.pixels.subarray(s * per, (s + b) * per), [b, c, h, w]);
    const r = await session.run({[session.inputNames[0]]: x}, fetch);
    const logits = r[fetch[0]];
    classes = logits.dims[1];
    if (logitsFd !== null)
      fs.writeSync(
          logitsFd,
          Buffer.from(logits.data.buffer, logits.data.byteOffset, logits.data.byteLength));
    a.outputs.forEach((name, k) => {
      const d = r[name].data;
      fs.writeSync(sinks[k], Buffer.from(d.buffer, d.byteOffset, d.byteLength));
    });
    if (input.labels) {
      for (let i = 0; i < b; ++i) {
        let best = 0;
        for (let k = 1; k < classes; ++k) {
          if (logits.data[i * classes + k] > logits.data[i * classes + best]) best = k;
        }
        if (best === input.labels[s + i]) ++correct;
      }
    }
  }
  if (logitsFd !== null) fs.closeSync(logitsFd);
  sinks.forEach((fd) => fs.closeSync(fd));
  const report = {
    model: a.model,
    images: n,
    classes,
    onnxruntime: require('onnxruntime-node/package.json').version,
  };
  if (input.labels) report.top1 = (100 * correct) / n;
  process.stdout.write(JSON.stringify(report) + '\n');
}

main().catch((e) => fail(e.stack || String(e)));
