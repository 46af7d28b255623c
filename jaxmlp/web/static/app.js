// The page of `jaxmlp serve`. Every number shown comes from the server's JSON API; the
// page draws, sends the drawing as a PNG, and paints the answers.
"use strict";

const PEN_WIDTH = 18;
const GRID_WIDTH = 540;
const POSITIVE = [192, 57, 43];
const NEGATIVE = [41, 98, 168];
const ACTIVE = [47, 111, 179];
const GATED = [232, 235, 238];

const $ = (id) => document.getElementById(id);
const pad = $("pad");
const pen = pad.getContext("2d");

// What the page shows, readable from the console (and by the browser test).
const lab = {
  version: 0, // bumped by every change of the drawing, the label or the network
  shown: 0, // the version whose answers are on the page
  busy: false,
  stepping: false,
  strokes: 0,
  label: null, // the label chosen for backprop; null: the prediction
  classNames: [],
  png: null, // the PNG sent for the answers on the page
  pixels: null,
  prediction: null,
  probabilities: null,
  hidden: null,
  backprop: null,
  lastStep: null,
  loaded: false,
  ready() {
    return this.loaded && !this.busy && !this.stepping && this.shown === this.version;
  },
};
window.jaxmlpLab = lab;

async function api(path, body) {
  const options = body === undefined ? {} : {
    method: "POST",
    headers: {"Content-Type": "application/json"},
    body: JSON.stringify(body),
  };
  const response = await fetch(path, options);
  const answer = await response.json();
  if (!response.ok) throw new Error(answer.error || `${response.status} ${response.statusText}`);
  return answer;
}

function showStatus(message, isError = false) {
  const status = $("status");
  status.textContent = message;
  status.classList.toggle("error", isError);
}

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

// ---- drawing ----

function clearPad() {
  pen.fillStyle = "#fff";
  pen.fillRect(0, 0, pad.width, pad.height);
  pen.strokeStyle = "#000";
  pen.fillStyle = "#000";
  pen.lineWidth = PEN_WIDTH;
  pen.lineCap = "round";
  pen.lineJoin = "round";
}

function padPoint(event) {
  const box = pad.getBoundingClientRect();
  return [
    ((event.clientX - box.left) * pad.width) / box.width,
    ((event.clientY - box.top) * pad.height) / box.height,
  ];
}

let last = null;

pad.addEventListener("pointerdown", (event) => {
  event.preventDefault();
  pad.setPointerCapture(event.pointerId);
  last = padPoint(event);
  pen.beginPath();
  pen.arc(last[0], last[1], PEN_WIDTH / 2, 0, 2 * Math.PI);
  pen.fill();
  lab.strokes += 1;
  lab.lastStep = null; // its before-and-after belong to the digit as it was
  changed();
});

pad.addEventListener("pointermove", (event) => {
  if (!last) return;
  const point = padPoint(event);
  pen.beginPath();
  pen.moveTo(last[0], last[1]);
  pen.lineTo(point[0], point[1]);
  pen.stroke();
  last = point;
  changed();
});

for (const type of ["pointerup", "pointercancel"]) {
  pad.addEventListener(type, () => {
    if (!last) return;
    last = null;
    changed();
  });
}

$("clear").addEventListener("click", () => {
  clearPad();
  lab.strokes = 0;
  lab.lastStep = null;
  changed();
});

// ---- talking to the server ----

function changed() {
  lab.version += 1;
  refresh();
}

// One analysis at a time; changes made meanwhile are picked up by the next round.
async function refresh() {
  if (lab.busy) return;
  lab.busy = true;
  try {
    while (lab.shown !== lab.version) {
      const version = lab.version;
      try {
        await analyse();
        showStatus("");
      } catch (error) {
        showStatus(error.message, true);
      }
      lab.shown = version;
    }
  } finally {
    lab.busy = false;
  }
}

async function analyse() {
  if (lab.strokes === 0) {
    Object.assign(lab, {png: null, pixels: null, prediction: null, probabilities: null,
      hidden: null, backprop: null});
    render();
    return;
  }
  const png = pad.toDataURL("image/png");
  const seen = await api("/api/preprocess", {image: png});
  const output = await api("/api/predict", {pixels: seen.pixels});
  const label = lab.label === null ? output.prediction : lab.label;
  const errors = await api("/api/backprop", {pixels: seen.pixels, label});
  Object.assign(lab, {
    png,
    pixels: seen.pixels,
    prediction: output.prediction,
    probabilities: output.probabilities,
    hidden: output.hidden,
    backprop: errors,
  });
  render();
}

async function takeStep() {
  if (!lab.pixels) return;
  lab.stepping = true;
  $("step").disabled = true;
  try {
    const label = lab.label === null ? lab.prediction : lab.label;
    const lr = Number($("lr").value);
    lab.lastStep = await api("/api/step", {pixels: lab.pixels, label, lr});
    showStatus("");
  } catch (error) {
    showStatus(error.message, true);
  } finally {
    lab.stepping = false;
    $("step").disabled = false;
  }
  changed();
}

async function resetNetwork() {
  lab.stepping = true;
  try {
    await api("/api/reset", {});
    lab.lastStep = null;
    showStatus("network reset to the checkpoint");
  } catch (error) {
    showStatus(error.message, true);
  } finally {
    lab.stepping = false;
  }
  changed();
}

$("step").addEventListener("click", takeStep);
$("reset").addEventListener("click", resetNetwork);

// ---- painting ----

function paint(canvas, width, height, colourOf, count) {
  canvas.width = width;
  canvas.height = height;
  const context = canvas.getContext("2d");
  const image = context.createImageData(width, height);
  for (let i = 0; i < count; i += 1) {
    const [r, g, b] = colourOf(i);
    image.data.set([r, g, b, 255], 4 * i);
  }
  context.putImageData(image, 0, 0);
}

function mix(colour, strength) {
  const s = Math.min(1, Math.max(0, strength));
  return colour.map((c) => Math.round(255 + (c - 255) * s));
}

function diverging(value, scale) {
  return value >= 0 ? mix(POSITIVE, value / scale) : mix(NEGATIVE, -value / scale);
}

function largestMagnitude(values) {
  return values.reduce((m, v) => Math.max(m, Math.abs(v)), 0) || 1;
}

function paintDigit(canvas, pixels) {
  paint(canvas, 28, 28, (i) => {
    const v = Math.round(pixels[i] * 255);
    return [v, v, v];
  }, 784);
}

function paintSigned(canvas, values) {
  const scale = largestMagnitude(values);
  paint(canvas, 28, 28, (i) => diverging(values[i], scale), 784);
}

// A layer of n units as a grid of cells, at most 50 a row.
function unitGrid(title, values, colourOf) {
  const block = element("div", "grid-block");
  block.append(element("div", "grid-title", title));
  const columns = Math.min(values.length, 50);
  const rows = Math.ceil(values.length / columns);
  const canvas = element("canvas");
  const cell = Math.min(28, Math.max(5, Math.floor(GRID_WIDTH / columns)));
  paint(canvas, columns, rows, (i) => (i < values.length ? colourOf(values[i]) : [255, 255, 255]),
    columns * rows);
  canvas.style.width = `${columns * cell}px`;
  canvas.style.height = `${rows * cell}px`;
  block.append(canvas);
  return block;
}

function percent(p) {
  return `${(100 * p).toFixed(1)} %`;
}

function renderProbabilities() {
  const box = $("probabilities");
  box.replaceChildren();
  if (!lab.probabilities) return;
  const before = lab.lastStep ? lab.lastStep.before : null;
  const label = lab.backprop ? lab.backprop.label : null;
  lab.probabilities.forEach((p, k) => {
    const row = [element("span", "name", lab.classNames[k] ?? String(k))];
    const track = element("span", "track");
    const fill = element("span", "fill");
    fill.style.width = `${100 * p}%`;
    track.append(fill);
    if (before) {
      const tick = element("span", "before");
      tick.style.left = `calc(${100 * before[k]}% - 1px)`;
      track.append(tick);
    }
    row.push(track, element("span", "value", percent(p)));
    const classes = [k === lab.prediction ? "best" : "", k === label ? "chosen" : ""].join(" ");
    for (const cell of row) {
      cell.classList.add(...classes.split(" ").filter(Boolean));
      box.append(cell);
    }
  });
}

function renderActivations() {
  const box = $("activations");
  box.replaceChildren();
  if (!lab.hidden) return;
  lab.hidden.forEach((a, index) => {
    const scale = Math.max(...a) || 1;
    const active = a.filter((v) => v > 0).length;
    box.append(unitGrid(`a${superscript(index + 1)}: ${a.length} units, ${active} active`, a,
      (v) => (v > 0 ? mix(ACTIVE, 0.15 + 0.85 * (v / scale)) : [255, 255, 255])));
  });
}

function superscript(n) {
  return String(n).replace(/\d/g, (d) => "⁰¹²³⁴⁵⁶⁷⁸⁹"[d]);
}

function renderBackprop() {
  const result = lab.backprop;
  $("loss").textContent = result ? result.loss.toFixed(4) : "–";
  const table = $("bp1-table");
  table.replaceChildren();
  const errors = $("hidden-errors");
  errors.replaceChildren();
  const units = $("units");
  units.replaceChildren();
  if (!result) return;

  const header = element("tr");
  for (const name of ["class", "aᴸ", "y", "δᴸ", ""]) header.append(element("th", "", name));
  table.append(header);
  const scale = largestMagnitude(result.output_error);
  result.output_error.forEach((delta, k) => {
    const row = element("tr", k === result.label ? "chosen" : "");
    row.append(element("td", "", lab.classNames[k] ?? String(k)),
      element("td", "", result.output[k].toFixed(3)),
      element("td", "", String(result.target[k])),
      element("td", "", delta.toFixed(3)));
    const cell = element("td", "delta");
    const bar = element("div", "signed");
    const fill = element("div", "fill");
    const width = (50 * Math.abs(delta)) / scale;
    fill.style.left = delta >= 0 ? "50%" : `${50 - width}%`;
    fill.style.width = `${width}%`;
    fill.style.background = `rgb(${(delta >= 0 ? POSITIVE : NEGATIVE).join(",")})`;
    bar.append(element("div", "zero"), fill);
    cell.append(bar);
    row.append(cell);
    table.append(row);
  });

  result.hidden_errors.forEach((delta, index) => {
    const deltaScale = largestMagnitude(delta);
    const gated = delta.filter((v) => v === 0).length;
    errors.append(unitGrid(`δ${superscript(index + 1)}: ${delta.length} units, ${gated} gated off`,
      delta, (v) => (v === 0 ? GATED : diverging(v, deltaScale))));
  });

  for (const unit of result.units) {
    const card = element("div", "unit");
    card.dataset.unit = unit.unit;
    card.append(element("div", "caption", `unit ${unit.unit}: δ¹ = ${unit.delta.toPrecision(3)}`));
    const pair = element("div", "pair");
    const weights = element("canvas", "weights");
    const gradient = element("canvas", "gradient");
    paintSigned(weights, unit.weights);
    paintSigned(gradient, unit.gradient);
    weights.title = `W¹ row ${unit.unit}: the weights into unit ${unit.unit}`;
    gradient.title = `∂E/∂W¹ row ${unit.unit} = δ¹ × your digit`;
    pair.append(figure(weights, `W¹ row ${unit.unit}`), figure(gradient, "∂E/∂W¹ row"));
    card.append(pair);
    units.append(card);
  }
}

function figure(canvas, caption) {
  const box = element("div");
  box.append(canvas, element("div", "caption", caption));
  return box;
}

function renderLabels() {
  for (const button of $("labels").children) {
    const value = button.dataset.label === "" ? null : Number(button.dataset.label);
    button.setAttribute("aria-checked", String(value === lab.label));
  }
}

function renderStep() {
  const box = $("step-result");
  box.replaceChildren();
  const step = lab.lastStep;
  if (!step) return;
  const before = step.before[step.label];
  const after = step.after[step.label];
  const name = lab.classNames[step.label] ?? String(step.label);
  box.append(`step ${step.steps} (η = ${step.lr}): P(${name}) `,
    element("span", after >= before ? "up" : "down", `${percent(before)} → ${percent(after)}`));
}

function render() {
  if (lab.pixels) {
    paintDigit($("preview"), lab.pixels);
  } else {
    paintDigit($("preview"), new Array(784).fill(0));
  }
  $("prediction").textContent = lab.prediction === null ? "–"
    : (lab.classNames[lab.prediction] ?? String(lab.prediction));
  const steps = lab.backprop ? lab.backprop.steps : (lab.lastStep ? lab.lastStep.steps : 0);
  $("steps").textContent = steps ? `${steps} step${steps === 1 ? "" : "s"} taken` : "";
  $("step").disabled = !lab.pixels;
  renderProbabilities();
  renderActivations();
  renderBackprop();
  renderLabels();
  renderStep();
}

// ---- start ----

async function start() {
  clearPad();
  try {
    const info = await api("/api/info");
    lab.classNames = info.class_names;
    $("model-info").textContent = `${info.checkpoint}: layers ${info.sizes.join("-")}`;
    const buttons = $("labels");
    const choices = [[null, "prediction"], ...info.class_names.map((name, k) => [k, name])];
    for (const [value, name] of choices) {
      const button = element("button", "", name);
      button.type = "button";
      button.setAttribute("role", "radio");
      button.dataset.label = value === null ? "" : String(value);
      button.addEventListener("click", () => {
        lab.label = value;
        changed();
      });
      buttons.append(button);
    }
  } catch (error) {
    showStatus(`cannot reach the server: ${error.message}`, true);
  }
  render();
  lab.loaded = true;
}

start();
