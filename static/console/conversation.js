// One conversation, live: messages and streamed tokens over /ws/console/conversations/<id>/,
// takeover / hand back / staff replies through POST endpoints (their effects come back live).
(function () {
  "use strict";
  const section = document.getElementById("conversation");
  const id = section.dataset.id;
  const me = section.dataset.me;
  const transcript = document.getElementById("transcript");
  const stateBadge = document.getElementById("state");
  const live = document.getElementById("live-state");
  const notice = document.getElementById("notice");
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const items = new Map();
  // Names in the page's language (the server renders them; see views.console_labels).
  const labels = JSON.parse(document.getElementById("console-labels").textContent);
  let retryDelay = 500;

  transcript.querySelectorAll("li[data-id]").forEach((li) => items.set(li.dataset.id, li));

  function item(message) {
    const key = String(message.id);
    let li = items.get(key);
    if (!li) {
      li = document.createElement("li");
      li.dataset.id = key;
      li.innerHTML = '<span class="msg__meta"></span><span class="msg__text"></span>';
      transcript.appendChild(li);
      items.set(key, li);
    }
    return li;
  }

  function render(message) {
    const li = item(message);
    li.className = `msg msg--${message.author}`;
    const streaming = message.status === "processing" && message.direction === "out";
    li.classList.toggle("msg--pending", streaming);
    li.classList.toggle("msg--failed", message.status === "failed");
    li.dataset.status = message.status;
    const author = labels.authors[message.author] || message.author;
    li.querySelector(".msg__meta").textContent = `${author} · ${labels.statuses[message.status] || message.status}`;
    const text = li.querySelector(".msg__text");
    if (!streaming || message.text) text.textContent = message.text;
    if (message.tool_calls) renderToolCalls(li, message.tool_calls);
    scrollDown();
  }

  // The tools the model called for an answer (staff only: the snapshot and `tool_calls`
  // events), like the server-rendered console/_tool_calls.html.
  function renderToolCalls(li, calls) {
    let box = li.querySelector(".tool-calls");
    if (!calls.length) { if (box) box.remove(); return; }
    if (!box) {
      box = document.createElement("details");
      box.className = "tool-calls";
      box.open = true;
      li.appendChild(box);
    }
    box.textContent = "";
    const summary = document.createElement("summary");
    summary.textContent = interpolate(ngettext("%s tool call", "%s tool calls", calls.length), [calls.length]);
    const list = document.createElement("ol");
    for (const call of calls) {
      const entry = document.createElement("li");
      entry.className = call.error ? "tool-call tool-call--failed" : "tool-call";
      entry.dataset.tool = call.name;
      const code = document.createElement("code");
      code.className = "tool-call__call";
      code.textContent = `${call.name}(${call.arguments})`;
      const outcome = document.createElement("span");
      outcome.className = call.error ? "tool-call__error" : "tool-call__result";
      outcome.textContent = call.error ? interpolate(gettext("failed: %s"), [call.error]) : `→ ${call.result}`;
      const meta = document.createElement("span");
      meta.className = "tool-call__meta";
      meta.textContent = interpolate(gettext("%(ms)s ms · asked by %(profile)s"), { ms: call.ms, profile: call.profile }, true);
      entry.append(code, " ", outcome, " ", meta);
      list.appendChild(entry);
    }
    box.append(summary, list);
  }

  function scrollDown() { window.scrollTo(0, document.body.scrollHeight); }

  function setState(summary) {
    section.dataset.state = summary.state;
    section.dataset.handledBy = summary.handled_by;
    stateBadge.className = `state state--${summary.state}`;
    const stateLabel = labels.states[summary.state] || summary.state_label;
    stateBadge.textContent = stateLabel + (summary.handled_by ? ` · ${summary.handled_by}` : "");
    const takeover = document.getElementById("takeover");
    if (!takeover) return;
    const mine = summary.handled_by === me;
    document.getElementById("take-over-form").hidden = mine;
    document.getElementById("hand-back-form").hidden = !["taken_over", "waiting"].includes(summary.state);
    document.getElementById("reply-form").hidden = !mine;
    const takeOverButton = document.getElementById("take-over");
    takeOverButton.textContent = summary.handled_by && !mine
      ? interpolate(gettext("Take over from %s"), [summary.handled_by])
      : gettext("Take over");
  }

  setState({ state: section.dataset.state, handled_by: section.dataset.handledBy, state_label: stateBadge.textContent.split(" · ")[0] });

  function connect() {
    const socket = new WebSocket(`${scheme}://${location.host}/ws/console/conversations/${id}/`);
    socket.addEventListener("open", () => { live.textContent = gettext("Live"); live.classList.remove("is-down"); retryDelay = 500; });
    socket.addEventListener("close", (event) => {
      live.classList.add("is-down");
      if (event.code === 4403) { live.textContent = gettext("Not allowed."); return; }
      if (event.code === 4404) { live.textContent = gettext("No such conversation."); return; }
      live.textContent = gettext("Reconnecting…");
      setTimeout(connect, retryDelay);
      retryDelay = Math.min(retryDelay * 2, 10000);
    });
    socket.addEventListener("message", (raw) => {
      const event = JSON.parse(raw.data);
      if (event.type === "snapshot") { event.messages.forEach(render); setState(event.conversation); }
      else if (event.type === "message") render(event.message);
      else if (event.type === "conversation") setState(event.conversation);
      else if (event.type === "tool_calls") {
        const li = items.get(String(event.message_id));
        if (li) renderToolCalls(li, event.tool_calls);
      }
      else if (event.type === "token") {
        const li = items.get(String(event.message_id));
        if (li) { li.querySelector(".msg__text").textContent += event.delta; scrollDown(); }
      }
    });
  }

  async function post(form) {
    notice.textContent = "";
    const response = await fetch(form.action, {
      method: "POST",
      body: new FormData(form),
      headers: { Accept: "application/json" },
      credentials: "same-origin",
    });
    let body = {};
    try { body = await response.json(); } catch (error) { body = { ok: false, error: `HTTP ${response.status}` }; }
    if (!response.ok || !body.ok) notice.textContent = body.error || `HTTP ${response.status}`;
    return body;
  }

  for (const formId of ["take-over-form", "hand-back-form", "reply-form"]) {
    const form = document.getElementById(formId);
    if (!form) continue;
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const body = await post(form);
      if (formId === "reply-form" && body.ok) form.reset();
    });
  }
  const replyText = document.getElementById("reply-text");
  if (replyText) {
    replyText.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey) { event.preventDefault(); document.getElementById("reply-form").requestSubmit(); }
    });
  }
  connect();
})();
