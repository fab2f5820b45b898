// partisim dashboard: live view of `partisim serve` over Server-Sent Events.
// Plain JavaScript, no framework, no network access beyond this server.
"use strict";

(() => {
  // the server sends a heartbeat at least every 5 s; silence this long means a dead link
  const STALE_AFTER_MS = 12000;
  // a cancel button waits this long for its confirming second tap
  const CONFIRM_MS = 4000;
  const SVG = "http://www.w3.org/2000/svg";
  const STATUS = {
    queued: "En cola", running: "En curso", success: "Completada", failed: "Fallida", cancelled: "Cancelada",
  };

  const $ = (id) => document.getElementById(id);
  // Numbers as the CLI and the report write them (README, «Cómo se escriben los números»):
  // decimal comma, thousands grouped by a no-break space from five digits up ("10 000").
  const spanish = (options) => {
    const fmt = new Intl.NumberFormat("es-ES", { ...options, useGrouping: "min2" });
    return { format: (n) => fmt.format(n).replace(/\./g, "\u00a0") };
  };
  const intFmt = spanish({ maximumFractionDigits: 0 });
  const decFmt = (digits) => spanish({ minimumFractionDigits: digits, maximumFractionDigits: digits });
  const dec = [0, 1, 2, 3].map(decFmt);
  const shortFmt = spanish({ maximumFractionDigits: 2 });
  const clock = new Intl.DateTimeFormat("es-ES", { hour: "2-digit", minute: "2-digit", second: "2-digit" });

  // ---------------------------------------------------------------- formatting

  const fmtInt = (n) => (n === null || n === undefined || Number.isNaN(n) ? "—" : intFmt.format(n));
  // "1 hilo", "2 hilos", "10 000 partículas": the noun agrees with the number
  const plural = (n, one, many) => `${fmtInt(n)} ${n === 1 ? one : many}`;

  // A time in the unit that keeps three significant digits, as the CLI writes it
  // (sim.numbers.duration): "1,23 s", "12,4 ms", "521 µs".
  function fmtSeconds(s) {
    if (s === null || s === undefined || !Number.isFinite(s)) return "—";
    if (s === 0) return "0 s";
    for (const [scale, unit] of [[1, "s"], [1e-3, "ms"], [1e-6, "µs"], [1e-9, "ns"]]) {
      const v = s / scale;
      if (Math.abs(v) >= 1 || unit === "ns") return `${dec[Math.abs(v) >= 100 ? 0 : Math.abs(v) >= 10 ? 1 : 2].format(v)} ${unit}`;
    }
    return "—";
  }

  function fmtTick(s) {  // compact axis labels for seconds
    if (s >= 1) return `${shortFmt.format(s)} s`;
    if (s >= 0.001) return `${shortFmt.format(s * 1000)} ms`;
    return `${shortFmt.format(s * 1e6)} µs`;
  }

  function fmtRatio(x) {
    return `${dec[x >= 100 ? 0 : x >= 10 ? 1 : 2].format(x)}×`;
  }

  // the same numbers for the particle viewer (viewer.js, loaded after this file)
  window.partisimFormat = Object.freeze({ spanish, fmtInt, plural, fmtSeconds });

  function fmtAgo(seconds) {
    const s = Math.max(0, Math.round(seconds));
    if (s < 60) return `hace ${s} s`;
    const m = Math.floor(s / 60);
    if (m < 60) return `hace ${m} min`;
    const h = Math.floor(m / 60);
    return `hace ${h} h ${m % 60} min`;
  }

  // --------------------------------------------------------------- DOM helpers

  function h(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") node.className = v;
      else if (k === "text") node.textContent = v;
      else node.setAttribute(k, v);
    }
    for (const child of children) if (child !== null && child !== undefined) node.append(child);
    return node;
  }

  function s(tag, attrs, parent) {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "text") node.textContent = v; else node.setAttribute(k, v);
    }
    if (parent) parent.append(node);
    return node;
  }

  function setText(node, text) {
    if (node.textContent !== text) node.textContent = text;
  }

  // Keyed rows: rows are updated in place, so a click on a button is never lost
  // because its row was rebuilt under the pointer.
  function syncRows(tbody, items, key, build, first) {
    const existing = new Map([...tbody.rows].map((tr) => [tr.dataset.key, tr]));
    const keep = new Set();
    items.forEach((item, i) => {
      const k = key(item);
      keep.add(k);
      const fresh = h("tr", { "data-key": k }, ...build(item));
      const old = existing.get(k);
      let tr = fresh;
      if (old) {
        if (old.innerHTML !== fresh.innerHTML) {
          old.replaceChildren(...fresh.childNodes);
        }
        tr = old;
      } else if (!first) {
        tr.classList.add("fresh");
      }
      if (tbody.rows[i] !== tr) tbody.insertBefore(tr, tbody.rows[i] || null);
    });
    for (const [k, tr] of existing) if (!keep.has(k)) tr.remove();
  }

  const td = (label, attrs, ...children) => {
    const cell = h("td", { "data-label": label, ...(attrs || {}) }, ...children);
    if (cell.textContent === "—") cell.classList.add("is-empty");
    return cell;
  };

  // ------------------------------------------------------------------ state

  let clockOffset = 0;        // server time - browser time, in seconds
  let lastState = null;
  let firstRender = true;
  let lastSuccess = null;

  const serverNow = () => Date.now() / 1000 + clockOffset;

  // ---------------------------------------------------------------- counters

  function renderSummary(sum) {
    for (const st of ["queued", "running", "success", "failed", "cancelled"]) {
      const node = $(`count-${st}`);
      const text = fmtInt(sum[st]);
      if (node.textContent !== text) {
        node.textContent = text;
        if (!firstRender) {
          const box = node.parentElement;
          box.classList.remove("bump");
          void box.offsetWidth;  // restart the animation
          box.classList.add("bump");
        }
      }
    }
    setText($("throughput"), dec[2].format(sum.throughput_per_s || 0));
    const finished = sum.success + sum.failed + sum.cancelled;
    setText($("queue-total"), sum.total
      ? `${fmtInt(finished)} de ${fmtInt(sum.total)} terminadas · ${fmtInt(sum.finished_last_60s)} en el último minuto`
      : "Cola vacía");
    const pct = (n) => (sum.total ? `${(100 * n) / sum.total}%` : "0%");
    $("bar-success").style.width = pct(sum.success);
    $("bar-failed").style.width = pct(sum.failed);
    $("bar-cancelled").style.width = pct(sum.cancelled);
    $("bar-running").style.width = pct(sum.running);
    const waiting = $("queue-waiting");
    waiting.hidden = !sum.waiting;
    setText(waiting, sum.waiting ? `En espera: ${sum.waiting}` : "");
    const busy = sum.running + sum.queued;
    document.title = busy ? `(${plural(busy, "pendiente", "pendientes")}) partisim · panel` : "partisim · panel de monitoreo";
  }

  function renderActivity(activity) {
    const svg = $("activity");
    const width = Math.max(60, svg.clientWidth || 200);
    const height = 34;
    svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
    svg.replaceChildren();
    const max = Math.max(0.0001, ...activity.map((a) => a.per_s));
    const step = width / activity.length;
    s("rect", { class: "base", x: 0, y: height - 1, width, height: 1 }, svg);
    activity.forEach((a, i) => {
      const barH = a.per_s > 0 ? Math.max(2, (a.per_s / max) * (height - 3)) : 0;
      if (!barH) return;
      const r = s("rect", { x: i * step + 1, y: height - 1 - barH, width: Math.max(1, step - 2), height: barH, rx: 1 }, svg);
      s("title", { text: `${dec[2].format(a.per_s)} tareas/s · ${clock.format(new Date(a.t * 1000))}` }, r);
    });
  }

  // ----------------------------------------------------------------- workers

  // "http://127.0.0.155:8080: no se puede conectar" -> the address is in its own column
  function shortError(w) {
    const text = String(w.last_error);
    return text.startsWith(`${w.url}: `) ? text.slice(w.url.length + 2) : text;
  }

  // a Dask worker: its threads and memory (the rest comes from Dask's own dashboard)
  function daskDetails(w) {
    if (w.kind !== "dask") return [];
    const out = ["Dask"];
    if (w.threads != null) out.push(`${fmtInt(w.threads)} ${w.threads === 1 ? "hilo" : "hilos"}`);
    if (w.memory_bytes) out.push(`${dec[1].format(w.memory_bytes / 2 ** 30)} GiB`);
    return out;
  }

  function workerCells(w) {
    const active = w.state === "active";
    const status = w.last_status || {};
    const capacity = w.capacity ?? status.capacity;
    const running = w.inflight ?? status.running ?? 0;
    const since = w.since ? new Date(w.since * 1000) : null;
    const stateCell = td("Estado", { class: "state" },
      h("span", { class: `badge ${active ? "w-active" : "w-inactive"}`, text: active ? "Activo" : "Inactivo" }),
      since ? h("span", { class: "sub", text: `desde ${clock.format(since)}` }) : null,
      since ? h("span", { class: "sub", text: fmtAgo(serverNow() - w.since) }) : null,
      active && w.suspended ? h("span", { class: "sub", text: "en pausa tras un fallo de conexión" }) : null,
      !active && w.last_error ? h("span", { class: "err", title: w.last_error, text: shortError(w) }) : null);
    const meter = h("span", { class: "meter", "aria-hidden": "true" },
      h("span", { style: `width:${capacity ? Math.min(100, (100 * running) / capacity) : 0}%` }));
    const reported = w.reported_id && w.reported_id !== w.id ? h("span", { class: "sub", text: `se anuncia como ${w.reported_id}` }) : null;
    const details = [];
    if (status.runner) details.push(status.runner);
    if (status.cpu_count) details.push(`${fmtInt(status.cpu_count)} CPU`);
    if (Array.isArray(status.load_avg) && status.load_avg.length) details.push(`carga ${dec[1].format(status.load_avg[0])}`);
    if (status.version) details.push(`v${status.version}`);
    details.push(...daskDetails(w));
    return [
      td("Worker", { class: "lead" }, h("strong", { text: w.id }), reported),
      td("Dirección", {}, h("span", { class: "mono", text: w.address || w.url }),
        details.length ? h("span", { class: "sub", text: details.join(" · ") }) : null,
        w.dashboard_url ? h("a", { class: "sub", href: w.dashboard_url, target: "_blank", rel: "noopener",
          text: "panel de Dask" }) : null),
      stateCell,
      td("En curso", { class: "num" }, h("span", {}, `${fmtInt(running)} / ${capacity ? fmtInt(capacity) : "—"}`, meter)),
      td("Latencia", { class: "num", text: active && w.latency_ms != null ? `${dec[1].format(w.latency_ms)} ms` : "—" }),
      td("Hechas", { class: "num", text: fmtInt(w.completed ?? 0) }),
      td("Fallidas", { class: "num", text: fmtInt(w.failed ?? 0) }),
    ];
  }

  function renderWorkers(workers, sum) {
    const tbody = $("workers-table").tBodies[0];
    syncRows(tbody, workers, (w) => w.id, workerCells, true);
    for (const tr of tbody.rows) {
      const w = workers.find((x) => x.id === tr.dataset.key);
      tr.classList.toggle("is-inactive", !!w && w.state !== "active");
      tr.dataset.state = w ? w.state : "";
    }
    setText($("workers-count"), `${fmtInt(sum.workers_active)} de ${fmtInt(sum.workers_total)} activos`);
    $("no-workers").hidden = !(sum.workers_total > 0 && sum.workers_active === 0);
  }

  // ------------------------------------------------------------------ tasks

  function taskCells(t) {
    const p = t.params || {};
    const r = t.result || t.foreign_result || {};  // a foreign worker's answer: what it reported
    const notes = [];
    if (t.status === "failed" && t.error) notes.push(h("span", { class: "err", text: t.error }));
    if (t.attempts > 1) notes.push(h("span", { class: "sub", text: `intento ${t.attempts} de ${t.max_attempts}` }));
    if (t.duplicates > 0) {
      notes.push(h("span", { class: "sub dup", title: "la tarea también se ejecutó en otro worker (reintento tras una respuesta perdida)",
        text: t.duplicates === 1 ? "1 ejecución duplicada" : `${t.duplicates} ejecuciones duplicadas` }));
    }
    if (t.verify_of) notes.push(h("span", { class: "sub", text: `verificación de ${t.verify_of}` }));
    const env = (t.result && t.result.environment) || null;
    if (env && env.contended) {
      notes.push(h("span", { class: "sub busy", "data-contended": "1", title: `motivo: ${(env.contended_by || []).map((k) => BUSY_REASONS[k] || k).join(", ")}`,
        text: "⚠ medido con la máquina ocupada" }));
    }
    if (t.label) notes.push(h("span", { class: "sub c-label", title: "identificador de la tarea en su archivo", text: t.label }));
    if (t.priority) notes.push(h("span", { class: "sub c-priority", text: `prioridad ${t.priority}` }));
    const time = t.status === "success" ? fmtSeconds(r.simulation_time) : t.status === "running" ? "…" : "—";
    const collisions = t.status === "success"
      ? `${fmtInt(r.particle_collisions)} · ${fmtInt(r.wall_collisions)}` : "—";
    const checksum = t.verifiable === false
      ? h("span", { class: "sub", title: "el worker no es partisim: no informa motor ni checksum", text: "no verificable" })
      : r.checksum ? h("span", { class: "mono", title: r.checksum, text: `${r.checksum.slice(0, 12)}…` }) : "—";
    const actions = td("", { class: "actions" },
      h("button", { type: "button", class: "view", "data-view-task": t.id, text: "Ver simulación" }),  // viewer.js
      h("a", { href: `/api/tasks/${encodeURIComponent(t.id)}`, target: "_blank", rel: "noopener", title: t.id, text: "JSON" }));
    if (t.status === "queued" || t.status === "running") {
      const button = h("button", { type: "button", class: "small", "data-cancel": t.id, text: "Cancelar" });
      if (armedCancels.has(t.id)) cancelButtonLook(button, true);
      actions.append(button);
    }
    return [
      td("Estado", { class: "lead" }, h("span", { class: `badge st-${t.status}`, text: STATUS[t.status] || t.status }), ...notes),
      td("Motor", { class: "mono c-engine", text: r.engine || t.benchmark }),
      td("Partículas", { class: "num c-particles", text: fmtInt(p.NUM_PARTICULAS) }),
      td("Pasos", { class: "num c-steps", text: fmtInt(p.NUM_PASOS) }),
      td("Semilla", { class: "num c-seed", text: fmtInt(p.SEMILLA) }),
      td("Hilos", { class: "num c-threads", title: threadsTitle(t), "data-unit": threadsUnit(t), text: threadsText(t) }),
      td("Worker", { class: "c-worker", text: t.worker || "—" }),
      td("Tiempo", { class: "num c-time", title: r.execution_time != null ? `ejecución total ${fmtSeconds(r.execution_time)}` : null, text: time }),
      td("Colisiones", { class: "num c-collisions", text: collisions }),
      td("Checksum", { class: "c-checksum" }, checksum),
      actions,
    ];
  }

  const BUSY_REASONS = {
    load: "carga media mayor que los núcleos", runnable: "más hilos listos que núcleos",
    threads: "hilos del worker en uso mayores que los núcleos", other_task: "otra tarea del worker a la vez",
  };
  const THREAD_REASONS = {
    requested: "los pedidos", single_threaded_engine: "el motor usa un hilo", no_openmp: "motor sin OpenMP",
    forked_process: "proceso bifurcado: un hilo", machine_cores: "limitado a los núcleos de la máquina",
    small_work: "pocas partículas: un hilo es más rápido", worker_capacity: "limitado a la capacidad del worker",
  };
  // threads used once it ran ("1 de 2" when fewer than asked); those asked for until then
  function threadsText(t) {
    const r = t.result;
    if (!r || r.threads == null) return fmtInt(t.threads || 1);
    const asked = r.threads_requested || t.threads || 1;
    return r.threads < asked ? `${fmtInt(r.threads)} de ${fmtInt(asked)}` : fmtInt(r.threads);
  }
  // the noun after the threads on a phone's card: "1 hilo", "1 de 2 hilos"
  function threadsUnit(t) {
    const r = t.result;
    const last = !r || r.threads == null ? t.threads || 1 : Math.max(r.threads, r.threads_requested || t.threads || 1);
    return last === 1 ? "hilo" : "hilos";
  }
  function threadsTitle(t) {
    const r = t.result;
    return r && r.threads_reason ? `hilos usados: ${THREAD_REASONS[r.threads_reason] || r.threads_reason}` : null;
  }

  function renderRecent(tasks) {
    const tbody = $("recent-table").tBodies[0];
    syncRows(tbody, tasks, (t) => t.id, taskCells, firstRender);
    for (const tr of tbody.rows) {
      const t = tasks.find((x) => x.id === tr.dataset.key);
      tr.dataset.status = t ? t.status : "";
    }
    $("recent-empty").hidden = tasks.length > 0;
    $("recent-table").hidden = tasks.length === 0;
  }

  function showMessage(node, kind, text) {
    node.className = `message ${kind}`;
    node.textContent = text;
    node.hidden = false;
  }

  // tasks whose cancel button was tapped once and waits for the confirming tap
  const armedCancels = new Set();

  function cancelButtonLook(button, armed) {
    button.textContent = armed ? "¿Cancelar? Confirme" : "Cancelar";
    button.classList.toggle("armed", armed);
  }

  // The server confirmed the cancellation: show it now, the next snapshot agrees.
  function markCancelled(tr) {
    if (!tr) return;
    tr.dataset.status = "cancelled";
    const badge = tr.querySelector(".badge");
    if (badge) { badge.className = "badge st-cancelled"; badge.textContent = STATUS.cancelled; }
    tr.querySelectorAll("button[data-cancel]").forEach((b) => b.remove());
  }

  $("recent-table").addEventListener("click", async (ev) => {
    const button = ev.target.closest("button[data-cancel]");
    if (!button) return;
    const id = button.dataset.cancel;
    // one tap arms the button, a second one within a few seconds cancels: a stray tap
    // on a phone never cancels a task
    if (!armedCancels.has(id)) {
      armedCancels.add(id);  // kept here: a live update rebuilds the row from this set
      cancelButtonLook(button, true);
      setTimeout(() => {
        armedCancels.delete(id);
        const now = document.querySelector(`#recent-table button[data-cancel="${CSS.escape(id)}"]`);
        if (now && !now.disabled) cancelButtonLook(now, false);
      }, CONFIRM_MS);
      return;
    }
    armedCancels.delete(id);
    button.disabled = true;
    try {
      const res = await fetch(`/api/tasks/${encodeURIComponent(id)}`, { method: "DELETE" });
      const body = await res.json().catch(() => ({}));
      if (res.ok) {
        showMessage($("recent-message"), "ok", `Tarea ${id} cancelada.`);
        markCancelled(button.closest("tr"));
      } else showMessage($("recent-message"), "error", body.error || `No se pudo cancelar ${id} (HTTP ${res.status}).`);
    } catch (err) {
      showMessage($("recent-message"), "error", `No se pudo contactar con el servidor para cancelar ${id}.`);
    } finally {
      button.disabled = false;
    }
  });

  // ------------------------------------------------------------------ charts

  // The charts draw aggregates (GET /api/charts: one point per engine, size and
  // configuration), asked again at most every CHART_EVERY_MS while results arrive and at
  // once when another batch is picked. Each series brings its own style from the server
  // (colour, marker, dash), the same the PNG report uses.
  const CHART_EVERY_MS = 3000;
  const MARKER_R = 4.2;
  let chartData = null;
  let chartLoading = false;
  let chartPending = false;
  let chartTimer = null;
  let chartAskedAt = 0;
  let chartBatch = "latest";

  function loadCharts(now) {
    if (chartLoading) { chartPending = true; return; }
    const wait = now ? 0 : chartAskedAt + CHART_EVERY_MS - Date.now();
    if (wait > 0) {
      if (!chartTimer) chartTimer = setTimeout(() => { chartTimer = null; loadCharts(true); }, wait);
      return;
    }
    fetchCharts();
  }

  async function fetchCharts() {
    chartLoading = true;
    chartAskedAt = Date.now();
    const asked = chartBatch;
    try {
      const busy = $("chart-contended").checked ? "&contended=1" : "";
      const res = await fetch(`/api/charts?batch=${encodeURIComponent(asked)}${busy}`, { cache: "no-store" });
      if (res.ok) {
        const data = await res.json();
        if (asked === chartBatch) {
          chartData = data;
          renderBatchChoice();
          drawCharts();
        }
      } else if (res.status === 404 && asked === chartBatch) {
        chartBatch = "latest";  // that batch is gone (serve restarted on another database)
        chartPending = true;
      }
    } catch (err) {
      // the event stream reports the lost connection; charts refresh when it is back
    } finally {
      chartLoading = false;
      if (chartPending) { chartPending = false; loadCharts(true); }
      // results finished after the server read them: ask again in a while
      else if (chartData && lastSuccess !== null && chartData.success < lastSuccess) loadCharts();
    }
  }

  function renderBatchChoice() {
    const select = $("chart-batch");
    const batches = chartData.batches || [];
    const total = batches.reduce((a, b) => a + b.results, 0);
    const options = [h("option", { value: "latest", text: chartData.latest ? `Último lote (${chartData.latest})` : "Último lote" })];
    for (const b of batches) {
      options.push(h("option", { value: b.batch, text: `${b.batch} · ${plural(b.results, "resultado", "resultados")}${b.pending ? " · en curso" : ""}` }));
    }
    if (!["latest", "todos"].includes(chartBatch) && !batches.some((b) => b.batch === chartBatch)) {
      options.push(h("option", { value: chartBatch, text: chartBatch }));
    }
    options.push(h("option", { value: "todos", text: `Todos los lotes (${plural(total, "resultado", "resultados")})` }));
    const fresh = h("select", {}, ...options);
    if (fresh.innerHTML !== select.innerHTML) select.replaceChildren(...fresh.childNodes);
    select.value = chartBatch;

    const shown = chartData.batch ? batches.find((b) => b.batch === chartData.batch) : null;
    const points = (chartData.series || []).reduce((a, line) => a + line.points.reduce((n, p) => n + p.n, 0), 0);
    const varied = (chartData.varied || []).map((k) => PARAM_NAMES[k] || k);
    const parts = [];
    if (chartData.batch) parts.push(`lote ${chartData.batch}`);
    else parts.push(plural(batches.length, "lote", "lotes"));
    parts.push(plural(points, "resultado", "resultados"));
    if (shown && shown.pending) parts.push("en curso");
    if (varied.length) parts.push(`varían: ${varied.join(", ")}`);
    setText($("chart-note"), batches.length ? parts.join(" · ") : "");
    renderPhysics();
  }

  // The Física line of the results shown (measured collisions / kinetic theory, or why
  // not), and the distinct warnings those results carry: texts made by the server.
  function renderPhysics() {
    const physics = chartData.physics;
    const warnings = chartData.warnings || [];
    setText($("physics-line"), physics ? physics.text : "");
    $("physics-line").hidden = !physics;
    const list = h("ul", {}, ...warnings.map((w) => h("li", { text: `Aviso: ${w}` })));
    const node = $("physics-warnings");
    if (list.innerHTML !== node.innerHTML) node.replaceChildren(...list.childNodes);
    $("chart-physics").hidden = !physics && warnings.length === 0;
  }

  $("chart-contended").addEventListener("change", () => loadCharts(true));

  // how many runs measured on a busy machine the charts leave out (or show, marked)
  function renderContended() {
    const node = $("chart-contended-note");
    if (!chartData) { node.hidden = true; return; }
    const left = chartData.contended_left_out || 0;
    const shown = (chartData.series || []).reduce((n, line) => n + line.points.reduce((k, p) => k + (p.contended || 0), 0), 0);
    const marked = shown ? `${plural(shown, "ejecución medida", "ejecuciones medidas")} con la máquina ocupada (✕ en el tiempo); ` : "";
    const text = !shown ? "" : chartData.contended_shown
      ? `${marked}incluidas también en la aceleración.`
      : `${marked}la aceleración deja fuera ${plural(left, "ejecución", "ejecuciones")}.`;
    setText(node, text);
    node.hidden = !text;
  }

  $("chart-batch").addEventListener("change", (ev) => {
    chartBatch = ev.target.value;
    loadCharts(true);
  });

  const PARAM_NAMES = {
    NUM_PASOS: "pasos", ANCHO_MUNDO: "ancho", ALTO_MUNDO: "alto", RADIO_PARTICULA: "radio", DT: "dt",
    VELOCIDAD_INICIAL_MAX: "v. máx.", COEF_RESTITUCION_PARED: "rest. pared", COEF_RESTITUCION_PARTICULA: "rest. partículas",
  };

  function logScale(lo, hi, from, to, pad = 0.1) {
    let l0 = Math.log10(lo);
    let l1 = Math.log10(hi);
    if (l1 - l0 < 1e-9) { l0 -= 0.5; l1 += 0.5; } else { const p = (l1 - l0) * pad; l0 -= p; l1 += p; }
    const scale = (v) => from + ((Math.log10(v) - l0) / (l1 - l0)) * (to - from);
    scale.ticks = (most = 7) => {
      const span = l1 - l0;
      const mults = span <= 1.3 ? [1, 1.5, 2, 3, 5, 7] : span <= 2.6 ? [1, 2, 5] : [1];
      const out = [];
      for (let e = Math.floor(l0); e <= Math.ceil(l1); e++) {
        for (const m of mults) {
          const v = m * 10 ** e;
          const lv = Math.log10(v);
          if (lv >= l0 && lv <= l1) out.push(v);
        }
      }
      // a narrow range may hold no round value at all: label its ends instead
      if (!out.length) return [...new Set([lo, hi])];
      const every = Math.ceil(out.length / most);
      return out.filter((_, i) => i % every === 0);
    };
    return scale;
  }

  // Width of a label at the charts' 11.5 px (about 6.6 px a character).
  // The rendered width of a chart label in its class's font, measured once per text:
  // a per-character guess under-counts bold digits, and value labels then collided.
  const widths = new Map();
  let probe = null;
  function textWidth(text, cls = "tick") {
    const key = `${cls}\u0000${text}`;
    let width = widths.get(key);
    if (width === undefined) {
      if (!probe) {
        const holder = s("svg", { class: "chart", width: 0, height: 0, "aria-hidden": "true",
          style: "position:absolute;left:-9999px;top:0;visibility:hidden" }, document.body);
        probe = s("text", {}, holder);
      }
      probe.setAttribute("class", cls);
      probe.textContent = text;
      width = probe.getComputedTextLength() || text.length * 7.5;  // 0 before layout: a safe guess
      widths.set(key, width);
    }
    return width;
  }
  const labelRoom = (labels) => Math.ceil(Math.max(...labels.map((text) => textWidth(text)))) + 10;

  // Tick values whose labels do not touch: the measured sizes when there are few,
  // else round powers; any that would overlap the previous label is left out.
  function spacedTicks(scale, values, fmt) {
    const distinct = [...new Set(values)].sort((a, b) => a - b);
    const candidates = distinct.length <= 8 ? distinct : scale.ticks(9);
    const out = [];
    let right = -Infinity;
    for (const v of candidates) {
      const half = textWidth(fmt(v)) / 2;
      if (scale(v) - half >= right + 8) {
        out.push(v);
        right = scale(v) + half;
      }
    }
    return out;
  }

  function emptyChart(box, text) {
    box.replaceChildren(h("div", { class: "empty-chart", text }));
  }

  function frame(box, height) {
    const width = Math.max(200, Math.floor(box.clientWidth || 400));
    const svg = s("svg", { viewBox: `0 0 ${width} ${height}`, width, height, role: "img" });
    box.replaceChildren(svg);
    return { svg, width, height };
  }

  // The value axis every chart shares: a gridline and a label on the left for each
  // tick, in an axis group that the chart adds its own x labels to.
  function valueAxis(svg, { width, m }, ticks, y, tickText) {
    const axis = s("g", { class: "axis" }, svg);
    for (const v of ticks) {
      s("line", { class: "gridline", x1: m.l, x2: width - m.r, y1: y(v), y2: y(v) }, axis);
      s("text", { class: "tick", x: m.l - 6, y: y(v) + 4, "text-anchor": "end", text: tickText(v) }, axis);
    }
    return axis;
  }

  // The baseline and, centred under it, what the x axis counts.
  // A title too wide for the chart gives way to its short form; either stays inside the svg.
  function baseline(axis, { width, height, m }, title, short) {
    s("line", { x1: m.l, x2: width - m.r, y1: height - m.b, y2: height - m.b }, axis);
    const text = short && textWidth(title, "axis-title") > width - 8 ? short : title;
    const half = textWidth(text, "axis-title") / 2;
    const x = Math.max(half + 4, Math.min((m.l + width - m.r) / 2, width - half - 4));
    s("text", { class: "axis-title", x, y: height - 6, "text-anchor": "middle", text }, axis);
  }

  // A marker of the given shape: the shape, not only the colour, tells series apart.
  function marker(parent, style, cx, cy, r) {
    const attrs = {
      class: "marker", fill: style.filled === false ? "#fff" : style.color, stroke: style.color, "stroke-width": 1.8,
    };
    const k = style.marker;
    if (k === "square") return s("rect", { ...attrs, x: cx - r * 0.9, y: cy - r * 0.9, width: r * 1.8, height: r * 1.8 }, parent);
    if (k === "triangle") {
      const t = r * 1.25;
      return s("path", { ...attrs, d: `M${cx},${cy - t}L${cx + t * 0.95},${cy + t * 0.7}L${cx - t * 0.95},${cy + t * 0.7}Z` }, parent);
    }
    if (k === "diamond") {
      const t = r * 1.3;
      return s("path", { ...attrs, d: `M${cx},${cy - t}L${cx + t},${cy}L${cx},${cy + t}L${cx - t},${cy}Z` }, parent);
    }
    return s("circle", { ...attrs, cx, cy, r }, parent);
  }

  const styleKey = (st) => `${st.color}|${st.marker}|${st.dash || "-"}|${st.filled === false ? "hueco" : "lleno"}`;

  // Legend entries draw the same line and marker as the chart.
  function renderLegend(node, entries, kind) {
    const items = entries.map(({ label, style }) => {
      const swatch = s("svg", { width: 30, height: 14, viewBox: "0 0 30 14", "aria-hidden": "true" });
      if (kind === "bar") s("rect", { x: 8, y: 1, width: 14, height: 12, rx: 2, fill: style.color }, swatch);
      else {
        s("line", { x1: 1, x2: 29, y1: 7, y2: 7, stroke: style.color, "stroke-width": 2, "stroke-dasharray": style.dash || null }, swatch);
        marker(swatch, style, 15, 7, 3.6);
      }
      return h("li", { "data-style": styleKey(style) }, swatch, h("span", { text: label }));
    });
    const fresh = h("ul", {}, ...items);
    if (fresh.innerHTML !== node.innerHTML) node.replaceChildren(...fresh.childNodes);
    node.hidden = items.length === 0;
  }

  // The values behind a chart, as a table (for phones, screen readers, and copying).
  function renderValues(node, head, rows) {
    if (!rows.length) { node.replaceChildren(h("p", { class: "muted", text: "Sin datos." })); return; }
    const table = h("table", { class: "grid values-table" },
      h("thead", {}, h("tr", {}, ...head.map(([text, num]) => h("th", { class: num ? "num" : null, text })))),
      h("tbody", {}, ...rows.map((cells) => h("tr", {}, ...cells.map((text, i) => td(head[i][0], { class: head[i][1] ? "num" : null, text }))))));
    node.replaceChildren(table);
  }

  const pointText = (line, p) => `${line.label} · ${plural(p.particles, "partícula", "partículas")}: ${fmtSeconds(p.mean)}`
    + (p.n > 1 ? ` ± ${fmtSeconds(p.stdev)} (media de ${fmtInt(p.n)} ejecuciones; mediana ${fmtSeconds(p.median)}, mínimo ${fmtSeconds(p.minimum)})` : " (1 ejecución)")
    + (p.unstable ? ` · inestable (CV ${Math.round(p.cv * 100)} %)` : "")
    + (p.contended ? ` · ${plural(p.contended, "medida", "medidas")} con la máquina ocupada` : "");
  const pointState = (p) => [p.unstable ? `inestable (CV ${Math.round(p.cv * 100)} %)` : "", p.contended ? plural(p.contended, "ocupada", "ocupadas") : ""]
    .filter(Boolean).join(" · ") || "—";

  function drawTimeChart() {
    const box = $("chart-time");
    const series = (chartData && chartData.series) || [];
    renderLegend($("legend-time"), series.map((line) => ({ label: line.label, style: line })), "line");
    renderValues($("values-time"), [["Serie"], ["Part.", true], ["Media", true], ["Desv. est.", true], ["Mediana", true], ["Mín.", true], ["n", true], ["Estado"]],
      series.flatMap((line) => line.points.map((p) => [line.label, fmtInt(p.particles), fmtSeconds(p.mean),
        p.n > 1 ? fmtSeconds(p.stdev) : "—", p.median != null ? fmtSeconds(p.median) : "—", p.minimum != null ? fmtSeconds(p.minimum) : "—",
        fmtInt(p.n), pointState(p)])));
    const single = series.length > 0 && new Set(series.flatMap((line) => line.points.map((p) => p.particles))).size === 1;
    setText($("chart-time-scale"), `media ± desv. est. · ${single ? "escala lineal" : "escala logarítmica"}`);
    if (!series.length) {
      emptyChart(box, chartData && chartData.batch
        ? "Este lote aún no tiene resultados con éxito."
        : "Aún no hay resultados. Lance un barrido para ver el tiempo de cada motor.");
      return;
    }
    if (single) {
      drawOneSize(box, series);  // one size: bars, not lines of a single point
      return;
    }
    const narrow = (box.clientWidth || 400) < 480;
    const { svg, width, height } = frame(box, narrow ? 240 : 280);
    svg.setAttribute("aria-label", "Tiempo de simulación frente a número de partículas, por serie");
    const m = { l: 0, r: 16, t: 12, b: 40 };
    const points = series.flatMap((line) => line.points);
    const xs = points.map((p) => p.particles);
    const ys = points.flatMap((p) => [p.mean, p.mean + p.stdev]).filter((v) => v > 0);
    if (!ys.length) { emptyChart(box, "Los tiempos medidos son cero."); return; }
    const y = logScale(Math.min(...ys), Math.max(...ys), height - m.b, m.t);
    const yTicks = y.ticks(narrow ? 5 : 7);
    m.l = labelRoom(yTicks.map(fmtTick)) + 18;  // plus the rotated axis title
    const x = logScale(Math.min(...xs), Math.max(...xs), m.l, width - m.r, 0.06);
    const axis = valueAxis(svg, { width, m }, yTicks, y, fmtTick);
    for (const v of spacedTicks(x, xs, fmtInt)) {
      s("line", { class: "gridline", x1: x(v), x2: x(v), y1: m.t, y2: height - m.b }, axis);
      s("text", { class: "tick x-tick", x: x(v), y: height - m.b + 16, "text-anchor": "middle", text: fmtInt(v) }, axis);
    }
    baseline(axis, { width, height, m }, "partículas");
    s("line", { x1: m.l, x2: m.l, y1: m.t, y2: height - m.b }, axis);
    s("text", { class: "axis-title", transform: `translate(13 ${(m.t + height - m.b) / 2}) rotate(-90)`, "text-anchor": "middle", text: "tiempo" }, axis);

    for (const line of series) {
      const pts = line.points.filter((p) => p.mean > 0);
      const g = s("g", { class: "series", "data-engine": line.engine, "data-key": line.key, "data-style": styleKey(line) }, svg);
      s("title", { text: line.label }, g);
      if (pts.length > 1) {
        s("path", {
          d: pts.map((p, i) => `${i ? "L" : "M"}${x(p.particles).toFixed(1)},${y(p.mean).toFixed(1)}`).join(""),
          fill: "none", stroke: line.color, "stroke-width": 2, "stroke-linejoin": "round",
          "stroke-dasharray": line.dash || null, class: "line",
        }, g);
      }
      for (const p of pts) {
        if (p.stdev > 0) {
          const lo = Math.max(p.mean - p.stdev, p.mean / 10);
          s("line", { x1: x(p.particles), x2: x(p.particles), y1: y(lo), y2: y(p.mean + p.stdev), stroke: line.color, "stroke-width": 1.2, opacity: 0.6 }, g);
        }
        const dot = marker(g, line, x(p.particles), y(p.mean), MARKER_R);
        s("title", { text: pointText(line, p) }, dot);
        const cx = x(p.particles), cy = y(p.mean), k = MARKER_R + 3;
        if (p.unstable) s("circle", { class: "unstable-ring", cx, cy, r: MARKER_R + 5, "data-unstable": "1" }, g);
        if (p.contended) {  // a cross over the point: measured (partly) on a busy machine
          const mark = s("path", { class: "busy-mark", d: `M${cx - k},${cy - k}L${cx + k},${cy + k}M${cx - k},${cy + k}L${cx + k},${cy - k}`, "data-contended": p.contended }, g);
          s("title", { text: pointText(line, p) }, mark);
        }
      }
    }
  }

  // One size: a bar per series (engine and configuration), mean ± stdev on a linear axis
  // from 0 in the unit that fits, its time written above it.
  function drawOneSize(box, series) {
    const narrow = (box.clientWidth || 400) < 480;
    const { svg, width, height } = frame(box, narrow ? 240 : 280);
    const size = series[0].points[0].particles;
    svg.setAttribute("aria-label", `Tiempo de simulación con ${plural(size, "partícula", "partículas")}, por serie`);
    const top = Math.max(...series.map((line) => line.points[0].mean + line.points[0].stdev)) || 1;
    const [unit, per] = top >= 1 ? ["s", 1] : top >= 1e-3 ? ["ms", 1e3] : ["µs", 1e6];
    const m = { l: 0, r: 12, t: 22, b: 40 };
    // round ticks in the axis unit: a step of 1, 2, 2.5 or 5 times a power of ten
    const raw = (top * per * 1.1) / 4;
    const mag = 10 ** Math.floor(Math.log10(raw));
    const step = [1, 2, 2.5, 5, 10].find((f) => f * mag >= raw) * mag;
    const ticks = [];
    for (let v = 0; v <= top * per * 1.1 + step * 1e-9; v += step) ticks.push(v / per);
    if (ticks[ticks.length - 1] < top * 1.1) ticks.push(ticks[ticks.length - 1] + step / per);
    const yMax = ticks[ticks.length - 1];
    const y = (v) => height - m.b - (v / yMax) * (height - m.b - m.t);
    const tickText = (v) => `${shortFmt.format(v * per)} ${unit}`;
    m.l = labelRoom(ticks.map(tickText));
    const axis = valueAxis(svg, { width, m }, ticks, y, tickText);
    baseline(axis, { width, height, m }, `${plural(size, "partícula", "partículas")} · media ± desv. est.`, plural(size, "partícula", "partículas"));
    const band = (width - m.l - m.r) / series.length;
    const barW = Math.min(64, band * 0.6);
    series.forEach((line, i) => {
      const p = line.points[0];
      const cx = m.l + band * (i + 0.5);
      const g = s("g", { class: "series", "data-engine": line.engine, "data-key": line.key, "data-style": styleKey(line) }, svg);
      s("title", { text: line.label }, g);
      const rect = s("rect", { class: "time-bar", x: cx - barW / 2, y: y(p.mean), width: barW,
        height: Math.max(1, y(0) - y(p.mean)), rx: 2, fill: line.color }, g);
      s("title", { text: pointText(line, p) }, rect);
      if (p.stdev > 0) {
        s("line", { x1: cx, x2: cx, y1: y(Math.max(0, p.mean - p.stdev)), y2: y(p.mean + p.stdev), stroke: "#333", "stroke-width": 1.2 }, g);
      }
      // the same marks as on the line chart, on the bar's top: unstable, measured on a busy machine
      const cy = y(p.mean), k = MARKER_R + 3;
      if (p.unstable) s("circle", { class: "unstable-ring", cx, cy, r: MARKER_R + 5, "data-unstable": "1" }, g);
      if (p.contended) {
        const mark = s("path", { class: "busy-mark", d: `M${cx - k},${cy - k}L${cx + k},${cy + k}M${cx - k},${cy + k}L${cx + k},${cy - k}`, "data-contended": p.contended }, g);
        s("title", { text: pointText(line, p) }, mark);
      }
      // the time above the error bar and above the marks on the bar's top
      const label = fmtSeconds(p.mean);
      if (textWidth(label, "bar-label") <= band) {
        const clear = p.unstable ? MARKER_R + 5 + 1 : p.contended ? k + 1 : 0;
        s("text", { class: "bar-label", x: cx, y: Math.min(y(p.mean + p.stdev), cy - clear) - 5, "text-anchor": "middle", text: label }, g);
      }
      const name = textWidth(line.engine) <= band ? line.engine : "";
      s("text", { class: "tick x-tick", x: cx, y: height - m.b + 16, "text-anchor": "middle", text: name }, axis);
    });
  }

  function drawSpeedupChart() {
    const box = $("chart-speedup");
    const items = (chartData && chartData.speedup) || [];
    // configurations in the order of the time chart's series (steps, then parameters)
    const order0 = [...new Set(((chartData && chartData.series) || []).map((line) => line.config))];
    const colours = new Map(items.map((it) => [it.config, it.color]));
    const configs = order0.filter((c) => colours.has(c)).map((c) => [c, colours.get(c)]);
    renderLegend($("legend-speedup"), configs.length > 1
      ? configs.map(([config, color]) => ({ label: config, style: { color } })) : [], "bar");
    renderValues($("values-speedup"), [["Part.", true], ["Config."], ["python", true], ["cython", true], ["Acel.", true], ["IC 95 %", true], ["Comparable por"]],
      items.map((it) => [fmtInt(it.particles), it.config || "—", fmtSeconds(it.python), fmtSeconds(it.cython), fmtRatio(it.value),
        it.low != null ? `${fmtRatio(it.low)}–${fmtRatio(it.high)}` : "—", basisText(it)]));
    if (!items.length) {
      const left = (chartData && !chartData.contended_shown && chartData.contended_left_out) || 0;
      emptyChart(box, left
        ? `Hay pares python/cython, pero sus ejecuciones se midieron con la máquina ocupada y la aceleración las deja fuera (${plural(left, "ejecución", "ejecuciones")}). Marque «Incluir en la aceleración las ejecuciones medidas con la máquina ocupada» para verlas.`
        : "Aún no hay pares python/cython del mismo tamaño. Lance un barrido con ambos motores.");
      return;
    }
    const narrow = (box.clientWidth || 400) < 480;
    const { svg, width, height } = frame(box, narrow ? 240 : 280);
    svg.setAttribute("aria-label", "Aceleración de cython frente a python por número de partículas (escala logarítmica)");
    const values = items.flatMap((it) => [it.value, it.low, it.high]).filter((v) => v != null && v > 0);
    // log axis around 1×: a bar grows up when cython is faster, down when slower
    const lo = Math.min(1, ...values) / (values.some((v) => v < 1) ? 2 : 1.25);  // room for labels below 1×
    const hi = Math.max(1, ...values) * 1.25;
    const m = { l: 0, r: 12, t: 24, b: 40 };
    const ys = logScale(lo, hi, height - m.b, m.t, 0);
    const ticks = ys.ticks(narrow ? 4 : 6).filter((v) => v >= lo && v <= hi);
    const tickText = (v) => `${shortFmt.format(v)}×`;
    m.l = labelRoom(ticks.map(tickText));
    const axis = valueAxis(svg, { width, m }, ticks, ys, tickText);
    baseline(axis, { width, height, m }, "partículas");

    const sizes = [...new Set(items.map((it) => it.particles))].sort((a, b) => a - b);
    const order = configs.map(([c]) => c);
    const band = (width - m.l - m.r) / sizes.length;
    const slot = Math.min(56, (band * 0.84) / order.length);
    // x labels: every k-th size when they would touch
    const every = Math.max(1, Math.ceil((Math.max(...sizes.map((n) => textWidth(fmtInt(n)))) + 10) / band));
    sizes.forEach((n, i) => {
      if (i % every) return;
      s("text", { class: "tick x-tick", x: m.l + band * (i + 0.5), y: height - m.b + 16, "text-anchor": "middle", text: fmtInt(n) }, axis);
    });
    const bars = s("g", { class: "bars" }, svg);
    // values above the bars only when every one fits its bar's width; else on hover and in the table
    const labelled = items.every((it) => textWidth(fmtRatio(it.value), "bar-label") + 3 <= slot);
    items.forEach((it) => {
      const cx = m.l + band * (sizes.indexOf(it.particles) + 0.5) + (order.indexOf(it.config) - (order.length - 1) / 2) * slot;
      const top = ys(Math.max(1, it.value));
      const bottom = ys(Math.min(1, it.value));
      const barW = slot * 0.86;
      const rect = s("rect", {
        x: cx - barW / 2, y: top, width: barW, height: Math.max(1, bottom - top), rx: 2, fill: it.color, class: "bar",
        "data-value": it.value,
      }, bars);
      const ci = it.low != null ? ` (IC 95 % ${fmtRatio(it.low)}–${fmtRatio(it.high)})` : "";
      s("title", { text: `${plural(it.particles, "partícula", "partículas")}${it.config ? `, ${it.config}` : ""}: python ${fmtSeconds(it.python)}, cython ${fmtSeconds(it.cython)} → ${fmtRatio(it.value)}${ci}; ${basisText(it)}` }, rect);
      if (it.low != null && it.high != null) {  // the 95% confidence interval as an error bar
        const y1 = ys(it.low), y2 = ys(it.high), w = Math.min(8, barW / 3);
        s("path", { class: "ci", d: `M${cx},${y1}L${cx},${y2}M${cx - w},${y1}L${cx + w},${y1}M${cx - w},${y2}L${cx + w},${y2}`, "data-ci": `${it.low}-${it.high}` }, bars);
      }
      if (labelled) {  // past the bar's end and past the whisker of its interval
        const up = it.value >= 1;
        const end = up ? Math.min(top, it.high != null ? ys(it.high) : top) : Math.max(bottom, it.low != null ? ys(it.low) : bottom);
        s("text", { class: "bar-label", x: cx, y: up ? end - 5 : end + 13, "text-anchor": "middle", text: fmtRatio(it.value) }, bars);
      }
    });
    s("line", { class: "ref", x1: m.l, x2: width - m.r, y1: ys(1), y2: ys(1) }, axis);
  }

  const basisText = (it) => it.basis === "worker" ? `mismo worker (${it.where})` : `misma CPU (${it.where})`;

  function drawCharts() {
    renderContended();
    drawTimeChart();
    drawSpeedupChart();
  }

  let resizeQueued = false;
  window.addEventListener("resize", () => {
    if (resizeQueued) return;
    resizeQueued = true;
    requestAnimationFrame(() => {
      resizeQueued = false;
      drawCharts();
      if (lastState) renderActivity(lastState.activity || []);
    });
  });

  // -------------------------------------------------------------- the form

  const form = $("sweep-form");
  const fields = ["particles", "steps", "seeds", "repeat", "threads", "priority", "dt", "width", "height"];

  function countList(text) {  // client-side preview only; the server decides
    let n = 0;
    const parts = text.split(",").map((p) => p.trim());
    if (parts.length > 1 && parts.some((p) => !p)) return null;  // "1,,2": an empty value
    for (const part of parts.filter(Boolean)) {
      const range = /^(\d+)\s*-\s*(\d+)$/.exec(part);
      if (range) {
        const a = Number(range[1]);
        const b = Number(range[2]);
        if (b < a) return null;
        n += b - a + 1;
      } else if (/^-?\d+$/.test(part)) {
        n += 1;
      } else {
        return null;
      }
    }
    return n || null;
  }

  function engines() {
    return [...form.querySelectorAll("input[name=engine]:checked")].map((i) => i.value);
  }

  function updatePreview() {
    const counts = [engines().length, ...["particles", "steps", "seeds"].map((f) => countList($(f).value))];
    const repeat = /^\d+$/.test($("repeat").value.trim()) ? Number($("repeat").value) : null;
    const node = $("sweep-preview");
    if (counts.some((c) => !c) || !repeat) {
      node.textContent = "Revise los valores del barrido.";
      return;
    }
    const total = counts.reduce((a, b) => a * b, 1) * repeat;
    node.replaceChildren(total === 1 ? "Se creará " : "Se crearán ", h("strong", { text: plural(total, "tarea", "tareas") }),
      ` (${counts.map(fmtInt).join(" × ")}${repeat > 1 ? ` × ${fmtInt(repeat)}` : ""})`);
  }

  function clearInvalid() {
    for (const f of fields) $(f).removeAttribute("aria-invalid");
    $("field-engines").removeAttribute("aria-invalid");
  }

  form.addEventListener("input", () => {
    updatePreview();
    clearInvalid();
  });

  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    clearInvalid();
    const message = $("sweep-message");
    const rawRepeat = $("repeat").value.trim();
    const rawThreads = $("threads").value.trim();
    const rawPriority = $("priority").value.trim();
    const body = {
      engines: engines(),
      particles: $("particles").value,
      steps: $("steps").value,
      seeds: $("seeds").value,
      repeat: /^\d+$/.test(rawRepeat) ? Number(rawRepeat) : rawRepeat,
      threads: /^\d+$/.test(rawThreads) ? Number(rawThreads) : rawThreads,
      priority: /^-?\d+$/.test(rawPriority) ? Number(rawPriority) : rawPriority || 0,
      dt: $("dt").value.trim(),  // the server reads "0,05" too
      width: $("width").value.trim(),  // the box: more particles need a bigger world
      height: $("height").value.trim(),
    };
    const button = $("sweep-submit");
    button.disabled = true;
    try {
      const res = await fetch("/api/sweeps", {
        method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
      });
      const data = await res.json().catch(() => ({}));
      if (res.ok) {
        const queued = `${data.count === 1 ? "1 tarea encolada" : `${fmtInt(data.count)} tareas encoladas`} en el lote ${data.batch}.`;
        // no worker answers: the tasks wait, and the user should know why; a coarse
        // time step: the tasks run as asked, but they miss collisions
        const advice = data.warnings || [];
        showMessage(message, data.warning || advice.length ? "warn" : "ok", data.warning ? `${queued} ${data.warning}` : queued);
        if (advice.length) message.append(h("ul", { class: "advice" }, ...advice.map((w) => h("li", { text: `Aviso: ${w}` }))));
      } else {
        showMessage(message, "error", data.error || `El servidor rechazó el barrido (HTTP ${res.status}).`);
        const target = data.field === "engines" ? $("field-engines") : fields.includes(data.field) ? $(data.field) : null;
        if (target) {
          target.setAttribute("aria-invalid", "true");
          if (target.focus && target.tagName === "INPUT") target.focus();
        }
      }
    } catch (err) {
      showMessage(message, "error", "No se pudo contactar con el servidor; el barrido no se ha enviado.");
    } finally {
      button.disabled = false;
    }
  });

  // ----------------------------------------------------------- the live link

  let source = null;
  let lastMessageAt = 0;
  let reconnectTimer = null;
  let retryDelay = 1000;

  function setConnection(kind, text) {
    const node = $("conn");
    node.className = `conn conn-${kind}`;
    setText($("conn-text"), text);
    node.dataset.state = kind;
    document.body.classList.toggle("is-down", kind === "down");
    $("stale").hidden = kind !== "down";
  }

  function alive() {
    lastMessageAt = Date.now();
    if ($("conn").dataset.state !== "live") {
      setConnection("live", "En directo");
      retryDelay = 1000;
      loadCharts();  // catch up with what happened while we were away
    }
    setText($("updated"), `Actualizado a las ${clock.format(new Date())}`);
  }

  function render(state) {
    lastState = state;
    clockOffset = state.server_time - Date.now() / 1000;
    renderSummary(state.summary);
    renderActivity(state.activity || []);
    renderWorkers(state.workers || [], state.summary);
    renderRecent(state.recent || []);
    if (state.summary.success !== lastSuccess) {
      lastSuccess = state.summary.success;
      loadCharts();
    }
    firstRender = false;
  }

  function scheduleReconnect() {
    if (reconnectTimer) return;
    reconnectTimer = setTimeout(() => { reconnectTimer = null; connect(); }, retryDelay);
    retryDelay = Math.min(retryDelay * 2, 10000);
  }

  function connect() {
    if (source) source.close();
    if ($("conn").dataset.state !== "down") setConnection("connecting", "Conectando…");
    source = new EventSource("/api/events");
    source.addEventListener("open", () => { lastMessageAt = Date.now(); });
    // the whole state on (re)connection, then only the sections that changed
    source.addEventListener("snapshot", (ev) => {
      alive();
      render(JSON.parse(ev.data));
    });
    source.addEventListener("update", (ev) => {
      alive();
      if (lastState) render({ ...lastState, ...JSON.parse(ev.data) });
    });
    source.addEventListener("heartbeat", () => alive());
    source.addEventListener("error", () => {
      // a serve protected by a token refuses an expired session: back to its login page
      fetch("/api/summary", { cache: "no-store" }).then((res) => { if (res.status === 401) location.reload(); },
        () => {});
      setConnection("down", "Sin conexión · reintentando…");
      // a CLOSED source will not retry by itself (e.g. the server answered an error)
      if (source.readyState === EventSource.CLOSED) scheduleReconnect();
    });
  }

  // A link that went silent (a proxy holding a dead socket) is closed and reopened.
  setInterval(() => {
    if (source && source.readyState === EventSource.OPEN && Date.now() - lastMessageAt > STALE_AFTER_MS) {
      setConnection("down", "Sin conexión · reintentando…");
      source.close();
      scheduleReconnect();
    }
    if (lastState) renderWorkers(lastState.workers || [], lastState.summary);  // keep "hace N s" current
  }, 1000);

  updatePreview();
  loadCharts();
  connect();
})();
