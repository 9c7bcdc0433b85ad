/* Events list: new alarms appear at the top, state changes update their row. */
(function () {
  "use strict";
  const WAMS = window.WAMS;
  const table = document.getElementById("event-table");
  const tbody = table.querySelector("tbody");
  const canOperate = table.dataset.canOperate === "true";
  const csrf = document.querySelector("input[name=csrfmiddlewaretoken]");

  function badge(cls, text) {
    return WAMS.el("span", { class: "badge " + cls }, text);
  }

  function newRow(alarm) {
    const tr = WAMS.el("tr", { "data-event-id": alarm.event_id, class: "new" });
    const started = new Date(Date.parse(alarm.started_at)).toISOString().replace("T", " ").substring(0, 19);
    const summary = WAMS.el("td");
    summary.append(WAMS.el("a", { href: "/events/" + alarm.event_id + "/" }, alarm.summary));
    const pmuNames = alarm.pmu_ids.map((id) => (WAMS.config.pmus.find((p) => p.id === id) || { name: String(id) }).name).join(", ");
    tr.append(WAMS.el("td", {}, started), WAMS.el("td"), WAMS.el("td", {}, alarm.kind), summary);
    tr.append(WAMS.el("td", { class: "incident" }, "-"), WAMS.el("td", {}, pmuNames));
    tr.children[1].append(badge("sev-" + alarm.severity, alarm.severity));
    const state = WAMS.el("td", { class: "state" });
    tr.append(state, WAMS.el("td", { class: "acked" }, "-"), WAMS.el("td", { class: "ack" }));
    if (canOperate && csrf) {
      const form = WAMS.el("form", { method: "post", action: "/events/" + alarm.event_id + "/acknowledge/" });
      form.append(
        WAMS.el("input", { type: "hidden", name: "csrfmiddlewaretoken", value: csrf.value }),
        WAMS.el("input", { type: "hidden", name: "next", value: window.location.pathname + window.location.search }),
        WAMS.el("button", { type: "submit" }, "Acknowledge")
      );
      tr.lastChild.append(form);
    }
    return tr;
  }

  WAMS.live({
    incident(incident) {
      // Link the incident's symptoms shown here to it.
      for (const id of incident.events || []) {
        const cell = tbody.querySelector('tr[data-event-id="' + id + '"] td.incident');
        if (!cell) continue;
        const link = WAMS.el("a", { href: incident.url, "data-incident-id": incident.incident_id }, incident.kind_label + " #" + incident.incident_id);
        cell.replaceChildren(link);
      }
    },
    alarm(alarm) {
      let tr = tbody.querySelector('tr[data-event-id="' + alarm.event_id + '"]');
      if (!tr) {
        const empty = tbody.querySelector("tr.empty");
        if (empty) empty.remove();
        tr = newRow(alarm);
        tbody.prepend(tr);
      }
      tr.querySelector(".state").replaceChildren(badge("state-" + alarm.state, alarm.state));
      if (alarm.state !== "raised") tr.querySelector(".ack").replaceChildren();
    },
  });
})();
