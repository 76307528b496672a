// Small enhancements on every page; each works without this script too (progressive enhancement):
// - application pickers suggest as you type (without script the server resolves what was typed);
// - Copy buttons next to one-time secrets and feed URLs (without script: select and copy by hand);
// - a new application's slug follows its name until the slug is edited (without script the
//   server fills an empty slug from the name).
// No inline script anywhere, so a strict Content-Security-Policy holds.
(function () {
  "use strict";

  // --- application pickers ---------------------------------------------------------------------

  function setUpPicker(input) {
    const list = document.createElement("ul");
    list.id = input.id + "-suggestions";
    list.setAttribute("role", "listbox");
    list.setAttribute("aria-label", "Matching applications");
    list.hidden = true;
    input.after(list);
    input.setAttribute("role", "combobox");
    input.setAttribute("aria-autocomplete", "list");
    input.setAttribute("aria-expanded", "false");
    input.setAttribute("aria-controls", list.id);
    let timer = null;
    let asked = 0;
    let active = -1;

    function options() {
      return Array.from(list.querySelectorAll('[role="option"]'));
    }

    function close() {
      list.hidden = true;
      input.setAttribute("aria-expanded", "false");
      input.removeAttribute("aria-activedescendant");
      active = -1;
    }

    function highlight(index) {
      const all = options();
      if (!all.length) {
        return;
      }
      active = (index + all.length) % all.length;
      all.forEach((option, i) => option.setAttribute("aria-selected", i === active ? "true" : "false"));
      input.setAttribute("aria-activedescendant", all[active].id);
      all[active].scrollIntoView({ block: "nearest" });
    }

    function choose(option) {
      input.value = option.dataset.slug;
      close();
      input.dispatchEvent(new Event("change", { bubbles: true }));
    }

    function show(data) {
      list.replaceChildren();
      data.applications.forEach((app, i) => {
        const option = document.createElement("li");
        option.id = list.id + "-" + i;
        option.setAttribute("role", "option");
        option.setAttribute("aria-selected", "false");
        option.dataset.slug = app.slug;
        option.textContent = app.name;
        const slug = document.createElement("span");
        slug.className = "small mono";
        slug.textContent = app.slug + (app.client_id ? " · " + app.client_id : "");
        option.appendChild(slug);
        option.addEventListener("mousedown", (event) => {
          event.preventDefault(); // keep the focus in the text box
          choose(option);
        });
        list.appendChild(option);
      });
      if (!data.applications.length || data.more) {
        const note = document.createElement("li");
        note.className = "picker-empty";
        note.setAttribute("role", "presentation");
        note.textContent = data.applications.length ? "More match: keep typing." : "No application matches.";
        list.appendChild(note);
      }
      list.hidden = false;
      input.setAttribute("aria-expanded", "true");
      active = -1;
    }

    async function suggest() {
      const ticket = ++asked;
      const url = new URL(input.dataset.picker, window.location.href);
      url.searchParams.set("q", input.value);
      try {
        const response = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
        if (!response.ok || ticket !== asked) {
          return;
        }
        const data = await response.json();
        if (ticket === asked && document.activeElement === input) {
          show(data);
        }
      } catch (error) {
        close(); // the server resolves what was typed when the form is sent
      }
    }

    input.addEventListener("input", () => {
      clearTimeout(timer);
      timer = setTimeout(suggest, 150);
    });
    input.addEventListener("focus", suggest);
    input.addEventListener("blur", () => setTimeout(close, 100));
    input.addEventListener("keydown", (event) => {
      if (event.key === "ArrowDown" || event.key === "ArrowUp") {
        event.preventDefault();
        if (list.hidden) {
          suggest();
          return;
        }
        highlight(active + (event.key === "ArrowDown" ? 1 : -1));
      } else if (event.key === "Enter" && !list.hidden && active >= 0) {
        event.preventDefault();
        choose(options()[active]);
      } else if (event.key === "Escape" && !list.hidden) {
        event.preventDefault();
        close();
      }
    });
  }

  // --- copy buttons ----------------------------------------------------------------------------

  function say(status, text) {
    if (!status) {
      return;
    }
    clearTimeout(status.clearing);
    status.textContent = text;
    status.clearing = setTimeout(() => {
      status.textContent = "";
    }, 4000);
  }

  function selectText(element) {
    const range = document.createRange();
    range.selectNodeContents(element);
    const selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
  }

  // data-copy-target: a secret or a URL; data-copy: a parameters block (binding panel), copied as is.
  function setUpCopy(button) {
    const block = button.dataset.copy !== undefined;
    const source = document.getElementById(block ? button.dataset.copy : button.dataset.copyTarget);
    if (!source) {
      return;
    }
    const status = button.parentElement.querySelector(".copy-status");
    button.addEventListener("click", async () => {
      try {
        if (!navigator.clipboard) {
          throw new Error("no clipboard access on this page");
        }
        await navigator.clipboard.writeText(block ? source.textContent : source.textContent.trim());
        say(status, "Copied");
      } catch (error) {
        selectText(source);
        say(status, "Selected: press Ctrl+C (⌘C) to copy.");
      }
    });
    button.hidden = false;
  }

  // --- slug from name --------------------------------------------------------------------------

  function slugify(text) {
    return text
      .normalize("NFKD")
      .replace(/[\u0300-\u036f]/g, "")
      .toLowerCase()
      .replace(/[^a-z0-9_\s-]/g, "")
      .trim()
      .replace(/[-\s]+/g, "-")
      .replace(/^[-_]+|[-_]+$/g, "")
      .slice(0, 100);
  }

  function setUpSlug(form) {
    const name = form.querySelector('input[name="name"]');
    const slug = form.querySelector('input[name="slug"]');
    if (!name || !slug) {
      return;
    }
    let follows = slug.value === "" || slug.value === slugify(name.value);
    slug.addEventListener("input", () => {
      follows = slug.value === "";
    });
    name.addEventListener("input", () => {
      if (follows) {
        slug.value = slugify(name.value);
      }
    });
  }

  function start() {
    document.querySelectorAll("input[data-picker]").forEach(setUpPicker);
    document.querySelectorAll("button[data-copy-target], button[data-copy]").forEach(setUpCopy);
    document.querySelectorAll("form[data-slug-from-name]").forEach(setUpSlug);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
