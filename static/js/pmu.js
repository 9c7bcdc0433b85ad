/* PMU detail: every channel live, STAT decoded, link statistics and the path in use. */
(function () {
  "use strict";
  const WAMS = window.WAMS;
  const config = WAMS.config;
  const pmu = config.pmus[0];
  const pmus = [pmu];
  const figures = config.figures;
  const divs = {};
  for (const name of ["frequency", "rocof", "magnitude", "angle"]) {
    divs[name] = document.getElementById(name);
    Plotly.newPlot(divs[name], figures[name].data, figures[name].layout, WAMS.plotConfig);
  }
  const stateBadge = document.getElementById("pmu-data-state");
  const alarms = WAMS.alarmList(document.getElementById("alarm-list"), document.getElementById("alarm-empty"), null, config.alarms, (alarm) =>
    alarm.pmu_ids.includes(pmu.id)
  );

  const TIME_QUALITY = ["not used", "< 100 ns", "< 1 us", "< 10 us", "< 100 us", "< 1 ms", "< 10 ms", "> 10 ms or unknown"];
  const UNLOCK = ["locked (or lost < 10 s)", "lost 10-100 s", "lost 100-1000 s", "lost > 1000 s"];
  const DATA_ERROR = ["good", "PMU error", "test mode / absent", "PMU error, no data"];
  function flag(text, kind) {
    return WAMS.el("span", { class: "flag " + kind }, text);
  }
  function showStat(word, t) {
    document.getElementById("stat-word").textContent = "0x" + word.toString(16).padStart(4, "0");
    document.getElementById("newest-sample").textContent = WAMS.fmtTime(t) + " UTC";
    const error = (word >> 14) & 3;
    const flags = [
      flag("data: " + DATA_ERROR[error], error === 0 ? "good" : "bad"),
      flag((word >> 13) & 1 ? "NOT time-synchronised" : "time-synchronised", (word >> 13) & 1 ? "bad" : "good"),
      flag("sorted by " + ((word >> 12) & 1 ? "arrival" : "time stamp"), "neutral"),
      flag((word >> 11) & 1 ? "trigger (reason " + (word & 15) + ")" : "no trigger", (word >> 11) & 1 ? "bad" : "good"),
      flag((word >> 10) & 1 ? "configuration change pending" : "configuration current", (word >> 10) & 1 ? "bad" : "good"),
      flag((word >> 9) & 1 ? "data modified" : "data not modified", (word >> 9) & 1 ? "bad" : "good"),
      flag("time quality " + TIME_QUALITY[(word >> 6) & 7], "neutral"),
      flag("time lock: " + UNLOCK[(word >> 4) & 3], (word >> 4) & 3 ? "bad" : "good"),
    ];
    document.getElementById("stat-flags").replaceChildren(...flags);
  }

  function setCell(key, part, text) {
    const row = document.querySelector('#channel-table tr[data-channel="' + key + '"]');
    if (row) row.querySelector(part).textContent = text;
  }

  function showLink(link) {
    document.querySelectorAll("#link-stats dd[data-key]").forEach((dd) => {
      const value = link[dd.dataset.key];
      if (value === undefined) return;
      if (dd.dataset.key === "rate_fps") dd.textContent = WAMS.fmtNum(value, 1);
      else if (dd.dataset.key === "latency_ms") dd.textContent = WAMS.fmtNum(value, 0);
      else dd.textContent = value === null || value === "" ? "-" : String(value).replaceAll("_", " ");
    });
    document.querySelectorAll("#path-table tr[data-path]").forEach((tr) => {
      const inUse = tr.dataset.path === link.path;
      tr.classList.toggle("in-use", inUse);
      const mark = tr.querySelector(".in-use-mark");
      mark.replaceChildren();
      if (inUse) mark.append(WAMS.el("span", { class: "badge live" }, "in use"));
    });
  }
  Object.values(config.links || {}).forEach(showLink);

  let newest = null;
  WAMS.live({
    snapshot(msg, socket) {
      WAMS.extendSeries(divs.frequency, pmus, msg, "frequency_hz", socket);
      WAMS.extendSeries(divs.rocof, pmus, msg, "rocof_hz_per_s", socket);
      WAMS.extendSeries(divs.magnitude, pmus, msg, "magnitude_pu", socket);
      WAMS.extendSeries(divs.angle, pmus, msg, "angle_deg", socket);
      const values = msg.pmus[String(pmu.id)];
      if (!values) return;
      const i = WAMS.lastValue(values.frequency_hz);
      if (i === null) return;
      newest = msg.t[i];
      if (values.stat && values.stat[i] !== null) showStat(values.stat[i], msg.t[i]);
      const magnitude = values.magnitude_pu ? values.magnitude_pu[i] : null;
      setCell("phasor:0", ".value", magnitude === null ? "-" : (magnitude * config.base_v / 1000).toFixed(2) + " kV L-N (" + magnitude.toFixed(3) + " pu)");
      setCell("phasor:0", ".angle", WAMS.fmtNum(values.angle_deg ? values.angle_deg[i] : null, 2));
    },
    channels(msg) {
      // Per-channel values, keyed "<kind>:<order>:<part>" with part magnitude, angle_deg or value.
      for (const [key, series] of Object.entries(msg.channels || {})) {
        const i = WAMS.lastValue(series);
        if (i === null) continue;
        const [kind, order, part] = key.split(":");
        setCell(kind + ":" + order, part === "angle_deg" ? ".angle" : ".value", WAMS.fmtNum(series[i], part === "angle_deg" ? 2 : 3));
      }
    },
    link: showLink,
    alarm: (msg) => alarms.update(msg),
    stale(stale, state, socket) {
      const isStale = stale.has(pmu.id);
      stateBadge.textContent = isStale ? "STALE" : "LIVE";
      stateBadge.className = "badge " + (isStale ? "stale" : "live");
      stateBadge.dataset.stale = isStale ? "true" : "false";
      if (isStale) {
        // Old values must not look live: blank them until fresh data arrives.
        document.querySelectorAll("#channel-table td.value").forEach((td) => (td.textContent = "-"));
        document.querySelectorAll("#channel-table tr[data-channel^='phasor'] td.angle").forEach((td) => (td.textContent = "-"));
        document.getElementById("stat-flags").replaceChildren(flag("no live data", "bad"));
      }
      WAMS.markStaleTraces(divs.frequency, pmus, stale);
    },
  });
  window.setInterval(() => {
    if (newest !== null && WAMS.socket) document.getElementById("sample-age").textContent = WAMS.fmtNum(WAMS.socket.now() - newest, 1) + " s";
  }, 500);
})();
