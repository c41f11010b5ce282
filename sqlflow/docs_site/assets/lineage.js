// The column lineage view: the columns feeding one column (left) and fed by it (right), hop by
// hop across models, from the per-model lineage traced at generate time.
"use strict";

SF.columnLineage = (function () {
  const KIND = { d: "direct", e: "expression", a: "aggregate" };
  const MAX_COLUMNS = 400;
  const GAP = 44, ROW_H = 40, BOX_H = 28, CHAR_W = 7.3;

  function key(ref, column) {
    return ref + "\u0000" + column.toLowerCase();
  }

  async function columnOf(ref, name) {
    if (typeof ref !== "number") return null;
    const detail = await SF.detail(ref);
    return (detail.columns || []).find((c) => c.name.toLowerCase() === name.toLowerCase()) || null;
  }

  // Walk `direction` ("up" or "down") from (idx, column): {nodes: Map key -> item, edges: []}.
  async function walk(idx, column, direction, found) {
    let frontier = [{ ref: idx, column: column, depth: 0 }];
    while (frontier.length && found.nodes.size < MAX_COLUMNS) {
      const next = [];
      await Promise.all(frontier.map(async (item) => {
        const data = await columnOf(item.ref, item.column);
        const here = found.nodes.get(key(item.ref, item.column));
        if (data && here) here.data = data;
        for (const [ref, name, kind] of (data && data[direction]) || []) {
          const k = key(ref, name);
          const depth = direction === "up" ? item.depth - 1 : item.depth + 1;
          if (!found.nodes.has(k)) {
            if (found.nodes.size >= MAX_COLUMNS) {
              found.truncated = true;
              continue;
            }
            found.nodes.set(k, { ref, column: name, depth });
            next.push({ ref, column: name, depth });
          }
          const from = direction === "up" ? k : key(item.ref, item.column);
          const to = direction === "up" ? key(item.ref, item.column) : k;
          found.edges.push({ from, to, kind: KIND[kind] || kind });
        }
      }));
      frontier = next;
    }
  }

  async function render(container, idx, column) {
    const node = SF.nodes[idx];
    const found = { nodes: new Map(), edges: [], truncated: false };
    found.nodes.set(key(idx, column), { ref: idx, column: column, depth: 0, root: true });
    const own = await columnOf(idx, column);
    const stale = () => SF.state.route.view !== "lineage" || SF.state.route.idx !== idx || SF.state.route.column !== column;
    if (stale()) return; // the user has moved on
    SF.clear(container);
    container.append(
      SF.el("p", { class: "crumbs" }, SF.el("a", { href: SF.nodeLink(idx) }, "← " + node.n)),
      SF.el("h1", {}, "Column lineage: ", SF.el("code", {}, node.n + "." + column))
    );
    if (!own) {
      container.append(SF.el("p", { class: "warning" }, `${node.n} has no column ${column}.`));
      return;
    }
    await walk(idx, column, "up", found);
    await walk(idx, column, "down", found);
    if (stale()) return;
    if (own.description) container.append(SF.el("p", { class: "description" }, own.description));
    container.append(legend(), drawing(found, container.clientWidth), lists(found));
    if (found.truncated) container.append(SF.el("p", { class: "warning" }, `Only the nearest ${MAX_COLUMNS} columns are shown.`));
  }

  function legend() {
    return SF.el("p", { class: "legend lineage-legend" },
      SF.el("span", { class: "kind-direct" }, "direct (passed through or renamed)"),
      SF.el("span", { class: "kind-expression" }, "expression (computed from it)"),
      SF.el("span", { class: "kind-aggregate" }, "aggregate (summarised from many rows)"));
  }

  function label(item) {
    if (typeof item.ref === "number") return SF.nodes[item.ref].n + "." + item.column;
    return item.ref + "." + item.column;
  }

  function drawing(found, room) {
    const byDepth = new Map();
    for (const [k, item] of found.nodes) {
      if (!byDepth.has(item.depth)) byDepth.set(item.depth, []);
      byDepth.get(item.depth).push(k);
    }
    const depths = [...byDepth.keys()].sort((a, b) => a - b);
    // Boxes as wide as the longest label (monospace), so names are never cut.
    const longest = Math.max(...[...found.nodes.values()].map((item) => label(item).length));
    const BOX_W = Math.min(420, Math.max(150, Math.ceil(longest * CHAR_W) + 18)), COL_W = BOX_W + GAP;
    const place = new Map();
    let tallest = 0;
    depths.forEach((depth, column) => {
      const keys = byDepth.get(depth).sort((a, b) => label(found.nodes.get(a)).localeCompare(label(found.nodes.get(b))));
      tallest = Math.max(tallest, keys.length);
      keys.forEach((k, row) => place.set(k, { x: 10 + column * COL_W, row, count: keys.length }));
    });
    for (const p of place.values()) p.y = 10 + (p.row + (tallest - p.count) / 2) * ROW_H;
    const width = 20 + depths.length * COL_W, height = 20 + tallest * ROW_H;
    const svg = SF.svg("svg", { class: "column-graph", width, height, viewBox: `0 0 ${width} ${height}` });
    // A little too wide: shrink it to fit; much too wide: keep it legible and let it scroll.
    if (width < room * 1.6) {
      svg.style.maxWidth = "100%";
      svg.style.height = "auto";
    }
    for (const edge of found.edges) {
      const a = place.get(edge.from), b = place.get(edge.to);
      if (!a || !b) continue;
      const x1 = a.x + BOX_W, y1 = a.y + BOX_H / 2, x2 = b.x, y2 = b.y + BOX_H / 2;
      svg.appendChild(SF.svg("path", { class: "edge kind-" + edge.kind, d: `M${x1},${y1} C${x1 + GAP / 2},${y1} ${x2 - GAP / 2},${y2} ${x2},${y2}` },
        SF.svg("title", {}, edge.kind)));
    }
    for (const [k, item] of found.nodes) {
      const p = place.get(k);
      const type = typeof item.ref === "number" ? SF.nodes[item.ref].t : "missing";
      const unresolved = item.data && item.data.unresolved;
      const text = label(item);
      const box = SF.svg("g", {
        class: "column-node type-" + type + (item.root ? " root" : "") + (unresolved ? " unresolved" : ""),
        transform: `translate(${p.x},${p.y})`,
        dataset: { column: text },
      },
        SF.svg("title", {}, text + (unresolved ? "\nunresolved: " + unresolved : "")),
        SF.svg("rect", { width: BOX_W, height: BOX_H, rx: 5 }),
        SF.svg("text", { x: 8, y: 18 }, text));
      if (typeof item.ref === "number" && !item.root) {
        const link = SF.svg("a", { href: SF.lineageLink(item.ref, item.column) });
        link.appendChild(box);
        svg.appendChild(link);
      } else svg.appendChild(box);
    }
    return SF.el("div", { class: "column-graph-wrap" }, svg);
  }

  function lists(found) {
    const upstream = [...found.nodes.values()].filter((i) => i.depth < 0).sort((a, b) => b.depth - a.depth);
    const downstream = [...found.nodes.values()].filter((i) => i.depth > 0).sort((a, b) => a.depth - b.depth);
    const rows = (items, direction) => items.map((item) => {
      const k = key(item.ref, item.column);
      const hop = found.edges.find((e) => (direction === "up" ? e.from === k : e.to === k));
      const unresolved = item.data && item.data.unresolved;
      return SF.el("tr", { class: "lineage-row", dataset: { column: label(item) } },
        SF.el("td", {}, SF.refLink(item.ref, item.column)),
        SF.el("td", {}, String(Math.abs(item.depth))),
        SF.el("td", {}, hop ? hop.kind : ""),
        SF.el("td", {}, typeof item.ref === "number" ? SF.el("a", { href: SF.lineageLink(item.ref, item.column) }, "lineage") : "",
          unresolved ? SF.el("span", { class: "warning" }, " unresolved: " + unresolved) : null));
    });
    const table = (title, items, direction, empty) => [
      SF.el("h2", {}, title),
      items.length
        ? SF.el("table", { class: "columns lineage-" + direction },
          SF.el("thead", {}, SF.el("tr", {}, SF.el("th", {}, "column"), SF.el("th", {}, "hops"), SF.el("th", {}, direction === "up" ? "how it feeds the next column" : "how the previous column feeds it"), SF.el("th", {}, ""))),
          SF.el("tbody", {}, rows(items, direction)))
        : SF.el("p", { class: "muted" }, empty),
    ];
    const root = [...found.nodes.values()].find((i) => i.root);
    const note = root && root.data && root.data.unresolved
      ? SF.el("p", { class: "warning" }, "This column's lineage is unresolved: " + root.data.unresolved)
      : null;
    return SF.el("div", { class: "lineage-lists" }, note,
      table("Upstream: where it comes from", upstream, "up", "Nothing upstream: the value is computed in the model itself (a constant, count(*)...)."),
      table("Downstream: what it feeds", downstream, "down", "No column reads it."));
  }

  return { render };
})();
