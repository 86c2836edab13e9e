// The live stream: one WebSocket, reconnect with backoff, resync after a gap.

// The event bus: any module may follow a layer (alerts, incidents, warnings, positions,
// devices) without touching app.js; "*" follows every layer. Events from other operators and
// from other hub replicas arrive here like any other (docs/dashboard.md, "Live updates").
const subscribers = new Map();

export function onLiveEvent(layer, fn) {
  if (!subscribers.has(layer)) subscribers.set(layer, new Set());
  subscribers.get(layer).add(fn);
  return () => subscribers.get(layer).delete(fn);
}

export function dispatchLive(event) {
  for (const key of [event.layer, "*"]) {
    for (const fn of subscribers.get(key) || []) {
      try {
        fn(event);
      } catch (err) {
        console.error(`live ${event.layer} handler:`, err);
      }
    }
  }
}
export class LiveStream {
  constructor({ layers, onEvent, onState, onResync }) {
    this.layers = layers;
    this.onEvent = onEvent;
    this.onState = onState;
    this.onResync = onResync;
    this.ws = null;
    this.backoffMs = 500;
    this.stopped = false;
    this.hadConnection = false;
  }

  start() {
    this.stopped = false;
    this.connect();
  }

  stop() {
    this.stopped = true;
    if (this.ws) this.ws.close();
  }

  connect() {
    const proto = location.protocol === "https:" ? "wss" : "ws";
    const url = `${proto}://${location.host}/api/v1/live?layers=${this.layers.join(",")}`;
    this.onState("connecting");
    const ws = new WebSocket(url);
    this.ws = ws;
    ws.onmessage = (msg) => {
      let event;
      try {
        event = JSON.parse(msg.data);
      } catch {
        return;
      }
      if (event.layer === "hello") {
        this.backoffMs = 500;
        this.onState("live");
        // Every page loads its data before it opens the stream: what changed between that
        // load and this hello (the first one too) reached neither, so the page resyncs now.
        this.onResync();
        this.hadConnection = true;
        return;
      }
      // Events that queued up together on the hub arrive as one batch frame.
      const events = event.layer === "batch" ? event.events : [event];
      for (const one of events) this.onEvent(one);
    };
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.ws = null;
      if (this.stopped) return;
      // 1008: not allowed (logged out); 1013: this client fell behind and must resync.
      this.onState(ev.code === 1008 ? "denied" : "reconnecting", ev.reason);
      if (ev.code === 1008) return;
      setTimeout(() => this.connect(), this.backoffMs);
      this.backoffMs = Math.min(this.backoffMs * 2, 10000);
    };
  }
}
