#!/usr/bin/env node
// Checks an OpenAI-compatible server with the official `openai` npm client (v6): models, chat, completions, streaming, usage, errors.
//
// Usage: node tools/openai-client-check/check.mjs --base-url http://127.0.0.1:8080/v1 [--api-key KEY] [--model NAME]
//          [--install-dir DIR]
// The client is installed on first use with `npm install --no-save openai@6` into DIR (default: target/node/openai-client-check
// under the project root), never into the source tree. Exit codes: 0 all checks passed, 1 a check failed (the message says
// which and what differed), 2 bad arguments, 3 the client could not be installed (no network?).

import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "..", "..");

function usage(message) {
  console.error(`openai-client-check: ${message}`);
  console.error("usage: node tools/openai-client-check/check.mjs --base-url http://127.0.0.1:8080/v1 [--api-key KEY] [--model NAME] [--install-dir DIR]");
  process.exit(2);
}

function parseArgs(argv) {
  const out = { baseUrl: process.env.OPENAI_BASE_URL, apiKey: process.env.OPENAI_API_KEY, model: undefined,
                installDir: path.join(root, "target", "node", "openai-client-check") };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) usage(`${a} needs a value`);
      return argv[++i];
    };
    if (a === "--base-url") out.baseUrl = value();
    else if (a === "--api-key") out.apiKey = value();
    else if (a === "--model") out.model = value();
    else if (a === "--install-dir") out.installDir = path.resolve(value());
    else if (a === "-h" || a === "--help") {
      console.log("Checks an OpenAI-compatible server with the official openai npm client.\n"
        + "Example: node tools/openai-client-check/check.mjs --base-url http://127.0.0.1:8080/v1 --api-key secret");
      process.exit(0);
    } else usage(`unknown argument ${a}`);
  }
  if (!out.baseUrl) usage("--base-url is required (or set OPENAI_BASE_URL)");
  if (!/^https?:\/\//.test(out.baseUrl)) usage(`--base-url must start with http:// or https://, got ${out.baseUrl}`);
  return out;
}

/** Loads `openai` from the install folder, installing version 6 there first when it is missing. */
async function loadClient(dir) {
  const pkg = path.join(dir, "node_modules", "openai", "package.json");
  if (!existsSync(pkg)) {
    mkdirSync(dir, { recursive: true });
    console.log(`installing openai@6 into ${dir}`);
    try {
      execFileSync("npm", ["install", "--no-save", "--no-audit", "--no-fund", "--prefix", dir, "openai@6"],
                   { stdio: ["ignore", "inherit", "inherit"], timeout: 180_000 });
    } catch (e) {
      console.error(`openai-client-check: could not install openai@6 with npm (no network?): ${e.message}`);
      process.exit(3);
    }
  }
  const require = createRequire(pkg);
  const version = require(pkg).version;
  if (!version.startsWith("6.")) {
    console.error(`openai-client-check: ${dir} holds openai ${version}, not version 6; delete that folder to reinstall`);
    process.exit(3);
  }
  const mjs = path.join(dir, "node_modules", "openai", "index.mjs");
  const mod = await import(pathToFileURL(existsSync(mjs) ? mjs : require.resolve("openai")).href);
  return { OpenAI: mod.default.OpenAI ?? mod.default, mod, version };
}

class Mismatch extends Error {}

function expect(cond, what) {
  if (!cond) throw new Mismatch(what);
}

function same(actual, wanted, what) {
  const a = JSON.stringify(actual), w = JSON.stringify(wanted);
  if (a !== w) throw new Mismatch(`${what}: expected ${w}, got ${a}`);
}

function checkUsage(u, what, maxCompletion) {
  expect(u && typeof u === "object", `${what}: no usage`);
  expect(Number.isInteger(u.prompt_tokens) && u.prompt_tokens > 0, `${what}: prompt_tokens ${u.prompt_tokens} should be a positive integer`);
  expect(Number.isInteger(u.completion_tokens) && u.completion_tokens > 0, `${what}: completion_tokens ${u.completion_tokens} should be a positive integer`);
  expect(u.completion_tokens <= maxCompletion, `${what}: completion_tokens ${u.completion_tokens} is more than max_tokens ${maxCompletion}`);
  same(u.total_tokens, u.prompt_tokens + u.completion_tokens, `${what}: total_tokens = prompt_tokens + completion_tokens`);
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const { OpenAI, mod, version } = await loadClient(args.installDir);
  const client = new OpenAI({ baseURL: args.baseUrl, apiKey: args.apiKey || "no-key", maxRetries: 0, timeout: 120_000 });
  const results = [];
  const check = async (name, fn) => {
    try {
      const detail = await fn();
      results.push([name, true]);
      console.log(`ok    ${name}${detail ? ": " + detail : ""}`);
    } catch (e) {
      results.push([name, false]);
      const why = e instanceof Mismatch ? e.message : `${e.constructor?.name ?? "error"}: ${e.message}`;
      console.log(`FAIL  ${name}: ${why}`);
    }
  };
  console.log(`openai ${version} against ${args.baseUrl}`);

  let model = args.model;
  await check("models.list", async () => {
    const ids = [];
    for await (const m of client.models.list()) {
      expect(typeof m.id === "string" && m.id.length > 0, `a model without an id: ${JSON.stringify(m)}`);
      same(m.object, "model", `model ${m.id} object`);
      ids.push(m.id);
    }
    expect(ids.length > 0, "no models listed");
    if (model) expect(ids.includes(model), `--model ${model} is not among the listed models ${ids}`);
    else model = ids[0];
    return ids.join(", ");
  });
  if (!results[0][1] && !model) {
    try { await client.models.list(); } catch (e) {
      if (e instanceof mod.APIConnectionError) {
        console.log(`openai-client-check: cannot reach ${args.baseUrl}: ${e.cause?.message ?? e.message}; is the server running?`);
        process.exit(1);
      }
    }
  }
  model = model || "default";

  const messages = [{ role: "system", content: "You tell short stories." }, { role: "user", content: "Once upon a time" }];
  const settings = { model, temperature: 0, seed: 7, max_tokens: 24 };
  let chat;
  await check("chat.completions", async () => {
    chat = await client.chat.completions.create({ ...settings, messages });
    same(chat.object, "chat.completion", "object");
    expect(typeof chat.id === "string" && chat.id.length > 0, "no id");
    same(chat.choices.length, 1, "choices");
    const c = chat.choices[0];
    same(c.index, 0, "index");
    same(c.message.role, "assistant", "role");
    expect(typeof c.message.content === "string" && c.message.content.length > 0, `empty content: ${JSON.stringify(c.message)}`);
    expect(c.finish_reason === "stop" || c.finish_reason === "length", `finish_reason ${c.finish_reason}`);
    checkUsage(chat.usage, "usage", settings.max_tokens);
    if (c.finish_reason === "length") same(chat.usage.completion_tokens, settings.max_tokens, "completion_tokens at finish_reason length");
    return JSON.stringify(c.message.content.slice(0, 40)) + ` (${chat.usage.prompt_tokens}+${chat.usage.completion_tokens} tokens, ${c.finish_reason})`;
  });

  await check("chat.completions stream", async () => {
    expect(chat, "needs the non-streamed answer");
    const stream = await client.chat.completions.create({ ...settings, messages, stream: true, stream_options: { include_usage: true } });
    let text = "", role = null, finish = null, finishes = 0, usage = null, chunks = 0, afterUsage = 0;
    for await (const chunk of stream) {
      chunks++;
      same(chunk.object, "chat.completion.chunk", "chunk object");
      if (usage) afterUsage++;
      if (chunk.usage) {
        same(chunk.choices.length, 0, "the usage chunk's choices");
        usage = chunk.usage;
        continue;
      }
      for (const c of chunk.choices) {
        if (c.delta.role) role = role ?? c.delta.role;
        if (c.delta.content) text += c.delta.content;
        if (c.finish_reason) { finish = c.finish_reason; finishes++; }
      }
    }
    same(role, "assistant", "the first chunk's role");
    same(finishes, 1, "chunks with a finish_reason");
    same(finish, chat.choices[0].finish_reason, "finish_reason, streamed and not");
    same(text, chat.choices[0].message.content, "streamed text and non-streamed text with the same seed");
    same(afterUsage, 0, "chunks after the usage chunk");
    const counts = (u) => u && { prompt_tokens: u.prompt_tokens, completion_tokens: u.completion_tokens, total_tokens: u.total_tokens };
    same(counts(usage), counts(chat.usage), "streamed usage (include_usage) and non-streamed usage");
    return `${chunks} chunks`;
  });

  await check("chat.completions max_tokens", async () => {
    const r = await client.chat.completions.create({ ...settings, messages, max_tokens: 3 });
    same(r.choices[0].finish_reason, "length", "finish_reason with max_tokens 3");
    same(r.usage.completion_tokens, 3, "completion_tokens with max_tokens 3");
  });

  await check("chat.completions stop", async () => {
    const full = chat?.choices[0].message.content ?? "";
    expect(full.length >= 6, `the answer is too short to cut with a stop string: ${JSON.stringify(full)}`);
    const stop = full.slice(3, 5);
    const r = await client.chat.completions.create({ ...settings, messages, stop: [stop] });
    same(r.choices[0].message.content, full.slice(0, full.indexOf(stop)), `content before the stop string ${JSON.stringify(stop)}`);
    same(r.choices[0].finish_reason, "stop", "finish_reason at a stop string");
  });

  let completion;
  const cSettings = { model, prompt: "Once upon a time", temperature: 0, seed: 3, max_tokens: 16 };
  await check("completions", async () => {
    completion = await client.completions.create(cSettings);
    same(completion.object, "text_completion", "object");
    same(completion.choices.length, 1, "choices");
    const c = completion.choices[0];
    expect(typeof c.text === "string" && c.text.length > 0, "empty text");
    expect(c.finish_reason === "stop" || c.finish_reason === "length", `finish_reason ${c.finish_reason}`);
    checkUsage(completion.usage, "usage", cSettings.max_tokens);
    return JSON.stringify(c.text.slice(0, 40));
  });

  await check("completions stream", async () => {
    expect(completion, "needs the non-streamed completion");
    const stream = await client.completions.create({ ...cSettings, stream: true, stream_options: { include_usage: true } });
    let text = "", finish = null, usage = null;
    for await (const chunk of stream) {
      if (chunk.usage) usage = chunk.usage;
      for (const c of chunk.choices ?? []) {
        text += c.text ?? "";
        if (c.finish_reason) finish = c.finish_reason;
      }
    }
    same(text, completion.choices[0].text, "streamed and non-streamed completion text");
    same(finish, completion.choices[0].finish_reason, "finish_reason");
    same(usage?.completion_tokens, completion.usage.completion_tokens, "streamed completion_tokens");
    same(usage?.prompt_tokens, completion.usage.prompt_tokens, "streamed prompt_tokens");
  });

  await check("errors", async () => {
    let err = null;
    try {
      await client.chat.completions.create({ model, messages: [], max_tokens: 4 });
    } catch (e) { err = e; }
    expect(err instanceof mod.BadRequestError, `an empty messages list should be a BadRequestError (400), got ${err ? err.constructor.name + " " + err.status : "an answer"}`);
    expect(typeof err.error?.message === "string" && err.error.message.length > 0, `the error body has no error.message: ${JSON.stringify(err.error)}`);
    if (!args.apiKey) return "no --api-key: authentication not checked";
    let auth = null;
    try {
      const wrong = new OpenAI({ baseURL: args.baseUrl, apiKey: args.apiKey + "-wrong", maxRetries: 0 });
      await wrong.chat.completions.create({ model, messages, max_tokens: 2 });
    } catch (e) { auth = e; }
    expect(auth instanceof mod.AuthenticationError, `a wrong key should be an AuthenticationError (401), got ${auth ? auth.constructor.name + " " + auth.status : "an answer"}`);
    return `400: ${JSON.stringify(err.error.message)}; 401: ${JSON.stringify(auth.error?.message ?? auth.message)}`;
  });

  const failed = results.filter(([, ok]) => !ok).map(([n]) => n);
  if (failed.length) {
    console.log(`openai-client-check: ${failed.length} of ${results.length} checks failed: ${failed.join(", ")}`);
    process.exit(1);
  }
  console.log(`openai-client-check: all ${results.length} checks passed`);
}

main().catch((e) => {
  console.error(`openai-client-check: ${e.stack ?? e}`);
  process.exit(1);
});
