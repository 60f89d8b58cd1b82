// The audit page's live view: follow the server-sent events of the
// page's filter and put each new record at the top of the table. Text
// only (textContent), never markup.
(function () {
  "use strict";
  var live = document.getElementById("live");
  var body = document.querySelector("#audit tbody");
  if (!live || !body || !window.EventSource) {
    return;
  }
  var fields = ["time", "actor", "actorTenant", "targetTenant", "action", "target", "result", "detail"];
  var source = new EventSource(live.getAttribute("data-stream"));
  source.addEventListener("audit", function (ev) {
    var rec;
    try {
      rec = JSON.parse(ev.data);
    } catch (e) {
      return;
    }
    var tr = document.createElement("tr");
    tr.setAttribute("data-seq", String(rec.seq));
    tr.className = "new";
    fields.forEach(function (f) {
      var td = document.createElement("td");
      td.textContent = rec[f] == null ? "" : String(rec[f]);
      tr.appendChild(td);
    });
    body.insertBefore(tr, body.firstChild);
    while (body.children.length > 500) {
      body.removeChild(body.lastChild);
    }
  });
  source.addEventListener("end", function (ev) {
    source.close();
    live.className = "live off";
    live.textContent = "Live view ended: " + ev.data + ". Reload to follow again.";
  });
  source.onopen = function () {
    live.textContent = "Live: new records appear at the top.";
    live.className = "live on";
  };
})();
