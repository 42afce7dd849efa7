/* Vigil console map: an offline equirectangular SVG map.
 * The outline is Natural Earth 1:110m (public domain) as TopoJSON from the npm package world-atlas,
 * served by the console at /console/world.json; without it the map shows a graticule only.
 * No third-party code: the TopoJSON arcs are decoded here. */
"use strict";
(function () {
  const NS = "http://www.w3.org/2000/svg";
  const VIEW = { x: -180, y: -84, w: 360, h: 150 };  // lon -180..180, lat 84..-66

  function svg(tag, attrs) {
    const node = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
    return node;
  }

  function decodeArcs(topo) {
    const t = topo.transform;
    return topo.arcs.map((arc) => {
      let x = 0, y = 0;
      return arc.map((p) => {
        if (!t) return [p[0], p[1]];
        x += p[0]; y += p[1];
        return [x * t.scale[0] + t.translate[0], y * t.scale[1] + t.translate[1]];
      });
    });
  }

  function ringPoints(ring, arcs) {
    const pts = [];
    for (const i of ring) {
      const arc = i < 0 ? arcs[~i].slice().reverse() : arcs[i];
      arc.forEach((p, k) => { if (k > 0 || pts.length === 0) pts.push(p); });
    }
    return pts;
  }

  function ringPath(pts) {
    let d = "";
    let prev = null;
    for (const [lon, lat] of pts) {
      const jump = prev && Math.abs(lon - prev) > 180;  // crossing the antimeridian: lift the pen
      d += (d === "" || jump ? "M" : "L") + lon.toFixed(2) + "," + (-lat).toFixed(2);
      prev = lon;
    }
    return d + "Z";
  }

  function countriesPath(topo) {
    const arcs = decodeArcs(topo);
    const obj = topo.objects.countries || topo.objects.land || Object.values(topo.objects)[0];
    const geoms = obj.type === "GeometryCollection" ? obj.geometries : [obj];
    const out = [];
    for (const g of geoms) {
      const polys = g.type === "Polygon" ? [g.arcs] : g.type === "MultiPolygon" ? g.arcs : [];
      for (const poly of polys) for (const ring of poly) out.push(ringPath(ringPoints(ring, arcs)));
    }
    return out;
  }

  class VigilMap {
    constructor(container) {
      this.container = container;
      this.root = svg("svg", {
        viewBox: `${VIEW.x} ${VIEW.y} ${VIEW.w} ${VIEW.h}`, role: "group",
        "aria-label": "World map of current alerts (each dot links to an alert)", preserveAspectRatio: "xMidYMid meet",
      });
      const title = svg("title"); title.textContent = "World map of current alerts";
      this.root.appendChild(title);
      this.land = svg("g", { class: "land-layer", "aria-hidden": "true" });
      this.grat = svg("g", { class: "grat-layer", "aria-hidden": "true" });
      this.points = svg("g", { class: "points" });
      this.root.append(this.grat, this.land, this.points);
      for (let lon = -180; lon <= 180; lon += 30) this.grat.appendChild(svg("path", { class: "grat", d: `M${lon},-90V90` }));
      for (let lat = -60; lat <= 90; lat += 30) this.grat.appendChild(svg("path", { class: "grat", d: `M-180,${-lat}H180` }));
      container.replaceChildren(this.root);
      this.outline = "loading";
    }

    async loadOutline(url) {
      try {
        const resp = await fetch(url);
        if (!resp.ok) throw new Error(String(resp.status));
        const topo = await resp.json();
        const d = countriesPath(topo).join("");
        this.land.replaceChildren(svg("path", { class: "land", d, "fill-rule": "evenodd" }));
        this.outline = "ok";
      } catch (err) {
        this.outline = "missing";  // graticule only: the points still show where alerts are
      }
      this.container.dataset.outline = this.outline;
    }

    /* alerts: summaries; hrefFor(alert) -> link target. One dot per located place. */
    update(alerts, hrefFor) {
      const rank = { Unknown: 0, Minor: 1, Moderate: 2, Severe: 3, Extreme: 4 };
      const sorted = alerts.slice().sort((a, b) => (rank[a.severity] || 0) - (rank[b.severity] || 0));
      const nodes = [];
      for (const a of sorted) {
        const seen = new Set();
        for (const loc of a.locations || []) {
          if (typeof loc.lat !== "number" || typeof loc.lon !== "number") continue;
          const key = loc.lat.toFixed(2) + "," + loc.lon.toFixed(2);
          if (seen.has(key)) continue;
          seen.add(key);
          const label = `${a.severity}: ${a.title} — ${loc.name}, ${loc.country_code}`;
          const link = svg("a", { class: `pt sev-${a.severity}`, href: hrefFor(a), "aria-label": label,
            "data-entry-id": a.entry_id });
          const dot = svg("circle", { cx: loc.lon.toFixed(3), cy: (-loc.lat).toFixed(3), r: a.severity === "Extreme" ? 3 : 2.4 });
          const tip = svg("title"); tip.textContent = label;
          link.append(tip, dot);
          nodes.push(link);
        }
      }
      this.points.replaceChildren(...nodes);
      this.container.dataset.points = String(nodes.length);
    }
  }

  window.VigilMap = VigilMap;
})();
