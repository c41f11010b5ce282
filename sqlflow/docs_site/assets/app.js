// sqlflow docs: start-up, routing (URL hash), the navigation tree, search box and graph panel.
"use strict";

SF.state = { route: {}, selector: "", focus: new Set(), colourBy: "type" };

SF.start = function (index) {
  SF.index = index;
  SF.nodes = index.nodes;
  SF.byId = new Map(index.nodes.map((node, idx) => [node.i, idx]));
  const graphNodes = [];
  const parents = [], children = [];
  index.nodes.forEach((node, idx) => { if (node.x !== undefined) graphNodes.push(idx); });
  for (let i = 0; i < index.edges.length; i += 2) {
    const from = index.edges[i], to = index.edges[i + 1];
    (children[from] = children[from] || []).push(to);
    (parents[to] = parents[to] || []).push(from);
  }
  SF.graphData = { nodes: graphNodes, parents, children };
  SF.focusMode = graphNodes.length > index.focus_threshold;
  document.title = index.project + " · sqlflow docs";
  document.getElementById("project-name").textContent = index.project;

  SF.graph = new SF.Graph(document.getElementById("graph"), {
    onOpen: (idx) => { location.hash = SF.nodeLink(idx); },
    onExpand: (idx, direction) => {
      const more = direction === "parents" ? SF.graphData.parents[idx] : SF.graphData.children[idx];
      if (SF.state.selector) return;
      (more || []).forEach((n) => SF.state.focus.add(n));
      drawGraph(false);
    },
  });
  SF.graph.setColourBy(SF.state.colourBy);
  setUpToolbar();
  setUpTree();
  setUpSearch();
  window.addEventListener("hashchange", route);
  route();
  // Marks for the browser's performance panel (and benchmarks/bench_docs.py).
  requestAnimationFrame(() => performance.mark("sqlflow:graph-drawn"));
  // Search needs its index; load it once the first paint is done.
  requestAnimationFrame(() => setTimeout(() => {
    SF.load("search", "data/search.js").then(() => {
      performance.mark("sqlflow:search-ready");
      document.body.dataset.searchReady = "true";
      const input = document.getElementById("search");
      if (input.value) showResults(input.value);
    });
  }, 0));
};

// ------------------------------------------------------------------ routing

function parseHash() {
  const [path, query] = splitOnce(location.hash.replace(/^#\/?/, ""), "?");
  const params = new URLSearchParams(query || "");
  const parts = path.split("/").filter((p) => p !== "").map(decodeURIComponentSafe);
  const route = { view: "overview", selector: params.get("s") || "" };
  if ((parts[0] === "n" || parts[0] === "lineage") && parts[1] !== undefined) {
    route.idx = SF.byId.get(parts[1]);
    if (route.idx === undefined) route.view = "missing";
    else if (parts[0] === "lineage" && parts[2] !== undefined) {
      route.view = "lineage";
      route.column = parts[2];
    } else {
      route.view = "node";
      if (parts[2] === "c" && parts[3] !== undefined) route.column = parts[3];
    }
  }
  return route;
}

function splitOnce(text, separator) {
  const at = text.indexOf(separator);
  return at < 0 ? [text, ""] : [text.slice(0, at), text.slice(at + 1)];
}

function decodeURIComponentSafe(text) {
  try { return decodeURIComponent(text); } catch (e) { return text; }
}

function route() {
  const current = parseHash();
  const previous = SF.state.route;
  SF.state.route = current;
  const page = document.getElementById("page");
  const selectorChanged = current.selector !== SF.state.selector;
  SF.state.selector = current.selector;
  document.getElementById("selector").value = current.selector;
  if (current.view === "node") SF.pages.node(page, current.idx, current.column);
  else if (current.view === "lineage") SF.columnLineage.render(page, current.idx, current.column);
  else if (current.view === "missing") SF.clear(page).append(SF.el("h1", {}, "Not found"), SF.el("p", {}, "Nothing in this site has that address."));
  else SF.pages.overview(page);
  if (current.view !== "lineage" || previous.view !== "lineage") page.scrollTop = 0;
  markInTree(current.idx);
  const focusChanged = current.idx !== undefined && current.idx !== previous.idx;
  if (SF.focusMode && !current.selector && current.idx !== undefined && SF.nodes[current.idx].x !== undefined) {
    // Large projects open focused on the current node, and grow as the user clicks around.
    const before = SF.state.focus.size;
    focusAround(current.idx);
    drawGraph(before === 0 || selectorChanged, current.idx);
  } else if (selectorChanged || !SF.graph.visible.size) {
    drawGraph(true, current.idx);
  } else if (focusChanged && SF.graph.visible.has(current.idx)) {
    SF.graph.centerOn(current.idx);
  }
  SF.graph.highlight(current.idx);
}

function focusAround(idx) {
  SF.state.focus.add(idx);
  SF.selector.reach(idx, 2, SF.graphData.parents).forEach((n) => SF.state.focus.add(n));
  SF.selector.reach(idx, 2, SF.graphData.children).forEach((n) => SF.state.focus.add(n));
}

// The most connected node: where a large project's graph opens when no page is open.
function busiestNode() {
  let best = SF.graphData.nodes[0], degree = -1;
  for (const idx of SF.graphData.nodes) {
    const d = (SF.graphData.parents[idx] || []).length + (SF.graphData.children[idx] || []).length;
    if (d > degree) { best = idx; degree = d; }
  }
  return best;
}

function drawGraph(refit, centre) {
  const message = document.getElementById("selector-message");
  message.textContent = "";
  message.className = "";
  let visible;
  if (SF.state.selector) {
    try {
      visible = SF.selector.evaluate(SF.state.selector, SF.graphData);
      message.textContent = `${visible.size} of ${SF.graphData.nodes.length} nodes`;
    } catch (error) {
      if (!(error instanceof SF.selector.SelectorError)) throw error;
      message.textContent = error.message;
      message.className = "error";
      return;
    }
  } else if (SF.focusMode) {
    if (!SF.state.focus.size && SF.graphData.nodes.length) focusAround(busiestNode());
    visible = new Set(SF.state.focus);
    message.textContent = `${visible.size} of ${SF.graphData.nodes.length} nodes: click a node or its + to show more, or type a selector`;
  } else {
    visible = new Set(SF.graphData.nodes);
  }
  SF.graph.show(visible, SF.graphData);
  document.getElementById("graph").dataset.selector = SF.state.selector;
  if (refit) SF.graph.fit();
  else if (centre !== undefined && visible.has(centre)) SF.graph.centerOn(centre);
}

// ------------------------------------------------------------------ toolbar

function setUpToolbar() {
  const input = document.getElementById("selector");
  let timer = null;
  const apply = () => {
    clearTimeout(timer);
    const value = input.value.trim();
    const base = location.hash.split("?")[0] || "#/";
    const hash = value ? base + "?s=" + encodeURIComponent(value) : base;
    if (hash !== location.hash) location.hash = hash;
  };
  input.addEventListener("keydown", (event) => { if (event.key === "Enter") apply(); });
  input.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(apply, 400); });
  document.getElementById("colour-by").addEventListener("change", (event) => {
    SF.state.colourBy = event.target.value;
    SF.graph.setColourBy(event.target.value);
    document.getElementById("legend").dataset.mode = event.target.value;
  });
  document.getElementById("fit").addEventListener("click", () => SF.graph.fit());
  document.getElementById("zoom-in").addEventListener("click", () => SF.graph.zoom(1.25));
  document.getElementById("zoom-out").addEventListener("click", () => SF.graph.zoom(0.8));
  document.getElementById("reset").addEventListener("click", () => {
    SF.state.focus.clear();
    if (SF.state.route.idx !== undefined) focusAround(SF.state.route.idx);
    input.value = "";
    apply();
    drawGraph(true, SF.state.route.idx);
    SF.graph.highlight(SF.state.route.idx);
  });
}

// ------------------------------------------------------------------ navigation tree

// {name, children: Map, items: [idx]} built lazily into <details> elements.
function setUpTree() {
  const project = { children: new Map(), items: [] };
  const database = { children: new Map(), items: [] };
  const folder = (root, names) => names.reduce((node, name) => {
    if (!node.children.has(name)) node.children.set(name, { children: new Map(), items: [] });
    return node.children.get(name);
  }, root);
  SF.nodes.forEach((node, idx) => {
    if (node.t === "source") folder(project, ["Sources", node.sn]).items.push(idx);
    else if (node.t === "exposure") folder(project, ["Exposures"]).items.push(idx);
    else if (node.t === "test" && node.a !== undefined) { /* generic tests: on their model's page */ }
    else if (node.t !== "unit_test" && node.p) folder(project, node.p.split("/").slice(0, -1)).items.push(idx);
    if (node.s !== undefined) folder(database, [node.d || "(default database)", node.s]).items.push(idx);
  });
  const trees = { project, database };
  const nav = document.getElementById("tree");
  const show = (which) => {
    SF.clear(nav).append(renderFolder(trees[which], 0));
    document.querySelectorAll("#tree-tabs button").forEach((b) => b.classList.toggle("active", b.dataset.tree === which));
    markInTree(SF.state.route.idx);
  };
  document.querySelectorAll("#tree-tabs button").forEach((b) => b.addEventListener("click", () => show(b.dataset.tree)));
  show("project");
}

function renderFolder(folder, depth) {
  const list = SF.el("ul", { class: "tree-list" });
  for (const [name, sub] of [...folder.children].sort((a, b) => a[0].localeCompare(b[0]))) {
    const details = SF.el("details", { open: depth === 0 }, SF.el("summary", {}, name));
    let rendered = false;
    const fill = () => { if (!rendered) { rendered = true; details.appendChild(renderFolder(sub, depth + 1)); } };
    if (depth === 0) fill();
    details.addEventListener("toggle", fill);
    details._fill = fill;
    list.appendChild(SF.el("li", { class: "folder" }, details));
  }
  const items = folder.items.slice().sort((a, b) => SF.nodes[a].n.localeCompare(SF.nodes[b].n));
  for (const idx of items) {
    const node = SF.nodes[idx];
    list.appendChild(SF.el("li", { class: "leaf" }, SF.el("a", { href: SF.nodeLink(idx), class: "type-" + node.t, dataset: { idx } }, node.n)));
  }
  return list;
}

function markInTree(idx) {
  document.querySelectorAll("#tree a.active").forEach((a) => a.classList.remove("active"));
  if (idx === undefined) return;
  const link = document.querySelector(`#tree a[data-idx="${idx}"]`);
  if (link) link.classList.add("active");
}

// ------------------------------------------------------------------ search

function setUpSearch() {
  const input = document.getElementById("search");
  input.addEventListener("input", () => showResults(input.value));
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter") {
      const first = document.querySelector("#search-results a");
      if (first) location.hash = first.getAttribute("href");
      hideResults();
    } else if (event.key === "Escape") hideResults();
  });
  document.addEventListener("click", (event) => { if (!event.target.closest(".search")) hideResults(); });
}

function showResults(text) {
  const box = document.getElementById("search-results");
  const results = SF.search.query(text, 30);
  SF.clear(box);
  if (!text.trim()) return hideResults();
  box.hidden = false;
  if (!results.length) {
    box.append(SF.el("p", { class: "muted" }, "No match."));
    return;
  }
  for (const result of results) {
    const node = SF.nodes[result.idx];
    const column = result.why && result.why.startsWith("column ") ? result.why.slice(7) : undefined;
    box.append(SF.el("a", { href: SF.nodeLink(result.idx, column), class: "result", onclick: hideResults },
      SF.el("span", { class: "name type-" + node.t }, node.n),
      SF.el("span", { class: "muted" }, " " + node.t + (result.why ? " · " + result.why : ""))));
  }
}

function hideResults() {
  document.getElementById("search-results").hidden = true;
}
