// Follows a running job's log on its page: polls /ui/jobs/{id}/log?offset=N (the text from byte
// N, and the job's status in x-job-status) until the status is final. The page works without it.
(function () {
  "use strict";
  var log = document.getElementById("log");
  if (!log || log.dataset.final === "1") return;
  var id = log.dataset.job;
  var offset = parseInt(log.dataset.offset, 10) || 0;
  var note = document.getElementById("follow-note");
  var status = document.getElementById("job-status");
  var encoder = new TextEncoder();
  // The final statuses, from the server's state machine (pipeline/state.rs).
  var finals = (log.dataset.finals || "success,failed,canceled,skipped").split(",");
  var failures = 0;

  function setStatus(s) {
    if (!status || !s) return;
    status.innerHTML = "";
    var span = document.createElement("span");
    span.className = "badge badge-" + s;
    span.textContent = s;
    status.appendChild(span);
  }

  function poll() {
    fetch("/ui/jobs/" + encodeURIComponent(id) + "/log?offset=" + offset, { credentials: "same-origin", cache: "no-store" })
      .then(function (r) {
        if (!r.ok) throw new Error("HTTP " + r.status);
        var s = r.headers.get("x-job-status");
        return r.text().then(function (text) { return [s, text]; });
      })
      .then(function (res) {
        failures = 0;
        var s = res[0], text = res[1];
        if (text.length > 0) {
          var atBottom = window.innerHeight + window.scrollY >= document.body.scrollHeight - 40;
          log.appendChild(document.createTextNode(text));
          offset += encoder.encode(text).length;
          if (atBottom) window.scrollTo(0, document.body.scrollHeight);
        }
        setStatus(s);
        if (finals.indexOf(s) >= 0) {
          if (note) note.textContent = "The job finished: " + s + ".";
          log.dataset.final = "1";
          return;
        }
        setTimeout(poll, 1000);
      })
      .catch(function (e) {
        failures += 1;
        if (note) note.textContent = "Could not follow the log (" + e.message + "); retrying…";
        setTimeout(poll, Math.min(30000, 1000 * Math.pow(2, failures)));
      });
  }
  setTimeout(poll, 500);
})();
