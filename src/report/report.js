// finding-correlator investigation report: hover, focus and click show a signal's or an
// entity's details (from the page's own templates) and highlight what relates to it. Written
// for this page; it reads nothing but the page and writes no HTML (it clones templates).
(function () {
  "use strict";

  function each(list, f) {
    Array.prototype.forEach.call(list, f);
  }

  function numbers(text) {
    return (text || "").split(" ").filter(function (x) {
      return x !== "";
    });
  }

  each(document.querySelectorAll("section.sequence"), function (sec) {
    var panel = sec.querySelector("aside.details");
    var hint = panel.firstElementChild.cloneNode(true);
    var pinned = null;
    var pinnedEntry = null;
    var nodes = {};
    each(sec.querySelectorAll("svg.graph g.node"), function (g) {
      nodes[g.getAttribute("data-n")] = g;
    });
    var edges = sec.querySelectorAll("svg.graph path.edge");
    var entries = sec.querySelectorAll("ol.timeline li.signal");
    var ticks = {};
    each(sec.querySelectorAll("svg.strip line.tick"), function (t) {
      ticks[t.getAttribute("data-i")] = t;
    });

    function show(id) {
      var t = id && document.getElementById(id);
      panel.replaceChildren(t ? t.content.cloneNode(true) : hint.cloneNode(true));
    }

    function restore() {
      show(pinned);
    }

    function mark(li, on) {
      each(numbers(li.getAttribute("data-nodes")), function (n) {
        if (nodes[n]) {
          nodes[n].classList.toggle("hl", on);
        }
      });
      var tick = ticks[li.getAttribute("data-i")];
      if (tick) {
        tick.classList.toggle("hl", on);
      }
    }

    function clearSelection() {
      each(sec.querySelectorAll(".pinned, .selected, .related"), function (el) {
        el.classList.remove("pinned", "selected", "related");
      });
      each(edges, function (e) {
        e.classList.remove("hl");
      });
    }

    function unfold(li) {
      var run = li.getAttribute("data-run");
      if (run === null || !li.classList.contains("folded")) {
        return;
      }
      var fold = sec.querySelector("li.fold[data-run='" + run + "']");
      if (fold) {
        toggle(fold, true);
      }
    }

    function toggle(fold, open) {
      var run = fold.getAttribute("data-run");
      fold.classList.toggle("open", open);
      fold.setAttribute("aria-expanded", open ? "true" : "false");
      each(sec.querySelectorAll("li.repeat[data-run='" + run + "']"), function (li) {
        li.classList.toggle("folded", !open);
      });
    }

    function pinSignal(li) {
      var again = li.classList.contains("pinned");
      if (pinnedEntry) {
        mark(pinnedEntry, false);
      }
      clearSelection();
      pinned = again ? null : li.getAttribute("data-tpl");
      pinnedEntry = again ? null : li;
      if (!again) {
        li.classList.add("pinned");
        mark(li, true);
      }
      restore();
    }

    function selectNode(g) {
      var n = g.getAttribute("data-n");
      var again = g.classList.contains("selected");
      clearSelection();
      pinned = null;
      if (pinnedEntry) {
        mark(pinnedEntry, false);
        pinnedEntry = null;
      }
      if (!again) {
        g.classList.add("selected");
        pinned = panelId(n);
        var first = null;
        each(entries, function (li) {
          if (numbers(li.getAttribute("data-nodes")).indexOf(n) !== -1) {
            li.classList.add("related");
            unfold(li);
            first = first || li;
          }
        });
        each(edges, function (e) {
          if (e.getAttribute("data-from") === n || e.getAttribute("data-to") === n) {
            e.classList.add("hl");
          }
        });
        if (first) {
          first.scrollIntoView({ block: "nearest" });
        }
      }
      restore();
    }

    function panelId(n) {
      return sec.id.replace("seq-", "s") + "-n-" + n;
    }

    function activate(el, f) {
      el.addEventListener("click", function () {
        f(el);
      });
      el.addEventListener("keydown", function (ev) {
        if (ev.key === "Enter" || ev.key === " ") {
          ev.preventDefault();
          f(el);
        }
      });
    }

    each(entries, function (li) {
      function enter() {
        show(li.getAttribute("data-tpl"));
        mark(li, true);
      }
      function leave() {
        mark(li, false);
        if (pinnedEntry) {
          mark(pinnedEntry, true);
        }
        restore();
      }
      li.addEventListener("mouseenter", enter);
      li.addEventListener("mouseleave", leave);
      li.addEventListener("focus", enter);
      li.addEventListener("blur", leave);
      activate(li, pinSignal);
    });

    each(Object.keys(ticks), function (i) {
      var li = sec.querySelector("li.signal[data-i='" + i + "']");
      if (!li) {
        return;
      }
      ticks[i].addEventListener("mouseenter", function () {
        show(li.getAttribute("data-tpl"));
        mark(li, true);
      });
      ticks[i].addEventListener("mouseleave", function () {
        mark(li, false);
        restore();
      });
      ticks[i].addEventListener("click", function () {
        unfold(li);
        li.scrollIntoView({ block: "nearest" });
        pinSignal(li);
      });
    });

    each(Object.keys(nodes), function (n) {
      var g = nodes[n];
      g.addEventListener("mouseenter", function () {
        show(panelId(n));
      });
      g.addEventListener("mouseleave", restore);
      activate(g, selectNode);
    });

    each(sec.querySelectorAll("li.fold"), function (fold) {
      activate(fold, function () {
        toggle(fold, !fold.classList.contains("open"));
      });
    });

    // A link to a signal or an entity: `#pin=s1-sig-4` or `#pin=s1-n-7` opens the page
    // with it selected (the page does not scroll to it).
    var pin = /^#pin=(s[0-9]+)-(sig|n)-([0-9]+)$/.exec(window.location.hash);
    if (pin && pin[1] === sec.id.replace("seq-", "s")) {
      if (pin[2] === "sig") {
        var li = sec.querySelector("li.signal[data-i='" + pin[3] + "']");
        if (li) {
          unfold(li);
          pinSignal(li);
        }
      } else if (nodes[pin[3]]) {
        selectNode(nodes[pin[3]]);
      }
    }
  });

  document.documentElement.setAttribute("data-js", "ready");
})();
