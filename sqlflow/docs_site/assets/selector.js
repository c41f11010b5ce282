// sqlflow's selector syntax, evaluated in the page over the graph's nodes and edges (the same
// grammar as sqlflow/selection.py): space = union, comma = intersection, N+name+M, @name,
// and the methods the site has data for.
"use strict";

SF.selector = (function () {
  const TOKEN = /(\s+)|(,)|(@)|(\d*\+\d*)|([^\s,+@]+)/g;
  const SUPPORTED = "name, +name, name+, 2+name+1, @name, tag:, path:, fqn:, source:, exposure:, resource_type:, package:, config.materialized:, result:";

  class SelectorError extends Error {}

  function tokenize(text) {
    const tokens = [];
    let match;
    TOKEN.lastIndex = 0;
    while ((match = TOKEN.exec(text)) !== null) {
      const kind = match[1] ? "SPACE" : match[2] ? "COMMA" : match[3] ? "AT" : match[4] ? "PLUS" : "WORD";
      const token = { kind: kind, text: match[0] };
      if (kind === "PLUS") {
        const digits = match[0].replace("+", "");
        token.depth = digits ? parseInt(digits, 10) : null;
        token.leading = /^\d/.test(match[0]);
        token.trailing = /\d$/.test(match[0]);
      }
      tokens.push(token);
    }
    return tokens;
  }

  function parse(text) {
    const tokens = tokenize(text);
    let pos = 0;
    const peek = () => tokens[pos];
    const skipSpaces = () => {
      while (peek() && peek().kind === "SPACE") pos++;
    };
    function criterion() {
      let token = tokens[pos++];
      const c = { method: "default", value: "", parents: false, parentsDepth: null, children: false, childrenDepth: null, at: false };
      if (token && token.kind === "AT") {
        c.at = true;
        token = tokens[pos++];
      } else if (token && token.kind === "PLUS") {
        if (token.trailing && !token.leading) throw new SelectorError(`'${token.text}': a depth goes before a leading '+', as in 2+name`);
        c.parents = true;
        c.parentsDepth = token.depth;
        token = tokens[pos++];
      }
      if (!token || token.kind !== "WORD") {
        const operator = c.at ? "@" : c.parents ? "+" : null;
        if (operator && (!token || token.kind === "SPACE")) throw new SelectorError(`dangling '${operator}': expected a name right after it`);
        throw new SelectorError(token ? `unexpected '${token.text.trim() || "space"}': expected a name` : "the selector ends too early");
      }
      const colon = token.text.indexOf(":");
      if (colon >= 0) {
        c.method = token.text.slice(0, colon);
        c.value = token.text.slice(colon + 1);
        if (!c.value) throw new SelectorError(`${c.method}: needs a value`);
      } else {
        c.value = token.text;
      }
      const after = peek();
      if (after && after.kind === "PLUS") {
        if (after.leading) throw new SelectorError(`'${after.text}': a depth goes after a trailing '+', as in name+2`);
        pos++;
        c.children = true;
        c.childrenDepth = after.depth;
      }
      if (c.at && (c.parents || c.children)) throw new SelectorError("'@' cannot be combined with '+'");
      const following = peek();
      if (following && (following.kind === "WORD" || following.kind === "AT" || following.kind === "PLUS")) {
        throw new SelectorError(`unexpected '${following.text}'`);
      }
      return c;
    }
    const groups = [];
    skipSpaces();
    if (!peek()) throw new SelectorError("empty selector");
    while (peek()) {
      const group = [criterion()];
      while (peek() && peek().kind === "COMMA") {
        pos++;
        if (!peek() || peek().kind === "SPACE" || peek().kind === "COMMA") throw new SelectorError("',' needs a selector on both sides");
        group.push(criterion());
      }
      groups.push(group);
      skipSpaces();
    }
    return groups;
  }

  // fnmatch-style globs: * ? [seq]
  const globCache = new Map();
  function glob(pattern, value) {
    let re = globCache.get(pattern);
    if (!re) {
      let source = "";
      for (let i = 0; i < pattern.length; i++) {
        const ch = pattern[i];
        if (ch === "*") source += ".*";
        else if (ch === "?") source += ".";
        else if (ch === "[") {
          const end = pattern.indexOf("]", i + 1);
          if (end < 0) source += "\\[";
          else {
            let body = pattern.slice(i + 1, end).replace(/\\/g, "\\\\");
            if (body.startsWith("!")) body = "^" + body.slice(1);
            source += "[" + body + "]";
            i = end;
          }
        } else source += ch.replace(/[.*+?^${}()|[\]\\\/]/g, "\\$&");
      }
      re = new RegExp("^" + source + "$", "s");
      globCache.set(pattern, re);
    }
    return re.test(value);
  }

  function fqnMatch(pattern, fqn) {
    const parts = pattern.split(".");
    for (const candidate of [fqn, fqn.slice(1)]) {
      if (parts.length > candidate.length) continue;
      const prefix = parts.slice(0, -1).every((p, i) => glob(p, candidate[i]));
      if (parts[parts.length - 1] === "*" && prefix) return true;
      if (parts.length === candidate.length && parts.every((p, i) => glob(p, candidate[i]))) return true;
    }
    return false;
  }

  // PurePosixPath(path).match(pattern): a relative pattern matches from the right.
  function pathMatch(pattern, path) {
    const want = pattern.split("/").filter(Boolean);
    const have = path.split("/").filter(Boolean);
    if (!want.length || want.length > have.length) return false;
    const tail = have.slice(have.length - want.length);
    return want.every((p, i) => glob(p, tail[i]));
  }

  function plainName(node) {
    return node.t === "source" ? node.n.slice(node.sn.length + 1) : node.n;
  }

  function byPath(node, value) {
    const path = node.p || "";
    value = value.replace(/\/+$/, "");
    return path === value || path.startsWith(value + "/") || pathMatch(value, path) || glob(value, path);
  }

  const METHODS = {
    default(node, value) {
      if (value.includes("/") || value.endsWith(".sql") || value.endsWith(".csv")) return byPath(node, value);
      if (value.includes(".")) return fqnMatch(value, (node.f || "").split("."));
      return glob(value, plainName(node)) || value === (node.k || SF.index.project);
    },
    path: byPath,
    tag: (node, value) => (node.g || []).some((tag) => glob(value, tag)),
    fqn: (node, value) => fqnMatch(value, (node.f || "").split(".")),
    source(node, value) {
      if (node.t !== "source") return false;
      const dot = value.indexOf(".");
      const name = dot < 0 ? value : value.slice(0, dot);
      const table = dot < 0 ? "" : value.slice(dot + 1);
      return glob(name, node.sn) && (!table || glob(table, plainName(node)));
    },
    exposure: (node, value) => node.t === "exposure" && glob(value, node.n),
    resource_type: (node, value) => node.t === value,
    package: (node, value) => glob(value, node.k || SF.index.project),
    result: (node, value) => node.st === value,
    "config.materialized"(node, value) {
      const materialized = node.t === "model" ? node.m : node.t === "source" || node.t === "exposure" ? null : node.t;
      return materialized !== null && materialized !== undefined && glob(value, materialized);
    },
  };

  // Evaluate `text` over the graph: {nodes: [idx], parents: [[idx]], children: [[idx]]}.
  function evaluate(text, graph) {
    const groups = parse(text);
    for (const group of groups) {
      for (const c of group) {
        if (!METHODS[c.method]) {
          throw new SelectorError(`${c.method}: is not available in the docs site (it supports ${SUPPORTED})`);
        }
      }
    }
    const result = new Set();
    for (const group of groups) {
      let members = evaluateCriterion(group[0], graph);
      for (const c of group.slice(1)) {
        const other = evaluateCriterion(c, graph);
        members = new Set([...members].filter((idx) => other.has(idx)));
      }
      members.forEach((idx) => result.add(idx));
    }
    return result;
  }

  function evaluateCriterion(c, graph) {
    const method = METHODS[c.method];
    const matched = graph.nodes.filter((idx) => method(SF.nodes[idx], c.value));
    const selected = new Set(matched);
    for (const idx of matched) {
      if (c.parents) reach(idx, c.parentsDepth, graph.parents).forEach((n) => selected.add(n));
      if (c.children || c.at) reach(idx, c.childrenDepth, graph.children).forEach((n) => selected.add(n));
    }
    if (c.at) {
      for (const idx of [...selected]) reach(idx, null, graph.parents).forEach((n) => selected.add(n));
    }
    return selected;
  }

  // Nodes reachable from idx through `next` within `depth` steps (null: any number).
  function reach(idx, depth, next) {
    const seen = new Set();
    let frontier = [idx];
    let level = 0;
    while (frontier.length && (depth === null || depth === undefined || level < depth)) {
      level++;
      const following = [];
      for (const current of frontier) {
        for (const other of next[current] || []) {
          if (!seen.has(other)) {
            seen.add(other);
            following.push(other);
          }
        }
      }
      frontier = following;
    }
    seen.delete(idx);
    return seen;
  }

  return { evaluate, parse, reach, SelectorError, SUPPORTED };
})();
