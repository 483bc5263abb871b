// gancore run report (gancore/_report.py): SVG curves with hover readout, log-scale toggle and
// drag-to-zoom, stage boundaries, and the sample-grid sliders. No libraries, no network.
"use strict";
(function () {
  const data = JSON.parse(document.getElementById("report-data").textContent);
  const NS = "http://www.w3.org/2000/svg";
  const COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
                   "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];
  const DASHES = ["", "6 3", "2 3", "8 3 2 3", "1 2"];
  const compare = data.runs.length > 1;

  function el(tag, attrs, parent) {
    const node = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (parent) parent.appendChild(node);
    return node;
  }

  function niceTicks(lo, hi, count) {
    if (!(hi > lo)) return [lo];
    const raw = (hi - lo) / count;
    const mag = Math.pow(10, Math.floor(Math.log10(raw)));
    const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) || raw;
    const ticks = [];
    for (let t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) ticks.push(t);
    return ticks;
  }

  // Ticks of a log axis spanning 10^lo to 10^hi: decades, or 1-2-5 or 1..9 within short spans.
  function logTicks(lo, hi) {
    const span = hi - lo;
    const mults = span > 2.5 ? [1] : span > 1 ? [1, 2, 5] : [1, 2, 3, 4, 5, 6, 7, 8, 9];
    let ticks = [];
    for (let k = Math.floor(lo); k <= Math.ceil(hi); k++) {
      for (const m of mults) {
        const v = m * Math.pow(10, k);
        if (Math.log10(v) >= lo && Math.log10(v) <= hi) ticks.push(v);
      }
    }
    if (ticks.length > 8) {
      const every = Math.ceil(ticks.length / 8);
      ticks = ticks.filter((_, i) => i % every === 0);
    }
    return ticks;
  }

  function fmt(v) {
    if (v === 0) return "0";
    const a = Math.abs(v);
    if (a >= 1e5 || a < 1e-3) return v.toExponential(2);
    return Number(v.toPrecision(4)).toString();
  }

  // The lines of a panel: one per (run, key) that has values.
  function linesOf(panel) {
    const lines = [];
    data.runs.forEach((run, r) => {
      panel.keys.forEach((key, k) => {
        const s = run.series[key];
        if (!s || !s[0].length) return;
        lines.push({
          label: compare ? run.name + ": " + key : key,
          xs: s[0], ys: s[1],
          colour: COLOURS[(compare ? r : k) % COLOURS.length],
          dash: DASHES[(compare ? k : 0) % DASHES.length],
        });
      });
    });
    return lines;
  }

  function chart(panel, parent) {
    const box = document.createElement("div");
    box.className = "chart";
    box.dataset.group = panel.group;
    const head = document.createElement("div");
    head.className = "chart-head";
    const title = document.createElement("span");
    title.className = "title";
    title.textContent = panel.group;
    const logLabel = document.createElement("label");
    const logBox = document.createElement("input");
    logBox.type = "checkbox";
    logBox.checked = panel.log;
    logLabel.append(logBox, " log");
    const reset = document.createElement("button");
    reset.textContent = "reset zoom";
    reset.type = "button";
    head.append(title, logLabel, reset);
    const svg = el("svg", { role: "img", "aria-label": "curves of " + panel.group });
    const legend = document.createElement("div");
    legend.className = "legend";
    const readout = document.createElement("div");
    readout.className = "readout";
    box.append(head, svg, legend, readout);
    parent.appendChild(box);

    const lines = linesOf(panel);
    for (const line of lines) {
      const item = document.createElement("span");
      item.textContent = line.label;
      item.style.setProperty("--colour", line.colour);
      item.style.setProperty("--dash", line.dash ? "dashed" : "solid");
      legend.appendChild(item);
    }
    const full = [Infinity, -Infinity];
    for (const l of lines) {
      for (const x of l.xs) { full[0] = Math.min(full[0], x); full[1] = Math.max(full[1], x); }
    }
    if (!lines.length) { full[0] = 0; full[1] = 1; }
    if (full[0] === full[1]) { full[0] -= 1; full[1] += 1; }
    let view = full.slice();
    const M = { left: 62, right: 14, top: 10, bottom: 26 };
    let geometry = null;

    function draw() {
      while (svg.firstChild) svg.removeChild(svg.firstChild);
      const width = svg.clientWidth || 900, height = svg.clientHeight || 260;
      svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
      const useLog = logBox.checked;
      let lo = Infinity, hi = -Infinity;  // the values in view (positive ones on a log axis)
      for (const l of lines) {
        for (let i = 0; i < l.xs.length; i++) {
          if (l.xs[i] >= view[0] && l.xs[i] <= view[1] && (!useLog || l.ys[i] > 0)) {
            lo = Math.min(lo, l.ys[i]); hi = Math.max(hi, l.ys[i]);
          }
        }
      }
      if (lo > hi) { lo = useLog ? 0.1 : 0; hi = 1; }
      const ty = useLog ? (v) => Math.log10(v) : (v) => v;
      lo = ty(lo); hi = ty(hi);
      if (hi === lo) { lo -= 0.5; hi += 0.5; }
      const pad = (hi - lo) * 0.05; lo -= pad; hi += pad;
      const px = (x) => M.left + (x - view[0]) / (view[1] - view[0]) * (width - M.left - M.right);
      const py = (y) => height - M.bottom - (ty(y) - lo) / (hi - lo) * (height - M.top - M.bottom);
      geometry = { width, height, px, useLog };
      const clipId = "clip-" + panel.group.replace(/[^A-Za-z0-9]/g, "_") + Math.random().toString(36).slice(2);
      const clip = el("clipPath", { id: clipId }, el("defs", {}, svg));
      el("rect", { x: M.left, y: M.top, width: width - M.left - M.right, height: height - M.top - M.bottom }, clip);
      // axes and grid
      for (const t of niceTicks(view[0], view[1], 8)) {
        el("line", { x1: px(t), x2: px(t), y1: M.top, y2: height - M.bottom, stroke: "#eee" }, svg);
        el("text", { x: px(t), y: height - 8, "text-anchor": "middle" }, svg).textContent = fmt(t);
      }
      const yTicks = useLog ? logTicks(lo, hi) : niceTicks(lo, hi, 5);
      for (const t of yTicks) {
        const y = py(t);
        if (!(y >= M.top - 1 && y <= height - M.bottom + 1)) continue;
        el("line", { x1: M.left, x2: width - M.right, y1: y, y2: y, stroke: "#eee" }, svg);
        el("text", { x: M.left - 6, y: y + 4, "text-anchor": "end" }, svg).textContent = fmt(t);
      }
      el("rect", { x: M.left, y: M.top, width: width - M.left - M.right, height: height - M.top - M.bottom,
                   fill: "none", stroke: "#999" }, svg);
      const g = el("g", { "clip-path": `url(#${clipId})` }, svg);
      // stage boundaries: dashed vertical lines, named
      data.runs.forEach((run, r) => {
        for (const stage of run.stages) {
          if (!(stage.start > 0) || stage.start < view[0] || stage.start > view[1]) continue;
          const x = px(stage.start);
          el("line", { x1: x, x2: x, y1: M.top, y2: height - M.bottom, class: "stage",
                       stroke: compare ? COLOURS[r % COLOURS.length] : "#888", "stroke-dasharray": "4 4" }, g);
          el("text", { x: x + 3, y: M.top + 12 }, g).textContent = stage.name;
        }
      });
      for (const l of lines) {
        let d = "";
        let pen = false;
        for (let i = 0; i < l.xs.length; i++) {
          if (useLog && !(l.ys[i] > 0)) { pen = false; continue; }
          d += (pen ? "L" : "M") + px(l.xs[i]).toFixed(1) + "," + py(l.ys[i]).toFixed(1);
          pen = true;
        }
        el("path", { d, fill: "none", stroke: l.colour, "stroke-width": 1.6,
                     "stroke-dasharray": l.dash, class: "curve" }, g);
        if (l.xs.length < 30) {
          for (let i = 0; i < l.xs.length; i++) {
            if (useLog && !(l.ys[i] > 0)) continue;
            el("circle", { cx: px(l.xs[i]), cy: py(l.ys[i]), r: 2.5, fill: l.colour }, g);
          }
        }
      }
      geometry.cursor = el("line", { y1: M.top, y2: height - M.bottom, stroke: "#444", visibility: "hidden" }, svg);
      geometry.band = el("rect", { y: M.top, height: height - M.top - M.bottom, fill: "rgba(31,119,180,0.15)",
                                   visibility: "hidden" }, svg);
    }

    function stepAt(event) {
      const rect = svg.getBoundingClientRect();
      const x = (event.clientX - rect.left) * (geometry.width / rect.width);
      const t = (x - M.left) / (geometry.width - M.left - M.right);
      return { x, step: view[0] + Math.min(1, Math.max(0, t)) * (view[1] - view[0]) };
    }

    let dragFrom = null;
    svg.addEventListener("mousemove", (event) => {
      const at = stepAt(event);
      geometry.cursor.setAttribute("x1", at.x);
      geometry.cursor.setAttribute("x2", at.x);
      geometry.cursor.setAttribute("visibility", "visible");
      const parts = [];
      for (const l of lines) {
        let best = -1;
        for (let i = 0; i < l.xs.length; i++) {
          if (best < 0 || Math.abs(l.xs[i] - at.step) < Math.abs(l.xs[best] - at.step)) best = i;
        }
        if (best >= 0) parts.push(`${l.label} = ${fmt(l.ys[best])} (step ${l.xs[best]})`);
      }
      readout.textContent = parts.join("   ");
      if (dragFrom !== null) {
        const a = Math.min(dragFrom.x, at.x), b = Math.max(dragFrom.x, at.x);
        geometry.band.setAttribute("x", a);
        geometry.band.setAttribute("width", b - a);
        geometry.band.setAttribute("visibility", "visible");
      }
    });
    svg.addEventListener("mouseleave", () => {
      if (geometry.cursor) geometry.cursor.setAttribute("visibility", "hidden");
    });
    svg.addEventListener("mousedown", (event) => { dragFrom = stepAt(event); event.preventDefault(); });
    window.addEventListener("mouseup", (event) => {
      if (dragFrom === null) return;
      const to = stepAt(event);
      const from = dragFrom;
      dragFrom = null;
      if (Math.abs(to.x - from.x) > 5) {
        view = [Math.min(from.step, to.step), Math.max(from.step, to.step)];
        draw();
      } else if (geometry.band) {
        geometry.band.setAttribute("visibility", "hidden");
      }
    });
    svg.addEventListener("dblclick", () => { view = full.slice(); draw(); });
    reset.addEventListener("click", () => { view = full.slice(); draw(); });
    logBox.addEventListener("change", draw);
    window.addEventListener("resize", draw);
    draw();
  }

  const charts = document.getElementById("charts");
  if (!data.panels.length) {
    charts.textContent = "Nothing logged yet.";
  }
  for (const panel of data.panels) chart(panel, charts);

  // Sample grids: each run's slider shows one of its grids.
  data.runs.forEach((run, r) => {
    const slider = document.getElementById("slider-" + r);
    if (!slider) return;
    const image = document.getElementById("grid-" + r);
    const caption = document.getElementById("grid-caption-" + r);
    const label = document.getElementById("slider-label-" + r);
    slider.addEventListener("input", () => {
      const grid = run.grids[Number(slider.value)];
      image.src = grid.src;
      caption.textContent = "generated, step " + grid.step;
      label.textContent = (Number(slider.value) + 1) + " / " + run.grids.length;
    });
  });
})();
