/* PMU list: link state, data freshness and latest values per PMU. */
(function () {
  "use strict";
  const WAMS = window.WAMS;
  const config = WAMS.config;
  const latest = {};
  const rows = new Map();
  document.querySelectorAll("#pmu-table tr[data-pmu-id]").forEach((tr) => rows.set(Number(tr.dataset.pmuId), tr));

  function setLink(link) {
    rows.forEach((tr) => {
      if (Number(tr.dataset.streamId) !== link.stream_id) return;
      const badge = tr.querySelector(".link-state .badge");
      badge.textContent = link.state.replaceAll("_", " ");
      badge.className = "badge link-" + link.state;
    });
  }
  Object.values(config.links || {}).forEach(setLink);

  function render(stale) {
    const now = WAMS.socket.now();
    rows.forEach((tr, id) => {
      const value = latest[id];
      const fresh = value && !stale.has(id);
      tr.dataset.stale = fresh ? "false" : "true";
      const badge = tr.querySelector(".data-state .badge");
      badge.textContent = fresh ? "LIVE" : "STALE";
      badge.className = "badge " + (fresh ? "live" : "stale");
      tr.querySelector(".freq").textContent = fresh ? WAMS.fmtNum(value.frequency_hz, 4) : "-";
      tr.querySelector(".mag").textContent = fresh ? WAMS.fmtNum(value.magnitude_pu, 3) : "-";
      tr.querySelector(".age").textContent = value ? WAMS.fmtNum(Math.max(0, now - value.t), 1) : "-";
    });
  }

  let stale = new Set(config.pmus.map((pmu) => pmu.id));
  WAMS.live({
    snapshot(msg) {
      for (const [id, values] of Object.entries(msg.pmus)) {
        const i = WAMS.lastValue(values.frequency_hz);
        if (i === null) continue;
        latest[Number(id)] = { frequency_hz: values.frequency_hz[i], magnitude_pu: (values.magnitude_pu || [])[i], t: msg.t[i] };
      }
      render(stale);
    },
    link: setLink,
    stale(staleSet) {
      stale = staleSet;
      render(stale);
    },
  });
})();
