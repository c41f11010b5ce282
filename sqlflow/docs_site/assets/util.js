// sqlflow docs: shared helpers. Every user-written string reaches the page through text nodes
// (SF.el), never through innerHTML, so a description containing markup shows as text.
"use strict";

window.SF = { data: {}, waiting: {} };

// Data files are scripts calling this: browsers refuse fetch() between file:// URLs.
function sqlflowData(name, value) {
  SF.data[name] = value;
  const waiting = SF.waiting[name];
  if (waiting) {
    delete SF.waiting[name];
    waiting.forEach((resolve) => resolve(value));
  }
  if (name === "index" && SF.start) SF.start(value);
}

// Load a data script once; resolves with the value it passes to sqlflowData.
SF.load = function (name, src) {
  if (name in SF.data) return Promise.resolve(SF.data[name]);
  return new Promise((resolve, reject) => {
    const first = !SF.waiting[name];
    (SF.waiting[name] = SF.waiting[name] || []).push(resolve);
    if (!first) return;
    const script = document.createElement("script");
    script.src = src;
    script.onerror = () => reject(new Error("cannot load " + src));
    document.head.appendChild(script);
  });
};

// el("a", {href: "#/", class: "x", onclick: fn}, "text", child, [more]) -> element.
SF.el = function (tag, attrs, ...children) {
  const node = document.createElement(tag);
  SF.setAttrs(node, attrs);
  SF.append(node, children);
  return node;
};

SF.svg = function (tag, attrs, ...children) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  SF.setAttrs(node, attrs);
  SF.append(node, children);
  return node;
};

SF.setAttrs = function (node, attrs) {
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") node.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
};

SF.append = function (node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
};

SF.clear = function (node) {
  while (node.firstChild) node.removeChild(node.firstChild);
  return node;
};

// Deep links: #/n/<unique id>, #/n/<unique id>/c/<column>, #/lineage/<unique id>/<column>,
// each optionally followed by ?s=<selector>.
SF.link = function (parts, selector) {
  const path = "#/" + parts.map(encodeURIComponent).join("/");
  const s = selector === undefined ? SF.state && SF.state.selector : selector;
  return s ? path + "?s=" + encodeURIComponent(s) : path;
};

SF.nodeLink = function (idx, column) {
  const uid = SF.nodes[idx].i;
  return column === undefined ? SF.link(["n", uid]) : SF.link(["n", uid, "c", column]);
};

SF.lineageLink = function (idx, column) {
  return SF.link(["lineage", SF.nodes[idx].i, column]);
};

// The details of node idx (description, SQL, columns...), loading its chunk on first use.
SF.detail = function (idx) {
  const chunk = SF.nodes[idx].c;
  return SF.load("chunk:" + chunk, "data/nodes/" + chunk + ".js").then((data) => data[String(idx)]);
};

SF.formatSeconds = function (seconds) {
  if (seconds === undefined || seconds === null) return "";
  return seconds < 10 ? seconds.toFixed(2) + " s" : seconds.toFixed(1) + " s";
};

// A node's reference in the data: its index, or a unique id string when it is not in the site.
SF.refLink = function (ref, column) {
  if (typeof ref === "number") {
    const label = column === undefined ? SF.nodes[ref].n : SF.nodes[ref].n + "." + column;
    return SF.el("a", { href: SF.nodeLink(ref, column), class: "ref type-" + SF.nodes[ref].t }, label);
  }
  return SF.el("span", { class: "ref missing", title: "not in this site" }, column === undefined ? ref : ref + "." + column);
};

SF.badge = function (text, kind) {
  return SF.el("span", { class: "badge " + (kind || "") }, text);
};

SF.statusBadge = function (status, seconds) {
  if (!status) return null;
  const label = seconds === undefined || seconds === null ? status : status + " · " + SF.formatSeconds(seconds);
  return SF.el("span", { class: "badge status status-" + status.replace(/\s+/g, "-") }, label);
};
