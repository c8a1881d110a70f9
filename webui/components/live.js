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
      const series = chart.getOption().series.map((s, i) => ({ data: this.merge(s.data, queued[i] || []) }));
      let newest = -Infinity;
      for (const s of series) for (const p of s.data) if (p[0] > newest) newest = p[0];
      for (const s of series) s.data = s.data.filter((p) => p[0] >= newest - windowMs);
      chart.setOption({ series });
      this.drawn = (this.drawn || 0) + 1;
    }
  },
  // A series' points stay in time order, or its line runs back: a point older than the
  // newest drawn (from another replica, or another replica's commit fanned out after a local
  // one) goes in its place. The few new points are sorted, then merged in one pass over the
  // series (~1,200 points at most), as dear as the copy it replaces; in order, a copy.
  merge(data, points) {
    if (!points.length) return data;
    const fresh = points.slice().sort((a, b) => a[0] - b[0]);
    if (!data.length || data[data.length - 1][0] <= fresh[0][0]) return data.concat(fresh);
    const merged = [];
    let i = 0;
    for (const p of fresh) {
      while (i < data.length && data[i][0] <= p[0]) merged.push(data[i++]);
      merged.push(p);
    }
    while (i < data.length) merged.push(data[i++]);
    return merged;
  },
  // Times as the server's browser_time.named writes them, in the zone the page reads in:
  // "17:14:05" today, "2026-11-29 17:14" on another day (the page names the zone).
  formats: {},
  parts(ms, zone) {
    const format = (this.formats[zone] = this.formats[zone] || new Intl.DateTimeFormat("en-CA", {
      timeZone: zone, year: "numeric", month: "2-digit", day: "2-digit",
      hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23",
    }));
    return Object.fromEntries(format.formatToParts(new Date(ms)).map((p) => [p.type, p.value]));
  },
  clock(ms, zone) {
    const p = this.parts(ms, zone);
    const now = this.parts(Date.now(), zone);
    const today = p.year === now.year && p.month === now.month && p.day === now.day;
    return today ? `${p.hour}:${p.minute}:${p.second}` : `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute}`;
  },
  // A time axis tick: the date at midnight, else the clock time (seconds only when not :00).
  tick(ms, zone) {
    const p = this.parts(ms, zone);
    if (p.hour === "00" && p.minute === "00" && p.second === "00") return `${p.month}-${p.day}`;
    return p.second === "00" ? `${p.hour}:${p.minute}` : `${p.hour}:${p.minute}:${p.second}`;
  },
  // The badge follows the socket; a drop shorter than a second (socket.io reconnecting at
  // once) is not news, so it says offline once the socket was down on two checks in a row.
  // The state and its time live here, not in the badge: when Vue draws the badge anew (its
  // server-side text says "connecting…"), the next check writes it again.
  watchSocket(elementId) {
    let state = null;
    let since = 0;
    let downChecks = 0;
    let downAt = 0;
    setInterval(() => {
      const up = Boolean(window.socket && window.socket.connected);
      downChecks = up ? 0 : downChecks + 1;
      if (downChecks === 1) downAt = Date.now();
      if (!up && state === null) return; // still connecting: the badge says so already
      const next = up || (state === "connected" && downChecks < 2) ? "connected" : "offline";
      if (next !== state) {
        state = next;
        since = next === "offline" && downAt ? downAt : Date.now();
      }
      const el = document.getElementById(elementId);
      if (!el || el.dataset.state === state) return;
      // The server names the page's zone on the badge (link_status.py), so this time reads
      // like every other time on the page, in the browser's zone or in UTC.
      const at = `${this.clock(since, el.dataset.zone || "UTC")} ${el.dataset.abbr || "UTC"}`;
      el.textContent = state === "connected" ? `Browser: connected since ${at}` : `Browser: offline since ${at}, reconnecting`;
      el.dataset.state = state;
      el.className = state === "connected" ? "pp-link text-green-300" : "pp-link text-red-300";
    }, 500);
  },
};
window.ppLive.watchSocket("pp-browser-link"); // the id link_status.py gives the badge
