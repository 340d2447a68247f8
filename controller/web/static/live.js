// The live link to one room: a WebSocket that reconnects with back-off and notices when it
// has gone quiet (Wi-Fi loss rarely closes a socket promptly).
//
//   const link = new LiveLink("room-1", { onState, onEvent, onUp, onDown, onEnd });
//   link.start();   ...   link.stop();

const PING_EVERY = 5000;
const SILENT_LIMIT = 12000;
const BACKOFF_MIN = 500;
const BACKOFF_MAX = 10000;

export class LiveLink {
  constructor(room, handlers) {
    this.room = room;
    this.handlers = handlers;
    this.ws = null;
    this.up = false;
    this.stopped = true;
    this.attempts = 0;
    this.retryTimer = null;
    this.pingTimer = null;
    this.lastHeard = 0;
    this.onOffline = () => this.drop("offline");
    this.onOnline = () => this.reconnectNow();
  }

  url() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    return `${scheme}//${location.host}/api/v1/rooms/${encodeURIComponent(this.room)}/ws`;
  }

  start() {
    this.stopped = false;
    window.addEventListener("offline", this.onOffline);
    window.addEventListener("online", this.onOnline);
    this.connect();
  }

  stop() {
    this.stopped = true;
    window.removeEventListener("offline", this.onOffline);
    window.removeEventListener("online", this.onOnline);
    clearTimeout(this.retryTimer);
    this.discard();
  }

  connect() {
    if (this.stopped) return;
    clearTimeout(this.retryTimer);
    this.discard();
    let ws;
    try {
      ws = new WebSocket(this.url());
    } catch {
      this.schedule();
      return;
    }
    this.ws = ws;
    ws.onopen = () => {
      this.attempts = 0;
      this.lastHeard = Date.now();
      this.pingTimer = setInterval(() => this.ping(), PING_EVERY);
    };
    ws.onmessage = (ev) => this.receive(ev.data);
    ws.onclose = (ev) => this.closed(ev.code);
    ws.onerror = () => {};
  }

  receive(raw) {
    this.lastHeard = Date.now();
    let msg;
    try {
      msg = JSON.parse(raw);
    } catch {
      return;
    }
    if (msg.type === "state") {
      if (!this.up) {
        this.up = true;
        this.handlers.onUp();
      }
      this.handlers.onState(msg.data);
    } else if (msg.type === "event") {
      this.handlers.onEvent(msg.data);
    }
  }

  ping() {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return;
    if (Date.now() - this.lastHeard > SILENT_LIMIT) {
      this.drop("silent");
      return;
    }
    try {
      this.ws.send(JSON.stringify({ type: "ping" }));
    } catch {
      this.drop("send failed");
    }
  }

  closed(code) {
    this.discard();
    if (this.stopped) return;
    if (code === 4401 || code === 4403) {
      this.stopped = true;
      this.handlers.onEnd(code);
      return;
    }
    this.markDown(`closed (${code})`);
    this.schedule();
  }

  /** Give up on the current socket at once (its close handshake may never finish). */
  drop(why) {
    if (this.stopped) return;
    this.discard();
    this.markDown(why);
    this.schedule();
  }

  markDown(why) {
    if (this.up) {
      this.up = false;
    }
    this.handlers.onDown(why);
  }

  discard() {
    clearInterval(this.pingTimer);
    this.pingTimer = null;
    const ws = this.ws;
    this.ws = null;
    if (ws) {
      ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
      try {
        ws.close();
      } catch {
        /* already closed */
      }
    }
  }

  schedule() {
    if (this.stopped) return;
    clearTimeout(this.retryTimer);
    const base = Math.min(BACKOFF_MAX, BACKOFF_MIN * 2 ** this.attempts);
    this.attempts += 1;
    // Jitter so a clinic's tablets do not all reconnect in the same instant after an outage.
    const wait = base * (0.5 + Math.random() * 0.5);
    this.retryTimer = setTimeout(() => this.connect(), wait);
  }

  reconnectNow() {
    if (this.stopped) return;
    this.attempts = 0;
    this.connect();
  }
}
