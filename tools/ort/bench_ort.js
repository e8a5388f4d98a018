#!/usr/bin/env node
// Times ONNX Runtime (CPU) on an .onnx file: median milliseconds per run of a
// batch of random pixels, with a fixed intra-op thread count. `pactq bench
// onnx` calls it for the ONNX Runtime side of its rows.
//
//   node bench_ort.js MODEL.onnx --shape C,H,W --batch B --threads T [--reps R] [--warmup W]
//
// Prints one JSON line: {"batch", "threads", "median_ms", "images_per_s", "onnxruntime"}.
'use strict';

function fail(msg) {
  process.stderr.write(`bench_ort.js: ${msg}\n`);
  process.exit(2);
}

function parseArgs(argv) {
  const a = {batch: 1, threads: 1, reps: 50, warmup: 5};
  for (let i = 0; i < argv.length; ++i) {
    const k = argv[i];
    if (k.startsWith('--')) {
      const name = k.slice(2);
      if (!['shape', 'batch', 'threads', 'reps', 'warmup'].includes(name))
        fail(`unknown option ${k}`);
      if (i + 1 >= argv.length) fail(`${k} needs a value`);
      a[name] = argv[++i];
    } else if (!a.model) {
      a.model = k;
    } else {
      fail(`unexpected argument ${k}`);
    }
  }
  if (!a.model || !a.shape)
    fail('usage: bench_ort.js MODEL.onnx --shape C,H,W [--batch B] [--threads T]');
  for (const k of ['batch', 'threads', 'reps']) {
    const v = Number(a[k]);
    if (!Number.isInteger(v) || v <= 0) fail(`--${k} ${a[k]}: expected a positive integer`);
    a[k] = v;
  }
  a.warmup = Number(a.warmup);
  if (!Number.isInteger(a.warmup) || a.warmup < 0)
    fail(`--warmup: expected a non-negative integer`);
  a.shape = a.shape.split(',').map(Number);
  if (a.shape.length !== 3 || a.shape.some((d) => !Number.isInteger(d) || d <= 0)) {
    fail('--shape: expected three positive integers C,H,W');
  }
  return a;
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
  // One thread pool of exactly --threads, no inter-op parallelism: the
  // setting pactq's runtime gets in the same row.
  const session = await ort.InferenceSession.create(a.model, {
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
    intraOpNumThreads: a.threads,
    interOpNumThreads: 1,
  });
  const [c, h, w] = a.shape;
  const px = new Float32Array(a.batch * c * h * w);
  for (let i = 0; i < px.length; ++i) px[i] = Math.random();
  const feeds = {[session.inputNames[0]]: new ort.Tensor('float32', px, [a.batch, c, h, w])};
  for (let i = 0; i < a.warmup; ++i) await session.run(feeds);
  const t = [];
  for (let i = 0; i < a.reps; ++i) {
    const t0 = process.hrtime.bigint();
    await session.run(feeds);
    t.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  t.sort((x, y) => x - y);
  const ms = t[Math.floor(t.length / 2)];
  process.stdout.write(JSON.stringify({
    batch: a.batch,
    threads: a.threads,
    median_ms: ms,
    images_per_s: (1000 * a.batch) / ms,
    onnxruntime: require('onnxruntime-node/package.json').version,
  }) + '\n');
}

main().catch((e) => fail(e.stack || String(e)));
