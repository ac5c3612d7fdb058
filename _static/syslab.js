/* The Systems Lab: small fixes on top of sphinx-book-theme 1.3.0 / pydata-sphinx-theme 0.17.1.
 *
 * 1. Navigation toggles. Both themes attach their click handlers to the FIRST element matching
 *    `.primary-toggle` / `.secondary-toggle` (pydata-sphinx-theme issue #2451). With these two
 *    versions the first match is the button in PST's own header, which the book hides; the buttons
 *    a reader sees (in the article header) get no handler, so below 992 px the menu and the page
 *    contents never open, and on a laptop the menu never collapses the sidebar. We forward clicks
 *    from every other toggle to the first one, whose handlers do the right thing at every width
 *    (collapse the sidebar on a laptop, open the drawer <dialog> on a phone or tablet).
 * 2. Tap or click a figure to see it full size: an overlay showing the image at its natural
 *    (2x) size, scrollable and pinch-zoomable, with a link to the file itself. Escape, a tap on
 *    the backdrop or the close button closes it.
 */
(function () {
  "use strict";

  function ready(fn) {
    if (document.readyState !== "loading") fn();
    else document.addEventListener("DOMContentLoaded", fn);
  }

  function forwardToggles(selector) {
    var all = Array.prototype.slice.call(document.querySelectorAll(selector));
    if (all.length < 2) return;
    var bound = all[0];
    all.slice(1).forEach(function (button) {
      // Capture phase + stopImmediatePropagation: if a later theme version binds this button
      // too, its handler does not run as well (the drawer would open and close at once).
      button.addEventListener(
        "click",
        function (event) {
          event.preventDefault();
          event.stopImmediatePropagation();
          button.blur();
          bound.click();
        },
        true
      );
    });
  }

  function enlargeableImages() {
    return document.querySelectorAll(
      "main figure img, main .cell_output img, main .output img"
    );
  }

  function openLightbox(img) {
    var dialog = document.getElementById("syslab-lightbox");
    if (!dialog) {
      dialog = document.createElement("dialog");
      dialog.id = "syslab-lightbox";
      dialog.setAttribute("aria-label", "Figure at full size");
      dialog.innerHTML =
        '<div class="syslab-lightbox__bar">' +
        '<a class="syslab-lightbox__open" target="_blank" rel="noopener">Open image file</a>' +
        '<button type="button" class="syslab-lightbox__close" aria-label="Close">&times;</button>' +
        "</div>" +
        '<div class="syslab-lightbox__body"><img alt=""></div>';
      document.body.appendChild(dialog);
      // Escape closes it wherever the focus is (the theme's own key handlers may see it first).
      document.addEventListener("keydown", function (event) {
        if (event.key === "Escape" && dialog.open) dialog.close();
      });
      dialog.querySelector(".syslab-lightbox__close").addEventListener("click", function () {
        dialog.close();
      });
      dialog.addEventListener("click", function (event) {
        if (event.target === dialog || event.target.classList.contains("syslab-lightbox__body")) {
          dialog.close();
        }
      });
    }
    var big = dialog.querySelector("img");
    big.src = img.currentSrc || img.src;
    big.alt = img.alt || "";
    // Figures are rendered at 2x: show them at half their pixel size (their design size),
    // never smaller than the screen allows.
    big.style.width = Math.round((img.naturalWidth || 1000) / 2) + "px";
    dialog.querySelector(".syslab-lightbox__open").href = img.currentSrc || img.src;
    dialog.showModal();
    dialog.querySelector(".syslab-lightbox__close").focus();
  }

  ready(function () {
    forwardToggles(".primary-toggle");
    forwardToggles(".secondary-toggle");
    Array.prototype.forEach.call(enlargeableImages(), function (img) {
      if (img.closest("a")) return; // already a link: leave it alone
      img.classList.add("syslab-zoomable");
      img.setAttribute("tabindex", "0");
      img.setAttribute("role", "button");
      img.setAttribute("title", "Show full size");
      img.addEventListener("click", function () {
        openLightbox(img);
      });
      img.addEventListener("keydown", function (event) {
        if (event.key === "Enter" || event.key === " ") {
          event.preventDefault();
          openLightbox(img);
        }
      });
    });
  });
})();
