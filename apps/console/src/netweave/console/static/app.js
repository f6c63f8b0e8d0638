// netweave console: a single page over the console's /api, no framework and no build.
"use strict";

const FINAL_ORDER_STATES = new Set(["completed", "failed", "partial", "cancelled", "rejected"]);
const ORDER_STATES = [
  "acknowledged", "pending", "held", "inProgress", "assessingCancellation", "pendingCancellation",
  "completed", "partial", "failed", "cancelled", "rejected",
];
const LIFECYCLE = ["initial", "provisioning", "active", "disabled", "migrating", "terminated"];
const TOKEN_KEY = "netweave.console.token";

// ---- small helpers -----------------------------------------------------------------

// Builds elements from data without innerHTML, so nothing a service returns is parsed as markup.
function h(tag, attrs, ...children) {
  const svg = ["svg", "g", "rect", "text", "path", "line", "marker", "defs", "title", "a", "tspan"];
  const inSvg = attrs && attrs.svg;
  const el = inSvg && svg.includes(tag)
    ? document.createElementNS("http://www.w3.org/2000/svg", tag)
    : document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key === "svg" || value === null || value === undefined || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "text") el.textContent = value;
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

function s(tag, attrs, ...children) {
  return h(tag, { ...(attrs || {}), svg: true }, ...children);
}

function badge(value, extraClass) {
  return h("span", { class: `badge ${value || ""} ${extraClass || ""}`.trim(), "data-state": value }, value || "–");
}

function when(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString();
}

function short(id) {
  return id ? String(id).slice(0, 8) : "";
}

function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") q.set(k, v);
  const text = q.toString();
  return text ? `?${text}` : "";
}

function authHeaders() {
  const token = sessionStorage.getItem(TOKEN_KEY);
  return token ? { Authorization: `Bearer ${token}` } : {};
}

class ApiFailure extends Error {
  constructor(status, body) {
    super((body && (body.reason || body.message)) || `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

async function api(path, options = {}) {
  const headers = { Accept: "application/json", ...authHeaders(), ...(options.headers || {}) };
  if (options.json !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method: options.method || "GET",
    headers,
    body: options.json !== undefined ? JSON.stringify(options.json) : undefined,
    signal: options.signal,
  });
  let body = null;
  try { body = await response.json(); } catch (_) { body = null; }
  if (response.status === 401) showSignin(true);
  if (!response.ok) throw new ApiFailure(response.status, body);
  return body;
}

function problem(error) {
  const box = h("div", { class: "form-errors", role: "alert" });
  box.append(h("strong", null, "Could not load: "), error.message || String(error));
  return box;
}

// ---- routing --------------------------------------------------------------------------

let teardown = [];
let generation = 0;
// The id of the element to focus once the next route has rendered (else the page's main).
let focusAfterRoute = null;

function onLeave(fn) { teardown.push(fn); }

function parseRoute() {
  const raw = location.hash.replace(/^#/, "") || "/";
  const [path, search] = raw.split("?");
  return { parts: path.split("/").filter(Boolean), params: new URLSearchParams(search || "") };
}

function go(path, params) {
  location.hash = `#${path}${params ? query(params) : ""}`;
}

async function route() {
  for (const fn of teardown.splice(0)) {
    try { fn(); } catch (_) { /* a page that is gone has nothing left to clean */ }
  }
  const mine = ++generation;
  const { parts, params } = parseRoute();
  const main = document.getElementById("main");
  const page = pageFor(parts);
  document.querySelectorAll("[data-nav]").forEach((a) => {
    if (a.dataset.nav === page.nav) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  });
  // A page renders off-screen and replaces the current one only if no newer route began meanwhile.
  const view = h("div");
  try {
    await page.render(view, params, parts);
  } catch (error) {
    view.replaceChildren(h("h1", null, page.title || "netweave"), problem(error));
  }
  if (mine !== generation) return;
  main.replaceChildren(...view.childNodes);
  main.dataset.page = page.nav;
  // Tells a watcher (a test, an extension) that this route has rendered.
  main.dataset.ready = `${Date.now()}-${mine}`;
}

function pageFor(parts) {
  const [first, second] = parts;
  if (!first) return { nav: "dashboard", render: renderDashboard };
  if (first === "orders" && second) return { nav: "orders", title: "Order", render: (m) => renderOrder(m, second) };
  if (first === "orders") return { nav: "orders", title: "Orders", render: renderOrders };
  if (first === "new") return { nav: "new", title: "New order", render: renderNewOrder };
  if (first === "subscriptions" && second) {
    return { nav: "subscriptions", title: "Subscription", render: (m) => renderSubscription(m, second) };
  }
  if (first === "subscriptions") return { nav: "subscriptions", title: "Subscriptions", render: renderSubscriptions };
  if (first === "catalog") return { nav: "catalog", title: "Catalog", render: renderCatalog };
  return { nav: "", title: "Not found", render: (m) => m.replaceChildren(h("h1", null, "No such page")) };
}

function setPage(main, title, ...content) {
  document.title = `${title} · netweave`;
  main.replaceChildren(h("h1", null, title), ...content.flat().filter((c) => c !== null && c !== undefined && c !== false));
}

// ---- dashboard ------------------------------------------------------------------------

function countTable(counts, caption, link) {
  const rows = Object.entries(counts).filter(([, n]) => n > 0);
  if (!rows.length) return h("p", { class: "muted" }, "None yet.");
  return h("table", null,
    h("caption", { class: "muted", hidden: true }, caption),
    h("thead", null, h("tr", null, h("th", null, caption), h("th", { class: "num" }, "Count"))),
    h("tbody", null, rows.map(([key, n]) =>
      h("tr", null, h("td", null, h("a", { href: link(key) }, key)), h("td", { class: "num" }, n)))));
}

async function renderDashboard(main) {
  const data = await api("/api/dashboard");
  const health = h("ul", { class: "plain", "data-testid": "health" }, data.health.map((c) =>
    h("li", { title: Object.entries(c.checks || {}).map(([k, v]) => `${k}: ${v}`).join("\n") || c.detail || "" },
      h("strong", null, c.component), " ", badge(c.status))));
  const impacted = data.impacted.length
    ? h("ul", null, data.impacted.map((s) => h("li", null,
      h("a", { href: `#/subscriptions/${s.id}` }, s.label), " ", h("span", { class: "muted" }, s.product_id),
      s.cause ? h("div", { class: "hint" }, s.cause) : null)))
    : h("p", { class: "muted" }, "Nothing is impacted.");
  const dead = data.dead_letters === null
    ? h("p", { class: "muted" }, "Unknown: the console has no connection to the bus.")
    : h("p", null, h("strong", { class: "big", "data-testid": "dead-letters" }, data.dead_letters),
      " message(s) in the DEADLETTER stream", data.dead_letters ? " — see `netweave events dlq`." : ".");
  setPage(main, "Dashboard",
    h("div", { class: "grid" },
      h("section", { class: "card", "aria-labelledby": "d-health" }, h("h2", { id: "d-health" }, "Health"), health),
      h("section", { class: "card", "aria-labelledby": "d-orders" }, h("h2", { id: "d-orders" }, "Orders by state"),
        countTable(data.orders_by_state, "State", (k) => `#/orders?state=${encodeURIComponent(k)}`)),
      h("section", { class: "card", "aria-labelledby": "d-prod" }, h("h2", { id: "d-prod" }, "Subscriptions by product"),
        countTable(data.subscriptions_by_product, "Product", (k) => `#/subscriptions?product=${encodeURIComponent(k)}`)),
      h("section", { class: "card", "aria-labelledby": "d-state" }, h("h2", { id: "d-state" }, "Subscriptions by state"),
        countTable(data.subscriptions_by_state, "State", (k) => `#/subscriptions?state=${encodeURIComponent(k)}`)),
      h("section", { class: "card", "aria-labelledby": "d-imp" }, h("h2", { id: "d-imp" }, "Impacted subscriptions"), impacted),
      h("section", { class: "card", "aria-labelledby": "d-dlq" }, h("h2", { id: "d-dlq" }, "Dead letters"), dead)));
  // Refreshes unless someone is working in the page (keyboard focus inside it).
  const timer = setTimeout(() => {
    const active = document.activeElement;
    const busy = document.getElementById("main").contains(active) && active.id !== "main";
    if (parseRoute().parts.length === 0 && !busy) route();
  }, 15000);
  onLeave(() => clearTimeout(timer));
}

// ---- orders ---------------------------------------------------------------------------

function customerOf(order) {
  const party = (order.relatedParty || []).find((p) => (p.role || "").toLowerCase() === "customer");
  return party ? party.id : "";
}

function productsOf(order) {
  return [...new Set((order.serviceOrderItem || []).map((i) =>
    ((i.service || {}).serviceSpecification || {}).id).filter(Boolean))].join(", ");
}

function selectField(id, labelText, options, value) {
  return h("div", { class: "field" },
    h("label", { for: id }, labelText),
    h("select", { id, name: id }, options.map(([v, text]) => h("option", { value: v, selected: v === value }, text))));
}

function textField(id, labelText, value, extra) {
  return h("div", { class: "field" },
    h("label", { for: id }, labelText), h("input", { id, name: id, type: "search", value: value || "", ...(extra || {}) }));
}

async function renderOrders(main, params) {
  const state = params.get("state") || "";
  const q = params.get("q") || "";
  const data = await api(`/api/orders${query({ state, q })}`);
  const form = h("form", { class: "filters", role: "search", "aria-label": "Filter orders" },
    selectField("f-state", "State", [["", "any"], ...ORDER_STATES.map((st) => [st, st])], state),
    textField("f-q", "Search", q, { placeholder: "id, external id, customer, product" }),
    h("button", { type: "submit" }, "Filter"));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    go("/orders", { state: form.elements["f-state"].value, q: form.elements["f-q"].value });
  });
  const rows = data.orders.map((o) => h("tr", { "data-order": o.id },
    h("td", null, h("a", { href: `#/orders/${o.id}` }, h("code", null, short(o.id)))),
    h("td", null, o.externalId || ""), h("td", null, customerOf(o)), h("td", null, productsOf(o)),
    h("td", null, badge(o.state)), h("td", null, when(o.orderDate)), h("td", null, when(o.completionDate))));
  setPage(main, "Orders", form,
    h("p", { class: "muted" }, `${data.orders.length} shown of ${data.total}.`),
    h("table", { "data-testid": "orders" },
      h("thead", null, h("tr", null, ["Order", "External id", "Customer", "Products", "State", "Ordered", "Completed"]
        .map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", null, rows)));
}

// Reads the order API's Server-Sent Events through the console; fetch (not EventSource)
// so the credentials travel in a header, and resumes after a drop with Last-Event-ID.
function followEvents(url, onEvent, onStatus) {
  const controller = new AbortController();
  let lastId = null;
  let stopped = false;
  async function connect() {
    while (!stopped) {
      try {
        const headers = { Accept: "text/event-stream", ...authHeaders() };
        if (lastId) headers["Last-Event-ID"] = lastId;
        const response = await fetch(url, { headers, signal: controller.signal });
        if (!response.ok || !response.body) throw new Error(`HTTP ${response.status}`);
        onStatus("live");
        const reader = response.body.getReader();
        const decoder = new TextDecoder();
        let buffer = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += decoder.decode(value, { stream: true }).replace(/\r\n/g, "\n");
          let cut;
          while ((cut = buffer.indexOf("\n\n")) >= 0) {
            const frame = buffer.slice(0, cut);
            buffer = buffer.slice(cut + 2);
            const event = { id: null, type: "message", data: "" };
            for (const line of frame.split("\n")) {
              if (line.startsWith("id:")) event.id = line.slice(3).trim();
              else if (line.startsWith("event:")) event.type = line.slice(6).trim();
              else if (line.startsWith("data:")) event.data += line.slice(5).trim();
            }
            if (event.id) lastId = event.id;
            if (event.data) onEvent(event.type, JSON.parse(event.data), event.id);
          }
        }
      } catch (error) {
        if (stopped || error.name === "AbortError") return;
      }
      if (stopped) return;
      onStatus("reconnecting");
      await new Promise((resolve) => setTimeout(resolve, 3000));
    }
  }
  connect();
  return () => { stopped = true; controller.abort(); };
}

function timelineEntry(time, state, reason) {
  return h("li", { "data-state": state }, h("time", { datetime: time }, when(time)), badge(state),
    reason ? h("span", { class: "reason" }, " ", reason) : null);
}

async function renderOrder(main, orderId) {
  let order = await api(`/api/orders/${encodeURIComponent(orderId)}`);
  const seen = new Set();
  const stateEl = h("span", { "data-testid": "order-state" }, badge(order.state));
  const live = h("span", { class: "live", "aria-live": "polite", "data-testid": "live" }, "connecting…");
  const orderTimeline = h("ol", { class: "timeline", "data-testid": "order-timeline", "aria-label": "Order history" });
  const cancelMsg = h("p", { class: "error", role: "alert" });
  const cancelBtn = h("button", { type: "button", class: "danger" }, "Cancel order");
  const itemBoxes = new Map();
  const details = h("dl", { class: "props" });
  const errors = h("div");

  function renderDetails() {
    details.replaceChildren(
      h("dt", null, "Id"), h("dd", null, h("code", null, order.id)),
      h("dt", null, "External id"), h("dd", null, order.externalId || "–"),
      h("dt", null, "Customer"), h("dd", null, customerOf(order) || "–"),
      h("dt", null, "Description"), h("dd", null, order.description || "–"),
      h("dt", null, "Ordered"), h("dd", null, when(order.orderDate)),
      h("dt", null, "Completed"), h("dd", null, when(order.completionDate) || "–"));
    errors.replaceChildren(...(order.errorMessage || []).map((e) => h("p", { class: "error" }, e.reason)));
    stateEl.replaceChildren(badge(order.state));
    cancelBtn.disabled = FINAL_ORDER_STATES.has(order.state);
    for (const item of order.serviceOrderItem || []) itemBox(item);
  }

  function itemBox(item) {
    let box = itemBoxes.get(item.id);
    if (!box) {
      box = {
        state: h("span", { "data-testid": "item-state" }),
        service: h("span"),
        reason: h("p", { class: "error" }),
        timeline: h("ol", { class: "timeline", "aria-label": `History of item ${item.id}` }),
      };
      const spec = ((item.service || {}).serviceSpecification || {}).id || "";
      box.section = h("section", { class: "card", "data-item": item.id, "aria-label": `Item ${item.id}` },
        h("h3", null, `Item ${item.id} `, h("span", { class: "muted" }, `${item.action} ${spec}`), " ", box.state),
        h("p", null, "Subscription: ", box.service), box.reason, box.timeline);
      itemBoxes.set(item.id, box);
      itemsEl.append(box.section);
    }
    if (item.state) box.state.replaceChildren(badge(item.state));
    const sid = (item.service || {}).id;
    if (sid) box.service.replaceChildren(h("a", { href: `#/subscriptions/${sid}` }, h("code", null, short(sid))));
    const reasons = (item.errorMessage || []).map((e) => e.reason).join(" ");
    box.reason.textContent = reasons;
    return box;
  }

  const itemsEl = h("div", { "data-testid": "items" });
  let refetch = null;
  function scheduleRefetch() {
    clearTimeout(refetch);
    refetch = setTimeout(async () => {
      try {
        order = await api(`/api/orders/${encodeURIComponent(orderId)}`);
        renderDetails();
      } catch (_) { /* the next event tries again */ }
    }, 250);
  }

  function onEvent(type, body, id) {
    if (id && seen.has(id)) return;
    if (id) seen.add(id);
    const so = (body.event || {}).serviceOrder || {};
    if (type === "ServiceOrderItemStateChangeEvent") {
      for (const item of so.serviceOrderItem || []) {
        const box = itemBox(item);
        const reason = (item.errorMessage || []).map((e) => e.reason).join(" ");
        box.timeline.append(timelineEntry(body.eventTime, item.state, reason));
      }
    } else if (type === "ServiceOrderStateChangeEvent" || type === "ServiceOrderCreateEvent") {
      const state = so.state || "acknowledged";
      orderTimeline.append(timelineEntry(body.eventTime, state, null));
      order = { ...order, state };
      stateEl.replaceChildren(badge(state));
      cancelBtn.disabled = FINAL_ORDER_STATES.has(state);
    } else if (type === "ServiceOrderJeopardyEvent") {
      orderTimeline.append(h("li", null, h("time", null, when(body.eventTime)), badge("held", ""), " ", body.description || "in jeopardy"));
    } else if (type.startsWith("CancelServiceOrder")) {
      orderTimeline.append(h("li", null, h("time", null, when(body.eventTime)), " ", body.description || type));
    }
    scheduleRefetch();
  }

  cancelBtn.addEventListener("click", async () => {
    cancelBtn.disabled = true;
    cancelMsg.textContent = "";
    try {
      const outcome = await api(`/api/orders/${encodeURIComponent(orderId)}/cancel`, { method: "POST" });
      if (!outcome.accepted) throw new Error(outcome.error.reason || "The cancellation was refused.");
      scheduleRefetch();
    } catch (error) {
      cancelMsg.textContent = error.message;
      cancelBtn.disabled = false;
    }
  });

  setPage(main, `Order ${short(order.id)}`,
    h("div", { class: "actions" }, h("span", null, "State: "), stateEl, live, cancelBtn), cancelMsg,
    h("div", { class: "two-col" },
      h("section", { class: "card", "aria-labelledby": "o-det" }, h("h2", { id: "o-det" }, "Order"), details, errors),
      h("section", { class: "card", "aria-labelledby": "o-hist" }, h("h2", { id: "o-hist" }, "Order history"), orderTimeline)),
    h("h2", null, "Items"), itemsEl);
  renderDetails();
  const stop = followEvents(`/api/orders/${encodeURIComponent(orderId)}/events`, onEvent, (status) => {
    live.textContent = status === "live" ? "live" : "reconnecting…";
    live.className = status === "live" ? "live on" : "live";
  });
  onLeave(stop);
  onLeave(() => clearTimeout(refetch));
}

// ---- new order ------------------------------------------------------------------------

let catalogCache = null;
async function catalog() {
  if (!catalogCache) catalogCache = await api("/api/catalog");
  return catalogCache;
}

function fieldId(path) {
  return `f-${path.replace(/[^A-Za-z0-9]/g, "-")}`;
}

// Checks one value against its field's constraints, as the JSON Schema states them.
function check(field, raw) {
  const empty = raw === "" || raw === null || raw === undefined;
  if (field.kind === "boolean") return null;
  if (empty) return field.required && !field.nullable && field.default === undefined ? `${field.label} is required.` : null;
  if (field.kind === "integer" || field.kind === "number") {
    const n = Number(raw);
    if (!Number.isFinite(n) || (field.kind === "integer" && !Number.isInteger(n))) return `${field.label} must be a whole number.`;
    if (field.minimum !== undefined && n < field.minimum) return `${field.label} must be at least ${field.minimum}.`;
    if (field.maximum !== undefined && n > field.maximum) return `${field.label} must be at most ${field.maximum}.`;
    return null;
  }
  const text = String(raw);
  if (field.min_length !== undefined && text.length < field.min_length) return `${field.label} needs at least ${field.min_length} characters.`;
  if (field.max_length !== undefined && text.length > field.max_length) return `${field.label} allows at most ${field.max_length} characters.`;
  if (field.pattern && !new RegExp(field.pattern).test(text)) {
    return field.kind === "ref" ? `Choose a ${field.ref}.` : `${field.label} does not have the expected form (${field.pattern}).`;
  }
  return null;
}

class OrderForm {
  constructor(product, choices, initial, lockedRefs) {
    this.product = product;
    this.choices = choices;
    this.initial = initial || {};
    this.lockedRefs = lockedRefs;
    this.inputs = new Map(); // path -> {field, el, error}
    this.arrays = new Map(); // path -> {field, list, count}
    this.root = h("div", { "data-testid": "product-form" });
    this.renderFields(this.product.fields, "", this.initial, this.root);
  }

  renderFields(fields, prefix, values, container) {
    for (const field of fields) {
      const path = prefix ? `${prefix}.${field.name}` : field.name;
      const value = values && values[field.name] !== undefined ? values[field.name] : field.default;
      if (field.kind === "array") container.append(this.renderArray(field, path, value || []));
      else container.append(this.renderField(field, path, value, prefix));
    }
  }

  renderArray(field, path, values) {
    const list = h("div", { class: "sap-list" });
    const error = h("p", { class: "error", id: `${fieldId(path)}-error`, "data-error-for": path, "aria-live": "polite" });
    const entry = { field, list, count: 0, error };
    this.arrays.set(path, entry);
    const addBtn = h("button", { type: "button", class: "secondary" }, `Add ${singular(field.label)}`);
    const removeBtn = h("button", { type: "button", class: "secondary" }, `Remove the last ${singular(field.label)}`);
    const sync = () => {
      addBtn.disabled = field.max_items !== undefined && entry.count >= field.max_items;
      removeBtn.disabled = entry.count <= (field.min_items || 0);
    };
    const add = (value) => {
      const index = entry.count;
      const set = h("fieldset", { "data-path": `${path}.${index}` },
        h("legend", null, `${singular(field.label)} ${index + 1}`),
        h("p", { class: "error", "data-error-for": `${path}.${index}`, "aria-live": "polite" }));
      this.renderFields(field.items, `${path}.${index}`, value || {}, set);
      list.append(set);
      entry.count += 1;
      sync();
    };
    addBtn.addEventListener("click", () => add({}));
    removeBtn.addEventListener("click", () => {
      list.lastElementChild.remove();
      entry.count -= 1;
      const stem = `${path}.${entry.count}.`;
      for (const key of [...this.inputs.keys()]) if (key.startsWith(stem)) this.inputs.delete(key);
      sync();
    });
    const initial = Math.max(values.length, field.min_items || 0);
    for (let i = 0; i < initial; i += 1) add(values[i]);
    const showButtons = field.min_items !== field.max_items;
    return h("fieldset", { "data-path": path },
      h("legend", null, field.label), field.description ? h("p", { class: "hint" }, field.description) : null,
      error, list, showButtons ? h("div", { class: "actions" }, addBtn, removeBtn) : null);
  }

  renderField(field, path, value, prefix) {
    const id = fieldId(path);
    const hint = field.description ? h("p", { class: "hint", id: `${id}-hint` }, field.description) : null;
    const error = h("p", { class: "error", id: `${id}-error`, "data-error-for": path, "aria-live": "polite" });
    const described = [hint ? `${id}-hint` : null, `${id}-error`].filter(Boolean).join(" ");
    const common = { id, name: path, "data-path": path, "aria-describedby": described };
    let el;
    if (field.kind === "boolean") {
      el = h("input", { ...common, type: "checkbox", checked: Boolean(value) });
      const entry = { field, el, error };
      this.inputs.set(path, entry);
      return h("div", { class: "field check" }, el, h("label", { for: id }, field.label), hint, error);
    }
    if (field.kind === "enum") {
      el = h("select", common, field.required && value === undefined ? h("option", { value: "" }, "— choose —") : null,
        field.nullable ? h("option", { value: "" }, "(none)") : null,
        field.enum.map((v) => h("option", { value: v, selected: v === value }, v)));
    } else if (field.kind === "ref") {
      const options = (this.choices.refs[field.ref] || []).map((c) => h("option", { value: c.id, selected: c.id === value },
        c.status === "active" ? c.label : `${c.label} (${c.status})`));
      el = h("select", { ...common, disabled: this.lockedRefs && value ? true : null },
        h("option", { value: "" }, `— choose a ${field.ref} —`), options);
    } else if (field.kind === "interface") {
      el = h("select", common);
      this.fillInterfaces(el, prefix, field, value);
    } else if (field.suggestions && field.suggestions.length) {
      const speeds = [...new Set([...field.suggestions, ...(value !== undefined && value !== null ? [value] : [])])].sort((a, b) => a - b);
      el = h("select", common, speeds.map((v) => h("option", { value: v, selected: v === value }, speedText(v))));
    } else if (field.kind === "integer" || field.kind === "number") {
      el = h("input", { ...common, type: "number", inputmode: "numeric", step: field.kind === "integer" ? 1 : "any",
        min: field.minimum, max: field.maximum, value: value === null || value === undefined ? "" : value });
    } else {
      el = h("input", { ...common, type: "text", autocomplete: "off", value: value === null || value === undefined ? "" : value });
    }
    const entry = { field, el, error, touched: false };
    this.inputs.set(path, entry);
    const validate = () => this.showCheck(entry);
    el.addEventListener("blur", () => { entry.touched = true; validate(); });
    el.addEventListener("input", () => { if (entry.touched) validate(); });
    el.addEventListener("change", () => {
      entry.touched = true;
      validate();
      if (field.kind === "ref") this.refreshInterfaces(prefix, field.name);
    });
    const required = field.required && !field.nullable && field.default === undefined;
    return h("div", { class: "field" }, h("label", { for: id }, field.label, required ? " *" : ""), el, hint, error);
  }

  fillInterfaces(el, prefix, field, current) {
    const nodePath = prefix ? `${prefix}.${field.node_field}` : field.node_field;
    const nodeEntry = this.inputs.get(nodePath);
    const nodeId = nodeEntry ? nodeEntry.el.value : (this.initial[field.node_field] || "");
    const free = [...(this.choices.free_ports[nodeId] || [])];
    if (current && !free.includes(current)) free.unshift(current);
    if (!nodeId) {
      el.replaceChildren(h("option", { value: "" }, "— choose the node first —"));
      return;
    }
    el.replaceChildren(h("option", { value: "" }, free.length ? "— choose a free interface —" : "— no free interface —"),
      ...free.map((name) => h("option", { value: name, selected: name === current }, name)));
  }

  refreshInterfaces(prefix, nodeFieldName) {
    for (const [path, entry] of this.inputs) {
      const here = path.includes(".") ? path.slice(0, path.lastIndexOf(".")) : "";
      if (entry.field.kind === "interface" && entry.field.node_field === nodeFieldName && here === prefix) {
        this.fillInterfaces(entry.el, prefix, entry.field, "");
      }
    }
  }

  raw(entry) {
    return entry.field.kind === "boolean" ? entry.el.checked : entry.el.value;
  }

  showCheck(entry) {
    const message = check(entry.field, this.raw(entry));
    entry.error.textContent = message || "";
    if (message) entry.el.setAttribute("aria-invalid", "true");
    else entry.el.removeAttribute("aria-invalid");
    return message;
  }

  validate() {
    let first = null;
    for (const entry of this.inputs.values()) {
      entry.touched = true;
      if (this.showCheck(entry) && !first) first = entry.el;
    }
    return first;
  }

  value(entry) {
    const raw = this.raw(entry);
    if (entry.field.kind === "boolean") return raw;
    if (raw === "") return undefined;
    if (entry.field.kind === "integer" || entry.field.kind === "number" || entry.field.suggestions) return Number(raw);
    return raw;
  }

  // The characteristics as the order form wants them: nested objects and lists rebuilt from paths.
  characteristics() {
    const out = {};
    for (const [path, entry] of this.inputs) {
      const value = this.value(entry);
      if (value === undefined) continue;
      const keys = path.split(".");
      let node = out;
      keys.slice(0, -1).forEach((key, i) => {
        const nextIsIndex = /^\d+$/.test(keys[i + 1]);
        if (node[key] === undefined) node[key] = nextIsIndex ? [] : {};
        node = node[key];
      });
      node[keys[keys.length - 1]] = value;
    }
    for (const [path, entry] of this.arrays) {
      if (!path.includes(".") && out[path] === undefined && entry.count) out[path] = Array.from({ length: entry.count }, () => ({}));
    }
    return out;
  }

  clearErrors() {
    for (const el of this.root.querySelectorAll("[data-error-for]")) el.textContent = "";
    for (const el of this.root.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
  }

  // Puts a refusal next to the field it names, or the nearest enclosing group; null if none.
  place(path, message) {
    let at = path;
    while (at) {
      const target = this.root.querySelector(`[data-error-for="${CSS.escape(at)}"]`);
      if (target) {
        target.textContent = message;
        const entry = this.inputs.get(at);
        if (entry) entry.el.setAttribute("aria-invalid", "true");
        return entry ? entry.el : target;
      }
      at = at.includes(".") ? at.slice(0, at.lastIndexOf(".")) : "";
    }
    return null;
  }
}

function singular(label) {
  return label.endsWith("s") ? label.slice(0, -1) : label;
}

function speedText(mbps) {
  return mbps >= 1000 ? `${mbps / 1000} Gbit/s` : `${mbps} Mbit/s`;
}

function tmfOrder({ product, action, subscription, customer, externalId, description, characteristics }) {
  const service = { serviceSpecification: { id: product.id } };
  if (subscription) service.id = subscription.id;
  if (action !== "delete") {
    service.serviceCharacteristic = Object.entries(characteristics).map(([name, value]) => ({ name, value }));
  }
  const order = {
    relatedParty: [{ id: customer, role: "customer", "@referredType": "Organization", "@type": "RelatedParty" }],
    serviceOrderItem: [{ id: "1", action, service }],
  };
  if (externalId) order.externalId = externalId;
  if (description) order.description = description;
  return order;
}

async function renderNewOrder(main, params) {
  const cat = await catalog();
  const action = params.get("action") === "modify" ? "modify" : "add";
  let subscription = null;
  let productId = params.get("product") || "";
  if (action === "modify") {
    subscription = (await api(`/api/subscriptions/${encodeURIComponent(params.get("subscription") || "")}`)).subscription;
    productId = subscription.product_id;
  }
  const orderable = cat.products.filter((p) => p.status !== "end of life");
  const productSelect = h("select", { id: "product", name: "product", disabled: action === "modify" },
    h("option", { value: "" }, "— choose a product —"),
    cat.types.map((t) => h("optgroup", { label: t.product_type },
      orderable.filter((p) => p.product_type === t.product_type).map((p) =>
        h("option", { value: p.id, selected: p.id === productId }, p.status === "active" ? p.name : `${p.name} (${p.status})`)))));
  productSelect.addEventListener("change", () => {
    // Arrow keys on a select change it: keep the focus there while the form follows.
    focusAfterRoute = "product";
    go("/new", { product: productSelect.value });
  });
  const title = action === "modify" ? `Modify ${subscription.label}` : "New order";
  const intro = h("section", { class: "card" },
    h("div", { class: "field" }, h("label", { for: "product" }, "Product"), productSelect));
  if (!productId) {
    setPage(main, title, intro);
    return;
  }
  const product = cat.products.find((p) => p.id === productId);
  if (!product) throw new Error(`No product ${productId} in the catalog.`);
  const choices = await api(`/api/choices${query({ product: product.id, keep: subscription ? subscription.id : "" })}`);
  const immutableRefs = action === "modify" && !["L2VPN", "L2PointToPoint"].includes(product.product_type);
  const form = new OrderForm(product, choices, subscription ? subscription.inputs : {}, immutableRefs);
  const topErrors = h("div", { class: "form-errors", role: "alert", tabindex: "-1", "data-testid": "form-errors" });
  const customer = h("input", { id: "customer", name: "customer", type: "text", required: true, autocomplete: "organization",
    value: subscription ? subscription.customer_id : "", "aria-describedby": "customer-error", disabled: action === "modify" });
  const customerError = h("p", { class: "error", id: "customer-error", "data-error-for": "customer" });
  const externalId = h("input", { id: "externalId", name: "externalId", type: "text", autocomplete: "off" });
  const description = h("input", { id: "description", name: "description", type: "text", autocomplete: "off" });
  const fixed = Object.entries(product.fixed_inputs);
  const submit = h("button", { type: "submit" }, action === "modify" ? "Submit the modify order" : "Submit the order");
  const el = h("form", { novalidate: true, "aria-labelledby": "order-title" },
    topErrors,
    h("section", { class: "card" },
      h("h2", { id: "order-title" }, product.name), h("p", { class: "muted" }, product.description),
      fixed.length ? h("dl", { class: "props" }, fixed.flatMap(([k, v]) => [h("dt", null, k), h("dd", null, String(v))])) : null),
    h("section", { class: "card" }, h("h2", null, "Order"),
      h("div", { class: "field" }, h("label", { for: "customer" }, "Customer *"), customer, customerError),
      h("div", { class: "field" }, h("label", { for: "externalId" }, "External id"), externalId,
        h("p", { class: "hint" }, "your reference, e.g. a ticket number")),
      h("div", { class: "field" }, h("label", { for: "description" }, "Description"), description)),
    h("section", { class: "card" }, h("h2", null, "Service"), form.root),
    h("div", { class: "actions" }, submit));
  el.addEventListener("submit", async (e) => {
    e.preventDefault();
    topErrors.replaceChildren();
    form.clearErrors();
    customerError.textContent = "";
    let first = form.validate();
    if (!customer.value.trim()) {
      customerError.textContent = "Customer is required.";
      customer.setAttribute("aria-invalid", "true");
      first = customer;
    } else customer.removeAttribute("aria-invalid");
    if (first) { first.focus(); return; }
    submit.disabled = true;
    try {
      const outcome = await api("/api/orders", { method: "POST", json: tmfOrder({
        product, action, subscription, customer: customer.value.trim(), externalId: externalId.value.trim(),
        description: description.value.trim(), characteristics: form.characteristics(),
      }) });
      if (outcome.accepted) { go(`/orders/${outcome.order.id}`); return; }
      showRefusal(form, topErrors, outcome.error);
    } catch (error) {
      topErrors.replaceChildren(h("p", null, error.message));
      topErrors.focus();
    } finally {
      submit.disabled = false;
    }
  });
  setPage(main, title, intro, el);
}

function showRefusal(form, topErrors, error) {
  const layout = (error && error.console) || { fields: {}, top: [error ? error.reason : "The order was refused."] };
  let focus = null;
  const unplaced = [...layout.top];
  for (const [path, message] of Object.entries(layout.fields)) {
    const at = form.place(path, message);
    if (at) focus = focus || at;
    else unplaced.push(message);
  }
  if (unplaced.length) {
    topErrors.replaceChildren(h("p", null, h("strong", null, "The order was refused. ")), ...unplaced.map((m) => h("p", null, m)));
    topErrors.focus();
  } else if (focus) focus.focus();
}

// ---- subscriptions --------------------------------------------------------------------

async function renderSubscriptions(main, params) {
  const filters = {
    product: params.get("product") || "", state: params.get("state") || "", customer: params.get("customer") || "",
    impacted: params.get("impacted") || "", depends_on: params.get("depends_on") || "",
  };
  const [cat, all, found] = await Promise.all([catalog(), api("/api/subscriptions"), api(`/api/subscriptions${query(filters)}`)]);
  const usable = all.subscriptions.filter((x) => x.status !== "terminated");
  const form = h("form", { class: "filters", role: "search", "aria-label": "Filter subscriptions" },
    selectField("s-product", "Product", [["", "any"], ...cat.products.map((p) => [p.id, p.id])], filters.product),
    selectField("s-state", "State", [["", "any"], ...LIFECYCLE.map((x) => [x, x])], filters.state),
    textField("s-customer", "Customer", filters.customer),
    selectField("s-impacted", "Impacted", [["", "any"], ["true", "impacted"], ["false", "not impacted"]], filters.impacted),
    selectField("s-depends", "Uses (directly or not)", [["", "anything"],
      ...usable.map((x) => [x.id, `${x.label} (${x.product_id})`])], filters.depends_on),
    h("button", { type: "submit" }, "Filter"));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const el = form.elements;
    go("/subscriptions", { product: el["s-product"].value, state: el["s-state"].value, customer: el["s-customer"].value,
      impacted: el["s-impacted"].value, depends_on: el["s-depends"].value });
  });
  const rows = found.subscriptions.map((x) => h("tr", { "data-subscription": x.id },
    h("td", null, h("a", { href: `#/subscriptions/${x.id}` }, x.label)), h("td", null, x.product_id),
    h("td", null, badge(x.status)), h("td", null, x.customer_id),
    h("td", null, x.dependency_state === "impacted" ? badge("impacted") : h("span", { class: "muted" }, x.dependency_state || "ok")),
    h("td", { class: "num" }, x.depends_on.length), h("td", { class: "num" }, x.in_use_by.length)));
  setPage(main, "Subscriptions", form,
    h("p", { class: "muted", "aria-live": "polite" }, `${found.subscriptions.length} subscription(s).`),
    h("table", { "data-testid": "subscriptions" },
      h("thead", null, h("tr", null, ["Subscription", "Product", "State", "Customer", "Dependencies", "Uses", "Used by"]
        .map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", null, rows)));
}

function propsList(object) {
  const entries = Object.entries(object || {}).filter(([, v]) => v !== null && v !== undefined);
  if (!entries.length) return h("p", { class: "muted" }, "Nothing yet.");
  return h("dl", { class: "props" }, entries.flatMap(([k, v]) => [h("dt", null, k), h("dd", null, valueView(v))]));
}

function valueView(v) {
  if (Array.isArray(v)) {
    if (v.every((x) => typeof x !== "object" || x === null)) return v.join(", ");
    return h("ol", null, v.map((x) => h("li", null, valueView(x))));
  }
  if (v && typeof v === "object") return propsList(v);
  return String(v);
}

// Every inventory object reference ({id, url}) in the resources, with where it sits.
function externalIds(sub) {
  const found = [];
  const block = sub.block || {};
  if (block.ims_id !== undefined && block.ims_id !== null) found.push(["block ims_id", String(block.ims_id), null]);
  if (sub.nrm_id) found.push(["nrm_id (network job)", sub.nrm_id, null]);
  const walk = (node, path) => {
    if (Array.isArray(node)) node.forEach((x, i) => walk(x, `${path}[${i}]`));
    else if (node && typeof node === "object") {
      if (typeof node.id === "number" && Object.keys(node).every((k) => k === "id" || k === "url")) {
        found.push([`inventory ${path}`, String(node.id), node.url || null]);
      } else for (const [k, v] of Object.entries(node)) walk(v, path ? `${path}.${k}` : k);
    }
  };
  walk(sub.resources, "");
  return found;
}

function graphLayers(roots) {
  const layers = [];
  const placed = new Map();
  const edges = [];
  const visit = (nodes, depth, parent) => {
    for (const node of nodes) {
      if (parent) edges.push([parent, node.id, depth]);
      if (!placed.has(node.id)) {
        placed.set(node.id, depth);
        (layers[depth] = layers[depth] || []).push(node);
      }
      visit(node.children || [], depth + 1, node.id);
    }
  };
  visit(roots, 1, null);
  return { layers, edges };
}

function dependencyGraph(sub, graph, related) {
  const W = 220; const H = 46; const GAP_X = 70; const GAP_Y = 18; const TOP = 34;
  const uses = graphLayers(graph.depends_on);
  const usedBy = graphLayers(graph.in_use_by);
  const left = uses.layers.length ? uses.layers.length - 1 : 0;
  const right = usedBy.layers.length ? usedBy.layers.length - 1 : 0;
  const columns = left + right + 1;
  const tallest = Math.max(1, ...uses.layers.filter(Boolean).map((l) => l.length), ...usedBy.layers.filter(Boolean).map((l) => l.length));
  const width = columns * W + (columns - 1) * GAP_X + 20;
  const height = TOP + tallest * (H + GAP_Y) + 10;
  const pos = new Map();
  const x = (col) => 10 + col * (W + GAP_X);
  const yFor = (index, count) => TOP + (tallest - count) * (H + GAP_Y) / 2 + index * (H + GAP_Y);
  pos.set(`self`, { x: x(left), y: yFor(0, 1) });
  uses.layers.forEach((layer, depth) => layer && layer.forEach((n, i) => pos.set(`u:${n.id}`, { x: x(left - depth), y: yFor(i, layer.length) })));
  usedBy.layers.forEach((layer, depth) => layer && layer.forEach((n, i) => pos.set(`b:${n.id}`, { x: x(left + depth), y: yFor(i, layer.length) })));
  const svg = s("svg", { class: "graph", width, height, viewBox: `0 0 ${width} ${height}`, role: "img",
    "aria-label": `Dependency graph of ${sub.label}: it uses ${graph.depends_on_transitive.length}, ${graph.in_use_by_transitive.length} use it`,
    "data-testid": "graph" });
  svg.append(s("defs", null, s("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 10, refY: 5, markerWidth: 8, markerHeight: 8, orient: "auto-start-reverse" },
    s("path", { d: "M 0 0 L 10 5 L 0 10 z" }))));
  if (left) svg.append(s("text", { class: "heading", x: x(0), y: 16 }, "← uses"));
  if (right) svg.append(s("text", { class: "heading", x: x(left + 1), y: 16 }, "used by →"));
  const edge = (from, to) => {
    const a = pos.get(from); const b = pos.get(to);
    if (!a || !b) return;
    // An arrow always points from the user to what it uses.
    const [sx, ex] = a.x < b.x ? [a.x + W, b.x] : [a.x, b.x + W];
    const sy = a.y + H / 2; const ey = b.y + H / 2; const mid = (sx + ex) / 2;
    svg.append(s("path", { class: "edge", d: `M ${sx} ${sy} C ${mid} ${sy}, ${mid} ${ey}, ${ex} ${ey}`, "marker-end": "url(#arrow)" }));
  };
  uses.edges.forEach(([p, c]) => edge(`u:${p}`, `u:${c}`));
  (graph.depends_on || []).forEach((n) => edge("self", `u:${n.id}`));
  usedBy.edges.forEach(([p, c]) => edge(`b:${c}`, `b:${p}`));
  (graph.in_use_by || []).forEach((n) => edge(`b:${n.id}`, "self"));
  const box = (key, id, cls) => {
    const p = pos.get(key);
    const info = related[id] || {};
    const impacted = info.dependency_state === "impacted";
    const classes = [cls, impacted ? "impacted" : "", info.status === "terminated" ? "terminated" : ""].join(" ").trim();
    const label = info.label || short(id);
    const g = s("a", { href: `#/subscriptions/${id}`, class: classes, "data-node": id, "aria-label": `${label}, ${info.product_id || ""}, ${info.status || ""}${impacted ? ", impacted" : ""}` },
      s("title", null, `${label} — ${info.product_id || ""} — ${info.status || ""}${impacted ? " — impacted" : ""}`),
      s("rect", { x: p.x, y: p.y, width: W, height: H, rx: 6 }),
      s("text", { x: p.x + 8, y: p.y + 18 }, label.length > 30 ? `${label.slice(0, 29)}…` : label),
      s("text", { class: "sub", x: p.x + 8, y: p.y + 36 }, `${info.product_id || ""} · ${info.status || ""}${impacted ? " · impacted" : ""}`));
    svg.append(g);
  };
  box("self", sub.id, "self");
  uses.layers.forEach((layer) => layer && layer.forEach((n) => box(`u:${n.id}`, n.id, "uses")));
  usedBy.layers.forEach((layer) => layer && layer.forEach((n) => box(`b:${n.id}`, n.id, "used-by")));
  return svg;
}

function relatedList(ids, related, testid) {
  if (!ids.length) return h("p", { class: "muted", "data-testid": testid }, "Nothing.");
  return h("ul", { "data-testid": testid }, ids.map((id) => {
    const info = related[id] || {};
    return h("li", null, h("a", { href: `#/subscriptions/${id}` }, info.label || short(id)), " ",
      h("span", { class: "muted" }, info.product_id || ""), " ", badge(info.status),
      info.dependency_state === "impacted" ? [" ", badge("impacted")] : null);
  }));
}

function validationView(sub) {
  const last = sub.last_validation;
  if (!last || !sub.last_validated_at) return null;
  const differences = last.differences || [];
  return h("section", { class: "card", "aria-labelledby": "v-title" },
    h("h2", { id: "v-title" }, "Last validation"),
    h("p", null, `${when(sub.last_validated_at)}: `, sub.in_sync === false ? "the network differs from the subscription." : "in sync."),
    differences.length ? h("ul", null, differences.map((d) => h("li", null, h("code", null, d)))) : null);
}

async function renderSubscription(main, subId) {
  const data = await api(`/api/subscriptions/${encodeURIComponent(subId)}`);
  const sub = data.subscription;
  const message = h("p", { "aria-live": "polite", "data-testid": "action-message" });
  const validateBtn = h("button", { type: "button", class: "secondary" }, "Validate");
  validateBtn.addEventListener("click", async () => {
    validateBtn.disabled = true;
    try {
      const outcome = await api(`/api/subscriptions/${encodeURIComponent(subId)}/validate`, { method: "POST" });
      message.textContent = outcome.accepted
        ? "Validation requested: the network is being compared with the subscription."
        : outcome.error.reason;
    } catch (error) {
      message.textContent = error.message;
    } finally {
      validateBtn.disabled = false;
    }
  });
  const live = sub.status !== "terminated";
  const modify = live ? h("a", { href: `#/new${query({ action: "modify", subscription: sub.id })}`, class: "button-link" }, "Modify…") : null;
  const terminateBtn = h("button", { type: "button", class: "danger", disabled: !live }, "Terminate…");
  const confirmBox = h("div", { class: "notice", hidden: true, role: "group", "aria-label": "Confirm termination" });
  terminateBtn.addEventListener("click", () => {
    const yes = h("button", { type: "button", class: "danger" }, "Yes, order the termination");
    const no = h("button", { type: "button", class: "secondary" }, "Keep it");
    confirmBox.replaceChildren(h("p", null, `Terminate ${sub.label}? An order deletes it from the network.`), h("div", { class: "actions" }, yes, no));
    confirmBox.hidden = false;
    no.addEventListener("click", () => { confirmBox.hidden = true; terminateBtn.focus(); });
    yes.addEventListener("click", async () => {
      yes.disabled = true;
      try {
        const outcome = await api("/api/orders", { method: "POST", json: tmfOrder({
          product: { id: sub.product_id }, action: "delete", subscription: sub, customer: sub.customer_id,
          description: `terminate ${sub.label}`, characteristics: {} }) });
        if (outcome.accepted) { go(`/orders/${outcome.order.id}`); return; }
        confirmBox.replaceChildren(h("p", { class: "error", role: "alert" }, outcome.error.reason));
      } catch (error) {
        confirmBox.replaceChildren(h("p", { class: "error", role: "alert" }, error.message));
      }
    });
    yes.focus();
  });
  const ext = externalIds(sub);
  const events = h("table", { "data-testid": "events" },
    h("thead", null, h("tr", null, ["Time", "Event", "Summary", "Order"].map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", null, data.events.map((e) => h("tr", null, h("td", null, when(e.time)), h("td", null, e.type),
      h("td", null, e.summary || ""), h("td", null, e.order_id ? h("a", { href: `#/orders/${e.order_id}` }, h("code", null, short(e.order_id))) : "")))));
  const jobs = data.jobs.length ? h("table", null,
    h("thead", null, h("tr", null, ["Started", "Operation", "Driver", "State", "Finished"].map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", null, data.jobs.map((j) => h("tr", null, h("td", null, when(j.started_at)), h("td", null, j.operation),
      h("td", null, j.driver), h("td", null, badge(j.state)), h("td", null, when(j.finished_at))))))
    : h("p", { class: "muted" }, "No provisioning jobs.");
  setPage(main, sub.label,
    h("div", { class: "actions" }, badge(sub.status), sub.dependency_state === "impacted" ? badge("impacted") : null,
      sub.in_sync === false ? h("span", { class: "badge failed", "data-testid": "sync" }, "out of sync") : null,
      h("span", { class: "muted" }, `${sub.product_id} · customer ${sub.customer_id}`), validateBtn, modify, terminateBtn),
    confirmBox, message,
    sub.impact_cause ? h("p", { class: "error" }, `Impacted: ${sub.impact_cause}`) : null,
    sub.reason ? h("p", { class: "muted" }, sub.reason) : null,
    validationView(sub),
    h("section", { class: "card", "aria-labelledby": "g-title" }, h("h2", { id: "g-title" }, "Dependencies"),
      h("div", { class: "graph-wrap" }, dependencyGraph(sub, data.graph, data.related)),
      h("div", { class: "two-col" },
        h("div", null, h("h3", null, "Uses"), relatedList(data.graph.depends_on_transitive, data.related, "uses")),
        h("div", null, h("h3", null, "Used by"), relatedList(data.graph.in_use_by_transitive, data.related, "used-by")))),
    h("div", { class: "two-col" },
      h("section", { class: "card", "aria-labelledby": "b-title" }, h("h2", { id: "b-title" }, "Product block"), propsList(sub.block)),
      h("section", { class: "card", "aria-labelledby": "r-title" }, h("h2", { id: "r-title" }, "Resources"), propsList(sub.resources))),
    h("div", { class: "two-col" },
      h("section", { class: "card", "aria-labelledby": "x-title" }, h("h2", { id: "x-title" }, "External ids"),
        ext.length ? h("dl", { class: "props" }, ext.flatMap(([k, v, url]) => [h("dt", null, k),
          h("dd", null, url ? h("a", { href: url, rel: "noreferrer" }, v) : h("code", null, v))])) : h("p", { class: "muted" }, "None yet.")),
      h("section", { class: "card", "aria-labelledby": "i-title" }, h("h2", { id: "i-title" }, "Order inputs"), propsList(sub.inputs))),
    h("section", { class: "card", "aria-labelledby": "e-title" }, h("h2", { id: "e-title" }, "Event history"), events),
    h("section", { class: "card", "aria-labelledby": "j-title" }, h("h2", { id: "j-title" }, "Provisioning jobs"), jobs),
    h("p", { class: "muted" }, "Id ", h("code", null, sub.id), ` · created ${when(sub.created_at)} · updated ${when(sub.updated_at)}`));
}

// ---- catalog --------------------------------------------------------------------------

function constraintText(f) {
  const parts = [];
  if (f.ref) parts.push(`→ ${f.ref}`);
  if (f.enum) parts.push(f.enum.join(" | "));
  if (f.minimum !== undefined) parts.push(`≥ ${f.minimum}`);
  if (f.maximum !== undefined) parts.push(`≤ ${f.maximum}`);
  if (f.max_length !== undefined) parts.push(`≤ ${f.max_length} chars`);
  if (f.min_items !== undefined) parts.push(`${f.min_items}..${f.max_items ?? "∞"} items`);
  if (f.default !== undefined && f.default !== null) parts.push(`default ${f.default}`);
  return parts.join(", ");
}

function fieldsTable(fields, extraColumn) {
  const rows = [];
  const walk = (list, prefix) => list.forEach((f) => {
    rows.push(h("tr", null, h("td", null, h("code", null, prefix + f.name)), h("td", null, f.kind),
      h("td", null, f.required ? "yes" : ""), h("td", null, constraintText(f)),
      extraColumn ? h("td", null, f.lifecycle || "") : h("td", null, f.description || "")));
    if (f.items && f.items.length) walk(f.items, `${prefix}${f.name}[].`);
  });
  walk(fields, "");
  return h("table", null, h("thead", null, h("tr", null, ["Field", "Kind", "Required", "Constraints", extraColumn ? "Lifecycle" : "Description"]
    .map((t) => h("th", { scope: "col" }, t)))), h("tbody", null, rows));
}

async function renderCatalog(main) {
  const cat = await catalog();
  setPage(main, "Product catalog", ...cat.types.map((t) => {
    const products = cat.products.filter((p) => p.product_type === t.product_type);
    return h("section", { class: "card", "aria-labelledby": `t-${t.tag}`, "data-type": t.product_type },
      h("h2", { id: `t-${t.tag}` }, `${t.product_type} `, h("span", { class: "muted" }, `(${t.tag})`)),
      h("p", null, t.description, t.depends_on.length ? ` Uses: ${t.depends_on.join(", ")}.` : ""),
      h("h3", null, "Products"),
      h("table", null, h("thead", null, h("tr", null, ["Product", "Name", "Status", "Fixed inputs", ""].map((x) => h("th", { scope: "col" }, x)))),
        h("tbody", null, products.map((p) => h("tr", null, h("td", null, h("code", null, p.id)), h("td", null, p.name),
          h("td", null, badge(p.status === "active" ? "active" : p.status === "phase out" ? "held" : "terminated", ""), " ", p.status),
          h("td", null, Object.entries(p.fixed_inputs).map(([k, v]) => `${k}=${v}`).join(", ")),
          h("td", null, p.status !== "end of life" ? h("a", { href: `#/new?product=${encodeURIComponent(p.id)}` }, "Order") : ""))))),
      h("h3", null, "Order form"), fieldsTable(products.length ? products[0].fields : [], false),
      h("h3", null, `Product block ${t.block.name}`), fieldsTable(t.block.fields, true));
  }));
}

// ---- credentials ----------------------------------------------------------------------

function showSignin(show) {
  const box = document.getElementById("signin");
  box.hidden = !show;
  if (show) document.getElementById("signin-token").focus();
}

function setupSignin() {
  document.getElementById("signin-toggle").addEventListener("click", () => showSignin(document.getElementById("signin").hidden));
  document.getElementById("signin-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const token = document.getElementById("signin-token").value.trim();
    if (token) sessionStorage.setItem(TOKEN_KEY, token);
    showSignin(false);
    route();
  });
  document.getElementById("signin-clear").addEventListener("click", () => {
    sessionStorage.removeItem(TOKEN_KEY);
    document.getElementById("signin-token").value = "";
  });
}

window.addEventListener("hashchange", () => {
  route().then(() => {
    const target = (focusAfterRoute && document.getElementById(focusAfterRoute)) || document.getElementById("main");
    focusAfterRoute = null;
    target.focus({ preventScroll: true });
  });
});
document.addEventListener("DOMContentLoaded", () => {
  setupSignin();
  route();
});
