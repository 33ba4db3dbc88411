"use strict";
(function () {
  // Included by several parts of a page: one copy does the work.
  if (window.mailerLive) return;
  window.mailerLive = true;

  // A button with data-confirm asks before its form is sent (instead of an inline onclick,
  // which the Content-Security-Policy forbids).
  document.addEventListener("click", (event) => {
    const button = event.target.closest("[data-confirm]");
    if (button && !window.confirm(button.dataset.confirm)) event.preventDefault();
  });

  // Each element marked data-live="seconds" is refreshed every that many seconds from a
  // background fetch, so progress bars, counts and charts move without a reload: from
  // data-live-url (a server-rendered fragment) when it has one, otherwise from the same
  // element of a fresh copy of this page. An element the server no longer marks live stops.
  function live() { return document.querySelectorAll("[data-live][id]"); }
  if (!live().length) return;
  const every = Math.min(...Array.from(live(), (box) => Number(box.dataset.live))) * 1000;
  async function fetchText(url) {
    const response = await fetch(url, {credentials: "same-origin"});
    return response.ok ? response.text() : null;
  }
  async function refresh() {
    try {
      let page = null;
      for (const box of live()) {
        let fresh = null;
        if (box.dataset.liveUrl) {
          const html = await fetchText(box.dataset.liveUrl);
          if (html !== null) { box.innerHTML = html; }
          fresh = html === null ? null : box;
        } else {
          if (page === null) {
            const html = await fetchText(location.href);
            if (html === null) continue;
            page = new DOMParser().parseFromString(html, "text/html");
          }
          fresh = page.getElementById(box.id);
          if (fresh) {
            // What the reader opened (a chart's numbers) stays open.
            const open = Array.from(box.querySelectorAll("details[open][id]"), (d) => d.id);
            box.innerHTML = fresh.innerHTML;
            open.forEach((id) => { const d = document.getElementById(id); if (d) d.open = true; });
          }
        }
        if (!fresh) continue;
        box.dataset.updated = new Date().toISOString();
        document.dispatchEvent(new CustomEvent("mailer:refreshed", {detail: box}));
        if (!fresh.hasAttribute("data-live")) box.removeAttribute("data-live");
      }
    } catch (error) {
      // Offline for a moment: keep what is shown and try again.
    }
    if (live().length) setTimeout(refresh, every);
  }
  setTimeout(refresh, every);
})();
