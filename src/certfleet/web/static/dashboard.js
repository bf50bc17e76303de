// certfleet dashboard: the little the pages need beyond HTML. Everything works without it
// except the live scan progress (the page says to reload instead).
"use strict";

document.addEventListener("submit", (event) => {
  const form = event.target;
  const question = form instanceof HTMLFormElement ? form.dataset.confirm : undefined;
  if (question && !window.confirm(question)) {
    event.preventDefault();
  }
});

function watchScan(box) {
  const url = box.dataset.progressUrl;
  const live = document.getElementById("scan-live");
  const show = (run) => {
    for (const cell of box.querySelectorAll("[data-field]")) {
      const value = run[cell.dataset.field];
      cell.textContent = value === null || value === undefined ? "" : String(value);
    }
  };
  const tick = async () => {
    try {
      const response = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
      if (!response.ok || !(response.headers.get("content-type") || "").includes("json")) {
        live.textContent = "progress unavailable: reload the page";
        return;
      }
      const run = await response.json();
      show(run);
      if (run.status === "completed" || run.status === "failed") {
        live.textContent = "scan " + run.status;
        return;
      }
      live.textContent = "updating…";
    } catch (error) {
      live.textContent = "progress unavailable: reload the page";
      return;
    }
    window.setTimeout(tick, 1000);
  };
  if (box.dataset.status !== "completed" && box.dataset.status !== "failed") {
    tick();
  }
}

document.addEventListener("DOMContentLoaded", () => {
  const box = document.getElementById("scan");
  if (box) {
    watchScan(box);
  }
});
