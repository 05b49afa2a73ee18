/* Formwork page behaviour: unsaved-changes warning, money formatting, line-item grids with
   running totals, reference look-ups, confirmations. No framework; htmx does the requests. */
(function () {
  "use strict";

  function parseNumber(text) {
    var cleaned = String(text || "").replace(/[,\s\u00a0_¥￥%，]/g, "");
    if (cleaned === "" || isNaN(Number(cleaned))) return null;
    return Number(cleaned);
  }

  function group(number, places) {
    var fixed = Number(number).toFixed(places);
    var parts = fixed.split(".");
    parts[0] = parts[0].replace(/\B(?=(\d{3})+(?!\d))/g, ",");
    return parts.join(".");
  }

  /* -- CSRF: every htmx request that may change state carries the page's token ------------- */
  document.addEventListener("htmx:configRequest", function (event) {
    var verb = String(event.detail.verb || "").toUpperCase();
    if (verb === "GET" || verb === "HEAD") return;
    var meta = document.querySelector('meta[name="csrf-token"]');
    if (meta) event.detail.headers["X-CSRFToken"] = meta.getAttribute("content");
  });

  /* -- unsaved changes ------------------------------------------------------------------ */
  var dirty = false;
  document.addEventListener("input", function (event) {
    if (event.target.closest("[data-fw-form]")) dirty = true;
  });
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var button = event.submitter;
    var message = (button && button.getAttribute("data-confirm")) || form.getAttribute("data-confirm");
    if (message && !window.confirm(message)) { event.preventDefault(); return; }
    if (form.matches("[data-fw-form]")) dirty = false;
  });
  window.addEventListener("beforeunload", function (event) {
    if (!dirty) return undefined;
    event.preventDefault();
    event.returnValue = document.body.getAttribute("data-unsaved-message") || "";
    return event.returnValue;
  });

  /* -- money and numbers ------------------------------------------------------------------ */
  document.addEventListener("focusout", function (event) {
    var input = event.target;
    if (!input.matches || !input.matches("input[data-fw-money]")) return;
    var value = parseNumber(input.value);
    if (value !== null) input.value = group(value, Number(input.getAttribute("data-fw-money") || 2));
  });

  /* -- grids -------------------------------------------------------------------------------- */
  var rowCounter = 0;
  function renumber(grid) {
    grid.querySelectorAll("tbody tr[data-fw-row-key]").forEach(function (tr, i) {
      var cell = tr.querySelector(".fw-row-num");
      if (cell && cell.firstChild && cell.firstChild.nodeType === 3) cell.firstChild.nodeValue = String(i + 1);
    });
    totals(grid);
  }
  function totals(grid) {
    grid.querySelectorAll("output[data-fw-total-of]").forEach(function (out) {
      var name = out.getAttribute("data-fw-total-of");
      var sum = 0, places = 0;
      grid.querySelectorAll('tbody td[data-col="' + name + '"]').forEach(function (td) {
        var input = td.querySelector("input[data-fw-number]");
        var shown = td.querySelector("output[data-fw-value]");
        var value = input ? parseNumber(input.value) : (shown ? parseNumber(shown.getAttribute("data-fw-value")) : null);
        if (input) places = Math.max(places, Number(input.getAttribute("data-fw-number") || 0));
        else if (shown) places = 2;
        if (value !== null) sum += value;
      });
      out.textContent = group(sum, places);
    });
  }
  function changed(grid) {
    dirty = true;
    renumber(grid);
    document.body.dispatchEvent(new CustomEvent("fw-rows-changed"));
  }
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-fw-row]");
    if (!button) return;
    var grid = button.closest("[data-fw-grid]");
    var action = button.getAttribute("data-fw-row");
    var tbody = grid.querySelector("tbody");
    var row = button.closest("tr");
    if (action === "add") {
      var template = grid.querySelector("template[data-fw-blank-row]");
      var key = "n" + Date.now().toString(36) + (rowCounter++);
      var html = template.innerHTML.split("__KEY__").join(key);
      tbody.insertAdjacentHTML("beforeend", html);
      var added = tbody.lastElementChild;
      if (window.htmx) window.htmx.process(added);
      var first = added.querySelector("input:not([type=hidden]), select, textarea");
      if (first) first.focus();
    } else if (action === "remove") {
      var next = row.nextElementSibling || row.previousElementSibling;
      row.remove();
      var focusTarget = next ? next.querySelector("button[data-fw-row=remove]") : grid.querySelector("[data-fw-row=add]");
      if (focusTarget) focusTarget.focus();
    } else if (action === "up" && row.previousElementSibling) {
      tbody.insertBefore(row, row.previousElementSibling);
      button.focus();
    } else if (action === "down" && row.nextElementSibling) {
      tbody.insertBefore(row.nextElementSibling, row);
      button.focus();
    }
    changed(grid);
  });
  document.addEventListener("input", function (event) {
    var grid = event.target.closest && event.target.closest("[data-fw-grid]");
    if (grid) totals(grid);
  });
  function allTotals() { document.querySelectorAll("[data-fw-grid]").forEach(totals); }
  document.addEventListener("htmx:oobAfterSwap", allTotals);
  document.addEventListener("htmx:afterSettle", allTotals);
  document.addEventListener("DOMContentLoaded", function () {
    allTotals();
    var summary = document.getElementById("form-errors");
    var firstInvalid = document.querySelector("[aria-invalid=true]");
    if (firstInvalid) firstInvalid.focus(); else if (summary) summary.focus();
  });

  /* -- reference look-ups ------------------------------------------------------------------- */
  function closeOptions(box) {
    var list = box.querySelector(".fw-lookup-options");
    if (list) list.innerHTML = "";
    var text = box.querySelector(".fw-lookup-text");
    if (text) text.setAttribute("aria-expanded", "false");
  }
  document.addEventListener("click", function (event) {
    var option = event.target.closest("[data-fw-pick]");
    if (!option) return;
    var box = option.closest(".fw-lookup");
    var hidden = box.querySelector(".fw-lookup-value");
    hidden.value = option.getAttribute("data-fw-pick");
    box.querySelector(".fw-lookup-text").value = option.getAttribute("data-fw-title");
    closeOptions(box);
    dirty = dirty || !!box.closest("[data-fw-form]");
    hidden.dispatchEvent(new Event("change", { bubbles: true }));
    box.querySelector(".fw-lookup-text").focus();
  });
  document.addEventListener("input", function (event) {
    var text = event.target;
    if (!text.classList || !text.classList.contains("fw-lookup-text")) return;
    if (text.value === "") text.closest(".fw-lookup").querySelector(".fw-lookup-value").value = "";
  });
  document.addEventListener("htmx:afterSwap", function (event) {
    var list = event.target;
    if (list.classList && list.classList.contains("fw-lookup-options")) {
      var text = list.closest(".fw-lookup").querySelector(".fw-lookup-text");
      text.setAttribute("aria-expanded", list.children.length ? "true" : "false");
    }
  });
  document.addEventListener("keydown", function (event) {
    var box = event.target.closest && event.target.closest(".fw-lookup");
    if (!box) return;
    var options = Array.prototype.slice.call(box.querySelectorAll("[data-fw-pick]"));
    var index = options.indexOf(document.activeElement);
    if (event.key === "Escape") { closeOptions(box); box.querySelector(".fw-lookup-text").focus(); }
    else if (event.key === "ArrowDown" && options.length) { event.preventDefault(); options[Math.min(index + 1, options.length - 1)].focus(); }
    else if (event.key === "ArrowUp" && options.length) { event.preventDefault(); if (index <= 0) box.querySelector(".fw-lookup-text").focus(); else options[index - 1].focus(); }
    else if (event.key === "Enter" && event.target.classList.contains("fw-lookup-text")) {
      event.preventDefault();  // Enter picks from the list, it does not submit the form
      if (options.length === 1) options[0].click();
    }
  });
  document.addEventListener("focusin", function (event) {
    document.querySelectorAll(".fw-lookup").forEach(function (box) {
      if (!box.contains(event.target)) closeOptions(box);
    });
  });

  /* -- lists and uploads ---------------------------------------------------------------------- */
  document.addEventListener("change", function (event) {
    var target = event.target;
    if (target.id === "tick-all") {
      document.querySelectorAll(".fw-tick").forEach(function (box) { box.checked = target.checked; });
    }
    if (target.type === "file" && target.getAttribute("data-fw-max-size")) {
      var limit = Number(target.getAttribute("data-fw-max-size"));
      var tooBig = Array.prototype.some.call(target.files, function (f) { return f.size > limit; });
      target.setCustomValidity(tooBig ? target.getAttribute("data-fw-too-large") : "");
      if (tooBig) target.reportValidity();
    }
  });
})();
