// Web UI for tts-ops: POST /tts -> <audio> (or, streamed, PCM chunks played with the Web Audio API as they
// arrive), GET /ready -> status pill, GET /summary -> ops panel and whether an API key is needed. No framework,
// no build step, no requests anywhere but this origin. The server is the single source of truth for validation: the page shows
// its JSON {"error": ...} message instead of duplicating (and drifting from) its rules.
"use strict";

(function () {
  const POLL_MS = 5000;
  const $ = (id) => document.getElementById(id);
  const form = $("tts-form");
  const text = $("text");
  const counter = $("counter");
  const emotion = $("emotion");
  const speed = $("speed");
  const speedValue = $("speed-value");
  const button = $("synthesize");
  const buttonLabel = button.querySelector(".btn-label");
  const player = $("player");
  const download = $("download");
  const errorBox = $("error");
  const meta = $("meta");
  const status = $("status");
  const format = $("format");
  const streamBox = $("stream");
  const keyField = $("key-field");
  const apiKey = $("api-key");
  const downloadFormat = $("download-format");
  const opsSummary = $("ops-summary");
  const opsRows = $("ops-workers").querySelector("tbody");
  const KEY_STORAGE = "tts-ops.api-key";
  // The server's limit arrives with /ready (limits.max_text_chars); until then, the documented default.
  let maxChars = Number(text.dataset.maxChars) || 1000;

  let busy = false;
  let blobUrl = null;
  let audioCtx = null;
  let sources = []; // the scheduled Web Audio pieces of the current stream (stopped on a new request or error)
  let generation = 0; // bumped per request: a stale stream stops scheduling

  // -- text counter (code points, as the server counts them, not UTF-16 units) ------------------------------
  function charCount(s) {
    return Array.from(s).length;
  }

  function updateCounter() {
    const n = charCount(text.value);
    counter.textContent = n + " / " + maxChars;
    counter.classList.toggle("over", n > maxChars);
  }

  // -- speed slider ----------------------------------------------------------------------------------------
  function updateSpeed() {
    const v = Number(speed.value).toFixed(1);
    speedValue.textContent = v;
    speed.setAttribute("aria-valuetext", v + "×");
  }

  // -- errors ----------------------------------------------------------------------------------------------
  function showError(title, detail) {
    errorBox.replaceChildren();
    const strong = document.createElement("strong");
    strong.textContent = title;
    errorBox.append(strong);
    if (detail) {
      const p = document.createElement("span");
      p.className = "error-detail";
      p.textContent = detail;
      errorBox.append(p);
    }
    errorBox.hidden = false;
  }

  function clearError() {
    errorBox.hidden = true;
    errorBox.replaceChildren();
  }

  // An error replaces the previous result: no old audio, link or meta under a new error.
  function clearResult() {
    stopStream();
    player.pause();
    player.removeAttribute("src");
    player.load();
    download.hidden = true;
    download.removeAttribute("href");
    meta.textContent = "";
    if (blobUrl) URL.revokeObjectURL(blobUrl);
    blobUrl = null;
  }

  function fail(title, detail) {
    clearResult();
    showError(title, detail);
  }

  // -- API key (server.api_keys): shown when /summary says one is needed or a request got 401 ---------------
  function storedKey() {
    try { return sessionStorage.getItem(KEY_STORAGE) || ""; } catch (_) { return ""; }
  }

  function storeKey() {
    try {
      if (apiKey.value) sessionStorage.setItem(KEY_STORAGE, apiKey.value);
      else sessionStorage.removeItem(KEY_STORAGE);
    } catch (_) { /* storage disabled: the field still works for this page */ }
  }

  function showKeyField() {
    keyField.hidden = false;
  }

  function authHeaders() {
    const key = apiKey.value.trim();
    return key ? { Authorization: "Bearer " + key } : {};
  }

  // -- format and streaming ---------------------------------------------------------------------------------
  // Streaming plays PCM as it arrives, so it is offered with WAV (the download is the assembled WAV file).
  function updateStreamChoice() {
    const wav = format.value === "wav";
    streamBox.disabled = !wav;
    streamBox.closest(".field").classList.toggle("off", !wav);
  }

  function streaming() {
    return streamBox.checked && !streamBox.disabled;
  }

  // The server names the file (Content-Disposition: inline; filename="speech.ogg"): its extension is used.
  function extensionOf(resp, fallback) {
    const cd = resp.headers.get("Content-Disposition") || "";
    const m = /filename="?[^".]*\.([A-Za-z0-9]+)"?/.exec(cd);
    return m ? m[1].toLowerCase() : fallback;
  }

  const STATUS_TITLES = {
    400: "请求无效 Bad request",
    401: "需要 API key · API key required",
    413: "文本过长 Text too long",
    415: "格式不支持 Unsupported media type",
    502: "合成失败 Synthesis failed",
    503: "服务繁忙 Service unavailable",
    504: "合成超时 Synthesis timed out",
  };

  async function errorFromResponse(resp) {
    let message = "";
    try {
      const body = await resp.json();
      if (body && typeof body.error === "string") message = body.error;
    } catch (_) {
      // not JSON (a proxy's HTML page, say): fall back to the status line
    }
    if (!message) message = ("HTTP " + resp.status + " " + (resp.statusText || "")).trim();
    const title = (STATUS_TITLES[resp.status] || "请求失败 Request failed") + " (" + resp.status + ")";
    const retry = resp.headers.get("Retry-After");
    if (resp.status === 503 && retry) {
      message += " — 请 " + retry + " 秒后重试 · please retry in " + retry + " s.";
    }
    return { title, message };
  }

  // -- synthesis -------------------------------------------------------------------------------------------
  function setBusy(on) {
    busy = on;
    button.disabled = on;
    button.classList.toggle("busy", on);
    button.setAttribute("aria-busy", on ? "true" : "false");
    buttonLabel.textContent = on ? "合成中… Synthesizing" : "合成 Synthesize";
    form.setAttribute("aria-busy", on ? "true" : "false");
  }

  function fmtSeconds(v) {
    const n = Number(v);
    return Number.isFinite(n) ? n.toFixed(2) + " s" : null;
  }

  function showMeta(resp) {
    const parts = [];
    const duration = fmtSeconds(resp.headers.get("X-Audio-Duration"));
    const synth = fmtSeconds(resp.headers.get("X-Synthesis-Time"));
    const worker = resp.headers.get("X-Worker");
    const cache = resp.headers.get("X-Cache");
    if (duration) parts.push("时长 Duration " + duration);
    if (synth) parts.push("合成 Synthesis " + synth);
    if (worker) parts.push("Worker " + worker);
    if (cache) parts.push("缓存 Cache " + cache);
    meta.textContent = parts.join(" · ");
    return duration;
  }

  function setAudio(blob, requestId, ext, autoplay) {
    const url = URL.createObjectURL(blob);
    player.src = url;
    download.href = url;
    download.download = "tts-" + (requestId || Date.now()) + "." + ext;
    downloadFormat.textContent = ext.toUpperCase();
    download.hidden = false;
    if (blobUrl) URL.revokeObjectURL(blobUrl);
    blobUrl = url;
    if (!autoplay) return;
    const playing = player.play();
    if (playing) playing.catch(() => {}); // autoplay refused: the controls are right there
  }

  // -- streamed playback: s16le mono chunks -> AudioBufferSourceNodes scheduled back to back ------------------
  // window.ttsStream records the timings the tests (and a curious operator) read: when the first piece was
  // scheduled, how much audio had played when the last byte arrived.
  function stopStream() {
    generation += 1;
    for (const src of sources) {
      try { src.stop(); } catch (_) { /* not started yet */ }
    }
    sources = [];
  }

  function ensureAudioContext() {
    // Created (or resumed) inside the click/keydown handler: browsers allow audio after a user gesture.
    const Ctx = window.AudioContext || window.webkitAudioContext;
    if (!Ctx) return null;
    if (!audioCtx) audioCtx = new Ctx();
    if (audioCtx.state === "suspended") audioCtx.resume().catch(() => {});
    return audioCtx;
  }

  function pcmToFloat(bytes) {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const out = new Float32Array(bytes.byteLength >> 1);
    for (let i = 0; i < out.length; i++) out[i] = view.getInt16(2 * i, true) / 32768;
    return out;
  }

  function wavFile(parts, total, rate) {
    const header = new DataView(new ArrayBuffer(44));
    const ascii = (off, s) => { for (let i = 0; i < s.length; i++) header.setUint8(off + i, s.charCodeAt(i)); };
    ascii(0, "RIFF"); header.setUint32(4, 36 + total, true); ascii(8, "WAVE");
    ascii(12, "fmt "); header.setUint32(16, 16, true); header.setUint16(20, 1, true); header.setUint16(22, 1, true);
    header.setUint32(24, rate, true); header.setUint32(28, rate * 2, true); header.setUint16(32, 2, true);
    header.setUint16(34, 16, true); ascii(36, "data"); header.setUint32(40, total, true);
    return new Blob([header.buffer, ...parts], { type: "audio/wav" });
  }

  async function playStream(resp, ctx, t0) {
    const mine = generation;
    const rate = Number(resp.headers.get("X-Sample-Rate")) || 22050;
    const stats = { requestId: resp.headers.get("X-Request-ID"), requestedAt: t0, firstByteAt: null,
                    firstPlayAt: null, doneAt: null, playedAtDone: null, pieces: 0, bytes: 0, done: false };
    window.ttsStream = stats;
    const reader = resp.body.getReader();
    const parts = [];
    let carry = null; // an odd trailing byte waits for its partner
    let next = 0;
    let first = null;
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      if (mine !== generation) { reader.cancel().catch(() => {}); return null; }
      if (stats.firstByteAt === null) stats.firstByteAt = performance.now();
      let bytes = value;
      if (carry) {
        bytes = new Uint8Array(carry.length + value.length);
        bytes.set(carry);
        bytes.set(value, carry.length);
        carry = null;
      }
      const even = bytes.byteLength & ~1;
      if (even < bytes.byteLength) carry = bytes.slice(even);
      if (!even) continue;
      const piece = bytes.slice(0, even);
      parts.push(piece);
      stats.bytes += even;
      const samples = pcmToFloat(piece);
      const buffer = ctx.createBuffer(1, samples.length, rate);
      buffer.copyToChannel(samples, 0);
      const src = ctx.createBufferSource();
      src.buffer = buffer;
      src.connect(ctx.destination);
      next = Math.max(next, ctx.currentTime + 0.05); // after an underrun, resume a little ahead of the clock
      src.start(next);
      sources.push(src);
      if (first === null) {
        first = next;
        stats.firstPlayAt = performance.now();
      }
      next += buffer.duration;
      stats.pieces += 1;
    }
    stats.doneAt = performance.now();
    stats.playedAtDone = first === null ? 0 : Math.max(0, ctx.currentTime - first);
    stats.done = true;
    return { blob: wavFile(parts, stats.bytes, rate), duration: stats.bytes / 2 / rate };
  }

  async function synthesize() {
    if (busy) return;
    clearError();
    stopStream();
    setBusy(true);
    const stream = streaming();
    const ctx = stream ? ensureAudioContext() : null;
    const fmt = format.value;
    const body = {
      text: text.value,
      emotion: emotion.value,
      speed: Number(Number(speed.value).toFixed(1)),
      format: stream && ctx ? "pcm" : fmt,
    };
    if (stream && ctx) body.stream = true;
    const t0 = performance.now();
    try {
      let resp;
      try {
        resp = await fetch("/tts", {
          method: "POST",
          headers: { "Content-Type": "application/json", Accept: "audio/*, application/json", ...authHeaders() },
          body: JSON.stringify(body),
          cache: "no-store",
        });
      } catch (err) {
        fail("无法连接服务器 Cannot reach the server", String(err && err.message ? err.message : err));
        return;
      }
      if (!resp.ok) {
        const e = await errorFromResponse(resp);
        if (resp.status === 401) {
          showKeyField();
          apiKey.focus();
        }
        fail(e.title, e.message);
        return;
      }
      if (body.stream) {
        const played = await playStream(resp, ctx, t0);
        if (!played) return; // superseded by a newer request
        if (!played.duration) {
          fail("空响应 Empty response", "the server returned no audio");
          return;
        }
        showMeta(resp);
        if (!resp.headers.get("X-Audio-Duration")) {
          meta.textContent = "时长 Duration " + played.duration.toFixed(2) + " s · " + meta.textContent;
        }
        setAudio(played.blob, resp.headers.get("X-Request-ID"), "wav", false);
        return;
      }
      const blob = await resp.blob();
      if (!blob.size) {
        fail("空响应 Empty response", "the server returned no audio");
        return;
      }
      showMeta(resp);
      setAudio(blob.type ? blob : new Blob([blob], { type: "audio/wav" }), resp.headers.get("X-Request-ID"),
               extensionOf(resp, fmt), true);
    } catch (err) {
      fail("请求失败 Request failed", String(err && err.message ? err.message : err));
    } finally {
      setBusy(false);
      pollSoon();
    }
  }

  // -- readiness pill --------------------------------------------------------------------------------------
  let pollTimer = null;
  let polling = false;

  function setStatus(kind, label, title) {
    status.className = "pill pill-" + kind;
    status.textContent = label;
    if (title) status.title = title;
  }

  // -- ops panel (GET /summary: public, no secrets) --------------------------------------------------------
  function fmtRss(mb) {
    return typeof mb === "number" ? mb.toFixed(0) + " MB" : "–";
  }

  function renderSummary(data) {
    if (data.api_key_required) showKeyField();
    const rows = (data.workers || []).map((w) => {
      const tr = document.createElement("tr");
      tr.dataset.worker = w.id;
      const cells = [w.id, w.state, String(w.restarts), fmtRss(w.rss_mb)];
      for (const [i, value] of cells.entries()) {
        const td = document.createElement("td");
        td.textContent = value;
        if (i === 1) td.className = "state-" + w.state;
        tr.append(td);
      }
      return tr;
    });
    opsRows.replaceChildren(...rows);
    const parts = ["队列 queue " + data.queue_depth, "处理中 in flight " + data.in_flight];
    if (data.cache) {
      const lookups = data.cache.hits + data.cache.misses;
      parts.push("缓存命中 cache hits " + (lookups ? (100 * data.cache.hit_ratio).toFixed(0) + " %" : "–")
                 + " (" + data.cache.hits + "/" + lookups + ")");
    }
    opsSummary.textContent = parts.join(" · ");
  }

  async function refreshSummary() {
    try {
      const resp = await fetch("/summary", { cache: "no-store", headers: { Accept: "application/json" } });
      if (resp.ok) renderSummary(await resp.json());
    } catch (_) {
      // the pill already says offline
    }
  }

  async function pollReady() {
    if (polling) return;
    polling = true;
    clearTimeout(pollTimer);
    refreshSummary();
    try {
      const resp = await fetch("/ready", { cache: "no-store", headers: { Accept: "application/json" } });
      let data = null;
      try { data = await resp.json(); } catch (_) { /* non-JSON */ }
      const w = data && data.workers;
      const limit = data && data.limits && Number(data.limits.max_text_chars);
      if (limit > 0 && limit !== maxChars) {
        maxChars = limit;
        updateCounter();
      }
      if (w && typeof w.ready === "number") {
        const label = w.ready + "/" + w.total + " workers ready";
        const queue = data.queue_depth > 0 ? " · queue " + data.queue_depth : "";
        if (data.ready) setStatus("ok", "就绪 " + label + queue, "GET /ready → " + resp.status);
        else if (data.accepting === false) setStatus("bad", "停止中 draining · " + label, "GET /ready → " + resp.status);
        else setStatus("wait", "未就绪 " + label, "GET /ready → " + resp.status);
      } else {
        setStatus("bad", "异常 HTTP " + resp.status, "GET /ready → " + resp.status);
      }
    } catch (_) {
      setStatus("bad", "离线 offline", "GET /ready failed");
    } finally {
      polling = false;
      pollTimer = setTimeout(pollReady, POLL_MS);
    }
  }

  function pollSoon() {
    clearTimeout(pollTimer);
    pollTimer = setTimeout(pollReady, 250);
  }

  // -- wiring ----------------------------------------------------------------------------------------------
  text.addEventListener("input", updateCounter);
  apiKey.addEventListener("input", storeKey);
  format.addEventListener("change", updateStreamChoice);
  speed.addEventListener("input", updateSpeed);
  speed.addEventListener("change", updateSpeed);
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    synthesize();
  });
  document.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey) && !ev.isComposing && form.contains(ev.target)) {
      ev.preventDefault();
      synthesize();
    }
  });
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) pollSoon();
  });

  apiKey.value = storedKey();
  if (apiKey.value) showKeyField();
  updateCounter();
  updateSpeed();
  updateStreamChoice();
  pollReady();
})();
