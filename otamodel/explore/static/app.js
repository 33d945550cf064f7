// otamodel explorer page: holds the path, asks the JSON API (docs/explorer.md) for views.
"use strict";

const ui = {
  history: [],      // the whole forward path (action texts)
  cursor: 0,        // steps of history applied
  decisive: null,   // the marked step of a loaded finding (1-based)
  traceSteps: [],   // step views of the loaded trace / path
  info: null,
  svgs: {},
};

const $ = (id) => document.getElementById(id);
const el = (tag, attrs = {}, ...children) => {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v; else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const child of children) node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  return node;
};

async function api(method, url, body) {
  const options = { method, headers: {} };
  if (body !== undefined) { options.body = JSON.stringify(body); options.headers["Content-Type"] = "application/json"; }
  const response = await fetch(url, options);
  const data = response.headers.get("Content-Type")?.includes("json") ? await response.json() : await response.text();
  if (!response.ok) throw new Error(data.error || String(data));
  return data;
}

function showError(message) {
  const box = $("error");
  box.hidden = !message;
  box.textContent = message || "";
}

function currentPath() { return ui.history.slice(0, ui.cursor); }

async function refresh() {
  try {
    const state = await api("POST", "/api/state", { path: currentPath() });
    showError("");
    render(state);
  } catch (error) { showError(error.message); }
}

function render(state) {
  $("stepinfo").textContent = `step ${state.step} of ${ui.history.length}`;
  $("back").disabled = ui.cursor === 0;
  $("forward").disabled = ui.cursor >= ui.history.length;
  $("script").value = state.script;
  renderActions(state.enabled);
  renderLastStep(state.last_step);
  renderMachines(state.world.machines);
  renderBootctl(state.world.bootctl);
  renderDb(state.world.db);
  renderFiles(state.world.files);
  renderList("pending", state.world.pending, (op) => op);
  renderList("callbacks", state.callbacks, (cb) => `step ${cb.step}: ${cb.status}`);
  renderBudgets(state.world.budgets);
  renderProperties(state.properties, state.space);
  renderSpace(state.space);
  renderTraceSteps();
}

function renderActions(enabled) {
  const box = $("actions");
  box.replaceChildren();
  for (const item of enabled) {
    const cls = item.fault ? "fault" : (item.kind === "ctrl" || item.kind === "factory_sign" ? "user" : "");
    box.append(el("button", { class: cls, "data-action": item.action, onclick: () => takeAction(item.action) }, item.action));
  }
  if (!enabled.length) box.append(el("em", {}, "nothing is enabled: the device is stuck here"));
}

function takeAction(action) {
  ui.history = currentPath().concat([action]);
  ui.cursor = ui.history.length;
  ui.decisive = null;
  ui.traceSteps = [];
  refresh();
}

function renderLastStep(step) {
  const box = $("laststep");
  box.replaceChildren();
  if (!step) { box.append("(initial world)"); return; }
  box.append(el("div", {}, el("b", {}, `${step.index}. ${step.action}`), step.transition ? ` — ${step.transition}` : ""));
  for (const move of step.machine_moves) {
    const from = typeof move.from === "object" && move.from ? move.from.state : move.from;
    const to = typeof move.to === "object" && move.to ? move.to.state : move.to;
    box.append(el("div", { class: "move" }, `${move.machine}: ${from ?? "—"} → ${to ?? "—"}`));
  }
  for (const op of step.ops) box.append(el("div", { class: "changes" }, `op: ${op}`));
  for (const change of step.changes) box.append(el("div", { class: "changes" }, change));
  for (const note of step.notes) box.append(el("div", {}, `note: ${note}`));
}

async function loadSvg(machine) {
  if (!(machine in ui.svgs)) {
    ui.svgs[machine] = null;
    if (ui.info && ui.info.diagrams) {
      try { ui.svgs[machine] = await api("GET", `/api/diagram/${machine}.svg`); } catch (error) { ui.svgs[machine] = null; }
    }
  }
  return ui.svgs[machine];
}

async function renderMachines(machines) {
  $("phase").textContent = machines.phase;
  const box = $("machines");
  for (const name of ["service", "core", "bootloader"]) {
    const current = machines[name].state;
    const sub = machines[name].sub;
    let panel = document.querySelector(`.machine[data-machine="${name}"]`);
    if (!panel) {
      panel = el("details", { class: "machine", "data-machine": name }, el("summary", {}, el("h3", {})), el("div", { class: "drawing" }));
      box.append(panel);
    }
    panel.querySelector("h3").textContent = `${name}: ${current ?? "(not running)"}${sub ? " / " + sub : ""}`;
    panel.dataset.current = current ?? "";
    const drawing = panel.querySelector(".drawing");
    const svg = await loadSvg(name);
    if (svg) {
      if (!drawing.querySelector("svg")) drawing.innerHTML = svg;
      const leaf = sub ? `${current}__${sub}` : current;
      for (const node of drawing.querySelectorAll("g.node")) {
        const title = node.querySelector("title")?.textContent;
        node.classList.toggle("current", title === leaf || (title === current && !sub));
      }
      for (const cluster of drawing.querySelectorAll("g.cluster")) {
        const title = cluster.querySelector("title")?.textContent;
        cluster.classList.toggle("current", title === `cluster_${current}`);
      }
      panel.open = current !== null;
      drawing.querySelector("g.node.current")?.scrollIntoView({ block: "nearest", inline: "nearest" });
    } else {
      panel.open = true;
      drawing.replaceChildren(el("div", { class: "statelist" }, ...(machineStates(name)).map((s) => el("span", { class: s === current ? "current" : "" }, s))));
    }
  }
}

function machineStates(name) { return (ui.info && ui.info.states && ui.info.states[name]) || []; }

function kvRows(table, rows) {
  table.replaceChildren(...rows.map(([k, v]) => el("tr", {}, el("th", {}, k), el("td", { class: "mono" }, v))));
}

function renderBootctl(b) {
  kvRows($("bootctl"), [
    ["status", `0x${b.status.toString(16).toUpperCase().padStart(2, "0")} ${b.status_name}`],
    ["type", `${b.type} ${b.type_name}`], ["version", b.version], ["boot_addr", b.boot_addr],
    ["size", b.sz], ["digest", b.digest], ["blank", b.blank ? "yes" : "no"],
  ]);
}

function renderDb(db) {
  const box = $("db");
  box.replaceChildren();
  if (!db.present) { box.append(el("div", { class: "box" }, "no image_database.csv")); return; }
  box.append(el("div", { class: "box mono" }, `${db.size} B: ${JSON.stringify(db.bytes)}`));
  if (db.problem) box.append(el("div", { class: "fails" }, db.problem));
  const table = el("table", {}, el("tr", {}, ...["row", "name", "status", "version (written / read)", "type", "digest"].map((h) => el("th", {}, h))));
  for (const r of db.rows) {
    table.append(el("tr", {}, el("td", {}, r.row), el("td", {}, r.name ?? "-"),
      el("td", {}, `${r.status ?? "-"}${r.status_name ? " " + r.status_name : ""}`),
      el("td", {}, `${r.version_written ?? "-"} / ${r.version_read ?? "-"}`), el("td", {}, r.type ?? "-"),
      el("td", { class: "mono" }, (r.digest ?? "-").slice(0, 16))));
  }
  box.append(table);
}

function renderFiles(files) {
  const table = $("files");
  table.replaceChildren(el("tr", {}, el("th", {}, "file"), el("th", {}, "size"), el("th", {}, "sha256"), el("th", {}, "is")));
  for (const f of files) table.append(el("tr", {}, el("td", {}, f.name), el("td", {}, f.size), el("td", { class: "mono" }, f.sha256.slice(0, 16)), el("td", {}, f.identifies ?? "")));
}

function renderList(id, items, text) {
  $(id).replaceChildren(...items.map((item) => el("li", {}, text(item))));
}

function renderBudgets(budgets) {
  const table = $("budgets");
  table.replaceChildren(el("tr", {}, el("th", {}, "input"), el("th", {}, "left"), el("th", {}, "given")));
  for (const b of budgets) table.append(el("tr", {}, el("td", {}, b.name), el("td", {}, b.left), el("td", {}, b.given)));
}

function renderProperties(props, space) {
  const table = $("properties");
  table.replaceChildren();
  for (const p of props) {
    let verdict = p.holds ? "holds" : "fails";
    if (p.kind === "sometimes") verdict = p.holds ? "witnessed here" : "not here";
    if (p.kind === "eventually") {
      const reach = space && space.goal_reachable ? space.goal_reachable[p.name] : undefined;
      verdict = p.holds ? "goal holds" : reach === undefined ? "goal not here" : reach ? "goal reachable" : "goal unreachable";
    }
    const bad = (p.kind === "always" && !p.holds) || verdict === "goal unreachable";
    if (p.kind === "sometimes" && !p.holds) { table.append(el("tr", { "data-property": p.name }, el("td", {}, `${p.kind} ${p.name}`), el("td", {}, verdict))); continue; }
    table.append(el("tr", { "data-property": p.name }, el("td", {}, `${p.kind} ${p.name}`), el("td", { class: bad ? "fails" : "holds" }, verdict)));
  }
}

function renderSpace(space) {
  const box = $("space");
  if (!space.explored) { box.textContent = `not explored yet; this state is ${space.steps_on_path} steps into the path`; return; }
  const where = space.known ? `this state: distance ${space.distance} from the start` : "this state is outside the explored space";
  box.textContent = `${space.states} states, ${space.transitions} transitions, depth ${space.max_depth}${space.complete ? "" : " (incomplete)"}; ${where}`;
}

async function renderTraceSteps() {
  const list = $("tracesteps");
  if (ui.traceSteps.length !== ui.history.length) {
    try { ui.traceSteps = (await api("POST", "/api/steps", { path: ui.history })).steps; } catch (error) { ui.traceSteps = []; }
  }
  list.replaceChildren();
  ui.traceSteps.forEach((s, i) => {
    const classes = [i + 1 === ui.cursor ? "current" : "", i + 1 === ui.decisive ? "decisive" : ""].join(" ").trim();
    const label = `${s.action}${s.transition ? " — " + s.transition : ""}${i + 1 === ui.decisive ? "  ◀ decisive step" : ""}`;
    list.append(el("li", { class: classes, onclick: () => { ui.cursor = i + 1; refresh(); } }, label));
  });
  list.querySelector("li.current")?.scrollIntoView({ block: "nearest" });
}

function openPath(path, decisive) {
  ui.history = path;
  ui.cursor = 0;
  ui.decisive = decisive;
  ui.traceSteps = [];
  refresh();
}

async function pollFindings() {
  const data = await api("GET", "/api/findings");
  const p = data.progress || {};
  $("checkstatus").textContent = data.status === "running" ? `running: ${p.states ?? 0} states, depth ${p.depth ?? 0}` :
    data.status === "done" ? `${data.summary.states} states, ${data.summary.seconds} s${data.summary.complete ? "" : " (incomplete)"}` :
    data.status === "failed" ? `failed: ${data.error}` : "";
  const table = $("findings");
  table.replaceChildren(el("tr", {}, ...["finding", "property", "story", "trace", ""].map((h) => el("th", {}, h))));
  for (const f of data.findings) {
    const open = el("button", { "data-finding": f.id, onclick: () => openPath(f.path, f.decisive_step) }, "open trace");
    table.append(el("tr", { class: "failing", "data-property": f.property }, el("td", { class: "mono" }, f.id),
      el("td", {}, `${f.kind} ${f.property}`), el("td", {}, f.story),
      el("td", {}, `${f.path.length} steps, ${f.faults.length} faults, decisive step ${f.decisive_step}`), el("td", {}, open)));
  }
  if (data.status === "done") {
    const held = data.summary.verdicts.filter((v) => !v.failing).map((v) => v.property);
    table.append(el("tr", {}, el("td", { colspan: "5" }, `${data.findings.length} findings; holding: ${held.join(", ") || "none"}`)));
  }
  if (data.status === "running") setTimeout(pollFindings, 700);
}

async function pollSpace() {
  const data = await api("GET", "/api/space");
  const p = data.progress || {};
  $("spacestatus").textContent = data.status === "running" ? `running: ${p.states ?? 0} states` : data.status === "failed" ? `failed: ${data.error}` : data.status === "done" ? "done" : "";
  if (data.status === "running") setTimeout(pollSpace, 700); else if (data.status === "done") refresh();
}

function download() {
  api("POST", "/api/trace", { path: currentPath() }).then((doc) => {
    const blob = new Blob([JSON.stringify(doc, null, 1) + "\n"], { type: "application/json" });
    const link = el("a", { href: URL.createObjectURL(blob), download: `${ui.info.scenario}-explore.json` });
    document.body.append(link); link.click(); link.remove();
  }).catch((error) => showError(error.message));
}

async function runScript(event) {
  event.preventDefault();
  try {
    const state = await api("POST", "/api/state", { script: $("script").value });
    const steps = (await api("POST", "/api/steps", { script: $("script").value })).steps;
    ui.history = steps.map((s) => s.action);
    ui.cursor = ui.history.length;
    ui.traceSteps = steps;
    ui.decisive = null;
    showError("");
    render(state);
  } catch (error) { showError(error.message); }
}

async function start() {
  ui.info = await api("GET", "/api/info");
  $("scenario").textContent = ui.info.scenario;
  $("variant").textContent = ui.info.variant;
  $("back").onclick = () => { ui.cursor = Math.max(0, ui.cursor - 1); refresh(); };
  $("forward").onclick = () => { ui.cursor = Math.min(ui.history.length, ui.cursor + 1); refresh(); };
  $("restart").onclick = () => { ui.cursor = 0; refresh(); };
  $("download").onclick = download;
  $("scriptform").onsubmit = runScript;
  $("runcheck").onclick = async () => { await api("POST", "/api/findings/run"); pollFindings(); };
  $("runspace").onclick = async () => { await api("POST", "/api/space/run"); pollSpace(); };
  if (ui.info.opening) { ui.history = ui.info.opening.path; }
  await refresh();
  pollFindings();
  pollSpace();
}

start().catch((error) => showError(error.message));
