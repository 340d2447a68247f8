// HTTP calls to the controller (controller/web/API.md) and idempotent command sending.
//
//   const view = await api("GET", "/rooms/room-1");
//   const outcome = await sendCommand("room-1", "pause", {}, newCmdId());
//
// A command's cmd_id is made once per user intent; every retry of that intent reuses it, so
// the server carries it out at most once and answers repeats with the first outcome.
//
// Every request gives up after REQUEST_TIMEOUT_MS: after a Wi-Fi roam a dead connection can
// hang for minutes without an error, and a command waiting on it would never be retried.

/** How long one request may take before it counts as lost (a NetworkError). */
export const REQUEST_TIMEOUT_MS = 5000;

export class ApiError extends Error {
  constructor(status, message, body) {
    super(message);
    this.status = status;
    this.body = body;
  }
}

/** The request never got an answer (Wi-Fi gone, server restarting). */
export class NetworkError extends Error {}

export async function api(method, path, body, { timeout = REQUEST_TIMEOUT_MS } = {}) {
  const init = { method, credentials: "same-origin", headers: { Accept: "application/json" } };
  if (method !== "GET") {
    // The custom header is the server's cross-site request check (API.md, S2).
    init.headers["X-Sessionctl"] = "1";
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
  }
  const abort = new AbortController();
  init.signal = abort.signal;
  const timer = setTimeout(() => abort.abort(), timeout);
  const lost = (err) =>
    new NetworkError(
      abort.signal.aborted
        ? `no answer within ${Math.round(timeout / 1000)} s`
        : String(err && err.message ? err.message : err),
    );
  try {
    let response;
    try {
      response = await fetch(`/api/v1${path}`, init);
    } catch (err) {
      throw lost(err);
    }
    if (response.status === 204) return null;
    let data = null;
    try {
      data = await response.json();
    } catch (err) {
      // A body cut off by the timeout is a lost answer, not an empty one.
      if (abort.signal.aborted) throw lost(err);
      data = null;
    }
    if (!response.ok) {
      const message = (data && data.error) || response.statusText || `HTTP ${response.status}`;
      throw new ApiError(response.status, message, data);
    }
    return data;
  } finally {
    clearTimeout(timer);
  }
}

export function newCmdId() {
  const bytes = new Uint8Array(12);
  crypto.getRandomValues(bytes);
  return "tab-" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * Lets the caller cut a command's back-off short: `kick.now()` makes the next attempt at once
 * (a second press of the same control while its first is still being retried).
 */
export class Kick {
  constructor() {
    this.wake = null;
  }

  now() {
    if (this.wake) this.wake();
  }
}

function sleep(ms, kick) {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      if (kick) kick.wake = null;
      resolve();
    };
    const timer = setTimeout(done, ms);
    if (kick) kick.wake = done;
  });
}

/** True for failures worth another try with the same cmd_id (no answer, service restarting). */
export function transient(err) {
  if (err instanceof NetworkError) return true;
  // 502-504: a proxy or the service restarting; the same cmd_id is safe to send again.
  return err instanceof ApiError && err.status >= 502 && err.status <= 504;
}

/**
 * POST one command; retry with the same cmd_id while the network fails or an attempt gets no
 * answer within REQUEST_TIMEOUT_MS, up to `patience` ms.
 * Resolves to the Outcome; rejects with ApiError (4xx) or the last NetworkError.
 */
export async function sendCommand(
  room,
  verb,
  args,
  cmdId,
  { patience = 30000, onRetry, kick } = {},
) {
  const path = `/rooms/${encodeURIComponent(room)}/commands/${encodeURIComponent(verb)}`;
  const body = { cmd_id: cmdId, ...args };
  const giveUp = Date.now() + patience;
  let delay = 400;
  for (let attempt = 1; ; attempt++) {
    try {
      return await api("POST", path, body);
    } catch (err) {
      if (!transient(err) || Date.now() + delay > giveUp) throw err;
      if (onRetry) onRetry(err, attempt);
      await sleep(delay, kick);
      delay = Math.min(delay * 2, 4000);
    }
  }
}
