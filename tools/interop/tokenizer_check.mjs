// distil's encoder against the JavaScript tiktoken implementation in gpt-tokenizer, for GPT-2
// (r50k_base) and cl100k_base: tokenizer.json files are made from the package's ranks
// (tiktoken_to_hf.mjs), then N generated strings (plus fixed edge cases) are encoded by both.
//   node tokenizer_check.mjs DISTIL_BIN WORK_DIR [N]
// The strings avoid U+FEFF: JavaScript's \s matches it, tiktoken's (Rust regex, Unicode
// White_Space) and distil's (PCRE2 with UCP) do not, so there gpt-tokenizer is the odd one out.
// Exit 0 when every string gets the same ids, 1 otherwise (each mismatch is printed), 77 when
// gpt-tokenizer is not installed (run npm ci in tools/interop).
import {writeFileSync} from "node:fs";
import {distilEncodeAll} from "./distil.mjs";
import {tokenizerStrings} from "./strings.mjs";

const [distil, work, nArg] = process.argv.slice(2);
if (!work) {
  console.error("usage: node tokenizer_check.mjs DISTIL_BIN WORK_DIR [N]");
  process.exit(2);
}
const N = parseInt(nArg || "1500");
let toHF;
try {
  await import("gpt-tokenizer/encoding/r50k_base");
  ({toHF} = await import("./tiktoken_to_hf.mjs"));
} catch (e) {
  console.log("SKIP: gpt-tokenizer is not installed (npm ci in tools/interop): " + e.message);
  process.exit(77);
}

const FIXED = ["", " ", "  ", "\n", " \n", "\n\n\n", "   x", "x   ", "a  b", "\t\t\tfoo", "hello world", "Hello, World!",
  "don't DON'T Don'T", "it's 's", "1", "12", "123", "1234", "12345678901234567890", "3.14159", "1,000,000",
  "café", "日本語", "👍🏽", "👨‍👩‍👧", "\u00a0\u00a0x", "x\u3000y", "\r\n\r\n", "  \n  \n", "a\u2028b",
  "def f(x):\n    return x  \n", "    \n\n    if (x) {\n\t\treturn;\n    }", "ſ'ſ", "'ſ", "K'K"];

let failures = 0;
for (const name of ["r50k_base", "cl100k_base"]) {
  const tokPath = `${work}/${name}.json`;
  writeFileSync(tokPath, JSON.stringify(toHF(name).json));
  const js = await import(`gpt-tokenizer/encoding/${name}`);
  const strings = FIXED.concat(tokenizerStrings(N, name === "r50k_base" ? 11 : 12));
  const got = distilEncodeAll(distil, tokPath, strings, `${work}/strings.txt`);
  let same = 0, tokens = 0, shown = 0;
  strings.forEach((s, i) => {
    const want = js.encode(s);
    tokens += want.length;
    if (want.length === got[i].length && want.every((x, k) => x === got[i][k])) return void same++;
    failures++;
    if (shown++ < 10)
      console.log(`MISMATCH ${name} ${JSON.stringify(s)}\n  gpt-tokenizer: ${want.join(" ")}\n  distil:        ${got[i].join(" ")}`);
  });
  console.log(`${name}: ${same}/${strings.length} strings identical (${tokens} tokens)`);
}
process.exit(failures ? 1 : 0);
