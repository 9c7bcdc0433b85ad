/* Incidents list: a new or changed incident updates its row live (new ones at the top). */
(function () {
  "use strict";
  const WAMS = window.WAMS;
  const table = document.getElementById("incident-table");
  const tbody = table.querySelector("tbody");
  const kindFilter = table.dataset.kind;
  const stateFilter = table.dataset.state;

  function wanted(incident) {
    if (kindFilter && incident.kind !== kindFilter) return false;
    if (stateFilter === "current") return WAMS.incidentCurrent(incident);
    if (stateFilter === "active" || stateFilter === "ended") return incident.state === stateFilter;
    if (stateFilter === "unacknowledged") return !(incident.alarm_view && incident.alarm_view.acknowledged);
    return true;
  }

  function row(incident) {
    const alarm = incident.alarm_view || { acknowledged: false, label: "not acknowledged" };
    const tr = WAMS.el("tr", {
      "data-incident-id": incident.incident_id,
      class: "new sev-" + incident.severity + (alarm.acknowledged ? "" : " unacked"),
    });
    const kind = WAMS.el("td");
    kind.append(WAMS.el("a", { href: incident.url }, incident.kind_label));
    const severity = WAMS.el("td");
    severity.append(WAMS.el("span", { class: "badge sev-" + incident.severity }, incident.severity));
    const state = WAMS.el("td");
    state.append(WAMS.el("span", { class: "badge state-" + incident.state }, incident.state));
    tr.append(
      WAMS.el("td", {}, incident.started_text),
      severity,
      kind,
      WAMS.el("td", {}, incident.location_text + (incident.method_text ? " (" + incident.method_text + ")" : "")),
      WAMS.el("td", {}, incident.key_figure || "-"),
      state,
      WAMS.el("td", { class: "alarm-state" }, alarm.label),
      WAMS.el("td", { class: "num" }, String((incident.events || []).length))
    );
    return tr;
  }

  WAMS.live({
    incident(incident) {
      const old = tbody.querySelector('tr[data-incident-id="' + incident.incident_id + '"]');
      if (!wanted(incident)) {
        if (old) old.remove();
        return;
      }
      const empty = tbody.querySelector("tr.empty");
      if (empty) empty.remove();
      const fresh = row(incident);
      if (old) old.replaceWith(fresh);
      else tbody.prepend(fresh);
    },
  });
})();
