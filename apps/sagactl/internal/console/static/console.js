// The console's little JavaScript: the live list (Server-Sent Events),
// ticking ages, the sequence diagram's details and the trace's bars. The
// pages work without it, only not live.
"use strict";

function human(seconds) {
  if (seconds < 0) seconds = 0;
  if (seconds < 60) return Math.floor(seconds) + " s";
  if (seconds < 3600) return Math.floor(seconds / 60) + " m " + String(Math.floor(seconds % 60)).padStart(2, "0") + " s";
  if (seconds < 172800) return Math.floor(seconds / 3600) + " h " + String(Math.floor(seconds / 60) % 60).padStart(2, "0") + " m";
  return Math.floor(seconds / 86400) + " d " + (Math.floor(seconds / 3600) % 24) + " h";
}

function tick() {
  const now = Date.now() / 1000;
  document.querySelectorAll("[data-since]").forEach(function (el) {
    el.textContent = human(now - Number(el.dataset.since));
  });
}

function live() {
  const badge = document.getElementById("live");
  const rows = document.getElementById("rows");
  if (!badge || !rows || !window.EventSource) return;
  const known = new Map();
  rows.querySelectorAll("tr[data-id]").forEach(function (tr) { known.set(tr.dataset.id, tr.dataset.status); });
  const es = new EventSource(badge.dataset.stream);
  es.addEventListener("open", function () { badge.textContent = "● live"; badge.className = "live on"; });
  es.addEventListener("error", function () { badge.textContent = "○ reconnecting…"; badge.className = "live off"; });
  es.addEventListener("rows", function (ev) {
    rows.innerHTML = ev.data;
    rows.querySelectorAll("tr[data-id]").forEach(function (tr) {
      const before = known.get(tr.dataset.id);
      if (before === undefined) tr.classList.add("fresh");
      else if (before !== tr.dataset.status) tr.classList.add("changed");
      known.set(tr.dataset.id, tr.dataset.status);
    });
    badge.textContent = "● live";
    badge.className = "live on";
    tick();
  });
}

function diagram() {
  const svg = document.getElementById("diagram");
  if (!svg) return;
  // The details are <details> elements that work without this; a click
  // on an arrow opens its message's and closes the others.
  function show(g) {
    svg.querySelectorAll("g.msg.sel").forEach(function (x) { x.classList.remove("sel"); });
    g.classList.add("sel");
    document.querySelectorAll("details.msgdetail[open]").forEach(function (s) { s.open = false; });
    const d = document.getElementById("msg-" + g.dataset.msg);
    if (d) {
      d.open = true;
      d.scrollIntoView({ block: "nearest" });
    }
  }
  svg.querySelectorAll("g.msg").forEach(function (g) {
    g.addEventListener("click", function () { show(g); });
    g.addEventListener("keydown", function (ev) { if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); show(g); } });
  });
}

function waterfall() {
  document.querySelectorAll(".waterfall .bar").forEach(function (b) {
    b.style.marginLeft = (Number(b.dataset.offset) * 100) + "%";
    b.style.width = (Number(b.dataset.width) * 100) + "%";
  });
  document.querySelectorAll(".waterfall .sname").forEach(function (n) {
    n.style.paddingLeft = n.dataset.indent + "ch";
  });
}

function confirms() {
  document.querySelectorAll("form[data-confirm]").forEach(function (f) {
    f.addEventListener("submit", function (ev) { if (!window.confirm(f.dataset.confirm)) ev.preventDefault(); });
  });
}

document.addEventListener("DOMContentLoaded", function () {
  live();
  diagram();
  waterfall();
  confirms();
  tick();
  setInterval(tick, 1000);
});
