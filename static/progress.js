// Poll active runs and update their state and progress bar; reload once one finishes
// so the new archive appears. Without JavaScript the page still works (reload by hand).
(function () {
  const active = () => document.querySelectorAll('li.run[data-active="yes"]');
  async function poll() {
    let finished = false;
    for (const item of active()) {
      try {
        const response = await fetch(item.dataset.statusUrl, { headers: { Accept: "application/json" } });
        if (!response.ok) continue;
        const run = await response.json();
        item.querySelector(".state").textContent = run.state;
        item.querySelector("progress").value = run.progress;
        item.querySelector(".stage").textContent = run.stage || "";
        if (!["queued", "running", "retrying"].includes(run.state)) finished = true;
      } catch (error) { /* offline for a moment: try again next time */ }
    }
    if (finished) window.location.reload();
    else if (active().length) setTimeout(poll, 1500);
  }
  if (active().length) setTimeout(poll, 1000);
})();
