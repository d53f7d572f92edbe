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
  // Conversations handed off to staff that nobody has taken yet (ids), kept up to date by
  // the summaries and hand-off notices below; the badge in the navigation counts them.
  const waiting = new Set(JSON.parse(document.getElementById("console-waiting").textContent));
  const badge = document.getElementById("waiting-badge");
  const handoffs = document.getElementById("handoff-list");
  const enableNotifications = document.getElementById("enable-notifications");
  const title = document.title;
  let audio = null;

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

  function updateWaiting() {
    const count = waiting.size;
    badge.hidden = count === 0;
    badge.textContent = interpolate(ngettext("%s waiting", "%s waiting", count), [count]);
    document.title = count ? `(${count}) ${title}` : title;
  }

  function track(row) {
    // Once someone takes the conversation (or hands it back), nobody waits any more.
    if (row.state === "waiting") { waiting.add(row.id); return; }
    waiting.delete(row.id);
    const notice = handoffs.querySelector(`li[data-id="${row.id}"]`);
    if (notice) notice.remove();
  }

  function chime() {
    // A short tone made on the spot (no sound file); browsers allow it once the page was used.
    try {
      const Context = window.AudioContext || window.webkitAudioContext;
      if (!Context) return;
      audio = audio || new Context();
      const tone = audio.createOscillator();
      const volume = audio.createGain();
      tone.frequency.value = 880;
      volume.gain.setValueAtTime(0.12, audio.currentTime);
      volume.gain.exponentialRampToValueAtTime(0.001, audio.currentTime + 0.5);
      tone.connect(volume).connect(audio.destination);
      tone.start();
      tone.stop(audio.currentTime + 0.5);
    } catch (error) { /* the notice on the page is what counts */ }
  }

  function handoff(event) {
    waiting.add(event.conversation_id);
    updateWaiting();
    const link = `${base}conversations/${event.conversation_id}/`;
    let li = handoffs.querySelector(`li[data-id="${event.conversation_id}"]`);
    if (!li) { li = document.createElement("li"); li.className = "handoff"; li.dataset.id = event.conversation_id; }
    const what = document.createElement("span");
    what.className = "handoff__what";
    const headline = interpolate(gettext("%(user)s on %(bot)s asks for staff"), { user: event.user, bot: event.bot }, true);
    what.append(document.createElement("strong"));
    what.firstChild.textContent = headline;
    if (event.rule) what.append(" · ", interpolate(gettext("rule “%(rule)s”"), { rule: event.rule }, true));
    if (event.text) {
      const said = document.createElement("span");
      said.className = "handoff__text";
      said.textContent = ` — “${event.text}”`;
      what.append(said);
    }
    const open = document.createElement("a");
    open.href = link;
    open.textContent = gettext("Open");
    const dismiss = document.createElement("button");
    dismiss.type = "button";
    dismiss.textContent = "×";
    dismiss.title = gettext("Dismiss");
    dismiss.setAttribute("aria-label", gettext("Dismiss"));
    dismiss.addEventListener("click", () => li.remove());
    li.replaceChildren(what, open, dismiss);
    handoffs.prepend(li);
    chime();
    if ("Notification" in window && Notification.permission === "granted" && document.hidden) {
      const desktop = new Notification(headline, { body: event.text, tag: `handoff-${event.conversation_id}` });
      desktop.addEventListener("click", () => { window.focus(); location.href = link; });
    }
  }

  if ("Notification" in window && Notification.permission === "default") {
    enableNotifications.hidden = false;
    enableNotifications.addEventListener("click", async () => {
      await Notification.requestPermission();
      enableNotifications.hidden = true;
    });
  }
  updateWaiting();

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
      if (event.type === "conversation") { track(event.conversation); updateWaiting(); render(event.conversation); }
      else if (event.type === "handoff") handoff(event);
    });
  }
  connect();
})();
