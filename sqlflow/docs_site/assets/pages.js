// The pages: overview, and one page per node (model, source, seed, snapshot, exposure, test, macro).
"use strict";

SF.pages = (function () {
  const el = SF.el;
  const KIND = { d: "direct", e: "expression", a: "aggregate" };
  const CATALOG = {
    warehouse: "Columns and types as built in the warehouse.",
    "seed file": "Columns from the seed's CSV file (not loaded yet); types as they will be inferred.",
    yaml: "Not built yet: columns as documented in YAML.",
  };

  function section(title, ...content) {
    return el("section", { class: "block" }, el("h2", {}, title), content);
  }

  function overview(container) {
    const index = SF.index;
    const counts = Object.entries(index.counts).map(([type, count]) => el("li", {}, el("strong", {}, String(count)), " " + type + (count === 1 ? "" : "s")));
    const statuses = {};
    SF.nodes.forEach((node) => { if (node.st) statuses[node.st] = (statuses[node.st] || 0) + 1; });
    const statusItems = Object.entries(statuses).map(([status, count]) => el("li", {}, SF.statusBadge(status), " " + count));
    SF.clear(container).append(
      el("h1", {}, index.project),
      el("p", { class: "muted" }, `Target ${index.target} (${index.adapter}) · generated ${index.generated_at.replace("T", " ").slice(0, 19)} UTC`),
      index.overview ? el("p", { class: "description overview" }, index.overview) : null,
      section("What is here", el("ul", { class: "counts" }, counts)),
      statusItems.length ? section("Last run", el("ul", { class: "counts" }, statusItems)) : null,
      section("How to use it",
        el("ul", {},
          el("li", {}, "Click a node in the graph, the tree or a search result to open its page."),
          el("li", {}, "Type a selector above the graph to focus it: ", el("code", {}, "+orders+"), ", ", el("code", {}, "tag:finance"), ", ", el("code", {}, "path:models/staging"), "."),
          el("li", {}, "On a model's page, follow a column's ", el("em", {}, "lineage"), " link to see the columns it comes from and the columns it feeds."),
          el("li", {}, "Every page has its own address: copy it to share it.")))
    );
  }

  async function node(container, idx, column) {
    const n = SF.nodes[idx];
    SF.clear(container).append(el("p", { class: "muted" }, "Loading…"));
    const d = await SF.detail(idx);
    if (SF.state.route.idx !== idx) return; // the user has moved on
    const header = el("header", { class: "page-header" },
      el("h1", {}, n.n),
      el("div", { class: "badges" },
        SF.badge(n.t === "unit_test" ? "unit test" : n.t, "type type-" + n.t),
        n.m ? SF.badge(n.m, "materialized") : null,
        SF.statusBadge(n.st, n.du),
        (d.tags || []).map((tag) => SF.badge("tag:" + tag, "tag"))));
    const facts = el("dl", { class: "facts" });
    const fact = (term, value) => { if (value !== null && value !== undefined && value !== "") facts.append(el("dt", {}, term), el("dd", {}, value)); };
    fact("relation", d.relation ? el("code", {}, d.relation) : n.m === "ephemeral" ? "none: ephemeral models are inlined as CTEs" : null);
    fact("file", d.path ? el("code", {}, d.path) : null);
    fact("unique id", el("code", {}, n.i));
    if (n.t === "source") fact("loaded_at_field", d.loaded_at_field);
    if (n.t === "exposure") {
      fact("label", d.label);
      fact("type", d.exposure_type);
      fact("maturity", d.maturity);
      const owner = d.owner || {};
      fact("owner", [owner.name, owner.email ? el("a", { href: "mailto:" + owner.email }, owner.email) : null].filter(Boolean).flatMap((part, i) => (i ? [" · ", part] : [part])));
      fact("url", d.url ? el("a", { href: d.url, rel: "noopener" }, d.url) : null);
    }
    const body = [header, d.description ? el("p", { class: "description" }, d.description) : el("p", { class: "muted" }, "No description."), facts];
    if (d.result) body.push(lastRun(d.result));
    if (d.columns) body.push(columns(idx, d, column));
    if (d.tests && d.tests.length) body.push(section("Tests", testList(d.tests)));
    if (n.t === "test" || n.t === "unit_test") body.push(testFacts(d));
    if (d.parents || d.children) body.push(neighbours(d));
    if (d.raw !== undefined || d.compiled !== undefined) body.push(code(d));
    if (d.config && Object.keys(d.config).length) body.push(section("Config", el("pre", { class: "json" }, JSON.stringify(d.config, null, 2))));
    if (n.t === "source" && d.freshness) body.push(section("Freshness", el("pre", { class: "json" }, JSON.stringify(d.freshness, null, 2))));
    SF.clear(container).append(...body);
    if (column !== undefined) {
      const row = container.querySelector(`tr[data-column="${CSS.escape(column.toLowerCase())}"]`);
      if (row) {
        row.classList.add("focused");
        row.scrollIntoView({ block: "center" });
      }
    }
  }

  function lastRun(result) {
    const parts = [SF.statusBadge(result.status, result.execution_time)];
    if (result.failures !== undefined && result.failures !== null) parts.push(` ${result.failures} failing row${result.failures === 1 ? "" : "s"}`);
    if (result.completed_at) parts.push(el("span", { class: "muted" }, " · finished " + result.completed_at.replace("T", " ").slice(0, 19)));
    return section("Last run", el("p", {}, parts), result.message ? el("pre", { class: "message" }, result.message) : null);
  }

  function columns(idx, d, focus) {
    const rows = d.columns.map((c) => {
      const up = (c.up || []).map(([ref, name, kind]) => el("li", {}, "← ", SF.refLink(ref, name), el("span", { class: "kind kind-" + KIND[kind] }, " " + KIND[kind])));
      const lineage = [
        up.length ? el("ul", { class: "upstream" }, up) : null,
        c.unresolved ? el("div", { class: "warning" }, "unresolved: " + c.unresolved) : null,
        c.note ? el("div", { class: "muted" }, c.note) : null,
        el("a", { href: SF.lineageLink(idx, c.name), class: "lineage-link" }, "lineage"),
      ];
      return el("tr", { dataset: { column: c.name.toLowerCase() } },
        el("td", {}, el("a", { href: SF.nodeLink(idx, c.name), class: "column-name" }, c.name)),
        el("td", {}, c.type ? el("code", {}, c.type) : el("span", { class: "muted" }, "unknown")),
        el("td", {}, c.description || ""),
        el("td", {}, c.tests ? testList(c.tests) : ""),
        el("td", {}, lineage));
    });
    const note = [
      d.catalog ? el("p", { class: "muted" }, CATALOG[d.catalog] || "") : null,
      d.lineage_unresolved ? el("p", { class: "warning" }, "Column lineage unresolved: " + d.lineage_unresolved) : null,
    ];
    if (!rows.length) return section("Columns", note, el("p", { class: "muted" }, "No columns known: build it, or document them in YAML."));
    return section("Columns", note,
      el("table", { class: "columns" },
        el("thead", {}, el("tr", {}, ["Column", "Type", "Description", "Tests", "Lineage"].map((h) => el("th", {}, h)))),
        el("tbody", {}, rows)));
  }

  function testList(tests) {
    return el("ul", { class: "tests" }, tests.map(([ref, name, status]) =>
      el("li", {}, typeof ref === "number" ? el("a", { href: SF.nodeLink(ref) }, name) : name, " ", SF.statusBadge(status))));
  }

  function testFacts(d) {
    const facts = el("dl", { class: "facts" });
    if (d.attached !== undefined && d.attached !== null) facts.append(el("dt", {}, "tests"), el("dd", {}, SF.refLink(d.attached, d.column_name || undefined)));
    if (d.test_metadata) facts.append(el("dt", {}, "definition"), el("dd", {}, el("pre", { class: "json" }, JSON.stringify(d.test_metadata, null, 2))));
    return section("Test", facts);
  }

  function neighbours(d) {
    const list = (refs) => refs.length ? el("ul", { class: "refs" }, refs.map((r) => el("li", {}, SF.refLink(r)))) : el("p", { class: "muted" }, "none");
    return el("section", { class: "block two" },
      el("div", {}, el("h2", {}, "Depends on"), list(d.parents || [])),
      el("div", {}, el("h2", {}, "Referenced by"), list(d.children || [])));
  }

  function code(d) {
    const tabs = [];
    if (d.raw !== undefined) tabs.push(["Source", d.raw]);
    if (d.compiled !== undefined) tabs.push(["Compiled", d.compiled]);
    const holder = el("div", { class: "code" });
    const buttons = tabs.map(([name, text], i) => el("button", {
      class: "tab" + (i === 0 ? " active" : ""),
      dataset: { tab: name.toLowerCase() },
      onclick: (event) => {
        buttons.forEach((b) => b.classList.remove("active"));
        event.currentTarget.classList.add("active");
        SF.clear(holder).append(SF.sql.highlight(text));
      },
    }, name));
    if (tabs.length) holder.append(SF.sql.highlight(tabs[0][1]));
    return section("Code", el("div", { class: "tabs" }, buttons), holder);
  }

  return { overview, node };
})();
