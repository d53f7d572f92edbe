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

  function render(message) {
    const li = bubble(message.id, message.author);
    const streaming = message.status === "processing";
    if (!streaming || message.text) li.textContent = message.text;
    li.classList.toggle("msg--pending", streaming && message.direction === "out");
    li.classList.toggle("msg--failed", message.status === "failed" && message.direction === "out");
    li.dataset.status = message.status;
    scroll();
  }

  function connect() {
    socket = new WebSocket(url);
    socket.addEventListener("open", () => {
      state.textContent = "Online";
      state.classList.remove("is-down");
      retryDelay = 500;
      for (const [id, text] of unsent) socket.send(JSON.stringify({ type: "message", id, text }));
    });
    socket.addEventListener("close", (event) => {
      state.classList.add("is-down");
      if (event.code === 4403) { state.textContent = "This chat is not available."; return; }
      state.textContent = "Reconnecting…";
      setTimeout(connect, retryDelay);
      retryDelay = Math.min(retryDelay * 2, 10000);
    });
    socket.addEventListener("message", (raw) => {
      const event = JSON.parse(raw.data);
      if (event.type === "history") event.messages.forEach(render);
      else if (event.type === "message") render(event.message);
      else if (event.type === "token") {
        const li = bubbles.get(event.message_id);
        if (li) { li.textContent += event.delta; scroll(); }
      } else if (event.type === "ack") {
        unsent.delete(event.id);
        const local = bubbles.get(`local-${event.id}`);
        if (local) { local.remove(); bubbles.delete(`local-${event.id}`); }
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
