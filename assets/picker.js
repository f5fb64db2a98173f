/* citytwin: typing in an open picker searches it. Dash's dropdown, opened on a chosen value, puts the focus on that
   option, and the letters typed next went nowhere until the search box was clicked. The search box takes the focus
   when the list opens, and a printable key pressed on an option of an open list moves the focus to the list's search
   box first, so that the key lands there. Delegated from the document: every dropdown, on every page. */
(function () {
  "use strict";

  function searchBoxOf(element) {
    var content = element && element.closest && element.closest(".dash-dropdown-content");
    return content ? content.querySelector("input.dash-dropdown-search") : null;
  }

  document.addEventListener("keydown", function (event) {
    if (event.key.length !== 1 || event.ctrlKey || event.metaKey || event.altKey) { return; }
    var search = searchBoxOf(document.activeElement);
    if (search && document.activeElement !== search) { search.focus(); }  // the key's character goes in here
  }, true);

  // When a list opens, Dash focuses its chosen option a few frames later: the search box takes the focus from it
  // (once: after that the arrow keys and the mouse move it as usual).
  document.addEventListener("click", function (event) {
    if (!event.target.closest || !event.target.closest(".dash-dropdown")) { return; }
    var frames = 0;
    (function focusSearch() {
      var search = document.querySelector(".dash-dropdown-content input.dash-dropdown-search");
      var active = document.activeElement;
      if (search && active === search) { return; }
      if (search && (active === document.body || active.closest(".dash-dropdown-wrapper")
                     || (searchBoxOf(active) === search && active.checked))) { search.focus(); return; }
      if (++frames < 30) { requestAnimationFrame(focusSearch); }
    })();
  });
})();
