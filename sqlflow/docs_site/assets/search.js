// Search over names, column names and descriptions with the index built at generate time:
// each word typed is looked up by binary search among the sorted tokens (prefix match). A
// posting is node * 8 + field.
"use strict";

SF.search = (function () {
  const COLUMN = 1, DESCRIPTION = 2, COLUMN_PART = 5;
  // name, column, description, other (tags, paths, test names), word of a name, word of a column
  const WEIGHT = [8, 4, 1, 1, 6, 3];
  const MAX_TOKENS_PER_WORD = 400;

  function lowerBound(tokens, word) {
    let lo = 0, hi = tokens.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (tokens[mid] < word) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  // [{idx, score, why}] best first; `why` says where the match was (e.g. "column amount").
  function query(text, limit) {
    const index = SF.data.search;
    const words = text.toLowerCase().split(/\s+/).filter(Boolean);
    if (!words.length) return [];
    if (!index) return fallback(words, limit);
    let scores = null;
    const why = new Map();
    for (const word of words) {
      const found = new Map();
      let i = lowerBound(index.tokens, word);
      let scanned = 0;
      while (i < index.tokens.length && index.tokens[i].startsWith(word) && scanned < MAX_TOKENS_PER_WORD) {
        const token = index.tokens[i];
        const exact = token === word ? 2 : 1;
        for (const posting of index.postings[i]) {
          const idx = Math.floor(posting / 8), field = posting % 8;
          const score = WEIGHT[field] * exact;
          // A whole column name is the most useful reason to show, whatever scored best.
          if (field === COLUMN && !(why.get(idx) || "").startsWith("column ")) why.set(idx, "column " + token);
          else if (field === COLUMN_PART && !why.has(idx)) why.set(idx, "a column name");
          else if (field === DESCRIPTION && !why.has(idx)) why.set(idx, "description");
          if (!found.has(idx) || found.get(idx) < score) found.set(idx, score);
        }
        i++;
        scanned++;
      }
      if (scores === null) scores = found;
      else {
        const both = new Map();
        for (const [idx, score] of found) if (scores.has(idx)) both.set(idx, scores.get(idx) + score);
        scores = both;
      }
      if (!scores.size) return [];
    }
    const results = [...scores].map(([idx, score]) => {
      const name = SF.nodes[idx].n.toLowerCase();
      if (name === text.toLowerCase()) score += 100;
      else if (name.startsWith(words[0])) score += 10;
      return { idx, score, why: why.get(idx) };
    });
    results.sort((a, b) => b.score - a.score || SF.nodes[a.idx].n.length - SF.nodes[b.idx].n.length || a.idx - b.idx);
    return results.slice(0, limit || 30);
  }

  // Until the index has loaded: names only.
  function fallback(words, limit) {
    const results = [];
    SF.nodes.forEach((node, idx) => {
      const name = node.n.toLowerCase();
      if (words.every((w) => name.includes(w))) results.push({ idx, score: 1 });
    });
    return results.slice(0, limit || 30);
  }

  return { query };
})();
