// Live rows of the alert inbox (/alerts). Opens an EventSource on /v1/alerts/stream (the
// page's session cookie opens it) after the position the page was read at; for each event it
// fetches the row partial /alerts/{id}/row with the page's filters and replaces the row, inserts
// it on top (first page only), or removes it (204: the filters leave it out). Rows are rendered
// by the server, so live rows read exactly like the others. When the stream closes, one probe
// tells a 429 (wait Retry-After seconds) from a closed session (stop) before reopening.
(function () {
  "use strict";
  var me = document.currentScript;
  var table = document.getElementById("alerts");
  var status = document.getElementById("live-status");
  if (!table || !status || !window.EventSource) return;
  var body = table.tBodies[0];
  var empty = document.getElementById("alerts-empty");
  var filters = table.dataset.filters || "";
  var firstPage = table.dataset.firstPage === "true";
  var last = table.dataset.after || "";
  var source = null;

  function show(state) {
    status.dataset.state = state;
    status.textContent = state === "on" ? me.dataset.live : me.dataset.off;
  }

  function rowOf(id) {
    return body.querySelector('tr[data-alert="' + id + '"]');
  }

  function refresh(id) {
    var url = "/alerts/" + id + "/row" + (filters ? "?" + filters : "");
    fetch(url, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (reply) {
        var old = rowOf(id);
        if (reply.status === 204 || reply.status === 404) {
          if (old) old.remove();
          return null;
        }
        if (!reply.ok) return null;
        return reply.text().then(function (html) {
          var holder = document.createElement("tbody");
          holder.innerHTML = html.trim();
          var fresh = holder.querySelector("tr");
          if (!fresh) return;
          var now = rowOf(id);  // another event for the same alert may have landed meanwhile
          if (now) {
            var picked = now.querySelector("input[type=checkbox]");
            var box = fresh.querySelector("input[type=checkbox]");
            if (picked && box) box.checked = picked.checked;
            now.replaceWith(fresh);
          } else if (firstPage) {
            fresh.classList.add("fresh");
            body.insertBefore(fresh, body.firstElementChild);
          }
        });
      })
      .then(function () {
        if (empty) empty.hidden = body.rows.length > 0;
      })
      .catch(function () {});
  }

  function reopen(delayMs) {
    window.setTimeout(open, Math.max(delayMs, 1000));
  }

  function probe() {
    // EventSource gives up on a non-200 answer without telling which: ask once ourselves.
    var ctl = new AbortController();
    fetch("/v1/alerts/stream?after=" + encodeURIComponent(last), {
      credentials: "same-origin",
      signal: ctl.signal,
      headers: { Accept: "text/event-stream" },
    })
      .then(function (reply) {
        ctl.abort();
        if (reply.status === 429) {
          var wait = parseInt(reply.headers.get("Retry-After") || "1", 10);
          reopen((isNaN(wait) ? 1 : wait) * 1000);
        } else if (reply.ok) {
          reopen(0);
        }  // 401/403: the session is gone; stay disconnected
      })
      .catch(function () {
        reopen(5000);
      });
  }

  function open() {
    var url = "/v1/alerts/stream" + (last ? "?after=" + encodeURIComponent(last) : "");
    source = new EventSource(url, { withCredentials: true });
    source.onopen = function () {
      show("on");
    };
    source.addEventListener("alert", function (event) {
      if (event.lastEventId) last = event.lastEventId;
      try {
        var data = JSON.parse(event.data);
        refresh(data.alert.id);
      } catch (e) {
        /* not an alert event */
      }
    });
    source.onerror = function () {
      show("off");
      if (source.readyState === EventSource.CLOSED) {
        source = null;
        probe();
      }  // otherwise the browser reconnects by itself, with Last-Event-ID
    };
  }

  window.addEventListener("pagehide", function () {
    if (source) source.close();
  });
  open();
})();
