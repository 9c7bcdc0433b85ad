/* Phasors: voltage phasors relative to a reference PMU, corridor angle differences, magnitudes in pu. */
(function () {
  "use strict";
  const WAMS = window.WAMS;
  const config = WAMS.config;
  const pmus = config.pmus;
  const figures = config.figures;
  const STALE_COLOUR = "#9aa4ae";
  const polarDiv = document.getElementById("polar");
  const corridorDiv = document.getElementById("corridors");
  const magnitudeDiv = document.getElementById("magnitudes");
  const referenceSelect = document.getElementById("reference");
  const referenceNote = document.getElementById("reference-note");
  const tbody = document.querySelector("#phasor-table tbody");
  Plotly.newPlot(polarDiv, figures.polar.data, figures.polar.layout, WAMS.plotConfig);
  Plotly.newPlot(corridorDiv, figures.corridors.data, figures.corridors.layout, WAMS.plotConfig);
  Plotly.newPlot(magnitudeDiv, figures.magnitudes.data, figures.magnitudes.layout, WAMS.plotConfig);
  const colours = figures.polar.data.map((trace) => trace.line.color);

  let reference = config.reference;
  let stale = new Set(pmus.map((pmu) => pmu.id));
  const latest = {}; // pmu id -> {magnitude_pu, angle_deg, t}
  let updates = 0;

  referenceSelect.addEventListener("change", () => {
    reference = Number(referenceSelect.value);
    const url = new URL(window.location.href);
    url.searchParams.set("ref", String(reference));
    window.history.replaceState(null, "", url);
    draw();
  });

  const rows = new Map();
  pmus.forEach((pmu, index) => {
    const tr = WAMS.el("tr", { "data-pmu-id": pmu.id, "data-stale": "true" });
    const name = WAMS.el("td");
    name.append(WAMS.el("span", { class: "swatch-dot", style: "color:" + colours[index] }, "\u25CF "), WAMS.el("a", { href: pmu.url }, pmu.name));
    tr.append(name, WAMS.el("td", { class: "num" }, "-"), WAMS.el("td", { class: "num" }, "-"), WAMS.el("td", { class: "num" }, "-"), WAMS.el("td"));
    tr.children[4].append(WAMS.el("span", { class: "badge stale" }, "STALE"));
    tbody.append(tr);
    rows.set(pmu.id, tr);
  });

  function relativeAngle(id) {
    const value = latest[id];
    const ref = latest[reference];
    if (!value || !ref || stale.has(id) || stale.has(reference)) return null;
    return WAMS.wrapDeg(value.angle_deg - ref.angle_deg);
  }

  function magnitudeColour(value) {
    if (value === null) return STALE_COLOUR;
    if (value < 0.9 || value > 1.1) return "#ff5f56";
    if (value < 0.95 || value > 1.05) return "#d29922";
    return "#3fb950";
  }

  function draw() {
    const now = WAMS.socket ? WAMS.socket.now() : Date.now() / 1000;
    const refStale = stale.has(reference);
    referenceNote.hidden = !refStale;
    referenceNote.textContent = refStale ? "The reference PMU has no live data: angles cannot be shown. Choose another reference." : "";
    const r = [];
    const theta = [];
    const names = [];
    const magnitudes = [];
    pmus.forEach((pmu) => {
      const value = latest[pmu.id];
      const angle = relativeAngle(pmu.id);
      const fresh = value && !stale.has(pmu.id);
      r.push(fresh && angle !== null ? [0, value.magnitude_pu] : [0, null]);
      theta.push(fresh && angle !== null ? [0, angle] : [0, null]);
      names.push(pmu.name + (stale.has(pmu.id) ? " (STALE)" : ""));
      const magnitude = fresh ? value.magnitude_pu : null;
      magnitudes.push(magnitude);
      const tr = rows.get(pmu.id);
      tr.dataset.stale = fresh ? "false" : "true";
      tr.children[1].textContent = WAMS.fmtNum(magnitude, 3);
      tr.children[2].textContent = WAMS.fmtNum(angle, 1);
      tr.children[3].textContent = value ? WAMS.fmtNum(Math.max(0, now - value.t), 1) : "-";
      const badge = tr.children[4].firstChild;
      badge.textContent = fresh ? "LIVE" : "STALE";
      badge.className = "badge " + (fresh ? "live" : "stale");
    });
    Plotly.restyle(polarDiv, { r: r, theta: theta, name: names });
    Plotly.restyle(magnitudeDiv, {
      y: [magnitudes],
      "marker.color": [magnitudes.map(magnitudeColour)],
      x: [names],
    });
    const differences = config.corridors.map((corridor) => {
      const a = latest[corridor.from_pmu];
      const b = latest[corridor.to_pmu];
      if (!a || !b || stale.has(corridor.from_pmu) || stale.has(corridor.to_pmu)) return null;
      return WAMS.wrapDeg(a.angle_deg - b.angle_deg);
    });
    Plotly.restyle(
      corridorDiv,
      {
        x: [differences],
        "marker.color": [
          differences.map((d, i) => {
            if (d === null) return STALE_COLOUR;
            const share = Math.abs(d) / config.corridors[i].limit_deg;
            return share >= 1 ? "#ff5f56" : share >= 0.8 ? "#d29922" : "#3fb950";
          }),
        ],
        text: [differences.map((d, i) => (d === null ? "STALE" : d.toFixed(1) + " / " + config.corridors[i].limit_deg.toFixed(0) + " deg"))],
      },
      [0]
    );
    updates += 1;
    polarDiv.dataset.updates = String(updates);
  }

  WAMS.live({
    snapshot(msg) {
      for (const [id, values] of Object.entries(msg.pmus)) {
        const i = WAMS.lastValue(values.angle_deg);
        const j = WAMS.lastValue(values.magnitude_pu);
        if (i === null || j === null) continue;
        latest[Number(id)] = { angle_deg: values.angle_deg[i], magnitude_pu: values.magnitude_pu[j], t: msg.t[i] };
      }
      draw();
    },
    stale(staleSet) {
      stale = staleSet;
      draw();
    },
  });
})();
