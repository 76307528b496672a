// "Run health check" (the application page) and "Run health check with this certificate" (the
// certificate and rotation pages): shows each step as the server reports it, per form.
// Progressive enhancement: without this script the form posts and the result page opens.
// The server answers application/x-ndjson, one JSON object per line: {"step": {...}} per step,
// then {"done": true, "ok": ..., "url": ..., "summary": ...} or {"error": "..."}.
(function () {
  "use strict";

  if (!window.fetch || !window.TextDecoder) {
    return;
  }
  document.querySelectorAll("form.health-run").forEach((form) => {
    // The script may be on a page twice (the application page's panels each bring it).
    if (form.dataset.live) {
      return;
    }
    form.dataset.live = "1";
    live(form, document.getElementById(form.dataset.liveSteps), document.getElementById(form.dataset.summary));
  });

  function live(form, list, summary) {
    const button = form.querySelector("button");

    function reset() {
      list.hidden = false;
      summary.textContent = "";
      list.querySelectorAll("li").forEach((item) => {
        item.className = "";
        item.querySelector(".step-state").textContent = "waiting";
        item.querySelector(".step-diagnosis").textContent = "";
      });
      list.querySelector("li").classList.add("running");
      list.querySelector("li .step-state").textContent = "running…";
    }

    function showStep(step) {
      const item = list.querySelector('li[data-step="' + step.name + '"]');
      if (!item) {
        return;
      }
      const state = step.ok === true ? "ok" : step.ok === false ? "failed" : step.code === "skipped" ? "skipped" : "not run";
      item.className = "step-" + state.replace(" ", "-");
      const took = step.duration_ms === null ? "" : " · " + Math.round(step.duration_ms) + " ms";
      item.querySelector(".step-state").textContent = state + took;
      const diagnosis = item.querySelector(".step-diagnosis");
      diagnosis.textContent = step.diagnosis;
      (step.warnings || []).forEach((warning) => {
        const line = document.createElement("span");
        line.className = "step-warning";
        line.textContent = "warning: " + warning;
        diagnosis.append(document.createElement("br"), line);
      });
      const next = item.nextElementSibling;
      if (step.ok === true && next) {
        next.classList.add("running");
        next.querySelector(".step-state").textContent = "running…";
      }
    }

    function handle(message) {
      if (message.step) {
        showStep(message.step);
      } else if (message.error) {
        summary.textContent = message.error;
      } else if (message.done) {
        summary.textContent = message.summary + " ";
        const link = document.createElement("a");
        link.href = message.url;
        link.textContent = "Details";
        summary.appendChild(link);
      }
    }

    async function run(event) {
      event.preventDefault();
      button.disabled = true;
      reset();
      try {
        const response = await fetch(form.action, {
          method: "POST",
          body: new FormData(form),
          headers: { Accept: "application/x-ndjson" },
          credentials: "same-origin",
        });
        if (!response.ok || !response.body) {
          summary.textContent = "The health check could not start (HTTP " + response.status + ").";
          return;
        }
        const reader = response.body.getReader();
        const decoder = new TextDecoder();
        let buffered = "";
        for (;;) {
          const { value, done } = await reader.read();
          buffered += decoder.decode(value || new Uint8Array(), { stream: !done });
          let newline;
          while ((newline = buffered.indexOf("\n")) >= 0) {
            const line = buffered.slice(0, newline).trim();
            buffered = buffered.slice(newline + 1);
            if (line) {
              handle(JSON.parse(line));
            }
          }
          if (done) {
            break;
          }
        }
      } catch (error) {
        summary.textContent = "The health check was interrupted: " + error.message;
      } finally {
        button.disabled = false;
      }
    }

    form.addEventListener("submit", run);
  }
})();
