/* Live websocket with reconnect and backoff, a server-corrected clock and stale detection.
 *
 * Every live page loads this first.  A page calls WAMS.live(handlers) once; handlers receive the
 * server's messages (hello, snapshot, channels, link, alarm, control, incident, replay_end) and
 * `stale(staleIds, pageState)` whenever freshness changes.  Staleness compares measurement
 * timestamps with the (server-corrected, or replay) clock: old data is never shown as live.
 * WAMS.live(handlers, {path, watchData}) takes another websocket (the control pages' /ws/control/)
 * and, with watchData false, counts the page live while connected (no measurements to watch).
 */
(function () {
  "use strict";
  const WAMS = (window.WAMS = window.WAMS || {});
  const configNode = document.getElementById("wams-config");
  WAMS.config = configNode ? JSON.parse(configNode.textContent) : {};
  WAMS.plotConfig = {
    displaylogo: false,
    responsive: true,
    modeBarButtonsToRemove: ["lasso2d", "select2d"],
    topojsonURL: "/static/vendor/topojson/", // served locally: control rooms are offline
  };

  // Draw latency samples (s, measurement timestamp to painted) for the benchmark and diagnostics.
  WAMS.metrics = {
    latency_s: [],
    oldest_latency_s: [],
    received_s: [], // browser clock at receipt minus the newest measurement timestamp
    sent_s: [], // server clock at send minus the newest measurement timestamp
    updates: 0,
    record(newest_t, oldest_t) {
      const now = Date.now() / 1000;
      this.latency_s.push(now - newest_t);
      this.oldest_latency_s.push(now - oldest_t);
      if (this.latency_s.length > 20000) {
        this.latency_s.splice(0, 10000);
        this.oldest_latency_s.splice(0, 10000);
      }
    },
  };

  WAMS.fmtTime = function (seconds) {
    if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return "-";
    return new Date(seconds * 1000).toISOString().substring(11, 19);
  };
  WAMS.fmtNum = function (value, digits) {
    return value === null || value === undefined || Number.isNaN(value) ? "-" : Number(value).toFixed(digits);
  };
  WAMS.wrapDeg = function (angle) {
    let a = ((angle + 180) % 360 + 360) % 360 - 180;
    return a === -180 ? 180 : a;
  };
  WAMS.lastValue = function (values) {
    if (!values) return null;
    for (let i = values.length - 1; i >= 0; i -= 1) {
      if (values[i] !== null && values[i] !== undefined) return i;
    }
    return null;
  };
  WAMS.replayQuery = function () {
    const query = new URLSearchParams(window.location.search);
    return query.get("replay") ? query : null;
  };

  const STATUS_TEXT = {
    connecting: "CONNECTING",
    live: "LIVE",
    stale: "STALE",
    disconnected: "DISCONNECTED",
    replay: "REPLAY",
    ended: "REPLAY ENDED",
  };

  class LiveSocket {
    constructor(handlers, options) {
      this.handlers = handlers || {};
      options = options || {};
      this.config = WAMS.config;
      this.watchData = options.watchData !== undefined ? options.watchData : this.config.watch_data !== false;
      this.staleAfter = this.config.stale_after_s || 2;
      this.offset = 0; // server clock minus browser clock (s)
      this.replay = null; // {clock, at, speed} while replaying
      this.ended = false;
      this.connected = false;
      this.attempts = 0;
      this.pmuLast = {}; // pmu id -> newest measurement timestamp with a frequency value
      this.staleKey = null;
      this.pageState = "connecting";
      const replay = options.path ? null : WAMS.replayQuery();
      this.path = options.path || (replay ? "/ws/replay/?" + replay.toString() : this.config.ws_path);
      if (this.handlers.pointsPerS) {
        this.path += (this.path.includes("?") ? "&" : "?") + "points=" + this.handlers.pointsPerS;
      }
      this.statusNode = document.getElementById("live-status");
      this.clockNode = document.getElementById("clock");
      this.bannerNode = document.getElementById("stale-banner");
      this.connect();
      window.setInterval(() => this.check(), 250);
    }

    url() {
      const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
      return scheme + "//" + window.location.host + this.path;
    }

    connect() {
      this.setState(this.attempts ? "disconnected" : "connecting");
      const ws = new WebSocket(this.url());
      this.ws = ws;
      ws.onopen = () => {
        this.connected = true;
        this.attempts = 0;
      };
      ws.onmessage = (message) => this.dispatch(JSON.parse(message.data));
      ws.onclose = () => {
        this.connected = false;
        if (this.ended) return;
        this.attempts += 1;
        this.setState("disconnected");
        // Exponential backoff with jitter: 0.5 s, 1 s, 2 s ... capped at 10 s.
        const delay = Math.min(10, 0.5 * 2 ** (this.attempts - 1)) * (0.75 + Math.random() * 0.5);
        window.setTimeout(() => this.connect(), delay * 1000);
      };
    }

    now() {
      if (this.replay) {
        const elapsed = (performance.now() - this.replay.at) / 1000;
        return this.replay.clock + (this.ended ? 0 : elapsed * this.replay.speed);
      }
      return Date.now() / 1000 + this.offset;
    }

    dispatch(msg) {
      if (msg.server_time) this.offset = msg.server_time - Date.now() / 1000;
      if (msg.type === "hello") {
        this.staleAfter = msg.stale_after_s;
        if (msg.replay) {
          this.replay = { clock: msg.replay.start, at: performance.now(), speed: msg.replay.speed };
          const banner = document.getElementById("replay-banner");
          if (banner) {
            banner.hidden = false;
            banner.replaceChildren(
              "REPLAY of stored data from " + WAMS.fmtTime(msg.replay.start) + " to " + WAMS.fmtTime(msg.replay.end) +
                " UTC at " + msg.replay.speed + "x - not live. "
            );
            const back = document.createElement("a");
            back.href = window.location.pathname;
            back.textContent = "Back to live";
            banner.append(back);
          }
        }
      }
      if (msg.replay && this.replay && typeof msg.replay.clock === "number") {
        // Frames carry the replay clock; the hello's replay block has only start, end and speed.
        this.replay.clock = msg.replay.clock;
        this.replay.at = performance.now();
      }
      if (msg.type === "snapshot" && msg.t.length && !msg.replay) {
        const newest = msg.t[msg.t.length - 1];
        WAMS.metrics.received_s.push(Date.now() / 1000 - newest);
        WAMS.metrics.sent_s.push(msg.server_time - newest);
        if (WAMS.metrics.received_s.length > 20000) {
          WAMS.metrics.received_s.splice(0, 10000);
          WAMS.metrics.sent_s.splice(0, 10000);
        }
      }
      if (msg.type === "snapshot") {
        for (const [id, values] of Object.entries(msg.pmus)) {
          const i = WAMS.lastValue(values.frequency_hz);
          if (i !== null && (!(id in this.pmuLast) || msg.t[i] > this.pmuLast[id])) this.pmuLast[id] = msg.t[i];
        }
      }
      if (msg.type === "replay_end") {
        this.ended = true;
        if (this.replay) this.replay.clock = msg.clock;
      }
      const handler = this.handlers[msg.type];
      if (handler) handler(msg, this);
      if (msg.type === "snapshot" || msg.type === "hello" || msg.type === "replay_end") this.check();
    }

    setState(state) {
      this.pageState = state;
      document.body.dataset.liveState = state;
      if (this.statusNode) {
        let text = STATUS_TEXT[state];
        if (state === "replay" && this.replay) text += " " + this.replay.speed + "x";
        this.statusNode.textContent = text;
        this.statusNode.className = "status status-" + state;
      }
    }

    check() {
      const now = this.now();
      if (this.clockNode) {
        this.clockNode.textContent = (this.replay ? "replay " : "") + WAMS.fmtTime(now) + " UTC";
      }
      const stale = new Set();
      let newest = null;
      for (const pmu of this.config.pmus || []) {
        const last = this.pmuLast[String(pmu.id)];
        if (last !== undefined && (newest === null || last > newest)) newest = last;
        if (last === undefined || now - last > this.staleAfter) stale.add(pmu.id);
      }
      let state;
      if (this.ended) state = "ended";
      else if (!this.connected) state = this.attempts ? "disconnected" : "connecting";
      else if (!this.watchData) state = "live";
      else if (newest === null || now - newest > this.staleAfter) state = "stale";
      else state = this.replay ? "replay" : "live";
      if (state !== this.pageState) this.setState(state);
      if (this.bannerNode) {
        const show = state === "stale" || state === "disconnected";
        this.bannerNode.hidden = !show;
        if (show) {
          const since = newest === null ? "no measurement received yet" : "newest measurement " + WAMS.fmtTime(newest) + " UTC";
          this.bannerNode.textContent =
            (state === "stale" ? "STALE DATA - " : "DISCONNECTED - reconnecting; ") + since + ". Values shown are not live.";
        }
      }
      const key = state + "|" + Array.from(stale).sort().join(",");
      if (key !== this.staleKey) {
        this.staleKey = key;
        if (this.handlers.stale) this.handlers.stale(stale, state, this);
      }
    }
  }

  WAMS.live = function (handlers, options) {
    WAMS.socket = new LiveSocket(handlers, options);
    return WAMS.socket;
  };

  // Extend live time series with one snapshot: one trace per PMU, bounded to the window.
  WAMS.extendSeries = function (div, pmus, msg, quantity, socket, transform) {
    const x = msg.t.map((t) => t * 1000);
    const xs = [];
    const ys = [];
    const indices = [];
    pmus.forEach((pmu, index) => {
      const values = msg.pmus[String(pmu.id)];
      if (!values || !values[quantity]) return;
      xs.push(x);
      ys.push(transform ? values[quantity].map(transform) : values[quantity]);
      indices.push(index);
    });
    if (!indices.length) return Promise.resolve();
    const windowS = WAMS.config.window_s || 120;
    const now = socket.now();
    div.layout.xaxis.range = [(now - windowS) * 1000, now * 1000];
    div.layout.xaxis.autorange = false;
    const pointsPerS = (socket.handlers && socket.handlers.pointsPerS) || 10;
    return Plotly.extendTraces(div, { x: xs, y: ys }, indices, Math.ceil(windowS * pointsPerS * 1.2));
  };

  // Mark traces of stale PMUs in a legend ("(STALE)") and dim them.
  WAMS.markStaleTraces = function (div, pmus, stale) {
    const names = pmus.map((pmu) => pmu.name + (stale.has(pmu.id) ? " (STALE)" : ""));
    const opacity = pmus.map((pmu) => (stale.has(pmu.id) ? 0.35 : 1));
    return Plotly.restyle(div, { name: names, opacity: opacity });
  };
})();
