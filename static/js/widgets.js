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

  // Active alarms, newest first; cleared ones leave the list (and so do those `hidden` says an incident shows).
  WAMS.alarmList = function (listNode, emptyNode, countNode, initial, filter, hidden) {
    const alarms = new Map();
    let extra = 0; // rows shown above this list (incidents) that count as alarms too
    function render() {
      const rows = Array.from(alarms.values())
        .filter((alarm) => !(hidden && hidden(alarm)))
        .sort((a, b) => (a.started_at < b.started_at ? 1 : -1));
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
      if (emptyNode) emptyNode.hidden = rows.length + extra > 0;
      if (countNode) countNode.textContent = String(rows.length + extra);
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
      refresh(extraRows) {
        extra = extraRows || 0;
        render();
      },
      severityOrder: SEVERITY_ORDER,
    };
  };

  // Incidents: unacknowledged and active first, then the most severe and newest.
  function alarmView(incident) {
    return incident.alarm_view || { known: false, acknowledged: false, shelved: false, label: "not acknowledged" };
  }
  WAMS.incidentCurrent = function (incident) {
    const alarm = alarmView(incident);
    if (alarm.shelved) return false;
    if (!alarm.known) return incident.state === "active";
    return incident.state === "active" || !alarm.acknowledged;
  };
  WAMS.incidentOrder = function (a, b) {
    const key = (i) => [alarmView(i).acknowledged ? 1 : 0, i.state === "active" ? 0 : 1, SEVERITY_ORDER[i.severity] ?? 9];
    const ka = key(a);
    const kb = key(b);
    for (let k = 0; k < ka.length; k += 1) if (ka[k] !== kb[k]) return ka[k] - kb[k];
    return Date.parse(b.started_at) - Date.parse(a.started_at);
  };

  function incidentNode(tag, incident, withSummary) {
    const alarm = alarmView(incident);
    const node = el(tag, {
      class: "incident sev-" + incident.severity + " state-" + incident.state + (alarm.acknowledged ? "" : " unacked"),
      "data-incident-id": incident.incident_id,
    });
    const head = el("div", { class: "alarm-head" });
    head.append(el("span", { class: "badge sev-" + incident.severity }, incident.severity.toUpperCase()));
    head.append(el("a", { class: "incident-kind", href: incident.url }, incident.kind_label));
    head.append(el("span", { class: "incident-location" }, incident.location_text));
    head.append(el("span", { class: "alarm-time" }, "since " + WAMS.fmtTime(Date.parse(incident.started_at) / 1000) + " UTC"));
    if (incident.key_figure) head.append(el("span", { class: "incident-figure" }, incident.key_figure));
    head.append(el("span", { class: "alarm-state" }, incident.state + (alarm.known ? ", " + alarm.label : "")));
    node.append(head);
    if (withSummary && incident.summary) node.append(el("a", { href: incident.url, class: "alarm-summary" }, incident.summary));
    return node;
  }

  // The overview's incident banner and the incident rows of its alarm list, kept from page data and live messages.
  WAMS.incidentBoard = function (bannerNode, bannerList, countNode, alarmNode, initial, onChange) {
    const incidents = new Map();
    function current() {
      return Array.from(incidents.values()).filter(WAMS.incidentCurrent).sort(WAMS.incidentOrder);
    }
    function render() {
      const rows = current();
      bannerList.replaceChildren(...rows.map((incident) => incidentNode("li", incident, false)));
      alarmNode.replaceChildren(...rows.map((incident) => incidentNode("li", incident, true)));
      bannerNode.hidden = rows.length === 0;
      bannerNode.dataset.count = String(rows.length);
      if (countNode) countNode.textContent = String(rows.length);
      if (onChange) onChange(rows);
    }
    (initial || []).forEach((incident) => incidents.set(incident.incident_id, incident));
    return {
      render,
      update(incident) {
        incidents.set(incident.incident_id, incident);
        render();
      },
      current,
      // Symptom events of known incidents: the alarm list shows the incident instead.
      folds(eventId) {
        for (const incident of incidents.values()) if ((incident.events || []).includes(eventId)) return true;
        return false;
      },
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
