// The binding-parameters panel of the certificate page: format tabs (its Copy buttons: portal.js).
// Progressive enhancement: without this script every block is shown one after the other and
// the download links work. No inline script anywhere, so a strict Content-Security-Policy holds.
(function () {
  "use strict";

  function setUpTabs(root) {
    const tablist = root.querySelector('[role="tablist"]');
    const tabs = Array.from(tablist.querySelectorAll('[role="tab"]'));
    const panels = tabs.map((tab) => document.getElementById(tab.getAttribute("aria-controls")));
    const form = document.querySelector("form.binding-options");

    function select(index, focus) {
      tabs.forEach((tab, i) => {
        const selected = i === index;
        tab.setAttribute("aria-selected", selected ? "true" : "false");
        tab.tabIndex = selected ? 0 : -1;
        panels[i].hidden = !selected;
      });
      if (focus) {
        tabs[index].focus();
      }
      return panels[index].id;
    }

    function remember(id) {
      // The chosen format survives a reload and applying the options, without scrolling.
      history.replaceState(history.state, "", "#" + id);
      if (form) {
        form.setAttribute("action", "#" + id);
      }
    }

    panels.forEach((panel, i) => {
      panel.setAttribute("role", "tabpanel");
      panel.setAttribute("aria-labelledby", tabs[i].id);
    });
    tabs.forEach((tab, i) => {
      tab.addEventListener("click", () => remember(select(i, false)));
    });
    tablist.addEventListener("keydown", (event) => {
      const current = tabs.indexOf(document.activeElement);
      if (current < 0) {
        return;
      }
      const next = {
        ArrowRight: (current + 1) % tabs.length,
        ArrowLeft: (current - 1 + tabs.length) % tabs.length,
        Home: 0,
        End: tabs.length - 1,
      }[event.key];
      if (next === undefined) {
        return;
      }
      event.preventDefault();
      remember(select(next, true));
    });

    const wanted = panels.findIndex((panel) => "#" + panel.id === window.location.hash);
    const start = select(wanted < 0 ? 0 : wanted, false);
    if (wanted >= 0 && form) {
      form.setAttribute("action", "#" + start);
    }
    root.classList.add("tabbed");
    tablist.hidden = false;
  }

  function start() {
    document.querySelectorAll("[data-binding-tabs]").forEach(setUpTabs);  // Copy: portal.js
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
