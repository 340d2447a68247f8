// HTTP calls to the controller (controller/web/API.md) and idempotent command sending.
//
//   const view = await api("GET", "/rooms/room-1");
//   const outcome = await sendCommand("room-1", "pause", {}, newCmdId());
//
// A command's cmd_id is made once per user intent; every retry of that intent reuses it, so
// the server carries it out at most once and answers repeats with the first outcome.

export class ApiError extends Error {
  constructor(status, message, body) {
    super(message);
    this.status = status;
    this.body = body;
  }
}

/** The request never got an answer (Wi-Fi gone, server restarting). */
export class NetworkError extends Error {}

export async function api(method, path, body) {
  const init = { method, credentials: "same-origin", headers: { Accept: "application/json" } };
  if (method !== "GET") {
    // The custom header is the server's cross-site request check (API.md, S2).
    init.headers["X-Sessionctl"] = "1";
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
  }
  let response;
  try {
    response = await fetch(`/api/v1${path}`, init);
  } catch (err) {
    throw new NetworkError(String(err && err.message ? err.message : err));
  }
  if (response.status === 204) return null;
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  if (!response.ok) {
    const message = (data && data.error) || response.statusText || `HTTP ${response.status}`;
    throw new ApiError(response.status, message, data);
  }
  return data;
}

export function newCmdId() {
  const bytes = new Uint8Array(12);
  crypto.getRandomValues(bytes);
  return "tab-" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function retryable(err) {
  if (err instanceof NetworkError) return true;
  // 502-504: a proxy or the service restarting; the same cmd_id is safe to send again.
  return err instanceof ApiError && err.status >= 502 && err.status <= 504;
}

/**
 * POST one command; retry with the same cmd_id while the network fails, up to `patience` ms.
 * Resolves to the Outcome; rejects with ApiError (4xx) or the last NetworkError.
 */
export async function sendCommand(room, verb, args, cmdId, { patience = 30000, onRetry } = {}) {
  const path = `/rooms/${encodeURIComponent(room)}/commands/${encodeURIComponent(verb)}`;
  const body = { cmd_id: cmdId, ...args };
  const giveUp = Date.now() + patience;
  let delay = 400;
  for (let attempt = 1; ; attempt++) {
    try {
      return await api("POST", path, body);
    } catch (err) {
      if (!retryable(err) || Date.now() + delay > giveUp) throw err;
      if (onRetry) onRetry(err, attempt);
      await sleep(delay);
      delay = Math.min(delay * 2, 4000);
    }
  }
}
