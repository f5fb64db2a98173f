/* citytwin: tells the server how large this screen draws a rem, so that what deck.gl draws in pixels on the map
   (unit names, cluster counts, points, outlines) is drawn at the page's scale: twice as large on 3840×2160 as on
   1920×1080, like every other part of the page (the root font follows the screen: assets/theme.css).

   The map's layers are built on the server, also for the page's first answer, before any callback could send the
   scale as an input: a cookie reaches every request. This file runs before Dash asks for its layout (Dash loads the
   assets' scripts before its renderer starts), and again when the window is resized, for the next redraw. The
   server reads it as untrusted input (dashboard/view.py, screen_scale). */
(function () {
  "use strict";

  function remember() {
    var scale = parseFloat(getComputedStyle(document.documentElement).fontSize) / 16;
    if (!(scale > 0)) { return; }
    document.cookie = "citytwin_scale=" + scale.toFixed(3) + "; path=/; SameSite=Strict";
  }

  remember();
  window.addEventListener("resize", remember);
})();
