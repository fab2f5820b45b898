// partisim particle viewer: plays the frames that partisim serve recorded from a real
// engine (GET /api/tasks/{id}/frames, POST /api/frames). It never simulates: every
// position, step and counter it shows comes from the server.
"use strict";

(() => {
  const BASE_FPS = 20;  // frames shown per second at speed 1×
  const SPEEDS = [0.25, 0.5, 1, 2, 4];
  // the dashboard's numbers (dashboard.js loads first): "3000", "10 000", "3000,5"
  const { spanish, fmtInt, plural } = window.partisimFormat;
  const numFmt = spanish({ maximumFractionDigits: 3 });

  let dialog = null;
  let ui = null;
  let data = null;       // the FramesView answer
  let coords = null;     // Uint16Array: frames × drawn × 2
  let frame = 0;
  let playing = false;
  let speed = 1;
  let lastTime = null;
  let carry = 0;
  let request = 0;       // the answer a newer request supersedes is dropped

  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (k === "text") node.textContent = v;
      else node.setAttribute(k, v);
    }
    node.append(...children);
    return node;
  }

  function build() {
    const close = el("button", { type: "button", class: "viewer-close", "aria-label": "Cerrar el visor", text: "×" });
    const title = el("h2", { id: "viewer-title", text: "Simulación" });
    const subtitle = el("p", { id: "viewer-subtitle", class: "muted" });
    const status = el("p", { id: "viewer-status", class: "viewer-status", role: "status", "aria-live": "polite" });
    const canvas = el("canvas", { id: "viewer-canvas", role: "img", "aria-label": "Partículas de la simulación" });
    const play = el("button", { type: "button", id: "viewer-play", text: "▶ Reproducir", disabled: "" });
    const speedSelect = el("select", { id: "viewer-speed", "aria-label": "Velocidad" },
      ...SPEEDS.map((s) => el("option", { value: String(s), text: `${String(s).replace(".", ",")}×` })));
    speedSelect.value = "1";
    const slider = el("input", { type: "range", id: "viewer-slider", min: "0", max: "0", value: "0", "aria-label": "Fotograma", disabled: "" });
    const stat = (id, label) => el("div", { class: "viewer-stat" }, el("span", { class: "c-label", text: label }), el("span", { class: "c-value", id, text: "—" }));
    const stats = el("div", { class: "viewer-stats" },
      stat("viewer-step", "Paso"), stat("viewer-pc", "Colisiones partícula"), stat("viewer-wc", "Colisiones con pared"));
    const note = el("p", { id: "viewer-note", class: "viewer-note muted" });
    const check = el("p", { id: "viewer-check", class: "viewer-check" });
    const controls = el("div", { class: "viewer-controls" }, play, el("label", { class: "viewer-speed" }, "Velocidad ", speedSelect), slider);
    dialog = el("dialog", { id: "viewer", class: "viewer", "aria-labelledby": "viewer-title" },
      el("div", { class: "viewer-head" }, el("div", {}, title, subtitle), close),
      status, el("div", { class: "viewer-stage" }, canvas), controls, stats, note, check);
    document.body.append(dialog);
    ui = { title, subtitle, status, canvas, play, speedSelect, slider, note, check };

    close.addEventListener("click", () => dialog.close());
    dialog.addEventListener("close", () => { playing = false; request += 1; });
    play.addEventListener("click", () => (playing ? pause() : start()));
    speedSelect.addEventListener("change", () => { speed = Number(speedSelect.value) || 1; });
    slider.addEventListener("input", () => { pause(); show(Number(slider.value)); });
    dialog.addEventListener("keydown", (ev) => {
      if (ev.key === " " && ev.target.tagName !== "SELECT" && ev.target.tagName !== "BUTTON" && data) {
        ev.preventDefault();
        if (playing) pause(); else start();
      }
    });
    window.addEventListener("resize", () => { if (dialog.open && data) { fit(); draw(); } });
  }

  function setStatus(kind, text) {
    ui.status.className = `viewer-status ${kind}`;
    ui.status.textContent = text;
    ui.status.hidden = !text;
  }

  function decode(b64) {
    const bin = atob(b64);
    const bytes = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    const out = new Uint16Array(bytes.length / 2);
    const view = new DataView(bytes.buffer);
    for (let i = 0; i < out.length; i++) out[i] = view.getUint16(2 * i, true);  // little-endian on the wire
    return out;
  }

  // the canvas keeps the box's aspect ratio, as wide as the dialog allows and no taller than the screen
  function fit() {
    const stage = ui.canvas.parentElement;
    const maxW = stage.clientWidth || 600;
    const maxH = Math.max(160, window.innerHeight * 0.55);
    const aspect = data.height / data.width;
    let w = maxW;
    let h = w * aspect;
    if (h > maxH) { h = maxH; w = h / aspect; }
    const ratio = window.devicePixelRatio || 1;
    ui.canvas.style.width = `${Math.round(w)}px`;
    ui.canvas.style.height = `${Math.round(h)}px`;
    ui.canvas.width = Math.max(1, Math.round(w * ratio));
    ui.canvas.height = Math.max(1, Math.round(h * ratio));
  }

  function draw() {
    const ctx = ui.canvas.getContext("2d");
    const cw = ui.canvas.width;
    const ch = ui.canvas.height;
    const scale = cw / data.width;  // same in y: the canvas has the box's aspect ratio
    ctx.fillStyle = "#f8fbfc";
    ctx.fillRect(0, 0, cw, ch);
    const r = Math.max(0.6, data.radius * scale);
    const q = data.quant;
    const base = frame * data.drawn * 2;
    ctx.fillStyle = "rgba(8, 145, 178, 0.85)";
    ctx.beginPath();
    for (let k = 0; k < data.drawn; k++) {
      const x = (coords[base + 2 * k] / q) * cw;
      const y = ch - (coords[base + 2 * k + 1] / q) * ch;  // y grows upwards, as in the model
      ctx.moveTo(x + r, y);
      ctx.arc(x, y, r, 0, 2 * Math.PI);
    }
    ctx.fill();
    ctx.strokeStyle = "#164e63";
    ctx.lineWidth = Math.max(1, 2 * (window.devicePixelRatio || 1));
    ctx.strokeRect(ctx.lineWidth / 2, ctx.lineWidth / 2, cw - ctx.lineWidth, ch - ctx.lineWidth);
  }

  function show(f) {
    frame = Math.max(0, Math.min(data.frames - 1, f));
    ui.slider.value = String(frame);
    ui.canvas.dataset.frame = String(frame);
    document.getElementById("viewer-step").textContent = `${fmtInt(data.step[frame])} de ${fmtInt(data.steps)}`;
    document.getElementById("viewer-pc").textContent = fmtInt(data.particle_collisions[frame]);
    document.getElementById("viewer-wc").textContent = fmtInt(data.wall_collisions[frame]);
    dialog.dataset.state = frame === data.frames - 1 ? "end" : playing ? "playing" : "paused";
    draw();
  }

  function tick(now) {
    if (!playing || !dialog.open) return;
    if (lastTime !== null) carry += ((now - lastTime) / 1000) * BASE_FPS * speed;
    lastTime = now;
    const advance = Math.floor(carry);
    if (advance > 0) {
      carry -= advance;
      show(frame + advance);
    }
    if (frame >= data.frames - 1) { pause(); return; }
    requestAnimationFrame(tick);
  }

  function start() {
    if (!data) return;
    if (frame >= data.frames - 1) show(0);
    playing = true;
    lastTime = null;
    carry = 0;
    ui.play.textContent = "❚❚ Pausa";
    dialog.dataset.state = "playing";
    requestAnimationFrame(tick);
  }

  function pause() {
    playing = false;
    if (!ui) return;
    ui.play.textContent = data && frame >= data.frames - 1 ? "↺ Repetir" : "▶ Reproducir";
    if (data) dialog.dataset.state = frame >= data.frames - 1 ? "end" : "paused";
  }

  async function open(url, init, title) {
    if (!dialog) build();
    const mine = ++request;
    playing = false;
    data = null;
    coords = null;
    ui.title.replaceChildren(...[].concat(title));
    ui.subtitle.textContent = "";
    ui.note.textContent = "";
    ui.check.textContent = "";
    ui.check.className = "viewer-check";
    ui.play.disabled = true;
    ui.slider.disabled = true;
    ui.play.textContent = "▶ Reproducir";
    for (const id of ["viewer-step", "viewer-pc", "viewer-wc"]) document.getElementById(id).textContent = "—";
    dialog.dataset.state = "loading";
    setStatus("loading", "Calculando los fotogramas con el motor real en el servidor…");
    if (!dialog.open) dialog.showModal();
    let body;
    try {
      const res = await fetch(url, init);
      body = await res.json().catch(() => ({}));
      if (mine !== request) return;
      if (!res.ok) {
        setStatus("error", body.error || `El servidor no pudo preparar la simulación (HTTP ${res.status}).`);
        dialog.dataset.state = "error";
        return;
      }
    } catch (err) {
      if (mine !== request) return;
      setStatus("error", "No se pudo contactar con el servidor para ver la simulación.");
      dialog.dataset.state = "error";
      return;
    }
    data = body;
    coords = decode(body.positions);
    setStatus("", "");
    const p = body.params;
    ui.subtitle.textContent = `${plural(body.particles, "partícula", "partículas")} · ${plural(body.steps, "paso", "pasos")} · semilla ${p.SEMILLA} · `
      + `caja ${numFmt.format(body.width)} × ${numFmt.format(body.height)} · radio ${numFmt.format(body.radius)} · `
      + `${plural(body.frames, "fotograma", "fotogramas")}, ${body.interval === 1 ? "uno cada paso" : `uno cada ${plural(body.interval, "paso", "pasos")}`}`;
    ui.note.textContent = `${body.note} Recalculado por el servidor con el motor ${body.engine}.`;
    ui.note.dataset.mode = body.mode;
    if (body.matches === true) {
      ui.check.textContent = `El checksum final coincide con el de la tarea (${body.checksum.slice(0, 12)}…).`;
      ui.check.className = "viewer-check ok";
    } else if (body.matches === false) {
      ui.check.textContent = `El checksum final (${body.checksum.slice(0, 12)}…) no coincide con el de la tarea (${body.task_checksum.slice(0, 12)}…).`;
      ui.check.className = "viewer-check error";
    } else {
      ui.check.textContent = `Checksum final: ${body.checksum.slice(0, 12)}…`;
    }
    ui.slider.max = String(body.frames - 1);
    ui.slider.disabled = false;
    ui.play.disabled = false;
    fit();
    show(0);
    start();
  }

  // first value of a form list: "100,200" -> 100, "1-5" -> 1
  function firstOf(text) {
    const m = /^\s*(-?\d+)/.exec(text || "");
    return m ? Number(m[1]) : null;
  }

  document.addEventListener("click", (ev) => {
    const button = ev.target.closest("[data-view-task]");
    if (button) {
      const id = button.dataset.viewTask;
      // the id moves to the next line as a whole, never split at its hyphen
      open(`/api/tasks/${encodeURIComponent(id)}/frames`, {},
        ["Simulación de la tarea ", el("span", { class: "viewer-id", title: id, text: id })]);
      return;
    }
    if (ev.target.closest("#sweep-view")) {
      const val = (id) => (document.getElementById(id) || {}).value || "";
      const params = {};
      const n = firstOf(val("particles"));
      const s = firstOf(val("steps"));
      const seed = firstOf(val("seeds"));
      if (n !== null) params.NUM_PARTICULAS = n;
      if (s !== null) params.NUM_PASOS = s;
      if (seed !== null) params.SEMILLA = seed;
      // the form's fixed values, as the sweep would queue them: "3000,5" or "3000.5"
      for (const [id, key] of [["dt", "DT"], ["width", "ANCHO_MUNDO"], ["height", "ALTO_MUNDO"]]) {
        const text = val(id).trim();
        if (!text) continue;
        // anything else goes as typed, and the server says what is wrong with it
        params[key] = /^-?\d+(?:[.,]\d+)?$/.test(text) ? Number(text.replace(",", ".")) : text;
      }
      const engine = document.querySelector("#sweep-form input[name=engine]:checked");
      const body = { params, benchmark: engine ? engine.value : undefined };
      open("/api/frames", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) },
        "Simulación del formulario (primera combinación)");
    }
  });
})();
