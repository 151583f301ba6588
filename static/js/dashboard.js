// Live dashboard: draws the charts (inline SVG) and redraws every part of the page
// from each snapshot. The first snapshot is embedded in the page, so the page shows
// everything without the websocket; pushes come over the websocket, and when it
// cannot connect the page polls the same snapshot as JSON.
(function () {
  "use strict";
  const root = document.getElementById("dashboard");
  if (!root) return;
  const stateLabel = document.getElementById("live-state");
  const SVG = "http://www.w3.org/2000/svg";
  const pushInterval = Math.max(1, parseFloat(root.dataset.pushInterval) || 2);
  const COLORS = {
    ready: "#2e7d32", preparing: "#f0a020", error: "#c62828", booting: "#64b5f6",
    inUse: "#90a4ae", p95: "#1f3a93", target: "#14202e", grid: "#dde3ea", muted: "#6b7785",
  };

  // --- small DOM helpers -----------------------------------------------------
  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    Object.entries(attrs || {}).forEach(function ([k, v]) {
      if (k === "text") node.textContent = v;
      else if (v !== null && v !== undefined && v !== false) node.setAttribute(k, v);
    });
    (children || []).forEach(function (c) { if (c) node.appendChild(c); });
    return node;
  }

  function svg(tag, attrs, children) {
    const node = document.createElementNS(SVG, tag);
    Object.entries(attrs || {}).forEach(function ([k, v]) {
      if (k === "text") node.textContent = v;
      else if (v !== null && v !== undefined) node.setAttribute(k, v);
    });
    (children || []).forEach(function (c) { if (c) node.appendChild(c); });
    return node;
  }

  function tip(text) { return svg("title", { text: text }); }
  function ms(v) { return v === null || v === undefined ? "–" : Math.round(v) + " ms"; }
  function clock(iso) {
    return iso ? new Date(iso).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }) : "";
  }
  function plural(n, word) { return n + " " + word + (n === 1 ? "" : "s"); }
  function loadColor(fraction) {
    // green (120) through amber (40) to red (0) as the fraction goes 0 → 1
    const f = Math.max(0, Math.min(1, fraction));
    return "hsl(" + Math.round(120 - 120 * f) + " 60% 42%)";
  }
  function replace(id, nodes) {
    const box = document.getElementById(id);
    if (box) box.replaceChildren.apply(box, nodes);
  }

  // --- banner: open incidents and alerts ---------------------------------------
  function renderBanner(data) {
    const items = data.incidents.map(function (i) {
      return el("a", { class: "banner-item incident status-" + i.status, href: i.url }, [
        el("strong", { text: i.title }),
        document.createTextNode(" · " + i.status_display + " · since " + clock(i.opened_at) +
          " · " + plural(i.users_affected, "user") + " affected · " +
          plural(i.swaps_pending, "swap") + " pending"),
      ]);
    });
    const a = data.alerts;
    if (a.open) {
      const names = a.newest.map(function (x) { return " · " + x.message; }).join("");
      items.push(el("a", {
        class: "banner-item alerts" + (a.by_severity.critical ? " critical" : ""), href: a.url,
      }, [
        el("strong", { text: plural(a.open, "open alert") }),
        document.createTextNode(": " + (a.by_severity.critical || 0) + " critical, " +
          (a.by_severity.warning || 0) + " warning" + names),
      ]));
    }
    if (!items.length) {
      items.push(el("span", { class: "banner-item calm", text: "No open incidents or alerts." }));
    }
    replace("banner", items);
  }

  // --- allocations per minute: stacked bars and a p95 line -----------------------
  function renderAllocations(alloc) {
    const t = alloc.totals;
    replace("allocation-totals", [
      el("span", {}, [el("b", { text: t.total }), document.createTextNode(" connects")]),
      el("span", { class: "ready" }, [el("b", { text: t.ready }), document.createTextNode(" ready")]),
      el("span", { class: "preparing" }, [el("b", { text: t.preparing }), document.createTextNode(" preparing")]),
      el("span", { class: "error" }, [el("b", { text: t.error }), document.createTextNode(" errors")]),
      el("span", {}, [document.createTextNode("p50 "), el("b", { text: ms(t.p50_ms) })]),
      el("span", {}, [document.createTextNode("p95 "), el("b", { text: ms(t.p95_ms) })]),
    ]);
    const W = 720, H = 210, left = 34, right = 52, top = 10, bottom = 24;
    const plotW = W - left - right, plotH = H - top - bottom;
    const minutes = alloc.minutes;
    // An even scale, so the middle line is a whole number of connects too.
    const peak = Math.max(1, alloc.per_minute_peak);
    const maxCount = peak + (peak % 2);
    const maxMs = Math.max(1, ...minutes.map(function (m) { return m.p95_ms || 0; }));
    const slot = plotW / Math.max(1, minutes.length);
    const parts = [];
    [0, 0.5, 1].forEach(function (f) {
      const y = top + plotH - f * plotH;
      parts.push(svg("line", { x1: left, x2: left + plotW, y1: y, y2: y, stroke: COLORS.grid }));
      parts.push(svg("text", { x: left - 4, y: y + 4, "text-anchor": "end", class: "axis",
        text: Math.round(f * maxCount) }));
      parts.push(svg("text", { x: left + plotW + 4, y: y + 4, class: "axis p95",
        text: Math.round(f * maxMs) + " ms" }));
    });
    const points = [];
    minutes.forEach(function (m, index) {
      const x = left + index * slot;
      let y = top + plotH;
      ["ready", "preparing", "error"].forEach(function (kind) {
        if (!m[kind]) return;
        const h = (m[kind] / maxCount) * plotH;
        y -= h;
        parts.push(svg("rect", {
          x: x + 1, y: y, width: Math.max(1, slot - 2), height: h, fill: COLORS[kind],
        }, [tip(clock(m.at) + " · " + m[kind] + " " + kind)]));
      });
      // an invisible column carries the minute's whole tooltip
      parts.push(svg("rect", { x: x, y: top, width: slot, height: plotH, fill: "transparent" }, [
        tip(clock(m.at) + ": " + m.total + " connects (" + m.ready + " ready, " + m.preparing +
          " preparing, " + m.error + " errors) · p50 " + ms(m.p50_ms) + " · p95 " + ms(m.p95_ms)),
      ]));
      if (m.p95_ms !== null && m.p95_ms !== undefined) {
        points.push((x + slot / 2).toFixed(1) + "," + (top + plotH - (m.p95_ms / maxMs) * plotH).toFixed(1));
      }
      if (index % 5 === 0) {
        parts.push(svg("text", { x: x + slot / 2, y: H - 6, "text-anchor": "middle", class: "axis",
          text: clock(m.at) }));
      }
    });
    if (points.length > 1) {
      parts.push(svg("polyline", { points: points.join(" "), fill: "none", stroke: COLORS.p95,
        "stroke-width": 2, "pointer-events": "none" }));
    }
    points.forEach(function (p) {
      const [cx, cy] = p.split(",");
      parts.push(svg("circle", { cx: cx, cy: cy, r: 2.5, fill: COLORS.p95, "pointer-events": "none" }));
    });
    replace("allocation-chart", [svg("svg", { viewBox: "0 0 " + W + " " + H, class: "plot" }, parts)]);
  }

  // --- boots in flight: gauges against caps -------------------------------------
  function gauge(label, booting, cap, size) {
    const r = size === "small" ? 26 : 40, cx = r + 6, cy = r + 6, W = 2 * r + 12;
    const fraction = cap ? Math.min(1, booting / cap) : 0;
    function arc(f) {
      const angle = Math.PI * (1 - f);
      const x = cx + r * Math.cos(angle), y = cy - r * Math.sin(angle);
      return "M " + (cx - r) + " " + cy + " A " + r + " " + r + " 0 0 1 " + x.toFixed(2) + " " + y.toFixed(2);
    }
    const parts = [svg("path", { d: arc(1), stroke: COLORS.grid, "stroke-width": 8, fill: "none" })];
    if (fraction > 0) {
      parts.push(svg("path", { d: arc(fraction), stroke: loadColor(fraction), "stroke-width": 8, fill: "none" }));
    }
    parts.push(svg("text", { x: cx, y: cy - 4, "text-anchor": "middle", class: "gauge-value",
      text: booting + (cap ? " / " + cap : "") }));
    parts.push(tip(label + ": " + booting + " booting, " + (cap ? "cap " + cap : "no cap")));
    return el("figure", { class: "gauge" + (size === "small" ? " small" : "") }, [
      svg("svg", { viewBox: "0 0 " + W + " " + (cy + 6), width: W, height: cy + 6 }, parts),
      el("figcaption", { text: label + (cap ? "" : " (no cap)") }),
    ]);
  }

  function renderBoots(boots) {
    const big = [gauge("All regions", boots.booting, boots.cap)];
    boots.regions.forEach(function (r) { big.push(gauge(r.label, r.booting, r.cap)); });
    replace("boot-gauges", big);
    replace("pool-boot-gauges", boots.pools.map(function (p) {
      return gauge(p.label, p.booting, p.cap, "small");
    }));
  }

  // --- pool levels: stacked horizontal bars against target ------------------------
  function renderPools(pools) {
    const rowH = 26, labelW = 150, figW = 250, W = 720;
    const barW = W - labelW - figW;
    const parts = [];
    pools.forEach(function (p, index) {
      const y = index * rowH + 4;
      const total = p.ready + p.booting + p.in_use + p.error;
      const scale = barW / Math.max(1, total, p.target, p.min_ready);
      parts.push(svg("text", { x: 0, y: y + 13, class: "label" + (p.short ? " short" : ""),
        text: p.label + (p.paused ? " (paused)" : "") }, [tip(p.label + " · " + p.region + " · " + p.feature_class)]));
      let x = labelW;
      [["ready", p.ready, COLORS.ready], ["booting", p.booting, COLORS.booting],
        ["error", p.error, COLORS.error], ["in use", p.in_use, COLORS.inUse]].forEach(function (seg) {
        if (!seg[1]) return;
        const w = seg[1] * scale;
        parts.push(svg("rect", { x: x, y: y, width: w, height: 16, fill: seg[2] },
          [tip(p.label + ": " + seg[1] + " " + seg[0])]));
        x += w;
      });
      parts.push(svg("rect", { x: labelW, y: y, width: barW, height: 16, fill: "none", stroke: COLORS.grid }));
      const tx = labelW + p.target * scale;
      parts.push(svg("line", { x1: tx, x2: tx, y1: y - 3, y2: y + 19, stroke: COLORS.target, "stroke-width": 2 },
        [tip("target " + p.target + " ready")]));
      if (p.min_ready) {
        const mx = labelW + p.min_ready * scale;
        parts.push(svg("line", { x1: mx, x2: mx, y1: y - 3, y2: y + 19, stroke: COLORS.error,
          "stroke-dasharray": "3 2", "stroke-width": 1.5 }, [tip("minimum " + p.min_ready + " ready")]));
      }
      parts.push(svg("text", { x: labelW + barW + 8, y: y + 13, class: "figures" },
        [document.createTextNode(p.ready + "/" + p.target + " ready · " + p.booting + " booting · " +
          p.in_use + " in use" + (p.error ? " · " + p.error + " error" : ""))]));
    });
    const H = Math.max(1, pools.length) * rowH + 8;
    replace("pool-chart", pools.length
      ? [svg("svg", { viewBox: "0 0 " + W + " " + H, class: "plot" }, parts)]
      : [el("p", { class: "muted", text: "No pools yet." })]);
  }

  // --- tables --------------------------------------------------------------------
  function fill(tableId, rows, toCells, rowClass) {
    const body = document.querySelector("#" + tableId + " tbody");
    if (!body) return;
    body.replaceChildren.apply(body, rows.map(function (row) {
      const tr = el("tr", { class: rowClass ? rowClass(row) || null : null });
      toCells(row).forEach(function (v) { tr.appendChild(el("td", { text: v })); });
      return tr;
    }));
  }

  function capText(cap) { return cap === null || cap === undefined ? "no cap" : cap; }

  // --- host tiles ------------------------------------------------------------------
  function renderHosts(hosts) {
    const byRegion = new Map();
    hosts.forEach(function (h) {
      if (!byRegion.has(h.region)) byRegion.set(h.region, []);
      byRegion.get(h.region).push(h);
    });
    const groups = [];
    byRegion.forEach(function (list, region) {
      groups.push(el("div", { class: "host-region" }, [
        el("h3", { text: region }),
        el("div", { class: "tiles" }, list.map(function (h) {
          const figure = h.failed ? "failed" : h.state !== "up" ? h.state : h.load + "%";
          return el("div", { class: "tile status-" + h.status, style: "--load: " + h.load,
            title: h.summary, "data-host": h.name }, [
            el("span", { class: "name", text: h.name }), el("span", { class: "figure", text: figure }),
          ]);
        })),
      ]));
    });
    replace("host-grid", groups.length ? groups : [el("p", { class: "muted", text: "No hosts reported yet." })]);
  }

  function render(data) {
    renderBanner(data);
    renderAllocations(data.allocations);
    renderBoots(data.boots);
    renderPools(data.pools);
    fill("pools", data.pools, function (p) {
      return [p.label + (p.paused ? " (paused)" : ""), p.region, p.feature_class,
        p.ready + " / " + p.target, p.booting + " / " + p.max_concurrent_boots, p.in_use, p.error,
        p.pause_reason || p.last_error];
    }, function (p) { return p.short ? "short" : ""; });
    renderHosts(data.hosts);
    fill("regions", data.regions, function (r) {
      return [r.label, r.driver, r.hosts_up + " / " + r.hosts, r.hosts_failed, r.pools,
        r.booting + " / " + capText(r.max_concurrent_boots)];
    });
  }

  function show(message, how) {
    if (!message || message.type !== "snapshot") return;
    try {
      render(message.data);
      stateLabel.textContent = how + " · " + new Date().toLocaleTimeString();
    } catch (err) {
      stateLabel.textContent = "display error: " + err.message;
      throw err;
    }
  }

  // --- transport: websocket, polling when it cannot connect -----------------------
  let pollTimer = null;
  let failures = 0;

  function poll() {
    fetch(root.dataset.snapshotUrl, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (message) { if (message) show(message, "polling"); })
      .catch(function () { stateLabel.textContent = "offline"; });
  }

  function startPolling() {
    if (pollTimer === null) pollTimer = setInterval(poll, pushInterval * 1000);
  }

  function stopPolling() {
    if (pollTimer !== null) clearInterval(pollTimer);
    pollTimer = null;
  }

  function connect() {
    if (!("WebSocket" in window)) { startPolling(); return; }
    const scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    const socket = new WebSocket(scheme + window.location.host + "/ws/dashboard/");
    socket.onopen = function () { failures = 0; stopPolling(); stateLabel.textContent = "live"; };
    socket.onmessage = function (event) { show(JSON.parse(event.data), "live"); };
    socket.onclose = function () {
      failures += 1;
      if (failures >= 2) startPolling();
      stateLabel.textContent = pollTimer === null ? "reconnecting…" : "polling";
      setTimeout(connect, Math.min(30000, 3000 * failures));
    };
  }

  const embedded = document.getElementById("dashboard-snapshot");
  if (embedded) show({ type: "snapshot", data: JSON.parse(embedded.textContent) }, "loaded");
  connect();
})();
