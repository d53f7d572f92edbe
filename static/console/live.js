// The live list: rows come and go over /ws/console/ without a reload.
(function () {
  "use strict";
  const table = document.getElementById("conversations");
  const body = table.querySelector("tbody");
  const state = document.getElementById("live-state");
  const filterBot = table.dataset.bot;
  const filterPlatform = table.dataset.platform;
  const filterRating = table.dataset.rating;
  const base = table.dataset.urlBase;
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  let retryDelay = 500;
  // Names in the page's language (the server renders them; see views.console_labels).
  const labels = JSON.parse(document.getElementById("console-labels").textContent);

  function cell(text, className) {
    const td = document.createElement("td");
    if (className) td.className = className;
    td.textContent = text;
    return td;
  }

  function feedbackCell(row) {
    const td = cell("", "feedback");
    for (const [count, sign, kind, title] of [[row.helpful, "+", "up", gettext("helpful")], [row.not_helpful, "−", "down", gettext("not helpful")]]) {
      if (!count) continue;
      const span = document.createElement("span");
      span.className = `fb fb--${kind}`;
      span.title = title;
      span.textContent = `${sign}${count}`;
      td.append(span, " ");
    }
    return td;
  }

  function render(row) {
    if ((filterBot && row.bot_id !== filterBot) || (filterPlatform && row.platform !== filterPlatform)) return;
    if ((filterRating === "helpful" && !row.helpful) || (filterRating === "not_helpful" && !row.not_helpful)) return;
    const empty = body.querySelector("tr.empty");
    if (empty) empty.remove();
    let tr = body.querySelector(`tr[data-id="${row.id}"]`);
    if (!tr) { tr = document.createElement("tr"); tr.dataset.id = row.id; }
    tr.dataset.state = row.state;
    tr.replaceChildren(
      cell(row.last_activity_at.slice(0, 19).replace("T", " ")),
      cell(row.bot),
      cell(labels.platforms[row.platform] || row.platform_label),
    );
    const user = cell("");
    const link = document.createElement("a");
    link.href = `${base}conversations/${row.id}/`;
    link.textContent = row.user;
    user.appendChild(link);
    tr.appendChild(user);
    const last = cell("", "last");
    if (row.last_author) {
      const who = document.createElement("span");
      who.className = "who";
      who.dataset.author = row.last_author;
      who.textContent = `${labels.authors[row.last_author] || row.last_author}: `;
      last.appendChild(who);
    }
    last.appendChild(document.createTextNode(row.last_text.length > 120 ? row.last_text.slice(0, 119) + "…" : row.last_text));
    tr.appendChild(last);
    tr.appendChild(feedbackCell(row));
    const stateCell = cell("");
    const badge = document.createElement("span");
    badge.className = `state state--${row.state}`;
    const stateLabel = labels.states[row.state] || row.state_label;
    badge.textContent = stateLabel + (row.handled_by ? ` · ${row.handled_by}` : "");
    stateCell.appendChild(badge);
    tr.appendChild(stateCell);
    // Newest activity first: a changed row moves to the top.
    body.prepend(tr);
    tr.classList.remove("flash");
    void tr.offsetWidth;
    tr.classList.add("flash");
  }

  function connect() {
    const socket = new WebSocket(`${scheme}://${location.host}/ws/console/`);
    socket.addEventListener("open", () => { state.textContent = gettext("Live"); state.classList.remove("is-down"); retryDelay = 500; });
    socket.addEventListener("close", (event) => {
      state.classList.add("is-down");
      if (event.code === 4403) { state.textContent = gettext("Not allowed."); return; }
      state.textContent = gettext("Reconnecting…");
      setTimeout(connect, retryDelay);
      retryDelay = Math.min(retryDelay * 2, 10000);
    });
    socket.addEventListener("message", (raw) => {
      const event = JSON.parse(raw.data);
      if (event.type === "conversation") render(event.conversation);
    });
  }
  connect();
})();
