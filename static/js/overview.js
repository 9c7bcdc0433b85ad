/* Overview: map coloured by link and alarm state, frequency and ROCOF of every PMU, alarms, links. */
(function () {
  "use strict";
  const WAMS = window.WAMS;
  const config = WAMS.config;
  const pmus = config.pmus;
  const figures = config.figures;
  const COLOURS = { ok: "#3fb950", alarm: "#ff5f56", stale: "#9aa4ae", down: "#d29922" };

  const mapDiv = document.getElementById("map");
  const freqDiv = document.getElementById("frequency");
  const rocofDiv = document.getElementById("rocof");
  Plotly.newPlot(mapDiv, figures.map.data, figures.map.layout, WAMS.plotConfig);
  Plotly.newPlot(freqDiv, figures.frequency.data, figures.frequency.layout, WAMS.plotConfig);
  Plotly.newPlot(rocofDiv, figures.rocof.data, figures.rocof.layout, WAMS.plotConfig);
  mapDiv.on("plotly_click", (event) => {
    const id = event.points[0].customdata;
    const substation = config.substations.find((s) => s.id === id);
    if (substation) window.location.href = substation.url;
  });

  // A replay shows the alarms and data of its window only, never today's.
  const replaying = WAMS.replayQuery() !== null;
  let board = null;
  const alarms = WAMS.alarmList(
    document.getElementById("alarm-list"),
    document.getElementById("alarm-empty"),
    document.getElementById("alarm-count"),
    replaying ? [] : config.alarms,
    null,
    (alarm) => board !== null && board.folds(alarm.event_id)
  );
  board = WAMS.incidentBoard(
    document.getElementById("incident-banner"),
    document.getElementById("incident-list"),
    document.getElementById("incident-count"),
    document.getElementById("alarm-incidents"),
    replaying ? [] : config.incidents || [],
    (rows) => {
      alarms.refresh(rows.length);
      paintIncidents(rows);
    }
  );
  const links = WAMS.linkTable(
    document.querySelector("#link-table tbody"),
    document.getElementById("link-summary"),
    replaying ? {} : config.links
  );
  const colours = figures.frequency.data.map((trace) => trace.line.color);
  const chips = WAMS.pmuChips(document.getElementById("pmu-chips"), pmus, colours);
  const pmuById = new Map(pmus.map((pmu) => [pmu.id, pmu]));
  let stale = new Set(pmus.map((pmu) => pmu.id));
  let mapKey = "";

  function substationState(substation) {
    const ids = new Set(substation.pmu_ids);
    if (alarms.active().some((alarm) => alarm.pmu_ids.some((id) => ids.has(id)))) return "alarm";
    if (!substation.pmu_ids.length) return "stale";
    const linkStates = substation.pmu_ids.map((id) => links.state(pmuById.get(id).stream_id));
    if (linkStates.some((state) => state !== null && state !== "streaming")) return "down";
    if (substation.pmu_ids.some((id) => stale.has(id))) return "stale";
    return "ok";
  }

  function paintMap() {
    const states = config.substations.map(substationState);
    const key = states.join(",");
    if (key === mapKey) return;
    mapKey = key;
    mapDiv.dataset.states = key;
    Plotly.restyle(mapDiv, { "marker.color": [states.map((state) => COLOURS[state])] }, [0]);
  }

  // The map marks each current incident: a red ring on its substation, its line drawn red.
  const RING_SIZES = [26, 34];
  let ringPhase = 0;
  function paintIncidents(rows) {
    const lat = [];
    const lon = [];
    const text = [];
    const lineLat = [];
    const lineLon = [];
    for (const incident of rows) {
      const mark = incident.highlight;
      if (!mark) continue;
      for (const point of mark.points || []) {
        lat.push(point.lat);
        lon.push(point.lon);
        text.push(incident.kind_label + ": " + incident.location_text);
      }
      if (mark.line && mark.line.length === 2) {
        lineLat.push(mark.line[0].lat, mark.line[1].lat, null);
        lineLon.push(mark.line[0].lon, mark.line[1].lon, null);
      }
    }
    mapDiv.dataset.incidents = String(lat.length + lineLat.length / 3);
    Plotly.restyle(mapDiv, { lat: [lineLat, lat], lon: [lineLon, lon], text: [[], text] }, [1, 2]);
  }
  window.setInterval(() => {
    // Pulse the rings while an incident is shown (one small restyle of one trace).
    if (mapDiv.dataset.incidents === undefined || mapDiv.dataset.incidents === "0") return;
    ringPhase = 1 - ringPhase;
    Plotly.restyle(mapDiv, { "marker.size": RING_SIZES[ringPhase] }, [2]);
  }, 800);

  // Draw once per animation frame whatever arrived since the last one: a busy or slow tab merges
  // updates instead of queueing redraws, so what it shows never falls behind the clock.
  const pending = [];
  const rocofPending = [];
  const ROCOF_INTERVAL_MS = 500;
  const MAX_PENDING = 1200; // a hidden tab (no animation frames) keeps at most 2 minutes of updates
  let rocofDrawnAt = 0;
  let frameRequested = false;

  function scheduleDraw(socket) {
    if (frameRequested) return;
    frameRequested = true;
    window.requestAnimationFrame(() => {
      frameRequested = false;
      draw(socket);
    });
  }

  function draw(socket) {
    if (!pending.length) return;
    const msg = pending.length === 1 ? pending[0] : mergeMessages(pending);
    pending.length = 0;
    const draws = [WAMS.extendSeries(freqDiv, pmus, msg, "frequency_hz", socket)];
    if (performance.now() - rocofDrawnAt >= ROCOF_INTERVAL_MS) {
      // The ROCOF figure is redrawn at most twice a second: half the drawing cost of the page.
      rocofDrawnAt = performance.now();
      const batch = rocofPending.length === 1 ? rocofPending[0] : mergeMessages(rocofPending);
      rocofPending.length = 0;
      draws.push(WAMS.extendSeries(rocofDiv, pmus, batch, "rocof_hz_per_s", socket));
    }
    Promise.all(draws).then(() => {
      WAMS.metrics.updates += 1;
      freqDiv.dataset.updates = String(WAMS.metrics.updates);
      if (!socket.replay) WAMS.metrics.record(msg.t[msg.t.length - 1], msg.t[0]);
    });
  }

  function mergeMessages(messages) {
    const merged = { t: [], pmus: {} };
    let offset = 0;
    for (const msg of messages) {
      for (const [id, values] of Object.entries(msg.pmus)) {
        const target = (merged.pmus[id] = merged.pmus[id] || {});
        for (const [quantity, series] of Object.entries(values)) {
          const list = (target[quantity] = target[quantity] || new Array(offset).fill(null));
          while (list.length < offset) list.push(null);
          list.push(...series);
        }
      }
      merged.t.push(...msg.t);
      offset = merged.t.length;
    }
    for (const values of Object.values(merged.pmus)) {
      for (const list of Object.values(values)) while (list.length < offset) list.push(null);
    }
    return merged;
  }

  WAMS.live({
    pointsPerS: config.points_per_s, // fewer with many PMUs (server's point budget per figure)
    snapshot(msg, socket) {
      pending.push(msg);
      rocofPending.push(msg);
      if (pending.length > MAX_PENDING) pending.shift();
      if (rocofPending.length > MAX_PENDING) rocofPending.shift();
      scheduleDraw(socket);
    },
    link(msg) {
      links.update(msg);
      paintMap();
    },
    alarm(msg) {
      alarms.update(msg);
      paintMap();
    },
    incident(msg) {
      if (replaying) return;
      board.update(msg);
      alarms.refresh(board.current().length);
      paintMap();
    },
    stale(staleSet, state) {
      stale = staleSet;
      chips.update(staleSet);
      WAMS.markStaleTraces(freqDiv, pmus, staleSet);
      WAMS.markStaleTraces(rocofDiv, pmus, staleSet);
      paintMap();
    },
  });
  board.render();
  paintMap();
})();
