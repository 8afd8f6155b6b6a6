// Web UI for tts-ops: POST /tts -> <audio>, GET /ready -> status pill. No framework, no build step, no
// requests anywhere but this origin. The server is the single source of truth for validation: the page shows
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
  // The server's limit arrives with /ready (limits.max_text_chars); until then, the documented default.
  let maxChars = Number(text.dataset.maxChars) || 1000;

  let busy = false;
  let blobUrl = null;

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

  const STATUS_TITLES = {
    400: "请求无效 Bad request",
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

  function setAudio(blob, requestId) {
    const url = URL.createObjectURL(blob);
    player.src = url;
    download.href = url;
    download.download = "tts-" + (requestId || Date.now()) + ".wav";
    download.hidden = false;
    if (blobUrl) URL.revokeObjectURL(blobUrl);
    blobUrl = url;
    const playing = player.play();
    if (playing) playing.catch(() => {}); // autoplay refused: the controls are right there
  }

  async function synthesize() {
    if (busy) return;
    clearError();
    setBusy(true);
    const body = {
      text: text.value,
      emotion: emotion.value,
      speed: Number(Number(speed.value).toFixed(1)),
      format: "wav",
    };
    try {
      let resp;
      try {
        resp = await fetch("/tts", {
          method: "POST",
          headers: { "Content-Type": "application/json", Accept: "audio/wav, application/json" },
          body: JSON.stringify(body),
          cache: "no-store",
        });
      } catch (err) {
        showError("无法连接服务器 Cannot reach the server", String(err && err.message ? err.message : err));
        return;
      }
      if (!resp.ok) {
        const e = await errorFromResponse(resp);
        showError(e.title, e.message);
        return;
      }
      const blob = await resp.blob();
      if (!blob.size) {
        showError("空响应 Empty response", "the server returned no audio");
        return;
      }
      showMeta(resp);
      setAudio(blob.type ? blob : new Blob([blob], { type: "audio/wav" }), resp.headers.get("X-Request-ID"));
    } catch (err) {
      showError("请求失败 Request failed", String(err && err.message ? err.message : err));
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

  async function pollReady() {
    if (polling) return;
    polling = true;
    clearTimeout(pollTimer);
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

  updateCounter();
  updateSpeed();
  pollReady();
})();
