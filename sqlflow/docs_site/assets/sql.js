// SQL (and Jinja) syntax highlighting: a small tokenizer producing spans with text content.
"use strict";

SF.sql = (function () {
  const KEYWORDS = new Set(
    ("select from where group by order having limit offset with as on join left right full inner outer cross " +
      "union all distinct intersect except and or not in is null like ilike between case when then else end " +
      "cast over partition rows range preceding following current row qualify insert into values update set " +
      "delete merge using matched create table view replace if exists drop alter true false asc desc nulls " +
      "first last lateral unnest interval filter within recursive window natural")
      .split(" ")
  );
  // Order matters: comments and Jinja before operators, strings before words.
  const TOKEN = new RegExp(
    [
      "(--[^\\n]*|/\\*[\\s\\S]*?(?:\\*/|$))", // 1 comment
      "(\\{\\{[\\s\\S]*?(?:\\}\\}|$)|\\{%[\\s\\S]*?(?:%\\}|$)|\\{#[\\s\\S]*?(?:#\\}|$))", // 2 jinja
      "('(?:[^']|'')*'?)", // 3 string
      '("(?:[^"]|"")*"?|`[^`]*`?)', // 4 quoted identifier
      "(\\b\\d+(?:\\.\\d+)?(?:[eE][+-]?\\d+)?\\b)", // 5 number
      "([A-Za-z_][A-Za-z0-9_$]*)", // 6 word
      "(\\s+|[^\\sA-Za-z0-9_'\"`{\\-/]+|[{\\-/])", // 7 anything else
    ].join("|"),
    "g"
  );

  function highlight(text) {
    const pre = SF.el("pre", { class: "sql" });
    const code = SF.el("code");
    pre.appendChild(code);
    TOKEN.lastIndex = 0;
    let match;
    let last = 0;
    while ((match = TOKEN.exec(text)) !== null) {
      if (match.index > last) code.appendChild(document.createTextNode(text.slice(last, match.index)));
      last = TOKEN.lastIndex;
      const token = match[0];
      let kind = null;
      if (match[1]) kind = "com";
      else if (match[2]) kind = "jinja";
      else if (match[3]) kind = "str";
      else if (match[4]) kind = "ident";
      else if (match[5]) kind = "num";
      else if (match[6]) {
        const lower = token.toLowerCase();
        if (KEYWORDS.has(lower)) kind = "kw";
        else if (text[TOKEN.lastIndex] === "(") kind = "fn";
      }
      code.appendChild(kind ? SF.el("span", { class: "tok-" + kind }, token) : document.createTextNode(token));
      if (!token.length) TOKEN.lastIndex++; // never loop on an empty match
    }
    if (last < text.length) code.appendChild(document.createTextNode(text.slice(last)));
    return pre;
  }

  return { highlight };
})();
