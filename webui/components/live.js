// Browser side of live pages: charts take appended points, the link badge watches the socket.
window.ppLive = window.ppLive || {
  pending: {},
  // updates: {chartId: [[[ts, value], ...] per series]}; points older than windowMs before
  // the newest are trimmed, so a chart slides without the server ever resending it.
  append(updates, windowMs) {
    for (const [id, perSeries] of Object.entries(updates)) {
      const queued = (this.pending[id] = this.pending[id] || perSeries.map(() => []));
      perSeries.forEach((points, i) => queued[i].push(...points));
    }
    for (const id of Object.keys(this.pending)) {
      const chart = getElement(id)?.chart;
      if (!chart) continue; // not mounted yet: keep the points for the next tick
      const queued = this.pending[id];
      delete this.pending[id];
      const series = chart.getOption().series.map((s, i) => ({ data: s.data.concat(queued[i] || []) }));
      let newest = -Infinity;
      for (const s of series) for (const p of s.data) if (p[0] > newest) newest = p[0];
      for (const s of series) s.data = s.data.filter((p) => p[0] >= newest - windowMs);
      chart.setOption({ series });
      this.drawn = (this.drawn || 0) + 1;
    }
  },
  watchSocket(elementId) {
    let last = null;
    setInterval(() => {
      const el = document.getElementById(elementId);
      const up = Boolean(window.socket && window.socket.connected);
      if (!el || up === last) return;
      last = up;
      const at = new Date().toLocaleTimeString([], { hour12: false });
      el.textContent = up ? `Browser: connected since ${at}` : `Browser: offline since ${at}, reconnecting`;
      el.dataset.state = up ? "connected" : "offline";
      el.className = up ? "pp-link text-green-300" : "pp-link text-red-300";
    }, 500);
  },
};
window.ppLive.watchSocket("pp-browser-link"); // the id link_status.py gives the badge
