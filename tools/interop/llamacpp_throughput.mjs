// llama.cpp's side of bench/infer_throughput: loads a GGUF with node-llama-cpp (CPU), then
// times prompt processing (the whole prompt in one batch) and single-stream greedy decoding
// (one token per evaluation), best of REPS after one warm-up, with THREADS threads.
//   node llamacpp_throughput.mjs MODEL.gguf THREADS PROMPT GEN REPS
// Prints {"llamacpp_prefill_tps": ..., "llamacpp_decode_tps": ..., "llamacpp_version": ...}.
const [gguf, threadsArg, promptArg, genArg, repsArg] = process.argv.slice(2);
if (!repsArg) {
  console.error("usage: node llamacpp_throughput.mjs MODEL.gguf THREADS PROMPT GEN REPS");
  process.exit(2);
}
const [threads, P, G, reps] = [threadsArg, promptArg, genArg, repsArg].map(Number);
const {getLlama} = await import("node-llama-cpp");

const llama = await getLlama({gpu: false, build: "never", logLevel: "error", maxThreads: threads});
const model = await llama.loadModel({modelPath: gguf, gpuLayers: 0});
const ctx = await model.createContext({contextSize: P + G + 16, batchSize: P, threads});
const seq = ctx.getSequence();
// the same prompt as distil's side: byte tokens, (i * 37 + 11) % 256
const prompt = Array.from({length: P}, (_, i) => (i * 37 + 11) % 256);

let bestP = Infinity, bestD = Infinity;
for (let r = 0; r <= reps; r++) { // repetition 0 warms up
  await seq.clearHistory();
  const t0 = performance.now();
  await seq.evaluateWithoutGeneratingNewTokens(prompt.slice(0, P - 1));
  const t1 = performance.now();
  // the last prompt token starts generation; G evaluations give G new tokens
  let n = 0;
  for await (const t of seq.evaluate([prompt[P - 1]], {temperature: 0})) {
    void t;
    if (++n >= G) break;
  }
  const t2 = performance.now();
  if (r > 0) {
    bestP = Math.min(bestP, (t1 - t0) / 1000 / (P - 1) * P);
    bestD = Math.min(bestD, (t2 - t1) / 1000);
  }
}
console.log(JSON.stringify({llamacpp_prefill_tps: +(P / bestP).toFixed(1), llamacpp_decode_tps: +(G / bestD).toFixed(1),
  llamacpp_version: llama.llamaCppRelease?.release ?? null}));
await ctx.dispose();
await model.dispose();
await llama.dispose();
