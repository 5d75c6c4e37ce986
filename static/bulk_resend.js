// Watch a bulk re-send: poll its status, move the <progress> bar and update the polite live
// region's sentence; reload once the state changes (finished or paused) so the right buttons
// show. Without JavaScript the page still works (reload by hand).
(function () {
  "use strict";
  const block = document.querySelector(".bulk-job[data-status-url]");
  if (!block || block.dataset.state !== "running") return;
  const bar = block.querySelector("progress");
  const label = block.querySelector(".bulk-label");

  async function poll() {
    let delay = 2000;
    try {
      const response = await fetch(block.dataset.statusUrl, { headers: { Accept: "application/json" } });
      if (!response.ok) return;
      const job = await response.json();
      bar.max = job.count || 1;
      bar.value = job.count ? job.done : 1;
      bar.textContent = job.done + " of " + job.count;
      if (label.textContent !== job.label) label.textContent = job.label;
      if (job.state !== "running") {
        setTimeout(() => window.location.reload(), 800);
        return;
      }
    } catch (e) {
      delay = 5000; // offline for a moment: try again a little later
    }
    setTimeout(poll, delay);
  }
  setTimeout(poll, 1000);
})();
