/* citytwin: "Screen as PNG" — the whole screen, map included, drawn in the browser and downloaded.
   html-to-image (assets/vendor) redraws the page's DOM into an image. The deck.gl map is a WebGL canvas: it is
   copied with canvas.toDataURL(), which works because luma.gl creates deck.gl's WebGL2 context with
   preserveDrawingBuffer: true (checked in tests/e2e/test_exports.py, which also checks that the map is not blank).
   Delegated from the document, so the button works on every page and after every re-render. */
(function () {
  "use strict";

  function nextFrame() {
    return new Promise(function (resolve) { requestAnimationFrame(function () { requestAnimationFrame(resolve); }); });
  }

  // YYYYMMDD-HHMM in the city's time zone (the button's data-timezone), as the server names its CSV and HTML files.
  function cityStamp(timeZone) {
    var parts = {};
    new Intl.DateTimeFormat("en-GB", {timeZone: timeZone || "UTC", year: "numeric", month: "2-digit",
                                      day: "2-digit", hour: "2-digit", minute: "2-digit", hourCycle: "h23"})
      .formatToParts(new Date()).forEach(function (part) { parts[part.type] = part.value; });
    return parts.year + parts.month + parts.day + "-" + parts.hour + parts.minute;
  }

  function fileName(timeZone) {
    var view = (location.pathname.replace(/\//g, "-").replace(/^-|-$/g, "") || "map");
    var unit = new URLSearchParams(location.search).get("unit");
    var stamp = cityStamp(timeZone);
    return ["citytwin", view, unit, stamp].filter(Boolean).join("-").replace(/[^A-Za-z0-9_.-]/g, "") + ".png";
  }

  async function exportPng(button) {
    var menu = button.closest("details");
    if (menu) { menu.open = false; }
    button.disabled = true;
    document.documentElement.classList.add("exporting-png");
    try {
      await nextFrame();  // the closed menu is gone from the screen before it is drawn
      var width = document.documentElement.clientWidth, height = document.documentElement.clientHeight;
      var blob = await window.htmlToImage.toBlob(document.body, {
        width: width, height: height, pixelRatio: 1, skipFonts: true,  // system fonts only: nothing to embed
        backgroundColor: getComputedStyle(document.body).backgroundColor,
      });
      var link = document.createElement("a");
      link.href = URL.createObjectURL(blob);
      link.download = fileName(button.dataset.timezone);
      document.body.appendChild(link);
      link.click();
      link.remove();
      setTimeout(function () { URL.revokeObjectURL(link.href); }, 10000);
      button.dataset.exported = String(Number(button.dataset.exported || 0) + 1);
    } catch (error) {
      button.dataset.error = String(error && error.message || error);
      button.title = "The PNG could not be made: " + button.dataset.error;
    } finally {
      button.disabled = false;
      document.documentElement.classList.remove("exporting-png");
    }
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-export='png']");
    if (button) {
      event.preventDefault();
      exportPng(button);
    }
  });
})();
