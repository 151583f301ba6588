// Live dashboard: replaces the tables' rows with each snapshot the server pushes.
(function () {
  "use strict";
  const stateLabel = document.getElementById("live-state");

  function cell(text) {
    const td = document.createElement("td");
    td.textContent = text;
    return td;
  }

  function fill(tableId, rows, toCells, rowClass) {
    const body = document.querySelector("#" + tableId + " tbody");
    if (!body) return;
    body.replaceChildren(...rows.map(function (row) {
      const tr = document.createElement("tr");
      const cls = rowClass ? rowClass(row) : "";
      if (cls) tr.className = cls;
      toCells(row).forEach(function (v) { tr.appendChild(cell(v)); });
      return tr;
    }));
  }

  function render(data) {
    fill("pools", data.pools, function (p) {
      return [p.label, p.region, p.feature_class, p.ready + " / " + p.target_ready,
        p.booting + " / " + p.max_concurrent_boots, p.in_use, p.error, p.last_error];
    }, function (p) { return p.short ? "short" : ""; });
    fill("regions", data.regions, function (r) {
      return [r.label, r.driver, r.hosts_up + " / " + r.hosts, r.pools];
    });
    fill("hosts", data.hosts, function (h) {
      return [h.name, h.region, h.state, h.vcpus_used + " / " + h.vcpus_capacity,
        h.memory_mb_used + " / " + h.memory_mb_capacity, h.memory_load + "%", h.vms];
    }, function (h) { return "host-" + h.state; });
  }

  function connect() {
    const scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    const socket = new WebSocket(scheme + window.location.host + "/ws/dashboard/");
    socket.onopen = function () { stateLabel.textContent = "live"; };
    socket.onmessage = function (event) {
      const message = JSON.parse(event.data);
      if (message.type === "snapshot") {
        render(message.data);
        stateLabel.textContent = "live · " + new Date().toLocaleTimeString();
      }
    };
    socket.onclose = function () {
      stateLabel.textContent = "reconnecting…";
      setTimeout(connect, 3000);
    };
  }
  connect();
})();
