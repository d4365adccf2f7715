// Checks distil against llama.cpp (node-llama-cpp's prebuilt CPU binaries) on one model:
// the tokenization of varied strings and the greedy continuation of prompts, token for token.
//   node llamacpp_check.mjs DISTIL_BIN MODEL_DIR MODEL.gguf WORK_DIR [N_TOKENS [N_STRINGS]]
// N_TOKENS 0 checks tokenization only (a model that is there for its vocabulary). Exit 0 when
// everything matches, 1 on a mismatch (each is printed), 77 when node-llama-cpp is not
// installed (run npm ci in tools/interop) or has no prebuilt binary for this machine.
import {distilEncodeAll, distilGreedy} from "./distil.mjs";
import {tokenizerStrings, variedStrings} from "./strings.mjs";

const [distil, modelDir, gguf, work, nArg, sArg] = process.argv.slice(2);
if (!work) {
  console.error("usage: node llamacpp_check.mjs DISTIL_BIN MODEL_DIR MODEL.gguf WORK_DIR [N_TOKENS [N_STRINGS]]");
  process.exit(2);
}
const N = parseInt(nArg ?? "40"), S = parseInt(sArg ?? "300");

let getLlama;
try {
  ({getLlama} = await import("node-llama-cpp"));
} catch (e) {
  console.log("SKIP: node-llama-cpp is not installed (npm ci in tools/interop): " + e.message);
  process.exit(77);
}

const same = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);
let failures = 0;
function fail(what, want, got) {
  if (failures++ < 10) console.log(`MISMATCH ${what}\n  distil:    ${want.join(" ")}\n  llama.cpp: ${got.join(" ")}`);
}

let llama;
try {
  llama = await getLlama({gpu: false, build: "never", logLevel: "error"});
} catch (e) { // no prebuilt binary runs here (we never build llama.cpp at test time)
  console.log("SKIP: node-llama-cpp has no prebuilt llama.cpp for this machine: " + e.message);
  process.exit(77);
}
const model = await llama.loadModel({modelPath: gguf});

// tokenization: fixed cases for each kind named in the issue, then generated mixtures
const fixed = ["Hello world", "  leading and trailing spaces  ", "café naïve Ångström", "日本語と中文와 한국어",
  "emoji 😀👍🏽👨‍👩‍👧🇫🇷", "tabs\tand\nnewlines\n\n\nrun", "     \n\t   ", "digits 0 12 345 6789 3.14159 1,000,000",
  "don't I'm we've THEY'RE", "x", ""];
const strings = fixed.concat(variedStrings(S / 2, 7), tokenizerStrings(S / 2, 8));
const want = distilEncodeAll(distil, `${modelDir}/tokenizer.json`, strings, `${work}/strings.txt`);
let tokOk = 0;
strings.forEach((s, i) => {
  const got = Array.from(model.tokenize(s, false));
  if (same(want[i], got)) tokOk++;
  else fail(`tokenize ${JSON.stringify(s)}`, want[i], got);
});
console.log(`tokenization: ${tokOk}/${strings.length} strings identical`);

// greedy continuations: llama.cpp keeps going after an end token; distil stops there
if (N > 0) {
  const eos = model.tokens.eos;
  const prompts = ["the cat", "a fox jumped", "my friend walked past the", "the bird", "the dog ran to the café."];
  const ctx = await model.createContext({contextSize: 256, threads: 1});
  let genOk = 0, compared = 0;
  for (const p of prompts) {
    const seq = ctx.getSequence();
    const got = [];
    for await (const t of seq.evaluate(Array.from(model.tokenize(p, false)), {temperature: 0})) {
      got.push(t);
      if (got.length >= N || t === eos) break;
    }
    seq.dispose();
    const ours = distilGreedy(distil, modelDir, p, N);
    const theirs = got.indexOf(eos) >= 0 ? got.slice(0, got.indexOf(eos)) : got;
    if (!same(ours, theirs)) fail(`greedy continuation of ${JSON.stringify(p)}`, ours, theirs);
    else genOk++;
    compared += ours.length;
  }
  console.log(`greedy: ${genOk}/${prompts.length} prompts identical (${compared} tokens, up to ${N} each)`);
  await ctx.dispose();
}
await model.dispose();
await llama.dispose();
process.exit(failures ? 1 : 0);
