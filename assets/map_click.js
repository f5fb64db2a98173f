/* citytwin: a click on a unit of the map page's map drills into it, however long the map takes to pick.

   deck.gl recognises a click as a tap: the pointer must come up within 250 ms of going down (mjolnir.js's tap
   recogniser, not configurable through deckgl-dash), and deck.gl picks synchronously on pointerdown, inside that
   time. With software WebGL on a loaded machine that pick took 0.3-2.3 s on Guangdong's 21 cities (70-100 ms on
   Shenzhen's 8 districts), so the tap failed and no clickInfo ever reached Dash (issue 16). The browser's own click
   event has no time limit: on it, this script reads the unit deck.gl picked under the pointer when it moved there
   (the tooltip's hidden data-unit, dashboard/maps/deck.py) and hands it to Dash (the map-pick store, read by the
   map-click callback in dashboard/pages/overview.py). A drag is not a click: the pointer must come up within a few
   pixels of where it went down. When deck.gl's tap fired too and the URL already names the unit, nothing is sent;
   when both are in flight, they name the same unit and the second change of the URL is no change. Delegated from the document, so it works after every re-render of the page. */
(function () {
  "use strict";

  var MAP = "city-map", STORE = "map-pick", SLOP = 6;  // px: mjolnir's tap allows 9
  var down = null;

  function onMap(event) {
    var map = document.getElementById(MAP);
    return map && event.target instanceof Node && map.contains(event.target) && event.target.tagName === "CANVAS";
  }

  function nextFrames(count, done) {
    requestAnimationFrame(function () { return count > 1 ? nextFrames(count - 1, done) : done(); });
  }

  document.addEventListener("pointerdown", function (event) {
    down = onMap(event) && event.isPrimary && event.button === 0 ? {x: event.clientX, y: event.clientY} : null;
  }, true);

  document.addEventListener("click", function (event) {
    var start = down;
    down = null;
    if (!start || !onMap(event) || Math.hypot(event.clientX - start.x, event.clientY - start.y) > SLOP) { return; }
    // deck.gl picks for its tooltip on the frame after the pointer moved: let that frame pass, then read it.
    nextFrames(2, function () {
      var tip = document.querySelector("#" + MAP + " .deck-tooltip");
      var mark = tip && tip.style.display !== "none" ? tip.querySelector("[data-unit]") : null;
      var unit = mark ? mark.getAttribute("data-unit") : "";
      if (!unit || unit.charAt(0) === "{" || !window.dash_clientside || !window.dash_clientside.set_props) { return; }
      // deck.gl's own click got there first (a quick pick): nothing to add.
      if (new URLSearchParams(location.search).get("unit") === unit) { return; }
      window.dash_clientside.set_props(STORE, {data: {unit: unit, at: Date.now()}});
    });
  }, true);
})();
