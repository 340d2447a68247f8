// sessionctl tablet UI: sign-in, pairing, clinic overview, scene picker, the running session.
//
// Routes (location.hash): #/login, #/pair, #/rooms (overview), #/rooms/<id> (one room).
// The server is the source of truth: every state message replaces the view; between messages
// the clock display ticks locally from the moment the view arrived.

import { api, ApiError, Kick, NetworkError, newCmdId, sendCommand, transient } from "./api.js";
import { LiveLink } from "./live.js";

const EXTEND_SECONDS = 300;
const PANIC_HOLD_MS = 1500;
const ME_POLL_MS = 30000;
const EXPIRY_WARN_S = 120;
const STATION_KEY = "sessionctl.nurse-station";
const DEVICE_KEY = "sessionctl.device"; // last pairing seen, for the panic when unreachable
const RETRY_MIN_MS = 1000;
const RETRY_MAX_MS = 10000;
const ACTIVE = new Set(["running", "paused", "holding"]);

const $ = (id) => document.getElementById(id);

const S = {
  staff: null,
  paired: null, // room this tablet is paired with, or null (nurse station)
  roomId: null,
  view: null,
  viewAt: 0, // performance.now() when the view arrived
  scenes: [],
  selected: null,
  link: null,
  linkUp: false,
  forbidden: false,
  pending: new Map(), // control key -> cmd_id of the intent in flight
  kicks: new Map(), // control key -> Kick that retries that intent at once
  unreached: false, // the room's first view has not arrived for lack of a connection
  overviewLinks: [],
  expiresIn: null,
  expiresAt: 0,
  device: null, // {room, room_name} of this tablet's pairing, for the signed-out panic
  loginPanicPending: false,
};

// -- formatting ----------------------------------------------------------------------------

export function clock(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return "–";
  const sign = seconds < 0 ? "-" : "";
  const total = Math.round(Math.abs(seconds));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  const ss = String(s).padStart(2, "0");
  return h ? `${sign}${h}:${String(m).padStart(2, "0")}:${ss}` : `${sign}${m}:${ss}`;
}

function minutes(seconds) {
  if (seconds >= 3600) {
    const h = Math.floor(seconds / 3600);
    const m = Math.round((seconds % 3600) / 60);
    return m ? `${h} h ${m} min` : `${h} h`;
  }
  if (seconds >= 60) return `${Math.round(seconds / 60)} min`;
  return `${Math.round(seconds)} s`;
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const child of children) {
    if (child !== null && child !== undefined) node.append(child);
  }
  return node;
}

// -- feedback -----------------------------------------------------------------------------

let toastTimer = null;
function toast(message, bad = false) {
  const box = $("toast");
  box.textContent = message;
  box.classList.toggle("bad", bad);
  box.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => (box.hidden = true), bad ? 6000 : 2500);
}

function describeError(err) {
  if (err instanceof ApiError) {
    if (err.status === 403) return `Not allowed (403): ${err.message}`;
    if (err.status === 429) {
      const wait = err.body && err.body.retry_after;
      return wait ? `Too many attempts; try again in ${Math.ceil(wait)} s` : err.message;
    }
    return `${err.message} (${err.status})`;
  }
  if (err instanceof NetworkError) return "No connection to the controller";
  return String(err);
}

function handleAuthLoss(err) {
  if (err instanceof ApiError && err.status === 401) {
    signedOut("Signed out. Please sign in again.");
    return true;
  }
  return false;
}

// -- routing ------------------------------------------------------------------------------

const SCREENS = ["login", "pair", "overview", "room"];

function show(name) {
  for (const s of SCREENS) $(`screen-${s}`).hidden = s !== name;
  const signedIn = S.staff !== null;
  $("nav-logout").hidden = !signedIn || name === "login";
  $("nav-overview").hidden = !signedIn || S.paired !== null || name === "overview";
  $("nav-room").hidden = !signedIn || S.paired === null || name === "room";
  $("staff-name").textContent = signedIn ? S.staff : "";
  if (name !== "room") leaveRoom();
  if (name !== "overview") stopOverview();
  $("room-safety").hidden = name !== "room" || S.forbidden;
  reserveSafetySpace();
}

function go(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

async function route() {
  retry.cancel("boot");
  const hash = location.hash || "#/";
  if (S.staff === null && hash !== "#/login") {
    const me = await loadMe();
    if (me === "unreachable") {
      unreachableAtStart();
      return;
    }
    if (me === "signed-out") {
      go("#/login");
      return;
    }
  }
  retry.reset("boot");
  const match = hash.match(/^#\/rooms\/([^/]+)$/);
  if (hash === "#/login") showLogin();
  else if (hash === "#/pair") showPair();
  else if (hash === "#/rooms") showOverview();
  else if (match) openRoom(decodeURIComponent(match[1]));
  else go(S.paired ? `#/rooms/${encodeURIComponent(S.paired)}` : "#/rooms");
}

/** "ok", "signed-out" (any answer but 200), or "unreachable" (no answer at all). */
async function loadMe() {
  try {
    const me = await api("GET", "/me");
    S.staff = me.staff;
    S.paired = me.room || null;
    noteExpiry(me.expires_in);
    return "ok";
  } catch (err) {
    return transient(err) ? "unreachable" : "signed-out";
  }
}

/**
 * No answer from the controller at start-up: whether anyone is signed in is unknown, so show
 * the sign-in screen with the paired room's panic (from the last pairing seen here) and try
 * again with back-off.
 */
function unreachableAtStart() {
  // Already showing: keep what staff have typed so far.
  if ($("screen-login").hidden) showLogin();
  else loadDevice();
  const wait = retry.schedule("boot", route);
  $("offline-banner").hidden = false;
  $("offline-detail").textContent =
    `Cannot reach the controller; trying again in ${Math.round(wait / 1000)} s.`;
}

// -- retry with back-off -------------------------------------------------------------------
// Named timers that double their wait on each failure; the network coming back retries at once.

const retry = {
  timers: new Map(), // name -> {timer, fn}
  attempts: new Map(), // name -> failures so far

  /** Run `fn` after the next back-off step; returns the wait in ms. */
  schedule(name, fn) {
    this.cancel(name);
    const n = this.attempts.get(name) || 0;
    this.attempts.set(name, n + 1);
    const wait = Math.min(RETRY_MAX_MS, RETRY_MIN_MS * 2 ** n);
    this.timers.set(name, { timer: setTimeout(() => this.fire(name), wait), fn });
    return wait;
  },

  fire(name) {
    const entry = this.timers.get(name);
    this.cancel(name);
    if (entry) entry.fn();
  },

  cancel(name) {
    const entry = this.timers.get(name);
    if (entry) clearTimeout(entry.timer);
    this.timers.delete(name);
  },

  reset(name) {
    this.cancel(name);
    this.attempts.delete(name);
  },

  now() {
    for (const name of [...this.timers.keys()]) this.fire(name);
  },
};

function signedOut(message) {
  S.staff = null;
  leaveRoom();
  $("login-error").textContent = message || "";
  go("#/login");
}

// -- session expiry ------------------------------------------------------------------------

function noteExpiry(expiresIn) {
  S.expiresIn = typeof expiresIn === "number" ? expiresIn : null;
  S.expiresAt = performance.now();
}

async function pollMe() {
  if (S.staff === null) return;
  try {
    const me = await api("GET", "/me");
    noteExpiry(me.expires_in);
  } catch (err) {
    handleAuthLoss(err);
  }
}

function renderExpiry() {
  const banner = $("expiry-banner");
  if (S.staff === null || S.expiresIn === null) {
    banner.hidden = true;
    return;
  }
  const left = S.expiresIn - (performance.now() - S.expiresAt) / 1000;
  if (left > EXPIRY_WARN_S) {
    banner.hidden = true;
    return;
  }
  banner.hidden = false;
  banner.textContent = `Signing out in ${clock(Math.max(0, left))} for inactivity — touch any control to stay signed in.`;
}

// -- login --------------------------------------------------------------------------------

function showLogin() {
  S.staff = null;
  show("login");
  $("login-pin").value = "";
  $("login-staff").focus();
  if (!S.loginPanicPending) loginPanicStatus("");
  loadDevice();
}

// -- panic while signed out ----------------------------------------------------------------
// A tablet paired with a room may send that room's panic without a sign-in (API.md); the
// release, like everything else, needs staff.

async function loadDevice() {
  try {
    const device = await api("GET", "/device");
    rememberDevice(device && device.room ? device : null);
  } catch (err) {
    // No answer: the pairing last seen here most likely still stands, and its panic is
    // retried until it gets through. Any real answer decides.
    rememberDevice(transient(err) ? cachedDevice() : null);
  }
  renderLoginPanic();
}

function rememberDevice(device) {
  S.device = device ? { room: device.room, room_name: device.room_name || device.room } : null;
  try {
    if (S.device) localStorage.setItem(DEVICE_KEY, JSON.stringify(S.device));
    else localStorage.removeItem(DEVICE_KEY);
  } catch {
    /* storage unavailable: the panic then needs an answer from /device first */
  }
}

function cachedDevice() {
  try {
    const device = JSON.parse(localStorage.getItem(DEVICE_KEY) || "null");
    return device && typeof device.room === "string" ? device : null;
  } catch {
    return null;
  }
}

function renderLoginPanic() {
  const box = $("login-safety");
  box.hidden = S.device === null;
  if (S.device === null) {
    loginPanicHold.cancel();
    return;
  }
  $("login-safety-room").textContent = S.device.room_name || S.device.room;
  const button = $("login-panic");
  button.classList.toggle("pending", S.loginPanicPending);
  button.setAttribute("aria-busy", String(S.loginPanicPending));
}

function loginPanicStatus(message) {
  $("login-panic-status").textContent = message;
}

const loginPanicKick = new Kick();

function signedOutPanic() {
  const device = S.device;
  if (device === null) return;
  if (S.loginPanicPending) {
    loginPanicKick.now(); // held again while waiting: try at once
    return;
  }
  const name = device.room_name || device.room;
  S.loginPanicPending = true;
  renderLoginPanic();
  loginPanicStatus(`Sending panic to ${name}…`);
  // One intent, one cmd_id: every retry while the network is down reuses it.
  sendCommand(device.room, "panic", {}, newCmdId(), {
    patience: 120000,
    kick: loginPanicKick,
    onRetry: () => loginPanicStatus(`No answer yet; sending the panic to ${name} again…`),
  })
    .then((outcome) => {
      loginPanicStatus(
        outcome.accepted
          ? `Panic on in ${name}: full light, music stopped. Staff sign in to release it.`
          : `Panic refused: ${outcome.reason || "no reason given"}`,
      );
    })
    .catch((err) => {
      if (err instanceof ApiError && err.status === 401) {
        loginPanicStatus("This tablet is no longer paired with a room. Sign in to send a panic.");
        loadDevice();
        return;
      }
      loginPanicStatus(`Panic not sent: ${describeError(err)}`);
    })
    .finally(() => {
      S.loginPanicPending = false;
      renderLoginPanic();
    });
}

function keypad(ev) {
  const key = ev.target.closest("[data-key]");
  if (!key) return;
  const pin = $("login-pin");
  const k = key.dataset.key;
  if (k === "clear") pin.value = "";
  else if (k === "back") pin.value = pin.value.slice(0, -1);
  else if (pin.value.length < 64) pin.value += k;
}

async function login(ev) {
  ev.preventDefault();
  const staff = $("login-staff").value.trim();
  const pin = $("login-pin").value;
  const submit = $("login-submit");
  if (!staff || !pin) {
    $("login-error").textContent = "Enter your staff ID and PIN.";
    return;
  }
  submit.disabled = true;
  try {
    const me = await api("POST", "/login", { staff, pin });
    S.staff = me.staff;
    S.paired = me.room || null;
    $("login-error").textContent = "";
    $("login-pin").value = "";
    await pollMe();
    const station = localStorage.getItem(STATION_KEY) === "1";
    go(S.paired ? `#/rooms/${encodeURIComponent(S.paired)}` : station ? "#/rooms" : "#/pair");
  } catch (err) {
    $("login-pin").value = "";
    $("login-error").textContent =
      err instanceof ApiError && err.status === 401 ? "Wrong staff ID or PIN." : describeError(err);
  } finally {
    submit.disabled = false;
  }
}

async function logout() {
  try {
    await api("POST", "/logout");
  } catch {
    /* signed out locally either way */
  }
  signedOut("");
}

// -- pairing ------------------------------------------------------------------------------

async function showPair() {
  show("pair");
  const list = $("pair-list");
  list.replaceChildren();
  $("pair-error").textContent = "";
  try {
    const { rooms } = await api("GET", "/rooms");
    for (const view of rooms) {
      const { id, name } = view.room;
      list.append(
        el(
          "li",
          {},
          el("button", {
            type: "button",
            class: "btn",
            text: `Pair with ${name}`,
            onclick: () => pair(id),
          }),
        ),
      );
    }
  } catch (err) {
    if (!handleAuthLoss(err)) $("pair-error").textContent = describeError(err);
  }
}

async function pair(room) {
  try {
    const res = await api("POST", "/pair", { room });
    S.paired = res.room;
    localStorage.removeItem(STATION_KEY);
    go(`#/rooms/${encodeURIComponent(res.room)}`);
  } catch (err) {
    if (!handleAuthLoss(err)) $("pair-error").textContent = describeError(err);
  }
}

// -- clinic overview ----------------------------------------------------------------------

function showOverview() {
  show("overview");
  $("topbar-room").textContent = "";
  stopOverview();
  loadOverview();
}

// One live link per room rather than polling: WebSocket traffic does not count as activity,
// so an unattended nurse station still signs out after the idle timeout (API.md).
function stopOverview() {
  for (const link of S.overviewLinks) link.stop();
  S.overviewLinks = [];
}

async function loadOverview() {
  try {
    const { rooms } = await api("GET", "/rooms");
    $("overview-error").textContent = "";
    $("overview-list").replaceChildren(...rooms.map(overviewCard));
    for (const view of rooms) {
      const link = new LiveLink(view.room.id, {
        onState: (fresh) => updateOverviewCard(fresh),
        onEvent: () => {},
        onUp: () => markOverviewCard(view.room.id, false),
        onDown: () => markOverviewCard(view.room.id, true),
        onEnd: (code) => {
          if (code === 4401) signedOut("Your session ended. Please sign in again.");
        },
      });
      S.overviewLinks.push(link);
      link.start();
    }
  } catch (err) {
    if (!handleAuthLoss(err)) $("overview-error").textContent = describeError(err);
  }
}

function overviewCardOf(roomId) {
  return $("overview-list").querySelector(`[data-room="${CSS.escape(roomId)}"]`);
}

function updateOverviewCard(view) {
  const old = overviewCardOf(view.room.id);
  const shown = old && { rev: Number(old.dataset.rev), instance: old.dataset.instance };
  if (outdated(view, shown)) return;
  const card = overviewCard(view);
  if (old) old.replaceWith(card);
  else $("overview-list").append(card);
}

function tickOverview() {
  if (!S.overviewLinks.length) return;
  for (const card of $("overview-list").children) {
    if (card.dataset.advancing !== "1") continue;
    const dt = Math.min(
      Number(card.dataset.phaseLeft),
      (performance.now() - Number(card.dataset.at)) / 1000,
    );
    const node = card.querySelector(".remaining");
    if (node) node.textContent = clock(Math.max(0, Number(card.dataset.remaining) - dt));
  }
}

function markOverviewCard(roomId, stale) {
  const card = overviewCardOf(roomId);
  if (card) card.classList.toggle("stale", stale);
}

function highestPriority(checkins) {
  const order = { low: 0, medium: 1, high: 2 };
  let best = null;
  for (const c of checkins) if (best === null || order[c.priority] > order[best]) best = c.priority;
  return best;
}

function overviewCard(view) {
  const session = view.session;
  const active = ACTIVE.has(view.state) && session;
  const open = view.checkins || [];
  const top = highestPriority(open);
  const alert = view.alert || (open.some((c) => c.state === "due") ? top : null);
  const card = el(
    "li",
    {
      class: `card overview-card${alert ? ` alert-${alert}` : ""}`,
      "data-room": view.room.id,
      "data-rev": view.rev,
      "data-instance": view.instance,
    },
    el(
      "div",
      { class: "row" },
      el("h2", { text: view.room.name }),
      el("span", { class: `state-badge ${view.state}`, text: view.state }),
    ),
  );
  if (view.alert === "high" && (view.overlays || []).includes("panic")) {
    card.append(el("span", { class: "pill pill-high", text: "PANIC" }));
  }
  if (active) {
    card.append(
      el("p", { text: session.scene_name }),
      el(
        "p",
        {},
        el("strong", { text: session.phase.title }),
        " · ",
        el("span", { class: "remaining num", text: clock(session.remaining) }),
        " remaining",
      ),
    );
    // Ticked locally by tickOverview() between state messages.
    card.dataset.remaining = String(session.remaining);
    card.dataset.phaseLeft = String(Math.max(0, session.phase.end - session.offset));
    card.dataset.advancing = view.state === "running" && !view.frozen ? "1" : "0";
    card.dataset.at = String(performance.now());
  } else {
    card.append(el("p", { class: "hint", text: "No session running" }));
  }
  card.append(
    el(
      "p",
      {},
      open.length
        ? el("span", {
            class: `pill pill-${top}`,
            text: `${open.length} open check-in${open.length > 1 ? "s" : ""}`,
          })
        : el("span", { class: "pill", text: "No open check-ins" }),
    ),
  );
  if (view.health && !view.health.ok) card.append(el("p", { class: "health bad", text: "Device fault" }));
  card.append(
    el("button", {
      type: "button",
      class: "btn",
      text: `Open ${view.room.name}`,
      onclick: () => go(`#/rooms/${encodeURIComponent(view.room.id)}`),
    }),
  );
  return card;
}

// -- one room -----------------------------------------------------------------------------

async function openRoom(roomId) {
  if (S.roomId === roomId && (S.link || S.unreached)) {
    show("room");
    return;
  }
  leaveRoom();
  if (S.scenesFor !== roomId) S.scenes = [];
  S.roomId = roomId;
  S.forbidden = false;
  $("room-state").textContent = "";
  $("room-health").textContent = "";
  show("room");
  $("room-title").textContent = roomId;
  $("topbar-room").textContent = "";
  $("room-error").textContent = "";
  $("picker").hidden = true;
  $("session").hidden = true;
  $("room-controls").hidden = true;
  $("overlay-list").replaceChildren();
  renderControls();
  await enterRoom(roomId);
}

/** Fetch the room's view, then go live; without a connection, try again with back-off. */
async function enterRoom(roomId) {
  try {
    await refreshView();
  } catch (err) {
    if (S.roomId !== roomId) return;
    if (handleAuthLoss(err)) return;
    // Only a real answer refuses the room; no answer is not a "no".
    if (transient(err)) roomUnreachable(roomId);
    else roomRefused(err);
    return;
  }
  if (S.roomId !== roomId || S.link) return;
  retry.reset("room");
  if (S.unreached) {
    S.unreached = false;
    $("room-error").textContent = "";
  }
  loadScenes();
  S.link = new LiveLink(roomId, {
    onState: (view) => setView(view),
    onEvent: (event) => onRoomEvent(event),
    onUp: () => linkUp(),
    onDown: () => linkDown(),
    onEnd: (code) => {
      if (code === 4401) signedOut("Your session ended. Please sign in again.");
      else roomRefused(new ApiError(403, "this tablet is no longer paired with the room"));
    },
  });
  S.link.start();
}

// The panic stays on screen and usable: it is retried until the controller answers.
function roomUnreachable(roomId) {
  S.unreached = true;
  const wait = retry.schedule("room", () => {
    if (S.roomId === roomId) enterRoom(roomId);
  });
  $("room-error").textContent =
    `No connection to the controller; trying again in ${Math.round(wait / 1000)} s. ` +
    "The panic button still works: it is sent as soon as the connection is back.";
  linkDown();
}

function roomRefused(err) {
  S.forbidden = true;
  S.unreached = false;
  retry.reset("room");
  $("room-state").textContent = "";
  $("room-state").className = "state-badge";
  $("room-health").textContent = "";
  $("room-safety").hidden = true;
  reserveSafetySpace();
  $("room-error").textContent =
    err instanceof ApiError && err.status === 403
      ? `Not allowed (403): this tablet cannot see or control ${S.roomId}.` +
        (S.paired ? ` It is paired with ${S.paired}.` : "")
      : describeError(err);
  $("picker").hidden = true;
  $("session").hidden = true;
  $("room-controls").hidden = true;
  $("panic").disabled = true;
  $("release").hidden = true;
}

function leaveRoom() {
  if (S.link) S.link.stop();
  S.link = null;
  S.linkUp = false;
  S.unreached = false;
  retry.reset("room");
  closeDialogs();
  S.roomId = null;
  S.view = null;
  $("offline-banner").hidden = true;
  $("alarm-banner").hidden = true;
  $("link-state").textContent = "";
  $("link-state").className = "link-state";
  cancelPanicHold();
}

async function refreshView() {
  const room = S.roomId;
  if (!room) return;
  const view = await api("GET", `/rooms/${encodeURIComponent(room)}`);
  if (S.roomId === room) setView(view);
}

async function loadScenes() {
  const room = S.roomId;
  try {
    const { scenes } = await api("GET", `/scenes?room=${encodeURIComponent(room)}`);
    if (S.roomId !== room) return;
    S.scenes = scenes;
    S.scenesFor = room;
    renderScenes();
  } catch (err) {
    if (!handleAuthLoss(err)) $("room-error").textContent = describeError(err);
  }
}

function linkUp() {
  S.linkUp = true;
  $("offline-banner").hidden = true;
  $("link-state").textContent = "Live";
  $("link-state").className = "link-state ok";
  // The socket's first message is a fresh state; fetch once more over HTTP as well so a
  // missed event can never leave the screen stale, and pick up scene changes.
  refreshView().catch(() => {});
  if (!S.scenes.length) loadScenes();
  renderControls();
}

function linkDown() {
  S.linkUp = false;
  $("offline-banner").hidden = false;
  $("offline-detail").textContent = navigator.onLine
    ? "Reconnecting to the controller… controls are paused until the live link is back."
    : "This tablet is offline. Reconnecting when the network returns…";
  $("link-state").textContent = "Offline";
  $("link-state").className = "link-state down";
  renderControls();
}

function onRoomEvent(event) {
  if (!event || !event.kind) return;
  if (event.kind === "driver_unavailable") toast(`Device offline: ${event.driver}`, true);
}

/** True when `view` is older than `shown`: same server process, lower revision. */
export function outdated(view, shown) {
  return Boolean(
    shown &&
      view.instance === shown.instance &&
      typeof view.rev === "number" &&
      typeof shown.rev === "number" &&
      view.rev < shown.rev,
  );
}

function setView(view) {
  // An HTTP reply can land after a newer WebSocket push; a restarted server starts over.
  if (outdated(view, S.view)) {
    const screen = $("screen-room");
    screen.dataset.outdatedDropped = String(Number(screen.dataset.outdatedDropped || 0) + 1);
    return;
  }
  S.view = view;
  S.viewAt = performance.now();
  $("screen-room").dataset.rev = String(view.rev);
  if (S.paired !== null && view.room.id === S.paired) {
    rememberDevice({ room: view.room.id, room_name: view.room.name });
  }
  render();
}

// -- rendering the room -------------------------------------------------------------------

function render() {
  const view = S.view;
  if (!view || S.forbidden) return;
  $("room-title").textContent = view.room.name;
  $("topbar-room").textContent = view.room.name;
  const badge = $("room-state");
  badge.textContent = view.state;
  badge.className = `state-badge ${view.state}`;
  renderHealth(view.health);
  const active = ACTIVE.has(view.state) && view.session;
  $("picker").hidden = Boolean(active);
  $("session").hidden = !active;
  if (active) renderSession(view);
  renderCheckins(view.checkins || []);
  renderOverlays(view);
  renderAlarm(view);
  renderControls();
  tick();
}

/** The overlays staff may switch: the room's and the running scene's, panic excepted; an
 * active one that is no longer offered stays listed so it can still be switched off. */
function overlayChoices(view) {
  const choices = (view.overlay_choices || []).filter((c) => c.name !== "panic");
  for (const name of view.overlays || []) {
    if (name !== "panic" && !choices.some((c) => c.name === name)) {
      choices.push({ name, title: name });
    }
  }
  return choices;
}

// Keyed like the check-in cards, so a button being tapped survives the next state message.
function renderOverlays(view) {
  const box = $("overlay-list");
  const active = new Set(view.overlays || []);
  const choices = overlayChoices(view);
  const buttons = choices.map((c) => {
    let button = box.querySelector(`[data-overlay="${CSS.escape(c.name)}"]`);
    if (!button) {
      button = el("button", {
        type: "button",
        class: "btn toggle",
        "data-overlay": c.name,
        "data-control": `overlay:${c.name}`,
        onclick: () => toggleOverlay(c.name),
      });
    }
    button.textContent = c.title;
    button.dataset.title = c.title;
    button.setAttribute("aria-pressed", String(active.has(c.name)));
    return button;
  });
  box.replaceChildren(...buttons);
  $("room-controls").hidden = buttons.length === 0;
}

function toggleOverlay(name) {
  const view = S.view;
  if (!view) return;
  const button = $("overlay-list").querySelector(`[data-overlay="${CSS.escape(name)}"]`);
  const title = (button && button.dataset.title) || name;
  // The intent is decided from the state on screen when tapped: on if it shows off.
  const on = !(view.overlays || []).includes(name);
  command(
    `overlay:${name}`,
    "overlay",
    { name, on },
    { label: `${title} ${on ? "on" : "off"}`, done: `${title}: ${on ? "on" : "off"}` },
  );
}

function renderHealth(health) {
  const node = $("room-health");
  if (!health) {
    node.textContent = "";
    return;
  }
  const bad = Object.entries(health.drivers || {})
    .filter(([, d]) => !d.ok)
    .map(([name]) => name);
  node.className = `health${health.ok ? "" : " bad"}`;
  node.textContent = health.ok ? "Devices OK" : `Device problem: ${bad.join(", ") || "see notes"}`;
}

function renderScenes() {
  const list = $("scene-list");
  list.replaceChildren(
    ...S.scenes.map((scene) =>
      el(
        "button",
        {
          type: "button",
          role: "radio",
          class: "scene-card",
          "aria-checked": String(S.selected === scene.id),
          "aria-label": `${scene.name}, ${minutes(scene.length)}`,
          "data-scene": scene.id,
          onclick: () => selectScene(scene.id),
        },
        el("span", { class: "title", text: scene.name }),
        el("span", {
          class: "meta",
          text:
            `${scene.route.toUpperCase()} · ${minutes(scene.length)}` +
            (scene.min_duration ? ` · observe at least ${minutes(scene.min_duration)}` : ""),
        }),
        el("span", { class: "desc", text: scene.description || "" }),
      ),
    ),
  );
  if (S.selected && !S.scenes.some((s) => s.id === S.selected)) S.selected = null;
  if (S.selected === null && S.scenes.length === 1) selectScene(S.scenes[0].id);
  renderControls();
}

function selectScene(sceneId) {
  S.selected = sceneId;
  for (const card of $("scene-list").children) {
    card.setAttribute("aria-checked", String(card.dataset.scene === sceneId));
  }
  const scene = S.scenes.find((s) => s.id === sceneId);
  const img = $("scene-preview-img");
  img.src = `/api/v1/scenes/${encodeURIComponent(sceneId)}/timeline.svg`;
  img.alt = `Timeline of ${scene.name}`;
  $("scene-preview-caption").textContent = `${scene.phases.length} phases: ${scene.phases
    .map((p) => p.title)
    .join(" → ")}`;
  $("scene-preview").hidden = false;
  $("start-button").textContent = `Start ${scene.name}`;
  renderControls();
}

function renderSession(view) {
  const s = view.session;
  $("session-scene").textContent = s.scene_name;
  $("session-phase").textContent = s.phase.title;
  const phases = $("progress-phases");
  const labels = $("progress-labels");
  const key = s.phases.map((p) => `${p.id}:${p.start}:${p.end}`).join("|") + `#${s.phase.index}`;
  if (phases.dataset.key !== key) {
    phases.dataset.key = key;
    phases.replaceChildren();
    labels.replaceChildren();
    const length = s.length || 1;
    s.phases.forEach((p, i) => {
      const left = `${(100 * p.start) / length}%`;
      const width = `${(100 * (p.end - p.start)) / length}%`;
      const current = i === s.phase.index ? " current" : "";
      const band = el("div", { class: `progress-phase${current}`, title: p.title });
      band.style.left = left;
      band.style.width = width;
      phases.append(band);
      const label = el("span", { class: `progress-label${current}`, text: p.title });
      label.style.left = left;
      label.style.width = width;
      labels.append(label);
    });
  }
}

// Keyed so a card (and a button being tapped) survives the next state message.
function renderCheckins(checkins) {
  const box = $("checkins");
  const seen = new Set();
  for (const c of checkins) {
    seen.add(c.id);
    let card = box.querySelector(`[data-checkin="${CSS.escape(c.id)}"]`);
    if (!card) {
      card = checkinCard(c);
      box.append(card);
    }
    card.className = `checkin checkin-${c.priority} ${c.state}`;
    card.dataset.priority = c.priority;
    card.dataset.state = c.state;
    card.dataset.dueFor = c.due_for;
    card.dataset.escalatesIn = c.escalates_in === null ? "" : c.escalates_in;
    card.querySelector(".priority").textContent = `${c.priority} priority`;
    card.querySelector(".status").textContent =
      c.state === "acknowledged" ? "Acknowledged" : "Waiting for acknowledgement";
    card.querySelector(".ack").hidden = c.state !== "due";
  }
  for (const card of [...box.children]) {
    if (!seen.has(card.dataset.checkin)) card.remove();
  }
  box.hidden = checkins.length === 0;
}

function checkinCard(c) {
  const headingId = `checkin-${c.id}-prompt`;
  const actions = el(
    "div",
    { class: "actions" },
    el("button", {
      type: "button",
      class: "btn btn-primary ack",
      "aria-label": `Acknowledge: ${c.prompt}`,
      text: "Acknowledge",
      "data-control": `ack:${c.id}`,
      onclick: () => command(`ack:${c.id}`, "ack", { checkin: c.id }),
    }),
    ...c.responses.map((r) =>
      el("button", {
        type: "button",
        class: "btn",
        text: r.label,
        "aria-label": `${r.label} (${c.prompt})`,
        "data-control": `respond:${c.id}`,
        onclick: () => command(`respond:${c.id}`, "respond", { checkin: c.id, option: r.code }),
      }),
    ),
  );
  return el(
    "article",
    { "data-checkin": c.id, "aria-labelledby": headingId },
    el("p", { class: "prompt", id: headingId, text: c.prompt }),
    el(
      "div",
      { class: "meta" },
      el("span", { class: "priority" }),
      el("span", { class: "status" }),
      el("span", { class: "due num" }),
      el("span", { class: "escalates num" }),
    ),
    actions,
  );
}

function renderAlarm(view) {
  const panic = (view.overlays || []).includes("panic");
  $("alarm-banner").hidden = !panic;
  $("release").hidden = !panic;
  $("panic").hidden = panic;
  $("panic-hint").hidden = panic;
  if (panic) cancelPanicHold();
}

// -- local clock --------------------------------------------------------------------------

/** Seconds since the current view arrived. */
function since() {
  return (performance.now() - S.viewAt) / 1000;
}

function tick() {
  renderExpiry();
  tickOverview();
  const view = S.view;
  if (!view || S.forbidden || S.roomId === null) return;
  const dt = since();
  const s = view.session;
  if (s && ACTIVE.has(view.state)) {
    const advancing = view.state === "running" && !view.frozen;
    const offset = advancing ? Math.min(s.phase.end, s.offset + dt) : s.offset;
    const elapsed = s.elapsed + dt;
    const pct = s.length > 0 ? Math.min(100, (100 * offset) / s.length) : 100;
    $("session-elapsed").textContent = clock(elapsed);
    $("session-remaining").textContent = clock(Math.max(0, s.length - offset));
    $("progress-fill").style.width = `${pct}%`;
    const bar = $("progress");
    bar.setAttribute("aria-valuemax", String(Math.round(s.length)));
    bar.setAttribute("aria-valuenow", offset.toFixed(1));
    bar.setAttribute(
      "aria-valuetext",
      `${clock(offset)} of ${clock(s.length)}, phase ${s.phase.title}`,
    );
    renderNext(view, advancing ? dt : 0, elapsed);
  }
  for (const card of $("checkins").children) {
    const due = Number(card.dataset.dueFor) + dt;
    card.querySelector(".due").textContent = `Due ${clock(due)} ago`;
    const esc = card.dataset.escalatesIn;
    const node = card.querySelector(".escalates");
    // Check-ins escalate in real time, paused or not (DESIGN.md §4).
    node.textContent = esc === "" ? "" : `Escalates in ${clock(Math.max(0, Number(esc) - dt))}`;
  }
}

function renderNext(view, dt, elapsed) {
  const s = view.session;
  const next = $("session-next");
  const hold = $("session-hold");
  if (view.frozen) {
    next.textContent = "Timeline frozen while the panic is on.";
  } else if (view.state === "paused") {
    next.textContent = "Paused. Lights and music hold where they are; check-ins still escalate.";
  } else if (s.next && s.next.kind === "hold") {
    // The next deadline is the end of this phase's minimum: say what happens then.
    const last = s.phase.index === s.phases.length - 1;
    next.replaceChildren(
      `${s.phase.title}: minimum time reached in `,
      el("span", { class: "num", text: clock(Math.max(0, s.next.in - dt)) }),
      last ? "; then it holds until staff end the session." : "; then it holds until staff continue.",
    );
  } else if (s.next && s.next.in === null) {
    next.replaceChildren("Next: ", el("strong", { text: s.next.what }));
  } else if (s.next) {
    next.replaceChildren(
      "Next: ",
      el("strong", { text: s.next.what }),
      " in ",
      el("span", { class: "num", text: clock(Math.max(0, s.next.in - dt)) }),
    );
  } else {
    next.textContent = "";
  }
  if (s.holding) {
    const held = s.holding.since + since();
    const parts = [`Holding at the end of ${s.phase.title} for ${clock(held)}.`];
    if (s.holding.continues_in !== null) {
      parts.push(`Continues by itself in ${clock(Math.max(0, s.holding.continues_in - since()))}.`);
    } else if (s.holding.final) {
      parts.push("End the session when the patient is ready.");
    } else {
      parts.push("Tap Continue when ready.");
    }
    hold.textContent = parts.join(" ");
    hold.hidden = false;
  } else {
    hold.hidden = true;
  }
  const minLeft = s.min_remaining === null ? null : Math.max(0, s.min_remaining - (elapsed - s.elapsed));
  $("ctl-end").dataset.minLeft = minLeft === null ? "" : String(minLeft);
}

// -- commands -----------------------------------------------------------------------------

const DONE = {
  start: "Session started",
  pause: "Paused",
  resume: "Resumed",
  extend: "Added 5 minutes to this phase",
  skip: "Moved to the next phase",
  stop: "Session ended",
  panic: "Panic on: full light, music stopped",
  release: "Panic released",
  ack: "Acknowledged",
  respond: "Response recorded",
};

/** One user intent: one cmd_id, its control disabled until the outcome is known. */
function command(key, verb, args, { patience = 30000, label, done } = {}) {
  if (S.pending.has(key)) {
    // The same intent again (a panic held twice): send it now rather than after the back-off.
    const kick = S.kicks.get(key);
    if (kick) kick.now();
    return;
  }
  const room = S.roomId;
  const cmdId = newCmdId();
  const kick = new Kick();
  S.pending.set(key, cmdId);
  S.kicks.set(key, kick);
  renderControls();
  sendCommand(room, verb, args, cmdId, {
    patience,
    kick,
    onRetry: () => toast(`No answer yet; sending ${label || verb} again…`, true),
  })
    .then((outcome) => {
      if (outcome.accepted) {
        toast(done || DONE[verb] || `${label || verb}: done`);
      } else {
        toast(`${label || verb} refused: ${outcome.reason || "no reason given"}`, true);
      }
    })
    .catch((err) => {
      if (handleAuthLoss(err)) return;
      const message = describeError(err);
      toast(`${label || verb}: ${message}`, true);
      if (err instanceof ApiError && err.status === 403) $("room-error").textContent = message;
    })
    .finally(() => {
      S.pending.delete(key);
      S.kicks.delete(key);
      renderControls();
      if (S.roomId === room) refreshView().catch(() => {});
    });
}

function renderControls() {
  const view = S.view;
  const live = S.linkUp && !S.forbidden && view !== null;
  const state = view ? view.state : "ready";
  const panic = view ? (view.overlays || []).includes("panic") : false;
  const holding = view && view.session && view.session.holding;
  const set = (id, key, enabled) => {
    const node = $(id);
    const pending = S.pending.has(key);
    node.disabled = !live || pending || !enabled;
    node.classList.toggle("pending", pending);
    node.setAttribute("aria-busy", String(pending));
  };
  set("start-button", "start", S.selected !== null && !ACTIVE.has(state));
  $("ctl-pause").hidden = state === "paused";
  $("ctl-resume").hidden = state !== "paused";
  set("ctl-pause", "run", state === "running" && !panic);
  set("ctl-resume", "run", state === "paused" && !panic);
  set("ctl-extend", "extend", ACTIVE.has(state) && !panic);
  $("ctl-skip").textContent = holding && !holding.final ? "Continue" : "Next phase";
  set("ctl-skip", "skip", ACTIVE.has(state) && !panic && !(holding && holding.final));
  set("ctl-end", "stop", ACTIVE.has(state));
  set("release", "release", panic);
  // Panic stays usable while the link is down, before the room's first view and while any
  // command (its own included) waits for an answer: it is retried with its cmd_id until it
  // gets through; a panic must never be lost to a Wi-Fi blip.
  const panicButton = $("panic");
  panicButton.disabled = S.forbidden || S.roomId === null;
  panicButton.classList.toggle("pending", S.pending.has("panic"));
  panicButton.setAttribute("aria-busy", String(S.pending.has("panic")));
  for (const node of $("checkins").querySelectorAll("[data-control]")) {
    const pending = S.pending.has(node.dataset.control);
    node.disabled = !live || pending;
    node.classList.toggle("pending", pending);
  }
  for (const node of $("overlay-list").querySelectorAll("[data-control]")) {
    const pending = S.pending.has(node.dataset.control);
    node.disabled = !live || pending;
    node.classList.toggle("pending", pending);
    node.setAttribute("aria-busy", String(pending));
  }
}

function startSession() {
  if (S.selected === null) return;
  const scene = S.scenes.find((s) => s.id === S.selected);
  command("start", "start", { scene: S.selected }, { label: `Start ${scene ? scene.name : ""}` });
}

// Dialogs open non-modal with the page behind made inert by hand: showModal() would make the
// safety bar inert too, and a panic must never wait for a dialog to be dismissed.
// Banners stay out of it too, so an alert raised meanwhile is still announced.
const DIALOG_LIVE = new Set([
  "room-safety",
  "toast",
  "dlg-backdrop",
  "offline-banner",
  "alarm-banner",
]);

function confirmDialog(dialog, onOk) {
  closeDialogs();
  dialog.returnValue = "";
  dialog.addEventListener(
    "close",
    () => {
      pageInert(false);
      if (dialog.returnValue === "ok") onOk();
    },
    { once: true },
  );
  pageInert(true);
  dialog.show();
}

function pageInert(on) {
  for (const node of document.body.children) {
    if (node.tagName === "DIALOG" || DIALOG_LIVE.has(node.id)) continue;
    node.inert = on;
  }
  $("dlg-backdrop").hidden = !on;
}

/** Cancel any open confirmation (its action is not taken). */
function closeDialogs() {
  for (const dialog of document.querySelectorAll("dialog[open]")) dialog.close("");
}

function askSkip() {
  const s = S.view && S.view.session;
  if (!s) return;
  const nextPhase = s.phases[s.phase.index + 1];
  $("dlg-skip-text").textContent = nextPhase
    ? `Leave ${s.phase.title} now and go to ${nextPhase.title}. Lights and music move to that phase.`
    : `Leave ${s.phase.title} now.`;
  confirmDialog($("dlg-skip"), () => command("skip", "skip", {}, { label: "Skip" }));
}

function askEnd() {
  const s = S.view && S.view.session;
  if (!s) return;
  const minLeft = Number($("ctl-end").dataset.minLeft || "0");
  const early = minLeft > 0;
  const reason = $("dlg-end-reason");
  reason.value = "";
  reason.required = early;
  $("dlg-end-override").hidden = !early;
  $("dlg-end-text").textContent =
    (early
      ? `The minimum observation time for ${s.scene_name} has ${clock(minLeft)} left. ` +
        "Ending now needs an override and a reason; it is recorded in the audit log. "
      : `End ${s.scene_name} now. `) + afterEnd(S.view);
  $("dlg-end-ok").textContent = early ? "End early (override)" : "End session";
  confirmDialog($("dlg-end"), () => {
    // A reason code, never free text: the audit log must not hold patient details.
    const args = early ? { override: true, reason: reason.value } : {};
    command("stop", "stop", args, { label: "End session" });
  });
}

/** What ending does to the room: overlays off (panic excepted), lights to rest over 30 s. */
function afterEnd(view) {
  const titles = overlayChoices(view)
    .filter((c) => (view.overlays || []).includes(c.name))
    .map((c) => c.title);
  const off = titles.length ? ` ${titles.join(", ")} switch${titles.length > 1 ? "" : "es"} off.` : "";
  const panic = (view.overlays || []).includes("panic") ? " Panic stays on until released." : "";
  return `The room goes to its resting light over 30 s.${off}${panic}`;
}

// -- panic: press and hold ----------------------------------------------------------------

/**
 * Make `button` fire only after a press held for PANIC_HOLD_MS (finger, mouse, Space or
 * Enter); a shorter press explains itself. Returns {cancel} to drop a hold in progress.
 */
function holdToFire(button, fire) {
  let timer = null;
  const cancel = () => {
    clearTimeout(timer);
    timer = null;
    button.classList.remove("holding");
    button.setAttribute("aria-pressed", "false");
  };
  const begin = (ev) => {
    if (button.disabled || timer !== null) return;
    if (ev.type === "keydown") {
      if ((ev.key !== " " && ev.key !== "Enter") || ev.repeat) return;
      ev.preventDefault();
    } else if (ev.pointerId !== undefined && button.setPointerCapture) {
      try {
        button.setPointerCapture(ev.pointerId);
      } catch {
        /* not capturable: hold still works while the finger stays on it */
      }
    }
    button.classList.add("holding");
    button.setAttribute("aria-pressed", "true");
    timer = setTimeout(() => {
      timer = null;
      button.classList.remove("holding");
      button.setAttribute("aria-pressed", "false");
      fire();
    }, PANIC_HOLD_MS);
  };
  const end = (ev) => {
    if (ev && ev.type === "keyup" && ev.key !== " " && ev.key !== "Enter") return;
    if (timer !== null) {
      cancel();
      toast("Hold the panic button for 1.5 seconds to trigger it.");
    }
  };
  button.setAttribute("aria-pressed", "false");
  button.addEventListener("pointerdown", begin);
  button.addEventListener("pointerup", end);
  button.addEventListener("pointercancel", end);
  button.addEventListener("lostpointercapture", end);
  button.addEventListener("keydown", begin);
  button.addEventListener("keyup", end);
  button.addEventListener("contextmenu", (ev) => ev.preventDefault());
  button.addEventListener("click", (ev) => ev.preventDefault());
  return { cancel };
}

const roomPanicHold = holdToFire($("panic"), () => {
  closeDialogs();
  command("panic", "panic", {}, { patience: 120000, label: "Panic" });
});
const loginPanicHold = holdToFire($("login-panic"), signedOutPanic);

function cancelPanicHold() {
  roomPanicHold.cancel();
}

// -- space for the safety bar -------------------------------------------------------------

/** Keep --safety-h at the pinned safety bar's height so content scrolls clear of it. */
function reserveSafetySpace() {
  let height = 0;
  for (const id of ["room-safety", "login-safety"]) {
    const bar = $(id);
    if (bar.checkVisibility()) height = Math.max(height, bar.getBoundingClientRect().height);
  }
  document.documentElement.style.setProperty("--safety-h", `${Math.ceil(height)}px`);
}

// -- wiring -------------------------------------------------------------------------------

function wire() {
  $("login-form").addEventListener("submit", login);
  document.querySelector(".keypad").addEventListener("click", keypad);
  $("nav-logout").addEventListener("click", logout);
  $("nav-overview").addEventListener("click", () => go("#/rooms"));
  $("nav-room").addEventListener("click", () => go(`#/rooms/${encodeURIComponent(S.paired)}`));
  $("pair-skip").addEventListener("click", () => {
    localStorage.setItem(STATION_KEY, "1");
    go("#/rooms");
  });
  $("start-button").addEventListener("click", startSession);
  $("ctl-pause").addEventListener("click", () => command("run", "pause", {}, { label: "Pause" }));
  $("ctl-resume").addEventListener("click", () => command("run", "resume", {}, { label: "Resume" }));
  $("ctl-extend").addEventListener("click", () =>
    command("extend", "extend", { seconds: EXTEND_SECONDS }, { label: "+5 min" }),
  );
  $("ctl-skip").addEventListener("click", askSkip);
  $("ctl-end").addEventListener("click", askEnd);
  $("release").addEventListener("click", () =>
    command("release", "release", {}, { label: "Release panic" }),
  );
  // While the sign-out warning shows, any touch counts: one ordinary request is activity.
  document.addEventListener("pointerdown", () => {
    if ($("expiry-banner").hidden || S.staff === null) return;
    const path = S.roomId ? `/rooms/${encodeURIComponent(S.roomId)}` : "/rooms";
    api("GET", path)
      .then(pollMe)
      .catch((err) => handleAuthLoss(err));
  });
  for (const dialog of document.querySelectorAll("dialog")) {
    // Non-modal dialogs get no Escape handling from the browser.
    dialog.addEventListener("keydown", (ev) => {
      if (ev.key === "Escape") dialog.close("cancel");
    });
  }
  const resized = new ResizeObserver(reserveSafetySpace);
  resized.observe($("room-safety"));
  resized.observe($("login-safety"));
  window.addEventListener("online", () => retry.now());
  window.addEventListener("hashchange", route);
  setInterval(tick, 250);
  setInterval(pollMe, ME_POLL_MS);
}

wire();
route();
