// The web chat: one websocket, messages rendered by id, answers streamed token by token.
(function () {
  "use strict";
  const root = document.querySelector(".chat");
  const log = document.getElementById("log");
  const form = document.getElementById("form");
  const input = document.getElementById("text");
  const state = document.getElementById("state");
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const url = `${scheme}://${location.host}/ws/chat/${root.dataset.botId}/`;
  const bubbles = new Map(); // message id -> <li>
  const unsent = new Map(); // client id -> text, resent after a reconnect
  let socket = null;
  let retryDelay = 500;

  function bubble(id, author) {
    let li = bubbles.get(id);
    if (!li) {
      li = document.createElement("li");
      li.className = `msg msg--${author}`;
      li.dataset.id = id;
      log.appendChild(li);
      bubbles.set(id, li);
    }
    return li;
  }

  function scroll() { log.scrollTop = log.scrollHeight; }

  function textOf(li) {
    let span = li.querySelector(".msg__text");
    if (!span) {
      span = document.createElement("span");
      span.className = "msg__text";
      li.prepend(span);
    }
    return span;
  }

  function send(frame) {
    if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(frame));
  }

  // Helpful / not helpful / regenerate under each delivered model answer.
  function addActions(li, messageId) {
    if (li.querySelector(".msg__actions")) return;
    const actions = document.createElement("span");
    actions.className = "msg__actions";
    for (const [rating, label, title] of [["helpful", "👍", gettext("Helpful")], ["not_helpful", "👎", gettext("Not helpful")]]) {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "msg__action";
      button.dataset.rating = rating;
      button.title = title;
      button.setAttribute("aria-label", title);
      button.textContent = label;
      button.addEventListener("click", () => send({ type: "feedback", message_id: messageId, rating }));
      actions.appendChild(button);
    }
    const again = document.createElement("button");
    again.type = "button";
    again.className = "msg__action";
    again.dataset.action = "regenerate";
    again.title = again.ariaLabel = gettext("Write a new answer");
    again.textContent = "↻";
    again.addEventListener("click", () => send({ type: "regenerate", message_id: messageId }));
    actions.appendChild(again);
    li.appendChild(actions);
  }

  function render(message) {
    const li = bubble(message.id, message.author);
    const streaming = message.status === "processing";
    if (!streaming || message.text) textOf(li).textContent = message.text;
    li.classList.toggle("msg--pending", streaming && message.direction === "out");
    li.classList.toggle("msg--failed", message.status === "failed" && message.direction === "out");
    li.dataset.status = message.status;
    if (message.author === "assistant" && message.status === "delivered") addActions(li, message.id);
    scroll();
  }

  function connect() {
    socket = new WebSocket(url);
    socket.addEventListener("open", () => {
      state.textContent = gettext("Online");
      state.classList.remove("is-down");
      retryDelay = 500;
      for (const [id, text] of unsent) socket.send(JSON.stringify({ type: "message", id, text }));
    });
    socket.addEventListener("close", (event) => {
      state.classList.add("is-down");
      if (event.code === 4403) { state.textContent = gettext("This chat is not available."); return; }
      state.textContent = gettext("Reconnecting…");
      setTimeout(connect, retryDelay);
      retryDelay = Math.min(retryDelay * 2, 10000);
    });
    socket.addEventListener("message", (raw) => {
      const event = JSON.parse(raw.data);
      if (event.type === "history") event.messages.forEach(render);
      else if (event.type === "message") render(event.message);
      else if (event.type === "token") {
        const li = bubbles.get(event.message_id);
        if (li) { textOf(li).textContent += event.delta; scroll(); }
      } else if (event.type === "ack") {
        unsent.delete(event.id);
        const local = bubbles.get(`local-${event.id}`);
        if (local) { local.remove(); bubbles.delete(`local-${event.id}`); }
      } else if (event.type === "feedback_ok") {
        const li = bubbles.get(event.message_id);
        if (li) li.querySelectorAll("[data-rating]").forEach((b) => b.classList.toggle("is-chosen", b.dataset.rating === event.rating));
      } else if (event.type === "error") {
        state.textContent = event.error;
      }
    });
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    const id = (crypto.randomUUID ? crypto.randomUUID() : String(Date.now() + Math.random())).slice(0, 64);
    unsent.set(id, text);
    // Shown at once; replaced by the stored message when the server echoes it.
    render({ id: `local-${id}`, author: "user", direction: "in", status: "received", text });
    if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ type: "message", id, text }));
    input.value = "";
    input.focus();
  });

  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey) { event.preventDefault(); form.requestSubmit(); }
  });

  connect();
})();
