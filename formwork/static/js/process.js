// The process view: draw the BPMN diagram with bpmn-js's NavigatedViewer and mark the
// completed and current steps. The data comes from the JSON script tag #process-data.
(function () {
  "use strict";

  function mark(viewer, ids, marker) {
    var canvas = viewer.get("canvas");
    var elements = viewer.get("elementRegistry");
    (ids || []).forEach(function (id) {
      if (elements.get(id)) {
        canvas.addMarker(id, marker);
      }
    });
  }

  function fail(container, error) {
    container.dataset.error = String((error && error.message) || error);
    container.textContent = container.dataset.errorMessage || String(error);
  }

  function draw() {
    var holder = document.getElementById("process-data");
    var container = document.getElementById("process-canvas");
    if (!holder || !container) {
      return;
    }
    if (!window.BpmnJS) {
      fail(container, "bpmn-js is missing");
      return;
    }
    var data = JSON.parse(holder.textContent);
    var viewer = new window.BpmnJS({ container: container });
    viewer
      .importXML(data.bpmn)
      .then(function () {
        viewer.get("canvas").zoom("fit-viewport");
        mark(viewer, data.completed, "fw-step-completed");
        mark(viewer, data.current, "fw-step-current");
        container.dataset.rendered = "true";
      })
      .catch(function (error) {
        fail(container, error);
      });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", draw);
  } else {
    draw();
  }
})();
