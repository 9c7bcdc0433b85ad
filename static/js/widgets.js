/* Shared live widgets: alarm list, link table, PMU freshness chips. */
(function () {
  "use strict";
  const WAMS = (window.WAMS = window.WAMS || {});

  function el(tag, attrs, text) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value !== null && value !== undefined) node.setAttribute(key, value);
    }
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }
  WAMS.el = el;

  const SEVERITY_ORDER = { critical: 0, alarm: 1, warning: 2, info: 3 };
  const KIND_LABELS = { rocof: "ROCOF", data_quality: "Data quality", line_trip: "Line trip" };
  WAMS.kindLabel = function (kind) {
    if (KIND_LABELS[kind]) return KIND_LABELS[kind];
    const text = kind.replaceAll("_", " ");
    return text.charAt(0).toUpperCase() + text.slice(1);
  };

  // Active alarms, newest first; cleared ones leave the list.
  WAMS.alarmList = function (listNode, emptyNode, countNode, initial, filter) {
    const alarms = new Map();
    function render() {
      const rows = Array.from(alarms.values()).sort((a, b) => (a.started_at < b.started_at ? 1 : -1));
      listNode.replaceChildren();
      for (const alarm of rows) {
        const li = el("li", { class: "alarm sev-" + alarm.severity + " state-" + alarm.state, "data-event-id": alarm.event_id });
        const head = el("div", { class: "alarm-head" });
        head.append(el("span", { class: "badge sev-" + alarm.severity }, alarm.severity.toUpperCase()));
        head.append(el("span", { class: "alarm-kind" }, WAMS.kindLabel(alarm.kind)));
        head.append(el("span", { class: "alarm-time" }, WAMS.fmtTime(Date.parse(alarm.started_at) / 1000) + " UTC"));
        head.append(el("span", { class: "alarm-state" }, alarm.state));
        const link = el("a", { href: "/events/" + alarm.event_id + "/", class: "alarm-summary" }, alarm.summary);
        li.append(head, link);
        listNode.append(li);
      }
      if (emptyNode) emptyNode.hidden = rows.length > 0;
      if (countNode) countNode.textContent = String(rows.length);
      listNode.dataset.count = String(rows.length);
    }
    function upsert(alarm) {
      if (filter && !filter(alarm)) return;
      if (alarm.state === "cleared") alarms.delete(alarm.event_id);
      else alarms.set(alarm.event_id, alarm);
    }
    (initial || []).forEach(upsert);
    render();
    return {
      update(alarm) {
        upsert(alarm);
        render();
      },
      active() {
        return Array.from(alarms.values());
      },
      severityOrder: SEVERITY_ORDER,
    };
  };

  // One row per stream: state, path, rate, latency and counters.
  WAMS.linkTable = function (tbody, summaryNode, initial) {
    const links = new Map();
    function render() {
      const rows = Array.from(links.values()).sort((a, b) => (a.stream < b.stream ? -1 : 1));
      tbody.replaceChildren();
      const counts = {};
      for (const link of rows) {
        counts[link.state] = (counts[link.state] || 0) + 1;
        const tr = el("tr", { "data-stream-id": link.stream_id, class: "link-" + link.state });
        tr.append(
          el("td", {}, link.stream),
          el("td", {}, null),
          el("td", {}, link.path || "-"),
          el("td", { class: "num" }, WAMS.fmtNum(link.rate_fps, 1)),
          el("td", { class: "num" }, WAMS.fmtNum(link.latency_ms, 0)),
          el("td", { class: "num" }, String(link.gaps ?? "-")),
          el("td", { class: "num" }, String(link.frames_late ?? "-")),
          el("td", { class: "num" }, String(link.frames_bad ?? "-"))
        );
        tr.children[1].append(el("span", { class: "badge link-" + link.state }, link.state.replaceAll("_", " ")));
        tbody.append(tr);
      }
      if (summaryNode && WAMS.replayQuery()) {
        summaryNode.textContent = "link states are not part of a replay";
      } else if (summaryNode) {
        summaryNode.textContent = Object.entries(counts)
          .map(([state, n]) => n + " " + state.replaceAll("_", " "))
          .join(", ") || "no link reported";
      }
    }
    for (const link of Object.values(initial || {})) links.set(link.stream_id, link);
    render();
    return {
      update(link) {
        links.set(link.stream_id, { ...(links.get(link.stream_id) || {}), ...link });
        render();
      },
      state(streamId) {
        const link = links.get(streamId);
        return link ? link.state : null;
      },
    };
  };

  // A chip per PMU showing whether its data is fresh.
  WAMS.pmuChips = function (container, pmus, colours) {
    const freshText = WAMS.replayQuery() ? "DATA" : "LIVE";
    const chips = new Map();
    pmus.forEach((pmu, index) => {
      const chip = el("a", { class: "chip stale", href: pmu.url, "data-pmu-id": pmu.id, "data-stale": "true", title: pmu.substation });
      if (colours) chip.append(el("span", { class: "swatch", style: "background:" + colours[index] }));
      chip.append(el("span", { class: "chip-name" }, pmu.name), el("span", { class: "chip-state" }, "STALE"));
      container.append(chip);
      chips.set(pmu.id, chip);
    });
    return {
      update(stale) {
        for (const [id, chip] of chips) {
          const isStale = stale.has(id);
          chip.classList.toggle("stale", isStale);
          chip.dataset.stale = isStale ? "true" : "false";
          chip.querySelector(".chip-state").textContent = isStale ? "STALE" : freshText;
        }
      },
    };
  };
})();
