// Running distil from the interop checks.
import {execFileSync} from "node:child_process";
import {writeFileSync} from "node:fs";

export const EOT = "<|endoftext|>";

function ids(line) {
  const t = line.trim();
  return t === "" ? [] : t.split(/\s+/).map(Number);
}

// Encodes each string with `distil tokenizer encode` in one run: the strings (which must not
// hold the separator) are joined by a special token, <|endoftext|> or, for a SentencePiece-style
// vocabulary, </s>, which splits encoding into independent pieces exactly as encoding each
// string alone; the output is cut at that token's id.
export function distilEncodeAll(distil, tokPath, strings, scratchFile) {
  let sep, eot;
  for (sep of [EOT, "</s>"]) {
    writeFileSync(scratchFile, sep);
    eot = ids(execFileSync(distil, ["tokenizer", "encode", "--tokenizer", tokPath, scratchFile], {encoding: "utf8"}));
    if (eot.length === 1) break;
  }
  if (eot.length !== 1) throw new Error(`${tokPath} has neither ${EOT} nor </s>`);
  writeFileSync(scratchFile, strings.join(sep));
  const out = ids(execFileSync(distil, ["tokenizer", "encode", "--tokenizer", tokPath, scratchFile],
    {encoding: "utf8", maxBuffer: 1 << 28}));
  const per = [[]];
  for (const id of out) {
    if (id === eot[0]) per.push([]);
    else per[per.length - 1].push(id);
  }
  if (per.length !== strings.length) throw new Error(`distil gave ${per.length} pieces for ${strings.length} strings`);
  return per;
}

// The greedy continuation of prompt: n token ids (fewer when the model ends the text).
export function distilGreedy(distil, modelDir, prompt, n) {
  return ids(execFileSync(distil, ["generate", "--model", modelDir, "--prompt", prompt, "--max-tokens", String(n),
    "--temperature", "0", "--ids", "--threads", "1"], {encoding: "utf8", stdio: ["ignore", "pipe", "ignore"]}));
}
