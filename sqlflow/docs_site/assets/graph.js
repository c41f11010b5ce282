// The model lineage graph: SVG, layered left to right. Positions come from the layer and rank
// computed at generate time; showing part of the graph keeps that order and closes the gaps.
"use strict";

SF.Graph = class {
  constructor(svg, options) {
    this.svg = svg;
    this.onOpen = options.onOpen; // click on a node
    this.onExpand = options.onExpand; // click on a node's "+" (hidden parents or children)
    this.colourBy = "type";
    this.view = { x: 20, y: 0, k: 1 };
    this.visible = new Set();
    this.positions = new Map();
    this.elements = new Map();
    this.viewport = SF.svg("g", { class: "viewport" });
    this.edgeLayer = SF.svg("g", { class: "edges" });
    this.nodeLayer = SF.svg("g", { class: "nodes" });
    this.viewport.append(this.edgeLayer, this.nodeLayer);
    svg.appendChild(this.viewport);
    this._panAndZoom();
  }

  static get NODE_W() { return 190; }
  static get NODE_H() { return 30; }
  static get COL_W() { return 260; }
  static get ROW_H() { return 44; }

  // Draw `visible` (a Set of node indices); `graph` holds parents/children by index.
  show(visible, graph) {
    this.visible = visible;
    this.graph = graph;
    this._place();
    SF.clear(this.edgeLayer);
    SF.clear(this.nodeLayer);
    this.elements.clear();
    const W = SF.Graph.NODE_W, H = SF.Graph.NODE_H;
    const edges = [];
    for (const idx of visible) {
      for (const child of graph.children[idx] || []) {
        if (!visible.has(child)) continue;
        const a = this.positions.get(idx), b = this.positions.get(child);
        const x1 = a.x + W, y1 = a.y + H / 2, x2 = b.x, y2 = b.y + H / 2;
        const dx = Math.max(40, (x2 - x1) / 2);
        edges.push(SF.svg("path", {
          class: "edge",
          d: `M${x1},${y1} C${x1 + dx},${y1} ${x2 - dx},${y2} ${x2},${y2}`,
          dataset: { from: idx, to: child },
        }));
      }
    }
    this.edgeLayer.append(...edges);
    const nodes = [];
    for (const idx of visible) {
      const node = SF.nodes[idx];
      const p = this.positions.get(idx);
      const label = node.n.length > 24 ? node.n.slice(0, 23) + "…" : node.n;
      const classes = ["node", "type-" + node.t, "status-" + (node.st || "none").replace(/\s+/g, "-")];
      if (node.m === "ephemeral") classes.push("ephemeral");
      const title = [node.n, node.t + (node.m ? " · " + node.m : ""), node.st ? "last run: " + node.st + (node.du !== undefined ? " in " + SF.formatSeconds(node.du) : "") : null]
        .filter(Boolean).join("\n");
      const g = SF.svg("g", {
        class: classes.join(" "),
        transform: `translate(${p.x},${p.y})`,
        dataset: { idx: idx, id: node.i, name: node.n },
        role: "link",
        tabindex: "0",
        onclick: (event) => { event.stopPropagation(); if (!this.dragged) this.onOpen(idx); },
        onkeydown: (event) => { if (event.key === "Enter") this.onOpen(idx); },
      },
        SF.svg("title", {}, title),
        SF.svg("rect", { width: W, height: H, rx: 6 }),
        SF.svg("rect", { class: "stripe", width: 6, height: H, rx: 3 }),
        SF.svg("text", { x: 14, y: 19 }, label));
      const hiddenParents = (graph.parents[idx] || []).some((n) => !visible.has(n));
      const hiddenChildren = (graph.children[idx] || []).some((n) => !visible.has(n));
      if (hiddenParents) g.appendChild(this._knob(idx, "parents", -9));
      if (hiddenChildren) g.appendChild(this._knob(idx, "children", W + 9));
      this.elements.set(idx, g);
      nodes.push(g);
    }
    this.nodeLayer.append(...nodes);
    this.svg.setAttribute("data-visible", String(visible.size));
    this._applyHighlight();
  }

  _knob(idx, direction, x) {
    return SF.svg("g", {
      class: "knob",
      transform: `translate(${x},${SF.Graph.NODE_H / 2})`,
      dataset: { direction: direction },
      onclick: (event) => { event.stopPropagation(); if (!this.dragged) this.onExpand(idx, direction); },
    },
      SF.svg("title", {}, direction === "parents" ? "show the parents" : "show the children"),
      SF.svg("circle", { r: 8 }),
      SF.svg("text", { x: 0, y: 4, "text-anchor": "middle" }, "+"));
  }

  // Columns are the visible layers in order, rows the visible nodes of a layer in rank order,
  // each column centred on the same line.
  _place() {
    const byLayer = new Map();
    for (const idx of this.visible) {
      const node = SF.nodes[idx];
      if (!byLayer.has(node.x)) byLayer.set(node.x, []);
      byLayer.get(node.x).push(idx);
    }
    const layers = [...byLayer.keys()].sort((a, b) => a - b);
    this.positions.clear();
    layers.forEach((layer, column) => {
      const members = byLayer.get(layer).sort((a, b) => SF.nodes[a].y - SF.nodes[b].y);
      members.forEach((idx, row) => {
        this.positions.set(idx, { x: column * SF.Graph.COL_W, y: (row - (members.length - 1) / 2) * SF.Graph.ROW_H });
      });
    });
  }

  setColourBy(mode) {
    this.colourBy = mode;
    this.svg.classList.toggle("colour-status", mode === "status");
    this.svg.classList.toggle("colour-type", mode !== "status");
  }

  // Mark idx, its ancestors and its descendants; dim the rest.
  highlight(idx) {
    this.selected = idx;
    this._applyHighlight();
  }

  _applyHighlight() {
    const idx = this.selected;
    const active = idx !== null && idx !== undefined && this.visible.has(idx);
    this.svg.classList.toggle("has-selection", active);
    const up = active ? SF.selector.reach(idx, null, this.graph.parents) : new Set();
    const down = active ? SF.selector.reach(idx, null, this.graph.children) : new Set();
    for (const [n, g] of this.elements) {
      g.classList.toggle("selected", active && n === idx);
      g.classList.toggle("upstream", up.has(n));
      g.classList.toggle("downstream", down.has(n));
    }
    for (const path of this.edgeLayer.children) {
      const from = Number(path.dataset.from), to = Number(path.dataset.to);
      const lit = active && ((up.has(from) || from === idx) && (up.has(to) || to === idx) || (down.has(from) || from === idx) && (down.has(to) || to === idx));
      path.classList.toggle("lit", lit);
    }
  }

  // ------------------------------------------------------------------ view

  _apply() {
    const v = this.view;
    this.viewport.setAttribute("transform", `translate(${v.x},${v.y}) scale(${v.k})`);
  }

  fit() {
    if (!this.positions.size) return;
    let minX = Infinity, minY = Infinity, maxX = -Infinity, maxY = -Infinity;
    for (const p of this.positions.values()) {
      minX = Math.min(minX, p.x); minY = Math.min(minY, p.y);
      maxX = Math.max(maxX, p.x + SF.Graph.NODE_W); maxY = Math.max(maxY, p.y + SF.Graph.NODE_H);
    }
    const box = this.svg.getBoundingClientRect();
    const pad = 30;
    const k = Math.min(1.2, (box.width - 2 * pad) / (maxX - minX || 1), (box.height - 2 * pad) / (maxY - minY || 1));
    this.view.k = Math.max(0.05, k);
    this.view.x = pad + ((box.width - 2 * pad) - (maxX - minX) * this.view.k) / 2 - minX * this.view.k;
    this.view.y = pad + ((box.height - 2 * pad) - (maxY - minY) * this.view.k) / 2 - minY * this.view.k;
    this._apply();
  }

  centerOn(idx) {
    const p = this.positions.get(idx);
    if (!p) return;
    const box = this.svg.getBoundingClientRect();
    this.view.k = Math.max(this.view.k, 0.6);
    this.view.x = box.width / 2 - (p.x + SF.Graph.NODE_W / 2) * this.view.k;
    this.view.y = box.height / 2 - (p.y + SF.Graph.NODE_H / 2) * this.view.k;
    this._apply();
  }

  zoom(factor, cx, cy) {
    const box = this.svg.getBoundingClientRect();
    cx = cx === undefined ? box.width / 2 : cx;
    cy = cy === undefined ? box.height / 2 : cy;
    const k = Math.min(3, Math.max(0.03, this.view.k * factor));
    this.view.x = cx - ((cx - this.view.x) * k) / this.view.k;
    this.view.y = cy - ((cy - this.view.y) * k) / this.view.k;
    this.view.k = k;
    this._apply();
  }

  _panAndZoom() {
    let start = null;
    this.svg.addEventListener("pointerdown", (event) => {
      start = { x: event.clientX, y: event.clientY, vx: this.view.x, vy: this.view.y };
      this.dragged = false;
    });
    window.addEventListener("pointermove", (event) => {
      if (!start) return;
      const dx = event.clientX - start.x, dy = event.clientY - start.y;
      if (!this.dragged && Math.abs(dx) + Math.abs(dy) < 4) return;
      this.dragged = true;
      this.svg.classList.add("panning");
      this.view.x = start.vx + dx;
      this.view.y = start.vy + dy;
      this._apply();
    });
    window.addEventListener("pointerup", () => {
      start = null;
      this.svg.classList.remove("panning");
      setTimeout(() => { this.dragged = false; }, 0);
    });
    this.svg.addEventListener("wheel", (event) => {
      event.preventDefault();
      const box = this.svg.getBoundingClientRect();
      this.zoom(Math.exp(-event.deltaY * 0.0015), event.clientX - box.left, event.clientY - box.top);
    }, { passive: false });
  }
};
