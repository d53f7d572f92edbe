// Tiny SVG bar charts (grouped or stacked), no dependencies: window.Charts.bar(element, spec).
// spec = {labels: [...], series: [{name, values: [...]}], stacked: bool, format: (v) => string,
//         integer: bool (counts: every tick a whole number)}
(function () {
  "use strict";
  const NS = "http://www.w3.org/2000/svg";
  const COLORS = ["#2563eb", "#f59e0b", "#10b981", "#ef4444", "#8b5cf6", "#0ea5e9", "#84cc16", "#ec4899"];

  function el(name, attrs, text) {
    const node = document.createElementNS(NS, name);
    for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, value);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function niceMax(value) {
    if (!(value > 0)) return 1;
    const power = Math.pow(10, Math.floor(Math.log10(value)));
    for (const step of [1, 2, 2.5, 5, 10]) if (step * power >= value) return step * power;
    return 10 * power;
  }

  const TICKS = 4; // intervals on the value axis

  // The smallest whole-number step from 1, 2, 5 × 10^k whose TICKS steps reach `value`.
  function integerMax(value) {
    const wanted = Math.max(1, Math.ceil(value / TICKS));
    const power = Math.pow(10, Math.floor(Math.log10(wanted)));
    for (const step of [1, 2, 5, 10]) if (step * power >= wanted) return step * power * TICKS;
    return 10 * power * TICKS;
  }

  function bar(container, spec) {
    const width = spec.width || 640, height = spec.height || 220;
    const margin = { top: 10, right: 10, bottom: 42, left: 48 };
    const plotW = width - margin.left - margin.right, plotH = height - margin.top - margin.bottom;
    const format = spec.format || ((v) => String(Math.round(v * 100) / 100));
    const labels = spec.labels, series = spec.series.filter((s) => s.values.some((v) => v !== null));
    const svg = el("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", class: "chart__svg" });
    if (!labels.length || !series.length) {
      svg.appendChild(el("text", { x: width / 2, y: height / 2, "text-anchor": "middle", class: "chart__empty" }, gettext("No data yet")));
      container.replaceChildren(svg);
      return svg;
    }
    const totals = labels.map((_, i) => spec.stacked
      ? series.reduce((sum, s) => sum + (s.values[i] || 0), 0)
      : Math.max(...series.map((s) => s.values[i] || 0)));
    const highest = Math.max(...totals);
    const max = spec.max || (spec.integer ? integerMax(highest) : niceMax(highest));
    const y = (v) => margin.top + plotH - (v / max) * plotH;
    for (let t = 0; t <= TICKS; t++) {
      const value = (max * t) / TICKS;
      svg.appendChild(el("line", { x1: margin.left, x2: width - margin.right, y1: y(value), y2: y(value), class: "chart__grid" }));
      svg.appendChild(el("text", { x: margin.left - 6, y: y(value) + 4, "text-anchor": "end", class: "chart__tick" }, format(value)));
    }
    const band = plotW / labels.length;
    const inner = band * 0.8;
    const every = Math.ceil(labels.length / 12);
    labels.forEach((label, i) => {
      const x0 = margin.left + i * band + (band - inner) / 2;
      let stackTop = 0;
      series.forEach((s, k) => {
        const value = s.values[i];
        if (value === null || value === undefined) return;
        let x = x0, w = inner, top, h;
        if (spec.stacked) { top = y(stackTop + value); h = y(stackTop) - top; stackTop += value; }
        else { w = inner / series.length; x = x0 + k * w; top = y(value); h = y(0) - top; }
        const rect = el("rect", { x, y: top, width: Math.max(1, w - 1), height: Math.max(0, h), fill: s.color || COLORS[k % COLORS.length] });
        rect.appendChild(el("title", {}, `${s.name} · ${label}: ${format(value)}`));
        svg.appendChild(rect);
      });
      if (i % every === 0) {
        svg.appendChild(el("text", { x: x0 + inner / 2, y: height - margin.bottom + 14, "text-anchor": "middle", class: "chart__tick" }, label));
      }
    });
    let legendX = margin.left;
    series.forEach((s, k) => {
      svg.appendChild(el("rect", { x: legendX, y: height - 16, width: 10, height: 10, fill: s.color || COLORS[k % COLORS.length] }));
      svg.appendChild(el("text", { x: legendX + 14, y: height - 7, class: "chart__legend" }, s.name));
      // Wide (CJK) characters take about twice the width of Latin ones.
      legendX += 24 + [...s.name].reduce((width, c) => width + (c.codePointAt(0) >= 0x2e80 ? 13 : 7), 0);
    });
    container.replaceChildren(svg);
    return svg;
  }

  window.Charts = { bar, COLORS };
})();
