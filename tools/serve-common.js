// Shared pieces of tools/serve-load and tools/serve-soak: options, one streaming OpenAI request, percentiles, error shapes.
'use strict';

/**
 * Parses argv against a spec {name: {type: 'string'|'number'|'bool'|'list', def, multi}}.
 * Unknown options and missing values throw an Error whose message says what to do.
 */
function parseArgs(argv, spec) {
  const out = {};
  for (const [k, v] of Object.entries(spec)) out[k] = v.multi ? [] : v.def;
  for (let i = 0; i < argv.length; i++) {
    let a = argv[i];
    if (a === '-h' || a === '--help') { out.help = true; continue; }
    if (!a.startsWith('--')) throw new Error(`unexpected argument '${a}' (options start with --; see --help)`);
    let val = null;
    const eq = a.indexOf('=');
    if (eq > 0) { val = a.slice(eq + 1); a = a.slice(0, eq); }
    const name = a.slice(2);
    const s = spec[name];
    if (!s) throw new Error(`unknown option '${a}' (see --help)`);
    if (s.type === 'bool') { out[name] = val === null ? true : val !== 'false'; continue; }
    if (val === null) {
      if (i + 1 >= argv.length) throw new Error(`option ${a} needs a value (see --help)`);
      val = argv[++i];
    }
    let parsed = val;
    if (s.type === 'number') {
      parsed = Number(val);
      if (!Number.isFinite(parsed)) throw new Error(`option ${a} needs a number, got '${val}'`);
    } else if (s.type === 'list') {
      parsed = val.split(',').map(x => Number(x.trim()));
      if (parsed.some(x => !Number.isInteger(x) || x < 1)) {
        throw new Error(`option ${a} needs positive integers separated by commas, got '${val}'`);
      }
    }
    if (s.multi) out[name].push(parsed); else out[name] = parsed;
  }
  return out;
}

/** The base URL with any trailing slash and /v1 removed: http://127.0.0.1:8080. */
function baseUrl(url) {
  let u = url.replace(/\/+$/, '');
  if (u.endsWith('/v1')) u = u.slice(0, -3);
  if (!/^https?:\/\//.test(u)) throw new Error(`--url must start with http:// or https://, got '${url}'`);
  return u;
}

/** Nearest-rank percentile of an array of numbers (NaN when empty). */
function percentile(values, p) {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * s.length);
  return s[Math.min(s.length - 1, Math.max(0, rank - 1))];
}

/** The median (the mean of the two middle values for an even count; NaN when empty). */
function median(values) {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Formats a number of milliseconds or a rate with a fixed width; '-' for NaN. */
function fmt(x, digits = 1) { return Number.isFinite(x) ? x.toFixed(digits) : '-'; }

/** The request body for one chat or completion request. */
function requestBody(o) {
  const body = { model: o.model || 'default', max_tokens: o.maxTokens, stream: true,
    stream_options: { include_usage: true } };
  if (o.temperature !== undefined && o.temperature !== null) body.temperature = o.temperature;
  if (o.seed !== undefined && o.seed !== null) body.seed = o.seed;
  if (o.mode === 'completion') {
    body.prompt = (o.system ? o.system + '\n\n' : '') + o.prompt;
  } else {
    body.messages = [];
    if (o.system) body.messages.push({ role: 'system', content: o.system });
    body.messages.push({ role: 'user', content: o.prompt });
  }
  return body;
}

function headers(apiKey) {
  const h = { 'content-type': 'application/json' };
  if (apiKey) h.authorization = 'Bearer ' + apiKey;
  return h;
}

/**
 * Sends one streaming request and reads its SSE stream. Returns
 * {ok, status, error, text, tokens, usageTokens, promptTokens, chunks, t0, tFirst, tLast, gaps, finish, aborted}.
 * Times are performance.now() milliseconds. o.abortAfterChunks > 0 aborts the connection after that many
 * content chunks (a client that goes away mid-stream), o.abortAfterMs > 0 after that many milliseconds;
 * such a request counts as ok (aborted: true) unless something else failed first.
 */
async function streamRequest(base, o) {
  const path = o.mode === 'completion' ? '/v1/completions' : '/v1/chat/completions';
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(new Error('timeout')), o.timeoutMs || 600000);
  const early = o.abortAfterMs ? setTimeout(() => { r.aborted = true; ctl.abort(new Error('client went away')); },
    o.abortAfterMs) : null;
  const r = { ok: false, status: 0, error: null, text: '', tokens: 0, usageTokens: null, promptTokens: null,
    chunks: 0, t0: performance.now(), tFirst: NaN, tLast: NaN, gaps: [], finish: null, aborted: false };
  try {
    const res = await fetch(base + path, { method: 'POST', headers: headers(o.apiKey),
      body: JSON.stringify(requestBody(o)), signal: ctl.signal });
    r.status = res.status;
    if (res.status !== 200) {
      const t = await res.text();
      r.error = `HTTP ${res.status}: ${t.slice(0, 200)}`;
      r.errorBody = t;
      r.retryAfter = res.headers.get('retry-after');
      return r;
    }
    const dec = new TextDecoder();
    let buf = '';
    let done = false;
    for await (const part of res.body) {
      buf += dec.decode(part, { stream: true });
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl).replace(/\r$/, '');
        buf = buf.slice(nl + 1);
        if (!line.startsWith('data:')) continue;
        const data = line.slice(5).trim();
        if (data === '[DONE]') { done = true; continue; }
        let ev;
        try { ev = JSON.parse(data); } catch (e) { throw new Error(`bad JSON in stream: ${data.slice(0, 100)}`); }
        if (ev.error) throw new Error(`error in stream: ${JSON.stringify(ev.error).slice(0, 200)}`);
        if (ev.usage && ev.usage.completion_tokens !== undefined) {
          r.usageTokens = ev.usage.completion_tokens;
          r.promptTokens = ev.usage.prompt_tokens;
        }
        const c = ev.choices && ev.choices[0];
        if (!c) continue;
        const piece = o.mode === 'completion' ? c.text : (c.delta && c.delta.content);
        if (c.finish_reason) r.finish = c.finish_reason;
        if (piece) {
          const now = performance.now();
          if (r.chunks === 0) r.tFirst = now; else r.gaps.push(now - r.tLast);
          r.tLast = now;
          r.chunks++;
          r.text += piece;
          if (o.abortAfterChunks && r.chunks >= o.abortAfterChunks) {
            r.aborted = true;
            ctl.abort(new Error('client went away'));
            r.ok = true;
            return r;
          }
        }
      }
    }
    if (!done) throw new Error('stream ended without data: [DONE]');
    r.tokens = r.usageTokens !== null ? r.usageTokens : r.chunks;
    r.ok = true;
  } catch (e) {
    if (r.aborted) r.ok = true;
    else r.error = (e && e.name === 'AbortError' || String(e).includes('timeout'))
      ? `no end within ${(o.timeoutMs || 600000) / 1000} s`
      : String(e && e.message || e) + (e && e.cause ? ` (${e.cause.code || e.cause.message || e.cause})` : '');
  } finally {
    clearTimeout(timer);
    if (early) clearTimeout(early);
  }
  return r;
}

/**
 * Checks an error body has OpenAI's shape {"error":{"message":string,"type":string,"code":...}}.
 * Returns null when it does, else a line saying what is wrong.
 */
function errorShapeProblem(text) {
  let j;
  try { j = JSON.parse(text); } catch (e) { return `body is not JSON: ${text.slice(0, 120)}`; }
  const e = j && j.error;
  if (!e || typeof e !== 'object') return `no "error" object: ${text.slice(0, 120)}`;
  if (typeof e.message !== 'string' || e.message.length === 0) return `error.message missing: ${text.slice(0, 120)}`;
  if (typeof e.type !== 'string') return `error.type missing: ${text.slice(0, 120)}`;
  if (!('code' in e)) return `error.code missing: ${text.slice(0, 120)}`;
  return null;
}

/** Built-in prompts of varied length and topic, deterministic for a seed. */
function builtinPrompts(count, seed) {
  const topics = ['the tides', 'a lighthouse keeper', 'bread baking', 'prime numbers', 'a red fox',
    'glaciers', 'the printing press', 'a chess endgame', 'honey bees', 'a night train', 'volcanoes',
    'paper airplanes', 'the moon landing', 'a lost umbrella', 'coral reefs', 'a jazz trio'];
  const asks = ['Write a short story about', 'Explain in simple words', 'List three facts about',
    'Describe the sound of', 'Write a haiku about', 'Give advice to a child about',
    'Summarize the history of', 'Invent a riddle about'];
  const tails = ['', ' Keep it brief.', ' Use plain language and no lists.',
    ' Imagine you are telling it to a friend on a long walk by the sea at dusk.'];
  let s = (seed >>> 0) || 1;
  const rnd = () => { s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0; return s; };
  const out = [];
  for (let i = 0; i < count; i++) {
    out.push(`${asks[rnd() % asks.length]} ${topics[rnd() % topics.length]}.${tails[rnd() % tails.length]} (#${i})`);
  }
  return out;
}

/** Resident memory in KiB of a local process (VmRSS in /proc/PID/status), or NaN. */
function rssKiB(pid) {
  try {
    const m = require('fs').readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmRSS:\s+(\d+)\s+kB/);
    return m ? Number(m[1]) : NaN;
  } catch (e) { return NaN; }
}

/** Parses Prometheus text into {name{labels}: value} (comments dropped). */
function parseMetrics(text) {
  const out = {};
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = line.match(/^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?)\s+(\S+)/);
    if (m) out[m[1]] = Number(m[2]);
  }
  return out;
}

module.exports = { parseArgs, baseUrl, percentile, median, fmt, requestBody, headers, streamRequest,
  errorShapeProblem, builtinPrompts, rssKiB, parseMetrics };
