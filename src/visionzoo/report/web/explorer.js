// Glue of the metrics explorer: filters, sorting and the column chooser for the table, and the traces
// handed to plotly.js. The data (column specs, values, printed texts) comes from visionzoo's report.
"use strict";
(function () {
  const data = JSON.parse(document.getElementById("explorer-data").textContent);
  const columns = data.columns;
  const at = Object.fromEntries(columns.map((c, i) => [c.key, i]));
  const column = (key) => columns[at[key]];
  const rows = data.rows;
  const nameOf = (row) => row.v[at.name];
  // a fixed colour per family, so that filtering never repaints the others
  const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
                   "#17becf", "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173"];
  const distinct = (key) => [...new Set(rows.map((r) => r.v[at[key]]).filter((v) => v !== null))].sort();
  const families = distinct("family");
  const colour = Object.fromEntries(families.map((f, i) => [f, PALETTE[i % PALETTE.length]]));

  const state = {
    chosen: {},   // key of a "choices" filter -> Set of values shown
    selected: {}, // key of a "select" filter -> the value shown, "" for all
    search: "",
    shown: new Set(columns.filter((c) => c.shown).map((c) => c.key)),
    sortKey: data.sort.key, descending: data.sort.descending,
    x: data.plot.x, y: data.plot.y, logX: data.plot.logx,
    highlighted: null,
  };

  function element(tag, attributes, text) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes || {})) node.setAttribute(name, value);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // ---- filters ----
  function buildFilters() {
    const box = document.getElementById("filters");
    for (const c of columns.filter((c) => c.filter)) {
      const values = distinct(c.key);
      if (c.filter === "choices") {
        state.chosen[c.key] = new Set(values);
        const group = element("fieldset", {id: `filter-${c.key}`, class: "filter-choices"});
        group.append(element("legend", {}, c.label));
        for (const value of values) {
          const label = element("label");
          const tick = element("input", {type: "checkbox", value: value});
          tick.checked = true;
          tick.addEventListener("change", () => {
            if (tick.checked) state.chosen[c.key].add(value); else state.chosen[c.key].delete(value);
            update();
          });
          label.append(tick, " " + value);
          group.append(label);
        }
        for (const [text, all] of [["all", true], ["none", false]]) {
          const button = element("button", {type: "button", "data-all": String(all)}, text);
          button.addEventListener("click", () => setChoices(c.key, all ? values : []));
          group.append(button);
        }
        box.append(group);
      } else {
        state.selected[c.key] = "";
        const select = element("select", {id: `filter-${c.key}`});
        select.append(element("option", {value: ""}, "all"));
        for (const value of values) select.append(element("option", {value: value}, value));
        select.addEventListener("change", () => { state.selected[c.key] = select.value; update(); });
        const label = element("label", {}, c.label + " ");
        label.append(select);
        box.append(label);
      }
    }
    const search = document.getElementById("search");
    search.addEventListener("input", () => { state.search = search.value.trim().toLowerCase(); update(); });
  }

  function setChoices(key, values) {
    state.chosen[key] = new Set(values);
    for (const tick of document.querySelectorAll(`#filter-${key} input`)) tick.checked = state.chosen[key].has(tick.value);
    update();
  }

  function visibleRows() {
    return rows.filter((row) =>
      Object.entries(state.chosen).every(([key, set]) => set.has(row.v[at[key]])) &&
      Object.entries(state.selected).every(([key, value]) => value === "" || row.v[at[key]] === value) &&
      (state.search === "" || row.t.join(" ").toLowerCase().includes(state.search)));
  }

  // ---- table ----
  function compare(a, b) {
    const i = at[state.sortKey];
    const x = a.v[i], y = b.v[i];
    if (x === null || y === null) return (x === null) - (y === null);  // no value: last either way
    const order = x < y ? -1 : x > y ? 1 : 0;
    return (state.descending ? -order : order) || (nameOf(a) < nameOf(b) ? -1 : 1);
  }

  function buildHeader() {
    const tr = element("tr");
    for (const c of columns.filter((c) => state.shown.has(c.key))) {
      const th = element("th", {"data-key": c.key, class: `${c.numeric ? "number" : "text"} ${c.group}`}, c.label);
      if (c.key === state.sortKey) th.setAttribute("aria-sort", state.descending ? "descending" : "ascending");
      th.addEventListener("click", () => {
        // numbers start from the largest, text from A; a second click reverses
        state.descending = c.key === state.sortKey ? !state.descending : c.numeric;
        state.sortKey = c.key;
        update();
      });
      tr.append(th);
    }
    document.querySelector("#table thead").replaceChildren(tr);
  }

  function renderTable(visible) {
    buildHeader();
    const shown = columns.filter((c) => state.shown.has(c.key));
    const body = document.querySelector("#table tbody");
    body.replaceChildren(...visible.map((row) => {
      const tr = element("tr", {"data-name": nameOf(row)});
      if (nameOf(row) === state.highlighted) tr.classList.add("selected");
      for (const c of shown) {
        const text = row.t[at[c.key]];
        const td = element("td", {"data-key": c.key, class: `${c.numeric ? "number" : "text"} ${c.group}`, title: text});
        if (row.l[c.key]) td.append(element("a", {href: row.l[c.key]}, text)); else td.textContent = text;
        tr.append(td);
      }
      tr.addEventListener("click", (event) => { if (event.target.tagName !== "A") highlight(nameOf(row), false); });
      return tr;
    }));
  }

  // ---- plot ----
  function plottable(row) {
    const x = row.v[at[state.x]], y = row.v[at[state.y]];
    return x !== null && y !== null && !(state.logX && x <= 0);
  }

  // The points no other point beats on both axes, each in its column's better direction; ordered by x.
  function paretoFront(points) {
    const sx = column(state.x).better === "higher" ? -1 : 1, sy = column(state.y).better === "lower" ? -1 : 1;
    const ordered = points.slice().sort((a, b) => sx * (a.x - b.x) || sy * (b.y - a.y) || (a.name < b.name ? -1 : 1));
    const front = [];
    let best = -Infinity;
    for (const p of ordered) {
      if (sy * p.y > best) { front.push(p); best = sy * p.y; }
    }
    return front.sort((a, b) => a.x - b.x);
  }

  function escapeHtml(text) {
    return text.replace(/[&<>"]/g, (ch) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"}[ch]));
  }

  function hoverText(row) {
    const keys = [...new Set([state.y, state.x, "top1", "params_m", "gmacs", "img_size"])];
    const lines = keys.map((key) => `${escapeHtml(column(key).label)}: ${escapeHtml(row.t[at[key]])}`);
    return `<b>${escapeHtml(nameOf(row))}</b><br>${lines.join("<br>")}`;
  }

  function renderPlot(visible) {
    const points = visible.filter(plottable);
    const traces = families.filter((f) => state.chosen.family.has(f)).map((family) => {
      const mine = points.filter((row) => row.v[at.family] === family);
      return {
        type: "scatter", mode: "markers", name: family, meta: "family",
        x: mine.map((r) => r.v[at[state.x]]), y: mine.map((r) => r.v[at[state.y]]),
        customdata: mine.map(nameOf), text: mine.map(hoverText), hovertemplate: "%{text}<extra></extra>",
        marker: {color: colour[family], size: 9, opacity: 0.85,
                 line: {color: "#000", width: mine.map((r) => (nameOf(r) === state.highlighted ? 3 : 0))}},
      };
    });
    const front = paretoFront(points.map((r) => ({x: r.v[at[state.x]], y: r.v[at[state.y]], name: nameOf(r)})));
    traces.push({type: "scatter", mode: "lines", name: "Pareto front", meta: "front", hoverinfo: "skip",
                 x: front.map((p) => p.x), y: front.map((p) => p.y), customdata: front.map((p) => p.name),
                 line: {color: "#d62728", width: 1.5}});
    const layout = {
      margin: {l: 60, r: 10, t: 20, b: 50}, hovermode: "closest",
      xaxis: {title: {text: column(state.x).label}, type: state.logX ? "log" : "linear"},
      yaxis: {title: {text: column(state.y).label}},
      legend: {orientation: "v"},
    };
    Plotly.react("plot", traces, layout, {displaylogo: false, responsive: true});
    return points.length;
  }

  // ---- axes and columns ----
  function buildAxes() {
    for (const [id, key] of [["x-axis", "x"], ["y-axis", "y"]]) {
      const select = document.getElementById(id);
      for (const c of columns.filter((c) => c.numeric)) select.append(element("option", {value: c.key}, c.label));
      select.value = state[key];
      select.addEventListener("change", () => {
        state[key] = select.value;
        if (key === "x") { state.logX = column(select.value).log; document.getElementById("log-x").checked = state.logX; }
        update();
      });
    }
    const logX = document.getElementById("log-x");
    logX.checked = state.logX;
    logX.addEventListener("change", () => { state.logX = logX.checked; update(); });
  }

  function buildColumnChooser() {
    const box = document.getElementById("columns");
    for (const c of columns) {
      const label = element("label");
      const tick = element("input", {type: "checkbox", value: c.key});
      tick.checked = state.shown.has(c.key);
      tick.addEventListener("change", () => {
        if (tick.checked) state.shown.add(c.key); else state.shown.delete(c.key);
        update();
      });
      label.append(tick, " " + c.label);
      box.append(label);
    }
  }

  // ---- selection: a clicked point finds its row, a clicked row marks its point ----
  function highlight(name, scroll) {
    state.highlighted = name;
    update();
    const tr = [...document.querySelectorAll("#table tbody tr")].find((r) => r.dataset.name === name);
    if (tr && scroll) tr.scrollIntoView({block: "center"});
  }

  function update() {
    const visible = visibleRows().sort(compare);
    renderTable(visible);
    const plotted = renderPlot(visible);
    document.getElementById("counts").textContent =
      `${visible.length} of ${rows.length} tags shown, ${plotted} plotted (the others lack a value on an axis)`;
  }

  buildFilters();
  buildAxes();
  buildColumnChooser();
  update();
  const plot = document.getElementById("plot");
  plot.on("plotly_click", (event) => highlight(event.points[0].customdata, true));
  // the legend's families are the family filter's: a click there filters both views
  plot.on("plotly_legendclick", (event) => {
    const trace = event.data[event.curveNumber];
    if (trace.meta === "family") {
      const chosen = state.chosen.family;
      setChoices("family", families.filter((f) => (f === trace.name ? !chosen.has(f) : chosen.has(f))));
    }
    return false;
  });
  plot.on("plotly_legenddoubleclick", (event) => {
    const trace = event.data[event.curveNumber];
    if (trace.meta === "family") setChoices("family", [trace.name]);
    return false;
  });
})();
