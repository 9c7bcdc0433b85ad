/* Incident page: its state and alarm badges follow the live incident messages. */
(function () {
  "use strict";
  const WAMS = window.WAMS;
  const shown = WAMS.config.incident || {};
  const stateNode = document.getElementById("incident-state");
  const alarmNode = document.getElementById("incident-alarm");

  WAMS.live({
    incident(incident) {
      if (incident.incident_id !== shown.incident_id) return;
      stateNode.textContent = incident.state;
      stateNode.className = "badge state-" + incident.state;
      const alarm = incident.alarm_view || { acknowledged: false, label: "not acknowledged" };
      alarmNode.textContent = alarm.label;
      alarmNode.classList.toggle("unacked", !alarm.acknowledged);
      document.body.dataset.incidentUpdates = String(Number(document.body.dataset.incidentUpdates || 0) + 1);
    },
  });
})();
