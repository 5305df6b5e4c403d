/* Draws a pytest-parproc run's timeline from the JSON data embedded in the page. */
(function () {
  "use strict";

  // Up to this many tests in view, every test has a bar of its own; above it, narrow bars
  // of a lane merge, so that 100,000 tests make a few thousand elements, not 400,000.
  const ALL_BARS_LIMIT = 5000;
  const NARROW_BAR_PX = 2;
  // An aggregate closes once it is this wide: the lane keeps its shape at pixel resolution.
  const AGGREGATE_PX = 3;
  // A gap wider than this between two narrow bars stays visible: idle time is the point.
  const AGGREGATE_GAP_PX = 1;
  const LABEL_WIDTH_PX = 240;
  const MIN_TRACK_PX = 200;
  const TICK_SPACING_PX = 90;
  const RESIZE_DELAY_MS = 150;
  const SEARCH_DELAY_MS = 120;
  const WHEEL_ZOOM = 1.25;
  const BUTTON_ZOOM = 2;
  const FOCUS_BAR_PX = 40;

  // The legend's order; WORST_FIRST ranks an aggregate's outcome.
  const OUTCOMES = ["passed", "failed", "error", "skipped", "xfailed", "xpassed", "crashed", "timeout"];
  const WORST_FIRST = ["crashed", "timeout", "error", "failed", "xpassed", "xfailed", "skipped", "passed"];
  const FLAG_CLASS = { crash: "crashed", timeout: "timed-out" };
  const FLAG_MEANING = {
    crash: "crash: its worker died while running it",
    timeout: "timeout: it ran past --par-timeout and its worker was killed",
  };

  const state = {
    run: {}, lanes: [], tests: [], dropped: 0, start: 0, end: 1,
    view: { start: 0, end: 1 }, geometry: null,
    items: [], // what each element with a data-item attribute stands for
    query: "", matches: null, matchOrder: [], matchCursor: -1,
    pinned: null,
  };

  // ---- reading the data -------------------------------------------------------------------

  function asNumber(value, fallback) {
    const number = typeof value === "number" ? value : Number.NaN;
    return Number.isFinite(number) ? number : fallback;
  }
  function asText(value) { return value === null || value === undefined ? "" : String(value); }
  function asList(value) { return Array.isArray(value) ? value : []; }
  function asObject(value) {
    return value && typeof value === "object" && !Array.isArray(value) ? value : {};
  }
  function className(value) {
    const text = asText(value).toLowerCase();
    return /^[a-z][a-z0-9_-]*$/.test(text) ? text : "unknown";
  }
  function interval(start, end) {
    const begin = asNumber(start, 0);
    return { start: begin, end: Math.max(begin, asNumber(end, begin)) };
  }

  function readRun() {
    const source = document.getElementById("parproc-data");
    return asObject(JSON.parse(source ? source.textContent : "{}"));
  }

  function prepare(run) {
    state.run = run;
    state.lanes = asList(run.lanes).map((raw, index) => {
      const lane = asObject(raw);
      const id = asText(lane.id) || "lane-" + index;
      const startup = asList(lane.startup);
      return {
        index, id, label: asText(lane.label) || id, kind: className(lane.kind), note: asText(lane.note),
        startup: startup.length >= 2 ? interval(startup[0], startup[1]) : null,
        tests: [], events: [], markers: [],
      };
    });
    let end = Math.max(0, asNumber(run.wall_s, 0));
    const laneOf = (row) => (Number.isInteger(row[0]) ? state.lanes[row[0]] : undefined);
    for (const raw of asList(run.tests)) {
      const row = asList(raw);
      const lane = laneOf(row);
      if (!lane) { state.dropped += 1; continue; }
      const test = interval(row[3], row[4]);
      test.index = state.tests.length;
      test.lane = lane;
      test.nodeId = asText(row[1]);
      test.outcome = className(row[2]);
      test.flag = asText(row[6]);
      test.phases = asList(row[5]).map((rawPhase) => {
        const phase = asList(rawPhase);
        const span = interval(phase[1], phase[2]);
        span.when = className(phase[0]);
        span.outcome = asText(phase[3]);
        return span;
      });
      state.tests.push(test);
      lane.tests.push(test);
      end = Math.max(end, test.end);
    }
    for (const raw of asList(run.events)) {
      const row = asList(raw);
      const lane = laneOf(row);
      if (!lane) continue;
      const event = interval(row[2], row[3]);
      event.name = asText(row[1]);
      lane.events.push(event);
      end = Math.max(end, event.end);
    }
    for (const raw of asList(run.markers)) {
      const row = asList(raw);
      const lane = laneOf(row);
      if (!lane) continue;
      const marker = { kind: className(row[1]), time: asNumber(row[2], 0), text: asText(row[3]) };
      lane.markers.push(marker);
      end = Math.max(end, marker.time);
    }
    for (const lane of state.lanes) {
      lane.tests.sort((first, second) => first.start - second.start || first.end - second.end);
      if (lane.startup) end = Math.max(end, lane.startup.end);
    }
    state.end = end > 0 ? end : 1;
    state.view = { start: 0, end: state.end };
  }

  // ---- formatting -------------------------------------------------------------------------

  function formatSeconds(seconds) {
    if (!Number.isFinite(seconds)) return "?";
    const size = Math.abs(seconds);
    if (size === 0) return "0 s";
    if (size < 0.1) return (seconds * 1000).toFixed(1) + " ms";
    if (size < 1) return (seconds * 1000).toFixed(0) + " ms";
    if (size < 10) return seconds.toFixed(2) + " s";
    if (size < 100) return seconds.toFixed(1) + " s";
    return seconds.toFixed(0) + " s";
  }
  function formatCount(count, singular, plural) {
    return count.toLocaleString("en-US") + " " + (count === 1 ? singular : plural);
  }
  function element(tag, name, text) {
    const node = document.createElement(tag);
    if (name) node.className = name;
    if (text !== undefined) node.textContent = text;
    return node;
  }
  function laneLabel(id) {
    const lane = state.lanes.find((candidate) => candidate.id === id);
    return lane ? lane.label : asText(id);
  }

  // ---- header, summary, legend and toolbar --------------------------------------------------

  function renderHeader() {
    const run = state.run;
    document.getElementById("title").textContent = asText(run.title) || "pytest-parproc run";
    const info = document.getElementById("run-info");
    const started = asNumber(run.started, Number.NaN);
    if (Number.isFinite(started)) {
      const date = new Date(started * 1000);
      const time = element("time", "", date.toLocaleString());
      time.id = "run-date";
      time.dateTime = date.toISOString();
      info.append("started ", time);
    } else {
      info.append("start time unknown");
    }
    const parts = [];
    if (run.backend) parts.push("backend " + asText(run.backend));
    const workers = asNumber(run.n_jobs, 0);
    if (workers > 0) parts.push(formatCount(workers, "worker", "workers"));
    parts.push(formatCount(state.tests.length, "test", "tests"));
    info.append(" · " + parts.join(" · "));
  }

  function figure(id, value, label) {
    const box = element("div", "figure");
    box.id = id;
    box.append(element("span", "figure-value", value), element("span", "figure-label", label));
    return box;
  }

  function speedupFigure(run, summary) {
    const speedup = asNumber(summary.speedup, asNumber(run.speedup, Number.NaN));
    if (Number.isFinite(speedup)) {
      return figure("summary-speedup", speedup.toFixed(2) + "×", "speed-up (test time / wall time)");
    }
    let reason = asText(run.no_speedup) || asText(summary.no_speedup);
    if (!reason && /thread/i.test(asText(run.backend))) reason = "threads share one interpreter";
    return figure("summary-speedup", "no speed-up figure", reason || "not measured for this run");
  }

  function table(id, headings, rows, empty) {
    const node = element("table");
    node.id = id;
    const head = node.createTHead().insertRow();
    for (const heading of headings) head.appendChild(element("th", "", heading));
    const body = node.createTBody();
    if (rows.length === 0) {
      const cell = body.insertRow().insertCell();
      cell.colSpan = headings.length;
      cell.className = "none";
      cell.textContent = empty;
    }
    for (const row of rows) {
      const line = body.insertRow();
      for (const value of row) {
        const cell = line.insertCell();
        if (value instanceof Node) cell.appendChild(value); else cell.textContent = value;
        if (typeof value === "string" && /^[\d.,]+( ms| s|%|×)?$/.test(value)) cell.className = "number";
      }
    }
    return node;
  }

  function shareBar(share) {
    const bar = element("span", "share-bar");
    const fill = element("span", "share-fill");
    fill.style.width = Math.max(0, Math.min(100, share * 100)).toFixed(1) + "%";
    bar.appendChild(fill);
    return bar;
  }

  function laneRows(summary) {
    const rows = new Map();
    const row = (id) => {
      if (!rows.has(id)) rows.set(id, { busy: null, share: null, idle: null });
      return rows.get(id);
    };
    for (const raw of asList(summary.busy)) {
      const entry = asList(raw);
      Object.assign(row(asText(entry[0])), { busy: asNumber(entry[1], 0), share: asNumber(entry[2], 0) });
    }
    for (const raw of asList(summary.idle_at_end)) {
      const entry = asList(raw);
      row(asText(entry[0])).idle = asNumber(entry[1], 0);
    }
    const order = state.lanes.map((lane) => lane.id).filter((id) => rows.has(id));
    for (const id of rows.keys()) if (!order.includes(id)) order.push(id);
    return order.map((id) => {
      const entry = rows.get(id);
      const share = entry.share === null ? "" : (entry.share * 100).toFixed(0) + "%";
      const shareCell = element("span", "share");
      if (entry.share !== null) shareCell.append(shareBar(entry.share), " " + share);
      return [laneLabel(id), entry.busy === null ? "" : formatSeconds(entry.busy), shareCell,
        entry.idle === null ? "" : formatSeconds(entry.idle)];
    });
  }

  function renderSummary() {
    const run = state.run;
    const summary = asObject(run.summary);
    const section = document.getElementById("summary");
    const figures = element("div", "figures");
    const wall = asNumber(summary.wall_s, asNumber(run.wall_s, Number.NaN));
    figures.appendChild(figure("summary-wall", formatSeconds(wall), "wall time"));
    const testTime = asNumber(run.test_time_s, Number.NaN);
    figures.appendChild(figure("summary-test-time", formatSeconds(testTime), "summed test time"));
    figures.appendChild(speedupFigure(run, summary));
    const idleRows = asList(summary.idle_at_end);
    const idleSum = idleRows.reduce((sum, row) => sum + asNumber(asList(row)[1], 0), 0);
    const idle = asNumber(summary.idle_at_end_s, idleSum);
    const idleLabel = "idle at the end: what a better plan would save";
    figures.appendChild(figure("summary-idle", formatSeconds(idle), idleLabel));
    const tables = element("div", "summary-tables");
    const lanes = element("div", "summary-table");
    lanes.append(element("h2", "", "Lanes"),
      table("lane-table", ["lane", "busy", "share of wall time", "idle at end"], laneRows(summary),
        "no lane was busy"));
    const longest = element("div", "summary-table");
    const longestRows = asList(summary.longest).slice(0, 10).map((raw, position) => {
      const entry = asList(raw);
      const name = element("span", "node-id", asText(entry[0]));
      const seconds = formatSeconds(asNumber(entry[2], Number.NaN));
      return [String(position + 1), name, laneLabel(asText(entry[1])), seconds];
    });
    longest.append(element("h2", "", "Longest tests"),
      table("longest-table", ["#", "test", "lane", "setup to teardown"], longestRows, "no test ran"));
    tables.append(lanes, longest);
    section.append(figures, tables);
  }

  function renderLegend() {
    const legend = document.getElementById("legend");
    const entry = (swatchClass, label) => {
      const item = element("span", "legend-item");
      item.append(element("span", "swatch " + swatchClass), label);
      legend.appendChild(item);
    };
    for (const outcome of OUTCOMES) entry("outcome-" + outcome, outcome);
    entry("outcome-passed swatch-aggregate", "merged tests (zoom in)");
    entry("swatch-phases", "setup · call · teardown");
    entry("swatch-startup", "worker start-up");
    entry("swatch-event", "main process / shared fixtures");
    entry("swatch-marker", "crash or time-limit marker");
  }

  function button(id, label, title, action) {
    const node = element("button", "", label);
    node.id = id;
    node.type = "button";
    node.title = title;
    node.addEventListener("click", action);
    return node;
  }

  function renderToolbar() {
    const toolbar = document.getElementById("toolbar");
    const search = element("input");
    search.id = "search";
    search.type = "search";
    search.placeholder = "find tests by node id (Enter: next match)";
    search.autocomplete = "off";
    const count = element("span", "", "");
    count.id = "search-count";
    const range = element("span", "", "");
    range.id = "view-range";
    const center = () => (state.view.start + state.view.end) / 2;
    toolbar.append(search, count,
      button("zoom-in", "+", "zoom in (or ctrl + wheel on the timeline)", () => zoomAt(center(), BUTTON_ZOOM)),
      button("zoom-out", "−", "zoom out", () => zoomAt(center(), 1 / BUTTON_ZOOM)),
      button("zoom-reset", "whole run", "show the whole run", () => setView(0, state.end)),
      range);
    let timer = 0;
    search.addEventListener("input", () => {
      clearTimeout(timer);
      timer = setTimeout(() => runSearch(search.value), SEARCH_DELAY_MS);
    });
    search.addEventListener("keydown", (event) => {
      if (event.key !== "Enter") return;
      clearTimeout(timer);
      if (search.value !== state.query) runSearch(search.value);
      jumpToNextMatch();
    });
  }

  // ---- the timeline -------------------------------------------------------------------------

  function niceStep(raw) {
    const power = Math.pow(10, Math.floor(Math.log10(raw)));
    for (const multiple of [1, 2, 5, 10]) if (multiple * power >= raw) return multiple * power;
    return 10 * power;
  }

  function renderAxis(geometry, lanes) {
    const axis = element("div", "axis");
    axis.appendChild(element("div", "axis-label", "seconds from the start"));
    const track = element("div", "axis-track");
    const grid = element("div", "grid");
    const step = niceStep((state.view.end - state.view.start) * TICK_SPACING_PX / geometry.width);
    const decimals = Math.max(0, -Math.floor(Math.log10(step)));
    const first = Math.ceil(state.view.start / step);
    for (let count = 0; count < 500 && (first + count) * step <= state.view.end + step / 1e6; count++) {
      const tick = (first + count) * step;
      const left = geometry.x(tick).toFixed(1) + "px";
      const mark = element("div", "tick");
      mark.style.left = left;
      mark.appendChild(element("span", "tick-label", tick.toFixed(decimals) + " s"));
      track.appendChild(mark);
      const line = element("div", "gridline");
      line.style.left = left;
      grid.appendChild(line);
    }
    axis.appendChild(track);
    lanes.appendChild(grid);
    return axis;
  }

  function remember(node, item) {
    node.dataset.item = String(state.items.length);
    item.node = node;
    state.items.push(item);
    return node;
  }

  // Places a node from start to end (clipped to the view); returns the clipped interval. Edges
  // are whole pixels: Chromium snaps a box's left and width apart, which opens one-pixel seams
  // between fractional neighbours that touch.
  function place(node, start, end, minimumPx) {
    const geometry = state.geometry;
    const shownStart = Math.max(start, state.view.start);
    const shownEnd = Math.min(end, state.view.end);
    const left = Math.round(geometry.x(shownStart));
    const width = Math.max(minimumPx, Math.round(geometry.x(shownEnd)) - left);
    node.style.left = left + "px";
    node.style.width = width + "px";
    return { start: shownStart, end: shownEnd, width };
  }

  function inView(start, end) { return end >= state.view.start && start <= state.view.end; }

  function testBar(test) {
    const bar = element("div", "bar outcome-" + test.outcome);
    if (FLAG_CLASS[test.flag]) bar.classList.add(FLAG_CLASS[test.flag]);
    bar.dataset.nodeid = test.nodeId;
    const shown = place(bar, test.start, test.end, 1);
    if (shown.width >= 4) bar.classList.add("wide");
    const duration = shown.end - shown.start;
    const percent = (time) => (duration > 0 ? ((time - shown.start) / duration) * 100 : 0);
    for (const phase of test.phases) {
      const piece = element("span", "phase phase-" + phase.when);
      const start = Math.min(Math.max(phase.start, shown.start), shown.end);
      const end = Math.min(Math.max(phase.end, shown.start), shown.end);
      piece.style.left = percent(start).toFixed(2) + "%";
      piece.style.width = (percent(end) - percent(start)).toFixed(2) + "%";
      if (phase.outcome) piece.dataset.outcome = phase.outcome;
      bar.appendChild(piece);
    }
    return remember(bar, { type: "test", test });
  }

  // A loop, not Math.max(...ends): an aggregate of zero-length tests can hold all of them.
  function latestEnd(members) {
    let end = members[0].end;
    for (const test of members) if (test.end > end) end = test.end;
    return end;
  }

  function worstOutcome(members) {
    let best = WORST_FIRST.length;
    for (const test of members) {
      const rank = WORST_FIRST.indexOf(test.outcome);
      if (rank >= 0 && rank < best) best = rank;
    }
    return best < WORST_FIRST.length ? WORST_FIRST[best] : members[0].outcome;
  }

  function aggregateBar(group) {
    const bar = element("div", "bar aggregate outcome-" + worstOutcome(group.members));
    for (const test of group.members) if (FLAG_CLASS[test.flag]) bar.classList.add(FLAG_CLASS[test.flag]);
    bar.dataset.count = String(group.members.length);
    const first = group.members[0];
    place(bar, first.start, latestEnd(group.members), 1);
    return remember(bar, { type: "aggregate", members: group.members, lane: first.lane });
  }

  function renderTests(lane, track, merge) {
    const geometry = state.geometry;
    let group = null;
    const flush = () => {
      if (group) track.appendChild(group.members.length === 1 ? testBar(group.members[0]) : aggregateBar(group));
      group = null;
    };
    for (const test of lane.tests) {
      if (!inView(test.start, test.end)) continue;
      const left = geometry.x(Math.max(test.start, state.view.start));
      const right = geometry.x(Math.min(test.end, state.view.end));
      if (!merge || right - left >= NARROW_BAR_PX) {
        flush();
        track.appendChild(testBar(test));
        continue;
      }
      const full = group && group.right - group.left >= AGGREGATE_PX;
      if (full || (group && left > group.right + AGGREGATE_GAP_PX)) flush();
      if (!group) group = { members: [], left, right };
      group.members.push(test);
      group.right = Math.max(group.right, right);
    }
    flush();
  }

  function renderLane(lane, merge) {
    const row = element("div", "lane lane-" + lane.kind);
    row.dataset.lane = lane.id;
    const label = element("div", "lane-label");
    label.title = lane.note ? lane.label + ": " + lane.note : lane.label;
    label.appendChild(element("span", "lane-name", lane.label));
    if (lane.note) label.appendChild(element("span", "lane-note", lane.note));
    const track = element("div", "track");
    if (lane.startup && inView(lane.startup.start, lane.startup.end)) {
      const startup = element("div", "startup");
      place(startup, lane.startup.start, lane.startup.end, 2);
      track.appendChild(remember(startup, { type: "startup", lane, span: lane.startup }));
    }
    for (const event of lane.events) {
      if (!inView(event.start, event.end)) continue;
      const node = element("div", "event");
      node.dataset.name = event.name;
      const shown = place(node, event.start, event.end, 2);
      if (shown.width >= 60) node.appendChild(element("span", "event-name", event.name));
      track.appendChild(remember(node, { type: "event", lane, event }));
    }
    renderTests(lane, track, merge);
    for (const marker of lane.markers) {
      if (!inView(marker.time, marker.time)) continue;
      const node = element("div", "marker marker-" + marker.kind);
      node.title = marker.text;
      node.style.left = state.geometry.x(marker.time).toFixed(2) + "px";
      track.appendChild(remember(node, { type: "marker", lane, marker }));
    }
    row.append(label, track);
    return row;
  }

  function render() {
    const timeline = document.getElementById("timeline");
    timeline.style.setProperty("--label-width", LABEL_WIDTH_PX + "px");
    const width = Math.max(MIN_TRACK_PX, timeline.clientWidth - LABEL_WIDTH_PX);
    const scale = width / (state.view.end - state.view.start);
    state.geometry = { width, scale, x: (time) => (time - state.view.start) * scale };
    state.items = [];
    unpin();
    const shown = state.tests.reduce((count, test) => count + (inView(test.start, test.end) ? 1 : 0), 0);
    const lanes = element("div", "lanes");
    const fragment = document.createDocumentFragment();
    fragment.appendChild(renderAxis(state.geometry, lanes));
    for (const lane of state.lanes) lanes.appendChild(renderLane(lane, shown > ALL_BARS_LIMIT));
    fragment.appendChild(lanes);
    timeline.textContent = "";
    timeline.appendChild(fragment);
    const view = state.view;
    document.getElementById("view-range").textContent = "showing " + formatSeconds(view.start) +
      " to " + formatSeconds(view.end) + " of " + formatSeconds(state.end);
    applyMatches();
  }

  function renderNotes() {
    const section = document.getElementById("timeline-section");
    const notes = [];
    if (state.tests.length === 0) notes.push(["empty-note", "No test ran in this run."]);
    if (state.lanes.length === 0) {
      notes.push(["no-lanes-note", "The data names no lane: there is no timeline to draw."]);
    }
    if (state.dropped > 0) {
      const tests = formatCount(state.dropped, "test names", "tests name");
      notes.push(["dropped-note", tests + " a lane that is not in the data and cannot be drawn."]);
    }
    for (const [id, text] of notes) {
      const note = element("p", "note", text);
      note.id = id;
      section.insertBefore(note, document.getElementById("timeline"));
    }
  }

  // ---- zoom ---------------------------------------------------------------------------------

  let renderTimer = 0;
  function scheduleRender(delay) {
    clearTimeout(renderTimer);
    renderTimer = setTimeout(render, delay);
  }

  function setView(start, end) {
    const smallest = Math.max(state.end / 1e6, 1e-6);
    const span = Math.min(state.end, Math.max(smallest, end - start));
    const begin = Math.min(Math.max(0, start), state.end - span);
    state.view = { start: begin, end: begin + span };
    render();
  }

  function zoomAt(time, factor) {
    const span = (state.view.end - state.view.start) / factor;
    setView(time - (time - state.view.start) / factor, time - (time - state.view.start) / factor + span);
  }

  function onWheel(event) {
    const timeline = document.getElementById("timeline");
    const pointer = event.clientX - timeline.getBoundingClientRect().left - LABEL_WIDTH_PX;
    if (event.ctrlKey || event.metaKey) {
      event.preventDefault();
      const time = state.view.start + Math.max(0, pointer) / state.geometry.scale;
      zoomAt(time, event.deltaY < 0 ? WHEEL_ZOOM : 1 / WHEEL_ZOOM);
      return;
    }
    const sideways = event.shiftKey ? event.deltaY : event.deltaX;
    const zoomed = state.view.end - state.view.start < state.end;
    if (zoomed && sideways !== 0 && (event.shiftKey || Math.abs(event.deltaX) > Math.abs(event.deltaY))) {
      event.preventDefault();
      const shift = sideways / state.geometry.scale;
      setView(state.view.start + shift, state.view.end + shift);
    }
  }

  // ---- search -------------------------------------------------------------------------------

  function runSearch(query) {
    state.query = query;
    state.matchCursor = -1;
    const needle = query.trim().toLowerCase();
    state.matches = needle ? new Set() : null;
    state.matchOrder = [];
    if (needle) {
      for (const test of state.tests) {
        if (test.lowerNodeId === undefined) test.lowerNodeId = test.nodeId.toLowerCase();
        if (test.lowerNodeId.includes(needle)) { state.matches.add(test); state.matchOrder.push(test); }
      }
      state.matchOrder.sort((first, second) => first.start - second.start);
    }
    applyMatches();
  }

  function applyMatches() {
    const timeline = document.getElementById("timeline");
    const matches = state.matches;
    timeline.classList.toggle("searching", matches !== null);
    for (const item of state.items) {
      if (item.type === "test") {
        item.node.classList.toggle("match", matches !== null && matches.has(item.test));
      } else if (item.type === "aggregate") {
        const matched = matches !== null && item.members.some((test) => matches.has(test));
        item.node.classList.toggle("match", matched);
      }
    }
    const count = document.getElementById("search-count");
    if (!count) return;
    if (matches === null) count.textContent = "";
    else if (matches.size === 0) count.textContent = "no test matches";
    else count.textContent = formatCount(matches.size, "test matches", "tests match");
  }

  function nodeFor(test) {
    return state.items.find((item) => (item.type === "test" && item.test === test) ||
      (item.type === "aggregate" && item.members.includes(test)));
  }

  function jumpToNextMatch() {
    if (state.matchOrder.length === 0) return;
    state.matchCursor = (state.matchCursor + 1) % state.matchOrder.length;
    const test = state.matchOrder[state.matchCursor];
    let item = nodeFor(test);
    if (!item || item.type === "aggregate") {
      // Zoom until the test is a bar of its own, centred.
      const span = Math.max((test.end - test.start) * state.geometry.width / FOCUS_BAR_PX, state.end / 1e6);
      const middle = (test.start + test.end) / 2;
      setView(middle - span / 2, middle + span / 2);
      item = nodeFor(test);
    }
    if (!item) return;
    item.node.scrollIntoView({ block: "nearest", inline: "nearest" });
    pin(item.node);
  }

  // ---- tooltip ------------------------------------------------------------------------------

  function outcomeCounts(members) {
    const counts = new Map();
    for (const test of members) counts.set(test.outcome, (counts.get(test.outcome) || 0) + 1);
    const others = [...counts.keys()].filter((outcome) => !WORST_FIRST.includes(outcome));
    return WORST_FIRST.concat(others)
      .filter((outcome) => counts.has(outcome))
      .map((outcome) => counts.get(outcome) + " " + outcome)
      .join(", ");
  }

  function timeRange(start, end) {
    return formatSeconds(start) + " to " + formatSeconds(end) + " (" + formatSeconds(end - start) + ")";
  }

  function describe(item) {
    if (item.type === "test") {
      const test = item.test;
      const rows = [["outcome", test.outcome], ["lane", test.lane.label], ["time", timeRange(test.start, test.end)]];
      for (const phase of test.phases) {
        const outcome = phase.outcome ? " (" + phase.outcome + ")" : "";
        rows.push([phase.when, formatSeconds(phase.end - phase.start) + outcome]);
      }
      if (test.flag) rows.push(["flag", FLAG_MEANING[test.flag] || test.flag]);
      return { title: test.nodeId, rows };
    }
    if (item.type === "aggregate") {
      const members = item.members;
      const end = latestEnd(members);
      const rows = [
        ["lane", item.lane.label],
        ["time", timeRange(members[0].start, end)],
        ["outcomes", outcomeCounts(members)],
        ["first", members[0].nodeId],
        ["last", members[members.length - 1].nodeId],
      ];
      const flagged = members.filter((test) => test.flag);
      for (const test of flagged.slice(0, 5)) rows.push([test.flag, test.nodeId]);
      if (state.matches) {
        rows.push(["matches", String(members.filter((test) => state.matches.has(test)).length)]);
      }
      return { title: formatCount(members.length, "test", "tests") + " merged: zoom in to see each", rows };
    }
    const lane = ["lane", item.lane.label];
    if (item.type === "event") {
      return { title: item.event.name, rows: [lane, ["time", timeRange(item.event.start, item.event.end)]] };
    }
    if (item.type === "startup") {
      return { title: "worker start-up", rows: [lane, ["time", timeRange(item.span.start, item.span.end)]] };
    }
    const marker = item.marker;
    return { title: marker.kind, rows: [lane, ["time", formatSeconds(marker.time)], ["what", marker.text]] };
  }

  function showTooltip(node, x, y) {
    const item = state.items[Number(node.dataset.item)];
    if (!item) return;
    const tooltip = document.getElementById("tooltip");
    const description = describe(item);
    tooltip.textContent = "";
    tooltip.appendChild(element("div", "tooltip-title", description.title));
    const rows = element("table", "tooltip-rows");
    for (const [label, value] of description.rows) {
      const row = rows.insertRow();
      row.appendChild(element("th", "", label));
      row.insertCell().textContent = value;
    }
    tooltip.appendChild(rows);
    if (state.pinned) {
      tooltip.appendChild(element("div", "tooltip-hint", "pinned: click elsewhere or press Esc to close"));
    }
    tooltip.hidden = false;
    const width = tooltip.offsetWidth;
    const height = tooltip.offsetHeight;
    const left = Math.max(4, Math.min(x + 14, window.innerWidth - width - 8));
    const top = y + 14 + height > window.innerHeight - 4 ? Math.max(4, y - height - 14) : y + 14;
    tooltip.style.left = left + "px";
    tooltip.style.top = top + "px";
  }

  function hideTooltip() {
    const tooltip = document.getElementById("tooltip");
    if (tooltip) tooltip.hidden = true;
  }

  function pin(node, x, y) {
    unpin();
    state.pinned = node;
    node.classList.add("selected");
    document.getElementById("tooltip").classList.add("pinned");
    const box = node.getBoundingClientRect();
    showTooltip(node, x === undefined ? box.left : x, y === undefined ? box.bottom : y);
  }

  function unpin() {
    if (state.pinned) state.pinned.classList.remove("selected");
    state.pinned = null;
    const tooltip = document.getElementById("tooltip");
    if (tooltip) tooltip.classList.remove("pinned");
    hideTooltip();
  }

  function itemNode(target) { return target instanceof Element ? target.closest("[data-item]") : null; }

  function listen() {
    const timeline = document.getElementById("timeline");
    timeline.addEventListener("mouseover", (event) => {
      if (state.pinned) return;
      const node = itemNode(event.target);
      if (node) showTooltip(node, event.clientX, event.clientY); else hideTooltip();
    });
    timeline.addEventListener("mouseleave", () => { if (!state.pinned) hideTooltip(); });
    timeline.addEventListener("click", (event) => {
      const node = itemNode(event.target);
      if (node && node !== state.pinned) pin(node, event.clientX, event.clientY); else unpin();
    });
    document.addEventListener("click", (event) => {
      const tooltip = document.getElementById("tooltip");
      if (state.pinned && !tooltip.contains(event.target) && !timeline.contains(event.target)) unpin();
    });
    document.addEventListener("keydown", (event) => { if (event.key === "Escape") unpin(); });
    timeline.addEventListener("wheel", onWheel, { passive: false });
    window.addEventListener("resize", () => scheduleRender(RESIZE_DELAY_MS));
  }

  // An address ending in #search=TEXT opens the page with that search done; #search=TEXT&jump
  // also shows the first match, as Enter does. Split by hand: URLSearchParams reads "+" as a
  // space, and node ids hold "+".
  function decoded(text) {
    try { return decodeURIComponent(text); } catch (error) { return text; }
  }

  function searchFromAddress() {
    const parts = new Map(location.hash.slice(1).split("&").filter(Boolean).map((part) => {
      const equals = part.indexOf("=");
      return equals < 0 ? [part, ""] : [part.slice(0, equals), decoded(part.slice(equals + 1))];
    }));
    if (!parts.has("search")) return;
    document.getElementById("search").value = parts.get("search");
    runSearch(parts.get("search"));
    if (parts.has("jump")) jumpToNextMatch();
  }

  function showError(error) {
    const box = document.getElementById("page-error");
    box.hidden = false;
    const message = error && error.message ? error.message : error;
    box.textContent = "This page failed to draw the run: " + asText(message);
  }

  function main() {
    try {
      prepare(readRun());
      renderHeader();
      renderSummary();
      renderToolbar();
      renderLegend();
      renderNotes();
      render();
      listen();
      searchFromAddress();
      document.body.dataset.state = "drawn";
    } catch (error) {
      showError(error);
      throw error;
    }
  }

  window.addEventListener("error", (event) => showError(event.error || event.message));
  main();
})();
