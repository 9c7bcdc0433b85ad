/* Control pages: select -> confirm with a reason -> execute, with live device state.
   Live updates come over /ws/control/ through the one live client (wams-live.js, loaded first);
   while that websocket is down the page polls the JSON endpoints. */
(function () {
  "use strict";
  const WAMS = window.WAMS;

  const POLL_STATE_MS = 2000;
  const POLL_COMMAND_MS = 300;

  function csrfToken() {
    const input = document.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  async function post(url, fields) {
    const body = new URLSearchParams(fields);
    const response = await fetch(url, {
      method: "POST",
      headers: { "X-CSRFToken": csrfToken(), "Content-Type": "application/x-www-form-urlencoded" },
      body: body,
      credentials: "same-origin",
    });
    let data = {};
    try { data = await response.json(); } catch (err) { data = { state: "failed", detail: "HTTP " + response.status }; }
    data.httpStatus = response.status;
    return data;
  }

  async function getJson(url) {
    const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
    if (!response.ok) { throw new Error("HTTP " + response.status); }
    return response.json();
  }

  function withId(template, id) { return template.replace("/0/", "/" + id + "/"); }

  /* Live channel: the live client on /ws/control/ (its reconnect rules); listeners get every control payload. */
  const listeners = [];
  let socket = null;

  function connect() {
    socket = WAMS.live(
      { control: function (data) { listeners.forEach(function (fn) { fn(data); }); } },
      { path: "/ws/control/", watchData: false }
    );
  }

  function socketOpen() { return socket !== null && socket.connected; }

  /* Device state cells in tables (control list, substation pages). */
  function updateCells(deviceId, state) {
    document.querySelectorAll('[data-device-id="' + deviceId + '"] .device-state').forEach(function (cell) {
      cell.textContent = state;
    });
  }
  listeners.push(function (data) {
    if (data.device_id && data.device_state) { updateCells(data.device_id, data.device_state); }
  });

  /* The device panel. */
  function setupPanel(panel) {
    const deviceId = Number(panel.dataset.deviceId);
    const badge = document.getElementById("device-state");
    const updated = document.getElementById("state-updated");
    const progress = document.getElementById("progress");
    const box = document.getElementById("confirm-box");
    const what = document.getElementById("confirm-what");
    const expiry = document.getElementById("confirm-expiry");
    const reason = document.getElementById("confirm-reason");
    const executeButton = document.getElementById("execute-button");
    const cancelButton = document.getElementById("cancel-button");
    const actionButtons = panel.querySelectorAll(".select-action");
    let commandId = null;
    let expiryTimer = null;
    let executing = false;

    function showState(state, when) {
      if (!state) { return; }
      badge.textContent = state;
      badge.dataset.state = state;
      updated.textContent = "reported " + (when || new Date()).toISOString().slice(11, 19) + " UTC";
    }
    function showProgress(state, detail) {
      progress.dataset.state = state;
      progress.textContent = state + (detail ? ": " + detail : "");
    }
    function setBusy(busy) {
      actionButtons.forEach(function (b) { b.disabled = busy; });
    }
    function closeBox() {
      box.hidden = true;
      commandId = null;
      if (expiryTimer) { window.clearInterval(expiryTimer); expiryTimer = null; }
      setBusy(false);
    }

    listeners.push(function (data) {
      if (data.device_id !== deviceId) { return; }
      if (data.device_state) { showState(data.device_state); }
      if (commandId !== null && data.command_id === commandId && executing) { showProgress(data.state, data.detail); }
    });

    actionButtons.forEach(function (button) {
      button.addEventListener("click", async function () {
        const fields = { action: button.dataset.action };
        if (button.dataset.action === "set_point") {
          fields.value = document.getElementById("set-point-value").value;
        }
        setBusy(true);
        showProgress("selecting", "");
        const result = await post(panel.dataset.selectUrl, fields);
        if (result.state !== "selected") {
          showProgress(result.state, result.detail);
          setBusy(false);
          return;
        }
        commandId = result.command_id;
        what.textContent = "Confirm: " + button.textContent.trim() + (fields.value ? " to " + fields.value + " MW" : "") + "?";
        box.hidden = false;
        reason.value = "";
        reason.focus();
        showProgress("selected", "command #" + commandId + " awaits your confirmation");
        const status = await getJson(withId(panel.dataset.commandUrl, commandId));
        if (status.expires_at) {
          const deadline = new Date(status.expires_at);
          const tick = function () {
            const left = Math.max(0, Math.round((deadline - new Date()) / 1000));
            expiry.textContent = "(selection lapses in " + left + " s)";
          };
          tick();
          expiryTimer = window.setInterval(tick, 1000);
        }
      });
    });

    executeButton.addEventListener("click", async function () {
      if (commandId === null) { return; }
      if (!reason.value.trim()) { showProgress("selected", "give a reason before executing"); reason.focus(); return; }
      const id = commandId;
      executing = true;
      executeButton.disabled = true;
      showProgress("executing", "sent to the device");
      const poller = socketOpen() ? null : window.setInterval(async function () {
        try {
          const status = await getJson(withId(panel.dataset.commandUrl, id));
          if (executing) { showProgress(status.state, status.detail); }
        } catch (err) { /* the final answer comes with the POST */ }
      }, POLL_COMMAND_MS);
      const result = await post(withId(panel.dataset.executeUrl, id), { reason: reason.value });
      if (poller) { window.clearInterval(poller); }
      executing = false;
      executeButton.disabled = false;
      showProgress(result.state, result.detail);
      if (result.device_state) { showState(result.device_state); }
      addRecent(id, what.textContent.replace(/^Confirm: /, "").replace(/\?$/, ""), result);
      closeBox();
    });

    function addRecent(id, label, result) {
      const body = document.getElementById("recent-commands");
      if (!body) { return; }
      const empty = body.querySelector("td[colspan]");
      if (empty) { empty.parentElement.remove(); }
      const row = document.createElement("tr");
      const cells = [String(id), new Date().toISOString().slice(0, 19).replace("T", " "), "you", label, result.state, result.detail];
      cells.forEach(function (text, index) {
        const cell = document.createElement("td");
        cell.textContent = text;
        if (index === 0) { cell.className = "num"; }
        if (index === 4) { cell.className = "outcome outcome-" + result.state; }
        row.appendChild(cell);
      });
      body.insertBefore(row, body.firstChild);
    }

    cancelButton.addEventListener("click", async function () {
      if (commandId === null) { return; }
      const result = await post(withId(panel.dataset.cancelUrl, commandId), { reason: reason.value });
      showProgress(result.state, result.detail);
      closeBox();
    });

    window.setInterval(async function () {
      if (socketOpen() || executing) { return; }
      try {
        const data = await getJson(panel.dataset.stateUrl);
        showState(data.device_state, data.updated_at ? new Date(data.updated_at) : null);
      } catch (err) { /* keep the last state shown */ }
    }, POLL_STATE_MS);
  }

  /* C37.118 commands to streams on the control list page. */
  function setupStreams(table) {
    table.querySelectorAll("tr[data-stream-id]").forEach(function (row) {
      const answer = row.querySelector(".stream-answer");
      row.querySelector(".stream-send").addEventListener("click", async function () {
        const action = row.querySelector(".stream-action").value;
        const why = row.querySelector(".stream-reason").value;
        answer.textContent = "selecting...";
        const selected = await post(row.dataset.selectUrl, { action: action });
        if (selected.state !== "selected") { answer.textContent = selected.state + ": " + selected.detail; return; }
        answer.textContent = "sent, waiting for the device...";
        const executeUrl = withId(table.dataset.executeUrl, selected.command_id);
        const result = await post(executeUrl, { reason: why });
        answer.textContent = result.state + ": " + result.detail;
      });
    });
  }

  function start() {
    connect();
    const panel = document.getElementById("control-panel");
    if (panel) { setupPanel(panel); }
    const streams = document.getElementById("stream-commands");
    if (streams) { setupStreams(streams); }
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", start); } else { start(); }
})();
