// Watch the active export: copy the server's words for its stage and progress into the page,
// announce stage changes through the polite live region, offer Cancel only while the run is
// active, and reload once the run has finished so the new archive appears. Without JavaScript the page still works (reload by hand).
(function () {
  "use strict";
  const block = document.querySelector('.progress-block[data-active="yes"]');
  if (!block) return;
  const bar = block.querySelector("progress");
  const stage = block.querySelector(".stage");
  const badge = block.querySelector(".state");
  const error = block.querySelector(".run-error");
  const live = block.querySelector(".live");
  const cancel = block.querySelector(".run-cancel");
  let announced = "";

  function show(run) {
    badge.textContent = run.state_label;
    badge.className = "badge state " + (run.badge || run.state);
    bar.value = run.progress;
    bar.textContent = run.progress + "%";
    stage.textContent = run.label;
    error.textContent = run.error || "";
    error.hidden = !run.error;
    // Cancelling only means something while the run is active.
    if (cancel) cancel.hidden = !run.active;
    // Announce a new stage or state, not every count: a screen reader would hear nothing else.
    const key = run.state + "/" + (run.stage || "");
    if (key !== announced) {
      announced = key;
      live.textContent = run.state === "running" ? (run.stage_label || run.state_label) : run.label;
    }
  }

  async function poll() {
    let delay = 1000;
    try {
      const response = await fetch(block.dataset.statusUrl, { headers: { Accept: "application/json" } });
      if (response.ok) {
        const run = await response.json();
        show(run);
        if (!run.active) {
          setTimeout(() => window.location.reload(), 800);
          return;
        }
      } else if (response.status === 401 || response.status === 404) {
        return;
      }
    } catch (e) {
      delay = 5000; // offline for a moment: try again a little later
    }
    setTimeout(poll, delay);
  }
  setTimeout(poll, 500);
})();
