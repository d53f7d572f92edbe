// Draws the dashboard's charts from the JSON the page embeds (selectors.dashboard_stats).
(function () {
  "use strict";
  const data = JSON.parse(document.getElementById("dashboard-data").textContent);
  const bots = data.bots.map((b) => b.bot);
  const pct = (v) => `${Math.round(v * 100)}%`;
  const secs = (v) => `${Math.round(v * 100) / 100}s`;

  Charts.bar(document.getElementById("chart-messages"), {
    labels: data.days.map((d) => d.slice(5)),
    series: data.bots.map((b) => ({ name: b.bot, values: b.received_per_day })),
    stacked: true,
    width: 1000,
    integer: true, // counts: whole-number ticks
    format: String,
  });
  Charts.bar(document.getElementById("chart-latency"), {
    labels: bots,
    series: [
      { name: gettext("model p50"), values: data.bots.map((b) => b.model_p50), color: "#2563eb" },
      { name: gettext("model p95"), values: data.bots.map((b) => b.model_p95), color: "#93c5fd" },
      { name: gettext("overhead p50"), values: data.bots.map((b) => b.overhead_p50), color: "#f59e0b" },
      { name: gettext("overhead p95"), values: data.bots.map((b) => b.overhead_p95), color: "#fcd34d" },
    ],
    format: secs,
  });
  Charts.bar(document.getElementById("chart-tokens"), {
    labels: bots,
    series: [
      { name: gettext("prompt"), values: data.bots.map((b) => b.prompt_tokens) },
      { name: gettext("completion"), values: data.bots.map((b) => b.completion_tokens) },
    ],
    stacked: true,
    format: (v) => (v >= 1000 ? `${Math.round(v / 100) / 10}k` : String(Math.round(v))),
  });
  Charts.bar(document.getElementById("chart-cost"), {
    labels: bots,
    series: [{ name: gettext("cost"), values: data.bots.map((b) => b.cost), color: "#10b981" }],
  });
  Charts.bar(document.getElementById("chart-errors"), {
    labels: bots,
    series: [{ name: gettext("error rate"), values: data.bots.map((b) => b.error_rate), color: "#ef4444" }],
    max: Math.max(0.1, ...data.bots.map((b) => b.error_rate || 0)),
    format: pct,
  });
  Charts.bar(document.getElementById("chart-feedback"), {
    labels: bots,
    series: [{ name: gettext("helpful share"), values: data.bots.map((b) => b.helpful_ratio), color: "#8b5cf6" }],
    max: 1,
    format: pct,
  });
})();
