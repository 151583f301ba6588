// Run page: polls the run's progress (JSON) every two seconds and redraws the
// bar, the counts, the VM table and the log; stops once the run is final and
// nothing is running.
(function () {
  "use strict";
  const script = document.getElementById("run-script");
  const url = script.dataset.progressUrl;
  const vmUrl = script.dataset.vmUrl;
  const stateLabel = document.getElementById("live-state");
  const FINAL = ["halted", "cancelled", "succeeded", "failed", "rolled_back"];

  function cell(text) {
    const td = document.createElement("td");
    td.textContent = text;
    return td;
  }

  function render(p) {
    const status = document.getElementById("run-status");
    status.textContent = p.status_label;
    status.className = "status-" + p.status;
    const c = p.counts;
    document.getElementById("run-counts").textContent =
      p.finished + " of " + c.total + " VMs done: " + c.succeeded + " succeeded, " +
      c.failed + " failed, " + c.skipped + " skipped, " + c.running + " running";
    const bar = document.getElementById("run-progress");
    bar.value = p.percent;
    bar.textContent = p.percent + "%";
    const halt = document.getElementById("run-halt");
    halt.textContent = p.halt_reason;
    halt.hidden = !p.halt_reason;
    document.getElementById("run-batch").textContent = p.current_batch + 1;
    const image = document.getElementById("run-pool-image");
    if (image && p.pool_image) image.textContent = p.pool_image;

    document.querySelector("#run-items tbody").replaceChildren(...p.items.map(function (i) {
      const tr = document.createElement("tr");
      tr.className = "item-" + i.status;
      const name = document.createElement("td");
      const link = document.createElement("a");
      link.href = vmUrl.replace(/0\/$/, i.vm_id + "/");
      link.textContent = i.vm;
      name.appendChild(link);
      tr.appendChild(name);
      [i.status + (i.phase ? " (" + i.phase + ")" : ""), i.batch === null ? "" : i.batch + 1,
        i.attempts, i.note, i.error].forEach(function (v) { tr.appendChild(cell(v)); });
      return tr;
    }));
    document.getElementById("run-log").replaceChildren(...p.logs.map(function (line) {
      const li = document.createElement("li");
      li.className = "log-" + line.level;
      li.textContent = line.at.slice(11, 19) + " " + (line.vm ? "[" + line.vm + "] " : "") + line.message;
      return li;
    }));
  }

  function poll() {
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) throw new Error(response.status);
        return response.json();
      })
      .then(function (p) {
        render(p);
        const done = FINAL.includes(p.status) && p.counts.running === 0;
        stateLabel.textContent = done ? "" : "live · " + new Date().toLocaleTimeString();
        if (!done) setTimeout(poll, 2000);
      })
      .catch(function () {
        stateLabel.textContent = "reconnecting…";
        setTimeout(poll, 5000);
      });
  }
  poll();
})();
